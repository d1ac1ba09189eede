//! WebRTC live view and browser talk, offered over WHEP (RFC 9725): `POST /whep/NAME` with
//! an SDP offer creates a peer and answers with the SDP answer; `DELETE` on the `Location`
//! ends it; `POST .../talk` lets the peer's microphone reach the camera's backchannel.
//! The WebRTC stack is str0m (sans-IO: ICE, DTLS, SRTP, RTP packetization; this module
//! feeds it datagrams and frames and sends what it outputs).
//!
//! ```text
//!  browser --UDP--> one socket (`[webrtc] udp_listen`) --route by STUN ufrag, then by
//!                   source address--> peer task (owns its str0m `Rtc`)
//!  camera Stream --Reader--> peer task --H.264/H.265 + G.711/Opus frames--> str0m --> socket
//!  peer's Opus --> RTP --> talk::Talker (same policy and outputs as an RTSP talker)
//! ```
//!
//! - ICE-lite with one host candidate for every peer: the address the browser reached the
//!   HTTP port on (or `[webrtc] public_ip` behind NAT) and the shared UDP port. No STUN or
//!   TURN server of our own, no TCP candidate (browsers that cannot reach the UDP port
//!   fall back to MSE, see `http::live`).
//! - Video passes through without re-encoding: H.264 (packetization-mode 1, the offered
//!   payload type whose profile matches the camera's SPS first), H.265 where the browser
//!   offers it. Audio passes through when the browser takes it: G.711 (PCMU/PCMA 8 kHz) and
//!   Opus from a proxied camera; AAC is not sent (no AAC encoder-free path to Opus).
//! - Talk: the page asks (`POST /whep/NAME/ID/talk`, role operator) before it sends its
//!   microphone; the camera's backchannel policy answers (exclusive: a second talker is
//!   refused with 409 and the owner's name is not revealed).
//!
//! Not here: trickle ICE (`PATCH` answers 405, candidates are all in the answer),
//! simulcast, retransmission of video (RTX/NACK is str0m's default behaviour).

pub mod peer;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use ipcamd_proto::codec::CodecParams;
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::cameras::Cameras;
use crate::net::shutdown::Shutdown;
use crate::sync::lock;

/// `[webrtc]` of the configuration.
#[derive(Debug, Clone)]
pub struct WebRtcOptions {
    /// Serve WHEP (else `/whep/...` answers 404 and the page uses MSE).
    pub enabled: bool,
    /// The UDP address every peer's media goes through (any free port by default here;
    /// the binary's `[webrtc] udp_listen` defaults to 8189).
    pub udp_listen: SocketAddr,
    /// The address announced in the candidate; default: the address the browser reached
    /// the HTTP port on.
    pub public_ip: Option<IpAddr>,
    /// Peers at once (a WHEP POST beyond it gets 503).
    pub max_peers: usize,
}

impl Default for WebRtcOptions {
    fn default() -> Self {
        WebRtcOptions {
            enabled: true,
            udp_listen: ([0, 0, 0, 0], 0).into(),
            public_ip: None,
            max_peers: 64,
        }
    }
}

/// WebRTC counters (`/metrics`, `/api/stats`).
#[derive(Debug, Default)]
pub struct WebRtcStats {
    /// Peers created by a WHEP POST.
    pub peers_created: AtomicU64,
    /// Peers whose ICE and DTLS completed.
    pub peers_connected: AtomicU64,
    /// Video and audio frames handed to str0m.
    pub frames_sent: AtomicU64,
    /// Bytes of datagrams sent.
    pub bytes_sent: AtomicU64,
    /// Datagrams received that matched no peer (or a full peer queue): dropped.
    pub datagrams_unrouted: AtomicU64,
    /// Talk packets from browsers handed to a talker.
    pub talk_packets: AtomicU64,
}

/// Why a WHEP request is refused: an HTTP status and a text for the user.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub text: String,
}

impl Refusal {
    fn new(status: u16, reason: &'static str, text: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            text: text.into(),
        }
    }
}

