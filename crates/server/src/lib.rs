//! # ipcamd-server: listeners, RTSP connections, sessions and transports
//!
//! The tokio layer around the sans-IO protocol core (`ipcamd-proto`) and the media fan-out
//! (`ipcamd-media`). Files, one job each:
//!
//! - [`state`]: what all connections share: cameras, the session registry, UDP sockets.
//! - [`session`]: an RTSP session: its set-up tracks, transports, keep-alive, PLAY task.
//! - [`rtsp`]: one RTSP connection (plain TCP, or the POST half of an HTTP tunnel): decode
//!   requests, answer them.
//! - [`delivery`]: the PLAY task: frames from the fan-out to a TCP writer or UDP peer,
//!   RTCP sender reports.
//! - [`udp`]: the server's RTP/RTCP UDP socket pair and the receiver-report loop.
//! - [`backchannel`]: the ONVIF audio backchannel: SDP offer, talk policy, receive thread.
//! - [`recording`]: continuous recording of live cameras into the store.
//! - [`talk_record`]: the backchannel's `record` output (talk audio as a recording track).
//! - [`http`]: the HTTP port: RTSP-over-HTTP tunnel pairs, and a small index page.
//! - [`auth`]: users, roles and the Digest check of every request.
//! - [`tls`]: RTSPS and HTTPS listeners (rustls).
//! - [`limits`]: limits against hostile clients, and panic isolation of connections.
//! - [`onvif`]: ONVIF SOAP services and snapshots on the HTTP port, WS-Discovery.
//!
//! Live vs replay: a live session plays one camera's
//! [`Stream`](ipcamd_media::fanout::Stream) (shared packets from the fan-out); a replay
//! session (`/replay/NAME`) plays a recording through its own store reader and pump
//! ([`replay`]).

pub mod auth;
pub mod backchannel;
pub mod delivery;
pub mod http;
pub mod limits;
pub mod onvif;
pub mod recording;
pub mod replay;
pub mod rtsp;
pub mod session;
pub mod state;
pub mod talk_record;
pub mod tls;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use state::{Camera, ServerState};

/// Everything the server needs to know besides its cameras.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub rtsp_listen: SocketAddr,
    pub http_listen: Option<SocketAddr>,
    /// First of the two UDP ports (RTP, RTCP = +1) media is sent from; 0 = any free pair.
    pub rtp_port: u16,
    /// Session timeout announced in `Session: id;timeout=N`.
    pub session_timeout: Duration,
    /// Name in the `Server:` header and SDP.
    pub server_name: String,
    /// Users, roles and how requests are authenticated.
    pub auth: Arc<auth::Authorizer>,
    /// RTSPS/HTTPS, when a certificate is configured.
    pub tls: Option<tls::TlsOptions>,
    /// Limits against hostile clients (`[limits]`).
    pub limits: limits::Limits,
    /// ONVIF services and WS-Discovery.
    pub onvif: onvif::OnvifOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            rtsp_listen: ([0, 0, 0, 0], 8554).into(),
            http_listen: Some(([0, 0, 0, 0], 8080).into()),
            rtp_port: 0,
            session_timeout: Duration::from_secs(60),
            server_name: format!("ipcamd/{}", env!("CARGO_PKG_VERSION")),
            auth: Arc::new(auth::Authorizer::default()),
            tls: None,
            limits: limits::Limits::default(),
            onvif: onvif::OnvifOptions::default(),
        }
    }
}

/// A started server: its bound addresses (useful when ports were 0) and its tasks.
pub struct Server {
    pub state: Arc<ServerState>,
    pub rtsp_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    pub rtsps_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    recordings: Vec<recording::Recording>,
    discovery: Option<onvif::Discovery>,
}

