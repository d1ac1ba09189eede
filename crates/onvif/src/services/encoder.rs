//! The video encoder's options and settings (Media ver10 and Media2
//! GetVideoEncoderConfigurationOptions / SetVideoEncoderConfiguration).
//!
//! A camera whose encoder ipcamd runs (the synthetic camera) offers its picture sizes and
//! ranges of frame rate, bitrate and GOP length, and takes new settings within them. A
//! camera whose encoding is not ipcamd's (a file, a proxied camera, a publisher) offers
//! only what it sends now, and a change is refused with
//! `env:Sender/ter:InvalidArgVal/ter:ConfigModify` naming the source. The encoding itself
//! (H.264, JPEG) never changes; `EncodingInterval` is always 1.

use crate::model::{
    CameraModel, DeviceModel, EncoderControl, VideoEncoding, VideoOptions, VideoSettings,
};
use crate::soap::{Fault, Request};

use super::change::{empty, Apply, Change};

/// The options of `c`: its own when configurable, else only what it sends now.
fn options_of(c: &CameraModel) -> Option<VideoOptions> {
    let v = c.video.as_ref()?;
    Some(match &c.encoder {
        EncoderControl::Configurable(o) => o.clone(),
        EncoderControl::Fixed(_) => VideoOptions {
            resolutions: vec![(v.width, v.height)],
            fps: (v.fps, v.fps),
            bitrate_kbps: (v.bitrate_kbps, v.bitrate_kbps),
            gov_length: (v.gov_length, v.gov_length),
        },
    })
}

fn range(tag: &str, (lo, hi): (u32, u32)) -> String {
    format!("<{tag}><tt:Min>{lo}</tt:Min><tt:Max>{hi}</tt:Max></{tag}>")
}

fn resolutions(o: &VideoOptions) -> String {
    o.resolutions
        .iter()
        .map(|(w, h)| {
            format!("<tt:ResolutionsAvailable><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:ResolutionsAvailable>")
        })
        .collect()
}

/// The camera a `ConfigurationToken` or `ProfileToken` names; without either, the first
/// camera with video.
fn camera_for_options<'a>(req: &Request, m: &'a DeviceModel) -> Result<&'a CameraModel, Fault> {
    match req.arg("ConfigurationToken").or(req.arg("ProfileToken")) {
        Some(t) => super::camera(m, Some(t), "configuration"),
        None => m
            .cameras
            .iter()
            .find(|c| c.video.is_some())
            .ok_or_else(|| Fault::invalid_arg("ter:NoConfig", "no camera has video")),
    }
}

/// Media ver10 `trt:Options` (tt:VideoEncoderConfigurationOptions).
pub(super) fn options_v10(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let c = camera_for_options(req, m)?;
    let (Some(v), Some(o)) = (c.video.as_ref(), options_of(c)) else {
        return Err(no_video(c));
    };
    let quality = range("tt:QualityRange", (5, 5));
    let interval = range("tt:EncodingIntervalRange", (1, 1));
    let fps = range("tt:FrameRateRange", o.fps);
    let bitrate = range("tt:BitrateRange", o.bitrate_kbps);
    let res = resolutions(&o);
    Ok(match v.encoding {
        VideoEncoding::H264 => {
            let h264 = format!(
                "{res}{}{fps}{interval}<tt:H264ProfilesSupported>Baseline</tt:H264ProfilesSupported>",
                range("tt:GovLengthRange", o.gov_length)
            );
            format!("<trt:Options>{quality}<tt:H264>{h264}</tt:H264><tt:Extension><tt:H264>{h264}{bitrate}</tt:H264></tt:Extension></trt:Options>")
        }
        VideoEncoding::Jpeg => {
            let jpeg = format!("{res}{fps}{interval}");
            format!("<trt:Options>{quality}<tt:JPEG>{jpeg}</tt:JPEG><tt:Extension><tt:JPEG>{jpeg}{bitrate}</tt:JPEG></tt:Extension></trt:Options>")
        }
        // ver10 cannot describe H.265 (Media2 does).
        VideoEncoding::H265 => format!("<trt:Options>{quality}</trt:Options>"),
    })
}

/// Media2 `tr2:Options` (tt:VideoEncoder2ConfigurationOptions): one per encoding, here the
/// camera's only one.
pub(super) fn options_v20(req: &Request, m: &DeviceModel) -> Result<String, Fault> {
    let c = camera_for_options(req, m)?;
    let (Some(v), Some(o)) = (c.video.as_ref(), options_of(c)) else {
        return Err(no_video(c));
    };
    let rates: Vec<String> = [1, 2, 5, 6, 8, 10, 12, 15, 20, 24, 25, 30, 50, 60]
        .into_iter()
        .filter(|r| (o.fps.0..=o.fps.1).contains(r))
        .chain([o.fps.0, o.fps.1])
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .map(|r| r.to_string())
        .collect();
    let (gov, profiles) = match v.encoding {
        VideoEncoding::H264 => (
            format!(" GovLengthRange=\"{} {}\"", o.gov_length.0, o.gov_length.1),
            " ProfilesSupported=\"ConstrainedBaseline\"",
        ),
        VideoEncoding::H265 => (
            format!(" GovLengthRange=\"{} {}\"", o.gov_length.0, o.gov_length.1),
            " ProfilesSupported=\"Main\"",
        ),
        VideoEncoding::Jpeg => (String::new(), ""),
    };
    Ok(format!(
        "<tr2:Options{gov} FrameRatesSupported=\"{}\"{profiles} ConstantBitRateSupported=\"false\"><tt:Encoding>{}</tt:Encoding><tt:QualityRange><tt:Min>5</tt:Min><tt:Max>5</tt:Max></tt:QualityRange>{}{}</tr2:Options>",
        rates.join(" "),
        v.encoding.mime(),
        resolutions(&o),
        range("tt:BitrateRange", o.bitrate_kbps),
    ))
}

