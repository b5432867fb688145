//! The shell: sign in and out, language, organisation switch, error pages, operations endpoints.

use crate::both_engines;
use crate::helpers::*;

both_engines!(login_then_home_shows_the_user_and_logout_ends_the_session, |app| async move {
    let c = app.login("dipendente@regione.example").await;
    let home = c.get(app.at("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["cache-control"], "no-store");
    let body = home.text().await.unwrap();
    assert!(body.contains("Sara Dipendente"), "home shows the user");
    assert!(body.contains("Regione Lombardia"));
    let r = c.post(app.at("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let body = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(!body.contains("Sara Dipendente"));
    app
});

both_engines!(wrong_password_keeps_the_email_and_says_why, |app| async move {
    let c = app.client();
    let r = c.post(app.at("/login")).form(&[("email", "dipendente@regione.example"), ("password", "nope-nope-nope")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(body.contains("value=\"dipendente@regione.example\""), "the email typed is kept");
    assert!(body.contains("Email o password non corretti"));
    let r = c.post(app.at("/login")).form(&[("email", ""), ("password", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("aria-invalid=\"true\""), "field-level errors are marked");
    app
});

both_engines!(five_failures_lock_the_account_even_for_the_right_password, |app| async move {
    let c = app.client();
    for _ in 0..5 {
        c.post(app.at("/login")).form(&[("email", "hr@regione.example"), ("password", "wrong-password")]).send().await.unwrap();
    }
    let r = c.post(app.at("/login")).form(&[("email", "hr@regione.example"), ("password", DEMO_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Another account from the same address is not locked out by it.
    let r = c.post(app.at("/login")).form(&[("email", "manager@regione.example"), ("password", DEMO_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    app
});

both_engines!(cross_site_posts_are_refused, |app| async move {
    let evil = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = evil
        .post(app.at("/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "dipendente@regione.example"), ("password", DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = evil.post(app.at("/login")).header("sec-fetch-site", "cross-site").form(&[("email", "x")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    app
});

both_engines!(language_follows_accept_language_and_the_switch, |app| async move {
    let c = app.client();
    let body = c.get(app.at("/login")).header("accept-language", "en-GB,en;q=0.9").send().await.unwrap().text().await.unwrap();
    assert!(body.contains("<html lang=\"en\">") && body.contains("Sign in"));
    let r = c.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/login")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let body = c.get(app.at("/login")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("<html lang=\"en\">"), "the lang cookie wins over the default");
    // Signed in, the choice is stored on the account.
    let c = app.login("manager@regione.example").await;
    c.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/")]).send().await.unwrap();
    let acc = agilekit_kernel::identity::find_by_email(&app.db, "manager@regione.example").await.unwrap().unwrap();
    assert_eq!(acc.locale.as_deref(), Some("en"));
    app
});

both_engines!(organisation_switch_only_to_own_organisations, |app| async move {
    let c = app.login("admin@regione.example").await;
    let arpa = app.org_id("arpa_lom").await;
    let body = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("id=\"org-switch\""), "two organisations: the switcher shows");
    let r = c.post(app.at("/session/org")).form(&[("org_id", arpa.to_string().as_str()), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let body = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Stai lavorando per: ARPA Lombardia"));
    let town = app.org_id("c_b157").await;
    let r = c.post(app.at("/session/org")).form(&[("org_id", town.to_string().as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 404, "not a member: not found");
    app
});

both_engines!(unknown_pages_and_api_routes_answer_404_in_their_own_format, |app| async move {
    let c = app.client();
    let r = c.get(app.at("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let r = c.get(app.at("/api/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    app
});

both_engines!(health_readiness_and_metrics, |app| async move {
    let c = app.client();
    assert_eq!(c.get(app.at("/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    assert_eq!(c.get(app.at("/readyz")).send().await.unwrap().status(), 200);
    let r = c.get(app.at("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let m = c.get(app.at("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("agilekit_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} "), "{m}");
    assert!(m.contains("agilekit_http_request_duration_seconds_bucket{route=\"/healthz\""));
    assert!(m.contains("agilekit_outbox_depth{kind=\"mail\"}"));
    app
});

both_engines!(bodies_over_the_limit_get_413, |app| async move {
    let c = app.client();
    let big = "x".repeat(2 * 1024 * 1024);
    let r = c.post(app.at("/login")).header("content-type", "application/x-www-form-urlencoded").body(format!("email={big}")).send().await.unwrap();
    assert_eq!(r.status(), 413);
    app
});

both_engines!(static_assets_are_embedded_and_cacheable, |app| async move {
    let c = app.client();
    let r = c.get(app.at("/static/bi/2.18.3/css/bootstrap-italia.min.css")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(r.text().await.unwrap().len() > 100_000);
    let r = c.get(app.at("/static/bi/2.18.3/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-regular.woff2")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app
});

both_engines!(nul_characters_are_refused_before_any_handler, |app| async move {
    let c = app.client();
    let r = c.post(app.at("/login")).header("content-type", "application/x-www-form-urlencoded").body("email=a%00b&password=x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<html"), "an HTML error page");
    let r = c.get(app.at("/login?next=%00")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A control character inside a name is a field error, not a 500.
    let c = app.login("admin@regione.example").await;
    let r = c.post(app.at("/account/profile")).form(&[("display_name", "Marco\u{7}"), ("tax_code", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    app
});

both_engines!(a_successful_login_forgives_earlier_failures, |app| async move {
    let c = app.client();
    let fail = || c.post(app.at("/login")).form(&[("email", "formatore@regione.example"), ("password", "wrong-password")]).send();
    for _ in 0..4 {
        assert_eq!(fail().await.unwrap().status(), 401);
    }
    let r = c.post(app.at("/login")).form(&[("email", "formatore@regione.example"), ("password", DEMO_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // Had the four failures stayed on record, the fifth below would lock the account.
    for _ in 0..4 {
        assert_eq!(fail().await.unwrap().status(), 401);
    }
    let r = app.client().post(app.at("/login")).form(&[("email", "formatore@regione.example"), ("password", DEMO_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    app
});
