//! One RTSP connection (RFC 2326): decode requests with the sans-IO decoder, answer each,
//! route interleaved RTCP from the client. The same loop serves a plain TCP connection and
//! the POST half of an HTTP tunnel (whose bytes are base64-decoded first and whose answers
//! go to the GET half).
//!
//! Status codes: 400 malformed (CSeq echoed when readable; the connection survives unless
//! the decoder says it cannot resynchronise), 404 unknown camera or track, 405 for
//! methods of a recorder (ANNOUNCE/RECORD), 454 unknown session, 455 wrong state, 461 no
//! acceptable transport, 501 unknown method, 551 unsupported `Require` tag.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::rtsp::headers::{
    format_rtp_info, parse_transports, LowerTransport, Range, RtpInfo, SessionHeader, Transport,
};
use ipcamd_proto::rtsp::message::{Decoder, Frame, Method, Request, Response};
use ipcamd_proto::sdp::{Direction, SdpFormat, SdpMedia, SdpSession};
use ipcamd_proto::tunnel::Base64Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::backchannel::{self, Talker, BACKCHANNEL_TAG};
use crate::delivery::{new_writer, Writer};
use crate::replay::{self, ReplayCtl, ReplayMedia, REPLAY_PREFIX, REPLAY_TAG};
use crate::session::{BackchannelTrack, Session, SessionMedia, SetupTrack, TrackTransport};
use crate::state::{lock, Camera, ServerState};

const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

pub async fn accept_loop(state: Arc<ServerState>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match crate::limits::admit(&state, peer) {
                Ok(guard) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        serve_tcp(state, stream, peer).await;
                        drop(guard);
                    });
                }
                Err(reason) => crate::limits::refuse(stream, peer, false, reason),
            },
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "RTSP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_tcp(state: Arc<ServerState>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    state.counters.connections.fetch_add(1, Ordering::Relaxed);
    let (rd, wr) = stream.into_split();
    let conn_id = state.next_conn_id();
    let mut conn = Conn::new(state.clone(), peer, local, new_writer(wr), conn_id);
    tracing::debug!(%peer, conn_id, "RTSP connection");
    // In its own task: a panic (a bug) closes this connection only.
    crate::limits::run_isolated(&state.limit_counters, peer, "RTSP connection", async move {
        conn.run(rd, None).await
    })
    .await;
    state.sessions.teardown_connection(conn_id);
    tracing::debug!(%peer, conn_id, "RTSP connection closed");
}

/// The request side of one RTSP connection.
pub struct Conn {
    state: Arc<ServerState>,
    peer: SocketAddr,
    local: SocketAddr,
    /// Where answers and interleaved media go.
    writer: Writer,
    /// Id of the connection that owns `writer`.
    writer_conn: u64,
    /// Sessions used on this connection (for routing interleaved RTCP).
    sessions: Vec<String>,
    /// Started once the current response is on the wire: a PLAY's delivery, so that no
    /// media reaches the client before the PLAY response.
    /// (In a mutex only to keep `Conn` `Sync`.)
    after_response: std::sync::Mutex<Option<replay::Starter>>,
    /// Whether the connection runs over TLS (RTSPS, or a tunnel over HTTPS).
    tls: bool,
    /// The user the current request authenticated as (owner of the sessions it creates).
    user: Option<String>,
    /// Interleaved frames received on channels not set up.
    unrouted: u64,
}

impl Conn {
    pub fn new(
        state: Arc<ServerState>,
        peer: SocketAddr,
        local: SocketAddr,
        writer: Writer,
        writer_conn: u64,
    ) -> Conn {
        Conn {
            state,
            peer,
            local,
            writer,
            writer_conn,
            sessions: Vec::new(),
            after_response: std::sync::Mutex::new(None),
            tls: false,
            user: None,
            unrouted: 0,
        }
    }

    /// Marks the connection as running over TLS (Basic authentication may be offered).
    pub fn set_tls(&mut self, tls: bool) {
        self.tls = tls;
    }

