//! ONVIF cameras by their device address: the SOAP calls over HTTP that turn
//! `http://HOST/onvif/device_service` and credentials into the camera's RTSP stream URI
//! ([`resolve_stream`], for `source = "onvif"` cameras), and the WS-Discovery Probe that
//! finds devices on the network ([`probe`], for `ipcamd discover`). The SOAP messages and
//! their parsing are `ipcamd_onvif::client`'s (sans IO); this module adds the sockets,
//! the clock, the nonces and the authentication retries.
//!
//! ```text
//!  resolve_stream(device URL, user, password, profile)
//!     └ OnvifDevice::connect   GetSystemDateAndTime   (the device clock, no credentials)
//!                              GetServices            (or GetCapabilities): Media2 / Media
//!         .profiles()          Media2 GetProfiles     (or Media ver10 GetProfiles)
//!         .stream_uri(token)   GetStreamUri           (RTP unicast over RTSP)
//!  probe(targets, timeout)     WS-Discovery Probe -> ProbeMatches (probe.rs)
//!  http::post                  one HTTP/1.1 POST per request (http.rs)
//! ```
//!
//! ## Authentication
//!
//! ONVIF Core §5.12 lets a device take WS-Security UsernameToken (PasswordDigest) or HTTP
//! Digest. With credentials, every request carries a UsernameToken whose `Created` is the
//! device's clock (GetSystemDateAndTime's UTC time plus the time passed since; a device
//! refuses tokens far from its own clock). If the device refuses it (a `ter:NotAuthorized`
//! fault, or HTTP 401), the request is sent again without it to get the device's Digest
//! challenge, then with `Authorization: Digest` ([`crate::auth`]); from then on every
//! request of this [`OnvifDevice`] uses Digest alone. Without credentials nothing is sent
//! and a 401 is reported as such. Passwords go into no message and no log.
//!
//! Service addresses: the path of each service comes from GetServices, its scheme, host
//! and port from the device address given, since devices behind NAT or port forwarding
//! report addresses the client cannot reach.
//!
//! Left out: `https://` devices (no TLS in this client: refused with a clear error), the
//! stream URI's credentials (the caller's RTSP client adds them), multicast streams,
//! events, PTZ, snapshots.

mod http;
mod probe;

use std::time::Duration;

use ipcamd_onvif::client::{
    parse_capabilities, parse_device_information, parse_fault, parse_profiles, parse_services,
    parse_stream_uri, parse_system_date_and_time, xaddr_of, Operation, ResponseError, Service,
    SoapFault,
};
use ipcamd_onvif::wsse::TokenParams;
use ipcamd_proto::time::{format_iso8601, UnixMicros};
use rand::Rng as _;

use crate::auth::{AuthSelectError, Authenticator, Credentials};
use crate::error::ClientError;
use crate::url::{HttpUrl, RtspUrl};

pub use ipcamd_onvif::client::{DeviceInformation, MediaService, Profile, VideoEncoder};
pub use probe::{probe, DiscoveredDevice, MULTICAST_TARGET};

/// How long one SOAP request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`resolve_stream`] found: the stream to open and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedStream {
    /// The RTSP URI the device gave (RTP unicast over RTSP), without credentials.
    pub rtsp_url: String,
    pub profile_token: String,
    pub profile_name: String,
    /// The profile has an audio output: the stream offers the ONVIF backchannel.
    pub backchannel: bool,
    /// The profile's video encoder: codec (`H264`, `H265`, `JPEG`), size, frame rate,
    /// bitrate; None when the device describes none (Media ver10 and H.265).
    pub video: Option<VideoEncoder>,
}

