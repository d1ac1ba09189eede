//! # The RTSP server session core (sans-IO)
//!
//! Every rule of RFC 2326 and of the ONVIF Streaming Specification (docs/onvif.md) that is
//! a pure decision lives here: the session state machine, which status answers which
//! mistake, Transport negotiation, `Require` handling, session ownership, keep-alive and
//! timeouts, routing of what clients send back. It owns the table of RTSP sessions. It
//! does no I/O and reads no clock: the caller hands it each decoded request with "now" and
//! a read-only [`Catalogue`] of what exists, and gets back the response and a list of
//! [`Action`]s to carry out (start a live delivery, start or queue a replay delivery, stop
//! one, start a talker, start or stop a publisher, close a session). docs/rtsp-server.md
//! has the state diagram and the status table.
//!
//! ```text
//!                SETUP                 PLAY                 PAUSE
//!   (no session) -----> Ready ---------------> Playing ------------> Ready
//!                       |  ^  SETUP (another     |  PLAY (again: answered,
//!                       |  |  track, or again)   |  live delivery goes on;
//!                       |  +---------------------+  replay: queued or Immediate)
//!                       |  TEARDOWN / timeout / connection closed
//!                       +-------------------------------------------> (gone)
//!
//!   publish (RFC 2326 §10.3, §10.11; module `publish`):
//!   ANNOUNCE (SDP)    SETUP mode=record            RECORD                 PAUSE
//!   (connection) ---> (no session) ------> Ready ------------> Recording ------> Ready
//!                                           ^  SETUP (another    |  TEARDOWN / timeout /
//!                                           +--  stream)         |  connection closed /
//!                                                                |  replaced -> (gone)
//! ```
//!
//! Some requests need something only the caller can get (a subscription to a live camera,
//! the first batch of a recording read from disk, the camera's audio output): then
//! [`Sessions::handle`] returns a [`Step`] naming what it needs, and the caller feeds the
//! result back ([`Sessions::live_joined`], [`Sessions::replay_opened`],
//! [`Sessions::talk_acquired`]) to get the [`Answer`]. The caller must not hold the
//! session table across an `.await`; each continuation re-checks that the session still
//! exists.
//!
//! Hand-written: no crate implements an RTSP *server* session layer with ONVIF's
//! backchannel and replay rules.

pub mod catalogue;
pub mod publish;
pub mod replay;
pub mod target;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod transport;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::auth::Role;
use crate::codec::TrackInfo;
use crate::rtsp::headers::SessionHeader;
use crate::rtsp::headers::{format_rtp_info, format_scale, parse_transports, Range, RtpInfo};
use crate::rtsp::message::{Method, Request, Response};
use crate::rtsp::tags;
use crate::sdp::{Direction, SdpFormat, SdpMedia, SdpSession};
use crate::time::UnixMicros;

pub use catalogue::{
    BackchannelView, CameraView, Catalogue, PublishView, RecordingLookup, RecordingView, Span,
};
pub use replay::{PlayDirection, PlayRequest, ReplayRequest, ReplayStart};
pub use target::{PathKind, Target, REPLAY_PREFIX};
pub use transport::Route;

/// Identifies a connection: the one whose write half carries a session's interleaved data
/// (for an HTTP tunnel, its GET connection).
pub type ConnId = u64;

/// The methods the server implements on a camera or recording (the `Public` header, and
/// `Allow` of a 405).
pub const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// The methods of a publish camera (`Public` of OPTIONS on its URL).
pub const PUBLIC_PUBLISH: &str =
    "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// Settings of the session core.
#[derive(Debug, Clone)]
pub struct Config {
    /// Announced in `Session: id;timeout=N`; an idle session is closed after it.
    pub session_timeout: Duration,
    /// Sessions one connection may create (`[limits] max_sessions_per_connection`).
    pub max_sessions_per_connection: usize,
    /// The server's RTP/RTCP UDP port pair; `None`: UDP transport is not offered.
    pub udp_ports: Option<(u16, u16)>,
    /// RTP payload bytes of interleaved replay packets when the client sends no
    /// `Blocksize` (`[server] replay_blocksize`; see [`replay::PacketSize`]).
    pub replay_blocksize: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_timeout: Duration::from_secs(60),
            max_sessions_per_connection: 16,
            udp_ports: None,
            replay_blocksize: replay::DEFAULT_BLOCKSIZE,
        }
    }
}

/// Where and when a request arrived.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The connection that carries interleaved data for this request's sessions.
    pub conn: ConnId,
    pub peer: SocketAddr,
    /// Our address on that connection (the SDP origin).
    pub local_ip: IpAddr,
    /// The monotonic "now" (keep-alive).
    pub now: Instant,
    /// The wallclock "now" (SDP origin, live `Range: clock=`).
    pub now_utc: UnixMicros,
}

/// Session state (RFC 2326 Appendix A); "no session" is the Init state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    Playing,
    /// A publisher's session after RECORD: its media feeds the camera.
    Recording,
}

/// One server -> client track a delivery sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackOut {
    pub track: usize,
    pub ssrc: u32,
    pub route: Route,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Teardown,
    Timeout,
    /// The connection carrying its interleaved data closed.
    ConnectionClosed,
    Shutdown,
    /// Its only track (a backchannel) was refused.
    Refused,
    /// A publisher replaced by a new one (`publish_override`).
    Replaced,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Teardown => "TEARDOWN",
            CloseReason::Timeout => "timeout",
            CloseReason::ConnectionClosed => "connection closed",
            CloseReason::Shutdown => "server shutdown",
            CloseReason::Refused => "backchannel refused",
            CloseReason::Replaced => "replaced by a new publisher",
        }
    }
}

/// What the caller carries out. `Answer::before` runs before the response is written,
/// `Answer::after` once it is on the wire (no media may precede a PLAY response).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send the camera's live stream (the caller subscribed in [`Step::LiveJoin`]).
    StartLive {
        session: String,
        camera: String,
        tracks: Vec<TrackOut>,
    },
    /// Start a replay delivery (the caller opened it in [`Step::ReplayOpen`]).
    /// `delivery` numbers it within the session: the caller quotes it when it reports the
    /// delivery stopped or finished, so that a late report of a replaced one is ignored.
    StartReplay {
        session: String,
        recording: String,
        tracks: Vec<TrackOut>,
        request: ReplayRequest,
        delivery: u64,
    },
    /// Queue a replay delivery behind the running one (RFC 2326 §10.5).
    QueueReplay { session: String },
    /// Stop the session's delivery at a packet boundary (and drop queued ones); report
    /// the last unit a replay delivery sent with [`Sessions::delivery_stopped`].
    StopDelivery { session: String },
    /// The session set up the camera's backchannel: start receiving talk audio.
    StartTalk {
        session: String,
        camera: String,
        route: Route,
    },
    /// Talk audio is accepted (PLAY) or ignored (PAUSE).
    TalkPlaying { session: String, on: bool },
    /// A publisher's RECORD: its media (see [`Inbound::Record`]) feeds `camera`, whose
    /// tracks become `tracks` (the set-up streams of its SDP, in SDP order; the `track`
    /// of [`Inbound::Record`] indexes them). Carried out before the response, so that no
    /// packet sent right after it is lost.
    StartPublish {
        session: String,
        camera: String,
        tracks: Vec<TrackInfo>,
        /// Who publishes (for the log).
        peer: SocketAddr,
    },
    /// A publisher's PAUSE: its media is dropped, the camera is offline until RECORD.
    /// (When the session closes, [`Action::Close`] ends the publication too.)
    StopPublish { session: String, camera: String },
    /// The session is gone: stop its delivery, its talker, release its audio output.
    Close {
        session: String,
        path: PathKind,
        reason: CloseReason,
    },
}

