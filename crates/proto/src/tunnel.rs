//! RTSP over HTTP tunnelling (Apple, "Tunnelling RTSP and RTP through HTTP", QuickTime
//! Streaming Server; ONVIF Streaming Specification "RTP/RTSP/HTTP/TCP").
//!
//! The client opens two HTTP connections carrying the same `x-sessioncookie`:
//! - a GET, answered by [`tunnel_get_response`] and then kept open: it carries the server's
//!   RTSP responses and interleaved RTP/RTCP, raw (not base64);
//! - a POST (`Content-Type: application/x-rtsp-tunnelled`, a fake huge `Content-Length` that
//!   is ignored), never answered: its body is the client's RTSP requests, each base64 encoded
//!   on its own, decoded here by [`Base64Stream`] and fed to the same
//!   [`crate::rtsp::Decoder`] as a plain RTSP connection.
//!
//! [`parse_http_head`] reads the head of either. An older revision of the ONVIF spec has the
//! client put raw interleaved RTP (`$`, channel, length, payload) in the POST stream for the
//! audio backchannel; [`Base64Stream`] passes such frames through unchanged.
//!
//! Leaves out: pairing GET and POST by cookie and the connection lifetimes (the server's job),
//! HTTP authentication, HTTP/1.1 keep-alive and chunked bodies (tunnel clients use neither),
//! and WebSocket tunnelling.

use bytes::BytesMut;

use crate::rtsp::message::{is_bad_ctl, parse_header_lines, show, split_lines, Headers};
use crate::rtsp::token::is_token;

/// The media type of both tunnel connections.
pub const TUNNEL_CONTENT_TYPE: &str = "application/x-rtsp-tunnelled";

/// Headers accepted in one HTTP head.
const MAX_HTTP_HEADERS: usize = 64;

/// What went wrong on a tunnel connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    #[error("HTTP request head exceeds {limit} bytes without an empty line")]
    HeadTooLarge { limit: usize },
    #[error("malformed HTTP request head: {0}")]
    MalformedHead(String),
    #[error("byte 0x{byte:02x} at offset {offset} of the tunnel POST stream: {reason}")]
    InvalidBase64 {
        byte: u8,
        /// Bytes of the POST body before this one.
        offset: u64,
        reason: &'static str,
    },
}

/// The head of an HTTP request opening a tunnel connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequestHead {
    /// `GET` or `POST` for a tunnel; anything else is the caller's to reject.
    pub method: String,
    /// The request target as sent (`/cam1`).
    pub path: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    pub headers: Headers,
}

impl HttpRequestHead {
    /// The `x-sessioncookie` pairing GET with POST (header name case-insensitive), trimmed.
    pub fn session_cookie(&self) -> Option<&str> {
        self.headers
            .get("x-sessioncookie")
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }

    /// Whether a header lists the tunnel media type (parameters and case ignored).
    fn names_tunnel_type(&self, header: &str) -> bool {
        self.headers.get_all(header).any(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case(TUNNEL_CONTENT_TYPE)
            })
        })
    }

    /// A GET opening the server-to-client half: `Accept` or `Content-Type`
    /// `application/x-rtsp-tunnelled`, or simply a GET carrying `x-sessioncookie`.
    pub fn is_tunnel_get(&self) -> bool {
        self.method == "GET"
            && (self.names_tunnel_type("Accept")
                || self.names_tunnel_type("Content-Type")
                || self.session_cookie().is_some())
    }

    /// A POST opening the client-to-server half: `Content-Type`
    /// `application/x-rtsp-tunnelled`, or simply a POST carrying `x-sessioncookie`.
    pub fn is_tunnel_post(&self) -> bool {
        self.method == "POST"
            && (self.names_tunnel_type("Content-Type") || self.session_cookie().is_some())
    }
}

