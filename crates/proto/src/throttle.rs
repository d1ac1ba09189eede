//! Rate-limited warnings: a warning that can repeat per packet or per frame is logged at
//! most once per period, with the count of the repeats it stood for ("... (repeated 250
//! times in the last 10 s)"). Sans-IO like the rest of the crate: the caller passes the
//! current [`Instant`]; the caller also does the logging (this crate does not log).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ipcamd_proto::throttle::Throttle;
//! let mut t = Throttle::new(Duration::from_secs(10));
//! let t0 = Instant::now();
//! assert!(t.check(t0).is_some()); // the first one is logged
//! assert!(t.check(t0 + Duration::from_secs(1)).is_none()); // counted
//! let r = t.check(t0 + Duration::from_secs(11)).unwrap();
//! assert_eq!(r.to_string(), " (repeated 2 times in the last 11 s)");
//! ```
//!
//! The count of the last period is reported with the next repeat after it: a flood that
//! stops leaves its final count unreported (the log shows when it started and its rate).

use std::fmt;
use std::time::{Duration, Instant};

/// The default period of the server's rate-limited warnings.
pub const WARN_PERIOD: Duration = Duration::from_secs(10);

/// One rate-limited warning (one per call site and subject, e.g. per stream).
#[derive(Debug, Clone)]
pub struct Throttle {
    period: Duration,
    /// When the warning was last let through.
    last: Option<Instant>,
    /// Occurrences since then, the one let through included.
    count: u64,
}

/// What to append to a warning let through: the repeats it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeats {
    /// Occurrences since the previous warning was logged, this one included; 1 for the
    /// first one.
    pub count: u64,
    /// Time since the previous warning was logged (zero for the first).
    pub over: Duration,
}

impl fmt::Display for Repeats {
    /// Nothing for a single occurrence, else " (repeated N times in the last S s)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count <= 1 {
            return Ok(());
        }
        write!(
            f,
            " (repeated {} times in the last {} s)",
            self.count,
            self.over.as_secs().max(1)
        )
    }
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence at `now`; `Some` when it is to be logged: the first one, and
    /// the first one a period or more after the last one logged.
    pub fn check(&mut self, now: Instant) -> Option<Repeats> {
        self.count += 1;
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.period => None,
            last => {
                let r = Repeats {
                    count: if last.is_some() { self.count } else { 1 },
                    over: last.map_or(Duration::ZERO, |l| now.saturating_duration_since(l)),
                };
                self.last = Some(now);
                self.count = 0;
                Some(r)
            }
        }
    }
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new(WARN_PERIOD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period_with_the_count() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let first = t.check(t0).unwrap();
        assert_eq!(first.count, 1);
        assert_eq!(first.to_string(), "");
        // 25 a second for 10 s: all counted, none logged.
        let mut logged = Vec::new();
        for i in 1..250u64 {
            if let Some(r) = t.check(ms(i * 40)) {
                logged.push((i, r));
            }
        }
        assert!(logged.is_empty());
        // The first after the period is logged with all of them, itself included.
        let r = t.check(ms(10_000)).unwrap();
        assert_eq!(r.count, 250);
        assert_eq!(r.to_string(), " (repeated 250 times in the last 10 s)");
        // The next period starts from there.
        assert!(t.check(ms(10_040)).is_none());
        let r = t.check(ms(25_000)).unwrap();
        assert_eq!(r.count, 2);
        assert_eq!(r.over, Duration::from_secs(15));
        // A lone occurrence long after reports only itself... as one repeat of two counted.
        let r = t.check(ms(100_000)).unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.to_string(), "");
    }

    #[test]
    fn instants_out_of_order_do_not_panic() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now() + Duration::from_secs(5);
        assert!(t.check(t0).is_some());
        assert!(t.check(t0 - Duration::from_secs(3)).is_none());
    }
}
