//! ONVIF replay end to end: footage imported with the CLI (two 20 s sections with a 20 s
//! gap, a keyframe every second), served at rtsp://HOST/replay/lobby, played by GStreamer's
//! ONVIF mode, ffmpeg, `ipcamd replay` (the client library) over TCP, UDP and the HTTP
//! tunnel, and a raw client for the header rules, PAUSE/resume and `Immediate`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ipcamd_client::replay::{run, ReplayArgs, ReplayReport, YesNo};
use ipcamd_client::talk::TransportArg;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000;
const SEC: i64 = 1_000_000;

const CAMERA: &str = "[[camera]]\nname = \"lobby\"\nwidth = 320\nheight = 180\nbitrate_kbps = 300\nkeyframe_interval_ms = 1000\nrecord = false\n";

/// A server whose store holds lobby [T0, T0+20 s) and [T0+40 s, T0+60 s).
fn fixture() -> ServerProc {
    fixture_with("")
}

/// [`fixture`] with extra `[server]` keys.
fn fixture_with(server_toml: &str) -> ServerProc {
    let dir = test_dir();
    let cfg = dir.join("import.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\ndata_dir = \"{}\"\n{CAMERA}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    for start in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:40Z"] {
        run_ok(
            ipcamd()
                .args([
                    "import",
                    "--camera",
                    "lobby",
                    "--synthetic",
                    "--duration",
                    "20s",
                ])
                .args(["--start", start, "--config"])
                .arg(&cfg),
        );
    }
    start_server_in(dir, server_toml, CAMERA)
}

fn replay(server: &ServerProc, f: impl FnOnce(&mut ReplayArgs)) -> ReplayReport {
    let mut args = ReplayArgs::new(server.url("replay/lobby"));
    f(&mut args);
    if args.transport == TransportArg::Http {
        args.url = format!("rtsp://127.0.0.1:{}/replay/lobby", server.http_port);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let r = rt.block_on(run(args, &mut out));
    r.unwrap_or_else(|e| {
        panic!(
            "replay failed: {e}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out),
            server.log()
        )
    })
}

fn secs(t: i64) -> f64 {
    (t - T0) as f64 / 1e6
}

/// (capture time, C, E, D, T) of the units of `track`.
fn units(r: &ReplayReport, track: usize) -> Vec<(i64, bool, bool, bool, bool)> {
    r.units
        .iter()
        .filter(|u| u.track == track)
        .map(|u| {
            let e = u.ext.expect("every unit carries the replay extension");
            (
                u.wallclock.unwrap(),
                e.clean_point,
                e.end,
                e.discontinuity,
                e.terminal,
            )
        })
        .collect()
}

#[test]
fn forward_closed_range_over_tcp() {
    let server = fixture();
    let r = replay(&server, |a| {
        a.from = Some("2026-01-01T00:00:05.500Z".into());
        a.to = Some("2026-01-01T00:00:08.500Z".into());
    });
    assert_eq!(
        r.range.as_deref(),
        Some("clock=20260101T000005.000Z-20260101T000008.500Z")
    );
    let v = units(&r, 0);
    let a = units(&r, 1);
    // Starts at the keyframe at or before the start, ends at the range end.
    assert_eq!(secs(v[0].0), 5.0);
    assert!(v[0].1, "the first unit is a clean point");
    assert!(v.iter().all(|u| u.0 <= T0 + 8_500_000));
    assert_eq!(v.len(), 88, "5.00 .. 8.48 s at 25 fps");
    assert_eq!(
        v.iter().filter(|u| u.1).count(),
        4,
        "keyframes at 5, 6, 7, 8 s"
    );
    assert!(
        v.windows(2).all(|w| w[1].0 > w[0].0),
        "capture times increase"
    );
    assert!(a.len() >= 170, "{} audio units", a.len());
    assert!(a.iter().all(|u| u.1), "audio units are all clean points");
    // T on the last unit of each track and nowhere else; no E inside a section, no D.
    assert!(v.last().unwrap().4 && a.last().unwrap().4);
    assert_eq!(
        r.units.iter().filter(|u| u.ext.unwrap().terminal).count(),
        2
    );
    assert!(r
        .units
        .iter()
        .all(|u| !u.ext.unwrap().end && !u.ext.unwrap().discontinuity));
    // The CSeq byte is the PLAY's (DESCRIBE 1, OPTIONS? no: SETUP 2, 3, PLAY 4).
    let cseqs: std::collections::BTreeSet<u8> =
        r.units.iter().map(|u| u.ext.unwrap().cseq).collect();
    assert_eq!(cseqs.len(), 1);
}

#[test]
fn whole_recording_marks_section_ends_and_saves_mp4() {
    let server = fixture();
    let mp4 = server.dir.join("saved.mp4");
    let r = replay(&server, |a| a.save = Some(mp4.clone()));
    let v = units(&r, 0);
    assert_eq!(v.len(), 1000, "2 x 20 s at 25 fps");
    assert_eq!(secs(v[0].0), 0.0);
    // E on the last video unit of each section; T only at the very end.
    let ends: Vec<f64> = v.iter().filter(|u| u.2).map(|u| secs(u.0)).collect();
    assert_eq!(ends, vec![19.96, 59.96]);
    assert!(v.last().unwrap().4);
    assert_eq!(r.terminated.len(), 2);
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-count_frames", "-select_streams", "v"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000");
}

