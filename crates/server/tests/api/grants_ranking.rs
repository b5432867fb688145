//! The graduatoria through the API and the pages on both engines: a ranked call closes; evaluators declare conflicts
//! of interest (a conflicted evaluator cannot read or score the application; a wrong "no conflict" turned into a
//! conflict removes that evaluator's scores) and score the grid (field errors by criterion code); the provisional
//! ranking follows scores, then tie-break criteria, then protocol; publication commits money strictly down the
//! ranking, sets places, mails each PEC, is audited and happens once; other organisations and companies get 404.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::grants_applications::{company, complete, open_application};
use crate::helpers::*;
use crate::helpers::{api_call as call, api_expect as expect, field_errors as fields};

/// The graduatoria's organisation-scoped routes (API and pages), for the isolation test's classification; each is
/// exercised by `nobody_outside_the_organisation_reaches_the_evaluation` below.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/calls/{call}/evaluation", ""),
    ("GET", "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/declaration", r#"{"conflict":false}"#),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/scores", r#"{"scores":{"qualita":5,"impatto":5}}"#),
    ("GET", "/api/v1/orgs/{org}/calls/{call}/evaluation/ranking", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/evaluation/ranking/publish", ""),
    ("GET", "/orgs/{org}/evaluation", ""),
    ("GET", "/orgs/{org}/calls/{call}/evaluation", ""),
    ("GET", "/orgs/{org}/calls/{call}/evaluation/{application}", ""),
    ("POST", "/orgs/{org}/calls/{call}/evaluation/{application}/declaration", "form=declare&conflict=no"),
    ("POST", "/orgs/{org}/calls/{call}/evaluation/{application}/scores", "points.qualita=5&points.impatto=5"),
    ("GET", "/orgs/{org}/calls/{call}/ranking", ""),
    ("GET", "/orgs/{org}/calls/{call}/ranking/publish", ""),
    ("POST", "/orgs/{org}/calls/{call}/ranking/publish", ""),
];

fn instant(minutes_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes_from_now);
    t.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A published, open ranked call of `budget` euros: grid `qualita` (0..10) and `impatto` (0..5), ties broken by
/// `impatto`. Returns (org, call).
async fn ranked_call(app: &TestApp, budget_euros: i64) -> (String, String) {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let body = json!({
        "title": "Premio lavoro agile di prova", "summary": "Graduatoria di prova.", "body": "",
        "budget_cents": budget_euros * 100, "mode": "graduatoria",
        "grant_rule": {"kind": "bands", "bands": [
            {"min_employees": 3, "max_employees": 10, "amount": 750_000},
            {"min_employees": 11, "max_employees": null, "amount": 1_050_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"},
                       {"code": "strumenti", "label": "Strumenti tecnologici", "max_share_bp": 3333}],
        "eligibility": {"min_employees": 3, "excluded_sectors": ["01"], "site_region": "03"},
        "criteria": [{"code": "qualita", "label": "Qualità del piano", "max_points": 10},
                     {"code": "impatto", "label": "Impatto sui lavoratori", "max_points": 5}],
        "tie_breaks": ["impatto"],
        "opens_at": instant(-1), "closes_at": instant(60 * 24), "de_minimis": false
    });
    let c = expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(body), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    expect(app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{id}/publish"), None, 200).await;
    (region.to_string(), id)
}

/// Closes the call a minute ago (as time passing would).
async fn close(app: &TestApp, call: &str) {
    let now = agilekit_kernel::clock::now();
    let (opens, closes) = (agilekit_kernel::clock::stamp(now - time::Duration::hours(2)), agilekit_kernel::clock::stamp(now - time::Duration::minutes(1)));
    let id: uuid::Uuid = call.parse().unwrap();
    let sql = "UPDATE grant_calls SET opens_at = $1, closes_at = $2 WHERE id = $3";
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => {
            sqlx::query(sql).bind(opens).bind(closes).bind(id).execute(p).await.unwrap();
        }
        agilekit_kernel::Db::Postgres(p) => {
            sqlx::query(sql).bind(opens).bind(closes).bind(id).execute(p).await.unwrap();
        }
    }
}

async fn count(app: &TestApp, sql: &'static str, a: &str, b: &str) -> i64 {
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(p).await.unwrap(),
    }
}

async fn mails(app: &TestApp, pec: &str, text: &str) -> i64 {
    count(app, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE $1 AND payload LIKE $2", &format!("%{pec}%"), &format!("%{text}%")).await
}

async fn audits(app: &TestApp, action: &str, entity: &str) -> i64 {
    count(app, "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND entity_id = $2", action, entity).await
}

/// `n` companies (`base`, `base+1`, …) of 12 employees (EUR 10,500 each) submit to the call in that order.
async fn submissions(app: &TestApp, anna: &Client, call_id: &str, base: u32, n: u32) -> Vec<String> {
    let mut out = Vec::new();
    for k in base..base + n {
        let c = company(app, anna, k, 12).await;
        let a = open_application(app, anna, &c, call_id, complete()).await;
        let (s, r, text) = call(anna, "POST", app.at(&format!("/api/v1/companies/{c}/applications/{a}/submit")), None, Some(&format!("r{k}"))).await;
        assert_eq!(s, 200, "{text}");
        assert_eq!(r["place"], Value::Null, "a ranked call places nobody at submission");
        out.push(a);
    }
    out
}

fn scores(q: i64, i: i64) -> Value {
    json!({"scores": {"qualita": q, "impatto": i}, "notes": {"qualita": "Piano chiaro."}})
}

both_engines!(evaluators_declare_and_score_then_the_published_ranking_funds_down_its_order, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let evaluator = app.login("valutatore@regione.example").await;
    let (org, call_id) = ranked_call(&app, 25_000).await;
    let apps = submissions(&app, &anna, &call_id, 5101, 4).await;
    let base = format!("/api/v1/orgs/{org}/calls/{call_id}/evaluation");
    let one = |a: &str| format!("{base}/applications/{a}");
    // Evaluators find their way in from the home page; other members have no such link.
    let link = format!("href=\"/orgs/{org}/evaluation\"");
    assert!(evaluator.get(app.at("/")).send().await.unwrap().text().await.unwrap().contains(&link), "the evaluator's home page");
    let clerk = app.login("dipendente@regione.example").await;
    assert!(!clerk.get(app.at("/")).send().await.unwrap().text().await.unwrap().contains(&link), "an employee's home page");

    // Before the call closes: nothing listed, nothing declared or scored.
    let v = expect(&app, &evaluator, "GET", &base, None, 200).await;
    assert_eq!((v["closed"].as_bool(), v["lines"].as_array().unwrap().len()), (Some(false), 0));
    let (s, v, _) = call(&evaluator, "POST", app.at(&format!("{}/declaration", one(&apps[0]))), Some(json!({"conflict": false})), None).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("call-not-closed")), "{v}");
    let (s, v, _) = call(&evaluator, "POST", app.at(&format!("{}/scores", one(&apps[0]))), Some(scores(7, 3)), None).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("call-not-closed")), "{v}");
    let v = expect(&app, &admin, "POST", &format!("{base}/ranking/publish"), None, 409).await;
    assert_eq!(v["code"], "call-not-closed");

    close(&app, &call_id).await;
    let v = expect(&app, &evaluator, "GET", &base, None, 200).await;
    let protocols: Vec<i64> = v["lines"].as_array().unwrap().iter().map(|l| l["protocol"].as_i64().unwrap()).collect();
    assert_eq!(protocols, [1, 2, 3, 4]);
    assert_eq!(v["criteria"][0]["code"], "qualita");
    // Undeclared: the line, no content; no scoring yet.
    let v = expect(&app, &evaluator, "GET", &one(&apps[0]), None, 200).await;
    assert_eq!((v["draft"].clone(), v["line"]["declaration"].clone()), (Value::Null, Value::Null));
    let v = expect(&app, &evaluator, "POST", &format!("{}/scores", one(&apps[0])), Some(scores(7, 3)), 409).await;
    assert_eq!(v["code"], "declaration-required");
    // A conflict needs its reason.
    let before = audit_head(&app.db).await;
    let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[3])), Some(json!({"conflict": true, "reason": "  "})), 422).await;
    assert_eq!(fields(&v), [("reason".to_owned(), "required".to_owned())]);
    assert_eq!(audit_head(&app.db).await, before);

    // The evaluator: no conflict on 1-3, a conflict on 4 (which is then out of reach, for good).
    for a in &apps[..3] {
        let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(a)), Some(json!({"conflict": false})), 200).await;
        assert_eq!(v["draft"]["plan"], "Portatili e formazione per il lavoro agile.");
    }
    let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[3])), Some(json!({"conflict": true, "reason": "Consulente dell'impresa nel 2025."})), 200).await;
    assert_eq!((v["draft"].clone(), v["line"]["declaration"]["reason"].as_str()), (Value::Null, Some("Consulente dell'impresa nel 2025.")));
    expect(&app, &evaluator, "GET", &one(&apps[3]), None, 404).await;
    expect(&app, &evaluator, "POST", &format!("{}/scores", one(&apps[3])), Some(scores(9, 5)), 403).await;
    let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[3])), Some(json!({"conflict": false})), 409).await;
    assert_eq!(v["code"], "declaration-final");
    let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[0])), Some(json!({"conflict": false})), 409).await;
    assert_eq!(v["code"], "already-declared");
    let line = &expect(&app, &evaluator, "GET", &base, None, 200).await["lines"][3];
    assert_eq!((line["company_name"].as_str(), line["declaration"]["conflict"].as_bool()), (Some("Impresa 5104 S.r.l."), Some(true)));
    assert_eq!(audits(&app, "evaluation.declare", &apps[3]).await, 1);

    // Bad scores: field errors by criterion code, nothing stored.
    let v = expect(&app, &evaluator, "POST", &format!("{}/scores", one(&apps[0])), Some(json!({"scores": {"qualita": 11}})), 422).await;
    assert_eq!(fields(&v), [("scores.qualita".to_owned(), "out-of-range".to_owned()), ("scores.impatto".to_owned(), "required".to_owned())]);
    let v = expect(&app, &evaluator, "POST", &format!("{}/scores", one(&apps[0])), Some(json!({"scores": {"qualita": "sette", "impatto": "-1", "bonus": 3}})), 422).await;
    assert_eq!(fields(&v), [("scores.qualita".to_owned(), "not-a-number".to_owned()), ("scores.impatto".to_owned(), "out-of-range".to_owned()), ("scores.bonus".to_owned(), "unknown-criterion".to_owned())]);
    assert_eq!(expect(&app, &evaluator, "GET", &one(&apps[0]), None, 200).await["scores"], json!([]));

    // The evaluator scores 1-3; on 3 a conflict turns up afterwards, which takes the scores away.
    for (a, (q, i)) in apps.iter().zip([(7, 3), (8, 2), (0, 0)]) {
        let v = expect(&app, &evaluator, "POST", &format!("{}/scores", one(a)), Some(scores(q, i)), 200).await;
        assert_eq!((v["scores"][0]["points"].as_i64(), v["scores"][0]["note"].as_str(), v["line"]["scored"].as_bool()), (Some(q), Some("Piano chiaro."), Some(true)));
    }
    let v = expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[2])), Some(json!({"conflict": true, "reason": "Parente del legale rappresentante."})), 200).await;
    assert_eq!(v["scores"], json!([]));
    assert_eq!(audits(&app, "evaluation.conflict", &apps[2]).await, 1);
    expect(&app, &evaluator, "GET", &one(&apps[2]), None, 404).await;

    // The administrator evaluates all four; with 4 unscored the ranking cannot be published yet.
    for (a, (q, i)) in apps.iter().zip([(8, 3), (8, 2), (6, 4), (8, 2)]) {
        expect(&app, &admin, "POST", &format!("{}/declaration", one(a)), Some(json!({"conflict": false})), 200).await;
        if a != &apps[3] {
            expect(&app, &admin, "POST", &format!("{}/scores", one(a)), Some(scores(q, i)), 200).await;
        }
    }
    let r = expect(&app, &admin, "GET", &format!("{base}/ranking"), None, 200).await;
    assert_eq!((r["can_publish"].as_bool(), r["unscored"][0]["protocol"].as_i64()), (Some(false), Some(4)));
    assert_eq!(expect(&app, &admin, "POST", &format!("{base}/ranking/publish"), None, 409).await["code"], "unscored-applications");
    expect(&app, &admin, "POST", &format!("{}/scores", one(&apps[3])), Some(scores(8, 2)), 200).await;

    // The provisional ranking: 1 (7.5 + 3 = 10.50) first; 3, 2 and 4 tie at 10.00; impatto puts 3 (4.00) ahead of
    // 2 and 4 (2.00), which the protocol orders. EUR 25,000 fund two grants of 10,500.
    let r = expect(&app, &admin, "GET", &format!("{base}/ranking"), None, 200).await;
    let lines = r["lines"].as_array().unwrap();
    let got: Vec<(i64, i64, i64, u64, &str)> = lines.iter().map(|l| (l["position"].as_i64().unwrap(), l["protocol"].as_i64().unwrap(), l["score"].as_i64().unwrap(), l["evaluators"].as_u64().unwrap(), l["place"].as_str().unwrap())).collect();
    assert_eq!(got, [(1, 1, 1050, 2, "admitted"), (2, 3, 1000, 1, "admitted"), (3, 2, 1000, 2, "waiting"), (4, 4, 1000, 1, "waiting")]);
    assert_eq!(lines[0]["criteria"], json!([{"code": "qualita", "score": 750}, {"code": "impatto", "score": 300}]));
    assert_eq!((r["can_publish"].as_bool(), r["published_at"].clone(), r["committed_cents"].as_i64()), (Some(true), Value::Null, Some(0)));
    // Evaluators do not see or publish the ranking.
    expect(&app, &evaluator, "GET", &format!("{base}/ranking"), None, 403).await;
    expect(&app, &evaluator, "POST", &format!("{base}/ranking/publish"), None, 403).await;

    // Publication: places and money frozen down the ranking, every PEC told, audited; once.
    let r = expect(&app, &admin, "POST", &format!("{base}/ranking/publish"), None, 200).await;
    assert!(r["published_at"].is_string());
    assert_eq!((r["committed_cents"].as_i64(), r["budget_cents"].as_i64(), r["can_publish"].as_bool()), (Some(2_100_000), Some(2_500_000), Some(false)));
    let positions: Vec<&str> = r["lines"].as_array().unwrap().iter().map(|l| l["application_id"].as_str().unwrap()).collect();
    assert_eq!(positions, [apps[0].as_str(), apps[2].as_str(), apps[1].as_str(), apps[3].as_str()]);
    let call_view = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}"), None, 200).await;
    assert_eq!(call_view["committed_cents"], 2_100_000);
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}/applications"), None, 200).await;
    let place = |a: &str| list.as_array().unwrap().iter().find(|x| x["receipt"]["application_id"] == a).unwrap()["receipt"]["place"].clone();
    assert_eq!([place(&apps[0]), place(&apps[1]), place(&apps[2]), place(&apps[3])], [json!("admitted"), json!("waiting"), json!("admitted"), json!("waiting")]);
    for (n, funded) in [(5101, true), (5102, false), (5103, true), (5104, false)] {
        let pec = format!("impresa{n}@pec.example.it");
        assert_eq!(mails(&app, &pec, "Graduatoria pubblicata").await, 1, "{pec}");
        assert_eq!(mails(&app, &pec, "domanda finanziata").await, i64::from(funded), "{pec}");
        assert_eq!(mails(&app, &pec, "ammissibile non finanziata").await, i64::from(!funded), "{pec}");
    }
    assert_eq!(audits(&app, "ranking.publish", &call_id).await, 1);
    let before = audit_head(&app.db).await;
    assert_eq!(expect(&app, &admin, "POST", &format!("{base}/ranking/publish"), None, 409).await["code"], "ranking-published");
    assert_eq!(expect(&app, &admin, "POST", &format!("{}/scores", one(&apps[1])), Some(scores(1, 1)), 409).await["code"], "ranking-published");
    assert_eq!(expect(&app, &evaluator, "POST", &format!("{}/declaration", one(&apps[1])), Some(json!({"conflict": true, "reason": "x"})), 409).await["code"], "ranking-published");
    assert_eq!(audit_head(&app.db).await, before);
    // The open data list reads the published ranking: rank, company, score, amount, place.
    let call_uuid: agilekit_grants::calls::model::CallId = call_id.parse().unwrap();
    let published = agilekit_grants::ranking::service::published(&app.db, call_uuid).await.unwrap();
    let got: Vec<(i64, i64, i64, Option<&str>)> = published.iter().map(|p| (p.rank, p.score, p.amount_cents, p.place.as_deref())).collect();
    assert_eq!(got, [(1, 1050, 1_050_000, Some("admitted")), (2, 1000, 1_050_000, Some("admitted")), (3, 1000, 1_050_000, Some("waiting")), (4, 1000, 1_050_000, Some("waiting"))]);
    assert_eq!(published[1].company_id.to_string(), r["lines"][1]["company_id"].as_str().unwrap());
    // The published ranking stays as published.
    let again = expect(&app, &admin, "GET", &format!("{base}/ranking"), None, 200).await;
    assert_eq!(again["lines"], r["lines"]);

    // The ranking as open data (CC-BY 4.0): refused before publication was tested above by the a-sportello
    // calls' tests; now its rows in ranking order, with position and score, and the company data only.
    api_expect(&app, &admin, "POST", &format!("/api/v1/orgs/{org}/calls/{call_id}/opendata"), Some(json!({"list": "ranked"})), 201).await;
    let public = app.client();
    let data: Value = public.get(app.at(&format!("/opendata/calls/{call_id}/ranked.json"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(data["license"], "CC-BY-4.0");
    let rows: Vec<(i64, i64, &str)> = data["rows"].as_array().unwrap().iter().map(|r| (r["rank"].as_i64().unwrap(), r["score_hundredths"].as_i64().unwrap(), r["place"].as_str().unwrap())).collect();
    assert_eq!(rows, [(1, 1050, "admitted"), (2, 1000, "admitted"), (3, 1000, "waiting"), (4, 1000, "waiting")]);
    assert_eq!(data["rows"][0]["protocol"], 1);
    assert!(!data.to_string().contains("pec.example.it"), "no PEC in open data: {data}");
    let csv = public.get(app.at(&format!("/opendata/calls/{call_id}/ranked.csv"))).send().await.unwrap().text().await.unwrap();
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert!(lines.next().unwrap().starts_with("graduatoria,punteggio,protocollo,"), "{csv}");
    assert!(lines.next().unwrap().starts_with("1,10.50,1,"), "{csv}");

    // Money coming back is drawn down the ranking, not by protocol: with the stored positions of the two waiting
    // applications swapped (protocol 4 now third, protocol 2 fourth), the first one's withdrawal admits protocol 4.
    let id: uuid::Uuid = call_id.parse().unwrap();
    for (from, to) in [(3_i64, 1000_i64), (4, 3), (1000, 4)] {
        let sql = "UPDATE grant_ranking_entries SET position = $1 WHERE call_id = $2 AND position = $3";
        match &app.db {
            agilekit_kernel::Db::Sqlite(p) => {
                sqlx::query(sql).bind(to).bind(id).bind(from).execute(p).await.unwrap();
            }
            agilekit_kernel::Db::Postgres(p) => {
                sqlx::query(sql).bind(to).bind(id).bind(from).execute(p).await.unwrap();
            }
        }
    }
    let first = list.as_array().unwrap().iter().find(|x| x["receipt"]["application_id"] == apps[0].as_str()).unwrap()["receipt"]["company_id"].as_str().unwrap().to_owned();
    expect(&app, &anna, "POST", &format!("/api/v1/companies/{first}/applications/{}/withdraw", apps[0]), None, 200).await;
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}/applications"), None, 200).await;
    let place = |a: &str| list.as_array().unwrap().iter().find(|x| x["receipt"]["application_id"] == a).unwrap()["receipt"]["place"].clone();
    assert_eq!([place(&apps[1]), place(&apps[3])], [json!("waiting"), json!("admitted")], "drawn in ranking order");
    // A budget increase draws the rest of the ranking too.
    let v = expect(&app, &admin, "PUT", &format!("/api/v1/orgs/{org}/calls/{call_id}/budget"), Some(json!({"budget": "40.000,00"})), 200).await;
    assert_eq!((v["drawn"].as_i64(), v["committed_cents"].as_i64()), (Some(1), Some(3_150_000)), "{v}");
    let list = expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{call_id}/applications"), None, 200).await;
    assert_eq!(list.as_array().unwrap().iter().find(|x| x["receipt"]["application_id"] == apps[1].as_str()).unwrap()["receipt"]["place"], "admitted");
    app
});

