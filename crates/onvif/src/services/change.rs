//! The operations that change the device: users (ONVIF Core §8.4: CreateUsers, DeleteUsers,
//! SetUser), scopes (§8.3: SetScopes, AddScopes, RemoveScopes), the host name (§8.2:
//! SetHostname); and the [`Change`]s and [`Apply`] of every write, those of the video
//! encoder (Media ver10 and Media2 SetVideoEncoderConfiguration, `encoder.rs`), of the
//! picture (Imaging SetImagingSettings, `imaging_service.rs`) and of recording job modes
//! (Recording Control SetRecordingJobMode, `recording_control.rs`) included.
//!
//! Everything a request asks is checked here against the [`DeviceModel`] (existing users
//! and the last administrator, fixed scopes, the encoder's options), so a request either
//! faults with the ONVIF code that names the problem or becomes an [`Apply`]: the
//! [`Change`] the server carries out and persists, and the answer it then sends. Nothing
//! here writes a file or touches a camera.

use crate::model::{DeviceModel, ImagingSettings, VideoSettings};
use crate::ns;
use crate::soap::{envelope, Fault, Request};
use crate::wsse::Role;
use crate::xml::el;

use super::Response;

/// Longest user name and password accepted (ONVIF leaves it to the device).
pub const MAX_NAME: usize = 64;
pub const MAX_PASSWORD: usize = 64;
/// Most users the device keeps.
pub const MAX_USERS: usize = 100;
/// Most configurable scopes, and the longest scope URI.
pub const MAX_SCOPES: usize = 32;
const MAX_SCOPE_LEN: usize = 256;

/// What a write asks the server to do (already checked against the model).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Restart the camera's encoder with these settings.
    VideoEncoder {
        camera: String,
        settings: VideoSettings,
    },
    /// Adjust the camera's picture (SetImagingSettings, `imaging_service.rs`): the whole
    /// new settings; `persist` (ForcePersistence) keeps them across restarts, else they
    /// hold until the server stops.
    Imaging {
        camera: String,
        settings: ImagingSettings,
        persist: bool,
    },
    /// New users (none of these names exists).
    CreateUsers(Vec<UserChange>),
    /// Existing users: a new role, and a new password where given.
    SetUsers(Vec<UserChange>),
    /// Existing users to remove (at least one administrator stays).
    DeleteUsers(Vec<String>),
    /// The configurable scopes, the whole new list.
    Scopes(Vec<String>),
    /// The host name GetHostname reports.
    Hostname(String),
    /// A recording job's mode: Active (record) or Idle.
    RecordingJobMode { recording: String, active: bool },
}

/// A user to create or change. The password never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct UserChange {
    pub name: String,
    /// None: keep the current password (SetUser only).
    pub password: Option<String>,
    pub role: Role,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("role", &self.role)
            .finish()
    }
}

/// A checked write: the change to carry out, then the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    /// The operation (for logs and counters).
    pub action: String,
    pub change: Change,
    /// The response body element sent once the change is made.
    body: String,
}

impl Apply {
    pub(super) fn new(req: &Request, change: Change, body: String) -> Apply {
        Apply {
            action: req.action.clone(),
            change,
            body,
        }
    }

    /// The answer: the operation's response once the change was made, or the fault that
    /// says why it could not be (`ter:Action` faults from the server: a file that cannot
    /// be written, an encoder that did not start).
    pub fn answer(self, result: Result<(), Fault>) -> Response {
        match result {
            Ok(()) => Response {
                status: 200,
                body: envelope(&self.body),
                action: self.action,
            },
            Err(f) => super::fault(&self.action, f),
        }
    }
}

/// An empty `<prefix:ActionResponse></prefix:ActionResponse>`.
pub(super) fn empty(prefix: &str, action: &str) -> String {
    format!("<{prefix}:{action}Response></{prefix}:{action}Response>")
}

/// The Device service's write operations: None for any other operation.
pub(super) fn dispatch(req: &Request, m: &DeviceModel) -> Option<Result<Apply, Fault>> {
    let a = req.action.as_str();
    Some(match (req.namespace.as_str(), a) {
        (ns::TDS, "CreateUsers") => create_users(req, m),
        (ns::TDS, "DeleteUsers") => delete_users(req, m),
        (ns::TDS, "SetUser") => set_users(req, m),
        (ns::TDS, "SetScopes" | "AddScopes" | "RemoveScopes") => scopes(req, m),
        (ns::TDS, "SetHostname") => hostname(req),
        _ => return None,
    })
}

// ---------------------------------------------------------------- users

/// A `User` element as sent: name, password, level.
type UserArgs = (String, Option<String>, Option<String>);

