//! The review API: the call's staff under `/api/v1/orgs/{org}/calls/{call}/applications/{application}/review…`
//! (read, formal check, grant, approval), the company under
//! `/api/v1/companies/{company}/applications/{application}/review…` (read, answer, report).

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::files;
use super::model::{Action, AnswerInput, ApprovalInput, CheckInput, GrantInput, Line, LineInput, Party, ReportInput, Stage};
use super::service::{self, Event, Review};
use crate::applications::api::Runtime;
use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(staff_get, check, grant, approval, company_get, answer, report, files::upload_api, files::company_file_api, files::staff_file_api),
    components(schemas(Review, Event, files::ReviewFile, files::ReviewUpload, Stage, Action, Party, Line, CheckInput, AnswerInput, GrantInput, ReportInput, LineInput, ApprovalInput)),
    tags((name = "grants-review", description = "After admission: the formal check (admissible; an integration request with a \
        deadline that the company answers; inadmissible with reasons, which gives the money back to the call and draws the \
        waiting list), the grant decision (at most the amount requested; the rest goes back), the company's expense report by \
        the call's categories, and its approval with the amount to pay, or a request for corrections, or its rejection. \
        Each step answers 409 `step-not-due` when the application is not at the stage it needs (`integration-pending` for \
        an inadmissibility before the integration's deadline; `not-under-review` for an application that holds no money), \
        and 422 with field errors on bad input. While an integration or a report is due the company may send files \
        (`…/review/files`, multipart part `file`), listed in the review and downloadable by both sides. Money is typed as people type it (`7.500,00`). Every step is audited and \
        mailed to the company's PEC address.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/calls/{call}/applications/{application}/review", get(staff_get))
        .route("/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/check", post(check))
        .route("/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/grant", post(grant))
        .route("/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/approval", post(approval))
        .route("/api/v1/companies/{company}/applications/{application}/review", get(company_get))
        .route("/api/v1/companies/{company}/applications/{application}/review/answer", post(answer))
        .route("/api/v1/companies/{company}/applications/{application}/review/report", post(report))
        // Files: the extractors' own limit off; the outer layers cap a multipart body at the uploads' limit (the path
        // ends in `/files`); each file is held to `[files] max_bytes`.
        .route("/api/v1/companies/{company}/applications/{application}/review/files", post(files::upload_api).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/companies/{company}/applications/{application}/review/files/{file}", get(files::company_file_api))
        .route("/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/files/{file}", get(files::staff_file_api))
}

type StaffPath = ApiPath<(OrgId, CallId, ApplicationId)>;
type CompanyPath = ApiPath<(CompanyId, ApplicationId)>;

#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review", tag = "grants-review", operation_id = "review_staff_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn staff_get(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call, id)): StaffPath) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::staff_view(&s.db, &u.principal, org, call, id).await?))
}

/// The formal check's outcome.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/check", tag = "grants-review", operation_id = "review_check",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = CheckInput,
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`, `integration-pending`, `not-under-review`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`outcome`, `message`, `deadline` (`not-after-today`), `reasons`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn check(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((org, call, id)): StaffPath, ApiJson(input): ApiJson<CheckInput>) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::check(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, org, call, id, &input, &s.cfg.public_url).await?))
}

/// The grant decision.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/grant", tag = "grants-review", operation_id = "review_grant",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = GrantInput,
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`, `not-under-review`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`amount` (`over-requested` and the money codes), `act_number`, `act_date` (`in-the-future`)", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn grant(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((org, call, id)): StaffPath, ApiJson(input): ApiJson<GrantInput>) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::grant(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, org, call, id, &input, &s.cfg.public_url).await?))
}

/// The expense report's approval, a request for corrections, or its rejection.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/approval", tag = "grants-review", operation_id = "review_approval",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = ApprovalInput,
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`, `not-under-review`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`outcome`, `eligible.N` (`over-reported` and the money codes), `message`, `deadline`, `reasons`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn approval(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((org, call, id)): StaffPath, ApiJson(input): ApiJson<ApprovalInput>) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::approval(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, org, call, id, &input, &s.cfg.public_url).await?))
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/applications/{application}/review", tag = "grants-review", operation_id = "review_company_get",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn company_get(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((company, id)): CompanyPath) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::company_view(&s.db, &u.principal, company, id).await?))
}

/// The company's answer to an integration request.
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications/{application}/review/answer", tag = "grants-review", operation_id = "review_answer",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = AnswerInput,
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`, `not-under-review`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`text`: `required`, `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn answer(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((company, id)): CompanyPath, ApiJson(input): ApiJson<AnswerInput>) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::answer(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, company, id, &input, &s.cfg.public_url).await?))
}

/// The company's expense report (once; again only when corrections are asked).
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications/{application}/review/report", tag = "grants-review", operation_id = "review_report",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = ReportInput,
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`, `not-under-review`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`lines`, `lines.N.category` (`unknown-category`), `lines.N.description`, `lines.N.amount`, `lines.N.invoice`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn report(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((company, id)): CompanyPath, ApiJson(input): ApiJson<ReportInput>) -> Result<Json<Review>, ApiError> {
    Ok(Json(service::report(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, company, id, &input, &s.cfg.public_url).await?))
}
