//! The RTSP room: connections and sessions.
//!
//! - [`conn`]: one connection (RTSP port, RTSPS, or an HTTP tunnel's POST half): a thin
//!   loop around the sans-IO session core (`ipcamd_proto::rtsp::server`).
//! - [`hub`]: the session table and what runs for each session (deliveries, talkers),
//!   started and stopped as the core's actions say.
//! - [`catalogue`]: the core's view of cameras and recordings for one request.
//! - [`udp_in`]: what clients send to the server's UDP ports (talk audio, RTCP).
//!
//! Live vs replay: a live session plays one camera's fan-out stream
//! (`crate::deliver::live`); a replay session (`/replay/NAME`) plays a recording through
//! its own store reader and pump (`crate::deliver::replay`).

pub mod catalogue;
pub mod conn;
pub mod hub;
pub mod udp_in;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::auth::Authorizer;
use crate::deliver::wire::new_writer;
use crate::net::accept::NetStream;
use crate::net::shutdown::Shutdown;

/// What every RTSP connection shares.
pub struct Rtsp {
    pub hub: Arc<hub::Hub>,
    pub auth: Arc<Authorizer>,
    /// The `Server:` header.
    pub server_name: String,
}

/// Serves one connection of the RTSP (or RTSPS) port until it closes; its interleaved
/// sessions end with it.
pub async fn serve(
    rtsp: Arc<Rtsp>,
    stream: NetStream,
    peer: SocketAddr,
    local: SocketAddr,
    shutdown: Shutdown,
) {
    rtsp.hub
        .counters
        .connections
        .fetch_add(1, Ordering::Relaxed);
    let tls = stream.is_tls();
    let tcp_fd = stream.tcp_fd();
    let (rd, wr) = stream.split();
    let writer = new_writer(wr, tcp_fd);
    let conn_id = rtsp.hub.register(writer.clone());
    tracing::debug!(%peer, conn_id, tls, "RTSP connection");
    let mut conn = conn::Conn::new(rtsp.clone(), peer, local, writer, conn_id, tls);
    // A panic (a bug) in the loop closes this connection only, and its sessions still end.
    let counters = rtsp.hub.limit_counters.clone();
    let run = Box::pin(async move { conn.run(rd, None, shutdown).await });
    crate::net::accept::run_isolated(&counters, peer, "RTSP connection", run).await;
    rtsp.hub.connection_closed(conn_id).await;
    tracing::debug!(%peer, conn_id, "RTSP connection closed");
}
