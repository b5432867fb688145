//! The audit log: every state change, append-only, each entry hashed with the one before it so that an
//! edit or a deletion anywhere breaks the chain from that point on; `verify` names the first broken link.

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::db::{Db, DbResult, Tx, TxInner};
use crate::db_run;
use crate::ids::{AccountId, OrgId};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a change and from where.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub account: Option<AccountId>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Actor::default()
    }
    pub fn account(account: AccountId, ip: Option<String>) -> Self {
        Actor { account: Some(account), ip }
    }
}

/// One change to record.
pub struct Change<'a> {
    pub org: Option<OrgId>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub seq: i64,
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub actor_id: Option<AccountId>,
    pub org_id: Option<OrgId>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub ip: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The hash of an entry: SHA-256 over its previous hash and every field, separated by a unit separator.
pub fn entry_hash(e: &Entry) -> String {
    let at = e.at.format(&Rfc3339).unwrap_or_default();
    let fields = [
        e.prev_hash.clone(),
        e.seq.to_string(),
        e.id.to_string(),
        at,
        opt(&e.actor_id),
        opt(&e.org_id),
        e.action.clone(),
        e.entity.clone(),
        e.entity_id.clone(),
        opt(&e.before_json),
        opt(&e.after_json),
        opt(&e.ip),
    ];
    let mut h = Sha256::new();
    for f in fields {
        h.update(f.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// Appends a change inside the caller's transaction, so the record exists if and only if the change does.
/// The single-row head serialises appenders (row lock on PostgreSQL, the write lock on SQLite).
pub async fn record(tx: &mut Tx, actor: &Actor, change: Change<'_>) -> DbResult<i64> {
    let (seq, prev) = lock_head(tx).await?;
    let e = entry(seq, prev, actor, change);
    insert(tx, &e).await?;
    db_run!(tx tx, |c| sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1").bind(e.seq).bind(&e.hash).execute(c).await?.rows_affected());
    Ok(e.seq)
}

/// Appends several changes in order, reading and moving the head once (a click day's batch of submissions): the
/// same chain as as many [`record`] calls, with two statements fewer a change.
pub async fn record_all(tx: &mut Tx, changes: Vec<(&Actor, Change<'_>)>) -> DbResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev) = lock_head(tx).await?;
    for (actor, change) in changes {
        let e = entry(seq, prev, actor, change);
        insert(tx, &e).await?;
        seq = e.seq;
        prev = e.hash;
    }
    db_run!(tx tx, |c| sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1").bind(seq).bind(&prev).execute(c).await?.rows_affected());
    Ok(())
}

async fn lock_head(tx: &mut Tx) -> DbResult<(i64, String)> {
    Ok(match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut **t).await?,
        TxInner::Postgres(t) => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").fetch_one(&mut **t).await?,
    })
}

/// The entry after `seq` / `prev`, hashed.
fn entry(seq: i64, prev: String, actor: &Actor, change: Change<'_>) -> Entry {
    let mut e = Entry {
        seq: seq + 1,
        id: uuid::Uuid::now_v7(),
        at: crate::clock::now(),
        actor_id: actor.account,
        org_id: change.org,
        action: change.action.to_owned(),
        entity: change.entity.to_owned(),
        entity_id: change.entity_id,
        before_json: change.before.map(|v| v.to_string()),
        after_json: change.after.map(|v| v.to_string()),
        ip: actor.ip.clone(),
        prev_hash: prev,
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    e
}

async fn insert(tx: &mut Tx, e: &Entry) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO audit_log (seq, id, at, actor_id, org_id, action, entity, entity_id, before_json, after_json, ip, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(e.seq).bind(e.id).bind(e.at).bind(e.actor_id).bind(e.org_id).bind(&e.action).bind(&e.entity)
        .bind(&e.entity_id).bind(&e.before_json).bind(&e.after_json).bind(&e.ip).bind(&e.prev_hash).bind(&e.hash)
        .execute(c).await?;
    });
    Ok(())
}

/// Filters for browsing the log. `org` is the scope: `None` only for the operator's platform admins.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub org: Option<OrgId>,
    pub actor: Option<AccountId>,
    pub action_prefix: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Keyset pagination: entries with `seq` below this one (newest first).
    pub before_seq: Option<i64>,
}

/// An entry with the names a reader needs beside it: who acted (when an account did) and in which organisation.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NamedEntry {
    #[sqlx(flatten)]
    pub entry: Entry,
    pub actor_email: Option<String>,
    pub actor_name: Option<String>,
    pub org_name: Option<String>,
}

/// `LIKE` pattern for "starts with": the prefix's own `\`, `%` and `_` match only themselves.
fn prefix_pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

// Parameters appear first in numeric order: SQLite numbers `$n` by first appearance.
const WHERE: &str = "($1 IS NULL OR a.org_id = $1) AND ($2 IS NULL OR a.actor_id = $2)
     AND ($3 IS NULL OR a.action LIKE $3 ESCAPE '\\') AND ($4 IS NULL OR a.entity = $4) AND ($5 IS NULL OR a.entity_id = $5)
     AND ($6 IS NULL OR a.at >= $6) AND ($7 IS NULL OR a.at < $7) AND ($8 IS NULL OR a.seq < $8)
     ORDER BY a.seq DESC LIMIT $9";

async fn select<T>(db: &Db, select: &str, f: &Filter, limit: i64) -> DbResult<Vec<T>>
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let like = f.action_prefix.as_deref().map(prefix_pattern);
    let sql = format!("{select} WHERE {WHERE}");
    let rows = match db {
        Db::Sqlite(p) => {
            sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql))
                .bind(f.org).bind(f.actor).bind(&like).bind(&f.entity).bind(&f.entity_id)
                .bind(f.since).bind(f.until).bind(f.before_seq).bind(limit)
                .fetch_all(p).await?
        }
        // PostgreSQL cannot infer the type of a parameter that appears only in `$n IS NULL`: cast them.
        Db::Postgres(p) => {
            let sql = sql
                .replace("$1 IS NULL", "$1::uuid IS NULL").replace("$2 IS NULL", "$2::uuid IS NULL")
                .replace("$3 IS NULL", "$3::text IS NULL").replace("$4 IS NULL", "$4::text IS NULL")
                .replace("$5 IS NULL", "$5::text IS NULL").replace("$6 IS NULL", "$6::timestamptz IS NULL")
                .replace("$7 IS NULL", "$7::timestamptz IS NULL").replace("$8 IS NULL", "$8::bigint IS NULL");
            sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql))
                .bind(f.org).bind(f.actor).bind(&like).bind(&f.entity).bind(&f.entity_id)
                .bind(f.since).bind(f.until).bind(f.before_seq).bind(limit)
                .fetch_all(p).await?
        }
    };
    Ok(rows)
}

