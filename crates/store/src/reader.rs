//! The time-based read path that ONVIF replay and MP4 export use (docs/store.md "Read path
//! and lookup complexity"): start-point rules (docs/onvif.md "Start point"),
//! forward iteration of every unit in recorded order, reverse iteration by whole GOPs, and
//! following a recording that is still growing.
//!
//! Each lookup is one or two indexed `LIMIT 1` queries plus decoding one segment's frame
//! blob. A reader keeps at most [`CACHE`] segments decoded, and pins them so retention
//! leaves them alone.
//!
//! Corrupt data (an undecodable blob, a file shorter than its index, a video frame without
//! a start code) is logged once per segment with its path and skipped: the reader goes on
//! with the next frame or segment.
//!
//! Left out: `Frames: intra/<ms>` selection and pacing (the replay pump's job), and
//! iteration across a clock step back in recorded order (overlapping sections are walked
//! in wallclock order of their segments).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::time::UnixMicros;
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::{self, DbContext, SegmentRow};
use crate::format::{self, FrameMeta};
use crate::{lock, SectionInfo, Store, StoreError};

/// Segments kept decoded (and pinned) per reader.
const CACHE: usize = 3;
/// Bytes of a segment file read at once (at least one frame): the frames after the one asked
/// for are sliced from the same buffer without another system call or copy. About what a
/// loopback or LAN socket's send buffer takes in one write (docs/store.md "Read path and
/// lookup complexity", "Read-ahead").
const READ_AHEAD: usize = 1 << 20;

/// One stored access unit, as a reader returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    /// Index into the tracks of its section ([`Reader::tracks_of_section`]).
    pub track: usize,
    /// Media time in the track's clock, as recorded.
    pub pts: u64,
    /// Capture wallclock (UTC µs).
    pub wallclock: UnixMicros,
    pub keyframe: bool,
    pub data: Bytes,
    /// The section (contiguous run) it belongs to.
    pub section: u64,
    /// The first unit of its track in its section.
    pub start_of_section: bool,
    /// The last unit of its track in its section, once the section is closed (a section
    /// still being recorded has no last unit yet).
    pub end_of_section: bool,
}

/// Where a unit is, as the index says (export planning reads no sample data).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef {
    pub segment: i64,
    pub section: u64,
    pub meta: FrameMeta,
}

/// Playback direction for [`Reader::seek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Not placed yet: locate from this time in the cursor's direction on first use.
    Seek(UnixMicros),
    /// The next unit (forward) or the keyframe of the next GOP (reverse).
    At { seg: i64, idx: usize },
    /// Nothing more in this direction.
    Done,
}

struct Loaded {
    row: SegmentRow,
    frames: Vec<FrameMeta>,
    track_set: i64,
    seek_track: u32,
    first_of_track: HashMap<u32, usize>,
    last_of_track: HashMap<u32, usize>,
    first_in_section: bool,
    last_in_section: bool,
    section_open: bool,
    path: PathBuf,
    file: Option<File>,
    /// Reading failed: the rest of the segment is skipped.
    broken: bool,
    bad_frames: u64,
    last_use: u64,
}

/// Reads one camera's footage; see the module doc and [`Store::reader`].
pub struct Reader {
    store: Store,
    camera: String,
    camera_id: i64,
    sets: HashMap<i64, Option<Vec<TrackInfo>>>,
    tracks: Vec<TrackInfo>,
    current_set: Option<i64>,
    cache: Vec<Loaded>,
    uses: u64,
    fwd: Cursor,
    rev: Cursor,
    /// Wallclock of the last unit `next_forward` returned.
    fwd_last: UnixMicros,
    logged: HashSet<i64>,
    /// The last bytes read from a segment file: its row id, where they start, the bytes.
    ahead: Option<(i64, u64, Bytes)>,
}

/// A located unit: its segment row and decoded frames, and its index.
type Hit = (SegmentRow, Vec<FrameMeta>, usize);

