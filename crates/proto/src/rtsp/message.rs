//! RTSP/1.0 messages and their framing on a TCP connection.
//!
//! Implements, of RFC 2326:
//! - §4 the message format: start line, header lines, empty line, body whose length is given
//!   by `Content-Length` (§4.3, §12.14); no `Content-Length` means no body;
//! - §6.1 the request line, with the methods of §10 as tokens ([`Method`]);
//! - §7.1 the status line and the status codes of §7.1.1 / §11 ([`reason_phrase`], which also
//!   knows the codes RFC 7826 §17 added);
//! - §10.12 embedded (interleaved) binary data: `$`, channel, 16-bit big-endian length,
//!   payload ([`Frame::Interleaved`], [`write_interleaved`]);
//! - the header syntax of RFC 2616 §4.2 that RFC 2326 §4.2 borrows: case-insensitive names,
//!   continuation lines (leading space or tab) folded into the previous value.
//!
//! Liberal in what it accepts (RFC 2326 §2 / RFC 7826 §20.2.2): lines may end in bare LF,
//! empty lines between messages (keep-alives) are skipped, runs of spaces in the start line
//! are tolerated, repeated headers are kept in order (GStreamer sends two `User-Agent`s).
//! Header values are decoded as UTF-8 with invalid sequences replaced, never rejected.
//!
//! Leaves out: the meaning of methods and headers (the server's session state machine and
//! [`super::headers`] do that); RTSP 2.0 (a request line with `RTSP/2.0` is parsed and then
//! reported as [`DecodeError`] with status 505 so the server can answer it); chunked or
//! connection-close delimited bodies (RTSP has neither); authentication headers.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::token::is_token;

/// The only protocol version this crate speaks, as it appears on the wire.
pub const RTSP_VERSION: &str = "RTSP/1.0";

/// An RTSP method (RFC 2326 §6.1, §10). Methods are case-sensitive tokens: `options` is an
/// extension method named `options`, not OPTIONS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Options,
    Describe,
    Setup,
    Play,
    Pause,
    Teardown,
    GetParameter,
    SetParameter,
    Announce,
    Record,
    Redirect,
    /// Any other syntactically valid token (the server answers `501 Not Implemented`).
    Other(String),
}

impl Method {
    /// The method as written in the request line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Announce => "ANNOUNCE",
            Method::Record => "RECORD",
            Method::Redirect => "REDIRECT",
            Method::Other(s) => s,
        }
    }

    /// Parses a method token (case-sensitive). `None` if `token` is not an RFC 2616 §2.2
    /// token (empty, or containing a separator, a space or a control character).
    pub fn from_token(token: &str) -> Option<Method> {
        if !is_token(token) {
            return None;
        }
        Some(match token {
            "OPTIONS" => Method::Options,
            "DESCRIBE" => Method::Describe,
            "SETUP" => Method::Setup,
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "TEARDOWN" => Method::Teardown,
            "GET_PARAMETER" => Method::GetParameter,
            "SET_PARAMETER" => Method::SetParameter,
            "ANNOUNCE" => Method::Announce,
            "RECORD" => Method::Record,
            "REDIRECT" => Method::Redirect,
            other => Method::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a valid method token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RTSP method `{0}`: not a token (RFC 2616 §2.2)")]
pub struct InvalidMethod(pub String);

impl std::str::FromStr for Method {
    type Err = InvalidMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::from_token(s).ok_or_else(|| InvalidMethod(s.to_owned()))
    }
}

/// Control characters that never belong in a message head (CR and LF end lines and are
/// handled separately; HT is whitespace).
pub(crate) fn is_bad_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f
}

/// Shows (part of) a line in an error message: at most 100 bytes, non-printables escaped.
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 100;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut s = cut.escape_ascii().to_string();
    if bytes.len() > MAX {
        s.push_str("...");
    }
    s
}

/// The header fields of a message, in the order received (or to be sent). Names compare
/// case-insensitively; repeated fields are kept as separate entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The values of every header called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds a header after the existing ones, even if one of that name exists.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces the first header called `name` (keeping its position) and removes any later
    /// ones; appends if there is none.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self
            .entries
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(first) => {
                let mut index = 0;
                self.entries.retain(|(n, _)| {
                    let keep = index <= first || !n.eq_ignore_ascii_case(&name);
                    index += 1;
                    keep
                });
                if let Some(entry) = self.entries.get_mut(first) {
                    *entry = (name, value);
                }
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Removes every header called `name`; returns whether there was any.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.entries.len() != before
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of header entries (repeated names count once per entry).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `CSeq` value (RFC 2326 §12.17), if present and a decimal `u32`.
    pub fn cseq(&self) -> Option<u32> {
        self.get("CSeq").and_then(|v| parse_decimal(v.trim()))
    }

    /// The session id of the `Session` header (RFC 2326 §12.37): the part before any
    /// `;timeout=` parameter, trimmed. `None` if absent or empty.
    pub fn session_id(&self) -> Option<&str> {
        let value = self.get("Session")?;
        let id = value.split(';').next().unwrap_or("").trim();
        (!id.is_empty()).then_some(id)
    }

    /// Writes `Name: value\r\n` lines, skipping `Content-Length` (the writers add the true
    /// one). CR and LF inside names or values are replaced by spaces so that a value echoed
    /// from a client can never inject a header.
    fn write_to(&self, out: &mut BytesMut) {
        for (name, value) in &self.entries {
            if name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            put_sanitized(out, name);
            out.put_slice(b": ");
            put_sanitized(out, value);
            out.put_slice(b"\r\n");
        }
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers {
            entries: iter
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }
}

fn put_sanitized(out: &mut BytesMut, s: &str) {
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend(
            s.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(s.as_bytes());
    }
}

/// Writes the header lines, the true `Content-Length` when there is a body, the empty line
/// and the body.
fn write_tail(headers: &Headers, body: &Bytes, out: &mut BytesMut) {
    headers.write_to(out);
    if !body.is_empty() {
        out.put_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}

/// A decimal number made of ASCII digits only (no sign, no spaces).
fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// An RTSP request (RFC 2326 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The Request-URI exactly as received (`*` for a server-wide OPTIONS).
    pub uri: String,
    pub headers: Headers,
    pub body: Bytes,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Request {
            method,
            uri: uri.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Builder: appends a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Builder: sets the body with its `Content-Type` and `Content-Length`.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.headers.set("Content-Type", content_type);
        self.headers
            .set("Content-Length", self.body.len().to_string());
        self
    }

    /// The `CSeq` (RFC 2326 §12.17).
    pub fn cseq(&self) -> Option<u32> {
        self.headers.cseq()
    }

    /// The session id of the `Session` header, without `;timeout=`.
    pub fn session_id(&self) -> Option<&str> {
        self.headers.session_id()
    }

    /// Every feature tag of every `Require` header (RFC 2326 §12.32), comma-split and
    /// trimmed, empty ones dropped, in order.
    pub fn require_tags(&self) -> Vec<String> {
        self.headers
            .get_all("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Serialises the request (`RTSP/1.0`, CRLF line ends). `Content-Length` is written from
    /// the body's length whenever the body is non-empty, whatever the headers say.
    pub fn write_to(&self, out: &mut BytesMut) {
        put_sanitized(out, self.method.as_str());
        out.put_u8(b' ');
        put_sanitized(out, &self.uri);
        out.put_u8(b' ');
        out.put_slice(RTSP_VERSION.as_bytes());
        out.put_slice(b"\r\n");
        write_tail(&self.headers, &self.body, out);
    }
}

/// An RTSP response (RFC 2326 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

impl Response {
    /// A response with the standard reason phrase of `status` ([`reason_phrase`]).
    pub fn new(status: u16) -> Self {
        Self::with_reason(status, reason_phrase(status))
    }

    /// A response with a custom reason phrase.
    pub fn with_reason(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Builder: appends a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Builder: sets the body with its `Content-Type` and `Content-Length`.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.headers.set("Content-Type", content_type);
        self.headers
            .set("Content-Length", self.body.len().to_string());
        self
    }

    /// The `CSeq` (RFC 2326 §12.17).
    pub fn cseq(&self) -> Option<u32> {
        self.headers.cseq()
    }

    /// The session id of the `Session` header, without `;timeout=`.
    pub fn session_id(&self) -> Option<&str> {
        self.headers.session_id()
    }

    /// Serialises the response (`RTSP/1.0 <status> <reason>`, CRLF line ends). The status is
    /// written as three digits. `Content-Length` is written from the body's length whenever
    /// the body is non-empty, whatever the headers say.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_slice(format!("{RTSP_VERSION} {:03} ", self.status).as_bytes());
        put_sanitized(out, &self.reason);
        out.put_slice(b"\r\n");
        write_tail(&self.headers, &self.body, out);
    }
}

/// The standard reason phrase of an RTSP status code: RFC 2326 §7.1.1 (all of them, including
/// 451-462 and 551) plus the codes RFC 7826 §17 added. Unknown codes get a phrase naming
/// their class.
pub fn reason_phrase(status: u16) -> &'static str {
    if let Some(phrase) = standard_reason(status) {
        return phrase;
    }
    match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Unknown Status",
    }
}

