//! Applications to funding calls through the API on both engines: drafts saved whatever they hold (problems listed,
//! never lost), submission only while the call is open and without problems, receipts with gap-free protocol
//! numbers under concurrent submissions, idempotent retries, one application per company per call, the budget never
//! exceeded with the rest on the waiting list, the draw when money comes back, the receipt mailed to the PEC address,
//! and another person's applications: 404, nothing changed.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;
pub(crate) use crate::helpers::{api_call as call, api_expect as expect, field_errors as fields};

pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/companies/{company}/applications", ""),
    ("POST", "/api/v1/companies/{company}/applications", ""),
    ("GET", "/api/v1/companies/{company}/applications/{application}", ""),
    ("PUT", "/api/v1/companies/{company}/applications/{application}", r#"{"plan":"x"}"#),
    ("POST", "/api/v1/companies/{company}/applications/{application}/submit", ""),
    ("GET", "/api/v1/companies/{company}/applications/{application}/receipt", ""),
    ("POST", "/api/v1/companies/{company}/applications/{application}/withdraw", ""),
    ("GET", "/api/v1/orgs/{org}/calls/{call}/applications", ""),
    ("GET", "/api/v1/companies/{company}/applications/{application}/attachments/{code}", ""),
    ("PUT", "/api/v1/companies/{company}/applications/{application}/attachments/{code}", r#"{"file":"x"}"#),
    ("DELETE", "/api/v1/companies/{company}/applications/{application}/attachments/{code}", ""),
];



fn instant(minutes_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes_from_now);
    t.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A partita IVA from a serial number, with its check digit.
fn piva(n: u32) -> String {
    let first = format!("{:010}", 1_000_000_000 + n);
    let d: Vec<u32> = first.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first}{}", (10 - (x + y) % 10) % 10)
}

