//! Session life cycle: timeout and teardown, keep-alive by RTCP receiver reports (UDP),
//! and a clean stop on SIGTERM (every connection and session ended, within the grace).

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn idle_session_times_out_and_is_freed() {
    let server = start_server_with("session_timeout_s = 2", SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let (r, id) = c.setup(
        &format!("{url}/trackID=0"),
        1,
        &format!("RTP/AVP;unicast;client_port={port}-{}", port + 1),
        None,
    );
    assert!(r.header("Session").unwrap().ends_with(";timeout=2"));
    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    // Media arrives over UDP...
    rtp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = rtp.recv_from(&mut buf).expect("no RTP over UDP");
    assert!(n > 12 && buf[0] >> 6 == 2);
    assert!(r.head.contains("RTP-Info"));
    // ...then, without keep-alive, the session expires (2 s + reaper tick) and media stops.
    std::thread::sleep(Duration::from_millis(3500));
    let r = c.request(&format!(
        "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 454, "session should have timed out");
    // Drain what was in flight, then nothing more comes.
    rtp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while rtp.recv_from(&mut buf).is_ok() {}
    assert!(
        rtp.recv_from(&mut buf).is_err(),
        "media still flowing from {from} after timeout"
    );
    assert!(server.log().contains("session timed out"));
}

/// A TCP reader that takes its media needs no RTSP keep-alive: the writes keep its
/// session, also once the camera's writer (not the session's own task) sends them.
#[test]
fn a_tcp_reader_taking_its_media_keeps_its_session_alive() {
    let server = start_server_with("session_timeout_s = 2", SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let id = play_track0_tcp(&mut c, &url);
    let bytes = c.drain_media(Duration::from_secs(5));
    assert!(bytes > 10_000, "{bytes} bytes of media in 5 s");
    let r = c.request(&format!(
        "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(
        r.status, 200,
        "the session timed out while its media flowed"
    );
    let stats = stats_of(&server, "cam1");
    assert!(
        stats["direct_joins"].as_u64().unwrap_or(0) >= 1,
        "the camera's writer never served the reader: {stats}"
    );
}

#[test]
fn rtcp_receiver_reports_keep_a_udp_session_alive() {
    let server = start_server_with("session_timeout_s = 2", SMALL_CAMERA);
    let url = server.url("cam1");
    let mut c = Client::connect(&server);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (rp, cp) = (
        rtp.local_addr().unwrap().port(),
        rtcp.local_addr().unwrap().port(),
    );
    let (r, id) = c.setup(
        &format!("{url}/trackID=0"),
        1,
        &format!("RTP/AVP;unicast;client_port={rp}-{cp}"),
        None,
    );
    let transport = r.header("Transport").unwrap();
    let server_rtcp: u16 = transport
        .split(';')
        .find_map(|p| p.strip_prefix("server_port="))
        .and_then(|p| p.split('-').nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no server_port in {transport}"));
    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    // An empty receiver report (RFC 3550 §6.4.2): V=2, RC=0, PT=201, length=1, SSRC.
    let rr = [0x80u8, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        rtcp.send_to(&rr, ("127.0.0.1", server_rtcp)).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    // 5 s > timeout of 2 s, yet the session lives because of the reports.
    let r = c.request(&format!(
        "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(
        r.status, 200,
        "receiver reports did not keep the session alive"
    );
    // And the server sent us sender reports on the RTCP port.
    rtcp.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = rtcp.recv_from(&mut buf).expect("no RTCP from the server");
    assert!(n >= 28 && buf[1] == 200, "not a sender report");
}

#[test]
fn tcp_session_ends_when_its_connection_closes() {
    let server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    let id = {
        let mut c = Client::connect(&server);
        let (_, id) = c.setup(
            &format!("{url}/trackID=0"),
            1,
            "RTP/AVP/TCP;unicast;interleaved=0-1",
            None,
        );
        id
    }; // connection dropped
    std::thread::sleep(Duration::from_millis(300));
    let mut c2 = Client::connect(&server);
    let r = c2.request(&format!(
        "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 1\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 454);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = start_server(SMALL_CAMERA);
    let mut c = Client::connect(&server);
    let url = server.url("cam1");
    play_track0_tcp(&mut c, &url);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    assert!(server.log().contains("shutting down"));
}

/// Reads from `s` until the peer closes it (true) or `limit` passes (false).
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    use std::io::Read;
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn shutdown_ends_every_connection_and_session() {
    use std::io::Write;
    let mut server = start_server(SMALL_CAMERA);
    let url = server.url("cam1");
    // A TCP reader that is playing.
    let mut tcp = Client::connect(&server);
    let tcp_id = play_track0_tcp(&mut tcp, &url);
    // A UDP session whose RTSP connection is gone: only the shutdown ends it.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port();
    let udp_id = {
        let mut c = Client::connect(&server);
        let (_, id) = c.setup(
            &format!("{url}/trackID=0"),
            1,
            &format!("RTP/AVP;unicast;client_port={port}-{}", port + 1),
            None,
        );
        id
    };
    // An HTTP/1.1 connection kept alive after its answer.
    let mut http = std::net::TcpStream::connect(("127.0.0.1", server.http_port)).unwrap();
    http.write_all(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = server.child.id().to_string();
    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        closed_within(&mut tcp.s, Duration::from_secs(5)),
        "the playing RTSP connection was not closed at shutdown"
    );
    assert!(
        closed_within(&mut http, Duration::from_secs(5)),
        "the kept-alive HTTP connection was not closed at shutdown"
    );
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "server did not stop within 8 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let log = server.log();
    // The playing session ended with its connection, the UDP one with the server.
    assert!(
        log.lines()
            .any(|l| l.contains(&tcp_id) && l.contains("connection closed")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&udp_id) && l.contains("server shutdown")),
        "{log}"
    );
    assert!(log.contains("closing the remaining sessions"), "{log}");
    assert!(log.contains("server stopped"), "{log}");
    assert!(!log.contains("still open after the grace period"), "{log}");
}

/// SETUP of track 0 interleaved on channels 0-1 and PLAY on `c`; the session id.
fn play_track0_tcp(c: &mut Client, url: &str) -> String {
    let (_, id) = c.setup(
        &format!("{url}/trackID=0"),
        1,
        "RTP/AVP/TCP;unicast;interleaved=0-1",
        None,
    );
    let r = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    id
}
