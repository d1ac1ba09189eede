//! The web console and WebRTC with peers nobody here wrote:
//!
//! * headless Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium from the
//!   venv scripts/test.sh makes; `tests/clients/browser.py`) opens the console: the live
//!   tile of `cam1` plays over WebRTC (its `currentTime` advances by a second and a canvas
//!   grab of the frame has detail), and with `[webrtc] enabled = false` over MSE
//!   (`/live/cam1.mp4`). Screenshots go to `target/test-artifacts/`.
//! * Chromium with a fake microphone playing a 1 kHz tone presses the talk button: the
//!   camera's WAV output holds the tone. A viewer (logged in with Digest) sees no talk
//!   button, and a talk request made from the page anyway gets 403.
//! * the timeline of a recorded camera shows its section, and playing from a time in it
//!   plays the recording (`/get`) in the page.
//! * aiortc (a Python WebRTC stack) as a WHEP client decodes the H.264 frames and talks
//!   Opus (the tone reaches the WAV); a second talker meanwhile gets 409.
//!
//! Every test here fails when Chromium, chromedriver or the venv's clients are missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// One browser at a time: Chromium is heavy on a 2-core machine, and the tests assert
/// playback progress.
static BROWSER: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&d).expect("artifacts folder");
    d
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs `browser.py URL ACTION ARGS...`; returns (success, its JSON report).
fn browser(url: &str, action: &str, args: &[&str]) -> (bool, serde_json::Value) {
    require_tool("chromium", "chromium");
    require_tool("chromedriver", "chromium-driver");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(venv_python())
            .arg(script("browser.py"))
            .args([url, action])
            .args(args),
        Duration::from_secs(90),
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("browser.py printed no JSON ({e}): {stdout}\n{stderr}"));
    (ok, report)
}

/// A 1 kHz tone, 10 s, 48 kHz mono 16-bit, for the fake microphones.
fn tone(dir: &Path) -> PathBuf {
    let path = dir.join("tone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("tone.wav");
    for i in 0..48000 * 10 {
        let x = (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48000.0).sin();
        w.write_sample((x * 12000.0) as i16).expect("tone sample");
    }
    w.finalize().expect("tone.wav");
    path
}

fn console(server: &ServerProc, query: &str) -> String {
    format!("http://127.0.0.1:{}/{query}", server.http_port)
}

fn assert_played(report: &serde_json::Value, transport: &str) {
    let live = &report["live"];
    assert_eq!(live["transport"], transport, "{report:#}");
    assert!(live["width"].as_u64() == Some(320), "{report:#}");
    let (min, max) = (
        live["detail"]["min"].as_f64(),
        live["detail"]["max"].as_f64(),
    );
    assert!(
        matches!((min, max), (Some(a), Some(b)) if b - a > 40.0),
        "the frame looks blank: {report:#}"
    );
    assert!(
        report["advanced_s"].as_f64().unwrap_or(0.0) >= 1.0,
        "{report:#}"
    );
}

#[test]
fn chromium_plays_the_live_tile_over_webrtc_and_over_mse_without_webrtc() {
    let _turn = turn();
    let server = start_server(SMALL_CAMERA);
    let shot = artifacts().join("console-webrtc.png");
    let (ok, report) = browser(
        &console(&server, ""),
        "live",
        &["--screenshot", shot.to_str().expect("path")],
    );
    assert!(ok, "{report:#}\nlog:\n{}", server.log());
    assert_played(&report, "webrtc");
    eprintln!(
        "WebRTC: first frame {} ms after the page asked",
        report["live"]["firstFrameMs"]
    );
    let log = server.log();
    assert!(log.contains("WebRTC peer connected"), "{log}");

    let server = start_server(&format!("[webrtc]\nenabled = false\n\n{SMALL_CAMERA}"));
    let shot = artifacts().join("console-mse.png");
    let (ok, report) = browser(
        &console(&server, ""),
        "live",
        &["--screenshot", shot.to_str().expect("path")],
    );
    assert!(ok, "{report:#}\nlog:\n{}", server.log());
    assert_played(&report, "mse");
    // The page tried WebRTC first and said why it fell back.
    assert!(
        report["live"]["webrtcError"]
            .as_str()
            .is_some_and(|e| e.contains("WebRTC is off")),
        "{report:#}"
    );
}

#[test]
fn chromium_talk_button_sends_the_microphone_to_the_backchannel() {
    let _turn = turn();
    let server = start_server(SMALL_CAMERA);
    let tone = tone(&server.dir);
    let shot = artifacts().join("console-talk.png");
    let (ok, report) = browser(
        &console(&server, "?camera=cam1"),
        "talk",
        &[
            "--tone",
            tone.to_str().expect("path"),
            "--talk-seconds",
            "3",
            "--screenshot",
            shot.to_str().expect("path"),
        ],
    );
    assert!(ok, "{report:#}\nlog:\n{}", server.log());
    assert_eq!(report["me"]["role"], "operator", "{report:#}");
    assert_eq!(report["talk"], "stopped", "{report:#}");
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 1000.0, 2.0);
    let log = server.log();
    assert!(log.contains("browser talk started"), "{log}");
    assert!(log.contains("audio output released"), "{log}");
}

