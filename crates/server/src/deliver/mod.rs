//! Deliveries: the tasks that send a session's media once the session core said PLAY.
//!
//! - [`live`]: frames from a camera's fan-out reader to a TCP writer or UDP peer.
//! - [`direct`]: one writer per camera for the TCP clients that keep up.
//! - [`replay`]: the ONVIF replay pump: batches from the store, paced or as fast as the
//!   transport takes them, with the 0xABAC header extension.
//! - [`wire`]: the shared connection writer and where one track's packets go.
//! - [`udp`]: the server's RTP/RTCP UDP socket pair (sending side).
//! - [`rtcp`]: sender reports.
//!
//! A delivery knows nothing of sessions beyond their id: it reports through
//! [`SessionHooks`] (keep-alive, a replay delivery reaching its end), and is stopped
//! through its [`Delivery`] handle: cooperatively at a packet boundary (PAUSE, TEARDOWN,
//! `Immediate`: an answer follows on the same connection) or at once (timeout, disconnect,
//! shutdown).

pub mod direct;
pub mod live;
pub mod replay;
pub mod rtcp;
pub mod udp;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipcamd_proto::time::UnixMicros;
use tokio::task::JoinHandle;

/// What a delivery tells the session layer.
pub trait SessionHooks: Send + Sync + 'static {
    /// The client keeps taking its data: the session stays alive.
    fn keep_alive(&self, session: &str);
    /// Replay delivery number `delivery` reached its end after the unit at `last_sent`;
    /// `true` when a queued delivery follows (the pump then runs the next queued job).
    fn replay_finished(&self, session: &str, delivery: u64, last_sent: Option<UnixMicros>) -> bool;
}

/// A cooperative stop: the task checks [`StopSignal::requested`] between writes and wakes
/// from its sleeps on `wake`, so that PAUSE never cuts an interleaved frame in half on the
/// client's TCP connection.
#[derive(Default)]
pub struct StopSignal {
    flag: AtomicBool,
    pub wake: tokio::sync::Notify,
}

impl StopSignal {
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// The wallclock of the last unit a delivery sent (replay resumes after it).
#[derive(Debug)]
pub struct Progress(AtomicI64);

impl Default for Progress {
    fn default() -> Self {
        Progress(AtomicI64::new(i64::MIN))
    }
}

impl Progress {
    pub fn set(&self, t: UnixMicros) {
        self.0.store(t, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<UnixMicros> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }
}

/// How long a graceful stop waits for a packet boundary before aborting.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running delivery.
pub struct Delivery {
    /// The session core's number of a replay delivery (0 for live).
    pub number: u64,
    pub stop: Arc<StopSignal>,
    pub progress: Arc<Progress>,
    pub task: JoinHandle<()>,
}

impl Delivery {
    /// Stops at a packet boundary, waiting up to 5 s before aborting; returns the last
    /// unit sent.
    pub async fn stop_gracefully(mut self, session: &str) -> Option<UnixMicros> {
        self.stop.request();
        if tokio::time::timeout(STOP_WAIT, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!(session, "delivery did not stop in time; aborted");
            self.task.abort();
        }
        self.progress.get()
    }

    /// Stops at once (timeout, disconnect, shutdown: nothing more is written to the
    /// connection, so a frame cut in half does no harm).
    pub fn abort(self) {
        self.stop.request();
        self.task.abort();
    }
}
