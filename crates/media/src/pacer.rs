//! Real-time pacing of a live source: one thread per camera that asks the source for its
//! next access unit, sleeps until that unit's capture wallclock has come, and pushes it
//! into the [`Stream`]. This is the only place in the media crate that reads the clock.
//!
//! A source that fails (file deleted, encoder error) is re-created with exponential
//! back-off (1 s doubling to 30 s, started afresh only after a source ran [`HEALTHY`]);
//! its stream keeps its tracks and RTP numbering, so readers see a pause, not a new stream.
//! Meanwhile the stream is marked offline ([`Stream::offline_reason`], with the next retry)
//! so that the server answers 503. A step of the wall clock re-creates the source at the
//! new time ([`CLOCK_STEP_US`]).
//!
//! A source can also be replaced while it runs ([`SourceSwitch::replace`]: an encoder
//! restarted with new settings): the thread takes the new source before its next unit,
//! sets the stream's tracks to the new source's (same codecs: readers go on, with the new
//! parameter sets) and continues the media time as after a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipcamd_proto::time::UnixMicros;

use crate::fanout::Stream;
use crate::{Source, SourceError};

/// Makes a source that starts at the given wallclock.
pub type SourceFactory =
    Box<dyn FnMut(UnixMicros) -> Result<Box<dyn Source>, SourceError> + Send + 'static>;

