//! G.711 µ-law (PCMU) and A-law (PCMA) over RTP (RFC 3551 §4.5.14, sample-based audio
//! §4.2 and §4.3).
//!
//! Packetizer: the samples of an access unit are sent in packets of at most `max_payload`
//! bytes (a multiple of the channel count, so that a packet never splits a sample frame);
//! each packet's timestamp advances by the number of sample frames before it
//! ([`RtpPayload::ts_offset`]). The marker bit is never set: RFC 3551 §4.1 reserves it for
//! the first packet after a silence period, and a camera sends continuously.
//!
//! Depacketizer: every packet's payload is one unit. Left out: silence suppression and
//! comfort noise (RFC 3389).
//!
//! Hand-written: a few lines of slicing.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{
    DepacketizeError, DepacketizedUnit, Depacketizer, PacketizeError, Packetizer, PayloadHead,
    RtpPayload, SeqStep, SeqTracker,
};
use crate::rtp::RtpPacket;

const CODEC: &str = "G711";

/// Cuts G.711 sample runs into payloads.
#[derive(Debug)]
pub struct G711Packetizer {
    max_payload: usize,
    channels: usize,
}

impl G711Packetizer {
    pub fn new(max_payload: usize, channels: u8) -> Self {
        G711Packetizer {
            max_payload,
            channels: usize::from(channels.max(1)),
        }
    }
}

impl Packetizer for G711Packetizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        let chunk = self.max_payload - self.max_payload % self.channels;
        if chunk == 0 {
            return Err(PacketizeError::MaxPayloadTooSmall {
                codec: CODEC,
                max_payload: self.max_payload,
                needed: self.channels,
            });
        }
        if au.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        let mut offset = 0;
        while offset < au.len() {
            let end = (offset + chunk).min(au.len());
            out.push(RtpPayload {
                head: PayloadHead::NONE,
                body: au.slice(offset..end),
                marker: false,
                ts_offset: (offset / self.channels) as u32,
                header_ext: None,
            });
            offset = end;
        }
        Ok(())
    }
}

/// Returns every packet's payload as a unit.
#[derive(Debug, Default)]
pub struct G711Depacketizer {
    seq: SeqTracker,
    ready: VecDeque<DepacketizedUnit>,
    carry_loss: bool,
}

impl G711Depacketizer {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Depacketizer for G711Depacketizer {
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        let step = self.seq.step(pkt.sequence());
        if step == SeqStep::Old {
            return Ok(());
        }
        let loss = step == SeqStep::Gap || std::mem::take(&mut self.carry_loss);
        if pkt.payload().is_empty() {
            self.carry_loss = loss;
            return Err(DepacketizeError::EmptyPayload {
                codec: CODEC,
                seq: pkt.sequence(),
            });
        }
        self.ready.push_back(DepacketizedUnit {
            timestamp: pkt.timestamp(),
            data: Bytes::copy_from_slice(pkt.payload()),
            keyframe: true,
            loss,
        });
        Ok(())
    }

    fn pull(&mut self) -> Option<DepacketizedUnit> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testutil::{feed, to_packets};

    #[test]
    fn splits_at_max_payload_with_timestamp_offsets() {
        let au = Bytes::from((0..1000u32).map(|i| i as u8).collect::<Vec<_>>());
        let mut p = G711Packetizer::new(400, 1);
        let mut out = Vec::new();
        p.packetize(&au, &mut out).unwrap();
        assert_eq!(
            out.iter()
                .map(|p| (p.to_bytes().len(), p.ts_offset, p.marker))
                .collect::<Vec<_>>(),
            vec![(400, 0, false), (400, 400, false), (200, 800, false)]
        );
        // Stereo: whole sample frames per packet, offsets in frames.
        let mut p = G711Packetizer::new(401, 2);
        out.clear();
        p.packetize(&au, &mut out).unwrap();
        assert_eq!(out[0].to_bytes().len(), 400);
        assert_eq!(out[1].ts_offset, 200);
        assert!(G711Packetizer::new(1, 2).packetize(&au, &mut out).is_err());
    }

    #[test]
    fn round_trip_and_loss() {
        let au = Bytes::from(vec![0xd5u8; 480]);
        let mut out = Vec::new();
        G711Packetizer::new(160, 1)
            .packetize(&au, &mut out)
            .unwrap();
        let mut packets = to_packets(&out, 10, 8000);
        let (units, errors) = feed(&mut G711Depacketizer::new(), &packets);
        assert!(errors.is_empty());
        assert_eq!(
            units.iter().map(|u| u.timestamp).collect::<Vec<_>>(),
            vec![8000, 8160, 8320]
        );
        assert!(units.iter().all(|u| u.data.len() == 160 && !u.loss));
        packets.remove(1);
        let (units, _) = feed(&mut G711Depacketizer::new(), &packets);
        assert_eq!(
            units.iter().map(|u| u.loss).collect::<Vec<_>>(),
            vec![false, true]
        );
    }
}
