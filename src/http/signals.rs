//! `/v1/signals`: intake (scope `signals:write`) and delivery status (scope `signals:read`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, SignalsRead, SignalsWrite};
use super::openapi::{AuthErrors, BodyErrors};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, FieldError, Problem, RawJson};
use crate::auth::Caller;
use crate::enforcement::idempotency::Check;
use crate::set::EventType;
use crate::signals::request::{self, Ctx};
use crate::signals::{
    DeliveryStatus, IdempotencyKey, IntakeError, ItemResult, OutboxFilter, OutboxRow, Outcome,
    QueuedSet,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_risk))
        .routes(routes!(device_risk))
        .routes(routes!(ip_change))
        .routes(routes!(session_revoked))
        .routes(routes!(device_compliance))
        .routes(routes!(identifier_changed))
        .routes(routes!(credential_change))
        .routes(routes!(assurance_level_change))
        .routes(routes!(token_claims_change))
        .routes(routes!(account_disabled))
        .routes(routes!(account_enabled))
        .routes(routes!(credential_compromise))
        .routes(routes!(batch))
        .routes(routes!(receivers))
        .routes(routes!(list_signals))
        .routes(routes!(get_signal))
        .routes(routes!(retry_signal))
}

/// The answer to one accepted signal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// `queued` (202), `unchanged` (200) or `unrouted` (200: no receiver takes this event about
    /// this subject — Okta does not take its type and no standard stream delivers it to them).
    #[schema(example = "queued")]
    pub status: String,
    /// Event type.
    pub event_type: EventType,
    /// The first SET's `jti` (when queued): Okta's when Okta takes the signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When queued: every SET the signal became, one per receiver (`okta` or a standard
    /// stream's id), each in that receiver's dialect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<QueuedSet>,
    /// The unchanged level or status (when unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When unchanged: the `jti` of the SET that carried the level this signal matched. Look it
    /// up with `GET /v1/signals/{jti}`; if it failed, the receiver never got that level — send
    /// again with `force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_jti: Option<String>,
    /// When unchanged: that SET's delivery status now (absent when it is no longer stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_status: Option<DeliveryStatus>,
}

impl From<&Outcome> for Accepted {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::Queued {
                jti,
                event_type,
                sets,
            } => Accepted {
                status: "queued".into(),
                event_type: *event_type,
                jti: Some(jti.clone()),
                sets: sets.clone(),
                value: None,
                matched_jti: None,
                matched_status: None,
            },
            Outcome::Unchanged {
                event_type,
                value,
                matched_jti,
                matched_status,
            } => Accepted {
                status: "unchanged".into(),
                event_type: *event_type,
                jti: None,
                sets: Vec::new(),
                value: Some(value.clone()),
                matched_jti: matched_jti.clone(),
                matched_status: *matched_status,
            },
            Outcome::Unrouted { event_type } => Accepted {
                status: "unrouted".into(),
                event_type: *event_type,
                jti: None,
                sets: Vec::new(),
                value: None,
                matched_jti: None,
                matched_status: None,
            },
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::NoReceiver => ApiError::Unavailable(e.to_string()),
            IntakeError::Store(s) => ApiError::internal(s),
            IntakeError::Sign(s) => ApiError::internal(s),
            IntakeError::NoStandardForm(_) => ApiError::internal(e),
            IntakeError::IdempotencyRace => {
                ApiError::Conflict("a request with this Idempotency-Key is in progress".into())
            }
        }
    }
}

fn idempotency_key(
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(key) = super::idempotency::key_from(headers)? else {
        return Ok(None);
    };
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(path.as_bytes());
    ctx.update(b"\n");
    ctx.update(body);
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: ctx.finish().as_ref().to_vec(),
    }))
}

