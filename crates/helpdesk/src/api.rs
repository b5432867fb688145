//! The help desk's JSON API under `/api/v1/orgs/{org}/helpdesk/...`.

use agilekit_web::AppState;
use axum::Router;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
}
