//! `/v1/users/…` enforcement: containment and its undo (scope `enforce:write`), role assignment,
//! passwords and credentials handed back (`enforce:admin`), look-ups (`enforce:read`) and the
//! audit log (`enforce:read` or `admin`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AuditRead, Auth, EnforceAdmin, EnforceRead, EnforceWrite, EnforceWriteOrAdmin};
use super::error::{OktaErrorView, Upstream};
use super::openapi::{AuthErrors, OktaErrors};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem};
use crate::auth::Scope;
use crate::enforcement::audit::AuditFilter;
use crate::enforcement::{
    ActionOptions, ActionReport, Collection, EnforceError, LifecycleAction, UserSummary,
};
use crate::okta::OktaApiError;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(suspend))
        .routes(routes!(unsuspend))
        .routes(routes!(deactivate))
        .routes(routes!(activate))
        .routes(routes!(reactivate))
        .routes(routes!(unlock))
        .routes(routes!(clear_sessions))
        .routes(routes!(expire_password))
        .routes(routes!(reset_password))
        .routes(routes!(reset_factors))
        .routes(routes!(set_password))
        .routes(routes!(get_user))
        .routes(routes!(okta_status))
        .routes(routes!(update_profile))
        .routes(routes!(list_users))
        .routes(routes!(list_groups))
        .routes(routes!(list_identity_providers))
        .routes(routes!(user_groups))
        .routes(routes!(user_roles, assign_role))
        .routes(routes!(unassign_role))
        .routes(routes!(get_group))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(audit))
}

impl From<EnforceError> for ApiError {
    fn from(e: EnforceError) -> Self {
        let upstream = |status, slug, detail: String, okta| {
            ApiError::Upstream(Box::new(Upstream {
                status,
                slug,
                detail,
                okta,
                candidates: None,
                retry_after: None,
            }))
        };
        match e {
            EnforceError::NotConfigured => ApiError::Unavailable(e.to_string()),
            EnforceError::PasswordTooShort(m) => ApiError::field("length", m),
            EnforceError::Password(m) => {
                ApiError::Unavailable(format!("cannot generate a password now: {m}"))
            }
            EnforceError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            EnforceError::NotPermitted(m) => ApiError::NotPermitted(m),
            EnforceError::Ambiguous { ref candidates, .. } => {
                ApiError::Upstream(Box::new(Upstream {
                    status: StatusCode::CONFLICT,
                    slug: "ambiguous-identity",
                    detail: e.to_string(),
                    okta: None,
                    candidates: serde_json::to_value(candidates).ok(),
                    retry_after: None,
                }))
            }
            EnforceError::Okta(OktaApiError::RateLimited { retry_after_secs }) => {
                ApiError::Upstream(Box::new(Upstream {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    slug: "okta-rate-limited",
                    detail: format!(
                        "Okta's rate limit is exhausted; retry in {retry_after_secs} s"
                    ),
                    okta: None,
                    candidates: None,
                    retry_after: Some(retry_after_secs),
                }))
            }
            EnforceError::Okta(OktaApiError::Api {
                status,
                error_code,
                error_summary,
                error_causes,
                error_id,
            }) => {
                let view = Some(OktaErrorView {
                    status,
                    error_code: error_code.clone(),
                    error_summary: error_summary.clone(),
                    error_causes,
                    error_id,
                });
                match (status, error_code.as_str()) {
                    (401, _) | (_, "E0000011") | (_, "E0000004") => upstream(
                        StatusCode::BAD_GATEWAY,
                        "okta-auth-failed",
                        format!(
                            "Okta refused this service's credentials ({error_code}: {error_summary}); check [okta] api_token or [okta.oauth], and the admin role of the token's owner or the service app"
                        ),
                        view,
                    ),
                    (404, _) => upstream(
                        StatusCode::NOT_FOUND,
                        "not-found",
                        format!("Okta: {error_summary}"),
                        view,
                    ),
                    (400 | 403 | 409, _) => upstream(
                        StatusCode::CONFLICT,
                        "okta-refused",
                        format!("Okta refused the change ({error_code}: {error_summary})"),
                        view,
                    ),
                    _ => upstream(
                        StatusCode::BAD_GATEWAY,
                        "okta-error",
                        format!("Okta answered {status} ({error_code}: {error_summary})"),
                        view,
                    ),
                }
            }
            EnforceError::Okta(OktaApiError::OAuth { error, description }) => upstream(
                StatusCode::BAD_GATEWAY,
                "okta-auth-failed",
                format!(
                    "Okta's authorization server refused this service's OAuth app ({error}: {description}); check [okta.oauth] client_id, key, key_id and the scopes granted to the app"
                ),
                None,
            ),
            EnforceError::Okta(OktaApiError::InsufficientScope {
                error_code,
                error_summary,
            }) => upstream(
                StatusCode::BAD_GATEWAY,
                "okta-insufficient-scope",
                format!(
                    "the service app's access token lacks the Okta scope this call needs ({error_code}: {error_summary}); grant the scope to the app in Okta and list it in [okta.oauth] scopes"
                ),
                None,
            ),
            EnforceError::Okta(OktaApiError::Transport(t)) => upstream(
                StatusCode::BAD_GATEWAY,
                "okta-unreachable",
                format!("cannot reach Okta: {t}"),
                None,
            ),
        }
    }
}

