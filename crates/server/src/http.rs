//! The HTTP port: RTSP over HTTP tunnelling (Apple's scheme, required by ONVIF as
//! RTP/RTSP/HTTP/TCP) and a small plain-text index of what is served.
//!
//! Tunnel: the client opens a GET and a POST connection carrying the same
//! `x-sessioncookie`. The GET is answered `200 OK` with content type
//! `application/x-rtsp-tunnelled` and then carries every server->client byte (RTSP answers
//! and interleaved media); the POST body is the base64-encoded client->server RTSP stream.
//! Sessions whose media goes over the GET end when the GET connection closes.
//!
//! Authentication (see [`crate::auth`]): `GET /` and `/api/...` GETs (and HEADs) need the
//! viewer role, any other method the admin role. A tunnel GET or POST that carries `Authorization` must
//! carry valid credentials; one without is let through, because every RTSP request inside
//! the tunnel is checked like one on the RTSP port (the tunnel alone gives access to
//! nothing).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ipcamd_proto::time::{format_iso8601, parse_utc};
use ipcamd_proto::tunnel::{parse_http_head, tunnel_get_response, Base64Stream, HttpRequestHead};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::auth::Role;

use crate::delivery::{new_writer, Writer};
use crate::rtsp::Conn;
use crate::state::{lock, ServerState};

/// How long a POST waits for its GET half (clients open the GET first, but not always
/// before the POST reaches us).
const PAIRING_WAIT: Duration = Duration::from_secs(5);

/// A tunnel's GET half, waiting for or paired with its POST.
#[derive(Clone)]
pub struct TunnelGet {
    pub writer: Writer,
    pub conn_id: u64,
    /// Set when a POST half has been paired with this GET.
    pub paired: Arc<std::sync::atomic::AtomicBool>,
}

pub async fn accept_loop(state: Arc<ServerState>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match crate::limits::admit(&state, peer) {
                Ok(guard) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        // In its own task: a panic (a bug) closes this connection only.
                        let s = state.clone();
                        crate::limits::run_isolated(
                            &state.limit_counters,
                            peer,
                            "HTTP connection",
                            serve(s, stream, peer),
                        )
                        .await;
                        drop(guard);
                    });
                }
                Err(reason) => crate::limits::refuse(stream, peer, true, reason),
            },
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A byte stream the HTTP port serves: plain TCP or TLS.
pub trait HttpIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> HttpIo for T {}

