//! Jobs and the outbox: work that must happen because of a change (a mail, a timer) is a row written in
//! the same transaction as the change, claimed by a worker under a lease, retried with backoff, never lost.
//! On PostgreSQL several nodes claim with `FOR UPDATE SKIP LOCKED`, so each job runs once at a time.
//! Done jobs are deleted after a while (`[jobs] keep_days`) by the worker loop, at most hourly.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::db::{Db, DbResult, Tx};
use crate::db_run;
use crate::ids::{JobId, OrgId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    pub org_id: Option<OrgId>,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Writes a job in the caller's transaction.
pub async fn enqueue(
    tx: &mut Tx,
    kind: &str,
    payload: &serde_json::Value,
    org: Option<OrgId>,
    run_at: OffsetDateTime,
    max_attempts: i64,
) -> DbResult<JobId> {
    let id = JobId::new();
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, org_id, run_at, attempts, max_attempts, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .bind(id).bind(kind).bind(payload.to_string()).bind(org).bind(run_at).bind(max_attempts).bind(crate::clock::now())
        .execute(c).await?;
    });
    Ok(id)
}

/// Claims up to `limit` due jobs for `lease`; a job whose worker died becomes due again when the lease ends.
pub async fn claim(db: &Db, limit: i64, lease: Duration) -> DbResult<Vec<Job>> {
    let now = crate::clock::now();
    let until = now + lease;
    let pick = "SELECT id FROM jobs WHERE done_at IS NULL AND failed_at IS NULL AND run_at <= $2
                AND (locked_until IS NULL OR locked_until < $2) ORDER BY run_at LIMIT $3";
    let jobs = match db {
        Db::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            let sql = format!(
                "UPDATE jobs SET locked_until = $1, attempts = attempts + 1 WHERE id IN ({pick})
                 RETURNING id, kind, payload, org_id, attempts, max_attempts"
            );
            let jobs = sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql)).bind(until).bind(now).bind(limit).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            jobs
        }
        Db::Postgres(p) => {
            let sql = format!(
                "UPDATE jobs SET locked_until = $1, attempts = attempts + 1 WHERE id IN ({pick} FOR UPDATE SKIP LOCKED)
                 RETURNING id, kind, payload, org_id, attempts, max_attempts"
            );
            sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql)).bind(until).bind(now).bind(limit).fetch_all(p).await?
        }
    };
    Ok(jobs)
}

pub async fn complete(db: &Db, id: JobId) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE jobs SET done_at = $1, locked_until = NULL, last_error = NULL WHERE id = $2")
        .bind(crate::clock::now()).bind(id).execute(p).await?; });
    Ok(())
}

/// Records a failed attempt: due again at `retry_at`, or given up for good when `retry_at` is `None`.
pub async fn fail(db: &Db, id: JobId, error: &str, retry_at: Option<OffsetDateTime>) -> DbResult<()> {
    let now = crate::clock::now();
    db_run!(db, |p| { match retry_at {
        Some(at) => sqlx::query("UPDATE jobs SET run_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3")
            .bind(at).bind(error).bind(id).execute(p).await?,
        None => sqlx::query("UPDATE jobs SET failed_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3")
            .bind(now).bind(error).bind(id).execute(p).await?,
    }; });
    Ok(())
}

/// Jobs not yet done nor given up, by kind: the outbox depth that `/metrics` exports.
pub async fn depth(db: &Db) -> DbResult<Vec<(String, i64)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT kind, COUNT(*) FROM jobs WHERE done_at IS NULL AND failed_at IS NULL GROUP BY kind ORDER BY kind"
    )
    .fetch_all(p)
    .await?))
}

/// `[jobs]` in the configuration.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Days a done job is kept before the worker deletes it; 0 keeps them for ever.
    pub keep_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { keep_days: 30 }
    }
}

impl Settings {
    /// What [`Worker::keep_done`] takes.
    pub fn keep_done(&self) -> Option<Duration> {
        (self.keep_days > 0).then(|| Duration::from_secs(u64::from(self.keep_days) * 86_400))
    }
}

/// Rows one statement of [`sweep_done`] deletes at most: short statements, so that claims are never held up long.
const SWEEP_BATCH: i64 = 1000;

