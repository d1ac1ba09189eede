//! The backchannel relay: a talker's audio to a proxied camera's own ONVIF backchannel.
//! Written by hand on the client crate's backchannel session (`open_backchannel`, the same
//! code `ipcamd talk` uses) and its PCM encoders.
//!
//! ```text
//!  talker SETUP (ours)  -> Relay::open: connect, DESCRIBE Require backchannel, SETUP the
//!                          camera's a=sendonly section (its first codec we can encode:
//!                          PCMU, PCMA, G.726, L16), PLAY          [refusal: 503 to the talker]
//!  talker RTP (any codec we decode) -> talker thread: jitter buffer, decode, PCM at
//!                          output_rate -> RelayOutput::write -> queue -> pump task:
//!                          resample to the camera's rate, encode, 20 ms RTP -> camera
//!  talker TEARDOWN / timeout / disconnect -> the queue closes -> TEARDOWN to the camera
//!                          (within a second)
//! ```
//!
//! The camera's session exists only while a talker's does: cameras allow one backchannel
//! and some stop their own call button while one is open. One talker at a time (the
//! output's exclusive policy answers 453 to a second).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ipcamd_audio::output::AudioOutput;
use ipcamd_audio::resample::Resampler;
use ipcamd_client::talk::offer::InputKind;
use ipcamd_client::talk::packets::{samples_per_packet, PcmEncoder, RtpStream};
use ipcamd_client::talk::{open_backchannel, Backchannel, BackchannelRequest};
use ipcamd_client::{ClientTls, ClientTransport};
use tokio::sync::mpsc;

use super::redact;

/// PCM blocks queued between the talker thread and the pump (about 2 s of 20 ms blocks).
const QUEUE: usize = 100;

/// A proxied camera's backchannel, as a talk output.
pub struct Relay {
    camera: String,
    /// The camera's RTSP URL (an ONVIF camera's is set again at each connection).
    url: Mutex<String>,
    transport: ClientTransport,
    tls: ClientTls,
    /// The camera offers a backchannel (its last DESCRIBE had an `a=sendonly` section).
    offered: std::sync::atomic::AtomicBool,
    /// The camera's backchannel formats (`NAME/rate`), in its order: our offer puts
    /// these first (`AudioOut::view`).
    camera_codecs: Mutex<Vec<String>>,
    /// Open camera sessions by talker session, until the talker's output takes its queue.
    links: Mutex<HashMap<String, mpsc::Sender<Vec<i16>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("camera", &self.camera)
            .field("url", &redact(&lock(&self.url)))
            .finish_non_exhaustive()
    }
}

/// One relay is equal only to itself (the output lists compare by identity).
impl PartialEq for Relay {
    fn eq(&self, other: &Relay) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Relay {}

impl Relay {
    pub fn new(camera: &str, url: &str, transport: ClientTransport, tls: ClientTls) -> Arc<Relay> {
        Arc::new(Relay {
            camera: camera.to_owned(),
            url: Mutex::new(url.to_owned()),
            transport,
            tls,
            offered: Default::default(),
            camera_codecs: Mutex::new(Vec::new()),
            links: Mutex::new(HashMap::new()),
        })
    }

    pub fn set_url(&self, url: &str) {
        *lock(&self.url) = url.to_owned();
    }