#[test]
fn reverse_gops_over_udp_and_intra_through_the_http_tunnel() {
    let server = fixture();
    // All frames, reverse, closed range from 44.5 s down to 41.5 s (over UDP, paced at 1x
    // so that nothing is lost on the loopback).
    let r = replay(&server, |a| {
        a.from = Some("2026-01-01T00:00:44.500Z".into());
        a.to = Some("2026-01-01T00:00:41.500Z".into());
        a.scale = -1.0;
        a.rate_control = YesNo::Yes;
        a.transport = TransportArg::Udp;
    });
    let v = units(&r, 0);
    // No audio in reverse but its T: its first two units from the start point, latest
    // first, each its own GOP (D).
    let a = units(&r, 1);
    assert_eq!(a.len(), 2, "audio: only the units that carry its T");
    assert!(a[0].0 > a[1].0 && a.iter().all(|u| u.1 && u.3));
    assert_eq!((a[0].4, a[1].4), (false, true));
    let gops: Vec<f64> = v.iter().filter(|u| u.3).map(|u| secs(u.0)).collect();
    assert_eq!(
        gops,
        vec![44.0, 43.0, 42.0, 41.0],
        "GOPs latest first, D on each"
    );
    for w in v.windows(2) {
        if w[1].3 {
            assert!(w[1].1, "a GOP starts with its keyframe");
        } else {
            assert!(w[1].0 > w[0].0, "decode order inside a GOP");
        }
    }
    assert!(v.iter().all(|u| u.0 <= T0 + 44_500_000));
    assert_eq!(v.len(), 13 + 25 * 3, "44.00..44.48, then 3 whole GOPs");
    assert!(v.last().unwrap().4, "T on the last unit");

    // Intra only, reverse, across the gap, through the HTTP tunnel.
    let r = replay(&server, |a| {
        a.from = Some("2026-01-01T00:00:50Z".into());
        a.to = Some("2026-01-01T00:00:10Z".into());
        a.scale = -1.0;
        a.frames = Some("intra".into());
        a.transport = TransportArg::Http;
    });
    let v = units(&r, 0);
    let got: Vec<f64> = v.iter().map(|u| secs(u.0)).collect();
    let mut want: Vec<f64> = (10..=19).chain(40..=50).map(f64::from).collect();
    want.reverse();
    assert_eq!(got, want);
    assert!(v.iter().all(|u| u.1 && u.3), "each keyframe is its own GOP");
    let ends: Vec<f64> = v.iter().filter(|u| u.2).map(|u| secs(u.0)).collect();
    assert_eq!(
        ends,
        vec![40.0],
        "E on the last unit sent of the later section"
    );
    assert!(v.last().unwrap().4);
}

#[test]
fn start_points_in_gaps_and_intra_interval() {
    let server = fixture();
    // Forward from inside the gap: the first keyframe of the next section.
    let r = replay(&server, |a| {
        a.from = Some("2026-01-01T00:00:30Z".into());
        a.to = Some("2026-01-01T00:00:41Z".into());
        a.frames = Some("intra/2000".into());
    });
    let got: Vec<f64> = units(&r, 0).iter().map(|u| secs(u.0)).collect();
    assert_eq!(got, vec![40.0]);
    // Forward from before the recording (GStreamer's 1900 start), keyframes 5 s apart on
    // the recording timeline.
    let r = replay(&server, |a| {
        a.from = Some("1900-01-01T00:00:00Z".into());
        a.to = Some("2026-01-01T00:00:50Z".into());
        a.frames = Some("intra/5000".into());
    });
    let got: Vec<f64> = units(&r, 0).iter().map(|u| secs(u.0)).collect();
    assert_eq!(got, vec![0.0, 5.0, 10.0, 15.0, 40.0, 45.0, 50.0]);
    // Reverse from inside the gap: the last keyframe of the previous section.
    let r = replay(&server, |a| {
        a.from = Some("2026-01-01T00:00:30Z".into());
        a.to = Some("2026-01-01T00:00:18Z".into());
        a.scale = -1.0;
        a.frames = Some("intra".into());
    });
    let got: Vec<f64> = units(&r, 0).iter().map(|u| secs(u.0)).collect();
    assert_eq!(got, vec![19.0, 18.0]);
}

