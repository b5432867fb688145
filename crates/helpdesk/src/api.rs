//! The help desk's JSON API: an organisation's tickets under `/api/v1/orgs/{org}/helpdesk/tickets…` (requesters
//! see and answer their own; the organisation's agents and admins work the whole queue) and the operator's
//! second-level queue under `/api/v1/helpdesk/escalated`.

use agilekit_kernel::clock;
use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath, ApiQuery};
use agilekit_web::auth::{ApiUser, CurrentUser, RequestCtx};
use agilekit_web::error::{ApiError, Problem};
use axum::extract::State;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};

use crate::model::{self, TicketId};
use crate::service::{
    self, AssignInput, BodyInput, MessageInput, NewTicketInput, ClockView, Count, EscalateInput, ListQuery, Message, NewTicket, PriorityInput, SlaView,
    StateInput, TagsInput, Ticket, TicketDetail, TicketPage, Watcher, WatcherInput, MergeInput, BulkInput,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, count, create, get_ticket, reply, note, upload_file, download, set_state, assign, set_priority, escalate, set_tags, add_watcher, remove_watcher, merge, bulk, escalated),
    components(schemas(
        Ticket, TicketDetail, TicketPage, Message, SlaView, ClockView, Count, NewTicket, BodyInput, StateInput,
        AssignInput, PriorityInput, EscalateInput, TagsInput, WatcherInput, Watcher, MergeInput, BulkInput, model::Category, model::State, model::Queue,
        model::MessageKind, model::TicketId, model::MessageId, NewTicketInput, MessageInput, FileUpload,
        crate::attachments::Attachment, agilekit_kernel::files::FileId,
    )),
    tags((name = "helpdesk", description = "Help desk: tickets, replies and internal notes, states, assignment, \
        priorities and SLA clocks, escalation to the operator's second level.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/helpdesk/tickets", get(list).post(create))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/count", get(count))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}", get(get_ticket))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/reply", post(reply))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/note", post(note))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/state", post(set_state))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/assign", post(assign))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/priority", post(set_priority))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/escalate", post(escalate))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/tags", put(set_tags))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers", post(add_watcher))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers/{account}", delete(remove_watcher))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/merge", post(merge))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/bulk", post(bulk))
        .route("/api/v1/helpdesk/escalated", get(escalated))
        // One file a request: the extractor's own limit off, the outer layers cap a multipart body at the file
        // uploads' limit (`WebConfig::api_limit_for`: a path ending in `/files`); the file itself is held to
        // `[files] max_bytes` here.
        .route("/api/v1/orgs/{org}/helpdesk/files", post(upload_file).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/attachments/{file}", get(download))
}

/// The multipart body of a file upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FileUpload {
    /// The file (its name and content type as the part declares them).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// 413 `file-too-large`, saying the limit in bytes (`limit`).
pub(crate) fn file_too_large(limit: u64) -> Response {
    let body = serde_json::json!({
        "type": "urn:agilekit:problem:file-too-large",
        "title": "file too large",
        "status": 413,
        "code": "file-too-large",
        "limit": limit,
        "errors": [{"field": "file", "code": "file-too-large"}],
    });
    let mut r = (StatusCode::PAYLOAD_TOO_LARGE, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

/// What a multipart field holds, read up to `limit` bytes: `None` once it goes past.
pub(crate) async fn read_limited(field: &mut axum::extract::multipart::Field<'_>, limit: u64) -> Result<Option<Vec<u8>>, ApiError> {
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
            Err(_) => return Err(agilekit_kernel::FieldErrors::one("file", "format").into()),
        }
    }
}

