//! The PTZ service (ONVIF PTZ Service Specification, ver20/ptz/wsdl) for cameras with a
//! PTZ head: GetServiceCapabilities, GetNodes/GetNode, GetConfigurations/GetConfiguration/
//! GetConfigurationOptions, GetStatus, ContinuousMove, AbsoluteMove, RelativeMove, Stop,
//! GetPresets/SetPreset/GotoPreset/RemovePreset. Sans-IO: the heads are behind
//! [`PtzHeads`] (the server's virtual heads of synthetic cameras); answers are built as
//! text in the XSD element order.
//!
//! One node and one configuration per PTZ camera, both named after the camera
//! (`PTZNode_<camera>`, `PTZ_<camera>`); the profile token is the camera name. Only the
//! generic spaces (pan/tilt -1..1, zoom 0..1, velocities -1..1). Left out: speeds of
//! absolute/relative moves (moves are instant), home position, auxiliary commands, preset
//! tours, SetConfiguration.

use ipcamd_proto::time::UnixMicros;

use crate::model::DeviceModel;
use crate::soap::{Fault, Request};
use crate::xml::{el, escape, Element};

/// A position or velocity in the generic spaces.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PtzVector {
    pub pan: f64,
    pub tilt: f64,
    pub zoom: f64,
}

/// A stored preset.
#[derive(Debug, Clone, PartialEq)]
pub struct PtzPreset {
    pub token: String,
    pub name: String,
    pub position: PtzVector,
}

/// Why a preset operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetRefusal {
    NoToken(String),
    NameTaken(String),
    TooMany,
}

