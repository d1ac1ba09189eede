//! What the session core may look at: a read-only view of the cameras and recordings that
//! exist, handed in with every request. The server builds it from its live cameras and
//! from a recording it looked up in the store *before* calling the core (a store query
//! blocks; the core never does), so one request resolves its recording once.
//!
//! The same view serves every signalling front end: RTSP (play and publish; a publish
//! camera is a camera here like any other, with its [`PublishView`]) and WebRTC signalling
//! (WHEP) later.

use crate::auth::Role;
use crate::codec::TrackInfo;
use crate::sdp::SdpMedia;
use crate::time::UnixMicros;

/// A live camera as the session core needs to know it (cheap to build per request).
#[derive(Debug, Clone)]
pub struct CameraView {
    /// Server -> client tracks, in SDP order (`trackID=<index>`).
    pub tracks: Vec<TrackInfo>,
    /// The SSRC of each track (the same for every reader of a camera).
    pub ssrcs: Vec<u32>,
    /// `Some(why)` while the camera's source is down: new readers get 503.
    pub offline: Option<String>,
    /// The ONVIF audio backchannel, when the camera has an audio output (shared: it is
    /// built once per camera, not per request).
    pub backchannel: Option<std::sync::Arc<BackchannelView>>,
    /// `Some` for a camera fed by an RTSP publisher (`source = "publish"` or `"exec"`):
    /// who may publish to it, and what happens to a second publisher.
    pub publish: Option<PublishView>,
    /// Extra SDP attributes per track (without `a=`; may be shorter than `tracks`), e.g.
    /// `x-dimensions:2560,1440` for a JPEG track whose size RFC 2435's 8-bit fields cannot
    /// carry (docs/mjpeg.md: what GStreamer's depayloader reads instead of the extension).
    pub sdp_attributes: Vec<Vec<String>>,
}

impl CameraView {
    /// Index of the backchannel track in SETUP URLs: after the live tracks.
    pub fn backchannel_track(&self) -> Option<usize> {
        self.backchannel.as_ref().map(|_| self.tracks.len())
    }
}

/// The publishing rules of a publish camera (docs/rtsp-server.md "RTSP publish").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishView {
    /// The role ANNOUNCE, SETUP (`mode=record`) and RECORD need; `None`: anyone may
    /// publish without credentials (`publish_role = "anonymous"`).
    pub role: Option<Role>,
    /// A new publisher replaces the live one (`publish_override = true`); otherwise it
    /// gets 455.
    pub replace: bool,
}

/// A camera's backchannel offer.
#[derive(Debug, Clone)]
pub struct BackchannelView {
    /// The `a=sendonly` section (its `control` is filled in by the core).
    pub section: SdpMedia,
}

/// One contiguous run of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: UnixMicros,
    pub end: UnixMicros,
    /// Still being written (the live edge of a growing recording).
    pub growing: bool,
}

/// A recording as a replay URL names it.
#[derive(Debug, Clone)]
pub struct RecordingView {
    pub tracks: Vec<TrackInfo>,
    /// In time order; never empty for a recording the core is given.
    pub spans: Vec<Span>,
    /// Extra SDP attributes per track, as [`CameraView::sdp_attributes`] (e.g.
    /// `x-dimensions` of a JPEG recording over 2040 pixels).
    pub sdp_attributes: Vec<Vec<String>>,
}

/// What a look-up of a recording gave.
#[derive(Debug, Clone)]
pub enum RecordingLookup {
    /// The server records nothing (no store).
    NoStore,
    /// No recording of that name, or one without footage.
    Missing,
    Found(RecordingView),
    /// The index could not be read (the text is logged by the server, not sent).
    Failed,
}

/// The view itself.
pub trait Catalogue {
    /// The live camera `name`.
    fn camera(&self, name: &str) -> Option<CameraView>;
    /// The recording `name` (the server looked it up for this request, if the request's
    /// URL names a recording; see [`super::Target::recording_name`]).
    fn recording(&self, name: &str) -> RecordingLookup;
}
