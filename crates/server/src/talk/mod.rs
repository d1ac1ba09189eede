//! ONVIF audio backchannel (ONVIF Streaming Specification §5.3, feature tag
//! `www.onvif.org/ver20/backchannel`): a client sends RTP audio inside its RTSP session;
//! the server decodes it and plays it to the camera's audio outputs.
//!
//! - [`offer`]: the `a=sendonly` SDP section's formats, PCMU first (GStreamer and most
//!   clients take the first); the client's choice is the payload type it sends.
//! - [`AudioOut`]: one camera's output, its configuration and who may talk. Policy
//!   (the standard is silent): `exclusive` (default) — the first talker owns the output
//!   until its TEARDOWN, timeout or disconnect; another session's backchannel SETUP gets
//!   `453 Not Enough Bandwidth`. `mix` — concurrent talkers are mixed.
//! - [`Talker`]: one session's receive path on its own thread (decoding and file or pipe
//!   writes must not block the async runtime): jitter buffer, decoder, resampler (the
//!   sans-IO `ipcamd_audio::pipeline::BackchannelReceiver`), then the outputs. Packets that
//!   arrive before PLAY are dropped and counted (docs/onvif.md "Audio backchannel").
//!
//! Outputs ([`OutputTarget`]): `wav`, `exec`, `alsa` (cargo feature `alsa`;
//! `ipcamd_audio::alsa_output`) and `record` (the camera's recording, [`crate::record::talk`]).
//! An output that cannot be opened (a missing sound card, a recording that is not running)
//! is logged with what to fix and left out; the talk session and the other outputs go on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipcamd_audio::decoder::BackchannelCodec;
use ipcamd_audio::g726::G726Packing;
use ipcamd_audio::output::{AudioOutput, ExecOutput, FanOutput, Mixer, WavOutput};
use ipcamd_audio::pipeline::BackchannelReceiver;
use ipcamd_proto::codec::MediaKind;
use ipcamd_proto::packet::aac::{aac_config, aac_fmtp};
use ipcamd_proto::rtsp::server::{BackchannelView, TalkRefusal};
use ipcamd_proto::sdp::{Direction, SdpFormat, SdpMedia};

use crate::record::talk::{RecordOutput, TalkRecordSink};
use crate::sync::lock;
use crate::upstream::relay::Relay;

/// The ONVIF feature tag of the backchannel.
pub use ipcamd_proto::rtsp::tags::BACKCHANNEL as BACKCHANNEL_TAG;

/// Who may talk when several sessions set up a backchannel to one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TalkPolicy {
    Exclusive,
    Mix,
}

/// Where decoded talk audio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// One WAV file per talk session in this folder.
    Wav(PathBuf),
    /// Raw s16le mono PCM to the standard input of this shell command.
    Exec(String),
    /// An ALSA playback device by name (needs the cargo feature `alsa`).
    Alsa(String),
    /// The camera's recording (an extra PCMU 8 kHz track; see [`crate::record::talk`]).
    Record,
    /// A proxied camera's own backchannel (see [`crate::upstream::relay`]).
    Relay(Arc<Relay>),
}

#[derive(Debug, Clone)]
pub struct BackchannelConfig {
    pub outputs: Vec<OutputTarget>,
    /// Sample rate of the PCM given to the outputs.
    pub output_rate: u32,
    pub policy: TalkPolicy,
    /// Bit order of G.726 payloads (RFC 3551 by default; AAL2 for clients that send it).
    pub g726_packing: G726Packing,
    pub jitter: Duration,
}

impl Default for BackchannelConfig {
    fn default() -> Self {
        BackchannelConfig {
            outputs: vec![OutputTarget::Wav(PathBuf::from("talk"))],
            output_rate: 16000,
            policy: TalkPolicy::Exclusive,
            g726_packing: G726Packing::Rfc3551LittleEndian,
            jitter: Duration::from_millis(60),
        }
    }
}

/// One offered format: payload type, SDP lines, and the decoder it selects.
#[derive(Debug, Clone)]
pub struct Offered {
    pub format: SdpFormat,
    pub codec: BackchannelCodec,
}

