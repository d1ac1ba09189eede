//! WS-Security UsernameToken Profile 1.0 (OASIS, 2004) with `PasswordDigest`, as ONVIF Core
//! §5.12.2 requires: `Base64(SHA1(nonce + created + password))`, replay-protected by the
//! nonce and a time window around `Created`. A pure function: the clock ("now") and the
//! nonce cache are passed in. The client side builds the same token
//! ([`security_header`]) from a nonce and a time it is handed.
//!
//! Also the ONVIF access classes (Core §5.9.4) and the [`SoapAuth`] trait through which the
//! server supplies its users. Left out: `PasswordText` (it would send the password in the
//! clear over plain HTTP; refused with a reason naming PasswordDigest).

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use ipcamd_proto::time::{parse_utc, UnixMicros};
use sha1::{Digest, Sha1};

use crate::soap::Fault;
pub use crate::soap::UsernameToken;
use crate::xml::escape;

pub const PASSWORD_DIGEST: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";

/// Why a UsernameToken was refused (never says whether the user exists).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsseError {
    #[error("the UsernameToken uses Password Type {0:?}; only PasswordDigest is accepted")]
    NotDigest(String),
    #[error("the UsernameToken has no Nonce or it is not base64")]
    BadNonce,
    #[error("the UsernameToken Created {0:?} is not a UTC time like 2026-11-22T01:00:00Z")]
    BadCreated(String),
    #[error("the UsernameToken Created time is {0} s away from the device clock (limit {1} s): synchronise the client with GetSystemDateAndTime")]
    Expired(i64, i64),
    #[error("the UsernameToken nonce was already used")]
    Replayed,
    #[error("wrong user name or password")]
    WrongCredentials,
}

/// Nonces seen within the time window, to refuse a replayed token. Bounded: the oldest
/// entries go first once `capacity` is reached.
#[derive(Debug)]
pub struct NonceCache {
    seen: HashMap<String, UnixMicros>,
    order: VecDeque<(String, UnixMicros)>,
    capacity: usize,
}

impl NonceCache {
    pub fn new(capacity: usize) -> NonceCache {
        NonceCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `nonce`; false if it was already seen since `now - window`.
    fn insert(&mut self, nonce: &str, now: UnixMicros, window_us: i64) -> bool {
        let oldest_kept = now.saturating_sub(window_us);
        while let Some((n, t)) = self.order.front() {
            if *t >= oldest_kept {
                break;
            }
            self.seen.remove(n);
            self.order.pop_front();
        }
        if self.seen.contains_key(nonce) {
            return false;
        }
        // Room for the new nonce, made only now: evicting before the check above would
        // forget one nonce too many (with a capacity of 1, a token replayed at once).
        while self.order.len() >= self.capacity {
            let Some((n, _)) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&n);
        }
        self.seen.insert(nonce.to_owned(), now);
        self.order.push_back((nonce.to_owned(), now));
        true
    }
}

/// `Base64(SHA1(nonce + created + password))` with the raw (decoded) nonce.
pub fn password_digest(nonce_raw: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce_raw);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// What a client puts in its UsernameToken. The caller draws the nonce (16 random bytes
/// are customary) and reads the clock: `created` is the device's UTC time as xs:dateTime,
/// e.g. `2026-11-22T01:00:00Z` (clients take the device clock from GetSystemDateAndTime,
/// as the device refuses a token whose Created is far from its own time).
#[derive(Clone, Copy)]
pub struct TokenParams<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub nonce: &'a [u8],
    pub created: &'a str,
}

impl std::fmt::Debug for TokenParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenParams")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("created", &self.created)
            .finish()
    }
}

/// The client side: the `wsse:Security` SOAP header block holding a PasswordDigest
/// UsernameToken for `t` (its own namespace declarations, so it fits any envelope).
pub fn security_header(t: &TokenParams) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "<wsse:Security xmlns:wsse=\"{}\" xmlns:wsu=\"{WSU}\"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type=\"{PASSWORD_DIGEST}\">{}</wsse:Password><wsse:Nonce EncodingType=\"{BASE64_BINARY}\">{}</wsse:Nonce><wsu:Created>{}</wsu:Created></wsse:UsernameToken></wsse:Security>",
        crate::ns::WSSE,
        escape(t.username),
        password_digest(t.nonce, t.created, t.password),
        b64.encode(t.nonce),
        escape(t.created),
    )
}

