//! The staff's pages of funding calls on both engines: the editor (every bad field refused beside itself and in the
//! summary, everything typed kept, rows added without JavaScript), publication with its confirmation, the rules
//! locked once open, FAQ, who may see what; the applications received as a page and CSV; the budget change (a cut below
//! the committed money refused, an increase draws the waiting list in protocol order, audited); open data snapshots
//! without personal data and safe for spreadsheets.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::grants_applications::{complete, multipart, open_application, published_call, scalar, sha_hex};
use crate::helpers::*;

const ADMIN: &str = "admin@regione.example";

/// The staff's call routes (pages and the API's budget and open-data actions), each tried by another
/// organisation's administrator below; `isolation.rs` reads this list to check that every route is covered.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/orgs/{org}/calls", ""),
    ("GET", "/orgs/{org}/calls/new", ""),
    ("POST", "/orgs/{org}/calls/new", ""),
    ("GET", "/orgs/{org}/calls/{call}", ""),
    ("POST", "/orgs/{org}/calls/{call}", ""),
    ("GET", "/orgs/{org}/calls/{call}/publish", ""),
    ("POST", "/orgs/{org}/calls/{call}/publish", ""),
    ("POST", "/orgs/{org}/calls/{call}/faqs", ""),
    ("POST", "/orgs/{org}/calls/{call}/faqs/{faq}", ""),
    ("POST", "/orgs/{org}/calls/{call}/faqs/{faq}/delete", ""),
    ("POST", "/orgs/{org}/calls/{call}/budget", ""),
    ("POST", "/orgs/{org}/calls/{call}/opendata", ""),
    ("GET", "/orgs/{org}/calls/{call}/applications", ""),
    ("GET", "/orgs/{org}/calls/{call}/applications.csv", ""),
    ("PUT", "/api/v1/orgs/{org}/calls/{call}/budget", r#"{"budget": "9.000.000,00"}"#),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/opendata", r#"{"list": "admitted"}"#),
    ("POST", "/orgs/{org}/calls/{call}/documents", ""),
    ("GET", "/orgs/{org}/calls/{call}/documents/{document}", ""),
    ("POST", "/orgs/{org}/calls/{call}/documents/{document}/delete", ""),
    ("POST", "/api/v1/orgs/{org}/calls/{call}/documents", r#"{"title": "Preso"}"#),
    ("DELETE", "/api/v1/orgs/{org}/calls/{call}/documents/{document}", ""),
];

/// The public open-data routes (no organisation or person: anyone reads what was published).
pub const UNSCOPED_ROUTES: &[&str] = &["/opendata", "/opendata/calls/{call}/{file}"];

async fn page(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn post(app: &TestApp, c: &Client, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    let loc = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

/// A partita IVA from a serial number, with its check digit.
fn piva(n: u32) -> String {
    let first = format!("{:010}", 1_000_000_000 + n);
    let d: Vec<u32> = first.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first}{}", (10 - (x + y) % 10) % 10)
}

async fn company_named(app: &TestApp, c: &Client, n: u32, name: &str) -> String {
    let body = json!({
        "name": name, "partita_iva": piva(n), "pec": format!("staff{n}@pec.example.it"),
        "legal_rep_name": "Mario Rossi", "legal_rep_tax_code": "RSSMRA85T10A562S", "employees": 12,
        "sector": "62.01.00", "site_regions": ["03"]
    });
    api_expect(app, c, "POST", "/api/v1/companies", Some(body), 201).await["id"].as_str().unwrap().to_owned()
}

fn rome_local(minutes_from_now: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes_from_now);
    let r = agilekit_kernel::clock::to_rome(t);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}", r.year(), r.month() as u8, r.day(), r.hour(), r.minute())
}

