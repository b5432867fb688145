//! The audit log over the API, newest first with keyset pagination: an organisation's entries for those who may
//! view the organisation, the whole log for platform admins.

use agilekit_kernel::FieldErrors;
use agilekit_kernel::audit::{self, Entry, Filter};
use agilekit_kernel::ids::OrgId;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiPath, ApiQuery, clean, viewable_org};
use crate::auth::ApiUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/orgs/{id}/audit", get(org_log)).route("/api/v1/audit", get(platform_log))
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// One page of the log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<Entry>,
    /// Pass as `before_seq` for the next (older) page; absent on the last page.
    pub next_before_seq: Option<i64>,
}

/// Everything arrives as text and is parsed here, so a bad value is a field-level 422 and not a bare 400.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before_seq: Option<String>,
    limit: Option<String>,
    org_id: Option<String>,
    action: Option<String>,
}

struct Page {
    before_seq: Option<i64>,
    limit: i64,
}

fn page(q: &AuditQuery, errs: &mut FieldErrors) -> Page {
    let before_seq = match q.before_seq.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            Ok(_) => {
                errs.add("before_seq", "out-of-range");
                None
            }
            Err(_) => {
                errs.add("before_seq", "format");
                None
            }
        },
    };
    let limit = match q.limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Ok(_) => {
                errs.add("limit", "out-of-range");
                DEFAULT_LIMIT
            }
            Err(_) => {
                errs.add("limit", "format");
                DEFAULT_LIMIT
            }
        },
    };
    Page { before_seq, limit }
}

async fn fetch(state: &AppState, filter: Filter, limit: i64) -> Result<Json<AuditPage>, ApiError> {
    let entries = audit::list(&state.db, &filter, limit).await?;
    let next_before_seq = if entries.len() as i64 == limit { entries.last().map(|e| e.seq) } else { None };
    Ok(Json(AuditPage { entries, next_before_seq }))
}

/// An organisation's audit entries (its admins and HR, platform admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/audit", tag = "audit", operation_id = "org_audit",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"),
        ("before_seq" = Option<i64>, Query, description = "Only entries older than this sequence number"),
        ("limit" = Option<i64>, Query, description = "At most this many entries, 1 to 500 (default 50)")),
    responses((status = 200, body = AuditPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`before_seq` or `limit`: `format`/`out-of-range`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn org_log(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    viewable_org(&state.db, &user.principal, id).await?;
    let mut errs = FieldErrors::new();
    let p = page(&q, &mut errs);
    errs.into_result()?;
    fetch(&state, Filter { org: Some(id), before_seq: p.before_seq, ..Filter::default() }, p.limit).await
}

/// The whole audit log (platform admins), optionally narrowed to one organisation or an action prefix.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "platform_audit",
    params(("before_seq" = Option<i64>, Query, description = "Only entries older than this sequence number"),
        ("limit" = Option<i64>, Query, description = "At most this many entries, 1 to 500 (default 50)"),
        ("org_id" = Option<uuid::Uuid>, Query, description = "Only this organisation's entries"),
        ("action" = Option<String>, Query, description = "Only actions starting with this (`org.`, `subscription.`…)")),
    responses((status = 200, body = AuditPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn platform_log(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    user.principal.require_platform_admin()?;
    let mut errs = FieldErrors::new();
    let p = page(&q, &mut errs);
    let org = match q.org_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<OrgId>() {
            Ok(id) => Some(id),
            Err(_) => {
                errs.add("org_id", "format");
                None
            }
        },
    };
    let action = q.action.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if action.as_deref().is_some_and(|a| !clean(a) || a.chars().count() > 100) {
        errs.add("action", "format");
    }
    errs.into_result()?;
    fetch(&state, Filter { org, action_prefix: action, before_seq: p.before_seq, ..Filter::default() }, p.limit).await
}
