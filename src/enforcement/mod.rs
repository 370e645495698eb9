//! Direct enforcement over the Okta Management API: identity resolution (exactly one user, or a
//! clear 404/409), lifecycle actions with dry-run, and an audit row for every call — dry runs and
//! failures included.

pub mod approval;
pub mod audit;
pub mod containment;
pub mod idempotency;
pub mod jobs;
pub mod password;

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::okta::{IdKind, OktaApiError, OktaCall, OktaClient, OktaId, OktaPath};
use crate::store::Store;

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleAction {
    /// ACTIVE → SUSPENDED.
    Suspend,
    /// SUSPENDED → ACTIVE.
    Unsuspend,
    /// Any → DEPROVISIONED.
    Deactivate,
    /// STAGED/DEPROVISIONED → PROVISIONED/ACTIVE.
    Activate,
    /// PROVISIONED/RECOVERY → PROVISIONED (new activation).
    Reactivate,
    /// LOCKED_OUT → ACTIVE.
    Unlock,
}

impl LifecycleAction {
    /// Okta's lifecycle path segment.
    pub fn okta_op(self) -> &'static str {
        match self {
            LifecycleAction::Suspend => "suspend",
            LifecycleAction::Unsuspend => "unsuspend",
            LifecycleAction::Deactivate => "deactivate",
            LifecycleAction::Activate => "activate",
            LifecycleAction::Reactivate => "reactivate",
            LifecycleAction::Unlock => "unlock",
        }
    }

    fn takes_send_email(self) -> bool {
        matches!(
            self,
            LifecycleAction::Deactivate | LifecycleAction::Activate | LifecycleAction::Reactivate
        )
    }
}

pub use crate::okta::STANDARD_ROLE_TYPES;

/// The `type` values Okta's spec allows on `GET /api/v1/idps` (IdentityProviderType).
pub const IDP_TYPES: &[&str] = &[
    "AMAZON",
    "APPLE",
    "DISCORD",
    "FACEBOOK",
    "GITHUB",
    "GITLAB",
    "GOOGLE",
    "IDV_CLEAR",
    "IDV_INCODE",
    "IDV_PERSONA",
    "IDV_STANDARD",
    "LINKEDIN",
    "LOGINGOV",
    "LOGINGOV_SANDBOX",
    "MICROSOFT",
    "OIDC",
    "OKTA_INTEGRATION",
    "PAYPAL",
    "PAYPAL_SANDBOX",
    "SALESFORCE",
    "SAML2",
    "SPOTIFY",
    "X509",
    "XERO",
    "YAHOO",
    "YAHOOJP",
];

/// A resolved Okta user, as reported to callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserSummary {
    /// Okta user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name (or first + last name).
    pub display_name: String,
    /// Okta status.
    pub status: String,
}

impl UserSummary {
    fn from_okta(v: &Value) -> Self {
        let p = &v["profile"];
        let display = p["displayName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "{} {}",
                    p["firstName"].as_str().unwrap_or_default(),
                    p["lastName"].as_str().unwrap_or_default()
                )
                .trim()
                .to_owned()
            });
        Self {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            login: p["login"].as_str().unwrap_or_default().to_owned(),
            display_name: display,
            status: v["status"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// Why an enforcement call did not happen (or failed in Okta).
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// No Okta credentials.
    #[error(
        "no Okta Management API credentials are configured: set [okta] org_url and api_token (SSF_OKTA__API_TOKEN)"
    )]
    NotConfigured,
    /// Nobody matches.
    #[error("nothing in Okta matches '{input}' (searched: {searched})")]
    NotFound {
        /// What the caller gave.
        input: String,
        /// What was searched.
        searched: String,
    },
    /// Several users match; nothing was done.
    #[error("'{input}' matches {} candidates in Okta; nothing was done. Use the Okta id, the full login or the exact name", candidates.len())]
    Ambiguous {
        /// What the caller gave.
        input: String,
        /// The candidates.
        candidates: Vec<UserSummary>,
    },
    /// The asked length is below what the password policy requires.
    #[error("length {0}")]
    PasswordTooShort(String),
    /// A password could not be generated (the system random generator failed).
    #[error("cannot generate the password: {0}")]
    Password(String),
    /// The configuration does not allow it; nothing was sent. The message names the setting.
    #[error("{0}")]
    NotPermitted(String),
    /// Okta refused or failed.
    #[error(transparent)]
    Okta(#[from] OktaApiError),
}

