//! [`RtspClient`]: one RTSP/1.0 control connection (RFC 2326), plain TCP or through the
//! RTSP-over-HTTP tunnel, with the request/response bookkeeping a client needs: CSeq,
//! `Session`, `User-Agent`, authentication retries, and `$` interleaved data (§10.12).
//!
//! The wire format is ipcamd-proto's: requests are serialised with
//! [`Request::write_to`](ipcamd_proto::rtsp::Request::write_to) and everything the server
//! sends goes through one [`Decoder`]. This module only moves bytes and keeps state.
//!
//! # Frames that arrive while waiting for a response
//!
//! [`RtspClient::request`] reads until the response with its CSeq. Interleaved frames that
//! arrive meanwhile (RTP/RTCP of a PLAYing session) are queued, up to
//! [`MAX_QUEUED_FRAMES`]; older ones are dropped past that and counted in
//! [`RtspClient::dropped_frames`]. [`RtspClient::next_frame`] returns the queued ones first.
//! Requests from the server (REDIRECT, ANNOUNCE, a server's own keep-alive) arriving while a
//! response is awaited are answered `501 Not Implemented`; those read by `next_frame` are
//! handed to the caller, who may answer them with [`RtspClient::answer_not_implemented`].
//! Responses with an older CSeq (a request that timed out) are discarded.
//!
//! # Transports
//!
//! - [`ClientTransport::Tcp`]: one TCP connection to the URL's host and port; media
//!   interleaved on it (`RTP/AVP/TCP;interleaved=`).
//! - [`ClientTransport::Udp`]: the same control connection; media on UDP ports the caller
//!   binds ([`bind_rtp_pair`]) and offers as `client_port=`.
//! - [`ClientTransport::Http`]: Apple's tunnel (module `tunnel`): responses and media
//!   from the server on the GET connection, requests base64-encoded on the POST one. Media to
//!   the server goes on the POST as base64 `$` frames (current ONVIF Streaming text) or, with
//!   [`RtspClient::set_raw_tunnel_rtp`], as raw `$` frames (an older revision).
//!
//! Left out: RTSP 2.0, TLS (`rtsps://`), pipelining (one request at a time), following
//! `3xx` redirects, HTTP authentication of the tunnel's GET/POST (RTSP authentication inside
//! the tunnel works).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use bytes::BytesMut;
use ipcamd_proto::rtsp::{
    parse_session, parse_transports, try_write_interleaved, Decoder, Frame, Method, Request,
    Response, SessionHeader, Transport,
};
use ipcamd_proto::sdp::{parse_sdp, resolve_control, SdpSession};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::auth::{AuthSelectError, Authenticator, Credentials};
use crate::error::ClientError;
use crate::net::connect_tcp;
pub use crate::net::CONNECT_TIMEOUT;
use crate::tls::ClientTls;
use crate::tunnel;
use crate::url::RtspUrl;

/// The ONVIF audio backchannel feature tag (ONVIF Streaming §5.3, `Require` header).
pub use ipcamd_proto::rtsp::tags::BACKCHANNEL as BACKCHANNEL_TAG;

/// Interleaved frames kept while a response is awaited; see the module documentation.
pub const MAX_QUEUED_FRAMES: usize = 256;

/// The default time a request may wait for its response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The `Session` timeout RFC 2326 §12.37 implies when the server gives none.
pub const DEFAULT_SESSION_TIMEOUT: u32 = 60;

/// The `User-Agent` this client sends.
pub fn user_agent() -> String {
    format!("ipcamd-client/{}", env!("CARGO_PKG_VERSION"))
}

/// How media travels (and so how the control connection is opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTransport {
    /// RTP interleaved on the RTSP TCP connection.
    Tcp,
    /// RTP over UDP; RTSP on TCP.
    Udp,
    /// RTSP and interleaved RTP through the RTSP-over-HTTP tunnel.
    Http,
}

impl ClientTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTransport::Tcp => "TCP interleaved",
            ClientTransport::Udp => "UDP",
            ClientTransport::Http => "HTTP tunnel",
        }
    }
}

