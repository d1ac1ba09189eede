//! WS-Discovery (ONVIF Core "Device discovery"): a UDP task on port 3702 (configurable)
//! that answers Probe with ProbeMatches, sends Hello at start, again (with a higher
//! MetadataVersion) when the scopes change, and Bye at shutdown. The messages are the
//! sans-IO `ipcamd_onvif::discovery`'s.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ipcamd_onvif::discovery::{self, Announce};

use super::model::scopes;
use super::Onvif;

/// The running discovery task: its socket (for Bye) and what it announces.
pub struct Discovery {
    /// The same socket as the probe loop's, in std form, for Hello and Bye (a fresh
    /// tokio socket is not yet known to be writable, so `try_send_to` would refuse).
    sender: StdUdpSocket,
    announce: Announce,
    port: u16,
    task: tokio::task::JoinHandle<()>,
    hellos: tokio::task::JoinHandle<()>,
}

fn multicast_dest(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(discovery::MULTICAST_V4), port))
}

/// The local address this host uses to reach `peer` (no packet is sent).
fn local_ip_towards(peer: SocketAddr) -> Option<IpAddr> {
    let s = StdUdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

fn announce_for(onvif: &Onvif, ip: IpAddr) -> Announce {
    let http_port = onvif.http_addr.map(|a| a.port()).unwrap_or(80);
    let ip = match onvif.http_addr.map(|a| a.ip()) {
        Some(bound) if !bound.is_unspecified() => bound,
        _ => ip,
    };
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let state = onvif.state.get();
    Announce {
        endpoint: onvif.endpoint.clone(),
        xaddrs: format!("http://{host}:{http_port}/onvif/device_service"),
        // The fixed scopes, then those set over ONVIF (SetScopes/AddScopes).
        scopes: scopes(&onvif.options)
            .into_iter()
            .chain(state.scopes)
            .collect(),
        metadata_version: state.metadata_version.unwrap_or(1),
    }
}

fn random_urn() -> String {
    discovery::urn_uuid(rand::random())
}

impl Discovery {
    /// Binds UDP `port` (address reuse on, so that other WS-Discovery services on the host
    /// can share it), joins 239.255.255.250, sends Hello and answers probes.
    pub fn start(onvif: Arc<Onvif>, port: u16) -> std::io::Result<Discovery> {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        sock.set_reuse_address(true)?;
        #[cfg(unix)]
        sock.set_reuse_port(true)?;
        sock.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot bind WS-Discovery UDP port {port}: {e}"),
                )
            })?;
        if let Err(e) = sock.join_multicast_v4(
            &Ipv4Addr::from(discovery::MULTICAST_V4),
            &Ipv4Addr::UNSPECIFIED,
        ) {
            tracing::warn!(error = %e, "cannot join the WS-Discovery multicast group; answering unicast probes only");
        }
        let _ = sock.set_multicast_loop_v4(true);
        let sender: StdUdpSocket = sock.try_clone()?.into();
        sock.set_nonblocking(true)?;
        let socket = Arc::new(tokio::net::UdpSocket::from_std(sock.into())?);
        let dest = multicast_dest(port);
        let ip = local_ip_towards(dest).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let announce = announce_for(&onvif, ip);
        let hello = discovery::hello(&announce, &random_urn());
        match sender.send_to(hello.as_bytes(), dest) {
            Ok(_) => tracing::info!(xaddrs = %announce.xaddrs, port, "WS-Discovery Hello sent"),
            Err(e) => tracing::warn!(error = %e, "cannot send the WS-Discovery Hello"),
        }
        let hellos = tokio::spawn(hello_on_change(onvif.clone(), socket.clone(), dest, ip));
        let task = tokio::spawn(probe_loop(onvif, socket.clone()));
        Ok(Discovery {
            sender,
            announce,
            port,
            task,
            hellos,
        })
    }

    /// Sends Bye and stops answering.
    pub fn stop(self) {
        let bye = discovery::bye(&self.announce, &random_urn());
        match self
            .sender
            .send_to(bye.as_bytes(), multicast_dest(self.port))
        {
            Ok(_) => tracing::info!("WS-Discovery Bye sent"),
            Err(e) => tracing::warn!(error = %e, "cannot send the WS-Discovery Bye"),
        }
        self.task.abort();
        self.hellos.abort();
    }
}

/// Multicasts a Hello with the new scopes and MetadataVersion whenever they change
/// (WS-Discovery: a target service announces changed metadata with Hello).
async fn hello_on_change(
    onvif: Arc<Onvif>,
    socket: Arc<tokio::net::UdpSocket>,
    dest: SocketAddr,
    ip: IpAddr,
) {
    loop {
        onvif.scopes_changed.notified().await;
        let announce = announce_for(&onvif, ip);
        let hello = discovery::hello(&announce, &random_urn());
        match socket.send_to(hello.as_bytes(), dest).await {
            Ok(_) => tracing::info!(
                metadata_version = announce.metadata_version,
                "WS-Discovery Hello sent (scopes changed)"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot send the WS-Discovery Hello"),
        }
    }
}

async fn probe_loop(onvif: Arc<Onvif>, socket: Arc<tokio::net::UdpSocket>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "WS-Discovery receive error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        let probe = match discovery::parse_probe(datagram) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                onvif.probes_malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, error = %e, "malformed WS-Discovery message");
                continue;
            }
        };
        onvif.probes.fetch_add(1, Ordering::Relaxed);
        let ip = local_ip_towards(peer).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let announce = announce_for(&onvif, ip);
        if !discovery::matches(&probe, &announce) {
            tracing::debug!(%peer, types = ?probe.types, scopes = ?probe.scopes, "WS-Discovery probe for something else");
            continue;
        }
        let reply = discovery::probe_matches(&probe, &announce, &random_urn());
        if let Err(e) = socket.send_to(reply.as_bytes(), peer).await {
            tracing::debug!(%peer, error = %e, "cannot answer a WS-Discovery probe");
        } else {
            tracing::debug!(%peer, "WS-Discovery ProbeMatches sent");
        }
    }
}
