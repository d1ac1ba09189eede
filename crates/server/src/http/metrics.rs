//! `GET /metrics`: the server's counters in the Prometheus text exposition format
//! (version 0.0.4); the list of metrics and what each means is docs/metrics.md.
//!
//! Written by hand rather than with the `prometheus-client` crate: every counter already
//! lives where it is counted (atomics in [`crate::stats`], the fan-out's `StreamStats`,
//! the limit, auth and talk counters), and the crate wants its own metric objects in a
//! registry, so using it would mean counting everything twice or writing a custom
//! collector per source anyway. The format itself is a few lines per family
//! ([`Exposition`]); the test `crates/ipcamd/tests/metrics.rs` checks it with Python
//! `prometheus_client`'s parser.
//!
//! Nothing here counts: a scrape reads the counters where they are, the store's per-camera
//! totals through the store's own threads, and the process figures from `/proc/self`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use ipcamd_media::fanout::StreamStats;
use ipcamd_media::ingest::TrackCounters;

use super::api::Api;
use super::message::HttpResponse;
use crate::talk::TalkStats;

pub use super::api::MetricsOptions;

/// A metric's type as the `# TYPE` line says it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Writes the text format: one `# HELP` and `# TYPE` per family, then its samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family. Counter names end in `_total` (the samples use the same name).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the family just started.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<f64>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let v: f64 = value.into();
        let _ = writeln!(self.out, " {v}");
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<f64>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A counter value as a sample value (exact below 2^53).
pub fn n(v: u64) -> f64 {
    v as f64
}

/// What `/proc/self` says about this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFigures {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

/// Reads the process figures (Linux `/proc`; elsewhere every field is `None`).
pub fn process_figures() -> ProcessFigures {
    let mut f = ProcessFigures::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        f.resident_bytes = kb("VmRSS:").map(|k| k * 1024);
        f.virtual_bytes = kb("VmSize:").map(|k| k * 1024);
        f.threads = kb("Threads:");
    }
    f.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        let ticks = ticks as f64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // The command name (field 2) may hold spaces: count fields after its ')'.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // Fields 14 utime, 15 stime, 22 starttime (1-based; index 0 here is field 3).
            let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (field(14), field(15)) {
                f.cpu_seconds = Some((u + s) as f64 / ticks);
            }
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
            if let (Some(start), Some(boot)) = (field(22), boot) {
                f.start_time_seconds = Some(boot as f64 + start as f64 / ticks);
            }
        }
    }
    f
}

/// Writes the process families (the names the Prometheus client libraries use).
pub fn write_process(e: &mut Exposition, f: &ProcessFigures) {
    if let Some(v) = f.resident_bytes {
        e.single(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            n(v),
        );
    }
    if let Some(v) = f.virtual_bytes {
        e.single(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
            n(v),
        );
    }
    if let Some(v) = f.open_fds {
        e.single(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            n(v),
        );
    }
    if let Some(v) = f.cpu_seconds {
        e.single(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            v,
        );
    }
    if let Some(v) = f.start_time_seconds {
        e.single(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            v,
        );
    }
    if let Some(v) = f.threads {
        e.single(
            "process_threads",
            Kind::Gauge,
            "Number of OS threads in the process.",
            n(v),
        );
    }
}

/// One counter of a stream's `StreamStats`.
type StatField = fn(&StreamStats) -> &AtomicU64;
/// One counter of a track's receiver.
type TrackField = fn(&TrackCounters) -> u64;

