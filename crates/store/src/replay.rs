//! ONVIF replay selection (Streaming Specification "Replay", docs/onvif.md "Replay"): which
//! stored units one PLAY delivers, in which order, with which C/E/D/T flags, and when each
//! is due. Hand-written: this is the replay logic no crate has. It reads through a
//! [`Reader`] and never reads a clock or touches a socket: the server's pump asks for
//! batches and sleeps or writes as [`Pacing`] says.
//!
//! ```text
//!  forward:  seek(start) -> next_forward ... (all set-up tracks, recorded order)
//!            filter (tracks, Frames, range end) -> hold queue (per-track lookahead for T)
//!  reverse:  seek(start) -> prev_gop ... (video only, GOPs latest first, decode order inside)
//!            filter (Frames, range end) -> one-GOP lookahead (for T and E)
//! ```
//!
//! Flags: C = keyframe (audio units are all clean points); E = the store's last unit of
//! its track in a closed section (in reverse: the last unit sent of a section, i.e. the
//! last of its earliest GOP); D = the first unit of every reverse GOP and the first unit
//! of a delivery that cancelled another (`Immediate: yes`); T = the last unit of a track
//! when nothing more follows in this direction (footage end of a recording that is not
//! growing, or the end of a closed range).
//!
//! `Frames: intra` sends video keyframes only (no audio: a stream of audio fragments one
//! per GOP is of no use); `intra/<ms>` keeps keyframes at least that far apart on the
//! recording timeline; `predicted` drops disposable (non-reference) pictures.
//!
//! A set-up track that the delivery does not send (audio in reverse or with `Frames:
//! intra`) still gets its T: the delivery opens with that track's [`SILENT_UNITS`] units
//! at the start point, in the delivery's direction, T on the last (docs/replay.md
//! "Tracks a delivery does not send").

use std::collections::VecDeque;

use ipcamd_proto::codec::{is_disposable, MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;

use crate::reader::{Direction, Reader, StoredFrame};
use crate::StoreError;

/// A unit whose track has no later unit within this much recording time is sent without
/// knowing whether it is the track's last (T stays clear): bounds the hold queue for
/// sparse tracks.
const HOLD_US: i64 = 2_000_000;

/// Units sent at the start point for a set-up track the delivery does not send, the last
/// one with T. Two, not one: GStreamer's `rtspsrc` in ONVIF mode discards the first access
/// unit of every stream after a seek (docs/replay.md "GStreamer as a peer"), and the T of
/// a lone unit would never reach its `rtponvifparse`.
pub const SILENT_UNITS: usize = 2;

/// Which frames a delivery sends (ONVIF `Frames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFilter {
    All,
    Predicted,
    Intra { interval_us: Option<i64> },
}

/// What one PLAY asks for, resolved to the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayParams {
    /// The requested start (the start point follows the synchronisation-point rules);
    /// `None`: the beginning (forward) or the end (reverse) of the footage.
    pub start: Option<UnixMicros>,
    /// The end of a closed range (later than `start` forward, earlier in reverse).
    pub end: Option<UnixMicros>,
    pub direction: Direction,
    pub frames: FrameFilter,
    /// Set-up tracks (indices into the recording's tracks); others are skipped.
    pub tracks: Vec<usize>,
    /// Set D on the first unit (the delivery replaced one in progress).
    pub discontinuity: bool,
    /// Resume after a PAUSE: skip units at or before (forward) / GOPs at or after
    /// (reverse) this wallclock, which were sent already.
    pub resume_after: Option<UnixMicros>,
}

/// The ONVIF replay header extension flags of one unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub clean: bool,
    pub end: bool,
    pub discontinuity: bool,
    pub terminal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayUnit {
    pub frame: StoredFrame,
    pub flags: Flags,
}

/// The answer to [`Replay::next_batch`].
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    Units(Vec<ReplayUnit>),
    /// Nothing more yet, but the recording is growing: ask again later.
    Waiting,
    /// The delivery is complete (T was set on each track's last unit).
    Finished,
}

