//! Cross-site request forgery: a state-changing request from a browser must come from our own origin.
//! Browsers say where a request comes from (`Sec-Fetch-Site`, and `Origin` on every POST); a request that says
//! another site, or says nothing while carrying cookies, is refused. Bearer-token API calls carry no ambient
//! credentials and pass. Paired with SameSite=Lax cookies.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

fn same_origin(req: &Request) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(host)) => url::Url::parse(o)
            .ok()
            .is_some_and(|u| u.host_str().map(|hs| match u.port() { Some(p) => format!("{hs}:{p}"), None => hs.to_owned() }).as_deref() == Some(host)),
        _ => false,
    }
}

pub async fn protect(req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    let bearer_only = (req.headers().contains_key(header::AUTHORIZATION) || req.uri().path().starts_with("/api/")) && !req.headers().contains_key(header::COOKIE);
    if unsafe_method && !bearer_only && !same_origin(&req) {
        tracing::warn!(path = %req.uri().path(), "cross-site request refused");
        return PageError::status(StatusCode::FORBIDDEN, "error-csrf").into_response();
    }
    next.run(req).await
}