/// Parses an HTTP request head at the front of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((head, consumed)))`: `consumed` bytes (leading empty lines, the head and its empty
/// line) belong to the head; what follows is the POST body. Lines may end in CRLF or LF.
pub fn parse_http_head(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<(HttpRequestHead, usize)>, TunnelError> {
    let malformed = |m: String| Err(TunnelError::MalformedHead(m));
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let rest = buf.get(lead..).unwrap_or(&[]);
    let window = rest.get(..max_head_bytes.min(rest.len())).unwrap_or(&[]);
    let first_line = window.split(|&b| b == b'\n').next().unwrap_or(&[]);
    if let Some(&b) = first_line.iter().find(|&&b| is_bad_ctl(b)) {
        return malformed(format!(
            "control byte 0x{b:02x} in the request line `{}`",
            show(first_line)
        ));
    }
    let Some(end) = head_end(window) else {
        return if rest.len() >= max_head_bytes {
            Err(TunnelError::HeadTooLarge {
                limit: max_head_bytes,
            })
        } else {
            Ok(None)
        };
    };
    let lines = split_lines(window.get(..end).unwrap_or(&[]));
    let request_line = lines.first().copied().unwrap_or(&[]);
    let Ok(text) = std::str::from_utf8(request_line) else {
        return malformed(format!(
            "request line `{}` is not UTF-8",
            show(request_line)
        ));
    };
    let mut parts = text.split_ascii_whitespace();
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return malformed(format!(
            "request line `{}` is not `METHOD PATH HTTP/1.x`",
            show(request_line)
        ));
    };
    if !is_token(method) {
        return malformed(format!(
            "method `{}` is not a token",
            show(method.as_bytes())
        ));
    }
    if !version.starts_with("HTTP/") {
        return malformed(format!(
            "version `{}` is not HTTP/1.x",
            show(version.as_bytes())
        ));
    }
    let (headers, error) = parse_header_lines(lines.get(1..).unwrap_or(&[]), MAX_HTTP_HEADERS);
    if let Some(error) = error {
        return malformed(error);
    }
    let head = HttpRequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        version: version.to_owned(),
        headers,
    };
    Ok(Some((head, lead + end)))
}

/// The index just past the first empty line of `bytes` (whose first line is non-empty).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let before = bytes.get(..i)?;
        (b == b'\n' && (before.ends_with(b"\n") || before.ends_with(b"\n\r"))).then_some(i + 1)
    })
}

/// Whether the first line of `buf` looks like an HTTP request line (ends in `HTTP/x.y`):
/// lets a server that shares one port between RTSP and the tunnel pick the right parser
/// before consuming anything. `None` until the first line is complete.
pub fn is_http_request(buf: &[u8]) -> Option<bool> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = buf.get(start..).unwrap_or(&[]);
    let lf = rest.iter().position(|&b| b == b'\n')?;
    let line = rest.get(..lf).unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    Some(version.starts_with(b"HTTP/"))
}

/// The answer to a tunnel GET: `HTTP/1.0 200 OK`, the tunnel content type, no caching, and
/// the empty line; after it the connection carries raw RTSP responses and interleaved data.
/// No `Content-Length`: the body lasts as long as the connection (ffmpeg and GStreamer both
/// read it so).
pub fn tunnel_get_response() -> &'static [u8] {
    b"HTTP/1.0 200 OK\r\n\
      Content-Type: application/x-rtsp-tunnelled\r\n\
      Cache-Control: no-cache\r\n\
      Pragma: no-cache\r\n\
      Connection: close\r\n\
      \r\n"
}

/// Raw interleaved frame being passed through.
#[derive(Debug, Clone, Copy, Default)]
enum Raw {
    #[default]
    None,
    Header {
        bytes: [u8; 4],
        have: u8,
    },
    Payload {
        remaining: u16,
    },
}

/// Streaming base64 decoder of a tunnel POST body (RFC 4648 §4 alphabet).
///
/// Input may be split anywhere, even inside a 4-character quantum. Whitespace (space, tab,
/// CR, LF) is skipped. `=` padding ends a quantum and decoding continues after it (clients
/// encode each RTSP message on its own). A `$` at a quantum boundary starts a raw interleaved
/// frame (`$`, channel, 16-bit length, payload), copied to the output unchanged. Any other
/// byte is an error naming it and its offset; after an error every `feed` returns it again.
#[derive(Debug, Clone, Default)]
pub struct Base64Stream {
    quantum: [u8; 4],
    /// Characters of the current quantum, padding included.
    len: u8,
    /// `=` characters in the current quantum.
    pad: u8,
    raw: Raw,
    /// Bytes of the stream consumed so far.
    offset: u64,
    error: Option<TunnelError>,
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

impl Base64Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the POST body consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// True between quanta and outside raw frames: the stream could end here cleanly.
    pub fn is_at_boundary(&self) -> bool {
        self.len == 0 && matches!(self.raw, Raw::None)
    }

