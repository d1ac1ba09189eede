//! The pure half of ONVIF replay over RTSP (docs/onvif.md "Replay"): the DESCRIBE of a
//! recording, the PLAY headers (`Range` clock or npt, `Scale`, `Rate-Control`, `Frames`,
//! `Immediate`) checked against the recording's spans, what a PLAY asks the store for, and
//! the size of the packets it goes out in (`Blocksize`).
//! Which units go out is the store's replay selection; the pump that sends them is the
//! server's.

use crate::codec::{MediaKind, TrackInfo};
use crate::packet::DEFAULT_MAX_PAYLOAD;
use crate::rtsp::headers::{
    format_clock, format_scale, parse_blocksize, parse_frames, parse_immediate, parse_range,
    parse_rate_control, parse_scale, Frames, NptTime, Range, RateControl,
};
use crate::rtsp::message::{Request, Response};
use crate::sdp::{SdpFormat, SdpMedia, SdpSession};
use crate::time::{format_iso8601, UnixMicros};

use super::catalogue::{RecordingView, Span};

/// The ONVIF track tokens: `VIDEO001`, `AUDIO001`, ... numbered per kind in track order.
pub fn track_tokens(tracks: &[TrackInfo]) -> Vec<String> {
    let (mut v, mut a) = (0, 0);
    tracks
        .iter()
        .map(|t| match t.kind() {
            MediaKind::Video => {
                v += 1;
                format!("VIDEO{v:03}")
            }
            MediaKind::Audio => {
                a += 1;
                format!("AUDIO{a:03}")
            }
        })
        .collect()
}

/// The SDP of a recording: one section per recorded track with `a=x-onvif-track`, and
/// the recorded range (`clock=first-last`, open while the recording grows).
pub fn describe_sdp(
    name: &str,
    rec: &RecordingView,
    origin_id: u64,
    origin_address: String,
) -> SdpSession {
    let range = match (rec.spans.first(), rec.spans.last()) {
        (Some(first), Some(last)) => Some(if last.growing {
            format!("clock={}-", format_clock(first.start))
        } else {
            format!(
                "clock={}-{}",
                format_clock(first.start),
                format_clock(last.end)
            )
        }),
        _ => None,
    };
    SdpSession {
        origin_id,
        origin_address,
        name: format!("ipcamd replay {name}"),
        range,
        attributes: Vec::new(),
        media: rec
            .tracks
            .iter()
            .zip(track_tokens(&rec.tracks))
            .enumerate()
            .map(|(i, (t, token))| SdpMedia {
                kind: t.kind(),
                formats: vec![SdpFormat::for_track(t)],
                control: format!("trackID={i}"),
                direction: None,
                attributes: std::iter::once(format!("x-onvif-track:{token}"))
                    .chain(rec.sdp_attributes.get(i).into_iter().flatten().cloned())
                    .collect(),
            })
            .collect(),
    }
}

/// Seconds from 1900 (the NTP epoch) to 1970 (the Unix epoch).
const NTP_TO_UNIX_SECONDS: f64 = 2_208_988_800.0;

/// An npt time at least this large (70 years into a recording) is taken as an absolute
/// time in seconds since 1900, as GStreamer sends one (see `parse_play`).
const NPT_NTP_EPOCH_GUESS: f64 = NTP_TO_UNIX_SECONDS;

/// Forward or reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayDirection {
    Forward,
    Reverse,
}

/// What a PLAY asks for, parsed and checked against the recording (no I/O).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    /// `None` without a `Range` header.
    pub start: Option<UnixMicros>,
    pub end: Option<UnixMicros>,
    pub has_range: bool,
    pub scale: f64,
    pub rate_control: RateControl,
    pub frames: Frames,
    pub immediate: bool,
}

impl PlayRequest {
    pub fn direction(&self) -> PlayDirection {
        if self.scale < 0.0 {
            PlayDirection::Reverse
        } else {
            PlayDirection::Forward
        }
    }
}

/// One delivery the store is asked for: where to start, which way, which frames, which
/// tracks, and whether it resumes a paused one (after the last unit sent).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRequest {
    pub play: PlayRequest,
    pub tracks: Vec<usize>,
    /// Set D on the first unit (an `Immediate: yes` jump).
    pub discontinuity: bool,
    /// Resume after this unit's wallclock (PLAY without Range after PAUSE).
    pub resume_after: Option<UnixMicros>,
    /// CSeq byte for the 0xABAC extension.
    pub cseq: u8,
    /// RTP payload bytes per packet on each kind of transport.
    pub packets: PacketSize,
}

/// Bytes of a replay packet besides its payload: the RTP header (12) and the 0xABAC
/// extension (16).
const REPLAY_RTP_OVERHEAD: usize = 12 + 16;

