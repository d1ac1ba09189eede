//! Several openers of one store (docs/store.md "Several processes"): a primary, a shared
//! writer recording another camera, a read-only reader. Each `Store::open*` here has its
//! own SQLite connection and lock files, exactly as a second process would (flock locks
//! conflict between two opens of a file in one process too), so these run in one process.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use ipcamd_media::Source;
use ipcamd_store::{testing, Direction, OpenMode, Retention, Store, StoreError, StoreOptions};

#[test]
fn primary_shared_and_read_only_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Store::open(dir.path(), opts(Duration::from_secs(1))).unwrap();
    assert_eq!(primary.mode(), OpenMode::Primary);
    // The primary records "live" and keeps recording.
    let mut live_cam = camera(T0);
    let mut live = primary.recorder("live", live_cam.tracks()).unwrap();
    for _ in 0..200 {
        live.push(&live_cam.next_au().unwrap()).unwrap();
    }
    live.flush().unwrap();

    // A second primary is refused; a shared writer is not.
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::default()),
        Err(StoreError::Locked(_))
    ));
    let shared = Store::open_shared(dir.path(), opts(Duration::from_secs(1))).unwrap();
    assert_eq!(shared.mode(), OpenMode::Shared);
    // It cannot record the camera the primary records, with an error saying so.
    let err = shared.recorder("live", live_cam.tracks()).err().unwrap();
    assert!(matches!(err, StoreError::RecordedElsewhere(ref c) if c == "live"));
    assert!(
        err.to_string().contains("camera live: another process"),
        "{err}"
    );
    // It imports another camera while the primary goes on recording.
    let units = record(&shared, "imported", T0 - 3600 * SEC, 5 * SEC);
    for _ in 0..100 {
        live.push(&live_cam.next_au().unwrap()).unwrap();
    }
    live.flush().unwrap();
    // The primary sees the imported footage, unit for unit.
    let mut r = primary.reader("imported").unwrap();
    r.seek(T0 - 3600 * SEC, Direction::Forward).unwrap();
    let got = read_all_forward(&mut r);
    assert_eq!(got.len(), units.len());
    assert!(got.iter().zip(&units).all(|(f, u)| same_unit(f, u)));
    // And the primary cannot record the camera while the shared writer does.
    let mut other = camera(T0 + 3600 * SEC);
    let rec = shared.recorder("second", other.tracks()).unwrap();
    assert!(matches!(
        primary.recorder("second", other.tracks()),
        Err(StoreError::RecordedElsewhere(_))
    ));
    drop(rec);
    assert!(primary.recorder("second", other.tracks()).is_ok());
    // A shared handle applies no retention.
    assert_eq!(shared.apply_retention().unwrap().deleted_segments, 0);

    // A read-only handle reads both cameras, the live one up to its last flush.
    let ro = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.mode(), OpenMode::ReadOnly);
    let names: Vec<String> = ro
        .recordings()
        .unwrap()
        .into_iter()
        .map(|r| r.camera)
        .collect();
    assert_eq!(names, vec!["imported", "live"]);
    let info = ro.recording("live").unwrap().unwrap();
    assert_eq!(info.frames, 300);
    assert!(info.sections[0].recording);
    assert!(matches!(
        ro.recorder("other", other.tracks()),
        Err(StoreError::ReadOnly(_))
    ));
    live.close().unwrap();
    assert!(!ro.recording("live").unwrap().unwrap().sections[0].recording);
    // Read-only needs an existing store.
    let empty = tempfile::tempdir().unwrap();
    assert!(Store::open_read_only(empty.path()).is_err());
    let _ = other.next_au();
}

/// The primary neither "recovers" nor applies retention to a camera that another process
/// is recording: its open section and segments are live, not left over from a crash.
#[test]
fn recovery_and_retention_leave_a_shared_writers_camera_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let shared = Store::open_shared(dir.path(), opts(Duration::from_secs(1))).unwrap();
    let mut cam = camera(T0);
    let mut rec = shared.recorder("imp", cam.tracks()).unwrap();
    loop {
        let au = cam.next_au().unwrap();
        rec.push(&au).unwrap();
        if au.wallclock >= T0 + 4 * SEC {
            break;
        }
    }
    rec.flush().unwrap();
    // Unflushed bytes beyond the index, as a live recorder has them.
    for _ in 0..10 {
        rec.push(&cam.next_au().unwrap()).unwrap();
    }
    let before = testing::segments(&shared, "imp").unwrap();
    assert!(before.len() >= 3, "{before:?}");

    // A primary opens (recovery) with a tiny size limit, then applies retention.
    let (logs, _guard) = capture_logs();
    let limits = StoreOptions {
        per_camera: HashMap::from([(
            "imp".to_string(),
            Retention {
                max_bytes: Some(1),
                max_age: None,
            },
        )]),
        ..StoreOptions::default()
    };
    let primary = Store::open(dir.path(), limits.clone()).unwrap();
    assert!(
        logs.text()
            .contains("camera imp: another process is recording it"),
        "{}",
        logs.text()
    );
    let report = primary.apply_retention().unwrap();
    assert_eq!(report.deleted_segments, 0);
    assert!(report.skipped_in_use >= 1);
    let info = primary.recording("imp").unwrap().unwrap();
    assert!(info.sections[0].recording, "the open section was closed");
    assert_eq!(testing::segments(&primary, "imp").unwrap(), before);
    // The recorder goes on and closes cleanly; its footage is whole.
    rec.close().unwrap();
    let info = primary.recording("imp").unwrap().unwrap();
    assert!(!info.sections[0].recording);
    // Closed, the camera is retention's again.
    let report = primary.apply_retention().unwrap();
    assert!(report.deleted_segments >= 3, "{report:?}");
    drop(primary);
    drop(shared);
    // A fresh primary finds nothing to repair.
    let (logs, _guard2) = capture_logs();
    Store::open(dir.path(), limits).unwrap();
    assert!(!logs.text().contains("dropped"), "{}", logs.text());
}
