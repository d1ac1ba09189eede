//! # ipcamd-audio: backchannel decoders and outputs
//!
//! - [`g711`]: µ-law / A-law (hand-written, bit-exact).
//! - [`g726`]: G.726 ADPCM at 16/24/32/40 kbit/s (hand-written, bit-exact with spandsp's
//!   ITU-conformant implementation).

pub mod g711;
pub mod g726;
