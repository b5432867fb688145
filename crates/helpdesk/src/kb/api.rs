//! The knowledge base API under `/api/v1/.../kb/...`.

use agilekit_web::AppState;
use axum::Router;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
}
