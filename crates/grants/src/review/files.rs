//! Files the company sends while one of its steps is due (an integration, the expense report, its corrections):
//! stored by the kernel's file store in the call organisation's space, listed in the review with the stage they were
//! sent at, downloaded by the company and by the call's staff. Uploading is not a step: the answer or report that
//! follows carries them.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::files::{self, FileId, FileMeta};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock, db_run};
use agilekit_web::AppState;
use agilekit_web::api::ApiPath;
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::model::Stage;
use super::service::{self, Review};
use super::store;
use crate::applications::api::{download, file_too_large, read_limited};
use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

/// The most files one application's review takes.
pub const FILES_MAX: usize = 20;

/// A file sent during the review.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewFile {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// The stage it was sent at.
    pub stage: Stage,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: FileId,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    stage: String,
    created_at: OffsetDateTime,
}

/// The review's files, oldest first.
pub async fn list(db: &Db, app: ApplicationId) -> Result<Vec<ReviewFile>> {
    let rows: Vec<Row> = db_run!(db, |p| sqlx::query_as(
        "SELECT f.id, f.name, f.content_type, f.size, f.sha256, r.stage, r.created_at FROM grant_review_files r
         JOIN files f ON f.id = r.file_id AND f.org_id = r.org_id WHERE r.application_id = $1 ORDER BY r.created_at, f.id"
    ).bind(app).fetch_all(p).await.map_err(agilekit_kernel::db::DbError::from)?);
    Ok(rows
        .into_iter()
        .filter_map(|r| Some(ReviewFile { id: r.id, name: r.name, content_type: r.content_type, size: r.size, sha256: r.sha256, stage: Stage::parse(&r.stage)?, uploaded_at: r.created_at }))
        .collect())
}

async fn belongs(db: &Db, app: ApplicationId, file: FileId) -> Result<bool> {
    let n: i64 = db_run!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM grant_review_files WHERE application_id = $1 AND file_id = $2")
        .bind(app).bind(file).fetch_one(p).await.map_err(agilekit_kernel::db::DbError::from)?);
    Ok(n == 1)
}

