//! H.264 over RTP (RFC 6184), packetization-mode=1 (non-interleaved).
//!
//! Packetizer (§5.6 single NAL unit packets, §5.8 FU-A): a NAL unit that fits in the
//! maximum payload goes in a single NAL unit packet, a larger one is cut into FU-A
//! fragments; the marker bit is set on the last packet of the access unit (§5.1). Access
//! unit delimiters (type 9) are dropped: the marker bit and the timestamp already delimit
//! access units. SEI is kept. Before every IDR access unit that does not carry its own
//! SPS/PPS, the most recent ones (from the stream, else from [`CodecParams`]) are inserted,
//! so that a client joining mid-stream can decode. STAP-A is never sent.
//!
//! Depacketizer: single NAL unit packets, STAP-A (§5.7.1) and FU-A (§5.8). Left out:
//! interleaved mode (STAP-B, MTAP16/24, FU-B) and DON, which ONVIF cameras do not use; they
//! are reported as [`DepacketizeError::Unsupported`].
//!
//! Also [`h264_fmtp`] for SDP (§8.1: `profile-level-id`, `sprop-parameter-sets`).
//!
//! Hand-written: no crate packetizes H.264 for a server; see [`super`].
//!
//! [`CodecParams`]: crate::codec::CodecParams

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;

use super::{
    split_annex_b, AnnexBAssembler, DepacketizeError, NalDepacketizer, PacketizeError, Packetizer,
    PayloadHead, RtpPayload,
};

const CODEC: &str = "H264";

/// NAL unit types (H.264 Table 7-1) and RTP packet types (RFC 6184 Table 1).
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
pub const STAP_A: u8 = 24;
pub const FU_A: u8 = 28;

/// The NAL unit type of a NAL unit (its first byte).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// SDP `a=fmtp` parameters (without the payload type) for packetization-mode=1:
/// `packetization-mode=1;profile-level-id=XXXXXX;sprop-parameter-sets=<sps>,<pps>`.
/// `profile-level-id` is the three bytes after the SPS NAL header (profile_idc,
/// constraint flags, level_idc) in upper-case hex; it is left out if the SPS is shorter.
/// `sprop-parameter-sets` is left out if either parameter set is empty.
pub fn h264_fmtp(sps: &[u8], pps: &[u8]) -> String {
    let mut s = String::from("packetization-mode=1");
    if let Some(&[p, c, l]) = sps.get(1..4) {
        s.push_str(&format!(";profile-level-id={p:02X}{c:02X}{l:02X}"));
    }
    if !sps.is_empty() && !pps.is_empty() {
        s.push_str(";sprop-parameter-sets=");
        s.push_str(&BASE64.encode(sps));
        s.push(',');
        s.push_str(&BASE64.encode(pps));
    }
    s
}

/// Splits Annex B access units into RTP payloads (packetization-mode=1).
#[derive(Debug)]
pub struct H264Packetizer {
    max_payload: usize,
    sps: Bytes,
    pps: Bytes,
}

impl H264Packetizer {
    /// `sps`/`pps`: the parameter sets to insert before IDR access units that lack them
    /// (may be empty; replaced by those seen in the stream).
    pub fn new(max_payload: usize, sps: Bytes, pps: Bytes) -> Self {
        H264Packetizer {
            max_payload,
            sps,
            pps,
        }
    }
}

