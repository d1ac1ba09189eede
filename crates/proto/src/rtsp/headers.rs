//! Typed values of the RTSP headers the server acts on, parsed and formatted.
//!
//! Implements:
//! - `Transport`, RFC 2326 §12.39: comma-separated alternatives in client preference order,
//!   `RTP/AVP[/UDP|/TCP]`, `unicast`/`multicast`, `destination`, `source`, `interleaved`,
//!   `ttl`, `client_port`, `server_port`, `ssrc`, `mode` ([`parse_transports`], [`Transport`]);
//! - `Range`, RFC 2326 §12.29 with normal play time (§3.6) and absolute time (§3.7,
//!   `clock=YYYYMMDDThhmmss[.fraction]Z`, the form ONVIF replay uses) ([`parse_range`],
//!   [`format_clock`]); the civil-date arithmetic is [`crate::time`]'s, no date crate;
//! - `Session`, §12.37 ([`parse_session`]); `RTP-Info`, §12.33 ([`parse_rtp_info`]);
//!   `Scale`, §12.34 ([`parse_scale`]);
//! - the ONVIF Streaming Specification replay headers `Rate-Control`, `Frames` and
//!   `Immediate` ([`parse_rate_control`], [`parse_frames`], [`parse_immediate`]).
//!
//! Every parser is total: any `&str` gives a value or a [`HeaderError`] naming the header, the
//! value and what was wrong; none panics.
//!
//! Deliberate deviations and omissions:
//! - A Transport with neither `unicast` nor `multicast` is taken as unicast (RFC 2326 says
//!   multicast, but every real client that omits it means unicast).
//! - Transport alternatives whose lower transport is neither UDP nor TCP (`RTP/AVP/SCTP`) are
//!   dropped; the header is an error only if no alternative remains. Multicast `port=`,
//!   `layers=`, `append` and RFC 7826 parameters (`dest_addr`, `RTCP-mux`, ...) are kept
//!   verbatim in [`Transport::other`].
//! - SMPTE ranges (§3.5) are rejected with an error (the server answers 457). The `time=`
//!   parameter of Range (and any other `;` parameter) is accepted and ignored. An NPT range
//!   of the form `npt=-end` gets start 0; a range without `-` is open-ended.
//! - `clock=` fractions beyond microseconds are truncated; a leap second `60` is accepted and
//!   lands on the next minute.

use std::fmt;

use super::token::is_token;
use crate::time::{civil_from_days, parse_clock_compact, UnixMicros, MICROS_PER_DAY};

/// A header value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {header} header `{value}`: {reason}")]
pub struct HeaderError {
    /// The header's name as the standard spells it (`Transport`, `Range`...).
    pub header: &'static str,
    /// The offending value (cut after 200 characters).
    pub value: String,
    /// What was wrong with it.
    pub reason: String,
}

impl HeaderError {
    pub fn new(header: &'static str, value: &str, reason: impl Into<String>) -> Self {
        const MAX: usize = 200;
        let value = if value.len() <= MAX {
            value.to_owned()
        } else {
            let mut end = MAX;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", value.get(..end).unwrap_or(""))
        };
        HeaderError {
            header,
            value,
            reason: reason.into(),
        }
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number of ASCII digits only (no sign, no blanks); `None` on overflow too.
fn parse_num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if is_digits(s) {
        s.parse().ok()
    } else {
        None
    }
}

/// Splits on `sep` except inside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(s.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
}

// ---------------------------------------------------------------------------------------
// Transport

/// The lower-layer transport of a Transport specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LowerTransport {
    /// `RTP/AVP` or `RTP/AVP/UDP`.
    Udp,
    /// `RTP/AVP/TCP`: interleaved on the RTSP connection (§10.12).
    Tcp,
}

/// One transport specification of a `Transport` header (RFC 2326 §12.39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// `transport-protocol/profile` as sent, e.g. `RTP/AVP` (without the lower transport).
    pub profile: String,
    pub lower: LowerTransport,
    /// True when `unicast` was given, or neither `unicast` nor `multicast`.
    pub unicast: bool,
    pub multicast: bool,
    /// RTP and RTCP ports of the client; `client_port=5000` means `(5000, 5001)`.
    pub client_port: Option<(u16, u16)>,
    pub server_port: Option<(u16, u16)>,
    /// RTP and RTCP channels; `interleaved=4` means `(4, 5)`.
    pub interleaved: Option<(u8, u8)>,
    pub ssrc: Option<u32>,
    /// Unquoted, as sent (`PLAY`, `RECORD`, `"PLAY,RECORD"` gives `PLAY,RECORD`).
    pub mode: Option<String>,
    /// `Some("")` for a bare `destination` parameter.
    pub destination: Option<String>,
    pub source: Option<String>,
    pub ttl: Option<u8>,
    /// Every other parameter verbatim (`append`, `layers=2`, `port=5000-5001`, ...).
    pub other: Vec<String>,
}

impl Default for Transport {
    /// `RTP/AVP;unicast`, nothing else.
    fn default() -> Self {
        Transport {
            profile: "RTP/AVP".to_owned(),
            lower: LowerTransport::Udp,
            unicast: true,
            multicast: false,
            client_port: None,
            server_port: None,
            interleaved: None,
            ssrc: None,
            mode: None,
            destination: None,
            source: None,
            ttl: None,
            other: Vec::new(),
        }
    }
}