/// The smallest payload a replay packet is cut to, whatever a client asks: room for a
/// JPEG fragment's headers with two quantization tables (RFC 2435, 140 bytes) and then
/// some. RFC 2326 §12.7 lets the server override a `Blocksize` "with the media-specific
/// size if necessary".
pub const MIN_BLOCKSIZE: usize = 256;
/// The largest payload in an interleaved packet: its length field is 16 bits (RFC 2326
/// §10.12) and covers the RTP header and the extension.
pub const MAX_INTERLEAVED_BLOCKSIZE: usize = 65_535 - REPLAY_RTP_OVERHEAD;
/// The largest payload in a UDP datagram over IPv4 (65 507 bytes of UDP payload).
pub const MAX_UDP_BLOCKSIZE: usize = 65_507 - REPLAY_RTP_OVERHEAD;
/// The payload of a replay packet when nobody asks for another size: with the RTP header
/// and the extension it is a live packet's size (1412 bytes), one Ethernet frame.
pub const DEFAULT_BLOCKSIZE: usize = DEFAULT_MAX_PAYLOAD - 16;

/// RTP payload bytes per replay packet (docs/replay.md "Packet size").
///
/// A client's `Blocksize` (at SETUP or PLAY; the last one given holds for the session)
/// sets both, cut to what the transport carries. Without one, interleaved packets (TCP,
/// the HTTP tunnel, RTSPS) use the server's `replay_blocksize` (default
/// [`DEFAULT_BLOCKSIZE`]) and UDP packets [`DEFAULT_BLOCKSIZE`]: a larger packet than the
/// path's MTU is fragmented by IP, which only a client that asked for it should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSize {
    pub interleaved: usize,
    pub udp: usize,
}

impl Default for PacketSize {
    fn default() -> Self {
        PacketSize {
            interleaved: DEFAULT_BLOCKSIZE,
            udp: DEFAULT_BLOCKSIZE,
        }
    }
}

impl PacketSize {
    /// `asked`: the session's `Blocksize`; `configured`: the server's size for interleaved
    /// packets when none is asked.
    pub fn new(asked: Option<u32>, configured: usize) -> PacketSize {
        let cut = |n: usize, max: usize| n.clamp(MIN_BLOCKSIZE, max);
        match asked {
            Some(b) => {
                let b = usize::try_from(b).unwrap_or(usize::MAX);
                PacketSize {
                    interleaved: cut(b, MAX_INTERLEAVED_BLOCKSIZE),
                    udp: cut(b, MAX_UDP_BLOCKSIZE),
                }
            }
            None => PacketSize {
                interleaved: cut(configured, MAX_INTERLEAVED_BLOCKSIZE),
                udp: DEFAULT_BLOCKSIZE,
            },
        }
    }
}

/// The `Blocksize` of a SETUP or PLAY, if it has one; a value that is not a positive
/// number is a 400 naming it. (RFC 2326 §12.7 says 416, a status RTSP 1.0 does not define
/// elsewhere and HTTP uses for a bad `Range`: 400 tells a client what it did.)
pub fn blocksize(req: &Request) -> Result<Option<u32>, Response> {
    req.headers
        .get("Blocksize")
        .map(|v| parse_blocksize(v).map_err(|e| bad(e.to_string())))
        .transpose()
}

fn bad(reason: String) -> Response {
    Response::with_reason(400, format!("Bad Request ({reason})"))
}

pub(super) fn invalid_range(reason: String) -> Response {
    Response::with_reason(457, format!("Invalid Range ({reason})"))
}

