//! # ipcamd-server: listeners, connections, sessions, deliveries
//!
//! The tokio layer around the sans-IO protocol core (`ipcamd-proto`, whose
//! `rtsp::server` module decides every RTSP rule), the media fan-out (`ipcamd-media`) and
//! the store. Its rooms, in the order data flows through them (docs/rtsp-server.md has the
//! picture and the import graph):
//!
//! ```text
//!   net/ ---- accept loops, limits, TLS, shutdown (no protocol)
//!    |
//!    +--> rtsp/ --- conn (thin loop around the session core), hub (sessions and what
//!    |        |     runs for them), catalogue, udp_in
//!    |        +--> deliver/ --- live, replay pump, wire, udp, rtcp
//!    |        +--> talk/ ------ backchannel outputs and talkers --> record/talk
//!    +--> http/ --- one HTTP/1.1 layer: tunnel (-> rtsp), api, and
//!             +--> onvif/ --- SOAP services (writes carried out in apply, kept in the
//!                             state file), snapshots, discovery
//!   upstream/ - proxied cameras: the RTSP client feeding a camera's stream
//!   publish/ -- published cameras: a publisher's media into the camera's stream (called
//!               by rtsp/ as the session core says), exec sources (a child that publishes)
//!   record/ --- continuous recording into the store
//!   cameras, auth, stats, sync, ingest_log --- leaves every room may use
//! ```
//!
//! Each room takes narrow handles (the hub, the cameras, the store, counters), never a
//! whole-server state; this file wires them together and owns start and shutdown.

pub mod auth;
pub mod cameras;
pub mod deliver;
pub mod http;
pub mod ingest_log;
pub mod net;
pub mod onvif;
pub mod publish;
pub mod record;
pub mod rtsp;
pub mod stats;
pub mod sync;
pub mod talk;
pub mod upstream;
pub mod webrtc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipcamd_proto::rtsp::server::Config as CoreConfig;
use tokio::net::TcpListener;

pub use cameras::{Camera, Cameras};

use net::accept::{accept_loop, Admission, Port, Protocol};
use net::limits::LimitCounters;
use net::shutdown::{Shutdown, Trigger};

/// Everything the server needs to know besides its cameras.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub rtsp_listen: SocketAddr,
    pub http_listen: Option<SocketAddr>,
    /// First of the two UDP ports (RTP, RTCP = +1) media is sent from; 0 = any free pair.
    pub rtp_port: u16,
    /// Send a frame's UDP packets to one client in one segmented `sendmsg` (Linux
    /// `UDP_SEGMENT`); off sends them one `sendmsg` each.
    pub udp_gso: bool,
    /// RTP payload bytes of interleaved replay packets when a client sends no
    /// `Blocksize` (`[server] replay_blocksize`, docs/replay.md "Packet size").
    pub replay_blocksize: usize,
    /// Session timeout announced in `Session: id;timeout=N`.
    pub session_timeout: Duration,
    /// Name in the `Server:` header and SDP.
    pub server_name: String,
    /// Users, roles and how requests are authenticated.
    pub auth: Arc<auth::Authorizer>,
    /// RTSPS/HTTPS, when a certificate is configured.
    pub tls: Option<net::tls::TlsOptions>,
    /// Limits against hostile clients (`[limits]`).
    pub limits: net::limits::Limits,
    /// ONVIF services and WS-Discovery.
    pub onvif: onvif::OnvifOptions,
    /// How long shutdown waits for connections to end before aborting them.
    pub shutdown_grace: Duration,
    /// `GET /metrics` (`[metrics]`).
    pub metrics: http::metrics::MetricsOptions,
    /// WebRTC live view and talk (`[webrtc]`).
    pub webrtc: webrtc::WebRtcOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            rtsp_listen: ([0, 0, 0, 0], 8554).into(),
            http_listen: Some(([0, 0, 0, 0], 8080).into()),
            rtp_port: 0,
            udp_gso: true,
            replay_blocksize: ipcamd_proto::rtsp::server::replay::DEFAULT_BLOCKSIZE,
            session_timeout: Duration::from_secs(60),
            server_name: format!("ipcamd/{}", env!("CARGO_PKG_VERSION")),
            auth: Arc::new(auth::Authorizer::default()),
            tls: None,
            limits: net::limits::Limits::default(),
            onvif: onvif::OnvifOptions::default(),
            shutdown_grace: Duration::from_secs(5),
            metrics: http::metrics::MetricsOptions::default(),
            webrtc: webrtc::WebRtcOptions::default(),
        }
    }
}

