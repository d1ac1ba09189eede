//! Proxied cameras (`source = "rtsp"`) against upstream servers nobody here wrote
//! (GStreamer's gst-rtsp-server, `clients/gst_camera.py`) and against ipcamd itself (a
//! chain of two): read through the proxy with ffmpeg and GStreamer over each upstream
//! transport, Digest to the camera, an upstream outage that readers survive.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A gst-rtsp-server camera (`clients/gst_camera.py`): killed when dropped. It holds
/// [`GST_CAMERAS`] while it lives.
struct GstCamera {
    child: Child,
    port: u16,
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

/// One test at a time runs gst-rtsp-server cameras (each an x264 encoder): on a 2-core
/// machine several at once starve them, which makes gst-rtsp-server's races likelier (one
/// of them leaves a backchannel's receiving elements stopped: see `gst_camera.py`).
static GST_CAMERAS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The turn of the calling test to run gst cameras (the first camera of a test takes it).
fn gst_turn() -> std::sync::MutexGuard<'static, ()> {
    GST_CAMERAS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for GstCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gst_camera(args: &[&str]) -> GstCamera {
    gst_camera_in_turn(args, None)
}

fn gst_camera_in_turn(
    args: &[&str],
    turn: Option<std::sync::MutexGuard<'static, ()>>,
) -> GstCamera {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/gst_camera.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start gst_camera.py");
    let mut out = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).is_ok_and(|n| n == 1) && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let port = line
        .strip_prefix("ready PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("gst_camera.py did not start (needs gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly for x264enc): {line:?}")
        });
    GstCamera {
        child,
        port,
        _turn: turn,
    }
}

fn proxy_camera(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nname = \"{name}\"\nsource = \"rtsp\"\nurl = \"{url}\"\nrecord = false\n{extra}\n"
    )
}

