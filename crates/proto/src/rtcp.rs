//! RTCP: sender and receiver reports, SDES CNAME and BYE (RFC 3550 §6.4.1, §6.4.2, §6.5.1,
//! §6.6), and compound packets (RFC 3550 §6.1).
//!
//! Built on the `rtcp-types` crate for both writing and parsing; this module only maps its
//! borrowed views to the owned structs the server and clients use, and splits compound
//! packets itself so that one malformed packet of a type we do not interpret (APP, XR,
//! feedback) does not hide the reports around it.
//!
//! Left out: SR report blocks (the server only sends; a camera receives nothing it would
//! report on), SDES items other than CNAME, BYE reasons, RTCP feedback (RFC 4585) and XR.
//! Reports with more than 31 blocks are cut to 31 (the RC field has 5 bits).

use bytes::BytesMut;
use rtcp_types::{RtcpPacketParser, RtcpPacketWriter};
use thiserror::Error;

/// RTCP packet types (RFC 3550 §12.1).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderReport {
    pub ssrc: u32,
    /// Wallclock of the instant described, 64-bit NTP (see [`crate::time::unix_micros_to_ntp`]).
    pub ntp: u64,
    /// The RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent since the start of transmission.
    pub packet_count: u32,
    /// Payload octets sent since the start of transmission (headers and padding excluded).
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost: a signed 24-bit value on the wire (negative when
    /// duplicates outnumber losses); clamped to that range when written.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | sequence).
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received, 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// One packet of a compound RTCP packet, as far as a camera cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport(SenderReport),
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Bye {
        ssrcs: Vec<u32>,
    },
    /// SDES, APP, feedback, XR, unknown types, and uninterpreted packets that did not parse.
    Other {
        packet_type: u8,
    },
}

/// Errors from [`parse_compound`]. `index` counts packets within the compound, `offset` is
/// the byte offset of that packet's header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("empty RTCP packet")]
    Empty,
    #[error("RTCP packet {index} at byte {offset}: needs {needed} bytes, only {available} left")]
    Truncated {
        index: usize,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("RTCP packet {index} at byte {offset}: version {version}, expected 2")]
    Version {
        index: usize,
        offset: usize,
        version: u8,
    },
    #[error("RTCP packet {index} (type {packet_type}) at byte {offset}: {reason}")]
    Malformed {
        index: usize,
        offset: usize,
        packet_type: u8,
        reason: String,
    },
}

/// Longest SDES item value (8-bit length).
const SDES_MAX: usize = 255;
/// Most report blocks in one SR/RR (5-bit count).
const MAX_BLOCKS: usize = 31;

/// Appends a compound packet SR (no report blocks) + SDES with one CNAME item, as RFC 3550
/// §6.1 requires of every compound packet. A CNAME longer than 255 bytes is cut at a
/// character boundary.
pub fn write_sender_report(out: &mut BytesMut, sr: &SenderReport, cname: &str) {
    let sender = rtcp_types::SenderReport::builder(sr.ssrc)
        .ntp_timestamp(sr.ntp)
        .rtp_timestamp(sr.rtp_timestamp)
        .packet_count(sr.packet_count)
        .octet_count(sr.octet_count);
    let sdes = rtcp_types::Sdes::builder().add_chunk(
        rtcp_types::SdesChunk::builder(sr.ssrc).add_item(rtcp_types::SdesItem::builder(
            rtcp_types::SdesItem::CNAME,
            truncate_str(cname, SDES_MAX),
        )),
    );
    let compound = rtcp_types::Compound::builder()
        .add_packet(sender)
        .add_packet(sdes);
    append(out, &compound);
}

/// Appends a receiver report (RFC 3550 §6.4.2) from `ssrc` with `blocks` (at most 31 are
/// written). It is a bare RR without SDES, as reduced-size RTCP (RFC 5506) allows; servers
/// use it for liveness and statistics.
pub fn write_receiver_report(out: &mut BytesMut, ssrc: u32, blocks: &[ReportBlock]) {
    let mut rr = rtcp_types::ReceiverReport::builder(ssrc);
    for b in blocks.iter().take(MAX_BLOCKS) {
        let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff;
        rr = rr.add_report_block(
            rtcp_types::ReportBlock::builder(b.ssrc)
                .fraction_lost(b.fraction_lost)
                .cumulative_lost(lost)
                .extended_sequence_number(b.highest_seq)
                .interarrival_jitter(b.jitter)
                .last_sender_report_timestamp(b.lsr)
                .delay_since_last_sender_report_timestamp(b.dlsr),
        );
    }
    append(out, &rr);
}