/// A raw RTSP connection that keeps interleaved packets: (channel, RTP bytes).
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
    packets: Vec<(u8, Vec<u8>)>,
    cseq: u32,
}

/// From an RTP packet with the replay extension: (capture µs, flags byte, cseq byte, seq).
fn ext(p: &[u8]) -> Option<(i64, u8, u8, u16)> {
    if p.len() < 28 || p[0] & 0x10 == 0 || p[12..14] != [0xAB, 0xAC] {
        return None;
    }
    let ntp = u64::from_be_bytes(p[16..24].try_into().ok()?);
    Some((
        ipcamd_proto::time::ntp_to_unix_micros(ntp),
        p[24],
        p[25],
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

impl Raw {
    fn connect(server: &ServerProc) -> Raw {
        let s = TcpStream::connect(server.rtsp_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Raw {
            s,
            buf: Vec::new(),
            packets: Vec::new(),
            cseq: 0,
        }
    }

    /// Sends a request (CSeq added) and returns (status, head), keeping packets read meanwhile.
    fn request(&mut self, head: &str) -> (u16, String) {
        let (st, h, _) = self.request_body(head);
        (st, h)
    }

    fn request_body(&mut self, head: &str) -> (u16, String, String) {
        self.cseq += 1;
        let (first, rest) = head.split_once("\r\n").unwrap_or((head, ""));
        let text = format!("{first}\r\nCSeq: {}\r\n{rest}\r\n", self.cseq);
        self.s.write_all(text.as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.parse();
            if self.buf.first().is_some_and(|&b| b != b'$') {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if self.buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                        self.buf.drain(..end + 4 + len);
                        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                        return (status, head, body);
                    }
                }
            }
            assert!(Instant::now() < deadline, "no answer to {head:?}");
            self.fill();
        }
    }

    fn fill(&mut self) {
        let mut chunk = vec![0u8; 1 << 16];
        match self.s.read(&mut chunk) {
            Ok(0) => panic!("server closed the connection"),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }

    fn parse(&mut self) {
        while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
            let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
            if self.buf.len() < 4 + len {
                break;
            }
            let p = self.buf[4..4 + len].to_vec();
            self.packets.push((self.buf[1], p));
            self.buf.drain(..4 + len);
        }
    }

    /// Reads packets for `d`.
    fn read_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.fill();
            self.parse();
        }
    }

    /// Video units (channel 0) with the extension, from the first packet of each unit
    /// (every packet carries it): (capture µs, flags, cseq byte, seq).
    fn video(&self) -> Vec<(i64, u8, u8, u16)> {
        let mut after_marker = true;
        let mut out = Vec::new();
        for (_, p) in self.packets.iter().filter(|(c, _)| *c == 0) {
            if after_marker {
                out.extend(ext(p));
            }
            after_marker = p.get(1).is_some_and(|b| b & 0x80 != 0);
        }
        out
    }

    /// The largest video packet (channel 0) held, in bytes.
    fn largest_video_packet(&self) -> usize {
        self.packets
            .iter()
            .filter(|(c, _)| *c == 0)
            .map(|(_, p)| p.len())
            .max()
            .unwrap_or(0)
    }

    fn setup(&mut self, url: &str) -> String {
        let (st, head) = self.request(&format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nRequire: onvif-replay\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
        ));
        assert_eq!(st, 200, "{head}");
        let session = session_id(&head);
        let (st, _) = self.request(&format!(
            "SETUP {url}/trackID=1 RTSP/1.0\r\nSession: {session}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"
        ));
        assert_eq!(st, 200);
        session
    }
}

