//! ONVIF on the HTTP port: the SOAP services (`POST /onvif/<service>_service`, answered
//! by the sans-IO `ipcamd-onvif` crate from a [`DeviceModel`] built here from the live
//! cameras and the store), snapshots (`GET /snapshot/<camera>.jpg`), and the WS-Discovery
//! UDP task (Probe -> ProbeMatches, Hello at start, Bye at shutdown).
//!
//! The HTTP side is served on the existing hand-written HTTP listener ([`crate::http`]
//! hands over every request whose path starts with `/onvif/` or `/snapshot/`), with
//! HTTP/1.1 keep-alive so that clients reuse the connection for their many calls.
//! URIs in the answers use the host the request was addressed to (its `Host` header, or
//! the connection's local address).
//!
//! Users: the server's users file ([`crate::auth`]), seen by the onvif crate through
//! [`UsersAuth`]. A SOAP request may authenticate with WS-Security UsernameToken
//! (PasswordDigest, checked by the onvif crate; needs a user added with `--wsse`) or HTTP
//! Digest (checked here, per request on the keep-alive connection); without either it has
//! the anonymous role, if any. With no users configured every operation is allowed, as the
//! rest of the server is open then. PRE_AUTH operations (GetSystemDateAndTime,
//! GetServices, ...) never need credentials. Snapshots need the viewer role.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcamd_onvif::discovery::{self, Announce};
use ipcamd_onvif::model::{
    track_tokens, AudioEncoding, AudioModel, CameraModel, DeviceModel, NetInterface,
    RecordedSection, RecordedTrack, RecordingModel, TrackKind, VideoEncoding, VideoModel,
};
use ipcamd_onvif::{NonceCache, SoapAuth};
use ipcamd_proto::codec::{CodecParams, MediaKind};
use ipcamd_proto::tunnel::{parse_http_head, HttpRequestHead};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::auth::{Authorizer, Role as UserRole};
use crate::http::HttpIo;

use crate::state::{lock, Camera, ServerState};

/// Largest SOAP request body accepted (larger: 413).
const MAX_BODY: usize = ipcamd_onvif::soap::MAX_REQUEST_BYTES;
/// A keep-alive connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// `[onvif]` settings.
#[derive(Debug, Clone)]
pub struct OnvifOptions {
    /// Answer WS-Discovery probes and send Hello/Bye.
    pub discovery: bool,
    /// UDP port of WS-Discovery (3702 by the standard; tests use another).
    pub discovery_port: u16,
    /// What a camera's configuration says about its video (synthetic cameras); cameras
    /// without hints are measured from their live stream.
    pub hints: HashMap<String, VideoHints>,
    pub manufacturer: String,
    pub model: String,
}

impl Default for OnvifOptions {
    fn default() -> Self {
        OnvifOptions {
            discovery: true,
            discovery_port: discovery::PORT,
            hints: HashMap::new(),
            manufacturer: "ipcamd".into(),
            model: "ipcamd".into(),
        }
    }
}

/// Configured frame rate, bitrate and keyframe distance of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHints {
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub gov_length: u32,
}

/// ONVIF state shared by connections: users, the WS-Security nonce cache, counters.
pub struct OnvifState {
    pub auth: Arc<dyn SoapAuth + Send + Sync>,
    nonces: Mutex<NonceCache>,
    /// The device's WS-Discovery endpoint (`urn:uuid:...`), stable for a host and port.
    pub endpoint: String,
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    pub snapshots: AtomicU64,
    pub probes: AtomicU64,
    pub probes_malformed: AtomicU64,
}

/// The server's users as the onvif crate sees them.
pub struct UsersAuth(pub Arc<Authorizer>);

fn onvif_role(r: UserRole) -> ipcamd_onvif::Role {
    match r {
        UserRole::Viewer => ipcamd_onvif::Role::User,
        UserRole::Operator => ipcamd_onvif::Role::Operator,
        UserRole::Admin => ipcamd_onvif::Role::Administrator,
    }
}

