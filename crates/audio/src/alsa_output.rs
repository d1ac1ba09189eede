//! The `alsa` backchannel output: talk audio played on a sound card through libasound
//! (the `alsa` crate; built only with the cargo feature `alsa`, which needs the system's
//! ALSA library, Debian `libasound2-dev`).
//!
//! # What it implements
//!
//! [`AlsaOutput`] opens an ALSA PCM device by name (`default`, `plughw:0`, `hw:1,0`, or any
//! PCM defined in an asoundrc) for playback of interleaved S16 mono at the output rate
//! (the device or the `plug` layer converts; a device that cannot take the rate gets the
//! nearest rate, logged). The device is opened in non-blocking mode, so a device held by
//! another program fails at once (`EBUSY`) instead of hanging the talk session; the error
//! names the device. Writes happen on their own thread, fed by a bounded queue, so the
//! caller never blocks on the card: when the queue is full, audio is dropped and counted.
//!
//! Underruns: talk audio arrives in bursts and stops when the talker pauses, so the card
//! underruns (`EPIPE`) whenever the queue runs dry. The writer recovers with
//! `snd_pcm_recover` (which re-prepares the device), counts it ([`AlsaOutput::xruns`]) and
//! carries on; playback restarts once `START_THRESHOLD_MS` of audio is buffered again. A
//! suspended device (`ESTRPIPE`) is recovered the same way. Any other write error ends
//! the writer: later writes drop their audio and the first one after it reports the error.
//!
//! Left out: mixing with other programs (use a `dmix`/PipeWire `default` device for that),
//! stereo, and choosing period sizes per card (20 ms periods, 200 ms buffer are asked for;
//! the card picks the nearest).
//!
//! Hand-written glue over the `alsa` crate; testable without a sound card through ALSA's
//! `file` PCM plugin (see the integration test `alsa_output` of the `ipcamd` crate).

use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use crate::output::AudioOutput;

/// Blocks of audio queued for the card: at 20 ms blocks, about 1.3 s.
const QUEUE_BLOCKS: usize = 64;
/// Period and buffer asked of the card.
const PERIOD_US: u32 = 20_000;
const BUFFER_US: u32 = 200_000;
/// Playback (re)starts once this much audio is in the card's buffer.
const START_THRESHOLD_MS: u32 = 40;
/// How long the writer waits for room in the card's buffer before checking again.
const WAIT_MS: u32 = 100;
/// How long [`AlsaOutput::open`] waits for the device to be opened and configured.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    xruns: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

/// Talk audio to an ALSA playback device; see the module documentation.
pub struct AlsaOutput {
    tx: Option<SyncSender<Vec<i16>>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    device: String,
    rate: u32,
    error_reported: bool,
}

fn alsa_err(device: &str, what: &str, e: alsa::Error) -> io::Error {
    io::Error::other(format!("ALSA device {device:?}: {what}: {e}"))
}

/// Opens and configures `device` for S16 mono playback at `rate`; returns the PCM and the
/// rate the device accepted.
fn open_pcm(device: &str, rate: u32) -> io::Result<(PCM, u32)> {
    let name = CString::new(device).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("ALSA device name {device:?} contains a NUL byte"),
        )
    })?;
    let pcm = PCM::open(&name, Direction::Playback, true).map_err(|e| {
        alsa_err(
            device,
            "cannot open it for playback (check the name with `aplay -L`, and that no other \
             program holds it)",
            e,
        )
    })?;
    let actual = {
        let hw = HwParams::any(&pcm).map_err(|e| alsa_err(device, "no hardware parameters", e))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| alsa_err(device, "interleaved access refused", e))?;
        hw.set_format(Format::s16())
            .map_err(|e| alsa_err(device, "16-bit samples refused (try plughw:)", e))?;
        hw.set_channels(1)
            .map_err(|e| alsa_err(device, "mono refused (try plughw: or default)", e))?;
        let actual = hw
            .set_rate_near(rate, ValueOr::Nearest)
            .map_err(|e| alsa_err(device, "no usable sample rate", e))?;
        // Best effort: the card picks the nearest sizes it supports.
        let _ = hw.set_period_time_near(PERIOD_US, ValueOr::Nearest);
        let _ = hw.set_buffer_time_near(BUFFER_US, ValueOr::Nearest);
        pcm.hw_params(&hw)
            .map_err(|e| alsa_err(device, "hardware parameters refused", e))?;
        actual
    };
    {
        let sw = pcm
            .sw_params_current()
            .map_err(|e| alsa_err(device, "no software parameters", e))?;
        let threshold = i64::from(actual * START_THRESHOLD_MS / 1000).max(1);
        sw.set_start_threshold(threshold)
            .map_err(|e| alsa_err(device, "start threshold refused", e))?;
        pcm.sw_params(&sw)
            .map_err(|e| alsa_err(device, "software parameters refused", e))?;
    }
    Ok((pcm, actual))
}

