//! Remote workstations over the API, under `/api/v1/orgs/{id}/workstations`: the inventory (list with filters and
//! keyset pagination, CRUD, CSV import and export), assignment, bookings, the board, reachability, Wake-on-LAN and
//! the connection hand-off. Thin handlers: parse, call the service, answer.

use std::sync::Arc;

use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldError, FieldErrors};
use agilekit_web::api::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use agilekit_web::auth::{ApiUser, CurrentUser, RequestCtx};
use agilekit_web::error::{ApiError, Problem};
use agilekit_web::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::csvio::RowError;
use crate::model::{BookingId, Mode, Protocol, Status, Tags, WorkstationId, WorkstationInput, codes, parse_instant};
use crate::service::{self, Board, Booking, Page, ProbeEntry, Workstation};
use crate::store::Filter;
use crate::Runtime;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{id}/workstations", get(list).post(create))
        .route("/api/v1/orgs/{id}/workstations/import", post(import))
        .route("/api/v1/orgs/{id}/workstations/export.csv", get(export))
        .route("/api/v1/orgs/{id}/workstations/board", get(board))
        .route("/api/v1/orgs/{id}/workstations/bookings", get(org_bookings))
        .route("/api/v1/orgs/{id}/workstations/{workstation}", get(show).put(update).delete(remove))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/assignment", put(assign))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/bookings", get(bookings).post(book))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/bookings/{booking}/cancel", post(cancel))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/probes", get(probes).post(probe_now))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/wake", post(wake))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/connect.rdp", get(connect_rdp))
        .route("/api/v1/orgs/{id}/workstations/{workstation}/guacamole", post(guacamole))
}

fn actor(user: &CurrentUser, ctx: &RequestCtx) -> agilekit_kernel::audit::Actor {
    user.actor(ctx.ip.clone())
}

fn attachment(content_type: &'static str, filename: &str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // File names are built from hostnames and IPA codes: ASCII letters, digits, dots and dashes.
    let safe: String = filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

// ---------------------------------------------------------------------------------------------------------------
// Inventory

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    limit: String,
}

impl ListQuery {
    /// The filters the inventory page's form sends.
    pub fn from_parts(status: &str, mode: &str, q: &str, after: &str) -> ListQuery {
        ListQuery { status: status.into(), mode: mode.into(), q: q.into(), after: after.into(), ..Default::default() }
    }
}

/// Parses list filters; shared with the inventory page.
pub fn parse_filter(q: &ListQuery) -> Result<(Filter, i64), FieldErrors> {
    let mut e = FieldErrors::new();
    let mut f = Filter::default();
    let blank = |s: &str| s.trim().is_empty();
    if !blank(&q.status) {
        f.status = Status::parse(&q.status).or_else(|| { e.add("status", codes::FORMAT); None });
    }
    if !blank(&q.mode) {
        f.mode = Mode::parse(&q.mode).or_else(|| { e.add("mode", codes::INVALID_MODE); None });
    }
    if !blank(&q.protocol) {
        f.protocol = Protocol::parse(&q.protocol).or_else(|| { e.add("protocol", codes::INVALID_PROTOCOL); None });
    }
    if !blank(&q.tag) {
        f.tag = Tags::parse_one(&q.tag).map_err(|c| e.add("tag", c)).ok();
    }
    let clean = |s: &str| !s.chars().any(char::is_control) && s.chars().count() <= 253;
    if !blank(&q.q) {
        if clean(&q.q) { f.q = Some(q.q.trim().to_owned()) } else { e.add("q", codes::FORMAT) }
    }
    if !blank(&q.after) {
        if clean(&q.after) { f.after = Some(q.after.trim().to_owned()) } else { e.add("after", codes::FORMAT) }
    }
    let limit = if blank(&q.limit) {
        100
    } else {
        match q.limit.trim().parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                e.add("limit", "out-of-range");
                100
            }
        }
    };
    if e.is_empty() { Ok((f, limit)) } else { Err(e) }
}

/// The organisation's workstations by hostname: all of them for its admins and HR, the pool and their own for
/// other members.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations", tag = "workstations", operation_id = "list_workstations",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"),
        ("status" = Option<String>, Query, description = "`unknown`, `online` or `offline`"),
        ("mode" = Option<String>, Query, description = "`dedicated` or `pooled`"),
        ("protocol" = Option<String>, Query, description = "`rdp`, `vnc` or `ssh`"),
        ("tag" = Option<String>, Query, description = "Only workstations with this tag"),
        ("q" = Option<String>, Query, description = "Part of the hostname, address or location"),
        ("after" = Option<String>, Query, description = "Cursor: the `next` of the previous page"),
        ("limit" = Option<i64>, Query, description = "1–500, default 100")),
    responses((status = 200, body = Page),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The organisation has not activated the service", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is malformed", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    service::access(&state.db, &user.principal, org).await?;
    let (f, limit) = parse_filter(&q).map_err(Error::Invalid)?;
    Ok(Json(service::list(&state.db, &user.principal, org, f, limit).await?))
}

