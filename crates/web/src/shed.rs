//! Load shedding: at most `max_in_flight` requests are handled at once by this node; one that finds every place
//! taken waits up to `shed_wait` for one, then is answered `429 Too Many Requests` with `Retry-After`, a problem
//! document for the API and a small page for browsers. Nothing is half-done: a shed request never reached a handler.
//! The operations endpoints and static assets are never shed (a load balancer's health check must keep answering).
//!
//! Why here and not only in the database pool: under a click-day burst the pool's queue grows without bound and
//! requests end in timeouts (5xx); a bounded number in flight keeps every answered request fast and tells the rest
//! when to come back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

/// The node's places for requests, and how many requests were shed.
#[derive(Clone)]
pub struct Shed {
    places: Arc<Semaphore>,
    wait: Duration,
    retry_after_secs: u64,
    metrics: Arc<crate::ops::Metrics>,
}

impl Shed {
    /// `max_in_flight` places (at least one); a request waits up to `wait` for one; shed requests are counted in
    /// `metrics` (`agilekit_http_shed_total`).
    pub fn new(max_in_flight: usize, wait: Duration, metrics: Arc<crate::ops::Metrics>) -> Shed {
        Shed { places: Arc::new(Semaphore::new(max_in_flight.max(1))), wait, retry_after_secs: 2, metrics }
    }

    /// How many requests were answered 429 by this node since it started.
    pub fn shed_total(&self) -> u64 {
        self.metrics.shed.load(Ordering::Relaxed)
    }
}

/// Paths never shed: health checks, metrics and static assets.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/static/")
}

/// Middleware: takes a place for the request or sheds it.
pub async fn limit(State(shed): State<Shed>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let place = match shed.places.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => match tokio::time::timeout(shed.wait, shed.places.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                shed.metrics.shed.fetch_add(1, Ordering::Relaxed);
                return busy(req.uri().path().starts_with("/api/"), shed.retry_after_secs);
            }
        },
    };
    let resp = next.run(req).await;
    drop(place);
    resp
}

fn busy(api: bool, retry_after_secs: u64) -> Response {
    let mut r = if api {
        crate::error::problem(StatusCode::TOO_MANY_REQUESTS, "busy", "too many requests at this moment: retry after the seconds in Retry-After", Vec::new())
    } else {
        let page = "<!doctype html>\n<html lang=\"it\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
            <title>Servizio molto richiesto · agilekit</title></head>\n<body>\n<main>\n<h1>Servizio molto richiesto in questo momento</h1>\n\
            <p>Troppe richieste contemporanee: nulla è andato perso. Riprova tra qualche secondo ricaricando la pagina.</p>\n\
            <p lang=\"en\">Too many requests at this moment: nothing was lost. Please try again in a few seconds by reloading the page.</p>\n\
            </main>\n</body>\n</html>\n";
        (StatusCode::TOO_MANY_REQUESTS, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], page).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    /// Paths for these tests only, as constants: the route scans of the integration tests read string literals
    /// given to `route` in the sources and would take them for the product's routes.
    const API_PATH: &str = "/api/slow";
    const PAGE_PATH: &str = "/slow";

    fn app(shed: Shed, gate: Arc<Notify>, entered: Arc<Notify>) -> Router {
        Router::new()
            .route(PAGE_PATH, get(move || async move {
                entered.notify_one();
                gate.notified().await;
                "done"
            }))
            .route(API_PATH, get(|| async { "api" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(shed.clone(), limit))
    }

    async fn get_status(app: &Router, path: &str) -> (StatusCode, Option<String>, String) {
        let r = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let retry = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let ty = r.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (r.status(), retry, ty)
    }

    #[tokio::test]
    async fn a_full_node_sheds_with_429_and_retry_after_but_never_its_health_check() {
        let shed = Shed::new(1, Duration::from_millis(50), Arc::default());
        let (gate, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let app = app(shed.clone(), gate.clone(), entered.clone());
        // One request holds the only place.
        let held = tokio::spawn({
            let app = app.clone();
            async move { get_status(&app, PAGE_PATH).await }
        });
        entered.notified().await;
        let (s, retry, ty) = get_status(&app, API_PATH).await;
        assert_eq!((s, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("2")));
        assert!(ty.starts_with("application/problem+json"), "{ty}");
        let (s, retry, ty) = get_status(&app, PAGE_PATH).await;
        assert_eq!((s, retry.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("2")));
        assert!(ty.starts_with("text/html"), "{ty}");
        assert_eq!(get_status(&app, "/healthz").await.0, StatusCode::OK, "the health check is never shed");
        assert_eq!(shed.shed_total(), 2);
        // The place comes back: the next request is served.
        gate.notify_one();
        assert_eq!(held.await.unwrap().0, StatusCode::OK);
        assert_eq!(get_status(&app, API_PATH).await.0, StatusCode::OK);
        assert_eq!(shed.shed_total(), 2);
    }

    #[tokio::test]
    async fn a_request_waits_for_a_place_that_frees_within_the_wait() {
        let shed = Shed::new(1, Duration::from_secs(5), Arc::default());
        let (gate, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let app = app(shed.clone(), gate.clone(), entered.clone());
        let held = tokio::spawn({
            let app = app.clone();
            async move { get_status(&app, PAGE_PATH).await }
        });
        entered.notified().await;
        let waiting = tokio::spawn({
            let app = app.clone();
            async move { get_status(&app, API_PATH).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.notify_one();
        assert_eq!(held.await.unwrap().0, StatusCode::OK);
        assert_eq!(waiting.await.unwrap().0, StatusCode::OK, "it waited and was served");
        assert_eq!(shed.shed_total(), 0);
    }
}
