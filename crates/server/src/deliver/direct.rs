//! The direct fan-out of one camera: one task writes each frame to every TCP reader that
//! keeps up, as gst-rtsp-server's send thread does, instead of waking a task per reader
//! per frame. Hand-written: it is the server's own scheduling, no crate does it.
//!
//! A live delivery (`live.rs`) starts on its own: it sends the GOP backlog and catches up
//! with the ring. Once it has, it hands its client to the camera's writer as a [`Slot`]
//! and only wakes for RTCP reports, a stop, or its client coming back to it. For every
//! frame the writer tries one non-blocking write per slot (the frame is one slice, already
//! framed for the slot's interleaved channel). A slot whose socket does not take the whole
//! frame at once, whose connection writer is busy (an RTSP response), or whose frame is not
//! framed for it goes back to its delivery with what is left of the frame and the
//! connection's lock ([`Back`]): the delivery writes that, then goes on from its own ring reader after the
//! last frame the writer sent ([`ipcamd_media::fanout::Reader::skip_through`]). So a slow
//! client never makes the writer wait, and keeps the ring's behaviour (it falls behind,
//! skips to a keyframe) on its own task.
//!
//! Frames have stream-wide indices. A slot says from which index on it wants frames; the
//! writer takes it only if it has not started that frame yet (else the delivery stays on
//! its own and tries again later), so no frame is lost or sent twice at the hand-over.
//!
//! Only plain TCP connections whose channels are `2 x track` (what ffmpeg, GStreamer and
//! VLC ask for) take part: a TLS writer buffers, so a write that returns is not yet on the
//! socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ipcamd_media::fanout::{Frame, Next, Stream};
use ipcamd_proto::time::UnixMicros;
use smallvec::SmallVec;

use super::wire::{OwnedWriteGuard, Writer};
use super::StopSignal;
use crate::sync::lock;

/// Slots the writer serves before it lets other tasks of its worker run.
const SLOTS_PER_TURN: usize = 256;

/// What the writer sent on one track of a slot since the delivery last looked.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    pub packets: u32,
    pub octets: u32,
    /// (RTP timestamp, wallclock) of the last frame sent.
    pub last: Option<(u32, UnixMicros)>,
}

/// Where a slot's delivery takes over again.
pub struct Back {
    /// The rest of the frame at `through`, when the socket took only part of it, with the
    /// connection's lock still held: nothing (an RTSP response) may come between the two
    /// parts of a frame.
    pub rest: Option<(Bytes, OwnedWriteGuard)>,
    /// The last frame the writer sent (wholly, or started: see `rest`).
    pub through: u64,
}

/// One reader's client, served by the camera's writer.
pub struct Slot {
    writer: Writer,
    /// Tracks it takes (bit `i` for track `i`).
    tracks: u64,
    /// Its delivery's stop: the writer checks it with the connection's lock held, so
    /// nothing is written after a stop has taken the lock.
    stop: Arc<StopSignal>,
    /// Frames from this index on are the writer's to send.
    from: u64,
    /// Index of the last frame the writer sent wholly (keep-alive).
    pub written: AtomicU64,
    /// Per track; inline for up to two (video and audio), so that counting a frame touches
    /// no memory beyond the slot's own.
    sent: Mutex<SmallVec<[Sent; 2]>>,
    /// Set when the writer lets the slot go; it then wakes the delivery through its stop
    /// signal's `wake` (one `Notify` per reader, not two: the delivery checks for both).
    /// Boxed: a slot lives as long as its reader, a hand-back is rare.
    back: Mutex<Option<Box<Back>>>,
}

impl Slot {
    pub fn new(
        writer: Writer,
        tracks: u64,
        ntracks: usize,
        stop: Arc<StopSignal>,
        from: u64,
    ) -> Arc<Slot> {
        Arc::new(Slot {
            writer,
            tracks,
            stop,
            from,
            written: AtomicU64::new(from.saturating_sub(1)),
            sent: Mutex::new(smallvec::smallvec![Sent::default(); ntracks]),
            back: Mutex::new(None),
        })
    }

    /// The client's connection writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Its delivery's stop signal (whose `wake` also says the slot was handed back).
    pub fn stop(&self) -> &StopSignal {
        &self.stop
    }