/// Resolves the RTSP stream URI of an ONVIF device from its device service address
/// (`http://HOST[:PORT]/onvif/device_service`): the profile named `profile` (its token,
/// else its name), or without one the first profile with video.
pub async fn resolve_stream(
    device_url: &str,
    username: Option<&str>,
    password: Option<&str>,
    profile: Option<&str>,
) -> Result<ResolvedStream, ClientError> {
    let mut device = OnvifDevice::connect(device_url, username, password).await?;
    let profiles = device.profiles().await?;
    let chosen = match profile {
        Some(p) => profiles
            .iter()
            .find(|x| x.token == p)
            .or_else(|| profiles.iter().find(|x| x.name == p))
            .ok_or_else(|| {
                device.error(
                    &device.url,
                    "GetProfiles",
                    None,
                    None,
                    format!(
                        "no profile has the token or name {p:?}; the device's profiles (token \"name\"): {}",
                        list_profiles(&profiles)
                    ),
                )
            })?,
        None => profiles.iter().find(|x| x.has_video()).ok_or_else(|| {
            device.error(
                &device.url,
                "GetProfiles",
                None,
                None,
                format!(
                    "no profile has video; the device's profiles (token \"name\"): {}",
                    list_profiles(&profiles)
                ),
            )
        })?,
    };
    let rtsp_url = device.stream_uri(&chosen.token).await?;
    tracing::info!(device = %device.url, profile = %chosen.token, %rtsp_url, "ONVIF stream URI resolved");
    Ok(ResolvedStream {
        rtsp_url,
        profile_token: chosen.token.clone(),
        profile_name: chosen.name.clone(),
        backchannel: chosen.backchannel,
        video: chosen.video.clone(),
    })
}

