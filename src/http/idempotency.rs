//! `Idempotency-Key` for enforcement changes (`POST`/`PUT`/`PATCH`/`DELETE` under `/v1/users`
//! and `/v1/groups`): the first response to a key is stored per API client and replayed for a
//! repeat of the same request (with `Idempotent-Replayed: true`), so a SOAR playbook that retries
//! after a timeout does not act twice. The same key with a different request → 422; while the
//! first request runs → 409. Responses Okta may answer differently later (429, 5xx) are not
//! stored. Secrets Okta returned once (temporary or generated passwords, reset and activation
//! links) are not stored: a replay shows `[returned once]` in their place.

use axum::body::Body;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::Value;

use super::auth::{Auth, EnforceWriteOrAdmin};
use super::{ApiError, AppState};
use crate::enforcement::idempotency::{Check, IdempotencyRecord};

const HEADER: &str = "idempotency-key";
/// Members of an action report's `result` that are secrets shown once.
const ONCE: &[&str] = &[
    "password",
    "tempPassword",
    "resetPasswordUrl",
    "activationUrl",
    "activationToken",
];

/// The `Idempotency-Key` header: `None` when absent, 400 when not 1–255 visible ASCII
/// characters. Shared by signal intake and enforcement.
pub(super) fn key_from(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()))
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
        })
}

fn applies(method: &Method, path: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && (path.starts_with("/v1/users/")
        || path.starts_with("/v1/groups/")
        || path == "/v1/containments"
        || path.starts_with("/v1/containments/")
        || path == "/v1/jobs"
        || path.starts_with("/v1/jobs/"))
}

