//! MP4 export as a user meets it, with the real binary:
//!
//! * a 24-hour recording (synthetic 16x16 at 25 fps with G.711: 2.16 M video frames and
//!   4.32 M audio units, imported with `ipcamd import --synthetic`) downloads over HTTP in
//!   one GET while the server's memory stays flat (peak RSS growth < 32 MiB, sampled from
//!   `/proc/PID/status`); ffprobe reads the file and finds 24 hours; a `Range` request in
//!   the middle returns exactly the same bytes as that slice of the full download; HEAD
//!   gives the same `Content-Length`; an unsatisfiable range gets 416;
//! * while the server records a camera, `ipcamd import` adds another camera and
//!   `ipcamd export` exports the recording camera (ffprobe reads it); importing into the
//!   recording camera is refused with an error that says what to do; the imported camera
//!   also downloads as a fragmented MP4 (`format=fmp4`).
//!
//! ffprobe must be installed: these tests fail without it.

mod common;

use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const DAY_CAMERA: &str = "[[camera]]\nname = \"day\"\nwidth = 16\nheight = 16\nfps = 25\nbitrate_kbps = 64\nrecord = false\n";

/// `VmRSS` and `VmHWM` of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ipcamd(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipcamd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// Sends one request; returns the reader positioned at the body and the response head.
fn request(port: u16, method: &str, path: &str, extra: &str) -> (BufReader<TcpStream>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(256 * 1024, s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    (r, head)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

#[test]
fn a_24_hour_export_streams_over_http_with_flat_memory() {
    require_tool("ffprobe", "ffmpeg");
    let dir = test_dir();
    let import_cfg = dir.join("import.toml");
    std::fs::write(
        &import_cfg,
        format!(
            "[server]\ndata_dir = \"{}\"\n\n{DAY_CAMERA}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = ipcamd(
        &[
            "import",
            "--synthetic",
            "--camera",
            "day",
            "--duration",
            "24h",
            "--start",
            "2026-01-01T00:00:00Z",
        ],
        &import_cfg,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("imported day: 6480000 frames"), "{stderr}");
    eprintln!("imported 24 h in {:.1} s", t.elapsed().as_secs_f64());

    let server = start_server_in(dir, "", DAY_CAMERA);
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let (rss_before, hwm_before) = memory(pid);
    let path = "/api/recordings/day/export.mp4?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";

    // Sample the server's memory every 20 ms during the download.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(memory(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let (mut body, head) = request(server.http_port, "GET", path, "");
    let head_after = started.elapsed();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Content-Type").as_deref(), Some("video/mp4"));
    assert_eq!(header(&head, "Accept-Ranges").as_deref(), Some("bytes"));
    assert_eq!(
        header(&head, "Content-Disposition").as_deref(),
        Some("attachment; filename=\"day-20260101T000000Z.mp4\"")
    );
    let len: u64 = header(&head, "Content-Length").unwrap().parse().unwrap();
    let file = server.dir.join("day.mp4");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).unwrap());
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let mut first_byte = None;
    loop {
        let n = body.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        first_byte.get_or_insert_with(|| started.elapsed());
        w.write_all(&buf[..n]).unwrap();
        got += n as u64;
    }
    w.flush().unwrap();
    let total = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (rss_after, hwm_after) = memory(pid);
    let peak = peak.load(Ordering::Relaxed).max(rss_after);
    eprintln!(
        "24 h export: {len} bytes; head after {:.0} ms, first body byte after {:.0} ms, all in \
         {:.2} s ({:.0} MB/s); server RSS {:.1} MiB before, peak {:.1} MiB during (+{:.1}), \
         {:.1} after; VmHWM {:.1} -> {:.1} MiB",
        head_after.as_secs_f64() * 1e3,
        first_byte.unwrap_or_default().as_secs_f64() * 1e3,
        total.as_secs_f64(),
        len as f64 / total.as_secs_f64() / 1e6,
        rss_before as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        (peak - rss_before.min(peak)) as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        hwm_before as f64 / 1048576.0,
        hwm_after as f64 / 1048576.0,
    );
    assert_eq!(got, len, "body shorter than Content-Length");
    assert!(
        peak - rss_before.min(peak) < 32 << 20,
        "server RSS grew by {} bytes during the export",
        peak - rss_before
    );
    assert!(
        hwm_after.saturating_sub(hwm_before) < 32 << 20,
        "server peak RSS grew from {hwm_before} to {hwm_after}"
    );
    let d = ffprobe_duration(&file);
    assert!((d - 86_400.0).abs() < 1.0, "duration {d} s");

    // A range in the middle: exactly that slice of the full download.
    let (a, b) = (len / 2 - 300_000, len / 2 + 700_000);
    let (mut body, head) = request(
        server.http_port,
        "GET",
        path,
        &format!("Range: bytes={a}-{b}\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes {a}-{b}/{len}"))
    );
    assert_eq!(
        header(&head, "Content-Length"),
        Some((b - a + 1).to_string())
    );
    let mut part = Vec::new();
    body.read_to_end(&mut part).unwrap();
    let mut want = vec![0u8; (b - a + 1) as usize];
    let mut f = std::fs::File::open(&file).unwrap();
    f.seek(SeekFrom::Start(a)).unwrap();
    f.read_exact(&mut want).unwrap();
    assert!(part == want, "range {a}-{b} differs from the full download");
    // The last bytes (a suffix range).
    let (mut body, head) = request(server.http_port, "GET", path, "Range: bytes=-1000\r\n");
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    let mut tail = Vec::new();
    body.read_to_end(&mut tail).unwrap();
    let mut want = vec![0u8; 1000];
    f.seek(SeekFrom::Start(len - 1000)).unwrap();
    f.read_exact(&mut want).unwrap();
    assert!(tail == want);
    // HEAD: the same length, no body.
    let (mut body, head) = request(server.http_port, "HEAD", path, "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Content-Length"), Some(len.to_string()));
    let mut rest = Vec::new();
    body.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // Past the end: 416 with the length.
    let (_, head) = request(
        server.http_port,
        "GET",
        path,
        &format!("Range: bytes={len}-\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes */{len}"))
    );
    let log = server.log();
    assert!(
        !log.contains("ERROR") && !log.contains("export ended early"),
        "{log}"
    );
}

