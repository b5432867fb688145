//! The REST API under `/api/v1`, described by an OpenAPI 3.1 document at `/api/v1/openapi.json`.
//! Authenticated by the session cookie or by a personal token (`Authorization: Bearer ak_…`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::auth::ApiUser;
use crate::error::{ApiError, problem};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "agilekit API", version = "1", description = "The smart-working kit for public administrations."),
    paths(me),
    components(schemas(crate::error::Problem, Me)),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("agilekit_session"))));
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi)).route("/api/v1/me", get(me))
}

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// The signed-in account and its roles.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub account: agilekit_kernel::identity::Account,
    pub memberships: Vec<agilekit_kernel::identity::Membership>,
    pub platform_admin: bool,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn me(State(state): State<AppState>, ApiUser(user, _): ApiUser) -> Result<Json<Me>, ApiError> {
    let memberships = agilekit_kernel::identity::memberships(&state.db, user.principal.id()).await?;
    Ok(Json(Me { account: user.principal.account.clone(), memberships, platform_admin: user.principal.platform_admin }))
}

/// Unknown API paths answer problem+json, not the HTML error page.
pub async fn not_found() -> Response {
    problem(axum::http::StatusCode::NOT_FOUND, "not-found", "no such API route", Vec::new())
}
