//! The server's UDP socket pair (RTP on an even port, RTCP on the next), shared by all
//! sessions: media for every UDP client is sent from it, and the receiver reports that
//! clients send to it are matched to their session by source address (RFC 3550 §6.4.2).
//! A receiver report keeps its session alive.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipcamd_proto::rtcp::{parse_compound, RtcpPacket};
use tokio::net::UdpSocket;

use crate::state::ServerState;

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

/// Reads RTP that clients send to the server's RTP port: backchannel audio. Packets from
/// the announced `client_port` map to their session directly; otherwise the one session
/// talking from that IP address takes them. Anything else is dropped and counted.
pub async fn rtp_loop(state: Arc<ServerState>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match state.udp.rtp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "RTP socket receive error");
                continue;
            }
        };
        let Some(data) = buf.get(..n) else { continue };
        // Datagrams from a receive track's client port (NAT "dummy" packets, which
        // GStreamer sends with random bytes) are not talk audio.
        let session = match state.sessions.by_udp_peer(&from) {
            Some(s) => Some(s).filter(|s| {
                crate::state::lock(&s.state).backchannel.as_ref().is_some_and(|b| {
                    matches!(b.transport, crate::session::TrackTransport::Udp { rtp, .. } if rtp == from)
                })
            }),
            None => state.sessions.udp_backchannel_by_ip(from.ip()),
        };
        let Some(session) = session else {
            state
                .counters
                .udp_unknown_source
                .fetch_add(1, Ordering::Relaxed);
            continue;
        };
        session.touch();
        let st = crate::state::lock(&session.state);
        if let Some(b) = &st.backchannel {
            if crate::limits::admit_talk_packet(&state, &b.talker.rate) {
                b.talker.push(bytes::Bytes::copy_from_slice(data));
            }
        }
    }
}

/// Reads RTCP from clients: receiver reports keep their session alive.
pub async fn rtcp_loop(state: Arc<ServerState>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match state.udp.rtcp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                tracing::debug!(error = %e, "RTCP socket receive error");
                continue;
            }
        };
        let Some(data) = buf.get(..n) else { continue };
        handle_rtcp(&state, data, from);
    }
}

/// Accounts one RTCP compound packet from a client (UDP or interleaved).
pub fn handle_rtcp(state: &ServerState, data: &[u8], from: SocketAddr) {
    match parse_compound(data) {
        Ok(pkts) => {
            state.counters.rtcp_received.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = state.sessions.by_udp_peer(&from) {
                s.touch();
            }
            for p in pkts {
                if let RtcpPacket::ReceiverReport { ssrc, reports } = p {
                    for r in reports {
                        tracing::trace!(%from, ssrc, lost = r.cumulative_lost, jitter = r.jitter, "receiver report");
                    }
                }
            }
        }
        Err(e) => {
            state
                .counters
                .rtcp_malformed
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%from, error = %e, "malformed RTCP dropped");
        }
    }
}
