//! RTSP publish and exec sources with real peers: ffmpeg (`-f rtsp`, over TCP and UDP) and
//! GStreamer's `rtspclientsink` publish to publish cameras, and ffprobe, ffmpeg and
//! GStreamer's `rtspsrc` read them back; publishers without the role are refused (401,
//! 403) and a second publisher gets 455; a publisher that leaves makes its camera offline
//! with the reason; an exec camera's ffmpeg child is decoded, killed, and restarted.
//! A missing peer fails the test (it names the package), never skips it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Starts ffmpeg publishing a test pattern (H.264 320x180 25 fps, no B-frames) and a
/// 1 kHz tone (`audio`: an ffmpeg encoder, `pcm_mulaw` at 8 kHz or `aac` at 16 kHz) to
/// `url` for `seconds` over `transport`; its standard error goes to `log`.
fn ffmpeg_publisher(url: &str, transport: &str, audio: &str, seconds: u32, log: &Path) -> Child {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let rate = if audio == "aac" { "16000" } else { "8000" };
    Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=1000:sample_rate={rate}"),
        ])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "25", "-bf", "0", "-c:a", audio])
        .args(["-f", "rtsp", "-rtsp_transport", transport, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("publisher log"))
        .spawn()
        .expect("start ffmpeg")
}

/// Runs a publisher that must be refused; its standard error.
fn refused_publisher(url: &str) -> String {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let (ok, _, stderr) = run_with_timeout(
        Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-re"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=160x90:rate=25",
                "-t",
                "2",
            ])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"])
            .args(["-f", "rtsp", "-rtsp_transport", "tcp", url]),
        Duration::from_secs(20),
    );
    assert!(!ok, "publishing to {url} was not refused: {stderr}");
    stderr
}

/// Starts GStreamer's rtspclientsink publishing H.264 + PCMU to `url` for about
/// `seconds` over `protocols` (`tcp` or `udp`).
fn gst_publisher(url: &str, protocols: &str, seconds: u32, log: &Path) -> Child {
    let inspect = require_tool("gst-inspect-1.0", "gstreamer1.0-tools");
    let has_sink = Command::new(inspect)
        .arg("rtspclientsink")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_sink,
        "GStreamer's rtspclientsink is not installed: this test needs it (apt-get install gstreamer1.0-rtsp)"
    );
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    // A GI application, not gst-launch: see the script's comment for GStreamer's own
    // end-of-stream races it avoids.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_publish.py");
    Command::new(python)
        .args([script, url, protocols, &seconds.to_string()])
        .env("GST_DEBUG", "rtspclientsink:4")
        .env("GST_DEBUG_NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("publisher log"))
        .spawn()
        .expect("start the GStreamer publisher")
}

/// Waits until `f` holds (checked every 100 ms); fails with `what` and the log after
/// `limit`.
fn wait_until(server: &ServerProc, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; server log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many lines of the server log contain every one of `words`.
fn log_count(server: &ServerProc, words: &[&str]) -> usize {
    server
        .log()
        .lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .count()
}

/// `camera` in `/api/stats`.
fn describe(server: &ServerProc, path: &str) -> Reply {
    let mut c = Client::connect(server);
    c.request(&format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        server.url(path)
    ))
}

