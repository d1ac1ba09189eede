//! # ipcamd-audio: backchannel decoders and outputs (being written)
