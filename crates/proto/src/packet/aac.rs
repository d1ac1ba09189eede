//! AAC over RTP (RFC 3640 `mode=AAC-hbr`: sizeLength=13, indexLength=3,
//! indexDeltaLength=3, no auxiliary section), and the AudioSpecificConfig (ISO/IEC
//! 14496-3 §1.6.2.1) that goes in the SDP `config=` parameter.
//!
//! Packetizer: one access unit per packet (§3.2.2: AU-headers-length = 16 bits, one
//! AU-header with the AU size and index 0). An access unit larger than the payload room is
//! fragmented over several packets (§3.2.3): every fragment carries the AU-header with the
//! size of the *whole* AU, and the marker bit is set on the last fragment only (it is set on
//! every unfragmented packet, §3.2.1).
//!
//! Depacketizer: several AUs per packet (timestamps advance by the frame length: 1024
//! samples, 960 when the config says so, 2048 for explicit SBR/PS) and fragmented AUs. A
//! fragmented AU with a lost fragment is dropped and the next unit marked lossy. Left out:
//! interleaving (AU-Index-delta other than 0 is treated as 0), the auxiliary section, and
//! the other RFC 3640 modes (CELP, generic).
//!
//! Hand-written: the AU-header section is a few bit fields.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::{
    DepacketizeError, DepacketizedUnit, Depacketizer, PacketizeError, Packetizer, PayloadHead,
    RtpPayload, SeqStep, SeqTracker, MAX_ACCESS_UNIT,
};
use crate::rtp::RtpPacket;

const CODEC: &str = "AAC";

/// Largest AU the 13-bit AU-size field can describe.
pub const MAX_AU_SIZE: usize = (1 << 13) - 1;

/// Sampling frequencies by index (ISO/IEC 14496-3 Table 1.18); 13 and 14 are reserved,
/// 15 means an explicit 24-bit frequency follows.
const FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Errors from [`parse_aac_config`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AacConfigError {
    #[error("AudioSpecificConfig truncated")]
    Truncated,
    #[error("AudioSpecificConfig: reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    #[error("AudioSpecificConfig: audio object type 0 (null)")]
    NullObjectType,
}

/// SDP `a=fmtp` parameters (without the payload type) for `mode=AAC-hbr`, with the
/// AudioSpecificConfig in lower-case hex.
pub fn aac_fmtp(config: &[u8]) -> String {
    let hex: String = config.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
         indexdeltalength=3;config={hex}"
    )
}

struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: usize) {
        for i in (0..n).rev() {
            if self.bits & 7 == 0 {
                self.bytes.push(0);
            }
            if (value >> i) & 1 != 0 {
                if let Some(last) = self.bytes.last_mut() {
                    *last |= 0x80 >> (self.bits % 8);
                }
            }
            self.bits += 1;
        }
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn get(&mut self, n: usize) -> Result<u32, AacConfigError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(AacConfigError::Truncated)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    fn object_type(&mut self) -> Result<u8, AacConfigError> {
        let ot = self.get(5)? as u8;
        if ot == 31 {
            Ok(32 + self.get(6)? as u8)
        } else {
            Ok(ot)
        }
    }

    fn frequency(&mut self) -> Result<u32, AacConfigError> {
        match self.get(4)? as u8 {
            15 => self.get(24),
            i => FREQUENCIES
                .get(usize::from(i))
                .copied()
                .ok_or(AacConfigError::ReservedFrequencyIndex(i)),
        }
    }
}

/// Builds an AudioSpecificConfig: `object_type` (2 = AAC LC), `rate` in Hz (written as an
/// index when it has one, else explicitly) and `channels` (1-6, or 8 for 7.1; others are
/// written as channel configuration 0, which needs a program config element this function
/// does not write). The GASpecificConfig says 1024-sample frames, no core coder, no
/// extension.
pub fn aac_config(object_type: u8, rate: u32, channels: u8) -> Bytes {
    let mut w = BitWriter {
        bytes: Vec::with_capacity(5),
        bits: 0,
    };
    if object_type >= 31 {
        w.put(31, 5);
        w.put(u32::from(object_type.saturating_sub(32)), 6);
    } else {
        w.put(u32::from(object_type), 5);
    }
    match FREQUENCIES.iter().position(|&f| f == rate) {
        Some(i) => w.put(i as u32, 4),
        None => {
            w.put(15, 4);
            w.put(rate & 0xff_ffff, 24);
        }
    }
    let channel_config = match channels {
        1..=6 => channels,
        8 => 7,
        _ => 0,
    };
    w.put(u32::from(channel_config), 4);
    // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag.
    w.put(0, 3);
    Bytes::from(w.bytes)
}

