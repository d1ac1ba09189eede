//! What a track carries: the codec and the parameters a receiver needs before the first
//! packet (for SDP `a=rtpmap`/`a=fmtp`) and a packetizer needs to frame it.

use bytes::Bytes;

/// Video or audio, as in the SDP `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_sdp(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// Codec and out-of-band parameters of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecParams {
    /// H.264 (RFC 6184). Parameter sets are raw NAL units without start codes.
    H264 { sps: Bytes, pps: Bytes },
    /// H.265 (RFC 7798). Parameter sets are raw NAL units without start codes.
    H265 { vps: Bytes, sps: Bytes, pps: Bytes },
    /// Motion JPEG (RFC 2435), static payload type 26. Frames are complete baseline JFIF files.
    Jpeg,
    /// G.711 µ-law at `rate` Hz (8000: static payload type 0).
    Pcmu { rate: u32, channels: u8 },
    /// G.711 A-law at `rate` Hz (8000: static payload type 8).
    Pcma { rate: u32, channels: u8 },
    /// AAC (RFC 3640 `mode=AAC-hbr`); `config` is the AudioSpecificConfig.
    Aac {
        rate: u32,
        channels: u8,
        config: Bytes,
    },
}

impl CodecParams {
    pub fn kind(&self) -> MediaKind {
        match self {
            CodecParams::H264 { .. } | CodecParams::H265 { .. } | CodecParams::Jpeg => {
                MediaKind::Video
            }
            _ => MediaKind::Audio,
        }
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        match self {
            CodecParams::H264 { .. } | CodecParams::H265 { .. } | CodecParams::Jpeg => 90_000,
            CodecParams::Pcmu { rate, .. }
            | CodecParams::Pcma { rate, .. }
            | CodecParams::Aac { rate, .. } => *rate,
        }
    }

    /// Short human name, for logs and the HTTP API.
    pub fn name(&self) -> &'static str {
        match self {
            CodecParams::H264 { .. } => "H264",
            CodecParams::H265 { .. } => "H265",
            CodecParams::Jpeg => "JPEG",
            CodecParams::Pcmu { .. } => "PCMU",
            CodecParams::Pcma { .. } => "PCMA",
            CodecParams::Aac { .. } => "AAC",
        }
    }
}

/// One track of a source, as described in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub codec: CodecParams,
    /// RTP payload type used when this track is sent.
    pub payload_type: u8,
}

impl TrackInfo {
    /// The track with its customary payload type: the static one where the codec has
    /// one (PCMU/8000 = 0, PCMA/8000 = 8, JPEG = 26), otherwise `dynamic`.
    pub fn new(codec: CodecParams, dynamic: u8) -> TrackInfo {
        let payload_type = match &codec {
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            } => 0,
            CodecParams::Pcma {
                rate: 8000,
                channels: 1,
            } => 8,
            CodecParams::Jpeg => 26,
            _ => dynamic,
        };
        TrackInfo {
            codec,
            payload_type,
        }
    }

    pub fn kind(&self) -> MediaKind {
        self.codec.kind()
    }

    pub fn clock_rate(&self) -> u32 {
        self.codec.clock_rate()
    }
}
