//! Continuous recording of live cameras into the store: one reader of the camera's fan-out
//! per recorded camera (a tokio task), handing frames to a thread that owns the store's
//! `Recorder` (store writes are blocking file and SQLite I/O, kept off the runtime).
//!
//! If the disk cannot keep up, the queue between the two (1500 frames: about 20 s of a
//! 25 fps camera with audio) fills and frames are dropped and counted
//! ([`RecordStatus::dropped`], `/api/stats`); after a drop the recording goes on from the
//! next keyframe, so what is stored always restarts at a sync point. The log says so once
//! when the dropping starts and once when the recording has caught up (no drop for
//! [`CAUGHT_UP`]), not per frame. The fan-out reader itself skips to the next keyframe
//! when it falls behind.
//!
//! A write error (disk full, read-only folder, ...) stops the store's recorder until it
//! can write again (`ipcamd_store::Recorder::push`): the writer thread publishes why in
//! [`RecordStatus`] (`/api/stats`, `/api/recordings`) and clears [`Recording::active`]
//! (the ONVIF recording job's state) meanwhile.
//!
//! The recording job's mode ([`Recording::mode`], ONVIF SetRecordingJobMode): while Idle
//! the fan-out reader is dropped and the section being written is closed; back to Active,
//! a new section starts at the current GOP.
//!
//! A camera whose backchannel has the `record` output is recorded with one more track, the
//! talk audio ([`talk`]); its units reach the writer thread through the same queue. The
//! caller connects the returned [`TalkRecordSink`] to the camera's audio output.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipcamd_media::fanout::{Frame, Next, Stream};
use ipcamd_media::AccessUnit;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_store::{Recorder, Store};

pub mod talk;

use talk::{talk_track, TalkRecordSink};

/// What the writer thread stores: the camera's tracks (a new recorder, hence a new section,
/// when they change), a live frame, or a unit of talk audio.
pub enum RecordItem {
    Tracks(Arc<Vec<TrackInfo>>),
    Frame(Arc<Frame>),
    Talk(AccessUnit),
}

/// How long [`Recording::stop`] waits for the writer thread to store what was queued.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Frames queued between the fan-out and the writer thread.
const QUEUE: usize = 1500;

/// A dropping episode ends (and is logged as over) after this long without a drop.
pub const CAUGHT_UP: Duration = Duration::from_secs(10);

/// What a running recording shows in `/api/stats`, `/api/recordings` and `/metrics`.
#[derive(Debug, Default)]
pub struct RecordStatus {
    /// Frames not recorded because the queue to the writer thread was full (the disk was
    /// behind), and those skipped after them up to the next keyframe.
    pub dropped: AtomicU64,
    /// Why the store stopped writing (a write error), while it is stopped.
    stopped: Mutex<Option<String>>,
}

impl RecordStatus {
    /// Why writing is stopped now, if it is.
    pub fn stopped_reason(&self) -> Option<String> {
        crate::sync::lock(&self.stopped).clone()
    }

    fn set_stopped(&self, why: Option<String>) {
        *crate::sync::lock(&self.stopped) = why;
    }
}

/// A running recording of one camera.
pub struct Recording {
    pub camera: String,
    pub status: Arc<RecordStatus>,
    /// Whether a section is being written now (the stream has tracks and the store took
    /// them); the ONVIF recording job event reads it.
    pub active: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set by `stop`: talk sinks may still hold senders, so the thread cannot wait for
    /// the queue to close.
    stopping: Arc<AtomicBool>,
    /// The job's mode: true = Active (recording), false = Idle.
    pub mode: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The writer thread's side: owns the store's `Recorder` of the current tracks.
struct Writer {
    store: Store,
    camera: String,
    talk: bool,
    /// The camera's tracks (without the talk track) and their recorder.
    tracks: Arc<Vec<TrackInfo>>,
    recorder: Option<Recorder>,
    errors: u64,
    active: Arc<AtomicBool>,
    status: Arc<RecordStatus>,
    /// Whether the recorder was suspended after the last push (to publish changes only).
    suspended: bool,
}

impl Writer {
    fn push(&mut self, item: RecordItem) {
        let (au, talk) = match item {
            RecordItem::Tracks(t) => return self.retrack(t),
            RecordItem::Frame(f) => (f.au.clone(), false),
            RecordItem::Talk(au) => (au, true),
        };
        let Some(recorder) = self.recorder.as_mut() else {
            return; // no tracks yet: nothing to record into
        };
        let mut au = au;
        if talk {
            // The talk track follows the camera's, whatever their number now.
            au.track = self.tracks.len();
        }
        if let Err(e) = recorder.push(&au) {
            self.errors += 1;
            if self.errors == 1 || self.errors.is_multiple_of(1000) {
                tracing::error!(camera = %self.camera, error = %e, errors = self.errors, "recording write failed");
            }
        }
        let suspended = recorder.is_suspended();
        if suspended != self.suspended {
            self.suspended = suspended;
            self.status.set_stopped(recorder.stopped_reason());
            self.active.store(!suspended, Ordering::Relaxed);
        }
    }