/// Parses a `Transport` header value into its alternatives, in the client's order of
/// preference. See the module documentation for what is dropped or kept verbatim.
pub fn parse_transports(value: &str) -> Result<Vec<Transport>, HeaderError> {
    // An unbalanced quote would swallow the following alternatives into one parameter
    // value (found by fuzzing: fuzz/fuzz_targets/rtsp_headers.rs).
    if value.bytes().filter(|&b| b == b'"').count() % 2 != 0 {
        return Err(HeaderError::new(
            "Transport",
            value,
            "unbalanced '\"'".to_owned(),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(HeaderError::new(
            "Transport",
            value,
            "control character in the value".to_owned(),
        ));
    }
    let mut out = Vec::new();
    let mut unsupported = None;
    for spec in split_outside_quotes(value, ',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        match parse_transport_spec(value, spec)? {
            Some(t) => out.push(t),
            None => {
                unsupported.get_or_insert(spec);
            }
        }
    }
    if out.is_empty() {
        let reason = match unsupported {
            Some(spec) => format!("`{spec}`: only UDP and TCP lower transports are supported"),
            None => "no transport specification".to_owned(),
        };
        return Err(HeaderError::new("Transport", value, reason));
    }
    Ok(out)
}

fn parse_port_pair(v: &str) -> Option<(u16, u16)> {
    match v.split_once('-') {
        Some((a, b)) => Some((parse_num(a.trim())?, parse_num(b.trim())?)),
        None => {
            let a: u16 = parse_num(v)?;
            Some((a, a.checked_add(1)?))
        }
    }
}

fn parse_channel_pair(v: &str) -> Option<(u8, u8)> {
    match v.split_once('-') {
        Some((a, b)) => Some((parse_num(a.trim())?, parse_num(b.trim())?)),
        None => {
            let a: u8 = parse_num(v)?;
            Some((a, a.checked_add(1)?))
        }
    }
}

/// `Ok(None)`: a well-formed specification with an unsupported lower transport.
fn parse_transport_spec(whole: &str, spec: &str) -> Result<Option<Transport>, HeaderError> {
    let err = |reason: String| HeaderError::new("Transport", whole, reason);
    let mut params = split_outside_quotes(spec, ';').into_iter();
    let id = params.next().unwrap_or("").trim();
    let mut parts = id.split('/');
    let protocol = parts.next().unwrap_or("");
    let profile = parts.next().unwrap_or("");
    let lower = parts.next();
    if parts.next().is_some() || !is_token(protocol) || !is_token(profile) {
        return Err(err(format!(
            "`{id}` is not `protocol/profile[/lower-transport]`"
        )));
    }
    let lower = match lower {
        None => LowerTransport::Udp,
        Some(l) if l.eq_ignore_ascii_case("UDP") => LowerTransport::Udp,
        Some(l) if l.eq_ignore_ascii_case("TCP") => LowerTransport::Tcp,
        Some(l) if is_token(l) => return Ok(None),
        Some(l) => return Err(err(format!("lower transport `{l}` is not a token"))),
    };
    let mut t = Transport {
        profile: format!("{protocol}/{profile}"),
        lower,
        unicast: false,
        ..Transport::default()
    };
    for raw in params {
        let param = raw.trim();
        if param.is_empty() {
            continue;
        }
        let (name, val) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (param, None),
        };
        // A value is a token or one quoted string: quotes elsewhere would not survive
        // formatting (fuzzing regression, see the tests).
        if let Some(v) = val {
            let inner = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            if inner.contains('"') {
                return Err(err(format!("`{param}`: stray '\"' in the value")));
            }
        }
        if name.contains('"') {
            return Err(err(format!("`{param}`: '\"' in a parameter name")));
        }
        let need = |what: &str| {
            val.filter(|v| !v.is_empty())
                .ok_or_else(|| err(format!("parameter `{name}` needs a value ({what})")))
        };
        let bad = |what: &str| err(format!("`{param}`: expected {what}"));
        match name.to_ascii_lowercase().as_str() {
            "unicast" => t.unicast = true,
            "multicast" => t.multicast = true,
            "destination" => t.destination = Some(unquote(val.unwrap_or("")).to_owned()),
            "source" => t.source = Some(unquote(need("an address")?).to_owned()),
            "interleaved" => {
                let v = need("channel[-channel]")?;
                let pair = parse_channel_pair(v).ok_or_else(|| bad("channel[-channel], 0-255"))?;
                t.interleaved = Some(pair);
            }
            "client_port" | "server_port" => {
                let v = need("port[-port]")?;
                let pair = parse_port_pair(v).ok_or_else(|| bad("port[-port], 0-65535"))?;
                if name.eq_ignore_ascii_case("client_port") {
                    t.client_port = Some(pair);
                } else {
                    t.server_port = Some(pair);
                }
            }
            "ssrc" => {
                let v = need("8 hex digits")?;
                if v.len() > 8 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("at most 8 hex digits"));
                }
                t.ssrc = u32::from_str_radix(v, 16).ok();
            }
            "mode" => {
                let m = unquote(need("a method")?).trim();
                if m.is_empty() {
                    return Err(bad("a method"));
                }
                t.mode = Some(m.to_owned());
            }
            "ttl" => {
                let v = need("0-255")?;
                t.ttl = Some(parse_num(v).ok_or_else(|| bad("a ttl of 0-255"))?);
            }
            _ => t.other.push(param.to_owned()),
        }
    }
    if t.unicast && t.multicast {
        return Err(err(format!("`{spec}` says both unicast and multicast")));
    }
    if !t.multicast {
        t.unicast = true;
    }
    Ok(Some(t))
}

impl fmt::Display for Transport {
    /// The form a server answers with, e.g.
    /// `RTP/AVP;unicast;client_port=6296-6297;server_port=2346-2347;ssrc=1A2B3C4D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.profile)?;
        if self.lower == LowerTransport::Tcp {
            f.write_str("/TCP")?;
        }
        if self.multicast {
            f.write_str(";multicast")?;
        } else if self.unicast {
            f.write_str(";unicast")?;
        }
        match &self.destination {
            Some(d) if d.is_empty() => f.write_str(";destination")?,
            Some(d) => write_param(f, "destination", d)?,
            None => {}
        }
        if let Some(s) = &self.source {
            write_param(f, "source", s)?;
        }
        if let Some((a, b)) = self.interleaved {
            write!(f, ";interleaved={a}-{b}")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, ";ttl={ttl}")?;
        }
        if let Some((a, b)) = self.client_port {
            write!(f, ";client_port={a}-{b}")?;
        }
        if let Some((a, b)) = self.server_port {
            write!(f, ";server_port={a}-{b}")?;
        }
        if let Some(ssrc) = self.ssrc {
            write!(f, ";ssrc={ssrc:08X}")?;
        }
        if let Some(mode) = &self.mode {
            write!(f, ";mode=\"{mode}\"")?;
        }
        for other in &self.other {
            write!(f, ";{other}")?;
        }
        Ok(())
    }
}

/// `;name=value`, the value quoted when it holds what would end it unquoted (`,` `;` `=`
/// or a space): a quoted `source="a,b"` parsed is `a,b`, and written back bare it split the
/// header into two specifications (fuzzing regression, see the tests). Values never hold
/// `"` (refused when parsed).
fn write_param(f: &mut fmt::Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    if value.is_empty() || value.contains([',', ';', '=']) || value.contains(char::is_whitespace) {
        write!(f, ";{name}=\"{value}\"")
    } else {
        write!(f, ";{name}={value}")
    }
}

// ---------------------------------------------------------------------------------------
// Range and time

/// A normal play time (RFC 2326 §3.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NptTime {
    /// `now`: the live point.
    Now,
    /// Seconds from the start of the presentation (finite, non-negative when parsed).
    Seconds(f64),
}

impl fmt::Display for NptTime {
    /// `now` or seconds with three decimals (`12.500`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NptTime::Now => f.write_str("now"),
            NptTime::Seconds(s) => write!(f, "{s:.3}"),
        }
    }
}

/// A `Range` header value (RFC 2326 §12.29).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// `npt=start-[end]`.
    Npt {
        start: NptTime,
        end: Option<NptTime>,
    },
    /// `clock=[start]-[end]`, absolute UTC. For ONVIF reverse replay `end` is earlier than
    /// `start`; the first time is always the start point.
    Clock {
        start: Option<UnixMicros>,
        end: Option<UnixMicros>,
    },
}

