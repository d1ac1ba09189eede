//! RTSP publish (RFC 2326 §10.3 ANNOUNCE, §10.11 RECORD, §12.39 `mode=record`): an
//! encoder (ffmpeg `-f rtsp`, GStreamer `rtspclientsink`, OBS-style tools) pushes a stream
//! to a publish camera, whose readers, recording, snapshots and ONVIF profile then carry
//! it. The rules, in the order they are checked (docs/rtsp-server.md "RTSP publish"):
//!
//! - ANNOUNCE `rtsp://host/<camera>` with an SDP body: 404 for an unknown camera, 405
//!   (`Allow` without ANNOUNCE) for a camera that takes no publisher or a replay URL,
//!   415 for a body that is not `application/sdp`, 400 for a missing or unparsable SDP or
//!   a media section that cannot be described (a dynamic payload type without
//!   `a=rtpmap`; the reason names the section); codecs ipcamd does not depacketize (Opus,
//!   G.726, ...) are passed through as opaque RTP (`packet::opaque`), 455 while the camera has a publisher (unless its `publish_override`). The
//!   description is kept for the connection; no session yet (clients send the first
//!   SETUP without one).
//! - SETUP with `mode=record` of an announced stream (its control URL resolved against
//!   the ANNOUNCE URL): on the connection that announced, or in the publisher's session;
//!   TCP interleaved or UDP (`client_port`; the answer names the server's shared port
//!   pair, and datagrams are routed by their exact source address).
//! - RECORD: the session starts feeding the camera ([`Action::StartPublish`] before the
//!   answer); a live publisher gets the new one refused with 455, or with
//!   `publish_override` is closed ([`CloseReason::Replaced`]). A publisher silent for
//!   [`PUBLISHER_SILENCE`] is replaced whatever `publish_override` says. PAUSE stops feeding
//!   ([`Action::StopPublish`]); TEARDOWN, a timeout, or the close of the publisher's
//!   connection end the publication.
//!
//! Left out: ANNOUNCE inside a session (a new description mid-stream: 455), SDP sections
//! other than audio and video (the SDP parser skips them, so their SETUP is 404), the
//! `Range` of RECORD (media is live; it is ignored).

use std::time::{Duration, Instant};

use crate::codec::TrackInfo;
use crate::rtsp::message::{Method, Request, Response};
use crate::sdp::{parse_sdp, resolve_control};

use super::target::{split_uri, PathKind, Target, REPLAY_PREFIX};
use super::{
    not_found, printable, transport, transport_offers, Action, Answer, Catalogue, CloseReason,
    Context, Event, Inbound, Session, Sessions, SetupTrack, State, PUBLIC,
};

/// A publisher that sent nothing (media, RTCP or a request) for this long no longer
/// blocks a new one: it is replaced as with `publish_override` (a UDP publisher that died
/// sends no TEARDOWN, and its session would otherwise hold the camera until it times out).
pub const PUBLISHER_SILENCE: Duration = Duration::from_secs(5);

/// At most this many media sections in a publisher's SDP.
pub const MAX_TRACKS: usize = 8;

/// The codecs a publisher may send (the reason phrase of a 400 names them).
pub const CODECS: &str = "H.264, H.265, JPEG, AAC (MPEG4-GENERIC), PCMU, PCMA";

/// One announced stream: its track and the path of its control URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedTrack {
    pub info: TrackInfo,
    /// The control URL's path without a trailing `/` (`/cam/streamid=0`): what a SETUP
    /// URL must name.
    pub path: String,
}

/// What an ANNOUNCE described, kept for the SETUPs that follow it on its connection.
#[derive(Debug, Clone)]
pub(super) struct Announcement {
    pub camera: String,
    pub tracks: Vec<AnnouncedTrack>,
    /// Who announced: only they may set the streams up.
    pub user: Option<String>,
}

/// A publisher's session.
#[derive(Debug, Clone)]
pub(super) struct PublishState {
    pub announced: Vec<AnnouncedTrack>,
    /// The announced streams (SDP indices) that feed the camera, in SDP order: fixed at
    /// RECORD. [`Inbound::Record`]'s `track` indexes this.
    pub recording: Vec<usize>,
}

/// The live camera a URL names (its first path segment), unless it is a replay URL.
pub fn camera_of(uri: &str) -> Option<String> {
    let (_, path) = split_uri(uri)?;
    let first = path.split('/').find(|s| !s.is_empty())?;
    (first != REPLAY_PREFIX).then(|| first.to_owned())
}

