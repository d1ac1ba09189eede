//! Counting media: RTP sequence gaps, video frames (marker bit on the first track), time
//! gaps between frames, and the ONVIF replay extension's T (terminal) flag. Reads only the
//! 12-byte RTP header and, when the X bit is set, the extension's first words.

use std::time::{Duration, Instant};

/// Per-stream counters, fed with whole RTP packets.
#[derive(Default, Clone)]
pub struct Counter {
    pub bytes: u64,
    pub packets: u64,
    /// Missing packets by RTP sequence number (sum of the jumps over all tracks).
    pub seq_gaps: u64,
    pub video_frames: u64,
    /// Inter-frame intervals longer than the threshold (after `steady_after`).
    pub time_gaps: u64,
    pub max_frame_gap: Duration,
    pub first_byte: Option<Instant>,
    pub last_byte: Option<Instant>,
    /// Tracks that sent a packet with the replay extension's T flag.
    pub terminal: u32,
    last_seq: [Option<u16>; 8],
    last_frame: Option<Instant>,
}

impl Counter {
    /// Accounts `n` bytes read from the network (framing included) at `now`.
    pub fn bytes_read(&mut self, n: usize, now: Instant) {
        self.bytes += n as u64;
        self.first_byte.get_or_insert(now);
        self.last_byte = Some(now);
    }

    /// One RTP packet of `track` (0 = the first SDP section, taken as video).
    pub fn packet(
        &mut self,
        track: usize,
        p: &[u8],
        now: Instant,
        gap_threshold: Duration,
        steady_after: Instant,
    ) {
        if p.len() < 12 || p[0] >> 6 != 2 {
            return;
        }
        self.packets += 1;
        let seq = u16::from_be_bytes([p[2], p[3]]);
        if let Some(slot) = self.last_seq.get_mut(track) {
            if let Some(prev) = *slot {
                let jump = seq.wrapping_sub(prev);
                if jump != 1 && jump < 0x8000 {
                    self.seq_gaps += u64::from(jump - 1);
                }
            }
            *slot = Some(seq);
        }
        if p[0] & 0x10 != 0 {
            let cc = usize::from(p[0] & 0x0f);
            let at = 12 + 4 * cc;
            if p.len() >= at + 16 && p[at] == 0xab && p[at + 1] == 0xac && p[at + 12] & 0x10 != 0 {
                self.terminal += 1;
            }
        }
        if track == 0 && p[1] & 0x80 != 0 {
            self.video_frames += 1;
            if let (Some(l), true) = (self.last_frame, now > steady_after) {
                let d = now - l;
                self.max_frame_gap = self.max_frame_gap.max(d);
                if d > gap_threshold {
                    self.time_gaps += 1;
                }
            }
            self.last_frame = Some(now);
        }
    }

    /// Parses `$`-framed packets from the front of `buf` (RTSP messages in between are
    /// skipped); returns how many bytes were consumed.
    pub fn interleaved(
        &mut self,
        buf: &[u8],
        now: Instant,
        gap_threshold: Duration,
        steady_after: Instant,
    ) -> usize {
        let mut pos = 0;
        while pos + 4 <= buf.len() {
            if buf[pos] != b'$' {
                match buf[pos..].windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(e) => {
                        pos += e + 4;
                        continue;
                    }
                    None => break,
                }
            }
            let ch = usize::from(buf[pos + 1]);
            let len = usize::from(u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]));
            if pos + 4 + len > buf.len() {
                break;
            }
            if ch.is_multiple_of(2) {
                self.packet(
                    ch / 2,
                    &buf[pos + 4..pos + 4 + len],
                    now,
                    gap_threshold,
                    steady_after,
                );
            }
            pos += 4 + len;
        }
        pos
    }

    pub fn merge(&mut self, o: &Counter) {
        self.bytes += o.bytes;
        self.packets += o.packets;
        self.seq_gaps += o.seq_gaps;
        self.video_frames += o.video_frames;
        self.time_gaps += o.time_gaps;
        self.max_frame_gap = self.max_frame_gap.max(o.max_frame_gap);
        self.terminal += o.terminal;
        self.first_byte = match (self.first_byte, o.first_byte) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_byte = self.last_byte.max(o.last_byte);
    }
}

/// CPU seconds (user + system) of this process, from getrusage.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Another process's CPU seconds (utime + stime) and resident set size in KiB, from
/// /proc/PID/stat and /proc/PID/status.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let cpu = (ticks(11)? + ticks(12)?) / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some((cpu, rss))
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, marker: bool, ext_flags: Option<u8>) -> Vec<u8> {
        let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        if let Some(f) = ext_flags {
            p[0] |= 0x10;
            p.extend_from_slice(&[0xab, 0xac, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, f, 0, 0, 0]);
        }
        p.extend_from_slice(&[1, 2, 3]);
        p
    }

    fn framed(ch: u8, p: &[u8]) -> Vec<u8> {
        let mut v = vec![b'$', ch];
        v.extend_from_slice(&(p.len() as u16).to_be_bytes());
        v.extend_from_slice(p);
        v
    }

    #[test]
    fn counts_gaps_frames_and_terminal_across_split_reads() {
        let now = Instant::now();
        let mut buf = Vec::new();
        buf.extend(framed(0, &rtp(65534, false, None)));
        buf.extend(framed(0, &rtp(65535, true, None)));
        buf.extend(framed(1, &[0x80, 200, 0, 1])); // RTCP: ignored
        buf.extend(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\n\r\n");
        buf.extend(framed(0, &rtp(2, true, Some(0x80 | 0x10)))); // 0, 1 lost; T set
        let mut c = Counter::default();
        // Feed in two pieces, cutting a packet in half.
        let cut = 10;
        let used = c.interleaved(&buf[..cut], now, Duration::from_secs(1), now);
        assert_eq!(used, 0);
        let used = c.interleaved(&buf, now, Duration::from_secs(1), now);
        assert_eq!(used, buf.len());
        assert_eq!(c.packets, 3);
        assert_eq!(c.seq_gaps, 2);
        assert_eq!(c.video_frames, 2);
        assert_eq!(c.terminal, 1);
    }

    #[test]
    fn time_gaps_over_the_threshold_after_the_steady_point() {
        let t0 = Instant::now();
        let mut c = Counter::default();
        let gap = Duration::from_millis(100);
        c.packet(0, &rtp(1, true, None), t0, gap, t0);
        c.packet(
            0,
            &rtp(2, true, None),
            t0 + Duration::from_millis(40),
            gap,
            t0,
        );
        c.packet(
            0,
            &rtp(3, true, None),
            t0 + Duration::from_millis(300),
            gap,
            t0,
        );
        assert_eq!(c.time_gaps, 1);
        assert_eq!(c.max_frame_gap, Duration::from_millis(260));
        assert_eq!(c.seq_gaps, 0);
    }

    #[test]
    fn own_cpu_is_a_number() {
        assert!(own_cpu_seconds() >= 0.0);
        let me = std::process::id();
        assert!(proc_usage(me).is_some_and(|(_, rss)| rss > 0));
    }
}