    /// Checks the request's credentials against the role its operation needs (see
    /// [`crate::auth`]): OPTIONS needs none, SETUP of a backchannel track needs operator,
    /// everything else (live, replay) viewer.
    /// Returns the authenticated user name (`None`: anonymous, or OPTIONS).
    fn authorize(&self, req: &Request) -> Result<Option<String>, Response> {
        let needed = match &req.method {
            Method::Options => return Ok(None),
            Method::Setup
                if Target::parse(&self.state, &req.uri).is_ok_and(|t| {
                    t.track.is_some() && t.track == t.camera().and_then(Camera::backchannel_track)
                }) =>
            {
                crate::auth::Role::Operator
            }
            _ => crate::auth::Role::Viewer,
        };
        let auth = &self.state.options.auth;
        auth.check(
            req.headers.get("Authorization"),
            req.method.as_str(),
            &req.uri,
            needed,
            self.tls,
        )
        .map(|id| id.user)
        .map_err(|d| d.rtsp_response())
    }

    /// Serves requests read from `rd` until it closes or fails. With `base64`, the bytes are
    /// an HTTP-tunnel POST body.
    pub async fn run(&mut self, mut rd: impl AsyncRead + Unpin, mut base64: Option<Base64Stream>) {
        let limits = self.state.options.limits.clone();
        let mut decoder = Decoder::new(limits.decoder());
        // Small until the client sends much: idle connections cost little memory
        // (bench/RESULTS-hardening.md); a read that fills `raw` doubles it up to 16 KiB.
        let mut buf = BytesMut::new();
        let mut raw = vec![0u8; 1024];
        // When the first byte of the request not yet complete arrived (slowloris guard).
        let mut partial_since: Option<tokio::time::Instant> = None;
        loop {
            loop {
                let decoded = decoder.decode(&mut buf);
                if matches!(decoded, Ok(Some(_)) | Err(_)) {
                    partial_since = None;
                }
                match decoded {
                    Ok(Some(Frame::Request(req))) => {
                        let resp = self.handle(req).await;
                        let sent = self.send(resp).await;
                        let start = lock(&self.after_response).take();
                        if sent.is_err() {
                            return;
                        }
                        if let Some(start) = start {
                            start();
                        }
                    }
                    Ok(Some(Frame::Interleaved { channel, payload })) => {
                        if !self.on_interleaved(channel, payload) && !self.count_unrouted() {
                            return;
                        }
                    }
                    Ok(Some(Frame::Response(_))) => {} // we send no requests; ignore
                    Ok(None) => break,
                    Err(e) => {
                        self.state
                            .counters
                            .bad_requests
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(peer = %self.peer, status = e.status, error = %e.message, "bad request");
                        let mut resp = Response::with_reason(e.status, bad_reason(&e.message));
                        if let Some(c) = e.cseq {
                            resp = resp.header("CSeq", c.to_string());
                        }
                        if e.fatal {
                            resp = resp.header("Connection", "close");
                        }
                        let sent = self.send(resp).await;
                        if e.fatal || sent.is_err() {
                            return;
                        }
                    }
                }
            }
            let now = tokio::time::Instant::now();
            if buf.is_empty() {
                partial_since = None;
            } else {
                partial_since.get_or_insert(now);
            }
            let n = match self
                .read_within(&mut rd, &mut raw, partial_since, &limits)
                .await
            {
                Some(n) => n,
                None => return,
            };
            let Some(chunk) = raw.get(..n) else { return };
            let grow = n == raw.len() && raw.len() < 16 * 1024;
            match base64.as_mut() {
                Some(b64) => {
                    if let Err(e) = b64.feed(chunk, &mut buf) {
                        tracing::info!(peer = %self.peer, error = %e, "bad HTTP tunnel data; closing");
                        return;
                    }
                }
                None => buf.extend_from_slice(chunk),
            }
            if grow {
                raw.resize(raw.len() * 2, 0);
            }
        }
    }

