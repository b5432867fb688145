//! The operator's pages: organisations (tree, create, edit), onboarding from the public form to an active
//! organisation whose contact can sign in, rejection, the catalogue; and that only platform admins get in.

use agilekit_kernel::catalogue::{self, Denied, Service};
use agilekit_kernel::ids::OnboardingId;
use agilekit_kernel::{onboarding, tenancy};

use crate::both_engines;
use crate::helpers::*;
use crate::orgs::{location, mails_to, reset_secret, roles_of};

/// A company codice fiscale with the right check digit after `first10`.
fn company_code(first10: &str) -> String {
    let d: Vec<u32> = first10.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first10}{}", (10 - (x + y) % 10) % 10)
}

fn join_form<'a>(
    org: &'a str,
    ipa: &'a str,
    tax: &'a str,
    contact: &'a str,
    services: &[&'a str],
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("org_name", org),
        ("ipa_code", ipa),
        ("tax_code", tax),
        ("pec", "protocollo@pec.ente.example"),
        ("contact_name", "Laura Referente"),
        ("contact_email", contact),
    ];
    f.extend(services.iter().map(|s| ("services", *s)));
    f
}

/// Files a valid request through the public form and returns its id.
async fn file_request(
    app: &TestApp,
    org: &str,
    ipa: &str,
    tax: &str,
    contact: &str,
    services: &[&str],
) -> OnboardingId {
    let r = app.client().post(app.at("/join")).form(&join_form(org, ipa, tax, contact, services)).send().await.unwrap();
    assert_eq!(r.status(), 303, "request filed");
    let loc = location(&r);
    loc.strip_prefix("/join/thanks?ref=").expect("thanks page").parse().expect("a reference")
}

