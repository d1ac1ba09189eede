//! An MP4/MOV file played in a loop as if a camera were capturing it: [`FileSource`].
//!
//! Reads non-fragmented ISO base media files (ISO/IEC 14496-12, `.mp4`) and QuickTime movies
//! (`.mov`): the `moov` box is parsed once with `mp4-atom`; the sample tables of the supported
//! tracks are flattened into a list of byte ranges ([`table`]); the sample data is then read
//! from the file by offset, one access unit at a time, so only the tables stay in memory.
//!
//! ```text
//!  sample n of track t, in loop k (k = 0, 1, 2, ...), D = the longest track's duration:
//!    pts       = (dts(n) + ctts(n) + k·D) · clock(t)      media time -> RTP clock, exact
//!    wallclock = start + (dts(n) + k·D) · 1e6 µs          decode time -> capture wallclock
//! ```
//!
//! Units come in decode order per track, and the tracks are merged by wallclock. Because
//! every track's loop offset is the same `D`, the tracks stay in sync across loops and
//! neither pts nor wallclock ever goes back. The source never sleeps: a pacer does.
//!
//! Codecs ([`sample_entry`]): H.264 (`avc1`/`avc3`), H.265 (`hvc1`/`hev1`), both rewritten to
//! Annex B with the parameter sets in band on sync samples ([`annexb`]); AAC (`mp4a`); G.711
//! (`ulaw`/`alaw`, grouped into ~20 ms units). Other tracks are skipped with a warning.
//!
//! An error from [`Source::next_au`] (a sample that cannot be read or parsed) names the file,
//! track and sample, and repeats on every later call: the source does not skip data.
//!
//! [`FileSource::open`] reads a path; [`FileSource::from_reader`] reads the same way from any
//! `Read + Seek` (a `Cursor` over bytes in memory: the fuzz target `mp4_file`). Reads block:
//! the source runs on the pacer's thread or an importer's, never on an async task.
//!
//! Left out: fragmented files (`moof`/`mvex`: an error), edit lists (`elst` is ignored:
//! times start at the first sample's decode time), tracks with several sample descriptions
//! and data stored in other files (`dref` URLs).

mod annexb;
mod sample_entry;
mod table;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;
use mp4_atom::{Atom, DecodeAtom, FourCC, Moov, Trak};

use crate::{AccessUnit, Source, SourceError};
use annexb::NalKind;
use sample_entry::{entry_name, track_codec, Framing};
use table::Unit;

/// The largest `moov` box we read into memory.
const MAX_MOOV_BYTES: u64 = 256 << 20;

/// An MP4/MOV file as an endless [`Source`]; see the module doc. `R` is where the bytes are
/// read from: the opened file, or a `Cursor` for [`FileSource::from_reader`].
pub struct FileSource<R = File> {
    /// The path, or the name given to [`FileSource::from_reader`], for messages.
    path: String,
    file: R,
    infos: Vec<TrackInfo>,
    tracks: Vec<Track>,
    start: UnixMicros,
    /// The loop period: the longest track's duration.
    duration: MediaDuration,
    /// The last loop announced in the log.
    loops_logged: u64,
    /// The opened file's identity (device, inode) and when (media wallclock) the path was
    /// last checked to still name it: a deleted, renamed or replaced file fails the
    /// source (an open descriptor would otherwise play the old contents forever), so the
    /// camera goes offline and the pacer re-opens the path with back-off.
    identity: Option<(u64, u64)>,
    checked_at: UnixMicros,
}

/// A duration as an exact number of ticks of a timescale.
#[derive(Debug, Clone, Copy)]
struct MediaDuration {
    ticks: u64,
    timescale: u32,
}

struct Track {
    /// "track 1 (avc1)", for messages.
    label: String,
    timescale: u32,
    /// RTP clock rate.
    clock: u64,
    kind: MediaKind,
    framing: Framing,
    /// Units are groups of samples (G.711): messages count units, not samples.
    grouped: bool,
    units: Vec<Unit>,
    /// Added to `dts + cto` so that no presentation time is negative.
    pts_bias: u64,
    /// The next unit to send and how many times the track has wrapped.
    next: usize,
    loops: u64,
}