impl Packetizer for H264Packetizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        // FU indicator + FU header + at least one byte.
        if self.max_payload < 3 {
            return Err(PacketizeError::MaxPayloadTooSmall {
                codec: CODEC,
                max_payload: self.max_payload,
                needed: 3,
            });
        }
        if au.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        let mut nals = split_annex_b(au).ok_or(PacketizeError::NotAnnexB { codec: CODEC })?;
        nals.retain(|n| nal_type(n) != NAL_AUD);
        let mut has = [false; 32];
        for n in &nals {
            has[usize::from(nal_type(n))] = true;
            match nal_type(n) {
                NAL_SPS => self.sps = n.clone(),
                NAL_PPS => self.pps = n.clone(),
                _ => {}
            }
        }
        if has[usize::from(NAL_IDR)] {
            let mut prefix = Vec::new();
            if !has[usize::from(NAL_SPS)] && !self.sps.is_empty() {
                prefix.push(self.sps.clone());
            }
            if !has[usize::from(NAL_PPS)] && !self.pps.is_empty() {
                prefix.push(self.pps.clone());
            }
            if !prefix.is_empty() {
                prefix.append(&mut nals);
                nals = prefix;
            }
        }
        let start = out.len();
        for nal in nals {
            if nal.len() <= self.max_payload {
                out.push(RtpPayload::new(nal));
                continue;
            }
            let header = nal[0];
            let indicator = (header & 0xe0) | FU_A;
            let body = nal.slice(1..);
            let chunk = self.max_payload - 2;
            let count = body.len().div_ceil(chunk);
            // Each fragment's body is a view of the NAL unit: no copy.
            for i in 0..count {
                let mut fu_header = header & 0x1f;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i + 1 == count {
                    fu_header |= 0x40;
                }
                let piece = body.slice(i * chunk..((i + 1) * chunk).min(body.len()));
                out.push(RtpPayload {
                    head: PayloadHead::new(&[indicator, fu_header]),
                    ..RtpPayload::new(piece)
                });
            }
        }
        if let Some(last) = out[start..].last_mut() {
            last.marker = true;
        }
        Ok(())
    }
}

/// Reassembles Annex B access units from single NAL unit, STAP-A and FU-A packets.
#[derive(Debug)]
pub struct H264Depacketizer {
    asm: AnnexBAssembler,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Depacketizer {
    pub fn new() -> Self {
        H264Depacketizer {
            asm: AnnexBAssembler::new(CODEC),
        }
    }

    fn nal_payload(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        let Some(&header) = p.first() else {
            return Err(DepacketizeError::EmptyPayload {
                codec: CODEC,
                seq: self.asm.seq(),
            });
        };
        match header & 0x1f {
            1..=23 => self.asm.nal(p, nal_type(p) == NAL_IDR),
            STAP_A => {
                let mut rest = p.get(1..).unwrap_or_default();
                while !rest.is_empty() {
                    let Some(&[s0, s1]) = rest.get(..2) else {
                        return Err(self.asm.malformed("STAP-A: truncated NAL unit size"));
                    };
                    let size = usize::from(u16::from_be_bytes([s0, s1]));
                    let Some(nal) = rest.get(2..2 + size) else {
                        return Err(self.asm.malformed("STAP-A: NAL unit size past the end"));
                    };
                    if !nal.is_empty() {
                        self.asm.nal(nal, nal_type(nal) == NAL_IDR)?;
                    }
                    rest = rest.get(2 + size..).unwrap_or_default();
                }
                Ok(())
            }
            FU_A => {
                let Some(&fu_header) = p.get(1) else {
                    return Err(self.asm.malformed("FU-A: no FU header"));
                };
                let data = p.get(2..).unwrap_or_default();
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                let ty = fu_header & 0x1f;
                if start {
                    let nal_header = (header & 0xe0) | ty;
                    self.asm.frag_start(&[nal_header], data, ty == NAL_IDR);
                    if end {
                        // Both S and E is forbidden (§5.8) but unambiguous: a whole NAL unit.
                        self.asm.frag_continue(&[], true)?;
                    }
                    Ok(())
                } else {
                    self.asm.frag_continue(data, end)
                }
            }
            ty => Err(DepacketizeError::Unsupported {
                codec: self.asm.codec(),
                seq: self.asm.seq(),
                packet_type: ty,
            }),
        }
    }
}

impl NalDepacketizer for H264Depacketizer {
    fn assembler(&mut self) -> &mut AnnexBAssembler {
        &mut self.asm
    }

