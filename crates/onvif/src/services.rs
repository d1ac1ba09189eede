//! The operations of the Device (Core §8), Media ver10, Media2 ver20, DeviceIO, Recording
//! Control, Recording Search and Replay Control services (and the Event, PTZ and Imaging
//! services, in [`event_service`], [`ptz_service`] and [`imaging_service`]): dispatch on
//! the operation's namespace and name, access check, response body. Responses are built
//! as text in the element order of the ONVIF XSDs (checked by the schema tests of the
//! server crate).
//!
//! Writes ([`change`]): the operations that change the device (encoder settings, imaging
//! settings, users, scopes, host name, recording job modes) are checked here against the
//! model and come out as an [`Outcome::Apply`]: a [`Change`] for the server to carry out
//! and persist, and the answer to send once it did ([`Apply::answer`]). Operations not listed in
//! [`access_class`] answer `ter:ActionNotSupported`. Searches complete at once (the whole
//! answer is known when FindRecordings runs), so GetRecordingSearchResults returns
//! `Completed` with every match; search tokens are not kept between requests (any token is
//! accepted and answered from the current snapshot).

use ipcamd_proto::time::{format_iso8601, UnixMicros};

use crate::model::{
    AudioModel, CameraModel, DeviceModel, RecordingModel, TrackKind, VideoEncoding,
};
use crate::ns;
use crate::soap::{envelope, parse_request, Fault, Request};
use crate::wsse::{authorize, AccessClass, NonceCache, SoapAuth};
use crate::xml::{el, escape};

pub mod change;
mod encoder;
pub mod event_service;
pub mod imaging_service;
pub mod ptz_service;
mod recording_control;

pub use change::{Apply, Change, UserChange};
use event_service::Reply;
pub use event_service::{EventContext, PendingPull};

/// An HTTP answer: status and SOAP envelope (content type `application/soap+xml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The operation, for logs and counters (`"?"` when unparsable).
    pub action: String,
}

/// The service a path serves (`/onvif/media_service` -> its namespace), for the checks
/// that an operation reached a path that offers it. Unknown paths: None.
pub fn service_namespace(path: &str) -> Option<&'static str> {
    Some(match path.trim_end_matches('/') {
        "/onvif/device_service" => ns::TDS,
        "/onvif/media_service" => ns::TRT,
        "/onvif/media2_service" => ns::TR2,
        "/onvif/deviceio_service" => ns::TMD,
        "/onvif/recording_service" => ns::TRC,
        "/onvif/search_service" => ns::TSE,
        "/onvif/replay_service" => ns::TRP,
        "/onvif/events_service" => ns::TEV,
        "/onvif/ptz_service" => ns::TPTZ,
        "/onvif/imaging_service" => ns::TIMG,
        p if p.starts_with(event_service::SUBSCRIPTION_PATH) => ns::TEV,
        _ => return None,
    })
}

/// Handles one SOAP request end to end (without the Event service: its operations need
/// [`handle_with_events`]).
pub fn handle(
    body: &[u8],
    model: &DeviceModel,
    auth: &dyn SoapAuth,
    http_user: Option<(&str, crate::Role)>,
    nonces: &mut NonceCache,
) -> Response {
    match handle_with_events(body, model, auth, http_user, nonces, None) {
        Outcome::Done(r) => r,
        Outcome::Apply(a) => {
            let f = Fault::receiver(
                "ter:Action",
                None,
                format!("{}: nothing here carries out changes", a.action),
            );
            a.answer(Err(f))
        }
        Outcome::Wait(p) => fault(
            "PullMessages",
            Fault::receiver(
                "ter:Action",
                None,
                format!("subscription {:?}: no event service here", p.subscription),
            ),
        ),
    }
}

/// What a request comes to: an answer, or a PullMessages to answer later (after a publish
/// for its subscription or its deadline, with [`event_service::finish_pull`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Response),
    Wait(PendingPull),
    /// A valid write: carry out the change, then answer with [`Apply::answer`].
    Apply(Apply),
}

/// Handles one SOAP request end to end; `events` is the Event service's state (None: the
/// event operations fault).
pub fn handle_with_events(
    body: &[u8],
    model: &DeviceModel,
    auth: &dyn SoapAuth,
    http_user: Option<(&str, crate::Role)>,
    nonces: &mut NonceCache,
    events: Option<EventContext>,
) -> Outcome {
    handle_with_state(body, model, auth, http_user, nonces, events, None)
}

/// [`handle_with_events`] with the PTZ heads too (None: the PTZ operations fault).
pub fn handle_with_state(
    body: &[u8],
    model: &DeviceModel,
    auth: &dyn SoapAuth,
    http_user: Option<(&str, crate::Role)>,
    nonces: &mut NonceCache,
    events: Option<EventContext>,
    ptz: Option<&dyn ptz_service::PtzHeads>,
) -> Outcome {
    let req = match parse_request(body) {
        Ok(r) => r,
        Err(f) => return Outcome::Done(fault("?", f)),
    };
    let action = req.action.clone();
    let Some(class) = access_class(&req.namespace, &req.action) else {
        return Outcome::Done(fault(
            &action,
            Fault::action_not_supported(&req.namespace, &req.action),
        ));
    };
    let who = match authorize(
        auth,
        class,
        req.username_token.as_ref(),
        http_user,
        model.now,
        nonces,
    ) {
        Ok(who) => who,
        Err(f) => return Outcome::Done(fault(&action, f)),
    };
    let result = if matches!(req.namespace.as_str(), ns::TEV | ns::WSNT) {
        match events {
            Some(mut ctx) => {
                // Subscriptions belong to the user who made them; without users (or for
                // the anonymous role) everyone is "anonymous".
                let owner = who
                    .as_ref()
                    .map(|(n, _)| n.as_str())
                    .or(http_user.map(|(n, _)| n))
                    .unwrap_or("anonymous");
                match event_service::dispatch(&req, model, &mut ctx, owner) {
                    Ok(Reply::Body(b)) => Ok(b),
                    Ok(Reply::Wait(p)) => return Outcome::Wait(p),
                    Err(f) => Err(f),
                }
            }
            None => Err(Fault::action_not_supported(&req.namespace, &req.action)),
        }
    } else if req.namespace == ns::TPTZ {
        match (ptz, crate::xml::parse(body, &[])) {
            (Some(heads), Ok(doc)) => ptz_service::dispatch(&req, &doc, model, heads),
            (None, _) => Err(Fault::action_not_supported(&req.namespace, &req.action)),
            (_, Err(e)) => Err(Fault::not_well_formed(e)),
        }
    } else if req.namespace == ns::TIMG {
        match crate::xml::parse(body, &[]) {
            Ok(doc) => match imaging_service::dispatch(&req, &doc, model) {
                Ok(imaging_service::Reply::Body(b)) => Ok(b),
                Ok(imaging_service::Reply::Apply(a)) => return Outcome::Apply(a),
                Err(f) => Err(f),
            },
            Err(e) => Err(Fault::not_well_formed(e)),
        }
    } else if let Some(write) = writes(&req, model) {
        return match write {
            Ok(apply) => Outcome::Apply(apply),
            Err(f) => Outcome::Done(fault(&action, f)),
        };
    } else {
        dispatch(&req, model)
    };
    Outcome::Done(match result {
        Ok(body) => Response {
            status: 200,
            body: envelope(&body),
            action,
        },
        Err(f) => fault(&action, f),
    })
}

