//! ONVIF on the HTTP port: the SOAP services (`POST /onvif/<service>_service`, answered
//! by the sans-IO `ipcamd-onvif` crate from a device model built in [`model`] from the live
//! cameras and the store), snapshots ([`snapshot`]), and WS-Discovery ([`discovery`]).
//!
//! Writes (encoder settings, imaging settings, users, scopes, host name, recording job
//! modes) are checked by the onvif crate and carried out by [`apply`]; what they set
//! persists in the state file ([`state`]) or, for users, in the users file (imaging
//! settings only with ForcePersistence).
//!
//! Requests reach [`Onvif::handle`] through the HTTP layer of the server (with keep-alive).
//! URIs in the answers use the host the request was addressed to (its `Host` header, or
//! the connection's local address).
//!
//! Users: the server's users file ([`crate::auth`]), seen by the onvif crate through
//! [`UsersAuth`]. A SOAP request may authenticate with WS-Security UsernameToken
//! (PasswordDigest, checked by the onvif crate; needs a user added with `--wsse`) or HTTP
//! Digest (checked here, per request); without either it has the anonymous role, if any.
//! With no users configured every operation is allowed, as the rest of the server is open
//! then. PRE_AUTH operations (GetSystemDateAndTime, GetServices, ...) never need
//! credentials. Snapshots need the viewer role.

pub mod apply;
pub mod discovery;
pub mod events;
pub mod model;
pub mod ptz;
pub mod snapshot;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcamd_onvif::{NonceCache, SoapAuth};
use ipcamd_proto::tunnel::HttpRequestHead;
use ipcamd_store::Store;

use crate::auth::{Authorizer, Role as UserRole};
use crate::cameras::Cameras;
use crate::http::message::{HttpRequest, HttpResponse};
use crate::sync::lock;

pub use discovery::Discovery;

/// Largest SOAP request body accepted (larger: 413).
pub const MAX_BODY: usize = ipcamd_onvif::soap::MAX_REQUEST_BYTES;

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
    /// Synthetic cameras' motion periods (the motion events).
    pub motion: HashMap<String, events::MotionPeriods>,
    /// Event service limits (subscriptions per user and in all, queue length, ...).
    pub event_limits: ipcamd_onvif::events::EventLimits,
    /// The virtual PTZ heads of synthetic cameras, by camera (the PTZ service).
    pub ptz: HashMap<String, ipcamd_media::ptz::PtzHandle>,
    /// The picture adjustments of synthetic cameras, by camera (the Imaging service).
    pub imaging: HashMap<String, ipcamd_media::imaging::ImagingHandle>,
    /// Where what ONVIF clients set is saved (None: kept for this run only), and what it
    /// held at start.
    pub state_file: Option<PathBuf>,
    pub state: state::DeviceState,
}

