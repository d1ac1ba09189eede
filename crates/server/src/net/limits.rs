//! Limits against hostile or broken clients, and failure isolation of connections.
//!
//! Hand-written (no crate covers this mix): the values of `[limits]`, the
//! per-connection deadlines (a request must be complete within `request_timeout`; a
//! connection without a session may idle `idle_timeout`), a one-second window counting
//! backchannel packets, and the counters of every limit hit. The connection table and
//! panic isolation are in [`super::accept`].
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
//! | the process's open-files limit (`RLIMIT_NOFILE`, not a `[limits]` key) | `503 Service Unavailable (the server is out of file descriptors)` then close (RTSP and HTTP), counted in `connections_refused_fds`; logged once per burst ([`super::accept`]) |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

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
    /// Accepts that failed (out of file descriptors, ...): see `net::accept`.
    pub accept_failures: AtomicU64,
    /// Connections answered 503 and closed because the process was out of file
    /// descriptors.
    pub connections_refused_fds: AtomicU64,
}

impl LimitCounters {
    /// Every count with its name (the `limits` object of `/api/stats`, the `limit`
    /// label of `/metrics`).
    pub fn named(&self) -> [(&'static str, u64); 12] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            (
                "connections_refused_total",
                g(&self.connections_refused_total),
            ),
            (
                "connections_refused_per_ip",
                g(&self.connections_refused_per_ip),
            ),
            ("sessions_refused", g(&self.sessions_refused)),
            ("request_timeouts", g(&self.request_timeouts)),
            ("idle_timeouts", g(&self.idle_timeouts)),
            ("tunnel_unpaired", g(&self.tunnel_unpaired)),
            ("interleaved_unrouted", g(&self.interleaved_unrouted)),
            ("interleaved_closed", g(&self.interleaved_closed)),
            (
                "backchannel_rate_dropped",
                g(&self.backchannel_rate_dropped),
            ),
            ("connection_panics", g(&self.connection_panics)),
            ("accept_failures", g(&self.accept_failures)),
            ("connections_refused_fds", g(&self.connections_refused_fds)),
        ]
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

    /// [`admit`](Self::admit) now, counting a refusal in `dropped`.
    pub fn admit_counted(&self, max: u32, dropped: &AtomicU64) -> bool {
        let ok = self.admit(max, Instant::now());
        if !ok {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
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
}