/// The write operations: None for any other operation.
fn writes(req: &Request, m: &DeviceModel) -> Option<Result<Apply, Fault>> {
    match (req.namespace.as_str(), req.action.as_str()) {
        (ns::TRT, "SetVideoEncoderConfiguration") => Some(encoder::set(req, m, false)),
        (ns::TR2, "SetVideoEncoderConfiguration") => Some(encoder::set(req, m, true)),
        (ns::TRC, "SetRecordingJobMode") => Some(recording_control::set_job_mode(req, m)),
        _ => change::dispatch(req, m),
    }
}

pub(crate) fn fault(action: &str, f: Fault) -> Response {
    Response {
        status: f.http_status(),
        body: f.to_xml(),
        action: action.to_owned(),
    }
}

/// The access class of every supported operation; None = not supported.
pub fn access_class(namespace: &str, action: &str) -> Option<AccessClass> {
    use AccessClass::*;
    let c = match (namespace, action) {
        (
            ns::TDS,
            "GetSystemDateAndTime"
            | "GetServices"
            | "GetServiceCapabilities"
            | "GetCapabilities"
            | "GetWsdlUrl",
        ) => PreAuth,
        (
            ns::TDS,
            "GetDeviceInformation"
            | "GetScopes"
            | "GetNetworkInterfaces"
            | "GetHostname"
            | "GetDiscoveryMode",
        ) => ReadSystem,
        (ns::TDS, "GetUsers") => ReadSystemSecret,
        (
            ns::TDS,
            "CreateUsers"
            | "DeleteUsers"
            | "SetUser"
            | "SetScopes"
            | "AddScopes"
            | "RemoveScopes"
            | "SetHostname"
            | "SetSystemDateAndTime",
        ) => WriteSystem,
        (ns::TDS, "GetNTP") => ReadSystem,
        (ns::TRT | ns::TR2, "SetVideoEncoderConfiguration") => Actuate,
        (ns::TRC, "SetRecordingJobMode") => Actuate,
        (ns::TRT | ns::TR2 | ns::TMD | ns::TRC | ns::TSE | ns::TRP, "GetServiceCapabilities") => {
            PreAuth
        }
        (
            ns::TRT,
            "GetProfiles"
            | "GetProfile"
            | "GetStreamUri"
            | "GetSnapshotUri"
            | "GetVideoSources"
            | "GetVideoSourceConfigurations"
            | "GetVideoSourceConfiguration"
            | "GetVideoEncoderConfigurations"
            | "GetVideoEncoderConfiguration"
            | "GetAudioSources"
            | "GetAudioSourceConfigurations"
            | "GetAudioEncoderConfigurations"
            | "GetAudioOutputs"
            | "GetAudioOutputConfigurations"
            | "GetAudioDecoderConfigurations"
            | "GetAudioDecoderConfigurationOptions"
            | "GetVideoEncoderConfigurationOptions",
        ) => ReadMedia,
        (
            ns::TR2,
            "GetProfiles"
            | "GetStreamUri"
            | "GetSnapshotUri"
            | "GetVideoSourceConfigurations"
            | "GetVideoEncoderConfigurations"
            | "GetAudioSourceConfigurations"
            | "GetAudioEncoderConfigurations"
            | "GetAudioOutputConfigurations"
            | "GetAudioDecoderConfigurations"
            | "GetAudioDecoderConfigurationOptions"
            | "GetVideoEncoderConfigurationOptions",
        ) => ReadMedia,
        (
            ns::TRC,
            "GetRecordings"
            | "GetRecordingJobs"
            | "GetRecordingConfiguration"
            | "GetTrackConfiguration"
            | "GetRecordingJobConfiguration"
            | "GetRecordingJobState",
        ) => ReadMedia,
        (
            ns::TSE,
            "GetRecordingSummary"
            | "GetRecordingInformation"
            | "FindRecordings"
            | "GetRecordingSearchResults"
            | "EndSearch"
            | "GetMediaAttributes"
            | "FindEvents"
            | "GetEventSearchResults"
            | "GetSearchState"
            | "FindPTZPosition"
            | "GetPTZPositionSearchResults",
        ) => ReadMedia,
        (ns::TRP, "GetReplayUri" | "GetReplayConfiguration") => ReadMedia,
        (ns::TEV, "GetServiceCapabilities") => PreAuth,
        (
            ns::TEV,
            "GetEventProperties"
            | "CreatePullPointSubscription"
            | "PullMessages"
            | "SetSynchronizationPoint",
        ) => ReadMedia,
        (ns::WSNT, "Renew" | "Unsubscribe") => ReadMedia,
        (ns::TPTZ, "GetServiceCapabilities") => PreAuth,
        (
            ns::TPTZ,
            "GetNodes"
            | "GetNode"
            | "GetConfigurations"
            | "GetConfiguration"
            | "GetConfigurationOptions"
            | "GetStatus"
            | "GetPresets",
        ) => ReadMedia,
        (
            ns::TPTZ,
            "ContinuousMove" | "AbsoluteMove" | "RelativeMove" | "Stop" | "SetPreset"
            | "GotoPreset" | "RemovePreset",
        ) => Actuate,
        (ns::TIMG, "GetServiceCapabilities") => PreAuth,
        (ns::TIMG, "GetImagingSettings" | "GetOptions" | "GetMoveOptions" | "GetStatus") => {
            ReadMedia
        }
        (ns::TIMG, "SetImagingSettings" | "Move" | "Stop") => Actuate,
        _ => return None,
    };
    Some(c)
}

fn dispatch(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    match req.namespace.as_str() {
        ns::TDS => device(req, m),
        ns::TRT => media(req, m),
        ns::TR2 => media2(req, m),
        ns::TMD => deviceio(req, m),
        ns::TRC => recording(req, m),
        ns::TSE => search(req, m),
        ns::TRP => replay(req, m),
        _ => Err(Fault::action_not_supported(&req.namespace, &req.action)),
    }
}

// ---------------------------------------------------------------- Device (Core §8)

/// The ONVIF version this device claims (Core 2.4 schema set).
const VERSION: (u32, u32) = (2, 40);

fn version_xml(prefix: &str) -> String {
    format!(
        "<{prefix}:Version><tt:Major>{}</tt:Major><tt:Minor>{}</tt:Minor></{prefix}:Version>",
        VERSION.0, VERSION.1
    )
}