/// The `User` elements of CreateUsers/SetUser in document order; a user starts at each
/// `Username`.
fn users_of(req: &Request) -> Result<Vec<UserArgs>, Fault> {
    let mut out: Vec<UserArgs> = Vec::new();
    for (k, v) in &req.args {
        match k.as_str() {
            "Username" => out.push((v.trim().to_owned(), None, None)),
            "Password" | "UserLevel" => {
                let Some(u) = out.last_mut() else {
                    return Err(Fault::invalid_arg(
                        "ter:UsernameMissing",
                        format!("{k} comes before any Username"),
                    ));
                };
                if k == "Password" {
                    u.1 = Some(v.clone());
                } else {
                    u.2 = Some(v.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(Fault::invalid_arg(
            "ter:UsernameMissing",
            format!("{} names no user (User/Username)", req.action),
        ));
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), Fault> {
    if name.is_empty() {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:UsernameTooShort"),
            "the user name is empty",
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:UsernameTooLong"),
            format!("user name {name:?} is longer than {MAX_NAME} characters"),
        ));
    }
    if name.contains(':') || name.chars().any(char::is_control) {
        return Err(Fault::sender(
            "ter:InvalidArgVal",
            None,
            format!("user name {name:?}: ':' and control characters are not allowed (HTTP Digest cannot carry them)"),
        ));
    }
    Ok(())
}

fn check_password(name: &str, pw: &str) -> Result<(), Fault> {
    if pw.is_empty() {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:Password"),
            format!("user {name:?}: the password is empty"),
        ));
    }
    if pw.chars().count() > MAX_PASSWORD {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:PasswordTooLong"),
            format!("user {name:?}: the password is longer than {MAX_PASSWORD} characters"),
        ));
    }
    if pw.chars().any(char::is_control) {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:Password"),
            format!("user {name:?}: control characters are not allowed in a password"),
        ));
    }
    Ok(())
}

/// ONVIF user level -> role. `Anonymous` and `Extended` are refused.
fn level(name: &str, l: Option<&str>) -> Result<Role, Fault> {
    match l {
        Some("Administrator") => Ok(Role::Administrator),
        Some("Operator") => Ok(Role::Operator),
        Some("User") => Ok(Role::User),
        Some("Anonymous") => Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:AnonymousNotAllowed"),
            format!("user {name:?}: anonymous access is set in the configuration ([auth] anonymous), not as a user"),
        )),
        Some(other) => Err(Fault::invalid_arg(
            "ter:InvalidArgs",
            format!("user {name:?}: user level {other:?} is not offered: Administrator, Operator or User"),
        )),
        None => Err(Fault::invalid_arg(
            "ter:InvalidArgs",
            format!("user {name:?} has no UserLevel (Administrator, Operator or User)"),
        )),
    }
}

fn admins_after(users: &[(String, Role)]) -> usize {
    users
        .iter()
        .filter(|(_, r)| *r == Role::Administrator)
        .count()
}

fn last_admin(name: &str, what: &str) -> Fault {
    Fault::invalid_arg(
        "ter:FixedUser",
        format!("{what} user {name:?} would leave no Administrator, and nobody could manage users over ONVIF again; make another user an Administrator first"),
    )
}

fn create_users(req: &Request, m: &DeviceModel) -> Result<Apply, Fault> {
    let list = users_of(req)?;
    let mut out = Vec::new();
    for (name, pw, l) in list {
        check_name(&name)?;
        if m.users.iter().any(|(n, _)| *n == name)
            || out.iter().any(|u: &UserChange| u.name == name)
        {
            return Err(Fault::sender(
                "ter:OperationProhibited",
                Some("ter:UsernameClash"),
                format!("user {name:?} exists already (SetUser changes a user)"),
            ));
        }
        let pw = pw.unwrap_or_default();
        check_password(&name, &pw)?;
        out.push(UserChange {
            role: level(&name, l.as_deref())?,
            name,
            password: Some(pw),
        });
    }
    if m.users.len() + out.len() > MAX_USERS {
        return Err(Fault::receiver(
            "ter:Action",
            Some("ter:TooManyUsers"),
            format!("the device keeps at most {MAX_USERS} users"),
        ));
    }
    // The first users end open access: one of them must be able to manage the rest.
    if m.users.is_empty() && !out.iter().any(|u| u.role == Role::Administrator) {
        return Err(Fault::sender(
            "ter:OperationProhibited",
            Some("ter:FixedUser"),
            "the device has no users yet and every request will need credentials once it has one: the first users must include an Administrator",
        ));
    }
    Ok(Apply::new(
        req,
        Change::CreateUsers(out),
        empty("tds", "CreateUsers"),
    ))
}

fn set_users(req: &Request, m: &DeviceModel) -> Result<Apply, Fault> {
    let list = users_of(req)?;
    let mut after = m.users.clone();
    let mut out = Vec::new();
    for (name, pw, l) in list {
        let Some(slot) = after.iter_mut().find(|(n, _)| *n == name) else {
            return Err(Fault::invalid_arg(
                "ter:UsernameMissing",
                format!("user {name:?} does not exist (GetUsers lists them; CreateUsers adds one)"),
            ));
        };
        if let Some(p) = &pw {
            check_password(&name, p)?;
        }
        let role = level(&name, l.as_deref())?;
        slot.1 = role;
        out.push(UserChange {
            name,
            password: pw,
            role,
        });
    }
    if admins_after(&after) == 0 {
        let name = out.first().map(|u| u.name.as_str()).unwrap_or_default();
        return Err(last_admin(name, "demoting"));
    }
    Ok(Apply::new(
        req,
        Change::SetUsers(out),
        empty("tds", "SetUser"),
    ))
}

