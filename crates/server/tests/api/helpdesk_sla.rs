//! Help-desk settings (SLA policy, business calendar, warning threshold), SLA warnings and breaches through the
//! job runner, and canned responses: through HTTP and the service functions (with set instants), on both engines.

use std::time::{Duration as StdDuration, Instant};

use agilekit_helpdesk::service::{self as hd, BodyInput, NewTicket};
use agilekit_helpdesk::sla_jobs::{self, Which};
use agilekit_kernel::Db;
use agilekit_kernel::audit::Actor;
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::jobs::Worker;
use reqwest::Client;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::both_engines;
use crate::helpers::*;

/// A complete, valid settings body (so that only the authorisation check can refuse it).
const SETTINGS_BODY: &str = r#"{"policy":{"low":{"first_response_minutes":480,"resolution_minutes":2400},"normal":{"first_response_minutes":240,"resolution_minutes":1440},"high":{"first_response_minutes":60,"resolution_minutes":480},"urgent":{"first_response_minutes":30,"resolution_minutes":240}},"calendar":{"monday":[{"start":"09:00","end":"13:00"}]},"warning_percent":50}"#;

/// This module's organisation-scoped routes, tried by its isolation test with another organisation's IDs and read by
/// the guard in `isolation.rs`. `{org}` is the victim (Regione Lombardia), `{ticket}` one of its tickets, `{canned}`
/// one of its canned responses.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/helpdesk/settings", ""),
    ("PUT", "/api/v1/orgs/{org}/helpdesk/settings", SETTINGS_BODY),
    ("GET", "/api/v1/orgs/{org}/helpdesk/canned", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/canned", r#"{"title":"Intruso","body":"testo"}"#),
    ("GET", "/api/v1/orgs/{org}/helpdesk/canned/{canned}", ""),
    ("PUT", "/api/v1/orgs/{org}/helpdesk/canned/{canned}", r#"{"title":"Hacked","body":"testo"}"#),
    ("DELETE", "/api/v1/orgs/{org}/helpdesk/canned/{canned}", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/canned/{canned}", ""),
    ("GET", "/orgs/{org}/helpdesk/settings", ""),
    ("POST", "/orgs/{org}/helpdesk/settings", "warning_percent=50&policy.low.first_response_minutes=10"),
    ("GET", "/orgs/{org}/helpdesk/canned", ""),
    ("POST", "/orgs/{org}/helpdesk/canned", "title=Intruso&body=testo"),
    ("GET", "/orgs/{org}/helpdesk/canned/{canned}", ""),
    ("POST", "/orgs/{org}/helpdesk/canned/{canned}", "title=Hacked&body=testo"),
    ("POST", "/orgs/{org}/helpdesk/canned/{canned}/delete", ""),
    // The mail settings page (its tests are in helpdesk_mail.rs).
    ("GET", "/orgs/{org}/helpdesk/mail", ""),
    ("POST", "/orgs/{org}/helpdesk/mail", "enabled=1&host=evil.example&port=143&tls=none&username=x&password=hacked"),
    ("POST", "/orgs/{org}/helpdesk/mail/token", ""),
];

const ADMIN: &str = "admin@regione.example";
const AGENT: &str = "agente@regione.example";
const EMPLOYEE: &str = "dipendente@regione.example";
const OPERATOR: &str = "operatore@aria.example";

// ---------------------------------------------------------------------------------------------------------------
// Helpers


async fn count(db: &Db, sql: &str) -> i64 {
    let sql = sql.to_owned();
    let row: (i64,) =
        agilekit_kernel::db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(p).await.unwrap());
    row.0
}

async fn audits(db: &Db) -> i64 {
    count(db, "SELECT seq FROM audit_head WHERE id = 1").await
}

async fn sla_mails(db: &Db, like: &str) -> i64 {
    count(db, &format!("SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE '%{like}%'")).await
}

async fn breached_at(db: &Db, id: &str) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let id: uuid::Uuid = id.parse().unwrap();
    agilekit_kernel::db_run!(db, |p| sqlx::query_as::<_, (Option<OffsetDateTime>, Option<OffsetDateTime>)>(
        "SELECT fr_breached_at, rs_breached_at FROM helpdesk_tickets WHERE id = $1"
    )
    .bind(id)
    .fetch_one(p)
    .await
    .unwrap())
}

/// Instants to the second: stored instants carry a microsecond (`clock::stamp`).
fn secs(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(OffsetDateTime::unix_timestamp)
}

fn settings_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/settings")
}

fn canned_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/canned")
}

