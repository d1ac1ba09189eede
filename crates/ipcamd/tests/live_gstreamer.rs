//! GStreamer's `rtspsrc ! decodebin ! fakesink` (a client nobody here wrote) against the
//! running server, over TCP and UDP, through a small Python GI driver
//! (tests/clients/gst_play.py) that counts decoded frames.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn play(url: &str, proto: &str, seconds: u32) -> (u64, u64, String) {
    require_tool("gst-launch-1.0", "gstreamer1.0-tools");
    // Debian's interpreter, where python3-gi lives (a pyenv python earlier on PATH has no gi).
    let python = std::path::Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_play.py");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(python).args([script, url, proto, &seconds.to_string()]),
        Duration::from_secs(seconds as u64 + 30),
    );
    assert!(ok, "GStreamer over {proto} failed:\n{stdout}\n{stderr}");
    let num = |key: &str| -> u64 {
        let pat = format!("\"{key}\": ");
        stdout
            .find(&pat)
            .and_then(|i| stdout.get(i + pat.len()..))
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} count in GStreamer output: {stdout}"))
    };
    (num("video"), num("audio"), stdout)
}

fn check(proto: &str, seconds: u64) {
    let server = start_server(SMALL_CAMERA);
    let (video, audio, out) = play(&server.url("cam1"), proto, seconds as u32);
    // A few hundred ms go to connecting and buffering (latency=200).
    assert!(
        video >= (seconds - 1) * 25,
        "{proto}: {video} video frames in {seconds} s: {out}"
    );
    assert!(
        audio >= (seconds - 1) * 25,
        "{proto}: {audio} audio buffers in {seconds} s: {out}"
    );
    assert!(
        out.contains("video/x-raw") && out.contains("audio/x-raw"),
        "{out}"
    );
}

#[test]
fn gstreamer_tcp_decodes() {
    check("tcp", 5);
}

#[test]
fn gstreamer_udp_decodes() {
    check("udp", 5);
}
