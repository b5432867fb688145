//! Funding calls through the API on both engines: an organisation's administrators define a call, every bad field is
//! named by its path, publication makes it readable by anyone (signed out too) with its FAQ, the rules stand still
//! once it has opened, and nobody outside the organisation's administrators touches its calls.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;
use crate::helpers::{api_expect as expect, field_errors as fields};

async fn call(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    api_call(c, method, url, body, None).await
}

/// An organisation's call routes, tried with another organisation's ids.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/calls", ""),
    ("POST", "/api/v1/orgs/{org}/calls", ""),
    ("GET", "/api/v1/orgs/{org}/calls/{call}", ""),
    ("PUT", "/api/v1/orgs/{org}/calls/{call}", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/publish", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/faqs", r#"{"question":"Q?","answer":"A."}"#),
    ("PUT", "/api/v1/orgs/{org}/calls/{call}/faqs/{faq}", r#"{"question":"Q?","answer":"A."}"#),
    ("DELETE", "/api/v1/orgs/{org}/calls/{call}/faqs/{faq}", ""),
];

/// Published calls: public by design.
pub const UNSCOPED_ROUTES: &[&str] = &["/api/v1/calls", "/api/v1/calls/{call}"];



/// The `id`s of a JSON list.
fn ids(v: &Value) -> Vec<String> {
    v.as_array().expect("a list").iter().map(|c| c["id"].as_str().expect("an id").to_owned()).collect()
}

fn instant(days_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days_from_now);
    t.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// The 2020 "Avviso smartworking", opening `opens` days from now.
fn avviso(opens: i64) -> Value {
    json!({
        "title": "Avviso smartworking", "summary": "Contributi alle imprese lombarde per piani di smart working.",
        "body": "## Finalità\nSostenere i piani aziendali di smart working.", "budget_cents": 4_500_000_00_i64,
        "mode": "sportello",
        "grant_rule": {"kind": "bands", "bands": [
            {"min_employees": 3, "max_employees": 10, "amount": 750_000},
            {"min_employees": 11, "max_employees": 20, "amount": 1_050_000},
            {"min_employees": 21, "max_employees": 30, "amount": 1_500_000},
            {"min_employees": 31, "max_employees": null, "amount": 2_250_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"},
                       {"code": "strumenti", "label": "Strumenti tecnologici", "max_share_bp": 3333}],
        "eligibility": {"min_employees": 3, "excluded_sectors": ["01", "64.19"], "site_region": "03"},
        "required_attachments": [{"code": "piano", "label": "Piano di smart working"}],
        "opens_at": instant(opens), "closes_at": instant(opens + 30), "de_minimis": true
    })
}


both_engines!(administrators_define_and_publish_a_call_that_anyone_reads_with_its_faq, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let calls = format!("/api/v1/orgs/{region}/calls");
    // The demo's two published calls are there already.
    let anyone = app.client();
    let demo = ids(&expect(&app, &anyone, "GET", "/api/v1/calls", None, 200).await);
    assert_eq!(demo.len(), agilekit_server::demo::DEMO_CALLS.len());
    let c = expect(&app, &admin, "POST", &calls, Some(avviso(10)), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["phase"], "draft");
    assert_eq!(c["grant_rule"]["bands"][3]["amount"], 2_250_000);
    assert_eq!(c["eligibility"]["excluded_sectors"], json!(["01", "64.19"]));
    assert_eq!(c["org_name"], "Regione Lombardia");
    // A draft is not public.
    assert_eq!(ids(&expect(&app, &anyone, "GET", "/api/v1/calls", None, 200).await), demo);
    expect(&app, &anyone, "GET", &format!("/api/v1/calls/{id}"), None, 404).await;

    // Edited, then published.
    let mut changed = avviso(10);
    changed["title"] = json!("Avviso smartworking 2027");
    expect(&app, &admin, "PUT", &format!("{calls}/{id}"), Some(changed), 200).await;
    let c = expect(&app, &admin, "POST", &format!("{calls}/{id}/publish"), None, 200).await;
    assert_eq!(c["phase"], "upcoming");
    let v = expect(&app, &admin, "POST", &format!("{calls}/{id}/publish"), None, 409).await;
    assert_eq!(v["code"], "already-published");

    let faq = expect(&app, &admin, "POST", &format!("{calls}/{id}/faqs"), Some(json!({"question": "Chi può partecipare?", "answer": "Le imprese con almeno 3 dipendenti."})), 201).await;
    let faq_id = faq["id"].as_str().unwrap();
    expect(&app, &admin, "PUT", &format!("{calls}/{id}/faqs/{faq_id}"), Some(json!({"question": "Chi può partecipare?", "answer": "Le PMI lombarde con almeno 3 dipendenti."})), 200).await;
    let v = expect(&app, &admin, "POST", &format!("{calls}/{id}/faqs"), Some(json!({"question": " ", "answer": ""})), 422).await;
    assert_eq!(fields(&v), [("question".to_owned(), "required".to_owned()), ("answer".to_owned(), "required".to_owned())]);

    // Anyone, signed out, reads it with its FAQ.
    let list = ids(&expect(&app, &anyone, "GET", "/api/v1/calls", None, 200).await);
    assert_eq!((list.len(), list.contains(&id)), (demo.len() + 1, true));
    let c = expect(&app, &anyone, "GET", &format!("/api/v1/calls/{id}"), None, 200).await;
    assert_eq!(c["title"], "Avviso smartworking 2027");
    assert_eq!(c["faqs"][0]["answer"], "Le PMI lombarde con almeno 3 dipendenti.");
    expect(&app, &admin, "DELETE", &format!("{calls}/{id}/faqs/{faq_id}"), None, 204).await;
    assert_eq!(expect(&app, &anyone, "GET", &format!("/api/v1/calls/{id}"), None, 200).await["faqs"], json!([]));
    app
});

both_engines!(bad_calls_name_every_field_by_path, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let mut bad = avviso(10);
    bad["title"] = json!("");
    bad["budget_cents"] = json!(-5);
    bad["mode"] = json!("lotteria");
    bad["grant_rule"]["bands"][1]["min_employees"] = json!(12);
    bad["categories"][1]["code"] = json!("consulenza");
    bad["eligibility"]["excluded_sectors"] = json!(["01", "6x"]);
    bad["eligibility"]["site_region"] = json!("42");
    bad["closes_at"] = json!(instant(5));
    let v = expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(bad), 422).await;
    let f = fields(&v);
    for (field, code) in [("title", "required"), ("budget_cents", "not-positive"), ("mode", "unknown-mode"),
        ("grant_rule.bands.1.min_employees", "not-contiguous"), ("categories.1.code", "duplicate"),
        ("eligibility.excluded_sectors.1", "format"), ("eligibility.site_region", "unknown-region"), ("closes_at", "not-after-opening")] {
        assert!(f.contains(&(field.to_owned(), code.to_owned())), "{field} {code} in {f:?}");
    }
    let mut ranked = avviso(10);
    ranked["mode"] = json!("graduatoria");
    let v = expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(ranked), 422).await;
    assert_eq!(fields(&v), [("criteria".to_owned(), "required".to_owned())]);
    let (s, v, _) = call(&admin, "POST", app.at(&format!("/api/v1/orgs/{region}/calls")), Some(json!({"budget_cents": "tanti"}))).await;
    assert_eq!(s, 422);
    assert!(v.to_string().contains("budget_cents"), "{v}");
    // Nothing stored: only the demo's calls.
    let stored = ids(&expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls"), None, 200).await);
    assert_eq!(stored.len(), agilekit_server::demo::DEMO_CALLS.len(), "{stored:?}");
    app
});

