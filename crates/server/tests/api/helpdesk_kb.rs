//! The help desk's knowledge base (crates/helpdesk/src/kb): articles, full-text search on both engines (Italian
//! stemming on PostgreSQL, prefix search on SQLite), ranking, visibility, suggestions, feedback, markdown, isolation.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::Db;
use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

/// This domain's organisation-scoped routes, each tried by this module's isolation test with another
/// organisation's IDs: (method, path template, plausible body). The guard in `isolation.rs` reads this table.
/// `{org}` is the victim organisation (Regione Lombardia), `{article}` one of its published articles, `{draft}` one
/// of its drafts.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/helpdesk/kb/articles", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/kb/articles", r#"{"title":"Intruso","body":"testo","category":"vpn","tags":""}"#),
    ("GET", "/api/v1/orgs/{org}/helpdesk/kb/search?q=segreto", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/kb/suggest?q=segreto", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/kb/articles/{draft}", ""),
    ("PUT", "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", r#"{"title":"Hacked","body":"x","category":"vpn","tags":""}"#),
    ("DELETE", "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/kb/articles/{draft}/publish", ""),
    ("POST", "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/unpublish", ""),
    ("PUT", "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/feedback", r#"{"helpful":false,"comment":"x"}"#),
    ("GET", "/helpdesk/kb/{article}", ""),
    ("GET", "/helpdesk/kb/{draft}", ""),
    ("POST", "/helpdesk/kb/{article}/feedback", "helpful=no&comment=x"),
    ("GET", "/orgs/{org}/helpdesk/kb", ""),
    ("GET", "/orgs/{org}/helpdesk/kb/new", ""),
    ("POST", "/orgs/{org}/helpdesk/kb", "title=Intruso&body=testo&category=vpn&tags="),
    ("GET", "/orgs/{org}/helpdesk/kb/{article}", ""),
    ("POST", "/orgs/{org}/helpdesk/kb/{article}", "title=Hacked&body=x&category=vpn&tags="),
    ("POST", "/orgs/{org}/helpdesk/kb/{draft}/publish", ""),
    ("POST", "/orgs/{org}/helpdesk/kb/{article}/unpublish", ""),
    ("POST", "/orgs/{org}/helpdesk/kb/{article}/delete", ""),
];

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const AGENT: &str = "agente@regione.example";
const READER: &str = "dipendente@regione.example";
const OPERATOR: &str = "operatore@aria.example";

fn kb(app: &TestApp, org: OrgId, rest: &str) -> String {
    app.at(&format!("/api/v1/orgs/{org}/helpdesk/kb{rest}"))
}

/// Creates an article as `c` in `org` and publishes it when asked; returns its id.
async fn write(app: &TestApp, c: &Client, org: OrgId, title: &str, body: &str, category: &str, publish: bool) -> String {
    let r = c.post(kb(app, org, "/articles")).json(&json!({"title": title, "body": body, "category": category, "tags": "guida"})).send().await.unwrap();
    assert_eq!(r.status(), 201, "create {title}: {}", r.text().await.unwrap_or_default());
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["state"], "draft");
    if publish {
        let r = c.post(kb(app, org, &format!("/articles/{id}/publish"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["state"], "published");
    }
    id
}

async fn search(app: &TestApp, c: &Client, org: OrgId, path: &str, q: &str) -> Vec<Value> {
    let r = c.get(kb(app, org, path)).query(&[("q", q)]).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path} {q:?}");
    r.json::<Vec<Value>>().await.unwrap()
}

fn ids(v: &[Value]) -> Vec<String> {
    v.iter().map(|x| x["id"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn audit_count(db: &Db) -> i64 {
    let row: (i64,) = match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE entity = 'kb_article'").fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE entity = 'kb_article'").fetch_one(p).await.unwrap(),
    };
    row.0
}

// ---------------------------------------------------------------------------------------------------------------
// Tests

both_engines!(kb_articles_are_seen_by_whom_they_should_and_feedback_is_counted, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let operator = app.org_id("aria_spa").await;
    let agent = app.login(AGENT).await;
    let reader = app.login(READER).await;
    let audit_before = audit_count(&app.db).await;

    let draft = write(&app, &agent, region, "Bozza sul certificato", "Testo provvisorio sul certificato digitale", "account", false).await;
    let public = write(&app, &agent, region, "Cambiare la password", "Apri la pagina del profilo e scegli una nuova password.", "account", true).await;
    let op = app.login(OPERATOR).await;
    let shared = write(&app, &op, operator, "Guida alla VPN per tutti", "Installa il client e importa la configurazione.", "vpn", true).await;
    let arpa_admin = app.login("admin@arpa.example").await;
    let other = write(&app, &arpa_admin, arpa, "Password interna ARPA", "La password del certificato ARPA si cambia così.", "account", true).await;

    // The reader: own published + operator-wide; never drafts nor another organisation's.
    let r = reader.get(kb(&app, region, "/articles?drafts=true")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = r.json().await.unwrap();
    let seen = ids(&list);
    assert!(seen.contains(&public) && seen.contains(&shared), "{seen:?}");
    assert!(!seen.contains(&draft) && !seen.contains(&other), "{seen:?}");
    assert!(list.iter().all(|a| a["feedback"].is_null()), "readers do not see the counts");
    assert!(list.iter().any(|a| a["id"] == shared.as_str() && a["operator_wide"] == true));
    let found = ids(&search(&app, &reader, region, "/search", "password certificato").await);
    assert!(!found.contains(&other) && !found.contains(&draft), "{found:?}");
    let found = ids(&search(&app, &reader, region, "/search", "password").await);
    assert_eq!(found, vec![public.clone()]);
    let found = ids(&search(&app, &reader, region, "/search", "configurazione").await);
    assert_eq!(found, vec![shared.clone()], "the operator-wide article is found");
    assert_eq!(reader.get(kb(&app, region, &format!("/articles/{draft}"))).send().await.unwrap().status(), 404);
    assert_eq!(reader.get(kb(&app, region, &format!("/articles/{other}"))).send().await.unwrap().status(), 404);
    assert_eq!(reader.get(kb(&app, region, &format!("/articles/{shared}"))).send().await.unwrap().status(), 200);
    // Readers do not write.
    let r = reader.post(kb(&app, region, "/articles")).json(&json!({"title":"Mio","body":"x","category":"vpn"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // The authors see their drafts.
    let list: Vec<Value> = agent.get(kb(&app, region, "/articles?drafts=true")).send().await.unwrap().json().await.unwrap();
    assert!(ids(&list).contains(&draft));
    let list: Vec<Value> = agent.get(kb(&app, region, "/articles")).send().await.unwrap().json().await.unwrap();
    assert!(!ids(&list).contains(&draft), "drafts only when asked");

    // Feedback: one per reader, changeable; the counts for the authors.
    let fb = |c: &Client, id: &str, helpful: bool, comment: &str| {
        c.put(kb(&app, region, &format!("/articles/{id}/feedback"))).json(&json!({"helpful": helpful, "comment": comment})).send()
    };
    assert_eq!(fb(&reader, &public, true, "").await.unwrap().status(), 200);
    assert_eq!(fb(&reader, &public, false, "Non trovo la pagina del profilo").await.unwrap().status(), 200);
    let manager = app.login("manager@regione.example").await;
    assert_eq!(fb(&manager, &public, true, "").await.unwrap().status(), 200);
    assert_eq!(fb(&reader, &draft, true, "").await.unwrap().status(), 404, "no feedback on a draft");
    let r = reader.put(kb(&app, region, &format!("/articles/{public}/feedback"))).json(&json!({"comment": "x".repeat(3000)})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(fields.contains(&"helpful") && fields.contains(&"comment"), "{v}");
    let a: Value = agent.get(kb(&app, region, &format!("/articles/{public}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["feedback"], json!({"helpful": 1, "not_helpful": 1}), "{a}");
    assert_eq!(a["comments"][0]["comment"], "Non trovo la pagina del profilo");
    let a: Value = reader.get(kb(&app, region, &format!("/articles/{public}"))).send().await.unwrap().json().await.unwrap();
    assert!(a["feedback"].is_null());
    assert_eq!(a["my_feedback"]["helpful"], false);
    let list: Vec<Value> = agent.get(kb(&app, region, "/articles")).send().await.unwrap().json().await.unwrap();
    let row = list.iter().find(|x| x["id"] == public.as_str()).unwrap();
    assert_eq!(row["feedback"], json!({"helpful": 1, "not_helpful": 1}));

    // Unpublish hides; delete removes; every change was audited.
    assert_eq!(agent.post(kb(&app, region, &format!("/articles/{public}/unpublish"))).send().await.unwrap().status(), 200);
    assert_eq!(reader.get(kb(&app, region, &format!("/articles/{public}"))).send().await.unwrap().status(), 404);
    assert_eq!(agent.delete(kb(&app, region, &format!("/articles/{public}"))).send().await.unwrap().status(), 204);
    assert_eq!(agent.get(kb(&app, region, &format!("/articles/{public}"))).send().await.unwrap().status(), 404);
    // 4 creates, 3 publishes, 3 feedbacks, 1 unpublish, 1 delete.
    assert_eq!(audit_count(&app.db).await - audit_before, 12);

    // An organisation without the help desk: its members get 403.
    let comune = app.org_id("c_b157").await;
    let c = app.login("admin@comune.example").await;
    assert_eq!(c.get(kb(&app, comune, "/articles")).send().await.unwrap().status(), 403);
    app
});

both_engines!(kb_search_stems_or_prefixes_and_ranks_titles_first, |app| async move {
    let region = app.org_id("r_lombar").await;
    let agent = app.login(AGENT).await;
    let reader = app.login(READER).await;
    let in_body = write(&app, &agent, region, "La stampante di rete", "Se la stampante non risponde, controlla la connessione al server di stampa.", "workstation", true).await;
    let in_title = write(&app, &agent, region, "Connessione VPN da casa", "Apri il client, scegli il profilo e premi Collega.", "vpn", true).await;
    let accented = write(&app, &agent, region, "Perché la sessione è lenta", "Capita quando la qualità della linea è scarsa.", "meetings", true).await;

    // Ranking: a title match before a body match.
    let hits = search(&app, &reader, region, "/search", "connessione").await;
    assert_eq!(ids(&hits), vec![in_title.clone(), in_body.clone()], "{hits:?}");
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());
    assert!(hits[1]["snippet"].as_str().unwrap().contains("connessione"), "{hits:?}");
    // Prefixes, on both engines: a word being typed.
    assert_eq!(ids(&search(&app, &reader, region, "/search", "connession").await), vec![in_title.clone(), in_body.clone()]);
    // Case folded on both; accents folded on SQLite (unicode61 remove_diacritics); PostgreSQL's Italian
    // configuration keeps them (and "perché" is one of its stop words).
    let folded = match app.engine {
        Engine::Sqlite => "PERCHE qualita",
        Engine::Postgres => "QUALITÀ linea",
    };
    assert_eq!(ids(&search(&app, &reader, region, "/search", folded).await), vec![accented.clone()]);
    // Italian stemming on PostgreSQL: a plural finds the singular. FTS5's stemmer is English-only: on SQLite the
    // plural's prefix does not match, and the suggestions (any word) still find the article by its other words.
    let plural = ids(&search(&app, &reader, region, "/search", "connessioni").await);
    match app.engine {
        Engine::Postgres => assert_eq!(plural, vec![in_title.clone(), in_body.clone()]),
        Engine::Sqlite => assert!(plural.is_empty(), "{plural:?}"),
    }
    // Suggestions for a subject being typed: any word, at most five, best first.
    for i in 0..6 {
        write(&app, &agent, region, &format!("Problema VPN numero {i}"), "La vpn non parte.", "vpn", true).await;
    }
    let s = search(&app, &reader, region, "/suggest", "non riesco ad attivare la VPN da cas").await;
    assert_eq!(s.len(), 5, "{s:?}");
    assert_eq!(s[0]["id"], in_title.as_str(), "the title with both VPN and casa comes first: {s:?}");
    app
});

both_engines!(kb_queries_with_query_syntax_never_fail, |app| async move {
    let region = app.org_id("r_lombar").await;
    let agent = app.login(AGENT).await;
    let reader = app.login(READER).await;
    let id = write(&app, &agent, region, "Accesso con SPID", "Per l'accesso usa SPID o CIE: vedi la guida \"accesso\".", "account", true).await;
    let long = "accesso ".repeat(1300);
    let queries = [
        "\"", "\"\"", "*", "accesso*", "AND OR NOT", "accesso AND", "NOT accesso", ":", "title:accesso", "'", "l'accesso",
        "-", "- accesso", "(", ")", "NEAR(accesso spid)", "^accesso", "{title}: x", "!", "&", "|", "accesso:*", "\\", "%", "_",
        "'; DROP TABLE kb_articles; --", "", "   ", "x² ½ ٣ 日本語 🙂 ß ǅ", "<->", "a <-> b", "!accesso", long.as_str(),
    ];
    for path in ["/search", "/suggest"] {
        for q in queries {
            let r = reader.get(kb(&app, region, path)).query(&[("q", q)]).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} {:?}", q.chars().take(40).collect::<String>());
            let v: Vec<Value> = r.json().await.unwrap();
            let has_word = q.chars().any(char::is_alphanumeric);
            if !has_word {
                assert!(v.is_empty(), "{path} {q:?}: {v:?}");
            }
        }
    }
    // The words in a query with syntax are still found.
    assert_eq!(ids(&search(&app, &reader, region, "/search", "l'accesso").await), vec![id.clone()]);
    assert_eq!(ids(&search(&app, &reader, region, "/search", "title:accesso").await), Vec::<String>::new(), "all words must match");
    assert_eq!(ids(&search(&app, &reader, region, "/search", "NEAR(accesso spid)").await), Vec::<String>::new());
    assert_eq!(ids(&search(&app, &reader, region, "/search", "(accesso) \"spid\"").await), vec![id.clone()]);
    assert_eq!(ids(&search(&app, &reader, region, "/search", long.as_str()).await), vec![id]);
    app
});

both_engines!(kb_markdown_is_sanitised_and_bad_input_gets_field_errors, |app| async move {
    let region = app.org_id("r_lombar").await;
    let agent = app.login(AGENT).await;
    let reader = app.login(READER).await;
    let body = "# Titolo\n\nTesto <script>alert('x')</script> e <img src=x onerror=alert(1)>.\n\n\
        [clic](javascript:alert(1)) [dati](data:text/html;base64,PHNjcmlwdD4=) [guida](https://www.example.org/guida) \
        [scrivici](mailto:help@example.org) ![img](javascript:alert(2))\n\n<div onclick=\"x()\">blocco</div>\n";
    let id = write(&app, &agent, region, "Articolo con HTML", body, "other", true).await;
    let a: Value = reader.get(kb(&app, region, &format!("/articles/{id}"))).send().await.unwrap().json().await.unwrap();
    let html = a["html"].as_str().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<div"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("data:text"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "raw HTML shows as text: {html}");
    assert!(html.contains(r#"<a href="https://www.example.org/guida">guida</a>"#), "{html}");
    assert!(html.contains(r#"<a href="mailto:help@example.org">"#), "{html}");
    assert!(html.contains("<h1>Titolo</h1>"), "{html}");

    // Bad input: every field named, nothing written.
    let r = agent.post(kb(&app, region, "/articles")).json(&json!({"title": " ", "body": "", "category": "cucina", "tags": "a,<b>"})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    for f in ["title", "body", "category", "tags"] {
        assert!(fields.contains(&f), "{f}: {v}");
    }
    let r = agent.put(kb(&app, region, &format!("/articles/{id}"))).json(&json!({"title": "x".repeat(201), "body": "ok", "category": "vpn"})).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let a: Value = agent.get(kb(&app, region, &format!("/articles/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["title"], "Articolo con HTML", "nothing partly applied");
    let r = agent.get(kb(&app, region, "/articles?category=cucina")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    app
});

both_engines!(kb_another_organisations_articles_get_403_or_404_and_change_nothing, |app| async move {
    let db = app.db.clone();
    let region = app.org_id("r_lombar").await;
    let comune = app.org_id("c_b157").await;
    // The attacker's organisation has the help desk too, so that only the scoping can refuse.
    catalogue::subscribe(&db, &Actor::system(), comune, Service::Helpdesk, true).await.unwrap();
    let agent = app.login(AGENT).await;
    let article = write(&app, &agent, region, "Segreto della Regione", "Il segreto regionale è qui.", "other", true).await;
    let draft = write(&app, &agent, region, "Bozza segreta", "Il segreto in bozza.", "other", false).await;
    let reader = app.login(READER).await;
    let r = reader.put(kb(&app, region, &format!("/articles/{article}/feedback"))).json(&json!({"helpful": true, "comment": "Commento riservato"})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let attacker = app.login("admin@comune.example").await;
    // Its own knowledge base works, and does not show the region's articles.
    let own: Vec<Value> = attacker.get(kb(&app, comune, "/articles")).send().await.unwrap().json().await.unwrap();
    assert!(!ids(&own).contains(&article));
    assert!(search(&app, &attacker, comune, "/search", "segreto").await.is_empty());
    assert_eq!(attacker.get(kb(&app, comune, &format!("/articles/{article}"))).send().await.unwrap().status(), 404);
    assert_eq!(attacker.post(kb(&app, comune, &format!("/articles/{draft}/publish"))).send().await.unwrap().status(), 404);

    let fill = |p: &str| p.replace("{org}", &region.to_string()).replace("{article}", &article).replace("{draft}", &draft);
    let before = audit_count(&db).await;
    let mut failures = Vec::new();
    for (method, template, body) in SCOPED_ROUTES {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = attacker.request(m, app.at(&fill(template)));
        if !body.is_empty() {
            let ct = if template.starts_with("/api/") { "application/json" } else { "application/x-www-form-urlencoded" };
            rb = rb.header("content-type", ct).body(body.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 403 && status != 404 {
            failures.push(format!("{method} {template}: {status}"));
        }
        for secret in ["Segreto della Regione", "segreto regionale", "Bozza segreta", "Commento riservato", "Davide Helpdesk"] {
            if text.contains(secret) {
                failures.push(format!("{method} {template}: the answer contains {secret:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "isolation failures:\n{}", failures.join("\n"));
    assert_eq!(audit_count(&db).await, before, "an attempt changed something");
    let a: Value = agent.get(kb(&app, region, &format!("/articles/{article}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["title"], "Segreto della Regione");
    assert_eq!(a["state"], "published");
    assert_eq!(a["feedback"], json!({"helpful": 1, "not_helpful": 0}));
    app
});

both_engines!(kb_pages_search_read_answer_and_edit_without_javascript, |app| async move {
    let region = app.org_id("r_lombar").await;
    let agent = app.login(AGENT).await;
    let reader = app.login(READER).await;
    let editor = format!("/orgs/{region}/helpdesk/kb");

    assert_eq!(agent.get(app.at(&format!("{editor}/new"))).send().await.unwrap().status(), 200);
    // A form with errors keeps what was typed and names each field.
    let r = agent.post(app.at(&editor)).form(&[("title", ""), ("body", "Testo digitato <b>qui</b>"), ("category", ""), ("tags", "rete, vpn")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("Testo digitato ") && !page.contains("<b>qui</b>"), "the body typed is kept, escaped");
    assert!(page.contains("rete, vpn"));
    assert!(page.contains("f-title-error") && page.contains("f-category-error") && page.contains("error-summary"));
    // A valid one: a draft, then published.
    let body = "Per la **connessione** da casa apri il client.\n\n<script>alert('x')</script>\n\nVedi la [guida](javascript:alert(1)).";
    let r = agent.post(app.at(&editor)).form(&[("title", "Connessione VPN da casa"), ("body", body), ("category", "vpn"), ("tags", "rete")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("{editor}/")) && to.ends_with("?done=created"), "{to}");
    let id = to.trim_start_matches(&format!("{editor}/")).trim_end_matches("?done=created").to_owned();
    let page = agent.get(app.at(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<strong>connessione</strong>"), "the preview");
    assert!(!page.contains("<script>alert"));
    // Not yet for readers.
    assert_eq!(reader.get(app.at(&format!("/helpdesk/kb/{id}"))).send().await.unwrap().status(), 404);
    let r = agent.post(app.at(&format!("{editor}/{id}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 303);

    // The reader searches, browses, reads.
    let page = reader.get(app.at("/helpdesk/kb")).query(&[("q", "connession")]).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("/helpdesk/kb/{id}")) && page.contains("<mark>"), "{page}");
    let page = reader.get(app.at("/helpdesk/kb")).query(&[("q", "\"*:-")]).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = reader.get(app.at("/helpdesk/kb")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Connessione VPN da casa") && page.contains("Base di conoscenza"));
    let r = reader.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/helpdesk/kb")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let page = reader.get(app.at(&format!("/helpdesk/kb/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Knowledge base") && page.contains("Was this article helpful?"), "English");
    let r = reader.post(app.at("/lang")).form(&[("lang", "it"), ("next", "/helpdesk/kb")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(!page.contains(&format!("/orgs/{region}/helpdesk/kb")), "no editor link for readers");
    let page = reader.get(app.at(&format!("/helpdesk/kb/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<strong>connessione</strong>") && page.contains("&lt;script&gt;"));
    assert!(!page.contains("<script>alert") && !page.contains("javascript:alert"), "{page}");
    assert!(page.contains("Vedi la guida."), "the link's text stays, without the link");
    let fragment = reader.get(app.at("/helpdesk/kb/suggest")).query(&[("q", "vpn non va")]).send().await.unwrap().text().await.unwrap();
    assert!(fragment.contains(&format!("/helpdesk/kb/{id}")) && !fragment.contains("<html"), "{fragment}");

    // Feedback: required answer, then recorded and shown to the authors.
    let r = reader.post(app.at(&format!("/helpdesk/kb/{id}/feedback"))).form(&[("comment", "Mancano i passaggi")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("f-helpful-error") && page.contains("Mancano i passaggi"));
    let r = reader.post(app.at(&format!("/helpdesk/kb/{id}/feedback"))).form(&[("helpful", "no"), ("comment", "Mancano i passaggi")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let page = reader.get(app.at(&format!("/helpdesk/kb/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"value="no" checked"#), "the reader's answer is shown");
    let page = agent.get(app.at(&format!("{editor}/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Mancano i passaggi"));
    let list = agent.get(app.at(&editor)).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("<td>0</td>\n      <td>1</td>"), "{list}");
    // Readers have no editor.
    assert_eq!(reader.get(app.at(&editor)).send().await.unwrap().status(), 403);
    // Edit with an error keeps the typed text; then delete.
    let r = agent.post(app.at(&format!("{editor}/{id}"))).form(&[("title", "Nuovo titolo"), ("body", ""), ("category", "vpn"), ("tags", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains(r#"value="Nuovo titolo""#));
    let r = agent.post(app.at(&format!("{editor}/{id}/delete"))).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(reader.get(app.at(&format!("/helpdesk/kb/{id}"))).send().await.unwrap().status(), 404);
    app
});