/// Whether the URL names a camera that takes publishers.
pub(super) fn is_publish_camera(uri: &str, cat: &dyn Catalogue) -> bool {
    camera_of(uri)
        .and_then(|c| cat.camera(&c))
        .is_some_and(|c| c.publish.is_some())
}

/// The 405 of ANNOUNCE and RECORD on a URL that takes no publisher.
pub(super) fn not_allowed(why: &str) -> Response {
    Response::with_reason(405, format!("Method Not Allowed ({why})")).header("Allow", PUBLIC)
}

/// Whether a SETUP asks for `mode=record` (in any of its Transport offers; ffmpeg sends
/// `mode=record`, GStreamer `mode=RECORD`, RFC 2326 `mode="RECORD"`).
pub fn is_record_setup(req: &Request) -> bool {
    req.method == Method::Setup
        && req
            .headers
            .get("Transport")
            .and_then(|v| crate::rtsp::headers::parse_transports(v).ok())
            .is_some_and(|offers| {
                offers.iter().any(|t| {
                    t.mode.as_deref().is_some_and(|m| {
                        m.split(',')
                            .any(|m| m.trim().eq_ignore_ascii_case("record"))
                    })
                })
            })
}

/// `uri`'s path without a trailing `/`, for comparing a SETUP URL with a control URL.
fn path_of(uri: &str) -> Option<String> {
    let (_, path) = split_uri(uri)?;
    Some(path.trim_end_matches('/').to_owned())
}

/// Where a publisher's packet on announced stream `announced` goes.
pub(super) fn route(id: &str, s: &Session, announced: usize, rtcp: bool) -> Inbound {
    let Some(p) = &s.publish else {
        return Inbound::Unrouted;
    };
    if s.state != State::Recording {
        return Inbound::NotRecording;
    }
    match p.recording.iter().position(|&i| i == announced) {
        Some(track) if rtcp => Inbound::RecordRtcp {
            session: id.to_owned(),
            track,
        },
        Some(track) => Inbound::Record {
            session: id.to_owned(),
            track,
        },
        None => Inbound::NotRecording,
    }
}

/// The streams of an ANNOUNCE's SDP body (400/415 when it has none ipcamd can take).
// The error is the answer to send (built once, moved out): not worth boxing.
#[allow(clippy::result_large_err)]
pub fn parse_announcement(req: &Request) -> Result<Vec<AnnouncedTrack>, Response> {
    let bad =
        |why: String| Response::with_reason(400, format!("Bad Request ({})", printable(&why)));
    if let Some(ct) = req.headers.get("Content-Type") {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/sdp") {
            return Err(Response::with_reason(
                415,
                "Unsupported Media Type (ANNOUNCE takes application/sdp)",
            ));
        }
    }
    if req.body.is_empty() {
        return Err(bad(
            "ANNOUNCE needs an SDP body (Content-Type: application/sdp with Content-Length)".into(),
        ));
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| bad("the SDP is not UTF-8".into()))?;
    let sdp = parse_sdp(text).map_err(|e| bad(format!("SDP: {e}")))?;
    if sdp.media.is_empty() {
        return Err(bad("the SDP has no audio or video section".into()));
    }
    if sdp.media.len() > MAX_TRACKS {
        return Err(bad(format!(
            "the SDP has {} media sections; at most {MAX_TRACKS}",
            sdp.media.len()
        )));
    }
    let base = req.uri.split(['?', '#']).next().unwrap_or(&req.uri);
    let base = match sdp.control() {
        Some(c) if c.contains("://") => c,
        _ => base,
    };
    let mut out = Vec::with_capacity(sdp.media.len());
    for (i, m) in sdp.media.iter().enumerate() {
        let usable = m.formats.iter().find_map(|f| {
            f.to_codec().map(|codec| TrackInfo {
                codec,
                payload_type: f.payload_type,
            })
        });
        // Other codecs (Opus, G.726, ...): the first format, passed through as opaque RTP
        // as for a proxied camera.
        let opaque = || {
            let f = m.formats.first()?;
            f.to_opaque(m.kind).map(|codec| TrackInfo {
                codec,
                payload_type: f.payload_type,
            })
        };
        let Some(info) = usable.or_else(opaque) else {
            let names: Vec<String> = m
                .formats
                .iter()
                .map(|f| match &f.rtpmap {
                    Some(r) => r.clone(),
                    None => format!("payload type {}", f.payload_type),
                })
                .collect();
            return Err(bad(format!(
                "media section {} ({} {}): a dynamic payload type needs a=rtpmap (ipcamd depacketizes {CODECS} and passes other codecs through as they are)",
                i + 1,
                m.kind.as_sdp(),
                names.join(" ")
            )));
        };
        let path = path_of(&resolve_control(base, &m.control))
            .ok_or_else(|| bad(format!("media section {}: bad control URL", i + 1)))?;
        out.push(AnnouncedTrack { info, path });
    }
    Ok(out)
}

