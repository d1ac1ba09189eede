//! RTSP over HTTP tunnelling (Apple's scheme; ONVIF's RTP/RTSP/HTTP/TCP): the client opens
//! a GET and a POST connection carrying the same `x-sessioncookie`. The GET is answered
//! `200 OK` with content type `application/x-rtsp-tunnelled` and then carries every
//! server->client byte (RTSP answers and interleaved media); the POST body is the
//! base64-encoded client->server RTSP stream, served by the RTSP connection loop. Sessions
//! whose media goes over the GET end when the GET connection closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcamd_proto::rtsp::server::ConnId;
use ipcamd_proto::tunnel::{tunnel_get_response, Base64Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Http;
use crate::deliver::wire::{new_writer, Writer};
use crate::net::accept::NetStream;
use crate::net::shutdown::Shutdown;
use crate::rtsp::conn::Conn;
use crate::sync::lock;

/// How long a POST waits for its GET half (clients open the GET first, but not always
/// before the POST reaches us).
const PAIRING_WAIT: Duration = Duration::from_secs(5);

/// A tunnel's GET half, waiting for or paired with its POST.
#[derive(Clone)]
struct TunnelGet {
    writer: Writer,
    conn: ConnId,
    /// Set when a POST half has been paired with this GET.
    paired: Arc<AtomicBool>,
}

/// GET halves by `x-sessioncookie`.
#[derive(Default)]
pub struct Tunnels(Mutex<HashMap<String, TunnelGet>>);

/// Serves a tunnel's GET half: answers, registers its write half as an RTSP connection's
/// writer, and waits for the client to close it (or for a POST that never comes).
pub async fn get(
    http: Arc<Http>,
    mut stream: NetStream,
    peer: SocketAddr,
    cookie: String,
    mut shutdown: Shutdown,
) {
    if stream.write_all(tunnel_get_response()).await.is_err() {
        return;
    }
    let hub = http.rtsp.hub.clone();
    let tcp_fd = stream.tcp_fd();
    let (mut rd, wr) = stream.split();
    let writer = new_writer(wr, tcp_fd);
    let conn = hub.register(writer.clone());
    let paired = Arc::new(AtomicBool::new(false));
    lock(&http.tunnels.0).insert(
        cookie.clone(),
        TunnelGet {
            writer,
            conn,
            paired: paired.clone(),
        },
    );
    tracing::debug!(%peer, conn, "HTTP tunnel GET opened");
    // The client sends nothing more on the GET; wait for it to close, or for the POST
    // half that never comes ([limits] tunnel_pair_timeout_s).
    let mut sink = [0u8; 512];
    let deadline = tokio::time::Instant::now() + http.limits.tunnel_pair_timeout;
    loop {
        // Unpaired, the wait is bounded by the pairing deadline; paired, by nothing.
        let limit = if paired.load(Ordering::Relaxed) {
            tokio::time::Instant::now() + Duration::from_secs(24 * 3600)
        } else {
            deadline
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(limit, rd.read(&mut sink)) => match r {
                Ok(r) => r,
                Err(_) if paired.load(Ordering::Relaxed) => continue,
                Err(_) => {
                    http.limit_counters.tunnel_unpaired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "HTTP tunnel GET without a POST ([limits] tunnel_pair_timeout_s); closing");
                    break;
                }
            },
            _ = shutdown.wait() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    lock(&http.tunnels.0).remove(&cookie);
    hub.connection_closed(conn).await;
    tracing::debug!(%peer, conn, "HTTP tunnel GET closed");
}

/// Serves a tunnel's POST half: pairs it with its GET, then runs the RTSP connection loop
/// over the base64-decoded body, answering through the GET.
pub async fn post(
    http: Arc<Http>,
    stream: NetStream,
    peer: SocketAddr,
    local: SocketAddr,
    cookie: String,
    already_read: Vec<u8>,
    shutdown: Shutdown,
) {
    let tls = stream.is_tls();
    let deadline = tokio::time::Instant::now() + PAIRING_WAIT.min(http.limits.tunnel_pair_timeout);
    let get = loop {
        if let Some(g) = lock(&http.tunnels.0).get(&cookie).cloned() {
            break g;
        }
        if tokio::time::Instant::now() >= deadline {
            http.limit_counters
                .tunnel_unpaired
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, "HTTP tunnel POST without a GET of the same x-sessioncookie; closing");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    get.paired.store(true, Ordering::Relaxed);
    let mut conn = Conn::new(http.rtsp.clone(), peer, local, get.writer, get.conn, tls);
    let input = std::io::Cursor::new(already_read).chain(stream);
    conn.run(input, Some(Base64Stream::default()), shutdown)
        .await;
    tracing::debug!(%peer, "HTTP tunnel POST closed");
}