impl FileSource {
    /// Opens `path` and reads its sample tables. The first unit is due at `start`.
    pub fn open(path: &Path, start: UnixMicros) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        let fail = |what: String| SourceError::File {
            path: name.clone(),
            what,
        };
        let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let metadata = file
            .metadata()
            .map_err(|e| fail(format!("cannot stat: {e}")))?;
        let mut source = FileSource::from_reader(&name, file, metadata.len(), start)?;
        source.identity = file_identity(&metadata);
        Ok(source)
    }
}

impl<R: Read + Seek> FileSource<R> {
    /// Reads the sample tables of the `file_len` bytes of `file` (from offset 0), which `name`
    /// names in messages. The first unit is due at `start`. Unlike [`FileSource::open`],
    /// nothing checks that the data stays the same.
    pub fn from_reader(
        name: &str,
        mut file: R,
        file_len: u64,
        start: UnixMicros,
    ) -> Result<FileSource<R>, SourceError> {
        let name = name.to_string();
        let fail = |what: String| SourceError::File {
            path: name.clone(),
            what,
        };
        // A moov with an mvex box (a fragmented file) fails here too.
        let moov = read_moov(&mut file, file_len).map_err(fail)?;

        let mut tracks = Vec::new();
        let mut skipped = Vec::new();
        // The bytes of the samples of the tracks loaded so far.
        let mut used = 0;
        for trak in &moov.trak {
            match load_track(trak, &mut file, file_len, &mut used).map_err(&fail)? {
                Loaded::Track(track) => tracks.push(*track),
                Loaded::Skipped(why) => {
                    tracing::warn!(path = %name, "skipping {why}");
                    skipped.push(why);
                }
            }
        }
        if tracks.is_empty() {
            let why = if skipped.is_empty() {
                "no tracks".to_string()
            } else {
                skipped.join("; ")
            };
            return Err(fail(format!("no playable track ({why})")));
        }

        // Video first; payload types 96, 98, ... for video and 97, 99, ... for audio.
        tracks.sort_by_key(|(_, _, track)| track.kind != MediaKind::Video);
        let (mut videos, mut audios) = (0u8, 0u8);
        let mut infos = Vec::with_capacity(tracks.len());
        let mut duration = MediaDuration {
            ticks: 0,
            timescale: 1,
        };
        let mut out = Vec::with_capacity(tracks.len());
        for (params, ticks, track) in tracks {
            let n = match track.kind {
                MediaKind::Video => &mut videos,
                MediaKind::Audio => &mut audios,
            };
            let dynamic = 96u8
                .saturating_add(u8::from(track.kind == MediaKind::Audio))
                .saturating_add(n.saturating_mul(2));
            *n = n.saturating_add(1);
            // The longest track: ticks / timescale > duration.ticks / duration.timescale?
            if u128::from(ticks) * u128::from(duration.timescale)
                > u128::from(duration.ticks) * u128::from(track.timescale)
            {
                duration = MediaDuration {
                    ticks,
                    timescale: track.timescale,
                };
            }
            infos.push(TrackInfo::new(params, dynamic.min(127)));
            out.push(track);
        }
        if duration.ticks == 0 {
            return Err(fail("every track has a duration of zero".into()));
        }
        for (info, track) in infos.iter().zip(&out) {
            tracing::debug!(
                path = %name,
                "{}: {} as payload type {}, {} units",
                track.label,
                info.codec.name(),
                info.payload_type,
                track.units.len()
            );
        }
        Ok(FileSource {
            path: name,
            file,
            infos,
            tracks: out,
            start,
            duration,
            loops_logged: 0,
            identity: None,
            checked_at: start,
        })
    }

    /// The loop period (the longest track's duration) in microseconds.
    pub fn duration_us(&self) -> u64 {
        clock_time(0, 1, 1, self.duration, 1_000_000)
    }

