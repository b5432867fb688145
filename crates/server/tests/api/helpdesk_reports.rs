//! The help desk's satisfaction survey and reports (crates/helpdesk/src/survey.rs, reports.rs), through HTTP on both
//! engines; known data is made through the service functions at set instants.

use agilekit_helpdesk::model::TicketId;
use agilekit_helpdesk::service::{self as hd, AssignInput, BodyInput, EscalateInput, NewTicket, PriorityInput, StateInput};
use agilekit_helpdesk::survey::{self, SatisfactionInput};
use agilekit_kernel::audit::Actor;
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::mail::Mail;
use agilekit_kernel::{Db, db_run};
use reqwest::Client;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::both_engines;
use crate::helpers::*;

/// This module's organisation-scoped routes, tried with another organisation's IDs by the isolation test below
/// (and classified for the guard in `isolation.rs`). `{org}` is the victim organisation, `{ticket}` one of its
/// tickets.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("PUT", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", r#"{"rating":5,"comment":"Hacked"}"#),
    ("GET", "/api/v1/orgs/{org}/helpdesk/reports", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/reports?from=2025-03-03&to=2025-03-09", ""),
    // The operator's second-level report: the operator's agents only.
    ("GET", "/api/v1/helpdesk/escalated/reports?from=2025-03-03&to=2025-03-09", ""),
    ("GET", "/orgs/{org}/helpdesk/reports", ""),
    ("GET", "/orgs/{org}/helpdesk/reports.csv?table=answers", ""),
    ("GET", "/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", ""),
    // The operator's second-level report as a page and CSV: the operator's agents only.
    ("GET", "/helpdesk/escalated/reports?from=2025-03-03&to=2025-03-09", ""),
    ("GET", "/helpdesk/escalated/reports.csv?from=2025-03-03&to=2025-03-09&table=answers", ""),
    ("POST", "/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", "rating=5&comment=Hacked"),
];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

async fn send(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    api_call(c, method, url, body, None).await
}