/// Parses an AudioSpecificConfig into (audio object type, sampling rate, channels).
/// Channel configuration 7 is reported as 8 channels, 0 (program config element) as 0.
/// With explicit SBR/PS signalling (object type 5 or 29) the object type returned is 5/29
/// and the rate is the core (AAC) rate.
pub fn parse_aac_config(config: &[u8]) -> Result<(u8, u32, u8), AacConfigError> {
    let mut r = BitReader {
        data: config,
        pos: 0,
    };
    let ot = r.object_type()?;
    if ot == 0 {
        return Err(AacConfigError::NullObjectType);
    }
    let rate = r.frequency()?;
    let channels = match r.get(4)? as u8 {
        7 => 8,
        c => c,
    };
    Ok((ot, rate, channels))
}

/// Samples per access unit, from the config: 1024, 960 (frameLengthFlag), 2048 for
/// explicit SBR/PS (RTP clock at the output rate). `None` if the config does not parse.
pub fn frame_length(config: &[u8]) -> Option<u32> {
    let mut r = BitReader {
        data: config,
        pos: 0,
    };
    let ot = r.object_type().ok()?;
    r.frequency().ok()?;
    r.get(4).ok()?;
    if ot == 5 || ot == 29 {
        return Some(2048);
    }
    // GASpecificConfig for the general audio object types.
    if matches!(ot, 1..=4 | 6 | 7 | 17 | 19..=23) && r.get(1).ok()? == 1 {
        return Some(960);
    }
    Some(1024)
}

/// One raw AAC frame in, one packet (or fragments) out.
#[derive(Debug)]
pub struct AacPacketizer {
    max_payload: usize,
}

impl AacPacketizer {
    pub fn new(max_payload: usize) -> Self {
        AacPacketizer { max_payload }
    }
}

/// AU-headers-length (16 bits: one header) and the AU-header (size, index 0).
fn au_header(size: usize) -> [u8; 4] {
    let size = size as u16;
    [0x00, 0x10, (size >> 5) as u8, ((size & 0x1f) << 3) as u8]
}

