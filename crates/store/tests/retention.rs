//! Retention: by size and by age, per camera and global, oldest first, never a segment
//! that a reader has pinned.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use ipcamd_store::{testing, Direction, Retention, Store, StoreOptions};

fn with_camera_limit(limit: Retention) -> StoreOptions {
    StoreOptions {
        segment_duration: Duration::from_secs(1),
        per_camera: HashMap::from([("cam".to_string(), limit)]),
        ..StoreOptions::default()
    }
}

#[test]
fn by_size_oldest_first_never_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let segs;
    {
        let store = Store::open(dir.path(), opts(Duration::from_secs(1))).unwrap();
        record(&store, "cam", T0, 6 * SEC);
        segs = testing::segments(&store, "cam").unwrap();
    }
    assert!(segs.len() >= 6, "{segs:?}");
    let total: u64 = segs.iter().map(|s| s.3).sum();
    let path = |id: i64| dir.path().join("cam").join(format!("{id}.seg"));

    // Keep all but the first one and a half segments: the first two go.
    let limit = total - segs[0].3 - segs[1].3 / 2;
    {
        let store = Store::open(
            dir.path(),
            with_camera_limit(Retention {
                max_bytes: Some(limit),
                max_age: None,
            }),
        )
        .unwrap();
        let report = store.apply_retention().unwrap();
        assert_eq!(report.deleted_segments, 2);
        assert_eq!(report.deleted_bytes, segs[0].3 + segs[1].3);
        let after = testing::segments(&store, "cam").unwrap();
        assert_eq!(after, segs[2..].to_vec());
        assert!(!path(segs[0].0).exists() && !path(segs[1].0).exists() && path(segs[2].0).exists());
        let info = store.recording("cam").unwrap().unwrap();
        assert_eq!(info.sections[0].start, segs[2].1);
        assert_eq!(info.bytes, total - report.deleted_bytes);
        assert_eq!(info.frames, segs[2..].iter().map(|s| s.4).sum::<u64>());
        // Nothing more to do.
        assert_eq!(store.apply_retention().unwrap().deleted_segments, 0);
    }

    // A reader pins the oldest remaining segment: the next oldest goes instead.
    let limit = total - segs[0].3 - segs[1].3 - 1;
    let store = Store::open(
        dir.path(),
        with_camera_limit(Retention {
            max_bytes: Some(limit),
            max_age: None,
        }),
    )
    .unwrap();
    let mut r = store.reader("cam").unwrap();
    assert_eq!(
        r.seek(segs[2].1, Direction::Forward).unwrap(),
        Some(segs[2].1)
    );
    let report = store.apply_retention().unwrap();
    assert_eq!(report.skipped_in_use, 1);
    assert_eq!(report.deleted_segments, 1);
    let after = testing::segments(&store, "cam").unwrap();
    assert_eq!(after[0], segs[2]);
    assert_eq!(after[1], segs[4]);
    assert!(path(segs[2].0).exists() && !path(segs[3].0).exists());
    // The reader goes on: the pinned segment, then the one after the deleted one.
    let got = read_all_forward(&mut r);
    assert_eq!(got.len() as u64, after.iter().map(|s| s.4).sum::<u64>());
    drop(r);
    // Under the limit now: nothing is due, nothing skipped.
    let report = store.apply_retention().unwrap();
    assert_eq!((report.deleted_segments, report.skipped_in_use), (0, 0));
}

#[test]
fn by_age_per_camera_and_global() {
    let dir = tempfile::tempdir().unwrap();
    let segs;
    {
        let store = Store::open(dir.path(), opts(Duration::from_secs(1))).unwrap();
        record(&store, "cam", T0, 6 * SEC);
        segs = testing::segments(&store, "cam").unwrap();
    }
    // Footage older than 100 s at T0 + 103.5 s: whatever ended before T0 + 3.5 s.
    let cutoff = T0 + 3_500_000;
    let opts = with_camera_limit(Retention {
        max_bytes: None,
        max_age: Some(Duration::from_secs(100)),
    });
    let store = Store::open(dir.path(), opts).unwrap();
    let report = store.apply_retention_at(cutoff + 100 * SEC).unwrap();
    let gone: Vec<_> = segs.iter().filter(|s| s.2 < cutoff).collect();
    assert!(gone.len() >= 2);
    assert_eq!(report.deleted_segments, gone.len() as u64);
    let after = testing::segments(&store, "cam").unwrap();
    assert_eq!(after, segs[gone.len()..].to_vec());
    drop(store);

    // Global size limit over two cameras: the oldest of either goes first.
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let store = Store::open(dir.path(), opts_1s()).unwrap();
        record(&store, "a", T0, 4 * SEC);
        record(&store, "b", T0 + 500_000, 4 * SEC);
        a = testing::segments(&store, "a").unwrap();
        b = testing::segments(&store, "b").unwrap();
    }
    let mut all: Vec<(i64, &str, u64)> = a
        .iter()
        .map(|s| (s.1, "a", s.3))
        .chain(b.iter().map(|s| (s.1, "b", s.3)))
        .collect();
    all.sort();
    let total: u64 = all.iter().map(|s| s.2).sum();
    let drop_n = 3;
    let limit = total - all[..drop_n].iter().map(|s| s.2).sum::<u64>();
    let opts = StoreOptions {
        max_bytes: Some(limit),
        ..opts_1s()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let report = store.apply_retention().unwrap();
    assert_eq!(report.deleted_segments, drop_n as u64);
    let left_a = testing::segments(&store, "a").unwrap();
    let left_b = testing::segments(&store, "b").unwrap();
    let gone_a = all[..drop_n].iter().filter(|s| s.1 == "a").count();
    assert_eq!(left_a, a[gone_a..].to_vec());
    assert_eq!(left_b, b[drop_n - gone_a..].to_vec());
    assert!(
        gone_a >= 1 && gone_a < drop_n,
        "both cameras lose their oldest"
    );
}

fn opts_1s() -> StoreOptions {
    opts(Duration::from_secs(1))
}

/// Found by the crash-point harness (docs/store.md "Crash-point testing"): retention that
/// deleted old segments of the section being recorded was undone in the section row by the
/// recorder's next flush (it wrote its own running totals, deleted segments included), so
/// the section kept counting deleted footage and retention went on deleting until only the
/// segment being written was left.
#[test]
fn retention_while_one_long_section_records_keeps_the_limit_not_less() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        segment_duration: Duration::from_secs(1),
        max_bytes: Some(200_000),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    record(&store, "cam", T0, 30 * SEC);
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.sections.len(), 1, "{:?}", info.sections);
    let s = &info.sections[0];
    let segs = testing::segments(&store, "cam").unwrap();
    let (bytes, frames) = segs.iter().fold((0, 0), |(b, f), s| (b + s.3, f + s.4));
    assert_eq!(
        (s.bytes, s.frames),
        (bytes, frames),
        "section row against its segments"
    );
    assert_eq!(s.start, segs[0].1);
    // About the limit is kept (the newest segments), not one segment.
    assert!(
        bytes <= 200_000 && bytes > 120_000,
        "{bytes} bytes in {} segments",
        segs.len()
    );
    assert!(segs.len() >= 3, "{segs:?}");
}
