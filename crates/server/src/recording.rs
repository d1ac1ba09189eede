//! Continuous recording of live cameras into the store: one reader of the camera's fan-out
//! per recorded camera (a tokio task), handing frames to a thread that owns the store's
//! `Recorder` (store writes are blocking file and SQLite I/O, kept off the runtime).
//!
//! If the disk cannot keep up, the queue between the two (about 20 s of frames) fills and
//! frames are dropped and counted; the fan-out reader itself skips to the next keyframe
//! when it falls behind, so what is stored always restarts at a sync point.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;

use ipcamd_media::fanout::{Frame, Next, Stream};
use ipcamd_store::Store;

/// Frames queued between the fan-out and the writer thread.
const QUEUE: usize = 1500;

/// A running recording of one camera.
pub struct Recording {
    pub camera: String,
    pub dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recording {
    /// Starts recording `stream` (a new section of the camera's recording begins).
    pub fn start(
        store: &Store,
        stream: Arc<Stream>,
    ) -> Result<Recording, ipcamd_store::StoreError> {
        let camera = stream.name().to_owned();
        let mut recorder = store.recorder(&camera, stream.tracks())?;
        let (tx, rx) = sync_channel::<Arc<Frame>>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let name = camera.clone();
        let thread = std::thread::Builder::new()
            .name(format!("record-{camera}"))
            .spawn(move || {
                let mut errors = 0u64;
                while let Ok(frame) = rx.recv() {
                    if let Err(e) = recorder.push(&frame.au) {
                        errors += 1;
                        if errors == 1 || errors.is_multiple_of(1000) {
                            tracing::error!(camera = %name, error = %e, errors, "recording write failed");
                        }
                    }
                }
                match recorder.close() {
                    Ok(()) => tracing::info!(camera = %name, "recording stopped"),
                    Err(e) => tracing::error!(camera = %name, error = %e, "recording did not close cleanly"),
                }
            })
            .map_err(|e| ipcamd_store::StoreError::Io {
                path: format!("record-{camera} thread"),
                source: e,
            })?;
        let d = dropped.clone();
        let name = camera.clone();
        let task = tokio::spawn(async move {
            let (mut reader, _) = stream.subscribe();
            loop {
                match reader.recv().await {
                    Next::Frame(f) => match tx.try_send(f) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            if d.fetch_add(1, Ordering::Relaxed) == 0 {
                                tracing::warn!(camera = %name, "recording cannot keep up; dropping frames");
                            }
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    },
                    Next::Closed => return,
                }
            }
        });
        tracing::info!(camera = %camera, "recording");
        Ok(Recording {
            camera,
            dropped,
            task,
            thread: Some(thread),
        })
    }

    /// Stops taking frames and waits until everything taken is flushed and indexed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await; // drops the sender: the thread drains and closes
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
