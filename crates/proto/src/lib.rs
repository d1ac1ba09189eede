//! # ipcamd-proto: the sans-IO protocol core
//!
//! Everything in this crate is a pure function or a state machine: no sockets, no threads,
//! no clock reads. The caller feeds bytes and times in, and gets bytes and decisions out.
//! That keeps every rule of the standards testable with captured traffic, fast and
//! deterministic.
//!
//! ## Three clocks
//!
//! ```text
//!   capture wallclock (UTC, µs since 1970)   what a camera's frame grabber saw; drawn into
//!        |                                   the synthetic picture, stored by the recorder,
//!        |                                   sent as NTP in RTCP SR and ONVIF replay headers
//!        v
//!   media time (u64 ticks of the track's    increases monotonically per track from an
//!   clock rate: 90 kHz video, 8 kHz PCMU)   arbitrary origin; never jumps backwards
//!        |
//!        v
//!   RTP timestamp (u32)                     media time + a random per-track offset, wrapped
//! ```
//!
//! "Now" (the server's monotonic clock) exists only in the server crate; this crate is
//! handed any instant it needs.
//!
//! ## Modules
//! - [`auth`]: Digest (RFC 7616) and Basic authentication, nonces, roles.
//! - [`rtsp`]: RTSP/1.0 messages (RFC 2326, liberal towards RFC 7826), headers, `$` interleaving.
//! - [`tunnel`]: RTSP-over-HTTP tunnelling (GET/POST pair, base64 stream decoding).
//! - [`http_query`]: query strings of HTTP request targets (`/get`, `/list`, exports).
//! - [`http_range`]: `Range: bytes=` requests and `Content-Range` answers (MP4 export).
//! - [`codec`]: what a track carries (codec parameters), shared by SDP and packetizers.
//! - [`probe`]: picture sizes read from an H.264 SPS or a JPEG frame header.
//! - [`sdp`]: session descriptions for DESCRIBE.
//! - [`rtp`], [`rtcp`]: packet writing/reading and sender/receiver reports.
//! - [`packet`]: one file per codec, packetizer and depacketizer side by side.
//! - [`throttle`]: rate-limited warnings (the caller passes the time and logs).
//! - [`stun`]: the `USERNAME` of an ICE check, to route WebRTC datagrams sharing one port.

pub mod auth;
pub mod codec;
pub mod http_query;
pub mod http_range;
pub mod packet;
pub mod probe;
pub mod rtcp;
pub mod rtp;
pub mod rtsp;
pub mod sdp;
pub mod stun;
pub mod throttle;
pub mod time;
pub mod tunnel;