impl Reader {
    pub(crate) fn new(store: &Store, camera: &str) -> Result<Reader, StoreError> {
        let conn = lock(&store.inner.db);
        let camera_id = db::camera_id(&conn, camera)?
            .ok_or_else(|| StoreError::NoSuchCamera(camera.to_string()))?;
        let mut reader = Reader {
            store: store.clone(),
            camera: camera.to_string(),
            camera_id,
            sets: HashMap::new(),
            tracks: Vec::new(),
            current_set: None,
            cache: Vec::new(),
            uses: 0,
            fwd: Cursor::Seek(UnixMicros::MIN),
            rev: Cursor::Seek(UnixMicros::MAX),
            fwd_last: UnixMicros::MIN,
            logged: HashSet::new(),
            ahead: None,
        };
        let latest: Option<i64> = conn
            .query_row(
                "SELECT MAX(id) FROM track_sets WHERE camera_id = ?1",
                [camera_id],
                |r| r.get(0),
            )
            .db("find the latest track set")?;
        if let Some(id) = latest {
            reader.set_current_tracks(&conn, id)?;
        }
        Ok(reader)
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    /// The tracks of the section at the reader's position (the latest tracks before the
    /// first seek or read).
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// The tracks a section was recorded with.
    pub fn tracks_of_section(
        &mut self,
        section: u64,
    ) -> Result<Option<Vec<TrackInfo>>, StoreError> {
        let conn = lock(&self.store.inner.db);
        let set: Option<i64> = conn
            .query_row(
                "SELECT track_set_id FROM sections WHERE id = ?1",
                [section as i64],
                |r| r.get(0),
            )
            .optional()
            .db("find a section's track set")?;
        match set {
            Some(set) => Ok(track_set(&mut self.sets, &conn, set)?.map(<[TrackInfo]>::to_vec)),
            None => Ok(None),
        }
    }

    /// The camera's sections, oldest first.
    pub fn sections(&self) -> Result<Vec<SectionInfo>, StoreError> {
        let conn = lock(&self.store.inner.db);
        Ok(
            crate::recording_info(&conn, &self.store.inner.state, self.camera_id, &self.camera)?
                .map(|r| r.sections)
                .unwrap_or_default(),
        )
    }

    /// Places the reader by the ONVIF start-point rules (docs/store.md): inside footage, the
    /// video keyframe at or before `t` whatever the direction; in a gap, forward: the first
    /// keyframe of the next section, reverse: the last keyframe of the previous section.
    /// Returns the chosen keyframe's wallclock, or `None` if there is nothing in that
    /// direction. Both [`Reader::next_forward`] and [`Reader::prev_gop`] continue from here.
    pub fn seek(
        &mut self,
        t: UnixMicros,
        dir: Direction,
    ) -> Result<Option<UnixMicros>, StoreError> {
        match self.locate(t, dir)? {
            Some((seg, idx, wallclock)) => {
                self.fwd = Cursor::At { seg, idx };
                self.rev = Cursor::At { seg, idx };
                self.release_unused();
                Ok(Some(wallclock))
            }
            None => {
                // Forward: footage recorded later may still show up after `t`.
                self.fwd = Cursor::Seek(t);
                self.rev = match dir {
                    Direction::Forward => Cursor::Seek(t),
                    Direction::Reverse => Cursor::Done,
                };
                self.release_unused();
                Ok(None)
            }
        }
    }

    /// The next unit of any track in recorded order, or `None` at the current end of the
    /// footage (a later call returns units flushed since, if the recording is growing).
    pub fn next_forward(&mut self) -> Result<Option<StoredFrame>, StoreError> {
        while let Some((li, idx)) = self.advance_forward()? {
            if let Some(frame) = self.frame(li, idx)? {
                self.fwd_last = frame.wallclock;
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Like [`Reader::next_forward`], but only what the index says about the unit: no
    /// sample data is read (so no framing check either). For export planning.
    pub(crate) fn next_forward_ref(&mut self) -> Result<Option<FrameRef>, StoreError> {
        let Some((li, idx)) = self.advance_forward()? else {
            return Ok(None);
        };
        let Some(l) = self.cache.get(li) else {
            return Ok(None);
        };
        let Some(&meta) = l.frames.get(idx) else {
            return Ok(None);
        };
        self.fwd_last = meta.wallclock;
        Ok(Some(FrameRef {
            segment: l.row.id,
            section: l.row.section_id as u64,
            meta,
        }))
    }

    /// Moves the forward cursor one unit on; returns the cache slot and index of the unit
    /// it passed.
    fn advance_forward(&mut self) -> Result<Option<(usize, usize)>, StoreError> {
        loop {
            match self.fwd {
                Cursor::Done => return Ok(None),
                Cursor::Seek(t) => match self.locate(t, Direction::Forward)? {
                    Some((seg, idx, _)) => self.fwd = Cursor::At { seg, idx },
                    None => return Ok(None),
                },
                Cursor::At { seg, idx } => {
                    let Some(li) = self.ensure_loaded(seg)? else {
                        // Gone (cannot happen while pinned; be safe): go on after the last
                        // unit returned.
                        tracing::warn!(
                            "camera {}: segment {seg} vanished while being read",
                            self.camera
                        );
                        self.fwd = Cursor::Seek(self.fwd_last.saturating_add(1));
                        return Ok(None);
                    };
                    let len = self.loaded_len(li);
                    if idx + 1 >= len {
                        // Serving the last known unit, or past it: learn whether the
                        // segment grew, the section closed or a next segment exists.
                        let next = self.refresh(li)?;
                        if idx >= self.loaded_len(li) {
                            match next {
                                Some(next) => {
                                    self.fwd = Cursor::At { seg: next, idx: 0 };
                                    self.release_unused();
                                    continue;
                                }
                                None => return Ok(None),
                            }
                        }
                    }
                    self.fwd = Cursor::At { seg, idx: idx + 1 };
                    return Ok(Some((li, idx)));
                }
            }
        }
    }

    /// The next GOP in reverse: the seek track's keyframe and the frames after it up to the
    /// next keyframe, in decode order; GOPs come latest first, starting with the GOP at the
    /// seek point. Audio is not returned. `None` when the start of the footage is reached.
    pub fn prev_gop(&mut self) -> Result<Option<Vec<StoredFrame>>, StoreError> {
        loop {
            match self.rev {
                Cursor::Done => return Ok(None),
                Cursor::Seek(t) => match self.locate(t, Direction::Reverse)? {
                    Some((seg, idx, _)) => self.rev = Cursor::At { seg, idx },
                    None => {
                        self.rev = Cursor::Done;
                        return Ok(None);
                    }
                },
                Cursor::At { seg, idx } => {
                    let Some(li) = self.ensure_loaded(seg)? else {
                        self.rev = Cursor::Done;
                        return Ok(None);
                    };
                    let gop = self.collect_gop(li, idx)?;
                    self.rev = self.previous_key(seg, idx)?;
                    self.release_unused();
                    if let Some(gop) = gop {
                        return Ok(Some(gop));
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Locating
    // -----------------------------------------------------------------------------------

    /// The start point for `t` (see [`Reader::seek`]): segment id, frame index, wallclock.
    fn locate(
        &mut self,
        t: UnixMicros,
        dir: Direction,
    ) -> Result<Option<(i64, usize, UnixMicros)>, StoreError> {
        let hit = {
            let conn = lock(&self.store.inner.db);
            let mut l = Locator {
                conn: &conn,
                sets: &mut self.sets,
                camera_id: self.camera_id,
                camera: &self.camera,
                logged: &mut self.logged,
                store: &self.store,
            };
            l.locate(t, dir)?
        };
        let Some((row, frames, idx)) = hit else {
            return Ok(None);
        };
        let wallclock = frames.get(idx).map_or(row.start_us, |f| f.wallclock);
        let id = row.id;
        self.insert_loaded(row, frames)?;
        Ok(Some((id, idx, wallclock)))
    }

    fn previous_key(&mut self, seg: i64, idx: usize) -> Result<Cursor, StoreError> {
        if let Some(li) = self.find(seg) {
            if let Some(l) = self.cache.get(li) {
                let st = l.seek_track;
                let limit = idx.min(l.frames.len());
                if let Some(j) = l
                    .frames
                    .get(..limit)
                    .and_then(|f| f.iter().rposition(|f| f.key && f.track == st))
                {
                    return Ok(Cursor::At { seg, idx: j });
                }
            }
        }
        let Some((start, id)) = self
            .find(seg)
            .and_then(|li| self.cache.get(li))
            .map(|l| (l.row.start_us, l.row.id))
        else {
            return Ok(Cursor::Done);
        };
        let hit = {
            let conn = lock(&self.store.inner.db);
            let mut l = Locator {
                conn: &conn,
                sets: &mut self.sets,
                camera_id: self.camera_id,
                camera: &self.camera,
                logged: &mut self.logged,
                store: &self.store,
            };
            let mut after = (start, id);
            let mut found = None;
            while let Some(row) = db::segment_query(
                l.conn,
                "WHERE camera_id = ?1 AND (start_us, id) < (?2, ?3) AND frames > 0 \
                 AND last_key_us IS NOT NULL ORDER BY start_us DESC, id DESC LIMIT 1",
                params![l.camera_id, after.0, after.1],
            )? {
                after = (row.start_us, row.id);
                let st = l.seek_track_of_section(row.section_id)?;
                let frames = l.decode(&row);
                if let Some(j) = frames.iter().rposition(|f| f.key && f.track == st) {
                    found = Some((row, frames, j));
                    break;
                }
            }
            found
        };
        match hit {
            Some((row, frames, j)) => {
                let id = row.id;
                self.insert_loaded(row, frames)?;
                Ok(Cursor::At { seg: id, idx: j })
            }
            None => Ok(Cursor::Done),
        }
    }

    // -----------------------------------------------------------------------------------
    // The cache of decoded, pinned segments
    // -----------------------------------------------------------------------------------

    fn find(&self, seg: i64) -> Option<usize> {
        self.cache.iter().position(|l| l.row.id == seg)
    }

    fn loaded_len(&self, li: usize) -> usize {
        self.cache
            .get(li)
            .map_or(0, |l| if l.broken { 0 } else { l.frames.len() })
    }

    fn ensure_loaded(&mut self, seg: i64) -> Result<Option<usize>, StoreError> {
        if let Some(li) = self.find(seg) {
            self.uses += 1;
            if let Some(l) = self.cache.get_mut(li) {
                l.last_use = self.uses;
            }
            return Ok(Some(li));
        }
        let row = {
            let conn = lock(&self.store.inner.db);
            db::segment_query(&conn, "WHERE id = ?1", [seg])?
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let frames = {
            let conn = lock(&self.store.inner.db);
            let mut l = Locator {
                conn: &conn,
                sets: &mut self.sets,
                camera_id: self.camera_id,
                camera: &self.camera,
                logged: &mut self.logged,
                store: &self.store,
            };
            l.decode(&row)
        };
        self.insert_loaded(row, frames).map(Some)
    }

    /// Adds a decoded segment to the cache (pinning it), or refreshes the cached copy.
    fn insert_loaded(
        &mut self,
        row: SegmentRow,
        frames: Vec<FrameMeta>,
    ) -> Result<usize, StoreError> {
        self.uses += 1;
        let uses = self.uses;
        if let Some(li) = self.find(row.id) {
            if let Some(l) = self.cache.get_mut(li) {
                l.last_use = uses;
            }
            return Ok(li);
        }
        let conn = lock(&self.store.inner.db);
        // Pin under the index lock: retention cannot delete it between query and pin.
        self.store.pin(row.id);
        let path = self.store.segment_path(&self.camera, row.id);
        let mut l = Loaded {
            frames: Vec::new(),
            track_set: 0,
            seek_track: 0,
            first_of_track: HashMap::new(),
            last_of_track: HashMap::new(),
            first_in_section: false,
            last_in_section: false,
            section_open: false,
            path,
            file: None,
            broken: false,
            bad_frames: 0,
            last_use: uses,
            row,
        };
        let mut loc = Locator {
            conn: &conn,
            sets: &mut self.sets,
            camera_id: self.camera_id,
            camera: &self.camera,
            logged: &mut self.logged,
            store: &self.store,
        };
        update_loaded(&mut loc, &mut l, frames)?;
        drop(conn);
        self.cache.push(l);
        Ok(self.cache.len() - 1)
    }

    /// Drops cached segments beyond [`CACHE`] that no cursor points at, least recently used
    /// first, and unpins them.
    fn release_unused(&mut self) {
        while self.cache.len() > CACHE {
            let keep = |id: i64, c: Cursor| matches!(c, Cursor::At { seg, .. } if seg == id);
            let victim = self
                .cache
                .iter()
                .enumerate()
                .filter(|(_, l)| !keep(l.row.id, self.fwd) && !keep(l.row.id, self.rev))
                .min_by_key(|(_, l)| l.last_use)
                .map(|(i, _)| i);
            let Some(i) = victim else {
                break;
            };
            let l = self.cache.swap_remove(i);
            self.store.unpin(l.row.id);
        }
    }

    /// Re-reads a cached segment's row and section (it may have grown, or its section may
    /// have closed) and, in the same locked step, looks up the segment after it. Returns
    /// that next segment's id.
    fn refresh(&mut self, li: usize) -> Result<Option<i64>, StoreError> {
        let Some(l) = self.cache.get_mut(li) else {
            return Ok(None);
        };
        let conn = lock(&self.store.inner.db);
        let row = db::segment_query(&conn, "WHERE id = ?1", [l.row.id])?;
        let next = db::segment_query(
            &conn,
            "WHERE camera_id = ?1 AND (start_us, id) > (?2, ?3) AND frames > 0 \
             ORDER BY start_us, id LIMIT 1",
            params![self.camera_id, l.row.start_us, l.row.id],
        )?
        .map(|r| r.id);
        let mut loc = Locator {
            conn: &conn,
            sets: &mut self.sets,
            camera_id: self.camera_id,
            camera: &self.camera,
            logged: &mut self.logged,
            store: &self.store,
        };
        if let Some(row) = row {
            let frames = if row.frames != l.row.frames || row.blob.len() != l.row.blob.len() {
                l.row = row;
                loc.decode(&l.row)
            } else {
                std::mem::take(&mut l.frames)
            };
            update_loaded(&mut loc, l, frames)?;
        }
        Ok(next)
    }

    // -----------------------------------------------------------------------------------
    // Frames
    // -----------------------------------------------------------------------------------

    /// Reads unit `idx` of cached segment `li`; `None` if it is unreadable (logged).
    fn frame(&mut self, li: usize, idx: usize) -> Result<Option<StoredFrame>, StoreError> {
        let Some(l) = self.cache.get(li) else {
            return Ok(None);
        };
        let (set, section) = (l.track_set, l.row.section_id);
        if self.current_set != Some(set) {
            let store = self.store.clone();
            let conn = lock(&store.inner.db);
            self.set_current_tracks(&conn, set)?;
        }
        let codec = self
            .sets
            .get(&set)
            .and_then(|s| s.as_ref())
            .and_then(|tracks| {
                let track = self.cache.get(li)?.frames.get(idx)?.track as usize;
                tracks.get(track).map(|t| t.codec.clone())
            });
        let Some(l) = self.cache.get_mut(li) else {
            return Ok(None);
        };
        let Some(&meta) = l.frames.get(idx) else {
            return Ok(None);
        };
        let Some(codec) = codec else {
            // Track outside its track set (corrupt blob) or unknown track set.
            note_bad_frame(
                &self.camera,
                l,
                idx,
                "track is not in the section's track list",
            );
            return Ok(None);
        };
        let data = match read_at(&mut self.ahead, l, meta.offset, meta.size) {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(
                    "camera {}: segment {} ({}): cannot read frame {idx} ({} bytes at {}): {e}; \
                     rest of the segment skipped",
                    self.camera,
                    l.row.id,
                    l.path.display(),
                    meta.size,
                    meta.offset
                );
                l.broken = true;
                return Ok(None);
            }
        };
        if !format::plausible_frame(&codec, &data) {
            note_bad_frame(
                &self.camera,
                l,
                idx,
                "bytes do not look like the codec's framing",
            );
            return Ok(None);
        }
        let first = l.first_in_section && l.first_of_track.get(&meta.track) == Some(&idx);
        let last =
            l.last_in_section && !l.section_open && l.last_of_track.get(&meta.track) == Some(&idx);
        Ok(Some(StoredFrame {
            track: meta.track as usize,
            pts: meta.pts,
            wallclock: meta.wallclock,
            keyframe: meta.key,
            data,
            section: section as u64,
            start_of_section: first,
            end_of_section: last,
        }))
    }

    /// The GOP starting at unit `idx` of cached segment `li` (seek track only), continuing
    /// into later segments of the same section if the GOP straddles them.
    fn collect_gop(
        &mut self,
        li: usize,
        idx: usize,
    ) -> Result<Option<Vec<StoredFrame>>, StoreError> {
        let mut out = Vec::new();
        let mut li = li;
        let mut start = idx;
        let Some(first) = self.cache.get(li) else {
            return Ok(None);
        };
        let (st, section) = (first.seek_track, first.row.section_id);
        for _ in 0..CACHE {
            let Some(l) = self.cache.get(li) else {
                break;
            };
            let picks: Vec<usize> = l
                .frames
                .iter()
                .enumerate()
                .skip(start)
                .filter(|(_, f)| f.track == st)
                .map(|(i, _)| i)
                .collect();
            let mut ended = false;
            for i in picks {
                let is_key = self
                    .cache
                    .get(li)
                    .and_then(|l| l.frames.get(i))
                    .is_some_and(|f| f.key);
                if is_key && !(out.is_empty() && i == idx && start == idx) {
                    ended = true;
                    break;
                }
                match self.frame(li, i)? {
                    Some(f) => out.push(f),
                    None if out.is_empty() => return Ok(None), // keyframe unreadable
                    None => {}
                }
            }
            if ended {
                break;
            }
            // Reached the end of the segment: does the GOP go on in the next one?
            let Some(next) = self.refresh(li)? else {
                break;
            };
            let Some(nli) = self.ensure_loaded(next)? else {
                break;
            };
            if self.cache.get(nli).map(|l| l.row.section_id) != Some(section) {
                break;
            }
            li = nli;
            start = 0;
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn set_current_tracks(&mut self, conn: &Connection, set: i64) -> Result<(), StoreError> {
        self.current_set = Some(set);
        self.tracks = track_set(&mut self.sets, conn, set)?
            .map(<[TrackInfo]>::to_vec)
            .unwrap_or_default();
        Ok(())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        for l in self.cache.drain(..) {
            self.store.unpin(l.row.id);
        }
    }
}

fn note_bad_frame(camera: &str, l: &mut Loaded, idx: usize, why: &str) {
    l.bad_frames += 1;
    if l.bad_frames == 1 {
        tracing::warn!(
            "camera {camera}: segment {} ({}): frame {idx}: {why}; skipped (further bad frames \
             of this segment are skipped silently)",
            l.row.id,
            l.path.display()
        );
    }
}

/// The `size` bytes at `offset` of segment `l`: a slice of `ahead` when it holds them, else
/// read with up to [`READ_AHEAD`] bytes after them into a new `ahead`. The read never goes
/// past the end of the last frame the index lists, so a growing file's unfinished tail is
/// never kept (the recorder writes a frame before it indexes it).
fn read_at(
    ahead: &mut Option<(i64, u64, Bytes)>,
    l: &mut Loaded,
    offset: u64,
    size: u32,
) -> std::io::Result<Bytes> {
    let end = offset + u64::from(size);
    if let Some((id, start, buf)) = ahead.as_ref() {
        if *id == l.row.id && offset >= *start && end <= start + buf.len() as u64 {
            let from = (offset - start) as usize;
            return Ok(buf.slice(from..from + size as usize));
        }
    }
    if l.file.is_none() {
        l.file = Some(File::open(&l.path)?);
    }
    let Some(file) = l.file.as_mut() else {
        return Err(std::io::Error::other("no file"));
    };
    let indexed_end = l.frames.iter().map(|f| f.offset + u64::from(f.size)).max();
    let want = indexed_end
        .unwrap_or(end)
        .min(offset + READ_AHEAD as u64)
        .max(end);
    let len = (want - offset) as usize;
    let buf = match map_window(file, offset, len) {
        Ok(buf) => buf,
        Err(e) => {
            tracing::debug!(path = %l.path.display(), offset, len, error = %e,
                "segment window not mapped; read instead");
            file.seek(SeekFrom::Start(offset))?;
            // `read_to_end` fills the spare capacity without zeroing it first.
            let mut buf = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut buf)?;
            Bytes::from(buf)
        }
    };
    if buf.len() < size as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let data = buf.slice(..size as usize);
    *ahead = Some((l.row.id, offset, buf));
    Ok(data)
}

/// The `len` bytes at `offset` of `file` (fewer if the file is shorter), memory-mapped and
/// read in by `MADV_POPULATE_READ` (docs/store.md "Read-ahead"): the frames are slices of the
/// page cache, never copied into the process, and an I/O error or a file shorter than the
/// index shows here as an error, like a failed `read`, instead of as SIGBUS on first touch.
fn map_window(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let on_disk = file.metadata()?.len().saturating_sub(offset);
    let len = len.min(usize::try_from(on_disk).unwrap_or(usize::MAX));
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: a mapping is undefined behaviour only if the mapped bytes change or vanish
    // while it lives. ipcamd never rewrites or truncates segment bytes up to the indexed
    // end, which bounds every window: the recorder only appends, crash recovery runs
    // before any reader opens, retention unlinks files (the mapping keeps the inode).
    // Another program truncating a segment file while ipcamd reads it is the case left
    // (docs/store.md "Read-ahead").
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)?
    };
    map.advise(memmap2::Advice::PopulateRead)?;
    Ok(Bytes::from_owner(map))
}

fn track_set<'a>(
    sets: &'a mut HashMap<i64, Option<Vec<TrackInfo>>>,
    conn: &Connection,
    id: i64,
) -> Result<Option<&'a [TrackInfo]>, StoreError> {
    if let std::collections::hash_map::Entry::Vacant(e) = sets.entry(id) {
        e.insert(crate::track_set(conn, id)?);
    }
    Ok(sets.get(&id).and_then(|t| t.as_deref()))
}

/// Fills a cached segment's frames and section facts (with the index lock held).
fn update_loaded(
    loc: &mut Locator<'_>,
    l: &mut Loaded,
    frames: Vec<FrameMeta>,
) -> Result<(), StoreError> {
    let section = db::section_query(loc.conn, "WHERE id = ?1", [l.row.section_id])?;
    let (set, open) = section.map_or((0, false), |s| (s.track_set_id, s.open));
    l.track_set = set;
    // A section given up on a full disk is over, whatever its row says (lib.rs `Shared`).
    l.section_open = open
        && !lock(&loc.store.inner.state)
            .unclosed
            .contains(&l.row.section_id);
    l.seek_track = track_set(loc.sets, loc.conn, set)?.map_or(0, format::seek_track);
    let edge = |order: &str| -> Result<Option<i64>, StoreError> {
        Ok(db::segment_query(
            loc.conn,
            &format!("WHERE section_id = ?1 AND frames > 0 ORDER BY start_us {order}, id {order} LIMIT 1"),
            [l.row.section_id],
        )?
        .map(|r| r.id))
    };
    l.first_in_section = edge("ASC")? == Some(l.row.id);
    l.last_in_section = edge("DESC")? == Some(l.row.id);
    l.first_of_track.clear();
    l.last_of_track.clear();
    for (i, f) in frames.iter().enumerate() {
        l.first_of_track.entry(f.track).or_insert(i);
        l.last_of_track.insert(f.track, i);
    }
    l.frames = frames;
    Ok(())
}

/// The locating queries, run with the index lock held.
struct Locator<'a> {
    conn: &'a Connection,
    sets: &'a mut HashMap<i64, Option<Vec<TrackInfo>>>,
    camera_id: i64,
    camera: &'a str,
    logged: &'a mut HashSet<i64>,
    store: &'a Store,
}

impl Locator<'_> {
    /// The frames of a segment that its row vouches for (decoding faults logged once).
    fn decode(&mut self, row: &SegmentRow) -> Vec<FrameMeta> {
        let d = format::decode_blob(&row.blob);
        if let Some(fault) = &d.fault {
            if self.logged.insert(row.id) {
                tracing::warn!(
                    "camera {}: segment {} ({}): frame index: {fault}; using the {} frames \
                     before it",
                    self.camera,
                    row.id,
                    self.store.segment_path(self.camera, row.id).display(),
                    d.frames.len()
                );
            }
        }
        let mut frames = d.frames;
        frames.truncate(usize::try_from(row.frames).unwrap_or(usize::MAX));
        frames.retain(|f| f.end() <= row.bytes);
        frames
    }

    fn seek_track_of_section(&mut self, section: i64) -> Result<u32, StoreError> {
        let set =
            db::section_query(self.conn, "WHERE id = ?1", [section])?.map_or(0, |s| s.track_set_id);
        Ok(track_set(self.sets, self.conn, set)?.map_or(0, format::seek_track))
    }

    fn locate(&mut self, t: UnixMicros, dir: Direction) -> Result<Option<Hit>, StoreError> {
        let containing = db::section_query(
            self.conn,
            "WHERE camera_id = ?1 AND start_us <= ?2 AND frames > 0 \
             ORDER BY start_us DESC, id DESC LIMIT 1",
            params![self.camera_id, t],
        )?;
        // Where to continue in a gap: the sections after / before this key.
        let mut after = (t, i64::MAX);
        let mut before = (t, i64::MAX);
        if let Some(sec) = &containing {
            if sec.end_us >= t {
                if let Some(hit) = self.key_at_or_before(sec.id, t)? {
                    return Ok(Some(hit));
                }
                if dir == Direction::Forward {
                    if let Some(hit) = self.key_after(sec.id, t)? {
                        return Ok(Some(hit));
                    }
                }
                after = (sec.start_us, sec.id);
                before = (sec.start_us, sec.id);
            } else {
                // In a gap: `sec` is the previous section itself.
                before = (sec.start_us, sec.id.saturating_add(1));
            }
        }
        match dir {
            Direction::Forward => {
                while let Some(sec) = db::section_query(
                    self.conn,
                    "WHERE camera_id = ?1 AND (start_us, id) > (?2, ?3) AND frames > 0 \
                     ORDER BY start_us, id LIMIT 1",
                    params![self.camera_id, after.0, after.1],
                )? {
                    if let Some(hit) = self.edge_key(sec.id, true)? {
                        return Ok(Some(hit));
                    }
                    after = (sec.start_us, sec.id);
                }
            }
            Direction::Reverse => {
                while let Some(sec) = db::section_query(
                    self.conn,
                    "WHERE camera_id = ?1 AND (start_us, id) < (?2, ?3) AND frames > 0 \
                     ORDER BY start_us DESC, id DESC LIMIT 1",
                    params![self.camera_id, before.0, before.1],
                )? {
                    if let Some(hit) = self.edge_key(sec.id, false)? {
                        return Ok(Some(hit));
                    }
                    before = (sec.start_us, sec.id);
                }
            }
        }
        Ok(None)
    }

    /// The seek-track keyframe at or before `t` within a section.
    fn key_at_or_before(&mut self, section: i64, t: UnixMicros) -> Result<Option<Hit>, StoreError> {
        let st = self.seek_track_of_section(section)?;
        let mut row = db::segment_query(
            self.conn,
            "WHERE section_id = ?1 AND start_us <= ?2 AND frames > 0 \
             ORDER BY start_us DESC, id DESC LIMIT 1",
            params![section, t],
        )?;
        while let Some(r) = row {
            let frames = self.decode(&r);
            if let Some(i) = frames
                .iter()
                .rposition(|f| f.key && f.track == st && f.wallclock <= t)
            {
                return Ok(Some((r, frames, i)));
            }
            row = db::segment_query(
                self.conn,
                "WHERE section_id = ?1 AND (start_us, id) < (?2, ?3) AND frames > 0 \
                 AND last_key_us IS NOT NULL ORDER BY start_us DESC, id DESC LIMIT 1",
                params![section, r.start_us, r.id],
            )?;
        }
        Ok(None)
    }

    /// The first seek-track keyframe after `t` within a section.
    fn key_after(&mut self, section: i64, t: UnixMicros) -> Result<Option<Hit>, StoreError> {
        let st = self.seek_track_of_section(section)?;
        let mut row = db::segment_query(
            self.conn,
            "WHERE section_id = ?1 AND start_us <= ?2 AND frames > 0 \
             ORDER BY start_us DESC, id DESC LIMIT 1",
            params![section, t],
        )?;
        if row.is_none() {
            return self.edge_key(section, true);
        }
        while let Some(r) = row {
            let frames = self.decode(&r);
            if let Some(i) = frames
                .iter()
                .position(|f| f.key && f.track == st && f.wallclock > t)
            {
                return Ok(Some((r, frames, i)));
            }
            row = db::segment_query(
                self.conn,
                "WHERE section_id = ?1 AND (start_us, id) > (?2, ?3) AND frames > 0 \
                 AND first_key_us IS NOT NULL ORDER BY start_us, id LIMIT 1",
                params![section, r.start_us, r.id],
            )?;
        }
        Ok(None)
    }

    /// The first (`first`) or last seek-track keyframe of a section.
    fn edge_key(&mut self, section: i64, first: bool) -> Result<Option<Hit>, StoreError> {
        let st = self.seek_track_of_section(section)?;
        let (column, order, cmp) = if first {
            ("first_key_us", "", ">")
        } else {
            ("last_key_us", "DESC", "<")
        };
        let mut key = if first {
            (UnixMicros::MIN, i64::MIN)
        } else {
            (UnixMicros::MAX, i64::MAX)
        };
        let sql = format!(
            "WHERE section_id = ?1 AND (start_us, id) {cmp} (?2, ?3) AND frames > 0 \
             AND {column} IS NOT NULL ORDER BY start_us {order}, id {order} LIMIT 1"
        );
        while let Some(r) = db::segment_query(self.conn, &sql, params![section, key.0, key.1])? {
            let frames = self.decode(&r);
            let found = if first {
                frames.iter().position(|f| f.key && f.track == st)
            } else {
                frames.iter().rposition(|f| f.key && f.track == st)
            };
            if let Some(i) = found {
                return Ok(Some((r, frames, i)));
            }
            key = (r.start_us, r.id);
        }
        Ok(None)
    }
}