    fn wallclock(&self, track: &Track, unit: &Unit) -> UnixMicros {
        let us = clock_time(
            unit.dts,
            track.timescale,
            track.loops,
            self.duration,
            1_000_000,
        );
        self.start
            .saturating_add(i64::try_from(us).unwrap_or(i64::MAX))
    }

    /// Fails when the path no longer names the opened file (checked once a media second).
    fn check_still_there(&mut self, now: UnixMicros) -> Result<(), SourceError> {
        if now.saturating_sub(self.checked_at) < 1_000_000 {
            return Ok(());
        }
        self.checked_at = now;
        match std::fs::metadata(&self.path) {
            Ok(m) if file_identity(&m) == self.identity => Ok(()),
            Ok(_) => Err(self.error("the file was replaced; re-opening it".into())),
            Err(e) => Err(self.error(format!("the file is gone: {e}"))),
        }
    }

    fn error(&self, what: String) -> SourceError {
        SourceError::File {
            path: self.path.clone(),
            what,
        }
    }
}

/// What [`load_track`] made of a `trak`.
enum Loaded {
    /// A playable track: its parameters, its duration in media ticks, its samples.
    Track(Box<(CodecParams, u64, Track)>),
    /// "track N (xxxx): why it is not played".
    Skipped(String),
}

/// Reads the codec and sample table of one `trak`. `Err` (a corrupt table) fails the file.
/// `used`: the bytes of the samples of the tracks before, to which this track's are added.
fn load_track(
    trak: &Trak,
    file: &mut (impl Read + Seek),
    file_len: u64,
    used: &mut u64,
) -> Result<Loaded, String> {
    let id = trak.tkhd.track_id;
    let stbl = &trak.mdia.minf.stbl;
    let Some(entry) = stbl.stsd.codecs.first() else {
        return Ok(Loaded::Skipped(format!("track {id}: no sample entry")));
    };
    let label = format!("track {id} ({})", entry_name(entry));
    let skip = |why: &str| Ok(Loaded::Skipped(format!("{label}: {why}")));
    let timescale = trak.mdia.mdhd.timescale;
    let codec = match track_codec(entry, timescale) {
        Ok(codec) => codec,
        Err(why) => return skip(&why),
    };
    let other_entry = stbl.stsc.entries.iter().map(|e| e.sample_description_index);
    if let Some(index) = other_entry.into_iter().find(|&i| i != 1) {
        return skip(&format!(
            "samples use sample description {index} (only the first is supported)"
        ));
    }
    if timescale == 0 {
        return Err(format!("{label}: mdhd timescale is 0"));
    }
    // G.711: units of 20 ms.
    let group = codec
        .tiny_samples
        .then(|| (u64::from(timescale) / 50).max(1));
    let table = table::build(stbl, file_len, *used, group).map_err(|e| format!("{label}: {e}"))?;
    *used = used.saturating_add(table.bytes);
    if table.units.is_empty() {
        return skip("no samples");
    }
    let mut framing = codec.framing;
    let params = match codec.params {
        Some(params) => params,
        None => {
            params_in_band(file, &table.units, &mut framing)
                .map_err(|e| format!("{label}: {e}"))?;
            let params = match &framing {
                Framing::Nal {
                    kind: NalKind::H264,
                    ..
                } => sample_entry::h264_params(&framing),
                _ => sample_entry::h265_params(&framing),
            };
            match params {
                Some(params) => params,
                None => {
                    return skip(
                        "no parameter sets in the sample entry nor in the first sync sample",
                    )
                }
            }
        }
    };
    let clock = u64::from(params.clock_rate());
    if clock == 0 {
        return Err(format!("{label}: clock rate is 0"));
    }
    let min_presentation = table
        .units
        .iter()
        .map(|u| i128::from(u.dts) + i128::from(u.cto))
        .min()
        .unwrap_or(0);
    let track = Track {
        label,
        timescale,
        clock,
        kind: params.kind(),
        framing,
        grouped: group.is_some(),
        units: table.units,
        pts_bias: u64::try_from(-min_presentation.min(0)).unwrap_or(0),
        next: 0,
        loops: 0,
    };
    Ok(Loaded::Track(Box::new((params, table.duration, track))))
}

