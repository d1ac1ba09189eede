//! Graceful shutdown: one signal that every accept loop and connection task waits on, and
//! a count of the tasks still running by kind, so that the server can wait for them with a
//! bound and then say what was still open.
//!
//! ```text
//! Server::shutdown: trigger() -> accept loops return, connections end their loops
//!                   (sessions get TEARDOWN-equivalent cleanup) -> drained(timeout)
//!                   -> recorders flush and close -> whatever is left is aborted, logged
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::sync::lock;

#[derive(Default)]
struct Tracker {
    open: Mutex<BTreeMap<&'static str, usize>>,
    changed: Notify,
}

/// What a task waits on (cheap to clone).
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    tracker: Arc<Tracker>,
}

/// Held by a running task; dropping it marks the task finished.
pub struct TaskGuard {
    kind: &'static str,
    tracker: Arc<Tracker>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut open = lock(&self.tracker.open);
        if let Some(n) = open.get_mut(self.kind) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(self.kind);
            }
        }
        drop(open);
        self.tracker.changed.notify_waiters();
    }
}

impl Shutdown {
    /// Resolves once shutdown has been triggered (at once if it already was).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|v| *v).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Counts a running task of `kind` until the guard is dropped.
    pub fn track(&self, kind: &'static str) -> TaskGuard {
        *lock(&self.tracker.open).entry(kind).or_insert(0) += 1;
        TaskGuard {
            kind,
            tracker: self.tracker.clone(),
        }
    }
}

/// The side that triggers.
pub struct Trigger {
    tx: watch::Sender<bool>,
    tracker: Arc<Tracker>,
}

/// A new signal: the trigger and what tasks wait on.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    let tracker = Arc::new(Tracker::default());
    (
        Trigger {
            tx,
            tracker: tracker.clone(),
        },
        Shutdown { rx, tracker },
    )
}

impl Trigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Tasks still running, by kind.
    pub fn open(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.tracker.open).clone()
    }

    /// Waits up to `limit` for every tracked task to finish; returns what is still open.
    pub async fn drained(&self, limit: Duration) -> BTreeMap<&'static str, usize> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.tracker.changed.notified();
            let open = self.open();
            if open.is_empty() {
                return open;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.open();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_are_waited_for_with_a_bound() {
        let (trigger, shutdown) = channel();
        let mut s = shutdown.clone();
        let guard = shutdown.track("RTSP");
        let quick = tokio::spawn(async move {
            s.wait().await;
            drop(guard);
        });
        let _stuck = shutdown.track("HTTP");
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        let left = trigger.drained(Duration::from_millis(200)).await;
        assert!(quick.await.is_ok());
        assert_eq!(left.into_iter().collect::<Vec<_>>(), vec![("HTTP", 1)]);
        assert!(shutdown.is_triggered());
    }
}