async fn read_head(
    state: &ServerState,
    stream: &mut impl HttpIo,
) -> Option<(HttpRequestHead, Vec<u8>)> {
    let limits = &state.options.limits;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    // The whole head must arrive within the request timeout (slowloris).
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    loop {
        match parse_http_head(&buf, limits.max_request_head_bytes) {
            Ok(Some((head, used))) => {
                let rest = buf.get(used..).map(<[u8]>::to_vec).unwrap_or_default();
                return Some((head, rest));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "malformed HTTP request");
                let _ = stream
                    .write_all(b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n")
                    .await;
                return None;
            }
        }
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(r) => r.ok()?,
            Err(_) => {
                let c = &state.limit_counters;
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

async fn serve(state: Arc<ServerState>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    serve_stream(state, stream, peer, local, false).await
}

/// Serves one HTTP connection (plain or, with `tls`, after the TLS handshake).
pub async fn serve_stream(
    state: Arc<ServerState>,
    mut stream: impl HttpIo,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
) {
    state.counters.connections.fetch_add(1, Ordering::Relaxed);
    let Some((head, rest)) = read_head(&state, &mut stream).await else {
        return;
    };
    let cookie = head.session_cookie().map(str::to_owned);
    let tunnel = cookie.is_some() && (head.is_tunnel_get() || head.is_tunnel_post());
    let authorization = head.headers.get("Authorization");
    // ONVIF requests are authenticated per request by the ONVIF layer (WS-Security or
    // Digest; some operations are open to anyone).
    let onvif = !tunnel && crate::onvif::wants(&head);
    if !onvif && (authorization.is_some() || !tunnel) {
        let needed = if matches!(head.method.as_str(), "GET" | "HEAD") || tunnel {
            Role::Viewer
        } else {
            Role::Admin
        };
        let auth = &state.options.auth;
        if let Err(denied) = auth.check(authorization, &head.method, &head.path, needed, tls) {
            tracing::debug!(%peer, method = %head.method, path = %head.path, "HTTP request refused");
            let _ = stream.write_all(&denied.http_response()).await;
            let _ = stream.shutdown().await;
            return;
        }
    }
    match cookie {
        Some(cookie) if head.is_tunnel_get() => tunnel_get(state, stream, peer, cookie).await,
        Some(cookie) if head.is_tunnel_post() => {
            tunnel_post(state, stream, peer, local, cookie, rest, tls).await
        }
        _ if crate::onvif::wants(&head) => {
            crate::onvif::serve_http(state, stream, local, tls, head, rest).await
        }
        _ => plain_http(&state, stream, &head).await,
    }
}

async fn tunnel_get(
    state: Arc<ServerState>,
    mut stream: impl HttpIo,
    peer: SocketAddr,
    cookie: String,
) {
    if stream.write_all(tunnel_get_response()).await.is_err() {
        return;
    }
    let conn_id = state.next_conn_id();
    let (mut rd, wr) = tokio::io::split(stream);
    let paired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let get = TunnelGet {
        writer: new_writer(wr),
        conn_id,
        paired: paired.clone(),
    };
    lock(&state.tunnels).insert(cookie.clone(), get);
    tracing::debug!(%peer, conn_id, "HTTP tunnel GET opened");
    // The client sends nothing more on the GET; wait for it to close, or for the POST
    // half that never comes ([limits] tunnel_pair_timeout_s).
    let mut sink = [0u8; 512];
    let deadline = tokio::time::Instant::now() + state.options.limits.tunnel_pair_timeout;
    loop {
        let read = if paired.load(Ordering::Relaxed) {
            rd.read(&mut sink).await
        } else {
            match tokio::time::timeout_at(deadline, rd.read(&mut sink)).await {
                Ok(r) => r,
                Err(_) if paired.load(Ordering::Relaxed) => continue,
                Err(_) => {
                    state
                        .limit_counters
                        .tunnel_unpaired
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "HTTP tunnel GET without a POST ([limits] tunnel_pair_timeout_s); closing");
                    break;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    lock(&state.tunnels).remove(&cookie);
    state.sessions.teardown_connection(conn_id);
    tracing::debug!(%peer, conn_id, "HTTP tunnel GET closed");
}

async fn tunnel_post(
    state: Arc<ServerState>,
    stream: impl HttpIo,
    peer: SocketAddr,
    local: SocketAddr,
    cookie: String,
    already_read: Vec<u8>,
    tls: bool,
) {
    let deadline =
        tokio::time::Instant::now() + PAIRING_WAIT.min(state.options.limits.tunnel_pair_timeout);
    let get = loop {
        if let Some(g) = lock(&state.tunnels).get(&cookie).cloned() {
            break g;
        }
        if tokio::time::Instant::now() >= deadline {
            state
                .limit_counters
                .tunnel_unpaired
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, "HTTP tunnel POST without a GET of the same x-sessioncookie; closing");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    get.paired.store(true, Ordering::Relaxed);
    let mut conn = Conn::new(state.clone(), peer, local, get.writer, get.conn_id);
    conn.set_tls(tls);
    let input = std::io::Cursor::new(already_read).chain(stream);
    conn.run(input, Some(Base64Stream::default())).await;
    tracing::debug!(%peer, "HTTP tunnel POST closed");
}

async fn plain_http(state: &Arc<ServerState>, mut stream: impl HttpIo, head: &HttpRequestHead) {
    let (status, content_type, body) = if head.method != "GET" {
        (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"only GET is served here\n".to_vec(),
        )
    } else {
        let host = head.headers.get("Host").unwrap_or("HOST").to_owned();
        route(state, &head.path, &host).await
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

type HttpAnswer = (&'static str, &'static str, Vec<u8>);

fn json(status: &'static str, v: serde_json::Value) -> HttpAnswer {
    (status, "application/json", format!("{v:#}\n").into_bytes())
}

fn json_error(status: &'static str, msg: String) -> HttpAnswer {
    json(status, serde_json::json!({ "error": msg }))
}

/// `GET /` (index), `GET /api/recordings`, `GET /api/recordings/NAME`,
/// `GET /api/recordings/NAME/export.mp4?from=UTC&to=UTC`.
async fn route(state: &Arc<ServerState>, target: &str, host: &str) -> HttpAnswer {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/api/stats" {
        return json("200 OK", crate::limits::stats_json(state));
    }
    if path == "/" || path == "/index.txt" {
        return (
            "200 OK",
            "text/plain; charset=utf-8",
            index_text(state).into_bytes(),
        );
    }
    let Some(rest) = path.strip_prefix("/api/recordings") else {
        return (
            "404 Not Found",
            "text/plain; charset=utf-8",
            format!("no resource at {path}\n").into_bytes(),
        );
    };
    let Some(store) = state.store.clone() else {
        return json_error(
            "404 Not Found",
            "recording is not configured on this server".into(),
        );
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // Camera names are safe path components (letters, digits, '-', '_'; checked in the
    // configuration too): anything else (`..`, `%2F`, `%00`, non-UTF-8, overlong) is
    // refused before it reaches the store.
    if let Some(bad) = segments.first().filter(|n| !crate::limits::is_safe_name(n)) {
        let shown: String = bad.chars().take(80).collect();
        return json_error(
            "400 Bad Request",
            format!("{shown:?} is not a camera name (letters, digits, '-' and '_', at most 64)"),
        );
    }
    let host = host.to_owned();
    let query = query.to_owned();
    let rtsp_port = state.rtsp_addr.port();
    let result = tokio::task::spawn_blocking(move || -> HttpAnswer {
        let recording_json =
            |r: &ipcamd_store::RecordingInfo, host: &str| recording_json(r, host, rtsp_port);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            [] => match store.recordings() {
                Ok(list) => json(
                    "200 OK",
                    serde_json::Value::Array(
                        list.iter().map(|r| recording_json(r, &host)).collect(),
                    ),
                ),
                Err(e) => json_error("500 Internal Server Error", e.to_string()),
            },
            [name] => match store.recording(name) {
                Ok(Some(r)) => json("200 OK", recording_json(&r, &host)),
                Ok(None) => json_error("404 Not Found", format!("no recording of camera {name:?}")),
                Err(e) => json_error("500 Internal Server Error", e.to_string()),
            },
            [name, "export.mp4"] => export(&store, name, &query),
            _ => json_error("404 Not Found", "unknown API path".into()),
        }
    })
    .await;
    result
        .unwrap_or_else(|e| json_error("500 Internal Server Error", format!("request failed: {e}")))
}

fn export(store: &ipcamd_store::Store, name: &str, query: &str) -> HttpAnswer {
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.replace("%3A", ":").replace("%3a", ":"))
    };
    let (Some(from), Some(to)) = (param("from"), param("to")) else {
        return json_error(
            "400 Bad Request",
            "export needs ?from=<UTC>&to=<UTC>, e.g. from=2026-11-21T22:00:00Z".into(),
        );
    };
    let (Some(f), Some(t)) = (parse_utc(&from), parse_utc(&to)) else {
        return json_error(
            "400 Bad Request",
            format!("from={from:?} / to={to:?}: not UTC times like 2026-11-21T22:00:00Z"),
        );
    };
    if t <= f {
        return json_error("400 Bad Request", "to must be later than from".into());
    }
    let mut out = std::io::Cursor::new(Vec::new());
    match store.export_mp4(name, f, t, &mut out) {
        Ok(_) => ("200 OK", "video/mp4", out.into_inner()),
        Err(e) => json_error(
            "404 Not Found",
            format!("cannot export {name} {from}..{to}: {e}"),
        ),
    }
}

fn recording_json(
    r: &ipcamd_store::RecordingInfo,
    host: &str,
    rtsp_port: u16,
) -> serde_json::Value {
    // The RTSP URL uses the host the client reached us by, with the RTSP port.
    let hostname = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() => h,
        _ => host,
    };
    let tokens = crate::replay::track_tokens(&r.tracks);
    let (first, last) = (
        r.sections.first().map(|s| s.start),
        r.sections.last().map(|s| s.end),
    );
    serde_json::json!({
        "camera": r.camera,
        "replay_url": format!("rtsp://{hostname}:{rtsp_port}/replay/{}", r.camera),
        "tracks": r.tracks.iter().zip(&tokens).map(|(t, token)| serde_json::json!({
            "token": token,
            "codec": t.codec.name(),
            "kind": t.kind().as_sdp(),
            "clock_rate": t.clock_rate(),
        })).collect::<Vec<_>>(),
        "sections": r.sections.iter().map(|s| serde_json::json!({
            "start": format_iso8601(s.start),
            "end": format_iso8601(s.end),
            "bytes": s.bytes,
            "frames": s.frames,
            "recording": s.recording,
        })).collect::<Vec<_>>(),
        "bytes": r.bytes,
        "frames": r.frames,
        "export_url": match (first, last) {
            (Some(f), Some(l)) => serde_json::Value::String(format!(
                "http://{host}/api/recordings/{}/export.mp4?from={}&to={}",
                r.camera, format_iso8601(f), format_iso8601(l)
            )),
            _ => serde_json::Value::Null,
        },
    })
}

fn index_text(state: &ServerState) -> String {
    let mut names: Vec<&String> = state.cameras.keys().collect();
    names.sort();
    let mut s = format!("{}\n\n", state.options.server_name);
    for n in names {
        s.push_str(&format!("rtsp://HOST:{}/{n}\n", state.rtsp_addr.port()));
    }
    s
}