    /// What was sent since the last call, per track (counts reset).
    pub fn take_sent(&self) -> Vec<Sent> {
        let mut sent = lock(&self.sent);
        let out = sent.to_vec();
        for s in sent.iter_mut() {
            s.packets = 0;
            s.octets = 0;
        }
        out
    }

    /// The hand-back, once the writer let the slot go.
    pub fn take_back(&self) -> Option<Back> {
        lock(&self.back).take().map(|b| *b)
    }

    fn give_back(&self, back: Back) {
        *lock(&self.back) = Some(Box::new(back));
        self.stop.wake.notify_one();
    }
}

#[derive(Default)]
struct Set {
    /// Slots that joined since the writer last looked.
    joining: Vec<Arc<Slot>>,
    /// Index of the frame the writer is on (or last finished).
    at: u64,
    /// The ring the running writer reads; `None`: no writer runs.
    ring: Option<u64>,
}

/// The direct fan-out of one camera's stream.
pub struct DirectFanout {
    stream: Arc<Stream>,
    set: Mutex<Set>,
}

impl DirectFanout {
    pub fn new(stream: Arc<Stream>) -> Arc<DirectFanout> {
        Arc::new(DirectFanout {
            stream,
            set: Mutex::new(Set::default()),
        })
    }

    /// Hands `slot` to the writer, which sends frames from `slot.from` on if it has not
    /// started that frame yet; `ring` is the delivery's ring. `false`: the delivery goes
    /// on sending itself (try again later).
    pub fn join(self: &Arc<Self>, slot: Arc<Slot>, ring: u64) -> bool {
        let mut set = lock(&self.set);
        match set.ring {
            Some(r) if r == ring && slot.from > set.at => {
                set.joining.push(slot);
                self.count_join();
                true
            }
            Some(_) => false,
            None => {
                let reader = self.stream.subscribe_writer();
                if reader.ring() != ring || slot.from <= reader.last_index() {
                    return false;
                }
                set.ring = Some(ring);
                set.at = reader.last_index();
                set.joining.push(slot);
                self.count_join();
                // Unconstrained: tokio's cooperative budget would make the 129th write of a
                // turn "would block" (and hand a healthy client back); the writer yields
                // every SLOTS_PER_TURN slots instead.
                tokio::spawn(tokio::task::unconstrained(self.clone().run(reader)));
                true
            }
        }
    }

    fn count_join(&self) {
        self.stream
            .stats
            .direct_joins
            .fetch_add(1, Ordering::Relaxed);
    }

