//! The foundation benchmark: a login storm of thousands of distinct accounts measured against the argon2 bound of
//! this machine, and the signed-in home page measured against `/healthz`, both on the real server started in this
//! process on a fresh SQLite directory or PostgreSQL database, driven over loopback HTTP.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::{password, session};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::cache::NodeCache;
use agilekit_kernel::{Db, catalogue, clock, db_run, tenancy};
use agilekit_server::Config;
use anyhow::{Context, bail};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::{self, Engine};
use crate::report::{self, Latencies, micros, r2, r3};
use crate::sys::{self, CpuSample};

/// The password of every bench account; long enough for the policy, though the policy is never asked.
const BENCH_PASSWORD: &str = "bench-agilekit-password-2026";
/// The organisation the bench accounts belong to: the demo region, with seven active services on its home page.
const BENCH_ORG: &str = "r_lombar";
const BENCH_ORG_NAME: &str = "Regione Lombardia";
const LOGIN_GOAL: f64 = 0.8;
const PAGE_GOAL: f64 = 0.3;
/// The storm stops by itself after this long even if the server has stalled.
const STORM_DEADLINE: Duration = Duration::from_secs(600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Cores other processes may take during a phase before its figures are flagged as disturbed.
const DISTURBED_ABOVE: f64 = 0.25;

pub struct Options {
    engines: Vec<Engine>,
    accounts: usize,
    in_flight: usize,
    page_concurrency: usize,
    page_requests: usize,
    page_secs: u64,
    argon_runs: usize,
    save: bool,
    /// An experiment, not the benchmark: the server's pool opened here with this many connections.
    pool: Option<u32>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            engines: vec![Engine::Sqlite],
            accounts: 4500,
            in_flight: 256,
            page_concurrency: 64,
            page_requests: 20_000,
            page_secs: 20,
            argon_runs: 50,
            save: true,
            pool: None,
        };
        for f in args::flags(args, &["--no-save"])? {
            match f.name.as_str() {
                "--no-save" => o.save = false,
                "--engine" => o.engines = f.engines()?,
                "--accounts" => o.accounts = f.number(1_000_000)?,
                "--in-flight" => o.in_flight = f.number(100_000)?,
                "--page-concurrency" => o.page_concurrency = f.number(100_000)?,
                "--page-requests" => o.page_requests = f.number(10_000_000)?,
                "--page-secs" => o.page_secs = f.number(3600)? as u64,
                "--argon-runs" => o.argon_runs = f.number(100_000)?,
                "--pool" => o.pool = Some(f.number(10_000)? as u32),
                _ => return Err(f.unknown()),
            }
        }
        Ok(o)
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let stamp = report::utc_stamp();
    let commit = sys::git_commit();
    let mut sections = Vec::new();
    let mut failed = Vec::new();
    for &engine in &opts.engines {
        eprintln!("[{}] starting", engine.name());
        let j = match run_engine(engine, &opts, &stamp, &commit).await {
            Ok(j) => j,
            Err(e) => {
                eprintln!("[{}] failed: {e:#}", engine.name());
                failed.push(engine.name());
                continue;
            }
        };
        report::print(&j);
        if opts.save {
            let md = report::markdown(&j);
            for p in report::save(engine.name(), &stamp, &j, &md)? {
                println!("  wrote {}", p.display());
            }
            sections.push(md);
        }
    }
    if opts.save && !sections.is_empty() {
        println!("  wrote {}", report::save_latest(&sections)?.display());
    }
    if !failed.is_empty() {
        bail!("the run failed on {}", failed.join(", "));
    }
    Ok(())
}