/// Options of a lifecycle action.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActionParams {
    /// Return the exact Okta request without sending it.
    pub dry_run: Option<bool>,
    /// Okta's `sendEmail` (deactivate, activate, reactivate; Okta's defaults otherwise).
    pub send_email: Option<bool>,
}

/// Optional body of an action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Why; recorded in the audit log (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

fn parse_body(bytes: &Bytes) -> Result<ActionBody, ApiError> {
    let body: ActionBody = super::parse_optional_json(bytes)?;
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 1000)
    {
        return Err(ApiError::field("reason", "must be at most 1000 characters"));
    }
    Ok(body)
}

async fn act(
    state: &AppState,
    auth: &Auth<EnforceWriteOrAdmin>,
    user: &str,
    action: LifecycleAction,
    params: ActionParams,
    body: &Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    // An activation link handed back (not e-mailed by Okta) is a credential. Okta's default
    // `sendEmail` is true for activate but false for reactivate: without the parameter,
    // reactivate hands the link back.
    let hands_back_link = match action {
        LifecycleAction::Activate => params.send_email == Some(false),
        LifecycleAction::Reactivate => params.send_email != Some(true),
        _ => false,
    };
    auth.require(if hands_back_link {
        Scope::EnforceAdmin
    } else {
        Scope::EnforceWrite
    })?;
    let body = parse_body(body)?;
    let caller = &auth.caller;
    let opts = ActionOptions {
        dry_run: params.dry_run.unwrap_or(false),
        send_email: params.send_email,
        reason: body.reason,
    };
    Ok(ApiJson(
        state.enforcer.lifecycle(caller, user, action, opts).await?,
    ))
}

macro_rules! lifecycle_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        lifecycle_route!($name, $path, $action, $doc, (("bearer" = ["enforce:write"])));
    };
    ($name:ident, $path:literal, $action:expr, $doc:literal, $security:tt) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "enforcement",
            params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), ActionParams),
            request_body(content = Option<ActionBody>, description = "Optional: the reason, recorded in the audit log"),
            security $security,
            responses(
                (status = 200, description = "Done (or planned, with dry_run); the user's status after the action", body = ActionReport),
                (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "Several users match (candidates listed), or Okta refused the transition (its errorCode/errorSummary attached)", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
                OktaErrors, AuthErrors))]
        pub async fn $name(
            auth: Auth<EnforceWriteOrAdmin>,
            State(state): State<AppState>,
            ApiPath(user): ApiPath<String>,
            ApiQuery(params): ApiQuery<ActionParams>,
            body: Bytes,
        ) -> Result<ApiJson<ActionReport>, ApiError> {
            act(&state, &auth, &user, $action, params, &body).await
        }
    };
}

