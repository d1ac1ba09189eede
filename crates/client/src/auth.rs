//! HTTP authentication as RTSP borrows it (RFC 2326 §12.5 → RFC 2617; RFC 7616 for the
//! digest scheme's current text): `401 Unauthorized` with `WWW-Authenticate`, answered by
//! repeating the request with `Authorization`.
//!
//! Implements the Digest scheme with `algorithm=MD5` (or absent), `MD5-sess` and `SHA-256`
//! (preferred when offered; hashing and header syntax shared with the server side in
//! `ipcamd_proto::auth`), with
//! `qop=auth` (nonce count and client nonce) when the server offers it and the RFC 2069 form
//! when it offers no qop; and the Basic scheme (RFC 7617) when that is all the server offers.
//! A `stale=true` challenge means "same credentials, new nonce": the caller retries once.
//!
//! Left out: `-sess` variants other than MD5 (ONVIF devices use MD5), `qop=auth-int`
//! (bodies are not hashed), `userhash`, the `Authentication-Info` header (the next nonce is
//! taken from the next 401), proxy authentication (407).
//!
//! Passwords live only in [`Credentials`], whose `Debug` hides them; nothing here logs.

use std::fmt;

use base64::Engine as _;
use ipcamd_proto::auth::{hash_hex, parse_challenge_list, Algorithm};

/// A user name and password, from the URL's userinfo.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Digest(DigestChallenge),
    /// A scheme this client does not speak (its name as sent).
    Other(String),
}

/// The parameters of a `Digest` challenge (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// As sent (`MD5`, `MD5-sess`, `SHA-256`...); `None` means MD5.
    pub algorithm: Option<String>,
    /// The `qop` options offered, lower-cased (`auth`, `auth-int`); empty: RFC 2069 mode.
    pub qop: Vec<String>,
    pub stale: bool,
}

impl DigestChallenge {
    /// Whether this client can answer it: MD5, MD5-sess or SHA-256.
    pub fn is_supported(&self) -> bool {
        match &self.algorithm {
            None => true,
            Some(a) => {
                a.eq_ignore_ascii_case("MD5")
                    || a.eq_ignore_ascii_case("MD5-sess")
                    || a.eq_ignore_ascii_case("SHA-256")
            }
        }
    }

    fn hash(&self) -> Algorithm {
        match &self.algorithm {
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            _ => Algorithm::Md5,
        }
    }

    fn is_sess(&self) -> bool {
        self.algorithm
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("MD5-sess"))
    }

    fn offers_auth(&self) -> bool {
        self.qop.iter().any(|q| q == "auth")
    }
}

/// Parses every challenge of one `WWW-Authenticate` header value. RFC 7235 §4.1 allows
/// several challenges in one value (`Digest realm="a", nonce="b", Basic realm="a"`): a token
/// not followed by `=` starts a new challenge.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    parse_challenge_list(value)
        .into_iter()
        .map(|(scheme, params)| {
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if scheme.eq_ignore_ascii_case("Digest") {
                Challenge::Digest(DigestChallenge {
                    realm: get("realm").unwrap_or_default(),
                    nonce: get("nonce").unwrap_or_default(),
                    opaque: get("opaque"),
                    algorithm: get("algorithm"),
                    qop: get("qop")
                        .map(|q| {
                            q.split(',')
                                .map(|s| s.trim().to_ascii_lowercase())
                                .filter(|s| !s.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                    stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
                })
            } else if scheme.eq_ignore_ascii_case("Basic") {
                Challenge::Basic {
                    realm: get("realm").unwrap_or_default(),
                }
            } else {
                Challenge::Other(scheme)
            }
        })
        .collect()
}

/// Lower-case hex MD5 of `data`.
#[cfg(test)]
fn md5_hex(data: &str) -> String {
    hash_hex(Algorithm::Md5, data.as_bytes())
}

/// The digest `response` value (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1) for MD5/MD5-sess/SHA-256.
/// `qop` is `Some(("auth", nc, cnonce))` or `None` for the RFC 2069 form.
pub fn digest_response(
    challenge: &DigestChallenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    qop: Option<(&str, u32, &str)>,
) -> String {
    let alg = challenge.hash();
    let h = |s: String| hash_hex(alg, s.as_bytes());
    let mut ha1 = h(format!(
        "{}:{}:{}",
        credentials.username, challenge.realm, credentials.password
    ));
    if challenge.is_sess() {
        let cnonce = qop.map_or("", |(_, _, c)| c);
        ha1 = h(format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = h(format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => h(format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}",
            challenge.nonce
        )),
        None => h(format!("{ha1}:{}:{ha2}", challenge.nonce)),
    }
}

/// Answers the challenges of one server for one set of credentials, request after request
/// (the nonce count goes up with each use of the same nonce).
#[derive(Debug, Clone)]
pub struct Authenticator {
    credentials: Credentials,
    scheme: Scheme,
}

#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Digest { challenge: DigestChallenge, nc: u32 },
}

/// Why no [`Authenticator`] could be built from a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSelectError {
    /// The 401 had no `WWW-Authenticate` header.
    NoChallenge,
    /// Only schemes or algorithms this client does not speak (listed).
    Unsupported(String),
}

