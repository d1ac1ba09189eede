//! # ipcamd-store: continuous recording, replay reads, retention, MP4 import/export
//!
//! The design, format and crash-safety argument are in `docs/store.md`; this is the map.
//!
//! ```text
//!  Source / live Stream --AccessUnit--> Recorder --bytes--> <root>/<camera>/<id>.seg
//!                                          |  (fdatasync, then)
//!                                          +--rows--> <root>/index.sqlite (WAL)
//!  replay / export <--StoredFrame-- Reader <--O(log n) lookups + per-frame blob--+
//! ```
//!
//! Three times meet here: a unit's media `pts` (its track's clock, kept for RTP
//! timestamps), its capture `wallclock` (UTC µs: the replay timeline, ONVIF NTP
//! timestamps, retention by age) and "now" (the monotonic clock, used only for the flush and
//! disk-full retry timers). Footage is cut into *sections* (contiguous runs: a new one on
//! recorder start, a gap > `max_gap`, a clock step back, disk-full resume) and each section
//! into *segments* (about `segment_duration`, cut at a video keyframe).
//!
//! The store format is hand-written (no crate stores per-frame wallclocks of several tracks
//! crash-safely in a form that answers ONVIF start-point and reverse-GOP queries): raw
//! sample files plus a SQLite index with a compact per-frame varint blob, as Moonfire NVR
//! does.
//!
//! Async callers use [`AsyncStore`] ([`Store::to_async`]): the same calls on the store's own
//! two threads. Several processes may open one store: one primary ([`Store::open`]), shared
//! writers of other cameras ([`Store::open_shared`]), readers ([`Store::open_read_only`]).
//! MP4 exports are virtual files ([`ExportFile`]): planned from the index, any byte range
//! written on demand.
//!
//! Left out: several streams per camera, per-frame checksums, a store spread over several
//! disks (docs/store.md "Left out").

#[doc(hidden)]
pub mod crashpoint;
mod db;
mod export;
mod faults;
mod format;
mod handle;
mod locks;
mod reader;
mod recorder;
mod recovery;
pub mod replay;
mod retention;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipcamd_media::{Source, SourceError};
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::time::UnixMicros;

use db::DbContext;
pub use export::{ExportFile, ExportReader, ExportReport, LiveFmp4, PERIOD_US, READ_WINDOW};
pub use handle::{AsyncStore, POOL_THREADS};
pub use reader::{Direction, Reader, StoredFrame};
pub use recorder::Recorder;

/// Errors of the store. Corruption found in files is not an error: it is logged and
/// skipped or repaired; errors are for what the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("index: {what}: {source}")]
    Db {
        what: String,
        source: rusqlite::Error,
    },
    #[error("{0}: the store is open in another process or Store handle")]
    Locked(String),
    #[error("{0}: the store is open read-only here; recording and import need a writer")]
    ReadOnly(String),
    #[error(
        "camera {0}: another process (the ipcamd server?) is recording it; stop that \
         recording first (set record = false for this camera and restart the server, or stop \
         the server), or import under another camera name"
    )]
    RecordedElsewhere(String),
    #[error("index is not usable: {0}")]
    Corrupt(String),
    #[error("camera name {0:?} is not [A-Za-z0-9._-]{{1,64}} (without a leading dot)")]
    BadCameraName(String),
    #[error("camera {0}: no such recording")]
    NoSuchCamera(String),
    #[error("camera {0}: a recorder is already running")]
    Busy(String),
    #[error("camera {camera}: a recorder needs at least one track")]
    NoTracks { camera: String },
    #[error("camera {camera}: unit for track {track}, but the recorder has {tracks} tracks")]
    BadTrack {
        camera: String,
        track: usize,
        tracks: usize,
    },
    #[error("recorder for camera {0} is closed")]
    Closed(String),
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("export: {0}")]
    Export(String),
    #[error("store worker: {0}")]
    Worker(String),
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether this error means the disk (or a quota) is full.
    pub fn is_disk_full(&self) -> bool {
        self.write_fault() == WriteFault::DiskFull
    }

    /// What kind of write failure this is (what the operator has to fix).
    pub fn write_fault(&self) -> WriteFault {
        match self {
            StoreError::Io { source, .. } => WriteFault::of_io(source),
            StoreError::Db { source, .. } => db::write_fault(source),
            _ => WriteFault::Other,
        }
    }
}