impl SoapAuth for UsersAuth {
    fn enabled(&self) -> bool {
        !self.0.users().is_empty()
    }
    fn user(&self, name: &str) -> Option<(Option<String>, ipcamd_onvif::Role)> {
        let users = self.0.users();
        let u = users.lookup(name)?;
        Some((u.wsse_password.clone(), onvif_role(u.role())))
    }
    fn users(&self) -> Vec<(String, ipcamd_onvif::Role)> {
        self.0
            .users()
            .iter()
            .map(|u| (u.name.clone(), onvif_role(u.role())))
            .collect()
    }
}

impl OnvifState {
    pub fn new(http_port: u16, auth: Arc<Authorizer>) -> OnvifState {
        OnvifState {
            auth: Arc::new(UsersAuth(auth)),
            nonces: Mutex::new(NonceCache::new(10_000)),
            endpoint: endpoint_uuid(http_port),
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            probes_malformed: AtomicU64::new(0),
        }
    }
}

/// A stable `urn:uuid:` from the machine id (or host name) and the HTTP port.
fn endpoint_uuid(http_port: u16) -> String {
    use std::hash::{Hash, Hasher};
    let seed = std::fs::read_to_string("/etc/machine-id").unwrap_or_else(|_| hostname());
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (seed.trim(), http_port, i).hash(&mut h);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    discovery::urn_uuid(out)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "ipcamd".into())
}

/// Whether [`crate::http`] should hand this request to [`serve_http`].
pub fn wants(head: &HttpRequestHead) -> bool {
    head.path.starts_with("/onvif/") || head.path.starts_with("/snapshot/")
}

