//! Time lookups in a 30-day index: one camera, 43,200 one-minute segments of 25 fps video
//! with a keyframe every 2 s (synthesized per-frame blobs; the sample files are sparse, no
//! media), then `Reader::seek` at random points in both directions.
//!
//! `cargo run --release -p ipcamd-store --example seek_bench [days] [seeks] [dir]`

use std::time::{Duration, Instant};

use ipcamd_store::{testing, Direction, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let days: u64 = args.first().map_or(Ok(30), |s| s.parse())?;
    let seeks: usize = args.get(1).map_or(Ok(2000), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let root = args
        .get(2)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let segments = days * 24 * 60;
    let start: i64 = 1_760_000_000_000_000;
    let seg_us = 60_000_000i64;

    let store = Store::open(&root, StoreOptions::default())?;
    let t = Instant::now();
    let frames = testing::synthesize_index(&store, "cam", start, segments, seg_us, 25, 50, 2_000)?;
    let (_, _, blob_bytes) = testing::index_stats(&store)?;
    println!(
        "index: {segments} segments, {frames} frames, {:.1} MB of frame blobs ({:.2} bytes/frame), \
         built in {:.1} s",
        blob_bytes as f64 / 1e6,
        blob_bytes as f64 / frames as f64,
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let t = Instant::now();
    let store = Store::open(&root, StoreOptions::default())?;
    println!(
        "open + recovery check of {segments} segments: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let db_len = std::fs::metadata(root.join("index.sqlite"))?.len()
        + std::fs::metadata(root.join("index.sqlite-wal")).map_or(0, |m| m.len());
    println!(
        "index file: {:.1} MB ({:.2} bytes/frame)",
        db_len as f64 / 1e6,
        db_len as f64 / frames as f64
    );

    let end = start + segments as i64 * seg_us;
    let span = (end - start) as u64 + 2 * 3_600_000_000;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (what, new_reader) in [("same reader", false), ("new reader per seek", true)] {
        let mut reader = store.reader("cam")?;
        let mut times: Vec<Duration> = Vec::with_capacity(seeks);
        let mut found = 0;
        for i in 0..seeks {
            let t_us = start - 3_600_000_000 + (next() % span) as i64;
            let dir = if i % 2 == 0 {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            if new_reader {
                reader = store.reader("cam")?;
            }
            let t = Instant::now();
            let hit = reader.seek(t_us, dir)?;
            times.push(t.elapsed());
            found += usize::from(hit.is_some());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / seeks as u32;
        let p99 = times[seeks * 99 / 100];
        let max = times[seeks - 1];
        println!(
            "seek ({what}), {seeks} random points (±1 h around the footage), {found} found: \
             mean {} µs, p99 {} µs, max {} µs",
            mean.as_micros(),
            p99.as_micros(),
            max.as_micros()
        );
    }
    Ok(())
}
