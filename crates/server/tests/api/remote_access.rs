//! Remote access (crates/remote-access): networks, gateways, access groups, device enrolment, the gateway's
//! long-poll and status report, expiry, status and metrics, through HTTP on both engines.

use std::time::{Duration, Instant};

use agilekit_kernel::Db;
use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue;
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use agilekit_remote_access::model::KeyPair;
use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

/// This domain's organisation-scoped routes, each tried by this module's isolation test with another
/// organisation's IDs: (method, path template, plausible body). The guard in `isolation.rs` reads this table.
/// `{org}` is the victim organisation; `{network}`, `{gateway}`, `{group}` and `{device}` are its objects; `{key}`
/// is a fresh public key.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/vpn/networks", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/networks", r#"{"name":"X","ipv4_cidr":"10.200.0.0/19","ipv6_cidr":null,"dns":[]}"#),
    ("GET", "/api/v1/orgs/{org}/vpn/networks/{network}", ""),
    ("PUT", "/api/v1/orgs/{org}/vpn/networks/{network}", r#"{"name":"Hacked","dns":[]}"#),
    ("DELETE", "/api/v1/orgs/{org}/vpn/networks/{network}", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/networks/{network}/gateways", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/networks/{network}/gateways", r#"{"name":"X","endpoint":"192.0.2.9","port":51820,"public_key":"{key}","routes":[]}"#),
    ("PUT", "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}", r#"{"name":"X","endpoint":"192.0.2.9","port":51820,"public_key":"{key}","routes":[]}"#),
    ("DELETE", "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}/token", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups", r#"{"name":"X","roles":["employee"],"allow":["0.0.0.0/0"]}"#),
    ("PUT", "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups/{group}", r#"{"name":"X","roles":["employee"],"allow":["0.0.0.0/0"]}"#),
    ("DELETE", "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups/{group}", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/gateways", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/devices", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/devices?all=true", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/devices", r#"{"name":"X","network_id":"{network}","public_key":"{key}"}"#),
    ("GET", "/api/v1/orgs/{org}/vpn/devices/{device}", ""),
    ("GET", "/api/v1/orgs/{org}/vpn/devices/{device}/config", ""),
    ("POST", "/api/v1/orgs/{org}/vpn/devices/{device}/rename", r#"{"name":"Hacked"}"#),
    ("POST", "/api/v1/orgs/{org}/vpn/devices/{device}/revoke", "{}"),
    ("POST", "/api/v1/orgs/{org}/vpn/devices/{device}/renew", "{}"),
    ("POST", "/api/v1/orgs/{org}/vpn/devices/{device}/approve", "{}"),
    ("GET", "/api/v1/orgs/{org}/vpn/status", ""),
    ("GET", "/vpn/devices/{device}", ""),
    ("GET", "/vpn/devices/{device}/wg.conf", ""),
    ("POST", "/vpn/devices/{device}/rename", "name=Hacked"),
    ("POST", "/vpn/devices/{device}/renew", ""),
    ("POST", "/vpn/devices/{device}/revoke", ""),
    ("GET", "/orgs/{org}/vpn", ""),
    ("POST", "/orgs/{org}/vpn/networks", "name=X&ipv4_cidr=10.200.0.0%2F19"),
    ("POST", "/orgs/{org}/vpn/networks/{network}/gateways", "name=X&endpoint=192.0.2.9&public_key={key}&routes="),
    ("POST", "/orgs/{org}/vpn/networks/{network}/gateways/{gateway}/delete", ""),
    ("POST", "/orgs/{org}/vpn/networks/{network}/access-groups", "name=X&roles=employee&allow=0.0.0.0%2F0"),
    ("POST", "/orgs/{org}/vpn/networks/{network}/access-groups/{group}/delete", ""),
    ("POST", "/orgs/{org}/vpn/devices/{device}/approve", ""),
    ("POST", "/orgs/{org}/vpn/devices/{device}/revoke", ""),
];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

async fn send(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = c.request(m, &url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn post(app: &TestApp, c: &Client, path: &str, body: Value, want: u16) -> Value {
    let (s, v, text) = send(c, "POST", app.at(path), Some(body.clone())).await;
    assert_eq!(s, want, "POST {path} {body} answered {s}: {text}");
    v
}

async fn get(app: &TestApp, c: &Client, path: &str, want: u16) -> Value {
    let (s, v, text) = send(c, "GET", app.at(path), None).await;
    assert_eq!(s, want, "GET {path} answered {s}: {text}");
    v
}

/// The field errors of a 422 problem, as (field, code) pairs.
fn field_errors(v: &Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| (e["field"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

fn has_error(v: &Value, field: &str, code: &str) -> bool {
    field_errors(v).iter().any(|(f, c)| f == field && c == code)
}

fn key() -> String {
    KeyPair::generate().public.to_base64()
}

async fn seats_used(db: &Db, org: OrgId) -> i64 {
    catalogue::subscriptions(db, org)
        .await
        .unwrap()
        .iter()
        .find(|v| v.subscription.service_key == "remote_access")
        .and_then(|v| v.quotas.iter().find(|q| q.quota_key == "vpn_seats"))
        .map_or(0, |q| q.used)
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    let row: (i64,) = agilekit_kernel::db_run!(db, |p| sqlx::query_as(sql).fetch_one(p).await.unwrap());
    row.0
}

async fn head_seq(db: &Db) -> i64 {
    count(db, "SELECT seq FROM audit_head WHERE id = 1").await
}

async fn version(db: &Db, network: &str) -> i64 {
    let id: uuid::Uuid = network.parse().unwrap();
    let row: (i64,) = agilekit_kernel::db_run!(db, |p| sqlx::query_as("SELECT version FROM vpn_networks WHERE id = $1")
        .bind(id).fetch_one(p).await.unwrap());
    row.0
}

/// A network with one gateway in the organisation, made by its admin: (network id, gateway token).
async fn setup(app: &TestApp, admin: &Client, org: OrgId, v4: &str, v6: Option<&str>) -> (String, String) {
    let net = post(app, admin, &format!("/api/v1/orgs/{org}/vpn/networks"),
        json!({"name": format!("Rete {v4}"), "ipv4_cidr": v4, "ipv6_cidr": v6, "dns": ["192.168.50.53"]}), 201).await;
    let id = net["id"].as_str().unwrap().to_owned();
    let gw = post(app, admin, &format!("/api/v1/orgs/{org}/vpn/networks/{id}/gateways"),
        json!({"name": "Concentratore", "endpoint": "192.0.2.1", "port": 51820, "public_key": key(),
               "routes": ["192.168.50.0/24"]}), 201).await;
    (id, gw["token"].as_str().unwrap().to_owned())
}

fn bare() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn gateway_config(app: &TestApp, token: &str, query: &str) -> Value {
    let r = bare().get(app.at(&format!("/api/v1/gateway/config{query}"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn peer_keys(cfg: &Value) -> Vec<String> {
    cfg["peers"].as_array().unwrap().iter().map(|p| p["public_key"].as_str().unwrap().to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Enrolment

both_engines!(enrolment_allocates_the_next_address_takes_a_seat_and_renders_the_config, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", Some("fd00:8::/64")).await;
    let n = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}"), 200).await;
    assert_eq!(n["capacity"], 8189, "a /19 holds 8,189 devices: {n}");
    assert_eq!(n["default_expiry_days"], 90);

    let employee = app.login("dipendente@regione.example").await;
    let seats = seats_used(&app.db, org).await;
    let v0 = version(&app.db, &net).await;
    let k1 = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Portatile", "network_id": net, "public_key": k1}), 201).await;
    assert_eq!(d["state"], "active");
    assert_eq!(d["address_v4"], "10.8.0.2");
    assert_eq!(d["address_v6"], "fd00:8::2");
    assert!(d.get("private_key").is_none(), "no private key when the device made its own: {d}");
    let expires = time::OffsetDateTime::parse(d["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "90 days by default, got {days}");
    let config = d["config"].as_str().unwrap();
    assert!(config.contains("Address = 10.8.0.2/32, fd00:8::2/128\n"), "{config}");
    assert!(config.contains("Endpoint = 192.0.2.1:51820\n"), "{config}");
    assert!(config.contains("AllowedIPs = 192.168.50.0/24, 10.8.0.1/32, fd00:8::1/128\n"), "{config}");
    assert!(config.contains("DNS = 192.168.50.53\n"), "{config}");
    assert!(config.contains("PersistentKeepalive = 25\n"));
    assert!(config.contains("# PrivateKey = "), "{config}");
    assert_eq!(seats_used(&app.db, org).await, seats + 1, "one seat taken");
    assert!(version(&app.db, &net).await > v0, "the peer set changed: the version moved");

    // The next device takes the next address; the file downloads as plain text.
    let d2 = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Telefono", "network_id": net, "public_key": key()}), 201).await;
    assert_eq!(d2["address_v4"], "10.8.0.3");
    let id = d["id"].as_str().unwrap();
    let r = employee.get(app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{id}/config"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("Address = 10.8.0.2/32") && !text.lines().any(|l| l.starts_with("PrivateKey")), "{text}");

    // The owner lists them; the gateway gets both as peers with their addresses and access.
    let mine = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"), 200).await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let cfg = gateway_config(&app, &token, "").await;
    assert_eq!(cfg["listen_port"], 51820);
    assert_eq!(cfg["addresses"], json!(["10.8.0.1/19", "fd00:8::1/64"]));
    assert_eq!(cfg["poll_secs"], 25);
    assert_eq!(cfg["version"], version(&app.db, &net).await);
    let p = cfg["peers"].as_array().unwrap().iter().find(|p| p["public_key"] == k1.as_str()).expect("the device is a peer");
    assert_eq!(p["allowed_ips"], json!(["10.8.0.2/32", "fd00:8::2/128"]));
    let a = cfg["access"].as_array().unwrap().iter().find(|a| a["peer"] == k1.as_str()).unwrap();
    assert_eq!(a["allow"], json!(["192.168.50.0/24"]), "no access group: the gateway's routes");

    // An access group narrows what the employees' devices reach, and moves the version.
    let v1 = version(&app.db, &net).await;
    post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}/access-groups"),
        json!({"name": "Uffici", "roles": ["manager"], "accounts": [], "allow": ["192.168.70.0/24"]}), 201).await;
    assert!(version(&app.db, &net).await > v1);
    let cfg = gateway_config(&app, &token, "").await;
    let a = cfg["access"].as_array().unwrap().iter().find(|a| a["peer"] == k1.as_str()).unwrap();
    assert_eq!(a["allow"], json!([]), "the employee is in no group: reaches nothing behind the gateway");
    let who = app.account_id("dipendente@regione.example").await;
    post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}/access-groups"),
        json!({"name": "Sara", "roles": [], "accounts": [who.to_string()], "allow": ["192.168.80.0/24", "192.168.70.0/24"]}), 201).await;
    let cfg = gateway_config(&app, &token, "").await;
    let a = cfg["access"].as_array().unwrap().iter().find(|a| a["peer"] == k1.as_str()).unwrap();
    assert_eq!(a["allow"], json!(["192.168.70.0/24", "192.168.80.0/24"]));
    let text = employee.get(app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{id}/config"))).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("AllowedIPs = 192.168.70.0/24, 192.168.80.0/24, 10.8.0.1/32, fd00:8::1/128\n"), "{text}");

    // Rename and renew are the owner's; both are audited.
    let r = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/rename"), json!({"name": "Portatile di casa"}), 200).await;
    assert_eq!(r["name"], "Portatile di casa");
    let e = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/rename"), json!({"name": "  "}), 422).await;
    assert!(has_error(&e, "name", "required"), "{e}");
    let before = head_seq(&app.db).await;
    post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/renew"), json!({}), 200).await;
    assert_eq!(head_seq(&app.db).await, before + 1);
    // Someone else in the organisation does not see it at all.
    let other = app.login("manager@regione.example").await;
    get(&app, &other, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 404).await;
    post(&app, &other, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/revoke"), json!({}), 404).await;
    // The admin sees every device; HR too; an employee may not ask for all.
    let all = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/devices?all=true"), 200).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices?all=true"), 403).await;

    // A gap left by a revoked device is the lowest free address: the next device takes it, then the pool goes on.
    post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/revoke"), json!({}), 200).await;
    let d3 = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Tablet", "network_id": net, "public_key": key()}), 201).await;
    assert_eq!(d3["address_v4"], "10.8.0.2");
    let d4 = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Desktop", "network_id": net, "public_key": key()}), 201).await;
    assert_eq!(d4["address_v4"], "10.8.0.4");
    app
});

both_engines!(a_generated_key_is_shown_once_and_never_stored, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, _) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Tablet", "network_id": net, "generate_key": true}), 201).await;
    let private = d["private_key"].as_str().expect("the private key, once").to_owned();
    let pk = agilekit_remote_access::model::WgKey::parse(&private).unwrap();
    assert_eq!(KeyPair::public_of(&pk).to_base64(), d["public_key"].as_str().unwrap(), "the pair matches");
    assert!(d["config"].as_str().unwrap().contains(&format!("\nPrivateKey = {private}\n")));
    // Never again: not in the device, not in its file, not in the database, not in the audit log.
    let id = d["id"].as_str().unwrap();
    let again = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 200).await;
    assert!(!again.to_string().contains(&private) && again.get("private_key").is_none());
    let text = employee.get(app.at(&format!("/api/v1/orgs/{org}/vpn/devices/{id}/config"))).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains(&private) && text.contains("# PrivateKey = "), "{text}");
    let columns: Vec<(String,)> = match &app.db {
        Db::Sqlite(p) => sqlx::query_as("SELECT name FROM pragma_table_info('vpn_devices')").fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'vpn_devices'")
            .fetch_all(p).await.unwrap(),
    };
    assert!(columns.len() > 10, "{columns:?}");
    assert!(!columns.iter().any(|c| c.0.contains("private") || c.0.contains("secret")), "{columns:?}");
    let like = format!("%{private}%");
    let n: (i64,) = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM vpn_devices WHERE public_key LIKE $1 OR name LIKE $1 OR address_v4 LIKE $1)
              + (SELECT COUNT(*) FROM audit_log WHERE after_json LIKE $1 OR before_json LIKE $1)
              + (SELECT COUNT(*) FROM jobs WHERE payload LIKE $1)"
    ).bind(&like).fetch_one(p).await.unwrap());
    assert_eq!(n.0, 0, "the private key is stored nowhere");
    // Both at once is a mistake.
    let e = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "X", "network_id": net, "generate_key": true, "public_key": key()}), 422).await;
    assert!(has_error(&e, "public_key", "key-choice"), "{e}");
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Bad input

both_engines!(bad_keys_pools_and_cidrs_are_field_errors_and_change_nothing, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, _) = setup(&app, &admin, org, "10.8.0.0/19", Some("fd00:8::/64")).await;
    let employee = app.login("dipendente@regione.example").await;
    let before = head_seq(&app.db).await;
    let seats = seats_used(&app.db, org).await;
    let nets = format!("/api/v1/orgs/{org}/vpn/networks");
    let devices = format!("/api/v1/orgs/{org}/vpn/devices");

    for bad in ["not-a-key", "AAAA", &"A".repeat(44), &hex_key()] {
        let e = post(&app, &employee, &devices, json!({"name": "X", "network_id": net, "public_key": bad}), 422).await;
        assert!(has_error(&e, "public_key", "invalid-key"), "{bad}: {e}");
    }
    let e = post(&app, &employee, &devices, json!({"name": "", "network_id": "nope"}), 422).await;
    assert!(has_error(&e, "name", "required") && has_error(&e, "public_key", "required") && has_error(&e, "network_id", "not-found"), "{e}");
    // Two networks in the organisation (the demo's and this one): which one must be said.
    let e = post(&app, &employee, &devices, json!({"name": "X", "public_key": key()}), 422).await;
    assert!(has_error(&e, "network_id", "required"), "{e}");

    let e = post(&app, &admin, &nets, json!({"name": "A", "ipv4_cidr": "10.8.16.0/20"}), 422).await;
    assert!(has_error(&e, "ipv4_cidr", "pool-too-small"), "a /20 holds 4,093 devices, the region has 4,500 seats: {e}");
    let e = post(&app, &admin, &nets, json!({"name": "B", "ipv4_cidr": "10.8.0.0/18"}), 422).await;
    assert!(has_error(&e, "ipv4_cidr", "cidr-overlap"), "{e}");
    let e = post(&app, &admin, &nets, json!({"name": "C", "ipv4_cidr": "10.16.0.0/19", "ipv6_cidr": "fd00::/16"}), 422).await;
    assert!(has_error(&e, "ipv6_cidr", "cidr-overlap") && !has_error(&e, "ipv4_cidr", "cidr-overlap"), "{e}");
    let e = post(&app, &admin, &nets, json!({"name": "D", "ipv4_cidr": "10.16.0.1/19", "ipv6_cidr": "10.17.0.0/19"}), 422).await;
    assert!(has_error(&e, "ipv4_cidr", "cidr-host-bits") && has_error(&e, "ipv6_cidr", "cidr-family"), "{e}");
    let e = post(&app, &admin, &nets, json!({"name": "E", "ipv4_cidr": "10.16.0.0", "dns": ["x"], "default_expiry_days": 0}), 422).await;
    assert!(has_error(&e, "ipv4_cidr", "format") && has_error(&e, "dns[0]", "format") && has_error(&e, "default_expiry_days", "out-of-range"), "{e}");
    let e = post(&app, &admin, &nets, json!({"name": "Rete 10.8.0.0/19", "ipv4_cidr": "10.16.0.0/19"}), 422).await;
    assert!(has_error(&e, "name", "taken"), "{e}");
    let gws = format!("/api/v1/orgs/{org}/vpn/networks/{net}/gateways");
    let e = post(&app, &admin, &gws, json!({"name": "G", "endpoint": "bad host", "port": 70000, "public_key": "x", "routes": ["192.168.1.1/24"]}), 422).await;
    for (f, c) in [("endpoint", "format"), ("port", "out-of-range"), ("public_key", "invalid-key"), ("routes[0]", "cidr-host-bits")] {
        assert!(has_error(&e, f, c), "{f} {c}: {e}");
    }
    let groups = format!("/api/v1/orgs/{org}/vpn/networks/{net}/access-groups");
    let stranger = app.account_id("admin@comune.example").await;
    let e = post(&app, &admin, &groups, json!({"name": "G", "roles": ["platform_admin", "nope"], "accounts": [stranger.to_string(), "x"], "allow": []}), 422).await;
    for (f, c) in [("roles[0]", "format"), ("roles[1]", "format"), ("accounts[0]", "not-found"), ("accounts[1]", "format"), ("allow", "required")] {
        assert!(has_error(&e, f, c), "{f} {c}: {e}");
    }
    // Not an admin: no networks of one's own.
    post(&app, &employee, &nets, json!({"name": "F", "ipv4_cidr": "10.16.0.0/19"}), 403).await;

    assert_eq!(head_seq(&app.db).await, before, "nothing was changed");
    assert_eq!(seats_used(&app.db, org).await, seats);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vpn_devices").await, 0);
    app
});

fn hex_key() -> String {
    "ab".repeat(22)
}

both_engines!(an_exhausted_pool_is_refused_and_writes_nothing, |app| async move {
    // Comune di Brescia: its admin is also an employee. A /30 holds one device; the operator first lowers the
    // seats so the pool may be created, then raises them again: the pool, not the seats, runs out.
    let org = app.org_id("c_b157").await;
    let operator = app.login("operatore@aria.example").await;
    let quota = format!("/api/v1/orgs/{org}/subscriptions/remote_access/quotas/vpn_seats");
    let (s, _, t) = send(&operator, "PUT", app.at(&quota), Some(json!({"limit": 1}))).await;
    assert_eq!(s, 200, "{t}");
    let admin = app.login("admin@comune.example").await;
    let e = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks"), json!({"name": "Mini", "ipv4_cidr": "10.9.0.0/31"}), 422).await;
    assert!(has_error(&e, "ipv4_cidr", "pool-too-small"), "a /31 holds nobody: {e}");
    let (net, token) = setup(&app, &admin, org, "10.9.0.0/30", None).await;
    let (s, _, t) = send(&operator, "PUT", app.at(&quota), Some(json!({"limit": 150}))).await;
    assert_eq!(s, 200, "{t}");

    let devices = format!("/api/v1/orgs/{org}/vpn/devices");
    let d = post(&app, &admin, &devices, json!({"name": "Uno", "public_key": key()}), 201).await;
    assert_eq!(d["address_v4"], "10.9.0.2", "the only address after the gateway's .1");
    // The same key again is refused even before the pool is looked at.
    let e = post(&app, &admin, &devices, json!({"name": "Doppio", "public_key": d["public_key"]}), 422).await;
    assert!(has_error(&e, "public_key", "key-in-use"), "{e}");

    let before = head_seq(&app.db).await;
    let v = version(&app.db, &net).await;
    let seats = seats_used(&app.db, org).await;
    let e = post(&app, &admin, &devices, json!({"name": "Due", "public_key": key()}), 422).await;
    assert!(has_error(&e, "network_id", "pool-exhausted"), "{e}");
    assert_eq!(head_seq(&app.db).await, before, "nothing audited");
    assert_eq!(version(&app.db, &net).await, v, "the version did not move");
    assert_eq!(seats_used(&app.db, org).await, seats, "no seat taken");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vpn_devices").await, 1);
    assert_eq!(peer_keys(&gateway_config(&app, &token, "").await).len(), 1);

    // Revoked, its address is free for the next device (never two live devices on one address).
    let id = d["id"].as_str().unwrap();
    post(&app, &admin, &format!("{devices}/{id}/revoke"), json!({}), 200).await;
    let d2 = post(&app, &admin, &devices, json!({"name": "Due", "public_key": key()}), 201).await;
    assert_eq!(d2["address_v4"], "10.9.0.2");
    app
});

both_engines!(no_subscription_or_no_free_seat_is_refused, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, _) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let operator = app.login("operatore@aria.example").await;
    let devices = format!("/api/v1/orgs/{org}/vpn/devices");
    let before = head_seq(&app.db).await;

    // The subscription suspended: not entitled.
    let state = format!("/api/v1/orgs/{org}/subscriptions/remote_access/state");
    assert_eq!(send(&operator, "PUT", app.at(&state), Some(json!({"state": "suspended"}))).await.0, 200);
    let mid = head_seq(&app.db).await;
    let e = post(&app, &employee, &devices, json!({"name": "X", "network_id": net, "public_key": key()}), 403).await;
    assert_eq!(e["code"], "not-entitled", "{e}");
    assert_eq!(head_seq(&app.db).await, mid);
    assert_eq!(send(&operator, "PUT", app.at(&state), Some(json!({"state": "active"}))).await.0, 200);

    // Every seat taken: quota exhausted.
    let used = seats_used(&app.db, org).await;
    let quota = format!("/api/v1/orgs/{org}/subscriptions/remote_access/quotas/vpn_seats");
    assert_eq!(send(&operator, "PUT", app.at(&quota), Some(json!({"limit": used + 1}))).await.0, 200);
    post(&app, &employee, &devices, json!({"name": "Uno", "network_id": net, "public_key": key()}), 201).await;
    let mid = head_seq(&app.db).await;
    let e = post(&app, &employee, &devices, json!({"name": "Due", "network_id": net, "public_key": key()}), 409).await;
    assert_eq!(e["code"], "quota-exhausted", "{e}");
    assert_eq!(head_seq(&app.db).await, mid, "nothing written");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vpn_devices").await, 1);
    assert!(head_seq(&app.db).await > before);

    // An organisation without remote access: ARIFL's people (none in the demo) and outsiders get nothing.
    let arifl = app.org_id("arifl").await;
    post(&app, &employee, &format!("/api/v1/orgs/{arifl}/vpn/devices"), json!({"name": "X", "public_key": key()}), 404).await;
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Revocation, approval, expiry

both_engines!(revoking_frees_the_seat_moves_the_version_and_tells_the_gateway, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let devices = format!("/api/v1/orgs/{org}/vpn/devices");
    let k = key();
    let d = post(&app, &employee, &devices, json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    let id = d["id"].as_str().unwrap().to_owned();
    assert!(peer_keys(&gateway_config(&app, &token, "").await).contains(&k));
    let seats = seats_used(&app.db, org).await;
    let v = version(&app.db, &net).await;
    let jobs = count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await;

    // The admin revokes it: the owner is told by mail.
    let r = post(&app, &admin, &format!("{devices}/{id}/revoke"), json!({}), 200).await;
    assert_eq!(r["state"], "revoked");
    assert_eq!(seats_used(&app.db, org).await, seats - 1, "the seat is free again");
    assert!(version(&app.db, &net).await > v);
    assert!(!peer_keys(&gateway_config(&app, &token, "").await).contains(&k));
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await, jobs + 1);
    let entries = agilekit_kernel::audit::list(&app.db, &agilekit_kernel::audit::Filter {
        org: Some(org), action_prefix: Some("vpn.device.revoke".into()), ..Default::default()
    }, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entity_id, id);

    // Again: nothing changes (no second release, no audit).
    let before = head_seq(&app.db).await;
    let r = post(&app, &employee, &format!("{devices}/{id}/revoke"), json!({}), 200).await;
    assert_eq!(r["state"], "revoked");
    assert_eq!(head_seq(&app.db).await, before);
    assert_eq!(seats_used(&app.db, org).await, seats - 1);
    // A revoked device cannot be renewed; the same key may be enrolled again.
    let e = post(&app, &employee, &format!("{devices}/{id}/renew"), json!({}), 409).await;
    assert_eq!(e["code"], "device-not-live");
    post(&app, &employee, &devices, json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    app
});

both_engines!(pending_devices_wait_for_approval, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let net = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks"),
        json!({"name": "Con approvazione", "ipv4_cidr": "10.8.0.0/19", "require_approval": true, "default_expiry_days": 30}), 201).await;
    let net = net["id"].as_str().unwrap().to_owned();
    let gw = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}/gateways"),
        json!({"name": "GW", "endpoint": "vpn.regione.example", "public_key": key(), "routes": []}), 201).await;
    assert_eq!(gw["port"], 51820, "the default port");
    let token = gw["token"].as_str().unwrap();
    let employee = app.login("dipendente@regione.example").await;
    let k = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    assert_eq!(d["state"], "pending");
    assert!(d["config"].as_str().unwrap().contains("Endpoint = vpn.regione.example:51820"));
    let id = d["id"].as_str().unwrap();
    assert!(peer_keys(&gateway_config(&app, token, "").await).is_empty(), "a pending device is no peer");
    // The employee may not approve their own device.
    post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/approve"), json!({}), 403).await;
    let jobs = count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await;
    let r = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/approve"), json!({}), 200).await;
    assert_eq!(r["state"], "active");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await, jobs + 1, "the owner is told");
    assert_eq!(peer_keys(&gateway_config(&app, token, "").await), vec![k]);
    let e = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/approve"), json!({}), 409).await;
    assert_eq!(e["code"], "not-pending");
    app
});

