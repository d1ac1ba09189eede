//! One RTSP connection: a thin loop around the session core. Decode (the sans-IO
//! [`Decoder`]), hand each request to the core with "now" and a view of what exists, get
//! what it asks for (a live subscription, a replay opened in the store, the camera's audio
//! output), write the response, carry out the actions. The same loop serves a plain TCP
//! connection, RTSPS, and the POST half of an HTTP tunnel (whose bytes are base64-decoded
//! first and whose answers go to the GET half).
//!
//! Connection-level rules live here: a malformed request gets 400 (CSeq echoed when
//! readable) and the connection survives unless the decoder cannot resynchronise; a
//! partial request must complete within `request_timeout`; a connection without a session
//! may idle `idle_timeout`; too many interleaved frames on channels not set up close it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::rtsp::message::{Decoder, Frame, Request, Response};
use ipcamd_proto::rtsp::server::{
    printable, Answer, ConnId, Context, LiveJoin, Step, TalkRefusal, Target,
};
use ipcamd_proto::tunnel::Base64Stream;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::catalogue::{lookup, RequestCatalogue};
use super::hub::{Hub, Prepared};
use super::Rtsp;
use crate::deliver::replay;
use crate::deliver::wire::Writer;
use crate::net::shutdown::Shutdown;

/// The request side of one RTSP connection.
pub struct Conn {
    rtsp: Arc<Rtsp>,
    peer: SocketAddr,
    local: SocketAddr,
    /// Where answers and interleaved media go.
    writer: Writer,
    /// The connection that owns `writer` (for a tunnel: its GET half).
    conn: ConnId,
    /// Whether the connection runs over TLS (RTSPS, or a tunnel over HTTPS).
    tls: bool,
    /// Interleaved frames received on channels not set up.
    unrouted: u64,
    /// Whether sessions are attached to this connection (as of its last request): a
    /// connection without any may idle only `idle_timeout`.
    attached: bool,
}

impl Conn {
    pub fn new(
        rtsp: Arc<Rtsp>,
        peer: SocketAddr,
        local: SocketAddr,
        writer: Writer,
        conn: ConnId,
        tls: bool,
    ) -> Conn {
        Conn {
            rtsp,
            peer,
            local,
            writer,
            conn,
            tls,
            unrouted: 0,
            attached: false,
        }
    }

    fn hub(&self) -> &Hub {
        &self.rtsp.hub
    }

