//! RTP in, access units out: the receiving side of a proxied camera or an RTSP publisher.
//! Written by hand (sans IO: packets and their arrival times are handed in, nothing here
//! reads a clock): no crate turns RTP and RTCP sender reports into access units stamped
//! with the sender's capture clock.
//!
//! Per track:
//! - packets of another SSRC than the track's (once it has one) or another payload type are
//!   dropped and counted, as are malformed packets; the depacketizer reassembles access
//!   units and flags those hit by loss;
//! - `pts` is the RTP timestamp unwrapped to 64 bits, made to continue (never restart)
//!   across timestamp jumps and reconnections ([`Ingest::restart`]);
//! - the **capture wallclock** of a unit is the sender's own clock once an RTCP sender
//!   report (NTP <-> RTP) or a PLAY response's RTP-Info with `Range: clock=`
//!   ([`Ingest::anchor`]) has told it, else the arrival time of the track's first packet
//!   plus the RTP time since.
//!
//! ```text
//!   delta  = wallclock - arrival              per packet (clock difference + delay)
//!   offset = max delta over 5 s windows        the least delayed packets: bursts (a
//!                                              proxy's GOP cache) and jitter do not count
//!   baseline = offset of the first window after an anchor; drift = offset - baseline,
//!              logged when it moves by DRIFT_LOG
//!   delta > offset + JUMP, or delta < offset - LATE  ->  timestamp jump (sender reboot,
//!              RTP wrap, NTP step): re-anchored at arrival + offset, so the time
//!              continues from where it is now
//! ```
//!
//! A jump never moves the wallclock by more than the real time that passed, so the store
//! never sees hours-long segments; the recorder starts a new section after any step of more
//! than its gap limit.

use std::collections::VecDeque;

use ipcamd_proto::codec::{MediaKind, TrackInfo};
use ipcamd_proto::packet::{depacketizer_for, DepacketizedUnit, Depacketizer};
use ipcamd_proto::rtcp::{parse_compound, RtcpPacket};
use ipcamd_proto::rtp::parse_rtp;
use ipcamd_proto::time::{ntp_to_unix_micros, UnixMicros};

use crate::AccessUnit;

/// A difference between the sender's clock and ours that moves by more than this is a
/// timestamp jump, not drift.
pub const JUMP_US: i64 = 3_000_000;
/// Packets later than this (beyond the least delayed ones) are a jump back, not delay.
pub const LATE_US: i64 = 10_000_000;
/// Drift is logged each time it moves by this much.
pub const DRIFT_LOG_US: i64 = 250_000;
/// The window over which the least delay is taken.
pub const WINDOW_US: i64 = 5_000_000;
/// A track with a packet this recent flows ([`Ingest::silent_track`]).
pub const FLOWING_US: i64 = 1_000_000;

/// Counters of one track.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrackCounters {
    pub packets: u64,
    pub units: u64,
    /// Units the depacketizer flagged as hit by loss.
    pub lossy_units: u64,
    /// Packets that did not parse or did not depacketize.
    pub malformed: u64,
    /// Packets of another SSRC or payload type.
    pub foreign: u64,
    pub sender_reports: u64,
    pub jumps: u64,
}

/// Something worth a log line, returned by [`Ingest::rtp`] and [`Ingest::rtcp`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The track's timestamps jumped; the time continues from the arrival time.
    Jump { track: usize, by_us: i64 },
    /// The sender's clock differs from ours by this much (network delay included),
    /// measured over the first window after the sender's clock became known.
    ClockOffset { track: usize, offset_us: i64 },
    /// A sender report moved the sender's clock by this much (an NTP step).
    ClockStep { track: usize, by_us: i64 },
    /// The sender's clock drifted from ours since the last anchor.
    Drift { track: usize, drift_us: i64 },
}

/// Where a track's RTP time is on the wallclock and on the pts line.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ext: i64,
    wall: UnixMicros,
    pts: i64,
}

