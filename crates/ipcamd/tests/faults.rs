//! Fault injection on the real `ipcamd` binary (README "Faults"): the recording folder
//! turning read-only (a read-only bind mount stacked on it: as root, chmod would not stop
//! the server), a slow disk (the store's test hook `IPCAMD_FAULT_WRITE_DELAY_MS`), the wall
//! clock stepping back and forth by an hour (libfaketime), file descriptor exhaustion
//! (`prlimit` on the running server), a file source truncated or corrupt while it plays,
//! and a proxied camera that answers garbage. Each test checks what a user sees: the log
//! (one line per fault, not a flood), `/api/stats` and `/api/recordings`, live readers, and
//! the recovery.
//!
//! The tests run one at a time ([`serial`]): several measure CPU time, RSS or timing.
//! Mounting needs root (CAP_SYS_ADMIN), as CI has; elsewhere that test fails saying so.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;

/// One fault test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn json_get(port: u16, path: &str) -> serde_json::Value {
    let (head, body) = http_get(port, path);
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `GET path` as JSON when the answer is 200.
fn try_json_get(port: u16, path: &str) -> Option<serde_json::Value> {
    let (head, body) = http_get(port, path);
    head.starts_with("HTTP/1.1 200")
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

/// The `/api/stats` object of camera `name`.
fn camera_stats(server: &ServerProc, name: &str) -> serde_json::Value {
    let stats = json_get(server.http_port, "/api/stats");
    stats["cameras"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no camera {name} in /api/stats: {stats:#}"))
}

/// Polls `check` every 100 ms until it holds; fails with `what` and the log after `limit`.
fn wait_for(server: &ServerProc, limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines of `log` (from byte `from` on) that contain `needle`.
fn lines_with<'a>(log: &'a str, from: usize, needle: &str) -> Vec<&'a str> {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .collect()
}

fn pid(server: &ServerProc) -> u32 {
    server.child.id()
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// CPU time (user + system) of process `pid` in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

/// ffmpeg decoding `url` over TCP for `seconds`, in a thread: (video, audio) frames.
fn reader(url: String, seconds: u32) -> std::thread::JoinHandle<Result<(usize, usize), String>> {
    require_tool("ffmpeg", "ffmpeg");
    std::thread::spawn(move || try_ffmpeg_decode(&url, "tcp", seconds))
}

fn iso_secs(v: &serde_json::Value) -> f64 {
    let t = ipcamd_proto::time::parse_utc(v.as_str().expect("a time")).expect("UTC time");
    t as f64 / 1e6
}

/// `mount ARGS...`; fails the test with what is needed when it is not permitted.
fn mount(args: &[&str], target: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount (apt-get install mount): {e}"));
    assert!(
        out.status.success(),
        "mount {args:?} {}: {}\nthis test needs to mount (root or CAP_SYS_ADMIN, as in CI): \
         as root, chmod a-w would not stop the server from writing",
        target.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts (lazily) at the end of the test, failed or not.
struct Umount(PathBuf);

impl Drop for Umount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A synthetic camera with a keyframe every second (segments and sections cut sooner).
fn camera_1s_gop() -> String {
    format!("{SMALL_CAMERA}keyframe_interval_ms = 1000\n")
}

// ---------------------------------------------------------------------------------------
// 1. The recording folder becomes read-only
// ---------------------------------------------------------------------------------------

#[test]
fn read_only_recording_folder_stops_once_and_resumes_in_a_new_section() {
    let _serial = serial();
    // Segments of a second: the next segment file is due within a second or two.
    let server = start_server(&format!(
        "{}\n[store]\nsegment_s = 1\nflush_ms = 200\n",
        camera_1s_gop()
    ));
    let rec = server.dir.join("data/recordings");
    wait_for(&server, Duration::from_secs(10), "first section", || {
        try_json_get(server.http_port, "/api/recordings/cam1")
            .is_some_and(|r| r["sections"][0]["recording"] == true && r["recording"] == true)
    });
    // A read-only mount of the folder over itself: files the server has open stay
    // writable (as with chmod a-w), nothing new can be created in it.
    let rec_str = rec.display().to_string();
    mount(&["--bind", rec_str.as_str()], &rec);
    let _umount = Umount(rec.clone());
    mount(&["-o", "remount,ro,bind"], &rec);
    let t_ro = Instant::now();
    let from = server.log().len();
    let live = reader(server.url("cam1"), 6);
    wait_for(&server, Duration::from_secs(10), "read-only error", || {
        server.log()[from..].contains("read-only")
    });
    // Let at least one retry (every 5 s) fail while read-only.
    std::thread::sleep(Duration::from_secs(6));
    let cam = camera_stats(&server, "cam1");
    assert_eq!(cam["recording"], false, "{cam:#}");
    let why = cam["recording_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("read-only") && why.contains("recordings") && why.contains("retrying"),
        "{cam:#}"
    );
    let r = json_get(server.http_port, "/api/recordings/cam1");
    assert_eq!(r["recording"], false, "{r:#}");
    assert!(
        r["recording_error"]
            .as_str()
            .is_some_and(|e| e.contains("read-only")),
        "{r:#}"
    );
    for s in r["sections"].as_array().expect("sections") {
        assert_eq!(s["recording"], false, "stopped on read-only: {r:#}");
        assert!(iso_secs(&s["end"]) >= iso_secs(&s["start"]), "{r:#}");
    }
    let (video, _) = live
        .join()
        .expect("ffmpeg thread")
        .unwrap_or_else(|e| panic!("live reader while read-only: {e}"));
    assert!(
        video >= 6 * 25 * 7 / 10,
        "live reader got {video} frames in 6 s"
    );
    let log = server.log();
    let stops = lines_with(&log, from, "recording stops");
    assert_eq!(
        stops.len(),
        1,
        "one error line, not a flood:\n{}",
        &log[from..]
    );
    assert!(
        stops[0].contains("read-only") && stops[0].contains("ERROR"),
        "{}",
        stops[0]
    );
    // Everything else logged meanwhile is the live reader's session (debug level).
    let ro_lines = log[from..]
        .lines()
        .filter(|l| !l.contains("ipcamd_server::rtsp"))
        .count();
    assert!(
        ro_lines <= 2,
        "{ro_lines} log lines in {:?} read-only:\n{}",
        t_ro.elapsed(),
        &log[from..]
    );
    println!(
        "read-only: {ro_lines} log line(s) besides the reader's in {:.1} s: {}",
        t_ro.elapsed().as_secs_f64(),
        stops[0]
    );
    // Writable again: recording resumes (at the next retry) in a new section.
    mount(&["-o", "remount,rw,bind"], &rec);
    let t_rw = Instant::now();
    wait_for(
        &server,
        Duration::from_secs(12),
        "recording resumed",
        || server.log()[from..].contains("recording resumed"),
    );
    let resumed_after = t_rw.elapsed();
    std::thread::sleep(Duration::from_millis(600));
    let r = json_get(server.http_port, "/api/recordings/cam1");
    let sections = r["sections"].as_array().expect("sections");
    assert!(sections.len() >= 2, "{r:#}");
    assert_eq!(sections.last().expect("last")["recording"], true, "{r:#}");
    assert!(sections[..sections.len() - 1]
        .iter()
        .all(|s| s["recording"] == false));
    assert_eq!(r["recording"], true, "{r:#}");
    assert_eq!(r["recording_error"], serde_json::Value::Null, "{r:#}");
    let cam = camera_stats(&server, "cam1");
    assert_eq!(cam["recording"], true, "{cam:#}");
    assert_eq!(cam["recording_error"], serde_json::Value::Null, "{cam:#}");
    let log = server.log();
    assert_eq!(lines_with(&log, from, "recording resumed").len(), 1);
    assert!(
        lines_with(&log, from, "recording resumed")[0].contains("writable again"),
        "{log}"
    );
    println!(
        "read-only: recording resumed {:.1} s after the remount",
        resumed_after.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// 2. A slow disk
// ---------------------------------------------------------------------------------------

#[test]
fn slow_disk_keeps_live_readers_bounds_memory_and_counts_drops() {
    let _serial = serial();
    // Every sample-data write sleeps 30 s: the writer thread is stuck in the first flush
    // (after 100 ms), and the queue (1500 frames: 15 s of 50 fps video with audio) fills.
    // MJPEG at quality 90 makes big frames (about 50 KB), so that memory shows.
    let server = start_server_env(
        test_dir(),
        "",
        "[[camera]]\nname = \"cam1\"\nwidth = 640\nheight = 360\nfps = 50\n\
         video = \"mjpeg\"\njpeg_quality = 90\n\n[store]\nflush_ms = 100\n",
        &[("IPCAMD_FAULT_WRITE_DELAY_MS", "30000")],
    );
    let pid = pid(&server);
    assert!(
        server
            .log()
            .contains("test hook IPCAMD_FAULT_WRITE_DELAY_MS=30000"),
        "the hook is not active (a release build?):\n{}",
        server.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let rss0 = rss_kib(pid);
    let live = reader(server.url("cam1"), 5);
    // Wait for the first drop, sampling RSS; the API stays responsive meanwhile.
    let t0 = Instant::now();
    let mut peak = rss0;
    let mut slowest_api = Duration::ZERO;
    let drops_start = loop {
        let asked = Instant::now();
        let cam = camera_stats(&server, "cam1");
        let _ = json_get(server.http_port, "/api/recordings");
        slowest_api = slowest_api.max(asked.elapsed());
        peak = peak.max(rss_kib(pid));
        if cam["recording_dropped_frames"].as_u64().unwrap_or(0) > 0 {
            break Instant::now();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "no drop within 25 s: {cam:#}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let (video, _) = live
        .join()
        .expect("ffmpeg thread")
        .unwrap_or_else(|e| panic!("live reader on a slow disk: {e}"));
    assert!(
        video >= 5 * 50 * 7 / 10,
        "live reader got {video} frames in 5 s"
    );
    // The queue is full: memory stays where it is while frames go on being dropped.
    let rss_full = rss_kib(pid);
    let mut after = rss_full;
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        after = after.max(rss_kib(pid));
    }
    peak = peak.max(after);
    let cam = camera_stats(&server, "cam1");
    let dropped = cam["recording_dropped_frames"].as_u64().unwrap_or(0);
    assert!(
        dropped >= 150,
        "only {dropped} frames dropped in 3 s: {cam:#}"
    );
    // Filling the queue took RSS up by about 2.5 MB/s (MJPEG): 3 s more of an unbounded
    // queue would be 7 MB.
    let fill_rate =
        (rss_full.saturating_sub(rss0)) as f64 / drops_start.duration_since(t0).as_secs_f64();
    assert!(
        after.saturating_sub(rss_full) < 2 * 1024,
        "RSS grew from {rss_full} to {after} KiB in 3 s while the queue was full (it grew \
         {fill_rate:.0} KiB/s while it filled)"
    );
    assert!(
        peak.saturating_sub(rss0) < 64 * 1024,
        "RSS grew from {rss0} to {peak} KiB"
    );
    assert!(
        slowest_api < Duration::from_secs(2),
        "the API took {slowest_api:?} on a slow disk"
    );
    let log = server.log();
    let warned = lines_with(&log, 0, "recording cannot keep up");
    assert_eq!(warned.len(), 1, "logged once, not per frame:\n{log}");

    // SIGTERM while the writer thread is stuck and its queue full: the server waits for
    // the disk 10 s at most (else it would wait 30 s per write), says what it leaves, and
    // exits cleanly.
    let mut server = server;
    let asked = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    let status = loop {
        if let Some(st) = server.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(25),
            "the server did not stop within 25 s of SIGTERM on a stalled disk:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stopped_in = asked.elapsed();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    let log = server.log();
    assert_eq!(
        lines_with(&log, 0, "the disk did not take the queued frames in time").len(),
        1,
        "{log}"
    );
    println!(
        "slow disk: stopped {:.1} s after SIGTERM; first drop {:.1} s after start of the stuck write; RSS {rss0} KiB at \
         start, {rss_full} KiB when the queue was full, {peak} KiB peak; {dropped} frames \
         dropped (counter); live reader {video} frames in 5 s; API at most {} ms",
        stopped_in.as_secs_f64(),
        drops_start.duration_since(t0).as_secs_f64(),
        slowest_api.as_millis()
    );
}

// ---------------------------------------------------------------------------------------
// 3. The wall clock steps back and forth by an hour
// ---------------------------------------------------------------------------------------

fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime.so.1 is not installed: this test needs it (apt-get install \
                 faketime; scripts/test.sh does it)"
            )
        })
}

#[test]
fn wall_clock_steps_make_new_sections_and_replay_stays_ordered() {
    let _serial = serial();
    let lib = libfaketime();
    let dir = test_dir();
    let offset = dir.join("faketime.rc");
    std::fs::write(&offset, "+0\n").expect("faketime file");
    let offset_env = offset.display().to_string();
    let lib_env = lib.display().to_string();
    let server = start_server_env(
        dir,
        "",
        &format!("{}\n[store]\nflush_ms = 200\n", camera_1s_gop()),
        &[
            ("LD_PRELOAD", lib_env.as_str()),
            ("FAKETIME_TIMESTAMP_FILE", offset_env.as_str()),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    // RTCP sender reports follow the (stepped) wall clock, as a camera's would, and ffmpeg
    // times frames by them: it is told to time them by arrival here, so that `-t 10`
    // means 10 s of the reader's own time.
    let url = server.url("cam1");
    let live = std::thread::spawn(move || {
        let ffmpeg = require_tool("ffmpeg", "ffmpeg");
        let (ok, out, err) = run_with_timeout(
            Command::new(ffmpeg)
                .args([
                    "-nostdin",
                    "-v",
                    "error",
                    "-use_wallclock_as_timestamps",
                    "1",
                ])
                .args(["-rtsp_transport", "tcp", "-i", &url, "-t", "10"])
                .args(["-map", "0", "-f", "framecrc", "-"]),
            Duration::from_secs(30),
        );
        if !ok || !err.trim().is_empty() {
            return Err(format!("ffmpeg failed: {err}"));
        }
        Ok((out.lines().filter(|l| l.starts_with("0,")).count(), 0))
    });
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&offset, "-3600\n").expect("step back");
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&offset, "+0\n").expect("step forward");
    std::thread::sleep(Duration::from_secs(3));
    let (video, _) = live
        .join()
        .expect("ffmpeg thread")
        .unwrap_or_else(|e| panic!("live reader across the clock steps: {e}"));
    assert!(
        video >= 10 * 25 * 7 / 10,
        "live reader got {video} frames in 10 s"
    );
    let log = server.log();
    let steps = lines_with(&log, 0, "wall clock stepped");
    assert_eq!(steps.len(), 2, "one line per step:\n{log}");
    assert!(
        steps[0].contains("-3600") && steps[1].contains("+3600"),
        "{steps:?}"
    );
    let r = json_get(server.http_port, "/api/recordings/cam1");
    let sections = r["sections"].as_array().expect("sections");
    assert_eq!(sections.len(), 3, "a section per step: {r:#}");
    let span = |s: &serde_json::Value| (iso_secs(&s["start"]), iso_secs(&s["end"]));
    for s in sections {
        let (start, end) = span(s);
        assert!(end >= start, "negative section: {r:#}");
        assert!(end - start < 5.0, "section longer than recorded: {r:#}");
    }
    // Listed in time order: the footage recorded while the clock was an hour behind (b)
    // comes first, then what was recorded before (a) and after (c) the steps.
    let (b, a, c) = (span(&sections[0]), span(&sections[1]), span(&sections[2]));
    assert!(b.1 <= a.0 && a.1 <= c.0, "sections out of order: {r:#}");
    assert!(((b.0 - a.1) + 3600.0).abs() < 3.0, "step back: {r:#}");
    assert!(((c.0 - b.1) - 3600.0).abs() < 3.0, "step forward: {r:#}");
    // The mediamtx-style listing, in time order.
    let list = json_get(server.http_port, "/list?path=cam1");
    let starts: Vec<f64> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| iso_secs(&s["start"]))
        .collect();
    assert_eq!(starts.len(), 3, "{list:#}");
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{list:#}");
    // An export over the whole stepped range plays, in time order.
    let from = a.0.min(b.0);
    let to = a.1.max(b.1).max(c.1) + 1.0;
    let fmt = |t: f64| ipcamd_proto::time::format_iso8601((t * 1e6) as i64);
    let (head, body) = http_get(
        server.http_port,
        &format!(
            "/api/recordings/cam1/export.mp4?from={}&to={}",
            fmt(from),
            fmt(to)
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let file = server.dir.join("stepped.mp4");
    std::fs::write(&file, &body).expect("write export");
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let (ok, out, err) = run_with_timeout(
        Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&file),
        Duration::from_secs(30),
    );
    assert!(ok && err.trim().is_empty(), "ffprobe on the export: {err}");
    let frames: u64 = out.trim().parse().unwrap_or(0);
    let recorded: u64 = sections
        .iter()
        .map(|s| s["frames"].as_u64().unwrap_or(0))
        .sum();
    // Video is a third of the units (25 of 75 per second).
    assert!(
        frames * 3 + 30 >= recorded && frames > 150,
        "{frames} video frames exported of {recorded} units recorded"
    );
    assert!(!log.contains(" ERROR "), "{log}");
    println!(
        "clock steps: sections (UTC s) before {a:?}, an hour behind {b:?}, after {c:?}; \
         export {} bytes, {frames} video frames; live reader {video} frames in 10 s",
        body.len()
    );
}

// ---------------------------------------------------------------------------------------
// 4. File descriptor exhaustion
// ---------------------------------------------------------------------------------------

/// OPTIONS on a new RTSP connection: Some(status line and reason) or None (no answer).
fn options(server: &ServerProc) -> Option<(TcpStream, String)> {
    let mut s = TcpStream::connect(server.rtsp_addr()).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let url = server.url("cam1");
    s.write_all(format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?.to_owned();
    Some((s, line))
}

#[test]
fn file_descriptor_exhaustion_refuses_new_clients_and_recovers() {
    let _serial = serial();
    let prlimit = require_tool("prlimit", "util-linux");
    let mut server = start_server(SMALL_CAMERA);
    let pid = pid(&server);
    let live = reader(server.url("cam1"), 14);
    std::thread::sleep(Duration::from_secs(2));
    // Room for a dozen more descriptors than the server (with its reader) has now.
    let base = open_fds(pid);
    let limit = base + 12;
    run_ok(
        Command::new(&prlimit)
            .arg("--pid")
            .arg(pid.to_string())
            .arg(format!("--nofile={limit}:{limit}")),
    );
    let from = server.log().len();
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..100 {
        match options(&server) {
            Some((s, line)) if line.contains(" 200 ") => held.push(s),
            Some((_, line)) => refused.push(line),
            None => refused.push("(no answer)".into()),
        }
        if refused.len() >= 3 {
            break;
        }
    }
    assert!(held.len() >= 3, "{} served before exhaustion", held.len());
    assert!(
        refused
            .iter()
            .all(|l| l.contains("503") && l.contains("out of file descriptors")),
        "refused with: {refused:?}\n{}",
        server.log()
    );
    // Still exhausted: more clients keep coming; the server answers them and does not spin.
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut more = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        if let Some((_, line)) = options(&server) {
            assert!(line.contains("503"), "{line}");
            more += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0 / t0.elapsed().as_secs_f64();
    assert!(
        cpu < 0.5,
        "the server used {:.0} % of a core while exhausted",
        cpu * 100.0
    );
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server died"
    );
    let log = server.log();
    let starts = lines_with(&log, from, "out of file descriptors, new connections");
    assert_eq!(starts.len(), 1, "logged once per burst:\n{}", &log[from..]);
    // The reader that was playing before goes on.
    let (video, _) = live
        .join()
        .expect("ffmpeg thread")
        .unwrap_or_else(|e| panic!("the live reader during fd exhaustion: {e}"));
    assert!(
        video >= 14 * 25 * 7 / 10,
        "live reader got {video} frames in 14 s"
    );
    // Connections closed: new clients are served again, and the burst's end is logged.
    let served = held.len();
    drop(held);
    let t_closed = Instant::now();
    // (The server closes the held connections as it reads their ends: a new client may
    // still be refused for a few milliseconds.)
    let url = server.url("cam1");
    wait_for(&server, Duration::from_secs(5), "served again", || {
        let mut c = Client::connect(&server);
        c.send(&format!(
            "DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"
        ));
        c.reply().is_some_and(|r| r.status == 200)
    });
    let recovered = t_closed.elapsed();
    let stats = json_get(server.http_port, "/api/stats");
    let refused_n = stats["limits"]["connections_refused_fds"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused_n >= 3 + more, "{stats:#}");
    assert!(stats["limits"]["accept_failures"].as_u64().unwrap_or(0) >= refused_n);
    let log = server.log();
    let ends = lines_with(&log, from, "accepting connections again");
    assert_eq!(ends.len(), 1, "{}", &log[from..]);
    let burst_lines = log[from..].lines().count();
    println!(
        "fd exhaustion: limit {limit} (server had {base} open), {served} connections served, \
         {refused_n} answered 503, server CPU {:.1} % of a core while exhausted, {burst_lines} \
         log lines for the burst, served again {} ms after the connections closed; {}",
        cpu * 100.0,
        recovered.as_millis(),
        ends[0]
    );
    let _ = server.child.kill();
}

// ---------------------------------------------------------------------------------------
// 5. Sources failing repeatedly
// ---------------------------------------------------------------------------------------

fn test_mp4() -> Vec<u8> {
    std::fs::read(format!(
        "{}/../media/testdata/h264_aac.mp4",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test file")
}

/// The `retry_in_s=N` values of the lines of `log` after `from` that contain `needle`.
fn retries(log: &str, from: usize, needle: &str) -> Vec<u64> {
    lines_with(log, from, needle)
        .iter()
        .filter_map(|l| {
            let v = l.split("retry_in_s=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

fn file_camera(path: &Path) -> ServerProc {
    start_server(&format!(
        "[[camera]]\nname = \"f\"\nsource = \"file\"\npath = \"{}\"\nrecord = false\n",
        path.display()
    ))
}

#[test]
fn file_source_truncated_while_playing_backs_off_and_comes_back() {
    let _serial = serial();
    let original = test_mp4();
    let dir = fresh_dir("ipcamd-faults-file");
    let path = dir.join("lobby.mp4");
    std::fs::write(&path, &original).expect("copy");
    let server = file_camera(&path);
    wait_for(&server, Duration::from_secs(10), "camera f online", || {
        camera_stats(&server, "f")["online"] == true
    });
    let from = server.log().len();
    // Truncated in place (same file, same inode): the source fails when it reads past the
    // new end, and every restart fails to open it (its samples lie beyond the end).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(original.len() as u64 * 2 / 5))
        .expect("truncate");
    wait_for(&server, Duration::from_secs(10), "camera f offline", || {
        camera_stats(&server, "f")["online"] == false
    });
    let t_off = Instant::now();
    let cam = camera_stats(&server, "f");
    let why = cam["offline_reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("lobby.mp4") && why.contains("retrying in"),
        "{cam:#}"
    );
    std::thread::sleep(Duration::from_secs(10));
    let log = server.log();
    let failed = retries(&log, from, "source restart failed");
    assert!(
        failed.len() >= 2 && failed.windows(2).all(|w| w[1] > w[0]),
        "the retry interval grows: {failed:?}\n{}",
        &log[from..]
    );
    let lines = log[from..].lines().count();
    assert!(lines <= 8, "{lines} log lines in 10 s:\n{}", &log[from..]);
    assert_eq!(camera_stats(&server, "f")["online"], false);
    // The file is back: the next retry plays it.
    std::fs::write(&path, &original).expect("restore");
    let t_back = Instant::now();
    wait_for(
        &server,
        Duration::from_secs(20),
        "camera f online again",
        || camera_stats(&server, "f")["online"] == true,
    );
    let back_after = t_back.elapsed();
    let (video, _) = ffmpeg_decode(&server.url("f"), "tcp", 2);
    assert!(video >= 25, "{video} frames after recovery");
    println!(
        "file truncated: {lines} log lines in the first {:.0} s offline, retries after \
         {failed:?} s, online again {:.1} s after the file was restored",
        t_back.duration_since(t_off).as_secs_f64(),
        back_after.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The byte positions of the video packets of an MP4, in order (ffprobe).
fn video_packet_positions(path: &Path) -> Vec<u64> {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let out = run_ok(
        Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "packet=pos", "-of", "csv=p=0"])
            .arg(path),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

#[test]
fn file_source_failing_after_each_restart_backs_off_more_each_time() {
    let _serial = serial();
    let original = test_mp4();
    let dir = fresh_dir("ipcamd-faults-flap");
    let path = dir.join("lobby.mp4");
    std::fs::write(&path, &original).expect("copy");
    // A sample in the middle (1 s into the 2 s file) with a broken NAL length: every
    // restart plays a second, then fails again.
    let positions = video_packet_positions(&path);
    assert!(positions.len() >= 40, "{positions:?}");
    let mut broken = original.clone();
    let at = positions[25] as usize;
    broken[at..at + 4].copy_from_slice(&[0xff; 4]);
    std::fs::write(&path, &broken).expect("corrupt");
    let server = file_camera(&path);
    let t0 = Instant::now();
    let from = 0;
    std::thread::sleep(Duration::from_secs(13));
    let log = server.log();
    let waits = retries(&log, from, "source failed; camera offline");
    assert!(
        waits.len() >= 3 && waits.windows(2).all(|w| w[1] > w[0]),
        "each failure after a restart waits longer: {waits:?}\n{log}"
    );
    let restarts = lines_with(&log, from, "source restarted").len();
    assert!(restarts >= 2, "{log}");
    let lines = log.lines().count();
    assert!(
        lines <= 30,
        "{lines} log lines in {:.0} s:\n{log}",
        t0.elapsed().as_secs_f64()
    );
    let source_lines = lines_with(&log, from, "source ").len();
    // The file is repaired: the next restart plays on.
    std::fs::write(&path, &original).expect("repair");
    let t_fix = Instant::now();
    let failures_before = lines_with(&server.log(), 0, "source failed").len();
    wait_for(
        &server,
        Duration::from_secs(20),
        "camera f plays again",
        || lines_with(&server.log(), 0, "source restarted").len() > restarts,
    );
    let back_after = t_fix.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(camera_stats(&server, "f")["online"], true);
    assert_eq!(
        lines_with(&server.log(), 0, "source failed").len(),
        failures_before,
        "failed again after the repair:\n{}",
        server.log()
    );
    println!(
        "flapping file: waits {waits:?} s, {source_lines} source log lines in 13 s (old \
         behaviour: a retry every second), playing again {:.1} s after the repair",
        back_after.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP listener that answers every connection with garbage and closes it, or (once
/// `good` is set) forwards it to `upstream`. Records when each connection came.
struct JunkCamera {
    port: u16,
    accepts: Arc<Mutex<Vec<Instant>>>,
    good: Arc<AtomicBool>,
}

impl JunkCamera {
    fn start(upstream: std::net::SocketAddr) -> JunkCamera {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind junk camera");
        let port = listener.local_addr().expect("addr").port();
        let accepts = Arc::new(Mutex::new(Vec::new()));
        let good = Arc::new(AtomicBool::new(false));
        let (a, g) = (accepts.clone(), good.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                a.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Instant::now());
                if g.load(Ordering::SeqCst) {
                    let Ok(up) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let (mut c2, mut u2) = match (conn.try_clone(), up.try_clone()) {
                        (Ok(c), Ok(u)) => (c, u),
                        _ => continue,
                    };
                    let mut up = up;
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut u2);
                        let _ = u2.shutdown(std::net::Shutdown::Write);
                    });
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut up, &mut conn);
                        let _ = conn.shutdown(std::net::Shutdown::Write);
                    });
                    continue;
                }
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let mut junk =
                    b"\x00\xffSSH-2.0-junk\r\n<html>not a camera</html>\r\n\r\n".to_vec();
                junk.extend((0..1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
                let _ = conn.write_all(&junk);
            }
        });
        JunkCamera {
            port,
            accepts,
            good,
        }
    }

    fn accepts(&self) -> Vec<Instant> {
        self.accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[test]
fn proxied_camera_answering_garbage_backs_off_and_comes_back() {
    let _serial = serial();
    let upstream = start_server(
        "[[camera]]\nname = \"cam1\"\nwidth = 320\nheight = 180\nbitrate_kbps = 500\nrecord = false\n",
    );
    let junk = JunkCamera::start(upstream.rtsp_addr());
    let server = start_server(&format!(
        "[[camera]]\nname = \"door\"\nsource = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{}/cam1\"\n\
         record = false\n",
        junk.port
    ));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    let accepts = junk.accepts();
    let gaps: Vec<f64> = accepts
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    assert!(
        accepts.len() >= 3 && accepts.len() <= 6,
        "{} connections in 12 s (gaps {gaps:?})\n{}",
        accepts.len(),
        server.log()
    );
    assert!(
        gaps.windows(2).all(|w| w[1] > w[0] * 1.5),
        "the retry interval grows: {gaps:?}"
    );
    let cam = camera_stats(&server, "door");
    assert_eq!(cam["online"], false, "{cam:#}");
    let why = cam["offline_reason"].as_str().unwrap_or_default();
    assert!(!why.is_empty(), "{cam:#}");
    let log = server.log();
    let lines = log.lines().filter(|l| l.contains("door")).count();
    assert!(
        lines <= 2 * accepts.len() + 2,
        "{lines} lines about the camera:\n{log}"
    );
    // The camera is back (the listener now forwards to a real RTSP server).
    junk.good.store(true, Ordering::SeqCst);
    let t_back = Instant::now();
    wait_for(&server, Duration::from_secs(25), "door online", || {
        camera_stats(&server, "door")["online"] == true
    });
    let back_after = t_back.elapsed();
    let (video, _) = ffmpeg_decode(&server.url("door"), "tcp", 2);
    assert!(
        video >= 25,
        "{video} frames from the camera once it is back"
    );
    println!(
        "garbage camera: {} connections in {:.0} s, gaps {gaps:?} s, {lines} log lines about \
         it, reason {why:?}; online {:.1} s after it answered properly",
        accepts.len(),
        t0.elapsed().as_secs_f64() - back_after.as_secs_f64(),
        back_after.as_secs_f64()
    );
}
