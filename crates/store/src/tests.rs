//! Unit tests that need the store's internal fault hook: a full disk.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipcamd_media::synthetic::{SyntheticCamera, SyntheticConfig};
use ipcamd_media::Source;

use crate::{Direction, Store, StoreOptions};

const T0: i64 = 1_763_762_645_000_000;

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
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

#[test]
fn handles_are_thread_safe() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<Store>();
    send::<crate::Recorder>();
    send::<crate::Reader>();
}

#[test]
fn disk_full_stops_cleanly_and_resumes_with_a_new_section() {
    let logs = Logs::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);

    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        flush_interval: Duration::ZERO,
        disk_full_retry: Duration::from_millis(100),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let cfg = SyntheticConfig {
        width: 160,
        height: 96,
        keyframe_interval_ms: 200,
        ..SyntheticConfig::default()
    };
    let mut cam = SyntheticCamera::new(cfg, T0).unwrap();
    let mut rec = store.recorder("cam", cam.tracks()).unwrap();
    let mut pushed = 0u64;
    let mut push = |rec: &mut crate::Recorder, until: i64| loop {
        let au = cam.next_au().unwrap();
        rec.push(&au).unwrap();
        pushed += 1;
        if au.wallclock >= until {
            return pushed;
        }
    };
    push(&mut rec, T0 + 1_000_000);
    store.set_fault_disk_full(true);
    push(&mut rec, T0 + 2_000_000);
    assert!(rec.is_suspended());
    let dropped = rec.dropped_units();
    assert!(dropped >= 75, "{dropped}");
    // Retries while the disk is still full stay quiet.
    std::thread::sleep(Duration::from_millis(150));
    push(&mut rec, T0 + 2_500_000);
    assert!(rec.is_suspended());
    store.set_fault_disk_full(false);
    std::thread::sleep(Duration::from_millis(150));
    push(&mut rec, T0 + 3_000_000);
    assert!(!rec.is_suspended());
    let total = push(&mut rec, T0 + 4_000_000);
    let dropped = rec.dropped_units();
    rec.close().unwrap();

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert_eq!(text.matches("disk full").count(), 1, "{text}");
    assert!(text.contains("recording resumed"), "{text}");
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.sections.len(), 2, "{:?}", info.sections);
    assert_eq!(info.frames, total - dropped);
    // The second section starts with a keyframe and everything is readable.
    let mut r = store.reader("cam").unwrap();
    assert_eq!(
        r.seek(info.sections[1].start, Direction::Forward).unwrap(),
        Some(info.sections[1].start)
    );
    r.seek(T0, Direction::Forward).unwrap();
    let mut n = 0;
    while r.next_forward().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, info.frames);
    // No leftovers: every segment file matches its row.
    for (id, _, _, bytes, _) in crate::testing::segments(&store, "cam").unwrap() {
        let len = std::fs::metadata(dir.path().join("cam").join(format!("{id}.seg")))
            .unwrap()
            .len();
        assert_eq!(len, bytes);
    }
}

/// The fuzz target's checks hold for a real blob, its truncations and byte flips, and
/// for a real track list (and fuzz/seeds/store_index holds such inputs).
#[test]
fn fuzz_checks_hold_for_real_and_damaged_index_rows() {
    let mut w = crate::format::BlobWriter::new(1_700_000_000_000_000);
    for k in 0..40u32 {
        w.push(
            k % 2,
            k % 10 == 0,
            1000 + k,
            u64::from(k) * 3600,
            1_700_000_000_000_000 + i64::from(k) * 40_000,
        );
    }
    let blob = w.bytes().to_vec();
    for n in 0..=blob.len() {
        crate::testing::fuzz_index_formats(&blob[..n]);
    }
    for i in 0..blob.len() {
        let mut b = blob.clone();
        b[i] ^= 0xa5;
        crate::testing::fuzz_index_formats(&b);
    }
    let tracks = crate::format::encode_tracks(&crate::testing::synthetic_tracks());
    crate::testing::fuzz_index_formats(&tracks);
    if std::env::var_os("IPCAMD_WRITE_FUZZ_SEEDS").is_some() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/store_index");
        std::fs::create_dir_all(dir).expect("seed dir");
        std::fs::write(format!("{dir}/blob"), &blob).expect("seed");
        std::fs::write(format!("{dir}/tracks"), &tracks).expect("seed");
    }
}