/// Things worth counting or logging that are not actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SessionCreated {
        session: String,
    },
    /// Refused by `max_sessions_per_connection`.
    SessionLimit {
        max: usize,
    },
    /// The backchannel was refused to a talker.
    TalkRefused {
        camera: String,
        refusal: TalkRefusal,
    },
    /// A second publisher was refused (455): the camera has one.
    PublishRefused {
        camera: String,
    },
    /// A new publisher replaced the live one, whose session `old` was closed: because of
    /// `publish_override`, or (`silent`) because the old one sent nothing for
    /// [`publish::PUBLISHER_SILENCE`].
    PublisherReplaced {
        camera: String,
        old: String,
        silent: bool,
    },
}

/// Why a talker cannot have the camera's audio output ([`Sessions::talk_acquired`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkRefusal {
    /// Another session holds it: `453 Not Enough Bandwidth`.
    Busy { owner: String },
    /// It cannot be opened (a relayed camera refused its backchannel): `503` with this
    /// reason phrase, which names what went wrong.
    Unavailable { reason: String },
}

/// A response and what to do around it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub response: Response,
    pub before: Vec<Action>,
    pub after: Vec<Action>,
    pub events: Vec<Event>,
}

impl Answer {
    fn new(response: Response) -> Answer {
        Answer {
            response,
            before: Vec::new(),
            after: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// What [`Sessions::handle`] returns.
#[derive(Debug)]
pub enum Step {
    Answer(Answer),
    /// A live PLAY: subscribe to `camera` and call [`Sessions::live_joined`] with the join
    /// point of each track.
    LiveJoin(PendingLive),
    /// A replay PLAY: open `recording` for `request` and call [`Sessions::replay_opened`].
    ReplayOpen(PendingReplay),
    /// A backchannel SETUP: take `camera`'s audio output for `session` and call
    /// [`Sessions::talk_acquired`].
    TalkAcquire(PendingTalk),
}

/// Where a new live reader starts on one track: its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveJoin {
    pub seq: u16,
    pub rtp_timestamp: u32,
    /// Capture time of the first packet's access unit.
    pub wallclock: UnixMicros,
    pub clock_rate: u32,
}

impl LiveJoin {
    /// The RTP timestamp of the instant `at` (at or before the first packet) on this track.
    pub fn rtptime_at(&self, at: UnixMicros) -> u32 {
        let back = (self.wallclock - at).max(0) as i128 * i128::from(self.clock_rate) / 1_000_000;
        self.rtp_timestamp.wrapping_sub(back as u32)
    }
}

#[derive(Debug)]
pub struct PendingLive {
    pub session: String,
    pub camera: String,
    cseq: u32,
}

#[derive(Debug)]
pub struct PendingReplay {
    pub session: String,
    pub recording: String,
    pub request: ReplayRequest,
    growing: bool,
    cseq: u32,
}

#[derive(Debug)]
pub struct PendingTalk {
    pub session: String,
    pub camera: String,
    created: bool,
    url: String,
    route: Route,
    answer: crate::rtsp::headers::Transport,
    cseq: u32,
}

/// Where an interleaved frame from a client goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Talk audio (RTP) of this session's backchannel.
    Talk(String),
    /// RTCP of this session (receiver reports, or the talker's sender reports).
    Rtcp(String),
    /// Our own RTP channel echoed back: ignore quietly.
    Echo,
    /// RTP of a publisher's stream `track` (an index into the tracks of
    /// [`Action::StartPublish`]).
    Record { session: String, track: usize },
    /// RTCP of a publisher's stream `track` (its sender reports time the stream).
    RecordRtcp { session: String, track: usize },
    /// A publisher's channel outside RECORD (before it, or paused): dropped quietly.
    NotRecording,
    /// No track uses that channel.
    Unrouted,
}

#[derive(Debug, Clone)]
struct SetupTrack {
    url: String,
    route: Route,
}

/// A session's set-up tracks by track number, in order: a sorted `Vec` (a session has one
/// to a few tracks; a `BTreeMap` would allocate a node of 11 entries, about 1 KiB, for
/// every session).
#[derive(Debug, Default)]
struct Tracks(Vec<(usize, SetupTrack)>);

impl Tracks {
    /// Sets `track` (replacing it if it was set up before).
    fn insert(&mut self, track: usize, t: SetupTrack) {
        match self.0.binary_search_by_key(&track, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = t,
            Err(i) => self.0.insert(i, (track, t)),
        }
    }

    fn get(&self, track: &usize) -> Option<&SetupTrack> {
        let i = self.0.binary_search_by_key(track, |(k, _)| *k).ok()?;
        Some(&self.0[i].1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&usize, &SetupTrack)> {
        self.0.iter().map(|(k, t)| (k, t))
    }

    fn keys(&self) -> impl Iterator<Item = &usize> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &SetupTrack> {
        self.0.iter().map(|(_, t)| t)
    }
}

#[derive(Debug, Default)]
struct ReplayState {
    ssrcs: Vec<u32>,
    /// A delivery runs (not finished).
    busy: bool,
    /// Number of the running (or last) delivery.
    delivery: u64,
    queue: VecDeque<ReplayRequest>,
    /// The last delivery's request and how far it got (PLAY without Range after PAUSE).
    resume: Option<PlayRequest>,
    last_sent: Option<UnixMicros>,
    /// The last `Blocksize` a SETUP or PLAY of the session gave.
    blocksize: Option<u32>,
}

#[derive(Debug)]
struct Session {
    path: PathKind,
    /// The authenticated user who created it (`None`: anonymous); only they may use it.
    owner: Option<String>,
    created_on: ConnId,
    state: State,
    tracks: Tracks,
    /// Boxed: few sessions talk, and the table stores sessions inline (88 -> 8 bytes).
    talk: Option<Box<SetupTrack>>,
    last_seen: Instant,
    /// Boxed (as `publish`): most sessions are live, and the map holds sessions inline.
    replay: Option<Box<ReplayState>>,
    /// A publisher's session: what it announced (its `tracks` are then the announced
    /// streams it set up, by SDP index).
    publish: Option<Box<publish::PublishState>>,
}

impl Session {
    fn routes(&self) -> impl Iterator<Item = &Route> {
        self.tracks
            .values()
            .map(|t| &t.route)
            .chain(self.talk.as_ref().map(|t| &t.route))
    }

