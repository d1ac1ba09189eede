//! RTP packets: the fixed header and the header extension (RFC 3550 §5.1, §5.3.1), and the
//! ONVIF replay header extension (ONVIF Streaming Specification §6.3, "RTP header extension";
//! layout in docs/onvif.md "Replay header extension").
//!
//! Parsing is delegated to the `rtp-types` crate, which validates every length against the
//! buffer (CSRC list, extension, padding); [`RtpPacket`] then copies the fields out into a view
//! whose slices borrow the caller's buffer. Writing is hand-written: a server writes the
//! 12-byte header millions of times a day straight into a [`BytesMut`] that already holds
//! other data (the `$` interleaved frame header), and that is simpler and cheaper done by
//! hand than through `rtp-types`' builder, which targets `Vec`/slices and is fallible.
//!
//! Left out: writing CSRC lists and padding (a camera is never a mixer and has no use for
//! padding without SRTP); RFC 8285 one-byte/two-byte extension elements (ONVIF uses the plain
//! RFC 3550 form with profile 0xABAC).

use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// Length of the fixed RTP header without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

/// Errors from [`parse_rtp`] and [`OnvifReplayExt::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("RTP packet too short: {len} bytes, the fixed header alone is 12")]
    TooShort { len: usize },
    #[error("RTP version {version}, expected 2 (first byte {first_byte:#04x})")]
    Version { version: u8, first_byte: u8 },
    #[error(
        "RTP packet truncated: headers and padding need {expected} bytes, packet has {actual}"
    )]
    Truncated { expected: usize, actual: usize },
    #[error("RTP padding bit set but the padding count byte is 0")]
    ZeroPadding,
    #[error("ONVIF replay extension: {len} bytes of extension data, need at least 12")]
    ReplayExtTooShort { len: usize },
}

/// An RTP header extension (RFC 3550 §5.3.1): the 16-bit profile-defined identifier and the
/// extension body, whose length is a multiple of 4 bytes (it is counted in 32-bit words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    pub profile: u16,
    /// Extension body, without the profile/length word. [`write_rtp`] pads it with zero bytes
    /// to a multiple of 4 if it is not one already.
    pub data: &'a [u8],
}

/// The fields of an RTP header that a sender chooses (RFC 3550 §5.1). Version is always 2;
/// no padding and no CSRCs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// 7 bits; higher bits are masked off when written.
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub extension: Option<RtpExtension<'a>>,
}

/// Appends one RTP packet (header, optional extension, payload) to `out`.
pub fn write_rtp(header: &RtpHeader, payload: &[u8], out: &mut BytesMut) {
    let ext_words = header.extension.map_or(0, |e| e.data.len().div_ceil(4));
    // The fixed header and the extension's first word built on the stack and put at once:
    // a replay writes it for every packet, and each `put_*` checks the capacity again.
    let mut fixed = [0u8; RTP_HEADER_LEN + 4];
    let x = if header.extension.is_some() { 0x10 } else { 0 };
    fixed[0] = 0x80 | x;
    fixed[1] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7f);
    fixed[2..4].copy_from_slice(&header.sequence.to_be_bytes());
    fixed[4..8].copy_from_slice(&header.timestamp.to_be_bytes());
    fixed[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    // The length field is 16 bits; a longer body cannot be described, so it is cut.
    let words = ext_words.min(usize::from(u16::MAX));
    let fixed_len = match header.extension {
        Some(ext) => {
            fixed[12..14].copy_from_slice(&ext.profile.to_be_bytes());
            fixed[14..16].copy_from_slice(&(words as u16).to_be_bytes());
            RTP_HEADER_LEN + 4
        }
        None => RTP_HEADER_LEN,
    };
    out.reserve(fixed_len + words * 4 + payload.len());
    out.put_slice(&fixed[..fixed_len]);
    if let Some(ext) = header.extension {
        let body = ext.data.get(..words * 4).unwrap_or(ext.data);
        out.put_slice(body);
        if body.len() < words * 4 {
            out.put_bytes(0, words * 4 - body.len());
        }
    }
    out.put_slice(payload);
}