#[test]
fn describe_tags_and_bad_play_headers() {
    let server = fixture();
    let url = server.url("replay/lobby");
    let mut c = Raw::connect(&server);
    let (st, head, sdp) = c.request_body(&format!("DESCRIBE {url} RTSP/1.0\r\n"));
    assert_eq!(st, 200, "{head}");
    assert!(sdp.contains("a=x-onvif-track:VIDEO001"), "{sdp}");
    assert!(sdp.contains("a=x-onvif-track:AUDIO001"), "{sdp}");
    assert!(
        sdp.contains("a=range:clock=20260101T000000.000Z-20260101T000059.980Z"),
        "{sdp}"
    );
    assert!(sdp.contains("a=control:trackID=1"));
    let (st, _) = c.request(&format!(
        "DESCRIBE {} RTSP/1.0\r\n",
        server.url("replay/nosuch")
    ));
    assert_eq!(st, 404);
    let (st, head) = c.request(&format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nRequire: onvif-replay, x-funky\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
    ));
    assert_eq!(
        (st, header(&head, "Unsupported").as_deref()),
        (551, Some("x-funky"))
    );
    // The replay tag is for replay URLs only.
    let (st, _) = c.request(&format!(
        "OPTIONS {} RTSP/1.0\r\nRequire: onvif-replay\r\n",
        server.url("lobby")
    ));
    assert_eq!(st, 551);
    let session = c.setup(&url);
    for (h, want) in [
        ("Scale: 2\r\nRate-Control: no\r\n", 400),
        ("Scale: 0\r\n", 400),
        ("Frames: intra/x\r\n", 400),
        ("Rate-Control: perhaps\r\n", 400),
        ("Range: clock=garbage\r\n", 400),
        ("Range: clock=20260101T000030Z-20260101T000010Z\r\n", 457),
        (
            "Range: clock=20260101T000010Z-20260101T000030Z\r\nScale: -1\r\n",
            457,
        ),
        ("Range: clock=20260101T010000Z-\r\n", 457),
        ("Range: clock=20251231T000000Z-\r\nScale: -1\r\n", 457),
        ("Range: clock=20260101T000025Z-20260101T000030Z\r\n", 457),
    ] {
        let (st, head) = c.request(&format!(
            "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRequire: onvif-replay\r\n{h}"
        ));
        assert_eq!(st, want, "{h:?} -> {head}");
        assert!(
            head.lines().next().unwrap().contains('('),
            "a reason: {head}"
        );
    }
    // The session survived every refusal.
    let (st, head) = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRange: npt=2-3\r\nRate-Control: no\r\n"
    ));
    assert_eq!(st, 200, "{head}");
    assert_eq!(
        header(&head, "Range").as_deref(),
        Some("clock=20260101T000002.000Z-20260101T000003.000Z")
    );
    assert_eq!(header(&head, "Rate-Control").as_deref(), Some("no"));
    assert_eq!(header(&head, "Scale").as_deref(), Some("1.0"));
    assert!(header(&head, "RTP-Info")
        .unwrap()
        .contains("trackID=0;seq="));
    c.read_for(Duration::from_millis(500));
    let v = c.video();
    assert_eq!(secs(v[0].0), 2.0);
    assert_eq!(v.len(), 26);
    // The extension is on every packet, D only on a unit's first, T only on its last: the
    // last unit (the keyframe at 3 s: parameter sets and fragments) ends with T.
    let video: Vec<&Vec<u8>> = c
        .packets
        .iter()
        .filter(|(ch, _)| *ch == 0)
        .map(|(_, p)| p)
        .collect();
    assert!(video.iter().all(|p| ext(p).is_some()), "every packet");
    let last_unit: Vec<(i64, u8)> = video
        .iter()
        .filter_map(|p| ext(p))
        .filter(|u| secs(u.0) == 3.0)
        .map(|u| (u.0, u.1))
        .collect();
    assert!(last_unit.len() > 1, "a keyframe spans several packets");
    let t: Vec<bool> = last_unit.iter().map(|u| u.1 & 0x10 != 0).collect();
    assert_eq!(t.iter().filter(|&&t| t).count(), 1);
    assert_eq!(t.last(), Some(&true), "T on the last packet");
    assert!(
        last_unit.iter().all(|u| u.1 & 0x80 != 0),
        "C on every packet"
    );
}

