//! `GET /metrics` with the real binary:
//!
//! * the exposition parses with Python `prometheus_client`'s text parser
//!   (`text_string_to_metric_families`, from the venv `target/onvif-venv` that
//!   scripts/test.sh makes; the test fails when it is missing);
//! * while ffmpeg reads 2 s of `cam1`, its readers gauge is 1; afterwards its frames-in
//!   and bytes-out counters have grown, the RTSP requests are counted by method and
//!   status, and the recorded camera has recording bytes and a section;
//! * with users configured: no credentials 401, a viewer 200, the `[metrics] token` as a
//!   bearer token 200 (a wrong one 401); `[metrics] enabled = false` gives 404.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "prom-3f9a1c27d4e8b650";

/// Parses an exposition with `prometheus_client`; returns every sample as
/// `name{k="v",...}` (labels sorted) -> value, and the family types by family name.
fn parse(text: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples, types = {}, {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    types[fam.name] = fam.type
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        samples["%s{%s}" % (s.name, labels)] = s.value
print(json.dumps({"samples": samples, "types": types}))
"#;
    let mut child = Command::new(venv_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write the exposition");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser output");
    let samples = v["samples"]
        .as_object()
        .expect("samples")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
        .collect();
    let types = v["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    (samples, types)
}

fn metrics_text(port: u16) -> String {
    let (head, body) = http_get(port, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        header(&head, "Content-Type")
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4"),
        "{head}"
    );
    String::from_utf8(body).expect("UTF-8 exposition")
}

fn get(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key}; have {:#?}", sorted_keys(samples)))
}

fn sorted_keys(samples: &HashMap<String, f64>) -> Vec<&String> {
    let mut k: Vec<&String> = samples.keys().collect();
    k.sort();
    k
}

const CAMERAS: &str = "[[camera]]\nname = \"cam1\"\nwidth = 160\nheight = 96\nbitrate_kbps = 200\nrecord = false\n\n[[camera]]\nname = \"rec\"\nwidth = 64\nheight = 64\nbitrate_kbps = 64\n";

#[test]
fn metrics_parse_and_move_when_a_reader_connects() {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let server = start_server(CAMERAS);
    let port = server.http_port;
    std::thread::sleep(Duration::from_millis(1500));
    let (before, types) = parse(&metrics_text(port));
    assert_eq!(get(&before, "ipcamd_camera_readers{camera=\"cam1\"}"), 0.0);
    assert_eq!(get(&before, "ipcamd_camera_online{camera=\"cam1\"}"), 1.0);
    for (family, kind) in [
        ("ipcamd_camera_frames_in", "counter"),
        ("ipcamd_camera_bytes_out", "counter"),
        ("ipcamd_camera_readers", "gauge"),
        ("ipcamd_requests", "counter"),
        ("ipcamd_limit_hits", "counter"),
        ("ipcamd_recording_bytes", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_cpu_seconds", "counter"),
        ("process_open_fds", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "family {family}: {types:#?}"
        );
    }
    assert!(get(&before, "process_resident_memory_bytes{}") > 1e6);
    assert!(get(&before, "process_open_fds{}") >= 3.0);
    assert!(
        get(
            &before,
            "ipcamd_limit_hits_total{limit=\"sessions_refused\"}"
        ) == 0.0
    );

    // ffmpeg reads 2 s of cam1 over TCP; /metrics is sampled meanwhile.
    let mut reader = Command::new(ffmpeg)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            &server.url("cam1"),
            "-t",
            "2",
            "-f",
            "null",
            "-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut max_readers = 0.0f64;
    let mut max_tcp_sessions = 0.0f64;
    // Sampled every 50 ms by reading the lines: with the Python parser in the loop (a few
    // hundred ms a sample on a loaded machine) no sample fell within ffmpeg's read once,
    // on a machine busy with a build besides the tests.
    let sample = |text: &str, key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    loop {
        let during = metrics_text(port);
        max_readers = max_readers.max(sample(&during, "ipcamd_camera_readers{camera=\"cam1\"}"));
        max_tcp_sessions = max_tcp_sessions.max(sample(
            &during,
            "ipcamd_sessions{kind=\"live\",transport=\"tcp\"}",
        ));
        if let Some(status) = reader.try_wait().expect("ffmpeg wait") {
            assert!(status.success(), "ffmpeg failed: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "ffmpeg did not finish in 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(max_readers, 1.0, "cam1's readers gauge during the read");
    assert_eq!(max_tcp_sessions, 1.0, "live TCP sessions during the read");

    let (after, _) = parse(&metrics_text(port));
    let grew = |key: &str, by: f64| {
        let (a, b) = (get(&before, key), get(&after, key));
        assert!(b - a >= by, "{key}: {a} -> {b}, expected to grow by {by}");
    };
    // 2 s at 25 fps (and the GOP backlog); about 200 kbit/s for 2 s.
    grew("ipcamd_camera_frames_in_total{camera=\"cam1\"}", 40.0);
    grew("ipcamd_camera_bytes_out_total{camera=\"cam1\"}", 10_000.0);
    assert_eq!(
        get(&after, "ipcamd_camera_bytes_out_total{camera=\"rec\"}"),
        0.0
    );
    assert!(get(&after, "ipcamd_sessions_created_total{}") >= 1.0);
    for method in ["DESCRIBE", "SETUP", "PLAY"] {
        let key = format!(
            "ipcamd_requests_total{{method=\"{method}\",protocol=\"rtsp\",status=\"200\"}}"
        );
        assert!(get(&after, &key) >= 1.0, "{key}");
    }
    assert!(
        get(
            &after,
            "ipcamd_requests_total{method=\"GET\",protocol=\"http\",status=\"200\"}"
        ) >= 3.0
    );
    // The recorded camera: bytes and a section in the store.
    assert!(get(&after, "ipcamd_recording_bytes{camera=\"rec\"}") > 0.0);
    assert_eq!(
        get(&after, "ipcamd_recording_sections{camera=\"rec\"}"),
        1.0
    );
    assert!(get(&after, "process_cpu_seconds_total{}") > 0.0);
}

#[test]
fn metrics_need_a_viewer_or_the_token() {
    let dir = test_dir();
    add_user(
        &dir.join("data/users.toml"),
        "vera",
        "viewer",
        "pw-vera",
        &[],
    );
    let server = start_server_in(
        dir,
        &format!("\n[metrics]\ntoken = \"{TOKEN}\"\n"),
        "[[camera]]\nname = \"cam1\"\nwidth = 64\nheight = 64\nrecord = false\n",
    );
    let port = server.http_port;
    let (status, _) = http_exchange(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401, "no credentials");
    let curl = require_tool("curl", "curl");
    let out = run_ok(Command::new(&curl).args([
        "-s",
        "--digest",
        "-u",
        "vera:pw-vera",
        "-w",
        "\n%{http_code}",
        &format!("http://127.0.0.1:{port}/metrics"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "viewer");
    let (samples, _) = parse(body);
    assert!(samples.contains_key("ipcamd_camera_frames_in_total{camera=\"cam1\"}"));
    // The viewer's earlier 401 challenge and the anonymous one are counted.
    assert!(
        get(
            &samples,
            "ipcamd_auth_refusals_total{reason=\"unauthorized\"}"
        ) >= 1.0
    );

    let (status, answer) = http_exchange(
        port,
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 200, "token: {answer}");
    parse(&http_body(&answer));
    let (status, _) = http_exchange(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer prom-wrong-token-000\r\nConnection: close\r\n\r\n",
    );
    // Not a digest answer: refused like any unreadable credentials.
    assert!(matches!(status, 400 | 401), "wrong token: {status}");
    // The token grants /metrics only.
    let (status, _) = http_exchange(
        port,
        format!("GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_ne!(status, 200, "the token must not open /api");
}

#[test]
fn metrics_can_be_turned_off() {
    let server = start_server_with(
        "\n[metrics]\nenabled = false\n",
        "[[camera]]\nname = \"cam1\"\nwidth = 64\nheight = 64\nrecord = false\n",
    );
    let (head, _) = http_get(server.http_port, "/metrics");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}
