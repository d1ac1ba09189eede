//! One WebRTC peer: a task that owns its str0m `Rtc` and turns what arrives (datagrams,
//! camera frames, the HTTP side's requests, str0m's deadlines) into what str0m outputs
//! (datagrams to send, events). It subscribes to the camera once ICE and DTLS are
//! connected, so the browser starts at the current GOP's keyframe.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ipcamd_media::fanout::{Frame, Next, Reader};
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_proto::packet::opaque;
use ipcamd_proto::rtp::{write_rtp, RtpHeader};
use ipcamd_proto::rtsp::server::TalkRefusal;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{PeerInput, PeerLink, Refusal, WebRtcStats};
use crate::cameras::Camera;
use crate::net::shutdown::Shutdown;
use crate::talk::{acquire_talk, Talker};

/// A peer that is not connected this long after its answer is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`super::WebRtc::create`] hands the peer task.
pub struct PeerParts {
    pub rtc: Rtc,
    pub link: Arc<PeerLink>,
    /// Our candidate's address (the destination of every datagram for this peer).
    pub local_addr: SocketAddr,
    /// The camera's video track.
    pub video: usize,
    pub camera: Camera,
    /// The offer's audio is `sendrecv` or `sendonly`: the browser may talk.
    pub browser_sends_audio: bool,
    pub socket: Arc<UdpSocket>,
    pub stats: Arc<WebRtcStats>,
}

/// Where each camera track goes in the peer: its mid and payload type.
#[derive(Default)]
struct Plan {
    video: Option<(Mid, Pt)>,
    /// (camera track, mid, payload type, clock rate)
    audio: Option<(usize, Mid, Pt, u32)>,
}

/// The browser's microphone on its way to the camera's backchannel.
struct Talk {
    talker: Talker,
    session: String,
    payload_type: u8,
    seq: u16,
    ssrc: u32,
}

struct Peer {
    p: PeerParts,
    video_mid: Option<Mid>,
    /// The audio section and whether the browser sends on it.
    audio_mid: Option<(Mid, bool)>,
    connected: bool,
    reader: Option<Reader>,
    plan: Plan,
    talk: Option<Talk>,
}

/// Runs the peer until the browser leaves (ICE disconnected), `DELETE`, the camera's
/// stream closes, or shutdown.
pub async fn run(parts: PeerParts, mut rx: mpsc::Receiver<PeerInput>, mut shutdown: Shutdown) {
    let started = Instant::now();
    let mut peer = Peer {
        p: parts,
        video_mid: None,
        audio_mid: None,
        connected: false,
        reader: None,
        plan: Plan::default(),
        talk: None,
    };
    let camera = peer.p.camera.name.clone();
    let id = peer.p.link.id.clone();
    let why = loop {
        let deadline = match peer.drain() {
            Ok(d) => d,
            Err(why) => break why,
        };
        if !peer.connected && started.elapsed() > CONNECT_TIMEOUT {
            break format!(
                "not connected {} s after the answer (the browser could not reach UDP {}?)",
                CONNECT_TIMEOUT.as_secs(),
                peer.p.local_addr
            );
        }
        let wake =
            tokio::time::Instant::from_std(deadline.min(Instant::now() + Duration::from_secs(1)));
        tokio::select! {
            input = rx.recv() => match input {
                Some(PeerInput::Datagram { source, data }) => peer.receive(source, &data),
                Some(PeerInput::Talk(reply)) => {
                    let answer = peer.start_talk().await;
                    let _ = reply.send(answer);
                }
                Some(PeerInput::Mute) => peer.stop_talk(),
                Some(PeerInput::End) | None => break "ended by DELETE".to_owned(),
            },
            next = next_frame(&mut peer.reader) => match next {
                Next::Frame(f) => peer.send_frame(&f),
                Next::Closed => break "the camera's stream closed".to_owned(),
            },
            _ = tokio::time::sleep_until(wake) => {
                if let Err(e) = peer.p.rtc.handle_input(Input::Timeout(Instant::now())) {
                    break format!("WebRTC error: {e}");
                }
            }
            _ = shutdown.wait() => break "server shutting down".to_owned(),
        }
    };
    peer.stop_talk();
    peer.p.rtc.disconnect();
    tracing::info!(camera = %camera, peer = %id, reason = %why, seconds = started.elapsed().as_secs(), "WebRTC peer ended");
}