    fn payload(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        self.nal_payload(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testutil::{feed, to_packets};

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn nal(ty: u8, len: usize, seed: u8) -> Vec<u8> {
        let mut v = vec![0x60 | ty];
        v.extend((1..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1));
        v
    }

    fn annex_b(nals: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    fn packetize(max: usize, au: &Bytes) -> Vec<RtpPayload> {
        let mut p = H264Packetizer::new(max, Bytes::new(), Bytes::new());
        let mut out = Vec::new();
        p.packetize(au, &mut out).unwrap();
        out
    }

    #[test]
    fn fmtp() {
        assert_eq!(
            h264_fmtp(SPS, PPS),
            "packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtoCgL/lhA==,aM48gA=="
        );
        assert_eq!(h264_fmtp(&[0x67], &[]), "packetization-mode=1");
    }

    #[test]
    fn fragmentation_at_boundaries() {
        let max: usize = 100;
        for (len, packets) in [
            (max - 1, 1),
            (max, 1),
            (max + 1, 2),
            (3 * max, (3 * max - 1).div_ceil(max - 2)),
        ] {
            let n = nal(1, len, 7);
            let out = packetize(max, &annex_b(&[&n]));
            assert_eq!(out.len(), packets, "NAL of {len}");
            assert!(
                out.iter().all(|p| p.to_bytes().len() <= max),
                "NAL of {len}"
            );
            assert_eq!(
                out.iter().map(|p| p.marker).collect::<Vec<_>>(),
                (0..packets).map(|i| i + 1 == packets).collect::<Vec<_>>()
            );
            if packets == 1 {
                assert_eq!(&out[0].to_bytes()[..], &n[..]);
                continue;
            }
            // FU indicator keeps F/NRI, type 28; FU header S/E bits and the NAL type.
            assert_eq!(out[0].to_bytes()[0], 0x60 | FU_A);
            assert_eq!(out[0].to_bytes()[1], 0x80 | 1);
            assert_eq!(out[packets - 1].to_bytes()[1], 0x40 | 1);
            for mid in &out[1..packets - 1] {
                assert_eq!(mid.to_bytes()[1], 1);
            }
            let body: Vec<u8> = out
                .iter()
                .flat_map(|p| p.to_bytes()[2..].to_vec())
                .collect();
            assert_eq!(&body[..], &n[1..]);
        }
    }

    #[test]
    fn drops_aud_and_inserts_parameter_sets_before_idr() {
        let mut p = H264Packetizer::new(1400, Bytes::from_static(SPS), Bytes::from_static(PPS));
        let idr = nal(NAL_IDR, 50, 1);
        let aud = [0x09, 0xf0];
        let mut out = Vec::new();
        p.packetize(&annex_b(&[&aud, &idr]), &mut out).unwrap();
        let datas: Vec<&[u8]> = out.iter().map(|p| &p.body[..]).collect();
        assert_eq!(datas, vec![SPS, PPS, &idr[..]]);
        // A non-IDR access unit gets nothing added.
        out.clear();
        let slice = nal(1, 20, 2);
        p.packetize(&annex_b(&[&slice]), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        // In-band parameter sets replace the configured ones.
        let sps2 = [0x67, 0x4d, 0x00, 0x28, 0xaa];
        out.clear();
        p.packetize(&annex_b(&[&sps2, PPS, &idr]), &mut out)
            .unwrap();
        assert_eq!(out.len(), 3);
        out.clear();
        p.packetize(&annex_b(&[&idr]), &mut out).unwrap();
        assert_eq!(&out[0].to_bytes()[..], &sps2);
        // Errors.
        assert_eq!(
            p.packetize(&Bytes::new(), &mut out),
            Err(PacketizeError::Empty { codec: CODEC })
        );
        assert_eq!(
            p.packetize(&Bytes::from_static(&[0x65, 1]), &mut out),
            Err(PacketizeError::NotAnnexB { codec: CODEC })
        );
    }

    #[test]
    fn round_trip_with_3_byte_start_codes() {
        let idr = nal(NAL_IDR, 5000, 3);
        let sei = nal(NAL_SEI, 30, 4);
        let mut au = vec![0, 0, 1];
        au.extend_from_slice(SPS);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(PPS);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&sei);
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&idr);
        let au = Bytes::from(au);
        let out = packetize(1400, &au);
        let packets = to_packets(&out, 65530, 9000);
        let mut d = H264Depacketizer::new();
        let (units, errors) = feed(&mut d, &packets);
        assert!(errors.is_empty());
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].data, annex_b(&[SPS, PPS, &sei, &idr]));
        assert_eq!(units[0].timestamp, 9000);
        assert!(units[0].keyframe);
        assert!(!units[0].loss);
    }

