//! WS-Security UsernameToken checking (`ipcamd_onvif::wsse`): `verify` (the
//! PasswordDigest comparison, the time window around `Created`, the replay cache) and
//! `authorize` (users, roles, access classes), which `onvif_soap` never reaches (its
//! device has no users). Also the client's `security_header` read back by the SOAP parser.
//!
//! Input: 4 bytes of knobs, then fields separated by 0x00: password (the one the client
//! used), nonce, created, digest, username, password type.
//! - byte 0: bits 0-2 the access class, bit 3 an HTTP Digest user is present, bits 4-5
//!   the replay cache's capacity (1-4);
//! - bytes 1-2: the device clock's distance from `Created` (i16, seconds; when `Created`
//!   does not parse, the clock is a fixed time);
//! - byte 3: the time window (0-255 s).
//!
//! A nonce starting with `!` stands for the base64 of the bytes after it; a digest of
//! `RIGHT` for the right digest of the client's password; an empty password type for
//! PasswordDigest. Users: `admin` (password `admin-pw`), `op` (operator, `op-pw`), `viewer`
//! (user, `viewer-pw`), `nows` (an administrator without a WS-Security password).
//!
//! Checks: no panic; an accepted token has the right digest and a `Created` inside the
//! window, and is refused as a replay when it comes again at once; a refusal for the time
//! names a distance beyond the window; `authorize` lets a request through only for a role
//! its access class allows, and with users it never passes a request without credentials
//! (but the pre-authentication ones); the client's header, parsed by `soap::parse_request`,
//! gives back the token it was built from, which verifies.
#![no_main]

use base64::Engine as _;
use ipcamd_onvif::soap::{parse_request, UsernameToken};
use ipcamd_onvif::wsse::{
    authorize, password_digest, security_header, verify, AccessClass, NonceCache, Role, SoapAuth,
    TokenParams, WsseError, PASSWORD_DIGEST,
};
use ipcamd_proto::time::parse_utc;
use libfuzzer_sys::fuzz_target;

/// 2026-11-22T01:00:00Z, when `Created` gives no clock.
const NOW: i64 = 1_795_395_600_000_000;

struct Users;

impl SoapAuth for Users {
    fn enabled(&self) -> bool {
        true
    }
    fn user(&self, name: &str) -> Option<(Option<String>, Role)> {
        match name {
            "admin" => Some((Some("admin-pw".into()), Role::Administrator)),
            "op" => Some((Some("op-pw".into()), Role::Operator)),
            "viewer" => Some((Some("viewer-pw".into()), Role::User)),
            "nows" => Some((None, Role::Administrator)),
            _ => None,
        }
    }
    fn users(&self) -> Vec<(String, Role)> {
        Vec::new()
    }
}

const CLASSES: [AccessClass; 6] = [
    AccessClass::PreAuth,
    AccessClass::ReadMedia,
    AccessClass::ReadSystem,
    AccessClass::ReadSystemSecret,
    AccessClass::Actuate,
    AccessClass::WriteSystem,
];

fn field<'a>(fields: &[&'a [u8]], i: usize) -> String {
    String::from_utf8_lossy(fields.get(i).copied().unwrap_or(&[])).into_owned()
}

/// Text that survives an XML element unchanged (`soap::parse_request` trims text).
fn xml_safe(s: &str) -> bool {
    s.trim() == s
        && !s
            .chars()
            .any(|c| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
}

fn check_header_round_trip(username: &str, password: &str, nonce: &[u8], created: &str) {
    if !xml_safe(username) || !xml_safe(created) || nonce.is_empty() {
        return;
    }
    let params = TokenParams {
        username,
        password,
        nonce,
        created,
    };
    let envelope = format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header>{}</s:Header><s:Body><tds:GetUsers xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\"/></s:Body></s:Envelope>",
        security_header(&params)
    );
    let req = match parse_request(envelope.as_bytes()) {
        Ok(r) => r,
        Err(f) => panic!("the client's header for {params:?} does not parse: {f:?}"),
    };
    let want = UsernameToken {
        username: username.to_owned(),
        password: password_digest(nonce, created, password),
        password_type: PASSWORD_DIGEST.to_owned(),
        nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
        created: created.to_owned(),
    };
    assert_eq!(req.username_token.as_ref(), Some(&want));
    if let Some(t) = parse_utc(created) {
        let mut cache = NonceCache::new(4);
        assert_eq!(verify(&want, password, t, 1, &mut cache), Ok(()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((knobs, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let class = CLASSES[usize::from(knobs[0] & 7) % CLASSES.len()];
    let http_user = (knobs[0] & 8 != 0).then_some(("viewer", Role::User));
    let capacity = usize::from((knobs[0] >> 4) & 3) + 1;
    let skew = i64::from(i16::from_be_bytes([knobs[1], knobs[2]]));
    let window = i64::from(knobs[3]);

    let fields: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let password = field(&fields, 0);
    let nonce_field = field(&fields, 1);
    let created = field(&fields, 2);
    let digest = field(&fields, 3);
    let username = field(&fields, 4);
    let password_type = match field(&fields, 5) {
        t if t.is_empty() => PASSWORD_DIGEST.to_owned(),
        t => t,
    };
    let (nonce, nonce_raw) = match nonce_field.strip_prefix('!') {
        Some(raw) => (
            base64::engine::general_purpose::STANDARD.encode(raw),
            raw.as_bytes().to_vec(),
        ),
        None => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&nonce_field)
                .unwrap_or_default();
            (nonce_field, raw)
        }
    };
    let digest = if digest == "RIGHT" {
        password_digest(&nonce_raw, &created, &password)
    } else {
        digest
    };
    let token = UsernameToken {
        username: username.clone(),
        password: digest,
        password_type,
        nonce,
        created: created.clone(),
    };
    let created_at = parse_utc(&created);
    let now = created_at.map_or(NOW, |c| c.saturating_add(skew * 1_000_000));

    let mut cache = NonceCache::new(capacity);
    match verify(&token, &password, now, window, &mut cache) {
        Ok(()) => {
            assert_eq!(token.password_type, PASSWORD_DIGEST);
            assert_eq!(
                token.password,
                password_digest(&nonce_raw, &created, &password)
            );
            let c = created_at.expect("accepted without a Created time");
            assert!((now - c).abs() <= window * 1_000_000 + 999_999);
            assert_eq!(
                verify(&token, &password, now, window, &mut cache),
                Err(WsseError::Replayed),
                "the same token twice (cache of {capacity})"
            );
        }
        Err(WsseError::Expired(distance, limit)) => {
            assert_eq!(limit, window);
            assert!(distance.abs() > window);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let mut cache = NonceCache::new(capacity);
    let with_token = (!token.username.is_empty()).then_some(&token);
    match authorize(&Users, class, with_token, http_user, now, &mut cache) {
        Ok(Some((_, role))) => assert!(class.allows(role), "{class:?} let {role:?} in"),
        Ok(None) => assert_eq!(class, AccessClass::PreAuth, "passed without a user"),
        Err(f) => {
            if let (None, Some((_, role))) = (with_token, http_user) {
                assert!(!class.allows(role), "{class:?} refused {role:?}: {f:?}");
            }
        }
    }

    check_header_round_trip(&username, &password, &nonce_raw, &created);
});
