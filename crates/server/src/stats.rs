//! Server-wide counters (logs, `GET /api/stats`, `GET /metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use crate::sync::lock;

/// Counted by the RTSP and HTTP ports.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub bad_requests: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_timed_out: AtomicU64,
    pub rtcp_received: AtomicU64,
    pub rtcp_malformed: AtomicU64,
    /// UDP datagrams on the RTP port from an address no session knows.
    pub udp_unknown_source: AtomicU64,
    /// Replay deliveries started (one per PLAY of a replay session that plays footage).
    pub replay_deliveries: AtomicU64,
    /// Answered requests by protocol, method and status.
    pub requests: RequestCounts,
}

/// Requests by protocol (`rtsp`, `http`), method and status. Methods outside the
/// protocols' own lists are counted as `other`, so a client cannot grow the table.
#[derive(Debug, Default)]
pub struct RequestCounts {
    map: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
}

const RTSP_METHODS: &[&str] = &[
    "OPTIONS",
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "GET_PARAMETER",
    "SET_PARAMETER",
    "ANNOUNCE",
    "RECORD",
];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

impl RequestCounts {
    /// Counts one answered request. `protocol` is `"rtsp"` or `"http"`.
    pub fn count(&self, protocol: &'static str, method: &str, status: u16) {
        let known = if protocol == "rtsp" {
            RTSP_METHODS
        } else {
            HTTP_METHODS
        };
        let method = known
            .iter()
            .copied()
            .find(|m| *m == method)
            .unwrap_or("other");
        *lock(&self.map)
            .entry((protocol, method, status))
            .or_insert(0) += 1;
    }

    /// Every (protocol, method, status) counted so far, with its count.
    pub fn snapshot(&self) -> Vec<((&'static str, &'static str, u16), u64)> {
        lock(&self.map).iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// All requests of one protocol.
    pub fn total(&self, protocol: &str) -> u64 {
        lock(&self.map)
            .iter()
            .filter(|((p, _, _), _)| *p == protocol)
            .map(|(_, v)| *v)
            .sum()
    }
}
