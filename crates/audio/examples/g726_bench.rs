//! G.726 decode and encode speed, in samples per second of one core.
//!
//! `cargo run --release -p ipcamd-audio --example g726_bench`
//!
//! Encodes the 1 s test signal of `testdata/g726/` at every rate, then decodes it (and
//! encodes it again) in 20 ms packets, as a talk session would, for about half a second per
//! measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ipcamd_audio::g726::{G726Decoder, G726Encoder, G726Packing, G726Rate};

const PACKET: usize = 160; // 20 ms at 8 kHz

/// Runs `f` (which processes `samples` samples) until `budget` has passed; samples/s.
fn rate_of(samples: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget {
        f();
        runs += 1;
    }
    (runs * samples as u64) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let input: Vec<i16> = include_bytes!("../testdata/g726/input.raw")
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let packing = G726Packing::Rfc3551LittleEndian;
    let budget = Duration::from_millis(500);
    println!("G.726, one core, 20 ms packets; real time is 8000 samples/s");
    for rate in G726Rate::ALL {
        let mut payload = Vec::new();
        G726Encoder::new(rate, packing).encode(&input, &mut payload);
        let packet_len = rate.encoded_len(PACKET);

        let mut decoder = G726Decoder::new(rate, packing);
        let mut out = Vec::with_capacity(PACKET);
        let decode = rate_of(input.len(), budget, || {
            for packet in payload.chunks(packet_len) {
                out.clear();
                decoder.decode(black_box(packet), &mut out);
                black_box(&out);
            }
        });

        let mut encoder = G726Encoder::new(rate, packing);
        let mut bytes = Vec::with_capacity(packet_len);
        let encode = rate_of(input.len(), budget, || {
            for chunk in input.chunks(PACKET) {
                bytes.clear();
                encoder.encode(black_box(chunk), &mut bytes);
                black_box(&bytes);
            }
        });

        println!(
            "{:>8}: decode {:6.1} M samples/s ({:5.0}x real time), encode {:6.1} M samples/s",
            rate.sdp_name(),
            decode / 1e6,
            decode / 8000.0,
            encode / 1e6,
        );
    }
}
