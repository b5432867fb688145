//! OpenID Connect sign-in against a real provider (npm `oidc-provider`, tests/support/oidc/server.mjs): the public
//! side creates public accounts, an organisation's provider only links its own members, states are single-use and
//! bound to the browser, PKCE is really used; and the administration pages of providers.

use std::process::Stdio;
use std::time::Duration;

use agilekit_kernel::audit::Actor;
use agilekit_kernel::identity::oidc::{self, OidcProviderId, ProviderInput, Scope};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::both_engines;
use crate::helpers::*;

const CLIENT_ID: &str = "agilekit";
const CLIENT_SECRET: &str = "s3cret-test";

/// The provider process; killed when dropped, so a failing test leaves nothing running.
struct Idp {
    issuer: String,
    _child: tokio::process::Child,
}

impl Idp {
    async fn start(app: &TestApp, accounts: serde_json::Value) -> Idp {
        Self::start_with(app, accounts, &[]).await
    }

    /// Starts the provider and reads its address. A start that prints nothing within a minute (seen once in CI on a
    /// loaded two-core machine) is killed and tried once more; the second failure reports what the provider wrote
    /// on stderr.
    async fn start_with(app: &TestApp, accounts: serde_json::Value, env: &[(&str, &str)]) -> Idp {
        let mut last_err = String::new();
        for _attempt in 0..2 {
            match Self::try_start(app, &accounts, env).await {
                Ok(idp) => return idp,
                Err(e) => last_err = e,
            }
        }
        panic!("the OpenID provider did not start twice: {last_err}");
    }

    async fn try_start(app: &TestApp, accounts: &serde_json::Value, env: &[(&str, &str)]) -> Result<Idp, String> {
        let script = std::env::var("AGILEKIT_TEST_OIDC")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/support/oidc/server.mjs").to_owned());
        let key_file = std::env::temp_dir().join("agilekit-test-oidc-signing-key.json");
        let stderr_path = std::env::temp_dir().join(format!("agilekit-test-oidc-{}.log", uuid::Uuid::now_v7()));
        let stderr_file = std::fs::File::create(&stderr_path).expect("a temporary file for the provider's stderr");
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", app.at("/auth/oidc/callback"))
            .env("ACCOUNTS", accounts.to_string())
            .env("SIGNING_KEY_FILE", &key_file)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr_file)
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/support/oidc/server.mjs (npm ci there first)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let line = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(format!("the provider exited without its address; stderr: {}", stderr())),
            Ok(Err(e)) => return Err(format!("reading the provider's stdout: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!("no address within 60 s; stderr: {}", stderr()));
            }
        };
        let _ = std::fs::remove_file(&stderr_path);
        let issuer = line.strip_prefix("oidc listening on ").expect("the documented first line").trim().to_owned();
        Ok(Idp { issuer, _child: child })
    }

    /// Configures this provider in agilekit, as an administrator would.
    async fn register(&self, app: &TestApp, scope: Scope, name: &str) -> OidcProviderId {
        let input = ProviderInput {
            display_name: name.into(),
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            scopes: "openid email profile".into(),
            tax_code_claim: String::new(),
        };
        oidc::create_provider(&app.db, &Actor::system(), scope, &input).await.expect("provider saved").id
    }
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let loc = r.headers().get("location").unwrap_or_else(|| panic!("a redirect from {base}, got {}", r.status()));
    let base = url::Url::parse(base).unwrap();
    base.join(loc.to_str().unwrap()).unwrap().to_string()
}

/// Walks the provider's pages as a person would (login, then consent) until it sends the browser back to agilekit.
async fn through_provider(c: &reqwest::Client, app: &TestApp, auth_url: &str, login: &str) -> String {
    let mut url = auth_url.to_owned();
    for _ in 0..10 {
        if url.starts_with(&app.url) {
            return url;
        }
        let r = if url.contains("/interaction/") {
            let page = c.get(&url).send().await.unwrap().text().await.unwrap();
            if page.contains("name=\"login\"") {
                c.post(&url).form(&[("prompt", "login"), ("login", login), ("password", "any")]).send().await.unwrap()
            } else {
                c.post(&url).form(&[("prompt", "consent")]).send().await.unwrap()
            }
        } else {
            c.get(&url).send().await.unwrap()
        };
        assert!(r.status().is_redirection(), "{url} answered {}", r.status());
        url = location(&r, &url);
    }
    panic!("the provider never sent the browser back")
}

