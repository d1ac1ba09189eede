//! The session core driven by tables: every method in every state, every status the core
//! gives, and the captured requests of real clients replayed as whole conversations.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::rtsp::message::{Decoder, Frame, Limits};
use crate::rtsp::test_support::capture_messages;
use crate::sdp::parse_sdp;

use super::testing::{Cat, T};

fn parse(text: &str) -> Request {
    let mut buf = BytesMut::from(text.as_bytes());
    match Decoder::new(Limits::default()).decode(&mut buf) {
        Ok(Some(Frame::Request(r))) => r,
        other => panic!("not a request: {other:?}\n{text}"),
    }
}

/// The core with a clock, one connection and automatic answers to its steps.
struct Harness {
    core: Sessions,
    cat: Cat,
    ctx: Context,
    user: Option<String>,
    /// What `talk_acquired` is told: `Some(owner)` = refused.
    talk_owner: Option<String>,
    /// The actions of every answer so far.
    actions: Vec<Action>,
    cseq: u32,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            core: Sessions::new(
                Config {
                    session_timeout: Duration::from_secs(60),
                    max_sessions_per_connection: 4,
                    udp_ports: Some((6970, 6971)),
                    replay_blocksize: 1384,
                },
                [7; 32],
            ),
            cat: Cat::default(),
            ctx: Context {
                conn: 1,
                peer: "127.0.0.1:50000".parse().unwrap(),
                local_ip: "127.0.0.1".parse().unwrap(),
                now: Instant::now(),
                now_utc: T,
            },
            user: None,
            talk_owner: None,
            actions: Vec::new(),
            cseq: 0,
        }
    }

    fn request(&mut self, req: &Request) -> Answer {
        let user = self.user.clone();
        let step = self.core.handle(req, &self.ctx, &self.cat, |_| Ok(user));
        let a = match step {
            Step::Answer(a) => a,
            Step::LiveJoin(p) => self.core.live_joined(
                p,
                &[
                    Some(LiveJoin {
                        seq: 100,
                        rtp_timestamp: 9000,
                        wallclock: self.ctx.now_utc,
                        clock_rate: 90_000,
                    }),
                    Some(LiveJoin {
                        seq: 200,
                        rtp_timestamp: 800,
                        wallclock: self.ctx.now_utc,
                        clock_rate: 8000,
                    }),
                ],
                &self.ctx,
            ),
            Step::ReplayOpen(p) => {
                let sp = p.request.play.start.map(|s| s.max(T)).or(Some(T));
                let start = ReplayStart {
                    start_point: sp,
                    rtptimes: p.request.tracks.iter().map(|&t| (t, 1234)).collect(),
                    seqs: p.request.tracks.iter().map(|&t| (t, 77)).collect(),
                };
                self.core.replay_opened(p, Ok(start))
            }
            Step::TalkAcquire(p) => {
                let r = match &self.talk_owner {
                    Some(o) => Err(TalkRefusal::Busy { owner: o.clone() }),
                    None => Ok(()),
                };
                self.core.talk_acquired(p, r)
            }
        };
        assert_eq!(
            a.response.cseq(),
            req.cseq(),
            "every answer echoes CSeq: {:?}",
            a.response
        );
        self.actions.extend(a.before.iter().cloned());
        self.actions.extend(a.after.iter().cloned());
        a
    }

    /// Sends `METHOD url` with extra header lines; returns the answer.
    fn send(&mut self, method: &str, url: &str, headers: &str) -> Answer {
        self.cseq += 1;
        let text = format!(
            "{method} rtsp://127.0.0.1:8554/{url} RTSP/1.0\r\nCSeq: {}\r\n{headers}\r\n",
            self.cseq
        );
        self.request(&parse(&text))
    }

    fn status(&mut self, method: &str, url: &str, headers: &str) -> u16 {
        self.send(method, url, headers).response.status
    }

    /// SETUP of `url` over TCP; returns the session id.
    fn setup(&mut self, url: &str, session: Option<&str>, channels: (u8, u8)) -> String {
        let mut h = format!(
            "Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\n",
            channels.0, channels.1
        );
        if let Some(s) = session {
            h.push_str(&format!("Session: {s}\r\n"));
        }
        let a = self.send("SETUP", url, &h);
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        session_of(&a)
    }
}

fn session_of(a: &Answer) -> String {
    a.response
        .session_id()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no Session in {:?}", a.response))
}

// ---------------------------------------------------------------------------------------
// Every method in every state

#[derive(Clone, Copy, Debug)]
enum At {
    /// No session (Init): the request names none.
    Init,
    Ready,
    Playing,
}

/// Brings a session of `path` (`cam1` live or `replay/cam1`) to `at`; its id.
fn prepare(h: &mut Harness, path: &str, at: At) -> Option<String> {
    if let At::Init = at {
        return None;
    }
    let id = h.setup(&format!("{path}/trackID=0"), None, (0, 1));
    if let At::Playing = at {
        let s = h.status("PLAY", &format!("{path}/"), &format!("Session: {id}\r\n"));
        assert_eq!(s, 200);
    }
    Some(id)
}

