//! The ONVIF replay pump (docs/onvif.md "Replay"; docs/replay.md): sends what the store's
//! replay selection ([`ipcamd_store::replay`]) picks, paced as [`Pacing`] says with
//! `Rate-Control: yes` or as fast as the transport takes it with `no`, each unit packetized
//! with the 0xABAC header extension on every packet (D on the first, T on the last). The PLAY rules (headers, queueing,
//! `Immediate`, resume after PAUSE) are the session core's
//! (`ipcamd_proto::rtsp::server::replay`); this is the I/O half. Hand-written (no crate
//! does ONVIF replay).
//!
//! Choices where the standard leaves room (README "Replay"):
//! - RTP timestamps are the recorded media timestamps with `Rate-Control: no` and in
//!   reverse; forward with `Rate-Control: yes` they advance in playback time (recorded
//!   distance / Scale), so a plain RTSP client plays at the requested speed.
//! - RTCP sender reports every 5 s: NTP and RTP timestamps 0 with `Rate-Control: no` and
//!   in reverse (as ONVIF says), a real mapping otherwise.
//! - A stop (PAUSE, `Immediate`) is cooperative, never in the middle of a packet on a TCP
//!   connection.
//!
//! Store reads (SQLite and segment files) run on the blocking pool, and so does the
//! packetization of what they read (for H.264 and H.265 a scan of every byte for start
//! codes): the next batch is read and packetized while the current one is written, so the
//! pump's thread only builds headers and writes.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::packet::{packetizer_for, Packetizer, RtpPayload, DEFAULT_MAX_PAYLOAD};
use ipcamd_proto::rtp::{replay_ext_with_jpeg, write_rtp, OnvifReplayExt, RtpExtension, RtpHeader};
use ipcamd_proto::rtsp::headers::{Frames, RateControl};
use ipcamd_proto::rtsp::message::{write_interleaved, Response};
use ipcamd_proto::rtsp::server::{PlayDirection, PlayRequest, ReplayRequest, ReplayStart};
use ipcamd_proto::time::unix_micros_to_ntp;
use ipcamd_store::replay::{Batch, FrameFilter, Pacing, Replay, ReplayParams, ReplayUnit};
use ipcamd_store::{Direction, Store};

use super::rtcp::SrState;
use super::udp::UdpPair;
use super::wire::{send_rtcp, write_all_vectored, Sink, TrackSink, Writer};
use super::{Delivery, Progress, SessionHooks, StopSignal};
use crate::sync::lock;

/// Units and bytes asked of the selection per batch.
const BATCH_UNITS: usize = 64;
const BATCH_BYTES: usize = 1 << 20;
/// How often a delivery at the live edge of a growing recording looks for new footage.
const GROWING_POLL: Duration = Duration::from_millis(200);
const SR_INTERVAL: Duration = Duration::from_secs(5);

fn frame_filter(f: Frames) -> FrameFilter {
    match f {
        Frames::All => FrameFilter::All,
        Frames::Predicted => FrameFilter::Predicted,
        Frames::Intra { interval_ms } => FrameFilter::Intra {
            interval_us: interval_ms.map(|ms| i64::from(ms) * 1000),
        },
    }
}

/// The store's parameters for a delivery the session core asked for.
pub fn params(r: &ReplayRequest) -> ReplayParams {
    ReplayParams {
        start: r.play.start,
        end: r.play.end,
        direction: match r.play.direction() {
            PlayDirection::Forward => Direction::Forward,
            PlayDirection::Reverse => Direction::Reverse,
        },
        frames: frame_filter(r.play.frames),
        tracks: r.tracks.clone(),
        discontinuity: r.discontinuity,
        resume_after: r.resume_after,
    }
}

/// RTP numbering of one replay session (sequence numbers keep increasing across its
/// deliveries), and the deliveries queued behind the running one.
pub struct ReplayState {
    /// Next sequence number per recorded track.
    seqs: Mutex<Vec<u16>>,
    queue: Mutex<VecDeque<Job>>,
    tracks: Vec<TrackInfo>,
}