struct TrackIn {
    info: TrackInfo,
    rate: i64,
    depack: Box<dyn Depacketizer>,
    ssrc: Option<u32>,
    /// Last RTP timestamp seen and its 64-bit extension.
    last_ts: Option<(u32, i64)>,
    anchor: Option<Anchor>,
    /// The anchor is the sender's clock (SR or RTP-Info), not an arrival time.
    sender_clock: bool,
    delay: Delay,
    /// pts and wallclock of the last unit out (continuity across jumps and restarts).
    last_out: Option<(i64, UnixMicros)>,
    /// When the track's last packet of this session arrived.
    last_arrival: Option<UnixMicros>,
    counters: TrackCounters,
}

/// The least delay of a track's packets (see the module documentation).
#[derive(Debug, Default)]
struct Delay {
    /// The least delay known: of the last complete window, raised by any packet since.
    offset: Option<i64>,
    window_start: UnixMicros,
    window_max: i64,
    baseline: Option<i64>,
    logged: i64,
}

enum Measure {
    Nothing,
    Jump(i64),
    /// The first window's offset.
    Baseline(i64),
    /// Drift since the baseline moved by the log step.
    Drift(i64),
}

impl Delay {
    fn restart(&mut self, offset: i64, at: UnixMicros) {
        self.offset = Some(offset);
        self.window_start = at;
        self.window_max = offset;
    }

    fn packet(&mut self, delta: i64, arrival: UnixMicros) -> Measure {
        let Some(offset) = self.offset else {
            self.restart(delta, arrival);
            return Measure::Nothing;
        };
        if delta - offset > JUMP_US || offset - delta > LATE_US {
            return Measure::Jump(delta - offset);
        }
        self.window_max = self.window_max.max(delta);
        self.offset = Some(offset.max(delta));
        if arrival - self.window_start < WINDOW_US {
            return Measure::Nothing;
        }
        // A window ends: its least delay is the offset now (it may go down: drift).
        let offset = self.window_max;
        self.offset = Some(offset);
        self.window_start = arrival;
        self.window_max = delta;
        let Some(base) = self.baseline else {
            self.baseline = Some(offset);
            return Measure::Baseline(offset);
        };
        let drift = offset - base;
        if (drift - self.logged).abs() >= DRIFT_LOG_US {
            self.logged = drift;
            return Measure::Drift(drift);
        }
        Measure::Nothing
    }
}

/// The receiving state of one source's tracks. See the module documentation.
pub struct Ingest {
    tracks: Vec<TrackIn>,
    out: VecDeque<AccessUnit>,
    /// When the session's first packet (of any track) arrived.
    started: Option<UnixMicros>,
}

impl TrackIn {
    fn new(info: TrackInfo) -> TrackIn {
        TrackIn {
            rate: i64::from(info.clock_rate().max(1)),
            depack: depacketizer_for(&info.codec),
            info,
            ssrc: None,
            last_ts: None,
            anchor: None,
            sender_clock: false,
            delay: Delay::default(),
            last_out: None,
            last_arrival: None,
            counters: TrackCounters::default(),
        }
    }

    /// The 64-bit extension of `ts`, the nearest to the last one seen (without moving it).
    fn extend(&self, ts: u32) -> i64 {
        match self.last_ts {
            None => i64::from(ts),
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
        }
    }

    fn at(&self, a: &Anchor, ext: i64) -> (i64, UnixMicros) {
        let d = ext - a.ext;
        (a.pts + d, a.wall + d * 1_000_000 / self.rate)
    }

    /// A new anchor at `ext` = `wall`. The pts line goes on along the RTP time when it is
    /// continuous (`jump` false), else by the wallclock time since the last unit out.
    fn reanchor(&mut self, ext: i64, wall: UnixMicros, jump: bool) {
        let pts = match (self.anchor, self.last_out) {
            (Some(a), _) if !jump => self.at(&a, ext).0,
            (_, Some((pts, at))) => pts + ((wall - at) * self.rate / 1_000_000).max(1),
            (_, None) => 0,
        };
        self.anchor = Some(Anchor { ext, wall, pts });
    }

