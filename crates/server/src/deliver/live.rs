//! The live delivery of a session: takes frames from the camera's fan-out reader and sends
//! their RTP packets to the client, interleaved (`$` framing, RFC 2326 §10.12) or over UDP,
//! plus RTCP sender reports (RFC 3550 §6.4.1) right after the first frame of each track and
//! every 5 s on every transport.
//!
//! Interleaved writes are batched: every frame ready at the moment is written with one
//! vectored write (`writev`), the shared packet bytes referenced, not copied: a frame the
//! fan-out framed for this reader's channel already is one slice. A successful
//! write keeps the session alive (reported at most once a second); a client that stops
//! reading blocks only its own task, falls behind in the fan-out ring and skips to the next
//! keyframe, and its session times out if it never recovers.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipcamd_media::fanout::{Frame, Next, Reader};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::rtsp::message::write_interleaved;
use tokio::io::AsyncWriteExt;

use super::direct::{DirectFanout, Slot};
use super::rtcp::SrState;
use super::udp::UdpPair;
use super::wire::{send_rtcp, write_all_vectored, OwnedWriteGuard, Sink, TrackSink, Writer};
use super::{Delivery, Progress, SessionHooks, StopSignal};

/// Most frames put in one vectored write.
const MAX_BATCH_FRAMES: usize = 32;
const SR_INTERVAL: Duration = Duration::from_secs(5);
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(1);

/// Per-track sending state.
struct TrackOut {
    track: usize,
    sink: Sink,
    sr: SrState,
    sr_sent: bool,
}

/// What a live delivery needs.
pub struct LiveDelivery {
    pub session: String,
    pub reader: Reader,
    pub tracks: Vec<TrackSink>,
    pub udp: Arc<UdpPair>,
    pub hooks: Arc<dyn SessionHooks>,
    /// RTCP CNAME (`ipcamd-<camera>`).
    pub cname: String,
    /// The camera's direct fan-out, which serves a TCP client that keeps up (`direct.rs`).
    pub direct: Option<Arc<DirectFanout>>,
    /// How often the session is kept alive while the camera's writer serves the client
    /// (a fraction of the session timeout).
    pub keep_alive_every: Duration,
}

/// Starts the delivery; it runs until stopped, or until the client's connection fails.
pub fn spawn(d: LiveDelivery) -> Delivery {
    let stop = Arc::new(StopSignal::default());
    let progress = Arc::new(Progress::default());
    let task = tokio::spawn(run(d, stop.clone()));
    Delivery {
        number: 0,
        stop,
        progress,
        task,
    }
}

/// Requests the stop when dropped: however a delivery ends, the camera's writer must let
/// its client go.
struct StopOnExit(Arc<StopSignal>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.request();
    }
}

