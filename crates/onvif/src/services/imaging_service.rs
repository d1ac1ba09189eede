//! The Imaging service (ONVIF Imaging Service Specification, ver20/imaging/wsdl; the facts
//! relied on are in docs/onvif.md "Imaging service"): GetServiceCapabilities,
//! GetImagingSettings, SetImagingSettings, GetOptions, GetMoveOptions, GetStatus, Move,
//! Stop. Sans-IO: settings are read from the [`DeviceModel`]; a valid SetImagingSettings
//! comes out as a [`Change::Imaging`] for the server to carry out (and persist when
//! `ForcePersistence` asks for it).
//!
//! A camera is addressed by its video source token (`VideoSource_<camera>`, as GetVideoSources
//! and the profiles' VideoSourceConfiguration name it; the bare camera name is taken too).
//! A synthetic camera's Brightness, ColorSaturation and Contrast may be set (0..100, 50
//! neutral); Sharpness is reported (50) and cannot be changed, so its options are a
//! single value. Other cameras report the neutral values, offer single values only, and
//! refuse changes with `env:Receiver/ter:ActionNotSupported/ter:NoImagingForSource`.
//! No camera has a focus lens: GetMoveOptions answers no move options, GetStatus no focus
//! status, Move and Stop fault. Left out: imaging presets, exposure, focus, white balance,
//! wide dynamic range, IR cut filter, backlight compensation.

use crate::model::{CameraModel, DeviceModel, ImagingControl, ImagingSettings};
use crate::soap::{Fault, Request};
use crate::xml::Element;

use super::change::{empty, Apply, Change};

/// What an operation comes to: an answer, or a write for the server to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Body(String),
    Apply(Apply),
}

/// The service's `timg:Capabilities` (GetServiceCapabilities, GetServices).
pub fn capabilities() -> String {
    "<timg:Capabilities ImageStabilization=\"false\" ImagingPresets=\"false\"/>".to_owned()
}

/// The video source token of a camera.
pub fn source_token(camera: &str) -> String {
    format!("VideoSource_{camera}")
}

/// The camera a request's VideoSourceToken names (it must have video).
fn source<'a>(req: &Request, m: &'a DeviceModel) -> Result<&'a CameraModel, Fault> {
    let list = || {
        m.cameras
            .iter()
            .filter(|c| c.video.is_some())
            .map(|c| source_token(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(token) = req.arg("VideoSourceToken") else {
        return Err(Fault::invalid_arg(
            "ter:NoSource",
            format!(
                "the request has no VideoSourceToken; GetVideoSources lists them ({})",
                list()
            ),
        ));
    };
    let name = token.strip_prefix("VideoSource_").unwrap_or(token);
    m.camera(name).filter(|c| c.video.is_some()).ok_or_else(|| {
        Fault::invalid_arg(
            "ter:NoSource",
            format!(
                "video source {token:?} does not exist; GetVideoSources lists them ({})",
                list()
            ),
        )
    })
}

fn range(tag: &str, (lo, hi): (f32, f32)) -> String {
    format!("<tt:{tag}><tt:Min>{lo}</tt:Min><tt:Max>{hi}</tt:Max></tt:{tag}>")
}

/// tt:ImagingSettings20 content, in the schema's element order.
fn settings_xml(s: ImagingSettings) -> String {
    format!(
        "<tt:Brightness>{}</tt:Brightness><tt:ColorSaturation>{}</tt:ColorSaturation><tt:Contrast>{}</tt:Contrast><tt:Sharpness>{}</tt:Sharpness>",
        s.brightness,
        s.color_saturation,
        s.contrast,
        ImagingSettings::SHARPNESS
    )
}

/// tt:ImagingOptions20 content: the ranges of what may be set, a single value (Min =
/// Max) for what is read only.
fn options_xml(c: &CameraModel) -> String {
    let fixed = |v: f32| (v, v);
    let sharpness = range("Sharpness", fixed(ImagingSettings::SHARPNESS));
    match &c.imaging {
        ImagingControl::Adjustable(_) => {
            let r = ImagingSettings::RANGE;
            format!(
                "{}{}{}{sharpness}",
                range("Brightness", r),
                range("ColorSaturation", r),
                range("Contrast", r)
            )
        }
        ImagingControl::Fixed(_) => {
            let n = ImagingSettings::NEUTRAL;
            format!(
                "{}{}{}{sharpness}",
                range("Brightness", fixed(n.brightness)),
                range("ColorSaturation", fixed(n.color_saturation)),
                range("Contrast", fixed(n.contrast))
            )
        }
    }
}

fn no_focus(c: &CameraModel, op: &str) -> Fault {
    Fault::receiver(
        "ter:ActionNotSupported",
        Some("ter:NoImagingForSource"),
        format!(
            "{op}: video source {} has no focus lens to move (GetMoveOptions lists no move)",
            source_token(&c.name)
        ),
    )
}

fn settings_invalid(reason: impl Into<String>) -> Fault {
    Fault::invalid_arg("ter:SettingsInvalid", reason)
}

/// One xs:float setting within [`ImagingSettings::RANGE`].
fn value(e: &Element) -> Result<f32, Fault> {
    let (lo, hi) = ImagingSettings::RANGE;
    let v = e
        .text
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            settings_invalid(format!(
                "{} {:?} is not a number; GetOptions gives its range ({lo} to {hi})",
                e.name, e.text
            ))
        })?;
    if !(lo..=hi).contains(&v) {
        return Err(settings_invalid(format!(
            "{} {v} is out of range: GetOptions gives {lo} to {hi}",
            e.name
        )));
    }
    Ok(v)
}