/// One camera's head, as the service drives it (every call takes "now").
pub trait PtzHead {
    fn position(&self, now: UnixMicros) -> PtzVector;
    /// (pan/tilt moving, zoom moving).
    fn moving(&self, now: UnixMicros) -> (bool, bool);
    fn continuous_move(
        &mut self,
        now: UnixMicros,
        pan_tilt: Option<(f64, f64)>,
        zoom: Option<f64>,
        until: Option<UnixMicros>,
    );
    fn stop(&mut self, now: UnixMicros, pan_tilt: bool, zoom: bool);
    fn absolute_move(&mut self, now: UnixMicros, pan_tilt: Option<(f64, f64)>, zoom: Option<f64>);
    fn relative_move(&mut self, now: UnixMicros, pan_tilt: Option<(f64, f64)>, zoom: Option<f64>);
    fn presets(&self) -> Vec<PtzPreset>;
    fn set_preset(
        &mut self,
        now: UnixMicros,
        token: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, PresetRefusal>;
    fn goto_preset(&mut self, now: UnixMicros, token: &str) -> Result<(), PresetRefusal>;
    fn remove_preset(&mut self, token: &str) -> Result<(), PresetRefusal>;
    fn max_presets(&self) -> usize;
}

/// The heads of the device, by camera (= profile token).
pub trait PtzHeads {
    /// Runs `f` on the head of `camera`; false if it has none.
    fn with_head(&self, camera: &str, f: &mut dyn FnMut(&mut dyn PtzHead)) -> bool;
}

const PT_POSITION: &str = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace";
const Z_POSITION: &str = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace";
const PT_TRANSLATION: &str =
    "http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace";
const Z_TRANSLATION: &str = "http://www.onvif.org/ver10/tptz/ZoomSpaces/TranslationGenericSpace";
const PT_VELOCITY: &str = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace";
const Z_VELOCITY: &str = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace";
const PT_SPEED: &str = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace";
const Z_SPEED: &str = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace";

/// The service's `tptz:Capabilities` (GetServiceCapabilities, GetServices).
pub fn capabilities() -> String {
    "<tptz:Capabilities EFlip=\"false\" Reverse=\"false\" GetCompatibleConfigurations=\"false\" MoveStatus=\"true\" StatusPosition=\"true\"/>".to_owned()
}

/// The configuration token of a PTZ camera.
pub fn config_token(camera: &str) -> String {
    format!("PTZ_{camera}")
}

fn node_token(camera: &str) -> String {
    format!("PTZNode_{camera}")
}

fn range(min: f64, max: f64) -> String {
    format!("<tt:XRange><tt:Min>{min}</tt:Min><tt:Max>{max}</tt:Max></tt:XRange>")
}

fn space2(tag: &str, uri: &str, lo: f64) -> String {
    format!(
        "<tt:{tag}><tt:URI>{uri}</tt:URI>{}<tt:YRange><tt:Min>{lo}</tt:Min><tt:Max>1</tt:Max></tt:YRange></tt:{tag}>",
        range(lo, 1.0)
    )
}

fn space1(tag: &str, uri: &str, lo: f64) -> String {
    format!(
        "<tt:{tag}><tt:URI>{uri}</tt:URI>{}</tt:{tag}>",
        range(lo, 1.0)
    )
}

/// tt:PTZSpaces content.
fn spaces() -> String {
    [
        space2("AbsolutePanTiltPositionSpace", PT_POSITION, -1.0),
        space1("AbsoluteZoomPositionSpace", Z_POSITION, 0.0),
        space2("RelativePanTiltTranslationSpace", PT_TRANSLATION, -1.0),
        space1("RelativeZoomTranslationSpace", Z_TRANSLATION, -1.0),
        space2("ContinuousPanTiltVelocitySpace", PT_VELOCITY, -1.0),
        space1("ContinuousZoomVelocitySpace", Z_VELOCITY, -1.0),
        space1("PanTiltSpeedSpace", PT_SPEED, 0.0),
        space1("ZoomSpeedSpace", Z_SPEED, 0.0),
    ]
    .concat()
}

fn node(camera: &str, tag: &str, max_presets: usize) -> String {
    format!(
        "<{tag} token=\"{}\" FixedHomePosition=\"false\"><tt:Name>{}</tt:Name><tt:SupportedPTZSpaces>{}</tt:SupportedPTZSpaces><tt:MaximumNumberOfPresets>{max_presets}</tt:MaximumNumberOfPresets><tt:HomeSupported>false</tt:HomeSupported></{tag}>",
        escape(&node_token(camera)),
        escape(&node_token(camera)),
        spaces()
    )
}

/// A tt:PTZConfiguration element named `tag` (`tptz:PTZConfiguration`, `tt:PTZConfiguration`
/// in a ver10 profile, `tr2:PTZ` in a Media2 profile).
pub fn configuration(camera: &str, tag: &str) -> String {
    let token = escape(&config_token(camera));
    format!(
        "<{tag} token=\"{token}\"><tt:Name>{token}</tt:Name><tt:UseCount>1</tt:UseCount><tt:NodeToken>{}</tt:NodeToken><tt:DefaultAbsolutePantTiltPositionSpace>{PT_POSITION}</tt:DefaultAbsolutePantTiltPositionSpace><tt:DefaultAbsoluteZoomPositionSpace>{Z_POSITION}</tt:DefaultAbsoluteZoomPositionSpace><tt:DefaultRelativePanTiltTranslationSpace>{PT_TRANSLATION}</tt:DefaultRelativePanTiltTranslationSpace><tt:DefaultRelativeZoomTranslationSpace>{Z_TRANSLATION}</tt:DefaultRelativeZoomTranslationSpace><tt:DefaultContinuousPanTiltVelocitySpace>{PT_VELOCITY}</tt:DefaultContinuousPanTiltVelocitySpace><tt:DefaultContinuousZoomVelocitySpace>{Z_VELOCITY}</tt:DefaultContinuousZoomVelocitySpace><tt:DefaultPTZSpeed><tt:PanTilt x=\"1\" y=\"1\" space=\"{PT_SPEED}\"/><tt:Zoom x=\"1\" space=\"{Z_SPEED}\"/></tt:DefaultPTZSpeed><tt:DefaultPTZTimeout>PT10S</tt:DefaultPTZTimeout><tt:PanTiltLimits><tt:Range><tt:URI>{PT_POSITION}</tt:URI>{}<tt:YRange><tt:Min>-1</tt:Min><tt:Max>1</tt:Max></tt:YRange></tt:Range></tt:PanTiltLimits><tt:ZoomLimits><tt:Range><tt:URI>{Z_POSITION}</tt:URI>{}</tt:Range></tt:ZoomLimits></{tag}>",
        escape(&node_token(camera)),
        range(-1.0, 1.0),
        range(0.0, 1.0),
    )
}

fn vector(tag: &str, v: PtzVector) -> String {
    format!(
        "<{tag}><tt:PanTilt x=\"{:.6}\" y=\"{:.6}\" space=\"{PT_POSITION}\"/><tt:Zoom x=\"{:.6}\" space=\"{Z_POSITION}\"/></{tag}>",
        v.pan, v.tilt, v.zoom
    )
}

/// The camera a request's ProfileToken (or ConfigurationToken/NodeToken) names, if it has
/// a head.
fn ptz_camera(req: &Request, m: &DeviceModel, heads: &dyn PtzHeads) -> Result<String, Fault> {
    let token = req
        .arg("ProfileToken")
        .or_else(|| req.arg("ConfigurationToken"))
        .or_else(|| req.arg("PTZConfigurationToken"))
        .or_else(|| req.arg("NodeToken"))
        .ok_or_else(|| Fault::invalid_arg("ter:NoProfile", "the request names no profile"))?;
    let camera = token
        .strip_prefix("PTZNode_")
        .or_else(|| token.strip_prefix("PTZ_"))
        .unwrap_or(token);
    if m.camera(camera).is_none() {
        return Err(Fault::invalid_arg(
            "ter:NoProfile",
            format!("{token:?} names no profile, configuration or node of this device"),
        ));
    }
    if !heads.with_head(camera, &mut |_| {}) {
        return Err(Fault::invalid_arg(
            "ter:NoPTZProfile",
            format!("profile {camera:?} has no PTZ (only synthetic cameras have a virtual one)"),
        ));
    }
    Ok(camera.to_owned())
}

/// The cameras with a head, in the model's order.
fn ptz_cameras(m: &DeviceModel, heads: &dyn PtzHeads) -> Vec<String> {
    m.cameras
        .iter()
        .filter(|c| heads.with_head(&c.name, &mut |_| {}))
        .map(|c| c.name.clone())
        .collect()
}

fn num(s: Option<&str>, what: &str) -> Result<Option<f64>, Fault> {
    match s {
        None => Ok(None),
        Some(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| {
                Fault::invalid_arg(
                    "ter:InvalidArgVal",
                    format!("{what}: {t:?} is not a number"),
                )
            }),
    }
}

/// The axes a request gives: (pan, tilt) and zoom, each optional.
type Axes = (Option<(f64, f64)>, Option<f64>);

/// (pan/tilt, zoom) of a tt:PTZVector or tt:PTZSpeed element (attributes x, y).
fn parse_vector(e: Option<&Element>, what: &str) -> Result<Axes, Fault> {
    let Some(e) = e else { return Ok((None, None)) };
    let pt = match e.child("PanTilt") {
        Some(p) => {
            let x = num(p.attribute("x"), what)?.unwrap_or(0.0);
            let y = num(p.attribute("y"), what)?.unwrap_or(0.0);
            Some((x, y))
        }
        None => None,
    };
    let z = match e.child("Zoom") {
        Some(z) => Some(num(z.attribute("x"), what)?.unwrap_or(0.0)),
        None => None,
    };
    Ok((pt, z))
}

/// xs:duration of the form PT<n>S / PT<n>M<n>S (what clients send as Timeout), in µs.
fn duration_us(s: &str) -> Option<i64> {
    let rest = s.trim().strip_prefix("PT")?;
    let (mut total, mut n) = (0.0f64, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => n.push(c),
            'H' | 'M' | 'S' => {
                let v: f64 = n.parse().ok()?;
                n.clear();
                total += v * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    if !n.is_empty() || !total.is_finite() || total < 0.0 {
        return None;
    }
    Some((total * 1e6) as i64)
}

fn refusal(r: PresetRefusal) -> Fault {
    match r {
        PresetRefusal::NoToken(t) => {
            Fault::invalid_arg("ter:NoToken", format!("no preset with token {t:?}"))
        }
        PresetRefusal::NameTaken(n) => Fault::invalid_arg(
            "ter:PresetExist",
            format!("a preset is named {n:?} already"),
        ),
        PresetRefusal::TooMany => Fault::receiver(
            "ter:Action",
            Some("ter:TooManyPresets"),
            "the maximum number of presets is reached; remove one first",
        ),
    }
}

/// Answers one PTZ operation. `body` is the request document (for the attributes of
/// Velocity/Position/Translation, which [`Request::args`] leaves out).
pub fn dispatch(
    req: &Request,
    body: &Element,
    m: &DeviceModel,
    heads: &dyn PtzHeads,
) -> Result<String, Fault> {
    let now = m.now;
    let op = req.action.as_str();
    let empty = |name: &str| Ok(format!("<tptz:{name}Response/>"));
    match op {
        "GetServiceCapabilities" => Ok(format!(
            "<tptz:GetServiceCapabilitiesResponse>{}</tptz:GetServiceCapabilitiesResponse>",
            capabilities()
        )),
        "GetNodes" | "GetConfigurations" => {
            let mut out = format!("<tptz:{op}Response>");
            for c in ptz_cameras(m, heads) {
                if op == "GetNodes" {
                    let mut max = 0;
                    heads.with_head(&c, &mut |h| max = h.max_presets());
                    out += &node(&c, "tptz:PTZNode", max);
                } else {
                    out += &configuration(&c, "tptz:PTZConfiguration");
                }
            }
            out += &format!("</tptz:{op}Response>");
            Ok(out)
        }
        "GetNode" => {
            let c = ptz_camera(req, m, heads)
                .map_err(|_| Fault::invalid_arg("ter:NoEntity", "no such PTZ node"))?;
            let mut max = 0;
            heads.with_head(&c, &mut |h| max = h.max_presets());
            Ok(format!(
                "<tptz:GetNodeResponse>{}</tptz:GetNodeResponse>",
                node(&c, "tptz:PTZNode", max)
            ))
        }
        "GetConfiguration" => {
            let c = ptz_camera(req, m, heads)
                .map_err(|_| Fault::invalid_arg("ter:NoConfig", "no such PTZ configuration"))?;
            Ok(format!(
                "<tptz:GetConfigurationResponse>{}</tptz:GetConfigurationResponse>",
                configuration(&c, "tptz:PTZConfiguration")
            ))
        }
        "GetConfigurationOptions" => {
            ptz_camera(req, m, heads)
                .map_err(|_| Fault::invalid_arg("ter:NoConfig", "no such PTZ configuration"))?;
            Ok(format!("<tptz:GetConfigurationOptionsResponse><tptz:PTZConfigurationOptions><tt:Spaces>{}</tt:Spaces><tt:PTZTimeout><tt:Min>PT1S</tt:Min><tt:Max>PT1H</tt:Max></tt:PTZTimeout></tptz:PTZConfigurationOptions></tptz:GetConfigurationOptionsResponse>", spaces()))
        }
        "GetStatus" => {
            let c = ptz_camera(req, m, heads)?;
            let mut st = (PtzVector::default(), (false, false));
            heads.with_head(&c, &mut |h| st = (h.position(now), h.moving(now)));
            let word = |b: bool| if b { "MOVING" } else { "IDLE" };
            Ok(format!(
                "<tptz:GetStatusResponse><tptz:PTZStatus>{}<tt:MoveStatus><tt:PanTilt>{}</tt:PanTilt><tt:Zoom>{}</tt:Zoom></tt:MoveStatus><tt:UtcTime>{}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>",
                vector("tt:Position", st.0),
                word(st.1 .0),
                word(st.1 .1),
                super::dt(now)
            ))
        }
        "ContinuousMove" => {
            let c = ptz_camera(req, m, heads)?;
            let (pt, z) = parse_vector(body.find(&["Velocity"]), "Velocity")?;
            let until = match req.arg("Timeout") {
                Some(t) => Some(
                    now + duration_us(t).ok_or_else(|| {
                        Fault::invalid_arg(
                            "ter:InvalidArgVal",
                            format!("Timeout {t:?} is not a duration such as PT5S"),
                        )
                    })?,
                ),
                None => Some(now + 10_000_000), // DefaultPTZTimeout
            };
            heads.with_head(&c, &mut |h| h.continuous_move(now, pt, z, until));
            empty(op)
        }
        "AbsoluteMove" | "RelativeMove" => {
            let c = ptz_camera(req, m, heads)?;
            let what = if op == "AbsoluteMove" {
                "Position"
            } else {
                "Translation"
            };
            let (pt, z) = parse_vector(body.find(&[what]), what)?;
            if pt.is_none() && z.is_none() {
                return Err(Fault::invalid_arg(
                    "ter:InvalidArgVal",
                    format!("{op} needs a {what} with PanTilt or Zoom"),
                ));
            }
            heads.with_head(&c, &mut |h| {
                if op == "AbsoluteMove" {
                    h.absolute_move(now, pt, z)
                } else {
                    h.relative_move(now, pt, z)
                }
            });
            empty(op)
        }
        "Stop" => {
            let c = ptz_camera(req, m, heads)?;
            let flag = |n: &str| req.arg(n).is_none_or(|v| v == "true" || v == "1");
            let (pt, z) = (flag("PanTilt"), flag("Zoom"));
            heads.with_head(&c, &mut |h| h.stop(now, pt, z));
            empty(op)
        }
        "GetPresets" => {
            let c = ptz_camera(req, m, heads)?;
            let mut presets = Vec::new();
            heads.with_head(&c, &mut |h| presets = h.presets());
            let mut out = "<tptz:GetPresetsResponse>".to_owned();
            for p in presets {
                out += &format!(
                    "<tptz:Preset token=\"{}\">{}{}</tptz:Preset>",
                    escape(&p.token),
                    el("tt:Name", escape(&p.name)),
                    vector("tt:PTZPosition", p.position)
                );
            }
            out += "</tptz:GetPresetsResponse>";
            Ok(out)
        }
        "SetPreset" => {
            let c = ptz_camera(req, m, heads)?;
            let (name, token) = (req.arg("PresetName"), req.arg("PresetToken"));
            let mut r = Err(PresetRefusal::TooMany);
            heads.with_head(&c, &mut |h| r = h.set_preset(now, token, name));
            let token = r.map_err(refusal)?;
            Ok(format!(
                "<tptz:SetPresetResponse>{}</tptz:SetPresetResponse>",
                el("tptz:PresetToken", escape(&token))
            ))
        }
        "GotoPreset" | "RemovePreset" => {
            let c = ptz_camera(req, m, heads)?;
            let token = req.arg("PresetToken").ok_or_else(|| {
                Fault::invalid_arg("ter:NoToken", "the request has no PresetToken")
            })?;
            let mut r = Ok(());
            heads.with_head(&c, &mut |h| {
                r = if op == "GotoPreset" {
                    h.goto_preset(now, token)
                } else {
                    h.remove_preset(token)
                }
            });
            r.map_err(refusal)?;
            empty(op)
        }
        _ => Err(Fault::action_not_supported(&req.namespace, &req.action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_us("PT5S"), Some(5_000_000));
        assert_eq!(duration_us("PT1M0.5S"), Some(60_500_000));
        assert_eq!(duration_us("PT1H"), Some(3_600_000_000));
        assert_eq!(duration_us("5S"), None);
        assert_eq!(duration_us("PT5"), None);
    }
}
