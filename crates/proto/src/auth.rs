//! HTTP authentication as RTSP and HTTP use it, server side and the parts both sides share:
//! the Digest scheme of RFC 7616 (MD5 and SHA-256, `qop=auth`), Basic (RFC 7617, only
//! ever offered over TLS by the caller's choice), user roles, and the auth-param syntax of
//! RFC 7235 §2.1 / §4.1.
//!
//! Sans-IO: nothing here reads a clock or draws a random number. The caller passes "now"
//! (seconds) and random bytes for each new nonce, which keeps every rule testable.
//!
//! Nonces are stateless: `hex(issued time (8 bytes) | random (8 bytes) | HMAC-SHA-256(secret,
//! time | random) truncated to 16 bytes)`. A server start picks a new random secret, so
//! nonces do not survive a restart (clients then get `stale=true` only if the HMAC still
//! checks, i.e. never: they get a plain 401 and retry with the same credentials anyway).
//! A nonce older than the configured lifetime whose response is otherwise right is
//! answered with `stale=true` (RFC 7616 §3.3). Each nonce count (`nc`) of a nonce is
//! accepted once ([`NonceCounts`]), so a captured request cannot be replayed while its
//! nonce is fresh.
//!
//! Deliberately left out: the `-sess` algorithms, `qop=auth-int` (bodies are not hashed),
//! `userhash=true`, `Authentication-Info`. The RFC 2069 form (no `qop` in the answer,
//! which GStreamer's `rtspsrc` sends) is accepted when the caller allows it; it carries no
//! nonce count, so within one nonce's lifetime it cannot be told from a replay.
//!
//! MD5 and SHA-256 come from RustCrypto (`md-5`, `sha2`, `hmac`), comparisons of secrets
//! are constant-time (`subtle`). The client crate reuses [`hash_hex`] and
//! [`parse_challenge_list`].

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// What a user may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Live streams and replay.
    Viewer,
    /// Also talks on the ONVIF audio backchannel.
    Operator,
    /// Also the HTTP API's changing calls.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin` (case-insensitive).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A digest algorithm of RFC 7616 §3.2 (the non-`-sess` ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The `algorithm=` token.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// `MD5` (or absent, which means MD5) and `SHA-256`, case-insensitive.
    pub fn parse(token: Option<&str>) -> Option<Algorithm> {
        match token {
            None => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }
}

/// Lower-case hex of the digest of `data` under `alg`.
pub fn hash_hex(alg: Algorithm, data: &[u8]) -> String {
    match alg {
        Algorithm::Md5 => hex(&Md5::digest(data)),
        Algorithm::Sha256 => hex(&Sha256::digest(data)),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `H(username:realm:password)`, what a users file stores instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_hex(alg, format!("{username}:{realm}:{password}").as_bytes())
}

/// The `response` value of RFC 7616 §3.4.1 from a stored HA1. `qop` is
/// `Some(("auth", nc as sent (8 hex digits), cnonce))`, or `None` for the RFC 2069 form.
pub fn digest_response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = hash_hex(alg, format!("{method}:{uri}").as_bytes());
    match qop {
        Some((qop, nc, cnonce)) => hash_hex(
            alg,
            format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
        ),
        None => hash_hex(alg, format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// Constant-time equality of two strings (lengths may leak, contents do not).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Splits a `WWW-Authenticate` or `Authorization` value into (scheme, auth-params) pairs
/// (RFC 7235 §4.1: several challenges may share one value; a token not followed by `=`
/// starts a new one). Parameter names are lower-cased, quoted values unescaped. Never
/// fails: what cannot be read is skipped.
pub fn parse_challenge_list(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let (val, remaining) = if let Some(q) = v.strip_prefix('"') {
                let mut s = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                s.push(e);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => s.push(c),
                    }
                }
                (s, &q[end.min(q.len())..])
            } else {
                let end = v.find(',').unwrap_or(v.len());
                (v[..end].trim().to_owned(), &v[end..])
            };
            if let Some((_, params)) = out.last_mut() {
                params.push((token.to_ascii_lowercase(), val));
            }
            rest = remaining;
        } else {
            if token.is_empty() {
                break;
            }
            // A token68 (Basic's credentials) follows the scheme name directly.
            let word_end = after
                .find(|c: char| c == ',' || c.is_whitespace())
                .unwrap_or(after.len());
            let word = &after[..word_end];
            if is_token68(word) {
                out.push((
                    token.to_owned(),
                    vec![("token68".to_owned(), word.to_owned())],
                ));
                rest = &after[word_end..];
                continue;
            }
            out.push((token.to_owned(), Vec::new()));
            rest = after;
        }
    }
    out
}

