//! Loading the sandbox directory from a JSON file (`[sandbox] seed_file`), replacing the demo
//! users, groups, role assignments and identity providers:
//!
//! ```json
//! {
//!   "users":  [{"profile": {"login": "ana@example.com", "firstName": "Ana", "lastName": "Lee"},
//!               "status": "ACTIVE", "password": "optional-initial-Passw0rd"}],
//!   "groups": [{"name": "Restricted Users", "type": "OKTA_GROUP", "members": ["ana@example.com"]}],
//!   "roles":  [{"user": "ana@example.com", "type": "HELP_DESK_ADMIN"}],
//!   "idps":   [{"name": "Corp ADFS", "type": "SAML2"}]
//! }
//! ```
//! Absent sections are empty. Ids are generated in Okta's shapes when not given. `email`
//! defaults to the login.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::SandboxState;
use super::directory::User;
use super::groups::Group;
use super::idps::Idp;
use super::roles::{Assignment, ROLE_TYPES};

const STATUSES: &[&str] = &[
    "STAGED",
    "PROVISIONED",
    "ACTIVE",
    "RECOVERY",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "SUSPENDED",
    "DEPROVISIONED",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    users: Vec<SeedUser>,
    #[serde(default)]
    groups: Vec<SeedGroup>,
    #[serde(default)]
    roles: Vec<SeedRole>,
    #[serde(default)]
    idps: Vec<SeedIdp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    id: Option<String>,
    #[serde(default = "active")]
    status: String,
    profile: Map<String, Value>,
    password: Option<String>,
}

fn active() -> String {
    "ACTIVE".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedGroup {
    id: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "type", default = "okta_group")]
    kind: String,
    #[serde(default)]
    members: Vec<String>,
}

fn okta_group() -> String {
    "OKTA_GROUP".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRole {
    user: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedIdp {
    id: Option<String>,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "active")]
    status: String,
}

/// The directory a seed file describes.
pub(super) struct Directory {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub roles: Vec<Assignment>,
    pub idps: Vec<Idp>,
}

fn id_ok(id: &str, prefix: &str) -> bool {
    id.len() == 20 && id.starts_with(prefix) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Reads and checks a seed file; every error names the entry and what is wrong.
pub(super) fn load(path: &Path, now: &str) -> anyhow::Result<Directory> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the sandbox seed file {}", path.display()))?;
    let seed: SeedFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid sandbox seed file", path.display()))?;
    let mut users = Vec::new();
    let mut logins = HashSet::new();
    for (i, u) in seed.users.into_iter().enumerate() {
        let at = format!("users[{i}]");
        let Some(login) = u
            .profile
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            bail!("{at}: profile.login is required");
        };
        if !logins.insert(login.to_lowercase()) {
            bail!("{at}: login {login} is used twice");
        }
        if !STATUSES.contains(&u.status.as_str()) {
            bail!("{at}: status {:?} is not one of {STATUSES:?}", u.status);
        }
        let id = u.id.unwrap_or_else(|| format!("00u{:017}", i + 1));
        if !id_ok(&id, "00u") {
            bail!("{at}: id {id:?} must be 00u + 17 letters or digits");
        }
        let mut profile = u.profile;
        profile.entry("email").or_insert_with(|| json!(login));
        profile.entry("firstName").or_insert(Value::Null);
        profile.entry("lastName").or_insert(Value::Null);
        users.push(User {
            id,
            status: u.status,
            profile,
            created: now.to_owned(),
            status_changed: Some(now.to_owned()),
            last_updated: now.to_owned(),
            password_digest: u.password.as_deref().map(crate::auth::token_digest),
            password_changed: u.password.map(|_| now.to_owned()),
        });
    }
    let find_user = |key: &str| {
        users
            .iter()
            .find(|u| {
                u.id == key
                    || u.profile
                        .get("login")
                        .and_then(Value::as_str)
                        .is_some_and(|l| l.eq_ignore_ascii_case(key))
            })
            .map(|u| u.id.clone())
    };
    let mut groups = Vec::new();
    for (i, g) in seed.groups.into_iter().enumerate() {
        let at = format!("groups[{i}]");
        let id = g.id.unwrap_or_else(|| format!("00g{:017}", i + 1));
        if !id_ok(&id, "00g") {
            bail!("{at}: id {id:?} must be 00g + 17 letters or digits");
        }
        if !["OKTA_GROUP", "APP_GROUP", "BUILT_IN"].contains(&g.kind.as_str()) {
            bail!("{at}: type must be OKTA_GROUP, APP_GROUP or BUILT_IN");
        }
        let mut members = Vec::new();
        for m in &g.members {
            members.push(
                find_user(m).with_context(|| format!("{at}: member {m:?} is not a seeded user"))?,
            );
        }
        groups.push(Group {
            id,
            name: g.name,
            description: g.description,
            kind: g.kind,
            members,
        });
    }
    let mut roles = Vec::new();
    for (i, r) in seed.roles.into_iter().enumerate() {
        let at = format!("roles[{i}]");
        if !ROLE_TYPES.contains(&r.kind.as_str()) {
            bail!("{at}: type {:?} is not a standard Okta role", r.kind);
        }
        let user_id = find_user(&r.user)
            .with_context(|| format!("{at}: user {:?} is not a seeded user", r.user))?;
        roles.push(Assignment {
            id: format!("ra{:018}", i + 1),
            user_id,
            kind: r.kind,
            created: now.to_owned(),
        });
    }
    let mut idps = Vec::new();
    for (i, p) in seed.idps.into_iter().enumerate() {
        let at = format!("idps[{i}]");
        let id = p.id.unwrap_or_else(|| format!("0oa{:017}", 900 + i));
        if !id_ok(&id, "0oa") {
            bail!("{at}: id {id:?} must be 0oa + 17 letters or digits");
        }
        if !["ACTIVE", "INACTIVE"].contains(&p.status.as_str()) {
            bail!("{at}: status must be ACTIVE or INACTIVE");
        }
        idps.push(Idp {
            id,
            name: p.name,
            kind: p.kind,
            status: p.status,
        });
    }
    Ok(Directory {
        users,
        groups,
        roles,
        idps,
    })
}

impl SandboxState {
    pub(super) fn replace_directory(&self, d: Directory) {
        if let Ok(mut u) = self.users.write() {
            *u = d.users;
        }
        if let Ok(mut g) = self.groups.write() {
            *g = d.groups;
        }
        if let Ok(mut r) = self.roles.write() {
            *r = d.roles;
        }
        if let Ok(mut i) = self.idps.write() {
            *i = d.idps;
        }
    }
}
