//! Who may do what: the users file, the anonymous role, and the check every RTSP request
//! and HTTP request goes through. The protocol rules (Digest of RFC 7616, nonces, nonce
//! counts, Basic) are the sans-IO [`ipcamd_proto::auth`]; this module adds the clock, the
//! randomness, the users and the answers (401 with challenges, 403, 400).
//!
//! Roles: `viewer` (live and replay), `operator` (also the ONVIF audio backchannel),
//! `admin` (also the HTTP API's changing calls). Anonymous requests get the configured
//! anonymous role; by default (no `anonymous` key) that is `operator` while the users file
//! holds no user, and nothing once it holds one. The users file is re-read when its
//! modification time changes, so `ipcamd user add` takes effect without a restart.
//!
//! Never logged: `Authorization` values, passwords, hashes. Log lines name the user and
//! why a request was refused.
//!
//! For other services (the ONVIF SOAP service's WS-Security UsernameToken check):
//! `state.options.auth.users().lookup(name)` gives a user's [`UserEntry`] with its role and,
//! when it was added with `--wsse`, its `wsse_password`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use ipcamd_proto::auth::Role;
use ipcamd_proto::auth::{
    ha1, Algorithm, DigestServer, NonceCounts, NonceSigner, StoredHashes, Verdict,
};
use ipcamd_proto::rtsp::message::Response;
use serde::{Deserialize, Serialize};

use crate::sync::lock;
use ipcamd_proto::rtsp::server::printable;

/// The user name of an exec source's publish URL (`rtsp://exec:<secret>@...`): accepted
/// with that source's secret for publishing to its camera only
/// ([`Authorizer::set_publish_secret`]). A user of this name in the users file can do
/// everything else its role allows, but not publish to an exec camera.
pub const EXEC_USER: &str = "exec";

