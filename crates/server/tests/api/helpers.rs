//! Spawning the real server per test, on either engine, and clients that behave like a browser.

use std::time::Duration;

use agilekit_kernel::Db;
use agilekit_server::{Config, Running};
use reqwest::header::{HeaderMap, HeaderValue, ORIGIN};

pub use agilekit_server::demo::PASSWORD as DEMO_PASSWORD;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub url: String,
    pub db: Db,
    pub engine: Engine,
    running: Option<Running>,
    pg_name: Option<String>,
    dir: std::path::PathBuf,
}

/// The PostgreSQL server the suite may create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("AGILEKIT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_db_name(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("AGILEKIT_TEST_PG is a URL");
    u.set_path(&format!("/{name}"));
    u.to_string()
}

pub struct Options {
    pub smtp_port: u16,
    pub demo: bool,
    pub body_limit: usize,
    /// Load shedding: requests handled at once, and how long one more waits (`[server] max_in_flight`).
    pub max_in_flight: usize,
    pub shed_wait_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        // Port 9 (discard) on loopback: nothing listens, mail stays queued unless a test starts an SMTP server.
        Options { smtp_port: 9, demo: true, body_limit: 1024 * 1024, max_in_flight: 1024, shed_wait_ms: 1000 }
    }
}

/// The configuration of a test node in `dir`.
fn config(dir: &std::path::Path, opts: &Options) -> Config {
    let mut cfg = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        job_backoff_secs: 1,
        body_limit_bytes: opts.body_limit,
        db_pool_size: 12,
        max_in_flight: opts.max_in_flight,
        shed_wait_ms: opts.shed_wait_ms,
        ..Config::default()
    };
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.port = opts.smtp_port;
    cfg.helpdesk_mail.poll_secs = 1; // the help desk's IMAP poller: quick rounds in tests
    cfg
}

pub async fn spawn(engine: Engine) -> TestApp {
    spawn_with(engine, Options::default()).await
}

pub async fn spawn_with(engine: Engine, opts: Options) -> TestApp {
    let dir = std::env::temp_dir().join(format!("agilekit-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cfg = config(&dir, &opts);
    let mut pg_name = None;
    if engine == Engine::Postgres {
        let name = format!("agilekit_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Db::connect(&pg_admin_url()).await.expect("PostgreSQL for tests (set AGILEKIT_TEST_PG)");
        if let Db::Postgres(p) = &admin {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(p).await.expect("create test database");
        }
        admin.close().await;
        cfg.database_url = with_db_name(&pg_admin_url(), &name);
        pg_name = Some(name);
    }
    let db = agilekit_server::open_db(&cfg).await.expect("open database");
    if opts.demo {
        agilekit_server::demo::seed(&db).await.expect("seed demo data");
    }
    let running = agilekit_server::start(&cfg, db.clone()).await.expect("start server");
    TestApp { url: running.url(), db, engine, running: Some(running), pg_name, dir }
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects, sends our Origin on every request.
    pub fn client(&self) -> reqwest::Client {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(&self.url).expect("origin"));
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(h)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    /// A client signed in as `email` with the demo password.
    pub async fn login(&self, email: &str) -> reqwest::Client {
        let c = self.client();
        let r = c.post(self.at("/login")).form(&[("email", email), ("password", DEMO_PASSWORD)]).send().await.expect("login");
        assert_eq!(r.status(), 303, "login of {email} failed");
        c
    }

    pub async fn org_id(&self, ipa: &str) -> agilekit_kernel::ids::OrgId {
        agilekit_kernel::tenancy::list(&self.db).await.unwrap().into_iter().find(|o| o.ipa_code == ipa).expect("demo org").id
    }

    pub async fn account_id(&self, email: &str) -> agilekit_kernel::ids::AccountId {
        agilekit_kernel::identity::find_by_email(&self.db, email).await.unwrap().expect("demo account").id
    }

    /// Stops the server and removes its database.
    pub async fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.db.close().await;
        if let Some(name) = self.pg_name.take() {
            if let Ok(Db::Postgres(p)) = Db::connect(&pg_admin_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&p).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Defines a test that runs once on SQLite and once on PostgreSQL: `both_engines!(name, |app| async move { … });`
/// The body gets a fresh [`TestApp`] with the demo data and must return it (so it can be cleaned up).
#[macro_export]
macro_rules! both_engines {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::spawn($crate::helpers::Engine::Sqlite).await;
                let app: $crate::helpers::TestApp = $body.await;
                app.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::helpers::spawn($crate::helpers::Engine::Postgres).await;
                let app: $crate::helpers::TestApp = $body.await;
                app.finish().await;
            }
        }
    };
}

/// Like `both_engines!`, for tests that spawn their servers themselves (with their own SMTP port or options):
/// `each_engine!(name, f)` runs `async fn f(engine: Engine)` once per engine.
#[macro_export]
macro_rules! each_engine {
    ($name:ident, $f:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$f($crate::helpers::Engine::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$f($crate::helpers::Engine::Postgres).await;
            }
        }
    };
}

// Added for the audit and outbox tests: the database behind a test server, and a restart on it.
impl TestApp {
    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The URL the server's database answers at: what `agilekit --database-url` (or the data dir, on SQLite) needs.
    pub fn database_url(&self) -> String {
        match &self.pg_name {
            Some(name) => with_db_name(&pg_admin_url(), name),
            None => Config { data_dir: self.dir.clone(), ..Config::default() }.effective_database_url(),
        }
    }

    /// Stops the server and its workers but keeps the database, as a process that exits would.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// Stops the server and starts a new one on the same database with a fresh pool, as a new process would.
    pub async fn restart(&mut self, opts: Options) {
        self.stop().await;
        let mut cfg = config(&self.dir, &opts);
        if self.pg_name.is_some() {
            cfg.database_url = self.database_url();
        }
        let db = agilekit_server::open_db(&cfg).await.expect("reopen database");
        let running = agilekit_server::start(&cfg, db.clone()).await.expect("restart server");
        self.db.close().await;
        self.db = db;
        self.url = running.url();
        self.running = Some(running);
    }
}

// Small JSON helpers shared by the API tests.

/// A request as an API client sends it (JSON body, optional `Idempotency-Key`): the status, the body parsed as JSON
/// (`Null` when it is not) and its text.
pub async fn api_call(c: &reqwest::Client, method: &str, url: String, body: Option<serde_json::Value>, key: Option<&str>) -> (u16, serde_json::Value, String) {
    let mut rb = c.request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), &url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), text)
}

/// [`api_call`] on `app`'s `path`, asserting the status; the parsed body.
pub async fn api_expect(app: &TestApp, c: &reqwest::Client, method: &str, path: &str, body: Option<serde_json::Value>, want: u16) -> serde_json::Value {
    let (s, v, text) = api_call(c, method, app.at(path), body.clone(), None).await;
    assert_eq!(s, want, "{method} {path} {body:?} answered {s}: {text}");
    v
}

/// The (field, code) pairs of a 422 problem.
pub fn field_errors(v: &serde_json::Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| (e["field"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

/// Whether a 422 problem names `field` with `code`.
pub fn has_field_error(v: &serde_json::Value, field: &str, code: &str) -> bool {
    v["errors"].as_array().is_some_and(|a| a.iter().any(|e| e["field"] == field && e["code"] == code))
}

/// The audit chain's length: unchanged means no audited change happened.
pub async fn audit_head(db: &Db) -> i64 {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.expect("audit head"),
        Db::Postgres(p) => sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(p).await.expect("audit head"),
    }
}