/// Serves ONVIF requests on one HTTP connection (keep-alive) until it closes or sends
/// something else.
pub async fn serve_http(
    state: Arc<ServerState>,
    mut stream: impl HttpIo,
    local: SocketAddr,
    tls: bool,
    mut head: HttpRequestHead,
    mut rest: Vec<u8>,
) {
    loop {
        // Every request on the keep-alive connection is authenticated on its own.
        let http_user = match http_identity(&state, &head, tls) {
            Ok(u) => u,
            Err(denied) => {
                let _ = stream.write_all(&denied.http_response()).await;
                let _ = stream.shutdown().await;
                return;
            }
        };
        let keep_alive = head.version == "HTTP/1.1"
            && !head
                .headers
                .get("Connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (status, ctype, body) = if head.path.starts_with("/snapshot/") {
            snapshot(&state, &head).await
        } else if head.method != "POST" {
            (
                "405 Method Not Allowed",
                "text/plain; charset=utf-8",
                b"ONVIF services take SOAP requests by POST\n".to_vec(),
            )
        } else {
            let len = head
                .headers
                .get("Content-Length")
                .and_then(|v| v.trim().parse::<usize>().ok());
            match len {
                None => (
                    "411 Length Required",
                    "text/plain; charset=utf-8",
                    b"a SOAP request needs Content-Length\n".to_vec(),
                ),
                Some(n) if n > MAX_BODY => (
                    "413 Payload Too Large",
                    "text/plain; charset=utf-8",
                    format!("SOAP requests are limited to {MAX_BODY} bytes\n").into_bytes(),
                ),
                Some(n) => {
                    if !read_exact_into(&mut stream, &mut rest, n).await {
                        return;
                    }
                    let body: Vec<u8> = rest.drain(..n).collect();
                    let host = head
                        .headers
                        .get("Host")
                        .map(strip_port)
                        .unwrap_or_else(|| local.ip().to_string());
                    let user = http_user.as_ref().map(|(n, r)| (n.as_str(), *r));
                    let (status, xml) = soap(&state, &head.path, &host, local, &body, user).await;
                    // Refused (or unreadable) without any credentials: answer with the
                    // HTTP Digest challenge, so that Digest clients (which send a first
                    // request without them, often without a body) can authenticate.
                    if status != "200 OK"
                        && http_user.is_none()
                        && state.onvif.auth.enabled()
                        && (xml.contains("NotAuthorized") || body.is_empty())
                        && !contains(&body, b"UsernameToken")
                    {
                        let auth = &state.options.auth;
                        if let Err(d) =
                            auth.check(None, &head.method, &head.path, UserRole::Viewer, tls)
                        {
                            let _ = stream.write_all(&d.http_response()).await;
                            let _ = stream.shutdown().await;
                            return;
                        }
                    }
                    (
                        status,
                        "application/soap+xml; charset=utf-8",
                        xml.into_bytes(),
                    )
                }
            }
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nServer: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            state.options.server_name,
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if stream.write_all(resp.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
        {
            return;
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
        // The next request on the connection.
        match next_head(&mut stream, &mut rest).await {
            Some(h) if wants(&h) => head = h,
            Some(h) => {
                tracing::debug!(path = %h.path, "non-ONVIF request on an ONVIF keep-alive connection; closing");
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                return;
            }
            None => return,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn strip_port(host: &str) -> String {
    let h = host.trim();
    if let Some(v6) = h.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name.to_owned()
        }
        _ => h.to_owned(),
    }
}

/// Who the HTTP layer says sent `head`: `Ok(None)` for nobody (WS-Security may still
/// identify the sender), `Err` to answer 401/403 at once. Snapshots need the viewer role;
/// SOAP requests with an `Authorization` header need valid Digest credentials, and
/// without one have the anonymous role, if configured.
fn http_identity(
    state: &ServerState,
    head: &HttpRequestHead,
    tls: bool,
) -> Result<Option<(String, ipcamd_onvif::Role)>, crate::auth::Denied> {
    let auth = &state.options.auth;
    let authorization = head.headers.get("Authorization");
    if head.path.starts_with("/snapshot/") || authorization.is_some() {
        let id = auth.check(
            authorization,
            &head.method,
            &head.path,
            UserRole::Viewer,
            tls,
        )?;
        let name = id.user.unwrap_or_else(|| "anonymous".to_owned());
        return Ok(Some((name, onvif_role(id.role))));
    }
    Ok(auth
        .anonymous_role()
        .map(|r| ("anonymous".to_owned(), onvif_role(r))))
}

async fn read_exact_into(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> bool {
    let mut chunk = [0u8; 8192];
    while buf.len() < n {
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => buf.extend_from_slice(chunk.get(..k).unwrap_or_default()),
            _ => return false,
        }
    }
    true
}

async fn next_head(stream: &mut impl HttpIo, buf: &mut Vec<u8>) -> Option<HttpRequestHead> {
    let mut chunk = [0u8; 8192];
    loop {
        match parse_http_head(buf, 16 * 1024) {
            Ok(Some((head, used))) => {
                buf.drain(..used);
                return Some(head);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "malformed HTTP request on an ONVIF connection");
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return None;
            }
        }
        let k = tokio::time::timeout(IDLE, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..k)?);
    }
}

/// Answers one SOAP request: (HTTP status line, envelope).
pub async fn soap(
    state: &Arc<ServerState>,
    path: &str,
    host: &str,
    local: SocketAddr,
    body: &[u8],
    http_user: Option<(&str, ipcamd_onvif::Role)>,
) -> (&'static str, String) {
    state.onvif.requests.fetch_add(1, Ordering::Relaxed);
    if ipcamd_onvif::services::service_namespace(path.split('?').next().unwrap_or(path)).is_none() {
        state.onvif.faults.fetch_add(1, Ordering::Relaxed);
        return (
            "404 Not Found",
            ipcamd_onvif::Fault::sender(
                "ter:InvalidArgVal",
                None,
                format!("no ONVIF service at {path}; the device service is /onvif/device_service"),
            )
            .to_xml(),
        );
    }
    let model = device_model(state, host, local).await;
    let resp = {
        let mut nonces = lock(&state.onvif.nonces);
        ipcamd_onvif::handle(
            body,
            &model,
            state.onvif.auth.as_ref(),
            http_user,
            &mut nonces,
        )
    };
    if resp.status != 200 {
        state.onvif.faults.fetch_add(1, Ordering::Relaxed);
        tracing::info!(action = %resp.action, status = resp.status, "ONVIF fault");
    } else {
        tracing::debug!(action = %resp.action, "ONVIF request");
    }
    let status = match resp.status {
        200 => "200 OK",
        400 => "400 Bad Request",
        _ => "500 Internal Server Error",
    };
    (status, resp.body)
}

/// The device as the SOAP services see it now.
pub async fn device_model(state: &Arc<ServerState>, host: &str, local: SocketAddr) -> DeviceModel {
    let mut names: Vec<&String> = state.cameras.keys().collect();
    names.sort();
    let cameras: Vec<CameraModel> = names
        .iter()
        .filter_map(|n| state.cameras.get(*n))
        .map(|c| camera_model(c, state.options.onvif.hints.get(&c.name)))
        .collect();
    let recordings = match state.store.clone() {
        Some(store) => tokio::task::spawn_blocking(move || store.recordings())
            .await
            .ok()
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(error = %e, "cannot list recordings for ONVIF"))
                    .ok()
            })
            .unwrap_or_default()
            .iter()
            .map(recording_model)
            .collect(),
        None => Vec::new(),
    };
    let http_port = state.http_addr.map(|a| a.port()).unwrap_or(80);
    let o = &state.options.onvif;
    DeviceModel {
        manufacturer: o.manufacturer.clone(),
        model: o.model.clone(),
        firmware_version: env!("CARGO_PKG_VERSION").into(),
        serial_number: state.onvif.endpoint.trim_start_matches("urn:uuid:").into(),
        hardware_id: "ipcamd".into(),
        hostname: hostname(),
        host: host.to_owned(),
        http_port,
        rtsp_port: state.rtsp_addr.port(),
        now: ipcamd_media::pacer::now_micros(),
        scopes: scopes(o),
        interfaces: vec![NetInterface {
            token: "net0".into(),
            name: "net0".into(),
            mac: "00:00:00:00:00:00".into(),
            ipv4: match local.ip() {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
            },
            prefix_len: 32,
        }],
        cameras,
        recordings,
        users: state.onvif.auth.users(),
        session_timeout_s: state.options.session_timeout.as_secs(),
    }
}