/// Why the store could not write, by what the operator has to do about it (the
/// recorder's log line and [`Recorder::stopped_reason`] say which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// `ENOSPC`, `EDQUOT`, `SQLITE_FULL`: free space or lower the retention limits.
    DiskFull,
    /// `EROFS`, `SQLITE_READONLY`: the file system (or the folder's mount) is read-only.
    ReadOnly,
    /// `EACCES`, `EPERM`: the server's user may not write there.
    Permission,
    /// `EMFILE`, `ENFILE`: the process (or system) is out of file descriptors.
    OutOfFiles,
    /// Anything else (`EIO`: a failing disk, ...).
    Other,
}

impl WriteFault {
    fn of_io(e: &std::io::Error) -> WriteFault {
        // Linux numbers: EPERM 1, EACCES 13, ENFILE 23, EMFILE 24, ENOSPC 28, EROFS 30,
        // EDQUOT 122.
        if io_is_disk_full(e) {
            return WriteFault::DiskFull;
        }
        match (e.kind(), e.raw_os_error()) {
            (std::io::ErrorKind::ReadOnlyFilesystem, _) | (_, Some(30)) => WriteFault::ReadOnly,
            (std::io::ErrorKind::PermissionDenied, _) | (_, Some(1 | 13)) => WriteFault::Permission,
            (_, Some(23 | 24)) => WriteFault::OutOfFiles,
            _ => WriteFault::Other,
        }
    }

    /// What happened, for log lines and the API ("the disk is full", ...).
    pub fn what(self) -> &'static str {
        match self {
            WriteFault::DiskFull => "disk full",
            WriteFault::ReadOnly => "the recording folder is read-only",
            WriteFault::Permission => "no permission to write the recording folder",
            WriteFault::OutOfFiles => "out of file descriptors",
            WriteFault::Other => "write error",
        }
    }

    /// What to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            WriteFault::DiskFull => "free space, or lower [store] max_gb / max_age_days",
            WriteFault::ReadOnly => {
                "make it writable again (remount it read-write; check the kernel log: a file \
                 system remounts itself read-only after errors)"
            }
            WriteFault::Permission => {
                "let the server's user write the data folder again (chown/chmod)"
            }
            WriteFault::OutOfFiles => {
                "raise the server's open-files limit (ulimit -n, systemd LimitNOFILE=) or \
                 lower [limits] max_connections"
            }
            WriteFault::Other => "check the disk (kernel log, SMART)",
        }
    }
}

fn io_is_disk_full(e: &std::io::Error) -> bool {
    // ENOSPC = 28, EDQUOT = 122 on Linux.
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122))
}

/// How a [`Store`] handle opened the store (docs/store.md "Several processes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The one primary opener ([`Store::open`]: the server, or a command while no server
    /// runs): recovers the store at open, applies retention, records.
    Primary,
    /// A writer next to a running primary ([`Store::open_shared`], e.g. `ipcamd import`
    /// while the server runs): records cameras that no other process records; no recovery,
    /// no retention.
    Shared,
    /// Reads only ([`Store::open_read_only`], e.g. `ipcamd export`): takes no lock, writes
    /// nothing.
    ReadOnly,
}

/// Retention limits of one camera.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many bytes of sample files for the camera.
    pub max_bytes: Option<u64>,
    /// Delete footage whose last unit is older than this (overrides `StoreOptions::max_age`).
    pub max_age: Option<Duration>,
}

/// How the store records and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Length of a segment (one sample file); it is cut at the first video keyframe after
    /// this, and unconditionally at twice this. Default 60 s.
    pub segment_duration: Duration,
    /// Frames are made durable and indexed this often (real time). A `kill -9` loses at most
    /// about this much. Default 2 s.
    pub flush_interval: Duration,
    /// A wallclock gap longer than this between consecutive units starts a new section.
    /// Default 2 s.
    pub max_gap: Duration,
    /// While writing is stopped by an error (disk full, read-only or unwritable folder, no
    /// file descriptors, I/O error), try to resume this often. Default 5 s.
    pub disk_full_retry: Duration,
    /// Global limit on the bytes of all sample files.
    pub max_bytes: Option<u64>,
    /// Global age limit (a camera's own `Retention::max_age` overrides it).
    pub max_age: Option<Duration>,
    /// Per-camera limits, by camera name.
    pub per_camera: HashMap<String, Retention>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_duration: Duration::from_secs(60),
            flush_interval: Duration::from_secs(2),
            max_gap: Duration::from_secs(2),
            disk_full_retry: Duration::from_secs(5),
            max_bytes: None,
            max_age: None,
            per_camera: HashMap::new(),
        }
    }
}

