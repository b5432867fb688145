//! The kernel's HTML pages. Handlers are thin: extract, call one kernel function, render one askama struct.

pub mod account;
pub mod admin;
pub mod audit;
pub mod oidc;
pub mod orgs;
/// An id from a page's path; a malformed one is a page that does not exist (404).
pub use orgs::parse_id;
pub mod shell;

use agilekit_kernel::Error;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    shell::router().merge(account::router()).merge(orgs::router()).merge(admin::router()).merge(audit::router()).merge(oidc::router())
}

/// A `next` parameter is followed only when it is a path on this site (never `//host` or a full URL).
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") { next } else { "/" }
}

/// A 303 to `to`; an address that cannot be a header (it never comes from a user) is an error page instead.
pub fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => PageError::from(Error::Internal("redirect target is not a header value".into())).into_response(),
    }
}