    /// Serves requests read from `rd` until it closes, fails, or the server shuts down.
    /// With `base64`, the bytes are an HTTP-tunnel POST body.
    ///
    /// Its future lives as long as the connection (its size is every connection's memory,
    /// bench/RESULTS-memory.md): an `async` block rather than an `async fn` (whose
    /// arguments rustc keeps twice in the state), rare and large states boxed.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub fn run<'a>(
        &'a mut self,
        mut rd: impl AsyncRead + Unpin + 'a,
        mut base64: Option<Base64Stream>,
        mut shutdown: Shutdown,
    ) -> impl std::future::Future<Output = ()> + 'a {
        async move {
            let mut decoder = Decoder::new(self.hub().limits.decoder());
            // Bytes received and not yet decoded. Nothing is held while the connection waits
            // for data (reads go through a stack buffer, an empty `buf` is let go): a reader
            // that only receives media costs no read buffer (bench/RESULTS-memory.md).
            let mut buf = BytesMut::new();
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
                            // Boxed: answering a request is the largest state of this
                            // loop, and it would otherwise size the future (and the memory) of
                            // every connection for as long as it lives.
                            if !Box::pin(self.serve_request(req)).await {
                                return;
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
                            self.hub()
                                .counters
                                .bad_requests
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::info!(peer = %self.peer, status = e.status, error = %e.message, "bad request");
                            let mut resp = Response::with_reason(
                                e.status,
                                format!("Bad Request ({})", printable(&e.message)),
                            );
                            if let Some(c) = e.cseq {
                                resp = resp.header("CSeq", c.to_string());
                            }
                            if e.fatal {
                                resp = resp.header("Connection", "close");
                            }
                            let sent = Box::pin(self.send(resp)).await;
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
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
                let take = |chunk: &[u8]| match base64.as_mut() {
                    Some(b64) => b64.feed(chunk, &mut buf),
                    None => {
                        buf.extend_from_slice(chunk);
                        Ok(())
                    }
                };
                let fed = tokio::select! {
                    r = self.read_within(read_with(&mut rd, take), partial_since) => r,
                    _ = shutdown.wait() => None,
                };
                match fed {
                    None => return,
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        tracing::info!(peer = %self.peer, error = %e, "bad HTTP tunnel data; closing");
                        return;
                    }
                }
            }
        }
    }

    /// Answers one request and carries out what the answer says. `false` when the
    /// connection cannot be written to any more.
    async fn serve_request(&mut self, req: Request) -> bool {
        let mut prepared = Prepared::default();
        let answer = self.answer(&req, &mut prepared).await;
        self.hub()
            .counters
            .requests
            .count("rtsp", req.method.as_str(), answer.response.status);
        let uri = crate::auth::redact_userinfo(&req.uri);
        tracing::debug!(peer = %self.peer, method = req.method.as_str(), uri = %uri, cseq = req.cseq(), status = answer.response.status, "request");
        let Answer {
            response,
            before,
            after,
            events,
        } = answer;
        for e in events {
            self.count(e);
        }
        self.hub().carry_out(before, &mut prepared).await;
        if let Err(e) = self.send(response).await {
            tracing::debug!(peer = %self.peer, error = %e, "answer not written; closing");
            return false;
        }
        // Media may flow only once the response is on the wire.
        self.hub().carry_out(after, &mut prepared).await;
        let attached = self.hub().core().has_sessions_on(self.conn);
        self.attached = attached;
        true
    }

    fn count(&self, e: ipcamd_proto::rtsp::server::Event) {
        use ipcamd_proto::rtsp::server::Event;
        let hub = self.hub();
        match e {
            Event::SessionCreated { session } => {
                hub.counters
                    .sessions_created
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %self.peer, session = %session, "session created");
            }
            Event::SessionLimit { max } => {
                hub.limit_counters
                    .sessions_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %self.peer, max, "session refused ([limits] max_sessions_per_connection)");
            }
            Event::TalkRefused { camera, refusal } => match refusal {
                TalkRefusal::Busy { owner } => {
                    tracing::info!(camera = %camera, owner = %owner, "backchannel refused: output in use")
                }
                TalkRefusal::Unavailable { reason } => {
                    tracing::warn!(camera = %camera, reason = %reason, "backchannel refused")
                }
            },
            Event::PublishRefused { camera } => {
                tracing::info!(peer = %self.peer, camera = %camera, "publisher refused: the camera has one (publish_override = false)");
            }
            Event::PublisherReplaced {
                camera,
                old,
                silent,
            } => {
                let why = if silent {
                    "the old one sent nothing for 5 s"
                } else {
                    "publish_override = true"
                };
                tracing::info!(peer = %self.peer, camera = %camera, old = %old, "publisher replaced by a new one ({why})");
            }
        }
    }

    /// The core's answer to `req`, after getting what it asked for.
    async fn answer(&self, req: &Request, prepared: &mut Prepared) -> Answer {
        let hub = self.hub();
        // A request on a replay URL that needs the recording has it looked up first (a
        // store query, off the runtime): once per request.
        let needs_recording = matches!(
            req.method,
            ipcamd_proto::rtsp::message::Method::Describe
                | ipcamd_proto::rtsp::message::Method::Setup
                | ipcamd_proto::rtsp::message::Method::Play
        );
        let recording = match Target::recording_name(&req.uri).filter(|_| needs_recording) {
            Some(name) => {
                let r = lookup(hub.store.as_ref(), &name).await;
                Some((name, r))
            }
            None => None,
        };
        if req.method == ipcamd_proto::rtsp::message::Method::Describe {
            if let Ok(Target {
                kind: ipcamd_proto::rtsp::server::PathKind::Live(name),
                ..
            }) = Target::parse(&req.uri)
            {
                if let Some(c) = hub.cameras.get(&name) {
                    c.wake().await;
                }
            }
        }
        let cat = RequestCatalogue {
            cameras: &hub.cameras,
            recording,
        };
        let ctx = Context {
            conn: self.conn,
            peer: self.peer,
            local_ip: self.local.ip(),
            now: Instant::now(),
            now_utc: now_micros(),
        };
        let auth = &self.rtsp.auth;
        let (tls, method) = (self.tls, req.method.as_str());
        let step = {
            let mut core = hub.core();
            // An exec source's own credentials count for publishing to its camera only.
            let publishing = core.publishing_to(req, &cat);
            core.handle(req, &ctx, &cat, |needed| match needed {
                None => Ok(None),
                Some(role) => auth
                    .check_for(
                        req.headers.get("Authorization"),
                        method,
                        &req.uri,
                        role,
                        tls,
                        publishing.as_deref(),
                    )
                    .map(|id| id.user)
                    .map_err(|d| d.rtsp_response()),
            })
        };
        match step {
            Step::Answer(a) => a,
            Step::LiveJoin(p) => {
                let joins = match hub.cameras.get(&p.camera) {
                    Some(c) => {
                        let (reader, joins) = c.stream.subscribe();
                        prepared.live = Some(reader);
                        let tracks = c.stream.tracks();
                        joins
                            .iter()
                            .zip(tracks.iter())
                            .map(|(j, t)| {
                                j.map(|j| LiveJoin {
                                    seq: j.seq,
                                    rtp_timestamp: j.rtp_timestamp,
                                    wallclock: j.wallclock,
                                    clock_rate: t.clock_rate(),
                                })
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                hub.core().live_joined(p, &joins, &ctx)
            }
            Step::ReplayOpen(p) => {
                let tracks = match cat.recording.as_ref().map(|(_, r)| r) {
                    Some(ipcamd_proto::rtsp::server::RecordingLookup::Found(r)) => r.tracks.clone(),
                    _ => Vec::new(),
                };
                let opened = match hub.store.as_ref() {
                    Some(store) => {
                        let state = hub.replay_state(&p.session, &tracks);
                        replay::open(store, &p.recording, &p.request, &state)
                            .await
                            .map(|(job, start)| {
                                prepared.replay = Some(job);
                                start
                            })
                    }
                    None => Err(Response::with_reason(
                        404,
                        "Not Found (this server has no store)",
                    )),
                };
                let session = p.session.clone();
                let a = hub.core().replay_opened(p, opened);
                hub.forget_if_gone(&session);
                a
            }
            Step::TalkAcquire(p) => {
                let out = hub
                    .cameras
                    .get(&p.camera)
                    .and_then(|c| c.backchannel.clone());
                let acquired = match out {
                    Some(out) => crate::talk::acquire_talk(&out, &p.session).await,
                    None => Err(TalkRefusal::Unavailable {
                        reason: "Service Unavailable (no audio output)".into(),
                    }),
                };
                hub.core().talk_acquired(p, acquired)
            }
        }
    }

    /// Reads more bytes, or `None` at close, error, or a deadline: a partial request must be
    /// complete within `request_timeout`; a connection without a session may idle only
    /// `idle_timeout`. Both are logged and counted.
    async fn read_within<T>(
        &self,
        read: impl std::future::Future<Output = std::io::Result<Option<T>>>,
        partial_since: Option<tokio::time::Instant>,
    ) -> Option<T> {
        let limits = &self.hub().limits;
        let (deadline, partial) = match partial_since {
            Some(t) => (Some(t + limits.request_timeout), true),
            None if !self.attached => (
                Some(tokio::time::Instant::now() + limits.idle_timeout),
                false,
            ),
            None => (None, false),
        };
        let read = match deadline {
            // Boxed: a timer is large, and connections with a session (most of them, and
            // all that receive media) wait without one.
            Some(d) => match Box::pin(tokio::time::timeout_at(d, read)).await {
                Ok(r) => r,
                Err(_) => {
                    let c = &self.hub().limit_counters;
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
            None => read.await,
        };
        match read {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                tracing::debug!(peer = %self.peer, "the client closed the connection");
                None
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "read failed; closing");
                None
            }
        }
    }

    /// Counts an interleaved frame on a channel not set up; `false` once there were more
    /// than `[limits] max_unrouted_interleaved` (the connection is then closed).
    fn count_unrouted(&mut self) -> bool {
        self.unrouted += 1;
        let hub = self.hub();
        let c = &hub.limit_counters;
        c.interleaved_unrouted.fetch_add(1, Ordering::Relaxed);
        if self.unrouted > hub.limits.max_unrouted_interleaved {
            c.interleaved_closed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %self.peer, frames = self.unrouted, "too many interleaved frames on channels not set up ([limits] max_unrouted_interleaved); closing");
            return false;
        }
        true
    }

    fn on_interleaved(&self, channel: u8, payload: Bytes) -> bool {
        let routed = self
            .hub()
            .inbound(self.conn, channel, payload.clone(), self.peer);
        if !routed {
            tracing::debug!(peer = %self.peer, channel, len = payload.len(), "interleaved data on a channel not set up; dropped");
        }
        routed
    }

    async fn send(&self, resp: Response) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(512 + resp.body.len());
        let resp = resp.header("Server", self.rtsp.server_name.clone());
        resp.write_to(&mut out);
        let mut w = self.writer.lock().await;
        w.write_all(&out).await?;
        w.flush().await
    }
}

/// Most bytes taken from the connection per read.
const READ_CHUNK: usize = 16 * 1024;

/// Waits for data on `rd`, reads it into a buffer on the stack and hands it to `take`;
/// `None` at the end of the stream. The buffer exists only while data is there, never
/// while waiting, so an idle connection holds none.
async fn read_with<T>(
    rd: &mut (impl AsyncRead + Unpin),
    mut take: impl FnMut(&[u8]) -> T,
) -> std::io::Result<Option<T>> {
    std::future::poll_fn(|cx| {
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut rb = tokio::io::ReadBuf::uninit(&mut stack);
        match std::pin::Pin::new(&mut *rd).poll_read(cx, &mut rb) {
            std::task::Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                std::task::Poll::Ready(Ok(None))
            }
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(Some(take(rb.filled())))),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}
