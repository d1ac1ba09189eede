//! The in-memory tables of a planned export: the compact per-unit stream that maps the
//! `mdat` back to the segment files, and the per-track sample-table builders (`stts`,
//! `ctts`, `stss`) fed in decode order.
//!
//! Unit stream: one LEB128 varint per stored unit in file order,
//! `size_code << 5 | track << 1 | keyframe`, where `size_code` is 0 for "the same size as
//! this track's previous unit in this period" and `size + 1` otherwise; track 15 marks a unit
//! that is in the file but not exported. A 160-byte G.711 unit repeating its size costs 1
//! byte, a 1-16 KiB video frame 3 bytes, up to 64 KiB 3 bytes, larger 4. Decoding restarts
//! at each period (its first unit's position is in the period table), so any period can be
//! decoded on its own.
//!
//! Decode order: presentation times of a track are sorted through a window of
//! [`REORDER_WINDOW`] samples (a min-heap), which equals sorting the whole track when no
//! frame is reordered further than that (B-frame pyramids reorder by at most a few frames).

use std::collections::{BinaryHeap, VecDeque};

use mp4_atom::{CttsEntry, Stts, SttsEntry};

use crate::format::put_varint;

/// Highest number of tracks an export can hold (4 bits in the unit stream; 15 = skipped).
pub(crate) const MAX_TRACKS: usize = 15;
pub(crate) const SKIPPED: u8 = 15;

/// Samples held back to sort presentation times into decode times.
pub(crate) const REORDER_WINDOW: usize = 64;

/// One unit of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit {
    pub track: u8,
    pub key: bool,
    pub size: u32,
}

/// Appends units to a stream; [`UnitWriter::restart`] at every period.
#[derive(Debug)]
pub(crate) struct UnitWriter {
    last: [Option<u32>; 16],
}

impl UnitWriter {
    pub fn new() -> UnitWriter {
        UnitWriter { last: [None; 16] }
    }

    pub fn restart(&mut self) {
        self.last = [None; 16];
    }

    pub fn push(&mut self, out: &mut Vec<u8>, u: Unit) {
        let t = usize::from(u.track & 15);
        let code = match self.last.get(t) {
            Some(&Some(prev)) if prev == u.size => 0,
            _ => u64::from(u.size) + 1,
        };
        if let Some(l) = self.last.get_mut(t) {
            *l = Some(u.size);
        }
        put_varint(
            out,
            (code << 5) | (u64::from(u.track & 15) << 1) | u64::from(u.key),
        );
    }
}

/// Reads the units of one period from its first byte.
pub(crate) struct UnitReader<'a> {
    buf: &'a [u8],
    pos: usize,
    last: [u32; 16],
}

impl<'a> UnitReader<'a> {
    pub fn new(stream: &'a [u8], pos: usize) -> UnitReader<'a> {
        UnitReader {
            buf: stream,
            pos,
            last: [0; 16],
        }
    }

    pub fn next_unit(&mut self) -> Option<Unit> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let track = ((v >> 1) & 15) as u8;
        let code = v >> 5;
        let size = if code == 0 {
            self.last.get(usize::from(track)).copied().unwrap_or(0)
        } else {
            u32::try_from(code - 1).unwrap_or(u32::MAX)
        };
        if let Some(l) = self.last.get_mut(usize::from(track)) {
            *l = size;
        }
        Some(Unit {
            track,
            key: v & 1 == 1,
            size,
        })
    }
}

/// Appends `count` samples of duration `delta` to a run-length `stts`.
pub(crate) fn stts_push(stts: &mut Stts, delta: u32, count: u32) {
    if count == 0 {
        return;
    }
    match stts.entries.last_mut() {
        Some(e) if e.sample_delta == delta => e.sample_count = e.sample_count.saturating_add(count),
        _ => stts.entries.push(SttsEntry {
            sample_count: count,
            sample_delta: delta,
        }),
    }
}

/// Decode times, durations and composition offsets of a track whose samples each are one
/// unit (everything but G.711), built as presentation times arrive in decode order.
#[derive(Debug, Default)]
pub(crate) struct SampleTiming {
    heap: BinaryHeap<std::cmp::Reverse<i64>>,
    /// Presentation times waiting for their decode time, in decode order.
    pending: VecDeque<i64>,
    prev_dts: Option<i64>,
    last_delta: Option<u32>,
    pub stts: Stts,
    pub ctts: Vec<CttsEntry>,
    pub first_dts: Option<i64>,
    /// Sum of the sample durations.
    pub duration: u64,
}

