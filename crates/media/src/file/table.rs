//! The sample table of one track (ISO/IEC 14496-12 §8.6 and §8.7: `stts`, `ctts`, `stss`,
//! `stsc`, `stsz`, `stco`/`co64`) flattened into a list of [`Unit`]s, each the byte range,
//! decode time, composition offset and sync flag of one access unit to send.
//!
//! The tables are checked against each other and against the file length here, so that a
//! truncated or corrupt file fails when it is opened, naming the box and sample at fault.

use mp4_atom::{Stbl, StszSamples};

/// One access unit: a sample, or (G.711) a few consecutive samples of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unit {
    /// Byte offset in the file.
    pub offset: u64,
    pub size: u32,
    /// Decode time in media timescale ticks, from the start of the track.
    pub dts: u64,
    /// Composition offset (`ctts`): presentation time = `dts + cto`.
    pub cto: i64,
    /// A sync sample (`stss`; every sample when there is no `stss`).
    pub sync: bool,
}

#[derive(Debug)]
pub(super) struct SampleTable {
    pub units: Vec<Unit>,
    /// The sum of the sample durations, in media timescale ticks.
    pub duration: u64,
    /// The sum of the sample sizes.
    pub bytes: u64,
}

/// Run-length entries (`stts`, `ctts`) expanded one sample at a time.
struct Runs<'a, T: Copy> {
    entries: &'a [(u32, T)],
    index: usize,
    used: u32,
}

impl<T: Copy> Runs<'_, T> {
    fn next(&mut self) -> Option<T> {
        loop {
            let &(count, value) = self.entries.get(self.index)?;
            if self.used < count {
                self.used += 1;
                return Some(value);
            }
            self.index += 1;
            self.used = 0;
        }
    }
}

/// Flattens `stbl`. `file_len` bounds every sample, and the samples of this track and the
/// `used` bytes of the tracks flattened before it together. With `group_ticks`, consecutive
/// samples of a chunk are merged into units of about that many ticks (G.711, one byte a
/// sample).
pub(super) fn build(
    stbl: &Stbl,
    file_len: u64,
    used: u64,
    group_ticks: Option<u64>,
) -> Result<SampleTable, String> {
    let (count, fixed_size, sizes): (u64, u32, &[u32]) = match &stbl.stsz.samples {
        StszSamples::Identical { count, size } => (u64::from(*count), *size, &[]),
        StszSamples::Different { sizes } => (sizes.len() as u64, 0, sizes),
    };
    let size_of = |i: u64| -> u32 {
        if fixed_size != 0 {
            fixed_size
        } else {
            // `i < count == sizes.len()`.
            usize::try_from(i)
                .ok()
                .and_then(|i| sizes.get(i))
                .copied()
                .unwrap_or(0)
        }
    };

    let chunk_offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, Some(co64)) => co64.entries.clone(),
        (None, None) => return Err("stbl has neither stco nor co64".into()),
    };

    let stsc = &stbl.stsc.entries;
    for (i, e) in stsc.iter().enumerate() {
        let prev_first = if i == 0 { 0 } else { stsc[i - 1].first_chunk };
        if (i == 0 && e.first_chunk != 1) || (i > 0 && e.first_chunk <= prev_first) {
            return Err(format!(
                "stsc entry {}: first_chunk {} out of order",
                i + 1,
                e.first_chunk
            ));
        }
    }

    let stts: Vec<(u32, u32)> = stbl
        .stts
        .entries
        .iter()
        .map(|e| (e.sample_count, e.sample_delta))
        .collect();
    let mut deltas = Runs {
        entries: &stts,
        index: 0,
        used: 0,
    };
    let ctts: Option<Vec<(u32, i64)>> = stbl.ctts.as_ref().map(|c| {
        c.entries
            .iter()
            .map(|e| (e.sample_count, e.sample_offset))
            .collect()
    });
    let mut offsets = ctts.as_ref().map(|c| Runs {
        entries: c,
        index: 0,
        used: 0,
    });
    let sync_samples: Option<Vec<u32>> = stbl.stss.as_ref().map(|s| {
        let mut v = s.entries.clone();
        v.sort_unstable();
        v
    });
    let mut next_sync = 0usize;

    let mut units = Vec::new();
    let mut chunk = Vec::new();
    let mut sample = 0u64; // 0-based; messages use 1-based numbers as the tables do.

    // Samples do not overlap, those of other tracks included, so together they fit in the
    // file. Checking it bounds the samples of all tracks by the file's length (or by stsz's
    // entries, for empty ones) even when every chunk of stco, or every track, starts at the
    // same offset (else chunks x tracks x file length units).
    let mut total_bytes = 0u64;
    let mut dts = 0u64;
    let mut stsc_index = 0usize;
    for (c, &chunk_offset) in chunk_offsets.iter().enumerate() {
        if sample >= count {
            break;
        }
        let chunk_number = c as u64 + 1;
        while stsc
            .get(stsc_index + 1)
            .is_some_and(|e| u64::from(e.first_chunk) <= chunk_number)
        {
            stsc_index += 1;
        }
        let Some(entry) = stsc.get(stsc_index) else {
            return Err("stsc is empty".into());
        };
        let in_chunk = u64::from(entry.samples_per_chunk).min(count - sample);
        let mut offset = chunk_offset;
        chunk.clear();
        for _ in 0..in_chunk {
            let n = sample + 1;
            let size = size_of(sample);
            let end = offset.checked_add(u64::from(size));
            if end.is_none_or(|end| end > file_len) {
                return Err(format!(
                    "sample {n} (chunk {chunk_number}, offset {offset}, {size} bytes) lies \
                     beyond the end of the file ({file_len} bytes)"
                ));
            }
            total_bytes = total_bytes.saturating_add(u64::from(size));
            if total_bytes.saturating_add(used) > file_len {
                let others = if used > 0 {
                    format!(" (and the tracks before {used})")
                } else {
                    String::new()
                };
                return Err(format!(
                    "stsz: samples 1 to {n} add up to {total_bytes} bytes{others}, more than the \
                     file's {file_len} (chunk {chunk_number} at offset {chunk_offset} in \
                     stco/co64 overlaps other samples)"
                ));
            }
            let delta = deltas
                .next()
                .ok_or_else(|| format!("stts describes fewer samples than stsz ({count})"))?;
            let cto = match offsets.as_mut() {
                None => 0,
                Some(o) => o
                    .next()
                    .ok_or_else(|| format!("ctts describes fewer samples than stsz ({count})"))?,
            };
            let sync = match &sync_samples {
                None => true,
                Some(s) => {
                    while s.get(next_sync).is_some_and(|&x| u64::from(x) < n) {
                        next_sync += 1;
                    }
                    s.get(next_sync).is_some_and(|&x| u64::from(x) == n)
                }
            };
            chunk.push((
                Unit {
                    offset,
                    size,
                    dts,
                    cto,
                    sync,
                },
                delta,
            ));
            offset = offset.saturating_add(u64::from(size));
            dts = dts
                .checked_add(u64::from(delta))
                .ok_or_else(|| format!("stts: decode time overflows at sample {n}"))?;
            sample += 1;
        }
        match group_ticks {
            None => units.extend(chunk.iter().map(|(u, _)| *u)),
            Some(target) => group(&chunk, target, &mut units)
                .map_err(|e| format!("chunk {chunk_number}: {e}"))?,
        }
    }
    if sample < count {
        return Err(format!(
            "stsc/stco describe {sample} samples but stsz has {count}"
        ));
    }
    Ok(SampleTable {
        units,
        duration: dts,
        bytes: total_bytes,
    })
}