fn scopes(o: &OnvifOptions) -> Vec<String> {
    let enc = |s: &str| s.replace(' ', "%20");
    vec![
        "onvif://www.onvif.org/type/video_encoder".into(),
        "onvif://www.onvif.org/type/audio_encoder".into(),
        "onvif://www.onvif.org/Profile/Streaming".into(),
        "onvif://www.onvif.org/Profile/G".into(),
        "onvif://www.onvif.org/Profile/T".into(),
        format!("onvif://www.onvif.org/name/{}", enc(&o.model)),
        format!("onvif://www.onvif.org/hardware/{}", enc(&o.manufacturer)),
    ]
}

/// Width and height from an H.264 SPS.
fn h264_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = h264_reader::rbsp::decode_nal(sps).ok()?;
    let sps = h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(
        &rbsp[..],
    ))
    .ok()?;
    sps.pixel_dimensions().ok()
}

/// Width and height from a JPEG's SOF0/SOF1/SOF2 segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg.get(i) != Some(&0xff) {
            return None;
        }
        let marker = *jpeg.get(i + 1)?;
        let len = u16::from_be_bytes([*jpeg.get(i + 2)?, *jpeg.get(i + 3)?]) as usize;
        if matches!(marker, 0xc0..=0xc2) {
            let h = u16::from_be_bytes([*jpeg.get(i + 5)?, *jpeg.get(i + 6)?]);
            let w = u16::from_be_bytes([*jpeg.get(i + 7)?, *jpeg.get(i + 8)?]);
            return Some((w.into(), h.into()));
        }
        i += 2 + len;
    }
    None
}

