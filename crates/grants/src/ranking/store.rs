//! The graduatoria's queries: declarations, scores, the published ranking. Applications and the call's money are
//! written only through `applications::store` (places, counters under `lock_call`).

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

/// A submitted application of the call as the evaluation lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppLine {
    pub id: ApplicationId,
    pub company_id: CompanyId,
    pub company_name: String,
    pub pec: String,
    pub protocol: i64,
    pub submitted_at: Option<OffsetDateTime>,
    pub requested_cents: i64,
    pub state: String,
    pub place: Option<String>,
    pub content: String,
}

macro_rules! lines {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.company_id, k.name AS company_name, k.pec, a.protocol, a.submitted_at, a.requested_cents, a.state, a.place, a.content
             FROM grant_applications a JOIN companies k ON k.id = a.company_id
             WHERE a.call_id = $1 AND a.protocol IS NOT NULL AND a.state = 'submitted' ",
            $rest
        )
    };
}

/// The call's live submissions (not withdrawn), in protocol order.
pub async fn submissions(db: &Db, call: CallId) -> DbResult<Vec<AppLine>> {
    Ok(db_run!(db, |p| sqlx::query_as(lines!("ORDER BY a.protocol")).bind(call).fetch_all(p).await?))
}

pub async fn submissions_tx(tx: &mut Tx, call: CallId) -> DbResult<Vec<AppLine>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(lines!("ORDER BY a.protocol")).bind(call).fetch_all(c).await?))
}

pub async fn submission_tx(tx: &mut Tx, call: CallId, id: ApplicationId) -> DbResult<Option<AppLine>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(lines!("AND a.id = $2")).bind(call).bind(id).fetch_optional(c).await?))
}

pub async fn submission(db: &Db, call: CallId, id: ApplicationId) -> DbResult<Option<AppLine>> {
    Ok(db_run!(db, |p| sqlx::query_as(lines!("AND a.id = $2")).bind(call).bind(id).fetch_optional(p).await?))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeclarationRow {
    pub application_id: ApplicationId,
    pub evaluator_id: AccountId,
    pub conflict: bool,
    pub reason: Option<String>,
    pub declared_at: OffsetDateTime,
}

/// The evaluator's declarations in the call.
pub async fn declarations_of(db: &Db, call: CallId, evaluator: AccountId) -> DbResult<Vec<DeclarationRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT application_id, evaluator_id, conflict, reason, declared_at FROM grant_evaluation_declarations WHERE call_id = $1 AND evaluator_id = $2"
    ).bind(call).bind(evaluator).fetch_all(p).await?))
}

pub async fn declaration_tx(tx: &mut Tx, app: ApplicationId, evaluator: AccountId) -> DbResult<Option<DeclarationRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(
        "SELECT application_id, evaluator_id, conflict, reason, declared_at FROM grant_evaluation_declarations WHERE application_id = $1 AND evaluator_id = $2"
    ).bind(app).bind(evaluator).fetch_optional(c).await?))
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_declaration(tx: &mut Tx, app: ApplicationId, evaluator: AccountId, call: CallId, org: OrgId, conflict: bool, reason: Option<&str>, at: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_evaluation_declarations (application_id, evaluator_id, call_id, org_id, conflict, reason, declared_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ).bind(app).bind(evaluator).bind(call).bind(org).bind(conflict).bind(reason).bind(at).execute(c).await?.rows_affected());
    Ok(())
}

/// Turns a "no conflict" into a conflict (never the other way: the WHERE keeps it so).
pub async fn to_conflict(tx: &mut Tx, app: ApplicationId, evaluator: AccountId, reason: &str, at: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "UPDATE grant_evaluation_declarations SET conflict = $3, reason = $4, declared_at = $5 WHERE application_id = $1 AND evaluator_id = $2 AND conflict = $6"
    ).bind(app).bind(evaluator).bind(true).bind(reason).bind(at).bind(false).execute(c).await?.rows_affected());
    Ok(n == 1)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScoreRow {
    pub application_id: ApplicationId,
    pub evaluator_id: AccountId,
    pub criterion: String,
    pub points: i64,
    pub note: String,
}