/// One contiguous run of recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    pub id: u64,
    /// Wallclock of the earliest unit (UTC µs).
    pub start: UnixMicros,
    /// Wallclock of the latest unit flushed so far (UTC µs).
    pub end: UnixMicros,
    pub bytes: u64,
    pub frames: u64,
    /// A recorder is still appending to it.
    pub recording: bool,
    /// The tracks it was recorded with (a `StoredFrame::track` indexes this list).
    pub tracks: Vec<TrackInfo>,
}

/// What is stored for one camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub camera: String,
    /// The tracks of the latest recorder (see `SectionInfo::tracks` for older footage).
    pub tracks: Vec<TrackInfo>,
    /// Oldest first.
    pub sections: Vec<SectionInfo>,
    pub bytes: u64,
    pub frames: u64,
}

impl RecordingInfo {
    /// Codec names of `tracks`, e.g. `["H264", "PCMU"]`.
    pub fn codec_names(&self) -> Vec<&str> {
        self.tracks.iter().map(|t| t.codec.name()).collect()
    }
}

/// What `apply_retention` deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: u64,
    pub deleted_bytes: u64,
    /// Segments that were due but pinned by a reader or being written.
    pub skipped_in_use: u64,
}

/// What `import_source` stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub frames: u64,
    pub bytes: u64,
    /// Wallclock of the first and last imported unit.
    pub start: UnixMicros,
    pub end: UnixMicros,
    /// Units dropped because the disk was full.
    pub dropped: u64,
}

/// A handle to an open store; clones share it. See the crate doc.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    root: PathBuf,
    opts: StoreOptions,
    mode: OpenMode,
    /// The primary opener's lock file (`None` in the other modes), held while open.
    _lock: Option<locks::FileLock>,
    /// Lock order (docs/store.md "Locks"): `db` may be held while taking `state`, never
    /// the reverse; a camera lock file is taken before either.
    db: Mutex<rusqlite::Connection>,
    state: Mutex<Shared>,
    /// The threads of [`AsyncStore`] (short jobs, long jobs), started on first use.
    pool: std::sync::OnceLock<handle::Pool>,
    long_pool: std::sync::OnceLock<handle::Pool>,
    /// Test hook: every sample-file write fails with ENOSPC while set.
    #[cfg(test)]
    fault_disk_full: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Shared {
    /// Segment id -> number of readers holding it.
    pins: HashMap<i64, usize>,
    /// Segments a recorder is appending to.
    writing: HashSet<i64>,
    /// Cameras with a running recorder in this process.
    recording: HashSet<i64>,
    /// Sections a recorder of this process gave up after a write error whose row still
    /// says `open` because the index could not be written either (a full disk): they are
    /// not being recorded. The recorder closes the row once the disk has room again;
    /// otherwise the next primary open's recovery does.
    unclosed: HashSet<i64>,
}

impl Shared {
    fn in_use(&self, segment: i64) -> bool {
        self.writing.contains(&segment) || self.pins.get(&segment).is_some_and(|&n| n > 0)
    }
}

