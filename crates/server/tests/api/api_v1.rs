//! The REST API under /api/v1: token and cookie authentication, every endpoint's happy path, field-level
//! problems, tenant isolation (another organisation's ids are 404), bad requests as problem+json, the OpenAPI
//! document, and a seeded fuzz run over every route that must never produce a 5xx or a non-problem error.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::identity::token;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

const PROBLEM: &str = "application/problem+json";

/// Every route of the API: (method, path template). The OpenAPI test checks each is documented; the fuzz test
/// sends garbage to each.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/me"),
    ("get", "/api/v1/orgs"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{id}"),
    ("put", "/api/v1/orgs/{id}"),
    ("get", "/api/v1/orgs/{id}/members"),
    ("post", "/api/v1/orgs/{id}/members"),
    ("delete", "/api/v1/orgs/{id}/members/{account_id}/roles/{role}"),
    ("get", "/api/v1/catalogue"),
    ("get", "/api/v1/orgs/{id}/subscriptions"),
    ("post", "/api/v1/orgs/{id}/subscriptions"),
    ("put", "/api/v1/orgs/{id}/subscriptions/{service}/state"),
    ("put", "/api/v1/orgs/{id}/subscriptions/{service}/quotas/{key}"),
    ("get", "/api/v1/orgs/{id}/entitlements/{service}"),
    ("get", "/api/v1/orgs/{id}/audit"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/account/tokens"),
    ("post", "/api/v1/account/tokens"),
    ("delete", "/api/v1/account/tokens/{id}"),
    ("get", "/api/v1/account/sessions"),
    ("post", "/api/v1/onboarding"),
    ("get", "/api/v1/onboarding"),
    ("post", "/api/v1/onboarding/{id}/approve"),
    ("post", "/api/v1/onboarding/{id}/reject"),
];

/// A live token for a demo account, made through the kernel as a client would be handed one.
async fn token_for(app: &TestApp, email: &str) -> String {
    let id = app.account_id(email).await;
    token::create(&app.db, &Actor::system(), id, "test").await.expect("token").1
}

/// A client with no cookies and no Origin: what a script or another service is.
fn bare() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A token-authenticated API client for `email`.
struct Api {
    c: reqwest::Client,
    base: String,
    bearer: String,
}

impl Api {
    async fn new(app: &TestApp, email: &str) -> Api {
        Api { c: bare(), base: app.url.clone(), bearer: token_for(app, email).await }
    }
    fn req(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        self.c.request(m, format!("{}{}", self.base, path)).bearer_auth(&self.bearer)
    }
    async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("send")
    }
    async fn send(&self, m: Method, path: &str, body: Value) -> Response {
        self.req(m, path).json(&body).send().await.expect("send")
    }
    async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.expect("send")
    }
}

async fn ok_json(r: Response, status: u16) -> Value {
    let s = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(s.as_u16(), status, "unexpected status, body: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

/// Asserts a problem+json answer with this status and code, and returns its body.
async fn problem(r: Response, status: u16, code: &str) -> Value {
    let s = r.status();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(s.as_u16(), status, "unexpected status, body: {body}");
    assert!(ct.starts_with(PROBLEM), "content type {ct:?} for {status}, body: {body}");
    let v: Value = serde_json::from_str(&body).expect("problem body is JSON");
    assert_eq!(v["code"], code, "problem body: {v}");
    assert_eq!(v["status"], status);
    v
}

/// The field-level complaint about `field`, if any.
fn field_code(p: &Value, field: &str) -> Option<String> {
    p["errors"].as_array()?.iter().find(|e| e["field"] == field).and_then(|e| e["code"].as_str()).map(str::to_owned)
}

/// Appends the check digit of an 11-digit company codice fiscale.
fn company_code(first10: &str) -> String {
    let d: Vec<u32> = first10.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first10}{}", (10 - (x + y) % 10) % 10)
}

fn org_body(name: &str, ipa: &str, tax: &str) -> Value {
    json!({"name": name, "kind": "local_authority", "ipa_code": ipa, "tax_code": tax, "pec": format!("protocollo@pec.{}.example", ipa.replace('_', "-"))})
}

// ---------------------------------------------------------------------------------------------------------------

both_engines!(openapi_document_is_3_1_lists_every_route_and_every_ref_resolves, |app| async move {
    let r = bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap();
    let doc = ok_json(r, 200).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "openapi version {}", doc["openapi"]);
    for (method, path) in ROUTES {
        let op = &doc["paths"][*path][*method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has no tag");
        assert!(op["responses"].is_object(), "{method} {path} has no responses");
    }
    // Every $ref anywhere in the document points at a component that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(s)) => out.push(s.clone()),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "the document uses component references");
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "$ref {r} does not resolve");
    }
    for s in [
        "Problem",
        "Organisation",
        "OrgInput",
        "Member",
        "EntitlementView",
        "EntitlementDenied",
        "AuditPage",
        "NewToken",
    ] {
        assert!(doc["components"]["schemas"][s].is_object(), "schema {s} is a component");
    }
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    app
});