fn wait_exit(child: &mut Child, limit: Duration, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the publisher did not end within {limit:?}; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a publisher that is still running (a test that failed half-way).
struct Publisher(Child);

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ffmpeg_publishes_over_tcp_and_udp_and_leaving_makes_the_camera_offline() {
    let server = start_server(
        "[[camera]]\nname = \"tcp\"\nsource = \"publish\"\n\
         [[camera]]\nname = \"udp\"\nsource = \"publish\"\nrecord = false\n",
    );
    // Before any publisher: offline, with the reason.
    let r = describe(&server, "tcp");
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.head.contains("waiting for a publisher"), "{}", r.head);
    let dir = &server.dir;
    let mut tcp = Publisher(ffmpeg_publisher(
        &server.url("tcp"),
        "tcp",
        "pcm_mulaw",
        60,
        &dir.join("pub-tcp.log"),
    ));
    let mut udp = Publisher(ffmpeg_publisher(
        &server.url("udp"),
        "udp",
        "aac",
        14,
        &dir.join("pub-udp.log"),
    ));
    for cam in ["tcp", "udp"] {
        wait_until(
            &server,
            &format!("{cam} online"),
            Duration::from_secs(15),
            || stats_of(&server, cam)["online"] == true,
        );
    }
    // Both read back at once: ffprobe sees the published codecs, ffmpeg decodes frames.
    let checks: Vec<_> = [("tcp", "pcm_mulaw"), ("udp", "aac")]
        .into_iter()
        .map(|(cam, audio)| {
            let url = server.url(cam);
            std::thread::spawn(move || {
                let streams = ffprobe_streams(&url, &["-rtsp_transport", "tcp"]);
                assert!(
                    streams.contains("codec_name=h264|width=320|height=180"),
                    "{cam}: {streams}"
                );
                assert!(
                    streams.contains(&format!("codec_name={audio}")),
                    "{cam}: {streams}"
                );
                let reader = if cam == "udp" { "udp" } else { "tcp" };
                let (video, audio_frames) = ffmpeg_decode(&url, reader, 2);
                assert!(video >= 25, "{cam}: {video} video frames in 2 s");
                assert!(audio_frames > 0, "{cam}: no audio frames");
            })
        })
        .collect();
    for c in checks {
        c.join().expect("reader check");
    }
    // A publisher that disappears without TEARDOWN (killed): its connection closes.
    let _ = tcp.0.kill();
    let _ = tcp.0.wait();
    wait_until(&server, "tcp offline", Duration::from_secs(10), || {
        stats_of(&server, "tcp")["online"] == false
    });
    let s = stats_of(&server, "tcp");
    assert_eq!(s["offline_reason"], "publisher left", "{s}");
    // What the receiver took, per track: both tracks' packets, none dropped.
    for track in 0..2 {
        let r = &s["received"][track];
        assert!(
            r["packets"].as_u64().unwrap_or(0) > 10,
            "track {track}: {s}"
        );
        assert_eq!(r["malformed"], 0, "track {track}: {s}");
        assert_eq!(r["foreign"], 0, "track {track}: {s}");
    }
    let r = describe(&server, "tcp");
    assert_eq!(r.status, 503);
    assert!(r.head.contains("publisher left"), "{}", r.head);
    // The UDP publisher ends by itself (TEARDOWN).
    let st = wait_exit(
        &mut udp.0,
        Duration::from_secs(20),
        &dir.join("pub-udp.log"),
    );
    let err = std::fs::read_to_string(dir.join("pub-udp.log")).unwrap_or_default();
    assert!(st.success(), "UDP publisher failed: {err}");
    wait_until(&server, "udp offline", Duration::from_secs(10), || {
        stats_of(&server, "udp")["offline_reason"] == "publisher left"
    });
    // The recorded publish camera has footage of both tracks.
    let (head, body) = http_get(server.http_port, "/api/recordings/tcp");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let rec: serde_json::Value = serde_json::from_slice(&body).expect("recording JSON");
    assert!(
        rec["sections"].as_array().is_some_and(|s| !s.is_empty()),
        "{rec:#}"
    );
    assert_eq!(rec["tracks"][0]["codec"], "H264", "{rec:#}");
    assert_eq!(rec["tracks"][1]["codec"], "PCMU", "{rec:#}");
}

