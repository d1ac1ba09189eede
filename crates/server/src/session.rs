//! RTSP sessions (RFC 2326 §12.37): created by the first SETUP, found by the `Session`
//! header, kept alive by any request, by RTCP receiver reports, and by a TCP reader that
//! keeps taking its data; torn down by TEARDOWN, by timeout, or when the connection that
//! carries its interleaved data closes. Teardown frees everything: the PLAY task, the UDP
//! peer entries, the reader of the fan-out.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::backchannel::Talker;
use crate::delivery::Writer;
use crate::state::{lock, Camera, ServerState};

/// How the packets of one track reach the client.
#[derive(Clone)]
pub enum TrackTransport {
    /// `$`-framed inside the RTSP connection (or the tunnel's GET connection).
    Interleaved {
        writer: Writer,
        /// Id of the connection that owns `writer`: its close tears the session down.
        conn_id: u64,
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    /// Unicast UDP from the server's port pair.
    Udp { rtp: SocketAddr, rtcp: SocketAddr },
}

/// One set-up track of a session.
#[derive(Clone)]
pub struct SetupTrack {
    /// The URL the client used in SETUP (echoed in RTP-Info).
    pub url: String,
    pub transport: TrackTransport,
}

/// The backchannel (client -> server audio) of a session.
pub struct BackchannelTrack {
    pub url: String,
    pub transport: TrackTransport,
    pub talker: Talker,
}

#[derive(Default)]
pub struct SessionState {
    /// Server -> client tracks by index.
    pub tracks: BTreeMap<usize, SetupTrack>,
    pub backchannel: Option<BackchannelTrack>,
    pub playing: bool,
    pub play_task: Option<JoinHandle<()>>,
    /// Replay sessions: RTP numbering and delivery progress, shared with the pump.
    pub replay: Option<Arc<Mutex<crate::replay::ReplayCtl>>>,
    /// Asks the running delivery to stop at a packet boundary (a new one per delivery).
    pub stop: Arc<StopSignal>,
}

/// A cooperative stop for a delivery task: it checks [`StopSignal::requested`] between
/// writes and wakes from its sleeps on `wake`, so that PAUSE never cuts an interleaved
/// frame in half on the client's TCP connection.
#[derive(Default)]
pub struct StopSignal {
    flag: std::sync::atomic::AtomicBool,
    pub wake: tokio::sync::Notify,
}

impl StopSignal {
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// How long PAUSE waits for a delivery to reach a packet boundary before aborting it.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl SessionState {
    pub fn playing(&self) -> bool {
        self.playing
    }

    fn transports(&self) -> impl Iterator<Item = &TrackTransport> {
        self.tracks
            .values()
            .map(|t| &t.transport)
            .chain(self.backchannel.as_ref().map(|b| &b.transport))
    }

    /// Channels already used by interleaved tracks of this session.
    pub fn used_channels(&self) -> Vec<u8> {
        self.transports()
            .filter_map(|t| match *t {
                TrackTransport::Interleaved {
                    rtp_channel,
                    rtcp_channel,
                    ..
                } => Some([rtp_channel, rtcp_channel]),
                TrackTransport::Udp { .. } => None,
            })
            .flatten()
            .collect()
    }
}

/// What a session plays: a camera's live stream or a recording (ONVIF replay).
pub enum SessionMedia {
    Live(Camera),
    Replay(Arc<crate::replay::ReplayMedia>),
}

pub struct Session {
    pub id: String,
    pub media: SessionMedia,
    pub created_by: SocketAddr,
    /// The authenticated user who created it (`None`: anonymous); only they may use it.
    pub owner: Option<String>,
    pub state: Mutex<SessionState>,
    last_seen: Mutex<Instant>,
}

impl Session {
    /// The live camera, for a live session.
    pub fn live(&self) -> Option<&Camera> {
        match &self.media {
            SessionMedia::Live(c) => Some(c),
            SessionMedia::Replay(_) => None,
        }
    }

    /// The path the session belongs to: `cam1` or `replay/cam1`.
    pub fn path(&self) -> String {
        match &self.media {
            SessionMedia::Live(c) => c.name.clone(),
            SessionMedia::Replay(r) => format!("replay/{}", r.name),
        }
    }

    pub fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        lock(&self.last_seen).elapsed()
    }

    /// Stops delivery at a packet boundary and reception (PAUSE), waiting up to
    /// [`STOP_WAIT`] before aborting the delivery.
    pub async fn stop_gracefully(&self) {
        let task = {
            let mut st = lock(&self.state);
            st.playing = false;
            st.stop.request();
            if let Some(b) = &st.backchannel {
                b.talker.set_playing(false);
            }
            st.play_task.take()
        };
        if let Some(mut task) = task {
            if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
                tracing::warn!(session = %self.id, "delivery did not stop in time; aborted");
                task.abort();
            }
        }
    }

    /// Stops delivery and reception at once (TEARDOWN, timeout, disconnect).
    pub fn stop_playing(&self) {
        let mut st = lock(&self.state);
        st.playing = false;
        if let Some(t) = st.play_task.take() {
            t.abort();
        }
        if let Some(b) = &st.backchannel {
            b.talker.set_playing(false);
        }
    }
}

