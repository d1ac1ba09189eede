//! The Event service's state, sans IO (ONVIF Core §9, WS-BaseNotification pull points):
//! the current value of every property event, the pull-point subscriptions, their bounded
//! queues and their expiry. Every call takes "now" (UTC Unix microseconds); nothing here
//! reads a clock, sleeps or wakes anyone: the server's `onvif::events` module feeds
//! [`EventBus::publish`] and turns [`PullOutcome::Wait`] into a long poll that it wakes
//! when a publish names the subscription (or the timeout elapses).
//!
//! All ipcamd events are property events (a state with an `Initialized` value, then
//! `Changed` values): a new subscription, and [`EventBus::synchronize`]
//! (SetSynchronizationPoint), queue the current value of every property its filter
//! selects, with `PropertyOperation="Initialized"`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ipcamd_proto::time::UnixMicros;

/// The topics ipcamd publishes (ConcreteSet dialect, the `tns1:` prefix bound to
/// `http://www.onvif.org/ver10/topics`), with the names and types of their Source and
/// Data items, as GetEventProperties describes them.
pub struct TopicInfo {
    pub topic: &'static str,
    pub source: &'static [(&'static str, &'static str)],
    pub data: &'static [(&'static str, &'static str)],
}

pub const MOTION_ALARM: &str = "tns1:VideoSource/MotionAlarm";
pub const CELL_MOTION: &str = "tns1:RuleEngine/CellMotionDetector/Motion";
pub const CAMERA_CONNECTION: &str = "tns1:Device/Camera/Connection";
pub const TALK: &str = "tns1:Device/Camera/Talk";
pub const RECORDING_JOB_STATE: &str = "tns1:RecordingConfig/JobState";

pub const TOPICS: [TopicInfo; 5] = [
    TopicInfo {
        topic: MOTION_ALARM,
        source: &[("Source", "tt:ReferenceToken")],
        data: &[("State", "xs:boolean")],
    },
    TopicInfo {
        topic: CELL_MOTION,
        source: &[
            ("VideoSourceConfigurationToken", "tt:ReferenceToken"),
            ("Rule", "xs:string"),
        ],
        data: &[("IsMotion", "xs:boolean")],
    },
    TopicInfo {
        topic: CAMERA_CONNECTION,
        source: &[("VideoSource", "tt:ReferenceToken")],
        data: &[("Online", "xs:boolean"), ("Reason", "xs:string")],
    },
    TopicInfo {
        topic: TALK,
        source: &[("AudioOutputToken", "tt:ReferenceToken")],
        data: &[("Active", "xs:boolean")],
    },
    TopicInfo {
        topic: RECORDING_JOB_STATE,
        source: &[("RecordingJobToken", "tt:RecordingJobReference")],
        data: &[("State", "tt:RecordingJobState")],
    },
];

/// `PropertyOperation` of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyOperation {
    Initialized,
    Changed,
}

impl PropertyOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyOperation::Initialized => "Initialized",
            PropertyOperation::Changed => "Changed",
        }
    }
}

