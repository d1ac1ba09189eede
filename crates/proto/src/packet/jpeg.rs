//! Motion JPEG over RTP (RFC 2435), static payload type 26, with the ONVIF JPEG header
//! extension (ONVIF Streaming Specification, "JPEG over RTP") for frames RFC 2435 alone
//! cannot describe. Byte layouts and the choices made: docs/mjpeg.md.
//!
//! Packetizer: takes a complete baseline JFIF file and sends only the entropy-coded scan
//! data with the 8-byte main JPEG header (§3.1: type, Q, width/8, height/8, fragment
//! offset), the restart marker header when the file has a restart interval (§3.1.7, types
//! 64/65, F=L=1 and count 0x3FFF since fragments are not aligned to restart intervals),
//! and, in the first packet of each frame, the quantization table header (§3.1.8) with
//! Q=255 and the tables exactly as they are in the DQT segment. The marker bit is set on
//! the last packet of the frame.
//!
//! Plain RFC 2435 (the default, what every client reads) when [`jpeg_frame_info`] finds
//! it suffices: three components Y/Cb/Cr with Y sampled 2x1 (type 0) or 2x2 (type 1) and
//! chroma 1x1, Cb and Cr sharing one table, width and height multiples of 8 up to 2040, one
//! interleaved scan, and the standard Huffman tables of JPEG Annex K.3 (or no DHT).
//! Otherwise (any size up to 65535x65535, grayscale, other sampling factors, other
//! Huffman tables, several sequential scans) the first packet also carries the ONVIF JPEG
//! header extension (profile 0xFFD8): the file's DQT, SOF0, DHT, DRI, APP0 and APP14
//! segments in file order, 0xFF fill bytes, then its SOS; the width/height fields hold the
//! size in blocks where it fits in 8 bits and 0 otherwise.
//!
//! Depacketizer: reassembles the scan data by fragment offset. Without the extension it
//! rebuilds a decodable JFIF file from the RTP headers (RFC 2435 Appendix A: quantization
//! tables from Q for Q < 128; Appendix B: the frame, Huffman and scan headers), with the
//! in-band tables for Q >= 128 (cached for Q 128-254 when later frames omit them). With
//! the extension in the first packet (alone, or appended to the ONVIF replay extension
//! 0xABAC), the file is SOI, the extension's segments, what they lack derived as above,
//! the scan data and EOI: byte for byte the source file for what our packetizer sends. A
//! frame with a lost packet is dropped and the next frame marked lossy.
//!
//! Left out: types other than 0/1/64/65, restart-interval-aligned fragmentation (F/L/count
//! other than all ones are accepted but not used), Q=0 (tables of the previous frame),
//! header extensions continued over several packets (0xFFFF: a sender whose headers do
//! not fit in the first packet gets [`PacketizeError::MaxPayloadTooSmall`]; a receiver
//! ignores the continuation words), the SOF of the previous frame when the width and
//! height fields are 0 and the extension has no SOF0.
//!
//! Hand-written: no crate implements RFC 2435.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::{
    DepacketizeError, DepacketizedUnit, Depacketizer, PacketizeError, Packetizer, PayloadHead,
    RtpPayload, SeqStep, SeqTracker, MAX_ACCESS_UNIT,
};
use crate::rtp::RtpPacket;

const CODEC: &str = "JPEG";

/// The static RTP payload type of JPEG (RFC 3551 Table 5).
pub const PAYLOAD_TYPE: u8 = 26;

/// The largest scan the 24-bit fragment offset can address.
const MAX_SCAN: usize = 1 << 24;

/// Why a JPEG file cannot be sent with RFC 2435. Offsets are byte offsets in the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JpegError {
    #[error("not a JPEG file: no SOI marker")]
    NoSoi,
    #[error("truncated at byte {offset}: {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("expected a marker at byte {offset}, found {found:#04x}")]
    NotAMarker { offset: usize, found: u8 },
    #[error("marker {marker:#04x} at byte {offset}: not baseline sequential JPEG")]
    NotBaseline { marker: u8, offset: usize },
    #[error("unexpected marker {marker:#04x} at byte {offset}")]
    UnexpectedMarker { marker: u8, offset: usize },
    #[error("quantization table {id}: {reason}")]
    BadQuantTable { id: u8, reason: &'static str },
    #[error("quantization table {id} is used but not defined")]
    MissingQuantTable { id: u8 },
    #[error(
        "{width}x{height}: width and height must be 1 to 65535 (a height defined later by a \
         DNL marker is not supported)"
    )]
    Dimensions { width: u16, height: u16 },
    #[error("{0} components: only grayscale (1) and YCbCr (3) JPEG are sent")]
    Components(u8),
    #[error("{0} bytes of JPEG headers exceed the RTP header extension's 65535 words")]
    HeadersTooLarge(usize),
    #[error("no SOF0 frame header before the scan")]
    MissingFrameHeader,
    #[error("no SOS scan")]
    MissingScan,
    #[error(
        "scan header at byte {offset}: only one interleaved scan of every component, \
         coefficients 0 to 63 (baseline), is supported"
    )]
    BadScan { offset: usize },
    #[error("marker {marker:#04x} at byte {offset} after the scan: only one scan is supported")]
    MultipleScans { marker: u8, offset: usize },
    #[error("empty scan data")]
    EmptyScan,
    #[error("scan data of {0} bytes exceeds the 24-bit fragment offset")]
    TooLarge(usize),
    #[error("malformed {what} segment at byte {offset}")]
    BadSegment { what: &'static str, offset: usize },
}

/// What the server needs to know of a frame before sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u16,
    pub height: u16,
    /// RFC 2435 type: 0 (4:2:2) or 1 (4:2:0), plus 64 when restart markers are present.
    /// Frames sent with the header extension that are neither say 1 (its SOF0 rules).
    pub jpeg_type: u8,
    /// The DRI restart interval in MCUs, 0 if none.
    pub restart_interval: u16,
    /// RFC 2435 alone cannot describe the frame (size over 2040 or not a multiple of 8,
    /// grayscale, other sampling factors, other Huffman tables, Cb and Cr with different
    /// quantization tables): its first packet carries the ONVIF JPEG header extension.
    pub extension: bool,
}

struct ParsedJpeg<'a> {
    info: JpegInfo,
    /// Quantization table of the first component, and of the second (YCbCr only): the
    /// RFC 2435 quantization table header carries these.
    luma: &'a [u8],
    chroma: Option<&'a [u8]>,
    /// DQT, SOF0, DHT, DRI, APP0 and APP14 segments (marker included), in file order.
    headers: Vec<std::ops::Range<usize>>,
    /// The SOS segment, marker included.
    sos: std::ops::Range<usize>,
    scan: std::ops::Range<usize>,
}

/// A standard Huffman table (JPEG Annex K.3): class (0 DC, 1 AC), destination id (0 luma,
/// 1 chroma), code counts per length, symbols.
struct Huffman {
    class: u8,
    id: u8,
    bits: [u8; 16],
    vals: &'static [u8],
}

