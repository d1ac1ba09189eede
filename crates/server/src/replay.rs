//! ONVIF replay over RTSP (ONVIF Streaming Specification "Replay"; ONVIF-NOTES "Replay"):
//! `rtsp://HOST:PORT/replay/<recording>` serves the store's footage of a camera. DESCRIBE
//! lists the recorded tracks with `a=x-onvif-track`; SETUP works as for live (UDP, TCP
//! interleaved, HTTP tunnel); PLAY takes `Range` (clock or npt), `Scale`, `Rate-Control`,
//! `Frames` and `Immediate`; PAUSE stops and a later PLAY without `Range` resumes.
//!
//! Which units go out, in which order and with which flags is decided by
//! [`ipcamd_store::replay`]; this module parses the PLAY headers, answers, and runs the
//! pump: a task that asks the selection for batches (store reads run on the blocking pool),
//! waits as [`Pacing`] says when `Rate-Control: yes`, packetizes each unit and writes it
//! with the 0xABAC header extension on the unit's first packet. Hand-written (no crate
//! does ONVIF replay).
//!
//! Choices where the standard leaves room (README "Replay"):
//! - RTP timestamps are the recorded media timestamps with `Rate-Control: no` and in
//!   reverse; forward with `Rate-Control: yes` they advance in playback time (recorded
//!   distance / Scale), so a plain RTSP client plays at the requested speed.
//! - RTCP sender reports every 5 s: NTP and RTP timestamps 0 with `Rate-Control: no` and
//!   in reverse (as ONVIF says), a real mapping otherwise.
//! - A PLAY while a delivery is in progress is queued (RFC 2326 §10.5) unless it says
//!   `Immediate: yes`, which stops the delivery at a packet boundary and starts the new
//!   one at once with D set on its first unit. A queued PLAY's RTP-Info carries no seq or
//!   rtptime (they are not known yet): its CSeq byte marks where its data begins.
//! - PAUSE and `Immediate` stop the pump cooperatively, never in the middle of a packet
//!   on a TCP connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ipcamd_proto::codec::{MediaKind, TrackInfo};
use ipcamd_proto::packet::{packetizer_for, Packetizer, RtpPayload, DEFAULT_MAX_PAYLOAD};
use ipcamd_proto::rtcp::{write_sender_report, SenderReport};
use ipcamd_proto::rtp::{write_rtp, OnvifReplayExt, RtpExtension, RtpHeader};
use ipcamd_proto::rtsp::headers::{
    format_rtp_info, format_scale, parse_frames, parse_immediate, parse_range, parse_rate_control,
    parse_scale, Frames, NptTime, Range, RateControl, RtpInfo,
};
use ipcamd_proto::rtsp::message::{write_interleaved, Request, Response};
use ipcamd_proto::sdp::{SdpFormat, SdpMedia, SdpSession};
use ipcamd_proto::time::{format_iso8601, unix_micros_to_ntp, UnixMicros};
use ipcamd_store::replay::{Batch, FrameFilter, Pacing, Replay, ReplayParams, ReplayUnit};
use ipcamd_store::{Direction, SectionInfo, Store};

use crate::delivery::{send_rtcp, write_all_vectored};
use crate::session::{Session, StopSignal, TrackTransport};
use crate::state::{lock, ServerState};

/// The ONVIF replay feature tag (accepted in `Require` on replay URLs).
pub const REPLAY_TAG: &str = "onvif-replay";
/// Path prefix of replay URLs.
pub const REPLAY_PREFIX: &str = "replay";

/// Units and bytes asked of the selection per batch.
const BATCH_UNITS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// How often a delivery at the live edge of a growing recording looks for new footage.
const GROWING_POLL: Duration = Duration::from_millis(200);
const SR_INTERVAL: Duration = Duration::from_secs(5);

/// A recording as a replay URL names it.
pub struct ReplayMedia {
    pub name: String,
    pub tracks: Vec<TrackInfo>,
}

/// The recording `name`, or the response to give when there is none.
pub fn media(state: &ServerState, name: &str) -> Result<Arc<ReplayMedia>, Response> {
    let Some(store) = &state.store else {
        return Err(Response::with_reason(
            404,
            "Not Found (replay needs recording: this server has no store)",
        ));
    };
    match store.recording(name) {
        Ok(Some(info)) if !info.sections.is_empty() => Ok(Arc::new(ReplayMedia {
            name: name.to_owned(),
            tracks: info.tracks,
        })),
        Ok(_) => Err(Response::with_reason(
            404,
            format!("Not Found (no recording named {name})"),
        )),
        Err(e) => {
            tracing::warn!(recording = name, error = %e, "store lookup failed");
            Err(Response::with_reason(
                500,
                "Internal Server Error (the recording index could not be read)",
            ))
        }
    }
}