    /// Anchors `ext` at the sender's `wall`; returns the event to log, if any.
    fn sender_anchor(&mut self, track: usize, ext: i64, wall: UnixMicros) -> Option<Event> {
        let before = self.anchor.map(|a| self.at(&a, ext).1);
        let was_sender = self.sender_clock;
        self.reanchor(ext, wall, false);
        self.sender_clock = true;
        let moved = before.map_or(i64::MAX, |b| wall - b);
        if moved.abs() <= DRIFT_LOG_US {
            return None; // the same clock, give or take jitter
        }
        // Another clock than before: the delay is measured again.
        self.delay = Delay::default();
        (was_sender && moved != i64::MAX).then_some(Event::ClockStep {
            track,
            by_us: moved,
        })
    }

    fn packet(
        &mut self,
        track: usize,
        pkt: &[u8],
        arrival: UnixMicros,
        out: &mut VecDeque<AccessUnit>,
    ) -> Option<Event> {
        let Ok(p) = parse_rtp(pkt) else {
            self.counters.malformed += 1;
            return None;
        };
        if p.payload_type() != self.info.payload_type || self.ssrc.is_some_and(|s| s != p.ssrc()) {
            self.counters.foreign += 1;
            return None;
        }
        self.ssrc = Some(p.ssrc());
        self.counters.packets += 1;
        self.last_arrival = Some(arrival);
        let ext = self.extend(p.timestamp());
        if self.last_ts.is_none_or(|(_, e)| ext > e) {
            self.last_ts = Some((p.timestamp(), ext));
        }
        let event = self.check_time(track, ext, arrival);
        if self.depack.push(&p).is_err() {
            self.counters.malformed += 1;
        }
        while let Some(u) = self.depack.pull() {
            self.unit(track, u, out);
        }
        event
    }

    /// Anchors the first packet at its arrival, measures the sender's offset and drift,
    /// and re-anchors on a jump.
    fn check_time(&mut self, track: usize, ext: i64, arrival: UnixMicros) -> Option<Event> {
        let Some(a) = self.anchor else {
            self.reanchor(ext, arrival, true);
            self.delay.packet(0, arrival);
            return None;
        };
        let delta = self.at(&a, ext).1 - arrival;
        match self.delay.packet(delta, arrival) {
            Measure::Jump(by_us) => {
                self.counters.jumps += 1;
                let offset = self.delay.offset.unwrap_or(0);
                self.reanchor(ext, arrival + offset, true);
                // Until the next sender report, the time runs on arrival.
                self.sender_clock = false;
                self.delay.restart(offset, arrival);
                Some(Event::Jump { track, by_us })
            }
            Measure::Baseline(offset_us) if self.sender_clock && offset_us.abs() > DRIFT_LOG_US => {
                Some(Event::ClockOffset { track, offset_us })
            }
            Measure::Drift(drift_us) => Some(Event::Drift { track, drift_us }),
            Measure::Baseline(_) | Measure::Nothing => None,
        }
    }

    fn unit(&mut self, track: usize, u: DepacketizedUnit, out: &mut VecDeque<AccessUnit>) {
        let Some(a) = self.anchor else {
            return;
        };
        let (pts, wall) = self.at(&a, self.extend(u.timestamp));
        // Units never go back in time on their track (reordered B-frames aside, which the
        // depacketizer hands out in decoding order with the time of their first packet).
        let (pts, wall) = match self.last_out {
            Some((lp, lw)) if pts < lp => (lp, lw.max(wall)),
            _ => (pts, wall),
        };
        self.last_out = Some((pts, wall));
        self.counters.units += 1;
        if u.loss {
            self.counters.lossy_units += 1;
        }
        out.push_back(AccessUnit {
            track,
            pts: pts.max(0) as u64,
            wallclock: wall,
            keyframe: u.keyframe || self.info.kind() == MediaKind::Audio,
            data: u.data,
        });
    }
}

