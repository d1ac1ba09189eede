//! `cargo bench -p ipcamd-proto --bench packetize`: how fast the H.264 packetizer cuts
//! access units into RTP payloads (what every replay session and every live camera does per
//! frame). Prints MB/s of access units for a 1080p-sized keyframe and a P frame; a plain
//! timing loop (no criterion: the figure, not its statistics, goes into BENCHMARKS.md).

use std::time::Instant;

use bytes::Bytes;
use ipcamd_proto::codec::CodecParams;
use ipcamd_proto::packet::{packetizer_for, DEFAULT_MAX_PAYLOAD};

/// An Annex B access unit: SPS, PPS and one slice of `len` pseudo-random bytes (without
/// start-code emulation, as an encoder writes them).
fn access_unit(len: usize, idr: bool) -> Bytes {
    let mut au = vec![
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80,
    ];
    au.extend_from_slice(&[0, 0, 0, 1, if idr { 0x65 } else { 0x41 }]);
    let mut x: u32 = 0x1234_5678;
    let mut zeros = 0;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let mut b = (x >> 24) as u8;
        if zeros >= 2 && b <= 3 {
            b = 4; // emulation prevention: never 00 00 0x (x <= 3) inside a NAL unit
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        au.push(b);
    }
    Bytes::from(au)
}

fn main() {
    for (what, au, rounds) in [
        ("keyframe 200 KB", access_unit(200_000, true), 2000),
        ("P frame 10 KB", access_unit(10_000, false), 40_000),
    ] {
        let mut p = packetizer_for(
            &CodecParams::H264 {
                sps: Bytes::new(),
                pps: Bytes::new(),
            },
            DEFAULT_MAX_PAYLOAD - 16,
        );
        let mut out = Vec::new();
        let t = Instant::now();
        let mut packets = 0;
        for _ in 0..rounds {
            out.clear();
            if p.packetize(&au, &mut out).is_err() {
                eprintln!("packetize failed");
                return;
            }
            packets += out.len();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "h264 packetize, {what}: {:.0} MB/s, {:.0} ns per packet",
            (au.len() * rounds) as f64 / s / 1e6,
            s * 1e9 / packets as f64
        );
    }
}
