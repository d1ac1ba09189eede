//! H.265/HEVC over RTP (RFC 7798), without DON (`sprop-max-don-diff=0`).
//!
//! Packetizer (§4.4.1 single NAL unit packets, §4.4.3 fragmentation units, type 49): a NAL
//! unit that fits in the maximum payload is sent whole, a larger one as FUs; the marker bit
//! is set on the last packet of the access unit (§4.1). Access unit delimiters (type 35)
//! are dropped. Before every IRAP access unit (types 16-23) that lacks them, the most recent
//! VPS/SPS/PPS (from the stream, else from [`CodecParams`]) are inserted. APs are never
//! sent.
//!
//! Depacketizer: single NAL unit packets, aggregation packets (§4.4.2, type 48) and FUs.
//! Left out: DONL/DOND fields (only present when `sprop-max-don-diff` > 0, which we never
//! offer) and PACI packets (type 50), reported as [`DepacketizeError::Unsupported`].
//!
//! Also [`h265_fmtp`] for SDP (§7.1: `sprop-vps`, `sprop-sps`, `sprop-pps`). Left out of the
//! fmtp: `profile-id`/`tier-flag`/`level-id` (optional, default Main profile, level 3.1
//! per §7.1), which would need a profile_tier_level parser.
//!
//! Hand-written: no crate packetizes H.265 for a server; see [`super`].
//!
//! [`CodecParams`]: crate::codec::CodecParams

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;

use super::{
    split_annex_b, AnnexBAssembler, DepacketizeError, NalDepacketizer, PacketizeError, Packetizer,
    PayloadHead, RtpPayload,
};

const CODEC: &str = "H265";

/// NAL unit types (H.265 Table 7-1) and RTP packet types (RFC 7798 §4.4).
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
pub const AP: u8 = 48;
pub const FU: u8 = 49;

/// The NAL unit type of a NAL unit (bits 1-6 of its first byte).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| (h >> 1) & 0x3f)
}

/// Whether a NAL unit type is an IRAP picture (BLA, IDR, CRA, reserved IRAP: 16-23).
pub fn is_irap(ty: u8) -> bool {
    (16..=23).contains(&ty)
}

/// SDP `a=fmtp` parameters (without the payload type):
/// `sprop-vps=<b64>;sprop-sps=<b64>;sprop-pps=<b64>`; empty parameter sets are left out.
pub fn h265_fmtp(vps: &[u8], sps: &[u8], pps: &[u8]) -> String {
    [("sprop-vps", vps), ("sprop-sps", sps), ("sprop-pps", pps)]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", BASE64.encode(v)))
        .collect::<Vec<_>>()
        .join(";")
}

/// Splits Annex B access units into RTP payloads.
#[derive(Debug)]
pub struct H265Packetizer {
    max_payload: usize,
    /// VPS, SPS, PPS.
    params: [Bytes; 3],
}

impl H265Packetizer {
    /// The parameter sets (may be empty) are inserted before IRAP access units that lack
    /// them, and replaced by those seen in the stream.
    pub fn new(max_payload: usize, vps: Bytes, sps: Bytes, pps: Bytes) -> Self {
        H265Packetizer {
            max_payload,
            params: [vps, sps, pps],
        }
    }
}