lifecycle_route!(
    suspend,
    "/v1/users/{user}/suspend",
    LifecycleAction::Suspend,
    "Suspend a user (ACTIVE → SUSPENDED)."
);
lifecycle_route!(
    unsuspend,
    "/v1/users/{user}/unsuspend",
    LifecycleAction::Unsuspend,
    "Unsuspend a user (SUSPENDED → ACTIVE)."
);
lifecycle_route!(
    deactivate,
    "/v1/users/{user}/deactivate",
    LifecycleAction::Deactivate,
    "Deactivate a user (→ DEPROVISIONED). Destructive: sessions and app assignments end."
);
lifecycle_route!(
    activate,
    "/v1/users/{user}/activate",
    LifecycleAction::Activate,
    "Activate a STAGED or DEPROVISIONED user. Scope `enforce:write`; with `send_email=false` the activation link is returned, which needs `enforce:admin`.",
    (
        ("bearer" = ["enforce:write"]),
        ("bearer" = ["enforce:admin"])
    )
);
lifecycle_route!(
    reactivate,
    "/v1/users/{user}/reactivate",
    LifecycleAction::Reactivate,
    "Reactivate a PROVISIONED or RECOVERY user. Scope `enforce:write` with `send_email=true`; without it (Okta's default for reactivate is false) or with `send_email=false` the new activation link is returned, which needs `enforce:admin`.",
    (
        ("bearer" = ["enforce:write"]),
        ("bearer" = ["enforce:admin"])
    )
);
lifecycle_route!(
    unlock,
    "/v1/users/{user}/unlock",
    LifecycleAction::Unlock,
    "Unlock a LOCKED_OUT user."
);

/// Options of clearing sessions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    /// Also revoke OAuth/OIDC access and refresh tokens (default **true**: containment).
    pub oauth_tokens: Option<bool>,
    /// Forget remembered devices (Okta's default when absent).
    pub forget_devices: Option<bool>,
    /// Return the exact Okta request without sending it.
    pub dry_run: Option<bool>,
}

/// Options of password actions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PasswordParams {
    /// expire-password: set a temporary password and return it (once).
    pub temp_password: Option<bool>,
    /// reset-password: let Okta email the user (default true); false returns the reset URL.
    pub send_email: Option<bool>,
    /// Also end the user's sessions.
    pub revoke_sessions: Option<bool>,
    /// Return the exact Okta request(s) without sending them.
    pub dry_run: Option<bool>,
}

/// Options of reset-factors.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DryRunParams {
    /// Return the exact Okta request without sending it.
    pub dry_run: Option<bool>,
}

fn opts(dry_run: Option<bool>, body: &Bytes) -> Result<ActionOptions, ApiError> {
    Ok(ActionOptions {
        dry_run: dry_run.unwrap_or(false),
        send_email: None,
        reason: parse_body(body)?.reason,
    })
}

/// Clear a user's sessions (and, by default, OAuth tokens).
#[utoipa::path(delete, path = "/v1/users/{user}/sessions", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), SessionParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Sessions cleared (or planned)", body = ActionReport),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn clear_sessions(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<SessionParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .clear_sessions(
                &auth.caller,
                &user,
                p.oauth_tokens.unwrap_or(true),
                p.forget_devices,
                o,
            )
            .await?,
    ))
}

/// Expire a user's password.
///
/// Scope `enforce:write`. With `temp_password=true` Okta sets a temporary password, returned
/// once in `result`: that hands a credential back and needs `enforce:admin` instead.
/// `revoke_sessions=true` also ends the user's sessions.
#[utoipa::path(post, path = "/v1/users/{user}/expire-password", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), PasswordParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"]), ("bearer" = ["enforce:admin"])),
    responses(
        (status = 200, description = "Expired (or planned)", body = ActionReport),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn expire_password(
    auth: Auth<EnforceWriteOrAdmin>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<PasswordParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    // A temporary password handed back is a credential.
    auth.require(if p.temp_password == Some(true) {
        Scope::EnforceAdmin
    } else {
        Scope::EnforceWrite
    })?;
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .expire_password(
                &auth.caller,
                &user,
                p.temp_password.unwrap_or(false),
                p.revoke_sessions.unwrap_or(false),
                o,
            )
            .await?,
    ))
}