fn bare() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn mails(db: &Db) -> Vec<Mail> {
    let rows: Vec<String> = db_run!(db, |p| sqlx::query_scalar("SELECT payload FROM jobs WHERE kind = 'mail' ORDER BY created_at, id")
        .fetch_all(p).await.unwrap());
    rows.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

async fn answers_audited(db: &Db) -> i64 {
    let row: (i64,) = db_run!(db, |p| sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'helpdesk.ticket.satisfaction'")
        .fetch_one(p).await.unwrap());
    row.0
}

async fn page(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn get_csv(app: &TestApp, c: &Client, path: &str) -> (u16, String, String, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let cd = r.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (s, ct, cd, r.text().await.unwrap())
}

fn sat_url(org: OrgId, ticket: &str) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction")
}

struct People {
    sara: Principal,
    luca: Principal,
    davide: Principal,
}

async fn people(app: &TestApp) -> People {
    let load = |e: &'static str| async move { Principal::load(&app.db, app.account_id(e).await).await.unwrap() };
    People {
        sara: load("dipendente@regione.example").await,
        luca: load("manager@regione.example").await,
        davide: load("agente@regione.example").await,
    }
}

fn actor(p: &Principal) -> Actor {
    Actor::account(p.id(), None)
}

async fn open_at(app: &TestApp, p: &Principal, org: OrgId, category: &str, subject: &str, at: OffsetDateTime) -> TicketId {
    let input = NewTicket { category: category.into(), subject: subject.into(), body: format!("{subject}: aiuto") };
    hd::open(&app.db, p, &actor(p), org, &input, at).await.unwrap().ticket.id
}

async fn state_at(app: &TestApp, p: &Principal, org: OrgId, id: TicketId, state: &str, at: OffsetDateTime) {
    hd::set_state(&app.db, p, &actor(p), org, id, &StateInput { state: state.into() }, at, &app.url).await.unwrap();
}

async fn reply_at(app: &TestApp, p: &Principal, org: OrgId, id: TicketId, at: OffsetDateTime) {
    hd::reply(&app.db, p, &actor(p), org, id, &BodyInput { body: "Risposta".into() }, at).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// The survey

both_engines!(resolution_invites_the_requester_who_alone_rates_and_the_agent_sees_it, |app| async move {
    let region = app.org_id("r_lombar").await;
    let sara = app.login("dipendente@regione.example").await;
    let luca = app.login("manager@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let tickets = format!("/api/v1/orgs/{region}/helpdesk/tickets");
    let d = api_expect(&app, &sara, "POST", &tickets, Some(json!({"category": "vpn", "subject": "VPN lenta", "body": "Lentissima"})), 201).await;
    let id = d["ticket"]["id"].as_str().unwrap().to_owned();
    let url = format!("{tickets}/{id}");
    assert!(d["satisfaction"].is_null());
    // Not resolved yet: nothing to rate.
    let e = api_expect(&app, &sara, "PUT", &sat_url(region, &id), Some(json!({"rating": 5})), 409).await;
    assert_eq!(e["code"], "not-resolved");
    api_expect(&app, &agent, "POST", &format!("{url}/reply"), Some(json!({"body": "Provi ora"})), 200).await;

    // The resolution queues the invitation, in the same transaction: to the requester, with the survey's link.
    let before = mails(&app.db).await.len();
    api_expect(&app, &agent, "POST", &format!("{url}/state"), Some(json!({"state": "resolved"})), 200).await;
    let all = mails(&app.db).await;
    let link = format!("{}/orgs/{region}/helpdesk/tickets/{id}/satisfaction", app.url);
    let invites: Vec<&Mail> = all[before..].iter().filter(|m| m.text.contains(&link)).collect();
    assert_eq!(invites.len(), 1, "one invitation with the link {link}: {:?}", &all[before..]);
    assert_eq!(invites[0].to, "dipendente@regione.example");
    assert!(invites[0].subject.contains("Com'è andata?"), "{}", invites[0].subject);

    // The requester is prompted on the ticket page and on their own page; the agent is not.
    let (s, html) = page(&app, &sara, &format!("/orgs/{region}/helpdesk/tickets/{id}")).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("href=\"/orgs/{region}/helpdesk/tickets/{id}/satisfaction\"")), "{html}");
    let (_, html) = page(&app, &sara, "/helpdesk").await;
    assert!(html.contains("hdq-prompts-title") && html.contains("VPN lenta"), "{html}");
    let (_, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/tickets/{id}")).await;
    assert!(!html.contains("/satisfaction\""), "the agent is not invited to rate");

    // Bad answers are field errors, and change nothing.
    let audit0 = answers_audited(&app.db).await;
    let sat = sat_url(region, &id);
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 0})), 422).await;
    assert!(has_field_error(&e, "rating", "out-of-range"), "{e}");
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 6})), 422).await;
    assert!(has_field_error(&e, "rating", "out-of-range"), "{e}");
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": "x"})), 422).await;
    assert!(has_field_error(&e, "rating", "format"), "{e}");
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"comment": "Bene"})), 422).await;
    assert!(has_field_error(&e, "rating", "required"), "{e}");
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 4, "comment": "x".repeat(2001)})), 422).await;
    assert!(has_field_error(&e, "comment", "too-long"), "{e}");
    // Someone else: another employee learns nothing, the agent is refused.
    api_expect(&app, &luca, "PUT", &sat, Some(json!({"rating": 1})), 404).await;
    api_expect(&app, &agent, "PUT", &sat, Some(json!({"rating": 5})), 403).await;
    assert_eq!(page(&app, &luca, &survey::path(region, id.parse().unwrap())).await.0, 404);
    assert_eq!(answers_audited(&app.db).await, audit0, "a refused answer changed something");

    // The requester answers (the longest comment is fine), then changes it while the ticket stays resolved.
    let s = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 4, "comment": "y".repeat(2000)})), 200).await;
    assert_eq!(s["rating"], 4);
    let s = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 5, "comment": "  Veloce e gentile  "})), 200).await;
    assert_eq!((s["rating"].as_i64(), s["comment"].as_str()), (Some(5), Some("Veloce e gentile")));
    let v = api_expect(&app, &agent, "GET", &url, None, 200).await;
    assert_eq!(v["satisfaction"]["rating"], 5);
    assert_eq!(v["satisfaction"]["comment"], "Veloce e gentile");
    let (_, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/tickets/{id}")).await;
    assert!(html.contains("Voto: 5 su 5") && html.contains("Veloce e gentile"), "the agent sees the rating: {html}");
    let (_, html) = page(&app, &sara, "/helpdesk").await;
    assert!(!html.contains("hdq-prompts-title"), "answered: no more prompt");

    // The survey page: a rating that is not a number keeps the page with the error and what was typed.
    let form_url = survey::path(region, id.parse().unwrap());
    let (s, html) = page(&app, &sara, &form_url).await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"f-rating-5\"") && html.contains("checked"), "{html}");
    let r = sara.post(app.at(&form_url)).form(&[("rating", "x"), ("comment", "Scritto <qui>")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"f-rating-error\"") && (html.contains("Scritto &#60;qui&#62;") || html.contains("Scritto &lt;qui&gt;")), "{html}");
    let r = sara.post(app.at(&form_url)).form(&[("rating", "3"), ("comment", "")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(api_expect(&app, &agent, "GET", &url, None, 200).await["satisfaction"]["rating"], 3);

    // Reopened by the requester and resolved again: asked again, and the latest answer counts.
    api_expect(&app, &sara, "POST", &format!("{url}/reply"), Some(json!({"body": "Di nuovo lenta"})), 200).await;
    let e = api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 1})), 409).await;
    assert_eq!(e["code"], "not-resolved");
    api_expect(&app, &agent, "POST", &format!("{url}/state"), Some(json!({"state": "resolved"})), 200).await;
    assert_eq!(mails(&app.db).await.iter().filter(|m| m.text.contains(&link)).count(), 2);
    api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 2})), 200).await;
    assert_eq!(api_expect(&app, &agent, "GET", &url, None, 200).await["satisfaction"]["rating"], 2);
    // Closed: the answer is final.
    api_expect(&app, &agent, "POST", &format!("{url}/state"), Some(json!({"state": "closed"})), 200).await;
    api_expect(&app, &sara, "PUT", &sat, Some(json!({"rating": 5})), 409).await;
    let v = api_expect(&app, &sara, "GET", &url, None, 200).await;
    assert_eq!(v["satisfaction"]["rating"], 2);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Reports with known data