/// The settings with a target for normal tickets and the given calendar days.
fn settings_with(normal: (i64, i64), calendar: Value, warning: i64) -> Value {
    let mut s: Value = serde_json::from_str(SETTINGS_BODY).unwrap();
    s["policy"]["normal"] = json!({"first_response_minutes": normal.0, "resolution_minutes": normal.1});
    s["calendar"] = calendar;
    s["warning_percent"] = json!(warning);
    s
}

fn office_week() -> Value {
    let day = json!([{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "18:00"}]);
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day})
}

async fn principal(app: &TestApp, email: &str) -> (Principal, Actor) {
    let p = Principal::load(&app.db, app.account_id(email).await).await.unwrap();
    let a = Actor::account(p.id(), None);
    (p, a)
}

fn new_ticket(subject: &str) -> NewTicket {
    NewTicket { category: "vpn".into(), subject: subject.into(), body: "Non funziona".into() }
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

both_engines!(settings_round_trip_with_field_errors_and_access_by_role, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    let agent = app.login(AGENT).await;
    let employee = app.login(EMPLOYEE).await;
    let platform = app.login(OPERATOR).await;

    let d = api_expect(&app, &admin, "GET", &settings_url(region), None, 200).await;
    assert_eq!(d["custom"], false);
    assert_eq!(d["warning_percent"], 80);
    assert_eq!(d["policy"]["urgent"]["first_response_minutes"], 30);
    assert_eq!(d["calendar"]["monday"][0], json!({"start": "09:00", "end": "13:00"}));

    let mut mine = settings_with((90, 600), office_week(), 75);
    mine["calendar"]["saturday"] = json!([{"start": "08:00", "end": "12:00"}]);
    mine["calendar"]["patron_day"] = json!("12-07");
    mine["calendar"]["closed_dates"] = json!(["2030-12-24", "2030-12-31"]);
    let saved = api_expect(&app, &admin, "PUT", &settings_url(region), Some(mine.clone()), 200).await;
    assert_eq!(saved["custom"], true);
    let back = api_expect(&app, &agent, "GET", &settings_url(region), None, 200).await;
    for k in ["policy", "warning_percent"] {
        assert_eq!(back[k], mine[k], "{k}");
    }
    assert_eq!(back["calendar"]["saturday"], mine["calendar"]["saturday"]);
    assert_eq!(back["calendar"]["patron_day"], "12-07");
    assert_eq!(back["calendar"]["closed_dates"], json!(["2030-12-24", "2030-12-31"]));
    assert_eq!(back["calendar"]["sunday"], json!([]));

    // Agents read, only admins (and platform admins) write; other members get 403, outsiders 404.
    api_expect(&app, &agent, "PUT", &settings_url(region), Some(mine.clone()), 403).await;
    api_expect(&app, &employee, "GET", &settings_url(region), None, 403).await;
    let outsider = app.login("admin@comune.example").await;
    api_expect(&app, &outsider, "GET", &settings_url(region), None, 404).await;
    api_expect(&app, &platform, "PUT", &settings_url(region), Some(mine.clone()), 200).await;

    // Bad input: each problem on its field, nothing saved, nothing audited.
    let before = audits(&app.db).await;
    let mut bad = mine.clone();
    bad["policy"]["low"]["first_response_minutes"] = json!(-5);
    bad["policy"]["high"] = json!({"first_response_minutes": 600, "resolution_minutes": 60});
    bad["calendar"]["tuesday"] = json!([{"start": "14:00", "end": "09:00"}]);
    bad["calendar"]["wednesday"] = json!([{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "15:00"}]);
    bad["calendar"]["thursday"] = json!([{"start": "25:00", "end": "26:00"}]);
    bad["calendar"]["closed_dates"] = json!(["2030-02-30"]);
    bad["calendar"]["patron_day"] = json!("13-45");
    bad["warning_percent"] = json!(100);
    let e = api_expect(&app, &admin, "PUT", &settings_url(region), Some(bad), 422).await;
    for (f, c) in [
        ("policy.low.first_response_minutes", "too-short"),
        ("policy.high.first_response_minutes", "after-resolution"),
        ("calendar.tuesday.0.end", "end-before-start"),
        ("calendar.wednesday.1.start", "overlap"),
        ("calendar.thursday.0.start", "format"),
        ("calendar.closed_dates.0", "format"),
        ("calendar.patron_day", "format"),
        ("warning_percent", "out-of-range"),
    ] {
        assert!(has_field_error(&e, f, c), "{f} {c}: {e}");
    }
    let mut none = mine.clone();
    none["calendar"] = json!({});
    let e = api_expect(&app, &admin, "PUT", &settings_url(region), Some(none), 422).await;
    assert!(has_field_error(&e, "calendar.hours", "required"), "{e}");
    assert_eq!(audits(&app.db).await, before);
    assert_eq!(api_expect(&app, &admin, "GET", &settings_url(region), None, 200).await["warning_percent"], 75);

    // In the OpenAPI document.
    let doc: Value = app.client().get(app.at("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for (m, p, _) in SCOPED_ROUTES.iter().filter(|(_, p, _)| p.starts_with("/api/")) {
        assert!(doc["paths"][*p][m.to_lowercase().as_str()].is_object(), "{m} {p} is not documented");
    }
    assert!(doc["components"]["schemas"]["SettingsInput"].is_object());
    app
});

both_engines!(tickets_take_targets_from_the_custom_policy_and_calendar_and_open_ones_keep_theirs, |app| async move {
    let region = app.org_id("r_lombar").await;
    let (requester, ra) = principal(&app, EMPLOYEE).await;
    // Opened before the change: the default targets (normal: 4 h to first response).
    let old = hd::open(&app.db, &requester, &ra, region, &new_ticket("Prima"), datetime!(2030-12-02 08:00 UTC)).await.unwrap();
    assert_eq!(old.ticket.sla.first_response.target_secs, 4 * 3600);

    // Mornings only, 08:00-12:00, Monday to Friday; normal: 90 minutes to first response, 10 h to resolve.
    let day = json!([{"start": "08:00", "end": "12:00"}]);
    let cal = json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day});
    let admin = app.login(ADMIN).await;
    api_expect(&app, &admin, "PUT", &settings_url(region), Some(settings_with((90, 600), cal, 80)), 200).await;

    // Monday 2 December 2030, 11:00 Rome (10:00 UTC): an hour left today, then 30 minutes on Tuesday morning.
    let t = hd::open(&app.db, &requester, &ra, region, &new_ticket("Seconda"), datetime!(2030-12-02 10:00 UTC)).await.unwrap();
    assert_eq!(t.ticket.sla.first_response.target_secs, 90 * 60);
    assert_eq!(t.ticket.sla.resolution.target_secs, 600 * 60);
    assert_eq!(secs(t.ticket.sla.first_response.due_at), secs(Some(datetime!(2030-12-03 07:30 UTC))));
    // 10 h: 1 h Monday, then 4 h Tuesday, Wednesday; Thursday 1 h: 09:00 Rome.
    assert_eq!(secs(t.ticket.sla.resolution.due_at), secs(Some(datetime!(2030-12-05 08:00 UTC))));
    // Through the API too; the older ticket keeps its target, counted on the calendar now in force.
    let agent = app.login(AGENT).await;
    let v = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{}", t.ticket.id), None, 200).await;
    assert_eq!(v["ticket"]["sla"]["first_response"]["target_secs"], 5400);
    assert!(v["ticket"]["sla"]["first_response"]["due_at"].as_str().unwrap().starts_with("2030-12-03T07:30:00"), "{v}");
    let o = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{}", old.ticket.id), None, 200).await;
    assert_eq!(o["ticket"]["sla"]["first_response"]["target_secs"], 4 * 3600);
    // Opened 09:00 Rome Monday: 3 h that morning, the fourth on Tuesday 08:00-09:00 Rome.
    assert!(o["ticket"]["sla"]["first_response"]["due_at"].as_str().unwrap().starts_with("2030-12-03T08:00:00"), "{o}");
    // Opened on Friday 6 December 2030 at 11:30 Rome: half an hour that day, the weekend closed, due Monday 9
    // December at 09:00 Rome.
    let f = hd::open(&app.db, &requester, &ra, region, &new_ticket("Terza"), datetime!(2030-12-06 10:30 UTC)).await.unwrap();
    assert_eq!(secs(f.ticket.sla.first_response.due_at), secs(Some(datetime!(2030-12-09 08:00 UTC))));
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Warnings and breaches

both_engines!(a_warning_mails_once_and_a_stale_job_does_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    // An hour to first response, warned at half of it, on office hours.
    api_expect(&app, &admin, "PUT", &settings_url(region), Some(settings_with((60, 1440), office_week(), 50)), 200).await;
    let (requester, ra) = principal(&app, EMPLOYEE).await;
    let (agent, aa) = principal(&app, AGENT).await;
    // Monday 2 December 2030 at 09:00 Rome: the instants are in the future, so the server's own worker leaves them.
    let t = hd::open(&app.db, &requester, &ra, region, &new_ticket("Stampante"), datetime!(2030-12-02 08:00 UTC)).await.unwrap();
    let id = t.ticket.id;
    // The job is scheduled at the warning instant: half an hour in.
    let job = format!(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'helpdesk.sla' AND done_at IS NULL AND payload LIKE '%{id}%' AND payload LIKE '%{}%'",
        datetime!(2030-12-02 08:30 UTC).unix_timestamp()
    );
    assert_eq!(count(&app.db, &job).await, 1);
    assert_eq!(sla_jobs::recipients_of(&app.db, region, id).await.unwrap(), [AGENT], "unassigned: the agents");

    let mails0 = sla_mails(&app.db, "SLA").await;
    let audit0 = audits(&app.db).await;
    let early = sla_jobs::check(&app.db, region, id, datetime!(2030-12-02 08:29 UTC), None).await.unwrap();
    assert_eq!(early, Default::default(), "not yet");
    let warned = sla_jobs::check(&app.db, region, id, datetime!(2030-12-02 08:31 UTC), None).await.unwrap();
    assert_eq!(warned.warned, [Which::FirstResponse]);
    assert_eq!(warned.mails, 1);
    // Again, and again later: the warning went out once.
    for at in [datetime!(2030-12-02 08:32 UTC), datetime!(2030-12-02 08:50 UTC)] {
        let again = sla_jobs::check(&app.db, region, id, at, None).await.unwrap();
        assert!(again.warned.is_empty() && again.mails == 0, "{again:?}");
    }
    assert_eq!(sla_mails(&app.db, "SLA").await, mails0 + 1);
    let to_agent = format!("SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE '%{AGENT}%' AND payload LIKE '%prima risposta in scadenza%'");
    assert_eq!(count(&app.db, &to_agent).await, 1, "to the agent");
    assert_eq!(audits(&app.db).await, audit0 + 1, "one audit entry, by the system");
    let sys = count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action = 'helpdesk.ticket.sla_warning' AND actor_id IS NULL").await;
    assert_eq!(sys, 1);
    // The next look is just past the deadline (10:00 Rome).
    let next = format!(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'helpdesk.sla' AND done_at IS NULL AND payload LIKE '%{}%'",
        datetime!(2030-12-02 09:00:01 UTC).unix_timestamp()
    );
    assert_eq!(count(&app.db, &next).await, 1);

    // Answered at 09:40 Rome: the deadline's job, when it comes, is stale and does nothing.
    hd::reply(&app.db, &agent, &aa, region, id, &BodyInput { body: "Eccomi".into() }, datetime!(2030-12-02 08:40 UTC)).await.unwrap();
    let mails1 = count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await;
    let audit1 = audits(&app.db).await;
    let stale = sla_jobs::check(&app.db, region, id, datetime!(2030-12-02 09:00:02 UTC), None).await.unwrap();
    assert_eq!(stale, Default::default());
    assert_eq!(breached_at(&app.db, &id.to_string()).await, (None, None));
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await, mails1);
    assert_eq!(audits(&app.db).await, audit1);
    let c = app.login(AGENT).await;
    let v = api_expect(&app, &c, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{id}"), None, 200).await;
    assert_eq!(v["ticket"]["sla"]["first_response"]["breached"], false);
    assert_eq!(v["ticket"]["sla"]["first_response"]["state"], "stopped");

    // Assigned, with another agent watching: the assignee and the watcher are warned, not every agent.
    let other = app.account_id("formatore@regione.example").await;
    agilekit_kernel::identity::grant(&app.db, &Actor::system(), region, other, agilekit_kernel::identity::Role::Agent).await.unwrap();
    let third = app.account_id(ADMIN).await;
    agilekit_kernel::identity::grant(&app.db, &Actor::system(), region, third, agilekit_kernel::identity::Role::Agent).await.unwrap();
    let t2 = hd::open(&app.db, &requester, &ra, region, &new_ticket("Monitor"), datetime!(2030-12-02 08:00 UTC)).await.unwrap();
    let mut all = sla_jobs::recipients_of(&app.db, region, t2.ticket.id).await.unwrap();
    all.sort();
    assert_eq!(all, [ADMIN, AGENT, "formatore@regione.example"], "unassigned: every agent");
    let url = format!("/api/v1/orgs/{region}/helpdesk/tickets/{}", t2.ticket.id);
    api_expect(&app, &c, "POST", &format!("{url}/assign"), Some(json!({"assignee": app.account_id(AGENT).await.to_string()})), 200).await;
    api_expect(&app, &c, "POST", &format!("{url}/watchers"), Some(json!({"account": other.to_string()})), 200).await;
    assert_eq!(sla_jobs::recipients_of(&app.db, region, t2.ticket.id).await.unwrap(), [AGENT, "formatore@regione.example"]);
    let w = sla_jobs::check(&app.db, region, t2.ticket.id, datetime!(2030-12-02 08:31 UTC), None).await.unwrap();
    assert_eq!((w.warned, w.mails), (vec![Which::FirstResponse], 2));
    app
});