/// Every format the server decodes, PCMU/8000 first.
pub fn offer(cfg: &BackchannelConfig) -> Vec<Offered> {
    let aac = aac_config(2, 16000, 1);
    let list: Vec<(u8, &str, Option<String>)> = vec![
        (0, "PCMU/8000", None),
        (8, "PCMA/8000", None),
        (96, "PCMU/16000", None),
        (97, "PCMA/16000", None),
        (98, "G726-16/8000", None),
        (99, "G726-24/8000", None),
        (100, "G726-32/8000", None),
        (101, "G726-40/8000", None),
        (102, "MPEG4-GENERIC/16000/1", Some(aac_fmtp(&aac))),
        (103, "opus/48000/2", None),
        (104, "L16/16000", None),
    ];
    list.into_iter()
        .filter_map(|(pt, rtpmap, fmtp)| {
            let mut parts = rtpmap.split('/');
            let name = parts.next()?;
            let rate: u32 = parts.next()?.parse().ok()?;
            let channels: Option<u8> = parts.next().and_then(|c| c.parse().ok());
            let mut codec = BackchannelCodec::from_rtpmap(name, rate, channels, fmtp.as_deref())?;
            if let BackchannelCodec::G726 { packing, .. } = &mut codec {
                *packing = cfg.g726_packing;
            }
            Some(Offered {
                format: SdpFormat {
                    payload_type: pt,
                    rtpmap: Some(rtpmap.to_owned()),
                    fmtp,
                },
                codec,
            })
        })
        .collect()
}

/// Orders `formats` so those matching `camera` (`NAME/rate`, case-insensitive name) come
/// first, in `camera`'s order; the others keep theirs.
fn prefer(formats: &mut [SdpFormat], camera: &[String]) {
    let rank = |f: &SdpFormat| {
        let (Some(name), Some(rate)) = (f.encoding_name(), f.clock_rate()) else {
            return camera.len();
        };
        camera
            .iter()
            .position(|c| {
                c.split_once('/').is_some_and(|(n, r)| {
                    n.eq_ignore_ascii_case(name) && r.parse::<u32>().ok() == Some(rate)
                })
            })
            .unwrap_or(camera.len())
    };
    formats.sort_by_key(rank);
}

/// The `a=sendonly` section for DESCRIBE.
pub fn sdp_section(cfg: &BackchannelConfig, control: String) -> SdpMedia {
    SdpMedia {
        kind: MediaKind::Audio,
        formats: offer(cfg).into_iter().map(|o| o.format).collect(),
        control,
        direction: Some(Direction::SendOnly),
        attributes: Vec::new(),
    }
}

/// One camera's audio output.
pub struct AudioOut {
    pub camera: String,
    pub cfg: BackchannelConfig,
    offers: Vec<Offered>,
    /// The `a=sendonly` section, as DESCRIBE offers it.
    pub view: Arc<BackchannelView>,
    /// Exclusive policy: the session that owns the output.
    owner: Mutex<Option<String>>,
    /// Mix policy: the mixer thread's input.
    mixer: Mutex<Option<Arc<Mutex<Mixer>>>>,
    /// The `record` output: the camera's running recording, once it is connected.
    record: Mutex<Option<Arc<TalkRecordSink>>>,
    /// Counters of every talk session on this output (`open`: the talk event's state).
    pub stats: Arc<TalkStats>,
}

impl AudioOut {
    pub fn new(camera: &str, cfg: BackchannelConfig) -> Arc<AudioOut> {
        Arc::new(AudioOut {
            camera: camera.to_owned(),
            offers: offer(&cfg),
            view: Arc::new(BackchannelView {
                section: sdp_section(&cfg, String::new()),
            }),
            cfg,
            owner: Mutex::new(None),
            mixer: Mutex::new(None),
            record: Mutex::new(None),
            stats: Arc::default(),
        })
    }

    /// Whether someone talks on this output now (the ONVIF talk event reads it).
    pub fn talking(&self) -> bool {
        self.stats.open.load(Ordering::Relaxed) > 0
    }