/// The week of Monday 3 March 2025 (Rome is UTC+1): four tickets of the region.
/// T1 vpn (Sara): answered in an hour, resolved at once, rated 5, closed on Friday.
/// T2 vpn "=SUM(A1:A2) VPN lenta" (Sara): escalated to the operator, first answer next day (first response
///    breached), resolved Tuesday, rated 2 with a formula-like comment.
/// T3 account (Luca): made urgent, closed on Thursday without an answer (both clocks breached).
/// T4 workstation (Luca): answered in half an hour, then pending on Luca (resolution running, paused: the breach
///    job leaves it alone).
///
/// The server is stopped meanwhile and started again afterwards: its SLA job runner works in real time, and would
/// otherwise mark breaches on these 2025 tickets between two of the steps made at set instants (a deadline long past
/// now, not yet at the next step's instant).
async fn known_week(app: &mut TestApp, region: OrgId) -> [TicketId; 4] {
    app.stop().await;
    let week = known_week_steps(app, region).await;
    app.restart(Options::default()).await;
    week
}

async fn known_week_steps(app: &TestApp, region: OrgId) -> [TicketId; 4] {
    let p = people(app).await;
    let davide = &p.davide;
    let assign = |id: TicketId| {
        let input = AssignInput { assignee: Some(davide.id().to_string()), round_robin: false };
        async move { hd::assign(&app.db, davide, &actor(davide), region, id, &input, datetime!(2025-03-03 08:05 UTC)).await.unwrap() }
    };
    let t1 = open_at(app, &p.sara, region, "vpn", "VPN non parte", datetime!(2025-03-03 08:00 UTC)).await;
    let t2 = open_at(app, &p.sara, region, "vpn", "=SUM(A1:A2) VPN lenta", datetime!(2025-03-03 08:00 UTC)).await;
    hd::escalate(&app.db, davide, &actor(davide), region, t2, &EscalateInput { reason: "Rete regionale".into() },
        datetime!(2025-03-03 08:02 UTC)).await.unwrap();
    assign(t1).await;
    assign(t2).await;
    reply_at(app, &p.davide, region, t1, datetime!(2025-03-03 09:00 UTC)).await;
    state_at(app, &p.davide, region, t1, "resolved", datetime!(2025-03-03 10:00 UTC)).await;
    let rate = |p: &Principal, id: TicketId, rating: i64, comment: &str, at: OffsetDateTime| {
        let input = SatisfactionInput { rating: Some(rating), comment: comment.into() };
        let p = p.clone();
        async move { survey::answer(&app.db, &p, &actor(&p), region, id, &input, at).await.unwrap() }
    };
    rate(&p.sara, t1, 5, "Perfetto", datetime!(2025-03-03 11:00 UTC)).await;
    reply_at(app, &p.davide, region, t2, datetime!(2025-03-04 10:00 UTC)).await;
    state_at(app, &p.davide, region, t2, "resolved", datetime!(2025-03-04 11:00 UTC)).await;
    rate(&p.sara, t2, 2, "=HYPERLINK(\"http://x.example\",\"clic\")", datetime!(2025-03-04 12:00 UTC)).await;
    let t3 = open_at(app, &p.luca, region, "account", "Password scaduta", datetime!(2025-03-04 09:00 UTC)).await;
    hd::set_priority(&app.db, &p.davide, &actor(&p.davide), region, t3, &PriorityInput { priority: "urgent".into() },
        datetime!(2025-03-04 09:00 UTC)).await.unwrap();
    state_at(app, &p.davide, region, t3, "closed", datetime!(2025-03-06 10:00 UTC)).await;
    let t4 = open_at(app, &p.luca, region, "workstation", "Monitor nero", datetime!(2025-03-05 09:00 UTC)).await;
    reply_at(app, &p.davide, region, t4, datetime!(2025-03-05 09:30 UTC)).await;
    state_at(app, &p.davide, region, t4, "pending", datetime!(2025-03-05 10:00 UTC)).await;
    state_at(app, &p.davide, region, t1, "closed", datetime!(2025-03-07 12:00 UTC)).await;
    // Outside the week: not counted in the period.
    open_at(app, &p.sara, region, "vpn", "Il lunedì dopo", datetime!(2025-03-10 08:00 UTC)).await;
    [t1, t2, t3, t4]
}

