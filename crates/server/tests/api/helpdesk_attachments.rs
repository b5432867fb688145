//! Ticket attachments (crates/helpdesk/src/attachments.rs, crates/kernel/src/files.rs): uploads, attaching to a
//! ticket's first message, replies and notes, downloads with their headers and bytes intact, who sees which file,
//! the size limit, pending files kept by a refused page form, and files of mail delivered to the help desk; on both
//! engines, through the real server.

use agilekit_kernel::Db;
use agilekit_kernel::ids::OrgId;
use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

/// This feature's organisation-scoped routes, tried with another organisation's ids by this module's isolation test
/// (the guard in `isolation.rs` reads this table). `{org}` is the victim organisation, `{ticket}` its ticket,
/// `{file}` a file of that ticket's first message.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/orgs/{org}/helpdesk/files", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/attachments/{file}", ""),
    ("GET", "/orgs/{org}/helpdesk/tickets/{ticket}/attachments/{file}", ""),
];

const EMPLOYEE: &str = "dipendente@regione.example";
const AGENT: &str = "agente@regione.example";

fn sha(b: &[u8]) -> String {
    agilekit_kernel::files::sha256_hex(b)
}

/// Base64 in lines of 76, as mail carries attachments.
fn base64_lines(d: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in d.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out.as_bytes().chunks(76).map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>().join("\r\n")
}

fn tickets_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/tickets")
}