impl Packetizer for H265Packetizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        // Payload header (2) + FU header (1) + at least one byte.
        if self.max_payload < 4 {
            return Err(PacketizeError::MaxPayloadTooSmall {
                codec: CODEC,
                max_payload: self.max_payload,
                needed: 4,
            });
        }
        if au.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        let mut nals = split_annex_b(au).ok_or(PacketizeError::NotAnnexB { codec: CODEC })?;
        // A NAL unit shorter than its 2-byte header is not one; drop it with the AUDs.
        nals.retain(|n| n.len() >= 2 && nal_type(n) != NAL_AUD);
        let mut has = [false; 3];
        let mut irap = false;
        for n in &nals {
            let ty = nal_type(n);
            irap |= is_irap(ty);
            if (NAL_VPS..=NAL_PPS).contains(&ty) {
                let i = usize::from(ty - NAL_VPS);
                has[i] = true;
                self.params[i] = n.clone();
            }
        }
        if irap {
            let mut prefix: Vec<Bytes> = (0..3)
                .filter(|&i| !has[i] && !self.params[i].is_empty())
                .map(|i| self.params[i].clone())
                .collect();
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
            let (h0, h1) = (nal[0], nal[1]);
            let ty = nal_type(&nal);
            let body = nal.slice(2..);
            let chunk = self.max_payload - 3;
            let count = body.len().div_ceil(chunk);
            // Each fragment's body is a view of the NAL unit: no copy.
            for i in 0..count {
                let mut fu_header = ty;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i + 1 == count {
                    fu_header |= 0x40;
                }
                let piece = body.slice(i * chunk..((i + 1) * chunk).min(body.len()));
                out.push(RtpPayload {
                    head: PayloadHead::new(&[(h0 & 0x81) | (FU << 1), h1, fu_header]),
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

/// Reassembles Annex B access units from single NAL unit, AP and FU packets.
#[derive(Debug)]
pub struct H265Depacketizer {
    asm: AnnexBAssembler,
}

impl Default for H265Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl H265Depacketizer {
    pub fn new() -> Self {
        H265Depacketizer {
            asm: AnnexBAssembler::new(CODEC),
        }
    }

    fn nal_payload(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        let Some(&[h0, h1]) = p.get(..2) else {
            return Err(if p.is_empty() {
                DepacketizeError::EmptyPayload {
                    codec: CODEC,
                    seq: self.asm.seq(),
                }
            } else {
                self.asm.malformed("payload shorter than the 2-byte header")
            });
        };
        match nal_type(p) {
            0..=47 => self.asm.nal(p, is_irap(nal_type(p))),
            AP => {
                let mut rest = p.get(2..).unwrap_or_default();
                while !rest.is_empty() {
                    let Some(&[s0, s1]) = rest.get(..2) else {
                        return Err(self.asm.malformed("AP: truncated NAL unit size"));
                    };
                    let size = usize::from(u16::from_be_bytes([s0, s1]));
                    let Some(nal) = rest.get(2..2 + size) else {
                        return Err(self.asm.malformed("AP: NAL unit size past the end"));
                    };
                    if !nal.is_empty() {
                        self.asm.nal(nal, is_irap(nal_type(nal)))?;
                    }
                    rest = rest.get(2 + size..).unwrap_or_default();
                }
                Ok(())
            }
            FU => {
                let Some(&fu_header) = p.get(2) else {
                    return Err(self.asm.malformed("FU: no FU header"));
                };
                let data = p.get(3..).unwrap_or_default();
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                let ty = fu_header & 0x3f;
                if start {
                    let header = [(h0 & 0x81) | (ty << 1), h1];
                    self.asm.frag_start(&header, data, is_irap(ty));
                    if end {
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

impl NalDepacketizer for H265Depacketizer {
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

    const VPS: &[u8] = &[0x40, 0x01, 0x0c, 0x01, 0xff, 0xff];
    const SPS: &[u8] = &[0x42, 0x01, 0x01, 0x01, 0x60];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72];

    fn nal(ty: u8, len: usize, seed: u8) -> Vec<u8> {
        let mut v = vec![ty << 1, 0x01];
        v.extend((2..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) | 1));
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
        let mut p = H265Packetizer::new(max, Bytes::new(), Bytes::new(), Bytes::new());
        let mut out = Vec::new();
        p.packetize(au, &mut out).unwrap();
        out
    }

    #[test]
    fn fmtp() {
        assert_eq!(
            h265_fmtp(VPS, SPS, PPS),
            "sprop-vps=QAEMAf//;sprop-sps=QgEBAWA=;sprop-pps=RAHBcg=="
        );
        assert_eq!(h265_fmtp(&[], SPS, &[]), "sprop-sps=QgEBAWA=");
    }

    #[test]
    fn fragmentation_at_boundaries() {
        let max: usize = 100;
        for (len, packets) in [
            (max - 1, 1),
            (max, 1),
            (max + 1, 2),
            (3 * max, (3 * max - 2).div_ceil(max - 3)),
        ] {
            let n = nal(1, len, 5);
            let out = packetize(max, &annex_b(&[&n]));
            assert_eq!(out.len(), packets, "NAL of {len}");
            assert!(out.iter().all(|p| p.to_bytes().len() <= max));
            assert!(out.last().unwrap().marker);
            assert_eq!(out.iter().filter(|p| p.marker).count(), 1);
            if packets == 1 {
                assert_eq!(&out[0].to_bytes()[..], &n[..]);
                continue;
            }
            assert_eq!(&out[0].to_bytes()[..3], &[FU << 1, 0x01, 0x80 | 1]);
            assert_eq!(out[packets - 1].to_bytes()[2], 0x40 | 1);
            let body: Vec<u8> = out
                .iter()
                .flat_map(|p| p.to_bytes()[3..].to_vec())
                .collect();
            assert_eq!(&body[..], &n[2..]);
        }
    }

    #[test]
    fn inserts_parameter_sets_before_irap_and_round_trips() {
        let mut p = H265Packetizer::new(
            1000,
            Bytes::from_static(VPS),
            Bytes::from_static(SPS),
            Bytes::from_static(PPS),
        );
        let idr = nal(19, 4000, 1);
        let aud = [NAL_AUD << 1, 1, 0x50];
        let mut out = Vec::new();
        p.packetize(&annex_b(&[&aud, &idr]), &mut out).unwrap();
        let trailing = nal(1, 200, 2);
        let mut out2 = Vec::new();
        p.packetize(&annex_b(&[&trailing]), &mut out2).unwrap();
        let mut packets = to_packets(&out, 0, 0);
        packets.extend(to_packets(&out2, packets.len() as u16, 3600));
        let (units, errors) = feed(&mut H265Depacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].data, annex_b(&[VPS, SPS, PPS, &idr]));
        assert!(units[0].keyframe && !units[0].loss);
        assert_eq!(units[1].data, annex_b(&[&trailing]));
        assert!(!units[1].keyframe && !units[1].loss);
    }

    #[test]
    fn depacketizes_ap_and_fu_loss() {
        let mut ap = vec![AP << 1, 1];
        for n in [VPS, SPS, PPS] {
            ap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ap.extend_from_slice(n);
        }
        let big = nal(21, 2500, 3); // CRA
        let mut payloads = vec![RtpPayload::new(Bytes::from(ap))];
        payloads.extend(packetize(1000, &annex_b(&[&big])));
        assert_eq!(payloads.len(), 4);
        let packets = to_packets(&payloads, 7, 0);
        let (units, errors) = feed(&mut H265Depacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(units[0].data, annex_b(&[VPS, SPS, PPS, &big]));
        assert!(units[0].keyframe);
        // Lose the middle fragment.
        let mut lossy = packets.clone();
        lossy.remove(2);
        let (units, _) = feed(&mut H265Depacketizer::new(), &lossy);
        assert_eq!(units.len(), 1);
        assert!(units[0].loss);
        assert_eq!(units[0].data, annex_b(&[VPS, SPS, PPS]));
        // Malformed AP and PACI.
        let bad = [
            RtpPayload::new(Bytes::from_static(&[AP << 1, 1, 0, 9, 1])),
            RtpPayload {
                marker: true,
                ..RtpPayload::new(Bytes::from_static(&[50 << 1, 1, 0]))
            },
        ];
        let (units, errors) = feed(&mut H265Depacketizer::new(), &to_packets(&bad, 0, 0));
        assert!(units.is_empty());
        assert_eq!(errors.len(), 2);
    }
}