both_engines!(the_sweep_expires_devices_and_frees_their_seats, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let devices = format!("/api/v1/orgs/{org}/vpn/devices");
    let k = key();
    let old = post(&app, &employee, &devices, json!({"name": "Vecchio", "network_id": net, "public_key": k}), 201).await;
    let fresh = post(&app, &employee, &devices, json!({"name": "Nuovo", "network_id": net, "public_key": key()}), 201).await;
    let old_id: uuid::Uuid = old["id"].as_str().unwrap().parse().unwrap();
    let past = agilekit_kernel::clock::stamp(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    agilekit_kernel::db_run!(&app.db, |p| { sqlx::query("UPDATE vpn_devices SET expires_at = $1 WHERE id = $2").bind(past).bind(old_id).execute(p).await.unwrap(); });
    let seats = seats_used(&app.db, org).await;
    let v = version(&app.db, &net).await;

    assert_eq!(agilekit_remote_access::service::sweep(&app.db).await.unwrap(), 1);
    let d = get(&app, &employee, &format!("{devices}/{old_id}"), 200).await;
    assert_eq!(d["state"], "expired");
    let d = get(&app, &employee, &format!("{devices}/{}", fresh["id"].as_str().unwrap()), 200).await;
    assert_eq!(d["state"], "active");
    assert_eq!(seats_used(&app.db, org).await, seats - 1);
    assert!(version(&app.db, &net).await > v);
    assert!(!peer_keys(&gateway_config(&app, &token, "").await).contains(&k));
    let n = agilekit_kernel::audit::list(&app.db, &agilekit_kernel::audit::Filter {
        org: Some(org), action_prefix: Some("vpn.device.expire".into()), ..Default::default()
    }, 10).await.unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].actor_id, None, "the system did it");
    // Nothing more to do the second time.
    assert_eq!(agilekit_remote_access::service::sweep(&app.db).await.unwrap(), 0);
    post(&app, &employee, &format!("{devices}/{old_id}/renew"), json!({}), 409).await;

    // A device whose owner left the organisation is revoked by the sweep too.
    let who = app.account_id("dipendente@regione.example").await;
    let (s, _, t) = send(&admin, "DELETE", app.at(&format!("/api/v1/orgs/{org}/members/{who}/roles/employee")), None).await;
    assert_eq!(s, 204, "{t}");
    assert_eq!(agilekit_remote_access::service::sweep(&app.db).await.unwrap(), 1);
    assert!(peer_keys(&gateway_config(&app, &token, "").await).is_empty());
    app
});

