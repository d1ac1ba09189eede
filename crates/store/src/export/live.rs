//! Live fragmented MP4 for Media Source Extensions: the same init segment as the fragmented
//! export ([`super::fmp4::init_segment`]) for one H.264 video track, then one `moof` +
//! `mdat` per access unit as frames arrive. A sample's duration is the distance to the next
//! one, so each fragment leaves one frame later than the frame arrived (40 ms at 25 fps).
//!
//! Written by hand (a few fixed-layout boxes). Left out: audio (browsers' MSE takes AAC or
//! Opus in MP4, not the G.711 most cameras send), H.265 (MSE support depends on the
//! platform), B-frames (decode time = presentation time, kept increasing: cameras that
//! reorder frames show them in decode order).

use mp4_atom::{Stsc, Stts};

use super::codec::annex_b_nals;
use super::fmp4::init_segment;
use super::moov::{box_header, SizeTable, TrackTables};
use crate::StoreError;
use ipcamd_proto::codec::{CodecParams, TrackInfo};

const TIMESCALE: u32 = 90_000;

/// One frame waiting for the next (which gives its duration).
struct Pending {
    dts: u64,
    keyframe: bool,
    /// Length-prefixed NAL units.
    sample: Vec<u8>,
}

/// The muxer of one live H.264 track (see the module doc).
pub struct LiveFmp4 {
    sequence: u32,
    pending: Option<Pending>,
    /// A frame interval, for the gap after a frame whose successor was dropped.
    last_duration: u32,
}

impl LiveFmp4 {
    /// The muxer, the init segment and the MIME type with codecs (`video/mp4;
    /// codecs="avc1.PPCCLL"`, from the SPS) for `MediaSource.addSourceBuffer`.
    pub fn new(video: &TrackInfo) -> Result<(LiveFmp4, Vec<u8>, String), StoreError> {
        let CodecParams::H264 { sps, .. } = &video.codec else {
            return Err(StoreError::Export(format!(
                "live MP4 carries H.264 only, not {}",
                video.codec.name()
            )));
        };
        let Some(profile) = sps.get(1..4) else {
            return Err(StoreError::Export("the H.264 SPS is too short".into()));
        };
        let mime = format!(
            "video/mp4; codecs=\"avc1.{:02x}{:02x}{:02x}\"",
            profile[0], profile[1], profile[2]
        );
        let tables = [TrackTables {
            info: video.clone(),
            timescale: TIMESCALE,
            stts: Stts::default(),
            ctts: None,
            stss: None,
            stsc: Stsc::default(),
            sizes: SizeTable::Different { count: 0 },
            chunks: 0,
            duration: 0,
            first_time: 0,
            jpeg_size: None,
        }];
        let init = init_segment(&tables, &mut Vec::new())?;
        Ok((
            LiveFmp4 {
                sequence: 0,
                pending: None,
                last_duration: TIMESCALE / 25,
            },
            init,
            mime,
        ))
    }

    /// Takes the next access unit (Annex B, `pts` in 90 kHz ticks); returns the fragment of
    /// the one before it, if any. `gap`: frames were skipped before this one (its
    /// predecessor gets the usual frame interval, not the distance).
    pub fn push(&mut self, pts: u64, keyframe: bool, annex_b: &[u8], gap: bool) -> Option<Vec<u8>> {
        let mut sample = Vec::with_capacity(annex_b.len() + 16);
        for nal in annex_b_nals(annex_b) {
            sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            sample.extend_from_slice(nal);
        }
        let prev = self.pending.take();
        let dts = match &prev {
            Some(p) if !gap => pts.max(p.dts + 1),
            Some(p) => pts.max(p.dts + u64::from(self.last_duration)),
            None => pts,
        };
        self.pending = Some(Pending {
            dts,
            keyframe,
            sample,
        });
        let prev = prev?;
        let duration = if gap {
            self.last_duration
        } else {
            u32::try_from(dts - prev.dts).unwrap_or(self.last_duration)
        };
        self.last_duration = duration;
        Some(self.fragment(&prev, duration))
    }

    /// Forgets the frame waiting for its successor: after frames were dropped, the next
    /// fragment starts at a keyframe.
    pub fn reset(&mut self) {
        self.pending = None;
    }

