//! The help-desk benchmark (issue 5): a million tickets, then the agents' queue (page and API, first and deep
//! keyset pages, with and without a state filter), full-text search (common and rare words, API and page) and
//! ticket creation, all over HTTP against the real server.
//!
//! The tickets are seeded by bulk SQL straight into the database before the server starts (PostgreSQL: UNNEST
//! arrays over two connections with the search column computed in the insert and the GIN index built afterwards;
//! SQLite: multi-row prepared inserts in transactions of 50,000 tickets, the FTS5 triggers filling the index as in
//! production). Creation is measured against `GET /healthz` in the same run; latencies have a goal of p95 < 100 ms.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agilekit_kernel::identity::{self, session};
use agilekit_kernel::ids::{AccountId, ApiTokenId, OrgId};
use agilekit_kernel::{Db, clock, db_run, tenancy};
use agilekit_server::Config;
use anyhow::{Context, bail};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};
use sqlx::Connection;
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::args::{self, Engine};
use crate::report::{self, Latencies, micros, r2, r3};
use crate::sys::{self, CpuSample};

/// The large organisation (most tickets) and the agent who works its queue.
const ORG: &str = "r_lombar";
const AGENT: &str = "agente@regione.example";
const EMPLOYEE: &str = "dipendente@regione.example";
/// Share of the tickets in the large organisation; the rest spread over the other demo organisations.
const LARGE_SHARE: u64 = 90;
const LATENCY_GOAL_MS: f64 = 100.0;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const DISTURBED_ABOVE: f64 = 0.25;
const SEED_CHUNK: usize = 50_000;
/// Bench requesters in the large organisation (the other organisations' tickets are their administrators').
const REQUESTERS: usize = 1000;

