//! The STUN `USERNAME` reader that routes WebRTC datagrams (`proto::stun`): any datagram
//! (STUN, DTLS, SRTP, garbage) gives a ufrag or nothing, never a panic; a ufrag found is
//! a prefix of the datagram's bytes' text and holds no ':'.
#![no_main]

use ipcamd_proto::stun::{is_stun, local_ufrag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(u) = local_ufrag(data) {
        assert!(is_stun(data));
        assert!(!u.is_empty() && !u.contains(':'));
    }
});
