//! The client side of the ONVIF services, sans IO: what ipcamd sends to take in a camera
//! by its device address, and how it reads the answers. Requests of the Device service
//! (ONVIF Core §8: GetSystemDateAndTime, GetServices, GetCapabilities,
//! GetDeviceInformation) and of Media ver10 / Media2 ver20 (GetProfiles, GetStreamUri),
//! each with an optional WS-Security UsernameToken ([`crate::wsse::security_header`]);
//! parsers of their answers and of SOAP faults. No sockets, no clock: the HTTP exchange,
//! the nonce and the time are the caller's (`ipcamd-client`'s `onvif` module).
//!
//! Hand-written rather than generated from the WSDLs: six operations whose answers need a
//! handful of fields, read tolerantly. Cameras bind the namespaces to any prefix (`tt:`,
//! `ns2:`, a default namespace), add extensions anywhere, answer Media2 with ver10 element
//! names or SOAP 1.1 faults; a binding generated from the schemas would be strict where
//! cameras are sloppy and would pull in a large dependency. Answers are read into a small
//! element tree ([`crate::xml::parse`]) and looked up below the SOAP Body by local name;
//! namespaces are checked where they tell things apart (the envelope, fault codes).
//!
//! Left out: every Set/Create/Delete operation, events, PTZ, imaging, snapshots, replay;
//! multicast stream setups (unicast RTSP only); Media2's RTSPS/WebSocket protocols.

use ipcamd_proto::time::{days_from_civil, UnixMicros};

use crate::ns;
use crate::wsse::{security_header, TokenParams};
use crate::xml::{escape, parse, Element};

/// The media service a profile or stream URI is asked of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaService {
    /// Media ver10 (`trt:`), which every Profile S/T device offers.
    Media,
    /// Media2 ver20 (`tr2:`): H.265 and more audio codecs are described only here.
    Media2,
}

impl MediaService {
    pub fn namespace(self) -> &'static str {
        match self {
            MediaService::Media => ns::TRT,
            MediaService::Media2 => ns::TR2,
        }
    }
    /// `Media` / `Media2`, for messages.
    pub fn label(self) -> &'static str {
        match self {
            MediaService::Media => "Media",
            MediaService::Media2 => "Media2",
        }
    }
}

/// An operation this client calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Device clock (anonymous): for the WS-Security `Created` time.
    GetSystemDateAndTime,
    /// Service addresses (anonymous on most devices).
    GetServices,
    /// Service addresses, the older way (devices before ONVIF 2.0 lack GetServices).
    GetCapabilities,
    GetDeviceInformation,
    GetProfiles(MediaService),
    /// The RTSP URI of a profile (RTP unicast over RTSP).
    GetStreamUri(MediaService, String),
}

impl Operation {
    /// The operation's name, e.g. `GetProfiles`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::GetSystemDateAndTime => "GetSystemDateAndTime",
            Operation::GetServices => "GetServices",
            Operation::GetCapabilities => "GetCapabilities",
            Operation::GetDeviceInformation => "GetDeviceInformation",
            Operation::GetProfiles(_) => "GetProfiles",
            Operation::GetStreamUri(..) => "GetStreamUri",
        }
    }

    /// Namespace of the service the operation belongs to.
    pub fn namespace(&self) -> &'static str {
        match self {
            Operation::GetProfiles(m) | Operation::GetStreamUri(m, _) => m.namespace(),
            _ => ns::TDS,
        }
    }

    /// `Media2 GetProfiles`, `GetServices`: for messages and logs.
    pub fn label(&self) -> String {
        match self {
            Operation::GetProfiles(m) | Operation::GetStreamUri(m, _) => {
                format!("{} {}", m.label(), self.name())
            }
            _ => self.name().to_owned(),
        }
    }

    /// The SOAP 1.2 action URI (the `action` parameter of the HTTP Content-Type).
    pub fn action(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    /// The request envelope (SOAP 1.2), with a UsernameToken when `token` is given.
    pub fn envelope(&self, token: Option<&TokenParams>) -> String {
        let body = match self {
            Operation::GetSystemDateAndTime => "<tds:GetSystemDateAndTime/>".to_owned(),
            Operation::GetServices => {
                "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>".to_owned()
            }
            Operation::GetCapabilities => {
                "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>"
                    .to_owned()
            }
            Operation::GetDeviceInformation => "<tds:GetDeviceInformation/>".to_owned(),
            Operation::GetProfiles(MediaService::Media) => "<trt:GetProfiles/>".to_owned(),
            // Without Type, Media2 devices answer the profiles without their configurations.
            Operation::GetProfiles(MediaService::Media2) => {
                "<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>".to_owned()
            }
            Operation::GetStreamUri(MediaService::Media, token) => format!(
                "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>",
                escape(token)
            ),
            Operation::GetStreamUri(MediaService::Media2, token) => format!(
                "<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol><tr2:ProfileToken>{}</tr2:ProfileToken></tr2:GetStreamUri>",
                escape(token)
            ),
        };
        let header = token.map(security_header).unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<s:Envelope xmlns:s=\"{}\" xmlns:tds=\"{}\" xmlns:trt=\"{}\" xmlns:tr2=\"{}\" xmlns:tt=\"{}\"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>\n",
            ns::SOAP12,
            ns::TDS,
            ns::TRT,
            ns::TR2,
            ns::TT
        )
    }
}

