//! The backchannel audio decoders (G.711 µ/A-law, L16, G.726 16/24/32/40 in both bit
//! orders, AAC via symphonia, Opus): the first byte picks the codec, the rest is a
//! sequence of RTP payloads, each preceded by a 2-byte big-endian length. A zero-length
//! payload stands for a loss (conceal).
#![no_main]

use ipcamd_audio::decoder::{decoder_for, AuHeaderFormat, BackchannelCodec};
use ipcamd_audio::g726::{G726Packing, G726Rate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let packing = if sel & 0x80 != 0 {
        G726Packing::BigEndianAal2
    } else {
        G726Packing::Rfc3551LittleEndian
    };
    let codec = match sel % 10 {
        0 => BackchannelCodec::Pcmu { rate: 8000 },
        1 => BackchannelCodec::Pcma { rate: 16000 },
        2 => BackchannelCodec::L16 {
            rate: 16000,
            channels: 1 + (sel >> 7),
        },
        3 => BackchannelCodec::G726 {
            rate: G726Rate::R16,
            packing,
        },
        4 => BackchannelCodec::G726 {
            rate: G726Rate::R24,
            packing,
        },
        5 => BackchannelCodec::G726 {
            rate: G726Rate::R32,
            packing,
        },
        6 => BackchannelCodec::G726 {
            rate: G726Rate::R40,
            packing,
        },
        7 => BackchannelCodec::Aac {
            rate: 16000,
            channels: 1,
            config: vec![0x14, 0x08],
            au_headers: AuHeaderFormat::AAC_HBR,
        },
        8 => BackchannelCodec::Aac {
            rate: 16000,
            channels: 1,
            config: vec![0x14, 0x08],
            au_headers: AuHeaderFormat::AAC_LBR,
        },
        _ => BackchannelCodec::Opus,
    };
    let Ok(mut d) = decoder_for(&codec) else {
        return;
    };
    let mut out = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let payload = &rest[2..end];
        rest = &rest[end..];
        if payload.is_empty() {
            d.conceal(160, &mut out);
        } else {
            let _ = d.decode(payload, &mut out);
        }
        // Bounded output: a decoder must not produce unbounded audio from small input.
        assert!(out.len() < 50_000_000);
        out.clear();
    }
});
