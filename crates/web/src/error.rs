//! Errors at the web boundary, mapped once: the API answers `application/problem+json` with a stable `code`;
//! pages answer a status with a marker that the `error_pages` middleware turns into a full, localised page.

use agilekit_kernel::Error;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The status a kernel error deserves. A database fault is a 500; everything a user can cause is a 4xx.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Conflict(_) | Error::QuotaExhausted => StatusCode::CONFLICT,
        Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Upstream(_) => StatusCode::BAD_GATEWAY,
        Error::Db(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Put on an error response by a page handler; the `error_pages` middleware renders the page around it.
#[derive(Clone, Debug)]
pub struct ErrorMarker {
    pub message_key: &'static str,
}

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message_key: &'static str,
}

impl PageError {
    pub fn status(status: StatusCode, message_key: &'static str) -> Self {
        PageError { status, message_key }
    }
    pub fn not_found() -> Self {
        Self::status(StatusCode::NOT_FOUND, "error-not-found")
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        let status = status_of(&e);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        let message_key = match &e {
            Error::NotFound => "error-not-found",
            Error::Unauthenticated => "error-unauthenticated",
            Error::Forbidden => "error-forbidden",
            Error::Invalid(_) => "error-invalid",
            Error::Conflict("already-reviewed") => "error-already-reviewed",
            Error::Conflict("link-expired") => "error-link-expired",
            Error::Conflict(_) => "error-conflict",
            Error::QuotaExhausted => "error-quota",
            Error::Throttled { .. } => "error-throttled",
            Error::Upstream(_) => "error-upstream",
            Error::Db(_) | Error::Internal(_) => "error-internal",
        };
        PageError { status, message_key }
    }
}

impl From<agilekit_kernel::db::DbError> for PageError {
    fn from(e: agilekit_kernel::db::DbError) -> Self {
        Error::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(ErrorMarker { message_key: self.message_key });
        r
    }
}

/// RFC 9457 problem details.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code (`invalid-input`, `not-found`, `forbidden`, …).
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<agilekit_kernel::FieldError>,
}

pub fn problem(status: StatusCode, code: &str, title: &str, errors: Vec<agilekit_kernel::FieldError>) -> Response {
    let body = Problem { type_: format!("urn:agilekit:problem:{code}"), title: title.to_owned(), status: status.as_u16(), code: code.to_owned(), errors };
    let mut r = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "api request failed");
        }
        let errors = match &self.0 {
            Error::Invalid(f) => f.0.clone(),
            _ => Vec::new(),
        };
        let title = match &self.0 {
            Error::Db(_) | Error::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut r = problem(status, self.0.code(), &title, errors);
        if let Error::Throttled { retry_after_secs } = self.0 {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agilekit_kernel::FieldErrors;

    #[test]
    fn user_caused_errors_are_4xx_and_faults_5xx() {
        assert_eq!(status_of(&Error::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&Error::Invalid(FieldErrors::new())), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status_of(&Error::Throttled { retry_after_secs: 3 }), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status_of(&Error::QuotaExhausted), StatusCode::CONFLICT);
        assert_eq!(status_of(&Error::Upstream("wake-on-lan-failed")), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of(&Error::Internal("x".into())), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn api_errors_are_problem_json_with_a_stable_code() {
        let r = ApiError(FieldErrors::one("email", "format")).into_response();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
        let r = ApiError(Error::Throttled { retry_after_secs: 7 }).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
