//! Companies that apply for funding calls, through the API on both engines: registration with checked identifiers,
//! field errors that name every bad field, one registration per partita IVA, delegation (owners add delegates;
//! delegates act but do not delegate; the last owner cannot leave), declared de minimis aid and the position it
//! gives, and another person's company: 404, no data, no change.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;
use crate::helpers::{api_expect as expect, field_errors as fields};

async fn call(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    api_call(c, method, url, body, None).await
}

/// The company routes, tried by another person with the victim's company, account and aid ids.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/companies/{company}", ""),
    ("PUT", "/api/v1/companies/{company}", ""),
    ("GET", "/api/v1/companies/{company}/representatives", ""),
    ("POST", "/api/v1/companies/{company}/representatives", r#"{"email":"admin@comune.example"}"#),
    ("DELETE", "/api/v1/companies/{company}/representatives/{account}", ""),
    ("GET", "/api/v1/companies/{company}/aid", ""),
    ("POST", "/api/v1/companies/{company}/aid", r#"{"granted_on":"2025-01-10","amount_cents":100,"granting_body":"X"}"#),
    ("DELETE", "/api/v1/companies/{company}/aid/{aid}", ""),
];

/// The caller's own companies: what it lists and registers is its own.
pub const UNSCOPED_ROUTES: &[&str] = &["/api/v1/companies"];



fn company(piva: &str) -> Value {
    json!({
        "name": "Lavoro Agile S.r.l.", "partita_iva": piva, "pec": "lavoroagile@pec.example.it",
        "legal_rep_name": "Mario Rossi", "legal_rep_tax_code": "RSSMRA85T10A562S", "employees": 12,
        "sector": "62.01.00", "site_regions": ["03", "05"], "address": "Via Roma 1, Milano"
    })
}


both_engines!(a_person_registers_a_company_and_only_its_representatives_see_it, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let sara = app.login("dipendente@regione.example").await;
    let c = expect(&app, &anna, "POST", "/api/v1/companies", Some(company("12345678903")), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["tax_code"], "12345678903", "an empty codice fiscale is the partita IVA");
    assert_eq!(c["my_role"], "owner");
    assert_eq!(c["sector"], "62.01.00");
    assert_eq!(c["site_regions"][0]["name"], "Lombardia");
    // Hers, and the demo's company she represents.
    let mine = expect(&app, &anna, "GET", "/api/v1/companies", None, 200).await;
    let mut pivas: Vec<&str> = mine.as_array().unwrap().iter().map(|c| c["partita_iva"].as_str().unwrap()).collect();
    pivas.sort();
    assert_eq!(pivas, [agilekit_server::demo::DEMO_COMPANY_PIVA, "12345678903"]);
    assert_eq!(expect(&app, &anna, "GET", &format!("/api/v1/companies/{id}"), None, 200).await["name"], "Lavoro Agile S.r.l.");
    // Someone else: nothing listed, 404 on the id.
    assert_eq!(expect(&app, &sara, "GET", "/api/v1/companies", None, 200).await, json!([]));
    expect(&app, &sara, "GET", &format!("/api/v1/companies/{id}"), None, 404).await;
    // Signed out: 401.
    expect(&app, &app.client(), "GET", "/api/v1/companies", None, 401).await;

    // Edits keep the checks; a sole proprietor's personal codice fiscale (omocodia) is accepted.
    let mut changed = company("12345678903");
    changed["tax_code"] = json!("RSSMRA85T10A56NH");
    changed["employees"] = json!(31);
    let c = expect(&app, &anna, "PUT", &format!("/api/v1/companies/{id}"), Some(changed), 200).await;
    assert_eq!(c["tax_code"], "RSSMRA85T10A56NH");
    assert_eq!(c["employees"], 31);
    let audit: i64 = match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE entity = 'company' AND entity_id = $1").bind(&id).fetch_one(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE entity = 'company' AND entity_id = $1").bind(&id).fetch_one(p).await.unwrap(),
    };
    assert_eq!(audit, 2, "registration and edit audited");
    app
});