#[test]
fn a_hung_udp_publisher_goes_offline_and_a_new_one_with_opus_takes_over() {
    let server = start_server("[[camera]]\nname = \"u\"\nsource = \"publish\"\nrecord = false\n");
    let dir = &server.dir;
    let first = Publisher(ffmpeg_publisher(
        &server.url("u"),
        "udp",
        "pcm_mulaw",
        60,
        &dir.join("pub-1.log"),
    ));
    wait_until(&server, "u online", Duration::from_secs(15), || {
        stats_of(&server, "u")["online"] == true
    });
    // Hung (stopped): its RTSP connection stays open, its RTP stops.
    let stopped = Command::new("kill")
        .args(["-STOP", &first.0.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(stopped, "kill -STOP the publisher");
    wait_until(&server, "u offline", Duration::from_secs(10), || {
        stats_of(&server, "u")["offline_reason"] == "the publisher sent no media for 5 s"
    });
    // The silent publisher's session would live until it times out (60 s) or its
    // connection closes; a new publisher replaces it although publish_override is off.
    // It publishes Opus, which ipcamd passes through as opaque RTP.
    let _second = Publisher(ffmpeg_publisher(
        &server.url("u"),
        "udp",
        "libopus",
        60,
        &dir.join("pub-2.log"),
    ));
    wait_until(&server, "u online again", Duration::from_secs(15), || {
        stats_of(&server, "u")["online"] == true
    });
    let streams = ffprobe_streams(&server.url("u"), &["-rtsp_transport", "tcp"]);
    assert!(streams.contains("codec_name=opus"), "{streams}");
    let (video, audio) = ffmpeg_decode(&server.url("u"), "tcp", 2);
    assert!(video >= 25, "{video} video frames in 2 s");
    assert!(audio > 0, "no Opus frames decoded in 2 s");
    assert!(
        server.log().contains("publisher replaced"),
        "{}",
        server.log()
    );
}

#[test]
fn gstreamer_rtspclientsink_publishes_over_tcp_and_udp() {
    let server = start_server(
        "[[camera]]\nname = \"gtcp\"\nsource = \"publish\"\nrecord = false\n\
         [[camera]]\nname = \"gudp\"\nsource = \"publish\"\nrecord = false\n",
    );
    let dir = &server.dir;
    let mut publishers: Vec<Publisher> = ["tcp", "udp"]
        .into_iter()
        .map(|p| {
            Publisher(gst_publisher(
                &server.url(&format!("g{p}")),
                p,
                12,
                &dir.join(format!("gst-{p}.log")),
            ))
        })
        .collect();
    for cam in ["gtcp", "gudp"] {
        wait_until(
            &server,
            &format!("{cam} online"),
            Duration::from_secs(15),
            || stats_of(&server, cam)["online"] == true,
        );
    }
    // GStreamer reads the TCP one (rtspsrc ! decodebin ! fakesink), ffmpeg the UDP one.
    let url = server.url("gudp");
    let ffmpeg = std::thread::spawn(move || ffmpeg_decode(&url, "tcp", 2));
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_play.py");
    let (ok, out, err) = run_with_timeout(
        Command::new(python).args([script, &server.url("gtcp"), "tcp", "3"]),
        Duration::from_secs(30),
    );
    assert!(ok, "GStreamer reader failed:\n{out}\n{err}");
    assert!(
        out.contains("video/x-raw") && out.contains("audio/x-raw"),
        "{out}"
    );
    assert!(!out.contains("\"video\": 0,"), "{out}");
    let (video, audio) = ffmpeg.join().expect("ffmpeg reader");
    assert!(
        video >= 25 && audio > 0,
        "gudp: {video} video, {audio} audio frames"
    );
    // The application pauses (rtspclientsink sends PAUSE), then stops: the cameras go
    // offline at the PAUSE, and say why.
    for (p, cam) in publishers.iter_mut().zip(["gtcp", "gudp"]) {
        let log_path = dir.join(format!("gst-{}.log", &cam[1..]));
        let st = wait_exit(&mut p.0, Duration::from_secs(20), &log_path);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(st.success(), "{cam}: {log}\nserver log:\n{}", server.log());
        wait_until(
            &server,
            &format!("{cam} offline, publisher paused"),
            Duration::from_secs(10),
            || stats_of(&server, cam)["offline_reason"] == "publisher paused (PAUSE)",
        );
    }
}

const OPERATOR_PW: &str = "op-secret-1";
const VIEWER_PW: &str = "view-secret-2";

/// A server whose users file has operator `otto` and viewer `vera`, with `cameras`.
fn server_with_users(cameras: &str) -> ServerProc {
    let dir = test_dir();
    let users = dir.join("data/users.toml");
    add_user(&users, "otto", "operator", OPERATOR_PW, &[]);
    add_user(&users, "vera", "viewer", VIEWER_PW, &[]);
    start_server_in(dir, "", cameras)
}

fn with_user(url: &str, user: &str, pw: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{pw}@"), 1)
}

#[test]
fn publishers_need_the_role_and_a_second_one_gets_455() {
    let server = server_with_users(
        "[[camera]]\nname = \"ops\"\nsource = \"publish\"\nrecord = false\n\
         [[camera]]\nname = \"open\"\nsource = \"publish\"\nrecord = false\npublish_role = \"anonymous\"\n",
    );
    let ops = server.url("ops");
    // Without credentials: 401; a viewer: 403 (publish_role defaults to operator).
    let err = refused_publisher(&ops);
    assert!(err.contains("401"), "{err}");
    let err = refused_publisher(&with_user(&ops, "vera", VIEWER_PW));
    assert!(err.contains("403"), "{err}");
    // The operator publishes; a second publisher (even the same user) gets 455.
    let _first = Publisher(ffmpeg_publisher(
        &with_user(&ops, "otto", OPERATOR_PW),
        "tcp",
        "pcm_mulaw",
        60,
        &server.dir.join("pub-ops.log"),
    ));
    wait_until(&server, "ops recording", Duration::from_secs(15), || {
        log_count(&server, &["publisher recording", "camera=\"ops\""]) == 1
    });
    let err = refused_publisher(&with_user(&ops, "otto", OPERATOR_PW));
    assert!(err.contains("455"), "{err}");
    // Anonymous publishing where configured, although the server has users; reading it
    // still needs a user.
    let _open = Publisher(ffmpeg_publisher(
        &server.url("open"),
        "tcp",
        "pcm_mulaw",
        60,
        &server.dir.join("pub-open.log"),
    ));
    wait_until(&server, "open recording", Duration::from_secs(15), || {
        log_count(&server, &["publisher recording", "camera=\"open\""]) == 1
    });
    let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n";
    let mut c = Client::connect(&server);
    let r = c.request(&format!(
        "ANNOUNCE {} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        server.url("open"),
        sdp.len()
    ));
    assert_eq!(r.status, 455, "{}", r.head);
    assert!(
        r.head.contains("camera open already has a publisher"),
        "{}",
        r.head
    );
    // A stream nothing describes (dynamic payload type, no rtpmap): 400 naming it.
    let bad = "v=0\r\nm=audio 0 RTP/AVP 97\r\n";
    let r = c.request(&format!(
        "ANNOUNCE {} RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{bad}",
        server.url("open"),
        bad.len()
    ));
    assert_eq!(r.status, 400, "{}", r.head);
    assert!(r.head.contains("payload type 97"), "{}", r.head);
    let r = describe(&server, "open");
    assert_eq!(r.status, 401, "{}", r.head);
}

#[test]
fn exec_source_is_decoded_and_restarted_when_its_child_dies() {
    // With users, the child publishes with its own per-run secret.
    let server = server_with_users(
        "[[camera]]\nname = \"gen\"\nsource = \"exec\"\nrecord = false\n\
         command = \"ffmpeg -nostdin -v warning -re -f lavfi -i testsrc2=size=320x180:rate=25 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -bf 0 -f rtsp {url}\"\n",
    );
    require_tool("ffmpeg", "ffmpeg");
    let online =
        |n: usize| move |s: &ServerProc| log_count(s, &["camera online", "camera=\"gen\""]) >= n;
    wait_until(
        &server,
        "exec camera online",
        Duration::from_secs(20),
        || online(1)(&server),
    );
    let url = with_user(&server.url("gen"), "vera", VIEWER_PW);
    let (video, _) = ffmpeg_decode(&url, "tcp", 2);
    assert!(video >= 25, "{video} frames in 2 s");
    // Kill the child (the shell the server started; its process group goes with it).
    let log = server.log();
    let pid: u32 = log
        .lines()
        .find(|l| l.contains("exec source started"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the log:\n{log}"));
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid}");
    wait_until(
        &server,
        "exec source restarted",
        Duration::from_secs(20),
        || {
            log_count(&server, &["exec source started", "camera=\"gen\""]) >= 2
                && online(2)(&server)
        },
    );
    assert!(log_count(&server, &["exec source ended", "SIGKILL"]) == 1);
    let (video, _) = ffmpeg_decode(&url, "tcp", 2);
    assert!(video >= 25, "after the restart: {video} frames in 2 s");
    // The secret never reaches the log.
    let log = server.log();
    for (i, _) in log.match_indices("exec:") {
        let next: String = log[i + 5..].chars().take(32).collect();
        assert!(
            !(next.len() == 32 && next.chars().all(|c| c.is_ascii_hexdigit())),
            "the exec secret is in the log: ...{}",
            &log[i.saturating_sub(40)..(i + 40).min(log.len())]
        );
    }
}