#[rustfmt::skip]
const STD_HUFFMAN: [Huffman; 4] = [
    Huffman {
        class: 0, id: 0,
        bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        vals: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    Huffman {
        class: 1, id: 0,
        bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
        vals: &[
            0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
            0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1,
            0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18,
            0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
            0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57,
            0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
            0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92,
            0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
            0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
            0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
            0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2,
            0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
        ],
    },
    Huffman {
        class: 0, id: 1,
        bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        vals: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    Huffman {
        class: 1, id: 1,
        bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
        vals: &[
            0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
            0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09,
            0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25,
            0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
            0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56,
            0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74,
            0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
            0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
            0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
            0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6,
            0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2,
            0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
        ],
    },
];

/// The JPEG Annex K.1 quantization tables in natural (row-major) order.
#[rustfmt::skip]
const LUMA_QUANT: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];
#[rustfmt::skip]
const CHROMA_QUANT: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
];
/// Natural-order index of the i-th coefficient in zig-zag order.
#[rustfmt::skip]
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// RFC 2435 Appendix A `MakeTables`: the luma and chroma tables for quality `q` (1-99;
/// clamped), in zig-zag order as they go in a DQT segment.
pub fn quant_tables_for_q(q: u8) -> ([u8; 64], [u8; 64]) {
    let q = u32::from(q.clamp(1, 99));
    let factor = if q < 50 { 5000 / q } else { 200 - q * 2 };
    let scale = |v: u8| ((u32::from(v) * factor + 50) / 100).clamp(1, 255) as u8;
    let mut luma = [0u8; 64];
    let mut chroma = [0u8; 64];
    for (i, &n) in ZIGZAG.iter().enumerate() {
        luma[i] = scale(LUMA_QUANT[n]);
        chroma[i] = scale(CHROMA_QUANT[n]);
    }
    (luma, chroma)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

/// Checks a DHT segment body: well formed, and whether its tables are the standard ones
/// (tables 2 and 3 do not matter: no scan RFC 2435 describes selects them).
fn check_dht(mut seg: &[u8], offset: usize) -> Result<bool, JpegError> {
    let bad = JpegError::BadSegment {
        what: "DHT",
        offset,
    };
    let mut all_standard = true;
    while let Some(&tc_th) = seg.first() {
        let (class, id) = (tc_th >> 4, tc_th & 0x0f);
        let bits = seg.get(1..17).ok_or_else(|| bad.clone())?;
        let total: usize = bits.iter().map(|&b| usize::from(b)).sum();
        let vals = seg.get(17..17 + total).ok_or_else(|| bad.clone())?;
        if class > 1 || id > 3 {
            return Err(bad);
        }
        let standard = STD_HUFFMAN.iter().find(|h| h.class == class && h.id == id);
        match standard {
            Some(h) if h.bits == bits && h.vals == vals => {}
            None => {}
            _ => all_standard = false,
        }
        seg = seg.get(17 + total..).unwrap_or_default();
    }
    Ok(all_standard)
}

/// End of the entropy-coded data starting at `from`: the position of the first marker
/// that is neither a stuffed 0xFF00 nor a restart marker; the marker itself.
fn scan_end(data: &[u8], from: usize) -> (usize, Option<u8>) {
    let mut i = from;
    while i + 1 < data.len() {
        if data[i] == 0xff {
            let m = data[i + 1];
            if m != 0x00 && !(0xd0..=0xd7).contains(&m) && m != 0xff {
                return (i, Some(m));
            }
        }
        i += 1;
    }
    (data.len(), None)
}

/// End of the entropy-coded data of the first scan starting at `from` and, for a
/// sequential file with more scans (one per component, as encoders write with optimized
/// Huffman tables), of the last one: the data up to EOI, tables and scan headers between
/// scans included, travels as scan data. Whether there was more than one scan.
fn scans_end(data: &[u8], from: usize) -> Result<(usize, bool), JpegError> {
    let (mut end, mut next) = scan_end(data, from);
    let mut multi = false;
    while let Some(marker) = next {
        // `end` is at the 0xFF of `marker`.
        match marker {
            0xd9 => break,
            0xc4 | 0xdb | 0xdd | 0xda | 0xfe | 0xe0..=0xef => {}
            _ => {
                return Err(JpegError::MultipleScans {
                    marker,
                    offset: end,
                })
            }
        }
        let len = be16(data, end + 2).ok_or(JpegError::Truncated {
            offset: end + 2,
            what: "segment length",
        })?;
        let seg_end = end + 2 + usize::from(len);
        if len < 2 || seg_end > data.len() {
            return Err(JpegError::Truncated {
                offset: end,
                what: "segment",
            });
        }
        if marker == 0xda {
            multi = true;
            (end, next) = scan_end(data, seg_end);
        } else {
            end = seg_end;
            while data.get(end + 1) == Some(&0xff) {
                end += 1;
            }
            next = match data.get(end..end + 2) {
                Some(&[0xff, m]) => Some(m),
                Some(_) => {
                    return Err(JpegError::NotAMarker {
                        offset: end,
                        found: data[end],
                    })
                }
                None => None,
            };
        }
    }
    Ok((end, multi))
}

/// A frame header component: id, sampling factors (H << 4 | V), quantization table id.
type Component = (u8, u8, u8);

/// Marker segments that travel in the header extension besides the tables and headers the
/// decoder needs: APP0 (JFIF/JFXX: pixel aspect ratio) and APP14 (Adobe: colour transform).
fn kept_app(marker: u8) -> bool {
    matches!(marker, 0xe0 | 0xee)
}

fn parse_jfif(data: &[u8]) -> Result<ParsedJpeg<'_>, JpegError> {
    if data.get(..2) != Some(&[0xff, 0xd8]) {
        return Err(JpegError::NoSoi);
    }
    let mut tables: [Option<&[u8]>; 4] = [None; 4];
    // Width, height, components.
    let mut sof: Option<(u16, u16, Vec<Component>)> = None;
    let mut restart_interval = 0u16;
    let mut standard_huffman = true;
    let mut headers = Vec::new();
    let mut pos = 2;
    loop {
        let &b = data.get(pos).ok_or(JpegError::Truncated {
            offset: pos,
            what: "missing marker",
        })?;
        if b != 0xff {
            return Err(JpegError::NotAMarker {
                offset: pos,
                found: b,
            });
        }
        while data.get(pos + 1) == Some(&0xff) {
            pos += 1; // fill bytes
        }
        let &marker = data.get(pos + 1).ok_or(JpegError::Truncated {
            offset: pos,
            what: "missing marker",
        })?;
        let offset = pos;
        pos += 2;
        match marker {
            0x01 | 0xd0..=0xd7 => continue,
            0xd9 => return Err(JpegError::MissingScan),
            0xd8 => return Err(JpegError::UnexpectedMarker { marker, offset }),
            _ => {}
        }
        let len = usize::from(be16(data, pos).ok_or(JpegError::Truncated {
            offset: pos,
            what: "segment length",
        })?);
        let seg = data
            .get(pos + 2..pos + len.max(2))
            .ok_or(JpegError::Truncated {
                offset: pos,
                what: "segment",
            })?;
        let segment = offset..pos + len.max(2);
        let bad = |what| JpegError::BadSegment { what, offset };
        match marker {
            0xdb => {
                let mut rest = seg;
                while let Some(&pq_tq) = rest.first() {
                    let id = pq_tq & 0x0f;
                    if pq_tq >> 4 != 0 {
                        return Err(JpegError::BadQuantTable {
                            id,
                            reason: "16-bit precision (not baseline)",
                        });
                    }
                    let table = rest.get(1..65).ok_or(bad("DQT"))?;
                    let slot = tables
                        .get_mut(usize::from(id))
                        .ok_or(JpegError::BadQuantTable {
                            id,
                            reason: "id above 3",
                        })?;
                    *slot = Some(table);
                    rest = rest.get(65..).unwrap_or_default();
                }
                headers.push(segment);
            }
            0xc0 => {
                let &[precision, h0, h1, w0, w1, n, ..] = seg else {
                    return Err(bad("SOF0"));
                };
                if precision != 8 {
                    return Err(JpegError::NotBaseline { marker, offset });
                }
                if n != 1 && n != 3 {
                    return Err(JpegError::Components(n));
                }
                let c = seg
                    .get(6..6 + 3 * usize::from(n))
                    .ok_or(bad("SOF0"))?
                    .chunks_exact(3)
                    .map(|c| (c[0], c[1], c[2]))
                    .collect::<Vec<_>>();
                if c.iter().any(|&(_, hv, _)| {
                    !(1..=4).contains(&(hv >> 4)) || !(1..=4).contains(&(hv & 15))
                }) {
                    return Err(bad("SOF0"));
                }
                sof = Some((
                    u16::from_be_bytes([w0, w1]),
                    u16::from_be_bytes([h0, h1]),
                    c,
                ));
                headers.push(segment);
            }
            0xc1..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Err(JpegError::NotBaseline { marker, offset });
            }
            0xc4 => {
                standard_huffman &= check_dht(seg, offset)?;
                headers.push(segment);
            }
            0xdd => {
                restart_interval = be16(seg, 0).ok_or(bad("DRI"))?;
                headers.push(segment);
            }
            0xda => {
                let (width, height, comps) = sof.ok_or(JpegError::MissingFrameHeader)?;
                // Baseline: full spectrum, components of the frame.
                let ns = usize::from(*seg.first().ok_or(bad("SOS"))?);
                let sel = seg.get(1..1 + 2 * ns).ok_or(bad("SOS"))?;
                if ns == 0
                    || seg.get(1 + 2 * ns..4 + 2 * ns) != Some(&[0, 63, 0][..])
                    || sel
                        .chunks_exact(2)
                        .any(|s| !comps.iter().any(|c| c.0 == s[0]))
                {
                    return Err(JpegError::BadScan { offset });
                }
                if width == 0 || height == 0 {
                    return Err(JpegError::Dimensions { width, height });
                }
                let table = |id: u8| {
                    tables
                        .get(usize::from(id))
                        .copied()
                        .flatten()
                        .ok_or(JpegError::MissingQuantTable { id })
                };
                for c in &comps {
                    table(c.2)?;
                }
                let luma = table(comps[0].2)?;
                let chroma = match comps.get(1) {
                    Some(c) => Some(table(c.2)?),
                    None => None,
                };
                let start = pos + len;
                let (end, multi_scan) = scans_end(data, start)?;
                if end <= start {
                    return Err(JpegError::EmptyScan);
                }
                if end - start > MAX_SCAN {
                    return Err(JpegError::TooLarge(end - start));
                }
                // What RFC 2435 alone can describe (§3.1.3, §3.1.5, §3.1.6, Appendix B).
                let samplings: Vec<u8> = comps.iter().map(|c| c.1).collect();
                let base_type = match samplings[..] {
                    [0x21, 0x11, 0x11] => Some(0),
                    [0x22, 0x11, 0x11] => Some(1),
                    _ => None,
                };
                let plain = base_type.is_some()
                    && !multi_scan
                    && comps[1].2 == comps[2].2
                    && standard_huffman
                    && sel == [comps[0].0, 0x00, comps[1].0, 0x11, comps[2].0, 0x11]
                    && width % 8 == 0
                    && height % 8 == 0
                    && width <= 2040
                    && height <= 2040;
                return Ok(ParsedJpeg {
                    info: JpegInfo {
                        width,
                        height,
                        jpeg_type: base_type.unwrap_or(1)
                            | if restart_interval > 0 { 64 } else { 0 },
                        restart_interval,
                        extension: !plain,
                    },
                    luma,
                    chroma,
                    headers,
                    sos: offset..start,
                    scan: start..end,
                });
            }
            m if kept_app(m) => headers.push(segment),
            // Other APPn, COM, DNL before the scan, JPG extensions: not sent.
            _ => {}
        }
        pos += len.max(2);
    }
}

