//! Connection plumbing shared by the RTSP and HTTP ports, with no protocol in it:
//!
//! - [`accept`]: the accept loops (plain TCP and TLS), the connection table that enforces
//!   `max_connections` / `max_connections_per_ip`, and panic isolation of connections.
//! - [`limits`]: the values of `[limits]` and the counters of every limit hit.
//! - [`tls`]: the rustls acceptor (RTSPS, HTTPS).
//! - [`shutdown`]: the signal that reaches every connection, and the count of what is
//!   still open.

pub mod accept;
pub mod limits;
pub mod shutdown;
pub mod tls;