/// The tunnel's extra halves, held so that neither connection is half-closed.
struct TunnelHalves {
    /// Write half of the GET connection: never written after the GET.
    _get_write: tokio::io::WriteHalf<tunnel::TunnelStream>,
    /// Read half of the POST connection: the server never answers the POST.
    _post_read: tokio::io::ReadHalf<tunnel::TunnelStream>,
    raw_rtp: bool,
}

/// An RTSP client connection. See the module documentation.
pub struct RtspClient {
    url: RtspUrl,
    request_url: String,
    transport: ClientTransport,
    peer: SocketAddr,
    local: SocketAddr,
    /// Plain: the connection (or its TLS session); tunnel: the GET connection.
    reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Plain: the connection (or its TLS session); tunnel: the POST connection.
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    tunnel: Option<TunnelHalves>,
    rbuf: BytesMut,
    decoder: Decoder,
    cseq: u32,
    session: Option<SessionHeader>,
    auth: Option<Authenticator>,
    aggregate_url: Option<String>,
    queued: VecDeque<Frame>,
    dropped_frames: u64,
    request_timeout: Duration,
    trace: bool,
    keepalive_method: Method,
}

impl std::fmt::Debug for RtspClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspClient")
            .field("url", &self.request_url)
            .field("transport", &self.transport)
            .field("peer", &self.peer)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl RtspClient {
    /// Connects to the server of `url` (`rtsp://[user:pass@]host[:port]/path`): a TCP
    /// connection for [`ClientTransport::Tcp`] and [`ClientTransport::Udp`], the GET/POST
    /// pair for [`ClientTransport::Http`] (to the same host and port: give the server's HTTP
    /// port in the URL). No request is sent.
    pub async fn connect(url: &str, transport: ClientTransport) -> Result<Self, ClientError> {
        Self::connect_with(url, transport, &ClientTls::default()).await
    }

    /// Like [`connect`](Self::connect); an `rtsps://` URL's certificate is checked as `tls`
    /// says (RTSPS over TCP or UDP, or HTTPS for the HTTP tunnel).
    pub async fn connect_with(
        url: &str,
        transport: ClientTransport,
        tls: &ClientTls,
    ) -> Result<Self, ClientError> {
        let url = RtspUrl::parse(url)?;
        let addr = url.host_port();
        let mut rbuf = BytesMut::with_capacity(8192);
        type Halves = (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
        );
        let (reader, writer, tunnel, peer, local): (_, _, _, SocketAddr, SocketAddr) =
            match transport {
                ClientTransport::Tcp | ClientTransport::Udp => {
                    let stream = connect_tcp(&addr, "RTSP").await?;
                    let (peer, local) = addrs(&stream, &addr)?;
                    let (r, w): Halves = if url.tls {
                        let s = crate::tls::connect(stream, &url.host, tls).await?;
                        let (r, w) = tokio::io::split(s);
                        (Box::new(r), Box::new(w))
                    } else {
                        let (r, w) = stream.into_split();
                        (Box::new(r), Box::new(w))
                    };
                    (r, w, None, peer, local)
                }
                ClientTransport::Http => {
                    let t = tunnel::open(&url, &user_agent(), tls, &mut rbuf).await?;
                    let (peer, local) = (t.peer, t.local);
                    let (get_read, get_write) = tokio::io::split(t.get);
                    let (post_read, post_write) = tokio::io::split(t.post);
                    let halves = TunnelHalves {
                        _get_write: get_write,
                        _post_read: post_read,
                        raw_rtp: false,
                    };
                    let (r, w): Halves = (Box::new(get_read), Box::new(post_write));
                    (r, w, Some(halves), peer, local)
                }
            };
        Ok(RtspClient {
            request_url: url.to_request_url(),
            url,
            transport,
            peer,
            local,
            reader,
            writer,
            tunnel,
            rbuf,
            decoder: Decoder::default(),
            cseq: 0,
            session: None,
            auth: None,
            aggregate_url: None,
            queued: VecDeque::new(),
            dropped_frames: 0,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            trace: false,
            keepalive_method: Method::GetParameter,
        })
    }

    /// The URL requests go to, without credentials.
    pub fn url(&self) -> &str {
        &self.request_url
    }

    pub fn transport(&self) -> ClientTransport {
        self.transport
    }

    /// The server's address (of the GET connection when tunnelling).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// This end's address of the control (or GET) connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The session established by SETUP, if any.
    pub fn session(&self) -> Option<&SessionHeader> {
        self.session.as_ref()
    }

    /// The session timeout the server announced, or 60 s.
    pub fn session_timeout(&self) -> Duration {
        let secs = self
            .session
            .as_ref()
            .and_then(|s| s.timeout)
            .unwrap_or(DEFAULT_SESSION_TIMEOUT);
        Duration::from_secs(u64::from(secs.max(2)))
    }

    /// The URL PLAY, TEARDOWN and keep-alives go to: the SDP's session-level control
    /// resolved against the Content-Base, else the DESCRIBE URL.
    pub fn aggregate_url(&self) -> &str {
        self.aggregate_url.as_deref().unwrap_or(&self.request_url)
    }

    /// Interleaved frames dropped because the queue was full (see the module documentation).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// How long [`request`](Self::request) waits for a response (default 15 s).
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// Prints every request and response head (and text bodies) to stderr, with
    /// `Authorization` values replaced by `<redacted>`. For command-line tools.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Tunnel only: send media to the server as raw `$` frames on the POST instead of
    /// base64-encoding them (an older revision of the ONVIF Streaming Specification).
    pub fn set_raw_tunnel_rtp(&mut self, raw: bool) {
        if let Some(t) = &mut self.tunnel {
            t.raw_rtp = raw;
        }
    }

    fn credentials(&self) -> Option<Credentials> {
        self.url.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: self.url.password.clone().unwrap_or_default(),
        })
    }

    /// Sends `request` and returns the server's response, whatever its status. Sets `CSeq`,
    /// `User-Agent` (unless present), `Session` (once known, unless present) and
    /// `Authorization` (once the server asked for it). A `401` is answered once by
    /// repeating the request with credentials from the URL (and once more for a stale
    /// nonce); the second `401` is an error. A `Session` header in the response is
    /// remembered.
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let mut rebuilt = false;
        let mut refreshed = false;
        loop {
            let response = self.send_once(request.clone()).await?;
            if response.status != 401 {
                if let Some(value) = response.headers.get("Session") {
                    match parse_session(value) {
                        Ok(s) => self.session = Some(s),
                        Err(e) => {
                            return Err(ClientError::protocol(
                                format!("{} {}", request.method, request.uri),
                                format!("unreadable Session header in the response: {e}"),
                            ))
                        }
                    }
                }
                return Ok(response);
            }
            let auth_err = |reason: String| ClientError::Auth {
                method: request.method.to_string(),
                uri: request.uri.clone(),
                reason,
            };
            let Some(credentials) = self.credentials() else {
                return Err(auth_err(
                    "the server answered 401 Unauthorized; put the user name and password in \
                     the URL: rtsp://user:password@host/..."
                        .into(),
                ));
            };
            let challenges = || response.headers.get_all("WWW-Authenticate");
            if !refreshed {
                if let Some(auth) = &mut self.auth {
                    if auth.refresh_stale(challenges()) {
                        refreshed = true;
                        continue;
                    }
                }
            }
            if rebuilt {
                return Err(auth_err(
                    "the server rejected the user name and password of the URL (401 again)".into(),
                ));
            }
            match Authenticator::from_challenges(credentials, challenges()) {
                Ok(a) => {
                    self.auth = Some(a);
                    rebuilt = true;
                }
                Err(AuthSelectError::NoChallenge) => {
                    return Err(auth_err(
                        "401 Unauthorized without a WWW-Authenticate header".into(),
                    ))
                }
                Err(AuthSelectError::Unsupported(s)) => {
                    return Err(auth_err(format!(
                        "the server offers only authentication schemes this client does not \
                         support: {s} (supported: Digest MD5/MD5-sess, Basic)"
                    )))
                }
            }
        }
    }

    /// One request on the wire, one response back (no authentication logic).
    async fn send_once(&mut self, mut req: Request) -> Result<Response, ClientError> {
        self.cseq += 1;
        let cseq = self.cseq;
        req.headers.set("CSeq", cseq.to_string());
        if !req.headers.contains("User-Agent") {
            req.headers.set("User-Agent", user_agent());
        }
        if let Some(s) = &self.session {
            if !req.headers.contains("Session") {
                req.headers.set("Session", s.id.clone());
            }
        }
        if let Some(auth) = &mut self.auth {
            let cnonce = format!("{:016x}", rand::random::<u64>());
            let value = auth.authorization(req.method.as_str(), &req.uri, &cnonce);
            req.headers.set("Authorization", value);
        }
        let what = format!("{} {}", req.method, req.uri);
        let mut out = BytesMut::new();
        req.write_to(&mut out);
        if self.trace {
            trace_message(">>", &out);
        }
        self.write_control(&out, &what).await?;
        let waiting_for = format!("waiting for the response to {what} (CSeq {cseq})");
        let timeout = self.request_timeout;
        match tokio::time::timeout(timeout, self.read_response(cseq, &waiting_for)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                what: format!("the response to {what} (CSeq {cseq})"),
                seconds: timeout.as_secs(),
            }),
        }
    }

    async fn read_response(
        &mut self,
        cseq: u32,
        waiting_for: &str,
    ) -> Result<Response, ClientError> {
        loop {
            match self.read_frame(waiting_for).await? {
                Frame::Response(r) => {
                    if self.trace {
                        let mut b = BytesMut::new();
                        r.write_to(&mut b);
                        trace_message("<<", &b);
                    }
                    match r.cseq() {
                        Some(c) if c != cseq => continue,
                        _ => return Ok(r),
                    }
                }
                f @ Frame::Interleaved { .. } => self.queue(f),
                Frame::Request(req) => self.answer_not_implemented(&req).await?,
            }
        }
    }

    fn queue(&mut self, frame: Frame) {
        if self.queued.len() >= MAX_QUEUED_FRAMES {
            self.queued.pop_front();
            self.dropped_frames += 1;
        }
        self.queued.push_back(frame);
    }

    /// Reads one frame from the connection (not from the queue). Cancel-safe: bytes read
    /// stay in the buffer if the future is dropped.
    async fn read_frame(&mut self, waiting_for: &str) -> Result<Frame, ClientError> {
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::Decode {
                        context: waiting_for.to_owned(),
                        message: e.message,
                    })
                }
            }
            self.rbuf.reserve(4096);
            let n = self
                .reader
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| ClientError::io(format!("reading from {}", self.peer), e))?;
            if n == 0 {
                return Err(ClientError::Closed {
                    waiting_for: waiting_for.to_owned(),
                });
            }
        }
    }

    /// The next interleaved frame or server request: queued ones first, then from the
    /// connection. Cancel-safe (usable in `tokio::select!`). Responses to requests that
    /// timed out are returned too.
    pub async fn next_frame(&mut self) -> Result<Frame, ClientError> {
        if let Some(f) = self.queued.pop_front() {
            return Ok(f);
        }
        self.read_frame("reading from the server").await
    }

    /// Answers a request from the server with `501 Not Implemented`.
    pub async fn answer_not_implemented(&mut self, req: &Request) -> Result<(), ClientError> {
        let mut resp = Response::new(501);
        if let Some(c) = req.cseq() {
            resp.headers.set("CSeq", c.to_string());
        }
        let mut out = BytesMut::new();
        resp.write_to(&mut out);
        self.write_control(&out, &format!("answering the server's {}", req.method))
            .await
    }

    /// Writes an RTSP message: as is, or base64 on the tunnel's POST.
    async fn write_control(&mut self, msg: &[u8], what: &str) -> Result<(), ClientError> {
        let encoded;
        let bytes = if self.tunnel.is_some() {
            encoded = base64::engine::general_purpose::STANDARD.encode(msg);
            encoded.as_bytes()
        } else {
            msg
        };
        let peer = self.peer;
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| ClientError::io(format!("sending {what} to {peer}"), e))
    }

    /// Sends one interleaved frame (`$`, channel, length, `data`; RFC 2326 §10.12): on the
    /// TCP connection, or on the tunnel's POST (base64, or raw after
    /// [`set_raw_tunnel_rtp`](Self::set_raw_tunnel_rtp)). An error with UDP transport.
    pub async fn send_interleaved(&mut self, channel: u8, data: &[u8]) -> Result<(), ClientError> {
        if self.transport == ClientTransport::Udp {
            return Err(ClientError::Usage(
                "interleaved data needs the TCP or HTTP transport, not UDP".into(),
            ));
        }
        let header = try_write_interleaved(channel, data.len()).ok_or_else(|| {
            ClientError::Usage(format!(
                "an interleaved frame holds at most 65535 bytes, not {}",
                data.len()
            ))
        })?;
        let mut frame = Vec::with_capacity(4 + data.len());
        frame.extend_from_slice(&header);
        frame.extend_from_slice(data);
        let peer = self.peer;
        let bytes = match &self.tunnel {
            Some(t) if !t.raw_rtp => base64::engine::general_purpose::STANDARD
                .encode(&frame)
                .into_bytes(),
            _ => frame,
        };
        self.writer.write_all(&bytes).await.map_err(|e| {
            ClientError::io(
                format!("sending interleaved data on channel {channel} to {peer}"),
                e,
            )
        })
    }

    /// OPTIONS on the request URL.
    pub async fn options(&mut self) -> Result<Response, ClientError> {
        let url = self.request_url.clone();
        self.request(Request::new(Method::Options, url)).await
    }

    /// DESCRIBE the URL with `Accept: application/sdp` and `Require: <require>` (when not
    /// empty). Returns the response, the parsed SDP and the base URL for relative controls
    /// (Content-Base, else Content-Location, else the request URL). Any status but 200 is
    /// an error, showing the `Unsupported` header of a `551`.
    pub async fn describe(
        &mut self,
        require: &[&str],
    ) -> Result<(Response, SdpSession, String), ClientError> {
        let url = self.request_url.clone();
        let mut req =
            Request::new(Method::Describe, url.clone()).header("Accept", "application/sdp");
        if !require.is_empty() {
            req = req.header("Require", require.join(", "));
        }
        let resp = self.request(req).await?;
        if resp.status != 200 {
            return Err(status_error("DESCRIBE", &url, &resp));
        }
        let base = resp
            .headers
            .get("Content-Base")
            .or_else(|| resp.headers.get("Content-Location"))
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(&url)
            .to_owned();
        let text = String::from_utf8_lossy(&resp.body);
        let sdp = parse_sdp(&text).map_err(|e| {
            ClientError::protocol(
                format!("DESCRIBE {url}"),
                format!("the response body is not a usable SDP: {e}"),
            )
        })?;
        self.aggregate_url = Some(match sdp.control() {
            Some(c) => resolve_control(&base, c),
            None => base.clone(),
        });
        Ok((resp, sdp, base))
    }

    /// SETUP `control_url` offering `offer`; `extra` headers are added (e.g. `Require`).
    /// Returns the response and the server's Transport answer. Any status but 200 is an
    /// error; so are a missing or unreadable `Transport` or `Session` header.
    pub async fn setup(
        &mut self,
        control_url: &str,
        offer: &Transport,
        extra: &[(&str, &str)],
    ) -> Result<(Response, Transport), ClientError> {
        let mut req =
            Request::new(Method::Setup, control_url).header("Transport", offer.to_string());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = self.request(req).await?;
        let ctx = || format!("SETUP {control_url}");
        if resp.status != 200 {
            let mut e = status_error("SETUP", control_url, &resp);
            if resp.status == 461 {
                if let ClientError::Status { detail, .. } = &mut e {
                    detail.push_str(&format!(
                        "; the server refused `Transport: {offer}`: try another transport"
                    ));
                }
            }
            return Err(e);
        }
        let value = resp
            .headers
            .get("Transport")
            .ok_or_else(|| ClientError::protocol(ctx(), "the response has no Transport header"))?;
        let answer = parse_transports(value)
            .map_err(|e| ClientError::protocol(ctx(), e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::protocol(ctx(), "empty Transport header"))?;
        if self.session.is_none() {
            return Err(ClientError::protocol(
                ctx(),
                "the response has no Session header",
            ));
        }
        Ok((resp, answer))
    }

    /// PLAY the aggregate URL, with `Range: <range>` when given and `extra` headers. Any
    /// status but 200 is an error.
    pub async fn play(
        &mut self,
        range: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let url = self.aggregate_url().to_owned();
        let mut req = Request::new(Method::Play, url.clone());
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = self.request(req).await?;
        if resp.status != 200 {
            return Err(status_error("PLAY", &url, &resp));
        }
        Ok(resp)
    }

    /// TEARDOWN the aggregate URL and forget the session. Returns the response whatever its
    /// status (a session already gone is not the caller's problem).
    pub async fn teardown(&mut self, extra: &[(&str, &str)]) -> Result<Response, ClientError> {
        let url = self.aggregate_url().to_owned();
        let mut req = Request::new(Method::Teardown, url);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let result = self.request(req).await;
        self.session = None;
        result
    }

    /// Keeps the session alive (RFC 2326 §12.37; call every timeout/2): GET_PARAMETER on the
    /// aggregate URL, or OPTIONS once the server has answered GET_PARAMETER with 405, 501
    /// or 551. Any answer counts, except `454 Session Not Found`, which is an error.
    pub async fn keepalive(&mut self) -> Result<(), ClientError> {
        let url = self.aggregate_url().to_owned();
        let method = self.keepalive_method.clone();
        let resp = self
            .request(Request::new(method.clone(), url.clone()))
            .await?;
        if matches!(resp.status, 405 | 501 | 551) && method == Method::GetParameter {
            self.keepalive_method = Method::Options;
        }
        if resp.status == 454 {
            return Err(status_error(method.as_str(), &url, &resp));
        }
        Ok(())
    }
}