/// Adds a workstation (organisation admins). Takes one unit of the `workstations` quota.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations", tag = "workstations", operation_id = "create_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = WorkstationInput,
    responses((status = 201, body = Workstation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`quota-exhausted`", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field errors: `hostname` (`required`, `invalid-host`, `taken`), `address` \
            (`invalid-address`), `protocol`, `port` (`invalid-port`), `mac` (`invalid-mac`), `tags`, `mode`, `assignee` \
            (`not-member`, `not-dedicated`)", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<WorkstationInput>,
) -> Result<Response, ApiError> {
    let w = service::create(&state.db, &actor(&user, &ctx), &user.principal, org, &input).await?;
    Ok((StatusCode::CREATED, Json(w)).into_response())
}

/// One workstation (members see the pool and their own).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/{workstation}", tag = "workstations", operation_id = "get_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 200, body = Workstation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Json<Workstation>, ApiError> {
    Ok(Json(service::get(&state.db, &user.principal, org, id).await?))
}

/// Replaces a workstation's fields (organisation admins). A pooled workstation with bookings still to come
/// cannot become dedicated (`mode`: `has-bookings`).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/workstations/{workstation}", tag = "workstations", operation_id = "update_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    request_body = WorkstationInput,
    responses((status = 200, body = Workstation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field errors, as for creation", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
    ApiJson(input): ApiJson<WorkstationInput>,
) -> Result<Json<Workstation>, ApiError> {
    Ok(Json(service::update(&state.db, &actor(&user, &ctx), &user.principal, org, id, &input).await?))
}

/// Deletes a workstation with its bookings and history (organisation admins); gives its quota unit back.
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/workstations/{workstation}", tag = "workstations", operation_id = "delete_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Response, ApiError> {
    service::delete(&state.db, &actor(&user, &ctx), &user.principal, org, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

/// An import that went through.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportDone {
    pub imported: usize,
}

/// A refused import (nothing was imported): a problem whose `rows` say where each problem is. `errors` carries
/// the same as field errors named `rows[<row>].<column>`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportProblem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// `invalid-csv`.
    pub code: String,
    pub errors: Vec<FieldError>,
    /// By row: the line of the file (the header is row 1), the column, and the field error code.
    pub rows: Vec<RowError>,
    /// How many problems in all (`rows` lists the first 1,000).
    pub error_count: usize,
}

fn is_csv(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(essence.as_str(), "text/csv" | "application/csv" | "text/plain")
}

/// The problem+json of a refused import.
pub fn import_problem(report: &service::ImportReport) -> Response {
    let body = ImportProblem {
        type_: "urn:agilekit:problem:invalid-csv".into(),
        title: "the file has problems: nothing was imported".into(),
        status: 422,
        code: "invalid-csv".into(),
        errors: report
            .errors
            .iter()
            .map(|e| FieldError {
                field: if e.column.is_empty() { format!("rows[{}]", e.row) } else { format!("rows[{}].{}", e.row, e.column) },
                code: e.code.clone(),
            })
            .collect(),
        rows: report.errors.clone(),
        error_count: report.error_count,
    };
    let mut r = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

/// Imports workstations from a CSV body (`text/csv`): the export's columns, a header naming them (only
/// `hostname` is required), comma- or semicolon-separated. All rows or none: one transaction, and a report of
/// every problem by row and column when any row is wrong (duplicates in the file or in the organisation count).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/import", tag = "workstations", operation_id = "import_workstations",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    request_body(content = String, content_type = "text/csv", description = "hostname,address,protocol,port,os,location,tags,mac,mode,assignee"),
    responses((status = 201, body = ImportDone),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`quota-exhausted`: more rows than the quota leaves", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `text/csv`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing imported; the problems by row", body = ImportProblem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn import(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    service::access(&state.db, &user.principal, org).await?.require_manage()?;
    if !is_csv(&headers) {
        return Ok(agilekit_web::error::problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "expected Content-Type: text/csv", Vec::new(),
        ));
    }
    let report = service::import_csv(&state.db, &actor(&user, &ctx), &user.principal, org, &body).await?;
    if report.errors.is_empty() {
        Ok((StatusCode::CREATED, Json(ImportDone { imported: report.imported })).into_response())
    } else {
        Ok(import_problem(&report))
    }
}

/// The inventory as CSV, in the import's columns (admins and HR): it imports back unchanged.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/export.csv", tag = "workstations", operation_id = "export_workstations",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, description = "The CSV file", body = String, content_type = "text/csv"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn export(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Response, ApiError> {
    let (name, bytes) = service::export_csv(&state.db, &user.principal, org).await?;
    Ok(attachment("text/csv; charset=utf-8", &name, bytes))
}

// ---------------------------------------------------------------------------------------------------------------
// Assignment and bookings

#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
pub struct AssignInput {
    /// Email of a member of the organisation; `null` or empty to free the workstation.
    #[serde(default)]
    pub assignee: Option<String>,
}

/// Assigns a dedicated workstation to a member, or frees it (organisation admins).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/workstations/{workstation}/assignment", tag = "workstations", operation_id = "assign_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    request_body = AssignInput,
    responses((status = 200, body = Workstation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`assignee`: `not-member` or `not-dedicated`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
    ApiJsonOrEmpty(input): ApiJsonOrEmpty<AssignInput>,
) -> Result<Json<Workstation>, ApiError> {
    Ok(Json(service::assign(&state.db, &actor(&user, &ctx), &user.principal, org, id, input.assignee.as_deref()).await?))
}

#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
pub struct BookingInput {
    /// RFC 3339, on a quarter hour (`2026-03-02T08:00:00+01:00`).
    #[serde(default)]
    pub starts_at: String,
    /// RFC 3339, on a quarter hour, after the start and at most 12 hours later.
    #[serde(default)]
    pub ends_at: String,
    /// Admins only: book for this member (email) instead of for the caller.
    #[serde(default)]
    pub account: Option<String>,
}

/// Books a pooled workstation for a slot. Slots start and end on a quarter hour, last at most 12 hours, start
/// no earlier than the current quarter hour and at most 60 days ahead. Overlapping a live booking of the
/// workstation is refused (`starts_at`: `slot-taken`), also under concurrent requests, as is holding two
/// workstations at once (`already-booked`).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/{workstation}/bookings", tag = "workstations", operation_id = "book_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    request_body = BookingInput,
    responses((status = 201, body = Booking),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-pooled`: a dedicated workstation is not booked", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`starts_at`: `format`, `out-of-range` (before 1970 or after 9998), `not-aligned`, \
            `in-past`, `too-far`, `slot-taken`, `already-booked`; `ends_at`: `format`, `out-of-range`, `not-aligned`, \
            `before-start`, `slot-too-long`; `account`: `not-member`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn book(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
    ApiJson(input): ApiJson<BookingInput>,
) -> Result<Response, ApiError> {
    let req = service::BookRequest { starts_at: &input.starts_at, ends_at: &input.ends_at, account: input.account.as_deref() };
    let b = service::book(&state.db, &actor(&user, &ctx), &user.principal, org, id, req).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// Cancels a booking that has not ended (its holder, or an admin).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/{workstation}/bookings/{booking}/cancel", tag = "workstations",
    operation_id = "cancel_booking",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id"),
        ("booking" = uuid::Uuid, Path, description = "Booking id")),
    responses((status = 200, body = Booking),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`booking-cancelled` or `booking-ended`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, ws, id)): ApiPath<(OrgId, WorkstationId, BookingId)>,
) -> Result<Json<Booking>, ApiError> {
    Ok(Json(service::cancel(&state.db, &actor(&user, &ctx), &user.principal, org, ws, id).await?))
}

#[derive(Deserialize, Default)]
pub struct WindowQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    mine: String,
}

fn parse_window(q: &WindowQuery) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>, bool), FieldErrors> {
    let mut e = FieldErrors::new();
    let mut opt = |field: &str, s: &str| if s.trim().is_empty() { None } else { parse_instant(s).map_err(|c| e.add(field, c)).ok() };
    let from = opt("from", &q.from);
    let until = opt("until", &q.until);
    let mine = match q.mine.trim() {
        "" | "false" | "0" => false,
        "true" | "1" => true,
        _ => {
            e.add("mine", codes::FORMAT);
            false
        }
    };
    if e.is_empty() { Ok((from, until, mine)) } else { Err(e) }
}

/// The live bookings of a workstation in a window (default: the next 14 days). Holders are shown to admins and
/// HR, and to the holders themselves.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/{workstation}/bookings", tag = "workstations", operation_id = "list_workstation_bookings",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id"),
        ("from" = Option<String>, Query, description = "RFC 3339; default now"),
        ("until" = Option<String>, Query, description = "RFC 3339; default 14 days after `from`, at most 62"),
        ("mine" = Option<bool>, Query, description = "Only the caller's")),
    responses((status = 200, body = Vec<Booking>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from`, `until`: `format`, `out-of-range` (before 1970 or after 9998); `until`: \
            `before-start`, `slot-too-long` (more than 62 days); `mine`: `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn bookings(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<Vec<Booking>>, ApiError> {
    service::access(&state.db, &user.principal, org).await?;
    let (from, until, mine) = parse_window(&q).map_err(Error::Invalid)?;
    Ok(Json(service::bookings(&state.db, &user.principal, org, Some(id), from, until, mine).await?))
}

/// Live bookings of the organisation in a window: every one for admins and HR, the caller's own for members.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/bookings", tag = "workstations", operation_id = "list_org_bookings",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"),
        ("from" = Option<String>, Query, description = "RFC 3339; default now"),
        ("until" = Option<String>, Query, description = "RFC 3339; default 14 days after `from`, at most 62"),
        ("mine" = Option<bool>, Query, description = "Only the caller's")),
    responses((status = 200, body = Vec<Booking>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "As for a workstation's bookings", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn org_bookings(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<Vec<Booking>>, ApiError> {
    service::access(&state.db, &user.principal, org).await?;
    let (from, until, mine) = parse_window(&q).map_err(Error::Invalid)?;
    Ok(Json(service::bookings(&state.db, &user.principal, org, None, from, until, mine).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Board, reachability, hand-off

/// The availability board (admins and HR): seats in total, dedicated, pooled, assigned, booked now, free,
/// offline and not yet probed, for the organisation and per location.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/board", tag = "workstations", operation_id = "workstation_board",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Board),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn board(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Json<Board>, ApiError> {
    Ok(Json(service::board(&state.db, &user.principal, org).await?))
}

/// The workstation's changes of reachability, newest first (the last 100; admins and HR).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/{workstation}/probes", tag = "workstations", operation_id = "workstation_probes",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 200, body = Vec<ProbeEntry>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn probes(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Json<Vec<ProbeEntry>>, ApiError> {
    Ok(Json(service::history(&state.db, &user.principal, org, id).await?))
}

/// Probes the workstation now (organisation admins): a TCP connection to its port; returns it with the result.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/{workstation}/probes", tag = "workstations", operation_id = "probe_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 200, body = Workstation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn probe_now(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    ApiUser(user, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Json<Workstation>, ApiError> {
    Ok(Json(service::probe_now(&state.db, &rt, &user.principal, org, id).await?))
}

/// Sends the Wake-on-LAN magic packet for the workstation (its admins, its assignee, the holder of a booking
/// running now) to the configured broadcast address.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/{workstation}/wake", tag = "workstations", operation_id = "wake_workstation",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 202, description = "Sent"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no-mac`: the inventory has no MAC address for it", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`wake-on-lan-failed`: the packet could not be sent from this node", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn wake(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Response, ApiError> {
    service::wake(&state.db, &rt, &actor(&user, &ctx), &user.principal, org, id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A `.rdp` file for the workstation (its admins, its assignee, the holder of a booking running now).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/workstations/{workstation}/connect.rdp", tag = "workstations", operation_id = "workstation_rdp",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 200, description = "The .rdp file", body = String, content_type = "application/x-rdp"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-rdp`: the workstation speaks VNC or SSH", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn connect_rdp(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Response, ApiError> {
    let (name, file) = service::rdp_file(&state.db, &actor(&user, &ctx), &user.principal, org, id).await?;
    Ok(attachment("application/x-rdp", &name, file))
}

/// A Guacamole login link.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GuacamoleLink {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// A link that opens the workstation in the browser through the configured Guacamole gateway (encrypted-JSON
/// authentication), valid for five minutes. Same people as for the `.rdp` file.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/workstations/{workstation}/guacamole", tag = "workstations", operation_id = "workstation_guacamole",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("workstation" = uuid::Uuid, Path, description = "Workstation id")),
    responses((status = 200, body = GuacamoleLink),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`guacamole-not-configured`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(crate) async fn guacamole(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, WorkstationId)>,
) -> Result<Json<GuacamoleLink>, ApiError> {
    let (url, expires_at) = service::guacamole_link(&state.db, &rt, &actor(&user, &ctx), &user.principal, org, id).await?;
    Ok(Json(GuacamoleLink { url, expires_at }))
}
