//! The live cameras the server serves, by name (their URL path), and how the session core
//! sees one ([`CameraView`]). A camera's stream is fed by a local source, an upstream
//! camera (`upstream/`) or a publisher (`publish/`).

use std::collections::HashMap;
use std::sync::Arc;

use ipcamd_media::fanout::Stream;
use ipcamd_proto::rtsp::server::CameraView;

use crate::publish::PublishPoint;
use crate::talk::AudioOut;

/// A camera as the server sees it: a name (its URL path), its live stream, and its audio
/// output for the ONVIF backchannel, if it has one.
#[derive(Clone)]
pub struct Camera {
    pub name: String,
    pub stream: Arc<Stream>,
    pub backchannel: Option<Arc<AudioOut>>,
    /// Record this camera continuously into the store (when the server has one).
    pub record: bool,
    /// A proxied camera: the upstream it is pulled from.
    pub upstream: Option<crate::upstream::UpstreamConfig>,
    /// A publish camera (`source = "publish"` or `"exec"`): where its publisher's media
    /// goes, and who may publish.
    pub publish: Option<Arc<PublishPoint>>,
    /// The camera's encoder when ipcamd runs it and may restart it with new settings
    /// (the synthetic camera); None when the encoding is the source's (a file, a proxied
    /// camera, a publisher).
    pub encoder: Option<Arc<dyn Encoder>>,
}

pub use ipcamd_onvif::model::{VideoOptions, VideoSettings};

/// A video encoder ipcamd runs (ONVIF SetVideoEncoderConfiguration changes it).
pub trait Encoder: Send + Sync {
    /// The settings it encodes with now.
    fn settings(&self) -> VideoSettings;
    /// What may be set.
    fn options(&self) -> VideoOptions;
    /// Restarts the encoder with `s` and returns once the camera's stream carries the new
    /// parameter sets (blocking: run it off the async workers). Err says why not.
    fn apply(&self, s: &VideoSettings) -> Result<(), String>;
}

impl Camera {
    /// Why the camera's encoding cannot be changed, when it cannot.
    pub fn fixed_encoding(&self) -> Option<String> {
        if self.encoder.is_some() {
            return None;
        }
        Some(if self.upstream.is_some() {
            "it is pulled from another device, whose own settings decide its encoding".into()
        } else if self.publish.is_some() {
            "its media comes from a publisher, who decides the encoding".into()
        } else {
            "it replays a file as it was encoded".into()
        })
    }
}

impl Camera {
    /// An on-demand camera is connected (and waited for) before a request that needs
    /// its media is answered.
    pub async fn wake(&self) {
        if let Some(d) = self.upstream.as_ref().and_then(|u| u.on_demand.as_ref()) {
            d.wake(&self.stream).await;
        }
    }
}

impl Camera {
    /// `x-dimensions:W,H` for a JPEG track whose last frame is over 2040 pixels wide or
    /// high: RFC 2435's size fields cannot say it, and GStreamer's depayloader reads this
    /// SDP attribute instead of the JPEG header extension (docs/mjpeg.md).
    fn jpeg_dimensions(&self, track: usize) -> Option<String> {
        let tracks = self.stream.tracks();
        if tracks.get(track)?.codec != ipcamd_proto::codec::CodecParams::Jpeg {
            return None;
        }
        let frame = self.stream.last_frame(track)?;
        let (w, h) = ipcamd_proto::probe::jpeg_picture_size(&frame.au.data)?;
        (w > 2040 || h > 2040).then(|| format!("x-dimensions:{w},{h}"))
    }

    /// What the session core needs to know of the camera now.
    pub fn view(&self) -> CameraView {
        let tracks = self.stream.tracks().to_vec();
        CameraView {
            ssrcs: (0..tracks.len())
                .map(|i| self.stream.ssrc(i).unwrap_or(0))
                .collect(),
            offline: self.stream.offline_reason(),
            backchannel: self
                .backchannel
                .as_ref()
                .filter(|out| out.available())
                .map(|out| out.view_now()),
            publish: self.publish.as_ref().map(|p| p.rules),
            sdp_attributes: (0..tracks.len())
                .map(|i| self.jpeg_dimensions(i).into_iter().collect())
                .collect(),
            tracks,
        }
    }
}

/// Every camera, by name; fixed for the life of the server.
#[derive(Clone, Default)]
pub struct Cameras(Arc<HashMap<String, Camera>>);

impl Cameras {
    pub fn new(cameras: Vec<Camera>) -> Cameras {
        Cameras(Arc::new(
            cameras.into_iter().map(|c| (c.name.clone(), c)).collect(),
        ))
    }

    pub fn get(&self, name: &str) -> Option<&Camera> {
        self.0.get(name)
    }

    /// In name order.
    pub fn sorted(&self) -> Vec<&Camera> {
        let mut v: Vec<&Camera> = self.0.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