impl Ingest {
    /// Receives these tracks (as the sender's SDP describes them; payload types are the
    /// sender's).
    pub fn new(tracks: Vec<TrackInfo>) -> Ingest {
        Ingest {
            tracks: tracks.into_iter().map(TrackIn::new).collect(),
            out: VecDeque::new(),
            started: None,
        }
    }

    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.tracks.iter().map(|t| &t.info)
    }

    /// A new session of the same sender (a reconnection with the same SDP): SSRCs,
    /// sequence numbers and clocks start again; `pts` continues after the last unit.
    pub fn restart(&mut self) {
        for t in &mut self.tracks {
            let last_out = t.last_out;
            let counters = std::mem::take(&mut t.counters);
            *t = TrackIn::new(t.info.clone());
            t.last_out = last_out;
            t.counters = counters;
        }
        self.started = None;
    }

    /// One RTP packet of `track`, arrived at `arrival`.
    pub fn rtp(&mut self, track: usize, pkt: &[u8], arrival: UnixMicros) -> Option<Event> {
        let t = self.tracks.get_mut(track)?;
        self.started.get_or_insert(arrival);
        t.packet(track, pkt, arrival, &mut self.out)
    }

    /// One RTCP compound packet of `track`: sender reports anchor the track's time on the
    /// sender's clock. Malformed packets are counted.
    pub fn rtcp(&mut self, track: usize, pkt: &[u8]) -> Option<Event> {
        let t = self.tracks.get_mut(track)?;
        let Ok(packets) = parse_compound(pkt) else {
            t.counters.malformed += 1;
            return None;
        };
        let mut event = None;
        for p in packets {
            if let RtcpPacket::SenderReport(sr) = p {
                if t.ssrc.is_some_and(|s| s != sr.ssrc) {
                    t.counters.foreign += 1;
                    continue;
                }
                t.counters.sender_reports += 1;
                let ext = t.extend(sr.rtp_timestamp);
                event = t
                    .sender_anchor(track, ext, ntp_to_unix_micros(sr.ntp))
                    .or(event);
            }
        }
        event
    }

    /// The sender's clock from a PLAY response: RTP timestamp `rtptime` of `track` (its
    /// RTP-Info) is at `wall` (its `Range: clock=` start). A sender report later wins.
    pub fn anchor(&mut self, track: usize, rtptime: u32, wall: UnixMicros) -> Option<Event> {
        let t = self.tracks.get_mut(track)?;
        let ext = t.extend(rtptime);
        t.sender_anchor(track, ext, wall)
    }

    /// Whether the track's time is the sender's clock (not arrival times).
    pub fn sender_clock(&self, track: usize) -> bool {
        self.tracks.get(track).is_some_and(|t| t.sender_clock)
    }

    /// The next access unit received, in arrival order.
    pub fn pull(&mut self) -> Option<AccessUnit> {
        self.out.pop_front()
    }

    pub fn counters(&self, track: usize) -> Option<&TrackCounters> {
        self.tracks.get(track).map(|t| &t.counters)
    }

    /// A track that has taken no packet for `quiet_us` before `now` (counted from the
    /// session's first packet for a track that has had none) while another track took
    /// one within the last [`FLOWING_US`]: a sender that announced a track and does not
    /// send it, or stopped sending it. `None` while every track flows, or none does (the
    /// whole session is silent: the caller's media timeout).
    pub fn silent_track(&self, now: UnixMicros, quiet_us: i64) -> Option<usize> {
        let started = self.started?;
        let flowing = |t: &TrackIn| t.last_arrival.is_some_and(|a| now - a < FLOWING_US);
        self.tracks.iter().enumerate().find_map(|(i, t)| {
            let since = t.last_arrival.unwrap_or(started);
            let others = self
                .tracks
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && flowing(o));
            (now - since >= quiet_us && others).then_some(i)
        })
    }

    /// Every track's counters, in track order (what a stream's stats show as `received`).
    pub fn all_counters(&self) -> Vec<TrackCounters> {
        self.tracks.iter().map(|t| t.counters.clone()).collect()
    }

    /// The counters summed over tracks.
    pub fn total(&self) -> TrackCounters {
        let mut s = TrackCounters::default();
        for t in &self.tracks {
            let c = &t.counters;
            s.packets += c.packets;
            s.units += c.units;
            s.lossy_units += c.lossy_units;
            s.malformed += c.malformed;
            s.foreign += c.foreign;
            s.sender_reports += c.sender_reports;
            s.jumps += c.jumps;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use ipcamd_proto::codec::CodecParams;
    use ipcamd_proto::rtcp::{write_sender_report, SenderReport};
    use ipcamd_proto::rtp::{write_rtp, RtpHeader};
    use ipcamd_proto::time::unix_micros_to_ntp;

    const SSRC: u32 = 0x1234_5678;
    const HOUR: i64 = 3_600_000_000;

    fn pcmu() -> Ingest {
        Ingest::new(vec![TrackInfo::new(
            CodecParams::Pcmu {
                rate: 8000,
                channels: 1,
            },
            0,
        )])
    }

    #[test]
    fn a_track_without_packets_while_another_flows_is_silent() {
        let mut i = pcmu();
        i.tracks.push(TrackIn::new(i.tracks[0].info.clone()));
        let t0: UnixMicros = 1_700_000_000_000_000;
        assert_eq!(i.silent_track(t0, 5_000_000), None, "nothing yet");
        // Track 0 flows for 6 s, track 1 takes nothing.
        for n in 0..300u16 {
            let at = t0 + i64::from(n) * 20_000;
            i.rtp(0, &rtp(n, u32::from(n) * 160), at);
            let want = (at - t0 >= 5_000_000).then_some(1);
            assert_eq!(
                i.silent_track(at, 5_000_000),
                want,
                "at {} ms",
                (at - t0) / 1000
            );
        }
        let at = t0 + 6_000_000;
        // Track 1's first packet: every track flows.
        i.rtp(1, &rtp(0, 0), at);
        assert_eq!(i.silent_track(at, 5_000_000), None);
        // Nothing flows for 6 s: the whole session is silent, not one track.
        assert_eq!(i.silent_track(at + 6_000_000, 5_000_000), None);
        // Track 1 goes on alone for 5 s: track 0 stopped.
        for n in 1..=260u16 {
            i.rtp(
                1,
                &rtp(n, u32::from(n) * 160),
                at + 6_000_000 + i64::from(n) * 20_000,
            );
        }
        assert_eq!(i.silent_track(at + 11_200_000, 5_000_000), Some(0));
        // A new session counts from its own first packet.
        i.restart();
        assert_eq!(i.silent_track(at + 12_000_000, 5_000_000), None);
    }

    fn rtp(seq: u16, ts: u32) -> Vec<u8> {
        let mut b = BytesMut::new();
        let h = RtpHeader {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: ts,
            ssrc: SSRC,
            extension: None,
        };
        write_rtp(&h, &[0xff; 160], &mut b);
        b.to_vec()
    }

    fn sr(ts: u32, wall: UnixMicros) -> Vec<u8> {
        let mut b = BytesMut::new();
        let r = SenderReport {
            ssrc: SSRC,
            ntp: unix_micros_to_ntp(wall),
            rtp_timestamp: ts,
            packet_count: 0,
            octet_count: 0,
        };
        write_sender_report(&mut b, &r, "cam");
        b.to_vec()
    }

    /// Feeds 20 ms packets n in `range`, packet n arriving at `t0 + n*20ms`, RTP time
    /// `ts0 + n*160`; returns the units out.
    fn feed(i: &mut Ingest, range: std::ops::Range<u32>, ts0: u32, t0: i64) -> Vec<AccessUnit> {
        for n in range {
            i.rtp(
                0,
                &rtp(n as u16, ts0.wrapping_add(n * 160)),
                t0 + i64::from(n) * 20_000,
            );
        }
        std::iter::from_fn(|| i.pull()).collect()
    }

    #[test]
    fn without_sender_reports_time_is_the_first_arrival_plus_rtp_time() {
        let mut i = pcmu();
        // Arrival jitter does not move the time: only the first arrival counts.
        i.rtp(0, &rtp(0, 1000), 5_000_000);
        i.rtp(0, &rtp(1, 1160), 5_035_000);
        let u: Vec<_> = std::iter::from_fn(|| i.pull()).collect();
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].pts, u[0].wallclock), (0, 5_000_000));
        assert_eq!((u[1].pts, u[1].wallclock), (160, 5_020_000));
        assert!(!i.sender_clock(0));
    }

    /// Like `feed`, returning the events instead; packet n arrives at `arrival(n)`.
    fn events(
        i: &mut Ingest,
        range: std::ops::Range<u32>,
        ts0: u32,
        arrival: impl Fn(u32) -> i64,
    ) -> Vec<Event> {
        let ev = range
            .filter_map(|n| i.rtp(0, &rtp(n as u16, ts0.wrapping_add(n * 160)), arrival(n)))
            .collect();
        while i.pull().is_some() {}
        ev
    }

    #[test]
    fn a_sender_report_puts_units_on_the_senders_clock_an_hour_off() {
        let mut i = pcmu();
        let now = 1_700_000_000_000_000;
        // The camera's clock is one hour behind ours.
        assert_eq!(i.rtcp(0, &sr(90_000, now - HOUR)), None);
        assert!(i.sender_clock(0));
        let u = feed(&mut i, 0..50, 90_000, now);
        assert_eq!(u[0].wallclock, now - HOUR);
        assert_eq!(u[49].wallclock, now - HOUR + 49 * 20_000);
        assert_eq!(u[49].pts - u[0].pts, 49 * 160);
        // A sender report after arrival-timed packets: the units follow the camera's
        // clock at once, the offset is reported after the first window, once.
        let mut i = pcmu();
        feed(&mut i, 0..5, 0, now);
        assert_eq!(i.rtcp(0, &sr(5 * 160, now + 100_000 - HOUR)), None);
        let u = feed(&mut i, 5..10, 0, now);
        assert_eq!(u[0].wallclock, now + 100_000 - HOUR);
        // pts goes on along the RTP time whatever the clock did.
        assert_eq!(u[0].pts, 5 * 160);
        let ev = events(&mut i, 10..1000, 0, |n| now + i64::from(n) * 20_000);
        assert!(
            matches!(&ev[..], [Event::ClockOffset { offset_us, .. }] if (offset_us + HOUR).abs() < 1000),
            "{ev:?}"
        );
        // A sender report an hour later is a clock step.
        assert!(matches!(
            i.rtcp(0, &sr(1000 * 160, now + 20_000_000)),
            Some(Event::ClockStep { by_us, .. }) if (by_us - HOUR).abs() < 1000
        ));
    }

    #[test]
    fn a_burst_of_old_packets_is_delay_not_drift() {
        let mut i = pcmu();
        let t0 = 1_000_000_000;
        i.rtcp(0, &sr(0, t0));
        // The first 2 s of packets arrive at once (a proxy's GOP cache), then live.
        let arrival = |n: u32| (t0 + i64::from(n) * 20_000).max(t0 + 2_000_000);
        let ev = events(&mut i, 0..2000, 0, arrival);
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn drift_is_measured_and_a_jump_continues_from_the_arrival_time() {
        let mut i = pcmu();
        let t0 = 1_000_000_000;
        i.rtcp(0, &sr(0, t0));
        // The sender's clock runs 1 % slow: each 20 ms of its RTP time takes 20.2 ms of ours.
        let ev = events(&mut i, 0..4000, 0, |n| t0 + i64::from(n) * 20_200);
        let drifts: Vec<i64> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Drift { drift_us, .. } => Some(*drift_us),
                _ => None,
            })
            .collect();
        // 80 s at 1 %, less the first window: about -750 ms, reported in steps of 250 ms.
        assert_eq!(drifts.len(), 2, "{ev:?}");
        assert!(drifts[0] < -250_000 && drifts[0] > -350_000, "{drifts:?}");
        assert!(drifts[1] < -500_000 && drifts[1] > -600_000, "{drifts:?}");
        i.rtp(0, &rtp(4000, 4000 * 160), t0 + 4000 * 20_200);
        let last: Vec<_> = std::iter::from_fn(|| i.pull()).collect();
        let (last_pts, last_wall) = (last[0].pts, last[0].wallclock);
        // The sender reboots: its RTP timestamps jump by hours.
        let arrival = t0 + 4001 * 20_200 + 2_000_000;
        let ev = i.rtp(0, &rtp(4001, 0x8000_0000), arrival);
        assert!(matches!(ev, Some(Event::Jump { .. })));
        let u: Vec<_> = std::iter::from_fn(|| i.pull()).collect();
        assert_eq!(u.len(), 1);
        // Time continues from now on the sender's clock (0.75 s slow by now), never hours
        // away...
        assert!(
            (u[0].wallclock - arrival + 750_000).abs() < 100_000,
            "{u:?}"
        );
        assert!(u[0].wallclock > last_wall);
        // ...and pts by the real time that passed.
        assert!(u[0].pts > last_pts && u[0].pts < last_pts + 8000 * 3);
        assert_eq!(i.counters(0).map(|c| c.jumps), Some(1));
        assert!(!i.sender_clock(0));
    }

    #[test]
    fn timestamps_unwrap_and_foreign_or_malformed_packets_are_counted() {
        let mut i = pcmu();
        let u = feed(&mut i, 0..10, u32::MAX - 800, 0);
        for w in u.windows(2) {
            assert_eq!(w[1].pts, w[0].pts + 160);
        }
        let mut other = rtp(11, 10);
        other[8] ^= 0xff; // another SSRC
        i.rtp(0, &other, 0);
        i.rtp(0, &[0x80, 0], 0);
        i.rtp(7, &rtp(12, 10), 0); // no such track: ignored
        assert!(i.rtcp(0, &[1, 2, 3]).is_none());
        let c = i.counters(0).cloned().unwrap_or_default();
        assert_eq!((c.foreign, c.malformed, c.packets), (1, 2, 10));
    }

    #[test]
    fn a_restart_keeps_pts_going_forward() {
        let mut i = pcmu();
        let u = feed(&mut i, 0..10, 5000, 0);
        let last = u.last().map(|u| u.pts).unwrap_or(0);
        i.restart();
        // The new session starts at another random timestamp, 10 s later.
        let u = feed(&mut i, 0..3, 77, 10_200_000);
        assert!(u[0].pts > last + 8000 * 9, "{} after {last}", u[0].pts);
        assert_eq!(u[0].wallclock, 10_200_000);
        assert_eq!(u[1].pts, u[0].pts + 160);
    }

    #[test]
    fn rtp_info_anchors_before_any_sender_report() {
        let mut i = pcmu();
        let wall = 1_600_000_000_000_000;
        i.anchor(0, 4000, wall);
        let u = feed(&mut i, 0..2, 4000, wall + HOUR);
        assert_eq!(u[0].wallclock, wall);
        assert!(i.sender_clock(0));
    }
}