/// One delivery in progress.
pub struct Replay {
    reader: Reader,
    params: ReplayParams,
    kinds: Vec<MediaKind>,
    start_point: Option<UnixMicros>,
    /// Forward: units read but not yet sent (recorded order).
    held: VecDeque<StoredFrame>,
    /// Reverse: the next GOP (read ahead to know whether the current one is the last).
    next_gop: Option<Vec<StoredFrame>>,
    /// No more units will be read (range end passed or footage end of a closed recording).
    exhausted: bool,
    finished: bool,
    first_sent: bool,
    last_key: Option<UnixMicros>,
    /// Units of the tracks this delivery does not send, sent first (see the module doc).
    silent: VecDeque<ReplayUnit>,
}

impl Replay {
    /// Places the reader at the start point. [`Replay::start_point`] tells where that is.
    pub fn start(mut reader: Reader, params: ReplayParams) -> Result<Replay, StoreError> {
        let kinds = reader.tracks().iter().map(TrackInfo::kind).collect();
        let t = match (params.resume_after, params.start, params.direction) {
            (Some(t), _, Direction::Forward) => t,
            (Some(t), _, Direction::Reverse) => t.saturating_sub(1),
            (None, Some(t), _) => t,
            (None, None, Direction::Forward) => UnixMicros::MIN,
            (None, None, Direction::Reverse) => UnixMicros::MAX,
        };
        let start_point = reader.seek(t, params.direction)?;
        let mut replay = Replay {
            reader,
            params,
            kinds,
            start_point,
            held: VecDeque::new(),
            next_gop: None,
            exhausted: false,
            finished: false,
            first_sent: false,
            last_key: None,
            silent: VecDeque::new(),
        };
        if replay.start_point.is_some() && replay.params.resume_after.is_none() {
            replay.silent = replay.silent_units()?;
            if !replay.silent.is_empty() {
                // Reading them moved the forward cursor: place both cursors again.
                replay.reader.seek(t, replay.params.direction)?;
            }
        }
        Ok(replay)
    }

    /// The set-up tracks this delivery sends nothing of: audio (any track that is not
    /// video) in reverse or with `Frames: intra`.
    fn silent_tracks(&self) -> Vec<usize> {
        let skips_audio = self.params.direction == Direction::Reverse
            || matches!(self.params.frames, FrameFilter::Intra { .. });
        if !skips_audio {
            return Vec::new();
        }
        let mut t: Vec<usize> = self
            .params
            .tracks
            .iter()
            .copied()
            .filter(|&t| !self.is_video(t))
            .collect();
        t.dedup();
        t
    }

    /// The first [`SILENT_UNITS`] units of each silent track from the start point on (at
    /// most [`HOLD_US`] of recording later), in delivery order, flagged: clean points, D on
    /// each in reverse (each is its own GOP there), T on the last of each track.
    fn silent_units(&mut self) -> Result<VecDeque<ReplayUnit>, StoreError> {
        let tracks = self.silent_tracks();
        let Some(from) = self.start_point else {
            return Ok(VecDeque::new());
        };
        let mut per_track: Vec<Vec<StoredFrame>> = tracks.iter().map(|_| Vec::new()).collect();
        while per_track.iter().any(|v| v.len() < SILENT_UNITS) {
            let Some(f) = self.reader.next_forward()? else {
                break;
            };
            if f.wallclock > from.saturating_add(HOLD_US) {
                break;
            }
            if let Some(v) = tracks
                .iter()
                .position(|&t| t == f.track)
                .and_then(|i| per_track.get_mut(i))
            {
                if v.len() < SILENT_UNITS {
                    v.push(f);
                }
            }
        }
        let reverse = self.params.direction == Direction::Reverse;
        let mut out = VecDeque::new();
        for mut frames in per_track {
            if reverse {
                frames.reverse();
            }
            let n = frames.len();
            for (i, f) in frames.into_iter().enumerate() {
                let mut u = unit(f, i + 1 == n);
                u.flags.clean = true;
                u.flags.end = false;
                u.flags.discontinuity = reverse;
                out.push_back(u);
            }
        }
        Ok(out)
    }

    /// The wallclock of the unit the delivery starts with, if footage exists there.
    pub fn start_point(&self) -> Option<UnixMicros> {
        self.start_point
    }