/// The current GOP of a camera's video track (keyframe first), from the fan-out backlog.
fn current_gop(c: &Camera, video_track: usize) -> Vec<Arc<ipcamd_media::fanout::Frame>> {
    let (mut reader, _) = c.stream.subscribe();
    let mut out = Vec::new();
    // Only the backlog: try_recv hands it out first, then whatever is live right now.
    while let Some(f) = reader.try_recv() {
        if f.track == video_track {
            out.push(f);
        }
        if out.len() > 1024 {
            break;
        }
    }
    out
}

fn camera_model(c: &Camera, hints: Option<&VideoHints>) -> CameraModel {
    let tracks = c.stream.tracks();
    let video = tracks
        .iter()
        .position(|t| t.codec.kind() == MediaKind::Video)
        .and_then(|i| {
            let t = tracks.get(i)?;
            let gop = current_gop(c, i);
            let (encoding, size) = match &t.codec {
                CodecParams::H264 { sps, .. } => (VideoEncoding::H264, h264_size(sps)),
                CodecParams::H265 { .. } => (VideoEncoding::H265, None),
                CodecParams::Jpeg => (
                    VideoEncoding::Jpeg,
                    gop.last().and_then(|f| jpeg_size(&f.au.data)),
                ),
                _ => return None,
            };
            let (width, height) = size.unwrap_or((0, 0));
            // Measured over the current GOP: frame interval and bytes.
            let clock = t.codec.clock_rate().max(1) as f64;
            let span = match (gop.first(), gop.last()) {
                (Some(a), Some(b)) => b.rtp_timestamp.wrapping_sub(a.rtp_timestamp) as f64 / clock,
                _ => 0.0,
            };
            let measured_fps = (gop.len() > 1 && span > 0.0)
                .then(|| ((gop.len() - 1) as f64 / span).round() as u32);
            let bytes: usize = gop.iter().map(|f| f.au.data.len()).sum();
            let measured_kbps =
                (span > 0.0).then(|| (bytes as f64 * 8.0 / span / 1000.0).round() as u32);
            let fps = hints.map(|h| h.fps).or(measured_fps).unwrap_or(25);
            Some(VideoModel {
                encoding,
                width,
                height,
                fps,
                bitrate_kbps: hints.map(|h| h.bitrate_kbps).or(measured_kbps).unwrap_or(0),
                gov_length: hints
                    .map(|h| h.gov_length)
                    .unwrap_or_else(|| (gop.len() as u32).max(1)),
            })
        });
    let audio = tracks.iter().find_map(|t| audio_model(&t.codec));
    let backchannel = c
        .backchannel
        .as_ref()
        .map(|out| {
            crate::backchannel::offer(&out.cfg)
                .iter()
                .filter_map(|o| o.format.rtpmap.as_deref().and_then(offered_model))
                .collect()
        })
        .unwrap_or_default();
    CameraModel {
        name: c.name.clone(),
        video,
        audio,
        backchannel,
    }
}

fn audio_model(codec: &CodecParams) -> Option<AudioModel> {
    Some(match codec {
        CodecParams::Pcmu { rate, .. } => AudioModel {
            encoding: AudioEncoding::Pcmu,
            sample_rate: *rate,
            bitrate_kbps: rate * 8 / 1000,
        },
        CodecParams::Pcma { rate, .. } => AudioModel {
            encoding: AudioEncoding::Pcma,
            sample_rate: *rate,
            bitrate_kbps: rate * 8 / 1000,
        },
        CodecParams::Aac { rate, .. } => AudioModel {
            encoding: AudioEncoding::Aac,
            sample_rate: *rate,
            bitrate_kbps: 64,
        },
        _ => return None,
    })
}

