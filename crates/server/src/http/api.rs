//! The HTTP API and index: `GET /` (plain-text list of camera URLs), `GET /api/stats`
//! (counters; `GET /metrics` in [`super::metrics`], `/list` and `/get` in
//! [`super::playback`]), `GET /api/recordings`, `GET /api/recordings/NAME`,
//! `GET|HEAD /api/recordings/NAME/export.mp4?from=UTC&to=UTC[&format=fmp4]`. Store work runs
//! on the store's own threads ([`AsyncStore`]).
//!
//! Export: the MP4 is the store's virtual file, planned from the index (`moov` first), so
//! its length is known before the first byte; `Range: bytes=` requests get 206 (a browser's
//! `<video>` seeks in it) or 416; the body streams from the segment files through a queue
//! of 4 chunks of 256 KiB, so memory stays bounded whatever the range. `format=fmp4` is the
//! fragmented variant, sent whole.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipcamd_proto::http_query::Query;
use ipcamd_proto::http_range::{answer_range, content_range, unsatisfied_range, RangeAnswer};
use ipcamd_proto::rtsp::server::replay::track_tokens;
use ipcamd_proto::time::{format_iso8601, parse_utc};
use ipcamd_store::{AsyncStore, ExportFile, Store};

use ipcamd_proto::tunnel::HttpRequestHead;

use super::message::{Body, HttpRequest, HttpResponse};
use crate::cameras::Cameras;
use crate::net::accept::Admission;
use crate::net::limits::{is_safe_name, LimitCounters};
use crate::rtsp::hub::Hub;
use crate::stats::Counters;

/// `[metrics]` of the configuration.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// Serve `GET /metrics` (else 404).
    pub enabled: bool,
    /// A bearer token that also grants `GET /metrics` (besides the viewer role).
    pub token: Option<String>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            enabled: true,
            token: None,
        }
    }
}

impl MetricsOptions {
    /// Whether the request carries `Authorization: Bearer <token>` with the configured
    /// token (compared in constant time).
    pub fn token_matches(&self, head: &HttpRequestHead) -> bool {
        let (true, Some(token)) = (self.enabled, self.token.as_deref()) else {
            return false;
        };
        let Some(value) = head.headers.get("Authorization") else {
            return false;
        };
        let value = value.trim();
        let Some((scheme, given)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && !token.is_empty()
            && ipcamd_proto::auth::ct_eq(given.trim(), token)
    }
}

/// What the API reads.
pub struct Api {
    pub cameras: Cameras,
    pub store: Option<Store>,
    pub hub: Arc<Hub>,
    pub admission: Arc<Admission>,
    pub counters: Arc<Counters>,
    pub limit_counters: Arc<LimitCounters>,
    pub rtsp_port: u16,
    pub server_name: String,
    /// A download whose client takes nothing for this long is dropped
    /// (`[limits] idle_timeout_s`).
    pub stall: std::time::Duration,
    /// `[metrics]`: whether `/metrics` is served, its bearer token.
    pub metrics: MetricsOptions,
    /// The refused-request counts of the authentication (for `/metrics`).
    pub auth: Arc<crate::auth::Authorizer>,
    /// Each recorded camera's recording: frames dropped (disk behind), why writing is
    /// stopped (a write error), by camera.
    pub recording_status: Vec<(String, Arc<crate::record::RecordStatus>)>,
    /// Each recorded camera's "a section is being written now" flag.
    pub recording_active: Vec<(String, Arc<std::sync::atomic::AtomicBool>)>,
    /// WebRTC (WHEP), when `[webrtc] enabled`.
    pub webrtc: Option<Arc<crate::webrtc::WebRtc>>,
}

/// Bytes read from the store per export chunk.
const EXPORT_CHUNK: usize = 256 * 1024;
/// Chunks queued between the store reads and the socket (1 MiB with `EXPORT_CHUNK`).
const EXPORT_QUEUE: usize = 4;

fn json_error(status: u16, reason: &'static str, msg: String) -> HttpResponse {
    HttpResponse::json(status, reason, &serde_json::json!({ "error": msg }))
}

impl Api {
    pub async fn route(&self, req: &HttpRequest) -> HttpResponse {
        if !matches!(req.head.method.as_str(), "GET" | "HEAD") {
            return HttpResponse::text(405, "Method Not Allowed", "only GET is served here\n");
        }
        let (path, query) = req.path_and_query();
        if path == "/api/stats" {
            return HttpResponse::json(200, "OK", &self.stats_json());
        }
        if path == "/index.txt" {
            return HttpResponse::text(200, "OK", self.index_text());
        }
        let Some(rest) = path.strip_prefix("/api/recordings") else {
            return HttpResponse::text(404, "Not Found", format!("no resource at {path}\n"));
        };
        let Some(store) = self.store.as_ref().map(Store::to_async) else {
            return json_error(
                404,
                "Not Found",
                "recording is not configured on this server".into(),
            );
        };
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // Camera names are safe path components (letters, digits, '-', '_'; checked in the
        // configuration too): anything else (`..`, `%2F`, `%00`, non-UTF-8, overlong) is
        // refused before it reaches the store.
        if let Some(bad) = segments.first().filter(|n| !is_safe_name(n)) {
            let shown: String = bad.chars().take(80).collect();
            return json_error(
                400,
                "Bad Request",
                format!(
                    "{shown:?} is not a camera name (letters, digits, '-' and '_', at most 64)"
                ),
            );
        }
        let host = req.head.headers.get("Host").unwrap_or("HOST").to_owned();
        let rtsp_port = self.rtsp_port;
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            [] => match store.recordings().await {
                Ok(list) => HttpResponse::json(
                    200,
                    "OK",
                    &serde_json::Value::Array(
                        list.iter()
                            .map(|r| self.recording_json(r, &host, rtsp_port))
                            .collect(),
                    ),
                ),
                Err(e) => json_error(500, "Internal Server Error", e.to_string()),
            },
            [name] => match store.recording(name).await {
                Ok(Some(r)) => {
                    HttpResponse::json(200, "OK", &self.recording_json(&r, &host, rtsp_port))
                }
                Ok(None) => {
                    json_error(404, "Not Found", format!("no recording of camera {name:?}"))
                }
                Err(e) => json_error(500, "Internal Server Error", e.to_string()),
            },
            [name, "export.mp4"] => self.export(&store, req, name, query).await,
            _ => json_error(404, "Not Found", "unknown API path".into()),
        }
    }