    /// New tracks: the recorder of the old ones closes, a new one (a new section) opens.
    fn retrack(&mut self, tracks: Arc<Vec<TrackInfo>>) {
        if tracks == self.tracks && self.recorder.is_some() {
            return;
        }
        self.close();
        self.tracks = tracks.clone();
        if tracks.is_empty() {
            return;
        }
        let mut all = (*tracks).clone();
        if self.talk {
            all.push(talk_track());
        }
        match self.store.recorder(&self.camera, &all) {
            Ok(r) => {
                let codecs: Vec<&str> = all.iter().map(|t| t.codec.name()).collect();
                tracing::info!(camera = %self.camera, tracks = %codecs.join("+"), "recording");
                self.recorder = Some(r);
                self.active.store(true, Ordering::Relaxed);
                self.suspended = false;
                self.status.set_stopped(None);
            }
            Err(e) => {
                tracing::error!(camera = %self.camera, error = %e, "cannot record the camera's new tracks");
                self.status
                    .set_stopped(Some(format!("cannot record the camera's tracks: {e}")));
            }
        }
    }

    fn close(&mut self) {
        self.active.store(false, Ordering::Relaxed);
        self.suspended = false;
        self.status.set_stopped(None);
        if let Some(r) = self.recorder.take() {
            if let Err(e) = r.close() {
                tracing::error!(camera = %self.camera, error = %e, "recording did not close cleanly");
            }
        }
    }
}

impl Recording {
    /// Starts recording `stream` (a new section of the camera's recording begins with its
    /// first frame; a stream without tracks yet is recorded once it has some, and again in
    /// a new section whenever they change). With `talk` (the camera's backchannel has the
    /// `record` output) the recording gets the talk track, and the sink its audio goes to
    /// is returned.
    /// `job_active` is the job's mode to start in (Idle: nothing is written until
    /// [`Recording::mode`] says Active).
    pub fn start(
        store: &Store,
        stream: Arc<Stream>,
        talk: bool,
        job_active: bool,
    ) -> Result<(Recording, Option<Arc<TalkRecordSink>>), ipcamd_store::StoreError> {
        let camera = stream.name().to_owned();
        let (tx, rx) = sync_channel::<RecordItem>(QUEUE);
        let sink = talk.then(|| {
            tracing::info!(camera = %camera, "talk audio is recorded (PCMU 8 kHz track after the camera's)");
            TalkRecordSink::new(tx.clone(), stream.tracks().len())
        });
        let status = Arc::new(RecordStatus::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let active = Arc::new(AtomicBool::new(false));
        let mut writer = Writer {
            store: store.clone(),
            camera: camera.clone(),
            talk,
            tracks: Arc::new(Vec::new()),
            recorder: None,
            errors: 0,
            active: active.clone(),
            status: status.clone(),
            suspended: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("record-{camera}"))
            .spawn(move || {
                loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(item) => writer.push(item),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    if stop.load(Ordering::Acquire) {
                        // Store what was queued before the stop, then close.
                        while let Ok(item) = rx.try_recv() {
                            writer.push(item);
                        }
                        break;
                    }
                }
                writer.close();
                tracing::info!(camera = %writer.camera, "recording stopped");
            })
            .map_err(|e| ipcamd_store::StoreError::Io {
                path: format!("record-{camera} thread"),
                source: e,
            })?;
        let mode = Arc::new(tokio::sync::watch::Sender::new(job_active));
        if !job_active {
            tracing::info!(camera = %camera, "recording job is Idle: nothing is recorded until it is Active");
        }
        let task = tokio::spawn(feed(stream, tx, status.clone(), mode.subscribe()));
        Ok((
            Recording {
                camera,
                status,
                active,
                task,
                thread: Some(thread),
                stopping,
                mode,
            },
            sink,
        ))
    }