const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// Checks `token` against `password`: digest, `Created` within `window_s` of `now` either
/// way, nonce not seen before (recorded in `nonces` only when everything else is right).
pub fn verify(
    token: &UsernameToken,
    password: &str,
    now: UnixMicros,
    window_s: i64,
    nonces: &mut NonceCache,
) -> Result<(), WsseError> {
    if token.password_type != PASSWORD_DIGEST {
        return Err(WsseError::NotDigest(token.password_type.clone()));
    }
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(token.nonce.as_bytes())
        .map_err(|_| WsseError::BadNonce)?;
    if nonce.is_empty() {
        return Err(WsseError::BadNonce);
    }
    let created =
        parse_utc(&token.created).ok_or_else(|| WsseError::BadCreated(token.created.clone()))?;
    let skew = (now - created) / 1_000_000;
    if skew.abs() > window_s {
        return Err(WsseError::Expired(skew, window_s));
    }
    let expected = password_digest(&nonce, &token.created, password);
    // Compare without an early exit (the length is fixed: 28 base64 chars).
    let same = expected.len() == token.password.len()
        && expected
            .bytes()
            .zip(token.password.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(WsseError::WrongCredentials);
    }
    if !nonces.insert(&token.nonce, now, window_s * 2 * 1_000_000) {
        return Err(WsseError::Replayed);
    }
    Ok(())
}

/// ONVIF user levels (Core §5.9.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    Operator,
    Administrator,
}

impl Role {
    /// The `tt:UserLevel` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Operator => "Operator",
            Role::Administrator => "Administrator",
        }
    }
}

/// Access classes of the ONVIF operations (Core §5.9.4.2), weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessClass {
    /// Anyone, before authentication (GetSystemDateAndTime, GetServices, ...).
    PreAuth,
    /// Any authenticated user: reading media configuration and the system.
    ReadMedia,
    ReadSystem,
    /// Administrators only (GetUsers).
    ReadSystemSecret,
    /// Operators and administrators: changing what the device does (encoder settings,
    /// recording job modes) and moving things (PTZ moves and presets).
    Actuate,
    /// Administrators only: changing the system (users, scopes, host name, clock).
    WriteSystem,
}

impl AccessClass {
    /// Whether `role` may call an operation of this class (the default access policy).
    pub fn allows(self, role: Role) -> bool {
        match self {
            AccessClass::PreAuth | AccessClass::ReadMedia | AccessClass::ReadSystem => true,
            AccessClass::Actuate => role >= Role::Operator,
            AccessClass::ReadSystemSecret | AccessClass::WriteSystem => role == Role::Administrator,
        }
    }
}

/// The server's users, as the SOAP layer needs them.
pub trait SoapAuth {
    /// False when no users are configured: every operation is then allowed to anyone.
    fn enabled(&self) -> bool;
    /// The user's WS-Security password (None: the user cannot use WS-Security) and role.
    fn user(&self, name: &str) -> Option<(Option<String>, Role)>;
    /// Every user name and role (for GetUsers).
    fn users(&self) -> Vec<(String, Role)>;
}

/// No users: everything is allowed (today's default).
pub struct OpenAuth;

impl SoapAuth for OpenAuth {
    fn enabled(&self) -> bool {
        false
    }
    fn user(&self, _: &str) -> Option<(Option<String>, Role)> {
        None
    }
    fn users(&self) -> Vec<(String, Role)> {
        Vec::new()
    }
}

