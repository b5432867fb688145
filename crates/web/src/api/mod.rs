//! The REST API under `/api/v1`, described by an OpenAPI 3.1 document at `/api/v1/openapi.json`.
//! Authenticated by the session cookie or by a personal token (`Authorization: Bearer ak_…`). This module owns the
//! document, the extractors that turn every bad request into `application/problem+json`, and the shared rules.

pub mod account;
pub mod audit;
pub mod catalogue;
pub mod onboarding;
pub mod orgs;

use agilekit_kernel::authz::Principal;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::tenancy::{self, Organisation};
use agilekit_kernel::{Db, Error, FieldErrors};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

use crate::auth::{ApiUser, CurrentUser, RequestCtx};
use crate::error::{ApiError, ErrorMarker, problem};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "agilekit API", version = "1", description = "The smart-working kit for public administrations. \
        Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code` and, for invalid input, \
        field-level `errors`. Another organisation's resources answer 404."),
    paths(
        me,
        orgs::list, orgs::show, orgs::create, orgs::update,
        orgs::members, orgs::add_member, orgs::remove_role,
        catalogue::services, catalogue::subscriptions, catalogue::subscribe, catalogue::set_state, catalogue::set_quota,
        catalogue::entitlement,
        audit::org_log, audit::platform_log,
        account::tokens, account::create_token, account::revoke_token, account::sessions,
        onboarding::submit, onboarding::list, onboarding::approve, onboarding::reject,
    ),
    components(schemas(
        crate::error::Problem, agilekit_kernel::FieldError, Me,
        agilekit_kernel::identity::Account, agilekit_kernel::identity::Membership,
        Organisation, agilekit_kernel::tenancy::OrgInput, orgs::Member, orgs::NewMember,
        catalogue::CatalogueService, agilekit_kernel::catalogue::SubscriptionView, agilekit_kernel::catalogue::Subscription,
        agilekit_kernel::catalogue::Quota, catalogue::SubscribeInput, catalogue::StateInput, catalogue::QuotaInput,
        catalogue::EntitlementView, catalogue::QuotaView, catalogue::EntitlementDenied, agilekit_kernel::catalogue::Denied,
        audit::AuditPage, agilekit_kernel::audit::Entry,
        account::TokenInput, account::NewToken, agilekit_kernel::identity::token::ApiToken, account::SessionView,
        agilekit_kernel::onboarding::RequestInput, agilekit_kernel::onboarding::Request, onboarding::ApproveInput,
        onboarding::RejectInput,
    )),
    tags(
        (name = "account", description = "The caller: who they are, their API tokens and sessions."),
        (name = "organisations", description = "Organisations (tenants)."),
        (name = "members", description = "People and their roles in an organisation."),
        (name = "catalogue", description = "The kit's services, subscriptions, quotas and the entitlement check."),
        (name = "audit", description = "The hash-chained audit log."),
        (name = "onboarding", description = "Requests of new administrations to join."),
    ),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("agilekit_session"))));
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .merge(orgs::router())
        .merge(catalogue::router())
        .merge(audit::router())
        .merge(account::router())
        .merge(onboarding::router())
}

/// The document of the kernel's API merged with every domain's (see [`crate::app`]).
pub(crate) async fn openapi(doc: std::sync::Arc<utoipa::openapi::OpenApi>) -> Response {
    Json(&*doc).into_response()
}

/// The signed-in account and its roles.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub account: agilekit_kernel::identity::Account,
    pub memberships: Vec<agilekit_kernel::identity::Membership>,
    pub platform_admin: bool,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "account", operation_id = "me",
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn me(State(state): State<AppState>, ApiUser(user, _): ApiUser) -> Result<Json<Me>, ApiError> {
    let memberships = agilekit_kernel::identity::memberships(&state.db, user.principal.id()).await?;
    Ok(Json(Me { account: user.principal.account.clone(), memberships, platform_admin: user.principal.platform_admin }))
}

