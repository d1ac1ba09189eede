//! A real full disk (a 3 MiB tmpfs, mounted by the test, which needs root and fails
//! without): recording stops cleanly, and the cut-off section no longer says it is being
//! recorded (issue 17: it stayed `"recording": true` in `/api/recordings`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ipcamd_media::Source;
use ipcamd_store::{Store, StoreOptions};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn small_tmpfs(dir: &std::path::Path, size: &str) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(dir.to_path_buf()))
}

/// Writes zeros to `path` until the disk is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
}

#[test]
fn cut_off_section_is_not_recording_after_a_real_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = small_tmpfs(dir.path(), "3m") else {
        panic!("cannot mount a tmpfs (this test needs root: run the tests as root, as scripts/test.sh does in CI)");
    };
    let (logs, _guard) = capture_logs();
    let opts = StoreOptions {
        flush_interval: Duration::ZERO,
        disk_full_retry: Duration::from_millis(100),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let mut cam = camera(T0);
    let mut rec = store.recorder("cam", cam.tracks()).unwrap();
    // A second of footage, then the disk fills up (another file takes the rest).
    let mut n = 0;
    loop {
        let au = cam.next_au().unwrap();
        rec.push(&au).unwrap();
        if au.wallclock >= T0 + SEC {
            break;
        }
    }
    fill(&dir.path().join("filler"));
    while !rec.is_suspended() {
        let au = cam.next_au().unwrap();
        rec.push(&au).unwrap();
        n += 1;
        assert!(n < 1_000_000, "the 3 MiB disk never filled");
    }
    // Still suspended, the recorder alive: nothing is being recorded.
    let info = store.recording("cam").unwrap().unwrap();
    assert!(!info.sections.is_empty(), "{info:?}");
    for s in &info.sections {
        assert!(
            !s.recording,
            "section {} still says recording: {info:?}\n{}",
            s.id,
            logs.text()
        );
    }
    // Room again: recording resumes in a new section, and the cut-off section's row is
    // closed too (another process reading the index sees it stopped).
    std::fs::remove_file(dir.path().join("filler")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    while rec.is_suspended() {
        rec.push(&cam.next_au().unwrap()).unwrap();
        n += 1;
        assert!(n < 1_000_000, "recording never resumed");
    }
    let first = info.sections[0].id;
    let other = Store::open_read_only(dir.path()).unwrap();
    let seen = other.recording("cam").unwrap().unwrap();
    let s = seen.sections.iter().find(|s| s.id == first).unwrap();
    assert!(!s.recording, "{seen:?}\n{}", logs.text());
    assert!(seen.sections.last().unwrap().recording, "{seen:?}");
    rec.close().unwrap();
    let info = store.recording("cam").unwrap().unwrap();
    assert!(info.sections.iter().all(|s| !s.recording), "{info:?}");
    assert_eq!(info.sections.len(), 2, "{info:?}");
}
