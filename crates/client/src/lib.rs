//! # ipcamd-client: an async RTSP client, the ONVIF backchannel `talk` tool, ONVIF devices
//!
//! A small RTSP/1.0 client on tokio, written for the cases ipcamd cares about: talking to an
//! ONVIF camera's audio backchannel (ours or a real one) and, later, replay and play tests;
//! and the ONVIF client calls that find cameras (WS-Discovery) and resolve their stream
//! URIs from their device address.
//! It reuses the sans-IO core of `ipcamd-proto` for every byte on the wire (messages,
//! headers, SDP, RTP, RTCP) and `ipcamd-audio` for the G.711/G.726 encoders.
//!
//! ```text
//!  talk::run(TalkArgs)                    the `ipcamd talk` subcommand
//!     │  input (tone / WAV / stdin / ADTS / Ogg Opus) -> talk::packets -> RTP
//!     ▼
//!  RtspClient                             CSeq, Session, auth, $ frames, keep-alive
//!     │  describe / setup / play / teardown / send_interleaved / next_frame
//!     ▼
//!  TCP connection  |  HTTP tunnel (GET + base64 POST)      + UDP sockets for RTP/UDP
//! ```
//!
//! ## Two clocks in `talk`
//!
//! - **RTP time**: every packet's media position in ticks of the codec's clock (8000 for
//!   G.711/G.726, the `rtpmap` rate for L16 and AAC, 48000 for Opus), from a random start.
//!   Exact, whatever happens to the pacing.
//! - **Now**: tokio's monotonic clock. A packet is due at PLAY-response time plus its RTP
//!   time; late packets are sent at once (see [`talk`]). Wall-clock time appears only in
//!   RTCP sender reports.
//!
//! ## Modules
//! - [`client`] — [`RtspClient`] and [`ClientTransport`].
//! - `tunnel` (private) — the RTSP-over-HTTP GET/POST pair.
//! - [`auth`] — Digest (RFC 2617/7616, MD5) and Basic authentication.
//! - [`url`] — `rtsp://user:pass@host:port/path` (and `rtsps://`).
//! - [`tls`] — RTSPS: which certificates are trusted ([`ClientTls`]).
//! - [`talk`] — the backchannel sender: [`talk::TalkArgs`], [`talk::run`].
//! - [`onvif`] — ONVIF devices by their address: [`onvif::resolve_stream`] (GetProfiles,
//!   GetStreamUri; WS-Security and HTTP Digest over a minimal HTTP/1.1 client) and
//!   [`onvif::probe`] (WS-Discovery); the SOAP messages are `ipcamd-onvif`'s.
//! - [`error`] — [`ClientError`].
//!
//! TLS: `rtsps://` (RTSPS over TCP or UDP, and the HTTP tunnel over HTTPS; module `tls`).
//! Left out: RTSP 2.0, `https://` ONVIF devices, receiving and depacketizing media for playback (the frames are
//! handed out raw by [`RtspClient::next_frame`]), multicast.

pub mod auth;
pub mod client;
pub mod error;
mod net;
pub mod onvif;
pub mod replay;
pub mod talk;
pub mod tls;
mod tunnel;
pub mod url;

pub use client::{ClientTransport, RtspClient, BACKCHANNEL_TAG};
pub use error::ClientError;
pub use talk::{run, TalkArgs, TalkReport};
pub use tls::ClientTls;
