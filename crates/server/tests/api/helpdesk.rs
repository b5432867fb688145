//! The help desk (crates/helpdesk): tickets, queues, SLAs, knowledge base, through HTTP on both engines.

use agilekit_helpdesk::service::{self as hd, BodyInput, NewTicket, StateInput};
use agilekit_kernel::Db;
use agilekit_kernel::audit::Actor;
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use reqwest::Client;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::both_engines;
use crate::helpers::*;

/// This domain's organisation-scoped routes, each tried by this module's isolation test with another
/// organisation's IDs: (method, path template, plausible body). The guard in `isolation.rs` reads this table.
/// `{org}` is the victim organisation, `{ticket}` one of its tickets, `{account}` its agent (a watcher).
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets?state=new", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets", r#"{"category":"vpn","subject":"X","body":"X"}"#),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets/count", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/reply", r#"{"body":"Hacked"}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/note", r#"{"body":"Hacked"}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/state", r#"{"state":"closed"}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/assign", r#"{"round_robin":true}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/priority", r#"{"priority":"urgent"}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/escalate", r#"{"reason":"Hacked"}"#),
    ("PUT", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/tags", r#"{"tags":["hacked"]}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers", r#"{"account":"{account}"}"#),
    ("DELETE", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/watchers/{account}", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/merge", r#"{"into":"{ticket}"}"#),
    ("POST", "/api/v1/orgs/{org}/helpdesk/tickets/bulk", r#"{"ids":["{ticket}"],"state":"closed"}"#),
    ("GET", "/api/v1/helpdesk/escalated", ""),
    // The caller's own page in their current organisation: shows nothing of anyone else's (checked for secrets).
    ("GET", "/helpdesk", ""),
    ("GET", "/orgs/{org}/helpdesk", ""),
    ("GET", "/orgs/{org}/helpdesk?state=new", ""),
    ("POST", "/orgs/{org}/helpdesk/tickets", "category=vpn&subject=X&body=X"),
    ("GET", "/orgs/{org}/helpdesk/tickets/{ticket}", ""),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/reply", "body=Hacked"),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/note", "body=Hacked"),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/state", "state=closed"),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/assign", "round_robin=1"),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/priority", "priority=urgent"),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/escalate", "reason=Hacked"),
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

async fn put(app: &TestApp, c: &Client, path: &str, body: Value, want: u16) -> Value {
    let (s, v, text) = send(c, "PUT", app.at(path), Some(body.clone())).await;
    assert_eq!(s, want, "PUT {path} {body} answered {s}: {text}");
    v
}

async fn get(app: &TestApp, c: &Client, path: &str, want: u16) -> Value {
    let (s, v, text) = send(c, "GET", app.at(path), None).await;
    assert_eq!(s, want, "GET {path} answered {s}: {text}");
    v
}

fn has_error(v: &Value, field: &str, code: &str) -> bool {
    v["errors"].as_array().is_some_and(|a| a.iter().any(|e| e["field"] == field && e["code"] == code))
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    let row: (i64,) = agilekit_kernel::db_run!(db, |p| sqlx::query_as(sql).fetch_one(p).await.unwrap());
    row.0
}

async fn head_seq(db: &Db) -> i64 {
    scalar(db, "SELECT seq FROM audit_head WHERE id = 1").await
}

async fn mails(db: &Db) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await
}

fn bare() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn tickets_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/tickets")
}

/// Opens a ticket as `c` in `org`: its id.
async fn open(app: &TestApp, c: &Client, org: OrgId, subject: &str) -> String {
    let t = post(app, c, &tickets_url(org), json!({"category": "vpn", "subject": subject, "body": format!("{subject}: aiuto")}), 201).await;
    t["ticket"]["id"].as_str().unwrap().to_owned()
}

async fn town_admin_client(app: &TestApp) -> Client {
    app.login("admin@comune.example").await
}