impl<R: Read + Seek + Send> Source for FileSource<R> {
    fn tracks(&self) -> &[TrackInfo] {
        &self.infos
    }

    fn next_au(&mut self) -> Result<AccessUnit, SourceError> {
        let (index, wallclock) = self
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, self.wallclock(t, t.units.get(t.next)?))))
            .min_by_key(|&(i, w)| (w, i))
            .ok_or(SourceError::End)?;
        let Some(track) = self.tracks.get(index) else {
            return Err(SourceError::End);
        };
        let Some(&unit) = track.units.get(track.next) else {
            return Err(SourceError::End);
        };
        if self.identity.is_some() && wallclock.saturating_sub(self.checked_at) >= 1_000_000 {
            self.check_still_there(wallclock)?;
        }
        let Some(track) = self.tracks.get(index) else {
            return Err(SourceError::End);
        };
        // "track 1 (avc1) sample 17", for errors.
        let at = || {
            let what = if track.grouped { "unit" } else { "sample" };
            format!("{} {what} {}", track.label, track.next + 1)
        };
        let data = read_unit(&mut self.file, &unit).map_err(|e| {
            self.error(format!(
                "{}: cannot read {} bytes at offset {}: {e}",
                at(),
                unit.size,
                unit.offset
            ))
        })?;
        let data = match &track.framing {
            Framing::Raw => data,
            Framing::Nal {
                kind,
                length_size,
                param_sets,
            } => {
                let param_sets = unit.sync.then_some(param_sets.as_slice());
                annexb::to_annex_b(&data, *length_size, *kind, param_sets)
                    .map_err(|e| self.error(format!("{}: {e}", at())))?
            }
        };
        let presentation = i128::from(unit.dts) + i128::from(unit.cto) + i128::from(track.pts_bias);
        let pts = clock_time(
            u64::try_from(presentation).unwrap_or(0),
            track.timescale,
            track.loops,
            self.duration,
            track.clock,
        );
        let keyframe = track.kind == MediaKind::Audio || unit.sync;

        let Some(track) = self.tracks.get_mut(index) else {
            return Err(SourceError::End);
        };
        track.next += 1;
        if track.next >= track.units.len() {
            track.next = 0;
            track.loops += 1;
            if track.loops > self.loops_logged {
                self.loops_logged = track.loops;
                tracing::debug!(path = %self.path, "file source: starting loop {}", track.loops);
            }
        }
        Ok(AccessUnit {
            track: index,
            pts,
            wallclock,
            keyframe,
            data: Bytes::from(data),
        })
    }
}

/// (device, inode) of a file, where the platform has them.
fn file_identity(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

/// `(ticks / timescale + loops · duration) · clock`, rounded down, computed exactly.
fn clock_time(ticks: u64, timescale: u32, loops: u64, duration: MediaDuration, clock: u64) -> u64 {
    let num = u128::from(ticks)
        .saturating_mul(u128::from(duration.timescale))
        .saturating_add(
            u128::from(loops)
                .saturating_mul(u128::from(duration.ticks))
                .saturating_mul(u128::from(timescale)),
        );
    let den = u128::from(timescale) * u128::from(duration.timescale);
    let t = num
        .saturating_mul(u128::from(clock))
        .checked_div(den)
        .unwrap_or(0);
    u64::try_from(t).unwrap_or(u64::MAX)
}

fn read_unit(file: &mut (impl Read + Seek), unit: &Unit) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(unit.offset))?;
    let mut buf = vec![0; unit.size as usize];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// For `avc3`/`hev1` entries without parameter sets: takes them from the first sync sample.