fn no_video(c: &CameraModel) -> Fault {
    Fault::invalid_arg(
        "ter:NoConfig",
        format!("camera {:?} has no video encoder", c.name),
    )
}

fn modify(reason: String) -> Fault {
    Fault::invalid_arg("ter:ConfigModify", reason)
}

fn number(req: &Request, name: &str) -> Result<Option<u32>, Fault> {
    let Some(text) = req.arg(name) else {
        return Ok(None);
    };
    // Media2 frame rates are floats ("25.0"); the rest are integers.
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x <= f64::from(u32::MAX) => {
            Ok(Some(x.round() as u32))
        }
        _ => Err(modify(format!("{name} {text:?} is not a number"))),
    }
}

fn within(name: &str, x: u32, (lo, hi): (u32, u32)) -> Result<u32, Fault> {
    if (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(modify(format!(
            "{name} {x} is outside {lo}..{hi} (GetVideoEncoderConfigurationOptions lists what can be set)"
        )))
    }
}

/// SetVideoEncoderConfiguration (ver10, or Media2 with `media2`): the configuration's
/// `token` attribute names the camera; missing values keep the current ones.
pub(super) fn set(req: &Request, m: &DeviceModel, media2: bool) -> Result<Apply, Fault> {
    let Some(token) = req.arg("@token").or(req.arg("ConfigurationToken")) else {
        return Err(Fault::invalid_arg(
            "ter:NoConfig",
            "the request has no Configuration (with its token attribute)",
        ));
    };
    let c = super::camera(m, Some(token), "configuration").map_err(|mut f| {
        f.subsubcode = Some("ter:NoConfig");
        f
    })?;
    let v = c.video.as_ref().ok_or_else(|| no_video(c))?;
    let o = match &c.encoder {
        EncoderControl::Configurable(o) => o,
        EncoderControl::Fixed(why) => {
            return Err(modify(format!(
                "the encoder of camera {:?} cannot be changed: {why}",
                c.name
            )))
        }
    };
    if let Some(e) = req.arg("Encoding") {
        let same = match v.encoding {
            VideoEncoding::H264 => e.eq_ignore_ascii_case("H264"),
            VideoEncoding::H265 => e.eq_ignore_ascii_case("H265"),
            VideoEncoding::Jpeg => e.eq_ignore_ascii_case("JPEG"),
        };
        if !same {
            return Err(modify(format!(
                "camera {:?} encodes {}; the encoding cannot change to {e:?}",
                c.name,
                v.encoding.mime()
            )));
        }
    }
    let (width, height) = match (number(req, "Width")?, number(req, "Height")?) {
        (None, None) => (v.width, v.height),
        (Some(w), Some(h)) if o.resolutions.contains(&(w, h)) => (w, h),
        (w, h) => {
            let list: Vec<String> = o
                .resolutions
                .iter()
                .map(|(w, h)| format!("{w}x{h}"))
                .collect();
            return Err(modify(format!(
                "resolution {}x{} is not offered: {}",
                w.map_or("?".into(), |x| x.to_string()),
                h.map_or("?".into(), |x| x.to_string()),
                list.join(", ")
            )));
        }
    };
    if let Some(i) = number(req, "EncodingInterval")? {
        if i != 1 {
            return Err(modify(format!(
                "EncodingInterval {i}: every frame is encoded (1 only)"
            )));
        }
    }
    let fps = match number(req, "FrameRateLimit")? {
        Some(x) => within("FrameRateLimit", x, o.fps)?,
        None => v.fps,
    };
    let bitrate_kbps = match number(req, "BitrateLimit")? {
        Some(x) => within("BitrateLimit", x, o.bitrate_kbps)?,
        None => v.bitrate_kbps,
    };
    let gov = number(req, if media2 { "@GovLength" } else { "GovLength" })?;
    let gov_length = match gov {
        Some(x) if v.encoding != VideoEncoding::Jpeg => within("GovLength", x, o.gov_length)?,
        _ => v.gov_length,
    };
    let settings = VideoSettings {
        width,
        height,
        fps,
        bitrate_kbps,
        gov_length,
    };
    Ok(Apply::new(
        req,
        Change::VideoEncoder {
            camera: c.name.clone(),
            settings,
        },
        empty(
            if media2 { "tr2" } else { "trt" },
            "SetVideoEncoderConfiguration",
        ),
    ))
}