/// A datagram for one peer, or a request from the HTTP side.
pub enum PeerInput {
    Datagram {
        source: SocketAddr,
        data: Vec<u8>,
    },
    /// Start talking; the answer says whether the backchannel took this peer.
    Talk(oneshot::Sender<Result<(), Refusal>>),
    /// Stop talking (the output is released).
    Mute,
    /// `DELETE`: end the peer.
    End,
}

/// What the socket task and the HTTP side know of one peer.
pub struct PeerLink {
    pub id: String,
    pub camera: String,
    ufrag: String,
    tx: mpsc::Sender<PeerInput>,
    /// Source addresses routed to this peer (bounded: a peer has few candidate pairs).
    addresses: AtomicU64,
}

/// Source addresses one peer may be reached from (ICE tries a few pairs).
const MAX_ADDRESSES_PER_PEER: u64 = 8;
/// Datagrams queued per peer between the socket task and the peer task.
const PEER_QUEUE: usize = 256;

#[derive(Default)]
struct Routes {
    by_id: HashMap<String, Arc<PeerLink>>,
    by_ufrag: HashMap<String, Arc<PeerLink>>,
    by_addr: HashMap<SocketAddr, Arc<PeerLink>>,
}

/// The WebRTC side of the server: the shared UDP socket and the peers.
pub struct WebRtc {
    pub options: WebRtcOptions,
    socket: Arc<UdpSocket>,
    pub port: u16,
    cameras: Cameras,
    routes: Mutex<Routes>,
    pub stats: Arc<WebRtcStats>,
    shutdown: Shutdown,
}

/// Installs str0m's crypto (pure Rust) once per process.
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