impl SampleTiming {
    pub fn push(&mut self, time: i64) {
        self.heap.push(std::cmp::Reverse(time));
        self.pending.push_back(time);
        if self.heap.len() > REORDER_WINDOW {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let (Some(std::cmp::Reverse(min)), Some(time)) =
            (self.heap.pop(), self.pending.pop_front())
        else {
            return;
        };
        // A frame reordered further than the window would step back: keep decode times
        // monotonic (its composition offset goes negative instead).
        let dts = self.prev_dts.map_or(min, |p| min.max(p));
        if let Some(prev) = self.prev_dts {
            let delta = u32::try_from(dts - prev).unwrap_or(u32::MAX);
            stts_push(&mut self.stts, delta, 1);
            self.duration += u64::from(delta);
            self.last_delta = Some(delta);
        }
        self.first_dts.get_or_insert(dts);
        self.prev_dts = Some(dts);
        let offset = time.saturating_sub(dts);
        match self.ctts.last_mut() {
            Some(e) if e.sample_offset == offset => e.sample_count += 1,
            _ => self.ctts.push(CttsEntry {
                sample_count: 1,
                sample_offset: offset,
            }),
        }
    }

    /// Ends the track: the last sample lasts as long as the one before it, or
    /// `default_delta` if it is the only one.
    pub fn finish(&mut self, default_delta: u32) {
        while !self.heap.is_empty() {
            self.emit();
        }
        if self.prev_dts.is_some() {
            let last = self.last_delta.unwrap_or(default_delta);
            stts_push(&mut self.stts, last, 1);
            self.duration += u64::from(last);
        }
        self.heap = BinaryHeap::new();
        self.pending = VecDeque::new();
    }

    /// Whether a `ctts` is needed (some composition offset is not 0).
    pub fn has_offsets(&self) -> bool {
        self.ctts.iter().any(|e| e.sample_offset != 0)
    }
}

/// G.711 the QuickTime way: every audio sample (one byte per channel) is an MP4 sample; a
/// unit's last sample lasts until the next unit (longer across a gap).
#[derive(Debug, Default)]
pub(crate) struct G711Timing {
    /// The previous unit: its time and its sample count.
    prev: Option<(i64, u32)>,
    pub stts: Stts,
    pub first_time: Option<i64>,
    pub duration: u64,
    /// MP4 samples (bytes / channels).
    pub samples: u64,
}

impl G711Timing {
    /// A unit of `n` samples at `time`.
    pub fn push(&mut self, time: i64, n: u32) {
        if let Some((t, pn)) = self.prev.take() {
            let last = time.saturating_sub(t).saturating_sub(i64::from(pn - 1));
            self.close(pn, last);
        }
        self.first_time.get_or_insert(time);
        self.prev = Some((time, n));
        self.samples += u64::from(n);
    }

    fn close(&mut self, n: u32, last: i64) {
        stts_push(&mut self.stts, 1, n - 1);
        let last = u32::try_from(last.max(1)).unwrap_or(1);
        stts_push(&mut self.stts, last, 1);
        self.duration += u64::from(n - 1) + u64::from(last);
    }

    pub fn finish(&mut self) {
        if let Some((_, n)) = self.prev.take() {
            self.close(n, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_stream_round_trip() {
        let units = [
            Unit {
                track: 0,
                key: true,
                size: 70_000,
            },
            Unit {
                track: 1,
                key: true,
                size: 160,
            },
            Unit {
                track: 1,
                key: true,
                size: 160,
            },
            Unit {
                track: 0,
                key: false,
                size: 9_000,
            },
            Unit {
                track: SKIPPED,
                key: false,
                size: 12,
            },
            Unit {
                track: 0,
                key: false,
                size: 9_000,
            },
        ];
        let mut w = UnitWriter::new();
        let mut buf = Vec::new();
        for u in &units {
            w.push(&mut buf, *u);
        }
        // 4 (70 kB) + 2 (160) + 1 (repeat) + 3 (9 kB) + 2 (12, skipped) + 1 (repeat).
        assert_eq!(buf.len(), 13);
        let mut r = UnitReader::new(&buf, 0);
        let back: Vec<Unit> = std::iter::from_fn(|| r.next_unit()).collect();
        assert_eq!(back, units);
        // A period restarts the repeat state and decodes on its own.
        let at = buf.len();
        w.restart();
        w.push(&mut buf, units[2]);
        assert_eq!(buf.len() - at, 2);
        assert_eq!(UnitReader::new(&buf, at).next_unit(), Some(units[2]));
    }

    #[test]
    fn decode_times_from_b_frames() {
        // I P B B P B B at 3000 ticks: presentation 0 3 1 2 6 4 5 (x 3000).
        let mut t = SampleTiming::default();
        for p in [0, 3, 1, 2, 6, 4, 5] {
            t.push(p * 3000);
        }
        t.finish(3000);
        assert_eq!(
            t.stts.entries,
            vec![SttsEntry {
                sample_count: 7,
                sample_delta: 3000
            }]
        );
        let offsets: Vec<(u32, i64)> = t
            .ctts
            .iter()
            .map(|e| (e.sample_count, e.sample_offset))
            .collect();
        // dts 0..6: offsets 0, 2, -1, -1, 2, -1, -1 (x 3000).
        assert_eq!(
            offsets,
            vec![(1, 0), (1, 6000), (2, -3000), (1, 6000), (2, -3000)]
        );
        assert_eq!((t.first_dts, t.duration), (Some(0), 21_000));
    }

    #[test]
    fn g711_gap_lengthens_the_last_sample() {
        let mut t = G711Timing::default();
        t.push(0, 160);
        t.push(160, 160);
        t.push(1000, 160); // 680 samples of silence before it
        t.finish();
        assert_eq!(t.samples, 480);
        assert_eq!(t.duration, 1160);
        assert_eq!(t.stts.entries.len(), 3);
        assert_eq!(t.stts.entries[1].sample_delta, 681);
    }
}