/// An offered backchannel format (`PCMU/8000`, `G726-32/8000`, ...) as ONVIF describes it.
fn offered_model(rtpmap: &str) -> Option<AudioModel> {
    let mut p = rtpmap.split('/');
    let name = p.next()?;
    let rate: u32 = p.next()?.parse().ok()?;
    let (encoding, kbps) = match name.to_ascii_uppercase().as_str() {
        "PCMU" => (AudioEncoding::Pcmu, rate * 8 / 1000),
        "PCMA" => (AudioEncoding::Pcma, rate * 8 / 1000),
        "MPEG4-GENERIC" => (AudioEncoding::Aac, 64),
        "OPUS" => (AudioEncoding::Opus, 64),
        "L16" => (AudioEncoding::L16, rate * 16 / 1000),
        g if g.starts_with("G726-") => (AudioEncoding::G726, g[5..].parse().ok()?),
        _ => return None,
    };
    Some(AudioModel {
        encoding,
        sample_rate: rate,
        bitrate_kbps: kbps,
    })
}

fn recording_model(r: &ipcamd_store::RecordingInfo) -> RecordingModel {
    let kinds: Vec<TrackKind> = r
        .tracks
        .iter()
        .map(|t| match t.kind() {
            MediaKind::Video => TrackKind::Video,
            _ => TrackKind::Audio,
        })
        .collect();
    let tokens = track_tokens(&kinds);
    RecordingModel {
        token: r.camera.clone(),
        tracks: r
            .tracks
            .iter()
            .zip(kinds.iter().zip(tokens))
            .map(|(t, (k, token))| RecordedTrack {
                token,
                kind: *k,
                codec: t.codec.name().to_owned(),
            })
            .collect(),
        sections: r
            .sections
            .iter()
            .map(|s| RecordedSection {
                start: s.start,
                end: s.end,
            })
            .collect(),
        recording: r.sections.iter().any(|s| s.recording),
    }
}

// ---------------------------------------------------------------- snapshots

type HttpAnswer = (&'static str, &'static str, Vec<u8>);

fn text(status: &'static str, msg: String) -> HttpAnswer {
    (status, "text/plain; charset=utf-8", msg.into_bytes())
}

/// `GET /snapshot/<camera>.jpg`: a JPEG of the latest keyframe (MJPEG cameras: the frame
/// itself; H.264: decoded with openh264 and encoded with jpeg-encoder).
async fn snapshot(state: &Arc<ServerState>, head: &HttpRequestHead) -> HttpAnswer {
    if head.method != "GET" {
        return text(
            "405 Method Not Allowed",
            "snapshots are fetched with GET\n".into(),
        );
    }
    let name = head
        .path
        .trim_start_matches("/snapshot/")
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches(".jpg")
        .to_owned();
    let Some(c) = state.cameras.get(&name).cloned() else {
        return text("404 Not Found", format!("no camera {name:?}\n"));
    };
    let tracks = c.stream.tracks();
    let Some(vi) = tracks
        .iter()
        .position(|t| t.codec.kind() == MediaKind::Video)
    else {
        return text("404 Not Found", format!("camera {name:?} has no video\n"));
    };
    let Some(codec) = tracks.get(vi).map(|t| t.codec.clone()) else {
        return text("404 Not Found", format!("camera {name:?} has no video\n"));
    };
    state.onvif.snapshots.fetch_add(1, Ordering::Relaxed);
    let gop = current_gop(&c, vi);
    let Some(key) = gop.first().cloned() else {
        return text(
            "503 Service Unavailable",
            format!("camera {name:?} has produced no picture yet; retry in a second\n"),
        );
    };
    let result = tokio::task::spawn_blocking(move || match codec {
        CodecParams::Jpeg => Ok(gop.last().unwrap_or(&key).au.data.to_vec()),
        CodecParams::H264 { .. } => h264_to_jpeg(&key.au.data),
        _ => Err("snapshots of H.265 cameras are not supported yet".to_owned()),
    })
    .await;
    match result {
        Ok(Ok(jpeg)) => ("200 OK", "image/jpeg", jpeg),
        Ok(Err(e)) => text(
            "500 Internal Server Error",
            format!("snapshot of {name:?}: {e}\n"),
        ),
        Err(e) => text(
            "500 Internal Server Error",
            format!("snapshot of {name:?}: {e}\n"),
        ),
    }
}

