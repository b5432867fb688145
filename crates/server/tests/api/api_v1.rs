//! The REST API under /api/v1: token and cookie authentication, every endpoint's happy path, field-level
//! problems, tenant isolation (another organisation's ids are 404), bad requests as problem+json, the OpenAPI
//! document, and a seeded fuzz run over every route that must never produce a 5xx or a non-problem error.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use agilekit_remote_access::model::KeyPair;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

const PROBLEM: &str = "application/problem+json";

/// Every `(method, path)` an API router declares, read from the sources (`crates/*/src`): each
/// `.route("/api/…", get(a).post(b))`. The OpenAPI test checks the document lists every one; the fuzzer sends
/// garbage to what the document lists.
fn declared_api_routes() -> Vec<(String, String)> {
    fn scan(text: &str, out: &mut Vec<(String, String)>) {
        let mut rest = text;
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + 7..];
            let Some(s) = rest.trim_start().strip_prefix('"') else { continue };
            let Some(end) = s.find('"') else { continue };
            let path = &s[..end];
            if !path.starts_with("/api/") {
                continue;
            }
            // The method router: up to the parenthesis that closes `.route(`.
            let after = &s[end + 1..];
            let mut depth = 1usize;
            let mut stop = after.len();
            for (j, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            stop = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let methods = &after[..stop];
            for m in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{m}(");
                let named = methods.match_indices(&call).any(|(k, _)| {
                    k == 0 || !matches!(methods.as_bytes()[k - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')
                });
                if named {
                    out.push((m.to_owned(), path.to_owned()));
                }
            }
        }
    }
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                scan(&std::fs::read_to_string(&p).unwrap(), out);
            }
        }
    }
    let mut out = Vec::new();
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for c in std::fs::read_dir(&crates).unwrap().flatten() {
        if c.path().join("src").is_dir() {
            walk(&c.path().join("src"), &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

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
    let declared = declared_api_routes();
    for sample in [("get", "/api/v1/me"), ("delete", "/api/v1/orgs/{id}/members/{account_id}/roles/{role}"),
        ("post", "/api/v1/gateway/status"), ("put", "/api/v1/orgs/{id}/workstations/{workstation}")]
    {
        assert!(declared.iter().any(|(m, p)| (m.as_str(), p.as_str()) == sample), "the route scan found {sample:?}: {declared:?}");
    }
    assert!(declared.len() > 60, "the route scan found too little: {declared:?}");
    for (method, path) in declared.iter().filter(|(_, p)| p != "/api/v1/openapi.json") {
        let op = &doc["paths"][path.as_str()][method.as_str()];
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
// Fuzz: every operation of the served OpenAPI document (so a new domain's routes are fuzzed without touching this
// file), with real ids behind the placeholders, and bodies and query strings shaped like what each route takes.

/// How many requests a run sends unless `AGILEKIT_FUZZ_REQUESTS` says otherwise: each operation of the document
/// gets its share, in shuffled rounds (some 30 each for the 94 operations the document lists today).
const FUZZ_REQUESTS: usize = 3000;

/// xorshift64*: seeded, so a failure replays exactly; no dependency for something this small.
struct Rng(u64);

impl Rng {
    /// Any seed, 0 included (xorshift must not start from 0): spread by splitmix64 first.
    fn seeded(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
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
    fn pick_str(&mut self, xs: &[&str]) -> String {
        (*self.pick(xs)).to_owned()
    }
    /// An id nothing has (of the seed, not of the clock: a run replays).
    fn uuid(&mut self) -> String {
        uuid::Uuid::from_u64_pair(self.next(), self.next()).to_string()
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "9", "-", "_", " ", "\u{0}", "\n", "\r", "\t", "\"", "'", "\\", "/", "%", "%00", "..", ",",
            ";", "=", "+", "@", "é", "日本", "🦀", "\u{feff}", "\u{202e}", "\u{ffff}", "null", "true", "<script>",
            "' OR 1=1 --", "${x}", "remote_access", "workstations", "org_admin", "vpn_seats", "80050050154",
            "10.8.0.0/19", "pc-01", "=SUM(A1)",
        ];
        let n = match self.below(12) {
            0 => 0,
            1 => 200 + self.below(3000),
            _ => self.below(12),
        };
        (0..n).map(|_| *self.pick(PIECES)).collect()
    }
    fn number(&mut self) -> Value {
        match self.below(16) {
            0 => json!(-1),
            1 => json!(i64::MAX),
            2 => json!(i64::MIN),
            3 => json!(1.5e300),
            4 => json!(self.next() % 20_000_000),
            5 => json!(u64::MAX),
            6 => json!(0.5),
            7 => json!(-0.0),
            8 => json!(65536),
            9 => json!(65535),
            10 => json!(3651),
            11 => json!(25),
            12 => json!(26),
            13 => json!(i64::from(i32::MAX) + 1),
            14 => json!(self.pick_str(&["NaN", "Infinity", "-Infinity", "1e999", "12", "0x10", " 7 ", ""])),
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
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(6) {
                    let k = if self.chance(70) { self.pick_str(FIELD_NAMES) } else { self.string() };
                    m.insert(k, self.value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    // --- Values shaped for a field: valid ones mixed with every broken kind -----------------------------------

    fn cidr(&mut self) -> String {
        const C: &[&str] = &[
            "10.8.0.0/19", "10.8.0.1/19", "10.8.0.0/33", "10.8.0.0/-1", "10.8.0.0/", "10.8.0.0", "/19", "10.8.0.0/019",
            "10.8.0.0/99999999999999999999", "0.0.0.0/0", "::/0", "fd00:8::/64", "fd00:8::1/64", "fd00::/129",
            "fd00::/128", "192.168.50.0/24", "192.168.50.7/32", "255.255.255.255/32", "10.8.0.0/19/19", "10.8.0.0 /19",
            " 172.31.0.0/19 ", "１０.8.0.0/19", "::ffff:10.0.0.0/104", "fe80::1%eth0/64", "10.8.0.0/0x13",
            "10.256.0.0/16", "10.9.0.0/30", "10.9.0.0/31", "10.9.0.0/32", "2001:db8::/32", "1.2.3.4/24", "", " ",
            "10.8.0.0/19\n", "10.8.0.0\u{0}/19", "a.b.c.d/8", "10.0.0.0/8", "100.64.0.0/10",
        ];
        if self.chance(8) { self.string() } else { self.pick_str(C) }
    }
    /// A valid WireGuard public key: any 32 bytes, in standard base64 (cheaper than a real key pair).
    fn valid_key(&mut self) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes: Vec<u8> = (0..32).map(|_| (self.next() >> 24) as u8).collect();
        let mut out = String::with_capacity(44);
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..=c.len() {
                out.push(char::from(B64[(n >> (18 - 6 * k) & 63) as usize]));
            }
        }
        out.push('=');
        out
    }
    fn key(&mut self) -> String {
        let valid = self.valid_key();
        match self.below(14) {
            0..=3 => valid,
            4 => valid[..43].to_owned(),
            5 => format!("{valid}="),
            6 => "A".repeat(44),
            7 => valid.replace('+', "-").replace('/', "_"),
            8 => format!("{} {}", &valid[..20], &valid[21..]),
            9 => "é".repeat(22),
            10 => "0123456789abcdef".repeat(4),
            11 => format!("  {valid}\n"),
            12 => String::new(),
            _ => self.string(),
        }
    }
    /// An RFC 3339 instant at the edges: of the calendar (year 0 and 9999, an offset that moves it out of both), of
    /// the format (a leap second, February 30th, no `T`, a sign, nanoseconds), of the rules (1970, past, far ahead).
    fn instant(&mut self) -> String {
        const EDGES: &[&str] = &[
            "9999-12-31T23:45:00-01:00", "9999-12-31T23:00:00-23:59", "9999-12-31T20:00:00-05:00", "9999-12-31T23:59:59Z",
            "9999-12-20T00:00:00Z", "9998-12-31T23:45:00Z", "0000-01-01T00:00:00+01:00", "0000-01-01T00:30:00+23:59",
            "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "1969-12-31T23:45:00Z",
            "1970-01-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-06-30T23:59:60Z", "2030-03-02T08:00:00+23:59",
            "2030-03-02T08:00:00-23:59", "2030-03-02T08:00:00.000000001Z", "2030-03-02 08:00", "2030-03-02T08:00:00",
            "now", "1735689600", "+002030-03-02T08:00:00Z", "4714-11-24T00:00:00Z", "", "2030-03-02T08:00:00+24:00",
        ];
        match self.below(10) {
            0 => {
                let day = time::OffsetDateTime::now_utc() + time::Duration::days(1 + self.below(3) as i64);
                let slot = day.replace_time(time::Time::from_hms(8 + self.below(8) as u8, 15 * self.below(4) as u8, 0).unwrap());
                slot.format(&time::format_description::well_known::Rfc3339).unwrap()
            }
            1 => self.string(),
            _ => self.pick_str(EDGES),
        }
    }
    /// Unix seconds at the edges: of i64, of what the time library holds (years -9999 and 9999), of what
    /// PostgreSQL holds (4713 BC), of 1970, of now.
    fn unix(&mut self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match self.below(14) {
            0 | 1 => json!(now - self.below(600) as i64),
            2 => json!(0),
            3 => json!(-1),
            4 => json!(i64::MIN),
            5 => json!(i64::MAX),
            6 => json!(-377_705_116_800i64),
            7 => json!(-210_866_803_201i64),
            8 => json!(-62_167_219_200i64),
            9 => json!(253_402_300_799i64),
            10 => json!(253_402_300_800i64),
            11 => json!(now + 10 * 365 * 86_400),
            12 => json!(now + 86_400 + 1),
            _ => Value::Null,
        }
    }
    fn ip(&mut self) -> String {
        self.pick_str(&[
            "192.168.50.53", "10.10.0.53", "::1", "fd00::53", "256.1.1.1", "1.2.3", "1.2.3.4.5", "::gg", "", " ",
            "1.2.3.4:53", "[::1]", "localhost", "0.0.0.0", "255.255.255.255", "fe80::1%eth0", "01.02.03.04",
        ])
    }
    fn host(&mut self) -> String {
        match self.below(16) {
            0..=3 => format!("fz-{}.regione.example", self.below(100_000)),
            4 => "127.0.0.1".into(),
            5 => "[::1]".into(),
            6 => "10.0.0.256".into(),
            7 => "-pc.example".into(),
            8 => format!("{}.it", ["a"; 64].concat()),
            9 => vec!["a".repeat(63); 5].join("."),
            10 => "pc..example".into(),
            11 => "PC-LOM-0101.Regione.Example.".into(),
            12 => "città.it".into(),
            13 => "pc:3389".into(),
            14 => String::new(),
            _ => self.string(),
        }
    }
    fn endpoint(&mut self) -> String {
        match self.below(8) {
            0 => format!("192.0.2.{}:{}", self.below(256), self.below(70_000)),
            1 => "[2001:db8::1]:51820".into(),
            2 => "(none)".into(),
            3 => "1.2.3.4".into(),
            4 => "1.2.3.4:99999".into(),
            _ => self.host(),
        }
    }
    fn mac(&mut self) -> String {
        self.pick_str(&[
            "00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e", "001A2B3C4D5E", "01:00:5e:00:00:01",
            "00:00:00:00:00:00", "00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5g", "0:1a:2b:3c:4d:5e:", "ééééééé", "", "zz",
            "00:1a-2b:3c:4d:5e", "001a2b3c4d5e00",
        ])
    }
    fn email(&mut self) -> String {
        match self.below(8) {
            0 => "dipendente@regione.example".into(),
            1 => "manager@regione.example".into(),
            2 => "admin@comune.example".into(),
            3 => "DIPENDENTE@Regione.Example".into(),
            4 => "nobody@nowhere.example".into(),
            5 => "not an email".into(),
            6 => String::new(),
            _ => self.string(),
        }
    }
    fn port_text(&mut self) -> String {
        self.pick_str(&["", "3389", "22", "5900", "0", "65535", "65536", "-1", "33.89", "rdp", "99999999999999999999", " 3390 "])
    }
    fn bool_text(&mut self) -> String {
        self.pick_str(&["true", "false", "", "1", "0", "yes", "TRUE", "null", "tru"])
    }
    fn count_text(&mut self) -> String {
        self.pick_str(&["0", "1", "25", "26", "500", "501", "-1", "", "x", "1.5", "9223372036854775808", "-9223372036854775809", "00", " 3 "])
    }

    /// A value for a query parameter or a text field, by its name.
    fn text_for(&mut self, name: &str, w: &World) -> String {
        if self.chance(8) {
            return self.string();
        }
        match name {
            "from" | "until" | "starts_at" | "ends_at" => self.instant(),
            "limit" | "wait" | "before_seq" => self.count_text(),
            "after" => if self.chance(50) { self.count_text() } else { self.host() },
            "all" | "mine" => self.bool_text(),
            "status" => self.pick_str(&["online", "offline", "unknown", "ONLINE", "on", "", "pending"]),
            "mode" => self.pick_str(&["pooled", "dedicated", "Pooled", "shared", ""]),
            "protocol" => self.pick_str(&["rdp", "vnc", "ssh", "RDP", "telnet", ""]),
            "tag" | "tags" => self.pick_str(&["ufficio", "piano-3 cad", "a/b", "x_y", "%", "_", &"t ".repeat(17), &"x".repeat(33), ""]),
            "q" => self.pick_str(&["pc", "%", "_", "\\", "127.0", "milano", "'"]),
            "hostname" => self.host(),
            "address" => self.ip(),
            "port" => self.port_text(),
            "mac" => self.mac(),
            "assignee" | "account" | "email" | "contact_email" => self.email(),
            "os" | "location" => self.pick_str(&["Windows 11", "=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "Milano\tsala", &"x".repeat(121), ""]),
            "org_id" | "network_id" => {
                if self.chance(50) { w.pick_net(self) } else { self.pick(&w.orgs).clone() }
            }
            "endpoint" => self.endpoint(),
            "public_key" | "peer" => self.key(),
            _ => self.string(),
        }
    }

    /// A JSON value for a body property, by its name: mostly of the shape the route takes, valid or broken in
    /// every way the field can be, sometimes of the wrong type altogether.
    fn json_for(&mut self, name: &str, w: &World) -> Value {
        if self.chance(12) {
            return self.value(1);
        }
        match name {
            "ipv4_cidr" | "ipv6_cidr" => if self.chance(10) { Value::Null } else { json!(self.cidr()) },
            "routes" | "allow" => {
                let n = if self.chance(5) { 65 + self.below(5) } else { self.below(4) };
                json!((0..n).map(|_| self.cidr()).collect::<Vec<_>>())
            }
            "dns" => json!((0..self.below(6)).map(|_| self.ip()).collect::<Vec<_>>()),
            "require_approval" | "generate_key" | "activate" => if self.chance(80) { json!(self.chance(50)) } else { self.value(1) },
            "default_expiry_days" | "limit" => {
                if self.chance(40) { json!(1 + self.below(3650)) } else { self.number() }
            }
            "port" => match self.below(3) {
                0 => json!(self.port_text()),
                1 => json!(51820),
                _ => self.number(),
            },
            "rx_bytes" | "tx_bytes" => if self.chance(50) { json!(self.next() >> self.below(64)) } else { self.number() },
            "last_handshake" => self.unix(),
            "public_key" => if self.chance(10) { json!(w.live_key.clone()) } else { json!(self.key()) },
            "roles" => json!((0..self.below(4))
                .map(|_| self.pick_str(&["employee", "manager", "hr", "org_admin", "platform_admin", "Employee", "", "boss"]))
                .collect::<Vec<_>>()),
            "accounts" => json!((0..self.below(4))
                .map(|_| if self.chance(60) { self.pick(&w.members).clone() } else { self.string() })
                .collect::<Vec<_>>()),
            "network_id" => json!(self.text_for("network_id", w)),
            "peers" => {
                let n = if self.chance(3) { 300 } else { self.below(5) };
                let peers: Vec<Value> = (0..n)
                    .map(|_| {
                        let mut p = serde_json::Map::new();
                        for f in ["public_key", "last_handshake", "rx_bytes", "tx_bytes", "endpoint"] {
                            if self.chance(85) {
                                p.insert(f.to_owned(), self.json_for(f, w));
                            }
                        }
                        Value::Object(p)
                    })
                    .collect();
                json!(peers)
            }
            "endpoint" => if self.chance(15) { Value::Null } else { json!(self.endpoint()) },
            "services" => json!((0..self.below(4)).map(|_| self.pick_str(&["helpdesk", "remote_access", "workstations", "x"])).collect::<Vec<_>>()),
            "state" => json!(self.pick_str(&["active", "suspended", "requested", "x", ""])),
            "service" => json!(self.pick_str(&["remote_access", "workstations", "meetings", "x"])),
            "role" => json!(self.pick_str(&["employee", "hr", "org_admin", "platform_admin", "x"])),
            "kind" => json!(self.pick_str(&["local_authority", "region", "x"])),
            "parent_id" => json!(self.pick(&w.orgs).clone()),
            _ => json!(self.text_for(name, w)),
        }
    }

    /// A valid value for a query parameter or a text field (a CSV cell), by its name; `None` when the fuzzer has
    /// no idea.
    fn valid_text(&mut self, name: &str, w: &World) -> Option<String> {
        let n = self.below(1_000_000);
        let day = |d: i64| {
            let t = time::OffsetDateTime::now_utc() + time::Duration::days(d);
            t.replace_time(time::Time::MIDNIGHT).format(&time::format_description::well_known::Rfc3339).unwrap()
        };
        Some(match name {
            "from" => day(1),
            "until" => day(3),
            "limit" => "10".into(),
            "before_seq" => "100".into(),
            "wait" => "0".into(),
            "after" => String::new(),
            "all" => "true".into(),
            "mine" => "false".into(),
            "status" => "online".into(),
            "mode" => "pooled".into(),
            "protocol" => "rdp".into(),
            "tag" | "tags" => "ufficio".into(),
            "q" => "pc".into(),
            "org_id" => w.r.to_string(),
            "hostname" => format!("fz-{n}.regione.example"),
            "address" => format!("127.0.50.{}", n % 250),
            "port" => "3389".into(),
            "os" => "Windows 11".into(),
            "location" => "Milano".into(),
            "mac" => format!("02:00:00:01:{:02x}:{:02x}", n / 256 % 256, n % 256),
            "assignee" | "account" => String::new(),
            _ => return None,
        })
    }

    /// A valid value for a body property (the VPN takes ports as numbers and endpoints as hosts; the workstations
    /// take every field as text); `None` when the fuzzer has no idea.
    fn valid_json(&mut self, name: &str, vpn: bool, w: &World) -> Option<Value> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let n = self.below(1_000_000);
        Some(match name {
            "name" => json!(format!("Fuzz {n}")),
            "ipv4_cidr" => json!(format!("100.{}.{}.0/19", 64 + self.below(64), self.below(8) * 32)),
            "ipv6_cidr" => if self.chance(50) { Value::Null } else { json!(format!("fd00:e:{n:x}::/64")) },
            "dns" => json!(["192.168.50.53"]),
            "require_approval" | "generate_key" => json!(false),
            "default_expiry_days" => json!(1 + self.below(3650)),
            "endpoint" if vpn => json!("192.0.2.1"),
            "endpoint" => json!("192.0.2.7:51820"),
            "port" if vpn => json!(51820),
            "public_key" => json!(self.valid_key()),
            "routes" | "allow" => json!(["192.168.50.0/24"]),
            "roles" => json!(["employee"]),
            "accounts" => json!([w.members[0]]),
            "network_id" => json!(w.net),
            "last_handshake" => json!(now - 30),
            "rx_bytes" | "tx_bytes" => json!(self.below(1 << 20)),
            "peers" => json!([self.peer(w, false)]),
            _ => json!(self.valid_text(name, w)?),
        })
    }

    /// One peer of a gateway's status report: valid, or with one field broken.
    fn peer(&mut self, w: &World, broken: bool) -> Value {
        let mut p = serde_json::Map::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let key = if self.chance(70) { w.live_key.clone() } else { self.valid_key() };
        p.insert("public_key".into(), json!(key));
        p.insert("last_handshake".into(), json!(now - self.below(600) as i64));
        p.insert("rx_bytes".into(), json!(self.below(1 << 30)));
        p.insert("tx_bytes".into(), json!(self.below(1 << 30)));
        p.insert("endpoint".into(), json!(format!("192.0.2.{}:{}", self.below(256), 1024 + self.below(60_000))));
        if broken {
            let f = self.pick_str(&["public_key", "last_handshake", "rx_bytes", "tx_bytes", "endpoint"]);
            if self.chance(10) {
                p.remove(&f);
            } else {
                p.insert(f.clone(), self.json_for(&f, w));
            }
        }
        Value::Object(p)
    }

    /// A JSON body for an operation whose schema has `fields`: every field valid but one (or two) broken, every
    /// field broken, or no JSON object at all.
    fn json_body(&mut self, fields: &[String], vpn: bool, w: &World) -> Vec<u8> {
        if !fields.is_empty() && self.chance(60) {
            let mut m = serde_json::Map::new();
            for f in fields {
                let v = match self.valid_json(f, vpn, w) {
                    Some(v) => v,
                    None => self.json_for(f, w),
                };
                m.insert(f.clone(), v);
            }
            // A slot: on quarter hours, within the next weeks, the end after the start.
            if m.contains_key("starts_at") {
                let day = time::OffsetDateTime::now_utc() + time::Duration::days(1 + self.below(50) as i64);
                let start = day.replace_time(time::Time::from_hms(6 + self.below(12) as u8, 15 * self.below(4) as u8, 0).unwrap());
                let end = start + time::Duration::minutes(15 * (1 + self.below(16) as i64));
                let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
                m.insert("starts_at".into(), json!(fmt(start)));
                m.insert("ends_at".into(), json!(fmt(end)));
            }
            for _ in 0..1 + usize::from(self.chance(20)) {
                let f = self.pick(fields).clone();
                if self.chance(12) {
                    m.remove(&f);
                } else if f == "peers" {
                    let n = if self.chance(5) { 300 } else { 1 + self.below(3) };
                    let peers: Vec<Value> = (0..n).map(|_| { let broken = self.chance(80); self.peer(w, broken) }).collect();
                    m.insert(f, json!(peers));
                } else {
                    let v = self.json_for(&f, w);
                    m.insert(f, v);
                }
            }
            return Value::Object(m).to_string().into_bytes();
        }
        match self.below(20) {
            0 => self.value(0).to_string().into_bytes(),
            1 => self.pick_str(&[
                "{\"name\": ", "[1, 2]", "null", "\"x\"", "1e999", "NaN", "{\"name\": NaN}", "{\"name\": 1e999}",
                "{\"a\": 1, \"a\": 2}", "{\"name\": \"\\ud800\"}", "", " ", "{}", "{\"peers\": {}}", "{\"dns\": \"1.1.1.1\"}",
            ])
            .into_bytes(),
            2 => {
                let depth = 1 + self.below(3000);
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
            }
            3 => {
                let mut b = b"{\"name\": \"".to_vec();
                b.extend_from_slice(&[0xFF, 0xFE, 0xC3, 0x28, 0xE0]);
                b.extend_from_slice(b"\"}");
                b
            }
            _ => {
                let mut m = serde_json::Map::new();
                for f in fields {
                    if self.chance(85) {
                        m.insert(f.clone(), self.json_for(f, w));
                    }
                }
                if self.chance(10) || fields.is_empty() {
                    let k = self.pick_str(FIELD_NAMES);
                    m.insert(k.clone(), self.json_for(&k, w));
                }
                Value::Object(m).to_string().into_bytes()
            }
        }
    }

    /// A CSV body: a header of known, unknown or repeated columns, rows of good and bad cells, quoting gone wrong,
    /// a huge line, bytes that are not UTF-8, a byte-order mark.
    fn csv_body(&mut self, w: &World) -> Vec<u8> {
        const COLUMNS: [&str; 10] = ["hostname", "address", "protocol", "port", "os", "location", "tags", "mac", "mode", "assignee"];
        match self.below(30) {
            0 => return Vec::new(),
            1 => return (0..self.below(2000)).map(|_| (self.next() & 0xFF) as u8).collect(),
            2 => return format!("hostname\n{}\n", "a".repeat(300_000)).into_bytes(),
            3 => return format!("hostname,{}\n", "x,".repeat(50_000)).into_bytes(),
            4 => return "hostname\n\"unterminated\npc-1\n".into(),
            _ => {}
        }
        let sep = *self.pick(&[",", ",", ";", "\t"]);
        let eol = *self.pick(&["\n", "\r\n", "\r"]);
        let mut cols: Vec<String> = COLUMNS.iter().filter(|_| self.chance(50)).map(|c| (*c).to_owned()).collect();
        if self.chance(90) && !cols.iter().any(|c| c == "hostname") {
            cols.insert(0, "hostname".into());
        }
        self.shuffle(&mut cols);
        if self.chance(5) {
            cols.push("colour".into());
        }
        if self.chance(5) {
            cols.push("hostname".into());
        }
        if self.chance(10) {
            cols = cols.iter().map(|c| format!(" {} ", c.to_uppercase())).collect();
        }
        let mut out: Vec<u8> = Vec::new();
        if self.chance(20) {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        out.extend_from_slice(cols.join(sep).as_bytes());
        out.extend_from_slice(eol.as_bytes());
        let rows = if self.chance(3) { 2000 } else { self.below(12) };
        for _ in 0..rows {
            let mut cells: Vec<Vec<u8>> = Vec::new();
            // Mostly valid rows, one cell of them broken; sometimes every cell random.
            let random_row = self.chance(30);
            let broken = if cols.is_empty() { 0 } else { self.below(cols.len() + 1) };
            for (k, c) in cols.iter().enumerate() {
                let name = c.trim().to_lowercase();
                let valid = if random_row || k == broken { None } else { self.valid_text(&name, w) };
                let mut cell = match (valid, name.as_str()) {
                    (Some(_), "mode") if self.chance(30) => "dedicated".into(),
                    (Some(v), _) => v,
                    (None, "hostname") if self.chance(30) => format!("fz-{}.regione.example", self.below(1_000_000)),
                    (None, _) => self.text_for(&name, w),
                };
                if self.chance(5) {
                    cell = format!("\"{}\"", cell.replace('"', "\"\""));
                } else if self.chance(3) {
                    cell = format!("\"{cell}\nsecond line\"");
                }
                let mut bytes = cell.into_bytes();
                if self.chance(3) {
                    bytes.push(*self.pick(&[0xFF, 0xE0, 0xC3, 0x80]));
                }
                if self.chance(2) {
                    bytes.push(0);
                }
                cells.push(bytes);
            }
            if self.chance(5) {
                cells.push(b"extra".to_vec());
            } else if self.chance(5) {
                cells.pop();
            }
            out.extend_from_slice(&cells.join(sep.as_bytes()));
            out.extend_from_slice(eol.as_bytes());
        }
        out
    }
}

/// Property names the bodies of the API use: for keys added where they do not belong.
const FIELD_NAMES: &[&str] = &[
    "name", "kind", "ipa_code", "tax_code", "pec", "parent_id", "email", "role", "service", "activate", "state",
    "limit", "note", "org_name", "contact_name", "contact_email", "services", "ipv4_cidr", "ipv6_cidr", "dns",
    "require_approval", "default_expiry_days", "endpoint", "port", "public_key", "routes", "roles", "accounts", "allow",
    "network_id", "generate_key", "peers", "hostname", "address", "protocol", "os", "location", "tags", "mac", "mode",
    "assignee", "starts_at", "ends_at", "account", "",
];

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

/// One operation of the served document: what the fuzzer sends garbage to.
struct Op {
    method: Method,
    template: String,
    /// Its declared query parameters.
    query: Vec<String>,
    /// The properties of its JSON request body, when it takes one.
    fields: Vec<String>,
    json: bool,
    csv: bool,
    /// Authenticated by a gateway's token rather than a person's.
    gateway: bool,
}

/// The top-level properties of a schema, following a `$ref` and `allOf`.
fn schema_fields(doc: &Value, schema: &Value) -> Vec<String> {
    let s = match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    };
    let mut out: Vec<String> = s["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for sub in s["allOf"].as_array().into_iter().flatten() {
        out.extend(schema_fields(doc, sub));
    }
    out
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().into_iter().flatten() {
        for (m, op) in item.as_object().into_iter().flatten() {
            let method = match m.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                "patch" => Method::PATCH,
                _ => continue,
            };
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let content = &op["requestBody"]["content"];
            let json = content.get("application/json").is_some();
            let csv = content.as_object().is_some_and(|c| c.keys().any(|k| k.contains("csv")));
            let fields = if json { schema_fields(doc, &content["application/json"]["schema"]) } else { Vec::new() };
            let gateway = op["security"].as_array().into_iter().flatten().any(|s| s.get("gateway_token").is_some() || s.get("delivery_token").is_some());
            ops.push(Op { method, template: template.clone(), query, fields, json, csv, gateway });
        }
    }
    // The document's order, made explicit: the same seed sends the same requests.
    ops.sort_by(|a, b| (a.template.as_str(), a.method.as_str()).cmp(&(b.template.as_str(), b.method.as_str())));
    ops
}

/// A small API client for the fuzzer's setup: (status, JSON body or Null).
async fn call(api: &Api, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = api.req(m, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let s = r.status().as_u16();
    (s, serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null))
}

/// The real objects behind the path placeholders, kept alive while the fuzzer deletes, revokes and cancels them:
/// [`World::heal`] makes new ones (the old ids stay in the pools: a deleted object's id is garbage too).
struct World {
    r: OrgId,
    c: OrgId,
    orgs: Vec<String>,
    /// Members of Regione Lombardia by id: real entries for access groups.
    members: Vec<String>,
    spare_token: String,
    onboarding: String,
    networks: Vec<String>,
    gateways: Vec<String>,
    groups: Vec<String>,
    devices: Vec<String>,
    workstations: Vec<String>,
    bookings: Vec<String>,
    /// The live ones, last made.
    net: String,
    approval_net: String,
    group: String,
    device: String,
    pending: String,
    pooled: String,
    dedicated: String,
    booking: String,
    /// The token of a gateway of `net` (its id is not in the pools: rotating it would end the token).
    gateway_token: String,
    /// The region's help-desk mail delivery token (for `POST /api/v1/helpdesk/inbound/{org}`).
    delivery_token: String,
    /// The public key of a live device: for `key-in-use` and for the gateway's status reports.
    live_key: String,
    /// Makes names, pools and slots fresh.
    serial: u32,
    /// Heals that found something to replace, by what.
    healed: std::collections::BTreeMap<&'static str, u32>,
}

impl World {
    fn pick_net(&self, rng: &mut Rng) -> String {
        match rng.below(6) {
            0 => rng.uuid(),
            1 => rng.string(),
            _ => rng.pick(&self.networks).clone(),
        }
    }

    /// The live object for a placeholder, consistent with the others of the path (the organisation that owns it,
    /// the network of the gateway, the workstation of the booking): garbage then reaches past the lookups.
    fn coherent(&self, name: &str, template: &str, rng: &mut Rng) -> Option<String> {
        Some(match name {
            "id" if template.starts_with("/api/v1/account/tokens") => self.spare_token.clone(),
            "id" if template.starts_with("/api/v1/onboarding") => self.onboarding.clone(),
            "id" | "org" => self.r.to_string(),
            "account_id" => self.members[0].clone(),
            "role" => "employee".into(),
            "service" => rng.pick_str(&["remote_access", "workstations"]),
            "key" => "vpn_seats".into(),
            "network" if template.contains("{gateway}") || template.contains("{group}") => self.net.clone(),
            "network" => if rng.chance(70) { self.net.clone() } else { self.approval_net.clone() },
            "gateway" => self.gateways.last()?.clone(),
            "group" => self.group.clone(),
            "device" => if rng.chance(70) { self.device.clone() } else { self.pending.clone() },
            "workstation" if template.contains("{booking}") => self.pooled.clone(),
            "workstation" => if rng.chance(50) { self.pooled.clone() } else { self.dedicated.clone() },
            "booking" => self.booking.clone(),
            _ => return None,
        })
    }

    /// Real values for a placeholder of `template`, if the fuzzer knows any.
    fn real(&self, name: &str, template: &str) -> Vec<String> {
        match name {
            "id" if template.starts_with("/api/v1/account/tokens") => vec![self.spare_token.clone()],
            "id" if template.starts_with("/api/v1/onboarding") => vec![self.onboarding.clone()],
            "id" | "org" => self.orgs.clone(),
            "account_id" => self.members.iter().take(1).cloned().collect(),
            "role" => ["employee", "hr", "platform_admin", "org_admin"].map(String::from).to_vec(),
            "service" => ["remote_access", "workstations", "meetings", "grants"].map(String::from).to_vec(),
            "key" => ["vpn_seats", "workstations", "rooms"].map(String::from).to_vec(),
            "network" => self.networks.clone(),
            "gateway" => self.gateways.clone(),
            "group" => self.groups.clone(),
            "device" => self.devices.clone(),
            "workstation" => self.workstations.clone(),
            "booking" => self.bookings.clone(),
            _ => Vec::new(),
        }
    }

    async fn new(app: &TestApp, admin: &Api, emp: &Api) -> World {
        let (r, c) = (app.org_id("r_lombar").await, app.org_id("c_b157").await);
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
        let mut members = Vec::new();
        for e in ["dipendente@regione.example", "manager@regione.example", "admin@regione.example"] {
            members.push(app.account_id(e).await.to_string());
        }
        let mut w = World {
            r,
            c,
            orgs: vec![r.to_string(), c.to_string()],
            members,
            spare_token: spare.id.to_string(),
            onboarding: onboarding.id.to_string(),
            networks: Vec::new(),
            gateways: Vec::new(),
            groups: Vec::new(),
            devices: Vec::new(),
            workstations: Vec::new(),
            bookings: Vec::new(),
            net: String::new(),
            approval_net: String::new(),
            group: String::new(),
            device: String::new(),
            pending: String::new(),
            pooled: String::new(),
            dedicated: String::new(),
            booking: String::new(),
            gateway_token: String::new(),
            delivery_token: String::new(),
            live_key: String::new(),
            serial: 0,
            healed: Default::default(),
        };
        w.heal(app, admin, emp).await;
        for (what, pool) in [
            ("network", &w.networks),
            ("gateway", &w.gateways),
            ("access group", &w.groups),
            ("device", &w.devices),
            ("workstation", &w.workstations),
            ("booking", &w.bookings),
        ] {
            assert!(!pool.is_empty(), "the fuzzer's setup made no {what}");
        }
        assert!(!w.gateway_token.is_empty() && !w.pending.is_empty(), "the fuzzer's setup made a gateway and a pending device");
        w.healed.clear();
        w
    }

    /// Puts back what the fuzzer took away: the employee's role, the subscriptions and quotas, and a live object of
    /// every kind (a network and one asking for approval, a gateway whose token works, an access group, an active
    /// and a pending device, a pooled and a dedicated workstation, a booking).
    async fn heal(&mut self, app: &TestApp, admin: &Api, emp: &Api) {
        // Only what is missing is written: every write here empties caches and lengthens the audit chain.
        let sys = Actor::system();
        let employee = app.account_id("dipendente@regione.example").await;
        let roles = agilekit_kernel::identity::memberships(&app.db, employee).await.unwrap();
        if !roles.iter().any(|m| m.org_id == self.r && m.role == "employee") {
            let _ = agilekit_kernel::identity::grant(&app.db, &sys, self.r, employee, agilekit_kernel::identity::Role::Employee).await;
        }
        for (org, service, key) in [
            (self.r, Service::RemoteAccess, "vpn_seats"),
            (self.r, Service::Workstations, "workstations"),
            (self.c, Service::RemoteAccess, "vpn_seats"),
        ] {
            let subs = catalogue::subscriptions(&app.db, org).await.unwrap();
            match subs.iter().find(|v| v.subscription.service_key == service.key()) {
                None => {
                    let _ = catalogue::subscribe(&app.db, &sys, org, service, true).await;
                }
                Some(v) => {
                    if v.subscription.state != "active" {
                        let _ = catalogue::set_state(&app.db, &sys, org, service, catalogue::SubState::Active).await;
                    }
                    if v.quotas.iter().any(|q| q.quota_key == key && q.limit_value != Some(4500)) {
                        let _ = catalogue::set_quota(&app.db, &sys, org, service, key, Some(4500)).await;
                    }
                }
            }
        }
        for service in [Service::RemoteAccess, Service::Workstations] {
            if catalogue::services(&app.db).await.unwrap().iter().any(|s| s.key == service.key() && !s.available) {
                let _ = catalogue::set_available(&app.db, &sys, service, true).await;
            }
        }

        let r = self.r;
        let vpn = format!("/api/v1/orgs/{r}/vpn");
        // Networks: one open, one asking for approval.
        for approval in [false, true] {
            let current = if approval { &self.approval_net } else { &self.net };
            let (s, n) = call(admin, Method::GET, &format!("{vpn}/networks/{current}"), None).await;
            if s == 200 && n["require_approval"] == approval {
                continue;
            }
            let mut made = None;
            for _ in 0..40 {
                self.serial += 1;
                let k = self.serial;
                let body = json!({"name": format!("Fuzz {k}"), "ipv4_cidr": format!("172.{}.{}.0/19", 16 + k / 8 % 16, k % 8 * 32),
                    "ipv6_cidr": format!("fd00:f:{k:x}::/64"), "dns": ["192.168.50.53"], "require_approval": approval});
                let (s, n) = call(admin, Method::POST, &format!("{vpn}/networks"), Some(body)).await;
                if s == 201 {
                    made = n["id"].as_str().map(str::to_owned);
                    break;
                }
            }
            let Some(id) = made else { continue };
            *self.healed.entry("network").or_default() += 1;
            self.networks.push(id.clone());
            if approval {
                self.approval_net = id;
            } else {
                self.net = id;
            }
        }
        // The help desk's mail delivery token (the fuzzer may have replaced it): a working one, checked with an empty
        // message (422 with it, 401 without).
        let url = app.at(&format!("/api/v1/helpdesk/inbound/{r}"));
        let s = admin.c.post(&url).bearer_auth(&self.delivery_token).body("").send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        if s != 422 {
            let (s, t) = call(admin, Method::POST, &format!("/api/v1/orgs/{r}/helpdesk/mail/token"), None).await;
            if s == 201 {
                *self.healed.entry("delivery token").or_default() += 1;
                self.delivery_token = t["token"].as_str().unwrap_or_default().to_owned();
            }
        }
        let net = self.net.clone();
        // A gateway whose token works (asked without a wait: never the long-poll).
        let ok = !self.gateway_token.is_empty()
            && admin
                .c
                .get(app.at("/api/v1/gateway/config?wait=0"))
                .bearer_auth(&self.gateway_token)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
        if !ok {
            for _ in 0..2 {
                self.serial += 1;
                let body = json!({"name": format!("Gateway {}", self.serial), "endpoint": "192.0.2.1", "port": 51820,
                    "public_key": KeyPair::generate().public.to_base64(), "routes": ["192.168.50.0/24"]});
                let (s, g) = call(admin, Method::POST, &format!("{vpn}/networks/{net}/gateways"), Some(body.clone())).await;
                if s == 201 {
                    *self.healed.entry("gateway token").or_default() += 1;
                    self.gateway_token = g["token"].as_str().unwrap_or_default().to_owned();
                    break;
                }
            }
        }
        // A second gateway of the network, whose id the fuzzer may change, rotate and delete.
        let (_, gws) = call(admin, Method::GET, &format!("{vpn}/networks/{net}/gateways"), None).await;
        let last = self.gateways.last().cloned().unwrap_or_default();
        if !gws.as_array().is_some_and(|a| a.iter().any(|g| g["id"] == last.as_str())) {
            self.serial += 1;
            let body = json!({"name": format!("Gateway {} bis", self.serial), "endpoint": "192.0.2.2", "port": 51821,
                "public_key": KeyPair::generate().public.to_base64(), "routes": ["192.168.60.0/24"]});
            let (s, g) = call(admin, Method::POST, &format!("{vpn}/networks/{net}/gateways"), Some(body)).await;
            if s == 201 {
                *self.healed.entry("gateway").or_default() += 1;
                self.gateways.extend(g["id"].as_str().map(str::to_owned));
            }
        }
        // An access group of the network.
        let (_, groups) = call(admin, Method::GET, &format!("{vpn}/networks/{net}/access-groups"), None).await;
        if !groups.as_array().is_some_and(|a| a.iter().any(|g| g["id"] == self.group.as_str())) {
            self.serial += 1;
            let body = json!({"name": format!("Gruppo {}", self.serial), "roles": ["employee"], "accounts": [self.members[1]],
                "allow": ["192.168.50.0/24"]});
            let (s, g) = call(admin, Method::POST, &format!("{vpn}/networks/{net}/access-groups"), Some(body)).await;
            if s == 201 {
                *self.healed.entry("access group").or_default() += 1;
                self.group = g["id"].as_str().unwrap_or_default().to_owned();
                self.groups.push(self.group.clone());
            }
        }
        // The employee's devices: an active one, a pending one.
        for (pending, network) in [(false, net.clone()), (true, self.approval_net.clone())] {
            let current = if pending { &self.pending } else { &self.device };
            let (s, d) = call(emp, Method::GET, &format!("{vpn}/devices/{current}"), None).await;
            if s == 200 && d["state"] == if pending { "pending" } else { "active" } {
                continue;
            }
            self.serial += 1;
            let key = KeyPair::generate().public.to_base64();
            let body = json!({"name": format!("Portatile {}", self.serial), "network_id": network, "public_key": key});
            let (s, d) = call(emp, Method::POST, &format!("{vpn}/devices"), Some(body)).await;
            if s == 201 {
                *self.healed.entry("device").or_default() += 1;
                let id = d["id"].as_str().unwrap_or_default().to_owned();
                self.devices.push(id.clone());
                if pending {
                    self.pending = id;
                } else {
                    self.device = id;
                    self.live_key = key;
                }
            }
        }

        // Workstations: a pooled one with a booking of the employee, a dedicated one assigned to them.
        let ws = format!("/api/v1/orgs/{r}/workstations");
        for dedicated in [false, true] {
            let current = if dedicated { &self.dedicated } else { &self.pooled };
            let (s, x) = call(admin, Method::GET, &format!("{ws}/{current}"), None).await;
            let fine = s == 200
                && if dedicated {
                    x["assignee"]["email"] == "dipendente@regione.example" && x["protocol"] == "rdp"
                } else {
                    x["mode"] == "pooled"
                };
            if fine {
                continue;
            }
            self.serial += 1;
            let k = self.serial;
            let body = json!({"hostname": format!("fuzz-{k}.regione.example"), "address": format!("127.0.40.{}", k % 250),
                "mac": format!("02:00:00:00:{:02x}:{:02x}", k / 256 % 256, k % 256),
                "mode": if dedicated { "dedicated" } else { "pooled" },
                "assignee": if dedicated { "dipendente@regione.example" } else { "" }});
            let (s, x) = call(admin, Method::POST, &ws, Some(body)).await;
            if s == 201 {
                *self.healed.entry("workstation").or_default() += 1;
                let id = x["id"].as_str().unwrap_or_default().to_owned();
                self.workstations.push(id.clone());
                if dedicated {
                    self.dedicated = id;
                } else {
                    self.pooled = id;
                }
            }
        }
        let pooled = self.pooled.clone();
        let (_, list) = call(emp, Method::GET, &format!("{ws}/{pooled}/bookings?mine=true"), None).await;
        if !list.as_array().is_some_and(|a| a.iter().any(|b| b["id"] == self.booking.as_str())) {
            for _ in 0..30 {
                self.serial += 1;
                let k = i64::from(self.serial);
                // Within the 14 days the list shows by default, which is how the next heal finds it.
                let day = time::OffsetDateTime::now_utc() + time::Duration::days(2 + k % 11);
                let start = day.replace_time(time::Time::from_hms((6 + k % 12) as u8, 0, 0).unwrap());
                let end = start + time::Duration::minutes(45);
                let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
                let body = json!({"starts_at": fmt(start), "ends_at": fmt(end)});
                let (s, b) = call(emp, Method::POST, &format!("{ws}/{pooled}/bookings"), Some(body)).await;
                if s == 201 {
                    *self.healed.entry("booking").or_default() += 1;
                    self.booking = b["id"].as_str().unwrap_or_default().to_owned();
                    self.bookings.push(self.booking.clone());
                    break;
                }
            }
        }
    }
}

/// Whether the path of a long-poll must not wait: a request carrying the gateway's real token gets `wait=0` or a
/// `wait` that cannot be read, so the answer is immediate.
fn no_wait(rng: &mut Rng) -> String {
    if rng.chance(75) {
        "0".into()
    } else {
        rng.pick_str(&["-1", "26", "x", "2.5", "99999999999999999999999", "0x5", "%FF"])
    }
}

both_engines!(fuzzing_every_route_never_gives_a_5xx_or_a_non_problem_error, |app| async move {
    let started = std::time::Instant::now();
    let doc = ok_json(bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap(), 200).await;
    let ops = operations(&doc);
    // The document is the fuzzer's list: it must hold every route the sources declare (checked on its own by the
    // OpenAPI test) — here, that it holds the remote-access and workstations domains at least.
    for needle in ["/api/v1/gateway/config", "/api/v1/orgs/{org}/vpn/devices", "/api/v1/orgs/{id}/workstations/import"] {
        assert!(ops.iter().any(|o| o.template == needle), "the document lists {needle}");
    }
    let people = [
        ("operatore@aria.example", 20u64),
        ("admin@regione.example", 40),
        ("dipendente@regione.example", 25),
        ("admin@comune.example", 10),
    ];
    let mut apis = Vec::new();
    for (email, _) in people {
        apis.push(Api::new(&app, email).await);
    }
    let (admin, emp) = (Api::new(&app, "admin@regione.example").await, Api::new(&app, "dipendente@regione.example").await);
    let mut world = World::new(&app, &admin, &emp).await;
    // A connection per request: one the server closes after refusing a body too large to read (413) is never
    // reused, so a failed request is always that request's own failure (a handler that panicked drops it).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    let seed = std::env::var("AGILEKIT_FUZZ_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(0x5eed_a91e_u64);
    let requests = std::env::var("AGILEKIT_FUZZ_REQUESTS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(FUZZ_REQUESTS);
    let mut rng = Rng::seeded(seed);
    for _ in 0..20 {
        let k = rng.valid_key();
        assert!(agilekit_remote_access::model::WgKey::parse(&k).is_ok(), "the fuzzer's keys are keys: {k}");
    }
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS];
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let mut per_op = std::collections::BTreeMap::<String, std::collections::BTreeMap<u16, u32>>::new();
    let mut unknown_placeholders = std::collections::BTreeSet::<String>::new();
    let mut field_errors = std::collections::BTreeSet::<String>::new();
    let mut slowest: Vec<(std::time::Duration, String, u16)> = Vec::new();
    let (mut waited, mut healing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let mut order: Vec<usize> = Vec::new();
    let mut sent = 0usize;
    while sent < requests {
        if order.is_empty() {
            order = (0..ops.len()).collect();
            rng.shuffle(&mut order);
        }
        let op = &ops[order.pop().unwrap()];
        if sent.is_multiple_of(40) && sent > 0 {
            let t = std::time::Instant::now();
            world.heal(&app, &admin, &emp).await;
            healing += t.elapsed();
        }
        let i = sent;
        sent += 1;

        // Who asks.
        let gateway_token = op.gateway && rng.chance(75);
        let bearer = if gateway_token {
            Some(if op.template.contains("/helpdesk/inbound/") { world.delivery_token.clone() } else { world.gateway_token.clone() })
        } else if rng.chance(5) {
            // A header can carry no control character: garbage of every other kind.
            let junk: String = rng.string().chars().filter(|c| !c.is_control()).collect();
            match rng.below(5) {
                0 => None,
                1 => Some(format!("gw_{junk}")),
                2 => Some(format!("ak_{junk}")),
                3 => Some(format!("{}{junk}", world.gateway_token)),
                _ => Some(junk),
            }
        } else {
            let roll = rng.below(95) as u64;
            let mut acc = 0;
            let mut who = 0;
            for (k, (_, weight)) in people.iter().enumerate() {
                acc += weight;
                if roll < acc {
                    who = k;
                    break;
                }
            }
            Some(apis[who].bearer.clone())
        };

        // The path, with real ids most of the time.
        let mut path = String::new();
        let coherent = rng.chance(75);
        for part in op.template.split('/').skip(1) {
            path.push('/');
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let real = world.real(name, &op.template);
                    if real.is_empty() {
                        unknown_placeholders.insert(name.to_owned());
                    }
                    let v = if let Some(v) = world.coherent(name, &op.template, &mut rng).filter(|_| coherent && rng.chance(95)) {
                        v
                    } else if !real.is_empty() && rng.chance(60) {
                        rng.pick(&real).clone()
                    } else if rng.chance(50) {
                        rng.uuid()
                    } else {
                        segment(&rng.string())
                    };
                    path.push_str(&v);
                }
                None => path.push_str(part),
            }
        }

        // The query: garbage for the declared parameters, sometimes more.
        let mut query: Vec<(String, String)> = Vec::new();
        let one_bad = if rng.chance(50) && !op.query.is_empty() { Some(rng.below(op.query.len())) } else { None };
        for (k, name) in op.query.iter().enumerate() {
            let v = match one_bad {
                Some(bad) if bad != k => rng.valid_text(name, &world),
                Some(_) => Some(rng.text_for(name, &world)),
                None if rng.chance(60) => Some(rng.text_for(name, &world)),
                None => None,
            };
            if let Some(v) = v {
                query.push((name.clone(), segment(&v)));
            }
        }
        if rng.chance(8) {
            query.push((rng.pick_str(&["limit", "after", "x", "wait", "", "a b"]), segment(&rng.string())));
        }
        if rng.chance(4) {
            query.push((rng.pick_str(&["after", "limit", "%zz", "%FF%FE"]), rng.pick_str(&["%zz", "%FF", "%", "a=b=c", "1&&"])));
        }
        if rng.chance(3) && !query.is_empty() {
            let dup = query[0].clone();
            query.push(dup);
        }
        if gateway_token && op.query.iter().any(|q| q == "wait") {
            query.retain(|(k, _)| k != "wait");
            query.push(("wait".into(), no_wait(&mut rng)));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
        }

        let method = if rng.chance(85) { op.method.clone() } else { rng.pick(&methods).clone() };
        let mut req = client.request(method.clone(), format!("{}{}", app.url, path));
        if let Some(b) = &bearer {
            let scheme = if rng.chance(97) { "Bearer".to_owned() } else { rng.pick_str(&["bearer", "Basic", "Bearer  ", ""]) };
            req = req.header("authorization", format!("{scheme} {b}"));
        }
        // The body the operation takes, broken; or one it does not take.
        let (ct, body): (Option<String>, Option<Vec<u8>>) = if op.csv && rng.chance(85) {
            let ct = if rng.chance(75) {
                rng.pick_str(&["text/csv", "text/csv; charset=utf-8", "application/csv", "text/plain", "TEXT/CSV"])
            } else {
                rng.pick_str(&["application/json", "multipart/form-data", "", "text/csv/x", "application/octet-stream"])
            };
            (Some(ct), Some(rng.csv_body(&world)))
        } else if op.json && rng.chance(85) {
            let ct = if rng.chance(85) {
                rng.pick_str(&["application/json", "application/json; charset=utf-8", "application/merge-patch+json"])
            } else {
                rng.pick_str(&["text/plain", "application/x-www-form-urlencoded", "text/csv", "", "application/jsonx"])
            };
            (Some(ct), Some(rng.json_body(&op.fields, op.template.contains("/vpn/") || op.gateway, &world)))
        } else {
            match rng.below(6) {
                0 => (Some("application/json".into()), Some(rng.json_body(&op.fields, op.template.contains("/vpn/") || op.gateway, &world))),
                1 => (Some("text/csv".into()), Some(rng.csv_body(&world))),
                2 => (Some("application/json".into()), Some(Vec::new())),
                _ => (None, None),
            }
        };
        if let Some(ct) = ct.filter(|c| !c.is_empty()) {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }

        let what = format!("request {i} (AGILEKIT_FUZZ_SEED={seed:#x}) {method} {path}");
        let asked = std::time::Instant::now();
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what} failed: {e:?}"));
        let status = resp.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        *per_op.entry(format!("{} {}", op.method, op.template)).or_default().entry(status.as_u16()).or_default() += 1;
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = resp.text().await.unwrap_or_default();
        waited += asked.elapsed();
        slowest.push((asked.elapsed(), format!("{method} {}", path.chars().take(160).collect::<String>()), status.as_u16()));
        slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        slowest.truncate(8);
        let shown: String = body.chars().take(2000).collect();
        assert!(!status.is_server_error(), "{what} gave {status}: {shown}");
        if status.is_client_error() {
            assert!(ct.starts_with(PROBLEM), "{what} gave {status} as {ct:?}: {shown}");
            if method != Method::HEAD {
                let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: the problem is not JSON: {shown}"));
                assert!(v["code"].is_string(), "{what}: a problem has a code: {shown}");
                assert_eq!(v["status"], status.as_u16(), "{what}: the problem's status: {shown}");
                if status == StatusCode::UNPROCESSABLE_ENTITY {
                    let errors = v["errors"].as_array().map(Vec::as_slice).unwrap_or_default();
                    assert!(
                        !errors.is_empty() && errors.iter().all(|e| e["field"].is_string() && e["code"].is_string()),
                        "{what}: a 422 names the fields at fault: {shown}"
                    );
                    for e in errors {
                        // `peers[3].public_key` and `peers[0].public_key` are one complaint.
                        let field: String = e["field"].as_str().unwrap_or("").chars().filter(|c| !c.is_ascii_digit()).collect();
                        field_errors.insert(format!("{field}:{}", e["code"].as_str().unwrap_or("")));
                    }
                }
            }
        }
    }
    world.heal(&app, &admin, &emp).await;
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz {:?} seed {seed:#x}: {sent} requests over {} operations in {elapsed:.1?}; statuses {statuses:?}; \
         objects replaced {:?}; placeholders without real ids {unknown_placeholders:?}",
        app.engine,
        ops.len(),
        world.healed
    );
    for (op, s) in &per_op {
        eprintln!("  {op}: {s:?}");
    }
    eprintln!("  {} distinct field errors: {field_errors:?}", field_errors.len());
    eprintln!("  slowest: {slowest:?}; answers took {waited:.1?}, heals {healing:.1?}");
    // Every operation was tried several times; those whose ids the fuzzer knows got past the routers' refusals and
    // the lookups at least once (a new domain's objects are garbage ids until the fuzzer learns to make some).
    for op in &ops {
        let key = format!("{} {}", op.method, op.template);
        let seen = per_op.get(&key).cloned().unwrap_or_default();
        assert!(seen.values().sum::<u32>() >= 5, "{key} was tried {seen:?} (AGILEKIT_FUZZ_SEED={seed:#x})");
        let known = op.template.split('/').filter_map(|p| p.strip_prefix('{')?.strip_suffix('}')).all(|p| !unknown_placeholders.contains(p));
        if known {
            assert!(
                seen.keys().any(|s| ![401, 404, 405].contains(s)),
                "{key} never got past authentication and lookups (AGILEKIT_FUZZ_SEED={seed:#x}): {seen:?}"
            );
        }
    }
    assert!(statuses.keys().any(|s| *s < 300), "some requests succeeded (AGILEKIT_FUZZ_SEED={seed:#x}): {statuses:?}");
    assert!(statuses.contains_key(&422), "some reached validation (AGILEKIT_FUZZ_SEED={seed:#x}): {statuses:?}");
    // The fuzzer did not lock itself out by accident.
    assert_eq!(apis[0].get("/api/v1/me").await.status(), StatusCode::OK);
    app
});