#[test]
fn every_method_in_every_state() {
    // (method, extra headers, body, status at Init, Ready, Playing) for a live and a
    // replay session.
    type Row = (&'static str, &'static str, &'static str, [u16; 3], [u16; 3]);
    let tcp = "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n";
    let rows: &[Row] = &[
        ("OPTIONS", "", "", [200, 200, 200], [200, 200, 200]),
        ("DESCRIBE", "", "", [200, 200, 200], [200, 200, 200]),
        // SETUP of the second track: fine in Ready, 455 while playing. At Init it makes
        // a new session.
        ("SETUP", tcp, "", [200, 200, 455], [200, 200, 455]),
        ("PLAY", "", "", [454, 200, 200], [454, 200, 200]),
        ("PAUSE", "", "", [454, 200, 200], [454, 200, 200]),
        ("TEARDOWN", "", "", [454, 200, 200], [454, 200, 200]),
        ("GET_PARAMETER", "", "", [200, 200, 200], [200, 200, 200]),
        ("SET_PARAMETER", "", "", [200, 200, 200], [200, 200, 200]),
        (
            "SET_PARAMETER",
            "Content-Length: 5\r\n",
            "x: y\n",
            [451, 451, 451],
            [451, 451, 451],
        ),
        ("ANNOUNCE", "", "", [405, 405, 405], [405, 405, 405]),
        ("RECORD", "", "", [405, 405, 405], [405, 405, 405]),
        ("REDIRECT", "", "", [405, 405, 405], [405, 405, 405]),
        ("FLY", "", "", [501, 501, 501], [501, 501, 501]),
    ];
    let mut checked = 0;
    for (method, extra, body, live, replay) in rows {
        for (path, want) in [("cam1", live), ("replay/cam1", replay)] {
            for (k, at) in [At::Init, At::Ready, At::Playing].into_iter().enumerate() {
                let mut h = Harness::new();
                let id = prepare(&mut h, path, at);
                let url = if *method == "SETUP" {
                    format!("{path}/trackID=1")
                } else {
                    format!("{path}/")
                };
                let mut headers = extra.to_string();
                if let Some(id) = &id {
                    headers.push_str(&format!("Session: {id}\r\n"));
                }
                h.cseq += 1;
                let text = format!(
                    "{method} rtsp://127.0.0.1:8554/{url} RTSP/1.0\r\nCSeq: {}\r\n{headers}\r\n{body}",
                    h.cseq
                );
                let a = h.request(&parse(&text));
                assert_eq!(
                    a.response.status, want[k],
                    "{method} {path} at {at:?}: {:?}",
                    a.response
                );
                checked += 1;
                // The state after it.
                if let (Some(id), 200) = (&id, a.response.status) {
                    let after = h.core.state(id);
                    let expect = match (*method, at) {
                        ("TEARDOWN", _) => None,
                        ("PAUSE", _) => Some(State::Ready),
                        ("PLAY", _) | (_, At::Playing) => Some(State::Playing),
                        _ => Some(State::Ready),
                    };
                    assert_eq!(after, expect, "{method} {path} at {at:?}");
                }
            }
        }
    }
    assert_eq!(checked, rows.len() * 6);
}

#[test]
fn answers_carry_the_headers_clients_need() {
    let mut h = Harness::new();
    let a = h.send("OPTIONS", "cam1", "");
    assert_eq!(a.response.headers.get("Public"), Some(PUBLIC));
    let a = h.send("FLY", "cam1", "");
    assert_eq!(a.response.headers.get("Public"), Some(PUBLIC));
    let a = h.send("RECORD", "cam1", "");
    assert_eq!(a.response.headers.get("Allow"), Some(PUBLIC));
    // SETUP: Session with timeout, Transport with the camera's SSRC.
    let a = h.send(
        "SETUP",
        "cam1/trackID=1",
        "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
    );
    assert_eq!(a.response.status, 200);
    let sess = a.response.headers.get("Session").unwrap();
    assert!(sess.ends_with(";timeout=60"), "{sess}");
    assert_eq!(
        a.response.headers.get("Transport"),
        Some("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;ssrc=00002222")
    );
    let id = session_of(&a);
    // PLAY: Range clock=now, RTP-Info of the set-up track with the join point.
    let a = h.send("PLAY", "cam1/", &format!("Session: {id}\r\n"));
    assert_eq!(
        a.response.headers.get("Range"),
        Some("clock=20260101T000000.000Z-")
    );
    assert_eq!(
        a.response.headers.get("RTP-Info"),
        Some("url=rtsp://127.0.0.1:8554/cam1/trackID=1;seq=200;rtptime=800")
    );
    // No media before the PLAY response: the delivery starts after it.
    assert!(a.before.is_empty());
    assert_eq!(
        a.after,
        vec![Action::StartLive {
            session: id.clone(),
            camera: "cam1".into(),
            tracks: vec![TrackOut {
                track: 1,
                ssrc: 0,
                route: Route::Udp {
                    rtp: "127.0.0.1:5000".parse().unwrap(),
                    rtcp: "127.0.0.1:5001".parse().unwrap()
                }
            }]
        }]
    );
    // PLAY again while playing: answered, no second delivery.
    let a = h.send("PLAY", "cam1/", &format!("Session: {id}\r\n"));
    assert_eq!(a.response.status, 200);
    assert!(a.after.is_empty());
    // PAUSE stops the delivery before answering.
    let a = h.send("PAUSE", "cam1/", &format!("Session: {id}\r\n"));
    assert_eq!(
        a.before,
        vec![Action::StopDelivery {
            session: id.clone()
        }]
    );
    // TEARDOWN: no Session header in the answer, the session is closed first.
    let a = h.send("TEARDOWN", "cam1/", &format!("Session: {id}\r\n"));
    assert!(a.response.headers.get("Session").is_none());
    assert_eq!(
        a.before,
        vec![Action::Close {
            session: id.clone(),
            path: PathKind::Live("cam1".into()),
            reason: CloseReason::Teardown
        }]
    );
    assert_eq!(h.core.len(), 0);
}

// ---------------------------------------------------------------------------------------
// Statuses for mistakes

#[test]
fn statuses_for_mistakes() {
    let tcp = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
    // (method, url, headers, status)
    let cases: &[(&str, &str, &str, u16)] = &[
        ("DESCRIBE", "nosuch", "", 404),
        ("DESCRIBE", "cam1/trackID=9", "", 404),
        ("DESCRIBE", "cam3", "", 503),
        ("DESCRIBE", "replay/nosuch", "", 404),
        ("DESCRIBE", "replay/broken", "", 500),
        ("DESCRIBE", "replay", "", 404),
        ("SETUP", "nosuch/trackID=0", tcp, 404),
        ("SETUP", "cam1/trackID=7", tcp, 404),
        ("SETUP", "cam1/trackID=x", tcp, 404),
        ("SETUP", "cam1", tcp, 459),
        ("SETUP", "cam2", tcp, 200),
        ("SETUP", "cam1/trackID=0", "", 461),
        (
            "SETUP",
            "cam1/trackID=0",
            "Transport: RTP/AVP;multicast\r\n",
            461,
        ),
        (
            "SETUP",
            "cam1/trackID=0",
            "Transport: RTP/AVP;unicast;interleaved=\"0-1\r\n",
            461,
        ),
        (
            "SETUP",
            "cam1/trackID=0",
            "Transport: RTP/SAVP;unicast;client_port=5000-5001\r\n",
            461,
        ),
        ("SETUP", "replay/broken/trackID=0", tcp, 500),
        ("SETUP", "replay/cam1/trackID=5", tcp, 404),
        ("PLAY", "cam1/", "Session: nosuch\r\n", 454),
        ("PAUSE", "cam1/", "Session: nosuch\r\n", 454),
        ("TEARDOWN", "cam1/", "Session: nosuch\r\n", 454),
        ("GET_PARAMETER", "cam1/", "Session: nosuch\r\n", 454),
        ("OPTIONS", "cam1/", "Session: nosuch\r\n", 454),
        // Feature tags.
        (
            "DESCRIBE",
            "cam1",
            "Require: www.onvif.org/ver20/backchannel\r\n",
            200,
        ),
        (
            "DESCRIBE",
            "cam2",
            "Require: www.onvif.org/ver20/backchannel\r\n",
            551,
        ),
        ("DESCRIBE", "cam1", "Require: onvif-replay\r\n", 551),
        ("DESCRIBE", "replay/cam1", "Require: onvif-replay\r\n", 200),
        ("DESCRIBE", "cam1", "Require: com.example.flying\r\n", 551),
        (
            "OPTIONS",
            "nosuch",
            "Require: www.onvif.org/ver20/backchannel\r\n",
            551,
        ),
    ];
    for (method, url, headers, want) in cases {
        let mut h = Harness::new();
        let a = h.send(method, url, headers);
        assert_eq!(
            a.response.status, *want,
            "{method} {url} {headers:?}: {:?}",
            a.response
        );
        if *want == 551 {
            assert!(a.response.headers.get("Unsupported").is_some());
        }
    }
    // No CSeq: 400 with no CSeq to echo.
    let mut h = Harness::new();
    // (The decoder refuses such a request already; the core does not rely on it.)
    let req = Request::new(Method::Options, "rtsp://h/cam1");
    match h.core.handle(&req, &h.ctx, &h.cat, |_| Ok(None)) {
        Step::Answer(a) => assert_eq!(a.response.status, 400),
        other => panic!("{other:?}"),
    }
    // Authorization refused: its answer, with CSeq.
    let req = parse("DESCRIBE rtsp://h/cam1 RTSP/1.0\r\nCSeq: 3\r\n\r\n");
    match h
        .core
        .handle(&req, &h.ctx, &h.cat, |_| Err(Response::new(401)))
    {
        Step::Answer(a) => {
            assert_eq!(a.response.status, 401);
            assert_eq!(a.response.cseq(), Some(3));
        }
        other => panic!("{other:?}"),
    }
    // Without a store, replay URLs are 404 with the reason.
    let mut h = Harness::new();
    h.cat.no_store = true;
    let a = h.send("DESCRIBE", "replay/cam1", "");
    assert_eq!(a.response.status, 404);
    assert!(
        a.response.reason.contains("no store"),
        "{}",
        a.response.reason
    );
}

#[test]
fn offline_camera_gets_503_with_a_printable_reason() {
    let mut h = Harness::new();
    let id = h.setup("cam3", None, (0, 1));
    let a = h.send("PLAY", "cam3/", &format!("Session: {id}\r\n"));
    assert_eq!(a.response.status, 503);
    assert_eq!(
        a.response.reason,
        "Service Unavailable (camera cam3 is offline: file gone??)"
    );
}

#[test]
fn roles_each_request_needs() {
    let cat = Cat::default();
    let role = |text: &str| Sessions::required_role(&parse(text), &cat);
    assert_eq!(
        role("OPTIONS rtsp://h/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        None
    );
    assert_eq!(
        role("DESCRIBE rtsp://h/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        Some(Role::Viewer)
    );
    assert_eq!(
        role("SETUP rtsp://h/cam1/trackID=1 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        Some(Role::Viewer)
    );
    // The backchannel track of cam1 (after its two live tracks).
    assert_eq!(
        role("SETUP rtsp://h/cam1/trackID=2 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        Some(Role::Operator)
    );
    assert_eq!(
        role("SETUP rtsp://h/replay/cam1/trackID=2 RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        Some(Role::Viewer)
    );
}

#[test]
fn a_session_belongs_to_its_user() {
    let mut h = Harness::new();
    h.user = Some("alice".into());
    let id = h.setup("cam2", None, (0, 1));
    h.user = Some("bob".into());
    for m in ["PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER"] {
        assert_eq!(
            h.status(m, "cam2/", &format!("Session: {id}\r\n")),
            454,
            "{m}"
        );
    }
    // OPTIONS names no user.
    assert_eq!(
        h.status("OPTIONS", "cam2/", &format!("Session: {id}\r\n")),
        200
    );
    h.user = Some("alice".into());
    assert_eq!(
        h.status("PLAY", "cam2/", &format!("Session: {id}\r\n")),
        200
    );
}

#[test]
fn setup_rules() {
    let mut h = Harness::new();
    let id = h.setup("cam1/trackID=0", None, (0, 1));
    // The same track again (a client re-sending SETUP) may keep its channels.
    let again = h.setup("cam1/trackID=0", Some(&id), (0, 1));
    assert_eq!(again, id);
    // Another track on channels already taken: 461.
    let a = h.send(
        "SETUP",
        "cam1/trackID=1",
        &format!("Session: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"),
    );
    assert_eq!(a.response.status, 461);
    // Without channels named: the next free pair.
    let a = h.send(
        "SETUP",
        "cam1/trackID=1",
        &format!("Session: {id}\r\nTransport: RTP/AVP/TCP;unicast\r\n"),
    );
    assert_eq!(
        a.response.headers.get("Transport"),
        Some("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00002222")
    );
    // A track of another camera in the same session: 459.
    let a = h.send(
        "SETUP",
        "cam2/trackID=0",
        &format!("Session: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=8-9\r\n"),
    );
    assert_eq!(a.response.status, 459);
    // UDP not offered by the server: 461 for a UDP-only offer.
    let mut h = Harness::new();
    h.core.config.udp_ports = None;
    assert_eq!(
        h.status(
            "SETUP",
            "cam2",
            "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n"
        ),
        461
    );
}

#[test]
fn sessions_per_connection_are_limited() {
    let mut h = Harness::new();
    for _ in 0..4 {
        h.setup("cam2", None, (0, 1));
    }
    let a = h.send(
        "SETUP",
        "cam2",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert_eq!(a.response.status, 503);
    assert_eq!(a.events, vec![Event::SessionLimit { max: 4 }]);
    // Another connection is not affected.
    h.ctx.conn = 2;
    h.setup("cam2", None, (0, 1));
}

// ---------------------------------------------------------------------------------------
// Backchannel

#[test]
fn backchannel_setup_play_pause_and_refusal() {
    let mut h = Harness::new();
    let req_tag = "Require: www.onvif.org/ver20/backchannel\r\n";
    let a = h.send("DESCRIBE", "cam1", req_tag);
    let sdp = parse_sdp(std::str::from_utf8(&a.response.body).unwrap()).unwrap();
    assert_eq!(sdp.media.len(), 3);
    assert_eq!(sdp.media[0].direction, Some(Direction::RecvOnly));
    assert_eq!(sdp.media[2].direction, Some(Direction::SendOnly));
    assert_eq!(sdp.media[2].control, "trackID=2");
    // Without the tag: no sendonly section, no direction attributes.
    let a = h.send("DESCRIBE", "cam1", "");
    let sdp = parse_sdp(std::str::from_utf8(&a.response.body).unwrap()).unwrap();
    assert_eq!(sdp.media.len(), 2);
    assert!(sdp.media.iter().all(|m| m.direction.is_none()));
    assert_eq!(
        a.response.headers.get("Content-Base"),
        Some("rtsp://127.0.0.1:8554/cam1/")
    );

    // Talk-only session: SETUP of the backchannel track starts the talker.
    let a = h.send(
        "SETUP",
        "cam1/trackID=2",
        &format!("{req_tag}Transport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n"),
    );
    assert_eq!(a.response.status, 200);
    let id = session_of(&a);
    assert!(a
        .response
        .headers
        .get("Transport")
        .is_some_and(|t| !t.contains("ssrc")));
    assert!(matches!(&a.before[..], [Action::StartTalk { camera, .. }] if camera == "cam1"));
    // Repeated SETUP: idempotent, no second talker.
    let a = h.send(
        "SETUP",
        "cam1/trackID=2",
        &format!("{req_tag}Session: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n"),
    );
    assert_eq!(a.response.status, 200);
    assert!(a.before.is_empty());
    // PLAY: talk on, no live delivery (no receive track).
    let a = h.send("PLAY", "cam1/", &format!("{req_tag}Session: {id}\r\n"));
    assert_eq!(
        a.after,
        vec![Action::TalkPlaying {
            session: id.clone(),
            on: true
        }]
    );
    // Interleaved talk on channel 4 goes to the session; 5 is its RTCP; 9 nowhere.
    let now = h.ctx.now;
    assert_eq!(h.core.inbound(1, 4, now), Inbound::Talk(id.clone()));
    assert_eq!(h.core.inbound(1, 5, now), Inbound::Rtcp(id.clone()));
    assert_eq!(h.core.inbound(1, 9, now), Inbound::Unrouted);
    assert_eq!(h.core.inbound(2, 4, now), Inbound::Unrouted);
    let a = h.send("PAUSE", "cam1/", &format!("Session: {id}\r\n"));
    assert!(a.before.contains(&Action::TalkPlaying {
        session: id.clone(),
        on: false
    }));

    // Another session while the output is held: 453, and its empty session is gone.
    h.talk_owner = Some(id.clone());
    let before = h.core.len();
    let a = h.send(
        "SETUP",
        "cam1/trackID=2",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
    );
    assert_eq!(a.response.status, 453);
    assert!(a.response.reason.contains("cam1"));
    assert!(matches!(
        &a.before[..],
        [Action::Close {
            reason: CloseReason::Refused,
            ..
        }]
    ));
    assert_eq!(h.core.len(), before);
    // ... but a session that has a receive track keeps it.
    let other = h.setup("cam1/trackID=0", None, (0, 1));
    let a = h.send(
        "SETUP",
        "cam1/trackID=2",
        &format!("Session: {other}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"),
    );
    assert_eq!(a.response.status, 453);
    assert!(a.before.is_empty());
    assert_eq!(h.core.state(&other), Some(State::Ready));
}

#[test]
fn udp_talk_and_rtcp_routing() {
    let mut h = Harness::new();
    let a = h.send(
        "SETUP",
        "cam1/trackID=0",
        "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
    );
    let id = session_of(&a);
    h.send(
        "SETUP",
        "cam1/trackID=2",
        &format!("Session: {id}\r\nTransport: RTP/AVP;unicast;client_port=5002-5003\r\n"),
    );
    let now = h.ctx.now;
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    // From the announced talk port, or another port of the same IP: talk.
    assert_eq!(h.core.udp_talk(at(5002), now), Some(id.clone()));
    assert_eq!(h.core.udp_talk(at(6000), now), Some(id.clone()));
    // From the receive track's RTP port (NAT dummies): not talk.
    assert_eq!(h.core.udp_talk(at(5000), now), None);
    // RTCP from the receive track's RTCP port.
    assert_eq!(h.core.udp_rtcp(at(5001), now), Some(id.clone()));
    assert_eq!(h.core.udp_rtcp(at(7000), now), None);
    // A second talker from the same IP makes the unannounced port ambiguous.
    h.ctx.conn = 2;
    let a = h.send(
        "SETUP",
        "cam1/trackID=2",
        "Transport: RTP/AVP;unicast;client_port=5010-5011\r\n",
    );
    assert_eq!(a.response.status, 200);
    assert_eq!(h.core.udp_talk(at(6000), now), None);
}

// ---------------------------------------------------------------------------------------
// Keep-alive, timeouts, connection close

#[test]
fn timeouts_and_keepalive() {
    let mut h = Harness::new();
    let t0 = h.ctx.now;
    let a = h.setup("cam2", None, (0, 1));
    assert_eq!(h.core.next_timeout(), Some(t0 + Duration::from_secs(60)));
    // Any request naming the session keeps it alive.
    h.ctx.now = t0 + Duration::from_secs(50);
    h.send("GET_PARAMETER", "cam2/", &format!("Session: {a}\r\n"));
    assert!(h.core.expire(t0 + Duration::from_secs(100)).is_empty());
    // So does RTCP on its channel.
    assert_eq!(
        h.core.inbound(1, 1, t0 + Duration::from_secs(105)),
        Inbound::Rtcp(a.clone())
    );
    assert!(h.core.expire(t0 + Duration::from_secs(160)).is_empty());
    // Our own RTP echoed back does not.
    assert_eq!(
        h.core.inbound(1, 0, t0 + Duration::from_secs(160)),
        Inbound::Echo
    );
    let gone = h.core.expire(t0 + Duration::from_secs(166));
    assert_eq!(
        gone,
        vec![Action::Close {
            session: a,
            path: PathKind::Live("cam2".into()),
            reason: CloseReason::Timeout
        }]
    );
    assert_eq!(h.core.next_timeout(), None);
}

#[test]
fn connection_close_ends_only_its_interleaved_sessions() {
    let mut h = Harness::new();
    let tcp = h.setup("cam2", None, (0, 1));
    let a = h.send(
        "SETUP",
        "cam2",
        "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
    );
    let udp = session_of(&a);
    assert!(h.core.has_sessions_on(1) && !h.core.has_sessions_on(2));
    let gone = h.core.connection_closed(1);
    assert!(
        matches!(&gone[..], [Action::Close { session, reason: CloseReason::ConnectionClosed, .. }] if *session == tcp)
    );
    assert_eq!(h.core.state(&udp), Some(State::Ready));
    // The UDP session was created on connection 1: it is still attached to it.
    assert!(h.core.has_sessions_on(1));
    assert_eq!(h.core.close_all().len(), 1);
    assert!(h.core.is_empty());
    assert!(!h.core.has_sessions_on(1));
}

// ---------------------------------------------------------------------------------------
// Replay

#[test]
fn replay_play_queue_immediate_and_resume() {
    let mut h = Harness::new();
    let a = h.send("DESCRIBE", "replay/cam1", "Require: onvif-replay\r\n");
    let sdp = parse_sdp(std::str::from_utf8(&a.response.body).unwrap()).unwrap();
    assert_eq!(
        sdp.range.as_deref(),
        Some("clock=20260101T000000.000Z-20260101T000300.000Z")
    );
    assert_eq!(sdp.media[0].attribute("x-onvif-track"), Some("VIDEO001"));
    assert_eq!(sdp.media[1].attribute("x-onvif-track"), Some("AUDIO001"));
    let id = h.setup("replay/cam1/trackID=0", None, (0, 1));
    let s = format!("Session: {id}\r\n");
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("{s}Range: clock=20260101T000010Z-\r\nRate-Control: no\r\n"),
    );
    assert_eq!(a.response.status, 200);
    assert_eq!(
        a.response.headers.get("Range"),
        Some("clock=20260101T000010.000Z-")
    );
    assert_eq!(a.response.headers.get("Scale"), Some("1.0"));
    assert_eq!(a.response.headers.get("Rate-Control"), Some("no"));
    assert_eq!(
        a.response.headers.get("RTP-Info"),
        Some("url=rtsp://127.0.0.1:8554/replay/cam1/trackID=0;seq=77;rtptime=1234")
    );
    let Some(Action::StartReplay {
        request, tracks, ..
    }) = a.after.first()
    else {
        panic!("{:?}", a.after)
    };
    assert_eq!(request.cseq, h.cseq as u8);
    assert_eq!(tracks.len(), 1);
    assert!(!request.discontinuity);
    // A second PLAY while delivering: queued (RTP-Info without seq), nothing stopped.
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("{s}Range: clock=20260101T000020Z-\r\n"),
    );
    assert_eq!(
        a.after,
        vec![Action::QueueReplay {
            session: id.clone()
        }]
    );
    assert!(a.before.is_empty());
    assert_eq!(
        a.response.headers.get("RTP-Info"),
        Some("url=rtsp://127.0.0.1:8554/replay/cam1/trackID=0")
    );
    // The first finishes: the queued one follows; then nothing.
    // (A report quoting another delivery is ignored.)
    assert!(!h.core.delivery_finished(&id, 7, Some(T + 60_000_000)));
    assert!(h.core.delivery_finished(&id, 1, Some(T + 60_000_000)));
    assert!(!h.core.delivery_finished(&id, 1, Some(T + 60_000_000)));
    // Immediate: the running delivery stops first, D on the first unit.
    h.send(
        "PLAY",
        "replay/cam1/",
        &format!("{s}Range: clock=20260101T000010Z-\r\n"),
    );
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("{s}Range: clock=20260101T000030Z-\r\nImmediate: yes\r\n"),
    );
    assert_eq!(
        a.before,
        vec![Action::StopDelivery {
            session: id.clone()
        }]
    );
    assert!(
        matches!(&a.after[..], [Action::StartReplay { request, delivery: 3, .. }] if request.discontinuity)
    );
    // The replaced delivery's late report changes nothing: a PLAY now is still queued.
    h.core.delivery_stopped(&id, 2, Some(T));
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("{s}Range: clock=20260101T000040Z-\r\n"),
    );
    assert_eq!(
        a.after,
        vec![Action::QueueReplay {
            session: id.clone()
        }]
    );
    // PAUSE, the pump reports where it got; PLAY without Range resumes after it, in the
    // mode of the paused delivery.
    h.send("PLAY", "replay/cam1/", &format!("{s}Range: clock=20260101T000150Z-20260101T000130Z\r\nScale: -1\r\nFrames: intra\r\nImmediate: yes\r\n"));
    let a = h.send("PAUSE", "replay/cam1/", &s);
    assert_eq!(
        a.before,
        vec![Action::StopDelivery {
            session: id.clone()
        }]
    );
    h.core.delivery_stopped(&id, 4, Some(T + 140_000_000));
    let a = h.send("PLAY", "replay/cam1/", &s);
    let Some(Action::StartReplay { request, .. }) = a.after.first() else {
        panic!("{:?}", a.after)
    };
    assert_eq!(request.resume_after, Some(T + 140_000_000));
    assert_eq!(request.play.scale, -1.0);
    assert_eq!(
        request.play.frames,
        crate::rtsp::headers::Frames::Intra { interval_ms: None }
    );
    assert_eq!(request.play.end, Some(T + 90_000_000));
    // A live-session-only header value on replay: 400, the session survives.
    assert_eq!(
        h.status(
            "PLAY",
            "replay/cam1/",
            &format!("{s}Scale: 2\r\nRate-Control: no\r\n")
        ),
        400
    );
    assert_eq!(h.core.state(&id), Some(State::Playing));
}

/// The packet sizes of the replay a PLAY with `headers` starts.
fn replay_packets(h: &mut Harness, id: &str, headers: &str) -> replay::PacketSize {
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("Session: {id}\r\nImmediate: yes\r\n{headers}"),
    );
    assert_eq!(a.response.status, 200, "{:?}", a.response);
    match a
        .after
        .iter()
        .find(|x| matches!(x, Action::StartReplay { .. }))
    {
        Some(Action::StartReplay { request, .. }) => request.packets,
        _ => panic!("no replay started: {:?}", a.after),
    }
}

#[test]
fn replay_blocksize_from_setup_or_play_holds_for_the_session() {
    let mut h = Harness::new();
    h.core.config.replay_blocksize = 30_000;
    // Without Blocksize: the configured size on interleaved transports, 1384 on UDP.
    let id = h.setup("replay/cam1/trackID=0", None, (0, 1));
    let p = replay_packets(&mut h, &id, "");
    assert_eq!((p.interleaved, p.udp), (30_000, 1384));
    // Blocksize at PLAY sets both, and holds for the PLAYs after it.
    let p = replay_packets(&mut h, &id, "Blocksize: 8000\r\n");
    assert_eq!((p.interleaved, p.udp), (8000, 8000));
    let p = replay_packets(&mut h, &id, "");
    assert_eq!((p.interleaved, p.udp), (8000, 8000));
    // Cut to what the transport carries, and to the smallest useful size.
    let p = replay_packets(&mut h, &id, "Blocksize: 4000000000\r\n");
    assert_eq!((p.interleaved, p.udp), (65_507, 65_479));
    let p = replay_packets(&mut h, &id, "Blocksize: 10\r\n");
    assert_eq!((p.interleaved, p.udp), (256, 256));
    // Not a number: 400 naming the header, and the session keeps its size.
    let a = h.send(
        "PLAY",
        "replay/cam1/",
        &format!("Session: {id}\r\nBlocksize: big\r\n"),
    );
    assert_eq!(a.response.status, 400);
    assert!(
        a.response.reason.contains("Blocksize"),
        "{}",
        a.response.reason
    );
    assert_eq!(replay_packets(&mut h, &id, "").interleaved, 256);

    // Blocksize at SETUP (a second session); a bad one there is a 400 and makes no session.
    let a = h.send(
        "SETUP",
        "replay/cam1/trackID=0",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nBlocksize: 0\r\n",
    );
    assert_eq!(a.response.status, 400);
    assert!(a.response.session_id().is_none());
    let a = h.send(
        "SETUP",
        "replay/cam1/trackID=0",
        "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\nBlocksize: 60000\r\n",
    );
    assert_eq!(a.response.status, 200);
    let id2 = session_of(&a);
    let p = replay_packets(&mut h, &id2, "");
    assert_eq!((p.interleaved, p.udp), (60_000, 60_000));

    // A live SETUP's Blocksize is not looked at (live packets are shared by all readers).
    let a = h.send(
        "SETUP",
        "cam1/trackID=0",
        "Transport: RTP/AVP/TCP;unicast;interleaved=4-5\r\nBlocksize: big\r\n",
    );
    assert_eq!(a.response.status, 200);
}

#[test]
fn replay_without_footage_at_the_start_is_457() {
    let mut h = Harness::new();
    let id = h.setup("replay/cam1/trackID=0", None, (0, 1));
    let step = h.core.handle(
        &parse(&format!("PLAY rtsp://h/replay/cam1/ RTSP/1.0\r\nCSeq: 9\r\nSession: {id}\r\nRange: clock=20260101T000130Z-20260101T000140Z\r\n\r\n")),
        &h.ctx,
        &h.cat,
        |_| Ok(None),
    );
    let Step::ReplayOpen(p) = step else {
        panic!("{step:?}")
    };
    // The store found the next clean point at 00:02:00, after the range's end.
    let a = h.core.replay_opened(
        p,
        Ok(ReplayStart {
            start_point: Some(T + 120_000_000),
            ..Default::default()
        }),
    );
    assert_eq!(a.response.status, 457);
    assert_eq!(a.response.cseq(), Some(9));
    assert!(a.after.is_empty());
    assert_eq!(h.core.state(&id), Some(State::Ready));
    // A store error is passed through.
    let step = h.core.handle(
        &parse(&format!(
            "PLAY rtsp://h/replay/cam1/ RTSP/1.0\r\nCSeq: 10\r\nSession: {id}\r\n\r\n"
        )),
        &h.ctx,
        &h.cat,
        |_| Ok(None),
    );
    let Step::ReplayOpen(p) = step else {
        panic!("{step:?}")
    };
    let a = h.core.replay_opened(p, Err(Response::new(500)));
    assert_eq!(a.response.status, 500);
}

// ---------------------------------------------------------------------------------------
// Golden conversations: what real clients sent, replayed against the core

/// Replays a capture: its RTSP requests in order, with the capture's session id replaced
/// by the one we gave and its URLs pointed at `path`. Returns each status.
fn converse(name: &str, path: &str, rewrite: impl Fn(&str) -> String) -> Vec<(String, u16)> {
    converse_in(&mut Harness::new(), name, path, rewrite)
}

/// [`converse`] with a given harness (whose actions can be looked at afterwards).
fn converse_in(
    h: &mut Harness,
    name: &str,
    path: &str,
    rewrite: impl Fn(&str) -> String,
) -> Vec<(String, u16)> {
    let mut ours: Option<String> = None;
    let mut theirs: Option<String> = None;
    let mut out = Vec::new();
    for msg in capture_messages(name) {
        if msg.starts_with("GET ") || msg.starts_with("POST ") {
            continue; // the HTTP tunnel's own requests
        }
        let mut text = msg.replace(
            "rtsp://127.0.0.1:8568/cam1",
            &format!("rtsp://127.0.0.1:8554/{path}"),
        );
        text = rewrite(&text);
        let req = parse(&text);
        if let (Some(t), Some(o)) = (req.session_id(), &ours) {
            theirs.get_or_insert_with(|| t.to_owned());
            text = text.replace(theirs.as_deref().unwrap_or(t), o);
        }
        let a = h.request(&parse(&text));
        if let Some(id) = a.response.session_id() {
            ours.get_or_insert_with(|| id.to_owned());
        }
        out.push((req.method.as_str().to_owned(), a.response.status));
    }
    out
}

fn statuses(v: &[(String, u16)]) -> Vec<u16> {
    v.iter().map(|x| x.1).collect()
}

#[test]
fn golden_ffmpeg_and_gstreamer_live() {
    for name in [
        "ffmpeg-tcp.txt",
        "ffmpeg-udp.txt",
        "gst-tcp.txt",
        "gst-udp.txt",
    ] {
        let got = converse(name, "cam1", str::to_owned);
        let methods: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
        for m in ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"] {
            assert!(methods.contains(&m), "{name}: no {m} in {got:?}");
        }
        assert!(got.iter().all(|(_, s)| *s == 200), "{name}: {got:?}");
    }
    let got = converse("ffmpeg-http.txt", "cam1", str::to_owned);
    assert_eq!(statuses(&got), [200]);
}

#[test]
fn golden_gstreamer_backchannel() {
    let got = converse("gst-backchannel.txt", "cam1", str::to_owned);
    // With the backchannel: Require on DESCRIBE, the backchannel SETUP, PLAY and PAUSE.
    assert!(got.iter().all(|(_, s)| *s == 200), "{got:?}");
    assert_eq!(
        got.iter().filter(|(m, _)| m == "SETUP").count(),
        3,
        "{got:?}"
    );
    // Against a camera without an audio output the same client gets 551 on DESCRIBE.
    let got = converse("gst-backchannel.txt", "cam2", str::to_owned);
    assert_eq!(got[1], ("DESCRIBE".to_owned(), 551), "{got:?}");
}

#[test]
fn golden_gstreamer_onvif_replay_reverse() {
    // GStreamer asks for the recording of cam1 at our replay URL; the capture's times
    // fall into the fake recording (2026-01-01 00:00-00:01 and 00:02-00:03).
    let got = converse("gst-onvif-replay-reverse.txt", "replay/cam1", str::to_owned);
    let methods: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        ["OPTIONS", "DESCRIBE", "SETUP", "SETUP", "PLAY", "PAUSE", "PLAY"],
        "{got:?}"
    );
    assert!(got.iter().all(|(_, s)| *s == 200), "{got:?}");
}