fn standard_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        250 => "Low on Storage Space",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Time-out",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        451 => "Parameter Not Understood",
        452 => "Conference Not Found",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        456 => "Header Field Not Valid for Resource",
        457 => "Invalid Range",
        458 => "Parameter Is Read-Only",
        459 => "Aggregate operation not allowed",
        460 => "Only aggregate operation allowed",
        461 => "Unsupported transport",
        462 => "Destination unreachable",
        463 => "Destination Prohibited",
        464 => "Data Transport Not Ready Yet",
        465 => "Notification Reason Unknown",
        466 => "Key Management Error",
        470 => "Connection Authorization Required",
        471 => "Connection Credentials Not Accepted",
        472 => "Failure to Establish Secure Connection",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        505 => "RTSP Version not supported",
        551 => "Option not supported",
        553 => "Proxy Unavailable",
        _ => return None,
    })
}

/// The 4-byte header of an interleaved binary frame (RFC 2326 §10.12): `$`, the channel, and
/// the payload length as a big-endian `u16`. The payload follows it on the wire.
///
/// # Panics
/// If `payload_len > 65535`: such a payload cannot be framed, and truncating the length
/// would desynchronise the client. Packetizers keep RTP packets far below that; callers that
/// cannot guarantee it use [`try_write_interleaved`].
pub fn write_interleaved(channel: u8, payload_len: usize) -> [u8; 4] {
    match try_write_interleaved(channel, payload_len) {
        Some(header) => header,
        None => panic!("interleaved payload of {payload_len} bytes exceeds 65535"),
    }
}

/// [`write_interleaved`], or `None` if `payload_len > 65535`.
pub fn try_write_interleaved(channel: u8, payload_len: usize) -> Option<[u8; 4]> {
    let len = u16::try_from(payload_len).ok()?;
    let [hi, lo] = len.to_be_bytes();
    Some([b'$', channel, hi, lo])
}

/// One unit of what arrives on an RTSP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Request(Request),
    Response(Response),
    /// An interleaved binary frame (RFC 2326 §10.12): RTP or RTCP on the given channel.
    Interleaved {
        channel: u8,
        payload: Bytes,
    },
}

/// Size limits of the [`Decoder`]; a peer exceeding them gets an error, never an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Start line + header lines + the empty line, after any leading empty lines.
    pub max_head_bytes: usize,
    /// Number of header lines (continuation lines not counted).
    pub max_headers: usize,
    /// `Content-Length` of one message.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a message could not be decoded, and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The status to answer with: 400 (malformed), 413 (body over the limit), 505 (a version
    /// other than RTSP/1.0).
    pub status: u16,
    /// The CSeq of the rejected message when it could be read, for the answer.
    pub cseq: Option<u32>,
    /// What was wrong: which line, header or value.
    pub message: String,
    /// `true`: the stream cannot be resynchronised (binary data where a start line belongs, a
    /// head over the limit, an unreadable `Content-Length`); answer, then close the
    /// connection. Every later `decode` returns this error again. `false`: the bad message
    /// has been consumed (its head, and its body as given by `Content-Length`) and decoding
    /// can continue with the next one.
    pub fatal: bool,
    /// The protocol version of the start line when it could be read (`RTSP/1.0`, `RTSP/2.0`,
    /// `HTTP/1.1`...), so that the server can tell an HTTP client on its RTSP port.
    pub version: Option<String>,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (answer {} {}",
            self.message,
            self.status,
            reason_phrase(self.status)
        )?;
        if let Some(cseq) = self.cseq {
            write!(f, ", CSeq {cseq}")?;
        }
        if self.fatal {
            f.write_str(", then close the connection")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// The answer to send: the status with its standard reason phrase, and the CSeq when it
    /// could be read.
    pub fn to_response(&self) -> Response {
        let response = Response::new(self.status);
        match self.cseq {
            Some(cseq) => response.header("CSeq", cseq.to_string()),
            None => response,
        }
    }
}

/// A parsed head waiting for its body.
#[derive(Debug, Clone)]
struct Pending {
    head_len: usize,
    body_len: usize,
    message: Message,
}

#[derive(Debug, Clone)]
enum Message {
    Request(Request),
    Response(Response),
}

