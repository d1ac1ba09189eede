//! The picture-size probes (`ipcamd_proto::probe`) on arbitrary bytes: an H.264 SPS
//! (h264-reader's parser; the SPS comes from a publisher's or a proxied camera's SDP and
//! in-band parameter sets, and from MP4 files) and a JPEG frame header (a camera's or a
//! publisher's JPEG frames). The first byte picks the probe.
//!
//! Checks: no panic; a size, when there is one, is not zero (no level limits: an SPS may
//! describe 638 x 20280, and the users of the size check their own bounds, e.g. the MP4
//! export's 16 bits).
#![no_main]

use ipcamd_proto::probe::{h264_picture_size, jpeg_picture_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        if let Some((w, h)) = h264_picture_size(rest) {
            assert!(w > 0 && h > 0, "{w}x{h}");
        }
    } else if let Some((w, h)) = jpeg_picture_size(rest) {
        assert!(w > 0 && h > 0, "{w}x{h}");
    }
});
