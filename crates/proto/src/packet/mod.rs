//! RTP payload formats: one file per codec, each holding that codec's packetizer (access
//! unit -> RTP payloads, for the server) and depacketizer (RTP packets -> access units, for
//! our own test, replay and talk clients and for the audio backchannel) side by side.
//!
//! | codec | RFC | file |
//! |-------|-----|------|
//! | H.264 | RFC 6184, packetization-mode=1 | [`h264`] |
//! | H.265 | RFC 7798 | [`h265`] |
//! | Motion JPEG | RFC 2435 | [`jpeg`] |
//! | AAC | RFC 3640 `mode=AAC-hbr` | [`aac`] |
//! | G.711 µ-law/A-law | RFC 3551 §4.5.14 | [`g711`] |
//! | anything else, passed through | (the camera's) | [`opaque`] |
//!
//! All of them are hand-written: the Rust RTP crates parse and build packet headers, but no
//! crate packetizes video for a *server* (retina and webrtc-rs only depacketize, str0m is
//! tied to its WebRTC session), and the payload formats are small.
//!
//! Access unit formats (packetizer input = depacketizer output):
//! - H.264/H.265: Annex B, every NAL unit prefixed by a start code; input accepts 3- and
//!   4-byte start codes, output always uses `00 00 00 01`.
//! - JPEG: one complete baseline JFIF file.
//! - AAC: one raw AAC frame (no ADTS header).
//! - G.711: raw samples, one byte per sample per channel.
//! - Opaque: the RTP payloads of one timestamp, as records ([`opaque`]).
//!
//! Depacketizers are total on arbitrary input: malformed packets yield a
//! [`DepacketizeError`] and mark the access unit in progress as lossy; sequence gaps mark the
//! affected unit lossy (H.264, H.265, G.711) or drop it (JPEG, fragmented AAC) and mark the
//! next one lossy. Late and duplicate packets (up to 100 behind) are ignored.

pub mod aac;
pub mod g711;
pub mod h264;
pub mod h265;
pub mod jpeg;
pub mod opaque;

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::codec::CodecParams;
use crate::rtp::RtpPacket;

/// The maximum RTP payload size the server uses: keeps a packet (12-byte header, 16-byte
/// replay extension) well inside a 1500-byte Ethernet MTU with IP/UDP headers.
pub const DEFAULT_MAX_PAYLOAD: usize = 1400;

/// Largest access unit a depacketizer assembles; a unit growing past this (a corrupt or
/// hostile stream) is dropped.
pub const MAX_ACCESS_UNIT: usize = 16 * 1024 * 1024;

/// Up to 3 bytes sent before an RTP payload's body: the FU indicator and header of an H.264
/// fragment (2 bytes) or the payload header and FU header of an H.265 one (3 bytes). With
/// them apart, a fragment's body is a view of the access unit, never a copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadHead {
    bytes: [u8; 3],
    len: u8,
}

impl PayloadHead {
    /// No bytes before the body.
    pub const NONE: PayloadHead = PayloadHead {
        bytes: [0; 3],
        len: 0,
    };

