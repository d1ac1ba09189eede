//! MJPEG over the ONVIF JPEG header extension end to end (docs/mjpeg.md): GStreamer's
//! `rtspsrc ! decodebin` (rtpjpegdepay, then a JPEG decoder) decodes 2560x1440 and 3840x2160 cameras (it reads
//! `a=x-dimensions`, not the extension), ffprobe sees a 640x480 camera as before, and a
//! recorded 2560x1440 camera replays over TCP with 0xABAC followed by the JPEG extension
//! on the first packet of each frame, rebuilt byte for byte as recorded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ipcamd_proto::packet::jpeg::JpegDepacketizer;
use ipcamd_proto::packet::Depacketizer;

fn mjpeg_camera(name: &str, w: u32, h: u32) -> String {
    format!("[[camera]]\nname = \"{name}\"\nvideo = \"mjpeg\"\nwidth = {w}\nheight = {h}\nfps = 5\naudio = false\nrecord = false\n")
}

/// `rtspsrc ! decodebin` (rtpjpegdepay, then a JPEG decoder) over TCP for 3 s, through
/// tests/clients/gst_play.py: its JSON line (decoded frames, decoded caps).
///
/// Not `gst-launch-1.0 ... identity eos-after=N`: at the end of such a pipeline GStreamer
/// 1.22's rtspsrc sends PAUSE, and going to READY it waits only `teardown-timeout` (100 ms)
/// for its PAUSE and TEARDOWN before closing. A 3840x2160 frame is a few MB, and it is
/// ahead of the PAUSE answer on the connection; on a loaded machine (a CI run) gst-launch
/// then exited 1 with "Could not send message. (Received end-of-file)" after the frames
/// were decoded (rare: 45 runs here, 20 of them under load, did not repeat it). The
/// script reports the errors while it plays, which is what an application sees.
fn gst_decode(url: &str) -> String {
    require_tool("gst-launch-1.0", "gstreamer1.0-tools");
    let python = std::path::Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_play.py");
    let (ok, out, err) = run_with_timeout(
        Command::new(python).args([script, url, "tcp", "3"]),
        Duration::from_secs(60),
    );
    assert!(ok, "GStreamer failed:\n{out}\n{err}");
    out
}

#[test]
fn gstreamer_decodes_large_mjpeg() {
    let server = start_server(&format!(
        "{}{}",
        mjpeg_camera("qhd", 2560, 1440),
        mjpeg_camera("uhd", 3840, 2160)
    ));
    // The x-dimensions attribute is taken from the last frame: let one be made.
    std::thread::sleep(Duration::from_secs(2));
    for (cam, w, h) in [("qhd", 2560, 1440), ("uhd", 3840, 2160)] {
        let out = gst_decode(&server.url(cam));
        let caps = format!("width=(int){w}, height=(int){h}");
        assert!(
            out.contains("video/x-raw") && out.contains(&caps),
            "{cam}: no decoded {w}x{h} caps:\n{out}"
        );
        // 5 fps for 3 s, less the start (connecting, the jitter buffer's 200 ms).
        assert!(
            !out.contains("\"video\": 0,") && !out.contains("\"video\": 1,"),
            "{cam}: fewer than 2 frames decoded:\n{out}"
        );
    }
    let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
    assert!(!log.contains("cannot packetize"), "{log}");
}

#[test]
fn ffprobe_small_mjpeg_unchanged() {
    let server = start_server(&mjpeg_camera("vga", 640, 480));
    let out = ffprobe_streams(&server.url("vga"), &[]);
    assert!(out.contains("codec_name=mjpeg"), "{out}");
    assert!(
        out.contains("width=640") && out.contains("height=480"),
        "{out}"
    );
}

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000;

