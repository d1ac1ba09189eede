//! `store-crash-helper <root> <camera> <flush_ms> <segment_ms>`: records a synthetic camera
//! (H.264 + PCMU), paced to real time, into the store at `<root>` until it is killed. The
//! kill -9 test (tests/crash.rs) starts it, kills it with SIGKILL and checks what recovery
//! finds. Prints `recording` once the recorder is running.
//!
//! Left out: any way to stop it but a signal; it is a test fixture.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use ipcamd_media::synthetic::{SyntheticCamera, SyntheticConfig};
use ipcamd_media::Source;
use ipcamd_store::{now_micros, Store, StoreOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("store-crash-helper: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, camera, flush_ms, segment_ms] = args.as_slice() else {
        return Err("usage: store-crash-helper <root> <camera> <flush_ms> <segment_ms>".into());
    };
    let ms = |s: &str| {
        s.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{s}: {e}"))
    };
    let opts = StoreOptions {
        flush_interval: ms(flush_ms)?,
        segment_duration: ms(segment_ms)?,
        ..StoreOptions::default()
    };
    let store = Store::open(Path::new(root), opts).map_err(|e| e.to_string())?;
    let cfg = SyntheticConfig {
        width: 160,
        height: 96,
        keyframe_interval_ms: 500,
        ..SyntheticConfig::default()
    };
    let mut cam = SyntheticCamera::new(cfg, now_micros()).map_err(|e| e.to_string())?;
    let mut rec = store
        .recorder(camera, cam.tracks())
        .map_err(|e| e.to_string())?;
    println!("recording");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        let au = cam.next_au().map_err(|e| e.to_string())?;
        let wait = au.wallclock - now_micros();
        if wait > 0 {
            std::thread::sleep(Duration::from_micros(wait as u64));
        }
        rec.push(&au).map_err(|e| e.to_string())?;
    }
}
