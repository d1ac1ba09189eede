//! Fragmented MP4 (ISO/IEC 14496-12 §8.8), for players that start before the end of the
//! download: an init segment (`ftyp`, `moov` with empty sample tables and `mvex`/`mehd`/
//! `trex`), then one `moof` + `mdat` per period of the plan (at most 2 s of one segment).
//! Each fragment's `mdat` holds exactly the bytes of that period in the progressive file
//! (same chunks, same conversion), so both share the serving code; the `moof` is built when
//! its fragment is reached, from the unit table (sizes, keyframes) and per-track cursors
//! over the planned `stts`/`ctts` runs (durations, composition offsets). Its length is known
//! from the unit counts, so the whole file's length is known up front too.
//!
//! Reading is meant to go forward: a reader keeps its cursors and the current fragment's
//! `moof`; a range that starts earlier than where a reader is restarts from the beginning
//! (fragments before the range cost CPU only, no sample reads). HTTP serves it whole.
//!
//! Per fragment and track: `traf` = `tfhd` (default-base-is-moof; audio: default sample
//! flags "sync"), `tfdt` (version 1), one `trun` with per-sample duration and size, and for
//! video also flags and a signed composition offset (version 1). G.711 samples are whole
//! units here (a 160-byte unit is one sample lasting 160 ticks, longer before a gap), not
//! QuickTime's 1-byte samples: a `trun` entry per byte would be 8 times the audio itself.
//!
//! Left out: `sidx`/`mfra` (no random access index: use the progressive file for seeking).

use mp4_atom::{CttsEntry, SttsEntry};

use super::moov::{self, box_header, Piece, SizeTable, TrackTables};
use super::serve::{slice, Io};
use super::ExportFile;
use crate::StoreError;

/// A planned fragmented file: what is not shared with the progressive layout.
pub(crate) struct FragLayout {
    /// `ftyp` + `moov`.
    pub init: Vec<u8>,
    pub tracks: Vec<FragTrack>,
    pub len: u64,
}

/// Timing of one output track, walked by the fragment writer.
pub(crate) struct FragTrack {
    pub stts: Vec<SttsEntry>,
    pub ctts: Vec<CttsEntry>,
    pub first_time: i64,
    pub g711_channels: Option<u32>,
    pub video: bool,
}

impl FragTrack {
    pub fn bytes(&self) -> usize {
        self.stts.capacity() * std::mem::size_of::<SttsEntry>()
            + self.ctts.capacity() * std::mem::size_of::<CttsEntry>()
    }
}

/// Bytes of one `trun` entry.
fn entry_len(video: bool) -> u64 {
    if video {
        16 // duration, size, flags, composition offset
    } else {
        8 // duration, size
    }
}

/// Bytes of a `traf` holding `units` samples.
pub(crate) fn traf_len(video: bool, units: u64) -> u64 {
    let tfhd = if video { 16 } else { 20 };
    8 + tfhd + 20 + 20 + entry_len(video) * units
}

/// Bytes of a fragment (`moof` + `mdat`) whose tracks hold these units, with `bytes` of
/// sample data.
pub(crate) fn fragment_len(trafs: impl Iterator<Item = (bool, u64)>, bytes: u64) -> u64 {
    8 + 16 + trafs.map(|(v, n)| traf_len(v, n)).sum::<u64>() + 8 + bytes
}