/// Parses and checks the PLAY headers of a replay against the recording's spans.
pub fn parse_play(req: &Request, spans: &[Span]) -> Result<PlayRequest, Response> {
    let header = |name: &str| req.headers.get(name);
    let scale = match header("Scale") {
        Some(v) => parse_scale(v).map_err(|e| bad(e.to_string()))?,
        None => 1.0,
    };
    let rate_control = match header("Rate-Control") {
        Some(v) => parse_rate_control(v).map_err(|e| bad(e.to_string()))?,
        None => RateControl::Yes,
    };
    if rate_control == RateControl::No && scale.abs() != 1.0 {
        return Err(bad(format!(
            "Scale {} with Rate-Control: no; only 1 or -1 are allowed",
            format_scale(scale)
        )));
    }
    let frames = match header("Frames") {
        Some(v) => parse_frames(v).map_err(|e| bad(e.to_string()))?,
        None => Frames::All,
    };
    let immediate = match header("Immediate") {
        Some(v) => parse_immediate(v).map_err(|e| bad(e.to_string()))?,
        None => false,
    };
    let reverse = scale < 0.0;
    let first = spans.first().map(|s| s.start);
    let last = spans.last();
    let (start, end) = match header("Range") {
        None => (None, None),
        Some(v) => match parse_range(v).map_err(|e| bad(e.to_string()))? {
            Range::Clock { start, end } => (start, end),
            Range::Npt { start, end } => {
                let origin = first.unwrap_or(0);
                let at = |t: NptTime| match t {
                    NptTime::Now => last.map_or(origin, |l| l.end),
                    // GStreamer's rtspsrc outside ONVIF mode turns our SDP's
                    // `a=range:clock=` into seconds since 1900 and sends them back as npt
                    // (docs/replay.md): an offset of 70 years or more is such a time.
                    NptTime::Seconds(s) if s >= NPT_NTP_EPOCH_GUESS => {
                        ((s - NTP_TO_UNIX_SECONDS) * 1e6) as i64
                    }
                    NptTime::Seconds(s) => origin.saturating_add((s * 1e6) as i64),
                };
                (Some(at(start)), end.map(at))
            }
        },
    };
    if let (Some(s), Some(e)) = (start, end) {
        if reverse && e > s {
            return Err(invalid_range(format!(
                "a reverse (Scale {}) range must run from the later time to the earlier one",
                format_scale(scale)
            )));
        }
        if !reverse && e < s {
            return Err(invalid_range(
                "the range runs backward; reverse play needs a negative Scale".to_owned(),
            ));
        }
    }
    if let (Some(s), Some(first), Some(last)) = (start, first, last) {
        if !reverse && !last.growing && s > last.end {
            return Err(invalid_range(format!(
                "starts at {} after the end of the recording at {}",
                format_iso8601(s),
                format_iso8601(last.end)
            )));
        }
        if reverse && s < first {
            return Err(invalid_range(format!(
                "starts at {} before the beginning of the recording at {}",
                format_iso8601(s),
                format_iso8601(first)
            )));
        }
    }
    Ok(PlayRequest {
        start,
        end,
        has_range: header("Range").is_some(),
        scale,
        rate_control,
        frames,
        immediate,
    })
}

/// A PLAY without `Range` after PAUSE resumes the previous delivery after its last unit,
/// in the direction and mode it had, unless this PLAY names them anew.
pub fn resume(req: &Request, mut play: PlayRequest, prev: &PlayRequest) -> PlayRequest {
    if req.headers.get("Scale").is_none() {
        play.scale = prev.scale;
    }
    if req.headers.get("Rate-Control").is_none() {
        play.rate_control = prev.rate_control;
    }
    if req.headers.get("Frames").is_none() {
        play.frames = prev.frames;
    }
    play.start = prev.start;
    play.end = prev.end;
    play
}

/// What the server found when it opened the store for a PLAY.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayStart {
    /// The first unit that will be sent (the synchronisation point); `None`: no footage
    /// in that direction.
    pub start_point: Option<UnixMicros>,
    /// RTP timestamp of the first unit of each track (for RTP-Info), by track index.
    pub rtptimes: Vec<(usize, u32)>,
    /// The next RTP sequence number of each track, by track index.
    pub seqs: Vec<(usize, u16)>,
}