    /// The first three bytes of `b` at most.
    pub fn new(b: &[u8]) -> PayloadHead {
        let mut bytes = [0; 3];
        let len = b.len().min(3);
        bytes[..len].copy_from_slice(&b[..len]);
        PayloadHead {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One RTP payload (no RTP header): `head` then `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPayload {
    /// Written before `body` (fragmentation headers); empty for most packets.
    pub head: PayloadHead,
    pub body: Bytes,
    /// The RTP marker bit for this packet.
    pub marker: bool,
    /// Add to the access unit's RTP timestamp for this packet. Zero except for G.711, whose
    /// long access units are split into packets of consecutive samples.
    pub ts_offset: u32,
    /// The body of an RTP header extension to send with this packet (after the
    /// profile/length word, a multiple of 4 bytes). Only JPEG uses it: the ONVIF JPEG header
    /// extension (profile [`jpeg::JPEG_EXT_INITIAL`]) on the first packet of a frame that
    /// RFC 2435 alone cannot describe (docs/mjpeg.md).
    pub header_ext: Option<Bytes>,
}

impl RtpPayload {
    /// A payload of `body` alone.
    pub fn new(body: Bytes) -> RtpPayload {
        RtpPayload {
            head: PayloadHead::NONE,
            body,
            marker: false,
            ts_offset: 0,
            header_ext: None,
        }
    }

    /// Bytes of the payload (head and body).
    pub fn len(&self) -> usize {
        self.head.as_slice().len() + self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the payload (head, then body) to `buf`.
    pub fn write_to(&self, buf: &mut impl BufMut) {
        buf.put_slice(self.head.as_slice());
        buf.put_slice(&self.body);
    }

    /// The payload in one piece: the body itself when there is no head, else a copy.
    pub fn to_bytes(&self) -> Bytes {
        if self.head.as_slice().is_empty() {
            return self.body.clone();
        }
        let mut b = BytesMut::with_capacity(self.len());
        self.write_to(&mut b);
        b.freeze()
    }
}

/// Errors from a [`Packetizer`]: the access unit cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketizeError {
    #[error("{codec}: empty access unit")]
    Empty { codec: &'static str },
    #[error("{codec}: access unit is not Annex B (no start code before the first NAL unit)")]
    NotAnnexB { codec: &'static str },
    #[error("{codec}: max payload {max_payload} too small, need at least {needed} bytes")]
    MaxPayloadTooSmall {
        codec: &'static str,
        max_payload: usize,
        needed: usize,
    },
    #[error("JPEG: {0}")]
    Jpeg(#[from] jpeg::JpegError),
    #[error("AAC: access unit of {size} bytes exceeds the 13-bit AU-size field (8191)")]
    AacTooLarge { size: usize },
}

/// Errors from a [`Depacketizer`]: the packet was malformed or unsupported; the access
/// unit it belonged to is marked lossy (or dropped). The depacketizer stays usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DepacketizeError {
    #[error("{codec}: empty RTP payload (seq {seq})")]
    EmptyPayload { codec: &'static str, seq: u16 },
    #[error("{codec}: unsupported packet type {packet_type} (seq {seq})")]
    Unsupported {
        codec: &'static str,
        seq: u16,
        packet_type: u8,
    },
    #[error("{codec}: malformed packet (seq {seq}): {reason}")]
    Malformed {
        codec: &'static str,
        seq: u16,
        reason: &'static str,
    },
    #[error("{codec}: access unit larger than {limit} bytes (seq {seq}), dropped")]
    TooLarge {
        codec: &'static str,
        seq: u16,
        limit: usize,
    },
}

/// Turns access units into RTP payloads.
pub trait Packetizer: Send {
    /// Appends to `out` the payloads of the packets carrying `au`, in order. The marker is
    /// set as the payload format says (video: last packet of the access unit). On error
    /// nothing is appended.
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError>;
}

/// One access unit reassembled by a [`Depacketizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepacketizedUnit {
    /// RTP timestamp of the unit.
    pub timestamp: u32,
    /// Same form as the packetizer input (see the module documentation).
    pub data: Bytes,
    /// Video: the unit is a keyframe (H.264 IDR, H.265 IRAP, every JPEG). Audio: always true.
    pub keyframe: bool,
    /// Packets were lost or malformed in or just before this unit: it may be incomplete.
    pub loss: bool,
}

/// Turns RTP packets of one stream (one SSRC, one payload type) back into access units.
pub trait Depacketizer: Send {
    /// Feeds one packet. An error describes a malformed packet; the depacketizer stays
    /// usable and the error is reflected in the `loss` flag of the unit concerned.
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError>;
    /// Takes the next complete access unit, if any.
    fn pull(&mut self) -> Option<DepacketizedUnit>;
}

/// The packetizer for `codec`, fragmenting to at most `max_payload` bytes per payload
/// (the server uses [`DEFAULT_MAX_PAYLOAD`]).
pub fn packetizer_for(codec: &CodecParams, max_payload: usize) -> Box<dyn Packetizer> {
    match codec {
        CodecParams::H264 { sps, pps } => Box::new(h264::H264Packetizer::new(
            max_payload,
            sps.clone(),
            pps.clone(),
        )),
        CodecParams::H265 { vps, sps, pps } => Box::new(h265::H265Packetizer::new(
            max_payload,
            vps.clone(),
            sps.clone(),
            pps.clone(),
        )),
        CodecParams::Jpeg => Box::new(jpeg::JpegPacketizer::new(max_payload)),
        CodecParams::Pcmu { channels, .. } | CodecParams::Pcma { channels, .. } => {
            Box::new(g711::G711Packetizer::new(max_payload, *channels))
        }
        CodecParams::Aac { .. } => Box::new(aac::AacPacketizer::new(max_payload)),
        CodecParams::Opaque { .. } => Box::new(opaque::OpaquePacketizer),
    }
}

/// The depacketizer for `codec`.
pub fn depacketizer_for(codec: &CodecParams) -> Box<dyn Depacketizer> {
    match codec {
        CodecParams::H264 { .. } => Box::new(h264::H264Depacketizer::new()),
        CodecParams::H265 { .. } => Box::new(h265::H265Depacketizer::new()),
        CodecParams::Jpeg => Box::new(jpeg::JpegDepacketizer::new()),
        CodecParams::Pcmu { .. } | CodecParams::Pcma { .. } => {
            Box::new(g711::G711Depacketizer::new())
        }
        CodecParams::Aac { config, .. } => Box::new(aac::AacDepacketizer::new(
            aac::frame_length(config).unwrap_or(1024),
        )),
        CodecParams::Opaque { kind, .. } => Box::new(opaque::OpaqueDepacketizer::new(
            *kind == crate::codec::MediaKind::Video,
        )),
    }
}

/// Splits an Annex B byte stream (H.264 Annex B / H.265 Annex B) into NAL units, without
/// their start codes and without trailing zero bytes. Empty NAL units are skipped.
/// Returns `None` when something other than zero bytes precedes the first start code (or
/// there is no start code at all).
pub fn split_annex_b(au: &Bytes) -> Option<Vec<Bytes>> {
    let d = &au[..];
    // (start of the 00 00 01 sequence, start of the NAL unit)
    // memchr's SIMD search: a byte-wise scan of every frame was a quarter of the CPU of a
    // `Rate-Control: no` replay.
    // One finder for every call (building it was 1 % of a replay's CPU).
    static START_CODE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(&[0, 0, 1]));
    let codes: Vec<(usize, usize)> = START_CODE.find_iter(d).map(|i| (i, i + 3)).collect();
    let first = codes.first()?;
    if d[..first.0].iter().any(|&b| b != 0) {
        return None;
    }
    let mut nals = Vec::with_capacity(codes.len());
    for (k, &(_, begin)) in codes.iter().enumerate() {
        let mut end = codes.get(k + 1).map_or(d.len(), |next| next.0);
        while end > begin && d[end - 1] == 0 {
            end -= 1;
        }
        if end > begin {
            nals.push(au.slice(begin..end));
        }
    }
    Some(nals)
}

/// What a packet's sequence number says about the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqStep {
    /// First packet, or the one after the previous.
    InOrder,
    /// Packets are missing before this one (or the stream jumped: treated as a gap).
    Gap,
    /// A duplicate or a late packet: ignore it.
    Old,
}

/// Sequence number tracking after RFC 3550 Appendix A.1: up to `MAX_MISORDER` behind is a
/// late packet, anything else is a gap (a big jump re-synchronises).
#[derive(Debug, Default)]
pub(crate) struct SeqTracker {
    last: Option<u16>,
}

impl SeqTracker {
    const MAX_MISORDER: u16 = 100;

