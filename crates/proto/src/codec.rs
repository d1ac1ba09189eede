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
    /// A codec ipcamd does not depacketize (G.726, Opus, L16, VP8, ... from a proxied
    /// camera), passed through as opaque RTP: units are the camera's RTP payloads
    /// (`packet::opaque`), described to readers with the camera's own `a=rtpmap` and
    /// `a=fmtp` values (without the `a=rtpmap:<pt> ` prefix; `None`: the camera sent none,
    /// a static payload type).
    Opaque {
        kind: MediaKind,
        rtpmap: Option<String>,
        fmtp: Option<String>,
        clock_rate: u32,
    },
}

impl CodecParams {
    pub fn kind(&self) -> MediaKind {
        match self {
            CodecParams::H264 { .. } | CodecParams::H265 { .. } | CodecParams::Jpeg => {
                MediaKind::Video
            }
            CodecParams::Opaque { kind, .. } => *kind,
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
            CodecParams::Opaque { clock_rate, .. } => *clock_rate,
        }
    }

    /// Short human name, for logs and the HTTP API (an opaque codec: the rtpmap's
    /// encoding name, e.g. `G726-32`, `opus`).
    pub fn name(&self) -> &str {
        match self {
            CodecParams::H264 { .. } => "H264",
            CodecParams::H265 { .. } => "H265",
            CodecParams::Jpeg => "JPEG",
            CodecParams::Pcmu { .. } => "PCMU",
            CodecParams::Pcma { .. } => "PCMA",
            CodecParams::Aac { .. } => "AAC",
            CodecParams::Opaque { rtpmap, .. } => rtpmap
                .as_deref()
                .and_then(|r| r.split('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or("opaque"),
        }
    }

    /// Whether units are passed through as opaque RTP ([`CodecParams::Opaque`]).
    pub fn is_opaque(&self) -> bool {
        matches!(self, CodecParams::Opaque { .. })
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

/// Whether an access unit may be dropped without breaking the decoding of later ones: an
/// H.264 picture with `nal_ref_idc` 0 or an H.265 sub-layer non-reference picture
/// (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14). This is what ONVIF
/// `Frames: predicted` leaves out (B-frames in practice). Other codecs, and units that are
/// not Annex B, are never disposable.
pub fn is_disposable(codec: &CodecParams, au: &[u8]) -> bool {
    let Some(first_vcl) = annex_b_nal_starts(au).find_map(|i| {
        let b = *au.get(i)?;
        let vcl = match codec {
            CodecParams::H264 { .. } => (1..=5).contains(&(b & 0x1f)),
            CodecParams::H265 { .. } => (b >> 1) & 0x3f < 32,
            _ => false,
        };
        vcl.then_some(b)
    }) else {
        return false;
    };
    match codec {
        CodecParams::H264 { .. } => first_vcl & 0x60 == 0,
        CodecParams::H265 { .. } => {
            let t = (first_vcl >> 1) & 0x3f;
            t <= 14 && t % 2 == 0
        }
        _ => false,
    }
}

/// Offsets of the first byte of each NAL unit after a 3- or 4-byte Annex B start code.
fn annex_b_nal_starts(d: &[u8]) -> impl Iterator<Item = usize> + '_ {
    d.windows(3)
        .enumerate()
        .filter(|(_, w)| w == &[0, 0, 1])
        .map(|(i, _)| i + 3)
}

#[cfg(test)]
mod disposable_tests {
    use super::*;

    fn h264() -> CodecParams {
        CodecParams::H264 {
            sps: Bytes::new(),
            pps: Bytes::new(),
        }
    }

    fn h265() -> CodecParams {
        CodecParams::H265 {
            vps: Bytes::new(),
            sps: Bytes::new(),
            pps: Bytes::new(),
        }
    }

    #[test]
    fn h264_reference_and_non_reference() {
        // IDR (ref_idc 3), P slice (ref_idc 2), B slice with ref_idc 0, after an AUD/SEI.
        assert!(!is_disposable(&h264(), &[0, 0, 0, 1, 0x65, 0x88]));
        assert!(!is_disposable(&h264(), &[0, 0, 1, 0x41, 0x9a]));
        assert!(is_disposable(
            &h264(),
            &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x06, 5, 0, 0, 1, 0x01, 0x9e]
        ));
        // A non-VCL-only unit or garbage is not disposable.
        assert!(!is_disposable(&h264(), &[0, 0, 1, 0x06, 5]));
        assert!(!is_disposable(&h264(), &[1, 2, 3]));
        assert!(!is_disposable(&CodecParams::Jpeg, &[0, 0, 1, 0x01]));
    }

    #[test]
    fn h265_sub_layer_non_reference() {
        // TRAIL_N (0), TRAIL_R (1), IDR_W_RADL (19), RASL_N (8), VPS (32) then TRAIL_N.
        let unit = |t: u8| vec![0, 0, 0, 1, t << 1, 1, 0xaf];
        assert!(is_disposable(&h265(), &unit(0)));
        assert!(!is_disposable(&h265(), &unit(1)));
        assert!(!is_disposable(&h265(), &unit(19)));
        assert!(is_disposable(&h265(), &unit(8)));
        let mut v = unit(32);
        v.extend_from_slice(&unit(0));
        assert!(is_disposable(&h265(), &v));
    }
}
