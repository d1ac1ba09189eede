//! Crash recovery without a real crash: unflushed tails, garbage after the last flush,
//! index rows ahead of the data, missing files, corrupt index rows, garbage sample files,
//! orphan and stray files. Each case is logged and the rest stays readable.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use ipcamd_media::{AccessUnit, Source};
use ipcamd_store::{testing, Direction, Store, StoreOptions, StoredFrame};

fn seg_path(dir: &std::path::Path, camera: &str, id: i64) -> std::path::PathBuf {
    dir.join(camera).join(format!("{id}.seg"))
}

#[test]
fn unflushed_tail_and_garbage_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        flush_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    };
    let flushed: Vec<AccessUnit>;
    {
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        let mut cam = camera(T0);
        let mut rec = store.recorder("cam", cam.tracks()).unwrap();
        let mut units = Vec::new();
        loop {
            let au = cam.next_au().unwrap();
            if au.wallclock >= T0 + 2 * SEC {
                break;
            }
            rec.push(&au).unwrap();
            units.push(au);
        }
        rec.flush().unwrap();
        flushed = units;
        for _ in 0..50 {
            rec.push(&cam.next_au().unwrap()).unwrap();
        }
        rec.simulate_crash();
        let segs = testing::segments(&store, "cam").unwrap();
        assert_eq!(segs.len(), 1);
        // A half-written tail after the last flush.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(seg_path(dir.path(), "cam", segs[0].0))
            .unwrap();
        f.write_all(&[0xab; 1000]).unwrap();
    }
    let (logs, _guard) = capture_logs();
    let store = Store::open(dir.path(), opts).unwrap();
    let text = logs.text();
    assert!(
        text.contains(&format!("kept {} frames", flushed.len())) && text.contains("1000 bytes"),
        "{text}"
    );
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.frames, flushed.len() as u64);
    assert!(!info.sections[0].recording, "recovery closes the section");
    let segs = testing::segments(&store, "cam").unwrap();
    let len = std::fs::metadata(seg_path(dir.path(), "cam", segs[0].0))
        .unwrap()
        .len();
    assert_eq!(len, segs[0].3);
    let mut r = store.reader("cam").unwrap();
    let got = read_all_forward(&mut r);
    assert_eq!(got.len(), flushed.len());
    assert!(got.iter().zip(&flushed).all(|(f, u)| same_unit(f, u)));
    // And recording goes on after recovery.
    record(&store, "cam", T0 + 60 * SEC, SEC);
    assert_eq!(store.recording("cam").unwrap().unwrap().sections.len(), 2);
}

#[test]
fn index_ahead_of_data_is_trimmed_and_missing_files_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts(Duration::from_secs(1));
    let units;
    let segs;
    {
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        units = record(&store, "cam", T0, 4 * SEC);
        segs = testing::segments(&store, "cam").unwrap();
    }
    assert!(segs.len() >= 4, "{segs:?}");
    // The last segment loses its second half (a frame is cut); the second is gone.
    let last = *segs.last().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(seg_path(dir.path(), "cam", last.0))
        .unwrap();
    f.set_len(last.3 / 2).unwrap();
    std::fs::remove_file(seg_path(dir.path(), "cam", segs[1].0)).unwrap();

    let (logs, _guard) = capture_logs();
    let store = Store::open(dir.path(), opts).unwrap();
    let text = logs.text();
    eprintln!("{text}");
    assert!(
        text.contains(&format!("segment {}", last.0)) && text.contains("kept"),
        "{text}"
    );
    assert!(
        text.contains(&format!("segment {}", segs[1].0)) && text.contains("file is missing"),
        "{text}"
    );

    let after = testing::segments(&store, "cam").unwrap();
    assert_eq!(after.len(), segs.len() - 1);
    let trimmed = *after.last().unwrap();
    assert!(trimmed.4 < last.4 && trimmed.3 <= last.3 / 2);
    assert_eq!(
        std::fs::metadata(seg_path(dir.path(), "cam", trimmed.0))
            .unwrap()
            .len(),
        trimmed.3
    );
    // Readable: everything except segment 1 and the cut tail, in order.
    let in_seg =
        |u: &AccessUnit, s: (i64, i64, i64, u64, u64)| u.wallclock >= s.1 && u.wallclock <= s.2;
    let expected: Vec<&AccessUnit> = units
        .iter()
        .filter(|u| !in_seg(u, segs[1]))
        .filter(|u| !in_seg(u, last) || u.wallclock <= trimmed.2)
        .collect();
    let mut r = store.reader("cam").unwrap();
    r.seek(T0, Direction::Forward).unwrap();
    let got = read_all_forward(&mut r);
    assert_eq!(got.len(), expected.len());
    assert!(got.iter().zip(&expected).all(|(f, u)| same_unit(f, u)));
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.frames, expected.len() as u64);
}