/// The PostgreSQL server to create the run's database on.
fn pg_admin_url() -> String {
    std::env::var("AGILEKIT_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh place for the server's data, removed when the run ends whatever happened.
struct Scratch {
    cfg: Config,
    dir: std::path::PathBuf,
    pg_name: Option<String>,
}

impl Scratch {
    async fn create(engine: Engine) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("agilekit-bench-{}", uuid::Uuid::new_v4().simple()));
        let mut cfg = Config { listen: "127.0.0.1:0".into(), data_dir: dir.clone(), ..Config::default() };
        // Nothing listens on the discard port: mail (none is sent here) would stay queued.
        cfg.smtp.host = "127.0.0.1".into();
        cfg.smtp.port = 9;
        let mut pg_name = None;
        if engine == Engine::Postgres {
            let name = format!("agilekit_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&pg_admin_url())
                .await
                .context("cannot reach PostgreSQL (set AGILEKIT_TEST_PG)")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .context("create database")?;
            admin.close().await;
            let mut u = url::Url::parse(&pg_admin_url()).context("AGILEKIT_TEST_PG is not a URL")?;
            u.set_path(&format!("/{name}"));
            cfg.database_url = u.to_string();
            pg_name = Some(name);
        }
        Ok(Scratch { cfg, dir, pg_name })
    }

    async fn destroy(self) {
        if let Some(name) = &self.pg_name {
            let dropped = match sqlx::PgPool::connect(&pg_admin_url()).await {
                Ok(admin) => {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    admin.close().await;
                    r.map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = dropped {
                eprintln!("could not drop database {name}: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run_engine(engine: Engine, opts: &Options, stamp: &str, commit: &str) -> anyhow::Result<Value> {
    let scratch = Scratch::create(engine).await?;
    let result = run_on(engine, &scratch.cfg, opts, stamp, commit).await;
    scratch.destroy().await;
    result
}

async fn engine_version(db: &Db) -> String {
    let v: Result<(String,), _> = match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT 'SQLite ' || sqlite_version()").fetch_one(p).await,
        Db::Postgres(p) => {
            sqlx::query_as("SELECT 'PostgreSQL ' || current_setting('server_version')").fetch_one(p).await
        }
    };
    v.map(|r| r.0).unwrap_or_else(|_| "unknown".into())
}

fn bench_email(i: usize) -> String {
    format!("bench-{i:05}@bench.example")
}

/// Inserts `n` employees of `org` sharing one precomputed hash, in one transaction: hashing thousands of passwords
/// one by one would take minutes, and a login costs the same whichever hash it verifies. Bench data, not audited.
async fn insert_accounts(db: &Db, org: OrgId, n: usize, hash: &str) -> anyhow::Result<()> {
    let now = clock::now();
    let rows: Vec<(AccountId, String, String)> =
        (0..n).map(|i| (AccountId::new(), bench_email(i), format!("Utente Bench {i:05}"))).collect();
    let mut tx = db.begin().await?;
    // 9 parameters a row: 500 rows stay well under both engines' limits on bound parameters.
    for chunk in rows.chunks(500) {
        db_run!(tx &mut tx, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO accounts (id, email, display_name, password_hash, is_public, totp_enabled, disabled, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, (id, email, name)| {
                b.push_bind(*id).push_bind(email.as_str()).push_bind(name.as_str()).push_bind(hash)
                    .push_bind(false).push_bind(false).push_bind(false).push_bind(now).push_bind(now);
            });
            q.build().execute(&mut *c).await?;
            let mut q = sqlx::QueryBuilder::new("INSERT INTO memberships (org_id, account_id, role, created_at) ");
            q.push_values(chunk, |mut b, (id, _, _)| {
                b.push_bind(org).push_bind(*id).push_bind("employee").push_bind(now);
            });
            q.build().execute(&mut *c).await?;
        });
    }
    tx.commit().await?;
    Ok(())
}

async fn run_on(engine: Engine, cfg: &Config, opts: &Options, stamp: &str, commit: &str) -> anyhow::Result<Value> {
    let cores = sys::cores();
    let machine = report::machine_json(cores);
    let db = agilekit_server::open_db(cfg).await?;
    let version = engine_version(&db).await;
    agilekit_server::demo::seed(&db).await?;
    let org = tenancy::list(&db).await?.into_iter().find(|o| o.ipa_code == BENCH_ORG).context("demo organisation")?.id;

    eprintln!("[{}] inserting {} accounts", engine.name(), opts.accounts);
    let t = Instant::now();
    let hash = password::hash(BENCH_PASSWORD.into()).await?;
    insert_accounts(&db, org, opts.accounts, &hash).await?;
    let insert_secs = t.elapsed().as_secs_f64();

    let server_db = match opts.pool {
        Some(n) => Some(pool_of(&db, cfg, n).await?),
        None => None,
    };
    let server_db_handle = server_db.clone().unwrap_or_else(|| db.clone());
    let running = agilekit_server::start(cfg, server_db_handle.clone()).await?;
    let base = running.url();
    let result = async {
        eprintln!("[{}] measuring argon2 on one thread ({} verifications)", engine.name(), opts.argon_runs);
        // Half the single-thread runs before the storm and half after: a neighbour's burst on a shared machine
        // then shows as a gap between the two instead of silently skewing the bound.
        let half = opts.argon_runs.div_ceil(2);
        let before = argon_rate(&hash, half).await?;
        let argon_all = argon_parallel_rate(&hash, opts.argon_runs, cores).await?;
        eprintln!(
            "[{}]   {:.1} verifications/s on one thread, {:.1}/s on {} at once",
            engine.name(),
            before,
            argon_all,
            cores
        );
        eprintln!("[{}] login storm", engine.name());
        let storm = storm(&base, opts.accounts, opts.in_flight).await?;
        eprintln!("[{}]   {} in, {:.1}/s", engine.name(), storm.ok, storm.logins_per_s());
        let after = argon_rate(&hash, half).await?;
        let argon = (before, after);
        let sessions: i64 = db_run!(&db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(p).await?);
        eprintln!("[{}] pages", engine.name());
        let (mut pages, cookie) = pages(engine, &base, org, opts).await?;
        eprintln!("[{}] database pieces of GET /", engine.name());
        pages["breakdown"] = breakdown(engine, &server_db_handle, &cookie, opts).await?;
        anyhow::Ok((argon, argon_all, storm, sessions, pages))
    }
    .await;
    running.stop().await;
    db.close().await;
    if let Some(d) = server_db {
        d.close().await;
    }
    let ((argon_before, argon_after), argon_all, storm, sessions, pages) = result?;
    let argon_per_s = (argon_before + argon_after) / 2.0;

    let bound = argon_per_s * cores as f64;
    let login_other = storm.cpu.other_cores(engine == Engine::Postgres);
    let ratio = storm.logins_per_s() / bound;
    Ok(json!({
        "benchmark": "foundation",
        "engine": engine.name(),
        "engine_version": version,
        "timestamp": stamp,
        "commit": commit,
        "machine": machine,
        "pool_override": opts.pool,
        "login": {
            "accounts": opts.accounts,
            "in_flight": opts.in_flight,
            "setup_insert_secs": r2(insert_secs),
            "argon2_runs": opts.argon_runs,
            "argon2_single_thread_per_s": r2(argon_per_s),
            "argon2_single_thread_before_after_per_s": [r2(argon_before), r2(argon_after)],
            "argon2_ms": r2(1000.0 / argon_per_s),
            "bound_per_s": r2(bound),
            "argon2_all_cores_per_s": r2(argon_all),
            "ratio_to_all_cores": r3(storm.logins_per_s() / argon_all),
            "ok": storm.ok,
            "failures": storm.failures.values().sum::<usize>(),
            "failure_kinds": storm.failures,
            "sessions_in_db": sessions,
            "logins_per_s": r2(storm.logins_per_s()),
            "all_in_secs": r2(storm.all_in.as_secs_f64()),
            "p50_ms": r2(storm.lat.pct_ms(50.0)),
            "p99_ms": r2(storm.lat.pct_ms(99.0)),
            "cpu_process_cores": r2(storm.cpu.process_cores),
            "cpu_postgres_cores": r2(storm.cpu.postgres_cores),
            "cpu_machine_cores": r2(storm.cpu.machine_cores),
            "cpu_other_cores": r2(login_other),
            "disturbed": login_other > DISTURBED_ABOVE,
            "cpu_ms_per_login": r2(storm.cpu_ms_per_login(engine)),
            "ratio": r3(ratio),
            "goal": LOGIN_GOAL,
            "verdict": report::verdict(ratio, LOGIN_GOAL),
        },
        "pages": pages,
    }))
}

/// Argon2 verifications per second on one thread, through the kernel's own `verify` (same parameters, same code
/// as a login), one at a time so only one core works.
async fn argon_rate(hash: &str, runs: usize) -> anyhow::Result<f64> {
    for _ in 0..3 {
        password::verify(BENCH_PASSWORD.into(), Some(hash.to_owned())).await;
    }
    let t = Instant::now();
    for _ in 0..runs {
        if !password::verify(BENCH_PASSWORD.into(), Some(hash.to_owned())).await {
            bail!("the bench password does not verify against its own hash");
        }
    }
    Ok(runs as f64 / t.elapsed().as_secs_f64())
}

/// Verifications per second with every core verifying at once (`cores` sequential loops sharing `runs`): the
/// bound as this machine delivers it right now, memory bandwidth and neighbours included. Reported beside the
/// single-thread bound, not instead of it.
async fn argon_parallel_rate(hash: &str, runs: usize, cores: usize) -> anyhow::Result<f64> {
    let per = runs.div_ceil(cores).max(1);
    let t = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..cores {
        let h = hash.to_owned();
        set.spawn(async move {
            for _ in 0..per {
                password::verify(BENCH_PASSWORD.into(), Some(h.clone())).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok((per * cores) as f64 / t.elapsed().as_secs_f64())
}

/// For `--pool N`: a second pool on the server's database with the kernel's connection options but `n`
/// connections, to see what the pool size does. Migrations and data are already there.
async fn pool_of(db: &Db, cfg: &Config, n: u32) -> anyhow::Result<Db> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    use std::str::FromStr;
    let url = cfg.effective_database_url();
    Ok(match db {
        Db::Postgres(_) => Db::Postgres(
            PgPoolOptions::new()
                .max_connections(n)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(PgConnectOptions::from_str(&url)?)
                .await?,
        ),
        Db::Sqlite(_) => {
            let path = url.trim_start_matches("sqlite://");
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("temp_store", "memory");
            Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(n)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?,
            )
        }
    })
}

/// Like a browser posting a form from our own pages: our Origin, no redirects followed, optionally a cookie.
fn client(base: &str, cookie: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut h = HeaderMap::new();
    h.insert(ORIGIN, HeaderValue::from_str(base)?);
    if let Some(c) = cookie {
        h.insert(COOKIE, HeaderValue::from_str(c)?);
    }
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// `agilekit_session=<token>` from a successful login's response, if it set one.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let prefix = format!("{}=", agilekit_kernel::identity::session::COOKIE);
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&prefix) && kv.len() > prefix.len())
        .map(str::to_owned)
}

async fn login(c: &reqwest::Client, base: &str, email: &str, pw: &str) -> Result<String, String> {
    let r = c
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", pw)])
        .send()
        .await
        .map_err(|e| error_kind(&e))?;
    let status = r.status().as_u16();
    let cookie = session_cookie(&r);
    // Read the body so the connection goes back to the pool.
    let _ = r.bytes().await;
    match (status, cookie) {
        (303, Some(c)) => Ok(c),
        (303, None) => Err("303 without a session cookie".into()),
        (s, _) => Err(format!("HTTP {s}")),
    }
}

fn error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        format!("transport: {e}")
    }
}

struct Storm {
    ok: usize,
    failures: BTreeMap<String, usize>,
    /// From the first request to the last successful login.
    all_in: Duration,
    lat: Latencies,
    cpu: sys::CpuUse,
    wall: Duration,
}

impl Storm {
    /// CPU of the system under test (this process: server, argon2 and client; plus PostgreSQL on that engine)
    /// per successful login.
    fn cpu_ms_per_login(&self, engine: Engine) -> f64 {
        let db = if engine == Engine::Postgres { self.cpu.postgres_cores } else { 0.0 };
        (self.cpu.process_cores + db) * self.wall.as_secs_f64() / self.ok.max(1) as f64 * 1000.0
    }

    fn logins_per_s(&self) -> f64 {
        self.ok as f64 / self.all_in.as_secs_f64().max(1e-9)
    }
}

/// Every bench account logs in once, all at the same time, with at most `in_flight` requests open.
async fn storm(base: &str, n: usize, in_flight: usize) -> anyhow::Result<Storm> {
    let c = client(base, None)?;
    let gate = Arc::new(Semaphore::new(in_flight));
    let base = Arc::new(base.to_owned());
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + STORM_DEADLINE;
    let cpu0 = CpuSample::now();
    let mut tasks = JoinSet::new();
    let mut out = Storm {
        ok: 0,
        failures: BTreeMap::new(),
        all_in: Duration::ZERO,
        lat: Latencies::new(vec![]),
        cpu: Default::default(),
        wall: Duration::ZERO,
    };
    let mut lat = Vec::with_capacity(n);
    let mut record = |r: Result<(Result<String, String>, Duration, Duration), tokio::task::JoinError>,
                      out: &mut Storm| match r {
        Ok((Ok(_), took, at)) => {
            out.ok += 1;
            out.all_in = out.all_in.max(at);
            lat.push(micros(took));
        }
        Ok((Err(kind), _, _)) => *out.failures.entry(kind).or_default() += 1,
        Err(_) => *out.failures.entry("task failed".into()).or_default() += 1,
    };
    let mut launched = 0;
    for i in 0..n {
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, gate.clone().acquire_owned()).await else { break };
        launched += 1;
        let (c, base) = (c.clone(), base.clone());
        tasks.spawn(async move {
            let t = Instant::now();
            let r = login(&c, &base, &bench_email(i), BENCH_PASSWORD).await;
            drop(permit);
            (r, t.elapsed(), start.elapsed())
        });
        while let Some(r) = tasks.try_join_next() {
            record(r, &mut out);
        }
    }
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(r)) => record(r, &mut out),
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len();
                tasks.abort_all();
                *out.failures.entry("stopped at the deadline".into()).or_default() += left;
                break;
            }
        }
    }
    if launched < n {
        *out.failures.entry("not started before the deadline".into()).or_default() += n - launched;
    }
    out.cpu = CpuSample::now().since(&cpu0);
    out.wall = start.elapsed();
    out.lat = Latencies::new(lat);
    Ok(out)
}

