//! The PLAY task of a live session: takes frames from the camera's fan-out reader and sends
//! their RTP packets to the client, interleaved (`$` framing, RFC 2326 §10.12) or over UDP,
//! plus RTCP sender reports (RFC 3550 §6.4.1) every few seconds on every transport.
//!
//! Interleaved writes are batched: every frame ready at the moment is written with one
//! vectored write (`writev`), the shared packet bytes referenced, not copied. A successful
//! write counts as keep-alive for the session; a client that stops reading blocks only its
//! own task, falls behind in the fan-out ring and skips to the next keyframe, and its
//! session times out if it never recovers.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ipcamd_media::fanout::{Frame, Next, Reader};
use ipcamd_media::pacer::now_micros;
use ipcamd_proto::rtcp::{write_sender_report, SenderReport};
use ipcamd_proto::rtsp::message::write_interleaved;
use ipcamd_proto::time::unix_micros_to_ntp;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::session::{Session, TrackTransport};
use crate::state::ServerState;

/// The write half of an RTSP connection (or of a tunnel's GET connection), shared by the
/// request handler (responses) and the PLAY task (media).
pub type Writer = Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

pub fn new_writer(w: impl AsyncWrite + Send + Unpin + 'static) -> Writer {
    Arc::new(tokio::sync::Mutex::new(Box::new(w)))
}

/// Most frames put in one vectored write.
const MAX_BATCH_FRAMES: usize = 32;
const SR_INTERVAL: Duration = Duration::from_secs(5);

/// Writes all of `slices`, looping over partial writes.
pub async fn write_all_vectored(
    w: &mut (dyn AsyncWrite + Send + Unpin),
    mut slices: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Per-track sending state.
struct TrackOut {
    track: usize,
    transport: TrackTransport,
    ssrc: u32,
    clock_rate: u32,
    packets: u32,
    octets: u32,
    /// (rtp timestamp, wallclock) of the last frame sent.
    last: Option<(u32, i64)>,
    sr_sent: bool,
}

impl TrackOut {
    fn sender_report(&self, cname: &str) -> Option<Bytes> {
        let (rtp, wall) = self.last?;
        let now = now_micros();
        let elapsed = (now - wall) as i128;
        let rtp_now = (rtp as i128 + elapsed * self.clock_rate as i128 / 1_000_000) as u32;
        let mut buf = BytesMut::with_capacity(64);
        write_sender_report(
            &mut buf,
            &SenderReport {
                ssrc: self.ssrc,
                ntp: unix_micros_to_ntp(now),
                rtp_timestamp: rtp_now,
                packet_count: self.packets,
                octet_count: self.octets,
            },
            cname,
        );
        Some(buf.freeze())
    }
}

/// Runs until `stop` is requested (PAUSE; checked between writes), aborted (TEARDOWN) or
/// until the client's connection fails.
pub async fn play(
    state: Arc<ServerState>,
    session: Arc<Session>,
    mut reader: Reader,
    stop: Arc<crate::session::StopSignal>,
) {
    let stream = reader.stream().clone();
    let mut outs: Vec<TrackOut> = {
        let st = crate::state::lock(&session.state);
        st.tracks
            .iter()
            .map(|(&track, t)| TrackOut {
                track,
                transport: t.transport.clone(),
                ssrc: stream.ssrc(track).unwrap_or(0),
                clock_rate: stream
                    .tracks()
                    .get(track)
                    .map_or(90_000, |t| t.clock_rate()),
                packets: 0,
                octets: 0,
                last: None,
                sr_sent: false,
            })
            .collect()
    };
    let cname = format!("ipcamd-{}", session.path());
    let mut sr_timer = tokio::time::interval(SR_INTERVAL);
    sr_timer.tick().await;
    let mut batch: Vec<Arc<Frame>> = Vec::with_capacity(MAX_BATCH_FRAMES);
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
                if let Err(e) = send_batch(&state, &session, &mut outs, &batch, &cname).await {
                    tracing::debug!(session = %session.id, error = %e, "client write failed; stopping delivery");
                    return;
                }
            }
            _ = sr_timer.tick() => {
                let mut reports = Vec::new();
                for o in &outs {
                    if let Some(sr) = o.sender_report(&cname) {
                        reports.push((o.transport.clone(), sr));
                    }
                }
                for (t, sr) in reports {
                    if let Err(e) = send_rtcp(&state, &t, sr).await {
                        tracing::debug!(session = %session.id, error = %e, "RTCP write failed; stopping delivery");
                        return;
                    }
                }
            }
        }
    }
}

/// Writes one RTCP packet on a track's transport (interleaved RTCP channel or UDP).
pub(crate) async fn send_rtcp(
    state: &ServerState,
    t: &TrackTransport,
    pkt: Bytes,
) -> std::io::Result<()> {
    match t {
        TrackTransport::Interleaved {
            writer,
            rtcp_channel,
            ..
        } => {
            let hdr = write_interleaved(*rtcp_channel, pkt.len());
            let mut w = writer.lock().await;
            let mut slices = [IoSlice::new(&hdr), IoSlice::new(&pkt)];
            write_all_vectored(&mut **w, &mut slices).await
        }
        TrackTransport::Udp { rtcp, .. } => state.udp.send_rtcp(&pkt, *rtcp).await,
    }
}

async fn send_batch(
    state: &ServerState,
    session: &Session,
    outs: &mut [TrackOut],
    batch: &[Arc<Frame>],
    cname: &str,
) -> std::io::Result<()> {
    // Interleaved packets of all tracks go to the same writer (one per session in
    // practice); collect their headers first, then one vectored write.
    let mut headers: Vec<[u8; 4]> = Vec::new();
    let mut parts: Vec<(usize, &Bytes)> = Vec::new(); // (header index, packet)
    let mut writer: Option<crate::delivery::Writer> = None;
    let mut first_srs: Vec<(TrackTransport, Bytes)> = Vec::new();
    let mut udp_sends: Vec<(SocketAddr, &Bytes)> = Vec::new();
    for f in batch {
        let Some(out) = outs.iter_mut().find(|o| o.track == f.track) else {
            continue;
        };
        out.last = Some((f.rtp_timestamp, f.wallclock));
        for p in &f.packets {
            out.packets = out.packets.wrapping_add(1);
            out.octets = out.octets.wrapping_add(p.len().saturating_sub(12) as u32);
            match &out.transport {
                TrackTransport::Interleaved {
                    writer: w,
                    rtp_channel,
                    ..
                } => {
                    if writer.is_none() {
                        writer = Some(w.clone());
                    }
                    headers.push(write_interleaved(*rtp_channel, p.len()));
                    parts.push((headers.len() - 1, p));
                }
                TrackTransport::Udp { rtp, .. } => udp_sends.push((*rtp, p)),
            }
        }
        if !out.sr_sent {
            // The first SR right after the first frame lets clients map RTP to NTP at once.
            out.sr_sent = true;
            if let Some(sr) = out.sender_report(cname) {
                first_srs.push((out.transport.clone(), sr));
            }
        }
    }
    if let Some(w) = writer {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() * 2);
        for (h, p) in &parts {
            slices.push(IoSlice::new(&headers[*h]));
            slices.push(IoSlice::new(p));
        }
        let mut guard = w.lock().await;
        write_all_vectored(&mut **guard, &mut slices).await?;
        guard.flush().await?;
        drop(guard);
        session.touch();
    }
    for (addr, p) in udp_sends {
        state.udp.send_rtp(p, addr).await?;
    }
    for (t, sr) in first_srs {
        send_rtcp(state, &t, sr).await?;
    }
    Ok(())
}
