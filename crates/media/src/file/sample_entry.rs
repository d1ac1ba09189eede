//! Sample entries (ISO/IEC 14496-12 §8.5.2 `stsd`) to [`CodecParams`]: H.264 `avc1`/`avc3`
//! with `avcC` (ISO/IEC 14496-15 §5.3), H.265 `hvc1`/`hev1` with `hvcC` (§8.3), AAC `mp4a`
//! with `esds` (ISO/IEC 14496-14 §5.6, AudioSpecificConfig per ISO/IEC 14496-3 §1.6.2.1) and
//! G.711 `ulaw`/`alaw` as QuickTime writes them (QTFF "Sound sample description").
//!
//! Left out: G.711 inside `mp4a` (no object type for it is registered with MP4RA, and no
//! muxer we know writes one), every other codec, and tracks with several sample entries.

use bytes::Bytes;
use ipcamd_proto::codec::CodecParams;
use mp4_atom::{Codec, FourCC};

use super::annexb::NalKind;

/// How the samples of a track become access-unit payloads.
#[derive(Debug)]
pub(super) enum Framing {
    /// Length-prefixed NAL units (AVCC/HVCC), rewritten to Annex B. `param_sets` are the
    /// VPS/SPS/PPS of the sample entry in decoding order, put in band on sync samples.
    Nal {
        kind: NalKind,
        length_size: u8,
        param_sets: Vec<Bytes>,
    },
    /// The sample bytes as they are (AAC raw frames, G.711 samples).
    Raw,
}

/// What a supported sample entry turns into.
#[derive(Debug)]
pub(super) struct TrackCodec {
    /// `None` while an `avc3`/`hev1` entry's parameter sets are still to be found in band.
    pub params: Option<CodecParams>,
    pub framing: Framing,
    /// G.711: samples are one audio frame (1 byte per channel) each and get grouped.
    pub tiny_samples: bool,
}

/// The four-character code of a sample entry, for messages. Entries the reader does not
/// support reach `mp4-atom` renamed, with their own code in their first bytes
/// (`free_unused_in_stsd` in file.rs).
pub(super) fn entry_name(codec: &Codec) -> String {
    let name: &str = match codec {
        Codec::Avc1(_) => "avc1",
        Codec::Avc3(_) => "avc3",
        Codec::Hvc1(_) => "hvc1",
        Codec::Hev1(_) => "hev1",
        Codec::Mp4a(_) => "mp4a",
        Codec::Unknown(kind, body) if *kind == FourCC::new(&super::UNSUPPORTED_ENTRY) => {
            return match body.get(..4).map(<[u8; 4]>::try_from) {
                Some(Ok(name)) => fourcc(FourCC::new(&name)),
                _ => "?".to_string(),
            };
        }
        Codec::Unknown(kind, _) => return fourcc(*kind),
        _ => "other",
    };
    name.to_string()
}

