//! The public pages of funding calls and the companies' pages, on both engines: anyone reads the published calls
//! (never a draft) with their bands, categories and FAQ, and the apply form shows only to a signed-in person with a
//! company; a company's registration names every bad field beside it and in the summary and keeps what was typed;
//! edit, delegation, the last owner's refusal, declared aid; another person's company is a 404 on every route with
//! nothing audited; a cross-site form is refused.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

fn instant(days_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days_from_now);
    t.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A call of the region, with a title of this test's own, opening `opens` days from now.
fn avviso(title: &str, opens: i64) -> Value {
    json!({
        "title": title, "summary": "Contributi alle imprese lombarde per piani di smart working.",
        "body": "## Finalità\nSostenere i piani aziendali di smart working.", "budget_cents": 4_500_000_00_i64,
        "mode": "sportello",
        "grant_rule": {"kind": "bands", "bands": [
            {"min_employees": 3, "max_employees": 10, "amount": 750_000},
            {"min_employees": 11, "max_employees": 20, "amount": 1_050_000},
            {"min_employees": 21, "max_employees": 30, "amount": 1_500_000},
            {"min_employees": 31, "max_employees": null, "amount": 2_250_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"},
                       {"code": "strumenti", "label": "Strumenti tecnologici", "max_share_bp": 3333}],
        "eligibility": {"min_employees": 3, "excluded_sectors": ["01", "64.19"], "site_region": "03"},
        "required_attachments": [{"code": "piano", "label": "Piano di smart working"}],
        "opens_at": instant(opens), "closes_at": instant(opens + 30), "de_minimis": true
    })
}

/// A published call with a FAQ and a draft, both of the region; their ids.

/// The company pages, each tried with another person's company below; `isolation.rs` reads this list to check that
/// every route is covered.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/companies/{company}", ""),
    ("POST", "/companies/{company}", ""),
    ("POST", "/companies/{company}/delegates", ""),
    ("POST", "/companies/{company}/representatives/{account}/remove", ""),
    ("POST", "/companies/{company}/aid", ""),
    ("POST", "/companies/{company}/aid/{aid}/delete", ""),
];

/// Pages of nobody in particular: the published calls (anyone), one's own companies and the registration form.
pub const UNSCOPED_ROUTES: &[&str] = &["/calls", "/calls/{call}", "/calls/{call}/documents/{document}", "/companies", "/companies/new"];

async fn calls(app: &TestApp) -> (String, String) {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let base = format!("/api/v1/orgs/{region}/calls");
    let published = api_expect(app, &admin, "POST", &base, Some(avviso("Avviso pagine pubbliche 2027", 10)), 201).await["id"].as_str().unwrap().to_owned();
    api_expect(app, &admin, "POST", &format!("{base}/{published}/publish"), None, 200).await;
    api_expect(app, &admin, "POST", &format!("{base}/{published}/faqs"),
        Some(json!({"question": "Chi può partecipare alle pagine?", "answer": "Le imprese con almeno 3 dipendenti."})), 201).await;
    let draft = api_expect(app, &admin, "POST", &base, Some(avviso("Bozza riservata 2027", 20)), 201).await["id"].as_str().unwrap().to_owned();
    (published, draft)
}

fn company(piva: &str) -> Value {
    json!({
        "name": "Pagine Agili S.r.l.", "partita_iva": piva, "pec": "pagineagili@pec.example.it",
        "legal_rep_name": "Mario Rossi", "legal_rep_tax_code": "RSSMRA85T10A562S", "employees": 12,
        "sector": "62.01.00", "site_regions": ["03"], "address": "Via Roma 1, Milano"
    })
}

/// The form of a valid company, as a browser sends it.
fn company_form(piva: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", "Pagine Agili S.r.l.".into()),
        ("partita_iva", piva.into()),
        ("tax_code", String::new()),
        ("legal_rep_name", "Mario Rossi".into()),
        ("legal_rep_tax_code", "RSSMRA85T10A562S".into()),
        ("pec", "pagineagili@pec.example.it".into()),
        ("employees", "12".into()),
        ("sector", "62.01.00".into()),
        ("address", "Via Roma 1, Milano".into()),
        ("site_regions", "03".into()),
        ("site_regions", "05".into()),
    ]
}

