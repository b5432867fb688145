//! Operations: `/healthz` (the process answers), `/readyz` (the database answers), `/metrics` (Prometheus text:
//! requests by route and status, a latency histogram, the outbox depth).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct RouteStats {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Requests answered 429 by load shedding (`shed.rs`).
    pub shed: std::sync::atomic::AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let s = l.entry(route.to_owned()).or_default();
            s.count += 1;
            s.sum += secs;
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    s.buckets[i] += 1;
                }
            }
        }
    }

    pub fn render(&self, outbox: &[(String, i64)]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# HELP agilekit_http_requests_total HTTP requests by route and status.\n# TYPE agilekit_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(out, "agilekit_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP agilekit_http_request_duration_seconds Request latency by route.\n# TYPE agilekit_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, s) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "agilekit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}", s.buckets[i]);
                }
                let _ = writeln!(out, "agilekit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", s.count);
                let _ = writeln!(out, "agilekit_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", s.sum);
                let _ = writeln!(out, "agilekit_http_request_duration_seconds_count{{route=\"{route}\"}} {}", s.count);
            }
        }
        let _ = writeln!(out, "# HELP agilekit_http_shed_total Requests answered 429 because the node was full.\n# TYPE agilekit_http_shed_total counter\nagilekit_http_shed_total {}", self.shed.load(std::sync::atomic::Ordering::Relaxed));
        out.push_str("# HELP agilekit_outbox_depth Jobs waiting to run (mail and timers), by kind.\n# TYPE agilekit_outbox_depth gauge\n");
        if outbox.iter().all(|(k, _)| k != "mail") {
            out.push_str("agilekit_outbox_depth{kind=\"mail\"} 0\n");
        }
        for (kind, n) in outbox {
            let _ = writeln!(out, "agilekit_outbox_depth{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// Middleware: counts every request under its route template (never the raw path: IDs would explode the series).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    state.metrics.observe(&method, &route, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.db.ping().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
    }
}

/// A domain's own lines for `/metrics` (gauges it reads from the database), in Prometheus text format.
pub type MetricsSource =
    fn(agilekit_kernel::Db) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;

static SOURCES: Mutex<Vec<(&'static str, MetricsSource)>> = Mutex::new(Vec::new());

/// Adds a domain's metrics to `/metrics`, once per name (a domain registers when its routes are built).
pub fn register_metrics(name: &'static str, source: MetricsSource) {
    let mut s = SOURCES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !s.iter().any(|(n, _)| *n == name) {
        s.push((name, source));
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let outbox = agilekit_kernel::jobs::depth(&state.db).await.unwrap_or_default();
    let mut text = state.metrics.render(&outbox);
    let sources: Vec<MetricsSource> =
        SOURCES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().map(|(_, f)| *f).collect();
    for f in sources {
        text.push_str(&f(state.db.clone()).await);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
