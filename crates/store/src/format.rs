//! The byte formats of the index (docs/store.md "Index schema"): the per-frame blob of a
//! segment, the serialized track list of a track set, and the camera-name rule.
//!
//! Hand-written because nothing else stores exactly these fields: the blob is ~8 bytes per
//! frame (LEB128 varints, zigzag for signed deltas) and any prefix of whole entries is itself
//! a valid blob, which is what crash recovery relies on. Decoding never panics: a truncated
//! or malformed blob decodes to its longest valid prefix plus a description of the fault.
//!
//! Left out: any compression beyond varints, and format versions other than 1 (an unknown
//! version byte is reported as corrupt).

use bytes::Bytes;
use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;

/// First byte of a frame blob and of a serialized track list.
const FORMAT_VERSION: u8 = 1;

/// One frame as the index describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameMeta {
    pub track: u32,
    pub key: bool,
    /// Byte offset in the segment file.
    pub offset: u64,
    pub size: u32,
    pub pts: u64,
    pub wallclock: UnixMicros,
}

impl FrameMeta {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.size))
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads a varint at `*pos`, advancing it; `None` if truncated or longer than 10 bytes.
fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Builds the blob of a segment as frames are appended.
#[derive(Debug, Clone)]
pub(crate) struct BlobWriter {
    buf: Vec<u8>,
    prev_pts: Vec<Option<u64>>,
    prev_wallclock: UnixMicros,
}

impl BlobWriter {
    pub fn new(base: UnixMicros) -> BlobWriter {
        let mut buf = Vec::with_capacity(16 * 1024);
        buf.push(FORMAT_VERSION);
        put_varint(&mut buf, zigzag(base));
        BlobWriter {
            buf,
            prev_pts: Vec::new(),
            prev_wallclock: base,
        }
    }

