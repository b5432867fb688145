//! Load shedding through the real server: a node with one place in flight and no wait answers a burst with 200s
//! and 429s (Retry-After, the API's problem code `busy`), never a 5xx; its health check keeps answering; the shed
//! requests are counted in /metrics.

use crate::each_engine;
use crate::helpers::*;

each_engine!(a_full_node_answers_429_with_retry_after_and_never_5xx, full_node);
async fn full_node(engine: Engine) {
    let app = spawn_with(engine, Options { max_in_flight: 1, shed_wait_ms: 0, ..Default::default() }).await;
    // 64 clients, each on its own connection, ask for the public list of calls (a database read) at once.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let url = app.at("/api/v1/calls");
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
            let mut out = Vec::new();
            for _ in 0..5 {
                let r = c.get(&url).send().await.expect("request");
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
                let ty = r.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
                let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
                out.push((status, retry, ty, body));
            }
            out
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.expect("task"));
    }
    let shed: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(answers.iter().all(|a| a.0 == 200 || a.0 == 429), "only 200 and 429: {:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    assert!(!shed.is_empty(), "a burst of 320 requests on one place sheds some");
    assert!(answers.iter().any(|a| a.0 == 200), "and serves some");
    for (_, retry, ty, body) in &shed {
        assert_eq!(retry.as_deref(), Some("2"));
        assert!(ty.starts_with("application/problem+json"), "{ty}");
        assert_eq!(body["code"], "busy", "{body}");
    }
    // A page is shed as a page; the health check never is.
    let c = app.client();
    assert_eq!(c.get(app.at("/healthz")).send().await.expect("healthz").status().as_u16(), 200);
    let metrics = c.get(app.at("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agilekit_http_shed_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the shed counter in /metrics");
    assert_eq!(counted, shed.len() as u64, "{metrics}");
    app.finish().await;
}
