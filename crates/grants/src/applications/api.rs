//! The applications API: a company's applications under `/api/v1/companies/{company}/applications` (open, save the
//! draft, submit with an `Idempotency-Key`, receipt, withdraw) and a call's submitted applications for its
//! administrators under `/api/v1/orgs/{org}/calls/{call}/applications`.

use agilekit_kernel::Db;
use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::model::{ApplicationId, Draft, Expense, KEY_MAX, State as AppStateKind};
use super::sequencer::{Job, Sequencer};
use super::service::{self, Application, Receipt, Submission};
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

/// What the handlers need besides the application state: this node's sequencer and the durable handle.
#[derive(Clone)]
pub struct Runtime {
    pub sequencer: Sequencer,
    pub durable: Db,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, open, get_application, save, submit, receipt, withdraw, call_applications),
    components(schemas(Application, Draft, Expense, OpenInput, Receipt, Submission, AppStateKind, ApplicationId)),
    tags((name = "grants-applications", description = "Applications of companies to funding calls. A draft is saved whatever it \
        holds and comes back with `problems`, the field errors that would stop its submission. Submitting needs an \
        `Idempotency-Key` header: a retry with the same key returns the same receipt, another key 409 `already-submitted`. At \
        commit the submission takes the call's next protocol number (gap-free, strictly increasing) and an instant after the \
        previous one; a call a sportello admits it while the budget lasts, else puts it on the waiting list. When the node is \
        saturated the answer is 429 with Retry-After, never a lost submission.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies/{company}/applications", get(list).post(open))
        .route("/api/v1/companies/{company}/applications/{application}", get(get_application).put(save))
        .route("/api/v1/companies/{company}/applications/{application}/submit", post(submit))
        .route("/api/v1/companies/{company}/applications/{application}/receipt", get(receipt))
        .route("/api/v1/companies/{company}/applications/{application}/withdraw", post(withdraw))
        .route("/api/v1/orgs/{org}/calls/{call}/applications", get(call_applications))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OpenInput {
    pub call_id: Option<CallId>,
    pub draft: Draft,
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/applications", tag = "grants-applications", operation_id = "applications_list",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    responses((status = 200, body = Vec<Application>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(company): ApiPath<CompanyId>) -> Result<Json<Vec<Application>>, ApiError> {
    Ok(Json(service::list(&s.db, &u.principal, company).await?))
}

/// Opens the company's application to a published call, with a first draft (possibly empty).
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications", tag = "grants-applications", operation_id = "applications_open",
    params(("company" = uuid::Uuid, Path, description = "Company id")),
    request_body = OpenInput,
    responses((status = 201, body = Application), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-applied`, `call-closed`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`call_id`: `required`, `unknown-call`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn open(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath(company): ApiPath<CompanyId>, ApiJson(input): ApiJson<OpenInput>) -> Result<Response, ApiError> {
    let Some(call) = input.call_id else { return Err(agilekit_kernel::FieldErrors::one("call_id", "required").into()) };
    let a = service::open(&s.db, &u.actor(c.ip.clone()), &u.principal, company, call, &input.draft).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/applications/{application}", tag = "grants-applications", operation_id = "applications_get",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Application), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_application(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>) -> Result<Json<Application>, ApiError> {
    Ok(Json(service::get(&s.db, &u.principal, company, id).await?))
}

/// Saves the draft as it is; the answer lists its `problems`.
#[utoipa::path(put, path = "/api/v1/companies/{company}/applications/{application}", tag = "grants-applications", operation_id = "applications_save",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = Draft,
    responses((status = 200, body = Application), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-submitted`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Only what cannot be stored: `plan`: `too-long` and the like", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn save(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>,
    ApiJson(draft): ApiJson<Draft>,
) -> Result<Json<Application>, ApiError> {
    Ok(Json(service::save(&s.db, &u.actor(c.ip.clone()), &u.principal, company, id, &draft).await?))
}

/// Submits the application (call open, draft without problems). Idempotent by the `Idempotency-Key` header.
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications/{application}/submit", tag = "grants-applications", operation_id = "applications_submit",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Any string up to 200 characters, the same for every retry of one submission")),
    responses((status = 200, body = Receipt), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-not-open`, `call-closed`, `already-submitted`, `withdrawn`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The draft's problems, or `Idempotency-Key`: `required`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The node is saturated: retry after the Retry-After seconds with the same key", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn submit(
    State(s): State<AppState>,
    Extension(rt): Extension<Runtime>,
    ApiUser(u, c): ApiUser,
    ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>,
    headers: HeaderMap,
) -> Result<Json<Receipt>, ApiError> {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if key.is_empty() {
        return Err(agilekit_kernel::FieldErrors::one("Idempotency-Key", "required").into());
    }
    if key.len() > KEY_MAX {
        return Err(agilekit_kernel::FieldErrors::one("Idempotency-Key", "too-long").into());
    }
    service::company_ok(&s.db, &u.principal, company).await?;
    let job = Job { company, application: id, key: key.to_owned(), actor: u.actor(c.ip.clone()), public_url: s.cfg.public_url.clone() };
    Ok(Json(rt.sequencer.submit(job).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/applications/{application}/receipt", tag = "grants-applications", operation_id = "applications_receipt",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Receipt), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such application, or not submitted", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn receipt(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>) -> Result<Json<Receipt>, ApiError> {
    Ok(Json(service::receipt(&s.db, &u.principal, company, id).await?))
}

/// Withdraws a submitted application; the money it held is drawn by the waiting list.
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications/{application}/withdraw", tag = "grants-applications", operation_id = "applications_withdraw",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Receipt), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-submitted`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn withdraw(
    State(s): State<AppState>,
    Extension(rt): Extension<Runtime>,
    ApiUser(u, c): ApiUser,
    ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>,
) -> Result<Json<Receipt>, ApiError> {
    Ok(Json(service::withdraw(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, company, id).await?))
}

/// The call's submitted applications in protocol order (its administrators and evaluators).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/applications", tag = "grants-applications", operation_id = "calls_applications",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Vec<Submission>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn call_applications(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call)): ApiPath<(OrgId, CallId)>) -> Result<Json<Vec<Submission>>, ApiError> {
    Ok(Json(service::list_submitted(&s.db, &u.principal, org, call).await?))
}
