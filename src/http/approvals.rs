//! Approvals: the API (`/v1/approvals`, scope `admin`) and the page a person opens from the link
//! (`/approvals/{id}?t=<token>`): server-rendered HTML with no external asset, plain forms that
//! post back to the issuer, a CSRF token in a `SameSite=Strict` cookie and a hidden field, and
//! the link's token checked on every request. A used or expired link answers 410.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminScope, Auth};
use super::openapi::AuthErrors;
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem};
use crate::enforcement::approval::{Approval, Decider, LinkState};
use crate::enforcement::containment::{Containment, ContainmentError};

const CSRF_COOKIE: &str = "ssf_approval_csrf";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(page, decide_on_page))
}

/// Approval filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `pending`, `approved` or `rejected`.
    #[param(inline)]
    pub status: Option<ApprovalStatus>,
    /// At most this many, newest first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// An approval's state.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the containment ran.
    Approved,
    /// Rejected: nothing ran.
    Rejected,
}

/// Approvals, newest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "containment",
    params(ListParams),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Approvals", body = Vec<Approval>),
        (status = 400, description = "Bad query (e.g. an unknown status)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn list(
    _auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<Vec<Approval>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    let status = q.status.map(|s| match s {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Rejected => "rejected",
    });
    Ok(ApiJson(state.containments.approvals(status, limit).await?))
}

/// The chosen user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The Okta id of one of the approval's candidates.
    #[schema(example = "00u00000000000000002")]
    pub candidate: String,
}

/// A decision and the containment it decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    /// The approval.
    pub approval: Approval,
    /// The containment: `active` (or `failed`) for the chosen user once approved, `rejected`
    /// otherwise.
    pub containment: Containment,
}

/// Approve: run the containment once, for the chosen candidate.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "containment",
    params(("id" = String, Path, description = "Approval id", pattern = "^apr_[0-9a-f]{32}$")),
    request_body = ApproveBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Approved; the containment ran for the candidate", body = Decided),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`candidate` is not one of the candidates", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn approve(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<ApiJson<Decided>, ApiError> {
    let (approval, containment) = state
        .containments
        .decide(&id, Decider::Client(auth.caller), Some(&body.candidate))
        .await?;
    Ok(ApiJson(Decided {
        approval,
        containment,
    }))
}

/// Reject: nothing runs; the containment reads `rejected`.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "containment",
    params(("id" = String, Path, description = "Approval id", pattern = "^apr_[0-9a-f]{32}$")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn reject(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Decided>, ApiError> {
    let (approval, containment) = state
        .containments
        .decide(&id, Decider::Client(auth.caller), None)
        .await?;
    Ok(ApiJson(Decided {
        approval,
        containment,
    }))
}

/// The link's token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkParams {
    /// The link's single-use token.
    #[param(max_length = 128)]
    pub t: Option<String>,
}

/// A decision posted from the page.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PageForm {
    /// The link's token.
    pub t: String,
    /// The page's CSRF token (also in the `ssf_approval_csrf` cookie).
    pub csrf: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// The chosen candidate's Okta id (approve).
    pub candidate: Option<String>,
}

fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

fn html_response(status: StatusCode, issuer: &str, body: Markup) -> Response {
    let mut resp = (status, body.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The URL carries the link's token: never sent to another site. (`no-referrer` would make
    // browsers send `Origin: null` with the form, defeating the origin check.)
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        origin_of(issuer)
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    resp
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}\
.box{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}\
.muted{color:#555}.ok{color:#1a6b1a}.no{color:#8a1c1c}";

fn page_shell(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (STYLE) }
            }
            body {
                h1 { (title) }
                (content)
            }
        }
    }
}

fn message(status: StatusCode, issuer: &str, title: &str, text: &str) -> Response {
    html_response(
        status,
        issuer,
        page_shell(title, html! { p id="message" { (text) } }),
    )
}

fn gone(issuer: &str, a: &Approval, now: chrono::DateTime<chrono::Utc>) -> Response {
    let text = match &a.decision {
        Some(d) => format!(
            "This approval was already decided: {} by {} at {}. The link no longer works.",
            d.outcome,
            d.by,
            d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None if now >= a.expires_at => format!(
            "This link expired at {}. Decide through the API (/v1/approvals) if it is still needed.",
            a.expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "This link no longer works.".into(),
    };
    message(
        StatusCode::GONE,
        issuer,
        "Approval link used or expired",
        &text,
    )
}

fn form_page(issuer: &str, a: &Approval, token: &str, csrf: &str) -> Markup {
    let action = format!("{issuer}/approvals/{}", a.id);
    let steps: Vec<&str> = a.steps.iter().map(|s| s.name()).collect();
    page_shell(
        "Containment approval",
        html! {
            div.box {
                p { strong { "Requested by: " } span id="requested-by" { (a.requested_by.name) } }
                p { strong { "For: " } span id="requested-user" { (a.requested_user) } }
                p { strong { "Steps: " } span id="steps" { (steps.join(", ")) } }
                p { strong { "Reason: " } span id="reason" { (a.reason.as_deref().unwrap_or("none given")) } }
                p { strong { "Why approval is needed: " } (a.why) }
                p.muted { "This link works once, until " (a.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) "." }
            }
            form method="post" action=(action) id="approve-form" {
                input type="hidden" name="t" value=(token);
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="decision" value="approve";
                table {
                    thead { tr { th { "" } th { "Login" } th { "Name" } th { "Status" } th { "Groups" } } }
                    tbody {
                        @for (i, c) in a.candidates.iter().enumerate() {
                            tr {
                                td { input type="radio" name="candidate" value=(c.id) id=(format!("candidate-{i}")) required; }
                                td { label for=(format!("candidate-{i}")) { (c.login) } }
                                td { (c.name) }
                                td { (c.status) }
                                td { (c.groups.join(", ")) }
                            }
                        }
                    }
                }
                p { button type="submit" id="approve" { "Approve for the selected user" } }
            }
            form method="post" action=(action) id="reject-form" {
                input type="hidden" name="t" value=(token);
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="decision" value="reject";
                p { button type="submit" id="reject" { "Reject" } }
            }
        },
    )
}

/// The approval page a person opens from the link.
#[utoipa::path(get, path = "/approvals/{id}", tag = "containment",
    params(("id" = String, Path, description = "Approval id", pattern = "^apr_[0-9a-f]{32}$"), LinkParams),
    responses(
        (status = 200, description = "The request, its candidates, and approve / reject forms", content_type = "text/html"),
        (status = 404, description = "No such approval, or not its link", content_type = "text/html"),
        (status = 410, description = "The link was used or expired", content_type = "text/html")))]