fn device(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    Ok(match req.action.as_str() {
        "GetSystemDateAndTime" => {
            let (date, (h, mi, s)) = civil(m.now);
            format!(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>{h}</tt:Hour><tt:Minute>{mi}</tt:Minute><tt:Second>{s}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
                date.0, date.1, date.2
            )
        }
        "GetDeviceInformation" => format!(
            "<tds:GetDeviceInformationResponse>{}{}{}{}{}</tds:GetDeviceInformationResponse>",
            el("tds:Manufacturer", &m.manufacturer),
            el("tds:Model", &m.model),
            el("tds:FirmwareVersion", &m.firmware_version),
            el("tds:SerialNumber", &m.serial_number),
            el("tds:HardwareId", &m.hardware_id),
        ),
        "GetCapabilities" => {
            let cat = req.arg("Category").unwrap_or("All");
            if !matches!(
                cat,
                "All" | "Device" | "Media" | "Analytics" | "Events" | "Imaging" | "PTZ"
            ) {
                return Err(Fault::invalid_arg(
                    "ter:NoSuchService",
                    format!("unknown capability category {cat:?}"),
                ));
            }
            if cat == "Analytics" || (cat == "PTZ" && m.ptz.is_empty()) {
                return Err(Fault::receiver(
                    "ter:ActionNotSupported",
                    Some("ter:NoSuchService"),
                    format!("this device has no {cat} service"),
                ));
            }
            let all = cat == "All";
            let mut s = String::from("<tds:GetCapabilitiesResponse><tds:Capabilities>");
            if all || cat == "Device" {
                s += &format!(
                    "<tt:Device><tt:XAddr>{}</tt:XAddr><tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network><tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade><tt:SupportedVersions><tt:Major>{}</tt:Major><tt:Minor>{}</tt:Minor></tt:SupportedVersions></tt:System><tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2><tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration><tt:AccessPolicyConfig>false</tt:AccessPolicyConfig><tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken><tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken></tt:Security></tt:Device>",
                    m.xaddr("device"), VERSION.0, VERSION.1
                );
            }
            if all || cat == "Events" {
                s += &format!(
                    "<tt:Events><tt:XAddr>{}</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>",
                    m.xaddr("events")
                );
            }
            if all || cat == "Imaging" {
                s += &format!("<tt:Imaging><tt:XAddr>{}</tt:XAddr></tt:Imaging>", m.xaddr("imaging"));
            }
            if all || cat == "Media" {
                s += &format!(
                    "<tt:Media><tt:XAddr>{}</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>",
                    m.xaddr("media")
                );
            }
            if (all || cat == "PTZ") && !m.ptz.is_empty() {
                s += &format!("<tt:PTZ><tt:XAddr>{}</tt:XAddr></tt:PTZ>", m.xaddr("ptz"));
            }
            if all {
                let outputs = m.cameras.iter().filter(|c| !c.backchannel.is_empty()).count();
                let audio = m.cameras.iter().filter(|c| c.audio.is_some()).count();
                let video = m.cameras.iter().filter(|c| c.video.is_some()).count();
                s += &format!(
                    "<tt:Extension><tt:DeviceIO><tt:XAddr>{}</tt:XAddr><tt:VideoSources>{video}</tt:VideoSources><tt:VideoOutputs>0</tt:VideoOutputs><tt:AudioSources>{audio}</tt:AudioSources><tt:AudioOutputs>{outputs}</tt:AudioOutputs><tt:RelayOutputs>0</tt:RelayOutputs></tt:DeviceIO><tt:Recording><tt:XAddr>{}</tt:XAddr><tt:ReceiverSource>false</tt:ReceiverSource><tt:MediaProfileSource>true</tt:MediaProfileSource><tt:DynamicRecordings>false</tt:DynamicRecordings><tt:DynamicTracks>false</tt:DynamicTracks><tt:MaxStringLength>64</tt:MaxStringLength></tt:Recording><tt:Search><tt:XAddr>{}</tt:XAddr><tt:MetadataSearch>false</tt:MetadataSearch></tt:Search><tt:Replay><tt:XAddr>{}</tt:XAddr></tt:Replay></tt:Extension>",
                    m.xaddr("deviceio"),
                    m.xaddr("recording"),
                    m.xaddr("search"),
                    m.xaddr("replay")
                );
            }
            s + "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        }
        "GetServices" => {
            let with_caps = req.arg("IncludeCapability") == Some("true");
            let mut s = String::from("<tds:GetServicesResponse>");
            let ptz = (!m.ptz.is_empty()).then_some(("ptz", ns::TPTZ, "tptz"));
            for (path, nsuri, prefix) in SERVICES.into_iter().chain(ptz) {
                let caps = if with_caps {
                    format!(
                        "<tds:Capabilities>{}</tds:Capabilities>",
                        service_capabilities(nsuri, prefix, m)
                    )
                } else {
                    String::new()
                };
                s += &format!(
                    "<tds:Service><tds:Namespace>{nsuri}</tds:Namespace><tds:XAddr>{}</tds:XAddr>{caps}{}</tds:Service>",
                    m.xaddr(path),
                    version_xml("tds")
                );
            }
            s + "</tds:GetServicesResponse>"
        }
        "GetServiceCapabilities" => format!(
            "<tds:GetServiceCapabilitiesResponse>{}</tds:GetServiceCapabilitiesResponse>",
            service_capabilities(ns::TDS, "tds", m)
        ),
        "GetWsdlUrl" => "<tds:GetWsdlUrlResponse><tds:WsdlUrl>http://www.onvif.org/Documents/Specifications.aspx</tds:WsdlUrl></tds:GetWsdlUrlResponse>".to_owned(),
        "GetScopes" => {
            let mut s = String::from("<tds:GetScopesResponse>");
            for sc in &m.scopes {
                s += &format!(
                    "<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef>{}</tds:Scopes>",
                    el("tt:ScopeItem", sc)
                );
            }
            for sc in &m.configurable_scopes {
                s += &format!(
                    "<tds:Scopes><tt:ScopeDef>Configurable</tt:ScopeDef>{}</tds:Scopes>",
                    el("tt:ScopeItem", sc)
                );
            }
            s + "</tds:GetScopesResponse>"
        }
        "GetHostname" => format!(
            "<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>{}</tds:HostnameInformation></tds:GetHostnameResponse>",
            el("tt:Name", &m.hostname)
        ),
        "GetDiscoveryMode" => "<tds:GetDiscoveryModeResponse><tds:DiscoveryMode>Discoverable</tds:DiscoveryMode></tds:GetDiscoveryModeResponse>".to_owned(),
        "GetNetworkInterfaces" => {
            let mut s = String::from("<tds:GetNetworkInterfacesResponse>");
            for i in &m.interfaces {
                s += &format!(
                    "<tds:NetworkInterfaces token=\"{}\"><tt:Enabled>true</tt:Enabled><tt:Info>{}{}</tt:Info><tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual>{}<tt:PrefixLength>{}</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4></tds:NetworkInterfaces>",
                    escape(&i.token),
                    el("tt:Name", &i.name),
                    el("tt:HwAddress", &i.mac),
                    el("tt:Address", &i.ipv4),
                    i.prefix_len
                );
            }
            s + "</tds:GetNetworkInterfacesResponse>"
        }
        "SetSystemDateAndTime" => {
            set_date_and_time(req)?;
            change::empty("tds", "SetSystemDateAndTime")
        }
        "GetNTP" => "<tds:GetNTPResponse><tds:NTPInformation><tt:FromDHCP>false</tt:FromDHCP></tds:NTPInformation></tds:GetNTPResponse>".to_owned(),
        "GetUsers" => {
            let mut s = String::from("<tds:GetUsersResponse>");
            for (name, role) in &m.users {
                s += &format!(
                    "<tds:User>{}<tt:UserLevel>{}</tt:UserLevel></tds:User>",
                    el("tt:Username", name),
                    role.as_str()
                );
            }
            s + "</tds:GetUsersResponse>"
        }
        _ => return Err(Fault::action_not_supported(&req.namespace, &req.action)),
    })
}

/// SetSystemDateAndTime as far as a process may: the clock is the host's (kept by NTP or
/// whoever runs the host), so `NTP` with UTC is accepted as what already holds and a manual
/// time is refused, as is a time zone other than UTC (answers are in UTC).
fn set_date_and_time(req: &Request) -> Result<(), Fault> {
    match req.arg("DateTimeType") {
        Some("NTP") => {}
        Some("Manual") => {
            return Err(Fault::receiver(
                "ter:ActionNotSupported",
                None,
                "ipcamd is a process and does not set the system clock: its time is the host's; set the host's clock (NTP, timedatectl) or send DateTimeType NTP",
            ))
        }
        other => {
            return Err(Fault::invalid_arg(
                "ter:InvalidArgs",
                format!(
                    "DateTimeType {:?}: use NTP (Manual is refused)",
                    other.unwrap_or_default()
                ),
            ))
        }
    }
    if let Some(tz) = req.arg("TZ") {
        let utc = tz.is_empty()
            || [
                "UTC", "GMT", "UTC0", "GMT0", "UTC+0", "UTC-0", "GMT+0", "GMT-0", "Z", "Etc/UTC",
            ]
            .iter()
            .any(|u| tz.eq_ignore_ascii_case(u));
        if !utc {
            return Err(Fault::invalid_arg(
                "ter:InvalidTimeZone",
                format!("time zone {tz:?}: this device keeps and reports UTC (UTC0) only"),
            ));
        }
    }
    Ok(())
}

/// (service path name, namespace, prefix) of every service, in GetServices order.
const SERVICES: [(&str, &str, &str); 9] = [
    ("device", ns::TDS, "tds"),
    ("media", ns::TRT, "trt"),
    ("media2", ns::TR2, "tr2"),
    ("deviceio", ns::TMD, "tmd"),
    ("recording", ns::TRC, "trc"),
    ("search", ns::TSE, "tse"),
    ("replay", ns::TRP, "trp"),
    ("events", ns::TEV, "tev"),
    ("imaging", ns::TIMG, "timg"),
];

/// The `<prefix:Capabilities>` element of a service (GetServiceCapabilities, GetServices).
fn service_capabilities(nsuri: &str, prefix: &str, m: &DeviceModel) -> String {
    let outputs = m
        .cameras
        .iter()
        .filter(|c| !c.backchannel.is_empty())
        .count();
    let audio = m.cameras.iter().filter(|c| c.audio.is_some()).count();
    let video = m.cameras.iter().filter(|c| c.video.is_some()).count();
    if nsuri == ns::TEV {
        return event_service::capabilities(m.max_pull_points);
    }
    if nsuri == ns::TPTZ {
        return ptz_service::capabilities();
    }
    if nsuri == ns::TIMG {
        return imaging_service::capabilities();
    }
    let inner = match nsuri {
        ns::TDS => format!("<tds:Network IPFilter=\"false\" ZeroConfiguration=\"false\" IPVersion6=\"false\" DynDNS=\"false\"/><tds:Security UsernameToken=\"true\" HttpDigest=\"true\" MaxUsers=\"{}\"/><tds:System DiscoveryResolve=\"false\" DiscoveryBye=\"true\" RemoteDiscovery=\"false\" SystemBackup=\"false\" SystemLogging=\"false\" FirmwareUpgrade=\"false\"/>", change::MAX_USERS),
        ns::TRT => format!(
            "<trt:ProfileCapabilities MaximumNumberOfProfiles=\"{}\"/><trt:StreamingCapabilities RTPMulticast=\"false\" RTP_TCP=\"true\" RTP_RTSP_TCP=\"true\"/>",
            m.cameras.len()
        ),
        ns::TR2 => format!(
            "<tr2:ProfileCapabilities MaximumNumberOfProfiles=\"{}\"/><tr2:StreamingCapabilities RTSPStreaming=\"true\" RTPMulticast=\"false\" RTP_RTSP_TCP=\"true\"/>",
            m.cameras.len()
        ),
        _ => String::new(),
    };
    let attrs = match nsuri {
        ns::TRT | ns::TR2 => " SnapshotUri=\"true\"".to_owned(),
        ns::TMD => format!(" VideoSources=\"{video}\" VideoOutputs=\"0\" AudioSources=\"{audio}\" AudioOutputs=\"{outputs}\" RelayOutputs=\"0\""),
        ns::TRC => format!(" DynamicRecordings=\"false\" DynamicTracks=\"false\" MaxRecordings=\"{}\" MaxRecordingJobs=\"{}\" Options=\"false\" MetadataRecording=\"false\"", m.cameras.len(), m.jobs.len()),
        ns::TSE => " MetadataSearch=\"false\" GeneralStartEvents=\"true\"".to_owned(),
        ns::TRP => format!(
            " ReversePlayback=\"true\" SessionTimeoutRange=\"{0} {0}\" RTP_RTSP_TCP=\"true\"",
            m.session_timeout_s
        ),
        _ => String::new(),
    };
    if inner.is_empty() {
        format!("<{prefix}:Capabilities{attrs}/>")
    } else {
        format!("<{prefix}:Capabilities{attrs}>{inner}</{prefix}:Capabilities>")
    }
}

/// (year, month, day), (hour, minute, second) of a UTC instant.
fn civil(t: UnixMicros) -> ((i64, u32, u32), (i64, i64, i64)) {
    let days = t.div_euclid(86_400_000_000);
    let secs = t.rem_euclid(86_400_000_000) / 1_000_000;
    (
        ipcamd_proto::time::civil_from_days(days),
        (secs / 3600, secs / 60 % 60, secs % 60),
    )
}

/// xs:dateTime, UTC, whole seconds.
fn dt(t: UnixMicros) -> String {
    let s = format_iso8601(t);
    // "2026-11-21T22:02:24.123Z" -> "2026-11-21T22:02:24Z"
    match s.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => s,
    }
}

