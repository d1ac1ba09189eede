//! Proxied cameras (`source = "rtsp"`): one upstream RTSP session per camera, whatever the
//! number of readers, feeding the camera's [`Stream`] like any other source (readers, the
//! recorder, snapshots and ONVIF profiles do not know the difference). Written by hand on
//! the workspace's RTSP client (`ipcamd-client`) and the media crate's [`Ingest`].
//!
//! ```text
//!  run: loop { session(); offline(why); back-off 1 s doubling to 30 s (reset after 60 s of health) }
//!  session: connect -> DESCRIBE -> tracks -> SETUP each -> PLAY (RTP-Info + Range: clock=
//!           anchor the camera's clock) -> read: interleaved frames or UDP sockets
//!           -> Ingest (depacketize, time) -> Stream::push
//!           keep-alive (GET_PARAMETER, OPTIONS if refused) every session timeout / 2;
//!           5 s without media: reconnect; `auto`: UDP, then TCP after 2 s without media;
//!           a track silent for 5 s while another flows: set up again ([`SILENT_TRACK`])
//! ```
//!
//! The camera is offline (503 for new readers, the reason in `/api/stats` and the log)
//! from the start until its first media, and again after every failure; existing readers
//! stay and resume when media returns (same tracks: same numbering). A camera that comes
//! back with other tracks ends its readers ([`Stream::set_tracks`]).
//!
//! Tracks whose codec ipcamd cannot serve are left out (the log says which): no opaque
//! pass-through yet. Credentials never reach the log: URLs are logged without userinfo.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipcamd_client::client::bind_rtp_pair;
use ipcamd_client::{ClientError, ClientTls, ClientTransport, RtspClient, BACKCHANNEL_TAG};
use ipcamd_media::fanout::{Retrack, Stream};
use ipcamd_media::ingest::Ingest;
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::codec::{MediaKind, TrackInfo};
use ipcamd_proto::rtsp::headers::{parse_range, parse_rtp_info, LowerTransport, Range, Transport};
use ipcamd_proto::rtsp::{Frame, Response};
use ipcamd_proto::sdp::{resolve_control, Direction, SdpSession};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::ingest_log::log_event;
use crate::net::shutdown::Shutdown;

pub mod relay;

/// How media comes from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTransport {
    Tcp,
    Udp,
    /// RTSP over HTTP (the URL's port is the camera's HTTP port).
    Http,
    /// UDP, then TCP after [`AUTO_FALLBACK`] without media (as ffmpeg does).
    Auto,
}

impl UpstreamTransport {
    /// How the relay reaches the camera's backchannel: as the camera's media comes, TCP
    /// for `auto` (nothing flows from the camera on a backchannel to detect UDP trouble).
    pub fn for_relay(self) -> ClientTransport {
        match self {
            UpstreamTransport::Udp => ClientTransport::Udp,
            UpstreamTransport::Http => ClientTransport::Http,
            UpstreamTransport::Tcp | UpstreamTransport::Auto => ClientTransport::Tcp,
        }
    }
}

/// An ONVIF camera by its device address: its stream URI is asked for at every
/// connection (GetProfiles, GetStreamUri), so a camera that changes it is followed.
#[derive(Clone)]
pub struct OnvifSource {
    /// `http://HOST[:PORT]/onvif/device_service`.
    pub device_url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Profile token or name; the first profile with video without one.
    pub profile: Option<String>,
}

/// An on-demand camera's wake-up call: the upstream connects only while someone watches
/// (a DESCRIBE wakes it; it disconnects [`IDLE`] after the last reader left).
#[derive(Debug, Default)]
pub struct OnDemand {
    wake: tokio::sync::Notify,
}

/// How long an on-demand camera stays connected without readers.
pub const IDLE: Duration = Duration::from_secs(10);

/// How long a request waits for an on-demand camera to connect.
pub const WAKE_WAIT: Duration = Duration::from_secs(10);

