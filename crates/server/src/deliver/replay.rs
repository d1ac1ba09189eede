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
//! packetization and framing of what they read (for H.264 and H.265 a scan of every byte
//! for start codes, then every packet's headers): the next batch is read and framed while
//! the current one is written, so the pump's thread only writes (and paces), and the
//! batches it wrote are let go on the blocking pool too.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::packet::{packetizer_for, Packetizer, RtpPayload};
use ipcamd_proto::rtp::{replay_ext_with_jpeg, write_rtp, OnvifReplayExt, RtpExtension, RtpHeader};
use ipcamd_proto::rtsp::headers::{Frames, RateControl};
use ipcamd_proto::rtsp::message::{write_interleaved, Response};
use ipcamd_proto::rtsp::server::replay::PacketSize;
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
    packets: PacketSize,
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
            packets: request.packets,
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

/// How one delivery frames its units, per track: the packetizer and the RTP numbering and
/// timestamps. It moves to the blocking pool while a batch is read and framed there, and
/// comes back with the batch.
struct Framer {
    tracks: Vec<FrameTrack>,
    play: PlayRequest,
    cseq: u8,
    pacing: Pacing,
}

struct FrameTrack {
    track: usize,
    sink: Sink,
    packer: Box<dyn Packetizer>,
    payload_type: u8,
    clock_rate: u32,
    ssrc: u32,
    seq: u16,
    /// First media timestamp of this track in the delivery (forward with Rate-Control:
    /// yes, and reverse).
    anchor: Option<u64>,
    /// Reverse: wallclocks of the first unit of the delivery and of the current GOP.
    rev_anchor: Option<(i64, i64)>,
}

/// A batch read, packetized and framed: every packet's header built, the payloads views of
/// the store's read window. The pump only writes it (and paces it with Rate-Control: yes).
#[derive(Default)]
struct Framed {
    /// The headers (`$` framing, RTP header and extension) of the interleaved packets for
    /// the session's RTSP connection, one after the other.
    heads: Bytes,
    /// The interleaved packets: (end of the packet's header in `heads`, its payload). The
    /// payload is written from the store's read window with `writev`, never copied.
    tcp: Vec<(usize, Bytes)>,
    tcp_writer: Option<Writer>,
    udp: Vec<(SocketAddr, Bytes)>,
    units: Vec<Mark>,
}

/// What the pump needs of one framed unit.
struct Mark {
    /// The ends of its packets in `Framed::tcp` and `Framed::udp`.
    tcp_end: usize,
    udp_end: usize,
    /// With Rate-Control: yes, when it is due (µs from the delivery's start); `None` when
    /// it goes out with the unit before it.
    due: Option<i64>,
    wallclock: i64,
    track: usize,
    /// Its RTP timestamp, and its track's next sequence number after it (`None` when the
    /// track is not delivered).
    rtp_ts: u32,
    next_seq: Option<u16>,
    packets: u32,
    octets: usize,
}

/// A batch, framed.
enum Read {
    Units(Framed),
    Waiting,
    Finished,
}

impl Framer {
    fn new(d: &ReplayDelivery, play: &PlayRequest, cseq: u8, packets: PacketSize) -> Framer {
        let seqs = lock(&d.state.seqs);
        let tracks = d
            .tracks
            .iter()
            .filter_map(|t| {
                let info = d.state.tracks.get(t.track)?;
                Some(FrameTrack {
                    track: t.track,
                    sink: t.sink.clone(),
                    packer: packetizer_for(
                        &info.codec,
                        match t.sink {
                            Sink::Interleaved { .. } => packets.interleaved,
                            Sink::Udp { .. } => packets.udp,
                        },
                    ),
                    payload_type: info.payload_type,
                    clock_rate: info.clock_rate(),
                    ssrc: t.ssrc,
                    seq: seqs.get(t.track).copied().unwrap_or(0),
                    anchor: None,
                    rev_anchor: None,
                })
            })
            .collect();
        Framer {
            tracks,
            play: play.clone(),
            cseq,
            pacing: Pacing::new(play.scale),
        }
    }

