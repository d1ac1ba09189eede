//! Opaque RTP pass-through, hand-written: the payload format of a codec ipcamd does not
//! depacketize (G.726, Opus, L16, VP8, MP4V-ES, ... from a proxied camera) is carried as
//! the camera sent it, without looking inside.
//!
//! Access unit: the RTP payloads of one RTP timestamp, each as a record
//! `[flags: u8][length: u16 BE][payload]` (flags bit 0: the RTP marker). The depacketizer
//! makes one unit per packet for audio (every audio packet has its own timestamp, and
//! waiting for the next one would add a packet of latency) and, for video, one unit per
//! frame: the packets up to the marker bit or to a change of timestamp. The packetizer
//! sends every record as one packet with its marker, whatever `max_payload` says (the
//! payload cannot be split without knowing its format; the camera chose its size).
//!
//! What is lost: every unit counts as a keyframe (nothing tells where a picture can be
//! decoded from), so a reader of an opaque video track may start mid-GOP.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    DepacketizeError, DepacketizedUnit, Depacketizer, PacketizeError, Packetizer, RtpPayload,
    SeqStep, SeqTracker, MAX_ACCESS_UNIT,
};
use crate::rtp::RtpPacket;

const CODEC: &str = "opaque";
const MARKER: u8 = 1;
/// A record's header: flags and length.
const HEADER: usize = 3;

/// Appends one record (a packet's payload and marker) to an access unit.
pub fn push_record(au: &mut BytesMut, payload: &[u8], marker: bool) {
    let len = payload.len().min(usize::from(u16::MAX));
    au.put_u8(if marker { MARKER } else { 0 });
    au.put_u16(len as u16);
    au.put_slice(&payload[..len]);
}

/// The records of an access unit: (payload, marker). `None` if the unit is not a sequence
/// of whole records.
pub fn records(au: &Bytes) -> Option<Vec<(Bytes, bool)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < au.len() {
        let head = au.get(at..at + HEADER)?;
        let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
        let start = at + HEADER;
        let end = start.checked_add(len).filter(|&e| e <= au.len())?;
        out.push((au.slice(start..end), head[0] & MARKER != 0));
        at = end;
    }
    Some(out)
}

/// Sends the records of a unit as they came.
#[derive(Debug, Default)]
pub struct OpaquePacketizer;

impl Packetizer for OpaquePacketizer {
    fn packetize(&mut self, au: &Bytes, out: &mut Vec<RtpPayload>) -> Result<(), PacketizeError> {
        let recs = records(au).ok_or(PacketizeError::Empty { codec: CODEC })?;
        if recs.is_empty() {
            return Err(PacketizeError::Empty { codec: CODEC });
        }
        out.extend(recs.into_iter().map(|(body, marker)| RtpPayload {
            marker,
            ..RtpPayload::new(body)
        }));
        Ok(())
    }
}

/// Groups packets into units (see the module documentation).
#[derive(Debug)]
pub struct OpaqueDepacketizer {
    video: bool,
    seq: SeqTracker,
    pending: Option<(u32, BytesMut, bool)>,
    carry_loss: bool,
    ready: VecDeque<DepacketizedUnit>,
}

impl OpaqueDepacketizer {
    /// `video`: group a frame's packets (else one unit per packet).
    pub fn new(video: bool) -> Self {
        OpaqueDepacketizer {
            video,
            seq: SeqTracker::default(),
            pending: None,
            carry_loss: false,
            ready: VecDeque::new(),
        }
    }

    fn flush(&mut self) {
        if let Some((timestamp, data, loss)) = self.pending.take() {
            self.ready.push_back(DepacketizedUnit {
                timestamp,
                data: data.freeze(),
                keyframe: true,
                loss,
            });
        }
    }
}

