//! ONVIF audio backchannel end to end: SDP negotiation and `Require` handling, GStreamer's
//! `rtspsrc backchannel=onvif` (a client nobody here wrote) talking over TCP and UDP with
//! the WAV output checked for the sent tone's frequency, raw interleaved RTP (before and
//! after PLAY, garbage), and the exclusive talk policy.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const TAG: &str = "www.onvif.org/ver20/backchannel";

#[test]
fn describe_offers_the_backchannel_only_when_asked() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let r = c.request(&format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(r.status, 200);
    assert!(
        !r.body.contains("sendonly") && !r.body.contains("recvonly"),
        "{}",
        r.body
    );

    let r = c.request(&format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nRequire: {TAG}\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.head);
    let sections: Vec<&str> = r.body.split("m=").skip(1).collect();
    assert_eq!(sections.len(), 3, "{}", r.body);
    assert!(sections[0].contains("a=recvonly") && sections[1].contains("a=recvonly"));
    let back = sections[2];
    assert!(
        back.starts_with("audio 0 RTP/AVP 0 8 "),
        "PCMU must be first: {back}"
    );
    assert!(
        back.contains("a=sendonly") && back.contains("a=control:trackID=2"),
        "{back}"
    );
    for f in [
        "G726-16/8000",
        "G726-24/8000",
        "G726-32/8000",
        "G726-40/8000",
        "PCMA/8000",
        "PCMU/16000",
        "MPEG4-GENERIC/16000/1",
        "opus/48000/2",
    ] {
        assert!(back.contains(f), "{f} missing: {back}");
    }
    assert!(back.contains("config=1408"), "{back}");
}

#[test]
fn unsupported_require_tags_get_551_naming_exactly_them() {
    let server = start_server(&format!(
        "{SMALL_CAMERA}\n[[camera]]\nname = \"mute\"\nwidth = 320\nheight = 180\n[camera.backchannel]\nenabled = false\n"
    ));
    let mut c = Client::connect(&server);
    let url = server.url("cam1");
    let r = c.request(&format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nRequire: {TAG}, x-foo\r\n\r\n"
    ));
    assert_eq!(r.status, 551);
    assert_eq!(r.header("Unsupported").as_deref(), Some("x-foo"));
    let r = c.request(&format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 2\r\nRequire: {TAG}\r\n\r\n",
        server.url("mute")
    ));
    assert_eq!(r.status, 551, "a camera without an audio output");
    assert_eq!(r.header("Unsupported").as_deref(), Some(TAG));
    // Accepted on SETUP, PLAY, TEARDOWN too.
    let (_, id) = c.setup(
        &format!("{url}/trackID=2"),
        3,
        "RTP/AVP/TCP;unicast;interleaved=4-5",
        None,
    );
    for (m, n) in [("PLAY", 4), ("TEARDOWN", 5)] {
        let r = c.request(&format!(
            "{m} {url}/ RTSP/1.0\r\nCSeq: {n}\r\nSession: {id}\r\nRequire: {TAG}\r\n\r\n"
        ));
        assert_eq!(r.status, 200, "{m}: {}", r.head);
    }
}

fn gst_talk(server: &ServerProc, proto: &str) {
    require_tool("gst-launch-1.0", "gstreamer1.0-tools");
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_talk.py");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(python).args([script, &server.url("cam1"), proto, "4", "1000"]),
        Duration::from_secs(60),
    );
    assert!(
        ok,
        "GStreamer backchannel over {proto} failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(
        stdout.contains("PCMU"),
        "GStreamer did not pick PCMU: {stdout}"
    );
    let files = wait_for_talk_file(server, 1);
    assert_tone(&files[0], 1000.0, 2.5);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("cam1_") && name.ends_with(".wav"),
        "{name}"
    );
}

#[test]
fn gstreamer_talks_over_tcp_and_the_wav_holds_the_tone() {
    let server = start_server(SMALL_CAMERA);
    gst_talk(&server, "tcp");
}