/// Stores a file the company sends while one of its steps is due; `file`: `too-large`, `too-many`, `required`.
#[allow(clippy::too_many_arguments)]
pub async fn upload(db: &Db, settings: &files::Settings, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId, name: &str, content_type: &str, data: &[u8]) -> Result<Review> {
    let r = service::company_view(db, p, company, id).await?;
    if !matches!(r.stage, Some(Stage::Integration | Stage::Granted | Stage::Corrections)) {
        return Err(Error::Conflict("step-not-due"));
    }
    if data.is_empty() {
        return Err(FieldErrors::one("file", "required"));
    }
    if r.files.len() >= FILES_MAX {
        return Err(FieldErrors::one("file", "too-many"));
    }
    let meta = files::put(db, settings, r.org_id, Some(p.id()), name, content_type, data).await?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    // The stage again, in the transaction: a step taken meanwhile closes the upload.
    let stage = store::get_tx(&mut tx, id).await?.and_then(|x| Stage::parse(&x.stage));
    if !matches!(stage, Some(Stage::Integration | Stage::Granted | Stage::Corrections)) {
        return Err(Error::Conflict("step-not-due"));
    }
    let stage = stage.map_or("", Stage::as_str);
    if !files::mark_attached(&mut tx, r.org_id, Some(p.id()), meta.id, now).await? {
        return Err(Error::Internal("an uploaded file vanished".into()));
    }
    db_run!(tx tx, |c| sqlx::query("INSERT INTO grant_review_files (file_id, application_id, org_id, stage, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(meta.id).bind(id).bind(r.org_id).bind(stage).bind(now).execute(c).await.map_err(agilekit_kernel::db::DbError::from)?.rows_affected());
    audit::record(&mut tx, actor, Change { org: Some(r.org_id), action: "review.file", entity: "grant_application", entity_id: id.to_string(), before: None,
        after: Some(json!({"file": meta.id, "name": meta.name, "size": meta.size, "sha256": meta.sha256, "stage": stage})) })
        .await?;
    tx.commit().await?;
    service::company_view(db, p, company, id).await
}

async fn read(db: &Db, org: OrgId, app: ApplicationId, file: FileId) -> Result<(FileMeta, Vec<u8>)> {
    if !belongs(db, app, file).await? {
        return Err(Error::NotFound);
    }
    files::read(db, org, file).await?.ok_or(Error::NotFound)
}

pub async fn company_file(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId, file: FileId) -> Result<(FileMeta, Vec<u8>)> {
    let r = service::company_view(db, p, company, id).await?;
    read(db, r.org_id, id, file).await
}

pub async fn staff_file(db: &Db, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, file: FileId) -> Result<(FileMeta, Vec<u8>)> {
    service::staff_view(db, p, org, call, id).await?;
    read(db, org, id, file).await
}

/// The file of a multipart body's part `file`: its name, content type and bytes; an answer when it cannot be read.
pub(super) async fn multipart_file(s: &AppState, req: Request) -> std::result::Result<(String, String, Vec<u8>), std::result::Result<Response, Error>> {
    let limit = s.cfg.files.max_bytes;
    let format = || Err(FieldErrors::one("file", "format"));
    let Ok(mut mp) = Multipart::from_request(req, s).await else { return Err(format()) };
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(Err(FieldErrors::one("file", "required"))),
            Err(_) => return Err(format()),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
        return match read_limited(&mut field, limit).await {
            Ok(Some(d)) if d.is_empty() && name.is_empty() => Err(Err(FieldErrors::one("file", "required"))),
            Ok(Some(d)) => Ok((name, ct, d)),
            Ok(None) => Err(Ok(file_too_large(limit))),
            Err(()) => Err(format()),
        };
    }
}

/// The body of a file upload: a multipart part `file`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ReviewUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Sends a file with the integration or the expense report (while one of them is due).
#[utoipa::path(post, path = "/api/v1/companies/{company}/applications/{application}/review/files", tag = "grants-review", operation_id = "review_upload",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body(content = ReviewUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = Review), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`step-not-due`: no integration or report is due", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`file-too-large`, with `limit` (bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`file`: `required`, `format`, `too-many`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn upload_api(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath((company, id)): ApiPath<(CompanyId, ApplicationId)>, req: Request) -> std::result::Result<Response, ApiError> {
    // Who may not see the review learns nothing about the body.
    service::company_view(&s.db, &u.principal, company, id).await?;
    let (name, ct, data) = match multipart_file(&s, req).await {
        Ok(x) => x,
        Err(Ok(r)) => return Ok(r),
        Err(Err(e)) => return Err(e.into()),
    };
    let r = upload(&s.db, &s.cfg.files, &u.actor(c.ip.clone()), &u.principal, company, id, &name, &ct, &data).await?;
    Ok(Json(r).into_response())
}

#[utoipa::path(get, path = "/api/v1/companies/{company}/applications/{application}/review/files/{file}", tag = "grants-review", operation_id = "review_company_file",
    params(("company" = uuid::Uuid, Path, description = "Company id"), ("application" = uuid::Uuid, Path, description = "Application id"), ("file" = uuid::Uuid, Path, description = "File id")),
    responses((status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn company_file_api(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((company, id, file)): ApiPath<(CompanyId, ApplicationId, FileId)>) -> std::result::Result<Response, ApiError> {
    let (meta, data) = company_file(&s.db, &u.principal, company, id, file).await?;
    Ok(download(&meta, data))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/files/{file}", tag = "grants-review", operation_id = "review_staff_file",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id"),
        ("file" = uuid::Uuid, Path, description = "File id")),
    responses((status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn staff_file_api(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call, id, file)): ApiPath<(OrgId, CallId, ApplicationId, FileId)>) -> std::result::Result<Response, ApiError> {
    let (meta, data) = staff_file(&s.db, &u.principal, org, call, id, file).await?;
    Ok(download(&meta, data))
}
