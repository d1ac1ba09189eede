//! [`AsyncStore`]: the store for async callers. Every store call is blocking file and
//! SQLite I/O behind the store's one `db` mutex (which recorder flushes take too), so the
//! async methods here run the call on a small pool of threads owned by the store and hand
//! the result back through a `tokio::sync::oneshot`; a tokio worker thread never blocks on
//! the store.
//!
//! Why a dedicated pool of [`POOL_THREADS`] threads rather than
//! `tokio::task::spawn_blocking`: store work is serialized by the `db` mutex anyway, so more
//! than a couple of threads only queue on that mutex (spawn_blocking would start up to 512
//! threads under load, each one parked on the mutex with its buffers); a fixed pool bounds
//! the memory and the threads, keeps store calls in FIFO order, and does not compete with the
//! rest of the server's blocking work (or get starved by it). It also needs no tokio
//! runtime: the store crate depends on tokio's `sync` feature only. The price is that a job
//! must be short: long work is cut into pieces, e.g. an export is read in chunks of at most a
//! few hundred KiB ([`AsyncStore::read_export`]), each one job, so two long downloads cannot
//! hold both threads. What cannot be cut, planning an export (about a second for 24 hours of
//! footage, longer for longer ranges), runs on a third thread of its own
//! ([`AsyncStore::run_long`]): plannings queue behind each other there, never in front of
//! short calls.
//!
//! The pool is created on first use, once per store (shared by every clone of the
//! [`Store`] and every `AsyncStore` made from it), and its threads end when the last handle
//! of the store is dropped. A job that panics is logged; its caller gets
//! [`StoreError::Worker`] and the thread goes on with the next job.
//!
//! Left out: priorities (a metadata lookup queued behind export chunks waits for them; with
//! 256 KiB chunks that is a millisecond or so each), and cancelling a job already queued
//! (dropping the future only discards its result; until the job has run, it holds its
//! store handle, so the store stays open that long).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ipcamd_proto::time::UnixMicros;
use tokio::sync::oneshot;

use crate::export::{ExportFile, ExportReader};
use crate::{lock, Reader, RecordingInfo, Store, StoreError};

/// Threads of a store's pool for short jobs (plus one for long ones).
pub const POOL_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The threads that run store jobs (one per store; see the module doc).
pub(crate) struct Pool {
    queue: Mutex<Sender<Job>>,
}

impl Pool {
    fn start(threads: usize, name: &str) -> Result<Pool, StoreError> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| StoreError::Worker(format!("cannot start a store thread: {e}")))?;
        }
        Ok(Pool {
            queue: Mutex::new(tx),
        })
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        lock(&self.queue)
            .send(job)
            .map_err(|_| StoreError::Worker("the store's threads have stopped".into()))
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The queue lock is held only while waiting for the next job.
        let job = match lock(rx).recv() {
            Ok(job) => job,
            Err(_) => return, // the store was dropped
        };
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!("store job panicked: {what}");
        }
    }
}

/// A cheap-to-clone handle whose methods run store calls off the async runtime; see the
/// module doc. Made by [`Store::to_async`].
#[derive(Clone)]
pub struct AsyncStore {
    store: Store,
}

impl Store {
    /// The async handle of this store (its pool is started on first use).
    pub fn to_async(&self) -> AsyncStore {
        AsyncStore {
            store: self.clone(),
        }
    }

    fn pool(&self, long: bool) -> Result<&Pool, StoreError> {
        let (cell, threads, name) = if long {
            (&self.inner.long_pool, 1, "store-long")
        } else {
            (&self.inner.pool, POOL_THREADS, "store")
        };
        if let Some(pool) = cell.get() {
            return Ok(pool);
        }
        let pool = Pool::start(threads, name)?;
        // Two first uses may race: the loser's pool has no jobs and its threads end when
        // it is dropped here.
        Ok(cell.get_or_init(|| pool))
    }
}