/// Calls of one route or piece, possibly gathered over several rounds.
#[derive(Default)]
struct RouteRun {
    ok: usize,
    errors: usize,
    secs: f64,
    lat: Vec<u32>,
    /// Core-seconds used over the run, by this process, by PostgreSQL and by the machine.
    process_core_secs: f64,
    postgres_core_secs: f64,
    machine_core_secs: f64,
}

impl RouteRun {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    fn add(&mut self, other: RouteRun) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.secs += other.secs;
        self.lat.extend(other.lat);
        self.process_core_secs += other.process_core_secs;
        self.postgres_core_secs += other.postgres_core_secs;
        self.machine_core_secs += other.machine_core_secs;
    }

    /// Core-seconds of the system under test: this process, plus the database server on PostgreSQL.
    fn own_core_secs(&self, engine: Engine) -> f64 {
        self.process_core_secs + if engine == Engine::Postgres { self.postgres_core_secs } else { 0.0 }
    }

    /// CPU per successful call: steadier than calls/s when neighbours take cores.
    fn cpu_us_per_call(&self, engine: Engine) -> f64 {
        self.own_core_secs(engine) / self.ok.max(1) as f64 * 1e6
    }

    fn other_cores(&self, engine: Engine) -> f64 {
        ((self.machine_core_secs - self.own_core_secs(engine)) / self.secs.max(1e-9)).max(0.0)
    }

    fn json(self, route: &str, engine: Engine) -> Value {
        let secs = self.secs.max(1e-9);
        let (rps, ok, errors) = (self.rps(), self.ok, self.errors);
        let (cpu_us, other) = (self.cpu_us_per_call(engine), self.other_cores(engine));
        let lat = Latencies::new(self.lat);
        json!({"route": route, "requests": ok + errors, "errors": errors, "secs": r2(secs),
               "rps": r2(rps), "p50_ms": r3(lat.pct_ms(50.0)), "p99_ms": r3(lat.pct_ms(99.0)),
               "cpu_process_cores": r2(self.process_core_secs / secs), "cpu_postgres_cores": r2(self.postgres_core_secs / secs),
               "cpu_machine_cores": r2(self.machine_core_secs / secs), "cpu_other_cores": r2(other),
               "cpu_us_per_call": r2(cpu_us)})
    }
}

