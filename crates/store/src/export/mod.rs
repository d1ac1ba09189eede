//! MP4 export (docs/store.md "MP4 export: a virtual file"): a time range of one camera as an ISO BMFF file
//! (ISO/IEC 14496-12; H.264/H.265 storage per ISO/IEC 14496-15, AAC per ISO/IEC 14496-14,
//! G.711 as QuickTime `ulaw`/`alaw` sound descriptions), served as a *virtual file*, the idea
//! of Moonfire NVR's `.mp4` serving: [`ExportFile`] is planned from the index alone (no
//! sample data is read), knows its length up front, and writes any byte range on demand,
//! reading sample data from the segment files with bounded memory.
//!
//! Layout (faststart): `ftyp`, `moov`, then `mdat` (64-bit size). The `mdat` holds the
//! samples in *periods* of at most [`PERIOD_US`] of one segment, cut at a keyframe when the
//! GOP is at most that long; within a period, one chunk
//! per track (all its units of the period, in file order), tracks in order. Because every
//! sample has exactly its stored size (H.264/H.265 are converted from Annex B in place, see
//! `codec.rs`; other codecs are copied), the whole layout, every `stco`/`co64` offset and
//! every `stsz` size come from the index. A byte range is served by finding its period
//! (binary search), decoding that period's units from the compact unit table (`table.rs`)
//! to learn where each sample is in its segment file, and copying (or, for video,
//! converting) through one read window of [`READ_WINDOW`] bytes.
//!
//! Memory: the unit table (~1 byte per repeated-size audio unit, ~3 per video frame), 32
//! bytes per period, 12 per chunk, 4 per chunk again in the per-track chunk lists, the
//! `stts`/`ctts`/`stss`/`stsc` boxes as bytes (a few entries for steady frame rates), and
//! per reader the window plus one video sample and its converted copy. The `stsz` and chunk
//! offset boxes (the big ones) are generated from those tables when they are read.
//! [`ExportFile::table_bytes`] reports the total.
//!
//! The segments of the range are pinned while the file is alive (retention in this process
//! skips them); a segment file that vanishes anyway (another process's retention, or
//! damage) makes the read fail with an error naming it.
//!
//! Timeline: each track's samples are placed at `(first wallclock of the track in the
//! section − export start) + (pts − first pts in the section)`, so tracks stay in sync and
//! a gap between sections stays a gap (the last frame before it lasts longer). Decode
//! times are the sorted presentation times (B-frames get a `ctts`); a track that starts
//! later than the first keyframe gets an `elst` empty edit.
//!
//! Left out: several sample descriptions per track (export stops at a section whose tracks
//! differ), AVC/HEVC parameter-set changes inside the range (such sets stay in band), more
//! than 15 tracks, and the framing check of replay reads (a damaged frame is exported as it
//! is stored; a video frame without start codes becomes filler data).

mod codec;
mod fmp4;
mod live;
mod moov;
mod serve;
mod table;

pub use live::LiveFmp4;
pub use serve::ExportReader;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;
use mp4_atom::{Ctts, Stsc, StscEntry, Stss};

use crate::reader::{Direction, FrameRef, Reader};
use crate::{Store, StoreError};
use moov::{Piece, SizeTable, TrackTables};
use table::{G711Timing, SampleTiming, Unit, UnitWriter, MAX_TRACKS, SKIPPED};

/// What an export holds (and, for [`Store::export_mp4`], what it wrote).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Wallclock of the first exported unit (the keyframe at or before `from`).
    pub start: UnixMicros,
    /// Wallclock of the last exported unit.
    pub end: UnixMicros,
    /// Units exported, all tracks.
    pub frames: u64,
    /// Sample bytes in the `mdat`.
    pub bytes: u64,
    /// Codec names of the tracks, in file order.
    pub tracks: Vec<String>,
    /// Sections the range spans.
    pub sections: u64,
    /// Anything the export left out, in words.
    pub notes: Vec<String>,
}

/// Longest stretch of footage in one `mdat` period (one chunk per track, one fragment of a
/// fragmented file).
pub const PERIOD_US: i64 = 2_000_000;
/// A period ends earlier, at a keyframe of the seek track, once it holds this much: so
/// periods (fragments) follow GOPs of up to [`PERIOD_US`].
const PERIOD_MIN_US: i64 = 1_000_000;
/// A period is also cut before it would pass this many sample bytes or units.
const PERIOD_MAX_BYTES: u64 = 32 << 20;
const PERIOD_MAX_UNITS: u32 = 1 << 16;
/// Bytes read from a segment file at a time (smaller samples are copied out of it).
pub const READ_WINDOW: usize = 256 * 1024;
/// How much of the first JPEG frame is read for its picture size.
const JPEG_PROBE: usize = 64 * 1024;