// ---------------------------------------------------------------------------------------------------------------
// The gateway's side

both_engines!(the_long_poll_answers_within_a_second_of_a_revocation, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let k = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let cfg = gateway_config(&app, &token, "").await;
    let v = cfg["version"].as_i64().unwrap();

    // The poll waits while nothing changes…
    let url = app.at(&format!("/api/v1/gateway/config?after={v}"));
    let t0 = Instant::now();
    let poll = tokio::spawn({
        let token = token.clone();
        async move {
            let r = bare().get(url).bearer_auth(token).send().await.unwrap();
            (Instant::now(), r.json::<Value>().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!poll.is_finished(), "nothing changed: the poll is held");
    // …and answers as soon as the device is revoked.
    let revoked_at = Instant::now();
    post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}/revoke"), json!({}), 200).await;
    let (answered, cfg) = poll.await.unwrap();
    let lag = answered.saturating_duration_since(revoked_at);
    assert!(lag < Duration::from_secs(1), "the poll answered {lag:?} after the revocation");
    assert!(answered - t0 > Duration::from_millis(500));
    assert!(cfg["version"].as_i64().unwrap() > v);
    assert!(!peer_keys(&cfg).contains(&k));

    // A change made by another node (no wake-up in this process) is seen by re-reading the version.
    let v = cfg["version"].as_i64().unwrap();
    let url = app.at(&format!("/api/v1/gateway/config?after={v}"));
    let poll = tokio::spawn({
        let token = token.clone();
        async move {
            let r = bare().get(url).bearer_auth(token).send().await.unwrap();
            (Instant::now(), r.json::<Value>().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let net_id: uuid::Uuid = net.parse().unwrap();
    let changed_at = Instant::now();
    agilekit_kernel::db_run!(&app.db, |p| { sqlx::query("UPDATE vpn_networks SET version = version + 1 WHERE id = $1").bind(net_id).execute(p).await.unwrap(); });
    let (answered, cfg) = poll.await.unwrap();
    assert!(answered.saturating_duration_since(changed_at) < Duration::from_secs(1), "another node's change seen late");
    assert_eq!(cfg["version"].as_i64().unwrap(), v + 1);

    // With no change the poll ends after its wait with the same version.
    let t = Instant::now();
    let cfg = gateway_config(&app, &token, &format!("?after={}&wait=1", v + 1)).await;
    assert_eq!(cfg["version"].as_i64().unwrap(), v + 1);
    assert!(t.elapsed() >= Duration::from_millis(900), "held for the wait");
    // Bad parameters are field errors.
    let r = bare().get(app.at("/api/v1/gateway/config?after=x&wait=99")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(has_error(&e, "after", "format") && has_error(&e, "wait", "out-of-range"), "{e}");
    app
});

both_engines!(gateways_authenticate_with_their_token_and_report_status, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    // Bad tokens: missing, wrong, a person's API token, another shape.
    let user_token = token::create(&app.db, &Actor::system(), app.account_id("admin@regione.example").await, "t").await.unwrap().1;
    for bad in [None, Some("gw_wrong"), Some(user_token.as_str()), Some("")] {
        let mut rb = bare().get(app.at("/api/v1/gateway/config"));
        if let Some(b) = bad {
            rb = rb.bearer_auth(b);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401, "{bad:?}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/problem+json"));
        let r = bare().post(app.at("/api/v1/gateway/status")).bearer_auth(bad.unwrap_or("x")).json(&json!({"peers": []})).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }

    let employee = app.login("dipendente@regione.example").await;
    let k = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"),
        json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    let id = d["id"].as_str().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = bare().post(app.at("/api/v1/gateway/status")).bearer_auth(&token)
        .json(&json!({"peers": [{"public_key": k, "last_handshake": now - 30, "rx_bytes": 1234, "tx_bytes": 5678, "endpoint": "198.51.100.7:40000"},
                                {"public_key": key(), "last_handshake": null, "rx_bytes": 0, "tx_bytes": 0, "endpoint": null}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 204);
    let d = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 200).await;
    assert_eq!(d["connected"], true);
    assert_eq!(d["rx_bytes"], 1234);
    assert_eq!(d["tx_bytes"], 5678);
    assert_eq!(d["endpoint"], "198.51.100.7:40000");
    let r = bare().post(app.at("/api/v1/gateway/status")).bearer_auth(&token)
        .json(&json!({"peers": [{"public_key": "nope", "rx_bytes": 0, "tx_bytes": 0, "endpoint": "x"}]})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(has_error(&e, "peers[0].public_key", "invalid-key") && has_error(&e, "peers[0].endpoint", "format"), "{e}");

    // The status board and the metrics.
    let s = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/status"), 200).await;
    assert_eq!(s["connected"], 1);
    assert_eq!(s["devices_live"], 1);
    assert_eq!(s["seats_limit"], 4500);
    let gw = s["gateways"].as_array().unwrap().iter().find(|g| g["name"] == "Concentratore").unwrap();
    assert_eq!(gw["online"], true);
    assert!(gw["last_seen_at"].is_string());
    get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/status"), 403).await;
    let m = bare().get(app.at("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("agilekit_vpn_peers{org=\"r_lombar\",state=\"active\"} 1"), "{m}");
    assert!(m.contains("agilekit_vpn_peers_connected{org=\"r_lombar\"} 1"), "{m}");
    assert!(m.contains("agilekit_vpn_gateway_last_seen_seconds{gateway="), "{m}");

    // A new token replaces the old one at once.
    let gws = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}/gateways"), 200).await;
    let gid = gws[0]["id"].as_str().unwrap();
    let fresh = post(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{net}/gateways/{gid}/token"), json!({}), 200).await;
    let r = bare().get(app.at("/api/v1/gateway/config")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    gateway_config(&app, fresh["token"].as_str().unwrap(), "").await;
    app
});

both_engines!(every_vpn_route_is_in_the_openapi_document, |app| async move {
    let doc: Value = bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut routes: Vec<(String, String)> = SCOPED_ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_lowercase(), p.split('?').next().unwrap().to_owned()))
        .collect();
    routes.push(("get".into(), "/api/v1/gateway/config".into()));
    routes.push(("post".into(), "/api/v1/gateway/status".into()));
    for (m, p) in routes.iter().filter(|(_, p)| p.starts_with("/api/")) {
        let op = &doc["paths"][p.as_str()][m.as_str()];
        assert!(op.is_object(), "{m} {p} is not documented");
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{m} {p} has no tag");
    }
    assert!(doc["components"]["securitySchemes"]["gateway_token"].is_object());
    assert!(doc["components"]["schemas"]["GatewayConfig"].is_object());
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Isolation

both_engines!(another_organisations_vpn_is_403_or_404_and_unchanged, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let admin = app.login("admin@regione.example").await;
    // The victim's network (the demo's), gateway, access group and an employee's device.
    let nets = get(&app, &admin, &format!("/api/v1/orgs/{region}/vpn/networks"), 200).await;
    let network = nets[0]["id"].as_str().unwrap().to_owned();
    let gws = get(&app, &admin, &format!("/api/v1/orgs/{region}/vpn/networks/{network}/gateways"), 200).await;
    let gateway = gws[0]["id"].as_str().unwrap().to_owned();
    let g = post(&app, &admin, &format!("/api/v1/orgs/{region}/vpn/networks/{network}/access-groups"),
        json!({"name": "Gruppo segreto", "roles": ["employee"], "allow": ["10.10.5.0/24"]}), 201).await;
    let group = g["id"].as_str().unwrap().to_owned();
    let employee = app.login("dipendente@regione.example").await;
    let victim_key = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{region}/vpn/devices"),
        json!({"name": "Portatile riservato", "network_id": network, "public_key": victim_key}), 201).await;
    let device = d["id"].as_str().unwrap().to_owned();

    let attacker_id = app.account_id("admin@comune.example").await;
    let (_, attacker_token) = token::create(&app.db, &Actor::system(), attacker_id, "attacker").await.unwrap();
    let attacker = app.login("admin@comune.example").await;
    let fill = |p: &str, org: OrgId| {
        let k = key();
        let k = if p.starts_with('{') { k } else { url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>() };
        p.replace("{org}", &org.to_string())
            .replace("{network}", &network)
            .replace("{gateway}", &gateway)
            .replace("{group}", &group)
            .replace("{device}", &device)
            .replace("{key}", &k)
    };
    let secrets = ["Portatile riservato", victim_key.as_str(), "Gruppo segreto", "Rete regionale", "Concentratore Milano",
                   "dipendente@regione.example", "10.64.0.2", "10.10.5.0"];
    let before = head_seq(&app.db).await;
    let seats = seats_used(&app.db, region).await;
    let mut failures = Vec::new();
    // First with the victim's organisation in the path; then with the attacker's own organisation and the victim's
    // objects (the routes that name one).
    for (pass, org) in [(1, region), (2, town)] {
        for (method, template, body) in SCOPED_ROUTES {
            if pass == 2 && !["{network}", "{device}"].iter().any(|p| template.contains(p)) {
                continue;
            }
            let url = app.at(&fill(template, org));
            let is_api = template.starts_with("/api/");
            let build = |c: &Client| {
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut rb = c.request(m, &url);
                if !body.is_empty() {
                    let ct = if is_api { "application/json" } else { "application/x-www-form-urlencoded" };
                    rb = rb.header("content-type", ct).body(fill(body, org));
                }
                rb
            };
            let r = if is_api { build(&bare()).bearer_auth(&attacker_token) } else { build(&attacker) }.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            // With the attacker's own organisation, a body naming the victim's network is a field error (422).
            let ok = status == 403 || status == 404 || (pass == 2 && status == 422 && text.contains("not-found"));
            if !ok {
                failures.push(format!("pass {pass}: {method} {template}: {status} {text}"));
            }
            if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
                failures.push(format!("pass {pass}: {method} {template}: the answer contains {s:?}"));
            }
            if pass == 1 {
                let r = build(&app.client()).send().await.unwrap();
                let expected = if is_api { vec![401] } else if *method == "GET" { vec![303] } else { vec![303, 403] };
                if !expected.contains(&r.status().as_u16()) {
                    failures.push(format!("{method} {template}: {} signed out", r.status()));
                }
            }
        }
    }
    // The enrolment form with the victim's network in the attacker's own organisation.
    let e = post(&app, &attacker, &format!("/api/v1/orgs/{town}/vpn/devices"),
        json!({"name": "X", "network_id": network, "public_key": key()}), 422).await;
    assert!(has_error(&e, "network_id", "not-found"), "{e}");
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(head_seq(&app.db).await, before, "an attempt changed something (the audit log grew)");
    assert_eq!(seats_used(&app.db, region).await, seats);
    let d = get(&app, &employee, &format!("/api/v1/orgs/{region}/vpn/devices/{device}"), 200).await;
    assert_eq!(d["state"], "active");
    assert_eq!(d["name"], "Portatile riservato");
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Pages

both_engines!(the_pages_enrol_show_the_file_and_keep_what_was_typed, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let employee = app.login("dipendente@regione.example").await;
    let nets = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks"), 200).await;
    let net = nets[0]["id"].as_str().unwrap().to_owned();

    let page = employee.get(app.at("/vpn")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Registra il dispositivo") && html.contains("vpn-keys.js"), "the enrol form, in Italian");
    assert!(html.contains("Rete regionale (demo)"));

    // A malformed key: 422, the name kept, the error next to the field.
    let r = employee.post(app.at("/vpn/devices")).form(&[("name", "Portatile <b>"), ("network_id", net.as_str()), ("public_key", "sbagliata"), ("key_mode", "device")])
        .send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"Portatile &#60;b&#62;\"") || html.contains("value=\"Portatile &lt;b&gt;\""), "the name is kept, escaped");
    assert!(html.contains("chiave WireGuard non valida") && html.contains("id=\"f-public_key-error\""), "the field's error");
    assert!(html.contains("error-summary"));

    // A pasted key: on to the device's page, with the file, the QR code, and no private key.
    let k = key();
    let r = employee.post(app.at("/vpn/devices")).form(&[("name", "Portatile"), ("network_id", net.as_str()), ("public_key", k.as_str()), ("key_mode", "device")])
        .send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/vpn/devices/") && to.ends_with("?done=enrolled"), "{to}");
    let html = employee.get(app.at(&to)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("10.64.0.2") && html.contains("data:image/svg+xml;base64,") && html.contains("Dispositivo registrato."), "{html}");
    let id = to.trim_start_matches("/vpn/devices/").split('?').next().unwrap().to_owned();
    let r = employee.get(app.at(&format!("/vpn/devices/{id}/wg.conf"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("vpn-Portatile.conf"));
    let conf = r.text().await.unwrap();
    assert!(conf.contains("Address = 10.64.0.2/32, fd00:64::2/128") && conf.contains("Endpoint = vpn.regione.example:51820"), "{conf}");
    // Someone else's device page does not exist for them.
    let other = app.login("manager@regione.example").await;
    assert_eq!(other.get(app.at(&format!("/vpn/devices/{id}"))).send().await.unwrap().status(), 404);
    assert_eq!(other.get(app.at(&format!("/vpn/devices/{id}/wg.conf"))).send().await.unwrap().status(), 404);

    // Rename with an empty name keeps the page and says why; then renames.
    let r = employee.post(app.at(&format!("/vpn/devices/{id}/rename"))).form(&[("name", " ")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("campo obbligatorio"));
    let r = employee.post(app.at(&format!("/vpn/devices/{id}/rename"))).form(&[("name", "Portatile di casa")]).send().await.unwrap();
    assert_eq!(r.status(), 303);

    // The server-generated key: shown once on the answer page (not a redirect), with its QR code.
    let r = employee.post(app.at("/vpn/devices")).form(&[("name", "Telefono"), ("network_id", net.as_str()), ("public_key", ""), ("key_mode", "server")])
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let html = r.text().await.unwrap();
    let start = html.find("id=\"vpn-private-key\">").expect("the private key is shown") + "id=\"vpn-private-key\">".len();
    let private = &html[start..start + 44];
    assert!(agilekit_remote_access::model::WgKey::parse(private).is_ok(), "{private}");
    assert!(html.contains(&format!("PrivateKey = {private}")) && html.contains("data:image/svg+xml;base64,"));
    let mine = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"), 200).await;
    assert!(!mine.to_string().contains(private));

    // Renew and revoke from the device's page.
    assert_eq!(employee.post(app.at(&format!("/vpn/devices/{id}/renew"))).send().await.unwrap().status(), 303);
    let r = employee.post(app.at(&format!("/vpn/devices/{id}/revoke"))).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 200).await["state"], "revoked");

    // The admin's page: the board, the networks, a form that fails and keeps its values, a gateway's token once.
    let html = admin.get(app.at(&format!("/orgs/{org}/vpn"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Concentratore Milano (demo)") && html.contains("10.64.0.0/19") && html.contains("Telefono"), "{html}");
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks"))).form(&[("name", "Sede"), ("ipv4_cidr", "10.64.1.0/24"), ("ipv6_cidr", ""), ("dns", ""), ("default_expiry_days", "")])
        .send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"10.64.1.0/24\"") && html.contains("si sovrappone a un") && html.contains("troppo piccolo"), "{html}");
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks"))).form(&[("name", "Sede di Brescia"), ("ipv4_cidr", "10.65.0.0/19"), ("ipv6_cidr", ""), ("dns", "10.65.0.53"), ("default_expiry_days", "30"), ("require_approval", "1")])
        .send().await.unwrap();
    assert_eq!(r.status(), 303);
    let nets = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks"), 200).await;
    let new = nets.as_array().unwrap().iter().find(|n| n["name"] == "Sede di Brescia").unwrap();
    assert_eq!(new["require_approval"], true);
    assert_eq!(new["default_expiry_days"], 30);
    let nid = new["id"].as_str().unwrap();
    let gk = key();
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks/{nid}/gateways"))).form(&[("name", "GW Brescia"), ("endpoint", "bad host"), ("port", ""), ("public_key", gk.as_str()), ("routes", "10.66.0.0/16")])
        .send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{gk}\"")) && html.contains(&format!("gf-{nid}-endpoint-error")), "{html}");
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks/{nid}/gateways"))).form(&[("name", "GW Brescia"), ("endpoint", "vpn2.regione.example"), ("port", ""), ("public_key", gk.as_str()), ("routes", "10.66.0.0/16, 10.67.0.0/16")])
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let html = r.text().await.unwrap();
    let start = html.find("id=\"vpn-gateway-token\">").unwrap() + "id=\"vpn-gateway-token\">".len();
    let token = html[start..].split('<').next().unwrap().to_owned();
    assert!(token.starts_with("gw_"));
    let cfg = gateway_config(&app, &token, "").await;
    assert_eq!(cfg["addresses"], json!(["10.65.0.1/19"]));
    // An access group by email; an unknown email is the field's error.
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks/{nid}/access-groups")))
        .body("name=Dirigenti&roles=manager&accounts=nessuno%40example.it&allow=10.66.0.0%2F16").header("content-type", "application/x-www-form-urlencoded")
        .send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("nessuno@example.it"));
    let r = admin.post(app.at(&format!("/orgs/{org}/vpn/networks/{nid}/access-groups")))
        .body("name=Dirigenti&roles=manager&roles=hr&accounts=dipendente%40regione.example&allow=10.66.0.0%2F16").header("content-type", "application/x-www-form-urlencoded")
        .send().await.unwrap();
    assert_eq!(r.status(), 303);
    let groups = get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/networks/{nid}/access-groups"), 200).await;
    assert_eq!(groups[0]["roles"], json!(["hr", "manager"]));
    assert_eq!(groups[0]["accounts"].as_array().unwrap().len(), 1);
    // Employees do not get the admin page.
    assert_eq!(employee.get(app.at(&format!("/orgs/{org}/vpn"))).send().await.unwrap().status(), 403);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Found by the API fuzzer (api_v1::fuzzing_every_route…)

both_engines!(a_gateways_handshake_times_outside_the_calendar_are_field_errors, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let (net, token) = setup(&app, &admin, org, "10.8.0.0/19", None).await;
    let employee = app.login("dipendente@regione.example").await;
    let k = key();
    let d = post(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices"), json!({"name": "Portatile", "network_id": net, "public_key": k}), 201).await;
    let id = d["id"].as_str().unwrap();
    let report = |at: Value| json!({"peers": [{"public_key": k, "last_handshake": at, "rx_bytes": 1, "tx_bytes": 2}]});
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Year -9999 (a time the time library holds, PostgreSQL does not), before 1970, the last second of 9999, ten
    // years ahead, and what does not fit an i64 at all.
    for at in [json!(-377_705_116_800i64), json!(-1), json!(253_402_300_799i64), json!(now + 10 * 365 * 86_400), json!(i64::MIN)] {
        let r = bare().post(app.at("/api/v1/gateway/status")).bearer_auth(&token).json(&report(at.clone())).send().await.unwrap();
        assert_eq!(r.status(), 422, "{at}");
        let e: Value = r.json().await.unwrap();
        assert!(has_error(&e, "peers[0].last_handshake", "out-of-range"), "{at}: {e}");
    }
    let d = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 200).await;
    assert!(d["last_handshake_at"].is_null() && d["rx_bytes"] == 0, "nothing stored: {d}");
    // A handshake a little ahead of the server's clock (the gateway's runs fast) is taken as it is.
    let r = bare().post(app.at("/api/v1/gateway/status")).bearer_auth(&token).json(&report(json!(now + 60))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let d = get(&app, &employee, &format!("/api/v1/orgs/{org}/vpn/devices/{id}"), 200).await;
    assert_eq!((d["connected"].as_bool(), d["rx_bytes"].as_i64()), (Some(true), Some(1)), "{d}");
    // The status page and the metrics still read every device.
    get(&app, &admin, &format!("/api/v1/orgs/{org}/vpn/status"), 200).await;
    assert_eq!(bare().get(app.at("/metrics")).send().await.unwrap().status(), 200);
    app
});

both_engines!(a_network_for_an_organisation_that_does_not_exist_is_404, |app| async move {
    // The platform's operator may administer any organisation, but not one that is not there: the network would
    // point at nothing (the database refuses the row).
    let operator = app.login("operatore@aria.example").await;
    let nowhere = uuid::Uuid::now_v7();
    let before = head_seq(&app.db).await;
    let body = json!({"name": "Rete", "ipv4_cidr": "10.8.0.0/19", "ipv6_cidr": null, "dns": []});
    let (s, v, text) = send(&operator, "POST", app.at(&format!("/api/v1/orgs/{nowhere}/vpn/networks")), Some(body.clone())).await;
    assert_eq!(s, 404, "{text}");
    assert_eq!(v["code"], "not-found");
    assert_eq!(head_seq(&app.db).await, before, "nothing audited");
    // The same request for a real organisation goes through.
    let org = app.org_id("arpa_lom").await;
    post(&app, &operator, &format!("/api/v1/orgs/{org}/vpn/networks"), body, 201).await;
    app
});