#[test]
fn chromium_timeline_lists_the_recording_and_plays_it_from_a_time() {
    let _turn = turn();
    let server = start_server(SMALL_CAMERA);
    // A few seconds of footage first.
    std::thread::sleep(Duration::from_secs(5));
    let shot = artifacts().join("console-timeline.png");
    let (ok, report) = browser(
        &console(&server, "?camera=cam1"),
        "timeline",
        &["--screenshot", shot.to_str().expect("path")],
    );
    assert!(ok, "{report:#}\nlog:\n{}", server.log());
    assert_eq!(
        report["spans"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert!(
        report["src"]
            .as_str()
            .is_some_and(|s| s.contains("/get?path=cam1&start=")),
        "{report:#}"
    );
    assert_eq!(report["recording"]["width"], 320, "{report:#}");
}

#[test]
fn a_viewer_sees_no_talk_button_and_a_talk_request_is_refused() {
    let _turn = turn();
    // Digest login: the browser answers the server's challenges with the URL's user.
    let dir = test_dir();
    add_user(
        &dir.join("data/users.toml"),
        "vera",
        "viewer",
        "pw-vera",
        &[],
    );
    let server = start_server_in(dir, "", SMALL_CAMERA);
    let url = format!(
        "http://vera:pw-vera@127.0.0.1:{}/?camera=cam1",
        server.http_port
    );
    let (ok, report) = browser(&url, "viewer", &[]);
    assert!(ok, "{report:#}\nlog:\n{}", server.log());
    assert_eq!(report["me"]["role"], "viewer", "{report:#}");
    assert_eq!(report["me"]["user"], "vera", "{report:#}");
    assert_eq!(report["button_visible"], false, "{report:#}");
    assert_eq!(report["talk_request_status"], 403, "{report:#}");
    assert!(server.talk_files().is_empty());
}

/// Runs the aiortc WHEP client against camera `cam1` of the server on HTTP `port`;
/// returns whether it succeeded and its JSON report.
fn aiortc(port: u16, args: &[String]) -> (bool, serde_json::Value) {
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(venv_python())
            .arg(script("aiortc_whep.py"))
            .arg(format!("http://127.0.0.1:{port}"))
            .arg("cam1")
            .args(args),
        Duration::from_secs(60),
    );
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("aiortc_whep.py printed no JSON ({e}): {stdout}\n{stderr}"));
    (ok, report)
}

#[test]
fn aiortc_decodes_h264_and_talks_opus_and_a_second_talker_is_refused() {
    let server = start_server(SMALL_CAMERA);
    let tone = tone(&server.dir);
    let tone = tone.to_str().expect("path").to_owned();
    // The first talker holds the output for 6 s; the second asks meanwhile.
    let first = {
        let args = ["--seconds", "6", "--tone", tone.as_str()].map(str::to_owned);
        let port = server.http_port;
        std::thread::spawn(move || aiortc(port, &args))
    };
    // Until the first one talks.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log().contains("browser talk started") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, second) = aiortc(
        server.http_port,
        &["--seconds", "1", "--tone", &tone].map(str::to_owned),
    );
    assert_eq!(second["talk_status"], 409, "{second:#}");
    assert!(
        second["talk_answer"]
            .as_str()
            .is_some_and(|t| t.contains("someone else talks")),
        "{second:#}"
    );
    let (ok, report) = first.join().expect("first talker");
    assert!(ok, "{report:#}");
    assert_eq!(report["post_status"], 201, "{report:#}");
    assert_eq!(report["talk_status"], 200, "{report:#}");
    // 25 fps for 6 s, decoded by aiortc's H.264 decoder.
    assert!(report["frames"].as_u64().unwrap_or(0) >= 100, "{report:#}");
    assert_eq!(report["width"], 320, "{report:#}");
    assert_eq!(report["delete_status"], 200, "{report:#}");
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 1000.0, 3.0);
    // The counters saw both peers, the talk, and both ends.
    let (_, metrics) = http_get(server.http_port, "/metrics");
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert_eq!(value("ipcamd_webrtc_peers_created_total"), 2.0);
    assert_eq!(value("ipcamd_webrtc_peers_connected_total"), 2.0);
    assert!(
        value("ipcamd_webrtc_talk_packets_total") >= 100.0,
        "{metrics}"
    );
    assert!(
        value("ipcamd_webrtc_frames_sent_total") >= 100.0,
        "{metrics}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, stats) = http_get(server.http_port, "/api/stats");
        let stats: serde_json::Value = serde_json::from_slice(&stats).expect("stats JSON");
        if stats["webrtc"]["peers_open"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "peers left open: {stats:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