/// A published call a sportello of `budget` euros, opening `opens` minutes from now.
pub(crate) async fn published_call(app: &TestApp, budget_euros: i64, opens: i64) -> (String, String) {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let body = json!({
        "title": "Avviso smartworking", "summary": "Contributi per piani di smart working.", "body": "",
        "budget_cents": budget_euros * 100, "mode": "sportello",
        "grant_rule": {"kind": "bands", "bands": [
            {"min_employees": 3, "max_employees": 10, "amount": 750_000},
            {"min_employees": 11, "max_employees": 20, "amount": 1_050_000},
            {"min_employees": 21, "max_employees": null, "amount": 2_250_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"},
                       {"code": "strumenti", "label": "Strumenti tecnologici", "max_share_bp": 3333}],
        "eligibility": {"min_employees": 3, "excluded_sectors": ["01"], "site_region": "03"},
        "opens_at": instant(opens), "closes_at": instant(opens + 60 * 24), "de_minimis": true
    });
    let c = expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(body), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{id}/publish"), None, 200).await;
    (region.to_string(), id)
}

pub(crate) async fn company(app: &TestApp, c: &Client, n: u32, employees: i64) -> String {
    let body = json!({
        "name": format!("Impresa {n} S.r.l."), "partita_iva": piva(n), "pec": format!("impresa{n}@pec.example.it"),
        "legal_rep_name": "Mario Rossi", "legal_rep_tax_code": "RSSMRA85T10A562S", "employees": employees,
        "sector": "62.01.00", "site_regions": ["03"]
    });
    expect(app, c, "POST", "/api/v1/companies", Some(body), 201).await["id"].as_str().unwrap().to_owned()
}

pub(crate) fn complete() -> Value {
    json!({"plan": "Portatili e formazione per il lavoro agile.", "declaration": true, "expenses": [
        {"category": "consulenza", "description": "Formazione", "amount_cents": 800_000},
        {"category": "strumenti", "description": "Portatili", "amount_cents": 390_000}]})
}

pub(crate) async fn open_application(app: &TestApp, c: &Client, company: &str, call_id: &str, draft: Value) -> String {
    expect(app, c, "POST", &format!("/api/v1/companies/{company}/applications"), Some(json!({"call_id": call_id, "draft": draft})), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}


both_engines!(a_draft_is_kept_whatever_it_holds_and_submits_only_when_open_and_complete, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, upcoming) = published_call(&app, 100_000, 60).await;
    let k = company(&app, &anna, 1, 12).await;
    let base = format!("/api/v1/companies/{k}/applications");
    // An empty draft is stored, with its problems.
    let a = expect(&app, &anna, "POST", &base, Some(json!({"call_id": upcoming})), 201).await;
    let id = a["id"].as_str().unwrap().to_owned();
    let problems: Vec<String> = a["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap().to_owned()).collect();
    assert!(problems.contains(&"plan".to_owned()) && problems.contains(&"expenses".to_owned()) && problems.contains(&"declaration".to_owned()), "{problems:?}");
    // A half-typed draft is saved as typed.
    let half = json!({"plan": "Metà piano", "expenses": [{"category": "viaggi", "description": "", "amount_cents": 100}]});
    let a = expect(&app, &anna, "PUT", &format!("{base}/{id}"), Some(half.clone()), 200).await;
    assert_eq!(a["draft"]["plan"], "Metà piano");
    assert!(a["problems"].as_array().unwrap().iter().any(|p| p["field"] == "expenses.0.category" && p["code"] == "unknown-category"));
    assert_eq!(expect(&app, &anna, "GET", &format!("{base}/{id}"), None, 200).await["draft"], json!({"plan": "Metà piano", "declaration": false, "expenses": [{"category": "viaggi", "description": "", "amount_cents": 100}]}));
    // Submitting it: the problems as field errors; then, complete but before the opening: 409.
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/{id}/submit")), None, Some("k1")).await;
    assert_eq!(s, 409, "the call is not open: {v}");
    assert_eq!(v["code"], "call-not-open");
    // No key: 422.
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/{id}/submit")), None, None).await;
    assert_eq!((s, fields(&v)), (422, vec![("Idempotency-Key".to_owned(), "required".to_owned())]));
    // One application per company per call.
    assert_eq!(expect(&app, &anna, "POST", &base, Some(json!({"call_id": upcoming})), 409).await["code"], "already-applied");

    // An open call: problems stop the submission, a complete draft gets protocol 1.
    let (_, open) = published_call(&app, 100_000, -1).await;
    let id2 = open_application(&app, &anna, &k, &open, half).await;
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/{id2}/submit")), None, Some("k2")).await;
    assert_eq!(s, 422, "{v}");
    assert!(fields(&v).contains(&("expenses.0.category".to_owned(), "unknown-category".to_owned())), "{v}");
    let a = expect(&app, &anna, "PUT", &format!("{base}/{id2}"), Some(complete()), 200).await;
    assert_eq!(a["problems"], json!([]));
    assert_eq!(a["requested_cents"], 1_050_000);
    let (s, r, text) = call(&anna, "POST", app.at(&format!("{base}/{id2}/submit")), None, Some("k2")).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(r["protocol"], 1);
    assert_eq!(r["place"], "admitted");
    assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
    // The same key again: the same receipt. Another key: 409. The draft no longer changes.
    let (s, again, _) = call(&anna, "POST", app.at(&format!("{base}/{id2}/submit")), None, Some("k2")).await;
    assert_eq!((s, &again), (200, &r));
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/{id2}/submit")), None, Some("other")).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("already-submitted")));
    expect(&app, &anna, "PUT", &format!("{base}/{id2}"), Some(complete()), 409).await;
    assert_eq!(expect(&app, &anna, "GET", &format!("{base}/{id2}/receipt"), None, 200).await, r);
    expect(&app, &anna, "GET", &format!("{base}/{id}/receipt"), None, 404).await;
    // The receipt went to the company's PEC address through the outbox.
    let mails: i64 = match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE '%impresa1@pec.example.it%' AND payload LIKE '%Protocollo n. 1%'").fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE '%impresa1@pec.example.it%' AND payload LIKE '%Protocollo n. 1%'").fetch_one(p).await.unwrap(),
    };
    assert_eq!(mails, 1);
    app
});