/// The whole exposition: per camera, per server, the recordings, the process.
pub async fn render(api: &Api) -> String {
    use Kind::{Counter, Gauge};
    let g = |a: &AtomicU64| n(a.load(Ordering::Relaxed));
    let mut e = Exposition::default();
    let cameras = api.cameras.sorted();

    // Per camera: the fan-out's counters (`StreamStats`), the same as `/api/stats`.
    e.family(
        "ipcamd_camera_online",
        Gauge,
        "1 when the camera's source delivers, 0 while it is offline (being retried).",
    );
    for c in &cameras {
        let online = c.stream.offline_reason().is_none();
        e.sample(
            "ipcamd_camera_online",
            &[("camera", c.name.as_str())],
            n(u64::from(online)),
        );
    }
    e.family(
        "ipcamd_camera_readers",
        Gauge,
        "Readers of the camera's live fan-out now (live sessions, and the recorder of a recorded camera).",
    );
    for c in &cameras {
        let readers = c.stream.reader_count() as u64;
        e.sample(
            "ipcamd_camera_readers",
            &[("camera", c.name.as_str())],
            n(readers),
        );
    }
    let per_camera: [(&str, &str, StatField); 7] = [
        (
            "ipcamd_camera_frames_in_total",
            "Access units the camera's source delivered.",
            |s| &s.frames_in,
        ),
        (
            "ipcamd_camera_bytes_in_total",
            "Bytes of access units the camera's source delivered.",
            |s| &s.bytes_in,
        ),
        (
            "ipcamd_camera_bytes_out_total",
            "RTP bytes (header and payload) sent to the camera's live readers.",
            |s| &s.bytes_out,
        ),
        (
            "ipcamd_camera_reader_skips_total",
            "Times a slow reader fell behind the live ring and skipped to the next keyframe.",
            |s| &s.reader_skips,
        ),
        (
            "ipcamd_camera_direct_joins_total",
            "Times the camera's writer took a TCP reader that had caught up (it then writes each frame to it directly).",
            |s| &s.direct_joins,
        ),
        (
            "ipcamd_camera_direct_returns_total",
            "Times the camera's writer handed a TCP reader back to its own task (socket full or connection busy).",
            |s| &s.direct_returns,
        ),
        (
            "ipcamd_camera_packetize_errors_total",
            "Access units that could not be packetized (dropped).",
            |s| &s.packetize_errors,
        ),
    ];
    for (name, help, field) in per_camera {
        e.family(name, Counter, help);
        for c in &cameras {
            e.sample(
                name,
                &[("camera", c.name.as_str())],
                g(field(&c.stream.stats)),
            );
        }
    }

    // What a proxied camera's session or a publisher received, per track.
    let received: Vec<(&str, Vec<TrackCounters>)> = cameras
        .iter()
        .map(|c| (c.name.as_str(), c.stream.stats.received()))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let per_track: [(&str, &str, TrackField); 4] = [
        (
            "ipcamd_camera_rtp_packets_received_total",
            "RTP packets a proxied camera or a publisher sent on the track and ipcamd took.",
            |r| r.packets,
        ),
        (
            "ipcamd_camera_rtp_packets_malformed_total",
            "RTP packets of the track that did not parse or depacketize (dropped).",
            |r| r.malformed,
        ),
        (
            "ipcamd_camera_rtp_packets_foreign_total",
            "RTP packets on the track's channel or port of another SSRC or payload type (dropped).",
            |r| r.foreign,
        ),
        (
            "ipcamd_camera_lossy_units_total",
            "Access units of the track that RTP packet loss damaged (delivered, flagged).",
            |r| r.lossy_units,
        ),
    ];
    for (name, help, field) in per_track {
        if received.is_empty() {
            break;
        }
        e.family(name, Counter, help);
        for (cam, tracks) in &received {
            for (t, r) in tracks.iter().enumerate() {
                let track = t.to_string();
                e.sample(name, &[("camera", cam), ("track", &track)], n(field(r)));
            }
        }
    }

    // Talk (backchannel) counters of the cameras that have one.
    let talking: Vec<(&str, &TalkStats)> = cameras
        .iter()
        .filter_map(|c| Some((c.name.as_str(), &*c.backchannel.as_ref()?.stats)))
        .collect();
    if !talking.is_empty() {
        e.family(
            "ipcamd_talk_sessions_total",
            Counter,
            "Talk (backchannel) sessions started.",
        );
        for (cam, t) in &talking {
            e.sample(
                "ipcamd_talk_sessions_total",
                &[("camera", *cam)],
                g(&t.sessions),
            );
        }
        e.family(
            "ipcamd_talk_sessions",
            Gauge,
            "Talk (backchannel) sessions running now.",
        );
        for (cam, t) in &talking {
            e.sample("ipcamd_talk_sessions", &[("camera", *cam)], g(&t.open));
        }
        e.family(
            "ipcamd_talk_packets_received_total",
            Counter,
            "Backchannel RTP packets received (dropped ones included).",
        );
        for (cam, t) in &talking {
            e.sample(
                "ipcamd_talk_packets_received_total",
                &[("camera", *cam)],
                g(&t.received),
            );
        }
        e.family(
            "ipcamd_talk_packets_dropped_total",
            Counter,
            "Backchannel RTP packets dropped, by reason.",
        );
        for (cam, t) in &talking {
            for (reason, v) in [
                ("before_play", &t.before_play),
                ("queue_full", &t.queue_full),
                ("unknown_payload_type", &t.unknown_payload_type),
                ("rate_limit", &t.rate_limited),
            ] {
                e.sample(
                    "ipcamd_talk_packets_dropped_total",
                    &[("camera", *cam), ("reason", reason)],
                    g(v),
                );
            }
        }
    }

    // Recordings: the store's totals (read on the store's threads), the recorders' drops.
    if let Some(store) = api.store.as_ref().map(ipcamd_store::Store::to_async) {
        match store.recordings().await {
            Ok(list) => {
                e.family(
                    "ipcamd_recording_bytes",
                    Gauge,
                    "Bytes of footage stored for the camera.",
                );
                for r in &list {
                    e.sample(
                        "ipcamd_recording_bytes",
                        &[("camera", r.camera.as_str())],
                        n(r.bytes),
                    );
                }
                e.family(
                    "ipcamd_recording_sections",
                    Gauge,
                    "Sections (continuous stretches) of the camera's recording.",
                );
                for r in &list {
                    e.sample(
                        "ipcamd_recording_sections",
                        &[("camera", r.camera.as_str())],
                        n(r.sections.len() as u64),
                    );
                }
                e.family(
                    "ipcamd_recording_frames",
                    Gauge,
                    "Frames stored for the camera.",
                );
                for r in &list {
                    e.sample(
                        "ipcamd_recording_frames",
                        &[("camera", r.camera.as_str())],
                        n(r.frames),
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "/metrics: cannot read the recordings"),
        }
        e.family(
            "ipcamd_recording_dropped_frames_total",
            Counter,
            "Frames a running recording dropped because the disk was behind.",
        );
        for (cam, status) in &api.recording_status {
            e.sample(
                "ipcamd_recording_dropped_frames_total",
                &[("camera", cam.as_str())],
                g(&status.dropped),
            );
        }
        e.family(
            "ipcamd_recording_stopped",
            Gauge,
            "1 while the store cannot write a recorded camera's footage (disk full, read-only \
             or unwritable folder, ...: /api/stats recording_error says why).",
        );
        for (cam, status) in &api.recording_status {
            e.sample(
                "ipcamd_recording_stopped",
                &[("camera", cam.as_str())],
                n(u64::from(status.stopped_reason().is_some())),
            );
        }
    }

    // Server-wide.
    let c = &api.counters;
    e.single(
        "ipcamd_connections_open",
        Gauge,
        "Connections open now on every port (RTSP, HTTP, RTSPS, HTTPS).",
        n(api.admission.open() as u64),
    );
    e.single(
        "ipcamd_http_connections_total",
        Counter,
        "Connections accepted on the HTTP and HTTPS ports.",
        g(&c.connections),
    );
    e.family(
        "ipcamd_sessions",
        Gauge,
        "RTSP sessions open now, by kind (live, replay, publish) and transport (udp, tcp: interleaved or HTTP tunnel, none: no track yet).",
    );
    for ((kind, transport), count) in api.hub.sessions_census() {
        e.sample(
            "ipcamd_sessions",
            &[("kind", kind), ("transport", transport)],
            n(count as u64),
        );
    }
    e.single(
        "ipcamd_sessions_created_total",
        Counter,
        "RTSP sessions created.",
        g(&c.sessions_created),
    );
    e.single(
        "ipcamd_sessions_timed_out_total",
        Counter,
        "RTSP sessions closed because nothing kept them alive.",
        g(&c.sessions_timed_out),
    );
    e.family(
        "ipcamd_requests_total",
        Counter,
        "Requests answered, by protocol, method and status.",
    );
    for ((protocol, method, status), count) in c.requests.snapshot() {
        let status = status.to_string();
        e.sample(
            "ipcamd_requests_total",
            &[
                ("protocol", protocol),
                ("method", method),
                ("status", status.as_str()),
            ],
            n(count),
        );
    }
    e.single(
        "ipcamd_rtsp_malformed_requests_total",
        Counter,
        "RTSP requests that could not be parsed (answered 400).",
        g(&c.bad_requests),
    );
    let udp = &api.hub.udp;
    e.single(
        "ipcamd_udp_rtp_sends_total",
        Counter,
        "System calls that sent RTP over UDP (one can carry a frame's packets).",
        g(&udp.rtp_sends),
    );
    e.single(
        "ipcamd_udp_rtp_packets_total",
        Counter,
        "RTP packets sent over UDP.",
        g(&udp.rtp_packets),
    );
    e.single(
        "ipcamd_udp_send_errors_total",
        Counter,
        "UDP sends that failed (counted, never fatal).",
        g(&udp.send_errors),
    );
    e.family(
        "ipcamd_limit_hits_total",
        Counter,
        "Times a [limits] limit was hit, by limit.",
    );
    for (limit, count) in api.limit_counters.named() {
        e.sample("ipcamd_limit_hits_total", &[("limit", limit)], n(count));
    }
    e.family(
        "ipcamd_auth_refusals_total",
        Counter,
        "Requests refused by authentication, by reason.",
    );
    let a = &api.auth.counters;
    for (reason, v) in [
        ("unauthorized", &a.unauthorized),
        ("forbidden", &a.forbidden),
        ("stale", &a.stale),
        ("bad_request", &a.bad),
    ] {
        e.sample("ipcamd_auth_refusals_total", &[("reason", reason)], g(v));
    }
    e.single(
        "ipcamd_replay_deliveries_total",
        Counter,
        "Replay deliveries started (a PLAY of recorded footage).",
        g(&c.replay_deliveries),
    );
    e.single(
        "ipcamd_rtcp_received_total",
        Counter,
        "RTCP compound packets received from clients.",
        g(&c.rtcp_received),
    );
    e.single(
        "ipcamd_rtcp_malformed_total",
        Counter,
        "RTCP packets from clients that could not be parsed.",
        g(&c.rtcp_malformed),
    );
    e.single(
        "ipcamd_udp_unknown_source_total",
        Counter,
        "UDP datagrams from an address no session knows.",
        g(&c.udp_unknown_source),
    );

    if let Some(w) = &api.webrtc {
        let st = &w.stats;
        e.single(
            "ipcamd_webrtc_peers",
            Gauge,
            "WebRTC (WHEP) peers now.",
            w.peers() as f64,
        );
        for (name, help, v) in [
            (
                "ipcamd_webrtc_peers_created_total",
                "WHEP sessions created (answered offers).",
                &st.peers_created,
            ),
            (
                "ipcamd_webrtc_peers_connected_total",
                "WHEP sessions whose ICE and DTLS completed.",
                &st.peers_connected,
            ),
            (
                "ipcamd_webrtc_frames_sent_total",
                "Video and audio frames sent to WebRTC peers.",
                &st.frames_sent,
            ),
            (
                "ipcamd_webrtc_sent_bytes_total",
                "Bytes of UDP datagrams sent to WebRTC peers (SRTP, RTCP, ICE, DTLS).",
                &st.bytes_sent,
            ),
            (
                "ipcamd_webrtc_datagrams_unrouted_total",
                "UDP datagrams on the WebRTC port that matched no peer (dropped).",
                &st.datagrams_unrouted,
            ),
            (
                "ipcamd_webrtc_talk_packets_total",
                "Opus packets from browsers handed to a camera's backchannel.",
                &st.talk_packets,
            ),
        ] {
            e.single(name, Counter, help, g(v));
        }
    }

    write_process(&mut e, &process_figures());
    e.finish()
}

/// The answer to `GET /metrics` (the caller checked `[metrics] enabled` and access).
pub async fn response(api: &Api) -> HttpResponse {
    HttpResponse::new(
        200,
        "OK",
        "text/plain; version=0.0.4; charset=utf-8",
        render(api).await.into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_proto::tunnel::HttpRequestHead;

    #[test]
    fn escapes_labels_and_help() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "a \\ b\nc");
        e.sample("x_total", &[("camera", "a\"b\\c\nd")], 3.0);
        e.sample("x_total", &[("camera", "z"), ("why", "y")], n(7));
        assert_eq!(
            e.finish(),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{camera=\"a\\\"b\\\\c\\nd\"} 3\n\
             x_total{camera=\"z\",why=\"y\"} 7\n"
        );
    }

    #[test]
    fn process_figures_on_linux() {
        let f = process_figures();
        if cfg!(target_os = "linux") {
            assert!(f.resident_bytes.unwrap_or(0) > 0);
            assert!(f.open_fds.unwrap_or(0) > 0);
            assert!(f.cpu_seconds.is_some());
        }
    }

    #[test]
    fn bearer_token() {
        let head = |auth: &str| HttpRequestHead {
            method: "GET".into(),
            path: "/metrics".into(),
            version: "HTTP/1.1".into(),
            headers: {
                let mut h = ipcamd_proto::rtsp::message::Headers::new();
                h.append("Authorization", auth);
                h
            },
        };
        let o = MetricsOptions {
            enabled: true,
            token: Some("s3cret".into()),
        };
        assert!(o.token_matches(&head("Bearer s3cret")));
        assert!(o.token_matches(&head("bearer  s3cret ")));
        assert!(!o.token_matches(&head("Bearer s3cre")));
        assert!(!o.token_matches(&head("Basic s3cret")));
        let off = MetricsOptions {
            enabled: true,
            token: None,
        };
        assert!(!off.token_matches(&head("Bearer s3cret")));
    }
}