both_engines!(the_job_runner_marks_breaches_and_the_api_shows_them, |app| async move {
    let region = app.org_id("r_lombar").await;
    let (requester, ra) = principal(&app, EMPLOYEE).await;
    // Opened long ago (Monday 3 November 2025, 09:30 Rome) and never answered: both deadlines are past.
    let t = hd::open(&app.db, &requester, &ra, region, &new_ticket("Dimenticato"), datetime!(2025-11-03 08:30 UTC)).await.unwrap();
    let id = t.ticket.id.to_string();
    let mut worker = Worker::new(app.db.clone());
    worker.handle(sla_jobs::JOB_KIND, sla_jobs::handler(app.db.clone()));
    // The job runner (this one, or the server's own: whichever claims the job first) marks both breaches.
    let started = Instant::now();
    loop {
        worker.run_once().await.unwrap();
        if breached_at(&app.db, &id).await.1.is_some() {
            break;
        }
        assert!(started.elapsed() < StdDuration::from_secs(60), "no breach marked");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    // At the deadlines: 4 business hours (14:30 Rome, after lunch) and 24 (Thursday 6 November, 09:30 Rome).
    let (fr, rs) = breached_at(&app.db, &id).await;
    assert_eq!((secs(fr), secs(rs)), (secs(Some(datetime!(2025-11-03 13:30 UTC))), secs(Some(datetime!(2025-11-06 08:30 UTC)))));
    let c = app.login(AGENT).await;
    let v = api_expect(&app, &c, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{id}"), None, 200).await;
    assert_eq!(v["ticket"]["sla"]["first_response"]["breached"], true);
    assert_eq!(v["ticket"]["sla"]["resolution"]["breached"], true);
    assert!(v["ticket"]["sla"]["first_response"]["due_at"].as_str().unwrap().starts_with("2025-11-03T13:30:00"), "{v}");
    assert_eq!(sla_mails(&app.db, "SLA superato").await, 2, "one mail per breach to the one agent");
    let sys = count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action = 'helpdesk.ticket.sla_breach' AND actor_id IS NULL").await;
    assert_eq!(sys, 2);
    // Nothing more to look at: another run finds no due job of this kind and changes nothing.
    worker.run_once().await.unwrap();
    assert_eq!(sla_mails(&app.db, "SLA superato").await, 2);
    let pending = "SELECT COUNT(*) FROM jobs WHERE kind = 'helpdesk.sla' AND done_at IS NULL AND failed_at IS NULL";
    let started = Instant::now();
    while count(&app.db, pending).await > 0 {
        assert!(started.elapsed() < StdDuration::from_secs(30), "a look is still scheduled");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    app
});

both_engines!(a_real_one_minute_deadline_is_marked_by_the_running_server, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    // Open round the clock, holidays included; a minute to first response, warned at half.
    let all = json!([{"start": "00:00", "end": "24:00"}]);
    let cal = json!({"monday": all, "tuesday": all, "wednesday": all, "thursday": all, "friday": all, "saturday": all,
        "sunday": all, "open_on_holidays": true});
    api_expect(&app, &admin, "PUT", &settings_url(region), Some(settings_with((1, 2), cal, 50)), 200).await;
    let employee = app.login(EMPLOYEE).await;
    let d = api_expect(&app, &employee, "POST", &format!("/api/v1/orgs/{region}/helpdesk/tickets"),
        Some(json!({"category": "vpn", "subject": "Urgente davvero", "body": "Aiuto"})), 201).await;
    let id = d["ticket"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["ticket"]["sla"]["first_response"]["target_secs"], 60);
    let agent = app.login(AGENT).await;
    let started = Instant::now();
    loop {
        let v = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{id}"), None, 200).await;
        if v["ticket"]["sla"]["first_response"]["breached"] == true && breached_at(&app.db, &id).await.0.is_some() {
            break;
        }
        assert!(started.elapsed() < StdDuration::from_secs(180), "the server's worker did not mark the breach: {v}");
        tokio::time::sleep(StdDuration::from_secs(1)).await;
    }
    assert!(sla_mails(&app.db, "prima risposta in scadenza").await >= 1, "the warning came first");
    assert_eq!(sla_mails(&app.db, "SLA superato: prima risposta").await, 1);
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Canned responses

async fn create_canned(app: &TestApp, c: &Client, org: OrgId, title: &str, body: &str) -> String {
    let v = api_expect(app, c, "POST", &canned_url(org), Some(json!({"title": title, "body": body})), 201).await;
    v["id"].as_str().unwrap().to_owned()
}

both_engines!(canned_responses_crud_operator_wide_and_placeholders, |app| async move {
    let region = app.org_id("r_lombar").await;
    let aria = app.org_id("aria_spa").await;
    let agent = app.login(AGENT).await;
    let operator = app.login(OPERATOR).await;
    let employee = app.login(EMPLOYEE).await;

    let id = create_canned(&app, &agent, region, "Riavvio VPN", "Gentile {{requester_name}}, per il ticket {{ticket}} ({{subject}}) riavvii il client. {{agent_name}}").await;
    let shared = create_canned(&app, &operator, aria, "Saluti", "Cordiali saluti dal gestore, {{ requester_name }}.").await;
    let list = api_expect(&app, &agent, "GET", &canned_url(region), None, 200).await;
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], id.as_str(), "the organisation's own first");
    assert_eq!((items[0]["operator_wide"].clone(), items[0]["editable"].clone()), (json!(false), json!(true)));
    assert_eq!((items[1]["operator_wide"].clone(), items[1]["editable"].clone()), (json!(true), json!(false)));
    // The operator's may be read here but changed only by the operator.
    api_expect(&app, &agent, "GET", &format!("{}/{shared}", canned_url(region)), None, 200).await;
    api_expect(&app, &agent, "PUT", &format!("{}/{shared}", canned_url(region)), Some(json!({"title": "X", "body": "Y"})), 404).await;
    api_expect(&app, &agent, "DELETE", &format!("{}/{shared}", canned_url(region)), None, 404).await;
    // The region's are not the operator's.
    let op_list = api_expect(&app, &operator, "GET", &canned_url(aria), None, 200).await;
    assert_eq!(op_list.as_array().unwrap().len(), 1);

    // Update with field errors, then for real.
    let e = api_expect(&app, &agent, "PUT", &format!("{}/{id}", canned_url(region)), Some(json!({"title": " ", "body": ""})), 422).await;
    assert!(has_field_error(&e, "title", "required") && has_field_error(&e, "body", "required"), "{e}");
    let u = api_expect(&app, &agent, "PUT", &format!("{}/{id}", canned_url(region)),
        Some(json!({"title": "Riavvio del client VPN", "body": "Gentile {{requester_name}}, per il ticket {{ticket}} ({{subject}}) riavvii il client. {{agent_name}} {{sconosciuto}}"})), 200).await;
    assert_eq!(u["title"], "Riavvio del client VPN");

    // Filled for a ticket.
    let t = api_expect(&app, &employee, "POST", &format!("/api/v1/orgs/{region}/helpdesk/tickets"),
        Some(json!({"category": "vpn", "subject": "VPN lenta", "body": "Molto lenta"})), 201).await;
    let (tid, reference) = (t["ticket"]["id"].as_str().unwrap().to_owned(), t["ticket"]["reference"].as_str().unwrap().to_owned());
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{tid}/canned/{id}"), None, 200).await;
    assert_eq!(r["body"], format!("Gentile Sara Dipendente, per il ticket {reference} (VPN lenta) riavvii il client. Davide Helpdesk {{{{sconosciuto}}}}"));
    let r = api_expect(&app, &agent, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{tid}/canned/{shared}"), None, 200).await;
    assert_eq!(r["body"], "Cordiali saluti dal gestore, Sara Dipendente.");
    // Requesters and other members see none of it.
    api_expect(&app, &employee, "GET", &canned_url(region), None, 403).await;
    api_expect(&app, &employee, "GET", &format!("/api/v1/orgs/{region}/helpdesk/tickets/{tid}/canned/{id}"), None, 403).await;

    // Delete.
    api_expect(&app, &agent, "DELETE", &format!("{}/{id}", canned_url(region)), None, 204).await;
    api_expect(&app, &agent, "GET", &format!("{}/{id}", canned_url(region)), None, 404).await;
    assert_eq!(api_expect(&app, &agent, "GET", &canned_url(region), None, 200).await.as_array().unwrap().len(), 1);
    let audited = count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE entity = 'helpdesk_canned'").await;
    assert_eq!(audited, 4, "two creations, an update, a deletion");
    app
});

both_engines!(another_organisation_gets_403_or_404_on_settings_and_canned_and_changes_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let agent = app.login(AGENT).await;
    let canned = create_canned(&app, &agent, region, "Risposta segreta", "Testo riservato della Regione").await;
    let employee = app.login(EMPLOYEE).await;
    let t = api_expect(&app, &employee, "POST", &format!("/api/v1/orgs/{region}/helpdesk/tickets"),
        Some(json!({"category": "vpn", "subject": "Ticket segreto", "body": "x"})), 201).await;
    let ticket = t["ticket"]["id"].as_str().unwrap().to_owned();
    // The region's mailbox, for the mail settings page.
    let admin = app.login(ADMIN).await;
    api_expect(&app, &admin, "PUT", &format!("/api/v1/orgs/{region}/helpdesk/mail"), Some(json!({"enabled": false,
        "host": "imap.segreto.example", "port": 993, "tls": "tls", "username": "casella-segreta", "password": "pw"})), 200).await;
    let attacker_id = app.account_id("admin@comune.example").await;
    let (_, attacker_token) = token::create(&app.db, &Actor::system(), attacker_id, "attacker").await.unwrap();
    let attacker = app.login("admin@comune.example").await;
    let fill = |p: &str, org: OrgId| p.replace("{org}", &org.to_string()).replace("{ticket}", &ticket).replace("{canned}", &canned);
    let secrets = ["Risposta segreta", "Testo riservato", "Ticket segreto", "imap.segreto.example", "casella-segreta"];
    let before = audits(&app.db).await;
    let bare = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut failures = Vec::new();
    // Pass 1: the victim's organisation; pass 2: the attacker's own, with the victim's ids.
    for (pass, org) in [(1, region), (2, town)] {
        for (method, template, body) in SCOPED_ROUTES {
            if pass == 2 && !template.contains("{canned}") && !template.contains("{ticket}") {
                continue;
            }
            let url = app.at(&fill(template, org));
            let is_api = template.starts_with("/api/");
            let build = |c: &Client| {
                let mut rb = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), &url);
                if !body.is_empty() {
                    let ct = if is_api { "application/json" } else { "application/x-www-form-urlencoded" };
                    rb = rb.header("content-type", ct).body(fill(body, org));
                }
                rb
            };
            let r = if is_api { build(&bare).bearer_auth(&attacker_token) } else { build(&attacker) }.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if status != 403 && status != 404 {
                failures.push(format!("pass {pass}: {method} {template}: {status} {text}"));
            }
            if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
                failures.push(format!("pass {pass}: {method} {template}: the answer contains {s:?}"));
            }
            if pass == 1 {
                let r = build(&bare).send().await.unwrap();
                let expected = if is_api { vec![401] } else if *method == "GET" { vec![303] } else { vec![303, 403] };
                if !expected.contains(&r.status().as_u16()) {
                    failures.push(format!("{method} {template}: {} signed out", r.status()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(audits(&app.db).await, before, "an attempt changed something");
    let c = api_expect(&app, &agent, "GET", &format!("{}/{canned}", canned_url(region)), None, 200).await;
    assert_eq!(c["title"], "Risposta segreta");
    assert_eq!(api_expect(&app, &agent, "GET", &settings_url(region), None, 200).await["custom"], false);
    let m = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/helpdesk/mail"), None, 200).await;
    assert_eq!((m["host"].as_str(), m["delivery_token_set"].as_bool()), (Some("imap.segreto.example"), Some(false)));
    app
});

// ---------------------------------------------------------------------------------------------------------------
// Pages

async fn page(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

both_engines!(pages_prefill_a_canned_reply_and_keep_what_was_typed, |app| async move {
    let region = app.org_id("r_lombar").await;
    let agent = app.login(AGENT).await;
    let employee = app.login(EMPLOYEE).await;
    let admin = app.login(ADMIN).await;

    // The queue links to the settings and canned responses.
    let (s, q) = page(&app, &agent, &format!("/orgs/{region}/helpdesk")).await;
    assert_eq!(s, 200);
    assert!(q.contains(&format!("/orgs/{region}/helpdesk/settings")) && q.contains(&format!("/orgs/{region}/helpdesk/canned")));

    // Canned responses: a refused form keeps the text; then created and listed.
    let r = agent.post(app.at(&format!("/orgs/{region}/helpdesk/canned"))).form(&[("title", ""), ("body", "Testo {{ticket}} tenuto")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Testo {{ticket}} tenuto") && html.contains("f-title-error"), "{html}");
    let r = agent.post(app.at(&format!("/orgs/{region}/helpdesk/canned")))
        .form(&[("title", "Benvenuto"), ("body", "Buongiorno {{requester_name}}, prendo in carico il ticket {{ticket}}.")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let list = api_expect(&app, &agent, "GET", &canned_url(region), None, 200).await;
    let cid = list[0]["id"].as_str().unwrap().to_owned();
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/canned?done=created")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Benvenuto"));
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/canned/{cid}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("prendo in carico"));
    // Edited through the form (a refused edit keeps the text), then back.
    let edit = format!("/orgs/{region}/helpdesk/canned/{cid}");
    let r = agent.post(app.at(&edit)).form(&[("title", "Benvenuto"), ("body", " ")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("f-body-error"));
    let r = agent.post(app.at(&edit)).form(&[("title", "Benvenuto!"), ("body", "Buongiorno {{requester_name}}, prendo in carico il ticket {{ticket}}.")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(api_expect(&app, &agent, "GET", &format!("{}/{cid}", canned_url(region)), None, 200).await["title"], "Benvenuto!");
    // A second one, deleted through its form.
    let gone = create_canned(&app, &agent, region, "Da cancellare", "x").await;
    let r = agent.post(app.at(&format!("/orgs/{region}/helpdesk/canned/{gone}/delete"))).send().await.unwrap();
    assert_eq!(r.status(), 303);
    api_expect(&app, &agent, "GET", &format!("{}/{gone}", canned_url(region)), None, 404).await;

    // On the ticket page: a GET form picks it, and the page comes back with the reply box filled in.
    let t = api_expect(&app, &employee, "POST", &format!("/api/v1/orgs/{region}/helpdesk/tickets"),
        Some(json!({"category": "account", "subject": "Password", "body": "Scaduta"})), 201).await;
    let (tid, reference) = (t["ticket"]["id"].as_str().unwrap().to_owned(), t["ticket"]["reference"].as_str().unwrap().to_owned());
    let url = format!("/orgs/{region}/helpdesk/tickets/{tid}");
    let (s, html) = page(&app, &agent, &url).await;
    assert_eq!(s, 200);
    assert!(html.contains(r#"name="canned""#) && html.contains(&format!(r#"<form method="get" action="{url}""#)), "{html}");
    assert!(!html.contains("prendo in carico"));
    let (s, html) = page(&app, &agent, &format!("{url}?canned={cid}")).await;
    assert_eq!(s, 200);
    let filled = format!("Buongiorno Sara Dipendente, prendo in carico il ticket {reference}.");
    let ta = html.find(r#"id="f-body""#).expect("the reply box");
    assert!(html[ta..].contains(&format!(">{filled}</textarea>")), "{}", &html[ta..ta + 600]);
    // A foreign or bad id fills nothing; the requester sees neither the picker nor the text.
    let (s, html) = page(&app, &agent, &format!("{url}?canned=not-an-id")).await;
    assert_eq!(s, 200);
    assert!(!html.contains("prendo in carico"));
    let (s, html) = page(&app, &employee, &format!("{url}?canned={cid}")).await;
    assert_eq!(s, 200);
    assert!(!html.contains("prendo in carico") && !html.contains(r#"name="canned""#));

    // Settings page: read by the agent (no save button), saved by the admin; a bad submission keeps what was typed.
    let (s, html) = page(&app, &agent, &format!("/orgs/{region}/helpdesk/settings")).await;
    assert_eq!(s, 200);
    assert!(html.contains("09:00") && html.contains(" disabled"));
    let (s, html) = page(&app, &employee, &format!("/orgs/{region}/helpdesk/settings")).await;
    assert_eq!(s, 403, "{html}");
    let mut form: Vec<(String, String)> = vec![
        ("warning_percent".into(), "70".into()),
        ("calendar.patron_day".into(), "12-07".into()),
        ("calendar.closed_dates".into(), "2030-12-24\n2030-02-30".into()),
        ("calendar.monday.0.start".into(), "09:00".into()),
        ("calendar.monday.0.end".into(), "08:00".into()),
        ("calendar.tuesday.1.start".into(), "14:00".into()),
        ("calendar.tuesday.1.end".into(), "18:00".into()),
    ];
    for p in ["low", "normal", "high", "urgent"] {
        form.push((format!("policy.{p}.first_response_minutes"), "60".into()));
        form.push((format!("policy.{p}.resolution_minutes"), "480".into()));
    }
    form[7].1 = "-3".into();
    let r = admin.post(app.at(&format!("/orgs/{region}/helpdesk/settings"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    for id in ["f-calendar-monday-0-end-error", "f-calendar-closed_dates-error", "f-policy-low-first_response_minutes-error"] {
        assert!(html.contains(id), "{id} missing");
    }
    assert!(html.contains("2030-02-30") && html.contains(r#"value="-3""#) && html.contains(r#"value="08:00""#), "typed values kept");
    assert!(html.contains("error-summary"));
    // Fixed: saved, and the API reads it back (Tuesday's afternoon only, from the form's second slot).
    form[4].1 = "13:00".into();
    form[2].1 = "2030-12-24".into();
    form[7].1 = "45".into();
    let r = admin.post(app.at(&format!("/orgs/{region}/helpdesk/settings"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let s = api_expect(&app, &admin, "GET", &settings_url(region), None, 200).await;
    assert_eq!(s["warning_percent"], 70);
    assert_eq!(s["calendar"]["tuesday"], json!([{"start": "14:00", "end": "18:00"}]));
    assert_eq!(s["calendar"]["monday"], json!([{"start": "09:00", "end": "13:00"}]));
    assert_eq!(s["policy"]["low"]["first_response_minutes"], 45);
    let (s, html) = page(&app, &admin, &format!("/orgs/{region}/helpdesk/settings?done=saved")).await;
    assert_eq!(s, 200);
    assert!(html.contains(r#"value="14:00""#) && html.contains("12-07"));
    app
});
