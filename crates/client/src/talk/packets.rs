//! From input to RTP payloads: one [`PacketSource`] per kind of input, each yielding
//! [`MediaPacket`]s with their media time, ready for the RTP header.
//!
//! - [`PcmPackets`]: linear PCM (tone, WAV, stdin) encoded as G.711 µ-law/A-law (RFC 3551
//!   §4.5.14, `ipcamd_audio::g711`), G.726 (§4.5.4, `ipcamd_audio::g726`, RFC 3551 or AAL2
//!   packing) or L16 (§4.5.11, big-endian, the mono input copied to every channel). Packets
//!   of 20 ms (10 or 5 ms when 20 ms of L16 would exceed 1400 bytes); the last one is padded
//!   with silence.
//! - [`AacPackets`]: raw AAC frames of an ADTS file, RFC 3640 AAC-hbr through ipcamd-proto's
//!   packetizer (AU-headers-length 16, 13-bit size, 3-bit index 0; the marker set on every
//!   packet that ends an access unit, RFC 3640 §3.2.1); 1024 samples per frame.
//! - [`OpusPackets`]: one Ogg Opus packet per RTP packet (RFC 7587 §4.2), durations from
//!   the TOC byte at 48 kHz.
//!
//! G.711, G.726, L16 and Opus set the marker on the first packet only (RFC 3551 §4.1: the
//! first packet of a talkspurt).

use bytes::{Bytes, BytesMut};
use ipcamd_audio::decoder::BackchannelCodec;
use ipcamd_audio::g711::{linear_to_alaw, linear_to_ulaw};
use ipcamd_audio::g726::G726Encoder;
use ipcamd_proto::packet::aac::AacPacketizer;
use ipcamd_proto::packet::{Packetizer, RtpPayload};
use ipcamd_proto::rtp::{write_rtp, RtpHeader};

use super::adts::{AdtsHeader, AdtsReader};
use super::ogg::{packet_samples_48k, OggReader};
use super::pcm::Resampled;
use crate::error::ClientError;

/// Largest RTP payload sent (fits a 1500-byte MTU with IP, UDP and RTP headers).
pub const MAX_PAYLOAD: usize = 1400;

/// One RTP payload and where it sits in media time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    pub payload: Vec<u8>,
    pub marker: bool,
    /// RTP clock ticks since the first packet: the RTP timestamp is the initial random
    /// timestamp plus this (wrapping), and the packet is due this long after the start.
    pub offset: u64,
    /// RTP clock ticks of media in this packet (0 for all but the last fragment of an AAC
    /// access unit).
    pub duration: u32,
}

/// The RTP header fields of the stream sent: random SSRC, initial sequence number and
/// initial timestamp (RFC 3550 §5.1), chosen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpStream {
    pub payload_type: u8,
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub sequence: u16,
    /// RTP timestamp of media offset 0.
    pub initial_timestamp: u32,
}

impl RtpStream {
    /// A stream with random SSRC, sequence number and timestamp.
    pub fn random(payload_type: u8) -> RtpStream {
        RtpStream {
            payload_type,
            ssrc: rand::random(),
            sequence: rand::random(),
            initial_timestamp: rand::random(),
        }
    }

    /// The RTP timestamp of media offset `offset` (wrapping).
    pub fn timestamp(&self, offset: u64) -> u32 {
        self.initial_timestamp.wrapping_add(offset as u32)
    }

    /// Appends the RTP packet of `p` to `out` and advances the sequence number.
    pub fn write(&mut self, p: &MediaPacket, out: &mut BytesMut) {
        write_rtp(
            &RtpHeader {
                payload_type: self.payload_type,
                marker: p.marker,
                sequence: self.sequence,
                timestamp: self.timestamp(p.offset),
                ssrc: self.ssrc,
                extension: None,
            },
            &p.payload,
            out,
        );
        self.sequence = self.sequence.wrapping_add(1);
    }
}

/// Produces the packets of one input, in order.
pub trait PacketSource: Send {
    /// The next packet; `None` at the end of the input.
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, ClientError>;
}

/// Encodes linear PCM for one codec.
#[derive(Debug, Clone)]
pub enum PcmEncoder {
    Ulaw,
    Alaw,
    G726(G726Encoder),
    /// Big-endian 16-bit, the mono input written to `channels` channels.
    L16 {
        channels: u8,
    },
}

impl PcmEncoder {
    /// The encoder for `codec`, `None` for codecs that cannot be encoded here (AAC, Opus).
    pub fn for_codec(codec: &BackchannelCodec) -> Option<PcmEncoder> {
        Some(match codec {
            BackchannelCodec::Pcmu { .. } => PcmEncoder::Ulaw,
            BackchannelCodec::Pcma { .. } => PcmEncoder::Alaw,
            BackchannelCodec::G726 { rate, packing } => {
                PcmEncoder::G726(G726Encoder::new(*rate, *packing))
            }
            BackchannelCodec::L16 { channels, .. } => PcmEncoder::L16 {
                channels: *channels,
            },
            BackchannelCodec::Aac { .. } | BackchannelCodec::Opus => return None,
        })
    }