impl WebRtc {
    /// Binds the UDP socket (the error names the address) and starts routing datagrams.
    pub async fn start(
        options: WebRtcOptions,
        cameras: Cameras,
        shutdown: Shutdown,
    ) -> std::io::Result<(Arc<WebRtc>, tokio::task::JoinHandle<()>)> {
        install_crypto();
        let socket = UdpSocket::bind(options.udp_listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot bind the WebRTC UDP port {} ([webrtc] udp_listen): {e}",
                    options.udp_listen
                ),
            )
        })?;
        let port = socket.local_addr()?.port();
        let webrtc = Arc::new(WebRtc {
            options,
            socket: Arc::new(socket),
            port,
            cameras,
            routes: Mutex::new(Routes::default()),
            stats: Arc::default(),
            shutdown: shutdown.clone(),
        });
        let task = tokio::spawn(route_datagrams(webrtc.clone(), shutdown));
        Ok((webrtc, task))
    }

    /// The UDP socket's address (as bound: a port 0 is the one the system chose).
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.options.udp_listen.ip(), self.port)
    }

    /// Peers now.
    pub fn peers(&self) -> usize {
        lock(&self.routes).by_id.len()
    }

    /// A WHEP POST: a peer for `camera` from the browser's `offer`; `local` is the address
    /// the browser reached the HTTP port on. Returns the peer's id and the SDP answer.
    pub fn create(
        self: &Arc<Self>,
        camera: &str,
        offer: &str,
        local: IpAddr,
    ) -> Result<(String, String), Refusal> {
        let cam = self
            .cameras
            .get(camera)
            .ok_or_else(|| Refusal::new(404, "Not Found", format!("no camera named {camera:?}")))?;
        let tracks = cam.stream.tracks();
        let video = tracks
            .iter()
            .position(|t| matches!(t.codec, CodecParams::H264 { .. } | CodecParams::H265 { .. }));
        let Some(video) = video else {
            return Err(Refusal::new(
                422,
                "Unprocessable Content",
                format!("camera {camera:?} has no H.264 or H.265 video (WebRTC carries no MJPEG)"),
            ));
        };
        if self.peers() >= self.options.max_peers {
            return Err(Refusal::new(
                503,
                "Service Unavailable",
                format!(
                    "{} WebRTC peers already ([webrtc] max_peers); try again later",
                    self.options.max_peers
                ),
            ));
        }
        let h265 = matches!(tracks[video].codec, CodecParams::H265 { .. });
        let ip = self.options.public_ip.unwrap_or(local);
        let Answered {
            rtc,
            answer,
            ufrag,
            local_addr,
            browser_sends_audio,
        } = answer_offer(offer, h265, SocketAddr::new(ip, self.port), Instant::now())?;
        let id = format!("{:032x}", rand::random::<u128>());
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let link = Arc::new(PeerLink {
            id: id.clone(),
            camera: camera.to_owned(),
            ufrag: ufrag.clone(),
            tx,
            addresses: AtomicU64::new(0),
        });
        {
            let mut routes = lock(&self.routes);
            routes.by_id.insert(id.clone(), link.clone());
            routes.by_ufrag.insert(ufrag, link.clone());
        }
        self.stats.peers_created.fetch_add(1, Ordering::Relaxed);
        let parts = peer::PeerParts {
            rtc,
            link,
            local_addr,
            video,
            camera: cam.clone(),
            browser_sends_audio,
            socket: self.socket.clone(),
            stats: self.stats.clone(),
        };
        let me = self.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let id = parts.link.id.clone();
            peer::run(parts, rx, shutdown).await;
            me.forget(&id);
        });
        tracing::info!(camera, peer = %id, candidate = %local_addr, "WebRTC peer created");
        Ok((id, answer))
    }

    /// Sends `input` to peer `id` of `camera`.
    async fn send(&self, camera: &str, id: &str, input: PeerInput) -> Result<(), Refusal> {
        let link = lock(&self.routes)
            .by_id
            .get(id)
            .filter(|l| l.camera == camera)
            .cloned()
            .ok_or_else(|| {
                Refusal::new(
                    404,
                    "Not Found",
                    format!("no WebRTC session {id} of {camera:?}"),
                )
            })?;
        link.tx
            .send(input)
            .await
            .map_err(|_| Refusal::new(404, "Not Found", "the WebRTC session has ended"))
    }

    /// `DELETE /whep/NAME/ID`.
    pub async fn end(&self, camera: &str, id: &str) -> Result<(), Refusal> {
        self.send(camera, id, PeerInput::End).await
    }

    /// `POST /whep/NAME/ID/talk`: the backchannel's answer.
    pub async fn talk(&self, camera: &str, id: &str) -> Result<(), Refusal> {
        let (tx, rx) = oneshot::channel();
        self.send(camera, id, PeerInput::Talk(tx)).await?;
        rx.await
            .map_err(|_| Refusal::new(404, "Not Found", "the WebRTC session has ended"))?
    }

    /// `DELETE /whep/NAME/ID/talk`.
    pub async fn mute(&self, camera: &str, id: &str) -> Result<(), Refusal> {
        self.send(camera, id, PeerInput::Mute).await
    }

    fn forget(&self, id: &str) {
        let mut routes = lock(&self.routes);
        if let Some(link) = routes.by_id.remove(id) {
            routes.by_ufrag.remove(&link.ufrag);
            routes.by_addr.retain(|_, l| l.id != id);
        }
    }

    /// The peer a datagram from `source` belongs to: by address once known, else by the
    /// ufrag of its ICE check (which then binds the address).
    fn route(&self, source: SocketAddr, data: &[u8]) -> Option<Arc<PeerLink>> {
        let mut routes = lock(&self.routes);
        if let Some(l) = routes.by_addr.get(&source) {
            return Some(l.clone());
        }
        let ufrag = ipcamd_proto::stun::local_ufrag(data)?;
        let link = routes.by_ufrag.get(ufrag)?.clone();
        if link.addresses.fetch_add(1, Ordering::Relaxed) < MAX_ADDRESSES_PER_PEER {
            routes.by_addr.insert(source, link.clone());
        }
        Some(link)
    }
}

/// What str0m made of a browser's WHEP offer.
pub struct Answered {
    /// The peer's WebRTC engine, the offer accepted.
    pub rtc: Rtc,
    /// The SDP answer.
    pub answer: String,
    /// The answer's ICE ufrag: the browser's STUN checks carry it, which routes its
    /// datagrams to the peer.
    pub ufrag: String,
    /// Our one host candidate.
    pub local_addr: SocketAddr,
    /// The offer has an audio section the browser sends on (the talk button).
    pub browser_sends_audio: bool,
}

