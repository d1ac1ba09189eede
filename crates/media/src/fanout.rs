//! The fan-out from one live source to many readers.
//!
//! Each access unit is packetized into RTP **once**, by [`Stream::push`], and the resulting
//! [`Frame`] (complete RTP packets as [`Bytes`]) is shared by every reader through an
//! `Arc`: a reader picks its UDP address, or writes the packets already framed for
//! interleaving on channel `2 x track` (one slice per frame), or adds its own 4-byte
//! header per packet when it asked for another channel.
//! All readers of a stream therefore see the same SSRC, sequence numbers and timestamps,
//! as with gst-rtsp-server's shared media; `RTP-Info` tells each reader where it joins.
//!
//! - **Late joiners** get the frames since the last video keyframe (the current GOP) at
//!   once, then the live frames, so the picture appears without waiting for the next
//!   keyframe. The GOP snapshot and the live subscription are taken under one lock, so no
//!   frame is missed or duplicated between them.
//! - **Slow readers** never delay the source or other readers: the live ring
//!   ([`tokio::sync::broadcast`]) is bounded and overwrites the oldest entries. A reader
//!   that falls behind by more than the ring learns how many frames it lost and skips to
//!   the next video keyframe ([`Reader::recv`] does this and counts it).
//! - **Frames go as soon as every reading receiver has them**: a slot of the ring is freed
//!   once each receiver took it, so the ring holds frames only for readers that are
//!   behind. A reader whose client another writer serves (the server's per-camera writer)
//!   parks ([`Reader::park`]): it leaves the ring instead of holding all of it, and
//!   [`Reader::resume`] takes it back after the last frame it had, from the GOP or the last
//!   [`RESUME_FRAMES`] frames the stream keeps anyway.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use ipcamd_proto::packet::{
    h264, h265, jpeg, packetizer_for, split_annex_b, Packetizer, RtpPayload,
};
use ipcamd_proto::rtp::{write_rtp, RtpExtension, RtpHeader};
use ipcamd_proto::throttle::Throttle;
use ipcamd_proto::time::UnixMicros;
use tokio::sync::{broadcast, watch};

use crate::ingest::TrackCounters;
use crate::AccessUnit;

/// Largest RTP payload we send: fits a 1500-byte Ethernet MTU with IP/UDP/RTP headers and
/// leaves room for the 16-byte ONVIF replay extension.
pub const MAX_RTP_PAYLOAD: usize = 1400;

/// Slots of the live ring per stream: how far a reader may fall behind before it skips
/// (about 7 s of 25 fps video with 20 ms audio, 20 s of video alone). A frame stays in the
/// ring only until every receiver has taken it.
pub const RING_FRAMES: usize = 512;

/// The last frames a stream keeps besides its GOP, so that a parked reader resumes without
/// a gap when a keyframe came between its last frame and its return ([`Reader::resume`]).
pub const RESUME_FRAMES: usize = 32;

/// One packetized access unit, shared by all readers.
#[derive(Debug)]
pub struct Frame {
    /// Place in the stream: 1 for the first frame pushed, then one more per frame (all
    /// tracks, never reset), so a reader can tell a frame it already has or a gap.
    pub index: u64,
    pub track: usize,
    /// The track is a video track.
    pub video: bool,
    /// Video keyframe (sync point); always true for audio.
    pub keyframe: bool,
    pub rtp_timestamp: u32,
    /// Capture wallclock of the access unit.
    pub wallclock: UnixMicros,
    /// Sequence number of `packets[0]`; the others follow.
    pub first_seq: u16,
    /// Complete RTP packets (header and payload): views of `interleaved`'s buffer.
    pub packets: Vec<Bytes>,
    /// The same packets one after the other, each behind its `$` header (RFC 2326
    /// §10.12) for channel `2 x track`, the channel clients ask for when they set the
    /// tracks up in order: such a reader writes the frame as one slice. `None` when a
    /// packet is longer than the header's 16-bit length.
    pub interleaved: Option<(u8, Bytes)>,
    /// The access unit as the source produced it (for the recorder).
    pub au: AccessUnit,
}

impl Frame {
    pub fn payload_bytes(&self) -> usize {
        self.packets
            .iter()
            .map(|p| p.len().saturating_sub(12))
            .sum()
    }
}

/// RTP numbering state of one track.
struct TrackState {
    ssrc: u32,
    next_seq: u16,
    ts_offset: u32,
    packetizer: Box<dyn Packetizer>,
    /// (rtp timestamp, wallclock) of the last frame pushed, for RTP-Info of new readers.
    last: Option<(u32, UnixMicros)>,
}

impl TrackState {
    fn new(info: &TrackInfo) -> TrackState {
        TrackState {
            ssrc: rand::random(),
            next_seq: rand::random(),
            ts_offset: rand::random(),
            packetizer: packetizer_for(&info.codec, MAX_RTP_PAYLOAD),
            last: None,
        }
    }
}