    /// Whether the `record` output is configured.
    pub fn records(&self) -> bool {
        self.cfg.outputs.contains(&OutputTarget::Record)
    }

    /// Connects the `record` output to the camera's running recording.
    pub fn attach_recording(&self, sink: Arc<TalkRecordSink>) {
        *lock(&self.record) = Some(sink);
    }

    /// Disconnects it (the recording stops); later talk sessions are not recorded.
    pub fn detach_recording(&self) {
        *lock(&self.record) = None;
    }

    /// The connected recording sink, if any (counters for logs and tests).
    pub fn recording_sink(&self) -> Option<Arc<TalkRecordSink>> {
        lock(&self.record).clone()
    }

    /// Takes the output for `session`; Err(owner) if another session holds it.
    pub fn acquire(&self, session: &str) -> Result<(), String> {
        if self.cfg.policy == TalkPolicy::Mix {
            return Ok(());
        }
        let mut owner = lock(&self.owner);
        match owner.as_deref() {
            Some(o) if o != session => Err(o.to_owned()),
            _ => {
                *owner = Some(session.to_owned());
                Ok(())
            }
        }
    }

    /// The relay to the proxied camera's backchannel, if audio goes there.
    pub fn relay(&self) -> Option<&Arc<Relay>> {
        self.cfg.outputs.iter().find_map(|o| match o {
            OutputTarget::Relay(r) => Some(r),
            _ => None,
        })
    }

    /// The `a=sendonly` section DESCRIBE offers now: with a relay to a camera, the
    /// formats of the camera's own backchannel first (in its order; a talker that takes
    /// the first then needs no transcoding), then the others.
    pub fn view_now(&self) -> Arc<BackchannelView> {
        let camera = self.relay().map(|r| r.camera_codecs()).unwrap_or_default();
        if camera.is_empty() {
            return self.view.clone();
        }
        let mut section = self.view.section.clone();
        prefer(&mut section.formats, &camera);
        Arc::new(BackchannelView { section })
    }

    /// Whether the backchannel can be offered now: always, unless its only output is a
    /// relay to a camera that does not offer one.
    pub fn available(&self) -> bool {
        let only_relay = self
            .cfg
            .outputs
            .iter()
            .all(|o| matches!(o, OutputTarget::Relay(_)));
        !only_relay || self.relay().is_some_and(|r| r.offered())
    }

    pub fn release(&self, session: &str) {
        if let Some(r) = self.relay() {
            r.close(session);
        }
        let mut owner = lock(&self.owner);
        if owner.as_deref() == Some(session) {
            *owner = None;
            tracing::info!(camera = %self.camera, session, "audio output released");
        }
    }

    /// The payload type this output's offer gives `encoding` (case-insensitive name) at
    /// `rate` Hz: a WebRTC peer's Opus is handed to a [`Talker`] under it.
    pub fn payload_type_of(&self, encoding: &str, rate: u32) -> Option<u8> {
        self.offers
            .iter()
            .find(|o| {
                o.format
                    .encoding_name()
                    .is_some_and(|n| n.eq_ignore_ascii_case(encoding))
                    && o.format.clock_rate() == Some(rate)
            })
            .map(|o| o.format.payload_type)
    }

    fn codec_for(&self, payload_type: u8) -> Option<BackchannelCodec> {
        self.offers
            .iter()
            .find(|o| o.format.payload_type == payload_type)
            .map(|o| o.codec.clone())
    }

