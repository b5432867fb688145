//! The kernel's HTML pages. Handlers are thin: extract, call one kernel function, render one askama struct.

pub mod shell;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    shell::router()
}

/// A `next` parameter is followed only when it is a path on this site (never `//host` or a full URL).
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") { next } else { "/" }
}