/// Unknown API paths answer problem+json, not the HTML error page.
pub async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not-found", "no such API route", Vec::new())
}

// ---------------------------------------------------------------------------------------------------------------
// Errors that never reach a handler

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid-input",
        StatusCode::TOO_MANY_REQUESTS => "too-many-attempts",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware (outermost, so it also sees the body limit, the timeout and the CSRF check): an error of an API
/// route that is not already problem+json (a 405 from the router, a 413 from the body limit, a refused cross-site
/// request…) is rewritten as one, so clients parse every API error the same way.
///
/// It also reads an API request's body in full before the route sees it. A route that answers early (401, a 404
/// for a malformed id, a GET that ignores a body) would otherwise leave the body unread, and the server would
/// close the connection under a client still writing: the client sees a broken pipe instead of the problem.
pub async fn problem_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let req = if is_api {
        let limit = state.cfg.api_limit_for(req.uri().path(), req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()));
        match buffered(req, limit, state.cfg.request_timeout).await {
            Ok(r) => r,
            // Refused before the inner layers that add these to every other response.
            Err(mut r) => {
                r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                return r;
            }
        }
    } else {
        req
    };
    let resp = next.run(req).await;
    let status = resp.status();
    if !is_api || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return resp;
    }
    // A page-style refusal (the CSRF check) says why in its marker: keep that as the code.
    let code = match resp.extensions().get::<ErrorMarker>() {
        Some(m) if m.message_key != "error-forbidden" && m.message_key != "error-not-found" => {
            m.message_key.trim_start_matches("error-").to_owned()
        }
        _ => code_for(status).to_owned(),
    };
    let title = status.canonical_reason().unwrap_or("error").to_lowercase();
    let (parts, _) = resp.into_parts();
    let mut out = problem(status, &code, &title, Vec::new());
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !out.headers().contains_key(name) {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

async fn buffered(req: Request, limit: usize, timeout: std::time::Duration) -> Result<Request, Response> {
    let too_large =
        || problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "request body too large", Vec::new());
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        // With a declared length within the limit the body cannot outgrow it: a failure is the client's connection.
        Ok(Err(_)) if declared.is_none() => Err(too_large()),
        Ok(Err(_)) => {
            Err(problem(StatusCode::BAD_REQUEST, "bad-request", "the request body could not be read", Vec::new()))
        }
        Err(_) => Err(problem(StatusCode::REQUEST_TIMEOUT, "timeout", "the request body took too long", Vec::new())),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Extractors whose refusals are problem+json

/// A JSON request body. Its refusals are problems: no JSON content type → 415 `unsupported-media-type`, a body
/// that is not JSON → 400 `malformed-json`, JSON of the wrong shape → 422 `invalid-input` naming the field,
/// too large → 413 `payload-too-large`.
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body means `T::default()` (for requests whose fields are all optional).
pub struct ApiJsonOrEmpty<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<(HeaderMap, Bytes), Response> {
    let headers = req.headers().clone();
    match Bytes::from_request(req, state).await {
        Ok(b) => Ok((headers, b)),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "request body too large", Vec::new()))
        }
        Err(_) => {
            Err(problem(StatusCode::BAD_REQUEST, "bad-request", "the request body could not be read", Vec::new()))
        }
    }
}

/// The first string anywhere in `v` holding a NUL, by its path: PostgreSQL cannot store one in text, and no
/// legitimate input has one, so it is refused here rather than failing in the database.
fn nul_path(v: &serde_json::Value, path: &str) -> Option<String> {
    let join = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    match v {
        serde_json::Value::String(s) => s.contains('\0').then(|| path.to_owned()),
        serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| nul_path(x, &format!("{path}[{i}]"))),
        serde_json::Value::Object(o) => {
            o.iter().find_map(|(k, x)| if k.contains('\0') { Some(join("")) } else { nul_path(x, &join(k)) })
        }
        _ => None,
    }
}