/// The init segment: `ftyp` and a `moov` with empty sample tables and `mvex`.
pub(crate) fn init_segment(
    tables: &[TrackTables],
    notes: &mut Vec<String>,
) -> Result<Vec<u8>, StoreError> {
    let err = |e: mp4_atom::Error| StoreError::Export(format!("encoding the moov box: {e}"));
    let duration = moov::movie_duration(tables);
    let mut mvex = Vec::new();
    // mehd v1: the whole movie's duration, so players know the length up front.
    let mut mehd = box_header(b"mehd", 12);
    mehd.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    mehd.extend_from_slice(&duration.to_be_bytes());
    mvex.extend_from_slice(&mehd);
    for i in 0..tables.len() {
        let mut trex = box_header(b"trex", 24);
        trex.extend_from_slice(&[0; 4]);
        trex.extend_from_slice(&(i as u32 + 1).to_be_bytes()); // track_ID
        trex.extend_from_slice(&1u32.to_be_bytes()); // sample description index
        trex.extend_from_slice(&[0; 12]); // default duration, size, flags
        mvex.extend_from_slice(&trex);
    }
    let mvex = [box_header(b"mvex", mvex.len() as u64), mvex].concat();
    let empty: Vec<TrackTables> = tables
        .iter()
        .map(|t| TrackTables {
            info: t.info.clone(),
            timescale: t.timescale,
            stts: mp4_atom::Stts::default(),
            ctts: None,
            stss: None,
            stsc: mp4_atom::Stsc::default(),
            sizes: SizeTable::Different { count: 0 },
            chunks: 0,
            duration: 0,
            first_time: 0,
            jpeg_size: t.jpeg_size,
        })
        .collect();
    let pieces = moov::moov(&empty, false, &mvex, notes).map_err(err)?;
    let mut init = moov::boxed(
        b"ftyp",
        &[
            b"iso5".as_slice(),
            &512u32.to_be_bytes(),
            b"iso5",
            b"iso6",
            b"isom",
            b"mp41",
            b"avc1",
        ]
        .concat(),
    );
    for p in &pieces {
        match p {
            Piece::Bytes(b) => init.extend_from_slice(b),
            // No entries: the header is the whole box.
            _ => init.extend_from_slice(&p.table_header()),
        }
    }
    Ok(init)
}

/// Where a track's timing cursor is.
#[derive(Debug, Clone, Default)]
struct Cursor {
    stts: usize,
    stts_used: u32,
    ctts: usize,
    ctts_used: u32,
    dts: i64,
}

impl Cursor {
    /// Total duration of the next `n` samples of the `stts` runs.
    fn take(&mut self, n: u32, stts: &[SttsEntry]) -> u64 {
        let mut left = n;
        let mut sum = 0u64;
        while left > 0 {
            let Some(e) = stts.get(self.stts) else {
                break;
            };
            let k = left.min(e.sample_count - self.stts_used);
            sum += u64::from(k) * u64::from(e.sample_delta);
            left -= k;
            self.stts_used += k;
            if self.stts_used >= e.sample_count {
                self.stts += 1;
                self.stts_used = 0;
            }
        }
        sum
    }

    fn take_offset(&mut self, ctts: &[CttsEntry]) -> i64 {
        let Some(e) = ctts.get(self.ctts) else {
            return 0;
        };
        self.ctts_used += 1;
        if self.ctts_used >= e.sample_count {
            self.ctts += 1;
            self.ctts_used = 0;
        }
        e.sample_offset
    }
}

/// A reader's position in a fragmented file.
pub(crate) struct FragState {
    /// The next fragment to build, where it starts, and the cursors for it.
    next: usize,
    at: u64,
    cursors: Vec<Cursor>,
    /// The fragment before `next`: (period, start offset, its `moof`).
    last: Option<(usize, u64, Vec<u8>)>,
}

impl FragState {
    fn new(layout: &FragLayout) -> FragState {
        FragState {
            next: 0,
            at: layout.init.len() as u64,
            cursors: layout
                .tracks
                .iter()
                .map(|t| Cursor {
                    dts: t.first_time,
                    ..Cursor::default()
                })
                .collect(),
            last: None,
        }
    }
}