impl OnDemand {
    /// Connects the camera if it is not, and waits (at most [`WAKE_WAIT`]) until its
    /// media flows; returns at once when it already does.
    pub async fn wake(&self, stream: &Stream) {
        if stream.offline_reason().is_none() {
            return;
        }
        self.wake.notify_one();
        let deadline = Instant::now() + WAKE_WAIT;
        while stream.offline_reason().is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A proxied camera's configuration.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// Connect only while someone watches.
    pub on_demand: Option<Arc<OnDemand>>,
    /// `rtsp://[user:pass@]host[:port]/path` (for an ONVIF camera: resolved at each
    /// connection, this is the last one).
    pub url: String,
    /// Set for `source = "onvif"`.
    pub onvif: Option<OnvifSource>,
    pub transport: UpstreamTransport,
    /// `rtsps://`: which certificates are trusted.
    pub tls: ClientTls,
    /// The relay of the camera's backchannel, told whether the camera offers one.
    pub relay: Option<Arc<relay::Relay>>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &redact(&self.url))
            .field("transport", &self.transport)
            .field("relay", &self.relay.is_some())
            .field("on_demand", &self.on_demand.is_some())
            .finish()
    }
}

/// Without media for this long a session is given up and the camera reconnected.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(5);
/// A track that takes nothing for this long while another flows is silent: the session is
/// set up again, at most once per [`SILENT_RETRY_EVERY`], and not again right after a
/// session that ended the same way without every track flowing (a camera that announces a
/// track it never sends keeps its session; the log and `/api/stats` `received` say so).
pub const SILENT_TRACK: Duration = Duration::from_secs(5);
pub const SILENT_RETRY_EVERY: Duration = Duration::from_secs(600);
/// `auto` falls back from UDP to TCP after this long without media.
pub const AUTO_FALLBACK: Duration = Duration::from_secs(2);
/// The first retry delay; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session that delivered this long resets the back-off.
pub const HEALTHY: Duration = Duration::from_secs(60);

/// `url` (`scheme://[userinfo@]host...`) with `username`/`password` as its userinfo,
/// percent-encoded (RFC 3986 unreserved characters kept); any userinfo it had is replaced.
pub fn with_credentials(url: &str, username: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "{scheme}://{}:{}@{host}{path}",
        enc(username),
        enc(password)
    )
}