/// Parses a JSON body into `T`, naming the offending field when the shape is wrong.
#[allow(clippy::result_large_err)] // the refusal is the response itself, as for every axum rejection
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Response> {
    if !is_json(headers) {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "expected Content-Type: application/json",
            Vec::new(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        problem(StatusCode::BAD_REQUEST, "malformed-json", "the request body is not valid JSON", Vec::new())
    })?;
    // Every request body of this API is an object; serde would otherwise read a struct out of an array.
    if !value.is_object() {
        return Err(ApiError(FieldErrors::one("body", "format")).into_response());
    }
    if let Some(path) = nul_path(&value, "") {
        let field = if path.is_empty() { "body".to_owned() } else { path };
        return Err(ApiError(FieldErrors::one(&field, "format")).into_response());
    }
    serde_path_to_error::deserialize::<_, T>(&value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let (field, code) = match msg.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(name) if path == "." => (name.to_owned(), "required"),
            Some(name) => (format!("{path}.{name}"), "required"),
            None if path == "." => ("body".to_owned(), "format"),
            None => (path, "format"),
        };
        ApiError(FieldErrors::one(&field, code)).into_response()
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, body) = body_bytes(req, state).await?;
        parse_json(&headers, &body).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, body) = body_bytes(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        parse_json(&headers, &body).map(ApiJsonOrEmpty)
    }
}

/// Path parameters. A segment that does not parse (a malformed UUID) cannot name anything: 404 problem.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(problem(StatusCode::NOT_FOUND, "not-found", "not found", Vec::new())),
        }
    }
}

/// A query string. One that cannot be read at all (a repeated parameter, bad percent-encoding) is a 400 problem;
/// handlers take strings and parse them into field-level 422s themselves.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(_) => {
                Err(problem(StatusCode::BAD_REQUEST, "invalid-query", "the query string could not be read", Vec::new()))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared rules

pub(crate) fn actor(user: &CurrentUser, ctx: &RequestCtx) -> agilekit_kernel::audit::Actor {
    user.actor(ctx.ip.clone())
}

/// The organisation, if the caller may see it at all: its members and platform admins. Anyone else gets 404,
/// the same answer as for an organisation that does not exist.
pub(crate) async fn visible_org(db: &Db, p: &Principal, org: OrgId) -> Result<Organisation, ApiError> {
    if !(p.platform_admin || p.is_member(org)) {
        return Err(ApiError(Error::NotFound));
    }
    Ok(tenancy::get(db, org).await?)
}

pub(crate) async fn viewable_org(db: &Db, p: &Principal, org: OrgId) -> Result<Organisation, ApiError> {
    p.require_view_org(org)?;
    Ok(tenancy::get(db, org).await?)
}

pub(crate) async fn administrable_org(db: &Db, p: &Principal, org: OrgId) -> Result<Organisation, ApiError> {
    p.require_admin_org(org)?;
    Ok(tenancy::get(db, org).await?)
}

/// For what only platform admins may do to an organisation: its own members learn they may not (403), others
/// learn nothing (404).
pub(crate) async fn platform_org(db: &Db, p: &Principal, org: OrgId) -> Result<Organisation, ApiError> {
    if !p.platform_admin {
        return Err(ApiError(if p.is_member(org) { Error::Forbidden } else { Error::NotFound }));
    }
    Ok(tenancy::get(db, org).await?)
}

/// Renames the field of a kernel complaint to the name the API exposes.
pub(crate) fn rename_field(e: Error, from: &str, to: &str) -> Error {
    match e {
        Error::Invalid(mut f) => {
            for x in &mut f.0 {
                if x.field == from {
                    x.field = to.to_owned();
                }
            }
            Error::Invalid(f)
        }
        other => other,
    }
}

/// 201 Created with a JSON body.
pub(crate) fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A query parameter that must be free of control characters (it ends up in SQL text comparisons).
pub(crate) fn clean(s: &str) -> bool {
    !s.chars().any(char::is_control)
}