    /// `export.mp4`: the answer head now, the body streamed from the store.
    async fn export(
        &self,
        store: &AsyncStore,
        req: &HttpRequest,
        name: &str,
        query: &str,
    ) -> HttpResponse {
        let (file, from) = match export_plan(store, name, query).await {
            Ok(planned) => planned,
            Err(refused) => return refused,
        };
        self.export_response(store, req, name, file, from)
    }

    /// The answer for a planned export starting at `from`: the head now (206 for a
    /// satisfiable `Range` of a plain MP4, 416 for another), the body streamed from the
    /// store by a task reading through `store`.
    pub(super) fn export_response(
        &self,
        store: &AsyncStore,
        req: &HttpRequest,
        name: &str,
        file: ExportFile,
        from: i64,
    ) -> HttpResponse {
        let len = file.len();
        let range = if file.is_fragmented() {
            RangeAnswer::Full
        } else {
            answer_range(req.head.headers.get("Range"), len)
        };
        let accept = if file.is_fragmented() {
            "none"
        } else {
            "bytes"
        };
        let (status, reason, start, end) = match range {
            RangeAnswer::Full => (200, "OK", 0, len),
            RangeAnswer::Partial { start, end } => (206, "Partial Content", start, end),
            RangeAnswer::Unsatisfiable => {
                return HttpResponse::new(416, "Range Not Satisfiable", "text/plain", Vec::new())
                    .header("Content-Range", unsatisfied_range(len))
                    .header("Accept-Ranges", "bytes");
            }
        };
        let stamp: String = format_iso8601(from)
            .chars()
            .take_while(|&c| c != '.')
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let (tx, chunks) = tokio::sync::mpsc::channel(EXPORT_QUEUE);
        if req.head.method != "HEAD" {
            let (store, name) = (store.clone(), name.to_owned());
            tokio::spawn(async move {
                let mut reader = Some(file.reader(start, end));
                while let Some(r) = reader.take() {
                    match store.read_export(r, EXPORT_CHUNK).await {
                        Ok((r, Some(chunk))) => {
                            reader = Some(r);
                            // A closed queue: the connection is gone, stop reading.
                            if tx.send(Ok(chunk)).await.is_err() {
                                return;
                            }
                        }
                        Ok((_, None)) => return,
                        Err(e) => {
                            tracing::warn!(camera = %name, "export ended early: {e}");
                            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                            return;
                        }
                    }
                }
            });
        }
        let mut r = HttpResponse {
            status,
            reason,
            headers: vec![
                ("Content-Type", "video/mp4".to_owned()),
                ("Accept-Ranges", accept.to_owned()),
                (
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}-{stamp}Z.mp4\""),
                ),
            ],
            body: Body::Stream {
                len: end - start,
                chunks,
                stall: self.stall,
            },
            close: false,
        };
        if status == 206 {
            r = r.header("Content-Range", content_range(start, end, len));
        }
        r
    }

    fn index_text(&self) -> String {
        let mut s = format!("{}\n\n", self.server_name);
        for c in self.cameras.sorted() {
            s.push_str(&format!("rtsp://HOST:{}/{}\n", self.rtsp_port, c.name));
        }
        s
    }

    /// `GET /api/stats`: the server's counters as JSON.
    pub fn stats_json(&self) -> serde_json::Value {
        let c = &self.counters;
        let l = &self.limit_counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let cameras: Vec<serde_json::Value> = self
            .cameras
            .sorted()
            .into_iter()
            .map(|cam| {
                let s = &cam.stream;
                let rec = self.status_of(&cam.name);
                serde_json::json!({
                    "name": cam.name,
                    "online": s.offline_reason().is_none(),
                    "offline_reason": s.offline_reason(),
                    "readers": s.reader_count(),
                    "frames_in": g(&s.stats.frames_in),
                    "reader_skips": g(&s.stats.reader_skips),
                    "direct_joins": g(&s.stats.direct_joins),
                    "direct_returns": g(&s.stats.direct_returns),
                    // A proxied camera's or a publisher's RTP, per track, as received.
                    "received": s.stats.received().iter().enumerate().map(|(track, r)| {
                        serde_json::json!({
                            "track": track,
                            "packets": r.packets,
                            "units": r.units,
                            "lossy_units": r.lossy_units,
                            "malformed": r.malformed,
                            "foreign": r.foreign,
                            "sender_reports": r.sender_reports,
                            "jumps": r.jumps,
                        })
                    }).collect::<Vec<_>>(),
                    "talk": cam.backchannel.is_some(),
                    "recorded": cam.record && self.store.is_some(),
                    "recording": self.writing(&cam.name),
                    "recording_error": rec.and_then(|r| r.stopped_reason()),
                    "recording_dropped_frames": rec.map_or(0, |r| g(&r.dropped)),
                })
            })
            .collect();
        serde_json::json!({
            "connections_open": self.admission.open(),
            "connections": g(&c.connections),
            "requests": c.requests.total("rtsp"),
            "bad_requests": g(&c.bad_requests),
            "sessions_open": self.hub.sessions_open(),
            "sessions_created": g(&c.sessions_created),
            "sessions_timed_out": g(&c.sessions_timed_out),
            "rtcp_received": g(&c.rtcp_received),
            "rtcp_malformed": g(&c.rtcp_malformed),
            "udp_unknown_source": g(&c.udp_unknown_source),
            // RTP over UDP: system calls, the packets they carried (more packets than
            // calls: segmentation offload), and failed sends.
            "udp_rtp_sends": g(&self.hub.udp.rtp_sends),
            "udp_rtp_packets": g(&self.hub.udp.rtp_packets),
            "udp_send_errors": g(&self.hub.udp.send_errors),
            "limits": l
                .named()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect::<serde_json::Map<_, _>>(),
            "cameras": cameras,
            "webrtc": self.webrtc.as_ref().map(|w| {
                let st = &w.stats;
                serde_json::json!({
                    "peers_open": w.peers(),
                    "peers_created": g(&st.peers_created),
                    "peers_connected": g(&st.peers_connected),
                    "frames_sent": g(&st.frames_sent),
                    "bytes_sent": g(&st.bytes_sent),
                    "datagrams_unrouted": g(&st.datagrams_unrouted),
                    "talk_packets": g(&st.talk_packets),
                })
            }),
        })
    }
}