// ---------------------------------------------------------------- Media (ver10)

fn camera<'a>(
    m: &'a DeviceModel,
    token: Option<&str>,
    what: &str,
) -> Result<&'a CameraModel, Fault> {
    let Some(token) = token else {
        return Err(Fault::invalid_arg(
            "ter:NoProfile",
            format!("the request has no {what}"),
        ));
    };
    // A profile token is the camera name; a configuration token is `<Kind>_<camera>`.
    let by_config = || {
        token
            .split_once('_')
            .filter(|(k, _)| k.starts_with("Video") || k.starts_with("Audio"))
            .and_then(|(_, n)| m.camera(n))
    };
    m.camera(token).or_else(by_config).ok_or_else(|| {
        Fault::invalid_arg(
            "ter:NoProfile",
            format!(
                "{what} {token:?} does not exist; GetProfiles lists them ({})",
                m.cameras
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn multicast_none() -> &'static str {
    "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
}

fn video_source_config(c: &CameraModel, tag: &str) -> Option<String> {
    let v = c.video.as_ref()?;
    Some(format!(
        "<{tag} token=\"VideoSourceConfig_{n}\"><tt:Name>VideoSourceConfig_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>VideoSource_{n}</tt:SourceToken><tt:Bounds x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/></{tag}>",
        v.width,
        v.height,
        n = escape(&c.name)
    ))
}

fn video_encoder_config(c: &CameraModel, tag: &str, session_timeout_s: u64) -> Option<String> {
    let v = c.video.as_ref()?;
    let (enc, h264) = match v.encoding {
        VideoEncoding::H264 => (
            "H264",
            format!("<tt:H264><tt:GovLength>{}</tt:GovLength><tt:H264Profile>Baseline</tt:H264Profile></tt:H264>", v.gov_length),
        ),
        VideoEncoding::Jpeg => ("JPEG", String::new()),
        // ver10 has no H.265: Media2 describes it.
        VideoEncoding::H265 => return None,
    };
    Some(format!(
        "<{tag} token=\"VideoEncoder_{n}\"><tt:Name>VideoEncoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>{enc}</tt:Encoding><tt:Resolution><tt:Width>{}</tt:Width><tt:Height>{}</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>{}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>{}</tt:BitrateLimit></tt:RateControl>{h264}{}<tt:SessionTimeout>PT{session_timeout_s}S</tt:SessionTimeout></{tag}>",
        v.width, v.height, v.fps, v.bitrate_kbps, multicast_none(),
        n = escape(&c.name)
    ))
}

fn audio_source_config(c: &CameraModel, tag: &str) -> Option<String> {
    c.audio.as_ref()?;
    Some(format!(
        "<{tag} token=\"AudioSourceConfig_{n}\"><tt:Name>AudioSourceConfig_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>AudioSource_{n}</tt:SourceToken></{tag}>",
        n = escape(&c.name)
    ))
}

fn audio_encoder_config(c: &CameraModel, tag: &str, session_timeout_s: u64) -> Option<String> {
    let a = c.audio.as_ref()?;
    let enc = a.encoding.ver10()?;
    Some(format!(
        "<{tag} token=\"AudioEncoder_{n}\"><tt:Name>AudioEncoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>{enc}</tt:Encoding><tt:Bitrate>{}</tt:Bitrate><tt:SampleRate>{}</tt:SampleRate>{}<tt:SessionTimeout>PT{session_timeout_s}S</tt:SessionTimeout></{tag}>",
        a.bitrate_kbps,
        a.sample_rate / 1000,
        multicast_none(),
        n = escape(&c.name)
    ))
}

fn audio_output_config(c: &CameraModel, tag: &str) -> Option<String> {
    if c.backchannel.is_empty() {
        return None;
    }
    Some(format!(
        "<{tag} token=\"AudioOutputConfig_{n}\"><tt:Name>AudioOutputConfig_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:OutputToken>AudioOutput_{n}</tt:OutputToken><tt:SendPrimacy>www.onvif.org/ver20/HalfDuplex/Auto</tt:SendPrimacy><tt:OutputLevel>100</tt:OutputLevel></{tag}>",
        n = escape(&c.name)
    ))
}

fn audio_decoder_config(c: &CameraModel, tag: &str) -> Option<String> {
    if c.backchannel.is_empty() {
        return None;
    }
    Some(format!(
        "<{tag} token=\"AudioDecoder_{n}\"><tt:Name>AudioDecoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount></{tag}>",
        n = escape(&c.name)
    ))
}

fn profile_v10(c: &CameraModel, m: &DeviceModel, tag: &str) -> String {
    let t = m.session_timeout_s;
    let ext = match (
        audio_output_config(c, "tt:AudioOutputConfiguration"),
        audio_decoder_config(c, "tt:AudioDecoderConfiguration"),
    ) {
        (Some(o), Some(d)) => format!("<tt:Extension>{o}{d}</tt:Extension>"),
        _ => String::new(),
    };
    format!(
        "<{tag} token=\"{n}\" fixed=\"true\"><tt:Name>{n}</tt:Name>{}{}{}{}{}{ext}</{tag}>",
        video_source_config(c, "tt:VideoSourceConfiguration").unwrap_or_default(),
        audio_source_config(c, "tt:AudioSourceConfiguration").unwrap_or_default(),
        video_encoder_config(c, "tt:VideoEncoderConfiguration", t).unwrap_or_default(),
        audio_encoder_config(c, "tt:AudioEncoderConfiguration", t).unwrap_or_default(),
        ptz_config(c, m, "tt:PTZConfiguration"),
        n = escape(&c.name)
    )
}

/// The profile's PTZ configuration, if its camera has a head.
fn ptz_config(c: &CameraModel, m: &DeviceModel, tag: &str) -> String {
    if m.ptz.contains(&c.name) {
        ptz_service::configuration(&c.name, tag)
    } else {
        String::new()
    }
}

/// Every camera's `what` element, or the one a `ConfigurationToken` names.
fn configs(
    req: &Request,
    m: &DeviceModel,
    f: impl Fn(&CameraModel) -> Option<String>,
) -> Result<String, Fault> {
    let token = req.arg("ConfigurationToken").or(req.arg("ProfileToken"));
    Ok(match token {
        Some(t) => {
            let c = camera(m, Some(t), "configuration")?;
            f(c).ok_or_else(|| {
                Fault::invalid_arg("ter:NoConfig", format!("{t:?} has no such configuration"))
            })?
        }
        None => m.cameras.iter().filter_map(f).collect(),
    })
}

fn media_uri(uri: &str, m: &DeviceModel) -> String {
    format!(
        "<trt:MediaUri>{}<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT{}S</tt:Timeout></trt:MediaUri>",
        el("tt:Uri", uri),
        m.session_timeout_s
    )
}

/// URI of the live stream of `c` for a transport name (ver10 `Protocol`, Media2
/// `Protocol`); None for transports not offered (multicast, RTSPS).
pub fn stream_uri(c: &CameraModel, m: &DeviceModel, protocol: &str) -> Option<String> {
    match protocol {
        "UDP" | "TCP" | "RTSP" | "RtspUnicast" | "RTSP-Unicast" => {
            Some(format!("{}/{}", m.rtsp_base(), c.name))
        }
        "HTTP" | "RtspOverHttp" => Some(format!("{}/{}", m.http_base(), c.name)),
        _ => None,
    }
}

fn snapshot_uri(c: &CameraModel, m: &DeviceModel) -> String {
    format!("{}/snapshot/{}.jpg", m.http_base(), c.name)
}

fn decoder_options_v10(c: &CameraModel) -> String {
    let list = |enc: &str| -> (Vec<u32>, Vec<u32>) {
        let sel: Vec<&AudioModel> = c
            .backchannel
            .iter()
            .filter(|a| a.encoding.ver10() == Some(enc))
            .collect();
        let mut br: Vec<u32> = sel.iter().map(|a| a.bitrate_kbps).collect();
        let mut sr: Vec<u32> = sel.iter().map(|a| a.sample_rate / 1000).collect();
        br.sort_unstable();
        br.dedup();
        sr.sort_unstable();
        sr.dedup();
        (br, sr)
    };
    let items = |v: &[u32]| -> String {
        v.iter()
            .map(|x| format!("<tt:Items>{x}</tt:Items>"))
            .collect()
    };
    let mut s = String::new();
    for (enc, tag) in [
        ("AAC", "AACDecOptions"),
        ("G711", "G711DecOptions"),
        ("G726", "G726DecOptions"),
    ] {
        let (br, sr) = list(enc);
        if !br.is_empty() {
            s += &format!(
                "<tt:{tag}><tt:Bitrate>{}</tt:Bitrate><tt:SampleRateRange>{}</tt:SampleRateRange></tt:{tag}>",
                items(&br),
                items(&sr)
            );
        }
    }
    s
}

fn media(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    let t = m.session_timeout_s;
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TRT, "trt", m),
        "GetProfiles" => m.cameras.iter().map(|c| profile_v10(c, m, "trt:Profiles")).collect(),
        "GetProfile" => {
            let c = camera(m, req.arg("ProfileToken"), "ProfileToken")?;
            profile_v10(c, m, "trt:Profile")
        }
        "GetStreamUri" => {
            let c = camera(m, req.arg("ProfileToken"), "ProfileToken")?;
            let stream = req.arg("Stream").unwrap_or("RTP-Unicast");
            if stream != "RTP-Unicast" {
                return Err(Fault::invalid_arg(
                    "ter:InvalidStreamSetup",
                    format!("stream type {stream:?} is not offered: only RTP-Unicast (no multicast)"),
                ));
            }
            let proto = req.arg("Protocol").unwrap_or("RTSP");
            let uri = stream_uri(c, m, proto).ok_or_else(|| {
                Fault::invalid_arg(
                    "ter:InvalidStreamSetup",
                    format!("transport protocol {proto:?} is not offered: UDP, TCP, RTSP or HTTP"),
                )
            })?;
            media_uri(&uri, m)
        }
        "GetSnapshotUri" => {
            let c = camera(m, req.arg("ProfileToken"), "ProfileToken")?;
            media_uri(&snapshot_uri(c, m), m)
        }
        "GetVideoSources" => m
            .cameras
            .iter()
            .filter_map(|c| {
                let v = c.video.as_ref()?;
                Some(format!(
                    "<trt:VideoSources token=\"VideoSource_{}\"><tt:Framerate>{}</tt:Framerate><tt:Resolution><tt:Width>{}</tt:Width><tt:Height>{}</tt:Height></tt:Resolution></trt:VideoSources>",
                    escape(&c.name), v.fps, v.width, v.height
                ))
            })
            .collect(),
        "GetVideoSourceConfigurations" => configs(req, m, |c| video_source_config(c, "trt:Configurations"))?,
        "GetVideoSourceConfiguration" => configs(req, m, |c| video_source_config(c, "trt:Configuration"))?,
        "GetVideoEncoderConfigurations" => configs(req, m, |c| video_encoder_config(c, "trt:Configurations", t))?,
        "GetVideoEncoderConfiguration" => configs(req, m, |c| video_encoder_config(c, "trt:Configuration", t))?,
        "GetAudioSources" => audio_sources(m, "trt:AudioSources"),
        "GetAudioSourceConfigurations" => configs(req, m, |c| audio_source_config(c, "trt:Configurations"))?,
        "GetAudioEncoderConfigurations" => configs(req, m, |c| audio_encoder_config(c, "trt:Configurations", t))?,
        "GetAudioOutputs" => audio_outputs(m, "trt:AudioOutputs"),
        "GetAudioOutputConfigurations" => configs(req, m, |c| audio_output_config(c, "trt:Configurations"))?,
        "GetAudioDecoderConfigurations" => configs(req, m, |c| audio_decoder_config(c, "trt:Configurations"))?,
        "GetAudioDecoderConfigurationOptions" => {
            let token = req.arg("ConfigurationToken").or(req.arg("ProfileToken"));
            let cams: Vec<&CameraModel> = match token {
                Some(t) => vec![camera(m, Some(t), "configuration")?],
                None => m.cameras.iter().filter(|c| !c.backchannel.is_empty()).collect(),
            };
            let Some(c) = cams.first() else {
                return Err(Fault::invalid_arg("ter:NoConfig", "no camera has an audio output"));
            };
            format!("<trt:Options>{}</trt:Options>", decoder_options_v10(c))
        }
        "GetVideoEncoderConfigurationOptions" => encoder::options_v10(req, m)?,
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<trt:{a}Response>{body}</trt:{a}Response>"))
}

fn audio_sources(m: &DeviceModel, tag: &str) -> String {
    m.cameras
        .iter()
        .filter(|c| c.audio.is_some())
        .map(|c| {
            format!(
                "<{tag} token=\"AudioSource_{}\"><tt:Channels>1</tt:Channels></{tag}>",
                escape(&c.name)
            )
        })
        .collect()
}

fn audio_outputs(m: &DeviceModel, tag: &str) -> String {
    m.cameras
        .iter()
        .filter(|c| !c.backchannel.is_empty())
        .map(|c| format!("<{tag} token=\"AudioOutput_{}\"/>", escape(&c.name)))
        .collect()
}

// ---------------------------------------------------------------- Media2 (ver20)

fn video_encoder2(c: &CameraModel) -> Option<String> {
    let v = c.video.as_ref()?;
    let (gov, profile) = match v.encoding {
        VideoEncoding::H264 => (
            format!(" GovLength=\"{}\"", v.gov_length),
            " Profile=\"ConstrainedBaseline\"",
        ),
        VideoEncoding::H265 => (
            format!(" GovLength=\"{}\"", v.gov_length),
            " Profile=\"Main\"",
        ),
        VideoEncoding::Jpeg => (String::new(), ""),
    };
    Some(format!(
        "<tr2:VideoEncoder token=\"VideoEncoder_{n}\"{gov}{profile}><tt:Name>VideoEncoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>{}</tt:Encoding><tt:Resolution><tt:Width>{}</tt:Width><tt:Height>{}</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate=\"false\"><tt:FrameRateLimit>{}</tt:FrameRateLimit><tt:BitrateLimit>{}</tt:BitrateLimit></tt:RateControl><tt:Quality>5</tt:Quality></tr2:VideoEncoder>",
        v.encoding.mime(), v.width, v.height, v.fps, v.bitrate_kbps,
        n = escape(&c.name)
    ))
}

fn audio_encoder2(c: &CameraModel, tag: &str) -> Option<String> {
    let a = c.audio.as_ref()?;
    Some(format!(
        "<{tag} token=\"AudioEncoder_{n}\"><tt:Name>AudioEncoder_{n}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>{}</tt:Encoding><tt:Bitrate>{}</tt:Bitrate><tt:SampleRate>{}</tt:SampleRate></{tag}>",
        a.encoding.mime(), a.bitrate_kbps, a.sample_rate / 1000,
        n = escape(&c.name)
    ))
}

fn media2(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TR2, "tr2", m),
        "GetProfiles" => {
            let cams: Vec<&CameraModel> = match req.arg("Token") {
                Some(t) => vec![camera(m, Some(t), "Token")?],
                None => m.cameras.iter().collect(),
            };
            cams.iter()
                .map(|c| {
                    format!(
                        "<tr2:Profiles token=\"{n}\" fixed=\"true\"><tr2:Name>{n}</tr2:Name><tr2:Configurations>{}{}{}{}{}{}{}</tr2:Configurations></tr2:Profiles>",
                        video_source_config(c, "tr2:VideoSource").unwrap_or_default(),
                        audio_source_config(c, "tr2:AudioSource").unwrap_or_default(),
                        video_encoder2(c).unwrap_or_default(),
                        audio_encoder2(c, "tr2:AudioEncoder").unwrap_or_default(),
                        ptz_config(c, m, "tr2:PTZ"),
                        audio_output_config(c, "tr2:AudioOutput").unwrap_or_default(),
                        audio_decoder_config(c, "tr2:AudioDecoder").unwrap_or_default(),
                        n = escape(&c.name)
                    )
                })
                .collect()
        }
        "GetStreamUri" => {
            let c = camera(m, req.arg("ProfileToken"), "ProfileToken")?;
            let proto = req.arg("Protocol").unwrap_or("RtspUnicast");
            let uri = stream_uri(c, m, proto).ok_or_else(|| {
                Fault::invalid_arg(
                    "ter:InvalidStreamSetup",
                    format!("protocol {proto:?} is not offered: RtspUnicast, RTSP or RtspOverHttp"),
                )
            })?;
            el("tr2:Uri", uri)
        }
        "GetSnapshotUri" => {
            let c = camera(m, req.arg("ProfileToken"), "ProfileToken")?;
            el("tr2:Uri", snapshot_uri(c, m))
        }
        "GetVideoSourceConfigurations" => {
            configs(req, m, |c| video_source_config(c, "tr2:Configurations"))?
        }
        "GetVideoEncoderConfigurations" => configs(req, m, |c| {
            video_encoder2(c).map(|s| s.replace("tr2:VideoEncoder", "tr2:Configurations"))
        })?,
        "GetAudioSourceConfigurations" => {
            configs(req, m, |c| audio_source_config(c, "tr2:Configurations"))?
        }
        "GetAudioEncoderConfigurations" => {
            configs(req, m, |c| audio_encoder2(c, "tr2:Configurations"))?
        }
        "GetAudioOutputConfigurations" => {
            configs(req, m, |c| audio_output_config(c, "tr2:Configurations"))?
        }
        "GetAudioDecoderConfigurations" => {
            configs(req, m, |c| audio_decoder_config(c, "tr2:Configurations"))?
        }
        "GetAudioDecoderConfigurationOptions" => {
            let token = req.arg("ConfigurationToken").or(req.arg("ProfileToken"));
            let c = match token {
                Some(t) => camera(m, Some(t), "configuration")?,
                None => m
                    .cameras
                    .iter()
                    .find(|c| !c.backchannel.is_empty())
                    .ok_or_else(|| {
                        Fault::invalid_arg("ter:NoConfig", "no camera has an audio output")
                    })?,
            };
            c.backchannel
                .iter()
                .map(|a| {
                    format!(
                        "<tr2:Options><tt:Encoding>{}</tt:Encoding><tt:BitrateList><tt:Items>{}</tt:Items></tt:BitrateList><tt:SampleRateList><tt:Items>{}</tt:Items></tt:SampleRateList></tr2:Options>",
                        a.encoding.mime(), a.bitrate_kbps, a.sample_rate / 1000
                    )
                })
                .collect()
        }
        "GetVideoEncoderConfigurationOptions" => encoder::options_v20(req, m)?,
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<tr2:{a}Response>{body}</tr2:{a}Response>"))
}

// ---------------------------------------------------------------- DeviceIO

/// DeviceIO's GetAudioOutputs, GetAudioSources and GetVideoSources are the Media (trt)
/// messages (deviceio.wsdl imports them), so they reach [`media`] by their namespace;
/// only the capabilities are DeviceIO's own.
fn deviceio(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TMD, "tmd", m),
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<tmd:{a}Response>{body}</tmd:{a}Response>"))
}

