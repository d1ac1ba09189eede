//! Session descriptions as RTSP servers use them (RFC 8866, formerly RFC 4566; RFC 2326
//! Appendix C for `a=control` and `a=range`; RFC 3551/6184/7798/2435/3640 for the `a=rtpmap`
//! and `a=fmtp` of each codec; ONVIF Streaming §5.1.3 for `a=x-onvif-track`, and the audio
//! backchannel's `a=sendonly` section).
//!
//! [`SdpSession::to_sdp_string`] writes the DESCRIBE body of the server. [`parse_sdp`]
//! reads what cameras send, for our own talk/replay clients and tests. The parser is
//! hand-written and lenient on purpose: camera SDPs routinely break RFC 8866 (a 4-field
//! `o=` line and no `t=` line in the ONVIF backchannel example, missing `s=`, LF line
//! endings), which `sdp-types` rejects. It keeps what a client needs: the media sections
//! of kind audio and video with their formats, control URLs, direction and other
//! attributes. Left out: `c=`, `b=`, `t=`, `i=`, `k=` lines (ignored), media sections
//! other than audio/video (e.g. `m=application` for ONVIF metadata, skipped), multiple
//! `t=`/`r=` timings.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use bytes::Bytes;
use thiserror::Error;

use crate::codec::{CodecParams, MediaKind, TrackInfo};
use crate::packet::{aac, h264, h265};

/// One payload format of a media section: `m=` payload type, `a=rtpmap` and `a=fmtp`
/// values (without the `a=rtpmap:<pt> ` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpFormat {
    pub payload_type: u8,
    /// Encoding name, clock rate and optional channels, e.g. `H264/90000`, `PCMU/8000`,
    /// `opus/48000/2`.
    pub rtpmap: Option<String>,
    /// Format parameters, e.g. `packetization-mode=1;profile-level-id=42C01E;...`.
    pub fmtp: Option<String>,
}

impl SdpFormat {
    /// The format describing `track`: an rtpmap for every codec (static payload types
    /// included, as most clients expect), and an fmtp where the codec has parameters.
    pub fn for_track(track: &TrackInfo) -> SdpFormat {
        let audio = |name: &str, rate: u32, channels: u8| {
            if channels > 1 {
                format!("{name}/{rate}/{channels}")
            } else {
                format!("{name}/{rate}")
            }
        };
        let (rtpmap, fmtp) = match &track.codec {
            CodecParams::H264 { sps, pps } => {
                ("H264/90000".to_owned(), Some(h264::h264_fmtp(sps, pps)))
            }
            CodecParams::H265 { vps, sps, pps } => {
                let f = h265::h265_fmtp(vps, sps, pps);
                ("H265/90000".to_owned(), (!f.is_empty()).then_some(f))
            }
            CodecParams::Jpeg => ("JPEG/90000".to_owned(), None),
            CodecParams::Pcmu { rate, channels } => (audio("PCMU", *rate, *channels), None),
            CodecParams::Pcma { rate, channels } => (audio("PCMA", *rate, *channels), None),
            CodecParams::Aac {
                rate,
                channels,
                config,
            } => (
                format!("MPEG4-GENERIC/{rate}/{channels}"),
                Some(aac::aac_fmtp(config)),
            ),
            CodecParams::Opaque { rtpmap, fmtp, .. } => {
                return SdpFormat {
                    payload_type: track.payload_type,
                    rtpmap: rtpmap.clone(),
                    fmtp: fmtp.clone(),
                }
            }
        };
        SdpFormat {
            payload_type: track.payload_type,
            rtpmap: Some(rtpmap),
            fmtp,
        }
    }

    /// The rtpmap, or the RFC 3551 static assignment for payload types without one.
    fn rtpmap_or_static(&self) -> Option<&str> {
        if let Some(r) = &self.rtpmap {
            return Some(r);
        }
        match self.payload_type {
            0 => Some("PCMU/8000"),
            8 => Some("PCMA/8000"),
            26 => Some("JPEG/90000"),
            _ => None,
        }
    }

    /// The encoding name (`H264`, `PCMU`, ...), from the rtpmap or the static table.
    pub fn encoding_name(&self) -> Option<&str> {
        self.rtpmap_or_static()?.split('/').next()
    }