fn json_response(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// A stored response for this key, or `None` to go ahead. Same key with another request → 422.
async fn replay(
    state: &AppState,
    caller: &Caller,
    key: &IdempotencyKey,
) -> Result<Option<Response>, ApiError> {
    match state
        .idempotency
        .check(&caller.id, &key.key, &key.request_hash)
        .await
        .map_err(ApiError::internal)?
    {
        Check::Replay { status, body } => Ok(Some(json_response(status, body, true))),
        Check::Mismatch => Err(super::idempotency::mismatch()),
        Check::Fresh => Ok(None),
    }
}

/// Runs drafts through intake with idempotency; `render` builds the response from the results.
async fn run_intake<R>(
    state: &AppState,
    caller: &Caller,
    drafts: Vec<Result<request::Draft, Vec<FieldError>>>,
    idem: Option<IdempotencyKey>,
    render: R,
) -> Result<Response, ApiError>
where
    R: Fn(&[ItemResult]) -> (u16, String),
{
    if let Some(k) = &idem
        && let Some(resp) = replay(state, caller, k).await?
    {
        return Ok(resp);
    }
    match state
        .intake
        .submit(caller, drafts, idem.clone(), &render)
        .await
    {
        Ok(results) => {
            let (status, body) = render(&results);
            Ok(json_response(status, body, false))
        }
        Err(IntakeError::IdempotencyRace) => match &idem {
            Some(k) => replay(state, caller, k).await?.ok_or_else(|| {
                ApiError::Conflict("a request with this Idempotency-Key is in progress".into())
            }),
            None => Err(ApiError::internal(anyhow::anyhow!(
                "idempotency race without a key"
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

async fn single(
    state: AppState,
    caller: Caller,
    event_type: EventType,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    state.intake.require_receiver().await?;
    let path = format!("/v1/signals/{}", event_type.as_str());
    let idem = idempotency_key(&headers, &path, &body.bytes)?;
    let ctx = Ctx {
        config: state.intake.config(),
        now: state.clock.now(),
        prefix: "",
    };
    let draft = request::parse(event_type, body.value, &ctx).map_err(ApiError::Validation)?;
    run_intake(
        &state,
        &caller,
        vec![Ok(draft)],
        idem,
        |results| match results.first() {
            Some(Ok(o)) => {
                let status = if matches!(o, Outcome::Queued { .. }) {
                    202
                } else {
                    200
                };
                (
                    status,
                    serde_json::to_string(&Accepted::from(o)).unwrap_or_default(),
                )
            }
            Some(Err(errors)) => {
                let problem = ApiError::Validation(errors.clone());
                (
                    422,
                    serde_json::to_string(&problem_of(problem)).unwrap_or_default(),
                )
            }
            None => (500, "{}".into()),
        },
    )
    .await
    .map(|resp| {
        // A state-dependent rejection (e.g. previous_status unknown) is a problem, not JSON.
        if resp.status() == StatusCode::UNPROCESSABLE_ENTITY {
            let mut resp = resp;
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(super::error::PROBLEM_JSON),
            );
            resp
        } else {
            resp
        }
    })
}

fn problem_of(e: ApiError) -> Value {
    let resp_problem = super::error::problem_body(&e);
    serde_json::to_value(resp_problem).unwrap_or(Value::Null)
}

macro_rules! intake_route {
    ($fn_name:ident, $path:literal, $body:ty, $event:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "signals",
            request_body = $body,
            params(("Idempotency-Key" = Option<String>, Header, description = "Repeat a request safely: the first response is returned again and no second SET is made")),
            security(("bearer" = ["signals:write"])),
            responses(
                (status = 202, description = "Signed and queued for delivery", body = Accepted),
                (status = 200, description = "Unchanged since the last accepted signal for this subject (`unchanged`), or no receiver takes it (`unrouted`): nothing sent", body = Accepted),
                (status = 409, description = "A request with this Idempotency-Key is in progress", body = Problem, content_type = "application/problem+json"),
                (status = 503, description = "No receiver: no [okta] org_url and no standard stream", body = Problem, content_type = "application/problem+json"),
                BodyErrors, AuthErrors))]
        pub async fn $fn_name(
            auth: Auth<SignalsWrite>,
            State(state): State<AppState>,
            headers: HeaderMap,
            body: RawJson,
        ) -> Result<Response, ApiError> {
            single(state, auth.caller, $event, headers, body).await
        }
    };
}

intake_route!(
    user_risk,
    "/v1/signals/user-risk",
    request::RiskSignal,
    EventType::UserRisk,
    "Report a user's risk level.\n\nGive exactly one of `current_level`, `score` (0–100) or `severity`. `previous_level` defaults to the last level accepted for this user; an unchanged level is not sent unless `force`."
);
intake_route!(
    device_risk,
    "/v1/signals/device-risk",
    request::RiskSignal,
    EventType::DeviceRisk,
    "Report a device's risk level.\n\nThe subject must name the `device` (and should name the `user`)."
);
intake_route!(
    ip_change,
    "/v1/signals/ip-change",
    request::IpChangeSignal,
    EventType::IpChange,
    "Report that a user's session IP address changed."
);
intake_route!(
    session_revoked,
    "/v1/signals/session-revoked",
    request::SessionRevokedSignal,
    EventType::SessionRevoked,
    "Report that a user's session was revoked (CAEP session-revoked)."
);
intake_route!(
    device_compliance,
    "/v1/signals/device-compliance",
    request::DeviceComplianceSignal,
    EventType::DeviceCompliance,
    "Report a device's compliance change (CAEP device-compliance-change).\n\n`previous_status` defaults to the last status accepted for this device."
);
intake_route!(
    identifier_changed,
    "/v1/signals/identifier-changed",
    request::IdentifierChangedSignal,
    EventType::IdentifierChanged,
    "Report that a user's identifier (email or phone) changed (RISC identifier-changed)."
);

intake_route!(
    credential_change,
    "/v1/signals/credential-change",
    request::CredentialChangeSignal,
    EventType::CredentialChange,
    "Report that a user's credential was created, revoked, updated or deleted (CAEP credential-change).\n\nStandard streams only: Okta's receiver does not take this event."
);
intake_route!(
    assurance_level_change,
    "/v1/signals/assurance-level-change",
    request::AssuranceLevelChangeSignal,
    EventType::AssuranceLevelChange,
    "Report that a user's authentication assurance level changed (CAEP assurance-level-change).\n\nStandard streams only."
);
intake_route!(
    token_claims_change,
    "/v1/signals/token-claims-change",
    request::TokenClaimsChangeSignal,
    EventType::TokenClaimsChange,
    "Report that claims in a user's tokens changed (CAEP token-claims-change).\n\nStandard streams only."
);
intake_route!(
    account_disabled,
    "/v1/signals/account-disabled",
    request::AccountDisabledSignal,
    EventType::AccountDisabled,
    "Report that a user's account was disabled (RISC account-disabled).\n\nStandard streams only."
);
intake_route!(
    account_enabled,
    "/v1/signals/account-enabled",
    request::AccountEnabledSignal,
    EventType::AccountEnabled,
    "Report that a user's account was enabled (RISC account-enabled).\n\nStandard streams only."
);
intake_route!(
    credential_compromise,
    "/v1/signals/credential-compromise",
    request::CredentialCompromiseSignal,
    EventType::CredentialCompromise,
    "Report that a user's credential was compromised (RISC credential-compromise).\n\nStandard streams only."
);

/// A batch of mixed signals.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to `signals.batch_max` (default 1000) items, each a signal body plus `"type"`:
    /// `user-risk`, `device-risk`, `ip-change`, `session-revoked`, `device-compliance`,
    /// `identifier-changed`, `credential-change`, `assurance-level-change`,
    /// `token-claims-change`, `account-disabled`, `account-enabled` or `credential-compromise`.
    #[schema(value_type = Vec<Object>, min_items = 1)]
    pub signals: Vec<Value>,
}

/// The result of one batch item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    /// `queued`, `unchanged`, `unrouted` or `rejected`.
    pub status: String,
    /// Event type, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// `jti` when queued (the first SET's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When queued: every SET the item became, one per receiver.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<QueuedSet>,
    /// The unchanged value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When unchanged: the `jti` of the SET that carried the matched level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_jti: Option<String>,
    /// When unchanged: that SET's delivery status now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_status: Option<DeliveryStatus>,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The batch answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// Queued count.
    pub queued: usize,
    /// Unchanged count.
    pub unchanged: usize,
    /// Count of items no receiver takes.
    pub unrouted: usize,
    /// Rejected count.
    pub rejected: usize,
    /// One result per item, in order.
    pub results: Vec<BatchItem>,
}

fn batch_item(index: usize, r: &ItemResult) -> BatchItem {
    match r {
        Ok(o) => {
            let a = Accepted::from(o);
            BatchItem {
                index,
                status: a.status,
                event_type: Some(a.event_type),
                jti: a.jti,
                sets: a.sets,
                value: a.value,
                matched_jti: a.matched_jti,
                matched_status: a.matched_status,
                errors: Vec::new(),
            }
        }
        Err(errors) => BatchItem {
            index,
            status: "rejected".into(),
            event_type: None,
            jti: None,
            sets: Vec::new(),
            value: None,
            matched_jti: None,
            matched_status: None,
            errors: errors.clone(),
        },
    }
}

/// Report many signals at once.
///
/// Each item is validated and accepted on its own: a bad item is `rejected` with its errors and
/// does not sink the others. Accepted items are stored in one transaction, in order.
#[utoipa::path(post, path = "/v1/signals/batch", tag = "signals",
    request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat a request safely")),
    security(("bearer" = ["signals:write"])),
    responses(
        (status = 200, description = "Per-item results", body = BatchResponse),
        (status = 409, description = "A request with this Idempotency-Key is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No receiver: no [okta] org_url and no standard stream", body = Problem, content_type = "application/problem+json"),
        BodyErrors, AuthErrors))]