/// A parsed RTP packet: a view into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: &'a [u8],
    extension: Option<RtpExtension<'a>>,
    payload: &'a [u8],
    padding: u8,
}

/// Parses one RTP packet (RFC 3550 §5.1). Checks the version and that the CSRC list, the
/// extension and the padding fit in `buf`. The payload returned excludes the padding.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    use rtp_types::RtpParseError as E;
    let p = rtp_types::RtpPacket::parse(buf).map_err(|e| match e {
        E::UnsupportedVersion(version) => RtpError::Version {
            version,
            first_byte: buf.first().copied().unwrap_or(0),
        },
        E::Truncated { actual, .. } if actual < RTP_HEADER_LEN => {
            RtpError::TooShort { len: actual }
        }
        E::Truncated { expected, actual } => RtpError::Truncated { expected, actual },
        E::PaddingInvalid(_) => RtpError::ZeroPadding,
    })?;
    let truncated = || RtpError::Truncated {
        expected: buf.len() + 1,
        actual: buf.len(),
    };
    let csrc_end = RTP_HEADER_LEN + usize::from(p.n_csrcs()) * 4;
    let csrcs = buf.get(RTP_HEADER_LEN..csrc_end).ok_or_else(truncated)?;
    let extension = match p.extension() {
        Some((profile, data)) => {
            let start = csrc_end + 4;
            let data = buf.get(start..start + data.len()).ok_or_else(truncated)?;
            Some(RtpExtension { profile, data })
        }
        None => None,
    };
    let padding = p.padding().unwrap_or(0);
    let payload_end = buf
        .len()
        .checked_sub(usize::from(padding))
        .ok_or_else(truncated)?;
    let payload = buf
        .get(p.payload_offset()..payload_end)
        .ok_or_else(truncated)?;
    Ok(RtpPacket {
        payload_type: p.payload_type(),
        marker: p.marker_bit(),
        sequence: p.sequence_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs,
        extension,
        payload,
        padding,
    })
}

impl<'a> RtpPacket<'a> {
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    pub fn marker(&self) -> bool {
        self.marker
    }

    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Number of contributing sources (the CC field).
    pub fn csrc_count(&self) -> u8 {
        (self.csrcs.len() / 4) as u8
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrcs
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension, if the X bit is set.
    pub fn extension(&self) -> Option<RtpExtension<'a>> {
        self.extension
    }

    /// The ONVIF replay extension, if the packet carries a 0xABAC extension that parses.
    pub fn onvif_replay(&self) -> Option<OnvifReplayExt> {
        self.extension
            .filter(|e| e.profile == OnvifReplayExt::PROFILE)
            .and_then(|e| OnvifReplayExt::parse(e.data).ok())
    }

    /// The ONVIF JPEG header extension (ONVIF Streaming "JPEG over RTP"), alone (profile
    /// 0xFFD8 or 0xFFFF) or appended to the replay extension (profile 0xABAC, length
    /// above 3, the fourth word starting with 0xFFD8 or 0xFFFF): see docs/mjpeg.md.
    pub fn jpeg_header_ext(&self) -> Option<JpegHeaderExt<'a>> {
        let e = self.extension?;
        JpegHeaderExt::find(e.profile, e.data)
    }

    /// The payload, padding removed.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Number of padding bytes at the end of the packet (0 when the P bit is clear).
    pub fn padding_len(&self) -> u8 {
        self.padding
    }

    /// The header fields, for re-sending the packet (CSRCs and padding are not carried).
    pub fn header(&self) -> RtpHeader<'a> {
        RtpHeader {
            payload_type: self.payload_type,
            marker: self.marker,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            extension: self.extension,
        }
    }
}