    /// Stops taking frames and waits until everything taken is flushed and indexed, or
    /// [`STOP_WAIT`] at most: a stalled disk must not hold a shutdown forever. Frames
    /// still queued then are not stored; the thread is left to the process's exit, and
    /// the section is closed by the next start's recovery (docs/store.md).
    pub async fn stop(mut self) {
        self.stopping.store(true, Ordering::Release);
        self.task.abort();
        let _ = (&mut self.task).await; // drops the sender: the thread drains and closes
        let Some(t) = self.thread.take() else { return };
        let start = std::time::Instant::now();
        while !t.is_finished() {
            if start.elapsed() >= STOP_WAIT {
                tracing::warn!(
                    camera = %self.camera,
                    wait_s = STOP_WAIT.as_secs(),
                    "recording: the disk did not take the queued frames in time (a stalled or \
                     very slow disk); stopping without them: at most the queue, {QUEUE} frames, \
                     is lost, and the next start closes the section"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = t.join();
    }
}

/// The feed's drops: counted, logged once per episode, and followed by a skip to the
/// next keyframe.
struct Drops {
    camera: String,
    status: Arc<RecordStatus>,
    /// The running episode: when it started, the count then, the last drop.
    episode: Option<(Instant, u64, Instant)>,
    /// Frames are skipped until the next sync point (a video keyframe; any frame of an
    /// audio-only stream).
    to_keyframe: bool,
}

impl Drops {
    fn drop_one(&mut self) {
        let n = self.status.dropped.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        self.to_keyframe = true;
        match &mut self.episode {
            Some((_, _, last)) => *last = now,
            None => {
                tracing::warn!(
                    camera = %self.camera,
                    "recording cannot keep up (the disk is slower than the camera): frames \
                     are dropped while the queue to the disk is full, and the recording goes \
                     on from the next keyframe (counted in /api/stats \
                     recording_dropped_frames; logged again when it has caught up)"
                );
                self.episode = Some((now, n, now));
            }
        }
    }

    /// Whether `f` is to be skipped (after a drop, until a sync point).
    fn skip(&mut self, f: &Frame, has_video: bool) -> bool {
        if self.to_keyframe && f.keyframe && (f.video || !has_video) {
            self.to_keyframe = false;
        }
        if self.to_keyframe {
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.to_keyframe
    }

    /// A frame was queued: ends the episode after [`CAUGHT_UP`] without drops.
    fn queued(&mut self) {
        if let Some((start, at_start, last)) = self.episode {
            if last.elapsed() >= CAUGHT_UP {
                let n = self.status.dropped.load(Ordering::Relaxed) - at_start;
                tracing::info!(
                    camera = %self.camera,
                    "recording caught up: {n} frames were dropped over {} s",
                    last.duration_since(start).as_secs().max(1)
                );
                self.episode = None;
            }
        }
    }
}

/// Hands the stream's tracks and frames to the writer thread; follows the stream when its
/// tracks change (a reader of replaced tracks ends: a new one is taken). Never blocks: a
/// full queue drops frames (counted, see [`Drops`]), and a change of tracks waits for room
/// ahead of them.
async fn feed(
    stream: Arc<Stream>,
    tx: SyncSender<RecordItem>,
    status: Arc<RecordStatus>,
    mut mode: tokio::sync::watch::Receiver<bool>,
) {
    let name = stream.name().to_owned();
    let mut layout = stream.layout();
    let mut drops = Drops {
        camera: name.clone(),
        status,
        episode: None,
        to_keyframe: false,
    };
    loop {
        // Idle: no reader, nothing queued, until the job is Active again.
        while !*mode.borrow_and_update() {
            if mode.changed().await.is_err() {
                return;
            }
        }
        layout.borrow_and_update();
        let mut pending = Some(stream.tracks());
        let mut has_video = has_video_track(&stream);
        let (mut reader, _) = stream.subscribe();
        loop {
            let f = tokio::select! {
                n = reader.recv() => match n {
                    Next::Frame(f) => f,
                    Next::Closed => break, // new tracks: subscribe again
                },
                m = mode.changed() => {
                    if m.is_err() {
                        return;
                    }
                    if *mode.borrow() {
                        continue;
                    }
                    // Idle: no tracks = the writer closes the section.
                    tracing::info!(camera = %name, "recording job Idle: recording stops");
                    let mut item = RecordItem::Tracks(Arc::new(Vec::new()));
                    loop {
                        match tx.try_send(item) {
                            Ok(()) => break,
                            Err(TrySendError::Full(back)) => {
                                item = back;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err(TrySendError::Disconnected(_)) => return,
                        }
                    }
                    break;
                },
                changed = layout.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    layout.borrow_and_update();
                    pending = Some(stream.tracks());
                    has_video = has_video_track(&stream);
                    continue;
                }
            };
            if let Some(t) = pending.take() {
                match tx.try_send(RecordItem::Tracks(t)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(RecordItem::Tracks(t))) => {
                        pending = Some(t);
                        drops.drop_one();
                        continue;
                    }
                    Err(_) => return,
                }
            }
            if drops.skip(&f, has_video) {
                continue;
            }
            match tx.try_send(RecordItem::Frame(f)) {
                Ok(()) => drops.queued(),
                Err(TrySendError::Full(_)) => drops.drop_one(),
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

fn has_video_track(stream: &Stream) -> bool {
    stream
        .tracks()
        .iter()
        .any(|t| t.kind() == ipcamd_proto::codec::MediaKind::Video)
}