impl ExportFile {
    /// Bytes `start..end` of a fragmented file (see the module doc).
    pub(super) fn write_fragmented(
        &self,
        layout: &FragLayout,
        start: u64,
        end: u64,
        out: &mut dyn std::io::Write,
        io: &mut Io,
    ) -> Result<(), StoreError> {
        let w = |out: &mut dyn std::io::Write, b: &[u8]| {
            out.write_all(b)
                .map_err(|e| StoreError::Export(format!("writing the MP4 file: {e}")))
        };
        let init_len = layout.init.len() as u64;
        if start < init_len {
            w(out, slice(&layout.init, start, end))?;
        }
        let mut state = match io.frag.take() {
            Some(s) if s.last.as_ref().map_or(s.at, |l| l.1) <= start.max(init_len) => s,
            _ => FragState::new(layout),
        };
        let result = (|| {
            // The rest of the fragment a previous read stopped in.
            if let Some((p, frag_at, moof)) = &state.last {
                if start < state.at && end > *frag_at {
                    self.write_fragment_bytes(*p, *frag_at, moof, start, end, out, io)?;
                }
            }
            while state.next < self.plan.periods.len() && state.at < end {
                let p = state.next;
                io.load_period(self, p)?;
                let counts = self.fragment_counts(layout, io);
                let bytes = self.period_bytes(p);
                let len = fragment_len(counts.iter().map(|c| (c.1, c.2)), bytes);
                let frag_at = state.at;
                let wanted = frag_at + len > start;
                let moof = self.moof(layout, p, &counts, &mut state.cursors, io, wanted)?;
                if wanted {
                    self.write_fragment_bytes(p, frag_at, &moof, start, end, out, io)?;
                }
                state.last = wanted.then_some((p, frag_at, moof));
                state.next += 1;
                state.at = frag_at + len;
            }
            Ok(())
        })();
        io.frag = Some(state);
        result
    }

    /// Bytes of the period's sample data.
    fn period_bytes(&self, p: usize) -> u64 {
        let plan = &self.plan;
        let Some(period) = plan.periods.get(p) else {
            return 0;
        };
        let next = plan
            .periods
            .get(p + 1)
            .map_or(plan.data_len, |n| n.mdat_offset);
        next - period.mdat_offset
    }

    /// Per chunk of the loaded period: (output track, video, units).
    fn fragment_counts(&self, layout: &FragLayout, io: &Io) -> Vec<(u8, bool, u64)> {
        let plan = &self.plan;
        let Some(p) = io.period.and_then(|p| plan.periods.get(p)) else {
            return Vec::new();
        };
        let end = plan
            .periods
            .get(io.period.unwrap_or(0) + 1)
            .map_or(plan.chunks.len(), |n| n.first_chunk as usize);
        plan.chunks
            .get(p.first_chunk as usize..end)
            .unwrap_or(&[])
            .iter()
            .map(|c| {
                let units = io.units.iter().filter(|u| u.track == c.track).count() as u64;
                let video = layout
                    .tracks
                    .get(usize::from(c.track))
                    .is_some_and(|t| t.video);
                (c.track, video, units)
            })
            .collect()
    }