/// The ONVIF JPEG header extension of one packet (layout in docs/mjpeg.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegHeaderExt<'a> {
    /// Profile 0xFFD8: the first packet of a frame; 0xFFFF: a later one.
    pub initial: bool,
    /// The extension payload: JPEG marker segments, possibly with 0xFF fill bytes.
    pub data: &'a [u8],
}

impl<'a> JpegHeaderExt<'a> {
    /// The JPEG extension in an RTP header extension with `profile` and body `data`.
    /// Behind the replay extension, the fourth word is the JPEG extension's own
    /// profile/length word; a length past the end of the body is malformed (`None`).
    pub fn find(profile: u16, data: &'a [u8]) -> Option<JpegHeaderExt<'a>> {
        let is_jpeg = |p: u16| p == 0xffd8 || p == 0xffff;
        if is_jpeg(profile) {
            return Some(JpegHeaderExt {
                initial: profile == 0xffd8,
                data,
            });
        }
        if profile != OnvifReplayExt::PROFILE {
            return None;
        }
        let &[p0, p1, l0, l1] = data.get(12..16)? else {
            return None;
        };
        let inner = u16::from_be_bytes([p0, p1]);
        if !is_jpeg(inner) {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([l0, l1])) * 4;
        Some(JpegHeaderExt {
            initial: inner == 0xffd8,
            data: data.get(16..16 + len)?,
        })
    }
}

/// The body of a replay header extension followed by a JPEG header extension with
/// profile 0xFFD8 and body `jpeg` (a multiple of 4 bytes; zero-padded if not): the
/// replay words, then the JPEG extension's profile/length word, then its body. Written
/// with profile [`OnvifReplayExt::PROFILE`], its length is 3 + 1 + `jpeg` words.
pub fn replay_ext_with_jpeg(replay: &[u8; 12], jpeg: &[u8]) -> Vec<u8> {
    let words = jpeg.len().div_ceil(4);
    let mut b = Vec::with_capacity(16 + words * 4);
    b.extend_from_slice(replay);
    b.extend_from_slice(&0xffd8u16.to_be_bytes());
    b.extend_from_slice(&(words.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    b.extend_from_slice(jpeg);
    b.resize(16 + words * 4, 0);
    b
}

/// The ONVIF replay header extension: the three 32-bit words that follow the
/// `0xABAC`/length word on every packet that starts an access unit during replay.
///
/// ```text
///  |     NTP timestamp: seconds since 1900-01-01 UTC (32 bits)     |
///  |     NTP timestamp: fraction of a second (32 bits)             |
///  |C|E|D|T|  mbz  |  CSeq (8 bits)|     padding = 0 (16 bits)     |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OnvifReplayExt {
    /// Capture wallclock of the access unit as a 64-bit NTP timestamp
    /// (see [`crate::time::unix_micros_to_ntp`]).
    pub ntp: u64,
    /// C: the access unit is a clean point (keyframe / sync point).
    pub clean_point: bool,
    /// E: last access unit before a gap in the recording or at the end of the footage.
    pub end: bool,
    /// D: discontinuity (first packet of a GOP in reverse play, first after a jump).
    pub discontinuity: bool,
    /// T: terminal: no more data for this track in this direction.
    pub terminal: bool,
    /// Low byte of the CSeq of the PLAY request that started this delivery.
    pub cseq: u8,
}

impl OnvifReplayExt {
    /// The extension profile identifier ("defined by profile" field).
    pub const PROFILE: u16 = 0xABAC;
    /// Extension length in 32-bit words, as written in the length field.
    pub const WORDS: u16 = 3;

    /// The three words of the extension body (after the profile/length word).
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.ntp.to_be_bytes());
        b[8] = (u8::from(self.clean_point) << 7)
            | (u8::from(self.end) << 6)
            | (u8::from(self.discontinuity) << 5)
            | (u8::from(self.terminal) << 4);
        b[9] = self.cseq;
        b
    }

