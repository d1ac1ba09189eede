//! A minimal RTSP/1.0 client for the load generator: requests with CSeq, replies parsed
//! just enough (status line, headers, Content-Length body), interleaved `$` frames that
//! arrive before a reply skipped. Plain RTSP only (no auth, no tunnel), so it speaks to any
//! server the same way.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a session's media travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Transport {
    /// RTP/AVP/TCP interleaved on the RTSP connection.
    Tcp,
    /// RTP/AVP unicast UDP to a port pair per track.
    Udp,
}

pub struct Rtsp {
    pub s: TcpStream,
    /// Bytes read past the last reply (often the first media frames).
    pub buf: Vec<u8>,
    pub cseq: u32,
}

/// The `host:port` of an rtsp:// URL (554 when absent).
pub fn host_port(url: &str) -> Result<String, String> {
    let hp = url
        .strip_prefix("rtsp://")
        .and_then(|r| r.split('/').next())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("not an rtsp:// URL: {url:?} (expected rtsp://HOST:PORT/PATH)"))?;
    Ok(if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:554")
    })
}

pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

impl Rtsp {
    pub async fn connect(url: &str) -> Result<Rtsp, String> {
        let hostport = host_port(url)?;
        let s = TcpStream::connect(&hostport)
            .await
            .map_err(|e| format!("connect {hostport}: {e}"))?;
        let _ = s.set_nodelay(true);
        Ok(Rtsp {
            s,
            buf: Vec::with_capacity(1 << 16),
            cseq: 0,
        })
    }

    /// Sends a request without waiting for the reply.
    pub async fn send(&mut self, method: &str, url: &str, extra: &str) -> Result<(), String> {
        self.cseq += 1;
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: ipcamd-bench\r\n{extra}\r\n",
            self.cseq
        );
        self.s
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("{method}: {e}"))
    }

    /// Sends a request and returns the reply's head and body; a non-200 status is an error.
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        extra: &str,
    ) -> Result<(String, String), String> {
        self.send(method, url, extra).await?;
        loop {
            // Skip interleaved frames that arrive before the reply.
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if self.buf.first().is_some_and(|&b| b != b'$') {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let len = header(&head, "Content-Length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0usize);
                    if self.buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                        self.buf.drain(..end + 4 + len);
                        if !head.starts_with("RTSP/1.0 200") {
                            return Err(format!(
                                "{method} {url}: {}",
                                head.lines().next().unwrap_or("")
                            ));
                        }
                        return Ok((head, body));
                    }
                }
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("{method}: {e}"))?;
            if n == 0 {
                return Err(format!("{method} {url}: server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// DESCRIBE, then SETUP of every media section of the SDP with `transport(i)` as the
    /// Transport header of track i (plus `extra` on every request). Returns the session id
    /// and the number of tracks.
    pub async fn describe_setup(
        &mut self,
        url: &str,
        extra: &str,
        mut transport: impl FnMut(usize) -> String,
    ) -> Result<(String, usize), String> {
        let (head, sdp) = self
            .request(
                "DESCRIBE",
                url,
                &format!("Accept: application/sdp\r\n{extra}"),
            )
            .await?;
        let base = header(&head, "Content-Base").unwrap_or_else(|| format!("{url}/"));
        let controls = track_urls(&sdp, &base);
        if controls.is_empty() {
            return Err(format!("DESCRIBE {url}: the SDP has no media section"));
        }
        let mut session = String::new();
        for (i, c) in controls.iter().enumerate() {
            let mut h = format!("Transport: {}\r\n{extra}", transport(i));
            if !session.is_empty() {
                h.push_str(&format!("Session: {session}\r\n"));
            }
            let (reply, _) = self.request("SETUP", c, &h).await?;
            session = header(&reply, "Session")
                .and_then(|s| s.split(';').next().map(str::to_owned))
                .ok_or_else(|| format!("SETUP {c}: no Session header in the reply"))?;
        }
        Ok((session, controls.len()))
    }

    /// PLAY with `extra` headers; returns when the reply arrived, with the instant the
    /// request was sent.
    pub async fn play(&mut self, url: &str, session: &str, extra: &str) -> Result<Instant, String> {
        let t = Instant::now();
        self.request("PLAY", url, &format!("Session: {session}\r\n{extra}"))
            .await?;
        Ok(t)
    }
}

/// The absolute URLs of the media sections' `a=control` attributes.
fn track_urls(sdp: &str, base: &str) -> Vec<String> {
    let base = base.trim_end_matches('/');
    let mut in_media = false;
    let mut out = Vec::new();
    for l in sdp.lines() {
        let l = l.trim_end();
        if l.starts_with("m=") {
            in_media = true;
        } else if let (true, Some(c)) = (in_media, l.strip_prefix("a=control:")) {
            out.push(if c.starts_with("rtsp://") {
                c.to_owned()
            } else if c == "*" {
                base.to_owned()
            } else {
                format!("{base}/{c}")
            });
        }
    }
    out
}
