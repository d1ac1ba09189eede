//! The server's [`Catalogue`] for one request: the live cameras, and the recording the
//! request's URL names, looked up in the store beforehand (off the runtime).

use ipcamd_proto::rtsp::server::{CameraView, Catalogue, RecordingLookup, RecordingView, Span};
use ipcamd_store::Store;

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