#[test]
fn pause_resume_and_immediate() {
    let server = fixture();
    let url = server.url("replay/lobby");
    let mut c = Raw::connect(&server);
    let session = c.setup(&url);
    // Real-time forward from 2 s: read a while, PAUSE, resume without Range.
    let (st, _) = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRange: clock=20260101T000002Z-\r\n"
    ));
    assert_eq!(st, 200);
    c.read_for(Duration::from_millis(1200));
    let (st, _) = c.request(&format!("PAUSE {url}/ RTSP/1.0\r\nSession: {session}\r\n"));
    assert_eq!(st, 200);
    c.read_for(Duration::from_millis(500));
    let before = c.video();
    assert!(before.len() >= 20, "{} units in 1.2 s at 1x", before.len());
    assert!(
        before.len() <= 45,
        "{} units: not paced at 1x",
        before.len()
    );
    let n = c.packets.len();
    c.read_for(Duration::from_millis(500));
    assert_eq!(c.packets.len(), n, "nothing is sent while paused");
    let video_seqs = |c: &Raw| -> Vec<u16> {
        c.packets
            .iter()
            .filter(|(ch, _)| *ch == 0)
            .map(|(_, p)| u16::from_be_bytes([p[2], p[3]]))
            .collect()
    };
    let sent_before = video_seqs(&c).len();
    let (st, head) = c.request(&format!("PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\n"));
    assert_eq!(st, 200, "{head}");
    c.read_for(Duration::from_millis(600));
    let all = c.video();
    let after = &all[before.len()..];
    let last = before.last().unwrap();
    assert!(after.len() >= 10);
    // The packets after the resume go on from the last one sent, without a gap (the
    // server frames batches ahead of what it writes: what it saved at PAUSE must be what
    // was written), and RTP-Info of the resuming PLAY says so.
    let seqs = video_seqs(&c);
    let next = seqs[sent_before];
    assert_eq!(
        next,
        seqs[sent_before - 1].wrapping_add(1),
        "sequence numbers go on without a gap after PAUSE"
    );
    let info = header(&head, "RTP-Info").unwrap_or_default();
    let said: Option<u16> = info
        .split_once("trackID=0;seq=")
        .and_then(|(_, rest)| rest.split([';', ',']).next()?.trim().parse().ok());
    assert_eq!(
        said,
        Some(next),
        "RTP-Info of the resuming PLAY names the next sequence number: {info}"
    );
    // Continues right after the last unit, no repeat, no D; its own CSeq byte; sequence
    // numbers go on increasing.
    assert_eq!(after[0].0 - last.0, 40_000, "resumes with the next frame");
    assert_ne!(after[0].2, last.2);
    assert_eq!(after[0].1 & 0x20, 0);
    assert!(all.windows(2).all(|w| w[1].3 > w[0].3 || w[0].3 > 65000));

    // Immediate: yes replaces the running delivery; its first unit has D.
    let (st, _) = c.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRange: clock=20260101T000045Z-\r\nImmediate: yes\r\n"
    ));
    assert_eq!(st, 200);
    let cseq = (c.cseq & 0xff) as u8;
    c.read_for(Duration::from_millis(600));
    let v = c.video();
    let new: Vec<_> = v.iter().filter(|u| u.2 == cseq).collect();
    assert!(!new.is_empty());
    assert_eq!(secs(new[0].0), 45.0);
    assert_eq!(
        new[0].1 & 0xA0,
        0xA0,
        "C and D on the first unit after the jump"
    );
    let first_new = v.iter().position(|u| u.2 == cseq).unwrap();
    assert!(
        v[first_new..].iter().all(|u| u.2 == cseq),
        "the old delivery stopped"
    );
    let (st, _) = c.request(&format!(
        "TEARDOWN {url}/ RTSP/1.0\r\nSession: {session}\r\n"
    ));
    assert_eq!(st, 200);
}

#[test]
fn ffmpeg_plays_the_replay_url_forward_in_real_time() {
    let server = fixture();
    let t = Instant::now();
    let (video, audio) = ffmpeg_decode(&server.url("replay/lobby"), "tcp", 3);
    let took = t.elapsed();
    assert!((70..=80).contains(&video), "{video} video frames in 3 s");
    assert!(audio > 0);
    assert!(
        took >= Duration::from_millis(2500),
        "paced at 1x: took {took:?}"
    );
}