fn params_in_band(
    file: &mut (impl Read + Seek),
    units: &[Unit],
    framing: &mut Framing,
) -> Result<(), String> {
    let Framing::Nal {
        kind,
        length_size,
        param_sets,
    } = framing
    else {
        return Ok(());
    };
    let Some((n, unit)) = units.iter().enumerate().find(|(_, u)| u.sync) else {
        return Ok(());
    };
    let data = read_unit(file, unit).map_err(|e| {
        format!(
            "sample {}: cannot read {} bytes at offset {}: {e}",
            n + 1,
            unit.size,
            unit.offset
        )
    })?;
    let nals = annexb::split(&data, *length_size).map_err(|e| format!("sample {}: {e}", n + 1))?;
    let wanted: &[u8] = match kind {
        NalKind::H264 => &[7, 8],
        NalKind::H265 => &[32, 33, 34],
    };
    for nal in nals {
        let is_param = kind.nal_type(nal).is_some_and(|t| wanted.contains(&t));
        if is_param && !param_sets.iter().any(|p| p == nal) {
            param_sets.push(Bytes::copy_from_slice(nal));
        }
    }
    // Decoding order: VPS, SPS, PPS.
    param_sets.sort_by_key(|p| kind.nal_type(p));
    Ok(())
}

/// The boxes of the containers down to `stbl` that the reader uses; the others are renamed
/// `free` before `mp4-atom` decodes the `moov`, so that it skips them. Its decoders of some
/// of them loop on a count read from the file without consuming bytes, e.g. `sgpd` entries of
/// a grouping type it does not know and no declared length: an `entry_count` of 0x62783236
/// made it push 1.6 billion empty entries (fuzz/seeds/mp4_file/regression-sgpd-entry-count).
/// `mp4-atom` decodes any box it knows wherever a container or a sample entry has children,
/// so every such place is listed: `dinf` too (an `stbl` with an `sgpd` inside a `dinf` was
/// the next finding, fuzz/seeds/mp4_file/regression-sgpd-in-dinf), and the sample entries of
/// `stsd` ([`free_unused_in_stsd`]).
const USED_BOXES: [(&[u8; 4], &[&[u8; 4]]); 6] = [
    (b"moov", &[b"mvhd", b"trak"]),
    (b"trak", &[b"tkhd", b"mdia"]),
    (b"mdia", &[b"mdhd", b"hdlr", b"minf"]),
    (
        b"minf",
        &[
            b"dinf", b"stbl", b"vmhd", b"smhd", b"nmhd", b"sthd", b"hmhd",
        ],
    ),
    (b"dinf", &[b"dref"]),
    (
        b"stbl",
        &[
            b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stco", b"co64",
        ],
    ),
];

/// The type a sample entry the reader does not support is renamed to: `mp4-atom` knows no
/// such box and keeps its bytes undecoded. The first 4 bytes of its body (reserved in every
/// sample entry) then hold its own type, for messages ([`sample_entry::entry_name`]).
pub(super) const UNSUPPORTED_ENTRY: [u8; 4] = *b"ipcU";

/// Calls `f` with each box of `body` in turn: its type, its header (whose bytes 4..8 are
/// the type, to rename it), its body and its offset in `body`. Stops at the first box whose
/// size does not fit; that one is left for `mp4-atom` to report.
fn each_box(
    body: &mut [u8],
    mut f: impl FnMut([u8; 4], &mut [u8], &mut [u8], usize) -> Result<(), String>,
) -> Result<(), String> {
    let mut pos = 0usize;
    while let Some(&[s0, s1, s2, s3, k0, k1, k2, k3]) = body.get(pos..pos.saturating_add(8)) {
        let left = body.len() - pos;
        let (size, header_len) = match u32::from_be_bytes([s0, s1, s2, s3]) {
            0 => (left as u64, 8),
            1 => match body.get(pos + 8..pos + 16).map(<[u8; 8]>::try_from) {
                Some(Ok(large)) => (u64::from_be_bytes(large), 16),
                _ => return Ok(()),
            },
            n => (u64::from(n), 8),
        };
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|&size| size >= header_len && size <= left)
        else {
            return Ok(());
        };
        let Some(whole) = body.get_mut(pos..pos + size) else {
            return Ok(());
        };
        let (header, child) = whole.split_at_mut(header_len);
        f([k0, k1, k2, k3], header, child, pos)?;
        pos += size;
    }
    Ok(())
}

