//! The wire under a delivery: the shared write half of an RTSP connection (responses and
//! interleaved media, RFC 2326 §10.12, go through the same one), where one track's packets
//! go, and the RTCP writer every delivery uses.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

use bytes::Bytes;
use ipcamd_proto::rtsp::message::write_interleaved;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::udp::UdpPair;

/// The write half of an RTSP connection (or of a tunnel's GET connection), shared by the
/// request handler (responses) and the deliveries (media).
pub type Writer = Arc<ConnWriter>;

/// See [`Writer`]; derefs to the lock around the write half.
pub struct ConnWriter {
    io: Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>,
    /// The plain TCP socket under it (`None`: TLS). A write that returns has handed its
    /// bytes to the kernel, so a writer that never waits may try it (`deliver::direct`),
    /// with the lock held: the socket stays open while the locked write half lives.
    pub tcp_fd: Option<RawFd>,
}

impl std::ops::Deref for ConnWriter {
    type Target = tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>;

    fn deref(&self) -> &Self::Target {
        &self.io
    }
}

/// The write half locked by a guard that can change hands (a frame half written by the
/// camera's writer goes with its lock to the delivery that finishes it).
pub type OwnedWriteGuard = tokio::sync::OwnedMutexGuard<Box<dyn AsyncWrite + Send + Unpin>>;

impl ConnWriter {
    /// Where the lock lives (to prefetch it).
    pub fn lock_ptr(&self) -> *const u8 {
        Arc::as_ptr(&self.io).cast()
    }

    /// The lock, if it is free now.
    pub fn try_lock_owned(&self) -> Option<OwnedWriteGuard> {
        self.io.clone().try_lock_owned().ok()
    }
}

/// `w` comes boxed (a connection's write half is): boxing it again would put one more
/// allocation and pointer between the camera's writer and every socket it writes to.
/// `tcp_fd`: the socket under `w` when it is plain TCP.
pub fn new_writer(w: Box<dyn AsyncWrite + Send + Unpin>, tcp_fd: Option<RawFd>) -> Writer {
    Arc::new(ConnWriter {
        io: Arc::new(tokio::sync::Mutex::new(w)),
        tcp_fd,
    })
}

/// Writes all of `slices`, looping over partial writes.
pub async fn write_all_vectored(
    w: &mut (dyn AsyncWrite + Send + Unpin),
    mut slices: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Where one track's packets go.
#[derive(Clone)]
pub enum Sink {
    /// `$`-framed on an RTSP connection.
    Interleaved {
        writer: Writer,
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    /// Unicast UDP from the server's port pair.
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

/// One track of a delivery: which, with which SSRC, to where.
#[derive(Clone)]
pub struct TrackSink {
    pub track: usize,
    pub ssrc: u32,
    pub sink: Sink,
}

/// Writes one RTCP packet on a track's sink (interleaved RTCP channel or UDP).
pub async fn send_rtcp(udp: &UdpPair, sink: &Sink, pkt: Bytes) -> std::io::Result<()> {
    match sink {
        Sink::Interleaved {
            writer,
            rtcp_channel,
            ..
        } => {
            let hdr = write_interleaved(*rtcp_channel, pkt.len());
            let mut w = writer.lock().await;
            let mut slices = [IoSlice::new(&hdr), IoSlice::new(&pkt)];
            write_all_vectored(&mut **w, &mut slices).await?;
            w.flush().await
        }
        Sink::Udp { rtcp, .. } => udp.send_rtcp(&pkt, *rtcp).await,
    }
}