#[test]
fn import_and_export_while_the_server_records() {
    require_tool("ffprobe", "ffmpeg");
    let live = "[[camera]]\nname = \"live\"\nwidth = 160\nheight = 96\nbitrate_kbps = 200\n";
    let server = start_server_in(test_dir(), "", live);
    std::thread::sleep(Duration::from_secs(3));
    let cfg = server.dir.join("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ndata_dir = \"{}\"\n",
            server.dir.join("data").display()
        ),
    )
    .unwrap();

    // Import another camera next to the running server.
    let out = ipcamd(
        &[
            "import",
            "--synthetic",
            "--camera",
            "other",
            "--duration",
            "2m",
            "--start",
            "2026-01-01T00:00:00Z",
        ],
        &cfg,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("importing next to it"), "{stderr}");
    assert!(stderr.contains("imported other: "), "{stderr}");
    // Not into the camera the server records.
    let out = ipcamd(
        &[
            "import",
            "--synthetic",
            "--camera",
            "live",
            "--duration",
            "10s",
        ],
        &cfg,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("camera live: another process") && stderr.contains("record = false"),
        "{stderr}"
    );

    // The server sees the imported footage and goes on recording.
    let (head, body) = http_get(server.http_port, "/api/recordings/other");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let other: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(other["frames"], 9000, "{other:#}");
    let (_, body) = http_get(server.http_port, "/api/recordings/live");
    let rec: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rec["sections"][0]["recording"], true, "{rec:#}");
    let start = rec["sections"][0]["start"].as_str().unwrap().to_owned();

    // Export the recording camera while it records, and the imported one.
    let now = ipcamd_proto::time::format_iso8601(ipcamd_media::pacer::now_micros());
    let live_mp4 = server.dir.join("live.mp4");
    let out = Command::new(env!("CARGO_BIN_EXE_ipcamd"))
        .args(["export", "--camera", "live", "--from", &start, "--to", &now])
        .arg("--config")
        .arg(&cfg)
        .arg(&live_mp4)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = ffprobe_duration(&live_mp4);
    assert!(d > 2.0, "live export of {d} s");
    let other_mp4 = server.dir.join("other.mp4");
    let out = Command::new(env!("CARGO_BIN_EXE_ipcamd"))
        .args([
            "export",
            "--camera",
            "other",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T01:00:00Z",
        ])
        .arg("--config")
        .arg(&cfg)
        .arg(&other_mp4)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = ffprobe_duration(&other_mp4);
    assert!((d - 120.0).abs() < 0.5, "imported export of {d} s");

    // The imported camera as a fragmented MP4 over HTTP: sent whole, its length known.
    let (mut body, head) = request(
        server.http_port,
        "GET",
        "/api/recordings/other/export.mp4?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&format=fmp4",
        "Range: bytes=100-200\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Accept-Ranges").as_deref(), Some("none"));
    let len: usize = header(&head, "Content-Length").unwrap().parse().unwrap();
    let mut data = Vec::new();
    body.read_to_end(&mut data).unwrap();
    assert_eq!(data.len(), len);
    assert_eq!(&data[4..8], b"ftyp");
    assert!(data.windows(4).any(|w| w == b"moof"));
    let fmp4 = server.dir.join("other-f.mp4");
    std::fs::write(&fmp4, &data).unwrap();
    let d = ffprobe_duration(&fmp4);
    assert!((d - 120.0).abs() < 0.5, "fragmented export of {d} s");

    // Still recording, without errors.
    std::thread::sleep(Duration::from_secs(2));
    let (_, body) = http_get(server.http_port, "/api/recordings/live");
    let after: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        after["sections"].as_array().map(Vec::len),
        Some(1),
        "{after:#}"
    );
    assert!(
        after["frames"].as_u64() > rec["frames"].as_u64(),
        "{after:#}"
    );
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
}