impl Api {
    /// The status of camera `name`'s running recording, if it is recorded.
    fn status_of(&self, name: &str) -> Option<&crate::record::RecordStatus> {
        self.recording_status
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_ref())
    }

    /// Whether camera `name` is being written to the store now (recorded, with tracks,
    /// job Active, no write error).
    fn writing(&self, name: &str) -> bool {
        self.recording_active
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, a)| a.load(Ordering::Relaxed))
    }

    /// A recording's JSON (`/api/recordings`), with the running recording's state when
    /// this server records the camera.
    fn recording_json(
        &self,
        r: &ipcamd_store::RecordingInfo,
        host: &str,
        rtsp_port: u16,
    ) -> serde_json::Value {
        let mut v = recording_json(r, host, rtsp_port);
        if let Some(obj) = v.as_object_mut() {
            let status = self.status_of(&r.camera);
            obj.insert(
                "recording".into(),
                serde_json::Value::Bool(self.writing(&r.camera)),
            );
            obj.insert(
                "recording_error".into(),
                status
                    .and_then(|s| s.stopped_reason())
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            );
        }
        v
    }
}

/// Checks an export request and plans its file (on the store's threads): the file and
/// the requested start, or the answer refusing it.
async fn export_plan(
    store: &AsyncStore,
    name: &str,
    query: &str,
) -> Result<(ExportFile, i64), HttpResponse> {
    let query = Query::parse(query).map_err(|e| json_error(400, "Bad Request", e.to_string()))?;
    let param = |k: &str| query.get(k).map(str::to_owned);
    let (Some(from), Some(to)) = (param("from"), param("to")) else {
        return Err(json_error(
            400,
            "Bad Request",
            "export needs ?from=<UTC>&to=<UTC>, e.g. from=2026-11-21T22:00:00Z".into(),
        ));
    };
    let (Some(f), Some(t)) = (parse_utc(&from), parse_utc(&to)) else {
        return Err(json_error(
            400,
            "Bad Request",
            format!("from={from:?} / to={to:?}: not UTC times like 2026-11-21T22:00:00Z"),
        ));
    };
    if t <= f {
        return Err(json_error(
            400,
            "Bad Request",
            "to must be later than from".into(),
        ));
    }
    let planned = match param("format").as_deref() {
        None | Some("mp4") => store.export_file(name, f, t).await,
        Some("fmp4") => store.export_fragmented(name, f, t).await,
        Some(other) => {
            return Err(json_error(
                400,
                "Bad Request",
                format!("format={other:?}: use mp4 (the default) or fmp4"),
            ))
        }
    };
    planned.map(|file| (file, f)).map_err(|e| {
        json_error(
            404,
            "Not Found",
            format!("cannot export {name} {from}..{to}: {e}"),
        )
    })
}

