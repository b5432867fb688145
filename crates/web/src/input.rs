//! Input hygiene before any page handler: a NUL character in a query string or a form body is refused with 400.
//! No legitimate form carries one, and PostgreSQL cannot store one in text (it would surface as a 500).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::PageError;
use crate::state::AppState;

fn has_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0) || bytes.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

pub async fn reject_nul(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The API's own extractors answer these with field-level problems.
    if req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let refuse = || PageError::status(StatusCode::BAD_REQUEST, "error-invalid").into_response();
    if req.uri().query().is_some_and(|q| has_nul(q.as_bytes())) {
        return refuse();
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.cfg.body_limit).await {
        Ok(b) => b,
        Err(_) => return PageError::status(StatusCode::PAYLOAD_TOO_LARGE, "error-too-large").into_response(),
    };
    if has_nul(&bytes) {
        return refuse();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_raw_and_encoded_nul() {
        assert!(super::has_nul(b"a=%00"));
        assert!(super::has_nul(b"a=b\0"));
        assert!(!super::has_nul(b"a=%2500&b=100"));
    }
}
