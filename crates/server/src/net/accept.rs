//! The accept loops of every port (RTSP, HTTP, RTSPS, HTTPS): admission against the
//! connection limits (a refused connection gets `503 (why)` in its protocol, or is closed
//! before the TLS handshake), the handshake with a time limit, then the port's serve
//! function in its own task; it runs its protocol loop through [`run_isolated`], so that a
//! panic closes that connection only. The loops stop at
//! shutdown; every connection task is tracked by [`super::shutdown`].
//!
//! Out of file descriptors (`EMFILE`, `ENFILE`), `accept` fails while the connection waits
//! in the listen queue, so the loop would spin (or clients would hang there unanswered).
//! The process keeps one descriptor in reserve (`/dev/null`, [`Reserve`]): on such a
//! failure it gives it up, accepts the waiting connection, answers it `503 (the server is
//! out of file descriptors)` without waiting and closes it, then takes the reserve back.
//! Other accept errors wait 100 ms. Either way the log says it once per burst (when the
//! first accept fails, with what to do, and when accepting works again, with the counts),
//! and `/api/stats` counts them (`accept_failures`, `connections_refused_fds`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use ipcamd_proto::throttle::{Throttle, WARN_PERIOD};

use super::limits::{LimitCounters, Limits};
use super::shutdown::Shutdown;
use crate::sync::lock;

/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection: plain TCP or TLS.
pub enum NetStream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The read half of a [`NetStream`].
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a [`NetStream`].
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

impl NetStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, NetStream::Tls(_))
    }

    /// The socket, when the stream is plain TCP (no TLS layer between it and the bytes).
    pub fn tcp_fd(&self) -> Option<std::os::fd::RawFd> {
        match self {
            NetStream::Tcp(s) => Some(std::os::fd::AsRawFd::as_raw_fd(s)),
            NetStream::Tls(_) => None,
        }
    }

    /// Splits into halves (plain TCP without a lock between them: the media path).
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            NetStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            NetStream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

impl AsyncRead for NetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            NetStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            NetStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            NetStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            NetStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NetStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NetStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetStream::Tcp(s) => s.is_write_vectored(),
            NetStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Open connections, in total and per IP, against `max_connections` and
/// `max_connections_per_ip` (all ports together).
pub struct Admission {
    limits: Limits,
    counters: Arc<LimitCounters>,
    table: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// Refusals are logged at most once per period, with their count: a flood of
    /// connections must not become a flood of log lines.
    warn_refused: Mutex<Throttle>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnGuard {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut t = lock(&self.admission.table);
        t.0 = t.0.saturating_sub(1);
        if let Some(n) = t.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.1.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: Limits, counters: Arc<LimitCounters>) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            counters,
            table: Mutex::new((0, HashMap::new())),
            warn_refused: Mutex::new(Throttle::new(WARN_PERIOD)),
        })
    }

    /// Logs a refused connection (rate-limited; the counters count every one).
    pub fn log_refused(&self, what: &str, peer: SocketAddr, reason: &str) {
        let repeats = lock(&self.warn_refused).check(std::time::Instant::now());
        if let Some(r) = repeats {
            tracing::warn!(%peer, %reason, "{what} connection refused{r}");
        }
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        lock(&self.table).0
    }

    /// Admits a new connection from `peer`, or says (as a status reason) why not.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<ConnGuard, String> {
        let l = &self.limits;
        let mut t = lock(&self.table);
        if t.0 >= l.max_connections {
            drop(t);
            self.counters
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
            self.counters
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
            admission: self.clone(),
            ip: peer.ip(),
        })
    }
}

/// The protocol a refused connection is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtsp,
    Http,
}

