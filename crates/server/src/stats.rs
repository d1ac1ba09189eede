//! Server-wide counters (logs, `GET /api/stats`).

use std::sync::atomic::AtomicU64;

/// Counted by the RTSP and HTTP ports.
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