pub struct Options {
    engines: Vec<Engine>,
    tickets: usize,
    concurrency: usize,
    requests: usize,
    secs: u64,
    creates: usize,
    create_concurrency: usize,
    reuse: bool,
    save: bool,
    /// Only the routes (and counts) whose name contains this; no ticket creation (a focused look while developing).
    only: Option<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            engines: vec![Engine::Sqlite],
            tickets: 1_000_000,
            concurrency: 8,
            requests: 400,
            secs: 20,
            creates: 2000,
            create_concurrency: 16,
            reuse: false,
            save: true,
            only: None,
        };
        for f in args::flags(args, &["--no-save", "--reuse"])? {
            match f.name.as_str() {
                "--no-save" => o.save = false,
                "--reuse" => o.reuse = true,
                "--engine" => o.engines = f.engines()?,
                "--tickets" => o.tickets = f.number(10_000_000)?.max(1000),
                "--concurrency" => o.concurrency = f.number(256)?,
                "--requests" => o.requests = f.number(100_000)?,
                "--secs" => o.secs = f.number(600)? as u64,
                "--creates" => o.creates = f.number(100_000)?,
                "--create-concurrency" => o.create_concurrency = f.number(256)?,
                "--only" => o.only = f.value.clone(),
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
        let md = markdown(&j);
        println!("\n{md}");
        if opts.save {
            for p in report::save_as("helpdesk", engine.name(), &stamp, &j, &md)? {
                println!("  wrote {}", p.display());
            }
            sections.push(md);
        }
    }
    if opts.save && !sections.is_empty() {
        println!("  wrote {}", report::save_latest_as("helpdesk", &sections)?.display());
    }
    if !failed.is_empty() {
        bail!("the run failed on {}", failed.join(", "));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The server's data: a fresh SQLite directory or PostgreSQL database, removed at the end; with --reuse a fixed one
// per engine and size, kept for the next run

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
    keep: bool,
}

impl Scratch {
    async fn create(engine: Engine, opts: &Options) -> anyhow::Result<Scratch> {
        let suffix = if opts.reuse { format!("helpdesk_{}", opts.tickets) } else { uuid::Uuid::new_v4().simple().to_string() };
        let dir = std::env::temp_dir().join(format!("agilekit-bench-{suffix}-{}", engine.name()));
        std::fs::create_dir_all(&dir)?;
        let mut cfg = Config { listen: "127.0.0.1:0".into(), data_dir: dir.clone(), ..Config::default() };
        // Nothing listens on the discard port: the mail a new ticket queues stays queued.
        cfg.smtp.host = "127.0.0.1".into();
        cfg.smtp.port = 9;
        let mut pg_name = None;
        if engine == Engine::Postgres {
            let name = format!("agilekit_bench_{suffix}");
            let admin = sqlx::PgPool::connect(&pg_admin_url()).await.context("cannot reach PostgreSQL (set AGILEKIT_TEST_PG)")?;
            let exists: Option<(i32,)> =
                sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1").bind(&name).fetch_optional(&admin).await?;
            if exists.is_none() {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.context("create database")?;
            }
            admin.close().await;
            let mut u = url::Url::parse(&pg_admin_url()).context("AGILEKIT_TEST_PG is not a URL")?;
            u.set_path(&format!("/{name}"));
            cfg.database_url = u.to_string();
            pg_name = Some(name);
        }
        Ok(Scratch { cfg, dir, pg_name, keep: opts.reuse })
    }

    async fn destroy(self) {
        if self.keep {
            eprintln!("kept for --reuse: {}", self.pg_name.clone().unwrap_or_else(|| self.dir.display().to_string()));
            return;
        }
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
    let scratch = Scratch::create(engine, opts).await?;
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
// Seeding: realistic tickets, generated from the index (deterministic), inserted in bulk

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const CATEGORIES: [(&str, &[&str]); 6] = [
    ("vpn", &[
        "La VPN si disconnette ogni pochi minuti",
        "Impossibile connettersi alla VPN da casa",
        "VPN lenta durante le videochiamate",
        "Errore di autenticazione sulla VPN",
        "Il client VPN non parte dopo l'aggiornamento",
    ]),
    ("workstation", &[
        "Il portatile non si accende",
        "La stampante di casa non viene rilevata",
        "Monitor esterno senza segnale",
        "Aggiornamento di Windows bloccato",
        "Tastiera del portatile non funziona",
        "Il desktop remoto dell'ufficio non risponde",
    ]),
    ("meetings", &[
        "Microfono non funziona nelle riunioni",
        "Non riesco a condividere lo schermo",
        "Videocamera nera durante la riunione",
        "Audio assente nella sala virtuale",
    ]),
    ("elearning", &[
        "Il corso di formazione non si apre",
        "Attestato del corso non scaricabile",
        "Video del modulo bloccato a metà",
        "Quiz finale non registrato",
    ]),
    ("account", &[
        "Password scaduta",
        "Account bloccato dopo tre tentativi",
        "Richiesta di abilitazione alla posta certificata",
        "Autenticazione a due fattori non funziona",
    ]),
    ("other", &[
        "Informazioni sul lavoro agile",
        "Rimborso delle spese di connessione",
        "Sedia ergonomica per il lavoro da casa",
        "Richiesta di un secondo monitor",
    ]),
];

const OPENINGS: [&str; 4] = ["Buongiorno,", "Salve,", "Gentile assistenza,", "Buonasera,"];
const DETAILS: [&str; 8] = [
    "da questa mattina il problema si ripete di continuo e non riesco a lavorare.",
    "ho già provato a riavviare il computer ma non è cambiato nulla.",
    "succede soprattutto nel pomeriggio, quando la linea di casa è più carica.",
    "il collega della stanza accanto ha lo stesso problema da ieri.",
    "allego una descrizione dei passaggi che ho seguito prima dell'errore.",
    "lavoro da casa tre giorni alla settimana e mi serve una soluzione rapida.",
    "la stampante dell'ufficio invece funziona senza problemi.",
    "la connessione di casa è in fibra e gli altri servizi funzionano.",
];
const CLOSINGS: [&str; 3] = ["Grazie mille.", "Cordiali saluti.", "Resto in attesa di una risposta."];
/// (state, weight in 100): most of two years of tickets are closed.
const STATES: [(&str, u64); 6] = [("closed", 70), ("resolved", 10), ("open", 8), ("new", 5), ("pending", 5), ("merged", 2)];
const PRIORITIES: [(&str, u64, i64); 4] = [("low", 20, 16 * 3600), ("normal", 55, 8 * 3600), ("high", 20, 4 * 3600), ("urgent", 5, 3600)];

fn weighted<T: Copy>(v: &[(T, u64)], r: u64) -> T {
    let mut x = r % 100;
    for &(t, w) in v {
        if x < w {
            return t;
        }
        x -= w;
    }
    v[0].0
}

/// The rare words: an error code a requester copies from a dialog, about ten tickets each at a million.
fn error_code(i: u64) -> String {
    format!("0x{:05x}", mix(i ^ 0xc0de) % 100_000)
}

struct SeedCols {
    id: Vec<uuid::Uuid>,
    org: Vec<uuid::Uuid>,
    number: Vec<i64>,
    requester: Vec<uuid::Uuid>,
    category: Vec<String>,
    subject: Vec<String>,
    priority: Vec<String>,
    state: Vec<String>,
    assignee: Vec<Option<uuid::Uuid>>,
    fr_target: Vec<i64>,
    fr_state: Vec<String>,
    rs_target: Vec<i64>,
    rs_state: Vec<String>,
    created: Vec<OffsetDateTime>,
    updated: Vec<OffsetDateTime>,
    msg_id: Vec<uuid::Uuid>,
    body: Vec<String>,
    message_id: Vec<String>,
}

struct World {
    large: OrgId,
    others: Vec<(OrgId, AccountId)>,
    requesters: Vec<AccountId>,
    agent: AccountId,
    start: OffsetDateTime,
    span_secs: i64,
    n: u64,
}

impl World {
    fn cols(&self, from: u64, to: u64) -> SeedCols {
        let cap = (to - from) as usize;
        let mut c = SeedCols {
            id: Vec::with_capacity(cap),
            org: Vec::with_capacity(cap),
            number: Vec::with_capacity(cap),
            requester: Vec::with_capacity(cap),
            category: Vec::with_capacity(cap),
            subject: Vec::with_capacity(cap),
            priority: Vec::with_capacity(cap),
            state: Vec::with_capacity(cap),
            assignee: Vec::with_capacity(cap),
            fr_target: Vec::with_capacity(cap),
            fr_state: Vec::with_capacity(cap),
            rs_target: Vec::with_capacity(cap),
            rs_state: Vec::with_capacity(cap),
            created: Vec::with_capacity(cap),
            updated: Vec::with_capacity(cap),
            msg_id: Vec::with_capacity(cap),
            body: Vec::with_capacity(cap),
            message_id: Vec::with_capacity(cap),
        };
        for i in from..to {
            let r = mix(i);
            let large = r % 100 < LARGE_SHARE;
            let (org, requester) = if large || self.others.is_empty() {
                (self.large, self.requesters[(r >> 8) as usize % self.requesters.len()])
            } else {
                self.others[(r >> 8) as usize % self.others.len()]
            };
            let (cat, subjects) = CATEGORIES[(r >> 16) as usize % CATEGORIES.len()];
            let subject = subjects[(r >> 20) as usize % subjects.len()];
            let state = weighted(&STATES, r >> 24);
            let (prio, fr) = {
                let x = (r >> 32) % 100;
                let mut acc = 0;
                let mut out = (PRIORITIES[1].0, PRIORITIES[1].2);
                for (p, w, t) in PRIORITIES {
                    acc += w;
                    if x < acc {
                        out = (p, t);
                        break;
                    }
                }
                out
            };
            // Stamped as the server stamps what it stores (UTC, microseconds, an odd last digit: ADR 0002).
            let created = clock::stamp(
                self.start + Duration::from_secs((i as i64 * self.span_secs / self.n as i64) as u64) + Duration::from_micros((r >> 40) % 1_000_000),
            );
            let updated = clock::stamp(created + Duration::from_secs(if state == "new" { 0 } else { (r >> 44) % (5 * 86_400) }));
            let body = format!(
                "{} {} {} Il messaggio di errore riporta il codice {}. {}",
                OPENINGS[(r >> 48) as usize % OPENINGS.len()],
                DETAILS[(r >> 50) as usize % DETAILS.len()],
                DETAILS[(r >> 53) as usize % DETAILS.len()],
                error_code(i),
                CLOSINGS[(r >> 56) as usize % CLOSINGS.len()],
            );
            let active = matches!(state, "new" | "open" | "pending");
            c.id.push(uuid::Uuid::from_u64_pair(0xb0b0_0000_0000_0000 | (r >> 16), i));
            c.org.push(org.0);
            c.number.push(i as i64 + 1);
            c.requester.push(requester.0);
            c.category.push(cat.into());
            c.subject.push(subject.into());
            c.priority.push(prio.into());
            c.state.push(state.into());
            c.assignee.push((state != "new" && large).then_some(self.agent.0));
            c.fr_target.push(fr);
            c.fr_state.push(if state == "new" { "running" } else { "stopped" }.into());
            c.rs_target.push(fr * 5);
            c.rs_state.push(match state {
                "pending" => "paused",
                _ if active => "running",
                _ => "stopped",
            }
            .into());
            c.created.push(created);
            // Within the two years: a change that would fall after their end falls just before it instead, a
            // microsecond apart from the others (not all of them at the one last instant: no help desk changes
            // thousands of tickets in one microsecond; a bulk action takes 200 at most).
            let end = self.start + Duration::from_secs(self.span_secs as u64);
            c.updated.push(if updated > end { clock::stamp(end - Duration::from_micros(2 * (self.n - i))) } else { updated });
            c.msg_id.push(uuid::Uuid::from_u64_pair(0xb0b1_0000_0000_0000 | (r >> 16), i));
            c.body.push(body);
            c.message_id.push(format!("<seed-{i}@bench.agilekit>"));
        }
        c
    }
}

async fn insert_requesters(db: &Db, org: OrgId, n: usize) -> anyhow::Result<Vec<AccountId>> {
    let now = clock::now();
    let ids: Vec<AccountId> = (0..n).map(|_| AccountId::new()).collect();
    let mut tx = db.begin().await?;
    for (k, chunk) in ids.chunks(500).enumerate() {
        db_run!(tx &mut tx, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO accounts (id, email, display_name, password_hash, is_public, totp_enabled, disabled, created_at, updated_at) ",
            );
            q.push_values(chunk.iter().enumerate(), |mut b, (j, a)| {
                let i = k * 500 + j;
                b.push_bind(*a).push_bind(format!("richiedente-{i:05}@bench.example")).push_bind(format!("Richiedente {i:05}"))
                    .push_bind("!").push_bind(false).push_bind(false).push_bind(false).push_bind(now).push_bind(now);
            });
            q.build().execute(&mut *c).await?;
            let mut q = sqlx::QueryBuilder::new("INSERT INTO memberships (org_id, account_id, role, created_at) ");
            q.push_values(chunk, |mut b, a| {
                b.push_bind(org).push_bind(*a).push_bind("employee").push_bind(now);
            });
            q.build().execute(&mut *c).await?;
        });
    }
    tx.commit().await?;
    Ok(ids)
}

/// Seeded tickets already in the database (a reused one), by their messages' ids.
async fn seeded(db: &Db) -> anyhow::Result<i64> {
    let (n,): (i64,) = db_run!(db, |p| sqlx::query_as(
        "SELECT COUNT(*) FROM helpdesk_messages WHERE message_id LIKE '<seed-%'"
    ).fetch_one(p).await?);
    Ok(n)
}

async fn seed(engine: Engine, db: &Db, url: &str, w: Arc<World>) -> anyhow::Result<()> {
    let n = w.n;
    match engine {
        Engine::Postgres => {
            // Triggers off on the seeding connections (the FK checks too: the rows are consistent by
            // construction); the search column computed in the insert as the trigger would; the GIN index built
            // once at the end, much faster than a million insertions into it.
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query("DROP INDEX IF EXISTS helpdesk_tickets_search").execute(&mut c).await?;
            c.close().await?;
            let next = Arc::new(AtomicUsize::new(0));
            let mut set = JoinSet::new();
            for _ in 0..2 {
                let (w, next, url) = (w.clone(), next.clone(), url.to_owned());
                set.spawn(async move {
                    let mut c = sqlx::PgConnection::connect(&url).await?;
                    sqlx::query("SET session_replication_role = replica").execute(&mut c).await?;
                    loop {
                        let from = next.fetch_add(SEED_CHUNK, Ordering::Relaxed) as u64;
                        if from >= n {
                            break;
                        }
                        let to = (from + SEED_CHUNK as u64).min(n);
                        let s = w.cols(from, to);
                        let mut tx = c.begin().await?;
                        sqlx::query(
                            "INSERT INTO helpdesk_tickets (id, org_id, number, requester_id, category, subject, priority, state,
                                assignee_id, fr_target_secs, fr_state, fr_since, rs_target_secs, rs_state, rs_since, created_at,
                                updated_at, search)
                             SELECT id, org, num, req, cat, subj, prio, st, asg, frt, frs, cr, rst, rss, cr, cr, up,
                                    to_tsvector('italian', subj) || to_tsvector('italian', body)
                             FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                                         $8::text[], $9::uuid[], $10::int8[], $11::text[], $12::int8[], $13::text[],
                                         $14::timestamptz[], $15::timestamptz[], $16::text[])
                                  AS x(id, org, num, req, cat, subj, prio, st, asg, frt, frs, rst, rss, cr, up, body)",
                        )
                        .bind(&s.id).bind(&s.org).bind(&s.number).bind(&s.requester).bind(&s.category).bind(&s.subject)
                        .bind(&s.priority).bind(&s.state).bind(&s.assignee).bind(&s.fr_target).bind(&s.fr_state)
                        .bind(&s.rs_target).bind(&s.rs_state).bind(&s.created).bind(&s.updated).bind(&s.body)
                        .execute(&mut *tx).await?;
                        sqlx::query(
                            "INSERT INTO helpdesk_messages (id, org_id, ticket_id, author_id, kind, body, message_id, created_at)
                             SELECT mid, org, tid, req, 'reply', body, msgid, cr
                             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[])
                                  AS x(mid, org, tid, req, body, msgid, cr)",
                        )
                        .bind(&s.msg_id).bind(&s.org).bind(&s.id).bind(&s.requester).bind(&s.body).bind(&s.message_id)
                        .bind(&s.created)
                        .execute(&mut *tx).await?;
                        tx.commit().await?;
                        eprint!(".");
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            eprintln!();
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query("SET maintenance_work_mem = '1GB'").execute(&mut c).await?;
            sqlx::query("CREATE INDEX helpdesk_tickets_search ON helpdesk_tickets USING GIN (search)").execute(&mut c).await?;
            sqlx::query("VACUUM ANALYZE helpdesk_tickets").execute(&mut c).await?;
            sqlx::query("VACUUM ANALYZE helpdesk_messages").execute(&mut c).await?;
            c.close().await?;
        }
        Engine::Sqlite => {
            let Db::Sqlite(pool) = db else { bail!("not SQLite") };
            let mut from = 0u64;
            while from < n {
                let to = (from + SEED_CHUNK as u64).min(n);
                let s = w.cols(from, to);
                let mut tx = pool.begin().await?;
                for r in (0..s.id.len()).collect::<Vec<_>>().chunks(1000) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO helpdesk_tickets (id, org_id, number, requester_id, category, subject, priority, state,
                            assignee_id, fr_target_secs, fr_state, fr_since, rs_target_secs, rs_state, rs_since, created_at, updated_at) ",
                    );
                    q.push_values(r, |mut b, &k| {
                        b.push_bind(s.id[k]).push_bind(s.org[k]).push_bind(s.number[k]).push_bind(s.requester[k])
                            .push_bind(s.category[k].as_str()).push_bind(s.subject[k].as_str()).push_bind(s.priority[k].as_str())
                            .push_bind(s.state[k].as_str()).push_bind(s.assignee[k]).push_bind(s.fr_target[k])
                            .push_bind(s.fr_state[k].as_str()).push_bind(s.created[k]).push_bind(s.rs_target[k])
                            .push_bind(s.rs_state[k].as_str()).push_bind(s.created[k]).push_bind(s.created[k]).push_bind(s.updated[k]);
                    });
                    q.build().execute(&mut *tx).await?;
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO helpdesk_messages (id, org_id, ticket_id, author_id, kind, body, message_id, created_at) ",
                    );
                    q.push_values(r, |mut b, &k| {
                        b.push_bind(s.msg_id[k]).push_bind(s.org[k]).push_bind(s.id[k]).push_bind(s.requester[k]).push_bind("reply")
                            .push_bind(s.body[k].as_str()).push_bind(s.message_id[k].as_str()).push_bind(s.created[k]);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                eprint!(".");
                from = to;
            }
            eprintln!();
        }
    }
    // The organisations' counters: the next ticket numbers after the seeded ones.
    db_run!(db, |p| {
        sqlx::query(
            "INSERT INTO helpdesk_counters (org_id, last_number)
             SELECT org_id, MAX(number) FROM helpdesk_tickets GROUP BY org_id
             ON CONFLICT (org_id) DO UPDATE SET last_number = excluded.last_number",
        )
        .execute(p).await?;
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

fn client(base: &str, cookie: Option<&str>, token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut h = HeaderMap::new();
    h.insert(ORIGIN, HeaderValue::from_str(base)?);
    if let Some(c) = cookie {
        h.insert(COOKIE, HeaderValue::from_str(c)?);
    }
    if let Some(t) = token {
        h.insert(reqwest::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {t}"))?);
    }
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(512)
        .build()?)
}

async fn login(c: &reqwest::Client, base: &str, email: &str, pw: &str) -> anyhow::Result<String> {
    let r = c.post(format!("{base}/login")).form(&[("email", email), ("password", pw)]).send().await?;
    let prefix = format!("{}=", session::COOKIE);
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&prefix) && kv.len() > prefix.len())
        .map(str::to_owned);
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    match (status, cookie) {
        (303, Some(c)) => Ok(c),
        (s, _) => bail!("login of {email} answered {s} without a session"),
    }
}

/// A personal API token for an existing account, inserted as the kernel stores it.
async fn insert_token(db: &Db, account: AccountId) -> anyhow::Result<String> {
    let secret = session::new_secret();
    let prefix: String = secret.chars().take(8).collect();
    let full = format!("ak_{prefix}_{secret}");
    let (id, hash, prefix) = (ApiTokenId::new(), session::hash_secret(&full), format!("ak_{prefix}"));
    let now = clock::now();
    db_run!(db, |p| {
        sqlx::query("INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id).bind(account).bind("bench").bind(&hash).bind(&prefix).bind(now).bind(now)
            .execute(p).await?;
    });
    Ok(full)
}

/// Calls of one route: counts, latencies and the CPU used over them.
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
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    fn own_core_secs(&self, engine: Engine) -> f64 {
        self.process_core_secs + if engine == Engine::Postgres { self.postgres_core_secs } else { 0.0 }
    }

    fn other_cores(&self, engine: Engine) -> f64 {
        ((self.machine_core_secs - self.own_core_secs(engine)) / self.secs.max(1e-9)).max(0.0)
    }

    fn json(&self, name: &str, route: &str, engine: Engine, goal: bool) -> Value {
        let secs = self.secs.max(1e-9);
        let lat = Latencies::new(self.lat.clone());
        let errors: usize = self.failures.values().sum();
        let p95 = lat.pct_ms(95.0);
        json!({"name": name, "route": route, "requests": self.ok + errors, "ok": self.ok, "errors": errors,
               "failure_kinds": self.failures, "secs": r3(secs), "rps": r2(self.rps()),
               "p50_ms": r3(lat.pct_ms(50.0)), "p95_ms": r3(p95), "max_ms": r3(lat.pct_ms(100.0)),
               "goal_ms": if goal { json!(LATENCY_GOAL_MS) } else { Value::Null },
               "verdict": if !goal { "" } else if p95 < LATENCY_GOAL_MS && errors == 0 { "meets goal" } else { "ABOVE GOAL" },
               "cpu_process_cores": r2(self.process_core_secs / secs), "cpu_postgres_cores": r2(self.postgres_core_secs / secs),
               "cpu_other_cores": r2(self.other_cores(engine)),
               "cpu_us_per_call": r2(self.own_core_secs(engine) / self.ok.max(1) as f64 * 1e6),
               "disturbed": self.other_cores(engine) > DISTURBED_ABOVE})
    }
}

/// `conc` workers call `op(i)` for `i` in `0..n`, stopping at `max_secs`.
async fn storm<F, Fut>(n: usize, conc: usize, max_secs: u64, op: F) -> Measured
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(max_secs);
    let cpu0 = CpuSample::now();
    let mut workers = JoinSet::new();
    for _ in 0..conc.clamp(1, n.max(1)) {
        let (op, next) = (op.clone(), next.clone());
        workers.spawn(async move {
            let (mut ok, mut failures, mut lat) = (0usize, BTreeMap::<String, usize>::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => {
                        lat.push(micros(t.elapsed()));
                        ok += 1;
                    }
                    Err(kind) => *failures.entry(kind).or_default() += 1,
                }
            }
            (ok, failures, lat)
        });
    }
    let mut m = Measured::default();
    while let Some(r) = workers.join_next().await {
        match r {
            Ok((ok, failures, lat)) => {
                m.ok += ok;
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
    m.process_core_secs = cpu.process_cores * m.secs;
    m.postgres_core_secs = cpu.postgres_cores * m.secs;
    m.machine_core_secs = cpu.machine_cores * m.secs;
    m
}

/// GETs of one URL that must answer 200 (and, for the API's pages, carry items).
async fn gets(c: &reqwest::Client, url: String, n: usize, conc: usize, secs: u64) -> Measured {
    let (c, url) = (c.clone(), Arc::new(url));
    storm(n, conc, secs, move |_| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let r = c.get(url.as_str()).send().await.map_err(|e| format!("transport: {e}"))?;
            let s = r.status().as_u16();
            let _ = r.bytes().await.map_err(|e| format!("transport: {e}"))?;
            if s == 200 { Ok(()) } else { Err(format!("HTTP {s}")) }
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------------
// The run

async fn run_on(engine: Engine, scratch: &Scratch, opts: &Options, stamp: &str, commit: &str) -> anyhow::Result<Value> {
    let machine = report::machine_json(sys::cores());
    let db = agilekit_server::open_db(&scratch.cfg).await?;
    let version = engine_version(&db).await;
    agilekit_server::demo::seed(&db).await?;
    let orgs = tenancy::list(&db).await?;
    let large = orgs.iter().find(|o| o.ipa_code == ORG).context("the demo region")?.id;
    let agent = identity::find_by_email(&db, AGENT).await?.context("the demo agent")?.id;
    let employee = identity::find_by_email(&db, EMPLOYEE).await?.context("the demo employee")?.id;

    let already = seeded(&db).await?;
    let n = opts.tickets as u64;
    let mut seed_secs = None;
    if already >= n as i64 {
        eprintln!("[{}] reusing {already} seeded tickets", engine.name());
    } else {
        if already > 0 {
            bail!("the reused database has {already} of {n} seeded tickets: remove it and run again");
        }
        let requesters = insert_requesters(&db, large, REQUESTERS).await?;
        let mut others = Vec::new();
        for o in orgs.iter().filter(|o| o.id != large) {
            let (m,): (AccountId,) = match db_run!(&db, |p| sqlx::query_as(
                "SELECT account_id FROM memberships WHERE org_id = $1 ORDER BY account_id LIMIT 1"
            ).bind(o.id).fetch_optional(p).await?) {
                Some(m) => m,
                None => continue,
            };
            others.push((o.id, m));
        }
        let now = clock::now();
        let span_secs = 730 * 86_400;
        let world = Arc::new(World {
            large,
            others,
            requesters,
            agent,
            start: now - Duration::from_secs(span_secs as u64 + 6 * 86_400),
            span_secs,
            n,
        });
        eprintln!("[{}] seeding {n} tickets with a message each", engine.name());
        let t = Instant::now();
        seed(engine, &db, &scratch.cfg.effective_database_url(), world).await?;
        seed_secs = Some(t.elapsed().as_secs_f64());
        eprintln!("[{}] seeded in {:.1} s", engine.name(), t.elapsed().as_secs_f64());
    }
    let (in_org,): (i64,) =
        db_run!(&db, |p| sqlx::query_as("SELECT COUNT(*) FROM helpdesk_tickets WHERE org_id = $1").bind(large).fetch_one(p).await?);
    // A deep keyset page: the cursor of the ticket halfway down the queue (and of the open ones).
    let cursor = |state: Option<&'static str>| {
        let db = db.clone();
        async move {
            let (sql, half) = match state {
                None => ("SELECT updated_at, id FROM helpdesk_tickets WHERE org_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET $2", in_org / 2),
                Some(_) => ("SELECT updated_at, id FROM helpdesk_tickets WHERE org_id = $1 AND state = 'open' ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET $2", in_org * 8 / 200),
            };
            let (at, id): (OffsetDateTime, uuid::Uuid) =
                db_run!(&db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(large).bind(half).fetch_one(p).await?);
            anyhow::Ok(format!("{}_{}", at.unix_timestamp_nanos(), id))
        }
    };
    let deep = cursor(None).await?;
    let deep_open = cursor(Some("open")).await?;
    let agent_token = insert_token(&db, agent).await?;
    let employee_token = insert_token(&db, employee).await?;

    let running = agilekit_server::start(&scratch.cfg, db.clone()).await?;
    let base = running.url();
    let result = async {
        let anon = client(&base, None, None)?;
        let cookie = login(&anon, &base, AGENT, agilekit_server::demo::PASSWORD).await?;
        let page = client(&base, Some(&cookie), None)?;
        let api = client(&base, None, Some(&agent_token))?;
        let requester = client(&base, None, Some(&employee_token))?;
        let rare = error_code(n / 3);
        let page_url = format!("{base}/orgs/{large}/helpdesk");
        let api_url = format!("{base}/api/v1/orgs/{large}/helpdesk/tickets");
        let routes: Vec<(&str, reqwest::Client, String)> = vec![
            ("queue page, first", page.clone(), page_url.clone()),
            ("queue page, deep (halfway)", page.clone(), format!("{page_url}?after={deep}")),
            ("queue page, open, first", page.clone(), format!("{page_url}?state=open")),
            ("queue page, open, deep (halfway)", page.clone(), format!("{page_url}?state=open&after={deep_open}")),
            ("API list, first", api.clone(), api_url.clone()),
            ("API list, deep (halfway)", api.clone(), format!("{api_url}?after={deep}")),
            ("API list, open, first", api.clone(), format!("{api_url}?state=open")),
            ("API list, open, deep (halfway)", api.clone(), format!("{api_url}?state=open&after={deep_open}")),
            ("search API, common word (vpn)", api.clone(), format!("{api_url}?q=vpn")),
            ("search API, plural finds singular (stampanti)", api.clone(), format!("{api_url}?q=stampanti")),
            ("search API, two words (videocamera riunione)", api.clone(), format!("{api_url}?q=videocamera+riunione")),
            ("search API, rare word (an error code)", api.clone(), format!("{api_url}?q={rare}")),
            ("search API, common word, open", api.clone(), format!("{api_url}?q=vpn&state=open")),
            ("search page, common word (vpn)", page.clone(), format!("{page_url}?q=vpn")),
            ("search page, rare word (an error code)", page.clone(), format!("{page_url}?q={rare}")),
        ];
        let counts: Vec<(&str, String)> = vec![
            ("count, whole queue", format!("{api_url}/count")),
            ("count, open", format!("{api_url}/count?state=open")),
            ("count, search common word (vpn)", format!("{api_url}/count?q=vpn")),
            ("count, search rare word", format!("{api_url}/count?q={rare}")),
        ];
        // What each search finds, and a sanity check that the deep pages are not empty.
        let mut found = serde_json::Map::new();
        for (name, url) in &counts {
            let v: Value = api.get(url).send().await?.error_for_status()?.json().await?;
            found.insert((*name).into(), v["count"].clone());
        }
        let deep_items: Value = api.get(format!("{api_url}?after={deep}")).send().await?.error_for_status()?.json().await?;
        if deep_items["items"].as_array().is_none_or(|a| a.is_empty()) {
            bail!("the deep page is empty: {deep_items}");
        }
        let only = |name: &str| opts.only.as_deref().is_none_or(|o| name.contains(o));
        let mut measured = Vec::new();
        for (name, c, url) in routes.iter().filter(|r| only(r.0)) {
            // A few unmeasured calls first (connections, statement caches).
            let _ = gets(c, url.clone(), 4, 1, 10).await;
            eprintln!("[{}] {name}", engine.name());
            let m = gets(c, url.clone(), opts.requests, opts.concurrency, opts.secs).await;
            measured.push(m.json(name, url.trim_start_matches(&base), engine, true));
        }
        let mut count_measured = Vec::new();
        for (name, url) in counts.iter().filter(|r| only(r.0)) {
            let _ = gets(&api, url.clone(), 2, 1, 10).await;
            eprintln!("[{}] {name}", engine.name());
            let m = gets(&api, url.clone(), opts.requests / 4, opts.concurrency, opts.secs).await;
            count_measured.push(m.json(name, url.trim_start_matches(&base), engine, false));
        }

        if opts.only.is_some() {
            return anyhow::Ok((measured, count_measured, Value::Null, Value::Object(found)));
        }
        // Creation: half the /healthz calls before, half after.
        eprintln!("[{}] creation against /healthz", engine.name());
        let healthz = format!("{base}/healthz");
        let (cc, conc) = (opts.creates, opts.create_concurrency);
        let mut h = gets(&anon, healthz.clone(), cc * 5, conc, opts.secs).await;
        let create_url = Arc::new(api_url.clone());
        let rc = requester.clone();
        let created = storm(cc, conc, opts.secs * 3, move |i| {
            let (c, url) = (rc.clone(), create_url.clone());
            async move {
                let body = json!({"category": "vpn", "subject": format!("La VPN non si connette (prova {i})"),
                                  "body": "Buongiorno, da stamattina la VPN non si connette. Grazie."});
                let r = c.post(url.as_str()).json(&body).send().await.map_err(|e| format!("transport: {e}"))?;
                let s = r.status().as_u16();
                let _ = r.bytes().await;
                if s == 201 || s == 200 { Ok(()) } else { Err(format!("HTTP {s}")) }
            }
        })
        .await;
        let h2 = gets(&anon, healthz, cc * 5, conc, opts.secs).await;
        h.ok += h2.ok;
        h.secs += h2.secs;
        h.lat.extend(h2.lat);
        h.process_core_secs += h2.process_core_secs;
        h.postgres_core_secs += h2.postgres_core_secs;
        h.machine_core_secs += h2.machine_core_secs;
        for (k, v) in h2.failures {
            *h.failures.entry(k).or_default() += v;
        }
        let ratio = created.rps() / h.rps().max(1e-9);
        let creation = json!({
            "concurrency": conc,
            "create": created.json("POST tickets (as the employee)", "/api/v1/orgs/{org}/helpdesk/tickets", engine, false),
            "healthz": h.json("GET /healthz", "/healthz", engine, false),
            "ratio": r3(ratio),
        });
        anyhow::Ok((measured, count_measured, creation, Value::Object(found)))
    }
    .await;
    running.stop().await;
    db.close().await;
    let (routes, counts, creation, found) = result?;
    Ok(json!({
        "benchmark": "helpdesk",
        "engine": engine.name(),
        "engine_version": version,
        "timestamp": stamp,
        "commit": commit,
        "machine": machine,
        "setup": {"tickets": n, "in_large_org": in_org, "organisation": ORG,
                  "seed_secs": seed_secs.map(r2), "reused": seed_secs.is_none(),
                  "concurrency": opts.concurrency, "requests_per_route": opts.requests, "secs_per_route": opts.secs,
                  "only": opts.only},
        "found": found,
        "routes": routes,
        "counts": counts,
        "creation": creation,
    }))
}

fn markdown(j: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let st = &j["setup"];
    let mut out = format!(
        "# Help-desk benchmark — {} ({})\n\n{} · commit `{}` · {} cores ({}) · load average at start {}\n\n\
         {} tickets with a message each ({} in `{}`), {}; the agent's requests at concurrency {}, up to {} requests or {} s a route.\n\n\
         Found: {}\n\n\
         | route | requests | errors | req/s | p50 ms | p95 ms | max ms | verdict (p95 < {} ms) | cores: process / PostgreSQL / else |\n|---|---|---|---|---|---|---|---|---|\n",
        s(&j["engine"]),
        s(&j["engine_version"]),
        s(&j["timestamp"]),
        s(&j["commit"]),
        j["machine"]["cores"],
        s(&j["machine"]["cpu"]),
        s(&j["machine"]["loadavg_start"]),
        st["tickets"],
        st["in_large_org"],
        s(&st["organisation"]),
        match st["seed_secs"].as_f64() {
            Some(x) => format!("seeded in {x:.0} s"),
            None => "seeded by an earlier run (--reuse)".into(),
        },
        st["concurrency"],
        st["requests_per_route"],
        st["secs_per_route"],
        j["found"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · ")).unwrap_or_default(),
        LATENCY_GOAL_MS,
    );
    let row = |r: &Value| {
        format!(
            "| {} `{}` | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {}{} | {:.2} / {:.2} / {:.2} |\n",
            s(&r["name"]),
            s(&r["route"]),
            r["requests"],
            r["errors"],
            f(&r["rps"]),
            f(&r["p50_ms"]),
            f(&r["p95_ms"]),
            f(&r["max_ms"]),
            s(&r["verdict"]),
            if r["disturbed"].as_bool() == Some(true) { " DISTURBED" } else { "" },
            f(&r["cpu_process_cores"]),
            f(&r["cpu_postgres_cores"]),
            f(&r["cpu_other_cores"]),
        )
    };
    for r in j["routes"].as_array().into_iter().flatten() {
        out.push_str(&row(r));
    }
    out.push_str("\nCounts (apart from the pages; no goal):\n\n| route | requests | errors | req/s | p50 ms | p95 ms | max ms | | cores |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in j["counts"].as_array().into_iter().flatten() {
        out.push_str(&row(r));
    }
    let c = &j["creation"];
    if c.is_null() {
        out.push_str(&format!("\nA focused run (`--only {}`): no ticket creation.\n", s(&st["only"])));
        return out;
    }
    out.push_str(&format!(
        "\n## Ticket creation\n\n{} at concurrency {}, `GET /healthz` the same way (half before, half after).\n\n\
         | route | requests | errors | req/s | p50 ms | p95 ms | max ms | | cores |\n|---|---|---|---|---|---|---|---|---|\n{}{}\n\
         **Ratio creations/s ÷ `/healthz`/s: {:.3}**\n",
        s(&c["create"]["name"]),
        c["concurrency"],
        row(&c["create"]),
        row(&c["healthz"]),
        f(&c["ratio"]),
    ));
    out
}