/// The part of a WHEP POST that reads the browser's offer (anyone who may watch sends it):
/// str0m's answer for a camera whose video is H.265 (`h265`) or H.264, with one host
/// candidate at `candidate`. No socket and no task, so that it is fuzzed as it runs
/// (`fuzz/fuzz_targets/whep_offer.rs`). An offer that does not parse, or that str0m cannot
/// answer, is a 400 that says why.
///
/// str0m 0.24 asserts on some offers no browser sends (a payload type that two sections
/// map to different codecs: finding 11 in docs/fuzzing.md). Such a panic is caught here
/// and is that offer's 400, instead of a connection dropped without an answer.
pub fn answer_offer(
    offer: &str,
    h265: bool,
    candidate: SocketAddr,
    now: Instant,
) -> Result<Answered, Refusal> {
    std::panic::catch_unwind(|| str0m_answer(offer, h265, candidate, now)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(Refusal::new(
            400,
            "Bad Request",
            format!("cannot answer the SDP offer (str0m gave up on it: {why})"),
        ))
    })
}

/// [`answer_offer`] without its guard.
fn str0m_answer(
    offer: &str,
    h265: bool,
    candidate: SocketAddr,
    now: Instant,
) -> Result<Answered, Refusal> {
    let browser_sends_audio = offer_sends_audio(offer);
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| {
        Refusal::new(
            400,
            "Bad Request",
            format!("the SDP offer does not parse: {e}"),
        )
    })?;
    let mut rtc: Rtc = Rtc::builder()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(!h265)
        .enable_h265(h265)
        .enable_opus(true, false)
        .enable_pcmu(true, false)
        .enable_pcma(true, false)
        .build(now);
    let candidate = Candidate::host(candidate, "udp").map_err(|e| {
        Refusal::new(
            500,
            "Internal Server Error",
            format!("cannot make a host candidate for {}: {e}", candidate.ip()),
        )
    })?;
    let local_addr = candidate.addr();
    rtc.add_local_candidate(candidate);
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| {
        Refusal::new(
            400,
            "Bad Request",
            format!("cannot answer the SDP offer: {e}"),
        )
    })?;
    let answer = answer.to_sdp_string();
    // A live view without video is no live view: an offer with no video section str0m
    // takes (none, unreadable, or none with the camera's codec) is refused here, and the
    // page falls back to MSE at once. Finding 12 in docs/fuzzing.md: such answers had no
    // media section at all (then a 500 for the missing ICE ufrag, as if the server were at
    // fault), or an audio section without the server's candidate (a 201 the browser could
    // never connect with).
    let video_taken = answer.lines().any(|l| {
        l.strip_prefix("m=video ")
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|port| port != "0")
    });
    if !video_taken {
        return Err(Refusal::new(
            400,
            "Bad Request",
            format!(
                "cannot answer the SDP offer: no video section of it takes {}",
                if h265 { "H.265" } else { "H.264" }
            ),
        ));
    }
    let ufrag = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
        .ok_or_else(|| Refusal::new(500, "Internal Server Error", "the answer has no ICE ufrag"))?;
    Ok(Answered {
        rtc,
        answer,
        ufrag,
        local_addr,
        browser_sends_audio,
    })
}

/// Whether an SDP offer has an audio section the offerer sends on (`a=sendrecv`,
/// `a=sendonly`, or no direction attribute, which means sendrecv).
fn offer_sends_audio(sdp: &str) -> bool {
    let mut in_audio = false;
    let mut sends = false;
    let mut any = false;
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            if in_audio && sends {
                return true;
            }
            in_audio = line.starts_with("m=audio");
            sends = true;
            any |= in_audio;
        } else if in_audio && (line == "a=recvonly" || line == "a=inactive") {
            sends = false;
        }
    }
    any && in_audio && sends
}