/// Start a password reset.
///
/// Okta emails the user (scope `enforce:write`) unless `send_email=false`, in which case the
/// reset URL is returned: that hands a credential back and needs `enforce:admin` instead.
#[utoipa::path(post, path = "/v1/users/{user}/reset-password", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), PasswordParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"]), ("bearer" = ["enforce:admin"])),
    responses(
        (status = 200, description = "Reset started (or planned)", body = ActionReport),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn reset_password(
    auth: Auth<EnforceWriteOrAdmin>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<PasswordParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    // A reset link handed back (not e-mailed by Okta) is a credential.
    auth.require(if p.send_email == Some(false) {
        Scope::EnforceAdmin
    } else {
        Scope::EnforceWrite
    })?;
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .reset_password(
                &auth.caller,
                &user,
                p.send_email.unwrap_or(true),
                p.revoke_sessions.unwrap_or(false),
                o,
            )
            .await?,
    ))
}

/// Options of setting a password.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordParams {
    /// Also end the user's sessions and revoke their OAuth tokens.
    pub revoke_sessions: Option<bool>,
    /// Return the exact Okta request(s) without sending them (the password shown as
    /// `[redacted]`).
    pub dry_run: Option<bool>,
}

/// What password to set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordBody {
    /// The password to set. Absent: one is generated from the configured policy
    /// (`[enforcement.password]`) and returned once.
    #[schema(value_type = Option<String>, format = Password, write_only, min_length = 1, max_length = 256)]
    pub password: Option<secrecy::SecretString>,
    /// Append this many random characters (0–64) to `password`; the result is returned once.
    /// Needs `password`.
    #[schema(minimum = 0, maximum = 64)]
    pub append_random: Option<usize>,
    /// Length of a generated password (8–256; default from the policy). Only without
    /// `password`.
    #[schema(minimum = 8, maximum = 256)]
    pub length: Option<usize>,
    /// Why; recorded in the audit log (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// Set a user's password: the given one, the given one plus random characters, or a generated
/// one. Scope `enforce:admin`.
///
/// Uses Okta's admin set-password (`POST /api/v1/users/{id}` with
/// `credentials.password.value`), subject to the org's password policy (Okta answers 400
/// `E0000001` when the password breaks it → 409 here). A password made here is returned once in
/// `result.password`; no password appears in the audit log, the logs, or a dry run.
#[utoipa::path(post, path = "/v1/users/{user}/password", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), SetPasswordParams),
    request_body(content = Option<SetPasswordBody>, description = "Optional: the password, and the reason"),
    security(("bearer" = ["enforce:admin"])),
    responses(
        (status = 200, description = "Password set (or planned); a generated password is in result.password", body = ActionReport),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused (e.g. the password policy)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (length, append_random, empty password)", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn set_password(
    auth: Auth<EnforceAdmin>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<SetPasswordParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    use secrecy::ExposeSecret as _;
    let b: SetPasswordBody = super::parse_optional_json(&body)?;
    if let Some(pw) = &b.password {
        let n = pw.expose_secret().chars().count();
        if n == 0 || n > 256 {
            return Err(ApiError::field("password", "must be 1 to 256 characters"));
        }
    }
    let append = b.append_random.unwrap_or(0);
    if append > 64 {
        return Err(ApiError::field("append_random", "must be at most 64"));
    }
    if append > 0 && b.password.is_none() {
        return Err(ApiError::field(
            "append_random",
            "needs a password to append to; leave both out to generate one",
        ));
    }
    if let Some(len) = b.length {
        if b.password.is_some() {
            return Err(ApiError::field(
                "length",
                "applies only to generated passwords",
            ));
        }
        if !(8..=256).contains(&len) {
            return Err(ApiError::field("length", "must be between 8 and 256"));
        }
    }
    if b.reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::field("reason", "must be at most 1000 characters"));
    }
    let request = crate::enforcement::PasswordRequest {
        password: b.password,
        append_random: append,
        length: b.length,
        revoke_sessions: p.revoke_sessions.unwrap_or(false),
    };
    let opts = ActionOptions {
        dry_run: p.dry_run.unwrap_or(false),
        send_email: None,
        reason: b.reason,
    };
    Ok(ApiJson(
        state
            .enforcer
            .set_password(&auth.caller, &user, request, opts)
            .await?,
    ))
}