/// A planned MP4 file of a time range (see the module doc): cheap to clone, `Send + Sync`;
/// the segments it reads stay pinned until the last clone is dropped.
#[derive(Clone)]
pub struct ExportFile {
    plan: Arc<Plan>,
}

struct Plan {
    camera: String,
    report: ExportReport,
    tracks: Vec<OutTrack>,
    /// Source track (index in the section's track list) -> output track.
    by_source: [Option<u8>; 16],
    segments: Vec<SegmentRef>,
    _pins: Pins,
    units: Vec<u8>,
    periods: Vec<Period>,
    chunks: Vec<Chunk>,
    /// Per output track, its chunks (indices into `chunks`), in file order.
    track_chunks: Vec<Vec<u32>>,
    ftyp: Vec<u8>,
    moov: Vec<Piece>,
    moov_len: u64,
    /// File offset of the `mdat` payload (after its 16-byte header).
    data_at: u64,
    /// Bytes of the `mdat` payload.
    data_len: u64,
    /// Set for a fragmented file (then `ftyp`/`moov`/`data_at` are unused).
    frag: Option<fmp4::FragLayout>,
}

struct OutTrack {
    source: u8,
    /// Stored units exported.
    units: u32,
    /// Annex B to length-prefixed: (H.265?, parameter sets of the sample entry).
    convert: Option<(bool, Vec<Bytes>)>,
}

struct SegmentRef {
    id: i64,
    path: PathBuf,
}

/// Pinned segments, unpinned on drop (also when planning fails half-way).
struct Pins {
    store: Store,
    ids: Vec<i64>,
}