/// One GStreamer client at a time: two of them beside the server starve on 2 cores.
static GST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn gst_turn() -> std::sync::MutexGuard<'static, ()> {
    GST.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn gstreamer_onvif_mode_forward_and_reverse() {
    let _turn = gst_turn();
    let server = fixture();
    let python = std::path::PathBuf::from("/usr/bin/python3");
    assert!(
        python.is_file(),
        "needs /usr/bin/python3 with python3-gi (scripts/test.sh)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/gst_replay.py");
    let t0 = T0 / SEC;
    let gst = |args: &[String]| -> serde_json::Value {
        let (ok, stdout, stderr) = run_with_timeout(
            Command::new(&python)
                .arg(script)
                .arg(server.url("replay/lobby"))
                .args(args),
            Duration::from_secs(40),
        );
        assert!(ok, "gst_replay.py failed: {stderr}\n{stdout}");
        serde_json::from_str(stdout.trim()).unwrap()
    };
    // Returns the units of the last PLAY (the seek's): (media, secs, C, E, D, T).
    let last_play =
        |v: &serde_json::Value, key: &str| -> Vec<(String, f64, bool, bool, bool, bool)> {
            let p = v[key].as_array().unwrap();
            let cseq = p.iter().map(|x| x[0].as_u64().unwrap()).max().unwrap();
            p.iter()
                .filter(|x| x[0].as_u64() == Some(cseq))
                .map(|x| {
                    (
                        x[1].as_str().unwrap().to_owned(),
                        ((x[2].as_f64().unwrap() - t0 as f64) * 100.0).round() / 100.0,
                        x[3].as_bool().unwrap(),
                        x[4].as_bool().unwrap(),
                        x[5].as_bool().unwrap(),
                        x[6].as_bool().unwrap(),
                    )
                })
                .collect()
        };
    // Forward seek to [45 s, 48 s]: what GStreamer hands out after rtponvifparse's input.
    let v = gst(&[(t0 + 45).to_string(), (t0 + 48).to_string(), "1".into()]);
    let out = last_play(&v, "packets");
    let video: Vec<_> = out.iter().filter(|u| u.0 == "video").collect();
    assert!(video.len() >= 70, "{} video units", video.len());
    let outside: Vec<_> = video
        .iter()
        .filter(|u| !(45.0..=48.0).contains(&u.1))
        .collect();
    assert!(
        outside.is_empty(),
        "{} of {} video units outside [45 s, 48 s], the first {:?}",
        outside.len(),
        video.len(),
        outside.first()
    );
    assert!(
        video.windows(2).all(|w| w[1].1 > w[0].1),
        "not in capture order: {video:?}"
    );
    assert!(video.last().unwrap().5, "T at the range end");
    assert!(out.iter().filter(|u| u.0 == "audio").count() >= 100);
    // What it received: starts at the keyframe at 45 s.
    let rx = last_play(&v, "received");
    let first = rx.iter().find(|u| u.0 == "video").unwrap();
    assert_eq!((first.1, first.2), (45.0, true));

    // Reverse, intra only, from 50 s down to 10 s: GOPs latest first, D on each, E on the
    // last unit of the later section, T at the end. (GStreamer 1.22's live-mode jitterbuffer
    // holds reverse data back, so this checks what rtspsrc received: see the script.)
    let v = gst(&[
        (t0 + 10).to_string(),
        (t0 + 50).to_string(),
        "-1".into(),
        "intra".into(),
    ]);
    let all = last_play(&v, "received");
    let (audio, rx): (Vec<_>, Vec<_>) = all.into_iter().partition(|u| u.0 == "audio");
    let times: Vec<f64> = rx.iter().map(|u| u.1).collect();
    let mut want: Vec<f64> = (10..=19).chain(40..=50).map(f64::from).collect();
    want.reverse();
    assert_eq!(times, want);
    assert!(rx.iter().all(|u| u.0 == "video" && u.2 && u.4));
    // Audio: only the two units at the start point that carry its T.
    let t: Vec<bool> = audio.iter().map(|u| u.5).collect();
    assert_eq!(t, [false, true], "{audio:?}");
    let ends: Vec<f64> = rx.iter().filter(|u| u.3).map(|u| u.1).collect();
    assert_eq!(ends, vec![40.0]);
    assert!(rx.last().unwrap().5);
}

/// What a GStreamer application receives (docs/replay.md "GStreamer as a peer"):
/// `rtspsrc onvif-mode=true` with `Rate-Control: no`, rtponvifparse, rtph264depay and an
/// appsink on video, a fakesink on audio; a flushing seek once the first PLAY flows.
/// Returns (capture time in seconds from T0, keyframe) of each buffer the appsink got from
/// the seek's segment.
fn gst_appsink(
    server: &ServerProc,
    from: i64,
    to: i64,
    rate: &str,
    intra: bool,
) -> Vec<(f64, bool)> {
    let python = std::path::PathBuf::from("/usr/bin/python3");
    assert!(
        python.is_file(),
        "needs /usr/bin/python3 with python3-gi (scripts/test.sh)"
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/gst_replay_appsink.py"
    );
    let t0 = T0 / SEC;
    let mut cmd = Command::new(&python);
    cmd.arg(script).arg(server.url("replay/lobby")).args([
        (t0 + from).to_string(),
        (t0 + to).to_string(),
        rate.into(),
    ]);
    if intra {
        cmd.arg("intra");
    }
    let (ok, stdout, stderr) = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(ok, "gst_replay_appsink.py failed: {stderr}\n{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let t = f[0].as_f64().unwrap() - t0 as f64;
            ((t * 100.0).round() / 100.0, f[1].as_bool().unwrap())
        })
        .collect()
}