both_engines!(concurrent_submissions_get_gap_free_protocols_and_never_pass_the_budget, |app| async move {
    const N: u32 = 40;
    let anna = app.login("cittadino@example.it").await;
    // Room for ten grants of EUR 10,500.
    let (region, call_id) = published_call(&app, 105_000, -1).await;
    let mut apps = Vec::new();
    for n in 0..N {
        let k = company(&app, &anna, 100 + n, 12).await;
        let a = open_application(&app, &anna, &k, &call_id, complete()).await;
        apps.push((k, a));
    }
    let mut tasks = Vec::new();
    for (i, (k, a)) in apps.iter().enumerate() {
        let c = anna.clone();
        let url = app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit"));
        tasks.push(tokio::spawn(async move {
            // Each client retries its own submission once with the same key, as a browser would after a timeout.
            let first = call(&c, "POST", url.clone(), None, Some(&format!("key-{i}"))).await;
            let again = call(&c, "POST", url, None, Some(&format!("key-{i}"))).await;
            (first, again)
        }));
    }
    let mut protocols = Vec::new();
    let mut admitted = Vec::new();
    for t in tasks {
        let ((s, r, text), (s2, r2, _)) = t.await.unwrap();
        assert_eq!(s, 200, "{text}");
        assert_eq!((s2, &r2), (200, &r), "a retry returns the same receipt");
        let p = r["protocol"].as_i64().unwrap();
        protocols.push(p);
        if r["place"] == "admitted" {
            admitted.push(p);
        }
    }
    protocols.sort();
    assert_eq!(protocols, (1..=N as i64).collect::<Vec<_>>(), "gap-free and unique");
    admitted.sort();
    assert_eq!(admitted, (1..=10).collect::<Vec<_>>(), "the first ten by protocol are admitted, the rest wait");
    let admin = app.login("admin@regione.example").await;
    let call = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}"), None, 200).await;
    assert_eq!(call["committed_cents"], 105_000_00);
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}/applications"), None, 200).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), N as usize);
    // Instants strictly increase with the protocol.
    let times: Vec<String> = list.iter().map(|s| s["receipt"]["submitted_at"].as_str().unwrap().to_owned()).collect();
    let parsed: Vec<time::OffsetDateTime> = times.iter().map(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    // Protocol 3 withdraws: protocol 11, the head of the waiting list, is admitted.
    let third = list.iter().find(|s| s["receipt"]["protocol"] == 3).unwrap();
    let (k, a) = (third["receipt"]["company_id"].as_str().unwrap(), third["receipt"]["application_id"].as_str().unwrap());
    expect(&app, &anna, "POST", &format!("/api/v1/companies/{k}/applications/{a}/withdraw"), None, 200).await;
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}/applications"), None, 200).await;
    let place = |p: i64| list.as_array().unwrap().iter().find(|s| s["receipt"]["protocol"] == p).unwrap()["receipt"]["place"].clone();
    assert_eq!(place(11), "admitted");
    assert_eq!(place(12), "waiting");
    assert_eq!(expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}"), None, 200).await["committed_cents"], 105_000_00);
    app
});

both_engines!(de_minimis_and_eligibility_stop_a_submission_by_field, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, call_id) = published_call(&app, 100_000, -1).await;
    let k = company(&app, &anna, 7, 12).await;
    let today = agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date();
    expect(&app, &anna, "POST", &format!("/api/v1/companies/{k}/aid"), Some(json!({"granted_on": (today - time::Duration::days(100)).to_string(), "amount_cents": 295_000_00, "granting_body": "Regione"})), 201).await;
    let a = open_application(&app, &anna, &k, &call_id, complete()).await;
    let (s, v, _) = call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some("x")).await;
    assert_eq!(s, 422);
    assert_eq!(fields(&v), [("company.de_minimis".to_owned(), "ceiling-exceeded".to_owned())]);
    let small = company(&app, &anna, 8, 2).await;
    let a = open_application(&app, &anna, &small, &call_id, complete()).await;
    let (s, v, _) = call(&anna, "POST", app.at(&format!("/api/v1/companies/{small}/applications/{a}/submit")), None, Some("y")).await;
    assert_eq!(s, 422);
    assert!(fields(&v).contains(&("company.employees".to_owned(), "too-few-employees".to_owned())), "{v}");
    app
});

