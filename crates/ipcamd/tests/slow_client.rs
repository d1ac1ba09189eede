//! A client that never reads its socket must not slow down the others: two TCP clients
//! play the same camera, one never reads, the other must keep the full frame rate.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn setup_and_play(server: &ServerProc, stream: &mut TcpStream) {
    let url = server.url("cam1");
    stream
        .write_all(
            format!(
                "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_owned();
    stream
        .write_all(format!("PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n").as_bytes())
        .unwrap();
}

#[test]
fn a_client_that_never_reads_does_not_slow_down_another() {
    // MJPEG at high quality: about 2 MB/s, so the idle client's socket buffers fill fast.
    let server = start_server(
        "[[camera]]\nname = \"cam1\"\nvideo = \"mjpeg\"\njpeg_quality = 95\nwidth = 640\nheight = 352\naudio = false\n",
    );
    let mut idle = TcpStream::connect(server.rtsp_addr()).unwrap();
    setup_and_play(&server, &mut idle);
    // Let the idle client's buffers fill.
    std::thread::sleep(Duration::from_secs(3));

    let mut reader = TcpStream::connect(server.rtsp_addr()).unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    setup_and_play(&server, &mut reader);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut frames = 0usize;
    let mut pos = 0usize;
    let mut seen_reply = false;
    let start = Instant::now();
    let measure_from = Duration::from_secs(3); // after the GOP burst
    let mut frames_at_mark = None;
    while start.elapsed() < Duration::from_secs(10) {
        let n = reader.read(&mut chunk).expect("reader stalled");
        assert!(n > 0, "server closed the reading client");
        buf.extend_from_slice(&chunk[..n]);
        if !seen_reply {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                pos = i + 4;
                seen_reply = true;
            } else {
                continue;
            }
        }
        while pos + 4 <= buf.len() {
            assert_eq!(buf[pos], b'$', "framing lost");
            let len = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
            if pos + 4 + len > buf.len() {
                break;
            }
            if buf[pos + 1] == 0 && buf[pos + 5] & 0x80 != 0 {
                frames += 1; // marker bit: last packet of a frame
            }
            pos += 4 + len;
        }
        buf.drain(..pos);
        pos = 0;
        if frames_at_mark.is_none() && start.elapsed() >= measure_from {
            frames_at_mark = Some((frames, Instant::now()));
        }
    }
    let (mark, t) = frames_at_mark.expect("measured");
    let rate = (frames - mark) as f64 / t.elapsed().as_secs_f64();
    assert!(
        rate >= 22.5,
        "reading client got {rate:.1} fps next to an idle client (want 25)"
    );
    drop(idle);
}