/// Writes `packet` at the end of `out`. The builders above are valid by construction
/// (lengths and counts limited), so `calculate_size` cannot fail; if it ever did, nothing is
/// written rather than a malformed packet.
fn append(out: &mut BytesMut, packet: &dyn RtcpPacketWriter) {
    let Ok(size) = packet.calculate_size() else {
        debug_assert!(false, "invalid RTCP builder");
        return;
    };
    let start = out.len();
    out.resize(start + size, 0);
    let written = packet.write_into_unchecked(&mut out[start..]);
    out.truncate(start + written);
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn report_block(b: &rtcp_types::ReportBlock<'_>) -> ReportBlock {
    // Sign-extend the 24-bit cumulative loss.
    let lost = ((b.cumulative_lost() << 8) as i32) >> 8;
    ReportBlock {
        ssrc: b.ssrc(),
        fraction_lost: b.fraction_lost(),
        cumulative_lost: lost,
        highest_seq: b.extended_sequence_number(),
        jitter: b.interarrival_jitter(),
        lsr: b.last_sender_report_timestamp(),
        dlsr: b.delay_since_last_sender_report_timestamp(),
    }
}

/// Parses a compound RTCP packet (or a single one) into its packets, in order.
///
/// Every packet's header must be valid (version 2, length within the buffer). SR, RR and
/// BYE packets must parse; the bodies of other types are not looked at (they become
/// [`RtcpPacket::Other`]). The RFC 3550 §6.1 rules on compound structure (SR/RR first,
/// SDES CNAME present) are not enforced: servers and clients in the field break them.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let index = packets.len();
        let available = buf.len() - offset;
        let Some(&[b0, packet_type, l0, l1]) = buf.get(offset..offset + 4) else {
            return Err(RtcpError::Truncated {
                index,
                offset,
                needed: 4,
                available,
            });
        };
        if b0 >> 6 != 2 {
            return Err(RtcpError::Version {
                index,
                offset,
                version: b0 >> 6,
            });
        }
        let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let Some(data) = buf.get(offset..offset + len) else {
            return Err(RtcpError::Truncated {
                index,
                offset,
                needed: len,
                available,
            });
        };
        let malformed = |e: rtcp_types::RtcpParseError| RtcpError::Malformed {
            index,
            offset,
            packet_type,
            reason: e.to_string(),
        };
        let packet = match packet_type {
            PT_SR => {
                let sr = rtcp_types::SenderReport::parse(data).map_err(malformed)?;
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: sr.ssrc(),
                    ntp: sr.ntp_timestamp(),
                    rtp_timestamp: sr.rtp_timestamp(),
                    packet_count: sr.packet_count(),
                    octet_count: sr.octet_count(),
                })
            }
            PT_RR => {
                let rr = rtcp_types::ReceiverReport::parse(data).map_err(malformed)?;
                RtcpPacket::ReceiverReport {
                    ssrc: rr.ssrc(),
                    reports: rr.report_blocks().map(|b| report_block(&b)).collect(),
                }
            }
            PT_BYE => {
                let bye = rtcp_types::Bye::parse(data).map_err(malformed)?;
                RtcpPacket::Bye {
                    ssrcs: bye.ssrcs().collect(),
                }
            }
            // The body of other types is not needed, so it is not parsed at all.
            _ => RtcpPacket::Other { packet_type },
        };
        packets.push(packet);
        offset += len;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_report_with_cname_byte_layout() {
        let sr = SenderReport {
            ssrc: 0x1122_3344,
            ntp: 0xe8b1_2345_8000_0000,
            rtp_timestamp: 0xdead_beef,
            packet_count: 10,
            octet_count: 12_000,
        };
        let mut out = BytesMut::from(&b"xx"[..]);
        write_sender_report(&mut out, &sr, "cam");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            b'x', b'x',
            // SR: V=2 P=0 RC=0, PT=200, length 6 words
            0x80, 200, 0x00, 0x06,
            0x11, 0x22, 0x33, 0x44,
            0xe8, 0xb1, 0x23, 0x45, 0x80, 0x00, 0x00, 0x00,
            0xde, 0xad, 0xbe, 0xef,
            0x00, 0x00, 0x00, 10,
            0x00, 0x00, 0x2e, 0xe0,
            // SDES: V=2 SC=1, PT=202, length 3 (= 4 words - 1)
            0x81, 202, 0x00, 0x03,
            0x11, 0x22, 0x33, 0x44,
            // CNAME (1), length 3, "cam", END (0), padding to a word boundary
            0x01, 0x03, b'c', b'a', b'm', 0x00, 0x00, 0x00,
        ];
        assert_eq!(&out[..], expected);
        let parsed = parse_compound(&out[2..]).unwrap();
        assert_eq!(
            parsed,
            vec![
                RtcpPacket::SenderReport(sr),
                RtcpPacket::Other {
                    packet_type: PT_SDES
                }
            ]
        );
    }

    #[test]
    fn long_cname_is_cut() {
        let mut out = BytesMut::new();
        let cname = "é".repeat(200); // 400 bytes
        write_sender_report(&mut out, &SenderReport::default(), &cname);
        assert_eq!(parse_compound(&out).unwrap().len(), 2);
        assert_eq!(out[28 + 8 + 1], 254); // cut at a char boundary below 255
    }

    #[test]
    fn receiver_report_round_trip() {
        let blocks = [
            ReportBlock {
                ssrc: 7,
                fraction_lost: 25,
                cumulative_lost: 1000,
                highest_seq: 0x0001_0005,
                jitter: 90,
                lsr: 0x2345_8000,
                dlsr: 65536,
            },
            ReportBlock {
                ssrc: 8,
                cumulative_lost: -3,
                ..Default::default()
            },
        ];
        let mut out = BytesMut::new();
        write_receiver_report(&mut out, 0xabcd, &blocks);
        assert_eq!(out.len(), 8 + 2 * 24);
        assert_eq!(&out[..4], &[0x82, 201, 0, 13]);
        // -3 as 24-bit two's complement.
        assert_eq!(&out[8 + 24 + 4..8 + 24 + 8], &[0, 0xff, 0xff, 0xfd]);
        assert_eq!(
            parse_compound(&out).unwrap(),
            vec![RtcpPacket::ReceiverReport {
                ssrc: 0xabcd,
                reports: blocks.to_vec()
            }]
        );
        // Out-of-range losses are clamped, more than 31 blocks are cut.
        let many = vec![
            ReportBlock {
                cumulative_lost: i32::MAX,
                ..Default::default()
            };
            40
        ];
        let mut out = BytesMut::new();
        write_receiver_report(&mut out, 1, &many);
        match &parse_compound(&out).unwrap()[0] {
            RtcpPacket::ReceiverReport { reports, .. } => {
                assert_eq!(reports.len(), 31);
                assert_eq!(reports[0].cumulative_lost, 0x7f_ffff);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_hand_made_rr_sdes_bye() {
        #[rustfmt::skip]
        let buf = [
            // RR with one block
            0x81, 201, 0, 7, 0, 0, 0, 1,
            0, 0, 0, 2, 0x10, 0x00, 0x00, 0x05, 0, 1, 0, 9, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5,
            // SDES CNAME "a"
            0x81, 202, 0, 2, 0, 0, 0, 1, 1, 1, b'a', 0,
            // BYE for two sources
            0x82, 203, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9,
        ];
        let p = parse_compound(&buf).unwrap();
        assert_eq!(
            p,
            vec![
                RtcpPacket::ReceiverReport {
                    ssrc: 1,
                    reports: vec![ReportBlock {
                        ssrc: 2,
                        fraction_lost: 0x10,
                        cumulative_lost: 5,
                        highest_seq: 0x0001_0009,
                        jitter: 3,
                        lsr: 4,
                        dlsr: 5
                    }]
                },
                RtcpPacket::Other {
                    packet_type: PT_SDES
                },
                RtcpPacket::Bye { ssrcs: vec![1, 9] },
            ]
        );
    }

    #[test]
    fn errors_carry_position() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        // Second packet claims 2 words but only has 1.
        let buf = [0x80, 201, 0, 1, 0, 0, 0, 1, 0x80, 201, 0, 2, 0, 0, 0, 1];
        assert_eq!(
            parse_compound(&buf),
            Err(RtcpError::Truncated {
                index: 1,
                offset: 8,
                needed: 12,
                available: 8
            })
        );
        let buf = [0x40, 201, 0, 1, 0, 0, 0, 1];
        assert!(matches!(
            parse_compound(&buf),
            Err(RtcpError::Version { version: 1, .. })
        ));
        // RR claiming one block but carrying none.
        let buf = [0x81, 201, 0, 1, 0, 0, 0, 1];
        assert!(matches!(
            parse_compound(&buf),
            Err(RtcpError::Malformed {
                index: 0,
                packet_type: 201,
                ..
            })
        ));
        // A malformed APP packet does not hide the RR after it.
        let buf = [0x80, 204, 0, 0, 0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            parse_compound(&buf).unwrap(),
            vec![
                RtcpPacket::Other { packet_type: 204 },
                RtcpPacket::ReceiverReport {
                    ssrc: 1,
                    reports: vec![]
                }
            ]
        );
    }
}