/// From agilekit's start link to the callback URL the provider sends the browser to.
async fn to_callback(c: &reqwest::Client, app: &TestApp, provider: OidcProviderId, next: &str, login: &str) -> String {
    let r = c.get(app.at(&format!("/auth/oidc/{provider}/start?next={next}"))).send().await.unwrap();
    assert_eq!(r.status(), 303, "start redirects to the provider");
    let auth = location(&r, &app.url);
    through_provider(c, app, &auth, login).await
}

fn query(u: &str, key: &str) -> String {
    url::Url::parse(u).unwrap().query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn with_query(u: &str, key: &str, value: &str) -> String {
    let mut url = url::Url::parse(u).unwrap();
    let pairs: Vec<(String, String)> =
        url.query_pairs().into_owned().map(|(k, v)| if k == key { (k, value.to_owned()) } else { (k, v) }).collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    agilekit_kernel::db_run!(&app.db, |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await.unwrap())
}

async fn audited(app: &TestApp, action: &str) -> usize {
    let f = agilekit_kernel::audit::Filter { action_prefix: Some(action.into()), ..Default::default() };
    agilekit_kernel::audit::list(&app.db, &f, 100).await.unwrap().iter().filter(|e| e.action == action).count()
}

fn mario() -> serde_json::Value {
    json!({"mario": {"email": "mario.rossi@example.it", "email_verified": true, "name": "Mario Rossi",
                     "fiscal_number": "TINIT-RSSMRA85T10A562S"}})
}

both_engines!(public_side_login_creates_a_public_account_with_the_tax_code_then_reuses_it, |app| async move {
    let idp = Idp::start(&app, mario()).await;
    let provider = idp.register(&app, Scope::Public, "SPID di prova").await;
    let accounts_before = count(&app, "SELECT COUNT(*) FROM accounts").await;

    let c = app.client();
    let login = c.get(app.at("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains(&format!("href=\"/auth/oidc/{provider}/start\"")), "the login page offers the provider");
    assert!(login.contains("Accedi con SPID di prova"));

    let cb = to_callback(&c, &app, provider, "/", "mario").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 303, "the callback signs in");
    assert_eq!(r.headers()["location"], "/");
    let home = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Mario Rossi"), "home shows the new account's name");

    let acc = agilekit_kernel::identity::find_by_email(&app.db, "mario.rossi@example.it")
        .await
        .unwrap()
        .expect("account created");
    assert!(acc.is_public);
    assert_eq!(acc.tax_code.as_deref(), Some("RSSMRA85T10A562S"), "from fiscal_number, without TINIT-");
    assert!(acc.password_hash.is_none());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM accounts").await, accounts_before + 1);
    let f = agilekit_kernel::audit::Filter { entity_id: Some(acc.id.to_string()), ..Default::default() };
    let trail: Vec<String> =
        agilekit_kernel::audit::list(&app.db, &f, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(trail, ["login.oidc", "oidc.link", "account.create"], "creation, link and login audited, newest first");
    assert_eq!(audited(&app, "oidc.link").await, 1);
    assert_eq!(audited(&app, "login.oidc").await, 1);

    // Another browser, the same person: the same account, through the stored link; `next` is followed.
    let c2 = app.client();
    let cb = to_callback(&c2, &app, provider, "%2Faccount", "mario").await;
    let r = c2.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account");
    let home = c2.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Mario Rossi"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM accounts").await, accounts_before + 1, "no duplicate");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oidc_identities").await, 1);
    assert_eq!(audited(&app, "oidc.link").await, 1, "linked once");
    assert_eq!(audited(&app, "login.oidc").await, 2, "every login audited");
    drop(idp);
    app
});

