//! The HTTP port's own parsing, as far as it is sans-IO: the request head
//! (`tunnel::parse_http_head`), then what the routes do with a parsed request: the query
//! string (`http_query`, for `/get`, `/list` and exports), the `Range` header of a download
//! (`http_range`), the Digest and Basic `Authorization` checks (`auth::Authorization::parse`,
//! `DigestServer::verify` with `NonceSigner` and `NonceCounts`), and `WWW-Authenticate`
//! lists (`parse_challenge_list`, as the client reads a camera's).
//!
//! Input: 17 bytes of knobs, then the request (head, then a body).
//! - byte 0: bit 0 Basic allowed, bit 1 RFC 2069 answers allowed;
//! - bytes 1..9 and 9..17: two times (big-endian u64, seconds): a nonce is made at the
//!   first and checked at the second, against the lifetime of the signer.
//!
//! In the `Authorization` header, `NONCE` stands for a nonce this server issued a minute
//! ago and a `response` of `RIGHT` for the right digest of user `alice`, password
//! `secret`, so that inputs reach the digest comparison and the nonce counts.
//! The body drives a small `NonceCounts` table directly: 4-byte records (nonce, issued,
//! nc, now).
//!
//! Checks: no panic; the head formatted again parses to the same head; a parsed query
//! formatted again parses to the same parameters; a `206` range lies inside the resource;
//! a parsed `Authorization` formatted again (RFC 7616 §3.4 syntax) parses to the same
//! value; the server's challenges read back give its realm and a fresh nonce; an accepted
//! digest answer with a nonce count is refused when replayed; a nonce is fresh, stale or
//! invalid exactly as its age says; the nonce-count table never refuses a count higher
//! than any seen for that nonce and stays within its size.
#![no_main]

use base64::Engine as _;
use ipcamd_proto::auth::{
    digest_response, ha1, parse_challenge_list, quote, Algorithm, Authorization,
    DigestAuthorization, DigestServer, NonceCounts, NonceSigner, NonceState, StoredHashes, Verdict,
};
use ipcamd_proto::http_query::{percent_decode, percent_encode, split_target, Query};
use ipcamd_proto::http_range::{answer_range, content_range, RangeAnswer};
use ipcamd_proto::tunnel::{parse_http_head, HttpRequestHead};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_800_000_000;
const LIFETIME: u64 = 300;

fn users(name: &str) -> Option<StoredHashes> {
    (name == "alice").then(|| StoredHashes {
        md5: Some(ha1(Algorithm::Md5, "alice", "ipcamd", "secret")),
        sha256: Some(ha1(Algorithm::Sha256, "alice", "ipcamd", "secret")),
    })
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = data.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

/// The head as a client would send it.
fn format_head(h: &HttpRequestHead) -> Vec<u8> {
    let mut s = format!("{} {} {}\r\n", h.method, h.path, h.version);
    for (n, v) in h.headers.iter() {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An `Authorization: Digest` value (RFC 7616 §3.4): quoted strings, tokens unquoted when
/// they are tokens.
fn format_digest(d: &DigestAuthorization) -> String {
    let mut s = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\"",
        quote(&d.username),
        quote(&d.realm),
        quote(&d.nonce),
        quote(&d.uri),
        quote(&d.response)
    );
    let mut token = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            if is_token(v) {
                s.push_str(&format!(", {name}={v}"));
            } else {
                s.push_str(&format!(", {name}=\"{}\"", quote(v)));
            }
        }
    };
    token("algorithm", &d.algorithm);
    token("qop", &d.qop);
    token("nc", &d.nc);
    for (name, v) in [("cnonce", &d.cnonce), ("opaque", &d.opaque)] {
        if let Some(v) = v {
            s.push_str(&format!(", {name}=\"{}\"", quote(v)));
        }
    }
    s
}

fn check_query(query: &str) {
    let Ok(q) = Query::parse(query) else {
        return;
    };
    let again = Query::parse(&q.to_string());
    assert_eq!(again.as_ref(), Ok(&q), "query {query:?} formatted as {q}");
    for (k, v) in &q.0 {
        assert_eq!(
            percent_decode(&percent_encode(k)).as_deref(),
            Some(k.as_str())
        );
        assert_eq!(
            percent_decode(&percent_encode(v)).as_deref(),
            Some(v.as_str())
        );
    }
}

fn check_range(value: &str, extra_len: u64) {
    for len in [0, 1, 100, 4096, extra_len, u64::MAX] {
        match answer_range(Some(value), len) {
            RangeAnswer::Partial { start, end } => {
                assert!(
                    start < end && end <= len,
                    "{value:?} of {len}: {start}..{end}"
                );
                let _ = content_range(start, end, len);
            }
            RangeAnswer::Unsatisfiable | RangeAnswer::Full => {}
        }
    }
}

fn check_authorization(value: &str) {
    match Authorization::parse(value) {
        Ok(Authorization::Digest(d)) => {
            let again = format_digest(&d);
            assert_eq!(
                Authorization::parse(&again),
                Ok(Authorization::Digest(d)),
                "{value:?} formatted as {again:?}"
            );
        }
        Ok(Authorization::Basic { username, password }) => {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            let again = Authorization::parse(&format!("Basic {token}"));
            assert_eq!(again, Ok(Authorization::Basic { username, password }));
        }
        Ok(Authorization::Other(_)) | Err(_) => {}
    }
}