fn by_key<'a>(v: &'a Value, key: &str, name: &str) -> &'a Value {
    v.as_array().unwrap().iter().find(|x| x[key] == name).unwrap_or_else(|| panic!("no {key} = {name} in {v}"))
}

both_engines!(reports_count_volume_backlog_sla_and_satisfaction_exactly, |app| async move {
    let mut app = app;
    let region = app.org_id("r_lombar").await;
    known_week(&mut app, region).await;
    // The backlog is as of now: tickets opened 2 hours, 2 days and 10 days ago (and the week's pending T4 and the
    // ticket of the Monday after, older than 30 days).
    let p = people(&app).await;
    let now = OffsetDateTime::now_utc();
    for (h, subject) in [(2, "Appena aperta"), (48, "Di due giorni"), (240, "Di dieci giorni")] {
        let id = open_at(&app, &p.luca, region, "meetings", subject, now - time::Duration::hours(h)).await;
        if h == 48 {
            state_at(&app, &p.davide, region, id, "pending", now - time::Duration::hours(47)).await;
        }
    }

    let agent = app.login("agente@regione.example").await;
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/reports?from=2025-03-03&to=2025-03-09"), None, 200).await;
    assert_eq!((r["from"].as_str(), r["to"].as_str()), (Some("2025-03-03"), Some("2025-03-09")));
    // Volume: per Rome day and per category.
    let v = &r["volume"];
    assert_eq!(v["total"], json!({"opened": 4, "resolved": 3, "closed": 2}));
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let day = |d: &str| by_key(&v["days"], "date", d).clone();
    assert_eq!(day("2025-03-03"), json!({"date": "2025-03-03", "opened": 2, "resolved": 1, "closed": 0}));
    assert_eq!(day("2025-03-04"), json!({"date": "2025-03-04", "opened": 1, "resolved": 1, "closed": 0}));
    assert_eq!(day("2025-03-05"), json!({"date": "2025-03-05", "opened": 1, "resolved": 0, "closed": 0}));
    assert_eq!(day("2025-03-06"), json!({"date": "2025-03-06", "opened": 0, "resolved": 1, "closed": 1}));
    assert_eq!(day("2025-03-07"), json!({"date": "2025-03-07", "opened": 0, "resolved": 0, "closed": 1}));
    assert_eq!(day("2025-03-09"), json!({"date": "2025-03-09", "opened": 0, "resolved": 0, "closed": 0}));
    assert_eq!(by_key(&v["by_category"], "category", "vpn"), &json!({"category": "vpn", "opened": 2, "resolved": 2, "closed": 1}));
    assert_eq!(by_key(&v["by_category"], "category", "account"), &json!({"category": "account", "opened": 1, "resolved": 1, "closed": 1}));
    assert_eq!(by_key(&v["by_category"], "category", "workstation"), &json!({"category": "workstation", "opened": 1, "resolved": 0, "closed": 0}));
    // Backlog now.
    let b = &r["backlog"];
    assert_eq!(b["total"], 5);
    assert_eq!(by_key(&b["by_state"], "key", "new")["count"], 3);
    assert_eq!(by_key(&b["by_state"], "key", "open")["count"], 0);
    assert_eq!(by_key(&b["by_state"], "key", "pending")["count"], 2);
    let ages: Vec<i64> = b["by_age"].as_array().unwrap().iter().map(|a| a["count"].as_i64().unwrap()).collect();
    assert_eq!(ages, [1, 1, 0, 1, 2]);
    // SLA of the week's four tickets.
    let s = &r["sla"];
    assert_eq!(s["total"]["first_response"], json!({"met": 2, "breached": 2, "running": 0, "total": 4, "met_percent": 50.0, "breached_percent": 50.0}));
    assert_eq!(s["total"]["resolution"], json!({"met": 2, "breached": 1, "running": 1, "total": 4, "met_percent": 50.0, "breached_percent": 25.0}));
    let normal = by_key(&s["by_priority"], "key", "normal");
    assert_eq!((normal["first_response"]["met"].as_i64(), normal["first_response"]["breached"].as_i64()), (Some(2), Some(1)));
    assert_eq!(normal["first_response"]["met_percent"], 66.7);
    let urgent = by_key(&s["by_priority"], "key", "urgent");
    assert_eq!((urgent["first_response"]["breached"].as_i64(), urgent["resolution"]["breached"].as_i64()), (Some(1), Some(1)));
    assert_eq!(by_key(&s["by_priority"], "key", "low")["first_response"]["total"], 0);
    assert!(by_key(&s["by_priority"], "key", "low")["first_response"]["met_percent"].is_null());
    let vpn = by_key(&s["by_category"], "key", "vpn");
    assert_eq!(vpn["first_response"], json!({"met": 1, "breached": 1, "running": 0, "total": 2, "met_percent": 50.0, "breached_percent": 50.0}));
    assert_eq!(vpn["resolution"]["met"], 2);
    assert_eq!(by_key(&s["by_category"], "key", "workstation")["resolution"]["running"], 1);
    // Satisfaction of the answers given in the week.
    let f = &r["satisfaction"];
    assert_eq!((f["total"]["count"].as_i64(), f["total"]["average"].as_f64()), (Some(2), Some(3.5)));
    assert_eq!(f["total"]["distribution"], json!([0, 1, 0, 0, 1]));
    assert_eq!(by_key(&f["by_category"], "key", "vpn")["average"], 3.5);
    assert_eq!(by_key(&f["by_category"], "key", "account")["count"], 0);
    let davide = app.account_id("agente@regione.example").await.to_string();
    let a = by_key(&f["by_agent"], "key", &davide);
    assert_eq!((a["label"].as_str(), a["count"].as_i64(), a["distribution"].clone()), (Some("Davide Helpdesk"), Some(2), json!([0, 1, 0, 0, 1])));
    assert_eq!(f["by_agent"].as_array().unwrap().len(), 1);

    // The operator's second level: only the escalated T2, for the operator's agents.
    let operator = app.login("operatore@aria.example").await;
    let e = api_expect(&app, &operator, "GET", &format!("/api/v1/helpdesk/escalated/reports?from=2025-03-03&to=2025-03-09"), None, 200).await;
    assert_eq!((e["escalated"].as_bool(), e["org_id"].is_null()), (Some(true), true));
    assert_eq!(e["volume"]["total"], json!({"opened": 1, "resolved": 1, "closed": 0}));
    assert_eq!(e["sla"]["total"]["first_response"]["breached"], 1);
    assert_eq!(e["sla"]["total"]["resolution"]["met"], 1);
    assert_eq!((e["satisfaction"]["total"]["count"].as_i64(), e["satisfaction"]["total"]["average"].as_f64()), (Some(1), Some(2.0)));
    assert_eq!(e["backlog"]["total"], 0);
    api_expect(&app, &agent, "GET", "/api/v1/helpdesk/escalated/reports", None, 403).await;

    // A period with nothing in it: zeros, no averages.
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/reports?from=2024-03-03&to=2024-03-04"), None, 200).await;
    assert_eq!(r["volume"]["total"], json!({"opened": 0, "resolved": 0, "closed": 0}));
    assert!(r["satisfaction"]["total"]["average"].is_null());
    // The default period is the last 30 days, today included.
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/reports"), None, 200).await;
    assert_eq!(r["volume"]["days"].as_array().unwrap().len(), 30);
    assert_eq!(r["volume"]["total"]["opened"], 3);

    // CSV, headers in Italian by default; formula-like cells defused, quotes doubled.
    let q = "from=2025-03-03&to=2025-03-09";
    let (s, ct, cd, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=volume")).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(cd.starts_with("attachment;") && cd.contains("helpdesk-volume-2025-03-03-2025-03-09.csv"), "{cd}");
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines[0], "Data,Aperte,Risolte,Chiuse");
    assert_eq!(lines[1], "2025-03-03,2,1,0");
    assert_eq!(lines[4], "2025-03-06,0,1,1");
    assert_eq!(lines.len(), 9, "header, 7 days, the final CRLF: {body:?}");
    let (_, _, _, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=satisfaction")).await;
    assert!(body.contains("totale,Totale,2,3.50,0,1,0,0,1\r\n"), "{body}");
    assert!(body.contains("operatore,Davide Helpdesk,2,3.50,0,1,0,0,1\r\n"), "{body}");
    let (_, _, _, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=sla")).await;
    assert!(body.contains("totale,Totale,Prima risposta,2,2,0,4,50\r\n"), "{body}");
    let (_, _, _, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=answers")).await;
    assert!(body.contains(",\"'=SUM(A1:A2) VPN lenta\",VPN e accesso remoto,Davide Helpdesk,2,\"'=HYPERLINK(\"\"http://x.example\"\",\"\"clic\"\")\","), "{body}");
    assert!(!body.contains(",=") && !body.contains("\"="), "a cell starts with '=': {body}");
    let (_, _, _, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=backlog")).await;
    assert!(body.contains("stato,nuova,3\r\nstato,aperta,0\r\nstato,in attesa di risposta,2\r\n"), "{body}");
    assert!(body.contains("età,oltre 30 giorni,2\r\n"), "{body}");
    // In English.
    let r = agent.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, _, _, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=volume")).await;
    assert!(body.starts_with("Date,Opened,Resolved,Closed\r\n2025-03-03,2,1,0\r\n"), "{body}");

    // The page: the period form, accessible tables, links to each CSV.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports?{q}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<caption>") && html.contains("scope=\"row\"") && html.contains("for=\"f-from\""), "{html}");
    assert!(html.contains(&format!("href=\"/orgs/{region}/helpdesk/reports.csv?from=2025-03-03")) && html.contains("table=answers\""), "{html}");
    let (_, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk")).await;
    assert!(html.contains(&format!("href=\"/orgs/{region}/helpdesk/reports\"")), "the queue links to the reports");
    app
});

both_engines!(bad_periods_are_field_errors_and_only_agents_and_admins_see_reports, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let agent = app.login("agente@regione.example").await;
    let base = format!("/api/v1/orgs/{region}/helpdesk/reports");
    for (q, field, code) in [
        ("from=2025-13-01", "from", "format"),
        ("to=yesterday", "to", "format"),
        ("from=2025-02-30&to=2025-03-01", "from", "format"),
        ("from=2025-03-09&to=2025-03-03", "to", "before-start"),
        ("from=2024-01-01&to=2025-03-01", "from", "out-of-range"),
    ] {
        let e = api_expect(&app, &agent, "GET", &format!("{base}?{q}"), None, 422).await;
        assert!(has_field_error(&e, field, code), "{q}: {e}");
    }
    // The longest period passes.
    api_expect(&app, &agent, "GET", &format!("{base}?from=2024-01-01&to=2024-12-31"), None, 200).await;
    // The page keeps the bad input with the error tied to its field; the CSV refuses an unknown table.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports?from=2025-03-09&to=2025-03-03")).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"f-to-error\"") && html.contains("aria-invalid=\"true\"") && html.contains("value=\"2025-03-09\""), "{html}");
    assert_eq!(get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?table=secrets")).await.0, 422);

    // The organisation's admin may; a requester is refused; another organisation's admin learns nothing.
    let admin = app.login("admin@regione.example").await;
    api_expect(&app, &admin, "GET", &base, None, 200).await;
    let employee = app.login("dipendente@regione.example").await;
    api_expect(&app, &employee, "GET", &base, None, 403).await;
    assert_eq!(page(&app, &employee, &format!("/orgs/{region}/helpdesk/reports")).await.0, 403);
    assert_eq!(get_csv(&app, &employee, &format!("/orgs/{region}/helpdesk/reports.csv")).await.0, 403);
    let other = app.login("admin@comune.example").await;
    let s = send(&other, "GET", app.at(&base), None).await.0;
    assert!(s == 403 || s == 404, "{s}");
    // Their own organisation (no help-desk tickets): an empty report.
    let r = api_expect(&app, &other, "GET", &format!("/api/v1/orgs/{town}/helpdesk/reports"), None, 200).await;
    assert_eq!(r["volume"]["total"]["opened"], 0);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Isolation and the API document

both_engines!(another_organisations_surveys_and_reports_are_403_or_404_and_unchanged, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let mut app = app;
    let [t1, t2, ..] = known_week(&mut app, region).await;
    let p = people(&app).await;
    // A resolved ticket the victim could still rate.
    let t = open_at(&app, &p.sara, region, "vpn", "Segreto regionale", datetime!(2025-03-10 08:00 UTC)).await;
    state_at(&app, &p.davide, region, t, "resolved", datetime!(2025-03-10 09:00 UTC)).await;
    let attacker_id = app.account_id("admin@comune.example").await;
    let (_, attacker_token) = token::create(&app.db, &Actor::system(), attacker_id, "attacker").await.unwrap();
    let attacker = app.login("admin@comune.example").await;
    let secrets = ["Segreto regionale", "VPN lenta", "Perfetto", "HYPERLINK", "Davide Helpdesk", "dipendente@regione.example"];
    // Counted by action: the SLA job may audit breach marks of the old tickets meanwhile.
    let before = answers_audited(&app.db).await;
    let mut failures = Vec::new();
    for (pass, org) in [(1, region), (2, town)] {
        for (method, template, body) in SCOPED_ROUTES {
            if pass == 2 && !template.contains("{ticket}") {
                continue;
            }
            let url = app.at(&template.replace("{org}", &org.to_string()).replace("{ticket}", &t.to_string()));
            let is_api = template.starts_with("/api/");
            let build = |c: &Client| {
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut rb = c.request(m, &url);
                if !body.is_empty() {
                    let ct = if is_api { "application/json" } else { "application/x-www-form-urlencoded" };
                    rb = rb.header("content-type", ct).body(body.to_string());
                }
                rb
            };
            let r = if is_api { build(&bare()).bearer_auth(&attacker_token) } else { build(&attacker) }.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if status != 403 && status != 404 {
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
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(answers_audited(&app.db).await, before, "an attempt changed an answer");
    let sara = app.login("dipendente@regione.example").await;
    let v = api_expect(&app, &sara, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{t}"), None, 200).await;
    assert!(v["satisfaction"].is_null());
    for (id, rating) in [(t1, 5), (t2, 2)] {
        let v = api_expect(&app, &sara, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{id}"), None, 200).await;
        assert_eq!(v["satisfaction"]["rating"], rating);
    }
    app
});

both_engines!(the_survey_and_report_routes_are_in_the_openapi_document, |app| async move {
    let doc: Value = bare().get(app.at("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for (m, p, _) in SCOPED_ROUTES.iter().filter(|(_, p, _)| p.starts_with("/api/")) {
        let p = p.split('?').next().unwrap();
        assert!(doc["paths"][p][m.to_lowercase().as_str()].is_object(), "{m} {p} is not documented");
    }
    for s in ["Report", "Satisfaction", "SatisfactionInput", "Compliance"] {
        assert!(doc["components"]["schemas"][s].is_object(), "{s} is not in the document");
    }
    assert!(doc["components"]["schemas"]["TicketDetail"]["properties"]["satisfaction"].is_object());
    app
});

// ---------------------------------------------------------------------------------------------------------------
// The invitation's link: the public address of the node that resolves the ticket

both_engines!(each_node_links_the_invitation_to_its_own_public_address, |app| async move {
    let region = app.org_id("r_lombar").await;
    let p = people(&app).await;
    // A second node on the same database, reached at another address, started after the first.
    let mut cfg = agilekit_server::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: app.data_dir().to_path_buf(),
        public_url: "https://kit.regione.example/".into(),
        ..agilekit_server::Config::default()
    };
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.port = 9;
    if app.engine == Engine::Postgres {
        cfg.database_url = app.database_url();
    }
    let db2 = agilekit_server::open_db(&cfg).await.unwrap();
    let node2 = agilekit_server::start(&cfg, db2.clone()).await.unwrap();
    let agent_id = app.account_id("agente@regione.example").await;
    let (_, bearer) = token::create(&app.db, &Actor::system(), agent_id, "nodes").await.unwrap();
    let one = open_at(&app, &p.sara, region, "vpn", "Dal primo nodo", OffsetDateTime::now_utc()).await;
    let two = open_at(&app, &p.sara, region, "vpn", "Dal secondo nodo", OffsetDateTime::now_utc()).await;
    for (base, id) in [(app.url.clone(), one), (node2.url(), two)] {
        let r = bare().post(format!("{base}/api/v1/orgs/{region}/helpdesk/tickets/{id}/state")).bearer_auth(&bearer)
            .json(&json!({"state": "resolved"})).send().await.unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }
    node2.stop().await;
    db2.close().await;
    let all = mails(&app.db).await;
    let invite = |id: TicketId| all.iter().filter(|m| m.text.contains(&format!("/orgs/{region}/helpdesk/tickets/{id}/satisfaction"))).collect::<Vec<_>>();
    let (first, second) = (invite(one), invite(two));
    assert_eq!((first.len(), second.len()), (1, 1), "{all:?}");
    assert!(first[0].text.contains(&format!("{}/orgs/{region}/helpdesk/tickets/{one}/satisfaction", app.url)), "{}", first[0].text);
    assert!(second[0].text.contains(&format!("https://kit.regione.example/orgs/{region}/helpdesk/tickets/{two}/satisfaction")), "{}", second[0].text);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Volume per ISO week; the operator's second-level report as a page and CSV

both_engines!(volume_per_iso_week_and_the_second_level_report_as_page_and_csv, |app| async move {
    let region = app.org_id("r_lombar").await;
    let mut app = app;
    known_week(&mut app, region).await;
    let agent = app.login("agente@regione.example").await;
    // Saturday 1 to Wednesday 12 March 2025: the end of week 9, week 10 whole, the start of week 11.
    let q = "from=2025-03-01&to=2025-03-12";
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/reports?{q}"), None, 200).await;
    assert_eq!(r["volume"]["weeks"], json!([
        {"week": "2025-W09", "from": "2025-03-01", "to": "2025-03-02", "opened": 0, "resolved": 0, "closed": 0},
        {"week": "2025-W10", "from": "2025-03-03", "to": "2025-03-09", "opened": 4, "resolved": 3, "closed": 2},
        {"week": "2025-W11", "from": "2025-03-10", "to": "2025-03-12", "opened": 1, "resolved": 0, "closed": 0},
    ]));
    assert_eq!(r["volume"]["days"].as_array().unwrap().len(), 12, "the days are still there");
    let (s, _, cd, body) = get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&table=volume&granularity=week")).await;
    assert_eq!(s, 200);
    assert!(cd.contains("helpdesk-volume-weeks-2025-03-01-2025-03-12.csv"), "{cd}");
    assert_eq!(body, "Settimana,Dal,Al,Aperte,Risolte,Chiuse\r\n2025-W09,2025-03-01,2025-03-02,0,0,0\r\n\
        2025-W10,2025-03-03,2025-03-09,4,3,2\r\n2025-W11,2025-03-10,2025-03-12,1,0,0\r\n");
    // The page: the choice kept, the weeks shown, the volume CSV link per week.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports?{q}&granularity=week")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<option value=\"week\" selected>") && html.contains("Ticket per settimana ISO"), "{html}");
    assert!(html.contains("<th scope=\"row\">2025-W10</th><td>2025-03-03 – 2025-03-09</td><td>4</td><td>3</td><td>2</td>"), "{html}");
    assert!(html.replace("&#38;", "&").contains("&table=volume&granularity=week\""), "{html}");
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports?{q}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<th scope=\"row\">2025-03-03</th><td>2</td>") && !html.contains("2025-W10"), "per day by default");
    // An unknown granularity: a field error, what was typed kept.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports?{q}&granularity=month")).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"f-granularity-error\"") && html.contains("href=\"#f-granularity\"") && html.contains("value=\"2025-03-01\""), "{html}");
    assert_eq!(get_csv(&app, &agent, &format!("/orgs/{region}/helpdesk/reports.csv?{q}&granularity=month")).await.0, 422);

    // The second level: the operator's agents reach it from their own organisation's report.
    let operator = app.login("operatore@aria.example").await;
    let op = agilekit_kernel::tenancy::operator(&app.db).await.unwrap().unwrap().id;
    let (s, html) = page(&app, &operator, &format!("/orgs/{op}/helpdesk/reports")).await;
    assert_eq!(s, 200);
    assert!(html.contains("href=\"/helpdesk/escalated/reports\""), "{html}");
    let (_, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/reports")).await;
    assert!(!html.contains("/helpdesk/escalated/reports"), "a regional agent is not offered the second level");
    let w = "from=2025-03-03&to=2025-03-09";
    let (s, html) = page(&app, &operator, &format!("/helpdesk/escalated/reports?{w}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Rapporti del secondo livello") && html.contains("action=\"/helpdesk/escalated/reports\""), "{html}");
    assert!(html.contains(&format!("href=\"/orgs/{op}/helpdesk\"")), "back to the operator's queue: {html}");
    assert!(html.replace("&#38;", "&").contains("href=\"/helpdesk/escalated/reports.csv?from=2025-03-03&to=2025-03-09&table=answers\""), "{html}");
    // Only the escalated T2: opened on Monday, resolved on Tuesday, rated 2.
    let (s, _, cd, body) = get_csv(&app, &operator, &format!("/helpdesk/escalated/reports.csv?{w}&table=volume")).await;
    assert_eq!(s, 200);
    assert!(cd.contains("helpdesk-escalated-volume-2025-03-03-2025-03-09.csv"), "{cd}");
    assert!(body.starts_with("Data,Aperte,Risolte,Chiuse\r\n2025-03-03,1,0,0\r\n2025-03-04,0,1,0\r\n"), "{body}");
    let (_, _, _, body) = get_csv(&app, &operator, &format!("/helpdesk/escalated/reports.csv?{w}&table=answers")).await;
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert!(lines[0].starts_with("Ente,Richiesta,Oggetto"), "{body}");
    assert!(lines[1].starts_with("Regione Lombardia,#") && lines[1].contains("'=SUM(A1:A2) VPN lenta"), "{body}");
    let (_, _, _, body) = get_csv(&app, &operator, &format!("/helpdesk/escalated/reports.csv?{w}&table=volume&granularity=week")).await;
    assert_eq!(body, "Settimana,Dal,Al,Aperte,Risolte,Chiuse\r\n2025-W10,2025-03-03,2025-03-09,1,1,0\r\n");
    let (s, html) = page(&app, &operator, "/helpdesk/escalated/reports?from=2025-03-09&to=2025-03-03").await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"f-to-error\""), "{html}");
    // Anyone else: refused.
    assert_eq!(page(&app, &agent, "/helpdesk/escalated/reports").await.0, 403);
    assert_eq!(get_csv(&app, &agent, "/helpdesk/escalated/reports.csv?table=answers").await.0, 403);
    let admin = app.login("admin@regione.example").await;
    assert_eq!(page(&app, &admin, "/helpdesk/escalated/reports").await.0, 403);
    app
});