impl ReplayState {
    pub fn new(tracks: Vec<TrackInfo>) -> Arc<ReplayState> {
        Arc::new(ReplayState {
            seqs: Mutex::new((0..tracks.len()).map(|_| rand::random()).collect()),
            queue: Mutex::new(VecDeque::new()),
            tracks,
        })
    }

    pub fn queue(&self, job: Job) {
        lock(&self.queue).push_back(job);
    }

    pub fn clear_queue(&self) {
        lock(&self.queue).clear();
    }
}

/// One PLAY's delivery, opened and ready to run.
pub struct Job {
    /// `None` only while a batch is read on the blocking pool.
    replay: Option<Replay>,
    first: Option<Batch>,
    play: PlayRequest,
    cseq: u8,
}

/// Opens the recording for `request`, seeks and reads the first batch (on the blocking
/// pool): the job, and what the PLAY answer needs (start point, first RTP timestamps,
/// next sequence numbers), or the error response.
pub async fn open(
    store: &Store,
    recording: &str,
    request: &ReplayRequest,
    state: &ReplayState,
) -> Result<(Job, ReplayStart), Response> {
    let (store, name, p) = (store.clone(), recording.to_owned(), params(request));
    let res = tokio::task::spawn_blocking(move || {
        let reader = store.reader(&name)?;
        let mut replay = Replay::start(reader, p)?;
        let first = replay.next_batch(BATCH_UNITS, BATCH_BYTES)?;
        Ok::<_, ipcamd_store::StoreError>((replay, first))
    })
    .await;
    let (replay, first) = match res {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::warn!(recording, error = %e, "replay: store read failed");
            return Err(Response::with_reason(
                500,
                "Internal Server Error (the recording could not be read)",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "replay: store task failed");
            return Err(Response::with_reason(500, "Internal Server Error"));
        }
    };
    let units: &[ReplayUnit] = match &first {
        Batch::Units(u) => u,
        _ => &[],
    };
    let seqs = lock(&state.seqs);
    let start = ReplayStart {
        start_point: replay.start_point(),
        rtptimes: request
            .tracks
            .iter()
            .filter_map(|&t| {
                let u = units.iter().find(|u| u.frame.track == t)?;
                Some((t, u.frame.pts as u32))
            })
            .collect(),
        seqs: request
            .tracks
            .iter()
            .filter_map(|&t| Some((t, *seqs.get(t)?)))
            .collect(),
    };
    drop(seqs);
    Ok((
        Job {
            replay: Some(replay),
            first: Some(first),
            play: request.play.clone(),
            cseq: request.cseq,
        },
        start,
    ))
}

/// What a replay delivery needs.
pub struct ReplayDelivery {
    pub session: String,
    pub tracks: Vec<TrackSink>,
    pub state: Arc<ReplayState>,
    pub udp: Arc<UdpPair>,
    pub hooks: Arc<dyn SessionHooks>,
    /// RTCP CNAME.
    pub cname: String,
    /// The session core's number of this delivery.
    pub number: u64,
}

/// Starts running `job`, then the jobs queued behind it, until the last one finishes, the
/// client's connection fails, or the delivery is stopped.
pub fn spawn(d: ReplayDelivery, job: Job) -> Delivery {
    let stop = Arc::new(StopSignal::default());
    let progress = Arc::new(Progress::default());
    let number = d.number;
    let task = tokio::spawn(pump(d, job, stop.clone(), progress.clone()));
    Delivery {
        number,
        stop,
        progress,
        task,
    }
}

async fn pump(d: ReplayDelivery, mut job: Job, stop: Arc<StopSignal>, progress: Arc<Progress>) {
    loop {
        match deliver(&d, &mut job, &stop, &progress).await {
            Ok(true) => {}
            Ok(false) => return, // stopped
            Err(e) => {
                tracing::debug!(session = %d.session, error = %e, "replay: client write failed; stopping delivery");
                return;
            }
        }
        if !d
            .hooks
            .replay_finished(&d.session, d.number, progress.get())
        {
            return;
        }
        match lock(&d.state.queue).pop_front() {
            Some(next) => job = next,
            None => return,
        }
    }
}