/// RFC 7235 §2.1 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(w: &str) -> bool {
    let body = w.trim_end_matches('=');
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
}

/// Escapes `"` and `\` for a quoted-string.
pub fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Makes and checks stateless nonces (see the module comment).
#[derive(Clone)]
pub struct NonceSigner {
    secret: [u8; 32],
    /// A nonce older than this (seconds) is stale.
    pub lifetime_secs: u64,
}

impl fmt::Debug for NonceSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceSigner")
            .field("secret", &"<redacted>")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish()
    }
}

/// What a nonce is, as far as the HMAC and the clock tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and fresh; issued at this time (seconds).
    Fresh { issued: u64 },
    /// Ours but older than the lifetime.
    Stale { issued: u64 },
    /// Not made by this server (start), or malformed, or from the future.
    Invalid,
}

/// Nonces issued up to this far in the future (seconds) are accepted: none should be.
const CLOCK_SLACK_SECS: u64 = 5;

impl NonceSigner {
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> NonceSigner {
        NonceSigner {
            secret,
            lifetime_secs,
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        // HMAC accepts keys of any length: `new_from_slice` cannot fail here.
        if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.secret) {
            m.update(data);
            let full = m.finalize().into_bytes();
            out.copy_from_slice(&full[..16]);
        }
        out
    }

    /// A new nonce issued at `now` (seconds), `random` drawn by the caller per nonce.
    pub fn make(&self, now: u64, random: [u8; 8]) -> String {
        let mut data = [0u8; 32];
        data[..8].copy_from_slice(&now.to_be_bytes());
        data[8..16].copy_from_slice(&random);
        let mac = self.mac(&data[..16]);
        data[16..].copy_from_slice(&mac);
        hex(&data)
    }

