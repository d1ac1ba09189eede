//! Receive-side RTP jitter buffer for one backchannel stream (sans-IO: the caller passes
//! arrival times and "now"; nothing here reads a clock or touches a socket).
//!
//! # What it implements
//!
//! - RFC 3550 §5.1 sequence numbers and timestamps: 16-bit sequence numbers are extended to
//!   a wider counter so wrap-around (65535 -> 0) is invisible; 32-bit timestamps are only ever
//!   compared by wrapping differences, so their wrap is invisible too.
//! - RFC 3550 Appendix A.1 source validation, simplified: a jump of more than
//!   [`MAX_DROPOUT`] sequence numbers forward or [`MAX_MISORDER`] backwards is a suspected
//!   restart; it is only believed when the next packet continues the new sequence, and then
//!   the buffer is flushed and playout resynchronises on the new sequence.
//! - RFC 3550 §6.4.1 interarrival jitter (in timestamp units), for receiver reports.
//! - SSRC lock-in: the first SSRC owns the stream; another SSRC is accepted only after the
//!   owner has been silent for more than [`SSRC_TAKEOVER`] (a client that restarts its
//!   sender picks a new random SSRC, RFC 3550 §8).
//!
//! # Playout model
//!
//! The buffer reorders and detects loss; it does not pace. At the start (and after a
//! resync) it holds the first packets for `depth`, so that packets reordered at the very
//! start are not lost, and so that the consumer starts with `depth` of audio in hand.
//! After that a packet is released as soon as its predecessor has been released, and a gap
//! is given up (reported as [`Playout::Lost`]) once the packet after it is `depth` old.
//! Downstream output (a file, an audio player's own buffer) does the real-time pacing.
//!
//! # Left out
//!
//! - Timestamp gaps without sequence gaps (silence suppression, RFC 3551 §4.1) are not
//!   turned into silence: the next talkspurt is played right after the previous one.
//! - No adaptive depth, no time stretching, no clock-drift compensation.
//! - Payload types are carried, not interpreted (the caller decides what to do with them).
//!
//! Hand-written because the jitter buffers on crates.io either own the socket and the
//! clock (webrtc-rs) or are tied to a media stack (str0m); this one is ~300 lines.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

/// Default playout depth.
pub const DEFAULT_DEPTH: Duration = Duration::from_millis(60);
/// Most packets held at once; beyond that new packets are dropped (counted as overflow).
pub const MAX_PACKETS: usize = 500;
/// Most payload bytes held at once; beyond that new packets are dropped (counted as overflow).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// A forward sequence jump larger than this is a suspected restart (RFC 3550 A.1).
pub const MAX_DROPOUT: i64 = 3000;
/// A backward sequence jump larger than this is a suspected restart (RFC 3550 A.1).
pub const MAX_MISORDER: i64 = 100;
/// How long the owning SSRC must be silent before another SSRC may take over.
pub const SSRC_TAKEOVER: Duration = Duration::from_secs(1);
/// A [`Playout::Lost`] never reports more than this many seconds of audio (the rest of a
/// long gap is silence anyway, and garbage timestamps must not ask for hours of it).
const MAX_LOST_SECONDS: u32 = 1;
/// Sequence numbers below the playout point remembered as "played", to tell duplicates
/// from late packets.
const HISTORY: i64 = 128;

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Accepted,
    /// Stored, and the buffer was flushed first: a new SSRC took over, or a confirmed
    /// sequence restart. The caller should reset its decoder.
    Resync,
    /// A suspicious sequence jump, kept aside until the next packet confirms it.
    Probation,
    /// Already held or already played: dropped.
    Duplicate,
    /// Its place in the sequence was already played or given up: dropped.
    Late,
    /// From another SSRC than the one the stream is locked on: dropped.
    WrongSsrc,
    /// The buffer is full (packets or bytes): dropped.
    Overflow,
    /// Not a valid RTP packet (counted by the RTP parser of the caller, see
    /// the pipeline module): dropped.
    Malformed,
    /// Valid RTP but not the negotiated payload type (counted by the caller): dropped.
    WrongPayloadType,
}