// ---------------------------------------------------------------------------------------
// RTSP publish (ANNOUNCE / SETUP mode=record / RECORD)

/// ffmpeg's SDP of H.264 + PCMU (from `ffmpeg-publish-tcp.txt`).
const FFMPEG_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat LIBAVFORMAT_VERSION\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QADKzZQUGfnwEQAAADABAAAAMDIPFCmWA=,aOvjyyLA; profile-level-id=64000C\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 0\r\nb=AS:64\r\na=control:streamid=1\r\n";

impl Harness {
    /// ANNOUNCE of `sdp` to `path` with this Content-Type.
    fn announce_as(&mut self, path: &str, content_type: &str, sdp: &str) -> Answer {
        self.cseq += 1;
        let text = format!(
            "ANNOUNCE rtsp://127.0.0.1:8554/{path} RTSP/1.0\r\nCSeq: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.cseq,
            sdp.len()
        );
        self.request(&parse(&text))
    }

    fn announce(&mut self, path: &str, sdp: &str) -> Answer {
        self.announce_as(path, "application/sdp", sdp)
    }

    /// ANNOUNCE + SETUP of both streams over TCP (channels 0-1, 2-3) + RECORD to `path`,
    /// as ffmpeg does; the session id.
    fn publish(&mut self, path: &str) -> String {
        let a = self.announce(path, FFMPEG_SDP);
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        let a = self.send(
            "SETUP",
            &format!("{path}/streamid=0"),
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n",
        );
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        let id = session_of(&a);
        let a = self.send(
            "SETUP",
            &format!("{path}/streamid=1"),
            &format!(
                "Session: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\r\n"
            ),
        );
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        let a = self.send("RECORD", path, &format!("Session: {id}\r\n"));
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        id
    }
}