    /// The `moof` of period `p` (loaded in `io`), advancing the cursors; with `build`
    /// false only the cursors move (a fragment before the wanted range).
    fn moof(
        &self,
        layout: &FragLayout,
        p: usize,
        counts: &[(u8, bool, u64)],
        cursors: &mut [Cursor],
        io: &Io,
        build: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let plan = &self.plan;
        let moof_body: u64 = 16 + counts.iter().map(|c| traf_len(c.1, c.2)).sum::<u64>();
        let mut m = Vec::new();
        if build {
            m.reserve(moof_body as usize + 8);
            m.extend_from_slice(&box_header(b"moof", moof_body));
            m.extend_from_slice(&box_header(b"mfhd", 8));
            m.extend_from_slice(&[0; 4]);
            m.extend_from_slice(&(p as u32 + 1).to_be_bytes());
        }
        let first_chunk = plan.periods.get(p).map_or(0, |x| x.first_chunk as usize);
        let mut data_offset = moof_body + 8 + 8;
        for (i, &(track, video, units)) in counts.iter().enumerate() {
            let (Some(t), Some(cur)) = (
                layout.tracks.get(usize::from(track)),
                cursors.get_mut(usize::from(track)),
            ) else {
                continue;
            };
            if build {
                m.extend_from_slice(&box_header(b"traf", traf_len(video, units) - 8));
                if video {
                    m.extend_from_slice(&box_header(b"tfhd", 8));
                    m.extend_from_slice(&0x0002_0000u32.to_be_bytes());
                    m.extend_from_slice(&(u32::from(track) + 1).to_be_bytes());
                } else {
                    m.extend_from_slice(&box_header(b"tfhd", 12));
                    m.extend_from_slice(&0x0002_0020u32.to_be_bytes());
                    m.extend_from_slice(&(u32::from(track) + 1).to_be_bytes());
                    m.extend_from_slice(&0x0200_0000u32.to_be_bytes());
                }
                m.extend_from_slice(&box_header(b"tfdt", 12));
                m.extend_from_slice(&0x0100_0000u32.to_be_bytes());
                m.extend_from_slice(&(cur.dts.max(0) as u64).to_be_bytes());
                let flags: u32 = if video { 0x0f01 } else { 0x0301 };
                let version: u32 = if video { 1 } else { 0 };
                m.extend_from_slice(&box_header(b"trun", 12 + entry_len(video) * units));
                m.extend_from_slice(&((version << 24) | flags).to_be_bytes());
                m.extend_from_slice(&(units as u32).to_be_bytes());
                m.extend_from_slice(&(data_offset as u32).to_be_bytes());
            }
            for u in io.units.iter().filter(|u| u.track == track) {
                let n = t.g711_channels.map_or(1, |ch| (u.size / ch).max(1));
                let duration = cur.take(n, &t.stts);
                cur.dts = cur
                    .dts
                    .saturating_add(i64::try_from(duration).unwrap_or(i64::MAX));
                let offset = if video { cur.take_offset(&t.ctts) } else { 0 };
                if !build {
                    continue;
                }
                m.extend_from_slice(&u32::try_from(duration).unwrap_or(u32::MAX).to_be_bytes());
                m.extend_from_slice(&u.size.to_be_bytes());
                if video {
                    // sample_depends_on 2 (an I picture), or 1 and non-sync.
                    let flags: u32 = if u.key { 0x0200_0000 } else { 0x0101_0000 };
                    m.extend_from_slice(&flags.to_be_bytes());
                    let offset = i32::try_from(offset).unwrap_or(0);
                    m.extend_from_slice(&offset.to_be_bytes());
                }
            }
            data_offset += plan
                .chunks
                .get(first_chunk + i)
                .map_or(0, |c| u64::from(c.bytes));
        }
        Ok(m)
    }

    /// The part of fragment `p` (at `frag_at`, with this `moof`) inside `start..end`.
    #[allow(clippy::too_many_arguments)]
    fn write_fragment_bytes(
        &self,
        p: usize,
        frag_at: u64,
        moof: &[u8],
        start: u64,
        end: u64,
        out: &mut dyn std::io::Write,
        io: &mut Io,
    ) -> Result<(), StoreError> {
        let w = |out: &mut dyn std::io::Write, b: &[u8]| {
            out.write_all(b)
                .map_err(|e| StoreError::Export(format!("writing the MP4 file: {e}")))
        };
        let rel = |x: u64| x.saturating_sub(frag_at);
        let (s, e) = (rel(start), rel(end));
        let m = moof.len() as u64;
        if s < m {
            w(out, slice(moof, s, e))?;
        }
        let bytes = self.period_bytes(p);
        if s < m + 8 && e > m {
            let mut header = Vec::with_capacity(8);
            header.extend_from_slice(&box_header(b"mdat", bytes));
            w(out, slice(&header, s.saturating_sub(m), e - m))?;
        }
        if e > m + 8 {
            let base = self.plan.periods.get(p).map_or(0, |x| x.mdat_offset);
            let from = base + s.saturating_sub(m + 8);
            let to = base + (e - m - 8).min(bytes);
            self.write_data(from, to, out, io)?;
        }
        Ok(())
    }
}
