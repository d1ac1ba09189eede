//! Just enough STUN (RFC 8489) to route a datagram to its WebRTC peer: all WebRTC peers
//! share one UDP port, and a peer's first datagram is an ICE connectivity check (a STUN
//! Binding request) whose `USERNAME` is `<our ufrag>:<their ufrag>` (RFC 8445 §7.2.2).
//! The server looks the peer up by our ufrag, then by the source address for everything
//! that follows (DTLS, SRTP). Full STUN handling (integrity, answers) is str0m's.
//!
//! Hand-written: a header check and one attribute walk; no crate offers this alone.

/// STUN's magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// The `USERNAME` attribute (RFC 8489 §14.3).
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// Whether `datagram` looks like a STUN message (RFC 7983 §7 demultiplexing: first byte
/// 0..=3, then the magic cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram.get(4..8) == Some(&MAGIC_COOKIE[..])
}

/// The local part of a STUN message's `USERNAME` (before the `:`): the ufrag of the peer
/// it is meant for. `None` for anything else (not STUN, no `USERNAME`, truncated, not
/// UTF-8).
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(HEADER_LEN..HEADER_LEN.checked_add(declared)?)?;
    let mut at = 0usize;
    while let Some(head) = body.get(at..at + 4) {
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to 4 bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Binding request as Chromium sends it: USERNAME, then other attributes.
    fn binding(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        // PRIORITY (0x0024), 4 bytes.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_local_ufrag_is_read_from_a_binding_request() {
        assert_eq!(local_ufrag(&binding("abcd:wxyz")), Some("abcd"));
        // Odd lengths are padded; the next attribute is still found after it.
        assert_eq!(local_ufrag(&binding("a1b:c")), Some("a1b"));
    }

    #[test]
    fn anything_else_gives_none_without_panicking() {
        assert_eq!(local_ufrag(b""), None);
        // DTLS record (first byte 20..=63) and RTP (128..=191) are not STUN.
        let mut dtls = binding("abcd:wxyz");
        dtls[0] = 22;
        assert_eq!(local_ufrag(&dtls), None);
        assert!(!is_stun(&[0x80; 40]));
        // Truncated: the declared length runs past the datagram.
        let full = binding("abcd:wxyz");
        for cut in 0..full.len() {
            assert_eq!(local_ufrag(&full[..cut]), None, "cut at {cut}");
        }
        // An empty local part.
        assert_eq!(local_ufrag(&binding(":wxyz")), None);
        // No USERNAME at all.
        let mut m = vec![0x00, 0x01, 0x00, 0x00];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[0; 12]);
        assert_eq!(local_ufrag(&m), None);
        // An attribute length larger than what is left.
        let mut bad = binding("abcd:wxyz");
        bad[HEADER_LEN + 2] = 0xff;
        assert_eq!(local_ufrag(&bad), None);
    }
}