/// Reset every enrolled MFA factor of a user.
#[utoipa::path(post, path = "/v1/users/{user}/reset-factors", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), DryRunParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Factors reset (or planned)", body = ActionReport),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn reset_factors(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<DryRunParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state.enforcer.reset_factors(&auth.caller, &user, o).await?,
    ))
}

/// A user look-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserLookup {
    /// The resolved user.
    pub user: UserSummary,
    /// Okta's full user object.
    #[schema(value_type = Object)]
    pub okta: Value,
}

/// Look up one user.
#[utoipa::path(get, path = "/v1/users/{user}", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com")),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "The user", body = UserLookup),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several users match (candidates listed)", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn get_user(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
) -> Result<ApiJson<UserLookup>, ApiError> {
    let (user, okta) = state.enforcer.resolve(&user).await?;
    Ok(ApiJson(UserLookup { user, okta }))
}

/// Options of a profile update.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfileParams {
    /// Why; recorded in the audit log (at most 1000 characters).
    #[param(max_length = 1000)]
    pub reason: Option<String>,
    /// Return the exact Okta request without sending it.
    pub dry_run: Option<bool>,
}

/// Change profile attributes (e.g. a risk attribute such as `{"uebaHealth": 75}`).
///
/// The body is the attribute map; Okta's partial update is used, so other attributes are kept.
/// Okta's identity attributes (`login`, `email`, `secondEmail`, `mobilePhone`, `primaryPhone`)
/// are refused with 403 `not-permitted` unless `[enforcement] profile_attributes` lists them;
/// when that list is set, only the attributes it names may change.
#[utoipa::path(patch, path = "/v1/users/{user}/profile", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), ProfileParams),
    request_body(content = Object, description = "Profile attributes to change", example = json!({"uebaHealth": 75})),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Updated (or planned)", body = ActionReport),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused (e.g. unknown attribute)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a non-empty attribute map", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn update_profile(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<ProfileParams>,
    ApiJson(attributes): ApiJson<serde_json::Map<String, Value>>,
) -> Result<ApiJson<ActionReport>, ApiError> {
    if attributes.is_empty() {
        return Err(ApiError::field(
            "body",
            "give at least one profile attribute to change",
        ));
    }
    if let Some((k, _)) = attributes.iter().find(|(_, v)| v.is_object()) {
        return Err(ApiError::field(
            k.clone(),
            "profile attributes are strings, numbers, booleans, arrays or null",
        ));
    }
    if p.reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::field("reason", "must be at most 1000 characters"));
    }
    let o = ActionOptions {
        dry_run: p.dry_run.unwrap_or(false),
        send_email: None,
        reason: p.reason,
    };
    Ok(ApiJson(
        state
            .enforcer
            .update_profile(&auth.caller, &user, attributes, o)
            .await?,
    ))
}

/// User list options (Okta's).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserListParams {
    /// Starts-with match on first name, last name or email (omits DEPROVISIONED users).
    pub q: Option<String>,
    /// Okta filter expression, e.g. `status eq "SUSPENDED"`.
    pub filter: Option<String>,
    /// Okta search expression, e.g. `profile.department eq "Finance"`.
    pub search: Option<String>,
    /// Most users to return (1–1000, default 200); pages are followed.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Okta's opaque cursor.
    pub after: Option<String>,
}

