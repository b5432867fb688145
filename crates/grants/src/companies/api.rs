//! The companies API under `/api/v1/companies`: the caller's companies, registration and edits, representatives
//! (owners delegate other people by the e-mail of their account) and the de minimis aid the company declares.

use agilekit_kernel::ids::AccountId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use super::model::{AidId, AidInput, CompanyId, CompanyInput, Role};
use super::service::{self, Aid, AidList, Company, DeMinimis, Region, Representative};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, register, get_company, update, representatives, add_delegate, remove_representative, aid, add_aid, delete_aid),
    components(schemas(Company, CompanyInput, Region, Role, Representative, DelegateInput, Aid, AidInput, AidList, DeMinimis, CompanyId, AidId)),
    tags((name = "grants-companies", description = "Companies that apply for funding calls: registration with partita IVA and \
        codice fiscale checked by their check characters (omocodia accepted for personal codes), size, ATECO sector, regions of \
        their sites, PEC; the people who act for them (the owner who registered it and the delegates the owner adds); the de \
        minimis aid they declare (EU 2023/2831: EUR 300,000 over three rolling years). Another person's company answers 404.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies", get(list).post(register))
        .route("/api/v1/companies/{company}", get(get_company).put(update))
        .route("/api/v1/companies/{company}/representatives", get(representatives).post(add_delegate))
        .route("/api/v1/companies/{company}/representatives/{account}", delete(remove_representative))
        .route("/api/v1/companies/{company}/aid", get(aid).post(add_aid))
        .route("/api/v1/companies/{company}/aid/{aid}", delete(delete_aid))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DelegateInput {
    /// The e-mail of the person's account (they sign in first, with SPID/CIE or a password).
    pub email: String,
}

/// The companies the caller acts for.
#[utoipa::path(get, path = "/api/v1/companies", tag = "grants-companies", operation_id = "companies_list",
    responses((status = 200, body = Vec<Company>), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(State(s): State<AppState>, ApiUser(u, _): ApiUser) -> Result<Json<Vec<Company>>, ApiError> {
    Ok(Json(service::list(&s.db, &u.principal).await?))
}

/// Registers a company; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/companies", tag = "grants-companies", operation_id = "companies_register",
    request_body = CompanyInput,
    responses((status = 201, body = Company), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field errors, e.g. `partita_iva`: `check-digit` or `already-registered`; `site_regions.1`: `unknown-region`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn register(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiJson(input): ApiJson<CompanyInput>) -> Result<Response, ApiError> {
    let company = service::register(&s.db, &u.actor(c.ip.clone()), &u.principal, &input).await?;
    Ok((StatusCode::CREATED, Json(company)).into_response())
}

#[utoipa::path(get, path = "/api/v1/companies/{company}", tag = "grants-companies", operation_id = "companies_get",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    responses((status = 200, body = Company), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_company(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(id): ApiPath<CompanyId>) -> Result<Json<Company>, ApiError> {
    Ok(Json(service::get(&s.db, &u.principal, id).await?))
}

/// Changes the company's data (owners and delegates).
#[utoipa::path(put, path = "/api/v1/companies/{company}", tag = "grants-companies", operation_id = "companies_update",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    request_body = CompanyInput,
    responses((status = 200, body = Company), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(id): ApiPath<CompanyId>,
    ApiJson(input): ApiJson<CompanyInput>,
) -> Result<Json<Company>, ApiError> {
    Ok(Json(service::update(&s.db, &u.actor(c.ip.clone()), &u.principal, id, &input).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/representatives", tag = "grants-companies", operation_id = "companies_representatives",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    responses((status = 200, body = Vec<Representative>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn representatives(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(id): ApiPath<CompanyId>) -> Result<Json<Vec<Representative>>, ApiError> {
    Ok(Json(service::representatives(&s.db, &u.principal, id).await?))
}

/// Delegates a person to act for the company (owners only).
#[utoipa::path(post, path = "/api/v1/companies/{company}/representatives", tag = "grants-companies", operation_id = "companies_delegate",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    request_body = DelegateInput,
    responses((status = 201, body = Vec<Representative>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`email`: `format`, `no-such-account`, `already-representative`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn add_delegate(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(id): ApiPath<CompanyId>,
    ApiJson(input): ApiJson<DelegateInput>,
) -> Result<Response, ApiError> {
    let reps = service::add_delegate(&s.db, &u.actor(c.ip.clone()), &u.principal, id, &input.email).await?;
    Ok((StatusCode::CREATED, Json(reps)).into_response())
}

/// Removes a representative (owners), or leaves the company (anyone, for themselves); never its last owner.
#[utoipa::path(delete, path = "/api/v1/companies/{company}/representatives/{account}", tag = "grants-companies", operation_id = "companies_remove_representative",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("account" = uuid::Uuid, Path, description = "Account id")),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last-owner`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn remove_representative(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((id, account)): ApiPath<(CompanyId, AccountId)>,
) -> Result<Response, ApiError> {
    service::remove_representative(&s.db, &u.actor(c.ip.clone()), &u.principal, id, account).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The declared de minimis aid, newest first, and the position today.
#[utoipa::path(get, path = "/api/v1/companies/{company}/aid", tag = "grants-companies", operation_id = "companies_aid",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    responses((status = 200, body = AidList), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn aid(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(id): ApiPath<CompanyId>) -> Result<Json<AidList>, ApiError> {
    Ok(Json(service::aid(&s.db, &u.principal, id).await?))
}

#[utoipa::path(post, path = "/api/v1/companies/{company}/aid", tag = "grants-companies", operation_id = "companies_add_aid",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    request_body = AidInput,
    responses((status = 201, body = Aid), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`granted_on`: `bad-date`, `in-the-future`; `amount_cents`: `not-positive`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn add_aid(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(id): ApiPath<CompanyId>,
    ApiJson(input): ApiJson<AidInput>,
) -> Result<Response, ApiError> {
    let a = service::add_aid(&s.db, &u.actor(c.ip.clone()), &u.principal, id, &input).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/companies/{company}/aid/{aid}", tag = "grants-companies", operation_id = "companies_delete_aid",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("aid" = uuid::Uuid, Path, description = "Aid id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_aid(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((id, aid)): ApiPath<(CompanyId, AidId)>,
) -> Result<Response, ApiError> {
    service::delete_aid(&s.db, &u.actor(c.ip.clone()), &u.principal, id, aid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