/// Newest first, at most `limit` entries.
pub async fn list(db: &Db, f: &Filter, limit: i64) -> DbResult<Vec<Entry>> {
    select(db, "SELECT a.* FROM audit_log a", f, limit).await
}

/// As [`list`], with the actor's email and name and the organisation's name (absent when the actor was the
/// system, or the account or organisation is gone: the log outlives what it describes).
pub async fn list_named(db: &Db, f: &Filter, limit: i64) -> DbResult<Vec<NamedEntry>> {
    select(
        db,
        "SELECT a.*, acc.email AS actor_email, acc.display_name AS actor_name, o.name AS org_name FROM audit_log a
         LEFT JOIN accounts acc ON acc.id = a.actor_id LEFT JOIN organisations o ON o.id = a.org_id",
        f,
        limit,
    )
    .await
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact { entries: i64 },
    /// The first entry whose stored hash or link does not match.
    Broken { seq: i64, reason: &'static str },
}

/// Walks the whole chain in order, in batches, and stops at the first broken link.
pub async fn verify(db: &Db) -> DbResult<Verdict> {
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    loop {
        let batch: Vec<Entry> = db_run!(db, |p| {
            sqlx::query_as("SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 1000")
                .bind(expected_seq)
                .fetch_all(p)
                .await?
        });
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if e.seq != expected_seq {
                return Ok(Verdict::Broken { seq: expected_seq, reason: "missing entry" });
            }
            if e.prev_hash != prev {
                return Ok(Verdict::Broken { seq: e.seq, reason: "link to the previous entry does not match" });
            }
            if entry_hash(e) != e.hash {
                return Ok(Verdict::Broken { seq: e.seq, reason: "content does not match its hash" });
            }
            prev = e.hash.clone();
            expected_seq += 1;
        }
    }
    let (head_seq, head_hash): (i64, String) =
        db_run!(db, |p| sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(p).await?);
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Ok(Verdict::Broken { seq: expected_seq, reason: "entries after this point were removed" });
    }
    Ok(Verdict::Intact { entries: expected_seq - 1 })
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn an_action_prefix_matches_its_wildcards_literally() {
        assert_eq!(prefix_pattern("org."), "org.%");
        assert_eq!(prefix_pattern("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