fn list_query(pairs: &[(&str, &Option<String>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

fn list_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let l = limit.unwrap_or(200);
    if !(1..=1000).contains(&l) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    Ok(l)
}

/// List or search users.
#[utoipa::path(get, path = "/v1/users", tag = "enforcement",
    params(UserListParams),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Okta user objects", body = Vec<Object>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Okta refused the query (e.g. E0000031 invalid search, E0000033 search with filter)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn list_users(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<UserListParams>,
) -> Result<ApiJson<Vec<Value>>, ApiError> {
    let limit = list_limit(p.limit)?;
    let mut query = list_query(&[
        ("q", &p.q),
        ("filter", &p.filter),
        ("search", &p.search),
        ("after", &p.after),
    ]);
    query.push(("limit".into(), limit.min(200).to_string()));
    Ok(ApiJson(
        state.enforcer.list(Collection::Users, query, limit).await?,
    ))
}

/// Group list options (Okta's).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupListParams {
    /// Starts-with match on the group name.
    pub q: Option<String>,
    /// Okta search expression, e.g. `type eq "OKTA_GROUP"`.
    pub search: Option<String>,
    /// Most groups to return (1–1000, default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// List or search groups.
#[utoipa::path(get, path = "/v1/groups", tag = "enforcement",
    params(GroupListParams),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Okta group objects", body = Vec<Object>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Okta refused the query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn list_groups(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<GroupListParams>,
) -> Result<ApiJson<Vec<Value>>, ApiError> {
    let limit = list_limit(p.limit)?;
    let mut query = list_query(&[("q", &p.q), ("search", &p.search)]);
    query.push(("limit".into(), limit.min(200).to_string()));
    Ok(ApiJson(
        state
            .enforcer
            .list(Collection::Groups, query, limit)
            .await?,
    ))
}

/// Identity provider list options (Okta's).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdpListParams {
    /// Starts-with match on the IdP name.
    pub q: Option<String>,
    /// IdP type, e.g. `SAML2`, `OIDC`, `GOOGLE`, `MICROSOFT`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<IdpType>, inline)]
    pub kind: Option<String>,
    /// Most IdPs to return (1–1000; pages of up to 200 are followed, Okta's default page is 20).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// List identity providers (`GET /api/v1/idps`).
#[utoipa::path(get, path = "/v1/identity-providers", tag = "enforcement",
    params(IdpListParams),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Okta identity provider objects", body = Vec<Object>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Okta refused the query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or type", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn list_identity_providers(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<IdpListParams>,
) -> Result<ApiJson<Vec<Value>>, ApiError> {
    let limit = list_limit(p.limit)?;
    if let Some(k) = &p.kind
        && !crate::enforcement::IDP_TYPES.contains(&k.as_str())
    {
        return Err(ApiError::field(
            "type",
            format!(
                "must be one of Okta's IdP types: {}",
                crate::enforcement::IDP_TYPES.join(", ")
            ),
        ));
    }
    let mut query = list_query(&[("q", &p.q), ("type", &p.kind)]);
    query.push(("limit".into(), limit.min(200).to_string()));
    Ok(ApiJson(
        state
            .enforcer
            .list(Collection::IdentityProviders, query, limit)
            .await?,
    ))
}

/// A user's admin roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRoles {
    /// The resolved user.
    pub user: UserSummary,
    /// Okta role assignments (`id`, `type`, `label`, `status`, …).
    #[schema(value_type = Vec<Object>)]
    pub roles: Vec<Value>,
}

/// The admin roles assigned to a user.
#[utoipa::path(get, path = "/v1/users/{user}/roles", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com")),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Role assignments", body = UserRoles),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several users match", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn user_roles(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
) -> Result<ApiJson<UserRoles>, ApiError> {
    let (user, roles) = state.enforcer.user_roles(&user).await?;
    Ok(ApiJson(UserRoles { user, roles }))
}

/// One of `values`, as a string schema (the lists are the ones the handlers check against).
fn one_of(values: &[&str]) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// The schema of a standard Okta admin role type (`STANDARD_ROLE_TYPES`).
struct RoleType;

