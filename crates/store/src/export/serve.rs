//! Serving byte ranges of a planned export (the module doc of `export` has the layout):
//! the `ftyp`/`moov` pieces, the `mdat` header, and sample data read period by period
//! through one read window, converting H.264/H.265 samples in place; [`ExportReader`]
//! keeps its file, window and period between chunked reads.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use bytes::Bytes;

use super::moov::Piece;
use super::table::{UnitReader, SKIPPED};
use super::{codec, fmp4, Chunk, ExportFile, ExportReport, Period, READ_WINDOW};
use crate::StoreError;

impl ExportFile {
    /// Length of the whole file in bytes.
    pub fn len(&self) -> u64 {
        match &self.plan.frag {
            Some(f) => f.len,
            None => self.plan.data_at + self.plan.data_len,
        }
    }

    /// Whether this is a fragmented file ([`Store::export_fragmented`]).
    pub fn is_fragmented(&self) -> bool {
        self.plan.frag.is_some()
    }

    /// Never true (an export holds at least one sample); for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn camera(&self) -> &str {
        &self.plan.camera
    }

    /// What the file holds.
    pub fn report(&self) -> &ExportReport {
        &self.plan.report
    }

    /// Units exported per track (in `report().tracks` order).
    pub fn units_per_track(&self) -> Vec<u64> {
        self.plan
            .tracks
            .iter()
            .map(|t| u64::from(t.units))
            .collect()
    }

    /// Bytes of memory the plan holds (tables and `moov` pieces), for the figures.
    pub fn table_bytes(&self) -> usize {
        let p = &self.plan;
        p.units.capacity()
            + p.periods.capacity() * std::mem::size_of::<Period>()
            + p.chunks.capacity() * std::mem::size_of::<Chunk>()
            + p.track_chunks
                .iter()
                .map(|c| c.capacity() * 4)
                .sum::<usize>()
            + p.segments
                .iter()
                .map(|s| 32 + s.path.as_os_str().len())
                .sum::<usize>()
            + p.moov
                .iter()
                .map(|m| match m {
                    Piece::Bytes(b) => b.capacity(),
                    _ => 16,
                })
                .sum::<usize>()
            + p.frag.as_ref().map_or(0, |f| {
                f.init.capacity() + f.tracks.iter().map(fmp4::FragTrack::bytes).sum::<usize>()
            })
    }

    /// Writes bytes `start..end` of the file (clamped to its length) to `out`.
    pub fn write_range(&self, start: u64, end: u64, out: &mut dyn Write) -> Result<(), StoreError> {
        let mut io = Io::default();
        self.write_range_with(start, end, out, &mut io)
    }

    /// A reader of bytes `start..end` (clamped to the length), for chunked reads.
    pub fn reader(&self, start: u64, end: u64) -> ExportReader {
        let end = end.min(self.len());
        ExportReader {
            file: self.clone(),
            pos: start.min(end),
            end,
            io: Io::default(),
        }
    }

    pub(super) fn write_range_with(
        &self,
        start: u64,
        end: u64,
        out: &mut dyn Write,
        io: &mut Io,
    ) -> Result<(), StoreError> {
        let p = &self.plan;
        let end = end.min(self.len());
        if start >= end {
            return Ok(());
        }
        if let Some(frag) = &p.frag {
            return self.write_fragmented(frag, start, end, out, io);
        }
        let w = |out: &mut dyn Write, b: &[u8]| {
            out.write_all(b)
                .map_err(|e| StoreError::Export(format!("writing the MP4 file: {e}")))
        };
        // ftyp
        let ftyp_end = p.ftyp.len() as u64;
        if start < ftyp_end {
            w(out, slice(&p.ftyp, start, end))?;
        }
        // moov
        let mut at = ftyp_end;
        for piece in &p.moov {
            let len = piece.len();
            if start < at + len && end > at {
                let from = start.saturating_sub(at);
                let to = (end - at).min(len);
                self.write_piece(piece, from, to, out)?;
            }
            at += len;
        }
        // mdat header
        let mdat_at = ftyp_end + p.moov_len;
        if start < mdat_at + 16 && end > mdat_at {
            let mut header = [0u8; 16];
            header[..8].copy_from_slice(&[0, 0, 0, 1, b'm', b'd', b'a', b't']);
            header[8..].copy_from_slice(&(16 + p.data_len).to_be_bytes());
            w(
                out,
                slice(&header, start.saturating_sub(mdat_at), end - mdat_at),
            )?;
        }
        // samples
        if end > p.data_at {
            let from = start.saturating_sub(p.data_at);
            self.write_data(from, end - p.data_at, out, io)?;
        }
        Ok(())
    }

    /// Bytes `from..to` of a `moov` piece.
    fn write_piece(
        &self,
        piece: &Piece,
        from: u64,
        to: u64,
        out: &mut dyn Write,
    ) -> Result<(), StoreError> {
        let wr = |out: &mut dyn Write, b: &[u8]| {
            out.write_all(b)
                .map_err(|e| StoreError::Export(format!("writing the MP4 file: {e}")))
        };
        match piece {
            Piece::Bytes(b) => wr(out, slice(b, from, to)),
            Piece::Sizes { track, .. } | Piece::Offsets { track, .. } => {
                let header = piece.table_header();
                let hlen = header.len() as u64;
                if from < hlen {
                    wr(out, slice(&header, from, to))?;
                }
                if to <= hlen {
                    return Ok(());
                }
                let (entry, wide) = match piece {
                    Piece::Offsets { wide: true, .. } => (8u64, true),
                    _ => (4u64, false),
                };
                let e_from = from.max(hlen) - hlen;
                let e_to = to - hlen;
                let first = e_from / entry;
                let mut skip = (e_from % entry) as usize;
                let mut left = e_to - e_from;
                let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
                let mut flush = |buf: &mut Vec<u8>, skip: &mut usize, left: &mut u64| {
                    let avail = buf.get(*skip..).unwrap_or(&[]);
                    let n = avail
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let r = wr(out, avail.get(..n).unwrap_or(&[]));
                    *left -= n as u64;
                    *skip = 0;
                    buf.clear();
                    r
                };
                let emit = |v: u64, buf: &mut Vec<u8>| {
                    if wide {
                        buf.extend_from_slice(&v.to_be_bytes());
                    } else {
                        buf.extend_from_slice(&(v as u32).to_be_bytes());
                    }
                };
                let track = *track;
                if matches!(piece, Piece::Sizes { .. }) {
                    let mut sizes = self.sizes_from(track, first);
                    while left > 0 {
                        let Some(s) = sizes.next_size() else {
                            break;
                        };
                        emit(u64::from(s), &mut buf);
                        if buf.len() >= 16 * 1024 {
                            flush(&mut buf, &mut skip, &mut left)?;
                        }
                    }
                } else {
                    let p = &self.plan;
                    let ids = p.track_chunks.get(track).map_or(&[][..], Vec::as_slice);
                    for &c in ids
                        .iter()
                        .skip(usize::try_from(first).unwrap_or(usize::MAX))
                    {
                        if left == 0 {
                            break;
                        }
                        emit(p.data_at + self.chunk_offset(c as usize), &mut buf);
                        if buf.len() >= 16 * 1024 {
                            flush(&mut buf, &mut skip, &mut left)?;
                        }
                    }
                }
                if left > 0 && !buf.is_empty() {
                    flush(&mut buf, &mut skip, &mut left)?;
                }
                if left > 0 {
                    return Err(StoreError::Export(format!(
                        "camera {}: sample table shorter than planned (internal error)",
                        self.plan.camera
                    )));
                }
                Ok(())
            }
        }
    }

    /// The period holding chunk `c`.
    fn period_of_chunk(&self, c: usize) -> usize {
        self.plan
            .periods
            .partition_point(|p| p.first_chunk as usize <= c)
            .saturating_sub(1)
    }

    /// Offset of chunk `c` in the `mdat` payload.
    fn chunk_offset(&self, c: usize) -> u64 {
        let p = &self.plan;
        let Some(period) = p.periods.get(self.period_of_chunk(c)) else {
            return 0;
        };
        let before: u64 = p
            .chunks
            .get(period.first_chunk as usize..c)
            .unwrap_or(&[])
            .iter()
            .map(|c| u64::from(c.bytes))
            .sum();
        period.mdat_offset + before
    }

    /// The sizes of output track `track`'s samples from sample `first` on.
    fn sizes_from(&self, track: usize, first: u64) -> Sizes<'_> {
        let p = &self.plan;
        let ids = p.track_chunks.get(track).map_or(&[][..], Vec::as_slice);
        let first = u32::try_from(first).unwrap_or(u32::MAX);
        let k = ids
            .partition_point(|&c| {
                p.chunks
                    .get(c as usize)
                    .is_some_and(|c| c.first_sample <= first)
            })
            .saturating_sub(1);
        let (period, skip) = match ids
            .get(k)
            .and_then(|&c| p.chunks.get(c as usize).map(|ch| (c, ch)))
        {
            Some((c, ch)) => (self.period_of_chunk(c as usize), first - ch.first_sample),
            None => (p.periods.len(), 0),
        };
        Sizes {
            file: self,
            source: p.tracks.get(track).map_or(SKIPPED, |t| t.source),
            period,
            reader: None,
            left_in_period: 0,
            skip,
        }
    }

    /// Bytes `from..to` of the `mdat` payload.
    pub(super) fn write_data(
        &self,
        from: u64,
        to: u64,
        out: &mut dyn Write,
        io: &mut Io,
    ) -> Result<(), StoreError> {
        let p = &self.plan;
        let to = to.min(p.data_len);
        if from >= to {
            return Ok(());
        }
        let mut pi = p
            .periods
            .partition_point(|x| x.mdat_offset <= from)
            .saturating_sub(1);
        while let Some(period) = p.periods.get(pi) {
            if period.mdat_offset >= to {
                break;
            }
            io.load_period(self, pi)?;
            let chunks_end = p
                .periods
                .get(pi + 1)
                .map_or(p.chunks.len(), |n| n.first_chunk as usize);
            let mut chunk_at = period.mdat_offset;
            for chunk in p
                .chunks
                .get(period.first_chunk as usize..chunks_end)
                .unwrap_or(&[])
            {
                let chunk_end = chunk_at + u64::from(chunk.bytes);
                if chunk_end > from && chunk_at < to {
                    let mut at = chunk_at;
                    for i in 0..io.units.len() {
                        let Some(&u) = io.units.get(i) else {
                            break;
                        };
                        if u.track != chunk.track {
                            continue;
                        }
                        let u_end = at + u64::from(u.size);
                        if u_end > from && at < to {
                            let a = from.saturating_sub(at);
                            let b = to.min(u_end) - at;
                            self.write_unit(period.segment, u, a, b, out, io)?;
                        }
                        at = u_end;
                        if at >= to {
                            break;
                        }
                    }
                }
                chunk_at = chunk_end;
            }
            pi += 1;
        }
        Ok(())
    }

    /// Bytes `a..b` of one sample, as it is in the file (converted for H.264/H.265).
    fn write_unit(
        &self,
        segment: u32,
        u: UnitPos,
        a: u64,
        b: u64,
        out: &mut dyn Write,
        io: &mut Io,
    ) -> Result<(), StoreError> {
        let (track, offset, size) = (u.track, u.offset, u.size);
        let p = &self.plan;
        let io_err = |e: std::io::Error| StoreError::Export(format!("writing the MP4 file: {e}"));
        let (a, b) = (a as usize, b as usize);
        match p
            .tracks
            .get(usize::from(track))
            .and_then(|t| t.convert.as_ref())
        {
            Some((hevc, params)) => {
                let mut sample = std::mem::take(&mut io.sample);
                sample.clear();
                let read = io.read(self, segment, offset, size as usize, &mut sample);
                let result = read.and_then(|()| {
                    let params: Vec<&Bytes> = params.iter().collect();
                    codec::to_length_prefixed_exact(&sample, *hevc, &params, &mut io.converted)
                        .map_err(|e| {
                            let seg = p.segments.get(segment as usize);
                            StoreError::Export(format!(
                                "camera {}: segment {} ({}): frame at byte {offset}: {e}",
                                p.camera,
                                seg.map_or(0, |s| s.id),
                                seg.map_or(String::new(), |s| s.path.display().to_string())
                            ))
                        })?;
                    out.write_all(io.converted.get(a..b).unwrap_or(&[]))
                        .map_err(io_err)
                });
                io.sample = sample;
                result
            }
            None => {
                let mut buf = std::mem::take(&mut io.sample);
                buf.clear();
                let r = io
                    .read(self, segment, offset + a as u64, b - a, &mut buf)
                    .and_then(|()| out.write_all(&buf).map_err(io_err));
                io.sample = buf;
                r
            }
        }
    }
}

