//! Onboarding over the API: anyone may file a request for a new administration to join; platform admins list,
//! approve (creating the organisation, its services and its first admin) or reject them.

use agilekit_kernel::FieldErrors;
use agilekit_kernel::ids::{OnboardingId, OrgId};
use agilekit_kernel::onboarding::{self, Request, RequestInput};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery, actor, created, rename_field};
use crate::auth::{ApiUser, RequestCtx};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/onboarding", get(list).post(submit))
        .route("/api/v1/onboarding/{id}/approve", post(approve))
        .route("/api/v1/onboarding/{id}/reject", post(reject))
}

/// Files a request to join (public, no authentication). The contact gets a mail; nothing is created until a
/// platform admin approves.
#[utoipa::path(post, path = "/api/v1/onboarding", tag = "onboarding", operation_id = "submit_onboarding",
    request_body = RequestInput,
    responses((status = 201, body = Request),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field-level errors (`tax_code`, `pec`, `services`, …)", body = Problem, content_type = "application/problem+json")),
    security(()))]
pub(super) async fn submit(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(input): ApiJson<RequestInput>,
) -> Result<Response, ApiError> {
    let who = match &ctx.user {
        Some(u) => u.actor(ctx.ip.clone()),
        None => agilekit_kernel::audit::Actor { account: None, ip: ctx.ip.clone() },
    };
    onboarding::count_public_submission(&state.db, ctx.ip.as_deref()).await?;
    Ok(created(onboarding::submit(&state.db, &who, &input).await?))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
}

/// The requests, newest first, optionally in one state (platform admins).
#[utoipa::path(get, path = "/api/v1/onboarding", tag = "onboarding", operation_id = "list_onboarding",
    params(("state" = Option<String>, Query, description = "`pending`, `activated` or `rejected`")),
    responses((status = 200, body = Vec<Request>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`state`: `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Request>>, ApiError> {
    user.principal.require_platform_admin()?;
    let filter = q.state.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if filter.is_some_and(|s| !["pending", "activated", "rejected"].contains(&s)) {
        return Err(FieldErrors::one("state", "format").into());
    }
    Ok(Json(onboarding::list(&state.db, filter).await?))
}

#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
pub struct ApproveInput {
    /// Put the new organisation under this one (e.g. the region). The body may be omitted.
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Approves a pending request (platform admins): creates the organisation under `parent_id`, subscribes it to the
/// requested services, makes the contact its admin and mails them a link to choose a password.
#[utoipa::path(post, path = "/api/v1/onboarding/{id}/approve", tag = "onboarding", operation_id = "approve_onboarding",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    request_body(content = ApproveInput, description = "Optional"),
    responses((status = 200, body = Request),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-reviewed`", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`parent_id`: `format`/`not-found`; `ipa_code`/`tax_code`: `taken`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn approve(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<OnboardingId>,
    ApiJsonOrEmpty(input): ApiJsonOrEmpty<ApproveInput>,
) -> Result<Json<Request>, ApiError> {
    user.principal.require_platform_admin()?;
    let parent = match input.parent_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<OrgId>().map_err(|_| FieldErrors::one("parent_id", "format"))?),
    };
    Ok(Json(onboarding::approve(&state.db, &actor(&user, &ctx), id, parent, &state.cfg.public_url).await?))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct RejectInput {
    /// Why, for the requester (mailed to them; up to 2000 characters).
    pub note: String,
}

/// Rejects a pending request with a note that is mailed to the contact (platform admins).
#[utoipa::path(post, path = "/api/v1/onboarding/{id}/reject", tag = "onboarding", operation_id = "reject_onboarding",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    request_body = RejectInput,
    responses((status = 200, body = Request),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-reviewed`", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`note`: `required`/`too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn reject(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<OnboardingId>,
    ApiJson(input): ApiJson<RejectInput>,
) -> Result<Json<Request>, ApiError> {
    user.principal.require_platform_admin()?;
    let r = onboarding::reject(&state.db, &actor(&user, &ctx), id, &input.note).await;
    Ok(Json(r.map_err(|e| rename_field(e, "review_note", "note"))?))
}
