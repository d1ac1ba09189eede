//! The playback API compatible with mediamtx's playback server (`/list`, `/get`) with the
//! real binary, on footage imported with `ipcamd import --synthetic` (two sections):
//!
//! * `/list` gives one span per section of `/api/recordings/NAME` (start within 1 ms,
//!   duration within 0.05 s), clipped by `start`/`end`; its `url`s work;
//! * `/get` as MP4 and as fragmented MP4 plays in ffprobe with the asked duration
//!   (±0.2 s); a `Range` request on the MP4 returns exactly that slice of the full
//!   download;
//! * bad parameters get 400 naming the parameter, an unknown path or a range without
//!   footage 404.
//!
//! ffprobe must be installed: these tests fail without it.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const CAMERA: &str = "[[camera]]\nname = \"yard\"\nwidth = 64\nheight = 64\nfps = 25\nbitrate_kbps = 64\nrecord = false\n";

/// Imports `duration` of synthetic footage of `yard` starting at `start`.
fn import(dir: &Path, start: &str, duration: &str) {
    let cfg = dir.join("import.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ndata_dir = \"{}\"\n\n{CAMERA}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    run_ok(
        ipcamd()
            .args([
                "import",
                "--synthetic",
                "--camera",
                "yard",
                "--duration",
                duration,
                "--start",
                start,
                "--config",
            ])
            .arg(&cfg),
    );
}

fn server_with_footage() -> ServerProc {
    let dir = test_dir();
    import(&dir, "2026-01-01T00:00:00Z", "60s");
    import(&dir, "2026-01-01T00:02:00Z", "30s");
    start_server_in(dir, "", CAMERA)
}

fn secs(v: &serde_json::Value) -> f64 {
    let t = ipcamd_proto::time::parse_utc(v.as_str().expect("a time string"))
        .unwrap_or_else(|| panic!("not a time: {v}"));
    t as f64 / 1e6
}