/// Deletes the jobs done before `before` (in batches); how many. Jobs given up (`failed_at`) stay: they are the trace
/// of work that never happened (a mail never sent), few, and what an administrator looks into.
pub async fn sweep_done(db: &Db, before: OffsetDateTime) -> DbResult<u64> {
    let before = crate::clock::stamp(before);
    let mut total = 0;
    loop {
        let n = db_run!(db, |p| sqlx::query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE done_at IS NOT NULL AND done_at < $1 LIMIT $2)"
        )
        .bind(before)
        .bind(SWEEP_BATCH)
        .execute(p)
        .await?
        .rows_affected());
        total += n;
        if n < SWEEP_BATCH as u64 {
            return Ok(total);
        }
    }
}

const BATCH: i64 = 8;
const LEASE: Duration = Duration::from_secs(300);

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Handler = Arc<dyn Fn(Job) -> HandlerFuture + Send + Sync>;

/// Runs due jobs with the handler registered for their kind.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    handlers: HashMap<String, Handler>,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub poll: Duration,
    /// How long done jobs are kept ([`sweep_done`]); `None` keeps them for ever.
    pub keep_done: Option<Duration>,
    /// How often the worker sweeps done jobs at most (the first sweep comes with its first round).
    pub sweep_every: Duration,
    last_sweep: Option<std::time::Instant>,
}

impl Worker {
    pub fn new(db: Db) -> Self {
        Worker {
            db,
            handlers: HashMap::new(),
            base_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            poll: Duration::from_secs(1),
            keep_done: Some(Duration::from_secs(30 * 86_400)),
            sweep_every: Duration::from_secs(3600),
            last_sweep: None,
        }
    }

    /// Sweeps the done jobs older than `keep_done` unless the last sweep was less than `sweep_every` ago; how many
    /// went, or `None` when it was not time (or nothing is to be swept). With several nodes each sweeps on its own
    /// pace: a delete of what another node deleted already deletes nothing.
    pub async fn sweep_if_due(&mut self) -> DbResult<Option<u64>> {
        let Some(keep) = self.keep_done else { return Ok(None) };
        if self.last_sweep.is_some_and(|at| at.elapsed() < self.sweep_every) {
            return Ok(None);
        }
        self.last_sweep = Some(std::time::Instant::now());
        let keep = time::Duration::try_from(keep).unwrap_or(time::Duration::MAX);
        let before = crate::clock::now().checked_sub(keep).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let n = sweep_done(&self.db, before).await?;
        if n > 0 {
            tracing::info!(deleted = n, "done jobs swept");
        }
        Ok(Some(n))
    }

    pub fn handle(&mut self, kind: &str, h: Handler) {
        self.handlers.insert(kind.to_owned(), h);
    }

    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 20) as u32 - 1;
        self.base_backoff.saturating_mul(2u32.saturating_pow(exp)).min(self.max_backoff)
    }

    /// Claims and runs one batch; returns how many jobs it ran.
    pub async fn run_once(&self) -> DbResult<usize> {
        // The batch runs one job after another, so it must finish well inside the lease (a mail may take up to its
        // 20 s SMTP timeout): otherwise another node would claim the batch's tail again and send it twice.
        let jobs = claim(&self.db, BATCH, LEASE).await?;
        let n = jobs.len();
        for job in jobs {
            let id = job.id;
            let attempts = job.attempts;
            let max = job.max_attempts;
            let kind = job.kind.clone();
            let result = match self.handlers.get(&job.kind) {
                Some(h) => h(job).await,
                None => Err(format!("no handler for job kind {kind}")),
            };
            match result {
                Ok(()) => complete(&self.db, id).await?,
                Err(e) => {
                    let retry = (attempts < max).then(|| crate::clock::now() + self.backoff(attempts));
                    tracing::warn!(job = %id, kind, attempts, error = %e, gave_up = retry.is_none(), "job failed");
                    fail(&self.db, id, &e, retry).await?;
                }
            }
        }
        Ok(n)
    }

    /// Loops until `stop` fires; a database error is logged and retried after the poll interval.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.sweep_if_due().await {
                tracing::warn!(error = %e, "sweeping done jobs failed");
            }
            let ran = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "job worker could not claim jobs");
                    0
                }
            };
            if ran == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stop.changed() => {}
                }
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}
