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

use super::rtcp::SrState;
use super::udp::UdpPair;
use super::wire::{send_rtcp, write_all_vectored, Sink, TrackSink, Writer};
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

async fn run(d: LiveDelivery, stop: Arc<StopSignal>) {
    let LiveDelivery {
        session,
        mut reader,
        tracks,
        udp,
        hooks,
        cname,
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
    let mut sr_timer = tokio::time::interval(SR_INTERVAL);
    sr_timer.tick().await;
    let mut batch: Vec<Arc<Frame>> = Vec::with_capacity(MAX_BATCH_FRAMES);
    let mut last_alive = Instant::now();
    loop {
        if stop.requested() {
            return;
        }
        tokio::select! {
            _ = stop.wake.notified() => return,
            next = reader.recv() => {
                let Next::Frame(first) = next else { return };
                batch.clear();
                batch.push(first);
                while batch.len() < MAX_BATCH_FRAMES {
                    match reader.try_recv() {
                        Some(f) => batch.push(f),
                        None => break,
                    }
                }
                match send_batch(&udp, &mut outs, &batch, &cname).await {
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
            }
            _ = sr_timer.tick() => {
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