/// Waits until `camera` of `server` is online per /api/stats (fails after `limit`).
fn wait_online(server: &ServerProc, camera: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (_, body) = http_get(server.http_port, "/api/stats");
        let stats: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let online = stats["cameras"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == camera && c["online"] == true);
        if online {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "camera {camera} not online after {limit:?}: {stats}\nlog:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn camera_stats(server: &ServerProc, camera: &str) -> serde_json::Value {
    let (_, body) = http_get(server.http_port, "/api/stats");
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    stats["cameras"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == camera)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_gstreamer_camera_with_digest_is_proxied_over_tcp_udp_and_auto() {
    // A media per client: gst-rtsp-server's shared media sometimes never sends its audio
    // (clients/gst_camera.py); a per-client one that does so is what the proxy's second
    // session (a silent track sets it up again) replaces.
    let cam = gst_camera_in_turn(
        &[
            "--user",
            "admin",
            "--password",
            "pa ss:w@rd",
            "--per-client",
        ],
        Some(gst_turn()),
    );
    let url = format!("rtsp://127.0.0.1:{}/cam", cam.port);
    let creds = "username = \"admin\"\npassword = \"pa ss:w@rd\"\n";
    let cameras = [
        proxy_camera("gtcp", &url, &format!("{creds}transport = \"tcp\"")),
        proxy_camera("gudp", &url, &format!("{creds}transport = \"udp\"")),
        proxy_camera("gauto", &url, &format!("{creds}transport = \"auto\"")),
        proxy_camera("wrongpw", &url, "username = \"admin\"\npassword = \"nope\""),
    ]
    .concat();
    let server = start_server(&cameras);
    for name in ["gtcp", "gudp", "gauto"] {
        wait_online(&server, name, Duration::from_secs(15));
        let probe = ffprobe_streams(&server.url(name), &["-rtsp_transport", "tcp"]);
        assert!(
            probe.contains("codec_name=h264|width=320|height=240"),
            "{name}: {probe}"
        );
        assert!(probe.contains("codec_name=pcm_mulaw"), "{name}: {probe}");
        // The camera's audio reaches the proxy (a silent track makes it set its session up
        // again after 5 s: seen in CI with gst-rtsp-server's shared media, where ffmpeg
        // then waited for audio until its time limit).
        let deadline = Instant::now() + Duration::from_secs(15);
        while received(&server, name, 1) == 0 {
            assert!(
                Instant::now() < deadline,
                "{name}: no audio from the camera: {}\n{}",
                camera_stats(&server, name),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // 3 s of 25 fps video and 50 packets/s of PCMU, decoded without an error.
        let (video, audio) = try_ffmpeg_decode(&server.url(name), "udp", 3).unwrap_or_else(|e| {
            panic!(
                "{name}: {e}\n-- camera: {}\n-- server log:\n{}",
                camera_stats(&server, name),
                server.log()
            )
        });
        assert!(video >= 70, "{name}: {video} video frames in 3 s");
        assert!(audio >= 140, "{name}: {audio} audio frames in 3 s");
    }
    // GStreamer reads through the proxy too (what its application sees, after rtspsrc's
    // jitter buffer and the decoders).
    let (ok, out, err) = run_with_timeout(
        Command::new("/usr/bin/python3").args([
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/clients/gst_play.py")
                .to_str()
                .unwrap_or_default(),
            &server.url("gtcp"),
            "tcp",
            "3",
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "gst_play.py failed: {out} {err}");
    let played: serde_json::Value = serde_json::from_str(out.trim()).expect("gst_play JSON");
    assert!(played["video"].as_u64().unwrap_or(0) >= 50, "{played}");
    assert!(played["audio"].as_u64().unwrap_or(0) >= 50, "{played}");
    // The camera that rejects our password stays offline, saying why; new readers get 503.
    let wrong = camera_stats(&server, "wrongpw");
    assert_eq!(wrong["online"], false, "{wrong}");
    let why = wrong["offline_reason"].as_str().unwrap_or_default();
    assert!(why.contains("rejected the user name and password"), "{why}");
    let mut c = Client::connect(&server);
    let r = c.request(&format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        server.url("wrongpw")
    ));
    assert_eq!(r.status, 503, "{}", r.head);
    // Credentials never reach the log.
    let log = server.log();
    assert!(
        !log.contains("pa ss:w@rd") && !log.contains("pa%20ss"),
        "{log}"
    );
    assert!(!log.contains("nope"), "{log}");
}

/// What a reader on one TCP connection got: (arrival, channel, sequence number, SSRC).
type Got = Vec<(Instant, u8, u16, u32)>;

/// Plays `url` with interleaved TCP on one connection and collects RTP packets in a
/// thread until `stop` passes.
/// Packets the proxy took on `track` of `camera`, per `/api/stats` `received`.
fn received(server: &ServerProc, camera: &str, track: usize) -> u64 {
    camera_stats(server, camera)["received"][track]["packets"]
        .as_u64()
        .unwrap_or(0)
}

/// A camera that announces audio and sends one packet of it: the proxy sets its session up
/// again once after 5 s (the next session's audio flows); one that never sends it keeps
/// its second session (video goes on) and the log says why, once.
#[test]
fn a_silent_track_makes_the_session_be_set_up_again_once() {
    let once = gst_camera_in_turn(&["--mute-audio", "1"], Some(gst_turn()));
    let never = gst_camera(&["--mute-audio", "1000"]);
    let url = |c: &GstCamera| format!("rtsp://127.0.0.1:{}/cam", c.port);
    let tcp = "transport = \"tcp\"";
    let server = start_server(
        &[
            proxy_camera("once", &url(&once), tcp),
            proxy_camera("never", &url(&never), tcp),
        ]
        .concat(),
    );
    wait_online(&server, "once", Duration::from_secs(15));
    wait_online(&server, "never", Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(20);
    while received(&server, "once", 1) < 100 {
        assert!(
            Instant::now() < deadline,
            "the audio of camera once did not flow: {}\n{}",
            camera_stats(&server, "once"),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Two silent sessions of `never` take 10 s; 4 s more shows the second one is kept.
    std::thread::sleep(Duration::from_secs(4));
    let video_before = received(&server, "never", 0);
    std::thread::sleep(Duration::from_secs(10));
    let log = server.log();
    let again = |cam: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("camera={cam}")) && l.contains("setting the session up again")
            })
            .count()
    };
    assert_eq!(again("once"), 1, "{log}");
    assert_eq!(again("never"), 1, "{log}");
    let kept: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the session is kept"))
        .collect();
    assert_eq!(kept.len(), 1, "{log}");
    assert!(
        kept[0].contains("camera=never") && kept[0].contains("track 1 (audio)"),
        "{}",
        kept[0]
    );
    let never_stats = camera_stats(&server, "never");
    assert_eq!(never_stats["online"], true, "{never_stats}");
    // 10 s of 25 fps video went on (H.264 at 500 kbit/s: more packets than frames).
    assert!(
        received(&server, "never", 0) >= video_before + 200,
        "{never_stats}"
    );
    assert!(received(&server, "never", 1) <= 2, "{never_stats}");
    // /metrics has the same per track.
    let (_, metrics) = http_get(server.http_port, "/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    let sample = |name: &str, track: u32| -> f64 {
        let key = format!("{name}{{camera=\"never\",track=\"{track}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /metrics:\n{metrics}"))
    };
    assert!(sample("ipcamd_camera_rtp_packets_received_total", 0) >= 200.0);
    assert!(sample("ipcamd_camera_rtp_packets_received_total", 1) <= 2.0);
    assert_eq!(sample("ipcamd_camera_rtp_packets_malformed_total", 0), 0.0);
    // What a reader of `once` sees: both tracks.
    let (video, audio) = ffmpeg_decode(&server.url("once"), "tcp", 2);
    assert!(
        video >= 45 && audio >= 90,
        "{video} video, {audio} audio frames"
    );
}

fn tcp_reader(server: &ServerProc, url: &str, until: Instant) -> std::thread::JoinHandle<Got> {
    let mut c = Client::connect(server);
    let d = c.request(&format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(d.status, 200, "{}", d.head);
    let (_, session) = c.setup(
        &format!("{url}/trackID=0"),
        2,
        "RTP/AVP/TCP;unicast;interleaved=0-1",
        None,
    );
    let p = c.request(&format!(
        "PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"
    ));
    assert_eq!(p.status, 200, "{}", p.head);
    std::thread::spawn(move || {
        let mut s = c.s;
        s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut buf: Vec<u8> = Vec::new();
        let mut got = Got::new();
        let mut chunk = [0u8; 65536];
        while Instant::now() < until {
            if let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            while buf.len() >= 4 && buf[0] == b'$' {
                let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                if buf.len() < 4 + len {
                    break;
                }
                let p = &buf[4..4 + len];
                if buf[1].is_multiple_of(2) && p.len() >= 12 {
                    let seq = u16::from_be_bytes([p[2], p[3]]);
                    let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
                    got.push((Instant::now(), buf[1], seq, ssrc));
                }
                buf.drain(..4 + len);
            }
            // RTSP messages (none expected) are skipped to the next `$`.
            if !buf.is_empty() && buf[0] != b'$' {
                let next = buf.iter().position(|&b| b == b'$').unwrap_or(buf.len());
                buf.drain(..next);
            }
        }
        got
    })
}

fn sections(server: &ServerProc, camera: &str) -> usize {
    let (_, body) = http_get(server.http_port, "/api/recordings");
    let recs: serde_json::Value = serde_json::from_slice(&body).expect("recordings JSON");
    recs.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["camera"] == camera)
        .and_then(|r| r["sections"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn readers_survive_an_upstream_outage_and_the_recording_shows_it() {
    let mut upstream = start_server(&format!("{SMALL_CAMERA}record = false\n"));
    let port = upstream.rtsp_port;
    let proxy = start_server(
        &proxy_camera("front", &upstream.url("cam1"), "")
            .replace("record = false", "record = true"),
    );
    wait_online(&proxy, "front", Duration::from_secs(15));
    let start = Instant::now();
    let reader = tcp_reader(&proxy, &proxy.url("front"), start + Duration::from_secs(22));
    std::thread::sleep(Duration::from_secs(3));
    // The upstream goes away for 10 s.
    let _ = upstream.child.kill();
    let _ = upstream.child.wait();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let mut c = Client::connect(&proxy);
    let r = c.request(&format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        proxy.url("front")
    ));
    assert_eq!(
        r.status, 503,
        "a new reader while the camera is down: {}",
        r.head
    );
    let down = camera_stats(&proxy, "front");
    assert_eq!(down["online"], false, "{down}");
    std::thread::sleep(Duration::from_secs(8));
    // The upstream comes back on the same port (its configuration now names that port).
    let config = upstream.dir.join("ipcamd.toml");
    let text = std::fs::read_to_string(&config).expect("upstream config");
    std::fs::write(
        &config,
        text.replacen("127.0.0.1:0", &format!("127.0.0.1:{port}"), 1),
    )
    .expect("rewrite upstream config");
    upstream.restart();
    let back = Instant::now();
    let got = reader.join().expect("reader thread");
    let before: Vec<_> = got.iter().filter(|g| g.0 < killed).collect();
    let during = got
        .iter()
        .filter(|g| g.0 > killed + Duration::from_millis(500) && g.0 < back)
        .count();
    let after: Vec<_> = got.iter().filter(|g| g.0 > back).collect();
    assert!(
        before.len() > 50,
        "{} packets before the outage",
        before.len()
    );
    assert_eq!(during, 0, "packets while the upstream was down");
    assert!(
        after.len() > 50,
        "the reader got {} packets after the upstream came back (same connection, no new \
         request); log:\n{}",
        after.len(),
        proxy.log()
    );
    // Same stream for the reader: same SSRC, sequence numbers go on.
    let (last, first) = (before[before.len() - 1], after[0]);
    assert_eq!(last.3, first.3, "SSRC changed across the outage");
    assert!(
        first.2.wrapping_sub(last.2) < 1000,
        "sequence numbers jumped: {} -> {}",
        last.2,
        first.2
    );
    let log = proxy.log();
    assert!(log.contains("camera offline"), "{log}");
    assert_eq!(
        sections(&proxy, "front"),
        2,
        "two sections around the outage"
    );
}

/// Power of `freq` relative to the signal's, in raw s16le mono 8 kHz `path`; and seconds.
fn tone_in_raw(path: &Path, freq: f64) -> (f64, f64) {
    let bytes = std::fs::read(path).unwrap_or_default();
    let samples: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let total: f64 =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    let at = goertzel(&samples, 8000, freq);
    (at / total.max(1.0), samples.len() as f64 / 8000.0)
}

/// The newest backchannel file of a `gst_camera.py --backchannel PREFIX` (`PREFIX.N`,
/// one per media the camera made), once it stops growing (the media has ended).
fn settled(prefix: &Path) -> std::path::PathBuf {
    let newest = || {
        let name = prefix.file_name()?.to_str()?.to_owned();
        std::fs::read_dir(prefix.parent()?)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n: u32 = e
                    .file_name()
                    .to_str()?
                    .strip_prefix(&format!("{name}."))?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .max()
            .map(|(_, p)| p)
    };
    let mut last = u64::MAX;
    for _ in 0..50 {
        if let Some(p) = newest() {
            let len = std::fs::metadata(&p).map_or(0, |m| m.len());
            if len == last && len > 0 {
                return p;
            }
            last = len;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    newest().unwrap_or_else(|| prefix.to_path_buf())
}

#[test]
fn talk_is_relayed_to_the_cameras_backchannel_over_tcp_and_udp() {
    let dir = fresh_dir("ipcamd-relay");
    std::fs::create_dir_all(&dir).expect("dir");
    // One camera per relay transport, each writing what its backchannel receives.
    let file = |n: &str| dir.join(format!("{n}.raw")); // PREFIX: PREFIX.N per media
    let _turn = gst_turn();
    // The door camera takes PCMA: our offer for it puts PCMA first.
    let door_cam = gst_camera(&[
        "--backchannel",
        file("door").to_str().unwrap_or_default(),
        "--backchannel-codec",
        "pcma",
    ]);
    let gate_cam = gst_camera(&["--backchannel", file("gate").to_str().unwrap_or_default()]);
    // The GStreamer talker gets a camera of its own, so that each camera serves one
    // backchannel session after another only (fewer of gst-rtsp-server's races).
    let porch_cam = gst_camera(&["--backchannel", file("porch").to_str().unwrap_or_default()]);
    let plain = gst_camera(&[]);
    let url = |c: &GstCamera| format!("rtsp://127.0.0.1:{}/cam", c.port);
    let cameras = [
        proxy_camera("door", &url(&door_cam), "transport = \"tcp\""),
        proxy_camera("gate", &url(&gate_cam), "transport = \"udp\""),
        proxy_camera("porch", &url(&porch_cam), "transport = \"tcp\""),
        proxy_camera("lobby", &url(&plain), ""),
    ]
    .concat();
    let server = start_server(&cameras);
    for name in ["door", "gate", "porch", "lobby"] {
        wait_online(&server, name, Duration::from_secs(15));
    }
    // The backchannel section we offer lists the camera's own codec first.
    for (camera, first) in [("door", "PCMA/8000"), ("gate", "PCMU/8000")] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = Client::connect(&server);
            let r = c.request(&format!(
                "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nRequire: www.onvif.org/ver20/backchannel\r\n\r\n",
                server.url(camera)
            ));
            let sdp = r.body;
            let sendonly = sdp.split("m=").find(|m| m.contains("a=sendonly"));
            let first_rtpmap = sendonly
                .and_then(|m| m.lines().find(|l| l.starts_with("a=rtpmap:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_owned();
            if first_rtpmap == first {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{camera}: the offer starts with {first_rtpmap:?}, not {first}: {sdp}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // What the camera's backchannel got after `talk` ran: its newest file, once settled.
    // gst-rtsp-server 1.22 sometimes leaves a backchannel stream's receiving elements
    // stopped; gst_camera.py starts them (and says so on stderr). Should its media still
    // write nothing, what that media went through is shown, and the talk tried once more.
    let heard = |camera: &str, talk: &dyn Fn() -> String| -> (f64, f64, std::path::PathBuf) {
        for attempt in 1..=2 {
            let said = talk();
            let got = settled(&file(camera));
            let (ratio, secs) = tone_in_raw(&got, 1000.0);
            if secs > 0.0 {
                return (ratio, secs, got);
            }
            let media = std::fs::read_to_string(dir.join(format!("{camera}.raw.events")))
                .unwrap_or_default();
            assert!(
                attempt == 1,
                "{camera}: the gst camera wrote nothing of the relayed talk, twice ({said}); \
                 its media:\n{media}\nour log:\n{}",
                server.log()
            );
            eprintln!(
                "{camera}: the gst camera wrote nothing of the relayed talk ({said}); its \
                 media:\n{media}\nonce more"
            );
        }
        unreachable!()
    };
    // `ipcamd talk` over TCP to the camera relayed over TCP, over UDP to the one relayed
    // over UDP: the camera's backchannel file holds the 1 kHz tone each time.
    for (camera, transport) in [("door", "tcp"), ("gate", "udp")] {
        let talk = || {
            let (ok, out, err) = run_with_timeout(
                ipcamd().args([
                    "talk",
                    &server.url(camera),
                    "--transport",
                    transport,
                    "--duration",
                    "3",
                    "--input",
                    "tone:1000",
                ]),
                Duration::from_secs(30),
            );
            assert!(ok, "ipcamd talk to {camera}: {out} {err}");
            err
        };
        let (ratio, secs, got) = heard(camera, &talk);
        assert!(
            (2.0..=3.6).contains(&secs),
            "{camera}: {secs} s reached the camera's backchannel; log:\n{}",
            server.log()
        );
        assert!(ratio > 0.3, "{camera}: 1 kHz is {ratio} of the power");
        assert!(
            tone_in_raw(&got, 440.0).0 < 0.05,
            "{camera}: not a 1 kHz tone"
        );
    }
    // GStreamer's rtspsrc backchannel=onvif talks over UDP; the relay goes over TCP.
    let gst_talk = || {
        let (ok, out, err) = run_with_timeout(
            Command::new("/usr/bin/python3").args([
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_talk.py"),
                &server.url("porch"),
                "udp",
                "3",
                "1000",
            ]),
            Duration::from_secs(30),
        );
        assert!(ok, "gst_talk.py: {out} {err}");
        out
    };
    let (ratio, secs, _) = heard("porch", &gst_talk);
    assert!(
        secs > 1.5 && ratio > 0.3,
        "GStreamer talker: {secs} s, ratio {ratio}; log:\n{}",
        server.log()
    );
    // Every camera backchannel session the relay opened ended with its talker's.
    let log = server.log();
    let opened = log
        .matches("relaying talk audio to the camera's backchannel")
        .count();
    assert!(opened >= 3, "{log}");
    assert_eq!(
        log.matches("relay to the camera's backchannel ended")
            .count(),
        opened,
        "{log}"
    );
    // A camera without a backchannel: ipcamd offers none either.
    let (ok, _, err) = run_with_timeout(
        ipcamd().args(["talk", &server.url("lobby"), "--duration", "1"]),
        Duration::from_secs(20),
    );
    assert!(!ok, "talking to a camera without a backchannel succeeded");
    assert!(err.contains("551"), "{err}");
    // Video keeps flowing on the relayed cameras.
    let (video, _) = ffmpeg_decode(&server.url("door"), "tcp", 2);
    assert!(video > 40, "{video} frames");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_onvif_camera_is_found_by_its_device_address_and_talked_to() {
    // The upstream is ipcamd itself, with a user (WS-Security for ONVIF, Digest for
    // RTSP) and a backchannel that writes WAV files.
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "ops", "operator", "ops pw!", &["--wsse"]);
    let (_holder, discovery) = discovery_port();
    let upstream = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {discovery}\n",
            users.display()
        ),
        &format!("{SMALL_CAMERA}record = false\n"),
    );
    let device = format!(
        "http://127.0.0.1:{}/onvif/device_service",
        upstream.http_port
    );
    let proxy = start_server(&format!(
        "[[camera]]\nname = \"hall\"\nsource = \"onvif\"\nurl = \"{device}\"\nusername = \"ops\"\npassword = \"ops pw!\"\nrecord = false\n"
    ));
    wait_online(&proxy, "hall", Duration::from_secs(20));
    let (video, audio) = ffmpeg_decode(&proxy.url("hall"), "tcp", 2);
    assert!(
        video >= 40 && audio >= 80,
        "{video} video, {audio} audio frames"
    );
    let log = proxy.log();
    assert!(log.contains("ONVIF stream URI"), "{log}");
    assert!(
        !log.contains("ops pw!") && !log.contains("ops%20pw"),
        "{log}"
    );
    // Talk through the proxy: the upstream's backchannel output gets the tone.
    run_ok(ipcamd().args([
        "talk",
        &proxy.url("hall"),
        "--duration",
        "2",
        "--input",
        "tone:1000",
    ]));
    let files = wait_for_talk_file(&upstream, 1);
    assert_tone(&files[0], 1000.0, 1.5);
}

#[test]
fn an_on_demand_camera_is_connected_only_while_watched() {
    let upstream = start_server(&format!("{SMALL_CAMERA}record = false\n"));
    let proxy = start_server(&proxy_camera(
        "yard",
        &upstream.url("cam1"),
        "on_demand = true",
    ));
    std::thread::sleep(Duration::from_secs(2));
    let idle = camera_stats(&proxy, "yard");
    assert_eq!(idle["online"], false, "{idle}");
    let why = idle["offline_reason"].as_str().unwrap_or_default();
    assert!(why.contains("on demand"), "{why}");
    assert_eq!(
        camera_stats(&upstream, "cam1")["readers"],
        0,
        "connected while idle"
    );
    // A reader's DESCRIBE connects the camera; the reader gets the stream.
    let (video, _) = ffmpeg_decode(&proxy.url("yard"), "tcp", 2);
    assert!(video >= 40, "{video} frames");
    // Nobody watches any more: disconnected after the idle time.
    let deadline = Instant::now() + Duration::from_secs(20);
    while camera_stats(&upstream, "cam1")["readers"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the on-demand camera stayed connected; log:\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(proxy.log().contains("on demand: nobody watching"));
    // A snapshot connects it too.
    let (head, jpeg) = http_get(proxy.http_port, "/snapshot/yard.jpg");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
}

#[test]
fn a_camera_clock_an_hour_off_is_what_the_recording_and_replay_carry() {
    // The upstream camera's clock is an hour behind: its RTCP sender reports say so.
    let upstream = start_server(&format!(
        "{SMALL_CAMERA}record = false\nclock_offset_s = -3600\n"
    ));
    let proxy = start_server(
        &proxy_camera("late", &upstream.url("cam1"), "").replace("record = false", "record = true"),
    );
    wait_online(&proxy, "late", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(4));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (_, body) = http_get(proxy.http_port, "/api/recordings/late");
    let rec: serde_json::Value = serde_json::from_slice(&body).expect("recording JSON");
    let sections = rec["sections"].as_array().cloned().unwrap_or_default();
    // All of it is on the camera's clock: no section at our time.
    assert!(!sections.is_empty(), "{rec}");
    for s in &sections {
        let start = s["start"].as_str().unwrap_or_default();
        let t = ipcamd_proto::time::parse_utc(start).unwrap_or(0) / 1_000_000;
        let behind = now - t;
        assert!(
            (3590..3620).contains(&behind),
            "section starts {start}, {behind} s before now: {rec}"
        );
    }
    // Replay's 0xABAC extension carries the camera's times.
    let out = run_ok(ipcamd().args([
        "replay",
        &proxy.url("replay/late"),
        "--verbose",
        "--duration",
        "1",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text
        .lines()
        .find_map(|l| {
            let t = l.split_whitespace().nth(1)?;
            ipcamd_proto::time::parse_utc(t)
        })
        .unwrap_or_else(|| panic!("no unit times in the replay output: {text}"));
    let behind = now - first / 1_000_000;
    assert!(
        (3590..3620).contains(&behind),
        "replay starts {behind} s before now: {text}"
    );
}

#[test]
fn an_rtsps_camera_with_a_self_signed_certificate() {
    let dir = test_dir();
    let tls = dir.join("tls");
    run_ok(
        ipcamd()
            .args(["cert", "--self-signed", "--out"])
            .arg(&tls)
            .args(["--name", "localhost", "--name", "127.0.0.1"]),
    );
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let upstream = start_server_in(
        dir,
        &format!(
            "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nrtsps_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n",
            cert.display(),
            key.display()
        ),
        &format!("{SMALL_CAMERA}record = false\n"),
    );
    let port = upstream
        .bound
        .rtsps
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("RTSPS not bound: {}", upstream.log()));
    let url = format!("rtsps://127.0.0.1:{port}/cam1");
    // The HTTP tunnel over TLS: to the upstream's HTTPS port.
    let https = upstream
        .bound
        .https
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("HTTPS not bound: {}", upstream.log()));
    let tunnel_url = format!("rtsps://127.0.0.1:{https}/cam1");
    let proxy = start_server(
        &[
            proxy_camera("pinned", &url, &format!("tls_ca = \"{}\"", cert.display())),
            proxy_camera("trusting", &url, "tls_insecure = true"),
            proxy_camera("public", &url, ""),
            proxy_camera(
                "tunnelled",
                &tunnel_url,
                &format!("transport = \"http\"\ntls_ca = \"{}\"", cert.display()),
            ),
        ]
        .concat(),
    );
    for name in ["pinned", "trusting", "tunnelled"] {
        wait_online(&proxy, name, Duration::from_secs(15));
        let (video, audio) = ffmpeg_decode(&proxy.url(name), "tcp", 2);
        assert!(
            video >= 40 && audio >= 80,
            "{name}: {video} video, {audio} audio"
        );
    }
    // Against the public roots, a self-signed certificate is refused, and the reason says
    // what to do.
    let public = camera_stats(&proxy, "public");
    assert_eq!(public["online"], false, "{public}");
    let why = public["offline_reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("certificate") && why.contains("tls_ca"),
        "{why}"
    );
}

/// Decoded frames per stream of `url` over `secs` seconds, as ffprobe counts them:
/// `codec_name|sample_rate|channels|frames` per stream.
fn ffprobe_frames(url: &str, secs: u32) -> Vec<String> {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(ffprobe)
            .args(["-v", "error", "-rtsp_transport", "tcp"])
            .args(["-read_intervals", &format!("%+{secs}"), "-count_frames"])
            .args([
                "-show_entries",
                "stream=codec_name,sample_rate,channels,nb_read_frames",
                "-of",
                "compact=p=0:nk=1",
                url,
            ]),
        Duration::from_secs(30),
    );
    assert!(ok, "ffprobe {url} failed: {stderr}");
    stdout.lines().map(str::to_owned).collect()
}

/// Frames of the stream whose codec is `codec` in [`ffprobe_frames`]' output.
fn frames_of(streams: &[String], codec: &str) -> u64 {
    streams
        .iter()
        .find(|s| s.starts_with(&format!("{codec}|")))
        .and_then(|s| s.rsplit('|').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {codec} stream in {streams:?}"))
}

#[test]
fn codecs_ipcamd_does_not_depacketize_pass_through_live_replay_and_recording() {
    // Opus and G.726-32: ipcamd has no depacketizer for either; the camera's packets are
    // passed through as they came.
    // Its turn among the tests' gst cameras (three encoders of its own).
    let camera = gst_camera_in_turn(&["--opaque-audio"], Some(gst_turn()));
    let url = format!("rtsp://127.0.0.1:{}/cam", camera.port);
    let server = start_server(
        &proxy_camera("op", &url.clone(), "transport = \"tcp\"")
            .replace("record = false", "record = true"),
    );
    wait_online(&server, "op", Duration::from_secs(20));
    assert!(
        server.log().contains("passed through as opaque RTP"),
        "{}",
        server.log()
    );
    // Live: ffprobe decodes all three, with the camera's rtpmap (Opus 48 kHz stereo), as
    // many frames as from the camera itself in the same 3 s.
    let direct = std::thread::spawn(move || ffprobe_frames(&url, 3));
    let live = ffprobe_frames(&server.url("op"), 3);
    let direct = direct.join().expect("ffprobe of the camera");
    for codec in ["h264", "opus", "adpcm_g726le"] {
        let (ours, theirs) = (frames_of(&live, codec), frames_of(&direct, codec));
        assert!(
            ours * 10 >= theirs * 7,
            "{codec}: {ours} frames through ipcamd, {theirs} from the camera"
        );
    }
    assert!(
        live.iter().any(|s| s.starts_with("opus|48000|2|")),
        "{live:?}"
    );
    assert!(
        live.iter().any(|s| s.starts_with("adpcm_g726le|8000|1|")),
        "{live:?}"
    );
    // 20 ms per Opus packet, ~270 ms per G.726 one (rtpg726pay fills the MTU).
    assert!(frames_of(&live, "h264") >= 25, "{live:?}");
    assert!(frames_of(&live, "opus") >= 50, "{live:?}");
    assert!(frames_of(&live, "adpcm_g726le") >= 5, "{live:?}");
    // The recording holds the opaque tracks; replay sends them back, decodable.
    let (_, body) = http_get(server.http_port, "/api/recordings/op");
    let rec: serde_json::Value = serde_json::from_slice(&body).expect("recording JSON");
    // The names are the camera's rtpmap encoding names (GStreamer writes "OPUS").
    let codecs: Vec<String> = rec["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["codec"].as_str().map(str::to_ascii_uppercase))
        .collect();
    assert_eq!(codecs, ["H264", "OPUS", "G726-32"], "{rec:#}");
    let replay = ffprobe_frames(&server.url("replay/op"), 2);
    assert!(frames_of(&replay, "h264") >= 10, "{replay:?}");
    assert!(frames_of(&replay, "opus") >= 25, "{replay:?}");
    assert!(frames_of(&replay, "adpcm_g726le") >= 3, "{replay:?}");
    // An MP4 export leaves the opaque tracks out (MP4 cannot describe them) and keeps the
    // video.
    let start = rec["sections"][0]["start"].as_str().expect("a section");
    let end = rec["sections"][0]["end"].as_str().expect("a section end");
    let path = format!("/api/recordings/op/export.mp4?from={start}&to={end}");
    let (head, mp4) = http_get(server.http_port, &path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let file = server.dir.join("op.mp4");
    std::fs::write(&file, &mp4).expect("write export");
    let streams = ffprobe_streams(file.to_str().unwrap_or_default(), &[]);
    assert_eq!(
        streams.trim(),
        "stream|codec_name=h264|width=320|height=240",
        "{streams}"
    );
}
