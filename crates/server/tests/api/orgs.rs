//! The organisation's pages: the dashboard with services and quotas, service requests, activation and quotas by
//! the operator, members and roles; and that none of it is reachable from another organisation.

use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::mail::Mail;

use crate::both_engines;
use crate::helpers::*;

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The mails queued in the outbox for `to`, oldest first.
pub(crate) async fn mails_to(app: &TestApp, to: &str) -> Vec<Mail> {
    let rows: Vec<(String,)> = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
        "SELECT payload FROM jobs WHERE kind = 'mail' ORDER BY created_at"
    )
    .fetch_all(p)
    .await
    .unwrap());
    rows.into_iter().filter_map(|(p,)| serde_json::from_str::<Mail>(&p).ok()).filter(|m| m.to == to).collect()
}

/// The secret of the first `/password/reset/` link in a mail's text.
pub(crate) fn reset_secret(text: &str) -> Option<String> {
    let from = text.find("/password/reset/")? + "/password/reset/".len();
    text[from..].split_whitespace().next().map(str::to_owned)
}

pub(crate) async fn roles_of(app: &TestApp, org: OrgId, account: AccountId) -> Vec<String> {
    let rows: Vec<(String,)> = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
        "SELECT role FROM memberships WHERE org_id = $1 AND account_id = $2 ORDER BY role"
    )
    .bind(org)
    .bind(account)
    .fetch_all(p)
    .await
    .unwrap());
    rows.into_iter().map(|r| r.0).collect()
}

async fn audit_actions(app: &TestApp, org: OrgId) -> Vec<String> {
    let rows: Vec<(String,)> = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
        "SELECT action FROM audit_log WHERE org_id = $1 ORDER BY seq"
    )
    .bind(org)
    .fetch_all(p)
    .await
    .unwrap());
    rows.into_iter().map(|r| r.0).collect()
}

async fn quota(app: &TestApp, org: OrgId, service: Service, key: &str) -> (Option<i64>, i64) {
    let subs = catalogue::subscriptions(&app.db, org).await.unwrap();
    let s = subs.iter().find(|s| s.subscription.service_key == service.key()).expect("subscribed");
    let q = s.quotas.iter().find(|q| q.quota_key == key).expect("quota");
    (q.limit_value, q.used)
}

async fn sub_state(app: &TestApp, org: OrgId, service: Service) -> Option<String> {
    let subs = catalogue::subscriptions(&app.db, org).await.unwrap();
    subs.into_iter().find(|s| s.subscription.service_key == service.key()).map(|s| s.subscription.state)
}

async fn use_seats(app: &TestApp, org: OrgId, n: i64) {
    let mut tx = app.db.begin().await.unwrap();
    catalogue::consume_in(&mut tx, org, Service::RemoteAccess, "vpn_seats", n).await.unwrap();
    tx.commit().await.unwrap();
}