    pub(crate) fn step(&mut self, seq: u16) -> SeqStep {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return SeqStep::InOrder;
        };
        let behind = last.wrapping_sub(seq);
        if behind <= Self::MAX_MISORDER {
            return SeqStep::Old;
        }
        self.last = Some(seq);
        if seq == last.wrapping_add(1) {
            SeqStep::InOrder
        } else {
            SeqStep::Gap
        }
    }
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

#[derive(Debug)]
struct PendingAu {
    timestamp: u32,
    data: BytesMut,
    keyframe: bool,
    loss: bool,
}

/// Reassembly shared by the H.264 and H.265 depacketizers: access units delimited by the
/// RTP timestamp and the marker bit, NAL units written out in Annex B form, one fragmented
/// NAL unit (FU-A / FU) in progress at a time.
#[derive(Debug)]
pub(crate) struct AnnexBAssembler {
    codec: &'static str,
    seq: SeqTracker,
    current_seq: u16,
    au: Option<PendingAu>,
    frag: Option<BytesMut>,
    frag_key: bool,
    carry_loss: bool,
    ready: VecDeque<DepacketizedUnit>,
}

/// A depacketizer built on [`AnnexBAssembler`]: it only says how one RTP payload of its
/// codec maps to NAL units; packet bookkeeping (ordering, loss, access-unit boundaries)
/// is the same for H.264 and H.265 and lives in the blanket [`Depacketizer`] impl below.
pub(crate) trait NalDepacketizer: Send {
    fn assembler(&mut self) -> &mut AnnexBAssembler;
    fn payload(&mut self, p: &[u8]) -> Result<(), DepacketizeError>;
}

impl<T: NalDepacketizer> Depacketizer for T {
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        if !self.assembler().begin(pkt) {
            return Ok(());
        }
        let r = self.payload(pkt.payload());
        if r.is_err() {
            self.assembler().loss();
        }
        self.assembler().end(pkt.marker());
        r
    }

