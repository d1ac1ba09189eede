//! Write throughput: pushes fake H.264 frames (start code + pseudo-random bytes; 25 fps,
//! keyframe every 2 s, ~4 Mbit/s) and 20 ms G.711 frames as fast as the store takes them,
//! flushing every 2 s (the default), and reports MB/s and the index size per frame.
//!
//! `cargo run --release -p ipcamd-store --example write_bench [footage_secs] [dir]`

use std::time::Instant;

use bytes::Bytes;
use ipcamd_media::AccessUnit;
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_store::{testing, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.first().map_or(Ok(600), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let root = args
        .get(1)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let mut tracks = testing::synthetic_tracks();
    tracks.push(TrackInfo::new(
        CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        },
        0,
    ));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Bytes {
        let mut v = vec![0u8, 0, 0, 1, 0x65];
        v.extend((5..n).map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        }));
        Bytes::from(v)
    };
    let store = Store::open(&root, StoreOptions::default())?;
    let mut rec = store.recorder("cam", &tracks)?;
    let start: i64 = 1_760_000_000_000_000;
    let (mut bytes, mut frames) = (0u64, 0u64);
    let t = Instant::now();
    for n in 0..secs * 25 {
        let w = start + n as i64 * 40_000;
        let key = n % 50 == 0;
        let data = noise(if key { 100_000 } else { 17_000 });
        let video = AccessUnit {
            track: 0,
            pts: n * 3600,
            wallclock: w,
            keyframe: key,
            data,
        };
        bytes += video.data.len() as u64;
        rec.push(&video)?;
        for k in 0..2u64 {
            let audio = AccessUnit {
                track: 1,
                pts: (n * 2 + k) * 160,
                wallclock: w + k as i64 * 20_000,
                keyframe: true,
                data: Bytes::from(vec![0xffu8; 160]),
            };
            bytes += 160;
            rec.push(&audio)?;
        }
        frames += 3;
    }
    rec.close()?;
    let elapsed = t.elapsed().as_secs_f64();
    let (segments, indexed, blob) = testing::index_stats(&store)?;
    let db_len = std::fs::metadata(root.join("index.sqlite"))?.len()
        + std::fs::metadata(root.join("index.sqlite-wal")).map_or(0, |m| m.len());
    println!(
        "{secs} s of footage: {frames} units, {:.1} MB in {elapsed:.2} s = {:.1} MB/s, \
         {:.0} units/s ({:.0}x real time)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / elapsed,
        frames as f64 / elapsed,
        secs as f64 / elapsed
    );
    println!(
        "index: {segments} segments, {indexed} units, frame blobs {:.2} bytes/unit, \
         index file {:.2} bytes/unit",
        blob as f64 / indexed as f64,
        db_len as f64 / indexed as f64
    );
    Ok(())
}
