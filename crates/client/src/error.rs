//! The one error type of the crate. Every variant says what failed (which request, which
//! status line, which header, which file) and, where there is one, what to do about it.
//! Passwords never appear: URLs are shown without their credentials.

use std::io;

/// What went wrong in the client or the `talk` tool.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// RTSPS: the TLS set-up or handshake failed (the message says why and what to do).
    #[error("{0}")]
    Tls(String),

    /// The URL given on the command line or to [`crate::RtspClient::connect`].
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The TCP connection to the server could not be opened.
    #[error(
        "cannot connect to {addr} ({what}): {source}; is the server running and the port right?"
    )]
    Connect {
        addr: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// Reading or writing a socket failed after the connection was up.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// The server closed the connection while the client was waiting for something.
    #[error("the server closed the connection while {waiting_for}")]
    Closed { waiting_for: String },

    /// Nothing arrived in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },

    /// The RTSP-over-HTTP tunnel could not be set up.
    #[error("HTTP tunnel to {addr}: {reason}")]
    Tunnel { addr: String, reason: String },

    /// The server sent bytes that are not RTSP.
    #[error("unreadable data from the server while {context}: {message}")]
    Decode { context: String, message: String },

    /// A request was answered with an error status.
    #[error("{method} {uri} failed: `RTSP/1.0 {status} {reason}`{detail}")]
    Status {
        method: String,
        uri: String,
        status: u16,
        reason: String,
        /// Extra information (an `Unsupported` header, a hint); empty or starting with `; `.
        detail: String,
    },

    /// Authentication was required and failed, or no credentials were given.
    #[error("{method} {uri}: authentication failed: {reason}")]
    Auth {
        method: String,
        uri: String,
        reason: String,
    },

    /// A response lacked something the protocol requires, or held something unreadable.
    #[error("{context}: {reason}")]
    Protocol { context: String, reason: String },

    /// An ONVIF device refused or failed an operation, or answered something unusable.
    /// `reason` says what went wrong (the SOAP fault, the HTTP status) and what to do.
    #[error("ONVIF {operation} at {url}: {reason}")]
    Onvif {
        /// The device service address.
        url: String,
        /// `GetProfiles`, `Media2 GetStreamUri (POST /onvif/media2_service)`, ...: the
        /// operation, and the path of its service when it is not the device service.
        operation: String,
        /// The HTTP status of the last answer, if there was one.
        status: Option<u16>,
        /// The fault codes of the last answer (`env:Sender/ter:NotAuthorized`), if a fault.
        fault: Option<String>,
        reason: String,
    },

    /// The server's SDP has no audio backchannel section.
    #[error("the server offers no backchannel (no a=sendonly section){detail}")]
    NoBackchannel { detail: String },

    /// No codec of the offer fits the input, or the requested one is not offered.
    #[error("{0}")]
    Codec(String),

    /// The talk input (file, stdin, tone) is unusable.
    #[error("input `{input}`: {reason}")]
    Input { input: String, reason: String },

    /// A command-line value makes no sense.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn protocol(context: impl Into<String>, reason: impl Into<String>) -> Self {
        ClientError::Protocol {
            context: context.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn input(input: impl Into<String>, reason: impl Into<String>) -> Self {
        ClientError::Input {
            input: input.into(),
            reason: reason.into(),
        }
    }
}
