//! Full-text search of the help-desk queue (`q` on the list, the count and the queue page), on both engines:
//! subject and message bodies (internal notes included: agents only), Italian stemming on PostgreSQL and word
//! prefixes with a final vowel dropped on SQLite, with the other filters and keyset pages, never across
//! organisations, never for requesters, and never a 500 whatever the query text.

use agilekit_kernel::ids::OrgId;
use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::*;

/// Searches of another organisation's queue (the isolation test tries them with another organisation's IDs).
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets?q=segreto", ""),
    ("GET", "/api/v1/orgs/{org}/helpdesk/tickets/count?q=segreto", ""),
    ("GET", "/orgs/{org}/helpdesk?q=segreto", ""),
];

async fn send(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = c.request(m, &url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn post(app: &TestApp, c: &Client, path: &str, body: Value, want: u16) -> Value {
    let (s, v, text) = send(c, "POST", app.at(path), Some(body.clone())).await;
    assert_eq!(s, want, "POST {path} {body} answered {s}: {text}");
    v
}

async fn get(app: &TestApp, c: &Client, path: &str, want: u16) -> Value {
    let (s, v, text) = send(c, "GET", app.at(path), None).await;
    assert_eq!(s, want, "GET {path} answered {s}: {text}");
    v
}

fn tickets_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/tickets")
}

async fn open(app: &TestApp, c: &Client, org: OrgId, subject: &str, body: &str) -> String {
    let t = post(app, c, &tickets_url(org), json!({"category": "workstation", "subject": subject, "body": body}), 201).await;
    t["ticket"]["id"].as_str().unwrap().to_owned()
}

/// The ids a search of the region's queue finds (one page of up to 100).
async fn found(app: &TestApp, c: &Client, org: OrgId, query: &str) -> Vec<String> {
    let v = get(app, c, &format!("{}?limit=100&{query}", tickets_url(org)), 200).await;
    v["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

async fn count(app: &TestApp, c: &Client, org: OrgId, query: &str) -> i64 {
    get(app, c, &format!("{}/count?{query}", tickets_url(org)), 200).await["count"].as_i64().unwrap()
}

both_engines!(a_word_of_a_message_finds_its_ticket_with_stemming_or_prefixes, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let vpn = open(&app, &employee, region, "La VPN non si connette", "Errore di handshake dalle otto.").await;
    let printer = open(&app, &employee, region, "Stampante di casa", "La stampante non viene rilevata dal portatile.").await;
    let _other = open(&app, &employee, region, "Monitor senza segnale", "Schermo nero all'avvio.").await;

    // A word of the first message, of the subject, in any case.
    assert_eq!(found(&app, &agent, region, "q=handshake").await, [vpn.clone()]);
    assert_eq!(found(&app, &agent, region, "q=VPN").await, [vpn.clone()]);
    assert_eq!(count(&app, &agent, region, "q=handshake").await, 1);
    // A plural finds the singular: Italian stemming on PostgreSQL, the dropped final vowel on SQLite.
    assert_eq!(found(&app, &agent, region, "q=stampanti").await, [printer.clone()]);
    // All the words must match.
    assert_eq!(found(&app, &agent, region, "q=stampante+portatile").await, [printer.clone()]);
    assert!(found(&app, &agent, region, "q=stampante+handshake").await.is_empty());
    assert!(found(&app, &agent, region, "q=inesistente").await.is_empty());
    assert_eq!(count(&app, &agent, region, "q=inesistente").await, 0);
    // Number: "portatili" finds "portatile" (a stem on PostgreSQL, the other endings on SQLite).
    assert_eq!(found(&app, &agent, region, "q=portatili").await, [printer.clone()]);
    match app.engine {
        // Verb forms too: "connettere" and "connette" are both `connett`.
        Engine::Postgres => assert_eq!(found(&app, &agent, region, "q=connettere").await, [vpn.clone()]),
        // Endings only, not prefixes nor verb forms.
        Engine::Sqlite => assert!(found(&app, &agent, region, "q=handsh").await.is_empty()),
    }

    // A later reply and an internal note are searchable at once (agents read notes).
    post(&app, &agent, &format!("{}/{printer}/reply", tickets_url(region)), json!({"body": "Provi a sostituire il toner."}), 200).await;
    post(&app, &agent, &format!("{}/{vpn}/note", tickets_url(region)), json!({"body": "Controllare il concentratore."}), 200).await;
    assert_eq!(found(&app, &agent, region, "q=toner").await, [printer.clone()]);
    // The words may be in different messages: "casa" in the subject, "toner" in the reply.
    assert_eq!(found(&app, &agent, region, "q=casa+toner").await, [printer.clone()]);
    assert_eq!(found(&app, &agent, region, "q=concentratore").await, [vpn.clone()]);
    app
});

both_engines!(search_keeps_the_filters_and_the_keyset_pages, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let mut monitors = Vec::new();
    for i in 0..7 {
        monitors.push(open(&app, &employee, region, &format!("Richiesta {i}"), "Il secondo monitor resta nero.").await);
        open(&app, &employee, region, &format!("Altro {i}"), "Tastiera bloccata.").await;
    }
    // Three of them answered: open, and the newest changes.
    let answered = [monitors[1].clone(), monitors[4].clone(), monitors[5].clone()];
    for id in &answered {
        post(&app, &agent, &format!("{}/{id}/reply", tickets_url(region)), json!({"body": "Controlliamo."}), 200).await;
    }
    assert_eq!(count(&app, &agent, region, "q=monitor").await, 7);
    assert_eq!(count(&app, &agent, region, "q=monitor&state=open").await, 3);
    assert_eq!(count(&app, &agent, region, "q=monitor&state=new").await, 4);

    // Pages of 2 of the open ones: newest change first (the last answered first), each once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("{}?q=monitor&state=open&limit=2", tickets_url(region));
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let p = get(&app, &agent, &path, 200).await;
        pages += 1;
        for t in p["items"].as_array().unwrap() {
            assert_eq!(t["state"], "open");
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match p["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    let mut want = answered.to_vec();
    want.reverse();
    assert_eq!(seen, want);

    // All seven in pages of 3, no duplicates, none of the others.
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("{}?q=monitor&limit=3", tickets_url(region));
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let p = get(&app, &agent, &path, 200).await;
        all.extend(p["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match p["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "{all:?}");
    assert!(monitors.iter().all(|m| all.contains(m)));
    app
});

both_engines!(search_never_crosses_organisations_and_requesters_cannot_search, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let arpa_admin = app.login("admin@arpa.example").await;
    let theirs = open(&app, &arpa_admin, arpa, "Segreto ambientale", "Centralina segreto fuori servizio.").await;
    let ours = open(&app, &employee, region, "Segreto regionale", "Il segreto della regione.").await;

    // Each organisation's staff finds its own only.
    assert_eq!(found(&app, &agent, region, "q=segreto").await, [ours.clone()]);
    assert_eq!(found(&app, &arpa_admin, arpa, "q=segreto").await, [theirs.clone()]);
    assert!(found(&app, &agent, region, "q=centralina").await.is_empty());
    // Another organisation's queue, searched: 404 on every search route, nothing of theirs in the answer.
    for (method, template, _) in SCOPED_ROUTES {
        let path = template.replace("{org}", &arpa.to_string());
        let (s, _, text) = send(&agent, method, app.at(&path), None).await;
        assert_eq!(s, 404, "{method} {path}: {text}");
        assert!(!text.contains("ambientale") && !text.contains(&theirs), "{method} {path}: {text}");
    }

    // Requesters do not search (notes are searched): 403, even on their own tickets; their list still works.
    get(&app, &employee, &format!("{}?q=segreto", tickets_url(region)), 403).await;
    get(&app, &employee, &format!("{}/count?q=segreto", tickets_url(region)), 403).await;
    let mine = get(&app, &employee, &tickets_url(region), 200).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    app
});

both_engines!(query_syntax_garbage_answers_200_or_a_field_error_never_500, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let t = open(&app, &employee, region, "Near the printer", "OR clause NOT here").await;
    let long = "a".repeat(201);
    let garbage = [
        "%22", "*", "NEAR(", "OR%20OR", "%00", "a%00b", "a%22b", "-", "col:x", "((", "%27", "%5C", "^", "vpn*",
        "%22unterminated", "AND", "NOT%20vpn", "%F0%9F%92%A5", "%E2%80%8B", "NEAR(a%20b,%201)", "body:ciao", "{a b}",
        "%2B%2B%2B", "!!!", &long,
    ];
    for g in garbage {
        for path in [format!("{}?q={g}", tickets_url(region)), format!("{}/count?q={g}", tickets_url(region)), format!("/orgs/{region}/helpdesk?q={g}")] {
            let (s, v, text) = send(&agent, "GET", app.at(&path), None).await;
            // 200, or a field error (422); the page's query extractor refuses a NUL outright (400). Never a 500.
            assert!(s == 200 || s == 422 || (s == 400 && path.starts_with("/orgs/")), "GET {path} answered {s}: {text}");
            if s == 422 && !path.starts_with("/orgs/") {
                let errs = v["errors"].as_array().unwrap();
                assert!(errs.iter().any(|e| e["field"] == "q"), "{v}");
            }
        }
    }
    // Operators and quotes are plain words: "OR OR" finds the ticket that says "or", "NEAR(" the one that says near.
    let ids = |v: Value| v["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(get(&app, &agent, &format!("{}?q=printer%22", tickets_url(region)), 200).await), [t.clone()]);
    assert_eq!(ids(get(&app, &agent, &format!("{}?q=OR%20OR", tickets_url(region)), 200).await), [t.clone()]);
    assert_eq!(ids(get(&app, &agent, &format!("{}?q=NEAR(", tickets_url(region)), 200).await), [t.clone()]);
    // Only punctuation is no query: a field error; too long too.
    let v = get(&app, &agent, &format!("{}?q=*", tickets_url(region)), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "q" && e["code"] == "format"), "{v}");
    let v = get(&app, &agent, &format!("{}?q={long}", tickets_url(region)), 422).await;
    assert!(v["errors"].as_array().unwrap().iter().any(|e| e["field"] == "q" && e["code"] == "too-long"), "{v}");
    app
});

both_engines!(the_queue_pages_search_box_round_trips_the_query, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    for i in 0..26 {
        open(&app, &employee, region, &format!("Plotter guasto {i}"), "Il plotter non stampa.").await;
    }
    open(&app, &employee, region, "Cuffie rotte", "Le cuffie gracchiano.").await;

    let r = agent.get(app.at(&format!("/orgs/{region}/helpdesk?q=plotter"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"name="q" value="plotter""#), "the box shows the query");
    assert!(html.contains("<label for=\"q-text\""), "the box has a label");
    assert!(html.contains("Plotter guasto 25") && !html.contains("Cuffie rotte"), "only the matches");
    // The next page keeps the search (and works without JavaScript: a plain link).
    let next = html.split("rel=\"next\"").next().and_then(|s| s.rsplit("href=\"").next()).unwrap().split('"').next().unwrap().replace("&amp;", "&").replace("&#38;", "&");
    assert!(next.contains("q=plotter") && next.contains("after="), "{next}");
    let html2 = agent.get(app.at(&next)).send().await.unwrap().text().await.unwrap();
    let body2 = html2.split("<tbody>").nth(1).unwrap_or("");
    assert!(body2.contains("Plotter guasto 0<") && !body2.contains("Plotter guasto 25<"), "the second page: {next} {body2}");
    assert!(html2.contains(r#"name="q" value="plotter""#));

    // Markup in the query comes back escaped; a query of punctuation only is a 422 with the text kept in the box.
    let r = agent.get(app.at(&format!("/orgs/{region}/helpdesk?q=%3Cscript%3Eplotter"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>plotter"));
    assert!(html.contains("&lt;script&gt;plotter") || html.contains("&#60;script&#62;plotter"), "escaped in the box");
    let r = agent.get(app.at(&format!("/orgs/{region}/helpdesk?q=%22%2A%22"))).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("alert-danger"));
    app
});

/// The ids of a queue listing (no search), newest change first, up to 100.
async fn listed(app: &TestApp, c: &Client, org: OrgId, query: &str) -> Vec<String> {
    found(app, c, org, query).await
}

both_engines!(a_search_is_the_queue_filtered_by_its_words_in_the_queues_order, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let mut scanners = Vec::new();
    for i in 0..6 {
        scanners.push(open(&app, &employee, region, &format!("Scanner {i}"), "Lo scanner di rete non acquisisce.").await);
        open(&app, &employee, region, &format!("Mouse {i}"), "Il mouse non risponde.").await;
    }
    // Gender: "nuovo" finds "nuova" (a stem on PostgreSQL, the other endings on SQLite).
    let new_one = open(&app, &employee, region, "Tastiera nuova", "Serve una tastiera nuova per lo scanner.").await;
    scanners.push(new_one.clone());
    assert_eq!(found(&app, &agent, region, "q=nuovo").await, [new_one.clone()]);

    // Changes that move tickets in the queue or change what the filters see, in no particular order.
    let url = tickets_url(region);
    post(&app, &agent, &format!("{url}/{}/reply", scanners[2]), json!({"body": "Verifichiamo il driver."}), 200).await;
    post(&app, &agent, &format!("{url}/{}/priority", scanners[3]), json!({"priority": "urgent"}), 200).await;
    post(&app, &agent, &format!("{url}/{}/note", scanners[0]), json!({"body": "Sentire il fornitore."}), 200).await;
    let asg = post(&app, &agent, &format!("{url}/{}/assign", scanners[1]), json!({"round_robin": true}), 200).await;
    post(&app, &agent, &format!("{url}/{}/state", scanners[5]), json!({"state": "pending"}), 200).await;
    let (s, _, text) = send(&agent, "PUT", app.at(&format!("{url}/{}/tags", scanners[4])), Some(json!({"tags": ["rete"]}))).await;
    assert_eq!(s, 200, "{text}");
    post(&app, &agent, &format!("{url}/{}/reply", scanners[4]), json!({"body": "Aggiornato il firmware."}), 200).await;
    let assignee = asg["ticket"]["assignee_id"].as_str().or(asg["assignee_id"].as_str()).map(str::to_owned);

    // Whatever the filters, a search answers the queue's tickets that hold the words, in the queue's order.
    let mut filters = vec!["", "state=open", "state=new", "state=pending", "priority=urgent", "priority=normal", "category=workstation", "tag=rete"];
    let by_assignee = assignee.map(|a| format!("assignee={a}"));
    if let Some(a) = &by_assignee {
        filters.push(a.as_str());
    }
    for f in filters {
        let queue: Vec<String> = listed(&app, &agent, region, f).await.into_iter().filter(|id| scanners.contains(id)).collect();
        let search = found(&app, &agent, region, &format!("q=scanner&{f}")).await;
        assert_eq!(search, queue, "filter {f:?}");
        assert_eq!(count(&app, &agent, region, &format!("q=scanner&{f}")).await, queue.len() as i64, "count, filter {f:?}");
    }
    // The filters did filter (the changes above reached the index).
    assert_eq!(found(&app, &agent, region, "q=scanner&priority=urgent").await, [scanners[3].clone()]);
    assert_eq!(found(&app, &agent, region, "q=scanner&state=pending").await, [scanners[5].clone()]);
    assert_eq!(found(&app, &agent, region, "q=scanner&tag=rete").await, [scanners[4].clone()]);
    // The newest change first: the last reply, then the state change, …
    let all = found(&app, &agent, region, "q=scanner").await;
    assert_eq!(all.len(), 7);
    assert_eq!(all[0], scanners[4]);
    assert_eq!(all[1], scanners[5]);
    // Words of the later messages are in (a reply, a note), the words stay after the row is rewritten.
    assert_eq!(found(&app, &agent, region, "q=firmware+scanner").await, [scanners[4].clone()]);
    assert_eq!(found(&app, &agent, region, "q=fornitore").await, [scanners[0].clone()]);
    assert_eq!(found(&app, &agent, region, "q=driver+acquisisce").await, [scanners[2].clone()]);
    app
});

both_engines!(keyset_pages_of_a_search_never_repeat_nor_skip_a_ticket_while_tickets_change, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let url = tickets_url(region);
    let mut p = Vec::new();
    for i in 0..10 {
        p.push(open(&app, &employee, region, &format!("Plotter {i}"), "Il plotter inceppa la carta.").await);
        open(&app, &employee, region, &format!("Cuffie {i}"), "Le cuffie gracchiano.").await;
    }
    let reply = |id: String| {
        let (app, agent, url) = (&app, &agent, &url);
        async move {
            post(app, agent, &format!("{url}/{id}/reply"), json!({"body": "Ci guardiamo."}), 200).await;
        }
    };
    let page = |after: Option<String>| {
        let (app, agent, region) = (&app, &agent, region);
        async move {
            let mut path = format!("{}?q=plotter&limit=3", tickets_url(region));
            if let Some(a) = after {
                path.push_str(&format!("&after={a}"));
            }
            let v = get(app, agent, &path, 200).await;
            let ids: Vec<String> = v["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
            (ids, v["next"].as_str().map(str::to_owned))
        }
    };
    let (first, next) = page(None).await;
    assert_eq!(first, [p[9].clone(), p[8].clone(), p[7].clone()]);
    // Between pages: one not reached yet moves to the top (it will not come again below), one already seen moves
    // to the top, and the cursor's own ticket changes.
    reply(p[2].clone()).await;
    reply(p[8].clone()).await;
    reply(p[7].clone()).await;
    let (second, next) = page(next).await;
    assert_eq!(second, [p[6].clone(), p[5].clone(), p[4].clone()]);
    reply(p[4].clone()).await;
    reply(p[5].clone()).await;
    let (third, next) = page(next).await;
    assert_eq!(third, [p[3].clone(), p[1].clone(), p[0].clone()]);
    assert!(next.is_none(), "{next:?}");
    // The changed ones are at the top now, newest change first.
    let (top, _) = page(None).await;
    assert_eq!(top, [p[5].clone(), p[4].clone(), p[7].clone()]);

    // A bulk action stamps its tickets with one instant: the queue orders them by id, and so does the search, page
    // after page (pages of 3 cut through the shared instant), whatever order the action took them in.
    let shuffled: Vec<String> = [3, 9, 0, 6, 1, 8, 4, 2, 7, 5].iter().map(|&i| p[i].clone()).collect();
    post(&app, &agent, &format!("{url}/bulk"), json!({"ids": shuffled, "state": "pending"}), 200).await;
    let walk = |query: &'static str| {
        let (app, agent, url) = (&app, &agent, &url);
        async move {
            let (mut ids, mut after) = (Vec::new(), None::<String>);
            loop {
                let mut path = format!("{url}?{query}&limit=3");
                if let Some(a) = &after {
                    path.push_str(&format!("&after={a}"));
                }
                let v = get(app, agent, &path, 200).await;
                ids.extend(v["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
                match v["next"].as_str() {
                    Some(n) => after = Some(n.to_owned()),
                    None => break ids,
                }
            }
        }
    };
    let queue = walk("state=pending").await;
    let mut sorted = p.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(queue, sorted, "the queue: one instant, by id");
    assert_eq!(walk("q=plotter&state=pending").await, queue);
    assert_eq!(walk("q=plotter").await[..10], queue[..]);
    app
});

both_engines!(the_index_rebuilt_from_the_tickets_answers_the_same, |app| async move {
    let region = app.org_id("r_lombar").await;
    let employee = app.login("dipendente@regione.example").await;
    let agent = app.login("agente@regione.example").await;
    let url = tickets_url(region);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(open(&app, &employee, region, &format!("Proiettore {i}"), "Il proiettore della sala non si accende.").await);
    }
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        post(&app, &agent, &format!("{url}/{id}/reply"), json!({"body": format!("Lampada sostituita ({i}).")}), 200).await;
    }
    post(&app, &agent, &format!("{url}/{}/state", ids[1]), json!({"state": "pending"}), 200).await;
    let queries = ["q=proiettore", "q=lampade", "q=proiettori&state=open", "q=sala&state=pending", "q=lampada&state=open"];
    let mut before = Vec::new();
    for q in queries {
        before.push(found(&app, &agent, region, q).await);
    }
    assert_eq!(before[0].len(), 8);
    assert_eq!(before[1].len(), 3);

    // The migration's backfill (SQLite 0012, PostgreSQL 0009) over the same tickets.
    match &app.db {
        agilekit_kernel::Db::Sqlite(pool) => {
            let sql = include_str!("../../../../migrations/sqlite/0012_helpdesk_search_queue_order.sql");
            // From the line after the comment that opens the backfill.
            let backfill = sql.split("-- Backfill").nth(1).and_then(|s| s.split_once('\n')).expect("the migration's backfill").1;
            sqlx::raw_sql("INSERT INTO helpdesk_search_fts (helpdesk_search_fts) VALUES ('delete-all'); DELETE FROM helpdesk_search_keys")
                .execute(pool).await.unwrap();
            assert!(found(&app, &agent, region, "q=proiettore").await.is_empty(), "the index was emptied");
            sqlx::raw_sql(sqlx::AssertSqlSafe(backfill)).execute(pool).await.unwrap();
            // Every ticket has its key, from its last change's microsecond.
            let rows: Vec<(i64, time::OffsetDateTime)> = sqlx::query_as(
                "SELECT k.key, t.updated_at FROM helpdesk_tickets t LEFT JOIN helpdesk_search_keys k ON k.ticket_id = t.id",
            )
            .fetch_all(pool).await.unwrap();
            assert!(rows.len() >= 8);
            for (key, at) in rows {
                assert_eq!(key / 2048, (at.unix_timestamp_nanos() / 1000) as i64, "{at}");
            }
        }
        agilekit_kernel::Db::Postgres(pool) => {
            let sql = include_str!("../../../../migrations/postgres/0009_helpdesk_search.sql");
            let backfill = sql.split("-- Backfill.").nth(1).and_then(|s| s.split("CREATE INDEX").next()).expect("the backfill");
            sqlx::query("UPDATE helpdesk_tickets SET search = ''::tsvector").execute(pool).await.unwrap();
            assert!(found(&app, &agent, region, "q=proiettore").await.is_empty(), "the index was emptied");
            sqlx::raw_sql(sqlx::AssertSqlSafe(backfill)).execute(pool).await.unwrap();
        }
    }
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&found(&app, &agent, region, q).await, want, "{q}");
    }
    app
});