async fn get(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.expect("get");
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

async fn post(app: &TestApp, c: &Client, path: &str, form: &[(&str, String)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(form).send().await.expect("post");
    let s = r.status().as_u16();
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (s, loc, r.text().await.unwrap_or_default())
}

/// The field's error is beside it (tied by aria-describedby) and linked from the summary.
fn assert_field_error(page: &str, field: &str, text: &str) {
    let id = format!("f-{field}");
    let beside = format!("id=\"{id}-error\">{text}");
    assert!(page.contains(&beside), "{field}: no error `{text}` beside the field");
    assert!(page.contains(&format!("href=\"#{id}\"")), "{field}: not in the summary");
    let summary = page.split("id=\"error-summary\"").nth(1).unwrap_or_default().split("</div>").next().unwrap_or_default();
    assert!(summary.contains(text), "{field}: the summary does not say `{text}`");
}

both_engines!(anyone_reads_published_calls_and_the_apply_form_needs_a_company, |app| async move {
    let (published, draft) = calls(&app).await;
    let anyone = app.client();
    let (s, list) = get(&app, &anyone, "/calls").await;
    assert_eq!(s, 200);
    assert!(list.contains(&format!("href=\"/calls/{published}\"")) && list.contains("Avviso pagine pubbliche 2027"));
    assert!(!list.contains(&draft) && !list.contains("Bozza riservata 2027"), "a draft is listed");
    assert!(list.contains("In apertura") && list.contains("apre tra 10 giorni"), "the upcoming group and its countdown");
    assert!(list.contains("4.500.000,00 €") && list.contains("Regione Lombardia") && list.contains("A sportello"));

    let (s, page) = get(&app, &anyone, &format!("/calls/{published}")).await;
    assert_eq!(s, 200);
    for text in ["7.500,00 €", "10.500,00 €", "15.000,00 €", "22.500,00 €", "31 e oltre", "Consulenza e formazione",
        "Strumenti tecnologici (al massimo il 33,33 % delle spese ammissibili)", "Almeno 3 dipendenti", "01, 64.19",
        "Una sede operativa in Lombardia", "Piano di smart working", "2023/2831", "Chi può partecipare alle pagine?",
        "Le imprese con almeno 3 dipendenti.", "Finalità"] {
        assert!(page.contains(text), "the call's page lacks `{text}`");
    }
    // Signed out: a sign-in link that comes back here, no form.
    assert!(page.contains(&format!("href=\"/login?next=%2Fcalls%2F{published}\"")));
    assert!(!page.contains("/apply\""));

    // A call that grants a share of the expenses says the share and the cap.
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let mut share = avviso("Avviso quota delle spese 2027", 12);
    share["grant_rule"] = json!({"kind": "share", "basis_points": 5000, "cap": 2_000_000});
    let share_id = api_expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(share), 201).await["id"].as_str().unwrap().to_owned();
    api_expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{share_id}/publish"), None, 200).await;
    let (s, page) = get(&app, &anyone, &format!("/calls/{share_id}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("50 % delle spese ammissibili, fino a un massimo di 20.000,00 €") && !page.contains("data-bands"), "the share rule");

    // A draft, an unknown call, a malformed id: 404.
    assert_eq!(get(&app, &anyone, &format!("/calls/{draft}")).await.0, 404);
    assert_eq!(get(&app, &anyone, &format!("/calls/{}", uuid::Uuid::now_v7())).await.0, 404);
    assert_eq!(get(&app, &anyone, "/calls/not-an-id").await.0, 404);
    // The draft is a 404 for its own organisation's members on the public page too.
    assert_eq!(get(&app, &admin, &format!("/calls/{draft}")).await.0, 404);

    // Signed in with no company: a link to register one, no form.
    let sara = app.login("dipendente@regione.example").await;
    let (_, page) = get(&app, &sara, &format!("/calls/{published}")).await;
    assert!(page.contains("href=\"/companies/new\""));
    assert!(!page.contains(&format!("action=\"/calls/{published}/apply\"")));

    // With a company: the form, with the company to choose, in both languages.
    let anna = app.login("cittadino@example.it").await;
    let co = api_expect(&app, &anna, "POST", "/api/v1/companies", Some(company("02468135799")), 201).await;
    let co_id = co["id"].as_str().unwrap();
    let r = anna.get(app.at(&format!("/calls/{published}"))).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store", "a signed-in page is never cached");
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("<form method=\"post\" action=\"/calls/{published}/apply\">")));
    assert!(page.contains("<select id=\"apply-company\" name=\"company\">"));
    assert!(page.contains(&format!("<option value=\"{co_id}\">Pagine Agili S.r.l. (02468135799)</option>")));
    assert!(page.contains("Compila la domanda"));
    let r = anna.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, page) = get(&app, &anna, &format!("/calls/{published}")).await;
    assert!(page.contains("Fill in the application") && page.contains("31 and more"), "English page");

    // The home page links the calls for everybody.
    assert!(get(&app, &anyone, "/").await.1.contains("href=\"/calls\""));
    assert!(get(&app, &anna, "/").await.1.contains("href=\"/calls\""));
    assert!(get(&app, &admin, "/").await.1.contains("href=\"/calls\""));
    app
});

