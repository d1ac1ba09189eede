//! HTTP requests and responses as the routes of the HTTP port see them; the layer in
//! [`super`] reads the former and writes the latter.

use std::net::SocketAddr;

use bytes::Bytes;
use ipcamd_proto::tunnel::HttpRequestHead;

use crate::auth::Denied;

/// One request as routes see it.
pub struct HttpRequest {
    pub head: HttpRequestHead,
    pub body: Vec<u8>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub tls: bool,
}

impl HttpRequest {
    /// The path without the query string, and the query string.
    pub fn path_and_query(&self) -> (&str, &str) {
        ipcamd_proto::http_query::split_target(&self.head.path)
    }
}

/// A response body.
pub enum Body {
    Full(Vec<u8>),
    /// `len` bytes, produced in chunks by another task (an error ends the connection
    /// early: the client sees fewer bytes than announced). A client that takes nothing
    /// for `stall` is dropped.
    Stream {
        len: u64,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
        stall: std::time::Duration,
    },
    /// A body of unknown length (a live stream): sent without `Content-Length`, ended by
    /// closing the connection (HTTP/1.1 §6.3 of RFC 9112). A client that takes nothing for
    /// `stall` is dropped.
    Live {
        chunks: tokio::sync::mpsc::Receiver<Bytes>,
        stall: std::time::Duration,
    },
}

/// A response; its head is written by [`write_response`].
pub struct HttpResponse {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
}

impl HttpResponse {
    pub fn new(status: u16, reason: &'static str, content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            reason,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: Body::Full(body),
            close: false,
        }
    }

    pub fn text(status: u16, reason: &'static str, text: impl Into<String>) -> Self {
        Self::new(
            status,
            reason,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    pub fn json(status: u16, reason: &'static str, v: &serde_json::Value) -> Self {
        Self::new(
            status,
            reason,
            "application/json",
            format!("{v:#}\n").into_bytes(),
        )
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 401/403/400 for refused credentials (the connection is closed after it).
    pub fn denied(d: &Denied) -> Self {
        let mut r = match d {
            Denied::Unauthorized { challenges } => {
                let mut r = Self::text(401, "Unauthorized", "authentication required\n");
                for c in challenges {
                    r = r.header("WWW-Authenticate", c.clone());
                }
                r
            }
            Denied::Forbidden { role, needed, .. } => Self::text(
                403,
                "Forbidden",
                format!("this needs the {needed} role; you are {role}\n"),
            ),
            Denied::BadRequest { reason } => Self::text(
                400,
                "Bad Request",
                format!("{}\n", ipcamd_proto::rtsp::server::printable(reason)),
            ),
        };
        r.close = true;
        r
    }
}