pub(super) fn slice(b: &[u8], from: u64, to: u64) -> &[u8] {
    let len = b.len() as u64;
    let (from, to) = (from.min(len) as usize, to.min(len) as usize);
    b.get(from..to).unwrap_or(&[])
}

/// Sizes of one track's samples, period after period (for `stsz`).
struct Sizes<'a> {
    file: &'a ExportFile,
    source: u8,
    period: usize,
    reader: Option<UnitReader<'a>>,
    left_in_period: u32,
    /// Samples of the track still to pass over before the first one wanted.
    skip: u32,
}

impl Sizes<'_> {
    fn next_size(&mut self) -> Option<u32> {
        let p = &self.file.plan;
        loop {
            if self.left_in_period == 0 {
                let period = p.periods.get(self.period)?;
                self.reader = Some(UnitReader::new(&p.units, period.units_pos as usize));
                self.left_in_period = period.units;
                self.period += 1;
                continue;
            }
            self.left_in_period -= 1;
            let u = self.reader.as_mut()?.next_unit()?;
            if u.track != self.source {
                continue;
            }
            if self.skip > 0 {
                self.skip -= 1;
                continue;
            }
            return Some(u.size);
        }
    }
}

/// What a reader keeps between reads: the open segment file, the read window, buffers for
/// one video sample, and the decoded units of the current period.
#[derive(Default)]
pub(super) struct Io {
    file: Option<(u32, File)>,
    window: Vec<u8>,
    /// (segment, file offset, valid bytes) of the window.
    win: Option<(u32, u64, usize)>,
    sample: Vec<u8>,
    converted: Vec<u8>,
    pub(super) period: Option<usize>,
    /// The period's units, in file order.
    pub(super) units: Vec<UnitPos>,
    /// Where a fragmented file's reader is.
    pub(super) frag: Option<fmp4::FragState>,
}

