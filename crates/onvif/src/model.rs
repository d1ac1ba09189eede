//! The device as the SOAP services describe it: a plain-data snapshot the server builds
//! per request (cameras, recordings, addresses, time). Tokens: a camera's profile token,
//! recording token and URL path are all its name; its configurations are
//! `<Kind>_<camera>` (`VideoSource_cam1`, `VideoEncoder_cam1`, `AudioOutput_cam1`, ...);
//! recorded tracks are `VIDEO001`, `AUDIO001`, ... numbered per kind in track order.
//! The Imaging service addresses a camera by its video source token, `VideoSource_<camera>`.

use ipcamd_proto::time::UnixMicros;

use crate::wsse::Role;

#[derive(Debug, Clone, Default)]
pub struct DeviceModel {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub hardware_id: String,
    pub hostname: String,
    /// Host (name or address, no port) the request was addressed to; used in every URI.
    pub host: String,
    pub http_port: u16,
    pub rtsp_port: u16,
    /// "Now", UTC.
    pub now: UnixMicros,
    /// WS-Discovery / GetScopes scopes (`onvif://www.onvif.org/...`).
    pub scopes: Vec<String>,
    pub interfaces: Vec<NetInterface>,
    pub cameras: Vec<CameraModel>,
    pub recordings: Vec<RecordingModel>,
    pub users: Vec<(String, Role)>,
    /// Scopes set over ONVIF (SetScopes/AddScopes), reported as `Configurable` after the
    /// fixed [`DeviceModel::scopes`].
    pub configurable_scopes: Vec<String>,
    /// The recording jobs: one per camera recorded continuously.
    pub jobs: Vec<JobModel>,
    pub session_timeout_s: u64,
    /// The Event service's limit of open subscriptions (MaxPullPoints).
    pub max_pull_points: usize,
    /// Cameras (profile tokens) with a PTZ head.
    pub ptz: Vec<String>,
}

impl DeviceModel {
    /// `http://HOST:HTTPPORT`
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", host_for_uri(&self.host), self.http_port)
    }
    /// `rtsp://HOST:RTSPPORT`
    pub fn rtsp_base(&self) -> String {
        format!("rtsp://{}:{}", host_for_uri(&self.host), self.rtsp_port)
    }
    /// The XAddr of a service: `http://HOST:HTTPPORT/onvif/<name>_service`.
    pub fn xaddr(&self, service: &str) -> String {
        format!("{}/onvif/{service}_service", self.http_base())
    }
    pub fn camera(&self, token: &str) -> Option<&CameraModel> {
        self.cameras.iter().find(|c| c.name == token)
    }
    pub fn recording(&self, token: &str) -> Option<&RecordingModel> {
        self.recordings.iter().find(|r| r.token == token)
    }
}

/// IPv6 literals need brackets in a URI.
fn host_for_uri(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_owned()
    }
}