    fn open_outputs(&self, session: &str) -> Box<dyn AudioOutput> {
        let start = ipcamd_media::pacer::now_micros();
        let mut outs: Vec<Box<dyn AudioOutput>> = Vec::new();
        for t in &self.cfg.outputs {
            match t {
                OutputTarget::Wav(dir) => {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        tracing::error!(dir = %dir.display(), error = %e, "cannot create the talk folder");
                        continue;
                    }
                    match WavOutput::create(dir, &self.camera, session, start, self.cfg.output_rate)
                    {
                        Ok(w) => {
                            tracing::info!(camera = %self.camera, session, file = %w.path().display(), "talk audio to WAV");
                            outs.push(Box::new(w));
                        }
                        Err(e) => {
                            tracing::error!(dir = %dir.display(), error = %e, "cannot create the WAV file")
                        }
                    }
                }
                OutputTarget::Exec(cmd) => match ExecOutput::spawn(cmd, self.cfg.output_rate) {
                    Ok(x) => outs.push(Box::new(x)),
                    Err(e) => {
                        tracing::error!(command = %cmd, error = %e, "cannot start the exec output")
                    }
                },
                OutputTarget::Alsa(device) => match open_alsa(device, self.cfg.output_rate) {
                    Ok(x) => outs.push(x),
                    Err(e) => {
                        tracing::error!(camera = %self.camera, session, device = %device, error = %e, "cannot open the ALSA output; talking goes on without it")
                    }
                },
                OutputTarget::Relay(r) => match r.output(session) {
                    Some(o) => outs.push(o),
                    None => {
                        tracing::warn!(camera = %self.camera, session, "no open relay to the camera's backchannel for this talker")
                    }
                },
                OutputTarget::Record => match self.recording_sink() {
                    Some(sink) => outs.push(Box::new(RecordOutput::new(
                        sink,
                        self.cfg.output_rate,
                        self.cfg.jitter,
                    ))),
                    None => tracing::warn!(
                        camera = %self.camera,
                        session,
                        "backchannel output \"record\": the camera is not being recorded; talk audio is not stored"
                    ),
                },
            }
        }
        Box::new(FanOutput(outs))
    }

    /// Mix policy: the camera's mixer, started on first use.
    fn mixer(self: &Arc<Self>) -> Arc<Mutex<Mixer>> {
        let mut m = lock(&self.mixer);
        if let Some(x) = m.as_ref() {
            return x.clone();
        }
        let mixer = Arc::new(Mutex::new(Mixer::new(self.cfg.output_rate as usize * 2)));
        *m = Some(mixer.clone());
        let out = self.clone();
        let mx = mixer.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mixer-{}", self.camera))
            .spawn(move || run_mixer(out, mx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the mixer thread");
        }
        mixer
    }
}

/// The `alsa` output (cargo feature `alsa`).
#[cfg(feature = "alsa")]
fn open_alsa(device: &str, rate: u32) -> std::io::Result<Box<dyn AudioOutput>> {
    Ok(Box::new(ipcamd_audio::alsa_output::AlsaOutput::open(
        device, rate,
    )?))
}

/// Without the feature the configuration refuses "alsa"; this is for library users.
#[cfg(not(feature = "alsa"))]
fn open_alsa(_device: &str, _rate: u32) -> std::io::Result<Box<dyn AudioOutput>> {
    Err(std::io::Error::other(
        "built without the alsa feature; rebuild with --features alsa",
    ))
}

/// Mix policy: every 20 ms, mixes what the talkers queued and writes it to the outputs.
fn run_mixer(out: Arc<AudioOut>, mixer: Arc<Mutex<Mixer>>) {
    let block = out.cfg.output_rate as usize / 50;
    let mut sink = out.open_outputs("mix");
    let mut pcm = Vec::with_capacity(block);
    let mut next = Instant::now();
    loop {
        next += Duration::from_millis(20);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        pcm.clear();
        lock(&mixer).mix(block, &mut pcm);
        if let Err(e) = sink.write(&pcm) {
            tracing::warn!(error = %e, "mixed talk output write failed");
        }
    }
}

/// Takes the camera's audio output for a talker; a relayed camera's own backchannel is
/// opened now (an RTSP talker's SETUP, a WebRTC peer's talk request), and its refusal refuses the talker.
pub async fn acquire_talk(out: &AudioOut, session: &str) -> Result<(), TalkRefusal> {
    out.acquire(session)
        .map_err(|owner| TalkRefusal::Busy { owner })?;
    let Some(relay) = out.relay() else {
        return Ok(());
    };
    match relay.open(session, out.cfg.output_rate).await {
        Ok(()) => Ok(()),
        Err(reason) => {
            out.release(session);
            Err(TalkRefusal::Unavailable { reason })
        }
    }
}