pub async fn page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LinkParams>,
) -> Result<Response, ApiError> {
    let issuer = state.issuer.to_string();
    let token = q.t.unwrap_or_default();
    match state.containments.open_link(&id, &token).await? {
        LinkState::Unknown => Ok(message(
            StatusCode::NOT_FOUND,
            &issuer,
            "Approval link not valid",
            "This approval link is not valid. Open the link exactly as it was sent.",
        )),
        LinkState::Gone(a) => Ok(gone(&issuer, &a, state.clock.now())),
        LinkState::Open(a) => {
            let csrf = crate::auth::generate_token();
            let csrf = secrecy::ExposeSecret::expose_secret(&csrf).to_owned();
            let mut resp = html_response(
                StatusCode::OK,
                &issuer,
                form_page(&issuer, &a, &token, &csrf),
            );
            let secure = if issuer.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let max_age = (a.expires_at - state.clock.now()).num_seconds().max(0);
            let path = format!(
                "{}/approvals/{}",
                super::well_known::issuer_path(&state.issuer),
                a.id
            );
            let cookie = format!(
                "{CSRF_COOKIE}={csrf}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A decision posted from the approval page (form fields `t`, `csrf`, `decision`,
/// `candidate`). Runs nothing unless the link's token, the CSRF field and its cookie all match
/// and the request comes from the issuer's origin.
#[utoipa::path(post, path = "/approvals/{id}", tag = "containment",
    params(("id" = String, Path, description = "Approval id", pattern = "^apr_[0-9a-f]{32}$")),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Decided: the outcome", content_type = "text/html"),
        (status = 403, description = "Not posted from the approval page (CSRF or origin check failed); nothing ran", content_type = "text/html"),
        (status = 404, description = "No such approval, or not its link", content_type = "text/html"),
        (status = 410, description = "The link was used or expired; nothing ran", content_type = "text/html"),
        (status = 422, description = "No valid candidate picked", content_type = "text/html")))]
pub async fn decide_on_page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    form: Result<Form<PageForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let issuer = state.issuer.to_string();
    let refuse = |why: &str| {
        tracing::warn!(approval = %id, why, "an approval form was refused");
        message(
            StatusCode::FORBIDDEN,
            &issuer,
            "Not sent from the approval page",
            "Nothing was done: this form was not sent from the approval page (or the page is stale). Open the link again.",
        )
    };
    let form = match form {
        Ok(Form(f)) => f,
        Err(_) => return Ok(refuse("not a form with t, csrf and decision")),
    };
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != origin_of(&issuer)
    {
        return Ok(refuse("Origin is not the issuer's"));
    }
    let csrf_ok = cookie(&headers, CSRF_COOKIE).is_some_and(|c| {
        !c.is_empty() && crate::auth::digests_equal(c.as_bytes(), form.csrf.as_bytes())
    });
    if !csrf_ok {
        return Ok(refuse("the CSRF field does not match its cookie"));
    }
    let a = match state.containments.open_link(&id, &form.t).await? {
        LinkState::Unknown => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                &issuer,
                "Approval link not valid",
                "This approval link is not valid. Open the link exactly as it was sent.",
            ));
        }
        LinkState::Gone(a) => return Ok(gone(&issuer, &a, state.clock.now())),
        LinkState::Open(a) => a,
    };
    let choice = match form.decision.as_str() {
        "approve" => match form.candidate.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(c.to_owned()),
            None => {
                return Ok(message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &issuer,
                    "Pick a user",
                    "Nothing was done: pick the user the containment is for, then approve.",
                ));
            }
        },
        "reject" => None,
        _ => return Ok(refuse("decision is neither approve nor reject")),
    };
    match state
        .containments
        .decide(&a.id, Decider::Link, choice.as_deref())
        .await
    {
        Ok((approval, c)) => {
            let title = if approval.status == "approved" {
                "Approved"
            } else {
                "Rejected"
            };
            let text = match (&c.user.login, approval.status.as_str()) {
                (Some(login), "approved") => format!(
                    "Containment {} ran for {login}: it is {}.",
                    c.id,
                    c.status.as_str()
                ),
                _ => format!("Containment {} was rejected: nothing ran.", c.id),
            };
            Ok(message(StatusCode::OK, &issuer, title, &text))
        }
        Err(ContainmentError::Conflict(_)) => {
            let a = state.containments.approval(&id).await?;
            Ok(gone(&issuer, &a, state.clock.now()))
        }
        Err(ContainmentError::Invalid(_, m)) => Ok(message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &issuer,
            "Pick a user",
            &format!("Nothing was done: {m}"),
        )),
        Err(e) => Err(e.into()),
    }
}