impl fmt::Display for Range {
    /// `npt=0.000-`, `npt=now-`, `clock=20261121T220224.123Z-`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Npt { start, end } => {
                write!(f, "npt={start}-")?;
                if let Some(end) = end {
                    write!(f, "{end}")?;
                }
            }
            Range::Clock { start, end } => {
                f.write_str("clock=")?;
                if let Some(start) = start {
                    f.write_str(&format_clock(*start))?;
                }
                f.write_str("-")?;
                if let Some(end) = end {
                    f.write_str(&format_clock(*end))?;
                }
            }
        }
        Ok(())
    }
}

/// Parses a `Range` header value: `npt=` (seconds or `hh:mm:ss[.frac]`, or `now`) or
/// `clock=` (absolute UTC). A trailing `;time=...` parameter is ignored.
pub fn parse_range(value: &str) -> Result<Range, HeaderError> {
    let err = |reason: String| HeaderError::new("Range", value, reason);
    let spec = value.split(';').next().unwrap_or("").trim();
    let Some((unit, times)) = spec.split_once('=') else {
        return Err(err("expected `npt=...` or `clock=...`".to_owned()));
    };
    let unit = unit.trim();
    let (first, second) = match times.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (times.trim(), ""),
    };
    if unit.eq_ignore_ascii_case("npt") {
        let start = if first.is_empty() {
            if second.is_empty() {
                return Err(err("empty npt range".to_owned()));
            }
            NptTime::Seconds(0.0)
        } else {
            parse_npt_time(first).map_err(|r| err(format!("start `{first}`: {r}")))?
        };
        let end = if second.is_empty() {
            None
        } else {
            Some(parse_npt_time(second).map_err(|r| err(format!("end `{second}`: {r}")))?)
        };
        Ok(Range::Npt { start, end })
    } else if unit.eq_ignore_ascii_case("clock") {
        let time = |s: &str, which: &str| -> Result<Option<UnixMicros>, HeaderError> {
            if s.is_empty() {
                Ok(None)
            } else {
                parse_clock_compact(s)
                    .map(Some)
                    .map_err(|r| err(format!("{which} `{s}`: {r}")))
            }
        };
        let start = time(first, "start")?;
        let end = time(second, "end")?;
        if start.is_none() && end.is_none() {
            return Err(err("empty clock range".to_owned()));
        }
        Ok(Range::Clock { start, end })
    } else if unit.to_ascii_lowercase().starts_with("smpte") {
        Err(err("SMPTE time codes are not supported".to_owned()))
    } else {
        Err(err(format!("unknown range unit `{unit}`")))
    }
}

fn parse_npt_time(s: &str) -> Result<NptTime, String> {
    if s.eq_ignore_ascii_case("now") {
        return Ok(NptTime::Now);
    }
    let fraction = |f: &str| -> Result<f64, String> {
        if f.is_empty() {
            Ok(0.0)
        } else if is_digits(f) {
            format!("0.{f}")
                .parse()
                .map_err(|_| "bad fraction".to_owned())
        } else {
            Err(format!("fraction `{f}` is not digits"))
        }
    };
    let whole = |w: &str| -> Result<f64, String> {
        if is_digits(w) {
            w.parse().map_err(|_| format!("`{w}` is not a number"))
        } else {
            Err(format!("`{w}` is not a number"))
        }
    };
    let seconds = if s.contains(':') {
        let mut it = s.split(':');
        let (h, m, sec) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
        );
        if it.next().is_some() {
            return Err("expected hh:mm:ss[.fraction]".to_owned());
        }
        let (si, sf) = sec.split_once('.').unwrap_or((sec, ""));
        let minutes: u8 = parse_num(m)
            .filter(|&v| v < 60 && m.len() <= 2)
            .ok_or_else(|| format!("minutes `{m}` not 0-59"))?;
        let secs: u8 = parse_num(si)
            .filter(|&v| v < 60 && si.len() <= 2)
            .ok_or_else(|| format!("seconds `{si}` not 0-59"))?;
        whole(h)? * 3600.0 + f64::from(minutes) * 60.0 + f64::from(secs) + fraction(sf)?
    } else {
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        whole(i)? + fraction(f)?
    };
    if seconds.is_finite() {
        Ok(NptTime::Seconds(seconds))
    } else {
        Err("out of range".to_owned())
    }
}

/// Parses one `clock=` time, `YYYYMMDDThhmmss[.fraction]Z`, on its own (header `Range`).
pub fn parse_clock(value: &str) -> Result<UnixMicros, HeaderError> {
    parse_clock_compact(value.trim()).map_err(|r| HeaderError::new("Range", value, r))
}

/// Formats an absolute time as `YYYYMMDDThhmmss.mmmZ`, always with 3 digits of
/// milliseconds (rounded down). Parses back with [`parse_range`] for years 0000-9999; other
/// years are written with as many digits (and sign) as they need.
pub fn format_clock(t: UnixMicros) -> String {
    let days = t.div_euclid(MICROS_PER_DAY);
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / 1_000_000;
    let millis = (in_day % 1_000_000) / 1000;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{millis:03}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Formats a time as an RFC 1123 date for the `Date` header (RFC 2326 §12.18), e.g.
/// `Sat, 21 Nov 2026 22:02:24 GMT`.
pub fn format_http_date(t: UnixMicros) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(MICROS_PER_DAY);
    let secs = t.rem_euclid(MICROS_PER_DAY) / 1_000_000;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("???");
    let month = MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("???");
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------------------
// Session

/// A `Session` header (RFC 2326 §12.37).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeader {
    pub id: String,
    /// Seconds; servers put it in SETUP responses, clients rarely send it.
    pub timeout: Option<u32>,
}

impl fmt::Display for SessionHeader {
    /// `id` or `id;timeout=60`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)?;
        if let Some(timeout) = self.timeout {
            write!(f, ";timeout={timeout}")?;
        }
        Ok(())
    }
}

/// Parses a `Session` header: an id of visible ASCII characters, then optional parameters
/// of which `timeout` is read and others ignored.
pub fn parse_session(value: &str) -> Result<SessionHeader, HeaderError> {
    let err = |reason: String| HeaderError::new("Session", value, reason);
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or("").trim();
    if id.is_empty() {
        return Err(err("empty session id".to_owned()));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(format!(
            "session id `{id}` contains a space, control or non-ASCII character"
        )));
    }
    let mut timeout = None;
    for param in parts {
        if let Some((name, v)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("timeout") {
                let v = v.trim();
                timeout =
                    Some(parse_num(v).ok_or_else(|| err(format!("timeout `{v}` is not seconds")))?);
            }
        }
    }
    Ok(SessionHeader {
        id: id.to_owned(),
        timeout,
    })
}

// ---------------------------------------------------------------------------------------
// RTP-Info

