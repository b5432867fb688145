//! The audit log: who may read which part of it, its filters and pages, the CSV export, and `agilekit audit verify`
//! run as a real process against a chain that is intact, edited, or missing entries.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use serde_json::json;

use crate::both_engines;
use crate::helpers::*;

/// Appends entries through the kernel, in one transaction, as a service would.
async fn record_many(
    app: &TestApp,
    org: Option<OrgId>,
    actor: Option<AccountId>,
    action: &str,
    entity: &str,
    ids: &[String],
) {
    let mut tx = app.db.begin().await.unwrap();
    let who = Actor { account: actor, ip: Some("192.0.2.7".into()) };
    for id in ids {
        audit::record(
            &mut tx,
            &who,
            Change {
                org,
                action,
                entity,
                entity_id: id.clone(),
                before: Some(json!({"state": "old", "same": 1})),
                after: Some(json!({"state": "new", "same": 1})),
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn record_one(app: &TestApp, org: Option<OrgId>, action: &str, entity: &str, id: &str) {
    record_many(app, org, None, action, entity, &[id.to_owned()]).await;
}

async fn get(c: &reqwest::Client, url: String, query: &[(&str, &str)]) -> (u16, String) {
    let r = c.get(url).query(query).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

both_engines!(org_log_is_for_its_admins_and_hr_and_shows_only_that_organisation, |app| async move {
    let region = app.org_id("r_lombar").await;
    let comune = app.org_id("c_b157").await;
    record_one(&app, Some(region), "probe.touch", "probe", "visible-lombardia").await;
    record_one(&app, Some(comune), "probe.touch", "probe", "secret-brescia").await;
    record_one(&app, None, "probe.touch", "probe", "platform-wide").await;
    let path = format!("/orgs/{region}/audit");

    for who in ["admin@regione.example", "hr@regione.example", "operatore@aria.example"] {
        let (status, body) = get(&app.login(who).await, app.at(&path), &[]).await;
        assert_eq!(status, 200, "{who} may read the region's log");
        assert!(body.contains("visible-lombardia"), "{who} sees the region's entries");
        assert!(!body.contains("secret-brescia"), "another organisation's entries never show");
        assert!(!body.contains("platform-wide"), "entries without an organisation are for platform admins only");
    }
    let body = get(&app.login("admin@regione.example").await, app.at(&path), &[]).await.1;
    assert!(body.contains("Regione Lombardia") && body.contains("192.0.2.7"), "organisation and address are shown");
    assert!(body.contains("<em>sistema</em>"), "a change by no account is the system's");
    assert!(body.contains("state: &#34;old&#34; → &#34;new&#34;"), "the diff shows what changed");
    assert!(!body.contains("same: "), "and not what stayed the same");

    // An employee of the region, an admin of another organisation: the log does not exist for them.
    for who in ["dipendente@regione.example", "admin@comune.example", "cittadino@example.it"] {
        let c = app.login(who).await;
        assert_eq!(get(&c, app.at(&path), &[]).await.0, 404, "{who}");
        assert_eq!(get(&c, app.at(&format!("{path}.csv")), &[]).await.0, 404, "{who} csv");
    }
    let c = app.login("admin@regione.example").await;
    assert_eq!(get(&c, app.at("/orgs/not-a-uuid/audit"), &[]).await.0, 404);
    assert_eq!(get(&c, app.at(&format!("/orgs/{}/audit", OrgId::new())), &[]).await.0, 404);
    let r = app.client().get(app.at(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed out: to the login page");
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    app
});

both_engines!(platform_admins_see_the_whole_log_including_entries_without_organisation, |app| async move {
    let comune = app.org_id("c_b157").await;
    record_one(&app, Some(comune), "probe.touch", "probe", "in-brescia").await;
    record_one(&app, None, "probe.touch", "probe", "platform-wide").await;
    let (status, body) =
        get(&app.login("operatore@aria.example").await, app.at("/admin/audit"), &[("action", "probe.")]).await;
    assert_eq!(status, 200);
    assert!(body.contains("in-brescia") && body.contains("platform-wide") && body.contains("Comune di Brescia"));
    for who in ["admin@regione.example", "hr@regione.example"] {
        let c = app.login(who).await;
        assert_eq!(get(&c, app.at("/admin/audit"), &[]).await.0, 403, "{who}");
        assert_eq!(get(&c, app.at("/admin/audit.csv"), &[]).await.0, 403, "{who} csv");
    }
    app
});

both_engines!(filters_narrow_the_log_and_stay_in_the_form, |app| async move {
    let region = app.org_id("r_lombar").await;
    let admin = app.account_id("admin@regione.example").await;
    record_many(&app, Some(region), Some(admin), "probe.alpha.set", "probe_a", &["a-1".into(), "a-2".into()]).await;
    record_many(&app, Some(region), None, "probe.beta.set", "probe_b", &["b-1".into()]).await;
    let c = app.login("hr@regione.example").await;
    let path = app.at(&format!("/orgs/{region}/audit"));

    let body = get(&c, path.clone(), &[("action", "probe.alpha")]).await.1;
    assert!(body.contains("a-1") && body.contains("a-2") && !body.contains("b-1"));
    assert!(body.contains("value=\"probe.alpha\""), "the filter stays in the form");
    assert!(body.contains("Marco Amministratore") && body.contains("admin@regione.example"), "the actor is named");

    let body = get(&c, path.clone(), &[("entity", "probe_b")]).await.1;
    assert!(body.contains("b-1") && !body.contains("a-1"));
    let body = get(&c, path.clone(), &[("entity_id", "a-2")]).await.1;
    assert!(body.contains("a-2") && !body.contains("a-1"));
    // A prefix's `_` is a character, not a LIKE wildcard.
    let body = get(&c, path.clone(), &[("action", "probe_alpha")]).await.1;
    assert!(!body.contains("a-1"));

    let body = get(&c, path.clone(), &[("actor", "ADMIN@regione.example"), ("action", "probe.")]).await.1;
    assert!(body.contains("a-1") && !body.contains("b-1"), "by who acted");
    let (status, body) = get(&c, path.clone(), &[("actor", "nobody@example.it")]).await;
    assert_eq!(status, 200);
    assert!(body.contains("Nessuna voce corrisponde ai filtri") && !body.contains("a-1"));

    let today = agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date();
    let day = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day());
    let (t, yesterday, tomorrow) = (day(today), day(today.previous_day().unwrap()), day(today.next_day().unwrap()));
    let body = get(&c, path.clone(), &[("action", "probe."), ("from", &t), ("to", &t)]).await.1;
    assert!(body.contains("a-1") && body.contains("b-1"), "today, in Rome, includes what just happened");
    assert!(body.contains(&format!("value=\"{t}\"")));
    let body = get(&c, path.clone(), &[("action", "probe."), ("from", &tomorrow)]).await.1;
    assert!(!body.contains("a-1"));
    let body = get(&c, path.clone(), &[("action", "probe."), ("from", &yesterday), ("to", &yesterday)]).await.1;
    assert!(!body.contains("a-1"));
    app
});

both_engines!(bad_filters_answer_422_with_field_errors_and_keep_the_values, |app| async move {
    let region = app.org_id("r_lombar").await;
    let c = app.login("admin@regione.example").await;
    let path = app.at(&format!("/orgs/{region}/audit"));
    let (status, body) = get(
        &c,
        path.clone(),
        &[("actor", "not-an-email"), ("from", "2026-02-30"), ("action", "org%"), ("entity_id", "x\u{7}y")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("value=\"not-an-email\"")
            && body.contains("value=\"2026-02-30\"")
            && body.contains("value=\"org%\"")
    );
    for field in ["actor", "from", "action", "entity_id"] {
        assert!(body.contains(&format!("id=\"f-{field}-error\"")), "{field} has its error");
    }
    assert!(body.contains("formato non valido") && body.contains("id=\"error-summary\""));

    // A NUL is refused before the page, by the input middleware, as for every page.
    assert_eq!(get(&c, path.clone(), &[("entity_id", "x\u{0}y")]).await.0, 400);

    let (status, body) = get(&c, path.clone(), &[("from", "2026-03-10"), ("to", "2026-03-01")]).await;
    assert_eq!(status, 422);
    assert!(body.contains("id=\"f-to-error\"") && body.contains("value=\"2026-03-01\""));
    let long = "x".repeat(300);
    for q in [[("before_seq", "abc")], [("before_seq", "-4")], [("entity_id", long.as_str())], [("to", "9999-12-31")]] {
        assert_eq!(get(&c, path.clone(), &q).await.0, 422, "{q:?}");
    }
    let (status, body) = get(&c, app.at(&format!("/orgs/{region}/audit.csv")), &[("from", "yesterday")]).await;
    assert_eq!(status, 422, "the export refuses bad filters the same way");
    assert!(body.contains("value=\"yesterday\""));
    // Repeated or unknown parameters are no reason to fail.
    let r = c.get(format!("{path}?from=&from=&zzz=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app
});

fn older_link(body: &str) -> Option<String> {
    let end = body.find("\" rel=\"next\"")?;
    let start = body[..end].rfind("href=\"")? + 6;
    Some(body[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

both_engines!(older_entries_are_paged_by_sequence, |app| async move {
    let region = app.org_id("r_lombar").await;
    let ids: Vec<String> = (0..60).map(|i| format!("page-{i:03}")).collect();
    record_many(&app, Some(region), None, "probe.page", "probe_page", &ids).await;
    let c = app.login("admin@regione.example").await;
    let body = get(&c, app.at(&format!("/orgs/{region}/audit")), &[("entity", "probe_page")]).await.1;
    let shown = |body: &str| ids.iter().filter(|id| body.contains(&format!(">{id}<"))).cloned().collect::<Vec<_>>();
    assert_eq!(shown(&body), ids[10..].to_vec(), "the newest 50");
    let link = older_link(&body).expect("a link to older entries");
    assert!(link.contains("entity=probe_page") && link.contains("before_seq="), "{link}");
    let body = get(&c, app.at(&link), &[]).await.1;
    assert_eq!(shown(&body), ids[..10].to_vec(), "then the 10 before them");
    assert!(older_link(&body).is_none(), "the last page has no older link");
    assert!(body.contains("Torna alle voci più recenti"));
    app
});

both_engines!(csv_export_is_quoted_defused_and_scoped, |app| async move {
    let region = app.org_id("r_lombar").await;
    let comune = app.org_id("c_b157").await;
    let mut tx = app.db.begin().await.unwrap();
    audit::record(
        &mut tx,
        &Actor::system(),
        Change {
            org: Some(region),
            action: "probe.csv",
            entity: "probe",
            entity_id: "=HYPERLINK(\"http://evil.example\")".into(),
            before: Some(json!({"note": "a,b"})),
            after: Some(json!({"note": "say \"hi\"\nbye"})),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    record_one(&app, Some(comune), "probe.csv", "probe", "brescia-only").await;

    let c = app.login("admin@regione.example").await;
    let r = c.get(app.at(&format!("/orgs/{region}/audit.csv"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-r_lombar-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let body = r.text().await.unwrap();
    assert!(body.starts_with("numero,data_ora,id_autore,email_autore,nome_autore,id_organizzazione,organizzazione,azione,oggetto,id_oggetto,prima,dopo,ip,hash\r\n"));
    assert!(body.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\")\","), "a formula is defused and quoted");
    assert!(
        body.contains(",\"{\"\"note\"\":\"\"a,b\"\"}\",\"{\"\"note\"\":\"\"say \\\"\"hi\\\"\"\\nbye\"\"}\","),
        "JSON is quoted"
    );
    assert!(body.contains(",Regione Lombardia,probe.csv,"));
    assert!(!body.contains("brescia-only"), "another organisation's entries stay out of the export");
    // Filters apply to the export too.
    let body = c
        .get(app.at(&format!("/orgs/{region}/audit.csv?action=probe.nothing")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 1, "only the header");

    let c = app.login("operatore@aria.example").await;
    let r = c
        .get(app.at("/admin/audit.csv"))
        .query(&[("action", "probe.csv")])
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("audit-all-"));
    let body = r.text().await.unwrap();
    assert!(body.contains("brescia-only") && body.contains("HYPERLINK"), "the platform export has everything");
    app
});

both_engines!(csv_export_streams_every_page_of_a_large_log, |app| async move {
    let region = app.org_id("r_lombar").await;
    let ids: Vec<String> = (0..2100).map(|i| format!("bulk-{i:04}")).collect();
    record_many(&app, Some(region), None, "probe.bulk", "probe_bulk", &ids).await;
    let c = app.login("operatore@aria.example").await;
    let body = c.get(app.at("/admin/audit.csv?entity=probe_bulk")).send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2101, "a header and every entry, across three pages of 1000");
    let seqs: Vec<i64> = lines[1..].iter().map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "newest first, none missing or repeated");
    assert!(lines[1].contains("bulk-2099") && lines[2100].contains("bulk-0000"));
    app
});

// ---- agilekit audit verify, as a process -----------------------------------------------------------------------

async fn verify(app: &TestApp) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agilekit"));
    for var in ["DATABASE_URL", "AGILEKIT_DATABASE_URL", "AGILEKIT_DATA_DIR", "AGILEKIT_CONFIG"] {
        cmd.env_remove(var);
    }
    cmd.env("AGILEKIT_LOG", "warn").kill_on_drop(true);
    match app.engine {
        Engine::Sqlite => cmd.arg("--data-dir").arg(app.data_dir()),
        Engine::Postgres => cmd.arg("--database-url").arg(app.database_url()),
    };
    cmd.args(["audit", "verify"]);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("verify finishes")
        .expect("run agilekit");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Some history made the ways the application makes it: signing in over HTTP, a password change, services' changes.
async fn history(app: &TestApp) -> i64 {
    let c = app.login("manager@regione.example").await;
    c.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/")]).send().await.unwrap();
    let manager = app.account_id("manager@regione.example").await;
    agilekit_kernel::identity::set_password(&app.db, &Actor::account(manager, None), manager, "another-password-2026")
        .await
        .unwrap();
    let region = app.org_id("r_lombar").await;
    record_many(app, Some(region), Some(manager), "probe.history", "probe", &["h-1".into(), "h-2".into()]).await;
    count(app).await
}

async fn count(app: &TestApp) -> i64 {
    db_run!(&app.db, |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log").fetch_one(p).await.unwrap())
}

async fn after_json(app: &TestApp, seq: i64) -> Option<String> {
    db_run!(&app.db, |p| sqlx::query_scalar::<_, Option<String>>("SELECT after_json FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_one(p)
        .await
        .unwrap())
}

async fn set_after_json(app: &TestApp, seq: i64, v: Option<String>) {
    db_run!(&app.db, |p| {
        sqlx::query("UPDATE audit_log SET after_json = $1 WHERE seq = $2").bind(v).bind(seq).execute(p).await.unwrap();
    });
}

async fn delete(app: &TestApp, seq: i64) {
    db_run!(&app.db, |p| {
        sqlx::query("DELETE FROM audit_log WHERE seq = $1").bind(seq).execute(p).await.unwrap();
    });
}

both_engines!(verify_reports_intact_then_names_an_edited_entry, |app| async move {
    let n = history(&app).await;
    assert!(n > 10, "the demo and the history left entries");
    let (code, out) = verify(&app).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("intact: {n} entries")), "{out}");

    let seq = n / 2;
    let original = after_json(&app, seq).await;
    set_after_json(&app, seq, Some("{\"tampered\":true}".into())).await;
    let (code, out) = verify(&app).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at entry {seq}:")) && out.contains("content does not match"), "{out}");

    set_after_json(&app, seq, original).await;
    let (code, out) = verify(&app).await;
    assert_eq!(code, 0, "put back as it was, the chain holds again: {out}");
    app
});

both_engines!(verify_names_a_missing_middle_entry, |app| async move {
    let n = history(&app).await;
    let seq = n / 2;
    delete(&app, seq).await;
    let (code, out) = verify(&app).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at entry {seq}: missing entry")), "{out}");
    app
});

both_engines!(verify_detects_a_removed_last_entry, |app| async move {
    let n = history(&app).await;
    delete(&app, n).await;
    let (code, out) = verify(&app).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at entry {n}:")) && out.contains("removed"), "{out}");
    app
});
