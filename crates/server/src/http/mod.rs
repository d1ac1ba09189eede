//! The HTTP port: one HTTP/1.1 layer for everything served there, with keep-alive.
//!
//! - [`tunnel`]: RTSP over HTTP (Apple's scheme, required by ONVIF as RTP/RTSP/HTTP/TCP):
//!   a GET and a POST paired by `x-sessioncookie` take over their connections.
//! - the ONVIF SOAP services and snapshots (`/onvif/...`, `/snapshot/...`, served by
//!   [`crate::onvif`]).
//! - [`console`]: the web console at `/` (live view, talk, timeline) and `/api/me`.
//! - [`live`]: `GET /live/NAME.mp4`, live H.264 as fragmented MP4 (the console's MSE view).
//! - [`api`]: the plain-text index (`/index.txt`) and `/api/...` (recordings, export, stats).
//! - [`metrics`]: `GET /metrics`, the counters in the Prometheus text format.
//! - [`playback`]: `GET /list` and `GET /get`, recordings as mediamtx's playback server
//!   serves them.
//! - [`whep`]: WebRTC live view and talk (`/whep/...`, served by [`crate::webrtc`]).
//!
//! This layer reads request heads (within `request_timeout`, at most
//! `max_request_head_bytes`), reads bodies by `Content-Length`, writes every response
//! head in one place ([`HttpResponse`]), streams bodies of known length, and keeps the
//! connection open between requests (HTTP/1.1 unless `Connection: close`; HTTP/1.0 closes).
//!
//! Hand-written rather than hyper: the tunnel's GET answer must be followed by raw bytes
//! for as long as the session lives (no chunked encoding, which hyper would apply to a
//! body of unknown length on HTTP/1.1 and which RTSP clients do not expect), and its POST
//! body is an endless base64 stream read by the RTSP connection loop.
//!
//! Authentication (see [`crate::auth`]): `GET`/`HEAD` of the index, `/api/...`,
//! `/metrics`, `/list` and `/get` need the viewer role, any other method the admin role
//! (WHEP: viewer, operator to talk);
//! `/metrics` also takes the `[metrics] token` as a bearer token. A tunnel GET or POST that carries
//! `Authorization` must carry valid credentials; one without is let through, because every
//! RTSP request inside the tunnel is checked like one on the RTSP port. ONVIF requests are
//! authenticated per request by [`crate::onvif`] (WS-Security or Digest; some operations
//! are open to anyone).