/// The ONVIF track tokens: `VIDEO001`, `AUDIO001`, ... numbered per kind in track order.
pub fn track_tokens(tracks: &[TrackInfo]) -> Vec<String> {
    let (mut v, mut a) = (0, 0);
    tracks
        .iter()
        .map(|t| match t.kind() {
            MediaKind::Video => {
                v += 1;
                format!("VIDEO{v:03}")
            }
            MediaKind::Audio => {
                a += 1;
                format!("AUDIO{a:03}")
            }
        })
        .collect()
}

/// DESCRIBE of a recording.
pub fn describe(
    state: &ServerState,
    media: &ReplayMedia,
    base_url: &str,
    origin_address: String,
) -> Response {
    let sections = sections(state, &media.name).unwrap_or_default();
    let range = match (sections.first(), sections.last()) {
        (Some(first), Some(last)) => Some(if last.recording {
            format!("clock={}-", clock(first.start))
        } else {
            format!("clock={}-{}", clock(first.start), clock(last.end))
        }),
        _ => None,
    };
    let tokens = track_tokens(&media.tracks);
    let sdp = SdpSession {
        origin_id: (ipcamd_media::pacer::now_micros() / 1_000_000) as u64,
        origin_address,
        name: format!("ipcamd replay {}", media.name),
        range,
        attributes: Vec::new(),
        media: media
            .tracks
            .iter()
            .zip(tokens)
            .enumerate()
            .map(|(i, (t, token))| SdpMedia {
                kind: t.kind(),
                formats: vec![SdpFormat::for_track(t)],
                control: format!("trackID={i}"),
                direction: None,
                attributes: vec![format!("x-onvif-track:{token}")],
            })
            .collect(),
    };
    Response::new(200)
        .header("Content-Base", base_url.to_owned())
        .with_body("application/sdp", sdp.to_sdp_string())
}

fn clock(t: UnixMicros) -> String {
    ipcamd_proto::rtsp::headers::format_clock(t)
}

fn sections(state: &ServerState, name: &str) -> Option<Vec<SectionInfo>> {
    let store = state.store.as_ref()?;
    store.recording(name).ok().flatten().map(|r| r.sections)
}

/// What a PLAY asks for, parsed and checked against the recording (no I/O).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    /// `None` without a `Range` header.
    pub start: Option<UnixMicros>,
    pub end: Option<UnixMicros>,
    pub has_range: bool,
    pub scale: f64,
    pub rate_control: RateControl,
    pub frames: Frames,
    pub immediate: bool,
}

impl PlayRequest {
    pub fn direction(&self) -> Direction {
        if self.scale < 0.0 {
            Direction::Reverse
        } else {
            Direction::Forward
        }
    }
}

fn bad(reason: String) -> Response {
    Response::with_reason(400, format!("Bad Request ({reason})"))
}

fn invalid_range(reason: String) -> Response {
    Response::with_reason(457, format!("Invalid Range ({reason})"))
}

