//! The knowledge base: articles per organisation and operator-wide ones shared with all, in markdown; full-text
//! search (Italian stemming on PostgreSQL, FTS5 on SQLite); suggestions while a requester types; feedback.

pub mod api;

use agilekit_web::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().merge(api::router())
}