/// All sessions of the server, and the UDP peers that map back to them.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// Client RTCP (and RTP) addresses -> session id, for receiver reports.
    udp_peers: Mutex<HashMap<SocketAddr, String>>,
}

impl Sessions {
    pub fn create(
        &self,
        media: SessionMedia,
        created_by: SocketAddr,
        owner: Option<String>,
    ) -> Arc<Session> {
        let id = new_session_id();
        let s = Arc::new(Session {
            id: id.clone(),
            media,
            created_by,
            owner,
            state: Mutex::new(SessionState::default()),
            last_seen: Mutex::new(Instant::now()),
        });
        lock(&self.map).insert(id, s.clone());
        s
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.map).get(id).cloned()
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn add_udp_peer(&self, addr: SocketAddr, session: &str) {
        lock(&self.udp_peers).insert(addr, session.to_owned());
    }

    /// A session with a UDP backchannel whose client has this IP address: for clients that
    /// send their talk audio from another port than the `client_port` they announced.
    pub fn udp_backchannel_by_ip(&self, ip: std::net::IpAddr) -> Option<Arc<Session>> {
        let map = lock(&self.map);
        let mut found = map.values().filter(|s| {
            lock(&s.state).backchannel.as_ref().is_some_and(
                |b| matches!(b.transport, TrackTransport::Udp { rtp, .. } if rtp.ip() == ip),
            )
        });
        let first = found.next().cloned();
        // Ambiguous when several sessions from that address talk: accept none.
        match found.next() {
            Some(_) => None,
            None => first,
        }
    }

    /// The session a UDP datagram from `addr` belongs to.
    pub fn by_udp_peer(&self, addr: &SocketAddr) -> Option<Arc<Session>> {
        let id = lock(&self.udp_peers).get(addr).cloned()?;
        self.get(&id)
    }

    /// Removes a session and frees what it holds. Returns whether it existed.
    pub fn teardown(&self, id: &str) -> bool {
        let Some(s) = lock(&self.map).remove(id) else {
            return false;
        };
        s.stop_playing();
        let mut state = lock(&s.state);
        let peers: Vec<SocketAddr> = state
            .transports()
            .filter_map(|t| match *t {
                TrackTransport::Udp { rtp, rtcp } => Some([rtp, rtcp]),
                _ => None,
            })
            .flatten()
            .collect();
        state.tracks.clear();
        // Dropping the talker ends its thread, which finishes the outputs.
        if state.backchannel.take().is_some() {
            if let Some(out) = s.live().and_then(|c| c.backchannel.as_ref()) {
                out.release(id);
            }
        }
        drop(state);
        let mut udp = lock(&self.udp_peers);
        for p in peers {
            if udp.get(&p).is_some_and(|sid| sid == id) {
                udp.remove(&p);
            }
        }
        tracing::debug!(session = id, "session torn down");
        true
    }

    /// Tears down every session whose interleaved data goes over connection `conn_id`.
    pub fn teardown_connection(&self, conn_id: u64) {
        let ids: Vec<String> = lock(&self.map)
            .values()
            .filter(|s| {
                lock(&s.state).transports().any(|t| {
                    matches!(*t, TrackTransport::Interleaved { conn_id: c, .. } if c == conn_id)
                })
            })
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            tracing::debug!(session = %id, conn_id, "connection closed; tearing its session down");
            self.teardown(&id);
        }
    }

    pub fn teardown_all(&self) {
        let ids: Vec<String> = lock(&self.map).keys().cloned().collect();
        for id in ids {
            self.teardown(&id);
        }
    }

    fn expired(&self, timeout: Duration) -> Vec<String> {
        lock(&self.map)
            .values()
            .filter(|s| s.idle_for() > timeout)
            .map(|s| s.id.clone())
            .collect()
    }
}

/// A session id: 16 characters of [A-Za-z0-9] (RFC 2326 §3.4 allows these; ~95 bits).
fn new_session_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Tears down sessions that outlived their timeout, once a second.
pub async fn reaper(state: Arc<ServerState>) {
    let timeout = state.options.session_timeout;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for id in state.sessions.expired(timeout) {
            tracing::info!(session = %id, timeout_s = timeout.as_secs(), "session timed out");
            state
                .counters
                .sessions_timed_out
                .fetch_add(1, Ordering::Relaxed);
            state.sessions.teardown(&id);
        }
    }
}
