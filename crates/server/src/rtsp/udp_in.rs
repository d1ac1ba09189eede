//! What clients send to the server's UDP port pair: a publisher's RTP and RTCP (routed by
//! the exact source address its SETUP announced), backchannel audio on the RTP port
//! (routed to the session that announced that `client_port`, or the one session talking
//! from that IP address) and receiver reports on the RTCP port, which keep their session
//! alive (RFC 3550 §6.4.2). Anything else is dropped and counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::hub::Hub;
use crate::net::shutdown::Shutdown;

/// Reads the RTP port until shutdown.
pub async fn rtp_loop(hub: Arc<Hub>, mut shutdown: Shutdown) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = tokio::select! {
            r = hub.udp.rtp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "RTP socket receive error");
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let Some(data) = buf.get(..n) else { continue };
        let publisher = hub.core().udp_record(from, false, Instant::now());
        if let Some((session, track)) = publisher {
            hub.publish_packet(&session, track, data, false);
            continue;
        }
        let session = hub.core().udp_talk(from, Instant::now());
        match session {
            Some(s) => hub.talk(&s, bytes::Bytes::copy_from_slice(data)),
            None => {
                hub.counters
                    .udp_unknown_source
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads the RTCP port until shutdown.
pub async fn rtcp_loop(hub: Arc<Hub>, mut shutdown: Shutdown) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = tokio::select! {
            r = hub.udp.rtcp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems.
                    tracing::debug!(error = %e, "RTCP socket receive error");
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let Some(data) = buf.get(..n) else { continue };
        let publisher = hub.core().udp_record(from, true, Instant::now());
        if let Some((session, track)) = publisher {
            hub.publish_packet(&session, track, data, true);
            continue;
        }
        hub.account_rtcp(data, from);
        hub.core().udp_rtcp(from, Instant::now());
    }
}