async fn next_frame(reader: &mut Option<Reader>) -> Next {
    match reader {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

impl Peer {
    /// Sends everything str0m has to send and handles its events; returns its next
    /// deadline, or why the peer ends.
    fn drain(&mut self) -> Result<Instant, String> {
        loop {
            let out = self
                .p
                .rtc
                .poll_output()
                .map_err(|e| format!("WebRTC error: {e}"))?;
            match out {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    // UDP: a full send buffer drops the datagram (SRTP and RTCP recover).
                    if self
                        .p
                        .socket
                        .try_send_to(&t.contents, t.destination)
                        .is_ok()
                    {
                        self.p
                            .stats
                            .bytes_sent
                            .fetch_add(t.contents.len() as u64, Ordering::Relaxed);
                    }
                }
                Output::Event(e) => self.event(e)?,
            }
        }
    }

    fn event(&mut self, e: Event) -> Result<(), String> {
        match e {
            // str0m tells the sections once connected; the plan follows them.
            Event::MediaAdded(m) => {
                match m.kind {
                    MediaKind::Video => self.video_mid = Some(m.mid),
                    MediaKind::Audio => {
                        let browser_sends =
                            matches!(m.direction, Direction::RecvOnly | Direction::SendRecv);
                        self.audio_mid = Some((m.mid, browser_sends));
                    }
                }
                self.plan = self.plan();
                if m.kind == MediaKind::Video && self.plan.video.is_none() {
                    return Err(
                        "the browser offered no H.264 (packetization-mode 1) or H.265 we can send"
                            .into(),
                    );
                }
                self.subscribe_when_ready();
            }
            Event::Connected => {
                self.connected = true;
                self.p.stats.peers_connected.fetch_add(1, Ordering::Relaxed);
                tracing::info!(camera = %self.p.camera.name, peer = %self.p.link.id, "WebRTC peer connected");
                self.subscribe_when_ready();
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err("the browser left (ICE disconnected)".into());
            }
            Event::MediaData(d) => self.talk_data(d),
            _ => {}
        }
        Ok(())
    }

    /// Joins the camera once connected with a video payload type agreed, so the first
    /// frame sent is the current GOP's keyframe.
    fn subscribe_when_ready(&mut self) {
        if self.connected && self.plan.video.is_some() && self.reader.is_none() {
            let (reader, _) = self.p.camera.stream.subscribe();
            self.reader = Some(reader);
            let tracks = self.p.camera.stream.tracks();
            let unsent: Vec<&str> = tracks
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    *i != self.p.video && self.plan.audio.is_none_or(|(a, ..)| a != *i)
                })
                .map(|(_, t)| t.codec.name())
                .collect();
            if !unsent.is_empty() {
                tracing::info!(camera = %self.p.camera.name, peer = %self.p.link.id, ?unsent,
                    "tracks not sent over WebRTC (WebRTC carries G.711 and Opus audio, passed through; no transcoding, and the browser's offer may lack the codec)");
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            self.p
                .stats
                .datagrams_unrouted
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.p.local_addr,
                contents,
            },
        );
        if let Err(e) = self.p.rtc.handle_input(input) {
            tracing::debug!(peer = %self.p.link.id, error = %e, "WebRTC input refused");
        }
    }

    /// The payload types to send the camera's tracks with, from what the answer agreed.
    fn plan(&mut self) -> Plan {
        let tracks = self.p.camera.stream.tracks();
        let mut plan = Plan::default();
        if let (Some(mid), Some(track)) = (self.video_mid, tracks.get(self.p.video)) {
            plan.video = self.video_pt(mid, track).map(|pt| (mid, pt));
        }
        if let Some((mid, _)) = self.audio_mid {
            plan.audio = tracks.iter().enumerate().find_map(|(i, t)| {
                let (codec, rate) = audio_codec(&t.codec)?;
                let w = self.p.rtc.writer(mid)?;
                let pt = w.payload_params().find(|p| p.spec().codec == codec)?.pt();
                Some((i, mid, pt, rate))
            });
        }
        plan
    }

    /// H.264: packetization-mode 1, the payload type whose profile (and constraints)
    /// match the SPS first. H.265: the first.
    fn video_pt(&mut self, mid: Mid, track: &TrackInfo) -> Option<Pt> {
        let w = self.p.rtc.writer(mid)?;
        let (want, sps) = match &track.codec {
            CodecParams::H264 { sps, .. } => (Codec::H264, Some(sps.clone())),
            CodecParams::H265 { .. } => (Codec::H265, None),
            _ => return None,
        };
        let profile = sps.as_ref().and_then(|s| s.get(1..3)).map(|b| (b[0], b[1]));
        w.payload_params()
            .filter_map(|p| {
                let spec = p.spec();
                if spec.codec != want {
                    return None;
                }
                let mut score = 0;
                if want == Codec::H264 {
                    if spec.format.packetization_mode != Some(1) {
                        return None;
                    }
                    let pli = spec.format.profile_level_id.unwrap_or(0);
                    let (idc, constraints) = ((pli >> 16) as u8, (pli >> 8) as u8);
                    if let Some((want_idc, want_constraints)) = profile {
                        score += 2 * u32::from(idc == want_idc);
                        score += u32::from(constraints == want_constraints);
                    }
                }
                Some((score, p.pt()))
            })
            .max_by_key(|(score, _)| *score)
            .map(|(_, pt)| pt)
    }

    fn send_frame(&mut self, f: &Frame) {
        let now = Instant::now();
        if let Some((mid, pt)) = self.plan.video.filter(|_| f.track == self.p.video) {
            let Some(w) = self.p.rtc.writer(mid) else {
                return;
            };
            let time = MediaTime::new(f.au.pts, Frequency::NINETY_KHZ);
            if w.write(pt, now, time, &f.au.data[..]).is_ok() {
                self.p.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let Some((track, mid, pt, rate)) = self.plan.audio else {
            return;
        };
        if f.track != track {
            return;
        }
        let Some(freq) = Frequency::new(rate) else {
            return;
        };
        let time = MediaTime::new(f.au.pts, freq);
        // An opaque track's unit holds the camera's RTP payloads; G.711 is the samples.
        let payloads: Vec<Bytes> = match &self.p.camera.stream.tracks().get(track) {
            Some(TrackInfo {
                codec: CodecParams::Opaque { .. },
                ..
            }) => opaque::records(&f.au.data)
                .unwrap_or_default()
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
            _ => vec![f.au.data.clone()],
        };
        for payload in payloads {
            let Some(w) = self.p.rtc.writer(mid) else {
                return;
            };
            if w.write(pt, now, time, &payload[..]).is_ok() {
                self.p.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn start_talk(&mut self) -> Result<(), Refusal> {
        if self.talk.is_some() {
            return Ok(());
        }
        let Some(out) = self.p.camera.backchannel.clone() else {
            return Err(Refusal::new(
                404,
                "Not Found",
                format!(
                    "camera {:?} has no backchannel (no [cameras.backchannel])",
                    self.p.camera.name
                ),
            ));
        };
        if !self.p.browser_sends_audio {
            return Err(Refusal::new(
                400,
                "Bad Request",
                "the offer has no audio the browser sends (offer audio as sendrecv to talk)",
            ));
        }
        let Some(payload_type) = out.payload_type_of("opus", 48000) else {
            return Err(Refusal::new(
                500,
                "Internal Server Error",
                "the backchannel offers no Opus",
            ));
        };
        let session = format!("webrtc-{}", &self.p.link.id[..12]);
        match acquire_talk(&out, &session).await {
            Ok(()) => {}
            Err(TalkRefusal::Busy { .. }) => {
                return Err(Refusal::new(
                    409,
                    "Conflict",
                    "someone else talks to this camera now (its backchannel takes one talker at a time: policy exclusive)",
                ))
            }
            Err(TalkRefusal::Unavailable { reason }) => {
                return Err(Refusal::new(503, "Service Unavailable", reason))
            }
        }
        let talker = Talker::start(out, &session);
        talker.set_playing(true);
        tracing::info!(camera = %self.p.camera.name, peer = %self.p.link.id, "browser talk started");
        self.talk = Some(Talk {
            talker,
            session,
            payload_type,
            seq: rand::random(),
            ssrc: rand::random(),
        });
        Ok(())
    }

    fn stop_talk(&mut self) {
        if let Some(t) = self.talk.take() {
            drop(t.talker);
            if let Some(out) = &self.p.camera.backchannel {
                out.release(&t.session);
            }
        }
    }

    /// The browser's Opus, as RTP of our own backchannel offer, to the talker.
    fn talk_data(&mut self, d: MediaData) {
        let (Some(t), Some((mid, _))) = (self.talk.as_mut(), self.audio_mid) else {
            return;
        };
        if d.mid != mid || d.params.spec().codec != Codec::Opus {
            return;
        }
        let header = RtpHeader {
            payload_type: t.payload_type,
            marker: false,
            sequence: t.seq,
            timestamp: d.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer() as u32,
            ssrc: t.ssrc,
            extension: None,
        };
        let mut pkt = BytesMut::new();
        write_rtp(&header, &d.data, &mut pkt);
        t.seq = t.seq.wrapping_add(1);
        t.talker.push(pkt.freeze());
        self.p.stats.talk_packets.fetch_add(1, Ordering::Relaxed);
    }
}

/// The WebRTC codec (and clock rate) a camera audio track passes through as.
fn audio_codec(c: &CodecParams) -> Option<(Codec, u32)> {
    match c {
        CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        } => Some((Codec::PCMU, 8000)),
        CodecParams::Pcma {
            rate: 8000,
            channels: 1,
        } => Some((Codec::PCMA, 8000)),
        CodecParams::Opaque {
            rtpmap: Some(r), ..
        } if r.to_ascii_lowercase().starts_with("opus/48000") => Some((Codec::Opus, 48000)),
        _ => None,
    }
}