pub mod api;
pub mod console;
pub mod live;
pub mod message;
pub mod metrics;
pub mod playback;
pub mod tunnel;
pub mod whep;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ipcamd_proto::tunnel::{parse_http_head, HttpRequestHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::{Authorizer, Denied, Identity, Role};
use crate::net::accept::NetStream;
use crate::net::limits::{LimitCounters, Limits};
use crate::net::shutdown::Shutdown;
use crate::onvif::Onvif;
use crate::rtsp::Rtsp;
use crate::stats::Counters;
pub use message::{Body, HttpRequest, HttpResponse};

/// A keep-alive connection idle this long between requests is closed.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(30);

/// What the HTTP port's connections share.
pub struct Http {
    pub rtsp: Arc<Rtsp>,
    pub onvif: Arc<Onvif>,
    pub api: api::Api,
    pub auth: Arc<Authorizer>,
    pub limits: Limits,
    pub counters: Arc<Counters>,
    pub limit_counters: Arc<LimitCounters>,
    pub server_name: String,
    pub tunnels: tunnel::Tunnels,
}

/// Writes a response: status line, `Server`, the headers, `Content-Length`, `Connection`,
/// then the body (for HEAD, none). Returns whether the connection may be kept.
pub async fn write_response(
    stream: &mut NetStream,
    server_name: &str,
    resp: HttpResponse,
    keep_alive: bool,
    head_only: bool,
) -> bool {
    let live = matches!(resp.body, Body::Live { .. });
    let keep = keep_alive && !resp.close && !live;
    let len = match &resp.body {
        Body::Full(b) => Some(b.len() as u64),
        Body::Stream { len, .. } => Some(*len),
        Body::Live { .. } => None,
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: {server_name}\r\n",
        resp.status, resp.reason
    );
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(len) = len {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str(&format!(
        "Connection: {}\r\n\r\n",
        if keep { "keep-alive" } else { "close" }
    ));
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    if !head_only {
        match resp.body {
            Body::Full(b) => {
                if stream.write_all(&b).await.is_err() {
                    return false;
                }
            }
            Body::Stream {
                len,
                mut chunks,
                stall,
            } => {
                let mut sent = 0u64;
                while let Some(chunk) = chunks.recv().await {
                    match chunk {
                        Ok(c) => {
                            match tokio::time::timeout(stall, stream.write_all(&c)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(_)) => return false,
                                Err(_) => {
                                    tracing::info!(
                                        sent,
                                        len,
                                        "the client took nothing for {stall:?}; closing"
                                    );
                                    return false;
                                }
                            }
                            sent += c.len() as u64;
                        }
                        Err(e) => {
                            // The length is promised: the client must see the cut.
                            tracing::warn!(error = %e, sent, len, "response body failed; closing");
                            return false;
                        }
                    }
                }
                if sent != len {
                    tracing::warn!(sent, len, "response body shorter than announced; closing");
                    return false;
                }
            }
            Body::Live { mut chunks, stall } => {
                while let Some(c) = chunks.recv().await {
                    match tokio::time::timeout(stall, stream.write_all(&c)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return false,
                        Err(_) => {
                            tracing::info!("the live client took nothing for {stall:?}; closing");
                            return false;
                        }
                    }
                }
            }
        }
    }
    if stream.flush().await.is_err() {
        return false;
    }
    if !keep {
        let _ = stream.shutdown().await;
    }
    keep
}

/// Reads the next request head: the first within `request_timeout` of the connection's
/// start, later ones within the keep-alive idle time. `None`: closed, timed out, or
/// malformed (answered 400).
async fn read_head(
    http: &Http,
    stream: &mut NetStream,
    buf: &mut Vec<u8>,
    first: bool,
    shutdown: &mut Shutdown,
) -> Option<HttpRequestHead> {
    let limits = &http.limits;
    let mut chunk = [0u8; 4096];
    let wait = if first {
        limits.request_timeout
    } else {
        KEEP_ALIVE_IDLE
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match parse_http_head(buf, limits.max_request_head_bytes) {
            Ok(Some((head, used))) => {
                buf.drain(..used);
                return Some(head);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "malformed HTTP request");
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return None;
            }
        }
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.read(&mut chunk)) => r,
            _ = shutdown.wait() => return None,
        };
        let n = match read {
            Ok(r) => r.ok()?,
            Err(_) => {
                let c = &http.limit_counters;
                if buf.is_empty() {
                    c.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("HTTP request head not complete in time ([limits] request_timeout_s); closing");
                }
                return None;
            }
        };
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    }
}

/// Reads a body of `n` bytes (part of it may already be in `buf`).
async fn read_body(
    stream: &mut NetStream,
    buf: &mut Vec<u8>,
    n: usize,
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    while buf.len() < n {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => buf.extend_from_slice(chunk.get(..k)?),
            _ => return None,
        }
    }
    Some(buf.drain(..n).collect())
}

/// Serves one connection of the HTTP (or HTTPS) port; a panic (a bug) closes this
/// connection only.
pub async fn serve(
    http: Arc<Http>,
    stream: NetStream,
    peer: SocketAddr,
    local: SocketAddr,
    shutdown: Shutdown,
) {
    let counters = http.limit_counters.clone();
    let run = Box::pin(serve_loop(http, stream, peer, local, shutdown));
    crate::net::accept::run_isolated(&counters, peer, "HTTP connection", run).await;
}