/// A started server: its bound addresses (useful when ports were 0) and what it runs.
pub struct Server {
    pub rtsp_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    pub rtsps_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    /// The server's RTP/RTCP UDP port pair.
    pub udp_ports: (u16, u16),
    pub options: ServerOptions,
    pub hub: Arc<rtsp::hub::Hub>,
    pub http: Arc<http::Http>,
    trigger: Trigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    recordings: Vec<(record::Recording, Option<Arc<talk::AudioOut>>)>,
    discovery: Option<onvif::Discovery>,
}

async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
    })
}

async fn bind_opt(addr: Option<SocketAddr>, what: &str) -> std::io::Result<Option<TcpListener>> {
    match addr {
        Some(a) => bind(a, what).await.map(Some),
        None => Ok(None),
    }
}

/// Every listening socket, bound before anything starts (errors name the address).
struct Listeners {
    rtsp: TcpListener,
    http: Option<TcpListener>,
    rtsps: Option<TcpListener>,
    https: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    udp: Arc<deliver::udp::UdpPair>,
}

impl Listeners {
    async fn bind(options: &ServerOptions) -> std::io::Result<Listeners> {
        let t = options.tls.as_ref();
        Ok(Listeners {
            rtsp: bind(options.rtsp_listen, "RTSP").await?,
            http: bind_opt(options.http_listen, "HTTP").await?,
            rtsps: bind_opt(t.and_then(|t| t.rtsps_listen), "RTSPS").await?,
            https: bind_opt(t.and_then(|t| t.https_listen), "HTTPS").await?,
            tls: t
                .map(net::tls::acceptor)
                .transpose()
                .map_err(std::io::Error::other)?,
            udp: Arc::new(
                deliver::udp::UdpPair::bind(
                    options.rtsp_listen.ip(),
                    options.rtp_port,
                    options.udp_gso,
                )
                .await?,
            ),
        })
    }
}

type Recordings = Vec<(record::Recording, Option<Arc<talk::AudioOut>>)>;

/// One writer per recorded camera; a backchannel with the `record` output gets the talk
/// track's sink.
fn start_recordings(
    store: &ipcamd_store::Store,
    cameras: &[Camera],
    state: &onvif::state::DeviceState,
) -> std::io::Result<Recordings> {
    let mut recordings = Vec::new();
    for c in cameras.iter().filter(|c| c.record) {
        let talk = c.backchannel.clone().filter(|b| b.records());
        let active = state.recording_active(&c.name);
        let (r, sink) = record::Recording::start(store, c.stream.clone(), talk.is_some(), active)
            .map_err(|e| {
            std::io::Error::other(format!("camera {:?}: cannot start recording: {e}", c.name))
        })?;
        if let (Some(out), Some(sink)) = (&talk, sink) {
            out.attach_recording(sink);
        }
        recordings.push((r, talk));
    }
    Ok(recordings)
}