pub async fn batch(
    auth: Auth<SignalsWrite>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    state.intake.require_receiver().await?;
    let idem = idempotency_key(&headers, "/v1/signals/batch", &body.bytes)?;
    let req: BatchRequest = super::parse_json(&body.bytes)?;
    let max = state.intake.config().batch_max;
    if req.signals.is_empty() {
        return Err(ApiError::field("signals", "must hold at least one signal"));
    }
    if req.signals.len() > max {
        return Err(ApiError::field(
            "signals",
            format!(
                "holds {} signals; at most {max} per batch",
                req.signals.len()
            ),
        ));
    }
    let now = state.clock.now();
    let drafts = req
        .signals
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let prefix = format!("signals[{i}]");
            let ctx = Ctx {
                config: state.intake.config(),
                now,
                prefix: &prefix,
            };
            let Value::Object(mut obj) = item else {
                return Err(vec![FieldError {
                    field: prefix.clone(),
                    message: "must be an object".into(),
                }]);
            };
            let event_type = match obj.remove("type") {
                Some(Value::String(t)) => EventType::parse(&t).ok_or_else(|| {
                    vec![FieldError {
                        field: format!("{prefix}.type"),
                        message: format!(
                            "unknown type '{t}'; use one of {}",
                            EventType::ALL.map(EventType::as_str).join(", ")
                        ),
                    }]
                })?,
                _ => {
                    return Err(vec![FieldError {
                        field: format!("{prefix}.type"),
                        message: "is required: the event type of this item".into(),
                    }]);
                }
            };
            request::parse(event_type, Value::Object(obj), &ctx)
        })
        .collect();
    run_intake(&state, &auth.caller, drafts, idem, |results| {
        let items: Vec<BatchItem> = results
            .iter()
            .enumerate()
            .map(|(i, r)| batch_item(i, r))
            .collect();
        let count = |s: &str| items.iter().filter(|i| i.status == s).count();
        let resp = BatchResponse {
            queued: count("queued"),
            unchanged: count("unchanged"),
            unrouted: count("unrouted"),
            rejected: count("rejected"),
            results: items,
        };
        (200, serde_json::to_string(&resp).unwrap_or_default())
    })
    .await
}

