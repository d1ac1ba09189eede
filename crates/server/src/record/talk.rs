//! The `record` backchannel output: talk audio added to the camera's recording as one
//! extra audio track, so an export or replay of the footage has what was said to the
//! camera next to what it saw. Off unless a camera lists "record" in its backchannel
//! outputs (docs/onvif.md "Audio backchannel": backchannel audio is not recorded unless the
//! operator asks).
//!
//! # What it implements
//!
//! - The track: PCMU (G.711 µ-law) 8 kHz mono, whatever the talker's codec (talk PCM at the
//!   output rate -> resampled to 8 kHz -> µ-law), in 20 ms units (160 samples). It is
//!   created at recording start ([`talk_track`]) when the camera has the record output, as
//!   the last track of the camera's recording; it holds units only while someone talks.
//! - Time: a unit's capture wallclock is the time it is handed to the output minus the
//!   configured jitter-buffer depth (packets wait that long in the jitter buffer, so this is
//!   about their arrival time), less the duration of the audio written after it in the same
//!   block. Media time (`pts`, 8 kHz ticks) runs on without gaps within a talk burst and is
//!   re-anchored to the wallclock when the two differ by more than [`REANCHOR_MS`] (a new
//!   talk session, a pause); the stored wallclock is derived from `pts`, so both increase.
//!   Audio released faster than real time (a burst after a network stall) keeps `pts`
//!   contiguous and runs ahead of the wallclock until the next pause re-anchors it.
//! - Digital silence (a unit of all-zero samples, e.g. the idle output of the `mix` policy
//!   or silence concealing a lost packet) is not stored: the track stays sparse.
//! - Units go to the camera's recorder thread through its bounded queue; when it is full
//!   they are dropped and counted ([`TalkRecordSink::dropped`]). Sections and segments
//!   stay driven by the camera's video: the store cuts a section only when the whole
//!   camera (all tracks together) goes silent longer than `max_gap`.
//!
//! Left out: storing the talker's own codec (the store would need one sample description
//! per talk session), and several talk tracks (with the `mix` policy the mix is stored).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ipcamd_audio::g711::linear_to_ulaw;
use ipcamd_audio::output::AudioOutput;
use ipcamd_audio::resample::Resampler;
use ipcamd_media::AccessUnit;
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_proto::time::UnixMicros;

use super::RecordItem;
use crate::sync::lock;

/// Rate of the stored talk track.
pub const TALK_RATE: u32 = 8000;
/// Samples per stored unit (20 ms).
const UNIT: usize = 160;
/// Media time is re-anchored to the wallclock when they drift apart by more than this.
pub const REANCHOR_MS: i64 = 100;

/// The track the talk audio is stored in: PCMU/8000 mono (static payload type 0).
pub fn talk_track() -> TrackInfo {
    TrackInfo::new(
        CodecParams::Pcmu {
            rate: TALK_RATE,
            channels: 1,
        },
        0,
    )
}

/// Where a camera's talk audio enters its recording (shared by its talk sessions).
pub struct TalkRecordSink {
    tx: SyncSender<RecordItem>,
    /// Index of the talk track among the recorder's tracks.
    track: usize,
    /// End (`pts` + duration) of the last stored unit, in 8 kHz ticks.
    last_end: Mutex<Option<u64>>,
    stored: AtomicU64,
    dropped: AtomicU64,
    /// The per-unit "cannot be recorded" warning, rate-limited.
    warn_dropped: std::sync::Mutex<ipcamd_proto::throttle::Throttle>,
}

impl TalkRecordSink {
    pub(crate) fn new(tx: SyncSender<RecordItem>, track: usize) -> Arc<TalkRecordSink> {
        Arc::new(TalkRecordSink {
            tx,
            track,
            last_end: Mutex::new(None),
            stored: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            warn_dropped: Default::default(),
        })
    }

    /// Units handed to the recorder.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Units dropped because the recorder's queue was full or the recording had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Places a unit of `len` samples that started at `start` (UTC µs) on the track's
    /// media timeline; returns (pts, wallclock).
    fn place(&self, start: UnixMicros, len: usize) -> (u64, UnixMicros) {
        let mut last = lock(&self.last_end);
        let wall_pts = u64::try_from(i128::from(start.max(0)) * i128::from(TALK_RATE) / 1_000_000)
            .unwrap_or(0);
        let tolerance = (REANCHOR_MS * i64::from(TALK_RATE) / 1000) as u64;
        let pts = match *last {
            Some(end) if wall_pts.abs_diff(end) <= tolerance => end,
            Some(end) => wall_pts.max(end),
            None => wall_pts,
        };
        *last = Some(pts + len as u64);
        let wall =
            i64::try_from(i128::from(pts) * 1_000_000 / i128::from(TALK_RATE)).unwrap_or(start);
        (pts, wall)
    }

    fn send(&self, samples: &[i16], start: UnixMicros) {
        if samples.iter().all(|&s| s == 0) {
            return;
        }
        let (pts, wallclock) = self.place(start, samples.len());
        let data: Vec<u8> = samples.iter().map(|&s| linear_to_ulaw(s)).collect();
        let au = AccessUnit {
            track: self.track,
            pts,
            wallclock,
            keyframe: true,
            data: Bytes::from(data),
        };
        match self.tx.try_send(RecordItem::Talk(au)) {
            Ok(()) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let now = std::time::Instant::now();
                if let Some(r) = lock(&self.warn_dropped).check(now) {
                    tracing::warn!("talk audio cannot be recorded (recorder queue full or recording stopped); dropping{r}");
                }
            }
        }
    }
}

