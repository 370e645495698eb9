//! Every route the service serves is added here, and only here. Both listeners' routers are built
//! by a [`Table`] that records each method and path as it adds them, so the list of served routes
//! ([`served_routes`], [`public_served_routes`]) comes from the code that builds the routers, not
//! from a copy that could drift. The documented API is added by `routes!` lists, which put each
//! route into the router and the OpenAPI document together, so its served routes are the
//! document's operations. A test fails on `.route(`, `.nest(`, `.merge(`, `.fallback(`… anywhere
//! else in `src/` (the Okta sandbox, a server of its own, aside), and the route walk tests check
//! the served routes against the document, the running app and the auth rules.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::MethodRouter;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::{ApiError, docs_headers};
use super::{
    AppState, admin_clients, admin_keys, admin_okta, approvals, containments, enforce, health,
    idempotency, jobs, oauth, openapi, signals, streams, well_known,
};

/// One served route: a method and an axum path template (`{param}`, `{*rest}`), written as in the
/// OpenAPI document. A `GET` route also answers `HEAD`, as axum does for every `GET`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: String,
}

/// The documented API routes, with their OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(well_known::router())
        .merge(admin_keys::router())
        .merge(admin_clients::router())
        .merge(admin_okta::router())
        .merge(signals::router())
        .merge(enforce::router())
        .merge(containments::router())
        .merge(jobs::router())
        .merge(approvals::router())
        .merge(streams::router())
        .merge(oauth::router());
    idempotency::document(router.get_openapi_mut());
    openapi::complete(router.get_openapi_mut());
    router
}

/// Every route the API listener serves for `issuer`: the documented API, Swagger UI and the
/// document, and, when the issuer has a path, the metadata and the approval page under it.
pub fn served_routes(issuer: &str) -> Vec<Route> {
    api(issuer).served
}

/// Every route the public listener serves for `issuer`.
pub fn public_served_routes(issuer: &str) -> Vec<Route> {
    public(issuer).served
}

/// The API listener's routes, with the not-found and method-not-allowed fallbacks.
pub(super) fn api_routes(issuer: &str) -> Router<AppState> {
    api(issuer).finish()
}

/// The public listener's routes, with the fallbacks.
pub(super) fn public_routes(issuer: &str) -> Router<AppState> {
    public(issuer).finish()
}

fn api(issuer: &str) -> Table {
    let (documented, doc) = Table::documented(api_router());
    with_issuer_path(documented, issuer).merge(swagger(doc))
}

/// Only what receivers must reach — the JWKS, the SSF and OAuth metadata and liveness — and the
/// approval page, whose links start with the issuer. Every `/v1/*` path is a 404 there.
fn public(issuer: &str) -> Table {
    let table = Table::default()
        .get("/healthz", health::healthz)
        .get("/.well-known/jwks.json", well_known::jwks)
        .get(
            "/.well-known/ssf-configuration",
            well_known::ssf_configuration,
        )
        .get(
            "/.well-known/oauth-authorization-server",
            well_known::oauth_authorization_server,
        )
        .merge(approval_page());
    with_issuer_path(table, issuer)
}

/// The page a person opens from an approval link (documented with the API at the same path).
fn approval_page() -> Table {
    Table::default()
        .get("/approvals/{id}", approvals::page)
        .post("/approvals/{id}", approvals::decide_on_page)
}

/// SSF §7.2: the metadata also lives at /.well-known/ssf-configuration + the issuer's path (and,
/// RFC 8414 §3.1, the OAuth metadata at /.well-known/oauth-authorization-server + that path).
fn with_issuer_path(table: Table, issuer: &str) -> Table {
    let issuer_path = well_known::issuer_path(issuer);
    if issuer_path.is_empty() {
        return table;
    }
    table
        .get(
            &format!("/.well-known/ssf-configuration{issuer_path}"),
            well_known::ssf_configuration,
        )
        .get(
            &format!("/.well-known/oauth-authorization-server{issuer_path}"),
            well_known::oauth_authorization_server,
        )
        // Approval links start with the issuer, path included.
        .nest(&issuer_path, approval_page())
}

/// Swagger UI at `/docs` and the document at `/openapi.json`. utoipa-swagger-ui's router serves
/// the UI's three routes (the UI path redirecting to the UI path with a slash, that one and every
/// file under it); they are written down here because its router cannot list them, and the route
/// walk probes each one on a running app.
///
/// The document is served from its JSON, written once: handed to the UI's router, the whole
/// description tree (about 5 MB of heap) would stay in memory to be serialized on every request.
fn swagger(doc: OpenApi) -> Table {
    const UI: &str = "/docs";
    const DOCUMENT: &str = "/openapi.json";
    let document: Result<axum::body::Bytes, String> = serde_json::to_vec(&doc)
        .map(Into::into)
        .map_err(|e| e.to_string());
    drop(doc);
    let ui: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new(UI)
        // Swagger UI's default sends the document's URL to validator.swagger.io.
        .config(utoipa_swagger_ui::Config::new([DOCUMENT]).validator_url("none"))
        .into();
    let table = Table {
        router: ui,
        served: [UI, "/docs/", "/docs/{*rest}"]
            .into_iter()
            .map(|path| Route {
                method: Method::GET,
                path: path.to_owned(),
            })
            .collect(),
    }
    .get(DOCUMENT, move || {
        let document = document.clone();
        async move {
            match document {
                Ok(body) => Ok((
                    [(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    body,
                )),
                Err(e) => Err(ApiError::Internal(anyhow::anyhow!(
                    "the OpenAPI document could not be written: {e}"
                ))),
            }
        }
    });
    Table {
        router: table.router.layer(middleware::map_response(docs_headers)),
        served: table.served,
    }
}

/// A router under construction and the routes it serves so far.
#[derive(Default)]
struct Table {
    router: Router<AppState>,
    served: Vec<Route>,
}

impl Table {
    /// The documented API's router; what it serves is its document's operations.
    fn documented(api: OpenApiRouter<AppState>) -> (Self, OpenApi) {
        let (router, doc) = api.split_for_parts();
        let mut served = Vec::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::OPTIONS, &item.options),
                (Method::HEAD, &item.head),
                (Method::PATCH, &item.patch),
                (Method::TRACE, &item.trace),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    served.push(Route {
                        method,
                        path: path.clone(),
                    });
                }
            }
        }
        (Self { router, served }, doc)
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::GET, path, axum::routing::get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::POST, path, axum::routing::post(handler))
    }

    /// `route` must answer `method` only (the typed helpers above build it so).
    fn add(mut self, method: Method, path: &str, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.served.push(Route {
            method,
            path: path.to_owned(),
        });
        self
    }

    fn nest(mut self, prefix: &str, inner: Table) -> Self {
        self.router = self.router.nest(prefix, inner.router);
        self.served.extend(inner.served.into_iter().map(|r| Route {
            method: r.method,
            path: format!("{prefix}{}", r.path),
        }));
        self
    }

    fn merge(mut self, other: Table) -> Self {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }

    /// The router, answering every other path with a 404 and every other method with a 405.
    fn finish(self) -> Router<AppState> {
        self.router
            .fallback(|| async { ApiError::NotFound("no such route".into()) })
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
    }
}
