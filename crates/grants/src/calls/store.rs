//! The calls' queries. Staff reads take the organisation; public reads take only published calls.

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use super::model::{CallId, DocumentId, FaqId, Valid};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CallRow {
    pub id: CallId,
    pub org_id: OrgId,
    pub org_name: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub mode: String,
    pub budget_cents: i64,
    pub committed_cents: i64,
    pub rules: String,
    pub de_minimis: bool,
    pub opens_at: OffsetDateTime,
    pub closes_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
    pub next_protocol: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT c.id, c.org_id, o.name AS org_name, c.title, c.summary, c.body, c.mode, c.budget_cents, c.committed_cents,
                    c.rules, c.de_minimis, c.opens_at, c.closes_at, c.published_at, c.next_protocol, c.created_at, c.updated_at
             FROM grant_calls c JOIN organisations o ON o.id = c.org_id ",
            $rest
        )
    };
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FaqRow {
    pub id: FaqId,
    pub question: String,
    pub answer: String,
    pub updated_at: OffsetDateTime,
}

/// The rules document of a call, as stored.
pub fn rules_json(v: &Valid) -> String {
    serde_json::to_string(&super::model::Rules::of(v)).unwrap_or_else(|_| "{}".into())
}

pub async fn insert(tx: &mut Tx, id: CallId, org: OrgId, v: &Valid, by: AccountId, now: OffsetDateTime) -> DbResult<()> {
    let rules = rules_json(v);
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_calls (id, org_id, title, summary, body, mode, budget_cents, rules, de_minimis, opens_at, closes_at,
                                  created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
    ).bind(id).bind(org).bind(&v.title).bind(&v.summary).bind(&v.body).bind(v.mode.as_str()).bind(v.budget.0).bind(&rules)
    .bind(v.de_minimis).bind(v.opens_at).bind(v.closes_at).bind(by).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// Everything of a call but its money and protocol counter (the budget changes through its own action).
pub async fn update(tx: &mut Tx, id: CallId, v: &Valid, now: OffsetDateTime) -> DbResult<()> {
    let rules = rules_json(v);
    db_run!(tx tx, |c| sqlx::query(
        "UPDATE grant_calls SET title = $2, summary = $3, body = $4, mode = $5, budget_cents = $6, rules = $7, de_minimis = $8,
                opens_at = $9, closes_at = $10, updated_at = $11 WHERE id = $1"
    ).bind(id).bind(&v.title).bind(&v.summary).bind(&v.body).bind(v.mode.as_str()).bind(v.budget.0).bind(&rules)
    .bind(v.de_minimis).bind(v.opens_at).bind(v.closes_at).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

pub async fn publish(tx: &mut Tx, id: CallId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("UPDATE grant_calls SET published_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// A call of `org` (staff), locked for the rest of the transaction on PostgreSQL.
pub async fn get_in_tx(tx: &mut Tx, org: OrgId, id: CallId) -> DbResult<Option<CallRow>> {
    let sqlite = select!("WHERE c.id = $1 AND c.org_id = $2");
    let pg = select!("WHERE c.id = $1 AND c.org_id = $2 FOR UPDATE OF c");
    Ok(match &mut tx.inner {
        agilekit_kernel::db::TxInner::Sqlite(t) => sqlx::query_as(sqlite).bind(id).bind(org).fetch_optional(&mut **t).await?,
        agilekit_kernel::db::TxInner::Postgres(t) => sqlx::query_as(pg).bind(id).bind(org).fetch_optional(&mut **t).await?,
    })
}

pub async fn get_in(db: &Db, org: OrgId, id: CallId) -> DbResult<Option<CallRow>> {
    let sql = select!("WHERE c.id = $1 AND c.org_id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(org).fetch_optional(p).await?))
}

pub async fn list_in(db: &Db, org: OrgId) -> DbResult<Vec<CallRow>> {
    let sql = select!("WHERE c.org_id = $1 ORDER BY c.opens_at DESC, c.id DESC");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(org).fetch_all(p).await?))
}

/// A published call, for anyone.
pub async fn get_published(db: &Db, id: CallId) -> DbResult<Option<CallRow>> {
    let sql = select!("WHERE c.id = $1 AND c.published_at IS NOT NULL");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).fetch_optional(p).await?))
}

/// The published calls, latest opening first.
pub async fn list_published(db: &Db, limit: i64) -> DbResult<Vec<CallRow>> {
    let sql = select!("WHERE c.published_at IS NOT NULL ORDER BY c.opens_at DESC, c.id DESC LIMIT $1");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(limit).fetch_all(p).await?))
}

