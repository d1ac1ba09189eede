//! A fixed catalogue for tests and fuzzing of the session core (not for production use):
//! cam1 (H.264 + PCMU, with a backchannel), cam2 (H.264), cam3 (offline), the publish
//! cameras pub1 (operators publish, no override) and pub2 (anyone publishes, a new
//! publisher replaces the live one), and the recordings cam1 (2026-01-01 00:00-00:01 and
//! 00:02-00:03), growing, broken.

use crate::codec::{CodecParams, TrackInfo};
use crate::sdp::{SdpFormat, SdpMedia};
use crate::time::UnixMicros;

use crate::auth::Role;

use super::{
    BackchannelView, CameraView, Catalogue, PublishView, RecordingLookup, RecordingView, Span,
};

pub const T: UnixMicros = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

pub fn h264() -> TrackInfo {
    TrackInfo::new(
        CodecParams::H264 {
            sps: bytes::Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47]),
            pps: bytes::Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
        },
        96,
    )
}

pub fn pcmu() -> TrackInfo {
    TrackInfo::new(
        CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        },
        0,
    )
}

/// cam1: H.264 + PCMU with a backchannel; cam2: H.264 only; cam3: offline; pub1 and pub2:
/// publish cameras (offline, "waiting for a publisher", until [`Cat::published`] gives
/// them tracks). Recordings: cam1 (two spans), growing (open at its end), broken (index
/// error).
#[derive(Default)]
pub struct Cat {
    /// Answer replay look-ups as a server without a store.
    pub no_store: bool,
    /// The tracks the publish cameras have now (what a server's stream would say once a
    /// publisher recorded): `None` = waiting for a publisher.
    pub published: Option<Vec<TrackInfo>>,
}

impl Catalogue for Cat {
    fn camera(&self, name: &str) -> Option<CameraView> {
        let backchannel = Some(std::sync::Arc::new(BackchannelView {
            section: SdpMedia {
                kind: crate::codec::MediaKind::Audio,
                formats: vec![SdpFormat {
                    payload_type: 0,
                    rtpmap: Some("PCMU/8000".into()),
                    fmtp: None,
                }],
                control: String::new(),
                direction: None,
                attributes: Vec::new(),
            },
        }));
        match name {
            "cam1" => Some(CameraView {
                tracks: vec![h264(), pcmu()],
                ssrcs: vec![0x1111, 0x2222],
                offline: None,
                backchannel,
                publish: None,
                sdp_attributes: Vec::new(),
            }),
            "cam2" => Some(CameraView {
                tracks: vec![h264()],
                ssrcs: vec![0x3333],
                offline: None,
                backchannel: None,
                publish: None,
                sdp_attributes: Vec::new(),
            }),
            "cam3" => Some(CameraView {
                tracks: vec![h264()],
                ssrcs: vec![0x4444],
                offline: Some("file gone\r\n".into()),
                backchannel: None,
                publish: None,
                sdp_attributes: Vec::new(),
            }),
            "pub1" | "pub2" => {
                let tracks = self.published.clone().unwrap_or_default();
                Some(CameraView {
                    ssrcs: (0..tracks.len() as u32).map(|i| 0x5550 + i).collect(),
                    offline: match &self.published {
                        Some(_) => None,
                        None => Some("waiting for a publisher".into()),
                    },
                    tracks,
                    backchannel: None,
                    sdp_attributes: Vec::new(),
                    publish: Some(if name == "pub1" {
                        PublishView {
                            role: Some(Role::Operator),
                            replace: false,
                        }
                    } else {
                        PublishView {
                            role: None,
                            replace: true,
                        }
                    }),
                })
            }
            _ => None,
        }
    }

    fn recording(&self, name: &str) -> RecordingLookup {
        if self.no_store {
            return RecordingLookup::NoStore;
        }
        let span = |a: i64, b: i64, growing| Span {
            start: T + a * 1_000_000,
            end: T + b * 1_000_000,
            growing,
        };
        match name {
            "cam1" => RecordingLookup::Found(RecordingView {
                sdp_attributes: Vec::new(),
                tracks: vec![h264(), pcmu()],
                spans: vec![span(0, 60, false), span(120, 180, false)],
            }),
            "growing" => RecordingLookup::Found(RecordingView {
                sdp_attributes: Vec::new(),
                tracks: vec![h264()],
                spans: vec![span(0, 60, true)],
            }),
            "broken" => RecordingLookup::Failed,
            _ => RecordingLookup::Missing,
        }
    }
}