impl Drop for Pins {
    fn drop(&mut self) {
        for &id in &self.ids {
            self.store.unpin(id);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Period {
    /// Offset in the `mdat` payload.
    mdat_offset: u64,
    /// Offset of the period's first unit in its segment file.
    file_offset: u64,
    /// Index in `segments`.
    segment: u32,
    /// Position of the first unit in the unit stream.
    units_pos: u32,
    /// Units (all, exported or not) in the period.
    units: u32,
    /// Index of the period's first chunk in `chunks`.
    first_chunk: u32,
}

#[derive(Debug, Clone, Copy)]
struct Chunk {
    bytes: u32,
    /// MP4 samples (`stsc`).
    samples: u32,
    /// Index of the chunk's first sample in its track.
    first_sample: u32,
    /// Output track (source track while planning).
    track: u8,
}

impl Store {
    /// Plans the MP4 file of `[from, to)` of `camera` (see [`ExportFile`]): starts at the
    /// video keyframe at or before `from`, holds every unit with wallclock `< to`. Reads
    /// only the index (and the first JPEG frame's header, for its size).
    pub fn export_file(
        &self,
        camera: &str,
        from: UnixMicros,
        to: UnixMicros,
    ) -> Result<ExportFile, StoreError> {
        plan(self, camera, from, to, false)
    }

    /// Like [`Store::export_file`], as a fragmented MP4 (`moof` + `mdat` per period of at
    /// most 2 s; see `export/fmp4.rs`): for players that start before the end of the
    /// download. Its length is known up front too; it is meant to be read forward.
    pub fn export_fragmented(
        &self,
        camera: &str,
        from: UnixMicros,
        to: UnixMicros,
    ) -> Result<ExportFile, StoreError> {
        plan(self, camera, from, to, true)
    }

    /// Writes the MP4 file of `[from, to)` of `camera` to `out` (plans it with
    /// [`Store::export_file`], then writes all of it).
    pub fn export_mp4<W: Write>(
        &self,
        camera: &str,
        from: UnixMicros,
        to: UnixMicros,
        out: &mut W,
    ) -> Result<ExportReport, StoreError> {
        let file = self.export_file(camera, from, to)?;
        file.write_range(0, file.len(), out)?;
        out.flush()
            .map_err(|e| StoreError::Export(format!("writing the MP4 file: {e}")))?;
        Ok(file.report().clone())
    }
}

// ---------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------

fn plan(
    store: &Store,
    camera: &str,
    from: UnixMicros,
    to: UnixMicros,
    fragmented: bool,
) -> Result<ExportFile, StoreError> {
    let mut reader = store.reader(camera)?;
    let Some(start) = reader.seek(from, Direction::Forward)? else {
        return Err(StoreError::Export(format!(
            "camera {camera}: no footage at or after {from}"
        )));
    };
    if start >= to {
        return Err(StoreError::Export(format!(
            "camera {camera}: no footage between {from} and {to}"
        )));
    }
    let mut b = Builder::new(store, camera, start);
    b.fragmented = fragmented;
    let mut section: Option<u64> = None;
    while let Some(f) = reader.next_forward_ref()? {
        if f.meta.wallclock >= to {
            break;
        }
        if section != Some(f.section) {
            if !b.enter_section(&mut reader, &f)? {
                break;
            }
            section = Some(f.section);
        }
        b.push(&f)?;
    }
    drop(reader);
    b.finish()
}

/// A source track while planning.
struct TrackOut {
    info: TrackInfo,
    timescale: u32,
    g711_channels: Option<u32>,
    /// (section, base time, first pts) of the current section.
    anchor: Option<(u64, i64, u64)>,
    last_time: Option<i64>,
    timing: SampleTiming,
    g711: G711Timing,
    /// Keyframe sample numbers (1-based), once a sample is not a keyframe; `None` while
    /// every sample is one.
    keys: Option<Vec<u32>>,
    /// Units (MP4 samples, except for G.711).
    units: u32,
    /// MP4 samples in earlier chunks.
    samples_before: u64,
    jpeg_size: Option<(u16, u16)>,
    jpeg_probed: bool,
}

impl TrackOut {
    fn new(info: TrackInfo) -> TrackOut {
        let g711_channels = match info.codec {
            CodecParams::Pcmu { channels, .. } | CodecParams::Pcma { channels, .. } => {
                Some(u32::from(channels.max(1)))
            }
            _ => None,
        };
        TrackOut {
            timescale: info.clock_rate().max(1),
            info,
            g711_channels,
            anchor: None,
            last_time: None,
            timing: SampleTiming::default(),
            g711: G711Timing::default(),
            keys: None,
            units: 0,
            samples_before: 0,
            jpeg_size: None,
            jpeg_probed: false,
        }
    }

    /// The unit's presentation time on the export timeline (module doc).
    fn place(&mut self, section: u64, pts: u64, wallclock: UnixMicros, start: UnixMicros) -> i64 {
        let time = match self.anchor {
            Some((s, base_time, first_pts)) if s == section => {
                base_time.saturating_add(pts.wrapping_sub(first_pts) as i64)
            }
            _ => {
                let since = i128::from(wallclock.saturating_sub(start)).max(0);
                let ts = i128::from(self.timescale);
                let mut base_time = i64::try_from(since * ts / 1_000_000).unwrap_or(i64::MAX);
                if let Some(last) = self.last_time {
                    base_time = base_time.max(last.saturating_add(1));
                }
                self.anchor = Some((section, base_time, pts));
                base_time
            }
        };
        self.last_time = Some(self.last_time.map_or(time, |l| l.max(time)));
        time
    }

    /// Adds a unit; returns its MP4 samples.
    fn add(&mut self, time: i64, key: bool, size: u32) -> u32 {
        self.units += 1;
        if let Some(ch) = self.g711_channels {
            let n = (size / ch).max(1);
            self.g711.push(time, n);
            return n;
        }
        self.timing.push(time);
        match (&mut self.keys, key) {
            (Some(keys), true) => keys.push(self.units),
            (Some(_), false) => {}
            (None, true) => {}
            (None, false) => self.keys = Some((1..self.units).collect()),
        }
        1
    }

    fn tables(mut self, chunks: &[Chunk], ids: &[u32]) -> TrackTables {
        let mut stsc = Stsc { entries: vec![] };
        for (i, &c) in ids.iter().enumerate() {
            let n = chunks.get(c as usize).map_or(0, |c| c.samples);
            if stsc.entries.last().map(|e| e.samples_per_chunk) != Some(n) {
                stsc.entries.push(StscEntry {
                    first_chunk: i as u32 + 1,
                    samples_per_chunk: n,
                    sample_description_index: 1,
                });
            }
        }
        let chunk_count = ids.len() as u32;
        if let Some(channels) = self.g711_channels {
            self.g711.finish();
            let g = std::mem::take(&mut self.g711);
            return TrackTables {
                timescale: self.timescale,
                stts: g.stts,
                ctts: None,
                stss: None,
                stsc,
                sizes: SizeTable::Identical {
                    count: u32::try_from(g.samples).unwrap_or(u32::MAX),
                    size: channels,
                },
                chunks: chunk_count,
                duration: g.duration,
                first_time: g.first_time.unwrap_or(0).max(0),
                jpeg_size: None,
                info: self.info,
            };
        }
        let default_delta = match self.info.codec {
            CodecParams::Aac { .. } => 1024,
            _ => (self.timescale / 25).max(1),
        };
        self.timing.finish(default_delta);
        let t = std::mem::take(&mut self.timing);
        let ctts = t.has_offsets().then_some(Ctts { entries: t.ctts });
        TrackTables {
            timescale: self.timescale,
            stts: t.stts,
            ctts,
            stss: self.keys.map(|entries| Stss { entries }),
            stsc,
            sizes: SizeTable::Different { count: self.units },
            chunks: chunk_count,
            duration: t.duration,
            first_time: t.first_dts.unwrap_or(0).max(0),
            jpeg_size: self.jpeg_size,
            info: self.info,
        }
    }
}

/// The period being filled while planning.
struct OpenPeriod {
    segment: u32,
    start_wall: UnixMicros,
    file_offset: u64,
    next_offset: u64,
    units_pos: usize,
    units: u32,
    bytes: u64,
    /// Per source track: (bytes, MP4 samples, units).
    per_track: [(u64, u64, u32); MAX_TRACKS],
}

struct Builder<'a> {
    store: &'a Store,
    camera: &'a str,
    start: UnixMicros,
    tracks: Vec<TrackOut>,
    first_section: bool,
    pins: Pins,
    segments: Vec<SegmentRef>,
    units: Vec<u8>,
    writer: UnitWriter,
    periods: Vec<Period>,
    chunks: Vec<Chunk>,
    track_chunks: Vec<Vec<u32>>,
    open: Option<OpenPeriod>,
    data_len: u64,
    report: ExportReport,
    fragmented: bool,
    /// Bytes of the fragments (`moof` + `mdat`) so far, for a fragmented file.
    frag_len: u64,
    /// The track whose keyframes periods start at (the first video track).
    seek_track: u32,
}

impl<'a> Builder<'a> {
    fn new(store: &'a Store, camera: &'a str, start: UnixMicros) -> Builder<'a> {
        Builder {
            store,
            camera,
            start,
            tracks: Vec::new(),
            first_section: true,
            pins: Pins {
                store: store.clone(),
                ids: Vec::new(),
            },
            segments: Vec::new(),
            units: Vec::new(),
            writer: UnitWriter::new(),
            periods: Vec::new(),
            chunks: Vec::new(),
            track_chunks: Vec::new(),
            open: None,
            data_len: 0,
            fragmented: false,
            frag_len: 0,
            seek_track: 0,
            report: ExportReport {
                start,
                end: start,
                ..ExportReport::default()
            },
        }
    }

    /// A unit of a new section: takes the first section's tracks, or stops (`false`) at a
    /// section whose tracks differ.
    fn enter_section(&mut self, reader: &mut Reader, f: &FrameRef) -> Result<bool, StoreError> {
        let these = reader.tracks_of_section(f.section)?.unwrap_or_default();
        if self.first_section {
            self.first_section = false;
            if these.len() > MAX_TRACKS {
                self.report.notes.push(format!(
                    "only the first {MAX_TRACKS} of {} tracks are exported",
                    these.len()
                ));
            }
            for (i, t) in these.iter().enumerate().take(MAX_TRACKS) {
                if t.codec.is_opaque() {
                    self.report.notes.push(format!(
                        "track {i} ({}) is left out: it was recorded as opaque RTP, which MP4 cannot describe",
                        t.codec.name()
                    ));
                }
            }
            self.seek_track = crate::format::seek_track(&these);
            self.tracks = these
                .into_iter()
                .take(MAX_TRACKS)
                .map(TrackOut::new)
                .collect();
            self.track_chunks = vec![Vec::new(); self.tracks.len()];
        } else {
            let same = these.len().min(MAX_TRACKS) == self.tracks.len()
                && these.iter().zip(&self.tracks).all(|(a, b)| *a == b.info);
            if !same {
                self.report.notes.push(format!(
                    "stopped at section {} (wallclock {}): its tracks differ",
                    f.section, f.meta.wallclock
                ));
                return Ok(false);
            }
        }
        self.report.sections += 1;
        Ok(true)
    }

    fn push(&mut self, f: &FrameRef) -> Result<(), StoreError> {
        let m = f.meta;
        if m.size == 0 {
            return Ok(());
        }
        let segment = match self.segments.last() {
            Some(s) if s.id == f.segment => self.segments.len() - 1,
            _ => {
                // The reader holds its own pin on the segment right now: no gap in which
                // retention could delete it.
                self.store.pin(f.segment);
                self.pins.ids.push(f.segment);
                self.segments.push(SegmentRef {
                    id: f.segment,
                    path: self.store.segment_path(self.camera, f.segment),
                });
                self.segments.len() - 1
            }
        };
        let segment = u32::try_from(segment).map_err(|_| too_long(self.camera))?;
        let cut = match &self.open {
            None => true,
            Some(p) => {
                p.segment != segment
                    || p.next_offset != m.offset
                    || m.wallclock.saturating_sub(p.start_wall) >= PERIOD_US
                    || (m.wallclock.saturating_sub(p.start_wall) >= PERIOD_MIN_US
                        && m.key
                        && m.track == self.seek_track)
                    || p.bytes + u64::from(m.size) > PERIOD_MAX_BYTES
                    || p.units >= PERIOD_MAX_UNITS
            }
        };
        if cut {
            self.close_period()?;
            self.writer.restart();
            self.open = Some(OpenPeriod {
                segment,
                start_wall: m.wallclock,
                file_offset: m.offset,
                next_offset: m.offset,
                units_pos: self.units.len(),
                units: 0,
                bytes: 0,
                per_track: [(0, 0, 0); MAX_TRACKS],
            });
        }
        let src = m.track as usize;
        let exported = self
            .tracks
            .get(src)
            .is_some_and(|t| !t.info.codec.is_opaque());
        self.writer.push(
            &mut self.units,
            Unit {
                track: if exported { src as u8 } else { SKIPPED },
                key: m.key,
                size: m.size,
            },
        );
        let Some(p) = self.open.as_mut() else {
            return Ok(());
        };
        p.units += 1;
        p.next_offset += u64::from(m.size);
        if !exported {
            return Ok(());
        }
        let (Some(t), Some(acc)) = (self.tracks.get_mut(src), p.per_track.get_mut(src)) else {
            return Ok(());
        };
        let time = t.place(f.section, m.pts, m.wallclock, self.start);
        let samples = t.add(time, m.key, m.size);
        p.bytes += u64::from(m.size);
        acc.0 += u64::from(m.size);
        acc.1 += u64::from(samples);
        acc.2 += 1;
        if matches!(t.info.codec, CodecParams::Jpeg) && !t.jpeg_probed {
            t.jpeg_probed = true;
            let path = &self.segments[segment as usize].path;
            t.jpeg_size = probe_jpeg(path, m.offset, m.size);
        }
        self.report.frames += 1;
        self.report.bytes += u64::from(m.size);
        self.report.end = self.report.end.max(m.wallclock);
        Ok(())
    }

    fn close_period(&mut self) -> Result<(), StoreError> {
        let Some(p) = self.open.take() else {
            return Ok(());
        };
        if p.bytes == 0 {
            return Ok(());
        }
        let first_chunk = u32::try_from(self.chunks.len()).map_err(|_| too_long(self.camera))?;
        for (src, &(bytes, samples, units)) in p.per_track.iter().enumerate() {
            let (Some(t), Some(ids)) = (self.tracks.get_mut(src), self.track_chunks.get_mut(src))
            else {
                continue;
            };
            if units == 0 {
                continue;
            }
            ids.push(u32::try_from(self.chunks.len()).map_err(|_| too_long(self.camera))?);
            self.chunks.push(Chunk {
                bytes: u32::try_from(bytes).map_err(|_| too_long(self.camera))?,
                samples: u32::try_from(samples).unwrap_or(u32::MAX),
                first_sample: u32::try_from(t.samples_before).unwrap_or(u32::MAX),
                track: src as u8,
            });
            t.samples_before += samples;
        }
        let trafs = p
            .per_track
            .iter()
            .zip(&self.tracks)
            .filter(|(acc, _)| acc.2 > 0)
            .map(|(acc, t)| (t.info.kind() == MediaKind::Video, u64::from(acc.2)));
        self.frag_len += fmp4::fragment_len(trafs, p.bytes);
        self.periods.push(Period {
            mdat_offset: self.data_len,
            file_offset: p.file_offset,
            segment: p.segment,
            units_pos: u32::try_from(p.units_pos).map_err(|_| too_long(self.camera))?,
            units: p.units,
            first_chunk,
        });
        self.data_len += p.bytes;
        Ok(())
    }

    fn finish(mut self) -> Result<ExportFile, StoreError> {
        self.close_period()?;
        let camera = self.camera;
        let mut by_source = [None; 16];
        let mut tables = Vec::new();
        let mut out_tracks = Vec::new();
        let mut track_chunks = Vec::new();
        let sources = std::mem::take(&mut self.tracks);
        let mut all_ids = std::mem::take(&mut self.track_chunks);
        for (src, t) in sources.into_iter().enumerate() {
            if t.units == 0 {
                continue;
            }
            let out = out_tracks.len() as u8;
            if let Some(slot) = by_source.get_mut(src) {
                *slot = Some(out);
            }
            let ids = all_ids.get_mut(src).map(std::mem::take).unwrap_or_default();
            for &c in &ids {
                if let Some(chunk) = self.chunks.get_mut(c as usize) {
                    chunk.track = out;
                }
            }
            let convert = match &t.info.codec {
                CodecParams::H264 { sps, pps } => Some((false, vec![sps.clone(), pps.clone()])),
                CodecParams::H265 { vps, sps, pps } => {
                    Some((true, vec![vps.clone(), sps.clone(), pps.clone()]))
                }
                _ => None,
            };
            out_tracks.push(OutTrack {
                source: src as u8,
                units: t.units,
                convert,
            });
            tables.push(t.tables(&self.chunks, &ids));
            track_chunks.push(ids);
        }
        if out_tracks.is_empty() {
            return Err(StoreError::Export(format!(
                "camera {camera}: no readable units in the range"
            )));
        }
        self.report.tracks = tables
            .iter()
            .map(|t| t.info.codec.name().to_string())
            .collect();
        if self.fragmented {
            let mut notes = Vec::new();
            let init = fmp4::init_segment(&tables, &mut notes)?;
            self.report.notes.extend(notes);
            let len = init.len() as u64 + self.frag_len;
            let tracks = tables
                .into_iter()
                .map(|t| fmp4::FragTrack {
                    g711_channels: match t.info.codec {
                        CodecParams::Pcmu { channels, .. } | CodecParams::Pcma { channels, .. } => {
                            Some(u32::from(channels.max(1)))
                        }
                        _ => None,
                    },
                    video: t.info.kind() == MediaKind::Video,
                    stts: t.stts.entries,
                    ctts: t.ctts.map(|c| c.entries).unwrap_or_default(),
                    first_time: t.first_time,
                })
                .collect();
            let frag = fmp4::FragLayout { init, tracks, len };
            let layout = Layout {
                ftyp: Vec::new(),
                moov: Vec::new(),
                moov_len: 0,
                data_at: 0,
                frag: Some(frag),
            };
            return Ok(self.into_file(out_tracks, by_source, track_chunks, layout));
        }
        let ftyp = moov::ftyp();
        let encode = |wide: bool, notes: &mut Vec<String>| {
            moov::moov(&tables, wide, &[], notes)
                .map_err(|e| StoreError::Export(format!("encoding the moov box: {e}")))
        };
        let mut notes = Vec::new();
        let mut pieces = encode(false, &mut notes)?;
        let mut moov_len: u64 = pieces.iter().map(Piece::len).sum();
        if ftyp.len() as u64 + moov_len + 16 + self.data_len > u64::from(u32::MAX) || force_wide() {
            notes.clear();
            pieces = encode(true, &mut notes)?;
            moov_len = pieces.iter().map(Piece::len).sum();
        }
        self.report.notes.extend(notes);
        let data_at = ftyp.len() as u64 + moov_len + 16;
        let layout = Layout {
            ftyp,
            moov: pieces,
            moov_len,
            data_at,
            frag: None,
        };
        Ok(self.into_file(out_tracks, by_source, track_chunks, layout))
    }

    fn into_file(
        mut self,
        tracks: Vec<OutTrack>,
        by_source: [Option<u8>; 16],
        mut track_chunks: Vec<Vec<u32>>,
        layout: Layout,
    ) -> ExportFile {
        self.units.shrink_to_fit();
        self.periods.shrink_to_fit();
        self.chunks.shrink_to_fit();
        for ids in &mut track_chunks {
            ids.shrink_to_fit();
        }
        ExportFile {
            plan: Arc::new(Plan {
                camera: self.camera.to_string(),
                report: self.report,
                tracks,
                by_source,
                segments: self.segments,
                _pins: self.pins,
                units: self.units,
                periods: self.periods,
                chunks: self.chunks,
                track_chunks,
                ftyp: layout.ftyp,
                moov: layout.moov,
                moov_len: layout.moov_len,
                data_at: layout.data_at,
                data_len: self.data_len,
                frag: layout.frag,
            }),
        }
    }
}

/// The parts of a plan that depend on the file's layout.
struct Layout {
    ftyp: Vec<u8>,
    moov: Vec<Piece>,
    moov_len: u64,
    data_at: u64,
    frag: Option<fmp4::FragLayout>,
}

#[cfg(test)]
thread_local! {
    /// Test hook: 64-bit chunk offsets even for a small file.
    static FORCE_WIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn force_wide() -> bool {
    FORCE_WIDE.with(|f| f.get())
}

#[cfg(not(test))]
fn force_wide() -> bool {
    false
}

fn too_long(camera: &str) -> StoreError {
    StoreError::Export(format!(
        "camera {camera}: the range is too long for one export; export shorter ranges"
    ))
}

/// The picture size from the first JPEG frame (best effort: `None` when unreadable).
fn probe_jpeg(path: &std::path::Path, offset: u64, size: u32) -> Option<(u16, u16)> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0u8; (size as usize).min(JPEG_PROBE)];
    f.read_exact(&mut buf).ok()?;
    codec::jpeg_size(&buf)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use ipcamd_media::synthetic::{SyntheticCamera, SyntheticConfig};
    use ipcamd_media::Source;