fn bodies(d: &Value) -> Vec<(String, String)> {
    d["messages"].as_array().unwrap().iter().map(|m| (m["kind"].as_str().unwrap().to_owned(), m["body"].as_str().unwrap().to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Lifecycle

both_engines!(a_ticket_goes_from_new_to_closed_with_replies_notes_and_mail, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let agent_id = app.account_id("agente@regione.example").await;
    let audit0 = head_seq(&app.db).await;

    let d = post(&app, &employee, &tickets_url(region),
        json!({"category": "vpn", "subject": "  La VPN non si connette ", "body": "Errore di handshake da stamattina."}), 201).await;
    let id = d["ticket"]["id"].as_str().unwrap().to_owned();
    let url = format!("{}/{id}", tickets_url(region));
    assert_eq!(d["ticket"]["state"], "new");
    assert_eq!(d["ticket"]["subject"], "La VPN non si connette");
    assert_eq!(d["ticket"]["priority"], "normal");
    assert_eq!(d["ticket"]["queue"], "org");
    assert!(d["ticket"]["reference"].as_str().unwrap().starts_with('#'));
    assert_eq!(d["ticket"]["sla"]["first_response"]["state"], "running");
    assert_eq!(d["ticket"]["sla"]["first_response"]["target_secs"], 4 * 3600);
    let second = open(&app, &employee, region, "Secondo").await;
    let s = get(&app, &employee, &format!("{}/{second}", tickets_url(region)), 200).await;
    assert_eq!(s["ticket"]["number"].as_i64().unwrap(), d["ticket"]["number"].as_i64().unwrap() + 1);

    // The agent's queue has both; the count comes apart.
    let q = get(&app, &agent, &format!("{}?state=new", tickets_url(region)), 200).await;
    let ids: Vec<&str> = q["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&second.as_str()));
    assert_eq!(get(&app, &agent, &format!("{}/count?state=new", tickets_url(region)), 200).await["count"], 2);

    // A note stops nothing and the requester never sees it; the first public reply stops the first-response clock.
    let mails0 = mails(&app.db).await;
    let n = post(&app, &agent, &format!("{url}/note"), json!({"body": "Controllare il concentratore"}), 200).await;
    assert_eq!(n["ticket"]["sla"]["first_response"]["state"], "running");
    assert_eq!(n["ticket"]["state"], "new");
    assert_eq!(mails(&app.db).await, mails0, "a note mails no one");
    let r = post(&app, &agent, &format!("{url}/reply"), json!({"body": "Può riavviare il client?"}), 200).await;
    assert_eq!(r["ticket"]["state"], "open");
    assert_eq!(r["ticket"]["sla"]["first_response"]["state"], "stopped");
    assert!(r["ticket"]["first_response_at"].is_string());
    assert_eq!(r["role"], "agent");
    assert_eq!(mails(&app.db).await, mails0 + 1, "the requester is mailed the reply");
    let v = get(&app, &employee, &url, 200).await;
    assert_eq!(v["role"], "requester");
    assert_eq!(bodies(&v), [("reply".to_owned(), "Errore di handshake da stamattina.".to_owned()),
                            ("reply".to_owned(), "Può riavviare il client?".to_owned())]);
    assert!(!v.to_string().contains("concentratore"), "the requester sees an internal note: {v}");
    let a = get(&app, &agent, &url, 200).await;
    assert_eq!(bodies(&a).len(), 3);

    // Assignment: round-robin among the organisation's agents; a non-agent is refused.
    let asg = post(&app, &agent, &format!("{url}/assign"), json!({"round_robin": true}), 200).await;
    assert_eq!(asg["ticket"]["assignee_id"], agent_id.to_string());
    let employee_id = app.account_id("dipendente@regione.example").await;
    let e = post(&app, &agent, &format!("{url}/assign"), json!({"assignee": employee_id.to_string()}), 422).await;
    assert!(has_error(&e, "assignee", "not-found"), "{e}");
    assert_eq!(get(&app, &agent, &format!("{}/count?assignee=me", tickets_url(region)), 200).await["count"], 1);

    // Priority retargets the running resolution clock.
    let p = post(&app, &agent, &format!("{url}/priority"), json!({"priority": "urgent"}), 200).await;
    assert_eq!(p["ticket"]["priority"], "urgent");
    assert_eq!(p["ticket"]["sla"]["resolution"]["target_secs"], 4 * 3600);
    let tg = put(&app, &agent, &format!("{url}/tags"), json!({"tags": ["VPN", "rete"]}), 200).await;
    assert_eq!(tg["ticket"]["tags"], json!(["vpn", "rete"]));
    assert_eq!(get(&app, &agent, &format!("{}/count?tag=rete", tickets_url(region)), 200).await["count"], 1);

    // Pending pauses the resolution clock; the requester's reply reopens it.
    let pd = post(&app, &agent, &format!("{url}/state"), json!({"state": "pending"}), 200).await;
    assert_eq!(pd["ticket"]["sla"]["resolution"]["state"], "paused");
    let back = post(&app, &employee, &format!("{url}/reply"), json!({"body": "Riavviato, ancora nulla."}), 200).await;
    assert_eq!(back["ticket"]["state"], "open");
    assert_eq!(back["ticket"]["sla"]["resolution"]["state"], "running");
    // The requester may not move states or write notes.
    post(&app, &employee, &format!("{url}/state"), json!({"state": "resolved"}), 403).await;
    post(&app, &employee, &format!("{url}/note"), json!({"body": "x"}), 403).await;

    // Resolved stops the clock; a reply within the reopening window reopens; closed is final.
    let rs = post(&app, &agent, &format!("{url}/state"), json!({"state": "resolved"}), 200).await;
    assert_eq!(rs["ticket"]["sla"]["resolution"]["state"], "stopped");
    assert!(rs["ticket"]["resolved_at"].is_string());
    let again = post(&app, &employee, &format!("{url}/reply"), json!({"body": "Si è di nuovo rotta."}), 200).await;
    assert_eq!(again["ticket"]["state"], "open");
    assert_eq!(again["ticket"]["sla"]["resolution"]["state"], "running");
    post(&app, &agent, &format!("{url}/state"), json!({"state": "resolved"}), 200).await;
    let cl = post(&app, &agent, &format!("{url}/state"), json!({"state": "closed"}), 200).await;
    assert_eq!(cl["ticket"]["state"], "closed");
    let e = post(&app, &employee, &format!("{url}/reply"), json!({"body": "Ancora?"}), 409).await;
    assert_eq!(e["code"], "ticket-closed");
    let e = post(&app, &agent, &format!("{url}/state"), json!({"state": "open"}), 422).await;
    assert!(has_error(&e, "state", "transition"), "{e}");

    // Every change is audited.
    let audited = scalar(&app.db, "SELECT COUNT(*) FROM audit_log WHERE entity = 'helpdesk_ticket'").await;
    assert_eq!(audited, 13, "one entry per change");
    assert!(head_seq(&app.db).await > audit0);
    app
});

both_engines!(queues_page_by_keyset_and_count_apart, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(open(&app, &employee, region, &format!("Richiesta {i}")).await);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &after {
            Some(a) => format!("{}?limit=2&after={a}", tickets_url(region)),
            None => format!("{}?limit=2", tickets_url(region)),
        };
        let p = get(&app, &agent, &q, 200).await;
        pages += 1;
        for t in p["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match p["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");
    assert_eq!(get(&app, &agent, &format!("{}/count", tickets_url(region)), 200).await["count"], 5);
    app
});

both_engines!(round_robin_takes_the_organisations_agents_in_turn, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let second = app.account_id("manager@regione.example").await;
    agilekit_kernel::identity::grant(&app.db, &Actor::system(), region, second, agilekit_kernel::identity::Role::Agent).await.unwrap();
    let first = app.account_id("agente@regione.example").await;
    let mut given = Vec::new();
    for i in 0..4 {
        let id = open(&app, &employee, region, &format!("Turno {i}")).await;
        let d = post(&app, &agent, &format!("{}/{id}/assign", tickets_url(region)), json!({"round_robin": true}), 200).await;
        given.push(d["ticket"]["assignee_id"].as_str().unwrap().to_owned());
    }
    assert_ne!(given[0], given[1]);
    assert_eq!(given[0], given[2]);
    assert_eq!(given[1], given[3]);
    for who in [first, second] {
        assert_eq!(given.iter().filter(|g| **g == who.to_string()).count(), 2, "{given:?}");
    }
    app
});

// ---------------------------------------------------------------------------------------------------------------
// SLA through the service, with set instants

both_engines!(the_first_reply_stops_its_clock_and_pending_pauses_resolution_in_business_time, |app| async move {
    // The server (and its SLA job runner, which works in real time and would mark these 2026 deadlines as long
    // breached between two steps at set instants) is stopped for the steps, and started again to read them back.
    let mut app = app;
    app.stop().await;
    let region = app.org_id("r_lombar").await;
    let requester = Principal::load(&app.db, app.account_id("dipendente@regione.example").await).await.unwrap();
    let agent = Principal::load(&app.db, app.account_id("agente@regione.example").await).await.unwrap();
    let (ra, aa) = (Actor::account(requester.id(), None), Actor::account(agent.id(), None));
    // Monday 30 November 2026; Rome is UTC+1: 08:00 UTC is 09:00, the opening.
    let t = hd::open(&app.db, &requester, &ra, region,
        &NewTicket { category: "account".into(), subject: "Password scaduta".into(), body: "Non entro".into() },
        datetime!(2026-11-30 08:00 UTC)).await.unwrap();
    let id = t.ticket.id;
    let body = |s: &str| BodyInput { body: s.into() };
    // Answered an hour later: one business hour of first response, then the clock stands.
    let d = hd::reply(&app.db, &agent, &aa, region, id, &body("Reimpostata"), datetime!(2026-11-30 09:00 UTC)).await.unwrap();
    assert_eq!(d.ticket.sla.first_response.state, "stopped");
    assert_eq!(d.ticket.sla.first_response.used_secs, 3600);
    // Pending at 11:00 Rome: two business hours of resolution used, paused overnight.
    let d = hd::set_state(&app.db, &agent, &aa, region, id, &StateInput { state: "pending".into() },
        datetime!(2026-11-30 10:00 UTC), &app.url).await.unwrap();
    assert_eq!(d.ticket.sla.resolution.state, "paused");
    assert_eq!(d.ticket.sla.resolution.used_secs, 2 * 3600);
    // The requester answers on Tuesday at 11:00 Rome: the night and the morning pending do not count.
    let d = hd::reply(&app.db, &requester, &ra, region, id, &body("Ancora nulla"), datetime!(2026-12-01 10:00 UTC)).await.unwrap();
    assert_eq!(d.ticket.state, agilekit_helpdesk::model::State::Open);
    assert_eq!(d.ticket.sla.resolution.state, "running");
    assert_eq!(d.ticket.sla.resolution.used_secs, 2 * 3600);
    // Resolved at 12:00 Rome: one more business hour, three in all; the first response stays at one.
    let d = hd::set_state(&app.db, &agent, &aa, region, id, &StateInput { state: "resolved".into() },
        datetime!(2026-12-01 11:00 UTC), &app.url).await.unwrap();
    assert_eq!(d.ticket.sla.resolution.state, "stopped");
    assert_eq!(d.ticket.sla.resolution.used_secs, 3 * 3600);
    assert_eq!(d.ticket.sla.first_response.used_secs, 3600);
    assert!(!d.ticket.sla.resolution.breached);
    // Stored as such: read back over HTTP.
    app.restart(Options::default()).await;
    let c = app.login("agente@regione.example").await;
    let v = get(&app, &c, &format!("{}/{id}", tickets_url(region)), 200).await;
    assert_eq!(v["ticket"]["sla"]["resolution"]["used_secs"], 3 * 3600);
    assert_eq!(v["ticket"]["sla"]["first_response"]["used_secs"], 3600);
    // Past the reopening window the requester's reply is refused.
    let e = hd::reply(&app.db, &requester, &ra, region, id, &body("Di nuovo"), datetime!(2026-12-09 10:00 UTC)).await;
    assert!(matches!(e, Err(agilekit_kernel::Error::Conflict("ticket-closed"))), "{e:?}");
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Isolation

both_engines!(a_requester_sees_only_their_own_tickets_and_never_a_note, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let other = app.login("manager@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let id = open(&app, &employee, region, "Riservato del dipendente").await;
    let url = format!("{}/{id}", tickets_url(region));
    post(&app, &agent, &format!("{url}/note"), json!({"body": "Nota interna segreta"}), 200).await;
    let mine = open(&app, &other, region, "Del dirigente").await;

    get(&app, &other, &url, 404).await;
    post(&app, &other, &format!("{url}/reply"), json!({"body": "Intruso"}), 404).await;
    post(&app, &other, &format!("{url}/note"), json!({"body": "Intruso"}), 404).await;
    let list = get(&app, &other, &tickets_url(region), 200).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.as_str()]);
    assert!(!list.to_string().contains("Riservato"));
    assert_eq!(get(&app, &other, &format!("{}/count", tickets_url(region)), 200).await["count"], 1);
    let v = get(&app, &employee, &url, 200).await;
    assert!(!v.to_string().contains("Nota interna"), "{v}");
    assert!(bodies(&v).iter().all(|(k, _)| k == "reply"));
    app
});

both_engines!(another_organisations_tickets_are_403_or_404_and_unchanged, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let ticket = open(&app, &employee, region, "Segreto regionale").await;
    post(&app, &agent, &format!("{}/{ticket}/note", tickets_url(region)), json!({"body": "Nota segretissima"}), 200).await;

    let attacker_id = app.account_id("admin@comune.example").await;
    let (_, attacker_token) = token::create(&app.db, &Actor::system(), attacker_id, "attacker").await.unwrap();
    let agent_id = app.account_id("agente@regione.example").await.to_string();
    post(&app, &agent, &format!("{}/{ticket}/watchers", tickets_url(region)), json!({"account": agent_id}), 200).await;
    let fill = |p: &str, org: OrgId| p.replace("{org}", &org.to_string()).replace("{ticket}", &ticket).replace("{account}", &agent_id);
    let secrets = ["Segreto regionale", "Nota segretissima", "dipendente@regione.example", "Sara Dipendente"];
    let before = head_seq(&app.db).await;
    let mails0 = mails(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    let mut failures = Vec::new();
    for (pass, org) in [(1, region), (2, town)] {
        for (method, template, body) in SCOPED_ROUTES {
            if pass == 2 && !template.contains("{ticket}") {
                continue;
            }
            let url = app.at(&fill(template, org));
            let is_api = template.starts_with("/api/");
            let own_page = !is_api && !template.contains('{');
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
            let ok = if own_page { status == 200 } else { status == 403 || status == 404 };
            if !ok {
                failures.push(format!("pass {pass}: {method} {template}: {status} {text}"));
            }
            if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
                failures.push(format!("pass {pass}: {method} {template}: the answer contains {s:?}"));
            }
            if pass == 1 {
                let r = build(&bare()).send().await.unwrap();
                let expected = if is_api { vec![401] } else if *method == "GET" { vec![303] } else { vec![303, 403] };
                if !expected.contains(&r.status().as_u16()) {
                    failures.push(format!("{method} {template}: {} signed out", r.status()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(head_seq(&app.db).await, before, "an attempt changed something (the audit log grew)");
    assert_eq!(mails(&app.db).await, mails0);
    let v = get(&app, &agent, &format!("{}/{ticket}", tickets_url(region)), 200).await;
    assert_eq!(v["ticket"]["state"], "new");
    assert_eq!(v["ticket"]["queue"], "org");
    assert_eq!(bodies(&v).len(), 2);
    assert_eq!(v["watchers"].as_array().unwrap().len(), 1);
    // The attacker's own organisation with the victim's ticket in a bulk action: a field error, nothing changed.
    let e = post(&app, &town_admin_client(&app).await, &format!("{}/bulk", tickets_url(town)),
        json!({"ids": [ticket], "state": "closed"}), 422).await;
    assert!(has_error(&e, "ids[0]", "not-found"), "{e}");
    assert!(!e.to_string().contains("Segreto"));
    // An organisation without the help desk cannot open tickets at all.
    let town_admin = app.login("admin@comune.example").await;
    post(&app, &town_admin, &tickets_url(town), json!({"category": "vpn", "subject": "X", "body": "X"}), 403).await;
    app
});

both_engines!(escalation_shows_the_operator_exactly_the_escalated_ticket, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let operator = app.login("operatore@aria.example").await;
    let up = open(&app, &employee, region, "Da scalare").await;
    let stays = open(&app, &employee, region, "Resta in casa").await;
    let up_url = format!("{}/{up}", tickets_url(region));
    let stays_url = format!("{}/{stays}", tickets_url(region));
    post(&app, &agent, &format!("{up_url}/note"), json!({"body": "Prima nota"}), 200).await;

    // Before escalation the operator sees nothing of the region's help desk.
    get(&app, &operator, &up_url, 404).await;
    assert_eq!(get(&app, &operator, "/api/v1/helpdesk/escalated", 200).await["items"], json!([]));
    // Only the organisation's agents escalate, with a reason.
    post(&app, &employee, &format!("{up_url}/escalate"), json!({"reason": "x"}), 403).await;
    let e = post(&app, &agent, &format!("{up_url}/escalate"), json!({"reason": " "}), 422).await;
    assert!(has_error(&e, "reason", "required"), "{e}");
    let d = post(&app, &agent, &format!("{up_url}/escalate"), json!({"reason": "Serve il secondo livello"}), 200).await;
    assert_eq!(d["ticket"]["queue"], "operator");
    let e = post(&app, &agent, &format!("{up_url}/escalate"), json!({"reason": "ancora"}), 409).await;
    assert_eq!(e["code"], "already-escalated");

    let q = get(&app, &operator, "/api/v1/helpdesk/escalated", 200).await;
    let ids: Vec<&str> = q["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [up.as_str()]);
    let v = get(&app, &operator, &up_url, 200).await;
    assert_eq!(v["role"], "operator");
    assert!(bodies(&v).iter().any(|(k, b)| k == "note" && b == "Serve il secondo livello"));
    // Nothing else of the organisation.
    get(&app, &operator, &stays_url, 404).await;
    get(&app, &operator, &tickets_url(region), 404).await;
    get(&app, &operator, &format!("{}/count", tickets_url(region)), 404).await;
    post(&app, &operator, &format!("{stays_url}/reply"), json!({"body": "x"}), 404).await;
    // The operator works the escalated ticket: a reply (the requester sees it), assignment among its own agents.
    post(&app, &operator, &format!("{up_url}/reply"), json!({"body": "Risolto lato centro servizi"}), 200).await;
    let operator_id = app.account_id("operatore@aria.example").await;
    let a = post(&app, &operator, &format!("{up_url}/assign"), json!({"round_robin": true}), 200).await;
    assert_eq!(a["ticket"]["assignee_id"], operator_id.to_string());
    post(&app, &operator, &format!("{up_url}/escalate"), json!({"reason": "x"}), 403).await;
    let r = get(&app, &employee, &up_url, 200).await;
    assert!(bodies(&r).iter().any(|(_, b)| b == "Risolto lato centro servizi"));
    assert!(!r.to_string().contains("secondo livello"));
    // Someone who is not an operator agent has no second-level queue.
    get(&app, &agent, "/api/v1/helpdesk/escalated", 403).await;
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Bad input

both_engines!(bad_input_is_answered_with_field_errors_and_changes_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let id = open(&app, &employee, region, "Valido").await;
    let url = format!("{}/{id}", tickets_url(region));
    let before = head_seq(&app.db).await;
    let count0 = scalar(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await;

    let e = post(&app, &employee, &tickets_url(region), json!({"category": "", "subject": " ", "body": ""}), 422).await;
    assert!(has_error(&e, "category", "required") && has_error(&e, "subject", "required") && has_error(&e, "body", "required"), "{e}");
    let e = post(&app, &employee, &tickets_url(region),
        json!({"category": "stampante", "subject": "x".repeat(201), "body": "ok"}), 422).await;
    assert!(has_error(&e, "category", "format") && has_error(&e, "subject", "too-long"), "{e}");
    let e = post(&app, &agent, &format!("{url}/state"), json!({"state": "volato"}), 422).await;
    assert!(has_error(&e, "state", "format"), "{e}");
    let e = post(&app, &agent, &format!("{url}/state"), json!({"state": "merged"}), 422).await;
    assert!(has_error(&e, "state", "transition"), "{e}");
    let e = post(&app, &agent, &format!("{url}/priority"), json!({"priority": "subito"}), 422).await;
    assert!(has_error(&e, "priority", "format"), "{e}");
    let e = post(&app, &agent, &format!("{url}/assign"), json!({"assignee": "nessuno"}), 422).await;
    assert!(has_error(&e, "assignee", "format"), "{e}");
    let e = put(&app, &agent, &format!("{url}/tags"), json!({"tags": ["ok", "non va"]}), 422).await;
    assert!(has_error(&e, "tags[1]", "format"), "{e}");
    let e = post(&app, &agent, &format!("{url}/reply"), json!({"body": "   "}), 422).await;
    assert!(has_error(&e, "body", "required"), "{e}");
    let e = get(&app, &agent, &format!("{}?state=boh&limit=0&after=zzz&assignee=x", tickets_url(region)), 422).await;
    for (f, c) in [("state", "format"), ("limit", "out-of-range"), ("after", "format"), ("assignee", "format")] {
        assert!(has_error(&e, f, c), "{f} {c}: {e}");
    }
    let (s, _, _) = send(&agent, "POST", app.at(&format!("{url}/reply")), None).await;
    assert!(s == 400 || s == 415 || s == 422, "{s}");

    assert_eq!(head_seq(&app.db).await, before, "a refused request changed something");
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await, count0);
    let v = get(&app, &agent, &url, 200).await;
    assert_eq!(v["ticket"]["state"], "new");
    assert_eq!(v["ticket"]["priority"], "normal");
    assert_eq!(bodies(&v).len(), 1);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Watchers, merge, bulk

both_engines!(watchers_are_mailed_merges_keep_the_thread_and_bulk_is_all_or_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let agent_id = app.account_id("agente@regione.example").await.to_string();
    let a = open(&app, &employee, region, "Primo").await;
    let b = open(&app, &employee, region, "Doppione").await;
    let c = open(&app, &employee, region, "Terzo").await;
    let url = |id: &str| format!("{}/{id}", tickets_url(region));

    // Watchers: agents of the queue only; mailed on the requester's replies too.
    let employee_id = app.account_id("dipendente@regione.example").await.to_string();
    let e = post(&app, &agent, &format!("{}/watchers", url(&a)), json!({"account": employee_id}), 422).await;
    assert!(has_error(&e, "account", "not-found"), "{e}");
    let w = post(&app, &agent, &format!("{}/watchers", url(&a)), json!({"account": agent_id}), 200).await;
    assert_eq!(w["watchers"][0]["account_id"], agent_id);
    assert_eq!(get(&app, &employee, &url(&a), 200).await["watchers"], json!([]), "the requester does not see watchers");
    let m0 = mails(&app.db).await;
    post(&app, &employee, &format!("{}/reply", url(&a)), json!({"body": "Novità?"}), 200).await;
    assert_eq!(mails(&app.db).await, m0 + 1, "the watcher is mailed the requester's reply");
    let (s, _, _) = send(&agent, "DELETE", app.at(&format!("{}/watchers/{agent_id}", url(&a))), None).await;
    assert_eq!(s, 200);
    assert_eq!(get(&app, &agent, &url(&a), 200).await["watchers"], json!([]));

    // Merge: the duplicate becomes merged into the first, its thread still readable, both noted.
    let e = post(&app, &agent, &format!("{}/merge", url(&b)), json!({"into": b}), 422).await;
    assert!(has_error(&e, "into", "cycle"), "{e}");
    let other_org = open(&app, &app.login("admin@arpa.example").await, arpa, "Altra").await;
    let e = post(&app, &agent, &format!("{}/merge", url(&b)), json!({"into": other_org}), 422).await;
    assert!(has_error(&e, "into", "not-found"), "{e}");
    let m = post(&app, &agent, &format!("{}/merge", url(&b)), json!({"into": a}), 200).await;
    assert_eq!(m["ticket"]["state"], "merged");
    assert_eq!(m["ticket"]["merged_into"], a.as_str());
    assert_eq!(m["ticket"]["sla"]["resolution"]["state"], "stopped");
    let rb = get(&app, &employee, &url(&b), 200).await;
    assert!(bodies(&rb).iter().any(|(_, x)| x == "Doppione: aiuto"));
    assert!(get(&app, &agent, &url(&a), 200).await.to_string().contains("← #"));
    post(&app, &agent, &format!("{}/merge", url(&c)), json!({"into": b}), 422).await;

    // Bulk: one ticket that cannot move refuses the whole batch; then it goes through.
    let before = head_seq(&app.db).await;
    let e = post(&app, &agent, &format!("{}/bulk", tickets_url(region)),
        json!({"ids": [a, b, c], "state": "pending"}), 422).await;
    assert!(has_error(&e, "ids[1]", "transition"), "{e}");
    assert_eq!(head_seq(&app.db).await, before, "a refused batch changed something");
    assert_eq!(get(&app, &agent, &url(&a), 200).await["ticket"]["state"], "new");
    let e = post(&app, &agent, &format!("{}/bulk", tickets_url(region)), json!({"ids": [], "state": "nope"}), 422).await;
    assert!(has_error(&e, "ids", "required") && has_error(&e, "state", "format"), "{e}");
    let done = post(&app, &agent, &format!("{}/bulk", tickets_url(region)),
        json!({"ids": [a, c], "state": "pending", "assignee": agent_id}), 200).await;
    assert_eq!(done.as_array().unwrap().len(), 2);
    for id in [&a, &c] {
        let t = get(&app, &agent, &url(id), 200).await;
        assert_eq!(t["ticket"]["state"], "pending");
        assert_eq!(t["ticket"]["assignee_id"], agent_id.as_str());
    }
    post(&app, &employee, &format!("{}/bulk", tickets_url(region)), json!({"ids": [a], "state": "closed"}), 404).await;
    app
});

both_engines!(every_helpdesk_route_is_in_the_openapi_document, |app| async move {
    let doc: Value = bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for (m, p, _) in SCOPED_ROUTES.iter().filter(|(_, p, _)| p.starts_with("/api/")) {
        let p = p.split('?').next().unwrap();
        let op = &doc["paths"][p][m.to_lowercase().as_str()];
        assert!(op.is_object(), "{m} {p} is not documented");
    }
    assert!(doc["components"]["schemas"]["TicketDetail"].is_object());
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Pages

fn form(c: &Client, url: String, body: &[(&str, &str)]) -> reqwest::RequestBuilder {
    c.post(url).form(body)
}

/// Posts a form; on 303 follows to the page it names: (final status, path, page).
async fn submit(app: &TestApp, c: &Client, path: &str, body: &[(&str, &str)]) -> (u16, String, String) {
    let r = form(c, app.at(path), body).send().await.unwrap();
    if r.status() == 303 {
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        let r = c.get(app.at(&to)).send().await.unwrap();
        let s = r.status().as_u16();
        return (s, to, r.text().await.unwrap());
    }
    let s = r.status().as_u16();
    (s, path.to_owned(), r.text().await.unwrap())
}

async fn page(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

both_engines!(the_pages_open_answer_and_show_a_ticket_keeping_what_was_typed, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let (s, html) = page(&app, &employee, "/helpdesk").await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("action=\"/orgs/{region}/helpdesk/tickets\"")), "{html}");
    assert!(html.contains("for=\"f-subject\""));

    // Refused: the page comes back with the errors tied to their fields and what was typed.
    let (s, _, html) = submit(&app, &employee, &format!("/orgs/{region}/helpdesk/tickets"),
        &[("category", ""), ("subject", "Il client VPN <si blocca>"), ("body", "")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"error-summary\""));
    assert!(html.contains("id=\"f-category-error\"") && html.contains("id=\"f-body-error\""));
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("value=\"Il client VPN &") && !html.contains("<si blocca>"), "the subject typed is kept, escaped");

    let (s, to, html) = submit(&app, &employee, &format!("/orgs/{region}/helpdesk/tickets"),
        &[("category", "vpn"), ("subject", "Il client VPN si blocca"), ("body", "Da ieri sera\nnon si collega")]).await;
    assert_eq!(s, 200);
    let ticket_url = to.split('?').next().unwrap().to_owned();
    assert!(ticket_url.starts_with(&format!("/orgs/{region}/helpdesk/tickets/")), "{ticket_url}");
    assert!(html.contains("Il client VPN si blocca") && html.contains("Da ieri sera<br>non si collega"), "{html}");
    assert!(!html.contains("hd-agent-title"), "the requester gets no agent forms");
    let (_, html) = page(&app, &employee, "/helpdesk").await;
    assert!(html.contains("Il client VPN si blocca"));

    // The agent's queue: the ticket and the count apart; a bad filter is said so.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Il client VPN si blocca") && html.contains("1 richieste in tutto"), "{html}");
    let (s, _) = page(&app, &agent, &format!("/orgs/{region}/helpdesk?state=bogus")).await;
    assert_eq!(s, 422);
    // Requesters have no queue page.
    assert_eq!(page(&app, &employee, &format!("/orgs/{region}/helpdesk")).await.0, 404);

    // The agent answers and notes; an empty reply keeps the page with the error.
    let (s, _, html) = submit(&app, &agent, &format!("{ticket_url}/reply"), &[("body", "  ")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"f-body-error\""));
    let (s, _, _) = submit(&app, &agent, &format!("{ticket_url}/note"), &[("body", "Verificare il certificato")]).await;
    assert_eq!(s, 200);
    let (s, _, html) = submit(&app, &agent, &format!("{ticket_url}/reply"), &[("body", "Aggiorni il client, per favore.")]).await;
    assert_eq!(s, 200);
    assert!(html.contains("Verificare il certificato") && html.contains("hd-agent-title"));
    let (s, _, _) = submit(&app, &agent, &format!("{ticket_url}/state"), &[("state", "pending")]).await;
    assert_eq!(s, 200);
    let (s, _, html) = submit(&app, &agent, &format!("{ticket_url}/state"), &[("state", "nonsense")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"f-state-error\""));

    // The requester sees the answer and not the note, and answers back.
    let (_, html) = page(&app, &employee, &ticket_url).await;
    assert!(html.contains("Aggiorni il client, per favore."));
    assert!(!html.contains("Verificare il certificato"));
    let (s, _, _) = submit(&app, &employee, &format!("{ticket_url}/reply"), &[("body", "Fatto, funziona.")]).await;
    assert_eq!(s, 200);
    let (s, _, _) = submit(&app, &employee, &format!("{ticket_url}/note"), &[("body", "x")]).await;
    assert_eq!(s, 403);
    let v = get(&app, &agent, &format!("/api/v1{ticket_url}"), 200).await;
    assert_eq!(v["ticket"]["state"], "open");
    // In English.
    let r = form(&agent, app.at("/lang"), &[("lang", "en"), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk")).await;
    assert!(html.contains("Ticket queue") && html.contains("1 tickets in all"), "{html}");
    app
});
