//! The calls API: `/api/v1/calls` (published calls, for anyone, no sign-in) and `/api/v1/orgs/{org}/calls` (the
//! organisation's administrators: drafts, edits before the opening, publication, FAQ).

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::model::{Attachment, CallId, CallInput, Category, Criterion, EligibilityInput, FaqId, FaqInput, Mode, Phase};
use super::service::{self, Call, EligibilityView, Faq};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(public_list, public_get, list, create, get_call, update, publish, add_faq, update_faq, delete_faq, put_budget),
    components(schemas(super::budget::BudgetInput, super::budget::BudgetChange, super::budget::Money, Call, CallInput, Category, Attachment, Criterion, EligibilityInput, EligibilityView, Faq, FaqInput, Mode, Phase, CallId, FaqId)),
    tags((name = "grants-calls", description = "Funding calls: an organisation's administrators define them (budget in cents, a \
        sportello by protocol order or graduatoria by score, grant by size band or a capped share of eligible expenses, expense \
        categories, eligibility by size, ATECO sector and region, required attachments, the de minimis check, opening and closing \
        instants), publish them with their FAQ, and anyone reads the published ones. After the opening a call's rules do not \
        change (409 `call-opened`).")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls", get(public_list))
        .route("/api/v1/calls/{call}", get(public_get))
        .route("/api/v1/orgs/{org}/calls", get(list).post(create))
        .route("/api/v1/orgs/{org}/calls/{call}", get(get_call).put(update))
        .route("/api/v1/orgs/{org}/calls/{call}/publish", post(publish))
        .route("/api/v1/orgs/{org}/calls/{call}/budget", put(put_budget))
        .route("/api/v1/orgs/{org}/calls/{call}/faqs", post(add_faq))
        .route("/api/v1/orgs/{org}/calls/{call}/faqs/{faq}", put(update_faq).delete(delete_faq))
}

/// The published calls of every organisation, latest opening first (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/calls", tag = "grants-calls", operation_id = "calls_public_list",
    responses((status = 200, body = Vec<Call>)))]
async fn public_list(State(s): State<AppState>) -> Result<Json<Vec<Call>>, ApiError> {
    Ok(Json(service::public_list(&s.db).await?))
}

/// A published call with its FAQ (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/calls/{call}", tag = "grants-calls", operation_id = "calls_public_get",
    params(("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Call), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn public_get(State(s): State<AppState>, ApiPath(id): ApiPath<CallId>) -> Result<Json<Call>, ApiError> {
    Ok(Json(service::public_get(&s.db, id).await?))
}

/// The organisation's calls, drafts included (its administrators).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls", tag = "grants-calls", operation_id = "calls_list",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<Call>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(org): ApiPath<OrgId>) -> Result<Json<Vec<Call>>, ApiError> {
    Ok(Json(service::list_in(&s.db, &u.principal, org).await?))
}

/// Creates a draft call.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls", tag = "grants-calls", operation_id = "calls_create",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = CallInput,
    responses((status = 201, body = Call), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field errors by path, e.g. `grant_rule.bands.1.min_employees`: `not-contiguous`; `closes_at`: `not-after-opening`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath(org): ApiPath<OrgId>, ApiJson(input): ApiJson<CallInput>) -> Result<Response, ApiError> {
    let call = service::create(&s.db, &u.actor(c.ip.clone()), &u.principal, org, &input).await?;
    Ok((StatusCode::CREATED, Json(call)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}", tag = "grants-calls", operation_id = "calls_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Call), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_call(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, id)): ApiPath<(OrgId, CallId)>) -> Result<Json<Call>, ApiError> {
    Ok(Json(service::get_in(&s.db, &u.principal, org, id).await?))
}

/// Changes a call before its opening.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/calls/{call}", tag = "grants-calls", operation_id = "calls_update",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    request_body = CallInput,
    responses((status = 200, body = Call), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-opened`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CallId)>,
    ApiJson(input): ApiJson<CallInput>,
) -> Result<Json<Call>, ApiError> {
    Ok(Json(service::update(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id, &input).await?))
}

/// Publishes a draft call.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/publish", tag = "grants-calls", operation_id = "calls_publish",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Call), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-published`, `call-closed`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn publish(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath((org, id)): ApiPath<(OrgId, CallId)>) -> Result<Json<Call>, ApiError> {
    Ok(Json(service::publish(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/faqs", tag = "grants-calls", operation_id = "calls_add_faq",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    request_body = FaqInput,
    responses((status = 201, body = Faq), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn add_faq(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CallId)>,
    ApiJson(input): ApiJson<FaqInput>,
) -> Result<Response, ApiError> {
    let f = service::add_faq(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id, &input).await?;
    Ok((StatusCode::CREATED, Json(f)).into_response())
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/calls/{call}/faqs/{faq}", tag = "grants-calls", operation_id = "calls_update_faq",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"),
        ("faq" = uuid::Uuid, Path, description = "FAQ id")),
    request_body = FaqInput,
    responses((status = 200, body = Faq), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update_faq(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id, faq)): ApiPath<(OrgId, CallId, FaqId)>,
    ApiJson(input): ApiJson<FaqInput>,
) -> Result<Json<Faq>, ApiError> {
    Ok(Json(service::update_faq(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id, faq, &input).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/calls/{call}/faqs/{faq}", tag = "grants-calls", operation_id = "calls_delete_faq",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"),
        ("faq" = uuid::Uuid, Path, description = "FAQ id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_faq(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id, faq)): ApiPath<(OrgId, CallId, FaqId)>,
) -> Result<Response, ApiError> {
    service::delete_faq(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id, faq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Changes a call's budget at any time: a cut below the committed money is refused (`budget`: `below-committed`), an
/// increase admits the head of the overbooking list while the money lasts. Audited as `call.budget`.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/calls/{call}/budget", tag = "grants-calls", operation_id = "calls_budget",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    request_body = super::budget::BudgetInput,
    responses((status = 200, body = super::budget::BudgetChange), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`budget`: `required`, `not-an-amount`, `not-positive`, `too-large`, `below-committed`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn put_budget(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    axum::Extension(runtime): axum::Extension<crate::applications::api::Runtime>,
    ApiPath((org, id)): ApiPath<(OrgId, CallId)>,
    ApiJson(input): ApiJson<super::budget::BudgetInput>,
) -> Result<Json<super::budget::BudgetChange>, ApiError> {
    let budget = input.parse()?;
    Ok(Json(super::budget::change(&s.db, &runtime.durable, &u.actor(c.ip.clone()), &u.principal, org, id, budget).await?))
}

