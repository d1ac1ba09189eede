//! The session hub: the session core's table behind one mutex, and everything that runs
//! for a session (its delivery, its talker, its replay numbering, the camera a publisher
//! feeds), started and stopped as the core's [`Action`]s say. Connections, the UDP receive loops and the deliveries all
//! reach sessions through it.
//!
//! Locks: `core` is taken only for the synchronous core calls (never across `.await`),
//! `running` and `writers` likewise; when two are needed they are taken in the order
//! core -> running -> writers, and never while a talker or delivery lock is held.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipcamd_media::fanout::Reader;
use ipcamd_proto::rtcp::{parse_compound, RtcpPacket};
use ipcamd_proto::rtsp::server::{
    Action, CloseReason, Config, ConnId, Inbound, PathKind, Route, Sessions, TrackOut,
};
use ipcamd_proto::time::UnixMicros;
use ipcamd_store::Store;

use crate::cameras::{Camera, Cameras};
use crate::deliver::direct::DirectFanout;
use crate::deliver::live::{self, LiveDelivery};
use crate::deliver::replay::{self, Job, ReplayDelivery, ReplayState};
use crate::deliver::udp::UdpPair;
use crate::deliver::wire::{Sink, TrackSink, Writer};
use crate::deliver::{Delivery, SessionHooks};
use crate::net::limits::{LimitCounters, Limits};
use crate::publish::PublishPoint;
use crate::stats::Counters;
use crate::sync::lock;
use crate::talk::{AudioOut, Talker};

/// What runs for one session.
#[derive(Default)]
struct Running {
    delivery: Option<Delivery>,
    /// Boxed: rare, and inline it would make every session's entry 64 bytes larger.
    talker: Option<Box<(Talker, Arc<AudioOut>)>>,
    replay: Option<Arc<ReplayState>>,
    /// A publisher's session: the camera it feeds (after RECORD).
    publish: Option<Arc<PublishPoint>>,
}

/// What a request prepared for the actions of its answer: the live subscription made
/// for a PLAY, the replay delivery opened for one.
#[derive(Default)]
pub struct Prepared {
    pub live: Option<Reader>,
    pub replay: Option<Job>,
}

/// Everything the hub is built from.
pub struct HubParts {
    pub config: Config,
    pub cameras: Cameras,
    pub store: Option<Store>,
    pub udp: Arc<UdpPair>,
    pub counters: Arc<Counters>,
    pub limits: Limits,
    pub limit_counters: Arc<LimitCounters>,
}

pub struct Hub {
    core: Mutex<Sessions>,
    pub cameras: Cameras,
    pub store: Option<Store>,
    pub udp: Arc<UdpPair>,
    pub counters: Arc<Counters>,
    pub limits: Limits,
    pub limit_counters: Arc<LimitCounters>,
    running: Mutex<HashMap<String, Running>>,
    writers: Mutex<HashMap<ConnId, Writer>>,
    /// Each camera's direct fan-out, made on its first live delivery.
    direct: Mutex<HashMap<String, Arc<DirectFanout>>>,
    next_conn: AtomicU64,
    me: Weak<Hub>,
}

impl Hub {
    pub fn new(p: HubParts) -> Arc<Hub> {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        Arc::new_cyclic(|me| Hub {
            core: Mutex::new(Sessions::new(p.config, seed)),
            cameras: p.cameras,
            store: p.store,
            udp: p.udp,
            counters: p.counters,
            limits: p.limits,
            limit_counters: p.limit_counters,
            running: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            direct: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            me: me.clone(),
        })
    }

