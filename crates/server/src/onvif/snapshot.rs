//! Snapshots: `GET /snapshot/<camera>.jpg`, a JPEG of the latest keyframe (MJPEG cameras:
//! the frame itself; H.264: decoded with openh264 and encoded with jpeg-encoder, on the
//! blocking pool).

use std::sync::atomic::Ordering;

use ipcamd_proto::codec::{CodecParams, MediaKind};
use ipcamd_proto::tunnel::HttpRequestHead;

use super::model::current_gop;
use super::Onvif;
use crate::http::message::HttpResponse;

/// `GET /snapshot/<camera>.jpg`: a JPEG of the latest keyframe (MJPEG cameras: the frame
/// itself; H.264: decoded with openh264 and encoded with jpeg-encoder).
pub async fn snapshot(onvif: &Onvif, head: &HttpRequestHead) -> HttpResponse {
    if head.method != "GET" {
        return HttpResponse::text(
            405,
            "Method Not Allowed",
            "snapshots are fetched with GET\n",
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
    let Some(c) = onvif.cameras.get(&name).cloned() else {
        return HttpResponse::text(404, "Not Found", format!("no camera {name:?}\n"));
    };
    // An on-demand proxied camera is connected for the picture.
    c.wake().await;
    let tracks = c.stream.tracks();
    if tracks.is_empty() {
        let why = c.stream.offline_reason().unwrap_or_default();
        return HttpResponse::text(
            503,
            "Service Unavailable",
            format!("camera {name:?} is offline ({why}); retry later\n"),
        );
    }
    let Some(vi) = tracks
        .iter()
        .position(|t| t.codec.kind() == MediaKind::Video)
    else {
        return HttpResponse::text(404, "Not Found", format!("camera {name:?} has no video\n"));
    };
    let Some(codec) = tracks.get(vi).map(|t| t.codec.clone()) else {
        return HttpResponse::text(404, "Not Found", format!("camera {name:?} has no video\n"));
    };
    onvif.snapshots.fetch_add(1, Ordering::Relaxed);
    let gop = current_gop(&c, vi);
    let Some(key) = gop.first().cloned() else {
        return HttpResponse::text(
            503,
            "Service Unavailable",
            format!("camera {name:?} has produced no picture yet; retry in a second\n"),
        );
    };
    let result = tokio::task::spawn_blocking(move || match codec {
        CodecParams::Jpeg => Ok(gop.last().unwrap_or(&key).au.data.to_vec()),
        CodecParams::H264 { .. } => h264_to_jpeg(&key.au.data),
        other => Err(format!(
            "snapshots of {} cameras are not supported yet",
            other.name()
        )),
    })
    .await;
    match result {
        Ok(Ok(jpeg)) => HttpResponse::new(200, "OK", "image/jpeg", jpeg),
        Ok(Err(e)) => HttpResponse::text(
            500,
            "Internal Server Error",
            format!("snapshot of {name:?}: {e}\n"),
        ),
        Err(e) => HttpResponse::text(
            500,
            "Internal Server Error",
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
