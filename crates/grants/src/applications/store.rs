//! The applications' queries, and the call row as the click day's point of order: locked (`FOR UPDATE` on
//! PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the whole database) for every change of its protocol counter and
//! committed money.

use agilekit_kernel::db::{Db, DbResult, Tx, TxInner};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use super::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: ApplicationId,
    pub call_id: CallId,
    pub org_id: OrgId,
    pub company_id: CompanyId,
    pub state: String,
    pub content: String,
    pub requested_cents: i64,
    pub protocol: Option<i64>,
    pub submitted_at: Option<OffsetDateTime>,
    pub sha256: Option<String>,
    pub idempotency_key: Option<String>,
    pub place: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub call_title: String,
    pub company_name: String,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.call_id, a.org_id, a.company_id, a.state, a.content, a.requested_cents, a.protocol, a.submitted_at,
                    a.sha256, a.idempotency_key, a.place, a.created_at, a.updated_at, c.title AS call_title, k.name AS company_name
             FROM grant_applications a JOIN grant_calls c ON c.id = a.call_id JOIN companies k ON k.id = a.company_id ",
            $rest
        )
    };
}

/// The call's row as the sequencer and allocation read it, locked.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CallLock {
    pub id: CallId,
    pub org_id: OrgId,
    pub mode: String,
    pub budget_cents: i64,
    pub committed_cents: i64,
    pub next_protocol: i64,
    pub last_submitted_at: Option<OffsetDateTime>,
    pub opens_at: OffsetDateTime,
    pub closes_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
    pub de_minimis: bool,
    pub rules: String,
    pub title: String,
}

pub async fn lock_call(tx: &mut Tx, call: CallId) -> DbResult<Option<CallLock>> {
    macro_rules! cols {
        ($rest:literal) => {
            concat!("SELECT id, org_id, mode, budget_cents, committed_cents, next_protocol, last_submitted_at, opens_at, closes_at,
                            published_at, de_minimis, rules, title FROM grant_calls WHERE id = $1", $rest)
        };
    }
    Ok(match &mut tx.inner {
        TxInner::Sqlite(t) => sqlx::query_as(cols!("")).bind(call).fetch_optional(&mut **t).await?,
        TxInner::Postgres(t) => sqlx::query_as(cols!(" FOR UPDATE")).bind(call).fetch_optional(&mut **t).await?,
    })
}

pub async fn save_call_counters(tx: &mut Tx, c: &CallLock) -> DbResult<()> {
    db_run!(tx tx, |k| sqlx::query("UPDATE grant_calls SET next_protocol = $2, committed_cents = $3, last_submitted_at = $4 WHERE id = $1")
        .bind(c.id).bind(c.next_protocol).bind(c.committed_cents).bind(c.last_submitted_at).execute(k).await?.rows_affected());
    Ok(())
}

pub async fn insert_draft(tx: &mut Tx, id: ApplicationId, call: CallId, org: OrgId, company: CompanyId, content: &str, requested: i64, by: AccountId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_applications (id, call_id, org_id, company_id, state, content, requested_cents, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $8)"
    ).bind(id).bind(call).bind(org).bind(company).bind(content).bind(requested).bind(by).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// An application of `company`.
pub async fn get_of(db: &Db, company: CompanyId, id: ApplicationId) -> DbResult<Option<ApplicationRow>> {
    let sql = select!("WHERE a.id = $1 AND a.company_id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(company).fetch_optional(p).await?))
}

pub async fn get_of_tx(tx: &mut Tx, company: CompanyId, id: ApplicationId) -> DbResult<Option<ApplicationRow>> {
    let sql = select!("WHERE a.id = $1 AND a.company_id = $2");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sql).bind(id).bind(company).fetch_optional(c).await?))
}

pub async fn list_of(db: &Db, company: CompanyId) -> DbResult<Vec<ApplicationRow>> {
    let sql = select!("WHERE a.company_id = $1 ORDER BY a.created_at DESC, a.id DESC");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(company).fetch_all(p).await?))
}

