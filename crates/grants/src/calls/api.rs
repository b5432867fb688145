//! The calls API: `/api/v1/calls` (published calls, for anyone, no sign-in) and `/api/v1/orgs/{org}/calls` (the
//! organisation's administrators: drafts, edits before the opening, publication, FAQ, documents).

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::model::{Attachment, CallId, DocumentId, CallInput, Category, Criterion, EligibilityInput, FaqId, FaqInput, Mode, Phase};
use super::service::{self, Call, Document, EligibilityView, Faq};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(public_list, public_get, list, create, get_call, update, publish, add_faq, update_faq, delete_faq, put_budget, add_document, delete_document),
    components(schemas(super::budget::BudgetInput, super::budget::BudgetChange, super::budget::Money, Call, CallInput, Category, Attachment, Criterion, EligibilityInput, EligibilityView, Faq, FaqInput, Mode, Phase, CallId, FaqId, Document, DocumentId, DocumentUpload)),
    tags((name = "grants-calls", description = "Funding calls: an organisation's administrators define them (budget in cents, a \
        sportello by protocol order or graduatoria by score, grant by size band or a capped share of eligible expenses, expense \
        categories, eligibility by size, ATECO sector and region, required attachments, the de minimis check, opening and closing \
        instants), publish them with their FAQ and documents (decree, forms, annexes: multipart uploads, added or removed before \
        and after publication), and anyone reads the published ones (a document's bytes at `/calls/{call}/documents/{document}`). After the opening a call's rules do not \
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
        // The file is held to `[files] max_bytes` here, not by the extractors' ordinary limit.
        .route("/api/v1/orgs/{org}/calls/{call}/documents", post(add_document).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/orgs/{org}/calls/{call}/documents/{document}", axum::routing::delete(delete_document))
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


/// A call's document as uploaded.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DocumentUpload {
    /// Required, at most 200 characters.
    title: String,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The longest `title` part read (bytes); a longer one is refused as too long anyway.
const TITLE_PART_MAX: u64 = 4096;

/// Adds a document (decree, form, annex, erratum) to a call, before or after its publication. Audited as
/// `call.document.add`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/documents", tag = "grants-calls", operation_id = "calls_add_document",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    request_body(content = DocumentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Document), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`file-too-large`, with `limit` (bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`title`: `required`, `too-long`; `file`: `required`, `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn add_document(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CallId)>,
    req: Request,
) -> Result<Response, ApiError> {
    // Who may not touch the call learns nothing about the body.
    service::get_in(&s.db, &u.principal, org, id).await?;
    let limit = s.cfg.files.max_bytes;
    let format = || ApiError::from(agilekit_kernel::FieldErrors::one("file", "format"));
    let mut mp = Multipart::from_request(req, &s).await.map_err(|_| format())?;
    let (mut title, mut file) = (String::new(), None::<(String, String, Vec<u8>)>);
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(format()),
        };
        match field.name() {
            Some("title") => match crate::applications::api::read_limited(&mut field, TITLE_PART_MAX).await {
                Ok(Some(d)) => title = String::from_utf8_lossy(&d).into_owned(),
                Ok(None) => title = "x".repeat(super::model::DOCUMENT_TITLE_MAX + 1),
                Err(()) => return Err(format()),
            },
            Some("file") => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
                match crate::applications::api::read_limited(&mut field, limit).await {
                    Ok(Some(d)) => file = Some((name, ct, d)),
                    Ok(None) => return Ok(crate::applications::api::file_too_large(limit)),
                    Err(()) => return Err(format()),
                }
            }
            _ => {}
        }
    }
    let (name, ct, data) = file.unwrap_or_default();
    let d = service::add_document(&s.db, &s.cfg.files, &u.actor(c.ip.clone()), &u.principal, org, id, &title, &name, &ct, &data).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// Removes a call's document. Audited as `call.document.delete`.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/calls/{call}/documents/{document}", tag = "grants-calls", operation_id = "calls_delete_document",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"),
        ("document" = uuid::Uuid, Path, description = "Document id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_document(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id, doc)): ApiPath<(OrgId, CallId, DocumentId)>,
) -> Result<Response, ApiError> {
    service::delete_document(&s.db, &u.actor(c.ip.clone()), &u.principal, org, id, doc).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