/// Checks that a JFIF file can be sent (RFC 2435 alone, or with the ONVIF JPEG header
/// extension) and returns its size and type.
pub fn jpeg_frame_info(jfif: &[u8]) -> Result<JpegInfo, JpegError> {
    parse_jfif(jfif).map(|p| p.info)
}

/// Profile identifier of the ONVIF JPEG header extension in the first packet of a frame
/// (the SOI marker); [`JPEG_EXT_CONTINUED`] in later packets.
pub const JPEG_EXT_INITIAL: u16 = 0xffd8;
/// Profile identifier of the ONVIF JPEG header extension in a frame's later packets.
pub const JPEG_EXT_CONTINUED: u16 = 0xffff;

/// The body of the ONVIF JPEG header extension for a parsed frame: the kept marker
/// segments in file order, 0xFF fill bytes up to a multiple of 4, then the SOS segment
/// (fill bytes may precede a marker but must not follow the SOS).
fn header_extension(data: &[u8], jpeg: &ParsedJpeg<'_>) -> Vec<u8> {
    let len: usize = jpeg.headers.iter().map(|r| r.len()).sum::<usize>() + jpeg.sos.len();
    let fill = (4 - len % 4) % 4;
    let mut ext = Vec::with_capacity(len + fill);
    for r in &jpeg.headers {
        ext.extend_from_slice(&data[r.clone()]);
    }
    ext.resize(ext.len() + fill, 0xff);
    ext.extend_from_slice(&data[jpeg.sos.clone()]);
    ext
}

/// Sends complete JFIF files as RFC 2435 payloads, with the ONVIF JPEG header extension
/// on the first packet of frames that RFC 2435 alone cannot describe.
#[derive(Debug)]
pub struct JpegPacketizer {
    max_payload: usize,
}

impl JpegPacketizer {
    pub fn new(max_payload: usize) -> Self {
        JpegPacketizer { max_payload }
    }
}

/// The RFC 2435 width or height field: the size in 8-pixel blocks, rounded up, or 0 where
/// it does not fit in 8 bits (the header extension's SOF0 then gives the size).
fn size_field(pixels: u16) -> u8 {
    u8::try_from(pixels.div_ceil(8)).unwrap_or(0)
}

