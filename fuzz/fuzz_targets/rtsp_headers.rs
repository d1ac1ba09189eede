//! Every RTSP header value parser: Transport, Range, Session, RTP-Info, Scale/Speed,
//! Rate-Control, Immediate, Frames, clock times. The first byte picks the parser.
#![no_main]

use ipcamd_proto::rtsp::headers as h;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let s = String::from_utf8_lossy(rest);
    match sel % 9 {
        0 => {
            if let Ok(ts) = h::parse_transports(&s) {
                // What we format must parse again.
                for t in ts {
                    let again = t.to_string();
                    assert!(h::parse_transports(&again).is_ok(), "{again:?}");
                }
            }
        }
        1 => {
            if let Ok(r) = h::parse_range(&s) {
                let _ = r.to_string();
            }
        }
        2 => {
            if let Ok(sh) = h::parse_session(&s) {
                let _ = sh.to_string();
            }
        }
        3 => {
            if let Ok(infos) = h::parse_rtp_info(&s) {
                let _ = h::format_rtp_info(&infos);
            }
        }
        4 => {
            if let Ok(x) = h::parse_scale(&s) {
                let _ = h::format_scale(x);
            }
        }
        5 => {
            let _ = h::parse_rate_control(&s);
        }
        6 => {
            let _ = h::parse_immediate(&s);
            if let Ok(n) = h::parse_blocksize(&s) {
                assert!(n > 0, "{s:?}");
            }
        }
        7 => {
            let _ = h::parse_frames(&s);
        }
        _ => {
            if let Ok(t) = h::parse_clock(&s) {
                let _ = h::format_clock(t);
                let _ = h::format_http_date(t);
            }
        }
    }
});