/// Whether the start point found lets the PLAY go on, or the 457 to give.
pub(super) fn check_start(
    play: &PlayRequest,
    start: &ReplayStart,
    growing: bool,
) -> Result<(), Response> {
    let forward = play.direction() == PlayDirection::Forward;
    let Some(sp) = start.start_point else {
        if growing && forward {
            return Ok(()); // waits at the live edge for footage
        }
        return Err(invalid_range(if forward {
            "no footage at or after the start".to_owned()
        } else {
            "no footage at or before the start".to_owned()
        }));
    };
    if let Some(end) = play.end {
        if (forward && sp > end) || (!forward && sp < end) {
            return Err(invalid_range(format!(
                "no footage between {} and {}: the nearest starts at {}",
                format_iso8601(play.start.unwrap_or(sp)),
                format_iso8601(end),
                format_iso8601(sp)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::message::{Decoder, Frame, Limits};
    use bytes::BytesMut;

    fn request(headers: &str) -> Request {
        let text = format!("PLAY rtsp://h/replay/cam1/ RTSP/1.0\r\nCSeq: 5\r\n{headers}\r\n");
        let mut buf = BytesMut::from(text.as_bytes());
        match Decoder::new(Limits::default()).decode(&mut buf) {
            Ok(Some(Frame::Request(r))) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const T: UnixMicros = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    fn spans(growing: bool) -> Vec<Span> {
        vec![
            Span {
                start: T,
                end: T + 60_000_000,
                growing: false,
            },
            Span {
                start: T + 120_000_000,
                end: T + 180_000_000,
                growing,
            },
        ]
    }

    fn status(r: Result<PlayRequest, Response>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn play_headers_good() {
        let p = parse_play(
            &request("Range: clock=20260101T000130Z-20260101T000030Z\r\nScale: -1\r\nFrames: intra\r\nRate-Control: no\r\n"),
            &spans(false),
        )
        .unwrap();
        assert_eq!(p.start, Some(T + 90_000_000));
        assert_eq!(p.end, Some(T + 30_000_000));
        assert_eq!(p.direction(), PlayDirection::Reverse);
        assert_eq!(p.rate_control, RateControl::No);
        assert_eq!(p.frames, Frames::Intra { interval_ms: None });
        assert!(!p.immediate);
        // GStreamer's first PLAY in ONVIF mode: from 1900, i.e. the beginning.
        let p = parse_play(
            &request("Range: clock=19000101T000000Z-\r\nRate-Control: no\r\n"),
            &spans(false),
        )
        .unwrap();
        assert_eq!(p.direction(), PlayDirection::Forward);
        // npt is relative to the start of the recording.
        let p = parse_play(
            &request("Range: npt=10-20.5\r\nScale: 2\r\nImmediate: yes\r\n"),
            &spans(false),
        )
        .unwrap();
        assert_eq!(
            (p.start, p.end),
            (Some(T + 10_000_000), Some(T + 20_500_000))
        );
        assert!(p.immediate);
        assert_eq!(p.scale, 2.0);
        // GStreamer's rtspsrc outside ONVIF mode: the SDP's clock range sent back as npt
        // seconds since 1900 (captured: `Range: npt=3976214400-3976214401.8000002` for a
        // recording of 2026-01-01T00:00:00Z..00:00:01.8Z).
        let p = parse_play(
            &request("Range: npt=3976214400-3976214401.8000002\r\n"),
            &spans(false),
        )
        .unwrap();
        let jan1_2026 = 1_767_225_600_000_000;
        assert_eq!(p.start, Some(jan1_2026));
        assert!(p
            .end
            .is_some_and(|e| (e - jan1_2026 - 1_800_000).abs() < 10));
        // Nothing: resume / from the beginning.
        let p = parse_play(&request(""), &spans(false)).unwrap();
        assert!(!p.has_range && p.start.is_none());
    }

    #[test]
    fn play_headers_bad() {
        let s = spans(false);
        for (h, want) in [
            ("Scale: 2\r\nRate-Control: no\r\n", 400),
            ("Scale: 0\r\n", 400),
            ("Scale: fast\r\n", 400),
            ("Rate-Control: maybe\r\n", 400),
            ("Frames: intra/abc\r\n", 400),
            ("Frames: predicted/100\r\n", 400),
            ("Immediate: perhaps\r\n", 400),
            ("Range: clock=2026-\r\n", 400),
            ("Range: smpte=0-\r\n", 400),
            // Direction of the range against Scale.
            ("Range: clock=20260101T000130Z-20260101T000030Z\r\n", 457),
            (
                "Range: clock=20260101T000030Z-20260101T000130Z\r\nScale: -1\r\n",
                457,
            ),
            // Outside the recording.
            ("Range: clock=20260101T010000Z-\r\n", 457),
            ("Range: clock=20251231T230000Z-\r\nScale: -1\r\n", 457),
        ] {
            assert_eq!(status(parse_play(&request(h), &s)), want, "{h:?}");
        }
        // A growing recording: a start after its current end is fine going forward.
        assert_eq!(
            status(parse_play(
                &request("Range: clock=20260101T010000Z-\r\n"),
                &spans(true)
            )),
            200
        );
    }

    #[test]
    fn start_points() {
        let fwd = parse_play(
            &request("Range: clock=20260101T000100Z-20260101T000110Z\r\n"),
            &spans(false),
        )
        .unwrap();
        let at = |sp: Option<UnixMicros>| ReplayStart {
            start_point: sp,
            ..Default::default()
        };
        // Found inside the range.
        assert!(check_start(&fwd, &at(Some(T + 60_000_000)), false).is_ok());
        // The nearest footage is after the end of the range (a gap): 457.
        assert_eq!(
            check_start(&fwd, &at(Some(T + 120_000_000)), false).map_err(|r| r.status),
            Err(457)
        );
        // None at all: 457, unless the recording grows and we go forward.
        assert_eq!(
            check_start(&fwd, &at(None), false).map_err(|r| r.status),
            Err(457)
        );
        assert!(check_start(&fwd, &at(None), true).is_ok());
    }

    #[test]
    fn tokens_number_per_kind() {
        use crate::codec::CodecParams;
        let v = TrackInfo::new(CodecParams::Jpeg, 96);
        let a = TrackInfo::new(
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            },
            0,
        );
        assert_eq!(
            track_tokens(&[v.clone(), a.clone(), a, v]),
            ["VIDEO001", "AUDIO001", "AUDIO002", "VIDEO002"]
        );
    }
}