/// The packetizers of one delivery's tracks, by recorded track.
struct Packers(Vec<(usize, Box<dyn Packetizer>)>);

/// A batch's units, packetized: the payloads of unit `k` are `payloads[ranges[k]]`, empty
/// when the unit could not be packetized (it is skipped).
#[derive(Default)]
struct Packed {
    payloads: Vec<RtpPayload>,
    ranges: Vec<Range<usize>>,
}

impl Packers {
    fn pack(&mut self, batch: &Batch) -> Packed {
        let mut p = Packed::default();
        let Batch::Units(units) = batch else {
            return p;
        };
        p.ranges.reserve(units.len());
        for u in units {
            let start = p.payloads.len();
            if let Some((_, packer)) = self.0.iter_mut().find(|(t, _)| *t == u.frame.track) {
                if let Err(e) = packer.packetize(&u.frame.data, &mut p.payloads) {
                    tracing::debug!(track = u.frame.track, error = %e, "replay: unit cannot be packetized; skipped");
                    p.payloads.truncate(start);
                }
            }
            p.ranges.push(start..p.payloads.len());
        }
        p
    }
}

type Read = (
    Replay,
    Packers,
    Result<(Batch, Packed), ipcamd_store::StoreError>,
);
type ReadAhead = tokio::task::JoinHandle<Read>;

/// Starts reading and packetizing the next batch on the blocking pool (the selection reads
/// files and SQLite); the Replay and the packetizers move there and back with
/// [`finish_read`].
fn start_read(job: &mut Job, packers: &mut Option<Packers>) -> std::io::Result<ReadAhead> {
    let lost = || std::io::Error::other("replay state lost");
    let mut replay = job.replay.take().ok_or_else(lost)?;
    let mut packers = packers.take().ok_or_else(lost)?;
    Ok(tokio::task::spawn_blocking(move || {
        let b = replay.next_batch(BATCH_UNITS, BATCH_BYTES).map(|b| {
            let p = packers.pack(&b);
            (b, p)
        });
        (replay, packers, b)
    }))
}

fn finish_read(
    job: &mut Job,
    packers: &mut Option<Packers>,
    done: Result<Read, tokio::task::JoinError>,
) -> std::io::Result<(Batch, Packed)> {
    let (replay, p, batch) = done.map_err(std::io::Error::other)?;
    job.replay = Some(replay);
    *packers = Some(p);
    batch.map_err(std::io::Error::other)
}

/// Per-track sending state of one delivery.
struct Out {
    track: usize,
    sink: Sink,
    payload_type: u8,
    clock_rate: u32,
    seq: u16,
    /// First media timestamp of this track in the delivery (forward with Rate-Control:
    /// yes, and reverse).
    anchor: Option<u64>,
    /// Reverse: wallclocks of the first unit of the delivery and of the current GOP.
    rev_anchor: Option<(i64, i64)>,
    sr: SrState,
}

