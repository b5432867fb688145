//! Kernel rules that every module relies on, exercised on both engines through the real database:
//! the entitlement check, quotas under concurrency, and the audit chain under concurrent writers.

use agilekit_kernel::audit::{self, Actor, Verdict};
use agilekit_kernel::catalogue::{self, Denied, Service, SubState};
use agilekit_kernel::tenancy::{self, OrgInput};

use crate::both_engines;

both_engines!(entitlement_answers_for_membership_subscription_and_availability, |app| async move {
    let db = &app.db;
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let arifl = app.org_id("arifl").await;
    let employee = app.account_id("dipendente@regione.example").await;
    let mayor = app.account_id("admin@comune.example").await;

    let e = catalogue::entitlement(db, employee, region, Service::RemoteAccess).await.unwrap().expect("entitled");
    assert_eq!(e.remaining("vpn_seats"), Some(4500));
    assert_eq!(catalogue::entitlement(db, employee, town, Service::RemoteAccess).await.unwrap(), Err(Denied::NotMember));
    assert_eq!(catalogue::entitlement(db, mayor, town, Service::Helpdesk).await.unwrap(), Err(Denied::NotSubscribed));

    // Requested but not active (ARIFL's help desk in the demo) is not an entitlement.
    let arifl_admin = agilekit_kernel::identity::create(db, &Actor::system(), &agilekit_kernel::identity::NewAccount {
        email: "admin@arifl.example".into(), display_name: "Admin ARIFL".into(), ..Default::default()
    }).await.unwrap();
    agilekit_kernel::identity::grant(db, &Actor::system(), arifl, arifl_admin.id, agilekit_kernel::identity::Role::OrgAdmin).await.unwrap();
    assert_eq!(catalogue::entitlement(db, arifl_admin.id, arifl, Service::Helpdesk).await.unwrap(), Err(Denied::NotSubscribed));

    catalogue::set_state(db, &Actor::system(), region, Service::RemoteAccess, SubState::Suspended).await.unwrap();
    assert_eq!(catalogue::entitlement(db, employee, region, Service::RemoteAccess).await.unwrap(), Err(Denied::NotSubscribed));
    catalogue::set_state(db, &Actor::system(), region, Service::RemoteAccess, SubState::Active).await.unwrap();
    catalogue::set_available(db, &Actor::system(), Service::RemoteAccess, false).await.unwrap();
    assert_eq!(catalogue::entitlement(db, employee, region, Service::RemoteAccess).await.unwrap(), Err(Denied::Unavailable));
    app
});

both_engines!(quota_is_never_exceeded_under_concurrent_consumers, |app| async move {
    let town = app.org_id("c_b157").await;
    catalogue::set_quota(&app.db, &Actor::system(), town, Service::RemoteAccess, "vpn_seats", Some(10)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            match catalogue::consume_in(&mut tx, town, Service::RemoteAccess, "vpn_seats", 1).await {
                Ok(()) => {
                    tx.commit().await.unwrap();
                    true
                }
                Err(agilekit_kernel::Error::QuotaExhausted) => false,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }));
    }
    let mut granted = 0;
    for t in tasks {
        if t.await.unwrap() {
            granted += 1;
        }
    }
    assert_eq!(granted, 10);
    let subs = catalogue::subscriptions(&app.db, town).await.unwrap();
    let q = subs.iter().flat_map(|s| s.quotas.iter()).find(|q| q.quota_key == "vpn_seats").unwrap();
    assert_eq!((q.used, q.limit_value), (10, Some(10)));
    // Lowering the limit below what is used is refused, field-level.
    let err = catalogue::set_quota(&app.db, &Actor::system(), town, Service::RemoteAccess, "vpn_seats", Some(5)).await.unwrap_err();
    assert!(matches!(err, agilekit_kernel::Error::Invalid(ref f) if f.get("vpn_seats") == Some("below-usage")), "{err:?}");
    // Releasing gives seats back.
    let mut tx = app.db.begin().await.unwrap();
    catalogue::release_in(&mut tx, town, Service::RemoteAccess, "vpn_seats", 3).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = app.db.begin().await.unwrap();
    catalogue::consume_in(&mut tx, town, Service::RemoteAccess, "vpn_seats", 3).await.unwrap();
    tx.commit().await.unwrap();
    app
});

both_engines!(audit_chain_stays_intact_under_concurrent_writers_and_detects_tampering, |app| async move {
    let mut tasks = Vec::new();
    for i in 0..24 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let input = OrgInput {
                name: format!("Comune di prova {i}"),
                kind: "local_authority".into(),
                ipa_code: format!("c_t{i:03}"),
                tax_code: "00000000000".into(),
                pec: String::new(),
                parent_id: None,
            };
            // Every one fails validation (00000000000 is refused) except with a real code: build one per task.
            let input = OrgInput { tax_code: company_code(&format!("{:010}", 1_000_000 + i)), ..input };
            tenancy::create(&db, &Actor::system(), &input).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let Verdict::Intact { entries } = audit::verify(&app.db).await.unwrap() else { panic!("chain broken") };
    assert!(entries > 24);
    // Change one entry's content behind the application's back: verify names it.
    let target: i64 = entries / 2;
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query("UPDATE audit_log SET action = 'org.forged' WHERE seq = $1").bind(target).execute(p).await.unwrap().rows_affected(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query("UPDATE audit_log SET action = 'org.forged' WHERE seq = $1").bind(target).execute(p).await.unwrap().rows_affected(),
    };
    assert_eq!(audit::verify(&app.db).await.unwrap(), Verdict::Broken { seq: target, reason: "content does not match its hash" });
    app
});

fn company_code(first10: &str) -> String {
    let d: Vec<u32> = first10.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first10}{}", (10 - (x + y) % 10) % 10)
}

both_engines!(there_is_one_operator_and_it_stays_one_whatever_the_entry_point, |app| async move {
    let db = &app.db;
    let operator = tenancy::get(db, app.org_id("aria_spa").await).await.unwrap();
    let input = |name: &str, kind: &str, ipa: &str, tax: &str| OrgInput {
        name: name.into(), kind: kind.into(), ipa_code: ipa.into(), tax_code: tax.into(), ..Default::default()
    };
    let field = |e: agilekit_kernel::Error| match e {
        agilekit_kernel::Error::Invalid(f) => f.get("kind").map(str::to_owned),
        other => panic!("expected a field error, got {other:?}"),
    };
    let second = tenancy::create(db, &Actor::system(), &input("Secondo gestore", "operator", "c_z001", "80050050154")).await;
    assert_eq!(field(second.unwrap_err()).as_deref(), Some("operator-exists"));
    let demoted = tenancy::update(db, &Actor::system(), operator.id, &input(&operator.name, "region", &operator.ipa_code, &operator.tax_code)).await;
    assert_eq!(field(demoted.unwrap_err()).as_deref(), Some("operator-stays"));
    let town = app.org_id("c_b157").await;
    let t = tenancy::get(db, town).await.unwrap();
    let promoted = tenancy::update(db, &Actor::system(), town, &input(&t.name, "operator", &t.ipa_code, &t.tax_code)).await;
    assert_eq!(field(promoted.unwrap_err()).as_deref(), Some("operator-exists"));
    // The operator keeps its kind through an ordinary edit.
    tenancy::update(db, &Actor::system(), operator.id, &input("ARIA S.p.A.", "operator", &operator.ipa_code, &operator.tax_code)).await.unwrap();
    app
});
