//! # ipcamd-audio: the backchannel receive path
//!
//! An ONVIF client talks to the camera by sending RTP audio on the backchannel
//! (`www.onvif.org/ver20/backchannel`, a `sendonly` audio section in the SDP). This crate
//! turns those packets into 16-bit mono PCM and hands it to outputs. Everything up to the
//! outputs is sans-IO: no sockets, no clock reads; the caller passes each packet's arrival
//! time and the current time as a [`std::time::Duration`] since any origin it likes.
//!
//! ```text
//!  RTP bytes + arrival ──► pipeline::BackchannelReceiver::push_rtp
//!                              │ RTP header check, payload type check
//!                              ▼
//!                          jitter::JitterBuffer   reorder, duplicates, loss, SSRC lock-in
//!                              │ Playout::Packet / Playout::Lost   (released by poll(now))
//!                              ▼
//!                          decoder::Decoder       G.711, L16, G.726, AAC, Opus; concealment
//!                              │ interleaved i16 at the codec's rate
//!                              ▼
//!                          resample::Resampler    downmix, rate conversion
//!                              │ mono i16 at the output rate
//!                              ▼
//!  output::{WavOutput, ExecOutput, FanOutput, Mixer}   (the only modules doing I/O)
//! ```
//!
//! ## Three clocks
//!
//! - **RTP time**: the packets' 32-bit timestamps, in units of the codec's clock rate
//!   (8000 for G.711/G.726, 48000 for Opus, the `rtpmap` rate for AAC). Used only for
//!   differences (how much audio a gap held), never as wall-clock time.
//! - **Arrival time / now**: the caller's monotonic clock. The jitter buffer waits on it
//!   (a packet missing for `depth` is given up) and the SSRC lock times out on it.
//! - **Wall-clock time**: only in the WAV file name (`start` in Unix microseconds).
//!
//! ## Modules
//!
//! - [`g711`]: µ-law / A-law (hand-written, bit-exact).
//! - [`g726`]: G.726 ADPCM at 16/24/32/40 kbit/s (hand-written, bit-exact with spandsp's
//!   ITU-conformant implementation).
//! - [`jitter`]: RTP reordering, loss detection and SSRC lock-in.
//! - [`decoder`]: SDP codec names and one decoder per codec (G.711, L16, G.726, AAC, Opus).
//! - [`resample`]: downmix and windowed-sinc rate conversion.
//! - [`pipeline`]: the above glued together behind one `push_rtp` / `poll`.
//! - [`output`]: WAV files, a command's stdin, fan-out, the talker mixer.
//! - `alsa_output` (cargo feature `alsa`): a sound card through libasound.

#[cfg(feature = "alsa")]
pub mod alsa_output;
pub mod decoder;
pub mod g711;
pub mod g726;
pub mod jitter;
pub mod output;
pub mod pipeline;
pub mod resample;

#[cfg(test)]
mod test_util;