impl Server {
    /// Binds all listeners (errors name the address) and starts serving.
    pub async fn start(
        options: ServerOptions,
        cameras: Vec<Camera>,
        store: Option<ipcamd_store::Store>,
    ) -> std::io::Result<Server> {
        let l = Listeners::bind(&options).await?;
        let rtsp_addr = l.rtsp.local_addr()?;
        let http_addr = l.http.as_ref().map(|l| l.local_addr()).transpose()?;
        let rtsps_addr = l.rtsps.as_ref().map(|l| l.local_addr()).transpose()?;
        let https_addr = l.https.as_ref().map(|l| l.local_addr()).transpose()?;
        let udp_ports = l.udp.ports();
        let recordings = match &store {
            Some(store) => start_recordings(store, &cameras, &options.onvif.state)?,
            None => Vec::new(),
        };
        let recording_states: Vec<(String, Arc<std::sync::atomic::AtomicBool>)> = recordings
            .iter()
            .map(|(r, _)| (r.camera.clone(), r.active.clone()))
            .collect();
        let cameras = Cameras::new(cameras);
        let (trigger, shutdown) = net::shutdown::channel();
        let counters = Arc::new(stats::Counters::default());
        let limit_counters = Arc::new(LimitCounters::default());
        let admission = Admission::new(options.limits.clone(), limit_counters.clone());
        let hub = rtsp::hub::Hub::new(rtsp::hub::HubParts {
            config: CoreConfig {
                session_timeout: options.session_timeout,
                max_sessions_per_connection: options.limits.max_sessions_per_connection,
                udp_ports: Some(udp_ports),
                replay_blocksize: options.replay_blocksize,
            },
            cameras: cameras.clone(),
            store: store.clone(),
            udp: l.udp.clone(),
            counters: counters.clone(),
            limits: options.limits.clone(),
            limit_counters: limit_counters.clone(),
        });
        let rtsp = Arc::new(rtsp::Rtsp {
            hub: hub.clone(),
            auth: options.auth.clone(),
            server_name: options.server_name.clone(),
        });
        let onvif = Arc::new(onvif::Onvif::new(onvif::OnvifParts {
            options: options.onvif.clone(),
            cameras: cameras.clone(),
            store: store.clone(),
            auth: options.auth.clone(),
            http_addr,
            rtsp_port: rtsp_addr.port(),
            session_timeout: options.session_timeout,
            jobs: recordings
                .iter()
                .map(|(r, _)| {
                    let job = onvif::RecordingJob {
                        mode: r.mode.clone(),
                        writing: r.active.clone(),
                    };
                    (r.camera.clone(), job)
                })
                .collect(),
        }));
        let event_sources = onvif::events::Sources {
            cameras: cameras.clone(),
            recordings: recording_states,
            motion: options.onvif.motion.clone(),
        };
        let event_watchers = onvif::events::spawn(onvif.events.clone(), event_sources, &shutdown);
        let (webrtc, webrtc_task) = if options.webrtc.enabled && http_addr.is_some() {
            let (w, t) =
                webrtc::WebRtc::start(options.webrtc.clone(), cameras.clone(), shutdown.clone())
                    .await?;
            (Some(w), Some(t))
        } else {
            (None, None)
        };
        let http = Arc::new(http::Http {
            rtsp: rtsp.clone(),
            onvif: onvif.clone(),
            api: http::api::Api {
                cameras,
                store,
                hub: hub.clone(),
                admission: admission.clone(),
                counters: counters.clone(),
                limit_counters: limit_counters.clone(),
                rtsp_port: rtsp_addr.port(),
                server_name: options.server_name.clone(),
                stall: options.limits.idle_timeout,
                metrics: options.metrics.clone(),
                auth: options.auth.clone(),
                recording_status: recordings
                    .iter()
                    .map(|(r, _)| (r.camera.clone(), r.status.clone()))
                    .collect(),
                recording_active: recordings
                    .iter()
                    .map(|(r, _)| (r.camera.clone(), r.active.clone()))
                    .collect(),
                webrtc,
            },
            auth: options.auth.clone(),
            limits: options.limits.clone(),
            counters,
            limit_counters: limit_counters.clone(),
            server_name: options.server_name.clone(),
            tunnels: Default::default(),
        });
        let port = |what, protocol, tls| Port {
            what,
            protocol,
            tls,
            admission: admission.clone(),
            counters: limit_counters.clone(),
            shutdown: shutdown.clone(),
        };
        let mut tasks = spawn_tasks(l, &hub, &rtsp, &http, &shutdown, port);
        tasks.extend(event_watchers);
        tasks.extend(webrtc_task);
        for c in hub.cameras.sorted() {
            if let Some(up) = c.upstream.clone() {
                let (stream, shutdown) = (c.stream.clone(), shutdown.clone());
                let guard = shutdown.track("upstream camera");
                tasks.push(tokio::spawn(async move {
                    upstream::run(up, stream, shutdown).await;
                    drop(guard);
                }));
            }
        }
        tasks.extend(start_exec_sources(
            &hub.cameras,
            &options,
            rtsp_addr,
            &shutdown,
        ));
        // WS-Discovery announces the device service, so it needs the HTTP port.
        let discovery = if options.onvif.discovery && http_addr.is_some() {
            // Not fatal: the SOAP services work without it.
            onvif::Discovery::start(onvif, options.onvif.discovery_port)
                .map_err(|e| tracing::warn!(error = %e, "WS-Discovery is off"))
                .ok()
        } else {
            None
        };
        Ok(Server {
            rtsp_addr,
            http_addr,
            rtsps_addr,
            https_addr,
            udp_ports,
            options,
            hub,
            http,
            trigger,
            tasks,
            recordings,
            discovery,
        })
    }

