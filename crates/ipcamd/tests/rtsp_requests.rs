//! Raw RTSP over a TCP socket: status codes for good and bad requests, keep-alive, and that
//! the connection (and the server) survive bad input where the standard allows.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn full_session_with_status_codes() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);

    let r = c.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(r.status, 200);
    assert!(r.header("Public").unwrap().contains("GET_PARAMETER"));
    assert_eq!(r.header("CSeq").as_deref(), Some("1"));

    let r = c.request(&format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Base").as_deref(),
        Some(format!("{url}/").as_str())
    );
    assert!(r.body.contains("m=video 0 RTP/AVP 96"), "{}", r.body);
    assert!(r.body.contains("a=rtpmap:96 H264/90000"), "{}", r.body);
    assert!(r.body.contains("sprop-parameter-sets="), "{}", r.body);
    assert!(r.body.contains("m=audio 0 RTP/AVP 0"), "{}", r.body);
    assert!(r.body.contains("a=control:trackID=1"), "{}", r.body);

    let r = c.request(&format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let session = r.header("Session").unwrap();
    assert!(session.ends_with(";timeout=60"), "{session}");
    let id = session.split(';').next().unwrap().to_owned();
    assert!(r.header("Transport").unwrap().contains("interleaved=0-1"));

    // Same track again: idempotent.
    let r = c.request(&format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    assert_eq!(r.status, 200);

    // Multicast only: not offered.
    let r = c.request(&format!(
        "SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nTransport: RTP/AVP;multicast\r\n\r\n"
    ));
    assert_eq!(r.status, 461);

    let r = c.request(&format!(
        "SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"
    ));
    assert_eq!(r.status, 200);

    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\nRange: npt=0.000-\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let range = r.header("Range").unwrap();
    assert!(
        range.starts_with("clock=") && range.ends_with('-'),
        "{range}"
    );
    let info = r.header("RTP-Info").unwrap();
    assert!(
        info.contains(&format!("url={url}/trackID=0;seq=")),
        "{info}"
    );
    assert!(info.contains("rtptime="), "{info}");
    assert!(info.contains("trackID=1"), "{info}");

    // Requests keep working while media flows on the same connection.
    let r = c.request(&format!(
        "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("CSeq").as_deref(), Some("8"));

    let r = c.request(&format!(
        "PAUSE {url}/ RTSP/1.0\r\nCSeq: 9\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);

    // PAUSE and PLAY again, quickly, while media flows: every answer parses, i.e. no
    // interleaved frame was cut in half by a PAUSE.
    for i in 0..10u32 {
        let r = c.request(&format!(
            "PLAY {url}/ RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\n\r\n",
            100 + 2 * i
        ));
        assert_eq!(r.status, 200, "{}", r.head);
        std::thread::sleep(std::time::Duration::from_millis(60));
        let r = c.request(&format!(
            "PAUSE {url}/ RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\n\r\n",
            101 + 2 * i
        ));
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.header("CSeq"), Some((101 + 2 * i).to_string()));
    }

    let r = c.request(&format!(
        "TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 10\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);

    // The session is gone.
    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 11\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 454);
}

#[test]
fn bad_requests_get_the_right_status_and_the_connection_survives() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let cases: &[(&str, u16)] = &[
        ("FOO rtsp://x/cam1 RTSP/1.0\r\nCSeq: 2\r\n\r\n", 501),
        (&format!("DESCRIBE {url}x RTSP/1.0\r\nCSeq: 3\r\n\r\n"), 404),
        (&format!("DESCRIBE {url}/trackID=9 RTSP/1.0\r\nCSeq: 4\r\n\r\n"), 404),
        (&format!("PLAY {url} RTSP/1.0\r\nCSeq: 5\r\n\r\n"), 454),
        (&format!("PLAY {url} RTSP/1.0\r\nCSeq: 6\r\nSession: nosuchsession\r\n\r\n"), 454),
        (&format!("PAUSE {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n"), 454),
        (&format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 8\r\n\r\n"), 454),
        (&format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\n\r\n"), 461),
        (&format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 10\r\nTransport: RAW/RAW/UDP;unicast\r\n\r\n"), 461),
        (&format!("SETUP {url} RTSP/1.0\r\nCSeq: 11\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"), 459),
        (&format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 12\r\nRequire: x-no-such-feature\r\n\r\n"), 551),
        (&format!("ANNOUNCE {url} RTSP/1.0\r\nCSeq: 13\r\n\r\n"), 405),
        (&format!("SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 14\r\nContent-Length: 7\r\n\r\nfoo: 1\n"), 451),
        ("garbage line without version\r\nCSeq: 15\r\n\r\n", 400),
        (&format!("OPTIONS {url} RTSP/1.0\r\n\r\n"), 400),
        (&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 16\r\nBadHeaderNoColon\r\n\r\n"), 400),
    ];
    for (raw, want) in cases {
        let r = c.request(raw);
        assert_eq!(r.status, *want, "for {raw:?}: {}", r.head);
        if let Some(cseq) = raw
            .split("CSeq: ")
            .nth(1)
            .and_then(|s| s.split("\r\n").next())
        {
            if *want != 400 || r.header("CSeq").is_some() {
                assert_eq!(
                    r.header("CSeq").as_deref(),
                    Some(cseq),
                    "CSeq echo for {raw:?}"
                );
            }
        }
        if *want == 551 {
            assert_eq!(
                r.header("Unsupported").as_deref(),
                Some("x-no-such-feature")
            );
        }
    }
    // Still usable.
    let r = c.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 99\r\n\r\n"));
    assert_eq!(r.status, 200);
}

#[test]
fn oversized_head_gets_400_and_close_and_the_server_goes_on() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let huge = "x".repeat(100_000);
    c.send(&format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Big: {huge}\r\n\r\n"
    ));
    let r = c.reply().expect("a 400 before the close");
    assert_eq!(r.status, 400);
    // The connection is closed after the answer.
    let mut rest = Vec::new();
    let _ = c.s.read_to_end(&mut rest);
    // Binary garbage on another connection, then a good client.
    let mut g = TcpStream::connect(server.rtsp_addr()).unwrap();
    let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _ = g.write_all(&junk);
    let mut c2 = Client::connect(&server);
    let r = c2.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n"));
    assert_eq!(r.status, 200);
}

#[test]
fn interleaved_media_arrives_after_play() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let r = c.request(&format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    let id = r.session_id();
    c.send(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
    ));
    // Read raw until the PLAY reply and then media: collect RTP on channel 0, RTCP on 1.
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 65536];
    while start.elapsed() < Duration::from_secs(3) {
        let n = c.s.read(&mut chunk).unwrap();
        raw.extend_from_slice(&chunk[..n]);
    }
    let end = find(&raw, b"\r\n\r\n").unwrap() + 4;
    let mut i = end;
    let (mut rtp, mut rtcp, mut first_nal) = (0, 0, None);
    while i + 4 <= raw.len() {
        assert_eq!(raw[i], b'$', "framing lost at byte {i}");
        let len = u16::from_be_bytes([raw[i + 2], raw[i + 3]]) as usize;
        if i + 4 + len > raw.len() {
            break;
        }
        let pkt = &raw[i + 4..i + 4 + len];
        match raw[i + 1] {
            0 => {
                rtp += 1;
                assert_eq!(pkt[0] >> 6, 2, "RTP version");
                if first_nal.is_none() {
                    first_nal = Some(pkt[12]);
                }
            }
            1 => {
                rtcp += 1;
                assert_eq!(pkt[1], 200, "first RTCP is a sender report");
            }
            ch => panic!("data on channel {ch}, not set up"),
        }
        i += 4 + len;
    }
    assert!(rtp > 50, "{rtp} RTP packets in 3 s");
    assert!(rtcp >= 1, "no RTCP sender report");
    // The first packet starts a keyframe: SPS (7) single NAL, or an FU-A of it.
    let nal = first_nal.unwrap() & 0x1f;
    assert_eq!(
        nal, 7,
        "first video packet is not the SPS of a keyframe (NAL type {nal})"
    );
}