    fn pull(&mut self) -> Option<DepacketizedUnit> {
        self.assembler().pull()
    }
}

impl AnnexBAssembler {
    pub(crate) fn new(codec: &'static str) -> Self {
        AnnexBAssembler {
            codec,
            seq: SeqTracker::default(),
            current_seq: 0,
            au: None,
            frag: None,
            frag_key: false,
            carry_loss: false,
            ready: VecDeque::new(),
        }
    }

    /// Starts handling `pkt`; returns false if it is late or a duplicate and must be ignored.
    pub(crate) fn begin(&mut self, pkt: &RtpPacket<'_>) -> bool {
        let step = self.seq.step(pkt.sequence());
        if step == SeqStep::Old {
            return false;
        }
        self.current_seq = pkt.sequence();
        let gap = step == SeqStep::Gap;
        if gap {
            self.frag = None;
            if let Some(au) = &mut self.au {
                au.loss = true;
            }
        }
        if self
            .au
            .as_ref()
            .is_some_and(|au| au.timestamp != pkt.timestamp())
        {
            self.finish();
        }
        if self.au.is_none() {
            self.au = Some(PendingAu {
                timestamp: pkt.timestamp(),
                data: BytesMut::new(),
                keyframe: false,
                loss: gap || std::mem::take(&mut self.carry_loss),
            });
        }
        true
    }

    fn too_large(&mut self) -> DepacketizeError {
        self.frag = None;
        if let Some(au) = &mut self.au {
            au.data.clear();
            au.loss = true;
        }
        DepacketizeError::TooLarge {
            codec: self.codec,
            seq: self.current_seq,
            limit: MAX_ACCESS_UNIT,
        }
    }

    /// Adds one complete NAL unit.
    pub(crate) fn nal(&mut self, nal: &[u8], keyframe: bool) -> Result<(), DepacketizeError> {
        if self.frag.take().is_some() {
            self.loss();
        }
        let Some(au) = &mut self.au else {
            return Ok(());
        };
        if au.data.len() + nal.len() + 4 > MAX_ACCESS_UNIT {
            return Err(self.too_large());
        }
        au.data.put_slice(&START_CODE);
        au.data.put_slice(nal);
        au.keyframe |= keyframe;
        Ok(())
    }

    /// Starts a fragmented NAL unit with its reconstructed NAL header.
    pub(crate) fn frag_start(&mut self, header: &[u8], data: &[u8], keyframe: bool) {
        if self.frag.is_some() {
            self.loss();
        }
        let mut f = BytesMut::with_capacity(header.len() + data.len() * 4);
        f.put_slice(header);
        f.put_slice(data);
        self.frag = Some(f);
        self.frag_key = keyframe;
    }

    /// Continues (and with `end`, completes) the fragmented NAL unit. Without a start
    /// (its first fragment was lost) the data is dropped and the unit marked lossy.
    pub(crate) fn frag_continue(&mut self, data: &[u8], end: bool) -> Result<(), DepacketizeError> {
        let Some(f) = &mut self.frag else {
            self.loss();
            return Ok(());
        };
        if f.len() + data.len() > MAX_ACCESS_UNIT {
            return Err(self.too_large());
        }
        f.put_slice(data);
        if end {
            if let Some(f) = self.frag.take() {
                let key = self.frag_key;
                return self.nal(&f, key);
            }
        }
        Ok(())
    }

    /// Marks the access unit in progress as lossy.
    pub(crate) fn loss(&mut self) {
        match &mut self.au {
            Some(au) => au.loss = true,
            None => self.carry_loss = true,
        }
    }

