//! The server's UDP socket pair (RTP on an even port, RTCP on the next), shared by all
//! sessions: media for every UDP client is sent from it. What clients send to it
//! (receiver reports, backchannel audio) is read and routed by `crate::rtsp::udp_in`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::UdpSocket;

pub struct UdpPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub send_errors: AtomicU64,
}

impl UdpPair {
    /// Binds `port` and `port + 1` (`port` even), or the first free even pair from 6970
    /// upwards when `port` is 0.
    pub async fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpPair> {
        let candidates: Vec<u16> = if port != 0 {
            vec![port]
        } else {
            (6970..7970).step_by(2).collect()
        };
        let mut last_err = None;
        for p in candidates {
            match (
                UdpSocket::bind((ip, p)).await,
                UdpSocket::bind((ip, p.wrapping_add(1))).await,
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(UdpPair {
                        rtp,
                        rtcp,
                        send_errors: AtomicU64::new(0),
                    })
                }
                (Err(e), _) | (_, Err(e)) => last_err = Some(e),
            }
        }
        let e = last_err.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into());
        Err(std::io::Error::new(
            e.kind(),
            format!("cannot bind the RTP/RTCP UDP port pair on {ip} (rtp_port = {port}): {e}"),
        ))
    }

    /// (RTP, RTCP) server ports, for the Transport header.
    pub fn ports(&self) -> (u16, u16) {
        let p = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
        (p(&self.rtp), p(&self.rtcp))
    }

    /// UDP is fire-and-forget: a failed send (e.g. no route) is counted, never fatal.
    pub async fn send_rtp(&self, pkt: &[u8], to: SocketAddr) -> std::io::Result<()> {
        if self.rtp.send_to(pkt, to).await.is_err() {
            self.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub async fn send_rtcp(&self, pkt: &[u8], to: SocketAddr) -> std::io::Result<()> {
        if self.rtcp.send_to(pkt, to).await.is_err() {
            self.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
