//! The write path (docs/store.md "Write path and the crash-safety argument"): a
//! [`Recorder`] appends one camera's access units to sample files and indexes them, cutting
//! sections and segments, flushing data before index rows, and riding out write failures
//! (a full disk, a read-only or unwritable folder, no file descriptors, I/O errors).
//!
//! Left out: pacing (the caller pushes units when it has them), reordering (units are
//! stored in the order pushed), and splitting one unit across segments.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use ipcamd_media::AccessUnit;
use ipcamd_proto::codec::{MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;
use rusqlite::{params, OptionalExtension};

use crate::db::{self, DbContext};
use crate::format::{self, BlobWriter};
use crate::{lock, locks, micros, OpenMode, Store, StoreError, WriteFault};

/// Unflushed bytes beyond this are written to the file (without fsync) right away.
const WRITE_BUFFER: usize = 1 << 20;

/// Records one camera; see the module doc and [`Store::recorder`].
pub struct Recorder {
    store: Store,
    camera: String,
    camera_id: i64,
    dir: PathBuf,
    tracks: Vec<TrackInfo>,
    track_set_id: i64,
    seek_track: u32,
    has_video: bool,
    section: Option<OpenSection>,
    /// Latest wallclock of the current section, and per track.
    last_wall: Option<UnixMicros>,
    last_wall_track: Vec<Option<UnixMicros>>,
    suspended: Option<Suspended>,
    dropped: u64,
    /// Sections given up whose row could not be closed (see `Shared::unclosed`).
    unclosed: Vec<i64>,
    closed: bool,
    last_flush: Instant,
    /// The camera's lock file, held for the recorder's life.
    _camera_lock: locks::FileLock,
}

struct OpenSection {
    id: i64,
    seg: OpenSegment,
}

struct OpenSegment {
    id: i64,
    path: PathBuf,
    file: File,
    blob: BlobWriter,
    /// Pushed bytes not yet written to the file.
    buf: Vec<u8>,
    /// Everything pushed (flushed or not).
    bytes: u64,
    frames: u64,
    first_wall: UnixMicros,
    start_us: UnixMicros,
    end_us: UnixMicros,
    first_key_us: Option<UnixMicros>,
    last_key_us: Option<UnixMicros>,
    /// What the index references.
    flushed_bytes: u64,
    flushed_frames: u64,
}

/// Writing stopped after a write error; see [`Recorder::push`].
struct Suspended {
    next_retry: Instant,
    dropped_at_start: u64,
    /// The kind of the error that stopped it, and the error (the latest retry's).
    fault: WriteFault,
    reason: String,
}

impl Recorder {
    pub(crate) fn start(
        store: &Store,
        camera: &str,
        tracks: &[TrackInfo],
    ) -> Result<Recorder, StoreError> {
        if !format::valid_camera_name(camera) {
            return Err(StoreError::BadCameraName(camera.to_string()));
        }
        if tracks.is_empty() {
            return Err(StoreError::NoTracks {
                camera: camera.to_string(),
            });
        }
        if store.inner.mode == OpenMode::ReadOnly {
            return Err(StoreError::ReadOnly(store.inner.root.display().to_string()));
        }
        let dir = store.inner.root.join(camera);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        // The camera's lock file first (docs/store.md "Several processes"): with it held, no
        // other process writes this camera's rows or files. A recorder of this process
        // holds it too: tell that case (Busy) from another process (RecordedElsewhere).
        let camera_lock =
            match locks::try_lock(&locks::camera_lock_path(&store.inner.root, camera))? {
                Some(l) => l,
                None => {
                    let conn = lock(&store.inner.db);
                    let ours = db::camera_id(&conn, camera)?
                        .is_some_and(|id| lock(&store.inner.state).recording.contains(&id));
                    return Err(if ours {
                        StoreError::Busy(camera.to_string())
                    } else {
                        StoreError::RecordedElsewhere(camera.to_string())
                    });
                }
            };
        let conn = lock(&store.inner.db);
        let camera_id = match db::camera_id(&conn, camera)? {
            Some(id) => id,
            None => {
                conn.execute("INSERT INTO cameras (name) VALUES (?1)", [camera])
                    .db("add a camera")?;
                conn.last_insert_rowid()
            }
        };
        let encoded = format::encode_tracks(tracks);
        let latest: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT id, tracks FROM track_sets WHERE camera_id = ?1 ORDER BY id DESC LIMIT 1",
                [camera_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db("find the latest track set")?;
        let track_set_id = match latest {
            Some((id, blob)) if blob == encoded => id,
            _ => {
                conn.execute(
                    "INSERT INTO track_sets (camera_id, tracks) VALUES (?1, ?2)",
                    params![camera_id, encoded],
                )
                .db("add a track set")?;
                let id = conn.last_insert_rowid();
                tracing::info!(camera, "recording with tracks {:?} (track set {id})", {
                    tracks.iter().map(|t| t.codec.name()).collect::<Vec<_>>()
                });
                id
            }
        };
        {
            let mut state = lock(&store.inner.state);
            if !state.recording.insert(camera_id) {
                return Err(StoreError::Busy(camera.to_string()));
            }
        }
        drop(conn);
        Ok(Recorder {
            store: store.clone(),
            camera: camera.to_string(),
            camera_id,
            dir,
            tracks: tracks.to_vec(),
            track_set_id,
            seek_track: format::seek_track(tracks),
            has_video: tracks.iter().any(|t| t.kind() == MediaKind::Video),
            section: None,
            last_wall: None,
            last_wall_track: vec![None; tracks.len()],
            suspended: None,
            dropped: 0,
            unclosed: Vec::new(),
            closed: false,
            last_flush: Instant::now(),
            _camera_lock: camera_lock,
        })
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// Units dropped so far because writing was stopped (disk full, a write failed).
    pub fn dropped_units(&self) -> u64 {
        self.dropped
    }

    /// Whether writing is suspended by a write error (a full disk, a read-only folder,
    /// ...; see [`Recorder::push`]).
    pub fn is_suspended(&self) -> bool {
        self.suspended.is_some()
    }

    /// While writing is suspended: why, and what to do about it (one line, for the API).
    pub fn stopped_reason(&self) -> Option<String> {
        self.suspended.as_ref().map(|s| {
            format!(
                "{}: {} ({}); retrying every {:?}",
                s.fault.what(),
                s.reason,
                s.fault.advice(),
                self.store.inner.opts.disk_full_retry
            )
        })
    }

    /// Appends one unit. Starts a new section on a gap or clock step back, a new segment
    /// at the first video keyframe after `segment_duration`, and flushes every
    /// `flush_interval`.
    ///
    /// A write error (disk full, read-only or unwritable folder, no file descriptors, I/O
    /// error) suspends writing: one error line names the error and what to do, the section
    /// ends at the last flushed unit, the unflushed units and every unit after them are
    /// dropped (counted in [`Recorder::dropped_units`]); every `disk_full_retry` it runs
    /// retention and, at a video keyframe, tries to resume with a new section (one line
    /// when it does; failed retries log nothing). A full disk, a read-only folder or
    /// missing permission return `Ok` (the caller has nothing to do but wait); any other
    /// error is returned once, when it stops the writing.
    pub fn push(&mut self, au: &AccessUnit) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed(self.camera.clone()));
        }
        if au.track >= self.tracks.len() {
            return Err(StoreError::BadTrack {
                camera: self.camera.clone(),
                track: au.track,
                tracks: self.tracks.len(),
            });
        }
        if self.suspended.is_some() {
            return self.push_suspended(au);
        }
        match self.append(au) {
            Ok(()) => Ok(()),
            Err(e) => self.write_failed(e),
        }
    }

    /// Makes every unit pushed so far durable and visible to readers.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.closed || self.suspended.is_some() {
            return Ok(());
        }
        match self.flush_inner() {
            Ok(()) => Ok(()),
            Err(e) => self.write_failed(e),
        }
    }

    /// Flushes, ends the section and releases the camera.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.finish()
    }

    /// Test hook: stops like a process killed now would (nothing more is written: the
    /// unflushed units are lost, the rows stay as the last flush left them), but releases
    /// the camera so the same process can reopen the store.
    #[doc(hidden)]
    pub fn simulate_crash(mut self) {
        self.closed = true;
        if let Some(sec) = self.section.take() {
            lock(&self.store.inner.state).writing.remove(&sec.seg.id);
        }
        lock(&self.store.inner.state)
            .recording
            .remove(&self.camera_id);
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let result = if self.section.is_some() && self.suspended.is_none() {
            match self.end_section() {
                Ok(()) => Ok(()),
                Err(e) => self.write_failed(e),
            }
        } else {
            Ok(())
        };
        self.close_unclosed();
        if let Some(s) = self.suspended.take() {
            tracing::warn!(
                camera = %self.camera,
                "recorder closed while writing was stopped ({}); {} units dropped",
                s.fault.what(),
                self.dropped - s.dropped_at_start
            );
        }
        lock(&self.store.inner.state)
            .recording
            .remove(&self.camera_id);
        result
    }

    fn is_seek_key(&self, au: &AccessUnit) -> bool {
        au.keyframe && (au.track as u32 == self.seek_track || !self.has_video)
    }

    fn push_suspended(&mut self, au: &AccessUnit) -> Result<(), StoreError> {
        let due = self
            .suspended
            .as_ref()
            .is_some_and(|s| Instant::now() >= s.next_retry);
        if !due || !self.is_seek_key(au) {
            self.dropped += 1;
            return Ok(());
        }
        if let Err(e) = self.store.apply_retention() {
            tracing::debug!(camera = %self.camera, "retention while writing is stopped: {e}");
        }
        let attempt = self.append(au).and_then(|()| self.flush_inner());
        match attempt {
            Ok(()) => {
                self.close_unclosed();
                if let Some(s) = self.suspended.take() {
                    let over = match s.fault {
                        WriteFault::DiskFull => "disk has space again",
                        WriteFault::ReadOnly => "the recording folder is writable again",
                        WriteFault::Permission => "the recording folder is writable again",
                        WriteFault::OutOfFiles => "file descriptors are available again",
                        WriteFault::Other => "writes work again",
                    };
                    tracing::info!(
                        camera = %self.camera,
                        "{over}: recording resumed with a new section after dropping {} units",
                        self.dropped - s.dropped_at_start
                    );
                }
                Ok(())
            }
            Err(e) => self.write_failed(e),
        }
    }

    /// Handles an error of the write path: the unflushed units are dropped, the section
    /// ends at the last flushed unit and writing is suspended (see [`Recorder::push`]).
    /// Logs one line when writing stops (none for a failed retry, unless the kind of
    /// error changed); returns the error when it stops writing and is not one the caller
    /// can only wait out (disk full, read-only, permission).
    fn write_failed(&mut self, e: StoreError) -> Result<(), StoreError> {
        let pending = self.abandon_section();
        self.dropped += pending;
        let fault = e.write_fault();
        let retry = self.store.inner.opts.disk_full_retry;
        let next_retry = Instant::now() + retry;
        let first = match &mut self.suspended {
            Some(s) => {
                s.next_retry = next_retry;
                let changed = s.fault != fault;
                s.fault = fault;
                s.reason = e.to_string();
                changed
            }
            None => {
                self.suspended = Some(Suspended {
                    next_retry,
                    dropped_at_start: self.dropped - pending,
                    fault,
                    reason: e.to_string(),
                });
                true
            }
        };
        if first {
            // "disk full: cannot write ..." (the wording the disk-full tests look for),
            // "the recording folder is read-only: cannot write ...", ...
            tracing::error!(
                camera = %self.camera,
                "{}: cannot write {e}: recording stops ({pending} unflushed units dropped; \
                 units are dropped until it resumes, in a new section); {}; retrying every \
                 {retry:?}",
                fault.what(),
                fault.advice(),
            );
        }
        match fault {
            WriteFault::DiskFull | WriteFault::ReadOnly | WriteFault::Permission => Ok(()),
            WriteFault::OutOfFiles | WriteFault::Other if first => Err(e),
            WriteFault::OutOfFiles | WriteFault::Other => Ok(()),
        }
    }

    /// Gives up the open section after a failure: truncates the segment file to what the
    /// index references, closes the section row (best effort: recovery redoes all of this
    /// at the next open). Returns how many pushed units were not flushed.
    fn abandon_section(&mut self) -> u64 {
        let Some(sec) = self.section.take() else {
            return 0;
        };
        self.last_wall = None;
        self.last_wall_track.iter_mut().for_each(|w| *w = None);
        let seg = sec.seg;
        let pending = seg.frames - seg.flushed_frames;
        if let Err(e) = seg.file.set_len(seg.flushed_bytes) {
            tracing::debug!(path = %seg.path.display(), "truncating after a write error: {e}");
        }
        let conn = lock(&self.store.inner.db);
        let result = (|| -> Result<(), StoreError> {
            if seg.flushed_frames == 0 {
                conn.execute("DELETE FROM segments WHERE id = ?1", [seg.id])
                    .db("drop an empty segment")?;
            }
            if db::refresh_section(&conn, sec.id)? {
                conn.execute("UPDATE sections SET open = 0 WHERE id = ?1", [sec.id])
                    .db("close a section")?;
            }
            Ok(())
        })();
        lock(&self.store.inner.state).writing.remove(&seg.id);
        drop(conn);
        match result {
            Ok(()) if seg.flushed_frames == 0 => {
                let _ = std::fs::remove_file(&seg.path);
            }
            Ok(()) => {}
            Err(e) => {
                // The row still says open: remember it is not (issue 17: it was listed as
                // recording), and close it when the index can be written again.
                tracing::debug!(
                    camera = %self.camera,
                    "closing section {} after a write error: {e} (retried when the disk has \
                     room, else recovery will finish it)",
                    sec.id
                );
                lock(&self.store.inner.state).unclosed.insert(sec.id);
                self.unclosed.push(sec.id);
            }
        }
        pending
    }

    /// Closes the rows of the sections given up while the index could not be written
    /// (best effort: those still failing stay for the next try or for recovery).
    fn close_unclosed(&mut self) {
        if self.unclosed.is_empty() {
            return;
        }
        let conn = lock(&self.store.inner.db);
        self.unclosed.retain(|&id| {
            let closed = db::refresh_section(&conn, id).and_then(|kept| {
                if kept {
                    conn.execute("UPDATE sections SET open = 0 WHERE id = ?1", [id])
                        .db("close a section")?;
                }
                Ok(())
            });
            match closed {
                Ok(()) => {
                    lock(&self.store.inner.state).unclosed.remove(&id);
                    false
                }
                Err(e) => {
                    tracing::debug!(section = id, "closing a section given up earlier: {e}");
                    true
                }
            }
        });
    }

    fn append(&mut self, au: &AccessUnit) -> Result<(), StoreError> {
        let w = au.wallclock;
        let gap = micros(self.store.inner.opts.max_gap);
        if self.section.is_some() {
            let jump = self
                .last_wall
                .is_some_and(|last| w.saturating_sub(last) > gap || last.saturating_sub(w) > gap);
            let back = self
                .last_wall_track
                .get(au.track)
                .copied()
                .flatten()
                .is_some_and(|last| w < last);
            if jump || back {
                if back {
                    tracing::info!(
                        camera = %self.camera,
                        "track {} wallclock went back to {w}: new section", au.track
                    );
                }
                self.end_section()?;
            }
        }
        if self.section.is_none() {
            self.start_section(w)?;
        }
        let seg_us = micros(self.store.inner.opts.segment_duration);
        let key = self.is_seek_key(au);
        if let Some(sec) = &self.section {
            let age = w.saturating_sub(sec.seg.first_wall);
            if sec.seg.frames > 0 && ((age >= seg_us && key) || age >= seg_us.saturating_mul(2)) {
                self.rotate_segment(w)?;
            }
        }
        let Some(sec) = self.section.as_mut() else {
            return Err(StoreError::Closed(self.camera.clone()));
        };
        let seg = &mut sec.seg;
        let size = u32::try_from(au.data.len()).map_err(|_| {
            StoreError::io(
                &seg.path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "unit larger than 4 GiB"),
            )
        })?;
        seg.buf.extend_from_slice(&au.data);
        seg.blob.push(au.track as u32, au.keyframe, size, au.pts, w);
        seg.bytes += u64::from(size);
        seg.frames += 1;
        seg.start_us = seg.start_us.min(w);
        seg.end_us = seg.end_us.max(w);
        if au.keyframe && au.track as u32 == self.seek_track {
            seg.first_key_us.get_or_insert(w);
            seg.last_key_us = Some(w);
        }
        self.last_wall = Some(self.last_wall.map_or(w, |l| l.max(w)));
        if let Some(t) = self.last_wall_track.get_mut(au.track) {
            *t = Some(w);
        }
        if seg.buf.len() >= WRITE_BUFFER {
            write_buffer(&self.store, seg)?;
        }
        if self.last_flush.elapsed() >= self.store.inner.opts.flush_interval {
            self.flush_inner()?;
        }
        Ok(())
    }

    /// Data first (write + fdatasync), then the index rows in one transaction.
    fn flush_inner(&mut self) -> Result<(), StoreError> {
        // The interval counts from the end of a flush (below), so that a flush slower than
        // the interval (a slow disk) is followed by one flush of everything pushed during
        // it, not by one flush per push.
        self.last_flush = Instant::now();
        let result = self.flush_section();
        self.last_flush = Instant::now();
        result
    }

    fn flush_section(&mut self) -> Result<(), StoreError> {
        let Some(sec) = self.section.as_mut() else {
            return Ok(());
        };
        let seg = &mut sec.seg;
        if seg.frames == seg.flushed_frames {
            return Ok(());
        }
        write_buffer(&self.store, seg)?;
        seg.file
            .sync_data()
            .map_err(|e| StoreError::io(&seg.path, e))?;
        crate::crashpoint::hit("after_data_fsync");
        let mut conn = lock(&self.store.inner.db);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .db("begin a flush")?;
        tx.prepare_cached(
            "UPDATE segments SET start_us = ?2, end_us = ?3, bytes = ?4, frames = ?5, \
             first_key_us = ?6, last_key_us = ?7, frame_index = ?8 WHERE id = ?1",
        )
        .db("prepare segment update")?
        .execute(params![
            seg.id,
            seg.start_us,
            seg.end_us,
            seg.bytes as i64,
            seg.frames as i64,
            seg.first_key_us,
            seg.last_key_us,
            seg.blob.bytes()
        ])
        .db("update a segment")?;
        // The section grows by what this flush adds. Not the recorder's own totals: retention
        // may have deleted older segments of this section meanwhile and fixed the row
        // (writing totals that still count them made retention delete on and on: found by
        // the crash-point harness, test in tests/retention.rs).
        tx.prepare_cached(
            "UPDATE sections SET start_us = MIN(start_us, ?2), end_us = MAX(end_us, ?3), \
             bytes = bytes + ?4, frames = frames + ?5 WHERE id = ?1",
        )
        .db("prepare section update")?
        .execute(params![
            sec.id,
            seg.start_us,
            seg.end_us,
            (seg.bytes - seg.flushed_bytes) as i64,
            (seg.frames - seg.flushed_frames) as i64
        ])
        .db("update a section")?;
        tx.commit().db("commit a flush")?;
        crate::crashpoint::hit("after_index_commit");
        seg.flushed_bytes = seg.bytes;
        seg.flushed_frames = seg.frames;
        Ok(())
    }

    fn start_section(&mut self, w: UnixMicros) -> Result<(), StoreError> {
        let section_id = {
            let conn = lock(&self.store.inner.db);
            conn.prepare_cached(
                "INSERT INTO sections (camera_id, track_set_id, start_us, end_us, bytes, \
                 frames, open) VALUES (?1, ?2, ?3, ?3, 0, 0, 1)",
            )
            .db("prepare section insert")?
            .execute(params![self.camera_id, self.track_set_id, w])
            .db("start a section")?;
            conn.last_insert_rowid()
        };
        let seg = match self.new_segment(section_id, w) {
            Ok(seg) => seg,
            Err(e) => {
                let conn = lock(&self.store.inner.db);
                let _ = conn.execute("DELETE FROM sections WHERE id = ?1", [section_id]);
                return Err(e);
            }
        };
        self.section = Some(OpenSection {
            id: section_id,
            seg,
        });
        self.last_wall = None;
        self.last_wall_track.iter_mut().for_each(|w| *w = None);
        Ok(())
    }

    /// Row first (referencing nothing), then the file.
    fn new_segment(&self, section_id: i64, w: UnixMicros) -> Result<OpenSegment, StoreError> {
        let blob = BlobWriter::new(w);
        let id = {
            let conn = lock(&self.store.inner.db);
            conn.prepare_cached(
                "INSERT INTO segments (camera_id, section_id, start_us, end_us, bytes, frames, \
                 first_key_us, last_key_us, frame_index) \
                 VALUES (?1, ?2, ?3, ?3, 0, 0, NULL, NULL, ?4)",
            )
            .db("prepare segment insert")?
            .execute(params![self.camera_id, section_id, w, blob.bytes()])
            .db("start a segment")?;
            let id = conn.last_insert_rowid();
            // Marked while the index lock is held, so retention never sees it unmarked.
            lock(&self.store.inner.state).writing.insert(id);
            id
        };
        crate::crashpoint::hit("segment_row_inserted");
        let path = self.store.segment_path(&self.camera, id);
        let opened = File::options()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|f| {
                // The directory entry must be durable before rows reference the file.
                File::open(&self.dir)?.sync_all()?;
                Ok(f)
            });
        let file = match opened {
            Ok(f) => {
                crate::crashpoint::hit("segment_file_created");
                f
            }
            Err(e) => {
                let conn = lock(&self.store.inner.db);
                let _ = conn.execute("DELETE FROM segments WHERE id = ?1", [id]);
                lock(&self.store.inner.state).writing.remove(&id);
                return Err(StoreError::io(&path, e));
            }
        };
        Ok(OpenSegment {
            id,
            path,
            file,
            blob,
            buf: Vec::with_capacity(WRITE_BUFFER),
            bytes: 0,
            frames: 0,
            first_wall: w,
            start_us: w,
            end_us: w,
            first_key_us: None,
            last_key_us: None,
            flushed_bytes: 0,
            flushed_frames: 0,
        })
    }

    fn rotate_segment(&mut self, w: UnixMicros) -> Result<(), StoreError> {
        self.flush_inner()?;
        let Some(section_id) = self.section.as_ref().map(|s| s.id) else {
            return Ok(());
        };
        let seg = self.new_segment(section_id, w)?;
        if let Some(sec) = self.section.as_mut() {
            let old = std::mem::replace(&mut sec.seg, seg);
            lock(&self.store.inner.state).writing.remove(&old.id);
        }
        self.retention();
        Ok(())
    }

    fn end_section(&mut self) -> Result<(), StoreError> {
        self.flush_inner()?;
        let Some(sec) = self.section.take() else {
            return Ok(());
        };
        self.last_wall = None;
        self.last_wall_track.iter_mut().for_each(|w| *w = None);
        {
            let conn = lock(&self.store.inner.db);
            let closed = conn
                .execute("UPDATE sections SET open = 0 WHERE id = ?1", [sec.id])
                .db("close a section");
            lock(&self.store.inner.state).writing.remove(&sec.seg.id);
            closed?;
        }
        self.retention();
        Ok(())
    }

    fn retention(&self) {
        match self.store.apply_retention() {
            Ok(r) if r.deleted_segments > 0 => tracing::debug!(
                camera = %self.camera,
                "retention deleted {} segments ({} bytes)",
                r.deleted_segments,
                r.deleted_bytes
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(camera = %self.camera, "retention: {e}"),
        }
    }
}

fn write_buffer(store: &Store, seg: &mut OpenSegment) -> Result<(), StoreError> {
    if seg.buf.is_empty() {
        return Ok(());
    }
    if store.fault_disk_full() {
        return Err(StoreError::io(
            &seg.path,
            std::io::Error::from_raw_os_error(28),
        ));
    }
    crate::faults::before_data_write();
    seg.file
        .write_all(&seg.buf)
        .map_err(|e| StoreError::io(&seg.path, e))?;
    seg.buf.clear();
    Ok(())
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(camera = %self.camera, "closing the recorder: {e}");
        }
    }
}