/// Every score of the call.
pub async fn scores(db: &Db, call: CallId) -> DbResult<Vec<ScoreRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT application_id, evaluator_id, criterion, points, note FROM grant_evaluation_scores WHERE call_id = $1"
    ).bind(call).fetch_all(p).await?))
}

pub async fn scores_tx(tx: &mut Tx, call: CallId) -> DbResult<Vec<ScoreRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(
        "SELECT application_id, evaluator_id, criterion, points, note FROM grant_evaluation_scores WHERE call_id = $1"
    ).bind(call).fetch_all(c).await?))
}

/// Removes the evaluator's scores of an application; returns them.
pub async fn delete_scores(tx: &mut Tx, app: ApplicationId, evaluator: AccountId) -> DbResult<Vec<ScoreRow>> {
    let old: Vec<ScoreRow> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT application_id, evaluator_id, criterion, points, note FROM grant_evaluation_scores WHERE application_id = $1 AND evaluator_id = $2 ORDER BY criterion"
    ).bind(app).bind(evaluator).fetch_all(c).await?);
    db_run!(tx tx, |c| sqlx::query("DELETE FROM grant_evaluation_scores WHERE application_id = $1 AND evaluator_id = $2")
        .bind(app).bind(evaluator).execute(c).await?.rows_affected());
    Ok(old)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_score(tx: &mut Tx, app: ApplicationId, evaluator: AccountId, call: CallId, criterion: &str, points: i64, note: &str, at: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_evaluation_scores (application_id, evaluator_id, call_id, criterion, points, note, scored_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ).bind(app).bind(evaluator).bind(call).bind(criterion).bind(points).bind(note).bind(at).execute(c).await?.rows_affected());
    Ok(())
}

pub async fn published_at(db: &Db, call: CallId) -> DbResult<Option<OffsetDateTime>> {
    Ok(db_run!(db, |p| sqlx::query_scalar("SELECT published_at FROM grant_rankings WHERE call_id = $1").bind(call).fetch_optional(p).await?))
}

pub async fn published_at_tx(tx: &mut Tx, call: CallId) -> DbResult<Option<OffsetDateTime>> {
    Ok(db_run!(tx tx, |c| sqlx::query_scalar("SELECT published_at FROM grant_rankings WHERE call_id = $1").bind(call).fetch_optional(c).await?))
}

pub async fn insert_ranking(tx: &mut Tx, call: CallId, org: OrgId, at: OffsetDateTime, by: AccountId) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("INSERT INTO grant_rankings (call_id, org_id, published_at, published_by) VALUES ($1, $2, $3, $4)")
        .bind(call).bind(org).bind(at).bind(by).execute(c).await?.rows_affected());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_entry(tx: &mut Tx, app: ApplicationId, call: CallId, company: CompanyId, position: i64, score: i64, amount: i64, place: &str) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_ranking_entries (application_id, call_id, company_id, position, score, amount_cents, place) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ).bind(app).bind(call).bind(company).bind(position).bind(score).bind(amount).bind(place).execute(c).await?.rows_affected());
    Ok(())
}

/// A line of the published ranking, with the application's place of now (money may have come back since).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EntryRow {
    pub application_id: ApplicationId,
    pub company_id: CompanyId,
    pub company_name: String,
    pub protocol: i64,
    pub position: i64,
    pub score: i64,
    pub amount_cents: i64,
    pub published_place: String,
    pub place: Option<String>,
    pub state: String,
}

pub async fn entries(db: &Db, call: CallId) -> DbResult<Vec<EntryRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT e.application_id, e.company_id, k.name AS company_name, a.protocol, e.position, e.score, e.amount_cents,
                e.place AS published_place, a.place, a.state
         FROM grant_ranking_entries e JOIN grant_applications a ON a.id = e.application_id JOIN companies k ON k.id = e.company_id
         WHERE e.call_id = $1 ORDER BY e.position"
    ).bind(call).fetch_all(p).await?))
}