    /// Parses the extension body. `data` may be longer than 12 bytes (a JPEG extension may
    /// follow); the extra bytes are ignored. The mbz and padding bits are not checked.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        let Some(&[n0, n1, n2, n3, n4, n5, n6, n7, flags, cseq, ..]) = data.get(..12) else {
            return Err(RtpError::ReplayExtTooShort { len: data.len() });
        };
        Ok(OnvifReplayExt {
            ntp: u64::from_be_bytes([n0, n1, n2, n3, n4, n5, n6, n7]),
            clean_point: flags & 0x80 != 0,
            end: flags & 0x40 != 0,
            discontinuity: flags & 0x20 != 0,
            terminal: flags & 0x10 != 0,
            cseq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_plain_header_byte_exact() {
        let mut out = BytesMut::new();
        let h = RtpHeader {
            payload_type: 96,
            marker: true,
            sequence: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            extension: None,
        };
        write_rtp(&h, &[0xaa, 0xbb], &mut out);
        assert_eq!(
            &out[..],
            &[0x80, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0xaa, 0xbb]
        );
        // Appends, does not overwrite.
        write_rtp(
            &RtpHeader {
                marker: false,
                payload_type: 0,
                ..h
            },
            &[],
            &mut out,
        );
        assert_eq!(out.len(), 14 + 12);
        assert_eq!(&out[14..16], &[0x80, 0x00]);
    }

    #[test]
    fn writes_onvif_replay_extension_byte_exact() {
        let ext = OnvifReplayExt {
            ntp: 0xe8b1_2345_8000_0000,
            clean_point: true,
            end: false,
            discontinuity: true,
            terminal: false,
            cseq: 0x07,
        };
        let body = ext.to_bytes();
        assert_eq!(
            body,
            [
                0xe8,
                0xb1,
                0x23,
                0x45,
                0x80,
                0,
                0,
                0,
                0b1010_0000,
                0x07,
                0,
                0
            ]
        );
        let mut out = BytesMut::new();
        write_rtp(
            &RtpHeader {
                payload_type: 26,
                marker: false,
                sequence: 1,
                timestamp: 2,
                ssrc: 3,
                extension: Some(RtpExtension {
                    profile: OnvifReplayExt::PROFILE,
                    data: &body,
                }),
            },
            &[0x55],
            &mut out,
        );
        #[rustfmt::skip]
        let expected = [
            0x90, 26, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
            0xab, 0xac, 0x00, 0x03,
            0xe8, 0xb1, 0x23, 0x45,
            0x80, 0x00, 0x00, 0x00,
            0xa0, 0x07, 0x00, 0x00,
            0x55,
        ];
        assert_eq!(&out[..], &expected);
        let p = parse_rtp(&out).unwrap();
        assert_eq!(p.onvif_replay(), Some(ext));
        assert_eq!(p.payload(), &[0x55]);
        assert_eq!(p.header().extension.unwrap().data.len(), 12);
    }

    #[test]
    fn replay_flags_each_bit() {
        let all = OnvifReplayExt {
            ntp: 1,
            clean_point: true,
            end: true,
            discontinuity: true,
            terminal: true,
            cseq: 255,
        };
        assert_eq!(all.to_bytes()[8], 0xf0);
        assert_eq!(all.to_bytes()[9], 0xff);
        for (bit, f) in [
            (
                0x80u8,
                OnvifReplayExt {
                    clean_point: true,
                    ..Default::default()
                },
            ),
            (
                0x40,
                OnvifReplayExt {
                    end: true,
                    ..Default::default()
                },
            ),
            (
                0x20,
                OnvifReplayExt {
                    discontinuity: true,
                    ..Default::default()
                },
            ),
            (
                0x10,
                OnvifReplayExt {
                    terminal: true,
                    ..Default::default()
                },
            ),
        ] {
            assert_eq!(f.to_bytes()[8], bit);
            assert_eq!(OnvifReplayExt::parse(&f.to_bytes()).unwrap(), f);
        }
        // mbz bits set by a sloppy sender are ignored.
        let mut b = all.to_bytes();
        b[8] |= 0x0f;
        assert_eq!(OnvifReplayExt::parse(&b).unwrap(), all);
        // A JPEG extension may follow the 12 bytes.
        let mut long = all.to_bytes().to_vec();
        long.extend_from_slice(&[0xff, 0xd8, 0, 0]);
        assert_eq!(OnvifReplayExt::parse(&long).unwrap(), all);
        assert_eq!(
            OnvifReplayExt::parse(&b[..11]),
            Err(RtpError::ReplayExtTooShort { len: 11 })
        );
    }

    #[test]
    fn unaligned_extension_is_zero_padded() {
        let mut out = BytesMut::new();
        write_rtp(
            &RtpHeader {
                payload_type: 96,
                marker: false,
                sequence: 0,
                timestamp: 0,
                ssrc: 0,
                extension: Some(RtpExtension {
                    profile: 0xbede,
                    data: &[1, 2, 3, 4, 5],
                }),
            },
            &[9],
            &mut out,
        );
        assert_eq!(&out[12..], &[0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 0, 0, 0, 9]);
    }

    #[test]
    fn parses_csrcs_padding_and_extension() {
        #[rustfmt::skip]
        let pkt = [
            0xb2, 0x88, 0xff, 0xfe, 0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe, // V=2 P X CC=2, M PT=8
            0, 0, 0, 1, // CSRC 1
            0, 0, 0, 2, // CSRC 2
            0x10, 0x00, 0x00, 0x01, 0xaa, 0xbb, 0xcc, 0xdd, // extension, 1 word
            1, 2, 3, // payload
            0, 0, 3, // padding of 3
        ];
        let p = parse_rtp(&pkt).unwrap();
        assert_eq!(p.payload_type(), 8);
        assert!(p.marker());
        assert_eq!(p.sequence(), 0xfffe);
        assert_eq!(p.timestamp(), 0x1000);
        assert_eq!(p.ssrc(), 0xcafe_babe);
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2]);
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0x1000);
        assert_eq!(ext.data, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.onvif_replay(), None);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert_eq!(parse_rtp(&[0x80; 5]), Err(RtpError::TooShort { len: 5 }));
        let mut v1 = [0u8; 12];
        v1[0] = 0x40;
        assert_eq!(
            parse_rtp(&v1),
            Err(RtpError::Version {
                version: 1,
                first_byte: 0x40
            })
        );
        // CC=3 but no CSRCs.
        let mut cc = [0u8; 12];
        cc[0] = 0x83;
        assert_eq!(
            parse_rtp(&cc),
            Err(RtpError::Truncated {
                expected: 24,
                actual: 12
            })
        );
        // Extension length points past the end.
        let mut x = vec![0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xac, 0, 3];
        x.extend_from_slice(&[0; 8]);
        assert!(matches!(parse_rtp(&x), Err(RtpError::Truncated { .. })));
        // Padding count 0, and padding longer than the packet.
        let mut pad = [0u8; 13];
        pad[0] = 0xa0;
        assert_eq!(parse_rtp(&pad), Err(RtpError::ZeroPadding));
        pad[12] = 5;
        assert!(matches!(parse_rtp(&pad), Err(RtpError::Truncated { .. })));
        // Padding of exactly the payload leaves an empty payload.
        pad[12] = 1;
        assert_eq!(parse_rtp(&pad).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn round_trips_what_we_write() {
        let body = [7u8; 8];
        for ext in [
            None,
            Some(RtpExtension {
                profile: 0xabac,
                data: &body[..],
            }),
        ] {
            let h = RtpHeader {
                payload_type: 127,
                marker: true,
                sequence: 65535,
                timestamp: u32::MAX,
                ssrc: 42,
                extension: ext,
            };
            let mut out = BytesMut::new();
            write_rtp(&h, b"hello", &mut out);
            let p = parse_rtp(&out).unwrap();
            assert_eq!(p.header(), h);
            assert_eq!(p.payload(), b"hello");
            assert_eq!(p.csrc_count(), 0);
        }
    }
}
