//! A real crash: `store-crash-helper` records into a store and is killed with SIGKILL;
//! the store must reopen consistent, having lost at most about one flush interval.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ipcamd_store::{now_micros, testing, Direction, Store, StoreOptions};

const FLUSH_MS: i64 = 500;

#[test]
fn kill_9_loses_at_most_one_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-helper"))
        .arg(dir.path())
        .args(["cam", &FLUSH_MS.to_string(), "1000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "recording");
    // Kill at a varying phase of the flush cycle.
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % FLUSH_MS as u64;
    std::thread::sleep(Duration::from_millis(3000 + jitter));
    // While it records, nobody else may open the store.
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::default()),
        Err(ipcamd_store::StoreError::Locked(_))
    ));
    let killed_at = now_micros();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (logs, _guard) = capture_logs();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.sections.len(), 1);
    let s = &info.sections[0];
    assert!(!s.recording);
    let lost = killed_at - s.end;
    eprintln!(
        "kill -9: {} frames kept over {} ms; lost the last {} ms (flush interval {FLUSH_MS} ms)\n{}",
        s.frames,
        (s.end - s.start) / 1000,
        lost / 1000,
        logs.text()
    );
    assert!(s.end - s.start > 2 * SEC, "recorded {} µs", s.end - s.start);
    assert!(
        (0..=(FLUSH_MS + 500) * 1000).contains(&lost),
        "lost {lost} µs"
    );

    // Consistent: every file exactly as long as its row, every unit readable and plausible,
    // no gaps in the video.
    let segs = testing::segments(&store, "cam").unwrap();
    assert!(segs.len() >= 2);
    for seg in &segs {
        let path = dir.path().join("cam").join(format!("{}.seg", seg.0));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), seg.3, "{path:?}");
    }
    let mut r = store.reader("cam").unwrap();
    assert_eq!(r.seek(s.start, Direction::Forward).unwrap(), Some(s.start));
    let frames = read_all_forward(&mut r);
    assert_eq!(frames.len() as u64, s.frames);
    let video: Vec<_> = frames.iter().filter(|f| f.track == 0).collect();
    assert!(video
        .iter()
        .all(|f| f.data.starts_with(&[0, 0, 0, 1]) || f.data.starts_with(&[0, 0, 1])));
    for w in video.windows(2) {
        assert_eq!(w[1].wallclock - w[0].wallclock, 40_000);
    }
    assert!(frames.last().unwrap().end_of_section);
}

/// The short run of the crash-point harness (docs/store.md "Crash-point testing"; the full
/// run is `store-crashpoint run DIR` with its defaults): random SIGKILLs, every targeted
/// point once, two killed imports, power-loss snapshots. About 30 s.
#[test]
fn crash_point_harness_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_store-crashpoint"))
        .arg("run")
        .arg(dir.path())
        .args([
            "--random",
            "6",
            "--targeted",
            "1",
            "--imports",
            "2",
            "--snapshots",
            "4",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the harness found a problem (above)");
    assert!(text.contains("units checked byte for byte"), "{text}");
}