#[test]
fn gstreamer_talks_over_udp_and_the_wav_holds_the_tone() {
    let server = start_server(SMALL_CAMERA);
    gst_talk(&server, "udp");
}

/// RTP with PCMA (PT 8) carrying a tone, 20 ms per packet.
fn pcma_packets(n: usize, freq: f64, seq0: u16) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            let mut p = vec![0x80, 8, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            p[2..4].copy_from_slice(&(seq0.wrapping_add(k as u16)).to_be_bytes());
            p[4..8].copy_from_slice(&((k * 160) as u32).to_be_bytes());
            for i in 0..160 {
                let t = (k * 160 + i) as f64 / 8000.0;
                let x = (12000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16;
                p.push(ipcamd_audio::g711::linear_to_alaw(x));
            }
            p
        })
        .collect()
}

fn interleaved(ch: u8, p: &[u8]) -> Vec<u8> {
    let mut v = vec![b'$', ch];
    v.extend_from_slice(&(p.len() as u16).to_be_bytes());
    v.extend_from_slice(p);
    v
}

#[test]
fn interleaved_pcma_after_play_is_decoded_before_play_dropped_garbage_survived() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let (_, id) = c.setup(
        &format!("{url}/trackID=2"),
        1,
        "RTP/AVP/TCP;unicast;interleaved=4-5",
        None,
    );
    // Identical SETUP again: idempotent.
    c.setup(
        &format!("{url}/trackID=2"),
        2,
        "RTP/AVP/TCP;unicast;interleaved=4-5",
        Some(&id),
    );
    // Before PLAY: 1 s of a 500 Hz tone, which must not reach the output.
    for p in pcma_packets(50, 500.0, 0) {
        c.s.write_all(&interleaved(4, &p)).unwrap();
    }
    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let start = Instant::now();
    for (k, p) in pcma_packets(150, 800.0, 50).into_iter().enumerate() {
        c.s.write_all(&interleaved(4, &p)).unwrap();
        if k == 40 {
            // Garbage on the backchannel channel and on a channel nobody set up.
            c.s.write_all(&interleaved(4, &[1, 2, 3])).unwrap();
            c.s.write_all(&interleaved(9, &[0xff; 40])).unwrap();
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let r = c.request(&format!(
        "TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "session survived the garbage");
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 800.0, 2.5);
    let mut rd = hound::WavReader::open(&files[0]).unwrap();
    let samples: Vec<i16> = rd.samples::<i16>().filter_map(Result::ok).collect();
    assert!(
        goertzel(&samples, 16000, 500.0) < goertzel(&samples, 16000, 800.0) / 100.0,
        "pre-PLAY audio leaked"
    );
    let secs = samples.len() as f64 / 16000.0;
    assert!(secs < 3.5, "{secs} s written for 3 s sent after PLAY");
}

#[test]
fn second_talker_gets_453_until_the_first_leaves() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let back = format!("{url}/trackID=2");
    let mut a = Client::connect(&server);
    let (_, ida) = a.setup(&back, 1, "RTP/AVP/TCP;unicast;interleaved=0-1", None);
    let mut b = Client::connect(&server);
    let r = b.request(&format!("SETUP {back} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"));
    assert_eq!(r.status, 453, "{}", r.head);
    assert!(r.head.contains("in use"), "{}", r.head);
    // Video for B is still fine.
    let (_, idb) = b.setup(
        &format!("{url}/trackID=0"),
        2,
        "RTP/AVP/TCP;unicast;interleaved=0-1",
        None,
    );
    // A tears down: B gets the output at once.
    let r = a.request(&format!(
        "TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {ida}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    b.setup(&back, 3, "RTP/AVP/TCP;unicast;interleaved=2-3", Some(&idb));
    // B disconnects: a third client gets it.
    drop(b);
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Client::connect(&server);
    c.setup(&back, 1, "RTP/AVP/TCP;unicast;interleaved=0-1", None);
}

#[test]
fn backchannel_through_the_http_tunnel_base64_and_raw_rtp() {
    use base64::Engine;
    let server = start_server(SMALL_CAMERA);
    let http = ("127.0.0.1", server.http_port);
    let url = format!("rtsp://127.0.0.1:{}/cam1", server.http_port);
    let mut get = std::net::TcpStream::connect(http).unwrap();
    get.write_all(
        b"GET /cam1 HTTP/1.0\r\nx-sessioncookie: talk123\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut get, &mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut post = std::net::TcpStream::connect(http).unwrap();
    post.write_all(
        b"POST /cam1 HTTP/1.0\r\nx-sessioncookie: talk123\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n",
    )
    .unwrap();
    let b64 = |data: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes()
    };
    let mut replies = Client::from_stream(get);
    let send = |req: String, replies: &mut Client, post: &mut std::net::TcpStream| {
        post.write_all(&b64(req.as_bytes())).unwrap();
        replies.reply().expect("reply on the GET connection")
    };
    let r = send(
        format!("SETUP {url}/trackID=2 RTSP/1.0\r\nCSeq: 1\r\nRequire: {TAG}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
        &mut replies,
        &mut post,
    );
    assert_eq!(r.status, 200, "{}", r.head);
    let id = r.session_id();
    let r = send(
        format!("PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"),
        &mut replies,
        &mut post,
    );
    assert_eq!(r.status, 200);
    let start = Instant::now();
    for (k, p) in pcma_packets(150, 1200.0, 7).into_iter().enumerate() {
        let frame = interleaved(0, &p);
        // First half base64 inside the POST stream (current ONVIF text), second half raw
        // `$` frames (an older revision).
        if k < 75 {
            post.write_all(&b64(&frame)).unwrap();
        } else {
            post.write_all(&frame).unwrap();
        }
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let r = send(
        format!("TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"),
        &mut replies,
        &mut post,
    );
    assert_eq!(r.status, 200);
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 1200.0, 2.7);
}

#[test]
fn exec_output_gets_raw_pcm_and_mix_policy_admits_two_talkers() {
    let dir = std::env::temp_dir().join(format!("ipcamd-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("out.raw");
    let server = start_server(&format!(
        "{SMALL_CAMERA}[camera.backchannel]\noutputs = [\"exec\"]\nexec = \"cat > {}\"\noutput_rate = 8000\npolicy = \"mix\"\n",
        raw.display()
    ));
    let url = server.url("cam1");
    let back = format!("{url}/trackID=2");
    let mut a = Client::connect(&server);
    let (_, ida) = a.setup(&back, 1, "RTP/AVP/TCP;unicast;interleaved=0-1", None);
    let mut b = Client::connect(&server);
    let (_, idb) = b.setup(&back, 1, "RTP/AVP/TCP;unicast;interleaved=0-1", None);
    for (c, id) in [(&mut a, &ida), (&mut b, &idb)] {
        let r = c.request(&format!(
            "PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
        ));
        assert_eq!(r.status, 200);
    }
    let start = Instant::now();
    let (pa, pb) = (pcma_packets(100, 700.0, 0), pcma_packets(100, 1900.0, 0));
    for k in 0..100 {
        a.s.write_all(&interleaved(0, &pa[k])).unwrap();
        b.s.write_all(&interleaved(0, &pb[k])).unwrap();
        let due = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let bytes = std::fs::read(&raw).unwrap_or_default();
    let samples: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(
        samples.len() > 8000,
        "only {} samples reached the exec output",
        samples.len()
    );
    // Both talkers are in the mix.
    let (p7, p19, p13) = (
        goertzel(&samples, 8000, 700.0),
        goertzel(&samples, 8000, 1900.0),
        goertzel(&samples, 8000, 1300.0),
    );
    assert!(
        p7 > 50.0 * p13 && p19 > 50.0 * p13,
        "mix lacks a talker: {p7:.0} {p19:.0} vs {p13:.0}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