/// One playout step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next packet in sequence order.
    Packet {
        sequence: u16,
        timestamp: u32,
        payload_type: u8,
        payload: Bytes,
    },
    /// One or more packets that never came; the decoder should conceal.
    Lost {
        /// Number of sequence numbers skipped.
        packets: u16,
        /// RTP timestamp of the first missing sample, estimated.
        timestamp_hint: u32,
        /// Missing duration in RTP timestamp units (samples per channel at the clock
        /// rate), estimated from the neighbours' timestamps; 0 if unknown. At most 1 s.
        samples_hint: u32,
    },
}

/// Counters. Every packet given to [`JitterBuffer::push`] ends up counted in exactly one of
/// `accepted`, `duplicates`, `late`, `wrong_ssrc`, `overflow` and `probation_dropped`, or is
/// the one packet in probation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets given to `push`.
    pub received: u64,
    /// Packets stored for playout.
    pub accepted: u64,
    /// Stored packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    pub duplicates: u64,
    pub late: u64,
    pub wrong_ssrc: u64,
    pub overflow: u64,
    /// Suspected restarts that the next packet did not confirm.
    pub probation_dropped: u64,
    /// Flushes: SSRC takeovers and confirmed sequence restarts.
    pub resyncs: u64,
    /// Accepted packets thrown away unplayed by a flush.
    pub flushed: u64,
    /// Sequence numbers given up as lost.
    pub lost: u64,
    /// Packets released by `pop`.
    pub played: u64,
    /// RFC 3550 §6.4.1 interarrival jitter estimate, in RTP timestamp units.
    pub interarrival_jitter: u32,
    /// Extended highest sequence number received (RFC 3550 §6.4.1), for receiver reports.
    pub highest_sequence: u64,
}

#[derive(Debug)]
struct Held {
    timestamp: u32,
    payload_type: u8,
    payload: Bytes,
    arrival: Duration,
}

/// A suspicious packet waiting for confirmation (RFC 3550 A.1 `bad_seq`).
#[derive(Debug)]
struct Probation {
    seq: u16,
    packet: Held,
}