/// A unit of the loaded period.
#[derive(Debug, Clone, Copy)]
pub(super) struct UnitPos {
    /// Output track, or [`SKIPPED`].
    pub(super) track: u8,
    pub(super) key: bool,
    pub(super) size: u32,
    /// Offset in the segment file.
    pub(super) offset: u64,
}

impl Io {
    pub(super) fn load_period(&mut self, file: &ExportFile, pi: usize) -> Result<(), StoreError> {
        if self.period == Some(pi) {
            return Ok(());
        }
        let p = &file.plan;
        let Some(period) = p.periods.get(pi) else {
            return Ok(());
        };
        self.units.clear();
        let mut r = UnitReader::new(&p.units, period.units_pos as usize);
        let mut offset = period.file_offset;
        for _ in 0..period.units {
            let Some(u) = r.next_unit() else {
                return Err(StoreError::Export(format!(
                    "camera {}: unit table truncated (internal error)",
                    p.camera
                )));
            };
            let out = p
                .by_source
                .get(usize::from(u.track))
                .copied()
                .flatten()
                .unwrap_or(SKIPPED);
            self.units.push(UnitPos {
                track: out,
                key: u.key,
                size: u.size,
                offset,
            });
            offset += u64::from(u.size);
        }
        self.period = Some(pi);
        Ok(())
    }