/// The settings after SetImagingSettings: those given replace the current ones, those
/// left out keep their values.
fn new_settings(current: ImagingSettings, given: &Element) -> Result<ImagingSettings, Fault> {
    let mut s = current;
    for e in &given.children {
        match e.name.as_str() {
            "Brightness" => s.brightness = value(e)?,
            "ColorSaturation" => s.color_saturation = value(e)?,
            "Contrast" => s.contrast = value(e)?,
            "Sharpness" => {
                let v = value(e)?;
                if v != ImagingSettings::SHARPNESS {
                    return Err(settings_invalid(format!(
                        "Sharpness {v}: this camera's sharpness is fixed at {} (GetOptions: Min = Max = {0})",
                        ImagingSettings::SHARPNESS
                    )));
                }
            }
            "Extension" if e.children.is_empty() && e.text.is_empty() => {}
            other => {
                return Err(settings_invalid(format!(
                    "{other} is not offered by this camera; what may be set is Brightness, ColorSaturation and Contrast (GetOptions gives their ranges)"
                )))
            }
        }
    }
    Ok(s)
}

/// ForcePersistence: true when left out (the specification calls it deprecated; every
/// other write of this device persists).
fn force_persistence(req: &Request) -> Result<bool, Fault> {
    match req.arg("ForcePersistence") {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(Fault::sender(
            "ter:InvalidArgVal",
            None,
            format!("ForcePersistence {other:?} is not a boolean (true or false)"),
        )),
    }
}