impl Server {
    /// Binds all listeners (errors name the address) and starts serving.
    pub async fn start(
        options: ServerOptions,
        cameras: Vec<Camera>,
        store: Option<ipcamd_store::Store>,
    ) -> std::io::Result<Server> {
        let rtsp = TcpListener::bind(options.rtsp_listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for RTSP on {}: {e}", options.rtsp_listen),
            )
        })?;
        let http = match options.http_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {addr}: {e}"))
            })?),
            None => None,
        };
        let tls = match &options.tls {
            Some(t) => Some(start_tls_listeners(t).await?),
            None => None,
        };
        let udp = udp::UdpPair::bind(options.rtsp_listen.ip(), options.rtp_port).await?;
        let rtsp_addr = rtsp.local_addr()?;
        let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
        let mut recordings = Vec::new();
        if let Some(store) = &store {
            for c in cameras.iter().filter(|c| c.record) {
                let talk = c.backchannel.clone().filter(|b| b.records());
                let r = recording::Recording::start_with_talk(store, c.stream.clone(), talk)
                    .map_err(|e| {
                        std::io::Error::other(format!(
                            "camera {:?}: cannot start recording: {e}",
                            c.name
                        ))
                    })?;
                recordings.push(r);
            }
        }
        let state = ServerState::new(options, cameras, udp, rtsp_addr, http_addr, store);
        let mut tasks = vec![
            tokio::spawn(rtsp::accept_loop(state.clone(), rtsp)),
            tokio::spawn(udp::rtcp_loop(state.clone())),
            tokio::spawn(udp::rtp_loop(state.clone())),
            tokio::spawn(session::reaper(state.clone())),
        ];
        if let Some(http) = http {
            tasks.push(tokio::spawn(http::accept_loop(state.clone(), http)));
        }
        let (mut rtsps_addr, mut https_addr) = (None, None);
        if let Some((acceptor, rtsps, https)) = tls {
            if let Some(l) = rtsps {
                rtsps_addr = Some(l.local_addr()?);
                tasks.push(tokio::spawn(tls::rtsps_accept_loop(
                    state.clone(),
                    l,
                    acceptor.clone(),
                )));
            }
            if let Some(l) = https {
                https_addr = Some(l.local_addr()?);
                tasks.push(tokio::spawn(tls::https_accept_loop(
                    state.clone(),
                    l,
                    acceptor,
                )));
            }
        }
        // WS-Discovery announces the device service, so it needs the HTTP port.
        let discovery = if state.options.onvif.discovery && http_addr.is_some() {
            let port = state.options.onvif.discovery_port;
            // Not fatal: the SOAP services work without it.
            onvif::Discovery::start(state.clone(), port)
                .map_err(|e| tracing::warn!(error = %e, "WS-Discovery is off"))
                .ok()
        } else {
            None
        };
        Ok(Server {
            state,
            rtsp_addr,
            http_addr,
            rtsps_addr,
            https_addr,
            tasks,
            recordings,
            discovery,
        })
    }

    /// Stops accepting, tears down every session.
    pub async fn shutdown(self) {
        if let Some(d) = self.discovery {
            d.stop();
        }
        for t in &self.tasks {
            t.abort();
        }
        self.state.sessions.teardown_all();
        for r in self.recordings {
            r.stop().await;
        }
    }
}

/// The TLS acceptor and the RTSPS/HTTPS listeners (errors name the file or address).
async fn start_tls_listeners(
    t: &tls::TlsOptions,
) -> std::io::Result<(
    tokio_rustls::TlsAcceptor,
    Option<TcpListener>,
    Option<TcpListener>,
)> {
    let acceptor = tls::acceptor(t).map_err(std::io::Error::other)?;
    let bind = |addr: Option<SocketAddr>, what: &'static str| async move {
        match addr {
            Some(a) => TcpListener::bind(a).await.map(Some).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen for {what} on {a}: {e}"))
            }),
            None => Ok(None),
        }
    };
    let rtsps = bind(t.rtsps_listen, "RTSPS").await?;
    let https = bind(t.https_listen, "HTTPS").await?;
    Ok((acceptor, rtsps, https))
}