/// `url` without its userinfo, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains('/') => {
            format!("{}{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Keeps `stream` fed from the camera until shutdown. See the module documentation.
pub async fn run(cfg: UpstreamConfig, stream: Arc<Stream>, mut shutdown: Shutdown) {
    let shown = redact(cfg.onvif.as_ref().map_or(&cfg.url, |o| &o.device_url));
    let mut backoff = MIN_BACKOFF;
    let mut ingest: Option<Ingest> = None;
    let mut tcp_instead = false;
    let mut silent = SilentRetry::default();
    stream.set_offline(Some(format!("connecting to {shown}")));
    loop {
        if let Some(d) = &cfg.on_demand {
            if stream.reader_count() == 0 {
                stream.set_offline(Some(format!(
                    "on demand: not connected to {shown} while nobody watches"
                )));
                tokio::select! {
                    _ = d.wake.notified() => {}
                    _ = until_readers(&stream) => {}
                    _ = shutdown.wait() => return,
                }
                tracing::info!(camera = %stream.name(), "on demand: connecting");
            }
        }
        let transport = match cfg.transport {
            UpstreamTransport::Tcp => ClientTransport::Tcp,
            UpstreamTransport::Udp => ClientTransport::Udp,
            UpstreamTransport::Http => ClientTransport::Http,
            UpstreamTransport::Auto if tcp_instead => ClientTransport::Tcp,
            UpstreamTransport::Auto => ClientTransport::Udp,
        };
        silent.new_session();
        let mut s = Session {
            cfg: &cfg,
            shown: &shown,
            stream: &stream,
            ingest: &mut ingest,
            transport,
            delivered: None,
            silent: &mut silent,
        };
        let end = tokio::select! {
            end = s.run() => end,
            _ = shutdown.wait() => return,
        };
        let delivered = s.delivered;
        if delivered.is_some_and(|d| d.elapsed() >= HEALTHY) {
            backoff = MIN_BACKOFF;
        }
        silent.previous = matches!(end, End::SilentTrack(_));
        if silent.previous {
            silent.last = Some(Instant::now());
        }
        let why = match end {
            End::Idle => {
                tracing::info!(camera = %stream.name(), idle_s = IDLE.as_secs(), "on demand: nobody watching, disconnected");
                backoff = MIN_BACKOFF;
                continue;
            }
            End::NoUdpMedia if cfg.transport == UpstreamTransport::Auto => {
                tracing::info!(camera = %stream.name(), url = %shown, "no media over UDP after {} s: trying TCP", AUTO_FALLBACK.as_secs());
                tcp_instead = true;
                continue;
            }
            End::SilentTrack(why) => {
                tracing::warn!(camera = %stream.name(), url = %shown, "{why}: setting the session up again");
                continue;
            }
            End::NoUdpMedia => format!("no media from {shown} over UDP"),
            End::Failed(why) => why,
        };
        tracing::warn!(camera = %stream.name(), retry_in_s = backoff.as_secs(), "camera offline: {why}");
        stream.set_offline(Some(why));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Resolves once the stream has a reader (polled: readers come through the fan-out).
async fn until_readers(stream: &Stream) {
    while stream.reader_count() == 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a session ended.
enum End {
    /// On demand: nobody watched for [`IDLE`].
    Idle,
    /// UDP was set up but nothing came (`auto` tries TCP next).
    NoUdpMedia,
    /// A track stayed silent while another flowed ([`SILENT_TRACK`]); set up again at once.
    SilentTrack(String),
    Failed(String),
}

/// When a silent track may make the session be set up again ([`SILENT_TRACK`]).
#[derive(Debug, Default)]
struct SilentRetry {
    /// When a session was last ended for a silent track.
    last: Option<Instant>,
    /// The last session ended for a silent track.
    previous: bool,
    /// Every track of this session has taken a packet.
    all_flowed: bool,
    /// This session's silent track was logged (it is kept).
    warned: bool,
}

impl SilentRetry {
    fn new_session(&mut self) {
        self.all_flowed = false;
        self.warned = false;
    }

    /// Whether a silent track ends this session now.
    fn retry(&self) -> bool {
        (self.all_flowed || !self.previous)
            && self.last.is_none_or(|t| t.elapsed() >= SILENT_RETRY_EVERY)
    }
}

impl From<ClientError> for End {
    fn from(e: ClientError) -> End {
        End::Failed(e.to_string())
    }
}

/// One track as set up: its interleaved channels, or its UDP sockets.
struct Track {
    rtp: Option<Arc<UdpSocket>>,
    rtcp: Option<Arc<UdpSocket>>,
}

/// Tasks that end with the session.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

struct Session<'a> {
    cfg: &'a UpstreamConfig,
    shown: &'a str,
    stream: &'a Arc<Stream>,
    ingest: &'a mut Option<Ingest>,
    transport: ClientTransport,
    /// Since when media flows.
    delivered: Option<Instant>,
    silent: &'a mut SilentRetry,
}

/// The tracks of the camera's SDP that ipcamd can serve, with their control URLs.
fn tracks_of(sdp: &SdpSession, base: &str, camera: &str) -> Vec<(TrackInfo, String)> {
    let mut out = Vec::new();
    for (i, m) in sdp.media.iter().enumerate() {
        if m.direction == Some(Direction::SendOnly) {
            continue; // a backchannel, not asked for
        }
        let control = resolve_control(base, &m.control);
        let usable = m.formats.iter().find_map(|f| {
            f.to_codec().map(|c| TrackInfo {
                codec: c,
                payload_type: f.payload_type,
            })
        });
        // A codec ipcamd does not depacketize: its first format, passed through as is.
        let opaque = || {
            let f = m.formats.first()?;
            let codec = f.to_opaque(m.kind)?;
            tracing::info!(camera, media = i, kind = m.kind.as_sdp(), payload_type = f.payload_type,
                rtpmap = f.rtpmap.as_deref().unwrap_or("(static)"),
                "camera track passed through as opaque RTP: ipcamd does not depacketize this codec; readers, recording and replay get the camera's packets as they are, MP4 exports leave it out");
            Some(TrackInfo {
                codec,
                payload_type: f.payload_type,
            })
        };
        match usable.or_else(opaque) {
            Some(t) => out.push((t, control)),
            None => {
                let names: Vec<String> = m
                    .formats
                    .iter()
                    .map(|f| f.encoding_name().unwrap_or("?").to_owned())
                    .collect();
                tracing::warn!(camera, media = i, kind = m.kind.as_sdp(), codecs = %names.join(","),
                    "camera track left out: a dynamic payload type without a=rtpmap cannot be described to readers");
            }
        }
    }
    out
}

impl Session<'_> {
    async fn run(&mut self) -> End {
        match self.session().await {
            Ok(e) | Err(e) => e,
        }
    }

    async fn session(&mut self) -> Result<End, End> {
        let camera = self.stream.name().to_owned();
        let url = camera_url(self.cfg, &camera).await?;
        let mut client = RtspClient::connect_with(&url, self.transport, &self.cfg.tls).await?;
        let (_, sdp, base) = client.describe(&[]).await?;
        if let Some(relay) = &self.cfg.relay {
            tokio::spawn(probe_backchannel(
                url.clone(),
                self.transport,
                self.cfg.tls.clone(),
                relay.clone(),
            ));
        }
        let tracks = tracks_of(&sdp, &base, &camera);
        if tracks.is_empty() {
            return Err(End::Failed(format!(
                "{}: no track ipcamd can serve in the camera's SDP (H.264, H.265, JPEG, AAC, PCMU, PCMA)",
                self.shown
            )));
        }
        let infos: Vec<TrackInfo> = tracks.iter().map(|(t, _)| t.clone()).collect();
        match self.ingest {
            Some(i) if i.tracks().eq(infos.iter()) => i.restart(),
            _ => *self.ingest = Some(Ingest::new(infos.clone())),
        }
        let mut set_up = Vec::new();
        for (n, (_, control)) in tracks.iter().enumerate() {
            set_up.push(self.setup(&mut client, n, control).await?);
        }
        let play = client.play(None, &[]).await?;
        self.anchor(&play, &tracks);
        match self.stream.set_tracks(infos) {
            Retrack::Replaced => tracing::info!(camera, "camera tracks (re)set from its SDP"),
            Retrack::Updated | Retrack::Same => {}
        }
        tracing::info!(camera, url = %self.shown, transport = self.transport.as_str(), tracks = tracks.len(), "upstream session playing");
        self.read(&mut client, &set_up).await
    }

    async fn setup(
        &mut self,
        client: &mut RtspClient,
        n: usize,
        control: &str,
    ) -> Result<Track, End> {
        let mut offer = Transport::default();
        match self.transport {
            ClientTransport::Udp => {
                let (rtp, rtcp) = bind_rtp_pair(client.local_addr().ip()).await?;
                let port = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
                offer.client_port = Some((port(&rtp), port(&rtcp)));
                let (_, answer) = client.setup(control, &offer, &[]).await?;
                // Media may come from another address than the control connection's.
                let _ = answer.source;
                Ok(Track {
                    rtp: Some(Arc::new(rtp)),
                    rtcp: Some(Arc::new(rtcp)),
                })
            }
            ClientTransport::Tcp | ClientTransport::Http => {
                offer.lower = LowerTransport::Tcp;
                let ch = u8::try_from(2 * n).unwrap_or(254);
                offer.interleaved = Some((ch, ch.saturating_add(1)));
                let (_, answer) = client.setup(control, &offer, &[]).await?;
                if answer.interleaved.is_some_and(|(a, _)| a != ch) {
                    return Err(End::Failed(format!(
                        "{}: SETUP of track {n} answered other interleaved channels than offered ({:?})",
                        self.shown, answer.interleaved
                    )));
                }
                Ok(Track {
                    rtp: None,
                    rtcp: None,
                })
            }
        }
    }

    /// The camera's clock from the PLAY response: `Range: clock=` start and RTP-Info.
    fn anchor(&mut self, play: &Response, tracks: &[(TrackInfo, String)]) {
        let Some(ingest) = self.ingest.as_mut() else {
            return;
        };
        let start = match play.headers.get("Range").map(parse_range) {
            Some(Ok(Range::Clock {
                start: Some(start), ..
            })) => start,
            _ => return,
        };
        let Some(Ok(infos)) = play.headers.get("RTP-Info").map(parse_rtp_info) else {
            return;
        };
        for info in infos {
            let track = tracks.iter().position(|(_, c)| {
                *c == info.url || c.ends_with(&info.url) || info.url.ends_with(c.as_str())
            });
            if let (Some(t), Some(rtptime)) = (track, info.rtptime) {
                ingest.anchor(t, rtptime, start);
            }
        }
    }

    /// Reports the receiver's counters; a track silent while another flows ends the
    /// session (this says why) when [`SilentRetry::retry`] allows, else is logged once.
    fn check_silent(&mut self) -> Option<String> {
        let ingest = self.ingest.as_ref()?;
        let counters = ingest.all_counters();
        self.stream.stats.set_received(counters.clone());
        if counters.iter().all(|c| c.packets > 0) {
            self.silent.all_flowed = true;
        }
        let quiet = i64::try_from(SILENT_TRACK.as_micros()).unwrap_or(i64::MAX);
        let track = ingest.silent_track(now_micros(), quiet)?;
        let kind = ingest.tracks().nth(track).map_or("", |t| t.kind().as_sdp());
        let (taken, foreign) = counters
            .get(track)
            .map_or((0, 0), |c| (c.packets, c.foreign));
        let why = format!(
            "track {track} ({kind}) of {} took no RTP packet for {} s while another track flowed ({taken} packets before; {foreign} dropped as another SSRC or payload type than the SDP's)",
            self.shown,
            SILENT_TRACK.as_secs(),
        );
        if self.silent.retry() {
            return Some(why);
        }
        if !self.silent.warned {
            self.silent.warned = true;
            tracing::warn!(camera = %self.stream.name(), "{why}; the session is kept (it was set up again less than {} s ago, or the last session ended the same way): readers get the other tracks", SILENT_RETRY_EVERY.as_secs());
        }
        None
    }

    async fn read(&mut self, client: &mut RtspClient, tracks: &[Track]) -> Result<End, End> {
        let camera = self.stream.name().to_owned();
        let keepalive_every = client.session_timeout() / 2;
        let mut keepalive =
            tokio::time::interval_at(Instant::now() + keepalive_every, keepalive_every);
        let mut watchdog = tokio::time::interval(Duration::from_millis(250));
        let started = Instant::now();
        let mut last_media: Option<Instant> = None;
        let mut watched = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, bool, Bytes)>(1024);
        let mut receivers = Tasks(Vec::new());
        for (n, t) in tracks.iter().enumerate() {
            for (sock, rtcp) in [(&t.rtp, false), (&t.rtcp, true)] {
                if let Some(sock) = sock {
                    let task = udp_receiver(sock.clone(), n, rtcp, tx.clone());
                    receivers.0.push(tokio::spawn(task));
                }
            }
        }
        drop(tx);
        let udp = self.transport == ClientTransport::Udp;
        loop {
            let (track, rtcp, data) = tokio::select! {
                f = client.next_frame() => match f? {
                    Frame::Interleaved { channel, payload: data } => {
                        (usize::from(channel / 2), channel % 2 == 1, data)
                    }
                    Frame::Request(req) => {
                        client.answer_not_implemented(&req).await?;
                        continue;
                    }
                    Frame::Response(_) => continue,
                },
                Some(p) = rx.recv(), if udp => p,
                _ = keepalive.tick() => {
                    client.keepalive().await?;
                    continue;
                }
                _ = watchdog.tick() => {
                    if let Some(why) = self.check_silent() {
                        let _ = client.teardown(&[]).await;
                        return Ok(End::SilentTrack(why));
                    }
                    if self.stream.reader_count() > 0 {
                        watched = Instant::now();
                    } else if self.cfg.on_demand.is_some() && watched.elapsed() >= IDLE {
                        let _ = client.teardown(&[]).await;
                        return Ok(End::Idle);
                    }
                    let since = last_media.unwrap_or(started).elapsed();
                    if udp && last_media.is_none() && since >= AUTO_FALLBACK && self.cfg.transport == UpstreamTransport::Auto {
                        let _ = client.teardown(&[]).await;
                        return Ok(End::NoUdpMedia);
                    }
                    if since >= MEDIA_TIMEOUT {
                        let _ = client.teardown(&[]).await;
                        return Ok(End::Failed(format!("no media from {} for {} s", self.shown, MEDIA_TIMEOUT.as_secs())));
                    }
                    continue;
                }
            };
            let Some(ingest) = self.ingest.as_mut() else {
                continue;
            };
            let event = if rtcp {
                ingest.rtcp(track, &data)
            } else {
                last_media = Some(Instant::now());
                ingest.rtp(track, &data, now_micros())
            };
            if let Some(e) = event {
                log_event(&camera, &e);
            }
            while let Some(au) = ingest.pull() {
                if self.delivered.is_none() {
                    self.delivered = Some(Instant::now());
                    self.stream.set_offline(None);
                    tracing::info!(camera, url = %self.shown, "camera online: media flows");
                }
                self.stream.push(au);
            }
        }
    }
}

/// Asks the camera, on a connection of its own that does nothing else, whether it offers
/// an ONVIF backchannel (DESCRIBE with the Require tag: an `a=sendonly` audio section, or
/// `551`), and tells the relay. The video session never asks, so a camera's backchannel
/// is touched only by this DESCRIBE and by the relay while someone talks.
async fn probe_backchannel(
    url: String,
    transport: ClientTransport,
    tls: ClientTls,
    relay: Arc<relay::Relay>,
) {
    let transport = match transport {
        ClientTransport::Udp => ClientTransport::Tcp,
        t => t,
    };
    let answer = match RtspClient::connect_with(&url, transport, &tls).await {
        Ok(mut c) => c.describe(&[BACKCHANNEL_TAG]).await.map(|(_, sdp, _)| sdp),
        Err(e) => Err(e),
    };
    match answer {
        Ok(sdp) => relay.set_offered(
            sdp.media
                .iter()
                .find(|m| m.kind == MediaKind::Audio && m.direction == Some(Direction::SendOnly))
                .map(|m| {
                    m.formats
                        .iter()
                        .filter_map(|f| Some(format!("{}/{}", f.encoding_name()?, f.clock_rate()?)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Err(ClientError::Status { status: 551, .. }) => relay.set_offered(Vec::new()),
        Err(e) => tracing::debug!(url = %redact(&url), error = %e, "backchannel probe failed"),
    }
}

/// The camera's RTSP URL: as configured, or asked of the ONVIF device now.
async fn camera_url(cfg: &UpstreamConfig, camera: &str) -> Result<String, End> {
    let Some(o) = &cfg.onvif else {
        return Ok(cfg.url.clone());
    };
    let resolved = ipcamd_client::onvif::resolve_stream(
        &o.device_url,
        o.username.as_deref(),
        o.password.as_deref(),
        o.profile.as_deref(),
    )
    .await?;
    let url = match &o.username {
        Some(u) => with_credentials(&resolved.rtsp_url, u, o.password.as_deref().unwrap_or("")),
        None => resolved.rtsp_url.clone(),
    };
    tracing::info!(camera, device = %o.device_url, profile = %resolved.profile_token,
            url = %redact(&url), backchannel = resolved.backchannel, "ONVIF stream URI");
    if let Some(r) = &cfg.relay {
        r.set_url(&url);
    }
    Ok(url)
}

/// Receives datagrams of one socket into the session's queue until the queue closes.
async fn udp_receiver(
    sock: Arc<UdpSocket>,
    track: usize,
    rtcp: bool,
    tx: tokio::sync::mpsc::Sender<(usize, bool, Bytes)>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _from): (usize, SocketAddr) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "upstream UDP receive error");
                continue;
            }
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        if tx.send((track, rtcp, data)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_lose_their_credentials_in_logs() {
        assert_eq!(
            redact("rtsp://admin:s3cret@10.0.0.2:554/a"),
            "rtsp://10.0.0.2:554/a"
        );
        assert_eq!(redact("rtsp://10.0.0.2/a@b"), "rtsp://10.0.0.2/a@b");
        assert_eq!(redact("rtsp://u@h/x"), "rtsp://h/x");
    }
}
