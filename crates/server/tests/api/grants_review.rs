//! After admission, through the API on both engines: the formal check with an integration the company answers, the
//! grant decision, the expense report and its approval, each step mailed to the company's PEC and audited; an
//! inadmissible application and a partial grant give money back and the waiting list is drawn (never over the
//! budget); field errors on bad input; steps out of order 409 with a code; the company cannot act as staff, staff of
//! another organisation and other companies get 404 and change nothing.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::grants_applications::{company, complete, open_application, published_call};
use crate::helpers::*;
use crate::helpers::{api_call as call, api_expect as expect, field_errors as fields};

async fn scalar(app: &TestApp, sql: &'static str, a: &str, b: &str) -> i64 {
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(p).await.unwrap(),
    }
}

/// Mails queued to `pec` whose payload contains `text`.
async fn mails(app: &TestApp, pec: &str, text: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE $1 AND payload LIKE $2";
    scalar(app, sql, &format!("%{pec}%"), &format!("%{text}%")).await
}

async fn review_audits(app: &TestApp, application: &str) -> i64 {
    scalar(app, "SELECT COUNT(*) FROM audit_log WHERE action LIKE $2 AND entity_id = $1", application, "review.%").await
}

fn day(offset: i64) -> String {
    (agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date() + time::Duration::days(offset)).to_string()
}

/// A call with room for two grants of EUR 10,500 and three companies (`base`, `base+1`, `base+2`) that submit in
/// that order: two admitted, the third waiting. Returns (org, call, [(company, application)]).
async fn three_submissions(app: &TestApp, anna: &Client, base: u32) -> (String, String, Vec<(String, String)>) {
    let (org, call_id) = published_call(app, 21_000, -1).await;
    let mut out = Vec::new();
    for n in base..base + 3 {
        let k = company(app, anna, n, 12).await;
        let a = open_application(app, anna, &k, &call_id, complete()).await;
        let (s, r, text) = call(anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some(&format!("s{n}"))).await;
        assert_eq!(s, 200, "{text}");
        assert_eq!(r["place"], if n < base + 2 { "admitted" } else { "waiting" });
        out.push((k, a));
    }
    (org, call_id, out)
}