/// Uploads one file (multipart field `file`) for a ticket message, as a pending file of the caller: reference its
/// `id` in `attachments` when opening a ticket or posting a reply or note. A file never referenced is deleted
/// after 24 hours; only its uploader may reference it.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/files", tag = "helpdesk", operation_id = "helpdesk_upload_file",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = crate::attachments::Attachment),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`file-too-large`, with `limit` (bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`file`: `required`, `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn upload_file(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    service::may_upload(&s.db, &u.principal, org).await?;
    let mut multipart = multipart.map_err(|_| agilekit_kernel::FieldErrors::one("file", "format"))?;
    let limit = s.cfg.files.max_bytes;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(agilekit_kernel::FieldErrors::one("file", "required").into()),
            Err(_) => return Err(agilekit_kernel::FieldErrors::one("file", "format").into()),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
        let Some(data) = read_limited(&mut field, limit).await? else { return Ok(file_too_large(limit)) };
        let meta = crate::attachments::upload(&s.db, &s.cfg.files, &u.principal, org, &name, &ct, &data).await?;
        return Ok((StatusCode::CREATED, Json(crate::attachments::Attachment::from(&meta))).into_response());
    }
}

/// A file of a ticket's message: the stored bytes as a download (`Content-Disposition: attachment`, sandboxed, never
/// cached; the stored content type only for PNG, JPEG, GIF, WebP, PDF and plain text). A note's files are the
/// agents' only: to the requester, as to anyone else with no business with the ticket, 404.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/attachments/{file}", tag = "helpdesk", operation_id = "helpdesk_download",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id"),
        ("file" = uuid::Uuid, Path, description = "File id")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn download(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id, file)): ApiPath<(OrgId, TicketId, agilekit_kernel::files::FileId)>,
) -> Result<Response, ApiError> {
    let (meta, data) = crate::attachments::download(&s.db, &u.principal, org, id, file).await?;
    Ok(crate::attachments::response(&meta, data))
}

fn actor(user: &CurrentUser, ctx: &RequestCtx) -> agilekit_kernel::audit::Actor {
    user.actor(ctx.ip.clone())
}