both_engines!(another_persons_applications_answer_404_and_change_nothing, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (region, call_id) = published_call(&app, 100_000, -1).await;
    let k = company(&app, &anna, 9, 12).await;
    let a = open_application(&app, &anna, &k, &call_id, complete()).await;
    let before = audit_head(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    for (method, template, body) in SCOPED_ROUTES {
        let path = template.replace("{company}", &k).replace("{application}", &a).replace("{org}", &region).replace("{call}", &call_id).replace("{code}", "piano");
        let body = if body.is_empty() { (*method == "POST").then(|| json!({"call_id": call_id})) } else { Some(serde_json::from_str(body).unwrap()) };
        let (s, _, text) = call(&attacker, method, app.at(&path), body.clone(), Some("attack")).await;
        assert_eq!(s, 404, "{method} {path}: {text}");
        assert!(!text.contains("Impresa 9") && !text.contains("Portatili"), "{method} {path} leaked: {text}");
        let (s, _, _) = call(&app.client(), method, app.at(&path), body, Some("attack")).await;
        assert_eq!(s, 401, "{method} {path} signed out");
    }
    assert_eq!(audit_head(&app.db).await, before);
    assert_eq!(expect(&app, &anna, "GET", &format!("/api/v1/companies/{k}/applications/{a}"), None, 200).await["state"], "draft");
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Required attachments

/// A published call a sportello that requires two attachments, opening `opens` minutes from now.
pub(crate) async fn call_with_attachments(app: &TestApp, opens: i64) -> (String, String) {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let body = json!({
        "title": "Avviso con allegati", "summary": "Contributi per piani di smart working.", "body": "",
        "budget_cents": 100_000_00, "mode": "sportello",
        "grant_rule": {"kind": "bands", "bands": [{"min_employees": 3, "max_employees": null, "amount": 1_050_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"},
                       {"code": "strumenti", "label": "Strumenti tecnologici", "max_share_bp": 3333}],
        "eligibility": {"min_employees": 3},
        "required_attachments": [{"code": "piano", "label": "Piano aziendale firmato"}, {"code": "visura", "label": "Visura camerale"}],
        "opens_at": instant(opens), "closes_at": instant(opens + 60 * 24), "de_minimis": false
    });
    let c = expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(body), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{id}/publish"), None, 200).await;
    (region.to_string(), id)
}

pub(crate) async fn scalar(db: &agilekit_kernel::Db, sql: &str) -> i64 {
    match db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(p).await.unwrap(),
    }
}

/// A raw upload: (status, JSON body).
async fn put_raw(app: &TestApp, c: &Client, path: &str, name: &str, ct: &str, data: Vec<u8>) -> (u16, Value) {
    let r = c.put(app.at(&format!("{path}?name={name}"))).header("content-type", ct).body(data).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A multipart/form-data body: (content type, bytes).
pub(crate) fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let b = "GrantsBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    for (k, name, ct, data) in files {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

pub(crate) fn sha_hex(data: &[u8]) -> String {
    agilekit_kernel::files::sha256_hex(data)
}

both_engines!(required_attachments_are_uploaded_to_the_draft_and_covered_by_the_fingerprint, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, call_id) = call_with_attachments(&app, -1).await;
    let k = company(&app, &anna, 41, 12).await;
    let a = open_application(&app, &anna, &k, &call_id, complete()).await;
    let base = format!("/api/v1/companies/{k}/applications/{a}");
    // Missing attachments stop the submission, each by its code.
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/submit")), None, Some("a1")).await;
    assert_eq!(s, 422, "{v}");
    let f = fields(&v);
    assert!(f.contains(&("attachments.piano".into(), "required".into())) && f.contains(&("attachments.visura".into(), "required".into())), "{v}");
    // A raw upload.
    let files_before = scalar(&app.db, "SELECT COUNT(*) FROM files").await;
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "piano.pdf", "application/pdf", b"%PDF-1.4 primo".to_vec()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["draft"]["attachments"][0]["code"], "piano");
    assert_eq!(v["draft"]["attachments"][0]["sha256"], sha_hex(b"%PDF-1.4 primo"));
    assert!(v["problems"].as_array().unwrap().iter().all(|p| p["field"] != "attachments.piano"), "{v}");
    // Replaced: the new file's hash, the old file gone.
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "piano-v2.pdf", "application/pdf", b"%PDF-1.4 secondo".to_vec()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["draft"]["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(v["draft"]["attachments"][0]["name"], "piano-v2.pdf");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM files").await, files_before + 1);
    // A multipart upload of the other one.
    let (ct, body) = multipart(&[("note", "x")], &[("file", "visura.txt", "text/plain", b"visura")]);
    let r = anna.put(app.at(&format!("{base}/attachments/visura"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Downloaded as stored, never inline.
    let r = anna.get(app.at(&format!("{base}/attachments/piano"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"piano-v2.pdf\""));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-1.4 secondo");
    // Deleted, then the submission misses it again; uploaded again.
    let v = expect(&app, &anna, "DELETE", &format!("{base}/attachments/visura"), None, 200).await;
    assert_eq!(v["draft"]["attachments"].as_array().unwrap().len(), 1);
    expect(&app, &anna, "GET", &format!("{base}/attachments/visura"), None, 404).await;
    expect(&app, &anna, "DELETE", &format!("{base}/attachments/visura"), None, 404).await;
    let (s, v, _) = call(&anna, "POST", app.at(&format!("{base}/submit")), None, Some("a2")).await;
    assert_eq!((s, fields(&v)), (422, vec![("attachments.visura".to_owned(), "required".to_owned())]));
    // A code the call does not require: 404.
    let (s, _) = put_raw(&app, &anna, &format!("{base}/attachments/altro"), "x.txt", "text/plain", b"x".to_vec()).await;
    assert_eq!(s, 404);
    // Saving the draft keeps the uploads whatever the client sends.
    let mut d = complete();
    d["attachments"] = json!([{"code": "visura", "file_id": "x", "name": "finta", "size": 1, "content_type": "text/plain", "sha256": "00"}]);
    let v = expect(&app, &anna, "PUT", &base, Some(d), 200).await;
    assert_eq!(v["draft"]["attachments"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect::<Vec<_>>(), ["piano"]);
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/visura"), "visura.txt", "text/plain", b"visura 2".to_vec()).await;
    assert_eq!(s, 200, "{v}");

    // Another person: 404 on every attachment route, nothing changed.
    let head = audit_head(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    let (s, _) = put_raw(&app, &attacker, &format!("{base}/attachments/piano"), "x.pdf", "application/pdf", b"x".to_vec()).await;
    assert_eq!(s, 404);
    for m in ["GET", "DELETE"] {
        let (s, _, text) = call(&attacker, m, app.at(&format!("{base}/attachments/piano")), None, None).await;
        assert_eq!(s, 404, "{m}: {text}");
        assert!(!text.contains("PDF-1.4"));
    }
    assert_eq!(audit_head(&app.db).await, head);

    // Too large: 413, nothing stored.
    let files_before = scalar(&app.db, "SELECT COUNT(*) FROM files").await;
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "big.bin", "application/octet-stream", vec![7u8; 10 * 1024 * 1024 + 1]).await;
    assert_eq!((s, v["code"].as_str(), v["limit"].as_i64()), (413, Some("file-too-large"), Some(10 * 1024 * 1024)), "{v}");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM files").await, files_before);
    // A file at the limit is taken (the API reads attachment bodies up to the upload limit, not the 1 MiB of JSON);
    // then the earlier one is put back.
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "grande.pdf", "application/pdf", vec![7u8; 10 * 1024 * 1024]).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "piano.pdf", "application/pdf", b"%PDF-1.4 secondo".to_vec()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM files").await, files_before);

    // Submitted: the fingerprint covers the attachments' hashes.
    let (s, r, text) = call(&anna, "POST", app.at(&format!("{base}/submit")), None, Some("a3")).await;
    assert_eq!(s, 200, "{text}");
    let content: String = match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar("SELECT content FROM grant_applications WHERE sha256 = $1").bind(r["sha256"].as_str().unwrap()).fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar("SELECT content FROM grant_applications WHERE sha256 = $1").bind(r["sha256"].as_str().unwrap()).fetch_one(p).await.unwrap(),
    };
    let stored: Value = serde_json::from_str(&content).unwrap();
    let mut draft: agilekit_grants::applications::model::Draft = serde_json::from_value(stored["draft"].clone()).unwrap();
    assert_eq!(draft.attachments.iter().map(|a| a.sha256.clone()).collect::<Vec<_>>(), [sha_hex(b"%PDF-1.4 secondo"), sha_hex(b"visura 2")]);
    let doc = |d: &agilekit_grants::applications::model::Draft| agilekit_grants::applications::model::fingerprint(&agilekit_grants::applications::model::Submitted {
        call: call_id.clone(), company: stored["company"].clone(), draft: d, requested_cents: r["requested_cents"].as_i64().unwrap() });
    assert_eq!(doc(&draft), r["sha256"].as_str().unwrap(), "the receipt's fingerprint is the stored document's");
    draft.attachments[1].sha256 = sha_hex(b"visura 3");
    assert_ne!(doc(&draft), r["sha256"].as_str().unwrap(), "another file, another fingerprint");
    // No more changes once submitted.
    let (s, _) = put_raw(&app, &anna, &format!("{base}/attachments/piano"), "x.pdf", "application/pdf", b"x".to_vec()).await;
    assert_eq!(s, 409);
    expect(&app, &anna, "DELETE", &format!("{base}/attachments/piano"), None, 409).await;
    app
});
