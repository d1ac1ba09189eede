//! `whep` mode: N WebRTC viewers of one camera over WHEP (RFC 9725), each a str0m peer
//! (full ICE, DTLS, SRTP) on its own loopback UDP socket, receiving video frames for a
//! while. Reports frames and bytes received, POST-to-first-frame, and with `--server-pid`
//! the server's CPU seconds over the steady window.
//!
//! str0m is the client here (the server uses it too, but through its own code paths: the
//! client offers, does full ICE and depacketizes; what is measured is the server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[derive(Default, Clone)]
pub struct PeerStats {
    pub frames: u64,
    pub window_frames: u64,
    pub bytes: u64,
    pub first_frame: Option<Duration>,
    pub error: Option<String>,
}

/// `POST url` with an SDP body; returns (status, Location, body).
async fn post_sdp(url: &str, sdp: &str) -> Result<(u16, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the WHEP URL must be http://HOST:PORT/whep/NAME")?;
    let (host, path) = rest.split_once('/').ok_or("no path in the WHEP URL")?;
    let mut s = TcpStream::connect(host)
        .await
        .map_err(|e| format!("connect {host}: {e}"))?;
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
        sdp.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let location = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    Ok((status, location, body.to_owned()))
}

/// One viewer until `until`; frames after `steady_at` count in the window.
pub async fn peer(url: String, start_at: Instant, steady_at: Instant, until: Instant) -> PeerStats {
    tokio::time::sleep_until(start_at.into()).await;
    let mut st = PeerStats::default();
    if let Err(e) = peer_inner(&url, steady_at, until, &mut st).await {
        st.error = Some(e);
    }
    st
}

async fn peer_inner(
    url: &str,
    steady_at: Instant,
    until: Instant,
    st: &mut PeerStats,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind UDP: {e}"))?;
    let local: SocketAddr = socket.local_addr().map_err(|e| e.to_string())?;
    let mut rtc: Rtc = Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .enable_pcmu(true, false)
        .enable_opus(true, false)
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().ok_or("no offer")?;
    let posted = Instant::now();
    let (status, _, answer) = post_sdp(url, &offer.to_sdp_string()).await?;
    if status != 201 {
        return Err(format!("WHEP POST: {status} {}", answer.trim()));
    }
    let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = loop {
            match rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::MediaData(d)) => {
                    if d.params.spec().codec.is_video() {
                        st.frames += 1;
                        if Instant::now() >= steady_at {
                            st.window_frames += 1;
                        }
                        st.first_frame.get_or_insert_with(|| posted.elapsed());
                    }
                }
                Output::Event(_) => {}
            }
        };
        if Instant::now() >= until {
            return Ok(());
        }
        let wake = deadline.min(until);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.map_err(|e| e.to_string())?;
                st.bytes += n as u64;
                let Ok(contents) = buf[..n].try_into() else { continue };
                let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents });
                rtc.handle_input(input).map_err(|e| e.to_string())?;
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Runs `n` viewers started `ramp` per second; returns their stats and the steady window.
pub async fn run(
    url: &str,
    n: usize,
    ramp: f64,
    settle: f64,
    duration: f64,
) -> (Vec<PeerStats>, Instant, Instant) {
    str0m::crypto::from_feature_flags().install_process_default();
    let t0 = Instant::now() + Duration::from_millis(100);
    let step = if ramp > 0.0 { 1.0 / ramp } else { 0.0 };
    let last = t0 + Duration::from_secs_f64(step * n as f64);
    let steady_at = last + Duration::from_secs_f64(settle);
    let until = steady_at + Duration::from_secs_f64(duration);
    let url = Arc::new(url.to_owned());
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let at = t0 + Duration::from_secs_f64(step * i as f64);
            tokio::spawn(peer((*url).clone(), at, steady_at, until))
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| PeerStats {
            error: Some(e.to_string()),
            ..PeerStats::default()
        }));
    }
    (out, steady_at, until)
}
