//! The caller's own credentials over the API: personal tokens (the secret is shown once, at creation) and the
//! list of open sessions.

use agilekit_kernel::identity::session;
use agilekit_kernel::identity::token::{self, ApiToken};
use agilekit_kernel::ids::{ApiTokenId, OrgId, SessionId};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ApiJson, ApiPath, actor, created, no_content};
use crate::auth::ApiUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/account/tokens", get(tokens).post(create_token))
        .route("/api/v1/account/tokens/{id}", delete(revoke_token))
        .route("/api/v1/account/sessions", get(sessions))
}

/// The caller's API tokens, revoked ones included (never their secrets).
#[utoipa::path(get, path = "/api/v1/account/tokens", tag = "account", operation_id = "list_tokens",
    responses((status = 200, body = Vec<ApiToken>),
        (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn tokens(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(token::list(&state.db, user.principal.id()).await?))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct TokenInput {
    /// What the token is for, to tell it apart later (up to 80 characters).
    pub name: String,
}

/// A new token with its secret: store the secret now, it is never shown again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub token: ApiToken,
    /// `ak_…`: send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// Creates a personal API token.
#[utoipa::path(post, path = "/api/v1/account/tokens", tag = "account", operation_id = "create_token",
    request_body = TokenInput,
    responses((status = 201, body = NewToken),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`name`: `required`/`too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn create_token(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiJson(input): ApiJson<TokenInput>,
) -> Result<Response, ApiError> {
    let (token, secret) = token::create(&state.db, &actor(&user, &ctx), user.principal.id(), &input.name).await?;
    Ok(created(NewToken { token, secret }))
}

/// Revokes one of the caller's tokens; anyone else's is not found.
#[utoipa::path(delete, path = "/api/v1/account/tokens/{id}", tag = "account", operation_id = "revoke_token",
    params(("id" = uuid::Uuid, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live token of the caller's", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn revoke_token(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<ApiTokenId>,
) -> Result<Response, ApiError> {
    token::revoke(&state.db, &actor(&user, &ctx), user.principal.id(), id).await?;
    Ok(no_content())
}

/// An open session of the caller's (never its secret).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub current_org_id: Option<OrgId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The session this request came with.
    pub current: bool,
}

/// The caller's open sessions.
#[utoipa::path(get, path = "/api/v1/account/sessions", tag = "account", operation_id = "list_sessions",
    responses((status = 200, body = Vec<SessionView>),
        (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn sessions(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let current = user.session.as_ref().map(|s| s.id);
    let list = session::list_for(&state.db, user.principal.id()).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| SessionView {
                current: Some(s.id) == current,
                id: s.id,
                current_org_id: s.current_org_id,
                ip: s.ip,
                user_agent: s.user_agent,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
            })
            .collect(),
    ))
}
