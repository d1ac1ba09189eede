//! The receive path of one backchannel stream, sans-IO: RTP packets in (with their arrival
//! time), output PCM out (when polled with the current time).
//!
//! ```text
//!  push_rtp(bytes, arrival)                         poll(now) -> PCM (mono, output rate)
//!     |                                                  ^
//!     v                                                  |
//!  RTP header (RFC 3550 §5.1) -> JitterBuffer -> Decoder -> Resampler
//!   version 2, CSRCs,            reorder, loss,  (conceal / FEC   (downmix, rate)
//!   extension, padding;          SSRC lock-in     on Lost)
//!   payload type check
//! ```
//!
//! # What it implements
//!
//! - RFC 3550 §5.1 fixed header, §5.3.1 header extension and padding, parsed by hand with
//!   every length checked (the packet comes from the network; a bad one is counted and
//!   dropped). Hand-written: 30 lines, and `ipcamd-proto` (which has RTP types) is not a
//!   dependency of this crate.
//! - The payload type must be the one negotiated for the backchannel (ONVIF Streaming
//!   spec §5.3: the client sends one of the offered `a=rtpmap` payload types). Packets
//!   of another type (comfort noise, DTMF events, RTCP on the RTP port) are counted and
//!   not decoded; from the locked SSRC they still hold their place in the sequence, so
//!   they are not mistaken for losses.
//!
//! # Left out
//!
//! Pacing (the output is produced as packets are released, see [`crate::jitter`]), RTCP
//! (the jitter buffer's stats hold what a receiver report needs), the "no audio before the
//! PLAY response" rule and the talker policy (the server's business: it decides which
//! packets to push and where the output goes), SRTP.

use std::time::Duration;

use bytes::Bytes;

use crate::decoder::{decoder_for_output, BackchannelCodec, DecodeError, Decoder};
use crate::jitter::{JitterBuffer, JitterStats, Playout, PushOutcome, DEFAULT_DEPTH};
use crate::resample::Resampler;

/// The RFC 3550 fixed header fields and the payload of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Why a packet is not RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than the 12-byte RTP header")]
    TooShort,
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("CSRC list past the end")]
    Csrc,
    #[error("header extension past the end")]
    Extension,
    #[error("bad padding length")]
    Padding,
}

/// Parses an RTP packet (RFC 3550 §5.1, §5.3.1), checking every length.
pub fn parse_rtp(packet: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let header: &[u8; 12] = packet
        .get(..12)
        .and_then(|h| h.try_into().ok())
        .ok_or(RtpError::TooShort)?;
    let version = header[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = header[0] & 0x20 != 0;
    let extension = header[0] & 0x10 != 0;
    let csrc_count = usize::from(header[0] & 0x0f);
    let mut offset = 12 + 4 * csrc_count;
    if offset > packet.len() {
        return Err(RtpError::Csrc);
    }
    if extension {
        let ext = packet.get(offset..offset + 4).ok_or(RtpError::Extension)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        offset += 4 + 4 * words;
        if offset > packet.len() {
            return Err(RtpError::Extension);
        }
    }
    let mut end = packet.len();
    if padding {
        let pad = usize::from(packet.last().copied().unwrap_or(0));
        if pad == 0 || offset + pad > end {
            return Err(RtpError::Padding);
        }
        end -= pad;
    }
    Ok(RtpPacket {
        marker: header[1] & 0x80 != 0,
        payload_type: header[1] & 0x7f,
        sequence: u16::from_be_bytes([header[2], header[3]]),
        timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ssrc: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
        payload: packet.get(offset..end).unwrap_or_default(),
    })
}

/// Counters of one backchannel stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Sequence-level counters (also counting the wrong-payload-type placeholders).
    pub jitter: JitterStats,
    /// Not parseable as RTP.
    pub malformed: u64,
    /// RTP with another payload type than the negotiated one.
    pub wrong_payload_type: u64,
    /// Payloads the decoder refused (concealed instead).
    pub decode_errors: u64,
    /// Samples per channel decoded, at the decoder's rate.
    pub decoded_samples: u64,
    /// Samples per channel made up for lost or undecodable packets, at the decoder's rate.
    pub concealed_samples: u64,
    /// Samples produced at the output rate.
    pub output_samples: u64,
}

/// One backchannel stream's receive path; see the module documentation.
pub struct BackchannelReceiver {
    codec: BackchannelCodec,
    payload_type: u8,
    output_rate: u32,
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    resampler: Resampler,
    scratch: Vec<i16>,
    /// Frames of the last decoded packet: the size of a stand-in for a bad one.
    last_frames: usize,
    stats: ReceiverStats,
}

/// Most audio made up for one gap: 1 s.
const MAX_CONCEAL_SECONDS: u64 = 1;

