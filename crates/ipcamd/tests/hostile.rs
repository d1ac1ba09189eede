//! Hostile and malformed input against the real binary: hundreds of bad requests
//! (truncated, binary, huge, wrong order, wrong session, interleaved garbage, malformed
//! SDP, bad backchannel RTP over TCP and UDP, tunnel garbage, path tricks), each with the
//! status (or close) it must get, while a well-behaved interleaved reader connected the
//! whole time keeps receiving video; slowloris and connection floods on loopback; a file
//! camera whose file disappears answers 503 and recovers.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// A well-behaved client: SETUP track 0 over TCP, PLAY, and read; records packets and the
/// longest silence.
struct Watcher {
    packets: Arc<AtomicU64>,
    max_gap: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
}

impl Watcher {
    fn start(server: &ServerProc) -> Watcher {
        let url = server.url("cam1");
        let mut s = TcpStream::connect(server.rtsp_addr()).expect("connect");
        s.write_all(
            format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
                .as_bytes(),
        )
        .expect("write");
        let mut w = Client::from_stream(s.try_clone().expect("clone"));
        let r = w.reply().expect("SETUP reply");
        assert_eq!(r.status, 200, "{}", r.head);
        let session = r.session_id();
        s.write_all(
            format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n").as_bytes(),
        )
        .expect("write");
        let packets = Arc::new(AtomicU64::new(0));
        let max_gap = Arc::new(Mutex::new(Duration::ZERO));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (packets, max_gap, stop) = (packets.clone(), max_gap.clone(), stop.clone());
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = vec![0u8; 65536];
                let mut last = Instant::now();
                let mut keepalive = Instant::now();
                let mut cseq = 3;
                while !stop.load(Ordering::Relaxed) {
                    if keepalive.elapsed() > Duration::from_secs(20) {
                        let _ = s.write_all(format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {session}\r\n\r\n").as_bytes());
                        cseq += 1;
                        keepalive = Instant::now();
                    }
                    match s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(_) => {}
                    }
                    // Count channel-0 frames; skip RTSP answers.
                    loop {
                        if buf.first() == Some(&b'$') {
                            if buf.len() < 4 {
                                break;
                            }
                            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                            if buf.len() < 4 + len {
                                break;
                            }
                            if buf[1] == 0 {
                                packets.fetch_add(1, Ordering::Relaxed);
                                let mut g = max_gap.lock().unwrap();
                                *g = (*g).max(last.elapsed());
                                last = Instant::now();
                            }
                            buf.drain(..4 + len);
                        } else if let Some(end) = find(&buf, b"\r\n\r\n") {
                            buf.drain(..end + 4);
                        } else {
                            break;
                        }
                    }
                }
                let mut g = max_gap.lock().unwrap();
                *g = (*g).max(last.elapsed());
            })
        };
        Watcher {
            packets,
            max_gap,
            stop,
            thread: Some(thread),
            started: Instant::now(),
        }
    }

    /// Stops and asserts the stream never paused for more than a second, with at least one
    /// packet per frame (25 fps) over the whole time.
    fn finish(mut self) -> (u64, Duration) {
        let min_packets = (self.started.elapsed().as_secs_f64() * 25.0 * 0.9) as u64;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("watcher thread");
        }
        let n = self.packets.load(Ordering::Relaxed);
        let gap = *self.max_gap.lock().unwrap();
        assert!(
            n >= min_packets.max(1),
            "watcher got only {n} video packets in {:?}",
            self.started.elapsed()
        );
        assert!(
            gap < Duration::from_secs(1),
            "watcher's video paused for {gap:?}"
        );
        (n, gap)
    }
}