/// One delivery. `Ok(true)` when it finished, `Ok(false)` when stopped.
async fn deliver(
    d: &ReplayDelivery,
    job: &mut Job,
    stop: &StopSignal,
    progress: &Progress,
) -> std::io::Result<bool> {
    let mut outs: Vec<Out> = {
        let seqs = lock(&d.state.seqs);
        d.tracks
            .iter()
            .filter_map(|t| {
                let info = d.state.tracks.get(t.track)?;
                Some(Out {
                    track: t.track,
                    sink: t.sink.clone(),
                    payload_type: info.payload_type,
                    clock_rate: info.clock_rate(),
                    seq: seqs.get(t.track).copied().unwrap_or(0),
                    anchor: None,
                    rev_anchor: None,
                    sr: SrState::new(t.ssrc, info.clock_rate()),
                })
            })
            .collect()
    };
    let mut packers = Some(Packers(
        d.tracks
            .iter()
            .filter_map(|t| {
                let info = d.state.tracks.get(t.track)?;
                // Room for the 16-byte replay extension in every packet.
                Some((
                    t.track,
                    packetizer_for(&info.codec, DEFAULT_MAX_PAYLOAD - 16),
                ))
            })
            .collect(),
    ));
    let play = job.play.clone();
    let realtime = play.rate_control == RateControl::Yes;
    let zero_sr = !realtime || play.scale < 0.0;
    let mut pacing = Pacing::new(play.scale);
    let t0 = tokio::time::Instant::now();
    let mut last_sr: Option<tokio::time::Instant> = None;
    let mut wire = Wire::default();
    let mut ahead: Option<ReadAhead> = None;
    loop {
        if stop.requested() {
            return Ok(false);
        }
        let (batch, packed) = match (job.first.take(), ahead.take()) {
            (Some(b), _) => {
                let p = packers.as_mut().map(|p| p.pack(&b)).unwrap_or_default();
                (b, p)
            }
            (None, Some(read)) => finish_read(job, &mut packers, read.await)?,
            (None, None) => {
                let read = start_read(job, &mut packers)?;
                finish_read(job, &mut packers, read.await)?
            }
        };
        // Read the next batch on the blocking pool while this one is written (Rate-Control:
        // no is bound by the time of one read plus one write otherwise).
        if matches!(batch, Batch::Units(_)) {
            ahead = Some(start_read(job, &mut packers)?);
        }
        match batch {
            Batch::Units(units) => {
                for (u, range) in units.iter().zip(&packed.ranges) {
                    if realtime {
                        if let Some(due) = pacing.due(u) {
                            let at = t0 + Duration::from_micros(due as u64);
                            if at > tokio::time::Instant::now() {
                                wire.flush(d).await?;
                                save_seq(&d.state, &outs);
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
                    let payloads = packed.payloads.get(range.clone()).unwrap_or(&[]);
                    wire.add(&mut outs, u, payloads, &play, job.cseq);
                    progress.set(u.frame.wallclock);
                }
                wire.flush(d).await?;
                save_seq(&d.state, &outs);
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
            last_sr = Some(tokio::time::Instant::now());
            let now = now_micros();
            let reports: Vec<(Sink, Bytes)> = outs
                .iter()
                .filter(|o| o.sr.packets > 0)
                .filter_map(|o| Some((o.sink.clone(), o.sr.report(now, zero_sr, &d.cname)?)))
                .collect();
            for (sink, sr) in reports {
                send_rtcp(&d.udp, &sink, sr).await?;
            }
        }
    }
}

/// At most this many slices per `writev` (Linux's IOV_MAX).
const MAX_IOVECS: usize = 1024;

/// Packets built but not yet written.
#[derive(Default)]
struct Wire {
    /// The headers (`$` framing, RTP header and extension) of the interleaved packets for
    /// the session's RTSP connection, one after the other.
    heads: BytesMut,
    /// The interleaved packets: (end of the packet's header in `heads`, its payload). The
    /// payload is written from the store's read buffer with `writev`, never copied here.
    tcp: Vec<(usize, Bytes)>,
    tcp_writer: Option<Writer>,
    udp: Vec<(std::net::SocketAddr, Bytes)>,
    /// When the session was last kept alive by a write.
    last_alive: Option<std::time::Instant>,
}

impl Wire {
    /// Adds the packets of unit `u`, whose payloads are `payloads`.
    fn add(
        &mut self,
        outs: &mut [Out],
        u: &ReplayUnit,
        payloads: &[RtpPayload],
        play: &PlayRequest,
        cseq: u8,
    ) {
        let Some(o) = outs.iter_mut().find(|o| o.track == u.frame.track) else {
            return;
        };
        if payloads.is_empty() {
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
        };
        let last = payloads.len().saturating_sub(1);
        for (k, p) in payloads.iter().enumerate() {
            // The replay extension on every packet of the unit (the standard asks for the
            // first; every packet gives GStreamer's rtponvifparse the capture time of the
            // whole unit): D on the first packet only, T on the last only (docs/replay.md
            // "Header extension on every packet"). A JPEG header extension is appended to
            // the first packet's (docs/mjpeg.md).
            let body = OnvifReplayExt {
                discontinuity: ext.discontinuity && k == 0,
                terminal: ext.terminal && k == last,
                ..ext
            }
            .to_bytes();
            let with_jpeg = p
                .header_ext
                .as_ref()
                .filter(|_| k == 0)
                .map(|j| replay_ext_with_jpeg(&body, j));
            let body: &[u8] = with_jpeg.as_deref().unwrap_or(&body);
            let header = RtpHeader {
                payload_type: o.payload_type,
                marker: p.marker,
                sequence: o.seq,
                timestamp: ts.wrapping_add(p.ts_offset),
                ssrc: o.sr.ssrc,
                extension: Some(RtpExtension {
                    profile: OnvifReplayExt::PROFILE,
                    data: body,
                }),
            };
            o.seq = o.seq.wrapping_add(1);
            o.sr.count(p.len());
            match &o.sink {
                Sink::Interleaved {
                    writer,
                    rtp_channel,
                    ..
                } => {
                    if self.tcp_writer.is_none() {
                        self.tcp_writer = Some(writer.clone());
                    }
                    let len = 12 + 4 + body.len() + p.len();
                    self.heads.put_slice(&write_interleaved(*rtp_channel, len));
                    write_rtp(&header, p.head.as_slice(), &mut self.heads);
                    self.tcp.push((self.heads.len(), p.body.clone()));
                }
                Sink::Udp { rtp, .. } => {
                    let mut b = BytesMut::with_capacity(28 + p.len());
                    write_rtp(&header, &[], &mut b);
                    p.write_to(&mut b);
                    self.udp.push((*rtp, b.freeze()));
                }
            }
        }
        o.sr.last = Some((ts, now_micros()));
    }

    async fn flush(&mut self, d: &ReplayDelivery) -> std::io::Result<()> {
        if !self.tcp.is_empty() {
            if let Some(w) = &self.tcp_writer {
                let heads = self.heads.split().freeze();
                let mut g = w.lock().await;
                let mut start = 0;
                for packets in self.tcp.chunks(MAX_IOVECS / 2) {
                    let mut slices = Vec::with_capacity(packets.len() * 2);
                    for (end, payload) in packets {
                        slices.push(std::io::IoSlice::new(heads.get(start..*end).unwrap_or(&[])));
                        slices.push(std::io::IoSlice::new(payload));
                        start = *end;
                    }
                    write_all_vectored(&mut **g, &mut slices).await?;
                }
                self.tcp.clear();
                tokio::io::AsyncWriteExt::flush(&mut **g).await?;
                drop(g);
                if self
                    .last_alive
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    self.last_alive = Some(std::time::Instant::now());
                    d.hooks.keep_alive(&d.session);
                }
            }
        }
        // Consecutive packets to one address (a unit's) in one segmented send.
        let mut rest = &self.udp[..];
        while let Some((addr, _)) = rest.first() {
            let n = rest.iter().take_while(|(a, _)| a == addr).count();
            let run: Vec<&Bytes> = rest[..n].iter().map(|(_, p)| p).collect();
            d.udp.send_rtp_all(&run, *addr).await?;
            rest = &rest[n..];
        }
        self.udp.clear();
        Ok(())
    }
}

/// Records the next sequence numbers (after a flush) for RTP-Info of the next PLAY.
fn save_seq(state: &ReplayState, outs: &[Out]) {
    let mut seqs = lock(&state.seqs);
    for o in outs {
        if let Some(s) = seqs.get_mut(o.track) {
            *s = o.seq;
        }
    }
}