    /// Ends handling of the current packet; the marker bit completes the access unit.
    pub(crate) fn end(&mut self, marker: bool) {
        if marker {
            if self.frag.take().is_some() {
                self.loss();
            }
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.frag.take().is_some() {
            self.loss();
        }
        let Some(au) = self.au.take() else {
            return;
        };
        if au.data.is_empty() {
            self.carry_loss |= au.loss;
            return;
        }
        self.ready.push_back(DepacketizedUnit {
            timestamp: au.timestamp,
            data: au.data.freeze(),
            keyframe: au.keyframe,
            loss: au.loss,
        });
    }

    pub(crate) fn pull(&mut self) -> Option<DepacketizedUnit> {
        self.ready.pop_front()
    }

    pub(crate) fn malformed(&self, reason: &'static str) -> DepacketizeError {
        DepacketizeError::Malformed {
            codec: self.codec,
            seq: self.current_seq,
            reason,
        }
    }

    pub(crate) fn codec(&self) -> &'static str {
        self.codec
    }

    pub(crate) fn seq(&self) -> u16 {
        self.current_seq
    }
}

/// Shared helpers for the codec tests: RTP round trips through real packets.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::rtp::{parse_rtp, write_rtp, RtpHeader};

    /// Wraps payloads in RTP packets (consecutive sequence numbers from `seq`).
    pub(crate) fn to_packets(payloads: &[RtpPayload], seq: u16, ts: u32) -> Vec<BytesMut> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut out = BytesMut::new();
                write_rtp(
                    &RtpHeader {
                        payload_type: 96,
                        marker: p.marker,
                        sequence: seq.wrapping_add(i as u16),
                        timestamp: ts.wrapping_add(p.ts_offset),
                        ssrc: 1,
                        extension: p.header_ext.as_ref().map(|e| crate::rtp::RtpExtension {
                            profile: jpeg::JPEG_EXT_INITIAL,
                            data: e,
                        }),
                    },
                    &p.to_bytes(),
                    &mut out,
                );
                out
            })
            .collect()
    }

    /// Feeds packets, returning every unit pulled and every error.
    pub(crate) fn feed(
        d: &mut dyn Depacketizer,
        packets: &[BytesMut],
    ) -> (Vec<DepacketizedUnit>, Vec<DepacketizeError>) {
        let mut units = Vec::new();
        let mut errors = Vec::new();
        for p in packets {
            let pkt = parse_rtp(p).expect("test packet parses");
            if let Err(e) = d.push(&pkt) {
                errors.push(e);
            }
            while let Some(u) = d.pull() {
                units.push(u);
            }
        }
        (units, errors)
    }

    /// A small deterministic PRNG (xorshift64*), so tests need no `rand`.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n.max(1) as u64) as usize
        }

        pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next_u64() as u8).collect()
        }

        /// Between 0 and `max - 1` random bytes.
        pub(crate) fn some_bytes(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max);
            self.bytes(len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Bytes {
        Bytes::copy_from_slice(v)
    }

    #[test]
    fn splits_annex_b_with_both_start_code_lengths() {
        let au = b(&[
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ]);
        let nals = split_annex_b(&au).unwrap();
        assert_eq!(nals, vec![b(&[0x67, 1, 2]), b(&[0x68, 3]), b(&[0x65, 4])]);
        // Leading zeros are fine, leading garbage is not; empty NAL units are skipped.
        assert_eq!(
            split_annex_b(&b(&[0, 0, 0, 0, 0, 1, 9, 0, 0, 1, 0, 0, 1, 5])).unwrap(),
            vec![b(&[9]), b(&[5])]
        );
        assert_eq!(split_annex_b(&b(&[1, 0, 0, 1, 5])), None);
        assert_eq!(split_annex_b(&b(&[0x65, 1, 2])), None);
        assert_eq!(split_annex_b(&b(&[])), None);
        assert_eq!(split_annex_b(&b(&[0, 0, 1])).unwrap(), Vec::<Bytes>::new());
    }

    #[test]
    fn seq_tracker_gaps_wrap_and_late_packets() {
        let mut t = SeqTracker::default();
        assert_eq!(t.step(65534), SeqStep::InOrder);
        assert_eq!(t.step(65535), SeqStep::InOrder);
        assert_eq!(t.step(0), SeqStep::InOrder);
        assert_eq!(t.step(2), SeqStep::Gap);
        assert_eq!(t.step(1), SeqStep::Old);
        assert_eq!(t.step(2), SeqStep::Old);
        assert_eq!(t.step(3), SeqStep::InOrder);
        // A big jump backwards re-synchronises.
        assert_eq!(t.step(30_000), SeqStep::Gap);
        assert_eq!(t.step(30_001), SeqStep::InOrder);
    }
}

