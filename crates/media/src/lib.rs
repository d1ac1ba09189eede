//! # ipcamd-media: access units, sources and fan-out
//!
//! ```text
//!  Source (synthetic camera, MP4 file)  --next_au()-->  pacer thread (sleeps until each
//!        unit's capture wallclock)  --push-->  Stream (packetizes once, keeps the last GOP)
//!        --Arc<Frame>-->  many readers (RTSP sessions, the recorder)
//! ```
//!
//! A [`Source`] never sleeps and never reads the clock: it is told its start time and
//! produces access units in capture order, each stamped with its capture wallclock. The
//! same source therefore serves live streaming (paced to real time by [`pacer`]) and
//! faster-than-real-time import into the store.

use bytes::Bytes;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::time::UnixMicros;

pub mod fanout;
pub mod file;
pub mod font;
pub mod imaging;
pub mod ingest;
pub mod pacer;
pub mod ptz;
pub mod synthetic;

/// One access unit: a video frame or an audio frame (or a few audio frames).
#[derive(Debug, Clone)]
pub struct AccessUnit {
    /// Index into the source's [`Source::tracks`].
    pub track: usize,
    /// Media time in ticks of the track's clock rate; increases per track.
    pub pts: u64,
    /// Capture wallclock (UTC).
    pub wallclock: UnixMicros,
    /// A sync point: an IDR/IRAP picture with its parameter sets, any JPEG frame, any audio frame.
    pub keyframe: bool,
    /// Codec-dependent payload:
    /// - H.264/H.265: NAL units in Annex B form (each prefixed by a 00 00 00 01 or 00 00 01
    ///   start code); keyframes carry their parameter sets in band.
    /// - JPEG: one complete baseline JFIF image.
    /// - G.711: the samples; AAC: one raw AAC frame (no ADTS header).
    pub data: Bytes,
}

/// Errors a source can report.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {what}")]
    File { path: String, what: String },
    #[error("encoder: {0}")]
    Encoder(String),
    #[error("end of source")]
    End,
}

/// A producer of access units in capture order. See the crate doc.
pub trait Source: Send {
    /// The tracks, in SDP order. Fixed for the life of the source.
    fn tracks(&self) -> &[TrackInfo];
    /// The next access unit across all tracks, in non-decreasing `wallclock` order.
    fn next_au(&mut self) -> Result<AccessUnit, SourceError>;
}