async fn serve_loop(
    http: Arc<Http>,
    mut stream: NetStream,
    peer: SocketAddr,
    local: SocketAddr,
    mut shutdown: Shutdown,
) {
    http.counters.connections.fetch_add(1, Ordering::Relaxed);
    let tls = stream.is_tls();
    let mut buf = Vec::with_capacity(1024);
    let mut first = true;
    loop {
        let Some(head) = read_head(&http, &mut stream, &mut buf, first, &mut shutdown).await else {
            return;
        };
        first = false;
        if let Some(cookie) = head.session_cookie().map(str::to_owned) {
            if head.is_tunnel_get() || head.is_tunnel_post() {
                // A tunnel half that carries credentials must carry valid ones.
                if let Some(a) = head.headers.get("Authorization") {
                    if let Err(d) =
                        http.auth
                            .check(Some(a), &head.method, &head.path, Role::Viewer, tls)
                    {
                        tracing::debug!(%peer, method = %head.method, path = %head.path, "HTTP tunnel refused");
                        write_response(
                            &mut stream,
                            &http.server_name,
                            HttpResponse::denied(&d),
                            false,
                            false,
                        )
                        .await;
                        return;
                    }
                }
                let rest = std::mem::take(&mut buf);
                if head.is_tunnel_get() {
                    tunnel::get(http, stream, peer, cookie, shutdown).await;
                } else {
                    tunnel::post(http, stream, peer, local, cookie, rest, shutdown).await;
                }
                return;
            }
        }
        let keep_alive = head.version == "HTTP/1.1"
            && !head
                .headers
                .get("Connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let head_only = head.method == "HEAD";
        let onvif = crate::onvif::wants(&head);
        let max_body = if onvif {
            crate::onvif::MAX_BODY
        } else {
            http.limits.max_body_bytes
        };
        let len = head
            .headers
            .get("Content-Length")
            .map(|v| v.trim().parse::<usize>());
        let body = match len {
            None => Vec::new(),
            Some(Err(_)) => {
                let r = HttpResponse::text(400, "Bad Request", "malformed Content-Length\n");
                write_response(&mut stream, &http.server_name, r, false, false).await;
                return;
            }
            Some(Ok(n)) if n > max_body => {
                let mut r = HttpResponse::text(
                    413,
                    "Payload Too Large",
                    format!("request bodies are limited to {max_body} bytes here\n"),
                );
                r.close = true;
                write_response(&mut stream, &http.server_name, r, false, false).await;
                return;
            }
            Some(Ok(n)) => {
                match read_body(&mut stream, &mut buf, n, http.limits.request_timeout).await {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        let req = HttpRequest {
            head,
            body,
            local,
            peer,
            tls,
        };
        let resp = if onvif {
            http.onvif.handle(&req).await
        } else {
            match authorize(&http.auth, &http.api.metrics, &req) {
                Ok(who) => route(&http.api, &req, &who).await,
                Err(d) => {
                    tracing::debug!(%peer, method = %req.head.method, path = %req.head.path, "HTTP request refused");
                    HttpResponse::denied(&d)
                }
            }
        };
        http.counters
            .requests
            .count("http", &req.head.method, resp.status);
        if !write_response(&mut stream, &http.server_name, resp, keep_alive, head_only).await {
            return;
        }
    }
}

/// GET and HEAD need the viewer role, any other method the admin role, except WHEP
/// ([`whep::role_needed`]: viewer to watch, operator to talk). `GET /metrics`
/// is also let through with `Authorization: Bearer TOKEN` when `[metrics] token` is set.
fn authorize(
    auth: &Authorizer,
    metrics: &metrics::MetricsOptions,
    req: &HttpRequest,
) -> Result<Identity, Denied> {
    if req.path_and_query().0 == "/metrics" && metrics.token_matches(&req.head) {
        return Ok(Identity {
            user: None,
            role: Role::Viewer,
        });
    }
    let path = req.path_and_query().0;
    let needed = if path.starts_with("/whep/") {
        whep::role_needed(path)
    } else if matches!(req.head.method.as_str(), "GET" | "HEAD") {
        Role::Viewer
    } else {
        Role::Admin
    };
    auth.check(
        req.head.headers.get("Authorization"),
        &req.head.method,
        &req.head.path,
        needed,
        req.tls,
    )
}

/// The HTTP API's routes: `/metrics` and the playback API (`/list`, `/get`) here, the rest
/// in [`api::Api::route`] (each of those modules reads the [`api::Api`]; none routes to
/// another).
async fn route(api: &api::Api, req: &HttpRequest, who: &Identity) -> HttpResponse {
    let path = req.path_and_query().0;
    if path.starts_with("/whep/") {
        return whep::route(api.webrtc.as_ref(), req, path).await;
    }
    if let Some(r) = console::route(api, req, path, who) {
        return r;
    }
    if matches!(req.head.method.as_str(), "GET" | "HEAD") {
        if let Some(r) = live::route(api, path) {
            return r;
        }
    }
    if matches!(req.head.method.as_str(), "GET" | "HEAD") {
        let (path, query) = req.path_and_query();
        if path == "/metrics" && api.metrics.enabled {
            return metrics::response(api).await;
        }
        if path == "/list" || path == "/get" {
            return playback::route(api, req, path, query).await;
        }
    }
    api.route(req).await
}