/// The submitted applications of a call, in protocol order.
pub async fn list_submitted(db: &Db, call: CallId) -> DbResult<Vec<ApplicationRow>> {
    let sql = select!("WHERE a.call_id = $1 AND a.protocol IS NOT NULL ORDER BY a.protocol");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(call).fetch_all(p).await?))
}

pub async fn save_draft(tx: &mut Tx, id: ApplicationId, content: &str, requested: i64, now: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "UPDATE grant_applications SET content = $2, requested_cents = $3, updated_at = $4 WHERE id = $1 AND state = 'draft'"
    ).bind(id).bind(content).bind(requested).bind(now).execute(c).await?.rows_affected());
    Ok(n == 1)
}

pub struct Submission<'a> {
    pub protocol: i64,
    pub at: OffsetDateTime,
    pub content: &'a str,
    pub requested: i64,
    pub sha256: &'a str,
    pub key: &'a str,
    pub place: Option<&'static str>,
}

pub async fn mark_submitted(tx: &mut Tx, id: ApplicationId, s: &Submission<'_>) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "UPDATE grant_applications SET state = 'submitted', protocol = $2, submitted_at = $3, content = $4, requested_cents = $5,
                sha256 = $6, idempotency_key = $7, place = $8, updated_at = $3 WHERE id = $1 AND state = 'draft'"
    ).bind(id).bind(s.protocol).bind(s.at).bind(s.content).bind(s.requested).bind(s.sha256).bind(s.key).bind(s.place)
    .execute(c).await?.rows_affected());
    Ok(())
}

pub async fn any_waiting(tx: &mut Tx, call: CallId) -> DbResult<bool> {
    let n: i64 = db_run!(tx tx, |c| sqlx::query_scalar("SELECT COUNT(*) FROM grant_applications WHERE call_id = $1 AND place = 'waiting' AND state = 'submitted'")
        .bind(call).fetch_one(c).await?);
    Ok(n > 0)
}

/// The overbooking list in its order, (application, amount): protocol order a sportello, ranking order for a
/// graduatoria once its ranking is published (its waiting applications all have a position; a sportello's none).
pub async fn waiting(tx: &mut Tx, call: CallId) -> DbResult<Vec<(ApplicationId, i64)>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(
        "SELECT id, requested_cents FROM grant_applications WHERE call_id = $1 AND place = 'waiting' AND state = 'submitted'
         ORDER BY (SELECT e.position FROM grant_ranking_entries e WHERE e.application_id = grant_applications.id), protocol"
    ).bind(call).fetch_all(c).await?))
}

pub async fn set_place(tx: &mut Tx, id: ApplicationId, place: Option<&str>, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("UPDATE grant_applications SET place = $2, updated_at = $3 WHERE id = $1")
        .bind(id).bind(place).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

pub async fn withdraw(tx: &mut Tx, id: ApplicationId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("UPDATE grant_applications SET state = 'withdrawn', place = NULL, updated_at = $2 WHERE id = $1")
        .bind(id).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// The applications of a batch, by id (one statement for the batch).
pub async fn get_many_tx(tx: &mut Tx, ids: &[ApplicationId]) -> DbResult<Vec<ApplicationRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db_run!(tx tx, |c| {
        let mut qb = sqlx::QueryBuilder::new(select!("WHERE a.id IN ("));
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as::<ApplicationRow>().fetch_all(c).await?
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// Required attachments (migration 0017): one kernel file per code and application.

/// A required attachment of an application, with its file's metadata.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttachmentRow {
    pub code: String,
    pub file_id: agilekit_kernel::files::FileId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

macro_rules! attachments_sql {
    () => {
        "SELECT g.code, f.id AS file_id, f.name, f.content_type, f.size, f.sha256
         FROM grant_application_files g JOIN files f ON f.id = g.file_id WHERE g.application_id = $1 ORDER BY g.code"
    };
}

pub async fn attachments(db: &Db, app: ApplicationId) -> DbResult<Vec<AttachmentRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(attachments_sql!()).bind(app).fetch_all(p).await?))
}

pub async fn attachments_tx(tx: &mut Tx, app: ApplicationId) -> DbResult<Vec<AttachmentRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(attachments_sql!()).bind(app).fetch_all(c).await?))
}