both_engines!(registration_names_every_bad_field_keeps_what_was_typed_and_then_lists_the_company, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    // Signed out: to the sign-in page and back.
    let r = app.client().get(app.at("/companies/new")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fcompanies%2Fnew");
    assert_eq!(get(&app, &anna, "/companies/new").await.0, 200);

    let head = audit_head(&app.db).await;
    let bad: Vec<(&str, String)> = vec![
        ("name", " ".into()),
        ("partita_iva", "12345678901".into()),
        ("tax_code", "XYZ".into()),
        ("legal_rep_name", String::new()),
        ("legal_rep_tax_code", "RSSMRA85T10A562X".into()),
        ("pec", "non-una-pec".into()),
        ("employees", "dodici".into()),
        ("sector", "6".into()),
        ("address", "Via <Roma> 1".into()),
    ];
    let (s, _, page) = post(&app, &anna, "/companies/new", &bad).await;
    assert_eq!(s, 422);
    for (field, text) in [
        ("name", "campo obbligatorio"),
        ("partita_iva", "carattere di controllo errato"),
        ("tax_code", "formato non valido"),
        ("legal_rep_name", "campo obbligatorio"),
        ("legal_rep_tax_code", "carattere di controllo errato"),
        ("pec", "formato non valido"),
        ("employees", "formato non valido"),
        ("sector", "formato non valido"),
    ] {
        assert_field_error(&page, field, text);
    }
    // The regions' group: its error, and the summary's link to its first box.
    assert!(page.contains("id=\"f-site_regions-error\">campo obbligatorio") && page.contains("href=\"#f-site_regions-01\""));
    for kept in ["value=\"12345678901\"", "value=\"XYZ\"", "value=\"RSSMRA85T10A562X\"", "value=\"non-una-pec\"", "value=\"dodici\"", "value=\"6\"", "value=\"Via &#60;Roma&#62; 1\""] {
        assert!(page.contains(kept), "what was typed is lost: {kept}");
    }
    assert!(page.contains("aria-invalid=\"true\""));
    assert_eq!(audit_head(&app.db).await, head, "a refused form changes nothing");

    // Right: 303 to the company's page, listed as mine.
    let (s, loc, _) = post(&app, &anna, "/companies/new", &company_form("09753186429")).await;
    assert_eq!(s, 303);
    assert!(loc.starts_with("/companies/") && loc.ends_with("?done=registered"), "{loc}");
    let (s, page) = get(&app, &anna, &loc).await;
    assert_eq!(s, 200);
    assert!(page.contains("Impresa registrata.") && page.contains("Lombardia, Veneto"));
    let (_, list) = get(&app, &anna, "/companies").await;
    let id = loc.trim_start_matches("/companies/").split('?').next().unwrap().to_owned();
    assert!(list.contains(&format!("<tr data-company=\"{id}\"><th scope=\"row\"><a href=\"/companies/{id}\">Pagine Agili S.r.l.</a></th><td>09753186429</td><td>Titolare</td></tr>")), "{list}");

    // The same partita IVA by someone else: said on its field, what was typed kept.
    let sara = app.login("dipendente@regione.example").await;
    let (s, _, page) = post(&app, &sara, "/companies/new", &company_form("09753186429")).await;
    assert_eq!(s, 422);
    assert_field_error(&page, "partita_iva", "questa partita IVA è già registrata");
    assert!(page.contains("value=\"pagineagili@pec.example.it\"") && page.contains("value=\"05\" checked"));
    app
});

