//! The client side of RTSP over HTTP (Apple's "Tunnelling RTSP and RTP through HTTP";
//! ONVIF Streaming "RTP/RTSP/HTTP/TCP"; the server side is `ipcamd_proto::tunnel`).
//!
//! 1. A GET with `x-sessioncookie: <random>` and `Accept: application/x-rtsp-tunnelled`;
//!    the server answers `HTTP/1.0 200 OK` (`Content-Type: application/x-rtsp-tunnelled`)
//!    and from then on sends RTSP responses and interleaved data on it, not encoded.
//! 2. A second connection: a POST with the same cookie,
//!    `Content-Type: application/x-rtsp-tunnelled` and a large fake `Content-Length`
//!    (32767, as QuickTime, VLC and ffmpeg send), never answered; its body is the client's
//!    requests, each base64-encoded on its own.
//!
//! After about 32 KB of POST body (a few seconds of audio) the announced length is
//! exceeded; servers ignore it (ipcamd, GStreamer, cameras), as ffmpeg and VLC rely on.
//! For an `rtsps://` URL both connections are TLS (HTTPS to the server's HTTPS port).
//! Left out: HTTP authentication of the GET/POST, HTTP proxies, redirects.

use std::time::Duration;

use bytes::BytesMut;
use ipcamd_proto::tunnel::TUNNEL_CONTENT_TYPE;
use rand::Rng as _;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ClientError;
use crate::net::connect_tcp;
use crate::tls::ClientTls;
use crate::url::RtspUrl;

/// One tunnel connection: TCP, or TLS over TCP.
pub(crate) trait TunnelIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> TunnelIo for T {}
pub(crate) type TunnelStream = Box<dyn TunnelIo>;

/// The longest GET response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// How long the server may take to answer the GET.
const GET_TIMEOUT: Duration = Duration::from_secs(10);

/// The two connections of an established tunnel.
pub(crate) struct Tunnel {
    pub get: TunnelStream,
    pub post: TunnelStream,
    /// The GET connection's server and our addresses.
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// A connection to `addr` for the tunnel's `what`: TLS when the URL is `rtsps://`.
async fn connect(
    url: &RtspUrl,
    what: &'static str,
    tls: &ClientTls,
) -> Result<(TunnelStream, SocketAddr, SocketAddr), ClientError> {
    let addr = url.host_port();
    let tcp = connect_tcp(&addr, what).await?;
    let io = |e| ClientError::io(format!("connection to {addr}"), e);
    let (peer, local) = (tcp.peer_addr().map_err(io)?, tcp.local_addr().map_err(io)?);
    let stream: TunnelStream = if url.tls {
        Box::new(crate::tls::connect(tcp, &url.host, tls).await?)
    } else {
        Box::new(tcp)
    };
    Ok((stream, peer, local))
}

/// A random `x-sessioncookie`: 22 alphanumeric characters (as QuickTime's).
fn new_cookie() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Opens the GET and POST connections to the URL's host and port. Bytes the server sent
/// after the GET response head are appended to `leftover` (they are RTSP).
pub(crate) async fn open(
    url: &RtspUrl,
    user_agent: &str,
    tls: &ClientTls,
    leftover: &mut BytesMut,
) -> Result<Tunnel, ClientError> {
    let addr = url.host_port();
    let err = |reason: String| ClientError::Tunnel {
        addr: addr.clone(),
        reason,
    };
    let cookie = new_cookie();
    let path = &url.path;
    let (mut get, peer, local) = connect(url, "HTTP tunnel GET", tls).await?;
    let head = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: {user_agent}\r\nx-sessioncookie: {cookie}\r\n\
         Accept: {TUNNEL_CONTENT_TYPE}\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n"
    );
    get.write_all(head.as_bytes())
        .await
        .map_err(|e| ClientError::io(format!("sending the tunnel GET to {addr}"), e))?;

    let read_head = async {
        let mut buf = BytesMut::with_capacity(2048);
        loop {
            if let Some(end) = find_head_end(&buf) {
                let head = buf.split_to(end);
                return Ok((head, buf));
            }
            if buf.len() > MAX_HEAD {
                return Err(err(format!(
                    "the answer to the GET has no end of head within {MAX_HEAD} bytes"
                )));
            }
            buf.reserve(2048);
            let n = get.read_buf(&mut buf).await.map_err(|e| {
                ClientError::io(
                    format!("reading the answer to the tunnel GET from {addr}"),
                    e,
                )
            })?;
            if n == 0 {
                return Err(err(
                    "the server closed the connection without answering the GET \
                     (is this the server's HTTP port, and does it tunnel RTSP?)"
                        .into(),
                ));
            }
        }
    };
    let (head, rest) = match tokio::time::timeout(GET_TIMEOUT, read_head).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ClientError::Timeout {
                what: format!("the answer to the tunnel GET from {addr}"),
                seconds: GET_TIMEOUT.as_secs(),
            })
        }
    };
    let head_text = String::from_utf8_lossy(&head);
    let status_line = head_text.lines().next().unwrap_or("").trim().to_owned();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(err(format!(
            "the answer to the GET is not HTTP: `{status_line}` (is this an RTSP-only port?)"
        )));
    }
    if code != "200" {
        let hint = if code == "401" {
            " (HTTP authentication of the tunnel is not supported by this client)"
        } else {
            ""
        };
        return Err(err(format!("the GET was answered `{status_line}`{hint}")));
    }
    leftover.extend_from_slice(&rest);

    let (mut post, _, _) = connect(url, "HTTP tunnel POST", tls).await?;
    let head = format!(
        "POST {path} HTTP/1.0\r\nUser-Agent: {user_agent}\r\nx-sessioncookie: {cookie}\r\n\
         Content-Type: {TUNNEL_CONTENT_TYPE}\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
         Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n"
    );
    post.write_all(head.as_bytes())
        .await
        .map_err(|e| ClientError::io(format!("sending the tunnel POST to {addr}"), e))?;
    Ok(Tunnel {
        get,
        post,
        peer,
        local,
    })
}

/// The length of the head (through its empty line), CRLF or LF line ends.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    for i in 0..buf.len() {
        if buf[i] == b'\n' {
            let before = &buf[..i];
            if before.ends_with(b"\n") {
                return Some(i + 1);
            }
            if before.ends_with(b"\n\r") {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\r\n\r\nRTSP"), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\n\nx"), Some(17));
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\r\nA: b\r\n"), None);
    }

    #[test]
    fn cookies_differ() {
        let (a, b) = (new_cookie(), new_cookie());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