#[test]
fn gstreamer_application_receives_reverse_frames_with_capture_times() {
    let _turn = gst_turn();
    let server = fixture();
    // Reverse, key units only, from 50 s down to 10 s, across the gap: keyframes latest
    // first. (GStreamer 1.22's rtspsrc drops the first unit after a seek, here the one at
    // 50 s: docs/replay.md.)
    let f = gst_appsink(&server, 10, 50, "-1", true);
    let times: Vec<f64> = f.iter().map(|u| u.0).collect();
    assert!(f.len() >= 19, "{} frames: {times:?}", f.len());
    assert!(f.iter().all(|u| u.1), "keyframes only");
    assert!(
        times.windows(2).all(|w| w[1] < w[0]),
        "reverse order: {times:?}"
    );
    let mut want: Vec<f64> = (10..=19).chain(40..=50).map(f64::from).collect();
    want.reverse();
    assert!(
        times.iter().all(|t| want.contains(t)),
        "capture times: {times:?}"
    );
    assert_eq!(times.last(), Some(&10.0));

    // Reverse, all frames, from 50 s down to 40 s: GOPs latest first, each in decode
    // order, with the capture time of every frame.
    let f = gst_appsink(&server, 40, 50, "-1", false);
    assert!(f.len() >= 225, "{} frames", f.len());
    let keys: Vec<f64> = f.iter().filter(|u| u.1).map(|u| u.0).collect();
    let want: Vec<f64> = (40..=49).rev().map(f64::from).collect();
    assert!(keys.ends_with(&want), "GOPs: {keys:?}");
    for w in f.windows(2) {
        if w[1].1 {
            assert!(
                w[1].0 < w[0].0,
                "a GOP starts earlier than the one before: {w:?}"
            );
        } else {
            assert!(
                (w[1].0 - w[0].0 - 0.04).abs() < 0.005,
                "frames of a GOP in order, 40 ms apart: {w:?}"
            );
        }
    }
    assert!(f.iter().all(|u| (40.0..=50.0).contains(&u.0)));

    // Forward, the same way: every frame in order (the keyframe at 45 s is the unit
    // rtspsrc drops; 48 s, the segment's stop, is clipped by the sink).
    let f = gst_appsink(&server, 45, 48, "1", false);
    assert!(f.len() >= 70, "{} frames", f.len());
    assert!(f.windows(2).all(|w| w[1].0 > w[0].0));
    assert!(f.iter().all(|u| (45.0..48.0).contains(&u.0)));
}

