//! Limits against hostile or broken clients, and failure isolation of connections.
//!
//! Hand-written (no crate covers this mix): a table of open connections per IP, the
//! per-connection deadlines (a request must be complete within `request_timeout`; a
//! connection without a session may idle `idle_timeout`), a one-second window counting
//! backchannel packets, the counters of every limit hit, and [`run_isolated`], which runs
//! a connection in its own task so that a panic in it is logged and closes that connection
//! only.
//!
//! What each limit answers when hit:
//!
//! | limit | answer |
//! |---|---|
//! | `max_connections`, `max_connections_per_ip` | `503 Service Unavailable (why)` then close (RTSP and HTTP) |
//! | `max_sessions_per_connection` | `503` to the SETUP that would create one more |
//! | `max_request_head_bytes`, `max_headers` | `400` and close (the decoder cannot resynchronise) |
//! | `max_body_bytes` | `413 Request Entity Too Large` |
//! | `request_timeout` | a partial request older than this: log line, close |
//! | `idle_timeout` | a connection with no session and no bytes for this long: close |
//! | `tunnel_pair_timeout` | an HTTP-tunnel GET whose POST never comes, or a POST whose GET never came: close |
//! | `max_unrouted_interleaved` | interleaved frames on channels not set up: dropped, counted; past this many, close |
//! | `backchannel_max_packets_per_s` | backchannel RTP above this rate per session: dropped, counted |

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::state::{lock, ServerState};

/// The configurable limits (`[limits]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections (RTSP + HTTP ports together).
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Sessions created on one RTSP connection.
    pub max_sessions_per_connection: usize,
    /// Request line + headers of one RTSP or HTTP request.
    pub max_request_head_bytes: usize,
    /// Header lines of one RTSP request.
    pub max_headers: usize,
    /// Body of one RTSP request (`Content-Length`).
    pub max_body_bytes: usize,
    /// Time to send a complete request once its first byte arrived (slowloris).
    pub request_timeout: Duration,
    /// A connection that has no session and sends nothing is closed after this.
    pub idle_timeout: Duration,
    /// An HTTP-tunnel half waits this long for the other half.
    pub tunnel_pair_timeout: Duration,
    /// Interleaved frames on channels not set up tolerated per connection before closing.
    pub max_unrouted_interleaved: u64,
    /// Backchannel RTP packets per second and session; the excess is dropped.
    pub backchannel_max_packets_per_s: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1000,
            max_connections_per_ip: 100,
            max_sessions_per_connection: 16,
            max_request_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tunnel_pair_timeout: Duration::from_secs(30),
            max_unrouted_interleaved: 1000,
            backchannel_max_packets_per_s: 200,
        }
    }
}