fn rename(header: &mut [u8], to: &[u8; 4]) {
    if let Some(kind) = header.get_mut(4..8) {
        kind.copy_from_slice(to);
    }
}

/// Renames the boxes of `body` (the body of a `container` box at file offset `at`) that
/// [`USED_BOXES`] does not list to `free`, down to `stbl` and into the sample entries. An
/// `mvex` in the `moov` is an error (a fragmented file).
fn free_unused_boxes(container: [u8; 4], body: &mut [u8], at: u64) -> Result<(), String> {
    let Some((_, used)) = USED_BOXES.iter().find(|(c, _)| **c == container) else {
        return Ok(());
    };
    each_box(body, |kind, header, child, pos| {
        if container == *b"moov" && kind == *b"mvex" {
            return Err(format!(
                "fragmented MP4 (moov has an mvex box at offset {}) is not supported",
                at + pos as u64
            ));
        }
        if !used.contains(&&kind) {
            rename(header, b"free");
        } else if kind == *b"stsd" {
            free_unused_in_stsd(child);
        } else {
            free_unused_boxes(kind, child, at + (pos + header.len()) as u64)?;
        }
        Ok(())
    })
}

/// The sample entries of an `stsd` body: those the reader supports keep the child boxes it
/// reads (the others become `free`); their children start after the entry's fixed fields,
/// 78 bytes for a VisualSampleEntry (ISO/IEC 14496-12 §12.1.3) and 28 for an
/// AudioSampleEntry (§12.2.3), 44 or 64 for QuickTime's sound description versions 1 and 2
/// (as `mp4-atom` reads them). QuickTime's `ulaw`/`alaw` have no children `mp4-atom` decodes.
/// Every other entry is renamed [`UNSUPPORTED_ENTRY`].
fn free_unused_in_stsd(body: &mut [u8]) {
    // version, flags, entry_count
    let Some(entries) = body.get_mut(8..) else {
        return;
    };
    let _ = each_box(entries, |kind, header, entry, _| {
        const VISUAL: usize = 78;
        let (start, used): (usize, &[&[u8; 4]]) = match &kind {
            b"avc1" | b"avc3" => (
                VISUAL,
                &[b"avcC", b"btrt", b"colr", b"pasp", b"fiel", b"taic"],
            ),
            b"hvc1" | b"hev1" => (
                VISUAL,
                &[b"hvcC", b"btrt", b"colr", b"pasp", b"fiel", b"taic"],
            ),
            b"mp4a" => {
                let start = match entry.get(8..10) {
                    Some([0, 0]) => 28,
                    Some([0, 1]) => 44,
                    Some([0, 2]) => 64,
                    // Too short, or a version mp4-atom refuses before any child.
                    _ => return Ok(()),
                };
                // `wave` stays bytes in mp4-atom, which reads only its esds and btrt.
                (start, &[b"esds", b"btrt", b"taic", b"wave"])
            }
            b"ulaw" | b"alaw" => return Ok(()),
            _ => {
                rename(header, &UNSUPPORTED_ENTRY);
                if let Some(name) = entry.get_mut(..4) {
                    name.copy_from_slice(&kind);
                }
                return Ok(());
            }
        };
        if let Some(children) = entry.get_mut(start..) {
            each_box(children, |kind, header, _, _| {
                if !used.contains(&&kind) {
                    rename(header, b"free");
                }
                Ok(())
            })?;
        }
        Ok(())
    });
}