enum StartLine {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

/// Incremental decoder of the byte stream of one RTSP connection (requests, responses and
/// `$` interleaved frames, in any mix).
///
/// The caller appends received bytes to a `BytesMut` and calls [`Decoder::decode`] until it
/// returns `Ok(None)`. Between calls the caller must only append to that buffer (the decoder
/// remembers how far it has looked); use one decoder per buffer.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    /// Body bytes of a rejected message still to be discarded.
    skip: usize,
    /// How many bytes of the current head have been searched for its end.
    scanned: usize,
    /// Whether `scanned` is still inside the start line.
    in_first_line: bool,
    /// A parsed head whose body has not fully arrived.
    pending: Option<Pending>,
    /// Set by a fatal error; returned again by every later call.
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            skip: 0,
            scanned: 0,
            in_first_line: true,
            pending: None,
            failed: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Consumes one complete frame from the front of `buf`. `Ok(None)`: more bytes are
    /// needed (bytes already seen may have been consumed: keep-alive empty lines, the body of
    /// a rejected message). `Err`: see [`DecodeError::fatal`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        if let Some(pending) = self.pending.take() {
            return Ok(self.finish(buf, pending));
        }
        let blank = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank > 0 {
            buf.advance(blank);
            self.reset_scan();
        }
        match buf.first() {
            None => Ok(None),
            Some(b'$') => Ok(Self::decode_interleaved(buf)),
            Some(_) => self.decode_message(buf),
        }
    }

    fn reset_scan(&mut self) {
        self.scanned = 0;
        self.in_first_line = true;
    }

    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.failed = Some(err.clone());
        err
    }

    fn decode_interleaved(buf: &mut BytesMut) -> Option<Frame> {
        let Some(&[_, channel, hi, lo]) = buf.get(..4) else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if buf.len() < 4 + len {
            return None;
        }
        buf.advance(4);
        let payload = buf.split_to(len).freeze();
        Some(Frame::Interleaved { channel, payload })
    }

    /// Looks for the end of the head in `window`, resuming where the last call stopped.
    /// `Err(byte)`: a control byte in the start line.
    fn scan(&mut self, window: &[u8]) -> Result<Option<usize>, u8> {
        let start = self.scanned.min(window.len());
        for (i, &b) in window.iter().enumerate().skip(start) {
            if self.in_first_line {
                if b == b'\n' {
                    self.in_first_line = false;
                } else if is_bad_ctl(b) {
                    return Err(b);
                }
            }
            if b == b'\n' {
                let before = window.get(..i).unwrap_or(&[]);
                if before.ends_with(b"\n") || before.ends_with(b"\n\r") {
                    return Ok(Some(i + 1));
                }
            }
        }
        self.scanned = window.len();
        Ok(None)
    }

    fn decode_message(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let max = self.limits.max_head_bytes;
        let window = buf.get(..max.min(buf.len())).unwrap_or(&[]);
        let end = match self.scan(window) {
            Ok(Some(end)) => end,
            Ok(None) if buf.len() < max => return Ok(None),
            Ok(None) => {
                // Complete lines only: the cut-off one may hold half a CSeq.
                let complete = match window.iter().rposition(|&b| b == b'\n') {
                    Some(lf) => window.get(..lf).unwrap_or(&[]),
                    None => &[],
                };
                let lines = split_lines(complete);
                let (headers, _) = parse_header_lines(lines.get(1..).unwrap_or(&[]), usize::MAX);
                return Err(self.fail(DecodeError {
                    status: 400,
                    cseq: headers.cseq(),
                    message: format!(
                        "message head exceeds {max} bytes without an empty line (starts `{}`)",
                        show(window.get(..40).unwrap_or(window))
                    ),
                    fatal: true,
                    version: None,
                }));
            }
            Err(byte) => {
                return Err(self.fail(DecodeError {
                    status: 400,
                    cseq: None,
                    message: format!(
                        "control byte 0x{byte:02x} where an RTSP request or status line was \
                         expected (binary data, stream cannot be resynchronised; starts `{}`)",
                        show(window.get(..40).unwrap_or(window))
                    ),
                    fatal: true,
                    version: None,
                }));
            }
        };
        let head = buf.get(..end).unwrap_or(&[]);
        match parse_head(head, &self.limits) {
            Ok((message, body_len)) => {
                let pending = Pending {
                    head_len: end,
                    body_len,
                    message,
                };
                Ok(self.finish(buf, pending))
            }
            Err((err, _)) if err.fatal => Err(self.fail(err)),
            Err((err, body_len)) => {
                buf.advance(end);
                self.reset_scan();
                let n = body_len.min(buf.len());
                buf.advance(n);
                self.skip = body_len - n;
                Err(err)
            }
        }
    }

    /// Completes `pending` if its body is in `buf`, else keeps it for the next call.
    fn finish(&mut self, buf: &mut BytesMut, pending: Pending) -> Option<Frame> {
        if buf.len() < pending.head_len.saturating_add(pending.body_len) {
            self.pending = Some(pending);
            return None;
        }
        buf.advance(pending.head_len);
        let body = buf.split_to(pending.body_len).freeze();
        self.reset_scan();
        Some(match pending.message {
            Message::Request(mut r) => {
                r.body = body;
                Frame::Request(r)
            }
            Message::Response(mut r) => {
                r.body = body;
                Frame::Response(r)
            }
        })
    }
}

/// The lines of a head up to (not including) the first empty line, each without its LF or
/// CRLF.
pub(crate) fn split_lines(head: &[u8]) -> Vec<&[u8]> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .collect()
}

/// Parses header lines leniently and strictly at once: returns every header that could be
/// read (continuation lines folded in) and the first problem found, if any. The lenient
/// result lets an error answer carry the CSeq and lets the decoder skip the body.
pub(crate) fn parse_header_lines(lines: &[&[u8]], max_headers: usize) -> (Headers, Option<String>) {
    let mut headers = Headers::new();
    let mut error: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        let line_no = index + 2; // the start line is line 1
        let mut problem = None;
        if let Some(&b) = line.iter().find(|&&b| is_bad_ctl(b) || b == b'\r') {
            problem = Some(format!(
                "line {line_no}: control byte 0x{b:02x} in header line `{}`",
                show(line)
            ));
        } else if matches!(line.first(), Some(b' ' | b'\t')) {
            let text = String::from_utf8_lossy(line);
            let text = text.trim();
            match headers.entries.last_mut() {
                Some((_, value)) => {
                    if !text.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(text);
                    }
                }
                None => {
                    problem = Some(format!(
                        "line {line_no}: continuation line `{}` before any header",
                        show(line)
                    ))
                }
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or(&[]);
            let name = String::from_utf8_lossy(name);
            let name = name.trim_end();
            if !is_token(name) {
                problem = Some(format!(
                    "line {line_no}: invalid header name `{}`",
                    show(name.as_bytes())
                ));
            } else {
                if headers.len() == max_headers {
                    problem = Some(format!("more than {max_headers} header lines"));
                }
                let value = String::from_utf8_lossy(value);
                headers.append(name, value.trim());
            }
        } else {
            problem = Some(format!(
                "line {line_no}: header line without a colon: `{}`",
                show(line)
            ));
        }
        if error.is_none() {
            error = problem;
        }
    }
    (headers, error)
}

/// The body length given by the `Content-Length` headers (0 if none). Every occurrence must
/// be a decimal number and all must agree.
fn content_length(headers: &Headers) -> Result<usize, String> {
    let mut length = None;
    for value in headers.get_all("Content-Length") {
        let n: usize = parse_decimal(value.trim())
            .ok_or_else(|| format!("invalid Content-Length `{}`", show(value.as_bytes())))?;
        match length {
            Some(previous) if previous != n => {
                return Err(format!(
                    "conflicting Content-Length headers ({previous} and {n})"
                ))
            }
            _ => length = Some(n),
        }
    }
    Ok(length.unwrap_or(0))
}

/// Splits off the first space- or tab-delimited token; the rest has leading blanks removed.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => {
            let (token, rest) = s.split_at(i);
            (token, rest.trim_start_matches([' ', '\t']))
        }
        None => (s, ""),
    }
}

/// Parses a request or status line. `Err((status, message, version))`.
fn parse_start_line(line: &[u8]) -> Result<StartLine, (u16, String, Option<String>)> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Err((
            400,
            format!("start line is not valid UTF-8: `{}`", show(line)),
            None,
        ));
    };
    let (first, rest) = split_token(text);
    if first.starts_with("RTSP/") {
        let version = Some(first.to_owned());
        if first != RTSP_VERSION {
            return Err((
                505,
                format!(
                    "status line `{}`: version `{first}` is not RTSP/1.0",
                    show(line)
                ),
                version,
            ));
        }
        let (code, reason) = split_token(rest);
        let status = if code.len() == 3 {
            parse_decimal::<u16>(code)
        } else {
            None
        };
        return match status {
            Some(status) => Ok(StartLine::Response {
                status,
                reason: reason.trim_end().to_owned(),
            }),
            None => Err((
                400,
                format!(
                    "status line `{}`: status code `{code}` is not three digits",
                    show(line)
                ),
                version,
            )),
        };
    }
    let (uri, version) = split_token(rest);
    let version = version.trim_end_matches([' ', '\t']);
    if uri.is_empty() || version.is_empty() || version.contains([' ', '\t']) {
        return Err((
            400,
            format!("request line `{}` is not `METHOD URI RTSP/1.0`", show(line)),
            None,
        ));
    }
    let version_owned = Some(version.to_owned());
    if version != RTSP_VERSION {
        let status = if version.starts_with("RTSP/") || version.starts_with("HTTP/") {
            505
        } else {
            400
        };
        return Err((
            status,
            format!(
                "request line `{}`: version `{version}` is not RTSP/1.0",
                show(line)
            ),
            version_owned,
        ));
    }
    match Method::from_token(first) {
        Some(method) => Ok(StartLine::Request {
            method,
            uri: uri.to_owned(),
        }),
        None => Err((
            400,
            format!(
                "request line `{}`: method `{}` is not a token",
                show(line),
                show(first.as_bytes())
            ),
            version_owned,
        )),
    }
}

