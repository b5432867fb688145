//! Issue 4, point 7, through the whole stack: under a burst of many people at once, on a node that sheds load, no
//! person ever sees another's company or application (API and pages), authenticated answers are never cacheable,
//! shed requests are 429 with Retry-After (never 5xx), and every submission retried after a 429 with its key ends
//! with exactly one receipt: protocols 1..n, none lost, none twice.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::identity::{self, NewAccount};
use reqwest::Client;
use serde_json::{Value, json};

use crate::each_engine;
use crate::grants_applications::{complete, open_application, published_call};
use crate::helpers::*;

const PEOPLE: u32 = 24;
const ROUNDS: u32 = 4;

fn name(n: u32) -> String {
    format!("Impresa Riservata n.{n:03} S.r.l.")
}

/// A partita IVA from a serial number (another range than the other grants tests), with its check digit.
fn piva(n: u32) -> String {
    let first = format!("{:010}", 2_000_000_000 + n);
    let d: Vec<u32> = first.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first}{}", (10 - (x + y) % 10) % 10)
}

/// A request retried while the node sheds it (429 with Retry-After); any other answer is returned. Counts the 429s.
async fn until_served(c: &Client, method: &str, url: &str, key: Option<&str>, shed: &mut u32) -> (u16, reqwest::header::HeaderMap, String) {
    loop {
        let mut rb = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(k) = key {
            rb = rb.header("Idempotency-Key", k);
        }
        let r = rb.send().await.expect("request");
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap_or_default();
        assert!(status < 500, "{method} {url}: {status} {text}");
        if status != 429 {
            return (status, headers, text);
        }
        assert!(headers.get("retry-after").is_some(), "a 429 without Retry-After: {text}");
        *shed += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

each_engine!(under_a_burst_nobody_sees_anothers_data_and_no_submission_is_lost, burst);
async fn burst(engine: Engine) {
    // A node with four places and no wait: the burst below is shed a lot.
    let app = spawn_with(engine, Options { max_in_flight: 4, shed_wait_ms: 0, ..Default::default() }).await;
    let (_, call_id) = published_call(&app, 1_000_000, -1).await;
    let mut people = Vec::new();
    for n in 0..PEOPLE {
        let email = format!("impresa{n}@carico.example");
        identity::create(&app.db, &Actor::system(), &NewAccount {
            email: email.clone(),
            display_name: format!("Titolare {n}"),
            password: DEMO_PASSWORD.into(),
            is_public: true,
            ..Default::default()
        })
        .await
        .expect("account");
        let c = app.login(&email).await;
        let body = json!({
            "name": name(n), "partita_iva": piva(n), "pec": format!("impresa{n}@pec.carico.example"),
            "legal_rep_name": format!("Titolare {n}"), "legal_rep_tax_code": "RSSMRA85T10A562S", "employees": 12,
            "sector": "62.01.00", "site_regions": ["03"]
        });
        let k = api_expect(&app, &c, "POST", "/api/v1/companies", Some(body), 201).await["id"].as_str().unwrap().to_owned();
        let a = open_application(&app, &c, &k, &call_id, complete()).await;
        people.push((n, c, k, a));
    }

    let mut tasks = Vec::new();
    for (n, c, k, a) in people {
        let base = app.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut shed = 0;
            let mut receipt = Value::Null;
            for round in 0..ROUNDS {
                let reads = [
                    format!("{base}/api/v1/companies"),
                    format!("{base}/api/v1/companies/{k}/applications/{a}"),
                    format!("{base}/companies"),
                    format!("{base}/companies/{k}"),
                    format!("{base}/companies/{k}/applications/{a}"),
                ];
                for url in &reads {
                    let (s, h, text) = until_served(&c, "GET", url, None, &mut shed).await;
                    assert_eq!(s, 200, "{url}: {text}");
                    assert_eq!(h.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{url}");
                    assert!(text.contains(&name(n)), "{url} does not show the person's own company: {text}");
                    for m in (0..PEOPLE).filter(|m| *m != n) {
                        assert!(!text.contains(&name(m)), "{url} of person {n} shows company {m}: {text}");
                    }
                }
                // Everybody submits in the second round, and retries the same key once more in the last.
                if round == 1 || round == ROUNDS - 1 {
                    let url = format!("{base}/api/v1/companies/{k}/applications/{a}/submit");
                    let (s, _, text) = until_served(&c, "POST", &url, Some(&format!("burst-{n}")), &mut shed).await;
                    assert_eq!(s, 200, "{text}");
                    let r: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(r["company_id"].as_str(), Some(k.as_str()), "{text}");
                    if round == 1 {
                        receipt = r;
                    } else {
                        assert_eq!(r, receipt, "a retry returns the same receipt");
                    }
                }
            }
            (receipt, shed)
        }));
    }
    let mut protocols = Vec::new();
    let mut shed = 0;
    for t in tasks {
        let (r, s) = t.await.expect("task");
        protocols.push(r["protocol"].as_i64().expect("a protocol"));
        shed += s;
    }
    protocols.sort();
    assert_eq!(protocols, (1..=PEOPLE as i64).collect::<Vec<_>>(), "one protocol each, gap-free");
    assert!(shed > 0, "the burst was shed at least once (four places for {PEOPLE} people)");
    let stored: i64 = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM grant_applications WHERE call_id = $1 AND protocol IS NOT NULL")
        .bind(uuid::Uuid::parse_str(&call_id).unwrap()).fetch_one(p).await.unwrap());
    assert_eq!(stored, PEOPLE as i64);
    app.finish().await;
}