struct Inner {
    /// The tracks as readers see them now (SDP of new readers, recorder).
    info: Arc<Vec<TrackInfo>>,
    tracks: Vec<TrackState>,
    has_video: bool,
    /// Frames since the last video keyframe (all tracks), oldest first.
    gop: Vec<Arc<Frame>>,
    /// The last [`RESUME_FRAMES`] frames (all tracks), oldest first.
    recent: VecDeque<Arc<Frame>>,
    /// The live ring of the current track layout; replaced (ending every reader) when the
    /// layout changes.
    tx: broadcast::Sender<Arc<Frame>>,
    /// Bumped when `tx` is replaced: readers of different rings never meet.
    ring: u64,
    /// Index of the last frame sent (0: none yet).
    last_index: u64,
    /// Per-frame warnings (unknown track, cannot packetize), rate-limited.
    warn_unknown: Throttle,
    warn_packetize: Throttle,
}

/// Counters of a stream, for logs and the API.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packetize_errors: AtomicU64,
    pub reader_skips: AtomicU64,
    /// RTP bytes (headers and payload, without interleaved or UDP framing) the server's
    /// live deliveries sent to readers of this stream; counted by the server.
    pub bytes_out: AtomicU64,
    /// Times the server's per-camera writer took a TCP reader that had caught up, and
    /// handed one back to its own task (its socket was full, its connection busy);
    /// counted by the server.
    pub direct_joins: AtomicU64,
    pub direct_returns: AtomicU64,
    /// What the source's receiver (a proxied camera's session, a publisher) counted per
    /// track, as it last reported it: packets, units, and the packets it dropped and why.
    /// Empty for sources that make their own frames.
    received: Mutex<Vec<TrackCounters>>,
}

impl StreamStats {
    /// The receiver's counters now ([`crate::ingest::Ingest::all_counters`]).
    pub fn set_received(&self, counters: Vec<TrackCounters>) {
        *self.received.lock().unwrap_or_else(|e| e.into_inner()) = counters;
    }

    /// The receiver's counters, per track, as last reported.
    pub fn received(&self) -> Vec<TrackCounters> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A live stream: the tracks of one source and the fan-out of its frames.
///
/// The tracks may change while the stream lives (a source whose tracks are known only once
/// it is connected: a proxied camera, a publisher): see [`Stream::set_tracks`]. In-band
/// parameter sets that differ from the track's (an H.264/H.265 camera that changed its
/// resolution) update the track ([`Stream::push`]), so that new readers, the recorder and
/// snapshots get them. Every change bumps [`Stream::layout`].
pub struct Stream {
    name: String,
    inner: Mutex<Inner>,
    pub stats: StreamStats,
    /// Why the source is not delivering (it failed and is being retried), if it is not.
    offline: Mutex<Option<String>>,
    /// Bumped when the tracks change (their number, codecs or parameters).
    layout: watch::Sender<u64>,
    /// Readers made by [`Stream::subscribe_writer`] that exist now.
    writers: AtomicUsize,
    /// Readers parked now ([`Reader::park`]): readers without a receiver in the ring.
    parked: AtomicUsize,
}

/// Where a new reader joins one track: what `RTP-Info` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPoint {
    pub ssrc: u32,
    pub seq: u16,
    pub rtp_timestamp: u32,
    /// Capture time of the first frame the reader gets (the last frame's for a track with
    /// nothing in the backlog: the reader's first frame comes after it).
    pub wallclock: UnixMicros,
}

/// What [`Stream::set_tracks`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrack {
    /// The same tracks: nothing changed.
    Same,
    /// The same codecs and payload types, other parameters (SPS/PPS, AAC config): readers
    /// go on with the same numbering.
    Updated,
    /// Other tracks: the readers of the old ones were ended (they must DESCRIBE again).
    Replaced,
}

/// Whether two track lists carry the same codecs with the same payload types and clock
/// rates (parameter sets aside): readers of one can go on reading the other.
fn same_layout(a: &[TrackInfo], b: &[TrackInfo]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.payload_type == y.payload_type
                && x.codec.name() == y.codec.name()
                && x.clock_rate() == y.clock_rate()
                // Opaque: nothing but the whole description says it is the same format.
                && (!x.codec.is_opaque() || x.codec == y.codec)
        })
}