pub async fn faqs(db: &Db, call: CallId) -> DbResult<Vec<FaqRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT id, question, answer, updated_at FROM grant_call_faqs WHERE call_id = $1 ORDER BY created_at, id"
    ).bind(call).fetch_all(p).await?))
}

pub async fn insert_faq(tx: &mut Tx, id: FaqId, call: CallId, org: OrgId, q: &str, a: &str, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_call_faqs (id, call_id, org_id, question, answer, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
    ).bind(id).bind(call).bind(org).bind(q).bind(a).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// Changes a FAQ of `call`; false when it has no such FAQ.
pub async fn update_faq(tx: &mut Tx, id: FaqId, call: CallId, q: &str, a: &str, now: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query("UPDATE grant_call_faqs SET question = $3, answer = $4, updated_at = $5 WHERE id = $1 AND call_id = $2")
        .bind(id).bind(call).bind(q).bind(a).bind(now).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn delete_faq(tx: &mut Tx, id: FaqId, call: CallId) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query("DELETE FROM grant_call_faqs WHERE id = $1 AND call_id = $2")
        .bind(id).bind(call).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Writes a call's budget (the budget change runs under the call's row lock, see `calls::budget`).
pub async fn set_budget(tx: &mut Tx, id: CallId, budget_cents: i64, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("UPDATE grant_calls SET budget_cents = $2, updated_at = $3 WHERE id = $1")
        .bind(id).bind(budget_cents).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// A call's document with its file's metadata.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: DocumentId,
    pub title: String,
    pub file_id: agilekit_kernel::files::FileId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: OffsetDateTime,
}

/// A call's documents, in order of upload.
pub async fn documents(db: &Db, call: CallId) -> DbResult<Vec<DocumentRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT d.id, d.title, d.file_id, f.name, f.content_type, f.size, d.created_at
         FROM grant_call_documents d JOIN files f ON f.id = d.file_id WHERE d.call_id = $1 ORDER BY d.created_at, d.id"
    ).bind(call).fetch_all(p).await?))
}

/// One document of `call`.
pub async fn document(db: &Db, call: CallId, id: DocumentId) -> DbResult<Option<DocumentRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT d.id, d.title, d.file_id, f.name, f.content_type, f.size, d.created_at
         FROM grant_call_documents d JOIN files f ON f.id = d.file_id WHERE d.call_id = $1 AND d.id = $2"
    ).bind(call).bind(id).fetch_optional(p).await?))
}

pub async fn insert_document(tx: &mut Tx, id: DocumentId, call: CallId, org: OrgId, title: &str, file: agilekit_kernel::files::FileId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_call_documents (id, call_id, org_id, title, file_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    ).bind(id).bind(call).bind(org).bind(title).bind(file).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// Removes a document of `call` and its file; the removed document's title and file, if there was one.
pub async fn delete_document(tx: &mut Tx, org: OrgId, call: CallId, id: DocumentId) -> DbResult<Option<(String, agilekit_kernel::files::FileId)>> {
    let row: Option<(String, agilekit_kernel::files::FileId)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT title, file_id FROM grant_call_documents WHERE id = $1 AND call_id = $2 AND org_id = $3"
    ).bind(id).bind(call).bind(org).fetch_optional(c).await?);
    if let Some((_, file)) = &row {
        db_run!(tx tx, |c| sqlx::query("DELETE FROM grant_call_documents WHERE id = $1").bind(id).execute(c).await?.rows_affected());
        db_run!(tx tx, |c| sqlx::query("DELETE FROM files WHERE org_id = $1 AND id = $2").bind(org).bind(*file).execute(c).await?.rows_affected());
    }
    Ok(row)
}