    /// The WebRTC UDP socket's address, when WebRTC is on.
    pub fn webrtc_addr(&self) -> Option<SocketAddr> {
        self.http.api.webrtc.as_ref().map(|w| w.local_addr())
    }

    /// Graceful shutdown: stop accepting, end every connection (its sessions get
    /// TEARDOWN-equivalent cleanup), wait up to `shutdown_grace` for them, close the
    /// remaining sessions, flush and close the recordings, send WS-Discovery Bye. What was
    /// still open is logged.
    pub async fn shutdown(self) {
        if let Some(d) = self.discovery {
            d.stop();
        }
        self.trigger.trigger();
        let left = self.trigger.drained(self.options.shutdown_grace).await;
        if !left.is_empty() {
            tracing::warn!(open = ?left, grace_s = self.options.shutdown_grace.as_secs(), "connections still open after the grace period; aborting them");
        }
        let sessions = self.hub.sessions_open();
        if sessions > 0 {
            tracing::info!(sessions, "closing the remaining sessions");
        }
        self.hub.close_all().await;
        for t in &self.tasks {
            t.abort();
        }
        for (r, talk) in self.recordings {
            if let Some(out) = talk {
                out.detach_recording();
            }
            r.stop().await;
        }
        tracing::info!("server stopped");
    }
}

/// The child programs of the exec cameras, each publishing to its camera's URL on the
/// bound RTSP port with a random secret made now (`publish::exec`).
fn start_exec_sources(
    cameras: &Cameras,
    options: &ServerOptions,
    rtsp_addr: SocketAddr,
    shutdown: &Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let host = match rtsp_addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let mut tasks = Vec::new();
    for c in cameras.sorted() {
        let Some((point, command)) = c
            .publish
            .as_ref()
            .and_then(|p| p.exec.clone().map(|cmd| (p.clone(), cmd)))
        else {
            continue;
        };
        let secret = format!("{:032x}", rand::random::<u128>());
        options.auth.set_publish_secret(&c.name, &secret);
        let src = publish::exec::ExecSource {
            camera: c.name.clone(),
            command,
            url: format!(
                "rtsp://{}:{secret}@{host}:{}/{}",
                auth::EXEC_USER,
                rtsp_addr.port(),
                c.name
            ),
            secret,
            point,
        };
        let guard = shutdown.track("exec source");
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            publish::exec::run(src, shutdown).await;
            drop(guard);
        }));
    }
    tasks
}

/// The accept loops of every port, the UDP receive loops and the session reaper.
fn spawn_tasks(
    l: Listeners,
    hub: &Arc<rtsp::hub::Hub>,
    rtsp: &Arc<rtsp::Rtsp>,
    http: &Arc<http::Http>,
    shutdown: &Shutdown,
    port: impl Fn(&'static str, Protocol, Option<tokio_rustls::TlsAcceptor>) -> Port,
) -> Vec<tokio::task::JoinHandle<()>> {
    let rtsp_serve = || {
        let (rtsp, shutdown) = (rtsp.clone(), shutdown.clone());
        move |s, peer, local| rtsp::serve(rtsp.clone(), s, peer, local, shutdown.clone())
    };
    let http_serve = || {
        let (http, shutdown) = (http.clone(), shutdown.clone());
        move |s, peer, local| http::serve(http.clone(), s, peer, local, shutdown.clone())
    };
    let mut tasks = vec![
        tokio::spawn(accept_loop(
            l.rtsp,
            port("RTSP", Protocol::Rtsp, None),
            rtsp_serve(),
        )),
        tokio::spawn(rtsp::udp_in::rtcp_loop(hub.clone(), shutdown.clone())),
        tokio::spawn(rtsp::udp_in::rtp_loop(hub.clone(), shutdown.clone())),
        tokio::spawn(hub.clone().reap(shutdown.clone())),
    ];
    if let Some(h) = l.http {
        tasks.push(tokio::spawn(accept_loop(
            h,
            port("HTTP", Protocol::Http, None),
            http_serve(),
        )));
    }
    if let Some(r) = l.rtsps {
        tasks.push(tokio::spawn(accept_loop(
            r,
            port("RTSPS", Protocol::Rtsp, l.tls.clone()),
            rtsp_serve(),
        )));
    }
    if let Some(h) = l.https {
        tasks.push(tokio::spawn(accept_loop(
            h,
            port("HTTPS", Protocol::Http, l.tls.clone()),
            http_serve(),
        )));
    }
    tasks
}