both_engines!(nobody_outside_the_organisation_reaches_the_evaluation, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let arpa = app.login("admin@arpa.example").await;
    let hr = app.login("hr@regione.example").await;
    let admin = app.login("admin@regione.example").await;
    let (org, call_id) = ranked_call(&app, 25_000).await;
    let apps = submissions(&app, &anna, &call_id, 5201, 1).await;
    close(&app, &call_id).await;
    let before = audit_head(&app.db).await;
    let arpa_org = app.org_id("arpa_lom").await.to_string();
    for (m, template, body) in SCOPED_ROUTES {
        let path = template.replace("{org}", &org).replace("{call}", &call_id).replace("{application}", &apps[0]);
        let send = |c: &Client, path: String| {
            let rb = c.request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), app.at(&path));
            let rb = match (path.starts_with("/api/"), body.is_empty()) {
                (_, true) => rb,
                (true, false) => rb.header("content-type", "application/json").body(body.to_string()),
                (false, false) => rb.header("content-type", "application/x-www-form-urlencoded").body(body.to_string()),
            };
            async move { rb.send().await.unwrap().status().as_u16() }
        };
        // Another organisation's administrator, and the company's representative: 404. A member without the role: 403.
        assert_eq!(send(&arpa, path.clone()).await, 404, "{m} {path} (other organisation)");
        assert_eq!(send(&anna, path.clone()).await, 404, "{m} {path} (company)");
        assert_eq!(send(&hr, path.clone()).await, 403, "{m} {path} (no role)");
        // The call under another organisation's id (one the region's administrator may reach): 404 all the same.
        if !template.contains("{call}") {
            continue;
        }
        let elsewhere = template.replace("{org}", &arpa_org).replace("{call}", &call_id).replace("{application}", &apps[0]);
        assert_eq!(send(&admin, elsewhere.clone()).await, 404, "{m} {elsewhere} (call of another organisation)");
    }
    assert_eq!(audit_head(&app.db).await, before);
    // A call a sportello has no evaluation.
    let (_, sportello) = crate::grants_applications::published_call(&app, 10_000, -1).await;
    expect(&app, &admin, "GET", &format!("/api/v1/orgs/{org}/calls/{sportello}/evaluation"), None, 404).await;
    app
});

