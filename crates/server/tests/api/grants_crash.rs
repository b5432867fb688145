//! Crash safety of the click day, with the real binary on both engines: companies with prepared drafts submit in a
//! burst, the server is killed with SIGKILL in the middle of it, and after a restart every receipt a client got is
//! stored with its protocol number and fingerprint, the numbers are exactly 1..=n (none issued twice, none
//! skipped), and the money committed is what the admitted applications hold. The submissions that were cut off are
//! then retried with their own idempotency keys: each gets a receipt (the one it may already have had, unseen), and
//! the numbers end gap-free at the number of companies.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agilekit_kernel::Db;
use agilekit_kernel::audit::Actor;
use serde_json::Value;

use crate::both_engines;
use crate::grants_applications::{call, company, complete, open_application, published_call};
use crate::helpers::*;

const COMPANIES: u32 = 150;

async fn rows(db: &Db, call_id: &str) -> Vec<(String, i64, String, Option<String>, i64)> {
    let id = uuid::Uuid::parse_str(call_id).unwrap();
    let sql = "SELECT id, protocol, sha256, place, requested_cents FROM grant_applications WHERE call_id = $1 AND protocol IS NOT NULL ORDER BY protocol";
    let raw: Vec<(uuid::Uuid, i64, String, Option<String>, i64)> = match db {
        Db::Sqlite(p) => sqlx::query_as(sql).bind(id).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).bind(id).fetch_all(p).await.unwrap(),
    };
    raw.into_iter().map(|(a, b, c, d, e)| (a.to_string(), b, c, d, e)).collect()
}

async fn committed(db: &Db, call_id: &str) -> (i64, i64, i64) {
    let id = uuid::Uuid::parse_str(call_id).unwrap();
    let sql = "SELECT committed_cents, budget_cents, next_protocol FROM grant_calls WHERE id = $1";
    match db {
        Db::Sqlite(p) => sqlx::query_as(sql).bind(id).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).bind(id).fetch_one(p).await.unwrap(),
    }
}

both_engines!(sigkill_during_a_burst_loses_no_acknowledged_submission_and_leaves_no_gap, |app| async move {
    let mut app = app;
    let anna = app.login("cittadino@example.it").await;
    // Room for 60 grants of EUR 10,500: the burst fills it and the rest wait.
    let (_, call_id) = published_call(&app, 60 * 10_500, -1).await;
    let mut apps = Vec::new();
    for n in 0..COMPANIES {
        let k = company(&app, &anna, 5_000 + n, 12).await;
        let a = open_application(&app, &anna, &k, &call_id, complete()).await;
        apps.push((k, a));
    }
    let anna_id = app.account_id("cittadino@example.it").await;
    let (_, token) = agilekit_kernel::identity::token::create(&app.db, &Actor::system(), anna_id, "click day").await.unwrap();
    let url = app.database_url();
    let engine = app.engine;
    app.stop().await;

    // The real binary on the same database.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agilekit"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).env("AGILEKIT_SMTP_PORT", "9").stdout(Stdio::piped()).stderr(Stdio::null());
    match engine {
        Engine::Sqlite => cmd.arg("--data-dir").arg(app.data_dir()).env_remove("DATABASE_URL"),
        Engine::Postgres => cmd.args(["--database-url", &url]),
    };
    let mut child = cmd.spawn().expect("the agilekit binary");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).map(|_| l)
    })
    .await
    .unwrap()
    .unwrap();
    let base = line.trim().strip_prefix("agilekit listening on ").unwrap_or_else(|| panic!("unexpected first line: {line}")).to_owned();
    let client = reqwest::Client::builder()
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
            h
        })
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();

    // The burst: 16 clients at a time; the kill comes once a third of the submissions are acknowledged.
    let acked = Arc::new(AtomicUsize::new(0));
    let receipts: Arc<tokio::sync::Mutex<HashMap<String, Value>>> = Arc::default();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for (i, (k, a)) in apps.iter().enumerate() {
        let (c, sem, acked, receipts) = (client.clone(), sem.clone(), acked.clone(), receipts.clone());
        let u = format!("{base}/api/v1/companies/{k}/applications/{a}/submit");
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let r = c.post(&u).header("Idempotency-Key", format!("burst-{i}")).send().await;
            if let Ok(r) = r {
                if r.status() == 200 {
                    if let Ok(v) = r.json::<Value>().await {
                        receipts.lock().await.insert(a, v);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    let t0 = std::time::Instant::now();
    while acked.load(Ordering::SeqCst) < COMPANIES as usize / 3 && t0.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap().success());
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    for t in tasks {
        let _ = t.await;
    }
    let receipts = receipts.lock().await.clone();
    assert!(receipts.len() >= COMPANIES as usize / 3, "acknowledged before the kill: {}", receipts.len());
    assert!(receipts.len() < COMPANIES as usize, "the kill came before the end of the burst");

    // Restarted: every acknowledged receipt is stored as given; numbers 1..=n; money as admitted.
    app.restart(Options::default()).await;
    let stored = rows(&app.db, &call_id).await;
    let n = stored.len() as i64;
    assert_eq!(stored.iter().map(|r| r.1).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>(), "no number twice, none skipped");
    for (a, r) in &receipts {
        let row = stored.iter().find(|s| &s.0 == a).unwrap_or_else(|| panic!("acknowledged {a} lost"));
        assert_eq!(Some(row.1), r["protocol"].as_i64(), "{a}");
        assert_eq!(Some(row.2.as_str()), r["sha256"].as_str(), "{a}");
    }
    let (money, budget, next) = committed(&app.db, &call_id).await;
    assert_eq!(next, n + 1);
    assert_eq!(money, stored.iter().filter(|r| r.3.as_deref() == Some("admitted")).map(|r| r.4).sum::<i64>());
    assert!(money <= budget);

    // The cut-off clients retry with their own keys: all get receipts, and the numbers close at the company count.
    let anna = app.login("cittadino@example.it").await;
    for (i, (k, a)) in apps.iter().enumerate() {
        let (s, v, text) = call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some(&format!("burst-{i}"))).await;
        assert_eq!(s, 200, "{text}");
        if let Some(r) = receipts.get(a) {
            assert_eq!(&v, r, "a retry after the crash returns the receipt given before it");
        }
    }
    let stored = rows(&app.db, &call_id).await;
    assert_eq!(stored.iter().map(|r| r.1).collect::<Vec<_>>(), (1..=COMPANIES as i64).collect::<Vec<_>>());
    let (money, budget, _) = committed(&app.db, &call_id).await;
    assert_eq!((money, budget), (60 * 10_500_00, 60 * 10_500_00));
    app
});