/// The delivery's task. A plain function that takes `d` apart and returns an `async`
/// block over the parts: an `async fn` (or a block around one) keeps its arguments beside
/// what it makes of them, for the task's whole life, and this task lives as long as its
/// reader (with one `Notify` for the stop and the hand-back: 1104 -> 592 bytes a reader).
fn run(d: LiveDelivery, stop: Arc<StopSignal>) -> impl std::future::Future<Output = ()> + Send {
    let LiveDelivery {
        session,
        mut reader,
        tracks,
        udp,
        hooks,
        cname,
        direct: fanout,
        keep_alive_every,
    } = d;
    let stream = reader.stream().clone();
    let mut outs: Vec<TrackOut> = tracks
        .into_iter()
        .map(|t| TrackOut {
            track: t.track,
            sr: SrState::new(
                t.ssrc,
                stream
                    .tracks()
                    .get(t.track)
                    .map_or(90_000, |i| i.clock_rate()),
            ),
            sink: t.sink,
            sr_sent: false,
        })
        .collect();
    let handoff = fanout.and_then(|f| Some((f, direct_writer(&outs)?)));
    // One timer for the sender reports and, while the camera's writer serves the client,
    // the keep-alive (a task's memory is per reader: one timer, not two).
    let tick_every = keep_alive_every.min(SR_INTERVAL);
    async move {
        // The guard owns the task's one reference to the stop signal.
        let stop_on_exit = StopOnExit(stop);
        let stop = &stop_on_exit.0;
        // While the camera's writer serves the client: its slot, and the last frame it had
        // sent at the previous keep-alive.
        let mut direct: Option<(Arc<Slot>, u64)> = None;
        let mut timer = tokio::time::interval(tick_every);
        timer.tick().await;
        let mut last_sr = Instant::now();
        let mut batch: Vec<Arc<Frame>> = Vec::new();
        let mut last_alive = Instant::now();
        loop {
            if stop.requested() {
                Box::pin(finish_direct(direct.take(), &mut outs)).await;
                return;
            }
            tokio::select! {
                // A stop, or the camera's writer handing the client back (it wakes the
                // delivery through the same signal).
                _ = stop.wake.notified() => {
                    if stop.requested() {
                        Box::pin(finish_direct(direct.take(), &mut outs)).await;
                        return;
                    }
                    let Some(back) = direct.as_ref().and_then(|(slot, _)| slot.take_back()) else {
                        continue;
                    };
                    if let Some((slot, _)) = direct.take() {
                        fold_sent(&slot, &mut outs);
                    }
                    // Back into the ring before the rest is written: a slow client's
                    // frames wait there from now on.
                    reader.skip_through(back.through);
                    reader.resume();
                    if let Some((rest, guard)) = back.rest {
                        if let Err(e) = Box::pin(write_rest(guard, &rest)).await {
                            tracing::debug!(session = %session, error = %e, "client write failed; stopping delivery");
                            return;
                        }
                    }
                }
                next = reader.recv(), if direct.is_none() => {
                    let Next::Frame(first) = next else { return };
                    batch.clear();
                    batch.push(first);
                    while batch.len() < MAX_BATCH_FRAMES {
                        match reader.try_recv() {
                            Some(f) => batch.push(f),
                            None => break,
                        }
                    }
                    // Boxed, as the rare writes below: inline, their states would size the task
                    // of every reader for its whole life, most of which the camera's writer
                    // serves.
                    match Box::pin(send_batch(&udp, &mut outs, &batch, &cname)).await {
                        Ok((wrote_tcp, bytes)) => {
                            stream.stats.bytes_out.fetch_add(bytes, Ordering::Relaxed);
                            if wrote_tcp && last_alive.elapsed() >= KEEP_ALIVE_EVERY {
                                last_alive = Instant::now();
                                hooks.keep_alive(&session);
                            }
                        }
                        Err(e) => {
                            tracing::debug!(session = %session, error = %e, "client write failed; stopping delivery");
                            return;
                        }
                    }
                    // Caught up with the ring (the batch did not fill), every track's first
                    // report sent: the camera's writer may take the client.
                    if let Some((fanout, (writer, mask))) = &handoff {
                        if batch.len() < MAX_BATCH_FRAMES && outs.iter().all(|o| o.sr_sent) {
                            let from = reader.last_index() + 1;
                            let slot = Slot::new(writer.clone(), *mask, stream.tracks().len(), stop.clone(), from);
                            if fanout.join(slot.clone(), reader.ring()) {
                                direct = Some((slot, from - 1));
                                // Out of the ring while the writer serves the client: a
                                // receiver that does not read would keep the whole ring.
                                reader.park();
                                // Not needed until the client comes back.
                                batch = Vec::new();
                            }
                        }
                    }
                }
                _ = timer.tick() => {
                    if let Some((slot, alive_at)) = &mut direct {
                        let written = slot.written.load(Ordering::Relaxed);
                        if written > *alive_at {
                            *alive_at = written;
                            hooks.keep_alive(&session);
                        }
                    }
                    if last_sr.elapsed() + tick_every / 2 < SR_INTERVAL {
                        continue;
                    }
                    last_sr = Instant::now();
                    if let Some((slot, _)) = &direct {
                        fold_sent(slot, &mut outs);
                    }
                    let now = now_micros();
                    let reports: Vec<(Sink, Bytes)> = outs
                        .iter()
                        .filter_map(|o| Some((o.sink.clone(), o.sr.report(now, false, &cname)?)))
                        .collect();
                    for (sink, sr) in reports {
                        if let Err(e) = Box::pin(send_rtcp(&udp, &sink, sr)).await {
                            tracing::debug!(session = %session, error = %e, "RTCP write failed; stopping delivery");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The connection writer and tracks (bit `i` for track `i`) of a delivery the camera's
/// writer can serve: every track interleaved on the same plain TCP connection, on channel
/// `2 x track` (the channel the fan-out frames packets for).
fn direct_writer(outs: &[TrackOut]) -> Option<(Writer, u64)> {
    let mut writer: Option<Writer> = None;
    let mut mask = 0u64;
    for o in outs {
        let Sink::Interleaved {
            writer: w,
            rtp_channel,
            ..
        } = &o.sink
        else {
            return None;
        };
        if w.tcp_fd.is_none() || usize::from(*rtp_channel) != 2 * o.track || o.track >= 64 {
            return None;
        }
        match &writer {
            Some(prev) if !Arc::ptr_eq(prev, w) => return None,
            Some(_) => {}
            None => writer = Some(w.clone()),
        }
        mask |= 1 << o.track;
    }
    Some((writer?, mask))
}

/// Writes what the camera's writer left of a frame.
async fn write_rest(mut guard: OwnedWriteGuard, rest: &[u8]) -> std::io::Result<()> {
    guard.write_all(rest).await
}

/// Adds what the camera's writer sent to the sender reports' counts.
fn fold_sent(slot: &Slot, outs: &mut [TrackOut]) {
    let sent = slot.take_sent();
    for o in outs {
        if let Some(s) = sent.get(o.track) {
            o.sr.packets = o.sr.packets.wrapping_add(s.packets);
            o.sr.octets = o.sr.octets.wrapping_add(s.octets);
            if s.last.is_some() {
                o.sr.last = s.last;
            }
        }
    }
}

/// A stop while the camera's writer serves the client (the stop is requested already, so
/// the writer sends nothing once it sees it): waits for a write in progress, and finishes
/// a frame it left half written, so that PAUSE never cuts a frame.
async fn finish_direct(direct: Option<(Arc<Slot>, u64)>, outs: &mut [TrackOut]) {
    let Some((slot, _)) = direct else { return };
    loop {
        if let Some(back) = slot.take_back() {
            if let Some((rest, guard)) = back.rest {
                let _ = write_rest(guard, &rest).await;
            }
            break;
        }
        tokio::select! {
            // Free: the writer is not in a write, and from now on sees the stop.
            _ = slot.writer().lock() => break,
            // It handed a frame back (with the lock, when half written), through the
            // stop signal's wake.
            _ = slot.stop().wake.notified() => {}
        }
    }
    fold_sent(&slot, outs);
}

/// Sends one batch: whether interleaved data was written, and the RTP bytes sent.
///
/// The UDP and RTCP sends are boxed: their states are large and rare for a TCP reader (an
/// RTCP report every 5 s), and inline they would size every reader's task (its memory).
async fn send_batch(
    udp: &UdpPair,
    outs: &mut [TrackOut],
    batch: &[Arc<Frame>],
    cname: &str,
) -> std::io::Result<(bool, u64)> {
    // Interleaved packets of all tracks go to the same writer (one per session in
    // practice); collect their headers first, then one vectored write.
    let mut headers: Vec<[u8; 4]> = Vec::new();
    // (header index, bytes): a packet behind a header of ours, or a frame framed already.
    let mut parts: Vec<(Option<usize>, &Bytes)> = Vec::with_capacity(batch.len());
    let mut writer: Option<Writer> = None;
    let mut first_srs: Vec<(Sink, Bytes)> = Vec::new();
    let mut udp_sends: Vec<(SocketAddr, &Bytes)> = Vec::new();
    let now = now_micros();
    let mut bytes = 0u64;
    for f in batch {
        let Some(out) = outs.iter_mut().find(|o| o.track == f.track) else {
            continue;
        };
        out.sr.last = Some((f.rtp_timestamp, f.wallclock));
        for p in &f.packets {
            out.sr.count(p.len().saturating_sub(12));
            bytes += p.len() as u64;
        }
        match &out.sink {
            Sink::Interleaved {
                writer: w,
                rtp_channel,
                ..
            } => {
                if writer.is_none() {
                    writer = Some(w.clone());
                }
                match &f.interleaved {
                    Some((c, wire)) if c == rtp_channel => parts.push((None, wire)),
                    _ => {
                        for p in &f.packets {
                            headers.push(write_interleaved(*rtp_channel, p.len()));
                            parts.push((Some(headers.len() - 1), p));
                        }
                    }
                }
            }
            Sink::Udp { rtp, .. } => udp_sends.extend(f.packets.iter().map(|p| (*rtp, p))),
        }
        if !out.sr_sent {
            // The first SR right after the first frame lets clients map RTP to NTP at once.
            out.sr_sent = true;
            if let Some(sr) = out.sr.report(now, false, cname) {
                first_srs.push((out.sink.clone(), sr));
            }
        }
    }
    let wrote = writer.is_some();
    if let Some(w) = writer {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() * 2);
        for (h, p) in &parts {
            if let Some(h) = h {
                slices.push(IoSlice::new(&headers[*h]));
            }
            slices.push(IoSlice::new(p));
        }
        let mut guard = w.lock().await;
        write_all_vectored(&mut **guard, &mut slices).await?;
        guard.flush().await?;
    }
    // Consecutive packets to one address (a frame's, in practice) in one segmented send.
    let mut rest = &udp_sends[..];
    while let Some(&(addr, _)) = rest.first() {
        let n = rest.iter().take_while(|(a, _)| *a == addr).count();
        let run: Vec<&Bytes> = rest[..n].iter().map(|(_, p)| *p).collect();
        Box::pin(udp.send_rtp_all(&run, addr)).await?;
        rest = &rest[n..];
    }
    for (sink, sr) in first_srs {
        Box::pin(send_rtcp(udp, &sink, sr)).await?;
    }
    Ok((wrote, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hooks;
    impl SessionHooks for Hooks {
        fn keep_alive(&self, _: &str) {}
        fn replay_finished(&self, _: &str, _: u64, _: Option<i64>) -> bool {
            false
        }
    }

    /// A live delivery's task lives as long as its session: its size is memory per reader
    /// (bench/run's "resident memory per added reader"). Writes that are rare once the
    /// camera's writer serves the client are boxed to keep it small.
    #[tokio::test]
    async fn a_live_delivery_task_stays_small() {
        let stream = ipcamd_media::fanout::Stream::new("t", vec![]);
        let (reader, _) = stream.subscribe();
        let udp = Arc::new(UdpPair::bind([127, 0, 0, 1].into(), 0, true).await.unwrap());
        let d = LiveDelivery {
            session: "s".into(),
            reader,
            tracks: vec![],
            udp,
            hooks: Arc::new(Hooks),
            cname: "c".into(),
            direct: None,
            keep_alive_every: Duration::from_secs(1),
        };
        let f = run(d, Arc::new(StopSignal::default()));
        let size = std::mem::size_of_val(&f);
        assert!(
            size <= 640,
            "the live delivery's future is {size} bytes (592 when this test was written): box \
             the state of a rare await (as send_batch and finish_direct are), and keep `run` a \
             plain function around an async block (an async fn keeps its arguments twice)"
        );
    }
}