    /// Payload bytes of `samples` samples.
    pub fn payload_len(&self, samples: usize) -> usize {
        match self {
            PcmEncoder::Ulaw | PcmEncoder::Alaw => samples,
            PcmEncoder::G726(e) => e.rate().encoded_len(samples),
            PcmEncoder::L16 { channels } => samples * 2 * usize::from(*channels),
        }
    }

    /// Appends the payload of `pcm` to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            PcmEncoder::Ulaw => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            PcmEncoder::Alaw => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
            PcmEncoder::G726(e) => e.encode(pcm, out),
            PcmEncoder::L16 { channels } => {
                for &s in pcm {
                    for _ in 0..*channels {
                        out.extend_from_slice(&s.to_be_bytes());
                    }
                }
            }
        }
    }
}

/// Samples per packet for `encoder` at `clock_rate`: 20 ms, or 10/5 ms when 20 ms of L16
/// does not fit in [`MAX_PAYLOAD`].
pub fn samples_per_packet(encoder: &PcmEncoder, clock_rate: u32) -> usize {
    for ms in [20u32, 10, 5] {
        let n = (clock_rate * ms / 1000) as usize;
        if encoder.payload_len(n) <= MAX_PAYLOAD {
            return n.max(1);
        }
    }
    (clock_rate / 200).max(1) as usize
}

/// Linear PCM in, encoded packets out.
pub struct PcmPackets {
    src: Resampled,
    encoder: PcmEncoder,
    per_packet: usize,
    offset: u64,
    pcm: Vec<i16>,
}

impl PcmPackets {
    /// `src` must deliver samples at the codec's clock rate.
    pub fn new(src: Resampled, encoder: PcmEncoder, clock_rate: u32) -> PcmPackets {
        let per_packet = samples_per_packet(&encoder, clock_rate);
        PcmPackets {
            src,
            encoder,
            per_packet,
            offset: 0,
            pcm: Vec::with_capacity(per_packet),
        }
    }

    /// Samples (RTP clock ticks) per packet.
    pub fn per_packet(&self) -> usize {
        self.per_packet
    }
}

impl PacketSource for PcmPackets {
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, ClientError> {
        self.pcm.clear();
        self.src.read(&mut self.pcm, self.per_packet)?;
        if self.pcm.is_empty() {
            return Ok(None);
        }
        self.pcm.resize(self.per_packet, 0);
        let mut payload = Vec::with_capacity(self.encoder.payload_len(self.per_packet));
        self.encoder.encode(&self.pcm, &mut payload);
        let packet = MediaPacket {
            payload,
            marker: self.offset == 0,
            offset: self.offset,
            duration: self.per_packet as u32,
        };
        self.offset += self.per_packet as u64;
        Ok(Some(packet))
    }
}

/// ADTS frames in, RFC 3640 AAC-hbr packets out.
pub struct AacPackets<R> {
    name: String,
    reader: AdtsReader<R>,
    first: AdtsHeader,
    clock_rate: u32,
    packetizer: AacPacketizer,
    queue: std::collections::VecDeque<MediaPacket>,
    frames: u64,
    /// Stop after this many frames (the `--duration` limit).
    max_frames: Option<u64>,
}

impl<R: std::io::Read + Send> AacPackets<R> {
    /// `first` is the header of the file's first frame, already checked against the offer;
    /// every later frame must agree with it.
    pub fn new(
        name: &str,
        reader: AdtsReader<R>,
        first: AdtsHeader,
        clock_rate: u32,
        max_seconds: Option<f64>,
    ) -> Self {
        AacPackets {
            name: name.to_owned(),
            reader,
            first,
            clock_rate,
            packetizer: AacPacketizer::new(MAX_PAYLOAD),
            queue: Default::default(),
            frames: 0,
            max_frames: max_seconds
                .map(|s| (s * f64::from(first.sample_rate) / 1024.0).ceil() as u64),
        }
    }
}