/// One stream of an `RTP-Info` header (RFC 2326 §12.33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpInfo {
    pub url: String,
    /// Sequence number of the first packet sent after PLAY.
    pub seq: Option<u16>,
    /// RTP timestamp corresponding to the start of the Range.
    pub rtptime: Option<u32>,
}

/// Formats `url=...;seq=...;rtptime=...` entries joined by commas.
pub fn format_rtp_info(infos: &[RtpInfo]) -> String {
    let mut out = String::new();
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("url=");
        out.push_str(&info.url);
        if let Some(seq) = info.seq {
            out.push_str(&format!(";seq={seq}"));
        }
        if let Some(rtptime) = info.rtptime {
            out.push_str(&format!(";rtptime={rtptime}"));
        }
    }
    out
}

/// Whether `s` starts (after blanks) with `name=` (case-insensitive).
fn starts_with_param(s: &str, names: &[&str]) -> bool {
    let s = s.trim_start();
    names.iter().any(|name| {
        s.get(..name.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(name))
            && s.get(name.len()..)
                .is_some_and(|r| r.trim_start().starts_with('='))
    })
}

const RTP_INFO_PARAMS: [&str; 3] = ["seq", "rtptime", "ssrc"];

/// Parses an `RTP-Info` header. URLs may contain `;` and `,` (a `;` only ends the URL before
/// `seq=`, `rtptime=` or `ssrc=`, a `,` only before `url=`), or be quoted (RFC 7826).
/// Parameters other than `seq` and `rtptime` are ignored.
pub fn parse_rtp_info(value: &str) -> Result<Vec<RtpInfo>, HeaderError> {
    let err = |reason: String| HeaderError::new("RTP-Info", value, reason);
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            return Err(err(format!("`{rest}`: expected `url=`")));
        };
        if !name.trim().eq_ignore_ascii_case("url") {
            return Err(err(format!(
                "stream starts with `{}`, not `url=`",
                name.trim()
            )));
        }
        let after = after.trim_start();
        let (url, mut tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| err("unterminated quoted url".to_owned()))?;
            (
                quoted.get(..end).unwrap_or(""),
                quoted.get(end + 1..).unwrap_or(""),
            )
        } else {
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                let following = after.get(i + 1..).unwrap_or("");
                if (c == ';' && starts_with_param(following, &RTP_INFO_PARAMS))
                    || (c == ',' && starts_with_param(following, &["url"]))
                {
                    end = i;
                    break;
                }
            }
            after.split_at(end)
        };
        let url = url.trim();
        if url.is_empty() {
            return Err(err("empty url".to_owned()));
        }
        let mut info = RtpInfo {
            url: url.to_owned(),
            seq: None,
            rtptime: None,
        };
        loop {
            tail = tail.trim_start();
            if let Some(t) = tail.strip_prefix(';') {
                let end = t.find([';', ',']).unwrap_or(t.len());
                let (param, t) = t.split_at(end);
                tail = t;
                let Some((name, v)) = param.split_once('=') else {
                    if param.trim().is_empty() {
                        continue;
                    }
                    return Err(err(format!("parameter `{}` has no value", param.trim())));
                };
                let (name, v) = (name.trim(), v.trim());
                if name.eq_ignore_ascii_case("seq") {
                    info.seq =
                        Some(parse_num(v).ok_or_else(|| err(format!("seq `{v}` is not 0-65535")))?);
                } else if name.eq_ignore_ascii_case("rtptime") {
                    info.rtptime = Some(
                        parse_num(v)
                            .ok_or_else(|| err(format!("rtptime `{v}` is not a 32-bit number")))?,
                    );
                }
            } else if let Some(t) = tail.strip_prefix(',') {
                rest = t.trim_start();
                break;
            } else if tail.is_empty() {
                rest = "";
                break;
            } else {
                return Err(err(format!("unexpected `{tail}` after url")));
            }
        }
        out.push(info);
    }
    if out.is_empty() {
        return Err(err("no stream".to_owned()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Scale and the ONVIF replay headers

/// Parses a `Scale` header (RFC 2326 §12.34): `[-]digits[.digits]`, finite and non-zero.
/// Negative means reverse playback (ONVIF replay).
pub fn parse_scale(value: &str) -> Result<f64, HeaderError> {
    let err = |reason: &str| HeaderError::new("Scale", value, reason);
    let v = value.trim();
    let unsigned = v
        .strip_prefix('-')
        .or_else(|| v.strip_prefix('+'))
        .unwrap_or(v);
    let (i, f) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_ok = (i.is_empty() || is_digits(i))
        && (f.is_empty() || is_digits(f))
        && !(i.is_empty() && f.is_empty());
    if !digits_ok {
        return Err(err(
            "expected a decimal number such as `1`, `-1.0` or `0.5`",
        ));
    }
    let scale: f64 = v.parse().map_err(|_| err("not a number"))?;
    if !scale.is_finite() {
        return Err(err("out of range"));
    }
    if scale == 0.0 {
        return Err(err("scale must not be zero"));
    }
    Ok(scale)
}

/// Formats a scale for the `Scale` response header: `1.0`, `-1.0`, `0.5`.
pub fn format_scale(scale: f64) -> String {
    if scale.fract() == 0.0 && scale.abs() < 1e15 {
        format!("{scale:.1}")
    } else {
        format!("{scale}")
    }
}

/// ONVIF `Rate-Control` header: `yes` (default) paces delivery in real time (times the
/// scale), `no` sends as fast as the transport accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RateControl {
    #[default]
    Yes,
    No,
}

impl RateControl {
    pub fn as_str(self) -> &'static str {
        match self {
            RateControl::Yes => "yes",
            RateControl::No => "no",
        }
    }
}

impl fmt::Display for RateControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn parse_yes_no(header: &'static str, value: &str) -> Result<bool, HeaderError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(HeaderError::new(header, value, "expected `yes` or `no`"))
    }
}

/// Parses `Rate-Control: yes|no` (case-insensitive).
pub fn parse_rate_control(value: &str) -> Result<RateControl, HeaderError> {
    Ok(if parse_yes_no("Rate-Control", value)? {
        RateControl::Yes
    } else {
        RateControl::No
    })
}

impl std::str::FromStr for RateControl {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rate_control(s)
    }
}

/// Parses `Immediate: yes|no` (case-insensitive); `true` for yes.
pub fn parse_immediate(value: &str) -> Result<bool, HeaderError> {
    parse_yes_no("Immediate", value)
}

/// Parses `Blocksize: N` (RFC 2326 §12.7): the RTP payload size in octets a client asks
/// for, a positive decimal number. Values beyond `u32` are taken as `u32::MAX` (the server
/// may always use less than asked).
pub fn parse_blocksize(value: &str) -> Result<u32, HeaderError> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::new(
            "Blocksize",
            value,
            "expected a positive decimal number of octets",
        ));
    }
    match v.parse::<u64>() {
        Ok(0) => Err(HeaderError::new("Blocksize", value, "must be positive")),
        Ok(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        // More digits than u64 holds: still a number, and far beyond any packet.
        Err(_) => Ok(u32::MAX),
    }
}