impl Packetizer for JpegPacketizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        if au.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        let jpeg = parse_jfif(au)?;
        let info = jpeg.info;
        let ext = info.extension.then(|| header_extension(au, &jpeg));
        // The extension's length field counts 32-bit words in 16 bits.
        if let Some(e) = &ext {
            if e.len() / 4 > usize::from(u16::MAX) {
                return Err(JpegError::HeadersTooLarge(e.len()).into());
            }
        }
        let ext_len = ext.as_ref().map_or(0, |e| 4 + e.len());
        let restart = info.restart_interval > 0;
        let fixed = 8 + if restart { 4 } else { 0 };
        let qlen = 64 * (1 + usize::from(jpeg.chroma.is_some()));
        let first = fixed + 4 + qlen;
        // The extension rides in the first packet's RTP header: its payload is shorter.
        if self.max_payload <= first + ext_len {
            return Err(PacketizeError::MaxPayloadTooSmall {
                codec: CODEC,
                max_payload: self.max_payload,
                needed: first + ext_len + 1,
            });
        }
        let scan = &au[jpeg.scan];
        let mut header_ext = ext.map(Bytes::from);
        let mut offset = 0;
        while offset < scan.len() {
            let header_len = if offset == 0 { first + ext_len } else { fixed };
            let end = (offset + self.max_payload - header_len).min(scan.len());
            let mut p = BytesMut::with_capacity(header_len + end - offset);
            // Main JPEG header: type-specific, fragment offset, type, Q, width/8, height/8.
            p.put_u8(0);
            p.put_uint(offset as u64, 3);
            p.put_u8(info.jpeg_type);
            p.put_u8(255);
            p.put_u8(size_field(info.width));
            p.put_u8(size_field(info.height));
            if restart {
                // Restart interval; F=1, L=1, restart count 0x3FFF.
                p.put_u16(info.restart_interval);
                p.put_u16(0xffff);
            }
            if offset == 0 {
                // Quantization table header: MBZ, precision (8-bit), length.
                p.put_u8(0);
                p.put_u8(0);
                p.put_u16(qlen as u16);
                p.put_slice(jpeg.luma);
                if let Some(chroma) = jpeg.chroma {
                    p.put_slice(chroma);
                }
            }
            p.put_slice(&scan[offset..end]);
            out.push(RtpPayload {
                head: PayloadHead::NONE,
                body: p.freeze(),
                marker: end == scan.len(),
                ts_offset: 0,
                header_ext: header_ext.take(),
            });
            offset = end;
        }
        Ok(())
    }
}

/// Rebuilds a JFIF file from RFC 2435 header fields (Appendix B) and the scan data.
/// `tables` are (precision, table) pairs in DQT order: id 0 luma, id 1 chroma.
fn build_jfif(
    jpeg_type: u8,
    width: u16,
    height: u16,
    restart_interval: u16,
    tables: &[(u8, &[u8])],
    scan: &[u8],
) -> Bytes {
    let mut f = BytesMut::with_capacity(scan.len() + 700);
    f.put_slice(&[0xff, 0xd8]);
    // APP0 JFIF 1.01, no density, no thumbnail.
    f.put_slice(&[0xff, 0xe0, 0, 16]);
    f.put_slice(b"JFIF\0");
    f.put_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
    let dqt_len: usize = 2 + tables.iter().map(|(_, t)| 1 + t.len()).sum::<usize>();
    f.put_slice(&[0xff, 0xdb]);
    f.put_u16(dqt_len as u16);
    for (id, (precision, table)) in tables.iter().enumerate() {
        f.put_u8((precision << 4) | id as u8);
        f.put_slice(table);
    }
    // SOF0 (SOF1 if a table is 16-bit, which baseline does not allow).
    let extended = tables.iter().any(|(p, _)| *p != 0);
    f.put_slice(&[0xff, if extended { 0xc1 } else { 0xc0 }, 0, 17, 8]);
    f.put_u16(height);
    f.put_u16(width);
    let chroma_table = u8::from(tables.len() > 1);
    let y_sampling = if jpeg_type & 1 == 1 { 0x22 } else { 0x21 };
    f.put_slice(&[
        3,
        1,
        y_sampling,
        0,
        2,
        0x11,
        chroma_table,
        3,
        0x11,
        chroma_table,
    ]);
    if restart_interval > 0 {
        f.put_slice(&[0xff, 0xdd, 0, 4]);
        f.put_u16(restart_interval);
    }
    let dht_len: usize = 2 + STD_HUFFMAN.iter().map(|h| 17 + h.vals.len()).sum::<usize>();
    f.put_slice(&[0xff, 0xc4]);
    f.put_u16(dht_len as u16);
    for h in &STD_HUFFMAN {
        f.put_u8((h.class << 4) | h.id);
        f.put_slice(&h.bits);
        f.put_slice(h.vals);
    }
    f.put_slice(&[0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    f.put_slice(scan);
    if !scan.ends_with(&[0xff, 0xd9]) {
        f.put_slice(&[0xff, 0xd9]);
    }
    f.freeze()
}

/// The marker segments of a JPEG header extension payload: (marker, range of the whole
/// segment, marker included), fill bytes skipped. Only segments with a length field are
/// allowed, and nothing after an SOS (ONVIF: the SOS, if present, is the last marker).
fn ext_segments(ext: &[u8]) -> Result<Vec<(u8, std::ops::Range<usize>)>, &'static str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < ext.len() {
        if ext[pos] != 0xff {
            return Err("header extension: expected a marker");
        }
        let Some(&marker) = ext.get(pos + 1) else {
            // Trailing fill byte.
            break;
        };
        if marker == 0xff {
            pos += 1;
            continue;
        }
        if matches!(marker, 0x00 | 0x01 | 0xd0..=0xd9) {
            return Err("header extension: marker without a segment");
        }
        if out.last().is_some_and(|(m, _): &(u8, _)| *m == 0xda) {
            return Err("header extension: marker after the SOS");
        }
        let len = be16(ext, pos + 2).ok_or("header extension: truncated segment")?;
        let end = pos + 2 + usize::from(len);
        if len < 2 || end > ext.len() {
            return Err("header extension: truncated segment");
        }
        out.push((marker, pos..end));
        pos = end;
    }
    Ok(out)
}

/// Rebuilds a JFIF file from a header extension (ONVIF Streaming "Logical decoding
/// specification"): SOI, the extension's segments, then what it lacks derived from the
/// RFC 2435 header as [`build_jfif`] does (DQT, SOF0, DRI, DHT, SOS), the scan and EOI.
fn build_from_ext(
    ext: &[u8],
    segments: &[(u8, std::ops::Range<usize>)],
    header: [u8; 4],
    restart_interval: u16,
    tables: &[(u8, &[u8])],
    scan: &[u8],
) -> Option<Bytes> {
    let has = |m: u8| segments.iter().any(|(s, _)| *s == m);
    let derived = |f: &mut BytesMut, marker: u8| {
        // The segment `marker` as build_jfif writes it.
        let [jpeg_type, _, w, h] = header;
        let full = build_jfif(
            jpeg_type,
            u16::from(w) * 8,
            u16::from(h) * 8,
            restart_interval,
            tables,
            &[],
        );
        if let Ok(segs) = ext_segments(&full[2..full.len() - 2]) {
            for (m, r) in segs {
                if m == marker {
                    f.put_slice(&full[2 + r.start..2 + r.end]);
                }
            }
        }
    };
    let mut f = BytesMut::with_capacity(ext.len() + scan.len() + 700);
    f.put_slice(&[0xff, 0xd8]);
    for (m, r) in segments {
        if *m != 0xda {
            f.put_slice(&ext[r.clone()]);
        }
    }
    if !has(0xdb) {
        derived(&mut f, 0xdb);
    }
    if !has(0xc0) {
        if header[2] == 0 || header[3] == 0 {
            return None;
        }
        derived(&mut f, 0xc0);
    }
    if !has(0xdd) && restart_interval > 0 {
        derived(&mut f, 0xdd);
    }
    if !has(0xc4) {
        derived(&mut f, 0xc4);
    }
    match segments.iter().find(|(m, _)| *m == 0xda) {
        Some((_, r)) => f.put_slice(&ext[r.clone()]),
        None => derived(&mut f, 0xda),
    }
    f.put_slice(scan);
    if !scan.ends_with(&[0xff, 0xd9]) {
        f.put_slice(&[0xff, 0xd9]);
    }
    Some(f.freeze())
}

