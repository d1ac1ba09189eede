//! Makes a long recording fast, for seek benchmarks (bench/run): the full index of
//! `segments` one-minute segments of 25 fps H.264 at about 2 Mbit/s (a keyframe every 2 s,
//! per-frame rows as the recorder writes them), with sparse sample files. Only the
//! segments holding `seeks` random instants get their frames filled with Annex B NAL
//! units (an IDR or non-IDR slice header followed by zeros), so a replay started there
//! reads real bytes; everything else stays a hole. Prints the instants as
//! `Range: clock=` times, space-separated.
//!
//! `cargo run --release -p ipcamd-store --example sparse_store STORE_DIR CAMERA SEGMENTS SEEKS`

use std::io::{Seek, SeekFrom, Write};

use ipcamd_store::{testing, Store, StoreOptions};

const FPS: u64 = 25;
const GOP: u64 = 50;
const FRAME_BYTES: u64 = 8_000; // keyframes 10x: about 2 Mbit/s in all
const SEG_US: i64 = 60_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, camera, segments, seeks] = args.as_slice() else {
        return Err("usage: sparse_store STORE_DIR CAMERA SEGMENTS SEEKS".into());
    };
    let segments: u64 = segments
        .parse()
        .map_err(|e| format!("SEGMENTS {segments:?}: {e}"))?;
    let seeks: u64 = seeks.parse().map_err(|e| format!("SEEKS {seeks:?}: {e}"))?;
    // 2026-11-01T00:00:00Z, the same start as the imported benchmark file's camera.
    let start: i64 = 1_793_491_200_000_000;
    let store = Store::open(std::path::Path::new(root), StoreOptions::default())?;
    testing::synthesize_index(
        &store,
        camera,
        start,
        segments,
        SEG_US,
        FPS as u32,
        GOP as u32,
        FRAME_BYTES as u32,
    )?;
    let segs = testing::segments(&store, camera)?;
    let per_segment = SEG_US as u64 * FPS / 1_000_000;
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ segments;
    let mut out = Vec::new();
    for _ in 0..seeks {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let offset_us = (rng % (segments * SEG_US as u64 - 10_000_000)) as i64;
        let s = (offset_us / SEG_US) as usize;
        // The synthesized segments are in order; fill this one and the next (a seek near
        // the end of a segment reads on).
        for (k, &(id, ..)) in segs.iter().enumerate().skip(s).take(2) {
            fill(
                &testing::segment_file(&store, camera, id),
                k as u64 * per_segment,
                per_segment,
            )?;
        }
        let t = start + offset_us;
        let secs = t.div_euclid(1_000_000);
        out.push(clock(secs));
    }
    println!("{}", out.join(" "));
    Ok(())
}

/// Writes a start code and a slice NAL header at the start of every frame of a segment
/// whose first frame is the `first`-th of the recording.
fn fill(path: &std::path::Path, first: u64, frames: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut pos = 0u64;
    for n in first..first + frames {
        let key = n % GOP == 0;
        f.seek(SeekFrom::Start(pos))?;
        f.write_all(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88])?;
        pos += if key { FRAME_BYTES * 10 } else { FRAME_BYTES };
    }
    Ok(())
}

/// Unix seconds as `YYYYMMDDThhmmssZ`.
fn clock(secs: i64) -> String {
    let iso = ipcamd_proto::time::format_iso8601(secs * 1_000_000);
    let whole = iso.split('.').next().unwrap_or(&iso).trim_end_matches('Z');
    format!("{}Z", whole.replace(['-', ':'], ""))
}
