//! # RTSP/1.0 (RFC 2326), sans-IO
//!
//! - [`message`]: the wire format. Requests, responses and `$` interleaved binary frames
//!   (§4, §6, §7, §10.12) decoded incrementally from whatever bytes a TCP connection has
//!   delivered so far, and serialised back. Liberal in what it accepts (bare LF line ends,
//!   CRLF keep-alives between messages, folded header lines, `RTSP/2.0` request lines which
//!   it reports as errors the server can answer with `505`), strict in what it writes.
//! - [`headers`]: typed values of the headers the server acts on: `Transport`, `Range`
//!   (NPT and the absolute `clock=` form ONVIF replay uses), `Session`, `RTP-Info`, and
//!   ONVIF's `Scale` / `Rate-Control` / `Frames` / `Immediate`.
//!
//! What a request means is decided by [`server`], the sans-IO session core. What the
//! wire-format modules guarantee is that no byte sequence makes them panic, and that
//! every rejection says which line, header or value was wrong, so that the server can answer
//! `400`/`505`/`413` with a useful message and keep (or close) the connection.
//!
//! RTSP over HTTP tunnelling is in the crate's `tunnel` module; once the tunnel is
//! established the bytes it yields are fed to the same [`Decoder`].

pub mod headers;
pub mod message;
pub mod server;
pub(crate) mod token;

pub use headers::{
    format_clock, format_http_date, format_rtp_info, format_scale, parse_clock, parse_frames,
    parse_immediate, parse_range, parse_rate_control, parse_rtp_info, parse_scale, parse_session,
    parse_transports, Frames, HeaderError, LowerTransport, NptTime, Range, RateControl, RtpInfo,
    SessionHeader, Transport,
};
pub use message::{
    reason_phrase, try_write_interleaved, write_interleaved, DecodeError, Decoder, Frame, Headers,
    Limits, Method, Request, Response, RTSP_VERSION,
};

/// The ONVIF feature tags of the `Require` / `Supported` / `Unsupported` headers (RFC 2326
/// §12.32), shared by the server and the client; see docs/onvif.md "Audio backchannel" and
/// "Replay".
pub mod tags {
    /// The audio backchannel (ONVIF Streaming Specification, audio backchannel): a client
    /// that wants the camera's audio inputs sends it in `Require` on DESCRIBE and SETUP.
    pub const BACKCHANNEL: &str = "www.onvif.org/ver20/backchannel";
    /// Replay of recordings (ONVIF Streaming Specification, replay): in `Require` on
    /// DESCRIBE, SETUP and PLAY of a replay URL.
    pub const REPLAY: &str = "onvif-replay";
}

/// Shared by the tests of `message`, `headers` and the tunnel module: the captured client
/// requests and a tiny deterministic PRNG for the no-panic property loops.
#[cfg(test)]
pub(crate) mod test_support {
    /// Every capture in `testdata/client-requests/` (see its README.md).
    pub(crate) const CAPTURES: [(&str, &str); 12] = [
        (
            "ffmpeg-http.txt",
            include_str!("../../testdata/client-requests/ffmpeg-http.txt"),
        ),
        (
            "ffmpeg-publish-aac.txt",
            include_str!("../../testdata/client-requests/ffmpeg-publish-aac.txt"),
        ),
        (
            "ffmpeg-publish-tcp.txt",
            include_str!("../../testdata/client-requests/ffmpeg-publish-tcp.txt"),
        ),
        (
            "ffmpeg-publish-udp.txt",
            include_str!("../../testdata/client-requests/ffmpeg-publish-udp.txt"),
        ),
        (
            "ffmpeg-tcp.txt",
            include_str!("../../testdata/client-requests/ffmpeg-tcp.txt"),
        ),
        (
            "ffmpeg-udp.txt",
            include_str!("../../testdata/client-requests/ffmpeg-udp.txt"),
        ),
        (
            "gst-backchannel.txt",
            include_str!("../../testdata/client-requests/gst-backchannel.txt"),
        ),
        (
            "gst-onvif-replay-reverse.txt",
            include_str!("../../testdata/client-requests/gst-onvif-replay-reverse.txt"),
        ),
        (
            "gst-publish-tcp.txt",
            include_str!("../../testdata/client-requests/gst-publish-tcp.txt"),
        ),
        (
            "gst-publish-udp.txt",
            include_str!("../../testdata/client-requests/gst-publish-udp.txt"),
        ),
        (
            "gst-tcp.txt",
            include_str!("../../testdata/client-requests/gst-tcp.txt"),
        ),
        (
            "gst-udp.txt",
            include_str!("../../testdata/client-requests/gst-udp.txt"),
        ),
    ];

    /// The messages of one capture, each in wire form: CRLF line ends and a final empty line.
    pub(crate) fn capture_messages(name: &str) -> Vec<String> {
        let text = CAPTURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("no capture {name}"));
        split_messages(text)
    }

    /// Splits a capture on blank lines and converts LF to CRLF. The block after an RTSP
    /// request with a `Content-Length` is its body (an ANNOUNCE's SDP, whose lines end
    /// with CRLF on the wire too).
    pub(crate) fn split_messages(text: &str) -> Vec<String> {
        let mut blocks: Vec<String> = Vec::new();
        let mut cur = String::new();
        for line in text.lines() {
            if line.is_empty() {
                if !cur.is_empty() {
                    blocks.push(std::mem::take(&mut cur));
                }
            } else {
                cur.push_str(line);
                cur.push_str("\r\n");
            }
        }
        if !cur.is_empty() {
            blocks.push(cur);
        }
        let mut out: Vec<String> = Vec::new();
        let mut blocks = blocks.into_iter();
        while let Some(head) = blocks.next() {
            let rtsp = head.lines().next().is_some_and(|l| l.ends_with("RTSP/1.0"));
            let has_body = head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("content-length:"));
            let mut msg = head;
            msg.push_str("\r\n");
            if rtsp && has_body {
                if let Some(body) = blocks.next() {
                    msg.push_str(&body);
                }
            }
            out.push(msg);
        }
        out
    }

    /// Marsaglia's xorshift64: deterministic, good enough to shake parsers.
    pub(crate) struct XorShift(u64);

    impl XorShift {
        pub(crate) fn new(seed: u64) -> Self {
            XorShift(seed | 1)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-ish in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next_u64() as u8).collect()
        }

        /// `len` characters drawn from `alphabet`.
        pub(crate) fn pick(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }

        /// A copy of `base` with a few random bytes changed, inserted or removed.
        pub(crate) fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
            let mut v = base.to_vec();
            for _ in 0..1 + self.below(4) {
                let pos = self.below(v.len() + 1);
                match self.below(3) {
                    0 if pos < v.len() => v[pos] = self.next_u64() as u8,
                    1 => v.insert(pos, self.next_u64() as u8),
                    _ if pos < v.len() => {
                        v.remove(pos);
                    }
                    _ => {}
                }
            }
            v
        }
    }
}