    use super::FORCE_WIDE;
    use crate::{Store, StoreOptions};

    const T0: i64 = 1_763_762_645_000_000;

    fn probe(path: &std::path::Path) -> String {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=codec_name,nb_read_frames,duration",
                "-of",
                "compact",
            ])
            .arg(path)
            .output()
            .expect("ffprobe is not installed (apt-get install ffmpeg)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `co64` (chunk offsets past 4 GiB) written for a small file: players read it the
    /// same as the `stco` version, and the sample data is the same.
    #[test]
    fn wide_chunk_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                segment_duration: std::time::Duration::from_secs(1),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let cfg = SyntheticConfig {
            width: 160,
            height: 96,
            bitrate_bps: 200_000,
            ..SyntheticConfig::default()
        };
        let mut cam = SyntheticCamera::new(cfg, T0).unwrap();
        let mut rec = store.recorder("cam", cam.tracks()).unwrap();
        loop {
            let au = cam.next_au().unwrap();
            if au.wallclock >= T0 + 5_000_000 {
                break;
            }
            rec.push(&au).unwrap();
        }
        rec.close().unwrap();
        let mut files = Vec::new();
        for wide in [false, true] {
            FORCE_WIDE.with(|f| f.set(wide));
            let file = store.export_file("cam", T0, T0 + 10_000_000).unwrap();
            FORCE_WIDE.with(|f| f.set(false));
            let mut out = Vec::new();
            file.write_range(0, file.len(), &mut out).unwrap();
            assert_eq!(out.len() as u64, file.len());
            let kind: &[u8] = if wide { b"co64" } else { b"stco" };
            assert!(out.windows(4).any(|w| w == kind));
            let path = dir.path().join(format!("{wide}.mp4"));
            std::fs::write(&path, &out).unwrap();
            files.push((path, out, file.plan.data_len));
        }
        let (a, b) = (&files[0], &files[1]);
        assert_eq!(probe(&a.0), probe(&b.0));
        assert!(
            probe(&a.0).contains("nb_read_frames=125"),
            "{}",
            probe(&a.0)
        );
        assert_eq!(
            a.1[a.1.len() - a.2 as usize..],
            b.1[b.1.len() - b.2 as usize..]
        );
    }
}