    async fn run(self: Arc<Self>, mut reader: ipcamd_media::fanout::Reader) {
        let mut slots: Vec<Arc<Slot>> = Vec::new();
        loop {
            let skips = reader.skips;
            let next = reader.recv().await;
            let frame = match next {
                Next::Frame(f) if reader.skips == skips => Some(f),
                // Closed, or the writer itself fell behind the ring: every client goes
                // back to its own delivery, which knows what it missed.
                _ => None,
            };
            {
                let mut set = lock(&self.set);
                slots.append(&mut set.joining);
                match &frame {
                    Some(f) => set.at = f.index,
                    None => set.ring = None,
                }
            }
            let Some(f) = frame else {
                for s in slots.drain(..) {
                    let through = s.written.load(Ordering::Relaxed);
                    s.give_back(Back {
                        rest: None,
                        through,
                    });
                }
                return;
            };
            let rtp_bytes: u64 = f.packets.iter().map(|p| p.len() as u64).sum();
            let payload = f.payload_bytes() as u32;
            let mut sent_to = 0u64;
            let before = slots.len();
            let mut i = 0;
            let mut served = 0;
            while i < slots.len() {
                prefetch_ahead(&slots, i);
                match write_frame(&slots[i], &f, payload) {
                    Outcome::Sent => sent_to += 1,
                    Outcome::Skipped => {}
                    Outcome::Started => {
                        sent_to += 1;
                        slots.swap_remove(i);
                        continue;
                    }
                    Outcome::Left => {
                        slots.swap_remove(i);
                        continue;
                    }
                }
                i += 1;
                served += 1;
                if served % SLOTS_PER_TURN == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let stats = &self.stream.stats;
            stats
                .bytes_out
                .fetch_add(sent_to * rtp_bytes, Ordering::Relaxed);
            stats
                .direct_returns
                .fetch_add((before - slots.len()) as u64, Ordering::Relaxed);
            if slots.is_empty() && self.stop_if_idle() {
                return;
            }
        }
    }

    /// Ends the writer when no slot is left or joining.
    fn stop_if_idle(&self) -> bool {
        let mut set = lock(&self.set);
        if set.joining.is_empty() {
            set.ring = None;
            true
        } else {
            false
        }
    }
}

/// Asks the CPU to fetch what [`write_frame`] will touch of the next slots while it sends to
/// slot `i`: each slot's memory, its stop signal and connection writer, and the connection's
/// lock, one level of pointers per slot ahead (a slot's fields are read only once its own
/// memory has been fetched). Between two frames nothing else touches these, so without it
/// every one is a cache miss in turn (bench/RESULTS-profile.md).
fn prefetch_ahead(slots: &[Arc<Slot>], i: usize) {
    if let Some(s) = slots.get(i + 3) {
        let p = Arc::as_ptr(s).cast::<u8>();
        prefetch(p);
        prefetch(p.wrapping_add(64));
        prefetch(p.wrapping_add(128));
    }
    if let Some(s) = slots.get(i + 2) {
        prefetch(Arc::as_ptr(&s.stop).cast());
        prefetch(Arc::as_ptr(&s.writer).cast());
    }
    if let Some(s) = slots.get(i + 1) {
        prefetch(s.writer.lock_ptr());
    }
}

#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program and never faults,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

enum Outcome {
    Sent,
    /// Part of the frame went; the slot went back to its delivery with the rest.
    Started,
    /// Not a track of the slot, or a frame from before it joined.
    Skipped,
    /// The slot left the writer (stopped, or handed back).
    Left,
}

fn write_frame(slot: &Slot, f: &Frame, payload: u32) -> Outcome {
    if slot.stop.requested() {
        return Outcome::Left;
    }
    if slot.tracks & (1u64 << f.track.min(63)) == 0 || f.index < slot.from {
        return Outcome::Skipped;
    }
    let back_before = |rest| {
        slot.give_back(Back {
            rest,
            through: f.index - 1,
        });
        Outcome::Left
    };
    let wire = match &f.interleaved {
        Some((c, wire)) if usize::from(*c) == 2 * f.track => wire,
        _ => return back_before(None),
    };
    let Some(fd) = slot.writer.tcp_fd else {
        return back_before(None);
    };
    let Some(w) = slot.writer.try_lock_owned() else {
        return back_before(None);
    };
    if slot.stop.requested() {
        return Outcome::Left;
    }
    // Never waits: a socket without room is the delivery's to wait for. Straight to the
    // socket, not through tokio's write half: one call per frame and reader is the whole
    // of this writer's work, and the half's readiness bookkeeping and the pointers to it
    // cost more than the call itself does in user space (bench/RESULTS-profile.md).
    // Tokio is not told of a full socket: the delivery's own write finds it out again.
    // SAFETY: `fd` is the socket of the write half `w` locks; the half owns the socket,
    // and lives (behind its lock) at least as long as `w`. `wire` is valid for its length.
    let sent = unsafe {
        libc::send(
            fd,
            wire.as_ptr().cast(),
            wire.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    // Would block, or failed: the delivery finds out which when it writes.
    let n = usize::try_from(sent).unwrap_or(0);
    if n == 0 {
        drop(w);
        return back_before(None);
    }
    {
        let mut sent = lock(&slot.sent);
        if let Some(s) = sent.get_mut(f.track) {
            s.packets = s.packets.wrapping_add(f.packets.len() as u32);
            s.octets = s.octets.wrapping_add(payload);
            s.last = Some((f.rtp_timestamp, f.wallclock));
        }
    }
    if n < wire.len() {
        slot.give_back(Back {
            rest: Some((wire.slice(n..), w)),
            through: f.index,
        });
        return Outcome::Started;
    }
    drop(w);
    slot.written.store(f.index, Ordering::Relaxed);
    Outcome::Sent
}
