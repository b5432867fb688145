//! The node cache (sessions, principals, active services) never serves what a change has made wrong: through HTTP on
//! both engines, and on PostgreSQL across nodes (a cache that only `NOTIFY` reaches, as on another machine).

use std::sync::Arc;
use std::time::Duration;

use agilekit_kernel::audit::Actor;
use agilekit_kernel::cache::{self, NodeCache};
use agilekit_kernel::catalogue::{self, Service, SubState};
use agilekit_kernel::identity::{self, Role, session};
use agilekit_kernel::tenancy;

use crate::both_engines;
use crate::helpers::*;

both_engines!(a_revoked_role_and_an_ended_session_take_effect_on_the_next_request, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.account_id("dipendente@regione.example").await;
    let members = app.at(&format!("/orgs/{}/members", region.0));
    identity::grant(&app.db, &Actor::system(), region, employee, Role::OrgAdmin).await.unwrap();
    let c = app.login("dipendente@regione.example").await;
    // Twice: the second is served from the cache.
    for _ in 0..2 {
        assert_eq!(c.get(&members).send().await.unwrap().status(), 200);
    }
    identity::revoke(&app.db, &Actor::system(), region, employee, Role::OrgAdmin).await.unwrap();
    assert_eq!(c.get(&members).send().await.unwrap().status(), 404, "the revoked role still worked");

    // Another session of the same person ends everything else: the first one is signed out at once.
    let other = app.login("dipendente@regione.example").await;
    assert_eq!(c.get(app.at("/account")).send().await.unwrap().status(), 200);
    let r = other.post(app.at("/account/sessions/end-others")).send().await.unwrap();
    assert!(r.status().is_redirection() || r.status().is_success(), "{}", r.status());
    let r = c.get(app.at("/account")).send().await.unwrap();
    assert!(r.status().is_redirection(), "an ended session still served a page: {}", r.status());
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"));
    app
});

both_engines!(services_and_names_on_the_home_page_follow_changes, |app| async move {
    let region = app.org_id("r_lombar").await;
    let c = app.login("dipendente@regione.example").await;
    let home = || async { c.get(app.at("/")).send().await.unwrap().text().await.unwrap() };
    let before = home().await;
    assert!(before.contains("Regione Lombardia"));
    assert!(before.contains(r#"data-service="helpdesk""#), "the help desk is listed: {before}");
    let _ = home().await;

    catalogue::set_state(&app.db, &Actor::system(), region, Service::Helpdesk, SubState::Suspended).await.unwrap();
    let org = tenancy::get(&app.db, region).await.unwrap();
    let input = tenancy::OrgInput {
        name: "Regione Lombardia (rinominata)".into(),
        kind: org.kind.clone(),
        ipa_code: org.ipa_code.clone(),
        tax_code: org.tax_code.clone(),
        pec: org.pec.clone().unwrap_or_default(),
        parent_id: org.parent_id.map(|p| p.0.to_string()),
    };
    tenancy::update(&app.db, &Actor::system(), region, &input).await.unwrap();
    let after = home().await;
    assert!(after.contains("Regione Lombardia (rinominata)"), "the renamed organisation still shows its old name");
    assert!(!after.contains(r#"data-service="helpdesk""#), "a suspended service still listed");
    assert_eq!(service_count(&after), service_count(&before) - 1);
    app
});

/// How many services the home page lists (one card each).
fn service_count(html: &str) -> usize {
    html.matches("data-service=").count()
}

/// A cache reached only by `NOTIFY`: a change committed through another connection (another node) evicts it, and
/// a listener that loses its connection stops the cache serving until it has reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalidation_reaches_another_node_and_a_lost_listener_stops_the_cache() {
    let app = spawn(Engine::Postgres).await;
    let db = app.db.clone();
    let node = NodeCache::unshared(&db);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(cache::listen(db.clone(), Arc::clone(&node), rx));
    wait_until(|| node.is_live(), "the listener subscribes").await;

    let employee = app.account_id("dipendente@regione.example").await;
    let region = app.org_id("r_lombar").await;
    let (s, token) = session::create(&db, employee, false, None, None).await.unwrap();
    assert!(node.session(&db, &token).await.unwrap().is_some());
    let p = node.principal(&db, employee).await.unwrap();
    assert!(!p.has(region, Role::OrgAdmin));
    // Served from the cache now: a hit, no read.
    let (hits, _) = node.stats();
    node.principal(&db, employee).await.unwrap();
    assert_eq!(node.stats().0, hits + 1);

    // "Another node" grants a role and ends the session; this process's commit does not reach `node`.
    identity::grant(&db, &Actor::system(), region, employee, Role::OrgAdmin).await.unwrap();
    session::delete(&db, s.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let gone = node.session(&db, &token).await.unwrap().is_none();
        let admin = node.principal(&db, employee).await.unwrap().has(region, Role::OrgAdmin);
        if gone && admin {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "NOTIFY did not evict within 2 s (session gone {gone}, role seen {admin})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The listener's connection is killed: the cache stops serving, then comes back empty.
    if let agilekit_kernel::Db::Postgres(p) = &db {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
            .execute(p).await.unwrap();
    }
    let subscribed = node.subscriptions();
    node.principal(&db, employee).await.unwrap();
    wait_until(|| node.subscriptions() > subscribed && node.is_live(), "the listener reconnects").await;
    // Reconnected with an empty cache: whatever was missed meanwhile cannot be served.
    let (_, misses) = node.stats();
    node.principal(&db, employee).await.unwrap();
    assert_eq!(node.stats().1, misses + 1, "an entry survived the lost connection");
    let _ = stop.send(true);
    let _ = task.await;
    app.finish().await;
}

async fn wait_until(f: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