pub(super) fn fourcc(kind: FourCC) -> String {
    let bytes: [u8; 4] = kind.into();
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The codec of a sample entry; `Err` says why the track is not playable (it is skipped).
/// `timescale` is the track's media timescale, the fallback audio rate.
pub(super) fn track_codec(codec: &Codec, timescale: u32) -> Result<TrackCodec, String> {
    match codec {
        Codec::Avc1(e) => h264(&e.avcc),
        Codec::Avc3(e) => h264(&e.avcc),
        Codec::Hvc1(e) => h265(&e.hvcc),
        Codec::Hev1(e) => h265(&e.hvcc),
        Codec::Mp4a(e) => mp4a(e),
        Codec::Unknown(kind, body) if *kind == FourCC::new(b"ulaw") => g711(body, timescale, false),
        Codec::Unknown(kind, body) if *kind == FourCC::new(b"alaw") => g711(body, timescale, true),
        other => Err(format!("unsupported codec {}", entry_name(other))),
    }
}

fn length_size(n: u8) -> Result<u8, String> {
    match n {
        1 | 2 | 4 => Ok(n),
        n => Err(format!("unsupported NAL length size {n}")),
    }
}

fn h264(avcc: &mp4_atom::Avcc) -> Result<TrackCodec, String> {
    let sps = &avcc.sequence_parameter_sets;
    let pps = &avcc.picture_parameter_sets;
    let param_sets: Vec<Bytes> = sps
        .iter()
        .chain(pps.iter())
        .filter(|n| !n.is_empty())
        .map(|n| Bytes::copy_from_slice(n))
        .collect();
    let framing = Framing::Nal {
        kind: NalKind::H264,
        length_size: length_size(avcc.length_size)?,
        param_sets,
    };
    Ok(TrackCodec {
        params: h264_params(&framing),
        framing,
        tiny_samples: false,
    })
}

fn h265(hvcc: &mp4_atom::Hvcc) -> Result<TrackCodec, String> {
    // Decoding order: VPS, SPS, PPS; other arrays (SEI) stay out of band.
    let mut param_sets = Vec::new();
    for ty in [32u8, 33, 34] {
        for array in hvcc.arrays.iter().filter(|a| a.nal_unit_type == ty) {
            for nal in array.nalus.iter().filter(|n| !n.is_empty()) {
                param_sets.push(Bytes::copy_from_slice(nal));
            }
        }
    }
    let framing = Framing::Nal {
        kind: NalKind::H265,
        length_size: length_size(hvcc.length_size_minus_one.saturating_add(1))?,
        param_sets,
    };
    Ok(TrackCodec {
        params: h265_params(&framing),
        framing,
        tiny_samples: false,
    })
}

/// The first parameter set of NAL unit type `ty` among `nals`.
fn first_of(kind: NalKind, nals: &[Bytes], ty: u8) -> Option<Bytes> {
    nals.iter().find(|n| kind.nal_type(n) == Some(ty)).cloned()
}

/// H.264 parameters from the parameter sets of `framing`, if it has an SPS and a PPS.
pub(super) fn h264_params(framing: &Framing) -> Option<CodecParams> {
    let Framing::Nal { param_sets, .. } = framing else {
        return None;
    };
    Some(CodecParams::H264 {
        sps: first_of(NalKind::H264, param_sets, 7)?,
        pps: first_of(NalKind::H264, param_sets, 8)?,
    })
}

/// H.265 parameters from the parameter sets of `framing`, if it has a VPS, SPS and PPS.
pub(super) fn h265_params(framing: &Framing) -> Option<CodecParams> {
    let Framing::Nal { param_sets, .. } = framing else {
        return None;
    };
    Some(CodecParams::H265 {
        vps: first_of(NalKind::H265, param_sets, 32)?,
        sps: first_of(NalKind::H265, param_sets, 33)?,
        pps: first_of(NalKind::H265, param_sets, 34)?,
    })
}

fn mp4a(e: &mp4_atom::Mp4a) -> Result<TrackCodec, String> {
    let dc = &e.esds.es_desc.dec_config;
    match dc.object_type_indication {
        // MPEG-4 audio; MPEG-2 AAC Main, LC, SSR.
        0x40 | 0x66..=0x68 => {}
        oti => return Err(format!("unsupported mp4a object type 0x{oti:02x}")),
    }
    let config = match &dc.dec_specific {
        Some(ds) if !ds.raw.is_empty() => Bytes::copy_from_slice(&ds.raw),
        _ => return Err("mp4a: esds has no AudioSpecificConfig".into()),
    };
    let asc = parse_audio_specific_config(&config)?;
    let channels = match asc.channel_config {
        1..=6 => asc.channel_config,
        7 => 8,
        _ => u8::try_from(e.audio.channel_count)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| format!("mp4a: bad channel count {}", e.audio.channel_count))?,
    };
    Ok(TrackCodec {
        params: Some(CodecParams::Aac {
            rate: asc.rate,
            channels,
            config,
        }),
        framing: Framing::Raw,
        tiny_samples: false,
    })
}

/// The fields of an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) that RTP needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AudioSpecificConfig {
    pub object_type: u8,
    /// samplingFrequency of the core (the RTP clock rate).
    pub rate: u32,
    pub channel_config: u8,
}