both_engines!(only_platform_admins_reach_the_operator_pages, |app| async move {
    let c = app.login("admin@regione.example").await;
    for path in ["/admin/orgs", "/admin/orgs/new", "/admin/onboarding", "/admin/catalogue"] {
        let r = c.get(app.at(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
    let region = app.org_id("r_lombar").await;
    let posts = [
        (
            "/admin/orgs/new".to_owned(),
            vec![("name", "X"), ("kind", "region"), ("ipa_code", "x_x"), ("tax_code", "80050050154")],
        ),
        (
            format!("/admin/orgs/{region}/edit"),
            vec![("name", "Presa"), ("kind", "region"), ("ipa_code", "r_lombar"), ("tax_code", "80050050154")],
        ),
        ("/admin/catalogue/meetings".to_owned(), vec![("available", "false")]),
        (format!("/admin/onboarding/{}/reject", OnboardingId::new()), vec![("review_note", "no")]),
    ];
    for (path, form) in &posts {
        assert_eq!(c.post(app.at(path)).form(form).send().await.unwrap().status(), 403, "POST {path}");
    }
    assert_eq!(tenancy::get(&app.db, region).await.unwrap().name, "Regione Lombardia");
    assert!(catalogue::services(&app.db).await.unwrap().iter().all(|s| s.available));
    // Not signed in: to the login page and back.
    let r = app.client().get(app.at("/admin/orgs")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login?next="));
    app
});

both_engines!(the_operator_lists_and_creates_organisations, |app| async move {
    let c = app.login("operatore@aria.example").await;
    let r = c.get(app.at("/admin/orgs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(
        body.matches("<ul ").count() + body.matches("<ul>").count(),
        body.matches("</ul>").count(),
        "nested lists are closed"
    );
    assert_eq!(
        body.matches("<li ").count() + body.matches("<li>").count(),
        body.matches("</li>").count(),
        "list items are closed"
    );
    let region_at = body.find("Regione Lombardia</a>").expect("region listed");
    let arpa_at = body.find("ARPA Lombardia</a>").expect("ARPA listed");
    assert!(region_at < arpa_at && body[region_at..arpa_at].contains("<ul>"), "ARPA nested under the region");
    assert!(
        body.contains("Comune di Brescia") && body.contains(r#"action="/admin/orgs/new""#),
        "create form on the list"
    );

    let good_tax = company_code("0031845016");
    // A wrong check digit: field error, every value kept.
    let r = c
        .post(app.at("/admin/orgs/new"))
        .form(&[
            ("name", "Comune di Bergamo"),
            ("kind", "local_authority"),
            ("ipa_code", "c_a794"),
            ("tax_code", "12345678901"),
            ("pec", "protocollo@pec.comune.bergamo.it"),
            ("parent_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    for kept in [
        r#"value="Comune di Bergamo""#,
        r#"value="c_a794""#,
        r#"value="12345678901""#,
        r#"value="protocollo@pec.comune.bergamo.it""#,
        r#"<option value="local_authority" selected>"#,
    ] {
        assert!(body.contains(kept), "kept: {kept}");
    }
    assert!(body.contains("carattere di controllo errato") && body.contains(r##"href="#f-tax_code""##));
    // An IPA code already in use.
    let r = c
        .post(app.at("/admin/orgs/new"))
        .form(&[
            ("name", "Doppione"),
            ("kind", "local_authority"),
            ("ipa_code", "r_lombar"),
            ("tax_code", good_tax.as_str()),
            ("pec", ""),
            ("parent_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("già in uso") && body.contains(r#"id="f-ipa_code-error""#));
    assert!(tenancy::list(&app.db).await.unwrap().iter().all(|o| o.name != "Doppione"));
    // A good one, under the region.
    let region = app.org_id("r_lombar").await;
    let r = c
        .post(app.at("/admin/orgs/new"))
        .form(&[
            ("name", "Comune di Bergamo"),
            ("kind", "local_authority"),
            ("ipa_code", "C_A794"),
            ("tax_code", good_tax.as_str()),
            ("pec", ""),
            ("parent_id", region.to_string().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/orgs?done=created");
    let made = app.org_id("c_a794").await;
    let o = tenancy::get(&app.db, made).await.unwrap();
    assert_eq!((o.name.as_str(), o.parent_id, o.pec), ("Comune di Bergamo", Some(region), None));
    let body = c.get(app.at("/admin/orgs?done=created")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Organizzazione creata") && body.contains("Comune di Bergamo"));
    app
});

both_engines!(editing_refuses_a_parent_cycle_and_saves_good_changes, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let c = app.login("operatore@aria.example").await;
    let r = c.get(app.at(&format!("/admin/orgs/{region}/edit"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"value="Regione Lombardia""#) && body.contains(r#"<option value="region" selected>"#));
    assert!(!body.contains(&format!(r#"<option value="{region}""#)), "not its own parent");
    let o = tenancy::get(&app.db, region).await.unwrap();
    let pec = o.pec.clone().unwrap_or_default();
    let form = |name: &'static str, parent: String| {
        vec![
            ("name", name.to_owned()),
            ("kind", "region".to_owned()),
            ("ipa_code", o.ipa_code.clone()),
            ("tax_code", o.tax_code.clone()),
            ("pec", pec.clone()),
            ("parent_id", parent),
        ]
    };
    let r = c
        .post(app.at(&format!("/admin/orgs/{region}/edit")))
        .form(&form("Regione Lombardia", arpa.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"id="f-parent_id-error""#) && body.contains("sotto sé stessa"));
    assert!(body.contains(&format!(r#"<option value="{arpa}" selected>"#)), "the chosen parent is kept");
    assert_eq!(tenancy::get(&app.db, region).await.unwrap().parent_id, None);
    let r = c
        .post(app.at(&format!("/admin/orgs/{}/edit", uuid::Uuid::now_v7())))
        .form(&form("X", String::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(c.get(app.at("/admin/orgs/nope/edit")).send().await.unwrap().status(), 404);
    let r = c
        .post(app.at(&format!("/admin/orgs/{region}/edit")))
        .form(&form("Regione Lombardia — Giunta", String::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(tenancy::get(&app.db, region).await.unwrap().name, "Regione Lombardia — Giunta");
    app
});

both_engines!(onboarding_from_the_public_form_to_a_working_org_admin, |app| async move {
    let public = app.client();
    let r = public.get(app.at("/join")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<fieldset") && body.contains("<legend"), "services are a fieldset with a legend");
    assert!(body.contains(r#"type="checkbox" name="services" value="remote_access""#));
    // Bad input: 422, everything typed and ticked is kept.
    let contact = "laura@comune.cremona.example";
    let r = public
        .post(app.at("/join"))
        .form(&join_form("Comune di Cremona", "c_d150", "123", contact, &["remote_access", "learning"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    for kept in [
        r#"value="Comune di Cremona""#,
        r#"value="c_d150""#,
        r#"value="123""#,
        &format!(r#"value="{contact}""#),
        r#"value="Laura Referente""#,
        r#"value="remote_access" checked"#,
        r#"value="learning" checked"#,
    ] {
        assert!(body.contains(kept), "kept: {kept}");
    }
    assert!(!body.contains(r#"value="meetings" checked"#));
    assert!(body.contains(r#"id="f-tax_code-error""#));
    let tax = company_code("0029796019");
    let r = public
        .post(app.at("/join"))
        .form(&join_form("Comune di Cremona", "c_d150", &tax, contact, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "at least one service");
    assert!(r.text().await.unwrap().contains(r#"id="f-services-error""#));
    assert!(onboarding::list(&app.db, None).await.unwrap().is_empty());

    let id = file_request(&app, "Comune di Cremona", "c_d150", &tax, contact, &["remote_access", "learning"]).await;
    let body = public.get(app.at(&format!("/join/thanks?ref={id}"))).send().await.unwrap().text().await.unwrap();
    assert!(body.contains(&id.to_string()) && body.contains("Richiesta ricevuta"));
    assert_eq!(public.get(app.at("/join/thanks?ref=nope")).send().await.unwrap().status(), 404);
    assert_eq!(onboarding::get(&app.db, id).await.unwrap().state, "pending");
    assert_eq!(mails_to(&app, contact).await.len(), 1, "receipt mailed");

    // The operator sees it pending, first, and approves it under the region.
    let op = app.login("operatore@aria.example").await;
    let body = op.get(app.at("/admin/onboarding")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Comune di Cremona") && body.contains("Da esaminare"));
    assert!(body.contains(&format!(r#"action="/admin/onboarding/{id}/approve""#)));
    let r = op
        .post(app.at(&format!("/admin/onboarding/{id}/approve")))
        .form(&[("parent_id", "not-an-id")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains(&format!(r#"id="f-parent_id-{id}-error""#)));
    let region = app.org_id("r_lombar").await;
    let r = op
        .post(app.at(&format!("/admin/onboarding/{id}/approve")))
        .form(&[("parent_id", region.to_string().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/onboarding?done=approved");
    let req = onboarding::get(&app.db, id).await.unwrap();
    assert_eq!(req.state, "activated");
    let org = app.org_id("c_d150").await;
    assert_eq!(req.org_id, Some(org));
    assert_eq!(tenancy::get(&app.db, org).await.unwrap().parent_id, Some(region));
    for s in [Service::RemoteAccess, Service::Learning] {
        let subs = catalogue::subscriptions(&app.db, org).await.unwrap();
        assert!(
            subs.iter().any(|v| v.subscription.service_key == s.key() && v.subscription.state == "active"),
            "{s:?} active"
        );
    }
    let acc = app.account_id(contact).await;
    assert_eq!(roles_of(&app, org, acc).await, vec!["org_admin"]);
    let mails = mails_to(&app, contact).await;
    assert_eq!(mails.len(), 2);
    let secret = reset_secret(&mails[1].text).expect("a first-password link");

    // The link works: the contact chooses a password, signs in and administers the new organisation.
    assert_eq!(public.get(app.at(&format!("/password/reset/{secret}"))).send().await.unwrap().status(), 200);
    let pw = "una-password-robusta-2026";
    let r = public
        .post(app.at(&format!("/password/reset/{secret}")))
        .form(&[("password", pw), ("password_confirm", pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "password set through the link");
    let me = app.client();
    let r = me.post(app.at("/login")).form(&[("email", contact), ("password", pw)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = me.get(app.at(&format!("/orgs/{org}/members"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Laura Referente"));

    // Approving twice: a conflict, and nothing new.
    let r =
        op.post(app.at(&format!("/admin/onboarding/{id}/approve"))).form(&[("parent_id", "")]).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("già stata esaminata"));
    assert_eq!(tenancy::list(&app.db).await.unwrap().iter().filter(|o| o.ipa_code == "c_d150").count(), 1);
    app
});

both_engines!(rejection_needs_a_reason_and_mails_it, |app| async move {
    let contact = "ufficio@ente.example";
    let id =
        file_request(&app, "Ente Privato S.r.l.", "ente_priv", &company_code("0123456789"), contact, &["grants"]).await;
    let op = app.login("operatore@aria.example").await;
    let r = op
        .post(app.at(&format!("/admin/onboarding/{id}/reject")))
        .form(&[("review_note", "   ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!(r#"id="f-review_note-{id}-error""#)) && body.contains("campo obbligatorio"));
    assert_eq!(onboarding::get(&app.db, id).await.unwrap().state, "pending");
    let r = op
        .post(app.at(&format!("/admin/onboarding/{id}/reject")))
        .form(&[("review_note", "Non è una pubblica amministrazione.")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let req = onboarding::get(&app.db, id).await.unwrap();
    assert_eq!(req.state, "rejected");
    assert_eq!(req.review_note.as_deref(), Some("Non è una pubblica amministrazione."));
    let mails = mails_to(&app, contact).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].text.contains("Non è una pubblica amministrazione."));
    let body = op.get(app.at("/admin/onboarding")).send().await.unwrap().text().await.unwrap();
    assert!(
        body.contains("Respinta") && !body.contains(&format!("/admin/onboarding/{id}/reject")),
        "no forms on a reviewed request"
    );
    let r =
        op.post(app.at(&format!("/admin/onboarding/{id}/approve"))).form(&[("parent_id", "")]).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(tenancy::list(&app.db).await.unwrap().iter().all(|o| o.ipa_code != "ente_priv"));
    app
});

both_engines!(withdrawing_a_service_from_the_catalogue_makes_it_unavailable, |app| async move {
    let region = app.org_id("r_lombar").await;
    let manager = app.account_id("manager@regione.example").await;
    assert!(catalogue::entitlement(&app.db, manager, region, Service::Meetings).await.unwrap().is_ok());
    let op = app.login("operatore@aria.example").await;
    let body = op.get(app.at("/admin/catalogue")).send().await.unwrap().text().await.unwrap();
    // Meetings are active in the region and in ARPA.
    let row = &body[body.find("Riunioni e videoconferenze").expect("meetings row")..];
    assert!(row[..row.find("</tr>").unwrap()].contains("<td>2</td>"), "two organisations have meetings active");
    let r = op.post(app.at("/admin/catalogue/meetings")).form(&[("available", "false")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        catalogue::entitlement(&app.db, manager, region, Service::Meetings).await.unwrap(),
        Err(Denied::Unavailable)
    );
    let body = op.get(app.at("/admin/catalogue")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Rendi disponibile"));
    let body = app.client().get(app.at("/join")).send().await.unwrap().text().await.unwrap();
    assert!(!body.contains(r#"value="meetings""#), "a withdrawn service is not offered to new members");
    assert_eq!(
        op.post(app.at("/admin/catalogue/teleport")).form(&[("available", "false")]).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        op.post(app.at("/admin/catalogue/meetings")).form(&[("available", "maybe")]).send().await.unwrap().status(),
        422
    );
    let r = op.post(app.at("/admin/catalogue/meetings")).form(&[("available", "true")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(catalogue::entitlement(&app.db, manager, region, Service::Meetings).await.unwrap().is_ok());
    app
});

both_engines!(the_public_form_is_throttled_per_address, |app| async move {
    let c = app.client();
    let form = join_form("Ente Insistente", "ente_ins", "1", "a@ente.example", &["helpdesk"]);
    for i in 0..20 {
        let r = c.post(app.at("/join")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 422, "submission {i} is answered");
    }
    let r = c.post(app.at("/join")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let body = r.text().await.unwrap();
    assert!(body.contains("Troppe richieste") && body.contains(r#"value="Ente Insistente""#));
    // A good request from the same address waits too.
    let good = join_form("Ente Paziente", "ente_paz", "", "b@ente.example", &["helpdesk"]);
    let tax = company_code("0555555555");
    let good: Vec<(&str, &str)> =
        good.into_iter().map(|(k, v)| if k == "tax_code" { (k, tax.as_str()) } else { (k, v) }).collect();
    assert_eq!(c.post(app.at("/join")).form(&good).send().await.unwrap().status(), 429);
    assert!(onboarding::list(&app.db, None).await.unwrap().is_empty());
    app
});