async fn page(app: &TestApp, c: &Client, path: &str, want: u16) -> String {
    let r = c.get(app.at(path)).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        assert!(r.headers()["cache-control"].to_str().unwrap().contains("no-store"), "{path} may be cached");
    }
    let text = r.text().await.unwrap();
    assert_eq!(status, want, "GET {path}: {text}");
    text
}

async fn post_form(app: &TestApp, c: &Client, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

both_engines!(the_pages_declare_score_keep_what_was_typed_and_publish_after_confirmation, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login("admin@regione.example").await;
    let evaluator = app.login("valutatore@regione.example").await;
    let (org, call_id) = ranked_call(&app, 15_000).await;
    let apps = submissions(&app, &anna, &call_id, 5301, 2).await;
    let list = format!("/orgs/{org}/calls/{call_id}/evaluation");
    assert!(page(&app, &evaluator, &list, 200).await.contains("La valutazione comincia alla chiusura del bando."));
    close(&app, &call_id).await;

    // The evaluators' index leads to the call's evaluation.
    let html = page(&app, &evaluator, &format!("/orgs/{org}/evaluation"), 200).await;
    assert!(html.contains(&format!("<a href=\"{list}\">Premio lavoro agile di prova</a>")) && html.contains("In valutazione"), "{html}");
    let html = page(&app, &evaluator, &list, 200).await;
    assert!(html.contains("Impresa 5301 S.r.l.") && html.contains("Impresa 5302 S.r.l.") && html.contains("Da dichiarare"), "{html}");
    let one = format!("{list}/{}", apps[0]);
    let html = page(&app, &evaluator, &one, 200).await;
    assert!(html.contains("id=\"declare-form\"") && !html.contains("Portatili e formazione"), "no content before the declaration");

    // No choice, then a conflict without its reason: 422, what was chosen kept.
    let (s, _, html) = post_form(&app, &evaluator, &format!("{one}/declaration"), &[("form", "declare"), ("reason", "")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"error-summary\"") && html.contains("href=\"#f-declare-conflict\""), "{html}");
    let (s, _, html) = post_form(&app, &evaluator, &format!("{one}/declaration"), &[("form", "declare"), ("conflict", "yes"), ("reason", " ")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("value=\"yes\" id=\"f-declare-conflict-yes\" checked"), "{html}");
    assert!(html.contains("id=\"f-declare-reason-error\"") && html.contains("href=\"#f-declare-reason\""), "{html}");
    // No conflict: the content and the grid.
    let (s, to, _) = post_form(&app, &evaluator, &format!("{one}/declaration"), &[("form", "declare"), ("conflict", "no"), ("reason", "")]).await;
    assert_eq!((s, to.as_str()), (303, format!("{one}?done=declared").as_str()));
    let html = page(&app, &evaluator, &to, 200).await;
    assert!(html.contains("Portatili e formazione per il lavoro agile.") && html.contains("name=\"points.qualita\"") && html.contains("Dichiarazione registrata."), "{html}");

    // Bad points: errors beside the fields and in the summary, everything typed kept.
    let (s, _, html) = post_form(&app, &evaluator, &format!("{one}/scores"), &[("points.qualita", "11"), ("note.qualita", "Piano ambizioso"), ("points.impatto", ""), ("note.impatto", "Da rivedere")]).await;
    assert_eq!(s, 422);
    for needle in ["value=\"11\"", "Piano ambizioso", "Da rivedere", "id=\"f-scores-points-qualita-error\"", "id=\"f-scores-points-impatto-error\"",
        "href=\"#f-scores-points-qualita\"", "Il punteggio è fuori dall&#39;intervallo consentito.", "Qualità del piano: "] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    let (s, to, _) = post_form(&app, &evaluator, &format!("{one}/scores"), &[("points.qualita", "9"), ("note.qualita", "Piano ambizioso"), ("points.impatto", "4"), ("note.impatto", "")]).await;
    assert_eq!((s, to.as_str()), (303, format!("{list}?done=scored").as_str()));
    let html = page(&app, &evaluator, &one, 200).await;
    assert!(html.contains("value=\"9\"") && html.contains("Piano ambizioso"), "the stored scores are shown");

    // A conflict on the second one: back to the list, where it is only a line.
    let two = format!("{list}/{}", apps[1]);
    let (s, to, _) = post_form(&app, &evaluator, &format!("{two}/declaration"), &[("form", "declare"), ("conflict", "yes"), ("reason", "Socio dell'impresa.")]).await;
    assert_eq!((s, to.as_str()), (303, format!("{list}?done=conflict").as_str()));
    page(&app, &evaluator, &two, 404).await;
    let html = page(&app, &evaluator, &list, 200).await;
    assert!(html.contains("Conflitto di interessi dichiarato") && !html.contains(&format!("href=\"{two}\"")), "{html}");

    // The administrator scores the second; the evaluator cannot open the ranking.
    let api = format!("/api/v1/orgs/{org}/calls/{call_id}/evaluation/applications/{}", apps[1]);
    expect(&app, &admin, "POST", &format!("{api}/declaration"), Some(json!({"conflict": false})), 200).await;
    expect(&app, &admin, "POST", &format!("{api}/scores"), Some(scores(10, 5)), 200).await;
    let ranking = format!("/orgs/{org}/calls/{call_id}/ranking");
    page(&app, &evaluator, &ranking, 403).await;
    let html = page(&app, &admin, &ranking, 200).await;
    assert!(html.contains("Graduatoria provvisoria") && html.contains(&format!("href=\"{ranking}/publish\"")), "{html}");
    // 5302 (15.00) above 5301 (13.00); EUR 15,000 fund one grant of 10,500.
    let first = html.find("Impresa 5302").unwrap();
    assert!(first < html.find("Impresa 5301").unwrap());
    assert!(html.contains("15,00") && html.contains("13,00") && html.contains("Ammissibile non finanziata"), "{html}");

    // Publication: a confirmation page, then POST; once.
    let html = page(&app, &admin, &format!("{ranking}/publish"), 200).await;
    assert!(html.contains(&format!("action=\"{ranking}/publish\"")), "{html}");
    let (s, to, _) = post_form(&app, &admin, &format!("{ranking}/publish"), &[]).await;
    assert_eq!((s, to.as_str()), (303, format!("{ranking}?done=published").as_str()));
    let html = page(&app, &admin, &format!("{ranking}?done=published"), 200).await;
    assert!(html.contains("Graduatoria pubblicata") && !html.contains(&format!("href=\"{ranking}/publish\"")), "{html}");
    let (s, _, html) = post_form(&app, &admin, &format!("{ranking}/publish"), &[]).await;
    assert_eq!(s, 409);
    assert!(html.contains("La graduatoria è già pubblicata."), "{html}");
    // Read-only from now on.
    let html = page(&app, &evaluator, &one, 200).await;
    assert!(!html.contains("id=\"scores-form\"") && !html.contains("id=\"conflict-form\""), "{html}");
    // In English too.
    let (s, _, _) = post_form(&app, &admin, "/lang", &[("lang", "en")]).await;
    assert!(s == 303 || s == 200, "{s}");
    let html = page(&app, &admin, &ranking, 200).await;
    assert!(html.contains("Published ranking") && html.contains("Eligible, not funded"), "{html}");
    app
});
