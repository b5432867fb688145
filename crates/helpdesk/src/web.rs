//! The help desk's pages.

use agilekit_web::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