both_engines!(an_organisations_provider_links_a_member_by_verified_email, |app| async move {
    // Spec-conformant ID token (sub only): the email and its verification come from the userinfo endpoint.
    let accounts = json!({"sara.d": {"email": "Dipendente@Regione.example", "email_verified": true, "name": "S. D."}});
    let idp = Idp::start_with(&app, accounts, &[("CLAIMS_IN_ID_TOKEN", "0")]).await;
    let org = app.org_id("r_lombar").await;
    let provider = idp.register(&app, Scope::Org(org), "Intranet regionale").await;
    let c = app.client();
    let login = c.get(app.at("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Accedi con Intranet regionale (Regione Lombardia)"), "an organisation's provider names it");

    let cb = to_callback(&c, &app, provider, "/", "sara.d").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let home = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Sara Dipendente"), "signed in as the existing member");
    assert!(home.contains("Regione Lombardia"));
    let sara = app.account_id("dipendente@regione.example").await;
    let linked: Vec<(String, String)> = oidc::identities_of(&app.db, sara).await.unwrap();
    assert_eq!(linked, vec![("Intranet regionale".to_owned(), "sara.d".to_owned())]);
    let acc = agilekit_kernel::identity::get(&app.db, sara).await.unwrap();
    assert!(!acc.is_public, "the member stays a member");
    drop(idp);
    app
});

both_engines!(
    an_organisations_provider_refuses_unverified_emails_strangers_and_members_of_other_organisations,
    |app| async move {
        let idp = Idp::start(
            &app,
            json!({
                "unverified": {"email": "dipendente@regione.example", "email_verified": false, "name": "Sara?"},
                "stranger": {"email": "nessuno@example.it", "email_verified": true, "name": "Nessuno",
                             "fiscal_number": "TINIT-RSSMRA85T10A562S"},
                // admin@regione.example is an admin of ARPA too: the region's provider cannot speak for ARPA.
                "twohats": {"email": "admin@regione.example", "email_verified": true}
            }),
        )
        .await;
        let org = app.org_id("r_lombar").await;
        let provider = idp.register(&app, Scope::Org(org), "Intranet regionale").await;
        let accounts_before = count(&app, "SELECT COUNT(*) FROM accounts").await;
        for login in ["unverified", "stranger", "twohats"] {
            let c = app.client();
            let cb = to_callback(&c, &app, provider, "/", login).await;
            let r = c.get(&cb).send().await.unwrap();
            assert_eq!(r.status(), 403, "{login} is refused");
            assert!(
                r.headers().get("set-cookie").is_none_or(|v| !v.to_str().unwrap().starts_with("agilekit_session="))
            );
            let body = r.text().await.unwrap();
            assert!(body.contains("Non esiste un account per questa identità in Regione Lombardia"), "{login}: {body}");
            let home = c.get(app.at("/")).send().await.unwrap().text().await.unwrap();
            assert!(!home.contains("Benvenuto"), "{login} is not signed in");
        }
        assert_eq!(count(&app, "SELECT COUNT(*) FROM accounts").await, accounts_before, "no member created");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM oidc_identities").await, 0, "nothing linked");
        assert_eq!(audited(&app, "login.oidc.refused").await, 3);
        drop(idp);
        app
    }
);

both_engines!(a_state_works_once_only_in_the_browser_that_started_it, |app| async move {
    let idp = Idp::start(&app, mario()).await;
    let provider = idp.register(&app, Scope::Public, "SPID").await;
    let c = app.client();
    let cb = to_callback(&c, &app, provider, "/", "mario").await;
    let state = query(&cb, "state");
    assert!(!state.is_empty());

    // A tampered state: not this browser's login.
    let tampered = with_query(&cb, "state", &format!("{state}x"));
    let r = c.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("non è più valido"));
    // Even presented with a matching cookie, a state agilekit never issued is refused.
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = bare.get(&tampered).header("cookie", format!("agilekit_oidc={state}x")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A callback in another browser (someone sent the victim a link) is refused too.
    let r = bare.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // The genuine callback still works, once.
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = bare.get(&cb).header("cookie", format!("agilekit_oidc={state}")).send().await.unwrap();
    assert_eq!(r.status(), 400, "a replayed state is refused");
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 400, "a replay in the same browser is refused");
    assert_eq!(audited(&app, "login.oidc").await, 1);
    drop(idp);
    app
});