/// Walks the top-level boxes and decodes the `moov`.
fn read_moov(file: &mut (impl Read + Seek), file_len: u64) -> Result<Moov, String> {
    let io =
        |pos: u64, e: std::io::Error| format!("cannot read the box header at offset {pos}: {e}");
    let mut pos = 0u64;
    let mut moov = None;
    while pos < file_len {
        let left = file_len - pos;
        if left < 8 {
            if moov.is_some() {
                break;
            }
            return Err(format!(
                "{left} stray bytes at offset {pos} where a box header should be"
            ));
        }
        let mut header = [0u8; 8];
        file.seek(SeekFrom::Start(pos)).map_err(|e| io(pos, e))?;
        file.read_exact(&mut header).map_err(|e| io(pos, e))?;
        let [s0, s1, s2, s3, k0, k1, k2, k3] = header;
        let kind = FourCC::new(&[k0, k1, k2, k3]);
        let (size, header_len) = match u32::from_be_bytes([s0, s1, s2, s3]) {
            0 => (left, 8),
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large).map_err(|e| io(pos, e))?;
                (u64::from_be_bytes(large), 16)
            }
            n => (u64::from(n), 8),
        };
        let name = sample_entry::fourcc(kind);
        if size < header_len {
            return Err(format!(
                "box '{name}' at offset {pos} has an invalid size {size}"
            ));
        }
        if size > left {
            let what = format!(
                "box '{name}' at offset {pos} declares {size} bytes but the file has only {left} \
                 left (truncated, or not an MP4 file)"
            );
            if moov.is_none() || kind == Moov::KIND {
                return Err(what);
            }
            // A truncated `mdat` after the `moov` shows up as samples beyond the end.
            tracing::warn!("{what}");
            break;
        }
        if kind == FourCC::new(b"moof") {
            return Err(format!(
                "fragmented MP4 (moof box at offset {pos}) is not supported"
            ));
        }
        if kind == Moov::KIND {
            if moov.is_some() {
                return Err(format!("second moov box at offset {pos}"));
            }
            let body_len = size - header_len;
            if body_len > MAX_MOOV_BYTES {
                return Err(format!(
                    "moov box at offset {pos} is {size} bytes, more than the {MAX_MOOV_BYTES} \
                     supported"
                ));
            }
            let mut body = vec![0u8; body_len as usize];
            file.read_exact(&mut body)
                .map_err(|e| format!("cannot read the moov box at offset {pos}: {e}"))?;
            free_unused_boxes(*b"moov", &mut body, pos + header_len)?;
            let header = mp4_atom::Header {
                kind: Moov::KIND,
                size: Some(body.len()),
            };
            let decoded = Moov::decode_atom(&header, &mut body.as_slice())
                .map_err(|e| format!("moov box at offset {pos}: {e}"))?;
            moov = Some(decoded);
        }
        pos += size;
    }
    moov.ok_or_else(|| "no moov box (not an MP4/MOV file?)".into())
}

/// The fuzz target `mp4_file` (fuzz/fuzz_targets/mp4_file.rs): `data` as an MP4/MOV file read
/// from memory. It parses or fails with a message; a parsed file then gives one loop of its
/// units and the first of the next (at most `MAX_UNITS`), or stops at the first error. Panics
/// when an invariant breaks: an empty error message, units out of wallclock order, a unit of
/// a track that does not exist.
#[doc(hidden)]
pub fn fuzz_mp4(data: &[u8]) {
    const MAX_UNITS: usize = 10_000;
    let len = data.len() as u64;
    let mut src = match FileSource::from_reader("fuzz.mp4", std::io::Cursor::new(data), len, 0) {
        Ok(src) => src,
        Err(SourceError::File { what, .. }) => {
            assert!(!what.is_empty(), "an error without a message");
            return;
        }
        Err(e) => panic!("unexpected error {e}"),
    };
    let per_loop: usize = src.tracks.iter().map(|t| t.units.len()).sum();
    let mut last_wallclock = 0;
    for _ in 0..per_loop.saturating_add(1).min(MAX_UNITS) {
        let au = match src.next_au() {
            Ok(au) => au,
            Err(SourceError::File { what, .. }) => {
                assert!(!what.is_empty(), "an error without a message");
                return;
            }
            Err(e) => panic!("unexpected error {e}"),
        };
        assert!(au.track < src.tracks().len(), "unit of track {}", au.track);
        assert!(
            au.wallclock >= last_wallclock,
            "wallclock went back from {last_wallclock} to {}",
            au.wallclock
        );
        last_wallclock = au.wallclock;
    }
}