impl AsyncStore {
    /// The blocking store behind this handle.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` on the store's pool and returns its result. `f` must be short (see the
    /// module doc); everything else here is built on this.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, f).await
    }

    /// Runs `f` on the store's thread for long jobs (one thread: long jobs wait for each
    /// other, short ones do not wait for them).
    pub async fn run_long<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    async fn submit<T, F>(&self, long: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let store = self.store.clone();
        self.store.pool(long)?.submit(Box::new(move || {
            let result = f(&store);
            // Release the store before the caller hears back: a caller that then drops
            // its last handle must find the store closed (its lock file released).
            drop(store);
            let _ = tx.send(result);
        }))?;
        rx.await
            .map_err(|_| StoreError::Worker("the store job failed (panicked)".into()))?
    }

    /// [`Store::recordings`].
    pub async fn recordings(&self) -> Result<Vec<RecordingInfo>, StoreError> {
        self.run(|s| s.recordings()).await
    }

    /// [`Store::recording`].
    pub async fn recording(&self, camera: &str) -> Result<Option<RecordingInfo>, StoreError> {
        let camera = camera.to_owned();
        self.run(move |s| s.recording(&camera)).await
    }

    /// [`Store::reader`]. The reader's own calls are blocking: move it into
    /// [`AsyncStore::run`] (or a thread) to use it.
    pub async fn reader(&self, camera: &str) -> Result<Reader, StoreError> {
        let camera = camera.to_owned();
        self.run(move |s| s.reader(&camera)).await
    }

    /// [`Store::export_file`]: plans an export from the index (no sample data is read), on
    /// the thread for long jobs.
    pub async fn export_file(
        &self,
        camera: &str,
        from: UnixMicros,
        to: UnixMicros,
    ) -> Result<ExportFile, StoreError> {
        let camera = camera.to_owned();
        self.run_long(move |s| s.export_file(&camera, from, to))
            .await
    }

    /// [`Store::export_fragmented`]: plans a fragmented MP4 export.
    pub async fn export_fragmented(
        &self,
        camera: &str,
        from: UnixMicros,
        to: UnixMicros,
    ) -> Result<ExportFile, StoreError> {
        let camera = camera.to_owned();
        self.run_long(move |s| s.export_fragmented(&camera, from, to))
            .await
    }

    /// Reads the next at most `max` bytes of `reader`'s range (one pool job); `None` at
    /// the end of the range. The reader comes back with the bytes: the next call continues
    /// where this one stopped, with its open file and buffers.
    pub async fn read_export(
        &self,
        mut reader: ExportReader,
        max: usize,
    ) -> Result<(ExportReader, Option<Bytes>), StoreError> {
        self.run(move |_| {
            let chunk = reader.read_chunk(max)?;
            Ok((reader, chunk))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    #[test]
    fn runs_jobs_off_the_caller_and_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let handle = store.to_async();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let caller = std::thread::current().id();
            let (name, other) = handle
                .run(move |_| {
                    let t = std::thread::current();
                    Ok((t.name().map(str::to_owned), t.id() != caller))
                })
                .await
                .unwrap();
            assert!(name.is_some_and(|n| n.starts_with("store-")));
            assert!(other);
            // A long job does not hold up short ones.
            let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
            let long = handle.run_long(move |_| {
                let released = gate_rx.recv_timeout(std::time::Duration::from_secs(10));
                Ok((
                    released.is_ok(),
                    std::thread::current().name().map(str::to_owned),
                ))
            });
            let short = async {
                let r = handle.run(|_| Ok(7)).await;
                let _ = gate_tx.send(());
                r
            };
            let (long, short) = tokio::join!(long, short);
            assert_eq!(short.unwrap(), 7);
            let (released, name) = long.unwrap();
            assert!(released, "the short job waited for the long one");
            assert_eq!(name.as_deref(), Some("store-long-0"));
            assert!(handle.recordings().await.unwrap().is_empty());
            assert!(handle.recording("nope").await.unwrap().is_none());
            assert!(matches!(
                handle.reader("nope").await,
                Err(StoreError::NoSuchCamera(_))
            ));
            let panicked = handle
                .run(|_| -> Result<(), StoreError> { panic!("on purpose") })
                .await;
            assert!(matches!(panicked, Err(StoreError::Worker(_))));
            // Both threads still serve.
            let (a, b) = tokio::join!(handle.run(|_| Ok(1)), handle.run(|_| Ok(2)));
            assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
        });
        // The pool does not keep the store alive: a new primary can open it.
        drop(handle);
        drop(store);
        Store::open(dir.path(), StoreOptions::default()).unwrap();
    }
}