both_engines!(dashboard_shows_the_organisation_its_services_and_quota_usage, |app| async move {
    let town = app.org_id("c_b157").await;
    use_seats(&app, town, 12).await;
    let c = app.login("admin@comune.example").await;
    let r = c.get(app.at(&format!("/orgs/{town}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    for expected in [
        "<h1>Comune di Brescia</h1>",
        "Ente locale",
        "c_b157",
        "protocollo@pec.c-b157.example",
        "Accesso remoto (VPN)",
        "Formazione a distanza",
    ] {
        assert!(body.contains(expected), "dashboard shows {expected}");
    }
    // Usage against the limit, as a labelled bar and in words.
    assert!(body.contains(r#"<label for="bar-vpn_seats""#), "the bar is labelled");
    assert!(body.contains(r#"max="150" value="12""#), "bar figures: {body}");
    assert!(body.contains("12 su 150 in uso"));
    assert!(!body.contains("style="), "no inline styles");
    // Its admin may request what it lacks, but is not the operator.
    assert!(
        body.contains(r#"action="/orgs/"#) && body.contains(r#"<option value="meetings">"#),
        "request form with a missing service"
    );
    assert!(!body.contains(r#"<option value="remote_access">"#), "an active service is not offered again");
    assert!(!body.contains("Azioni del gestore"));

    // An unlimited quota says so; an employee sees the dashboard but no request form and no members link.
    let region = app.org_id("r_lombar").await;
    let c = app.login("dipendente@regione.example").await;
    let body = c.get(app.at(&format!("/orgs/{region}"))).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("0 in uso, senza limite"), "learners are unlimited in the region");
    assert!(body.contains("0 su 4500 in uso"));
    assert!(!body.contains("Richiedi un servizio"));
    assert!(!body.contains(&format!("/orgs/{region}/members\">Persone")), "no members link for an employee");

    // A regional entity's dashboard names its parent; a requested service shows as requested.
    let arifl = app.org_id("arifl").await;
    let c = app.login("operatore@aria.example").await;
    let body = c.get(app.at(&format!("/orgs/{arifl}"))).send().await.unwrap().text().await.unwrap();
    assert!(
        body.contains(&format!(r#"<a href="/orgs/{region}">Regione Lombardia</a>"#)),
        "parent linked for the operator"
    );
    assert!(body.contains("Richiesto"));
    assert!(body.contains("Azioni del gestore"), "the operator sees its actions");
    app
});

both_engines!(another_organisation_is_not_found, |app| async move {
    let region = app.org_id("r_lombar").await;
    let c = app.login("admin@comune.example").await;
    for path in [
        format!("/orgs/{region}"),
        format!("/orgs/{region}/members"),
        "/orgs/not-a-uuid".into(),
        format!("/orgs/{}", OrgId::new()),
    ] {
        let r = c.get(app.at(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("r_lombar") && !body.contains("Regione Lombardia"),
            "nothing of the other organisation leaks on {path}"
        );
    }
    let dip = app.account_id("dipendente@regione.example").await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/orgs/{region}/members"),
            vec![("email", "x@comune.example"), ("display_name", "X"), ("role", "employee")],
        ),
        (format!("/orgs/{region}/members/{dip}/roles"), vec![("role", "hr")]),
        (format!("/orgs/{region}/members/{dip}/revoke"), vec![("role", "employee")]),
        (format!("/orgs/{region}/services"), vec![("service", "grants")]),
        (format!("/orgs/{region}/services/remote_access/state"), vec![("state", "suspended")]),
        (format!("/orgs/{region}/services/remote_access/quotas/vpn_seats"), vec![("vpn_seats", "1")]),
    ];
    for (path, form) in &posts {
        let r = c.post(app.at(path)).form(form).send().await.unwrap();
        assert_eq!(r.status(), 404, "POST {path}");
    }
    assert_eq!(
        c.get(app.at(&format!("/orgs/{region}/members/{dip}/revoke?role=employee"))).send().await.unwrap().status(),
        404
    );
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee"], "nothing changed");
    assert_eq!(quota(&app, region, Service::RemoteAccess, "vpn_seats").await.0, Some(4500));
    app
});

both_engines!(employees_and_hr_cannot_manage_members, |app| async move {
    let region = app.org_id("r_lombar").await;
    let dip = app.account_id("dipendente@regione.example").await;
    let c = app.login("dipendente@regione.example").await;
    assert_eq!(c.get(app.at(&format!("/orgs/{region}/members"))).send().await.unwrap().status(), 404);
    let r = c
        .post(app.at(&format!("/orgs/{region}/members")))
        .form(&[("email", "a@regione.example"), ("display_name", "A"), ("role", "employee")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(app.at(&format!("/orgs/{region}/members/{dip}/roles")))
        .form(&[("role", "org_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no self-promotion");
    let r = c.post(app.at(&format!("/orgs/{region}/services"))).form(&[("service", "grants")]).send().await.unwrap();
    assert_eq!(r.status(), 403, "a member who is not an admin is refused");
    // HR sees the people but cannot change them.
    let c = app.login("hr@regione.example").await;
    let r = c.get(app.at(&format!("/orgs/{region}/members"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("Sara Dipendente") && body.contains("Dipendente"));
    assert!(!body.contains("Aggiungi una persona") && !body.contains("/revoke?role="), "no management forms for HR");
    let r =
        c.post(app.at(&format!("/orgs/{region}/members/{dip}/roles"))).form(&[("role", "hr")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.at(&format!("/orgs/{region}/members/{dip}/revoke")))
        .form(&[("role", "employee")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(identity_missing(&app, "a@regione.example").await);
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee"]);
    app
});

async fn identity_missing(app: &TestApp, email: &str) -> bool {
    agilekit_kernel::identity::find_by_email(&app.db, email).await.unwrap().is_none()
}

both_engines!(adding_a_new_person_creates_account_membership_and_first_password_mail, |app| async move {
    let region = app.org_id("r_lombar").await;
    let c = app.login("admin@regione.example").await;
    let path = format!("/orgs/{region}/members");
    // Bad input: field errors, values kept, nothing created.
    let r = c
        .post(app.at(&path))
        .form(&[("email", "non-una-mail"), ("display_name", "Nuova Persona"), ("role", "manager")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"value="non-una-mail""#) && body.contains(r#"value="Nuova Persona""#), "typed values kept");
    assert!(body.contains(r#"<option value="manager" selected>"#), "chosen role kept");
    assert!(body.contains("aria-invalid=\"true\"") && body.contains("formato non valido"));
    let r = c
        .post(app.at(&path))
        .form(&[("email", "nuova@regione.example"), ("display_name", " "), ("role", "employee")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a new account needs a name");
    assert!(r.text().await.unwrap().contains("campo obbligatorio"));
    let r = c
        .post(app.at(&path))
        .form(&[("email", "nuova@regione.example"), ("display_name", "Nuova"), ("role", "boss")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "unknown role");
    assert!(identity_missing(&app, "nuova@regione.example").await);

    let r = c
        .post(app.at(&path))
        .form(&[("email", "Nuova@Regione.example"), ("display_name", "Nuova Persona"), ("role", "employee")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/orgs/{region}/members?done=added-new"));
    let acc = agilekit_kernel::identity::find_by_email(&app.db, "nuova@regione.example")
        .await
        .unwrap()
        .expect("account created");
    assert!(acc.password_hash.is_none(), "no password until the person chooses one");
    assert_eq!(roles_of(&app, region, acc.id).await, vec!["employee"]);
    let mails = mails_to(&app, "nuova@regione.example").await;
    assert_eq!(mails.len(), 1, "one first-password mail queued");
    let secret = reset_secret(&mails[0].text).expect("a reset link in the mail");
    assert!(mails[0].text.contains(&format!("/password/reset/{secret}")));
    assert!(agilekit_kernel::identity::reset::is_valid(&app.db, &secret).await.unwrap());
    let body = c.get(app.at(&format!("{path}?done=added-new"))).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Nuova Persona") && body.contains("riceverà una mail"));

    // An existing account is only given the membership: no new account, no mail.
    let r = c
        .post(app.at(&path))
        .form(&[("email", "cittadino@example.it"), ("display_name", ""), ("role", "employee")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/orgs/{region}/members?done=added"));
    let cit = app.account_id("cittadino@example.it").await;
    assert_eq!(roles_of(&app, region, cit).await, vec!["employee"]);
    assert!(mails_to(&app, "cittadino@example.it").await.is_empty());
    let actions = audit_actions(&app, region).await;
    assert!(actions.iter().filter(|a| *a == "membership.grant").count() >= 2);
    app
});

both_engines!(roles_are_granted_and_revoked_with_confirmation, |app| async move {
    let region = app.org_id("r_lombar").await;
    let dip = app.account_id("dipendente@regione.example").await;
    let c = app.login("admin@regione.example").await;
    let r =
        c.post(app.at(&format!("/orgs/{region}/members/{dip}/roles"))).form(&[("role", "hr")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee", "hr"]);
    // A role that does not exist: the error shows beside that member.
    let r =
        c.post(app.at(&format!("/orgs/{region}/members/{dip}/roles"))).form(&[("role", "nope")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains(&format!(r#"id="grant-{dip}-error""#)));
    let r = c.post(app.at(&format!("/orgs/{region}/members/{dip}/roles"))).form(&[("role", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422, "nothing chosen grants nothing");
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee", "hr"]);
    // Only members: an account of another organisation cannot be reached by id.
    let outsider = app.account_id("admin@comune.example").await;
    let r = c
        .post(app.at(&format!("/orgs/{region}/members/{outsider}/roles")))
        .form(&[("role", "hr")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // platform_admin is the operator's, handed out by a platform admin only.
    let r = c
        .post(app.at(&format!("/orgs/{region}/members/{dip}/roles")))
        .form(&[("role", "platform_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let op = app.login("operatore@aria.example").await;
    let r = op
        .post(app.at(&format!("/orgs/{region}/members/{dip}/roles")))
        .form(&[("role", "platform_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not outside the operator organisation either");
    assert!(!roles_of(&app, region, dip).await.contains(&"platform_admin".to_owned()));

    // Revoking asks first, and the question itself changes nothing.
    let r = c.get(app.at(&format!("/orgs/{region}/members/{dip}/revoke?role=hr"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("Revocare il ruolo?") && body.contains(r#"name="role" value="hr""#));
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee", "hr"]);
    assert_eq!(
        c.get(app.at(&format!("/orgs/{region}/members/{dip}/revoke?role=trainer"))).send().await.unwrap().status(),
        404
    );
    let r =
        c.post(app.at(&format!("/orgs/{region}/members/{dip}/revoke"))).form(&[("role", "hr")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/orgs/{region}/members?done=revoked"));
    assert_eq!(roles_of(&app, region, dip).await, vec!["employee"]);
    assert!(audit_actions(&app, region).await.contains(&"membership.revoke".to_owned()));
    let r =
        c.post(app.at(&format!("/orgs/{region}/members/{dip}/revoke"))).form(&[("role", "hr")]).send().await.unwrap();
    assert_eq!(r.status(), 404, "a role not held");
    // The last administrator stays.
    let me = app.account_id("admin@regione.example").await;
    let r = c
        .post(app.at(&format!("/orgs/{region}/members/{me}/revoke")))
        .form(&[("role", "org_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("ultimo amministratore"));
    assert_eq!(roles_of(&app, region, me).await, vec!["org_admin"]);
    app
});

both_engines!(the_operator_activates_services_and_sets_quotas_and_org_admins_cannot, |app| async move {
    let town = app.org_id("c_b157").await;
    let arifl = app.org_id("arifl").await;
    // The organisation's admin requests a service: it waits as requested.
    let admin = app.login("admin@comune.example").await;
    let r =
        admin.post(app.at(&format!("/orgs/{town}/services"))).form(&[("service", "meetings")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(sub_state(&app, town, Service::Meetings).await.as_deref(), Some("requested"));
    let r =
        admin.post(app.at(&format!("/orgs/{town}/services"))).form(&[("service", "teleport")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"id="f-service-error""#) && body.contains("error-summary"));
    // ... but may not activate it nor change a quota.
    let r = admin
        .post(app.at(&format!("/orgs/{town}/services/meetings/state")))
        .form(&[("state", "active")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin
        .post(app.at(&format!("/orgs/{town}/services/remote_access/quotas/vpn_seats")))
        .form(&[("vpn_seats", "9999")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(sub_state(&app, town, Service::Meetings).await.as_deref(), Some("requested"));
    assert_eq!(quota(&app, town, Service::RemoteAccess, "vpn_seats").await, (Some(150), 0));

    let op = app.login("operatore@aria.example").await;
    let r = op
        .post(app.at(&format!("/orgs/{arifl}/services/helpdesk/state")))
        .form(&[("state", "active")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(sub_state(&app, arifl, Service::Helpdesk).await.as_deref(), Some("active"));
    let r = op
        .post(app.at(&format!("/orgs/{arifl}/services/helpdesk/state")))
        .form(&[("state", "suspended")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(sub_state(&app, arifl, Service::Helpdesk).await.as_deref(), Some("suspended"));
    let body = op.get(app.at(&format!("/orgs/{arifl}"))).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Sospeso"));
    let r = op
        .post(app.at(&format!("/orgs/{arifl}/services/grants/state")))
        .form(&[("state", "active")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not subscribed");

    // Quotas: out of range, not a number, below usage are field errors with the typed value kept.
    use_seats(&app, town, 20).await;
    let qpath = format!("/orgs/{town}/services/remote_access/quotas/vpn_seats");
    for (typed, message) in [("-1", "intervallo ammesso"), ("tanti", "formato non valido"), ("10", "uso attuale")] {
        let r = op.post(app.at(&qpath)).form(&[("vpn_seats", typed)]).send().await.unwrap();
        assert_eq!(r.status(), 422, "{typed}");
        let body = r.text().await.unwrap();
        assert!(body.contains(&format!(r#"value="{typed}""#)), "typed value kept: {typed}");
        assert!(body.contains(message), "{message}");
        assert!(body.contains(r#"id="f-vpn_seats-error""#));
    }
    assert_eq!(quota(&app, town, Service::RemoteAccess, "vpn_seats").await, (Some(150), 20));
    let r = op.post(app.at(&qpath)).form(&[("vpn_seats", "300")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(quota(&app, town, Service::RemoteAccess, "vpn_seats").await, (Some(300), 20));
    let r = op.post(app.at(&qpath)).form(&[("vpn_seats", "")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(quota(&app, town, Service::RemoteAccess, "vpn_seats").await, (None, 20), "empty means no limit");
    let r = op
        .post(app.at(&format!("/orgs/{town}/services/remote_access/quotas/rooms")))
        .form(&[("rooms", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not a quota of this service");
    let actions = audit_actions(&app, town).await;
    assert!(actions.contains(&"subscription.quota".to_owned()) && actions.contains(&"subscription.create".to_owned()));
    assert!(audit_actions(&app, arifl).await.contains(&"subscription.state".to_owned()));
    app
});