    /// The session table, for one synchronous core call.
    pub fn core(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.core)
    }

    pub fn sessions_open(&self) -> usize {
        self.core().len()
    }

    /// Open sessions by kind and transport ([`Sessions::census`]).
    pub fn sessions_census(&self) -> Vec<((&'static str, &'static str), usize)> {
        self.core().census()
    }

    /// A new connection id, with the writer that carries its interleaved data.
    pub fn register(&self, writer: Writer) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        lock(&self.writers).insert(id, writer);
        id
    }

    /// Connection `conn` closed: its interleaved sessions end.
    pub async fn connection_closed(&self, conn: ConnId) {
        let actions = self.core().connection_closed(conn);
        lock(&self.writers).remove(&conn);
        // Boxed, with its `Prepared`: carrying out actions is a large state, and this
        // future is part of every open connection's task (its memory) until the
        // connection ends.
        Box::pin(async move { self.carry_out(actions, &mut Prepared::default()).await }).await;
    }

    /// Closes every session (shutdown).
    pub async fn close_all(&self) {
        let actions = self.core().close_all();
        self.carry_out(actions, &mut Prepared::default()).await;
    }

    /// Drops what runs for `session` if the core no longer knows it (a session closed
    /// while one of its requests waited for the store).
    pub fn forget_if_gone(&self, session: &str) {
        if self.core().state(session).is_none() {
            lock(&self.running).remove(session);
        }
    }

    fn hooks(&self) -> Arc<dyn SessionHooks> {
        match self.me.upgrade() {
            Some(h) => h,
            None => Arc::new(NoHooks),
        }
    }

    /// The replay numbering of a session (made on its first PLAY).
    pub fn replay_state(
        &self,
        session: &str,
        tracks: &[ipcamd_proto::codec::TrackInfo],
    ) -> Arc<ReplayState> {
        lock(&self.running)
            .entry(session.to_owned())
            .or_default()
            .replay
            .get_or_insert_with(|| ReplayState::new(tracks.to_vec()))
            .clone()
    }

    fn sinks(&self, tracks: &[TrackOut], camera: Option<&Camera>) -> Vec<TrackSink> {
        let writers = lock(&self.writers);
        tracks
            .iter()
            .filter_map(|t| {
                let sink = match t.route {
                    Route::Interleaved {
                        conn,
                        rtp_channel,
                        rtcp_channel,
                    } => Sink::Interleaved {
                        writer: writers.get(&conn)?.clone(),
                        rtp_channel,
                        rtcp_channel,
                    },
                    Route::Udp { rtp, rtcp } => Sink::Udp { rtp, rtcp },
                };
                let ssrc = match camera {
                    Some(c) => c.stream.ssrc(t.track).unwrap_or(t.ssrc),
                    None => t.ssrc,
                };
                Some(TrackSink {
                    track: t.track,
                    ssrc,
                    sink,
                })
            })
            .collect()
    }

    /// Carries out the core's actions, in order.
    pub async fn carry_out(&self, actions: Vec<Action>, prepared: &mut Prepared) {
        for action in actions {
            match action {
                Action::StartLive {
                    session,
                    camera,
                    tracks,
                } => self.start_live(session, &camera, &tracks, prepared),
                Action::StartReplay {
                    session,
                    recording,
                    tracks,
                    request: _,
                    delivery,
                } => self.start_replay(session, &recording, &tracks, delivery, prepared),
                Action::QueueReplay { session } => {
                    if let (Some(state), Some(job)) =
                        (self.replay_of(&session), prepared.replay.take())
                    {
                        state.queue(job);
                    }
                }
                Action::StopDelivery { session } => self.stop_delivery(&session).await,
                Action::StartTalk {
                    session, camera, ..
                } => self.start_talk(session, &camera),
                Action::TalkPlaying { session, on } => {
                    if let Some((t, _)) = lock(&self.running)
                        .get(&session)
                        .and_then(|r| r.talker.as_deref())
                    {
                        t.set_playing(on);
                    }
                }
                Action::StartPublish {
                    session,
                    camera,
                    tracks,
                    peer,
                } => self.start_publish(session, &camera, tracks, peer),
                Action::StopPublish { session, .. } => {
                    if let Some(p) = self.publisher(&session) {
                        p.stop(&session, "publisher paused (PAUSE)");
                    }
                }
                Action::Close {
                    session,
                    path,
                    reason,
                } => {
                    if reason == CloseReason::Teardown {
                        // Its answer follows on the same connection: the delivery stops
                        // at a frame boundary first (as for PAUSE), else the answer could
                        // land inside a frame left half written.
                        let d = lock(&self.running)
                            .get_mut(&session)
                            .and_then(|r| r.delivery.take());
                        if let Some(d) = d {
                            d.stop_gracefully(&session).await;
                        }
                    }
                    self.close(&session, &path, reason)
                }
            }
        }
    }

    fn start_live(
        &self,
        session: String,
        camera: &str,
        tracks: &[TrackOut],
        prepared: &mut Prepared,
    ) {
        let (Some(cam), Some(reader)) = (self.cameras.get(camera), prepared.live.take()) else {
            return;
        };
        let keep_alive_every = (self.core().config().session_timeout / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(5));
        let d = live::spawn(LiveDelivery {
            session: session.clone(),
            reader,
            tracks: self.sinks(tracks, Some(cam)),
            udp: self.udp.clone(),
            hooks: self.hooks(),
            cname: format!("ipcamd-{camera}"),
            direct: Some(
                lock(&self.direct)
                    .entry(camera.to_owned())
                    .or_insert_with(|| DirectFanout::new(cam.stream.clone()))
                    .clone(),
            ),
            keep_alive_every,
        });
        self.set_delivery(&session, d);
    }

    fn replay_of(&self, session: &str) -> Option<Arc<ReplayState>> {
        lock(&self.running)
            .get(session)
            .and_then(|r| r.replay.clone())
    }

    fn start_replay(
        &self,
        session: String,
        recording: &str,
        tracks: &[TrackOut],
        number: u64,
        prepared: &mut Prepared,
    ) {
        let (Some(job), Some(state)) = (prepared.replay.take(), self.replay_of(&session)) else {
            return;
        };
        state.clear_queue();
        self.counters
            .replay_deliveries
            .fetch_add(1, Ordering::Relaxed);
        let d = replay::spawn(
            ReplayDelivery {
                session: session.clone(),
                tracks: self.sinks(tracks, None),
                state,
                udp: self.udp.clone(),
                hooks: self.hooks(),
                cname: format!("ipcamd-replay/{recording}"),
                number,
            },
            job,
        );
        self.set_delivery(&session, d);
    }

    /// Stops the session's delivery at a packet boundary (queued replays are dropped) and
    /// tells the core where a replay got to.
    async fn stop_delivery(&self, session: &str) {
        let (d, state) = match lock(&self.running).get_mut(session) {
            Some(r) => (r.delivery.take(), r.replay.clone()),
            None => (None, None),
        };
        if let Some(s) = state {
            s.clear_queue();
        }
        if let Some(d) = d {
            let number = d.number;
            let last = d.stop_gracefully(session).await;
            self.core().delivery_stopped(session, number, last);
        }
    }

    fn start_publish(
        &self,
        session: String,
        camera: &str,
        tracks: Vec<ipcamd_proto::codec::TrackInfo>,
        peer: SocketAddr,
    ) {
        let Some(point) = self.cameras.get(camera).and_then(|c| c.publish.clone()) else {
            return;
        };
        point.start(&session, tracks, peer);
        lock(&self.running).entry(session).or_default().publish = Some(point);
    }

    /// The camera a publisher's session feeds.
    fn publisher(&self, session: &str) -> Option<Arc<PublishPoint>> {
        lock(&self.running)
            .get(session)
            .and_then(|r| r.publish.clone())
    }

    /// One packet of a publisher's `track` (RTP, or with `rtcp` RTCP).
    pub fn publish_packet(&self, session: &str, track: usize, data: &[u8], rtcp: bool) {
        if let Some(p) = self.publisher(session) {
            p.packet(session, track, data, rtcp);
        }
    }

    fn start_talk(&self, session: String, camera: &str) {
        let Some(out) = self.cameras.get(camera).and_then(|c| c.backchannel.clone()) else {
            return;
        };
        let talker = Talker::start(out.clone(), &session);
        lock(&self.running).entry(session).or_default().talker = Some(Box::new((talker, out)));
    }

    /// Frees what runs for a closed session: its delivery, its talker (whose thread ends
    /// and finishes the outputs), its hold on the audio output.
    fn close(&self, session: &str, path: &PathKind, reason: CloseReason) {
        let running = lock(&self.running).remove(session);
        if let Some(r) = running {
            if let Some(d) = r.delivery {
                d.abort();
            }
            if let Some((talker, out)) = r.talker.map(|t| *t) {
                talker.set_playing(false);
                drop(talker);
                out.release(session);
            }
            if let Some(p) = r.publish {
                let why = match reason {
                    CloseReason::Timeout => "publisher left (its session timed out)",
                    CloseReason::Replaced => "publisher replaced by a new one",
                    CloseReason::Shutdown => "server shutting down",
                    _ => "publisher left",
                };
                p.stop(session, why);
            }
        }
        if reason == CloseReason::Timeout {
            self.counters
                .sessions_timed_out
                .fetch_add(1, Ordering::Relaxed);
            let timeout_s = self.core().config().session_timeout.as_secs();
            tracing::info!(session, path = %path.path(), timeout_s, "session timed out");
        } else {
            tracing::debug!(session, path = %path.path(), reason = reason.as_str(), "session closed");
        }
    }

    fn set_delivery(&self, session: &str, d: Delivery) {
        let old = lock(&self.running)
            .entry(session.to_owned())
            .or_default()
            .delivery
            .replace(d);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Routes an interleaved frame a client sent on `conn`; `false` if no session set up
    /// that channel there.
    pub fn inbound(&self, conn: ConnId, channel: u8, payload: Bytes, peer: SocketAddr) -> bool {
        let route = self.core().inbound(conn, channel, Instant::now());
        match route {
            Inbound::Talk(session) => {
                self.talk(&session, payload);
                true
            }
            Inbound::Rtcp(_) => {
                self.account_rtcp(&payload, peer);
                true
            }
            Inbound::Record { session, track } => {
                self.publish_packet(&session, track, &payload, false);
                true
            }
            Inbound::RecordRtcp { session, track } => {
                self.publish_packet(&session, track, &payload, true);
                true
            }
            // A publisher sending before RECORD (or after PAUSE): dropped quietly.
            Inbound::NotRecording => true,
            // Our own RTP channels echoed back: not an error worth closing for.
            Inbound::Echo => true,
            Inbound::Unrouted => false,
        }
    }

    /// Hands talk audio to the session's talker (within the packet-rate limit).
    pub fn talk(&self, session: &str, payload: Bytes) {
        let running = lock(&self.running);
        if let Some((t, _)) = running.get(session).and_then(|r| r.talker.as_deref()) {
            if t.rate.admit_counted(
                self.limits.backchannel_max_packets_per_s,
                &self.limit_counters.backchannel_rate_dropped,
            ) {
                t.push(payload);
            } else {
                t.stats.received.fetch_add(1, Ordering::Relaxed);
                t.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Accounts one RTCP compound packet from a client (UDP or interleaved).
    pub fn account_rtcp(&self, data: &[u8], from: SocketAddr) {
        match parse_compound(data) {
            Ok(pkts) => {
                self.counters.rtcp_received.fetch_add(1, Ordering::Relaxed);
                for p in pkts {
                    if let RtcpPacket::ReceiverReport { ssrc, reports } = p {
                        for r in reports {
                            tracing::trace!(%from, ssrc, lost = r.cumulative_lost, jitter = r.jitter, "receiver report");
                        }
                    }
                }
            }
            Err(e) => {
                self.counters.rtcp_malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, error = %e, "malformed RTCP dropped");
            }
        }
    }

    /// Closes the sessions that outlived their timeout, as they expire.
    pub async fn reap(self: Arc<Self>, mut shutdown: crate::net::shutdown::Shutdown) {
        loop {
            let next = self.core().next_timeout();
            let wait = next
                .map(|t| t.saturating_duration_since(Instant::now()) + Duration::from_millis(10))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
            let now = Instant::now();
            for c in self.cameras.sorted() {
                if let Some(p) = &c.publish {
                    p.check_silence(now);
                }
            }
            let actions = self.core().expire(now);
            if !actions.is_empty() {
                self.carry_out(actions, &mut Prepared::default()).await;
            }
        }
    }
}

impl SessionHooks for Hub {
    fn keep_alive(&self, session: &str) {
        self.core().touch(session, Instant::now());
    }

    fn replay_finished(&self, session: &str, delivery: u64, last_sent: Option<UnixMicros>) -> bool {
        self.core().delivery_finished(session, delivery, last_sent)
    }
}

/// Used only if the hub is gone (shutdown).
struct NoHooks;

impl SessionHooks for NoHooks {
    fn keep_alive(&self, _: &str) {}
    fn replay_finished(&self, _: &str, _: u64, _: Option<UnixMicros>) -> bool {
        false
    }
}
