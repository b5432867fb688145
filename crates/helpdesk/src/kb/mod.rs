//! The knowledge base: articles per organisation and operator-wide ones shared with all, in markdown; full-text
//! search (Italian stemming on PostgreSQL, FTS5 on SQLite); suggestions while a requester types; feedback.
//!
//! For the new-ticket form: `GET /helpdesk/kb/suggest?q=<subject>` answers an HTML fragment (empty when there is
//! nothing to suggest) for an `hx-get` target, in the caller's current organisation; the API's
//! `GET /api/v1/orgs/{org}/helpdesk/kb/suggest?q=` answers the same five as JSON.

pub mod api;
pub mod model;
pub mod service;
pub mod store;
pub mod web;

use agilekit_web::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().merge(api::router()).merge(web::router())
}
