//! The configuration file (TOML). Every key has a default, so no file is needed: the
//! default is one synthetic camera `cam1`. The reference is in README.md ("Configuration").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub auth: AuthSection,
    pub tls: TlsSection,
    pub limits: LimitsSection,
    pub onvif: OnvifSection,
    pub metrics: MetricsSection,
    pub webrtc: WebRtcSection,
    #[serde(rename = "camera")]
    pub cameras: Vec<CameraConfig>,
}

/// Users and how requests are authenticated (README "Authentication and TLS").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The users file; default `<data_dir>/users.toml`.
    pub users_file: Option<PathBuf>,
    /// Digest realm (the users' hashes depend on it).
    pub realm: String,
    /// Role of requests without credentials: "none", "viewer", "operator" or "admin".
    /// Default: "operator" while the users file holds no user, "none" once it holds one.
    pub anonymous: Option<String>,
    /// Seconds a nonce stays fresh; older ones are answered `stale=true`.
    pub nonce_lifetime_s: u64,
    /// Also offer and accept Basic authentication, on TLS connections only.
    pub basic_over_tls: bool,
    /// Accept Digest answers without qop (RFC 2069 form, sent by GStreamer's rtspsrc).
    pub allow_rfc2069: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            users_file: None,
            realm: "ipcamd".into(),
            anonymous: None,
            nonce_lifetime_s: 300,
            basic_over_tls: false,
            allow_rfc2069: true,
        }
    }
}

/// RTSPS/HTTPS, when `cert` and `key` are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// RTSPS listen address; "off" disables.
    pub rtsps_listen: String,
    /// HTTPS listen address; "off" disables.
    pub https_listen: String,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert: None,
            key: None,
            rtsps_listen: "0.0.0.0:8322".into(),
            https_listen: "0.0.0.0:8443".into(),
        }
    }
}

fn listen_or_off(key: &str, v: &str) -> Result<Option<SocketAddr>, String> {
    match v.trim() {
        "" | "off" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|e| format!("{key} = {s:?}: {e} (use e.g. \"0.0.0.0:8322\" or \"off\")")),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerSection::default(),
            store: StoreSection::default(),
            auth: AuthSection::default(),
            tls: TlsSection::default(),
            limits: LimitsSection::default(),
            onvif: OnvifSection::default(),
            metrics: MetricsSection::default(),
            webrtc: WebRtcSection::default(),
            cameras: vec![CameraConfig::default()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// RTSP listen address.
    pub rtsp_listen: SocketAddr,
    /// HTTP listen address (RTSP-over-HTTP tunnel, index); "" or "off" disables it.
    pub http_listen: String,
    /// First of the UDP port pair media is sent from (RTCP = +1); 0 = first free from 6970.
    pub rtp_port: u16,
    /// A frame's UDP packets to one client in one segmented send (Linux UDP GSO).
    pub udp_gso: bool,
    /// RTP payload bytes per replay packet over TCP, the HTTP tunnel and RTSPS when the
    /// client sends no `Blocksize` header (docs/replay.md "Packet size"): 1384 makes a
    /// packet of live's size; up to 65507 for clients known to take large packets.
    pub replay_blocksize: usize,
    /// Session timeout in seconds, announced in `Session: id;timeout=N`.
    pub session_timeout_s: u64,
    /// Folder for everything the server writes (talk WAV files, recordings).
    pub data_dir: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            rtsp_listen: ([0, 0, 0, 0], 8554).into(),
            http_listen: "0.0.0.0:8080".into(),
            rtp_port: 0,
            udp_gso: true,
            replay_blocksize: ipcamd_proto::rtsp::server::replay::DEFAULT_BLOCKSIZE,
            session_timeout_s: 60,
            data_dir: PathBuf::from("data"),
        }
    }
}

/// ONVIF services (always on the HTTP port) and WS-Discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnvifSection {
    /// Answer WS-Discovery probes, send Hello at start and Bye at shutdown.
    pub discovery: bool,
    /// WS-Discovery UDP port (3702 by the standard).
    pub discovery_port: u16,
    /// GetDeviceInformation's Manufacturer and Model.
    pub manufacturer: String,
    pub model: String,
    /// Event service: open pull-point subscriptions per user, and in all.
    pub max_subscriptions_per_user: usize,
    pub max_subscriptions: usize,
}

impl Default for OnvifSection {
    fn default() -> Self {
        OnvifSection {
            discovery: true,
            discovery_port: 3702,
            manufacturer: "ipcamd".into(),
            model: "ipcamd".into(),
            max_subscriptions_per_user: 10,
            max_subscriptions: 128,
        }
    }
}

/// `GET /metrics` on the HTTP port (README "Metrics", docs/metrics.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/metrics` (to users with the viewer role, or with the token).
    pub enabled: bool,
    /// A bearer token that also grants `/metrics` (`Authorization: Bearer TOKEN`), for a
    /// Prometheus server without a user of its own.
    pub token: Option<String>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            token: None,
        }
    }
}

