//! Remote workstations (crates/workstations): inventory, CSV import, assignments and bookings, probes, hand-off.

use std::collections::HashSet;
use std::time::Duration;

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::Db;
use reqwest::Client;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::both_engines;
use crate::helpers::*;

/// This domain's organisation-scoped routes, each tried by this module's isolation test with another
/// organisation's IDs: (method, path template, plausible body). The guard in `isolation.rs` reads this table.
/// `{org}` is the victim organisation (Regione Lombardia), `{ws}` one of its pooled workstations, `{dedicated}` a
/// workstation assigned to one of its employees, `{booking}` a booking of `{ws}`; `{slot_start}`/`{slot_end}` a
/// free slot tomorrow.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/workstations", ""),
    ("POST", "/api/v1/orgs/{org}/workstations", r#"{"hostname":"intruder-pc","mode":"pooled"}"#),
    ("POST", "/api/v1/orgs/{org}/workstations/import", "hostname\nintruder-1\n"),
    ("GET", "/api/v1/orgs/{org}/workstations/export.csv", ""),
    ("GET", "/api/v1/orgs/{org}/workstations/board", ""),
    ("GET", "/api/v1/orgs/{org}/workstations/bookings", ""),
    ("GET", "/api/v1/orgs/{org}/workstations/{ws}", ""),
    ("PUT", "/api/v1/orgs/{org}/workstations/{ws}", r#"{"hostname":"hacked","mode":"pooled"}"#),
    ("DELETE", "/api/v1/orgs/{org}/workstations/{ws}", ""),
    ("PUT", "/api/v1/orgs/{org}/workstations/{dedicated}/assignment", r#"{"assignee":"admin@comune.example"}"#),
    ("GET", "/api/v1/orgs/{org}/workstations/{ws}/bookings", ""),
    ("POST", "/api/v1/orgs/{org}/workstations/{ws}/bookings", r#"{"starts_at":"{slot_start}","ends_at":"{slot_end}"}"#),
    ("POST", "/api/v1/orgs/{org}/workstations/{ws}/bookings/{booking}/cancel", ""),
    ("GET", "/api/v1/orgs/{org}/workstations/{ws}/probes", ""),
    ("POST", "/api/v1/orgs/{org}/workstations/{ws}/probes", ""),
    ("POST", "/api/v1/orgs/{org}/workstations/{dedicated}/wake", ""),
    ("GET", "/api/v1/orgs/{org}/workstations/{dedicated}/connect.rdp", ""),
    ("POST", "/api/v1/orgs/{org}/workstations/{dedicated}/guacamole", ""),
    ("GET", "/orgs/{org}/workstations", ""),
    ("POST", "/orgs/{org}/workstations", "hostname=intruder-pc&mode=pooled"),
    ("POST", "/orgs/{org}/workstations/import", "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"w.csv\"\r\nContent-Type: text/csv\r\n\r\nhostname\nintruder-1\n\r\n--XB--\r\n"),
    ("POST", "/orgs/{org}/workstations/book", "workstation={ws}&date={slot_date}&starts_at=13%3A00&ends_at=14%3A00"),
    ("GET", "/orgs/{org}/workstations/{ws}", ""),
    ("POST", "/orgs/{org}/workstations/{ws}", "hostname=hacked&mode=pooled"),
    ("POST", "/orgs/{org}/workstations/{ws}/delete", ""),
    ("POST", "/orgs/{org}/workstations/{ws}/probe", ""),
    ("POST", "/orgs/{org}/workstations/{dedicated}/wake", "next=%2Fworkstations"),
    ("GET", "/orgs/{org}/workstations/{dedicated}/guacamole", ""),
    ("POST", "/orgs/{org}/workstations/{ws}/bookings/{booking}/cancel", "next=%2Fworkstations"),
];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn bare() -> Client {
    Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

/// An API client acting as `email` with a personal token (no login, no cookies), on any node.
#[derive(Clone)]
struct Api {
    base: String,
    token: String,
    c: Client,
}

impl Api {
    async fn new(app: &TestApp, email: &str) -> Api {
        let id = app.account_id(email).await;
        let (_, token) = token::create(&app.db, &Actor::system(), id, "test").await.unwrap();
        Api { base: app.url.clone(), token, c: bare() }
    }
    fn on(&self, base: &str) -> Api {
        Api { base: base.to_owned(), ..self.clone() }
    }
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.c.request(m, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }
    async fn csv(&self, path: &str, body: String) -> reqwest::Response {
        self.c.post(format!("{}{path}", self.base)).bearer_auth(&self.token).header("content-type", "text/csv").body(body).send().await.unwrap()
    }
    /// Sends and expects `status`; returns the JSON body (or Null).
    async fn call(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.send(method, path, body).await;
        expect(r, status, &format!("{method} {path}")).await
    }
}

async fn expect(r: reqwest::Response, status: u16, what: &str) -> Value {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The field-level complaint about `field`, if any.
fn field(p: &Value, name: &str) -> Option<String> {
    p["errors"].as_array()?.iter().find(|e| e["field"] == name).and_then(|e| e["code"].as_str()).map(str::to_owned)
}

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Tomorrow at `hour`:00 UTC: a slot start every test can use.
fn tomorrow(hour: u8) -> OffsetDateTime {
    let d = OffsetDateTime::now_utc() + time::Duration::days(1);
    d.replace_time(time::Time::from_hms(hour, 0, 0).unwrap())
}

/// The start of the current quarter hour, waiting out the last seconds of one so the server agrees.
async fn this_quarter() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    if now.minute() % 15 == 14 && now.second() >= 55 {
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let now = OffsetDateTime::now_utc();
    now.replace_time(time::Time::from_hms(now.hour(), now.minute() / 15 * 15, 0).unwrap())
}

async fn head_seq(db: &Db) -> i64 {
    let row: (i64,) = match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.unwrap(),
    };
    row.0
}

async fn scalar(db: &Db, sql: &'static str, org: OrgId) -> i64 {
    let row: (i64,) = match db {
        Db::Sqlite(p) => sqlx::query_as(sql).bind(org).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).bind(org).fetch_one(p).await.unwrap(),
    };
    row.0
}

/// The audit entries of the organisation whose action starts with `prefix` (and about `entity_id`, if given).
async fn audited(db: &Db, org: OrgId, prefix: &str, entity_id: Option<&str>) -> Vec<agilekit_kernel::audit::Entry> {
    let f = agilekit_kernel::audit::Filter {
        org: Some(org), action_prefix: Some(prefix.to_owned()), entity_id: entity_id.map(str::to_owned), ..Default::default()
    };
    agilekit_kernel::audit::list(db, &f, 500).await.unwrap()
}

async fn count_workstations(db: &Db, org: OrgId) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM workstations WHERE org_id = $1", org).await
}

async fn quota_used(db: &Db, org: OrgId) -> i64 {
    scalar(db, "SELECT q.used FROM subscription_quotas q JOIN subscriptions s ON s.id = q.subscription_id
                WHERE s.org_id = $1 AND s.service_key = 'workstations'", org).await
}

/// Activates the service for an organisation that lacks it, with room for `limit` workstations.
async fn subscribe(db: &Db, org: OrgId, limit: i64) {
    catalogue::subscribe(db, &Actor::system(), org, Service::Workstations, true).await.unwrap();
    catalogue::set_quota(db, &Actor::system(), org, Service::Workstations, "workstations", Some(limit)).await.unwrap();
}

async fn create(api: &Api, org: OrgId, body: Value) -> Value {
    api.call("POST", &format!("/api/v1/orgs/{org}/workstations"), Some(body), 201).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

// Every workstation a test creates has a loopback address: the background probe of the test server then never
// sends a packet (nor a DNS query) off the machine.

/// A CSV of `n` valid rows (`prefix-00001` …), pooled but for every tenth, dedicated to `assignee`.
fn csv_rows(prefix: &str, n: usize, assignee: &str) -> String {
    let mut s = String::from("hostname,address,protocol,port,os,location,tags,mac,mode,assignee\n");
    for i in 1..=n {
        let (mode, who) = if i % 10 == 0 { ("dedicated", assignee) } else { ("pooled", "") };
        s.push_str(&format!(
            "{prefix}-{i:05}.regione.example,127.1.{}.{},rdp,3389,Windows 11,Milano piano {},piano-{} cad,02:00:00:00:{:02x}:{:02x},{mode},{who}\n",
            i / 250, i % 250, i % 20, i % 20, i / 256, i % 256
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------------------------------
// Inventory

both_engines!(crud_with_field_errors_and_who_sees_what, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let employee = Api::new(&app, "dipendente@regione.example").await;
    let base = format!("/api/v1/orgs/{org}/workstations");
    let used = quota_used(&app.db, org).await;

    let w = create(&admin, org, json!({"hostname": "PC-Test-01.Regione.Example", "address": "127.0.0.1", "protocol": "vnc",
        "os": "Ubuntu 24.04", "location": "Milano", "tags": "cad, piano-3", "mac": "00-1A-2B-3C-4D-5E"})).await;
    assert_eq!(w["hostname"], "pc-test-01.regione.example");
    assert_eq!((w["protocol"].as_str(), w["port"].as_i64(), w["mode"].as_str()), (Some("vnc"), Some(5900), Some("pooled")));
    assert_eq!(w["mac"], "00:1a:2b:3c:4d:5e");
    assert_eq!(w["tags"], json!(["cad", "piano-3"]));
    assert_eq!(w["status"], "unknown");
    assert_eq!(quota_used(&app.db, org).await, used + 1, "a workstation takes a unit of the quota");
    let wid = id(&w);

    // Field errors, all at once; nothing is created.
    let before = count_workstations(&app.db, org).await;
    let p = admin.call("POST", &base, Some(json!({"hostname": "pc-test-01.REGIONE.example"})), 422).await;
    assert_eq!(field(&p, "hostname").as_deref(), Some("taken"), "duplicate hostname, whatever its case: {p}");
    let p = admin.call("POST", &base, Some(json!({"hostname": "pc test", "port": "70000", "address": "10.0.0.300",
        "mac": "01:00:5e:00:00:01", "protocol": "telnet", "mode": "shared"})), 422).await;
    for (f, code) in [("hostname", "invalid-host"), ("port", "invalid-port"), ("address", "invalid-address"),
        ("mac", "invalid-mac"), ("protocol", "invalid-protocol"), ("mode", "invalid-mode")] {
        assert_eq!(field(&p, f).as_deref(), Some(code), "{f}: {p}");
    }
    let p = admin.call("POST", &base, Some(json!({"hostname": "pc-x", "port": "0"})), 422).await;
    assert_eq!(field(&p, "port").as_deref(), Some("invalid-port"));
    let p = admin.call("POST", &base, Some(json!({"hostname": "pc-x", "mode": "dedicated", "assignee": "admin@comune.example"})), 422).await;
    assert_eq!(field(&p, "assignee").as_deref(), Some("not-member"), "{p}");
    let p = admin.call("POST", &base, Some(json!({"hostname": ""})), 422).await;
    assert_eq!(field(&p, "hostname").as_deref(), Some("required"));
    let p = admin.call("POST", &base, Some(json!({"hostname": 7})), 422).await;
    assert_eq!(field(&p, "hostname").as_deref(), Some("format"));
    assert_eq!(count_workstations(&app.db, org).await, before, "no refused input created anything");

    // Update: a new name, dedicated to the employee; the old name is free again.
    let upd = admin.call("PUT", &format!("{base}/{wid}"), Some(json!({"hostname": "pc-test-02", "address": "127.0.0.1",
        "protocol": "rdp", "port": "3390", "mode": "dedicated", "assignee": "Dipendente@Regione.example"})), 200).await;
    assert_eq!((upd["hostname"].as_str(), upd["port"].as_i64()), (Some("pc-test-02"), Some(3390)));
    assert_eq!(upd["assignee"]["email"], "dipendente@regione.example");
    let p = admin.call("PUT", &format!("{base}/{wid}"), Some(json!({"hostname": "pc-lom-0101.regione.example"})), 422).await;
    assert_eq!(field(&p, "hostname").as_deref(), Some("taken"));

    // The employee sees the pool and their own, not someone else's dedicated PC.
    let mine = employee.call("GET", &format!("{base}?mode=dedicated"), None, 200).await;
    let names: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|w| w["hostname"].as_str().unwrap()).collect();
    assert!(names.contains(&"pc-test-02") && names.contains(&"pc-lom-0001.regione.example"), "{names:?}");
    assert!(!names.contains(&"pc-lom-0002.regione.example"), "the manager's PC is not the employee's business: {names:?}");
    let all = employee.call("GET", &base, None, 200).await;
    assert!(all["items"].as_array().unwrap().iter().all(|w| w["mode"] == "pooled" || w["assignee"]["email"] == "dipendente@regione.example"));
    let managers = admin.call("GET", &format!("{base}?q=pc-lom-0002"), None, 200).await;
    let mid = id(&managers["items"][0]);
    employee.call("GET", &format!("{base}/{mid}"), None, 404).await;
    employee.call("POST", &base, Some(json!({"hostname": "mine"})), 403).await;
    employee.call("DELETE", &format!("{base}/{wid}"), None, 403).await;
    employee.call("GET", &format!("{base}/board"), None, 403).await;

    // Filters and keyset pagination walk the whole list once, in order.
    let p = admin.call("GET", &format!("{base}?status=sleeping"), None, 422).await;
    assert_eq!(field(&p, "status").as_deref(), Some("format"));
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = admin.call("GET", &format!("{base}?limit=2&after={after}"), None, 200).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|w| w["hostname"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages in order, no repeats");
    assert_eq!(seen.len() as i64, count_workstations(&app.db, org).await);
    let tagged = admin.call("GET", &format!("{base}?tag=ufficio&protocol=rdp"), None, 200).await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 5, "the demo's five office PCs");

    // Assignment: to a member of a dedicated PC only.
    let pooled = admin.call("GET", &format!("{base}?q=pc-lom-0101"), None, 200).await;
    let pid = id(&pooled["items"][0]);
    let p = admin.call("PUT", &format!("{base}/{pid}/assignment"), Some(json!({"assignee": "dipendente@regione.example"})), 422).await;
    assert_eq!(field(&p, "assignee").as_deref(), Some("not-dedicated"));
    let p = admin.call("PUT", &format!("{base}/{wid}/assignment"), Some(json!({"assignee": "nobody@regione.example"})), 422).await;
    assert_eq!(field(&p, "assignee").as_deref(), Some("not-member"));
    let a = admin.call("PUT", &format!("{base}/{wid}/assignment"), Some(json!({"assignee": "manager@regione.example"})), 200).await;
    assert_eq!(a["assignee"]["email"], "manager@regione.example");
    let a = admin.call("PUT", &format!("{base}/{wid}/assignment"), Some(json!({"assignee": null})), 200).await;
    assert!(a["assignee"].is_null());

    // Delete gives the quota back; every change was audited.
    admin.call("DELETE", &format!("{base}/{wid}"), None, 204).await;
    admin.call("GET", &format!("{base}/{wid}"), None, 404).await;
    assert_eq!(quota_used(&app.db, org).await, used);
    let actions: HashSet<String> = audited(&app.db, org, "workstation.", Some(&wid)).await.into_iter().map(|e| e.action).collect();
    for a in ["workstation.create", "workstation.update", "workstation.assign", "workstation.delete"] {
        assert!(actions.contains(a), "{a} audited: {actions:?}");
    }
    app
});

both_engines!(a_service_not_subscribed_is_forbidden_and_the_quota_holds, |app| async move {
    let town = app.org_id("c_b157").await;
    let admin = Api::new(&app, "admin@comune.example").await;
    admin.call("GET", &format!("/api/v1/orgs/{town}/workstations"), None, 403).await;
    admin.call("POST", &format!("/api/v1/orgs/{town}/workstations"), Some(json!({"hostname": "pc-1"})), 403).await;
    subscribe(&app.db, town, 1).await;
    create(&admin, town, json!({"hostname": "pc-1", "address": "127.0.0.1"})).await;
    let p = admin.call("POST", &format!("/api/v1/orgs/{town}/workstations"), Some(json!({"hostname": "pc-2"})), 409).await;
    assert_eq!(p["code"], "quota-exhausted");
    let p = expect(admin.csv(&format!("/api/v1/orgs/{town}/workstations/import"), "hostname\npc-3\npc-4\n".into()).await, 409, "import").await;
    assert_eq!(p["code"], "quota-exhausted");
    assert_eq!(count_workstations(&app.db, town).await, 1);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// CSV

both_engines!(csv_import_of_4500_rows_and_export_round_trip, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    subscribe(&app.db, arpa, 10_000).await;
    catalogue::set_quota(&app.db, &Actor::system(), region, Service::Workstations, "workstations", Some(10_000)).await.unwrap();
    // The region's admin administers ARPA too, so the dedicated rows can name them in both.
    let admin = Api::new(&app, "admin@regione.example").await;
    let text = csv_rows("arpa", 4500, "admin@regione.example");
    assert!(text.len() < 1024 * 1024, "fits the default body limit: {}", text.len());
    let seq = head_seq(&app.db).await;
    let started = std::time::Instant::now();
    let done = expect(admin.csv(&format!("/api/v1/orgs/{arpa}/workstations/import"), text).await, 201, "import").await;
    eprintln!("{:?}: 4,500 rows imported in {:?}", app.engine, started.elapsed());
    assert_eq!(done["imported"], 4500);
    assert_eq!(count_workstations(&app.db, arpa).await, 4500);
    assert_eq!(quota_used(&app.db, arpa).await, 4500);
    assert_eq!(head_seq(&app.db).await, seq + 1, "one audit entry for the whole import");
    let log = audited(&app.db, arpa, "workstation.import", None).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].after_json.as_deref(), Some(r#"{"rows":4500}"#));

    let r = admin.send("GET", &format!("/api/v1/orgs/{arpa}/workstations/export.csv"), None).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment; filename=\"workstations-arpa_lom.csv\""));
    let exported = r.text().await.unwrap();
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.len(), 4501);
    assert_eq!(lines[0], "hostname,address,protocol,port,os,location,tags,mac,mode,assignee");
    assert!(lines.contains(&"arpa-00010.regione.example,127.1.0.10,rdp,3389,Windows 11,Milano piano 10,piano-10 cad,02:00:00:00:00:0a,dedicated,admin@regione.example"), "{}", lines[10]);

    // The export imports back unchanged: into the region, whose own export then holds the same lines.
    let done = expect(admin.csv(&format!("/api/v1/orgs/{region}/workstations/import"), exported.clone()).await, 201, "re-import").await;
    assert_eq!(done["imported"], 4500);
    let again = admin.send("GET", &format!("/api/v1/orgs/{region}/workstations/export.csv"), None).await.text().await.unwrap();
    let region_lines: HashSet<&str> = again.lines().collect();
    assert!(lines.iter().all(|l| region_lines.contains(l)), "every exported line comes back identical");
    assert_eq!(region_lines.len(), 4501 + 5, "plus the demo's five");

    // The same file again: every row is a duplicate of what is there; the report is capped, the count is not.
    let p = expect(admin.csv(&format!("/api/v1/orgs/{arpa}/workstations/import"), exported).await, 422, "duplicates").await;
    assert_eq!(p["code"], "invalid-csv");
    assert_eq!(p["error_count"], 4500);
    assert_eq!(p["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(p["rows"][0], json!({"row": 2, "column": "hostname", "code": "taken"}));
    assert_eq!(count_workstations(&app.db, arpa).await, 4500);
    app
});

both_engines!(a_csv_with_bad_rows_is_reported_row_by_row_and_nothing_is_imported, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let path = format!("/api/v1/orgs/{org}/workstations/import");
    let before = (count_workstations(&app.db, org).await, quota_used(&app.db, org).await, head_seq(&app.db).await);
    let text = "hostname;address;port;mode;assignee;mac\n\
        good-1;127.0.0.1;;pooled;;\n\
        bad host;127.0.0.1;;pooled;;\n\
        good-2;127.0.0.999;3389;pooled;;\n\
        good-3;;70000;pooled;;\n\
        GOOD-1;;;pooled;;\n\
        pc-lom-0101.regione.example;;;pooled;;\n\
        good-4;;;dedicated;nobody@regione.example;\n\
        good-5;;;pooled;;zz:zz\n\
        good-6;;\n\
        good-7;;;dedicated;dipendente@regione.example;00:1a:2b:3c:4d:5e\n";
    let p = expect(admin.csv(&path, text.into()).await, 422, "bad rows").await;
    assert_eq!(p["code"], "invalid-csv");
    let rows: Vec<(i64, String, String)> = p["rows"].as_array().unwrap().iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["column"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    let want: Vec<(i64, String, String)> = [
        (3, "hostname", "invalid-host"), (4, "address", "invalid-address"), (5, "port", "invalid-port"),
        (6, "hostname", "duplicate-in-file"), (7, "hostname", "taken"), (8, "assignee", "not-member"), (9, "mac", "invalid-mac"),
        (10, "", "column-count"),
    ].iter().map(|(r, c, k)| (*r, (*c).to_owned(), (*k).to_owned())).collect();
    assert_eq!(rows, want, "{p}");
    assert_eq!(field(&p, "rows[5].port").as_deref(), Some("invalid-port"));
    assert_eq!(p["error_count"], 8);
    let after = (count_workstations(&app.db, org).await, quota_used(&app.db, org).await, head_seq(&app.db).await);
    assert_eq!(after, before, "nothing imported, no quota taken, nothing audited");

    // The header is checked first; a non-CSV body and an empty file are clear errors too.
    let p = expect(admin.csv(&path, "hostname,colour\npc,red\n".into()).await, 422, "bad header").await;
    assert_eq!(p["rows"][0], json!({"row": 1, "column": "colour", "code": "unknown-column"}));
    let p = expect(admin.csv(&path, String::new()).await, 422, "empty").await;
    assert_eq!(p["rows"][0]["code"], "empty-file");
    let r = admin.c.post(app.at(&path)).bearer_auth(&admin.token).json(&json!({"hostname": "x"})).send().await.unwrap();
    assert_eq!(expect(r, 415, "json body").await["code"], "unsupported-media-type");
    // Employees may not import.
    let employee = Api::new(&app, "dipendente@regione.example").await;
    expect(employee.csv(&path, "hostname\nx\n".into()).await, 403, "employee import").await;
    expect(employee.send("GET", &format!("/api/v1/orgs/{org}/workstations/export.csv"), None).await, 403, "employee export").await;
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Bookings

both_engines!(twenty_concurrent_overlapping_bookings_exactly_one_wins, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let ws = id(&create(&admin, org, json!({"hostname": "pool-race", "address": "127.0.0.1"})).await);
    let mut people = Vec::new();
    for email in ["dipendente@regione.example", "manager@regione.example", "agente@regione.example",
        "formatore@regione.example", "valutatore@regione.example"] {
        people.push(Api::new(&app, email).await);
    }
    let start = tomorrow(8);
    let path = format!("/api/v1/orgs/{org}/workstations/{ws}/bookings");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20usize {
        let api = people[i % people.len()].clone();
        let path = path.clone();
        // Every slot overlaps every other: they start within 45 minutes and last two hours.
        let s = start + time::Duration::minutes(15 * (i % 4) as i64);
        let body = json!({"starts_at": rfc(s), "ends_at": rfc(s + time::Duration::hours(2))});
        set.spawn(async move {
            let r = api.send("POST", &path, Some(body)).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            201 => won += 1,
            422 => assert_eq!(field(&body, "starts_at").as_deref(), Some("slot-taken"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, 1, "exactly one booking wins");
    let live = scalar(&app.db, "SELECT COUNT(*) FROM workstation_bookings WHERE org_id = $1 AND cancelled_at IS NULL", org).await;
    assert_eq!(live, 1);
    app
});

both_engines!(bookings_refuse_overlaps_clearly_and_follow_the_rules, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let sara = Api::new(&app, "dipendente@regione.example").await;
    let luca = Api::new(&app, "manager@regione.example").await;
    let ws = id(&create(&admin, org, json!({"hostname": "pool-rules", "address": "127.0.0.1"})).await);
    let other = id(&create(&admin, org, json!({"hostname": "pool-rules-2", "address": "127.0.0.1"})).await);
    let path = format!("/api/v1/orgs/{org}/workstations/{ws}/bookings");
    let t = |h: i64, m: i64| rfc(tomorrow(0) + time::Duration::hours(h) + time::Duration::minutes(m));

    let b = sara.call("POST", &path, Some(json!({"starts_at": t(10, 0), "ends_at": t(12, 0)})), 201).await;
    assert_eq!((b["mine"].as_bool(), b["hostname"].as_str()), (Some(true), Some("pool-rules")));
    assert_eq!(b["starts_at"], t(10, 0));
    let p = luca.call("POST", &path, Some(json!({"starts_at": t(11, 0), "ends_at": t(13, 0)})), 422).await;
    assert_eq!(field(&p, "starts_at").as_deref(), Some("slot-taken"), "{p}");
    luca.call("POST", &path, Some(json!({"starts_at": t(12, 0), "ends_at": t(13, 0)})), 201).await;
    // One person, one seat at a time.
    let p = sara.call("POST", &format!("/api/v1/orgs/{org}/workstations/{other}/bookings"),
        Some(json!({"starts_at": t(11, 30), "ends_at": t(12, 30)})), 422).await;
    assert_eq!(field(&p, "starts_at").as_deref(), Some("already-booked"));
    // Slot rules, each on its field.
    for (s, e, f, code) in [
        (t(9, 10), t(10, 0), "starts_at", "not-aligned"), (t(14, 0), t(14, 0), "ends_at", "before-start"),
        (t(1, 0), t(14, 0), "ends_at", "slot-too-long"), (rfc(tomorrow(8) - time::Duration::days(3)), t(9, 0), "starts_at", "in-past"),
        (rfc(tomorrow(8) + time::Duration::days(70)), rfc(tomorrow(9) + time::Duration::days(70)), "starts_at", "too-far"),
        ("tomorrow".to_owned(), t(9, 0), "starts_at", "format"),
    ] {
        let p = luca.call("POST", &path, Some(json!({"starts_at": s, "ends_at": e})), 422).await;
        assert_eq!(field(&p, f).as_deref(), Some(code), "{s}–{e}: {p}");
    }
    // A dedicated workstation is not booked.
    let dedicated = admin.call("GET", &format!("/api/v1/orgs/{org}/workstations?q=pc-lom-0001"), None, 200).await;
    let did = id(&dedicated["items"][0]);
    let p = sara.call("POST", &format!("/api/v1/orgs/{org}/workstations/{did}/bookings"), Some(json!({"starts_at": t(15, 0), "ends_at": t(16, 0)})), 409).await;
    assert_eq!(p["code"], "not-pooled");
    // A pooled workstation with bookings to come cannot become dedicated.
    let p = admin.call("PUT", &format!("/api/v1/orgs/{org}/workstations/{ws}"), Some(json!({"hostname": "pool-rules", "mode": "dedicated"})), 422).await;
    assert_eq!(field(&p, "mode").as_deref(), Some("has-bookings"));

    // Lists: the holder is shown to the admin and to the holder, not to other employees.
    let list = luca.call("GET", &path, None, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let saras = list.as_array().unwrap().iter().find(|b| b["mine"] == false).unwrap();
    assert!(saras["account"].is_null(), "{saras}");
    let all = admin.call("GET", &format!("/api/v1/orgs/{org}/workstations/bookings"), None, 200).await;
    assert!(all.as_array().unwrap().iter().any(|b| b["account"]["email"] == "dipendente@regione.example"));
    let own = sara.call("GET", &format!("/api/v1/orgs/{org}/workstations/bookings"), None, 200).await;
    assert_eq!(own.as_array().unwrap().len(), 1);

    // Cancel: not by another employee, yes by the holder, once; the slot is free again.
    let bid = id(&b);
    luca.call("POST", &format!("{path}/{bid}/cancel"), None, 404).await;
    let c = sara.call("POST", &format!("{path}/{bid}/cancel"), None, 200).await;
    assert!(c["cancelled_at"].is_string());
    let p = sara.call("POST", &format!("{path}/{bid}/cancel"), None, 409).await;
    assert_eq!(p["code"], "booking-cancelled");
    luca.call("POST", &path, Some(json!({"starts_at": t(10, 0), "ends_at": t(11, 0), "account": "dipendente@regione.example"})), 403).await;
    let on_behalf = admin.call("POST", &path, Some(json!({"starts_at": t(10, 0), "ends_at": t(11, 0), "account": "dipendente@regione.example"})), 201).await;
    assert_eq!(on_behalf["account"]["email"], "dipendente@regione.example");
    let p = admin.call("POST", &path, Some(json!({"starts_at": t(16, 0), "ends_at": t(17, 0), "account": "admin@comune.example"})), 422).await;
    assert_eq!(field(&p, "account").as_deref(), Some("not-member"));
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Reachability and the board

both_engines!(the_probe_marks_an_open_port_online_and_a_closed_one_offline, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let up = id(&create(&admin, org, json!({"hostname": "probe-up", "address": "127.0.0.1", "port": open_port.to_string()})).await);
    let down = id(&create(&admin, org, json!({"hostname": "probe-down", "address": "127.0.0.1", "port": closed_port.to_string()})).await);
    let base = format!("/api/v1/orgs/{org}/workstations");

    // By hand.
    let w = admin.call("POST", &format!("{base}/{up}/probes"), None, 200).await;
    assert_eq!(w["status"], "online", "{w}");
    assert!(w["last_probe_at"].is_string() && w["last_latency_ms"].is_i64());
    let w = admin.call("POST", &format!("{base}/{down}/probes"), None, 200).await;
    assert_eq!(w["status"], "offline", "{w}");
    let h = admin.call("GET", &format!("{base}/{down}/probes"), None, 200).await;
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h[0]["status"], "offline");
    assert!(h[0]["error"].is_string());

    // The schedule: two nodes' rounds at once probe every due workstation once between them.
    let settings = agilekit_workstations::probe::ProbeSettings {
        interval: Duration::from_secs(300), timeout: Duration::from_millis(1500), concurrency: 8,
    };
    let later = OffsetDateTime::now_utc() + time::Duration::days(1);
    let (a, b) = tokio::join!(
        agilekit_workstations::probe::round(&app.db, &settings, later),
        agilekit_workstations::probe::round(&app.db, &settings, later)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: Vec<String> = a.iter().chain(&b).map(|x| x.to_string()).collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no workstation probed twice in a round");
    assert!(unique.contains(&up) && unique.contains(&down));
    assert_eq!(count_workstations(&app.db, org).await as usize, all.len(), "every workstation was due");
    let again = agilekit_workstations::probe::round(&app.db, &settings, later).await.unwrap();
    assert!(again.is_empty(), "claimed for the next interval");
    assert_eq!(admin.call("GET", &format!("{base}/{up}"), None, 200).await["status"], "online");

    // The port closes: the next probe says offline, and the history has the change.
    drop(open);
    let w = admin.call("POST", &format!("{base}/{up}/probes"), None, 200).await;
    assert_eq!(w["status"], "offline");
    let h = admin.call("GET", &format!("{base}/{up}/probes"), None, 200).await;
    let statuses: Vec<&str> = h.as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["offline", "online"], "newest first, one entry per change");
    app
});

both_engines!(the_board_counts_seats_assigned_booked_free_and_offline, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let hr = Api::new(&app, "hr@regione.example").await;
    let sara = Api::new(&app, "dipendente@regione.example").await;
    let board = format!("/api/v1/orgs/{org}/workstations/board");
    let before = hr.call("GET", &board, None, 200).await["totals"].clone();

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let w = |h: &str, mode: &str, who: &str| json!({"hostname": h, "address": "127.0.0.1", "port": closed_port.to_string(),
        "mode": mode, "assignee": who, "location": "Board test"});
    let booked = id(&create(&admin, org, w("board-pool-1", "pooled", "")).await);
    create(&admin, org, w("board-pool-2", "pooled", "")).await;
    let off = id(&create(&admin, org, w("board-pool-3", "pooled", "")).await);
    create(&admin, org, w("board-ded-1", "dedicated", "manager@regione.example")).await;
    create(&admin, org, w("board-ded-2", "dedicated", "")).await;
    admin.call("POST", &format!("/api/v1/orgs/{org}/workstations/{off}/probes"), None, 200).await;
    let start = this_quarter().await;
    sara.call("POST", &format!("/api/v1/orgs/{org}/workstations/{booked}/bookings"),
        Some(json!({"starts_at": rfc(start), "ends_at": rfc(start + time::Duration::hours(1))})), 201).await;

    let after = hr.call("GET", &board, None, 200).await;
    let d = |k: &str| after["totals"][k].as_i64().unwrap() - before[k].as_i64().unwrap();
    assert_eq!((d("total"), d("pooled"), d("dedicated")), (5, 3, 2));
    assert_eq!((d("assigned"), d("booked_now"), d("offline")), (1, 1, 1));
    assert_eq!(d("free"), 1, "pooled, not booked now, not offline");
    assert_eq!(d("unknown"), 4);
    let line = after["locations"].as_array().unwrap().iter().find(|l| l["location"] == "Board test").unwrap();
    assert_eq!(line, &json!({"location": "Board test", "total": 5, "dedicated": 2, "pooled": 3, "assigned": 1,
        "booked_now": 1, "free": 1, "offline": 1, "unknown": 4}));
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-off

both_engines!(rdp_files_go_to_the_assignee_the_booking_holder_and_admins_only, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let sara = Api::new(&app, "dipendente@regione.example").await;
    let luca = Api::new(&app, "manager@regione.example").await;
    let base = format!("/api/v1/orgs/{org}/workstations");
    let dedicated = id(&create(&admin, org, json!({"hostname": "rdp-sara", "address": "127.0.0.1", "port": "3391",
        "mode": "dedicated", "assignee": "dipendente@regione.example"})).await);
    let pooled = id(&create(&admin, org, json!({"hostname": "rdp-pool", "address": "127.0.0.1"})).await);
    let vnc = id(&create(&admin, org, json!({"hostname": "vnc-pool", "address": "127.0.0.1", "protocol": "vnc"})).await);

    let r = sara.send("GET", &format!("{base}/{dedicated}/connect.rdp"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-rdp");
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"rdp-sara.rdp\"");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("full address:s:127.0.0.1:3391\r\nusername:s:dipendente@regione.example\r\n"), "{text}");
    // Someone else's dedicated PC does not exist for another employee; the admin may connect.
    expect(luca.send("GET", &format!("{base}/{dedicated}/connect.rdp"), None).await, 404, "other's PC").await;
    assert_eq!(admin.send("GET", &format!("{base}/{dedicated}/connect.rdp"), None).await.status(), 200);
    // A pooled seat: only while one holds a booking running now.
    expect(luca.send("GET", &format!("{base}/{pooled}/connect.rdp"), None).await, 403, "no booking").await;
    let start = this_quarter().await;
    luca.call("POST", &format!("{base}/{pooled}/bookings"),
        Some(json!({"starts_at": rfc(start), "ends_at": rfc(start + time::Duration::hours(1))})), 201).await;
    let r = luca.send("GET", &format!("{base}/{pooled}/connect.rdp"), None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("full address:s:127.0.0.1:3389\r\n"));
    expect(sara.send("GET", &format!("{base}/{pooled}/connect.rdp"), None).await, 403, "luca's booking").await;
    // VNC has no .rdp file; without a Guacamole gateway there is no link either.
    let p = admin.call("GET", &format!("{base}/{vnc}/connect.rdp"), None, 409).await;
    assert_eq!(p["code"], "not-rdp");
    let p = sara.call("POST", &format!("{base}/{dedicated}/guacamole"), None, 409).await;
    assert_eq!(p["code"], "guacamole-not-configured");
    assert_eq!(audited(&app.db, org, "workstation.connect", None).await.len(), 3, "each hand-off is recorded");
    app
});

/// Guacamole's manual, "Encrypted JSON authentication", reference implementation: its key and token.
#[test]
fn guacamole_token_is_the_manuals_reference_token() {
    use agilekit_workstations::handoff::{parse_key, reference, sign_and_encrypt};
    let key = parse_key(reference::KEY).unwrap();
    assert_eq!(sign_and_encrypt(&key, reference::JSON.as_bytes()), reference::TOKEN);
}

both_engines!(a_node_with_guacamole_and_wake_on_lan_configured_hands_off_both, |app| async move {
    // A second node on the same database, configured with a Guacamole gateway and a Wake-on-LAN target this test
    // listens on (never a real broadcast).
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = agilekit_server::Config { listen: "127.0.0.1:0".into(), data_dir: app.data_dir().to_path_buf(), db_pool_size: 4, ..Default::default() };
    if app.engine == Engine::Postgres {
        cfg.database_url = app.database_url();
    }
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.port = 9;
    cfg.workstations.wol_target = udp.local_addr().unwrap().to_string();
    cfg.workstations.probe_interval_secs = 0;
    cfg.guacamole.url = "https://desktop.regione.example/guacamole/".into();
    cfg.guacamole.secret_key = "4C0B569E4C96DF157EEE1B65DD0E4D41".into();
    let node = agilekit_server::start(&cfg, app.db.clone()).await.unwrap();

    let org = app.org_id("r_lombar").await;
    let sara = Api::new(&app, "dipendente@regione.example").await.on(&node.url());
    let luca = Api::new(&app, "manager@regione.example").await.on(&node.url());
    let admin = Api::new(&app, "admin@regione.example").await.on(&node.url());
    let mine = sara.call("GET", &format!("/api/v1/orgs/{org}/workstations?q=pc-lom-0001"), None, 200).await;
    let ws = id(&mine["items"][0]);
    let base = format!("/api/v1/orgs/{org}/workstations/{ws}");

    sara.call("POST", &format!("{base}/wake"), None, 202).await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), udp.recv(&mut buf)).await.expect("the magic packet arrives").unwrap();
    let mut want = vec![0xFFu8; 6];
    for _ in 0..16 {
        want.extend_from_slice(&[0x00, 0x1a, 0x2b, 0x00, 0x00, 0x01]);
    }
    assert_eq!(&buf[..n], &want[..], "6 × 0xFF then the MAC 16 times");
    expect(luca.send("POST", &format!("{base}/wake"), None).await, 404, "not luca's PC").await;
    let nomac = id(&create(&admin, org, json!({"hostname": "no-mac", "address": "127.0.0.1", "mode": "dedicated", "assignee": "dipendente@regione.example"})).await);
    let p = sara.call("POST", &format!("/api/v1/orgs/{org}/workstations/{nomac}/wake"), None, 409).await;
    assert_eq!(p["code"], "no-mac");

    let link = sara.call("POST", &format!("{base}/guacamole"), None, 200).await;
    let url = link["url"].as_str().unwrap();
    let data = url.strip_prefix("https://desktop.regione.example/guacamole/?data=").unwrap_or_else(|| panic!("{url}"));
    let decoded: String = url::form_urlencoded::parse(format!("d={data}").as_bytes()).next().unwrap().1.into_owned();
    assert_eq!(decoded.len() % 4, 0, "base64");
    assert!(decoded.len() >= 64 && decoded.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)), "{decoded}");
    let expires = OffsetDateTime::parse(link["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(expires > OffsetDateTime::now_utc() && expires < OffsetDateTime::now_utc() + time::Duration::minutes(6));
    expect(luca.send("POST", &format!("{base}/guacamole"), None).await, 404, "not luca's PC").await;
    let log = audited(&app.db, org, "workstation.wake", None).await;
    assert_eq!(log.len(), 1);
    assert!(log[0].after_json.as_deref().is_some_and(|a| a.contains("00:1a:2b:00:00:01")));
    node.stop().await;

    // A node whose Wake-on-LAN packet cannot leave (port 0: the kernel refuses the send) answers 502 with a stable
    // code, not a 500, and records no wake.
    cfg.workstations.wol_target = "127.0.0.1:0".into();
    let broken = agilekit_server::start(&cfg, app.db.clone()).await.unwrap();
    let sara = Api::new(&app, "dipendente@regione.example").await.on(&broken.url());
    let p = sara.call("POST", &format!("{base}/wake"), None, 502).await;
    assert_eq!(p["code"], "wake-on-lan-failed");
    assert_eq!(audited(&app.db, org, "workstation.wake", None).await.len(), 1, "the failed wake is not audited");
    broken.stop().await;
    app
});

both_engines!(every_workstation_route_is_in_the_openapi_document, |app| async move {
    let doc: Value = bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for (m, p, _) in SCOPED_ROUTES.iter().filter(|(_, p, _)| p.starts_with("/api/")) {
        let path = p.replace("{org}", "{id}").replace("{ws}", "{workstation}").replace("{dedicated}", "{workstation}");
        let op = &doc["paths"][path.as_str()][m.to_lowercase().as_str()];
        assert!(op.is_object(), "{m} {path} is not documented");
        assert!(op["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == "workstations")), "{m} {path} has no tag");
    }
    for s in ["Workstation", "WorkstationInput", "Booking", "Board", "ImportProblem", "RowError"] {
        assert!(doc["components"]["schemas"][s].is_object(), "schema {s}");
    }
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Isolation

both_engines!(another_organisations_workstations_are_403_or_404_and_unchanged, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    // Brescia gets the service too, so that a refusal can only come from isolation, not from a missing subscription.
    subscribe(&app.db, town, 100).await;
    let victim = Api::new(&app, "admin@regione.example").await;
    let sara = Api::new(&app, "dipendente@regione.example").await;
    let list = victim.call("GET", &format!("/api/v1/orgs/{region}/workstations?q=pc-lom"), None, 200).await;
    let find = |h: &str| list["items"].as_array().unwrap().iter().find(|w| w["hostname"] == h).map(id).unwrap();
    let (ws, dedicated) = (find("pc-lom-0101.regione.example"), find("pc-lom-0001.regione.example"));
    let b = sara.call("POST", &format!("/api/v1/orgs/{region}/workstations/{ws}/bookings"),
        Some(json!({"starts_at": rfc(tomorrow(9)), "ends_at": rfc(tomorrow(10))})), 201).await;
    let booking = id(&b);

    let attacker = Api::new(&app, "admin@comune.example").await;
    // The attacker's own organisation works: the service is really there for them.
    attacker.call("GET", &format!("/api/v1/orgs/{town}/workstations"), None, 200).await;
    let browser = app.login("admin@comune.example").await;
    let anonymous = app.client();
    let fill = |p: &str| {
        p.replace("{org}", &region.to_string()).replace("{ws}", &ws).replace("{dedicated}", &dedicated)
            .replace("{booking}", &booking).replace("{slot_start}", &rfc(tomorrow(13))).replace("{slot_end}", &rfc(tomorrow(14)))
            .replace("{slot_date}", &tomorrow(13).date().to_string())
    };
    let secrets = ["pc-lom-", "Palazzo Lombardia", "dipendente@regione.example", "Sara Dipendente", "127.0.10."];
    let before = (head_seq(&app.db).await, count_workstations(&app.db, region).await);
    let mut failures = Vec::new();
    for (method, template, body) in SCOPED_ROUTES {
        let path = fill(template);
        let is_api = template.starts_with("/api/");
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let with_body = |mut rb: reqwest::RequestBuilder| {
            if !body.is_empty() {
                let ct = match (template.ends_with("/import"), is_api) {
                    (true, true) => "text/csv",
                    (true, false) => "multipart/form-data; boundary=XB",
                    (false, true) => "application/json",
                    (false, false) => "application/x-www-form-urlencoded",
                };
                rb = rb.header("content-type", ct).body(fill(body));
            }
            rb
        };
        let rb = if is_api {
            attacker.c.request(m.clone(), app.at(&path)).bearer_auth(&attacker.token)
        } else {
            browser.request(m.clone(), app.at(&path))
        };
        let r = with_body(rb).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 403 && status != 404 {
            failures.push(format!("{method} {template}: {status} for another organisation's admin"));
        }
        if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
            failures.push(format!("{method} {template}: the answer contains {s:?}"));
        }
        let r = with_body(anonymous.request(m, app.at(&path))).send().await.unwrap();
        let expected: &[u16] = if is_api { &[401] } else if *method == "GET" { &[303] } else { &[303, 403] };
        if !expected.contains(&r.status().as_u16()) {
            failures.push(format!("{method} {template}: {} signed out", r.status()));
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    let after = (head_seq(&app.db).await, count_workstations(&app.db, region).await);
    assert_eq!(after, before, "an attempt changed something");
    // The victim's booking is still there.
    let still = sara.call("GET", &format!("/api/v1/orgs/{region}/workstations/bookings"), None, 200).await;
    assert!(still.as_array().unwrap().iter().any(|b| b["id"] == booking.as_str()));
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Pages

fn multipart(csv: &str) -> (String, String) {
    let b = "agilekitTestBoundary";
    (format!("multipart/form-data; boundary={b}"),
     format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"postazioni.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{b}--\r\n"))
}

both_engines!(the_pages_manage_import_and_book_in_italian_and_english, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let page = |c: &reqwest::Client, path: String| {
        let c = c.clone();
        let url = app.at(&path);
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let inv = format!("/orgs/{org}/workstations");
    let (s, html) = page(&admin, inv.clone()).await;
    assert_eq!(s, 200);
    for t in ["Postazioni remote", "Disponibilità", "pc-lom-0001.regione.example", "Importa da CSV", "enctype=\"multipart/form-data\""] {
        assert!(html.contains(t), "inventory page lacks {t:?}");
    }
    let r = admin.get(app.at(&inv)).header("accept-language", "en").send().await.unwrap();
    let en = r.text().await.unwrap();
    assert!(en.contains("Remote workstations") && en.contains("Availability") && en.contains("Import from CSV"), "English page");

    // A form with a bad field answers the page again with the error on the field; a good one redirects.
    let r = admin.post(app.at(&inv)).form(&[("hostname", "pc con spazi"), ("port", "99999"), ("mode", "pooled")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("non è un nome di rete né un indirizzo IP valido") && html.contains("la porta deve essere un numero da 1 a 65535"), "field errors shown");
    assert!(html.contains("value=\"pc con spazi\""), "what was typed is kept");
    let r = admin.post(app.at(&inv)).form(&[("hostname", "pagina-1"), ("address", "127.0.0.1"), ("mode", "pooled"), ("protocol", "rdp")]).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, format!("{inv}?done=created").as_str()));

    // Import: the problems listed by row; nothing imported. Then a good file.
    let before = count_workstations(&app.db, org).await;
    let (ct, body) = multipart("hostname,port\npagina-2,3389\npagina 3,3389\npagina-4,99999\n");
    let r = admin.post(app.at(&format!("{inv}/import"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Il file ha 2 problemi: non è stato importato nulla."), "import failure announced");
    assert!(html.contains("<td>3</td><td>hostname</td>") && html.contains("<td>4</td><td>port</td>"), "rows and columns listed");
    assert_eq!(count_workstations(&app.db, org).await, before);
    let (ct, body) = multipart("hostname;address\npagina-2;127.0.0.1\npagina-3;127.0.0.1\n");
    let r = admin.post(app.at(&format!("{inv}/import"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.headers()["location"], format!("{inv}?done=imported&n=2").as_str());
    let (_, html) = page(&admin, format!("{inv}?done=imported&n=2&q=pagina")).await;
    assert!(html.contains("Importate 2 postazioni.") && html.contains("pagina-3"));

    // One workstation's page: edit, probe.
    let list = Api::new(&app, "admin@regione.example").await.call("GET", &format!("/api/v1/orgs/{org}/workstations?q=pagina-1"), None, 200).await;
    let wid = id(&list["items"][0]);
    let (s, html) = page(&admin, format!("{inv}/{wid}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Cronologia della raggiungibilità") && html.contains("Modifica la postazione"));
    let r = admin.post(app.at(&format!("{inv}/{wid}"))).form(&[("hostname", "pagina-1"), ("address", "127.0.0.1"), ("mode", "pooled"), ("location", "Sala Pagine")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = admin.post(app.at(&format!("{inv}/{wid}/probe"))).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(&admin, format!("{inv}/{wid}?done=probed")).await;
    assert!(html.contains("Sala Pagine") && html.contains("Verifica eseguita."));

    // The employee's page: their PC, booking a shared seat, a clear error for a taken slot, cancelling.
    let sara = app.login("dipendente@regione.example").await;
    let (s, html) = page(&sara, "/workstations".into()).await;
    assert_eq!(s, 200);
    assert!(html.contains("pc-lom-0001.regione.example") && html.contains("connect.rdp"), "her dedicated PC and its .rdp link");
    assert!(!html.contains("pc-lom-0002"), "not the manager's PC");
    let day = (OffsetDateTime::now_utc() + time::Duration::days(2)).date().to_string();
    let form = [("workstation", wid.as_str()), ("date", day.as_str()), ("starts_at", "09:00"), ("ends_at", "10:30")];
    let r = sara.post(app.at(&format!("/orgs/{org}/workstations/book"))).form(&form).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/workstations?done=booked");
    let (_, html) = page(&sara, "/workstations?done=booked".into()).await;
    assert!(html.contains("Prenotazione registrata.") && html.contains("09:00 – 10:30"), "the booking in Rome time");
    let luca = app.login("manager@regione.example").await;
    let r = luca.post(app.at(&format!("/orgs/{org}/workstations/book"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("la postazione è già prenotata in questo orario"));
    let r = luca.post(app.at(&format!("/orgs/{org}/workstations/book")))
        .form(&[("workstation", wid.as_str()), ("date", day.as_str()), ("starts_at", "09:10"), ("ends_at", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("campo obbligatorio") && html.contains("id=\"f-ends_at\"") && html.contains("aria-describedby=\"f-ends_at-error\""), "the missing end is named");
    let r = luca.post(app.at(&format!("/orgs/{org}/workstations/book")))
        .form(&[("workstation", wid.as_str()), ("date", day.as_str()), ("starts_at", "09:10"), ("ends_at", "10:00")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("usa i quarti d&#39;ora (00, 15, 30, 45)"), "the misaligned start is named");
    let bookings = Api::new(&app, "dipendente@regione.example").await.call("GET", &format!("/api/v1/orgs/{org}/workstations/bookings"), None, 200).await;
    let bid = id(&bookings[0]);
    let r = sara.post(app.at(&format!("{inv}/{wid}/bookings/{bid}/cancel"))).form(&[("next", "/workstations")]).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/workstations?done=cancelled");
    // Employees do not see the inventory pages.
    assert_eq!(page(&sara, inv.clone()).await.0, 403);
    assert_eq!(page(&sara, format!("{inv}/{wid}")).await.0, 403);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Found by the API fuzzer (api_v1::fuzzing_every_route…): instants at the edge of what RFC 3339 can write

both_engines!(instants_at_the_end_of_the_calendar_are_field_errors_not_crashes, |app| async move {
    let org = app.org_id("r_lombar").await;
    let admin = Api::new(&app, "admin@regione.example").await;
    let sara = Api::new(&app, "dipendente@regione.example").await;
    let ws = id(&create(&admin, org, json!({"hostname": "pool-edge", "address": "127.0.0.1"})).await);
    let before = head_seq(&app.db).await;
    // Year 9999 in UTC, 10000 once the offset is applied; the first day of year 0 a minute before UTC; 14 days
    // after a start in the last days of 9999.
    let late = "9999-12-31T23:45:00-01:00";
    for (s, e, f) in [
        (late, "9999-12-31T23:30:00Z", "starts_at"),
        (rfc(tomorrow(9)).as_str(), late, "ends_at"),
        ("0000-01-01T00:00:00+01:00", rfc(tomorrow(9)).as_str(), "starts_at"),
    ] {
        let p = sara.call("POST", &format!("/api/v1/orgs/{org}/workstations/{ws}/bookings"), Some(json!({"starts_at": s, "ends_at": e})), 422).await;
        assert_eq!(field(&p, f).as_deref(), Some("out-of-range"), "{s}–{e}: {p}");
    }
    for (query, f) in [
        ("from=9999-12-20T00:00:00Z", "from"),
        ("from=9999-12-31T00:00:00Z&until=9999-12-31T23:00:00-05:00", "until"),
        ("from=0000-01-01T00:00:00%2B01:00", "from"),
    ] {
        for path in [format!("/api/v1/orgs/{org}/workstations/bookings?{query}"), format!("/api/v1/orgs/{org}/workstations/{ws}/bookings?{query}")] {
            let p = admin.call("GET", &path, None, 422).await;
            assert_eq!(field(&p, f).as_deref(), Some("out-of-range"), "{path}: {p}");
        }
    }
    // A window in the ordinary range still lists.
    let q = format!("from={}&until={}", rfc(tomorrow(0)), rfc(tomorrow(0) + time::Duration::days(2)));
    admin.call("GET", &format!("/api/v1/orgs/{org}/workstations/bookings?{}", q.replace('+', "%2B")), None, 200).await;
    assert_eq!(head_seq(&app.db).await, before, "nothing booked, nothing audited");
    app
});

both_engines!(an_organisation_that_does_not_exist_is_404_even_for_the_operator, |app| async move {
    // Found by the API fuzzer next to the same question on the VPN: the operator, asking about an organisation
    // that is not there, learns that it is not there (not that it lacks the service).
    let operator = Api::new(&app, "operatore@aria.example").await;
    let nowhere = uuid::Uuid::now_v7();
    let p = operator.call("GET", &format!("/api/v1/orgs/{nowhere}/workstations"), None, 404).await;
    assert_eq!(p["code"], "not-found");
    operator.call("POST", &format!("/api/v1/orgs/{nowhere}/workstations"), Some(json!({"hostname": "pc-x", "address": "127.0.0.1"})), 404).await;
    // An organisation without the service is still 403 to the operator.
    let comune = app.org_id("c_b157").await;
    operator.call("GET", &format!("/api/v1/orgs/{comune}/workstations"), None, 403).await;
    app
});