impl Authenticator {
    /// Picks the best challenge among all `WWW-Authenticate` values of a 401: Digest
    /// (MD5/MD5-sess) first, Basic if that is all there is.
    pub fn from_challenges<'a>(
        credentials: Credentials,
        values: impl Iterator<Item = &'a str>,
    ) -> Result<Authenticator, AuthSelectError> {
        let all: Vec<Challenge> = values.flat_map(parse_challenges).collect();
        if all.is_empty() {
            return Err(AuthSelectError::NoChallenge);
        }
        if let Some(d) = all.iter().find_map(|c| match c {
            Challenge::Digest(d) if d.is_supported() => Some(d.clone()),
            _ => None,
        }) {
            return Ok(Authenticator {
                credentials,
                scheme: Scheme::Digest {
                    challenge: d,
                    nc: 0,
                },
            });
        }
        if all.iter().any(|c| matches!(c, Challenge::Basic { .. })) {
            return Ok(Authenticator {
                credentials,
                scheme: Scheme::Basic,
            });
        }
        let names: Vec<String> = all
            .iter()
            .map(|c| match c {
                Challenge::Digest(d) => format!(
                    "Digest algorithm={}",
                    d.algorithm.as_deref().unwrap_or("MD5")
                ),
                Challenge::Basic { .. } => "Basic".to_owned(),
                Challenge::Other(s) => s.clone(),
            })
            .collect();
        Err(AuthSelectError::Unsupported(names.join(", ")))
    }

    /// `true` if this is the digest scheme.
    pub fn is_digest(&self) -> bool {
        matches!(self.scheme, Scheme::Digest { .. })
    }

    /// The `Authorization` value for a request. `cnonce` is the client nonce to use (random,
    /// from the caller, so that this stays deterministic for tests).
    pub fn authorization(&mut self, method: &str, uri: &str, cnonce: &str) -> String {
        match &mut self.scheme {
            Scheme::Basic => {
                let raw = format!(
                    "{}:{}",
                    self.credentials.username, self.credentials.password
                );
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Scheme::Digest { challenge, nc } => {
                *nc += 1;
                let qop = challenge.offers_auth().then_some(("auth", *nc, cnonce));
                let response = digest_response(challenge, &self.credentials, method, uri, qop);
                let mut v = format!(
                    "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\"",
                    quote(&self.credentials.username),
                    quote(&challenge.realm),
                    quote(&challenge.nonce),
                    quote(uri),
                    response
                );
                if let Some(a) = &challenge.algorithm {
                    v.push_str(&format!(", algorithm={a}"));
                }
                if let Some(o) = &challenge.opaque {
                    v.push_str(&format!(", opaque=\"{}\"", quote(o)));
                }
                if let Some((qop, nc, cnonce)) = qop {
                    v.push_str(&format!(", qop={qop}, nc={nc:08x}, cnonce=\"{cnonce}\""));
                }
                v
            }
        }
    }

    /// Takes a new challenge from a later 401 with `stale=true`: same credentials, new
    /// nonce. Returns `false` if the 401 holds no usable stale digest challenge (then the
    /// credentials were rejected).
    pub fn refresh_stale<'a>(&mut self, values: impl Iterator<Item = &'a str>) -> bool {
        let Scheme::Digest { challenge, nc } = &mut self.scheme else {
            return false;
        };
        let fresh = values.flat_map(parse_challenges).find_map(|c| match c {
            Challenge::Digest(d) if d.stale && d.is_supported() => Some(d),
            _ => None,
        });
        match fresh {
            Some(d) => {
                *challenge = d;
                *nc = 0;
                true
            }
            None => false,
        }
    }
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        }
    }

    /// RFC 2617 §3.5: the worked example.
    #[test]
    fn rfc2617_example_response() {
        let header = r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let challenges = parse_challenges(header);
        let [Challenge::Digest(d)] = challenges.as_slice() else {
            panic!("{challenges:?}");
        };
        assert_eq!(d.realm, "testrealm@host.com");
        assert_eq!(d.qop, ["auth", "auth-int"]);
        let response = digest_response(
            d,
            &mufasa(),
            "GET",
            "/dir/index.html",
            Some(("auth", 1, "0a4f113b")),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");

        let mut a = Authenticator::from_challenges(mufasa(), [header].into_iter()).unwrap();
        let v = a.authorization("GET", "/dir/index.html", "0a4f113b");
        assert!(v.starts_with("Digest username=\"Mufasa\", realm=\"testrealm@host.com\""));
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(
            v.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""),
            "{v}"
        );
        assert!(
            v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{v}"
        );
        assert!(!v.contains("Circle"));
        // The nonce count goes up.
        assert!(a.authorization("GET", "/", "x").contains("nc=00000002"));
    }

    /// RFC 2069 form (no qop), as many cameras send: HA1:nonce:HA2.
    #[test]
    fn digest_without_qop() {
        let d = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            ..Default::default()
        };
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("DESCRIBE:rtsp://h/x");
        let want = md5_hex(&format!("{ha1}:{}:{ha2}", d.nonce));
        assert_eq!(
            digest_response(&d, &mufasa(), "DESCRIBE", "rtsp://h/x", None),
            want
        );
        // Known MD5 vector (RFC 1321).
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn picks_digest_over_basic_and_basic_alone() {
        let vals = [
            r#"Basic realm="cam""#,
            r#"Digest realm="cam", nonce="n1", algorithm=MD5"#,
        ];
        let a = Authenticator::from_challenges(mufasa(), vals.into_iter()).unwrap();
        assert!(a.is_digest());
        let mut b =
            Authenticator::from_challenges(mufasa(), [r#"Basic realm="cam""#].into_iter()).unwrap();
        assert_eq!(
            b.authorization("DESCRIBE", "rtsp://h/", "c"),
            "Basic TXVmYXNhOkNpcmNsZSBPZiBMaWZl"
        );
        // Two challenges in one header value.
        let both = parse_challenges(r#"Digest realm="r", nonce="n", Basic realm="r""#);
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(matches!(both[1], Challenge::Basic { .. }));
        // Unsupported only.
        let e = Authenticator::from_challenges(
            mufasa(),
            [r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#].into_iter(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            AuthSelectError::Unsupported("Digest algorithm=SHA-512-256".into())
        );
        assert_eq!(
            Authenticator::from_challenges(mufasa(), std::iter::empty()).unwrap_err(),
            AuthSelectError::NoChallenge
        );
    }

    #[test]
    fn stale_nonce_refresh() {
        let mut a = Authenticator::from_challenges(
            mufasa(),
            [r#"Digest realm="r", nonce="old", qop="auth""#].into_iter(),
        )
        .unwrap();
        a.authorization("PLAY", "rtsp://h/", "c");
        assert!(!a.refresh_stale([r#"Digest realm="r", nonce="new""#].into_iter()));
        assert!(a.refresh_stale([r#"Digest realm="r", nonce="new", stale=TRUE"#].into_iter()));
        let v = a.authorization("PLAY", "rtsp://h/", "c");
        assert!(v.contains("nonce=\"new\"") && !v.contains("qop"), "{v}");
    }

    #[test]
    fn credentials_debug_hides_password() {
        assert!(!format!("{:?}", mufasa()).contains("Circle"));
    }
}
