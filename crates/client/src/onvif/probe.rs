//! WS-Discovery over UDP, the client side (ONVIF Core §7; SOAP-over-UDP): send one Probe
//! for `dn:NetworkVideoTransmitter` to the multicast group (or to given addresses), and
//! collect the ProbeMatches that devices answer by unicast until a deadline. The messages
//! are `ipcamd_onvif::discovery`'s.
//!
//! The Probe goes out twice (at once and 250 ms later, with the same MessageID, as
//! SOAP-over-UDP §3.4 repeats multicast messages): one lost datagram does not hide a
//! device. Answers naming another Probe in `RelatesTo` are ignored; devices are told
//! apart by their endpoint reference address.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipcamd_onvif::discovery::{
    parse_probe_matches, probe_message, scope_value, urn_uuid, ProbeMatch, MULTICAST_V4, PORT,
};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::error::ClientError;

/// Where a Probe goes by default: `239.255.255.250:3702`.
pub const MULTICAST_TARGET: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::new(
        MULTICAST_V4[0],
        MULTICAST_V4[1],
        MULTICAST_V4[2],
        MULTICAST_V4[3],
    )),
    PORT,
);

/// When the Probe is sent again.
const REPEAT_AFTER: Duration = Duration::from_millis(250);

/// A device that answered the Probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredDevice {
    /// Endpoint reference address (`urn:uuid:...`), stable across restarts.
    pub endpoint: String,
    /// Device service addresses, as the device gave them.
    pub xaddrs: Vec<String>,
    /// Types as (namespace, local name): `dn:NetworkVideoTransmitter`, `tds:Device`...
    pub types: Vec<(String, String)>,
    pub scopes: Vec<String>,
    /// From the `onvif://www.onvif.org/name/...` scope, decoded.
    pub name: Option<String>,
    /// From the `onvif://www.onvif.org/hardware/...` scope, decoded.
    pub hardware: Option<String>,
    /// Where the first answer came from.
    pub from: SocketAddr,
}

impl DiscoveredDevice {
    fn new(m: ProbeMatch, from: SocketAddr) -> DiscoveredDevice {
        DiscoveredDevice {
            name: scope_value(&m.scopes, "name"),
            hardware: scope_value(&m.scopes, "hardware"),
            endpoint: m.endpoint,
            xaddrs: m.xaddrs,
            types: m.types,
            scopes: m.scopes,
            from,
        }
    }

    /// The device service address to use: the first `http://` one with an IPv4 host,
    /// else the first `http://` one.
    pub fn device_url(&self) -> Option<&str> {
        let http = || {
            self.xaddrs
                .iter()
                .filter(|x| x.to_ascii_lowercase().starts_with("http://"))
        };
        http()
            .find(|x| !x.contains('['))
            .or_else(|| http().next())
            .map(String::as_str)
    }
}

/// Sends a WS-Discovery Probe to each of `targets` (none: the multicast group
/// [`MULTICAST_TARGET`]) and returns the devices that answered within `timeout`, in the
/// order of their first answer, one entry per endpoint address.
pub async fn probe(
    targets: &[SocketAddr],
    timeout: Duration,
) -> Result<Vec<DiscoveredDevice>, ClientError> {
    let targets: Vec<SocketAddr> = if targets.is_empty() {
        vec![MULTICAST_TARGET]
    } else {
        targets.to_vec()
    };
    let message_id = urn_uuid(rand::random());
    let datagram = probe_message(&message_id);
    let deadline = Instant::now() + timeout;
    let (v4, v6): (Vec<SocketAddr>, Vec<SocketAddr>) = targets.iter().partition(|t| t.is_ipv4());
    let (a, b) = tokio::join!(
        probe_family(&v4, &datagram, &message_id, deadline),
        probe_family(&v6, &datagram, &message_id, deadline)
    );
    let mut devices: Vec<DiscoveredDevice> = Vec::new();
    for (m, from) in a?.into_iter().chain(b?) {
        let key = |d: &DiscoveredDevice| {
            if d.endpoint.is_empty() {
                d.xaddrs.first().cloned().unwrap_or_default()
            } else {
                d.endpoint.clone()
            }
        };
        let found = DiscoveredDevice::new(m, from);
        match devices.iter_mut().find(|d| key(d) == key(&found)) {
            Some(known) => {
                for x in found.xaddrs {
                    if !known.xaddrs.contains(&x) {
                        known.xaddrs.push(x);
                    }
                }
            }
            None => devices.push(found),
        }
    }
    Ok(devices)
}