/// The last failure of a SET.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastError {
    /// HTTP status from the receiver, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i64>,
    /// The receiver's `err` (e.g. `invalid_audience`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    /// The receiver's `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What happened, in our words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A SET and its delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalView {
    /// `jti`.
    pub jti: String,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Event type.
    pub event_type: String,
    /// The subject as sent.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// API client that sent it.
    pub client: String,
    /// Delivery attempts made.
    pub attempts: i64,
    /// Accepted.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Next attempt (queued/retrying).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// The decoded claims of the SET (on single look-ups).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<Value>,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn view(row: OutboxRow, with_claims: bool) -> SignalView {
    let pending = matches!(
        row.status,
        DeliveryStatus::Queued | DeliveryStatus::Retrying
    );
    let last_error =
        (row.last_http_status.is_some() || row.last_error.is_some() || row.last_err.is_some())
            .then(|| LastError {
                http_status: row.last_http_status,
                err: row.last_err.clone(),
                description: row.last_description.clone(),
                message: row.last_error.clone(),
            })
            .filter(|_| row.status != DeliveryStatus::Delivered);
    SignalView {
        claims: with_claims
            .then(|| crate::signals::decode_claims(&row.set_jwt))
            .flatten(),
        jti: row.jti,
        status: row.status,
        event_type: row.event_type,
        subject: serde_json::from_str(&row.subject).unwrap_or(Value::Null),
        client: row.client,
        attempts: row.attempts,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        next_attempt_at: pending.then(|| rfc3339(row.next_attempt_at)),
        delivered_at: row.delivered_at.map(rfc3339),
        last_error,
    }
}

