//! Recordings as mediamtx's playback server serves them, on the HTTP port (README
//! "Playback API"):
//!
//! - `GET /list?path=NAME[&start=T][&end=T]`: a JSON array of the recorded time spans,
//!   `[{"start": "2026-11-21T22:00:00.040000Z", "duration": 59.96, "url": "..."}]`, one
//!   per section of the camera's recording (the same data as `/api/recordings/NAME`),
//!   clipped to `start`..`end` when given;
//! - `GET /get?path=NAME&start=T&duration=SECONDS[&format=fmp4|mp4]`: the footage from
//!   `start` for at most `duration` seconds as a fragmented MP4 (the default) or a plain
//!   MP4 (`Range` requests served), streamed by the store's export exactly as
//!   `/api/recordings/NAME/export.mp4` does ([`Api::export_response`]).
//!
//! Times are RFC 3339 (`2026-11-21T22:00:00Z`, with a fraction or a numeric offset);
//! parameters are percent-decoded (a literal `+` stays a `+`, so an offset sent without
//! encoding still works). A bad parameter gets 400 naming it and its value; an unknown
//! path, or no footage in the range, 404. Authentication is that of `/api/...` (viewer).

use ipcamd_proto::http_query::percent_encode as encode;
use ipcamd_proto::time::{format_iso8601, parse_utc, UnixMicros};
use ipcamd_store::{AsyncStore, Store};

use super::api::Api;
use super::message::{HttpRequest, HttpResponse};
use crate::net::limits::is_safe_name;

fn error(status: u16, reason: &'static str, msg: String) -> HttpResponse {
    HttpResponse::json(status, reason, &serde_json::json!({ "error": msg }))
}

fn bad(msg: String) -> HttpResponse {
    error(400, "Bad Request", msg)
}

/// The decoded query parameters (the first of a repeated key wins), read as `/list` and
/// `/get` need them.
struct Query(ipcamd_proto::http_query::Query);

impl Query {
    fn parse(query: &str) -> Result<Query, HttpResponse> {
        ipcamd_proto::http_query::Query::parse(query)
            .map(Query)
            .map_err(|e| bad(e.to_string()))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    /// The camera named by `path` (a camera name, leading `/` allowed).
    fn path(&self) -> Result<String, HttpResponse> {
        let Some(p) = self.get("path") else {
            return Err(bad("missing parameter path (the camera name)".into()));
        };
        let name = p.trim_matches('/');
        if !is_safe_name(name) {
            let shown: String = p.chars().take(80).collect();
            return Err(bad(format!(
                "path={shown:?}: not a camera name (letters, digits, '-' and '_', at most 64)"
            )));
        }
        Ok(name.to_owned())
    }

    /// An RFC 3339 time parameter (`None` when absent).
    fn time(&self, key: &str) -> Result<Option<UnixMicros>, HttpResponse> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_utc(v).map(Some).ok_or_else(|| {
                let shown: String = v.chars().take(80).collect();
                bad(format!(
                    "{key}={shown:?}: not an RFC 3339 time like 2026-11-21T22:00:00Z or 2026-11-21T23:00:00.5+01:00"
                ))
            }),
        }
    }
}

/// `2026-11-21T22:00:00.040000Z`: RFC 3339, UTC, microseconds (the store's precision).
fn rfc3339_micros(t: UnixMicros) -> String {
    let ms = format_iso8601(t);
    let base = ms.strip_suffix('Z').unwrap_or(&ms);
    format!("{base}{:03}Z", t.rem_euclid(1000))
}