impl MetricsSection {
    pub fn options(&self) -> Result<ipcamd_server::http::metrics::MetricsOptions, String> {
        if let Some(t) = &self.token {
            if t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()) {
                return Err(
                    "[metrics] token must be at least 16 printable ASCII characters without spaces"
                        .into(),
                );
            }
        }
        Ok(ipcamd_server::http::metrics::MetricsOptions {
            enabled: self.enabled,
            token: self.token.clone(),
        })
    }
}

/// WebRTC live view and browser talk over WHEP (README "Web console", docs/webrtc.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcSection {
    /// Serve `/whep/NAME` (else the page plays over MSE only).
    pub enabled: bool,
    /// The one UDP port every WebRTC peer's media goes through.
    pub udp_listen: SocketAddr,
    /// The address announced to browsers (behind NAT: the public one); default: the
    /// address the browser reached the HTTP port on.
    pub public_ip: Option<std::net::IpAddr>,
    /// WebRTC peers at once.
    pub max_peers: usize,
}

impl Default for WebRtcSection {
    fn default() -> Self {
        WebRtcSection {
            enabled: true,
            udp_listen: ([0, 0, 0, 0], 8189).into(),
            public_ip: None,
            max_peers: 64,
        }
    }
}

impl WebRtcSection {
    pub fn options(&self) -> Result<ipcamd_server::webrtc::WebRtcOptions, String> {
        if self.max_peers == 0 {
            return Err("[webrtc] max_peers must be at least 1 (or set enabled = false)".into());
        }
        if self.public_ip.is_some_and(|ip| ip.is_unspecified()) {
            return Err(
                "[webrtc] public_ip must be an address browsers can reach, not 0.0.0.0 or ::"
                    .into(),
            );
        }
        Ok(ipcamd_server::webrtc::WebRtcOptions {
            enabled: self.enabled,
            udp_listen: self.udp_listen,
            public_ip: self.public_ip,
            max_peers: self.max_peers,
        })
    }
}

/// The recording store, under `<data_dir>/recordings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Length of a segment file in seconds (cut at the next keyframe).
    pub segment_s: u64,
    /// Recorded frames are made durable this often; a crash loses at most about this much.
    pub flush_ms: u64,
    /// Delete the oldest footage when all recordings together exceed this many GB.
    pub max_gb: Option<f64>,
    /// Delete footage older than this many days.
    pub max_age_days: Option<f64>,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            segment_s: 60,
            flush_ms: 2000,
            max_gb: None,
            max_age_days: None,
        }
    }
}

impl StoreSection {
    /// Store options with the global limits of [store] and each camera's own.
    pub fn options(&self, cameras: &[CameraConfig]) -> ipcamd_store::StoreOptions {
        let per_camera = cameras
            .iter()
            .filter(|c| c.max_gb.is_some() || c.max_age_days.is_some())
            .map(|c| {
                (
                    c.name.clone(),
                    ipcamd_store::Retention {
                        max_bytes: c.max_gb.map(|g| (g * 1e9) as u64),
                        max_age: c
                            .max_age_days
                            .map(|d| Duration::from_secs_f64(d * 86_400.0)),
                    },
                )
            })
            .collect();
        ipcamd_store::StoreOptions {
            per_camera,
            segment_duration: Duration::from_secs(self.segment_s.max(1)),
            flush_interval: Duration::from_millis(self.flush_ms.max(10)),
            max_bytes: self.max_gb.map(|g| (g * 1e9) as u64),
            max_age: self
                .max_age_days
                .map(|d| Duration::from_secs_f64(d * 86_400.0)),
            ..ipcamd_store::StoreOptions::default()
        }
    }
}

/// `[limits]`: limits against hostile or broken clients (see README "Limits").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_sessions_per_connection: usize,
    pub max_request_head_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    pub request_timeout_s: u64,
    pub idle_timeout_s: u64,
    pub tunnel_pair_timeout_s: u64,
    pub max_unrouted_interleaved: u64,
    pub backchannel_max_packets_per_s: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = ipcamd_server::net::limits::Limits::default();
        LimitsSection {
            max_connections: d.max_connections,
            max_connections_per_ip: d.max_connections_per_ip,
            max_sessions_per_connection: d.max_sessions_per_connection,
            max_request_head_bytes: d.max_request_head_bytes,
            max_headers: d.max_headers,
            max_body_bytes: d.max_body_bytes,
            request_timeout_s: d.request_timeout.as_secs(),
            idle_timeout_s: d.idle_timeout.as_secs(),
            tunnel_pair_timeout_s: d.tunnel_pair_timeout.as_secs(),
            max_unrouted_interleaved: d.max_unrouted_interleaved,
            backchannel_max_packets_per_s: d.backchannel_max_packets_per_s,
        }
    }
}