fn addrs(stream: &TcpStream, addr: &str) -> Result<(SocketAddr, SocketAddr), ClientError> {
    let peer = stream
        .peer_addr()
        .map_err(|e| ClientError::io(format!("connection to {addr}"), e))?;
    let local = stream
        .local_addr()
        .map_err(|e| ClientError::io(format!("connection to {addr}"), e))?;
    Ok((peer, local))
}

/// The error for a non-2xx answer: the status line, the `Unsupported` header if any, and a
/// hint for the common codes.
pub fn status_error(method: &str, uri: &str, resp: &Response) -> ClientError {
    let mut detail = String::new();
    let unsupported: Vec<&str> = resp.headers.get_all("Unsupported").collect();
    if !unsupported.is_empty() {
        detail.push_str(&format!("; Unsupported: {}", unsupported.join(", ")));
    }
    let hint = match resp.status {
        404 => "; check the path of the URL",
        454 => "; the server has forgotten the session (timed out?)",
        455 => "; the server does not accept this request in the session's state",
        461 => "",
        551 => "; the server does not support a feature tag of the Require header",
        _ => "",
    };
    detail.push_str(hint);
    ClientError::Status {
        method: method.to_owned(),
        uri: uri.to_owned(),
        status: resp.status,
        reason: resp.reason.clone(),
        detail,
    }
}