/// Locks a mutex, ignoring poisoning (the data behind our mutexes stays consistent: every
/// update is a single assignment or a committed SQL transaction).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current UTC time in µs (the media crate's clock read, re-exported for callers).
pub use ipcamd_media::pacer::now_micros;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens the store at `root` (creating it if needed) as its primary opener, recovers it
    /// after a crash (see docs/store.md "Recovery"; everything repaired is logged) and locks
    /// it against a second primary opener ([`StoreError::Locked`]). Cameras that another
    /// process is recording into ([`Store::open_shared`]) are left to be recovered later.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        faults::init();
        std::fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let lock_path = locks::store_lock_path(root);
        let Some(lock) = locks::try_lock(&lock_path)? else {
            return Err(StoreError::Locked(root.display().to_string()));
        };
        let store = Store::with_connection(root, opts, OpenMode::Primary, Some(lock))?;
        recovery::recover(&store)?;
        Ok(store)
    }

    /// Opens a store that a primary opener (normally the running server) holds, to record
    /// cameras nobody else records, e.g. `ipcamd import` while the server runs. Each
    /// recorder takes its camera's lock file ([`StoreError::RecordedElsewhere`] if another
    /// process records that camera). It neither recovers nor applies retention: both stay
    /// the primary's job. Works without a primary too (then nothing is recovered).
    pub fn open_shared(root: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        Store::with_connection(root, opts, OpenMode::Shared, None)
    }

    /// Opens a store for reading only (e.g. `ipcamd export` while the server records): no
    /// lock, no recovery, no writes. Segments that the primary deletes by retention while
    /// this handle reads them give a read error naming the file (pins are per process).
    pub fn open_read_only(root: &Path) -> Result<Store, StoreError> {
        Store::with_connection(root, StoreOptions::default(), OpenMode::ReadOnly, None)
    }

    fn with_connection(
        root: &Path,
        opts: StoreOptions,
        mode: OpenMode,
        lock: Option<locks::FileLock>,
    ) -> Result<Store, StoreError> {
        let conn = db::open(&root.join("index.sqlite"), mode)?;
        let inner = Inner {
            root: root.to_path_buf(),
            opts,
            mode,
            _lock: lock,
            db: Mutex::new(conn),
            state: Mutex::new(Shared::default()),
            pool: std::sync::OnceLock::new(),
            long_pool: std::sync::OnceLock::new(),
            #[cfg(test)]
            fault_disk_full: std::sync::atomic::AtomicBool::new(false),
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// How this handle opened the store.
    pub fn mode(&self) -> OpenMode {
        self.inner.mode
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    pub(crate) fn segment_path(&self, camera: &str, segment: i64) -> PathBuf {
        self.inner.root.join(camera).join(format!("{segment}.seg"))
    }

    /// Starts recording `camera` with these tracks: a new section begins with the first
    /// unit pushed. If the tracks differ from the camera's previous ones, the new sections
    /// carry the new track list (older footage keeps its own). One recorder per camera.
    pub fn recorder(&self, camera: &str, tracks: &[TrackInfo]) -> Result<Recorder, StoreError> {
        recorder::Recorder::start(self, camera, tracks)
    }

    /// Every camera with footage, by name.
    pub fn recordings(&self) -> Result<Vec<RecordingInfo>, StoreError> {
        let conn = lock(&self.inner.db);
        let mut out = Vec::new();
        for (id, name) in db::cameras(&conn)? {
            if let Some(info) = recording_info(&conn, &self.inner.state, id, &name)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// One camera's footage; `None` if it has none.
    pub fn recording(&self, camera: &str) -> Result<Option<RecordingInfo>, StoreError> {
        let conn = lock(&self.inner.db);
        match db::camera_id(&conn, camera)? {
            Some(id) => recording_info(&conn, &self.inner.state, id, camera),
            None => Ok(None),
        }
    }

    /// Deletes the oldest segments beyond the age and size limits (docs/store.md
    /// "Retention"), never one a reader has pinned or a recorder is writing, nor any
    /// segment of a section another process is recording. Only the primary opener applies
    /// retention: in the other modes this does nothing.
    pub fn apply_retention(&self) -> Result<RetentionReport, StoreError> {
        retention::apply(self, now_micros())
    }

    /// [`Store::apply_retention`] as if the time were `now` (for tests and tools).
    pub fn apply_retention_at(&self, now: UnixMicros) -> Result<RetentionReport, StoreError> {
        retention::apply(self, now)
    }

    /// Records `source` into `camera` as fast as it produces units, until a unit's wallclock
    /// reaches `until` or the source ends. `progress(done, total)` is called with footage
    /// microseconds since the first unit, about every second of footage and at the end.
    pub fn import_source(
        &self,
        camera: &str,
        source: &mut dyn Source,
        until: UnixMicros,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportReport, StoreError> {
        let tracks = source.tracks().to_vec();
        let mut rec = self.recorder(camera, &tracks)?;
        let mut report = ImportReport::default();
        let mut first: Option<UnixMicros> = None;
        let mut last_progress = i64::MIN;
        loop {
            let au = match source.next_au() {
                Ok(au) => au,
                Err(SourceError::End) => break,
                Err(e) => {
                    if let Err(close) = rec.close() {
                        tracing::warn!(camera, "import: closing the recorder: {close}");
                    }
                    return Err(e.into());
                }
            };
            if au.wallclock >= until {
                break;
            }
            let start = *first.get_or_insert(au.wallclock);
            rec.push(&au)?;
            report.frames += 1;
            report.bytes += au.data.len() as u64;
            report.end = if report.frames == 1 {
                au.wallclock
            } else {
                report.end.max(au.wallclock)
            };
            if au.wallclock.saturating_sub(last_progress) >= 1_000_000 {
                last_progress = au.wallclock;
                progress(
                    u64::try_from(au.wallclock.saturating_sub(start)).unwrap_or(0),
                    u64::try_from(until.saturating_sub(start)).unwrap_or(0),
                );
            }
        }
        report.dropped = rec.dropped_units();
        report.frames -= report.dropped.min(report.frames);
        rec.close()?;
        if let Some(start) = first {
            report.start = start;
            let total = u64::try_from(until.saturating_sub(start)).unwrap_or(0);
            progress(total, total);
        }
        Ok(report)
    }

    /// A reader of `camera`'s footage, positioned before the first unit (forward) and after
    /// the last (reverse) until [`Reader::seek`].
    pub fn reader(&self, camera: &str) -> Result<Reader, StoreError> {
        Reader::new(self, camera)
    }

    pub(crate) fn pin(&self, segment: i64) {
        *lock(&self.inner.state).pins.entry(segment).or_insert(0) += 1;
    }

    pub(crate) fn unpin(&self, segment: i64) {
        let mut state = lock(&self.inner.state);
        if let Some(n) = state.pins.get_mut(&segment) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.pins.remove(&segment);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn set_fault_disk_full(&self, on: bool) {
        self.inner
            .fault_disk_full
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    #[cfg(test)]
    fn fault_disk_full(&self) -> bool {
        self.inner
            .fault_disk_full
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    #[cfg(not(test))]
    fn fault_disk_full(&self) -> bool {
        false
    }
}

/// Decodes a track set, logging (not failing) if the row is corrupt.
fn track_set(conn: &rusqlite::Connection, id: i64) -> Result<Option<Vec<TrackInfo>>, StoreError> {
    let Some(blob) = db::track_set_blob(conn, id)? else {
        tracing::warn!("index: track set {id} is missing");
        return Ok(None);
    };
    match format::decode_tracks(&blob) {
        Ok(tracks) => Ok(Some(tracks)),
        Err(e) => {
            tracing::warn!("index: track set {id} is corrupt ({e}); its sections are skipped");
            Ok(None)
        }
    }
}

fn recording_info(
    conn: &rusqlite::Connection,
    state: &Mutex<Shared>,
    camera_id: i64,
    name: &str,
) -> Result<Option<RecordingInfo>, StoreError> {
    let rows = db::sections_of(conn, camera_id)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let unclosed = lock(state).unclosed.clone();
    let mut sets: HashMap<i64, Option<Vec<TrackInfo>>> = HashMap::new();
    let mut sections = Vec::with_capacity(rows.len());
    let (mut bytes, mut frames) = (0, 0);
    for r in rows {
        if let std::collections::hash_map::Entry::Vacant(e) = sets.entry(r.track_set_id) {
            e.insert(track_set(conn, r.track_set_id)?);
        }
        let Some(Some(tracks)) = sets.get(&r.track_set_id) else {
            continue;
        };
        bytes += r.bytes;
        frames += r.frames;
        sections.push(SectionInfo {
            id: r.id as u64,
            start: r.start_us,
            end: r.end_us,
            bytes: r.bytes,
            frames: r.frames,
            recording: r.open && !unclosed.contains(&r.id),
            tracks: tracks.clone(),
        });
    }
    let latest: Option<i64> = conn
        .query_row(
            "SELECT MAX(id) FROM track_sets WHERE camera_id = ?1",
            [camera_id],
            |r| r.get(0),
        )
        .db("find the latest track set")?;
    let tracks = match latest {
        Some(id) => track_set(conn, id)?.unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Some(RecordingInfo {
        camera: name.to_string(),
        tracks,
        sections,
        bytes,
        frames,
    }))
}