both_engines!(an_opened_call_keeps_its_rules_and_only_administrators_with_the_service_define_calls, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let admin = app.login("admin@regione.example").await;
    let calls = format!("/api/v1/orgs/{region}/calls");
    let id = expect(&app, &admin, "POST", &calls, Some(avviso(-1)), 201).await["id"].as_str().unwrap().to_owned();
    // Before publication the draft may change even though its opening has passed; once published it is open.
    expect(&app, &admin, "PUT", &format!("{calls}/{id}"), Some(avviso(-1)), 200).await;
    assert_eq!(expect(&app, &admin, "POST", &format!("{calls}/{id}/publish"), None, 200).await["phase"], "open");
    let v = expect(&app, &admin, "PUT", &format!("{calls}/{id}"), Some(avviso(3)), 409).await;
    assert_eq!(v["code"], "call-opened");
    // A closed draft cannot be published.
    let mut closed = avviso(-40);
    closed["closes_at"] = json!(instant(-2));
    let old = expect(&app, &admin, "POST", &calls, Some(closed), 201).await["id"].as_str().unwrap().to_owned();
    assert_eq!(expect(&app, &admin, "POST", &format!("{calls}/{old}/publish"), None, 409).await["code"], "call-closed");

    // An employee of the region: 403. An administrator of an organisation without the service: 403 on its own.
    let employee = app.login("dipendente@regione.example").await;
    expect(&app, &employee, "GET", &calls, None, 403).await;
    expect(&app, &employee, "POST", &calls, Some(avviso(10)), 403).await;
    let arpa_admin = app.login("admin@arpa.example").await;
    expect(&app, &arpa_admin, "POST", &format!("/api/v1/orgs/{arpa}/calls"), Some(avviso(10)), 403).await;
    expect(&app, &app.client(), "GET", &calls, None, 401).await;
    app
});

both_engines!(another_organisations_calls_answer_404_with_nothing_and_change_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let calls = format!("/api/v1/orgs/{region}/calls");
    let mut secret = avviso(10);
    secret["title"] = json!("Bando riservato in preparazione");
    let id = expect(&app, &admin, "POST", &calls, Some(secret), 201).await["id"].as_str().unwrap().to_owned();
    let faq = expect(&app, &admin, "POST", &format!("{calls}/{id}/faqs"), Some(json!({"question": "Domanda segreta?", "answer": "Risposta."})), 201).await;
    let faq_id = faq["id"].as_str().unwrap().to_owned();
    let before = audit_head(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    for (method, template, body) in SCOPED_ROUTES {
        let path = template.replace("{org}", &region.to_string()).replace("{call}", &id).replace("{faq}", &faq_id);
        let body = if body.is_empty() { (*method != "GET" && *method != "DELETE").then(|| avviso(10)) } else { Some(serde_json::from_str(body).unwrap()) };
        let (s, _, text) = call(&attacker, method, app.at(&path), body.clone()).await;
        assert_eq!(s, 404, "{method} {path}: {s} {text}");
        assert!(!text.contains("riservato") && !text.contains("segreta"), "{method} {path} leaked: {text}");
        let (s, _, _) = call(&app.client(), method, app.at(&path), body).await;
        assert_eq!(s, 401, "{method} {path} signed out");
    }
    // The draft is not public either.
    let (s, _, text) = call(&attacker, "GET", app.at(&format!("/api/v1/calls/{id}")), None).await;
    assert_eq!(s, 404, "{text}");
    assert_eq!(audit_head(&app.db).await, before, "nothing audited, so nothing changed");
    app
});