/// A header extension payload and its segments (see [`ext_segments`]).
type FrameExt = (Bytes, Vec<(u8, std::ops::Range<usize>)>);

#[derive(Debug)]
struct Frame {
    timestamp: u32,
    /// The header extension of the first packet and its segments, if it had one.
    ext: Option<FrameExt>,
    /// type, Q, width/8, height/8 as in the first packet.
    header: [u8; 4],
    restart_interval: u16,
    /// (precision, table) for Q >= 128.
    tables: Vec<(u8, Bytes)>,
    data: BytesMut,
    broken: bool,
}

/// Reassembles RFC 2435 frames into JFIF files.
#[derive(Debug, Default)]
pub struct JpegDepacketizer {
    seq: SeqTracker,
    frame: Option<Frame>,
    /// In-band tables of Q 128-254, which later frames may omit (length 0).
    table_cache: Vec<(u8, Vec<(u8, Bytes)>)>,
    carry_loss: bool,
    ready: VecDeque<DepacketizedUnit>,
}

impl JpegDepacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn finish(&mut self) {
        let Some(frame) = self.frame.take() else {
            return;
        };
        if frame.broken || frame.data.is_empty() {
            self.carry_loss = true;
            return;
        }
        let [jpeg_type, q, w, h] = frame.header;
        let computed;
        let tables: Vec<(u8, &[u8])> = if q < 128 {
            computed = quant_tables_for_q(q);
            vec![(0, &computed.0[..]), (0, &computed.1[..])]
        } else {
            frame.tables.iter().map(|(p, t)| (*p, &t[..])).collect()
        };
        let jfif = match &frame.ext {
            Some((ext, segments)) => {
                let Some(f) = build_from_ext(
                    ext,
                    segments,
                    frame.header,
                    frame.restart_interval,
                    &tables,
                    &frame.data,
                ) else {
                    self.carry_loss = true;
                    return;
                };
                f
            }
            None => build_jfif(
                jpeg_type,
                u16::from(w) * 8,
                u16::from(h) * 8,
                frame.restart_interval,
                &tables,
                &frame.data,
            ),
        };
        self.ready.push_back(DepacketizedUnit {
            timestamp: frame.timestamp,
            data: jfif,
            keyframe: true,
            loss: std::mem::take(&mut self.carry_loss),
        });
    }

    /// Splits a quantization table header's data into tables by the precision bits.
    fn split_tables(precision: u8, mut data: &[u8]) -> Option<Vec<(u8, Bytes)>> {
        let mut tables = Vec::new();
        for i in 0..8 {
            if data.is_empty() {
                break;
            }
            let p = (precision >> i) & 1;
            let len = if p == 1 { 128 } else { 64 };
            tables.push((p, Bytes::copy_from_slice(data.get(..len)?)));
            data = data.get(len..)?;
        }
        if tables.is_empty() || !data.is_empty() {
            return None;
        }
        if tables.len() == 1 {
            // One table for all components.
            let t = tables[0].clone();
            tables.push(t);
        }
        tables.truncate(2);
        Some(tables)
    }

    fn payload(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        let seq = pkt.sequence();
        let malformed = |reason| DepacketizeError::Malformed {
            codec: CODEC,
            seq,
            reason,
        };
        let p = pkt.payload();
        if p.is_empty() {
            return Err(DepacketizeError::EmptyPayload { codec: CODEC, seq });
        }
        let Some(&[_, o0, o1, o2, jpeg_type, q, w, h]) = p.get(..8) else {
            return Err(malformed("shorter than the main JPEG header"));
        };
        let offset = u32::from_be_bytes([0, o0, o1, o2]) as usize;
        if !matches!(jpeg_type, 0 | 1 | 64 | 65) {
            return Err(DepacketizeError::Unsupported {
                codec: CODEC,
                seq,
                packet_type: jpeg_type,
            });
        }
        if q == 0 {
            return Err(malformed("Q=0 is reserved"));
        }
        // The JPEG header extension of a frame's first packet (ONVIF Streaming), alone or
        // behind the replay extension.
        let ext = match pkt.jpeg_header_ext().filter(|e| e.initial && offset == 0) {
            Some(e) => {
                let segments = ext_segments(e.data).map_err(malformed)?;
                Some((Bytes::copy_from_slice(e.data), segments))
            }
            None => None,
        };
        let has_sof = |e: &Option<FrameExt>| {
            e.as_ref()
                .is_some_and(|(_, s)| s.iter().any(|(m, _)| *m == 0xc0))
        };
        let continued = offset > 0 && self.frame.as_ref().is_some_and(|f| has_sof(&f.ext));
        if (w == 0 || h == 0) && !has_sof(&ext) && !continued {
            return Err(malformed(
                "width or height 0 without a SOF0 in a JPEG header extension",
            ));
        }
        let mut rest = p.get(8..).unwrap_or_default();
        let mut restart_interval = 0;
        if jpeg_type >= 64 {
            restart_interval = be16(rest, 0).ok_or(malformed("no restart marker header"))?;
            rest = rest.get(4..).ok_or(malformed("no restart marker header"))?;
        }
        let mut tables = Vec::new();
        if q >= 128 && offset == 0 {
            let Some(&[_, precision, l0, l1]) = rest.get(..4) else {
                return Err(malformed("no quantization table header"));
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            let data = rest
                .get(4..4 + len)
                .ok_or(malformed("quantization tables past the end"))?;
            rest = rest.get(4 + len..).unwrap_or_default();
            if len == 0 {
                tables = self
                    .table_cache
                    .iter()
                    .find(|(cq, _)| *cq == q && q != 255)
                    .map(|(_, t)| t.clone())
                    .ok_or(malformed("no quantization tables for this Q"))?;
            } else {
                tables = Self::split_tables(precision, data)
                    .ok_or(malformed("quantization table length does not match"))?;
                if q != 255 {
                    self.table_cache.retain(|(cq, _)| *cq != q);
                    self.table_cache.push((q, tables.clone()));
                }
            }
        }
        let header = [jpeg_type, q, w, h];
        if offset == 0 {
            if self.frame.is_some() {
                // A new first packet with the same timestamp: start over.
                self.frame = None;
                self.carry_loss = true;
            }
            self.frame = Some(Frame {
                timestamp: pkt.timestamp(),
                ext,
                header,
                restart_interval,
                tables,
                data: BytesMut::new(),
                broken: false,
            });
        }
        let Some(frame) = &mut self.frame else {
            // The first packet of this frame was lost.
            self.carry_loss = true;
            return Ok(());
        };
        if frame.header != header {
            frame.broken = true;
            return Err(malformed("JPEG header changed within a frame"));
        }
        if offset != frame.data.len() {
            frame.broken = true;
        } else if frame.data.len() + rest.len() > MAX_ACCESS_UNIT {
            frame.broken = true;
            return Err(DepacketizeError::TooLarge {
                codec: CODEC,
                seq,
                limit: MAX_ACCESS_UNIT,
            });
        } else if !frame.broken {
            frame.data.put_slice(rest);
        }
        Ok(())
    }
}