    fn used_channels(&self) -> Vec<u8> {
        self.routes()
            .filter_map(Route::channels)
            .flatten()
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.talk.is_none()
    }

    /// The connections it is attached to: the one it was created on, and those carrying
    /// its interleaved data.
    fn conns(&self) -> Vec<ConnId> {
        let mut v = vec![self.created_on];
        for r in self.routes() {
            if let Route::Interleaved { conn, .. } = r {
                if !v.contains(conn) {
                    v.push(*conn);
                }
            }
        }
        v
    }
}

/// The table of RTSP sessions and the rules that act on it.
pub struct Sessions {
    config: Config,
    map: HashMap<String, Session>,
    /// Sessions attached to each connection (see `Session::conns`).
    attached: HashMap<ConnId, usize>,
    /// The last ANNOUNCE of each connection, for the SETUP that follows it.
    announced: HashMap<ConnId, publish::Announcement>,
    rng: rand::rngs::StdRng,
}

impl Sessions {
    /// `seed` makes session ids and SSRCs; give it 32 bytes of OS randomness (ids must
    /// not be guessable), or a fixed seed in tests.
    pub fn new(config: Config, seed: [u8; 32]) -> Sessions {
        Sessions {
            config,
            map: HashMap::new(),
            attached: HashMap::new(),
            announced: HashMap::new(),
            rng: rand::rngs::StdRng::from_seed(seed),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Open sessions counted by kind (`live`, `replay`, `publish`) and transport (`udp`;
    /// `tcp` for interleaved, in an RTSP connection or an HTTP tunnel; `none` before a
    /// track is set up), every combination that occurs.
    pub fn census(&self) -> Vec<((&'static str, &'static str), usize)> {
        let mut counts: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
        for s in self.map.values() {
            let kind = match (&s.publish, &s.path) {
                (Some(_), _) => "publish",
                (None, PathKind::Replay(_)) => "replay",
                (None, PathKind::Live(_)) => "live",
            };
            let mut routes = s.routes().peekable();
            let transport = if routes.peek().is_none() {
                "none"
            } else if routes.any(|r| matches!(r, Route::Interleaved { .. })) {
                "tcp"
            } else {
                "udp"
            };
            *counts.entry((kind, transport)).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    fn attach(&mut self, conns: &[ConnId], up: bool) {
        for c in conns {
            if up {
                *self.attached.entry(*c).or_insert(0) += 1;
            } else if let Some(n) = self.attached.get_mut(c) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.attached.remove(c);
                }
            }
        }
    }

    /// Re-counts the connections of session `id` after its routes changed from `before`.
    fn reattach(&mut self, id: &str, before: &[ConnId]) {
        let after = self.map.get(id).map(Session::conns).unwrap_or_default();
        let gone: Vec<ConnId> = before
            .iter()
            .copied()
            .filter(|c| !after.contains(c))
            .collect();
        let new: Vec<ConnId> = after
            .iter()
            .copied()
            .filter(|c| !before.contains(c))
            .collect();
        self.attach(&gone, false);
        self.attach(&new, true);
    }

    /// The role a request needs by its method and URL (`None`: none, for OPTIONS):
    /// operator for the SETUP of a backchannel track; the camera's publish role
    /// ([`PublishView::role`], `None` for anonymous publishing) for ANNOUNCE, RECORD and
    /// SETUP with `mode=record` on a publish camera; viewer for everything else (live and
    /// replay). A request naming a publisher's session needs the publish role whatever its
    /// method ([`Sessions::handle`] checks that).
    pub fn required_role(req: &Request, cat: &dyn Catalogue) -> Option<Role> {
        let publish = || {
            publish::camera_of(&req.uri)
                .and_then(|c| cat.camera(&c))
                .and_then(|c| c.publish)
        };
        match req.method {
            Method::Options => None,
            Method::Announce | Method::Record => match publish() {
                Some(p) => p.role,
                None => Some(Role::Viewer),
            },
            Method::Setup if publish::is_record_setup(req) => match publish() {
                Some(p) => p.role,
                None => Some(Role::Viewer),
            },
            Method::Setup => {
                let talk = Target::parse(&req.uri).ok().is_some_and(|t| match &t.kind {
                    PathKind::Live(c) => {
                        t.track.is_some()
                            && t.track == cat.camera(c).and_then(|c| c.backchannel_track())
                    }
                    PathKind::Replay(_) => false,
                });
                Some(if talk { Role::Operator } else { Role::Viewer })
            }
            _ => Some(Role::Viewer),
        }
    }

    /// The role `req` needs ([`Sessions::required_role`]), or for a request naming a
    /// publisher's session (other than OPTIONS), its camera's publish role.
    fn needed_role(&self, req: &Request, cat: &dyn Catalogue) -> Option<Role> {
        if req.method != Method::Options {
            if let Some(camera) = self.publisher_camera(req) {
                return cat
                    .camera(&camera)
                    .and_then(|c| c.publish)
                    .map_or(Some(Role::Viewer), |p| p.role);
            }
        }
        Self::required_role(req, cat)
    }

    /// The camera of the publisher's session `req` names, if it names one.
    fn publisher_camera(&self, req: &Request) -> Option<String> {
        let s = self.map.get(req.session_id()?)?;
        s.publish.as_ref()?;
        Some(s.path.name().to_owned())
    }

    /// The publish camera `req` publishes to, if it is part of publishing (ANNOUNCE,
    /// RECORD or SETUP with `mode=record` on a publish camera, or any request but OPTIONS
    /// naming a publisher's session): the server accepts an `exec` source's own
    /// credentials for such requests to that camera only.
    pub fn publishing_to(&self, req: &Request, cat: &dyn Catalogue) -> Option<String> {
        if req.method == Method::Options {
            return None;
        }
        if let Some(c) = self.publisher_camera(req) {
            return Some(c);
        }
        let publishing = match req.method {
            Method::Announce | Method::Record => true,
            Method::Setup => publish::is_record_setup(req),
            _ => false,
        };
        let camera = publish::camera_of(&req.uri).filter(|_| publishing)?;
        cat.camera(&camera)?.publish?;
        Some(camera)
    }

    /// Handles one request. `authorize` is given the role the request needs and returns
    /// the authenticated user (`None`: anonymous) or the 401/403 to answer.
    pub fn handle(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        authorize: impl FnOnce(Option<Role>) -> Result<Option<String>, Response>,
    ) -> Step {
        let Some(cseq) = req.cseq() else {
            return Step::Answer(Answer::new(Response::with_reason(
                400,
                "Bad Request (missing or malformed CSeq header)",
            )));
        };
        let step = self.dispatch(req, ctx, cat, authorize, cseq);
        match step {
            Step::Answer(a) => Step::Answer(with_cseq(a, cseq)),
            other => other,
        }
    }

    fn dispatch(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        authorize: impl FnOnce(Option<Role>) -> Result<Option<String>, Response>,
        cseq: u32,
    ) -> Step {
        let answer = |r: Response| Step::Answer(Answer::new(r));
        let user = match authorize(self.needed_role(req, cat)) {
            Ok(u) => u,
            Err(r) => return answer(r),
        };
        // Feature tags (RFC 2326 §12.32): the backchannel tag on a camera with an audio
        // output, the replay tag on replay URLs; nothing else.
        let unsupported: Vec<String> = req
            .require_tags()
            .into_iter()
            .filter(|tag| !supports_tag(tag, &req.uri, cat))
            .collect();
        if !unsupported.is_empty() {
            return answer(Response::new(551).header("Unsupported", unsupported.join(", ")));
        }
        // A request naming a session keeps it alive and must name a live one that belongs
        // to the requesting user (another user gets the same answer as for an unknown id).
        let session = match req.session_id() {
            Some(id) => match self.map.get_mut(id) {
                Some(s)
                    if req.method == Method::Options || s.owner.is_none() || s.owner == user =>
                {
                    s.last_seen = ctx.now;
                    Some(id.to_owned())
                }
                _ => {
                    return answer(Response::with_reason(
                        454,
                        "Session Not Found (unknown or expired session id)",
                    ))
                }
            },
            None => None,
        };
        match &req.method {
            Method::Options => {
                let public = if publish::is_publish_camera(&req.uri, cat) {
                    PUBLIC_PUBLISH
                } else {
                    PUBLIC
                };
                answer(Response::new(200).header("Public", public))
            }
            Method::Describe => answer(describe(req, ctx, cat)),
            Method::Announce => Step::Answer(self.announce(req, ctx, cat, session, user)),
            Method::Setup if publish::is_record_setup(req) => {
                Step::Answer(self.setup_record(req, ctx, cat, session, user))
            }
            Method::Setup => self.setup(req, ctx, cat, session, user, cseq),
            Method::Record if !publish::is_publish_camera(&req.uri, cat) => {
                answer(publish::not_allowed("only a publish camera takes RECORD"))
            }
            Method::Record => match session {
                Some(s) => Step::Answer(self.record(req, ctx, cat, &s)),
                None => answer(missing_session()),
            },
            Method::Play => match session {
                Some(s) if self.map.get(&s).is_some_and(|s| s.publish.is_some()) => {
                    answer(Response::with_reason(
                        455,
                        "Method Not Valid in This State (a publishing session cannot PLAY)",
                    ))
                }
                Some(s) => self.play(req, cat, s, cseq),
                None => answer(missing_session()),
            },
            Method::Pause => match session {
                Some(s) => Step::Answer(self.pause(&s)),
                None => answer(missing_session()),
            },
            Method::Teardown => match session {
                Some(s) => {
                    let mut a = Answer::new(Response::new(200));
                    a.before.extend(self.close(&s, CloseReason::Teardown));
                    Step::Answer(a)
                }
                None => answer(missing_session()),
            },
            Method::GetParameter => answer(self.with_session(Response::new(200), session)),
            Method::SetParameter if !req.body.is_empty() => answer(Response::new(451)),
            Method::SetParameter => answer(self.with_session(Response::new(200), session)),
            Method::Redirect => answer(Response::new(405).header("Allow", PUBLIC)),
            Method::Other(_) => answer(Response::new(501).header("Public", PUBLIC)),
        }
    }

    fn with_session(&self, r: Response, id: Option<String>) -> Response {
        match id {
            Some(id) => r.header(
                "Session",
                SessionHeader {
                    id,
                    timeout: Some(self.config.session_timeout.as_secs() as u32),
                }
                .to_string(),
            ),
            None => r,
        }
    }

    fn new_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            // 16 characters of [A-Za-z0-9] (RFC 2326 §3.4 allows these; ~95 bits).
            let id: String = (0..16)
                .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            if !self.map.contains_key(&id) {
                return id;
            }
        }
    }

    fn setup(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        session: Option<String>,
        user: Option<String>,
        cseq: u32,
    ) -> Step {
        self.try_setup(req, ctx, cat, session, user, cseq)
            .unwrap_or_else(Step::Answer)
    }

    // The error is the answer to send (built once, moved out): not worth boxing.
    #[allow(clippy::result_large_err)]
    fn try_setup(
        &mut self,
        req: &Request,
        ctx: &Context,
        cat: &dyn Catalogue,
        session: Option<String>,
        user: Option<String>,
        cseq: u32,
    ) -> Result<Step, Answer> {
        let t = setup_target(req, cat).map_err(Answer::new)?;
        let offers = transport_offers(req).map_err(Answer::new)?;
        // Only replay packets are cut per session; a live stream's are shared by its
        // readers, so a live SETUP's Blocksize is not looked at (RFC 2326 §12.7 lets the
        // server send smaller packets than asked).
        let blocksize = match t.recording {
            Some(_) => replay::blocksize(req).map_err(Answer::new)?,
            None => None,
        };
        let used = self
            .channels_in_use(session.as_deref(), &t)
            .map_err(Answer::new)?;
        let (route, mut answer_t) =
            transport::negotiate(&offers, &used, ctx.conn, ctx.peer, self.config.udp_ports)
                .ok_or_else(|| Answer::new(Response::with_reason(461, transport::NO_ACCEPTABLE)))?;
        let (id, created) = match session {
            Some(id) => (id, false),
            None => (self.create_session(&t, ctx, user)?, true),
        };
        if t.is_talk {
            answer_t.ssrc = None;
            return Ok(Step::TalkAcquire(PendingTalk {
                session: id,
                camera: t.target.kind.name().to_owned(),
                created,
                url: req.uri.clone(),
                route,
                answer: answer_t,
                cseq,
            }));
        }
        let s = self
            .map
            .get_mut(&id)
            .ok_or_else(|| Answer::new(missing_session()))?;
        let before = s.conns();
        s.tracks.insert(
            t.track,
            SetupTrack {
                url: req.uri.clone(),
                route,
            },
        );
        if let (Some(b), Some(r)) = (blocksize, s.replay.as_mut()) {
            r.blocksize = Some(b);
        }
        answer_t.ssrc = match (&t.camera, &s.replay) {
            (Some(c), _) => c.ssrcs.get(t.track).copied(),
            (None, Some(r)) => r.ssrcs.get(t.track).copied(),
            _ => None,
        };
        Ok(Step::Answer(
            self.setup_answer(id, &before, &answer_t, created),
        ))
    }

    /// The 200 of a SETUP of session `id` (attached to `before` until now), answering
    /// `transport`; a session the SETUP created is announced as an event.
    fn setup_answer(
        &mut self,
        id: String,
        before: &[ConnId],
        transport: &crate::rtsp::headers::Transport,
        created: bool,
    ) -> Answer {
        self.reattach(&id, before);
        let resp = self
            .with_session(Response::new(200), Some(id.clone()))
            .header("Transport", transport.to_string());
        let mut a = Answer::new(resp);
        if created {
            a.events.push(Event::SessionCreated { session: id });
        }
        a
    }

    /// The interleaved channels a SETUP of `t` in `session` may not take: those of the
    /// session's other tracks (a repeated SETUP of a track may keep its own). Also the
    /// 459/455 of a SETUP that does not fit the session.
    fn channels_in_use(&self, session: Option<&str>, t: &SetupTarget) -> Result<Vec<u8>, Response> {
        let Some(s) = session.and_then(|id| self.map.get(id)) else {
            return Ok(Vec::new());
        };
        if s.path != t.target.kind {
            return Err(Response::with_reason(
                459,
                "Aggregate Operation Not Allowed (session belongs to another camera)",
            ));
        }
        if s.publish.is_some() {
            return Err(Response::with_reason(
                455,
                "Method Not Valid in This State (a publishing session sets up streams with mode=record)",
            ));
        }
        if s.state == State::Playing {
            return Err(Response::with_reason(
                455,
                "Method Not Valid in This State (stop playing before SETUP)",
            ));
        }
        let previous = if t.is_talk {
            s.talk.as_deref()
        } else {
            s.tracks.get(&t.track)
        };
        let mine = previous
            .and_then(|p| p.route.channels())
            .unwrap_or_default();
        let mut used = s.used_channels();
        used.retain(|c| !mine.contains(c));
        Ok(used)
    }

    /// A new session for a SETUP of `t` on `ctx.conn`, within
    /// `max_sessions_per_connection`.
    #[allow(clippy::result_large_err)]
    fn create_session(
        &mut self,
        t: &SetupTarget,
        ctx: &Context,
        user: Option<String>,
    ) -> Result<String, Answer> {
        let replay = t.recording.as_ref().map(|r| ReplayState {
            ssrcs: (0..r.tracks.len()).map(|_| self.rng.random()).collect(),
            ..Default::default()
        });
        self.new_session(t.target.kind.clone(), replay, None, ctx, user)
    }

    /// A new session of `path` on `ctx.conn` (503 beyond `max_sessions_per_connection`).
    #[allow(clippy::result_large_err)]
    fn new_session(
        &mut self,
        path: PathKind,
        replay: Option<ReplayState>,
        publish: Option<publish::PublishState>,
        ctx: &Context,
        user: Option<String>,
    ) -> Result<String, Answer> {
        let max = self.config.max_sessions_per_connection;
        let on_conn = self
            .map
            .values()
            .filter(|s| s.created_on == ctx.conn)
            .count();
        if on_conn >= max {
            let mut a = Answer::new(Response::with_reason(
                503,
                format!(
                    "Service Unavailable (at most {max} sessions per connection; TEARDOWN one first)"
                ),
            ));
            a.events.push(Event::SessionLimit { max });
            return Err(a);
        }
        let id = self.new_id();
        self.map.insert(
            id.clone(),
            Session {
                path,
                owner: user,
                created_on: ctx.conn,
                state: State::Ready,
                tracks: Tracks::default(),
                talk: None,
                last_seen: ctx.now,
                replay: replay.map(Box::new),
                publish: publish.map(Box::new),
            },
        );
        self.attach(&[ctx.conn], true);
        Ok(id)
    }

    /// Continues a backchannel SETUP: `acquired` is `Err(owner)` when another session
    /// holds the camera's audio output.
    pub fn talk_acquired(&mut self, p: PendingTalk, acquired: Result<(), TalkRefusal>) -> Answer {
        let mut a = match acquired {
            Err(refusal) => {
                let response = match &refusal {
                    TalkRefusal::Busy { .. } => Response::with_reason(
                        453,
                        format!(
                            "Not Enough Bandwidth (the audio output of {} is in use by another talk session)",
                            p.camera
                        ),
                    ),
                    TalkRefusal::Unavailable { reason } => {
                        Response::with_reason(503, printable(reason))
                    }
                };
                let mut a = Answer::new(response);
                a.events.push(Event::TalkRefused {
                    camera: p.camera.clone(),
                    refusal,
                });
                // A session made only for this refused track goes away again.
                if self.map.get(&p.session).is_some_and(Session::is_empty) {
                    a.before
                        .extend(self.close(&p.session, CloseReason::Refused));
                }
                a
            }
            Ok(()) => match self.map.get_mut(&p.session) {
                None => Answer::new(missing_session()),
                Some(s) => {
                    let before = s.conns();
                    let mut a = Answer::new(Response::new(200));
                    // A repeated SETUP keeps the running talker (idempotent).
                    if s.talk.is_none() {
                        a.before.push(Action::StartTalk {
                            session: p.session.clone(),
                            camera: p.camera.clone(),
                            route: p.route,
                        });
                    }
                    s.talk = Some(Box::new(SetupTrack {
                        url: p.url.clone(),
                        route: p.route,
                    }));
                    self.reattach(&p.session, &before);
                    a.response = self
                        .with_session(Response::new(200), Some(p.session.clone()))
                        .header("Transport", p.answer.to_string());
                    if p.created {
                        a.events.push(Event::SessionCreated {
                            session: p.session.clone(),
                        });
                    }
                    a
                }
            },
        };
        a = with_cseq(a, p.cseq);
        a
    }

    fn play(&mut self, req: &Request, cat: &dyn Catalogue, id: String, cseq: u32) -> Step {
        let answer = |r: Response| Step::Answer(Answer::new(r));
        let configured_blocksize = self.config.replay_blocksize;
        let Some(s) = self.map.get_mut(&id) else {
            return answer(missing_session());
        };
        match s.path.clone() {
            PathKind::Live(camera) => {
                if let Some(r) = cat.camera(&camera).and_then(|c| offline(&camera, &c)) {
                    return answer(r);
                }
                if s.is_empty() {
                    return answer(Response::with_reason(
                        455,
                        "Method Not Valid in This State (no track set up)",
                    ));
                }
                Step::LiveJoin(PendingLive {
                    session: id,
                    camera,
                    cseq,
                })
            }
            PathKind::Replay(recording) => {
                let rec = match lookup_recording(cat, &recording) {
                    Ok(r) => r,
                    Err(r) => return answer(r),
                };
                let mut play = match replay::parse_play(req, &rec.spans) {
                    Ok(p) => p,
                    Err(r) => return answer(r),
                };
                let blocksize = match replay::blocksize(req) {
                    Ok(b) => b,
                    Err(r) => return answer(r),
                };
                if s.tracks.is_empty() {
                    return answer(Response::with_reason(
                        455,
                        "Method Not Valid in This State (no track set up)",
                    ));
                }
                let Some(r) = s.replay.as_mut() else {
                    return answer(Response::with_reason(
                        455,
                        "Method Not Valid in This State (not a replay session)",
                    ));
                };
                if blocksize.is_some() {
                    r.blocksize = blocksize;
                }
                let mut resume_after = None;
                if !play.has_range && !r.busy {
                    if let (Some(prev), Some(last)) = (&r.resume, r.last_sent) {
                        play = replay::resume(req, play, prev);
                        resume_after = Some(last);
                    }
                }
                let request = ReplayRequest {
                    discontinuity: play.immediate && resume_after.is_none(),
                    play,
                    tracks: s.tracks.keys().copied().collect(),
                    resume_after,
                    cseq: (cseq & 0xff) as u8,
                    packets: replay::PacketSize::new(r.blocksize, configured_blocksize),
                };
                Step::ReplayOpen(PendingReplay {
                    session: id,
                    recording,
                    request,
                    growing: rec.spans.last().is_some_and(|s| s.growing),
                    cseq,
                })
            }
        }
    }

    /// Continues a live PLAY: `joins[track]` is where the new reader starts on each track
    /// (its first packet). The `Range: clock=` start is the earliest capture time of those
    /// first packets (the current GOP's keyframe), and each RTP-Info `rtptime` the RTP time
    /// of that instant on its track, as RFC 2326 §12.33 has it: a client (or a proxy) can
    /// put the stream on the camera's clock from the PLAY response alone.
    pub fn live_joined(
        &mut self,
        p: PendingLive,
        joins: &[Option<LiveJoin>],
        ctx: &Context,
    ) -> Answer {
        let timeout = self.config.session_timeout;
        let Some(s) = self.map.get_mut(&p.session) else {
            return with_cseq(Answer::new(missing_session()), p.cseq);
        };
        let mut a = Answer::new(Response::new(200));
        let joined = |i: &usize| joins.get(*i).copied().flatten();
        let start = s
            .tracks
            .keys()
            .filter_map(|i| joined(i).map(|j| j.wallclock))
            .min()
            .unwrap_or(ctx.now_utc);
        let infos: Vec<RtpInfo> = s
            .tracks
            .iter()
            .map(|(i, t)| {
                let join = joined(i);
                RtpInfo {
                    url: t.url.clone(),
                    seq: join.map(|j| j.seq),
                    rtptime: join.map(|j| j.rtptime_at(start)),
                }
            })
            .collect();
        // A PLAY while playing only answers again (the delivery in progress goes on).
        if s.state != State::Playing && !s.tracks.is_empty() {
            a.after.push(Action::StartLive {
                session: p.session.clone(),
                camera: p.camera.clone(),
                tracks: s
                    .tracks
                    .iter()
                    .map(|(&track, t)| TrackOut {
                        track,
                        ssrc: 0, // filled by the caller from the camera's stream
                        route: t.route,
                    })
                    .collect(),
            });
        }
        if s.talk.is_some() {
            a.after.push(Action::TalkPlaying {
                session: p.session.clone(),
                on: true,
            });
        }
        s.state = State::Playing;
        let range = Range::Clock {
            start: Some(start),
            end: None,
        };
        a.response = Response::new(200)
            .header(
                "Session",
                SessionHeader {
                    id: p.session.clone(),
                    timeout: Some(timeout.as_secs() as u32),
                }
                .to_string(),
            )
            .header("Range", range.to_string())
            .header("RTP-Info", format_rtp_info(&infos));
        with_cseq(a, p.cseq)
    }

    /// Continues a replay PLAY with what the store gave (or the error response to send).
    pub fn replay_opened(
        &mut self,
        p: PendingReplay,
        opened: Result<ReplayStart, Response>,
    ) -> Answer {
        let cseq = p.cseq;
        let a = self.replay_opened_inner(p, opened);
        with_cseq(a, cseq)
    }

    fn replay_opened_inner(
        &mut self,
        p: PendingReplay,
        opened: Result<ReplayStart, Response>,
    ) -> Answer {
        let start = match opened {
            Ok(s) => s,
            Err(r) => return Answer::new(r),
        };
        if let Err(r) = replay::check_start(&p.request.play, &start, p.growing) {
            return Answer::new(r);
        }
        let timeout = self.config.session_timeout;
        let Some(s) = self.map.get_mut(&p.session) else {
            return Answer::new(missing_session());
        };
        let tracks: Vec<TrackOut> = s
            .tracks
            .iter()
            .map(|(&track, t)| TrackOut {
                track,
                ssrc: s
                    .replay
                    .as_ref()
                    .and_then(|r| r.ssrcs.get(track).copied())
                    .unwrap_or(0),
                route: t.route,
            })
            .collect();
        let urls: Vec<(usize, String)> =
            s.tracks.iter().map(|(&i, t)| (i, t.url.clone())).collect();
        let Some(r) = s.replay.as_mut() else {
            return Answer::new(Response::with_reason(
                455,
                "Method Not Valid in This State (not a replay session)",
            ));
        };
        let play = p.request.play.clone();
        let queued = r.busy && !play.immediate;
        let mut a = Answer::new(Response::new(200));
        let infos: Vec<RtpInfo> = if queued {
            // Not known yet: the CSeq byte marks where this PLAY's data begins.
            r.queue.push_back(p.request.clone());
            a.after.push(Action::QueueReplay {
                session: p.session.clone(),
            });
            urls.into_iter()
                .map(|(_, url)| RtpInfo {
                    url,
                    seq: None,
                    rtptime: None,
                })
                .collect()
        } else {
            if r.busy || s.state == State::Playing {
                a.before.push(Action::StopDelivery {
                    session: p.session.clone(),
                });
            }
            r.busy = true;
            r.delivery += 1;
            r.queue.clear();
            r.resume = Some(play.clone());
            r.last_sent = None;
            a.after.push(Action::StartReplay {
                session: p.session.clone(),
                recording: p.recording.clone(),
                tracks,
                request: p.request.clone(),
                delivery: r.delivery,
            });
            let find = |v: &[(usize, u32)], i: usize| v.iter().find(|x| x.0 == i).map(|x| x.1);
            urls.into_iter()
                .map(|(i, url)| RtpInfo {
                    url,
                    seq: start.seqs.iter().find(|x| x.0 == i).map(|x| x.1),
                    rtptime: find(&start.rtptimes, i),
                })
                .collect()
        };
        s.state = State::Playing;
        let mut resp = Response::new(200).header(
            "Session",
            SessionHeader {
                id: p.session.clone(),
                timeout: Some(timeout.as_secs() as u32),
            }
            .to_string(),
        );
        if let Some(st) = start.start_point.or(play.start) {
            resp = resp.header(
                "Range",
                Range::Clock {
                    start: Some(st),
                    end: play.end,
                }
                .to_string(),
            );
        }
        a.response = resp
            .header("Scale", format_scale(play.scale))
            .header("Rate-Control", play.rate_control.as_str())
            .header("RTP-Info", format_rtp_info(&infos));
        a
    }

    fn pause(&mut self, id: &str) -> Answer {
        let mut a = Answer::new(Response::new(200));
        if let Some(s) = self.map.get_mut(id) {
            if s.state == State::Playing {
                a.before.push(Action::StopDelivery {
                    session: id.to_owned(),
                });
            }
            if s.state == State::Recording {
                a.before.push(Action::StopPublish {
                    session: id.to_owned(),
                    camera: s.path.name().to_owned(),
                });
            }
            if s.talk.is_some() {
                a.before.push(Action::TalkPlaying {
                    session: id.to_owned(),
                    on: false,
                });
            }
            s.state = State::Ready;
        }
        a.response = self.with_session(Response::new(200), Some(id.to_owned()));
        a
    }

    /// Replay delivery number `delivery` was stopped ([`Action::StopDelivery`]) after
    /// sending the unit at `last_sent`: queued PLAYs are dropped, a later PLAY without
    /// Range resumes after it. The report of a delivery already replaced is ignored.
    pub fn delivery_stopped(&mut self, id: &str, delivery: u64, last_sent: Option<UnixMicros>) {
        if let Some(r) = self
            .map
            .get_mut(id)
            .and_then(|s| s.replay.as_mut())
            .filter(|r| r.delivery == delivery)
        {
            r.busy = false;
            r.queue.clear();
            if last_sent.is_some() {
                r.last_sent = last_sent;
            }
        }
    }

    /// Replay delivery number `delivery` reached its end after the unit at `last_sent`.
    /// Returns whether a queued delivery follows (the caller runs its next queued job,
    /// under the same number).
    pub fn delivery_finished(
        &mut self,
        id: &str,
        delivery: u64,
        last_sent: Option<UnixMicros>,
    ) -> bool {
        let Some(r) = self
            .map
            .get_mut(id)
            .and_then(|s| s.replay.as_mut())
            .filter(|r| r.delivery == delivery)
        else {
            return false;
        };
        if last_sent.is_some() {
            r.last_sent = last_sent;
        }
        match r.queue.pop_front() {
            Some(next) => {
                r.resume = Some(next.play);
                r.last_sent = None;
                true
            }
            None => {
                r.busy = false;
                false
            }
        }
    }

    /// Removes a session; the actions free what it holds.
    fn close(&mut self, id: &str, reason: CloseReason) -> Option<Action> {
        let s = self.map.remove(id)?;
        self.attach(&s.conns(), false);
        Some(Action::Close {
            session: id.to_owned(),
            path: s.path,
            reason,
        })
    }

    /// The connection `conn` closed: every session whose interleaved data it carried ends,
    /// and every publisher's session made on it (a publisher's RTSP connection is its
    /// liveness: ffmpeg and GStreamer keep it open while they publish, over UDP too).
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<Action> {
        self.announced.remove(&conn);
        let ids: Vec<String> = self
            .map
            .iter()
            .filter(|(_, s)| {
                s.routes()
                    .any(|r| matches!(r, Route::Interleaved { conn: c, .. } if *c == conn))
                    || (s.publish.is_some() && s.created_on == conn)
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.close(id, CloseReason::ConnectionClosed))
            .collect()
    }

    /// Closes every session idle for longer than the timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<Action> {
        let timeout = self.config.session_timeout;
        let ids: Vec<String> = self
            .map
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_seen) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.close(id, CloseReason::Timeout))
            .collect()
    }