    /// Appends `len` bytes at `offset` of segment `segment` to `dst`.
    fn read(
        &mut self,
        file: &ExportFile,
        segment: u32,
        offset: u64,
        len: usize,
        dst: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        if let Some((s, start, valid)) = self.win {
            if s == segment && offset >= start && offset + len as u64 <= start + valid as u64 {
                let at = (offset - start) as usize;
                dst.extend_from_slice(self.window.get(at..at + len).unwrap_or(&[]));
                return Ok(());
            }
        }
        let p = &file.plan;
        let seg = p.segments.get(segment as usize);
        let describe = |what: String| {
            StoreError::Export(format!(
                "camera {}: segment {} ({}): {what}",
                p.camera,
                seg.map_or(0, |s| s.id),
                seg.map_or(String::new(), |s| s.path.display().to_string())
            ))
        };
        if self.file.as_ref().map(|(s, _)| *s) != Some(segment) {
            self.file = None;
            let path = seg.map(|s| s.path.clone()).unwrap_or_default();
            let f = File::open(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    describe(format!(
                        "the file is gone (deleted by retention in another process while this \
                         export was open?): {e}"
                    ))
                } else {
                    describe(format!("cannot open: {e}"))
                }
            })?;
            self.file = Some((segment, f));
        }
        let Some((_, f)) = self.file.as_mut() else {
            return Err(describe("not open".into()));
        };
        let short = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                describe(format!(
                    "the file ends before byte {} that the index references (damaged?)",
                    offset + len as u64
                ))
            } else {
                describe(format!("cannot read: {e}"))
            }
        };
        f.seek(SeekFrom::Start(offset)).map_err(short)?;
        if len >= READ_WINDOW / 2 {
            // Big samples are read straight into their buffer.
            self.win = None;
            let at = dst.len();
            dst.resize(at + len, 0);
            return f
                .read_exact(dst.get_mut(at..).unwrap_or(&mut []))
                .map_err(short);
        }
        self.window.resize(READ_WINDOW, 0);
        let mut valid = 0;
        while valid < READ_WINDOW {
            match f.read(self.window.get_mut(valid..).unwrap_or(&mut [])) {
                Ok(0) => break,
                Ok(n) => valid += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.win = None;
                    return Err(short(e));
                }
            }
        }
        self.win = Some((segment, offset, valid));
        if valid < len {
            return Err(short(std::io::ErrorKind::UnexpectedEof.into()));
        }
        dst.extend_from_slice(self.window.get(..len).unwrap_or(&[]));
        Ok(())
    }
}

/// Reads a byte range of an [`ExportFile`] in chunks, keeping its file and buffers
/// between calls (see [`crate::AsyncStore::read_export`]).
pub struct ExportReader {
    file: ExportFile,
    pos: u64,
    end: u64,
    io: Io,
}

impl ExportReader {
    /// The next at most `max` bytes, `None` at the end of the range.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StoreError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let n = (self.end - self.pos).min(max.max(1) as u64);
        let mut buf = Vec::with_capacity(n as usize);
        self.file
            .write_range_with(self.pos, self.pos + n, &mut buf, &mut self.io)?;
        if buf.len() as u64 != n {
            return Err(StoreError::Export(format!(
                "camera {}: wrote {} of {n} bytes at {} (internal error)",
                self.file.camera(),
                buf.len(),
                self.pos
            )));
        }
        self.pos += n;
        Ok(Some(Bytes::from(buf)))
    }

    /// Bytes left in the range.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    pub fn file(&self) -> &ExportFile {
        &self.file
    }
}