/// Delivery status of one SET.
#[utoipa::path(get, path = "/v1/signals/{jti}", tag = "signals",
    params(("jti" = String, Path, description = "The SET's jti")),
    security(("bearer" = ["signals:read"])),
    responses(
        (status = 200, description = "The SET", body = SignalView),
        (status = 404, description = "No such SET", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn get_signal(
    _auth: Auth<SignalsRead>,
    State(state): State<AppState>,
    ApiPath(jti): ApiPath<String>,
) -> Result<ApiJson<SignalView>, ApiError> {
    let row = state
        .intake
        .get(&jti)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no SET with jti '{jti}'")))?;
    Ok(ApiJson(view(row, true)))
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this status: queued, retrying, delivered, failed, dead.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    /// Only this subject: a user's email, or a subject key as shown by the service.
    pub subject: Option<String>,
    /// Page size (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A page of SETs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalPage {
    /// SETs.
    pub items: Vec<SignalView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Every receiver's delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiversView {
    /// One per running delivery worker (`okta`, and each enabled push stream), by stream.
    pub receivers: Vec<crate::delivery::reach::ReceiverStatus>,
}

/// Whether each receiver is reachable.
///
/// A receiver is `down` after pushes to several subjects failed in a row with connection
/// errors, timeouts or 5xx; then one SET probes it (at most every `[delivery] probe_max_secs`),
/// and when a probe gets through every waiting SET is due at once.
#[utoipa::path(get, path = "/v1/signals/receivers", tag = "signals",
    security(("bearer" = ["signals:read"])),
    responses(
        (status = 200, description = "Every receiver with a running delivery worker", body = ReceiversView),
        AuthErrors))]
pub async fn receivers(
    _auth: Auth<SignalsRead>,
    State(state): State<AppState>,
) -> ApiJson<ReceiversView> {
    ApiJson(ReceiversView {
        receivers: state.receivers.all(),
    })
}

/// List SETs, newest first.
#[utoipa::path(get, path = "/v1/signals", tag = "signals",
    params(ListParams),
    security(("bearer" = ["signals:read"])),
    responses(
        (status = 200, description = "A page", body = SignalPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter value", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn list_signals(
    _auth: Auth<SignalsRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<SignalPage>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be queued, retrying, delivered, failed or dead",
                )
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 500"));
    }
    let before_seq = q
        .cursor
        .as_deref()
        .map(|c| {
            // As documented: 1 to 18 digits (a sign or "+" is not a cursor this API gave).
            c.parse::<i64>()
                .ok()
                .filter(|_| (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this API"))
        })
        .transpose()?;
    let subject_key = q.subject.map(|s| {
        if s.contains('=') {
            s
        } else {
            format!("user=email:{}", s.to_lowercase())
        }
    });
    let rows = state
        .intake
        .list(&OutboxFilter {
            status,
            subject_key,
            before_seq,
            limit: limit + 1,
        })
        .await
        .map_err(ApiError::internal)?;
    let more = rows.len() > limit as usize;
    let rows: Vec<OutboxRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if more {
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(ApiJson(SignalPage {
        items: rows.into_iter().map(|r| view(r, false)).collect(),
        next_cursor,
    }))
}

/// Retry a failed or dead SET.
///
/// Puts it back in the queue with the same `jti` and a fresh max age.
#[utoipa::path(post, path = "/v1/signals/{jti}/retry", tag = "signals",
    params(("jti" = String, Path, description = "The SET's jti")),
    security(("bearer" = ["signals:write"])),
    responses(
        (status = 202, description = "Queued again", body = SignalView),
        (status = 404, description = "No such SET", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not failed or dead", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn retry_signal(
    auth: Auth<SignalsWrite>,
    State(state): State<AppState>,
    ApiPath(jti): ApiPath<String>,
) -> Result<(StatusCode, ApiJson<SignalView>), ApiError> {
    let now = state.clock.now();
    let result = state.intake.retry(&jti, now.timestamp_millis()).await;
    let outcome = match &result {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("no such SET".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    state
        .audit
        .record(
            now,
            (&auth.caller).into(),
            "signal.retry",
            Some(&jti),
            outcome.as_ref().map(|_| ()).map_err(String::as_str),
        )
        .await;
    let row = result
        .map_err(|e| match e {
            crate::signals::RetryError::NotRetryable(m) => ApiError::Conflict(m),
            crate::signals::RetryError::Store(s) => ApiError::internal(s),
        })?
        .ok_or_else(|| ApiError::NotFound(format!("no SET with jti '{jti}'")))?;
    Ok((StatusCode::ACCEPTED, ApiJson(view(row, false))))
}