/// Answers one Imaging operation. `body` is the request document (the settings'
/// structure, which [`Request::args`] flattens).
pub fn dispatch(req: &Request, body: &Element, m: &DeviceModel) -> Result<Reply, Fault> {
    let op = req.action.as_str();
    let answer = |inner: String| {
        Ok(Reply::Body(format!(
            "<timg:{op}Response>{inner}</timg:{op}Response>"
        )))
    };
    match op {
        "GetServiceCapabilities" => answer(capabilities()),
        "GetImagingSettings" => {
            let c = source(req, m)?;
            answer(format!(
                "<timg:ImagingSettings>{}</timg:ImagingSettings>",
                settings_xml(c.imaging.settings())
            ))
        }
        "GetOptions" => {
            let c = source(req, m)?;
            answer(format!(
                "<timg:ImagingOptions>{}</timg:ImagingOptions>",
                options_xml(c)
            ))
        }
        // "If focus move is not supported at all, the response shall be empty."
        "GetMoveOptions" => {
            source(req, m)?;
            answer("<timg:MoveOptions/>".to_owned())
        }
        // No focus: a status without FocusStatus20.
        "GetStatus" => {
            source(req, m)?;
            answer("<timg:Status/>".to_owned())
        }
        "Move" | "Stop" => Err(no_focus(source(req, m)?, op)),
        "SetImagingSettings" => {
            let c = source(req, m)?;
            let current = match &c.imaging {
                ImagingControl::Adjustable(s) => *s,
                ImagingControl::Fixed(why) => {
                    return Err(Fault::receiver(
                        "ter:ActionNotSupported",
                        Some("ter:NoImagingForSource"),
                        format!(
                            "the picture of video source {} cannot be adjusted: {why}; only synthetic cameras' can",
                            source_token(&c.name)
                        ),
                    ))
                }
            };
            let given = body
                .find(&["SetImagingSettings"])
                .and_then(|s| s.child("ImagingSettings"))
                .ok_or_else(|| settings_invalid("the request has no ImagingSettings"))?;
            let settings = new_settings(current, given)?;
            let persist = force_persistence(req)?;
            let change = Change::Imaging {
                camera: c.name.clone(),
                settings,
                persist,
            };
            Ok(Reply::Apply(Apply::new(
                req,
                change,
                empty("timg", "SetImagingSettings"),
            )))
        }
        _ => Err(Fault::action_not_supported(&req.namespace, &req.action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(name: &str, text: &str) -> Element {
        Element {
            name: name.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    fn given(children: Vec<Element>) -> Element {
        Element {
            name: "ImagingSettings".into(),
            children,
            ..Default::default()
        }
    }

    #[test]
    fn settings_merge_and_checks() {
        let n = ImagingSettings::NEUTRAL;
        let s = new_settings(
            n,
            &given(vec![el("Brightness", "90"), el("Contrast", " 12.5 ")]),
        )
        .unwrap();
        assert_eq!(
            (s.brightness, s.color_saturation, s.contrast),
            (90.0, 50.0, 12.5)
        );
        assert_eq!(
            new_settings(s, &given(vec![])).unwrap(),
            s,
            "nothing given: unchanged"
        );
        assert!(new_settings(
            n,
            &given(vec![el("Sharpness", "50.0"), el("Extension", "")])
        )
        .is_ok());
        for (e, want) in [
            (el("Brightness", "101"), "out of range"),
            (el("ColorSaturation", "-0.5"), "out of range"),
            (el("Contrast", "NaN"), "not a number"),
            (el("Brightness", "INF"), "not a number"),
            (el("Brightness", "bright"), "not a number"),
            (el("Sharpness", "60"), "fixed at 50"),
            (el("IrCutFilter", "AUTO"), "IrCutFilter is not offered"),
        ] {
            let f = new_settings(n, &given(vec![e.clone()])).unwrap_err();
            assert_eq!(
                (f.sender, f.subcode, f.subsubcode),
                (true, "ter:InvalidArgVal", Some("ter:SettingsInvalid")),
                "{e:?}"
            );
            assert!(f.reason.contains(want), "{e:?}: {}", f.reason);
        }
    }

    #[test]
    fn persistence_flag() {
        let req = |v: Option<&str>| Request {
            args: v
                .map(|v| vec![("ForcePersistence".to_owned(), v.to_owned())])
                .unwrap_or_default(),
            ..Default::default()
        };
        assert_eq!(force_persistence(&req(None)), Ok(true));
        assert_eq!(force_persistence(&req(Some("true"))), Ok(true));
        assert_eq!(force_persistence(&req(Some("false"))), Ok(false));
        assert_eq!(force_persistence(&req(Some("0"))), Ok(false));
        assert!(force_persistence(&req(Some("maybe"))).is_err());
    }
}