/// One notification: a topic, the property it concerns (Source items), its value (Data
/// items), when it took that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub topic: &'static str,
    pub source: Vec<(&'static str, String)>,
    pub data: Vec<(&'static str, String)>,
    pub time: UnixMicros,
    pub operation: PropertyOperation,
}

impl Event {
    pub fn new(
        topic: &'static str,
        source: Vec<(&'static str, String)>,
        data: Vec<(&'static str, String)>,
        time: UnixMicros,
    ) -> Event {
        Event {
            topic,
            source,
            data,
            time,
            operation: PropertyOperation::Changed,
        }
    }

    /// The property this event is a value of: topic and Source items.
    fn key(&self) -> String {
        let mut k = self.topic.to_owned();
        for (n, v) in &self.source {
            k.push('\n');
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

/// Limits and defaults of the event service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Open subscriptions per user (the anonymous user counts as one).
    pub per_user: usize,
    /// Open subscriptions in all.
    pub total: usize,
    /// Messages queued per subscription; the oldest go first beyond this (counted).
    pub queue: usize,
    /// A subscription's life without `InitialTerminationTime`, and what each PullMessages
    /// extends it to (from the time of the pull), microseconds.
    pub default_life_us: i64,
    /// The longest life a subscription may be given at once, microseconds.
    pub max_life_us: i64,
    /// PullMessages `Timeout` is capped to this, microseconds.
    pub max_wait_us: i64,
    /// PullMessages `MessageLimit` is capped to this.
    pub max_messages: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            per_user: 10,
            total: 128,
            queue: 256,
            default_life_us: 60_000_000,
            max_life_us: 3_600_000_000,
            max_wait_us: 60_000_000,
            max_messages: 1024,
        }
    }
}

/// Why an operation on a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("user {user:?} already has {limit} open subscriptions (the limit per user); unsubscribe or let one expire")]
    TooManyForUser { user: String, limit: usize },
    #[error("the device has {0} open subscriptions, its limit; retry later")]
    TooMany(usize),
    #[error("subscription {0:?} does not exist (it expired, was unsubscribed, or never existed)")]
    Unknown(String),
    #[error("subscription {0:?} belongs to another user")]
    NotOwner(String),
    #[error("the termination time is in the past")]
    InThePast,
}

/// A pull point.
#[derive(Debug)]
struct Subscription {
    owner: String,
    expires: UnixMicros,
    /// Topics selected (ConcreteSet expressions); empty = all.
    filter: Vec<String>,
    queue: VecDeque<Event>,
    dropped: u64,
}

impl Subscription {
    fn wants(&self, topic: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| topic_matches(f, topic))
    }

    fn push(&mut self, e: Event, cap: usize) {
        while self.queue.len() >= cap.max(1) {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(e);
    }
}

/// Whether a topic expression (one alternative of a ConcreteSet expression, prefix
/// ignored; `//.` selects the subtree) selects `topic`.
fn topic_matches(expr: &str, topic: &str) -> bool {
    let strip = |s: &str| -> String {
        s.split('/')
            .map(|part| part.rsplit(':').next().unwrap_or(part))
            .collect::<Vec<_>>()
            .join("/")
    };
    let t = strip(topic);
    match expr.strip_suffix("//.") {
        Some(head) => {
            let h = strip(head);
            t == h || t.starts_with(&format!("{h}/"))
        }
        None => strip(expr) == t,
    }
}

/// Parses a `TopicExpression` (ConcreteSet dialect: alternatives separated by `|`).
pub fn parse_topic_filter(expr: &str) -> Vec<String> {
    expr.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a subscription looks like from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub id: String,
    pub expires: UnixMicros,
}

/// The result of a PullMessages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// Messages to answer with now (possibly none, when the wait is over).
    Messages {
        messages: Vec<Event>,
        expires: UnixMicros,
    },
    /// Nothing queued: wait until a publish names this subscription or the deadline.
    Wait { deadline: UnixMicros },
}

/// Counters of the bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounters {
    pub published: u64,
    pub delivered: u64,
    /// Messages dropped from full queues.
    pub dropped: u64,
    pub expired: u64,
    pub refused: u64,
}

/// The property values and the subscriptions.
#[derive(Debug)]
pub struct EventBus {
    limits: EventLimits,
    properties: BTreeMap<String, Event>,
    subs: HashMap<String, Subscription>,
    counters: EventCounters,
}

impl EventBus {
    pub fn new(limits: EventLimits) -> EventBus {
        EventBus {
            limits,
            properties: BTreeMap::new(),
            subs: HashMap::new(),
            counters: EventCounters::default(),
        }
    }

    pub fn limits(&self) -> &EventLimits {
        &self.limits
    }

