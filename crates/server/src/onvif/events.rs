//! The tokio side of the ONVIF Event service: the one place where what happens in the
//! server becomes events. The state (property values, subscriptions, queues, expiry) is
//! the sans-IO [`ipcamd_onvif::events::EventBus`]; this module owns it behind a mutex,
//! feeds it, and turns a PullMessages that found nothing into a long poll woken by the
//! next publish for its subscription (or its timeout).
//!
//! Sources, all watched from here so that the rooms that own the states stay unaware of
//! ONVIF:
//! - motion (`tns1:VideoSource/MotionAlarm` and `tns1:RuleEngine/CellMotionDetector/Motion`):
//!   the synthetic cameras' `motion_periods`, a timer per camera that fires at each
//!   period's start;
//! - the others are read every [`POLL`] from the states the server keeps anyway: a
//!   camera's fan-out stream offline reason (`tns1:Device/Camera/Connection`), the number
//!   of talkers on its backchannel output (`tns1:Device/Camera/Talk`), whether its
//!   recording writes a section (`tns1:RecordingConfig/JobState`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use ipcamd_onvif::events::EventLimits;
use ipcamd_onvif::events::{
    Event, EventBus, CAMERA_CONNECTION, CELL_MOTION, MOTION_ALARM, RECORDING_JOB_STATE, TALK,
};
use ipcamd_onvif::services::{event_service, PendingPull, Response};
use ipcamd_proto::time::UnixMicros;
use tokio::sync::Notify;

use crate::cameras::Cameras;
use crate::net::shutdown::Shutdown;
use crate::sync::lock;

/// How often the polled states are read (and expired subscriptions dropped).
pub const POLL: Duration = Duration::from_millis(100);

fn now() -> UnixMicros {
    ipcamd_media::pacer::now_micros()
}

/// A synthetic camera's motion: `on` with motion, then `off` without, repeated from the
/// server's start (which begins a motion period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotionPeriods {
    pub on: Duration,
    pub off: Duration,
}

impl MotionPeriods {
    /// Parses `"10s on / 20s off"` (units `ms`, `s`, `m`, `h`; either order).
    pub fn parse(s: &str) -> Result<MotionPeriods, String> {
        let bad = || {
            format!(
                "motion_periods = {s:?}: write it like \"10s on / 20s off\" (units ms, s, m, h; each period at least 100ms)"
            )
        };
        let (mut on, mut off) = (None, None);
        for part in s.split('/') {
            let mut words = part.split_whitespace();
            let (Some(d), Some(which), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad());
            };
            let d = parse_period(d).ok_or_else(bad)?;
            match which {
                "on" if on.is_none() => on = Some(d),
                "off" if off.is_none() => off = Some(d),
                _ => return Err(bad()),
            }
        }
        match (on, off) {
            (Some(on), Some(off))
                if on >= Duration::from_millis(100) && off >= Duration::from_millis(100) =>
            {
                Ok(MotionPeriods { on, off })
            }
            _ => Err(bad()),
        }
    }
}

fn parse_period(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let v: f64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs < 1e7).then(|| Duration::from_secs_f64(secs))
}

/// The event bus and the long polls waiting on it.
pub struct Events {
    bus: Mutex<EventBus>,
    /// Woken at every publish that queued a message, and at Unsubscribe.
    notify: Notify,
}

impl Events {
    pub fn new(limits: EventLimits) -> Events {
        Events {
            bus: Mutex::new(EventBus::new(limits)),
            notify: Notify::new(),
        }
    }

    pub fn bus(&self) -> MutexGuard<'_, EventBus> {
        lock(&self.bus)
    }

    /// A new value of a property (ignored when it is the current one).
    pub fn publish(&self, e: Event) {
        let woken = self.bus().publish(e);
        if !woken.is_empty() {
            self.notify.notify_waiters();
        }
    }

    /// Wakes every long poll (to re-check: a subscription ended).
    pub fn wake_all(&self) {
        self.notify.notify_waiters();
    }

    /// Waits until the pull's subscription has a message, ends, or the deadline passes,
    /// then answers it.
    pub async fn wait_pull(&self, p: PendingPull) -> Response {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let t = now();
            {
                let mut bus = self.bus();
                if t >= p.deadline
                    || bus.has_messages(&p.subscription)
                    || !bus.contains(&p.subscription)
                {
                    return event_service::finish_pull(&mut bus, &p, t);
                }
            }
            let left = Duration::from_micros((p.deadline - t).max(0) as u64);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(left) => {}
            }
        }
    }
}

/// What the watchers read.
pub struct Sources {
    pub cameras: Cameras,
    /// Recorded cameras and whether their recording writes a section now.
    pub recordings: Vec<(String, Arc<AtomicBool>)>,
    /// Synthetic cameras with motion periods.
    pub motion: HashMap<String, MotionPeriods>,
}