/// One `[[user]]` of the users file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Hex MD5 of `name:realm:password` (RFC 7616 HA1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Hex SHA-256 of `name:realm:password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The password itself, stored only by `ipcamd user add --wsse`: ONVIF WS-Security
    /// UsernameToken digests (SHA1(nonce + created + password)) cannot be checked from a
    /// hash of the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wsse_password: Option<String>,
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .field(
                "wsse_password",
                &self.wsse_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl UserEntry {
    /// The role (checked when the file is loaded, so `Viewer` only for entries made by
    /// hand after loading).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    pub fn hashes(&self) -> StoredHashes {
        StoredHashes {
            md5: self.md5.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    /// The realm the hashes were made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    realm: Option<String>,
    #[serde(default, rename = "user")]
    users: Vec<UserEntry>,
}

/// The users of a users file (see README "Authentication and TLS").
#[derive(Debug, Clone, Default)]
pub struct Users {
    /// The realm the hashes were made for (written by `ipcamd user add`).
    pub realm: Option<String>,
    by_name: BTreeMap<String, UserEntry>,
}

impl Users {
    /// Reads a users file. A missing file is an empty set of users. Errors name the file,
    /// line and what is wrong.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(e) => {
                return Err(format!(
                    "{}: cannot read the users file: {e}",
                    path.display()
                ))
            }
        };
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Users, String> {
        let file: UsersFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    text.get(..s.start)
                        .map_or(0, |t| t.matches('\n').count() + 1)
                })
                .unwrap_or(0);
            format!("line {line}: {}", e.message())
        })?;
        let mut by_name = BTreeMap::new();
        for (i, u) in file.users.into_iter().enumerate() {
            let at = format!("[[user]] #{} ({:?})", i + 1, u.name);
            if u.name.is_empty() || u.name.contains(':') || u.name.chars().any(char::is_control) {
                return Err(format!(
                    "{at}: name must be non-empty, without ':' or control characters"
                ));
            }
            if Role::parse(&u.role).is_none() {
                return Err(format!(
                    "{at}: role = {:?}: must be \"viewer\", \"operator\" or \"admin\"",
                    u.role
                ));
            }
            let hex_ok = |h: &Option<String>, len: usize| {
                h.as_ref()
                    .is_none_or(|h| h.len() == len && h.chars().all(|c| c.is_ascii_hexdigit()))
            };
            if !hex_ok(&u.md5, 32) || !hex_ok(&u.sha256, 64) {
                return Err(format!(
                    "{at}: md5 must be 32 and sha256 64 hex digits (use `ipcamd user add` to write them)"
                ));
            }
            if u.md5.is_none() && u.sha256.is_none() {
                return Err(format!("{at}: needs md5 or sha256 (use `ipcamd user add`)"));
            }
            if by_name.insert(u.name.clone(), u).is_some() {
                return Err(format!("{at}: a user of this name appears twice"));
            }
        }
        Ok(Users {
            realm: file.realm,
            by_name,
        })
    }

    /// The TOML text of the file.
    pub fn to_toml(&self) -> Result<String, String> {
        let file = UsersFile {
            realm: self.realm.clone(),
            users: self.by_name.values().cloned().collect(),
        };
        let body =
            toml::to_string(&file).map_err(|e| format!("cannot write the users file: {e}"))?;
        Ok(format!(
            "# ipcamd users: written by `ipcamd user add/remove` and ONVIF CreateUsers, SetUser and\n\
             # DeleteUsers. md5/sha256 are hashes of name:realm:password, never the password;\n\
             # wsse_password (`user add --wsse`, users made over ONVIF) IS the password, which is\n\
             # why this file is readable by its owner only.\n{body}"
        ))
    }

    /// Writes the file with mode 0600 (atomically: a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = self.to_toml()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("toml.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("{}: cannot write the users file: {e}", path.display()))
    }

    /// The user of this name: role, hashes and (with `--wsse`) the WS-Security password.
    pub fn lookup(&self, name: &str) -> Option<&UserEntry> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &UserEntry> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds or replaces a user; the password is kept only as hashes (and as
    /// `wsse_password` if `wsse`).
    pub fn add(
        &mut self,
        name: &str,
        role: Role,
        password: &str,
        realm: &str,
        wsse: bool,
    ) -> Result<(), String> {
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            return Err(format!(
                "user name {name:?}: must be non-empty, without ':' or control characters"
            ));
        }
        if let Some(r) = &self.realm {
            if r != realm && !self.by_name.is_empty() {
                return Err(format!(
                    "the users file was made for realm {r:?}, the configuration says {realm:?}: the hashes depend on the realm; remove the users or use the same realm"
                ));
            }
        }
        self.realm = Some(realm.to_owned());
        self.by_name.insert(
            name.to_owned(),
            UserEntry {
                name: name.to_owned(),
                role: role.as_str().to_owned(),
                md5: Some(ha1(Algorithm::Md5, name, realm, password)),
                sha256: Some(ha1(Algorithm::Sha256, name, realm, password)),
                wsse_password: wsse.then(|| password.to_owned()),
            },
        );
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.by_name.remove(name).is_some()
    }

    /// Gives an existing user another role (password unchanged); false if there is no
    /// such user.
    pub fn set_role(&mut self, name: &str, role: Role) -> bool {
        match self.by_name.get_mut(name) {
            Some(u) => {
                u.role = role.as_str().to_owned();
                true
            }
            None => false,
        }
    }
}

/// How authentication is set up (from the configuration).
#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub realm: String,
    /// The users file; `None`: no users (only anonymous access).
    pub users_file: Option<PathBuf>,
    /// Role of requests without credentials. `None` in `anonymous_explicit = false` mode
    /// means: `operator` while there are no users, nothing once there are.
    pub anonymous: Option<Role>,
    /// Whether `anonymous` was configured (then it holds whatever there are users or not).
    pub anonymous_explicit: bool,
    pub nonce_lifetime: Duration,
    /// Offer and accept Basic on TLS connections.
    pub basic_over_tls: bool,
    /// Accept digest answers without qop (RFC 2069; GStreamer's rtspsrc sends them).
    pub allow_rfc2069: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            realm: "ipcamd".into(),
            users_file: None,
            anonymous: None,
            anonymous_explicit: false,
            nonce_lifetime: Duration::from_secs(300),
            basic_over_tls: false,
            allow_rfc2069: true,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401 with these `WWW-Authenticate` values.
    Unauthorized { challenges: Vec<String> },
    /// 403: authenticated, but the role is too low.
    Forbidden {
        user: String,
        role: Role,
        needed: Role,
    },
    /// 400: unreadable credentials.
    BadRequest { reason: String },
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `None` for anonymous access.
    pub user: Option<String>,
    pub role: Role,
}