/// `concurrency` workers call `op` until `max` calls have started or `limit` has passed; `true` counts as done.
async fn drive<F, Fut>(concurrency: usize, max: usize, limit: Duration, op: F) -> RouteRun
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let sent = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let cpu0 = CpuSample::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (op, sent) = (op.clone(), sent.clone());
        workers.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                let t = Instant::now();
                if op().await { lat.push(micros(t.elapsed())) } else { errors += 1 }
            }
            (lat, errors)
        });
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    while let Some(r) = workers.join_next().await {
        match r {
            Ok((l, e)) => {
                lat.extend(l);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = CpuSample::now().since(&cpu0);
    RouteRun {
        ok: lat.len(),
        errors,
        secs,
        lat,
        process_core_secs: cpu.process_cores * secs,
        postgres_core_secs: cpu.postgres_cores * secs,
        machine_core_secs: cpu.machine_cores * secs,
    }
}

/// GETs `url` through `drive`; a 200 with its whole body read counts.
async fn hammer(c: &reqwest::Client, url: &str, concurrency: usize, max: usize, limit: Duration) -> RouteRun {
    let (c, url) = (c.clone(), Arc::new(url.to_owned()));
    drive(concurrency, max, limit, move || {
        let (c, url) = (c.clone(), url.clone());
        async move {
            match c.get(url.as_str()).send().await {
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}

/// Rounds per measured route: the routes take turns in short slices, so that a neighbour's burst on a shared
/// machine falls on all of them alike and their ratio stays meaningful.
const ROUNDS: usize = 5;

/// Measures `routes` (client, url) in turns: `ROUNDS` slices each, each slice a `ROUNDS`th of the request count
/// and of the time limit.
async fn hammer_in_turns(routes: &[(reqwest::Client, String)], conc: usize, max: usize, secs: u64) -> Vec<RouteRun> {
    let mut out: Vec<RouteRun> = routes.iter().map(|_| RouteRun::default()).collect();
    let (slice_max, slice_time) = (max.div_ceil(ROUNDS), Duration::from_secs(secs) / ROUNDS as u32);
    for (c, url) in routes {
        hammer(c, url, conc, conc * 4, slice_time).await; // warm-up: connections, caches, lazy statics
    }
    for _ in 0..ROUNDS {
        for (i, (c, url)) in routes.iter().enumerate() {
            out[i].add(hammer(c, url, conc, slice_max, slice_time).await);
        }
    }
    out
}

/// The pages phase: `/healthz` as the baseline, the signed-in home page, the same page signed out (no database),
/// and the organisation dashboard when the build has one.
async fn pages(engine: Engine, base: &str, org: OrgId, opts: &Options) -> anyhow::Result<(Value, String)> {
    let anon = client(base, None)?;
    let cookie = login(&anon, base, &bench_email(0), BENCH_PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("login for the pages phase: {e}"))?;
    let c = client(base, Some(&cookie))?;
    let home = c.get(format!("{base}/")).send().await?;
    let status = home.status();
    let body = home.text().await?;
    if status != 200 || !body.contains(BENCH_ORG_NAME) {
        bail!(
            "GET / as a signed-in employee answered {status} without the organisation's name: not the page meant to be measured"
        );
    }
    let mut routes = vec![
        ("GET /healthz", (c.clone(), format!("{base}/healthz"))),
        ("GET /", (c.clone(), format!("{base}/"))),
        // Signed out, `GET /` renders the same layout without touching the database: middleware plus rendering.
        ("GET / (signed out)", (anon.clone(), format!("{base}/"))),
    ];
    // The organisation dashboard is for those who may view the organisation: its administrator.
    let org_url = format!("{base}/orgs/{org}");
    let mut org_note = match login(&anon, base, "admin@regione.example", agilekit_server::demo::PASSWORD).await {
        Ok(admin_cookie) => {
            let a = client(base, Some(&admin_cookie))?;
            let probe = a.get(&org_url).send().await?;
            let st = probe.status();
            let body = probe.text().await.unwrap_or_default();
            if st == 200 && body.contains(BENCH_ORG_NAME) {
                routes.push(("GET /orgs/{id}", (a, org_url)));
                String::new()
            } else {
                format!("not measured: GET /orgs/{{id}} answered {} in this build", st.as_u16())
            }
        }
        Err(e) => format!("not measured: the admin's login failed ({e})"),
    };
    let (conc, max, secs) = (opts.page_concurrency, opts.page_requests, opts.page_secs);
    let targets: Vec<(reqwest::Client, String)> = routes.iter().map(|(_, t)| t.clone()).collect();
    let runs = hammer_in_turns(&targets, conc, max, secs).await;
    let rps: Vec<f64> = runs.iter().map(RouteRun::rps).collect();
    let ratio = rps[1] / rps[0].max(1e-9);
    // The same ratio from CPU per request: what it would be with the machine to ourselves.
    let ratio_by_cpu = runs[0].cpu_us_per_call(engine) / runs[1].cpu_us_per_call(engine).max(1e-9);
    let other = runs.iter().map(|r| r.other_cores(engine)).fold(0.0, f64::max);
    if let Some(org_rps) = rps.get(3) {
        org_note = format!("measured as admin@regione.example, {:.2} of /healthz", org_rps / rps[0].max(1e-9));
    }
    let routes: Vec<Value> = runs.into_iter().zip(&routes).map(|(r, (name, _))| r.json(name, engine)).collect();
    let v = json!({
        "concurrency": conc, "max_requests": max, "max_secs": secs, "rounds": ROUNDS,
        "routes": routes,
        "ratio_dashboard_healthz": r3(ratio),
        "ratio_by_cpu": r3(ratio_by_cpu),
        "goal": PAGE_GOAL,
        "verdict": report::verdict(ratio, PAGE_GOAL),
        "other_cores_max": r2(other),
        "disturbed": other > DISTURBED_ABOVE,
        "org_dashboard_note": org_note,
    });
    Ok((v, cookie))
}

type Check = Pin<Box<dyn Future<Output = bool> + Send>>;
/// A named piece of the page's database work, called with what it needs.
type Piece = (&'static str, fn(Arc<Probe>) -> Check);

/// What the database pieces of `GET /` need: the session's token, its account and current organisation, and a
/// node cache of its own.
struct Probe {
    db: Db,
    token: String,
    account: AccountId,
    org: OrgId,
    cache: Arc<NodeCache>,
}

/// The database work of one `GET /` for the signed-in employee without the node cache: the session, the principal
/// (account, memberships with their organisations), the organisation's active services.
async fn home_queries(p: &Probe) -> anyhow::Result<()> {
    session::lookup(&p.db, &p.token).await?.context("session")?;
    Principal::load(&p.db, p.account).await?;
    catalogue::active_services(&p.db, p.org).await?;
    Ok(())
}

/// The same through the node cache, as `web::auth::resolve` and the home page do.
async fn cached_home_queries(p: &Probe) -> anyhow::Result<()> {
    p.cache.session(&p.db, &p.token).await?.context("session")?;
    p.cache.principal(&p.db, p.account).await?;
    p.cache.active_services(&p.db, p.org).await?;
    Ok(())
}

/// Each database piece of `GET /` called directly (no HTTP, no rendering) at the pages' concurrency, to see which
/// piece costs most and what the page could serve at best.
async fn breakdown(engine: Engine, db: &Db, cookie: &str, opts: &Options) -> anyhow::Result<Value> {
    let token = cookie.split_once('=').map(|(_, v)| v.to_owned()).context("session cookie")?;
    let s = session::lookup(db, &token).await?.context("the pages' session is gone")?;
    let principal = Principal::load(db, s.account_id).await?;
    let org = s.current_org_id.or(principal.orgs().first().copied()).context("the employee has no organisation")?;
    // Without the cache: the session 1, the principal 2 (account; memberships with organisations), services 1.
    let queries = 4;
    let cache = NodeCache::unshared(db);
    let probe = Arc::new(Probe { db: db.clone(), token, account: s.account_id, org, cache });
    if let Db::Postgres(_) = db {
        // An unshared cache serves only once its listener has subscribed.
        let (_stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(agilekit_kernel::cache::listen(db.clone(), probe.cache.clone(), rx));
        let t0 = Instant::now();
        while !probe.cache.is_live() && t0.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::mem::forget(_stop);
    }
    let pieces: [Piece; 6] = [
        ("SELECT 1", |p| Box::pin(async move { p.db.ping().await })),
        ("session::lookup", |p| Box::pin(async move { matches!(session::lookup(&p.db, &p.token).await, Ok(Some(_))) })),
        ("Principal::load", |p| Box::pin(async move { Principal::load(&p.db, p.account).await.is_ok() })),
        ("catalogue::active_services", |p| Box::pin(async move { catalogue::active_services(&p.db, p.org).await.is_ok() })),
        ("all of GET / without the node cache", |p| Box::pin(async move { home_queries(&p).await.is_ok() })),
        ("all of GET / through the node cache", |p| Box::pin(async move { cached_home_queries(&p).await.is_ok() })),
    ];
    let (conc, max, limit) =
        (opts.page_concurrency, opts.page_requests.min(10_000), Duration::from_secs(opts.page_secs.min(10)));
    let mut rows = Vec::new();
    for (name, f) in pieces {
        let p = probe.clone();
        let r = drive(conc, max, limit, move || f(p.clone())).await;
        rows.push(r.json(name, engine));
    }
    Ok(json!({"queries_per_request": queries, "concurrency": conc, "pieces": rows}))
}