/// Talk counters of one camera's backchannel, over all its talk sessions (`/metrics`).
#[derive(Debug, Default)]
pub struct TalkStats {
    /// Talk sessions started.
    pub sessions: AtomicU64,
    /// Talk sessions running now.
    pub open: AtomicU64,
    /// RTP packets that reached a talker (dropped ones included).
    pub received: AtomicU64,
    /// Dropped: sent before PLAY (or after PAUSE).
    pub before_play: AtomicU64,
    /// Dropped: the talker thread was behind (its queue full).
    pub queue_full: AtomicU64,
    /// Dropped: a payload type the session did not set up.
    pub unknown_payload_type: AtomicU64,
    /// Dropped: over `[limits] backchannel_max_packets_per_s`.
    pub rate_limited: AtomicU64,
}

/// One session's backchannel receive path (see the module doc).
pub struct Talker {
    tx: SyncSender<Bytes>,
    playing: Arc<AtomicBool>,
    pub stats: Arc<TalkStats>,
    /// Packets this second, for `[limits] backchannel_max_packets_per_s`.
    pub rate: crate::net::limits::PacketRate,
}

/// Packets queued between the network and the talker thread (about 2.5 s of 20 ms packets).
const TALK_QUEUE: usize = 128;

impl Talker {
    pub fn start(out: Arc<AudioOut>, session: &str) -> Talker {
        let (tx, rx) = mpsc::sync_channel::<Bytes>(TALK_QUEUE);
        let playing = Arc::new(AtomicBool::new(false));
        let stats = out.stats.clone();
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let session = session.to_owned();
        let st = stats.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("talk-{session}"))
            .spawn(move || run_talker(out, session, rx, st));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the talk thread");
        }
        Talker {
            tx,
            playing,
            stats,
            rate: Default::default(),
        }
    }

    pub fn set_playing(&self, on: bool) {
        self.playing.store(on, Ordering::Relaxed);
    }

    /// Hands one RTP packet to the talker thread. Dropped (and counted) before PLAY or
    /// when the thread is behind.
    pub fn push(&self, packet: Bytes) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if !self.playing.load(Ordering::Relaxed) {
            self.stats.before_play.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_send(packet) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn run_talker(
    out: Arc<AudioOut>,
    session: String,
    rx: mpsc::Receiver<Bytes>,
    stats: Arc<TalkStats>,
) {
    let origin = Instant::now();
    let mut receiver: Option<BackchannelReceiver> = None;
    let mut sink: Option<Box<dyn AudioOutput>> = None;
    let mixer = (out.cfg.policy == TalkPolicy::Mix).then(|| out.mixer());
    let mut pcm: Vec<i16> = Vec::new();
    let talker_id: u64 = rand::random();
    // The codec is the payload type the client sends; it is taken from two consecutive
    // packets of one SSRC, so a stray datagram cannot pick it.
    let mut candidate: Option<(u32, u8, u16, Bytes)> = None;
    let write = |pcm: &[i16], sink: &mut Option<Box<dyn AudioOutput>>| {
        if pcm.is_empty() {
            return;
        }
        if let Some(m) = &mixer {
            lock(m).push(talker_id, pcm);
        } else if let Some(s) = sink.as_mut() {
            if let Err(e) = s.write(pcm) {
                tracing::warn!(session = %session, error = %e, "talk output write failed");
            }
        }
    };
    loop {
        let wait = receiver
            .as_ref()
            .and_then(|r| r.next_deadline())
            .map(|d| d.saturating_sub(origin.elapsed()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(pkt) => {
                if receiver.is_none() {
                    let Some((ssrc, pt, seq)) = rtp_identity(&pkt) else {
                        stats.unknown_payload_type.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let confirmed = matches!(&candidate, Some((s, p, q, _)) if *s == ssrc && *p == pt && q.wrapping_add(1) == seq);
                    if !confirmed {
                        candidate = Some((ssrc, pt, seq, pkt));
                        continue;
                    }
                    let Some(codec) = out.codec_for(pt) else {
                        stats.unknown_payload_type.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    match BackchannelReceiver::new(codec.clone(), pt, out.cfg.output_rate) {
                        Ok(r) => {
                            tracing::info!(camera = %out.camera, session = %session, codec = codec.encoding_name(), payload_type = pt, "talk session started");
                            receiver = Some(r.with_depth(out.cfg.jitter));
                            if mixer.is_none() {
                                sink = Some(out.open_outputs(&session));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(session = %session, error = %e, "cannot decode the backchannel codec");
                            continue;
                        }
                    }
                }
                if let Some(r) = receiver.as_mut() {
                    if let Some((_, _, _, first)) = candidate.take() {
                        r.push_rtp(&first, origin.elapsed());
                    }
                    r.push_rtp(&pkt, origin.elapsed());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(r) = receiver.as_mut() {
            pcm.clear();
            r.poll(origin.elapsed(), &mut pcm);
            write(&pcm, &mut sink);
        }
    }
    if let Some(r) = receiver.as_mut() {
        pcm.clear();
        r.finish(&mut pcm);
        write(&pcm, &mut sink);
        let s = r.stats();
        tracing::info!(camera = %out.camera, session = %session, stats = ?s, "talk session ended");
    }
    if let Some(mut s) = sink {
        if let Err(e) = s.finish() {
            tracing::warn!(session = %session, error = %e, "talk output did not finish cleanly");
        }
    }
    if let Some(m) = &mixer {
        lock(m).remove(talker_id);
    }
}

/// (SSRC, payload type, sequence number) of a valid RTP packet.
fn rtp_identity(p: &[u8]) -> Option<(u32, u8, u16)> {
    let rtp = ipcamd_proto::rtp::parse_rtp(p).ok()?;
    Some((rtp.ssrc(), rtp.payload_type(), rtp.sequence()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cameras_backchannel_codecs_come_first() {
        let mut formats: Vec<SdpFormat> = offer(&BackchannelConfig::default())
            .into_iter()
            .map(|o| o.format)
            .collect();
        let names = |f: &[SdpFormat]| -> Vec<String> {
            f.iter().filter_map(|f| f.rtpmap.clone()).take(4).collect()
        };
        // A camera that takes G.726-32 and PCMA (and a codec we do not offer).
        prefer(
            &mut formats,
            &[
                "g726-32/8000".into(),
                "X-FOO/8000".into(),
                "PCMA/8000".into(),
            ],
        );
        assert_eq!(
            names(&formats),
            ["G726-32/8000", "PCMA/8000", "PCMU/8000", "PCMU/16000"]
        );
        // Nothing known of the camera: our order.
        let mut ours: Vec<SdpFormat> = offer(&BackchannelConfig::default())
            .into_iter()
            .map(|o| o.format)
            .collect();
        prefer(&mut ours, &[]);
        assert_eq!(names(&ours)[0], "PCMU/8000");
    }

    #[test]
    fn offer_lists_pcmu_first_and_every_codec() {
        let o = offer(&BackchannelConfig::default());
        assert_eq!(o[0].format.payload_type, 0);
        assert_eq!(o[0].format.rtpmap.as_deref(), Some("PCMU/8000"));
        let names: Vec<&str> = o
            .iter()
            .filter_map(|x| x.format.rtpmap.as_deref())
            .collect();
        for want in [
            "PCMA/8000",
            "PCMU/16000",
            "PCMA/16000",
            "G726-16/8000",
            "G726-24/8000",
            "G726-32/8000",
            "G726-40/8000",
            "MPEG4-GENERIC/16000/1",
            "opus/48000/2",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let aac = o.iter().find(|x| x.format.payload_type == 102).unwrap();
        assert!(aac.format.fmtp.as_deref().unwrap().contains("config=1408"));
    }

    #[test]
    fn exclusive_policy_holds_and_releases() {
        let out = AudioOut::new("cam1", BackchannelConfig::default());
        assert!(out.acquire("a").is_ok());
        assert!(out.acquire("a").is_ok(), "same session again is fine");
        assert_eq!(out.acquire("b"), Err("a".to_owned()));
        out.release("b"); // not the owner: no effect
        assert!(out.acquire("b").is_err());
        out.release("a");
        assert!(out.acquire("b").is_ok());
    }
}