/// Parses and checks the PLAY headers of a replay against the recording's sections.
pub fn parse_play(req: &Request, sections: &[SectionInfo]) -> Result<PlayRequest, Response> {
    let header = |name: &str| req.headers.get(name);
    let scale = match header("Scale") {
        Some(v) => parse_scale(v).map_err(|e| bad(e.to_string()))?,
        None => 1.0,
    };
    let rate_control = match header("Rate-Control") {
        Some(v) => parse_rate_control(v).map_err(|e| bad(e.to_string()))?,
        None => RateControl::Yes,
    };
    if rate_control == RateControl::No && scale.abs() != 1.0 {
        return Err(bad(format!(
            "Scale {} with Rate-Control: no; only 1 or -1 are allowed",
            format_scale(scale)
        )));
    }
    let frames = match header("Frames") {
        Some(v) => parse_frames(v).map_err(|e| bad(e.to_string()))?,
        None => Frames::All,
    };
    let immediate = match header("Immediate") {
        Some(v) => parse_immediate(v).map_err(|e| bad(e.to_string()))?,
        None => false,
    };
    let reverse = scale < 0.0;
    let first = sections.first().map(|s| s.start);
    let last = sections.last();
    let (start, end) = match header("Range") {
        None => (None, None),
        Some(v) => {
            let range = parse_range(v).map_err(|e| bad(e.to_string()))?;
            match range {
                Range::Clock { start, end } => (start, end),
                Range::Npt { start, end } => {
                    let origin = first.unwrap_or(0);
                    let at = |t: NptTime| match t {
                        NptTime::Now => last.map_or(origin, |l| l.end),
                        NptTime::Seconds(s) => origin.saturating_add((s * 1e6) as i64),
                    };
                    (Some(at(start)), end.map(at))
                }
            }
        }
    };
    if let (Some(s), Some(e)) = (start, end) {
        if reverse && e > s {
            return Err(invalid_range(format!(
                "a reverse (Scale {}) range must run from the later time to the earlier one",
                format_scale(scale)
            )));
        }
        if !reverse && e < s {
            return Err(invalid_range(
                "the range runs backward; reverse play needs a negative Scale".to_owned(),
            ));
        }
    }
    if let (Some(s), Some(first), Some(last)) = (start, first, last) {
        if !reverse && !last.recording && s > last.end {
            return Err(invalid_range(format!(
                "starts at {} after the end of the recording at {}",
                format_iso8601(s),
                format_iso8601(last.end)
            )));
        }
        if reverse && s < first {
            return Err(invalid_range(format!(
                "starts at {} before the beginning of the recording at {}",
                format_iso8601(s),
                format_iso8601(first)
            )));
        }
    }
    Ok(PlayRequest {
        start,
        end,
        has_range: header("Range").is_some(),
        scale,
        rate_control,
        frames,
        immediate,
    })
}

fn frame_filter(f: Frames) -> FrameFilter {
    match f {
        Frames::All => FrameFilter::All,
        Frames::Predicted => FrameFilter::Predicted,
        Frames::Intra { interval_ms } => FrameFilter::Intra {
            interval_us: interval_ms.map(|ms| i64::from(ms) * 1000),
        },
    }
}

/// RTP numbering and delivery progress of a replay session, shared by the RTSP handler
/// and the pump.
pub struct ReplayCtl {
    media: Arc<ReplayMedia>,
    ssrc: Vec<u32>,
    seq: Vec<u16>,
    /// A delivery is running (not finished).
    busy: bool,
    queue: VecDeque<Job>,
    /// What the last delivery was and how far it got, for a PLAY without Range after PAUSE.
    resume: Option<(ReplayParams, PlayRequest)>,
    last_sent: Option<UnixMicros>,
}

impl ReplayCtl {
    pub fn new(media: Arc<ReplayMedia>) -> ReplayCtl {
        let n = media.tracks.len();
        ReplayCtl {
            media,
            ssrc: (0..n).map(|_| rand::random()).collect(),
            seq: (0..n).map(|_| rand::random()).collect(),
            busy: false,
            queue: VecDeque::new(),
            resume: None,
            last_sent: None,
        }
    }

    pub fn ssrc(&self, track: usize) -> Option<u32> {
        self.ssrc.get(track).copied()
    }
}

/// One PLAY's delivery, ready to run.
pub struct Job {
    /// `None` only while a batch is read on the blocking pool.
    replay: Option<Replay>,
    first: Option<Batch>,
    cseq: u8,
    play: PlayRequest,
}

/// Stops the session's delivery at a packet boundary (PAUSE, `Immediate`); queued PLAYs
/// are dropped.
pub async fn stop(session: &Session) {
    let ctl = lock(&session.state).replay.clone();
    if let Some(ctl) = &ctl {
        let mut c = lock(ctl);
        c.queue.clear();
        c.busy = false;
    }
    session.stop_gracefully().await;
}

/// Starts a delivery; called once the PLAY response is on the wire.
pub type Starter = Box<dyn FnOnce() + Send>;

/// PLAY on a replay session: the response, and what starts the delivery after it is sent.
pub async fn play(
    state: &Arc<ServerState>,
    session: &Arc<Session>,
    req: &Request,
    cseq: u32,
) -> (Response, Option<Starter>) {
    match play_inner(state, session, req, cseq).await {
        Ok((r, s)) => (r, s),
        Err(r) => (r, None),
    }
}

