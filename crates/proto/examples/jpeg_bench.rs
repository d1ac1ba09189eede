//! Packetize/depacketize throughput of 4K (3840x2160, 4:2:0) MJPEG frames, which go with
//! the ONVIF JPEG header extension: `cargo run --release -p ipcamd-proto --example
//! jpeg_bench`. One core; figures in docs/mjpeg.md.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ipcamd_proto::packet::jpeg::{JpegDepacketizer, JpegPacketizer, JPEG_EXT_INITIAL};
use ipcamd_proto::packet::{Depacketizer, Packetizer, DEFAULT_MAX_PAYLOAD};
use ipcamd_proto::rtp::{parse_rtp, write_rtp, RtpExtension, RtpHeader};

fn main() {
    let (w, h) = (3840u16, 2160u16);
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for y in 0..usize::from(h) {
        for x in 0..usize::from(w) {
            px.extend_from_slice(&[(x * 7 + y) as u8, (y * 3) as u8, ((x ^ y) & 0xff) as u8]);
        }
    }
    let mut jfif = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut jfif, 80);
    e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    if let Err(err) = e.encode(&px, w, h, jpeg_encoder::ColorType::Rgb) {
        eprintln!("encoding the test frame failed: {err}");
        return;
    }
    let frame = Bytes::from(jfif);
    let mb = frame.len() as f64 / 1e6;
    let n = 200;
    let mut p = JpegPacketizer::new(DEFAULT_MAX_PAYLOAD);
    let mut payloads = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        payloads.clear();
        if let Err(err) = p.packetize(&frame, &mut payloads) {
            eprintln!("packetize: {err}");
            return;
        }
    }
    let pack = t.elapsed().as_secs_f64();
    // Whole RTP packets, as a receiver gets them.
    let packets: Vec<BytesMut> = payloads
        .iter()
        .enumerate()
        .map(|(i, pl)| {
            let mut b = BytesMut::new();
            let header = RtpHeader {
                payload_type: 26,
                marker: pl.marker,
                sequence: i as u16,
                timestamp: 0,
                ssrc: 1,
                extension: pl.header_ext.as_ref().map(|e| RtpExtension {
                    profile: JPEG_EXT_INITIAL,
                    data: e,
                }),
            };
            write_rtp(&header, &pl.to_bytes(), &mut b);
            b
        })
        .collect();
    let mut d = JpegDepacketizer::new();
    let mut seq = 0u16;
    let t = Instant::now();
    let mut out = 0;
    for _ in 0..n {
        for pkt in &packets {
            let mut b = pkt.clone();
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            seq = seq.wrapping_add(1);
            if let Ok(r) = parse_rtp(&b) {
                let _ = d.push(&r);
            }
        }
        while let Some(u) = d.pull() {
            out += usize::from(u.data == frame);
        }
    }
    let depack = t.elapsed().as_secs_f64();
    println!(
        "3840x2160 4:2:0 frame: {:.2} MB, {} packets of <= {} bytes, header extension {} bytes",
        mb,
        payloads.len(),
        DEFAULT_MAX_PAYLOAD,
        payloads
            .first()
            .and_then(|p| p.header_ext.as_ref())
            .map_or(0, |e| e.len())
    );
    println!(
        "packetize:   {:.0} MB/s, {:.0} frames/s (one core)",
        mb * f64::from(n) / pack,
        f64::from(n) / pack
    );
    println!(
        "depacketize: {:.0} MB/s, {:.0} frames/s (one core; {out}/{n} byte-identical)",
        mb * f64::from(n) / depack,
        f64::from(n) / depack
    );
}