impl LimitsSection {
    pub fn limits(&self) -> ipcamd_server::net::limits::Limits {
        ipcamd_server::net::limits::Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_sessions_per_connection: self.max_sessions_per_connection,
            max_request_head_bytes: self.max_request_head_bytes,
            max_headers: self.max_headers,
            max_body_bytes: self.max_body_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_s),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            tunnel_pair_timeout: Duration::from_secs(self.tunnel_pair_timeout_s),
            max_unrouted_interleaved: self.max_unrouted_interleaved,
            backchannel_max_packets_per_s: self.backchannel_max_packets_per_s,
        }
    }

    fn check(&self) -> Result<(), String> {
        let l = self;
        let positive = [
            ("max_connections", l.max_connections as u64),
            ("max_connections_per_ip", l.max_connections_per_ip as u64),
            (
                "max_sessions_per_connection",
                l.max_sessions_per_connection as u64,
            ),
            ("max_headers", l.max_headers as u64),
            ("request_timeout_s", l.request_timeout_s),
            ("idle_timeout_s", l.idle_timeout_s),
            ("tunnel_pair_timeout_s", l.tunnel_pair_timeout_s),
            (
                "backchannel_max_packets_per_s",
                u64::from(l.backchannel_max_packets_per_s),
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("[limits] {key} must be at least 1 (got 0)"));
            }
        }
        if l.max_request_head_bytes < 256 {
            return Err(format!(
                "[limits] max_request_head_bytes must be at least 256 (got {})",
                l.max_request_head_bytes
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Synthetic,
    File,
    /// A camera (or any RTSP server) pulled over RTSP: `url`.
    Rtsp,
    /// An ONVIF camera by its device service address `url`: its stream URI is asked for
    /// (GetProfiles, GetStreamUri) at each connection, then pulled as `rtsp`.
    Onvif,
    /// A stream an RTSP client publishes to rtsp://HOST:PORT/<name> (ANNOUNCE/RECORD).
    Publish,
    /// A command (`command`, run with `sh -c`) that publishes to the camera's own URL.
    Exec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Mjpeg,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Name, and the path of its URL: rtsp://HOST:PORT/<name>.
    pub name: String,
    pub source: SourceKind,
    // Synthetic camera.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_ms: u32,
    pub video: VideoCodec,
    pub jpeg_quality: u8,
    pub audio: bool,
    /// Synthetic camera: motion events (ONVIF Event service) in periods, e.g.
    /// "10s on / 20s off", starting with motion when the server starts.
    pub motion_periods: Option<String>,
    /// Synthetic and file cameras: how far this camera's clock is from the true time, in
    /// seconds (a camera whose clock is wrong: its capture times, RTCP sender reports,
    /// picture overlay and recording use it). 0 by default.
    pub clock_offset_s: f64,
    // File source.
    pub path: Option<PathBuf>,
    // RTSP and ONVIF sources.
    /// `rtsp://[user:pass@]host[:port]/path` of the camera (`source = "rtsp"`), or its
    /// device service `http://host[:port]/onvif/device_service` (`source = "onvif"`).
    pub url: Option<String>,
    /// ONVIF profile token or name (`source = "onvif"`); the first with video if unset.
    pub profile: Option<String>,
    /// Credentials for the camera (instead of the URL's); never logged.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect to the camera only while someone watches (needs record = false).
    pub on_demand: bool,
    /// `rtsps://` cameras: a PEM file of the certificates to trust (the camera's own
    /// self-signed certificate, or its CA) instead of the public roots.
    pub tls_ca: Option<PathBuf>,
    /// `rtsps://` cameras: accept any certificate (trusted networks only).
    pub tls_insecure: bool,
    /// How media comes from the camera: "tcp" (default), "udp", "http" (RTSP over HTTP to
    /// the URL's port) or "auto" (UDP, then TCP after 2 s without media).
    pub transport: String,
    // Publish and exec sources.
    /// Who may publish: "viewer", "operator" (default), "admin", or "anonymous" (anyone,
    /// without credentials; only when set explicitly).
    pub publish_role: Option<String>,
    /// A new publisher replaces the live one instead of getting 455.
    pub publish_override: bool,
    /// Exec source: the command, run with `sh -c`; `{url}` (or `$IPCAMD_PUBLISH_URL`) is
    /// the camera's publish URL, e.g. "ffmpeg -re -f lavfi -i testsrc2 -c:v libx264 -f rtsp {url}".
    pub command: Option<String>,
    /// ONVIF audio backchannel (two-way audio) of this camera. Without the section:
    /// synthetic and file cameras write talk audio to WAV files, proxied cameras relay it to
    /// the camera's own backchannel (offered only while the camera offers one), published
    /// cameras have none.
    pub backchannel: Option<BackchannelSection>,
    /// Record this camera continuously into the store.
    pub record: bool,
    /// Keep at most this many GB of this camera's recording (oldest deleted first).
    pub max_gb: Option<f64>,
    /// Delete this camera's footage older than this many days.
    pub max_age_days: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelSection {
    /// Offer the backchannel (a=sendonly section) when a client asks for it.
    pub enabled: bool,
    /// Where talk audio goes: any of "wav" (one file per talk session), "exec" (raw
    /// s16le mono PCM to a command's standard input), "alsa" (a sound card; needs the
    /// cargo feature `alsa`) and "record" (an extra track of the camera's recording).
    pub outputs: Vec<String>,
    /// ALSA playback device of the "alsa" output (`aplay -L` lists them).
    pub alsa_device: String,
    /// Folder of the WAV files; relative paths are under [server] data_dir.
    pub wav_dir: PathBuf,
    /// Command for the "exec" output, run with `sh -c`, e.g. "aplay -q -f S16_LE -r 16000".
    pub exec: Option<String>,
    /// Sample rate of the PCM given to the outputs.
    pub output_rate: u32,
    /// "exclusive": the first talker owns the output, others get 453; "mix": mixed.
    pub policy: String,
    /// G.726 bit order: "rfc3551" (what the SDP name G726-xx means) or "aal2".
    pub g726_packing: String,
    /// Jitter buffer depth in milliseconds.
    pub jitter_ms: u64,
}

impl Default for BackchannelSection {
    fn default() -> Self {
        BackchannelSection {
            enabled: true,
            outputs: vec!["wav".into()],
            alsa_device: "default".into(),
            wav_dir: PathBuf::from("talk"),
            exec: None,
            output_rate: 16000,
            policy: "exclusive".into(),
            g726_packing: "rfc3551".into(),
            jitter_ms: 60,
        }
    }
}

impl CameraConfig {
    /// The backchannel section in force: the given one, else the default for a synthetic
    /// or file camera, none for a proxied one. `None` also when it is disabled.
    pub fn backchannel(&self) -> Option<BackchannelSection> {
        let b = match &self.backchannel {
            Some(b) => b.clone(),
            // A proxied camera's talkers go to the camera's own backchannel.
            None if self.is_proxied() => BackchannelSection {
                outputs: vec!["relay".into()],
                ..BackchannelSection::default()
            },
            None if self.is_publish() => return None,
            None => BackchannelSection::default(),
        };
        b.enabled.then_some(b)
    }

    /// Pulled from another device (`rtsp` or `onvif`).
    pub fn is_proxied(&self) -> bool {
        matches!(self.source, SourceKind::Rtsp | SourceKind::Onvif)
    }

    /// Whether the camera is fed by a publisher (`source = "publish"` or `"exec"`).
    pub fn is_publish(&self) -> bool {
        matches!(self.source, SourceKind::Publish | SourceKind::Exec)
    }

    /// The role publishing needs (`None`: anyone, for `publish_role = "anonymous"`).
    pub fn publish_role(&self) -> Result<Option<ipcamd_server::auth::Role>, String> {
        match self.publish_role.as_deref() {
            None => Ok(Some(ipcamd_server::auth::Role::Operator)),
            Some("anonymous") => Ok(None),
            Some(r) => ipcamd_server::auth::Role::parse(r).map(Some).ok_or_else(|| {
                format!("publish_role = {r:?}: use \"viewer\", \"operator\", \"admin\" or \"anonymous\"")
            }),
        }
    }

    /// The camera's URL with the `username`/`password` keys as its userinfo
    /// (percent-encoded); the keys win over credentials in the URL.
    pub fn upstream_url(&self) -> Result<String, String> {
        let Some(url) = self.url.as_deref() else {
            return Err("source = \"rtsp\" needs url = \"rtsp://host:554/path\"".into());
        };
        let Some(rest) = url
            .strip_prefix("rtsp://")
            .or_else(|| url.strip_prefix("rtsps://"))
        else {
            return Err(format!(
                "url must start with rtsp:// or rtsps:// (got {:?})",
                ipcamd_server::upstream::redact(url)
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!(
                "url has no host: {:?}",
                ipcamd_server::upstream::redact(url)
            ));
        }
        Ok(match &self.username {
            None => url.to_owned(),
            Some(u) => ipcamd_server::upstream::with_credentials(
                url,
                u,
                self.password.as_deref().unwrap_or(""),
            ),
        })
    }
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            name: "cam1".into(),
            source: SourceKind::Synthetic,
            width: 640,
            height: 360,
            fps: 25,
            bitrate_kbps: 1000,
            keyframe_interval_ms: 2000,
            video: VideoCodec::H264,
            jpeg_quality: 80,
            audio: true,
            motion_periods: None,
            clock_offset_s: 0.0,
            path: None,
            url: None,
            profile: None,
            username: None,
            password: None,
            transport: "tcp".into(),
            on_demand: false,
            tls_ca: None,
            tls_insecure: false,
            publish_role: None,
            publish_override: false,
            command: None,
            backchannel: None,
            record: true,
            max_gb: None,
            max_age_days: None,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file. Errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        self.limits.check()?;
        self.metrics.options()?;
        self.webrtc.options()?;
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.cameras.iter().enumerate() {
            let at = format!("[[camera]] #{} ({:?})", i + 1, c.name);
            if !ipcamd_server::net::limits::is_safe_name(&c.name)
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(format!(
                    "{at}: name must be 1-64 letters, digits, '-' and '_' (it is a URL path and a file name)"
                ));
            }
            if c.name == "replay" {
                return Err(format!(
                    "{at}: name \"replay\" is reserved (replay URLs are /replay/<camera>)"
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(format!("{at}: name is used by another camera"));
            }
            if c.source == SourceKind::Onvif {
                match c.url.as_deref() {
                    Some(u) if u.starts_with("http://") => {}
                    other => return Err(format!(
                        "{at}: source = \"onvif\" needs url = \"http://HOST[:PORT]/onvif/device_service\" (got {:?}; https is not supported)",
                        other.map(ipcamd_server::upstream::redact)
                    )),
                }
            }
            if c.is_proxied() {
                if c.source == SourceKind::Rtsp {
                    c.upstream_url().map_err(|e| format!("{at}: {e}"))?;
                }
                if let Some(ca) = &c.tls_ca {
                    if !ca.is_file() {
                        return Err(format!("{at}: tls_ca = {:?}: no such file (a PEM file of the certificates to trust)", ca.display()));
                    }
                }
                if c.on_demand && c.record {
                    return Err(format!("{at}: on_demand = true needs record = false (a recorded camera is always connected)"));
                }
                if !["tcp", "udp", "http", "auto"].contains(&c.transport.as_str()) {
                    return Err(format!(
                        "{at}: transport must be \"tcp\", \"udp\", \"http\" or \"auto\" (got {:?})",
                        c.transport
                    ));
                }
            }
            if !c.clock_offset_s.is_finite() || c.clock_offset_s.abs() > 10.0 * 365.0 * 86400.0 {
                return Err(format!(
                    "{at}: clock_offset_s must be within ten years (got {})",
                    c.clock_offset_s
                ));
            }
            if c.clock_offset_s != 0.0 && (c.is_proxied() || c.is_publish()) {
                return Err(format!("{at}: clock_offset_s is for synthetic and file cameras (a proxied camera has its own clock)"));
            }
            if c.on_demand && !c.is_proxied() {
                return Err(format!(
                    "{at}: on_demand is for source = \"rtsp\" and \"onvif\" cameras"
                ));
            }
            if c.is_publish() {
                c.publish_role().map_err(|e| format!("{at}: {e}"))?;
            } else if c.publish_role.is_some() || c.publish_override {
                return Err(format!(
                    "{at}: publish_role and publish_override are for source = \"publish\" or \"exec\""
                ));
            }
            match (&c.command, c.source) {
                (Some(cmd), SourceKind::Exec) => {
                    if !cmd.contains("{url}") && !cmd.contains("IPCAMD_PUBLISH_URL") {
                        return Err(format!(
                            "{at}: command never names where to publish: put {{url}} where the camera's RTSP URL goes (e.g. ... -f rtsp {{url}})"
                        ));
                    }
                }
                (None, SourceKind::Exec) => {
                    return Err(format!(
                        "{at}: source = \"exec\" needs command = \"... -f rtsp {{url}}\""
                    ))
                }
                (Some(_), _) => {
                    return Err(format!("{at}: command is for source = \"exec\""));
                }
                (None, _) => {}
            }
            if c.source == SourceKind::File && c.path.is_none() {
                return Err(format!(
                    "{at}: source = \"file\" needs path = \"/some/file.mp4\""
                ));
            }
            if c.video == VideoCodec::Mjpeg
                && (!(16..=4096).contains(&c.width) || !(16..=4096).contains(&c.height))
            {
                // Refused here rather than accepted and then dropped frame by frame.
                return Err(format!(
                    "{at}: width/height {}x{}: video = \"mjpeg\" is drawn and sent at 16..4096 \
                     pixels a side (frames over 2040 go with the ONVIF JPEG header extension, \
                     docs/mjpeg.md)",
                    c.width, c.height
                ));
            }
            if !(16..=4096).contains(&c.width) || !(16..=4096).contains(&c.height) {
                return Err(format!(
                    "{at}: width/height must be 16..4096 (got {}x{})",
                    c.width, c.height
                ));
            }
            if !(1..=120).contains(&c.fps) {
                return Err(format!("{at}: fps must be 1..120 (got {})", c.fps));
            }
            let b = &c.backchannel().unwrap_or_default();
            for o in &b.outputs {
                match o.as_str() {
                    "wav" => {}
                    "exec" if b.exec.is_some() => {}
                    "exec" => return Err(format!("{at}: backchannel output \"exec\" needs exec = \"command\"")),
                    "alsa" if cfg!(feature = "alsa") => {
                        if b.alsa_device.is_empty() || b.alsa_device.contains('\0') {
                            return Err(format!("{at}: backchannel alsa_device must be a device name such as \"default\" or \"plughw:0\" (got {:?})", b.alsa_device));
                        }
                    }
                    "alsa" => {
                        return Err(format!(
                            "{at}: backchannel output \"alsa\": ipcamd was built without the alsa feature; rebuild with --features alsa (needs libasound2-dev), or use \"exec\" with aplay"
                        ))
                    }
                    "relay" if c.is_proxied() => {}
                    "relay" => return Err(format!("{at}: backchannel output \"relay\" is for source = \"rtsp\" and \"onvif\" cameras (it sends talk audio to the camera's own backchannel)")),
                    "record" if c.record => {}
                    "record" => {
                        return Err(format!(
                            "{at}: backchannel output \"record\" stores talk audio in the camera's recording, but the camera has record = false"
                        ))
                    }
                    other => return Err(format!("{at}: unknown backchannel output {other:?} (use \"wav\", \"exec\", \"alsa\" or \"record\")")),
                }
            }
            if !matches!(b.policy.as_str(), "exclusive" | "mix") {
                return Err(format!(
                    "{at}: backchannel policy must be \"exclusive\" or \"mix\" (got {:?})",
                    b.policy
                ));
            }
            if !matches!(b.g726_packing.as_str(), "rfc3551" | "aal2") {
                return Err(format!(
                    "{at}: g726_packing must be \"rfc3551\" or \"aal2\" (got {:?})",
                    b.g726_packing
                ));
            }
            if !(8000..=48000).contains(&b.output_rate) {
                return Err(format!(
                    "{at}: backchannel output_rate must be 8000..48000 (got {})",
                    b.output_rate
                ));
            }
            if let Some(m) = &c.motion_periods {
                if c.source != SourceKind::Synthetic {
                    return Err(format!("{at}: motion_periods is for synthetic cameras"));
                }
                ipcamd_server::onvif::events::MotionPeriods::parse(m)
                    .map_err(|e| format!("{at}: {e}"))?;
            }
            if !(1..=100).contains(&c.jpeg_quality) {
                return Err(format!(
                    "{at}: jpeg_quality must be 1..100 (got {})",
                    c.jpeg_quality
                ));
            }
        }
        let positive = |v: Option<f64>| v.is_none_or(|x| x.is_finite() && x > 0.0 && x < 1e9);
        if !positive(self.store.max_gb) || !positive(self.store.max_age_days) {
            return Err("[store] max_gb and max_age_days must be positive numbers".into());
        }
        for c in &self.cameras {
            if !positive(c.max_gb) || !positive(c.max_age_days) {
                return Err(format!(
                    "[[camera]] {:?}: max_gb and max_age_days must be positive numbers",
                    c.name
                ));
            }
        }
        if self.onvif.max_subscriptions_per_user == 0
            || self.onvif.max_subscriptions == 0
            || self.onvif.max_subscriptions > 100_000
        {
            return Err(
                "[onvif] max_subscriptions_per_user and max_subscriptions must be 1..100000".into(),
            );
        }
        if self.server.session_timeout_s == 0 {
            return Err("[server] session_timeout_s must be at least 1".into());
        }
        {
            use ipcamd_proto::rtsp::server::replay::{MAX_INTERLEAVED_BLOCKSIZE, MIN_BLOCKSIZE};
            let b = self.server.replay_blocksize;
            if !(MIN_BLOCKSIZE..=MAX_INTERLEAVED_BLOCKSIZE).contains(&b) {
                return Err(format!(
                    "[server] replay_blocksize = {b}: must be {MIN_BLOCKSIZE}..{MAX_INTERLEAVED_BLOCKSIZE} (RTP payload bytes; 1384 is the default)"
                ));
            }
        }
        self.anonymous_role()?;
        if self.auth.nonce_lifetime_s == 0 {
            return Err("[auth] nonce_lifetime_s must be at least 1".into());
        }
        if self.auth.realm.is_empty() || self.auth.realm.contains('"') {
            return Err("[auth] realm must be non-empty and without '\"'".into());
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(
                "[tls] needs both cert and key (make a pair with `ipcamd cert --self-signed`)"
                    .into(),
            );
        }
        listen_or_off("[tls] rtsps_listen", &self.tls.rtsps_listen)?;
        listen_or_off("[tls] https_listen", &self.tls.https_listen)?;
        Ok(())
    }

    /// `[auth] anonymous`: `Ok(None)` when not configured, `Ok(Some(None))` for "none".
    #[allow(clippy::type_complexity)]
    pub fn anonymous_role(&self) -> Result<Option<Option<ipcamd_server::auth::Role>>, String> {
        match self.auth.anonymous.as_deref() {
            None => Ok(None),
            Some("none") => Ok(Some(None)),
            Some(r) => ipcamd_server::auth::Role::parse(r)
                .map(|r| Some(Some(r)))
                .ok_or_else(|| {
                    format!("[auth] anonymous = {r:?}: use \"none\", \"viewer\", \"operator\" or \"admin\"")
                }),
        }
    }

    /// The users file: `[auth] users_file`, default `<data_dir>/users.toml`.
    pub fn users_file(&self) -> PathBuf {
        self.auth
            .users_file
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("users.toml"))
    }

    pub fn auth_options(&self) -> Result<ipcamd_server::auth::AuthOptions, String> {
        let anonymous = self.anonymous_role()?;
        Ok(ipcamd_server::auth::AuthOptions {
            realm: self.auth.realm.clone(),
            users_file: Some(self.users_file()),
            anonymous: anonymous.flatten(),
            anonymous_explicit: anonymous.is_some(),
            nonce_lifetime: Duration::from_secs(self.auth.nonce_lifetime_s),
            basic_over_tls: self.auth.basic_over_tls,
            allow_rfc2069: self.auth.allow_rfc2069,
        })
    }

    pub fn tls_options(&self) -> Result<Option<ipcamd_server::net::tls::TlsOptions>, String> {
        let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) else {
            return Ok(None);
        };
        Ok(Some(ipcamd_server::net::tls::TlsOptions {
            cert: cert.clone(),
            key: key.clone(),
            rtsps_listen: listen_or_off("[tls] rtsps_listen", &self.tls.rtsps_listen)?,
            https_listen: listen_or_off("[tls] https_listen", &self.tls.https_listen)?,
        }))
    }

    pub fn http_listen(&self) -> Result<Option<SocketAddr>, String> {
        match self.server.http_listen.trim() {
            "" | "off" => Ok(None),
            s => s
                .parse()
                .map(Some)
                .map_err(|e| format!("[server] http_listen = {s:?}: {e}")),
        }
    }
}

/// "line N, key K in [section]: message" for a TOML error (the key and section are read
/// from the text at the error's position).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_owned();
    };
    let before = text.get(..span.start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim());
    let mut at = format!("line {line}");
    if let Some(k) = key {
        at.push_str(&format!(", key {k:?}"));
    }
    if let Some(s) = section {
        at.push_str(&format!(" in {s}"));
    }
    format!("{at}: {}", e.message().trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.cameras.len(), 1);
        assert_eq!(c.cameras[0].name, "cam1");
        assert_eq!(c.server.rtsp_listen.port(), 8554);
    }

    #[test]
    fn impossible_mjpeg_camera_is_refused_at_load() {
        let e = Config::parse(
            "[[camera]]\nname = \"big\"\nvideo = \"mjpeg\"\nwidth = 70000\nheight = 1440\n",
        )
        .unwrap_err();
        assert!(
            e.contains("\"big\"") && e.contains("width/height") && e.contains("mjpeg"),
            "{e}"
        );
        // 2560x1440 and 3840x2160 are served (with the header extension).
        for (w, h) in [(2560, 1440), (3840, 2160), (4096, 16)] {
            let c = Config::parse(&format!(
                "[[camera]]\nname = \"a\"\nvideo = \"mjpeg\"\nwidth = {w}\nheight = {h}\n"
            ));
            assert!(c.is_ok(), "{c:?}");
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("[server]\nrtsp_listen = \"0.0.0.0:1\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = Config::parse("[[camera]]\nname = \"a\"\nfps = \"x\"\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("\"fps\"") && e.contains("[[camera]]"),
            "{e}"
        );
        let c = Config::parse("").unwrap();
        assert!(c.metrics.enabled && c.metrics.token.is_none());
        let c =
            Config::parse("[metrics]\nenabled = false\ntoken = \"0123456789abcdef\"\n").unwrap();
        assert!(!c.metrics.enabled);
        let e = Config::parse("[metrics]\ntoken = \"short\"\n").unwrap_err();
        assert!(e.contains("[metrics] token"), "{e}");
        let c =
            Config::parse("[webrtc]\nudp_listen = \"0.0.0.0:9000\"\npublic_ip = \"203.0.113.7\"\n")
                .unwrap();
        assert_eq!(c.webrtc.udp_listen.port(), 9000);
        assert_eq!(c.webrtc.public_ip, Some([203, 0, 113, 7].into()));
        let e = Config::parse("[webrtc]\npublic_ip = \"0.0.0.0\"\n").unwrap_err();
        assert!(e.contains("[webrtc] public_ip"), "{e}");
        let e = Config::parse("[webrtc]\nmax_peers = 0\n").unwrap_err();
        assert!(e.contains("[webrtc] max_peers"), "{e}");
        let e = Config::parse("[limits]\nmax_connections = 0\n").unwrap_err();
        assert!(e.contains("[limits] max_connections"), "{e}");
        let e = Config::parse("[limits]\nrequest_timeout_s = -3\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("request_timeout_s"),
            "{e}"
        );
        let c = Config::parse("[limits]\nmax_connections_per_ip = 7\n").unwrap();
        assert_eq!(c.limits.limits().max_connections_per_ip, 7);
        let e = Config::parse("[[camera]]\nname = \"a/b\"\n").unwrap_err();
        assert!(e.contains("name"), "{e}");
        for bad in ["..", "a%00", "x.mp4", "\u{e9}"] {
            let e = Config::parse(&format!("[[camera]]\nname = {bad:?}\n")).unwrap_err();
            assert!(e.contains("name must be"), "{bad}: {e}");
        }
        let long = "c".repeat(65);
        assert!(Config::parse(&format!("[[camera]]\nname = \"{long}\"\n")).is_err());
        let e = Config::parse("[store]\nmax_age_days = -1\n").unwrap_err();
        assert!(e.contains("max_age_days"), "{e}");
        let e = Config::parse("[[camera]]\nname = \"f\"\nsource = \"file\"\n").unwrap_err();
        assert!(e.contains("path"), "{e}");
    }

    #[test]
    fn auth_and_tls_sections() {
        let c = Config::parse("[auth]\nanonymous = \"viewer\"\nnonce_lifetime_s = 5\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nhttps_listen = \"off\"\n").unwrap();
        let a = c.auth_options().unwrap();
        assert_eq!(a.anonymous, Some(ipcamd_server::auth::Role::Viewer));
        assert!(a.anonymous_explicit);
        assert_eq!(a.users_file, Some(PathBuf::from("data/users.toml")));
        let t = c.tls_options().unwrap().unwrap();
        assert_eq!(t.rtsps_listen.map(|a| a.port()), Some(8322));
        assert!(t.https_listen.is_none());
        let e = Config::parse("[auth]\nanonymous = \"root\"\n").unwrap_err();
        assert!(e.contains("anonymous"), "{e}");
        let e = Config::parse("[tls]\ncert = \"c.pem\"\n").unwrap_err();
        assert!(e.contains("key"), "{e}");
        assert!(Config::parse("").unwrap().tls_options().unwrap().is_none());
    }

    #[test]
    fn replay_blocksize_bounds() {
        assert_eq!(Config::parse("").unwrap().server.replay_blocksize, 1384);
        let c = Config::parse("[server]\nreplay_blocksize = 65507\n").unwrap();
        assert_eq!(c.server.replay_blocksize, 65507);
        for bad in ["255", "65508", "0"] {
            let e = Config::parse(&format!("[server]\nreplay_blocksize = {bad}\n")).unwrap_err();
            assert!(e.contains("replay_blocksize") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn cameras_parse() {
        let c = Config::parse(
            "[[camera]]\nname = \"a\"\nvideo = \"mjpeg\"\naudio = false\n[[camera]]\nname = \"b\"\nsource = \"file\"\npath = \"x.mp4\"\n",
        )
        .unwrap();
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[0].video, VideoCodec::Mjpeg);
        assert!(!c.cameras[0].audio);
        assert_eq!(c.cameras[1].source, SourceKind::File);
    }

    #[test]
    fn publish_and_exec_cameras() {
        let c = Config::parse(
            "[[camera]]\nname = \"p\"\nsource = \"publish\"\n[[camera]]\nname = \"q\"\nsource = \"publish\"\npublish_role = \"anonymous\"\npublish_override = true\n[[camera]]\nname = \"e\"\nsource = \"exec\"\ncommand = \"ffmpeg -f lavfi -i testsrc2 -f rtsp {url}\"\n",
        )
        .unwrap();
        use ipcamd_server::auth::Role;
        assert_eq!(c.cameras[0].publish_role(), Ok(Some(Role::Operator)));
        assert_eq!(c.cameras[1].publish_role(), Ok(None));
        assert!(c.cameras[1].publish_override);
        assert_eq!(c.cameras[2].source, SourceKind::Exec);
        // No backchannel unless configured.
        assert!(c.cameras.iter().all(|c| c.backchannel().is_none()));
        for (bad, words) in [
            ("source = \"publish\"\npublish_role = \"root\"", "anonymous"),
            ("publish_role = \"viewer\"", "publish_role"),
            ("source = \"exec\"", "needs command"),
            ("source = \"exec\"\ncommand = \"ffmpeg -f rtsp x\"", "{url}"),
            ("command = \"x {url}\"", "command is for"),
        ] {
            let e = Config::parse(&format!("[[camera]]\nname = \"a\"\n{bad}\n")).unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn backchannel_outputs() {
        let c = Config::parse(
            "[[camera]]\nname = \"a\"\n[camera.backchannel]\noutputs = [\"wav\", \"record\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.cameras[0].backchannel().unwrap_or_default().outputs,
            ["wav", "record"]
        );
        assert_eq!(
            c.cameras[0].backchannel().unwrap_or_default().alsa_device,
            "default"
        );
        let e = Config::parse(
            "[[camera]]\nname = \"a\"\nrecord = false\n[camera.backchannel]\noutputs = [\"record\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("record = false"), "{e}");
        let alsa = Config::parse(
            "[[camera]]\nname = \"a\"\n[camera.backchannel]\noutputs = [\"alsa\"]\nalsa_device = \"plughw:0\"\n",
        );
        if cfg!(feature = "alsa") {
            assert_eq!(
                alsa.unwrap().cameras[0]
                    .backchannel()
                    .unwrap_or_default()
                    .alsa_device,
                "plughw:0"
            );
        } else {
            let e = alsa.unwrap_err();
            assert!(e.contains("rebuild with --features alsa"), "{e}");
        }
        let e =
            Config::parse("[[camera]]\nname = \"a\"\n[camera.backchannel]\noutputs = [\"tape\"]\n")
                .unwrap_err();
        assert!(e.contains("tape"), "{e}");
    }
}