/// Totality: thousands of random and mutated inputs to every parser and depacketizer of
/// the RTP side, asserting only that nothing panics (and that outputs stay bounded).
#[cfg(test)]
mod robustness {
    use super::testutil::{to_packets, XorShift};
    use super::*;
    use crate::rtcp::parse_compound;
    use crate::rtp::{parse_rtp, OnvifReplayExt};

    const JPEG: &[u8] = include_bytes!("../../testdata/packet/testsrc-320x240-420-restart.jpg");

    fn codecs() -> Vec<CodecParams> {
        vec![
            CodecParams::H264 {
                sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
                pps: Bytes::from_static(&[0x68, 0xce]),
            },
            CodecParams::H265 {
                vps: Bytes::from_static(&[0x40, 1]),
                sps: Bytes::from_static(&[0x42, 1]),
                pps: Bytes::from_static(&[0x44, 1]),
            },
            CodecParams::Jpeg,
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            },
            CodecParams::Pcma {
                rate: 16000,
                channels: 2,
            },
            CodecParams::Aac {
                rate: 48000,
                channels: 2,
                config: Bytes::from_static(&[0x11, 0x90]),
            },
            CodecParams::Opaque {
                kind: crate::codec::MediaKind::Video,
                rtpmap: Some("VP8/90000".into()),
                fmtp: None,
                clock_rate: 90_000,
            },
        ]
    }

    /// Random bytes, or a mutation (bit flips, truncation, splice) of `seed`.
    fn input(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
        match rng.below(4) {
            0 => {
                let len = if rng.below(8) == 0 {
                    rng.below(2000)
                } else {
                    rng.below(64)
                };
                rng.bytes(len)
            }
            1 => seed
                .get(..rng.below(seed.len() + 1))
                .unwrap_or(seed)
                .to_vec(),
            _ => {
                let mut v = seed.to_vec();
                for _ in 0..=rng.below(4) {
                    if v.is_empty() {
                        break;
                    }
                    let i = rng.below(v.len());
                    match rng.below(3) {
                        0 => v[i] ^= 1 << rng.below(8),
                        1 => v[i] = rng.next_u64() as u8,
                        _ => {
                            let extra = rng.some_bytes(8);
                            v.splice(i..i, extra);
                        }
                    }
                }
                v
            }
        }
    }

    #[test]
    fn parsers_are_total() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let rtp_seed = {
            let mut b = BytesMut::new();
            crate::rtp::write_rtp(
                &crate::rtp::RtpHeader {
                    payload_type: 96,
                    marker: true,
                    sequence: 1,
                    timestamp: 2,
                    ssrc: 3,
                    extension: Some(crate::rtp::RtpExtension {
                        profile: OnvifReplayExt::PROFILE,
                        data: &OnvifReplayExt::default().to_bytes(),
                    }),
                },
                &[1, 2, 3],
                &mut b,
            );
            b.to_vec()
        };
        let rtcp_seed = {
            let mut b = BytesMut::new();
            crate::rtcp::write_sender_report(&mut b, &Default::default(), "cam");
            crate::rtcp::write_receiver_report(&mut b, 1, &[Default::default()]);
            b.to_vec()
        };
        for _ in 0..20_000 {
            if let Ok(p) = parse_rtp(&input(&mut rng, &rtp_seed)) {
                let _ = (p.payload(), p.csrcs().count(), p.onvif_replay(), p.header());
            }
            let _ = parse_compound(&input(&mut rng, &rtcp_seed));
            let _ = OnvifReplayExt::parse(&input(&mut rng, &rtp_seed[16..]));
            let _ = jpeg::jpeg_frame_info(&input(&mut rng, &JPEG[..700]));
            let _ = aac::parse_aac_config(&rng.some_bytes(6));
            let _ = aac::frame_length(&rng.some_bytes(6));
        }
        // Whole-file JPEG mutations, including the scan and its end.
        for _ in 0..2_000 {
            let _ = jpeg::jpeg_frame_info(&input(&mut rng, JPEG));
        }
    }

    #[test]
    fn packetizers_are_total() {
        let mut rng = XorShift(42);
        for codec in codecs() {
            for _ in 0..2_000 {
                let max = if rng.below(2) == 0 {
                    rng.below(40)
                } else {
                    1400
                };
                let mut p = packetizer_for(&codec, max);
                let seed: &[u8] = match codec {
                    CodecParams::Jpeg => JPEG,
                    _ => &[0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 1, 0x41, 9],
                };
                let au = Bytes::from(input(&mut rng, seed));
                let mut out = Vec::new();
                if p.packetize(&au, &mut out).is_ok() {
                    // Opaque payloads go out as the camera sent them, whatever their size.
                    assert!(
                        codec.is_opaque() || out.iter().all(|p| p.to_bytes().len() <= max),
                        "{codec:?} {max}"
                    );
                } else {
                    assert!(out.is_empty());
                }
            }
        }
    }

    #[test]
    fn depacketizers_are_total() {
        let mut rng = XorShift(7);
        for codec in codecs() {
            // Valid packets of a few access units, to mutate.
            let mut p = packetizer_for(&codec, 300);
            let au: Bytes = match codec {
                CodecParams::Jpeg => Bytes::from_static(JPEG),
                CodecParams::H264 { .. } => {
                    let mut v = vec![0, 0, 0, 1, 0x65];
                    v.extend(rng.bytes(1000).iter().map(|b| b | 1));
                    Bytes::from(v)
                }
                CodecParams::H265 { .. } => {
                    let mut v = vec![0, 0, 0, 1, 19 << 1, 1];
                    v.extend(rng.bytes(1000).iter().map(|b| b | 1));
                    Bytes::from(v)
                }
                CodecParams::Aac { .. } => Bytes::from(rng.bytes(200)),
                CodecParams::Opaque { .. } => {
                    let mut au = BytesMut::new();
                    opaque::push_record(&mut au, &rng.bytes(300), false);
                    opaque::push_record(&mut au, &rng.bytes(200), true);
                    au.freeze()
                }
                _ => Bytes::from(rng.bytes(700)),
            };
            let mut payloads = Vec::new();
            p.packetize(&au, &mut payloads).unwrap();
            let valid = to_packets(&payloads, 0, 0);
            let mut d = depacketizer_for(&codec);
            let mut seq = 0u16;
            let mut pulled = 0usize;
            for i in 0..5_000 {
                let mut payload = if rng.below(3) == 0 {
                    rng.some_bytes(200)
                } else {
                    let v = &valid[rng.below(valid.len())];
                    input(&mut rng, &v[12..])
                };
                // Steer the first bytes towards the packet types each parser branches on.
                if !payload.is_empty() && rng.below(2) == 0 {
                    payload[0] = match codec {
                        CodecParams::H264 { .. } => [0x65, 0x78, 0x7c, 0x7a][rng.below(4)],
                        CodecParams::H265 { .. } => [0x26, 0x60, 0x62, 0x64][rng.below(4)],
                        _ => payload[0],
                    };
                }
                seq = seq.wrapping_add(match rng.below(10) {
                    0 => rng.below(5) as u16,
                    1 => rng.next_u64() as u16,
                    _ => 1,
                });
                let mut buf = BytesMut::new();
                crate::rtp::write_rtp(
                    &crate::rtp::RtpHeader {
                        payload_type: 96,
                        marker: rng.below(4) == 0,
                        sequence: seq,
                        timestamp: (i / 7) as u32 * 3000,
                        ssrc: 1,
                        extension: None,
                    },
                    &payload,
                    &mut buf,
                );
                let pkt = parse_rtp(&buf).unwrap();
                let _ = d.push(&pkt);
                while let Some(u) = d.pull() {
                    pulled += 1;
                    assert!(u.data.len() <= MAX_ACCESS_UNIT + 4096);
                    if codec == CodecParams::Jpeg {
                        let _ = jpeg::jpeg_frame_info(&u.data);
                    }
                }
            }
            // Clean packets still go through after all that.
            let mut d = depacketizer_for(&codec);
            for v in &valid {
                d.push(&parse_rtp(v).unwrap()).unwrap();
            }
            let unit = d.pull().expect("a unit from valid packets");
            assert!(!unit.loss, "{codec:?}");
            eprintln!("{} units from fuzzed packets: {pulled}", codec.name());
        }
    }
}