fn recording_json(
    r: &ipcamd_store::RecordingInfo,
    host: &str,
    rtsp_port: u16,
) -> serde_json::Value {
    // The RTSP URL uses the host the client reached us by, with the RTSP port.
    let hostname = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() => h,
        _ => host,
    };
    let tokens = track_tokens(&r.tracks);
    let (first, last) = (
        r.sections.first().map(|s| s.start),
        r.sections.last().map(|s| s.end),
    );
    serde_json::json!({
        "camera": r.camera,
        "replay_url": format!("rtsp://{hostname}:{rtsp_port}/replay/{}", r.camera),
        "tracks": r.tracks.iter().zip(&tokens).map(|(t, token)| serde_json::json!({
            "token": token,
            "codec": t.codec.name(),
            "kind": t.kind().as_sdp(),
            "clock_rate": t.clock_rate(),
        })).collect::<Vec<_>>(),
        "sections": r.sections.iter().map(|s| serde_json::json!({
            "start": format_iso8601(s.start),
            "end": format_iso8601(s.end),
            "bytes": s.bytes,
            "frames": s.frames,
            "recording": s.recording,
        })).collect::<Vec<_>>(),
        "bytes": r.bytes,
        "frames": r.frames,
        "export_url": match (first, last) {
            (Some(f), Some(l)) => serde_json::Value::String(format!(
                "http://{host}/api/recordings/{}/export.mp4?from={}&to={}",
                r.camera, format_iso8601(f), format_iso8601(l.saturating_add(1_000))
            )),
            _ => serde_json::Value::Null,
        },
    })
}