both_engines!(bad_company_input_names_every_field_and_a_partita_iva_registers_once, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let sara = app.login("dipendente@regione.example").await;
    let bad = json!({
        "name": "", "partita_iva": "12345678901", "tax_code": "XYZ", "pec": "non-una-pec", "legal_rep_name": "",
        "legal_rep_tax_code": "RSSMRA85T10A562X", "employees": -3, "sector": "6", "site_regions": ["03", "21"]
    });
    let v = expect(&app, &anna, "POST", "/api/v1/companies", Some(bad), 422).await;
    let f = fields(&v);
    for (field, code) in [("name", "required"), ("partita_iva", "check-digit"), ("pec", "format"), ("legal_rep_name", "required"),
        ("legal_rep_tax_code", "check-digit"), ("employees", "out-of-range"), ("sector", "format"), ("site_regions.1", "unknown-region")] {
        assert!(f.contains(&(field.to_owned(), code.to_owned())), "{field} {code} in {f:?}");
    }
    assert!(f.iter().any(|(field, _)| field == "tax_code"), "{f:?}");
    // A wrong JSON type names its field.
    let (s, v, _) = call(&anna, "POST", app.at("/api/v1/companies"), Some(json!({"employees": "twelve"}))).await;
    assert_eq!(s, 422);
    assert!(v.to_string().contains("employees"), "{v}");
    // Nothing was stored: only the demo's company.
    let mine = expect(&app, &anna, "GET", "/api/v1/companies", None, 200).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["partita_iva"], agilekit_server::demo::DEMO_COMPANY_PIVA);

    expect(&app, &anna, "POST", "/api/v1/companies", Some(company("12345678903")), 201).await;
    let v = expect(&app, &sara, "POST", "/api/v1/companies", Some(company("12345678903")), 422).await;
    assert_eq!(fields(&v), [("partita_iva".to_owned(), "already-registered".to_owned())]);
    // Concurrent registrations of one partita IVA: exactly one wins.
    let mut tasks = Vec::new();
    for who in ["admin@comune.example", "admin@arpa.example", "manager@regione.example", "hr@regione.example"] {
        let c = app.login(who).await;
        let url = app.at("/api/v1/companies");
        tasks.push(tokio::spawn(async move { call(&c, "POST", url, Some(company("98765432103"))).await.0 }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [201, 422, 422, 422], "one registration per partita IVA");
    app
});

both_engines!(owners_delegate_delegates_act_and_the_last_owner_stays, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let sara = app.login("dipendente@regione.example").await;
    let sara_id = app.account_id("dipendente@regione.example").await;
    let anna_id = app.account_id("cittadino@example.it").await;
    let id = expect(&app, &anna, "POST", "/api/v1/companies", Some(company("12345678903")), 201).await["id"].as_str().unwrap().to_owned();
    let reps = format!("/api/v1/companies/{id}/representatives");

    for (email, code) in [("nobody@example.it", "no-such-account"), ("not an email", "format"), ("cittadino@example.it", "already-representative")] {
        let v = expect(&app, &anna, "POST", &reps, Some(json!({"email": email})), 422).await;
        assert_eq!(fields(&v), [("email".to_owned(), code.to_owned())], "{email}");
    }
    let list = expect(&app, &anna, "POST", &reps, Some(json!({"email": "dipendente@regione.example"})), 201).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The delegate acts for the company (reads, edits, declares aid) but does not delegate.
    let c = expect(&app, &sara, "GET", &format!("/api/v1/companies/{id}"), None, 200).await;
    assert_eq!(c["my_role"], "delegate");
    let mut changed = company("12345678903");
    changed["name"] = json!("Lavoro Agile S.p.A.");
    expect(&app, &sara, "PUT", &format!("/api/v1/companies/{id}"), Some(changed), 200).await;
    expect(&app, &sara, "POST", &reps, Some(json!({"email": "admin@comune.example"})), 403).await;
    expect(&app, &sara, "DELETE", &format!("{reps}/{anna_id}"), None, 403).await;
    // The last owner cannot leave; a delegate can.
    let v = expect(&app, &anna, "DELETE", &format!("{reps}/{anna_id}"), None, 409).await;
    assert_eq!(v["code"], "last-owner");
    expect(&app, &sara, "DELETE", &format!("{reps}/{sara_id}"), None, 204).await;
    expect(&app, &sara, "GET", &format!("/api/v1/companies/{id}"), None, 404).await;
    assert_eq!(expect(&app, &anna, "GET", &reps, None, 200).await.as_array().unwrap().len(), 1);
    app
});

