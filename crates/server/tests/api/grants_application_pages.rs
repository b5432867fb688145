//! The application pages on both engines: applying from the call page's form, the draft form that keeps every typed
//! value and shows the problems beside the fields and in a summary, the submission refused before the opening with
//! nothing stored, then a receipt with its protocol, the same receipt for a retry with the form's key, the receipt
//! PDF, required attachments uploaded with the form, withdrawal, and another person's ids: 404 on every route.
//! The script's saves (`X-Autosave: 1`): 204 stored, 422 an unreadable amount (the rest stored), 404, 409.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::grants_applications::{call_with_attachments, company, multipart, published_call, scalar, sha_hex};
use crate::helpers::*;

/// The application pages, each tried with another person's ids (and signed out) below; `isolation.rs` reads this
/// list to check that every route is covered.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/companies/{company}/applications", ""),
    ("GET", "/companies/{company}/applications/{application}", ""),
    ("POST", "/companies/{company}/applications/{application}", ""),
    ("GET", "/companies/{company}/applications/{application}/receipt", ""),
    ("GET", "/companies/{company}/applications/{application}/receipt.pdf", ""),
    ("GET", "/companies/{company}/applications/{application}/withdraw", ""),
    ("POST", "/companies/{company}/applications/{application}/withdraw", ""),
    ("GET", "/companies/{company}/applications/{application}/attachments/{code}", ""),
    ("POST", "/calls/{call}/apply", ""),
    ("GET", "/orgs/{org}/calls/{call}/applications/{application}/attachments/{code}", ""),
];

