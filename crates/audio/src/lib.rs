//! # ipcamd-audio: backchannel decoders and outputs
//!
//! - [`g711`]: µ-law / A-law (hand-written, bit-exact).

pub mod g711;
