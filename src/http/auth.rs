//! The caller-authentication extractor: `Authorization: Bearer <token>` → [`Caller`], checked for
//! the route's scope. A token in the query string is never looked at.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{Caller, Scope};

/// A scope a route requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
    /// Another scope that is accepted instead, if any.
    const OR: Option<Scope> = None;
}

/// Requires `enforce:read` or `admin` (the audit log).
#[derive(Debug)]
pub struct AuditRead;
impl RequiredScope for AuditRead {
    const SCOPE: Scope = Scope::EnforceRead;
    const OR: Option<Scope> = Some(Scope::Admin);
}

macro_rules! scope_marker {
    ($(#[$doc:meta])* $name:ident => $scope:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Scope = $scope;
        }
    };
}

scope_marker!(
    /// Requires `admin`.
    AdminScope => Scope::Admin
);
scope_marker!(
    /// Requires `streams:read`.
    StreamsRead => Scope::StreamsRead
);
scope_marker!(
    /// Requires `streams:write`.
    StreamsWrite => Scope::StreamsWrite
);
scope_marker!(
    /// Requires `signals:write`.
    SignalsWrite => Scope::SignalsWrite
);
scope_marker!(
    /// Requires `signals:read`.
    SignalsRead => Scope::SignalsRead
);
scope_marker!(
    /// Requires `enforce:write`.
    EnforceWrite => Scope::EnforceWrite
);
scope_marker!(
    /// Requires `enforce:read`.
    EnforceRead => Scope::EnforceRead
);
scope_marker!(
    /// Requires `enforce:admin`.
    EnforceAdmin => Scope::EnforceAdmin
);

/// Admits `enforce:write` or `enforce:admin`, for routes whose options decide which one the
/// call needs (e.g. a reset link e-mailed by Okta vs. handed back); the handler then calls
/// [`Auth::require`] with the scope its options need.
#[derive(Debug)]
pub struct EnforceWriteOrAdmin;
impl RequiredScope for EnforceWriteOrAdmin {
    const SCOPE: Scope = Scope::EnforceWrite;
    const OR: Option<Scope> = Some(Scope::EnforceAdmin);
}

/// An authenticated caller holding scope `S`. Put it first among a handler's arguments so it runs
/// before the body is read: an unauthenticated request gets 401 whatever its body.
#[derive(Debug)]
pub struct Auth<S: RequiredScope> {
    /// Who is calling.
    pub caller: Caller,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Already authenticated for this request (the idempotency middleware looks the caller up
        // before the handler runs): check the scope only.
        if let Some(Authenticated(caller)) = parts.extensions.get::<Authenticated>().cloned() {
            return Self::admit(caller, state);
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            state.metrics.auth_failure("missing_token");
            return Err(ApiError::Unauthorized { token_sent: false });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            state.metrics.auth_failure("missing_token");
            return Err(ApiError::Unauthorized { token_sent: false });
        };
        let Some(caller) = state
            .auth
            .authenticate(token, state.clock.now())
            .await
            .map_err(ApiError::internal)?
        else {
            state.metrics.auth_failure("invalid_token");
            return Err(ApiError::Unauthorized { token_sent: true });
        };
        parts.extensions.insert(Authenticated(caller.clone()));
        Self::admit(caller, state)
    }
}

/// The caller a request was authenticated as, kept in its extensions so later extractors do not
/// look the token up again. Only set by [`Auth`] itself.
#[derive(Debug, Clone)]
struct Authenticated(Caller);

impl<S: RequiredScope> Auth<S> {
    /// Checks that the caller also holds `scope` (a route whose options decide the scope).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.caller.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope))
        }
    }

    fn admit(caller: Caller, state: &AppState) -> Result<Self, ApiError> {
        tracing::Span::current().record("caller", caller.name.as_str());
        if !caller.has(S::SCOPE) && !S::OR.is_some_and(|s| caller.has(s)) {
            state.metrics.auth_failure("insufficient_scope");
            return Err(ApiError::Forbidden(S::SCOPE));
        }
        Ok(Self {
            caller,
            _scope: PhantomData,
        })
    }
}