/// ONVIF `Frames` header: which frames a replay delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Frames {
    /// `all` (default).
    #[default]
    All,
    /// `predicted`: everything but B-frames.
    Predicted,
    /// `intra` or `intra/<ms>`: key frames only, at most one per interval of recording time.
    Intra { interval_ms: Option<u32> },
}

impl fmt::Display for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frames::All => f.write_str("all"),
            Frames::Predicted => f.write_str("predicted"),
            Frames::Intra { interval_ms: None } => f.write_str("intra"),
            Frames::Intra {
                interval_ms: Some(ms),
            } => write!(f, "intra/{ms}"),
        }
    }
}

impl std::str::FromStr for Frames {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_frames(s)
    }
}

/// Parses `Frames: all | predicted | intra | intra/<ms>` (case-insensitive). An interval on
/// anything but `intra`, or an interval of 0, is an error.
pub fn parse_frames(value: &str) -> Result<Frames, HeaderError> {
    let err = |reason: String| HeaderError::new("Frames", value, reason);
    let v = value.trim();
    let (kind, interval) = match v.split_once('/') {
        Some((k, i)) => (k.trim(), Some(i.trim())),
        None => (v, None),
    };
    let kind = kind.to_ascii_lowercase();
    match (kind.as_str(), interval) {
        ("all", None) => Ok(Frames::All),
        ("predicted", None) => Ok(Frames::Predicted),
        ("all" | "predicted", Some(_)) => Err(err(format!(
            "an interval is only allowed with `intra`, not `{kind}`"
        ))),
        ("intra", None) => Ok(Frames::Intra { interval_ms: None }),
        ("intra", Some(i)) => match parse_num::<u32>(i) {
            Some(ms) if ms > 0 => Ok(Frames::Intra {
                interval_ms: Some(ms),
            }),
            _ => Err(err(format!(
                "interval `{i}` is not a positive number of milliseconds"
            ))),
        },
        _ => Err(err(format!(
            "`{kind}` is not `all`, `predicted`, `intra` or `intra/<ms>`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing regression (fuzz/artifacts/rtsp_headers/crash-16adc7ec...): an unbalanced
    /// quote made one alternative swallow the rest, and its formatted form did not parse.
    #[test]
    fn transport_with_unbalanced_quote_is_refused() {
        let v = "RTP/AVP;unicast;mode=@PLAY\",RTD\0\0lticast!";
        assert!(parse_transports(v).is_err());
        assert!(parse_transports("RTP/AVP;unicast;mode=\"PLAY").is_err());
        assert!(parse_transports("RTP/AVP;unicast;mode=\u{1}").is_err());
        // crash-df09d5e4...: balanced quotes inside a value.
        assert!(parse_transports(
            "RTP/AVP;unica0-5001;mode=ntmode=\"PLAY,\"RTP/AVP;_p00-5001;modulticast"
        )
        .is_err());
        // crash-e0602158... (the 1-hour AddressSanitizer run of 2026-12-06): a quoted
        // `source` holding a comma was written back unquoted, and the comma split it.
        let v = "RTP/AVP;unicast;source=\"10.0.0.1,x;y=z \";destination=\"a,b\"";
        let t = one(v);
        assert_eq!(t.source.as_deref(), Some("10.0.0.1,x;y=z "));
        assert_eq!(t.destination.as_deref(), Some("a,b"));
        assert_eq!(one(&t.to_string()), t);
        assert_eq!(
            one("RTP/AVP;unicast;source=10.0.0.1").to_string(),
            "RTP/AVP;unicast;source=10.0.0.1"
        );
        let ok = parse_transports("RTP/AVP;unicast;mode=\"PLAY\",RTP/AVP/TCP").unwrap();
        assert_eq!(ok.len(), 2);
        for t in ok {
            assert!(parse_transports(&t.to_string()).is_ok(), "{t}");
        }
    }
    use crate::rtsp::test_support::XorShift;
    use crate::time::NTP_UNIX_OFFSET_SECS;

    fn one(value: &str) -> Transport {
        let mut v = parse_transports(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 1, "{value}");
        v.remove(0)
    }

    #[test]
    fn transport_forms() {
        let t = one("RTP/AVP;unicast;client_port=5000");
        assert_eq!(t.client_port, Some((5000, 5001)));
        assert_eq!(t.lower, LowerTransport::Udp);
        let t = one("RTP/AVP/TCP;interleaved=4");
        assert_eq!(
            (t.lower, t.interleaved),
            (LowerTransport::Tcp, Some((4, 5)))
        );
        let t = one("rtp/avp/udp;client_port=6000-6001");
        assert_eq!(
            (t.profile.as_str(), t.lower),
            ("rtp/avp", LowerTransport::Udp)
        );
        let t = one("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1a2b3c4d;mode=\"PLAY\"");
        assert_eq!(t.ssrc, Some(0x1a2b_3c4d));
        assert_eq!(t.mode.as_deref(), Some("PLAY"));
        // Neither unicast nor multicast: unicast.
        let t = one("RTP/AVP;client_port=7000-7001");
        assert!(t.unicast && !t.multicast);
        let t = one(
            "RTP/AVP;multicast;destination=224.2.0.1;ttl=16;port=3456-3457;layers=2;\
             source=10.0.0.1;append; mode=\"PLAY,RECORD\" ",
        );
        assert!(t.multicast && !t.unicast);
        assert_eq!(t.destination.as_deref(), Some("224.2.0.1"));
        assert_eq!(t.source.as_deref(), Some("10.0.0.1"));
        assert_eq!(t.ttl, Some(16));
        assert_eq!(t.mode.as_deref(), Some("PLAY,RECORD"));
        assert_eq!(t.other, ["port=3456-3457", "layers=2", "append"]);
        let t = one("RTP/AVP;unicast;destination;server_port=1-2");
        assert_eq!(t.destination.as_deref(), Some(""));
        assert_eq!(t.server_port, Some((1, 2)));
    }

    #[test]
    fn transport_alternatives_in_preference_order() {
        let v = parse_transports(
            "RTP/AVP/TCP;unicast;interleaved=0-1, RTP/AVP;unicast;client_port=5000-5001,\
             RTP/AVP/SCTP;unicast,RTP/SAVP;unicast;client_port=6000-6001",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].lower, LowerTransport::Tcp);
        assert_eq!(v[1].client_port, Some((5000, 5001)));
        assert_eq!(v[2].profile, "RTP/SAVP");
        // A quoted mode list does not split alternatives.
        let v = parse_transports("RTP/AVP;mode=\"PLAY,RECORD\",RTP/AVP/TCP").unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn transport_errors_name_the_problem() {
        for (value, needle) in [
            ("", "no transport specification"),
            (" , ", "no transport specification"),
            ("RTP/AVP/SCTP", "only UDP and TCP"),
            ("RTP", "is not `protocol/profile[/lower-transport]`"),
            ("RTP/AVP/TCP/X", "is not `protocol/profile"),
            (
                "RTP/AVP;client_port=abc",
                "`client_port=abc`: expected port[-port]",
            ),
            ("RTP/AVP;client_port=65535", "`client_port=65535`"),
            ("RTP/AVP;client_port=70000-70001", "expected port[-port]"),
            ("RTP/AVP;client_port=+5-6", "expected port[-port]"),
            ("RTP/AVP/TCP;interleaved=255", "`interleaved=255`"),
            ("RTP/AVP/TCP;interleaved=", "`interleaved` needs a value"),
            ("RTP/AVP/TCP;interleaved", "`interleaved` needs a value"),
            ("RTP/AVP;ssrc=xyz", "at most 8 hex digits"),
            ("RTP/AVP;ssrc=123456789", "at most 8 hex digits"),
            ("RTP/AVP;unicast;multicast", "both unicast and multicast"),
            ("RTP/AVP;ttl=300", "ttl of 0-255"),
            ("RTP/AVP;mode=\"\"", "expected a method"),
        ] {
            let err = parse_transports(value).unwrap_err();
            assert_eq!(err.header, "Transport");
            assert_eq!(err.value, value);
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn transport_display() {
        let udp = Transport {
            client_port: Some((6296, 6297)),
            server_port: Some((2346, 2347)),
            ssrc: Some(0x1a2b3c4d),
            ..Transport::default()
        };
        assert_eq!(
            udp.to_string(),
            "RTP/AVP;unicast;client_port=6296-6297;server_port=2346-2347;ssrc=1A2B3C4D"
        );
        let tcp = Transport {
            lower: LowerTransport::Tcp,
            interleaved: Some((0, 1)),
            ssrc: Some(0xab),
            mode: Some("PLAY".into()),
            ..Transport::default()
        };
        assert_eq!(
            tcp.to_string(),
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=000000AB;mode=\"PLAY\""
        );
    }

    #[test]
    fn transport_round_trips() {
        for value in [
            "RTP/AVP/TCP;unicast;interleaved=0-1",
            "RTP/AVP/UDP;unicast;client_port=22274-22275",
            "RTP/AVP;unicast;client_port=46744-46745",
            "RTP/AVP;unicast;client_port=5000;server_port=7000-7001;ssrc=DEADBEEF;mode=play",
            "RTP/AVP;multicast;destination=224.2.0.1;source=1.2.3.4;ttl=127;port=5000-5001;x=\"a;b\"",
            "RTP/AVP/TCP;interleaved=4;mode=\"PLAY,RECORD\";append",
            "RTP/AVP;destination",
        ] {
            for t in parse_transports(value).unwrap() {
                let text = t.to_string();
                assert_eq!(one(&text), t, "{value} -> {text}");
            }
        }
    }

    fn npt(s: f64) -> NptTime {
        NptTime::Seconds(s)
    }

    #[test]
    fn npt_ranges() {
        for (value, start, end) in [
            ("npt=0.000-", npt(0.0), None),
            ("npt=now-", NptTime::Now, None),
            ("npt=NOW-", NptTime::Now, None),
            ("npt=123.45-", npt(123.45), None),
            ("npt=10-20.5", npt(10.0), Some(npt(20.5))),
            ("npt=5.-", npt(5.0), None),
            ("npt=1:02:03.5-", npt(3723.5), None),
            ("npt=00:00:07-01:00:00", npt(7.0), Some(npt(3600.0))),
            ("npt = 1 - 2 ", npt(1.0), Some(npt(2.0))),
            ("npt=-20", npt(0.0), Some(npt(20.0))),
            ("npt=30", npt(30.0), None),
            ("npt=0-;time=19970123T143720Z", npt(0.0), None),
        ] {
            assert_eq!(
                parse_range(value).unwrap_or_else(|e| panic!("{e}")),
                Range::Npt { start, end },
                "{value}"
            );
        }
    }

    #[test]
    fn range_errors_name_the_problem() {
        for (value, needle) in [
            ("", "expected `npt=...` or `clock=...`"),
            ("npt", "expected `npt=...`"),
            ("npt=", "empty npt range"),
            ("npt=-", "empty npt range"),
            ("npt=abc-", "start `abc`"),
            ("npt=1e5-", "start `1e5`"),
            ("npt=inf-", "start `inf`"),
            ("npt=1-x", "end `x`"),
            ("npt=1:60:00-", "minutes `60` not 0-59"),
            ("npt=1:000:00-", "minutes `000` not 0-59"),
            ("npt=1:00:61-", "seconds `61` not 0-59"),
            ("npt=1:00-", "seconds `` not 0-59"),
            ("npt=1:00:00:00-", "expected hh:mm:ss"),
            ("npt=1.2.3-", "fraction `2.3` is not digits"),
            ("clock=-", "empty clock range"),
            ("clock=2026-", "start `2026`"),
            ("clock=20261301T000000Z-", "month 13 not 01-12"),
            ("clock=20260230T000000Z-", "day 30 not in 2026-02"),
            ("clock=20260101T240000Z-", "time 24:00:00 out of range"),
            ("clock=20260101T000000-", "must end in Z"),
            ("clock=20260101T000000.Z-", "fraction `` is not digits"),
            ("clock=20260101T000000.1234567890Z-", "more than 9 digits"),
            ("clock=20260101T000000,5Z-", "expected YYYYMMDDThhmmss"),
            ("clock=2026010lT000000Z-", "expected YYYYMMDDThhmmss"),
            ("clock=20260101T000000Z-x", "end `x`"),
            (
                "smpte=10:07:00-10:07:33:05.01",
                "SMPTE time codes are not supported",
            ),
            ("bytes=0-", "unknown range unit `bytes`"),
        ] {
            let err = parse_range(value).unwrap_err();
            assert_eq!(err.header, "Range");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn clock_values() {
        // The GStreamer "from the beginning" range: 1900 is before 1970.
        assert_eq!(
            parse_clock("19000101T000000Z").unwrap(),
            -(NTP_UNIX_OFFSET_SECS as i64) * 1_000_000
        );
        assert_eq!(
            parse_clock("20260101T000130Z").unwrap(),
            1_767_225_690_000_000
        );
        assert_eq!(parse_clock("19700101T000000Z").unwrap(), 0);
        assert_eq!(parse_clock("19691231T235959.5Z").unwrap(), -500_000);
        assert_eq!(
            parse_clock("20000229T120000Z").unwrap(),
            951_825_600_000_000
        );
        assert!(parse_clock("19000229T000000Z").is_err()); // 1900 is not a leap year
        for (fraction, micros) in [
            ("1", 100_000),
            ("12", 120_000),
            ("123", 123_000),
            ("123456", 123_456),
            ("1234567", 123_456),
            ("123456789", 123_456),
            ("000001", 1),
        ] {
            assert_eq!(
                parse_clock(&format!("20261121T220224.{fraction}Z")).unwrap(),
                1_795_298_544_000_000 + micros,
                "{fraction}"
            );
        }
        assert_eq!(
            parse_clock("20261121t220224z").unwrap(),
            1_795_298_544_000_000
        );
        // The leap second lands on the next minute.
        assert_eq!(
            parse_clock("20161231T235960Z").unwrap(),
            parse_clock("20170101T000000Z").unwrap()
        );
        assert_eq!(
            parse_clock("00000101T000000Z").unwrap(),
            -62_167_219_200_000_000
        );
        assert_eq!(
            parse_clock("99991231T235959.999999Z").unwrap(),
            253_402_300_799_999_999
        );
    }

    #[test]
    fn clock_format() {
        assert_eq!(format_clock(1_795_298_544_123_456), "20261121T220224.123Z");
        assert_eq!(format_clock(0), "19700101T000000.000Z");
        assert_eq!(format_clock(-1), "19691231T235959.999Z");
        assert_eq!(format_clock(-2_208_988_800_000_000), "19000101T000000.000Z");
        // Extremes do not panic.
        let _ = format_clock(i64::MIN);
        let _ = format_clock(i64::MAX);
        assert_eq!(
            format_http_date(1_795_298_544_000_000),
            "Sat, 21 Nov 2026 22:02:24 GMT"
        );
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        let _ = format_http_date(i64::MIN);
    }

    #[test]
    fn range_display_and_round_trips() {
        let cases = [
            (
                Range::Npt {
                    start: npt(0.0),
                    end: None,
                },
                "npt=0.000-",
            ),
            (
                Range::Npt {
                    start: NptTime::Now,
                    end: None,
                },
                "npt=now-",
            ),
            (
                Range::Npt {
                    start: npt(12.5),
                    end: Some(npt(3600.25)),
                },
                "npt=12.500-3600.250",
            ),
            (
                Range::Clock {
                    start: Some(1_795_298_544_123_000),
                    end: None,
                },
                "clock=20261121T220224.123Z-",
            ),
            (
                Range::Clock {
                    start: Some(1_767_225_690_000_000),
                    end: Some(1_767_225_630_000_000),
                },
                "clock=20260101T000130.000Z-20260101T000030.000Z",
            ),
            (
                Range::Clock {
                    start: Some(-2_208_988_800_000_000),
                    end: None,
                },
                "clock=19000101T000000.000Z-",
            ),
            (
                Range::Clock {
                    start: None,
                    end: Some(0),
                },
                "clock=-19700101T000000.000Z",
            ),
        ];
        for (range, text) in cases {
            assert_eq!(range.to_string(), text);
            assert_eq!(parse_range(text).unwrap(), range, "{text}");
        }
        let mut rng = XorShift::new(77);
        for _ in 0..2000 {
            // Years 0000-9999.
            let ms = (rng.next_u64() % 315_569_520_000_000) as i64 - 62_167_219_200_000;
            let t = ms * 1000;
            let range = Range::Clock {
                start: Some(t),
                end: None,
            };
            assert_eq!(parse_range(&range.to_string()).unwrap(), range);
            let s = (rng.next_u64() % 100_000_000) as f64 / 1000.0;
            let text = Range::Npt {
                start: npt(s),
                end: Some(NptTime::Now),
            }
            .to_string();
            let Range::Npt {
                start: NptTime::Seconds(back),
                ..
            } = parse_range(&text).unwrap()
            else {
                panic!("{text}")
            };
            assert!((back - s).abs() < 1e-6, "{s} {text}");
        }
    }

    #[test]
    fn session_header() {
        let s = parse_session("V--VMA5qApg7.XoX").unwrap();
        assert_eq!((s.id.as_str(), s.timeout), ("V--VMA5qApg7.XoX", None));
        let s = parse_session(" 12345678 ; timeout = 60 ;other=1").unwrap();
        assert_eq!((s.id.as_str(), s.timeout), ("12345678", Some(60)));
        assert_eq!(s.to_string(), "12345678;timeout=60");
        for value in ["abc", "WfS9W+l1LRGTe-4+;timeout=65", "x$y_z.+;timeout=0"] {
            let s = parse_session(value).unwrap();
            assert_eq!(parse_session(&s.to_string()).unwrap(), s);
            assert_eq!(s.to_string(), value);
        }
        for (value, needle) in [
            ("", "empty session id"),
            (";timeout=60", "empty session id"),
            ("a b", "contains a space"),
            ("caf\u{e9}", "non-ASCII"),
            ("abc;timeout=x", "timeout `x` is not seconds"),
            ("abc;timeout=-1", "timeout `-1`"),
        ] {
            let err = parse_session(value).unwrap_err();
            assert_eq!(err.header, "Session");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn rtp_info() {
        let infos = vec![
            RtpInfo {
                url: "rtsp://127.0.0.1:8554/cam1/stream=0".into(),
                seq: Some(45102),
                rtptime: Some(3_450_012_345),
            },
            RtpInfo {
                url: "rtsp://127.0.0.1:8554/cam1/stream=1".into(),
                seq: Some(0),
                rtptime: None,
            },
            RtpInfo {
                url: "rtsp://h/x".into(),
                seq: None,
                rtptime: None,
            },
        ];
        let text = format_rtp_info(&infos);
        assert_eq!(
            text,
            "url=rtsp://127.0.0.1:8554/cam1/stream=0;seq=45102;rtptime=3450012345,\
             url=rtsp://127.0.0.1:8554/cam1/stream=1;seq=0,url=rtsp://h/x"
        );
        assert_eq!(parse_rtp_info(&text).unwrap(), infos);
        // URLs with ';' and ',', quoted URLs, spaces, unknown parameters.
        let v = parse_rtp_info(
            "url=rtsp://h/a;b=c,d/track1;seq=1;rtptime=2 , url=\"rtsp://h/q;seq=9\";ssrc=1234;seq=3, \
             URL = rtsp://h/z ; SEQ = 7",
        )
        .unwrap();
        assert_eq!(
            v,
            [
                RtpInfo {
                    url: "rtsp://h/a;b=c,d/track1".into(),
                    seq: Some(1),
                    rtptime: Some(2)
                },
                RtpInfo {
                    url: "rtsp://h/q;seq=9".into(),
                    seq: Some(3),
                    rtptime: None
                },
                RtpInfo {
                    url: "rtsp://h/z".into(),
                    seq: Some(7),
                    rtptime: None
                },
            ]
        );
        for (value, needle) in [
            ("", "no stream"),
            ("seq=1", "not `url=`"),
            ("url=", "empty url"),
            ("url=\"abc", "unterminated quoted url"),
            ("url=\"a\"b", "unexpected `b` after url"),
            ("url=x;seq=70000", "seq `70000` is not 0-65535"),
            ("url=x;rtptime=-1", "rtptime `-1`"),
            ("url=x;seq=", "seq `` is not 0-65535"),
            ("url=x;seq=1;foo", "parameter `foo` has no value"),
        ] {
            let err = parse_rtp_info(value).unwrap_err();
            assert_eq!(err.header, "RTP-Info");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn scale_and_replay_headers() {
        for (value, scale) in [
            ("1", 1.0),
            ("-1", -1.0),
            ("-1.0", -1.0),
            (" 2.5 ", 2.5),
            ("0.5", 0.5),
            (".5", 0.5),
            ("+4", 4.0),
            ("-16.", -16.0),
        ] {
            assert_eq!(parse_scale(value).unwrap(), scale, "{value}");
        }
        for value in [
            "", "0", "-0.0", "abc", "1e3", "inf", "NaN", "-", ".", "1..2", "--1",
        ] {
            let err = parse_scale(value).unwrap_err();
            assert_eq!(err.header, "Scale", "{value}");
        }
        assert_eq!(
            parse_scale(&"9".repeat(400)).unwrap_err().reason,
            "out of range"
        );
        assert_eq!(format_scale(-1.0), "-1.0");
        assert_eq!(format_scale(2.0), "2.0");
        assert_eq!(format_scale(0.5), "0.5");
        for s in [-1.0, 0.25, 8.0, -0.125] {
            assert_eq!(parse_scale(&format_scale(s)).unwrap(), s);
        }

        assert_eq!(parse_rate_control("no").unwrap(), RateControl::No);
        assert_eq!(parse_rate_control(" YES ").unwrap(), RateControl::Yes);
        assert_eq!(RateControl::default(), RateControl::Yes);
        assert_eq!(RateControl::No.to_string(), "no");
        assert_eq!("No".parse::<RateControl>(), Ok(RateControl::No));
        assert_eq!(
            "intra/10".parse::<Frames>(),
            Ok(Frames::Intra {
                interval_ms: Some(10)
            })
        );
        assert!(parse_rate_control("maybe")
            .unwrap_err()
            .to_string()
            .contains("Rate-Control"));
        assert!(parse_immediate("Yes").unwrap());
        assert!(!parse_immediate("no").unwrap());
        assert_eq!(parse_immediate("1").unwrap_err().header, "Immediate");

        assert_eq!(parse_blocksize("8000").unwrap(), 8000);
        assert_eq!(parse_blocksize(" 1400 ").unwrap(), 1400);
        assert_eq!(parse_blocksize("99999999999").unwrap(), u32::MAX);
        assert_eq!(parse_blocksize(&"9".repeat(40)).unwrap(), u32::MAX);
        for bad in ["", "0", "-5", "1.5", "1e4", "0x100", "8000 bytes"] {
            let e = parse_blocksize(bad).unwrap_err();
            assert_eq!((e.header, e.value.as_str()), ("Blocksize", bad));
        }

        for (value, frames) in [
            ("all", Frames::All),
            ("predicted", Frames::Predicted),
            ("intra", Frames::Intra { interval_ms: None }),
            (
                "intra/4000",
                Frames::Intra {
                    interval_ms: Some(4000),
                },
            ),
            (
                " INTRA / 250 ",
                Frames::Intra {
                    interval_ms: Some(250),
                },
            ),
        ] {
            assert_eq!(parse_frames(value).unwrap(), frames, "{value}");
            assert_eq!(parse_frames(&frames.to_string()).unwrap(), frames);
        }
        for (value, needle) in [
            ("predicted/100", "only allowed with `intra`"),
            ("all/1", "only allowed with `intra`"),
            ("intra/", "interval `` is not"),
            ("intra/0", "interval `0` is not"),
            ("intra/-5", "interval `-5`"),
            ("intra/abc", "interval `abc`"),
            ("keyframes", "`keyframes` is not"),
            ("", "`` is not"),
        ] {
            let err = parse_frames(value).unwrap_err();
            assert_eq!(err.header, "Frames");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let value = format!("RTP/AVP;ssrc={}", "\u{e9}".repeat(300));
        let err = parse_transports(&value).unwrap_err();
        assert!(err.value.len() <= 203 && err.value.ends_with("..."));
    }

    #[test]
    fn parsers_never_panic_on_random_input() {
        let mut rng = XorShift::new(0xfeed_beef);
        let alphabet: &[u8] = b"RTP/AVP/TCPUDP;,=-\"unicast client_port interleaved ssrc mode \
            npt clock now smpte T Z . : 0123456789 abcdefABCDEF url seq rtptime timeout intra/ \
            yes no \t\xc3\xa9\xff\x00";
        let seeds = [
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1A2B3C4D;mode=\"PLAY\"",
            "RTP/AVP;multicast;destination=1.2.3.4;ttl=9;client_port=1-2,RTP/AVP/TCP",
            "clock=20260101T000130.123456789Z-20260101T000030Z;time=x",
            "npt=1:02:03.5-99.25",
            "url=rtsp://h/a;seq=1;rtptime=2,url=\"x\";seq=3",
            "abc;timeout=60",
            "intra/4000",
            "-1.5",
        ];
        for round in 0..20_000 {
            let bytes = match round % 3 {
                0 => {
                    let len = rng.below(80);
                    rng.bytes(len)
                }
                1 => {
                    let len = rng.below(80);
                    rng.pick(alphabet, len)
                }
                _ => {
                    let seed = seeds[rng.below(seeds.len())];
                    rng.mutate(seed.as_bytes())
                }
            };
            let s = String::from_utf8_lossy(&bytes);
            let checked = |r: Result<String, HeaderError>| {
                if let Err(e) = r {
                    assert!(!e.reason.is_empty());
                    let _ = e.to_string();
                }
            };
            checked(parse_transports(&s).map(|v| {
                for t in &v {
                    // What parses also formats, and the format parses to the same value.
                    let text = t.to_string();
                    if t.mode.as_deref().is_none_or(|m| !m.contains('"'))
                        && t.destination
                            .as_deref()
                            .is_none_or(|d| !d.contains([',', ';', '"']))
                        && t.source
                            .as_deref()
                            .is_none_or(|d| !d.contains([',', ';', '"']))
                        && !t.other.iter().any(|o| o.contains([',', '"']))
                    {
                        assert_eq!(parse_transports(&text).ok(), Some(vec![t.clone()]), "{s:?}");
                    }
                }
                String::new()
            }));
            checked(parse_range(&s).map(|r| r.to_string()));
            checked(parse_clock(&s).map(format_clock));
            checked(parse_session(&s).map(|x| x.to_string()));
            checked(parse_rtp_info(&s).map(|v| format_rtp_info(&v)));
            checked(parse_scale(&s).map(format_scale));
            checked(parse_rate_control(&s).map(|x| x.to_string()));
            checked(parse_frames(&s).map(|x| x.to_string()));
            checked(parse_immediate(&s).map(|x| x.to_string()));
            checked(parse_blocksize(&s).map(|x| x.to_string()));
        }
    }
}