    pub fn counters(&self) -> EventCounters {
        let mut c = self.counters;
        c.dropped += self.subs.values().map(|s| s.dropped).sum::<u64>();
        c
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// The current value of a property, if it has one.
    pub fn property(&self, topic: &str, source: &[(&str, &str)]) -> Option<&Event> {
        self.properties.values().find(|e| {
            e.topic == topic
                && e.source.len() == source.len()
                && e.source
                    .iter()
                    .zip(source)
                    .all(|((n, v), (n2, v2))| n == n2 && v == v2)
        })
    }

    /// A new value of a property. Its first value is `Initialized`, later different
    /// values `Changed`; the same value again is ignored. Returns the subscriptions that
    /// got the message (the long polls to wake).
    pub fn publish(&mut self, mut e: Event) -> Vec<String> {
        let key = e.key();
        e.operation = match self.properties.get(&key) {
            None => PropertyOperation::Initialized,
            Some(old) if old.data == e.data => return Vec::new(),
            Some(_) => PropertyOperation::Changed,
        };
        self.properties.insert(key, e.clone());
        self.counters.published += 1;
        let cap = self.limits.queue;
        let mut woken = Vec::new();
        for (id, s) in self.subs.iter_mut() {
            if s.wants(e.topic) {
                s.push(e.clone(), cap);
                woken.push(id.clone());
            }
        }
        woken
    }

    /// Drops the subscriptions whose termination time has passed; returns their ids.
    pub fn expire(&mut self, now: UnixMicros) -> Vec<String> {
        let gone: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.subs.remove(id);
        }
        self.counters.expired += gone.len() as u64;
        gone
    }

    /// The termination time a request asks for (`None`: the default life), bounded.
    fn life_until(&self, requested: Option<UnixMicros>, now: UnixMicros) -> UnixMicros {
        let until = requested.unwrap_or(now + self.limits.default_life_us);
        until.min(now + self.limits.max_life_us)
    }

    /// CreatePullPointSubscription: `id` is drawn by the caller (unguessable); `until`
    /// is the requested termination time (absolute; None = the default life). The
    /// current value of every selected property is queued as `Initialized`.
    pub fn subscribe(
        &mut self,
        id: &str,
        owner: &str,
        filter: Vec<String>,
        until: Option<UnixMicros>,
        now: UnixMicros,
    ) -> Result<SubscriptionInfo, EventError> {
        self.expire(now);
        if self.subs.len() >= self.limits.total {
            self.counters.refused += 1;
            return Err(EventError::TooMany(self.limits.total));
        }
        let mine = self.subs.values().filter(|s| s.owner == owner).count();
        if mine >= self.limits.per_user {
            self.counters.refused += 1;
            return Err(EventError::TooManyForUser {
                user: owner.to_owned(),
                limit: self.limits.per_user,
            });
        }
        let expires = self.life_until(until, now);
        if expires <= now {
            return Err(EventError::InThePast);
        }
        let mut s = Subscription {
            owner: owner.to_owned(),
            expires,
            filter,
            queue: VecDeque::new(),
            dropped: 0,
        };
        self.initialize(&mut s);
        self.subs.insert(id.to_owned(), s);
        Ok(SubscriptionInfo {
            id: id.to_owned(),
            expires,
        })
    }

    fn initialize(&self, s: &mut Subscription) {
        for e in self.properties.values() {
            if s.wants(e.topic) {
                let mut e = e.clone();
                e.operation = PropertyOperation::Initialized;
                s.push(e, self.limits.queue);
            }
        }
    }

    fn get_mut(
        &mut self,
        id: &str,
        owner: &str,
        now: UnixMicros,
    ) -> Result<&mut Subscription, EventError> {
        self.expire(now);
        let s = self
            .subs
            .get_mut(id)
            .ok_or_else(|| EventError::Unknown(id.to_owned()))?;
        if s.owner != owner {
            return Err(EventError::NotOwner(id.to_owned()));
        }
        Ok(s)
    }