/// Starts the watchers: one motion timer per camera with motion periods, one poller for
/// the rest. They end at shutdown.
pub fn spawn(
    events: Arc<Events>,
    sources: Sources,
    shutdown: &Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut motion: Vec<(String, MotionPeriods)> = sources
        .motion
        .iter()
        .filter(|(name, _)| sources.cameras.get(name).is_some())
        .map(|(n, p)| (n.clone(), *p))
        .collect();
    motion.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, periods) in motion {
        let (events, mut shutdown) = (events.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = motion_timer(&events, &name, periods) => {}
                _ = shutdown.wait() => {}
            }
        }));
    }
    let mut shutdown = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        tokio::select! {
            _ = poll_states(&events, &sources) => {}
            _ = shutdown.wait() => {}
        }
    }));
    tasks
}

fn flag(b: bool) -> String {
    b.to_string()
}

/// The two motion events of a camera at `time`.
pub fn motion_events(camera: &str, motion: bool, time: UnixMicros) -> [Event; 2] {
    [
        Event::new(
            MOTION_ALARM,
            vec![("Source", format!("VideoSource_{camera}"))],
            vec![("State", flag(motion))],
            time,
        ),
        Event::new(
            CELL_MOTION,
            vec![
                (
                    "VideoSourceConfigurationToken",
                    format!("VideoSourceConfig_{camera}"),
                ),
                ("Rule", "MotionPeriods".to_owned()),
            ],
            vec![("IsMotion", flag(motion))],
            time,
        ),
    ]
}

/// Publishes the camera's motion state at the start of each period; the event time is
/// the period's scheduled start.
async fn motion_timer(events: &Events, camera: &str, p: MotionPeriods) {
    let start = tokio::time::Instant::now();
    let wall = now();
    let mut at = Duration::ZERO;
    let mut motion = true;
    loop {
        tokio::time::sleep_until(start + at).await;
        let time = wall + at.as_micros() as i64;
        tracing::debug!(camera, motion, "motion period");
        for e in motion_events(camera, motion, time) {
            events.publish(e);
        }
        at += if motion { p.on } else { p.off };
        motion = !motion;
    }
}

/// Reads the polled states every [`POLL`], publishes what changed, expires subscriptions.
async fn poll_states(events: &Events, s: &Sources) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let recordings: HashMap<&str, &Arc<AtomicBool>> =
        s.recordings.iter().map(|(n, a)| (n.as_str(), a)).collect();
    loop {
        tick.tick().await;
        let t = now();
        for c in s.cameras.sorted() {
            let offline = c.stream.offline_reason();
            let online = offline.is_none();
            let mut data = vec![("Online", flag(online))];
            if let Some(why) = offline {
                data.push(("Reason", why));
            }
            events.publish(Event::new(
                CAMERA_CONNECTION,
                vec![("VideoSource", format!("VideoSource_{}", c.name))],
                data,
                t,
            ));
            if let Some(out) = &c.backchannel {
                events.publish(Event::new(
                    TALK,
                    vec![("AudioOutputToken", format!("AudioOutput_{}", c.name))],
                    vec![("Active", flag(out.talking()))],
                    t,
                ));
            }
            if let Some(active) = recordings.get(c.name.as_str()) {
                // An offline camera's recording writes nothing: Idle until its source is back.
                let state = if active.load(Ordering::Relaxed) && online {
                    "Active"
                } else {
                    "Idle"
                };
                events.publish(Event::new(
                    RECORDING_JOB_STATE,
                    vec![("RecordingJobToken", format!("Job_{}", c.name))],
                    vec![("State", state.to_owned())],
                    t,
                ));
            }
        }
        let gone = events.bus().expire(t);
        if !gone.is_empty() {
            tracing::info!(subscriptions = ?gone, "event subscriptions expired");
            events.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_periods_parse() {
        assert_eq!(
            MotionPeriods::parse("10s on / 20s off"),
            Ok(MotionPeriods {
                on: Duration::from_secs(10),
                off: Duration::from_secs(20)
            })
        );
        assert_eq!(
            MotionPeriods::parse("500ms off/1m on"),
            Ok(MotionPeriods {
                on: Duration::from_secs(60),
                off: Duration::from_millis(500)
            })
        );
        for bad in [
            "",
            "10s on",
            "10s on / 10s on",
            "10 on / 1s off",
            "0s on / 1s off",
            "1s on / 1s off / 1s on",
            "1x on / 1s off",
        ] {
            assert!(MotionPeriods::parse(bad).is_err(), "{bad:?}");
        }
    }
}