/// The current UTC wallclock.
pub fn now_micros() -> UnixMicros {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// A running live camera: its stream and the pacing thread.
pub struct LiveSource {
    pub stream: Arc<Stream>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    switch: SourceSwitch,
}

/// A source and the factory that re-creates it after a failure, waiting for the pacing
/// thread to take them.
type Pending = Option<(Box<dyn Source>, SourceFactory)>;

/// Hands a new source to a running [`LiveSource`]'s thread (cloneable, for whoever
/// changes the camera's settings).
#[derive(Clone)]
pub struct SourceSwitch {
    pending: Arc<(Mutex<Pending>, Condvar)>,
}

impl SourceSwitch {
    /// Replaces the source (already opened, so that its errors are the caller's) and the
    /// factory used after a failure. The thread switches before its next access unit; a
    /// replacement not taken yet is superseded.
    pub fn replace(&self, source: Box<dyn Source>, factory: SourceFactory) {
        let (slot, arrived) = &*self.pending;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((source, factory));
        arrived.notify_all();
    }

    /// Whether a replacement waits for the thread to take it.
    pub fn pending(&self) -> bool {
        self.pending
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn take(&self) -> Pending {
        self.pending
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Waits up to `limit` for a replacement; true when one waits.
    fn wait(&self, limit: Duration) -> bool {
        let (slot, arrived) = &*self.pending;
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = arrived
            .wait_timeout_while(guard, limit, |p| p.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.is_some()
    }
}

impl LiveSource {
    /// Opens the first source (so its tracks are known and errors are reported at once),
    /// then starts pacing it in a thread.
    pub fn start(name: &str, mut factory: SourceFactory) -> Result<LiveSource, SourceError> {
        let first = factory(now_micros())?;
        let stream = Stream::new(name, first.tracks().to_vec());
        let stop = Arc::new(AtomicBool::new(false));
        let switch = SourceSwitch {
            pending: Arc::new((Mutex::new(None), Condvar::new())),
        };
        let thread = {
            let stream = stream.clone();
            let stop = stop.clone();
            let name = name.to_owned();
            let switch = switch.clone();
            std::thread::Builder::new()
                .name(format!("source-{name}"))
                .spawn(move || run(&name, first, factory, &stream, &stop, &switch))
                .map_err(|e| SourceError::Encoder(format!("cannot start source thread: {e}")))?
        };
        Ok(LiveSource {
            stream,
            stop,
            thread: Some(thread),
            switch,
        })
    }

    /// The handle that replaces this camera's source while it runs.
    pub fn switch(&self) -> SourceSwitch {
        self.switch.clone()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sleeps until `deadline` in small steps so a stop request is seen within 50 ms.
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// [`sleep_until`] that also ends (false) as soon as a replacement source arrives.
fn sleep_unless_switched(deadline: Instant, stop: &AtomicBool, switch: &SourceSwitch) -> bool {
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return true;
        }
        if switch.wait((deadline - now).min(Duration::from_millis(50))) {
            return false;
        }
    }
}

/// The first wait before re-creating a failed source; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A source that ran this long before failing starts the back-off afresh; one that fails
/// sooner (a file that plays a little, then fails again) goes on doubling it.
pub const HEALTHY: Duration = Duration::from_secs(60);
/// A step of the wall clock (against the monotonic clock) larger than this restarts the
/// source at the new time; see [`run`].
pub const CLOCK_STEP_US: i64 = 1_000_000;

/// Where the source's timeline was anchored: its unit's wallclock, and the monotonic and
/// wall clocks then.
#[derive(Clone, Copy)]
struct Anchor {
    unit_wall: UnixMicros,
    at: Instant,
    wall: UnixMicros,
}

impl Anchor {
    fn new(unit_wall: UnixMicros) -> Anchor {
        Anchor {
            unit_wall,
            at: Instant::now(),
            wall: now_micros(),
        }
    }

    /// How far the wall clock moved against the monotonic clock since the anchor: 0
    /// unless it was stepped (NTP, an operator; slewing moves both).
    fn clock_step(&self) -> i64 {
        let wall = now_micros().saturating_sub(self.wall);
        let mono = i64::try_from(self.at.elapsed().as_micros()).unwrap_or(i64::MAX);
        wall.saturating_sub(mono)
    }
}

/// Paces `source` into `stream` until `stop`; re-creates it with `factory` after a failure
/// (with back-off) and after a step of the wall clock.
///
/// The wall clock is checked against the monotonic clock at every unit: a source stamps its
/// units from the wallclock it was started at, so after a step (NTP setting the clock at
/// boot, an operator) its units would carry the old time for as long as it runs. A step of
/// more than [`CLOCK_STEP_US`] re-creates the source at the new time (a file camera starts
/// its file over); readers see no break (same tracks, media time continues by the real
/// time that passed) and the recording starts a new section at the new time.
fn run(
    name: &str,
    mut source: Box<dyn Source>,
    mut factory: SourceFactory,
    stream: &Stream,
    stop: &AtomicBool,
    switch: &SourceSwitch,
) {
    let mut backoff = MIN_BACKOFF;
    let mut timeline = Timeline::new(stream);
    loop {
        // Map the source's timeline onto the monotonic clock at its first unit.
        let mut origin: Option<Anchor> = None;
        let started = Instant::now();
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Some((new, new_factory)) = switch.take() {
                let what = stream.set_tracks(new.tracks().to_vec());
                tracing::info!(camera = name, change = ?what, "source replaced");
                source = new;
                factory = new_factory;
                timeline.replaced(stream);
                origin = None;
                stream.set_offline(None);
            }
            let au = match source.next_au() {
                Ok(au) => au,
                Err(e) => break e,
            };
            let anchor = *origin.get_or_insert_with(|| Anchor::new(au.wallclock));
            let offset = au.wallclock.saturating_sub(anchor.unit_wall).max(0) as u64;
            let due = anchor.at + Duration::from_micros(offset);
            let now = Instant::now();
            if now > due + Duration::from_secs(2) {
                tracing::warn!(
                    camera = name,
                    late_ms = (now - due).as_millis() as u64,
                    "source is slower than real time; re-anchoring its clock"
                );
                origin = Some(Anchor::new(au.wallclock));
            } else if !sleep_unless_switched(due, stop, switch) {
                // A new source waits: this unit of the old one is not sent.
                continue;
            }
            let step = anchor.clock_step();
            if step.abs() > CLOCK_STEP_US {
                // This unit carries the old time: not sent.
                origin = None;
                match factory(now_micros()) {
                    Ok(s) if s.tracks() == &stream.tracks()[..] => {
                        tracing::warn!(
                            camera = name,
                            step_s = step as f64 / 1e6,
                            "the wall clock stepped by {:+.1} s: the camera's time follows it \
                             (source restarted at the new time; the recording starts a new \
                             section)",
                            step as f64 / 1e6
                        );
                        source = s;
                        timeline.restarted();
                    }
                    Ok(_) => tracing::error!(
                        camera = name,
                        "the wall clock stepped by {:+.1} s, but the source restarted with \
                         different tracks: not used, the camera keeps its old time",
                        step as f64 / 1e6
                    ),
                    Err(e) => tracing::error!(
                        camera = name,
                        error = %e,
                        "the wall clock stepped by {:+.1} s, but the source cannot restart: \
                         the camera keeps its old time",
                        step as f64 / 1e6
                    ),
                }
                continue;
            }
            stream.push(timeline.continue_pts(au));
        };
        if started.elapsed() >= HEALTHY {
            backoff = MIN_BACKOFF;
        }
        tracing::error!(camera = name, error = %result, retry_in_s = backoff.as_secs(), "source failed; camera offline until it restarts");
        stream.set_offline(Some(format!(
            "source failed: {result}; retrying in {} s",
            backoff.as_secs()
        )));
        loop {
            sleep_until(Instant::now() + backoff, stop);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // Every wait doubles the next one, whether the restart works or not: a source
            // that fails again soon after a restart waits longer each time.
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match factory(now_micros()) {
                Ok(s) if s.tracks() == &stream.tracks()[..] => {
                    tracing::info!(camera = name, "source restarted; camera online");
                    stream.set_offline(None);
                    source = s;
                    timeline.restarted();
                    break;
                }
                Ok(_) => {
                    tracing::error!(
                        camera = name,
                        retry_in_s = backoff.as_secs(),
                        "restarted source has different tracks; not used"
                    );
                    stream.set_offline(Some(format!(
                        "source restarted with different tracks; retrying in {} s",
                        backoff.as_secs()
                    )));
                }
                Err(e) => {
                    tracing::error!(camera = name, error = %e, retry_in_s = backoff.as_secs(), "source restart failed");
                    stream.set_offline(Some(format!(
                        "source failed: {e}; retrying in {} s",
                        backoff.as_secs()
                    )));
                }
            }
        }
    }
}

/// Keeps each track's media time increasing across source restarts: a restarted source
/// counts from zero again, so its units are shifted to continue where the last one ended,
/// plus the real (monotonic) time that passed: a step of the wall clock does not make
/// readers' RTP time jump.
struct Timeline {
    clock_rates: Vec<u32>,
    /// Per track: (shift added to pts, last shifted pts and when it was sent).
    state: Vec<(i128, Option<(u64, Instant)>)>,
    rebase: Vec<bool>,
}

impl Timeline {
    fn new(stream: &Stream) -> Timeline {
        let n = stream.tracks().len();
        Timeline {
            clock_rates: stream.tracks().iter().map(|t| t.clock_rate()).collect(),
            state: vec![(0, None); n],
            rebase: vec![false; n],
        }
    }

    fn restarted(&mut self) {
        self.rebase.iter_mut().for_each(|r| *r = true);
    }

    /// Another source with the stream's (possibly new) tracks: tracks that stayed
    /// continue their media time, new ones start afresh.
    fn replaced(&mut self, stream: &Stream) {
        let rates: Vec<u32> = stream.tracks().iter().map(|t| t.clock_rate()).collect();
        if rates != self.clock_rates {
            *self = Timeline::new(stream);
        } else {
            self.restarted();
        }
    }

    fn continue_pts(&mut self, mut au: crate::AccessUnit) -> crate::AccessUnit {
        let (Some(state), Some(rebase), Some(&rate)) = (
            self.state.get_mut(au.track),
            self.rebase.get_mut(au.track),
            self.clock_rates.get(au.track),
        ) else {
            return au;
        };
        if *rebase {
            *rebase = false;
            if let Some((last_pts, last_sent)) = state.1 {
                let elapsed = last_sent.elapsed().as_micros().max(1) as i128;
                let target = last_pts as i128 + (elapsed * rate as i128 / 1_000_000).max(1);
                state.0 = target - au.pts as i128;
            }
        }
        au.pts = (au.pts as i128 + state.0).max(0) as u64;
        state.1 = Some((au.pts, Instant::now()));
        au
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{SyntheticCamera, SyntheticConfig};
    use ipcamd_proto::codec::CodecParams;
    use ipcamd_proto::probe::h264_picture_size;

    fn factory(width: u32, height: u32) -> SourceFactory {
        Box::new(move |now| -> Result<Box<dyn Source>, SourceError> {
            let cfg = SyntheticConfig {
                width,
                height,
                fps: 25,
                audio: true,
                ..SyntheticConfig::default()
            };
            Ok(Box::new(SyntheticCamera::new(cfg, now)?))
        })
    }

    fn size(t: &ipcamd_proto::codec::TrackInfo) -> Option<(u32, u32)> {
        match &t.codec {
            CodecParams::H264 { sps, .. } => h264_picture_size(sps),
            _ => None,
        }
    }

    /// A replaced source: the stream's tracks carry the new SPS, a reader that stays gets a
    /// keyframe with it soon after, and the sequence numbers and media times go on.
    #[tokio::test]
    async fn replaced_source_keeps_readers_with_new_parameters() {
        let live = LiveSource::start("t", factory(320, 180)).unwrap();
        let (mut reader, _) = live.stream.subscribe();
        let mut last: Vec<Option<(u16, u32)>> = vec![None; 2];
        let mut check = |f: &crate::fanout::Frame| {
            let slot = &mut last[f.track];
            if let Some((seq, ts)) = *slot {
                assert_eq!(f.first_seq, seq.wrapping_add(1), "track {} seq", f.track);
                assert!(
                    f.rtp_timestamp.wrapping_sub(ts) < u32::MAX / 2,
                    "track {} time",
                    f.track
                );
            }
            *slot = Some((
                f.first_seq.wrapping_add(f.packets.len() as u16 - 1),
                f.rtp_timestamp,
            ));
        };
        for _ in 0..10 {
            match reader.recv().await {
                crate::fanout::Next::Frame(f) => check(&f),
                crate::fanout::Next::Closed => panic!("closed"),
            }
        }
        assert_eq!(size(&live.stream.tracks()[0]), Some((320, 180)));
        let mut f = factory(640, 360);
        let new = f(now_micros()).unwrap();
        let asked = Instant::now();
        live.switch().replace(new, f);
        let keyframe = loop {
            match reader.recv().await {
                crate::fanout::Next::Frame(f) => {
                    check(&f);
                    if f.video
                        && f.keyframe
                        && live.stream.tracks().first().and_then(size) == Some((640, 360))
                    {
                        break asked.elapsed();
                    }
                }
                crate::fanout::Next::Closed => panic!("the reader was ended"),
            }
            assert!(asked.elapsed() < Duration::from_secs(5), "no new keyframe");
        };
        assert!(!live.switch().pending());
        println!(
            "replace -> new keyframe at a reader: {} ms",
            keyframe.as_millis()
        );
        for _ in 0..10 {
            match reader.recv().await {
                crate::fanout::Next::Frame(f) => check(&f),
                crate::fanout::Next::Closed => panic!("closed"),
            }
        }
    }
}