    /// Reads more bytes, or `None` at close, error, or a deadline: a partial request must be
    /// complete within `request_timeout`; a connection without a session may idle only
    /// `idle_timeout`. Both are logged and counted.
    async fn read_within(
        &mut self,
        rd: &mut (impl AsyncRead + Unpin),
        raw: &mut [u8],
        partial_since: Option<tokio::time::Instant>,
        limits: &crate::limits::Limits,
    ) -> Option<usize> {
        let state = &self.state;
        self.sessions.retain(|id| state.sessions.get(id).is_some());
        let (deadline, partial) = match partial_since {
            Some(t) => (Some(t + limits.request_timeout), true),
            None if self.sessions.is_empty() => (
                Some(tokio::time::Instant::now() + limits.idle_timeout),
                false,
            ),
            None => (None, false),
        };
        let read = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rd.read(raw)).await {
                Ok(r) => r,
                Err(_) => {
                    let c = &self.state.limit_counters;
                    if partial {
                        c.request_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(peer = %self.peer, timeout_s = limits.request_timeout.as_secs(), "request not complete in time ([limits] request_timeout_s); closing");
                    } else {
                        c.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(peer = %self.peer, "idle connection without a session ([limits] idle_timeout_s); closing");
                    }
                    return None;
                }
            },
            None => rd.read(raw).await,
        };
        match read {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        }
    }

    /// Counts an interleaved frame on a channel not set up; `false` once there were more
    /// than `[limits] max_unrouted_interleaved` (the connection is then closed).
    fn count_unrouted(&mut self) -> bool {
        let c = &self.state.limit_counters;
        c.interleaved_unrouted.fetch_add(1, Ordering::Relaxed);
        self.unrouted += 1;
        if self.unrouted > self.state.options.limits.max_unrouted_interleaved {
            c.interleaved_closed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %self.peer, frames = self.unrouted, "too many interleaved frames on channels not set up ([limits] max_unrouted_interleaved); closing");
            return false;
        }
        true
    }

    async fn send(&self, resp: Response) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(512 + resp.body.len());
        let resp = resp.header("Server", self.state.options.server_name.clone());
        resp.write_to(&mut out);
        let mut w = self.writer.lock().await;
        w.write_all(&out).await?;
        w.flush().await
    }

    /// Routes an interleaved frame from the client; `false` if no channel of a session on
    /// this connection is `channel`.
    fn on_interleaved(&self, channel: u8, payload: Bytes) -> bool {
        for id in &self.sessions {
            let Some(s) = self.state.sessions.get(id) else {
                continue;
            };
            let st = lock(&s.state);
            if let Some(b) = &st.backchannel {
                if let TrackTransport::Interleaved {
                    rtp_channel,
                    rtcp_channel,
                    ..
                } = b.transport
                {
                    if channel == rtp_channel {
                        s.touch();
                        if crate::limits::admit_talk_packet(&self.state, &b.talker.rate) {
                            b.talker.push(payload);
                        }
                        return true;
                    }
                    if channel == rtcp_channel {
                        s.touch();
                        return true;
                    }
                }
            }
            let is_rtcp = st.tracks.values().any(|t| {
                matches!(t.transport, TrackTransport::Interleaved { rtcp_channel, .. } if rtcp_channel == channel)
            });
            drop(st);
            if is_rtcp {
                s.touch();
                crate::udp::handle_rtcp(&self.state, &payload, self.peer);
                return true;
            }
            // Our own RTP channels echoed back: not an error worth closing for.
            let is_ours = lock(&s.state).tracks.values().any(|t| {
                matches!(t.transport, TrackTransport::Interleaved { rtp_channel, .. } if rtp_channel == channel)
            });
            if is_ours {
                return true;
            }
        }
        tracing::debug!(peer = %self.peer, channel, len = payload.len(), "interleaved data on a channel not set up; dropped");
        false
    }

    /// Answers one request. Never panics; every path gives a status.
    pub async fn handle(&mut self, req: Request) -> Response {
        self.state.counters.requests.fetch_add(1, Ordering::Relaxed);
        let Some(cseq) = req.cseq() else {
            return Response::with_reason(400, "Bad Request (missing or malformed CSeq header)");
        };
        let resp = self.dispatch(&req).await;
        let uri = crate::auth::redact_userinfo(&req.uri);
        tracing::debug!(peer = %self.peer, method = req.method.as_str(), uri = %uri, cseq, status = resp.status, "request");
        resp.header("CSeq", cseq.to_string())
    }

    async fn dispatch(&mut self, req: &Request) -> Response {
        let user = match self.authorize(req) {
            Ok(u) => u,
            Err(resp) => return resp,
        };
        self.user = user.clone();
        // Feature tags (RFC 2326 §12.32): the backchannel tag on a camera that has an
        // audio output; nothing else.
        let unsupported: Vec<String> = req
            .require_tags()
            .into_iter()
            .filter(|tag| !self.supports_tag(tag, &req.uri))
            .collect();
        if !unsupported.is_empty() {
            return Response::new(551).header("Unsupported", unsupported.join(", "));
        }
        // Any request naming a session keeps it alive, and must name a live one.
        let session =
            match req.session_id() {
                // A session belongs to the user who created it: another user (who learnt its
                // id) gets the same answer as for an unknown id. OPTIONS names no user.
                Some(id) => match self.state.sessions.get(id).filter(|s| {
                    req.method == Method::Options || s.owner.is_none() || s.owner == user
                }) {
                    Some(s) => {
                        s.touch();
                        Some(s)
                    }
                    None => {
                        return Response::with_reason(
                            454,
                            "Session Not Found (unknown or expired session id)",
                        )
                    }
                },
                None => None,
            };
        match &req.method {
            Method::Options => Response::new(200).header("Public", PUBLIC),
            Method::Describe => self.describe(req),
            Method::Setup => self.setup(req, session),
            Method::Play => match session {
                Some(s) if s.live().is_none() => {
                    let (r, start) =
                        replay::play(&self.state, &s, req, req.cseq().unwrap_or(0)).await;
                    *lock(&self.after_response) = start;
                    with_session(r, &s, &self.state)
                }
                _ => self.play(req, session),
            },
            Method::Pause => match session {
                Some(s) => {
                    if s.live().is_some() {
                        s.stop_gracefully().await;
                    } else {
                        replay::stop(&s).await;
                    }
                    with_session(Response::new(200), &s, &self.state)
                }
                None => missing_session(),
            },
            Method::Teardown => match session {
                Some(s) => {
                    self.state.sessions.teardown(&s.id);
                    self.sessions.retain(|id| id != &s.id);
                    Response::new(200)
                }
                None => missing_session(),
            },
            Method::GetParameter => {
                let r = Response::new(200);
                match session {
                    Some(s) => with_session(r, &s, &self.state),
                    None => r,
                }
            }
            Method::SetParameter => {
                if !req.body.is_empty() {
                    return Response::new(451);
                }
                let r = Response::new(200);
                match session {
                    Some(s) => with_session(r, &s, &self.state),
                    None => r,
                }
            }
            Method::Announce | Method::Record | Method::Redirect => {
                Response::new(405).header("Allow", PUBLIC)
            }
            Method::Other(_) => Response::new(501).header("Public", PUBLIC),
        }
    }

    fn supports_tag(&self, tag: &str, uri: &str) -> bool {
        let Ok(t) = Target::parse(&self.state, uri) else {
            return false;
        };
        match &t.media {
            TargetMedia::Live(c) => tag == BACKCHANNEL_TAG && c.backchannel.is_some(),
            TargetMedia::Replay(_) => tag == REPLAY_TAG,
        }
    }

    fn describe(&self, req: &Request) -> Response {
        let target = match Target::parse(&self.state, &req.uri) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let cam = match &target.media {
            TargetMedia::Live(c) => c,
            TargetMedia::Replay(m) => {
                return replay::describe(
                    &self.state,
                    m,
                    &target.base_url,
                    self.local.ip().to_string(),
                )
            }
        };
        if let Some(r) = offline(cam) {
            return r;
        }
        // With the backchannel tag (already checked as supported), every server->client
        // section is marked recvonly and one sendonly section is added.
        let talk = req.require_tags().iter().any(|t| t == BACKCHANNEL_TAG);
        let mut media: Vec<SdpMedia> = cam
            .stream
            .tracks()
            .iter()
            .enumerate()
            .map(|(i, t)| SdpMedia {
                kind: t.kind(),
                formats: vec![SdpFormat::for_track(t)],
                control: format!("trackID={i}"),
                direction: talk.then_some(Direction::RecvOnly),
                attributes: Vec::new(),
            })
            .collect();
        if let (true, Some(out), Some(i)) = (talk, &cam.backchannel, cam.backchannel_track()) {
            media.push(backchannel::sdp_section(&out.cfg, format!("trackID={i}")));
        }
        let sdp = SdpSession {
            origin_id: (now_micros() / 1_000_000) as u64,
            origin_address: self.local.ip().to_string(),
            name: format!("ipcamd {}", cam.name),
            range: Some("npt=now-".to_owned()),
            attributes: Vec::new(),
            media,
        };
        Response::new(200)
            .header("Content-Base", target.base_url.clone())
            .with_body("application/sdp", sdp.to_sdp_string())
    }

    fn setup(&mut self, req: &Request, session: Option<Arc<Session>>) -> Response {
        let target = match Target::parse(&self.state, &req.uri) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let camera = target.camera().cloned();
        let backchannel_track = camera.as_ref().and_then(Camera::backchannel_track);
        let track =
            match target.track {
                Some(t) => t,
                None if target.track_count() == 1 => 0,
                None => return Response::with_reason(
                    459,
                    "Aggregate Operation Not Allowed (SETUP needs a track URL, e.g. .../trackID=0)",
                ),
            };
        let Some(value) = req.headers.get("Transport") else {
            return Response::with_reason(461, "Unsupported Transport (missing Transport header)");
        };
        let offers = match parse_transports(value) {
            Ok(t) => t,
            Err(e) => return Response::with_reason(461, format!("Unsupported Transport ({e})")),
        };
        if let Some(s) = &session {
            if s.path() != target.path() {
                return Response::with_reason(
                    459,
                    "Aggregate Operation Not Allowed (session belongs to another camera)",
                );
            }
            if lock(&s.state).playing() {
                return Response::with_reason(
                    455,
                    "Method Not Valid in This State (stop playing before SETUP)",
                );
            }
        }
        let used = session
            .as_ref()
            .map(|s| {
                let st = lock(&s.state);
                // A repeated SETUP of the same track may keep its channels.
                let mut used = st.used_channels();
                let previous = if Some(track) == backchannel_track {
                    st.backchannel.as_ref().map(|b| &b.transport)
                } else {
                    st.tracks.get(&track).map(|t| &t.transport)
                };
                if let Some(TrackTransport::Interleaved {
                    rtp_channel,
                    rtcp_channel,
                    ..
                }) = previous
                {
                    used.retain(|c| c != rtp_channel && c != rtcp_channel);
                }
                used
            })
            .unwrap_or_default();
        let is_backchannel = Some(track) == backchannel_track;
        let Some((transport, answer)) = offers.iter().find_map(|t| self.accept_transport(t, &used))
        else {
            return Response::with_reason(
                461,
                "Unsupported Transport (offered: RTP/AVP unicast UDP with client_port, RTP/AVP/TCP interleaved)",
            );
        };
        let session = match session {
            Some(s) => s,
            None => {
                let max = self.state.options.limits.max_sessions_per_connection;
                let state = &self.state;
                self.sessions.retain(|id| state.sessions.get(id).is_some());
                if self.sessions.len() >= max {
                    state
                        .limit_counters
                        .sessions_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(peer = %self.peer, max, "session refused ([limits] max_sessions_per_connection)");
                    return Response::with_reason(
                        503,
                        format!("Service Unavailable (at most {max} sessions per connection; TEARDOWN one first)"),
                    );
                }
                self.state
                    .counters
                    .sessions_created
                    .fetch_add(1, Ordering::Relaxed);
                let s = self.state.sessions.create(
                    target.session_media(),
                    self.peer,
                    self.user.clone(),
                );
                if let TargetMedia::Replay(m) = &target.media {
                    lock(&s.state).replay =
                        Some(Arc::new(std::sync::Mutex::new(ReplayCtl::new(m.clone()))));
                }
                s
            }
        };
        if !self.sessions.contains(&session.id) {
            self.sessions.push(session.id.clone());
        }
        if is_backchannel {
            if let Some(out) = camera.as_ref().and_then(|c| c.backchannel.as_ref()) {
                if let Err(owner) = out.acquire(&session.id) {
                    tracing::info!(camera = %target.path(), session = %session.id, owner = %owner, "backchannel refused: output in use");
                    let empty = {
                        let st = lock(&session.state);
                        st.tracks.is_empty() && st.backchannel.is_none()
                    };
                    if empty {
                        self.state.sessions.teardown(&session.id);
                        self.sessions.retain(|id| id != &session.id);
                    }
                    return Response::with_reason(
                        453,
                        format!(
                            "Not Enough Bandwidth (the audio output of {} is in use by another talk session)",
                            target.path()
                        ),
                    );
                }
            }
        }
        if let TrackTransport::Udp { rtp, rtcp } = &transport {
            self.state.sessions.add_udp_peer(*rtp, &session.id);
            self.state.sessions.add_udp_peer(*rtcp, &session.id);
        }
        let mut answer = answer;
        {
            let mut st = lock(&session.state);
            if is_backchannel {
                // A repeated SETUP keeps the running talker (idempotent).
                match st.backchannel.as_mut() {
                    Some(b) => {
                        b.url = req.uri.clone();
                        b.transport = transport;
                    }
                    None => {
                        let out = camera.as_ref().and_then(|c| c.backchannel.clone());
                        if let Some(out) = out {
                            st.backchannel = Some(BackchannelTrack {
                                url: req.uri.clone(),
                                transport,
                                talker: Talker::start(out, &session.id),
                            });
                        }
                    }
                }
                answer.ssrc = None;
            } else {
                st.tracks.insert(
                    track,
                    SetupTrack {
                        url: req.uri.clone(),
                        transport,
                    },
                );
                answer.ssrc = match &target.media {
                    TargetMedia::Live(c) => c.stream.ssrc(track),
                    TargetMedia::Replay(_) => st.replay.as_ref().and_then(|r| lock(r).ssrc(track)),
                };
            }
        }
        with_session(Response::new(200), &session, &self.state)
            .header("Transport", answer.to_string())
    }

    /// Our transport for one of the client's offers, and the Transport answer, if acceptable.
    fn accept_transport(
        &self,
        offer: &Transport,
        used: &[u8],
    ) -> Option<(TrackTransport, Transport)> {
        if offer.multicast || !offer.profile.eq_ignore_ascii_case("RTP/AVP") {
            return None;
        }
        let mut answer = offer.clone();
        answer.unicast = true;
        answer.multicast = false;
        answer.other.clear();
        answer.mode = None;
        match offer.lower {
            LowerTransport::Tcp => {
                let (rtp, rtcp) = match offer.interleaved {
                    Some((a, b)) if !used.contains(&a) && !used.contains(&b) => (a, b),
                    Some(_) => return None,
                    None => {
                        let a = (0..=254u8)
                            .step_by(2)
                            .find(|c| !used.contains(c) && !used.contains(&(c + 1)))?;
                        (a, a + 1)
                    }
                };
                answer.interleaved = Some((rtp, rtcp));
                answer.client_port = None;
                answer.server_port = None;
                answer.destination = None;
                Some((
                    TrackTransport::Interleaved {
                        writer: self.writer.clone(),
                        conn_id: self.writer_conn,
                        rtp_channel: rtp,
                        rtcp_channel: rtcp,
                    },
                    answer,
                ))
            }
            LowerTransport::Udp => {
                let (crtp, crtcp) = offer.client_port?;
                // Media goes to the address the request came from: a `destination`
                // elsewhere would let anyone aim our streams at a third party.
                let ip = self.peer.ip();
                answer.server_port = Some(self.state.udp.ports());
                answer.destination = None;
                answer.interleaved = None;
                Some((
                    TrackTransport::Udp {
                        rtp: SocketAddr::new(ip, crtp),
                        rtcp: SocketAddr::new(ip, crtcp),
                    },
                    answer,
                ))
            }
        }
    }

    fn play(&mut self, _req: &Request, session: Option<Arc<Session>>) -> Response {
        let Some(session) = session else {
            return missing_session();
        };
        if let Some(r) = session.live().and_then(offline) {
            return r;
        }
        let mut st = lock(&session.state);
        if st.tracks.is_empty() && st.backchannel.is_none() {
            return Response::with_reason(455, "Method Not Valid in This State (no track set up)");
        }
        if let Some(b) = &st.backchannel {
            b.talker.set_playing(true);
        }
        let Some(camera) = session.live() else {
            return Response::with_reason(
                455,
                "Method Not Valid in This State (not a live session)",
            );
        };
        let (reader, joins) = camera.stream.subscribe();
        let infos: Vec<RtpInfo> = st
            .tracks
            .iter()
            .map(|(&i, t)| {
                let join = joins.get(i).copied().flatten();
                RtpInfo {
                    url: t.url.clone(),
                    seq: join.map(|j| j.seq),
                    rtptime: join.map(|j| j.rtp_timestamp),
                }
            })
            .collect();
        // A PLAY while playing only answers again (the delivery in progress goes on). The
        // delivery starts once the response is sent.
        if !st.playing && !st.tracks.is_empty() {
            let state = self.state.clone();
            let session = session.clone();
            st.stop = Arc::new(crate::session::StopSignal::default());
            let stop = st.stop.clone();
            *lock(&self.after_response) = Some(Box::new(move || {
                let task =
                    tokio::spawn(crate::delivery::play(state, session.clone(), reader, stop));
                let mut st = lock(&session.state);
                if st.playing {
                    st.play_task = Some(task);
                } else {
                    task.abort(); // torn down in between
                }
            }));
        }
        st.playing = true;
        drop(st);
        let range = Range::Clock {
            start: Some(now_micros()),
            end: None,
        };
        with_session(Response::new(200), &session, &self.state)
            .header("Range", range.to_string())
            .header("RTP-Info", format_rtp_info(&infos))
    }
}