#[test]
fn corrupt_index_row_garbage_segment_and_stray_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts(Duration::from_secs(2));
    let units;
    let segs;
    {
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        units = record(&store, "cam", T0, 6 * SEC);
        segs = testing::segments(&store, "cam").unwrap();
    }
    assert_eq!(segs.len(), 3, "{segs:?}");
    // Segment 1: its frame index is garbage. Segment 2: its file is garbage.
    {
        let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
        db.execute(
            "UPDATE segments SET frame_index = x'01ffffffff' WHERE id = ?1",
            [segs[1].0],
        )
        .unwrap();
    }
    let garbage: Vec<u8> = (0..segs[2].3).map(|i| (i * 7 + 13) as u8 | 0x80).collect();
    std::fs::write(seg_path(dir.path(), "cam", segs[2].0), garbage).unwrap();
    std::fs::write(dir.path().join("cam").join("999999.seg"), b"orphan").unwrap();
    std::fs::write(dir.path().join("cam").join("notes.txt"), b"hello").unwrap();

    let (logs, _guard) = capture_logs();
    let store = Store::open(dir.path(), opts).unwrap();
    assert!(
        logs.text().contains("orphan file removed"),
        "{}",
        logs.text()
    );
    assert!(!dir.path().join("cam").join("999999.seg").exists());
    assert!(dir.path().join("cam").join("notes.txt").exists());

    let mut r = store.reader("cam").unwrap();
    assert_eq!(r.seek(T0, Direction::Forward).unwrap(), Some(T0));
    let got = read_all_forward(&mut r);
    let text = logs.text();
    eprintln!("{text}");
    assert!(
        text.contains(&format!("segment {}", segs[1].0)) && text.contains("frame index"),
        "{text}"
    );
    assert!(
        text.contains(&format!("segment {}", segs[2].0)) && text.contains("framing"),
        "{text}"
    );
    let seg0: Vec<&AccessUnit> = units.iter().filter(|u| u.wallclock <= segs[0].2).collect();
    let audio2 = units
        .iter()
        .filter(|u| u.wallclock >= segs[2].1 && u.track == 1)
        .count();
    assert_eq!(got.len(), seg0.len() + audio2);
    assert!(got.iter().zip(&seg0).all(|(f, u)| same_unit(f, u)));
    assert!(got[seg0.len()..].iter().all(|f| f.track == 1));
    // Seeks into the damaged parts neither fail nor panic.
    for t in [segs[1].1 + SEC / 2, segs[2].1 + SEC / 2] {
        for dir in [Direction::Forward, Direction::Reverse] {
            let mut r = store.reader("cam").unwrap();
            let _ = r.seek(t, dir).unwrap();
            while r.next_forward().unwrap().is_some() {}
            while r.prev_gop().unwrap().is_some() {}
        }
    }
    assert!(store.recordings().unwrap().len() == 1);
}

/// A segment file cut short by another program while the store is open (after recovery):
/// the frames the file still holds are read, the rest of that segment is skipped with a
/// warning naming it, and no read touches bytes past the end of the file (segment windows
/// are memory-mapped only up to the file's length, so this is an error, not SIGBUS).
#[test]
fn a_segment_cut_short_while_open_is_read_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts(Duration::from_secs(1));
    let store = Store::open(dir.path(), opts).unwrap();
    let units = record(&store, "cam", T0, 4 * SEC);
    let segs = testing::segments(&store, "cam").unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    let cut = segs[1];
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg_path(dir.path(), "cam", cut.0))
        .unwrap()
        .set_len(cut.3 / 2)
        .unwrap();

    let (logs, _guard) = capture_logs();
    let mut r = store.reader("cam").unwrap();
    r.seek(T0, Direction::Forward).unwrap();
    let got = read_all_forward(&mut r);
    let in_cut = |wallclock| wallclock >= cut.1 && wallclock <= cut.2;
    let (cut_units, others): (Vec<&AccessUnit>, Vec<&AccessUnit>) =
        units.iter().partition(|u| in_cut(u.wallclock));
    let got_cut = got.iter().filter(|f| in_cut(f.wallclock));
    let kept = got_cut.clone().count();
    assert!(
        kept > 0 && kept < cut_units.len(),
        "{kept} of {}",
        cut_units.len()
    );
    assert!(got_cut.zip(&cut_units).all(|(f, u)| same_unit(f, u)));
    let got_others: Vec<&StoredFrame> = got.iter().filter(|f| !in_cut(f.wallclock)).collect();
    assert_eq!(got_others.len(), others.len());
    assert!(got_others.iter().zip(&others).all(|(f, u)| same_unit(f, u)));
    let text = logs.text();
    assert!(
        text.contains(&format!("segment {}", cut.0)) && text.contains("cannot read frame"),
        "{text}"
    );
    // Every window was mapped, the cut one too (up to the file's end): no fallback read.
    assert!(!text.contains("not mapped"), "{text}");
}
