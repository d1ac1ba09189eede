//! What a request URL names (the server's URL scheme, README "URLs"):
//! `rtsp://host[:port]/<camera>[/trackID=<n>]` (live; `stream=<n>` is accepted too) and
//! `rtsp://host[:port]/replay/<recording>[/trackID=<n>]` (ONVIF replay). A query string
//! or fragment is ignored; a bare path (`/cam1`) is accepted.

use crate::rtsp::message::Response;

/// Path prefix of replay URLs.
pub const REPLAY_PREFIX: &str = "replay";

/// Live camera or recording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathKind {
    Live(String),
    Replay(String),
}

impl PathKind {
    /// `cam1` or `replay/cam1`: what a session belongs to.
    pub fn path(&self) -> String {
        match self {
            PathKind::Live(c) => c.clone(),
            PathKind::Replay(r) => format!("{REPLAY_PREFIX}/{r}"),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            PathKind::Live(n) | PathKind::Replay(n) => n,
        }
    }
}

/// A parsed request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: PathKind,
    /// `trackID=<n>`, if the URL names a track.
    pub track: Option<usize>,
    /// `rtsp://host[:port]/<path>/`: the Content-Base of DESCRIBE.
    pub base_url: String,
}

fn not_found() -> Response {
    Response::with_reason(404, "Not Found (no such camera or track)")
}

impl Target {
    /// Parses the URL's path (no look-up: whether the camera exists is the catalogue's).
    pub fn parse(uri: &str) -> Result<Target, Response> {
        let (prefix, path) = split_uri(uri).ok_or_else(|| {
            Response::with_reason(400, "Bad Request (request URL is not rtsp://host/path)")
        })?;
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let first = segments.next().ok_or_else(not_found)?;
        let kind = if first == REPLAY_PREFIX {
            let name = segments.next().ok_or_else(|| {
                Response::with_reason(404, "Not Found (replay URLs are /replay/<recording>)")
            })?;
            PathKind::Replay(name.to_owned())
        } else {
            PathKind::Live(first.to_owned())
        };
        let track = match segments.next() {
            None => None,
            Some(seg) => Some(
                seg.strip_prefix("trackID=")
                    .or_else(|| seg.strip_prefix("stream="))
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(not_found)?,
            ),
        };
        if segments.next().is_some() {
            return Err(not_found());
        }
        let base_url = format!("{prefix}/{}/", kind.path());
        Ok(Target {
            kind,
            track,
            base_url,
        })
    }

    /// The recording a request on `uri` needs looked up, if it names one: the server
    /// resolves it (a store query) before handing the request to the core.
    pub fn recording_name(uri: &str) -> Option<String> {
        match Target::parse(uri).ok()?.kind {
            PathKind::Replay(name) => Some(name),
            PathKind::Live(_) => None,
        }
    }
}

/// Splits `rtsp://host:port/a/b?q` into (`rtsp://host:port`, `/a/b`). Accepts a bare path.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    if uri.starts_with('/') {
        return Some(("", uri));
    }
    let scheme_end = uri.find("://")?;
    let after = scheme_end + 3;
    let rest = uri.get(after..)?;
    match rest.find('/') {
        Some(i) => Some((uri.get(..after + i)?, rest.get(i..)?)),
        None => Some((uri, "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_split() {
        assert_eq!(
            split_uri("rtsp://127.0.0.1:8554/cam1/trackID=0"),
            Some(("rtsp://127.0.0.1:8554", "/cam1/trackID=0"))
        );
        assert_eq!(split_uri("rtsp://h/cam1/"), Some(("rtsp://h", "/cam1/")));
        assert_eq!(split_uri("rtsp://h"), Some(("rtsp://h", "/")));
        assert_eq!(split_uri("/cam1?x=1"), Some(("", "/cam1")));
        assert_eq!(split_uri("*"), None);
    }

    #[test]
    fn targets() {
        let t = Target::parse("rtsp://h:1/cam1/trackID=2").unwrap();
        assert_eq!(t.kind, PathKind::Live("cam1".into()));
        assert_eq!(t.track, Some(2));
        assert_eq!(t.base_url, "rtsp://h:1/cam1/");
        let t = Target::parse("rtsp://h/replay/cam1/stream=0?x").unwrap();
        assert_eq!(t.kind, PathKind::Replay("cam1".into()));
        assert_eq!(t.track, Some(0));
        assert_eq!(t.base_url, "rtsp://h/replay/cam1/");
        assert_eq!(t.kind.path(), "replay/cam1");
        for (bad, status) in [
            ("*", 400),
            ("rtsp://h/", 404),
            ("rtsp://h/replay", 404),
            ("rtsp://h/cam1/track=1", 404),
            ("rtsp://h/cam1/trackID=x", 404),
            ("rtsp://h/cam1/trackID=0/more", 404),
        ] {
            assert_eq!(
                Target::parse(bad).map(|_| 200).unwrap_or_else(|r| r.status),
                status,
                "{bad}"
            );
        }
        assert_eq!(
            Target::recording_name("rtsp://h/replay/a/"),
            Some("a".into())
        );
        assert_eq!(Target::recording_name("rtsp://h/a/"), None);
    }
}