/// The Probe over one socket of the address family of `targets` (all of one family).
async fn probe_family(
    targets: &[SocketAddr],
    datagram: &str,
    message_id: &str,
    deadline: Instant,
) -> Result<Vec<(ProbeMatch, SocketAddr)>, ClientError> {
    let Some(first) = targets.first() else {
        return Ok(Vec::new());
    };
    let bind: SocketAddr = if first.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| {
        ClientError::io(
            format!("binding a UDP socket on {bind} for WS-Discovery"),
            e,
        )
    })?;
    if first.is_ipv4() {
        // A device on this host hears our multicast too.
        let _ = socket.set_multicast_loop_v4(true);
    }
    let send_all = || async {
        let mut sent = 0;
        let mut last_error = None;
        for t in targets {
            match socket.send_to(datagram.as_bytes(), t).await {
                Ok(_) => sent += 1,
                Err(e) => {
                    tracing::warn!(target_addr = %t, error = %e, "cannot send the WS-Discovery Probe");
                    last_error = Some((*t, e));
                }
            }
        }
        (sent, last_error)
    };
    let (sent, last_error) = send_all().await;
    if sent == 0 {
        if let Some((t, e)) = last_error {
            let hint = if t.ip().is_multicast() {
                " (no route for multicast on this host? give the devices' addresses to probe instead)"
            } else {
                ""
            };
            return Err(ClientError::io(
                format!("sending the WS-Discovery Probe to {t}{hint}"),
                e,
            ));
        }
    }
    tracing::debug!(?targets, message_id, "WS-Discovery Probe sent");
    let mut repeat_at = Some(Instant::now() + REPEAT_AFTER);
    let mut found = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let wake = match repeat_at {
            Some(r) if r < deadline => r,
            _ => deadline,
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, peer) = r.map_err(|e| ClientError::io("receiving WS-Discovery answers", e))?;
                match parse_probe_matches(&buf[..n]) {
                    Ok(Some(m)) => {
                        if m.relates_to.as_deref().is_some_and(|r| r != message_id) {
                            tracing::debug!(%peer, relates_to = ?m.relates_to, "ProbeMatches for another Probe");
                            continue;
                        }
                        for one in m.matches {
                            tracing::debug!(%peer, endpoint = %one.endpoint, xaddrs = ?one.xaddrs, "ProbeMatch");
                            found.push((one, peer));
                        }
                    }
                    Ok(None) => tracing::debug!(%peer, "WS-Discovery message other than ProbeMatches"),
                    Err(e) => tracing::debug!(%peer, error = %e, "unreadable WS-Discovery answer"),
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if wake >= deadline {
                    return Ok(found);
                }
                repeat_at = None;
                send_all().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_onvif::discovery::{parse_probe, probe_matches, Announce};

    fn announce(endpoint: &str, xaddrs: &str) -> Announce {
        Announce {
            endpoint: endpoint.into(),
            xaddrs: xaddrs.into(),
            scopes: vec![
                "onvif://www.onvif.org/name/Front%20Door".into(),
                "onvif://www.onvif.org/hardware/X1".into(),
            ],
            metadata_version: 1,
        }
    }

    /// A fake device on loopback answers each Probe twice and adds an answer to another
    /// Probe and some garbage; the client keeps one entry per device.
    #[tokio::test]
    async fn collects_and_deduplicates() {
        let device = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = device.local_addr().unwrap();
        let responder = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let mut probes = 0;
            while probes < 2 {
                let (n, peer) = device.recv_from(&mut buf).await.unwrap();
                let p = parse_probe(&buf[..n]).unwrap().unwrap();
                probes += 1;
                let a = announce("urn:uuid:a", "http://127.0.0.1:1/onvif/device_service");
                for _ in 0..2 {
                    let m = probe_matches(&p, &a, "urn:uuid:m");
                    device.send_to(m.as_bytes(), peer).await.unwrap();
                }
                let other = ipcamd_onvif::discovery::Probe {
                    message_id: "urn:uuid:someone-else".into(),
                    ..p.clone()
                };
                let b = announce("urn:uuid:b", "http://127.0.0.1:2/onvif/device_service");
                let m = probe_matches(&other, &b, "urn:uuid:n");
                device.send_to(m.as_bytes(), peer).await.unwrap();
                device.send_to(b"<garbage", peer).await.unwrap();
            }
            probes
        });
        let found = probe(&[addr], Duration::from_millis(600)).await.unwrap();
        assert_eq!(responder.await.unwrap(), 2, "the Probe is sent twice");
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &found[0];
        assert_eq!(d.endpoint, "urn:uuid:a");
        assert_eq!(d.name.as_deref(), Some("Front Door"));
        assert_eq!(d.hardware.as_deref(), Some("X1"));
        assert_eq!(d.from, addr);
        assert_eq!(
            d.device_url(),
            Some("http://127.0.0.1:1/onvif/device_service")
        );
    }

    #[tokio::test]
    async fn nobody_answers() {
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let t0 = Instant::now();
        let found = probe(&[addr], Duration::from_millis(300)).await.unwrap();
        assert!(found.is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn device_url_prefers_http_ipv4() {
        let d = DiscoveredDevice {
            endpoint: String::new(),
            xaddrs: vec![
                "https://10.0.0.5/onvif/device_service".into(),
                "http://[fe80::1]/onvif/device_service".into(),
                "http://10.0.0.5/onvif/device_service".into(),
            ],
            types: Vec::new(),
            scopes: Vec::new(),
            name: None,
            hardware: None,
            from: MULTICAST_TARGET,
        };
        assert_eq!(d.device_url(), Some("http://10.0.0.5/onvif/device_service"));
    }
}
