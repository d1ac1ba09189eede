//! Transport negotiation for SETUP (RFC 2326 §12.39, §10.12; ONVIF Streaming "Transports"):
//! which of the client's offers the server takes, and the `Transport` answer.
//!
//! Accepted: unicast `RTP/AVP` over UDP (with `client_port`) and `RTP/AVP/TCP` interleaved
//! (channels chosen by the client, or the first free pair when it names none). Refused:
//! multicast (not offered), other profiles (SAVP, ...). A `destination` elsewhere than the
//! requesting address is ignored: media goes back to the peer that asked, so nobody can aim
//! the server's streams at a third party. The client's `source` is not echoed either.

use std::net::SocketAddr;

use crate::rtsp::headers::{LowerTransport, Transport};

use super::ConnId;

/// How the packets of one track travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `$`-framed inside the RTSP connection `conn` (for a tunnel: its GET connection).
    Interleaved {
        conn: ConnId,
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    /// Unicast UDP between the server's port pair and these client ports.
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

impl Route {
    /// The interleaved channels this route occupies.
    pub fn channels(&self) -> Option<[u8; 2]> {
        match *self {
            Route::Interleaved {
                rtp_channel,
                rtcp_channel,
                ..
            } => Some([rtp_channel, rtcp_channel]),
            Route::Udp { .. } => None,
        }
    }
}

/// The reason phrase of the 461 when no offer is acceptable.
pub const NO_ACCEPTABLE: &str =
    "Unsupported Transport (offered: RTP/AVP unicast UDP with client_port, RTP/AVP/TCP interleaved)";

/// The first acceptable offer: our route and the `Transport` answer (without `ssrc`, which
/// the caller adds). `used` are the interleaved channels already taken in the session;
/// `udp_ports` the server's RTP/RTCP port pair (`None`: UDP is not offered).
pub fn negotiate(
    offers: &[Transport],
    used: &[u8],
    conn: ConnId,
    peer: SocketAddr,
    udp_ports: Option<(u16, u16)>,
) -> Option<(Route, Transport)> {
    offers
        .iter()
        .find_map(|t| accept(t, used, conn, peer, udp_ports))
}

fn accept(
    offer: &Transport,
    used: &[u8],
    conn: ConnId,
    peer: SocketAddr,
    udp_ports: Option<(u16, u16)>,
) -> Option<(Route, Transport)> {
    if offer.multicast || !offer.profile.eq_ignore_ascii_case("RTP/AVP") {
        return None;
    }
    let mut answer = offer.clone();
    answer.unicast = true;
    answer.multicast = false;
    answer.other.clear();
    answer.mode = None;
    answer.destination = None;
    // The client's `source` (its own address) is not ours to confirm: echoed, a client
    // that reads `source` from the answer as the server's address (GStreamer's rtspsrc
    // aims its RTCP there) would talk to itself. The server's address is the connection's.
    answer.source = None;
    match offer.lower {
        LowerTransport::Tcp => {
            let (rtp, rtcp) = match offer.interleaved {
                Some((a, b)) if !used.contains(&a) && !used.contains(&b) => (a, b),
                Some(_) => return None,
                None => {
                    let a = (0..=254u8)
                        .step_by(2)
                        .find(|c| !used.contains(c) && !used.contains(&(c + 1)))?;
                    (a, a + 1)
                }
            };
            answer.interleaved = Some((rtp, rtcp));
            answer.client_port = None;
            answer.server_port = None;
            Some((
                Route::Interleaved {
                    conn,
                    rtp_channel: rtp,
                    rtcp_channel: rtcp,
                },
                answer,
            ))
        }
        LowerTransport::Udp => {
            let (crtp, crtcp) = offer.client_port?;
            answer.server_port = Some(udp_ports?);
            answer.interleaved = None;
            let ip = peer.ip();
            Some((
                Route::Udp {
                    rtp: SocketAddr::new(ip, crtp),
                    rtcp: SocketAddr::new(ip, crtcp),
                },
                answer,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::headers::parse_transports;

    fn neg(value: &str, used: &[u8], udp: bool) -> Option<(Route, String)> {
        let offers = parse_transports(value).unwrap();
        let peer: SocketAddr = "10.0.0.9:40000".parse().unwrap();
        negotiate(&offers, used, 7, peer, udp.then_some((6970, 6971)))
            .map(|(r, t)| (r, t.to_string()))
    }

    #[test]
    fn offers_in_the_clients_order() {
        // (offer, used channels, UDP offered) -> answer
        let cases: &[(&str, &[u8], bool, Option<&str>)] = &[
            (
                "RTP/AVP/TCP;unicast;interleaved=0-1",
                &[],
                true,
                Some("RTP/AVP/TCP;unicast;interleaved=0-1"),
            ),
            // Channels taken by another track: refused (the client named them).
            ("RTP/AVP/TCP;unicast;interleaved=0-1", &[0, 1], true, None),
            // No channels named: the first free pair.
            (
                "RTP/AVP/TCP;unicast",
                &[0, 1],
                true,
                Some("RTP/AVP/TCP;unicast;interleaved=2-3"),
            ),
            (
                "RTP/AVP;unicast;client_port=5000-5001",
                &[],
                true,
                Some("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971"),
            ),
            // UDP not offered by this server: the next offer.
            (
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=4-5",
                &[],
                false,
                Some("RTP/AVP/TCP;unicast;interleaved=4-5"),
            ),
            // UDP without client_port, multicast, SAVP: nothing acceptable.
            ("RTP/AVP;unicast", &[], true, None),
            ("RTP/AVP;multicast;port=5000-5001", &[], true, None),
            ("RTP/SAVP;unicast;client_port=5000-5001", &[], true, None),
            // A destination elsewhere is ignored: media goes to the peer.
            (
                "RTP/AVP;unicast;destination=192.0.2.1;client_port=5000-5001",
                &[],
                true,
                Some("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971"),
            ),
            // The client's own `source` is not echoed.
            (
                "RTP/AVP/TCP;unicast;source=10.0.0.9;interleaved=0-1",
                &[],
                true,
                Some("RTP/AVP/TCP;unicast;interleaved=0-1"),
            ),
        ];
        for (offer, used, udp, want) in cases {
            let got = neg(offer, used, *udp).map(|(_, t)| t);
            assert_eq!(got.as_deref(), *want, "{offer}");
        }
        let (route, _) = neg("RTP/AVP;unicast;client_port=5000-5001", &[], true).unwrap();
        assert_eq!(
            route,
            Route::Udp {
                rtp: "10.0.0.9:5000".parse().unwrap(),
                rtcp: "10.0.0.9:5001".parse().unwrap()
            }
        );
    }
}
