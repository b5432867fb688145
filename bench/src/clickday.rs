//! The click-day benchmark (issue 4): companies with prepared drafts submit within seconds of a call's opening, from
//! this load-generator process against one or two agilekit nodes running as separate processes (this binary
//! re-executed as `clickday-node`) on one database. It reports submissions a second, latency, 429s, acknowledged
//! against stored, committed against budget, protocol gaps and order, and the throughput as a ratio to the same
//! nodes' `GET /healthz` measured in the same run.
//!
//! Seeding is bulk SQL before the nodes start: public accounts (one per ten companies, each with an API token),
//! companies, and a draft per company on a published call a sportello whose opening is then moved to a few seconds
//! ahead. Every submission carries its own idempotency key; a 429 is retried after its Retry-After with the same key.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agilekit_grants::calls::model::{Category, Rules};
use agilekit_grants::model::{Eligibility, GrantRule};
use agilekit_kernel::audit::Actor;
use agilekit_kernel::ids::AccountId;
use agilekit_kernel::{Db, clock, db_run};
use agilekit_server::Config;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::args::{self, Engine};
use crate::report::{self, Latencies, micros, r2, r3};

const COMPANIES_PER_ACCOUNT: usize = 10;
const MAX_ATTEMPTS: u32 = 50;

#[derive(Clone)]
pub struct Options {
    /// The runs: engine and node count (`--engine both`: SQLite, PostgreSQL, PostgreSQL with two nodes).
    runs: Vec<(Engine, usize)>,
    engine: Engine,
    companies: usize,
    concurrency: usize,
    nodes: usize,
    budget_euros: i64,
    save: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut both = false;
        let mut nodes_given = false;
        let mut o = Options { runs: Vec::new(), engine: Engine::Sqlite, companies: 20_000, concurrency: 256, nodes: 1, budget_euros: 4_500_000, save: true };
        for f in args::flags(args, &["--no-save"])? {
            match f.name.as_str() {
                "--engine" => {
                    // `both`: SQLite, PostgreSQL, and PostgreSQL with two nodes (or `--nodes`).
                    both = f.text() == "both";
                    o.engine = if both { Engine::Postgres } else { f.engines()?[0] };
                }
                "--companies" => o.companies = f.number(1_000_000)?,
                "--concurrency" => o.concurrency = f.number(4_096)?,
                "--nodes" => {
                    o.nodes = f.number(8)?;
                    nodes_given = true;
                }
                "--budget" => o.budget_euros = f.number(1_000_000_000)? as i64,
                "--no-save" => o.save = false,
                _ => return Err(f.unknown()),
            }
        }
        if o.nodes > 1 && o.engine == Engine::Sqlite && !both {
            return Err("--nodes above 1 needs --engine postgres (one SQLite file has one host)".into());
        }
        o.runs = match (both, nodes_given) {
            (true, false) => vec![(Engine::Sqlite, 1), (Engine::Postgres, 1), (Engine::Postgres, 2)],
            (true, true) => vec![(Engine::Sqlite, 1), (Engine::Postgres, o.nodes)],
            (false, _) => vec![(o.engine, o.nodes)],
        };
        Ok(o)
    }
}