/// A SOAP fault as a device sent it. Code QNames are written `env:` for the SOAP
/// envelope namespace and `ter:` for the ONVIF error namespace, whatever prefix the
/// device bound them to; other QNames as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// `env:Sender`, `env:Receiver` (SOAP 1.1: `env:Client`, `env:Server`).
    pub code: String,
    /// Subcodes, outermost first: `ter:NotAuthorized`, `ter:InvalidArgVal`, `ter:NoProfile`.
    pub subcodes: Vec<String>,
    pub reason: String,
}

impl SoapFault {
    /// `ter:NotAuthorized` anywhere in the codes (ONVIF Core §5.12: wrong or missing
    /// credentials), or a SOAP 1.1 fault that says so in words, as some cameras send.
    pub fn is_not_authorized(&self) -> bool {
        let names = |c: &String| c.rsplit(':').next().unwrap_or(c).to_owned();
        std::iter::once(&self.code)
            .chain(&self.subcodes)
            .map(names)
            .any(|n| n == "NotAuthorized" || n == "FailedAuthentication")
            || self.reason.to_ascii_lowercase().contains("not authorized")
    }
}

impl std::fmt::Display for SoapFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut codes = vec![self.code.as_str()];
        codes.extend(self.subcodes.iter().map(String::as_str));
        write!(f, "{}", codes.join("/"))?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("SOAP fault {0}")]
    Fault(SoapFault),
    #[error("the answer is not a SOAP envelope: {0}")]
    Malformed(String),
    #[error("expected {expected} in the answer, got {got}")]
    Unexpected { expected: String, got: String },
    #[error("the answer has no {0}")]
    Missing(&'static str),
}

/// The first element of the SOAP Body, checked to be `expected` (a fault becomes
/// [`ResponseError::Fault`]).
fn body_element(xml: &[u8], expected: &str) -> Result<Element, ResponseError> {
    let root = parse(xml, &["Value", "faultcode"]).map_err(ResponseError::Malformed)?;
    if root.name != "Envelope" || (root.namespace != ns::SOAP12 && root.namespace != ns::SOAP11) {
        return Err(ResponseError::Malformed(format!(
            "the document element is {{{}}}{}",
            root.namespace, root.name
        )));
    }
    let body = root
        .children
        .into_iter()
        .find(|e| e.name == "Body")
        .ok_or(ResponseError::Missing("SOAP Body"))?;
    let first = body
        .children
        .into_iter()
        .next()
        .ok_or(ResponseError::Missing("element in the SOAP Body"))?;
    if first.name == "Fault" {
        return Err(ResponseError::Fault(fault(&first)));
    }
    if first.name != expected {
        return Err(ResponseError::Unexpected {
            expected: expected.to_owned(),
            got: first.name,
        });
    }
    Ok(first)
}

