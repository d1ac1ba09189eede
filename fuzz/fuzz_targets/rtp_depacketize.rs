//! The RTP and RTCP parsers and every depacketizer (H.264, H.265, JPEG with the ONVIF JPEG
//! header extension alone or behind 0xABAC, AAC, G.711): the
//! first byte picks the codec, the rest is a sequence of packets, each preceded by a
//! 2-byte big-endian length.
#![no_main]

use bytes::Bytes;
use ipcamd_proto::codec::CodecParams;
use ipcamd_proto::packet::depacketizer_for;
use ipcamd_proto::rtcp::parse_compound;
use ipcamd_proto::rtp::parse_rtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let codec = match sel % 7 {
        0 => CodecParams::H264 {
            sps: Bytes::new(),
            pps: Bytes::new(),
        },
        1 => CodecParams::H265 {
            vps: Bytes::new(),
            sps: Bytes::new(),
            pps: Bytes::new(),
        },
        2 => CodecParams::Jpeg,
        3 => CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        },
        4 => CodecParams::Pcma {
            rate: 8000,
            channels: 1,
        },
        5 => CodecParams::Aac {
            rate: 16000,
            channels: 1,
            config: Bytes::from_static(&[0x14, 0x08]),
        },
        _ => CodecParams::Opaque {
            kind: ipcamd_proto::codec::MediaKind::Video,
            rtpmap: Some("VP8/90000".into()),
            fmtp: None,
            clock_rate: 90000,
        },
    };
    let mut d = depacketizer_for(&codec);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let pkt = &rest[2..end];
        rest = &rest[end..];
        let _ = parse_compound(pkt);
        if let Ok(p) = parse_rtp(pkt) {
            let _ = d.push(&p);
            while d.pull().is_some() {}
        }
    }
});