#[derive(Debug, Clone, Default)]
pub struct NetInterface {
    pub token: String,
    pub name: String,
    pub mac: String,
    pub ipv4: String,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEncoding {
    H264,
    H265,
    Jpeg,
}

impl VideoEncoding {
    /// Media2 / tt:VideoEncodingMimeNames.
    pub fn mime(self) -> &'static str {
        match self {
            VideoEncoding::H264 => "H264",
            VideoEncoding::H265 => "H265",
            VideoEncoding::Jpeg => "JPEG",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoModel {
    pub encoding: VideoEncoding,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames from one keyframe to the next.
    pub gov_length: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioEncoding {
    Pcmu,
    Pcma,
    G726,
    Aac,
    Opus,
    L16,
}

impl AudioEncoding {
    /// Media ver10 tt:AudioEncoding (G711, G726, AAC); None where ver10 has no name.
    pub fn ver10(self) -> Option<&'static str> {
        match self {
            AudioEncoding::Pcmu | AudioEncoding::Pcma => Some("G711"),
            AudioEncoding::G726 => Some("G726"),
            AudioEncoding::Aac => Some("AAC"),
            AudioEncoding::Opus | AudioEncoding::L16 => None,
        }
    }
    /// Media2 tt:AudioEncodingMimeNames (RTP names).
    pub fn mime(self) -> &'static str {
        match self {
            AudioEncoding::Pcmu => "PCMU",
            AudioEncoding::Pcma => "PCMA",
            AudioEncoding::G726 => "G726",
            AudioEncoding::Aac => "MPEG4-GENERIC",
            AudioEncoding::Opus => "opus",
            AudioEncoding::L16 => "L16",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioModel {
    pub encoding: AudioEncoding,
    pub sample_rate: u32,
    pub bitrate_kbps: u32,
}

/// What may be set of a camera's video encoder (SetVideoEncoderConfiguration), and the
/// choices GetVideoEncoderConfigurationOptions lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncoderControl {
    /// The encoding cannot be changed; the reason names the source (a file, a proxied
    /// camera, a publisher).
    Fixed(String),
    Configurable(VideoOptions),
}

impl Default for EncoderControl {
    fn default() -> Self {
        EncoderControl::Fixed("the camera's encoding is not ipcamd's to change".into())
    }
}

/// The values a configurable encoder accepts (ranges are inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOptions {
    /// Picture sizes offered, (width, height).
    pub resolutions: Vec<(u32, u32)>,
    pub fps: (u32, u32),
    pub bitrate_kbps: (u32, u32),
    pub gov_length: (u32, u32),
}

/// New encoder settings, as SetVideoEncoderConfiguration asks them (checked against the
/// camera's [`VideoOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub gov_length: u32,
}

/// The picture settings of the Imaging service (ImagingSettings20): each 0..100, 50
/// neutral. Sharpness is reported only ([`ImagingSettings::SHARPNESS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImagingSettings {
    pub brightness: f32,
    pub color_saturation: f32,
    pub contrast: f32,
}

impl ImagingSettings {
    /// Every setting's range (inclusive).
    pub const RANGE: (f32, f32) = (0.0, 100.0);
    /// The neutral picture.
    pub const NEUTRAL: ImagingSettings = ImagingSettings {
        brightness: 50.0,
        color_saturation: 50.0,
        contrast: 50.0,
    };
    /// The sharpness every camera reports (it cannot be set).
    pub const SHARPNESS: f32 = 50.0;
}

impl Default for ImagingSettings {
    fn default() -> Self {
        ImagingSettings::NEUTRAL
    }
}

/// Whether a camera's picture may be adjusted (SetImagingSettings).
#[derive(Debug, Clone, PartialEq)]
pub enum ImagingControl {
    /// It may not: the reason names the source (a file, a proxied camera, a publisher).
    /// The settings reported are the neutral ones.
    Fixed(String),
    /// It may, and these are its settings now.
    Adjustable(ImagingSettings),
}

impl Default for ImagingControl {
    fn default() -> Self {
        ImagingControl::Fixed("its picture is not made by ipcamd".into())
    }
}

impl ImagingControl {
    /// The settings reported (neutral for a fixed picture).
    pub fn settings(&self) -> ImagingSettings {
        match self {
            ImagingControl::Fixed(_) => ImagingSettings::NEUTRAL,
            ImagingControl::Adjustable(s) => *s,
        }
    }
}

/// A recording job (Recording Control): token `Job_<camera>`, recording `<camera>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobModel {
    /// The recording (camera) name.
    pub recording: String,
    /// The job's mode: `Active` (true) or `Idle`.
    pub active: bool,
    /// Whether the recording writes a section now (Active and the camera delivers).
    pub writing: bool,
}

impl JobModel {
    pub fn token(&self) -> String {
        format!("Job_{}", self.recording)
    }
}

#[derive(Debug, Clone, Default)]
pub struct CameraModel {
    pub name: String,
    pub video: Option<VideoModel>,
    /// Whether (and within what) its video encoder may be changed.
    pub encoder: EncoderControl,
    pub audio: Option<AudioModel>,
    /// Codecs the backchannel decodes (empty: no audio output).
    pub backchannel: Vec<AudioModel>,
    /// Whether (and how) its picture may be adjusted (the Imaging service).
    pub imaging: ImagingControl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTrack {
    /// `VIDEO001`, `AUDIO001`, ...
    pub token: String,
    pub kind: TrackKind,
    /// Codec name (`H264`, `PCMU`, ...).
    pub codec: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSection {
    pub start: UnixMicros,
    pub end: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingModel {
    /// The camera name.
    pub token: String,
    pub tracks: Vec<RecordedTrack>,
    /// Oldest first.
    pub sections: Vec<RecordedSection>,
    /// A recorder is appending now.
    pub recording: bool,
}

impl RecordingModel {
    pub fn earliest(&self) -> Option<UnixMicros> {
        self.sections.iter().map(|s| s.start).min()
    }
    pub fn latest(&self) -> Option<UnixMicros> {
        self.sections.iter().map(|s| s.end).max()
    }
}

/// Track tokens for tracks of these kinds in this order: `VIDEO001`, `AUDIO001`, ...
pub fn track_tokens(kinds: &[TrackKind]) -> Vec<String> {
    let (mut v, mut a) = (0, 0);
    kinds
        .iter()
        .map(|k| match k {
            TrackKind::Video => {
                v += 1;
                format!("VIDEO{v:03}")
            }
            TrackKind::Audio => {
                a += 1;
                format!("AUDIO{a:03}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_per_kind() {
        assert_eq!(
            track_tokens(&[TrackKind::Video, TrackKind::Audio, TrackKind::Video]),
            ["VIDEO001", "AUDIO001", "VIDEO002"]
        );
    }

    #[test]
    fn uris() {
        let m = DeviceModel {
            host: "::1".into(),
            http_port: 80,
            rtsp_port: 554,
            ..Default::default()
        };
        assert_eq!(m.xaddr("device"), "http://[::1]:80/onvif/device_service");
        assert_eq!(m.rtsp_base(), "rtsp://[::1]:554");
    }
}
