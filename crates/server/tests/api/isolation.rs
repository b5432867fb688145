//! Tenant isolation, route by route: an administrator of one organisation (Comune di Brescia) tries every
//! organisation-, account- and operator-scoped route with another organisation's (Regione Lombardia's) IDs and
//! another person's sessions and tokens. Each answer must be 403 or 404, carry none of the victim's data, and change
//! nothing (no audited change happens). Signed out, the same routes send to the login page or answer 401.
//! A guard test reads the routers' source: a new route fails the suite until it is classified here.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::identity::oidc::{self, ProviderInput, Scope};
use agilekit_kernel::{Db, identity, onboarding};

use crate::both_engines;

/// Routes that act on something owned by an organisation, a person or the operator: (method, path template, body).
/// `{org}` is the victim organisation, `{account}` one of its members, `{provider}` its OIDC provider, `{onboarding}` a
/// pending onboarding request, `{session}` and `{token}` the victim's session and API token. Bodies are plausible
/// input, so that only the authorisation check can refuse them.
const SCOPED: &[(&str, &str, &str)] = &[
    ("GET", "/orgs/{org}", ""),
    ("POST", "/orgs/{org}/services", "service=grants"),
    ("POST", "/orgs/{org}/services/remote_access/state", "state=suspended"),
    ("POST", "/orgs/{org}/services/remote_access/quotas/vpn_seats", "vpn_seats=1"),
    ("GET", "/orgs/{org}/members", ""),
    ("POST", "/orgs/{org}/members", "email=intruder%40comune.example&display_name=Intruder&role=org_admin"),
    ("POST", "/orgs/{org}/members/{account}/roles", "role=org_admin"),
    ("GET", "/orgs/{org}/members/{account}/revoke?role=employee", ""),
    ("POST", "/orgs/{org}/members/{account}/revoke", "role=employee"),
    ("GET", "/orgs/{org}/audit", ""),
    ("GET", "/orgs/{org}/audit.csv", ""),
    ("GET", "/orgs/{org}/oidc", ""),
    ("POST", "/orgs/{org}/oidc", "display_name=X&issuer=https%3A%2F%2Fidp.example&client_id=x&client_secret=y"),
    ("POST", "/orgs/{org}/oidc/{provider}/enabled", "enabled=0"),
    ("GET", "/orgs/{org}/oidc/{provider}/delete", ""),
    ("POST", "/orgs/{org}/oidc/{provider}/delete", ""),
    ("POST", "/account/sessions/{session}/end", ""),
    ("POST", "/account/tokens/{token}/revoke", ""),
    ("POST", "/account/identities/{provider}/unlink", ""),
    ("GET", "/admin/orgs", ""),
    ("GET", "/admin/orgs/new", ""),
    ("POST", "/admin/orgs/new", "name=X&kind=local_authority&ipa_code=c_x001&tax_code=80050050154"),
    ("GET", "/admin/orgs/{org}/edit", ""),
    ("POST", "/admin/orgs/{org}/edit", "name=Hacked&kind=region&ipa_code=r_lombar&tax_code=80050050154"),
    ("GET", "/admin/onboarding", ""),
    ("POST", "/admin/onboarding/{onboarding}/approve", "parent_id="),
    ("POST", "/admin/onboarding/{onboarding}/reject", "review_note=no"),
    ("GET", "/admin/catalogue", ""),
    ("POST", "/admin/catalogue/remote_access", "available=false"),
    ("GET", "/admin/audit", ""),
    ("GET", "/admin/audit.csv", ""),
    ("GET", "/admin/oidc", ""),
    ("POST", "/admin/oidc", "display_name=X&issuer=https%3A%2F%2Fidp.example&client_id=x&client_secret=y"),
    ("POST", "/admin/oidc/{provider}/enabled", "enabled=0"),
    ("GET", "/admin/oidc/{provider}/delete", ""),
    ("POST", "/admin/oidc/{provider}/delete", ""),
    ("GET", "/api/v1/orgs/{org}", ""),
    ("PUT", "/api/v1/orgs/{org}", r#"{"name":"Hacked","kind":"region","ipa_code":"r_lombar","tax_code":"80050050154"}"#),
    ("POST", "/api/v1/orgs", r#"{"name":"X","kind":"local_authority","ipa_code":"c_x001","tax_code":"80050050154"}"#),
    ("GET", "/api/v1/orgs/{org}/audit", ""),
    ("GET", "/api/v1/orgs/{org}/entitlements/remote_access", ""),
    ("GET", "/api/v1/orgs/{org}/members", ""),
    ("POST", "/api/v1/orgs/{org}/members", r#"{"email":"admin@comune.example","role":"org_admin"}"#),
    ("DELETE", "/api/v1/orgs/{org}/members/{account}/roles/employee", ""),
    ("GET", "/api/v1/orgs/{org}/subscriptions", ""),
    ("POST", "/api/v1/orgs/{org}/subscriptions", r#"{"service":"grants"}"#),
    ("PUT", "/api/v1/orgs/{org}/subscriptions/remote_access/state", r#"{"state":"suspended"}"#),
    ("PUT", "/api/v1/orgs/{org}/subscriptions/remote_access/quotas/vpn_seats", r#"{"limit":1}"#),
    ("GET", "/api/v1/audit", ""),
    ("GET", "/api/v1/onboarding", ""),
    ("POST", "/api/v1/onboarding/{onboarding}/approve", "{}"),
    ("POST", "/api/v1/onboarding/{onboarding}/reject", r#"{"note":"no"}"#),
    ("DELETE", "/api/v1/account/tokens/{token}", ""),
];

/// Routes with nothing of anyone else's in them: public pages, the caller's own account, operations, assets.
const UNSCOPED: &[&str] = &[
    "/", "/accessibility", "/login", "/login/totp", "/logout", "/lang", "/session/org", "/join", "/join/thanks",
    "/password/forgot", "/password/reset/{secret}", "/account", "/account/password", "/account/profile",
    "/account/sessions/end-others", "/account/tokens", "/account/totp", "/account/totp/disable", "/account/totp/enable",
    "/account/totp/setup", "/auth/oidc/callback", "/auth/oidc/{provider_id}/start", "/healthz", "/readyz", "/metrics",
    "/static/bi/{version}/{*path}", "/static/htmx/{version}/{*path}", "/static/own/{version}/{*path}",
    "/api/v1/me", "/api/v1/openapi.json", "/api/v1/catalogue", "/api/v1/account/sessions", "/api/v1/account/tokens",
    "/api/v1/onboarding",
    // Remote access: the gateway agent's calls (its token names its network), the caller's own VPN page and enrolment.
    "/api/v1/gateway/config", "/api/v1/gateway/status", "/vpn", "/vpn/devices",
    // Remote workstations: the caller's own page (their workstations and bookings in their current organisation).
    "/workstations",
    // Help desk knowledge base: search, browse and suggestions in the caller's current organisation.
    "/helpdesk/kb", "/helpdesk/kb/suggest",
];

/// Every path a router in any crate declares, read from the sources (`crates/*/src`).
fn declared_routes() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                let mut rest = text.as_str();
                while let Some(i) = rest.find(".route(") {
                    rest = &rest[i + 7..];
                    let trimmed = rest.trim_start();
                    if let Some(s) = trimmed.strip_prefix('"') {
                        if let Some(end) = s.find('"') {
                            out.push(s[..end].to_owned());
                        }
                    }
                }
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

/// Whether a declared route template covers a path of the tables: segment by segment, a `{…}` in either matches
/// anything (the tables write some parameters out, e.g. `remote_access` for `{service}`); a query string is ignored.
fn covers(declared: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (a, b): (Vec<&str>, Vec<&str>) = (declared.split('/').collect(), path.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || x.starts_with('{') || y.starts_with('{'))
}

#[test]
fn every_route_is_classified_for_the_isolation_test() {
    let declared = declared_routes();
    assert!(declared.len() > 40, "the route scan found too little: {declared:?}");
    // Each domain tests its own organisation-scoped routes (it knows how to create the victim's devices, seats…).
    let domains = [crate::remote_access::SCOPED_ROUTES, crate::workstations::SCOPED_ROUTES, crate::helpdesk::SCOPED_ROUTES, crate::helpdesk_mail::SCOPED_ROUTES, crate::helpdesk_kb::SCOPED_ROUTES, crate::helpdesk_sla::SCOPED_ROUTES, crate::helpdesk_search::SCOPED_ROUTES, crate::helpdesk_reports::SCOPED_ROUTES, crate::helpdesk_attachments::SCOPED_ROUTES, crate::grants_companies::SCOPED_ROUTES, crate::grants_calls::SCOPED_ROUTES, crate::grants_applications::SCOPED_ROUTES, crate::grants_application_pages::SCOPED_ROUTES, crate::grants_review::SCOPED_ROUTES, crate::grants_ranking::SCOPED_ROUTES, crate::grants_staff_pages::SCOPED_ROUTES, crate::grants_public_pages::SCOPED_ROUTES];
    let missing: Vec<&String> = declared
        .iter()
        .filter(|r| {
            !SCOPED.iter().chain(domains.iter().copied().flatten()).any(|(_, p, _)| covers(r, p))
                && !UNSCOPED.iter().chain(crate::grants_companies::UNSCOPED_ROUTES).chain(crate::grants_calls::UNSCOPED_ROUTES).chain(crate::grants_staff_pages::UNSCOPED_ROUTES).chain(crate::grants_public_pages::UNSCOPED_ROUTES).any(|p| covers(r, p))
        })
        .collect();
    assert!(missing.is_empty(), "routes not covered by the isolation test (add them to SCOPED or UNSCOPED): {missing:?}");
}

async fn head_seq(db: &Db) -> i64 {
    let row: (i64,) = match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.unwrap(),
    };
    row.0
}

both_engines!(another_organisations_ids_get_403_or_404_never_data_and_change_nothing, |app| async move {
    let db = app.db.clone();
    let region = app.org_id("r_lombar").await;
    let member = app.account_id("dipendente@regione.example").await;
    // The victim's own things: an OIDC provider, a pending onboarding request, a live session and an API token.
    let provider = oidc::create_provider(&db, &Actor::system(), Scope::Org(region), &ProviderInput {
        display_name: "IdP Regione".into(), issuer: "https://idp.regione.example".into(), client_id: "agilekit".into(),
        client_secret: "s3cret".into(), scopes: String::new(), tax_code_claim: String::new(),
    }).await.unwrap();
    let request = onboarding::submit(&db, &Actor::system(), &onboarding::RequestInput {
        org_name: "Comune di Bergamo".into(), ipa_code: "c_a794".into(), tax_code: "80034840167".into(),
        pec: "protocollo@pec.comune.bergamo.example".into(), contact_name: "Giorgio Gori".into(),
        contact_email: "sindaco@comune.bergamo.example".into(), services: vec!["helpdesk".into()],
    }).await.unwrap();
    let victim = app.login("admin@regione.example").await;
    let victim_id = app.account_id("admin@regione.example").await;
    let session = identity::session::list_for(&db, victim_id).await.unwrap()[0].id;
    let (token, secret) = identity::token::create(&db, &Actor::system(), victim_id, "victim's token").await.unwrap();

    let attacker = app.login("admin@comune.example").await;
    let attacker_id = app.account_id("admin@comune.example").await;
    let (_, attacker_token) = identity::token::create(&db, &Actor::system(), attacker_id, "attacker").await.unwrap();
    let anonymous = app.client();

    let fill = |p: &str| {
        p.replace("{org}", &region.to_string())
            .replace("{account}", &member.to_string())
            .replace("{provider}", &provider.id.to_string())
            .replace("{onboarding}", &request.id.to_string())
            .replace("{session}", &session.to_string())
            .replace("{token}", &token.id.to_string())
    };
    let secrets = ["80050050154", "dipendente@regione.example", "Sara Dipendente", "idp.regione.example", "Comune di Bergamo", "Marco Amministratore"];
    let before = head_seq(&db).await;
    let mut failures = Vec::new();
    for (method, template, body) in SCOPED {
        let url = app.at(&fill(template));
        let is_api = template.starts_with("/api/");
        let build = |c: &reqwest::Client| {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut rb = c.request(m, &url);
            if !body.is_empty() {
                let ct = if is_api { "application/json" } else { "application/x-www-form-urlencoded" };
                rb = rb.header("content-type", ct).body(body.to_string());
            }
            rb
        };
        let r = if is_api { build(&reqwest::Client::new()).bearer_auth(&attacker_token) } else { build(&attacker) }.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 403 && status != 404 {
            failures.push(format!("{method} {template}: {status} for another organisation's admin"));
        }
        if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
            failures.push(format!("{method} {template}: the answer contains {s:?}"));
        }
        let r = build(&anonymous).send().await.unwrap();
        let expected = if is_api { vec![401] } else if *method == "GET" { vec![303] } else { vec![303, 403] };
        if !expected.contains(&r.status().as_u16()) {
            failures.push(format!("{method} {template}: {} signed out", r.status()));
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(head_seq(&db).await, before, "an attempt changed something (the audit log grew)");
    // The victim's session and token still work.
    assert_eq!(victim.get(app.at("/account")).send().await.unwrap().status(), 200);
    let r = reqwest::Client::new().get(app.at("/api/v1/me")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app
});
