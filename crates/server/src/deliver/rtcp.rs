//! RTCP sender reports of a delivery (RFC 3550 §6.4.1): the NTP time of "now" and the RTP
//! timestamp a packet sent now would carry, extrapolated from the last packet sent (its
//! RTP timestamp and when it was sent or captured) at the track's clock rate.

use bytes::{Bytes, BytesMut};
use ipcamd_proto::rtcp::{write_sender_report, SenderReport};
use ipcamd_proto::time::{unix_micros_to_ntp, UnixMicros};

/// Per-track counts and the last packet's time, as sender reports need them.
#[derive(Debug, Clone, Default)]
pub struct SrState {
    pub ssrc: u32,
    pub clock_rate: u32,
    pub packets: u32,
    pub octets: u32,
    /// (RTP timestamp, wallclock µs) of the last packet sent.
    pub last: Option<(u32, UnixMicros)>,
}

impl SrState {
    pub fn new(ssrc: u32, clock_rate: u32) -> SrState {
        SrState {
            ssrc,
            clock_rate,
            ..SrState::default()
        }
    }

    /// Counts one packet of `payload` bytes.
    pub fn count(&mut self, payload: usize) {
        self.count_many(1, payload);
    }

    /// Counts `packets` packets of `octets` payload bytes in all.
    pub fn count_many(&mut self, packets: u32, octets: usize) {
        self.packets = self.packets.wrapping_add(packets);
        self.octets = self.octets.wrapping_add(octets as u32);
    }

    /// The report at `now`; `zero` sends NTP and RTP timestamps 0 (ONVIF replay with
    /// `Rate-Control: no` and in reverse, where no mapping holds). `None` before the first
    /// packet.
    pub fn report(&self, now: UnixMicros, zero: bool, cname: &str) -> Option<Bytes> {
        let (rtp, at) = self.last?;
        let (ntp, rtp_timestamp) = if zero {
            (0, 0)
        } else {
            let elapsed = i128::from(now - at);
            let ticks = elapsed * i128::from(self.clock_rate) / 1_000_000;
            (unix_micros_to_ntp(now), (i128::from(rtp) + ticks) as u32)
        };
        let mut buf = BytesMut::with_capacity(64);
        write_sender_report(
            &mut buf,
            &SenderReport {
                ssrc: self.ssrc,
                ntp,
                rtp_timestamp,
                packet_count: self.packets,
                octet_count: self.octets,
            },
            cname,
        );
        Some(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_proto::rtcp::{parse_compound, RtcpPacket};

    fn parsed(b: &Bytes) -> (u64, u32, u32) {
        match parse_compound(b).unwrap().into_iter().next() {
            Some(RtcpPacket::SenderReport(sr)) => (sr.ntp, sr.rtp_timestamp, sr.packet_count),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extrapolates_from_the_last_packet() {
        let mut s = SrState::new(7, 90_000);
        assert!(s.report(0, false, "c").is_none());
        s.count(100);
        s.last = Some((1000, 1_000_000));
        // 0.5 s later: 45000 ticks on.
        let (ntp, rtp, n) = parsed(&s.report(1_500_000, false, "c").unwrap());
        assert_eq!(rtp, 46_000);
        assert_eq!(ntp, unix_micros_to_ntp(1_500_000));
        assert_eq!(n, 1);
        let (ntp, rtp, _) = parsed(&s.report(1_500_000, true, "c").unwrap());
        assert_eq!((ntp, rtp), (0, 0));
    }
}