impl utoipa::PartialSchema for RoleType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        one_of(crate::enforcement::STANDARD_ROLE_TYPES)
    }
}

impl ToSchema for RoleType {}

/// The schema of an Okta IdP type (`IDP_TYPES`).
struct IdpType;

impl utoipa::PartialSchema for IdpType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        one_of(crate::enforcement::IDP_TYPES)
    }
}

impl ToSchema for IdpType {}

/// Options of a role assignment.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RoleParams {
    /// Standard role type, e.g. `READ_ONLY_ADMIN`, `HELP_DESK_ADMIN`, `SUPER_ADMIN`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = RoleType, inline)]
    pub role_type: String,
    /// Return the exact Okta request without sending it.
    pub dry_run: Option<bool>,
}

/// Assign an admin role to a user.
///
/// Scope `enforce:admin`. Only the roles `[enforcement] assignable_roles` allows (default: every
/// standard role except `SUPER_ADMIN` and `ORG_ADMIN`); others get 403 `not-permitted` and
/// nothing is sent.
#[utoipa::path(post, path = "/v1/users/{user}/roles", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), RoleParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:admin"])),
    responses(
        (status = 200, description = "Assigned (or planned); the assignment is in `result`", body = ActionReport),
        (status = 400, description = "Missing type", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already assigned (Okta E0000090), or ambiguous identity", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a standard role type, or invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn assign_role(
    auth: Auth<EnforceAdmin>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(p): ApiQuery<RoleParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    if !crate::enforcement::STANDARD_ROLE_TYPES.contains(&p.role_type.as_str()) {
        return Err(ApiError::field(
            "type",
            format!(
                "must be one of Okta's standard admin roles: {}",
                crate::enforcement::STANDARD_ROLE_TYPES.join(", ")
            ),
        ));
    }
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .assign_role(&auth.caller, &user, &p.role_type, o)
            .await?,
    ))
}

/// Remove an admin role from a user (by assignment id or role type).
#[utoipa::path(delete, path = "/v1/users/{user}/roles/{role}", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"),
        ("role" = String, Path, description = "Role assignment id, or a role type resolved to the assignment"), DryRunParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Removed (or planned)", body = ActionReport),
        (status = 404, description = "No such user or assignment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn unassign_role(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath((user, role)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<DryRunParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .unassign_role(&auth.caller, &user, &role, o)
            .await?,
    ))
}

/// Okta connectivity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OktaStatus {
    /// `ok`.
    pub status: String,
    /// The org.
    pub org_url: String,
    /// `api_token` (SSWS) or `oauth` (service app).
    pub auth_mode: String,
    /// Round trip of the check, milliseconds.
    pub latency_ms: u64,
    /// For `oauth`: the app, DPoP, and the scopes Okta granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<crate::okta::oauth::OAuthStatus>,
}

/// Check Okta: reachable, and our credentials accepted.
#[utoipa::path(get, path = "/v1/okta/status", tag = "enforcement",
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Okta answered and accepted our credentials", body = OktaStatus),
        OktaErrors, AuthErrors))]
pub async fn okta_status(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
) -> Result<ApiJson<OktaStatus>, ApiError> {
    let ping = state.enforcer.ping().await?;
    Ok(ApiJson(OktaStatus {
        status: "ok".into(),
        org_url: ping.org_url,
        auth_mode: ping.auth_mode.into(),
        latency_ms: u64::try_from(ping.latency_ms).unwrap_or(u64::MAX),
        oauth: ping.oauth,
    }))
}

/// A user's groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserGroups {
    /// The resolved user.
    pub user: UserSummary,
    /// Okta group objects.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<Value>,
}

/// The groups a user belongs to.
#[utoipa::path(get, path = "/v1/users/{user}/groups", tag = "enforcement",
    params(("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com")),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Groups", body = UserGroups),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several users match", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn user_groups(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<String>,
) -> Result<ApiJson<UserGroups>, ApiError> {
    let (user, groups) = state.enforcer.user_groups(&user).await?;
    Ok(ApiJson(UserGroups { user, groups }))
}