impl AlsaOutput {
    /// Opens `device` for 16-bit mono playback at `rate` Hz and starts the writer thread.
    /// Errors name the device and what it refused.
    pub fn open(device: &str, rate: u32) -> io::Result<AlsaOutput> {
        let (tx, rx) = mpsc::sync_channel::<Vec<i16>>(QUEUE_BLOCKS);
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<u32>>();
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let dev = device.to_string();
        // The PCM is opened on the writer thread and stays there.
        let thread = std::thread::Builder::new()
            .name("ipcamd-alsa-output".into())
            .spawn(move || match open_pcm(&dev, rate) {
                Ok((pcm, actual)) => {
                    let _ = ready_tx.send(Ok(actual));
                    run_writer(&pcm, &dev, rx, &thread_shared);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })?;
        let opened = ready_rx.recv_timeout(OPEN_TIMEOUT).map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("ALSA device {device:?}: not opened within {OPEN_TIMEOUT:?}"),
            )
        });
        match opened.and_then(|r| r) {
            Ok(actual) => {
                if actual != rate {
                    tracing::warn!(
                        device,
                        asked = rate,
                        got = actual,
                        "ALSA device does not play the output rate; audio will play at the wrong \
                         speed (use a plughw: or default device, which convert)"
                    );
                }
                tracing::info!(device, rate = actual, "talk audio to ALSA");
                Ok(AlsaOutput {
                    tx: Some(tx),
                    thread: Some(thread),
                    shared,
                    device: device.to_string(),
                    rate: actual,
                    error_reported: false,
                })
            }
            Err(e) => {
                drop(tx);
                let _ = thread.join();
                Err(e)
            }
        }
    }

    /// The device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The rate the device plays.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples handed to ALSA.
    pub fn written_samples(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Samples dropped because the card was too slow or the writer had failed.
    pub fn dropped_samples(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Underruns (and suspends) recovered from.
    pub fn xruns(&self) -> u64 {
        self.shared.xruns.load(Ordering::Relaxed)
    }
}

/// The writer thread: blocks from the queue to the card, recovering from underruns.
fn run_writer(pcm: &PCM, device: &str, rx: Receiver<Vec<i16>>, shared: &Shared) {
    let fail = |what: String| {
        if let Ok(mut slot) = shared.error.lock() {
            *slot = Some(what);
        }
        shared.failed.store(true, Ordering::Release);
    };
    let io = match pcm.io_i16() {
        Ok(io) => io,
        Err(e) => {
            fail(format!("ALSA device {device:?}: no 16-bit I/O: {e}"));
            return;
        }
    };
    'blocks: for block in &rx {
        let mut rest: &[i16] = &block;
        while !rest.is_empty() {
            match io.writei(rest) {
                Ok(n) => {
                    shared.written.fetch_add(n as u64, Ordering::Relaxed);
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) if e.errno() == libc_eagain() => {
                    // Buffer full (non-blocking mode): wait for room.
                    let _ = pcm.wait(Some(WAIT_MS));
                }
                Err(e) => {
                    let errno = e.errno();
                    if pcm.try_recover(e, true).is_ok() {
                        shared.xruns.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(device, errno, "ALSA underrun recovered");
                        continue;
                    }
                    fail(format!(
                        "ALSA device {device:?}: write failed (errno {errno})"
                    ));
                    shared
                        .dropped
                        .fetch_add(rest.len() as u64, Ordering::Relaxed);
                    break 'blocks;
                }
            }
        }
    }
    // Queue closed (finish) or writer failed: play what is buffered, then close.
    if !shared.failed.load(Ordering::Acquire) {
        // Non-blocking mode: drain starts draining and returns EAGAIN; wait for the end
        // (at most the buffer's length, plus a margin).
        if pcm.drain().is_err() {
            let deadline =
                std::time::Instant::now() + Duration::from_micros(u64::from(BUFFER_US) * 2);
            while pcm.state() == alsa::pcm::State::Draining && std::time::Instant::now() < deadline
            {
                let _ = pcm.wait(Some(WAIT_MS));
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // Count what is still queued after a failure.
    for block in rx.try_iter() {
        shared
            .dropped
            .fetch_add(block.len() as u64, Ordering::Relaxed);
    }
}

/// EAGAIN on Linux.
const fn libc_eagain() -> i32 {
    11
}

impl AudioOutput for AlsaOutput {
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(io::Error::other("ALSA output already finished"));
        };
        if self.shared.failed.load(Ordering::Acquire) {
            self.shared
                .dropped
                .fetch_add(pcm.len() as u64, Ordering::Relaxed);
            if self.error_reported {
                return Ok(());
            }
            self.error_reported = true;
            let why = self.shared.error.lock().ok().and_then(|e| e.clone());
            return Err(io::Error::other(why.unwrap_or_else(|| {
                format!("ALSA device {:?}: write failed", self.device)
            })));
        }
        match tx.try_send(pcm.to_vec()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.shared
                    .dropped
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Closes the queue and waits until the writer has played (drained) what it holds.
    fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            tracing::info!(
                device = %self.device,
                written = self.written_samples(),
                dropped = self.dropped_samples(),
                xruns = self.xruns(),
                "ALSA output closed"
            );
        }
        if self.shared.failed.load(Ordering::Acquire) && !self.error_reported {
            self.error_reported = true;
            let why = self.shared.error.lock().ok().and_then(|e| e.clone());
            return Err(io::Error::other(why.unwrap_or_else(|| {
                format!("ALSA device {:?}: write failed", self.device)
            })));
        }
        Ok(())
    }
}

impl Drop for AlsaOutput {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_an_error_naming_it() {
        let e = match AlsaOutput::open("ipcamd_no_such_device", 16000) {
            Ok(_) => panic!("a device that does not exist opened"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("ipcamd_no_such_device"), "{e}");
        let e = match AlsaOutput::open("bad\0name", 16000) {
            Ok(_) => panic!("a name with NUL opened"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("NUL"), "{e}");
    }
}