/// Prints a message for [`RtspClient::set_trace`], credentials redacted.
fn trace_message(dir: &str, msg: &[u8]) {
    let text = String::from_utf8_lossy(msg);
    for line in text.lines() {
        let shown = match line.split_once(':') {
            Some((name, _)) if name.trim().eq_ignore_ascii_case("Authorization") => {
                format!("{name}: <redacted>")
            }
            _ => line.to_owned(),
        };
        eprintln!("{dir} {shown}");
    }
}

/// Binds an RTP socket on an even port and the RTCP socket on the next one (RFC 3550
/// §11), on `ip` (use the control connection's local address so that the server sees the
/// same interface).
pub async fn bind_rtp_pair(ip: IpAddr) -> Result<(UdpSocket, UdpSocket), ClientError> {
    let mut last_err = None;
    for _ in 0..64 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| ClientError::io(format!("binding a UDP socket on {ip}"), e))?;
        let port = rtp
            .local_addr()
            .map_err(|e| ClientError::io("reading a UDP socket's port", e))?
            .port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
            Ok(rtcp) => return Ok((rtp, rtcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(ClientError::io(
        format!("binding two consecutive UDP ports (even, odd) on {ip} after 64 tries"),
        last_err.unwrap_or_else(|| std::io::Error::other("only odd ports were handed out")),
    ))
}