    /// `moof` (`mfhd`, `traf` = `tfhd` default-base-is-moof, `tfdt` v1, `trun` with one
    /// sample: duration, size, flags) and `mdat`.
    fn fragment(&mut self, s: &Pending, duration: u32) -> Vec<u8> {
        self.sequence = self.sequence.wrapping_add(1);
        let trun_len = 8 + 4 + 4 + 4 + 12;
        let traf_len = 8 + 16 + 20 + trun_len;
        let moof_len = 8 + 16 + traf_len;
        let mut out = Vec::with_capacity(moof_len + 8 + s.sample.len());
        out.extend_from_slice(&box_header(b"moof", (moof_len - 8) as u64));
        out.extend_from_slice(&box_header(b"mfhd", 8));
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&box_header(b"traf", (traf_len - 8) as u64));
        out.extend_from_slice(&box_header(b"tfhd", 8));
        out.extend_from_slice(&0x0002_0000u32.to_be_bytes()); // default-base-is-moof
        out.extend_from_slice(&1u32.to_be_bytes()); // track_ID
        out.extend_from_slice(&box_header(b"tfdt", 12));
        out.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // version 1
        out.extend_from_slice(&s.dts.to_be_bytes());
        out.extend_from_slice(&box_header(b"trun", (trun_len - 8) as u64));
        // data-offset, sample-duration, sample-size, sample-flags present.
        out.extend_from_slice(&0x0000_0701u32.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes()); // sample_count
        out.extend_from_slice(&((moof_len + 8) as u32).to_be_bytes()); // data_offset
        out.extend_from_slice(&duration.to_be_bytes());
        out.extend_from_slice(&(s.sample.len() as u32).to_be_bytes());
        let flags: u32 = if s.keyframe {
            0x0200_0000 // depends on no other sample
        } else {
            0x0101_0000 // depends on others, not a sync sample
        };
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&box_header(b"mdat", s.sample.len() as u64));
        out.extend_from_slice(&s.sample);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn track() -> TrackInfo {
        TrackInfo::new(
            CodecParams::H264 {
                sps: Bytes::from_static(&[
                    0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8,
                ]),
                pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
            },
            96,
        )
    }

    /// (kind, size) of the top-level boxes.
    fn boxes(b: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= b.len() {
            let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(),
                size,
            ));
            assert!(size >= 8, "box size {size} at {at}");
            at += size;
        }
        assert_eq!(at, b.len(), "boxes do not end at the end");
        out
    }

    #[test]
    fn init_then_one_fragment_per_frame_one_frame_late() {
        let (mut m, init, mime) = LiveFmp4::new(&track()).unwrap();
        assert_eq!(mime, "video/mp4; codecs=\"avc1.42c01e\"");
        let kinds: Vec<String> = boxes(&init).into_iter().map(|b| b.0).collect();
        assert_eq!(kinds, ["ftyp", "moov"]);
        let idr = [0, 0, 0, 1, 0x65, 1, 2, 3];
        let p = [0, 0, 1, 0x41, 9, 9];
        assert!(
            m.push(1000, true, &idr, false).is_none(),
            "the first waits for its duration"
        );
        let f = m.push(4600, false, &p, false).unwrap();
        assert_eq!(
            boxes(&f).iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        // mdat: the IDR as one length-prefixed NAL.
        assert!(f.ends_with(&[0, 0, 0, 4, 0x65, 1, 2, 3]));
        // tfdt = 1000, duration = 3600, keyframe flags.
        let tfdt = f.windows(4).position(|w| w == b"tfdt").unwrap();
        assert_eq!(
            u64::from_be_bytes(f[tfdt + 8..tfdt + 16].try_into().unwrap()),
            1000
        );
        let trun = f.windows(4).position(|w| w == b"trun").unwrap();
        let field = |k: usize| {
            u32::from_be_bytes(f[trun + 4 + 4 * k..trun + 8 + 4 * k].try_into().unwrap())
        };
        assert_eq!(field(1), 1, "one sample");
        assert_eq!(field(3), 3600, "duration");
        assert_eq!(field(4), 8, "size");
        assert_eq!(field(5), 0x0200_0000, "sync sample");
        // data_offset points at the mdat payload.
        let moof_len = boxes(&f)[0].1;
        assert_eq!(field(2) as usize, moof_len + 8);
        // Timestamps that go backwards still give increasing decode times.
        let f2 = m.push(4000, false, &p, false).unwrap();
        let trun = f2.windows(4).position(|w| w == b"trun").unwrap();
        assert_eq!(
            u32::from_be_bytes(f2[trun + 16..trun + 20].try_into().unwrap()),
            1
        );
        // A gap: the previous frame gets the last interval.
        let f3 = m.push(90_000, true, &idr, true).unwrap();
        assert!(boxes(&f3).len() == 2);
    }

    #[test]
    fn only_h264() {
        let jpeg = TrackInfo::new(CodecParams::Jpeg, 26);
        assert!(LiveFmp4::new(&jpeg).is_err());
        let short = TrackInfo::new(
            CodecParams::H264 {
                sps: Bytes::from_static(&[0x67]),
                pps: Bytes::new(),
            },
            96,
        );
        assert!(LiveFmp4::new(&short).is_err());
    }
}