    /// Packetizes and frames `batch` (consumed here, so that its buffers are let go on the
    /// thread that framed it).
    fn frame(&mut self, batch: Batch) -> Read {
        let units = match batch {
            Batch::Units(u) => u,
            Batch::Waiting => return Read::Waiting,
            Batch::Finished => return Read::Finished,
        };
        let realtime = self.play.rate_control == RateControl::Yes;
        let mut f = Framed {
            units: Vec::with_capacity(units.len()),
            ..Framed::default()
        };
        // Room for every header of the batch at once (about 36 bytes a packet), so that
        // the buffer does not grow packet by packet.
        let bytes: usize = units.iter().map(|u| u.frame.data.len()).sum();
        let mut heads = BytesMut::with_capacity((bytes / 1000 + 2 * units.len()) * 36);
        let mut payloads = Vec::new();
        for u in &units {
            let due = if realtime { self.pacing.due(u) } else { None };
            payloads.clear();
            let mut mark = Mark {
                tcp_end: 0,
                udp_end: 0,
                due,
                wallclock: u.frame.wallclock,
                track: u.frame.track,
                rtp_ts: 0,
                next_seq: None,
                packets: 0,
                octets: 0,
            };
            if let Some(t) = self.tracks.iter_mut().find(|t| t.track == u.frame.track) {
                if let Err(e) = t.packer.packetize(&u.frame.data, &mut payloads) {
                    tracing::debug!(track = u.frame.track, error = %e, "replay: unit cannot be packetized; skipped");
                    payloads.clear();
                }
                if !payloads.is_empty() {
                    t.frame(
                        u,
                        &mut payloads,
                        &self.play,
                        self.cseq,
                        &mut heads,
                        &mut f,
                        &mut mark,
                    );
                }
                mark.next_seq = Some(t.seq);
            }
            mark.tcp_end = f.tcp.len();
            mark.udp_end = f.udp.len();
            f.units.push(mark);
        }
        f.heads = heads.freeze();
        Read::Units(f)
    }
}

impl FrameTrack {
    /// Frames the packets of unit `u`, whose payloads are `payloads` (taken: each body
    /// moves into the framed batch, without touching its reference count).
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        u: &ReplayUnit,
        payloads: &mut Vec<RtpPayload>,
        play: &PlayRequest,
        cseq: u8,
        heads: &mut BytesMut,
        f: &mut Framed,
        mark: &mut Mark,
    ) {
        let pts = u.frame.pts;
        let wc = u.frame.wallclock;
        let ts = if play.scale < 0.0 {
            // Reverse: timestamps run forward in send order, each GOP placed at its
            // distance from the start, its frames at their distance from its keyframe.
            let anchor = *self.anchor.get_or_insert(pts);
            let (first, gop) = self.rev_anchor.get_or_insert((wc, wc));
            if u.flags.discontinuity {
                *gop = wc;
            }
            let us = (*first - *gop).max(0) + (wc - *gop).max(0);
            let d = (us as f64 / play.scale.abs()) as u64 * u64::from(self.clock_rate) / 1_000_000;
            anchor.wrapping_add(d) as u32
        } else if play.rate_control == RateControl::Yes {
            let anchor = *self.anchor.get_or_insert(pts);
            let d = pts.wrapping_sub(anchor) as i64 as f64 / play.scale;
            anchor.wrapping_add(d as i64 as u64) as u32
        } else {
            pts as u32
        };
        mark.rtp_ts = ts;
        let ext = OnvifReplayExt {
            ntp: unix_micros_to_ntp(u.frame.wallclock),
            clean_point: u.flags.clean,
            end: u.flags.end,
            discontinuity: u.flags.discontinuity,
            terminal: u.flags.terminal,
            cseq,
        };
        let last = payloads.len().saturating_sub(1);
        for (k, p) in payloads.drain(..).enumerate() {
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
                payload_type: self.payload_type,
                marker: p.marker,
                sequence: self.seq,
                timestamp: ts.wrapping_add(p.ts_offset),
                ssrc: self.ssrc,
                extension: Some(RtpExtension {
                    profile: OnvifReplayExt::PROFILE,
                    data: body,
                }),
            };
            self.seq = self.seq.wrapping_add(1);
            mark.packets += 1;
            mark.octets += p.len();
            match &self.sink {
                Sink::Interleaved {
                    writer,
                    rtp_channel,
                    ..
                } => {
                    if f.tcp_writer.is_none() {
                        f.tcp_writer = Some(writer.clone());
                    }
                    let len = 12 + 4 + body.len() + p.len();
                    heads.put_slice(&write_interleaved(*rtp_channel, len));
                    write_rtp(&header, p.head.as_slice(), heads);
                    f.tcp.push((heads.len(), p.body));
                }
                Sink::Udp { rtp, .. } => {
                    let mut b = BytesMut::with_capacity(28 + p.len());
                    write_rtp(&header, &[], &mut b);
                    p.write_to(&mut b);
                    f.udp.push((*rtp, b.freeze()));
                }
            }
        }
    }
}