/// The socket task: every datagram to its peer's queue; the rest dropped and counted.
async fn route_datagrams(webrtc: Arc<WebRtc>, mut shutdown: Shutdown) {
    let mut buf = vec![0u8; 2048];
    loop {
        let got = tokio::select! {
            r = webrtc.socket.recv_from(&mut buf) => r,
            _ = shutdown.wait() => return,
        };
        let (n, source) = match got {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors (a browser gone) surface here on Linux; not fatal.
                tracing::debug!(error = %e, "WebRTC UDP receive error");
                continue;
            }
        };
        let data = &buf[..n];
        let delivered = webrtc.route(source, data).is_some_and(|link| {
            link.tx
                .try_send(PeerInput::Datagram {
                    source,
                    data: data.to_vec(),
                })
                .is_ok()
        });
        if !delivered {
            webrtc
                .stats
                .datagrams_unrouted
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{answer_offer, offer_sends_audio, Refusal};
    use std::net::SocketAddr;
    use std::time::Instant;

    /// Our candidate in these tests.
    const AT: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        8189,
    );

    /// A WHEP offer from the fuzz seeds (the first byte is the fuzz target's codec pick).
    fn seed(bytes: &[u8]) -> &str {
        std::str::from_utf8(&bytes[1..]).expect("seed is text")
    }

    /// Why `offer` is refused for a camera whose video is H.265 (`h265`) or H.264.
    fn refused(offer: &str, h265: bool) -> Refusal {
        match answer_offer(offer, h265, AT, Instant::now()) {
            Ok(_) => panic!("answered"),
            Err(e) => e,
        }
    }

    #[test]
    fn an_aiortc_offer_is_answered() {
        let talk = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/aiortc-talk"
        ));
        let a = answer_offer(talk, false, AT, Instant::now()).expect("answered");
        assert!(a.browser_sends_audio);
        assert!(a.answer.contains("H264/90000"), "{}", a.answer);
        assert!(a.answer.contains(&format!("a=ice-ufrag:{}", a.ufrag)));
        assert!(a.answer.contains("192.0.2.1 8189 typ host"), "{}", a.answer);
        let watch = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/aiortc-recvonly"
        ));
        let a = answer_offer(watch, false, AT, Instant::now()).expect("answered");
        assert!(!a.browser_sends_audio);
    }

    #[test]
    fn an_offer_str0m_panics_on_is_a_400() {
        // Finding 11 of the whep_offer fuzz target: str0m 0.24 asserts when this offer's
        // audio section maps payload type 99 (H.264 in the video section) again.
        let offer = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/regression-pt-claimed-twice"
        ));
        let e = refused(offer, false);
        assert_eq!(e.status, 400);
        assert!(
            e.text
                .contains("str0m gave up on it: Pt locked multiple times: 99"),
            "{}",
            e.text
        );
    }

    #[test]
    fn an_offer_without_a_video_section_to_take_is_a_400() {
        // Finding 12: the video section unreadable ("m=idove ..."), the audio answered,
        // and the answer had no candidate: a 201 the browser could never connect with.
        let offer = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/regression-audio-only-answer"
        ));
        let e = refused(offer, false);
        assert_eq!(e.status, 400);
        assert_eq!(
            e.text,
            "cannot answer the SDP offer: no video section of it takes H.264"
        );
        // aiortc offers H.264 only: a camera whose video is H.265 gets the same 400.
        let talk = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/aiortc-talk"
        ));
        let e = refused(talk, true);
        assert_eq!(
            e.text,
            "cannot answer the SDP offer: no video section of it takes H.265"
        );
    }

    #[test]
    fn an_offer_without_a_readable_media_section_is_a_400() {
        // Finding 12 too: no `m=` line str0m reads ("m=vid oe46560 ..."); its answer had
        // no section, so no ICE ufrag, and the server answered 500 as if it were at fault.
        let offer = seed(include_bytes!(
            "../../../../fuzz/seeds/whep_offer/regression-no-media-section"
        ));
        let e = refused(offer, false);
        assert_eq!(e.status, 400);
        assert_eq!(
            e.text,
            "cannot answer the SDP offer: no video section of it takes H.264"
        );
    }

    #[test]
    fn the_audio_direction_of_an_offer() {
        let sendrecv = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n";
        assert!(offer_sends_audio(sendrecv));
        let recvonly = sendrecv.replace("a=sendrecv", "a=recvonly");
        assert!(!offer_sends_audio(&recvonly));
        // No direction attribute: sendrecv. Audio first, video after.
        assert!(offer_sends_audio(
            "m=audio 9 X 111\r\nm=video 9 X 96\r\na=recvonly\r\n"
        ));
        assert!(!offer_sends_audio("m=video 9 X 96\r\na=sendrecv\r\n"));
        assert!(!offer_sends_audio(""));
    }
}