impl BackchannelReceiver {
    /// A receiver for `codec` sent with RTP payload type `payload_type`, producing mono
    /// PCM at `output_rate` Hz, with the default jitter depth (60 ms).
    pub fn new(
        codec: BackchannelCodec,
        payload_type: u8,
        output_rate: u32,
    ) -> Result<Self, DecodeError> {
        let decoder = decoder_for_output(&codec, 1)?;
        let resampler = Resampler::new(decoder.sample_rate(), decoder.channels(), output_rate);
        Ok(BackchannelReceiver {
            jitter: JitterBuffer::new(codec.clock_rate(), DEFAULT_DEPTH),
            codec,
            payload_type: payload_type & 0x7f,
            output_rate,
            decoder,
            resampler,
            scratch: Vec::new(),
            last_frames: 0,
            stats: ReceiverStats::default(),
        })
    }

    /// The same with another jitter depth (before any packet was pushed).
    pub fn with_depth(mut self, depth: Duration) -> Self {
        self.jitter = JitterBuffer::new(self.codec.clock_rate(), depth);
        self
    }

    pub fn codec(&self) -> &BackchannelCodec {
        &self.codec
    }

    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// The SSRC the stream locked on.
    pub fn ssrc(&self) -> Option<u32> {
        self.jitter.ssrc()
    }

    pub fn stats(&self) -> ReceiverStats {
        ReceiverStats {
            jitter: self.jitter.stats(),
            ..self.stats
        }
    }

    /// When [`poll`](Self::poll) may have output next (`None`: only after more packets).
    pub fn next_deadline(&self) -> Option<Duration> {
        self.jitter.next_deadline()
    }

    /// Offers one received datagram (or interleaved-TCP frame body).
    pub fn push_rtp(&mut self, packet: &[u8], arrival: Duration) -> PushOutcome {
        let rtp = match parse_rtp(packet) {
            Ok(rtp) => rtp,
            Err(_) => {
                self.stats.malformed += 1;
                return PushOutcome::Malformed;
            }
        };
        if rtp.payload_type != self.payload_type {
            self.stats.wrong_payload_type += 1;
            if self.jitter.ssrc() == Some(rtp.ssrc) {
                // Keep its place in the sequence (see the module documentation).
                let outcome = self.jitter.push(
                    rtp.sequence,
                    rtp.timestamp,
                    rtp.ssrc,
                    rtp.payload_type,
                    Bytes::new(),
                    arrival,
                );
                if outcome == PushOutcome::Resync {
                    self.reset_decoder();
                }
            }
            return PushOutcome::WrongPayloadType;
        }
        let outcome = self.jitter.push(
            rtp.sequence,
            rtp.timestamp,
            rtp.ssrc,
            rtp.payload_type,
            Bytes::copy_from_slice(rtp.payload),
            arrival,
        );
        if outcome == PushOutcome::Resync {
            self.reset_decoder();
        }
        outcome
    }

    /// A new stream: the decoder's state belongs to the old one.
    fn reset_decoder(&mut self) {
        self.decoder.reset();
        self.last_frames = 0;
    }

    /// Appends the output PCM due at `now` to `out`.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<i16>) {
        while let Some(playout) = self.jitter.pop(now) {
            self.scratch.clear();
            let channels = usize::from(self.decoder.channels().max(1));
            match playout {
                Playout::Packet {
                    payload_type,
                    payload,
                    ..
                } => {
                    if payload_type != self.payload_type {
                        continue; // placeholder
                    }
                    match self.decoder.decode(&payload, &mut self.scratch) {
                        Ok(()) => {
                            self.last_frames = self.scratch.len() / channels;
                            self.stats.decoded_samples += self.last_frames as u64;
                        }
                        Err(_) => {
                            self.stats.decode_errors += 1;
                            self.scratch.clear();
                            self.decoder.conceal(self.last_frames, &mut self.scratch);
                            self.stats.concealed_samples += self.last_frames as u64;
                        }
                    }
                }
                Playout::Lost {
                    packets,
                    samples_hint,
                    ..
                } => {
                    let frames = self.lost_frames(packets, samples_hint);
                    match self.jitter.peek() {
                        Some((pt, next)) if pt == self.payload_type && !next.is_empty() => {
                            self.decoder.recover(frames, next, &mut self.scratch);
                        }
                        _ => self.decoder.conceal(frames, &mut self.scratch),
                    }
                    self.stats.concealed_samples += frames as u64;
                }
            }
            let before = out.len();
            self.resampler.process(&self.scratch, out);
            self.stats.output_samples += (out.len() - before) as u64;
        }
    }

    /// Plays out everything still held (the stream has ended) and the resampler's tail.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        self.poll(Duration::MAX, out);
        let before = out.len();
        self.resampler.flush(out);
        self.stats.output_samples += (out.len() - before) as u64;
    }

    /// Frames (at the decoder's rate) standing in for a gap.
    fn lost_frames(&self, packets: u16, samples_hint: u32) -> usize {
        let rate = u64::from(self.decoder.sample_rate());
        let clock = u64::from(self.codec.clock_rate().max(1));
        let frames = if samples_hint > 0 {
            u64::from(samples_hint) * rate / clock
        } else {
            self.last_frames as u64 * u64::from(packets)
        };
        frames.min(rate * MAX_CONCEAL_SECONDS) as usize
    }
}

#[cfg(test)]
// `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
mod tests;