fn delete_users(req: &Request, m: &DeviceModel) -> Result<Apply, Fault> {
    let names: Vec<String> = req.args_named("Username").map(str::to_owned).collect();
    if names.is_empty() {
        return Err(Fault::invalid_arg(
            "ter:UsernameMissing",
            "DeleteUsers names no user (Username)",
        ));
    }
    for n in &names {
        if !m.users.iter().any(|(u, _)| u == n) {
            return Err(Fault::invalid_arg(
                "ter:UsernameMissing",
                format!("user {n:?} does not exist (GetUsers lists them)"),
            ));
        }
    }
    let after: Vec<(String, Role)> = m
        .users
        .iter()
        .filter(|(n, _)| !names.contains(n))
        .cloned()
        .collect();
    if admins_after(&after) == 0 {
        let admin = names
            .iter()
            .find(|n| {
                m.users
                    .iter()
                    .any(|(u, r)| u == *n && *r == Role::Administrator)
            })
            .map(String::as_str)
            .unwrap_or_default();
        return Err(last_admin(admin, "deleting"));
    }
    Ok(Apply::new(
        req,
        Change::DeleteUsers(names),
        empty("tds", "DeleteUsers"),
    ))
}

// ---------------------------------------------------------------- scopes, host name

fn check_scope(s: &str) -> Result<(), Fault> {
    if s.is_empty()
        || s.len() > MAX_SCOPE_LEN
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
        || !s.contains(':')
    {
        return Err(Fault::invalid_arg(
            "ter:InvalidArgs",
            format!("scope {s:?} is not a URI (like onvif://www.onvif.org/location/city/Paris, at most {MAX_SCOPE_LEN} characters, no spaces)"),
        ));
    }
    Ok(())
}

fn scopes(req: &Request, m: &DeviceModel) -> Result<Apply, Fault> {
    let a = req.action.as_str();
    // SetScopes names its items `Scopes`, AddScopes and RemoveScopes `ScopeItem`.
    let items: Vec<String> = req
        .args_named(if a == "SetScopes" {
            "Scopes"
        } else {
            "ScopeItem"
        })
        .map(str::to_owned)
        .collect();
    let mut list = m.configurable_scopes.clone();
    let mut body = empty("tds", a);
    match a {
        "SetScopes" | "AddScopes" => {
            if a == "AddScopes" && items.is_empty() {
                return Err(Fault::invalid_arg(
                    "ter:InvalidArgs",
                    "AddScopes names no ScopeItem",
                ));
            }
            if a == "SetScopes" {
                list.clear();
            }
            for s in &items {
                check_scope(s)?;
                if m.scopes.contains(s) {
                    return Err(Fault::sender(
                        "ter:OperationProhibited",
                        Some("ter:ScopeOverwrite"),
                        format!("scope {s:?} is one of the device's fixed scopes"),
                    ));
                }
                if !list.contains(s) {
                    list.push(s.clone());
                }
            }
            if list.len() > MAX_SCOPES {
                return Err(Fault::receiver(
                    "ter:Action",
                    Some("ter:TooManyScopes"),
                    format!("the device keeps at most {MAX_SCOPES} configurable scopes"),
                ));
            }
        }
        _ => {
            if items.is_empty() {
                return Err(Fault::invalid_arg(
                    "ter:NoScope",
                    "RemoveScopes names no ScopeItem",
                ));
            }
            for s in &items {
                if m.scopes.contains(s) {
                    return Err(Fault::sender(
                        "ter:OperationProhibited",
                        Some("ter:FixedScope"),
                        format!("scope {s:?} is fixed: it cannot be removed"),
                    ));
                }
                if !list.contains(s) {
                    return Err(Fault::invalid_arg(
                        "ter:NoScope",
                        format!("scope {s:?} is not set (GetScopes lists them)"),
                    ));
                }
            }
            list.retain(|s| !items.contains(s));
            body = format!(
                "<tds:RemoveScopesResponse>{}</tds:RemoveScopesResponse>",
                items
                    .iter()
                    .map(|s| el("tds:ScopeItem", s))
                    .collect::<String>()
            );
        }
    }
    Ok(Apply::new(req, Change::Scopes(list), body))
}

/// A host name as RFC 1123 allows it: labels of letters, digits and '-', not starting or
/// ending with '-', separated by dots; at most 253 characters.
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn hostname(req: &Request) -> Result<Apply, Fault> {
    let name = req.arg("Name").unwrap_or_default();
    if !valid_hostname(name) {
        return Err(Fault::invalid_arg(
            "ter:InvalidHostname",
            format!("{name:?} is not a host name (letters, digits and '-' in dot-separated labels, RFC 1123)"),
        ));
    }
    Ok(Apply::new(
        req,
        Change::Hostname(name.to_owned()),
        empty("tds", "SetHostname"),
    ))
}