both_engines!(a_company_page_edits_delegates_and_declares_aid, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let sara = app.login("dipendente@regione.example").await;
    let id = api_expect(&app, &anna, "POST", "/api/v1/companies", Some(company("03141592653")), 201).await["id"].as_str().unwrap().to_owned();
    let at = format!("/companies/{id}");

    // Edit: refused with the value kept, then saved.
    let mut form = company_form("03141592653");
    form.iter_mut().find(|(k, _)| *k == "pec").unwrap().1 = "pec-sbagliata".into();
    form.iter_mut().find(|(k, _)| *k == "employees").unwrap().1 = "40".into();
    let (s, _, page) = post(&app, &anna, &at, &form).await;
    assert_eq!(s, 422);
    assert_field_error(&page, "pec", "formato non valido");
    assert!(page.contains("value=\"pec-sbagliata\"") && page.contains("value=\"40\""));
    form.iter_mut().find(|(k, _)| *k == "pec").unwrap().1 = "nuova@pec.example.it".into();
    let (s, loc, _) = post(&app, &anna, &at, &form).await;
    assert_eq!((s, loc.as_str()), (303, format!("{at}?done=saved").as_str()));
    let c = api_expect(&app, &anna, "GET", &format!("/api/v1{at}"), None, 200).await;
    assert_eq!((c["employees"].as_i64(), c["pec"].as_str()), (Some(40), Some("nuova@pec.example.it")));

    // Delegates: an unknown e-mail on its field, then Sara, who then sees the company as a delegate.
    let (s, _, page) = post(&app, &anna, &format!("{at}/delegates"), &[("email", "nessuno@example.it".into())]).await;
    assert_eq!(s, 422);
    assert_field_error(&page, "email", "nessun account con questa e-mail");
    assert!(page.contains("value=\"nessuno@example.it\""));
    let (s, _, _) = post(&app, &anna, &format!("{at}/delegates"), &[("email", "dipendente@regione.example".into())]).await;
    assert_eq!(s, 303);
    let (_, page) = get(&app, &anna, &at).await;
    assert!(page.contains("data-rep=\"dipendente@regione.example\""));
    let (_, list) = get(&app, &sara, "/companies").await;
    assert!(list.contains(&id) && list.contains("Delegato"));
    // A delegate gets no delegation form.
    let (s, page) = get(&app, &sara, &at).await;
    assert_eq!(s, 200);
    assert!(!page.contains(&format!("action=\"{at}/delegates\"")));

    // The last owner cannot leave: the page says so and nothing changes.
    let anna_id = app.account_id("cittadino@example.it").await;
    let head = audit_head(&app.db).await;
    let (s, _, page) = post(&app, &anna, &format!("{at}/representatives/{anna_id}/remove"), &[]).await;
    assert_eq!(s, 409);
    assert!(page.contains("data-rep-error>L&#39;unico titolare non può lasciare l&#39;impresa.") || page.contains("data-rep-error>L'unico titolare"), "{page}");
    assert_eq!(audit_head(&app.db).await, head);
    // The owner removes the delegate, who then meets a 404.
    let sara_id = app.account_id("dipendente@regione.example").await;
    let (s, _, _) = post(&app, &anna, &format!("{at}/representatives/{sara_id}/remove"), &[]).await;
    assert_eq!(s, 303);
    assert_eq!(get(&app, &sara, &at).await.0, 404);

    // Aid: every bad field named, what was typed kept; then one declared, counted, deleted.
    let bad: Vec<(&str, String)> = vec![("granted_on", "2099-01-01".into()), ("amount", "sette euro".into()), ("granting_body", " ".into()), ("description", "Voucher".into())];
    let (s, _, page) = post(&app, &anna, &format!("{at}/aid"), &bad).await;
    assert_eq!(s, 422);
    assert_field_error(&page, "granted_on", "la data non può essere futura");
    assert_field_error(&page, "amount", "non è un importo");
    assert_field_error(&page, "granting_body", "campo obbligatorio");
    assert!(page.contains("value=\"sette euro\"") && page.contains("value=\"Voucher\"") && page.contains("value=\"2099-01-01\""));
    let year_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(365)).date().to_string();
    let good: Vec<(&str, String)> = vec![("granted_on", year_ago), ("amount", "7.500,00".into()), ("granting_body", "Camera di commercio".into()), ("description", String::new())];
    let (s, _, _) = post(&app, &anna, &format!("{at}/aid"), &good).await;
    assert_eq!(s, 303);
    let (_, page) = get(&app, &anna, &at).await;
    assert!(page.contains("data-used>7.500,00 €") && page.contains("data-room>292.500,00 €") && page.contains("Camera di commercio"), "{page}");
    let aid = api_expect(&app, &anna, "GET", &format!("/api/v1{at}/aid"), None, 200).await;
    assert_eq!(aid["items"][0]["amount_cents"], 750_000);
    let aid_id = aid["items"][0]["id"].as_str().unwrap();
    let (s, _, _) = post(&app, &anna, &format!("{at}/aid/{aid_id}/delete"), &[]).await;
    assert_eq!(s, 303);
    let (_, page) = get(&app, &anna, &at).await;
    assert!(page.contains("Nessun aiuto dichiarato.") && page.contains("data-room>300.000,00 €"));
    app
});

