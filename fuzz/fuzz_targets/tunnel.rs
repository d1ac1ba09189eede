//! The RTSP-over-HTTP tunnel decoder: the HTTP request head parser, then the base64 POST
//! body stream fed in pieces of varying size.
#![no_main]

use bytes::BytesMut;
use ipcamd_proto::tunnel::{is_http_request, parse_http_head, Base64Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_http_request(data);
    let body = match parse_http_head(data, 4096) {
        Ok(Some((head, used))) => {
            let _ = head.session_cookie();
            let _ = head.is_tunnel_get();
            let _ = head.is_tunnel_post();
            data.get(used..).unwrap_or(&[])
        }
        _ => data,
    };
    let mut b64 = Base64Stream::default();
    let mut out = BytesMut::new();
    let mut rest = body;
    let mut step = 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        if b64.feed(&rest[..n], &mut out).is_err() {
            // Stays failed.
            assert!(b64.feed(b"AAAA", &mut out).is_err());
            break;
        }
        rest = &rest[n..];
        step = step % 13 + 1;
    }
});