    pub fn check(&self, nonce: &str, now: u64) -> NonceState {
        let Some(raw) = unhex(nonce) else {
            return NonceState::Invalid;
        };
        if raw.len() != 32 {
            return NonceState::Invalid;
        }
        let mac = self.mac(&raw[..16]);
        if !bool::from(mac[..].ct_eq(&raw[16..])) {
            return NonceState::Invalid;
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(t);
        if issued > now.saturating_add(CLOCK_SLACK_SECS) {
            NonceState::Invalid
        } else if now.saturating_sub(issued) > self.lifetime_secs {
            NonceState::Stale { issued }
        } else {
            NonceState::Fresh { issued }
        }
    }
}

/// The nonce counts seen per fresh nonce: each is accepted once (RFC 7616 §3.4: "if the
/// same nc-value is seen twice, then the request is a replay"). A client that sends
/// requests on several connections at once (a browser) numbers them in order but they can
/// arrive out of order, so a count below the highest seen is accepted if it is within
/// [`NC_WINDOW`] of it and was not seen yet (a sliding window, as IPsec's anti-replay
/// check); older ones are refused. Entries of nonces past their lifetime are dropped, and
/// the table holds at most `max_entries` (the oldest go first), so memory stays bounded.
#[derive(Debug)]
pub struct NonceCounts {
    /// Per nonce: issue time, highest count seen, and which of the [`NC_WINDOW`] counts
    /// up to it were seen (bit `i`: highest - `i`).
    seen: HashMap<String, (u64, u32, u64)>,
    max_entries: usize,
}

/// How far below the highest nonce count seen a count may arrive (out of order) and still
/// be accepted once.
pub const NC_WINDOW: u32 = 64;

impl Default for NonceCounts {
    fn default() -> Self {
        NonceCounts::new(100_000)
    }
}

impl NonceCounts {
    pub fn new(max_entries: usize) -> NonceCounts {
        NonceCounts {
            seen: HashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `nc` for `nonce` (issued at `issued`); `false` if it was seen before (a
    /// replay) or is [`NC_WINDOW`] or more below the highest seen.
    pub fn accept(&mut self, nonce: &str, issued: u64, nc: u32, now: u64, lifetime: u64) -> bool {
        if let Some((_, highest, bits)) = self.seen.get_mut(nonce) {
            if nc > *highest {
                let up = nc - *highest;
                *bits = if up >= NC_WINDOW { 0 } else { *bits << up } | 1;
                *highest = nc;
                return true;
            }
            let back = *highest - nc;
            if back >= NC_WINDOW || *bits & (1 << back) != 0 {
                return false;
            }
            *bits |= 1 << back;
            return true;
        }
        if self.seen.len() >= self.max_entries {
            self.seen
                .retain(|_, (t, _, _)| now.saturating_sub(*t) <= lifetime);
        }
        while self.seen.len() >= self.max_entries {
            let oldest = self
                .seen
                .iter()
                .min_by_key(|(_, (t, _, _))| *t)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.seen.remove(&k);
                }
                None => break,
            }
        }
        self.seen.insert(nonce.to_owned(), (issued, nc, 1));
        true
    }
}

/// The fields of a `Digest` `Authorization` value (RFC 7616 §3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestAuthorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    /// As sent (8 hex digits).
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

/// A parsed `Authorization` value.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    Digest(DigestAuthorization),
    Basic {
        username: String,
        password: String,
    },
    /// Another scheme (its name).
    Other(String),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Digest(d) => f
                .debug_struct("Digest")
                .field("username", &d.username)
                .field("realm", &d.realm)
                .field("uri", &d.uri)
                .finish_non_exhaustive(),
            Authorization::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Authorization::Other(s) => f.debug_tuple("Other").field(s).finish(),
        }
    }
}

/// Why an `Authorization` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationError {
    /// A required field is absent (its name): answered 401.
    Missing(&'static str),
    /// Not readable at all, or a field's value is malformed: answered 400.
    Malformed(String),
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Authorization, AuthorizationError> {
        let list = parse_challenge_list(value);
        let Some((scheme, params)) = list.into_iter().next() else {
            return Err(AuthorizationError::Malformed(
                "empty Authorization header".into(),
            ));
        };
        if scheme.eq_ignore_ascii_case("Basic") {
            let token = params
                .iter()
                .find(|(k, _)| k == "token68")
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| AuthorizationError::Malformed("Basic without credentials".into()))?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(token)
                .map_err(|_| {
                    AuthorizationError::Malformed("Basic credentials are not base64".into())
                })?;
            let raw = String::from_utf8(raw).map_err(|_| {
                AuthorizationError::Malformed("Basic credentials are not UTF-8".into())
            })?;
            let (username, password) = raw.split_once(':').ok_or_else(|| {
                AuthorizationError::Malformed("Basic credentials lack the ':'".into())
            })?;
            return Ok(Authorization::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(Authorization::Other(scheme));
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let req = |k: &'static str| get(k).ok_or(AuthorizationError::Missing(k));
        let d = DigestAuthorization {
            username: req("username")?,
            realm: req("realm")?,
            nonce: req("nonce")?,
            uri: req("uri")?,
            response: req("response")?,
            algorithm: get("algorithm"),
            qop: get("qop"),
            nc: get("nc"),
            cnonce: get("cnonce"),
            opaque: get("opaque"),
        };
        if let Some(qop) = &d.qop {
            if !qop.eq_ignore_ascii_case("auth") {
                return Err(AuthorizationError::Malformed(format!(
                    "qop={qop} is not supported (only auth)"
                )));
            }
            let nc = d.nc.as_deref().ok_or(AuthorizationError::Missing("nc"))?;
            if nc.len() != 8 || u32::from_str_radix(nc, 16).is_err() {
                return Err(AuthorizationError::Malformed(format!(
                    "nc={nc:?} is not 8 hex digits"
                )));
            }
            if d.cnonce.is_none() {
                return Err(AuthorizationError::Missing("cnonce"));
            }
        }
        Ok(Authorization::Digest(d))
    }
}

/// The stored secrets of one user: HA1 per algorithm (lower-case hex), as a users file
/// holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHashes {
    pub md5: Option<String>,
    pub sha256: Option<String>,
}

