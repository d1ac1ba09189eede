//! Continuous recording as a user meets it: the server records cam1, a restart makes two
//! sections with a gap (seen through the HTTP JSON API), a `kill -9` loses no more than
//! the flush interval, and footage imported from an ffmpeg-made MP4 with the CLI comes
//! back out of `ipcamd export` and the HTTP export with the right frames (ffprobe).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn recording(port: u16) -> serde_json::Value {
    let (head, body) = http_get(port, "/api/recordings/cam1");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_slice(&body).unwrap()
}

fn iso_secs(v: &serde_json::Value) -> f64 {
    let t = ipcamd_proto::time::parse_utc(v.as_str().unwrap()).unwrap();
    t as f64 / 1e6
}

fn stop(server: &mut ServerProc, signal: &str) {
    let pid = server.child.id().to_string();
    Command::new("kill").args([signal, &pid]).status().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn restart_makes_two_sections_with_a_gap() {
    let mut server = start_server(SMALL_CAMERA);
    std::thread::sleep(Duration::from_secs(4));
    stop(&mut server, "-TERM");
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    std::thread::sleep(Duration::from_secs(3));
    let r = recording(server.http_port);
    let sections = r["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2, "{r:#}");
    let (s0, s1) = (&sections[0], &sections[1]);
    let gap = iso_secs(&s1["start"]) - iso_secs(&s0["end"]);
    assert!(gap > 1.5, "gap {gap} s between the sections");
    let len0 = iso_secs(&s0["end"]) - iso_secs(&s0["start"]);
    assert!((3.0..6.5).contains(&len0), "first section {len0} s");
    // 25 fps video + 50 audio frames per second.
    let frames0 = s0["frames"].as_u64().unwrap() as f64;
    assert!(
        (frames0 / len0 - 75.0).abs() < 8.0,
        "{frames0} frames in {len0} s"
    );
    assert_eq!(s0["recording"], false);
    assert_eq!(s1["recording"], true);
    assert_eq!(r["tracks"][0]["codec"], "H264");
}

#[test]
fn kill_9_loses_at_most_the_flush_interval() {
    let mut server = start_server_with("", &format!("{SMALL_CAMERA}\n[store]\nflush_ms = 500\n"));
    std::thread::sleep(Duration::from_secs(4));
    let killed_at = ipcamd_media::pacer::now_micros() as f64 / 1e6;
    stop(&mut server, "-KILL");
    server.restart();
    let r = recording(server.http_port);
    let first = &r["sections"][0];
    let lost = killed_at - iso_secs(&first["end"]);
    // Flush interval 500 ms, plus the pacing of the last frame and the fsync itself.
    assert!(lost < 1.2, "lost {lost:.2} s of footage at kill -9:\n{r:#}");
    assert!(first["frames"].as_u64().unwrap() > 150);
}

#[test]
fn import_export_round_trip_checked_by_ffprobe() {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let dir = std::env::temp_dir().join(format!("ipcamd-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.mp4");
    let st = Command::new(&ffmpeg)
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = data_config(&dir, &dir.join("data"));
    let out = run_ok(&mut import_lobby(&cfg, &input));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported lobby: 200 frames"));
    // Export 2.5 s from 2 s in: starts at the keyframe at 2 s, ends at 4.5 s.
    let exported = dir.join("out.mp4");
    run_ok(
        ipcamd()
            .args([
                "export",
                "--camera",
                "lobby",
                "--from",
                "2026-01-01T10:00:02.100Z",
                "--to",
                "2026-01-01T10:00:04.500Z",
                "--config",
            ])
            .arg(&cfg)
            .arg(&exported),
    );
    let probe = Command::new(&ffprobe)
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,duration",
            "-show_entries",
            "frame=key_frame",
            "-of",
            "compact",
        ])
        .arg(&exported)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success(), "{text}");
    let keys = text.lines().filter(|l| l.contains("key_frame=1")).count();
    let frames = text.lines().filter(|l| l.starts_with("frame|")).count();
    // Frames 50..=112 (2.0 s .. 4.48 s): 63 frames, keyframes at 50 and 75 and 100.
    assert!(
        (62..=64).contains(&frames),
        "{frames} frames exported:\n{text}"
    );
    assert_eq!(keys, 3, "{text}");
    let first_is_key = text
        .lines()
        .find(|l| l.starts_with("frame|"))
        .unwrap()
        .contains("key_frame=1");
    assert!(first_is_key);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_export_downloads_a_playable_mp4() {
    let server = start_server(SMALL_CAMERA);
    std::thread::sleep(Duration::from_secs(5));
    let r = recording(server.http_port);
    let url = r["export_url"].as_str().unwrap().to_owned();
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    let (head, body) = http_get(server.http_port, &path);
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("video/mp4"),
        "{head}"
    );
    let file = server.dir.join("dl.mp4");
    std::fs::write(&file, &body).unwrap();
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let probe = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let d: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(d > 3.0, "exported duration {d} s");
    let (head, _) = http_get(
        server.http_port,
        "/api/recordings/cam1/export.mp4?from=bad&to=x",
    );
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (head, _) = http_get(server.http_port, "/api/recordings/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

/// A configuration in `dir` whose recordings go under `data`.
fn data_config(dir: &std::path::Path, data: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!("[server]\ndata_dir = \"{}\"\n", data.display()),
    )
    .unwrap();
    cfg
}

/// `ipcamd import INPUT` as camera "lobby" from 2026-01-01T10:00:00Z.
fn import_lobby(cfg: &std::path::Path, input: &std::path::Path) -> Command {
    let mut c = ipcamd();
    c.args([
        "import",
        "--camera",
        "lobby",
        "--start",
        "2026-01-01T10:00:00Z",
    ])
    .arg("--config")
    .arg(cfg)
    .arg(input);
    c
}

/// Mounts a tmpfs of `size` on `dir` (the test needs root and fails without); unmounted
/// and removed with its parent when the guard drops.
fn small_fs(dir: &std::path::Path, size: &str) -> impl Drop {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "cannot mount a tmpfs on {} (this test needs root: run the tests as root, as \
         scripts/test.sh does in CI)",
        dir.display()
    );
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    Umount(dir.to_path_buf())
}

/// An import that runs out of disk says how many frames it could not store and exits
/// with an error (it used to print only the frames stored, and succeed).
#[test]
fn import_onto_a_full_disk_fails_naming_the_frames_not_stored() {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let dir = fresh_dir("ipcamd-import-full");
    let input = dir.join("in.mp4");
    let st = Command::new(&ffmpeg)
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25")
        .args(["-t", "12", "-c:v", "libx264", "-b:v", "2M", "-g", "25"])
        .args(["-pix_fmt", "yuv420p"])
        .arg(&input)
        .status()
        .unwrap();
    assert!(st.success());
    let size = std::fs::metadata(&input).unwrap().len();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _fs = small_fs(&data, "8m");
    // Leave about a third of the file's size free.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(data.join("filler")).unwrap();
        let free = 8 * 1024 * 1024 - size / 3;
        f.write_all(&vec![0u8; free as usize]).unwrap();
    }
    let cfg = data_config(&dir, &data);
    let out = import_lobby(&cfg, &input).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(!out.status.success(), "the import succeeded:\n{err}");
    assert!(
        err.contains("frames were not stored because the disk"),
        "{err}"
    );
}

/// Issue 17: after a disk-full stop the cut-off section stayed `"recording": true` in
/// `/api/recordings` (its row could not be closed on the full disk). The data folder is a
/// small tmpfs that a filler file fills up (the test needs root, to mount it, and fails
/// without).
#[test]
fn disk_full_stop_lists_the_cut_off_section_as_not_recording() {
    let dir = fresh_dir("ipcamd-diskfull");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _fs = small_fs(&data, "16m");
    let mut server = start_server_in(
        dir.clone(),
        "",
        &format!("{SMALL_CAMERA}\n[store]\nflush_ms = 200\n"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        recording(server.http_port)["sections"][0]["recording"],
        true
    );
    // Fill the disk.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(data.join("filler")).unwrap();
        let block = vec![0u8; 65536];
        while f.write_all(&block).is_ok() {}
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !server.log().contains("disk full") {
        assert!(
            std::time::Instant::now() < deadline,
            "no disk-full error:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let r = recording(server.http_port);
    let sections = r["sections"].as_array().unwrap();
    assert!(!sections.is_empty(), "{r:#}");
    for s in sections {
        assert_eq!(
            s["recording"], false,
            "recording stopped on the full disk: {r:#}"
        );
    }
    stop(&mut server, "-KILL");
}