    pub fn params(&self) -> &ReplayParams {
        &self.params
    }

    /// The recording's tracks (as described).
    pub fn tracks(&self) -> &[TrackInfo] {
        self.reader.tracks()
    }

    /// Up to about `max_units` units (a reverse GOP is never split) or `max_bytes` bytes.
    pub fn next_batch(&mut self, max_units: usize, max_bytes: usize) -> Result<Batch, StoreError> {
        if self.finished {
            return Ok(Batch::Finished);
        }
        let mut out: Vec<ReplayUnit> = self.silent.drain(..).collect();
        match self.params.direction {
            Direction::Forward => self.forward(&mut out, max_units, max_bytes)?,
            Direction::Reverse => self.reverse(&mut out, max_units, max_bytes)?,
        }
        if let (Some(first), false) = (out.first_mut(), self.first_sent) {
            self.first_sent = true;
            first.flags.discontinuity |= self.params.discontinuity;
        }
        if !out.is_empty() {
            return Ok(Batch::Units(out));
        }
        if self.exhausted && self.held.is_empty() && self.next_gop.is_none() {
            self.finished = true;
            return Ok(Batch::Finished);
        }
        Ok(Batch::Waiting)
    }

    fn is_video(&self, track: usize) -> bool {
        self.kinds.get(track) == Some(&MediaKind::Video)
    }

    /// Whether `f` passes the track and `Frames` selection (forward; the range end and
    /// resume point are checked by the caller).
    fn wanted(&mut self, f: &StoredFrame) -> bool {
        if !self.params.tracks.contains(&f.track) {
            return false;
        }
        let video = self.is_video(f.track);
        match self.params.frames {
            FrameFilter::All => true,
            FrameFilter::Predicted => {
                !video
                    || !self
                        .reader
                        .tracks()
                        .get(f.track)
                        .is_some_and(|t| is_disposable(&t.codec, &f.data))
            }
            FrameFilter::Intra { interval_us } => {
                if !video || !f.keyframe {
                    return false;
                }
                let far_enough = match (interval_us, self.last_key) {
                    (Some(iv), Some(last)) => (f.wallclock - last).abs() >= iv,
                    _ => true,
                };
                if far_enough {
                    self.last_key = Some(f.wallclock);
                }
                far_enough
            }
        }
    }

    fn forward(
        &mut self,
        out: &mut Vec<ReplayUnit>,
        max_units: usize,
        max_bytes: usize,
    ) -> Result<(), StoreError> {
        let mut bytes = 0usize;
        loop {
            // Send what is ready: the head, once its track's next unit is known (or the
            // end is), or once it has waited HOLD_US of recording time.
            while let Some(head) = self.held.front() {
                let later_same = self.held.iter().skip(1).any(|f| f.track == head.track);
                let newest = self.held.back().map_or(head.wallclock, |f| f.wallclock);
                let ready = later_same || self.exhausted || newest - head.wallclock > HOLD_US;
                if !ready || out.len() >= max_units || bytes >= max_bytes {
                    break;
                }
                let Some(f) = self.held.pop_front() else {
                    break;
                };
                let terminal = self.exhausted && !later_same;
                bytes += f.data.len();
                out.push(unit(f, terminal));
            }
            if out.len() >= max_units || bytes >= max_bytes || self.exhausted {
                return Ok(());
            }
            let Some(f) = self.reader.next_forward()? else {
                // The current end of the footage: finish, or wait for more.
                if self.growing()? {
                    // Send what is held now (the live edge), without T.
                    while out.len() < max_units {
                        let Some(f) = self.held.pop_front() else {
                            break;
                        };
                        out.push(unit(f, false));
                    }
                } else {
                    self.exhausted = true;
                    continue;
                }
                return Ok(());
            };
            if self.params.end.is_some_and(|end| f.wallclock > end) {
                self.exhausted = true;
                continue;
            }
            if self.params.resume_after.is_some_and(|t| f.wallclock <= t) {
                continue;
            }
            if self.wanted(&f) {
                self.held.push_back(f);
            }
        }
    }