/// `/list` or `/get` (`path` is the request path without the query).
pub async fn route(api: &Api, req: &HttpRequest, path: &str, query: &str) -> HttpResponse {
    let q = match Query::parse(query) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let name = match q.path() {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(store) = api.store.as_ref().map(Store::to_async) else {
        return error(
            404,
            "Not Found",
            "recording is not configured on this server".into(),
        );
    };
    if path == "/list" {
        list(req, &store, &q, &name).await
    } else {
        get(api, req, &store, &q, &name).await
    }
}

/// The spans of the camera's sections within `start`..`end`: (start, end) in µs.
pub fn spans(
    sections: &[ipcamd_store::SectionInfo],
    start: Option<UnixMicros>,
    end: Option<UnixMicros>,
) -> Vec<(UnixMicros, UnixMicros)> {
    sections
        .iter()
        .filter_map(|s| {
            let a = start.map_or(s.start, |t| t.max(s.start));
            let b = end.map_or(s.end, |t| t.min(s.end));
            (b > a || (b == a && start.is_none() && end.is_none())).then_some((a, b))
        })
        .collect()
}

async fn list(req: &HttpRequest, store: &AsyncStore, q: &Query, name: &str) -> HttpResponse {
    let (start, end) = match (q.time("start"), q.time("end")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return bad(format!(
                "end={:?} must be later than start={:?}",
                q.get("end").unwrap_or_default(),
                q.get("start").unwrap_or_default()
            ));
        }
    }
    let rec = match store.recording(name).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(404, "Not Found", format!("no recording of path {name:?}")),
        Err(e) => return error(500, "Internal Server Error", e.to_string()),
    };
    let spans = spans(&rec.sections, start, end);
    if spans.is_empty() {
        return error(
            404,
            "Not Found",
            format!("no footage of path {name:?} in the range"),
        );
    }
    let scheme = if req.tls { "https" } else { "http" };
    let host = req.head.headers.get("Host").unwrap_or("HOST");
    let list: Vec<serde_json::Value> = spans
        .iter()
        .map(|&(a, b)| {
            let start = rfc3339_micros(a);
            let duration = (b - a) as f64 / 1e6;
            serde_json::json!({
                "start": start,
                "duration": duration,
                "url": format!(
                    "{scheme}://{host}/get?path={}&start={}&duration={duration}",
                    encode(name),
                    encode(&start)
                ),
            })
        })
        .collect();
    HttpResponse::json(200, "OK", &serde_json::Value::Array(list))
}

async fn get(
    api: &Api,
    req: &HttpRequest,
    store: &AsyncStore,
    q: &Query,
    name: &str,
) -> HttpResponse {
    let start = match q.time("start") {
        Ok(Some(s)) => s,
        Ok(None) => return bad("missing parameter start (an RFC 3339 time)".into()),
        Err(r) => return r,
    };
    let Some(d) = q.get("duration") else {
        return bad("missing parameter duration (seconds)".into());
    };
    let seconds = match d.trim().parse::<f64>() {
        // At most about 100 years: the end must stay a representable time.
        Ok(s) if s.is_finite() && s > 0.0 && s < 3.2e9 => s,
        _ => {
            let shown: String = d.chars().take(80).collect();
            return bad(format!(
                "duration={shown:?}: not a positive number of seconds"
            ));
        }
    };
    let end = start.saturating_add((seconds * 1e6).round() as i64);
    let planned = match q.get("format") {
        None | Some("fmp4") => store.export_fragmented(name, start, end).await,
        Some("mp4") => store.export_file(name, start, end).await,
        Some(other) => {
            let shown: String = other.chars().take(80).collect();
            return bad(format!("format={shown:?}: use fmp4 (the default) or mp4"));
        }
    };
    match planned {
        Ok(file) => api.export_response(store, req, name, file, start),
        Err(e) => error(
            404,
            "Not Found",
            format!(
                "no footage of path {name:?} from {} for {seconds} s: {e}",
                rfc3339_micros(start)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_query_names_the_pair() {
        let Err(r) = Query::parse("path=cam1&start=%zz") else {
            panic!("broken escape accepted");
        };
        assert_eq!(r.status, 400);
        let super::super::message::Body::Full(body) = r.body else {
            panic!("not a full body");
        };
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("start=%zz"), "{body}");
    }

    #[test]
    fn micros_format_round_trips() {
        let t = 1_795_000_000_123_456;
        let s = rfc3339_micros(t);
        assert!(s.ends_with(".123456Z"), "{s}");
        assert_eq!(parse_utc(&s), Some(t));
    }
}