    /// When the next session would time out, if nothing keeps it alive.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.map
            .values()
            .map(|s| s.last_seen + self.config.session_timeout)
            .min()
    }

    /// Closes every session (shutdown).
    pub fn close_all(&mut self) -> Vec<Action> {
        let ids: Vec<String> = self.map.keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.close(id, CloseReason::Shutdown))
            .collect()
    }

    /// Keeps a session alive (RTCP receiver reports, talk audio, a client that keeps
    /// taking its TCP data).
    pub fn touch(&mut self, id: &str, now: Instant) {
        if let Some(s) = self.map.get_mut(id) {
            s.last_seen = now;
        }
    }

    /// Where an interleaved frame on `channel` of connection `conn` goes. Talk and RTCP
    /// keep their session alive.
    pub fn inbound(&mut self, conn: ConnId, channel: u8, now: Instant) -> Inbound {
        for (id, s) in self.map.iter_mut() {
            let on = |r: &Route, rtp: bool| match *r {
                Route::Interleaved {
                    conn: c,
                    rtp_channel,
                    rtcp_channel,
                } if c == conn => channel == if rtp { rtp_channel } else { rtcp_channel },
                _ => false,
            };
            if s.publish.is_some() {
                let found = s.tracks.iter().find_map(|(&i, t)| {
                    if on(&t.route, true) {
                        Some((i, false))
                    } else if on(&t.route, false) {
                        Some((i, true))
                    } else {
                        None
                    }
                });
                if let Some((announced, rtcp)) = found {
                    s.last_seen = now;
                    return publish::route(id, s, announced, rtcp);
                }
                continue;
            }
            let talk = s.talk.as_ref().map(|t| t.route);
            if talk.is_some_and(|r| on(&r, true)) {
                s.last_seen = now;
                return Inbound::Talk(id.clone());
            }
            if talk.is_some_and(|r| on(&r, false)) || s.tracks.values().any(|t| on(&t.route, false))
            {
                s.last_seen = now;
                return Inbound::Rtcp(id.clone());
            }
            if s.tracks.values().any(|t| on(&t.route, true)) {
                return Inbound::Echo;
            }
        }
        Inbound::Unrouted
    }

    /// The publisher's session and stream a UDP datagram from `from` belongs to (to our
    /// RTP port, or with `rtcp` to our RTCP port), matched by the exact source address
    /// its SETUP announced (`client_port`); touched. `None` also while the session is not
    /// recording (the datagram is then dropped).
    pub fn udp_record(
        &mut self,
        from: SocketAddr,
        rtcp: bool,
        now: Instant,
    ) -> Option<(String, usize)> {
        let (id, s, announced) = self.map.iter_mut().find_map(|(id, s)| {
            s.publish.as_ref()?;
            let (&i, _) = s.tracks.iter().find(|(_, t)| match t.route {
                Route::Udp { rtp, rtcp: r } => from == if rtcp { r } else { rtp },
                Route::Interleaved { .. } => false,
            })?;
            Some((id, s, i))
        })?;
        s.last_seen = now;
        match publish::route(id, s, announced, rtcp) {
            Inbound::Record { session, track } | Inbound::RecordRtcp { session, track } => {
                Some((session, track))
            }
            _ => None,
        }
    }

    /// The session a UDP datagram from `from` to our RTCP port belongs to (touched).
    pub fn udp_rtcp(&mut self, from: SocketAddr, now: Instant) -> Option<String> {
        let (id, s) = self.map.iter_mut().find(|(_, s)| {
            s.routes()
                .any(|r| matches!(r, Route::Udp { rtcp, .. } if *rtcp == from))
        })?;
        s.last_seen = now;
        Some(id.clone())
    }

    /// The session whose UDP backchannel a datagram from `from` to our RTP port feeds
    /// (touched): the session that announced that `client_port`, else the one session
    /// talking from that IP address (clients that send from another port than the one
    /// they announced). Datagrams from a receive track's client port (NAT "dummy"
    /// packets) are not talk audio.
    pub fn udp_talk(&mut self, from: SocketAddr, now: Instant) -> Option<String> {
        let talks = |s: &Session, exact: bool| {
            matches!(s.talk.as_ref().map(|t| t.route), Some(Route::Udp { rtp, .. })
                if if exact { rtp == from } else { rtp.ip() == from.ip() })
        };
        let owner = self
            .map
            .iter()
            .find(|(_, s)| {
                s.routes()
                    .any(|r| matches!(r, Route::Udp { rtp, .. } if *rtp == from))
            })
            .map(|(id, s)| (id.clone(), talks(s, true)));
        let id = match owner {
            Some((id, true)) => id,
            Some((_, false)) => return None,
            None => {
                let mut found = self.map.iter().filter(|(_, s)| talks(s, false));
                let first = found.next().map(|(id, _)| id.clone());
                // Ambiguous when several sessions from that address talk: accept none.
                if found.next().is_some() {
                    return None;
                }
                first?
            }
        };
        if let Some(s) = self.map.get_mut(&id) {
            s.last_seen = now;
        }
        Some(id)
    }

    /// Whether a session was created on `conn` or carries its data over it (such a
    /// connection is not idle).
    pub fn has_sessions_on(&self, conn: ConnId) -> bool {
        self.attached.contains_key(&conn)
    }

    /// The state of a session (tests, stats).
    pub fn state(&self, id: &str) -> Option<State> {
        self.map.get(id).map(|s| s.state)
    }
}