/// Decides whether a request may run: `http_user` is a user the HTTP layer already
/// authenticated (HTTP Digest), if any. Errors are `ter:NotAuthorized` faults.
pub fn authorize(
    auth: &dyn SoapAuth,
    class: AccessClass,
    token: Option<&UsernameToken>,
    http_user: Option<(&str, Role)>,
    now: UnixMicros,
    nonces: &mut NonceCache,
) -> Result<Option<(String, Role)>, Fault> {
    if !auth.enabled() || class == AccessClass::PreAuth {
        return Ok(None);
    }
    let who = if let Some(t) = token {
        let Some((Some(password), role)) = auth.user(&t.username) else {
            return Err(Fault::not_authorized(
                WsseError::WrongCredentials.to_string(),
            ));
        };
        verify(t, &password, now, WINDOW_S, nonces)
            .map_err(|e| Fault::not_authorized(e.to_string()))?;
        (t.username.clone(), role)
    } else if let Some((name, role)) = http_user {
        (name.to_owned(), role)
    } else {
        return Err(Fault::not_authorized(
            "this operation needs credentials: a WS-Security UsernameToken (PasswordDigest) or HTTP Digest",
        ));
    };
    if !class.allows(who.1) {
        return Err(Fault::not_authorized(format!(
            "user {:?} ({}) may not call this operation",
            who.0,
            who.1.as_str()
        )));
    }
    Ok(Some(who))
}