    pub fn push(&mut self, track: u32, key: bool, size: u32, pts: u64, wallclock: UnixMicros) {
        let t = track as usize;
        if self.prev_pts.len() <= t {
            self.prev_pts.resize(t + 1, None);
        }
        let prev = self.prev_pts.get(t).copied().flatten().unwrap_or(0);
        put_varint(&mut self.buf, (u64::from(track) << 1) | u64::from(key));
        put_varint(&mut self.buf, u64::from(size));
        put_varint(&mut self.buf, zigzag(pts.wrapping_sub(prev) as i64));
        put_varint(
            &mut self.buf,
            zigzag(wallclock.wrapping_sub(self.prev_wallclock)),
        );
        if let Some(p) = self.prev_pts.get_mut(t) {
            *p = Some(pts);
        }
        self.prev_wallclock = wallclock;
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// A decoded blob: its frames, where each entry ends in the blob, and the fault that stopped
/// decoding early, if any.
#[derive(Debug, Default)]
pub(crate) struct DecodedBlob {
    pub frames: Vec<FrameMeta>,
    /// `entry_ends[k]` = blob length that holds frames `0..=k`.
    pub entry_ends: Vec<usize>,
    /// Blob length that holds no frame (the header).
    pub header_len: usize,
    pub fault: Option<String>,
}

impl DecodedBlob {
    /// Blob bytes holding the first `n` frames.
    pub fn prefix_len(&self, n: usize) -> usize {
        match n.checked_sub(1) {
            None => self.header_len,
            Some(i) => self.entry_ends.get(i).copied().unwrap_or(self.header_len),
        }
    }
}

pub(crate) fn decode_blob(blob: &[u8]) -> DecodedBlob {
    let mut out = DecodedBlob::default();
    match blob.first() {
        Some(&FORMAT_VERSION) => {}
        Some(v) => {
            out.fault = Some(format!("unknown frame index version {v}"));
            return out;
        }
        None => {
            out.fault = Some("empty frame index".into());
            return out;
        }
    }
    let mut pos = 1;
    let Some(base) = get_varint(blob, &mut pos) else {
        out.fault = Some("truncated frame index header".into());
        return out;
    };
    out.header_len = pos;
    let mut wallclock = unzigzag(base);
    let mut prev_pts: Vec<u64> = Vec::new();
    let mut offset = 0u64;
    while pos < blob.len() {
        let n = out.frames.len();
        let start = pos;
        let entry = (|| {
            let tk = get_varint(blob, &mut pos)?;
            let size = get_varint(blob, &mut pos)?;
            let dpts = get_varint(blob, &mut pos)?;
            let dwall = get_varint(blob, &mut pos)?;
            Some((tk, size, dpts, dwall))
        })();
        let Some((tk, size, dpts, dwall)) = entry else {
            out.fault = Some(format!("frame {n}: truncated entry at blob byte {start}"));
            break;
        };
        let (Ok(track), Ok(size)) = (u32::try_from(tk >> 1), u32::try_from(size)) else {
            out.fault = Some(format!("frame {n}: track or size out of range"));
            break;
        };
        if track > 255 {
            out.fault = Some(format!("frame {n}: track {track} out of range"));
            break;
        }
        let t = track as usize;
        if prev_pts.len() <= t {
            prev_pts.resize(t + 1, 0);
        }
        let Some(prev) = prev_pts.get_mut(t) else {
            break;
        };
        let pts = prev.wrapping_add(unzigzag(dpts) as u64);
        *prev = pts;
        wallclock = wallclock.wrapping_add(unzigzag(dwall));
        out.frames.push(FrameMeta {
            track,
            key: tk & 1 == 1,
            offset,
            size,
            pts,
            wallclock,
        });
        out.entry_ends.push(pos);
        offset = offset.saturating_add(u64::from(size));
    }
    out
}

/// Bounds and keyframe times of a run of frames, as a segment row stores them:
/// `(start_us, end_us, first_key_us, last_key_us)` (min/max wallclock; keyframes of
/// `seek_track`).
pub(crate) fn summarize(
    frames: &[FrameMeta],
    seek_track: u32,
) -> Option<(
    UnixMicros,
    UnixMicros,
    Option<UnixMicros>,
    Option<UnixMicros>,
)> {
    let start = frames.iter().map(|f| f.wallclock).min()?;
    let end = frames.iter().map(|f| f.wallclock).max()?;
    let mut keys = frames
        .iter()
        .filter(|f| f.key && f.track == seek_track)
        .map(|f| f.wallclock);
    let first = keys.next();
    let last = keys.next_back().or(first);
    Some((start, end, first, last))
}

// ---------------------------------------------------------------------------------------
// Track lists
// ---------------------------------------------------------------------------------------

pub(crate) fn encode_tracks(tracks: &[TrackInfo]) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    let mut out = vec![FORMAT_VERSION, tracks.len().min(255) as u8];
    for t in tracks.iter().take(255) {
        out.push(t.payload_type);
        match &t.codec {
            CodecParams::H264 { sps, pps } => {
                out.push(1);
                bytes(&mut out, sps);
                bytes(&mut out, pps);
            }
            CodecParams::H265 { vps, sps, pps } => {
                out.push(2);
                bytes(&mut out, vps);
                bytes(&mut out, sps);
                bytes(&mut out, pps);
            }
            CodecParams::Jpeg => out.push(3),
            CodecParams::Pcmu { rate, channels } | CodecParams::Pcma { rate, channels } => {
                out.push(if matches!(t.codec, CodecParams::Pcmu { .. }) {
                    4
                } else {
                    5
                });
                out.extend_from_slice(&rate.to_be_bytes());
                out.push(*channels);
            }
            CodecParams::Aac {
                rate,
                channels,
                config,
            } => {
                out.push(6);
                out.extend_from_slice(&rate.to_be_bytes());
                out.push(*channels);
                bytes(&mut out, config);
            }
            CodecParams::Opaque {
                kind,
                rtpmap,
                fmtp,
                clock_rate,
            } => {
                out.push(7);
                out.push(match kind {
                    MediaKind::Video => 0,
                    MediaKind::Audio => 1,
                });
                out.extend_from_slice(&clock_rate.to_be_bytes());
                // Empty: none (an rtpmap or fmtp is never empty).
                bytes(&mut out, rtpmap.as_deref().unwrap_or_default().as_bytes());
                bytes(&mut out, fmtp.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
    out
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, String> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let b: [u8; 4] = b
            .try_into()
            .map_err(|_| format!("truncated at byte {}", self.pos))?;
        self.pos += 4;
        Ok(u32::from_be_bytes(b))
    }
    fn bytes(&mut self) -> Result<Bytes, String> {
        let n = self.u32()? as usize;
        let b = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos += n;
        Ok(Bytes::copy_from_slice(b))
    }
}

pub(crate) fn decode_tracks(buf: &[u8]) -> Result<Vec<TrackInfo>, String> {
    let mut c = Cursor { buf, pos: 0 };
    let version = c.u8()?;
    if version != FORMAT_VERSION {
        return Err(format!("unknown track list version {version}"));
    }
    let n = c.u8()?;
    let mut out = Vec::with_capacity(usize::from(n));
    for i in 0..n {
        let payload_type = c.u8()?;
        let codec = match c.u8()? {
            1 => CodecParams::H264 {
                sps: c.bytes()?,
                pps: c.bytes()?,
            },
            2 => CodecParams::H265 {
                vps: c.bytes()?,
                sps: c.bytes()?,
                pps: c.bytes()?,
            },
            3 => CodecParams::Jpeg,
            4 => CodecParams::Pcmu {
                rate: c.u32()?,
                channels: c.u8()?,
            },
            5 => CodecParams::Pcma {
                rate: c.u32()?,
                channels: c.u8()?,
            },
            6 => CodecParams::Aac {
                rate: c.u32()?,
                channels: c.u8()?,
                config: c.bytes()?,
            },
            7 => {
                let kind = match c.u8()? {
                    0 => MediaKind::Video,
                    1 => MediaKind::Audio,
                    k => return Err(format!("track {i}: opaque codec of unknown kind {k}")),
                };
                let clock_rate = c.u32()?;
                let mut text = || -> Result<Option<String>, String> {
                    let b = c.bytes()?;
                    let s = String::from_utf8(b.to_vec())
                        .map_err(|_| format!("track {i}: opaque codec text is not UTF-8"))?;
                    Ok((!s.is_empty()).then_some(s))
                };
                let rtpmap = text()?;
                let fmtp = text()?;
                CodecParams::Opaque {
                    kind,
                    rtpmap,
                    fmtp,
                    clock_rate,
                }
            }
            tag => return Err(format!("track {i}: unknown codec tag {tag}")),
        };
        out.push(TrackInfo {
            codec,
            payload_type,
        });
    }
    Ok(out)
}

/// The track that seeking and reverse play are about: the first video track, else track 0.
pub(crate) fn seek_track(tracks: &[TrackInfo]) -> u32 {
    tracks
        .iter()
        .position(|t| t.kind() == MediaKind::Video)
        .unwrap_or(0) as u32
}

/// Camera names are folder names: `[A-Za-z0-9._-]{1,64}`, not starting with a dot.
pub(crate) fn valid_camera_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Cheap framing check of a frame read back from a sample file (docs/store.md "Left out":
/// there are no checksums). Audio is not checked.
pub(crate) fn plausible_frame(codec: &CodecParams, data: &[u8]) -> bool {
    match codec {
        CodecParams::H264 { .. } | CodecParams::H265 { .. } => {
            data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
        }
        CodecParams::Jpeg => data.starts_with(&[0xff, 0xd8]),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_prefixes() {
        let mut w = BlobWriter::new(1_700_000_000_000_000);
        let frames = [
            (
                0u32,
                true,
                30_000u32,
                1_000_000u64,
                1_700_000_000_000_000i64,
            ),
            (1, true, 160, 5, 1_699_999_999_990_000),
            (0, false, 1_200, 1_003_600, 1_700_000_000_040_000),
            (0, false, 900, 1_001_800, 1_700_000_000_080_000), // pts going back (B-frame)
            (1, true, 160, 165, 1_700_000_000_010_000),
        ];
        for &(t, k, s, p, w_) in &frames {
            w.push(t, k, s, p, w_);
        }
        let d = decode_blob(w.bytes());
        assert!(d.fault.is_none(), "{:?}", d.fault);
        assert_eq!(d.frames.len(), frames.len());
        let mut offset = 0;
        for (f, &(t, k, s, p, w_)) in d.frames.iter().zip(&frames) {
            assert_eq!(
                (f.track, f.key, f.size, f.pts, f.wallclock),
                (t, k, s, p, w_)
            );
            assert_eq!(f.offset, offset);
            offset += u64::from(s);
        }
        // Every prefix of whole entries is valid; a cut inside an entry is reported.
        for n in 0..=frames.len() {
            let p = decode_blob(&w.bytes()[..d.prefix_len(n)]);
            assert!(p.fault.is_none());
            assert_eq!(p.frames.len(), n);
        }
        let cut = decode_blob(&w.bytes()[..d.prefix_len(2) + 2]);
        assert_eq!(cut.frames.len(), 2);
        assert!(cut.fault.is_some());
        assert!(decode_blob(&[]).fault.is_some());
        assert!(decode_blob(&[9, 0]).fault.is_some());
        assert!(decode_blob(&[1, 0xff, 0xff]).fault.is_some());
    }

    #[test]
    fn tracks_round_trip() {
        let tracks = vec![
            TrackInfo::new(
                CodecParams::H264 {
                    sps: Bytes::from_static(&[0x67, 1, 2]),
                    pps: Bytes::from_static(&[0x68, 3]),
                },
                96,
            ),
            TrackInfo::new(
                CodecParams::H265 {
                    vps: Bytes::from_static(&[1]),
                    sps: Bytes::from_static(&[2]),
                    pps: Bytes::from_static(&[3]),
                },
                98,
            ),
            TrackInfo::new(CodecParams::Jpeg, 26),
            TrackInfo::new(
                CodecParams::Pcmu {
                    rate: 8000,
                    channels: 1,
                },
                0,
            ),
            TrackInfo::new(
                CodecParams::Pcma {
                    rate: 16000,
                    channels: 2,
                },
                97,
            ),
            TrackInfo::new(
                CodecParams::Aac {
                    rate: 48000,
                    channels: 2,
                    config: Bytes::from_static(&[0x11, 0x90]),
                },
                99,
            ),
            TrackInfo::new(
                CodecParams::Opaque {
                    kind: MediaKind::Audio,
                    rtpmap: Some("opus/48000/2".into()),
                    fmtp: Some("sprop-stereo=1".into()),
                    clock_rate: 48000,
                },
                111,
            ),
            TrackInfo::new(
                CodecParams::Opaque {
                    kind: MediaKind::Video,
                    rtpmap: None,
                    fmtp: None,
                    clock_rate: 90000,
                },
                32,
            ),
        ];
        let enc = encode_tracks(&tracks);
        assert_eq!(decode_tracks(&enc).unwrap(), tracks);
        for n in 0..enc.len() {
            assert!(decode_tracks(&enc[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn camera_names() {
        assert!(valid_camera_name("cam1"));
        assert!(valid_camera_name("front-door_2.hd"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert!(!valid_camera_name(bad), "{bad:?}");
        }
    }
}