impl Depacketizer for OpaqueDepacketizer {
    fn push(&mut self, pkt: &RtpPacket<'_>) -> Result<(), DepacketizeError> {
        let step = self.seq.step(pkt.sequence());
        if step == SeqStep::Old {
            return Ok(());
        }
        let gap = step == SeqStep::Gap;
        if self
            .pending
            .as_ref()
            .is_some_and(|(ts, _, _)| *ts != pkt.timestamp())
        {
            self.flush();
        }
        let loss = gap || std::mem::take(&mut self.carry_loss);
        let (_, data, unit_loss) = self
            .pending
            .get_or_insert_with(|| (pkt.timestamp(), BytesMut::new(), false));
        *unit_loss |= loss;
        if data.len() + HEADER + pkt.payload().len() > MAX_ACCESS_UNIT {
            self.pending = None;
            self.carry_loss = true;
            return Err(DepacketizeError::TooLarge {
                codec: CODEC,
                seq: pkt.sequence(),
                limit: MAX_ACCESS_UNIT,
            });
        }
        push_record(data, pkt.payload(), pkt.marker());
        if !self.video || pkt.marker() {
            self.flush();
        }
        Ok(())
    }

    fn pull(&mut self) -> Option<DepacketizedUnit> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::parse_rtp;

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0x80, if marker { 0x80 | 97 } else { 97 }];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 7]);
        b.extend_from_slice(payload);
        b
    }

    fn feed(d: &mut OpaqueDepacketizer, pkts: &[(u16, u32, bool, &[u8])]) -> Vec<DepacketizedUnit> {
        let mut out = Vec::new();
        for &(seq, ts, m, p) in pkts {
            let raw = packet(seq, ts, m, p);
            let pkt = parse_rtp(&raw).expect("valid RTP");
            d.push(&pkt).expect("push");
            while let Some(u) = d.pull() {
                out.push(u);
            }
        }
        out
    }

    #[test]
    fn audio_packets_pass_through_one_unit_each() {
        let mut d = OpaqueDepacketizer::new(false);
        let units = feed(
            &mut d,
            &[
                (1, 160, true, b"abc"),
                (2, 320, false, b"defg"),
                (4, 640, false, b"h"),
            ],
        );
        assert_eq!(units.len(), 3);
        assert!(units[2].loss, "seq 3 is missing");
        let mut p = OpaquePacketizer;
        let mut out = Vec::new();
        for u in &units {
            p.packetize(&u.data, &mut out).expect("packetize");
        }
        let got: Vec<(&[u8], bool)> = out.iter().map(|o| (&o.body[..], o.marker)).collect();
        assert_eq!(
            got,
            [
                (&b"abc"[..], true),
                (&b"defg"[..], false),
                (&b"h"[..], false)
            ]
        );
    }

    #[test]
    fn video_packets_are_grouped_by_frame() {
        let mut d = OpaqueDepacketizer::new(true);
        // Frame 1 ends with the marker; frame 2 has none, and ends at the next timestamp.
        let units = feed(
            &mut d,
            &[
                (10, 3000, false, b"a1"),
                (11, 3000, true, b"a2"),
                (12, 6000, false, b"b1"),
                (13, 6000, false, b"b2"),
                (14, 9000, true, b"c1"),
            ],
        );
        let ts: Vec<u32> = units.iter().map(|u| u.timestamp).collect();
        assert_eq!(ts, [3000, 6000, 9000]);
        let recs = records(&units[1].data).expect("records");
        assert_eq!(
            recs,
            [
                (Bytes::from_static(b"b1"), false),
                (Bytes::from_static(b"b2"), false)
            ]
        );
        assert!(units.iter().all(|u| u.keyframe && !u.loss));
    }

    #[test]
    fn malformed_units_are_refused_not_sent() {
        let mut p = OpaquePacketizer;
        let mut out = Vec::new();
        for bad in [&b""[..], &[0, 0, 5, 1][..], &[1][..]] {
            assert!(p.packetize(&Bytes::copy_from_slice(bad), &mut out).is_err());
        }
        assert!(out.is_empty());
        // An empty payload is a record of its own.
        let mut au = BytesMut::new();
        push_record(&mut au, b"", true);
        p.packetize(&au.freeze(), &mut out)
            .expect("empty payload record");
        assert_eq!(out.len(), 1);
    }
}