    /// Whether the camera offers a backchannel (as of its last DESCRIBE).
    pub fn offered(&self) -> bool {
        self.offered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the camera's last DESCRIBE with the backchannel tag said: its `a=sendonly`
    /// formats (`NAME/rate`, in its order), empty when it offers no backchannel.
    pub fn set_offered(&self, codecs: Vec<String>) {
        let on = !codecs.is_empty();
        let was = self.offered.swap(on, std::sync::atomic::Ordering::Relaxed);
        let mut current = lock(&self.camera_codecs);
        if was != on || *current != codecs {
            tracing::info!(camera = %self.camera, offered = on, codecs = %codecs.join(" "),
                "the camera's backchannel (relayed to our talkers; its codecs first in our offer)");
        }
        *current = codecs;
    }

    /// The camera's backchannel formats (`NAME/rate`), in its order.
    pub fn camera_codecs(&self) -> Vec<String> {
        lock(&self.camera_codecs).clone()
    }

    /// Opens the camera's backchannel for talker `session`, PCM at `rate` Hz coming (on
    /// the runtime: the pump is spawned there).
    /// Err: the reason for the talker's 503, naming what the camera answered.
    pub async fn open(&self, session: &str, rate: u32) -> Result<(), String> {
        let url = lock(&self.url).clone();
        let shown = redact(&url);
        let mut bc = open_backchannel(BackchannelRequest {
            url: &url,
            transport: self.transport,
            codec: None,
            input: InputKind::Pcm,
            packing: None,
            verbose: false,
            raw_tunnel_rtp: false,
            tls: self.tls.clone(),
        })
        .await
        .map_err(|e| {
            tracing::warn!(camera = %self.camera, url = %shown, error = %e, "the camera's backchannel cannot be opened");
            format!("Service Unavailable (the camera's backchannel: {e})")
        })?;
        bc.play().await.map_err(|e| {
            tracing::warn!(camera = %self.camera, url = %shown, error = %e, "the camera's backchannel refused PLAY");
            format!("Service Unavailable (the camera's backchannel: {e})")
        })?;
        tracing::info!(camera = %self.camera, session, url = %shown, codec = %bc.choice.rtpmap,
            via = %bc.describe(), "relaying talk audio to the camera's backchannel");
        let (tx, rx) = mpsc::channel(QUEUE);
        lock(&self.links).insert(session.to_owned(), tx);
        let camera = self.camera.clone();
        tokio::spawn(pump(bc, rx, rate, camera));
        Ok(())
    }

    /// The output of talker `session` (after [`Relay::open`]); `None` if it was not opened.
    pub fn output(&self, session: &str) -> Option<Box<dyn AudioOutput>> {
        let tx = lock(&self.links).remove(session)?;
        Some(Box::new(RelayOutput { tx: Some(tx) }))
    }

    /// The talker is gone: its camera session closes (if its output never took it).
    pub fn close(&self, session: &str) {
        lock(&self.links).remove(session);
    }
}

/// The talk output that feeds a relay pump.
struct RelayOutput {
    tx: Option<mpsc::Sender<Vec<i16>>>,
}

impl AudioOutput for RelayOutput {
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the relay output is finished"));
        };
        match tx.try_send(pcm.to_vec()) {
            Ok(()) => Ok(()),
            // The camera's connection is slower than real time: drop, the pump counts gaps.
            Err(mpsc::error::TrySendError::Full(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(io::Error::other(
                "the camera's backchannel session has ended",
            )),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        Ok(())
    }
}

/// Encodes the talker's PCM for the camera and sends it until the queue closes, then
/// tears the camera's session down.
async fn pump(mut bc: Backchannel, mut rx: mpsc::Receiver<Vec<i16>>, rate: u32, camera: String) {
    let clock = bc.choice.clock_rate();
    let Some(mut encoder) = PcmEncoder::for_codec(&bc.choice.codec) else {
        tracing::error!(camera, codec = %bc.choice.rtpmap, "the relay cannot encode the camera's codec");
        let _ = bc.teardown(Duration::from_secs(1)).await;
        return;
    };
    let per_packet = samples_per_packet(&encoder, clock);
    let mut resampler = Resampler::new(rate, 1, clock);
    let mut rtp = RtpStream::random(bc.choice.payload_type);
    let mut pending: Vec<i16> = Vec::new();
    let mut sent: u64 = 0;
    let mut payload = Vec::new();
    let mut buf = BytesMut::with_capacity(2048);
    let keepalive_every = bc.client.session_timeout() / 2;
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + keepalive_every,
        keepalive_every,
    );
    let mut failed = None;
    loop {
        tokio::select! {
            block = rx.recv() => {
                let Some(block) = block else { break };
                resampler.process(&block, &mut pending);
                while pending.len() >= per_packet {
                    payload.clear();
                    encoder.encode(&pending[..per_packet], &mut payload);
                    pending.drain(..per_packet);
                    buf.clear();
                    let p = ipcamd_client::talk::packets::MediaPacket {
                        payload: std::mem::take(&mut payload),
                        marker: sent == 0,
                        offset: sent * per_packet as u64,
                        duration: per_packet as u32,
                    };
                    rtp.write(&p, &mut buf);
                    payload = p.payload;
                    if let Err(e) = bc.send(false, &buf).await {
                        failed = Some(e.to_string());
                        break;
                    }
                    sent += 1;
                }
                if failed.is_some() {
                    break;
                }
            }
            _ = keepalive.tick() => {
                if let Err(e) = bc.client.keepalive().await {
                    failed = Some(e.to_string());
                    break;
                }
            }
            frame = bc.client.next_frame() => {
                if let Err(e) = frame {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
    }
    match failed {
        Some(e) => {
            tracing::warn!(camera, packets = sent, error = %e, "relay to the camera's backchannel failed")
        }
        None => tracing::info!(
            camera,
            packets = sent,
            "relay to the camera's backchannel ended"
        ),
    }
    if let Err(e) = bc.teardown(Duration::from_secs(1)).await {
        tracing::debug!(camera, error = %e, "camera backchannel TEARDOWN");
    }
}