/// The outcome of one action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionReport {
    /// The action (`suspend`, `clear-sessions`, `expire-password`, …).
    pub action: String,
    /// True when nothing was sent.
    pub dry_run: bool,
    /// The user, with the status after the action (or now, for a dry run).
    pub user: UserSummary,
    /// The exact Okta request(s) sent, or that would be sent.
    pub okta_requests: Vec<OktaCall>,
    /// What Okta answered with a body (e.g. an activation link when no email was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The caller's reason, as recorded in the audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when a follow-up call failed after the first change was made in Okta (e.g. the
    /// password was set but revoking sessions failed): what is done is in `okta_requests`, what
    /// failed is here; repeat the failed part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
}

/// The part of an action that failed after an earlier part took effect.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Incomplete {
    /// The Okta request that failed (not sent again).
    pub failed_request: OktaCall,
    /// Why (Okta's error, or the transport failure).
    pub error: String,
}

/// What a connectivity check found.
#[derive(Debug, Clone)]
pub struct Ping {
    /// The org.
    pub org_url: String,
    /// Round trip.
    pub latency_ms: u128,
    /// `api_token` or `oauth`.
    pub auth_mode: &'static str,
    /// OAuth details.
    pub oauth: Option<crate::okta::oauth::OAuthStatus>,
}

/// What `set_password` sets.
#[derive(Debug, Default)]
pub struct PasswordRequest {
    /// The caller's password; `None` → generated.
    pub password: Option<SecretString>,
    /// Random characters appended to the caller's password.
    pub append_random: usize,
    /// Length of a generated password (default: the policy's).
    pub length: Option<usize>,
    /// Also end sessions and revoke OAuth tokens.
    pub revoke_sessions: bool,
}

/// Options of an action.
#[derive(Debug, Clone, Default)]
pub struct ActionOptions {
    /// Send nothing; return the planned request(s).
    pub dry_run: bool,
    /// Okta's `sendEmail` (deactivate, activate, reactivate).
    pub send_email: Option<bool>,
    /// Why (recorded).
    pub reason: Option<String>,
}

/// The enforcement service.
#[derive(Clone)]
pub struct Enforcer {
    okta: Option<OktaClient>,
    store: Store,
    clock: Arc<dyn Clock>,
    config: Arc<crate::config::EnforcementConfig>,
    inflight: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

/// Holds an idempotency key while its request runs; released on drop.
#[derive(Debug)]
pub struct KeyClaim {
    set: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
    entry: (String, String),
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.entry);
        }
    }
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("okta", &self.okta)
            .finish_non_exhaustive()
    }
}

/// An id Okta answered, checked before it goes into a path: an answer is input too.
fn answered_id(kind: IdKind, id: &str) -> Result<OktaId, EnforceError> {
    OktaId::parse(kind, id).map_err(|e| {
        EnforceError::Okta(OktaApiError::Transport(format!(
            "unexpected answer from Okta: {e}"
        )))
    })
}

/// Which Okta collection a list query goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// `GET /api/v1/users`.
    Users,
    /// `GET /api/v1/groups`.
    Groups,
    /// `GET /api/v1/idps`.
    IdentityProviders,
}