/// Parses a complete head (through its empty line). `Ok((message without body, body
/// length))`, or `Err((error, body bytes to skip))`.
fn parse_head(head: &[u8], limits: &Limits) -> Result<(Message, usize), (DecodeError, usize)> {
    let lines = split_lines(head);
    let start_line = lines.first().copied().unwrap_or(&[]);
    let (headers, header_error) =
        parse_header_lines(lines.get(1..).unwrap_or(&[]), limits.max_headers);
    let cseq = headers.cseq();
    let error = |status: u16, message: String, fatal: bool, version: Option<String>| DecodeError {
        status,
        cseq,
        message,
        fatal,
        version,
    };
    let body_len = match content_length(&headers) {
        Ok(n) => n,
        Err(message) => {
            let message = format!("{message}: cannot find the end of the message");
            return Err((error(400, message, true, None), 0));
        }
    };
    let start = match parse_start_line(start_line) {
        Ok(start) => start,
        Err((status, message, version)) => {
            return Err((error(status, message, false, version), body_len))
        }
    };
    let version = || Some(RTSP_VERSION.to_owned());
    if let Some(message) = header_error {
        return Err((error(400, message, false, version()), body_len));
    }
    if body_len > limits.max_body_bytes {
        let message = format!(
            "Content-Length {body_len} exceeds the limit of {} bytes",
            limits.max_body_bytes
        );
        return Err((error(413, message, false, version()), body_len));
    }
    let message = match start {
        StartLine::Request { method, uri } => {
            match headers.get("CSeq") {
                None => {
                    let message = format!("{method} request without a CSeq header");
                    return Err((error(400, message, false, version()), body_len));
                }
                Some(value) if cseq.is_none() => {
                    let message = format!("invalid CSeq `{}`", show(value.as_bytes()));
                    return Err((error(400, message, false, version()), body_len));
                }
                Some(_) => {}
            }
            Message::Request(Request {
                method,
                uri,
                headers,
                body: Bytes::new(),
            })
        }
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body: Bytes::new(),
        }),
    };
    Ok((message, body_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::headers::{
        parse_frames, parse_range, parse_rate_control, parse_scale, parse_transports, Frames,
        LowerTransport, NptTime, Range, RateControl,
    };
    use crate::rtsp::test_support::{capture_messages, XorShift, CAPTURES};

    /// Decodes everything in `stream` with one decoder; stops at `Ok(None)` or a fatal error.
    fn decode_all(decoder: &mut Decoder, buf: &mut BytesMut) -> Vec<Result<Frame, DecodeError>> {
        let mut out = Vec::new();
        loop {
            match decoder.decode(buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => return out,
                Err(e) => {
                    let fatal = e.fatal;
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }

    fn decode_stream(stream: &[u8], limits: Limits) -> Vec<Result<Frame, DecodeError>> {
        decode_all(&mut Decoder::new(limits), &mut BytesMut::from(stream))
    }

    /// The same, feeding `chunk` bytes at a time.
    fn decode_chunked(
        stream: &[u8],
        limits: Limits,
        chunk: usize,
    ) -> Vec<Result<Frame, DecodeError>> {
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            let results = decode_all(&mut decoder, &mut buf);
            let fatal = results.iter().any(|r| r.as_ref().is_err_and(|e| e.fatal));
            out.extend(results);
            if fatal {
                break;
            }
        }
        out
    }

    /// The RTSP requests of a capture (HTTP tunnel heads left out), decoded from one stream.
    fn requests(name: &str) -> Vec<Request> {
        let stream: String = capture_messages(name)
            .into_iter()
            .filter(|m| !m.starts_with("GET ") && !m.starts_with("POST "))
            .collect();
        let mut buf = BytesMut::from(stream.as_bytes());
        let frames = decode_all(&mut Decoder::default(), &mut buf);
        assert!(buf.is_empty(), "{name}: left over {:?}", buf);
        frames
            .into_iter()
            .map(|f| match f {
                Ok(Frame::Request(r)) => r,
                other => panic!("{name}: expected a request, got {other:?}"),
            })
            .collect()
    }

    fn methods(reqs: &[Request]) -> Vec<Method> {
        reqs.iter().map(|r| r.method.clone()).collect()
    }

    fn header<'a>(r: &'a Request, name: &str) -> &'a str {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{} has no {name}", r.method))
    }

    #[test]
    fn every_capture_decodes_with_sequential_cseq() {
        for (name, _) in CAPTURES {
            let reqs = requests(name);
            assert!(!reqs.is_empty(), "{name}");
            for (i, r) in reqs.iter().enumerate() {
                assert_eq!(r.cseq(), Some(i as u32 + 1), "{name} #{i}");
                assert!(r.uri.starts_with("rtsp://127.0.0.1:8568/cam1"), "{name}");
                // Only a publisher's ANNOUNCE has a body (its SDP, CRLF lines).
                assert_eq!(
                    r.body.is_empty(),
                    r.method != Method::Announce,
                    "{name} #{i}"
                );
                assert!(r.headers.contains("User-Agent"));
                // Each message also decodes alone, byte by byte.
                let mut wire = BytesMut::new();
                r.write_to(&mut wire);
                let again = decode_chunked(&wire, Limits::default(), 1);
                assert_eq!(again, vec![Ok(Frame::Request(r.clone()))], "{name}");
            }
            let first = &reqs[0];
            assert_eq!(first.method, Method::Options);
            // SETUPs carry a Transport the parser understands; every later request of a
            // session carries its id.
            for r in reqs.iter().filter(|r| r.method == Method::Setup) {
                let t = parse_transports(header(r, "Transport")).unwrap();
                assert_eq!(t.len(), 1);
                assert_eq!(t[0].profile, "RTP/AVP");
                assert!(t[0].unicast && !t[0].multicast);
            }
        }
    }

    #[test]
    fn publish_captures() {
        use Method::*;
        for (name, mode) in [
            ("ffmpeg-publish-tcp.txt", "record"),
            ("ffmpeg-publish-udp.txt", "record"),
            ("ffmpeg-publish-aac.txt", "record"),
            ("gst-publish-tcp.txt", "RECORD"),
            ("gst-publish-udp.txt", "RECORD"),
        ] {
            let reqs = requests(name);
            let m = methods(&reqs);
            assert_eq!(m[..5], [Options, Announce, Setup, Setup, Record], "{name}");
            assert_eq!(m.last(), Some(&Teardown), "{name}");
            assert_eq!(header(&reqs[1], "Content-Type"), "application/sdp");
            let sdp = crate::sdp::parse_sdp(std::str::from_utf8(&reqs[1].body).unwrap()).unwrap();
            assert_eq!(sdp.media.len(), 2, "{name}");
            // The first SETUP has no session: it follows the ANNOUNCE on its connection.
            assert_eq!(reqs[2].session_id(), None, "{name}");
            assert!(reqs[3].session_id().is_some(), "{name}");
            for r in &reqs[2..4] {
                let t = &parse_transports(header(r, "Transport")).unwrap()[0];
                assert_eq!(t.mode.as_deref(), Some(mode), "{name}");
            }
        }
    }

    #[test]
    fn ffmpeg_tcp_capture() {
        use Method::*;
        let reqs = requests("ffmpeg-tcp.txt");
        assert_eq!(
            methods(&reqs),
            [Options, Describe, Setup, Setup, Play, Teardown]
        );
        assert_eq!(reqs[0].uri, "rtsp://127.0.0.1:8568/cam1");
        assert_eq!(header(&reqs[1], "Accept"), "application/sdp");
        assert_eq!(reqs[2].uri, "rtsp://127.0.0.1:8568/cam1/stream=0");
        assert_eq!(reqs[3].uri, "rtsp://127.0.0.1:8568/cam1/stream=1");
        assert_eq!(reqs[4].uri, "rtsp://127.0.0.1:8568/cam1/");
        for (r, channels) in [(&reqs[2], (0, 1)), (&reqs[3], (2, 3))] {
            let t = &parse_transports(header(r, "Transport")).unwrap()[0];
            assert_eq!(t.lower, LowerTransport::Tcp);
            assert_eq!(t.interleaved, Some(channels));
            assert_eq!(t.client_port, None);
        }
        let sessions: Vec<_> = reqs.iter().map(Request::session_id).collect();
        let id = Some("V--VMA5qApg7.XoX");
        assert_eq!(sessions, [None, None, None, id, id, id]);
        assert_eq!(
            parse_range(header(&reqs[4], "Range")).unwrap(),
            Range::Npt {
                start: NptTime::Seconds(0.0),
                end: None
            }
        );
        assert!(reqs.iter().all(|r| r.require_tags().is_empty()));
        assert_eq!(
            reqs[0].headers.get_all("User-Agent").collect::<Vec<_>>(),
            ["Lavf59.27.100"]
        );
    }

    #[test]
    fn ffmpeg_udp_capture() {
        let reqs = requests("ffmpeg-udp.txt");
        assert_eq!(reqs.len(), 6);
        for (r, ports) in [(&reqs[2], (22274, 22275)), (&reqs[3], (22276, 22277))] {
            assert_eq!(r.method, Method::Setup);
            let t = &parse_transports(header(r, "Transport")).unwrap()[0];
            assert_eq!(t.lower, LowerTransport::Udp);
            assert_eq!(t.profile, "RTP/AVP");
            assert_eq!(t.client_port, Some(ports));
            assert_eq!(t.interleaved, None);
        }
        assert_eq!(reqs[5].method, Method::Teardown);
        assert_eq!(reqs[5].session_id(), Some("WfS9W+l1LRGTe-4+"));
    }

    #[test]
    fn ffmpeg_http_capture_rtsp_part() {
        let reqs = requests("ffmpeg-http.txt");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, Method::Options);
        assert_eq!(reqs[0].cseq(), Some(1));
    }

    #[test]
    fn gstreamer_tcp_and_udp_captures() {
        use Method::*;
        let tcp = requests("gst-tcp.txt");
        assert_eq!(
            methods(&tcp),
            [Options, Describe, Setup, Setup, Play, Pause, Teardown]
        );
        let udp = requests("gst-udp.txt");
        assert_eq!(
            methods(&udp),
            [Options, Describe, Setup, Setup, Play, Teardown]
        );
        for reqs in [&tcp, &udp] {
            // Two User-Agent headers on OPTIONS, both kept, the first one returned by get.
            let opts = &reqs[0];
            assert_eq!(
                opts.headers.get_all("user-agent").collect::<Vec<_>>(),
                [
                    "GStreamer/1.22.0",
                    "RealMedia Player Version 6.0.9.1235 (linux-2.0-libc6-i386-gcc2.95)"
                ]
            );
            assert_eq!(opts.headers.get("USER-AGENT"), Some("GStreamer/1.22.0"));
            assert_eq!(opts.headers.len(), 10);
            assert_eq!(
                opts.headers.get("PlayerStarttime"),
                Some("[28/03/2003:22:50:23 00:00]")
            );
            let play = reqs.iter().find(|r| r.method == Play).unwrap();
            assert_eq!(play.uri, "rtsp://127.0.0.1:8568/cam1/");
            assert_eq!(
                parse_range(header(play, "Range")).unwrap(),
                Range::Npt {
                    start: NptTime::Now,
                    end: None
                }
            );
        }
        assert_eq!(tcp[6].session_id(), Some("CBaLFX74YdKg.5eP"));
        assert_eq!(udp[3].session_id(), Some("DDljSdGDf4pnEulV"));
        let t = &parse_transports(header(&udp[2], "Transport")).unwrap()[0];
        assert_eq!(
            (t.lower, t.client_port),
            (LowerTransport::Udp, Some((46744, 46745)))
        );
        let t = &parse_transports(header(&tcp[3], "Transport")).unwrap()[0];
        assert_eq!(
            (t.lower, t.interleaved),
            (LowerTransport::Tcp, Some((2, 3)))
        );
    }

    #[test]
    fn gstreamer_backchannel_capture() {
        use Method::*;
        let reqs = requests("gst-backchannel.txt");
        assert_eq!(
            methods(&reqs),
            [Options, Describe, Setup, Setup, Setup, Play, Pause, Teardown]
        );
        let tag = "www.onvif.org/ver20/backchannel".to_owned();
        let tags: Vec<Vec<String>> = reqs.iter().map(Request::require_tags).collect();
        let none: Vec<String> = Vec::new();
        let one = vec![tag];
        // Note: the capture has Require on PLAY and PAUSE too, not only on DESCRIBE and the
        // backchannel SETUP as the README says.
        assert_eq!(
            tags,
            [
                none.clone(),
                one.clone(),
                none.clone(),
                none.clone(),
                one.clone(),
                one.clone(),
                one,
                none
            ]
        );
        assert_eq!(reqs[4].uri, "rtsp://127.0.0.1:8568/cam1/stream=2");
        let t = &parse_transports(header(&reqs[4], "Transport")).unwrap()[0];
        assert_eq!(t.interleaved, Some((4, 5)));
        assert_eq!(reqs[2].session_id(), None);
        assert!(reqs[3..]
            .iter()
            .all(|r| r.session_id() == Some("PALR6s0uh8NXq.1o")));
    }

    #[test]
    fn gstreamer_onvif_replay_capture() {
        use Method::*;
        let reqs = requests("gst-onvif-replay-reverse.txt");
        assert_eq!(
            methods(&reqs),
            [Options, Describe, Setup, Setup, Play, Pause, Play]
        );
        assert!(reqs.iter().all(|r| r.require_tags().is_empty()));
        let first = &reqs[4];
        assert_eq!(
            parse_range(header(first, "Range")).unwrap(),
            Range::Clock {
                start: Some(-2_208_988_800_000_000),
                end: None
            }
        );
        assert_eq!(
            parse_rate_control(header(first, "Rate-Control")).unwrap(),
            RateControl::No
        );
        assert!(!first.headers.contains("Scale"));
        let reverse = &reqs[6];
        assert_eq!(
            parse_range(header(reverse, "Range")).unwrap(),
            Range::Clock {
                start: Some(1_767_225_690_000_000),
                end: Some(1_767_225_630_000_000)
            }
        );
        assert_eq!(parse_scale(header(reverse, "Scale")).unwrap(), -1.0);
        assert_eq!(
            parse_frames(header(reverse, "Frames")).unwrap(),
            Frames::Intra { interval_ms: None }
        );
        assert_eq!(
            parse_rate_control(header(reverse, "Rate-Control")).unwrap(),
            RateControl::No
        );
        assert_eq!(reverse.session_id(), Some("L6tofPGMrYoJhSFU"));
        assert_eq!(
            reverse.headers.get("Date"),
            Some("Sat, 21 Nov 2026 22:02:32 GMT")
        );
    }

    #[test]
    fn method_tokens() {
        for m in [
            Method::Options,
            Method::Describe,
            Method::Setup,
            Method::Play,
            Method::Pause,
            Method::Teardown,
            Method::GetParameter,
            Method::SetParameter,
            Method::Announce,
            Method::Record,
            Method::Redirect,
        ] {
            assert_eq!(Method::from_token(m.as_str()), Some(m.clone()));
            assert_eq!(m.to_string().parse::<Method>(), Ok(m));
        }
        assert_eq!(
            Method::from_token("options"),
            Some(Method::Other("options".into()))
        );
        assert_eq!(
            Method::from_token("X-FOO"),
            Some(Method::Other("X-FOO".into()))
        );
        for bad in ["", "A B", "GET/", "PLAY:", "\u{e9}", "A\u{1}"] {
            assert_eq!(Method::from_token(bad), None, "{bad:?}");
            assert!(bad.parse::<Method>().is_err());
        }
    }

    #[test]
    fn headers_operations() {
        let mut h: Headers = [("CSeq", "1"), ("User-Agent", "a"), ("user-agent", "b")]
            .into_iter()
            .collect();
        assert_eq!(h.get("USER-agent"), Some("a"));
        assert_eq!(h.get_all("User-Agent").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.len(), 3);
        h.append("Session", "abc;timeout=60");
        assert_eq!(h.session_id(), Some("abc"));
        h.set("user-AGENT", "c");
        assert_eq!(h.get_all("User-Agent").collect::<Vec<_>>(), ["c"]);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("CSeq", "1"),
                ("user-AGENT", "c"),
                ("Session", "abc;timeout=60")
            ]
        );
        h.set("Range", "npt=0-");
        assert_eq!(h.len(), 4);
        assert!(h.remove("range"));
        assert!(!h.remove("range"));
        assert!(!h.is_empty());
        h.set("CSeq", " 42 ");
        assert_eq!(h.cseq(), Some(42));
        h.set("CSeq", "-1");
        assert_eq!(h.cseq(), None);
        h.set("Session", " ;timeout=5");
        assert_eq!(h.session_id(), None);
    }

    #[test]
    fn require_tags_split_and_trim() {
        let r = Request::new(Method::Setup, "rtsp://x/a")
            .header(
                "Require",
                " onvif-replay , ,www.onvif.org/ver20/backchannel",
            )
            .header("require", "x-foo")
            .header("Require", "");
        assert_eq!(
            r.require_tags(),
            ["onvif-replay", "www.onvif.org/ver20/backchannel", "x-foo"]
        );
    }

    #[test]
    fn response_serialisation_and_round_trip() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n";
        let resp = Response::new(200)
            .header("CSeq", "2")
            .header("Content-Base", "rtsp://127.0.0.1:8554/cam1/")
            .with_body("application/sdp", sdp);
        let mut out = BytesMut::new();
        resp.write_to(&mut out);
        assert_eq!(
            &out[..],
            format!(
                "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://127.0.0.1:8554/cam1/\r\n\
                 Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
            .as_bytes()
        );
        let decoded = decode_stream(&out, Limits::default());
        assert_eq!(decoded, vec![Ok(Frame::Response(resp.clone()))]);
        assert_eq!(resp.cseq(), Some(2));

        // Content-Length always follows the body, whatever the headers say.
        let mut odd = Response::with_reason(454, "Gone Away").header("Content-Length", "99");
        odd.body = Bytes::from_static(b"abc");
        odd.headers.append("Session", "s1;timeout=60");
        let mut out = BytesMut::new();
        odd.write_to(&mut out);
        assert_eq!(
            &out[..],
            b"RTSP/1.0 454 Gone Away\r\nSession: s1;timeout=60\r\nContent-Length: 3\r\n\r\nabc"
        );
        assert_eq!(odd.session_id(), Some("s1"));

        // No header injection through echoed values.
        let evil = Response::new(551).header("Unsupported", "x\r\nSession: hijack");
        let mut out = BytesMut::new();
        evil.write_to(&mut out);
        assert_eq!(
            &out[..],
            b"RTSP/1.0 551 Option not supported\r\nUnsupported: x  Session: hijack\r\n\r\n"
        );
    }

    #[test]
    fn request_round_trip() {
        let req = Request::new(Method::SetParameter, "rtsp://h/cam1")
            .header("CSeq", "9")
            .header("Session", "abc")
            .with_body("text/parameters", "a: b\r\n");
        let mut out = BytesMut::new();
        req.write_to(&mut out);
        assert!(out.starts_with(b"SET_PARAMETER rtsp://h/cam1 RTSP/1.0\r\nCSeq: 9\r\n"));
        assert_eq!(
            decode_stream(&out, Limits::default()),
            vec![Ok(Frame::Request(req))]
        );
    }

    #[test]
    fn reason_phrases() {
        for (code, phrase) in [
            (200, "OK"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (404, "Not Found"),
            (451, "Parameter Not Understood"),
            (453, "Not Enough Bandwidth"),
            (454, "Session Not Found"),
            (455, "Method Not Valid in This State"),
            (457, "Invalid Range"),
            (459, "Aggregate operation not allowed"),
            (460, "Only aggregate operation allowed"),
            (461, "Unsupported transport"),
            (462, "Destination unreachable"),
            (501, "Not Implemented"),
            (505, "RTSP Version not supported"),
            (551, "Option not supported"),
            (299, "Success"),
            (499, "Client Error"),
            (0, "Unknown Status"),
        ] {
            assert_eq!(reason_phrase(code), phrase);
            assert_eq!(Response::new(code).reason, phrase);
        }
    }

    #[test]
    fn interleaved_header() {
        assert_eq!(write_interleaved(3, 0x1234), [b'$', 3, 0x12, 0x34]);
        assert_eq!(write_interleaved(0, 65535), [b'$', 0, 0xff, 0xff]);
        assert_eq!(try_write_interleaved(0, 65536), None);
        assert!(std::panic::catch_unwind(|| write_interleaved(0, 70000)).is_err());
    }

    #[test]
    fn liberal_line_ends_keepalives_and_folding() {
        let stream = b"\r\n\r\n\nOPTIONS * RTSP/1.0\nCSeq: 1\nX-Long: a\n  b\r\n\tc\n\n\r\n\
            PLAY  rtsp://h/x   RTSP/1.0\r\nCSeq:2\r\nSession:   s  \r\n\r\n\r\n";
        for chunk in [1, 2, 3, 7, stream.len()] {
            let got = decode_chunked(stream, Limits::default(), chunk);
            assert_eq!(got.len(), 2, "chunk {chunk}: {got:?}");
            let Ok(Frame::Request(a)) = &got[0] else {
                panic!("{got:?}")
            };
            assert_eq!(a.uri, "*");
            assert_eq!(a.headers.get("x-long"), Some("a b c"));
            let Ok(Frame::Request(b)) = &got[1] else {
                panic!("{got:?}")
            };
            assert_eq!(
                (b.method.clone(), b.uri.as_str()),
                (Method::Play, "rtsp://h/x")
            );
            assert_eq!(b.cseq(), Some(2));
            assert_eq!(b.session_id(), Some("s"));
        }
        // Only keep-alives: consumed, nothing decoded.
        let mut buf = BytesMut::from(&b"\r\n\r\n"[..]);
        assert_eq!(Decoder::default().decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    fn options(cseq: u32) -> String {
        format!("OPTIONS rtsp://h/cam1 RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n")
    }

    /// What a decode result looks like, compactly: `R<cseq>` for a request, `E<status>/<cseq>`
    /// for an error (`F` instead of `E` when fatal), `I<channel>:<len>`, `S<status>`.
    fn summary(results: &[Result<Frame, DecodeError>]) -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(Frame::Request(r)) => format!("R{}", r.cseq().unwrap_or(0)),
                Ok(Frame::Response(r)) => format!("S{}", r.status),
                Ok(Frame::Interleaved { channel, payload }) => {
                    format!("I{channel}:{}", payload.len())
                }
                Err(e) => format!(
                    "{}{}/{}",
                    if e.fatal { "F" } else { "E" },
                    e.status,
                    e.cseq.map_or("-".to_owned(), |c| c.to_string())
                ),
            })
            .collect()
    }

    #[test]
    fn resynchronises_after_malformed_messages() {
        let limits = Limits {
            max_body_bytes: 50,
            max_headers: 8,
            ..Limits::default()
        };
        let mut stream: Vec<u8> = Vec::new();
        stream.extend_from_slice(options(1).as_bytes());
        stream.extend_from_slice(b"OPTIONS rtsp://h/cam1 RTSP/1.0\r\nUser-Agent: no-cseq\r\n\r\n");
        stream.extend_from_slice(options(2).as_bytes());
        stream.extend_from_slice(b"BADREQUEST\r\nCSeq: 7\r\n\r\n");
        stream.extend_from_slice(b"SETUP rtsp://h/a RTSP/1.0\r\nCSeq: 8\r\nNoColonHere\r\n\r\n");
        stream.extend_from_slice(options(3).as_bytes());
        stream.extend_from_slice(b"DESCRIBE rtsp://h/a RTSP/1.0\r\nCSeq: 9\r\nX: a\x01b\r\n\r\n");
        stream.extend_from_slice(
            b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 10\r\nContent-Length: 100\r\n\r\n",
        );
        stream.extend_from_slice("x".repeat(100).as_bytes());
        stream.extend_from_slice(options(4).as_bytes());
        stream
            .extend_from_slice(b"OPTIONS * RTSP/2.0\r\nCSeq: 11\r\nContent-Length: 5\r\n\r\nhello");
        stream.extend_from_slice(options(5).as_bytes());
        stream.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        stream.extend_from_slice(options(6).as_bytes());
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n");
        stream.extend_from_slice(options(7).as_bytes());
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 12\r\n");
        stream.extend_from_slice("A: b\r\n".repeat(8).as_bytes());
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(options(8).as_bytes());
        stream.extend_from_slice(b"PL@Y * RTSP/1.0\r\nCSeq: 13\r\n\r\n");
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n: empty-name\r\nCSeq: 14\r\n\r\n");
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n continued\r\nCSeq: 15\r\n\r\n");
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 16\r\nBad Name: x\r\n\r\n");
        stream.extend_from_slice(b"RTSP/1.0 2000 OK\r\nCSeq: 17\r\n\r\n");
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 18\r\n\r\n");
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0 extra\r\nCSeq: 19\r\n\r\n");
        stream.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 20\r\nX: \xff\xfe\r\n\r\n");
        stream.extend_from_slice(options(9).as_bytes());
        let expected = [
            "R1", "E400/-", "R2", "E400/7", "E400/8", "R3", "E400/9", "E413/10", "R4", "E505/11",
            "R5", "E505/-", "R6", "E400/-", "R7", "E400/12", "R8", "E400/13", "E400/14", "E400/15",
            "E400/16", "E400/17", "S200", "E400/19", "R20", "R9",
        ];
        let whole = decode_stream(&stream, limits);
        assert_eq!(summary(&whole), expected);
        for chunk in [1, 2, 5, 64] {
            let got = decode_chunked(&stream, limits, chunk);
            assert_eq!(got, whole, "chunk {chunk}");
        }
        // The errors say what was wrong.
        let messages: Vec<String> = whole
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.message.clone()))
            .collect();
        for (message, needle) in messages.iter().zip([
            "without a CSeq",
            "`BADREQUEST` is not `METHOD URI RTSP/1.0`",
            "line 3: header line without a colon: `NoColonHere`",
            "line 3: control byte 0x01",
            "Content-Length 100 exceeds the limit of 50",
            "`RTSP/2.0` is not RTSP/1.0",
            "`HTTP/1.1` is not RTSP/1.0",
            "invalid CSeq `abc`",
            "more than 8 header lines",
            "method `PL@Y` is not a token",
            "line 2: invalid header name ``",
            "line 2: continuation line",
            "invalid header name `Bad Name`",
            "status code `2000` is not three digits",
            "is not `METHOD URI RTSP/1.0`",
        ]) {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        let versions: Vec<Option<&str>> = whole
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.version.as_deref()))
            .collect();
        assert_eq!(versions[5], Some("RTSP/2.0"));
        assert_eq!(versions[6], Some("HTTP/1.1"));
        // A non-UTF-8 header value is replaced, not rejected.
        let Ok(Frame::Request(r)) = &whole[24] else {
            panic!()
        };
        assert_eq!(r.headers.get("X"), Some("\u{fffd}\u{fffd}"));
    }

    #[test]
    fn binary_garbage_is_fatal_and_sticky() {
        for garbage in [
            &b"\x00\x01\x02\x03"[..],
            b"\x16\x03\x01\x02\x00",
            b"OPT\x00IONS",
        ] {
            let mut decoder = Decoder::default();
            let mut buf = BytesMut::from(garbage);
            let err = decoder.decode(&mut buf).unwrap_err();
            assert!(err.fatal && err.status == 400, "{err}");
            assert!(err.message.contains("control byte"), "{err}");
            buf.extend_from_slice(options(1).as_bytes());
            assert_eq!(decoder.decode(&mut buf), Err(err));
        }
        // After a valid message, garbage is still detected before any line end arrives.
        let mut stream = options(1).into_bytes();
        stream.extend_from_slice(&[0x80, 0x00, 0x13, 0x37]);
        let got = decode_stream(&stream, Limits::default());
        assert_eq!(summary(&got), ["R1", "F400/-"]);
    }

    #[test]
    fn oversized_head_is_fatal() {
        let limits = Limits {
            max_head_bytes: 1000,
            ..Limits::default()
        };
        let mut head = "OPTIONS * RTSP/1.0\r\nCSeq: 5\r\nX-Pad: ".to_owned();
        head += &"a".repeat(2000);
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::from(&head.as_bytes()[..999]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&head.as_bytes()[999..]);
        let err = decoder.decode(&mut buf).unwrap_err();
        assert!(err.fatal);
        assert_eq!((err.status, err.cseq), (400, Some(5)));
        assert!(err.message.contains("exceeds 1000 bytes"), "{err}");
        // A head of exactly the limit is fine.
        let exact = format!(
            "OPTIONS * RTSP/1.0\r\nCSeq: 5\r\nX: {}\r\n\r\n",
            "b".repeat(1000 - 36)
        );
        assert_eq!(exact.len(), 1000);
        assert_eq!(summary(&decode_stream(exact.as_bytes(), limits)), ["R5"]);
        let over = exact.replacen("X: ", "X: b", 1);
        assert_eq!(summary(&decode_stream(over.as_bytes(), limits)), ["F400/5"]);
        // No line end at all: still fatal at the limit.
        let long_line = "A".repeat(5000);
        assert_eq!(
            summary(&decode_chunked(long_line.as_bytes(), limits, 100)),
            ["F400/-"]
        );
    }

    #[test]
    fn unreadable_content_length_is_fatal() {
        for (value, needle) in [
            ("abc", "invalid Content-Length `abc`"),
            ("-1", "invalid Content-Length `-1`"),
            ("+5", "invalid Content-Length `+5`"),
            ("99999999999999999999999", "invalid Content-Length"),
            (
                "5\r\nContent-Length: 6",
                "conflicting Content-Length headers (5 and 6)",
            ),
        ] {
            let mut stream = format!(
                "ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\nContent-Length: {value}\r\n\r\n"
            );
            stream += &options(4);
            let got = decode_stream(stream.as_bytes(), Limits::default());
            assert_eq!(summary(&got), ["F400/3"], "{value}");
            let Err(e) = &got[0] else { panic!() };
            assert!(e.message.contains(needle), "{e}");
        }
        // Two equal Content-Length headers are fine.
        let stream = "ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 2\r\n\
                      Content-Length: 2\r\n\r\nok";
        let got = decode_stream(stream.as_bytes(), Limits::default());
        let Ok(Frame::Request(r)) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(&r.body[..], b"ok");
    }

    #[test]
    fn oversized_body_is_skipped_as_it_arrives() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::from(
            &b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 1000000\r\n\r\nxyz"[..],
        );
        let err = decoder.decode(&mut buf).unwrap_err();
        assert_eq!((err.status, err.cseq, err.fatal), (413, Some(3), false));
        assert!(buf.is_empty());
        let mut remaining = 1_000_000 - 3;
        while remaining > 0 {
            let n = remaining.min(4096);
            buf.extend_from_slice(&vec![b'$'; n]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert!(buf.is_empty());
            remaining -= n;
        }
        buf.extend_from_slice(options(4).as_bytes());
        assert_eq!(summary(&decode_all(&mut decoder, &mut buf)), ["R4"]);
    }

    #[test]
    fn interleaved_frames_mixed_with_messages_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(options(1).as_bytes());
        let rtp: Vec<u8> = (0..200u8).collect();
        stream.extend_from_slice(&write_interleaved(0, rtp.len()));
        stream.extend_from_slice(&rtp);
        stream.extend_from_slice(&write_interleaved(1, 0));
        stream.extend_from_slice(
            b"SET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\n$\r\n\r",
        );
        // A payload that looks like RTSP and like another frame header.
        let tricky = b"$\x05\x00\x10OPTIONS * RTSP/1.0\r\n\r\n";
        stream.extend_from_slice(&write_interleaved(5, tricky.len()));
        stream.extend_from_slice(tricky);
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Length: 1\r\n\r\nz");
        stream.extend_from_slice(&write_interleaved(255, 3));
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(options(4).as_bytes());

        let whole = decode_stream(&stream, Limits::default());
        assert_eq!(
            summary(&whole),
            ["R1", "I0:200", "I1:0", "R2", "I5:26", "S200", "I255:3", "R4"]
        );
        let Ok(Frame::Interleaved { payload, .. }) = &whole[1] else {
            panic!()
        };
        assert_eq!(&payload[..], &rtp[..]);
        let Ok(Frame::Request(set)) = &whole[3] else {
            panic!()
        };
        assert_eq!(&set.body[..], b"$\r\n\r");

        // Split in two at every position, and byte by byte.
        for split in 0..=stream.len() {
            let mut decoder = Decoder::default();
            let mut buf = BytesMut::from(&stream[..split]);
            let mut got = decode_all(&mut decoder, &mut buf);
            buf.extend_from_slice(&stream[split..]);
            got.extend(decode_all(&mut decoder, &mut buf));
            assert_eq!(got, whole, "split at {split}");
            assert!(buf.is_empty());
        }
        assert_eq!(decode_chunked(&stream, Limits::default(), 1), whole);
    }

    #[test]
    fn decode_error_answer() {
        let got = decode_stream(b"OPTIONS * RTSP/2.0\r\nCSeq: 4\r\n\r\n", Limits::default());
        let Err(e) = &got[0] else { panic!() };
        let mut out = BytesMut::new();
        e.to_response().write_to(&mut out);
        assert_eq!(
            &out[..],
            b"RTSP/1.0 505 RTSP Version not supported\r\nCSeq: 4\r\n\r\n"
        );
    }

    #[test]
    fn decode_error_display() {
        let e = DecodeError {
            status: 505,
            cseq: Some(3),
            message: "version".into(),
            fatal: true,
            version: None,
        };
        assert_eq!(
            e.to_string(),
            "version (answer 505 RTSP Version not supported, CSeq 3, then close the connection)"
        );
    }

    /// Feeds `input` in random chunks; checks that the decoder terminates without panicking
    /// and that every frame consumed bytes.
    fn shake_decoder(rng: &mut XorShift, input: &[u8], limits: Limits) {
        let mut decoder = Decoder::new(limits);
        let mut buf = BytesMut::new();
        let mut pos = 0;
        while pos < input.len() {
            let n = 1 + rng.below(input.len() - pos);
            buf.extend_from_slice(&input[pos..pos + n]);
            pos += n;
            for _ in 0..=input.len() {
                let before = buf.len();
                match decoder.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(_)) => assert!(buf.len() < before),
                    Err(e) if e.fatal => return,
                    Err(e) => {
                        assert!(buf.len() < before, "{e}");
                        assert!(!e.message.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn decoder_never_panics_on_random_input() {
        let mut rng = XorShift::new(0x5eed_1234);
        let small = Limits {
            max_head_bytes: 300,
            max_headers: 6,
            max_body_bytes: 40,
        };
        let corpus: Vec<String> = CAPTURES
            .iter()
            .flat_map(|(_, text)| crate::rtsp::test_support::split_messages(text))
            .collect();
        let alphabet = b"RTSP/1.0 OPTIONS$\r\n\r\n: CSeq Content-Length 0123456789\t\x00\xff";
        for round in 0..4000 {
            let input = match round % 4 {
                0 => {
                    let len = rng.below(600);
                    rng.bytes(len)
                }
                1 => {
                    let len = rng.below(600);
                    rng.pick(alphabet, len)
                }
                2 => {
                    let base = &corpus[rng.below(corpus.len())];
                    rng.mutate(base.as_bytes())
                }
                _ => {
                    let mut v = Vec::new();
                    for _ in 0..1 + rng.below(4) {
                        let base = &corpus[rng.below(corpus.len())];
                        v.extend(rng.mutate(base.as_bytes()));
                        if rng.below(2) == 0 {
                            let len = rng.below(50);
                            v.extend_from_slice(&write_interleaved(rng.below(4) as u8, len));
                            v.extend(rng.bytes(len));
                        }
                    }
                    v
                }
            };
            shake_decoder(&mut rng, &input, Limits::default());
            shake_decoder(&mut rng, &input, small);
        }
    }
}
