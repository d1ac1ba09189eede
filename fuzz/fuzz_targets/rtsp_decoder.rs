//! The RTSP message decoder (requests, responses, interleaved frames) on arbitrary bytes,
//! fed whole and then in small pieces: it must never panic, never loop, and always make
//! progress or ask for more.
#![no_main]

use bytes::BytesMut;
use ipcamd_proto::rtsp::message::{Decoder, Limits};
use libfuzzer_sys::fuzz_target;

fn drain(decoder: &mut Decoder, buf: &mut BytesMut) -> bool {
    for _ in 0..10_000 {
        match decoder.decode(buf) {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(e) if e.fatal => return false,
            Err(_) => {}
        }
    }
    panic!("decoder made no progress in 10000 calls");
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 2048,
        max_headers: 32,
        max_body_bytes: 4096,
    };
    let mut d = Decoder::new(limits);
    let mut buf = BytesMut::from(data);
    drain(&mut d, &mut buf);

    // The same bytes arriving 7 at a time.
    let mut d = Decoder::new(limits);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        if !drain(&mut d, &mut buf) {
            break;
        }
    }
});
