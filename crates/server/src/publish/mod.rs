//! RTSP publish: a client pushes a camera's media to us (ANNOUNCE / RECORD; the rules are
//! the session core's, `ipcamd_proto::rtsp::server::publish`). A published stream is a
//! configured camera (`source = "publish"`, or `"exec"` whose child program publishes,
//! [`exec`]): readers, the recorder, snapshots and the ONVIF profile see a camera like any
//! other, fed by whoever publishes to it now.
//!
//! ```text
//!  RECORD ----> PublishPoint::start(session, tracks)   Stream::set_tracks (same codecs keep
//!                                                       readers, others end them), Ingest new
//!                                                       or restarted (pts continues)
//!  RTP/RTCP --> PublishPoint::packet ---> Ingest ---> Stream::push   (the first unit: online)
//!  PAUSE, TEARDOWN, timeout, connection closed, replaced
//!          --> PublishPoint::stop ---> Stream::set_offline("publisher left"), readers stay
//!  no RTP for SILENCE (the hub's reaper asks every second)
//!          --> PublishPoint::check_silence ---> offline until media flows again
//! ```
//!
//! The rtsp room calls these as the core's actions say (`rtsp::hub`), for the publisher's
//! session only: packets of a session that no longer publishes are dropped.

pub mod exec;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipcamd_media::fanout::{Retrack, Stream};
use ipcamd_media::ingest::Ingest;
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::rtsp::server::publish::PUBLISHER_SILENCE;
use ipcamd_proto::rtsp::server::PublishView;

use crate::ingest_log::log_event;
use crate::sync::lock;

/// The offline reason of a publish camera nobody has published to yet.
pub const WAITING: &str = "waiting for a publisher";

/// A publisher whose RTP stops for this long makes the camera offline (its session may
/// live on until it times out or a new publisher replaces it: a UDP publisher that died
/// sends no TEARDOWN). The session core's figure for replacing a silent publisher.
pub const SILENCE: Duration = PUBLISHER_SILENCE;

/// One publish camera's receiving end.
pub struct PublishPoint {
    /// Who may publish, and whether a new publisher replaces the live one.
    pub rules: PublishView,
    /// `source = "exec"`: the configured command (with `{url}`), whose child publishes here.
    pub exec: Option<String>,
    stream: Arc<Stream>,
    feed: Mutex<Feed>,
}

#[derive(Default)]
struct Feed {
    /// The session publishing now.
    session: Option<String>,
    peer: Option<SocketAddr>,
    /// Kept across publishers: the next one with the same tracks continues its pts.
    ingest: Option<Ingest>,
    /// Media of the current publisher reached the stream.
    flowing: bool,
    /// When the current publisher's last RTP packet arrived.
    last_rtp: Option<Instant>,
}

impl PublishPoint {
    /// The receiving end of `stream` (offline, [`WAITING`], until a publisher's media).
    pub fn new(stream: Arc<Stream>, rules: PublishView, exec: Option<String>) -> Arc<PublishPoint> {
        stream.set_offline(Some(WAITING.to_owned()));
        Arc::new(PublishPoint {
            rules,
            exec,
            stream,
            feed: Mutex::new(Feed::default()),
        })
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Whether a session publishes now.
    pub fn is_live(&self) -> bool {
        lock(&self.feed).session.is_some()
    }

    /// `session` (from `peer`) starts publishing `tracks` (RECORD).
    pub fn start(&self, session: &str, tracks: Vec<TrackInfo>, peer: SocketAddr) {
        let camera = self.stream.name();
        let codecs: Vec<String> = tracks.iter().map(|t| t.codec.name().to_owned()).collect();
        let mut f = lock(&self.feed);
        match f.ingest.as_mut() {
            Some(i) if i.tracks().eq(tracks.iter()) => i.restart(),
            _ => f.ingest = Some(Ingest::new(tracks.clone())),
        }
        let had_tracks = !self.stream.tracks().is_empty();
        if self.stream.set_tracks(tracks) == Retrack::Replaced && had_tracks {
            tracing::info!(
                camera,
                "the publisher's tracks differ from the last one's: their readers were ended"
            );
        }
        f.session = Some(session.to_owned());
        f.peer = Some(peer);
        f.flowing = false;
        f.last_rtp = None;
        tracing::info!(camera, session, %peer, tracks = %codecs.join(" + "), "publisher recording");
    }

    /// One RTP (or with `rtcp`, RTCP) packet of the publisher `session` on its `track`.
    pub fn packet(&self, session: &str, track: usize, data: &[u8], rtcp: bool) {
        let camera = self.stream.name();
        let mut guard = lock(&self.feed);
        let f = &mut *guard;
        if f.session.as_deref() != Some(session) {
            return;
        }
        let Some(ingest) = f.ingest.as_mut() else {
            return;
        };
        let event = if rtcp {
            ingest.rtcp(track, data)
        } else {
            f.last_rtp = Some(Instant::now());
            ingest.rtp(track, data, now_micros())
        };
        if let Some(e) = event {
            log_event(camera, &e);
        }
        while let Some(au) = ingest.pull() {
            if !f.flowing {
                f.flowing = true;
                self.stream.set_offline(None);
                let peer = f.peer.map(|p| p.to_string()).unwrap_or_default();
                tracing::info!(
                    camera,
                    session,
                    peer,
                    "camera online: the publisher's media flows"
                );
            }
            self.stream.push(au);
        }
    }

    /// `session` stops publishing (PAUSE, or its session ended): the camera is offline with
    /// `why`; its readers stay for the next publisher. Nothing if it does not publish.
    pub fn stop(&self, session: &str, why: &str) {
        let camera = self.stream.name();
        let mut f = lock(&self.feed);
        if f.session.as_deref() != Some(session) {
            return;
        }
        f.session = None;
        f.flowing = false;
        let t = f.ingest.as_ref().map(Ingest::total).unwrap_or_default();
        if let Some(i) = &f.ingest {
            self.stream.stats.set_received(i.all_counters());
        }
        self.stream.set_offline(Some(why.to_owned()));
        tracing::info!(
            camera,
            session,
            why,
            packets = t.packets,
            units = t.units,
            lossy_units = t.lossy_units,
            malformed = t.malformed,
            "publisher stopped; camera offline"
        );
    }

    /// Makes the camera offline if its publisher's media flowed and then stopped for
    /// [`SILENCE`] before `now`; its next media makes it online again.
    /// Also reports the receiver's counters to the camera's stats (so at most a second old).
    pub fn check_silence(&self, now: Instant) {
        let mut f = lock(&self.feed);
        if let Some(i) = &f.ingest {
            self.stream.stats.set_received(i.all_counters());
        }
        let silent = match f.last_rtp {
            Some(t) => f.flowing && now.saturating_duration_since(t) >= SILENCE,
            None => false,
        };
        if !silent {
            return;
        }
        f.flowing = false;
        let why = format!("the publisher sent no media for {} s", SILENCE.as_secs());
        self.stream.set_offline(Some(why.clone()));
        tracing::warn!(
            camera = self.stream.name(),
            session = f.session.as_deref().unwrap_or_default(),
            "{why}; camera offline until its media flows again"
        );
    }

    /// Sets the camera's offline reason while nobody publishes (an `exec` source says why
    /// its child is not publishing); nothing while a publisher is live.
    pub fn set_idle_reason(&self, why: String) {
        let f = lock(&self.feed);
        if f.session.is_none() {
            self.stream.set_offline(Some(why));
        }
    }
}