type ReadAhead = tokio::task::JoinHandle<(Replay, Framer, Result<Read, ipcamd_store::StoreError>)>;

/// Starts reading and framing the next batch on the blocking pool (the selection reads
/// files and SQLite); the Replay and the framer move there and back with [`finish_read`].
/// `spent`, a batch already written, is let go there too (unmapping the store's windows
/// is work the pump's thread need not do).
fn start_read(
    job: &mut Job,
    framer: &mut Option<Framer>,
    spent: Option<Framed>,
) -> std::io::Result<ReadAhead> {
    let lost = || std::io::Error::other("replay state lost");
    let mut replay = job.replay.take().ok_or_else(lost)?;
    let mut framer = framer.take().ok_or_else(lost)?;
    Ok(tokio::task::spawn_blocking(move || {
        drop(spent);
        let read = replay
            .next_batch(BATCH_UNITS, BATCH_BYTES)
            .map(|b| framer.frame(b));
        (replay, framer, read)
    }))
}

fn finish_read(
    job: &mut Job,
    framer: &mut Option<Framer>,
    done: Result<(Replay, Framer, Result<Read, ipcamd_store::StoreError>), tokio::task::JoinError>,
) -> std::io::Result<Read> {
    let (replay, f, read) = done.map_err(std::io::Error::other)?;
    job.replay = Some(replay);
    *framer = Some(f);
    read.map_err(std::io::Error::other)
}

/// The pump's side of one delivery: sender reports per track, and what was last written.
struct Pump<'a> {
    d: &'a ReplayDelivery,
    reports: Vec<(usize, Sink, SrState)>,
    /// When the session was last kept alive by a write.
    last_alive: Option<std::time::Instant>,
}

/// One delivery. `Ok(true)` when it finished, `Ok(false)` when stopped.
async fn deliver(
    d: &ReplayDelivery,
    job: &mut Job,
    stop: &StopSignal,
    progress: &Progress,
) -> std::io::Result<bool> {
    let mut framer = Some(Framer::new(d, &job.play, job.cseq, job.packets));
    let mut pump = Pump {
        d,
        reports: d
            .tracks
            .iter()
            .filter_map(|t| {
                let info = d.state.tracks.get(t.track)?;
                Some((
                    t.track,
                    t.sink.clone(),
                    SrState::new(t.ssrc, info.clock_rate()),
                ))
            })
            .collect(),
        last_alive: None,
    };
    let play = job.play.clone();
    let realtime = play.rate_control == RateControl::Yes;
    let zero_sr = !realtime || play.scale < 0.0;
    let t0 = tokio::time::Instant::now();
    let mut last_sr: Option<tokio::time::Instant> = None;
    let mut ahead: Option<ReadAhead> = None;
    let mut spent: Option<Framed> = None;
    loop {
        if stop.requested() {
            return Ok(false);
        }
        let read = match (job.first.take(), ahead.take()) {
            (Some(b), _) => match framer.as_mut() {
                Some(f) => f.frame(b),
                None => return Err(std::io::Error::other("replay state lost")),
            },
            (None, Some(read)) => finish_read(job, &mut framer, read.await)?,
            (None, None) => {
                let read = start_read(job, &mut framer, spent.take())?;
                finish_read(job, &mut framer, read.await)?
            }
        };
        // Read and frame the next batch on the blocking pool while this one is written
        // (Rate-Control: no is bound by the time of one read plus one write otherwise).
        if matches!(read, Read::Units(_)) {
            ahead = Some(start_read(job, &mut framer, spent.take())?);
        }
        match read {
            Read::Units(framed) => {
                let mut done = 0;
                for (i, m) in framed.units.iter().enumerate() {
                    if let Some(due) = m.due {
                        let at = t0 + Duration::from_micros(due as u64);
                        if at > tokio::time::Instant::now() {
                            pump.write(&framed, done..i).await?;
                            done = i;
                            tokio::select! {
                                _ = tokio::time::sleep_until(at) => {}
                                _ = stop.wake.notified() => {}
                            }
                            if stop.requested() {
                                return Ok(false);
                            }
                        }
                    }
                    progress.set(m.wallclock);
                }
                pump.write(&framed, done..framed.units.len()).await?;
                spent = Some(framed);
            }
            Read::Waiting => {
                tokio::select! {
                    _ = tokio::time::sleep(GROWING_POLL) => {}
                    _ = stop.wake.notified() => {}
                }
            }
            Read::Finished => return Ok(true),
        }
        if last_sr.is_none_or(|t| t.elapsed() >= SR_INTERVAL) {
            last_sr = Some(tokio::time::Instant::now());
            let now = now_micros();
            let reports: Vec<(Sink, Bytes)> = pump
                .reports
                .iter()
                .filter(|(_, _, sr)| sr.packets > 0)
                .filter_map(|(_, sink, sr)| {
                    Some((sink.clone(), sr.report(now, zero_sr, &d.cname)?))
                })
                .collect();
            for (sink, sr) in reports {
                send_rtcp(&d.udp, &sink, sr).await?;
            }
        }
    }
}