/// A multipart body: text fields, then files (field name, file name, content type, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let b = "XhdfBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    for (k, name, ct, data) in files {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// Uploads one file through the API: (status, JSON).
async fn upload(app: &TestApp, c: &Client, org: OrgId, name: &str, ct: &str, data: &[u8]) -> (u16, Value) {
    let (ctype, body) = multipart(&[], &[("file", name, ct, data)]);
    let r = c.post(app.at(&format!("/api/v1/orgs/{org}/helpdesk/files"))).header("content-type", ctype).body(body).send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn json_call(app: &TestApp, c: &Client, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
    let mut rb = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.at(path));
    if let Some(b) = &body {
        rb = rb.json(b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(s, want, "{method} {path} {body:?} answered {s}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Downloads: (status, headers, bytes).
async fn fetch(app: &TestApp, c: &Client, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    let row: (i64,) = agilekit_kernel::db_run!(db, |p| sqlx::query_as(sql).fetch_one(p).await.unwrap());
    row.0
}

/// Bytes that are no text: every byte value, NUL included.
fn binary(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

both_engines!(files_go_up_with_a_ticket_and_replies_and_come_back_identical, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login(EMPLOYEE).await;
    let agent = app.login(AGENT).await;

    let png = binary(70_000);
    let (s, f) = upload(&app, &employee, region, "C:\\Users\\sara\\schermata è.png", "image/png", &png).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(f["name"], "schermata è.png");
    assert_eq!(f["size"], 70_000);
    assert_eq!(f["content_type"], "image/png");
    assert_eq!(f["sha256"], sha(&png));
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let (s, h) = upload(&app, &employee, region, "pagina.html", "text/html", &html).await;
    assert_eq!(s, 201, "{h}");

    // Another person cannot reference the employee's pending file; the employee can.
    let v = json_call(&app, &agent, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Furto", "body": "x", "attachments": [f["id"]]})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments[0]" && e["code"] == "unknown-file"), "{v}");
    let v = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Errore VPN", "body": "Vedi schermata", "attachments": [f["id"], h["id"], "not-an-id"]})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments[2]" && e["code"] == "unknown-file"), "{v}");
    let d = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Errore VPN", "body": "Vedi schermata", "attachments": [f["id"], h["id"]]})), 201).await;
    let ticket = d["ticket"]["id"].as_str().unwrap().to_owned();
    let files = d["messages"][0]["attachments"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2, "{d}");
    assert_eq!(files[0]["id"], f["id"]);
    // Attached once: the same id cannot go on another message.
    let v = json_call(&app, &employee, "POST", &format!("{}/{ticket}/reply", tickets_url(region)),
        Some(json!({"body": "ancora", "attachments": [f["id"]]})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments[0]"), "{v}");

    // The agent downloads both: bytes identical, headers that keep a browser from running anything.
    let path = |id: &Value| format!("{}/{ticket}/attachments/{}", tickets_url(region), id.as_str().unwrap());
    let (s, hd, bytes) = fetch(&app, &agent, &path(&f["id"])).await;
    assert_eq!(s, 200);
    assert_eq!(sha(&bytes), sha(&png));
    assert_eq!(hd["content-type"], "image/png");
    assert_eq!(hd["content-disposition"], "attachment; filename=\"schermata _.png\"; filename*=UTF-8''schermata%20%C3%A8.png");
    assert_eq!(hd["x-content-type-options"], "nosniff");
    assert_eq!(hd["content-security-policy"], "sandbox");
    assert_eq!(hd["cache-control"], "private, no-store");
    let (s, hd, bytes) = fetch(&app, &agent, &path(&h["id"])).await;
    assert_eq!((s, bytes), (200, html.clone()));
    assert_eq!(hd["content-type"], "application/octet-stream", "HTML is never served as HTML");

    // The agent answers with a PDF; the requester downloads it from the ticket page's link as well.
    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n".to_vec();
    let (_, p) = upload(&app, &agent, region, "istruzioni.pdf", "application/pdf", &pdf).await;
    let d = json_call(&app, &agent, "POST", &format!("{}/{ticket}/reply", tickets_url(region)),
        Some(json!({"body": "Segui le istruzioni allegate", "attachments": [p["id"]]})), 200).await;
    assert_eq!(d["messages"][1]["attachments"][0]["sha256"], sha(&pdf));
    let page_link = format!("/orgs/{region}/helpdesk/tickets/{ticket}/attachments/{}", p["id"].as_str().unwrap());
    let page = employee.get(app.at(&format!("/orgs/{region}/helpdesk/tickets/{ticket}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&page_link) && page.contains("istruzioni.pdf"), "the ticket page links the file");
    let (s, hd, bytes) = fetch(&app, &employee, &page_link).await;
    assert_eq!((s, sha(&bytes)), (200, sha(&pdf)));
    assert_eq!(hd["content-type"], "application/pdf");
    // The notification names the file, without its bytes.
    let mail: (String,) = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
        "SELECT payload FROM jobs WHERE kind = 'mail' AND payload LIKE '%istruzioni.pdf%'"
    ).fetch_one(p).await.unwrap());
    assert!(mail.0.contains("Allegati / attachments") && !mail.0.contains("PDF-1.4"), "{}", mail.0);
    assert!(mail.0.contains(&format!("{}/orgs/{region}/helpdesk/tickets/{ticket}", app.url)), "the mail links the ticket page: {}", mail.0);
    app
});

both_engines!(a_notes_files_are_the_agents_and_another_organisation_sees_nothing, |app| async move {
    let region = app.org_id("r_lombar").await;
    let town = app.org_id("c_b157").await;
    let employee = app.login(EMPLOYEE).await;
    let agent = app.login(AGENT).await;
    let outsider = app.login("admin@comune.example").await;

    let d = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "account", "subject": "Password", "body": "Non entro"})), 201).await;
    let ticket = d["ticket"]["id"].as_str().unwrap().to_owned();
    let secret = b"nota riservata: password di servizio".to_vec();
    let (_, n) = upload(&app, &agent, region, "riservato.txt", "text/plain", &secret).await;
    let d = json_call(&app, &agent, "POST", &format!("{}/{ticket}/note", tickets_url(region)),
        Some(json!({"body": "Vedi file", "attachments": [n["id"]]})), 200).await;
    assert_eq!(d["messages"][1]["attachments"][0]["name"], "riservato.txt");
    let api = format!("{}/{ticket}/attachments/{}", tickets_url(region), n["id"].as_str().unwrap());
    let page = format!("/orgs/{region}/helpdesk/tickets/{ticket}/attachments/{}", n["id"].as_str().unwrap());
    let (s, hd, bytes) = fetch(&app, &agent, &api).await;
    assert_eq!((s, bytes), (200, secret.clone()));
    assert_eq!(hd["content-type"], "text/plain");

    // The requester neither sees it listed nor downloads it.
    let v = json_call(&app, &employee, "GET", &format!("{}/{ticket}", tickets_url(region)), None, 200).await;
    assert!(!v.to_string().contains("riservato.txt"), "{v}");
    let html = employee.get(app.at(&format!("/orgs/{region}/helpdesk/tickets/{ticket}"))).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("riservato.txt"));
    for p in [&api, &page] {
        let (s, _, bytes) = fetch(&app, &employee, p).await;
        assert_eq!(s, 404, "{p}");
        assert!(!String::from_utf8_lossy(&bytes).contains("password di servizio"));
    }
    // Another organisation's admin: 404 with this organisation's ids, and in their own organisation's path too.
    for p in [api.clone(), page.clone(), api.replace(&region.to_string(), &town.to_string())] {
        let (s, _, bytes) = fetch(&app, &outsider, &p).await;
        assert_eq!(s, 404, "{p}");
        assert!(!String::from_utf8_lossy(&bytes).contains("password di servizio"));
    }
    // An upload to an organisation one is not in: 404, nothing stored.
    let before = count(&app.db, "SELECT COUNT(*) FROM files").await;
    let (s, v) = upload(&app, &outsider, region, "x.txt", "text/plain", b"x").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM files").await, before);
    // A file the outsider uploads in their own organisation cannot go on this organisation's ticket.
    let (s, own) = upload(&app, &outsider, town, "mio.txt", "text/plain", b"mio").await;
    assert_eq!(s, 201, "{own}");
    let v = json_call(&app, &agent, "POST", &format!("{}/{ticket}/note", tickets_url(region)),
        Some(json!({"body": "x", "attachments": [own["id"]]})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments[0]" && e["code"] == "unknown-file"), "{v}");
    app
});

both_engines!(a_file_over_the_limit_is_413_and_eleven_files_are_too_many, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login(EMPLOYEE).await;
    let limit: u64 = 10 * 1024 * 1024;
    let before = count(&app.db, "SELECT COUNT(*) FROM files").await;
    let (s, v) = upload(&app, &employee, region, "grande.bin", "application/octet-stream", &vec![1u8; limit as usize + 1]).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["code"], "file-too-large");
    assert_eq!(v["limit"], limit);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM files").await, before);
    // A large multipart body to a route that takes no files: refused before any route reads it.
    let (ct, body) = multipart(&[("category", "vpn")], &[("file", "x.bin", "application/octet-stream", &vec![3u8; 2 * 1024 * 1024])]);
    let r = employee.post(app.at(&tickets_url(region))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "payload-too-large");
    // Exactly at the limit: taken.
    let (s, v) = upload(&app, &employee, region, "giusto.bin", "application/octet-stream", &vec![2u8; limit as usize]).await;
    assert_eq!(s, 201, "{v}");
    // An upload with no file part: a field error.
    let (ct, body) = multipart(&[("other", "x")], &[]);
    let r = employee.post(app.at(&format!("/api/v1/orgs/{region}/helpdesk/files"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "file" && e["code"] == "required"), "{v}");
    // Eleven files on one message: `attachments`: `too-many`, and none of them attached.
    let mut ids = Vec::new();
    for i in 0..11 {
        let (_, f) = upload(&app, &employee, region, &format!("f{i}.txt"), "text/plain", format!("file {i}").as_bytes()).await;
        ids.push(f["id"].clone());
    }
    let v = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Tanti file", "body": "x", "attachments": ids})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments" && e["code"] == "too-many"), "{v}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM files WHERE attached_at IS NOT NULL").await, 0);
    app
});