impl<R: std::io::Read + Send> PacketSource for AacPackets<R> {
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, ClientError> {
        if let Some(p) = self.queue.pop_front() {
            return Ok(Some(p));
        }
        if self.max_frames.is_some_and(|m| self.frames >= m) {
            return Ok(None);
        }
        let Some((header, frame)) = self
            .reader
            .next_frame()
            .map_err(|e| ClientError::input(self.name.clone(), e))?
        else {
            return Ok(None);
        };
        if (header.object_type, header.sample_rate, header.channels)
            != (
                self.first.object_type,
                self.first.sample_rate,
                self.first.channels,
            )
        {
            return Err(ClientError::input(
                self.name.clone(),
                format!(
                    "ADTS frame {} changes the stream parameters (object type {}, {} Hz, {} \
                     channels; the first frame had {}, {} Hz, {} channels)",
                    self.frames + 1,
                    header.object_type,
                    header.sample_rate,
                    header.channels,
                    self.first.object_type,
                    self.first.sample_rate,
                    self.first.channels
                ),
            ));
        }
        // Media time of this frame in RTP clock ticks, computed from the frame index so
        // that a clock rate differing from the sampling rate does not accumulate rounding.
        let ticks = |frames: u64| {
            frames * 1024 * u64::from(self.clock_rate) / u64::from(self.first.sample_rate)
        };
        let offset = ticks(self.frames);
        let duration = (ticks(self.frames + 1) - offset) as u32;
        self.frames += 1;
        let mut payloads: Vec<RtpPayload> = Vec::new();
        self.packetizer
            .packetize(&Bytes::from(frame), &mut payloads)
            .map_err(|e| {
                ClientError::input(
                    self.name.clone(),
                    format!("ADTS frame {}: {e}", self.frames),
                )
            })?;
        let last = payloads.len().saturating_sub(1);
        self.queue
            .extend(payloads.into_iter().enumerate().map(|(i, p)| MediaPacket {
                payload: p.to_bytes().to_vec(),
                marker: p.marker,
                offset,
                duration: if i == last { duration } else { 0 },
            }));
        Ok(self.queue.pop_front())
    }
}

/// Ogg Opus packets in, one RTP payload each out (the header packets already read).
pub struct OpusPackets<R> {
    name: String,
    reader: OggReader<R>,
    offset: u64,
    first: bool,
    max_offset: Option<u64>,
}

impl<R: std::io::Read + Send> OpusPackets<R> {
    /// `reader` must be past the `OpusHead` and `OpusTags` packets.
    pub fn new(name: &str, reader: OggReader<R>, max_seconds: Option<f64>) -> Self {
        OpusPackets {
            name: name.to_owned(),
            reader,
            offset: 0,
            first: true,
            max_offset: max_seconds.map(|s| (s * 48000.0).ceil() as u64),
        }
    }
}

impl<R: std::io::Read + Send> PacketSource for OpusPackets<R> {
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, ClientError> {
        loop {
            if self.max_offset.is_some_and(|m| self.offset >= m) {
                return Ok(None);
            }
            let Some(packet) = self
                .reader
                .next_packet()
                .map_err(|e| ClientError::input(self.name.clone(), e))?
            else {
                return Ok(None);
            };
            let samples = packet_samples_48k(&packet).map_err(|e| {
                ClientError::input(
                    self.name.clone(),
                    format!("Opus packet at 48 kHz sample {}: {e}", self.offset),
                )
            })?;
            if packet.is_empty() {
                continue;
            }
            let p = MediaPacket {
                payload: packet,
                marker: self.first,
                offset: self.offset,
                duration: samples,
            };
            self.first = false;
            self.offset += u64::from(samples);
            return Ok(Some(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talk::pcm::Tone;
    use ipcamd_audio::g726::{G726Packing, G726Rate};

    #[test]
    fn packet_sizes() {
        let l16 = |channels| PcmEncoder::L16 { channels };
        assert_eq!(samples_per_packet(&PcmEncoder::Ulaw, 8000), 160);
        assert_eq!(samples_per_packet(&PcmEncoder::Alaw, 16000), 320);
        assert_eq!(samples_per_packet(&l16(1), 16000), 320);
        assert_eq!(
            samples_per_packet(&l16(2), 48000),
            240,
            "5 ms of 48 kHz stereo"
        );
        let g = PcmEncoder::G726(G726Encoder::new(
            G726Rate::R24,
            G726Packing::Rfc3551LittleEndian,
        ));
        assert_eq!(samples_per_packet(&g, 8000), 160);
        assert_eq!(g.payload_len(160), 60);
    }

    #[test]
    fn pcm_packets_are_paced_by_offset_and_padded() {
        let src = Resampled::new(Box::new(Tone::new(1000.0, 8000)), 8000, Some(400));
        let mut p = PcmPackets::new(src, PcmEncoder::L16 { channels: 2 }, 8000);
        let mut all = Vec::new();
        while let Some(pkt) = p.next_packet().unwrap() {
            all.push(pkt);
        }
        assert_eq!(all.len(), 3);
        assert_eq!(
            all.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [0, 160, 320]
        );
        assert_eq!(
            all.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert!(all.iter().all(|p| p.payload.len() == 640));
        // The last 80 samples of the last packet are silence.
        assert!(all[2].payload[320..].iter().all(|&b| b == 0));
        // Both channels carry the same sample.
        assert_eq!(all[0].payload[4..6], all[0].payload[6..8]);
    }
}