fn list_profiles(p: &[Profile]) -> String {
    if p.is_empty() {
        return "none".into();
    }
    p.iter()
        .map(|p| format!("{} {:?}", p.token, p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A conversation with one ONVIF device: its address, the credentials and how the device
/// takes them, its clock and its services.
pub struct OnvifDevice {
    url: HttpUrl,
    credentials: Option<Credentials>,
    /// Send a UsernameToken (until the device refuses one).
    wsse: bool,
    /// Once the device asked for HTTP Digest.
    digest: Option<Authenticator>,
    /// Device clock minus ours, microseconds.
    clock_offset_us: i64,
    services: Vec<Service>,
    /// The media service that answered GetProfiles.
    media: Option<MediaService>,
    timeout: Duration,
}

impl std::fmt::Debug for OnvifDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnvifDevice")
            .field("url", &self.url.to_string())
            .field("credentials", &self.credentials)
            .field("digest", &self.digest.is_some())
            .field("clock_offset_us", &self.clock_offset_us)
            .field("services", &self.services)
            .finish()
    }
}

impl OnvifDevice {
    /// Reads the device clock and its service addresses. Fails when the device cannot be
    /// reached, or lists no media service.
    pub async fn connect(
        device_url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<OnvifDevice, ClientError> {
        let url = HttpUrl::parse(device_url)?;
        let credentials = username.map(|u| Credentials {
            username: u.to_owned(),
            password: password.unwrap_or_default().to_owned(),
        });
        let mut device = OnvifDevice {
            url,
            wsse: credentials.is_some(),
            credentials,
            digest: None,
            clock_offset_us: 0,
            services: Vec::new(),
            media: None,
            timeout: REQUEST_TIMEOUT,
        };
        device.read_clock().await?;
        device.read_services().await?;
        Ok(device)
    }

    /// The device service address.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// The device's clock minus this machine's, in microseconds (0 if unknown).
    pub fn clock_offset_us(&self) -> i64 {
        self.clock_offset_us
    }

    /// The media service that answered GetProfiles (None before [`Self::profiles`]).
    pub fn media_service(&self) -> Option<MediaService> {
        self.media
    }

    /// GetSystemDateAndTime, without credentials (the device's answer decides the
    /// `Created` time of the tokens). Only a device that cannot be reached is an error.
    async fn read_clock(&mut self) -> Result<(), ClientError> {
        let op = Operation::GetSystemDateAndTime;
        let response = http::post(
            &self.url,
            op.name(),
            &headers(&op, None),
            op.envelope(None).as_bytes(),
            self.timeout,
        )
        .await?;
        match parse_system_date_and_time(&response.body) {
            Ok(Some(device_now)) => {
                self.clock_offset_us = device_now - now_us();
                tracing::debug!(device = %self.url, offset_s = self.clock_offset_us / 1_000_000, "device clock");
            }
            Ok(None) => tracing::debug!(device = %self.url, "the device gives no UTC time"),
            Err(e) => {
                tracing::debug!(device = %self.url, status = response.status, error = %e, "no device clock")
            }
        }
        Ok(())
    }

    /// GetServices, or GetCapabilities for devices without it.
    async fn read_services(&mut self) -> Result<(), ClientError> {
        let url = self.url.clone();
        let services = match self
            .call_parsed(&url, &Operation::GetServices, parse_services)
            .await
        {
            Ok(s) => s,
            Err(e) if is_refusal(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "no GetServices; trying GetCapabilities");
                self.call_parsed(&url, &Operation::GetCapabilities, parse_capabilities)
                    .await
                    .map_err(|e2| match e2 {
                        ClientError::Onvif { .. } if !is_refusal(&e2) => self.error(
                            &url,
                            "GetServices",
                            None,
                            None,
                            format!("{e}; and GetCapabilities: {e2}"),
                        ),
                        other => other,
                    })?
            }
        };
        self.services = services;
        if self.media_order().is_empty() {
            return Err(self.error(
                &url,
                "GetServices",
                None,
                None,
                "the device lists no Media or Media2 service: it does not stream (is this an ONVIF camera or recorder?)".into(),
            ));
        }
        Ok(())
    }

    /// The media services the device offers, preferred first.
    fn media_order(&self) -> Vec<MediaService> {
        [MediaService::Media2, MediaService::Media]
            .into_iter()
            .filter(|m| xaddr_of(&self.services, m.namespace()).is_some())
            .collect()
    }

    /// The address of a service: its path from the device, the rest from the device URL.
    fn service_url(&self, nsuri: &str) -> HttpUrl {
        let path = xaddr_of(&self.services, nsuri)
            .and_then(|x| x.split_once("://"))
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| self.url.path.clone());
        HttpUrl {
            path,
            ..self.url.clone()
        }
    }

    /// GetDeviceInformation.
    pub async fn device_information(&mut self) -> Result<DeviceInformation, ClientError> {
        let url = self.url.clone();
        self.call_parsed(
            &url,
            &Operation::GetDeviceInformation,
            parse_device_information,
        )
        .await
    }

    /// The media profiles: Media2's if the device has it and it answers, else Media
    /// ver10's.
    pub async fn profiles(&mut self) -> Result<Vec<Profile>, ClientError> {
        let mut failed: Option<ClientError> = None;
        for media in self.media_order() {
            let url = self.service_url(media.namespace());
            match self
                .call_parsed(&url, &Operation::GetProfiles(media), parse_profiles)
                .await
            {
                Ok(p) => {
                    self.media = Some(media);
                    return Ok(p);
                }
                Err(e) if is_refusal(&e) || !matches!(e, ClientError::Onvif { .. }) => {
                    return Err(e)
                }
                Err(e) => {
                    tracing::info!(error = %e, "trying the next media service");
                    failed = Some(e);
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            self.error(
                &self.url,
                "GetProfiles",
                None,
                None,
                "no media service".into(),
            )
        }))
    }

    /// The RTSP URI of profile `token` (RTP unicast over RTSP), from the media service that
    /// listed the profiles.
    pub async fn stream_uri(&mut self, token: &str) -> Result<String, ClientError> {
        let media = match self.media {
            Some(m) => m,
            None => *self.media_order().first().unwrap_or(&MediaService::Media),
        };
        let url = self.service_url(media.namespace());
        let op = Operation::GetStreamUri(media, token.to_owned());
        let uri = self.call_parsed(&url, &op, parse_stream_uri).await?;
        match RtspUrl::parse(&uri) {
            Ok(u) => Ok(u.to_string()),
            Err(_) => Err(self.error(
                &url,
                &op.label(),
                None,
                None,
                format!(
                    "the device gave {:?}, which is not an rtsp:// URI",
                    crate::url::redact(&uri)
                ),
            )),
        }
    }

    /// [`Self::call`], then `parse` on the answer; parse failures become
    /// [`ClientError::Onvif`].
    async fn call_parsed<T>(
        &mut self,
        url: &HttpUrl,
        op: &Operation,
        parse: impl Fn(&[u8]) -> Result<T, ResponseError>,
    ) -> Result<T, ClientError> {
        let body = self.call(url, op).await?;
        parse(&body).map_err(|e| {
            let fault = match &e {
                ResponseError::Fault(f) => Some(f),
                _ => None,
            };
            self.error(
                url,
                &op.label(),
                Some(200),
                fault,
                format!("{e} (the device's answer is not what ONVIF defines)"),
            )
        })
    }

    /// One operation, authenticated as the device wants: the body of its 2xx answer that
    /// is not a fault.
    async fn call(&mut self, url: &HttpUrl, op: &Operation) -> Result<Vec<u8>, ClientError> {
        let label = op.label();
        // Why the device refused the UsernameToken, for the final message.
        let mut token_refused: Option<String> = None;
        let mut stale_retried = false;
        for _ in 0..5 {
            let send_token = self.credentials.is_some() && self.wsse && self.digest.is_none();
            let nonce: [u8; 16] = rand::rng().random();
            let created = created(now_us() + self.clock_offset_us);
            let token = match (&self.credentials, send_token) {
                (Some(c), true) => Some(TokenParams {
                    username: &c.username,
                    password: &c.password,
                    nonce: &nonce,
                    created: &created,
                }),
                _ => None,
            };
            let envelope = op.envelope(token.as_ref());
            let cnonce = format!("{:016x}", rand::rng().random::<u64>());
            let authorization = self
                .digest
                .as_mut()
                .map(|a| a.authorization("POST", &url.path, &cnonce));
            let response = http::post(
                url,
                &label,
                &headers(op, authorization),
                envelope.as_bytes(),
                self.timeout,
            )
            .await?;
            tracing::debug!(operation = %label, %url, status = response.status, token = send_token, digest = self.digest.is_some(), "ONVIF answer");

            if response.status == 401 {
                let challenges: Vec<&str> = response.headers_named("WWW-Authenticate").collect();
                let Some(credentials) = self.credentials.clone() else {
                    return Err(self.error(
                        url,
                        &label,
                        Some(401),
                        None,
                        "the device wants credentials (HTTP 401 Unauthorized): give a user name and password".into(),
                    ));
                };
                if let Some(a) = self.digest.as_mut() {
                    if !stale_retried && a.refresh_stale(challenges.iter().copied()) {
                        stale_retried = true;
                        continue;
                    }
                    return Err(self.error(
                        url,
                        &label,
                        Some(401),
                        None,
                        format!(
                            "the device refused the user name or password: HTTP Digest got 401 Unauthorized{}; check them, and the user's rights on the device",
                            refused_token_note(&token_refused)
                        ),
                    ));
                }
                if send_token {
                    token_refused = Some("HTTP 401 Unauthorized".into());
                }
                match Authenticator::from_challenges(credentials, challenges.into_iter()) {
                    Ok(a) => {
                        tracing::info!(operation = %label, %url, "the device asks for HTTP Digest");
                        self.digest = Some(a);
                        continue;
                    }
                    Err(AuthSelectError::NoChallenge) => {
                        return Err(self.error(
                            url,
                            &label,
                            Some(401),
                            None,
                            format!("HTTP 401 Unauthorized without a WWW-Authenticate challenge{}; check the user name and password", refused_token_note(&token_refused)),
                        ))
                    }
                    Err(AuthSelectError::Unsupported(schemes)) => {
                        return Err(self.error(
                            url,
                            &label,
                            Some(401),
                            None,
                            format!("HTTP 401 Unauthorized offering only {schemes}, which this client does not speak"),
                        ))
                    }
                }
            }

            let fault = parse_fault(&response.body);
            if let Some(f) = &fault {
                if f.is_not_authorized() && send_token {
                    // The token was refused (wrong password, a user without a WS-Security
                    // password, a clock far off): HTTP Digest's challenge answers a request
                    // without credentials.
                    tracing::info!(operation = %label, %url, fault = %f, "the device refused the WS-Security UsernameToken; trying HTTP Digest");
                    token_refused = Some(format!("SOAP fault {f}"));
                    self.wsse = false;
                    continue;
                }
            }
            if (200..300).contains(&response.status) && fault.is_none() {
                return Ok(response.body);
            }
            let status = Some(response.status);
            return Err(match fault {
                Some(f) => {
                    let hint = if f.is_not_authorized() {
                        match (&self.credentials, &token_refused) {
                            (None, _) => "; give a user name and password".to_owned(),
                            (Some(_), Some(t)) => format!(
                                " (the WS-Security UsernameToken was refused first: {t}); check the user name and password, and the device clock"
                            ),
                            (Some(_), None) => {
                                "; check the user name, the password and the user's rights on the device".to_owned()
                            }
                        }
                    } else if f
                        .subcodes
                        .iter()
                        .any(|s| s.ends_with(":ActionNotSupported"))
                    {
                        "; the device does not offer this operation".to_owned()
                    } else {
                        String::new()
                    };
                    let reason = format!(
                        "the device answered HTTP {} with SOAP fault {f}{hint}",
                        response.status
                    );
                    self.error(url, &label, status, Some(&f), reason)
                }
                None => {
                    let hint = match response.status {
                        404 => "; is this the device service address? (it usually ends in /onvif/device_service)",
                        200..=299 => "; the answer is not SOAP",
                        _ => "",
                    };
                    self.error(
                        url,
                        &label,
                        status,
                        None,
                        format!(
                            "the device answered HTTP {} {}{hint}",
                            response.status, response.reason
                        ),
                    )
                }
            });
        }
        Err(self.error(
            url,
            &label,
            None,
            None,
            "the device kept asking for credentials".into(),
        ))
    }

    fn error(
        &self,
        url: &HttpUrl,
        operation: &str,
        status: Option<u16>,
        fault: Option<&SoapFault>,
        reason: String,
    ) -> ClientError {
        // Errors name the device by the address the user gave; the service's own path
        // goes with the operation.
        let operation = if url.path == self.url.path {
            operation.to_owned()
        } else {
            format!("{operation} (POST {})", url.path)
        };
        ClientError::Onvif {
            url: self.url.to_string(),
            operation,
            status,
            fault: fault.map(|f| {
                let mut codes = vec![f.code.clone()];
                codes.extend(f.subcodes.iter().cloned());
                codes.join("/")
            }),
            reason,
        }
    }
}