/// What a SETUP URL names: the camera or recording, and the track.
struct SetupTarget {
    target: Target,
    camera: Option<CameraView>,
    recording: Option<RecordingView>,
    track: usize,
    /// The track is the camera's backchannel.
    is_talk: bool,
}

/// Resolves a SETUP URL: 400/404 for what does not exist, 459 for an aggregate URL of a
/// camera with several tracks.
fn setup_target(req: &Request, cat: &dyn Catalogue) -> Result<SetupTarget, Response> {
    let target = Target::parse(&req.uri)?;
    let (camera, recording) = match &target.kind {
        PathKind::Live(name) => (Some(cat.camera(name).ok_or_else(not_found)?), None),
        PathKind::Replay(name) => (None, Some(lookup_recording(cat, name)?)),
    };
    let count = camera
        .as_ref()
        .map(|c| c.tracks.len())
        .or(recording.as_ref().map(|r| r.tracks.len()))
        .unwrap_or(0);
    let talk_track = camera.as_ref().and_then(CameraView::backchannel_track);
    let track = match target.track {
        Some(t) if t < count || Some(t) == talk_track => t,
        Some(_) => return Err(not_found()),
        None if count == 1 => 0,
        None => {
            return Err(Response::with_reason(
                459,
                "Aggregate Operation Not Allowed (SETUP needs a track URL, e.g. .../trackID=0)",
            ))
        }
    };
    Ok(SetupTarget {
        target,
        camera,
        recording,
        track,
        is_talk: Some(track) == talk_track,
    })
}