/// Answers a refused connection with `503 (reason)` and closes it, without holding up the
/// accept loop.
fn refuse(mut stream: TcpStream, protocol: Protocol, reason: String) {
    tokio::spawn(async move {
        let text = match protocol {
            Protocol::Http => format!("HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n", reason.len() + 1),
            Protocol::Rtsp => format!("RTSP/1.0 503 Service Unavailable ({reason})\r\nConnection: close\r\n\r\n"),
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

/// Runs one connection's future in its own task and waits for it. A panic inside is
/// caught by tokio, logged here and counted; the caller then cleans up that connection as
/// after a normal close. Returns `false` when the task panicked.
///
/// `fut` comes boxed: a connection's protocol loop is its largest state, and as an
/// argument by value it would be stored in the caller's future (the accept task of every
/// connection, for its whole life) as well as in its own task.
pub async fn run_isolated(
    counters: &LimitCounters,
    peer: SocketAddr,
    what: &str,
    fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
) -> bool {
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

/// One port: what it speaks, its optional TLS, its limits and shutdown signal.
#[derive(Clone)]
pub struct Port {
    pub what: &'static str,
    pub protocol: Protocol,
    pub tls: Option<TlsAcceptor>,
    pub admission: Arc<Admission>,
    pub counters: Arc<LimitCounters>,
    pub shutdown: Shutdown,
}

/// The file descriptor kept for answering connections while the process has no other
/// (see the module doc); one for all ports.
struct Reserve;

static RESERVE: Mutex<Option<std::fs::File>> = Mutex::new(None);

impl Reserve {
    /// Takes the reserve descriptor if it is not held (fails quietly while none is free).
    fn fill() {
        let mut r = lock(&RESERVE);
        if r.is_none() {
            *r = std::fs::File::open("/dev/null").ok();
        }
    }

    /// Gives the reserve descriptor up; false when it was not held.
    fn release() -> bool {
        lock(&RESERVE).take().is_some()
    }
}

fn out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (the process's limit), ENFILE (the system's).
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// A run of failing accepts, logged at its start and its end.
struct Burst {
    since: std::time::Instant,
    failures: u64,
    refused: u64,
}

/// Answers a connection accepted with the reserve descriptor `503 (reason)` and closes it
/// at once (no task: the descriptor must be free again before the reserve is taken back).
/// What the client sent is read first, so that closing sends a FIN, not a reset that could
/// discard the answer at the client.
fn refuse_now(stream: TcpStream, protocol: Protocol, reason: &str) {
    let mut buf = [0u8; 4096];
    while matches!(stream.try_read(&mut buf), Ok(n) if n > 0) {}
    let text = match protocol {
        Protocol::Http => format!("HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n", reason.len() + 1),
        Protocol::Rtsp => format!("RTSP/1.0 503 Service Unavailable ({reason})\r\nConnection: close\r\n\r\n"),
    };
    let _ = stream.try_write(text.as_bytes());
    if let Ok(std) = stream.into_std() {
        let _ = std.shutdown(std::net::Shutdown::Write);
    }
}

/// Accepts connections until shutdown. `serve(stream, peer, local)` runs in its own task.
pub async fn accept_loop<F, Fut>(listener: TcpListener, port: Port, serve: F)
where
    F: Fn(NetStream, SocketAddr, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = port.shutdown.clone();
    let mut burst: Option<Burst> = None;
    Reserve::fill();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                let fds = out_of_fds(&e);
                let b = burst.get_or_insert_with(|| {
                    if fds {
                        tracing::error!(
                            error = %e,
                            "{}: out of file descriptors, new connections are answered 503 \
                             and closed; raise the server's open-files limit (ulimit -n, \
                             systemd LimitNOFILE=) or lower [limits] max_connections (logged \
                             again when accepting works again)",
                            port.what
                        );
                    } else {
                        tracing::error!(
                            error = %e,
                            "{}: accepting connections fails; retrying every 100 ms (logged \
                             again when accepting works again)",
                            port.what
                        );
                    }
                    Burst {
                        since: std::time::Instant::now(),
                        failures: 0,
                        refused: 0,
                    }
                });
                b.failures += 1;
                port.counters
                    .accept_failures
                    .fetch_add(1, Ordering::Relaxed);
                if fds && Reserve::release() {
                    // The waiting connection gets the reserve's descriptor and its answer.
                    let waiting =
                        tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
                    if let Ok(Ok((stream, _))) = waiting {
                        refuse_now(
                            stream,
                            port.protocol,
                            "the server is out of file descriptors",
                        );
                        b.refused += 1;
                        port.counters
                            .connections_refused_fds
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Reserve::fill();
                    continue;
                }
                // No reserve (another port has it, or it could not be taken back): wait a
                // little instead of spinning, then try to take it again.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Reserve::fill();
                continue;
            }
        };
        if let Some(b) = burst.take() {
            tracing::info!(
                "{}: accepting connections again after {:.1} s: {} accepts failed, {} \
                 connections answered 503",
                port.what,
                b.since.elapsed().as_secs_f64(),
                b.failures,
                b.refused
            );
            Reserve::fill();
        }
        let guard = match port.admission.admit(peer) {
            Ok(g) => g,
            Err(reason) if port.tls.is_none() => {
                port.admission.log_refused(port.what, peer, &reason);
                refuse(stream, port.protocol, reason);
                continue;
            }
            Err(reason) => {
                port.admission.log_refused(port.what, peer, &reason);
                continue;
            }
        };
        let (tls, serve, what) = (port.tls.clone(), serve.clone(), port.what);
        let task = port.shutdown.track(what);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let local = stream
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            let stream = match tls {
                None => NetStream::Tcp(stream),
                Some(tls) => {
                    // Boxed: the handshake's state is large and would size every
                    // connection's task, TLS or not, for its whole life.
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, Box::pin(tls.accept(stream)))
                        .await
                    {
                        Ok(Ok(s)) => NetStream::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "{what}: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "{what}: TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            // `serve` isolates what may panic (the connection's protocol loop) itself, so
            // that it can clean up after a panic: one task per connection here.
            serve(stream, peer, local).await;
            drop(guard);
            drop(task);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_connection_is_isolated() {
        let counters = LimitCounters::default();
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        // Another connection keeps running while one panics.
        let other = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        });
        let ok = run_isolated(
            &counters,
            peer,
            "test",
            Box::pin(async {
                let v: Vec<u8> = Vec::new();
                let i = v.len() + 3;
                // An out-of-bounds index: the kind of bug this guards against.
                #[allow(clippy::indexing_slicing)]
                let _ = v[i];
            }),
        )
        .await;
        assert!(!ok);
        assert_eq!(counters.connection_panics.load(Ordering::Relaxed), 1);
        assert_eq!(other.await.ok(), Some(7));
        assert!(run_isolated(&counters, peer, "test", Box::pin(async {})).await);
        assert_eq!(counters.connection_panics.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn admission_counts_per_ip() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let counters = Arc::new(LimitCounters::default());
        let adm = Admission::new(limits, counters.clone());
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let g1 = adm.admit(a).unwrap();
        let _g2 = adm.admit(a).unwrap();
        assert!(adm.admit(a).is_err());
        let _g3 = adm.admit(b).unwrap();
        assert!(adm.admit(b).is_err()); // total
        assert_eq!(adm.open(), 3);
        drop(g1);
        assert!(adm.admit(b).is_ok());
        assert_eq!(
            counters.connections_refused_per_ip.load(Ordering::Relaxed),
            1
        );
        assert_eq!(
            counters.connections_refused_total.load(Ordering::Relaxed),
            1
        );
    }
}