/// The parameter sets an H.264/H.265 keyframe carries in band, as the track's codec
/// parameters, when they differ from `current`.
fn in_band_params(current: &CodecParams, au: &Bytes) -> Option<CodecParams> {
    let nals = split_annex_b(au)?;
    let find = |pick: &dyn Fn(&Bytes) -> bool| nals.iter().find(|n| pick(n)).cloned();
    let new = match current {
        CodecParams::H264 { sps, pps } => CodecParams::H264 {
            sps: find(&|n| h264::nal_type(n) == h264::NAL_SPS).unwrap_or_else(|| sps.clone()),
            pps: find(&|n| h264::nal_type(n) == h264::NAL_PPS).unwrap_or_else(|| pps.clone()),
        },
        CodecParams::H265 { vps, sps, pps } => CodecParams::H265 {
            vps: find(&|n| h265::nal_type(n) == h265::NAL_VPS).unwrap_or_else(|| vps.clone()),
            sps: find(&|n| h265::nal_type(n) == h265::NAL_SPS).unwrap_or_else(|| sps.clone()),
            pps: find(&|n| h265::nal_type(n) == h265::NAL_PPS).unwrap_or_else(|| pps.clone()),
        },
        _ => return None,
    };
    (new != *current).then_some(new)
}

impl Stream {
    /// A stream of these tracks (none: a source whose tracks are not known yet).
    pub fn new(name: impl Into<String>, tracks: Vec<TrackInfo>) -> Arc<Stream> {
        let (tx, _) = broadcast::channel(RING_FRAMES);
        Arc::new(Stream {
            name: name.into(),
            inner: Mutex::new(Inner {
                tracks: tracks.iter().map(TrackState::new).collect(),
                has_video: tracks.iter().any(|t| t.kind() == MediaKind::Video),
                info: Arc::new(tracks),
                gop: Vec::new(),
                recent: VecDeque::with_capacity(RESUME_FRAMES),
                tx,
                ring: 0,
                last_index: 0,
                warn_unknown: Throttle::default(),
                warn_packetize: Throttle::default(),
            }),
            stats: StreamStats::default(),
            offline: Mutex::new(None),
            layout: watch::Sender::new(0),
            writers: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tracks now, in SDP order.
    pub fn tracks(&self) -> Arc<Vec<TrackInfo>> {
        self.lock().info.clone()
    }

    /// Watches the track layout: the value changes whenever [`Stream::tracks`] does.
    pub fn layout(&self) -> watch::Receiver<u64> {
        self.layout.subscribe()
    }

    /// Sets the tracks (a source connected, or reconnected with another SDP). Tracks with
    /// the same codecs keep the readers and the RTP numbering; other tracks end every
    /// reader (they get [`Next::Closed`]) and start a new numbering.
    pub fn set_tracks(&self, tracks: Vec<TrackInfo>) -> Retrack {
        let mut inner = self.lock();
        if *inner.info == tracks {
            return Retrack::Same;
        }
        let what = if same_layout(&inner.info, &tracks) {
            for (state, info) in inner.tracks.iter_mut().zip(&tracks) {
                state.packetizer = packetizer_for(&info.codec, MAX_RTP_PAYLOAD);
            }
            Retrack::Updated
        } else {
            inner.tracks = tracks.iter().map(TrackState::new).collect();
            inner.has_video = tracks.iter().any(|t| t.kind() == MediaKind::Video);
            inner.gop.clear();
            inner.recent.clear();
            inner.tx = broadcast::channel(RING_FRAMES).0;
            inner.ring += 1;
            Retrack::Replaced
        };
        inner.info = Arc::new(tracks);
        drop(inner);
        self.layout.send_modify(|v| *v += 1);
        what
    }

    /// Marks the source offline with a reason (`Some`) or back online (`None`).
    pub fn set_offline(&self, reason: Option<String>) {
        *self.offline.lock().unwrap_or_else(|e| e.into_inner()) = reason;
    }

    /// Why the source is offline, or `None` while it delivers.
    pub fn offline_reason(&self) -> Option<String> {
        self.offline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The newest frame of `track` since the last video keyframe (for MJPEG, every frame
    /// is one: the last frame).
    pub fn last_frame(&self, track: usize) -> Option<Arc<Frame>> {
        self.lock()
            .gop
            .iter()
            .rev()
            .find(|f| f.track == track)
            .cloned()
    }

    /// Readers of the stream (sessions, the recorder, parked ones too), not counting the
    /// server's writers that serve many readers ([`Stream::subscribe_writer`]).
    pub fn reader_count(&self) -> usize {
        let rx = self.lock().tx.receiver_count();
        rx.saturating_sub(self.writers.load(Ordering::Relaxed))
            + self.parked.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each step is a push or
        // clear), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Packetizes one access unit and hands it to every reader. Never blocks on readers.
    pub fn push(&self, au: AccessUnit) {
        let mut inner = self.lock();
        let Some(info) = inner.info.get(au.track) else {
            let track = au.track;
            if let Some(r) = inner.warn_unknown.check(std::time::Instant::now()) {
                tracing::warn!(stream = %self.name, track, "access unit for unknown track dropped{r}");
            }
            return;
        };
        let video = info.kind() == MediaKind::Video;
        let keyframe = !video || au.keyframe;
        let payload_type = info.payload_type;
        let changed = if video && keyframe {
            in_band_params(&info.codec, &au.data)
        } else {
            None
        };
        if let Some(codec) = changed {
            tracing::info!(stream = %self.name, track = au.track, "new in-band parameter sets: the track's SDP and recording follow");
            let mut tracks = (*inner.info).clone();
            if let Some(t) = tracks.get_mut(au.track) {
                t.codec = codec;
            }
            inner.info = Arc::new(tracks);
            self.layout.send_modify(|v| *v += 1);
        }
        let has_video = inner.has_video;
        let Some(state) = inner.tracks.get_mut(au.track) else {
            return;
        };
        let mut payloads: Vec<RtpPayload> = Vec::new();
        if let Err(e) = state.packetizer.packetize(&au.data, &mut payloads) {
            self.stats.packetize_errors.fetch_add(1, Ordering::Relaxed);
            if let Some(r) = inner.warn_packetize.check(std::time::Instant::now()) {
                tracing::warn!(stream = %self.name, track = au.track, error = %e, "access unit dropped: cannot packetize{r}");
            }
            return;
        }
        if payloads.is_empty() {
            return;
        }
        let rtp_timestamp = (au.pts as u32).wrapping_add(state.ts_offset);
        let first_seq = state.next_seq;
        let channel = u8::try_from(2 * au.track).ok();
        let mut buf = BytesMut::with_capacity(
            payloads
                .iter()
                .map(|p| 4 + 12 + p.len() + p.header_ext.as_ref().map_or(0, |e| 4 + e.len()))
                .sum::<usize>(),
        );
        let mut spans = Vec::with_capacity(payloads.len());
        let mut framed = channel.is_some();
        for p in &payloads {
            let header = RtpHeader {
                payload_type,
                marker: p.marker,
                sequence: state.next_seq,
                timestamp: rtp_timestamp.wrapping_add(p.ts_offset),
                ssrc: state.ssrc,
                // The ONVIF JPEG header extension (docs/mjpeg.md), first packet only.
                extension: p.header_ext.as_ref().map(|e| RtpExtension {
                    profile: jpeg::JPEG_EXT_INITIAL,
                    data: e,
                }),
            };
            let start = buf.len();
            buf.put_slice(&[b'$', channel.unwrap_or(0), 0, 0]);
            write_rtp(&header, &[], &mut buf);
            p.write_to(&mut buf);
            let len = buf.len() - start - 4;
            match u16::try_from(len) {
                Ok(l) => buf[start + 2..start + 4].copy_from_slice(&l.to_be_bytes()),
                Err(_) => framed = false,
            }
            spans.push(start + 4..buf.len());
            state.next_seq = state.next_seq.wrapping_add(1);
        }
        let wire = buf.freeze();
        let packets: Vec<Bytes> = spans.into_iter().map(|r| wire.slice(r)).collect();
        let interleaved = match (framed, channel) {
            (true, Some(c)) => Some((c, wire)),
            _ => None,
        };
        state.last = Some((rtp_timestamp, au.wallclock));
        self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_in
            .fetch_add(au.data.len() as u64, Ordering::Relaxed);
        inner.last_index += 1;
        let frame = Arc::new(Frame {
            index: inner.last_index,
            track: au.track,
            video,
            keyframe,
            rtp_timestamp,
            wallclock: au.wallclock,
            first_seq,
            packets,
            interleaved,
            au,
        });
        if video && keyframe {
            inner.gop.clear();
        }
        if !has_video || !inner.gop.is_empty() || (video && keyframe) {
            // Audio-only streams keep a short tail so a reader's first packet is immediate.
            if !has_video && inner.gop.len() >= 8 {
                inner.gop.remove(0);
            }
            inner.gop.push(frame.clone());
        }
        if inner.recent.len() >= RESUME_FRAMES {
            inner.recent.pop_front();
        }
        inner.recent.push_back(frame.clone());
        // No receivers is fine: the send result only says how many got it.
        let _ = inner.tx.send(frame);
    }

    /// A new reader of the current tracks. Returns the reader and, per track, where it
    /// joins (`None` for a track that has produced nothing yet).
    pub fn subscribe(self: &Arc<Self>) -> (Reader, Vec<Option<JoinPoint>>) {
        let inner = self.lock();
        let rx = inner.tx.subscribe();
        let backlog: Vec<Arc<Frame>> = inner.gop.clone();
        let joins = inner
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if let Some(f) = backlog.iter().find(|f| f.track == i) {
                    return Some(JoinPoint {
                        ssrc: t.ssrc,
                        seq: f.first_seq,
                        rtp_timestamp: f.rtp_timestamp,
                        wallclock: f.wallclock,
                    });
                }
                t.last.map(|(ts, wallclock)| JoinPoint {
                    ssrc: t.ssrc,
                    seq: t.next_seq,
                    rtp_timestamp: ts,
                    wallclock,
                })
            })
            .collect();
        let has_video = inner.has_video;
        let (ring, last) = (inner.ring, inner.last_index);
        drop(inner);
        let reader = Reader {
            stream: self.clone(),
            backlog: backlog.into(),
            rx: Some(rx),
            parked: false,
            ring,
            last,
            has_video,
            waiting_for_keyframe: false,
            skips: 0,
            frames_lost: 0,
            writer: false,
        };
        (reader, joins)
    }

    /// A reader for a writer that serves many readers' clients (the server's per-camera
    /// writer): live frames only, and not counted in [`Stream::reader_count`].
    pub fn subscribe_writer(self: &Arc<Self>) -> Reader {
        let mut r = self.subscribe().0;
        r.backlog.clear();
        r.writer = true;
        self.writers.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// SSRC of a track (fixed while the track layout is).
    pub fn ssrc(&self, track: usize) -> Option<u32> {
        self.lock().tracks.get(track).map(|t| t.ssrc)
    }
}

/// What a reader gets next.
#[derive(Debug)]
pub enum Next {
    Frame(Arc<Frame>),
    /// The source has stopped for good.
    Closed,
}

/// One reader of a [`Stream`]: first the GOP backlog, then live frames.
pub struct Reader {
    stream: Arc<Stream>,
    backlog: VecDeque<Arc<Frame>>,
    /// `None` while parked, or after [`Reader::resume`] found its ring replaced (closed).
    rx: Option<broadcast::Receiver<Arc<Frame>>>,
    parked: bool,
    /// Which ring of the stream `rx` reads ([`Reader::ring`]).
    ring: u64,
    /// Index of the last live frame taken, or written to this reader's client by someone
    /// else ([`Reader::skip_through`]).
    last: u64,
    /// The layout it was subscribed to has video.
    has_video: bool,
    waiting_for_keyframe: bool,
    /// Times this reader fell behind and skipped to a keyframe.
    pub skips: u64,
    /// Frames it lost by falling behind.
    pub frames_lost: u64,
    /// Made by [`Stream::subscribe_writer`].
    writer: bool,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.writer {
            self.stream.writers.fetch_sub(1, Ordering::Relaxed);
        }
        if self.parked {
            self.stream.parked.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Reader {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    fn accept(&mut self, f: &Frame) -> bool {
        if !self.waiting_for_keyframe {
            return true;
        }
        if f.video && f.keyframe {
            self.waiting_for_keyframe = false;
            return true;
        }
        self.frames_lost += 1;
        false
    }

    /// Whether a live frame from the ring is for this reader: not one it has had, and
    /// after a gap (it fell behind by more than the ring) only from a video keyframe on.
    fn take(&mut self, f: &Frame) -> bool {
        if f.index <= self.last {
            return false;
        }
        if f.index > self.last + 1 {
            self.lagged(f.index - self.last - 1);
        }
        self.last = f.index;
        self.accept(f)
    }

    /// Which ring of the stream this reader reads: the same number for every reader
    /// subscribed between two track replacements ([`Stream::set_tracks`]).
    pub fn ring(&self) -> u64 {
        self.ring
    }

    /// Index of the last live frame it took or skipped.
    pub fn last_index(&self) -> u64 {
        self.last
    }

    /// Frames up to `index` reached the client another way (a writer that serves many
    /// readers): the reader goes on after them, and does not count them as lost.
    pub fn skip_through(&mut self, index: u64) {
        self.last = self.last.max(index);
    }

    /// Leaves the live ring while another writer sends the frames to this reader's client
    /// (the server's per-camera writer): a receiver that does not read keeps every frame of
    /// the ring alive, [`RING_FRAMES`] of them (about 10 MiB for a 2 Mbit/s camera). Still
    /// counted in [`Stream::reader_count`]. Call it once the reader has caught up (an
    /// empty backlog); [`Reader::resume`] (or the next receive) takes it back.
    pub fn park(&mut self) {
        if self.parked || self.rx.is_none() {
            return;
        }
        self.rx = None;
        self.parked = true;
        self.stream.parked.fetch_add(1, Ordering::Relaxed);
    }

    /// Back into the live ring after a [`Reader::park`], from the frame after the last one
    /// it took or skipped ([`Reader::skip_through`]): the frames since then come from the
    /// GOP or the stream's last [`RESUME_FRAMES`], whichever reaches further back; what
    /// neither has counts as lost, and the reader goes on from the next keyframe. If the
    /// ring was replaced meanwhile (other tracks), the reader is closed. `false` when it is
    /// closed (not parked, no ring).
    pub fn resume(&mut self) -> bool {
        if !self.parked {
            return self.rx.is_some();
        }
        self.parked = false;
        self.stream.parked.fetch_sub(1, Ordering::Relaxed);
        let inner = self.stream.lock();
        if inner.ring != self.ring {
            return false;
        }
        self.rx = Some(inner.tx.subscribe());
        let newest = inner.last_index;
        let after = self.last;
        // The GOP's frames from before the recent ones, then the recent ones: both end at
        // the newest frame, so this is whichever of the two reaches further back.
        let recent_from = inner.recent.front().map_or(u64::MAX, |f| f.index);
        let missed: Vec<Arc<Frame>> = inner
            .gop
            .iter()
            .take_while(|f| f.index < recent_from)
            .chain(&inner.recent)
            .filter(|f| f.index > after)
            .cloned()
            .collect();
        drop(inner);
        for f in missed {
            if self.take(&f) {
                self.backlog.push_back(f);
            }
        }
        if self.last < newest {
            self.lagged(newest - self.last);
            self.last = newest;
        }
        true
    }

    fn lagged(&mut self, n: u64) {
        self.skips += 1;
        self.frames_lost += n;
        self.stream
            .stats
            .reader_skips
            .fetch_add(1, Ordering::Relaxed);
        if self.has_video {
            self.waiting_for_keyframe = true;
        }
        tracing::info!(stream = %self.stream.name, lost = n, skips = self.skips,
            "slow reader fell behind; skipping to the next keyframe");
    }

    /// The next frame of the GOP backlog; the backlog's memory goes with its last frame
    /// (a reader lives long after it).
    fn next_backlog(&mut self) -> Option<Arc<Frame>> {
        let f = self.backlog.pop_front()?;
        if self.backlog.is_empty() {
            self.backlog = VecDeque::new();
        }
        Some(f)
    }

    /// Waits for the next frame.
    pub async fn recv(&mut self) -> Next {
        loop {
            if let Some(f) = self.next_backlog() {
                return Next::Frame(f);
            }
            let Some(rx) = self.rx.as_mut() else {
                if self.resume() {
                    continue;
                }
                return Next::Closed;
            };
            match rx.recv().await {
                Ok(f) => {
                    if self.take(&f) {
                        return Next::Frame(f);
                    }
                }
                // The frames it lost show as a gap in the indices ([`Reader::take`]).
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }

    /// The next frame if one is ready now (for batching writes).
    pub fn try_recv(&mut self) -> Option<Arc<Frame>> {
        loop {
            if let Some(f) = self.next_backlog() {
                return Some(f);
            }
            let Some(rx) = self.rx.as_mut() else {
                if self.resume() {
                    continue;
                }
                return None;
            };
            match rx.try_recv() {
                Ok(f) => {
                    if self.take(&f) {
                        return Some(f);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_proto::codec::CodecParams;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn stream() -> Arc<Stream> {
        Stream::new(
            "t",
            vec![
                TrackInfo::new(
                    CodecParams::H264 {
                        sps: Bytes::from_static(SPS),
                        pps: Bytes::from_static(PPS),
                    },
                    96,
                ),
                TrackInfo::new(
                    CodecParams::Pcmu {
                        rate: 8000,
                        channels: 1,
                    },
                    0,
                ),
            ],
        )
    }

    /// Video frame n; every 50th is a keyframe (SPS, PPS, IDR slice), others a P slice.
    fn video(n: u64) -> AccessUnit {
        let key = n.is_multiple_of(50);
        let mut d = Vec::new();
        if key {
            for nal in [SPS, PPS] {
                d.extend_from_slice(&[0, 0, 0, 1]);
                d.extend_from_slice(nal);
            }
        }
        d.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88]);
        d.extend_from_slice(&vec![n as u8; 3000]); // 3 packets
        AccessUnit {
            track: 0,
            pts: n * 3600,
            wallclock: n as i64 * 40_000,
            keyframe: key,
            data: Bytes::from(d),
        }
    }

    fn audio(n: u64) -> AccessUnit {
        AccessUnit {
            track: 1,
            pts: n * 160,
            wallclock: n as i64 * 20_000,
            keyframe: true,
            data: Bytes::from(vec![0xff; 160]),
        }
    }

    #[tokio::test]
    async fn late_joiner_starts_at_the_last_keyframe_with_matching_join_points() {
        let s = stream();
        for n in 0..60 {
            s.push(video(n));
            s.push(audio(2 * n));
        }
        let (mut r, joins) = s.subscribe();
        let Next::Frame(first) = r.recv().await else {
            panic!("closed")
        };
        assert_eq!(first.track, 0);
        assert!(first.keyframe);
        assert_eq!(
            first.au.pts,
            50 * 3600,
            "backlog starts at the last keyframe"
        );
        let j = joins[0].expect("video join point");
        assert_eq!(j.seq, first.first_seq);
        assert_eq!(j.rtp_timestamp, first.rtp_timestamp);
        assert_eq!(Some(j.ssrc), s.ssrc(0));
        // The packets carry consecutive sequence numbers, the marker on the last one.
        let seqs: Vec<u16> = first
            .packets
            .iter()
            .map(|p| u16::from_be_bytes([p[2], p[3]]))
            .collect();
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1));
        }
        assert!(first.packets.last().is_some_and(|p| p[1] & 0x80 != 0));
        // Then the rest of the backlog (10 video frames after the keyframe, audio
        // interleaved) in order, then live frames.
        let mut backlog_video = 1;
        while let Some(f) = r.try_recv() {
            if f.track == 0 {
                backlog_video += 1;
            }
        }
        assert_eq!(backlog_video, 10);
        s.push(video(60));
        let Next::Frame(live) = r.recv().await else {
            panic!("closed")
        };
        assert_eq!(live.au.pts, 60 * 3600);
    }

    /// A frame's pre-framed bytes are exactly its packets, each behind the `$` header a
    /// reader on channel 2 x track would write itself.
    #[tokio::test]
    async fn interleaved_bytes_are_the_packets_behind_their_headers() {
        let s = stream();
        s.push(video(0));
        s.push(audio(0));
        let (mut r, _) = s.subscribe();
        for _ in 0..2 {
            let Next::Frame(f) = r.recv().await else {
                panic!("closed")
            };
            let mut expected = Vec::new();
            for p in &f.packets {
                expected.push(b'$');
                expected.push(2 * f.track as u8);
                expected.extend_from_slice(&(p.len() as u16).to_be_bytes());
                expected.extend_from_slice(p);
            }
            let (channel, wire) = f.interleaved.as_ref().expect("framed");
            assert_eq!(usize::from(*channel), 2 * f.track);
            assert_eq!(&wire[..], &expected[..], "track {}", f.track);
            assert!(f.packets.len() > usize::from(f.track == 0), "fragments");
        }
    }

    #[tokio::test]
    async fn slow_reader_skips_to_the_next_keyframe_and_counts_it() {
        let s = stream();
        s.push(video(0));
        let (mut r, _) = s.subscribe();
        // The reader takes nothing while far more than the ring holds is produced.
        let total = RING_FRAMES as u64 + 120;
        for n in 1..total {
            s.push(video(n));
        }
        let mut got = Vec::new();
        while let Some(f) = r.try_recv() {
            got.push(f);
        }
        // First the backlog frame 0 (taken at subscribe time), then, after the lag, the
        // first frame is a keyframe.
        assert_eq!(got[0].au.pts, 0);
        assert!(
            got[1].keyframe,
            "after falling behind, delivery resumes at a keyframe"
        );
        assert_eq!(got[1].au.pts % (50 * 3600), 0);
        assert_eq!(r.skips, 1);
        assert!(r.frames_lost > 0);
        assert_eq!(s.stats.reader_skips.load(Ordering::Relaxed), 1);
        // Frames after the resume point are all there, in order.
        for w in got[1..].windows(2) {
            assert_eq!(w[1].au.pts, w[0].au.pts + 3600);
        }
        assert_eq!(got.last().map(|f| f.au.pts), Some((total - 1) * 3600));
    }

    #[tokio::test]
    async fn frames_sent_elsewhere_are_skipped_without_counting_them_lost() {
        let s = stream();
        let (mut r, _) = s.subscribe();
        // Someone else wrote frames 1..=600 to this reader's client while it did not
        // read: more than the ring, so the ring overwrote what it held for the reader.
        let total = RING_FRAMES as u64 + 100;
        for n in 0..total {
            s.push(video(n + 1));
        }
        r.skip_through(total);
        for n in total..total + 3 {
            s.push(video(n + 1));
        }
        let mut got = Vec::new();
        while let Some(f) = r.try_recv() {
            got.push(f.index);
        }
        assert_eq!(got, vec![total + 1, total + 2, total + 3]);
        assert_eq!((r.skips, r.frames_lost), (0, 0));
        assert_eq!(r.last_index(), total + 3);

        // Handed back at a point the ring no longer holds: a gap, counted, and the reader
        // waits for a keyframe.
        let mut r = s.subscribe_writer();
        assert_eq!(s.reader_count(), 1, "the writer's reader is not counted");
        for n in 0..total {
            s.push(video(n + 4 + total));
        }
        r.skip_through(r.last_index() + 10);
        let first = r.try_recv().expect("a frame");
        assert!(first.keyframe);
        assert_eq!(r.skips, 1);
        assert!(r.frames_lost >= 90, "{}", r.frames_lost);
    }

    /// Indices of the frames a reader has ready now.
    fn drain(r: &mut Reader) -> Vec<u64> {
        std::iter::from_fn(|| r.try_recv().map(|f| f.index)).collect()
    }

    /// A reader that subscribed after video frames `ns`, took what it was given, and parked.
    fn parked_reader(s: &Arc<Stream>, ns: std::ops::Range<u64>) -> Reader {
        for n in ns {
            s.push(video(n));
        }
        let (mut r, _) = s.subscribe();
        while r.try_recv().is_some() {}
        r.park();
        r
    }

    #[tokio::test]
    async fn a_parked_reader_holds_no_frame_and_resumes_after_its_last_one() {
        let s = stream();
        s.push(video(0));
        let (mut r, _) = s.subscribe();
        assert_eq!(drain(&mut r), vec![1]);
        let mut w = s.subscribe_writer();
        r.park();
        assert_eq!(s.reader_count(), 1, "a parked reader still counts");
        // The writer sends frames 2..=11 to the reader's client; 12..=20 wait.
        for n in 1..20 {
            s.push(video(n));
        }
        assert_eq!(drain(&mut w).len(), 19);
        // Once the writer took a frame, the ring lets it go: the GOP and the last
        // RESUME_FRAMES hold it, the parked reader does not.
        let held = s.lock().gop.last().map(Arc::strong_count);
        assert_eq!(held, Some(2), "GOP and recent frames, not the ring");
        r.skip_through(11);
        assert!(r.resume());
        assert_eq!(drain(&mut r), (12..=20).collect::<Vec<_>>());
        assert_eq!((r.skips, r.frames_lost), (0, 0));
        // Live frames follow.
        s.push(video(20));
        assert_eq!(drain(&mut r), vec![21]);
        drop(r);
        assert_eq!(s.reader_count(), 0);
    }

    #[tokio::test]
    async fn a_parked_reader_resumes_across_a_keyframe_from_the_recent_frames() {
        let s = stream();
        let mut r = parked_reader(&s, 40..48);
        // A keyframe (video(50)) empties the GOP; the frames before it are in the recent
        // ones, so the return is exact.
        for n in 48..56 {
            s.push(video(n));
        }
        // The next receive resumes by itself.
        assert_eq!(drain(&mut r), (9..=16).collect::<Vec<_>>());
        assert_eq!(r.skips, 0);
    }

    #[tokio::test]
    async fn a_parked_reader_beyond_the_recent_frames_goes_on_from_the_keyframe() {
        let s = stream();
        let mut r = parked_reader(&s, 0..10);
        // 90 frames: the keyframe at 50 and 40 more. Frames 11..=50 are neither in the
        // GOP (from frame 51, the keyframe) nor in the last 32.
        for n in 10..100 {
            s.push(video(n));
        }
        let got = drain(&mut r);
        assert_eq!(got, (51..=100).collect::<Vec<_>>());
        assert_eq!((r.skips, r.frames_lost), (1, 40));
    }

    #[tokio::test]
    async fn a_parked_reader_of_replaced_tracks_is_closed() {
        let s = stream();
        let mut r = parked_reader(&s, 0..1);
        let audio_only = vec![TrackInfo::new(
            CodecParams::Pcma {
                rate: 8000,
                channels: 1,
            },
            0,
        )];
        assert_eq!(s.set_tracks(audio_only), Retrack::Replaced);
        assert!(!r.resume());
        assert!(matches!(r.recv().await, Next::Closed));
        assert_eq!(s.reader_count(), 0);
    }

    #[tokio::test]
    async fn new_tracks_end_readers_and_new_parameter_sets_update_the_track() {
        let s = stream();
        let mut layout = s.layout();
        s.push(video(0));
        let (mut r, _) = s.subscribe();
        assert!(matches!(r.recv().await, Next::Frame(_)));
        // Same codecs with other parameter sets: readers go on.
        let mut tracks = (*s.tracks()).clone();
        tracks[0].codec = CodecParams::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x28]),
            pps: Bytes::from_static(PPS),
        };
        assert_eq!(s.set_tracks(tracks.clone()), Retrack::Updated);
        assert_eq!(s.set_tracks(tracks), Retrack::Same);
        assert!(layout.has_changed().unwrap_or(false));
        layout.mark_unchanged();
        s.push(video(1));
        assert!(matches!(r.recv().await, Next::Frame(f) if f.au.pts == 3600));
        // A keyframe with the original SPS in band puts it back into the track.
        s.push(video(50));
        assert!(matches!(&s.tracks()[0].codec, CodecParams::H264 { sps, .. } if sps[..] == *SPS));
        assert!(layout.has_changed().unwrap_or(false));
        // Other codecs: the old readers end, new ones read the new tracks.
        let audio_only = vec![TrackInfo::new(
            CodecParams::Pcma {
                rate: 8000,
                channels: 1,
            },
            0,
        )];
        assert_eq!(s.set_tracks(audio_only), Retrack::Replaced);
        while let Some(_f) = r.try_recv() {}
        assert!(matches!(r.recv().await, Next::Closed));
        let (mut r2, _) = s.subscribe();
        s.push(AccessUnit {
            track: 0,
            ..audio(0)
        });
        assert!(matches!(r2.recv().await, Next::Frame(f) if !f.video && f.track == 0));
    }

    #[test]
    fn push_never_blocks_without_readers_and_keeps_one_gop() {
        let s = stream();
        for n in 0..1000 {
            s.push(video(n));
        }
        assert_eq!(
            s.lock().gop.len(),
            50,
            "frames 950..999, since the keyframe at 950"
        );
        assert_eq!(s.stats.frames_in.load(Ordering::Relaxed), 1000);
    }
}