impl Depacketizer for JpegDepacketizer {
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        match self.seq.step(pkt.sequence()) {
            SeqStep::Old => return Ok(()),
            SeqStep::Gap => match &mut self.frame {
                Some(f) => f.broken = true,
                None => self.carry_loss = true,
            },
            SeqStep::InOrder => {}
        }
        if self
            .frame
            .as_ref()
            .is_some_and(|f| f.timestamp != pkt.timestamp())
        {
            // The previous frame never got its marker: incomplete.
            if let Some(f) = &mut self.frame {
                f.broken = true;
            }
            self.finish();
        }
        let r = self.payload(pkt);
        if r.is_err() {
            match &mut self.frame {
                Some(f) => f.broken = true,
                None => self.carry_loss = true,
            }
        }
        if pkt.marker() {
            self.finish();
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

    const F420: &[u8] = include_bytes!("../../testdata/packet/testsrc-320x240-420.jpg");
    const F420_RST: &[u8] = include_bytes!("../../testdata/packet/testsrc-320x240-420-restart.jpg");
    const F422: &[u8] = include_bytes!("../../testdata/packet/testsrc-320x240-422.jpg");
    const F422_RST: &[u8] = include_bytes!("../../testdata/packet/testsrc-320x240-422-restart.jpg");

    fn all_files() -> [(&'static str, &'static [u8], u8, u16); 4] {
        [
            ("420", F420, 1, 0),
            ("420-restart", F420_RST, 65, 20),
            ("422", F422, 0, 0),
            ("422-restart", F422_RST, 64, 3),
        ]
    }

    fn packetize(max: usize, jfif: &[u8]) -> Vec<RtpPayload> {
        let mut out = Vec::new();
        JpegPacketizer::new(max)
            .packetize(&Bytes::copy_from_slice(jfif), &mut out)
            .unwrap();
        out
    }

    /// Position of the first `marker` segment in a test file.
    fn find_marker(data: &[u8], marker: u8) -> usize {
        data.windows(2).position(|w| w == [0xff, marker]).unwrap()
    }

    #[test]
    fn frame_info_of_test_files() {
        for (name, data, jpeg_type, restart_interval) in all_files() {
            assert_eq!(
                jpeg_frame_info(data),
                Ok(JpegInfo {
                    width: 320,
                    height: 240,
                    jpeg_type,
                    restart_interval,
                    extension: false,
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn packet_layout() {
        for (name, data, jpeg_type, dri) in all_files() {
            let max = 1000;
            let out = packetize(max, data);
            let scan_len = parse_jfif(data).unwrap().scan.len();
            let fixed = if dri > 0 { 12 } else { 8 };
            assert!(out.iter().all(|p| p.to_bytes().len() <= max), "{name}");
            assert_eq!(out.iter().filter(|p| p.marker).count(), 1);
            assert!(out.last().unwrap().marker);
            let mut expected_offset = 0;
            for (i, p) in out.iter().enumerate() {
                let d = &p.to_bytes();
                let offset = u32::from_be_bytes([0, d[1], d[2], d[3]]) as usize;
                assert_eq!(offset, expected_offset, "{name} packet {i}");
                assert_eq!(&d[4..8], &[jpeg_type, 255, 40, 30]);
                if dri > 0 {
                    assert_eq!(&d[8..12], &[(dri >> 8) as u8, dri as u8, 0xff, 0xff]);
                }
                let header = if i == 0 {
                    assert_eq!(&d[fixed..fixed + 4], &[0, 0, 0, 128]);
                    fixed + 132
                } else {
                    fixed
                };
                expected_offset += d.len() - header;
            }
            assert_eq!(expected_offset, scan_len, "{name}");
            // The tables are the DQT bytes of the file.
            let dqt = find_marker(data, 0xdb);
            assert_eq!(
                &out[0].to_bytes()[fixed + 4..fixed + 68],
                &data[dqt + 5..dqt + 69]
            );
        }
    }

    #[test]
    fn round_trip_rebuilds_the_same_scan_and_tables() {
        for (name, data, _, _) in all_files() {
            for max in [200, 1400, 65000] {
                let packets = to_packets(&packetize(max, data), 1, 90_000);
                let (units, errors) = feed(&mut JpegDepacketizer::new(), &packets);
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert_eq!(units.len(), 1);
                let u = &units[0];
                assert!(u.keyframe && !u.loss);
                assert_eq!(u.timestamp, 90_000);
                let orig = parse_jfif(data).unwrap();
                let rebuilt = parse_jfif(&u.data).unwrap();
                assert_eq!(rebuilt.info, orig.info, "{name}");
                assert_eq!(rebuilt.luma, orig.luma);
                assert_eq!(rebuilt.chroma, orig.chroma);
                assert_eq!(&u.data[rebuilt.scan], &data[orig.scan]);
                assert!(u.data.ends_with(&[0xff, 0xd9]));
            }
        }
    }

    /// Decodes with ffmpeg and compares pixels. Fails where ffmpeg is missing
    /// (scripts/test.sh installs it).
    #[test]
    fn round_trip_decodes_with_ffmpeg_to_the_same_pixels() {
        use std::process::Command;
        let dir = std::env::temp_dir().join(format!("ipcamd-jpeg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let decode = |path: &std::path::Path| {
            Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(path)
                .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
                .output()
        };
        for (name, data, _, _) in all_files() {
            let orig_path = dir.join(format!("{name}-orig.jpg"));
            std::fs::write(&orig_path, data).unwrap();
            let orig = decode(&orig_path)
                .unwrap_or_else(|e| panic!("ffmpeg is needed (apt-get install ffmpeg): {e}"));
            assert!(orig.status.success());
            let packets = to_packets(&packetize(1400, data), 0, 0);
            let (units, _) = feed(&mut JpegDepacketizer::new(), &packets);
            let path = dir.join(format!("{name}-rtp.jpg"));
            std::fs::write(&path, &units[0].data).unwrap();
            let rebuilt = decode(&path).unwrap();
            assert!(
                rebuilt.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&rebuilt.stderr)
            );
            assert!(
                rebuilt.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&rebuilt.stderr)
            );
            assert_eq!(rebuilt.stdout.len(), 320 * 240 * 3, "{name}");
            assert!(rebuilt.stdout == orig.stdout, "{name}: pixels differ");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn loss_drops_the_frame_and_marks_the_next() {
        let mut packets = to_packets(&packetize(1000, F420), 0, 0);
        let n = packets.len() as u16;
        packets.extend(to_packets(&packetize(1000, F420), n, 3000));
        packets.extend(to_packets(&packetize(1000, F420), 2 * n, 6000));
        packets.remove(3);
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(
            units
                .iter()
                .map(|u| (u.timestamp, u.loss))
                .collect::<Vec<_>>(),
            vec![(3000, true), (6000, false)]
        );
        // Losing the marker packet: the frame is dropped when the next one starts.
        let mut packets = to_packets(&packetize(1000, F420), 0, 0);
        packets.extend(to_packets(&packetize(1000, F420), n, 3000));
        packets.remove(n as usize - 1);
        let (units, _) = feed(&mut JpegDepacketizer::new(), &packets);
        assert_eq!(
            units
                .iter()
                .map(|u| (u.timestamp, u.loss))
                .collect::<Vec<_>>(),
            vec![(3000, true)]
        );
    }

    #[test]
    fn q_below_128_uses_appendix_a_tables() {
        let (luma, chroma) = quant_tables_for_q(50);
        assert_eq!(&luma[..8], &[16, 11, 12, 14, 12, 10, 16, 14]);
        assert_eq!(&chroma[..8], &[17, 18, 18, 24, 21, 24, 47, 26]);
        assert!(quant_tables_for_q(99)
            .0
            .iter()
            .all(|&v| (1..=2).contains(&v)));
        assert_eq!(quant_tables_for_q(1).0[0], 255);
        // A hand-made frame with Q=50, one packet.
        let jpeg = parse_jfif(F420).unwrap();
        let mut p = vec![0, 0, 0, 0, 1, 50, 40, 30];
        p.extend_from_slice(&F420[jpeg.scan]);
        let packets = to_packets(
            &[RtpPayload {
                head: PayloadHead::NONE,
                body: Bytes::from(p),
                marker: true,
                ts_offset: 0,
                header_ext: None,
            }],
            0,
            0,
        );
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &packets);
        assert!(errors.is_empty());
        let rebuilt = parse_jfif(&units[0].data).unwrap();
        assert_eq!(rebuilt.luma, &luma[..]);
        assert_eq!(rebuilt.chroma, Some(&chroma[..]));
    }

    #[test]
    fn cached_tables_for_q_128_to_254() {
        let mut payloads = packetize(1000, F420);
        for p in &mut payloads {
            let mut d = p.to_bytes().to_vec();
            d[5] = 200;
            p.body = Bytes::from(d);
        }
        // Second frame: same Q, table header with length 0.
        let mut second = payloads.clone();
        let mut d = second[0].to_bytes().to_vec();
        d.splice(8..8 + 4 + 128, [0, 0, 0, 0]);
        second[0].body = Bytes::from(d);
        let mut packets = to_packets(&payloads, 0, 0);
        packets.extend(to_packets(&second, payloads.len() as u16, 3000));
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &packets);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].data, units[1].data);
        // Without a cached table the frame cannot be rebuilt.
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &to_packets(&second, 0, 0));
        assert!(units.is_empty());
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn extension_for_what_rfc_2435_cannot_carry() {
        let sof = find_marker(F420, 0xc0);
        let ext = |f: &[u8]| jpeg_frame_info(f).map(|i| i.extension);
        assert_eq!(ext(F420), Ok(false));
        // Chroma sampled 1x2 (as ffmpeg writes 4:2:2).
        let mut f = F420.to_vec();
        f[sof + 14] = 0x12;
        assert_eq!(ext(&f), Ok(true));
        // Width not a multiple of 8.
        let mut f = F420.to_vec();
        f[sof + 8] = 0x41; // 0x0141 = 321
        assert_eq!(ext(&f), Ok(true));
        // A changed Huffman table.
        let mut f = F420.to_vec();
        let dht = find_marker(&f, 0xc4);
        f[dht + 30] ^= 1;
        assert_eq!(ext(&f), Ok(true));
        // Height 0 (DNL) cannot be sent.
        let mut f = F420.to_vec();
        f[sof + 5] = 0;
        f[sof + 6] = 0;
        assert!(matches!(
            jpeg_frame_info(&f),
            Err(JpegError::Dimensions { height: 0, .. })
        ));
        // Two components.
        let mut f = F420.to_vec();
        f[sof + 9] = 2;
        assert_eq!(jpeg_frame_info(&f), Err(JpegError::Components(2)));
        // Progressive.
        let mut f = F420.to_vec();
        f[sof + 1] = 0xc2;
        assert!(matches!(
            jpeg_frame_info(&f),
            Err(JpegError::NotBaseline { marker: 0xc2, .. })
        ));
        // No SOI, truncation, no scan.
        assert_eq!(jpeg_frame_info(&F420[1..]), Err(JpegError::NoSoi));
        assert!(jpeg_frame_info(&F420[..100]).is_err());
        assert!(matches!(
            jpeg_frame_info(&F420[..sof + 5]),
            Err(JpegError::Truncated { .. })
        ));
        assert_eq!(
            jpeg_frame_info(&[0xff, 0xd8, 0xff, 0xd9]),
            Err(JpegError::MissingScan)
        );
        // Missing EOI is tolerated: the scan runs to the end.
        let info = jpeg_frame_info(&F420[..F420.len() - 2]).unwrap();
        assert_eq!(info.width, 320);
        // Packetizer surfaces the error.
        let mut out = Vec::new();
        assert!(matches!(
            JpegPacketizer::new(1400).packetize(&Bytes::from_static(b"nope"), &mut out),
            Err(PacketizeError::Jpeg(JpegError::NoSoi))
        ));
        assert!(matches!(
            JpegPacketizer::new(140).packetize(&Bytes::from_static(F420), &mut out),
            Err(PacketizeError::MaxPayloadTooSmall { needed: 141, .. })
        ));
        assert!(out.is_empty());
    }

    /// A test picture encoded by jpeg-encoder: gradients and a checkerboard, so every
    /// block has AC coefficients.
    fn encode(
        width: u16,
        height: u16,
        gray: bool,
        sampling: jpeg_encoder::SamplingFactor,
        restart: u16,
        optimized: bool,
    ) -> Vec<u8> {
        let (w, h) = (usize::from(width), usize::from(height));
        let channels = if gray { 1 } else { 3 };
        let mut px = Vec::with_capacity(w * h * channels);
        for y in 0..h {
            for x in 0..w {
                let check = if (x / 8 + y / 8) % 2 == 0 { 40 } else { 0 };
                px.push(((x * 255 / w) as u8).wrapping_add(check));
                if !gray {
                    px.push((y * 255 / h) as u8);
                    px.push(((x + y) % 256) as u8);
                }
            }
        }
        let mut out = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut out, 80);
        e.set_sampling_factor(sampling);
        e.set_restart_interval(restart);
        e.set_optimized_huffman_tables(optimized);
        let color = if gray {
            jpeg_encoder::ColorType::Luma
        } else {
            jpeg_encoder::ColorType::Rgb
        };
        e.encode(&px, width, height, color).unwrap();
        out
    }

    /// Packetizes, wraps in RTP (the extension as the packetizer asks), depacketizes.
    fn round_trip(jfif: &[u8], max: usize) -> (Vec<RtpPayload>, Bytes) {
        let payloads = packetize(max, jfif);
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &to_packets(&payloads, 7, 0));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(units.len(), 1);
        assert!(!units[0].loss);
        (payloads, units[0].data.clone())
    }

    #[test]
    fn extension_round_trips_byte_for_byte() {
        use jpeg_encoder::SamplingFactor as S;
        #[rustfmt::skip]
        let cases: &[(&str, u16, u16, bool, S, u16, bool)] = &[
            ("2048 4:2:0", 2048, 32, false, S::F_2_2, 0, false),
            ("4096 4:2:0", 4096, 16, false, S::F_2_2, 0, false),
            ("4096 tall", 16, 4096, false, S::F_2_2, 0, false),
            ("65528 wide", 65528, 8, false, S::F_2_2, 0, false),
            ("65528 tall 4:2:2", 16, 65528, false, S::F_2_1, 0, false),
            ("2560x1440 4:2:0", 2560, 1440, false, S::F_2_2, 0, false),
            ("4:2:2 restart", 2560, 48, false, S::F_2_1, 7, false),
            ("gray", 320, 240, true, S::F_1_1, 0, false),
            ("gray restart", 3000, 24, true, S::F_1_1, 5, false),
            ("4:4:4", 320, 240, false, S::F_1_1, 0, false),
            ("4:4:0", 320, 240, false, S::F_1_2, 0, false),
            ("odd size", 321, 239, false, S::F_2_2, 0, false),
            ("optimized huffman", 320, 240, false, S::F_2_2, 0, true),
        ];
        for &(name, w, h, gray, sampling, restart, optimized) in cases {
            let src = encode(w, h, gray, sampling, restart, optimized);
            let info = jpeg_frame_info(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(info.extension, "{name}");
            assert_eq!((info.width, info.height), (w, h), "{name}");
            assert_eq!(info.restart_interval, restart, "{name}");
            for max in [1400, 65000] {
                let (payloads, rebuilt) = round_trip(&src, max);
                assert!(
                    rebuilt[..] == src[..],
                    "{name} max {max}: not byte-for-byte"
                );
                // Only the first packet has the extension; every packet fits in max.
                assert!(payloads[0].header_ext.is_some());
                assert!(payloads[1..].iter().all(|p| p.header_ext.is_none()));
                let ext_len = payloads[0].header_ext.as_ref().unwrap().len();
                assert_eq!(ext_len % 4, 0);
                assert!(payloads[0].to_bytes().len() + 4 + ext_len <= max, "{name}");
                assert!(payloads.iter().all(|p| p.to_bytes().len() <= max));
                // RFC 2435 fields: size in blocks where it fits, else 0.
                let d = &payloads[0].to_bytes();
                let field = |v: u16| u8::try_from(v.div_ceil(8)).unwrap_or(0);
                assert_eq!((d[6], d[7]), (field(w), field(h)), "{name}");
                assert_eq!(d[5], 255);
            }
        }
    }

    #[test]
    fn plain_rfc_2435_stays_the_default() {
        use jpeg_encoder::SamplingFactor as S;
        for (w, h, s) in [
            (2040, 16, S::F_2_2),
            (640, 480, S::F_2_1),
            (16, 2040, S::F_2_2),
        ] {
            let src = encode(w, h, false, s, 0, false);
            assert!(!jpeg_frame_info(&src).unwrap().extension);
            let (payloads, rebuilt) = round_trip(&src, 1400);
            assert!(payloads.iter().all(|p| p.header_ext.is_none()));
            let (a, b) = (parse_jfif(&src).unwrap(), parse_jfif(&rebuilt).unwrap());
            assert_eq!(&src[a.scan], &rebuilt[b.scan]);
            assert_eq!(a.info, b.info);
        }
    }

    #[test]
    fn extension_behind_the_replay_extension() {
        use crate::rtp::{parse_rtp, replay_ext_with_jpeg, write_rtp, RtpExtension, RtpHeader};
        let src = encode(
            2560,
            32,
            false,
            jpeg_encoder::SamplingFactor::F_2_2,
            4,
            false,
        );
        let payloads = packetize(1400, &src);
        let replay = [1u8; 12];
        let mut d = JpegDepacketizer::new();
        for (i, p) in payloads.iter().enumerate() {
            let body = p
                .header_ext
                .as_ref()
                .map(|e| replay_ext_with_jpeg(&replay, e));
            let mut out = BytesMut::new();
            write_rtp(
                &RtpHeader {
                    payload_type: 26,
                    marker: p.marker,
                    sequence: i as u16,
                    timestamp: 9,
                    ssrc: 1,
                    extension: body.as_deref().map(|b| RtpExtension {
                        profile: 0xabac,
                        data: b,
                    }),
                },
                &p.to_bytes(),
                &mut out,
            );
            if i == 0 {
                let ext_words = u16::from_be_bytes([out[14], out[15]]) as usize;
                assert_eq!(&out[12..14], &[0xab, 0xac]);
                assert!(ext_words > 3);
                assert_eq!(&out[16..28], &replay);
                assert_eq!(&out[28..30], &[0xff, 0xd8]);
                let jpeg_words = u16::from_be_bytes([out[30], out[31]]) as usize;
                assert_eq!(ext_words, 3 + 1 + jpeg_words);
                assert_eq!(
                    &out[32..32 + jpeg_words * 4],
                    &p.header_ext.as_ref().unwrap()[..]
                );
            }
            let pkt = parse_rtp(&out).unwrap();
            if i == 0 {
                assert!(pkt.onvif_replay().is_some());
            }
            d.push(&pkt).unwrap();
        }
        assert_eq!(d.pull().unwrap().data[..], src[..]);
    }

    #[test]
    fn malformed_extensions_are_errors_not_panics() {
        let src = encode(
            2560,
            16,
            false,
            jpeg_encoder::SamplingFactor::F_2_2,
            0,
            false,
        );
        let payloads = packetize(1400, &src);
        let ext = payloads[0].header_ext.clone().unwrap();
        for bad in [
            &b"\x00\x01\x02\x03"[..],
            &[0xff, 0xdb, 0x00, 0x40],
            &[0xff, 0xd8, 0xff, 0xff],
            &[0xff, 0xda, 0, 2, 0xff, 0xc0, 0, 2],
        ] {
            assert!(ext_segments(bad).is_err(), "{bad:?}");
        }
        // Cut at every length: never a panic; the frame is dropped or rebuilt.
        for cut in (0..ext.len()).step_by(4) {
            let mut p = payloads.clone();
            p[0].header_ext = Some(ext.slice(..cut));
            let _ = feed(&mut JpegDepacketizer::new(), &to_packets(&p, 0, 0));
        }
        // Without any extension, width 0 is malformed.
        let mut p = payloads.clone();
        p[0].header_ext = None;
        let (units, errors) = feed(&mut JpegDepacketizer::new(), &to_packets(&p, 0, 0));
        assert!(units.is_empty());
        assert!(!errors.is_empty());
    }
}