/// A multipart body with one file in the part `file`: its content type and bytes.
fn one_file(name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let b = "GrvBoundary4f9Q2xT";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn upload(app: &TestApp, c: &Client, path: &str, name: &str, data: &[u8]) -> (u16, Value) {
    let (ct, body) = one_file(name, data);
    let r = c.post(app.at(path)).header("content-type", ct).body(body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn staff_path(org: &str, call_id: &str, a: &str) -> String {
    format!("/api/v1/orgs/{org}/calls/{call_id}/applications/{a}/review")
}

fn company_path(k: &str, a: &str) -> String {
    format!("/api/v1/companies/{k}/applications/{a}/review")
}

async fn post_err(app: &TestApp, c: &Client, path: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = call(c, "POST", app.at(path), Some(body), None).await;
    (s, v)
}

async fn committed(app: &TestApp, admin: &Client, org: &str, call_id: &str) -> i64 {
    expect(app, admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}"), None, 200).await["committed_cents"].as_i64().unwrap()
}

both_engines!(the_review_from_integration_to_approval_mails_and_audits_each_step, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let evaluator = app.login("valutatore@regione.example").await;
    let (org, call_id, apps) = three_submissions(&app, &anna, 4101).await;
    let (k, a) = apps[0].clone();
    let pec = "impresa4101@pec.example.it";
    let staff = staff_path(&org, &call_id, &a);
    let mine = company_path(&k, &a);

    // The check is due: the staff's steps, none for the company.
    let r = expect(&app, &evaluator, "GET", &staff, None, 200).await;
    assert_eq!((r["stage"].as_str(), r["protocol"].as_i64(), r["draft"]["plan"].is_string()), (Some("check"), Some(1), true));
    assert_eq!(r["steps"], json!(["admit", "request_integration", "declare_inadmissible"]));
    assert_eq!(expect(&app, &anna, "GET", &mine, None, 200).await["steps"], json!([]));

    // Out of order: 409 with a code, nothing audited.
    let before = audit_head(&app.db).await;
    let (s, v) = upload(&app, &anna, &format!("{mine}/files"), "presto.pdf", b"%PDF-1.4 presto").await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")), "no file before anything is asked: {v}");
    let (s, v) = post_err(&app, &admin, &format!("{staff}/grant"), json!({"amount": "10.500", "act_number": "1", "act_date": day(0)})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")), "{v}");
    let (s, v) = post_err(&app, &anna, &format!("{mine}/report"), json!({"lines": [{"category": "consulenza", "description": "x", "amount": "1", "invoice": "1"}]})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")), "{v}");
    let (s, v) = post_err(&app, &anna, &format!("{mine}/answer"), json!({"text": "Eccola"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")), "{v}");
    // Bad input: field errors.
    let (s, v) = post_err(&app, &admin, &format!("{staff}/check"), json!({"outcome": "integration", "message": " ", "deadline": day(0)})).await;
    assert_eq!(s, 422);
    assert_eq!(fields(&v), vec![("message".to_owned(), "required".to_owned()), ("deadline".to_owned(), "not-after-today".to_owned())]);
    let (s, v) = post_err(&app, &admin, &format!("{staff}/check"), json!({"outcome": "maybe"})).await;
    assert_eq!((s, fields(&v)), (422, vec![("outcome".to_owned(), "unknown-outcome".to_owned())]));
    assert_eq!(audit_head(&app.db).await, before);

    // Integration requested by the evaluator; the deadline has not passed, so it cannot be declared inadmissible yet.
    let r = expect(&app, &evaluator, "POST", &format!("{staff}/check"), Some(json!({"outcome": "integration", "message": "Allegare la visura camerale.", "deadline": day(10)})), 200).await;
    assert_eq!((r["stage"].as_str(), r["request"].as_str(), r["deadline"].as_str()), (Some("integration"), Some("Allegare la visura camerale."), Some(day(10).as_str())));
    assert_eq!(r["steps"], json!([]));
    let (s, v) = post_err(&app, &admin, &format!("{staff}/check"), json!({"outcome": "inadmissible", "reasons": "Nessuna risposta"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("integration-pending")), "{v}");
    let r = expect(&app, &anna, "GET", &mine, None, 200).await;
    assert_eq!((r["steps"].clone(), r["request"].as_str()), (json!(["answer"]), Some("Allegare la visura camerale.")));
    // A file with the integration: listed on both sides, downloaded by the staff as sent.
    let pdf = b"%PDF-1.4 visura camerale 4101";
    let (s, v) = upload(&app, &anna, &format!("{mine}/files"), "visura.pdf", pdf).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["files"][0]["name"].as_str(), v["files"][0]["stage"].as_str(), v["files"][0]["size"].as_i64()), (Some("visura.pdf"), Some("integration"), Some(pdf.len() as i64)));
    let file = v["files"][0]["id"].as_str().unwrap().to_owned();
    let got = admin.get(app.at(&format!("{staff}/files/{file}"))).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(got.bytes().await.unwrap().as_ref(), pdf);
    assert_eq!(anna.get(app.at(&format!("{mine}/files/{file}"))).send().await.unwrap().bytes().await.unwrap().as_ref(), pdf);
    let (s, v) = upload(&app, &anna, &format!("{mine}/files"), "", b"").await;
    assert_eq!((s, fields(&v)), (422, vec![("file".to_owned(), "required".to_owned())]), "{v}");
    let (s, v) = post_err(&app, &anna, &format!("{mine}/answer"), json!({"text": ""})).await;
    assert_eq!((s, fields(&v)), (422, vec![("text".to_owned(), "required".to_owned())]));
    let r = expect(&app, &anna, "POST", &format!("{mine}/answer"), Some(json!({"text": "Visura allegata, protocollo camerale 123."})), 200).await;
    assert_eq!(r["stage"], "check");

    // Admissible, then the grant: not over the amount requested.
    assert_eq!(expect(&app, &admin, "POST", &format!("{staff}/check"), Some(json!({"outcome": "admissible"})), 200).await["stage"], "admissible");
    let (s, v) = post_err(&app, &admin, &format!("{staff}/grant"), json!({"amount": "10.500,01", "act_number": "", "act_date": day(1)})).await;
    assert_eq!(s, 422);
    assert_eq!(fields(&v), vec![("amount".to_owned(), "over-requested".to_owned()), ("act_number".to_owned(), "required".to_owned()), ("act_date".to_owned(), "in-the-future".to_owned())]);
    let r = expect(&app, &admin, "POST", &format!("{staff}/grant"), Some(json!({"amount": "10.500,00", "act_number": "D.D. 4521", "act_date": day(0)})), 200).await;
    assert_eq!((r["stage"].as_str(), r["granted_cents"].as_i64(), r["act_number"].as_str()), (Some("granted"), Some(1_050_000), Some("D.D. 4521")));
    assert_eq!(committed(&app, &admin, &org, &call_id).await, 2_100_000, "a full grant keeps the money held");

    // The expense report: by the call's categories, money as people type it.
    let (s, v) = post_err(&app, &anna, &format!("{mine}/report"), json!({"lines": [{"category": "viaggi", "description": "", "amount": "dodici euro", "invoice": ""}]})).await;
    assert_eq!(s, 422);
    for f in [("lines.0.category", "unknown-category"), ("lines.0.description", "required"), ("lines.0.amount", "not-an-amount"), ("lines.0.invoice", "required")] {
        assert!(fields(&v).contains(&(f.0.to_owned(), f.1.to_owned())), "{f:?}: {v}");
    }
    let report = json!({"lines": [
        {"category": "consulenza", "description": "Formazione sul lavoro agile", "amount": "8.000,00", "invoice": "FT 12/2026 del 3/3/2026"},
        {"category": "strumenti", "description": "Portatili", "amount": "3.900", "invoice": "FT 88/2026"}]});
    let r = expect(&app, &anna, "POST", &format!("{mine}/report"), Some(report.clone()), 200).await;
    assert_eq!(r["stage"], "reported");
    assert_eq!(r["report"][0]["amount_cents"], 800_000);
    assert_eq!(r["report"][1]["amount_cents"], 390_000);
    // Submitted once: again only when asked.
    let (s, v) = post_err(&app, &anna, &format!("{mine}/report"), report.clone()).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")));
    // The staff ask for a correction; the company reports again.
    let r = expect(&app, &admin, "POST", &format!("{staff}/approval"), Some(json!({"outcome": "corrections", "message": "Indicare la data della fattura 88.", "deadline": day(15)})), 200).await;
    assert_eq!(r["stage"], "corrections");
    let mut corrected = report.clone();
    corrected["lines"][1]["invoice"] = json!("FT 88/2026 del 10/3/2026");
    assert_eq!(expect(&app, &anna, "POST", &format!("{mine}/report"), Some(corrected), 200).await["stage"], "reported");

    // Approval: each line's eligible amount, not over what was reported.
    let (s, v) = post_err(&app, &admin, &format!("{staff}/approval"), json!({"outcome": "approve", "eligible": ["8.000,01", ""]})).await;
    assert_eq!(s, 422);
    assert_eq!(fields(&v), vec![("eligible.0".to_owned(), "over-reported".to_owned()), ("eligible.1".to_owned(), "required".to_owned())]);
    let r = expect(&app, &admin, "POST", &format!("{staff}/approval"), Some(json!({"outcome": "approve", "eligible": ["7.500", "3.900,00"]})), 200).await;
    assert_eq!((r["stage"].as_str(), r["approved_cents"].as_i64(), r["to_pay_cents"].as_i64()), (Some("approved"), Some(1_140_000), Some(1_050_000)));
    assert_eq!(r["report"][0]["eligible_cents"], 750_000);
    assert_eq!(r["steps"], json!([]));
    let (s, v) = post_err(&app, &admin, &format!("{staff}/approval"), json!({"outcome": "reject", "reasons": "x"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")));
    // Approved: too late to renounce through a withdrawal.
    let (s, v, _) = call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/withdraw")), None, None).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("already-approved")), "{v}");

    // The history as the company sees it (no staff names), every step mailed and audited.
    let r = expect(&app, &anna, "GET", &mine, None, 200).await;
    let actions: Vec<&str> = r["history"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["request_integration", "answer", "admit", "grant", "report", "request_corrections", "report", "approve"]);
    assert!(r["history"].as_array().unwrap().iter().all(|e| e["actor"].is_null()));
    let staff_view = expect(&app, &admin, "GET", &staff, None, 200).await;
    assert_eq!(staff_view["history"][0]["actor"], "Paolo Valutatore");
    for (subject, n) in [("Richiesta di integrazione", 2), ("Integrazione ricevuta", 1), ("domanda ammissibile", 1), ("Contributo concesso", 1), ("Rendicontazione ricevuta", 2), ("Rendicontazione approvata", 1)] {
        assert_eq!(mails(&app, pec, subject).await, n, "{subject}");
    }
    assert_eq!(mails(&app, pec, "The expense report is approved").await, 1, "Italian, then English");
    assert_eq!(review_audits(&app, &a).await, 9, "eight steps and one file");
    app
});

both_engines!(inadmissible_and_partial_grants_give_money_back_to_the_waiting_list, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let (org, call_id, apps) = three_submissions(&app, &anna, 4201).await;
    let [(k1, a1), (k2, a2), (k3, a3)] = [apps[0].clone(), apps[1].clone(), apps[2].clone()];
    // The waiting one is not under review.
    let r = expect(&app, &admin, "GET", &staff_path(&org, &call_id, &a3), None, 200).await;
    assert_eq!((r["stage"].clone(), r["steps"].clone()), (Value::Null, json!([])));
    let (s, v) = post_err(&app, &admin, &format!("{}/check", staff_path(&org, &call_id, &a3)), json!({"outcome": "admissible"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("not-under-review")));

    // Inadmissible needs reasons; then its money goes to the head of the waiting list.
    let (s, v) = post_err(&app, &admin, &format!("{}/check", staff_path(&org, &call_id, &a1)), json!({"outcome": "inadmissible"})).await;
    assert_eq!((s, fields(&v)), (422, vec![("reasons".to_owned(), "required".to_owned())]));
    let r = expect(&app, &admin, "POST", &format!("{}/check", staff_path(&org, &call_id, &a1)), Some(json!({"outcome": "inadmissible", "reasons": "Sede operativa fuori regione."})), 200).await;
    assert_eq!((r["stage"].as_str(), r["place"].clone()), (Some("inadmissible"), Value::Null));
    assert_eq!(r["history"][0]["detail"]["released_cents"], 1_050_000);
    assert_eq!(expect(&app, &anna, "GET", &company_path(&k3, &a3), None, 200).await["stage"], "check", "the waiting one was admitted");
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}/applications"), None, 200).await;
    assert_eq!(list.as_array().unwrap().iter().find(|x| x["receipt"]["application_id"] == a3.as_str()).unwrap()["receipt"]["place"], "admitted");
    assert_eq!(committed(&app, &admin, &org, &call_id).await, 2_100_000);
    assert_eq!(mails(&app, "impresa4201@pec.example.it", "Domanda non ammissibile").await, 1);
    assert_eq!(mails(&app, "impresa4203@pec.example.it", "Domanda ammessa").await, 1);
    // Closed: no more steps.
    let (s, v) = post_err(&app, &admin, &format!("{}/check", staff_path(&org, &call_id, &a1)), json!({"outcome": "admissible"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("step-not-due")), "{v}");

    // A partial grant gives back the difference.
    expect(&app, &admin, "POST", &format!("{}/check", staff_path(&org, &call_id, &a2)), Some(json!({"outcome": "admissible"})), 200).await;
    let r = expect(&app, &admin, "POST", &format!("{}/grant", staff_path(&org, &call_id, &a2)), Some(json!({"amount": "8.000", "act_number": "D.D. 77", "act_date": day(-1)})), 200).await;
    assert_eq!(r["granted_cents"], 800_000);
    assert_eq!(committed(&app, &admin, &org, &call_id).await, 2_100_000 - 250_000);
    let call_uuid: agilekit_grants::calls::model::CallId = serde_json::from_value(json!(call_id)).unwrap();
    let granted = agilekit_grants::review::service::granted(&app.db, call_uuid).await.unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!((granted[0].company_id.to_string(), granted[0].granted_cents), (k2.clone(), 800_000));
    // The partially granted one renounces: what it holds (8,000 €) goes back, not the 10,500 it asked for.
    expect(&app, &anna, "POST", &format!("/api/v1/companies/{k2}/applications/{a2}/withdraw"), None, 200).await;
    assert_eq!(committed(&app, &admin, &org, &call_id).await, 1_050_000);
    assert!(agilekit_grants::review::service::granted(&app.db, call_uuid).await.unwrap().is_empty(), "a renounced grant is not listed");

    // An integration whose deadline passed without an answer: now it may be declared inadmissible.
    let s3 = staff_path(&org, &call_id, &a3);
    expect(&app, &admin, "POST", &format!("{s3}/check"), Some(json!({"outcome": "integration", "message": "Manca il piano.", "deadline": day(3)})), 200).await;
    let yesterday = day(-1);
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => {
            sqlx::query("UPDATE grant_reviews SET deadline = $1 WHERE stage = 'integration'").bind(&yesterday).execute(p).await.unwrap();
        }
        agilekit_kernel::Db::Postgres(p) => {
            sqlx::query("UPDATE grant_reviews SET deadline = $1::date WHERE stage = 'integration'").bind(&yesterday).execute(p).await.unwrap();
        }
    }
    let r = expect(&app, &admin, "GET", &s3, None, 200).await;
    assert_eq!((r["overdue"].as_bool(), r["steps"].clone()), (Some(true), json!(["declare_inadmissible"])));
    expect(&app, &admin, "POST", &format!("{s3}/check"), Some(json!({"outcome": "inadmissible", "reasons": "Integrazione non pervenuta."})), 200).await;
    assert_eq!(committed(&app, &admin, &org, &call_id).await, 0);
    let _ = k1;
    app
});

/// The review's routes (API and pages) with a body that would pass validation: for the isolation test's
/// classification and for `only_the_calls_staff_and_the_company_reach_a_review`, which calls every one of them.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/check", r#"{"outcome":"admissible"}"#),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/grant", r#"{"amount":"1","act_number":"1","act_date":"2026-01-02"}"#),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/approval", r#"{"outcome":"reject","reasons":"x"}"#),
    ("GET", "/api/v1/companies/{company}/applications/{application}/review", ""),
    ("POST", "/api/v1/companies/{company}/applications/{application}/review/answer", r#"{"text":"x"}"#),
    ("POST", "/api/v1/companies/{company}/applications/{application}/review/report", r#"{"lines":[{"category":"consulenza","description":"x","amount":"1","invoice":"1"}]}"#),
    ("POST", "/api/v1/companies/{company}/applications/{application}/review/files", ""),
    ("GET", "/api/v1/companies/{company}/applications/{application}/review/files/{file}", ""),
    ("GET", "/api/v1/orgs/{org}/calls/{call}/applications/{application}/review/files/{file}", ""),
    ("GET", "/orgs/{org}/calls/{call}/applications/{application}", ""),
    ("POST", "/orgs/{org}/calls/{call}/applications/{application}/check", r#"{"outcome":"admissible"}"#),
    ("POST", "/orgs/{org}/calls/{call}/applications/{application}/grant", r#"{"amount":"1","act_number":"1","act_date":"2026-01-02"}"#),
    ("POST", "/orgs/{org}/calls/{call}/applications/{application}/approval", r#"{"outcome":"reject","reasons":"x"}"#),
    ("GET", "/companies/{company}/applications/{application}/review", ""),
    ("POST", "/companies/{company}/applications/{application}/review/answer", r#"{"text":"x"}"#),
    ("POST", "/companies/{company}/applications/{application}/review/report", r#"{"lines.0.category":"consulenza","lines.0.description":"x","lines.0.amount":"1","lines.0.invoice":"1"}"#),
    ("POST", "/companies/{company}/applications/{application}/review/files", ""),
];

/// A route of the table called by `c`: JSON to the API, a form to the pages. The status and the text.
async fn call_route(app: &TestApp, c: &Client, method: &str, path: &str, body: &str) -> (u16, String) {
    if path.starts_with("/api/") {
        let (s, _, text) = call(c, method, app.at(path), (!body.is_empty()).then(|| serde_json::from_str(body).unwrap()), None).await;
        return (s, text);
    }
    let rb = if method == "GET" {
        c.get(app.at(path))
    } else {
        let fields: serde_json::Map<String, Value> = if body.is_empty() { serde_json::Map::new() } else { serde_json::from_str(body).unwrap() };
        let pairs: Vec<(String, String)> = fields.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_owned())).collect();
        c.post(app.at(path)).form(&pairs)
    };
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

both_engines!(only_the_calls_staff_and_the_company_reach_a_review, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let (org, call_id, apps) = three_submissions(&app, &anna, 4301).await;
    let [(k1, a1), (k2, _)] = [apps[0].clone(), apps[1].clone()];
    let (_, other_call) = published_call(&app, 50_000, -1).await;
    let clerk = app.login("dipendente@regione.example").await;
    let other = app.login("admin@comune.example").await;
    // A file of the application, sent while an integration was due (then answered and checked on).
    expect(&app, &admin, "POST", &format!("{}/check", staff_path(&org, &call_id, &a1)), Some(json!({"outcome": "integration", "message": "Visura", "deadline": day(5)})), 200).await;
    let (s, v) = upload(&app, &anna, &format!("{}/files", company_path(&k1, &a1)), "visura.pdf", b"%PDF-1.4 Portatili").await;
    assert_eq!(s, 200, "{v}");
    let file = v["files"][0]["id"].as_str().unwrap().to_owned();
    let before = audit_head(&app.db).await;
    let fill = |t: &str, company: &str, call_id: &str| t.replace("{org}", &org).replace("{call}", call_id).replace("{application}", &a1).replace("{company}", company).replace("{file}", &file);
    for (m, template, body) in SCOPED_ROUTES {
        let path = fill(template, &k1, &call_id);
        let staff_route = template.contains("{org}");
        // Staff of another organisation, and the company on the staff's routes: 404, nothing leaked.
        let mut who = vec![("another organisation's admin", &other)];
        if staff_route {
            who.push(("the company", &anna));
        }
        for (name, c) in who {
            let (s, text) = call_route(&app, c, m, &path, body).await;
            assert_eq!(s, 404, "{name}: {m} {path}: {text}");
            assert!(!text.contains("Impresa 4301") && !text.contains("Portatili"), "{name}: {m} {path} leaked: {text}");
        }
        if staff_route {
            // A member of the organisation without the role: 403. Another call of the organisation: 404.
            assert_eq!(call_route(&app, &clerk, m, &path, body).await.0, 403, "{m} {path}");
            assert_eq!(call_route(&app, &admin, m, &fill(template, &k1, &other_call), body).await.0, 404, "{m} {path} under another call");
        } else {
            // The company's own application under another of its companies: 404.
            assert_eq!(call_route(&app, &anna, m, &fill(template, &k2, &call_id), body).await.0, 404, "{m} {path} under another company");
        }
        // Signed out: 401 from the API, the login page from the pages.
        let (s, _) = call_route(&app, &app.client(), m, &path, body).await;
        if path.starts_with("/api/") {
            assert_eq!(s, 401, "{m} {path} signed out");
        } else {
            assert!(s == 303 || s == 302 || s == 401 || s == 403, "{m} {path} signed out: {s}");
        }
    }
    assert_eq!(audit_head(&app.db).await, before, "nothing changed");
    assert_eq!(expect(&app, &admin, "GET", &staff_path(&org, &call_id, &a1), None, 200).await["stage"], "integration");
    app
});

async fn page(app: &TestApp, c: &Client, path: &str) -> (u16, String, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    let cache = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (s, cache, r.text().await.unwrap())
}

/// A form posted as a browser does: the status, the redirect's target, the page.
async fn form(app: &TestApp, c: &Client, path: &str, body: &[(&str, &str)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(body).send().await.unwrap();
    let s = r.status().as_u16();
    let loc = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

both_engines!(the_review_pages_keep_what_was_typed_and_answer_each_step, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let (org, call_id, apps) = three_submissions(&app, &anna, 4401).await;
    let (k, a) = apps[0].clone();
    let staff = format!("/orgs/{org}/calls/{call_id}/applications/{a}");
    let mine = format!("/companies/{k}/applications/{a}/review");

    let (s, cache, html) = page(&app, &admin, &staff).await;
    assert_eq!(s, 200, "{html}");
    assert!(cache.contains("no-store"), "{cache}");
    assert!(html.contains("Impresa 4401 S.r.l.") && html.contains("Verifica formale in corso") && html.contains("Portatili"), "{html}");
    assert!(html.contains(&format!("action=\"{staff}/check\"")));

    // A refused integration request: 422, the errors beside the fields and in the summary, the message kept.
    let (s, _, html) = form(&app, &admin, &format!("{staff}/check"), &[("outcome", "integration"), ("message", "Manca la visura <camerale>"), ("deadline", "ieri")]).await;
    assert_eq!(s, 422, "{html}");
    assert!(html.contains("id=\"error-summary\"") && html.contains("href=\"#f-integration-deadline\""), "{html}");
    assert!(html.contains("Manca la visura &#60;camerale&#62;</textarea>"), "typed text kept, escaped: {html}");
    assert!(html.contains("id=\"f-integration-deadline-error\"") && html.contains("Formato non valido."));
    let (s, loc, _) = form(&app, &admin, &format!("{staff}/check"), &[("outcome", "integration"), ("message", "Manca la visura camerale."), ("deadline", &day(7))]).await;
    assert_eq!((s, loc.as_str()), (303, format!("{staff}?done=integration").as_str()));
    let (_, _, html) = page(&app, &admin, &loc).await;
    assert!(html.contains("La richiesta di integrazione è stata inviata"), "{html}");

    // The company sees the request and answers it.
    let (s, cache, html) = page(&app, &anna, &mine).await;
    assert_eq!(s, 200);
    assert!(cache.contains("no-store"));
    assert!(html.contains("Manca la visura camerale.") && html.contains(&format!("action=\"{mine}/answer\"")), "{html}");
    let (s, _, html) = form(&app, &anna, &format!("{mine}/answer"), &[("text", "  ")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("href=\"#f-answer-text\"") && html.contains("Campo obbligatorio."), "{html}");
    let (s, loc, _) = form(&app, &anna, &format!("{mine}/answer"), &[("text", "Visura allegata.")]).await;
    assert_eq!((s, loc), (303, format!("{mine}?done=answer")));

    // Admissible; a grant typed wrong keeps what was typed; then granted.
    assert_eq!(form(&app, &admin, &format!("{staff}/check"), &[("outcome", "admissible")]).await.0, 303);
    let (s, _, html) = form(&app, &admin, &format!("{staff}/grant"), &[("amount", "diecimila"), ("act_number", "D.D. 9"), ("act_date", &day(0))]).await;
    assert_eq!(s, 422);
    assert!(html.contains("value=\"diecimila\"") && html.contains("value=\"D.D. 9\"") && html.contains("Non è un importo"), "{html}");
    assert_eq!(form(&app, &admin, &format!("{staff}/grant"), &[("amount", "10.500,00"), ("act_number", "D.D. 9"), ("act_date", &day(0))]).await.0, 303);

    // The report: a wrong line keeps every line typed; then submitted.
    let bad = [("lines.0.category", "consulenza"), ("lines.0.description", "Corso"), ("lines.0.amount", "xx"), ("lines.0.invoice", "FT 1/2026"),
        ("lines.1.category", "strumenti"), ("lines.1.description", "Portatili"), ("lines.1.amount", "3.900"), ("lines.1.invoice", "FT 2/2026"),
        ("lines.2.category", ""), ("lines.2.description", ""), ("lines.2.amount", ""), ("lines.2.invoice", "")];
    let (s, _, html) = form(&app, &anna, &format!("{mine}/report"), &bad).await;
    assert_eq!(s, 422, "{html}");
    assert!(html.contains("href=\"#f-report-lines-0-amount\"") && html.contains("value=\"FT 1/2026\"") && html.contains("value=\"FT 2/2026\"") && html.contains("value=\"xx\""), "{html}");
    let mut good = bad;
    good[2] = ("lines.0.amount", "8.000,00");
    let (s, loc, _) = form(&app, &anna, &format!("{mine}/report"), &good).await;
    assert_eq!((s, loc), (303, format!("{mine}?done=report")));

    // Approval from the page: the eligible amounts start from what was reported.
    let (_, _, html) = page(&app, &admin, &staff).await;
    assert!(html.contains("id=\"f-approve-eligible-0\"") && html.contains("value=\"8.000,00\""), "{html}");
    let (s, _, html) = form(&app, &admin, &format!("{staff}/approval"), &[("outcome", "approve"), ("eligible.0", "9.000"), ("eligible.1", "3.900,00")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("value=\"9.000\"") && html.contains("id=\"f-approve-eligible-0-error\"") && html.contains("importo rendicontato"), "{html}");
    let (s, loc, _) = form(&app, &admin, &format!("{staff}/approval"), &[("outcome", "approve"), ("eligible.0", "7.000"), ("eligible.1", "3.900,00")]).await;
    assert_eq!(s, 303);
    let (_, _, html) = page(&app, &anna, &mine).await;
    assert!(html.contains("Rendicontazione approvata") && html.contains("10.500,00 €") && html.contains("10.900,00 €"), "{html}");
    let _ = loc;

    // A step no longer due: 409 with the page and a notice, not an error page.
    let (s, _, html) = form(&app, &admin, &format!("{staff}/check"), &[("outcome", "admissible")]).await;
    assert_eq!(s, 409);
    assert!(html.contains("Questo passaggio non è previsto"), "{html}");
    // Another organisation's staff, another company's path: 404.
    let other = app.login("admin@comune.example").await;
    assert_eq!(page(&app, &other, &staff).await.0, 404);
    assert_eq!(page(&app, &other, &mine).await.0, 404);
    assert_eq!(form(&app, &other, &format!("{staff}/check"), &[("outcome", "admissible")]).await.0, 404);
    let (k2, _) = apps[1].clone();
    assert_eq!(page(&app, &anna, &format!("/companies/{k2}/applications/{a}/review")).await.0, 404);
    app
});