/// A fault from a `Fault` element, SOAP 1.2 (`Code/Value`, nested `Subcode/Value`,
/// `Reason/Text`) or SOAP 1.1 (`faultcode`, `faultstring`).
fn fault(f: &Element) -> SoapFault {
    let label = |e: &Element| match e.qnames.first() {
        Some((n, local)) if n == ns::SOAP12 || n == ns::SOAP11 => format!("env:{local}"),
        Some((n, local)) if n == ns::TER => format!("ter:{local}"),
        _ => e.text.clone(),
    };
    if let Some(code) = f.child("Code") {
        let mut subcodes = Vec::new();
        let mut at = code.child("Subcode");
        while let Some(s) = at {
            if let Some(v) = s.child("Value") {
                subcodes.push(label(v));
            }
            at = s.child("Subcode");
        }
        SoapFault {
            code: code.child("Value").map(label).unwrap_or_default(),
            subcodes,
            reason: f
                .path(&["Reason", "Text"])
                .map(|t| t.text.clone())
                .unwrap_or_default(),
        }
    } else {
        SoapFault {
            code: f.child("faultcode").map(label).unwrap_or_default(),
            subcodes: Vec::new(),
            reason: f.text_at(&["faultstring"]).unwrap_or_default().to_owned(),
        }
    }
}

/// Parses an answer that may only be a fault (any status but 2xx): the fault, if it is one.
pub fn parse_fault(xml: &[u8]) -> Option<SoapFault> {
    match body_element(xml, "Fault") {
        Err(ResponseError::Fault(f)) => Some(f),
        _ => None,
    }
}

/// The device's UTC clock from a GetSystemDateAndTimeResponse; `None` when the answer has
/// no (valid) `UTCDateTime` (some devices give only the local time).
pub fn parse_system_date_and_time(xml: &[u8]) -> Result<Option<UnixMicros>, ResponseError> {
    let r = body_element(xml, "GetSystemDateAndTimeResponse")?;
    let Some(utc) = r.find(&["UTCDateTime"]) else {
        return Ok(None);
    };
    let num = |p: &[&str]| utc.text_at(p).and_then(|t| t.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        num(&["Date", "Year"]),
        num(&["Date", "Month"]),
        num(&["Date", "Day"]),
        num(&["Time", "Hour"]),
        num(&["Time", "Minute"]),
        num(&["Time", "Second"]),
    ) else {
        return Ok(None);
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || !(0..24).contains(&h) {
        return Ok(None);
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok(Some(((days * 86_400) + h * 3600 + mi * 60 + s) * 1_000_000))
}

/// A service of the device: its namespace and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub xaddr: String,
}

/// The address of the service with namespace `nsuri`, if the device lists it.
pub fn xaddr_of<'a>(services: &'a [Service], nsuri: &str) -> Option<&'a str> {
    services
        .iter()
        .find(|s| s.namespace == nsuri && !s.xaddr.is_empty())
        .map(|s| s.xaddr.as_str())
}

/// The services of a GetServicesResponse.
pub fn parse_services(xml: &[u8]) -> Result<Vec<Service>, ResponseError> {
    let r = body_element(xml, "GetServicesResponse")?;
    Ok(r.children_named("Service")
        .map(|s| Service {
            namespace: s.text_at(&["Namespace"]).unwrap_or_default().to_owned(),
            xaddr: s.text_at(&["XAddr"]).unwrap_or_default().to_owned(),
        })
        .collect())
}

/// The Device and Media service addresses of a GetCapabilitiesResponse, as [`Service`]s.
pub fn parse_capabilities(xml: &[u8]) -> Result<Vec<Service>, ResponseError> {
    let r = body_element(xml, "GetCapabilitiesResponse")?;
    let caps = r
        .child("Capabilities")
        .ok_or(ResponseError::Missing("Capabilities"))?;
    Ok([("Device", ns::TDS), ("Media", ns::TRT)]
        .into_iter()
        .filter_map(|(name, nsuri)| {
            Some(Service {
                namespace: nsuri.to_owned(),
                xaddr: caps.text_at(&[name, "XAddr"])?.to_owned(),
            })
        })
        .collect())
}

/// GetDeviceInformation's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub hardware_id: String,
}