#[test]
fn replay_carries_abac_then_the_jpeg_extension() {
    let dir = test_dir();
    let camera = mjpeg_camera("mj", 2560, 1440);
    let cfg = dir.join("import.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ndata_dir = \"{}\"\n{camera}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    run_ok(
        ipcamd()
            .args([
                "import",
                "--camera",
                "mj",
                "--synthetic",
                "--duration",
                "2s",
            ])
            .args(["--start", "2026-01-01T00:00:00Z", "--config"])
            .arg(&cfg),
    );
    // What was recorded.
    let recorded: Vec<Vec<u8>> = {
        let store =
            ipcamd_store::Store::open_read_only(&dir.join("data").join("recordings")).unwrap();
        let mut r = store.reader("mj").unwrap();
        r.seek(T0, ipcamd_store::Direction::Forward).unwrap();
        let mut v = Vec::new();
        while let Some(f) = r.next_forward().unwrap() {
            v.push(f.data.to_vec());
        }
        v
    };
    assert!(recorded.len() >= 9, "{} frames recorded", recorded.len());
    let server = start_server_in(dir, "", &camera);
    let url = server.url("replay/mj");
    let mut s = TcpStream::connect(server.rtsp_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = Vec::new();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut cseq = 0;
    let mut request =
        |s: &mut TcpStream, buf: &mut Vec<u8>, packets: &mut Vec<Vec<u8>>, head: String| {
            cseq += 1;
            let (first, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
            s.write_all(format!("{first}\r\nCSeq: {cseq}\r\n{rest}\r\n").as_bytes())
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                drain(buf, packets);
                if buf.first().is_some_and(|&b| b != b'$') {
                    if let Some(end) = find(buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if buf.len() >= end + 4 + len {
                            buf.drain(..end + 4 + len);
                            return head;
                        }
                    }
                }
                assert!(Instant::now() < deadline, "no answer");
                fill(s, buf);
            }
        };
    let head = request(
        &mut s,
        &mut buf,
        &mut packets,
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nRequire: onvif-replay\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"),
    );
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");
    let session = session_id(&head);
    let head = request(
        &mut s,
        &mut buf,
        &mut packets,
        format!("PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRequire: onvif-replay\r\nRange: clock=20260101T000000Z-20260101T000002Z\r\nRate-Control: no\r\n"),
    );
    assert!(head.starts_with("RTSP/1.0 200"), "{head}");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        fill(&mut s, &mut buf);
        drain(&mut buf, &mut packets);
    }
    // Channel 0 only; the first packet of a frame is the one after a marker.
    let mut d = JpegDepacketizer::new();
    let mut rebuilt = Vec::new();
    let mut first = true;
    for p in &packets {
        if first {
            assert!(
                p.len() > 36 && p[0] & 0x10 != 0,
                "first packet without extension"
            );
            assert_eq!(&p[12..14], &[0xab, 0xac]);
            let words = u16::from_be_bytes([p[14], p[15]]) as usize;
            assert!(words > 3, "extension length {words}");
            // Word 4 of the extension content: the JPEG extension's start code and length.
            assert_eq!(&p[28..30], &[0xff, 0xd8]);
            let jpeg_words = u16::from_be_bytes([p[30], p[31]]) as usize;
            assert_eq!(words, 3 + 1 + jpeg_words);
            // Its payload: marker segments (a DQT or APP0 first), SOS last.
            assert_eq!(p[32], 0xff);
            let body = &p[32..32 + jpeg_words * 4];
            assert_eq!(&body[body.len() - 14..body.len() - 12], &[0xff, 0xda]);
        } else {
            // Later packets: the replay extension alone (docs/replay.md).
            assert!(
                p[0] & 0x10 != 0 && p[12..16] == [0xab, 0xac, 0, 3],
                "later packet"
            );
        }
        first = p[1] & 0x80 != 0;
        let pkt = ipcamd_proto::rtp::parse_rtp(p).unwrap();
        d.push(&pkt).unwrap();
        while let Some(u) = d.pull() {
            rebuilt.push(u.data.to_vec());
        }
    }
    assert!(rebuilt.len() >= 9, "{} frames replayed", rebuilt.len());
    for (i, f) in rebuilt.iter().enumerate() {
        assert!(f == &recorded[i], "frame {i} differs from the recorded one");
    }
    // GStreamer's depayloader reads the size from the replay SDP's x-dimensions (it
    // ignores the extension) and decodes the recording at its size.
    let out = gst_decode(&url);
    assert!(
        out.contains("video/x-raw") && out.contains("width=(int)2560, height=(int)1440"),
        "no decoded 2560x1440 caps in the replay:\n{out}"
    );
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = vec![0u8; 1 << 16];
    match s.read(&mut chunk) {
        Ok(0) => panic!("server closed the connection"),
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(_) => {}
    }
}

/// Moves whole interleaved frames of channel 0 from `buf` to `packets`.
fn drain(buf: &mut Vec<u8>, packets: &mut Vec<Vec<u8>>) {
    while buf.first() == Some(&b'$') && buf.len() >= 4 {
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            break;
        }
        if buf[1] == 0 {
            packets.push(buf[4..4 + len].to_vec());
        }
        buf.drain(..4 + len);
    }
}