/// `NONCE` and `RIGHT` replaced (see the module comment).
fn fill_in(value: &str, server: &DigestServer, method: &str) -> String {
    let value = value.replace("NONCE", &server.signer.make(NOW - 60, [1; 8]));
    let Ok(Authorization::Digest(d)) = Authorization::parse(&value) else {
        return value;
    };
    if d.response != "RIGHT" {
        return value;
    }
    let Some(alg) = Algorithm::parse(d.algorithm.as_deref()) else {
        return value;
    };
    let ha1 = ha1(alg, &d.username, &d.realm, "secret");
    let qop = match (&d.qop, &d.nc, &d.cnonce) {
        (Some(q), Some(nc), Some(c)) => Some((q.as_str(), nc.as_str(), c.as_str())),
        _ => None,
    };
    let right = digest_response(alg, &ha1, &d.nonce, method, &d.uri, qop);
    value.replace("RIGHT", &right)
}

fn check_verify(value: &str, head: &HttpRequestHead, server: &DigestServer, basic: bool) {
    let value = fill_in(value, server, &head.method);
    let mut counts = NonceCounts::new(8);
    let verify = |counts: &mut NonceCounts| {
        server.verify(&value, &head.method, &head.path, NOW, basic, counts, users)
    };
    let first = verify(&mut counts);
    if let Verdict::Authenticated { username } = &first {
        assert_eq!(username, "alice");
        let with_nc = matches!(
            Authorization::parse(&value),
            Ok(Authorization::Digest(DigestAuthorization {
                nc: Some(_),
                ..
            }))
        );
        if with_nc {
            // The same nonce count again is a replay.
            let second = verify(&mut counts);
            assert!(
                matches!(second, Verdict::Challenge { stale: false, .. }),
                "replay of {value:?} gave {second:?}"
            );
        }
    }
}

fn check_challenges(realm: &str, server: &DigestServer, basic: bool) {
    let server = DigestServer {
        realm: realm.to_owned(),
        ..server.clone()
    };
    for c in server.challenges(NOW, [2; 8], false, basic) {
        let list = parse_challenge_list(&c);
        let Some((scheme, params)) = list.first() else {
            panic!("challenge {c:?} reads as nothing");
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("realm"), Some(realm), "{c:?}");
        if scheme == "Digest" {
            let nonce = get("nonce").unwrap_or_default();
            assert!(matches!(
                server.signer.check(nonce, NOW),
                NonceState::Fresh { issued: NOW }
            ));
        }
    }
}

fn check_nonce_times(signer: &NonceSigner, issued: u64, now: u64, other: &str) {
    let nonce = signer.make(issued, [3; 8]);
    let want = if issued > now.saturating_add(5) {
        NonceState::Invalid
    } else if now.saturating_sub(issued) > signer.lifetime_secs {
        NonceState::Stale { issued }
    } else {
        NonceState::Fresh { issued }
    };
    assert_eq!(
        signer.check(&nonce, now),
        want,
        "issued {issued}, now {now}"
    );
    // Whatever else comes in a nonce field is no nonce of ours.
    if other != nonce {
        let _ = signer.check(other, now);
    }
}

fn check_nonce_counts(body: &[u8]) {
    let mut counts = NonceCounts::new(4);
    // The highest count seen per nonce (never forgotten here, unlike the table).
    let mut highest = std::collections::HashMap::new();
    for r in body.chunks_exact(4) {
        let nonce = format!("n{}", r[0] % 8);
        let (issued, nc, now) = (
            u64::from(r[1]),
            u32::from(r[2]),
            u64::from(r[1]) + u64::from(r[3]),
        );
        let accepted = counts.accept(&nonce, issued, nc, now, 100);
        let high = highest.entry(nonce.clone()).or_insert(None);
        if !accepted {
            assert!(
                high.is_some_and(|h| nc <= h),
                "{nonce} nc {nc} refused, highest seen {high:?}"
            );
        } else {
            assert!(
                !counts.accept(&nonce, issued, nc, now, 100),
                "{nonce} nc {nc} twice"
            );
        }
        *high = Some(high.map_or(nc, |h: u32| h.max(nc)));
        assert!(counts.len() <= 4);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((knobs, rest)) = data.split_first_chunk::<17>() else {
        return;
    };
    let basic = knobs[0] & 1 != 0;
    let server = DigestServer {
        realm: "ipcamd".into(),
        signer: NonceSigner::new([9; 32], LIFETIME),
        allow_rfc2069: knobs[0] & 2 != 0,
    };
    let (issued, now) = (u64_at(knobs, 1), u64_at(knobs, 9));

    let Ok(Some((head, used))) = parse_http_head(rest, 8192) else {
        check_nonce_times(&server.signer, issued, now, "");
        return;
    };
    // The limit is the formatted text's: bytes that are not UTF-8 come back as U+FFFD
    // (three bytes each), so a head just under 8192 bytes can grow past it.
    let text = format_head(&head);
    let again = parse_http_head(&text, text.len().max(8192));
    assert!(
        matches!(&again, Ok(Some((h, _))) if *h == head),
        "{head:?} formatted and parsed again: {again:?}"
    );

    let (_path, query) = split_target(&head.path);
    check_query(query);
    for v in head.headers.get_all("Range") {
        check_range(v, issued);
    }
    for v in head.headers.get_all("Authorization") {
        check_authorization(v);
        check_verify(v, &head, &server, basic);
        check_nonce_times(&server.signer, issued, now, v);
    }
    for v in head.headers.get_all("WWW-Authenticate") {
        for (_, params) in parse_challenge_list(v) {
            if let Some((_, realm)) = params.iter().find(|(n, _)| n == "realm") {
                check_challenges(realm, &server, basic);
            }
        }
    }
    check_nonce_times(&server.signer, issued, now, &head.path);
    check_nonce_counts(rest.get(used..).unwrap_or(&[]));
});