/// At most this many slices per `writev` (Linux's IOV_MAX).
const MAX_IOVECS: usize = 1024;

impl Pump<'_> {
    /// Writes the packets of `f`'s units `units`, then counts them for the sender reports
    /// and records the next sequence numbers (for RTP-Info of the next PLAY).
    async fn write(&mut self, f: &Framed, units: Range<usize>) -> std::io::Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        let end_of = |i: usize| f.units.get(i).map_or((0, 0), |m| (m.tcp_end, m.udp_end));
        let (tcp_from, udp_from) = match units.start {
            0 => (0, 0),
            i => end_of(i - 1),
        };
        let (tcp_to, udp_to) = end_of(units.end - 1);
        let tcp = f.tcp.get(tcp_from..tcp_to).unwrap_or(&[]);
        if let (false, Some(w)) = (tcp.is_empty(), &f.tcp_writer) {
            let mut start = match tcp_from {
                0 => 0,
                i => f.tcp.get(i - 1).map_or(0, |(end, _)| *end),
            };
            let mut g = w.lock().await;
            for packets in tcp.chunks(MAX_IOVECS / 2) {
                let mut slices = Vec::with_capacity(packets.len() * 2);
                for (end, payload) in packets {
                    slices.push(IoSlice::new(f.heads.get(start..*end).unwrap_or(&[])));
                    slices.push(IoSlice::new(payload));
                    start = *end;
                }
                write_all_vectored(&mut **g, &mut slices).await?;
            }
            tokio::io::AsyncWriteExt::flush(&mut **g).await?;
            drop(g);
            if self
                .last_alive
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            {
                self.last_alive = Some(std::time::Instant::now());
                self.d.hooks.keep_alive(&self.d.session);
            }
        }
        // Consecutive packets to one address (a unit's) in one segmented send.
        let mut rest = f.udp.get(udp_from..udp_to).unwrap_or(&[]);
        while let Some((addr, _)) = rest.first() {
            let n = rest.iter().take_while(|(a, _)| a == addr).count();
            let run: Vec<&Bytes> = rest[..n].iter().map(|(_, p)| p).collect();
            self.d.udp.send_rtp_all(&run, *addr).await?;
            rest = &rest[n..];
        }
        let now = now_micros();
        let mut seqs = lock(&self.d.state.seqs);
        for m in f.units.get(units).unwrap_or(&[]) {
            if let Some((_, _, sr)) = self.reports.iter_mut().find(|(t, _, _)| *t == m.track) {
                if m.packets > 0 {
                    sr.count_many(m.packets, m.octets);
                    sr.last = Some((m.rtp_ts, now));
                }
            }
            if let (Some(next), Some(s)) = (m.next_seq, seqs.get_mut(m.track)) {
                *s = next;
            }
        }
        Ok(())
    }
}