    /// The clock rate, from the rtpmap or the static table.
    pub fn clock_rate(&self) -> Option<u32> {
        self.rtpmap_or_static()?
            .split('/')
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// The channel count of an audio format (1 when the rtpmap does not say).
    pub fn channels(&self) -> u8 {
        self.rtpmap_or_static()
            .and_then(|r| r.split('/').nth(2))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(1)
    }

    /// One fmtp parameter by name (case-insensitive), e.g. `config`.
    pub fn fmtp_param(&self, name: &str) -> Option<&str> {
        self.fmtp.as_deref()?.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// This format passed through as opaque RTP ([`CodecParams::Opaque`]), for a codec
    /// [`SdpFormat::to_codec`] does not know: its rtpmap and fmtp as they are. The clock
    /// rate is the rtpmap's, else RFC 3551's for a static payload type, else 90000 for
    /// video and 8000 for audio. `None` for a dynamic payload type without an rtpmap
    /// (nothing could describe it to a reader).
    pub fn to_opaque(&self, kind: MediaKind) -> Option<CodecParams> {
        if self.rtpmap.is_none() && self.payload_type >= 96 {
            return None;
        }
        let clock_rate = self
            .clock_rate()
            .or_else(|| static_clock_rate(self.payload_type))
            .filter(|&r| r > 0)
            .unwrap_or(match kind {
                MediaKind::Video => 90_000,
                MediaKind::Audio => 8000,
            });
        Some(CodecParams::Opaque {
            kind,
            rtpmap: self.rtpmap.clone(),
            fmtp: self.fmtp.clone(),
            clock_rate,
        })
    }

    /// The codec parameters, for the codecs this crate can depacketize; `None` for others
    /// (G.726, Opus, L16, ...) and for formats whose fmtp lacks what the codec needs
    /// (AAC without `config`). Missing H.264/H.265 parameter sets are left empty: they
    /// come in band.
    pub fn to_codec(&self) -> Option<CodecParams> {
        let name = self.encoding_name()?.to_ascii_uppercase();
        let rate = self.clock_rate();
        let channels = self.channels();
        Some(match name.as_str() {
            "H264" => {
                let sets: Vec<Bytes> = self
                    .fmtp_param("sprop-parameter-sets")
                    .map(|v| v.split(',').filter_map(decode_b64).collect())
                    .unwrap_or_default();
                let find = |ty| {
                    sets.iter()
                        .find(|s| h264::nal_type(s) == ty)
                        .cloned()
                        .unwrap_or_default()
                };
                CodecParams::H264 {
                    sps: find(h264::NAL_SPS),
                    pps: find(h264::NAL_PPS),
                }
            }
            "H265" => {
                let param = |k| {
                    self.fmtp_param(k)
                        .and_then(|v| v.split(',').find_map(decode_b64))
                        .unwrap_or_default()
                };
                CodecParams::H265 {
                    vps: param("sprop-vps"),
                    sps: param("sprop-sps"),
                    pps: param("sprop-pps"),
                }
            }
            "JPEG" => CodecParams::Jpeg,
            "PCMU" => CodecParams::Pcmu {
                rate: rate.unwrap_or(8000),
                channels,
            },
            "PCMA" => CodecParams::Pcma {
                rate: rate.unwrap_or(8000),
                channels,
            },
            "MPEG4-GENERIC" => {
                let config = decode_hex(self.fmtp_param("config")?)?;
                let rate = match rate {
                    Some(r) => r,
                    None => aac::parse_aac_config(&config).ok()?.1,
                };
                CodecParams::Aac {
                    rate,
                    channels,
                    config,
                }
            }
            _ => return None,
        })
    }
}

/// RFC 3551 §6 table 4 and 5: the clock rate of a static payload type.
fn static_clock_rate(pt: u8) -> Option<u32> {
    Some(match pt {
        0..=5 | 7..=9 | 12 | 13 | 15 | 18 => 8000,
        6 => 16_000,
        10 | 11 => 44_100,
        16 => 11_025,
        17 => 22_050,
        14 | 25 | 26 | 28 | 31..=34 => 90_000,
        _ => return None,
    })
}

fn decode_b64(s: &str) -> Option<Bytes> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    LENIENT.decode(s).ok().map(Bytes::from)
}

fn decode_hex(s: &str) -> Option<Bytes> {
    let s = s.trim().as_bytes();
    if s.len() & 1 == 1 {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

/// Media direction attribute (RFC 8866 §6.7). ONVIF writes it from the client's point of
/// view: server->client sections carry `a=recvonly` (the client receives), the audio
/// backchannel carries `a=sendonly` (the client sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendOnly,
    RecvOnly,
    SendRecv,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::SendRecv => "sendrecv",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        match s {
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "sendrecv" => Some(Direction::SendRecv),
            _ => None,
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    pub kind: MediaKind,
    /// In `m=` line order.
    pub formats: Vec<SdpFormat>,
    /// The `a=control` value: relative (`trackID=1`) or absolute URL; empty if none.
    pub control: String,
    pub direction: Option<Direction>,
    /// Other attribute lines without the `a=`, e.g. `x-onvif-track:VIDEO001`, `framerate:25`.
    pub attributes: Vec<String>,
}

impl SdpMedia {
    /// The format with payload type `pt`.
    pub fn format(&self, pt: u8) -> Option<&SdpFormat> {
        self.formats.iter().find(|f| f.payload_type == pt)
    }

    /// The value of attribute `name` (`a=name:value`), or `Some("")` for a flag attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }
}

fn find_attribute<'a>(attributes: &'a [String], name: &str) -> Option<&'a str> {
    attributes.iter().find_map(|a| match a.split_once(':') {
        Some((k, v)) if k == name => Some(v),
        None if a == name => Some(""),
        _ => None,
    })
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpSession {
    /// The `o=` session id.
    pub origin_id: u64,
    /// The `o=` address (the server IP); `IN IP6` is written when it contains ':'.
    pub origin_address: String,
    /// The `s=` session name.
    pub name: String,
    /// Session-level `a=range:` value, e.g. `npt=now-` or `clock=20250101T000000Z-...`.
    pub range: Option<String>,
    /// Other session-level attribute lines without the `a=`. The aggregate `a=control:*`
    /// is written by [`SdpSession::to_sdp_string`] and not kept here by the parser; any
    /// other session-level control URL is kept as `control:<url>`.
    pub attributes: Vec<String>,
    pub media: Vec<SdpMedia>,
}

impl SdpSession {
    /// The SDP text, CRLF line endings.
    pub fn to_sdp_string(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(512);
        let ip = if self.origin_address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        let name = if self.name.is_empty() {
            " "
        } else {
            &self.name
        };
        let _ = write!(
            s,
            "v=0\r\no=- {} 1 IN {ip} {}\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n",
            self.origin_id, self.origin_address
        );
        if let Some(range) = &self.range {
            let _ = write!(s, "a=range:{range}\r\n");
        }
        for a in &self.attributes {
            let _ = write!(s, "a={a}\r\n");
        }
        for m in &self.media {
            let _ = write!(s, "m={} 0 RTP/AVP", m.kind.as_sdp());
            for f in &m.formats {
                let _ = write!(s, " {}", f.payload_type);
            }
            s.push_str("\r\n");
            for f in &m.formats {
                if let Some(r) = &f.rtpmap {
                    let _ = write!(s, "a=rtpmap:{} {r}\r\n", f.payload_type);
                }
                if let Some(p) = &f.fmtp {
                    let _ = write!(s, "a=fmtp:{} {p}\r\n", f.payload_type);
                }
            }
            if !m.control.is_empty() {
                let _ = write!(s, "a=control:{}\r\n", m.control);
            }
            if let Some(d) = m.direction {
                let _ = write!(s, "a={}\r\n", d.as_str());
            }
            for a in &m.attributes {
                let _ = write!(s, "a={a}\r\n");
            }
        }
        s
    }

    /// The session-level control URL if the SDP names one other than `*`.
    pub fn control(&self) -> Option<&str> {
        self.attribute("control")
    }

    /// The value of session attribute `name` (`a=name:value`), `Some("")` for a flag.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }
}

/// The URL a client sends SETUP/PLAY to for `control` (RFC 2326 §C.1.1): an absolute URL
/// as is, `*` or empty as the base itself, otherwise relative to `base` (the
/// Content-Base, else the DESCRIBE URL).
pub fn resolve_control(base: &str, control: &str) -> String {
    if control.is_empty() || control == "*" {
        return base.to_owned();
    }
    if control.contains("://") {
        return control.to_owned();
    }
    if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// Errors from [`parse_sdp`]. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("not a session description: the first line is not v=0")]
    MissingVersion,
    #[error("line {line}: malformed m= line: {reason}")]
    BadMedia { line: usize, reason: &'static str },
}

/// Parses a session description (see the module documentation for what is kept).
pub fn parse_sdp(text: &str) -> Result<SdpSession, SdpError> {
    let mut session = SdpSession {
        origin_id: 0,
        origin_address: String::new(),
        name: String::new(),
        range: None,
        attributes: Vec::new(),
        media: Vec::new(),
    };
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, l)) if l.strip_prefix("v=").is_some_and(|v| v.trim() == "0") => {}
        _ => return Err(SdpError::MissingVersion),
    }
    // Some(true): inside an audio/video section; Some(false): inside a skipped section.
    let mut in_media: Option<bool> = None;
    for (n, line) in lines {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match (key, in_media) {
            ("o", None) => {
                let t: Vec<&str> = value.split_whitespace().collect();
                if t.len() >= 6 {
                    session.origin_id = t[1].parse().unwrap_or(0);
                    session.origin_address = t[5].to_owned();
                } else {
                    session.origin_id = t.iter().find_map(|x| x.parse().ok()).unwrap_or(0);
                    session.origin_address = t.last().map_or_else(String::new, |a| a.to_string());
                }
            }
            ("s", None) => session.name = value.to_owned(),
            ("m", _) => {
                let mut t = value.split_whitespace();
                let kind = match t.next() {
                    Some("video") => MediaKind::Video,
                    Some("audio") => MediaKind::Audio,
                    Some(_) => {
                        in_media = Some(false);
                        continue;
                    }
                    None => {
                        return Err(SdpError::BadMedia {
                            line: n,
                            reason: "empty",
                        })
                    }
                };
                if t.next().is_none() || t.next().is_none() {
                    return Err(SdpError::BadMedia {
                        line: n,
                        reason: "no port or protocol",
                    });
                }
                let formats = t
                    .map(|pt| match pt.parse::<u8>() {
                        Ok(pt) if pt < 128 => Ok(SdpFormat {
                            payload_type: pt,
                            rtpmap: None,
                            fmtp: None,
                        }),
                        _ => Err(SdpError::BadMedia {
                            line: n,
                            reason: "payload type is not a number below 128",
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                session.media.push(SdpMedia {
                    kind,
                    formats,
                    control: String::new(),
                    direction: None,
                    attributes: Vec::new(),
                });
                in_media = Some(true);
            }
            ("a", None) => match value.split_once(':') {
                Some(("control", "*")) => {}
                Some(("range", r)) => session.range = Some(r.trim().to_owned()),
                _ => session.attributes.push(value.to_owned()),
            },
            ("a", Some(true)) => {
                let Some(m) = session.media.last_mut() else {
                    continue;
                };
                if let Some(d) = Direction::parse(value) {
                    m.direction = Some(d);
                    continue;
                }
                let (name, rest) = value.split_once(':').unwrap_or((value, ""));
                match name {
                    "control" => m.control = rest.trim().to_owned(),
                    "rtpmap" | "fmtp" => {
                        let (pt, v) = rest.trim().split_once(' ').unwrap_or((rest, ""));
                        let f = pt
                            .parse::<u8>()
                            .ok()
                            .and_then(|pt| m.formats.iter_mut().find(|f| f.payload_type == pt));
                        match f {
                            Some(f) if name == "rtpmap" => f.rtpmap = Some(v.trim().to_owned()),
                            Some(f) => f.fmtp = Some(v.trim().to_owned()),
                            None => m.attributes.push(value.to_owned()),
                        }
                    }
                    _ => m.attributes.push(value.to_owned()),
                }
            }
            _ => {}
        }
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn h264_pcmu_session() -> SdpSession {
        let video = TrackInfo::new(
            CodecParams::H264 {
                sps: Bytes::from_static(SPS),
                pps: Bytes::from_static(PPS),
            },
            96,
        );
        let audio = TrackInfo::new(
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            },
            97,
        );
        SdpSession {
            origin_id: 1_763_762_544,
            origin_address: "192.168.1.10".into(),
            name: "ipcamd".into(),
            range: Some("npt=now-".into()),
            attributes: vec!["tool:ipcamd".into()],
            media: vec![
                SdpMedia {
                    kind: MediaKind::Video,
                    formats: vec![SdpFormat::for_track(&video)],
                    control: "trackID=0".into(),
                    direction: Some(Direction::RecvOnly),
                    attributes: vec!["framerate:25".into()],
                },
                SdpMedia {
                    kind: MediaKind::Audio,
                    formats: vec![SdpFormat::for_track(&audio)],
                    control: "trackID=1".into(),
                    direction: Some(Direction::RecvOnly),
                    attributes: vec![],
                },
            ],
        }
    }

    #[test]
    fn golden_h264_pcmu() {
        let s = h264_pcmu_session();
        let expected = "v=0\r\n\
            o=- 1763762544 1 IN IP4 192.168.1.10\r\n\
            s=ipcamd\r\n\
            c=IN IP4 0.0.0.0\r\n\
            t=0 0\r\n\
            a=control:*\r\n\
            a=range:npt=now-\r\n\
            a=tool:ipcamd\r\n\
            m=video 0 RTP/AVP 96\r\n\
            a=rtpmap:96 H264/90000\r\n\
            a=fmtp:96 packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtoCgL/lhA==,aM48gA==\r\n\
            a=control:trackID=0\r\n\
            a=recvonly\r\n\
            a=framerate:25\r\n\
            m=audio 0 RTP/AVP 0\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=control:trackID=1\r\n\
            a=recvonly\r\n";
        assert_eq!(s.to_sdp_string(), expected);
        assert_eq!(parse_sdp(expected).unwrap(), s);
        let codec = parse_sdp(expected).unwrap().media[0].formats[0].to_codec();
        assert_eq!(
            codec,
            Some(CodecParams::H264 {
                sps: Bytes::from_static(SPS),
                pps: Bytes::from_static(PPS)
            })
        );
    }

    fn backchannel_media() -> SdpMedia {
        let f = |pt: u8, rtpmap: &str, fmtp: Option<&str>| SdpFormat {
            payload_type: pt,
            rtpmap: Some(rtpmap.into()),
            fmtp: fmtp.map(Into::into),
        };
        let aac = TrackInfo::new(
            CodecParams::Aac {
                rate: 16000,
                channels: 1,
                config: aac::aac_config(2, 16000, 1),
            },
            101,
        );
        SdpMedia {
            kind: MediaKind::Audio,
            formats: vec![
                f(0, "PCMU/8000", None),
                f(8, "PCMA/8000", None),
                f(97, "G726-16/8000", None),
                f(98, "G726-24/8000", None),
                f(99, "G726-32/8000", None),
                f(100, "G726-40/8000", None),
                SdpFormat::for_track(&aac),
                f(102, "opus/48000/2", Some("sprop-stereo=0")),
                f(103, "PCMU/16000", None),
                f(104, "PCMA/16000", None),
                f(105, "L16/16000", None),
            ],
            control: "rtsp://192.168.0.1/audioback".into(),
            direction: Some(Direction::SendOnly),
            attributes: vec![],
        }
    }

    #[test]
    fn golden_backchannel_section() {
        let s = SdpSession {
            origin_id: 2_890_842_807,
            origin_address: "fe80::1".into(),
            name: "RTSP Session with audiobackchannel".into(),
            range: None,
            attributes: vec![],
            media: vec![backchannel_media()],
        };
        let expected = "v=0\r\n\
            o=- 2890842807 1 IN IP6 fe80::1\r\n\
            s=RTSP Session with audiobackchannel\r\n\
            c=IN IP4 0.0.0.0\r\n\
            t=0 0\r\n\
            a=control:*\r\n\
            m=audio 0 RTP/AVP 0 8 97 98 99 100 101 102 103 104 105\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:8 PCMA/8000\r\n\
            a=rtpmap:97 G726-16/8000\r\n\
            a=rtpmap:98 G726-24/8000\r\n\
            a=rtpmap:99 G726-32/8000\r\n\
            a=rtpmap:100 G726-40/8000\r\n\
            a=rtpmap:101 MPEG4-GENERIC/16000/1\r\n\
            a=fmtp:101 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1408\r\n\
            a=rtpmap:102 opus/48000/2\r\n\
            a=fmtp:102 sprop-stereo=0\r\n\
            a=rtpmap:103 PCMU/16000\r\n\
            a=rtpmap:104 PCMA/16000\r\n\
            a=rtpmap:105 L16/16000\r\n\
            a=control:rtsp://192.168.0.1/audioback\r\n\
            a=sendonly\r\n";
        assert_eq!(s.to_sdp_string(), expected);
        let parsed = parse_sdp(expected).unwrap();
        assert_eq!(parsed, s);
        let m = &parsed.media[0];
        assert_eq!(
            m.format(101).unwrap().to_codec(),
            Some(CodecParams::Aac {
                rate: 16000,
                channels: 1,
                config: Bytes::from_static(&[0x14, 0x08])
            })
        );
        assert_eq!(
            m.format(104).unwrap().to_codec(),
            Some(CodecParams::Pcma {
                rate: 16000,
                channels: 1
            })
        );
        assert_eq!(m.format(99).unwrap().to_codec(), None);
        assert_eq!(m.format(102).unwrap().channels(), 2);
        assert_eq!(m.format(102).unwrap().clock_rate(), Some(48000));
    }

    #[test]
    fn for_track_covers_every_codec() {
        let cases = [
            (CodecParams::Jpeg, 26, "JPEG/90000", None),
            (
                CodecParams::Pcma {
                    rate: 8000,
                    channels: 1,
                },
                8,
                "PCMA/8000",
                None,
            ),
            (
                CodecParams::Pcmu {
                    rate: 16000,
                    channels: 2,
                },
                96,
                "PCMU/16000/2",
                None,
            ),
            (
                CodecParams::H265 {
                    vps: Bytes::from_static(&[0x40, 1]),
                    sps: Bytes::from_static(&[0x42, 1]),
                    pps: Bytes::from_static(&[0x44, 1]),
                },
                96,
                "H265/90000",
                Some("sprop-vps=QAE=;sprop-sps=QgE=;sprop-pps=RAE="),
            ),
        ];
        for (codec, pt, rtpmap, fmtp) in cases {
            let f = SdpFormat::for_track(&TrackInfo::new(codec.clone(), 96));
            assert_eq!(f.payload_type, pt);
            assert_eq!(f.rtpmap.as_deref(), Some(rtpmap));
            assert_eq!(f.fmtp.as_deref(), fmtp);
            assert_eq!(f.to_codec(), Some(codec));
        }
    }

    #[test]
    fn parses_the_onvif_backchannel_example() {
        // The example of docs/onvif.md "Audio backchannel": 4-field o= line, no t= line, LF only,
        // absolute control URLs, blank lines between sections.
        let text = "v=0\n\
            o=2890842807 IN IP4 192.168.0.1\n\
            s=RTSP Session with audiobackchannel\n\
            \n\
            m=video 0 RTP/AVP 26\n\
            a=control:rtsp://192.168.0.1/video\n\
            a=recvonly\n\
            \n\
            m=audio 0 RTP/AVP 0\n\
            a=control:rtsp://192.168.0.1/audio\n\
            a=recvonly\n\
            \n\
            m=audio 0 RTP/AVP 0 97 98 99 100\n\
            a=control:rtsp://192.168.0.1/audioback\n\
            a=rtpmap:0 PCMU/8000\n\
            a=rtpmap:97 G726-16/8000\n\
            a=rtpmap:98 G726-24/8000\n\
            a=rtpmap:99 G726-32/8000\n\
            a=rtpmap:100 G726-40/8000\n\
            a=sendonly\n";
        let s = parse_sdp(text).unwrap();
        assert_eq!(s.origin_id, 2_890_842_807);
        assert_eq!(s.origin_address, "192.168.0.1");
        assert_eq!(s.media.len(), 3);
        assert_eq!(s.media[0].kind, MediaKind::Video);
        assert_eq!(s.media[0].formats[0].to_codec(), Some(CodecParams::Jpeg));
        assert_eq!(s.media[1].direction, Some(Direction::RecvOnly));
        assert_eq!(
            s.media[1].formats[0].to_codec(),
            Some(CodecParams::Pcmu {
                rate: 8000,
                channels: 1
            })
        );
        let back = &s.media[2];
        assert_eq!(back.direction, Some(Direction::SendOnly));
        assert_eq!(back.control, "rtsp://192.168.0.1/audioback");
        assert_eq!(
            back.formats
                .iter()
                .map(|f| (f.payload_type, f.encoding_name().unwrap()))
                .collect::<Vec<_>>(),
            vec![
                (0, "PCMU"),
                (97, "G726-16"),
                (98, "G726-24"),
                (99, "G726-32"),
                (100, "G726-40")
            ]
        );
    }

    #[test]
    fn parses_camera_style_sdp_with_replay_tracks_and_metadata() {
        // In the style of an ONVIF recorder's replay DESCRIBE: session control URL,
        // x-onvif-track per media, an application (metadata) section to skip, lower-case
        // fmtp keys, unpadded base64.
        let text = "v=0\r\n\
            o=- 1 1 IN IP4 10.0.0.5\r\n\
            s=Replay\r\n\
            i=recording 1\r\n\
            c=IN IP4 0.0.0.0\r\n\
            t=0 0\r\n\
            a=control:rtsp://10.0.0.5/replay/1/\r\n\
            a=range:clock=20250101T000000Z-20250101T010000Z\r\n\
            m=video 0 RTP/AVP 96\r\n\
            b=AS:4000\r\n\
            a=control:trackID=1\r\n\
            a=rtpmap:96 H264/90000\r\n\
            a=fmtp:96 profile-level-id=42c01e;packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lhA,aM48gA\r\n\
            a=x-onvif-track:VIDEO001\r\n\
            m=application 0 RTP/AVP 107\r\n\
            a=control:trackID=3\r\n\
            a=rtpmap:107 vnd.onvif.metadata/90000\r\n\
            m=audio 0 RTP/AVP 97\r\n\
            a=control:trackID=2\r\n\
            a=rtpmap:97 mpeg4-generic/8000/1\r\n\
            a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1588; sizeLength=13; indexLength=3; indexDeltaLength=3\r\n\
            a=x-onvif-track:AUDIO001\r\n\
            a=inactive\r\n";
        let s = parse_sdp(text).unwrap();
        assert_eq!(s.control(), Some("rtsp://10.0.0.5/replay/1/"));
        assert_eq!(
            s.range.as_deref(),
            Some("clock=20250101T000000Z-20250101T010000Z")
        );
        assert_eq!(s.media.len(), 2);
        let v = &s.media[0];
        assert_eq!(v.attribute("x-onvif-track"), Some("VIDEO001"));
        assert_eq!(
            resolve_control(s.control().unwrap(), &v.control),
            "rtsp://10.0.0.5/replay/1/trackID=1"
        );
        assert_eq!(
            v.formats[0].to_codec(),
            Some(CodecParams::H264 {
                sps: Bytes::from_static(SPS),
                pps: Bytes::from_static(PPS)
            })
        );
        let a = &s.media[1];
        assert_eq!(a.control, "trackID=2");
        assert_eq!(a.attribute("x-onvif-track"), Some("AUDIO001"));
        assert_eq!(a.attribute("inactive"), Some(""));
        assert_eq!(a.direction, None);
        assert_eq!(
            a.formats[0].to_codec(),
            Some(CodecParams::Aac {
                rate: 8000,
                channels: 1,
                config: Bytes::from_static(&[0x15, 0x88])
            })
        );
    }

    #[test]
    fn unknown_codecs_pass_through_as_opaque_with_their_rtpmap() {
        let sdp = parse_sdp(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=cam\r\nt=0 0\r\n\
             m=audio 0 RTP/AVP 97\r\na=rtpmap:97 G726-32/8000\r\na=control:track2\r\n\
             m=audio 0 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 sprop-stereo=1\r\n\
             m=audio 0 RTP/AVP 14\r\n\
             m=video 0 RTP/AVP 98\r\na=control:track9\r\n",
        )
        .expect("SDP");
        let f = |i: usize| &sdp.media[i].formats[0];
        for i in 0..4 {
            assert_eq!(f(i).to_codec(), None, "media {i} is not depacketized");
        }
        let g726 = f(0).to_opaque(MediaKind::Audio).expect("G.726 opaque");
        assert_eq!(g726.name(), "G726-32");
        assert_eq!(g726.clock_rate(), 8000);
        let opus = f(1).to_opaque(MediaKind::Audio).expect("Opus opaque");
        assert_eq!((opus.name(), opus.clock_rate()), ("opus", 48_000));
        // Described to readers exactly as the camera did, with the camera's payload type.
        let out = SdpFormat::for_track(&TrackInfo {
            codec: opus,
            payload_type: 111,
        });
        assert_eq!(&out, f(1));
        // A static payload type without rtpmap: RFC 3551's clock (MPA: 90 kHz).
        let mpa = f(2).to_opaque(MediaKind::Audio).expect("MPA opaque");
        assert_eq!((mpa.name(), mpa.clock_rate()), ("opaque", 90_000));
        // A dynamic payload type without rtpmap: nothing could describe it.
        assert_eq!(f(3).to_opaque(MediaKind::Video), None);
    }

    #[test]
    fn resolve_control_urls() {
        assert_eq!(resolve_control("rtsp://h/s", "*"), "rtsp://h/s");
        assert_eq!(resolve_control("rtsp://h/s", ""), "rtsp://h/s");
        assert_eq!(
            resolve_control("rtsp://h/s", "trackID=1"),
            "rtsp://h/s/trackID=1"
        );
        assert_eq!(
            resolve_control("rtsp://h/s/", "trackID=1"),
            "rtsp://h/s/trackID=1"
        );
        assert_eq!(resolve_control("rtsp://h/s", "rtsp://x/y"), "rtsp://x/y");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse_sdp(""), Err(SdpError::MissingVersion));
        assert_eq!(
            parse_sdp("RTSP/1.0 200 OK\r\n"),
            Err(SdpError::MissingVersion)
        );
        assert_eq!(parse_sdp("v=1\r\n"), Err(SdpError::MissingVersion));
        assert!(matches!(
            parse_sdp("v=0\r\nm=video 0 RTP/AVP 300\r\n"),
            Err(SdpError::BadMedia { line: 2, .. })
        ));
        assert!(matches!(
            parse_sdp("v=0\r\nm=video\r\n"),
            Err(SdpError::BadMedia { line: 2, .. })
        ));
        // Attributes before any m= with odd content do not fail.
        let s = parse_sdp("v=0\na=\na=x\nm=audio 0 RTP/AVP\na=rtpmap:\na=fmtp:9 x\n").unwrap();
        assert_eq!(s.attributes, vec!["".to_owned(), "x".to_owned()]);
        assert_eq!(s.media[0].formats, vec![]);
        assert_eq!(
            s.media[0].attributes,
            vec!["rtpmap:".to_owned(), "fmtp:9 x".to_owned()]
        );
    }

    /// Totality: mutated and random session descriptions never make the parser, the
    /// codec parameters read from them or the writer panic.
    #[test]
    fn mutated_sdp_never_panics() {
        use crate::rtsp::test_support::XorShift;
        let seed = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\na=control:*\r\n\
            m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
            a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHg==,aM4=\r\n\
            m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/8000/1\r\na=fmtp:97 config=1588\r\n";
        let mut rng = XorShift::new(0x5d9);
        for _ in 0..20_000 {
            let text = match rng.below(4) {
                0 => {
                    let len = rng.below(200);
                    rng.bytes(len)
                }
                _ => rng.mutate(seed.as_bytes()),
            };
            if let Ok(s) = parse_sdp(&String::from_utf8_lossy(&text)) {
                for f in s.media.iter().flat_map(|m| &m.formats) {
                    if let Some(CodecParams::Aac { config, .. }) = f.to_codec() {
                        let _ = aac::parse_aac_config(&config);
                        let _ = aac::frame_length(&config);
                    }
                }
                let _ = s.to_sdp_string();
            }
        }
    }
}