fn has_publisher(camera: &str) -> Response {
    Response::with_reason(
        455,
        format!(
            "Method Not Valid in This State (camera {} already has a publisher)",
            printable(camera)
        ),
    )
}

impl Sessions {
    /// The sessions recording to `camera`, other than `except`, each with whether it is
    /// silent at `now` (nothing from it, media, RTCP or a request, for [`PUBLISHER_SILENCE`]).
    fn live_publishers(
        &self,
        camera: &str,
        except: Option<&str>,
        now: Instant,
    ) -> Vec<(String, bool)> {
        self.map
            .iter()
            .filter(|(id, s)| {
                s.publish.is_some()
                    && s.state == State::Recording
                    && s.path.name() == camera
                    && Some(id.as_str()) != except
            })
            .map(|(id, s)| {
                let silent = now.saturating_duration_since(s.last_seen) >= PUBLISHER_SILENCE;
                (id.clone(), silent)
            })
            .collect()
    }

    /// ANNOUNCE (see the module documentation).
    pub(super) fn announce(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        session: Option<String>,
        user: Option<String>,
    ) -> Answer {
        let target = match Target::parse(&req.uri) {
            Ok(t) => t,
            Err(r) => return Answer::new(r),
        };
        let name = match &target.kind {
            PathKind::Live(n) => n.clone(),
            PathKind::Replay(_) => {
                return Answer::new(not_allowed("a recording takes no publisher"))
            }
        };
        let Some(cam) = cat.camera(&name) else {
            return Answer::new(not_found());
        };
        let Some(rules) = cam.publish else {
            return Answer::new(not_allowed(&format!(
                "camera {} takes no publisher: its source is not \"publish\"",
                printable(&name)
            )));
        };
        if target.track.is_some() {
            return Answer::new(not_found());
        }
        if session.is_some() {
            return Answer::new(Response::with_reason(
                455,
                "Method Not Valid in This State (ANNOUNCE inside a session: describe the stream before SETUP)",
            ));
        }
        let tracks = match parse_announcement(req) {
            Ok(t) => t,
            Err(r) => return Answer::new(r),
        };
        let blocking = self
            .live_publishers(&name, None, ctx.now)
            .iter()
            .any(|(_, silent)| !silent);
        if !rules.replace && blocking {
            let mut a = Answer::new(has_publisher(&name));
            a.events.push(Event::PublishRefused { camera: name });
            return a;
        }
        self.announced.insert(
            ctx.conn,
            Announcement {
                camera: name,
                tracks,
                user,
            },
        );
        Answer::new(Response::new(200))
    }

    /// SETUP with `mode=record` (see the module documentation).
    pub(super) fn setup_record(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        session: Option<String>,
        user: Option<String>,
    ) -> Answer {
        match self.try_setup_record(req, ctx, cat, session, user) {
            Ok(a) | Err(a) => a,
        }
    }

