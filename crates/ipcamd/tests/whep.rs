//! WHEP's HTTP side against hostile and mistaken requests, with the real binary: every
//! refusal has the right status and says why, and the server goes on serving.
//!
//! * a garbage offer: 400 naming the SDP problem; not `application/sdp`: 415; an unknown
//!   camera: 404; a camera without H.264/H.265 (MJPEG): 422; `PATCH`: 405; `DELETE` of an
//!   unknown session: 404;
//! * `[webrtc] max_peers = 2`: the third offer gets 503, and after a `DELETE` a new one
//!   gets 201;
//! * `[webrtc] enabled = false`: 404 saying so.
//!
//! The offers are made by str0m (the SDP a WebRTC client sends); the peers never connect.

mod common;

use std::time::Instant;

use common::*;
use str0m::media::{Direction, MediaKind};
use str0m::Rtc;

fn offer() -> String {
    let mut rtc = Rtc::builder().build(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

fn request(port: u16, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    http_exchange(
        port,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn location(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or_else(|| panic!("no Location: {answer}"))
        .trim()
        .to_owned()
}

#[test]
fn whep_refusals_say_why_and_the_limit_holds() {
    let server = start_server(&format!(
        "[webrtc]\nudp_listen = \"127.0.0.1:0\"\nmax_peers = 2\n\n{SMALL_CAMERA}\n[[camera]]\nname = \"mjpeg\"\nvideo = \"mjpeg\"\nwidth = 64\nheight = 64\naudio = false\nrecord = false\n"
    ));
    let port = server.http_port;
    let sdp = "application/sdp";

    let (status, answer) = request(
        port,
        "POST",
        "/whep/cam1",
        sdp,
        "v=0\r\nthis is not SDP\r\n",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("SDP offer"), "{answer}");
    let (status, answer) = request(port, "POST", "/whep/cam1", "text/plain", &offer());
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = request(port, "POST", "/whep/nope", sdp, &offer());
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("no camera named \"nope\""), "{answer}");
    let (status, answer) = request(port, "POST", "/whep/mjpeg", sdp, &offer());
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("MJPEG"), "{answer}");
    let (status, _) = request(port, "POST", "/whep/..%2F..", sdp, &offer());
    assert_eq!(status, 400);
    let (status, _) = request(
        port,
        "DELETE",
        "/whep/cam1/0123456789abcdef",
        "text/plain",
        "",
    );
    assert_eq!(status, 404);

    // Two peers fit, the third does not.
    let (status, a) = request(port, "POST", "/whep/cam1", sdp, &offer());
    assert_eq!(status, 201, "{a}");
    assert!(a.contains("a=ice-lite"), "{a}");
    assert!(a.contains("Content-Type: application/sdp"), "{a}");
    let (status, patch) = request(
        port,
        "PATCH",
        &location(&a),
        "application/trickle-ice-sdpfrag",
        "a=end-of-candidates\r\n",
    );
    assert_eq!(status, 405, "{patch}");
    let (status, b) = request(port, "POST", "/whep/cam1", sdp, &offer());
    assert_eq!(status, 201, "{b}");
    let (status, c) = request(port, "POST", "/whep/cam1", sdp, &offer());
    assert_eq!(status, 503, "{c}");
    assert!(c.contains("max_peers"), "{c}");
    let (status, _) = request(port, "DELETE", &location(&a), "text/plain", "");
    assert_eq!(status, 200);
    // The peer's task ends and frees its place.
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, d) = request(port, "POST", "/whep/cam1", sdp, &offer());
        if status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "{status}: {d}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // And the server still serves RTSP.
    let (video, _) = ffmpeg_decode(&server.url("cam1"), "tcp", 1);
    assert!(video >= 10, "{video} frames");

    let off = start_server(&format!("[webrtc]\nenabled = false\n\n{SMALL_CAMERA}"));
    let (status, answer) = request(off.http_port, "POST", "/whep/cam1", sdp, &offer());
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("WebRTC is off"), "{answer}");
    assert_eq!(off.bound.webrtc, None);
}
