//! What every connection shares: the cameras, the session registry, the UDP sockets,
//! the HTTP-tunnel pairing table, and counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ipcamd_media::fanout::Stream;

use crate::session::Sessions;
use crate::udp::UdpPair;
use crate::ServerOptions;

/// A camera as the server sees it: a name (its URL path), its live stream, and its audio
/// output for the ONVIF backchannel, if it has one.
#[derive(Clone)]
pub struct Camera {
    pub name: String,
    pub stream: Arc<Stream>,
    pub backchannel: Option<Arc<crate::backchannel::AudioOut>>,
    /// Record this camera continuously into the store (when the server has one).
    pub record: bool,
}

impl Camera {
    /// Index of the backchannel track in SETUP URLs (`trackID=<n>`): after the live tracks.
    pub fn backchannel_track(&self) -> Option<usize> {
        self.backchannel
            .as_ref()
            .map(|_| self.stream.tracks().len())
    }
}

/// Server-wide counters (for logs and the API).
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub bad_requests: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_timed_out: AtomicU64,
    pub rtcp_received: AtomicU64,
    pub rtcp_malformed: AtomicU64,
    /// UDP datagrams on the RTP port from an address no session knows.
    pub udp_unknown_source: AtomicU64,
}

pub struct ServerState {
    pub options: ServerOptions,
    pub cameras: HashMap<String, Camera>,
    pub sessions: Sessions,
    pub udp: UdpPair,
    pub rtsp_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    /// The recording store, when recording is configured.
    pub store: Option<ipcamd_store::Store>,
    pub counters: Counters,
    /// How often each limit was hit.
    pub limit_counters: crate::limits::LimitCounters,
    /// Open connections, in total and per IP.
    pub conns: crate::limits::ConnTable,
    /// HTTP tunnel GET halves waiting for or paired with their POST, by `x-sessioncookie`.
    pub tunnels: Mutex<HashMap<String, crate::http::TunnelGet>>,
    /// ONVIF users, nonce cache, counters.
    pub onvif: crate::onvif::OnvifState,
    next_conn_id: AtomicU64,
}

impl ServerState {
    pub fn new(
        options: ServerOptions,
        cameras: Vec<Camera>,
        udp: UdpPair,
        rtsp_addr: SocketAddr,
        http_addr: Option<SocketAddr>,
        store: Option<ipcamd_store::Store>,
    ) -> Arc<ServerState> {
        let auth = options.auth.clone();
        Arc::new(ServerState {
            options,
            cameras: cameras.into_iter().map(|c| (c.name.clone(), c)).collect(),
            sessions: Sessions::default(),
            udp,
            rtsp_addr,
            http_addr,
            store,
            counters: Counters::default(),
            limit_counters: Default::default(),
            conns: Default::default(),
            tunnels: Mutex::new(HashMap::new()),
            onvif: crate::onvif::OnvifState::new(http_addr.map(|a| a.port()).unwrap_or(0), auth),
            next_conn_id: AtomicU64::new(1),
        })
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks a std mutex, keeping the data if a panicking thread poisoned it (every critical
/// section here leaves the data consistent).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
