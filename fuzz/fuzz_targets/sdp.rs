//! The SDP parser (ANNOUNCE bodies, DESCRIBE answers) on arbitrary text; what parses is
//! written out again and must parse again.
#![no_main]

use ipcamd_proto::sdp::{parse_sdp, resolve_control};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(sdp) = parse_sdp(&text) {
        for m in &sdp.media {
            let _ = resolve_control("rtsp://h/cam/", &m.control);
        }
        let again = sdp.to_sdp_string();
        assert!(parse_sdp(&again).is_ok(), "{again:?}");
    }
});