/// Decodes one H.264 keyframe access unit (Annex B with SPS/PPS) to a JPEG.
fn h264_to_jpeg(annex_b: &[u8]) -> Result<Vec<u8>, String> {
    use openh264::formats::YUVSource;
    let mut dec =
        openh264::decoder::Decoder::new().map_err(|e| format!("openh264 decoder: {e}"))?;
    let mut rgb = Vec::new();
    let mut dims = None;
    for nal in openh264::nal_units(annex_b) {
        if let Ok(Some(yuv)) = dec.decode(nal) {
            let (w, h) = yuv.dimensions();
            rgb = vec![0u8; yuv.rgb8_len()];
            yuv.write_rgb8(&mut rgb);
            dims = Some((w, h));
        }
    }
    if dims.is_none() {
        if let Ok(frames) = dec.flush_remaining() {
            if let Some(yuv) = frames.last() {
                let (w, h) = yuv.dimensions();
                rgb = vec![0u8; yuv.rgb8_len()];
                yuv.write_rgb8(&mut rgb);
                dims = Some((w, h));
            }
        }
    }
    let (w, h) = dims.ok_or("the keyframe did not decode to a picture")?;
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| "picture too wide for JPEG")?,
        u16::try_from(h).map_err(|_| "picture too tall for JPEG")?,
    );
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("JPEG encoder: {e}"))?;
    Ok(out)
}

// ---------------------------------------------------------------- WS-Discovery

/// The running discovery task: its socket (for Bye) and what it announces.
pub struct Discovery {
    /// The same socket as the probe loop's, in std form, for Hello and Bye (a fresh
    /// tokio socket is not yet known to be writable, so `try_send_to` would refuse).
    sender: StdUdpSocket,
    announce: Announce,
    port: u16,
    task: tokio::task::JoinHandle<()>,
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

fn announce_for(state: &ServerState, ip: IpAddr, endpoint: &str) -> Announce {
    let http_port = state.http_addr.map(|a| a.port()).unwrap_or(80);
    let ip = match state.http_addr.map(|a| a.ip()) {
        Some(bound) if !bound.is_unspecified() => bound,
        _ => ip,
    };
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    Announce {
        endpoint: endpoint.to_owned(),
        xaddrs: format!("http://{host}:{http_port}/onvif/device_service"),
        scopes: scopes(&state.options.onvif),
        metadata_version: 1,
    }
}

fn random_urn() -> String {
    discovery::urn_uuid(rand::random())
}

impl Discovery {
    /// Binds UDP `port` (address reuse on, so that other WS-Discovery services on the host
    /// can share it), joins 239.255.255.250, sends Hello and answers probes.
    pub fn start(state: Arc<ServerState>, port: u16) -> std::io::Result<Discovery> {
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
        let announce = announce_for(&state, ip, &state.onvif.endpoint);
        let hello = discovery::hello(&announce, &random_urn());
        match sender.send_to(hello.as_bytes(), dest) {
            Ok(_) => tracing::info!(xaddrs = %announce.xaddrs, port, "WS-Discovery Hello sent"),
            Err(e) => tracing::warn!(error = %e, "cannot send the WS-Discovery Hello"),
        }
        let task = tokio::spawn(probe_loop(state, socket.clone()));
        Ok(Discovery {
            sender,
            announce,
            port,
            task,
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
    }
}

async fn probe_loop(state: Arc<ServerState>, socket: Arc<tokio::net::UdpSocket>) {
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
                state.onvif.probes_malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, error = %e, "malformed WS-Discovery message");
                continue;
            }
        };
        state.onvif.probes.fetch_add(1, Ordering::Relaxed);
        let ip = local_ip_towards(peer).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let announce = announce_for(&state, ip, &state.onvif.endpoint);
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