async fn play_inner(
    state: &Arc<ServerState>,
    session: &Arc<Session>,
    req: &Request,
    cseq: u32,
) -> Result<(Response, Option<Starter>), Response> {
    let (ctl, tracks, urls) = {
        let st = lock(&session.state);
        let Some(ctl) = st.replay.clone() else {
            return Err(Response::with_reason(
                455,
                "Method Not Valid in This State (not a replay session)",
            ));
        };
        if st.tracks.is_empty() {
            return Err(Response::with_reason(
                455,
                "Method Not Valid in This State (no track set up)",
            ));
        }
        let tracks: Vec<usize> = st.tracks.keys().copied().collect();
        let urls: Vec<(usize, String)> =
            st.tracks.iter().map(|(&i, t)| (i, t.url.clone())).collect();
        (ctl, tracks, urls)
    };
    let Some(store) = state.store.clone() else {
        return Err(Response::with_reason(
            404,
            "Not Found (this server has no store)",
        ));
    };
    let name = lock(&ctl).media.name.clone();
    let sections = match store.recording(&name) {
        Ok(Some(r)) => r.sections,
        _ => {
            return Err(Response::with_reason(
                404,
                format!("Not Found (no recording named {name})"),
            ))
        }
    };
    let mut play = parse_play(req, &sections)?;
    let (busy, resume) = {
        let c = lock(&ctl);
        (c.busy, c.resume.clone().zip(c.last_sent))
    };
    let mut params = ReplayParams {
        start: play.start,
        end: play.end,
        direction: play.direction(),
        frames: frame_filter(play.frames),
        tracks,
        discontinuity: play.immediate,
        resume_after: None,
    };
    // PLAY without Range after PAUSE: resume where the last delivery stopped, in the
    // direction and mode it had unless this PLAY says otherwise.
    if !play.has_range && !busy {
        if let Some(((prev, prev_play), last)) = resume {
            params = ReplayParams {
                resume_after: Some(last),
                discontinuity: false,
                tracks: params.tracks,
                ..prev
            };
            if req.headers.get("Scale").is_none() {
                play.scale = prev_play.scale;
            }
            if req.headers.get("Rate-Control").is_none() {
                play.rate_control = prev_play.rate_control;
            }
            if req.headers.get("Frames").is_none() {
                play.frames = prev_play.frames;
                params.frames = frame_filter(prev_play.frames);
            }
            params.direction = play.direction();
        }
    }
    let job = prepare(&store, &name, params.clone(), play.clone(), cseq).await?;
    let start_point = job.replay.as_ref().and_then(Replay::start_point);
    let growing = sections.last().is_some_and(|s| s.recording);
    let forward = play.direction() == Direction::Forward;
    if start_point.is_none() && !(growing && forward) {
        return Err(invalid_range(if forward {
            "no footage at or after the start".to_owned()
        } else {
            "no footage at or before the start".to_owned()
        }));
    }
    if let (Some(sp), Some(end)) = (start_point, play.end) {
        if (forward && sp > end) || (!forward && sp < end) {
            return Err(invalid_range(format!(
                "no footage between {} and {}: the nearest starts at {}",
                format_iso8601(play.start.unwrap_or(sp)),
                format_iso8601(end),
                format_iso8601(sp)
            )));
        }
    }
    let queued = busy && !play.immediate;
    let mut infos = Vec::new();
    let mut starter: Option<Starter> = None;
    if queued {
        lock(&ctl).queue.push_back(job);
        infos = urls
            .into_iter()
            .map(|(_, url)| RtpInfo {
                url,
                seq: None,
                rtptime: None,
            })
            .collect();
    } else {
        stop(session).await;
        lock(&session.state).stop = Arc::new(StopSignal::default());
        {
            let mut c = lock(&ctl);
            c.busy = true;
            c.resume = Some((params, play.clone()));
            c.last_sent = None;
            for (i, url) in urls {
                let rtptime = first_units(&job)
                    .find(|u| u.frame.track == i)
                    .map(|u| u.frame.pts as u32);
                infos.push(RtpInfo {
                    url,
                    seq: c.seq.get(i).copied(),
                    rtptime,
                });
            }
        }
        let (state, session2, ctl) = (state.clone(), session.clone(), ctl.clone());
        starter = Some(Box::new(move || {
            let task = tokio::spawn(pump(state, session2.clone(), ctl, job));
            let mut st = lock(&session2.state);
            if st.playing {
                st.play_task = Some(task);
            } else {
                task.abort(); // paused or torn down in between
            }
        }));
    }
    lock(&session.state).playing = true;
    let shown_start = start_point.or(play.start);
    let mut resp = Response::new(200);
    if let Some(s) = shown_start {
        let end = play.end;
        resp = resp.header(
            "Range",
            Range::Clock {
                start: Some(s),
                end,
            }
            .to_string(),
        );
    }
    let resp = resp
        .header("Scale", format_scale(play.scale))
        .header("Rate-Control", play.rate_control.as_str())
        .header("RTP-Info", format_rtp_info(&infos));
    Ok((resp, starter))
}