both_engines!(declared_aid_gives_the_de_minimis_position, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let id = expect(&app, &anna, "POST", "/api/v1/companies", Some(company("12345678903")), 201).await["id"].as_str().unwrap().to_owned();
    let aid = format!("/api/v1/companies/{id}/aid");
    let today = agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date();
    let days_ago = |n: i64| (today - time::Duration::days(n)).to_string();
    let a = expect(&app, &anna, "POST", &aid, Some(json!({"granted_on": days_ago(30), "amount_cents": 100_000_00, "granting_body": "Regione Lombardia"})), 201).await;
    expect(&app, &anna, "POST", &aid, Some(json!({"granted_on": days_ago(400), "amount_cents": 50_000_00, "granting_body": "Camera di commercio"})), 201).await;
    // Four years ago: outside the three-year window.
    expect(&app, &anna, "POST", &aid, Some(json!({"granted_on": days_ago(4 * 366), "amount_cents": 200_000_00, "granting_body": "MISE"})), 201).await;
    let list = expect(&app, &anna, "GET", &aid, None, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    assert_eq!(list["de_minimis"]["used_cents"], 150_000_00);
    assert_eq!(list["de_minimis"]["room_cents"], 150_000_00);
    assert_eq!(list["de_minimis"]["ceiling_cents"], 300_000_00);

    let tomorrow = (today + time::Duration::days(1)).to_string();
    let v = expect(&app, &anna, "POST", &aid, Some(json!({"granted_on": tomorrow, "amount_cents": 0, "granting_body": ""})), 422).await;
    let f = fields(&v);
    for (field, code) in [("granted_on", "in-the-future"), ("amount_cents", "not-positive"), ("granting_body", "required")] {
        assert!(f.contains(&(field.to_owned(), code.to_owned())), "{f:?}");
    }
    let aid_id = a["id"].as_str().unwrap();
    expect(&app, &anna, "DELETE", &format!("{aid}/{aid_id}"), None, 204).await;
    expect(&app, &anna, "DELETE", &format!("{aid}/{aid_id}"), None, 404).await;
    assert_eq!(expect(&app, &anna, "GET", &aid, None, 200).await["de_minimis"]["used_cents"], 50_000_00);
    app
});

both_engines!(another_persons_company_routes_answer_404_with_nothing_and_change_nothing, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let anna_id = app.account_id("cittadino@example.it").await;
    let c = expect(&app, &anna, "POST", "/api/v1/companies", Some(company("12345678903")), 201).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let a = expect(&app, &anna, "POST", &format!("/api/v1/companies/{id}/aid"),
        Some(json!({"granted_on": "2025-01-10", "amount_cents": 123_456, "granting_body": "Segreto S.p.A."})), 201).await;
    let aid_id = a["id"].as_str().unwrap().to_owned();
    let before = audit_head(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    for (method, template, body) in SCOPED_ROUTES {
        let path = template.replace("{company}", &id).replace("{account}", &anna_id.to_string()).replace("{aid}", &aid_id);
        let body = if *method == "PUT" { Some(company("12345678903")) } else if body.is_empty() { None } else { Some(serde_json::from_str(body).unwrap()) };
        let (s, _, text) = call(&attacker, method, app.at(&path), body.clone()).await;
        assert_eq!(s, 404, "{method} {path}: {s} {text}");
        for secret in ["Lavoro Agile", "12345678903", "Segreto", "123456", "Mario Rossi", "cittadino@example.it"] {
            assert!(!text.contains(secret), "{method} {path} leaked {secret}: {text}");
        }
        let (s, _, _) = call(&app.client(), method, app.at(&path), body).await;
        assert_eq!(s, 401, "{method} {path} signed out");
    }
    assert_eq!(audit_head(&app.db).await, before, "nothing audited, so nothing changed");
    assert_eq!(expect(&app, &anna, "GET", &format!("/api/v1/companies/{id}/aid"), None, 200).await["items"].as_array().unwrap().len(), 1);
    app
});
