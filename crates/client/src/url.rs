//! `rtsp://[user[:password]@]host[:port][/path][?query]` URLs (RFC 2326 §3.2, with the
//! userinfo of RFC 3986 §3.2.1 that cameras take their credentials from).
//!
//! Hand-written: the client needs the host, the port, the credentials and the URL *without*
//! the credentials (which is what goes into requests and messages); a general URL crate
//! would add a dependency for five fields. Left out: `rtsps://` (no TLS in this client),
//! `rtspu://`, and normalisation of the path (it is sent as written).

use std::fmt;

use crate::error::ClientError;

/// The default RTSP port (RFC 2326 §3.2).
pub const DEFAULT_PORT: u16 = 554;

/// A parsed `rtsp://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    /// Host name or address; IPv6 addresses without their brackets.
    pub host: String,
    pub port: u16,
    /// Percent-decoded user name, if the URL has userinfo.
    pub username: Option<String>,
    /// Percent-decoded password. Never shown by `Debug` or `Display`.
    pub password: Option<String>,
    /// Path and query as written, starting with `/` (just `/` when the URL has none).
    pub path: String,
}

impl RtspUrl {
    /// Parses an `rtsp://` URL (scheme case-insensitive).
    pub fn parse(url: &str) -> Result<RtspUrl, ClientError> {
        let bad = |reason: &str| ClientError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected rtsp://host[:port]/path"))?;
        if !scheme.eq_ignore_ascii_case("rtsp") {
            return Err(bad(
                "only rtsp:// URLs are supported (for the HTTP tunnel give the rtsp:// URL \
                 with the HTTP port and --transport http)",
            ));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user =
                    percent_decode(user).ok_or_else(|| bad("bad %-escape in the user name"))?;
                let pass = match pass {
                    Some(p) => {
                        Some(percent_decode(p).ok_or_else(|| bad("bad %-escape in the password"))?)
                    }
                    None => None,
                };
                (Some(user), pass)
            }
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unterminated [IPv6 address]"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :port after [IPv6 address]"))?,
                ),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        Ok(RtspUrl {
            host: host.to_owned(),
            port,
            username,
            password,
            path,
        })
    }

    /// `host:port` for connecting (`[v6]:port` for IPv6 addresses).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL without credentials, as sent in request lines: `rtsp://host:port/path`.
    /// The port is always written (servers compare URLs, and some mishandle a missing one).
    pub fn to_request_url(&self) -> String {
        format!("rtsp://{}{}", self.host_port(), self.path)
    }
}

impl fmt::Display for RtspUrl {
    /// The URL without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_request_url())
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("path", &self.path)
            .finish()
    }
}

/// `s` with the password of any `scheme://user:password@` replaced by `***`, for messages.
pub fn redact(s: &str) -> String {
    let Some(start) = s.find("://").map(|i| i + 3) else {
        return s.to_owned();
    };
    let end = s[start..].find(['/', '?']).map_or(s.len(), |i| start + i);
    let authority = &s[start..end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{}{masked}@{host}{}", &s[..start], &s[end..])
        }
        None => s.to_owned(),
    }
}

/// RFC 3986 percent-decoding; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_host_port_path() {
        let u = RtspUrl::parse("rtsp://admin:p%40ss:w@192.168.0.1:8554/cam1?x=1").unwrap();
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert_eq!(u.host, "192.168.0.1");
        assert_eq!(u.port, 8554);
        assert_eq!(u.path, "/cam1?x=1");
        assert_eq!(u.to_request_url(), "rtsp://192.168.0.1:8554/cam1?x=1");
        assert!(!format!("{u:?}").contains("p@ss"));
        assert!(!format!("{u}").contains("admin"));
    }

    #[test]
    fn defaults_and_ipv6() {
        let u = RtspUrl::parse("RTSP://cam.local").unwrap();
        assert_eq!((u.port, u.path.as_str()), (554, "/"));
        let u = RtspUrl::parse("rtsp://[::1]:10554/a").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.host_port(), "[::1]:10554");
        assert_eq!(u.to_request_url(), "rtsp://[::1]:10554/a");
    }

    #[test]
    fn rejects_bad_urls_without_showing_the_password() {
        for bad in [
            "http://h/x",
            "rtsp://",
            "rtsp://h:0/x",
            "rtsp://h:99999/",
            "rtsp://[::1/x",
            "cam1",
        ] {
            assert!(RtspUrl::parse(bad).is_err(), "{bad}");
        }
        let e = RtspUrl::parse("rtsp://u:secret@h:xx/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(e.contains("u:***@h:xx"), "{e}");
    }
}