impl StoredHashes {
    pub fn for_algorithm(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Md5 => self.md5.as_deref(),
            Algorithm::Sha256 => self.sha256.as_deref(),
        }
    }
}

/// The server's digest settings.
#[derive(Debug, Clone)]
pub struct DigestServer {
    pub realm: String,
    pub signer: NonceSigner,
    /// Accept answers without `qop` (RFC 2069 form; GStreamer sends them).
    pub allow_rfc2069: bool,
}

/// The result of checking one request's `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right: this user.
    Authenticated { username: String },
    /// 401 with fresh challenges; `stale` is set when only the nonce was too old.
    /// `reason` is for the log (never holds a credential).
    Challenge { stale: bool, reason: String },
    /// 400: the header is garbage.
    BadRequest { reason: String },
}

/// Whether the `uri` field names the request's resource: the same string, or the same
/// path (some clients send only the path, others the absolute URL).
fn uri_matches(field: &str, request_uri: &str) -> bool {
    fn path(u: &str) -> &str {
        let u = u.split(['?', '#']).next().unwrap_or(u);
        match u.find("://") {
            Some(i) => {
                let rest = &u[i + 3..];
                rest.find('/').map_or("/", |p| &rest[p..])
            }
            None => u,
        }
    }
    field == request_uri
        || path(field).trim_end_matches('/') == path(request_uri).trim_end_matches('/')
}