both_engines!(pkce_is_sent_required_and_checked, |app| async move {
    let idp = Idp::start(&app, mario()).await;
    let provider = idp.register(&app, Scope::Public, "SPID").await;

    // What agilekit sends: S256 of the verifier it keeps for that state.
    let c = app.client();
    let r = c.get(app.at(&format!("/auth/oidc/{provider}/start"))).send().await.unwrap();
    let auth = location(&r, &app.url);
    assert!(auth.starts_with(&idp.issuer));
    assert_eq!(query(&auth, "code_challenge_method"), "S256");
    assert_eq!(query(&auth, "redirect_uri"), app.at("/auth/oidc/callback"));
    let state = query(&auth, "state");
    let verifier: String = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_scalar(
        "SELECT pkce_verifier FROM oidc_logins WHERE state = $1"
    )
    .bind(&state)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(query(&auth, "code_challenge"), oidc::pkce_challenge(&verifier));

    // The provider requires PKCE: without a challenge it refuses, and agilekit shows the refusal.
    let no_pkce = {
        let mut u = url::Url::parse(&auth).unwrap();
        let pairs: Vec<(String, String)> =
            u.query_pairs().into_owned().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.to_string()
    };
    let cb = through_provider(&c, &app, &no_pkce, "mario").await;
    assert_eq!(query(&cb, "error"), "invalid_request");
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("non ha autorizzato"));

    // A wrong verifier at the token endpoint fails: the code is bound to the challenge.
    let c = app.client();
    let r = c.get(app.at(&format!("/auth/oidc/{provider}/start"))).send().await.unwrap();
    let auth = location(&r, &app.url);
    let state = query(&auth, "state");
    agilekit_kernel::db_run!(&app.db, |p| {
        sqlx::query("UPDATE oidc_logins SET pkce_verifier = $1 WHERE state = $2")
            .bind("a-different-verifier-of-forty-three-characters-xx")
            .bind(&state)
            .execute(p)
            .await
            .unwrap();
    });
    let cb = through_provider(&c, &app, &auth, "mario").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(agilekit_kernel::identity::find_by_email(&app.db, "mario.rossi@example.it").await.unwrap().is_none());
    drop(idp);
    app
});

both_engines!(a_provider_that_is_down_or_disabled_is_a_page_not_a_500, |app| async move {
    // Nothing listens on the discard port.
    let input = ProviderInput {
        display_name: "Spento".into(),
        issuer: "http://127.0.0.1:9".into(),
        client_id: "x".into(),
        client_secret: "y".into(),
        ..Default::default()
    };
    let down = oidc::create_provider(&app.db, &Actor::system(), Scope::Public, &input).await.unwrap();
    let c = app.client();
    let r = c.get(app.at(&format!("/auth/oidc/{}/start", down.id))).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("non risponde"));

    oidc::set_enabled(&app.db, &Actor::system(), Scope::Public, down.id, false).await.unwrap();
    let r = c.get(app.at(&format!("/auth/oidc/{}/start", down.id))).send().await.unwrap();
    assert_eq!(r.status(), 404, "a disabled provider is not a way in");
    let login = c.get(app.at("/login")).send().await.unwrap().text().await.unwrap();
    assert!(!login.contains("Spento"), "nor is it offered");
    let r = c.get(app.at(&format!("/auth/oidc/{}/start", OidcProviderId::new()))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.at("/auth/oidc/not-an-id/start")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.at("/auth/oidc/callback?code=x&state=y")).send().await.unwrap();
    assert_eq!(r.status(), 400, "a callback nobody started");
    let r = c.get(app.at("/auth/oidc/callback")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    app
});