both_engines!(bearer_tokens_authenticate_and_a_revoked_one_is_401, |app| async move {
    let email = "dipendente@regione.example";
    let id = app.account_id(email).await;
    let (tok, secret) = token::create(&app.db, &Actor::system(), id, "script").await.unwrap();
    let c = bare();
    let me = ok_json(c.get(app.at("/api/v1/me")).bearer_auth(&secret).send().await.unwrap(), 200).await;
    assert_eq!(me["account"]["email"], email);
    assert_eq!(me["platform_admin"], false);
    assert!(me["account"].get("password_hash").is_none(), "no secret in the account");
    token::revoke(&app.db, &Actor::system(), id, tok.id).await.unwrap();
    problem(c.get(app.at("/api/v1/me")).bearer_auth(&secret).send().await.unwrap(), 401, "unauthenticated").await;
    problem(c.get(app.at("/api/v1/me")).bearer_auth("ak_nope_nope").send().await.unwrap(), 401, "unauthenticated")
        .await;
    problem(c.get(app.at("/api/v1/orgs")).send().await.unwrap(), 401, "unauthenticated").await;

    // A token made through the API works; its secret is shown once, never listed; revoking it ends it.
    let api = Api::new(&app, email).await;
    problem(api.send(Method::POST, "/api/v1/account/tokens", json!({"name": "  "})).await, 422, "invalid-input").await;
    let made = ok_json(api.send(Method::POST, "/api/v1/account/tokens", json!({"name": "ci"})).await, 201).await;
    let new_secret = made["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("ak_"));
    let r = c.get(app.at("/api/v1/account/tokens")).bearer_auth(&new_secret).send().await.unwrap();
    let list = ok_json(r, 200).await;
    let text = list.to_string();
    assert!(text.contains("\"ci\"") && !text.contains(&new_secret) && !text.contains("token_hash"));
    let tid = made["token"]["id"].as_str().unwrap();
    assert_eq!(api.delete(&format!("/api/v1/account/tokens/{tid}")).await.status(), 204);
    problem(c.get(app.at("/api/v1/me")).bearer_auth(&new_secret).send().await.unwrap(), 401, "unauthenticated").await;
    problem(api.delete(&format!("/api/v1/account/tokens/{tid}")).await, 404, "not-found").await;
    // Someone else's token is not found.
    let other = Api::new(&app, "hr@regione.example").await;
    let theirs = ok_json(other.send(Method::POST, "/api/v1/account/tokens", json!({"name": "hr"})).await, 201).await;
    let tid = theirs["token"]["id"].as_str().unwrap();
    problem(api.delete(&format!("/api/v1/account/tokens/{tid}")).await, 404, "not-found").await;
    app
});

both_engines!(the_session_cookie_works_and_unsafe_cookie_calls_need_our_origin, |app| async move {
    let c = app.login("admin@regione.example").await;
    let me = ok_json(c.get(app.at("/api/v1/me")).send().await.unwrap(), 200).await;
    assert_eq!(me["account"]["email"], "admin@regione.example");
    let sessions = ok_json(c.get(app.at("/api/v1/account/sessions")).send().await.unwrap(), 200).await;
    let list = sessions.as_array().unwrap();
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1, "{sessions}");
    assert!(!sessions.to_string().contains("token_hash"));
    // The browser-like client sends our Origin: a POST with the cookie goes through.
    let r = c.post(app.at("/api/v1/account/tokens")).json(&json!({"name": "from the browser"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // The same cookie from a page elsewhere is refused, as a problem.
    let cookie = agilekit_kernel::identity::session::COOKIE;
    let secret = agilekit_kernel::identity::session::create(
        &app.db,
        app.account_id("admin@regione.example").await,
        false,
        None,
        None,
    )
    .await
    .unwrap()
    .1;
    let r = bare()
        .post(app.at("/api/v1/account/tokens"))
        .header("cookie", format!("{cookie}={secret}"))
        .header("origin", "https://evil.example")
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .unwrap();
    let p = problem(r, 403, "csrf").await;
    assert!(p["title"].is_string());
    let r = bare()
        .delete(app.at("/api/v1/account/tokens/00000000-0000-0000-0000-000000000000"))
        .header("cookie", format!("{cookie}={secret}"))
        .send()
        .await
        .unwrap();
    problem(r, 403, "csrf").await;
    // A token listing reached with the session shows no secret.
    let list = c.get(app.at("/api/v1/account/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("from the browser") && !list.contains("stolen"));
    app
});

both_engines!(organisations_list_show_create_and_update, |app| async move {
    let admin = Api::new(&app, "operatore@aria.example").await;
    let all = ok_json(admin.get("/api/v1/orgs").await, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 6, "platform admins see every organisation");
    let regione = Api::new(&app, "admin@regione.example").await;
    let mine = ok_json(regione.get("/api/v1/orgs").await, 200).await;
    let mut ipas: Vec<&str> = mine.as_array().unwrap().iter().map(|o| o["ipa_code"].as_str().unwrap()).collect();
    ipas.sort();
    assert_eq!(ipas, ["arpa_lom", "r_lombar"]);
    let emp = Api::new(&app, "dipendente@regione.example").await;
    assert_eq!(ok_json(emp.get("/api/v1/orgs").await, 200).await.as_array().unwrap().len(), 1);
    let r_lombar = app.org_id("r_lombar").await;
    let one = ok_json(emp.get(&format!("/api/v1/orgs/{r_lombar}")).await, 200).await;
    assert_eq!(one["name"], "Regione Lombardia");

    let tax = company_code("0999888777");
    let made =
        ok_json(admin.send(Method::POST, "/api/v1/orgs", org_body("Comune di Prova", "c_prova", &tax)).await, 201)
            .await;
    assert_eq!(made["ipa_code"], "c_prova");
    let id = made["id"].as_str().unwrap().to_owned();
    // Only platform admins create or edit organisations.
    problem(
        regione.send(Method::POST, "/api/v1/orgs", org_body("Altro", "c_altro", &company_code("0999888666"))).await,
        403,
        "forbidden",
    )
    .await;
    let mut edit = org_body("Comune di Prova (BS)", "c_prova", &tax);
    edit["parent_id"] = json!(r_lombar.to_string());
    let updated = ok_json(admin.send(Method::PUT, &format!("/api/v1/orgs/{id}"), edit.clone()).await, 200).await;
    assert_eq!(updated["name"], "Comune di Prova (BS)");
    assert_eq!(updated["parent_id"], r_lombar.to_string());
    problem(regione.send(Method::PUT, &format!("/api/v1/orgs/{r_lombar}"), edit.clone()).await, 403, "forbidden").await;
    problem(regione.send(Method::PUT, &format!("/api/v1/orgs/{id}"), edit).await, 404, "not-found").await;
    // The change is in the audit log.
    let log = ok_json(admin.get(&format!("/api/v1/audit?org_id={id}")).await, 200).await;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"org.create") && actions.contains(&"org.update"), "{actions:?}");
    app
});

both_engines!(invalid_organisations_get_field_level_problems, |app| async move {
    let admin = Api::new(&app, "operatore@aria.example").await;
    let mut bad_cf = org_body("Comune X", "c_x", "80050050155");
    let p = problem(admin.send(Method::POST, "/api/v1/orgs", bad_cf.clone()).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "tax_code").as_deref(), Some("check-digit"), "{p}");
    bad_cf["tax_code"] = json!("ABC");
    bad_cf["pec"] = json!("not an email");
    let p = problem(admin.send(Method::POST, "/api/v1/orgs", bad_cf).await, 422, "invalid-input").await;
    assert!(field_code(&p, "tax_code").is_some() && field_code(&p, "pec").is_some(), "all complaints at once: {p}");
    // Taken codes, a missing field, a field of the wrong type, an operator that would be a second one.
    let p = problem(
        admin.send(Method::POST, "/api/v1/orgs", org_body("Doppione", "r_lombar", &company_code("0999888555"))).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "ipa_code").as_deref(), Some("taken"), "{p}");
    let p = problem(
        admin.send(Method::POST, "/api/v1/orgs", json!({"kind": "region", "ipa_code": "x_y", "tax_code": "1"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "name").as_deref(), Some("required"), "{p}");
    let mut typed = org_body("Comune Y", "c_y", &company_code("0999888444"));
    typed["name"] = json!(42);
    let p = problem(admin.send(Method::POST, "/api/v1/orgs", typed).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "name").as_deref(), Some("format"), "{p}");
    let mut op = org_body("Secondo gestore", "c_z", &company_code("0999888333"));
    op["kind"] = json!("operator");
    let p = problem(admin.send(Method::POST, "/api/v1/orgs", op).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "kind").as_deref(), Some("not-allowed"));
    // Nothing was created by any of it.
    assert_eq!(ok_json(admin.get("/api/v1/orgs").await, 200).await.as_array().unwrap().len(), 6);
    app
});

both_engines!(members_are_listed_added_by_email_and_lose_roles, |app| async move {
    let arpa = app.org_id("arpa_lom").await;
    let regione = Api::new(&app, "admin@regione.example").await;
    let members = ok_json(regione.get(&format!("/api/v1/orgs/{arpa}/members")).await, 200).await;
    assert!(members.to_string().contains("admin@arpa.example"));
    let path = format!("/api/v1/orgs/{arpa}/members");
    let p = problem(
        regione.send(Method::POST, &path, json!({"email": "nobody@nowhere.example", "role": "employee"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "email").as_deref(), Some("not-found"));
    let p = problem(
        regione.send(Method::POST, &path, json!({"email": "not-an-email", "role": "king"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "email").as_deref(), Some("format"));
    assert_eq!(field_code(&p, "role").as_deref(), Some("format"));
    let p = problem(
        regione.send(Method::POST, &path, json!({"email": "cittadino@example.it", "role": "employee"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "email").as_deref(), Some("not-allowed"), "public accounts hold no membership");
    let p = problem(
        regione.send(Method::POST, &path, json!({"email": "hr@regione.example", "role": "platform_admin"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "role").as_deref(), Some("not-allowed"));
    let p = problem(regione.send(Method::POST, &path, json!({"role": "employee"})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "email").as_deref(), Some("required"));

    let m = ok_json(
        regione.send(Method::POST, &path, json!({"email": "Dipendente@Regione.example", "role": "employee"})).await,
        201,
    )
    .await;
    assert_eq!(m["account"]["email"], "dipendente@regione.example");
    assert_eq!(m["roles"], json!(["employee"]));
    let emp = app.account_id("dipendente@regione.example").await;
    let principal = agilekit_kernel::authz::Principal::load(&app.db, emp).await.unwrap();
    assert!(principal.is_member(arpa));
    // HR may look but not change.
    let hr = Api::new(&app, "hr@regione.example").await;
    let r_lombar = app.org_id("r_lombar").await;
    ok_json(hr.get(&format!("/api/v1/orgs/{r_lombar}/members")).await, 200).await;
    problem(
        hr.send(
            Method::POST,
            &format!("/api/v1/orgs/{r_lombar}/members"),
            json!({"email": "admin@arpa.example", "role": "employee"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // An employee learns nothing about the member list.
    let empapi = Api::new(&app, "manager@regione.example").await;
    problem(empapi.get(&format!("/api/v1/orgs/{r_lombar}/members")).await, 404, "not-found").await;

    let role_path = format!("/api/v1/orgs/{arpa}/members/{emp}/roles/employee");
    problem(hr.delete(&format!("/api/v1/orgs/{r_lombar}/members/{emp}/roles/employee")).await, 403, "forbidden").await;
    assert_eq!(regione.delete(&role_path).await.status(), 204);
    problem(regione.delete(&role_path).await, 404, "not-found").await;
    problem(regione.delete(&format!("/api/v1/orgs/{arpa}/members/{emp}/roles/king")).await, 404, "not-found").await;
    let principal = agilekit_kernel::authz::Principal::load(&app.db, emp).await.unwrap();
    assert!(!principal.is_member(arpa));
    let log = ok_json(regione.get(&format!("/api/v1/orgs/{arpa}/audit")).await, 200).await;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"membership.grant") && actions.contains(&"membership.revoke"), "{actions:?}");
    app
});

both_engines!(catalogue_subscriptions_states_and_quotas, |app| async move {
    let admin = Api::new(&app, "operatore@aria.example").await;
    let comune = Api::new(&app, "admin@comune.example").await;
    let cat = ok_json(comune.get("/api/v1/catalogue").await, 200).await;
    let keys: Vec<&str> = cat.as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 7);
    assert!(cat.to_string().contains("vpn_seats"));
    let c_b157 = app.org_id("c_b157").await;
    let subs = ok_json(comune.get(&format!("/api/v1/orgs/{c_b157}/subscriptions")).await, 200).await;
    assert_eq!(subs.as_array().unwrap().len(), 2);
    assert!(subs.to_string().contains("\"limit_value\":150"));

    let path = format!("/api/v1/orgs/{c_b157}/subscriptions");
    let made = ok_json(comune.send(Method::POST, &path, json!({"service": "meetings"})).await, 201).await;
    assert_eq!(made["state"], "requested");
    problem(comune.send(Method::POST, &path, json!({"service": "helpdesk", "activate": true})).await, 403, "forbidden")
        .await;
    let p = problem(comune.send(Method::POST, &path, json!({"service": "teleportation"})).await, 422, "invalid-input")
        .await;
    assert_eq!(field_code(&p, "service").as_deref(), Some("not-found"));
    let p =
        problem(comune.send(Method::POST, &path, json!({"service": ["meetings"]})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "service").as_deref(), Some("format"));
    let helpdesk =
        ok_json(admin.send(Method::POST, &path, json!({"service": "helpdesk", "activate": true})).await, 201).await;
    assert_eq!(helpdesk["state"], "active");

    // State changes are the platform admins'.
    let state = format!("/api/v1/orgs/{c_b157}/subscriptions/meetings/state");
    problem(comune.send(Method::PUT, &state, json!({"state": "active"})).await, 403, "forbidden").await;
    let s = ok_json(admin.send(Method::PUT, &state, json!({"state": "active"})).await, 200).await;
    assert_eq!(s["state"], "active");
    let p = problem(admin.send(Method::PUT, &state, json!({"state": "asleep"})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "state").as_deref(), Some("format"));
    problem(
        admin
            .send(Method::PUT, &format!("/api/v1/orgs/{c_b157}/subscriptions/grants/state"), json!({"state": "active"}))
            .await,
        404,
        "not-found",
    )
    .await;
    problem(
        admin
            .send(Method::PUT, &format!("/api/v1/orgs/{c_b157}/subscriptions/nope/state"), json!({"state": "active"}))
            .await,
        404,
        "not-found",
    )
    .await;

    let quota = format!("/api/v1/orgs/{c_b157}/subscriptions/meetings/quotas/rooms");
    let v = ok_json(admin.send(Method::PUT, &quota, json!({"limit": 12})).await, 200).await;
    assert_eq!(v["quotas"][0]["limit_value"], 12);
    let v = ok_json(admin.send(Method::PUT, &quota, json!({"limit": null})).await, 200).await;
    assert_eq!(v["quotas"][0]["limit_value"], Value::Null, "null is unlimited");
    let p = problem(admin.send(Method::PUT, &quota, json!({"limit": -1})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "limit").as_deref(), Some("out-of-range"));
    let p = problem(admin.send(Method::PUT, &quota, json!({"limit": 2.5})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "limit").as_deref(), Some("format"));
    let p = problem(admin.send(Method::PUT, &quota, json!({})).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "limit").as_deref(), Some("required"), "a missing limit is not 'unlimited'");
    problem(comune.send(Method::PUT, &quota, json!({"limit": 99})).await, 403, "forbidden").await;
    problem(
        admin
            .send(
                Method::PUT,
                &format!("/api/v1/orgs/{c_b157}/subscriptions/meetings/quotas/seats"),
                json!({"limit": 1}),
            )
            .await,
        404,
        "not-found",
    )
    .await;
    app
});

both_engines!(entitlements_answer_quotas_or_a_reason, |app| async move {
    let r_lombar = app.org_id("r_lombar").await;
    let emp = Api::new(&app, "dipendente@regione.example").await;
    let e = ok_json(emp.get(&format!("/api/v1/orgs/{r_lombar}/entitlements/remote_access")).await, 200).await;
    assert_eq!(e["service"], "remote_access");
    assert_eq!(e["quotas"][0]["key"], "vpn_seats");
    assert_eq!(e["quotas"][0]["limit"], 4500);
    assert_eq!(e["quotas"][0]["remaining"], 4500);
    let e = ok_json(emp.get(&format!("/api/v1/orgs/{r_lombar}/entitlements/learning")).await, 200).await;
    assert_eq!(e["quotas"][0]["limit"], Value::Null);
    let c_b157 = app.org_id("c_b157").await;
    let comune = Api::new(&app, "admin@comune.example").await;
    let p =
        problem(comune.get(&format!("/api/v1/orgs/{c_b157}/entitlements/meetings")).await, 403, "not-entitled").await;
    assert_eq!(p["reason"], "not_subscribed");
    // Suspended is not entitled either.
    let admin = Api::new(&app, "operatore@aria.example").await;
    ok_json(
        admin
            .send(
                Method::PUT,
                &format!("/api/v1/orgs/{c_b157}/subscriptions/learning/state"),
                json!({"state": "suspended"}),
            )
            .await,
        200,
    )
    .await;
    let p =
        problem(comune.get(&format!("/api/v1/orgs/{c_b157}/entitlements/learning")).await, 403, "not-entitled").await;
    assert_eq!(p["reason"], "not_subscribed");
    // A platform admin sees the organisation but is no member of it.
    let p =
        problem(admin.get(&format!("/api/v1/orgs/{r_lombar}/entitlements/remote_access")).await, 403, "not-entitled")
            .await;
    assert_eq!(p["reason"], "not_member");
    problem(emp.get(&format!("/api/v1/orgs/{c_b157}/entitlements/remote_access")).await, 404, "not-found").await;
    problem(emp.get(&format!("/api/v1/orgs/{r_lombar}/entitlements/teleportation")).await, 404, "not-found").await;
    app
});

both_engines!(audit_pages_newest_first_and_checks_its_parameters, |app| async move {
    let r_lombar = app.org_id("r_lombar").await;
    let regione = Api::new(&app, "admin@regione.example").await;
    let first = ok_json(regione.get(&format!("/api/v1/orgs/{r_lombar}/audit?limit=3")).await, 200).await;
    let entries = first["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["org_id"] == r_lombar.to_string()), "only this organisation's entries");
    assert!(entries[0]["seq"].as_i64() > entries[1]["seq"].as_i64(), "newest first");
    let next = first["next_before_seq"].as_i64().unwrap();
    let second =
        ok_json(regione.get(&format!("/api/v1/orgs/{r_lombar}/audit?limit=3&before_seq={next}")).await, 200).await;
    assert!(second["entries"].as_array().unwrap().iter().all(|e| e["seq"].as_i64().unwrap() < next));
    let p = problem(
        regione.get(&format!("/api/v1/orgs/{r_lombar}/audit?limit=abc&before_seq=-4")).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "limit").as_deref(), Some("format"));
    assert_eq!(field_code(&p, "before_seq").as_deref(), Some("out-of-range"));
    let p = problem(regione.get(&format!("/api/v1/orgs/{r_lombar}/audit?limit=0")).await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "limit").as_deref(), Some("out-of-range"));
    problem(regione.get(&format!("/api/v1/orgs/{r_lombar}/audit?limit=1&limit=2")).await, 400, "invalid-query").await;
    let emp = Api::new(&app, "dipendente@regione.example").await;
    problem(emp.get(&format!("/api/v1/orgs/{r_lombar}/audit")).await, 404, "not-found").await;
    // The whole log is the platform admins'.
    problem(regione.get("/api/v1/audit").await, 403, "forbidden").await;
    let admin = Api::new(&app, "operatore@aria.example").await;
    let all = ok_json(admin.get("/api/v1/audit?limit=500&action=org.").await, 200).await;
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6, "one org.create per demo organisation");
    let p = problem(admin.get("/api/v1/audit?org_id=nope&action=%00x").await, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "org_id").as_deref(), Some("format"));
    assert_eq!(field_code(&p, "action").as_deref(), Some("format"));
    app
});

both_engines!(onboarding_submit_list_approve_and_reject, |app| async move {
    let request = |ipa: &str, tax: &str| {
        json!({"org_name": format!("Comune {ipa}"), "ipa_code": ipa, "tax_code": tax, "pec": format!("protocollo@pec.{}.example", ipa.replace('_', "-")),
               "contact_name": "Ada Segretaria", "contact_email": format!("segreteria@{}.example", ipa.replace('_', "-")), "services": ["remote_access", "learning"]})
    };
    // Public: no account, no token, no Origin (a script): nothing ambient to forge, so the CSRF check lets it by.
    let public = bare();
    let r = public
        .post(app.at("/api/v1/onboarding"))
        .json(&request("c_uno", &company_code("0111222333")))
        .send()
        .await
        .unwrap();
    let first = ok_json(r, 201).await;
    assert_eq!(first["state"], "pending");
    let r = public
        .post(app.at("/api/v1/onboarding"))
        .json(&request("c_due", &company_code("0111222444")))
        .send()
        .await
        .unwrap();
    let second = ok_json(r, 201).await;
    let mut bad = request("C UNO!", "123");
    bad["services"] = json!(["teleportation"]);
    let r = public.post(app.at("/api/v1/onboarding")).json(&bad).send().await.unwrap();
    let p = problem(r, 422, "invalid-input").await;
    for f in ["ipa_code", "tax_code", "services"] {
        assert!(field_code(&p, f).is_some(), "{f} in {p}");
    }
    let r = public.post(app.at("/api/v1/onboarding")).json(&json!({"org_name": "x"})).send().await.unwrap();
    problem(r, 422, "invalid-input").await;

    let admin = Api::new(&app, "operatore@aria.example").await;
    let pending = ok_json(admin.get("/api/v1/onboarding?state=pending").await, 200).await;
    assert_eq!(pending.as_array().unwrap().len(), 2);
    problem(admin.get("/api/v1/onboarding?state=whatever").await, 422, "invalid-input").await;
    let regione = Api::new(&app, "admin@regione.example").await;
    problem(regione.get("/api/v1/onboarding").await, 403, "forbidden").await;
    problem(bare().get(app.at("/api/v1/onboarding")).send().await.unwrap(), 401, "unauthenticated").await;

    let id1 = first["id"].as_str().unwrap();
    let r_lombar = app.org_id("r_lombar").await;
    problem(
        regione.send(Method::POST, &format!("/api/v1/onboarding/{id1}/approve"), json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let p = problem(
        admin.send(Method::POST, &format!("/api/v1/onboarding/{id1}/approve"), json!({"parent_id": "nope"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "parent_id").as_deref(), Some("format"));
    let done = ok_json(
        admin
            .send(
                Method::POST,
                &format!("/api/v1/onboarding/{id1}/approve"),
                json!({"parent_id": r_lombar.to_string()}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(done["state"], "activated");
    let org = done["org_id"].as_str().unwrap();
    let subs = ok_json(admin.get(&format!("/api/v1/orgs/{org}/subscriptions")).await, 200).await;
    assert_eq!(subs.as_array().unwrap().len(), 2);
    problem(
        admin.send(Method::POST, &format!("/api/v1/onboarding/{id1}/approve"), json!({})).await,
        409,
        "already-reviewed",
    )
    .await;

    let id2 = second["id"].as_str().unwrap();
    let p = problem(
        admin.send(Method::POST, &format!("/api/v1/onboarding/{id2}/reject"), json!({"note": " "})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "note").as_deref(), Some("required"));
    let rejected = ok_json(
        admin
            .send(Method::POST, &format!("/api/v1/onboarding/{id2}/reject"), json!({"note": "Codice IPA errato"}))
            .await,
        200,
    )
    .await;
    assert_eq!(rejected["state"], "rejected");
    // Approving with no body at all is fine (the body is optional); this one was already reviewed.
    let r = admin.req(Method::POST, &format!("/api/v1/onboarding/{id2}/approve")).send().await.unwrap();
    problem(r, 409, "already-reviewed").await;
    problem(
        admin
            .send(Method::POST, &format!("/api/v1/onboarding/{}/reject", uuid::Uuid::now_v7()), json!({"note": "x"}))
            .await,
        404,
        "not-found",
    )
    .await;
    app
});

both_engines!(another_organisations_ids_are_404_on_every_org_scoped_route, |app| async move {
    // The admin of Comune di Brescia, against Regione Lombardia's resources.
    let r = app.org_id("r_lombar").await;
    let acc = app.account_id("dipendente@regione.example").await;
    let outsider = Api::new(&app, "admin@comune.example").await;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/orgs/{r}"), None),
        (Method::PUT, format!("/api/v1/orgs/{r}"), Some(org_body("X", "r_lombar", "80050050154"))),
        (Method::GET, format!("/api/v1/orgs/{r}/members"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{r}/members"),
            Some(json!({"email": "admin@comune.example", "role": "org_admin"})),
        ),
        (Method::DELETE, format!("/api/v1/orgs/{r}/members/{acc}/roles/employee"), None),
        (Method::GET, format!("/api/v1/orgs/{r}/subscriptions"), None),
        (Method::POST, format!("/api/v1/orgs/{r}/subscriptions"), Some(json!({"service": "grants"}))),
        (
            Method::PUT,
            format!("/api/v1/orgs/{r}/subscriptions/remote_access/state"),
            Some(json!({"state": "suspended"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{r}/subscriptions/remote_access/quotas/vpn_seats"),
            Some(json!({"limit": 1})),
        ),
        (Method::GET, format!("/api/v1/orgs/{r}/entitlements/remote_access"), None),
        (Method::GET, format!("/api/v1/orgs/{r}/audit"), None),
    ];
    for (m, path, body) in calls {
        let req = outsider.req(m.clone(), &path);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let p = problem(resp, 404, "not-found").await;
        let text = p.to_string();
        assert!(!text.contains("Lombardia") && !text.contains("regione.example"), "{m} {path} leaked: {text}");
    }
    // Nothing changed: the employee is still a member, the quota still 4500.
    let principal = agilekit_kernel::authz::Principal::load(&app.db, acc).await.unwrap();
    assert!(principal.is_member(r));
    let emp = Api::new(&app, "dipendente@regione.example").await;
    let e = ok_json(emp.get(&format!("/api/v1/orgs/{r}/entitlements/remote_access")).await, 200).await;
    assert_eq!(e["quotas"][0]["limit"], 4500);
    app
});

both_engines!(bad_requests_are_problems_too, |app| async move {
    let admin = Api::new(&app, "operatore@aria.example").await;
    let r = admin
        .req(Method::POST, "/api/v1/orgs")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(r, 400, "malformed-json").await;
    let r =
        admin.req(Method::POST, "/api/v1/orgs").header("content-type", "text/plain").body("{}").send().await.unwrap();
    problem(r, 415, "unsupported-media-type").await;
    let r = admin.req(Method::POST, "/api/v1/account/tokens").body("{\"name\": \"x\"}").send().await.unwrap();
    problem(r, 415, "unsupported-media-type").await;
    let r = admin
        .req(Method::POST, "/api/v1/account/tokens")
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    let p = problem(r, 422, "invalid-input").await;
    assert_eq!(field_code(&p, "body").as_deref(), Some("format"));
    let p = problem(
        admin.send(Method::POST, "/api/v1/account/tokens", json!({"name": "a\u{0}b"})).await,
        422,
        "invalid-input",
    )
    .await;
    assert_eq!(field_code(&p, "name").as_deref(), Some("format"), "NUL never reaches the database");
    for path in
        ["/api/v1/orgs/not-a-uuid", "/api/v1/orgs/123/members", "/api/v1/orgs/%00/audit", "/api/v1/account/tokens/zz"]
    {
        let m = if path.contains("tokens") { Method::DELETE } else { Method::GET };
        problem(admin.req(m, path).send().await.unwrap(), 404, "not-found").await;
    }
    problem(admin.get("/api/v1/no/such/route").await, 404, "not-found").await;
    let r = admin.req(Method::PATCH, "/api/v1/catalogue").send().await.unwrap();
    assert!(r.headers().contains_key("allow"), "a 405 says what is allowed");
    problem(r, 405, "method-not-allowed").await;
    // Over the 1 MiB body limit.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let r = admin
        .req(Method::POST, "/api/v1/account/tokens")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(r, 413, "payload-too-large").await;
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Fuzz

/// xorshift64*: seeded, so a failure replays exactly; no dependency for something this small.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "9",
            "-",
            "_",
            " ",
            "\u{0}",
            "\n",
            "\"",
            "'",
            "\\",
            "/",
            "%",
            "..",
            "é",
            "日本",
            "🦀",
            "null",
            "true",
            "<script>",
            "' OR 1=1 --",
            "${x}",
            "\u{202e}",
            "remote_access",
            "org_admin",
            "vpn_seats",
            "80050050154",
        ];
        let n = match self.below(10) {
            0 => 0,
            1 => 200 + self.below(3000),
            _ => self.below(12),
        };
        (0..n).map(|_| *self.pick(PIECES)).collect()
    }
    fn number(&mut self) -> Value {
        match self.below(6) {
            0 => json!(-1),
            1 => json!(i64::MAX),
            2 => json!(i64::MIN),
            3 => json!(1.5e300),
            4 => json!(self.next() % 20_000_000),
            _ => json!(0),
        }
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 3 { 4 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(self.chance(50)),
            2 => self.number(),
            3 => Value::String(self.string()),
            4 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                const KEYS: &[&str] = &[
                    "name",
                    "kind",
                    "ipa_code",
                    "tax_code",
                    "pec",
                    "parent_id",
                    "email",
                    "role",
                    "service",
                    "activate",
                    "state",
                    "limit",
                    "note",
                    "org_name",
                    "contact_name",
                    "contact_email",
                    "services",
                    "",
                ];
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(8) {
                    let k = if self.chance(80) { (*self.pick(KEYS)).to_owned() } else { self.string() };
                    m.insert(k, self.value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }
}

/// Percent-encodes every byte that is not unreserved, so any string makes a valid URL path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

both_engines!(fuzzing_every_route_never_gives_a_5xx_or_a_non_problem_error, |app| async move {
    let admin = Api::new(&app, "operatore@aria.example").await;
    // Real ids, so garbage also reaches the code behind the lookups; never the fuzzer's own token or account.
    let orgs = [app.org_id("r_lombar").await.to_string(), app.org_id("c_b157").await.to_string()];
    let spare = token::create(&app.db, &Actor::system(), app.account_id("operatore@aria.example").await, "spare")
        .await
        .unwrap()
        .0;
    let onboarding = agilekit_kernel::onboarding::submit(
        &app.db,
        &Actor::system(),
        &agilekit_kernel::onboarding::RequestInput {
            org_name: "Comune di Fuzz".into(),
            ipa_code: "c_fuzz".into(),
            tax_code: company_code("0222333444"),
            pec: "pec@c-fuzz.example".into(),
            contact_name: "Fuzz".into(),
            contact_email: "fuzz@c-fuzz.example".into(),
            services: vec!["helpdesk".into()],
        },
    )
    .await
    .unwrap();
    let real: Vec<(&str, Vec<String>)> = vec![
        ("{id}", orgs.to_vec()),
        ("{account_id}", vec![app.account_id("dipendente@regione.example").await.to_string()]),
        ("{role}", vec!["employee".into(), "hr".into(), "platform_admin".into()]),
        ("{service}", vec!["remote_access".into(), "meetings".into(), "grants".into()]),
        ("{key}", vec!["vpn_seats".into(), "rooms".into()]),
    ];
    let methods =
        [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS];
    let seed = std::env::var("AGILEKIT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_a91e_u64);
    let mut rng = Rng(seed);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..300 {
        let (route_method, template) = *rng.pick(ROUTES);
        let mut path = template.to_owned();
        for (name, values) in &real {
            while path.contains(name) {
                let v = if rng.chance(65) {
                    match *name {
                        "{id}" if template.contains("tokens") => spare.id.to_string(),
                        "{id}" if template.contains("onboarding") => onboarding.id.to_string(),
                        _ => rng.pick(values).clone(),
                    }
                } else if rng.chance(50) {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    segment(&rng.string())
                };
                path = path.replacen(name, &v, 1);
            }
        }
        if rng.chance(20) {
            path.push_str(&format!(
                "?limit={}&before_seq={}&state={}",
                segment(&rng.string()),
                segment(&rng.string()),
                segment(&rng.string())
            ));
        }
        let method = if rng.chance(75) {
            Method::from_bytes(route_method.to_uppercase().as_bytes()).unwrap()
        } else {
            rng.pick(&methods).clone()
        };
        let mut req = admin.req(method.clone(), &path);
        req = match rng.below(5) {
            0 => req,
            1 => req.header("content-type", "application/json").body(rng.string()),
            2 => req
                .header(
                    "content-type",
                    *rng.pick(&[
                        "text/plain",
                        "application/x-www-form-urlencoded",
                        "application/json; charset=latin1",
                        "application/merge-patch+json",
                    ]),
                )
                .body(rng.value(0).to_string()),
            _ => req.json(&rng.value(0)),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("request {i} {method} {path} failed: {e:?}"));
        let status = resp.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = resp.text().await.unwrap_or_default();
        assert!(!status.is_server_error(), "request {i} (seed {seed:#x}) {method} {path} gave {status}: {body}");
        if status.is_client_error() {
            assert!(
                ct.starts_with(PROBLEM),
                "request {i} (seed {seed:#x}) {method} {path} gave {status} as {ct:?}: {body}"
            );
            if method != Method::HEAD {
                let v: Value =
                    serde_json::from_str(&body).unwrap_or_else(|_| panic!("request {i}: problem body is JSON: {body}"));
                assert!(v["code"].is_string());
            }
        }
    }
    eprintln!("fuzz seed {seed:#x}: statuses {statuses:?}");
    // The run reached the handlers, not only the routers' refusals.
    assert!(statuses.keys().any(|s| *s < 300), "some requests succeeded: {statuses:?}");
    assert!(statuses.contains_key(&422), "some reached validation: {statuses:?}");
    // The admin's token still works: the fuzzer did not lock itself out by accident.
    assert_eq!(admin.get("/api/v1/me").await.status(), StatusCode::OK);
    app
});
