//! The web shell of agilekit: layout and assets, i18n, who is asking, errors at the boundary, the kernel's pages
//! and API, and the middleware stack every route runs behind. Domain crates add their routers through [`app`].

pub mod api;
pub mod assets;
pub mod auth;
pub mod csrf;
pub mod ctx;
pub mod error;
pub mod i18n;
pub mod input;
pub mod ops;
pub mod pages;
/// Load shedding: a bounded number of requests in flight, the rest answered 429 with Retry-After.
pub mod shed;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use state::{AppState, WebConfig};

/// Authenticated pages must never be stored by a browser or a proxy and served to someone else.
async fn no_store(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut r = next.run(req).await;
    if !is_static && !r.headers().contains_key(header::CACHE_CONTROL) {
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn fallback(req: Request) -> Response {
    use axum::response::IntoResponse;
    if req.uri().path().starts_with("/api/") {
        api::not_found().await
    } else {
        error::PageError::not_found().into_response()
    }
}

/// What a domain crate (remote access, help desk, …) adds to the application: its pages and API routes, and the
/// OpenAPI description of its API, merged into the one document at `/api/v1/openapi.json`.
pub struct Domain {
    pub router: Router<AppState>,
    pub openapi: utoipa::openapi::OpenApi,
    /// Where people find the domain's pages, for the home page and the organisation dashboard.
    pub pages: Vec<ServicePages>,
}

/// The pages of one service of the catalogue.
#[derive(Clone, Debug)]
pub struct ServicePages {
    /// The catalogue's key (`remote_access`).
    pub service: &'static str,
    /// A member's own page (`/vpn`), linked from the home page when the service is active.
    pub mine: &'static str,
    /// The administration page, `{org}` standing for the organisation's id, linked from its dashboard.
    pub admin: &'static str,
    /// Pages for the members who hold a role in the organisation (a grants evaluator's calls to score), linked from
    /// the home page: the role, the page (`{org}` as above) and the message key of its link.
    pub by_role: &'static [(agilekit_kernel::identity::Role, &'static str, &'static str)],
}

/// The whole application: the kernel's pages and API, each domain's routes, static assets, operations endpoints,
/// and the middleware stack.
pub fn app(state: AppState, domains: Vec<Domain>) -> Router {
    let limit = state.cfg.body_limit;
    let upload_limit = state.cfg.upload_limit().max(limit);
    let timeout = state.cfg.request_timeout;
    let shed = shed::Shed::new(state.cfg.max_in_flight, state.cfg.shed_wait, state.metrics.clone());
    let x_request_id = HeaderName::from_static("x-request-id");
    let csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; \
               frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
    let mut doc = <api::ApiDoc as utoipa::OpenApi>::openapi();
    let mut routes = Router::new().merge(pages::router()).merge(api::router());
    for d in domains {
        doc.merge(d.openapi);
        routes = routes.merge(d.router);
    }
    let doc = std::sync::Arc::new(doc);
    routes
        .route("/api/v1/openapi.json", get(move || api::openapi(doc.clone())))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/bi/{version}/{*path}", get(assets::bootstrap_italia))
        .route("/static/htmx/{version}/{*path}", get(assets::htmx))
        .route("/static/own/{version}/{*path}", get(assets::own))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(middleware::from_fn(csrf::protect))
        .layer(middleware::from_fn_with_state(state.clone(), input::reject_nul))
        .layer(middleware::from_fn_with_state(state.clone(), pages::shell::error_pages))
        .layer(middleware::from_fn_with_state(state.clone(), auth::resolve))
        .layer(DefaultBodyLimit::max(limit))
        // The transport limit is the largest any route takes (the file uploads'); each route's extractors keep the
        // ordinary one unless the route raises it (`DefaultBodyLimit` per route).
        .layer(RequestBodyLimitLayer::new(upload_limit))
        .layer(middleware::from_fn(no_store))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(middleware::from_fn_with_state(state.clone(), api::problem_errors))
        // Before anything reads a body or the database: a full node answers at once.
        .layer(middleware::from_fn_with_state(shed, shed::limit))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

/// How long to wait for in-flight requests at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
