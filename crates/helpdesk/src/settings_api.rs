//! The API of an organisation's help-desk settings (`/api/v1/orgs/{org}/helpdesk/settings`: SLA policy, business
//! calendar, warning threshold) and of its canned responses (`/api/v1/orgs/{org}/helpdesk/canned…`).

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::{ApiUser, CurrentUser, RequestCtx};
use agilekit_web::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::canned::{self, Canned, CannedId, CannedInput, Rendered};
use crate::model::TicketId;
use crate::settings::{self, CalendarForm, OpeningForm, PolicyForm, SettingsInput, SettingsView, TargetForm};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_settings, put_settings, list_canned, create_canned, get_canned, update_canned, delete_canned, render_canned),
    components(schemas(SettingsInput, SettingsView, PolicyForm, TargetForm, CalendarForm, OpeningForm, Canned, CannedInput,
        Rendered, CannedId)),
    tags((name = "helpdesk", description = "Help desk: tickets, replies and internal notes, states, assignment, \
        priorities and SLA clocks, escalation to the operator's second level.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/helpdesk/settings", get(get_settings).put(put_settings))
        .route("/api/v1/orgs/{org}/helpdesk/canned", get(list_canned).post(create_canned))
        .route("/api/v1/orgs/{org}/helpdesk/canned/{canned}", get(get_canned).put(update_canned).delete(delete_canned))
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/canned/{canned}", get(render_canned))
}

fn actor(user: &CurrentUser, ctx: &RequestCtx) -> agilekit_kernel::audit::Actor {
    user.actor(ctx.ip.clone())
}

/// The organisation's SLA policy, business calendar and warning threshold (its admins and agents, platform admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/settings", tag = "helpdesk", operation_id = "helpdesk_settings_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = SettingsView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_settings(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(settings::get(&s.db, &u.principal, org).await?))
}

/// Replaces the settings (the organisation's admins, platform admins). New targets apply to tickets opened
/// afterwards (open tickets keep theirs); the calendar applies at once to every open ticket's clocks from its last
/// change on.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/settings", tag = "helpdesk", operation_id = "helpdesk_settings_put",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = SettingsInput,
    responses((status = 200, body = SettingsView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`policy.<priority>.first_response_minutes`, `policy.<priority>.resolution_minutes`: \
            `too-short` (below 1, negative included), `too-long` (above 60000), `after-resolution`; \
            `calendar.<weekday>.<i>.start`, `….end`: `required`, `format`, `end-before-start`, `overlap`; \
            `calendar.<weekday>`, `calendar.closed_dates`: `too-many`; `calendar.hours`: `required`; \
            `calendar.patron_day`, `calendar.closed_dates.<i>`: `format`, `required`; `warning_percent`: `out-of-range` (1..=99)",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn put_settings(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<SettingsInput>,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(settings::update(&s.db, &u.principal, &actor(&u, &c), org, &input).await?))
}

/// The organisation's canned responses, then the operator's (shared with every organisation); its agents and admins.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/canned", tag = "helpdesk", operation_id = "helpdesk_canned_list",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<Canned>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_canned(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Json<Vec<Canned>>, ApiError> {
    Ok(Json(canned::list(&s.db, &u.principal, org).await?))
}

/// A new canned response of the organisation.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/canned", tag = "helpdesk", operation_id = "helpdesk_canned_create",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = CannedInput,
    responses((status = 201, body = Canned),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`title`: `required`, `too-long`, `format`; `body`: `required`, `too-long`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create_canned(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<CannedInput>,
) -> Result<Response, ApiError> {
    let out = canned::create(&s.db, &u.principal, &actor(&u, &c), org, &input).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/canned/{canned}", tag = "helpdesk", operation_id = "helpdesk_canned_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("canned" = uuid::Uuid, Path, description = "Canned response id")),
    responses((status = 200, body = Canned),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_canned(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CannedId)>,
) -> Result<Json<Canned>, ApiError> {
    Ok(Json(canned::get(&s.db, &u.principal, org, id).await?))
}

/// Changes one of the organisation's own (an operator-wide one only through the operator: 404 here).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/canned/{canned}", tag = "helpdesk", operation_id = "helpdesk_canned_update",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("canned" = uuid::Uuid, Path, description = "Canned response id")),
    request_body = CannedInput,
    responses((status = 200, body = Canned),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`title`: `required`, `too-long`, `format`; `body`: `required`, `too-long`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update_canned(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CannedId)>,
    ApiJson(input): ApiJson<CannedInput>,
) -> Result<Json<Canned>, ApiError> {
    Ok(Json(canned::update(&s.db, &u.principal, &actor(&u, &c), org, id, &input).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/helpdesk/canned/{canned}", tag = "helpdesk", operation_id = "helpdesk_canned_delete",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("canned" = uuid::Uuid, Path, description = "Canned response id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_canned(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, CannedId)>,
) -> Result<StatusCode, ApiError> {
    canned::delete(&s.db, &u.principal, &actor(&u, &c), org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A canned response with its placeholders (`{{requester_name}}`, `{{ticket}}`, `{{subject}}`, `{{agent_name}}`)
/// filled for one of the organisation's tickets: the text to send as a reply.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/canned/{canned}", tag = "helpdesk", operation_id = "helpdesk_canned_render",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id"),
        ("canned" = uuid::Uuid, Path, description = "Canned response id")),
    responses((status = 200, body = Rendered),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn render_canned(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, ticket, id)): ApiPath<(OrgId, TicketId, CannedId)>,
) -> Result<Json<Rendered>, ApiError> {
    Ok(Json(canned::render(&s.db, &u.principal, org, ticket, id).await?))
}