/// Accepted distance between a token's Created and the device clock, seconds.
pub const WINDOW_S: i64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the ONVIF Application Programmer's Guide (§6.1.1.3).
    fn guide_token() -> UsernameToken {
        UsernameToken {
            username: "user".into(),
            password: "tuOSpGlFlIXsozq4HFNeeGeFLEI=".into(),
            password_type: PASSWORD_DIGEST.into(),
            nonce: "LKqI6G/AikKCQrN0zqZFlg==".into(),
            created: "2010-09-16T07:50:45Z".into(),
        }
    }

    fn at(s: &str) -> UnixMicros {
        parse_utc(s).unwrap()
    }

    #[test]
    fn known_vector() {
        let nonce = base64::engine::general_purpose::STANDARD
            .decode("LKqI6G/AikKCQrN0zqZFlg==")
            .unwrap();
        assert_eq!(
            password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
        let mut c = NonceCache::new(100);
        assert_eq!(
            verify(
                &guide_token(),
                "userpassword",
                at("2010-09-16T07:51:00Z"),
                300,
                &mut c
            ),
            Ok(())
        );
    }

    /// The building side gives the guide's digest and passes the verifying side.
    #[test]
    fn built_header_verifies() {
        let nonce = base64::engine::general_purpose::STANDARD
            .decode("LKqI6G/AikKCQrN0zqZFlg==")
            .unwrap();
        let params = TokenParams {
            username: "user",
            password: "userpassword",
            nonce: &nonce,
            created: "2010-09-16T07:50:45Z",
        };
        assert!(!format!("{params:?}").contains("userpassword"));
        let header = security_header(&params);
        assert!(
            header.contains(">tuOSpGlFlIXsozq4HFNeeGeFLEI=<"),
            "{header}"
        );
        let envelope = format!(
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header>{header}</s:Header><s:Body><GetProfiles xmlns=\"http://www.onvif.org/ver10/media/wsdl\"/></s:Body></s:Envelope>"
        );
        let token = crate::soap::parse_request(envelope.as_bytes())
            .unwrap()
            .username_token
            .unwrap();
        assert_eq!(token, guide_token());
        let mut c = NonceCache::new(10);
        assert_eq!(
            verify(
                &token,
                "userpassword",
                at("2010-09-16T07:51:00Z"),
                300,
                &mut c
            ),
            Ok(())
        );
    }

    #[test]
    fn refusals() {
        let now = at("2010-09-16T07:51:00Z");
        let mut c = NonceCache::new(100);
        assert_eq!(
            verify(&guide_token(), "wrong", now, 300, &mut c),
            Err(WsseError::WrongCredentials)
        );
        // A wrong password does not burn the nonce; the right one then passes once.
        assert_eq!(
            verify(&guide_token(), "userpassword", now, 300, &mut c),
            Ok(())
        );
        assert_eq!(
            verify(&guide_token(), "userpassword", now, 300, &mut c),
            Err(WsseError::Replayed)
        );
        let mut c = NonceCache::new(100);
        assert!(matches!(
            verify(
                &guide_token(),
                "userpassword",
                at("2010-09-16T08:51:00Z"),
                300,
                &mut c
            ),
            Err(WsseError::Expired(3615, 300))
        ));
        let mut t = guide_token();
        t.password_type = "...#PasswordText".into();
        assert!(matches!(
            verify(&t, "userpassword", now, 300, &mut c),
            Err(WsseError::NotDigest(_))
        ));
        let mut t = guide_token();
        t.nonce = "***".into();
        assert_eq!(
            verify(&t, "userpassword", now, 300, &mut c),
            Err(WsseError::BadNonce)
        );
        let mut t = guide_token();
        t.created = "yesterday".into();
        assert!(matches!(
            verify(&t, "userpassword", now, 300, &mut c),
            Err(WsseError::BadCreated(_))
        ));
    }

    #[test]
    fn nonce_cache_is_bounded() {
        let mut c = NonceCache::new(2);
        assert!(c.insert("a", 0, 10));
        assert!(c.insert("b", 1, 10));
        assert!(c.insert("c", 2, 10));
        assert!(c.seen.len() <= 2);
        // Expired entries go.
        assert!(c.insert("a", 100, 10));
    }

    /// Found by the `wsse` fuzz target (fuzz/seeds/wsse/regression-replay-cache-of-one):
    /// the cache made room before looking the nonce up, so it remembered one nonce fewer
    /// than its capacity, and a cache of 1 let a token through twice in a row.
    #[test]
    fn nonce_cache_holds_its_capacity() {
        let mut c = NonceCache::new(1);
        assert!(c.insert("a", 0, 10));
        assert!(!c.insert("a", 0, 10), "replayed at once");
        let mut c = NonceCache::new(2);
        assert!(c.insert("a", 0, 10));
        assert!(c.insert("b", 1, 10));
        assert!(!c.insert("a", 2, 10) && !c.insert("b", 2, 10));
        // A third nonce pushes out the oldest only.
        assert!(c.insert("c", 3, 10));
        assert!(!c.insert("b", 3, 10) && !c.insert("c", 3, 10));
        assert!(c.insert("a", 3, 10));
        assert_eq!((c.seen.len(), c.order.len()), (2, 2));
        // Times far from zero do not overflow.
        assert!(c.insert("d", i64::MIN, i64::MAX));
    }

    pub struct OneUser;
    impl SoapAuth for OneUser {
        fn enabled(&self) -> bool {
            true
        }
        fn user(&self, name: &str) -> Option<(Option<String>, Role)> {
            (name == "user").then(|| (Some("userpassword".to_owned()), Role::User))
        }
        fn users(&self) -> Vec<(String, Role)> {
            vec![("user".into(), Role::User)]
        }
    }

    #[test]
    fn authorize_paths() {
        let now = at("2010-09-16T07:51:00Z");
        let mut c = NonceCache::new(10);
        // Open server: anything goes.
        assert_eq!(
            authorize(
                &OpenAuth,
                AccessClass::ReadSystemSecret,
                None,
                None,
                now,
                &mut c
            ),
            Ok(None)
        );
        // PreAuth needs nothing.
        assert_eq!(
            authorize(&OneUser, AccessClass::PreAuth, None, None, now, &mut c),
            Ok(None)
        );
        // No credentials.
        let f = authorize(&OneUser, AccessClass::ReadMedia, None, None, now, &mut c).unwrap_err();
        assert_eq!(f.subcode, "ter:NotAuthorized");
        // Wrong user, wrong password.
        let mut t = guide_token();
        t.username = "nobody".into();
        assert!(authorize(
            &OneUser,
            AccessClass::ReadMedia,
            Some(&t),
            None,
            now,
            &mut c
        )
        .is_err());
        let mut t = guide_token();
        t.password = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        assert!(authorize(
            &OneUser,
            AccessClass::ReadMedia,
            Some(&t),
            None,
            now,
            &mut c
        )
        .is_err());
        // Right credentials, but a User may not read secrets.
        let f = authorize(
            &OneUser,
            AccessClass::ReadSystemSecret,
            Some(&guide_token()),
            None,
            now,
            &mut c,
        )
        .unwrap_err();
        assert!(f.reason.contains("may not"));
        let mut c = NonceCache::new(10);
        assert_eq!(
            authorize(
                &OneUser,
                AccessClass::ReadMedia,
                Some(&guide_token()),
                None,
                now,
                &mut c
            ),
            Ok(Some(("user".into(), Role::User)))
        );
        // HTTP Digest already checked by the HTTP layer.
        assert!(authorize(
            &OneUser,
            AccessClass::ReadMedia,
            None,
            Some(("user", Role::User)),
            now,
            &mut c
        )
        .is_ok());
    }
}
