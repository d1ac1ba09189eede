//! ffmpeg / ffprobe (libavformat's RTSP client, which nobody here wrote) against the
//! running server, over each transport: TCP interleaved, UDP, and the HTTP tunnel.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn check_counts(transport: &str, (video, audio): (usize, usize), seconds: usize) {
    // 25 fps video and 50 audio packets (20 ms) per second; the first GOP may add up to
    // 2 s of frames at the start, a slow start may lose a little.
    assert!(
        video >= seconds * 25 * 9 / 10,
        "{transport}: only {video} video frames in {seconds} s"
    );
    assert!(
        video <= (seconds + 3) * 25,
        "{transport}: {video} video frames in {seconds} s is too many"
    );
    assert!(
        audio >= seconds * 50 * 8 / 10,
        "{transport}: only {audio} audio frames in {seconds} s"
    );
}

#[test]
fn ffmpeg_tcp_decodes_without_errors() {
    let server = start_server(SMALL_CAMERA);
    let counts = ffmpeg_decode(&server.url("cam1"), "tcp", 5);
    check_counts("tcp", counts, 5);
}

#[test]
fn ffmpeg_udp_decodes_without_errors() {
    let server = start_server(SMALL_CAMERA);
    let counts = ffmpeg_decode(&server.url("cam1"), "udp", 5);
    check_counts("udp", counts, 5);
    // A frame's packets went out in segmented sends (UDP GSO, Linux 4.18+): fewer system
    // calls than packets, none failed; what ffmpeg decoded above is what they carried.
    let (_, body) = http_get(server.http_port, "/api/stats");
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    let (sends, packets) = (
        stats["udp_rtp_sends"].as_u64().unwrap_or(0),
        stats["udp_rtp_packets"].as_u64().unwrap_or(0),
    );
    assert!(
        packets >= 125 && sends < packets,
        "{sends} UDP sends for {packets} RTP packets: {stats}"
    );
    assert_eq!(stats["udp_send_errors"], 0, "{stats}");
}

#[test]
fn ffmpeg_http_tunnel_decodes_without_errors() {
    let server = start_server(SMALL_CAMERA);
    let url = format!("rtsp://127.0.0.1:{}/cam1", server.http_port);
    let counts = ffmpeg_decode(&url, "http", 5);
    check_counts("http", counts, 5);
}

#[test]
fn ffprobe_reports_the_configured_streams() {
    let server = start_server(
        "[[camera]]\nname = \"cam1\"\nwidth = 640\nheight = 360\nbitrate_kbps = 500\n",
    );
    let stdout = ffprobe_streams(&server.url("cam1"), &["-rtsp_transport", "tcp"]);
    assert!(
        stdout.contains("codec_name=h264|width=640|height=360"),
        "{stdout}"
    );
    assert!(
        stdout.contains("codec_name=pcm_mulaw|sample_rate=8000"),
        "{stdout}"
    );
}

#[test]
fn mjpeg_camera_decodes_over_tcp() {
    let server = start_server(
        "[[camera]]\nname = \"mj\"\nvideo = \"mjpeg\"\nwidth = 320\nheight = 176\naudio = false\n",
    );
    let (video, _) = ffmpeg_decode(&server.url("mj"), "tcp", 4);
    assert!(video >= 4 * 25 * 9 / 10, "only {video} JPEG frames in 4 s");
}

#[test]
fn unknown_camera_is_an_error_for_ffmpeg() {
    let server = start_server(SMALL_CAMERA);
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let (ok, _, stderr) = run_with_timeout(
        Command::new(ffprobe).args(["-v", "error", "-rtsp_transport", "tcp", &server.url("nope")]),
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");
}