pub(super) fn parse_audio_specific_config(asc: &[u8]) -> Result<AudioSpecificConfig, String> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let bad = || format!("AudioSpecificConfig {asc:02x?} is truncated or invalid");
    let mut r = BitReader { data: asc, pos: 0 };
    let mut object_type = r.read(5).ok_or_else(bad)?;
    if object_type == 31 {
        object_type = 32 + r.read(6).ok_or_else(bad)?;
    }
    let index = r.read(4).ok_or_else(bad)?;
    let rate = if index == 15 {
        r.read(24).ok_or_else(bad)?
    } else {
        *RATES.get(index as usize).ok_or_else(bad)?
    };
    if rate == 0 {
        return Err(bad());
    }
    let channel_config = r.read(4).ok_or_else(bad)?;
    Ok(AudioSpecificConfig {
        object_type: object_type as u8,
        rate,
        channel_config: channel_config as u8,
    })
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    /// The next `n` (≤ 32) bits, most significant first.
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// A QuickTime sound sample description body (after the box header): version 0, 1 or 2.
fn g711(body: &[u8], timescale: u32, alaw: bool) -> Result<TrackCodec, String> {
    let name = if alaw { "alaw" } else { "ulaw" };
    let bad = || {
        format!(
            "{name}: sound sample description of {} bytes is truncated",
            body.len()
        )
    };
    let u16_at = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes(body.get(i..i + 2)?.try_into().ok()?))
    };
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(body.get(i..i + 4)?.try_into().ok()?))
    };
    let version = u16_at(8).ok_or_else(bad)?;
    let (channels, rate) = match version {
        0 | 1 => {
            let channels = u32::from(u16_at(16).ok_or_else(bad)?);
            let rate = u32_at(24).ok_or_else(bad)? >> 16;
            (channels, rate)
        }
        2 => {
            // sizeOfStructOnly, audioSampleRate (f64), numAudioChannels.
            let rate_bits = u32_at(32)
                .zip(u32_at(36))
                .map(|(hi, lo)| (u64::from(hi) << 32) | u64::from(lo))
                .ok_or_else(bad)?;
            let rate = f64::from_bits(rate_bits);
            let rate = if rate.is_finite() && rate >= 1.0 && rate <= f64::from(u32::MAX) {
                rate.round() as u32
            } else {
                0
            };
            (u32_at(40).ok_or_else(bad)?, rate)
        }
        v => {
            return Err(format!(
                "{name}: unknown sound sample description version {v}"
            ))
        }
    };
    let rate = if rate == 0 { timescale } else { rate };
    let channels = u8::try_from(channels)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| format!("{name}: bad channel count {channels}"))?;
    let params = if alaw {
        CodecParams::Pcma { rate, channels }
    } else {
        CodecParams::Pcmu { rate, channels }
    };
    Ok(TrackCodec {
        params: Some(params),
        framing: Framing::Raw,
        tiny_samples: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specific_config() {
        // AAC-LC, 48 kHz, mono.
        assert_eq!(
            parse_audio_specific_config(&[0x11, 0x88]),
            Ok(AudioSpecificConfig {
                object_type: 2,
                rate: 48000,
                channel_config: 1
            })
        );
        // AAC-LC, 44.1 kHz, stereo.
        assert_eq!(
            parse_audio_specific_config(&[0x12, 0x10]).map(|a| (a.rate, a.channel_config)),
            Ok((44100, 2))
        );
        // Explicit frequency 8000 (index 15), stereo.
        let asc = [0x17, 0x80, 0x0f, 0xa0, 0x10];
        assert_eq!(
            parse_audio_specific_config(&asc).map(|a| (a.rate, a.channel_config)),
            Ok((8000, 2))
        );
        assert!(parse_audio_specific_config(&[0x11]).is_err());
        assert!(parse_audio_specific_config(&[]).is_err());
        // Reserved frequency index 13.
        assert!(parse_audio_specific_config(&[0x16, 0x88]).is_err());
    }

    #[test]
    fn sound_description_versions() {
        let mut v0 = vec![0u8; 28];
        v0[7] = 1; // data reference index
        v0[17] = 2; // channels
        v0[19] = 16; // sample size
        v0[24..28].copy_from_slice(&(8000u32 << 16).to_be_bytes());
        let c = g711(&v0, 1000, true).map(|c| c.params);
        assert_eq!(
            c,
            Ok(Some(CodecParams::Pcma {
                rate: 8000,
                channels: 2
            }))
        );

        let mut v2 = vec![0u8; 64];
        v2[9] = 2;
        v2[32..40].copy_from_slice(&16000f64.to_bits().to_be_bytes());
        v2[43] = 1;
        let c = g711(&v2, 1000, false).map(|c| c.params);
        assert_eq!(
            c,
            Ok(Some(CodecParams::Pcmu {
                rate: 16000,
                channels: 1
            }))
        );
        assert!(g711(&v0[..20], 8000, false).is_err());
    }
}