fn first_units(job: &Job) -> impl Iterator<Item = &ReplayUnit> {
    match &job.first {
        Some(Batch::Units(u)) => u.iter(),
        _ => [].iter(),
    }
}

/// Opens a reader, seeks and reads the first batch, on the blocking pool.
async fn prepare(
    store: &Store,
    name: &str,
    params: ReplayParams,
    play: PlayRequest,
    cseq: u32,
) -> Result<Job, Response> {
    let store = store.clone();
    let name = name.to_owned();
    let res = tokio::task::spawn_blocking(move || {
        let reader = store.reader(&name)?;
        let mut replay = Replay::start(reader, params)?;
        let first = replay.next_batch(BATCH_UNITS, BATCH_BYTES)?;
        Ok::<_, ipcamd_store::StoreError>((replay, first))
    })
    .await;
    match res {
        Ok(Ok((replay, first))) => Ok(Job {
            replay: Some(replay),
            first: Some(first),
            cseq: (cseq & 0xff) as u8,
            play,
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "replay: store read failed");
            Err(Response::with_reason(
                500,
                "Internal Server Error (the recording could not be read)",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "replay: store task failed");
            Err(Response::with_reason(500, "Internal Server Error"))
        }
    }
}

type ReadAhead = tokio::task::JoinHandle<(Replay, Result<Batch, ipcamd_store::StoreError>)>;

/// Starts reading the next batch on the blocking pool (the selection reads files and
/// SQLite); the Replay moves there and back with [`finish_read`].
fn start_read(job: &mut Job) -> std::io::Result<ReadAhead> {
    let mut replay = job
        .replay
        .take()
        .ok_or_else(|| std::io::Error::other("replay state lost"))?;
    Ok(tokio::task::spawn_blocking(move || {
        let b = replay.next_batch(BATCH_UNITS, BATCH_BYTES);
        (replay, b)
    }))
}

fn finish_read(
    job: &mut Job,
    done: Result<(Replay, Result<Batch, ipcamd_store::StoreError>), tokio::task::JoinError>,
) -> std::io::Result<Batch> {
    let (replay, batch) = done.map_err(std::io::Error::other)?;
    job.replay = Some(replay);
    batch.map_err(std::io::Error::other)
}

/// Per-track sending state of one delivery.
struct Out {
    track: usize,
    transport: TrackTransport,
    payload_type: u8,
    clock_rate: u32,
    ssrc: u32,
    seq: u16,
    packetizer: Box<dyn Packetizer>,
    /// First media timestamp of this track in the delivery (forward with Rate-Control:
    /// yes, and reverse).
    anchor: Option<u64>,
    /// Reverse: wallclocks of the first unit of the delivery and of the current GOP.
    rev_anchor: Option<(i64, i64)>,
    last_ts: u32,
    last_sent: Option<Instant>,
    packets: u32,
    octets: u32,
}

/// Runs the session's deliveries (the current one, then queued ones) until the last one
/// finishes, the client's connection fails, or [`stop`] asks.
async fn pump(
    state: Arc<ServerState>,
    session: Arc<Session>,
    ctl: Arc<Mutex<ReplayCtl>>,
    mut job: Job,
) {
    loop {
        match deliver(&state, &session, &ctl, &mut job).await {
            Ok(true) => {}
            Ok(false) => return, // stopped
            Err(e) => {
                tracing::debug!(session = %session.id, error = %e, "replay: client write failed; stopping delivery");
                return;
            }
        }
        let mut c = lock(&ctl);
        match c.queue.pop_front() {
            Some(next) => {
                c.resume = next
                    .replay
                    .as_ref()
                    .map(|r| (r.params().clone(), next.play.clone()));
                c.last_sent = None;
                job = next;
            }
            None => {
                c.busy = false;
                return;
            }
        }
    }
}

/// One delivery. `Ok(true)` when it finished, `Ok(false)` when stopped.
async fn deliver(
    state: &ServerState,
    session: &Session,
    ctl: &Mutex<ReplayCtl>,
    job: &mut Job,
) -> std::io::Result<bool> {
    let (mut outs, stop) = {
        let st = lock(&session.state);
        let c = lock(ctl);
        let outs: Vec<Out> = st
            .tracks
            .iter()
            .filter_map(|(&i, t)| {
                let info = c.media.tracks.get(i)?;
                Some(Out {
                    track: i,
                    transport: t.transport.clone(),
                    payload_type: info.payload_type,
                    clock_rate: info.clock_rate(),
                    ssrc: c.ssrc.get(i).copied().unwrap_or(0),
                    seq: c.seq.get(i).copied().unwrap_or(0),
                    // Room for the 16-byte replay extension in every packet.
                    packetizer: packetizer_for(&info.codec, DEFAULT_MAX_PAYLOAD - 16),
                    anchor: None,
                    rev_anchor: None,
                    last_ts: 0,
                    last_sent: None,
                    packets: 0,
                    octets: 0,
                })
            })
            .collect();
        (outs, st.stop.clone())
    };
    let play = job.play.clone();
    let realtime = play.rate_control == RateControl::Yes;
    let zero_sr = !realtime || play.scale < 0.0;
    let mut pacing = Pacing::new(play.scale);
    let t0 = tokio::time::Instant::now();
    let mut last_sr: Option<Instant> = None;
    let cname = format!("ipcamd-{}", session.path());
    let mut wire = Wire::default();
    let mut ahead: Option<ReadAhead> = None;
    loop {
        if stop.requested() {
            return Ok(false);
        }
        let batch = match (job.first.take(), ahead.take()) {
            (Some(b), _) => b,
            (None, Some(read)) => finish_read(job, read.await)?,
            (None, None) => {
                let read = start_read(job)?;
                finish_read(job, read.await)?
            }
        };
        // Read the next batch on the blocking pool while this one is written (Rate-Control:
        // no is bound by the time of one read plus one write otherwise).
        if matches!(batch, Batch::Units(_)) {
            ahead = Some(start_read(job)?);
        }
        match batch {
            Batch::Units(units) => {
                for u in units {
                    if realtime {
                        if let Some(due) = pacing.due(&u) {
                            let at = t0 + Duration::from_micros(due as u64);
                            if at > tokio::time::Instant::now() {
                                wire.flush(state, session).await?;
                                save_seq(ctl, &outs);
                                tokio::select! {
                                    _ = tokio::time::sleep_until(at) => {}
                                    _ = stop.wake.notified() => {}
                                }
                                if stop.requested() {
                                    return Ok(false);
                                }
                            }
                        }
                    }
                    wire.add(&mut outs, &u, &play, job.cseq);
                    lock(ctl).last_sent = Some(u.frame.wallclock);
                }
                wire.flush(state, session).await?;
                save_seq(ctl, &outs);
            }
            Batch::Waiting => {
                tokio::select! {
                    _ = tokio::time::sleep(GROWING_POLL) => {}
                    _ = stop.wake.notified() => {}
                }
            }
            Batch::Finished => return Ok(true),
        }
        if last_sr.is_none_or(|t| t.elapsed() >= SR_INTERVAL) {
            last_sr = Some(Instant::now());
            let reports: Vec<(TrackTransport, Bytes)> = outs
                .iter()
                .filter(|o| o.packets > 0)
                .map(|o| (o.transport.clone(), sender_report(o, zero_sr, &cname)))
                .collect();
            for (t, sr) in reports {
                send_rtcp(state, &t, sr).await?;
            }
        }
    }
}

fn sender_report(o: &Out, zero: bool, cname: &str) -> Bytes {
    let (ntp, rtp) = if zero {
        (0, 0)
    } else {
        let now = ipcamd_media::pacer::now_micros();
        let elapsed = o.last_sent.map_or(0, |t| t.elapsed().as_micros() as u64);
        let rtp = o
            .last_ts
            .wrapping_add((elapsed * u64::from(o.clock_rate) / 1_000_000) as u32);
        (unix_micros_to_ntp(now), rtp)
    };
    let mut buf = BytesMut::with_capacity(64);
    write_sender_report(
        &mut buf,
        &SenderReport {
            ssrc: o.ssrc,
            ntp,
            rtp_timestamp: rtp,
            packet_count: o.packets,
            octet_count: o.octets,
        },
        cname,
    );
    buf.freeze()
}

/// Packets built but not yet written.
#[derive(Default)]
struct Wire {
    /// Interleaved bytes (`$` framing) for the session's RTSP connection.
    tcp: BytesMut,
    tcp_writer: Option<crate::delivery::Writer>,
    udp: Vec<(std::net::SocketAddr, Bytes)>,
    payloads: Vec<RtpPayload>,
}

impl Wire {
    fn add(&mut self, outs: &mut [Out], u: &ReplayUnit, play: &PlayRequest, cseq: u8) {
        let Some(o) = outs.iter_mut().find(|o| o.track == u.frame.track) else {
            return;
        };
        self.payloads.clear();
        if let Err(e) = o.packetizer.packetize(&u.frame.data, &mut self.payloads) {
            tracing::debug!(track = o.track, error = %e, "replay: unit cannot be packetized; skipped");
            return;
        }
        let pts = u.frame.pts;
        let wc = u.frame.wallclock;
        let ts = if play.scale < 0.0 {
            // Reverse: timestamps run forward in send order, each GOP placed at its
            // distance from the start, its frames at their distance from its keyframe.
            let anchor = *o.anchor.get_or_insert(pts);
            let (first, gop) = o.rev_anchor.get_or_insert((wc, wc));
            if u.flags.discontinuity {
                *gop = wc;
            }
            let us = (*first - *gop).max(0) + (wc - *gop).max(0);
            let d = (us as f64 / play.scale.abs()) as u64 * u64::from(o.clock_rate) / 1_000_000;
            anchor.wrapping_add(d) as u32
        } else if play.rate_control == RateControl::Yes {
            let anchor = *o.anchor.get_or_insert(pts);
            let d = pts.wrapping_sub(anchor) as i64 as f64 / play.scale;
            anchor.wrapping_add(d as i64 as u64) as u32
        } else {
            pts as u32
        };
        let ext = OnvifReplayExt {
            ntp: unix_micros_to_ntp(u.frame.wallclock),
            clean_point: u.flags.clean,
            end: u.flags.end,
            discontinuity: u.flags.discontinuity,
            terminal: u.flags.terminal,
            cseq,
        }
        .to_bytes();
        for (k, p) in self.payloads.iter().enumerate() {
            let header = RtpHeader {
                payload_type: o.payload_type,
                marker: p.marker,
                sequence: o.seq,
                timestamp: ts.wrapping_add(p.ts_offset),
                ssrc: o.ssrc,
                extension: (k == 0).then_some(RtpExtension {
                    profile: OnvifReplayExt::PROFILE,
                    data: &ext,
                }),
            };
            o.seq = o.seq.wrapping_add(1);
            o.packets = o.packets.wrapping_add(1);
            o.octets = o.octets.wrapping_add(p.data.len() as u32);
            match &o.transport {
                TrackTransport::Interleaved {
                    writer,
                    rtp_channel,
                    ..
                } => {
                    if self.tcp_writer.is_none() {
                        self.tcp_writer = Some(writer.clone());
                    }
                    let len = 12 + if k == 0 { 16 } else { 0 } + p.data.len();
                    self.tcp.put_slice(&write_interleaved(*rtp_channel, len));
                    write_rtp(&header, &p.data, &mut self.tcp);
                }
                TrackTransport::Udp { rtp, .. } => {
                    let mut b = BytesMut::with_capacity(28 + p.data.len());
                    write_rtp(&header, &p.data, &mut b);
                    self.udp.push((*rtp, b.freeze()));
                }
            }
        }
        o.last_ts = ts;
        o.last_sent = Some(Instant::now());
    }

    async fn flush(&mut self, state: &ServerState, session: &Session) -> std::io::Result<()> {
        if !self.tcp.is_empty() {
            if let Some(w) = &self.tcp_writer {
                let data = self.tcp.split().freeze();
                let mut g = w.lock().await;
                let mut slices = [std::io::IoSlice::new(&data)];
                write_all_vectored(&mut **g, &mut slices).await?;
                tokio::io::AsyncWriteExt::flush(&mut **g).await?;
                drop(g);
                session.touch();
            }
        }
        for (addr, p) in self.udp.drain(..) {
            state.udp.send_rtp(&p, addr).await?;
        }
        Ok(())
    }
}

/// Records the next sequence numbers (after a flush) for RTP-Info of the next PLAY.
fn save_seq(ctl: &Mutex<ReplayCtl>, outs: &[Out]) {
    let mut c = lock(ctl);
    for o in outs {
        if let Some(s) = c.seq.get_mut(o.track) {
            *s = o.seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_proto::rtsp::message::{Decoder, Frame, Limits};

    fn request(headers: &str) -> Request {
        let text = format!("PLAY rtsp://h/replay/cam1/ RTSP/1.0\r\nCSeq: 5\r\n{headers}\r\n");
        let mut buf = BytesMut::from(text.as_bytes());
        match Decoder::new(Limits::default()).decode(&mut buf) {
            Ok(Some(Frame::Request(r))) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const T: UnixMicros = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    fn sections(recording: bool) -> Vec<SectionInfo> {
        vec![
            SectionInfo {
                id: 1,
                start: T,
                end: T + 60_000_000,
                bytes: 1,
                frames: 1,
                recording: false,
                tracks: Vec::new(),
            },
            SectionInfo {
                id: 2,
                start: T + 120_000_000,
                end: T + 180_000_000,
                bytes: 1,
                frames: 1,
                recording,
                tracks: Vec::new(),
            },
        ]
    }

    fn status(r: Result<PlayRequest, Response>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn play_headers_good() {
        let p = parse_play(
            &request("Range: clock=20260101T000130Z-20260101T000030Z\r\nScale: -1\r\nFrames: intra\r\nRate-Control: no\r\n"),
            &sections(false),
        )
        .unwrap();
        assert_eq!(p.start, Some(T + 90_000_000));
        assert_eq!(p.end, Some(T + 30_000_000));
        assert_eq!(p.direction(), Direction::Reverse);
        assert_eq!(p.rate_control, RateControl::No);
        assert_eq!(p.frames, Frames::Intra { interval_ms: None });
        assert!(!p.immediate);
        // GStreamer's first PLAY in ONVIF mode: from 1900, i.e. the beginning.
        let p = parse_play(
            &request("Range: clock=19000101T000000Z-\r\nRate-Control: no\r\n"),
            &sections(false),
        )
        .unwrap();
        assert_eq!(p.direction(), Direction::Forward);
        // npt is relative to the start of the recording.
        let p = parse_play(
            &request("Range: npt=10-20.5\r\nScale: 2\r\nImmediate: yes\r\n"),
            &sections(false),
        )
        .unwrap();
        assert_eq!(
            (p.start, p.end),
            (Some(T + 10_000_000), Some(T + 20_500_000))
        );
        assert!(p.immediate);
        assert_eq!(p.scale, 2.0);
        // Nothing: resume / from the beginning.
        let p = parse_play(&request(""), &sections(false)).unwrap();
        assert!(!p.has_range && p.start.is_none());
    }

    #[test]
    fn play_headers_bad() {
        let s = sections(false);
        for (h, want) in [
            ("Scale: 2\r\nRate-Control: no\r\n", 400),
            ("Scale: 0\r\n", 400),
            ("Scale: fast\r\n", 400),
            ("Rate-Control: maybe\r\n", 400),
            ("Frames: intra/abc\r\n", 400),
            ("Frames: predicted/100\r\n", 400),
            ("Immediate: perhaps\r\n", 400),
            ("Range: clock=2026-\r\n", 400),
            ("Range: smpte=0-\r\n", 400),
            // Direction of the range against Scale.
            ("Range: clock=20260101T000130Z-20260101T000030Z\r\n", 457),
            (
                "Range: clock=20260101T000030Z-20260101T000130Z\r\nScale: -1\r\n",
                457,
            ),
            // Outside the recording.
            ("Range: clock=20260101T010000Z-\r\n", 457),
            ("Range: clock=20251231T230000Z-\r\nScale: -1\r\n", 457),
        ] {
            assert_eq!(status(parse_play(&request(h), &s)), want, "{h:?}");
        }
        // A growing recording: a start after its current end is fine going forward.
        assert_eq!(
            status(parse_play(
                &request("Range: clock=20260101T010000Z-\r\n"),
                &sections(true)
            )),
            200
        );
    }

    #[test]
    fn tokens_number_per_kind() {
        use ipcamd_proto::codec::CodecParams;
        let v = TrackInfo::new(CodecParams::Jpeg, 96);
        let a = TrackInfo::new(
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            },
            0,
        );
        assert_eq!(
            track_tokens(&[v.clone(), a.clone(), a, v]),
            ["VIDEO001", "AUDIO001", "AUDIO002", "VIDEO002"]
        );
    }
}