both_engines!(organisation_admins_manage_their_providers_and_nobody_elses, |app| async move {
    let region = app.org_id("r_lombar").await;
    let arpa = app.org_id("arpa_lom").await;
    let base = format!("/orgs/{region}/oidc");
    let admin = app.login("admin@regione.example").await;
    let page = admin.get(app.at(&base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains(&app.at("/auth/oidc/callback")), "the redirect URI to register is shown");

    // Field-level errors, what was typed kept (never the secret).
    let r = admin
        .post(app.at(&base))
        .form(&[
            ("display_name", "Intranet"),
            ("issuer", "http://idp.example"),
            ("client_id", ""),
            ("client_secret", "top-secret-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("value=\"Intranet\""));
    assert!(body.contains("value=\"http://idp.example\""));
    assert!(body.contains("deve essere un indirizzo https"));
    assert!(body.contains("id=\"f-client_id-error\""));
    assert!(!body.contains("top-secret-1"), "the secret is not sent back");

    let r = admin
        .post(app.at(&base))
        .form(&[
            ("display_name", "Intranet"),
            ("issuer", "https://idp.regione.example/"),
            ("client_id", "agilekit"),
            ("client_secret", "top-secret-1"),
            ("scopes", ""),
            ("tax_code_claim", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let body = admin.get(app.at(&format!("{base}?done=created"))).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Provider aggiunto"));
    assert!(body.contains("https://idp.regione.example"));
    assert!(body.contains("openid email profile") && body.contains("fiscal_number"), "defaults filled in");
    assert!(!body.contains("top-secret-1"), "the secret is never shown back");
    let providers = oidc::list_providers(&app.db, Scope::Org(region)).await.unwrap();
    assert_eq!(providers.len(), 1);
    let id = providers[0].id;
    assert_eq!(audited(&app, "oidc.provider.create").await, 1);
    let entries = agilekit_kernel::audit::list(&app.db, &Default::default(), 20).await.unwrap();
    assert!(entries.iter().all(|e| !e.after_json.as_deref().unwrap_or("").contains("top-secret-1")), "nor audited");

    // Other organisations' people learn nothing; HR reads; only admins change.
    let arpa_admin = app.login("admin@arpa.example").await;
    assert_eq!(arpa_admin.get(app.at(&base)).send().await.unwrap().status(), 404);
    assert_eq!(arpa_admin.post(app.at(&format!("{base}/{id}/delete"))).send().await.unwrap().status(), 404);
    let r = arpa_admin.post(app.at(&format!("/orgs/{arpa}/oidc/{id}/delete"))).send().await.unwrap();
    assert_eq!(r.status(), 404, "another organisation's provider through one's own path");
    assert_eq!(app.login("dipendente@regione.example").await.get(app.at(&base)).send().await.unwrap().status(), 404);
    let hr = app.login("hr@regione.example").await;
    let body = hr.get(app.at(&base)).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("Intranet") && !body.contains("name=\"client_secret\""), "HR reads, without the form");
    assert_eq!(
        hr.post(app.at(&format!("{base}/{id}/enabled"))).form(&[("enabled", "0")]).send().await.unwrap().status(),
        403
    );

    // Disable, enable, delete.
    let r = admin.post(app.at(&format!("{base}/{id}/enabled"))).form(&[("enabled", "0")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(!app.client().get(app.at("/login")).send().await.unwrap().text().await.unwrap().contains("Intranet"));
    admin.post(app.at(&format!("{base}/{id}/enabled"))).form(&[("enabled", "1")]).send().await.unwrap();
    assert!(
        app.client()
            .get(app.at("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Intranet (Regione Lombardia)")
    );
    let r = admin.post(app.at(&format!("{base}/{id}/enabled"))).form(&[("enabled", "maybe")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let confirm = admin.get(app.at(&format!("{base}/{id}/delete"))).send().await.unwrap();
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Vuoi eliminare il provider «Intranet»?"));
    assert_eq!(admin.post(app.at(&format!("{base}/{id}/delete"))).send().await.unwrap().status(), 303);
    assert!(oidc::list_providers(&app.db, Scope::Org(region)).await.unwrap().is_empty());
    assert_eq!(audited(&app, "oidc.provider.disable").await, 1);
    assert_eq!(audited(&app, "oidc.provider.enable").await, 1);
    assert_eq!(audited(&app, "oidc.provider.delete").await, 1);
    app
});

both_engines!(platform_admins_manage_the_public_side_providers, |app| async move {
    assert_eq!(app.login("admin@regione.example").await.get(app.at("/admin/oidc")).send().await.unwrap().status(), 403);
    let op = app.login("operatore@aria.example").await;
    assert_eq!(op.get(app.at("/admin/oidc")).send().await.unwrap().status(), 200);
    let r = op
        .post(app.at("/admin/oidc"))
        .form(&[
            ("display_name", "SPID e CIE"),
            ("issuer", "https://spid-bridge.example"),
            ("client_id", "agilekit"),
            ("client_secret", "bridge-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let public = oidc::list_providers(&app.db, Scope::Public).await.unwrap();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].org_id, None);
    let body = op.get(app.at("/admin/oidc")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("SPID e CIE") && !body.contains("bridge-secret"));
    let login = app.client().get(app.at("/login?next=/account")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains(&format!("href=\"/auth/oidc/{}/start?next=%2Faccount\"", public[0].id)), "{login}");
    assert!(login.contains("Accedi con SPID e CIE<"), "a public-side provider names no organisation");
    // The public side's providers are not an organisation's, nor the other way round.
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let r = admin.post(app.at(&format!("/orgs/{region}/oidc/{}/delete", public[0].id))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app
});