/// The text of a page.
async fn html(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The value of the hidden input `name` of a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in the page")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Applies from the call page's form; the application's page address.
async fn apply(app: &TestApp, c: &Client, call: &str, company: &str) -> String {
    let r = c.post(app.at(&format!("/calls/{call}/apply"))).form(&[("company", company)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    location(&r)
}

async fn set_opens_at(app: &TestApp, call: &str, minutes_from_now: i64) {
    let at = agilekit_kernel::clock::stamp(agilekit_kernel::clock::now() + time::Duration::minutes(minutes_from_now));
    let id: uuid::Uuid = call.parse().unwrap();
    match &app.db {
        agilekit_kernel::Db::Sqlite(p) => {
            sqlx::query("UPDATE grant_calls SET opens_at = $1 WHERE id = $2").bind(at).bind(id).execute(p).await.unwrap();
        }
        agilekit_kernel::Db::Postgres(p) => {
            sqlx::query("UPDATE grant_calls SET opens_at = $1 WHERE id = $2").bind(at).bind(id).execute(p).await.unwrap();
        }
    }
}

/// The form as a browser sends it: the typed rows, the declaration, the hidden key and row count, the button.
fn form(key: &str, plan: &str, rows: &[(&str, &str, &str)], declaration: bool, action: &str) -> Vec<(String, String)> {
    let mut f = vec![("key".to_owned(), key.to_owned()), ("rows".to_owned(), (rows.len() + 1).to_string()), ("plan".to_owned(), plan.to_owned())];
    for (i, (c, d, a)) in rows.iter().enumerate() {
        f.push((format!("category.{i}"), (*c).to_owned()));
        f.push((format!("description.{i}"), (*d).to_owned()));
        f.push((format!("amount.{i}"), (*a).to_owned()));
    }
    // A blank row, as the page sends it.
    let n = rows.len();
    f.extend([(format!("category.{n}"), String::new()), (format!("description.{n}"), String::new()), (format!("amount.{n}"), String::new())]);
    if declaration {
        f.push(("declaration".into(), "on".into()));
    }
    f.push(("action".into(), action.into()));
    f
}

const GOOD: &[(&str, &str, &str)] = &[("consulenza", "Formazione sul lavoro agile", "8.000,00"), ("strumenti", "Portatili", "3.900,00")];

both_engines!(a_draft_is_kept_as_typed_then_submitted_once_with_a_receipt_and_its_pdf, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, call_id) = published_call(&app, 100_000, 60).await;
    let k = company(&app, &anna, 71, 12).await;
    // From the call page's form: the draft's page; applying again finds the same application.
    let page_url = apply(&app, &anna, &call_id, &k).await;
    assert!(page_url.starts_with(&format!("/companies/{k}/applications/")), "{page_url}");
    assert_eq!(apply(&app, &anna, &call_id, &k).await, page_url);
    let id = page_url.rsplit('/').next().unwrap().to_owned();
    let (s, page) = html(anna.get(app.at(&page_url)).send().await.unwrap()).await;
    assert_eq!(s, 200);
    let key = hidden(&page, "key");
    assert!(key.len() >= 16, "a fresh idempotency key: {key}");
    assert!(page.contains("Avviso smartworking"));

    // Saved with errors: everything typed comes back, the problems beside the fields and in the summary.
    let typed = [("consulenza", "Formazione sul lavoro agile", "8.000,00"), ("strumenti", "", "tanti euro")];
    let r = anna.post(app.at(&page_url)).form(&form(&key, "Piano per dodici persone: attività e formazione", &typed, false, "save")).send().await.unwrap();
    let (s, page) = html(r).await;
    assert_eq!(s, 422, "{page}");
    for v in ["Piano per dodici persone: attività e formazione", "Formazione sul lavoro agile", "8.000,00", "tanti euro"] {
        assert!(page.contains(v), "the page lost {v:?}");
    }
    assert!(page.contains("id=\"error-summary\""));
    for (id, anchor) in [("f-expenses-1-amount_cents-error", "#f-expenses-1-amount_cents"), ("f-expenses-1-description-error", "#f-expenses-1-description"), ("f-declaration-error", "#f-declaration")] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no error beside the field: {id}");
        assert!(page.contains(&format!("href=\"{anchor}\"")), "no summary link: {anchor}");
    }
    assert!(page.contains("non è un importo"), "the amount's message");
    assert_eq!(hidden(&page, "key"), key, "the form keeps its key");
    // The draft is stored as far as it can be.
    let api = format!("/api/v1/companies/{k}/applications/{id}");
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["draft"]["plan"], "Piano per dodici persone: attività e formazione");
    assert_eq!(stored["draft"]["expenses"][0]["amount_cents"], 800_000);
    assert_eq!(stored["draft"]["expenses"][1]["amount_cents"], Value::Null);

    // Fixed: saved, 303, and the page shows it without errors.
    let r = anna.post(app.at(&page_url)).form(&form(&key, "Piano per dodici persone", GOOD, true, "save")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), format!("{page_url}?done=saved"));
    let (_, page) = html(anna.get(app.at(&format!("{page_url}?done=saved"))).send().await.unwrap()).await;
    assert!(!page.contains("id=\"error-summary\""), "{page}");
    assert!(page.contains("3.900,00") && page.contains("10.500,00"), "the typed amount and the grant of the band");
    // "Add rows" saves and shows more empty rows (two typed, three blank, three more).
    let r = anna.post(app.at(&page_url)).form(&form(&key, "Piano per dodici persone", GOOD, true, "rows")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, page) = html(anna.get(app.at(&location(&r))).send().await.unwrap()).await;
    assert!(page.contains("id=\"f-expenses-7-amount_cents\"") && !page.contains("id=\"f-expenses-8-amount_cents\""), "{page}");

    // Before the opening: refused with the opening's time, nothing stored.
    let head = audit_head(&app.db).await;
    let r = anna.post(app.at(&page_url)).form(&form(&key, "Piano per dodici persone", GOOD, true, "submit")).send().await.unwrap();
    let (s, page) = html(r).await;
    assert_eq!(s, 409);
    assert!(page.contains("non è ancora aperto"), "{page}");
    assert_eq!(audit_head(&app.db).await, head);
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM grant_applications WHERE protocol IS NOT NULL").await, 0);
    assert_eq!(api_expect(&app, &anna, "GET", &api, None, 200).await["state"], "draft");

    // Open: submitted, the receipt; the same key again (a double click): the same receipt, one protocol.
    set_opens_at(&app, &call_id, -1).await;
    for _ in 0..2 {
        let r = anna.post(app.at(&page_url)).form(&form(&key, "Piano per dodici persone", GOOD, true, "submit")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(location(&r), format!("{page_url}/receipt"));
    }
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM grant_applications WHERE protocol IS NOT NULL").await, 1);
    let receipt = api_expect(&app, &anna, "GET", &format!("{api}/receipt"), None, 200).await;
    assert_eq!(receipt["protocol"], 1);
    let sha = receipt["sha256"].as_str().unwrap().to_owned();
    let (s, page) = html(anna.get(app.at(&format!("{page_url}/receipt"))).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert!(page.contains("<dd class=\"col-sm-8\" id=\"receipt-protocol\">1</dd>") && page.contains(&sha), "{page}");
    // Rome time with seconds.
    let rome = agilekit_kernel::clock::to_rome(time::OffsetDateTime::parse(receipt["submitted_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap());
    assert!(page.contains(&format!("{:02}:{:02}:{:02}", rome.hour(), rome.minute(), rome.second())), "{page}");
    // The application's page is read-only now, with the receipt and the review link.
    let (_, page) = html(anna.get(app.at(&page_url)).send().await.unwrap()).await;
    assert!(!page.contains("id=\"draft-form\""));
    assert!(page.contains(&sha) && page.contains(&format!("{page_url}/review")));
    // Listed with its protocol.
    let (s, page) = html(anna.get(app.at(&format!("/companies/{k}/applications"))).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert!(page.contains(&page_url) && page.contains("Inviata"), "{page}");

    // The PDF: a well-formed file with the protocol and the fingerprint.
    let r = anna.get(app.at(&format!("{page_url}/receipt.pdf"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"ricevuta-1.pdf\"");
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let pdf = r.bytes().await.unwrap().to_vec();
    check_pdf(&pdf);
    let has = |needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"(1) Tj"), "the protocol");
    assert!(has(format!("({sha}) Tj").as_bytes()), "the fingerprint");
    assert!(has(b"(Impresa 71 S.r.l.) Tj"), "the company");
    assert!(has(b"(10.500,00 \x80) Tj"), "the amount, its euro sign in WinAnsi");

    // Withdrawn after a confirmation page.
    let (s, page) = html(anna.get(app.at(&format!("{page_url}/withdraw"))).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert!(page.contains(&format!("action=\"{page_url}/withdraw\"")));
    let r = anna.post(app.at(&format!("{page_url}/withdraw"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(api_expect(&app, &anna, "GET", &api, None, 200).await["state"], "withdrawn");
    app
});

/// The structure of a PDF without a parser: header, trailer, the cross-reference table's offsets pointing at their
/// objects, the content stream's declared length.
fn check_pdf(pdf: &[u8]) {
    assert!(pdf.starts_with(b"%PDF-1."));
    assert!(pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(pdf);
    let start: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
    assert_eq!(&pdf[start..start + 4], b"xref");
    let table = String::from_utf8_lossy(&pdf[start..]).into_owned();
    let mut lines = table.lines().skip(1);
    let count: usize = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let entries: Vec<&str> = lines.skip(1).take(count - 1).collect();
    assert!(entries.len() >= 5);
    for (i, e) in entries.iter().enumerate() {
        let off: usize = e[..10].parse().unwrap();
        assert!(pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {} at {off}", i + 1);
    }
    assert!(text.contains("/Encoding /WinAnsiEncoding"));
}

both_engines!(attachments_go_with_the_draft_form_and_a_refused_save_keeps_them, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, call_id) = call_with_attachments(&app, 60).await;
    let k = company(&app, &anna, 72, 12).await;
    let page_url = apply(&app, &anna, &call_id, &k).await;
    let (_, page) = html(anna.get(app.at(&page_url)).send().await.unwrap()).await;
    assert!(page.contains("Piano aziendale firmato") && page.contains("name=\"file.piano\""), "{page}");
    let key = hidden(&page, "key");
    // A save with a wrong amount and a file: the page again with what was typed, and the file stored.
    let fields: Vec<(String, String)> = form(&key, "Piano", &[("consulenza", "Formazione", "molto")], true, "save");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (ct, body) = multipart(&refs, &[("file.piano", "piano firmato.pdf", "application/pdf", b"%PDF-1.4 piano"), ("file.visura", "", "application/octet-stream", b"")]);
    let (s, page) = html(anna.post(app.at(&page_url)).header("content-type", ct).body(body).send().await.unwrap()).await;
    assert_eq!(s, 422, "{page}");
    assert!(page.contains("molto") && page.contains("piano firmato.pdf"), "{page}");
    assert!(page.contains("href=\"#f-attachments-visura\""), "the missing one in the summary");
    let id = page_url.rsplit('/').next().unwrap();
    let api = format!("/api/v1/companies/{k}/applications/{id}");
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["draft"]["attachments"][0]["sha256"], sha_hex(b"%PDF-1.4 piano"));
    // Downloaded from the page's link.
    let r = anna.get(app.at(&format!("{page_url}/attachments/piano"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-1.4 piano");
    // A file over the limit: refused beside its input, the stored one kept.
    let big = vec![5u8; 10 * 1024 * 1024 + 1];
    let fields = form(&key, "Piano", &[("consulenza", "Formazione", "1.000")], true, "save");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (ct, body) = multipart(&refs, &[("file.visura", "grande.pdf", "application/pdf", &big)]);
    let (s, page) = html(anna.post(app.at(&page_url)).header("content-type", ct).body(body).send().await.unwrap()).await;
    assert_eq!(s, 422);
    assert!(page.contains("id=\"f-attachments-visura-error\"") && page.contains("troppo grande"), "{page}");
    assert!(page.contains("piano firmato.pdf"), "the stored file is still listed");
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["draft"]["attachments"].as_array().unwrap().len(), 1);
    // The remove box deletes it.
    let mut fields = form(&key, "Piano", &[("consulenza", "Formazione", "1.000")], true, "save");
    fields.push(("remove".into(), "piano".into()));
    let r = anna.post(app.at(&page_url)).form(&fields).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert!(stored["draft"].get("attachments").is_none(), "{stored}");
    assert_eq!(stored["draft"]["expenses"][0]["amount_cents"], 100_000);
    app
});

both_engines!(another_persons_application_pages_answer_404, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (region, call_id) = call_with_attachments(&app, -1).await;
    let k = company(&app, &anna, 73, 12).await;
    let page_url = apply(&app, &anna, &call_id, &k).await;
    let api = page_url.replace("/companies/", "/api/v1/companies/");
    api_expect(&app, &anna, "PUT", &format!("{api}/attachments/piano"), None, 422).await;
    let r = anna.put(app.at(&format!("{api}/attachments/piano?name=p.pdf"))).header("content-type", "application/pdf").body("segreto").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let head = audit_head(&app.db).await;
    let attacker = app.login("admin@comune.example").await;
    let key = "k".repeat(20);
    let id = page_url.rsplit('/').next().unwrap().to_owned();
    let routes: Vec<(&str, String)> = SCOPED_ROUTES
        .iter()
        .map(|(m, p, _)| (*m, p.replace("{company}", &k).replace("{application}", &id).replace("{call}", &call_id).replace("{code}", "piano").replace("{org}", &region)))
        .collect();
    for (m, path) in &routes {
        let rb = if *m == "GET" { attacker.get(app.at(path)) } else { attacker.post(app.at(path)).form(&[("company", k.as_str()), ("key", key.as_str()), ("action", "submit"), ("plan", "x")]) };
        let (s, text) = html(rb.send().await.unwrap()).await;
        assert_eq!(s, 404, "{m} {path}");
        assert!(!text.contains("Impresa 73") && !text.contains("segreto"), "{m} {path} leaked");
        // Signed out: to the login page, nothing shown.
        let rb = if *m == "GET" { app.client().get(app.at(path)) } else { app.client().post(app.at(path)).form(&[("company", k.as_str())]) };
        let r = rb.send().await.unwrap();
        assert!([303, 401].contains(&r.status().as_u16()), "{m} {path} signed out: {}", r.status());
    }
    assert_eq!(audit_head(&app.db).await, head);
    assert_eq!(api_expect(&app, &anna, "GET", &api, None, 200).await["state"], "draft");
    // The call's administrators download a submitted application's attachment, not a draft's.
    let staff = app.login("admin@regione.example").await;
    let staff_url = format!("/orgs/{region}/calls/{call_id}/applications/{id}/attachments/piano");
    assert_eq!(staff.get(app.at(&staff_url)).send().await.unwrap().status().as_u16(), 404);
    let r = anna.put(app.at(&format!("{api}/attachments/visura?name=v.txt"))).header("content-type", "text/plain").body("visura").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    api_expect(&app, &anna, "PUT", &api, Some(json!({"plan": "Piano", "declaration": true, "expenses": [{"category": "consulenza", "description": "Formazione", "amount_cents": 100_000}]})), 200).await;
    let (s, v, text) = api_call(&anna, "POST", app.at(&format!("{api}/submit")), None, Some("staff-dl")).await;
    assert_eq!(s, 200, "{v} {text}");
    let r = staff.get(app.at(&staff_url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"segreto");
    app
});

/// A save sent by the page's script (`X-Autosave: 1`), as `draft-autosave.js` sends it: urlencoded, no key.
async fn autosave(c: &Client, url: &str, fields: &[(String, String)]) -> (u16, String) {
    let fields: Vec<&(String, String)> = fields.iter().filter(|(n, _)| n != "key").collect();
    html(c.post(url).header("x-autosave", "1").form(&fields).send().await.unwrap()).await
}

both_engines!(the_draft_saves_itself_with_a_bare_status_for_the_script, |app| async move {
    let anna = app.login("cittadino@example.it").await;
    let (_, call_id) = published_call(&app, 100_000, -1).await;
    let k = company(&app, &anna, 74, 12).await;
    let page_url = apply(&app, &anna, &call_id, &k).await;
    let id = page_url.rsplit('/').next().unwrap().to_owned();
    let api = format!("/api/v1/companies/{k}/applications/{id}");
    let (s, page) = html(anna.get(app.at(&page_url)).send().await.unwrap()).await;
    assert_eq!(s, 200);
    // The page carries the script and the polite status it writes to.
    assert!(page.contains("draft-autosave.js\" defer") && page.contains("id=\"draft-autosave-status\""), "{page}");
    assert!(page.contains("aria-live=\"polite\"") && page.contains("data-saved=\"Bozza salvata alle {time}\""), "{page}");
    // The script is served from the embedded assets, as JavaScript (the CSP allows only 'self').
    let src = page.split("<script src=\"").find(|s| s.split('"').next().unwrap().ends_with("/draft-autosave.js")).unwrap().split('"').next().unwrap().to_owned();
    let r = anna.get(app.at(&src)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{src}");
    assert!(r.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(r.text().await.unwrap().contains("\"X-Autosave\": \"1\""));

    // Stored as Save stores it, answered 204 with nothing: no redirect, no page.
    let (s, body) = autosave(&anna, &app.at(&page_url), &form("", "Piano scritto di getto", GOOD, true, "save")).await;
    assert_eq!(s, 204, "{body}");
    assert!(body.is_empty());
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["state"], "draft");
    assert_eq!(stored["draft"]["plan"], "Piano scritto di getto");
    assert_eq!(stored["draft"]["declaration"], true);
    assert_eq!(stored["draft"]["expenses"][1]["description"], "Portatili");
    assert_eq!(stored["draft"]["expenses"][1]["amount_cents"], 390_000);
    // The same again (a `change` after the pause that saved it): 204, nothing written.
    let head = audit_head(&app.db).await;
    let (s, _) = autosave(&anna, &app.at(&page_url), &form("", "Piano scritto di getto", GOOD, true, "save")).await;
    assert_eq!(s, 204);
    assert_eq!(audit_head(&app.db).await, head);

    // An amount that cannot be read: 422 with nothing else, the other fields stored.
    let typed = [("consulenza", "Formazione a distanza", "ottomila"), ("strumenti", "Cuffie", "250")];
    let (s, body) = autosave(&anna, &app.at(&page_url), &form("", "Piano rivisto", &typed, false, "save")).await;
    assert_eq!(s, 422);
    assert!(body.is_empty(), "{body}");
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["draft"]["plan"], "Piano rivisto");
    assert_eq!(stored["draft"]["declaration"], false);
    assert_eq!(stored["draft"]["expenses"][0]["description"], "Formazione a distanza");
    assert_eq!(stored["draft"]["expenses"][0]["amount_cents"], Value::Null);
    assert_eq!(stored["draft"]["expenses"][1]["amount_cents"], 25_000);

    // Only a save: another action with the header is refused, nothing stored.
    let head = audit_head(&app.db).await;
    let (s, _) = autosave(&anna, &app.at(&page_url), &form("", "Piano inviato?", GOOD, true, "submit")).await;
    assert_eq!(s, 400);
    assert_eq!(audit_head(&app.db).await, head);
    assert_eq!(api_expect(&app, &anna, "GET", &api, None, 200).await["draft"]["plan"], "Piano rivisto");

    // Another person: 404, nothing stored, nothing shown.
    let other = app.login("admin@comune.example").await;
    let (s, body) = autosave(&other, &app.at(&page_url), &form("", "Piano altrui", GOOD, true, "save")).await;
    assert_eq!(s, 404);
    assert!(!body.contains("Impresa 74") && !body.contains("Piano rivisto"), "{body}");
    assert_eq!(audit_head(&app.db).await, head);
    // Signed out: not stored either.
    let r = app.client().post(app.at(&page_url)).header("x-autosave", "1").form(&form("", "Piano anonimo", GOOD, true, "save")).send().await.unwrap();
    assert!([303, 401].contains(&r.status().as_u16()), "{}", r.status());
    assert_eq!(api_expect(&app, &anna, "GET", &api, None, 200).await["draft"]["plan"], "Piano rivisto");

    // Submitted: 409, the submitted content untouched.
    let (s, _) = autosave(&anna, &app.at(&page_url), &form("", "Piano definitivo", GOOD, true, "save")).await;
    assert_eq!(s, 204);
    let (s, v, text) = api_call(&anna, "POST", app.at(&format!("{api}/submit")), None, Some("autosave-submit")).await;
    assert_eq!(s, 200, "{v} {text}");
    let head = audit_head(&app.db).await;
    let (s, body) = autosave(&anna, &app.at(&page_url), &form("", "Piano cambiato dopo l'invio", GOOD, true, "save")).await;
    assert_eq!(s, 409);
    assert!(body.is_empty(), "{body}");
    let stored = api_expect(&app, &anna, "GET", &api, None, 200).await;
    assert_eq!(stored["state"], "submitted");
    assert_eq!(stored["draft"]["plan"], "Piano definitivo");
    assert_eq!(audit_head(&app.db).await, head);
    app
});