/// Look up one group.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "enforcement",
    params(("group" = String, Path, description = "Okta group id or exact group name", example = "Restricted Users")),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Okta's group object", body = Object),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several groups have this name", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn get_group(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(group): ApiPath<String>,
) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(state.enforcer.resolve_group(&group).await?))
}

/// Add a user to a group (e.g. a restricted-access quarantine group).
#[utoipa::path(put, path = "/v1/groups/{group}/members/{user}", tag = "enforcement",
    params(("group" = String, Path, description = "Okta group id or exact group name", example = "Restricted Users"),
        ("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), DryRunParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Added (or planned)", body = ActionReport),
        (status = 404, description = "No such user or group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused (e.g. an APP_GROUP's membership is managed by its source)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn add_member(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath((group, user)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<DryRunParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .membership(&auth.caller, &group, &user, true, o)
            .await?,
    ))
}

/// Remove a user from a group.
#[utoipa::path(delete, path = "/v1/groups/{group}/members/{user}", tag = "enforcement",
    params(("group" = String, Path, description = "Okta group id or exact group name", example = "Restricted Users"),
        ("user" = String, Path, description = "Okta id, login, email, unambiguous login short name, or DOMAIN\\sam / UPN mapped by [enforcement.identity]", example = "jane.doe@example.com"), DryRunParams),
    request_body(content = Option<ActionBody>, description = "Optional: the reason"),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Removed (or planned)", body = ActionReport),
        (status = 404, description = "No such user or group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Ambiguous identity, or Okta refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn remove_member(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath((group, user)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<DryRunParams>,
    body: Bytes,
) -> Result<ApiJson<ActionReport>, ApiError> {
    let o = opts(p.dry_run, &body)?;
    Ok(ApiJson(
        state
            .enforcer
            .membership(&auth.caller, &group, &user, false, o)
            .await?,
    ))
}

/// Audit filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Rows whose target contains this (an Okta id or login).
    pub user: Option<String>,
    /// Exact action, e.g. `user.suspend`, `key.activate`.
    pub action: Option<String>,
    /// API client name (names can be reused after a revocation).
    pub client: Option<String>,
    /// API client id (stable; `admin-token` and `cli` for the service's own).
    pub client_id: Option<String>,
    /// RFC 3339: rows at or after this time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// At most this many (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRow {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: String,
    /// Who (API client name, `admin-token`, `cli`).
    pub client: String,
    /// The API client's stable id (names can be reused after a revocation, ids cannot); absent
    /// on rows written before ids were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok` or `error`.
    pub outcome: String,
    /// Details, always an object: `dry_run`, `reason`, `okta_status`, `okta_error_code`, … for
    /// enforcement; a detail recorded as text (e.g. why an admin action failed, or rows written
    /// before details were structured) is `{"message": "…"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Map<String, Value>>,
}

/// A stored detail as an object: JSON objects as they are, anything else under `message`.
fn audit_detail(stored: String) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(&stored) {
        Ok(Value::Object(o)) => o,
        _ => serde_json::Map::from_iter([("message".to_owned(), Value::String(stored))]),
    }
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "enforcement",
    params(AuditParams),
    security(("bearer" = ["enforce:read"]), ("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Rows", body = Vec<AuditRow>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn audit(
    _auth: Auth<AuditRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<ApiJson<Vec<AuditRow>>, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::field("since", "must be RFC 3339, e.g. 2026-11-25T10:00:00Z")
                })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    let rows = state
        .audit
        .list(&AuditFilter {
            target_contains: q.user,
            action: q.action,
            actor: q.client,
            actor_id: q.client_id,
            since,
            limit,
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| AuditRow {
                id: r.id,
                at: r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                client: r.actor,
                client_id: r.actor_id,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                detail: r.detail.map(audit_detail),
            })
            .collect(),
    ))
}
