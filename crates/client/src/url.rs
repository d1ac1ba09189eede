//! `rtsp://[user[:password]@]host[:port][/path][?query]` URLs (RFC 2326 §3.2, with the
//! userinfo of RFC 3986 §3.2.1 that cameras take their credentials from).
//!
//! Hand-written: the client needs the host, the port, the credentials and the URL *without*
//! the credentials (which is what goes into requests and messages); a general URL crate
//! would add a dependency for five fields. Also `http://host[:port]/path` ([`HttpUrl`]),
//! the addresses of ONVIF services. Left out: `rtsps://` and `https://` (no TLS in this
//! client), `rtspu://`, and normalisation of the path (it is sent as written).

use std::fmt;

use crate::error::ClientError;

/// The default RTSP port (RFC 2326 §3.2).
pub const DEFAULT_PORT: u16 = 554;
/// The default RTSPS port (RFC 7826 §19.1: 322).
pub const DEFAULT_TLS_PORT: u16 = 322;

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
    /// `rtsps://`: RTSP over TLS.
    pub tls: bool,
}

impl RtspUrl {
    /// Parses an `rtsp://` or `rtsps://` URL (scheme case-insensitive).
    pub fn parse(url: &str) -> Result<RtspUrl, ClientError> {
        let bad = |reason: &str| ClientError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, parts) = split(url).map_err(bad)?;
        let tls = scheme.eq_ignore_ascii_case("rtsps");
        if !tls && !scheme.eq_ignore_ascii_case("rtsp") {
            return Err(bad(
                "only rtsp:// and rtsps:// URLs are supported (for the HTTP tunnel give the \
                 rtsp:// URL with the HTTP port and --transport http)",
            ));
        }
        let (username, password) = match parts.userinfo {
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
        Ok(RtspUrl {
            host: parts.host.to_owned(),
            port: parts
                .port(if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT })
                .map_err(bad)?,
            username,
            password,
            path: parts.path,
            tls,
        })
    }

    /// `host:port` for connecting (`[v6]:port` for IPv6 addresses).
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// The URL without credentials, as sent in request lines: `rtsp://host:port/path`
    /// (`rtsps://` over TLS). The port is always written (servers compare URLs, and some
    /// mishandle a missing one).
    pub fn to_request_url(&self) -> String {
        let scheme = if self.tls { "rtsps" } else { "rtsp" };
        format!("{scheme}://{}{}", self.host_port(), self.path)
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
            .field("tls", &self.tls)
            .finish()
    }
}

/// The default HTTP port (RFC 9110 §4.2.1).
pub const DEFAULT_HTTP_PORT: u16 = 80;

/// A parsed `http://host[:port][/path]` URL: an ONVIF service address (XAddr).
/// `https://` is refused (this client has no TLS), and so are credentials in the URL
/// (ONVIF takes them from the caller, for WS-Security and HTTP Digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address; IPv6 addresses without their brackets.
    pub host: String,
    pub port: u16,
    /// Path and query as written, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, ClientError> {
        let bad = |reason: &str| ClientError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, parts) = split(url).map_err(bad)?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(bad(
                "https:// device addresses are not supported (this client has no TLS): give \
                 the device's http:// address (ONVIF devices serve plain HTTP too, usually on \
                 port 80, unless it was turned off in their web interface)",
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad(
                "expected an ONVIF device service address: http://HOST[:PORT]/onvif/device_service",
            ));
        }
        if parts.userinfo.is_some() {
            return Err(bad(
                "credentials do not go in the address: give the user name and password separately",
            ));
        }
        Ok(HttpUrl {
            host: parts.host.to_owned(),
            port: parts.port(DEFAULT_HTTP_PORT).map_err(bad)?,
            path: parts.path,
        })
    }

    /// `host:port` for connecting and for the `Host` header.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }
}

impl fmt::Display for HttpUrl {
    /// `http://host:port/path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_port(), self.path)
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The pieces of `scheme://[userinfo@]host[:port][/path][?query]`, undecoded.
struct Parts<'a> {
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
    /// Starting with `/` (just `/` when the URL has none).
    path: String,
}

impl Parts<'_> {
    fn port(&self, default: u16) -> Result<u16, &'static str> {
        match self.port {
            None | Some("") => Ok(default),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or("the port is not a number from 1 to 65535"),
        }
    }
}

/// Splits a URL into its scheme and [`Parts`]; Err is the reason for the message.
fn split(url: &str) -> Result<(&str, Parts<'_>), &'static str> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected scheme://host[:port]/path")?;
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
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unterminated [IPv6 address]")?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("expected :port after [IPv6 address]")?,
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
        return Err("no host");
    }
    Ok((
        scheme,
        Parts {
            userinfo,
            host,
            port,
            path,
        },
    ))
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
    fn rtsps_urls_default_to_port_322_and_keep_their_scheme() {
        let u = RtspUrl::parse("rtsps://u:p@cam.local/live").unwrap();
        assert!(u.tls);
        assert_eq!(u.port, 322);
        assert_eq!(u.to_request_url(), "rtsps://cam.local:322/live");
        assert!(!RtspUrl::parse("rtsp://cam.local/").unwrap().tls);
        assert!(RtspUrl::parse("http://cam.local/").is_err());
    }

    #[test]
    fn http_urls() {
        let u = HttpUrl::parse("http://192.168.1.64/onvif/device_service").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("192.168.1.64", 80));
        assert_eq!(u.path, "/onvif/device_service");
        assert_eq!(u.to_string(), "http://192.168.1.64:80/onvif/device_service");
        let u = HttpUrl::parse("HTTP://[fe80::1]:8080").unwrap();
        assert_eq!(
            (u.host_port().as_str(), u.path.as_str()),
            ("[fe80::1]:8080", "/")
        );
        let e = HttpUrl::parse("https://cam/onvif/device_service")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("https:// device addresses are not supported"),
            "{e}"
        );
        let e = HttpUrl::parse("http://admin:secret@cam/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret") && e.contains("credentials"), "{e}");
        for bad in ["rtsp://cam/", "http://", "http://cam:0/", "cam/onvif"] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
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