impl Collection {
    fn path(self) -> OktaPath {
        match self {
            Collection::Users => OktaPath::users(),
            Collection::Groups => OktaPath::groups(),
            Collection::IdentityProviders => OktaPath::api_v1().lit("idps"),
        }
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Enforcer {
    /// With an Okta client, when credentials are configured.
    pub fn new(
        okta: Option<OktaClient>,
        store: Store,
        clock: Arc<dyn Clock>,
        config: crate::config::EnforcementConfig,
    ) -> Self {
        Self {
            okta,
            store,
            clock,
            config: Arc::new(config),
            inflight: Default::default(),
        }
    }

    /// Claims `(client, key)` for one running request; `None` while another holds it.
    pub fn claim_idempotency_key(&self, client: &str, key: &str) -> Option<KeyClaim> {
        let entry = (client.to_owned(), key.to_owned());
        let mut set = self.inflight.lock().ok()?;
        set.insert(entry.clone()).then(|| KeyClaim {
            set: self.inflight.clone(),
            entry,
        })
    }

    fn client(&self) -> Result<&OktaClient, EnforceError> {
        self.okta.as_ref().ok_or(EnforceError::NotConfigured)
    }

    /// Finds exactly one Okta user for an id, a login, an email or a login short name.
    pub async fn resolve(&self, input: &str) -> Result<(UserSummary, Value), EnforceError> {
        let okta = self.client()?;
        let input = input.trim();
        if let Ok(id) = OktaId::parse(IdKind::User, input) {
            return match okta.send(&OktaCall::new("GET", OktaPath::user(&id))).await {
                Ok(r) => Ok((UserSummary::from_okta(&r.body), r.body)),
                Err(OktaApiError::Api { status: 404, .. }) => Err(EnforceError::NotFound {
                    input: input.to_owned(),
                    searched: "Okta user id".into(),
                }),
                Err(e) => Err(e.into()),
            };
        }
        let rules = &self.config.identity;
        let by_login = |logins: &[&str]| {
            logins
                .iter()
                .map(|l| {
                    let q = quote(l);
                    format!("profile.login eq \"{q}\" or profile.email eq \"{q}\"")
                })
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let mut short_name = false;
        let (search, searched) = if let Some((domain, sam)) = input.split_once('\\') {
            if domain.is_empty() || sam.is_empty() || sam.contains(['\\', '@']) {
                return Err(EnforceError::NotFound {
                    input: input.to_owned(),
                    searched: "nothing: DOMAIN\\sam needs both parts".into(),
                });
            }
            let mapped = rules
                .netbios_domains
                .iter()
                .find(|(d, _)| d.eq_ignore_ascii_case(domain))
                .map(|(_, to)| format!("{sam}@{to}"));
            let sam_allowed = rules
                .sam_domains
                .iter()
                .any(|d| d == "*" || d.eq_ignore_ascii_case(domain));
            match (mapped, rules.sam_attribute.as_ref().filter(|_| sam_allowed)) {
                (Some(login), _) => (
                    by_login(&[&login]),
                    format!(
                        "profile.login and profile.email = {login} (netbios_domains rule for {domain})"
                    ),
                ),
                (None, Some(attr)) => (
                    format!("profile.{attr} eq \"{}\"", quote(sam)),
                    format!("profile.{attr} = {sam} (no netbios_domains rule for {domain})"),
                ),
                (None, None) => {
                    return Err(EnforceError::NotFound {
                        input: input.to_owned(),
                        searched: format!(
                            "nothing: no rule maps the domain {domain}; set [enforcement.identity] netbios_domains, or sam_attribute with {domain} in sam_domains"
                        ),
                    });
                }
            }
        } else if let Some((local, suffix)) = input.rsplit_once('@') {
            let mapped = rules
                .upn_suffixes
                .iter()
                .find(|(from, _)| from.eq_ignore_ascii_case(suffix))
                .map(|(_, to)| format!("{local}@{to}"));
            match mapped {
                Some(login) => (
                    by_login(&[input, &login]),
                    format!(
                        "profile.login and profile.email = {input} or {login} (upn_suffixes rule)"
                    ),
                ),
                None => (
                    by_login(&[input]),
                    "profile.login and profile.email".to_owned(),
                ),
            }
        } else {
            short_name = true;
            (
                format!("profile.login sw \"{}@\"", quote(input)),
                "login short names (profile.login before '@')".to_owned(),
            )
        };
        let found = okta
            .get_all(
                &OktaCall::new("GET", OktaPath::users()).query("search", search),
                50,
            )
            .await?;
        let mut matches: Vec<&Value> = found.iter().collect();
        if short_name {
            matches.retain(|u| {
                u["profile"]["login"]
                    .as_str()
                    .and_then(|l| l.split('@').next())
                    .is_some_and(|s| s.eq_ignore_ascii_case(input))
            });
        }
        match matches.as_slice() {
            [] => Err(EnforceError::NotFound {
                input: input.to_owned(),
                searched,
            }),
            [one] => Ok((UserSummary::from_okta(one), (*one).clone())),
            many => Err(EnforceError::Ambiguous {
                input: input.to_owned(),
                candidates: many.iter().map(|u| UserSummary::from_okta(u)).collect(),
            }),
        }
    }

    /// Runs (or plans) a lifecycle action and audits it.
    pub async fn lifecycle(
        &self,
        caller: &Caller,
        input: &str,
        action: LifecycleAction,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        self.perform(caller, input, action.okta_op(), &opts, |user| {
            let mut call = OktaCall::new(
                "POST",
                OktaPath::user(user).lit("lifecycle").lit(action.okta_op()),
            );
            if action.takes_send_email()
                && let Some(send) = opts.send_email
            {
                call = call.query("sendEmail", send.to_string());
            }
            vec![call]
        })
        .await
    }

    /// `DELETE /api/v1/users/{id}/sessions`, revoking OAuth tokens unless told not to.
    pub async fn clear_sessions(
        &self,
        caller: &Caller,
        input: &str,
        oauth_tokens: bool,
        forget_devices: Option<bool>,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        self.perform(caller, input, "clear-sessions", &opts, |user| {
            let mut call = OktaCall::new("DELETE", OktaPath::user(user).lit("sessions"))
                .query("oauthTokens", oauth_tokens.to_string());
            if let Some(f) = forget_devices {
                call = call.query("forgetDevices", f.to_string());
            }
            vec![call]
        })
        .await
    }

    /// Expires the password: with a temporary password (returned once), or plainly, and then
    /// clears sessions when asked.
    pub async fn expire_password(
        &self,
        caller: &Caller,
        input: &str,
        temp_password: bool,
        revoke_sessions: bool,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        self.perform(caller, input, "expire-password", &opts, |user| {
            if temp_password {
                vec![
                    OktaCall::new(
                        "POST",
                        OktaPath::user(user)
                            .lit("lifecycle")
                            .lit("expire_password_with_temp_password"),
                    )
                    .query("revokeSessions", revoke_sessions.to_string()),
                ]
            } else {
                let mut calls = vec![OktaCall::new(
                    "POST",
                    OktaPath::user(user).lit("lifecycle").lit("expire_password"),
                )];
                if revoke_sessions {
                    calls.push(OktaCall::new(
                        "DELETE",
                        OktaPath::user(user).lit("sessions"),
                    ));
                }
                calls
            }
        })
        .await
    }

    /// Starts a password reset: Okta emails the user, or (send_email=false) the reset URL is
    /// returned.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        input: &str,
        send_email: bool,
        revoke_sessions: bool,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        self.perform(caller, input, "reset-password", &opts, |user| {
            vec![
                OktaCall::new(
                    "POST",
                    OktaPath::user(user).lit("lifecycle").lit("reset_password"),
                )
                .query("sendEmail", send_email.to_string())
                .query("revokeSessions", revoke_sessions.to_string()),
            ]
        })
        .await
    }

    /// Sets a password chosen by the caller, the caller's password plus random characters, or
    /// a generated one (`POST /api/v1/users/{id}` with `credentials.password.value`, Okta's
    /// admin set-password). A password we made is returned once in `result.password`; the value
    /// never reaches the audit log, the logs or a dry run's request listing.
    pub async fn set_password(
        &self,
        caller: &Caller,
        input: &str,
        request: PasswordRequest,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        let policy = &self.config.password;
        let (value, made_here) = match request.password {
            Some(given) => {
                if request.append_random == 0 {
                    (given, false)
                } else {
                    let suffix = password::random_suffix(policy, request.append_random)
                        .map_err(EnforceError::Password)?;
                    (
                        SecretString::from(format!("{}{suffix}", given.expose_secret())),
                        true,
                    )
                }
            }
            None => {
                let length = request.length.unwrap_or(policy.length);
                let required = policy.min_lowercase
                    + policy.min_uppercase
                    + policy.min_digits
                    + policy.min_symbols;
                if length < required {
                    return Err(EnforceError::PasswordTooShort(format!(
                        "must be at least {required}: the password policy requires that many characters"
                    )));
                }
                (
                    password::generate(policy, length).map_err(EnforceError::Password)?,
                    true,
                )
            }
        };
        let revoke = request.revoke_sessions;
        let secret = value.clone();
        let mut report = self
            .perform(caller, input, "set-password", &opts, move |user| {
                let mut calls = vec![
                    OktaCall::new("POST", OktaPath::user(user)).body_with_secret(
                        json!({"credentials": {"password": {"value": ""}}}),
                        "/credentials/password/value",
                        secret,
                    ),
                ];
                if revoke {
                    calls.push(
                        OktaCall::new("DELETE", OktaPath::user(user).lit("sessions"))
                            .query("oauthTokens", "true"),
                    );
                }
                calls
            })
            .await?;
        if !report.dry_run {
            report.result = Some(if made_here {
                json!({"password_set": true, "password": value.expose_secret()})
            } else {
                json!({"password_set": true})
            });
        }
        Ok(report)
    }

    /// Finds exactly one group by id (`00g…`) or exact name.
    pub async fn resolve_group(&self, input: &str) -> Result<Value, EnforceError> {
        let okta = self.client()?;
        let input = input.trim();
        if let Ok(id) = OktaId::parse(IdKind::Group, input) {
            return match okta.send(&OktaCall::new("GET", OktaPath::group(&id))).await {
                Ok(r) => Ok(r.body),
                Err(OktaApiError::Api { status: 404, .. }) => Err(EnforceError::NotFound {
                    input: input.to_owned(),
                    searched: "Okta group id".into(),
                }),
                Err(e) => Err(e.into()),
            };
        }
        let found = okta
            .get_all(
                &OktaCall::new("GET", OktaPath::groups())
                    .query("search", format!("profile.name eq \"{}\"", quote(input))),
                50,
            )
            .await?;
        let exact: Vec<Value> = found
            .into_iter()
            .filter(|g| g["profile"]["name"].as_str() == Some(input))
            .collect();
        match exact.len() {
            0 => Err(EnforceError::NotFound {
                input: input.to_owned(),
                searched: "group names (exact)".into(),
            }),
            1 => Ok(exact.into_iter().next().unwrap_or(Value::Null)),
            _ => Err(EnforceError::Ambiguous {
                input: input.to_owned(),
                candidates: exact
                    .iter()
                    .map(|g| UserSummary {
                        id: g["id"].as_str().unwrap_or_default().to_owned(),
                        login: String::new(),
                        display_name: g["profile"]["name"].as_str().unwrap_or_default().to_owned(),
                        status: g["type"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            }),
        }
    }

    /// Adds the user to, or removes them from, a group (`PUT`/`DELETE
    /// /api/v1/groups/{groupId}/users/{userId}`).
    pub async fn membership(
        &self,
        caller: &Caller,
        group: &str,
        input: &str,
        add: bool,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        let action = if add { "group-add" } else { "group-remove" };
        let g = match self.resolve_group(group).await {
            Ok(g) => g,
            Err(e) => {
                return Err(self
                    .refuse(caller, action, input, &opts, json!({"group": group}), e)
                    .await);
            }
        };
        let gid = match answered_id(IdKind::Group, g["id"].as_str().unwrap_or_default()) {
            Ok(id) => id,
            Err(e) => {
                return Err(self
                    .refuse(caller, action, input, &opts, json!({"group": group}), e)
                    .await);
            }
        };
        let method = if add { "PUT" } else { "DELETE" };
        self.perform(caller, input, action, &opts, |user| {
            vec![OktaCall::new(
                method,
                OktaPath::group(&gid).lit("users").id(user),
            )]
        })
        .await
    }

    /// A user's groups.
    pub async fn user_groups(
        &self,
        input: &str,
    ) -> Result<(UserSummary, Vec<Value>), EnforceError> {
        let (user, _) = self.resolve(input).await?;
        let groups = self
            .client()?
            .get_all(
                &OktaCall::new(
                    "GET",
                    OktaPath::user(&answered_id(IdKind::User, &user.id)?).lit("groups"),
                ),
                10_000,
            )
            .await?;
        Ok((user, groups))
    }

    /// Changes profile attributes with Okta's partial update (`POST /api/v1/users/{id}`), never a
    /// full replace.
    pub async fn update_profile(
        &self,
        caller: &Caller,
        input: &str,
        attributes: serde_json::Map<String, Value>,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        let refused: Vec<&str> = attributes
            .keys()
            .map(String::as_str)
            .filter(|a| !self.config.profile_attribute_allowed(a))
            .collect();
        if !refused.is_empty() {
            let why = match &self.config.profile_attributes {
                Some(_) => format!(
                    "not in [enforcement] profile_attributes, the attributes this service may change: {}",
                    refused.join(", ")
                ),
                None => format!(
                    "Okta identity attributes ({}) may only be changed when [enforcement] profile_attributes lists them",
                    refused.join(", ")
                ),
            };
            let attrs: Vec<&String> = attributes.keys().collect();
            return Err(self
                .refuse(
                    caller,
                    "update-profile",
                    input,
                    &opts,
                    json!({"attributes": attrs}),
                    EnforceError::NotPermitted(why),
                )
                .await);
        }
        self.perform(caller, input, "update-profile", &opts, |user| {
            let mut call = OktaCall::new("POST", OktaPath::user(user));
            call.body = Some(json!({"profile": attributes}));
            vec![call]
        })
        .await
    }

    /// Passes a list query through to Okta (`GET /api/v1/users` or `/api/v1/groups`), following
    /// `Link` pages up to `limit` items.
    pub async fn list(
        &self,
        collection: Collection,
        query: Vec<(String, String)>,
        limit: usize,
    ) -> Result<Vec<Value>, EnforceError> {
        let mut call = OktaCall::new("GET", collection.path());
        call.query = query;
        Ok(self.client()?.get_all(&call, limit).await?)
    }

    /// A user's admin role assignments.
    pub async fn user_roles(&self, input: &str) -> Result<(UserSummary, Vec<Value>), EnforceError> {
        let (user, _) = self.resolve(input).await?;
        let roles = self
            .client()?
            .get_all(
                &OktaCall::new(
                    "GET",
                    OktaPath::user(&answered_id(IdKind::User, &user.id)?).lit("roles"),
                ),
                1000,
            )
            .await?;
        Ok((user, roles))
    }

    /// Assigns a standard admin role (`POST /api/v1/users/{id}/roles {"type": …}`).
    pub async fn assign_role(
        &self,
        caller: &Caller,
        input: &str,
        role_type: &str,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        if !self.config.role_assignable(role_type) {
            let why = match &self.config.assignable_roles {
                Some(_) => format!(
                    "{role_type} is not in [enforcement] assignable_roles, the roles this service may assign"
                ),
                None => format!(
                    "{role_type} is assignable only when [enforcement] assignable_roles lists it"
                ),
            };
            return Err(self
                .refuse(
                    caller,
                    "assign-role",
                    input,
                    &opts,
                    json!({"role": role_type}),
                    EnforceError::NotPermitted(why),
                )
                .await);
        }
        let role_type = role_type.to_owned();
        self.perform(caller, input, "assign-role", &opts, |user| {
            let mut call = OktaCall::new("POST", OktaPath::user(user).lit("roles"));
            call.body = Some(json!({"type": role_type}));
            vec![call]
        })
        .await
    }

    /// Removes a role, given its assignment id or its type (resolved to the assignment). A
    /// role that matches none of the user's assignments is a 404 and nothing is removed; a value
    /// that is neither an assignment id nor a role type is refused before anything is sent.
    pub async fn unassign_role(
        &self,
        caller: &Caller,
        input: &str,
        role: &str,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        let action = "unassign-role";
        let not_found = || EnforceError::NotFound {
            input: role.to_owned(),
            searched: "the user's admin role assignments (by assignment id or role type)".into(),
        };
        let found: Result<OktaId, EnforceError> = async {
            let well_formed = OktaId::is_valid(IdKind::RoleAssignment, role)
                || role == "CUSTOM"
                || STANDARD_ROLE_TYPES.contains(&role);
            if !well_formed {
                return Err(not_found());
            }
            let (_, roles) = self.user_roles(input).await?;
            let matching: Vec<&Value> = roles
                .iter()
                .filter(|r| r["id"].as_str() == Some(role) || r["type"].as_str() == Some(role))
                .collect();
            match matching.as_slice() {
                [] => Err(not_found()),
                [one] => answered_id(
                    IdKind::RoleAssignment,
                    one["id"].as_str().unwrap_or_default(),
                ),
                // Several assignments of one type (custom roles): removing "the first" would be
                // a guess. Nothing is removed; the caller picks an assignment id.
                many => Err(EnforceError::Ambiguous {
                    input: role.to_owned(),
                    candidates: many
                        .iter()
                        .map(|r| UserSummary {
                            id: r["id"].as_str().unwrap_or_default().to_owned(),
                            login: String::new(),
                            display_name: r["label"].as_str().unwrap_or_default().to_owned(),
                            status: r["type"].as_str().unwrap_or_default().to_owned(),
                        })
                        .collect(),
                }),
            }
        }
        .await;
        let ra = match found {
            Ok(ra) => ra,
            Err(e) => {
                return Err(self
                    .refuse(caller, action, input, &opts, json!({"role": role}), e)
                    .await);
            }
        };
        self.perform(caller, input, action, &opts, |user| {
            vec![OktaCall::new(
                "DELETE",
                OktaPath::user(user).lit("roles").id(&ra),
            )]
        })
        .await
    }

    /// Audits an action that was refused or failed before any change was sent, and hands the
    /// error back.
    async fn refuse(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        opts: &ActionOptions,
        extra: Value,
        error: EnforceError,
    ) -> EnforceError {
        let mut detail =
            json!({"dry_run": opts.dry_run, "reason": opts.reason, "error": error.to_string()});
        if let (Some(d), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            d.extend(extra);
        }
        crate::enforcement::audit::record_detail(
            &self.store,
            self.clock.now(),
            caller.into(),
            &format!("user.{action}"),
            Some(target),
            false,
            Some(&detail.to_string()),
        )
        .await;
        error
    }

    /// Checks Okta is reachable and accepts our credentials (`GET /api/v1/users?limit=1`).
    pub async fn ping(&self) -> Result<Ping, EnforceError> {
        let okta = self.client()?;
        let started = std::time::Instant::now();
        okta.send(&OktaCall::new("GET", OktaPath::users()).query("limit", "1"))
            .await?;
        Ok(Ping {
            org_url: okta.org_url().to_owned(),
            latency_ms: started.elapsed().as_millis(),
            auth_mode: okta.auth_mode(),
            oauth: okta.oauth_status().await,
        })
    }

    /// This transmitter's Security Events Provider in the org, if registered.
    pub async fn provider(
        &self,
        issuer: &str,
    ) -> Result<Option<crate::okta::SecurityEventsProvider>, EnforceError> {
        Ok(self.client()?.find_transmitter(issuer).await?)
    }

    /// Registers (creates or updates, then activates) this transmitter as a Security Events
    /// Provider: by its well-known URL, or by issuer + JWKS URL. Audited.
    pub async fn register_provider(
        &self,
        caller: &Caller,
        issuer: &str,
        name: &str,
        by_jwks_url: bool,
    ) -> Result<crate::okta::SecurityEventsProvider, EnforceError> {
        let settings = if by_jwks_url {
            json!({"issuer": issuer, "jwks_url": format!("{issuer}/.well-known/jwks.json")})
        } else {
            json!({"well_known_url": crate::okta::well_known_url(issuer)})
        };
        let result = match self.client() {
            Ok(okta) => okta
                .register_transmitter_with(name, issuer, settings.clone())
                .await
                .map_err(EnforceError::from),
            Err(e) => Err(e),
        };
        let detail = match &result {
            Ok(p) => json!({"provider_id": p.id, "status": p.status, "settings": settings}),
            Err(e) => json!({"settings": settings, "error": e.to_string()}),
        }
        .to_string();
        crate::enforcement::audit::record_detail(
            &self.store,
            self.clock.now(),
            caller.into(),
            "okta.provider.register",
            Some(issuer),
            result.is_ok(),
            Some(&detail),
        )
        .await;
        result
    }

    /// Resets every enrolled factor.
    pub async fn reset_factors(
        &self,
        caller: &Caller,
        input: &str,
        opts: ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        self.perform(caller, input, "reset-factors", &opts, |user| {
            vec![OktaCall::new(
                "POST",
                OktaPath::user(user).lit("lifecycle").lit("reset_factors"),
            )]
        })
        .await
    }

    /// Resolves the user, plans the Okta calls, runs them (unless dry run), reports the user's
    /// status afterwards, and audits — dry runs and failures included. Secrets Okta returns
    /// (temporary passwords, links) go to the caller only, never to the audit log or logs.
    async fn perform<F>(
        &self,
        caller: &Caller,
        input: &str,
        action: &str,
        opts: &ActionOptions,
        plan: F,
    ) -> Result<ActionReport, EnforceError>
    where
        F: FnOnce(&OktaId) -> Vec<OktaCall>,
    {
        let audit_action = format!("user.{action}");
        let (resolved, result) = match self.resolve(input).await {
            Ok((user, _)) => match answered_id(IdKind::User, &user.id) {
                Ok(id) => {
                    let calls = plan(&id);
                    (
                        Some(user.clone()),
                        self.execute(user, &id, action, calls, opts).await,
                    )
                }
                Err(e) => (Some(user), Err(e)),
            },
            Err(e) => (None, Err(e)),
        };
        let now = self.clock.now();
        let (target, detail, ok) = match &result {
            Ok(r) => (
                format!("{} ({})", r.user.id, r.user.login),
                json!({
                    "dry_run": r.dry_run,
                    "reason": r.reason,
                    "okta_status": if r.dry_run { Value::Null } else { json!(200) },
                    "new_status": r.user.status,
                    "incomplete": r.incomplete.as_ref().map(|i| json!({
                        "failed_request": format!("{} {}", i.failed_request.method, i.failed_request.path),
                        "error": i.error,
                    })),
                }),
                r.incomplete.is_none(),
            ),
            Err(e) => {
                let (status, code) = match e {
                    EnforceError::Okta(OktaApiError::Api {
                        status, error_code, ..
                    }) => (json!(status), json!(error_code)),
                    EnforceError::Okta(OktaApiError::RateLimited { .. }) => {
                        (json!(429), json!("E0000047"))
                    }
                    EnforceError::Okta(OktaApiError::InsufficientScope { error_code, .. }) => {
                        (json!(403), json!(error_code))
                    }
                    EnforceError::Okta(OktaApiError::OAuth { error, .. }) => {
                        (Value::Null, json!(error))
                    }
                    _ => (Value::Null, Value::Null),
                };
                (
                    resolved
                        .as_ref()
                        .map_or_else(|| input.to_owned(), |u| format!("{} ({})", u.id, u.login)),
                    json!({
                        "dry_run": opts.dry_run,
                        "reason": opts.reason,
                        "okta_status": status,
                        "okta_error_code": code,
                        "error": e.to_string(),
                    }),
                    false,
                )
            }
        };
        let detail = detail.to_string();
        crate::enforcement::audit::record_detail(
            &self.store,
            now,
            caller.into(),
            &audit_action,
            Some(&target),
            ok,
            Some(&detail),
        )
        .await;
        tracing::info!(caller = %caller.name, action = %audit_action, target = %target, ok, detail = %detail, "enforcement");
        result
    }

    async fn execute(
        &self,
        user: UserSummary,
        id: &OktaId,
        action: &str,
        calls: Vec<OktaCall>,
        opts: &ActionOptions,
    ) -> Result<ActionReport, EnforceError> {
        if opts.dry_run {
            return Ok(ActionReport {
                action: action.to_owned(),
                dry_run: true,
                user,
                okta_requests: calls,
                result: None,
                reason: opts.reason.clone(),
                incomplete: None,
            });
        }
        let okta = self.client()?;
        let mut result: Option<Value> = None;
        let mut done = Vec::with_capacity(calls.len());
        let mut incomplete = None;
        for call in calls {
            let resp = match okta.send(&call).await {
                Ok(r) => r,
                // The first call failing means nothing happened: an error, as usual.
                Err(e) if done.is_empty() => return Err(e.into()),
                Err(e) => {
                    incomplete = Some(Incomplete {
                        failed_request: call,
                        error: e.to_string(),
                    });
                    break;
                }
            };
            done.push(call);
            // Lifecycle calls answer an empty body, a token/link/password object, or the user.
            if let Some(o) = resp
                .body
                .as_object()
                .filter(|o| !o.is_empty() && !o.contains_key("profile"))
            {
                result = Some(Value::Object(o.clone()));
            }
        }
        let after = okta
            .send(&OktaCall::new("GET", OktaPath::user(id)))
            .await
            .map(|r| UserSummary::from_okta(&r.body))
            .unwrap_or(user);
        Ok(ActionReport {
            action: action.to_owned(),
            dry_run: false,
            user: after,
            okta_requests: done,
            result,
            reason: opts.reason.clone(),
            incomplete,
        })
    }
}