    /// Decodes `input`, appending the decoded bytes to `out`. On error, `out` holds what was
    /// decoded before the bad byte.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), TunnelError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        let mut rest = input;
        while let Some((&b, tail)) = rest.split_first() {
            match self.raw {
                Raw::Payload { remaining } => {
                    let n = usize::from(remaining).min(rest.len());
                    let (chunk, tail) = rest.split_at(n);
                    out.extend_from_slice(chunk);
                    self.offset += n as u64;
                    // n <= remaining, so this fits in u16 and does not underflow.
                    let left = remaining - n as u16;
                    self.raw = if left == 0 {
                        Raw::None
                    } else {
                        Raw::Payload { remaining: left }
                    };
                    rest = tail;
                    continue;
                }
                Raw::Header { mut bytes, have } => {
                    if let Some(slot) = bytes.get_mut(usize::from(have)) {
                        *slot = b;
                    }
                    let have = have + 1;
                    self.offset += 1;
                    rest = tail;
                    self.raw = if have < 4 {
                        Raw::Header { bytes, have }
                    } else {
                        out.extend_from_slice(&bytes);
                        let [_, _, hi, lo] = bytes;
                        match u16::from_be_bytes([hi, lo]) {
                            0 => Raw::None,
                            remaining => Raw::Payload { remaining },
                        }
                    };
                    continue;
                }
                Raw::None => {}
            }
            rest = tail;
            let at = self.offset;
            self.offset += 1;
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'$' if self.len == 0 => {
                    self.raw = Raw::Header {
                        bytes: [b'$', 0, 0, 0],
                        have: 1,
                    }
                }
                b'=' => {
                    if self.len < 2 {
                        return Err(self.fail(
                            b,
                            at,
                            "padding `=` before the third character of a quantum",
                        ));
                    }
                    self.pad += 1;
                    self.len += 1;
                    if self.len == 4 {
                        self.emit(out);
                    }
                }
                _ => {
                    let Some(value) = sextet(b) else {
                        let reason = if b == b'$' {
                            "`$` (raw interleaved frame) inside a base64 quantum"
                        } else {
                            "not in the base64 alphabet"
                        };
                        return Err(self.fail(b, at, reason));
                    };
                    if self.pad > 0 {
                        return Err(self.fail(b, at, "data after `=` padding inside a quantum"));
                    }
                    if let Some(slot) = self.quantum.get_mut(usize::from(self.len)) {
                        *slot = value;
                    }
                    self.len += 1;
                    if self.len == 4 {
                        self.emit(out);
                    }
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, byte: u8, offset: u64, reason: &'static str) -> TunnelError {
        let err = TunnelError::InvalidBase64 {
            byte,
            offset,
            reason,
        };
        self.error = Some(err.clone());
        err
    }

    /// Outputs the complete quantum (3 bytes, fewer with padding) and starts a new one.
    fn emit(&mut self, out: &mut BytesMut) {
        let [a, b, c, d] = self.quantum;
        let bytes = [
            a << 2 | b >> 4,
            (b & 0x0f) << 4 | c >> 2,
            (c & 0x03) << 6 | d,
        ];
        let n = 3usize.saturating_sub(usize::from(self.pad));
        out.extend_from_slice(bytes.get(..n).unwrap_or(&[]));
        self.quantum = [0; 4];
        self.len = 0;
        self.pad = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::message::{write_interleaved, Decoder, Frame, Method};
    use crate::rtsp::test_support::{capture_messages, XorShift};
    use base64::Engine as _;

    const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn ffmpeg_http() -> Vec<String> {
        capture_messages("ffmpeg-http.txt")
    }

    #[test]
    fn ffmpeg_get_and_post_heads() {
        let messages = ffmpeg_http();
        assert_eq!(messages.len(), 3);
        let (get, used) = parse_http_head(messages[0].as_bytes(), 8192)
            .unwrap()
            .unwrap();
        assert_eq!(used, messages[0].len());
        assert_eq!(
            (get.method.as_str(), get.path.as_str(), get.version.as_str()),
            ("GET", "/cam1", "HTTP/1.1")
        );
        assert_eq!(get.session_cookie(), Some("ee6fc6cb3e42321f"));
        assert!(get.is_tunnel_get() && !get.is_tunnel_post());
        assert_eq!(get.headers.get("range"), Some("bytes=0-"));
        assert_eq!(get.headers.get("Icy-MetaData"), Some("1"));
        assert_eq!(get.headers.len(), 9);

        // The POST head followed by the start of its body: only the head is consumed.
        let body = STD.encode(&messages[2]);
        let mut post_bytes = messages[1].clone().into_bytes();
        post_bytes.extend_from_slice(body.as_bytes());
        let (post, used) = parse_http_head(&post_bytes, 8192).unwrap().unwrap();
        assert_eq!(used, messages[1].len());
        assert_eq!(&post_bytes[used..], body.as_bytes());
        assert_eq!(post.method, "POST");
        assert_eq!(post.session_cookie(), get.session_cookie());
        assert!(post.is_tunnel_post() && !post.is_tunnel_get());
        assert_eq!(post.headers.get("content-length"), Some("32767"));
        assert_eq!(
            post.headers.get("Expires"),
            Some("Sun, 9 Jan 1972 00:00:00 GMT")
        );

        // Incomplete at every cut before the empty line.
        for cut in 0..messages[0].len() {
            assert_eq!(
                parse_http_head(&messages[0].as_bytes()[..cut], 8192),
                Ok(None),
                "cut {cut}"
            );
        }
        // LF-only line ends and leading empty lines.
        let lf = format!("\r\n{}", messages[0].replace("\r\n", "\n"));
        let (head, used) = parse_http_head(lf.as_bytes(), 8192).unwrap().unwrap();
        assert_eq!(used, lf.len());
        assert_eq!(head, get);
    }

    #[test]
    fn tunnel_detection_variants() {
        let head = |text: &str| parse_http_head(text.as_bytes(), 4096).unwrap().unwrap().0;
        // GStreamer style: cookie and Accept.
        let get = head("GET /cam1 HTTP/1.0\r\nx-sessioncookie: abc\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n");
        assert!(get.is_tunnel_get());
        // Only the content type, in another case, with a parameter.
        let get =
            head("GET /x HTTP/1.1\r\nACCEPT: text/html, Application/X-RTSP-Tunnelled;q=1\r\n\r\n");
        assert!(get.is_tunnel_get());
        assert_eq!(get.session_cookie(), None);
        // Only the cookie.
        let post = head("POST /x HTTP/1.1\r\nX-SessionCookie:  c00k1e \r\n\r\n");
        assert!(post.is_tunnel_post());
        assert_eq!(post.session_cookie(), Some("c00k1e"));
        // A plain web request is not a tunnel.
        let web = head("GET /index.html HTTP/1.1\r\nAccept: text/html\r\nx-sessioncookie:\r\n\r\n");
        assert!(!web.is_tunnel_get() && !web.is_tunnel_post());
        let put = head("PUT /x HTTP/1.1\r\nx-sessioncookie: a\r\n\r\n");
        assert!(!put.is_tunnel_get() && !put.is_tunnel_post());
    }

    #[test]
    fn http_head_errors() {
        assert_eq!(
            parse_http_head(&[b'A'; 100], 100),
            Err(TunnelError::HeadTooLarge { limit: 100 })
        );
        assert_eq!(parse_http_head(&[b'A'; 99], 100), Ok(None));
        for (text, needle) in [
            (&b"GET /x\r\n\r\n"[..], "is not `METHOD PATH HTTP/1.x`"),
            (
                b"GET /x RTSP/1.0\r\n\r\n",
                "version `RTSP/1.0` is not HTTP/1.x",
            ),
            (b"G(T /x HTTP/1.1\r\n\r\n", "method `G(T` is not a token"),
            (
                b"GET /x HTTP/1.1\r\nNoColon\r\n\r\n",
                "line 2: header line without a colon",
            ),
            (b"\x16\x03\x01\x00", "control byte 0x16"),
            (b"GET /\xff HTTP/1.1\r\n\r\n", "is not UTF-8"),
        ] {
            let err = parse_http_head(text, 4096).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert_eq!(is_http_request(b"GET /cam1 HTTP/1.1\r\n"), Some(true));
        assert_eq!(is_http_request(b"\r\nPOST /cam1 HTTP/1.0\n"), Some(true));
        assert_eq!(is_http_request(b"OPTIONS * RTSP/1.0\r\n"), Some(false));
        assert_eq!(is_http_request(b"GET /cam1 HTTP/1.1"), None);
        assert_eq!(is_http_request(b"$\x00\x00\x01\n"), Some(false));
    }

    #[test]
    fn get_response_text() {
        let (status, rest) = tunnel_get_response().split_at(17);
        assert_eq!(status, b"HTTP/1.0 200 OK\r\n");
        let text = std::str::from_utf8(rest).unwrap();
        assert!(text.ends_with("\r\n\r\n") && text.matches("\r\n").count() == 5);
        for line in [
            "Content-Type: application/x-rtsp-tunnelled\r\n",
            "Cache-Control: no-cache\r\n",
            "Pragma: no-cache\r\n",
            "Connection: close\r\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }

    /// The RTSP requests of an ffmpeg session over the tunnel: the captured OPTIONS, then
    /// the ffmpeg TCP session's other requests.
    fn tunnel_requests() -> Vec<String> {
        let mut v = vec![ffmpeg_http()[2].clone()];
        v.extend(capture_messages("ffmpeg-tcp.txt").into_iter().skip(1));
        v
    }

    fn feed_chunked(
        input: &[u8],
        sizes: &mut dyn FnMut() -> usize,
    ) -> Result<Vec<u8>, TunnelError> {
        let mut stream = Base64Stream::new();
        let mut out = BytesMut::new();
        let mut rest = input;
        while !rest.is_empty() {
            let n = sizes().clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            stream.feed(chunk, &mut out)?;
            rest = tail;
        }
        assert!(stream.is_at_boundary());
        assert_eq!(stream.offset(), input.len() as u64);
        Ok(out.to_vec())
    }

    #[test]
    fn base64_post_body_in_every_chunking() {
        let requests = tunnel_requests();
        // Each message encoded on its own (so padding appears mid-stream), as clients do;
        // some with line breaks inside, as MIME encoders do.
        let mut body = Vec::new();
        let mut plain = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            let encoded = STD.encode(r);
            if i % 2 == 1 {
                for (j, piece) in encoded.as_bytes().chunks(8).enumerate() {
                    body.extend_from_slice(piece);
                    if j % 3 == 0 {
                        body.extend_from_slice(b"\r\n");
                    }
                }
            } else {
                body.extend_from_slice(encoded.as_bytes());
            }
            plain.extend_from_slice(r.as_bytes());
        }
        assert!(body.iter().filter(|&&b| b == b'=').count() > 2);
        for size in 1..=7 {
            assert_eq!(
                feed_chunked(&body, &mut || size).unwrap(),
                plain,
                "size {size}"
            );
        }
        for split in 0..=body.len() {
            let mut first = true;
            let mut sizes = || {
                let n = if first { split } else { usize::MAX };
                first = false;
                n
            };
            assert_eq!(
                feed_chunked(&body, &mut sizes).unwrap(),
                plain,
                "split {split}"
            );
        }
        let mut rng = XorShift::new(99);
        for _ in 0..200 {
            assert_eq!(
                feed_chunked(&body, &mut || 1 + rng.below(7)).unwrap(),
                plain
            );
        }
        // And the decoded stream is the RTSP session.
        let mut buf = BytesMut::from(&plain[..]);
        let mut decoder = Decoder::default();
        let mut methods = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            let Frame::Request(r) = frame else { panic!() };
            methods.push(r.method);
        }
        assert_eq!(
            methods,
            [
                Method::Options,
                Method::Describe,
                Method::Setup,
                Method::Setup,
                Method::Play,
                Method::Teardown
            ]
        );
    }

    #[test]
    fn raw_interleaved_frames_in_the_post_stream() {
        // The older ONVIF backchannel form: raw `$` frames between base64 requests.
        let rtp: Vec<u8> = (0..=255u8).chain(b"$=\r\n ".iter().copied()).collect();
        let play = &tunnel_requests()[4];
        let mut body = Vec::new();
        let mut plain = Vec::new();
        body.extend_from_slice(STD.encode(play).as_bytes());
        plain.extend_from_slice(play.as_bytes());
        for (channel, payload) in [(4u8, &rtp[..]), (5, &b""[..]), (4, &rtp[..10])] {
            let header = write_interleaved(channel, payload.len());
            body.extend_from_slice(&header);
            body.extend_from_slice(payload);
            plain.extend_from_slice(&header);
            plain.extend_from_slice(payload);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            STD.encode("GET_PARAMETER * RTSP/1.0\r\nCSeq: 9\r\n\r\n")
                .as_bytes(),
        );
        plain.extend_from_slice(b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 9\r\n\r\n");
        for size in 1..=7 {
            assert_eq!(
                feed_chunked(&body, &mut || size).unwrap(),
                plain,
                "size {size}"
            );
        }
        for split in 0..=body.len() {
            let mut first = true;
            let mut sizes = || {
                let n = if first { split } else { usize::MAX };
                first = false;
                n
            };
            assert_eq!(
                feed_chunked(&body, &mut sizes).unwrap(),
                plain,
                "split {split}"
            );
        }
        let mut buf = BytesMut::from(&plain[..]);
        let mut decoder = Decoder::default();
        let mut kinds = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            kinds.push(match frame {
                Frame::Request(r) => r.method.to_string(),
                Frame::Interleaved { channel, payload } => format!("{channel}:{}", payload.len()),
                Frame::Response(_) => panic!(),
            });
        }
        assert_eq!(kinds, ["PLAY", "4:261", "5:0", "4:10", "GET_PARAMETER"]);
    }

    #[test]
    fn base64_errors_name_byte_and_offset() {
        for (input, byte, offset, needle) in [
            (&b"T1BU*"[..], b'*', 4, "not in the base64 alphabet"),
            (b"T1BU\r\nSU9O\x00", 0, 10, "not in the base64 alphabet"),
            (b"T1$", b'$', 2, "inside a base64 quantum"),
            (b"=", b'=', 0, "padding"),
            (b"QQ=A", b'A', 3, "after `=` padding"),
            (b"QUJD-", b'-', 4, "alphabet"),
        ] {
            let mut stream = Base64Stream::new();
            let mut out = BytesMut::new();
            let err = stream.feed(input, &mut out).unwrap_err();
            let TunnelError::InvalidBase64 {
                byte: b,
                offset: o,
                reason,
            } = &err
            else {
                panic!("{err}")
            };
            assert_eq!((*b, *o), (byte, offset), "{err}");
            assert!(reason.contains(needle), "{err}");
            assert!(err.to_string().contains(&format!("offset {offset}")));
            // Sticky.
            assert_eq!(stream.feed(b"QUJD", &mut out), Err(err));
        }
        // Offsets count across feeds.
        let mut stream = Base64Stream::new();
        let mut out = BytesMut::new();
        stream.feed(b"QUJD", &mut out).unwrap();
        stream.feed(b"QQ==\n", &mut out).unwrap();
        assert_eq!(&out[..], b"ABCA");
        let err = stream.feed(b"Q!", &mut out).unwrap_err();
        assert!(err.to_string().contains("0x21 at offset 10"), "{err}");
        // Padding variants decode.
        for (text, plain) in [
            (&b"QQ=="[..], &b"A"[..]),
            (b"QUI=", b"AB"),
            (b"QUJD", b"ABC"),
            (b"Q Q = =", b"A"),
        ] {
            let mut out = BytesMut::new();
            Base64Stream::new().feed(text, &mut out).unwrap();
            assert_eq!(&out[..], plain);
        }
    }

    #[test]
    fn tunnel_parsers_never_panic_on_random_input() {
        let mut rng = XorShift::new(0xbad_c0de);
        let messages = ffmpeg_http();
        let encoded = STD.encode(&messages[2]);
        let alphabet = b"QUJDabc+/=$ \r\n\x00\x01\xff";
        for round in 0..5000 {
            let input = match round % 4 {
                0 => {
                    let len = rng.below(300);
                    rng.bytes(len)
                }
                1 => {
                    let len = rng.below(300);
                    rng.pick(alphabet, len)
                }
                2 => rng.mutate(encoded.as_bytes()),
                _ => {
                    let m = &messages[rng.below(2)];
                    rng.mutate(m.as_bytes())
                }
            };
            let _ = parse_http_head(&input, 1 + rng.below(400));
            let _ = is_http_request(&input);
            let mut stream = Base64Stream::new();
            let mut out = BytesMut::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(9)).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                if stream.feed(chunk, &mut out).is_err() {
                    break;
                }
                rest = tail;
            }
            assert!(out.len() <= input.len());
        }
    }
}
