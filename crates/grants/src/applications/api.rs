//! The applications API: a company's applications under `/api/v1/companies/{company}/applications` (open, save the
//! draft, submit with an `Idempotency-Key`, receipt, withdraw) and a call's submitted applications for its
//! administrators under `/api/v1/orgs/{org}/calls/{call}/applications`.

use agilekit_kernel::Db;
use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::model::{ApplicationId, AttachedFile, Draft, Expense, KEY_MAX, State as AppStateKind};
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
    paths(list, open, get_application, save, submit, receipt, withdraw, call_applications, put_attachment, delete_attachment, get_attachment),
    components(schemas(Application, Draft, Expense, OpenInput, Receipt, Submission, AppStateKind, ApplicationId, AttachedFile, AttachmentUpload)),
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
        // The file is held to `[files] max_bytes` here, not by the extractors' ordinary limit.
        .route(
            "/api/v1/companies/{company}/applications/{application}/attachments/{code}",
            get(get_attachment).put(put_attachment).delete(delete_attachment).layer(DefaultBodyLimit::disable()),
        )
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

/// The body of an attachment upload: a multipart part `file` (its name and content type as the part declares them),
/// or the raw bytes with their `Content-Type` and the name in the `name` query parameter.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AttachmentUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    pub name: String,
}

/// 413 `file-too-large`, saying the limit in bytes (`limit`).
pub fn file_too_large(limit: u64) -> Response {
    let body = serde_json::json!({
        "type": "urn:agilekit:problem:file-too-large", "title": "file too large", "status": 413, "code": "file-too-large",
        "limit": limit, "errors": [{"field": "file", "code": "file-too-large"}],
    });
    let mut r = (StatusCode::PAYLOAD_TOO_LARGE, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

/// What a multipart field holds, read up to `limit` bytes: `None` once it goes past.
pub(crate) async fn read_limited(field: &mut axum::extract::multipart::Field<'_>, limit: u64) -> Result<Option<Vec<u8>>, ()> {
    let mut data = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(c)) => {
                if (data.len() + c.len()) as u64 > limit {
                    return Ok(None);
                }
                data.extend_from_slice(&c);
            }
            Ok(None) => return Ok(Some(data)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Ok(None),
            Err(_) => return Err(()),
        }
    }
}

/// Uploads the draft's required attachment `code` (one of the call's `required_attachments`), replacing the one
/// stored. Only while a draft. The application's draft lists it in `attachments` with its SHA-256.
#[utoipa::path(put, path = "/api/v1/companies/{company}/applications/{application}/attachments/{code}", tag = "grants-applications",
    operation_id = "applications_put_attachment",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id"),
        ("code" = String, Path, description = "The code of one of the call's required attachments"),
        ("name" = Option<String>, Query, description = "The file's name when the body is the raw file")),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = Application), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such application, or the call requires no attachment `code`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-submitted`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`file-too-large`, with `limit` (bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`file`: `required`, `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn put_attachment(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((company, id, code)): ApiPath<(CompanyId, ApplicationId, String)>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    // Who may not touch the draft learns nothing about the body.
    service::get(&s.db, &u.principal, company, id).await?;
    let limit = s.cfg.files.max_bytes;
    let format = || ApiError::from(agilekit_kernel::FieldErrors::one("file", "format"));
    let multipart = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    let (name, ct, data) = if multipart {
        let mut mp = Multipart::from_request(req, &s).await.map_err(|_| format())?;
        loop {
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => return Err(agilekit_kernel::FieldErrors::one("file", "required").into()),
                Err(_) => return Err(format()),
            };
            if field.name() != Some("file") {
                continue;
            }
            let name = field.file_name().unwrap_or("file").to_owned();
            let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
            match read_limited(&mut field, limit).await {
                Ok(Some(d)) => break (name, ct, d),
                Ok(None) => return Ok(file_too_large(limit)),
                Err(()) => return Err(format()),
            }
        }
    } else {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream").to_owned();
        let bytes = match axum::body::to_bytes(req.into_body(), usize::try_from(limit).unwrap_or(usize::MAX).saturating_add(1)).await {
            Ok(b) => b,
            Err(_) => return Ok(file_too_large(limit)),
        };
        if bytes.len() as u64 > limit {
            return Ok(file_too_large(limit));
        }
        (if q.name.trim().is_empty() { "file".to_owned() } else { q.name.clone() }, ct, bytes.to_vec())
    };
    if data.is_empty() {
        return Err(agilekit_kernel::FieldErrors::one("file", "required").into());
    }
    let a = service::put_attachment(&s.db, &s.cfg.files, &u.actor(c.ip.clone()), &u.principal, company, id, &code, &name, &ct, &data).await?;
    Ok(Json(a).into_response())
}

/// Removes the draft's attachment `code`. Only while a draft.
#[utoipa::path(delete, path = "/api/v1/companies/{company}/applications/{application}/attachments/{code}", tag = "grants-applications",
    operation_id = "applications_delete_attachment",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id"),
        ("code" = String, Path, description = "The attachment's code")),
    responses((status = 200, body = Application), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such application or attachment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-submitted`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_attachment(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((company, id, code)): ApiPath<(CompanyId, ApplicationId, String)>,
) -> Result<Json<Application>, ApiError> {
    Ok(Json(service::delete_attachment(&s.db, &u.actor(c.ip.clone()), &u.principal, company, id, &code).await?))
}

/// The stored file of attachment `code`, as a download (never inline, never cached).
#[utoipa::path(get, path = "/api/v1/companies/{company}/applications/{application}/attachments/{code}", tag = "grants-applications",
    operation_id = "applications_get_attachment",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id"),
        ("code" = String, Path, description = "The attachment's code")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_attachment(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((company, id, code)): ApiPath<(CompanyId, ApplicationId, String)>,
) -> Result<Response, ApiError> {
    let (meta, data) = service::attachment(&s.db, &u.principal, company, id, &code).await?;
    Ok(download(&meta, data))
}

/// Content types served as what they are; anything else as `application/octet-stream`.
const SAFE_TYPES: &[&str] = &["image/png", "image/jpeg", "application/pdf", "text/plain"];

/// The stored bytes as a download: never inline, never sniffed, sandboxed, never cached.
pub fn download(meta: &agilekit_kernel::files::FileMeta, data: Vec<u8>) -> Response {
    let ct = if SAFE_TYPES.contains(&meta.content_type.as_str()) { meta.content_type.as_str() } else { "application/octet-stream" };
    let ascii: String = meta.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    let encoded: String = meta
        .name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}