fn scrub(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            if let Some(result) = v.get_mut("result").and_then(Value::as_object_mut) {
                for k in ONCE {
                    if let Some(slot) = result.get_mut(*k) {
                        *slot = Value::String("[returned once]".into());
                    }
                }
            }
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

fn replayed(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let ct = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// The middleware. An enforcement change runs in its own task: a client that disconnects (or
/// times out) mid-call cannot cancel it between Okta's change and the audit row, and its
/// idempotency record is stored either way, so the retry is answered, not acted on twice.
pub(super) async fn enforcement(
    State((state, max_body)): State<(AppState, usize)>,
    req: Request,
    next: Next,
) -> Response {
    if !applies(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let task = tokio::spawn(async move {
        if !req.headers().contains_key(HEADER) {
            return next.run(req).await;
        }
        match run(state, max_body, req, next).await {
            Ok(r) => r,
            Err(e) => axum::response::IntoResponse::into_response(e),
        }
    });
    match task.await {
        Ok(r) => r,
        Err(e) => axum::response::IntoResponse::into_response(ApiError::internal(anyhow::anyhow!(
            "enforcement task failed: {e}"
        ))),
    }
}

/// The body as hashed for the key: a password is left out, so the table never holds a digest
/// of one (the same key with another password counts as the same request).
fn hashed_body(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            if let Some(p) = v.get_mut("password").filter(|p| p.is_string()) {
                *p = Value::String("[redacted]".into());
            }
            v.to_string().into_bytes()
        }
        Err(_) => bytes.to_vec(),
    }
}

async fn run(
    state: AppState,
    max_body: usize,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    // Authenticate first: the key is per API client, and a stranger learns nothing.
    // Either enforcement scope: the handler then checks the one its options need.
    let auth = Auth::<EnforceWriteOrAdmin>::from_request_parts(&mut parts, &state).await?;
    let key = key_from(&parts.headers)?
        .ok_or_else(|| ApiError::BadRequest("Idempotency-Key is missing".into()))?
        .to_owned();
    let bytes = axum::body::to_bytes(body, max_body)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(parts.method.as_str().as_bytes());
    ctx.update(b" ");
    ctx.update(parts.uri.to_string().as_bytes());
    ctx.update(b"\n");
    ctx.update(&hashed_body(&bytes));
    let hash = ctx.finish().as_ref().to_vec();
    let client = auth.caller.id.clone();

    let lookup = |state: AppState, client: String, key: String, hash: Vec<u8>| async move {
        match state
            .idempotency
            .check(&client, &key, &hash)
            .await
            .map_err(ApiError::internal)?
        {
            Check::Replay { status, body } => Ok(Some(replayed(status, body))),
            Check::Mismatch => Err(mismatch()),
            Check::Fresh => Ok::<_, ApiError>(None),
        }
    };
    if let Some(r) = lookup(state.clone(), client.clone(), key.clone(), hash.clone()).await? {
        return Ok(r);
    }
    let Some(_guard) = state.enforcer.claim_idempotency_key(&client, &key) else {
        return Err(ApiError::Conflict(
            "a request with this Idempotency-Key is in progress".into(),
        ));
    };
    // Stored by a request that finished between the look-up and the claim.
    if let Some(r) = lookup(state.clone(), client.clone(), key.clone(), hash.clone()).await? {
        return Ok(r);
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status().as_u16();
    if status >= 500 || status == 429 || status == 408 {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let out = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot buffer a response: {e}")))?;
    let record = IdempotencyRecord {
        client,
        key,
        request_hash: hash,
        status,
        body: scrub(&out),
        created_at: state.clock.now().timestamp_millis(),
    };
    if let Err(e) = state.idempotency.put(&record).await {
        // The action happened; the caller gets its answer. A retry may act again.
        tracing::error!(error = %e, "cannot store the idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(out)))
}

/// The answer to a key reused with another request (signals and enforcement alike).
pub(super) fn mismatch() -> ApiError {
    ApiError::field(
        "Idempotency-Key",
        "was already used with a different request; use a new key",
    )
}

/// The schema of `Idempotency-Key`, as [`key_from`] checks it.
fn key_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[!-~]{1,255}$"))
        .build()
}

/// Adds the `Idempotency-Key` header to every operation the middleware covers, and gives every
/// `Idempotency-Key` (signal intake declares its own) the rule [`key_from`] enforces.
pub(super) fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            (Method::GET, item.get.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let mut declared = false;
            for p in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = p
                    && p.parameter_in == ParameterIn::Header
                    && p.name.eq_ignore_ascii_case(HEADER)
                {
                    p.schema = Some(key_schema().into());
                    declared = true;
                }
            }
            if !applies(&method, path) {
                continue;
            }
            // What the key itself can answer: 409 while the first request runs, 422 for a key
            // reused with another request.
            for (status, description) in [
                (
                    "409",
                    "A request with this Idempotency-Key is still running",
                ),
                (
                    "422",
                    "The Idempotency-Key was used with a different request",
                ),
            ] {
                if !op.responses.responses.contains_key(status) {
                    let response = utoipa::openapi::ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/problem+json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                                .build(),
                        )
                        .build();
                    op.responses
                        .responses
                        .insert(status.to_owned(), response.into());
                }
            }
            if declared {
                continue;
            }
            let param: Parameter = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .description(Some(
                    "Repeat a change safely: the first response to this key (per API client) is \
                     replayed for the same request, with `Idempotent-Replayed: true`; secrets \
                     shown once are not replayed",
                ))
                .required(utoipa::openapi::Required::False)
                .schema(Some(key_schema()))
                .build();
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(param.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_shown_once_are_not_stored() {
        let stored =
            scrub(br#"{"action":"expire-password","result":{"tempPassword":"F46gy7X4","x":1}}"#);
        assert!(!stored.contains("F46gy7X4"));
        assert!(stored.contains("[returned once]") && stored.contains("\"x\":1"));
    }

    #[test]
    fn passwords_are_not_part_of_the_hashed_body() {
        let h = hashed_body(br#"{"password":"Hunter2-Secret","reason":"r"}"#);
        let text = String::from_utf8(h).expect("utf8");
        assert!(!text.contains("Hunter2"), "{text}");
        assert!(text.contains("\"reason\":\"r\""));
        assert_eq!(hashed_body(b"not json"), b"not json");
    }

    #[test]
    fn only_enforcement_changes_are_covered() {
        assert!(applies(&Method::POST, "/v1/users/jane/suspend"));
        assert!(applies(&Method::DELETE, "/v1/groups/g/members/u"));
        assert!(!applies(&Method::GET, "/v1/users/jane"));
        assert!(!applies(&Method::POST, "/v1/signals/user-risk-change"));
    }
}