    #[test]
    fn depacketizes_stap_a() {
        let mut stap = vec![0x78];
        for n in [SPS, PPS] {
            stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            stap.extend_from_slice(n);
        }
        let idr = nal(NAL_IDR, 10, 0);
        let payloads = [
            RtpPayload::new(Bytes::from(stap)),
            RtpPayload {
                marker: true,
                ..RtpPayload::new(Bytes::from(idr.clone()))
            },
        ];
        let (units, errors) = feed(&mut H264Depacketizer::new(), &to_packets(&payloads, 0, 0));
        assert!(errors.is_empty());
        assert_eq!(units[0].data, annex_b(&[SPS, PPS, &idr]));
        assert!(units[0].keyframe);
        // Truncated STAP-A: error, unit lossy.
        let bad = [RtpPayload {
            marker: true,
            ..RtpPayload::new(Bytes::from_static(&[0x78, 0, 4, 0x67, 1, 2, 3, 0, 9, 1]))
        }];
        let (units, errors) = feed(&mut H264Depacketizer::new(), &to_packets(&bad, 0, 0));
        assert_eq!(errors.len(), 1);
        assert!(units[0].loss);
        assert_eq!(&units[0].data[..], &[0, 0, 0, 1, 0x67, 1, 2, 3]);
    }

    #[test]
    fn loss_in_the_middle_of_fu_a() {
        let big = nal(1, 3000, 9);
        let small = nal(1, 50, 10);
        let mut payloads = packetize(1000, &annex_b(&[&small, &big]));
        assert_eq!(payloads.len(), 5);
        payloads.extend(packetize(1000, &annex_b(&[&small])));
        let mut packets = to_packets(&payloads[..5], 100, 0);
        packets.extend(to_packets(&payloads[5..], 105, 3000));
        packets.remove(2); // the second FU-A fragment
        let (units, errors) = feed(&mut H264Depacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(units.len(), 2);
        // The first unit keeps the complete NAL unit, drops the broken one, and is lossy.
        assert!(units[0].loss);
        assert_eq!(units[0].data, annex_b(&[&small]));
        // The next unit is intact.
        assert!(!units[1].loss);
        assert_eq!(units[1].data, annex_b(&[&small]));
        assert_eq!(units[1].timestamp, 3000);
    }

    #[test]
    fn lost_marker_packet_and_lost_first_packet() {
        let a = nal(1, 10, 1);
        let b = nal(1, 10, 2);
        let payloads = packetize(1400, &annex_b(&[&a, &b]));
        let mut packets = to_packets(&payloads, 0, 0);
        packets.extend(to_packets(&payloads, 2, 100));
        // Lose the marker packet of the first unit: the timestamp change ends it.
        packets.remove(1);
        let (units, _) = feed(&mut H264Depacketizer::new(), &packets);
        assert_eq!(units.len(), 2);
        assert!(units[0].loss);
        assert!(
            units[1].loss,
            "the gap may have been the start of the second unit"
        );
        // Duplicates are ignored.
        let mut packets = to_packets(&payloads, 0, 0);
        packets.insert(1, packets[0].clone());
        let (units, errors) = feed(&mut H264Depacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(units.len(), 1);
        assert!(!units[0].loss);
        assert_eq!(units[0].data, annex_b(&[&a, &b]));
    }

    #[test]
    fn unsupported_and_orphan_fragments() {
        let payloads = [
            RtpPayload::new(Bytes::from_static(&[0x7a, 1, 2])), // STAP-B
            RtpPayload::new(Bytes::from_static(&[0x7c, 0x01, 1, 2])), // FU-A middle, no start
            RtpPayload {
                marker: true,
                ..RtpPayload::new(Bytes::from_static(&[0x7c, 0x45, 3])) // FU-A end
            },
            RtpPayload {
                marker: true,
                ..RtpPayload::new(Bytes::new())
            },
        ];
        let (units, errors) = feed(&mut H264Depacketizer::new(), &to_packets(&payloads, 0, 0));
        assert!(units.is_empty());
        assert_eq!(
            errors,
            vec![
                DepacketizeError::Unsupported {
                    codec: CODEC,
                    seq: 0,
                    packet_type: 26
                },
                DepacketizeError::EmptyPayload {
                    codec: CODEC,
                    seq: 3
                }
            ]
        );
    }
}
