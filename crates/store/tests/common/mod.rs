//! Shared helpers of the store's integration tests: a small synthetic camera, recording
//! helpers, log capture and the start-point oracle computed from what the source produced.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcamd_media::synthetic::{SyntheticCamera, SyntheticConfig, SyntheticVideo};
use ipcamd_media::{AccessUnit, Source};
use ipcamd_proto::time::UnixMicros;
use ipcamd_store::{Store, StoreOptions, StoredFrame};

/// 2025-11-21 22:04:05 UTC.
pub const T0: UnixMicros = 1_763_762_645_000_000;
pub const SEC: i64 = 1_000_000;

pub fn camera(start: UnixMicros) -> SyntheticCamera {
    let cfg = SyntheticConfig {
        width: 160,
        height: 96,
        fps: 25,
        bitrate_bps: 200_000,
        keyframe_interval_ms: 1000,
        video: SyntheticVideo::H264,
        jpeg_quality: 70,
        audio: true,
        label: "test".into(),
    };
    SyntheticCamera::new(cfg, start).expect("synthetic camera")
}

pub fn opts(segment: Duration) -> StoreOptions {
    StoreOptions {
        segment_duration: segment,
        ..StoreOptions::default()
    }
}

/// Records `[start, start + dur)` of a synthetic camera; returns the units pushed.
pub fn record(store: &Store, name: &str, start: UnixMicros, dur: i64) -> Vec<AccessUnit> {
    let mut cam = camera(start);
    let mut rec = store.recorder(name, cam.tracks()).expect("recorder");
    let mut out = Vec::new();
    loop {
        let au = cam.next_au().expect("unit");
        if au.wallclock >= start + dur {
            break;
        }
        rec.push(&au).expect("push");
        out.push(au);
    }
    rec.close().expect("close");
    out
}

pub fn read_all_forward(r: &mut ipcamd_store::Reader) -> Vec<StoredFrame> {
    let mut out = Vec::new();
    while let Some(f) = r.next_forward().expect("next_forward") {
        out.push(f);
    }
    out
}

pub fn same_unit(f: &StoredFrame, au: &AccessUnit) -> bool {
    f.track == au.track
        && f.pts == au.pts
        && f.wallclock == au.wallclock
        && f.keyframe == au.keyframe
        && f.data == au.data
}

/// Video keyframe wallclocks of a unit list.
pub fn keys(units: &[AccessUnit]) -> Vec<UnixMicros> {
    units
        .iter()
        .filter(|u| u.track == 0 && u.keyframe)
        .map(|u| u.wallclock)
        .collect()
}

/// Captured log lines.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Captures this thread's logs until the guard is dropped.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let guard = tracing::subscriber::set_default(sub);
    (logs, guard)
}
