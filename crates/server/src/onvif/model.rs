//! The device as the ONVIF services see it ([`DeviceModel`]): built per request from the
//! live cameras (codec, size and rate measured from what flows unless configured) and the
//! store's recordings.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ipcamd_onvif::model::{
    track_tokens, AudioEncoding, AudioModel, CameraModel, DeviceModel, EncoderControl,
    ImagingControl, ImagingSettings, JobModel, NetInterface, RecordedSection, RecordedTrack,
    RecordingModel, TrackKind, VideoEncoding, VideoModel,
};
use ipcamd_proto::codec::{CodecParams, MediaKind};
use ipcamd_proto::probe::{h264_picture_size, jpeg_picture_size};

use super::{Onvif, OnvifOptions, VideoHints};
use crate::cameras::Camera;

/// The device as the SOAP services see it now.
pub async fn device_model(onvif: &Onvif, host: &str, local: SocketAddr) -> DeviceModel {
    let cameras: Vec<CameraModel> = onvif
        .cameras
        .sorted()
        .into_iter()
        .map(|c| {
            let imaging = imaging_control(c, onvif.options.imaging.get(&c.name));
            camera_model(c, onvif.options.hints.get(&c.name), imaging)
        })
        .collect();
    let state = onvif.state.get();
    let mut jobs: Vec<JobModel> = onvif
        .jobs
        .iter()
        .map(|(name, j)| JobModel {
            recording: name.clone(),
            active: *j.mode.borrow(),
            writing: j.writing.load(Ordering::Relaxed),
        })
        .collect();
    jobs.sort_by(|a, b| a.recording.cmp(&b.recording));
    let recordings = match onvif.store.as_ref().map(|s| s.to_async()) {
        Some(store) => store
            .recordings()
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot list recordings for ONVIF"))
            .unwrap_or_default()
            .iter()
            .map(recording_model)
            .collect(),
        None => Vec::new(),
    };
    let http_port = onvif.http_addr.map(|a| a.port()).unwrap_or(80);
    let o = &onvif.options;
    let ptz = cameras
        .iter()
        .filter(|c| o.ptz.contains_key(&c.name))
        .map(|c| c.name.clone())
        .collect();
    DeviceModel {
        manufacturer: o.manufacturer.clone(),
        model: o.model.clone(),
        firmware_version: env!("CARGO_PKG_VERSION").into(),
        serial_number: onvif.endpoint.trim_start_matches("urn:uuid:").into(),
        hardware_id: "ipcamd".into(),
        hostname: state.hostname.clone().unwrap_or_else(hostname),
        host: host.to_owned(),
        http_port,
        rtsp_port: onvif.rtsp_port,
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
        users: onvif.soap_auth.users(),
        configurable_scopes: state.scopes,
        jobs,
        session_timeout_s: onvif.session_timeout.as_secs(),
        max_pull_points: o.event_limits.total,
        ptz,
    }
}

pub(super) fn scopes(o: &OnvifOptions) -> Vec<String> {
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

/// The current GOP of a camera's video track (keyframe first), from the fan-out backlog.
pub(super) fn current_gop(c: &Camera, video_track: usize) -> Vec<Arc<ipcamd_media::fanout::Frame>> {
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

/// A synthetic camera's picture adjustments as they are now; other cameras' picture is
/// not ipcamd's to adjust.
fn imaging_control(
    c: &Camera,
    handle: Option<&ipcamd_media::imaging::ImagingHandle>,
) -> ImagingControl {
    match handle {
        Some(h) => {
            let a = ipcamd_media::imaging::read(h);
            ImagingControl::Adjustable(ImagingSettings {
                brightness: a.brightness,
                color_saturation: a.saturation,
                contrast: a.contrast,
            })
        }
        None => ImagingControl::Fixed(if c.upstream.is_some() {
            "it is pulled from another device; adjust the picture there".into()
        } else if c.publish.is_some() {
            "its media comes from a publisher, whose picture it is".into()
        } else {
            "it replays a file as it was recorded".into()
        }),
    }
}

fn camera_model(c: &Camera, hints: Option<&VideoHints>, imaging: ImagingControl) -> CameraModel {
    let tracks = c.stream.tracks();
    let video = tracks
        .iter()
        .position(|t| t.codec.kind() == MediaKind::Video)
        .and_then(|i| {
            let t = tracks.get(i)?;
            let gop = current_gop(c, i);
            let (encoding, size) = match &t.codec {
                CodecParams::H264 { sps, .. } => (VideoEncoding::H264, h264_picture_size(sps)),
                CodecParams::H265 { .. } => (VideoEncoding::H265, None),
                CodecParams::Jpeg => (
                    VideoEncoding::Jpeg,
                    gop.last().and_then(|f| jpeg_picture_size(&f.au.data)),
                ),
                _ => return None,
            };
            let (mut width, mut height) = size.unwrap_or((0, 0));
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
            let mut fps = hints.map(|h| h.fps).or(measured_fps).unwrap_or(25);
            let mut bitrate_kbps = hints.map(|h| h.bitrate_kbps).or(measured_kbps).unwrap_or(0);
            let mut gov_length = hints
                .map(|h| h.gov_length)
                .unwrap_or_else(|| (gop.len() as u32).max(1));
            // An encoder of ours says what it was set to (the stream follows within a frame).
            if let Some(s) = c.encoder.as_ref().map(|e| e.settings()) {
                (width, height, fps) = (s.width, s.height, s.fps);
                (bitrate_kbps, gov_length) = (s.bitrate_kbps, s.gov_length);
            }
            Some(VideoModel {
                encoding,
                width,
                height,
                fps,
                bitrate_kbps,
                gov_length,
            })
        });
    let audio = tracks.iter().find_map(|t| audio_model(&t.codec));
    let backchannel = c
        .backchannel
        .as_ref()
        .map(|out| {
            crate::talk::offer(&out.cfg)
                .iter()
                .filter_map(|o| o.format.rtpmap.as_deref().and_then(offered_model))
                .collect()
        })
        .unwrap_or_default();
    let encoder = match (&c.encoder, c.fixed_encoding()) {
        (Some(e), _) => EncoderControl::Configurable(e.options()),
        (None, Some(why)) => EncoderControl::Fixed(why),
        (None, None) => EncoderControl::default(),
    };
    CameraModel {
        name: c.name.clone(),
        video,
        encoder,
        audio,
        backchannel,
        imaging,
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

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "ipcamd".into())
}