/// The client's `Transport` offers, or the 461.
fn transport_offers(req: &Request) -> Result<Vec<crate::rtsp::headers::Transport>, Response> {
    let value = req.headers.get("Transport").ok_or_else(|| {
        Response::with_reason(461, "Unsupported Transport (missing Transport header)")
    })?;
    parse_transports(value)
        .map_err(|e| Response::with_reason(461, format!("Unsupported Transport ({e})")))
}

fn with_cseq(mut a: Answer, cseq: u32) -> Answer {
    a.response = a.response.header("CSeq", cseq.to_string());
    a
}

fn not_found() -> Response {
    Response::with_reason(404, "Not Found (no such camera or track)")
}

fn missing_session() -> Response {
    Response::with_reason(
        454,
        "Session Not Found (this method needs a Session header)",
    )
}

/// `why` as one line of printable ASCII (at most 200 characters) for a reason phrase.
pub fn printable(why: &str) -> String {
    why.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// `503 Service Unavailable (camera X is offline: why)` while its source is retried.
fn offline(name: &str, cam: &CameraView) -> Option<Response> {
    let why = cam.offline.as_deref()?;
    Some(Response::with_reason(
        503,
        format!(
            "Service Unavailable (camera {name} is offline: {})",
            printable(why)
        ),
    ))
}

fn supports_tag(tag: &str, uri: &str, cat: &dyn Catalogue) -> bool {
    match Target::parse(uri).map(|t| t.kind) {
        Ok(PathKind::Live(c)) => {
            tag == tags::BACKCHANNEL && cat.camera(&c).is_some_and(|c| c.backchannel.is_some())
        }
        Ok(PathKind::Replay(_)) => tag == tags::REPLAY,
        Err(_) => false,
    }
}

fn lookup_recording(cat: &dyn Catalogue, name: &str) -> Result<RecordingView, Response> {
    match cat.recording(name) {
        RecordingLookup::Found(r) if !r.spans.is_empty() => Ok(r),
        RecordingLookup::NoStore => Err(Response::with_reason(
            404,
            "Not Found (replay needs recording: this server has no store)",
        )),
        RecordingLookup::Found(_) | RecordingLookup::Missing => Err(Response::with_reason(
            404,
            format!("Not Found (no recording named {})", printable(name)),
        )),
        RecordingLookup::Failed => Err(Response::with_reason(
            500,
            "Internal Server Error (the recording index could not be read)",
        )),
    }
}

/// DESCRIBE: the live camera's SDP (with the backchannel section when asked for by the
/// `Require` tag, already checked as supported), or the recording's.
fn describe(req: &Request, ctx: &Context, cat: &dyn Catalogue) -> Response {
    let target = match Target::parse(&req.uri) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let origin_id = (ctx.now_utc / 1_000_000).max(0) as u64;
    let sdp = match &target.kind {
        PathKind::Replay(name) => match lookup_recording(cat, name) {
            Ok(rec) => replay::describe_sdp(name, &rec, origin_id, ctx.local_ip.to_string()),
            Err(r) => return r,
        },
        PathKind::Live(name) => {
            let Some(cam) = cat.camera(name) else {
                return not_found();
            };
            if target.track.is_some_and(|t| t >= cam.tracks.len()) {
                return not_found();
            }
            if let Some(r) = offline(name, &cam) {
                return r;
            }
            let talk = req.require_tags().iter().any(|t| t == tags::BACKCHANNEL);
            let mut media: Vec<SdpMedia> = cam
                .tracks
                .iter()
                .enumerate()
                .map(|(i, t)| SdpMedia {
                    kind: t.kind(),
                    formats: vec![SdpFormat::for_track(t)],
                    control: format!("trackID={i}"),
                    direction: talk.then_some(Direction::RecvOnly),
                    attributes: cam.sdp_attributes.get(i).cloned().unwrap_or_default(),
                })
                .collect();
            if let (true, Some(b), Some(i)) = (talk, &cam.backchannel, cam.backchannel_track()) {
                let mut section = b.section.clone();
                section.control = format!("trackID={i}");
                section.direction = Some(Direction::SendOnly);
                media.push(section);
            }
            SdpSession {
                origin_id,
                origin_address: ctx.local_ip.to_string(),
                name: format!("ipcamd {name}"),
                range: Some("npt=now-".to_owned()),
                attributes: Vec::new(),
                media,
            }
        }
    };
    Response::new(200)
        .header("Content-Base", target.base_url)
        .with_body("application/sdp", sdp.to_sdp_string())
}