fn started_tracks(actions: &[Action]) -> Vec<Vec<&str>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartPublish { tracks, .. } => {
                Some(tracks.iter().map(|t| t.codec.name()).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn golden_ffmpeg_and_gstreamer_publish() {
    // (capture, the camera's tracks at RECORD, in SDP order)
    let cases: &[(&str, &[&str])] = &[
        ("ffmpeg-publish-tcp.txt", &["H264", "PCMU"]),
        ("ffmpeg-publish-udp.txt", &["H264", "PCMU"]),
        ("ffmpeg-publish-aac.txt", &["H264", "AAC"]),
        ("gst-publish-tcp.txt", &["PCMU", "H264"]),
        ("gst-publish-udp.txt", &["PCMU", "H264"]),
    ];
    for (name, tracks) in cases {
        let mut h = Harness::new();
        let got = converse_in(&mut h, name, "pub1", str::to_owned);
        assert!(got.iter().all(|(_, s)| *s == 200), "{name}: {got:?}");
        assert_eq!(started_tracks(&h.actions), [tracks.to_vec()], "{name}");
        // TEARDOWN closed the publisher's session.
        assert!(
            matches!(
                h.actions.last(),
                Some(Action::Close {
                    reason: CloseReason::Teardown,
                    ..
                })
            ),
            "{name}: {:?}",
            h.actions
        );
        assert!(h.core.is_empty(), "{name}");
    }
    // GStreamer PAUSEs before its TEARDOWN: the publication stops first.
    let mut h = Harness::new();
    converse_in(&mut h, "gst-publish-tcp.txt", "pub1", str::to_owned);
    assert!(h
        .actions
        .iter()
        .any(|a| matches!(a, Action::StopPublish { camera, .. } if camera == "pub1")));
}

#[test]
fn publish_statuses_for_mistakes() {
    let opus =
        "v=0\r\nm=audio 0 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=control:streamid=0\r\n";
    let undescribed = "v=0\r\nm=audio 0 RTP/AVP 96\r\na=control:streamid=0\r\n";
    let no_media = "v=0\r\ns=x\r\n";
    // (path, content type, body, status, words in the reason)
    let cases: &[(&str, &str, &str, u16, &[&str])] = &[
        ("pub1", "application/sdp", FFMPEG_SDP, 200, &[]),
        (
            "pub2",
            "application/sdp; charset=utf-8",
            FFMPEG_SDP,
            200,
            &[],
        ),
        ("nosuch", "application/sdp", FFMPEG_SDP, 404, &[]),
        (
            "cam1",
            "application/sdp",
            FFMPEG_SDP,
            405,
            &["cam1", "no publisher"],
        ),
        ("replay/cam1", "application/sdp", FFMPEG_SDP, 405, &[]),
        ("pub1/trackID=0", "application/sdp", FFMPEG_SDP, 404, &[]),
        ("pub1", "text/plain", FFMPEG_SDP, 415, &["application/sdp"]),
        ("pub1", "application/sdp", "", 400, &["SDP body"]),
        ("pub1", "application/sdp", "hello\r\n", 400, &["SDP"]),
        (
            "pub1",
            "application/sdp",
            no_media,
            400,
            &["no audio or video"],
        ),
        (
            "pub1",
            "application/sdp",
            undescribed,
            400,
            &["media section 1", "audio", "payload type 96", "a=rtpmap"],
        ),
        // Opus is passed through as opaque RTP.
        ("pub1", "application/sdp", opus, 200, &[]),
    ];
    for (path, ct, body, want, words) in cases {
        let mut h = Harness::new();
        let a = h.announce_as(path, ct, body);
        assert_eq!(
            a.response.status, *want,
            "{path} {ct} {body:?}: {:?}",
            a.response
        );
        for w in *words {
            assert!(
                a.response.reason.contains(w),
                "{path}: {:?} lacks {w}",
                a.response.reason
            );
        }
        if *want == 405 {
            assert_eq!(a.response.headers.get("Allow"), Some(PUBLIC));
        }
    }

    let rec = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n";
    let mut h = Harness::new();
    // SETUP mode=record without an ANNOUNCE first: 455; on a camera without publishers:
    // 461; RECORD without a session: 454, on such a camera: 405.
    assert_eq!(h.status("SETUP", "pub1/streamid=0", rec), 455);
    assert_eq!(h.status("SETUP", "cam2", rec), 461);
    assert_eq!(h.status("RECORD", "pub1", ""), 454);
    assert_eq!(h.status("RECORD", "cam2", ""), 405);
    // While waiting for a publisher, readers get 503 with the reason.
    let a = h.send("DESCRIBE", "pub1", "");
    assert_eq!(a.response.status, 503);
    assert!(a.response.reason.contains("waiting for a publisher"));
    // OPTIONS on a publish camera lists ANNOUNCE and RECORD.
    let a = h.send("OPTIONS", "pub1", "");
    assert_eq!(a.response.headers.get("Public"), Some(PUBLIC_PUBLISH));
    // After ANNOUNCE: a control URL it did not announce is 404; another connection has
    // not announced; ANNOUNCE inside a session is 455.
    assert_eq!(h.announce("pub1", FFMPEG_SDP).response.status, 200);
    assert_eq!(h.status("SETUP", "pub1/streamid=7", rec), 404);
    h.ctx.conn = 2;
    assert_eq!(h.status("SETUP", "pub1/streamid=0", rec), 455);
    h.ctx.conn = 1;
    let a = h.send("SETUP", "pub1/streamid=0", rec);
    assert_eq!(a.response.status, 200);
    // The answer names the client's channels, no SSRC (the publisher chooses it).
    assert_eq!(
        a.response.headers.get("Transport"),
        Some("RTP/AVP/TCP;unicast;interleaved=0-1")
    );
    let id = session_of(&a);
    let s = format!("Session: {id}\r\n");
    assert_eq!(
        h.status("SETUP", "pub1/streamid=1", &format!("{s}{rec}")),
        461
    );
    assert_eq!(
        h.status(
            "ANNOUNCE",
            "pub1",
            &format!("{s}Content-Type: application/sdp\r\n")
        ),
        455
    );
    // A publishing session neither plays nor sets up a reader's track (once the camera
    // has tracks).
    assert_eq!(h.status("PLAY", "pub1", &s), 455);
    h.cat.published = Some(vec![testing::h264()]);
    assert_eq!(
        h.status(
            "SETUP",
            "pub1/trackID=0",
            &format!("{s}Transport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n")
        ),
        455
    );
    // A reader's session cannot RECORD.
    let reader = h.setup("pub1/trackID=0", None, (0, 1));
    assert_eq!(
        h.status("RECORD", "pub1", &format!("Session: {reader}\r\n")),
        455
    );
    assert_eq!(
        h.status(
            "SETUP",
            "pub1/streamid=1",
            &format!("Session: {reader}\r\n{rec}")
        ),
        455
    );
    // RECORD, then SETUP while recording: 455; RECORD again: answered, nothing started.
    assert_eq!(h.status("RECORD", "pub1", &s), 200);
    assert_eq!(
        h.status(
            "SETUP",
            "pub1/streamid=1",
            &format!("{s}Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\r\n")
        ),
        455
    );
    let a = h.send("RECORD", "pub1", &s);
    assert_eq!(a.response.status, 200);
    assert!(a.before.is_empty() && a.after.is_empty());
    assert_eq!(h.core.state(&id), Some(State::Recording));
}

#[test]
fn record_starts_the_publication_before_answering() {
    let mut h = Harness::new();
    h.ctx.peer = "10.0.0.7:40000".parse().unwrap();
    let a = h.announce("pub1", FFMPEG_SDP);
    assert_eq!(a.response.status, 200);
    // No session before SETUP: clients send the first SETUP without one.
    assert!(a.response.headers.get("Session").is_none());
    let id = h.setup_record_udp("pub1/streamid=1", None, 5002);
    let a = h.send("RECORD", "pub1/", &format!("Session: {id}\r\n"));
    assert_eq!(a.response.status, 200);
    assert!(a.response.headers.get("Session").is_some());
    assert!(a.after.is_empty());
    // Only the stream set up feeds the camera (the audio, SDP index 1, as track 0).
    assert_eq!(
        a.before,
        vec![Action::StartPublish {
            session: id.clone(),
            camera: "pub1".into(),
            tracks: vec![testing::pcmu()],
            peer: "10.0.0.7:40000".parse().unwrap(),
        }]
    );
}

impl Harness {
    /// SETUP mode=record over UDP from client ports `port`, `port + 1`; the session id.
    fn setup_record_udp(&mut self, url: &str, session: Option<&str>, port: u16) -> String {
        let s = session
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        let a = self.send(
            "SETUP",
            url,
            &format!(
                "{s}Transport: RTP/AVP/UDP;unicast;client_port={port}-{};mode=record\r\n",
                port + 1
            ),
        );
        assert_eq!(a.response.status, 200, "{:?}", a.response);
        // The server's shared port pair.
        assert!(a
            .response
            .headers
            .get("Transport")
            .is_some_and(|t| t.contains("server_port=6970-6971")));
        session_of(&a)
    }
}

#[test]
fn publisher_media_is_routed_by_channel_and_source_address() {
    let mut h = Harness::new();
    let now = h.ctx.now;
    // TCP: channels 0-1 (video), 2-3 (audio) on connection 1.
    let id = h.publish("pub1");
    let rec = |track| Inbound::Record {
        session: id.clone(),
        track,
    };
    assert_eq!(h.core.inbound(1, 0, now), rec(0));
    assert_eq!(h.core.inbound(1, 2, now), rec(1));
    assert_eq!(
        h.core.inbound(1, 3, now),
        Inbound::RecordRtcp {
            session: id.clone(),
            track: 1
        }
    );
    assert_eq!(h.core.inbound(1, 4, now), Inbound::Unrouted);
    assert_eq!(h.core.inbound(2, 0, now), Inbound::Unrouted);
    // PAUSE: publication stopped, media dropped quietly; RECORD again restarts it.
    let a = h.send("PAUSE", "pub1", &format!("Session: {id}\r\n"));
    assert_eq!(
        a.before,
        vec![Action::StopPublish {
            session: id.clone(),
            camera: "pub1".into()
        }]
    );
    assert_eq!(h.core.inbound(1, 0, now), Inbound::NotRecording);
    let a = h.send("RECORD", "pub1", &format!("Session: {id}\r\n"));
    assert_eq!(started_tracks(&a.before), [vec!["H264", "PCMU"]]);

    // UDP on pub2, from another connection: routed by the exact source address.
    h.ctx.conn = 2;
    let a = h.announce("pub2", FFMPEG_SDP);
    assert_eq!(a.response.status, 200);
    let udp = h.setup_record_udp("pub2/streamid=0", None, 5000);
    h.setup_record_udp("pub2/streamid=1", Some(&udp), 5002);
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    // Before RECORD: dropped.
    assert_eq!(h.core.udp_record(at(5000), false, now), None);
    h.send("RECORD", "pub2", &format!("Session: {udp}\r\n"));
    assert_eq!(
        h.core.udp_record(at(5000), false, now),
        Some((udp.clone(), 0))
    );
    assert_eq!(
        h.core.udp_record(at(5003), true, now),
        Some((udp.clone(), 1))
    );
    assert_eq!(h.core.udp_record(at(5003), false, now), None);
    assert_eq!(h.core.udp_record(at(6000), false, now), None);
    // A publisher's datagrams are not talk audio.
    assert_eq!(h.core.udp_talk(at(5000), now), None);
}

#[test]
fn a_second_publisher_gets_455_unless_the_camera_allows_override() {
    // pub1: no override.
    let mut h = Harness::new();
    let first = h.publish("pub1");
    h.ctx.conn = 2;
    let a = h.announce("pub1", FFMPEG_SDP);
    assert_eq!(a.response.status, 455);
    assert_eq!(
        a.response.reason,
        "Method Not Valid in This State (camera pub1 already has a publisher)"
    );
    assert_eq!(
        a.events,
        vec![Event::PublishRefused {
            camera: "pub1".into()
        }]
    );
    assert_eq!(h.core.state(&first), Some(State::Recording));
    // Two announced before either recorded: the second RECORD is refused.
    let mut h = Harness::new();
    h.announce("pub1", FFMPEG_SDP);
    let one = h.setup_record_udp("pub1/streamid=0", None, 5000);
    h.ctx.conn = 2;
    h.announce("pub1", FFMPEG_SDP);
    let two = h.setup_record_udp("pub1/streamid=0", None, 5010);
    assert_eq!(
        h.status("RECORD", "pub1", &format!("Session: {one}\r\n")),
        200
    );
    assert_eq!(
        h.status("RECORD", "pub1", &format!("Session: {two}\r\n")),
        455
    );
    assert_eq!(h.core.state(&one), Some(State::Recording));
    assert_eq!(h.core.state(&two), Some(State::Ready));

    // pub2: override. The new publisher's RECORD closes the old session first.
    let mut h = Harness::new();
    let old = h.publish("pub2");
    h.ctx.conn = 2;
    let new = h.publish("pub2");
    let a_actions: Vec<&Action> = h
        .actions
        .iter()
        .skip_while(|a| !matches!(a, Action::Close { .. }))
        .collect();
    assert!(
        matches!(
            &a_actions[..],
            [Action::Close { session, reason: CloseReason::Replaced, .. }, Action::StartPublish { session: s2, .. }]
                if *session == old && *s2 == new
        ),
        "{a_actions:?}"
    );
    assert_eq!(h.core.state(&old), None);
    // The old publisher's connection is no longer routed.
    assert_eq!(h.core.inbound(1, 0, h.ctx.now), Inbound::Unrouted);
}

#[test]
fn a_silent_publisher_is_replaced_without_override() {
    // pub1 has no override; its publisher (UDP) went silent, e.g. killed without TEARDOWN.
    let mut h = Harness::new();
    h.announce("pub1", FFMPEG_SDP);
    let old = h.setup_record_udp("pub1/streamid=0", None, 5000);
    h.send("RECORD", "pub1", &format!("Session: {old}\r\n"));
    let sent_at = h.ctx.now;
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    // Still sending 4.9 s later: a new publisher is refused.
    h.ctx.now = sent_at + super::publish::PUBLISHER_SILENCE - Duration::from_millis(100);
    assert!(h.core.udp_record(at(5000), false, h.ctx.now).is_some());
    h.ctx.now += super::publish::PUBLISHER_SILENCE - Duration::from_millis(100);
    h.ctx.conn = 2;
    assert_eq!(h.announce("pub1", FFMPEG_SDP).response.status, 455);
    // Silent for PUBLISHER_SILENCE: the new one's ANNOUNCE and RECORD succeed and close
    // the old session.
    h.ctx.now += Duration::from_millis(200);
    let new = h.publish("pub1");
    assert_eq!(h.core.state(&old), None);
    assert_eq!(h.core.state(&new), Some(State::Recording));
    assert!(
        h.actions.iter().any(|a| matches!(a,
            Action::Close { session, reason: CloseReason::Replaced, .. } if *session == old)),
        "{:?}",
        h.actions
    );
}

#[test]
fn a_publisher_ends_with_its_connection_or_timeout() {
    // Over UDP too: the session was made on the connection, and ends with it.
    let mut h = Harness::new();
    h.announce("pub1", FFMPEG_SDP);
    let id = h.setup_record_udp("pub1/streamid=0", None, 5000);
    h.send("RECORD", "pub1", &format!("Session: {id}\r\n"));
    let gone = h.core.connection_closed(1);
    assert_eq!(
        gone,
        vec![Action::Close {
            session: id,
            path: PathKind::Live("pub1".into()),
            reason: CloseReason::ConnectionClosed
        }]
    );
    // The announcement went with the connection.
    assert_eq!(
        h.status(
            "SETUP",
            "pub1/streamid=0",
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n"
        ),
        455
    );
    // Media keeps a publisher's session alive; without it, it times out.
    let mut h = Harness::new();
    let t0 = h.ctx.now;
    let id = h.publish("pub1");
    assert!(matches!(
        h.core.inbound(1, 0, t0 + Duration::from_secs(50)),
        Inbound::Record { .. }
    ));
    assert!(h.core.expire(t0 + Duration::from_secs(100)).is_empty());
    let gone = h.core.expire(t0 + Duration::from_secs(111));
    assert!(
        matches!(&gone[..], [Action::Close { session, reason: CloseReason::Timeout, .. }] if *session == id)
    );
}

#[test]
fn publish_roles() {
    let cat = Cat::default();
    let role = |text: &str| Sessions::required_role(&parse(text), &cat);
    let rec = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n";
    // pub1 needs operators, pub2 nobody; cam1 takes no publisher (viewer, then 405).
    for (text, want) in [
        ("ANNOUNCE rtsp://h/pub1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", Some(Role::Operator)),
        ("ANNOUNCE rtsp://h/pub2 RTSP/1.0\r\nCSeq: 1\r\n\r\n", None),
        ("ANNOUNCE rtsp://h/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", Some(Role::Viewer)),
        ("RECORD rtsp://h/pub1 RTSP/1.0\r\nCSeq: 1\r\n\r\n", Some(Role::Operator)),
        (&format!("SETUP rtsp://h/pub1/streamid=0 RTSP/1.0\r\nCSeq: 1\r\n{rec}\r\n"), Some(Role::Operator)),
        (&format!("SETUP rtsp://h/pub2/streamid=0 RTSP/1.0\r\nCSeq: 1\r\n{rec}\r\n"), None),
        // A reader of a publish camera is a viewer.
        ("SETUP rtsp://h/pub1/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n", Some(Role::Viewer)),
        ("DESCRIBE rtsp://h/pub2 RTSP/1.0\r\nCSeq: 1\r\n\r\n", Some(Role::Viewer)),
    ] {
        assert_eq!(role(text), want, "{text}");
    }
    // A request naming a publisher's session needs the publish role, whatever the method
    // (an anonymous publisher of pub2 can TEARDOWN); publishing_to names the camera.
    let mut h = Harness::new();
    let id = h.publish("pub2");
    let teardown = parse(&format!(
        "TEARDOWN rtsp://h/pub2 RTSP/1.0\r\nCSeq: 9\r\nSession: {id}\r\n\r\n"
    ));
    let mut asked = None;
    let step = h.core.handle(&teardown, &h.ctx, &h.cat, |r| {
        asked = Some(r);
        Ok(None)
    });
    assert!(matches!(step, Step::Answer(a) if a.response.status == 200));
    assert_eq!(asked, Some(None));
    let announce = parse("ANNOUNCE rtsp://h/pub1 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(h.core.publishing_to(&announce, &h.cat), Some("pub1".into()));
    let describe = parse("DESCRIBE rtsp://h/pub1 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(h.core.publishing_to(&describe, &h.cat), None);
    let announce = parse("ANNOUNCE rtsp://h/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(h.core.publishing_to(&announce, &h.cat), None);
}