/// Takes the draft's row for the transaction (its lock on PostgreSQL; SQLite's writer holds the database): a save
/// and an upload of the same draft then follow one another. False when it is no longer a draft.
pub async fn hold_draft(tx: &mut Tx, id: ApplicationId, now: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query("UPDATE grant_applications SET updated_at = $2 WHERE id = $1 AND state = 'draft'")
        .bind(id).bind(now).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// The stored content of an application, in the transaction.
pub async fn content_tx(tx: &mut Tx, id: ApplicationId) -> DbResult<Option<String>> {
    Ok(db_run!(tx tx, |c| sqlx::query_scalar("SELECT content FROM grant_applications WHERE id = $1").bind(id).fetch_optional(c).await?))
}

pub async fn set_content(tx: &mut Tx, id: ApplicationId, content: &str, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("UPDATE grant_applications SET content = $2, updated_at = $3 WHERE id = $1 AND state = 'draft'")
        .bind(id).bind(content).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// Removes the link of `code`, returning the file it pointed to.
pub async fn unlink_attachment(tx: &mut Tx, app: ApplicationId, code: &str) -> DbResult<Option<agilekit_kernel::files::FileId>> {
    let old: Option<agilekit_kernel::files::FileId> = db_run!(tx tx, |c| sqlx::query_scalar(
        "SELECT file_id FROM grant_application_files WHERE application_id = $1 AND code = $2"
    ).bind(app).bind(code).fetch_optional(c).await?);
    if old.is_some() {
        db_run!(tx tx, |c| sqlx::query("DELETE FROM grant_application_files WHERE application_id = $1 AND code = $2")
            .bind(app).bind(code).execute(c).await?.rows_affected());
    }
    Ok(old)
}

pub async fn link_attachment(tx: &mut Tx, app: ApplicationId, code: &str, file: agilekit_kernel::files::FileId, org: OrgId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_application_files (application_id, code, file_id, org_id, created_at) VALUES ($1, $2, $3, $4, $5)"
    ).bind(app).bind(code).bind(file).bind(org).bind(now).execute(c).await?.rows_affected());
    Ok(())
}

/// Deletes a file no longer linked (a replaced or removed attachment of a draft: nothing else refers to it).
pub async fn delete_file(tx: &mut Tx, org: OrgId, file: agilekit_kernel::files::FileId) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("DELETE FROM files WHERE org_id = $1 AND id = $2").bind(org).bind(file).execute(c).await?.rows_affected());
    Ok(())
}

/// The file of `code` of an application, if one is linked.
pub async fn attachment_file(db: &Db, app: ApplicationId, code: &str) -> DbResult<Option<agilekit_kernel::files::FileId>> {
    Ok(db_run!(db, |p| sqlx::query_scalar("SELECT file_id FROM grant_application_files WHERE application_id = $1 AND code = $2")
        .bind(app).bind(code).fetch_optional(p).await?))
}

/// Applications by id, whatever their company (callers check who may see them).
pub async fn get_many(db: &Db, ids: &[ApplicationId]) -> DbResult<Vec<ApplicationRow>> {
    let mut out = Vec::new();
    for id in ids {
        let sql = select!("WHERE a.id = $1");
        let r: Option<ApplicationRow> = db_run!(db, |p| sqlx::query_as(sql).bind(*id).fetch_optional(p).await?);
        out.extend(r);
    }
    Ok(out)
}