    fn reverse(
        &mut self,
        out: &mut Vec<ReplayUnit>,
        max_units: usize,
        max_bytes: usize,
    ) -> Result<(), StoreError> {
        let mut bytes = 0usize;
        while out.len() < max_units && bytes < max_bytes {
            let gop = match self.next_gop.take() {
                Some(g) => g,
                None => match self.read_gop()? {
                    Some(g) => g,
                    None => return Ok(()),
                },
            };
            // The GOP after this one (earlier in time) decides T.
            self.next_gop = self.read_gop()?;
            let last_gop = self.next_gop.is_none();
            let section_start = gop.first().is_some_and(|f| f.start_of_section);
            let n = gop.len();
            for (i, f) in gop.into_iter().enumerate() {
                let is_last = i + 1 == n;
                bytes += f.data.len();
                let mut u = unit(f, last_gop && is_last);
                u.flags.end = section_start && is_last;
                u.flags.discontinuity = i == 0;
                out.push(u);
            }
        }
        Ok(())
    }

    /// The next reverse GOP after selection, or `None` at the end (sets `exhausted`).
    fn read_gop(&mut self) -> Result<Option<Vec<StoredFrame>>, StoreError> {
        loop {
            if self.exhausted {
                return Ok(None);
            }
            let Some(gop) = self.reader.prev_gop()? else {
                self.exhausted = true;
                return Ok(None);
            };
            let Some(key) = gop.first() else { continue };
            let key_wc = key.wallclock;
            let section_start = key.start_of_section;
            if self.params.resume_after.is_some_and(|t| key_wc >= t) {
                continue;
            }
            let last_wc = gop.last().map_or(key_wc, |f| f.wallclock);
            if let Some(end) = self.params.end {
                if last_wc < end {
                    // Wholly before the range end (e.g. the end is in a gap): done.
                    self.exhausted = true;
                    return Ok(None);
                }
                if key_wc <= end {
                    // The GOP that reaches the range end is the last one sent.
                    self.exhausted = true;
                }
            }
            let first_of_delivery = !self.first_sent && self.start_point == Some(key_wc);
            let start = self.params.start;
            let mut kept = Vec::with_capacity(gop.len());
            for (i, f) in gop.into_iter().enumerate() {
                // The start GOP: frames later than the requested start are not shown.
                if first_of_delivery && i > 0 && start.is_some_and(|s| f.wallclock > s) {
                    continue;
                }
                if self.wanted(&f) {
                    kept.push(f);
                }
            }
            if let Some(first) = kept.first_mut() {
                first.start_of_section = section_start;
                return Ok(Some(kept));
            }
        }
    }

    fn growing(&self) -> Result<bool, StoreError> {
        Ok(self.reader.sections()?.last().is_some_and(|s| s.recording))
    }
}

fn unit(frame: StoredFrame, terminal: bool) -> ReplayUnit {
    let flags = Flags {
        clean: frame.keyframe,
        end: frame.end_of_section,
        discontinuity: false,
        terminal,
    };
    ReplayUnit { frame, flags }
}

/// When each unit of a delivery is due, relative to the delivery's start (µs), for
/// `Rate-Control: yes` at `scale` times real time. Forward: by the unit's distance from the
/// first unit. Reverse: a whole GOP is due when playback reaches its keyframe (counted from
/// the first GOP's keyframe), so the client has it before it must show it.
#[derive(Debug, Clone)]
pub struct Pacing {
    scale: f64,
    anchor: Option<UnixMicros>,
}

impl Pacing {
    pub fn new(scale: f64) -> Pacing {
        Pacing {
            scale,
            anchor: None,
        }
    }

    /// The due offset of `u`, or `None` if it goes out with the unit before it.
    pub fn due(&mut self, u: &ReplayUnit) -> Option<i64> {
        let wc = u.frame.wallclock;
        if self.scale < 0.0 && !u.flags.discontinuity {
            return None;
        }
        let anchor = *self.anchor.get_or_insert(wc);
        let dist = if self.scale < 0.0 {
            anchor - wc
        } else {
            wc - anchor
        };
        Some(((dist.max(0) as f64) / self.scale.abs()) as i64)
    }
}