impl DigestServer {
    /// The `WWW-Authenticate` values of a 401, preferred first: SHA-256 then MD5 (RFC 7616
    /// §3.7), then Basic if `basic` (the caller decides: TLS and configured). `random`
    /// makes the nonce unique (both digest challenges share it).
    pub fn challenges(&self, now: u64, random: [u8; 8], stale: bool, basic: bool) -> Vec<String> {
        let nonce = self.signer.make(now, random);
        let stale = if stale { ", stale=true" } else { "" };
        let realm = quote(&self.realm);
        let mut v: Vec<String> = [Algorithm::Sha256, Algorithm::Md5]
            .into_iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{realm}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"{stale}",
                    a.name()
                )
            })
            .collect();
        if basic {
            v.push(format!("Basic realm=\"{realm}\", charset=\"UTF-8\""));
        }
        v
    }

    /// Checks one request. `lookup` gives a user's stored hashes; `counts` tracks nonce
    /// counts; `basic` says whether Basic is acceptable on this connection.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        authorization: &str,
        method: &str,
        request_uri: &str,
        now: u64,
        basic: bool,
        counts: &mut NonceCounts,
        lookup: impl Fn(&str) -> Option<StoredHashes>,
    ) -> Verdict {
        let challenge = |reason: String| Verdict::Challenge {
            stale: false,
            reason,
        };
        let auth = match Authorization::parse(authorization) {
            Ok(a) => a,
            Err(AuthorizationError::Missing(f)) => {
                return challenge(format!("Authorization lacks the {f} field"))
            }
            Err(AuthorizationError::Malformed(reason)) => return Verdict::BadRequest { reason },
        };
        let d = match auth {
            Authorization::Digest(d) => d,
            Authorization::Basic { username, password } => {
                if !basic {
                    return challenge(
                        "Basic is not accepted here (only over TLS, when configured)".into(),
                    );
                }
                let ok = lookup(&username).is_some_and(|h| {
                    h.md5.as_deref().is_some_and(|stored| {
                        ct_eq(
                            &ha1(Algorithm::Md5, &username, &self.realm, &password),
                            stored,
                        )
                    })
                });
                return if ok {
                    Verdict::Authenticated { username }
                } else {
                    challenge(format!(
                        "wrong password or unknown user {username:?} (Basic)"
                    ))
                };
            }
            Authorization::Other(s) => {
                return challenge(format!("unsupported scheme {s:?}"));
            }
        };
        if d.realm != self.realm {
            return challenge(format!("realm {:?} is not ours", d.realm));
        }
        let Some(alg) = Algorithm::parse(d.algorithm.as_deref()) else {
            return challenge(format!(
                "algorithm {:?} is not supported (MD5, SHA-256)",
                d.algorithm.as_deref().unwrap_or("")
            ));
        };
        if !uri_matches(&d.uri, request_uri) {
            return Verdict::BadRequest {
                reason: format!(
                    "the digest uri {:?} is not the request's {request_uri:?} (RFC 7616 §3.4.6)",
                    d.uri
                ),
            };
        }
        let state = self.signer.check(&d.nonce, now);
        let issued = match state {
            NonceState::Invalid => {
                return challenge("nonce not issued by this server (start)".into())
            }
            NonceState::Fresh { issued } | NonceState::Stale { issued } => issued,
        };
        if d.qop.is_none() && !self.allow_rfc2069 {
            return challenge("answer without qop (RFC 2069 form) is not accepted".into());
        }
        let Some(stored) = lookup(&d.username) else {
            return challenge(format!("wrong password or unknown user {:?}", d.username));
        };
        let Some(ha1) = stored.for_algorithm(alg) else {
            return challenge(format!(
                "user {:?} has no {} hash in the users file",
                d.username,
                alg.name()
            ));
        };
        let qop = match (&d.qop, &d.nc, &d.cnonce) {
            (Some(q), Some(nc), Some(c)) => Some((q.as_str(), nc.as_str(), c.as_str())),
            _ => None,
        };
        let want = digest_response(
            alg,
            &ha1.to_ascii_lowercase(),
            &d.nonce,
            method,
            &d.uri,
            qop,
        );
        if !ct_eq(&want, &d.response.to_ascii_lowercase()) {
            return challenge(format!("wrong password or unknown user {:?}", d.username));
        }
        if matches!(state, NonceState::Stale { .. }) {
            return Verdict::Challenge {
                stale: true,
                reason: "nonce expired".into(),
            };
        }
        if let Some(nc) = &d.nc {
            let nc = u32::from_str_radix(nc, 16).unwrap_or(0);
            if !counts.accept(&d.nonce, issued, nc, now, self.signer.lifetime_secs) {
                return challenge(format!(
                    "nonce count {nc:08x} already used with this nonce (replay)"
                ));
            }
        }
        Verdict::Authenticated {
            username: d.username,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn server(lifetime: u64) -> DigestServer {
        DigestServer {
            realm: "ipcamd".into(),
            signer: NonceSigner::new([7; 32], lifetime),
            allow_rfc2069: true,
        }
    }

    fn users(name: &str) -> Option<StoredHashes> {
        (name == "alice").then(|| StoredHashes {
            md5: Some(ha1(Algorithm::Md5, "alice", "ipcamd", "secret")),
            sha256: Some(ha1(Algorithm::Sha256, "alice", "ipcamd", "secret")),
        })
    }

    /// Builds a client answer with qop=auth.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        alg: Algorithm,
        user: &str,
        pass: &str,
        realm: &str,
        nonce: &str,
        method: &str,
        uri: &str,
        nc: u32,
    ) -> String {
        let h = ha1(alg, user, realm, pass);
        let nc = format!("{nc:08x}");
        let r = digest_response(alg, &h, nonce, method, uri, Some(("auth", &nc, "c0ffee")));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{r}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\"",
            alg.name()
        )
    }

    fn verify(s: &DigestServer, counts: &mut NonceCounts, auth: &str, now: u64) -> Verdict {
        s.verify(auth, "DESCRIBE", "rtsp://h/cam1", now, false, counts, users)
    }

    /// RFC 7616 §3.9.1: the MD5 and SHA-256 examples.
    #[test]
    fn rfc7616_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, want) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let h = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let r = digest_response(
                alg,
                &h,
                nonce,
                "GET",
                "/dir/index.html",
                Some(("auth", "00000001", cnonce)),
            );
            assert_eq!(r, want, "{alg:?}");
        }
        // RFC 2617 §3.5 (MD5, "Circle Of Life").
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = digest_response(
            Algorithm::Md5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(("auth", "00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        assert_eq!(
            hash_hex(Algorithm::Md5, b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hash_hex(Algorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_rfc7616_authorization() {
        let v = r#"Digest username="Mufasa",
            realm="http-auth@example.org",
            uri="/dir/index.html",
            algorithm=SHA-256,
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc=00000001,
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop=auth,
            response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let Ok(Authorization::Digest(d)) = Authorization::parse(v) else {
            panic!("not parsed");
        };
        assert_eq!(d.username, "Mufasa");
        assert_eq!(d.uri, "/dir/index.html");
        assert_eq!(d.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(d.nc.as_deref(), Some("00000001"));
        assert_eq!(
            d.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        // Debug never shows the response.
        assert!(!format!("{:?}", Authorization::Digest(d)).contains("753927"));
    }

    #[test]
    fn nonce_sign_and_check() {
        let s = NonceSigner::new([1; 32], 30);
        let n = s.make(NOW, [9; 8]);
        assert_eq!(n.len(), 64);
        assert_eq!(s.check(&n, NOW), NonceState::Fresh { issued: NOW });
        assert_eq!(s.check(&n, NOW + 30), NonceState::Fresh { issued: NOW });
        assert_eq!(s.check(&n, NOW + 31), NonceState::Stale { issued: NOW });
        // From the future, another secret, tampered, garbage.
        assert_eq!(s.check(&n, NOW - 60), NonceState::Invalid);
        assert_eq!(
            NonceSigner::new([2; 32], 30).check(&n, NOW),
            NonceState::Invalid
        );
        let mut t = n.clone().into_bytes();
        t[3] = if t[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            s.check(&String::from_utf8(t).unwrap(), NOW),
            NonceState::Invalid
        );
        for g in ["", "zz", "abc", "é", &n[..62]] {
            assert_eq!(s.check(g, NOW), NonceState::Invalid, "{g:?}");
        }
        // Different random, different nonce.
        assert_ne!(n, s.make(NOW, [8; 8]));
    }

    #[test]
    fn right_password_both_algorithms_then_each_nc_once() {
        let s = server(60);
        let mut c = NonceCounts::default();
        let nonce = s.signer.make(NOW, [1; 8]);
        for (i, alg) in [Algorithm::Md5, Algorithm::Sha256].into_iter().enumerate() {
            let nonce = s.signer.make(NOW, [i as u8 + 2; 8]);
            let a = answer(
                alg,
                "alice",
                "secret",
                "ipcamd",
                &nonce,
                "DESCRIBE",
                "rtsp://h/cam1",
                1,
            );
            assert_eq!(
                verify(&s, &mut c, &a, NOW + 1),
                Verdict::Authenticated {
                    username: "alice".into()
                },
                "{alg:?}"
            );
        }
        let a1 = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(matches!(
            verify(&s, &mut c, &a1, NOW),
            Verdict::Authenticated { .. }
        ));
        // The same request again: replay.
        let v = verify(&s, &mut c, &a1, NOW);
        assert!(
            matches!(&v, Verdict::Challenge { stale: false, reason } if reason.contains("replay")),
            "{v:?}"
        );
        let a2 = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            2,
        );
        assert!(matches!(
            verify(&s, &mut c, &a2, NOW),
            Verdict::Authenticated { .. }
        ));
        // Going back to a count already used is a replay too.
        assert!(matches!(
            verify(&s, &mut c, &a1, NOW),
            Verdict::Challenge { .. }
        ));
    }

    /// A browser's parallel requests on one nonce arrive out of order: each count is
    /// accepted once, within the window below the highest.
    #[test]
    fn nonce_counts_out_of_order_within_the_window_once_each() {
        let mut c = NonceCounts::default();
        let ok = |c: &mut NonceCounts, nc| c.accept("n", NOW, nc, NOW, 60);
        assert!(ok(&mut c, 1));
        assert!(ok(&mut c, 4));
        assert!(ok(&mut c, 3));
        assert!(ok(&mut c, 2));
        for nc in 1..=4 {
            assert!(!ok(&mut c, nc), "{nc} twice");
        }
        assert!(ok(&mut c, 100));
        // 100 - 64 = 36 is out of the window, 37 is in it (once).
        assert!(!ok(&mut c, 36));
        assert!(ok(&mut c, 37));
        assert!(!ok(&mut c, 37));
        // A jump of the window's size or more forgets what was below.
        assert!(ok(&mut c, 100 + NC_WINDOW));
        assert!(!ok(&mut c, 100));
        // Just below the new highest: in the window, not seen yet.
        assert!(ok(&mut c, 100 + NC_WINDOW - 1));
        assert!(!ok(&mut c, 0));
    }

    #[test]
    fn wrong_things_get_401_or_400() {
        let s = server(60);
        let mut c = NonceCounts::default();
        let nonce = s.signer.make(NOW, [1; 8]);
        let ch = |v: Verdict| matches!(v, Verdict::Challenge { stale: false, .. });
        // Wrong password, unknown user, wrong realm.
        let a = answer(
            Algorithm::Md5,
            "alice",
            "guess",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(ch(verify(&s, &mut c, &a, NOW)));
        let a = answer(
            Algorithm::Md5,
            "bob",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(ch(verify(&s, &mut c, &a, NOW)));
        let a = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "other",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(ch(verify(&s, &mut c, &a, NOW)));
        // Computed for another method.
        let a = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "PLAY",
            "rtsp://h/cam1",
            1,
        );
        assert!(ch(verify(&s, &mut c, &a, NOW)));
        // A nonce we never issued.
        let forged = NonceSigner::new([8; 32], 60).make(NOW, [1; 8]);
        let a = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &forged,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(ch(verify(&s, &mut c, &a, NOW)));
        // Another resource: 400 (RFC 7616 §3.4.6).
        let a = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam2",
            1,
        );
        assert!(matches!(
            verify(&s, &mut c, &a, NOW),
            Verdict::BadRequest { .. }
        ));
        // Missing fields: 401 naming the field.
        let full = answer(
            Algorithm::Md5,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        for field in ["username", "realm", "nonce", "uri", "response"] {
            let parts: Vec<&str> = full
                .trim_start_matches("Digest ")
                .split(", ")
                .filter(|p| !p.starts_with(&format!("{field}=")))
                .collect();
            let v = verify(&s, &mut c, &format!("Digest {}", parts.join(", ")), NOW);
            assert!(
                matches!(&v, Verdict::Challenge { reason, .. } if reason.contains(field)),
                "{field}: {v:?}"
            );
        }
        // qop without cnonce: missing -> 401; garbage nc, unknown qop, non-base64 Basic -> 400.
        let v = verify(&s, &mut c, &full.replace(", cnonce=\"c0ffee\"", ""), NOW);
        assert!(ch(v));
        for bad in [
            full.replace("nc=00000001", "nc=xyz"),
            full.replace("qop=auth", "qop=auth-int"),
            "Basic !!!".to_owned(),
            "".to_owned(),
        ] {
            assert!(
                matches!(verify(&s, &mut c, &bad, NOW), Verdict::BadRequest { .. }),
                "{bad}"
            );
        }
        // Unknown algorithm and scheme.
        assert!(ch(verify(
            &s,
            &mut c,
            &full.replace("algorithm=MD5", "algorithm=MD5-sess"),
            NOW
        )));
        assert!(ch(verify(&s, &mut c, "Bearer abc", NOW)));
        // Nothing was recorded by the failures: the right answer still works with nc=1.
        assert!(matches!(
            verify(&s, &mut c, &full, NOW),
            Verdict::Authenticated { .. }
        ));
    }

    #[test]
    fn stale_nonce() {
        let s = server(10);
        let mut c = NonceCounts::default();
        let nonce = s.signer.make(NOW, [1; 8]);
        let a = answer(
            Algorithm::Sha256,
            "alice",
            "secret",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert_eq!(
            verify(&s, &mut c, &a, NOW + 11),
            Verdict::Challenge {
                stale: true,
                reason: "nonce expired".into()
            }
        );
        // Stale only for a right answer: a wrong password on an old nonce is a plain 401.
        let a = answer(
            Algorithm::Sha256,
            "alice",
            "nope",
            "ipcamd",
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            1,
        );
        assert!(matches!(
            verify(&s, &mut c, &a, NOW + 11),
            Verdict::Challenge { stale: false, .. }
        ));
        let ch = s.challenges(NOW + 11, [3; 8], true, false);
        assert_eq!(ch.len(), 2);
        assert!(
            ch[0].contains("algorithm=SHA-256") && ch[0].ends_with("stale=true"),
            "{ch:?}"
        );
        assert!(ch[1].contains("algorithm=MD5") && ch[1].contains("qop=\"auth\""));
    }

    #[test]
    fn rfc2069_form_and_basic() {
        let mut s = server(60);
        let mut c = NonceCounts::default();
        let nonce = s.signer.make(NOW, [1; 8]);
        let h = ha1(Algorithm::Md5, "alice", "ipcamd", "secret");
        let r = digest_response(
            Algorithm::Md5,
            &h,
            &nonce,
            "DESCRIBE",
            "rtsp://h/cam1",
            None,
        );
        let a = format!(
            "Digest username=\"alice\", realm=\"ipcamd\", nonce=\"{nonce}\", uri=\"rtsp://h/cam1\", response=\"{r}\""
        );
        assert!(matches!(
            verify(&s, &mut c, &a, NOW),
            Verdict::Authenticated { .. }
        ));
        s.allow_rfc2069 = false;
        assert!(matches!(
            verify(&s, &mut c, &a, NOW),
            Verdict::Challenge { .. }
        ));
        // Basic: only when allowed.
        let b = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:secret")
        );
        assert!(matches!(
            verify(&s, &mut c, &b, NOW),
            Verdict::Challenge { .. }
        ));
        let ok = s.verify(&b, "GET", "/", NOW, true, &mut c, users);
        assert_eq!(
            ok,
            Verdict::Authenticated {
                username: "alice".into()
            }
        );
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:nope")
        );
        assert!(matches!(
            s.verify(&wrong, "GET", "/", NOW, true, &mut c, users),
            Verdict::Challenge { .. }
        ));
        assert!(s.challenges(NOW, [0; 8], false, true)[2].starts_with("Basic realm=\"ipcamd\""));
        // Debug hides the Basic password.
        let parsed = Authorization::parse(&b).unwrap();
        assert!(!format!("{parsed:?}").contains("secret"));
    }

    #[test]
    fn uri_forms() {
        assert!(uri_matches("rtsp://h:554/cam1/", "rtsp://h:554/cam1"));
        assert!(uri_matches("/cam1", "rtsp://h:554/cam1"));
        assert!(uri_matches("/api/x?a=1", "/api/x?a=1"));
        assert!(!uri_matches("rtsp://h/cam2", "rtsp://h/cam1"));
    }

    #[test]
    fn nonce_counts_stay_bounded() {
        let mut c = NonceCounts::new(3);
        for i in 0..10u64 {
            assert!(c.accept(&format!("n{i}"), NOW + i, 1, NOW + i, 1000));
            assert!(c.len() <= 3);
        }
        // The newest survive.
        assert!(!c.accept("n9", NOW + 9, 1, NOW + 9, 1000));
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert_eq!(Role::parse(" Operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