impl Default for OnvifOptions {
    fn default() -> Self {
        OnvifOptions {
            discovery: true,
            discovery_port: ipcamd_onvif::discovery::PORT,
            hints: HashMap::new(),
            manufacturer: "ipcamd".into(),
            model: "ipcamd".into(),
            motion: HashMap::new(),
            event_limits: Default::default(),
            ptz: HashMap::new(),
            imaging: HashMap::new(),
            state_file: None,
            state: Default::default(),
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

/// A camera's recording job: its mode (Active = true) and whether a section is being
/// written now.
#[derive(Clone)]
pub struct RecordingJob {
    pub mode: Arc<tokio::sync::watch::Sender<bool>>,
    pub writing: Arc<AtomicBool>,
}

/// The ONVIF services: what they read, the WS-Security nonce cache, counters.
pub struct Onvif {
    pub options: OnvifOptions,
    pub cameras: Cameras,
    pub store: Option<Store>,
    /// The server's users (HTTP Digest).
    pub auth: Arc<Authorizer>,
    /// The same users as the onvif crate sees them (WS-Security).
    pub soap_auth: Arc<dyn SoapAuth + Send + Sync>,
    nonces: Mutex<NonceCache>,
    /// The Event service's state and long polls.
    pub events: Arc<events::Events>,
    /// What ONVIF clients set (scopes, host name, encoder and imaging settings, job
    /// modes), saved.
    pub state: state::StateFile,
    /// The recording jobs, by camera.
    pub jobs: HashMap<String, RecordingJob>,
    /// Woken when the scopes change: WS-Discovery multicasts a Hello with them.
    pub scopes_changed: tokio::sync::Notify,
    /// The device's WS-Discovery endpoint (`urn:uuid:...`), stable for a host and port.
    pub endpoint: String,
    pub http_addr: Option<SocketAddr>,
    pub rtsp_port: u16,
    pub session_timeout: Duration,
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    pub snapshots: AtomicU64,
    pub probes: AtomicU64,
    pub probes_malformed: AtomicU64,
}

/// What [`Onvif::new`] is built from.
pub struct OnvifParts {
    pub options: OnvifOptions,
    pub cameras: Cameras,
    pub store: Option<Store>,
    pub auth: Arc<Authorizer>,
    pub http_addr: Option<SocketAddr>,
    pub rtsp_port: u16,
    pub session_timeout: Duration,
    pub jobs: HashMap<String, RecordingJob>,
}

impl Onvif {
    pub fn new(p: OnvifParts) -> Onvif {
        Onvif {
            events: Arc::new(events::Events::new(p.options.event_limits)),
            state: state::StateFile::new(p.options.state_file.clone(), p.options.state.clone()),
            jobs: p.jobs,
            scopes_changed: tokio::sync::Notify::new(),
            options: p.options,
            cameras: p.cameras,
            store: p.store,
            soap_auth: Arc::new(UsersAuth(p.auth.clone())),
            auth: p.auth,
            nonces: Mutex::new(NonceCache::new(10_000)),
            endpoint: endpoint_uuid(p.http_addr.map(|a| a.port()).unwrap_or(0)),
            http_addr: p.http_addr,
            rtsp_port: p.rtsp_port,
            session_timeout: p.session_timeout,
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            probes_malformed: AtomicU64::new(0),
        }
    }

    /// Answers one ONVIF request (a SOAP call or a snapshot). Every request is
    /// authenticated on its own.
    pub async fn handle(&self, req: &HttpRequest) -> HttpResponse {
        let head = &req.head;
        let http_user = match http_identity(&self.auth, head, req.tls) {
            Ok(u) => u,
            Err(denied) => return HttpResponse::denied(&denied),
        };
        if head.path.starts_with("/snapshot/") {
            return snapshot::snapshot(self, head).await;
        }
        if head.method != "POST" {
            return HttpResponse::text(
                405,
                "Method Not Allowed",
                "ONVIF services take SOAP requests by POST\n",
            );
        }
        if head.headers.get("Content-Length").is_none() {
            return HttpResponse::text(
                411,
                "Length Required",
                "a SOAP request needs Content-Length\n",
            );
        }
        let body = &req.body;
        let host = head
            .headers
            .get("Host")
            .map(strip_port)
            .unwrap_or_else(|| req.local.ip().to_string());
        let user = http_user.as_ref().map(|(n, r)| (n.as_str(), *r));
        let (status, xml) = soap(self, &head.path, &host, req.local, body, user).await;
        // Refused (or unreadable) without any credentials: answer with the HTTP Digest
        // challenge, so that Digest clients (which send a first request without them,
        // often without a body) can authenticate.
        if status != 200
            && http_user.is_none()
            && self.soap_auth.enabled()
            && (xml.contains("NotAuthorized") || body.is_empty())
            && !contains(body, b"UsernameToken")
        {
            if let Err(d) =
                self.auth
                    .check(None, &head.method, &head.path, UserRole::Viewer, req.tls)
            {
                return HttpResponse::denied(&d);
            }
        }
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Internal Server Error",
        };
        HttpResponse::new(
            status,
            reason,
            "application/soap+xml; charset=utf-8",
            xml.into_bytes(),
        )
    }
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

/// A stable `urn:uuid:` from the machine id (or host name) and the HTTP port.
fn endpoint_uuid(http_port: u16) -> String {
    use std::hash::{Hash, Hasher};
    let seed = std::fs::read_to_string("/etc/machine-id").unwrap_or_else(|_| model::hostname());
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (seed.trim(), http_port, i).hash(&mut h);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    ipcamd_onvif::discovery::urn_uuid(out)
}

/// Whether the HTTP layer should hand this request to [`Onvif::handle`].
pub fn wants(head: &HttpRequestHead) -> bool {
    head.path.starts_with("/onvif/") || head.path.starts_with("/snapshot/")
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
    auth: &Authorizer,
    head: &HttpRequestHead,
    tls: bool,
) -> Result<Option<(String, ipcamd_onvif::Role)>, crate::auth::Denied> {
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

/// Answers one SOAP request: (HTTP status, envelope).
pub async fn soap(
    onvif: &Onvif,
    path: &str,
    host: &str,
    local: SocketAddr,
    body: &[u8],
    http_user: Option<(&str, ipcamd_onvif::Role)>,
) -> (u16, String) {
    onvif.requests.fetch_add(1, Ordering::Relaxed);
    if ipcamd_onvif::services::service_namespace(path.split('?').next().unwrap_or(path)).is_none() {
        onvif.faults.fetch_add(1, Ordering::Relaxed);
        return (
            404,
            ipcamd_onvif::Fault::sender(
                "ter:InvalidArgVal",
                None,
                format!("no ONVIF service at {path}; the device service is /onvif/device_service"),
            )
            .to_xml(),
        );
    }
    let model = model::device_model(onvif, host, local).await;
    let new_id = format!("{:032x}", rand::random::<u128>());
    let outcome = {
        let mut nonces = lock(&onvif.nonces);
        let mut bus = onvif.events.bus();
        ipcamd_onvif::services::handle_with_state(
            body,
            &model,
            onvif.soap_auth.as_ref(),
            http_user,
            &mut nonces,
            Some(ipcamd_onvif::services::EventContext {
                bus: &mut bus,
                path,
                new_id: &new_id,
            }),
            Some(&ptz::Heads(&onvif.options.ptz)),
        )
    };
    let resp = match outcome {
        ipcamd_onvif::services::Outcome::Done(r) => r,
        ipcamd_onvif::services::Outcome::Wait(p) => onvif.events.wait_pull(p).await,
        ipcamd_onvif::services::Outcome::Apply(a) => {
            let result = apply::apply(onvif, &a.change).await;
            if let Err(f) = &result {
                tracing::warn!(action = %a.action, reason = %f.reason, "ONVIF change not made");
            }
            a.answer(result)
        }
    };
    if resp.status == 200 {
        match resp.action.as_str() {
            "CreatePullPointSubscription" => {
                tracing::info!(subscription = %new_id, "ONVIF event subscription created")
            }
            "Unsubscribe" => {
                tracing::info!(path, "ONVIF event subscription ended");
                onvif.events.wake_all();
            }
            _ => {}
        }
    }
    if resp.status != 200 {
        onvif.faults.fetch_add(1, Ordering::Relaxed);
        tracing::info!(action = %resp.action, status = resp.status, "ONVIF fault");
    } else {
        tracing::debug!(action = %resp.action, "ONVIF request");
    }
    let status = match resp.status {
        200 | 400 => resp.status,
        _ => 500,
    };
    (status, resp.body)
}
