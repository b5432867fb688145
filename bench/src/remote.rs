//! The remote-access benchmark (issue 3): thousands of VPN devices enrolled through the API, a real gateway
//! converging on real WireGuard, and booking contention on pooled workstations, each figure next to a baseline
//! measured in the same run.
//!
//! The real server runs in this process (`agilekit_server::open_db` + `start` on 127.0.0.1:0, a fresh SQLite
//! directory or PostgreSQL database, the demo data seeded) and is driven over loopback HTTP with reqwest. The
//! gateway part starts wireguard-go in a network namespace of its own and runs the gateway agent's own applier
//! (`agilekit_remote_access::agent::Applier`: read the interface, diff, UAPI set, addresses, nftables) in a thread
//! that entered that namespace, fed by the agent's contract (`GET /api/v1/gateway/config` long-poll).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::identity::{self, password, session};
use agilekit_kernel::ids::{AccountId, ApiTokenId, OrgId};
use agilekit_kernel::{Db, clock, db_run, tenancy};
use agilekit_remote_access::agent::{self, Applied, Applier, Desired, GatewayConfig};
use agilekit_remote_access::nft;
use agilekit_remote_access::uapi::{Key, PeerSet, Uapi};
use agilekit_server::Config;
use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::args::{self, Engine};
use crate::report::{self, Latencies, micros, r2, r3};
use crate::sys::{self, CpuSample};

/// The organisation of the run: the demo region, with a /19 VPN network and 4,500 VPN seats.
const ORG: &str = "r_lombar";
const ADMIN: &str = "admin@regione.example";
/// The bench accounts' password: never used to sign in (they call the API with tokens), but an account has one.
const BENCH_PASSWORD: &str = "bench-agilekit-password-2026";
const CONVERGE_GOAL_MS: f64 = 2000.0;
const CHANGE_GOAL_MS: f64 = 200.0;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Every storm stops by itself after this long, even if the server has stalled.
const PHASE_DEADLINE: Duration = Duration::from_secs(600);
/// A revocation that has not reached the interface this long after the API call counts as lost (the contract
/// says 5 s; waiting longer gives the real figure of a slow one).
const CHANGE_DEADLINE: Duration = Duration::from_secs(30);
/// The agent's status reports during the changes: every 10 s (`agilekit gateway`'s default) and after each change.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// The pause before each timed revocation: the previous change's status report has usually gone by then.
const CHANGE_GAP: Duration = Duration::from_secs(1);
/// Cores other processes may take during a phase before its figures are flagged as disturbed.
const DISTURBED_ABOVE: f64 = 0.25;
const UAPI_DIR: &str = "/var/run/wireguard";
/// The bench workstations' hostnames start with this; their addresses are on loopback (127.0.20.0/22), so the
/// server's reachability probe never sends a packet off the machine.
const WS_PREFIX: &str = "bench-pool-";

/// How the applier enforces access groups: as the agent's default (`auto`: nftables when it works in the
/// namespace) or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enforcement {
    Auto,
    None,
}

