//! The review's queries: one row per application under review, the history of its steps, and the application as the
//! review reads it (never written here: its money moves only through `applications::store` and `service::draw`).

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::{Date, OffsetDateTime};

use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;

/// A submitted application as the review reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AppRow {
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
    pub place: Option<String>,
    pub call_title: String,
    pub call_mode: String,
    pub rules: String,
    pub company_name: String,
    pub pec: String,
    pub employees: i64,
}

macro_rules! app_select {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.call_id, a.org_id, a.company_id, a.state, a.content, a.requested_cents, a.protocol, a.submitted_at,
                    a.sha256, a.place, c.title AS call_title, c.mode AS call_mode, c.rules, k.name AS company_name, k.pec, k.employees
             FROM grant_applications a JOIN grant_calls c ON c.id = a.call_id JOIN companies k ON k.id = a.company_id ",
            $rest
        )
    };
}

/// A call's submitted application, reached from the organisation that owns the call.
pub async fn app_in_call(db: &Db, org: OrgId, call: CallId, id: ApplicationId) -> DbResult<Option<AppRow>> {
    let sql = app_select!("WHERE a.id = $1 AND a.call_id = $2 AND a.org_id = $3 AND a.protocol IS NOT NULL");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(call).bind(org).fetch_optional(p).await?))
}

/// A company's submitted application.
pub async fn app_of_company(db: &Db, company: CompanyId, id: ApplicationId) -> DbResult<Option<AppRow>> {
    let sql = app_select!("WHERE a.id = $1 AND a.company_id = $2 AND a.protocol IS NOT NULL");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(company).fetch_optional(p).await?))
}

pub async fn app_tx(tx: &mut Tx, id: ApplicationId) -> DbResult<Option<AppRow>> {
    let sql = app_select!("WHERE a.id = $1");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sql).bind(id).fetch_optional(c).await?))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ReviewRow {
    pub application_id: ApplicationId,
    pub call_id: CallId,
    pub org_id: OrgId,
    pub company_id: CompanyId,
    pub stage: String,
    pub request: Option<String>,
    pub deadline: Option<Date>,
    pub granted_cents: Option<i64>,
    pub act_number: Option<String>,
    pub act_date: Option<Date>,
    pub decided_at: Option<OffsetDateTime>,
    pub report: Option<String>,
    pub reported_at: Option<OffsetDateTime>,
    pub approved_cents: Option<i64>,
    pub to_pay_cents: Option<i64>,
    pub updated_at: OffsetDateTime,
}

const REVIEW_COLS: &str = "SELECT application_id, call_id, org_id, company_id, stage, request, deadline, granted_cents, act_number, act_date,
    decided_at, report, reported_at, approved_cents, to_pay_cents, updated_at FROM grant_reviews WHERE application_id = $1";

pub async fn get(db: &Db, id: ApplicationId) -> DbResult<Option<ReviewRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(REVIEW_COLS).bind(id).fetch_optional(p).await?))
}

pub async fn get_tx(tx: &mut Tx, id: ApplicationId) -> DbResult<Option<ReviewRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(REVIEW_COLS).bind(id).fetch_optional(c).await?))
}

/// Writes the review's row whole; `expected` is the stage it was read at: nothing is written (false) if another
/// step moved it meanwhile.
pub async fn save(tx: &mut Tx, r: &ReviewRow, expected: Option<&str>) -> DbResult<bool> {
    let n = match expected {
        None => db_run!(tx tx, |c| sqlx::query(
            "INSERT INTO grant_reviews (application_id, call_id, org_id, company_id, stage, request, deadline, granted_cents, act_number,
                 act_date, decided_at, report, reported_at, approved_cents, to_pay_cents, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (application_id) DO NOTHING"
        ).bind(r.application_id).bind(r.call_id).bind(r.org_id).bind(r.company_id).bind(&r.stage).bind(&r.request).bind(r.deadline)
        .bind(r.granted_cents).bind(&r.act_number).bind(r.act_date).bind(r.decided_at).bind(&r.report).bind(r.reported_at)
        .bind(r.approved_cents).bind(r.to_pay_cents).bind(r.updated_at).execute(c).await?.rows_affected()),
        Some(stage) => db_run!(tx tx, |c| sqlx::query(
            "UPDATE grant_reviews SET stage = $2, request = $3, deadline = $4, granted_cents = $5, act_number = $6, act_date = $7,
                 decided_at = $8, report = $9, reported_at = $10, approved_cents = $11, to_pay_cents = $12, updated_at = $13
             WHERE application_id = $1 AND stage = $14"
        ).bind(r.application_id).bind(&r.stage).bind(&r.request).bind(r.deadline).bind(r.granted_cents).bind(&r.act_number)
        .bind(r.act_date).bind(r.decided_at).bind(&r.report).bind(r.reported_at).bind(r.approved_cents).bind(r.to_pay_cents)
        .bind(r.updated_at).bind(stage).execute(c).await?.rows_affected()),
    };
    Ok(n == 1)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRow {
    pub at: OffsetDateTime,
    pub party: String,
    pub action: String,
    pub stage: String,
    pub detail: String,
    pub actor_name: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn add_event(tx: &mut Tx, app: ApplicationId, org: OrgId, at: OffsetDateTime, by: Option<AccountId>, party: &str, action: &str, stage: &str, detail: &str) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_review_events (id, application_id, org_id, at, account_id, party, action, stage, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ).bind(uuid::Uuid::now_v7()).bind(app).bind(org).bind(at).bind(by).bind(party).bind(action).bind(stage).bind(detail).execute(c).await?.rows_affected());
    Ok(())
}

/// The review's history, oldest first, with the name of who acted.
pub async fn events(db: &Db, app: ApplicationId) -> DbResult<Vec<EventRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT e.at, e.party, e.action, e.stage, e.detail, a.display_name AS actor_name
         FROM grant_review_events e LEFT JOIN accounts a ON a.id = e.account_id WHERE e.application_id = $1 ORDER BY e.at, e.id"
    ).bind(app).fetch_all(p).await?))
}

/// The call's granted applications: company, amount granted, the instant of the decision.
pub async fn granted(db: &Db, call: CallId) -> DbResult<Vec<(CompanyId, i64, OffsetDateTime)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT r.company_id, r.granted_cents, r.decided_at FROM grant_reviews r JOIN grant_applications a ON a.id = r.application_id
         WHERE r.call_id = $1 AND r.granted_cents IS NOT NULL AND r.decided_at IS NOT NULL AND a.state = 'submitted'
         ORDER BY r.decided_at, a.protocol"
    ).bind(call).fetch_all(p).await?))
}
