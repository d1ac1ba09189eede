//! The RTSP session core on whatever requests arbitrary bytes decode to, over three
//! connections, with every step it asks for answered (live joins, replay opens with and
//! without footage, talk granted or refused), interleaved frames and publishers' UDP
//! datagrams routed, time moving on and connections closing. It must never panic, and its
//! table must stay consistent: a session it reports as closed is gone, a camera has at most
//! one recording publisher (pub1 refuses a second; pub2 replaces the first).
//!
//! With knob bit 0x08, frames stay on one connection (the next one after a response frame,
//! which closes it), and a request naming a session the core does not know gets the newest
//! session's id instead, so that captured conversations (whose ids are the capturing
//! server's) reach PLAY and RECORD; the publish seeds (`fuzz/seeds/rtsp_session/*publish*`)
//! publish to pub1 and pub2.
#![no_main]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use ipcamd_proto::rtsp::message::{Decoder, Frame, Limits, Response};
use ipcamd_proto::rtsp::server::testing::{Cat, T};
use ipcamd_proto::rtsp::server::{
    Action, Config, Context, Inbound, LiveJoin, ReplayStart, Sessions, State, Step, TalkRefusal,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let mut core = Sessions::new(
        Config {
            session_timeout: Duration::from_secs(60),
            max_sessions_per_connection: 3,
            udp_ports: Some((6970, 6971)),
            ..Config::default()
        },
        [1; 32],
    );
    let cat = Cat::default();
    let t0 = Instant::now();
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::from(data);
    let mut n = 0u64;
    let mut closed = 0u64;
    let mut newest: Option<String> = None;
    let mut recording: std::collections::HashMap<String, String> = Default::default();
    for _ in 0..200 {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.fatal => break,
            Err(_) => continue,
        };
        n += 1;
        // Knob 0x08: one connection at a time (the next after each close), as a publisher's
        // ANNOUNCE and SETUP need; otherwise each frame on the next of three.
        let conn = if knobs & 0x08 != 0 {
            1 + closed % 3
        } else {
            1 + n % 3
        };
        let ctx = Context {
            conn,
            peer: "127.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!()),
            local_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            now: t0 + Duration::from_secs(n * u64::from(knobs % 8)),
            now_utc: T,
        };
        let req = match frame {
            Frame::Request(r) => r,
            Frame::Interleaved { channel, .. } => {
                if let Inbound::Record { session, .. } | Inbound::RecordRtcp { session, .. } =
                    core.inbound(conn, channel, ctx.now)
                {
                    assert_eq!(core.state(&session), Some(State::Recording));
                }
                continue;
            }
            Frame::Response(_) => {
                closed += 1;
                for a in core.connection_closed(conn) {
                    if let Action::Close { session, .. } = a {
                        recording.retain(|_, s| *s != session);
                    }
                }
                continue;
            }
        };
        let mut req = req;
        if let (true, Some(id), Some(new)) = (knobs & 0x08 != 0, req.session_id(), &newest) {
            if core.state(id).is_none() {
                req.headers.set("Session", new.clone());
            }
        }
        let _ = core.publishing_to(&req, &cat);
        let user = (knobs & 0x10 != 0).then(|| format!("u{}", n % 2));
        let answer = match core.handle(&req, &ctx, &cat, |_| Ok(user)) {
            Step::Answer(a) => a,
            Step::LiveJoin(p) => {
                let join = LiveJoin {
                    seq: 1,
                    rtp_timestamp: 2,
                    wallclock: ctx.now_utc - 1_000_000,
                    clock_rate: 90_000,
                };
                core.live_joined(p, &[Some(join), None], &ctx)
            }
            Step::ReplayOpen(p) => {
                let start = if knobs & 0x20 != 0 {
                    Err(Response::new(500))
                } else {
                    Ok(ReplayStart {
                        start_point: p.request.play.start.filter(|_| knobs & 0x40 == 0),
                        rtptimes: vec![(0, 5)],
                        seqs: vec![(0, 9), (7, 1)],
                    })
                };
                core.replay_opened(p, start)
            }
            Step::TalkAcquire(p) => {
                let r = match knobs & 0xc0 {
                    0x80 => Err(TalkRefusal::Busy {
                        owner: "other".to_owned(),
                    }),
                    0xc0 => Err(TalkRefusal::Unavailable {
                        reason: "camera said 551".to_owned(),
                    }),
                    _ => Ok(()),
                };
                core.talk_acquired(p, r)
            }
        };
        assert!(answer.response.status >= 200 && answer.response.status < 600);
        if let Some(id) = answer.response.session_id() {
            newest = Some(id.to_owned());
        }
        for a in answer.before.iter().chain(&answer.after) {
            match a {
                Action::Close { session, .. } => {
                    assert!(core.state(session).is_none());
                    recording.retain(|_, s| s != session);
                }
                Action::StartPublish {
                    session, camera, ..
                } => {
                    // At most one publisher per camera: a replaced one was closed before.
                    if let Some(old) = recording.insert(camera.clone(), session.clone()) {
                        assert!(old == *session || core.state(&old).is_none());
                    }
                    assert_eq!(core.state(session), Some(State::Recording));
                }
                Action::StopPublish { camera, .. } => {
                    recording.remove(camera);
                }
                Action::StopDelivery { session } => core.delivery_stopped(session, n % 4, Some(T)),
                Action::StartReplay {
                    session, delivery, ..
                } if n % 5 == 0 => {
                    core.delivery_finished(session, *delivery, Some(T));
                }
                _ => {}
            }
        }
        for a in core.expire(ctx.now) {
            if let Action::Close { session, .. } = a {
                assert!(core.state(&session).is_none());
                recording.retain(|_, s| *s != session);
            }
        }
        for port in [5000u16, 5001, 5002] {
            let from = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if let Some((session, _)) = core.udp_record(from, port % 2 == 1, ctx.now) {
                assert_eq!(core.state(&session), Some(State::Recording));
            }
        }
        let _ = core.udp_talk(
            "127.0.0.1:5002".parse().unwrap_or_else(|_| unreachable!()),
            ctx.now,
        );
    }
    core.close_all();
    assert!(core.is_empty());
    assert!((1..=3).all(|c| !core.has_sessions_on(c)));
});