fn pg_admin_url() -> String {
    std::env::var("AGILEKIT_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn main(args: &[String]) -> ExitCode {
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{}", crate::USAGE);
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut status = ExitCode::SUCCESS;
    for (engine, nodes) in opts.runs.clone() {
        let o = Options { runs: Vec::new(), engine, nodes, ..opts.clone() };
        if let Err(e) = rt.block_on(run(&o)) {
            eprintln!("clickday ({engine:?}, {nodes} node(s)): {e:#}");
            status = ExitCode::FAILURE;
        }
    }
    status
}

/// `clickday-node DATABASE_URL DATA_DIR`: one agilekit node for the benchmark; prints its URL, serves until killed.
pub fn node(args: &[String]) -> ExitCode {
    let (Some(url), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: agilekit-bench clickday-node DATABASE_URL DATA_DIR");
        return ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let r: anyhow::Result<()> = rt.block_on(async {
        let cfg = config(url, PathBuf::from(dir));
        let db = agilekit_server::open_db(&cfg).await?;
        let running = agilekit_server::start(&cfg, db).await?;
        println!("{}", running.url());
        tokio::signal::ctrl_c().await.ok();
        Ok(())
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clickday-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config(url: &str, dir: PathBuf) -> Config {
    let mut cfg = Config { listen: "127.0.0.1:0".into(), data_dir: dir, database_url: if url.starts_with("postgres") { url.to_owned() } else { String::new() }, ..Config::default() };
    // Nothing listens on the discard port: receipts' mail stays in the outbox (its worker's failed attempts are
    // part of the load, as a slow mail server's would be).
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.port = 9;
    cfg
}

struct Node(Child, String);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_node(url: &str, dir: &std::path::Path) -> anyhow::Result<Node> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe).arg("clickday-node").arg(url).arg(dir).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("node stdout")?).read_line(&mut line)?;
    let u = line.trim().to_owned();
    if !u.starts_with("http") {
        bail!("node did not start: {line:?}");
    }
    Ok(Node(child, u))
}

async fn run(o: &Options) -> anyhow::Result<()> {
    let stamp = report::utc_stamp();
    let engine = o.engine.name();
    let dir = std::env::temp_dir().join(format!("agilekit-bench-clickday-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut pg_name = None;
    let url = match o.engine {
        Engine::Sqlite => String::new(),
        Engine::Postgres => {
            let name = format!("agilekit_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&pg_admin_url()).await.context("cannot reach PostgreSQL (set AGILEKIT_TEST_PG)")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
            admin.close().await;
            let mut u = url::Url::parse(&pg_admin_url())?;
            u.set_path(&format!("/{name}"));
            pg_name = Some(name);
            u.to_string()
        }
    };
    let result = measure(o, engine, &url, &dir, &stamp).await;
    if let Some(name) = pg_name {
        if let Ok(admin) = sqlx::PgPool::connect(&pg_admin_url()).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&admin).await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(o: &Options, engine: &str, url: &str, dir: &std::path::Path, stamp: &str) -> anyhow::Result<()> {
    let load_start = crate::sys::loadavg();
    let cfg = config(url, dir.to_path_buf());
    let db = agilekit_server::open_db(&cfg).await?;
    agilekit_server::demo::seed(&db).await?;
    let t = Instant::now();
    let (call, tokens, apps) = seed(&db, o).await?;
    let seed_secs = t.elapsed().as_secs_f64();
    eprintln!("seeded {} companies with drafts in {seed_secs:.1} s", o.companies);

    let db_url = if url.is_empty() { cfg.effective_database_url() } else { url.to_owned() };
    let mut nodes = Vec::new();
    for _ in 0..o.nodes {
        nodes.push(spawn_node(&db_url, dir)?);
    }
    let urls: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.1.clone()).collect());
    let client = reqwest::Client::builder().pool_max_idle_per_host(o.concurrency).timeout(Duration::from_secs(120)).build()?;

    // Baseline: GET /healthz at the same concurrency and count, spread over the nodes.
    let healthz = {
        let t0 = Instant::now();
        let mut set = JoinSet::new();
        let sem = Arc::new(tokio::sync::Semaphore::new(o.concurrency));
        for i in 0..o.companies {
            let (c, sem, u) = (client.clone(), sem.clone(), format!("{}/healthz", urls[i % urls.len()]));
            set.spawn(async move {
                let _p = sem.acquire_owned().await;
                c.get(&u).send().await.map(|r| r.status().as_u16()).unwrap_or(0) == 200
            });
        }
        let mut ok = 0usize;
        while let Some(r) = set.join_next().await {
            ok += usize::from(r.unwrap_or(false));
        }
        ok as f64 / t0.elapsed().as_secs_f64()
    };
    eprintln!("GET /healthz: {healthz:.0} req/s");

    // The opening: three seconds from now.
    let opens = clock::stamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(3));
    db_run!(&db, |p| sqlx::query("UPDATE grant_calls SET opens_at = $2 WHERE id = $1").bind(call).bind(opens).execute(p).await?.rows_affected());
    let wait = opens - time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default() + Duration::from_millis(5)).await;

    let t0 = Instant::now();
    let cpu0 = crate::sys::CpuSample::now();
    let mut set = JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(o.concurrency));
    for (i, (company, app)) in apps.iter().enumerate() {
        let token = tokens[i / COMPANIES_PER_ACCOUNT].clone();
        let (c, sem, urls) = (client.clone(), sem.clone(), urls.clone());
        let path = format!("/api/v1/companies/{company}/applications/{app}/submit");
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            let first = Instant::now();
            let mut throttled = 0u32;
            for attempt in 0..MAX_ATTEMPTS {
                let u = format!("{}{path}", urls[(i + attempt as usize) % urls.len()]);
                let t = Instant::now();
                let r = c.post(&u).bearer_auth(&token).header("Idempotency-Key", format!("clickday-{i}")).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        return (Some((v["application_id"].as_str().unwrap_or("").to_owned(), v["protocol"].as_i64().unwrap_or(0))), micros(t.elapsed()), micros(first.elapsed()), throttled, None);
                    }
                    Ok(r) if r.status() == 429 => {
                        throttled += 1;
                        let after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
                        tokio::time::sleep(Duration::from_millis(after * 1000 / 4 + (i as u64 % 250))).await;
                    }
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let text = r.text().await.unwrap_or_default();
                        return (None, micros(t.elapsed()), micros(first.elapsed()), throttled, Some(format!("{s} {}", text.chars().take(200).collect::<String>())));
                    }
                    Err(e) => return (None, micros(t.elapsed()), micros(first.elapsed()), throttled, Some(e.to_string())),
                }
            }
            (None, 0, micros(first.elapsed()), throttled, Some("too many 429s".into()))
        });
    }
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut attempt_lat = Vec::new();
    let mut total_lat = Vec::new();
    let mut throttled = 0u64;
    let mut errors: Vec<String> = Vec::new();
    while let Some(r) = set.join_next().await {
        let (ok, lat, total, th, err) = r?;
        throttled += u64::from(th);
        if let Some(a) = ok {
            acked.push(a);
            attempt_lat.push(lat);
            total_lat.push(total);
        }
        if let Some(e) = err {
            errors.push(e);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu_use = crate::sys::CpuSample::now().since(&cpu0);
    let cpu = json!({"process_cores": r2(cpu_use.process_cores), "postgres_cores": r2(cpu_use.postgres_cores), "machine_cores": r2(cpu_use.machine_cores)});
    let rate = acked.len() as f64 / secs;
    drop(nodes);

    // What the database holds.
    let rows: Vec<(i64, time::OffsetDateTime, uuid::Uuid)> = db_run!(&db, |p| sqlx::query_as(
        "SELECT protocol, submitted_at, id FROM grant_applications WHERE call_id = $1 AND protocol IS NOT NULL ORDER BY protocol"
    ).bind(call).fetch_all(p).await?);
    let (committed, budget, next): (i64, i64, i64) =
        db_run!(&db, |p| sqlx::query_as("SELECT committed_cents, budget_cents, next_protocol FROM grant_calls WHERE id = $1").bind(call).fetch_one(p).await?);
    let admitted: i64 = db_run!(&db, |p| sqlx::query_scalar("SELECT CAST(COALESCE(SUM(requested_cents), 0) AS BIGINT) FROM grant_applications WHERE call_id = $1 AND place = 'admitted'").bind(call).fetch_one(p).await?);
    let stored = rows.len();
    let gaps = rows.iter().enumerate().filter(|(i, r)| r.0 != *i as i64 + 1).count();
    let order_breaks = rows.windows(2).filter(|w| w[0].1 >= w[1].1).count();
    let by_id: std::collections::HashMap<String, i64> = rows.iter().map(|r| (r.2.to_string(), r.0)).collect();
    let lost = acked.iter().filter(|(id, p)| by_id.get(id) != Some(p)).count();
    db.close().await;

    let att = Latencies::new(attempt_lat);
    let tot = Latencies::new(total_lat);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for e in &errors {
        *kinds.entry(e.chars().take(80).collect()).or_default() += 1;
    }
    let j = json!({
        "bench": "clickday", "engine": engine, "nodes": o.nodes, "stamp": stamp, "commit": crate::sys::git_commit(),
        "machine": report::machine_json(crate::sys::cores()), "loadavg_start": load_start,
        "companies": o.companies, "concurrency": o.concurrency, "seed_secs": r2(seed_secs),
        "healthz_rps": r2(healthz),
        "submits": {"acknowledged": acked.len(), "secs": r3(secs), "per_sec": r2(rate), "ratio_to_healthz": r3(rate / healthz),
                    "attempt_p50_ms": r2(att.pct_ms(50.0)), "attempt_p99_ms": r2(att.pct_ms(99.0)),
                    "end_to_end_p50_ms": r2(tot.pct_ms(50.0)), "end_to_end_p99_ms": r2(tot.pct_ms(99.0)),
                    "http_429": throttled, "errors": errors.len(), "error_kinds": kinds, "cpu": cpu},
        "database": {"stored": stored, "acknowledged_lost": lost, "protocol_gaps": gaps, "next_protocol": next,
                     "instant_order_breaks": order_breaks, "committed_cents": committed, "admitted_sum_cents": admitted,
                     "budget_cents": budget, "over_budget": committed > budget},
    });
    let md = markdown(&j);
    println!("{md}");
    if o.save {
        let files = report::save_as("clickday", &format!("{engine}-{}node", o.nodes), stamp, &j, &md)?;
        for f in files {
            eprintln!("wrote {}", f.display());
        }
    }
    if lost > 0 || gaps > 0 || order_breaks > 0 || committed > budget || stored != acked.len() {
        bail!("the click day lost or misordered something: see the figures above");
    }
    Ok(())
}

fn markdown(j: &Value) -> String {
    let s = &j["submits"];
    let d = &j["database"];
    format!(
        "## Click day — {engine}, {nodes} node(s), {companies} companies ({stamp}, commit {commit})\n\n\
         Load average at start: {load}. Seeding: {seed} s. Concurrency: {conc}.\n\n\
         | measure | value |\n|---|---|\n\
         | submissions acknowledged | {acked} in {secs} s |\n\
         | **submissions a second** | **{rate}** |\n\
         | GET /healthz a second (same nodes, same concurrency) | {healthz} |\n\
         | ratio to /healthz | {ratio} |\n\
         | latency of the answered attempt p50 / p99 | {ap50} / {ap99} ms |\n\
         | end to end (with 429 retries) p50 / p99 | {ep50} / {ep99} ms |\n\
         | 429 answers (retried) | {t429} |\n\
         | other errors | {errors} |\n\
         | stored / acknowledged / lost | {stored} / {acked} / {lost} |\n\
         | protocol gaps / order breaks of instants | {gaps} / {breaks} |\n\
         | committed / admitted sum / budget (cents) | {committed} / {admitted} / {budget} |\n",
        engine = j["engine"].as_str().unwrap_or(""),
        nodes = j["nodes"],
        companies = j["companies"],
        stamp = j["stamp"].as_str().unwrap_or(""),
        commit = j["commit"].as_str().unwrap_or(""),
        load = j["loadavg_start"].as_str().unwrap_or(""),
        seed = j["seed_secs"],
        conc = j["concurrency"],
        acked = s["acknowledged"],
        secs = s["secs"],
        rate = s["per_sec"],
        healthz = j["healthz_rps"],
        ratio = s["ratio_to_healthz"],
        ap50 = s["attempt_p50_ms"],
        ap99 = s["attempt_p99_ms"],
        ep50 = s["end_to_end_p50_ms"],
        ep99 = s["end_to_end_p99_ms"],
        t429 = s["http_429"],
        errors = s["errors"],
        stored = d["stored"],
        lost = d["acknowledged_lost"],
        gaps = d["protocol_gaps"],
        breaks = d["instant_order_breaks"],
        committed = d["committed_cents"],
        admitted = d["admitted_sum_cents"],
        budget = d["budget_cents"],
    )
}

type Seeded = (uuid::Uuid, Vec<String>, Vec<(uuid::Uuid, uuid::Uuid)>);

/// Accounts with tokens, companies, a published call (opening tomorrow until moved) and a complete draft each.
async fn seed(db: &Db, o: &Options) -> anyhow::Result<Seeded> {
    let now = clock::now();
    let region: uuid::Uuid = db_run!(db, |p| sqlx::query_scalar("SELECT id FROM organisations WHERE ipa_code = 'r_lombar'").fetch_one(p).await?);
    let admin: uuid::Uuid = db_run!(db, |p| sqlx::query_scalar("SELECT id FROM accounts WHERE email = 'admin@regione.example'").fetch_one(p).await?);
    let rules = Rules {
        grant_rule: GrantRule::avviso_2020(),
        categories: vec![
            Category { code: "consulenza".into(), label: "Consulenza e formazione".into(), max_share_bp: None },
            Category { code: "strumenti".into(), label: "Strumenti tecnologici".into(), max_share_bp: Some(3_333) },
        ],
        eligibility: Eligibility { min_employees: 3, max_employees: None, excluded_sectors: vec![], site_region: Some("03".into()) },
        required_attachments: vec![],
        criteria: vec![],
        tie_breaks: vec![],
    };
    let call = uuid::Uuid::now_v7();
    let tomorrow = now + time::Duration::days(1);
    let closes = now + time::Duration::days(30);
    let mut tx = db.begin().await?;
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_calls (id, org_id, title, summary, body, mode, budget_cents, rules, de_minimis, opens_at, closes_at, published_at,
                                  created_by, created_at, updated_at)
         VALUES ($1, $2, 'Avviso smartworking (benchmark)', 'Click day', '', 'sportello', $3, $4, true, $5, $6, $7, $8, $7, $7)"
    ).bind(call).bind(region).bind(o.budget_euros * 100).bind(serde_json::to_string(&rules)?).bind(tomorrow).bind(closes).bind(now).bind(admin)
    .execute(c).await?.rows_affected());
    let draft = json!({"plan": "Portatili e formazione per il lavoro agile.", "declaration": true, "expenses": [
        {"category": "consulenza", "description": "Formazione", "amount_cents": 800_000},
        {"category": "strumenti", "description": "Portatili", "amount_cents": 390_000}]})
    .to_string();
    let accounts = o.companies.div_ceil(COMPANIES_PER_ACCOUNT);
    let mut account_ids = Vec::with_capacity(accounts);
    for a in 0..accounts {
        let id = uuid::Uuid::now_v7();
        db_run!(tx tx, |c| sqlx::query(
            "INSERT INTO accounts (id, email, display_name, tax_code, locale, password_hash, is_public, totp_enabled, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, NULL, 'it', NULL, true, false, false, $4, $4)"
        ).bind(id).bind(format!("impresa{a}@bench.example")).bind(format!("Rappresentante {a}")).bind(now).execute(c).await?.rows_affected());
        account_ids.push(id);
    }
    let mut apps = Vec::with_capacity(o.companies);
    for i in 0..o.companies {
        let (company, app) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let owner = account_ids[i / COMPANIES_PER_ACCOUNT];
        let employees = 3 + (i % 60) as i64;
        db_run!(tx tx, |c| {
            sqlx::query(
                "INSERT INTO companies (id, name, partita_iva, tax_code, pec, legal_rep_name, legal_rep_tax_code, employees, sector, site_regions,
                                        address, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $3, $4, 'Mario Rossi', 'RSSMRA85T10A562S', $5, '62.01.00', '03', '', $6, $7, $7)"
            ).bind(company).bind(format!("Impresa {i} S.r.l.")).bind(piva(i as u32)).bind(format!("impresa{i}@pec.bench.example")).bind(employees).bind(owner).bind(now)
            .execute(&mut *c).await?;
            sqlx::query("INSERT INTO company_representatives (company_id, account_id, role, added_by, added_at) VALUES ($1, $2, 'owner', $2, $3)")
                .bind(company).bind(owner).bind(now).execute(&mut *c).await?;
            sqlx::query(
                "INSERT INTO grant_applications (id, call_id, org_id, company_id, state, content, requested_cents, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'draft', $5, 0, $6, $7, $7)"
            ).bind(app).bind(call).bind(region).bind(company).bind(&draft).bind(owner).bind(now).execute(&mut *c).await?;
        });
        apps.push((company, app));
    }
    tx.commit().await?;
    let mut tokens = Vec::with_capacity(accounts);
    for id in account_ids {
        let (_, secret) = agilekit_kernel::identity::token::create(db, &Actor::system(), id.to_string().parse::<AccountId>().map_err(|_| anyhow::anyhow!("account id"))?, "click day").await?;
        tokens.push(secret);
    }
    Ok((call, tokens, apps))
}

/// A partita IVA from a serial number, with its check digit.
fn piva(n: u32) -> String {
    let first = format!("{:010}", 2_000_000_000u64 + u64::from(n));
    let d: Vec<u32> = first.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first}{}", (10 - (x + y) % 10) % 10)
}
