//! Plan and write an MP4 export of a recorded range without HTTP: planning time, the
//! in-memory table per unit and per video sample, the file layout, and how fast the whole
//! file is produced (written to /dev/null). Opens the store read-only, so it can run next
//! to a server.
//!
//! `cargo run --release -p ipcamd-store --example export_bench ROOT CAMERA FROM TO`
//! (times as UTC, e.g. 2026-01-01T00:00:00Z)

use std::io::Write;
use std::time::Instant;

use ipcamd_store::Store;

fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, camera, from, to] = args.as_slice() else {
        return Err("usage: export_bench ROOT CAMERA FROM TO".into());
    };
    let time = |s: &str| ipcamd_proto::time::parse_utc(s).ok_or(format!("{s}: not a UTC time"));
    let (from, to) = (time(from)?, time(to)?);
    let store = Store::open_read_only(std::path::Path::new(root))?;
    let rss0 = vm("VmRSS:");
    let t = Instant::now();
    let file = store.export_file(camera, from, to)?;
    let plan_s = t.elapsed().as_secs_f64();
    let rss1 = vm("VmRSS:");
    let r = file.report();
    let video: u64 = r
        .tracks
        .iter()
        .zip(file.units_per_track())
        .filter(|(codec, _)| matches!(codec.as_str(), "H264" | "H265" | "JPEG"))
        .map(|(_, n)| n)
        .sum();
    println!(
        "plan: {:.2} s for {} units ({} video) in {} sections; file {} bytes",
        plan_s,
        r.frames,
        video,
        r.sections,
        file.len()
    );
    println!(
        "in-memory tables: {} bytes = {:.2} bytes per unit, {:.2} per video sample \
         (RSS {:.1} -> {:.1} MiB while planning)",
        file.table_bytes(),
        file.table_bytes() as f64 / r.frames.max(1) as f64,
        file.table_bytes() as f64 / video.max(1) as f64,
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0
    );
    let mut sink = std::io::sink();
    let t = Instant::now();
    let mut reader = file.reader(0, file.len());
    let mut first = None;
    let mut n = 0u64;
    while let Some(chunk) = reader.read_chunk(256 * 1024)? {
        first.get_or_insert_with(|| t.elapsed());
        sink.write_all(&chunk)?;
        n += chunk.len() as u64;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "write: {n} bytes in {s:.2} s ({:.0} MB/s), first 256 KiB after {:.1} ms; VmHWM {:.1} MiB",
        n as f64 / s / 1e6,
        first.unwrap_or_default().as_secs_f64() * 1e3,
        vm("VmHWM:") as f64 / 1048576.0
    );
    Ok(())
}