/// Splits the samples of one chunk (contiguous in the file) into about `target`-tick units
/// of near-equal sample counts.
fn group(chunk: &[(Unit, u32)], target: u64, out: &mut Vec<Unit>) -> Result<(), String> {
    let m = chunk.len() as u64;
    let ticks: u64 = chunk.iter().map(|&(_, d)| u64::from(d)).sum();
    let k = ticks.div_ceil(target.max(1)).clamp(1, m.max(1));
    let (base, extra) = (m / k, m % k);
    let mut rest = chunk;
    for i in 0..k {
        let n = (base + u64::from(i < extra)) as usize;
        let (part, after) = rest.split_at_checked(n).unwrap_or((rest, &[]));
        rest = after;
        let Some(&(first, _)) = part.first() else {
            continue;
        };
        let size: u64 = part.iter().map(|(u, _)| u64::from(u.size)).sum();
        out.push(Unit {
            size: u32::try_from(size).map_err(|_| format!("{size}-byte unit is too large"))?,
            sync: true,
            ..first
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Co64, Ctts, CttsEntry, Stco, Stsc, StscEntry, Stss, Stsz, Stts, SttsEntry};

    fn stbl(sizes: StszSamples, spc: &[(u32, u32)], chunks: Vec<u32>, stts: &[(u32, u32)]) -> Stbl {
        Stbl {
            stsz: Stsz { samples: sizes },
            stsc: Stsc {
                entries: spc
                    .iter()
                    .map(|&(first_chunk, samples_per_chunk)| StscEntry {
                        first_chunk,
                        samples_per_chunk,
                        sample_description_index: 1,
                    })
                    .collect(),
            },
            stco: Some(Stco { entries: chunks }),
            stts: Stts {
                entries: stts
                    .iter()
                    .map(|&(sample_count, sample_delta)| SttsEntry {
                        sample_count,
                        sample_delta,
                    })
                    .collect(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn expands_chunks_times_and_sync() {
        let mut s = stbl(
            StszSamples::Different {
                sizes: vec![10, 20, 30, 40, 50],
            },
            &[(1, 2), (3, 1)],
            vec![100, 200, 300],
            &[(4, 10), (1, 5)],
        );
        s.ctts = Some(Ctts {
            entries: vec![
                CttsEntry {
                    sample_count: 1,
                    sample_offset: 20,
                },
                CttsEntry {
                    sample_count: 4,
                    sample_offset: -10,
                },
            ],
        });
        s.stss = Some(Stss {
            entries: vec![4, 1],
        });
        let t = build(&s, 1000, 0, None).unwrap();
        assert_eq!(t.duration, 45);
        let got: Vec<_> = t
            .units
            .iter()
            .map(|u| (u.offset, u.size, u.dts, u.cto, u.sync))
            .collect();
        assert_eq!(
            got,
            vec![
                (100, 10, 0, 20, true),
                (110, 20, 10, -10, false),
                (200, 30, 20, -10, false),
                (230, 40, 30, -10, true),
                (300, 50, 40, -10, false),
            ]
        );
    }

    #[test]
    fn groups_tiny_samples_per_chunk() {
        let mut s = stbl(
            StszSamples::Identical {
                count: 1000,
                size: 1,
            },
            &[(1, 400)],
            vec![],
            &[(1000, 1)],
        );
        s.stco = None;
        s.co64 = Some(Co64 {
            entries: vec![0, 1000, 2000],
        });
        let t = build(&s, 3000, 0, Some(160)).unwrap();
        let sizes: Vec<u32> = t.units.iter().map(|u| u.size).collect();
        // 400 = 134 + 133 + 133; the last chunk has 200 = 100 + 100.
        assert_eq!(sizes, vec![134, 133, 133, 134, 133, 133, 100, 100]);
        assert_eq!(t.units[1].offset, 134);
        assert_eq!(t.units[1].dts, 134);
        assert_eq!(t.units[3].offset, 1000);
        assert_eq!(t.units[7].dts, 900);
        assert_eq!(t.duration, 1000);
    }

    #[test]
    fn inconsistent_tables() {
        let ok = || {
            stbl(
                StszSamples::Identical { count: 4, size: 10 },
                &[(1, 2)],
                vec![0, 20],
                &[(4, 1)],
            )
        };
        assert!(build(&ok(), 40, 0, None).is_ok());
        let e = build(&ok(), 39, 0, None).unwrap_err();
        assert!(e.contains("sample 4 (chunk 2, offset 30, 10 bytes)"), "{e}");
        let mut s = ok();
        s.stts.entries[0].sample_count = 3;
        assert!(build(&s, 40, 0, None).unwrap_err().contains("stts"));
        let mut s = ok();
        s.stco = Some(Stco { entries: vec![0] });
        assert!(build(&s, 40, 0, None)
            .unwrap_err()
            .contains("describe 2 samples"));
        let mut s = ok();
        s.stsc.entries[0].first_chunk = 2;
        assert!(build(&s, 40, 0, None).unwrap_err().contains("stsc"));
        let mut s = ok();
        s.stco = None;
        assert!(build(&s, 40, 0, None).unwrap_err().contains("stco"));
        // A huge declared count with few bytes fails fast instead of looping.
        let mut s = ok();
        s.stsz.samples = StszSamples::Identical {
            count: u32::MAX,
            size: 1,
        };
        s.stsc.entries[0].samples_per_chunk = u32::MAX;
        assert!(build(&s, 40, 0, None).is_err());
    }

    /// Chunks that all start at the same offset would each hold a file's length of samples:
    /// here 100,000 x 1,000,000 units (4 TB of table) for a 1 MB file. They fail at the
    /// sample whose bytes no longer fit in the file.
    #[test]
    fn overlapping_chunks_fail() {
        let s = stbl(
            StszSamples::Identical {
                count: u32::MAX,
                size: 1,
            },
            &[(1, 1_000_000)],
            vec![0; 100_000],
            &[(u32::MAX, 1)],
        );
        let e = build(&s, 1_000_000, 0, None).unwrap_err();
        assert!(
            e.contains("stsz: samples 1 to 1000001 add up to 1000001 bytes")
                && e.contains("chunk 2 at offset 0"),
            "{e}"
        );
        // Tracks that all use the same bytes: the same, counting the tracks before.
        let one = stbl(
            StszSamples::Identical { count: 4, size: 10 },
            &[(1, 4)],
            vec![0],
            &[(4, 1)],
        );
        let t = build(&one, 40, 0, None).unwrap();
        assert_eq!(t.bytes, 40);
        let e = build(&one, 40, t.bytes, None).unwrap_err();
        assert!(
            e.contains("samples 1 to 1 add up to 10 bytes (and the tracks before 40)"),
            "{e}"
        );
    }
}