impl Limits {
    /// The RTSP decoder's share of the limits.
    pub fn decoder(&self) -> ipcamd_proto::rtsp::message::Limits {
        ipcamd_proto::rtsp::message::Limits {
            max_head_bytes: self.max_request_head_bytes,
            max_headers: self.max_headers,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// How often each limit was hit (shown by `GET /api/stats`).
#[derive(Debug, Default)]
pub struct LimitCounters {
    pub connections_refused_total: AtomicU64,
    pub connections_refused_per_ip: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub request_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub tunnel_unpaired: AtomicU64,
    pub interleaved_unrouted: AtomicU64,
    pub interleaved_closed: AtomicU64,
    pub backchannel_rate_dropped: AtomicU64,
    pub connection_panics: AtomicU64,
}

/// Open connections, in total and per IP.
#[derive(Debug, Default)]
pub struct ConnTable {
    inner: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnGuard {
    state: Arc<ServerState>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut t = lock(&self.state.conns.inner);
        t.0 = t.0.saturating_sub(1);
        if let Some(n) = t.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.1.remove(&self.ip);
            }
        }
    }
}

impl ConnTable {
    /// Open connections now.
    pub fn open(&self) -> usize {
        lock(&self.inner).0
    }
}

/// Admits a new connection from `peer`, or says (as a status reason) why not.
pub fn admit(state: &Arc<ServerState>, peer: SocketAddr) -> Result<ConnGuard, String> {
    let l = &state.options.limits;
    let mut t = lock(&state.conns.inner);
    if t.0 >= l.max_connections {
        drop(t);
        state
            .limit_counters
            .connections_refused_total
            .fetch_add(1, Ordering::Relaxed);
        return Err(format!(
            "too many connections: the server allows {} at once",
            l.max_connections
        ));
    }
    let per_ip = t.1.get(&peer.ip()).copied().unwrap_or(0);
    if per_ip >= l.max_connections_per_ip {
        drop(t);
        state
            .limit_counters
            .connections_refused_per_ip
            .fetch_add(1, Ordering::Relaxed);
        return Err(format!(
            "too many connections from {}: at most {} per address",
            peer.ip(),
            l.max_connections_per_ip
        ));
    }
    t.0 += 1;
    *t.1.entry(peer.ip()).or_insert(0) += 1;
    Ok(ConnGuard {
        state: state.clone(),
        ip: peer.ip(),
    })
}

/// Answers a refused connection with `503 (reason)` (in RTSP or HTTP) and closes it,
/// without holding up the accept loop.
pub fn refuse(mut stream: tokio::net::TcpStream, peer: SocketAddr, http: bool, reason: String) {
    use tokio::io::AsyncWriteExt;
    tracing::warn!(%peer, %reason, "connection refused");
    tokio::spawn(async move {
        let text = if http {
            format!("HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n", reason.len() + 1)
        } else {
            format!("RTSP/1.0 503 Service Unavailable ({reason})\r\nConnection: close\r\n\r\n")
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

/// Runs one connection's future in its own task and waits for it. A panic inside is
/// caught by tokio, logged here and counted; the caller then cleans up that connection
/// as after a normal close. Returns `false` when the task panicked.
pub async fn run_isolated<F>(counters: &LimitCounters, peer: SocketAddr, what: &str, fut: F) -> bool
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::spawn(fut).await {
        Ok(()) => true,
        Err(e) => {
            if e.is_panic() {
                counters.connection_panics.fetch_add(1, Ordering::Relaxed);
                let why = e.into_panic();
                let msg = why
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| why.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                tracing::error!(%peer, what, panic = %msg, "connection task panicked; closing that connection only (please report this bug)");
            }
            false
        }
    }
}

/// Whether `name` can be a camera name, and so a file name component: 1-64 ASCII
/// letters, digits, '-' or '_' (no `.`, `/`, `%`, NUL or anything non-ASCII).
pub fn is_safe_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Backchannel packets in the current one-second window.
#[derive(Debug)]
pub struct PacketRate {
    window: Mutex<(Instant, u32)>,
}

impl Default for PacketRate {
    fn default() -> Self {
        PacketRate {
            window: Mutex::new((Instant::now(), 0)),
        }
    }
}

impl PacketRate {
    /// Whether one more packet fits in `max` per second (counting it if so).
    pub fn admit(&self, max: u32, now: Instant) -> bool {
        let mut w = lock(&self.window);
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        if w.1 >= max {
            return false;
        }
        w.1 += 1;
        true
    }
}

/// Whether a backchannel packet of a session is within the rate limit; counts the drop.
pub fn admit_talk_packet(state: &ServerState, rate: &PacketRate) -> bool {
    let ok = rate.admit(
        state.options.limits.backchannel_max_packets_per_s,
        Instant::now(),
    );
    if !ok {
        state
            .limit_counters
            .backchannel_rate_dropped
            .fetch_add(1, Ordering::Relaxed);
    }
    ok
}

/// `GET /api/stats`: the server's counters as JSON.
pub fn stats_json(state: &ServerState) -> serde_json::Value {
    let c = &state.counters;
    let l = &state.limit_counters;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut cameras: Vec<serde_json::Value> = state
        .cameras
        .values()
        .map(|cam| {
            let s = &cam.stream;
            serde_json::json!({
                "name": cam.name,
                "online": s.offline_reason().is_none(),
                "offline_reason": s.offline_reason(),
                "readers": s.reader_count(),
                "frames_in": g(&s.stats.frames_in),
                "reader_skips": g(&s.stats.reader_skips),
            })
        })
        .collect();
    cameras.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    serde_json::json!({
        "connections_open": state.conns.open(),
        "connections": g(&c.connections),
        "requests": g(&c.requests),
        "bad_requests": g(&c.bad_requests),
        "sessions_open": state.sessions.len(),
        "sessions_created": g(&c.sessions_created),
        "sessions_timed_out": g(&c.sessions_timed_out),
        "rtcp_received": g(&c.rtcp_received),
        "rtcp_malformed": g(&c.rtcp_malformed),
        "udp_unknown_source": g(&c.udp_unknown_source),
        "limits": {
            "connections_refused_total": g(&l.connections_refused_total),
            "connections_refused_per_ip": g(&l.connections_refused_per_ip),
            "sessions_refused": g(&l.sessions_refused),
            "request_timeouts": g(&l.request_timeouts),
            "idle_timeouts": g(&l.idle_timeouts),
            "tunnel_unpaired": g(&l.tunnel_unpaired),
            "interleaved_unrouted": g(&l.interleaved_unrouted),
            "interleaved_closed": g(&l.interleaved_closed),
            "backchannel_rate_dropped": g(&l.backchannel_rate_dropped),
            "connection_panics": g(&l.connection_panics),
        },
        "cameras": cameras,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert!(is_safe_name("cam-1_B"));
        for bad in ["", "..", "a/b", "a%2Fb", "a\0", "é", "a.b", &"x".repeat(65)] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn packet_rate_window() {
        let r = PacketRate::default();
        let t0 = Instant::now();
        assert!((0..5).all(|_| r.admit(5, t0)));
        assert!(!r.admit(5, t0 + Duration::from_millis(500)));
        assert!(r.admit(5, t0 + Duration::from_millis(1001)));
    }

    #[tokio::test]
    async fn a_panicking_connection_is_isolated() {
        let counters = LimitCounters::default();
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        // Another connection keeps running while one panics.
        let other = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        });
        let ok = run_isolated(&counters, peer, "test", async {
            let v: Vec<u8> = Vec::new();
            let i = v.len() + 3;
            // An out-of-bounds index: the kind of bug this guards against.
            #[allow(clippy::indexing_slicing)]
            let _ = v[i];
        })
        .await;
        assert!(!ok);
        assert_eq!(counters.connection_panics.load(Ordering::Relaxed), 1);
        assert_eq!(other.await.ok(), Some(7));
        assert!(run_isolated(&counters, peer, "test", async {}).await);
        assert_eq!(counters.connection_panics.load(Ordering::Relaxed), 1);
    }
}