/// A queue page: the organisation's whole queue for its agents and admins, their own tickets for other members.
/// Newest change first; page on with `after` = the previous page's `next`. The total comes apart, from `/count`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/tickets", tag = "helpdesk", operation_id = "helpdesk_list",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ListQuery),
    responses((status = 200, body = TicketPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`state`, `category`, `priority`, `queue`, `assignee`, `after`: `format`; \
            `tag`: `format`; `limit`: `out-of-range`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<TicketPage>, ApiError> {
    Ok(Json(service::tickets(&s.db, &u.principal, org, &q).await?))
}

/// How many tickets the same filters match (as `list`, without the cursor).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/tickets/count", tag = "helpdesk", operation_id = "helpdesk_count",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ListQuery),
    responses((status = 200, body = Count),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn count(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Count>, ApiError> {
    Ok(Json(service::count(&s.db, &u.principal, org, &q).await?))
}

/// Opens a ticket as the caller, a member of an organisation with an active help-desk subscription (403
/// `forbidden` otherwise). The body is the first message.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets", tag = "helpdesk", operation_id = "helpdesk_create",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = NewTicketInput,
    responses((status = 201, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`category`: `required`, `format`; `subject`: `required`, `too-long`, `format`; \
            `body`: `required`, `too-long`; `attachments`: `too-many`; `attachments[i]`: `unknown-file`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<NewTicketInput>,
) -> Result<Response, ApiError> {
    let (ticket, files) = input.split();
    let d = service::open_attached(&s.db, &u.principal, &actor(&u, &c), org, &ticket, files, clock::now()).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// A ticket and its thread: public replies for the requester; replies and internal notes for agents.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}", tag = "helpdesk", operation_id = "helpdesk_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_ticket(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::ticket(&s.db, &u.principal, org, id).await?))
}

/// A public reply. An agent's first one stops the first-response clock; the requester's takes a pending ticket
/// back to open, and reopens one resolved in the last 7 days (409 `ticket-closed` after that, or once closed).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/reply", tag = "helpdesk", operation_id = "helpdesk_reply",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = MessageInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`body`: `required`, `too-long`; `attachments`: `too-many`; `attachments[i]`: `unknown-file`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn reply(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<MessageInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    let body = BodyInput { body: input.body };
    Ok(Json(service::reply_attached(&s.db, &u.principal, &actor(&u, &c), org, id, &body, &input.attachments, clock::now(), &s.cfg.public_url).await?))
}

/// An internal note (agents only; the requester never sees it).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/note", tag = "helpdesk", operation_id = "helpdesk_note",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = MessageInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`body`: `required`, `too-long`; `attachments`: `too-many`; `attachments[i]`: `unknown-file`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn note(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<MessageInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    let body = BodyInput { body: input.body };
    Ok(Json(service::note_attached(&s.db, &u.principal, &actor(&u, &c), org, id, &body, &input.attachments, clock::now()).await?))
}

/// Moves the ticket (agents): open (from new, pending, or resolved in the last 7 days), pending (pauses the
/// resolution clock), resolved (stops it), closed. A move the rules refuse is `state`: `transition`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/state", tag = "helpdesk", operation_id = "helpdesk_state",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = StateInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`state`: `required`, `format`, `transition`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn set_state(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<StateInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::set_state(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now(), &s.cfg.public_url).await?))
}

/// Assigns the ticket to an agent of its queue, to the next in turn (`round_robin`), or to no one.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/assign", tag = "helpdesk", operation_id = "helpdesk_assign",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = AssignInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`assignee`: `format`, `not-found`, `unavailable`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn assign(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<AssignInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::assign(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

/// Changes the priority (agents): the clocks still counting take the new targets, keeping the time used.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/priority", tag = "helpdesk", operation_id = "helpdesk_priority",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = PriorityInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`priority`: `required`, `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn set_priority(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<PriorityInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::set_priority(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

/// Escalates to the operator's second level (the organisation's agents): the operator's agents then see this
/// ticket and nothing else of the organisation. The reason is kept as an internal note.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/escalate", tag = "helpdesk", operation_id = "helpdesk_escalate",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = EscalateInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-escalated`, `ticket-closed`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`reason`: `required`, `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn escalate(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<EscalateInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::escalate(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

/// Replaces the ticket's tags (agents): lowercase letters, digits and dashes, up to 10.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/tags", tag = "helpdesk", operation_id = "helpdesk_tags",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = TagsInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`tags`: `too-long`; `tags[i]`: `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn set_tags(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<TagsInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::set_tags(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

/// The operator's second-level queue: tickets escalated by any organisation (the operator's agents only).
#[utoipa::path(get, path = "/api/v1/helpdesk/escalated", tag = "helpdesk", operation_id = "helpdesk_escalated",
    params(ListQuery),
    responses((status = 200, body = TicketPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn escalated(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<TicketPage>, ApiError> {
    Ok(Json(service::escalated(&s.db, &u.principal, &q).await?))
}

/// Adds an agent of the ticket's queue to its watchers (mailed on replies and state changes).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers", tag = "helpdesk", operation_id = "helpdesk_watch",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = WatcherInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`account`: `format`, `not-found`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn add_watcher(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<WatcherInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::watch(&s.db, &u.principal, &actor(&u, &c), org, id, &input, true).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers/{account}", tag = "helpdesk", operation_id = "helpdesk_unwatch",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id"),
        ("account" = uuid::Uuid, Path, description = "The watcher's account id")),
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn remove_watcher(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id, account)): ApiPath<(OrgId, TicketId, String)>,
) -> Result<Json<TicketDetail>, ApiError> {
    let input = WatcherInput { account };
    Ok(Json(service::watch(&s.db, &u.principal, &actor(&u, &c), org, id, &input, false).await?))
}

/// Merges the ticket into another of the organisation: it becomes `merged` (its thread stays readable here) and
/// both carry a note naming the other.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/merge", tag = "helpdesk", operation_id = "helpdesk_merge",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = MergeInput,
    responses((status = 200, body = TicketDetail),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`into`: `required`, `format`, `not-found`, `cycle`, `unavailable`; `state`: `transition`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn merge(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<MergeInput>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(service::merge(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

/// One state change and/or assignment for many tickets, all or nothing.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/tickets/bulk", tag = "helpdesk", operation_id = "helpdesk_bulk",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = BulkInput,
    responses((status = 200, body = Vec<Ticket>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`ids`: `required`, `too-long`; `ids[i]`: `format`, `not-found`, `transition`; \
            `state`: `required`, `format`; `assignee`: `format`, `not-found`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn bulk(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<BulkInput>,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    Ok(Json(service::bulk(&s.db, &u.principal, &actor(&u, &c), org, &input, clock::now(), &s.cfg.public_url).await?))
}