    // The error is the answer to send (as in `try_setup`).
    #[allow(clippy::result_large_err)]
    fn try_setup_record(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        session: Option<String>,
        user: Option<String>,
    ) -> Result<Answer, Answer> {
        let fail = |r: Response| Answer::new(r);
        let want = path_of(&req.uri).ok_or_else(|| {
            fail(Response::with_reason(
                400,
                "Bad Request (request URL is not rtsp://host/path)",
            ))
        })?;
        let camera = camera_of(&req.uri).ok_or_else(|| fail(not_found()))?;
        let cam = cat.camera(&camera).ok_or_else(|| fail(not_found()))?;
        if cam.publish.is_none() {
            return Err(fail(Response::with_reason(
                461,
                format!(
                    "Unsupported Transport (mode=record: camera {} takes no publisher)",
                    printable(&camera)
                ),
            )));
        }
        let not_valid = |why: &str| {
            fail(Response::with_reason(
                455,
                format!("Method Not Valid in This State ({why})"),
            ))
        };
        let announced = match &session {
            Some(id) => {
                let s = self
                    .map
                    .get(id)
                    .ok_or_else(|| fail(super::missing_session()))?;
                if s.path != PathKind::Live(camera.clone()) {
                    return Err(fail(Response::with_reason(
                        459,
                        "Aggregate Operation Not Allowed (session belongs to another camera)",
                    )));
                }
                let Some(p) = &s.publish else {
                    return Err(not_valid("SETUP with mode=record in a session that plays"));
                };
                if s.state == State::Recording {
                    return Err(not_valid("PAUSE the recording before SETUP"));
                }
                p.announced.clone()
            }
            None => match self.announced.get(&ctx.conn) {
                Some(a) if a.camera == camera && a.user == user => a.tracks.clone(),
                _ => {
                    return Err(not_valid(
                        "ANNOUNCE the stream on this connection before SETUP with mode=record",
                    ))
                }
            },
        };
        let track = announced
            .iter()
            .position(|t| t.path == want)
            .ok_or_else(|| {
                fail(Response::with_reason(
                    404,
                    "Not Found (no announced stream has this control URL)",
                ))
            })?;
        let offers = transport_offers(req).map_err(fail)?;
        let used: Vec<u8> = session
            .as_deref()
            .and_then(|id| self.map.get(id))
            .map(|s| {
                s.tracks
                    .iter()
                    .filter(|(i, _)| **i != track)
                    .filter_map(|(_, t)| t.route.channels())
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        let (route, mut answer_t) =
            transport::negotiate(&offers, &used, ctx.conn, ctx.peer, self.config.udp_ports)
                .ok_or_else(|| fail(Response::with_reason(461, transport::NO_ACCEPTABLE)))?;
        answer_t.ssrc = None;
        let (id, created) = match session {
            Some(id) => (id, false),
            None => {
                let publish = PublishState {
                    announced,
                    recording: Vec::new(),
                };
                let id =
                    self.new_session(PathKind::Live(camera), None, Some(publish), ctx, user)?;
                (id, true)
            }
        };
        let s = self
            .map
            .get_mut(&id)
            .ok_or_else(|| fail(super::missing_session()))?;
        let before = s.conns();
        s.tracks.insert(
            track,
            SetupTrack {
                url: req.uri.clone(),
                route,
            },
        );
        Ok(self.setup_answer(id, &before, &answer_t, created))
    }

    /// RECORD (see the module documentation).
    pub(super) fn record(
        &mut self,
        _req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        id: &str,
    ) -> Answer {
        let Some(s) = self.map.get(id) else {
            return Answer::new(super::missing_session());
        };
        let camera = s.path.name().to_owned();
        let rules = match &s.path {
            PathKind::Live(c) => cat.camera(c).and_then(|c| c.publish),
            PathKind::Replay(_) => None,
        };
        let (Some(p), Some(rules)) = (&s.publish, rules) else {
            return Answer::new(if rules.is_some() {
                Response::with_reason(
                    455,
                    "Method Not Valid in This State (RECORD needs ANNOUNCE and SETUP with mode=record)",
                )
            } else {
                not_allowed("only a publish camera takes RECORD")
            });
        };
        if s.state == State::Recording {
            return Answer::new(self.with_session(Response::new(200), Some(id.to_owned())));
        }
        if s.tracks.is_empty() {
            return Answer::new(Response::with_reason(
                455,
                "Method Not Valid in This State (no stream set up)",
            ));
        }
        let recording: Vec<usize> = s.tracks.keys().copied().collect();
        let tracks: Vec<TrackInfo> = recording
            .iter()
            .filter_map(|&i| p.announced.get(i).map(|t| t.info.clone()))
            .collect();
        let mut a = Answer::new(Response::new(200));
        let others = self.live_publishers(&camera, Some(id), ctx.now);
        if !others.is_empty() {
            if !rules.replace && others.iter().any(|(_, silent)| !silent) {
                let mut a = Answer::new(has_publisher(&camera));
                a.events.push(Event::PublishRefused { camera });
                return a;
            }
            for (old, silent) in others {
                a.before.extend(self.close(&old, CloseReason::Replaced));
                a.events.push(Event::PublisherReplaced {
                    camera: camera.clone(),
                    old,
                    silent,
                });
            }
        }
        if let Some(s) = self.map.get_mut(id) {
            s.state = State::Recording;
            if let Some(p) = s.publish.as_mut() {
                p.recording = recording;
            }
        }
        a.before.push(Action::StartPublish {
            session: id.to_owned(),
            camera,
            tracks,
            peer: ctx.peer,
        });
        a.response = self.with_session(Response::new(200), Some(id.to_owned()));
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_of_urls() {
        assert_eq!(camera_of("rtsp://h:1/pub1/streamid=0"), Some("pub1".into()));
        assert_eq!(camera_of("/pub1"), Some("pub1".into()));
        assert_eq!(camera_of("rtsp://h/replay/pub1"), None);
        assert_eq!(camera_of("rtsp://h/"), None);
        assert_eq!(camera_of("*"), None);
    }
}