// ---------------------------------------------------------------- Recording, Search, Replay

fn recording_or_fault<'a>(
    m: &'a DeviceModel,
    token: Option<&str>,
) -> Result<&'a RecordingModel, Fault> {
    let token = token.unwrap_or("");
    m.recording(token).ok_or_else(|| {
        Fault::invalid_arg(
            "ter:NoRecording",
            format!(
                "recording {token:?} does not exist; FindRecordings or GetRecordings lists them ({})",
                m.recordings.iter().map(|r| r.token.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

fn track_type(k: TrackKind) -> &'static str {
    match k {
        TrackKind::Video => "Video",
        TrackKind::Audio => "Audio",
    }
}

fn source_info(r: &RecordingModel, m: &DeviceModel) -> String {
    format!(
        "<tt:SourceId>{}</tt:SourceId>{}<tt:Location>local</tt:Location><tt:Description>continuous recording of camera {}</tt:Description><tt:Address>{}</tt:Address>",
        escape(&format!("{}/{}", m.rtsp_base(), r.token)),
        el("tt:Name", &r.token),
        escape(&r.token),
        escape(&m.xaddr("media"))
    )
}

fn recording(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    if let Some(body) = recording_control::read(req, m) {
        return Ok(format!("<trc:{a}Response>{}</trc:{a}Response>", body?));
    }
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TRC, "trc", m),
        "GetRecordings" => m
            .recordings
            .iter()
            .map(|r| {
                let tracks: String = r
                    .tracks
                    .iter()
                    .map(|t| {
                        format!(
                            "<tt:Track>{}<tt:Configuration><tt:TrackType>{}</tt:TrackType>{}</tt:Configuration></tt:Track>",
                            el("tt:TrackToken", &t.token),
                            track_type(t.kind),
                            el("tt:Description", &t.codec)
                        )
                    })
                    .collect();
                format!(
                    "<trc:RecordingItem>{}<tt:Configuration><tt:Source>{}</tt:Source><tt:Content>continuous</tt:Content><tt:MaximumRetentionTime>PT0S</tt:MaximumRetentionTime></tt:Configuration><tt:Tracks>{tracks}</tt:Tracks></trc:RecordingItem>",
                    el("tt:RecordingToken", &r.token),
                    source_info(r, m)
                )
            })
            .collect(),
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<trc:{a}Response>{body}</trc:{a}Response>"))
}

fn recording_information(r: &RecordingModel, m: &DeviceModel, tag: &str) -> String {
    let (from, until) = (r.earliest().unwrap_or(m.now), r.latest().unwrap_or(m.now));
    let tracks: String = r
        .tracks
        .iter()
        .map(|t| {
            format!(
                "<tt:Track>{}<tt:TrackType>{}</tt:TrackType>{}<tt:DataFrom>{}</tt:DataFrom><tt:DataTo>{}</tt:DataTo></tt:Track>",
                el("tt:TrackToken", &t.token),
                track_type(t.kind),
                el("tt:Description", &t.codec),
                dt(from),
                dt(until)
            )
        })
        .collect();
    let times = match (r.earliest(), r.latest()) {
        (Some(f), Some(u)) => format!(
            "<tt:EarliestRecording>{}</tt:EarliestRecording><tt:LatestRecording>{}</tt:LatestRecording>",
            dt(f),
            dt(u)
        ),
        _ => String::new(),
    };
    format!(
        "<{tag}>{}<tt:Source>{}</tt:Source>{times}<tt:Content>continuous</tt:Content>{tracks}<tt:RecordingStatus>{}</tt:RecordingStatus></{tag}>",
        el("tt:RecordingToken", &r.token),
        source_info(r, m),
        if r.recording { "Recording" } else { "Stopped" }
    )
}

/// Recordings a FindRecordings scope selects (`IncludedRecordings`, `IncludedSources`).
fn found<'a>(req: &Request, m: &'a DeviceModel) -> Vec<&'a RecordingModel> {
    let wanted: Vec<&str> = req
        .args_named("IncludedRecordings")
        .chain(req.args_named("Token"))
        .collect();
    m.recordings
        .iter()
        .filter(|r| wanted.is_empty() || wanted.contains(&r.token.as_str()))
        .collect()
}

fn search(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    if let Some(body) = recording_control::search(req, m) {
        return Ok(format!("<tse:{a}Response>{}</tse:{a}Response>", body?));
    }
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TSE, "tse", m),
        "GetRecordingSummary" => {
            let from = m
                .recordings
                .iter()
                .filter_map(RecordingModel::earliest)
                .min();
            let until = m.recordings.iter().filter_map(RecordingModel::latest).max();
            format!(
                "<tse:Summary><tt:DataFrom>{}</tt:DataFrom><tt:DataUntil>{}</tt:DataUntil><tt:NumberRecordings>{}</tt:NumberRecordings></tse:Summary>",
                dt(from.unwrap_or(m.now)),
                dt(until.unwrap_or(m.now)),
                m.recordings.len()
            )
        }
        "GetRecordingInformation" => {
            let r = recording_or_fault(m, req.arg("RecordingToken"))?;
            recording_information(r, m, "tse:RecordingInformation")
        }
        "FindRecordings" => {
            // Results are complete at once; the token carries the scope for
            // GetRecordingSearchResults ("all" or the recording names).
            let names: Vec<&str> = found(req, m).iter().map(|r| r.token.as_str()).collect();
            let scoped = req.args_named("IncludedRecordings").next().is_some()
                || req.args_named("Token").next().is_some();
            let token = if scoped {
                format!("search:{}", names.join(","))
            } else {
                "search:*".to_owned()
            };
            el("tse:SearchToken", token)
        }
        "GetRecordingSearchResults" => {
            let token = req.arg("SearchToken").unwrap_or("search:*");
            let list: Vec<&RecordingModel> = match token.strip_prefix("search:") {
                Some("*") | None => m.recordings.iter().collect(),
                Some(names) => {
                    let names: Vec<&str> = names.split(',').collect();
                    m.recordings
                        .iter()
                        .filter(|r| names.contains(&r.token.as_str()))
                        .collect()
                }
            };
            let infos: String = list
                .iter()
                .map(|r| recording_information(r, m, "tt:RecordingInformation"))
                .collect();
            format!("<tse:ResultList><tt:SearchState>Completed</tt:SearchState>{infos}</tse:ResultList>")
        }
        "EndSearch" => format!("<tse:Endpoint>{}</tse:Endpoint>", dt(m.now)),
        "GetMediaAttributes" => {
            let tokens: Vec<&str> = req.args_named("RecordingTokens").collect();
            let mut s = String::new();
            for t in tokens {
                let r = recording_or_fault(m, Some(t))?;
                let (from, until) = (r.earliest().unwrap_or(m.now), r.latest().unwrap_or(m.now));
                let cam = m.camera(&r.token);
                let tracks: String = r
                    .tracks
                    .iter()
                    .map(|tr| {
                        let attrs = match (tr.kind, cam) {
                            (TrackKind::Video, Some(CameraModel { video: Some(v), .. })) => format!(
                                "<tt:VideoAttributes><tt:Bitrate>{}</tt:Bitrate><tt:Width>{}</tt:Width><tt:Height>{}</tt:Height><tt:Encoding>{}</tt:Encoding><tt:Framerate>{}</tt:Framerate></tt:VideoAttributes>",
                                v.bitrate_kbps, v.width, v.height,
                                match v.encoding { VideoEncoding::Jpeg => "JPEG", _ => "H264" },
                                v.fps
                            ),
                            (TrackKind::Audio, Some(CameraModel { audio: Some(au), .. })) => format!(
                                "<tt:AudioAttributes><tt:Bitrate>{}</tt:Bitrate><tt:Encoding>{}</tt:Encoding><tt:Samplerate>{}</tt:Samplerate></tt:AudioAttributes>",
                                au.bitrate_kbps, au.encoding.ver10().unwrap_or("G711"), au.sample_rate / 1000
                            ),
                            _ => String::new(),
                        };
                        format!(
                            "<tt:TrackAttributes><tt:TrackInformation>{}<tt:TrackType>{}</tt:TrackType>{}<tt:DataFrom>{}</tt:DataFrom><tt:DataTo>{}</tt:DataTo></tt:TrackInformation>{attrs}</tt:TrackAttributes>",
                            el("tt:TrackToken", &tr.token), track_type(tr.kind), el("tt:Description", &tr.codec), dt(from), dt(until)
                        )
                    })
                    .collect();
                s += &format!(
                    "<tse:MediaAttributes>{}{tracks}<tt:From>{}</tt:From><tt:Until>{}</tt:Until></tse:MediaAttributes>",
                    el("tt:RecordingToken", &r.token),
                    dt(from),
                    dt(until)
                );
            }
            s
        }
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<tse:{a}Response>{body}</tse:{a}Response>"))
}

fn replay(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let a = req.action.as_str();
    let body = match a {
        "GetServiceCapabilities" => service_capabilities(ns::TRP, "trp", m),
        "GetReplayUri" => {
            let r = recording_or_fault(m, req.arg("RecordingToken"))?;
            let proto = req.arg("Protocol").unwrap_or("RTSP");
            let base = match proto {
                "UDP" | "TCP" | "RTSP" => m.rtsp_base(),
                "HTTP" => m.http_base(),
                _ => {
                    return Err(Fault::invalid_arg(
                        "ter:InvalidStreamSetup",
                        format!(
                            "transport protocol {proto:?} is not offered: UDP, TCP, RTSP or HTTP"
                        ),
                    ))
                }
            };
            el("trp:Uri", format!("{base}/replay/{}", r.token))
        }
        "GetReplayConfiguration" => format!(
            "<trp:Configuration><tt:SessionTimeout>PT{}S</tt:SessionTimeout></trp:Configuration>",
            m.session_timeout_s
        ),
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(format!("<trp:{a}Response>{body}</trp:{a}Response>"))
}

#[cfg(test)]
pub(crate) mod tests;
