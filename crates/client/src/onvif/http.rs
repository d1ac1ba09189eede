//! The smallest HTTP/1.1 client SOAP needs (RFC 9112): one POST per connection
//! (`Connection: close`), with a time limit; the answer framed by `Content-Length`, by
//! `Transfer-Encoding: chunked` or by the end of the connection. The framing
//! ([`decode`]) is a pure function of the bytes received so far, tested on byte strings;
//! [`post`] is the tokio loop around it.
//!
//! Left out: TLS (`https://`), keep-alive and pipelining (a handful of requests per
//! device), redirects, proxies, compression, `Expect: 100-continue` (a 1xx answer is
//! skipped if a device sends one anyway).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ClientError;
use crate::net::connect_tcp;
use crate::url::HttpUrl;

/// The longest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The longest answer body accepted (the XML parser's own limit).
const MAX_BODY: usize = ipcamd_onvif::xml::MAX_DOCUMENT_BYTES;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub reason: String,
    /// (name, value) in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of header `name` (any case).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }
}

/// Reads an answer from the bytes received so far: `Ok(None)` = more bytes are needed,
/// `eof` = the server has closed the connection (no more will come).
pub(crate) fn decode(buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("the answer head is longer than {MAX_HEAD} bytes"));
        }
        if eof {
            return Err(if buf.is_empty() {
                "the device closed the connection without answering".into()
            } else {
                "the device closed the connection in the middle of the answer head".into()
            });
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| "the answer head is not text".to_owned())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("the answer is not HTTP/1.x: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: part of the previous value.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let rest = &buf[head_end + 4..];
    if (100..200).contains(&status) {
        // An interim answer (100 Continue): the real one follows.
        return decode(rest, eof);
    }
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if status == 204 || status == 304 {
        Some(Vec::new())
    } else if chunked {
        dechunk(rest)?
    } else if let Some(len) = response.header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if len > MAX_BODY {
            return Err(format!(
                "the answer body of {len} bytes is larger than the {MAX_BODY} accepted"
            ));
        }
        (rest.len() >= len).then(|| rest[..len].to_vec())
    } else if eof {
        Some(rest.to_vec())
    } else {
        None
    };
    match body {
        Some(b) => {
            response.body = b;
            Ok(Some(response))
        }
        None if rest.len() > MAX_BODY => Err(format!(
            "the answer body is larger than the {MAX_BODY} bytes accepted"
        )),
        None if eof => {
            Err("the device closed the connection in the middle of the answer body".into())
        }
        None => Ok(None),
    }
}

/// The body of a complete chunked encoding (RFC 9112 §7.1); `Ok(None)` if incomplete.
fn dechunk(buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find(&buf[at..], b"\r\n").map(|i| at + i) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..line_end])
            .map_err(|_| "a chunk size line is not text".to_owned())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        at = line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            if buf.get(at..at + 2) == Some(b"\r\n") {
                return Ok(Some(out));
            }
            return Ok(find(&buf[at..], b"\r\n\r\n").map(|_| out));
        }
        if out.len() + size > MAX_BODY {
            return Err(format!(
                "the answer body is larger than the {MAX_BODY} bytes accepted"
            ));
        }
        let Some(data) = buf.get(at..at + size) else {
            return Ok(None);
        };
        match buf.get(at + size..at + size + 2) {
            None => return Ok(None),
            Some(b"\r\n") => {}
            Some(_) => return Err("a chunk does not end with CRLF".into()),
        }
        out.extend_from_slice(data);
        at += size + 2;
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// POSTs `body` to `url` with `headers` (besides Host, Content-Length and Connection) and
/// reads the whole answer, all within `timeout`. `what` names the request in errors
/// (`GetProfiles`).
pub(crate) async fn post(
    url: &HttpUrl,
    what: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    let context = || format!("{what} to {url}");
    let exchange = async {
        let mut stream = connect_tcp(&url.host_port(), "ONVIF service").await?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.path,
            url.host_port(),
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .await
            .map_err(|e| ClientError::io(format!("sending {}", context()), e))?;
        let mut buf = Vec::with_capacity(8192);
        loop {
            let mut chunk = [0u8; 8192];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| ClientError::io(format!("reading the answer to {}", context()), e))?;
            buf.extend_from_slice(&chunk[..n]);
            match decode(&buf, n == 0) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(reason) => return Err(ClientError::protocol(context(), reason)),
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout {
            what: format!("the answer to {}", context()),
            seconds: timeout.as_secs().max(1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_and_partial_input() {
        let all = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..all.len() {
            assert_eq!(decode(&all[..cut], false), Ok(None), "cut at {cut}");
            assert!(decode(&all[..cut], true).is_err(), "cut at {cut}");
        }
        let r = decode(all, false).unwrap().unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"hello");
        assert_eq!(
            r.headers_named("content-type").collect::<Vec<_>>(),
            ["application/soap+xml"]
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let all = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n<env\r\nA\r\n:Envelope/\r\n1\r\n>\r\n0\r\nX-Trailer: t\r\n\r\n";
        for cut in 0..all.len() {
            assert_eq!(decode(&all[..cut], false), Ok(None), "cut at {cut}");
        }
        let r = decode(all, false).unwrap().unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.body, b"<env:Envelope/>");
        let plain_end =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(decode(plain_end, false).unwrap().unwrap().body, b"ok");
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(decode(bad, false).is_err());
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX";
        assert!(decode(bad, false).is_err());
    }

    #[test]
    fn until_close_interim_folded_and_repeated_headers() {
        let all = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"cam\",\r\n nonce=\"n\"\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\nno";
        assert_eq!(decode(all, false), Ok(None));
        let r = decode(all, true).unwrap().unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.body, b"no");
        assert_eq!(
            r.headers_named("WWW-Authenticate").collect::<Vec<_>>(),
            ["Digest realm=\"cam\", nonce=\"n\"", "Basic realm=\"cam\""]
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            &b"RTSP/1.0 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        ] {
            assert!(
                decode(bad, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode(&vec![b'a'; MAX_HEAD + 1], false).is_err());
    }
}
