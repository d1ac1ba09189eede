//! The browser's WHEP offer (`POST /whep/NAME`, sent by anyone who may watch) through the
//! server's `webrtc::answer_offer`, as a WHEP POST runs it: our audio-direction reader, then
//! str0m's SDP parser and offer answering. The first byte picks the camera's video codec
//! (odd: H.265), the rest is the offer. Any text gives an answer or a 400, never a panic;
//! an answer is SDP that names its ICE ufrag and carries our candidate.
//!
//! `answer_offer` catches str0m's own panics (finding 11 in docs/fuzzing.md); libFuzzer's
//! panic hook would abort on those although they are caught, so this target's hook only
//! prints. A panic that leaves the closure still aborts (libfuzzer-sys) and is a finding.
#![no_main]

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Instant;

use ipcamd_server::webrtc::answer_offer;
use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}"))));
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(offer) = std::str::from_utf8(rest) else {
        return;
    };
    let candidate = SocketAddr::from(([192, 0, 2, 1], 8189));
    match answer_offer(offer, first & 1 == 1, candidate, Instant::now()) {
        Ok(a) => {
            assert!(a.answer.starts_with("v=0"), "{}", a.answer);
            assert!(!a.ufrag.is_empty());
            assert!(a.answer.contains(&format!("a=ice-ufrag:{}", a.ufrag)));
            assert_eq!(a.local_addr, candidate);
            assert!(a.answer.contains("192.0.2.1 8189 typ host"), "{}", a.answer);
        }
        Err(r) => assert_eq!(r.status, 400, "{}", r.text),
    }
});