fn refused_token_note(token_refused: &Option<String>) -> String {
    token_refused
        .as_ref()
        .map(|t| format!(", after the WS-Security UsernameToken was refused ({t})"))
        .unwrap_or_default()
}

/// A refusal of the credentials (401, `ter:NotAuthorized`): no point trying another
/// operation or service.
fn is_refusal(e: &ClientError) -> bool {
    match e {
        ClientError::Onvif { status, fault, .. } => {
            *status == Some(401)
                || fault
                    .as_deref()
                    .is_some_and(|f| f.contains("NotAuthorized"))
        }
        _ => false,
    }
}

/// The request headers of `op`: SOAP 1.2 content type with the action, and the Digest
/// answer if any.
fn headers(op: &Operation, authorization: Option<String>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (
            "Content-Type",
            format!(
                "application/soap+xml; charset=utf-8; action=\"{}\"",
                op.action()
            ),
        ),
        (
            "User-Agent",
            format!("ipcamd/{}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(a) = authorization {
        h.push(("Authorization", a));
    }
    h
}

fn now_us() -> UnixMicros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as UnixMicros)
}

/// `2026-11-22T01:00:00Z`: the UsernameToken `Created`, in whole seconds (some devices
/// refuse fractions).
fn created(t: UnixMicros) -> String {
    let s = format_iso8601(t);
    match s.get(..19) {
        Some(seconds) => format!("{seconds}Z"),
        None => s,
    }
}

#[cfg(test)]
mod tests;