/// One talk session's (or the mixer's) writer into a [`TalkRecordSink`].
pub struct RecordOutput {
    sink: Arc<TalkRecordSink>,
    resampler: Resampler,
    jitter: Duration,
    /// Samples at 8 kHz not yet stored (less than one unit).
    pending: Vec<i16>,
    scratch: Vec<i16>,
    /// Capture time of the end of the audio written so far.
    written_end: Option<UnixMicros>,
    finished: bool,
}

impl RecordOutput {
    /// `rate`: the rate of the PCM written; `jitter`: the jitter-buffer depth (subtracted
    /// from the write time to estimate the capture wallclock).
    pub fn new(sink: Arc<TalkRecordSink>, rate: u32, jitter: Duration) -> RecordOutput {
        RecordOutput {
            sink,
            resampler: Resampler::new(rate, 1, TALK_RATE),
            jitter,
            pending: Vec::with_capacity(UNIT * 2),
            scratch: Vec::new(),
            written_end: None,
            finished: false,
        }
    }

    /// Stores every whole unit of `pending` (and, with `all`, the rest), given that the
    /// end of `pending` was captured at `end` (UTC µs).
    fn emit(&mut self, end: UnixMicros, all: bool) {
        let total = self.pending.len();
        let mut at = 0;
        while total - at >= UNIT || (all && at < total) {
            let n = UNIT.min(total - at);
            let after = (total - at) as i64; // samples from this unit's start to `end`
            let start = end - after * 1_000_000 / i64::from(TALK_RATE);
            self.sink.send(&self.pending[at..at + n], start);
            at += n;
        }
        self.pending.drain(..at);
    }

    fn capture_end(&self) -> UnixMicros {
        ipcamd_media::pacer::now_micros() - i64::try_from(self.jitter.as_micros()).unwrap_or(0)
    }
}

impl AudioOutput for RecordOutput {
    fn write(&mut self, pcm: &[i16]) -> std::io::Result<()> {
        if self.finished {
            return Err(std::io::Error::other("record output already finished"));
        }
        self.scratch.clear();
        self.resampler.process(pcm, &mut self.scratch);
        self.pending.extend_from_slice(&self.scratch);
        let end = self.capture_end();
        self.written_end = Some(end);
        self.emit(end, false);
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.scratch.clear();
        self.resampler.flush(&mut self.scratch);
        self.pending.extend_from_slice(&self.scratch);
        // The resampler's tail follows the last write (the session may end much later).
        let tail = self.scratch.len() as i64 * 1_000_000 / i64::from(TALK_RATE);
        let end = self
            .written_end
            .map_or_else(|| self.capture_end(), |e| e + tail);
        self.emit(end, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn units(rx: &std::sync::mpsc::Receiver<RecordItem>) -> Vec<AccessUnit> {
        rx.try_iter()
            .filter_map(|i| match i {
                RecordItem::Talk(au) => Some(au),
                RecordItem::Frame(_) | RecordItem::Tracks(_) => None,
            })
            .collect()
    }

    #[test]
    fn pcm_becomes_20ms_ulaw_units_with_increasing_time() {
        let (tx, rx) = sync_channel(1000);
        let sink = TalkRecordSink::new(tx, 2);
        let mut out = RecordOutput::new(sink.clone(), 16000, Duration::from_millis(60));
        let tone: Vec<i16> = (0..8000)
            .map(|i| {
                (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 16000.0).sin()) as i16
            })
            .collect();
        // Written in real time, as the talk thread does.
        for block in tone.chunks(320) {
            out.write(block).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        out.finish().unwrap();
        let got = units(&rx);
        // 0.5 s at 8 kHz = 25 units (the last one may be short).
        assert!((24..=26).contains(&got.len()), "{} units", got.len());
        assert!(got.iter().all(|u| u.track == 2 && u.keyframe));
        assert!(got[..got.len() - 1].iter().all(|u| u.data.len() == 160));
        for w in got.windows(2) {
            assert_eq!(
                w[1].pts,
                w[0].pts + w[0].data.len() as u64,
                "contiguous pts"
            );
            assert!(w[1].wallclock > w[0].wallclock);
        }
        // Within 0.3 s of now minus the jitter depth, at the end.
        let now = ipcamd_media::pacer::now_micros();
        let last = got.last().unwrap().wallclock;
        assert!((now - last).abs() < 200_000, "{now} vs {last}");
        assert_eq!(sink.stored(), got.len() as u64);
    }

    #[test]
    fn silence_is_not_stored_and_a_pause_reanchors() {
        let (tx, rx) = sync_channel(1000);
        let sink = TalkRecordSink::new(tx, 0);
        let mut out = RecordOutput::new(sink.clone(), 8000, Duration::ZERO);
        out.write(&[0i16; 1600]).unwrap();
        assert!(units(&rx).is_empty(), "all-zero audio stored");
        out.write(&[1000i16; 160]).unwrap();
        let a = units(&rx);
        assert_eq!(a.len(), 1);
        std::thread::sleep(Duration::from_millis(300));
        out.write(&[1000i16; 160]).unwrap();
        let b = units(&rx);
        assert_eq!(b.len(), 1);
        let gap = b[0].pts - (a[0].pts + 160);
        assert!(
            gap >= 1600,
            "a 300 ms pause kept as a gap (got {gap} ticks)"
        );
        assert!(b[0].wallclock - a[0].wallclock >= 250_000);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (tx, _rx) = sync_channel(1);
        let sink = TalkRecordSink::new(tx, 0);
        let mut out = RecordOutput::new(sink.clone(), 8000, Duration::ZERO);
        out.write(&[500i16; 160 * 5]).unwrap();
        assert_eq!(sink.stored(), 1);
        assert_eq!(sink.dropped(), 4);
    }
}