both_engines!(another_persons_company_is_a_404_on_every_route_and_forms_need_our_origin, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let id = api_expect(&app, &anna, "POST", "/api/v1/companies", Some(company("02718281823")), 201).await["id"].as_str().unwrap().to_owned();
    let aid = api_expect(&app, &anna, "POST", &format!("/api/v1/companies/{id}/aid"),
        Some(json!({"granted_on": "2025-01-10", "amount_cents": 10_000, "granting_body": "Regione"})), 201).await;
    let aid_id = aid["id"].as_str().unwrap().to_owned();
    let anna_id = app.account_id("cittadino@example.it").await;
    let sara = app.login("dipendente@regione.example").await;
    let sara_id = app.account_id("dipendente@regione.example").await;
    let head = audit_head(&app.db).await;
    let (s, page) = get(&app, &sara, &format!("/companies/{id}")).await;
    assert_eq!(s, 404);
    assert!(!page.contains("Pagine Agili") && !page.contains("02718281823"), "a 404 leaks nothing");
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(get(&app, &anna, &format!("/companies/{unknown}")).await.0, 404);
    let company = company_form("02718281823");
    for (path, form) in [
        (format!("/companies/{id}"), company.clone()),
        (format!("/companies/{id}"), vec![("name", String::new())]),
        (format!("/companies/{id}/delegates"), vec![("email", "dipendente@regione.example".to_owned())]),
        (format!("/companies/{id}/representatives/{anna_id}/remove"), vec![]),
        (format!("/companies/{id}/representatives/{sara_id}/remove"), vec![]),
        (format!("/companies/{id}/aid"), vec![("granted_on", "2025-01-10".to_owned()), ("amount", "100".to_owned()), ("granting_body", "X".to_owned())]),
        (format!("/companies/{id}/aid"), vec![]),
        (format!("/companies/{id}/aid/{aid_id}/delete"), vec![]),
        (format!("/companies/{unknown}/aid/{aid_id}/delete"), vec![]),
    ] {
        let (s, _, page) = post(&app, &sara, &path, &form).await;
        assert_eq!(s, 404, "POST {path}");
        assert!(!page.contains("Pagine Agili"), "POST {path} leaks");
    }
    // And every route of the table, as isolation.rs knows them.
    for (m, path, _) in SCOPED_ROUTES {
        let path = path.replace("{company}", &id).replace("{account}", &anna_id.to_string()).replace("{aid}", &aid_id);
        let (s, page) = if *m == "GET" { get(&app, &sara, &path).await } else { let (s, _, p) = post(&app, &sara, &path, &[]).await; (s, p) };
        assert_eq!(s, 404, "{m} {path}");
        assert!(!page.contains("Pagine Agili"), "{m} {path} leaks");
    }
    assert_eq!(audit_head(&app.db).await, head, "nothing was changed or audited");
    assert_eq!(api_expect(&app, &anna, "GET", &format!("/api/v1/companies/{id}/aid"), None, 200).await["items"].as_array().unwrap().len(), 1);

    // A form from another site, or with no origin at all while carrying the session, is refused.
    let no_origin = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_origin.post(app.at("/login")).header("origin", app.url.as_str())
        .form(&[("email", "cittadino@example.it"), ("password", DEMO_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = no_origin.post(app.at("/companies/new")).form(&company_form("03141592653")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = no_origin.post(app.at(&format!("/companies/{id}/aid/{aid_id}/delete"))).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(audit_head(&app.db).await, head, "a refused cross-site form changes nothing");
    app
});

both_engines!(a_calls_documents_are_public_once_published_and_only_under_their_own_call, |app| async move {
    let (published, draft) = calls(&app).await;
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let add = |call: String, title: &'static str, data: &'static [u8]| {
        let admin = admin.clone();
        let url = app.at(&format!("/api/v1/orgs/{region}/calls/{call}/documents"));
        async move {
            let (ct, body) = crate::grants_applications::multipart(&[("title", title)], &[("file", "allegato.pdf", "application/pdf", data)]);
            let r = admin.post(url).header("content-type", ct).body(body).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 201);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let public_doc = add(published.clone(), "Allegato A pubblico", b"%PDF-1.4 allegato pubblico").await;
    let draft_doc = add(draft.clone(), "Allegato riservato", b"%PDF-1.4 allegato riservato").await;
    for who in [app.client(), app.login("cittadino@example.it").await] {
        // The published call's document: listed, with its size, and downloadable.
        let (s, page) = get(&app, &who, &format!("/calls/{published}")).await;
        assert_eq!(s, 200);
        assert!(page.contains("Allegato A pubblico") && page.contains("allegato.pdf, 26 B") && page.contains(&format!("/calls/{published}/documents/{public_doc}")), "{page}");
        let r = who.get(app.at(&format!("/calls/{published}/documents/{public_doc}"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["cache-control"], "private, no-store");
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-1.4 allegato pubblico");
        // A draft's document is nobody's business, nor is it reachable through a published call's path.
        for path in [format!("/calls/{draft}/documents/{draft_doc}"), format!("/calls/{published}/documents/{draft_doc}"), format!("/calls/{draft}/documents/{public_doc}"), format!("/calls/{published}/documents/nonsense")] {
            let (s, body) = get(&app, &who, &path).await;
            assert_eq!(s, 404, "{path}");
            assert!(!body.contains("riservato"), "{path} leaked");
        }
    }
    let v = api_expect(&app, &app.client(), "GET", &format!("/api/v1/calls/{published}"), None, 200).await;
    assert_eq!(v["documents"], json!([{"id": public_doc, "title": "Allegato A pubblico", "name": "allegato.pdf", "size": 26, "content_type": "application/pdf"}]));
    app
});