/// What a hostile input must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A response with one of these statuses (the connection may close after).
    Status(&'static [u16]),
    /// A response with one of these statuses, then the connection closes.
    StatusThenClose(&'static [u16]),
    /// No response needed; the connection must close (or stay harmlessly open) within
    /// a few seconds of our half-close, without any 5xx.
    NoCrash,
}

/// Sends `input` on a fresh connection and checks the outcome; returns the first status.
fn probe(server: &ServerProc, input: &[u8], expect: Expect, what: &str) -> Option<u16> {
    let mut s = TcpStream::connect(server.rtsp_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    // The server may close early (fatal errors): a failed write is fine.
    let _ = s.write_all(input);
    if matches!(expect, Expect::NoCrash) {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = false;
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
        if matches!(expect, Expect::Status(_)) && find(&got, b"\r\n\r\n").is_some() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("RTSP/1.0 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .or_else(|| text.strip_prefix("HTTP/1.1 "))
        .and_then(|t| t.get(..3))
        .and_then(|t| t.parse::<u16>().ok());
    match expect {
        Expect::Status(ok) => {
            assert!(
                status.is_some_and(|s| ok.contains(&s)),
                "{what}: expected one of {ok:?}, got {text:?}"
            );
        }
        Expect::StatusThenClose(ok) => {
            assert!(
                status.is_some_and(|s| ok.contains(&s)),
                "{what}: expected one of {ok:?}, got {text:?}"
            );
            assert!(closed, "{what}: connection not closed after {text:?}");
        }
        Expect::NoCrash => {
            assert!(
                !status.is_some_and(|s| s >= 500 && s != 501 && s != 505),
                "{what}: got {text:?}"
            );
        }
    }
    status
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const LIMITS: &str = "[limits]\nrequest_timeout_s = 2\nmax_unrouted_interleaved = 20\nmax_sessions_per_connection = 3\nmax_connections_per_ip = 40\ntunnel_pair_timeout_s = 2\nbackchannel_max_packets_per_s = 50\n";

fn stats(server: &ServerProc) -> String {
    http_get(server, b"/api/stats").1
}

/// `GET path` on the HTTP port: (status, body).
fn http_get(server: &ServerProc, path: &[u8]) -> (u16, String) {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(path);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, answer) = http_exchange(server.http_port, &req);
    (status, http_body(&answer))
}

fn stat(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\": ");
    json.find(&pat)
        .and_then(|i| {
            json[i + pat.len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {key} in {json}"))
}

#[test]
fn hundreds_of_hostile_inputs_while_a_reader_keeps_its_video() {
    let server = start_server_with(LIMITS, SMALL_CAMERA);
    let watcher = Watcher::start(&server);
    let url = server.url("cam1");
    let mut count = 0usize;
    let good = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n");

    // Truncated requests: every prefix of a good one, then EOF.
    for cut in 1..good.len() {
        probe(
            &server,
            &good.as_bytes()[..cut],
            Expect::NoCrash,
            &format!("truncated at {cut}"),
        );
        count += 1;
    }
    // Binary noise, of many sizes (not starting with '$', which is an interleaved frame).
    for seed in 0..60u64 {
        let mut n = noise(seed, 1 + (seed as usize * 97) % 3000);
        if n[0] == b'$' {
            n[0] = 0;
        }
        probe(&server, &n, Expect::NoCrash, &format!("noise seed {seed}"));
        count += 1;
    }
    // Noise after a valid start line.
    for seed in 0..30u64 {
        let mut req = format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n").into_bytes();
        req.extend(noise(seed + 100, 200).iter().map(|b| b & 0x7f));
        req.extend_from_slice(b"\r\n\r\n");
        probe(
            &server,
            &req,
            Expect::NoCrash,
            &format!("noise headers {seed}"),
        );
        count += 1;
    }
    // Huge: a head over the limit (16 KiB), many headers, a huge request line, a body
    // over the limit.
    let huge_header = format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    probe(
        &server,
        huge_header.as_bytes(),
        Expect::StatusThenClose(&[400]),
        "huge header",
    );
    let huge_line = format!(
        "OPTIONS rtsp://h/{} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        "x".repeat(40_000)
    );
    probe(
        &server,
        huge_line.as_bytes(),
        Expect::StatusThenClose(&[400]),
        "huge request line",
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    probe(
        &server,
        format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n{many}\r\n").as_bytes(),
        Expect::Status(&[400]),
        "200 headers",
    );
    probe(
        &server,
        format!("SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 999999999\r\n\r\n")
            .as_bytes(),
        Expect::Status(&[413, 400]),
        "huge Content-Length",
    );
    probe(
        &server,
        format!("SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n").as_bytes(),
        Expect::Status(&[400]),
        "negative Content-Length",
    );
    count += 5;
    // Bad start lines, versions, methods, URLs and path tricks.
    let cases: &[(&str, &[u16])] = &[
        ("DESCRIBE {url} RTSP/2.0\r\nCSeq: 1\r\n\r\n", &[505, 400]),
        ("DESCRIBE {url} HTTP/1.1\r\nCSeq: 1\r\n\r\n", &[505, 400]),
        ("DESCRIBE {url}\r\nCSeq: 1\r\n\r\n", &[400]),
        ("DESCRIBE\r\nCSeq: 1\r\n\r\n", &[400]),
        ("FOO {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[501]),
        ("DESCRIBE {url} RTSP/1.0\r\n\r\n", &[400]),
        ("DESCRIBE {url} RTSP/1.0\r\nCSeq: x\r\n\r\n", &[400]),
        ("DESCRIBE {url} RTSP/1.0\r\nCSeq: 99999999999999\r\n\r\n", &[400]),
        ("DESCRIBE {url}/../../etc/passwd RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[404]),
        ("DESCRIBE rtsp://127.0.0.1/../cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[404]),
        ("DESCRIBE rtsp://127.0.0.1/cam1%00 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[404]),
        ("DESCRIBE rtsp://127.0.0.1/%2e%2e/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[404]),
        ("DESCRIBE rtsp://127.0.0.1/cam1/trackID=99 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[404]),
        ("SETUP {url}/trackID=-1 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n", &[404]),
        ("SETUP {url}/trackID=18446744073709551616 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n", &[404]),
        ("DESCRIBE * RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[400, 404]),
        ("DESCRIBE ftp://x/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[200, 400, 404]),
        // Wrong order and wrong sessions.
        ("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[454]),
        ("PAUSE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[454]),
        ("TEARDOWN {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[454]),
        ("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\nSession: 12345678\r\n\r\n", &[454]),
        ("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\nSession: ;;;;\r\n\r\n", &[454, 400]),
        ("TEARDOWN {url} RTSP/1.0\r\nCSeq: 1\r\nSession: ../../x\r\n\r\n", &[454, 400]),
        ("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nSession: deadbeef\r\n\r\n", &[454]),
        // Transports.
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: \r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=300-301\r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=99999-100000\r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/SAVP;unicast;client_port=5000-5001\r\n\r\n", &[461]),
        ("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: \u{1}\u{2}\u{3}\r\n\r\n", &[461, 400]),
        ("SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n", &[459]),
        // Require tags.
        ("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nRequire: evil.tag\r\n\r\n", &[551]),
        // Malformed SDP in ANNOUNCE (cam1 takes no publisher: 405 first), and RECORD.
        ("ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 12\r\n\r\nv=9\r\nm=\x00\x01x\r\n", &[405]),
        ("ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n", &[405]),
        ("RECORD {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n", &[405, 454]),
        ("SET_PARAMETER {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\nx: y", &[451]),
        // Headers folded, duplicated, without colon.
        ("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n\r\n", &[200, 400]),
        ("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nNoColonHere\r\n\r\n", &[400]),
        ("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n folded\r\n\r\n", &[200, 400]),
        ("OPTIONS {url} RTSP/1.0\nCSeq: 1\n\n", &[200, 400]),
    ];
    for (raw, ok) in cases {
        let raw = raw.replace("{url}", &url);
        probe(&server, raw.as_bytes(), Expect::Status(ok), &raw);
        count += 1;
    }
    // Non-UTF-8 and overlong paths.
    for (i, path) in [
        &b"/cam1\xff\xfe"[..],
        b"/\xc0\xae\xc0\xae/cam1",
        b"/cam1/\x00",
    ]
    .iter()
    .enumerate()
    {
        let mut req = b"DESCRIBE rtsp://127.0.0.1".to_vec();
        req.extend_from_slice(path);
        req.extend_from_slice(b" RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        probe(
            &server,
            &req,
            Expect::Status(&[400, 404]),
            &format!("path {i}"),
        );
        count += 1;
    }
    let long_path = format!(
        "DESCRIBE rtsp://127.0.0.1/{} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        "a/".repeat(4000)
    );
    probe(
        &server,
        long_path.as_bytes(),
        Expect::Status(&[404]),
        "deep path",
    );
    count += 1;

    // Interleaved garbage on channels not set up: counted, then the connection is closed
    // (limit 20 in this test).
    let mut frames = Vec::new();
    for i in 0..40u8 {
        frames.extend_from_slice(&[b'$', 50 + i % 10, 0, 8]);
        frames.extend(noise(u64::from(i), 8));
    }
    let mut s = TcpStream::connect(server.rtsp_addr()).expect("connect");
    let _ = s.write_all(&frames);
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut sink = [0u8; 64];
    assert!(
        matches!(s.read(&mut sink), Ok(0) | Err(_)),
        "connection with 40 unrouted interleaved frames not closed"
    );
    // Garbage interleaved frames of every length header, a frame cut short.
    for seed in 0..20u64 {
        let n = noise(seed + 500, 64);
        let mut f = vec![b'$', n[0], n[1], n[2]];
        f.extend_from_slice(&n[3..]);
        probe(
            &server,
            &f,
            Expect::NoCrash,
            &format!("interleaved garbage {seed}"),
        );
        count += 1;
    }

    // More sessions on one connection than allowed (3): the 4th SETUP gets 503.
    let mut c = Client::connect(&server);
    for i in 0..3 {
        c.setup(
            &format!("{url}/trackID=0"),
            i + 1,
            "RTP/AVP/TCP;unicast",
            None,
        );
    }
    let r = c.request(&format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
    ));
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.head.contains("sessions per connection"), "{}", r.head);
    drop(c);
    count += 1;

    // Bad RTP on the backchannel over TCP, then well-formed packets above the rate limit.
    let mut c = Client::connect(&server);
    let req = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nRequire: www.onvif.org/ver20/backchannel\r\n\r\n"
    );
    assert_eq!(c.request(&req).status, 200);
    let (_, sid) = c.setup(
        &format!("{url}/trackID=2"),
        2,
        "RTP/AVP/TCP;unicast;interleaved=4-5",
        None,
    );
    let r = c.request(&format!(
        "PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {sid}\r\nRequire: www.onvif.org/ver20/backchannel\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.head);
    let mut bad = Vec::new();
    for seed in 0..100u64 {
        let len = 1 + (seed as usize * 37) % 600;
        bad.extend_from_slice(&[b'$', 4]);
        bad.extend_from_slice(&(len as u16).to_be_bytes());
        bad.extend(noise(seed + 900, len));
    }
    c.s.write_all(&bad).expect("write bad backchannel RTP");
    count += 100;
    // 300 valid PCMU packets at once: above 50 per second, most are dropped.
    let mut burst = Vec::new();
    for i in 0..300u16 {
        let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
        pkt[2..4].copy_from_slice(&i.to_be_bytes());
        pkt[4..8].copy_from_slice(&(u32::from(i) * 160).to_be_bytes());
        pkt.extend(std::iter::repeat_n(0xffu8, 160));
        burst.extend_from_slice(&[b'$', 4]);
        burst.extend_from_slice(&(pkt.len() as u16).to_be_bytes());
        burst.extend(pkt);
    }
    c.s.write_all(&burst).expect("write burst");
    let r = c.request(&format!(
        "GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {sid}\r\n\r\n"
    ));
    assert_eq!(
        r.status, 200,
        "session survives bad backchannel RTP: {}",
        r.head
    );
    let r = c.request(&format!(
        "TEARDOWN {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {sid}\r\n\r\n"
    ));
    assert_eq!(r.status, 200, "{}", r.head);

    // Bad RTP on the backchannel over UDP.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = udp.local_addr().expect("addr").port();
    let mut c2 = Client::connect(&server);
    assert_eq!(c2.request(&req).status, 200);
    let (r, sid2) = c2.setup(
        &format!("{url}/trackID=2"),
        2,
        &format!("RTP/AVP;unicast;client_port={port}-{}", port + 1),
        None,
    );
    let server_port: u16 = r
        .header("Transport")
        .and_then(|t| {
            t.split(';')
                .find_map(|p| p.strip_prefix("server_port="))
                .and_then(|p| p.split('-').next())
                .and_then(|p| p.parse().ok())
        })
        .expect("server_port in the SETUP answer");
    let r = c2.request(&format!(
        "PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {sid2}\r\nRequire: www.onvif.org/ver20/backchannel\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let to = SocketAddr::from(([127, 0, 0, 1], server_port));
    for seed in 0..100u64 {
        let len = (seed as usize * 53) % 1400;
        udp.send_to(&noise(seed + 2000, len), to).expect("send");
    }
    count += 100;
    let r = c2.request(&format!(
        "GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {sid2}\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    drop(c2);
    drop(c);

    // HTTP port: garbage heads, path tricks on the export endpoint, tunnel garbage.
    for seed in 0..20u64 {
        let mut s = TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
        let _ = s.write_all(&noise(seed + 3000, 500));
        let _ = s.write_all(b"\r\n\r\n");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            out.is_empty() || text.starts_with("HTTP/1.0 400") || text.starts_with("HTTP/1.1 4"),
            "HTTP garbage {seed}: {text}"
        );
        count += 1;
    }
    for path in [
        &b"/api/recordings/../../../../etc/passwd"[..],
        b"/api/recordings/..%2f..%2fetc%2fpasswd/export.mp4?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        b"/api/recordings/cam1%00/export.mp4?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        b"/api/recordings/\xff\xfe/export.mp4",
        b"/../../../etc/passwd",
        b"/api/recordings/cam1/export.mp4?from=../../x&to=y",
    ] {
        let (status, body) = http_get(&server, path);
        assert!(
            (400..500).contains(&status),
            "{}: {status} {body}",
            String::from_utf8_lossy(path)
        );
        assert!(!body.contains("root:"), "{body}");
        count += 1;
    }
    let long = format!("/api/recordings/{}", "a".repeat(5000));
    let (status, _) = http_get(&server, long.as_bytes());
    assert!((400..500).contains(&status), "overlong API path: {status}");
    // Tunnel: a POST with invalid base64 after its GET is closed; a GET without a POST
    // is closed after tunnel_pair_timeout_s (2 s here).
    let mut get = TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    get.write_all(b"GET /cam1 HTTP/1.0\r\nx-sessioncookie: hostile1\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let mut post = TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    post.write_all(b"POST /cam1 HTTP/1.0\r\nx-sessioncookie: hostile1\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n!!!!not base64 at all\x00\xff")
        .expect("write");
    post.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut sink = [0u8; 256];
    assert!(
        matches!(post.read(&mut sink), Ok(0) | Err(_)),
        "POST with garbage base64 not closed"
    );
    let started = Instant::now();
    let mut lonely = TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    lonely
        .write_all(b"GET /cam1 HTTP/1.0\r\nx-sessioncookie: lonely\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        .expect("write");
    lonely.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut out = Vec::new();
    let _ = lonely.read_to_end(&mut out);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "unpaired tunnel GET closed after {waited:?}"
    );
    count += 3;

    let json = stats(&server);
    assert!(stat(&json, "bad_requests") >= 50, "{json}");
    assert!(stat(&json, "interleaved_closed") >= 1, "{json}");
    assert!(stat(&json, "sessions_refused") >= 1, "{json}");
    assert!(stat(&json, "backchannel_rate_dropped") >= 100, "{json}");
    assert!(stat(&json, "tunnel_unpaired") >= 1, "{json}");
    assert_eq!(stat(&json, "connection_panics"), 0, "{json}");
    // A new well-behaved client still gets its answers.
    let mut c = Client::connect(&server);
    assert_eq!(c.request(&good).status, 200);
    let (n, gap) = watcher.finish();
    eprintln!("{count} hostile inputs; watcher got {n} video packets, longest gap {gap:?}");
    assert!(count >= 300, "only {count} hostile inputs");
}

#[test]
fn slowloris_and_connection_flood_leave_the_server_responsive() {
    let server = start_server_with(LIMITS, SMALL_CAMERA);
    let watcher = Watcher::start(&server);
    let url = server.url("cam1");
    // Slowloris: 20 connections sending a request a byte every 300 ms, never finishing.
    let start = Instant::now();
    let slow: Vec<JoinHandle<Duration>> = (0..20)
        .map(|_| {
            let addr = server.rtsp_addr();
            let url = url.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut s = TcpStream::connect(addr).expect("connect");
                let req = format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ");
                for b in req.bytes().chain(std::iter::repeat(b'a')) {
                    if s.write_all(&[b]).is_err() || t0.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                t0.elapsed()
            })
        })
        .collect();
    // Meanwhile a normal client is answered at once.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let mut c = Client::connect(&server);
    assert_eq!(
        c.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
            .status,
        200
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    drop(c);
    for h in slow {
        let lived = h.join().expect("slow thread");
        // request_timeout_s = 2: closed after about 2 s (the write that fails comes later).
        assert!(
            lived < Duration::from_secs(10),
            "slowloris connection lived {lived:?}"
        );
    }
    eprintln!("slowloris connections closed within {:?}", start.elapsed());

    // Flood: 60 connections from one address with max_connections_per_ip = 40 (the
    // watcher holds one): the last ones get 503 and are closed.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        let mut s = TcpStream::connect(server.rtsp_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(300))).ok();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(text.starts_with("RTSP/1.0 503"), "{text}");
                assert!(text.contains("too many connections"), "{text}");
                refused += 1;
            }
            _ => held.push(s),
        }
    }
    assert_eq!(
        held.len(),
        39,
        "held {} connections, refused {refused}",
        held.len()
    );
    assert_eq!(refused, 21);
    // Held connections are served.
    let mut c = Client::from_stream(held.pop().expect("one"));
    assert_eq!(
        c.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
            .status,
        200
    );
    drop(c);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut c = Client::connect(&server);
    assert_eq!(
        c.request(&format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
            .status,
        200
    );
    let json = stats(&server);
    assert!(stat(&json, "request_timeouts") >= 20, "{json}");
    assert!(stat(&json, "connections_refused_per_ip") >= 21, "{json}");
    // 21 refusals within a second are one warning, not 21 (rate-limited, counted).
    let refusal_lines = server
        .log()
        .lines()
        .filter(|l| l.contains("connection refused"))
        .count();
    assert!(
        (1..=2).contains(&refusal_lines),
        "{refusal_lines} 'connection refused' lines in the log"
    );
    watcher.finish();
}

#[test]
fn file_camera_whose_file_disappears_answers_503_and_recovers() {
    let dir = std::env::temp_dir().join(format!("ipcamd-hostile-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("lobby.mp4");
    let src = format!(
        "{}/../media/testdata/h264_aac.mp4",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(&src, &file).expect("copy test file");
    let server = start_server(&format!(
        "[[camera]]\nname = \"f\"\nsource = \"file\"\npath = \"{}\"\n",
        file.display()
    ));
    let url = server.url("f");
    let describe = |c: &mut Client| {
        c.request(&format!(
            "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
        ))
    };
    let mut c = Client::connect(&server);
    assert_eq!(describe(&mut c).status, 200);
    // Take the file away: within a few seconds, 503 with a reason.
    let moved = dir.join("moved.mp4");
    std::fs::rename(&file, &moved).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = describe(&mut c);
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(
        r.head.contains("camera f is offline") && r.head.contains("lobby.mp4"),
        "{}",
        r.head
    );
    assert!(stats(&server).contains("\"online\": false"));
    // Put it back: the source restarts (back-off 1, 2, 4, ... s) and plays again.
    std::thread::sleep(Duration::from_secs(2));
    std::fs::rename(&moved, &file).expect("rename back");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = describe(&mut c);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {}", r.head);
        std::thread::sleep(Duration::from_millis(300));
    }
    let probe = ffprobe_streams(&url, &["-rtsp_transport", "tcp"]);
    assert!(probe.contains("codec_name=h264"), "{probe}");
    let log = server.log();
    assert!(log.contains("source restarted"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