impl Packetizer for AacPacketizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        if self.max_payload < 5 {
            return Err(PacketizeError::MaxPayloadTooSmall {
                codec: CODEC,
                max_payload: self.max_payload,
                needed: 5,
            });
        }
        if au.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        if au.len() > MAX_AU_SIZE {
            return Err(PacketizeError::AacTooLarge { size: au.len() });
        }
        let header = au_header(au.len());
        let room = self.max_payload - header.len();
        let count = au.len().div_ceil(room);
        for (i, piece) in au.chunks(room).enumerate() {
            let mut p = BytesMut::with_capacity(header.len() + piece.len());
            p.put_slice(&header);
            p.put_slice(piece);
            out.push(RtpPayload {
                head: PayloadHead::NONE,
                body: p.freeze(),
                marker: i + 1 == count,
                ts_offset: 0,
                header_ext: None,
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Fragment {
    timestamp: u32,
    size: usize,
    data: BytesMut,
}

/// Reassembles raw AAC frames from AAC-hbr packets.
#[derive(Debug)]
pub struct AacDepacketizer {
    frame_length: u32,
    seq: SeqTracker,
    frag: Option<Fragment>,
    carry_loss: bool,
    ready: VecDeque<DepacketizedUnit>,
}

impl AacDepacketizer {
    /// `frame_length`: samples per AU, the timestamp step between AUs of one packet
    /// (see [`frame_length`]).
    pub fn new(frame_length: u32) -> Self {
        AacDepacketizer {
            frame_length,
            seq: SeqTracker::default(),
            frag: None,
            carry_loss: false,
            ready: VecDeque::new(),
        }
    }

    fn emit(&mut self, timestamp: u32, data: Bytes) {
        self.ready.push_back(DepacketizedUnit {
            timestamp,
            data,
            keyframe: true,
            loss: std::mem::take(&mut self.carry_loss),
        });
    }

    fn drop_fragment(&mut self) {
        if self.frag.take().is_some() {
            self.carry_loss = true;
        }
    }

    fn payload(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        let seq = pkt.sequence();
        let malformed = |reason| DepacketizeError::Malformed {
            codec: CODEC,
            seq,
            reason,
        };
        let p = pkt.payload();
        let Some(&[l0, l1]) = p.get(..2) else {
            return Err(if p.is_empty() {
                DepacketizeError::EmptyPayload { codec: CODEC, seq }
            } else {
                malformed("no AU-headers-length")
            });
        };
        let header_bits = usize::from(u16::from_be_bytes([l0, l1]));
        if header_bits == 0 || header_bits % 16 != 0 {
            return Err(malformed("AU-headers-length is not a multiple of 16 bits"));
        }
        let header_bytes = header_bits / 8;
        let Some(headers) = p.get(2..2 + header_bytes) else {
            return Err(malformed("AU-headers past the end of the packet"));
        };
        let mut data = p.get(2 + header_bytes..).unwrap_or_default();
        let sizes: Vec<usize> = headers
            .chunks_exact(2)
            .map(|h| usize::from(u16::from_be_bytes([h[0], h[1]]) >> 3))
            .collect();
        if let [size] = sizes[..] {
            if size > data.len() {
                return self.fragment(pkt, size, data);
            }
        }
        self.drop_fragment();
        let mut ts = pkt.timestamp();
        for size in sizes {
            let Some(au) = data.get(..size) else {
                self.carry_loss = true;
                return Err(malformed("AU size past the end of the packet"));
            };
            if !au.is_empty() {
                self.emit(ts, Bytes::copy_from_slice(au));
            }
            data = data.get(size..).unwrap_or_default();
            ts = ts.wrapping_add(self.frame_length);
        }
        Ok(())
    }

    fn fragment(
        &mut self,
        pkt: &RtpPacket<'_>,
        size: usize,
        data: &[u8],
    ) -> Result<(), DepacketizeError> {
        let continues = self
            .frag
            .as_ref()
            .is_some_and(|f| f.timestamp == pkt.timestamp() && f.size == size);
        if !continues {
            self.drop_fragment();
            self.frag = Some(Fragment {
                timestamp: pkt.timestamp(),
                size,
                data: BytesMut::with_capacity(size.min(MAX_ACCESS_UNIT)),
            });
        }
        let Some(f) = &mut self.frag else {
            return Ok(());
        };
        f.data.put_slice(data);
        if f.data.len() > f.size {
            self.drop_fragment();
            return Err(DepacketizeError::Malformed {
                codec: CODEC,
                seq: pkt.sequence(),
                reason: "fragments longer than the AU size",
            });
        }
        if f.data.len() == f.size || pkt.marker() {
            if let Some(f) = self.frag.take() {
                if f.data.len() == f.size {
                    self.emit(f.timestamp, f.data.freeze());
                } else {
                    // Marker before the AU was complete: a fragment was lost.
                    self.carry_loss = true;
                }
            }
        }
        Ok(())
    }
}

impl Depacketizer for AacDepacketizer {
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        match self.seq.step(pkt.sequence()) {
            SeqStep::Old => return Ok(()),
            SeqStep::Gap => {
                self.frag = None;
                self.carry_loss = true;
            }
            SeqStep::InOrder => {}
        }
        let r = self.payload(pkt);
        if r.is_err() {
            self.carry_loss = true;
        }
        r
    }

    fn pull(&mut self) -> Option<DepacketizedUnit> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testutil::{feed, to_packets};

    #[test]
    fn audio_specific_config() {
        assert_eq!(&aac_config(2, 48000, 2)[..], &[0x11, 0x90]);
        assert_eq!(&aac_config(2, 44100, 2)[..], &[0x12, 0x10]);
        assert_eq!(&aac_config(2, 8000, 1)[..], &[0x15, 0x88]);
        assert_eq!(&aac_config(2, 16000, 1)[..], &[0x14, 0x08]);
        for (ot, rate, ch) in [(2, 48000, 2), (2, 8000, 1), (1, 12345, 6), (42, 16000, 8)] {
            let c = aac_config(ot, rate, ch);
            assert_eq!(parse_aac_config(&c), Ok((ot, rate, ch)), "{c:02x?}");
            assert_eq!(frame_length(&c), Some(1024));
        }
        // frameLengthFlag set: 960-sample frames.
        assert_eq!(frame_length(&[0x11, 0x94]), Some(960));
        assert_eq!(parse_aac_config(&[0x11]), Err(AacConfigError::Truncated));
        assert_eq!(
            parse_aac_config(&[0x16, 0x80]),
            Err(AacConfigError::ReservedFrequencyIndex(13))
        );
        assert_eq!(
            parse_aac_config(&[0, 0]),
            Err(AacConfigError::NullObjectType)
        );
    }

    #[test]
    fn fmtp() {
        assert_eq!(
            aac_fmtp(&[0x11, 0x90]),
            "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
             indexdeltalength=3;config=1190"
        );
    }

    #[test]
    fn one_au_per_packet_round_trip() {
        let mut p = AacPacketizer::new(1400);
        let mut out = Vec::new();
        let au = Bytes::from((0..300u32).map(|i| i as u8).collect::<Vec<_>>());
        p.packetize(&au, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].marker);
        // AU-headers-length 16, size 300 = 0b0_0001_0010_1100 << 3 | index 0.
        assert_eq!(&out[0].to_bytes()[..4], &[0x00, 0x10, 0x09, 0x60]);
        assert_eq!(&out[0].to_bytes()[4..], &au[..]);
        let (units, errors) = feed(&mut AacDepacketizer::new(1024), &to_packets(&out, 0, 5));
        assert!(errors.is_empty());
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].data, au);
        assert_eq!(units[0].timestamp, 5);
        assert!(units[0].keyframe && !units[0].loss);
    }

    #[test]
    fn fragmentation_round_trip_and_loss() {
        let mut p = AacPacketizer::new(104);
        let au = Bytes::from((0..250u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
        let mut out = Vec::new();
        p.packetize(&au, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.to_bytes().len() <= 104));
        assert_eq!(
            out.iter().map(|p| p.marker).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        // Every fragment's AU-header carries the whole AU size.
        assert!(out.iter().all(|p| p.to_bytes()[..4] == au_header(250)));
        let mut packets = to_packets(&out, 0, 0);
        let mut next = Vec::new();
        p.packetize(&au.slice(..10), &mut next).unwrap();
        packets.extend(to_packets(&next, 3, 1024));
        let (units, errors) = feed(&mut AacDepacketizer::new(1024), &packets);
        assert!(errors.is_empty());
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].data, au);
        assert_eq!(&units[1].data[..], &au[..10]);
        // Lose the middle fragment: that AU is dropped, the next is lossy.
        packets.remove(1);
        let (units, _) = feed(&mut AacDepacketizer::new(1024), &packets);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].timestamp, 1024);
        assert!(units[0].loss);
        // Too large for 13 bits.
        assert_eq!(
            p.packetize(&Bytes::from(vec![0; 9000]), &mut out),
            Err(PacketizeError::AacTooLarge { size: 9000 })
        );
    }

    #[test]
    fn several_aus_in_one_packet() {
        // Three AUs of 2, 3 and 1 bytes.
        let mut payload = vec![0x00, 0x30];
        for size in [2u16, 3, 1] {
            payload.extend_from_slice(&(size << 3).to_be_bytes());
        }
        payload.extend_from_slice(&[1, 1, 2, 2, 2, 3]);
        let packets = to_packets(
            &[RtpPayload {
                head: PayloadHead::NONE,
                body: Bytes::from(payload.clone()),
                marker: true,
                ts_offset: 0,
                header_ext: None,
            }],
            0,
            1000,
        );
        let (units, errors) = feed(&mut AacDepacketizer::new(1024), &packets);
        assert!(errors.is_empty());
        assert_eq!(
            units
                .iter()
                .map(|u| (u.timestamp, u.data.to_vec()))
                .collect::<Vec<_>>(),
            vec![(1000, vec![1, 1]), (2024, vec![2, 2, 2]), (3048, vec![3])]
        );
        // Cut the last AU short: the complete ones come out, then an error.
        payload[7] = 2 << 3;
        let packets = to_packets(
            &[RtpPayload {
                head: PayloadHead::NONE,
                body: Bytes::from(payload),
                marker: true,
                ts_offset: 0,
                header_ext: None,
            }],
            0,
            0,
        );
        let (units, errors) = feed(&mut AacDepacketizer::new(1024), &packets);
        assert_eq!(units.len(), 2);
        assert_eq!(errors.len(), 1);
    }
}