/// `503 Service Unavailable (camera X is offline: why)` while its source is being retried.
fn offline(cam: &Camera) -> Option<Response> {
    let clean = printable(&cam.stream.offline_reason()?);
    Some(Response::with_reason(
        503,
        format!(
            "Service Unavailable (camera {} is offline: {clean})",
            cam.name
        ),
    ))
}

fn missing_session() -> Response {
    Response::with_reason(
        454,
        "Session Not Found (this method needs a Session header)",
    )
}

fn with_session(r: Response, s: &Session, state: &ServerState) -> Response {
    r.header(
        "Session",
        SessionHeader {
            id: s.id.clone(),
            timeout: Some(state.options.session_timeout.as_secs() as u32),
        }
        .to_string(),
    )
}

/// "Bad Request (why)" with the reason kept to one printable line.
fn bad_reason(why: &str) -> String {
    format!("Bad Request ({})", printable(why))
}

/// `why` as one line of printable ASCII (at most 200 characters) for a reason phrase.
fn printable(why: &str) -> String {
    why.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// What a request URL names: `rtsp://host[:port]/<camera>[/trackID=<n>]` (live) or
/// `rtsp://host[:port]/replay/<recording>[/trackID=<n>]` (ONVIF replay).
struct Target {
    media: TargetMedia,
    track: Option<usize>,
    /// `rtsp://host[:port]/<path>/`: the Content-Base.
    base_url: String,
}

enum TargetMedia {
    Live(Camera),
    Replay(Arc<ReplayMedia>),
}

impl Target {
    fn parse(state: &ServerState, uri: &str) -> Result<Target, Response> {
        let not_found = || Response::with_reason(404, "Not Found (no such camera or track)");
        let (prefix, path) = split_uri(uri).ok_or_else(|| {
            Response::with_reason(400, "Bad Request (request URL is not rtsp://host/path)")
        })?;
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let first = segments.next().ok_or_else(not_found)?;
        let (media, name) = if first == REPLAY_PREFIX {
            let name = segments.next().ok_or_else(|| {
                Response::with_reason(404, "Not Found (replay URLs are /replay/<recording>)")
            })?;
            (
                TargetMedia::Replay(replay::media(state, name)?),
                format!("{first}/{name}"),
            )
        } else {
            let camera = state.cameras.get(first).ok_or_else(not_found)?.clone();
            (TargetMedia::Live(camera), first.to_owned())
        };
        let mut target = Target {
            media,
            track: None,
            base_url: format!("{prefix}/{name}/"),
        };
        if let Some(seg) = segments.next() {
            let n = seg
                .strip_prefix("trackID=")
                .or_else(|| seg.strip_prefix("stream="))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(not_found)?;
            let backchannel = target.camera().and_then(Camera::backchannel_track);
            if n >= target.track_count() && Some(n) != backchannel {
                return Err(not_found());
            }
            target.track = Some(n);
        }
        if segments.next().is_some() {
            return Err(not_found());
        }
        Ok(target)
    }

    fn camera(&self) -> Option<&Camera> {
        match &self.media {
            TargetMedia::Live(c) => Some(c),
            TargetMedia::Replay(_) => None,
        }
    }

    /// Server -> client tracks.
    fn track_count(&self) -> usize {
        match &self.media {
            TargetMedia::Live(c) => c.stream.tracks().len(),
            TargetMedia::Replay(m) => m.tracks.len(),
        }
    }

    /// As [`Session::path`].
    fn path(&self) -> String {
        match &self.media {
            TargetMedia::Live(c) => c.name.clone(),
            TargetMedia::Replay(m) => format!("{REPLAY_PREFIX}/{}", m.name),
        }
    }

    fn session_media(&self) -> SessionMedia {
        match &self.media {
            TargetMedia::Live(c) => SessionMedia::Live(c.clone()),
            TargetMedia::Replay(m) => SessionMedia::Replay(m.clone()),
        }
    }
}

/// Splits `rtsp://host:port/a/b?q` into (`rtsp://host:port`, `/a/b`). Accepts a bare path.
fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    if uri.starts_with('/') {
        return Some(("", uri));
    }
    let scheme_end = uri.find("://")?;
    let after = scheme_end + 3;
    let rest = uri.get(after..)?;
    match rest.find('/') {
        Some(i) => Some((uri.get(..after + i)?, rest.get(i..)?)),
        None => Some((uri, "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_split() {
        assert_eq!(
            split_uri("rtsp://127.0.0.1:8554/cam1/trackID=0"),
            Some(("rtsp://127.0.0.1:8554", "/cam1/trackID=0"))
        );
        assert_eq!(split_uri("rtsp://h/cam1/"), Some(("rtsp://h", "/cam1/")));
        assert_eq!(split_uri("rtsp://h"), Some(("rtsp://h", "/")));
        assert_eq!(split_uri("/cam1?x=1"), Some(("", "/cam1")));
        assert_eq!(split_uri("*"), None);
    }
}