#[test]
fn a_growing_recording_keeps_delivering() {
    let server = start_server_with(
        "[store]\nflush_ms = 200\n",
        "[[camera]]\nname = \"cam1\"\nwidth = 320\nheight = 180\nbitrate_kbps = 300\nrecord = true\n",
    );
    std::thread::sleep(Duration::from_secs(3));
    let started = ipcamd_media::pacer::now_micros();
    let mut args_from = ipcamd_proto::time::format_iso8601(started - 2 * SEC);
    args_from.retain(|c| c != ' ');
    let r = {
        let mut args = ReplayArgs::new(server.url("replay/cam1"));
        args.from = Some(args_from);
        // At 2x the delivery catches up with the live edge and must wait for new footage.
        args.rate_control = YesNo::Yes;
        args.scale = 2.0;
        args.duration = Some(4.0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut out = Vec::new();
        rt.block_on(run(args, &mut out)).unwrap()
    };
    let v: Vec<i64> = r
        .units
        .iter()
        .filter(|u| u.track == 0)
        .filter_map(|u| u.wallclock)
        .collect();
    assert!(v.len() >= 120, "{} video units in 4 s", v.len());
    // Footage recorded after the PLAY arrived, and no T: the recording goes on.
    assert!(
        *v.last().unwrap() > started + 2 * SEC,
        "delivery continued with new footage: {} units, first {} last {} (µs from PLAY)",
        v.len(),
        v[0] - started,
        v.last().unwrap() - started
    );
    assert!(r.terminated.is_empty());
}

#[test]
fn blocksize_sets_the_replay_packet_size() {
    let server = fixture();
    let url = server.url("replay/lobby");
    let mut raw = Raw::connect(&server);
    let session = raw.setup(&url);
    let mut play = |extra: &str| -> (u16, Vec<i64>, usize) {
        raw.packets.clear();
        let (st, head) = raw.request(&format!(
            "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRange: clock=20260101T000000Z-20260101T000005Z\r\nRate-Control: no\r\n{extra}"
        ));
        if st != 200 {
            return (st, Vec::new(), 0);
        }
        assert!(!head.contains("Blocksize"), "{head}");
        raw.read_for(Duration::from_millis(1500));
        let units = raw.video().iter().map(|u| u.0).collect();
        (st, units, raw.largest_video_packet())
    };
    // Without Blocksize: live's packet size (12-byte header, 16-byte extension, 1384).
    let (_, units, largest) = play("");
    assert!(units.len() >= 120, "{} video units", units.len());
    assert!(largest <= 1412, "a {largest}-byte packet");
    // Asked for 8000: keyframes go in larger packets, none beyond 8000 + 28.
    let (_, big_units, largest) = play("Blocksize: 8000\r\n");
    assert_eq!(big_units, units, "the same units in other packets");
    assert!(
        (1413..=8028).contains(&largest),
        "largest packet {largest} bytes with Blocksize 8000"
    );
    // A Blocksize that is not a number: 400 naming it, and the session goes on.
    let (st, _, _) = play("Blocksize: lots\r\n");
    assert_eq!(st, 400);
    let (st, again, largest) = play("");
    assert_eq!(st, 200);
    assert_eq!(again, units);
    assert!((1413..=8028).contains(&largest), "the session keeps 8000");

    // Through the client library: the same units, byte for byte in size, at both sizes,
    // over TCP and UDP. Over UDP paced (Scale 4): unpaced, a busy machine drops datagrams
    // in the client's socket buffer, as UDP may (seen in CI with 60 000-byte packets).
    for transport in [TransportArg::Tcp, TransportArg::Udp] {
        let run_with = |blocksize: Option<u32>| {
            replay(&server, |a| {
                a.from = Some("2026-01-01T00:00:40Z".into());
                a.to = Some("2026-01-01T00:00:50Z".into());
                a.transport = transport;
                a.blocksize = blocksize;
                if transport == TransportArg::Udp {
                    a.rate_control = YesNo::Yes;
                    a.scale = 4.0;
                }
            })
        };
        // Each track in its order (over UDP the two tracks' sockets interleave as they
        // are read).
        let by_track = |mut u: Vec<ipcamd_client::replay::ReceivedUnit>| {
            u.sort_by_key(|u| u.track);
            u
        };
        let small = by_track(run_with(None).units);
        let large = by_track(run_with(Some(60_000)).units);
        assert!(small.len() > 300, "{} units", small.len());
        assert_eq!(small.len(), large.len(), "over {transport:?}");
        if let Some(i) = (0..small.len()).find(|&i| small[i] != large[i]) {
            panic!(
                "over {transport:?}, unit {i}: {:?} with 1384-byte packets, {:?} with 60000",
                small[i], large[i]
            );
        }
    }
}

/// Peers nobody here wrote take replay packets larger than an MTU: a server whose
/// `replay_blocksize` (4000) fragments keyframes into 4000-byte FU-As and sends the other
/// frames whole, played by ffmpeg, GStreamer's ONVIF mode into an application, and retina.
#[test]
fn real_peers_take_large_replay_packets() {
    let _turn = gst_turn();
    let server = fixture_with("replay_blocksize = 4000\n");
    // What crosses the wire (the raw client, no Blocksize): packets beyond 1412 bytes.
    let url = server.url("replay/lobby");
    let mut raw = Raw::connect(&server);
    let session = raw.setup(&url);
    let (st, _) = raw.request(&format!(
        "PLAY {url}/ RTSP/1.0\r\nSession: {session}\r\nRange: clock=20260101T000000Z-20260101T000003Z\r\nRate-Control: no\r\n"
    ));
    assert_eq!(st, 200);
    raw.read_for(Duration::from_millis(1000));
    let largest = raw.largest_video_packet();
    assert!(
        (1413..=4028).contains(&largest),
        "largest packet {largest} bytes"
    );

    let (video, audio) = ffmpeg_decode(&url, "tcp", 3);
    assert!(
        (70..=80).contains(&video),
        "ffmpeg: {video} video frames in 3 s"
    );
    assert!(audio > 0);

    let f = gst_appsink(&server, 45, 48, "1", false);
    assert!(f.len() >= 70, "GStreamer: {} frames", f.len());
    assert!(f.windows(2).all(|w| w[1].0 > w[0].0));
    assert!(f.iter().all(|u| (45.0..48.0).contains(&u.0)));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (frames, keyframes) = rt.block_on(retina_frames(&url, Duration::from_secs(3)));
    assert!(
        (65..=80).contains(&frames),
        "retina: {frames} video frames in 3 s"
    );
    assert!(keyframes >= 2, "retina: {keyframes} keyframes");
}

/// Video frames and keyframes retina's demuxer hands out in `time` of a replay over TCP.
async fn retina_frames(url: &str, time: Duration) -> (usize, usize) {
    use futures::StreamExt;
    use retina::client::{PlayOptions, SessionOptions, SetupOptions, Transport};
    use retina::codec::CodecItem;
    let url = url::Url::parse(url).unwrap();
    let mut session = retina::client::Session::describe(url, SessionOptions::default())
        .await
        .expect("retina DESCRIBE");
    session
        .setup(
            0,
            SetupOptions::default().transport(Transport::Tcp(Default::default())),
        )
        .await
        .expect("retina SETUP");
    let mut playing = session
        .play(PlayOptions::default())
        .await
        .expect("retina PLAY")
        .demuxed()
        .expect("demuxed");
    let start = Instant::now();
    let (mut frames, mut keyframes) = (0, 0);
    while start.elapsed() < time {
        let item = tokio::time::timeout(Duration::from_secs(3), playing.next())
            .await
            .expect("retina: no media for 3 s")
            .expect("retina: stream ended")
            .expect("retina error");
        if let CodecItem::VideoFrame(f) = item {
            frames += 1;
            keyframes += usize::from(f.is_random_access_point());
        }
    }
    (frames, keyframes)
}