    /// PullMessages: up to `limit` queued messages (capped), at once if any; otherwise
    /// [`PullOutcome::Wait`] until `now + timeout` (capped), after which the caller asks
    /// again with `waited = true` and gets the (maybe empty) answer. Each pull extends
    /// the subscription's life to at least the default life from now.
    pub fn pull(
        &mut self,
        id: &str,
        owner: &str,
        timeout_us: i64,
        limit: usize,
        waited: bool,
        now: UnixMicros,
    ) -> Result<PullOutcome, EventError> {
        let lim = self.limits;
        let s = self.get_mut(id, owner, now)?;
        s.expires = s.expires.max(now + lim.default_life_us);
        if s.queue.is_empty() && !waited && timeout_us > 0 {
            return Ok(PullOutcome::Wait {
                deadline: now + timeout_us.min(lim.max_wait_us),
            });
        }
        let n = limit.clamp(1, lim.max_messages).min(s.queue.len());
        let messages: Vec<Event> = s.queue.drain(..n).collect();
        let expires = s.expires;
        self.counters.delivered += messages.len() as u64;
        Ok(PullOutcome::Messages { messages, expires })
    }

    /// Whether a subscription exists (not yet expired or unsubscribed).
    pub fn contains(&self, id: &str) -> bool {
        self.subs.contains_key(id)
    }

    /// Whether a subscription has messages waiting (for a woken long poll).
    pub fn has_messages(&self, id: &str) -> bool {
        self.subs.get(id).is_some_and(|s| !s.queue.is_empty())
    }

    /// Renew: the new termination time (absolute), bounded by the longest life.
    pub fn renew(
        &mut self,
        id: &str,
        owner: &str,
        until: Option<UnixMicros>,
        now: UnixMicros,
    ) -> Result<UnixMicros, EventError> {
        let expires = self.life_until(until, now);
        if expires <= now {
            return Err(EventError::InThePast);
        }
        let s = self.get_mut(id, owner, now)?;
        s.expires = expires;
        Ok(expires)
    }

    /// Unsubscribe.
    pub fn unsubscribe(
        &mut self,
        id: &str,
        owner: &str,
        now: UnixMicros,
    ) -> Result<(), EventError> {
        self.get_mut(id, owner, now)?;
        self.subs.remove(id);
        Ok(())
    }

    /// SetSynchronizationPoint: queues the current value of every selected property
    /// again, as `Initialized`.
    pub fn synchronize(
        &mut self,
        id: &str,
        owner: &str,
        now: UnixMicros,
    ) -> Result<(), EventError> {
        self.get_mut(id, owner, now)?;
        // The subscription is taken out while the properties are read.
        if let Some(mut s) = self.subs.remove(id) {
            self.initialize(&mut s);
            self.subs.insert(id.to_owned(), s);
        }
        Ok(())
    }

    /// Messages dropped from a subscription's full queue so far.
    pub fn dropped(&self, id: &str) -> Option<u64> {
        self.subs.get(id).map(|s| s.dropped)
    }
}

/// Parses an xs:duration as PullMessages' `Timeout` and relative termination times use
/// it (`PT10S`, `PT1M30S`, `PT0.5S`, `P1DT2H`; no years or months): microseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: f64 = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                let v: f64 = num.parse().ok()?;
                total += v * mult;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any || !total.is_finite() || total > 1e9 {
        return None;
    }
    Some((total * 1e6) as i64)
}

/// An `AbsoluteOrRelativeTimeType` (WS-BaseNotification): an xs:dateTime or an
/// xs:duration from `now`. None when it is neither.
pub fn parse_termination(s: &str, now: UnixMicros) -> Option<UnixMicros> {
    let s = s.trim();
    if s.starts_with('P') {
        return parse_duration(s).map(|d| now + d);
    }
    ipcamd_proto::time::parse_utc(s)
}

#[cfg(test)]
mod tests;
