//! Continuous recording of live cameras into the store: one reader of the camera's fan-out
//! per recorded camera (a tokio task), handing frames to a thread that owns the store's
//! `Recorder` (store writes are blocking file and SQLite I/O, kept off the runtime).
//!
//! If the disk cannot keep up, the queue between the two (about 20 s of frames) fills and
//! frames are dropped and counted; the fan-out reader itself skips to the next keyframe
//! when it falls behind, so what is stored always restarts at a sync point.
//!
//! A camera whose backchannel has the `record` output is recorded with one more track, the
//! talk audio ([`crate::talk_record`]); its units reach the writer thread through the same
//! queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use ipcamd_media::fanout::{Frame, Next, Stream};
use ipcamd_media::AccessUnit;
use ipcamd_store::Store;

use crate::backchannel::AudioOut;
use crate::talk_record::{talk_track, TalkRecordSink};

/// What the writer thread stores: a live frame, or a unit of talk audio.
pub enum RecordItem {
    Frame(Arc<Frame>),
    Talk(AccessUnit),
}

/// Frames queued between the fan-out and the writer thread.
const QUEUE: usize = 1500;

/// A running recording of one camera.
pub struct Recording {
    pub camera: String,
    pub dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set by `stop`: talk sinks may still hold senders, so the thread cannot wait for
    /// the queue to close.
    stopping: Arc<AtomicBool>,
    talk: Option<Arc<AudioOut>>,
}

impl Recording {
    /// Starts recording `stream` (a new section of the camera's recording begins).
    pub fn start(
        store: &Store,
        stream: Arc<Stream>,
    ) -> Result<Recording, ipcamd_store::StoreError> {
        Recording::start_with_talk(store, stream, None)
    }

    /// Like [`start`](Self::start); with `talk` (a backchannel output that has the `record`
    /// output), the recording gets the talk track and `talk` is connected to it.
    pub fn start_with_talk(
        store: &Store,
        stream: Arc<Stream>,
        talk: Option<Arc<AudioOut>>,
    ) -> Result<Recording, ipcamd_store::StoreError> {
        let camera = stream.name().to_owned();
        let mut tracks = stream.tracks().to_vec();
        if talk.is_some() {
            tracks.push(talk_track());
        }
        let mut recorder = store.recorder(&camera, &tracks)?;
        let (tx, rx) = sync_channel::<RecordItem>(QUEUE);
        if let Some(out) = &talk {
            out.attach_recording(TalkRecordSink::new(tx.clone(), tracks.len() - 1));
            tracing::info!(camera = %camera, track = tracks.len() - 1, "talk audio is recorded (PCMU 8 kHz track)");
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let name = camera.clone();
        let thread = std::thread::Builder::new()
            .name(format!("record-{camera}"))
            .spawn(move || {
                let mut errors = 0u64;
                let mut push = |item: RecordItem| {
                    let au = match &item {
                        RecordItem::Frame(f) => &f.au,
                        RecordItem::Talk(au) => au,
                    };
                    if let Err(e) = recorder.push(au) {
                        errors += 1;
                        if errors == 1 || errors.is_multiple_of(1000) {
                            tracing::error!(camera = %name, error = %e, errors, "recording write failed");
                        }
                    }
                };
                loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(item) => push(item),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    if stop.load(Ordering::Acquire) {
                        // Store what was queued before the stop, then close.
                        while let Ok(item) = rx.try_recv() {
                            push(item);
                        }
                        break;
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
                    Next::Frame(f) => match tx.try_send(RecordItem::Frame(f)) {
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
            stopping,
            talk,
        })
    }

    /// Stops taking frames and waits until everything taken is flushed and indexed.
    pub async fn stop(mut self) {
        if let Some(out) = self.talk.take() {
            out.detach_recording();
        }
        self.stopping.store(true, Ordering::Release);
        self.task.abort();
        let _ = (&mut self.task).await; // drops the sender: the thread drains and closes
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