pub struct Options {
    engines: Vec<Engine>,
    devices: usize,
    concurrency: usize,
    peers: usize,
    converge_runs: usize,
    changes: usize,
    enforcement: Enforcement,
    workstations: usize,
    bookings: usize,
    booking_rounds: usize,
    wireguard: bool,
    save: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            engines: vec![Engine::Sqlite],
            devices: 4500,
            concurrency: 64,
            peers: 5000,
            converge_runs: 3,
            changes: 10,
            enforcement: Enforcement::Auto,
            workstations: 100,
            bookings: 1000,
            booking_rounds: 3,
            wireguard: true,
            save: true,
        };
        for f in args::flags(args, &["--no-save", "--no-wireguard"])? {
            match f.name.as_str() {
                "--no-save" => o.save = false,
                "--no-wireguard" => o.wireguard = false,
                "--engine" => o.engines = f.engines()?,
                // A /19 holds 8,189 devices besides the gateway.
                "--devices" => o.devices = f.number(8000)?,
                "--concurrency" => o.concurrency = f.number(1024)?,
                "--peers" => o.peers = f.number(8000)?,
                "--converge-runs" => o.converge_runs = f.number(20)?,
                "--changes" => o.changes = f.number(100)?,
                "--enforcement" => {
                    o.enforcement = match f.text() {
                        "auto" => Enforcement::Auto,
                        "none" => Enforcement::None,
                        other => return Err(format!("--enforcement: auto or none, not {other:?}")),
                    }
                }
                // Addresses 127.0.20.1 … 127.0.23.250.
                "--workstations" => o.workstations = f.number(1000)?,
                "--bookings" => o.bookings = f.number(8000)?,
                // One day each, from tomorrow: the booking window is 60 days.
                "--booking-rounds" => o.booking_rounds = f.number(30)?,
                _ => return Err(f.unknown()),
            }
        }
        if o.changes >= o.devices {
            return Err("--changes must be below --devices".into());
        }
        Ok(o)
    }

    /// Bench accounts to create: one per device, per gateway peer and per booking attempt of a round.
    fn accounts(&self) -> usize {
        self.devices.max(self.bookings).max(if self.wireguard { self.peers } else { 0 })
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
        let md = report::remote_markdown(&j);
        println!("\n{md}");
        if opts.save {
            for p in report::save_as("remote", engine.name(), &stamp, &j, &md)? {
                println!("  wrote {}", p.display());
            }
            sections.push(md);
        }
    }
    if opts.save && !sections.is_empty() {
        println!("  wrote {}", report::save_latest_as("remote", &sections)?.display());
    }
    if !failed.is_empty() {
        bail!("the run failed on {}", failed.join(", "));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The server's data: a fresh SQLite directory or PostgreSQL database, removed at the end whatever happened

fn pg_admin_url() -> String {
    std::env::var("AGILEKIT_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

struct Scratch {
    cfg: Config,
    dir: PathBuf,
    pg_name: Option<String>,
}

impl Scratch {
    async fn create(engine: Engine) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("agilekit-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut cfg = Config { listen: "127.0.0.1:0".into(), data_dir: dir.clone(), ..Config::default() };
        // Nothing listens on the discard port: the mail a revocation queues for its owner stays queued.
        cfg.smtp.host = "127.0.0.1".into();
        cfg.smtp.port = 9;
        let mut pg_name = None;
        if engine == Engine::Postgres {
            let name = format!("agilekit_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&pg_admin_url()).await.context("cannot reach PostgreSQL (set AGILEKIT_TEST_PG)")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.context("create database")?;
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
                    let r = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
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
    let result = run_on(engine, &scratch, opts, stamp, commit).await;
    scratch.destroy().await;
    result
}

async fn engine_version(db: &Db) -> String {
    let v: Result<(String,), _> = match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT 'SQLite ' || sqlite_version()").fetch_one(p).await,
        Db::Postgres(p) => sqlx::query_as("SELECT 'PostgreSQL ' || current_setting('server_version')").fetch_one(p).await,
    };
    v.map(|r| r.0).unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------------------------------------------
// Bench accounts and their API tokens

/// A personal API token as the kernel issues it: `ak_<prefix>_<secret>`, stored as its SHA-256 with the prefix.
struct NewToken {
    id: ApiTokenId,
    secret: String,
    hash: String,
    prefix: String,
}

impl NewToken {
    fn generate() -> NewToken {
        let secret = session::new_secret();
        let prefix: String = secret.chars().take(8).collect();
        let full = format!("ak_{prefix}_{secret}");
        NewToken { id: ApiTokenId::new(), hash: session::hash_secret(&full), secret: full, prefix: format!("ak_{prefix}") }
    }
}

/// A bench employee and its token.
struct BenchAccount {
    id: AccountId,
    email: String,
    name: String,
    token: NewToken,
}

/// Inserts `n` employees of `org` (one precomputed password hash for all) and a personal API token for each, in one
/// transaction, and returns the tokens. The tokens' last-use stamp is set to now, so that neither the baseline nor
/// the measured calls pay the once-in-five-minutes stamp write on a token's first use. Bench data, not audited.
async fn insert_accounts(db: &Db, org: OrgId, n: usize, hash: &str) -> anyhow::Result<Vec<String>> {
    let now = clock::now();
    let rows: Vec<BenchAccount> = (0..n)
        .map(|i| BenchAccount {
            id: AccountId::new(),
            email: format!("remote-{i:05}@bench.example"),
            name: format!("Utente Remoto {i:05}"),
            token: NewToken::generate(),
        })
        .collect();
    let mut tx = db.begin().await?;
    for chunk in rows.chunks(500) {
        db_run!(tx &mut tx, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO accounts (id, email, display_name, password_hash, is_public, totp_enabled, disabled, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(a.id).push_bind(a.email.as_str()).push_bind(a.name.as_str()).push_bind(hash)
                    .push_bind(false).push_bind(false).push_bind(false).push_bind(now).push_bind(now);
            });
            q.build().execute(&mut *c).await?;
            let mut q = sqlx::QueryBuilder::new("INSERT INTO memberships (org_id, account_id, role, created_at) ");
            q.push_values(chunk, |mut b, a| {
                b.push_bind(org).push_bind(a.id).push_bind("employee").push_bind(now);
            });
            q.build().execute(&mut *c).await?;
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, created_at, last_used_at) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(a.token.id).push_bind(a.id).push_bind("bench").push_bind(a.token.hash.as_str())
                    .push_bind(a.token.prefix.as_str()).push_bind(now).push_bind(now);
            });
            q.build().execute(&mut *c).await?;
        });
    }
    tx.commit().await?;
    Ok(rows.into_iter().map(|a| a.token.secret).collect())
}

/// A token for an existing account (the region's administrator), inserted the same way.
async fn insert_token(db: &Db, account: AccountId) -> anyhow::Result<String> {
    let t = NewToken::generate();
    let now = clock::now();
    db_run!(db, |p| {
        sqlx::query("INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(t.id).bind(account).bind("bench").bind(&t.hash).bind(&t.prefix).bind(now).bind(now)
            .execute(p).await?;
    });
    Ok(t.secret)
}

/// Keeps the tokens' last-use stamps fresh before a measured phase (see [`insert_accounts`]).
async fn refresh_tokens(db: &Db) -> anyhow::Result<()> {
    let now = clock::now();
    db_run!(db, |p| {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE name = 'bench'").bind(now).execute(p).await?;
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(2048)
        .build()?)
}

fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        format!("transport: {e}")
    }
}

/// One API call with a bearer token: the status and the JSON body (`Null` when there is none).
async fn call(c: &reqwest::Client, method: Method, url: &str, token: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let mut req = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.map_err(|e| transport_kind(&e))?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await.map_err(|e| transport_kind(&e))?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A failed call as a short kind for the failure counts: `422 starts_at:slot-taken`, `409 quota-exhausted`.
fn failure_kind(status: u16, body: &Value) -> String {
    let fields: Vec<String> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{}:{}", e["field"].as_str().unwrap_or("?"), e["code"].as_str().unwrap_or("?")))
        .collect();
    match (fields.is_empty(), body["code"].as_str()) {
        (false, _) => format!("{status} {}", fields.join(",")),
        (true, Some(code)) => format!("{status} {code}"),
        (true, None) => format!("HTTP {status}"),
    }
}

/// A call that must answer `want`; its JSON body, or an error that says what came instead.
async fn expect(c: &reqwest::Client, method: Method, url: &str, token: &str, body: Option<&Value>, want: u16) -> anyhow::Result<Value> {
    let what = format!("{method} {url}");
    let (status, v) = call(c, method, url, token, body).await.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if status != want {
        bail!("{what} answered {status} (expected {want}): {v}");
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------------------------
// Measured storms

/// Calls of one route: counts, latencies and the CPU used over them, possibly gathered over several runs.
#[derive(Default)]
struct Measured {
    ok: usize,
    failures: BTreeMap<String, usize>,
    secs: f64,
    lat: Vec<u32>,
    process_core_secs: f64,
    postgres_core_secs: f64,
    machine_core_secs: f64,
}

impl Measured {
    fn errors(&self) -> usize {
        self.failures.values().sum()
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    fn add(&mut self, o: Measured) {
        self.ok += o.ok;
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.secs += o.secs;
        self.lat.extend(o.lat);
        self.process_core_secs += o.process_core_secs;
        self.postgres_core_secs += o.postgres_core_secs;
        self.machine_core_secs += o.machine_core_secs;
    }

    /// Core-seconds of the system under test: this process (server and load generator), plus PostgreSQL.
    fn own_core_secs(&self, engine: Engine) -> f64 {
        self.process_core_secs + if engine == Engine::Postgres { self.postgres_core_secs } else { 0.0 }
    }

    fn cpu_us_per_call(&self, engine: Engine) -> f64 {
        self.own_core_secs(engine) / self.ok.max(1) as f64 * 1e6
    }

    fn other_cores(&self, engine: Engine) -> f64 {
        ((self.machine_core_secs - self.own_core_secs(engine)) / self.secs.max(1e-9)).max(0.0)
    }

    fn json(&self, route: &str, engine: Engine) -> Value {
        let secs = self.secs.max(1e-9);
        let lat = Latencies::new(self.lat.clone());
        json!({"route": route, "requests": self.ok + self.errors(), "ok": self.ok, "errors": self.errors(),
               "failure_kinds": self.failures, "secs": r3(secs), "rps": r2(self.rps()),
               "p50_ms": r3(lat.pct_ms(50.0)), "p99_ms": r3(lat.pct_ms(99.0)), "max_ms": r3(lat.pct_ms(100.0)),
               "cpu_process_cores": r2(self.process_core_secs / secs), "cpu_postgres_cores": r2(self.postgres_core_secs / secs),
               "cpu_machine_cores": r2(self.machine_core_secs / secs), "cpu_other_cores": r2(self.other_cores(engine)),
               "cpu_us_per_call": r2(self.cpu_us_per_call(engine))})
    }
}

/// `conc` workers take the indices `0..n` in turn and call `op(i)` on each, until all are done or
/// [`PHASE_DEADLINE`]; returns what the successful calls gave, by index, and the figures.
async fn storm<T, F, Fut>(n: usize, conc: usize, op: F) -> (Vec<(usize, T)>, Measured)
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
    let cpu0 = CpuSample::now();
    let mut workers = JoinSet::new();
    for _ in 0..conc.clamp(1, n.max(1)) {
        let (op, next) = (op.clone(), next.clone());
        workers.spawn(async move {
            let (mut ok, mut failures, mut lat) = (Vec::new(), BTreeMap::<String, usize>::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    *failures.entry("not started before the deadline".into()).or_default() += 1;
                    continue;
                }
                let t = Instant::now();
                match tokio::time::timeout_at(deadline, op(i)).await {
                    Ok(Ok(v)) => {
                        lat.push(micros(t.elapsed()));
                        ok.push((i, v));
                    }
                    Ok(Err(kind)) => *failures.entry(kind).or_default() += 1,
                    Err(_) => *failures.entry("stopped at the deadline".into()).or_default() += 1,
                }
            }
            (ok, failures, lat)
        });
    }
    let mut out = Vec::with_capacity(n);
    let mut m = Measured::default();
    while let Some(r) = workers.join_next().await {
        match r {
            Ok((ok, failures, lat)) => {
                out.extend(ok);
                for (k, v) in failures {
                    *m.failures.entry(k).or_default() += v;
                }
                m.lat.extend(lat);
            }
            Err(_) => *m.failures.entry("task failed".into()).or_default() += 1,
        }
    }
    m.secs = start.elapsed().as_secs_f64();
    let cpu = CpuSample::now().since(&cpu0);
    m.ok = out.len();
    m.process_core_secs = cpu.process_cores * m.secs;
    m.postgres_core_secs = cpu.postgres_cores * m.secs;
    m.machine_core_secs = cpu.machine_cores * m.secs;
    out.sort_by_key(|(i, _)| *i);
    (out, m)
}

/// The baseline: `GET /api/v1/me` (the caller's account and memberships: token check, principal, one query),
/// `n` calls at concurrency `conc`, taking the tokens in turn.
async fn noop(c: &reqwest::Client, base: &str, tokens: &Arc<Vec<String>>, n: usize, conc: usize) -> Measured {
    let (c, url, tokens) = (c.clone(), Arc::new(format!("{base}/api/v1/me")), tokens.clone());
    storm(n, conc, move |i| {
        let (c, url, tokens) = (c.clone(), url.clone(), tokens.clone());
        async move {
            match call(&c, Method::GET, &url, &tokens[i % tokens.len()], None).await? {
                (200, v) if v["account"].is_object() => Ok(()),
                (s, v) => Err(failure_kind(s, &v)),
            }
        }
    })
    .await
    .1
}

/// Whether other processes took enough cores during these calls for their rates not to be quoted.
fn disturbed(m: &Measured, engine: Engine) -> bool {
    m.other_cores(engine) > DISTURBED_ABOVE
}

// ---------------------------------------------------------------------------------------------------------------
// The run

/// What the phases share: the server's address, the organisation, the network, the tokens.
struct Ctx {
    engine: Engine,
    db: Db,
    c: reqwest::Client,
    base: String,
    org: OrgId,
    network: String,
    admin: String,
    tokens: Arc<Vec<String>>,
}

/// A device enrolled by the run: its id and public key.
#[derive(Clone)]
struct Enrolled {
    id: String,
    public_key: String,
    address: String,
}

async fn run_on(engine: Engine, scratch: &Scratch, opts: &Options, stamp: &str, commit: &str) -> anyhow::Result<Value> {
    let machine = report::machine_json(sys::cores());
    let db = agilekit_server::open_db(&scratch.cfg).await?;
    let version = engine_version(&db).await;
    agilekit_server::demo::seed(&db).await?;
    let org = tenancy::list(&db).await?.into_iter().find(|o| o.ipa_code == ORG).context("the demo region")?.id;
    let admin_id = identity::find_by_email(&db, ADMIN).await?.context("the region's administrator")?.id;

    let n = opts.accounts();
    eprintln!("[{}] inserting {n} accounts with API tokens", engine.name());
    let t = Instant::now();
    let hash = password::hash(BENCH_PASSWORD.into()).await?;
    let tokens = Arc::new(insert_accounts(&db, org, n, &hash).await?);
    let admin = insert_token(&db, admin_id).await?;
    let insert_secs = t.elapsed().as_secs_f64();

    let running = agilekit_server::start(&scratch.cfg, db.clone()).await?;
    let base = running.url();
    let result = async {
        let c = http_client()?;
        // The tokens work and the network is there: otherwise nothing below means anything.
        expect(&c, Method::GET, &format!("{base}/api/v1/me"), &tokens[0], None, 200).await.context("a bench token")?;
        let network = vpn_network(&c, &base, org, &admin, opts.devices.max(if opts.wireguard { opts.peers } else { 0 })).await?;
        let ctx = Ctx { engine, db: db.clone(), c, base: base.clone(), org, network, admin, tokens };
        eprintln!("[{}] provisioning: {} enrolments", engine.name(), opts.devices);
        let (provisioning, devices) = provisioning(&ctx, opts).await?;
        eprintln!("[{}] booking contention", engine.name());
        let bookings = bookings(&ctx, opts).await?;
        let gateway = if !opts.wireguard {
            json!({"skipped": "--no-wireguard"})
        } else {
            match gateway_prerequisites() {
                Err(why) => {
                    eprintln!("[{}] gateway convergence SKIPPED: {why}", engine.name());
                    json!({"skipped": why})
                }
                Ok(wg_version) => {
                    eprintln!("[{}] gateway convergence ({wg_version})", engine.name());
                    gateway(&ctx, opts, devices, &scratch.dir, &wg_version).await?
                }
            }
        };
        anyhow::Ok((provisioning, bookings, gateway))
    }
    .await;
    running.stop().await;
    db.close().await;
    let (provisioning, bookings, gateway) = result?;
    Ok(json!({
        "benchmark": "remote",
        "engine": engine.name(),
        "engine_version": version,
        "timestamp": stamp,
        "commit": commit,
        "machine": machine,
        "setup": {"accounts": n, "insert_secs": r2(insert_secs), "organisation": ORG},
        "provisioning": provisioning,
        "gateway": gateway,
        "bookings": bookings,
    }))
}

/// The organisation's /19 network (the demo seeds one); created through the API when there is none.
async fn vpn_network(c: &reqwest::Client, base: &str, org: OrgId, admin: &str, need: usize) -> anyhow::Result<String> {
    let url = format!("{base}/api/v1/orgs/{org}/vpn/networks");
    let list = expect(c, Method::GET, &url, admin, None, 200).await?;
    let found = list.as_array().into_iter().flatten().find(|n| n["ipv4_cidr"].as_str().is_some_and(|s| s.ends_with("/19"))).cloned();
    let net = match found {
        Some(n) => n,
        None => {
            let body = json!({"name": "Rete benchmark", "ipv4_cidr": "10.96.0.0/19", "ipv6_cidr": "fd00:96::/64", "dns": []});
            expect(c, Method::POST, &url, admin, Some(&body), 201).await?
        }
    };
    let capacity = net["capacity"].as_u64().unwrap_or(0) as usize;
    if capacity < need {
        bail!("the network {} holds {capacity} devices; the run needs {need}", net["ipv4_cidr"]);
    }
    net["id"].as_str().map(str::to_owned).context("network id")
}

/// The remote-access seats of the organisation: (used, limit).
async fn seats(db: &Db, org: OrgId) -> anyhow::Result<(i64, Option<i64>)> {
    let subs = catalogue::subscriptions(db, org).await?;
    let q = subs
        .iter()
        .find(|v| v.subscription.service_key == Service::RemoteAccess.key())
        .and_then(|v| v.quotas.iter().find(|q| q.quota_key == "vpn_seats"))
        .context("the organisation has no vpn_seats quota")?;
    Ok((q.used, q.limit_value))
}

/// Raises the seat quota to `n` when it is lower (as the platform operator would; audited by the kernel).
async fn ensure_seats(db: &Db, org: OrgId, n: usize) -> anyhow::Result<Option<i64>> {
    let (_, limit) = seats(db, org).await?;
    if limit.is_some_and(|l| l < n as i64) {
        catalogue::set_quota(db, &Actor::system(), org, Service::RemoteAccess, "vpn_seats", Some(n as i64)).await?;
        return Ok(Some(n as i64));
    }
    Ok(None)
}

/// Enrols the devices of accounts `from..to` through the API, each with a key pair generated here (the client).
async fn enrol_range(ctx: &Ctx, from: usize, to: usize, conc: usize) -> (Vec<(usize, Enrolled)>, Measured) {
    // Keys first: generating them is the client's work, not the server's.
    let keys: Arc<Vec<String>> = Arc::new((from..to).map(|_| Key::generate().public().to_base64()).collect());
    let url = Arc::new(format!("{}/api/v1/orgs/{}/vpn/devices", ctx.base, ctx.org));
    let (c, tokens, network) = (ctx.c.clone(), ctx.tokens.clone(), Arc::new(ctx.network.clone()));
    storm(to - from, conc, move |i| {
        let (c, url, tokens, keys, network) = (c.clone(), url.clone(), tokens.clone(), keys.clone(), network.clone());
        async move {
            let body = json!({"name": "Portatile", "network_id": network.as_str(), "public_key": keys[i]});
            match call(&c, Method::POST, &url, &tokens[from + i], Some(&body)).await? {
                (201, v) if v["state"] == "active" => Ok(Enrolled {
                    id: v["id"].as_str().unwrap_or_default().to_owned(),
                    public_key: keys[i].clone(),
                    address: v["address_v4"].as_str().unwrap_or_default().to_owned(),
                }),
                (201, v) => Err(format!("201 with state {}", v["state"])),
                (s, v) => Err(failure_kind(s, &v)),
            }
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Provisioning

async fn provisioning(ctx: &Ctx, opts: &Options) -> anyhow::Result<(Value, Vec<Enrolled>)> {
    let (engine, n, conc) = (ctx.engine, opts.devices, opts.concurrency);
    let raised = ensure_seats(&ctx.db, ctx.org, n).await?;
    let employees: Arc<Vec<String>> = Arc::new(ctx.tokens[..n].to_vec());
    refresh_tokens(&ctx.db).await?;
    // Warm-up of the baseline route (connections, caches), then half the baseline before and half after.
    noop(&ctx.c, &ctx.base, &employees, conc * 4, conc).await;
    let mut base_m = noop(&ctx.c, &ctx.base, &employees, n / 2, conc).await;
    let (enrolled, enrol_m) = enrol_range(ctx, 0, n, conc).await;
    base_m.add(noop(&ctx.c, &ctx.base, &employees, n - n / 2, conc).await);
    eprintln!("[{}]   {} enrolled in {:.1} s", engine.name(), enrolled.len(), enrol_m.secs);

    // Checks: every enrolment succeeded, each got its own address, and the seats count them.
    let net = uuid::Uuid::parse_str(&ctx.network)?;
    let (active, distinct): (i64, i64) = db_run!(&ctx.db, |p| sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT address_v4) FROM vpn_devices WHERE network_id = $1 AND state = 'active'"
    ).bind(net).fetch_one(p).await?);
    let answered: BTreeSet<&str> = enrolled.iter().map(|(_, d)| d.address.as_str()).collect();
    let (used, limit) = seats(&ctx.db, ctx.org).await?;
    let checks_ok = enrolled.len() == n && active == n as i64 && distinct == n as i64 && answered.len() == n && used == n as i64;
    let ratio = enrol_m.rps() / base_m.rps().max(1e-9);
    let ratio_by_cpu = base_m.cpu_us_per_call(engine) / enrol_m.cpu_us_per_call(engine).max(1e-9);
    let v = json!({
        "devices": n,
        "concurrency": conc,
        "seats_raised_to": raised,
        "enrol": enrol_m.json("POST /api/v1/orgs/{org}/vpn/devices", engine),
        "baseline": base_m.json("GET /api/v1/me", engine),
        "all_enrolled_secs": r2(enrol_m.secs),
        "ratio": r3(ratio),
        "ratio_by_cpu": r3(ratio_by_cpu),
        "disturbed": disturbed(&enrol_m, engine) || disturbed(&base_m, engine),
        "checks": {"enrolled": enrolled.len(), "active_in_db": active, "distinct_addresses_in_db": distinct,
                   "distinct_addresses_answered": answered.len(), "seats_used": used, "seats_limit": limit, "ok": checks_ok},
    });
    Ok((v, enrolled.into_iter().map(|(_, d)| d).collect()))
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Booking contention

/// Tomorrow (plus `day`) from 09:00 to 13:00 UTC, in RFC 3339.
fn slot(day: usize) -> (String, String) {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(1 + day as i64);
    let at = |h: u8| {
        date.with_hms(h, 0, 0)
            .map(|d| d.assume_utc())
            .ok()
            .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    };
    (at(9), at(13))
}

async fn bookings(ctx: &Ctx, opts: &Options) -> anyhow::Result<Value> {
    let engine = ctx.engine;
    let (w, n) = (opts.workstations, opts.bookings);
    // The pool: `w` pooled workstations, added by the administrator through the API.
    let t = Instant::now();
    let url = format!("{}/api/v1/orgs/{}/workstations", ctx.base, ctx.org);
    let mut ws = Vec::with_capacity(w);
    for i in 0..w {
        let body = json!({"hostname": format!("{WS_PREFIX}{i:04}.regione.example"), "address": format!("127.0.{}.{}", 20 + i / 250, i % 250 + 1),
            "mode": "pooled", "os": "Windows 11 Pro", "location": "Benchmark", "tags": "bench"});
        let v = expect(&ctx.c, Method::POST, &url, &ctx.admin, Some(&body), 201).await.context("adding a pooled workstation")?;
        ws.push(v["id"].as_str().context("workstation id")?.to_owned());
    }
    let setup_secs = t.elapsed().as_secs_f64();
    let ws = Arc::new(ws);
    let people: Arc<Vec<String>> = Arc::new(ctx.tokens[..n].to_vec());
    let mut rounds = Vec::new();
    let (mut book_m, mut base_m) = (Measured::default(), Measured::default());
    let (mut successes, mut expected) = (0usize, 0usize);
    let mut refused = BTreeMap::<String, usize>::new();
    refresh_tokens(&ctx.db).await?;
    noop(&ctx.c, &ctx.base, &people, n, n).await; // warm-up: n connections open, caches
    for round in 0..opts.booking_rounds {
        let (starts, ends) = slot(round);
        // The same draw on every run, a different one each round.
        let mut rng = StdRng::seed_from_u64(0x5eed + round as u64);
        let choice: Arc<Vec<usize>> = Arc::new((0..n).map(|_| rand::Rng::random_range(&mut rng, 0..w)).collect());
        let drawn: BTreeSet<usize> = choice.iter().copied().collect();
        let body = Arc::new(json!({"starts_at": starts, "ends_at": ends}));
        let (c, base, org, ws2, people2) = (ctx.c.clone(), ctx.base.clone(), ctx.org, ws.clone(), people.clone());
        let (answers, m) = storm(n, n, move |i| {
            let (c, base, ws, people, choice, body) = (c.clone(), base.clone(), ws2.clone(), people2.clone(), choice.clone(), body.clone());
            async move {
                let url = format!("{base}/api/v1/orgs/{org}/workstations/{}/bookings", ws[choice[i]]);
                // A refusal because the slot is taken is a right answer too: only other outcomes are errors.
                match call(&c, Method::POST, &url, &people[i], Some(&body)).await? {
                    (201, _) => Ok(Ok(choice[i])),
                    (422, v) if v["errors"][0]["code"] == "slot-taken" || v["errors"][0]["code"] == "already-booked" => {
                        Ok(Err(failure_kind(422, &v)))
                    }
                    (s, v) => Err(failure_kind(s, &v)),
                }
            }
        })
        .await;
        let b = noop(&ctx.c, &ctx.base, &people, n, n).await;
        let mut refused_here = BTreeMap::<String, usize>::new();
        let mut ok = Vec::new();
        for (_, r) in answers {
            match r {
                Ok(w) => ok.push(w),
                Err(kind) => *refused_here.entry(kind).or_default() += 1,
            }
        }
        let won: BTreeSet<usize> = ok.iter().copied().collect();
        eprintln!(
            "[{}]   round {}: {} of {n} attempts booked ({} workstations drawn) in {:.2} s",
            engine.name(),
            round + 1,
            ok.len(),
            drawn.len(),
            m.secs
        );
        rounds.push(json!({"slot": [starts, ends], "attempts": n, "booked": ok.len(), "workstations_drawn": drawn.len(),
            "workstations_won_twice": ok.len() - won.len(), "refused": refused_here, "errors": m.failures,
            "secs": r3(m.secs), "attempts_per_s": r2(n as f64 / m.secs.max(1e-9)), "baseline_per_s": r2(b.rps())}));
        for (k, v) in refused_here {
            *refused.entry(k).or_default() += v;
        }
        successes += ok.len();
        expected += drawn.len();
        book_m.add(m);
        base_m.add(b);
    }
    // Double bookings, from the database: two live bookings of one workstation, or of one person, that overlap.
    let org = ctx.org;
    let overlap = |col: &str| {
        format!(
            "SELECT COUNT(*) FROM workstation_bookings a JOIN workstation_bookings b ON a.{col} = b.{col} AND a.id < b.id \
             AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at \
             WHERE a.org_id = $1 AND b.org_id = $1 AND a.cancelled_at IS NULL AND b.cancelled_at IS NULL"
        )
    };
    let (q_ws, q_acc) = (overlap("workstation_id"), overlap("account_id"));
    let double_ws: i64 = db_run!(&ctx.db, |p| sqlx::query_scalar(sqlx::AssertSqlSafe(q_ws.clone())).bind(org).fetch_one(p).await?);
    let double_acc: i64 = db_run!(&ctx.db, |p| sqlx::query_scalar(sqlx::AssertSqlSafe(q_acc.clone())).bind(org).fetch_one(p).await?);
    let like = format!("{WS_PREFIX}%");
    let rows: i64 = db_run!(&ctx.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM workstation_bookings b JOIN workstations w ON w.id = b.workstation_id \
         WHERE w.org_id = $1 AND w.hostname LIKE $2 AND b.cancelled_at IS NULL"
    ).bind(org).bind(&like).fetch_one(p).await?);
    // Attempts are all sent at once: attempts/s is the whole burst over the time until its last answer.
    let attempts = n * opts.booking_rounds;
    let rate = attempts as f64 / book_m.secs.max(1e-9);
    let ratio = rate / base_m.rps().max(1e-9);
    let ratio_by_cpu = base_m.cpu_us_per_call(engine) / book_m.cpu_us_per_call(engine).max(1e-9);
    Ok(json!({
        "workstations": w,
        "attempts_per_round": n,
        "rounds": opts.booking_rounds,
        "in_flight": n,
        "setup_secs": r2(setup_secs),
        "attempts": attempts,
        "booked": successes,
        "expected_booked": expected,
        "refused": refused,
        "booked_rows_in_db": rows,
        "double_bookings_workstation": double_ws,
        "double_bookings_person": double_acc,
        "zero_double_bookings": double_ws == 0 && double_acc == 0 && rows as usize == successes,
        "attempts_per_s": r2(rate),
        // Every answer, bookings and refusals alike; errors are anything else.
        "book": book_m.json("POST /api/v1/orgs/{org}/workstations/{id}/bookings", engine),
        "baseline": base_m.json("GET /api/v1/me", engine),
        "ratio": r3(ratio),
        "ratio_by_cpu": r3(ratio_by_cpu),
        "disturbed": disturbed(&book_m, engine) || disturbed(&base_m, engine),
        "per_round": rounds,
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Gateway convergence: wireguard-go in a namespace of the run's own, the agent's applier in a thread inside it

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Root, wireguard-go and ip; the wireguard-go version when they are all there, the reason otherwise.
fn gateway_prerequisites() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?");
    if euid != "0" {
        return Err("needs root (network namespace, TUN device): run the benchmark as root".into());
    }
    for tool in ["wireguard-go", "ip"] {
        if find_tool(tool).is_none() {
            return Err(format!("`{tool}` is not installed (scripts/test installs wireguard-go and iproute2)"));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun on this host".into());
    }
    let v = std::process::Command::new("wireguard-go").arg("--version").output().map_err(|e| format!("wireguard-go: {e}"))?;
    Ok(String::from_utf8_lossy(&v.stdout).lines().next().unwrap_or("wireguard-go").trim().to_owned())
}

/// Runs a short command to completion.
fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("{} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The namespace and its wireguard-go; dropping it stops wireguard-go and deletes the namespace (with the
/// interface and the nftables table in it), also when the run fails.
struct Lab {
    ns: String,
    iface: String,
    log: PathBuf,
    wg: Option<std::process::Child>,
}

impl Lab {
    fn create(dir: &Path) -> anyhow::Result<Lab> {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        // UAPI sockets of every namespace share one directory: the interface name is unique per run.
        let lab = Lab { ns: format!("akbench-{id}"), iface: format!("akb{id}"), log: dir.join("wireguard-go.log"), wg: None };
        sh(&["ip", "netns", "add", &lab.ns])?;
        sh(&["ip", "-n", &lab.ns, "link", "set", "lo", "up"])?;
        Ok(lab)
    }

    fn wg_pid(&self) -> Option<u32> {
        self.wg.as_ref().map(std::process::Child::id)
    }

    fn socket(&self) -> PathBuf {
        Path::new(UAPI_DIR).join(format!("{}.sock", self.iface))
    }

    fn uapi(&self) -> Uapi {
        Uapi::new(Path::new(UAPI_DIR), &self.iface)
    }

    /// A fresh wireguard-go (a gateway that just booted): any previous one is stopped first.
    async fn start_wireguard(&mut self) -> anyhow::Result<()> {
        self.stop_wireguard();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "wireguard-go", "-f", &self.iface])
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec. wireguard-go gets
            // SIGKILL if this process dies without unwinding, so it never outlives the run.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        self.wg = Some(cmd.spawn().context("start wireguard-go")?);
        let t = Instant::now();
        loop {
            if let Some(c) = self.wg.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("wireguard-go exited ({st}): {}", log.lines().rev().take(5).collect::<Vec<_>>().join(" / "));
            }
            if self.socket().exists() && self.uapi().get().await.is_ok() {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!("wireguard-go did not open {} within 10 s", self.socket().display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop_wireguard(&mut self) {
        if let Some(mut c) = self.wg.take() {
            // SIGTERM first, so that it removes its interface and socket.
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let t = Instant::now();
            while !matches!(c.try_wait(), Ok(Some(_))) {
                if t.elapsed() > Duration::from_secs(3) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_wireguard();
        if let Err(e) = sh(&["ip", "netns", "delete", &self.ns]) {
            eprintln!("could not delete the network namespace {}: {e}", self.ns);
        }
    }
}

/// Work for the applier's thread.
enum Job {
    /// A new agent: a fresh applier with the gateway's key; answers the enforcement in use.
    Start { key: Key, enforcement: Enforcement, done: oneshot::Sender<&'static str> },
    /// `Applier::apply`; answers its outcome and the instant it returned.
    Apply { cfg: Box<GatewayConfig>, done: oneshot::Sender<(Result<Applied, String>, Instant)> },
}

/// The gateway agent's applier in a thread that entered the namespace, so that what it runs (`ip` for the
/// interface's addresses, `nft` for the access rules) acts there, as on a gateway host. The UAPI socket is a
/// file: reachable from any namespace.
struct NsApplier {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsApplier {
    async fn spawn(ns: &str, iface: &str) -> anyhow::Result<NsApplier> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (ns, iface) = (ns.to_owned(), iface.to_owned());
        let thread = std::thread::Builder::new().name("bench-gateway-agent".into()).spawn(move || applier_thread(&ns, &iface, rx, ready_tx))?;
        let me = NsApplier { jobs: Some(tx), thread: Some(thread) };
        ready_rx.await.context("the applier's thread")?.map_err(|e| anyhow::anyhow!("entering the namespace: {e}"))?;
        Ok(me)
    }

    async fn start(&self, key: Key, enforcement: Enforcement) -> anyhow::Result<&'static str> {
        let (done, rx) = oneshot::channel();
        self.jobs.as_ref().context("applier stopped")?.send(Job::Start { key, enforcement, done }).ok().context("applier gone")?;
        Ok(rx.await?)
    }

    async fn apply(&self, cfg: GatewayConfig) -> (Result<Applied, String>, Instant) {
        let (done, rx) = oneshot::channel();
        let sent = self.jobs.as_ref().map(|j| j.send(Job::Apply { cfg: Box::new(cfg), done }).is_ok()).unwrap_or(false);
        if !sent {
            return (Err("applier gone".into()), Instant::now());
        }
        rx.await.unwrap_or_else(|_| (Err("applier gone".into()), Instant::now()))
    }
}

impl Drop for NsApplier {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn applier_thread(ns: &str, iface: &str, rx: std::sync::mpsc::Receiver<Job>, ready: oneshot::Sender<Result<(), String>>) {
    let entered = (|| {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}")).map_err(|e| e.to_string())?;
        // SAFETY: setns(2) with a descriptor of a network namespace moves only this thread into it.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
    })();
    let rt = match entered {
        Ok(rt) => {
            let _ = ready.send(Ok(()));
            rt
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut applier: Option<Applier> = None;
    while let Ok(job) = rx.recv() {
        match job {
            Job::Start { key, enforcement, done } => {
                // As the agent's `auto`: nftables when it works here.
                let enforce = enforcement == Enforcement::Auto && rt.block_on(nft::probe()).is_ok();
                let a = Applier::new(Uapi::new(Path::new(UAPI_DIR), iface), iface, key, enforce);
                let _ = done.send(a.enforcement());
                applier = Some(a);
            }
            Job::Apply { cfg, done } => {
                let r = match applier.as_mut() {
                    Some(a) => rt.block_on(a.apply(&cfg)).map_err(|e| e.to_string()),
                    None => Err("no applier started".into()),
                };
                let _ = done.send((r, Instant::now()));
            }
        }
    }
}

/// `GET /api/v1/gateway/config` as the agent calls it: the configuration and its size in bytes.
async fn fetch_config(c: &reqwest::Client, base: &str, token: &str, after: Option<i64>) -> anyhow::Result<(GatewayConfig, usize)> {
    let mut req = c.get(format!("{base}/api/v1/gateway/config")).bearer_auth(token).timeout(Duration::from_secs(45));
    if let Some(v) = after {
        req = req.query(&[("after", v)]);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let body = r.bytes().await?;
    if status != 200 {
        bail!("GET /api/v1/gateway/config answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    }
    Ok((serde_json::from_slice(&body).context("the gateway configuration")?, body.len()))
}

/// How the agent reaches the server: its HTTP client, the server's address, the gateway's token.
#[derive(Clone)]
struct GatewayLink {
    c: reqwest::Client,
    base: String,
    token: String,
}

/// What the agent loop did with one answer of the long-poll.
struct Event {
    fetched_at: Instant,
    applied_at: Instant,
    applied: Result<Applied, String>,
}

/// The agent's poll loop: long-poll after the applied version, apply each new configuration, wake the status
/// reporter (as the agent does after a change) and tell the bench.
async fn agent_loop(
    link: GatewayLink,
    applier: Arc<NsApplier>,
    mut version: i64,
    events: mpsc::UnboundedSender<Event>,
    reported: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let mut errors = 0;
    loop {
        let r = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = fetch_config(&link.c, &link.base, &link.token, Some(version)) => r,
        };
        match r {
            Ok((cfg, _)) => {
                let fetched_at = Instant::now();
                if cfg.version == version {
                    continue;
                }
                let v = cfg.version;
                let (applied, applied_at) = applier.apply(cfg).await;
                if applied.is_ok() {
                    version = v;
                    reported.notify_one();
                }
                let _ = events.send(Event { fetched_at, applied_at, applied });
            }
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    errors
}

/// The agent's status reporter: every [`STATUS_EVERY`] and shortly after each change, the whole interface's
/// handshakes and traffic to `POST /api/v1/gateway/status`. Returns each report's duration and whether it was taken.
async fn status_loop(
    link: GatewayLink,
    uapi: Uapi,
    enforcement: &'static str,
    reported: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    let url = format!("{}/api/v1/gateway/status", link.base);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + STATUS_EVERY, STATUS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
            _ = reported.notified() => {}
        }
        let Ok(dev) = uapi.get().await else { continue };
        let Ok(body) = serde_json::to_value(agent::StatusReport::from_peers(&dev.peers, enforcement)) else { continue };
        let t = Instant::now();
        let ok = matches!(call(&link.c, Method::POST, &url, &link.token, Some(&body)).await, Ok((204, _)));
        out.push((micros(t.elapsed()), ok));
    }
    out
}

/// CPU of what runs outside this process for the gateway: wireguard-go (alive, by its pid) and the `ip` and `nft`
/// commands the applier ran and this process reaped (its children's time). In clock ticks.
fn gateway_ticks(wg_pid: Option<u32>) -> u64 {
    let fields = |path: String| -> Vec<u64> {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_owned();
                Some(rest.split_whitespace().skip(1).map(|f| f.parse::<i64>().map_or(0, |v| v.max(0) as u64)).collect())
            })
            .unwrap_or_default()
    };
    // After the command name and the state: ppid, pgrp, … utime, stime, cutime, cstime are the 11th to 14th.
    let own = fields("/proc/self/stat".into());
    let children = own.get(12).copied().unwrap_or(0) + own.get(13).copied().unwrap_or(0);
    let wg = wg_pid.map(|p| fields(format!("/proc/{p}/stat"))).map(|f| f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0));
    children + wg.unwrap_or(0)
}

/// CPU over a gateway phase: this process, PostgreSQL, the gateway's own processes, and the rest of the machine.
struct GwCpu {
    at: Instant,
    cpu: CpuSample,
    ticks: u64,
}

impl GwCpu {
    fn now(lab: &Lab) -> GwCpu {
        GwCpu { at: Instant::now(), cpu: CpuSample::now(), ticks: gateway_ticks(lab.wg_pid()) }
    }

    /// Cores in use since `start`, as JSON, and whether other processes took enough to disturb the figures.
    fn since(&self, start: &GwCpu, engine: Engine) -> (Value, bool) {
        let secs = self.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let u = self.cpu.since(&start.cpu);
        // Clock ticks are USER_HZ (100 a second) on every Linux that matters.
        let gw = self.ticks.saturating_sub(start.ticks) as f64 / 100.0 / secs;
        let db = if engine == Engine::Postgres { u.postgres_cores } else { 0.0 };
        let other = (u.machine_cores - u.process_cores - db - gw).max(0.0);
        let v = json!({"process_cores": r2(u.process_cores), "postgres_cores": r2(u.postgres_cores),
            "gateway_processes_cores": r2(gw), "other_cores": r2(other), "disturbed": other > DISTURBED_ABOVE});
        (v, other > DISTURBED_ABOVE)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn gateway(ctx: &Ctx, opts: &Options, mut devices: Vec<Enrolled>, dir: &Path, wg_version: &str) -> anyhow::Result<Value> {
    let engine = ctx.engine;
    // The peer set: the provisioned devices, and more enrolled through the API up to `peers` (seats raised).
    let want = opts.peers.max(devices.len());
    let mut extra = Value::Null;
    if want > devices.len() {
        let raised = ensure_seats(&ctx.db, ctx.org, want).await?;
        let (more, m) = enrol_range(ctx, devices.len(), want, opts.concurrency).await;
        if more.len() != want - devices.len() {
            bail!("enrolling the extra devices for the gateway: {} of {} ({:?})", more.len(), want - devices.len(), m.failures);
        }
        extra = json!({"enrolled": more.len(), "secs": r2(m.secs), "seats_raised_to": raised});
        devices.extend(more.into_iter().map(|(_, d)| d));
    }
    let mut lab = Lab::create(dir)?;
    let applier = Arc::new(NsApplier::spawn(&lab.ns, &lab.iface).await?);
    // The gateway, registered by the administrator with the agent's public key.
    let key = Key::generate();
    let gw = expect(
        &ctx.c,
        Method::POST,
        &format!("{}/api/v1/orgs/{}/vpn/networks/{}/gateways", ctx.base, ctx.org, ctx.network),
        &ctx.admin,
        Some(&json!({"name": "Concentratore benchmark", "endpoint": "192.0.2.1", "port": 51820,
                     "public_key": key.public().to_base64(), "routes": ["10.10.0.0/16"]})),
        201,
    )
    .await?;
    let token = gw["token"].as_str().context("gateway token")?.to_owned();
    let uapi = lab.uapi();

    // Floors: what wireguard-go itself takes for the same work through UAPI, with nothing of ours around it.
    lab.start_wireguard().await?;
    let (cfg, _) = fetch_config(&ctx.c, &ctx.base, &token, None).await?;
    let desired = Desired::from_config(&cfg);
    let sets: Vec<PeerSet> = desired
        .peers
        .iter()
        .map(|(k, ips)| PeerSet::Upsert { public_key: *k, allowed_ips: ips.iter().copied().collect() })
        .collect();
    let t = Instant::now();
    uapi.set(Some(&key), Some(cfg.listen_port), &sets).await?;
    let floor_set = ms(t.elapsed());
    let t = Instant::now();
    let dumped = uapi.get().await?.peers.len();
    let floor_get = ms(t.elapsed());
    let one = *desired.peers.keys().next().context("no peers")?;
    let t = Instant::now();
    uapi.set(None, None, &[PeerSet::Remove { public_key: one }]).await?;
    let floor_remove = ms(t.elapsed());
    if dumped != want {
        bail!("wireguard-go holds {dumped} peers after a UAPI set of {want}");
    }

    // (a) 0 → all peers: a fresh wireguard-go and a fresh agent each run, timed from the first fetch.
    let mut runs = Vec::new();
    let mut enforcement = "none";
    let mut version = cfg.version;
    let cpu0 = GwCpu::now(&lab);
    for run in 0..opts.converge_runs {
        lab.start_wireguard().await?;
        enforcement = applier.start(key, opts.enforcement).await?;
        let t0 = Instant::now();
        let (cfg, bytes) = fetch_config(&ctx.c, &ctx.base, &token, None).await?;
        let fetched = Instant::now();
        let keys: BTreeSet<String> = cfg.peers.iter().map(|p| p.public_key.clone()).collect();
        version = cfg.version;
        let (applied, applied_at) = applier.apply(cfg).await;
        let applied = applied.map_err(|e| anyhow::anyhow!("the applier: {e}"))?;
        let dev = uapi.get().await?;
        let confirmed = Instant::now();
        let have: BTreeSet<String> = dev.peers.iter().map(|p| p.public_key.to_base64()).collect();
        let total = ms(applied_at - t0);
        eprintln!("[{}]   run {}: {} peers in {total:.0} ms (enforcement {enforcement})", engine.name(), run + 1, have.len());
        runs.push(json!({"fetch_ms": r2(ms(fetched - t0)), "apply_ms": r2(ms(applied_at - fetched)), "total_ms": r2(total),
            "confirmed_ms": r2(ms(confirmed - t0)), "config_kib": r2(bytes as f64 / 1024.0), "added": applied.added,
            "peers_on_interface": have.len(), "all_present": have == keys && have.len() == want}));
    }
    let (converge_cpu, _) = GwCpu::now(&lab).since(&cpu0, engine);
    let totals: Vec<f64> = runs.iter().map(|r| r["total_ms"].as_f64().unwrap_or(f64::MAX)).collect();
    let converge_max = totals.iter().copied().fold(0.0, f64::max);
    let all_present = runs.iter().all(|r| r["all_present"] == true);

    // The agent's status report of the whole interface, alone.
    let status_url = format!("{}/api/v1/gateway/status", ctx.base);
    let peers_now = uapi.get().await?.peers;
    let report = agent::StatusReport::from_peers(&peers_now, enforcement);
    let t = Instant::now();
    let (st, body) =
        call(&ctx.c, Method::POST, &status_url, &token, Some(&serde_json::to_value(&report)?)).await.map_err(|e| anyhow::anyhow!("status report: {e}"))?;
    let status_ms = ms(t.elapsed());
    let status_note = if st == 204 { Value::Null } else { json!(failure_kind(st, &body)) };

    // The agent as it runs: long-polling after the applied version, and reporting status every STATUS_EVERY and
    // after each change.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let reported = Arc::new(Notify::new());
    let link = GatewayLink { c: ctx.c.clone(), base: ctx.base.clone(), token: token.clone() };
    let agent = tokio::spawn(agent_loop(link.clone(), applier.clone(), version, ev_tx, reported.clone(), stop_rx.clone()));
    let status = tokio::spawn(status_loop(link, lab.uapi(), enforcement, reported, stop_rx));
    tokio::time::sleep(Duration::from_millis(300)).await; // the long-poll is parked

    // (b) one change among all: revoke a device through the API, until the peer is gone from the interface.
    let mut rng = StdRng::seed_from_u64(0x9a7e);
    let victims: Vec<Enrolled> =
        rand::seq::index::sample(&mut rng, devices.len(), opts.changes).into_iter().map(|i| devices[i].clone()).collect();
    let mut changes = Vec::new();
    let mut applied_ms = Vec::new();
    let mut lost = 0;
    let cpu0 = GwCpu::now(&lab);
    for d in &victims {
        tokio::time::sleep(CHANGE_GAP).await;
        while ev_rx.try_recv().is_ok() {}
        let url = format!("{}/api/v1/orgs/{}/vpn/devices/{}/revoke", ctx.base, ctx.org, d.id);
        let t0 = Instant::now();
        let (st, body) = call(&ctx.c, Method::POST, &url, &ctx.admin, Some(&json!({}))).await.map_err(|e| anyhow::anyhow!("revoke: {e}"))?;
        let answered = Instant::now();
        if st != 200 || body["state"] != "revoked" {
            bail!("revoking a device answered {st}: {body}");
        }
        let deadline = tokio::time::Instant::from_std(t0 + CHANGE_DEADLINE);
        let ev = loop {
            match tokio::time::timeout_at(deadline, ev_rx.recv()).await {
                Ok(Some(e)) if matches!(e.applied, Ok(a) if a.removed > 0) => break Some(e),
                Ok(Some(_)) => continue,
                _ => break None,
            }
        };
        let dev = uapi.get().await?;
        let gone = !dev.peers.iter().any(|p| p.public_key.to_base64() == d.public_key);
        match ev {
            Some(e) => {
                let took = ms(e.applied_at - t0);
                applied_ms.push(micros(e.applied_at - t0));
                changes.push(json!({"api_ms": r2(ms(answered - t0)), "delivered_ms": r2(ms(e.fetched_at - t0)),
                    "applied_ms": r2(took), "gone": gone, "peers_left": dev.peers.len()}));
            }
            None => {
                lost += 1;
                changes.push(json!({"api_ms": r2(ms(answered - t0)), "lost": true, "gone": gone, "peers_left": dev.peers.len()}));
            }
        }
    }
    let (change_cpu, _) = GwCpu::now(&lab).since(&cpu0, engine);
    let _ = stop_tx.send(true);
    let agent_errors = tokio::time::timeout(Duration::from_secs(5), agent).await.ok().and_then(|r| r.ok()).unwrap_or(0);
    let reports = tokio::time::timeout(REQUEST_TIMEOUT, status).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    let final_peers = uapi.get().await?.peers.len();
    drop(applier);
    drop(lab);
    let report_lat = Latencies::new(reports.iter().map(|r| r.0).collect());
    let reports_json = json!({"sent": reports.len(), "refused": reports.iter().filter(|r| !r.1).count(),
        "p50_ms": r2(report_lat.pct_ms(50.0)), "max_ms": r2(report_lat.pct_ms(100.0)), "every_secs": STATUS_EVERY.as_secs()});

    let lat = Latencies::new(applied_ms);
    let (p50, max) = (lat.pct_ms(50.0), lat.pct_ms(100.0));
    let all_gone = changes.iter().all(|c| c["gone"] == true);
    let change_ok = lost == 0 && all_gone && max < CHANGE_GOAL_MS;
    Ok(json!({
        "wireguard_go": wg_version,
        "peers": want,
        "extra_enrolment": extra,
        "enforcement": enforcement,
        "floor": {"uapi_set_all_ms": r2(floor_set), "uapi_get_all_ms": r2(floor_get), "uapi_remove_one_ms": r2(floor_remove)},
        "converge": {"runs": runs, "max_ms": r2(converge_max), "cpu": converge_cpu,
            "median_ms": r2(median(&totals)), "goal_ms": CONVERGE_GOAL_MS, "all_present": all_present,
            "verdict": if all_present && converge_max < CONVERGE_GOAL_MS { "meets goal" } else { "BELOW GOAL" }},
        "status_report": {"peers": peers_now.len(), "ms": r2(status_ms), "refused": status_note},
        "change": {"changes": victims.len(), "lost": lost, "all_gone": all_gone, "p50_ms": r2(p50), "max_ms": r2(max),
            "goal_ms": CHANGE_GOAL_MS, "verdict": if change_ok { "meets goal" } else { "BELOW GOAL" }, "each": changes,
            "final_peers": final_peers, "expected_final_peers": want - victims.len(), "agent_fetch_errors": agent_errors,
            "gap_ms": CHANGE_GAP.as_millis() as u64, "status_reports": reports_json, "cpu": change_cpu},
    }))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