struct LoadedUsers {
    users: Arc<Users>,
    mtime: Option<SystemTime>,
}

/// Counts of refused requests (for logs and the API).
#[derive(Debug, Default)]
pub struct AuthCounters {
    pub unauthorized: AtomicU64,
    pub forbidden: AtomicU64,
    pub stale: AtomicU64,
    pub bad: AtomicU64,
}

/// The server's authentication state: options, users, the nonce secret and counts.
pub struct Authorizer {
    pub options: AuthOptions,
    digest: DigestServer,
    users: Mutex<LoadedUsers>,
    counts: Mutex<NonceCounts>,
    /// Per camera, the hashes of its exec source's secret (user [`EXEC_USER`]).
    publish_secrets: Mutex<BTreeMap<String, StoredHashes>>,
    pub counters: AuthCounters,
    /// Changes of the users file ([`Authorizer::change_users`]), one at a time.
    writing: Mutex<()>,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Authorizer {
    /// No users file: anonymous operator access (the zero-configuration default).
    fn default() -> Self {
        Authorizer::new(AuthOptions::default(), Users::default())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Authorizer {
    /// With a random nonce secret, new at every start.
    pub fn new(options: AuthOptions, users: Users) -> Authorizer {
        let digest = DigestServer {
            realm: options.realm.clone(),
            signer: NonceSigner::new(rand::random(), options.nonce_lifetime.as_secs().max(1)),
            allow_rfc2069: options.allow_rfc2069,
        };
        let m = options.users_file.as_deref().and_then(mtime);
        Authorizer {
            options,
            digest,
            users: Mutex::new(LoadedUsers {
                users: Arc::new(users),
                mtime: m,
            }),
            counts: Mutex::new(NonceCounts::default()),
            publish_secrets: Mutex::new(BTreeMap::new()),
            counters: AuthCounters::default(),
            writing: Mutex::new(()),
        }
    }

    /// Accepts user [`EXEC_USER`] with `secret` (Digest, as any user) for publishing to
    /// `camera`, and for nothing else: an exec source's child publishes with it. Only its
    /// hashes are kept; it is never logged.
    pub fn set_publish_secret(&self, camera: &str, secret: &str) {
        let realm = &self.options.realm;
        let hashes = StoredHashes {
            md5: Some(ha1(Algorithm::Md5, EXEC_USER, realm, secret)),
            sha256: Some(ha1(Algorithm::Sha256, EXEC_USER, realm, secret)),
        };
        lock(&self.publish_secrets).insert(camera.to_owned(), hashes);
    }

    /// Loads the users file named in `options` (missing = no users).
    pub fn load(options: AuthOptions) -> Result<Authorizer, String> {
        let users = match &options.users_file {
            Some(p) => Users::load(p)?,
            None => Users::default(),
        };
        if let (Some(file_realm), Some(p)) = (&users.realm, &options.users_file) {
            if *file_realm != options.realm && !users.is_empty() {
                return Err(format!(
                    "{}: the users were made for realm {file_realm:?} but [auth] realm is {:?}; their passwords cannot be checked (use the same realm, or add the users again)",
                    p.display(),
                    options.realm
                ));
            }
        }
        Ok(Authorizer::new(options, users))
    }

    /// The current users (re-read if the file changed; a file that became unreadable
    /// keeps the previous users and logs why).
    pub fn users(&self) -> Arc<Users> {
        let mut loaded = lock(&self.users);
        if let Some(path) = &self.options.users_file {
            let m = mtime(path);
            if m != loaded.mtime {
                loaded.mtime = m;
                match Users::load(path) {
                    Ok(u) => {
                        tracing::info!(file = %path.display(), users = u.len(), "users file re-read");
                        loaded.users = Arc::new(u);
                    }
                    Err(e) => tracing::warn!("{e}; keeping the users loaded before"),
                }
            }
        }
        loaded.users.clone()
    }

    /// Changes the users file (ONVIF CreateUsers, SetUser, DeleteUsers): reads it as it is
    /// now, lets `f` change the users (given the realm), writes it and takes the new users
    /// at once. Blocking (file I/O): run it off the async workers.
    pub fn change_users(
        &self,
        f: impl FnOnce(&mut Users, &str) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(path) = &self.options.users_file else {
            return Err("no users file is configured ([auth] users_file)".into());
        };
        let _one = lock(&self.writing);
        let mut users = Users::load(path)?;
        f(&mut users, &self.options.realm)?;
        users.save(path)?;
        let mut loaded = lock(&self.users);
        loaded.users = Arc::new(users);
        loaded.mtime = mtime(path);
        Ok(())
    }

    /// Role of a request without credentials, if any.
    pub fn anonymous_role(&self) -> Option<Role> {
        if self.options.anonymous_explicit {
            self.options.anonymous
        } else if self.users().is_empty() {
            Some(Role::Operator)
        } else {
            None
        }
    }

    /// One line for the start-up log: how authentication is set up.
    pub fn describe(&self) -> (bool, String) {
        let users = self.users();
        let file = self
            .options
            .users_file
            .as_ref()
            .map_or("(none)".to_owned(), |p| p.display().to_string());
        let anon = self.anonymous_role();
        let loud = anon.is_some();
        let text = match (users.len(), anon) {
            (0, Some(r)) if !self.options.anonymous_explicit => format!(
                "authentication is OFF: no users in {file}, so anyone who reaches the ports may watch and talk (anonymous role {r}); add a user with `ipcamd user add NAME --role admin` and every request will need a password"
            ),
            (n, Some(r)) => format!(
                "authentication: {n} user(s) in {file}, realm {:?}, Digest MD5/SHA-256; requests without credentials get the anonymous role {r} ([auth] anonymous)",
                self.options.realm
            ),
            (n, None) => format!(
                "authentication: required; {n} user(s) in {file}, realm {:?}, Digest MD5/SHA-256 (nonce lifetime {} s){}",
                self.options.realm,
                self.options.nonce_lifetime.as_secs(),
                if self.options.basic_over_tls { ", Basic over TLS" } else { "" }
            ),
        };
        (loud, text)
    }

    fn challenges(&self, stale: bool, tls: bool) -> Vec<String> {
        self.digest.challenges(
            now_secs(),
            rand::random(),
            stale,
            tls && self.options.basic_over_tls,
        )
    }

    /// Checks one request needing `needed`: its `Authorization` value (if any), method and
    /// request URI, and whether it came over TLS.
    pub fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        needed: Role,
        tls: bool,
    ) -> Result<Identity, Denied> {
        self.check_for(authorization, method, uri, needed, tls, None)
    }

    /// [`Authorizer::check`] of a request that publishes to camera `publishing` (if
    /// `Some`): then user [`EXEC_USER`] is that camera's exec source when it has one
    /// ([`Authorizer::set_publish_secret`]), allowed whatever the role needed.
    pub fn check_for(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        needed: Role,
        tls: bool,
        publishing: Option<&str>,
    ) -> Result<Identity, Denied> {
        let Some(value) = authorization else {
            return match self.anonymous_role() {
                Some(role) if role.allows(needed) => Ok(Identity { user: None, role }),
                _ => {
                    self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                    Err(Denied::Unauthorized {
                        challenges: self.challenges(false, tls),
                    })
                }
            };
        };
        let users = self.users();
        let exec = publishing.and_then(|c| lock(&self.publish_secrets).get(c).cloned());
        let verdict = {
            let mut counts = lock(&self.counts);
            self.digest.verify(
                value,
                method,
                uri,
                now_secs(),
                tls && self.options.basic_over_tls,
                &mut counts,
                |name| match &exec {
                    Some(h) if name == EXEC_USER => Some(h.clone()),
                    _ => users.lookup(name).map(UserEntry::hashes),
                },
            )
        };
        match verdict {
            Verdict::Authenticated { username } if exec.is_some() && username == EXEC_USER => {
                Ok(Identity {
                    user: Some(username),
                    role: Role::Admin,
                })
            }
            Verdict::Authenticated { username } => {
                let role = users
                    .lookup(&username)
                    .map_or(Role::Viewer, UserEntry::role);
                if role.allows(needed) {
                    Ok(Identity {
                        user: Some(username),
                        role,
                    })
                } else {
                    self.counters.forbidden.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(user = %username, %role, %needed, method, "forbidden: role too low");
                    Err(Denied::Forbidden {
                        user: username,
                        role,
                        needed,
                    })
                }
            }
            Verdict::Challenge { stale, reason } => {
                if stale {
                    self.counters.stale.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(method, "stale nonce: new challenge");
                } else {
                    self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(method, %reason, "authentication failed");
                }
                Err(Denied::Unauthorized {
                    challenges: self.challenges(stale, tls),
                })
            }
            Verdict::BadRequest { reason } => {
                self.counters.bad.fetch_add(1, Ordering::Relaxed);
                tracing::info!(method, %reason, "bad Authorization header");
                Err(Denied::BadRequest { reason })
            }
        }
    }
}

impl Denied {
    /// The RTSP answer.
    pub fn rtsp_response(&self) -> Response {
        match self {
            Denied::Unauthorized { challenges } => {
                challenges.iter().fold(Response::new(401), |r, c| {
                    r.header("WWW-Authenticate", c.clone())
                })
            }
            Denied::Forbidden { role, needed, .. } => Response::with_reason(
                403,
                format!("Forbidden (this needs the {needed} role; you are {role})"),
            ),
            Denied::BadRequest { reason } => {
                Response::with_reason(400, format!("Bad Request ({})", printable(reason)))
            }
        }
    }
}

/// `rtsp://user:pass@host/x` -> `rtsp://<redacted>@host/x`, for logs (some clients put the
/// credentials into every request URL).
pub fn redact_userinfo(uri: &str) -> std::borrow::Cow<'_, str> {
    let Some(i) = uri.find("://") else {
        return uri.into();
    };
    let rest = &uri[i + 3..];
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{}://<redacted>@{}", &uri[..i], &rest[at + 1..]).into(),
        None => uri.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_round_trip_and_errors() {
        let mut u = Users::default();
        u.add("alice", Role::Admin, "pw1", "ipcamd", false).unwrap();
        u.add("bob", Role::Viewer, "pw2", "ipcamd", true).unwrap();
        let text = u.to_toml().unwrap();
        assert!(!text.contains("pw1"), "{text}");
        assert!(text.contains("wsse_password = \"pw2\""), "{text}");
        let back = Users::parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        let a = back.lookup("alice").unwrap();
        assert_eq!(a.role(), Role::Admin);
        assert_eq!(
            a.md5.as_deref(),
            Some(ha1(Algorithm::Md5, "alice", "ipcamd", "pw1").as_str())
        );
        assert_eq!(
            back.lookup("bob").unwrap().wsse_password.as_deref(),
            Some("pw2")
        );
        assert!(!format!("{:?}", back.lookup("bob")).contains("pw2"));
        // Errors name the line.
        let e =
            Users::parse("[[user]]\nname = \"x\"\nrole = \"root\"\nmd5 = \"00\"\n").unwrap_err();
        assert!(e.contains("role"), "{e}");
        let e = Users::parse("[[user]]\nname = \"x\"\nrole = \"viewer\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("line 4"), "{e}");
        let e =
            Users::parse("[[user]]\nname = \"x\"\nrole = \"viewer\"\nmd5 = \"zz\"\n").unwrap_err();
        assert!(e.contains("md5"), "{e}");
        // Another realm.
        assert!(u.add("carol", Role::Viewer, "p", "other", false).is_err());
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("rtsp://a:b@h:1/c"),
            "rtsp://<redacted>@h:1/c"
        );
        assert_eq!(redact_userinfo("rtsp://h/c@d"), "rtsp://h/c@d");
        assert_eq!(redact_userinfo("/x"), "/x");
    }

    #[test]
    fn an_exec_secret_counts_for_publishing_to_its_camera_only() {
        let mut u = Users::default();
        u.add("vera", Role::Viewer, "p", "ipcamd", false).unwrap();
        let a = Authorizer::new(AuthOptions::default(), u);
        a.set_publish_secret("gen", "s3cret");
        let uri = "rtsp://127.0.0.1:8554/gen";
        let Err(Denied::Unauthorized { challenges }) =
            a.check_for(None, "ANNOUNCE", uri, Role::Operator, false, Some("gen"))
        else {
            panic!("anonymous publishing accepted");
        };
        // The MD5 challenge's nonce, answered in the RFC 2069 form.
        let nonce = challenges
            .iter()
            .flat_map(|c| ipcamd_proto::auth::parse_challenge_list(c))
            .find(|(_, params)| {
                !params
                    .iter()
                    .any(|(k, v)| k == "algorithm" && v.contains("SHA"))
            })
            .and_then(|(_, params)| params.into_iter().find(|(k, _)| k == "nonce"))
            .map(|(_, v)| v)
            .expect("a nonce");
        let answer = |password: &str, method: &str| {
            let ha1 = ha1(Algorithm::Md5, EXEC_USER, "ipcamd", password);
            let r = ipcamd_proto::auth::digest_response(
                Algorithm::Md5,
                &ha1,
                &nonce,
                method,
                uri,
                None,
            );
            format!("Digest username=\"exec\", realm=\"ipcamd\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\"")
        };
        let ok = a.check_for(
            Some(&answer("s3cret", "ANNOUNCE")),
            "ANNOUNCE",
            uri,
            Role::Admin,
            false,
            Some("gen"),
        );
        assert_eq!(ok.map(|i| i.user), Ok(Some(EXEC_USER.to_owned())));
        // Not for another camera, not for anything but publishing, not with another secret.
        for (pw, method, publishing) in [
            ("s3cret", "DESCRIBE", None),
            ("s3cret", "ANNOUNCE", Some("cam2")),
            ("guess", "ANNOUNCE", Some("gen")),
        ] {
            let r = a.check_for(
                Some(&answer(pw, method)),
                method,
                uri,
                Role::Viewer,
                false,
                publishing,
            );
            assert!(
                matches!(r, Err(Denied::Unauthorized { .. })),
                "{pw} {method} {publishing:?}: {r:?}"
            );
        }
    }

    #[test]
    fn anonymous_default_follows_the_users() {
        let a = Authorizer::default();
        assert_eq!(a.anonymous_role(), Some(Role::Operator));
        assert!(a
            .check(None, "SETUP", "rtsp://h/cam1", Role::Operator, false)
            .is_ok());
        assert!(matches!(
            a.check(None, "POST", "/api/x", Role::Admin, false),
            Err(Denied::Unauthorized { .. })
        ));
        let mut u = Users::default();
        u.add("v", Role::Viewer, "p", "ipcamd", false).unwrap();
        let a = Authorizer::new(AuthOptions::default(), u);
        assert_eq!(a.anonymous_role(), None);
        let Err(Denied::Unauthorized { challenges }) =
            a.check(None, "DESCRIBE", "rtsp://h/cam1", Role::Viewer, false)
        else {
            panic!("anonymous accepted");
        };
        assert_eq!(challenges.len(), 2);
        let r = Denied::Unauthorized { challenges }.rtsp_response();
        assert_eq!(r.status, 401);
        assert_eq!(r.headers.get_all("WWW-Authenticate").count(), 2);
    }
}
