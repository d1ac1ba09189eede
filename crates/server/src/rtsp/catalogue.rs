//! The server's [`Catalogue`] for one request: the live cameras, and the recording the
//! request's URL names, looked up in the store beforehand (off the runtime).

use ipcamd_proto::codec::CodecParams;
use ipcamd_proto::probe::jpeg_picture_size;
use ipcamd_proto::rtsp::server::{CameraView, Catalogue, RecordingLookup, RecordingView, Span};
use ipcamd_store::{Direction, Store};

use crate::cameras::Cameras;

pub struct RequestCatalogue<'a> {
    pub cameras: &'a Cameras,
    /// The recording looked up for this request: (name, what the store said).
    pub recording: Option<(String, RecordingLookup)>,
}

impl Catalogue for RequestCatalogue<'_> {
    fn camera(&self, name: &str) -> Option<CameraView> {
        self.cameras.get(name).map(|c| c.view())
    }

    fn recording(&self, name: &str) -> RecordingLookup {
        match &self.recording {
            Some((n, r)) if n == name => r.clone(),
            _ => RecordingLookup::Missing,
        }
    }
}

/// Looks `name` up in the store (on the store's threads).
pub async fn lookup(store: Option<&Store>, name: &str) -> RecordingLookup {
    let Some(store) = store.map(Store::to_async) else {
        return RecordingLookup::NoStore;
    };
    match store.recording(name).await {
        Ok(Some(info)) if !info.sections.is_empty() => RecordingLookup::Found(RecordingView {
            sdp_attributes: jpeg_dimensions(&store, name, &info).await,
            tracks: info.tracks,
            spans: info
                .sections
                .iter()
                .map(|s| Span {
                    start: s.start,
                    end: s.end,
                    growing: s.recording,
                })
                .collect(),
        }),
        Ok(_) | Err(ipcamd_store::StoreError::BadCameraName(_)) => RecordingLookup::Missing,
        Err(e) => {
            tracing::warn!(recording = name, error = %e, "store lookup failed");
            RecordingLookup::Failed
        }
    }
}

/// `x-dimensions:W,H` for a JPEG track of `info` whose first recorded frame is over 2040
/// pixels wide or high (as `Camera::view` says it live: GStreamer's depayloader reads this
/// instead of the JPEG header extension, docs/mjpeg.md). Reads at most a few frames of the
/// first section, on the store's threads; nothing for recordings without JPEG.
async fn jpeg_dimensions(
    store: &ipcamd_store::AsyncStore,
    name: &str,
    info: &ipcamd_store::RecordingInfo,
) -> Vec<Vec<String>> {
    let Some(track) = info
        .tracks
        .iter()
        .position(|t| t.codec == CodecParams::Jpeg)
    else {
        return Vec::new();
    };
    let Some(start) = info.sections.first().map(|s| s.start) else {
        return Vec::new();
    };
    let n = info.tracks.len();
    let name = name.to_owned();
    let size = store
        .run(move |s| {
            let mut r = s.reader(&name)?;
            r.seek(start, Direction::Forward)?;
            for _ in 0..16 {
                match r.next_forward()? {
                    Some(f) if f.track == track => return Ok(jpeg_picture_size(&f.data)),
                    Some(_) => continue,
                    None => break,
                }
            }
            Ok(None)
        })
        .await;
    match size {
        Ok(Some((w, h))) if w > 2040 || h > 2040 => (0..n)
            .map(|i| {
                if i == track {
                    vec![format!("x-dimensions:{w},{h}")]
                } else {
                    Vec::new()
                }
            })
            .collect(),
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::debug!(recording = %info.camera, error = %e, "JPEG size of a recording not read");
            Vec::new()
        }
    }
}
