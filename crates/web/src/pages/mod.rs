//! The kernel's HTML pages. Handlers are thin: extract, call one kernel function, render one askama struct.

pub mod account;
pub mod admin;
pub mod audit;
pub mod oidc;
pub mod orgs;
pub mod shell;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    shell::router().merge(account::router()).merge(orgs::router()).merge(admin::router()).merge(audit::router()).merge(oidc::router())
}

/// A `next` parameter is followed only when it is a path on this site (never `//host` or a full URL).
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") { next } else { "/" }
}