/// A good call as the editor's form sends it.
fn good_form(opens: &str, closes: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("rows.bands", "4"), ("rows.categories", "3"), ("rows.attachments", "2"), ("rows.criteria", "3"),
        ("title", "Avviso lavoro agile 2027"), ("summary", "Contributi alle imprese per piani di lavoro agile."),
        ("body", "## Finalità\nSostenere il lavoro agile."), ("budget", "4.500.000,00"), ("mode", "sportello"),
        ("grant_rule.kind", "bands"),
        ("grant_rule.bands.0.min_employees", "3"), ("grant_rule.bands.0.max_employees", "10"), ("grant_rule.bands.0.amount", "7.500,00"),
        ("grant_rule.bands.1.min_employees", "11"), ("grant_rule.bands.1.max_employees", ""), ("grant_rule.bands.1.amount", "10.500"),
        ("categories.0.code", "consulenza"), ("categories.0.label", "Consulenza e formazione"), ("categories.0.max_share_bp", ""),
        ("categories.1.code", "strumenti"), ("categories.1.label", "Strumenti tecnologici"), ("categories.1.max_share_bp", "33,33"),
        ("eligibility.min_employees", "3"), ("eligibility.max_employees", ""), ("eligibility.excluded_sectors", "01, 64.19"),
        ("eligibility.site_region", "03"),
        ("required_attachments.0.code", "piano"), ("required_attachments.0.label", "Piano di lavoro agile"),
        ("de_minimis", "1"), ("tie_breaks", ""), ("action", "save"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    f.push(("opens_at".into(), opens.into()));
    f.push(("closes_at".into(), closes.into()));
    f
}

fn set(form: &mut Vec<(String, String)>, k: &str, v: &str) {
    form.retain(|(x, _)| x != k);
    form.push((k.into(), v.into()));
}

async fn post_form(app: &TestApp, c: &Client, path: &str, form: &[(String, String)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    let loc = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

both_engines!(the_editor_names_every_bad_field_keeps_what_was_typed_and_saves_a_good_call, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    let (s, html) = page(&app, &admin, &format!("/orgs/{region}/calls/new")).await;
    assert_eq!(s, 200);
    assert!(html.contains(r#"name="grant_rule.bands.3.amount""#) && !html.contains(r#"name="grant_rule.bands.4.amount""#), "four band rows");

    // Everything wrong at once.
    let mut bad = good_form("domani", "");
    for (k, v) in [
        ("title", ""), ("budget", "tanti soldi"), ("mode", "lotteria"),
        ("grant_rule.bands.0.min_employees", "5"), ("grant_rule.bands.0.max_employees", "2"), ("grant_rule.bands.0.amount", "0"),
        // Row 2 left blank: row 3 is the API's band 1, and its errors come back on row 3.
        ("grant_rule.bands.1.min_employees", ""), ("grant_rule.bands.1.amount", ""),
        ("grant_rule.bands.2.min_employees", "molti"), ("grant_rule.bands.2.amount", "22.500"),
        ("categories.0.code", "B C"), ("categories.1.label", ""), ("categories.1.max_share_bp", "200"),
        ("eligibility.min_employees", "10"), ("eligibility.max_employees", "2"), ("eligibility.excluded_sectors", "01, x9"),
        ("eligibility.site_region", "99"), ("required_attachments.0.code", "Piano!"),
        ("criteria.0.code", "q"), ("criteria.0.label", "Qualità"), ("criteria.0.max_points", "dieci"), ("tie_breaks", "zeta"),
    ] {
        set(&mut bad, k, v);
    }
    let before = audit_head(&app.db).await;
    let (s, _, html) = post_form(&app, &admin, &format!("/orgs/{region}/calls/new"), &bad).await;
    assert_eq!(s, 422, "{html}");
    for id in [
        "f-title", "f-budget", "f-mode", "f-grant_rule-bands-0-max_employees", "f-grant_rule-bands-0-amount",
        "f-grant_rule-bands-2-min_employees", "f-categories-0-code", "f-categories-1-label", "f-categories-1-max_share_bp",
        "f-eligibility-max_employees", "f-eligibility-excluded_sectors", "f-eligibility-site_region", "f-required_attachments-0-code",
        "f-opens_at", "f-closes_at", "f-criteria-0-max_points", "f-tie_breaks",
    ] {
        assert!(html.contains(&format!(r#"id="{id}-error""#)), "{id}-error beside the field");
    }
    // The summary links to the fields.
    let summary = &html[html.find("error-summary").expect("summary")..];
    for anchor in ["#f-title", "#f-budget", "#f-mode-sportello", "#f-grant_rule-bands-2-min_employees", "#f-eligibility-excluded_sectors", "#f-opens_at", "#f-criteria-0-max_points"] {
        assert!(summary.contains(&format!(r#"href="{anchor}""#)), "{anchor} in the summary");
    }
    assert!(html.contains("x9: "), "the bad sector is named");
    // Everything typed is kept.
    for v in [r#"value="tanti soldi""#, r#"value="domani""#, r#"value="B C""#, r#"value="01, x9""#, r#"value="molti""#, r#"value="22.500""#, r#"value="dieci""#, r#"value="zeta""#, r#"value="Piano!""#, r#"value="200""#] {
        assert!(html.contains(v), "{v} kept");
    }
    assert_eq!(audit_head(&app.db).await, before, "nothing stored");

    // More rows, without saving: seven band rows now, what was typed still there.
    let mut more = bad.clone();
    set(&mut more, "action", "more");
    let (s, _, html) = post_form(&app, &admin, &format!("/orgs/{region}/calls/new"), &more).await;
    assert_eq!(s, 200);
    assert!(html.contains(r#"name="grant_rule.bands.6.amount""#) && html.contains(r#"value="tanti soldi""#));
    assert_eq!(audit_head(&app.db).await, before);

    // A good call: saved, then listed with its state.
    let (opens, closes) = (rome_local(60 * 24 * 30), rome_local(60 * 24 * 60));
    let (s, loc, text) = post_form(&app, &admin, &format!("/orgs/{region}/calls/new"), &good_form(&opens, &closes)).await;
    assert_eq!(s, 303, "{text}");
    let id = loc.split('/').nth(4).unwrap().split('?').next().unwrap().to_owned();
    let c = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{id}"), None, 200).await;
    assert_eq!(c["budget_cents"], 450_000_000_i64);
    assert_eq!(c["grant_rule"], json!({"kind": "bands", "bands": [
        {"min_employees": 3, "max_employees": 10, "amount": 750_000}, {"min_employees": 11, "max_employees": null, "amount": 1_050_000}]}));
    assert_eq!(c["categories"][1]["max_share_bp"], 3333);
    assert_eq!(c["eligibility"]["excluded_sectors"], json!(["01", "64.19"]));
    assert_eq!(c["required_attachments"][0]["code"], "piano");
    assert_eq!(c["phase"], "draft");
    let (s, html) = page(&app, &admin, &format!("/orgs/{region}/calls")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Avviso lavoro agile 2027") && html.contains(&format!("/orgs/{region}/calls/{id}")) && html.contains("Bozza"));
    // Its page shows it back as typed (Rome time, money as written in Italy).
    let (s, html) = page(&app, &admin, &format!("/orgs/{region}/calls/{id}?done=created")).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!(r#"value="{opens}""#)) && html.contains(r#"value="4.500.000,00""#) && html.contains(r#"value="33,33""#), "{html}");
    // Edited: a share rule now.
    let mut edit = good_form(&opens, &closes);
    for (k, v) in [("grant_rule.kind", "share"), ("grant_rule.basis_points", "50"), ("grant_rule.cap", "20.000")] {
        set(&mut edit, k, v);
    }
    let (s, loc, _) = post_form(&app, &admin, &format!("/orgs/{region}/calls/{id}"), &edit).await;
    assert_eq!((s, loc.as_str()), (303, format!("/orgs/{region}/calls/{id}?done=saved").as_str()));
    let c = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{id}"), None, 200).await;
    assert_eq!(c["grant_rule"], json!({"kind": "share", "basis_points": 5000, "cap": 2_000_000}));
    app
});

both_engines!(publication_locks_the_rules_once_open_and_the_faq_is_edited_on_the_page, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    // Opened a minute ago: created and published through the pages.
    let (opens, closes) = (rome_local(-1), rome_local(60 * 24));
    let (s, loc, _) = post_form(&app, &admin, &format!("/orgs/{region}/calls/new"), &good_form(&opens, &closes)).await;
    assert_eq!(s, 303);
    let id = loc.split('/').nth(4).unwrap().split('?').next().unwrap().to_owned();
    let call = format!("/orgs/{region}/calls/{id}");
    let (s, html) = page(&app, &admin, &call).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!(r#"href="{call}/publish""#)));
    let (s, html) = page(&app, &admin, &format!("{call}/publish")).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!(r#"action="{call}/publish""#)));
    let (s, loc, _) = post(&app, &admin, &format!("{call}/publish"), &[]).await;
    assert_eq!((s, loc), (303, format!("{call}?done=published")));
    let (s, _, _) = post(&app, &admin, &format!("{call}/publish"), &[]).await;
    assert_eq!(s, 409, "published once");
    // Open now: the form is disabled, and a change is refused with the service's reason, what was typed kept.
    let (s, html) = page(&app, &admin, &call).await;
    assert_eq!(s, 200);
    assert!(html.contains("<fieldset disabled>") && html.contains("Aperto"));
    let mut edit = good_form(&opens, &closes);
    set(&mut edit, "title", "Titolo cambiato dopo apertura");
    let before = audit_head(&app.db).await;
    let (s, _, html) = post_form(&app, &admin, &call, &edit).await;
    assert_eq!(s, 409, "{html}");
    assert!(html.contains(r#"id="conflict""#) && html.contains("il bando è aperto") && html.contains("Titolo cambiato dopo apertura"));
    assert_eq!(audit_head(&app.db).await, before);

    // FAQ: refused with the field named and the text kept; added; edited; deleted.
    let (s, _, html) = post(&app, &admin, &format!("{call}/faqs"), &[("faq-new.question", "Chi può partecipare?"), ("faq-new.answer", " ")]).await;
    assert_eq!(s, 422);
    assert!(html.contains(r#"id="f-faq-new-answer-error""#) && html.contains("Chi può partecipare?") && html.contains(r##"href="#f-faq-new-answer""##));
    let (s, _, _) = post(&app, &admin, &format!("{call}/faqs"), &[("faq-new.question", "Chi può partecipare?"), ("faq-new.answer", "Le imprese con sede in Lombardia.")]).await;
    assert_eq!(s, 303);
    let faqs = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{id}"), None, 200).await["faqs"].clone();
    assert_eq!(faqs[0]["answer"], "Le imprese con sede in Lombardia.");
    let faq = faqs[0]["id"].as_str().unwrap().to_owned();
    let (q, a) = (format!("faq-{faq}.question"), format!("faq-{faq}.answer"));
    let (s, _, html) = post(&app, &admin, &format!("{call}/faqs/{faq}"), &[(q.as_str(), ""), (a.as_str(), "Risposta nuova")]).await;
    assert_eq!(s, 422);
    assert!(html.contains(&format!(r#"id="f-faq-{faq}-question-error""#)) && html.contains("Risposta nuova"));
    let (s, _, _) = post(&app, &admin, &format!("{call}/faqs/{faq}"), &[(q.as_str(), "Chi partecipa?"), (a.as_str(), "Risposta nuova")]).await;
    assert_eq!(s, 303);
    let c = api_expect(&app, &admin, "GET", &format!("/api/v1/calls/{id}"), None, 200).await;
    assert_eq!((c["faqs"][0]["question"].as_str(), c["faqs"][0]["answer"].as_str()), (Some("Chi partecipa?"), Some("Risposta nuova")));
    let (s, _, _) = post(&app, &admin, &format!("{call}/faqs/{faq}/delete"), &[]).await;
    assert_eq!(s, 303);
    assert_eq!(api_expect(&app, &admin, "GET", &format!("/api/v1/calls/{id}"), None, 200).await["faqs"], json!([]));

    // Who may: a member who is not an administrator is refused; another organisation and strangers learn nothing.
    let employee = app.login("dipendente@regione.example").await;
    for path in [format!("/orgs/{region}/calls"), format!("/orgs/{region}/calls/new"), call.clone(), format!("{call}/applications")] {
        assert_eq!(page(&app, &employee, &path).await.0, 403, "{path}");
    }
    let (s, _, _) = post_form(&app, &employee, &format!("/orgs/{region}/calls/new"), &good_form(&opens, &closes)).await;
    assert_eq!(s, 403);
    let arpa_admin = app.login("admin@arpa.example").await;
    let arpa = app.org_id("arpa_lom").await;
    let before = audit_head(&app.db).await;
    for path in [call.clone(), format!("{call}/publish"), format!("{call}/applications"), format!("{call}/applications.csv")] {
        assert_eq!(page(&app, &arpa_admin, &path).await.0, 404, "{path}");
    }
    for path in [format!("{call}/faqs"), format!("{call}/budget"), format!("{call}/opendata"), call.clone()] {
        let (s, _, _) = post(&app, &arpa_admin, &path, &[("faq-new.question", "x"), ("faq-new.answer", "y"), ("budget_change", "1"), ("list", "admitted")]).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = page(&app, &arpa_admin, &format!("/orgs/{arpa}/calls/{id}")).await;
    assert!(s == 404 || s == 403, "ARPA has no grants service: {s}");
    assert_eq!(audit_head(&app.db).await, before);
    let anonymous = app.client();
    let r = anonymous.get(app.at(&call)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    app
});

both_engines!(applications_csv_budget_changes_and_open_data, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login(ADMIN).await;
    // Room for two grants of EUR 10,500; four submit.
    let (region, call_id) = published_call(&app, 21_000, -1).await;
    let names = ["=HYPERLINK(\"http://x.example\",\"premio\")", "Alfa, Beta & C. S.n.c.", "Gamma S.r.l.", "@Delta S.p.A."];
    let mut apps = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let k = company_named(&app, &anna, 7_100 + i as u32, name).await;
        let a = open_application(&app, &anna, &k, &call_id, complete()).await;
        let (s, r, text) = api_call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some(&format!("staff-{i}"))).await;
        assert_eq!(s, 200, "{text}");
        assert_eq!(r["protocol"], i as i64 + 1);
        apps.push((k, a));
    }
    let base = format!("/orgs/{region}/calls/{call_id}");
    // The page: protocol order, places, counts, committed against the budget; each row linked to its review.
    let evaluator = app.login("valutatore@regione.example").await;
    let (s, html) = page(&app, &evaluator, &format!("{base}/applications")).await;
    assert_eq!(s, 200, "evaluators read it too");
    assert!(html.contains(r#"id="count-total">4<"#) && html.contains(r#"id="count-admitted">2<"#) && html.contains(r#"id="count-waiting">2<"#));
    assert!(html.contains("21.000,00 € / 21.000,00 €"));
    let positions: Vec<usize> = ["Alfa, Beta &#38; C. S.n.c.", "Gamma S.r.l.", "@Delta S.p.A."].iter().map(|n| html.find(n).expect(n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "protocol order");
    assert!(html.contains(&format!("{base}/applications/{}", apps[0].1)));
    assert_eq!(html.matches("Ammessa").count(), 2 + 1, "two rows and the count's label");
    // The CSV: the same, safe for spreadsheets.
    let r = admin.get(app.at(&format!("{base}/applications.csv"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with('\u{feff}'));
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].starts_with("1,") && lines[1].contains(r#""'=HYPERLINK(""http://x.example"",""premio"")""#) && lines[1].ends_with(",10500.00,admitted,submitted"), "{}", lines[1]);
    assert!(lines[2].contains(r#""Alfa, Beta & C. S.n.c.""#));
    assert!(lines[4].starts_with("4,") && lines[4].contains(",'@Delta S.p.A.,") && lines[4].contains(",waiting,"), "{}", lines[4]);

    // Budget: a cut below the committed money is refused on the field (API and page), nothing changes.
    let api = format!("/api/v1/orgs/{region}/calls/{call_id}/budget");
    let before = audit_head(&app.db).await;
    let v = api_expect(&app, &admin, "PUT", &api, Some(json!({"budget": "10.000,00"})), 422).await;
    assert_eq!(field_errors(&v), vec![("budget".to_owned(), "below-committed".to_owned())]);
    let v = api_expect(&app, &admin, "PUT", &api, Some(json!({"budget": "dieci"})), 422).await;
    assert_eq!(field_errors(&v), vec![("budget".to_owned(), "not-an-amount".to_owned())]);
    let (s, _, html) = post(&app, &admin, &format!("{base}/budget"), &[("budget_change", "10.000,00")]).await;
    assert_eq!(s, 422);
    assert!(html.contains(r#"id="f-budget_change-error""#) && html.contains("21.000,00 €") && html.contains(r#"value="10.000,00""#));
    assert_eq!(audit_head(&app.db).await, before);
    let employee = app.login("dipendente@regione.example").await;
    api_expect(&app, &employee, "PUT", &api, Some(json!({"budget": 5_000_000})), 403).await;
    // An increase for one more: protocol 3 is admitted, 4 still waits; committed within the budget.
    let ch = api_expect(&app, &admin, "PUT", &api, Some(json!({"budget": "31.500,00"})), 200).await;
    assert_eq!((ch["budget_cents"].as_i64(), ch["committed_cents"].as_i64(), ch["drawn"].as_i64()), (Some(3_150_000), Some(3_150_000), Some(1)));
    // Through the page, in cents' worth of typing: room for the last one and some more.
    let (s, loc, _) = post(&app, &admin, &format!("{base}/budget"), &[("budget_change", "50.000")]).await;
    assert_eq!((s, loc), (303, format!("{base}?done=budget#budget")));
    let list = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}/applications"), None, 200).await;
    let places: Vec<String> = list.as_array().unwrap().iter().map(|s| s["receipt"]["place"].as_str().unwrap().to_owned()).collect();
    assert_eq!(places, ["admitted"; 4]);
    let c = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}"), None, 200).await;
    assert_eq!((c["budget_cents"].as_i64(), c["committed_cents"].as_i64()), (Some(5_000_000), Some(4_200_000)));
    // Audited with before and after.
    let audit: Vec<(Option<String>, Option<String>)> = match &app.db {
        agilekit_kernel::Db::Sqlite(p) => sqlx::query_as("SELECT before_json, after_json FROM audit_log WHERE action = 'call.budget' ORDER BY seq").fetch_all(p).await.unwrap(),
        agilekit_kernel::Db::Postgres(p) => sqlx::query_as("SELECT before_json, after_json FROM audit_log WHERE action = 'call.budget' ORDER BY seq").fetch_all(p).await.unwrap(),
    };
    assert_eq!(audit.len(), 2);
    let (b, a): (Value, Value) = (serde_json::from_str(audit[0].0.as_deref().unwrap()).unwrap(), serde_json::from_str(audit[0].1.as_deref().unwrap()).unwrap());
    assert_eq!((b["budget_cents"].as_i64(), a["budget_cents"].as_i64(), a["drawn"].as_i64()), (Some(2_100_000), Some(3_150_000), Some(1)));

    // Open data: the admitted list published as a snapshot; public without signing in.
    let (s, _, html) = post(&app, &admin, &format!("{base}/opendata"), &[("list", "ranked")]).await;
    assert_eq!(s, 422, "a call a sportello has no ranking");
    assert!(html.contains("f-opendata-list-error"));
    let (s, loc, _) = post(&app, &admin, &format!("{base}/opendata"), &[("list", "admitted")]).await;
    assert_eq!((s, loc), (303, format!("{base}?done=opendata#opendata")));
    let public = app.client();
    let (s, html) = page(&app, &public, "/opendata").await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("/opendata/calls/{call_id}/admitted.csv")) && html.contains("CC BY 4.0"));
    let r = public.get(app.at(&format!("/opendata/calls/{call_id}/admitted.json"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((j["license"].as_str(), j["license_url"].as_str()), (Some("CC-BY-4.0"), Some("https://creativecommons.org/licenses/by/4.0/")));
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1]["company_name"], "Alfa, Beta & C. S.n.c.");
    assert_eq!(rows[1]["partita_iva"], piva(7_101));
    assert_eq!(rows[1]["ateco"], "62.01.00");
    assert_eq!(rows[1]["amount_cents"], 1_050_000);
    assert_eq!(rows.iter().map(|r| r["protocol"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let r = public.get(app.at(&format!("/opendata/calls/{call_id}/admitted.csv"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["link"].to_str().unwrap().contains("rel=\"license\""));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with('\u{feff}') && csv.contains("10500.00") && csv.contains("CC-BY-4.0") && csv.contains(&piva(7_102)));
    assert!(csv.contains(r#""'=HYPERLINK("#) && csv.contains(",'@Delta S.p.A.,") && !csv.contains(",=HYPERLINK") && !csv.contains(",@Delta"), "{csv}");
    for personal in ["staff7100@pec.example.it", "staff7101@pec.example.it", "Mario Rossi", "RSSMRA85T10A562S", "cittadino@example.it", "pec"] {
        assert!(!text.contains(personal) && !csv.contains(personal), "{personal} must not be published");
    }
    // A snapshot stands still: a withdrawal after it does not change it; a new publication does.
    let (k, a) = &apps[2];
    api_expect(&app, &anna, "POST", &format!("/api/v1/companies/{k}/applications/{a}/withdraw"), None, 200).await;
    let again: Value = public.get(app.at(&format!("/opendata/calls/{call_id}/admitted.json"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["rows"].as_array().unwrap().len(), 4);
    // This time through the API.
    let od = format!("/api/v1/orgs/{region}/calls/{call_id}/opendata");
    assert_eq!(api_expect(&app, &admin, "POST", &od, Some(json!({"list": "vincitori"})), 409).await["code"], "unknown-list");
    api_expect(&app, &employee, "POST", &od, Some(json!({"list": "admitted"})), 403).await;
    let p = api_expect(&app, &admin, "POST", &od, Some(json!({"list": "admitted"})), 201).await;
    assert_eq!(p["json"], format!("/opendata/calls/{call_id}/admitted.json"));
    let now: Value = public.get(app.at(&format!("/opendata/calls/{call_id}/admitted.json"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["rows"].as_array().unwrap().iter().map(|r| r["protocol"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 4]);
    assert_eq!(page(&app, &public, &format!("/opendata/calls/{call_id}/granted.json")).await.0, 404, "not published yet");
    // The granted list: after the formal check and the grant decision (the review's API), the amount granted.
    let review = format!("/api/v1/orgs/{region}/calls/{call_id}/applications/{}/review", apps[1].1);
    api_expect(&app, &admin, "POST", &format!("{review}/check"), Some(json!({"outcome": "admissible"})), 200).await;
    let today = agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date().to_string();
    api_expect(&app, &admin, "POST", &format!("{review}/grant"), Some(json!({"amount": "9.000,00", "act_number": "D-42", "act_date": today})), 200).await;
    let (s, _, _) = post(&app, &admin, &format!("{base}/opendata"), &[("list", "granted")]).await;
    assert_eq!(s, 303);
    let granted: Value = public.get(app.at(&format!("/opendata/calls/{call_id}/granted.json"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(granted["list"], "granted");
    assert_eq!(granted["rows"], json!([{"protocol": 2, "submitted_at": rows[1]["submitted_at"], "company_name": "Alfa, Beta & C. S.n.c.",
        "partita_iva": piva(7_101), "ateco": "62.01.00", "amount_cents": 900_000, "place": "granted"}]));
    let csv = public.get(app.at(&format!("/opendata/calls/{call_id}/granted.csv"))).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains(",9000.00,granted,CC-BY-4.0"), "{csv}");
    assert_eq!(page(&app, &public, "/opendata/calls/not-a-call/admitted.csv").await.0, 404);
    app
});

both_engines!(money_drawn_by_a_budget_increase_never_passes_the_budget, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login(ADMIN).await;
    // Room for one grant of EUR 10,500; five submit; raises by uneven steps admit in protocol order only what fits.
    let (region, call_id) = published_call(&app, 10_500, -1).await;
    for i in 0..5u32 {
        let k = company_named(&app, &anna, 7_200 + i, &format!("Impresa budget {i}")).await;
        let a = open_application(&app, &anna, &k, &call_id, complete()).await;
        let (s, _, text) = api_call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some(&format!("b-{i}"))).await;
        assert_eq!(s, 200, "{text}");
    }
    let api = format!("/api/v1/orgs/{region}/calls/{call_id}/budget");
    let mut admitted_before = 1;
    for (budget, want) in [(2_000_000_i64, 1usize), (2_100_000, 2), (4_199_999, 3), (5_250_000, 5), (6_000_000, 5)] {
        let ch = api_expect(&app, &admin, "PUT", &api, Some(json!({"budget_cents": budget})), 200).await;
        let committed = ch["committed_cents"].as_i64().unwrap();
        assert!(committed <= budget, "committed {committed} within {budget}");
        assert_eq!(committed, want as i64 * 1_050_000);
        assert_eq!(ch["drawn"].as_u64().unwrap() as usize, want - admitted_before);
        admitted_before = want;
        let list = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}/applications"), None, 200).await;
        let admitted: Vec<i64> = list.as_array().unwrap().iter().filter(|s| s["receipt"]["place"] == "admitted").map(|s| s["receipt"]["protocol"].as_i64().unwrap()).collect();
        assert_eq!(admitted, (1..=want as i64).collect::<Vec<_>>(), "the head of the list, in protocol order");
    }
    app
});

both_engines!(budget_changes_racing_withdrawals_keep_the_committed_money_within_the_budget, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let admin = app.login(ADMIN).await;
    let (region, call_id) = published_call(&app, 21_000, -1).await;
    let mut apps = Vec::new();
    for i in 0..8u32 {
        let k = company_named(&app, &anna, 7_300 + i, &format!("Impresa gara {i}")).await;
        let a = open_application(&app, &anna, &k, &call_id, complete()).await;
        let (s, _, text) = api_call(&anna, "POST", app.at(&format!("/api/v1/companies/{k}/applications/{a}/submit")), None, Some(&format!("r-{i}"))).await;
        assert_eq!(s, 200, "{text}");
        apps.push((k, a));
    }
    // At once: three withdrawals and budget changes up and down (a cut may meet committed money and be refused).
    let api = app.at(&format!("/api/v1/orgs/{region}/calls/{call_id}/budget"));
    let mut tasks = Vec::new();
    for (i, budget) in [4_200_000i64, 3_150_000, 6_300_000, 2_100_000, 5_250_000].into_iter().enumerate() {
        let (c, url) = (admin.clone(), api.clone());
        tasks.push(tokio::spawn(async move {
            let (s, v, text) = api_call(&c, "PUT", url, Some(json!({"budget_cents": budget})), None).await;
            assert!(s == 200 || (s == 422 && field_errors(&v) == vec![("budget".to_owned(), "below-committed".to_owned())]), "{i}: {s} {text}");
        }));
    }
    for (k, a) in [&apps[0], &apps[3], &apps[5]] {
        let (c, url) = (anna.clone(), app.at(&format!("/api/v1/companies/{k}/applications/{a}/withdraw")));
        tasks.push(tokio::spawn(async move {
            let (s, _, text) = api_call(&c, "POST", url, None, None).await;
            assert_eq!(s, 200, "{text}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let call = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}"), None, 200).await;
    let (budget, committed) = (call["budget_cents"].as_i64().unwrap(), call["committed_cents"].as_i64().unwrap());
    assert!(committed <= budget, "committed {committed} within {budget}");
    let list = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call_id}/applications"), None, 200).await;
    let live: Vec<&Value> = list.as_array().unwrap().iter().filter(|s| s["state"] == "submitted").collect();
    assert_eq!(live.len(), 5);
    let admitted: Vec<i64> = live.iter().filter(|s| s["receipt"]["place"] == "admitted").map(|s| s["receipt"]["protocol"].as_i64().unwrap()).collect();
    assert_eq!(committed, admitted.len() as i64 * 1_050_000, "the committed money is what the admitted hold");
    // Without queue jumping: the admitted are the first of the live ones in protocol order.
    let live_protocols: Vec<i64> = live.iter().map(|s| s["receipt"]["protocol"].as_i64().unwrap()).collect();
    assert_eq!(admitted, live_protocols[..admitted.len()].to_vec());
    // And the waiting list was drawn as far as the final budget allows.
    assert!(budget - committed < 1_050_000 || admitted.len() == live.len(), "budget {budget}, committed {committed}, {} admitted", admitted.len());
    app
});

both_engines!(another_organisations_administrator_gets_404_on_every_staff_route_and_changes_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    let (_, call_id) = published_call(&app, 100_000, 60).await;
    let faq = api_expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{call_id}/faqs"), Some(json!({"question": "Domanda riservata?", "answer": "Risposta riservata."})), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ct, body) = multipart(&[("title", "Decreto riservato")], &[("file", "decreto.pdf", "application/pdf", b"%PDF-1.4 riservato")]);
    let r = admin.post(app.at(&format!("/api/v1/orgs/{region}/calls/{call_id}/documents"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let document = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let attacker = app.login("admin@arpa.example").await;
    let head = audit_head(&app.db).await;
    for (m, path, body) in SCOPED_ROUTES {
        let path = path.replace("{org}", &region.to_string()).replace("{call}", &call_id).replace("{faq}", &faq).replace("{document}", &document);
        let url = app.at(&path);
        let rb = match (*m, path.starts_with("/api/")) {
            ("GET", _) => attacker.get(&url),
            (_, true) => attacker.request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), &url).header("content-type", "application/json").body(body.to_string()),
            _ => attacker.post(&url).form(&[("title", "Preso"), ("faq-new.question", "x"), ("faq-new.answer", "y"), ("budget_change", "9.000.000"), ("list", "admitted")]),
        };
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        // Creating a call in another organisation is refused as not found too (the attacker is not a member).
        assert_eq!(s, 404, "{m} {path}: {text}");
        assert!(!text.contains("Domanda riservata") && !text.contains("Avviso smartworking") && !text.contains("riservato"), "{m} {path} leaked: {text}");
    }
    assert_eq!(audit_head(&app.db).await, head, "nothing changed");
    app
});

/// A draft call of the region (not published); its id.
async fn draft_call(app: &TestApp, admin: &Client, title: &str) -> String {
    let region = app.org_id("r_lombar").await;
    let at = |days: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(days)).replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let body = json!({
        "title": title, "summary": "Contributi per piani di smart working.", "body": "", "budget_cents": 10_000_000_i64,
        "mode": "sportello",
        "grant_rule": {"kind": "bands", "bands": [{"min_employees": 3, "max_employees": null, "amount": 750_000}]},
        "categories": [{"code": "consulenza", "label": "Consulenza e formazione"}],
        "eligibility": {"min_employees": 3, "excluded_sectors": [], "site_region": "03"},
        "opens_at": at(10), "closes_at": at(40), "de_minimis": true
    });
    api_expect(app, admin, "POST", &format!("/api/v1/orgs/{region}/calls"), Some(body), 201).await["id"].as_str().unwrap().to_owned()
}

async fn count_documents(app: &TestApp, call: &str) -> i64 {
    scalar(&app.db, &format!("SELECT COUNT(*) FROM grant_call_documents d JOIN grant_calls c ON c.id = d.call_id WHERE c.title = '{call}'")).await
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    scalar(&app.db, &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")).await
}

both_engines!(a_calls_documents_are_refused_beside_their_fields_listed_downloaded_and_deleted, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login(ADMIN).await;
    let title = "Avviso con documenti 2027";
    let call = draft_call(&app, &admin, title).await;
    let api = format!("/api/v1/orgs/{region}/calls/{call}/documents");
    let upload = |fields: Vec<(&'static str, String)>, files: Vec<(&'static str, &'static str, &'static str, Vec<u8>)>| {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let frefs: Vec<(&str, &str, &str, &[u8])> = files.iter().map(|(a, b, c, d)| (*a, *b, *c, d.as_slice())).collect();
        multipart(&refs, &frefs)
    };
    let pdf = b"%PDF-1.4 decreto di approvazione del bando".to_vec();
    let head = audit_head(&app.db).await;

    // The API: a missing title, a title too long, no file, a file over the limit; nothing stored, nothing audited.
    for (fields, files, want, errs) in [
        (vec![], vec![("file", "decreto.pdf", "application/pdf", pdf.clone())], 422, vec![("title", "required")]),
        (vec![("title", "x".repeat(201))], vec![("file", "decreto.pdf", "application/pdf", pdf.clone())], 422, vec![("title", "too-long")]),
        (vec![("title", "Decreto".to_owned())], vec![], 422, vec![("file", "required")]),
        (vec![("title", "Decreto".to_owned())], vec![("file", "grande.pdf", "application/pdf", vec![7u8; 10 * 1024 * 1024 + 1])], 413, vec![("file", "file-too-large")]),
    ] {
        let (ct, body) = upload(fields, files);
        let r = admin.post(app.at(&api)).header("content-type", ct).body(body).send().await.unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(s, want, "{v}");
        let got = field_errors(&v);
        for (f, c) in errs {
            assert!(got.contains(&(f.to_owned(), c.to_owned())), "{f} {c} in {v}");
        }
        if s == 413 {
            assert_eq!(v["limit"], 10 * 1024 * 1024, "{v}");
            assert_eq!(v["code"], "file-too-large");
        }
    }
    assert_eq!(count_documents(&app, title).await, 0, "nothing stored");
    assert_eq!(audit_head(&app.db).await, head, "nothing audited");

    // The staff page: a missing title and a file too large, each beside its field and in the summary, the title kept.
    let page_url = format!("/orgs/{region}/calls/{call}");
    let (ct, body) = upload(vec![("doc.title", String::new())], vec![("doc.file", "decreto.pdf", "application/pdf", pdf.clone())]);
    let r = admin.post(app.at(&format!("{page_url}/documents"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"f-doc-title-error\"") && html.contains("href=\"#f-doc-title\""), "{html}");
    let (ct, body) = upload(vec![("doc.title", "Decreto <di> approvazione".to_owned())], vec![("doc.file", "grande.pdf", "application/pdf", vec![7u8; 10 * 1024 * 1024 + 1])]);
    let r = admin.post(app.at(&format!("{page_url}/documents"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"f-doc-file-error\"") && html.contains("href=\"#f-doc-file\"") && html.contains("10.5 MB"), "the limit said: {html}");
    assert!(html.contains("value=\"Decreto &#60;di&#62; approvazione\"") || html.contains("value=\"Decreto &lt;di&gt; approvazione\""), "the title kept: {html}");
    assert!(!html.contains("id=\"f-doc-title-error\""));
    assert_eq!(count_documents(&app, title).await, 0, "nothing stored");
    assert_eq!(audit_head(&app.db).await, head, "nothing audited");

    // A good one from the page, another from the API: listed in order of upload.
    let (ct, body) = upload(vec![("doc.title", "Decreto di approvazione".to_owned())], vec![("doc.file", "decreto.pdf", "application/pdf", pdf.clone())]);
    let r = admin.post(app.at(&format!("{page_url}/documents"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"].to_str().unwrap(), format!("{page_url}?done=doc-added#documents"));
    let docx = b"PK\x03\x04 modulo di domanda".to_vec();
    let (ct, body) = upload(vec![("title", "Modulo di domanda".to_owned())], vec![("file", "modulo domanda.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx.clone())]);
    let r = admin.post(app.at(&api)).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let modulo: Value = r.json().await.unwrap();
    assert_eq!(modulo["name"], "modulo domanda.docx");
    assert_eq!(modulo["size"], docx.len());
    assert_eq!(audited(&app, "call.document.add").await, 2);
    assert_eq!(audit_head(&app.db).await, head + 2, "each add audited");

    let staff = api_expect(&app, &admin, "GET", &format!("/api/v1/orgs/{region}/calls/{call}"), None, 200).await;
    let docs = staff["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!((docs[0]["title"].as_str().unwrap(), docs[0]["name"].as_str().unwrap(), docs[0]["size"].as_u64().unwrap()), ("Decreto di approvazione", "decreto.pdf", pdf.len() as u64));
    assert_eq!(docs[0]["content_type"], "application/pdf");
    assert_eq!(docs[1]["id"], modulo["id"]);
    let decreto = docs[0]["id"].as_str().unwrap().to_owned();
    let (s, html) = page(&app, &admin, &format!("{page_url}?done=doc-added")).await;
    assert_eq!(s, 200);
    assert!(html.contains("Documento aggiunto."));
    let (a, b) = (html.find("Decreto di approvazione").unwrap(), html.find("Modulo di domanda").unwrap());
    assert!(a < b, "in order of upload");
    assert!(html.contains(&format!("href=\"/orgs/{region}/calls/{call}/documents/{decreto}\"")));

    // The staff download a draft's document; the public may not, nor read the draft.
    let r = admin.get(app.at(&format!("{page_url}/documents/{decreto}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sha_hex(&r.bytes().await.unwrap()), sha_hex(&pdf));
    let anyone = app.client();
    assert_eq!(anyone.get(app.at(&format!("/calls/{call}/documents/{decreto}"))).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(anyone.get(app.at(&format!("/api/v1/calls/{call}"))).send().await.unwrap().status().as_u16(), 404);

    // Published: anyone reads the list and downloads the same bytes, as an attachment never sniffed, sandboxed.
    api_expect(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/calls/{call}/publish"), None, 200).await;
    let public = api_expect(&app, &anyone, "GET", &format!("/api/v1/calls/{call}"), None, 200).await;
    let pd = public["documents"].as_array().unwrap();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0], json!({"id": decreto, "title": "Decreto di approvazione", "name": "decreto.pdf", "size": pdf.len(), "content_type": "application/pdf"}));
    let (s, html) = page(&app, &anyone, &format!("/calls/{call}")).await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("href=\"/calls/{call}/documents/{decreto}\"")) && html.contains("Decreto di approvazione") && html.contains("decreto.pdf"), "{html}");
    let r = anyone.get(app.at(&format!("/calls/{call}/documents/{decreto}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"decreto.pdf\""));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(sha_hex(&r.bytes().await.unwrap()), sha_hex(&pdf));
    let r = anyone.get(app.at(&format!("/calls/{call}/documents/{}", modulo["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream", "an unsafe type is not served as itself");
    assert_eq!(sha_hex(&r.bytes().await.unwrap()), sha_hex(&docx));

    // An erratum after publication; then deletes, from the page and from the API.
    let (ct, body) = upload(vec![("title", "Rettifica".to_owned())], vec![("file", "rettifica.pdf", "application/pdf", b"%PDF-1.4 rettifica".to_vec())]);
    let r = admin.post(app.at(&api)).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let erratum = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let deletes_before = audited(&app, "call.document.delete").await;
    let (s, loc, _) = post(&app, &admin, &format!("{page_url}/documents/{decreto}/delete"), &[]).await;
    assert_eq!((s, loc.as_str()), (303, format!("{page_url}?done=doc-deleted#documents").as_str()));
    api_expect(&app, &admin, "DELETE", &format!("{api}/{erratum}"), None, 204).await;
    api_expect(&app, &admin, "DELETE", &format!("{api}/{erratum}"), None, 404).await;
    assert_eq!(audited(&app, "call.document.delete").await, deletes_before + 2, "each delete audited");
    let public = api_expect(&app, &anyone, "GET", &format!("/api/v1/calls/{call}"), None, 200).await;
    let left: Vec<&str> = public["documents"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(left, ["Modulo di domanda"]);
    let (_, html) = page(&app, &admin, &page_url).await;
    assert!(!html.contains("Decreto di approvazione") && !html.contains("Rettifica") && html.contains("Modulo di domanda"));
    let (_, html) = page(&app, &anyone, &format!("/calls/{call}")).await;
    assert!(!html.contains("Decreto di approvazione") && html.contains("Modulo di domanda"));
    assert_eq!(anyone.get(app.at(&format!("/calls/{call}/documents/{decreto}"))).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(scalar(&app.db, &format!("SELECT COUNT(*) FROM files WHERE sha256 = '{}'", sha_hex(&pdf))).await, 0, "the file went with it");
    app
});