both_engines!(a_refused_page_form_keeps_the_uploaded_files_as_pending, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login(EMPLOYEE).await;
    let agent = app.login(AGENT).await;
    let data = binary(5000);

    // No subject: refused, and the file comes back as a pending file of the form (hidden id, remove checkbox).
    let (ct, body) = multipart(&[("category", "vpn"), ("subject", ""), ("body", "Allego il log")], &[("file", "vpn.log", "text/plain", &data)]);
    let r = employee.post(app.at(&format!("/orgs/{region}/helpdesk/tickets"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("vpn.log") && html.contains("name=\"pending\""), "the file is listed as pending");
    assert!(html.contains("Allego il log"), "what was typed stays");
    let id = html.split("name=\"pending\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // An empty file input sends an empty part: ignored. The pending id goes back, the ticket opens with the file.
    let (ct, body) = multipart(
        &[("category", "vpn"), ("subject", "VPN lenta"), ("body", "Allego il log"), ("pending", &id)],
        &[("file", "", "application/octet-stream", b"")],
    );
    let r = employee.post(app.at(&format!("/orgs/{region}/helpdesk/tickets"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let ticket = to.split("/tickets/").nth(1).unwrap().split('?').next().unwrap().to_owned();
    let d = json_call(&app, &agent, "GET", &format!("{}/{ticket}", tickets_url(region)), None, 200).await;
    let files = d["messages"][0]["attachments"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "{d}");
    assert_eq!((files[0]["id"].as_str().unwrap(), files[0]["sha256"].as_str().unwrap()), (id.as_str(), sha(&data).as_str()));
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM files").await, 1, "uploaded once");

    // The agent's note with an empty body: refused, its file kept; ticked "remove" drops it on the next try.
    let (ct, body) = multipart(&[("body", "")], &[("file", "nota.txt", "text/plain", b"solo agenti")]);
    let r = agent.post(app.at(&format!("/orgs/{region}/helpdesk/tickets/{ticket}/note"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("nota.txt"));
    let nid = html.split("name=\"pending\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (ct, body) = multipart(&[("body", "Senza file"), ("pending", &nid), ("remove", &nid)], &[]);
    let r = agent.post(app.at(&format!("/orgs/{region}/helpdesk/tickets/{ticket}/note"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let d = json_call(&app, &agent, "GET", &format!("{}/{ticket}", tickets_url(region)), None, 200).await;
    assert_eq!(d["messages"][1]["body"], "Senza file");
    assert_eq!(d["messages"][1]["attachments"].as_array().unwrap().len(), 0);
    // Someone else's pending id on a form shows nothing and attaches nothing.
    let (ct, body) = multipart(&[("body", "Rubo"), ("pending", &nid)], &[]);
    let r = employee.post(app.at(&format!("/orgs/{region}/helpdesk/tickets/{ticket}/reply"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(!r.text().await.unwrap().contains("nota.txt"));
    app
});

both_engines!(mail_delivered_with_attachments_stores_them_and_names_the_dropped, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let agent = app.login(AGENT).await;
    let v = json_call(&app, &admin, "POST", &format!("/api/v1/orgs/{region}/helpdesk/mail/token"), None, 201).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let png = binary(3000);
    let b64 = base64_lines;
    let big = vec![0u8; 10 * 1024 * 1024 + 1];
    let raw = format!(
        "From: {EMPLOYEE}\r\nTo: assistenza@regione.example\r\nSubject: Stampante\r\nMessage-ID: <att1@client.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLa stampante non stampa, allego la foto.\r\n\
         --b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"foto.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"enorme.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b1--\r\n",
        b64(&png),
        b64(&big)
    );
    let r = Client::new()
        .post(app.at(&format!("/api/v1/helpdesk/inbound/{region}")))
        .header("content-type", "message/rfc822")
        .bearer_auth(&token)
        .body(raw)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!((s, v["outcome"].as_str()), (200, Some("opened")), "{v}");
    let ticket = v["ticket_id"].as_str().unwrap();
    let d = json_call(&app, &agent, "GET", &format!("{}/{ticket}", tickets_url(region)), None, 200).await;
    let m = &d["messages"][0];
    let files = m["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{d}");
    assert_eq!(files[0]["name"], "foto.png");
    assert_eq!(files[0]["content_type"], "image/png");
    assert_eq!(files[0]["sha256"], sha(&png));
    let body = m["body"].as_str().unwrap();
    assert!(body.starts_with("La stampante non stampa"), "{body}");
    assert!(body.contains("enorme.bin") && body.contains("attachment dropped"), "{body}");
    let (s, _, bytes) = fetch(&app, &agent, &format!("{}/{ticket}/attachments/{}", tickets_url(region), files[0]["id"].as_str().unwrap())).await;
    assert_eq!((s, sha(&bytes)), (200, sha(&png)));
    app
});

both_engines!(pending_files_never_attached_are_swept_after_a_day, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login(EMPLOYEE).await;
    let (_, old) = upload(&app, &employee, region, "vecchio.txt", "text/plain", b"vecchio").await;
    let (_, fresh) = upload(&app, &employee, region, "nuovo.txt", "text/plain", b"nuovo").await;
    let d = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Con file", "body": "x", "attachments": [fresh["id"]]})), 201).await;
    assert_eq!(d["messages"][0]["attachments"][0]["id"], fresh["id"]);
    // A day and a bit later: the never-attached file goes, the attached one stays.
    let later = agilekit_kernel::clock::now() + time::Duration::hours(25);
    assert_eq!(agilekit_kernel::files::sweep(&app.db, later).await.unwrap(), 1);
    let left = count(&app.db, "SELECT COUNT(*) FROM files").await;
    assert_eq!(left, 1);
    let v = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Tardi", "body": "x", "attachments": [old["id"]]})), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "attachments[0]"), "{v}");
    app
});

both_engines!(another_organisations_ids_on_the_file_routes_answer_404, |app| async move {
    // The victim: a ticket of the region with a file; the attacker: the town's admin, with a session and a token.
    let region = app.org_id("r_lombar").await;
    let employee = app.login(EMPLOYEE).await;
    let (_, f) = upload(&app, &employee, region, "vittima.txt", "text/plain", b"dati della vittima").await;
    let d = json_call(&app, &employee, "POST", &tickets_url(region),
        Some(json!({"category": "vpn", "subject": "Vittima", "body": "x", "attachments": [f["id"]]})), 201).await;
    let ticket = d["ticket"]["id"].as_str().unwrap().to_owned();
    let attacker = app.login("admin@comune.example").await;
    let before = count(&app.db, "SELECT COUNT(*) FROM files").await;
    for (method, template, _) in SCOPED_ROUTES {
        let path = template.replace("{org}", &region.to_string()).replace("{ticket}", &ticket).replace("{file}", f["id"].as_str().unwrap());
        let rb = attacker.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.at(&path));
        let rb = if *method == "POST" {
            let (ct, body) = multipart(&[], &[("file", "x.txt", "text/plain", b"x")]);
            rb.header("content-type", ct).body(body)
        } else {
            rb
        };
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(s == 404 || s == 403, "{method} {path}: {s}");
        assert!(!text.contains("dati della vittima"), "{method} {path}");
    }
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM files").await, before);
    app
});