/// See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    clock_rate: u32,
    depth: Duration,
    ssrc: Option<u32>,
    /// Arrival of the last packet from the owning SSRC.
    ssrc_last_arrival: Duration,
    /// Packets held, by extended sequence number.
    held: BTreeMap<i64, Held>,
    held_bytes: usize,
    /// Extended sequence number of the highest packet received; `None` before the first.
    max_ext: Option<i64>,
    /// Extended sequence number of the next packet to release; `None` while prefilling.
    next_ext: Option<i64>,
    /// Arrival of the first packet after the start or a flush: prefilling ends `depth`
    /// after it.
    first_arrival: Option<Duration>,
    /// Bit i set: sequence `next_ext - 1 - i` was released (not lost).
    played_mask: u128,
    /// Timestamp and extended sequence of the last released packet.
    last_played: Option<(i64, u32)>,
    probation: Option<Probation>,
    /// Arrival time and timestamp of the previous packet, for interarrival jitter.
    transit_prev: Option<(Duration, u32)>,
    /// Jitter in 1/16 timestamp units (RFC 3550 A.8 fixed-point form).
    jitter_q4: u64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for a stream with RTP clock `clock_rate` (Hz) and playout `depth`
    /// ([`DEFAULT_DEPTH`] is a good start).
    pub fn new(clock_rate: u32, depth: Duration) -> Self {
        JitterBuffer {
            clock_rate: clock_rate.max(1),
            depth,
            ssrc: None,
            ssrc_last_arrival: Duration::ZERO,
            held: BTreeMap::new(),
            held_bytes: 0,
            max_ext: None,
            next_ext: None,
            first_arrival: None,
            played_mask: 0,
            last_played: None,
            probation: None,
            transit_prev: None,
            jitter_q4: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    pub fn depth(&self) -> Duration {
        self.depth
    }

    /// The SSRC the stream is locked on, once a packet was accepted.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Packets currently held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.interarrival_jitter = u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX);
        stats.highest_sequence = self.max_ext.map_or(0, |e| e.max(0) as u64);
        stats
    }

    /// Offers one received packet. `arrival` is the receive time on the caller's clock
    /// (any origin, must not run backwards by much; a backwards step is treated as zero).
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        payload_type: u8,
        payload: Bytes,
        arrival: Duration,
    ) -> PushOutcome {
        self.stats.received += 1;
        let packet = Held {
            timestamp,
            payload_type,
            payload,
            arrival,
        };

        // SSRC lock-in and takeover.
        let mut resync = false;
        match self.ssrc {
            Some(owner) if owner == ssrc => {}
            Some(_) => {
                if arrival.saturating_sub(self.ssrc_last_arrival) <= SSRC_TAKEOVER {
                    self.stats.wrong_ssrc += 1;
                    return PushOutcome::WrongSsrc;
                }
                self.flush();
                self.ssrc = Some(ssrc);
                self.stats.resyncs += 1;
                resync = true;
            }
            None => self.ssrc = Some(ssrc),
        }
        self.ssrc_last_arrival = self.ssrc_last_arrival.max(arrival);

        let Some(max_ext) = self.max_ext else {
            // First packet of the stream (or after a flush).
            self.store(i64::from(seq), packet);
            self.stats.accepted += 1;
            return if resync {
                PushOutcome::Resync
            } else {
                PushOutcome::Accepted
            };
        };

        let ext = extend(max_ext, seq);
        let floor = self.next_ext.unwrap_or(max_ext);
        if ext > max_ext + MAX_DROPOUT || ext < floor - MAX_MISORDER {
            return self.suspicious(seq, packet);
        }
        // A normal packet ends any probation: the jump was a stray packet.
        if self.probation.take().is_some() {
            self.stats.probation_dropped += 1;
        }

        if let Some(next) = self.next_ext {
            if ext < next {
                let back = next - 1 - ext;
                if back < HISTORY && self.played_mask & (1u128 << back) != 0 {
                    self.stats.duplicates += 1;
                    return PushOutcome::Duplicate;
                }
                self.stats.late += 1;
                return PushOutcome::Late;
            }
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        if self.held.len() >= MAX_PACKETS
            || self.held_bytes.saturating_add(packet.payload.len()) > MAX_BYTES
        {
            self.stats.overflow += 1;
            return PushOutcome::Overflow;
        }
        if ext < max_ext {
            self.stats.reordered += 1;
        }
        self.store(ext, packet);
        self.stats.accepted += 1;
        PushOutcome::Accepted
    }

    /// The next playout step at time `now`, or `None` if nothing is due yet. Call it in a
    /// loop until it returns `None`.
    pub fn pop(&mut self, now: Duration) -> Option<Playout> {
        let (&head_ext, head) = self.held.first_key_value()?;
        let due = now.saturating_sub(head.arrival) >= self.depth;
        let full = self.held.len() >= MAX_PACKETS || self.held_bytes >= MAX_BYTES;
        let next = match self.next_ext {
            Some(next) => next,
            None => {
                // Prefilling: start once the first packet to arrive is `depth` old.
                let first = self.first_arrival.unwrap_or(head.arrival);
                if now.saturating_sub(first) < self.depth && !full {
                    return None;
                }
                self.next_ext = Some(head_ext);
                head_ext
            }
        };
        if head_ext > next {
            // A gap: give up on it once the packet after it is `depth` old.
            if !due && !full {
                return None;
            }
            let missing = head_ext - next;
            let head_timestamp = head.timestamp;
            self.advance(missing, false);
            self.stats.lost += missing as u64;
            let samples = self.lost_samples(missing, head_ext, head_timestamp);
            return Some(Playout::Lost {
                packets: u16::try_from(missing).unwrap_or(u16::MAX),
                timestamp_hint: head_timestamp.wrapping_sub(samples),
                samples_hint: samples,
            });
        }
        // head_ext == next (nothing below `next` is ever held).
        let held = self.held.pop_first().map(|(_, h)| h)?;
        self.held_bytes = self.held_bytes.saturating_sub(held.payload.len());
        self.advance(1, true);
        self.last_played = Some((head_ext, held.timestamp));
        self.stats.played += 1;
        Some(Playout::Packet {
            sequence: head_ext as u16,
            timestamp: held.timestamp,
            payload_type: held.payload_type,
            payload: held.payload,
        })
    }

    /// The packet `pop` will release next, if it is already held and next in sequence:
    /// its payload type and payload. After a [`Playout::Lost`] this is the packet that
    /// followed the gap (Opus FEC rebuilds the gap's end from it).
    pub fn peek(&self) -> Option<(u8, &Bytes)> {
        let (&head_ext, head) = self.held.first_key_value()?;
        (self.next_ext == Some(head_ext)).then_some((head.payload_type, &head.payload))
    }

    /// When `pop` may next have something to give, if packets are held: the caller's
    /// timer deadline. `None` when empty. A time in the past means "now".
    pub fn next_deadline(&self) -> Option<Duration> {
        let (&head_ext, head) = self.held.first_key_value()?;
        Some(match self.next_ext {
            Some(next) if next == head_ext => head.arrival,
            Some(_) => head.arrival.saturating_add(self.depth),
            None => self
                .first_arrival
                .unwrap_or(head.arrival)
                .saturating_add(self.depth),
        })
    }

    /// Drops everything held and forgets the sequence; keeps the SSRC lock and the stats.
    pub fn flush(&mut self) {
        self.stats.flushed += self.held.len() as u64;
        self.held.clear();
        self.held_bytes = 0;
        self.max_ext = None;
        self.next_ext = None;
        self.first_arrival = None;
        self.played_mask = 0;
        self.last_played = None;
        if self.probation.take().is_some() {
            self.stats.probation_dropped += 1;
        }
        self.transit_prev = None;
    }

    fn store(&mut self, ext: i64, packet: Held) {
        self.update_jitter(packet.arrival, packet.timestamp);
        self.held_bytes = self.held_bytes.saturating_add(packet.payload.len());
        self.first_arrival.get_or_insert(packet.arrival);
        self.max_ext = Some(self.max_ext.map_or(ext, |m| m.max(ext)));
        self.held.insert(ext, packet);
    }

    /// RFC 3550 A.1 `bad_seq`: believe a jump only when the next packet follows it.
    fn suspicious(&mut self, seq: u16, packet: Held) -> PushOutcome {
        match self.probation.take() {
            Some(prev) if prev.seq.wrapping_add(1) == seq => {
                self.flush(); // (probation already taken: not counted as dropped)
                self.stats.resyncs += 1;
                self.stats.accepted += 2;
                let first = i64::from(prev.seq);
                self.store(first, prev.packet);
                self.store(first + 1, packet);
                PushOutcome::Resync
            }
            prev => {
                if prev.is_some() {
                    self.stats.probation_dropped += 1;
                }
                self.probation = Some(Probation { seq, packet });
                PushOutcome::Probation
            }
        }
    }

    /// Moves the playout point `count` sequence numbers on, `played` telling whether they
    /// were released or lost.
    fn advance(&mut self, count: i64, played: bool) {
        if let Some(next) = self.next_ext.as_mut() {
            *next += count;
        }
        self.played_mask = if count >= 128 {
            0
        } else {
            self.played_mask << count
        };
        if played {
            self.played_mask |= 1;
        }
    }

    /// Estimated duration of `missing` packets right before the packet `head_ext` with
    /// timestamp `head_timestamp`, from the last released packet.
    fn lost_samples(&self, missing: i64, head_ext: i64, head_timestamp: u32) -> u32 {
        let Some((last_ext, last_ts)) = self.last_played else {
            return 0;
        };
        let span_packets = head_ext - last_ext;
        let span_ts = head_timestamp.wrapping_sub(last_ts);
        // A timestamp that went backwards (or a wrap-around of a garbage value) is useless.
        if span_packets <= 0 || span_ts > i32::MAX as u32 {
            return 0;
        }
        let samples = u64::from(span_ts) * missing as u64 / span_packets as u64;
        let cap = u64::from(self.clock_rate) * u64::from(MAX_LOST_SECONDS);
        samples.min(cap) as u32
    }

    fn update_jitter(&mut self, arrival: Duration, timestamp: u32) {
        if let Some((prev_arrival, prev_ts)) = self.transit_prev {
            // D = (Rj - Ri) - (Sj - Si), in timestamp units.
            let arrival_units = |d: Duration| -> i128 {
                d.as_nanos() as i128 * i128::from(self.clock_rate) / 1_000_000_000
            };
            let r = arrival_units(arrival) - arrival_units(prev_arrival);
            let s = i128::from(timestamp.wrapping_sub(prev_ts) as i32);
            let d = (r - s).unsigned_abs().min(u128::from(u32::MAX)) as u64;
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit_prev = Some((arrival, timestamp));
    }
}

/// The extended sequence number closest to `reference` whose low 16 bits are `seq`.
fn extend(reference: i64, seq: u16) -> i64 {
    let delta = seq.wrapping_sub(reference as u16) as i16;
    reference + i64::from(delta)
}

#[cfg(test)]
// `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn payload(seq: u16) -> Bytes {
        Bytes::from(seq.to_be_bytes().to_vec())
    }

    /// Pushes `seq` with a 160-sample timestamp step and the given arrival.
    fn push(jb: &mut JitterBuffer, seq: u16, arrival: Duration) -> PushOutcome {
        let ts = u32::from(seq).wrapping_mul(160);
        jb.push(seq, ts, 0x1234, 0, payload(seq), arrival)
    }

    /// Everything `pop` gives at `now`, as sequence numbers (Lost as `-packets`).
    fn drain(jb: &mut JitterBuffer, now: Duration) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(p) = jb.pop(now) {
            match p {
                Playout::Packet { sequence, .. } => out.push(i64::from(sequence)),
                Playout::Lost { packets, .. } => out.push(-i64::from(packets)),
            }
        }
        out
    }

    #[test]
    fn in_order_after_prefill() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        assert_eq!(push(&mut jb, 10, ms(0)), PushOutcome::Accepted);
        assert_eq!(push(&mut jb, 11, ms(20)), PushOutcome::Accepted);
        assert!(drain(&mut jb, ms(30)).is_empty(), "prefilling");
        assert_eq!(jb.next_deadline(), Some(ms(60)));
        push(&mut jb, 12, ms(40));
        assert_eq!(drain(&mut jb, ms(60)), vec![10, 11, 12]);
        // From now on a packet whose predecessor was released goes out at once.
        push(&mut jb, 13, ms(60));
        assert_eq!(jb.next_deadline(), Some(ms(60)));
        assert_eq!(drain(&mut jb, ms(60)), vec![13]);
        let s = jb.stats();
        assert_eq!((s.received, s.accepted, s.played, s.lost), (4, 4, 4, 0));
        assert_eq!(s.highest_sequence, 13);
    }

    #[test]
    fn reordered_within_depth() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        push(&mut jb, 2, ms(0)); // 1 arrives after 2, at the very start
        push(&mut jb, 1, ms(5));
        push(&mut jb, 3, ms(20));
        assert_eq!(drain(&mut jb, ms(60)), vec![1, 2, 3]);
        push(&mut jb, 5, ms(60));
        assert!(drain(&mut jb, ms(61)).is_empty(), "waits for 4");
        push(&mut jb, 4, ms(70));
        push(&mut jb, 6, ms(80));
        assert_eq!(drain(&mut jb, ms(80)), vec![4, 5, 6]);
        let s = jb.stats();
        assert_eq!((s.reordered, s.lost, s.late), (2, 0, 0));
    }

    #[test]
    fn duplicates_held_and_played() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        push(&mut jb, 1, ms(0));
        assert_eq!(push(&mut jb, 1, ms(1)), PushOutcome::Duplicate);
        push(&mut jb, 2, ms(20));
        assert_eq!(drain(&mut jb, ms(60)), vec![1, 2]);
        assert_eq!(push(&mut jb, 2, ms(61)), PushOutcome::Duplicate);
        assert_eq!(push(&mut jb, 1, ms(61)), PushOutcome::Duplicate);
        assert_eq!(jb.stats().duplicates, 3);
        assert!(drain(&mut jb, ms(100)).is_empty());
    }

    #[test]
    fn lost_after_depth_then_late() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        push(&mut jb, 1, ms(0));
        assert_eq!(drain(&mut jb, ms(60)), vec![1]);
        // 2 and 3 never come; 4 arrives at 100 ms.
        push(&mut jb, 4, ms(100));
        assert!(drain(&mut jb, ms(159)).is_empty());
        assert_eq!(jb.next_deadline(), Some(ms(160)));
        match jb.pop(ms(160)) {
            Some(Playout::Lost {
                packets,
                timestamp_hint,
                samples_hint,
            }) => {
                assert_eq!(packets, 2);
                assert_eq!(samples_hint, 320);
                assert_eq!(timestamp_hint, 2 * 160);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(drain(&mut jb, ms(160)), vec![4]);
        assert_eq!(push(&mut jb, 2, ms(170)), PushOutcome::Late);
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.played), (2, 1, 2));
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        let mut got = Vec::new();
        let mut t = ms(0);
        // Timestamps near 2^32 too.
        let ts0 = u32::MAX - 500;
        for (i, seq) in (65530u16..=65535).chain(0..6).enumerate() {
            if seq == 1 {
                continue; // lost across the wrap
            }
            let ts = ts0.wrapping_add(160 * i as u32);
            assert_eq!(
                jb.push(seq, ts, 7, 0, payload(seq), t),
                PushOutcome::Accepted
            );
            t += 20 * MS;
            while let Some(p) = jb.pop(t) {
                got.push(p);
            }
        }
        got.extend(std::iter::from_fn(|| jb.pop(t + ms(100))));
        let seqs: Vec<String> = got
            .iter()
            .map(|p| match p {
                Playout::Packet { sequence, .. } => sequence.to_string(),
                Playout::Lost { packets, .. } => format!("lost{packets}"),
            })
            .collect();
        assert_eq!(
            seqs.join(" "),
            "65530 65531 65532 65533 65534 65535 0 lost1 2 3 4 5"
        );
        let lost = got.iter().find_map(|p| match p {
            Playout::Lost {
                samples_hint,
                timestamp_hint,
                ..
            } => Some((*samples_hint, *timestamp_hint)),
            _ => None,
        });
        assert_eq!(lost, Some((160, ts0.wrapping_add(160 * 7))));
        assert_eq!(jb.stats().highest_sequence, 65536 + 5);
    }

    #[test]
    fn ssrc_lock_in_and_takeover() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        assert_eq!(
            jb.push(1, 0, 0xaaaa, 0, payload(1), ms(0)),
            PushOutcome::Accepted
        );
        assert_eq!(
            jb.push(500, 0, 0xbbbb, 0, payload(500), ms(10)),
            PushOutcome::WrongSsrc
        );
        assert_eq!(
            jb.push(2, 160, 0xaaaa, 0, payload(2), ms(20)),
            PushOutcome::Accepted
        );
        assert_eq!(drain(&mut jb, ms(100)), vec![1, 2]);
        // Exactly 1 s of silence is not enough; more is.
        assert_eq!(
            jb.push(500, 0, 0xbbbb, 0, payload(500), ms(1020)),
            PushOutcome::WrongSsrc
        );
        assert_eq!(
            jb.push(501, 0, 0xbbbb, 0, payload(501), ms(1021)),
            PushOutcome::Resync
        );
        assert_eq!(jb.ssrc(), Some(0xbbbb));
        assert_eq!(
            jb.push(3, 320, 0xaaaa, 0, payload(3), ms(1030)),
            PushOutcome::WrongSsrc
        );
        assert_eq!(drain(&mut jb, ms(1100)), vec![501]);
        let s = jb.stats();
        assert_eq!((s.wrong_ssrc, s.resyncs), (3, 1));
    }

    #[test]
    fn big_jump_needs_confirmation() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        push(&mut jb, 100, ms(0));
        assert_eq!(drain(&mut jb, ms(60)), vec![100]);
        // A stray packet far away is held in probation, then dropped when 101 comes.
        assert_eq!(push(&mut jb, 40000, ms(70)), PushOutcome::Probation);
        assert_eq!(push(&mut jb, 101, ms(80)), PushOutcome::Accepted);
        assert_eq!(drain(&mut jb, ms(80)), vec![101]);
        // A real restart: two consecutive packets far away.
        assert_eq!(push(&mut jb, 20000, ms(100)), PushOutcome::Probation);
        assert_eq!(push(&mut jb, 20001, ms(120)), PushOutcome::Resync);
        assert!(drain(&mut jb, ms(120)).is_empty(), "prefills again");
        assert_eq!(drain(&mut jb, ms(160)), vec![20000, 20001]);
        let s = jb.stats();
        assert_eq!((s.resyncs, s.probation_dropped, s.lost), (1, 1, 0));
    }

    #[test]
    fn gap_and_overflow_are_bounded() {
        let mut jb = JitterBuffer::new(8000, Duration::from_secs(3600));
        push(&mut jb, 0, ms(0));
        // Never popped: the buffer fills up to its cap and refuses the rest.
        let mut overflow = 0;
        for seq in 1..2000u16 {
            if push(&mut jb, seq, ms(1)) == PushOutcome::Overflow {
                overflow += 1;
            }
        }
        assert_eq!(jb.len(), MAX_PACKETS);
        assert_eq!(overflow, 2000 - MAX_PACKETS as u64);
        // A full buffer plays out without waiting for the depth.
        assert_eq!(
            jb.pop(ms(2)).map(|p| matches!(p, Playout::Packet { .. })),
            Some(true)
        );
    }

    #[test]
    fn interarrival_jitter() {
        let mut jb = JitterBuffer::new(8000, DEFAULT_DEPTH);
        // Perfectly paced: jitter stays 0.
        for seq in 0..50u16 {
            push(&mut jb, seq, ms(20 * u64::from(seq)));
        }
        assert_eq!(jb.stats().interarrival_jitter, 0);
        // Every other packet 5 ms late: |D| = 40 timestamp units each time.
        for seq in 50..400u16 {
            let wobble = if seq % 2 == 0 { 5 } else { 0 };
            push(&mut jb, seq, ms(20 * u64::from(seq) + wobble));
            drain(&mut jb, ms(100_000));
        }
        let j = jb.stats().interarrival_jitter;
        assert!((38..=40).contains(&j), "{j}");
    }

    /// xorshift64*, enough to shake the buffer.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut jb = JitterBuffer::new(8000, ms(rng.next() % 200));
            let mut now = ms(0);
            let mut base_seq = rng.next() as u16;
            for _ in 0..5000 {
                let r = rng.next();
                // Mostly near-sequential with jumps, some pure noise, a few SSRCs.
                let seq = match r % 10 {
                    0 => rng.next() as u16,
                    1..=3 => base_seq.wrapping_add((rng.next() % 200) as u16),
                    _ => {
                        base_seq = base_seq.wrapping_add(1);
                        base_seq
                    }
                };
                let ssrc = (rng.next() % 3) as u32;
                let len = (rng.next() % 2000) as usize;
                let ts = if r % 7 == 0 {
                    rng.next() as u32
                } else {
                    u32::from(seq).wrapping_mul(160)
                };
                now += Duration::from_micros(rng.next() % 3_000_000 / 100);
                if r % 97 == 0 {
                    now = now.saturating_sub(ms(500)); // clock going backwards
                }
                jb.push(
                    seq,
                    ts,
                    ssrc,
                    (r >> 8) as u8,
                    Bytes::from(vec![0; len]),
                    now,
                );
                assert!(jb.len() <= MAX_PACKETS);
                assert!(jb.held_bytes <= MAX_BYTES);
                if r % 3 == 0 {
                    while let Some(p) = jb.pop(now) {
                        if let Playout::Lost { samples_hint, .. } = p {
                            assert!(samples_hint <= 8000);
                        }
                    }
                }
            }
            let s = jb.stats();
            let in_probation = u64::from(jb.probation.is_some());
            assert_eq!(
                s.accepted
                    + s.duplicates
                    + s.late
                    + s.wrong_ssrc
                    + s.overflow
                    + s.probation_dropped
                    + in_probation,
                s.received,
                "{s:?}"
            );
            assert_eq!(s.played + jb.len() as u64 + s.flushed, s.accepted, "{s:?}");
        }
    }
}