pub fn parse_device_information(xml: &[u8]) -> Result<DeviceInformation, ResponseError> {
    let r = body_element(xml, "GetDeviceInformationResponse")?;
    let t = |n: &str| r.text_at(&[n]).unwrap_or_default().to_owned();
    Ok(DeviceInformation {
        manufacturer: t("Manufacturer"),
        model: t("Model"),
        firmware_version: t("FirmwareVersion"),
        serial_number: t("SerialNumber"),
        hardware_id: t("HardwareId"),
    })
}

/// A profile's video encoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoEncoder {
    /// As the device writes it: `H264`, `H265`, `JPEG`, `MPEG4`.
    pub encoding: String,
    pub width: u32,
    pub height: u32,
    /// `FrameRateLimit`, frames per second.
    pub frame_rate: Option<f64>,
    /// `BitrateLimit`, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

/// A media profile, as Media ver10 or Media2 describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub token: String,
    pub name: String,
    /// The video encoder, if the profile has one (Media ver10 has none for H.265).
    pub video: Option<VideoEncoder>,
    /// The profile has a video source configuration.
    pub video_source: bool,
    /// The audio encoder's encoding (`G711`, `AAC`, `PCMU`...), if any.
    pub audio: Option<String>,
    /// The profile has an audio output or audio decoder configuration: the device offers
    /// an audio backchannel on this profile's stream (ONVIF Streaming "Back channel").
    pub backchannel: bool,
}

impl Profile {
    /// Whether the profile streams video.
    pub fn has_video(&self) -> bool {
        self.video.is_some() || self.video_source
    }
}

/// The profiles of a GetProfilesResponse (Media ver10 `trt:Profiles` or Media2
/// `tr2:Profiles`).
pub fn parse_profiles(xml: &[u8]) -> Result<Vec<Profile>, ResponseError> {
    let r = body_element(xml, "GetProfilesResponse")?;
    Ok(r.children_named("Profiles").map(profile).collect())
}

fn profile(p: &Element) -> Profile {
    // ver10: the configurations are children of the profile (audio output and decoder
    // inside its Extension); Media2: children of `Configurations`, with shorter names.
    let video = p
        .find(&["VideoEncoderConfiguration", "VideoEncoder"])
        .map(|v| {
            let num = |path: &[&str]| v.text_at(path).and_then(|t| t.trim().parse::<f64>().ok());
            VideoEncoder {
                encoding: v.text_at(&["Encoding"]).unwrap_or_default().to_owned(),
                width: num(&["Resolution", "Width"]).unwrap_or(0.0) as u32,
                height: num(&["Resolution", "Height"]).unwrap_or(0.0) as u32,
                frame_rate: num(&["RateControl", "FrameRateLimit"]).filter(|f| *f > 0.0),
                bitrate_kbps: num(&["RateControl", "BitrateLimit"])
                    .filter(|b| *b > 0.0)
                    .map(|b| b as u32),
            }
        });
    Profile {
        token: p.attribute("token").unwrap_or_default().to_owned(),
        name: p.text_at(&["Name"]).unwrap_or_default().to_owned(),
        video,
        video_source: p
            .find(&["VideoSourceConfiguration", "VideoSource"])
            .is_some(),
        audio: p
            .find(&["AudioEncoderConfiguration", "AudioEncoder"])
            .and_then(|a| a.text_at(&["Encoding"]))
            .map(str::to_owned),
        backchannel: p
            .find(&[
                "AudioOutputConfiguration",
                "AudioDecoderConfiguration",
                "AudioOutput",
                "AudioDecoder",
            ])
            .is_some(),
    }
}

/// The URI of a GetStreamUriResponse (ver10 `MediaUri/Uri`, Media2 `Uri`).
pub fn parse_stream_uri(xml: &[u8]) -> Result<String, ResponseError> {
    let r = body_element(xml, "GetStreamUriResponse")?;
    r.find(&["Uri"])
        .map(|u| u.text.clone())
        .filter(|u| !u.is_empty())
        .ok_or(ResponseError::Missing("Uri"))
}

#[cfg(test)]
mod tests;
