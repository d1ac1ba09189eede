//! MP4/MOV file sources served live: ffmpeg decodes them without errors, across the loop
//! point, for H.264+AAC, H.265+AAC and H.264+PCMU (MOV).

mod common;

use std::process::Command;

use common::*;

fn testdata(name: &str) -> String {
    format!("{}/../media/testdata/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Plays `seconds` (longer than the 2 s file, so the loop point is crossed) and returns
/// ffmpeg's per-stream packet counts, failing on any decode error.
fn play_file(file: &str, seconds: u32) -> (usize, usize, String) {
    let server = start_server(&format!(
        "[[camera]]\nname = \"f\"\nsource = \"file\"\npath = \"{}\"\n",
        testdata(file)
    ));
    let (video, audio) = ffmpeg_decode(&server.url("f"), "tcp", seconds);
    let probe = ffprobe_streams(&server.url("f"), &["-rtsp_transport", "tcp"]);
    (video, audio, probe)
}

#[test]
fn h264_aac_mp4_loops_without_errors() {
    let (video, audio, probe) = play_file("h264_aac.mp4", 5);
    assert!(
        probe.contains("codec_name=h264") && probe.contains("codec_name=aac"),
        "{probe}"
    );
    assert!(video >= 5 * 25 * 9 / 10, "{video} video frames in 5 s");
    assert!(audio > 100, "{audio} AAC frames in 5 s");
}

#[test]
fn h265_aac_mp4_loops_without_errors() {
    let (video, audio, probe) = play_file("h265_aac.mp4", 5);
    assert!(probe.contains("codec_name=hevc"), "{probe}");
    assert!(video >= 5 * 25 * 9 / 10, "{video} video frames in 5 s");
    assert!(audio > 100, "{audio} AAC frames in 5 s");
}

#[test]
fn h264_pcmu_mov_loops_without_errors() {
    let (video, audio, probe) = play_file("h264_pcmu.mov", 5);
    assert!(probe.contains("codec_name=pcm_mulaw"), "{probe}");
    assert!(video >= 5 * 25 * 9 / 10, "{video} video frames in 5 s");
    assert!(audio > 100, "{audio} PCMU packets in 5 s");
}

#[test]
fn missing_file_is_a_clear_startup_error() {
    let dir = std::env::temp_dir().join(format!("ipcamd-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\nhttp_listen = \"off\"\n[[camera]]\nname = \"f\"\nsource = \"file\"\npath = \"/nonexistent/x.mp4\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipcamd"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/x.mp4") && err.contains("camera \"f\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