fn json(port: u16, path: &str) -> serde_json::Value {
    let (head, body) = http_get(port, path);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{path}: {head}\n{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

fn status_and_body(port: u16, path: &str) -> (u16, String) {
    let (head, body) = http_get(port, path);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn list_matches_the_recording_sections() {
    let server = server_with_footage();
    let port = server.http_port;
    let rec = json(port, "/api/recordings/yard");
    let sections = rec["sections"].as_array().unwrap().clone();
    assert_eq!(sections.len(), 2, "{rec:#}");
    let list = json(port, "/list?path=yard");
    let spans = list.as_array().unwrap();
    assert_eq!(spans.len(), 2, "{list:#}");
    for (span, section) in spans.iter().zip(&sections) {
        let (s0, e0) = (secs(&section["start"]), secs(&section["end"]));
        assert!(
            (secs(&span["start"]) - s0).abs() <= 0.001,
            "{span} vs {section}"
        );
        let d = span["duration"].as_f64().unwrap();
        assert!((d - (e0 - s0)).abs() <= 0.05, "{span} vs {section}");
        // Fractional seconds, as mediamtx writes them.
        assert!(span["start"].as_str().unwrap().contains('.'), "{span}");
    }
    // About 60 s and 30 s.
    assert!((spans[0]["duration"].as_f64().unwrap() - 60.0).abs() < 0.2);
    assert!((spans[1]["duration"].as_f64().unwrap() - 30.0).abs() < 0.2);

    // Clipped by start/end (percent-encoded, with an offset as mediamtx's clients send).
    let clipped = json(
        port,
        "/list?path=yard&start=2026-01-01T01%3A00%3A10%2B01%3A00&end=2026-01-01T00%3A02%3A10Z",
    );
    let c = clipped.as_array().unwrap();
    assert_eq!(c.len(), 2, "{clipped:#}");
    assert!((secs(&c[0]["start"]) - secs(&sections[0]["start"]) - 10.0).abs() < 0.01);
    assert!(
        (c[1]["duration"].as_f64().unwrap() - 10.0).abs() < 0.05,
        "{clipped:#}"
    );

    // Each span's url is a working /get.
    let url = c[1]["url"].as_str().unwrap();
    let path = url
        .split_once(&format!("127.0.0.1:{port}"))
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{url}"));
    assert!(path.starts_with("/get?path=yard&start="), "{url}");
    let (head, body) = http_get(port, path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let f = server.dir.join("span.mp4");
    std::fs::write(&f, body).unwrap();
    let d = ffprobe_duration(&f);
    assert!((d - 10.0).abs() <= 0.2, "span url gave {d} s");

    // No footage in the range, unknown path: 404.
    let (st, _) = status_and_body(
        port,
        "/list?path=yard&start=2026-01-01T00:01:10Z&end=2026-01-01T00:01:50Z",
    );
    assert_eq!(st, 404);
    let (st, _) = status_and_body(port, "/list?path=nosuch");
    assert_eq!(st, 404);
}

#[test]
fn get_streams_mp4_and_fmp4_with_the_asked_duration() {
    let server = server_with_footage();
    let port = server.http_port;
    for (format, start, duration) in [
        ("mp4", "2026-01-01T00:00:00Z", 5.0),
        ("fmp4", "2026-01-01T00:00:00Z", 5.0),
        ("mp4", "2026-01-01T00:02:10Z", 12.5),
        ("fmp4", "2026-01-01T00:02:10Z", 12.5),
    ] {
        let path = format!("/get?path=yard&start={start}&duration={duration}&format={format}");
        let (head, body) = http_get(port, &path);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(
            header(&head, "Content-Type").as_deref() == Some("video/mp4"),
            "{head}"
        );
        let f = server.dir.join(format!("get-{format}-{duration}.mp4"));
        std::fs::write(&f, &body).unwrap();
        let d = ffprobe_duration(&f);
        assert!(
            (d - duration).abs() <= 0.2,
            "{path}: ffprobe finds {d} s, asked {duration} s"
        );
        let streams = ffprobe_streams(f.to_str().unwrap(), &[]);
        assert!(streams.contains("codec_name=h264"), "{streams}");
        if format == "fmp4" {
            // A fragmented MP4 has movie fragments.
            assert!(body.windows(4).any(|w| w == b"moof"), "{path}: no moof");
        }
    }
    // The default format is fmp4, as with mediamtx.
    let (head, body) = http_get(port, "/get?path=yard&start=2026-01-01T00:00:00Z&duration=2");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        body.windows(4).any(|w| w == b"moof"),
        "default format is not fmp4"
    );
}

#[test]
fn get_mp4_serves_ranges() {
    let server = server_with_footage();
    let port = server.http_port;
    let path = "/get?path=yard&start=2026-01-01T00:00:05Z&duration=20&format=mp4";
    let (head, full) = http_get(port, path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Accept-Ranges").as_deref(), Some("bytes"));
    let len = full.len();
    assert!(len > 10_000, "{len} bytes");
    for (a, b) in [(0, 99), (len / 3, len / 2), (len - 1000, len - 1)] {
        let (status, answer) = http_exchange(
            port,
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nRange: bytes={a}-{b}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status, 206, "{}", answer.lines().next().unwrap_or(""));
        let head = answer.split_once("\r\n\r\n").map(|(h, _)| h).unwrap_or("");
        assert_eq!(
            header(head, "Content-Range").as_deref(),
            Some(format!("bytes {a}-{b}/{len}").as_str())
        );
        // `http_exchange` reads the answer as text: compare raw bytes instead.
        let raw = raw_range(port, path, a, b);
        assert_eq!(
            raw,
            full[a..=b],
            "bytes {a}-{b} differ from the full download"
        );
    }
}

/// The body of a `Range: bytes=a-b` GET, as bytes.
fn raw_range(port: u16, path: &str, a: usize, b: usize) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nRange: bytes={a}-{b}\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    all[end + 4..].to_vec()
}

#[test]
fn bad_parameters_are_named() {
    let server = server_with_footage();
    let port = server.http_port;
    for (path, named) in [
        ("/list", "path"),
        ("/list?path=..%2Fetc", "path"),
        ("/list?path=yard&start=yesterday", "start"),
        ("/list?path=yard&end=2026-13-01T00:00:00Z", "end"),
        (
            "/list?path=yard&start=2026-01-01T00:01:00Z&end=2026-01-01T00:00:00Z",
            "end",
        ),
        ("/get?path=yard&duration=5", "start"),
        ("/get?path=yard&start=2026-01-01T00:00:00Z", "duration"),
        (
            "/get?path=yard&start=2026-01-01T00:00:00Z&duration=-1",
            "duration",
        ),
        (
            "/get?path=yard&start=2026-01-01T00:00:00Z&duration=abc",
            "duration",
        ),
        (
            "/get?path=yard&start=2026-01-01T00:00:00Z&duration=NaN",
            "duration",
        ),
        (
            "/get?path=yard&start=2026-01-01T00:00:00Z&duration=5&format=avi",
            "format",
        ),
        (
            "/get?path=yard&start=2026-01-01T00%ZZ&duration=5",
            "percent",
        ),
    ] {
        let (status, body) = status_and_body(port, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(named), "{path}: {body} does not name {named}");
    }
    // The value is named too.
    let (_, body) = status_and_body(
        port,
        "/get?path=yard&start=2026-01-01T00:00:00Z&duration=abc",
    );
    assert!(body.contains("abc"), "{body}");
    // Unknown path, no footage in range: 404.
    let (status, _) = status_and_body(
        port,
        "/get?path=nosuch&start=2026-01-01T00:00:00Z&duration=5",
    );
    assert_eq!(status, 404);
    let (status, _) = status_and_body(port, "/get?path=yard&start=2030-01-01T00:00:00Z&duration=5");
    assert_eq!(status, 404);
}

#[test]
fn playback_needs_the_viewer_role() {
    let dir = test_dir();
    import(&dir, "2026-01-01T00:00:00Z", "10s");
    add_user(
        &dir.join("data/users.toml"),
        "vera",
        "viewer",
        "pw-vera",
        &[],
    );
    let server = start_server_in(dir, "", CAMERA);
    let port = server.http_port;
    for path in [
        "/list?path=yard",
        "/get?path=yard&start=2026-01-01T00:00:00Z&duration=2",
    ] {
        let (status, _) = status_and_body(port, path);
        assert_eq!(status, 401, "{path} without credentials");
        let out = run_ok(Command::new(require_tool("curl", "curl")).args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--digest",
            "-u",
            "vera:pw-vera",
            &format!("http://127.0.0.1:{port}{path}"),
        ]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{path} as viewer"
        );
    }
}
