//! Reports for an organisation's agents and admins, over a period of Rome days (default the last 30, at most 366):
//! volume (tickets opened, resolved and closed per day, per ISO week and per category), backlog (active tickets now, by state and
//! by age), SLA compliance of the tickets opened in the period (first response and resolution: met, breached,
//! running; by priority and by category) and satisfaction (the answers given in the period: average,
//! distribution, by category and by agent, the agent being the ticket's assignee). Every figure comes from a
//! GROUP BY over a range of an (organisation, instant) index, so the cost follows the period's tickets, not the
//! table's. JSON at `/api/v1/orgs/{org}/helpdesk/reports`, a page at `/orgs/{org}/helpdesk/reports`, CSV per table
//! at `/orgs/{org}/helpdesk/reports.csv?table=…` (volume per day or, with `granularity=week`, per ISO week). The
//! operator's agents get the same report over the tickets escalated to their second level: JSON at
//! `/api/v1/helpdesk/escalated/reports`, the same page and CSV at `/helpdesk/escalated/reports(.csv)`.
//!
//! Counting rules: a ticket counts as resolved on the day of its latest resolution (a reopened ticket that is not
//! resolved again does not count); merged tickets are left out of SLA compliance; a clock is `breached` once its
//! target was passed (marked at the event or by the breach job), `met` when it stopped in time, `running`
//! otherwise (paused included).

use std::collections::HashMap;

use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult, Engine};
use agilekit_kernel::db_run;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, FieldErrors, Result, clock, tenancy};
use agilekit_web::AppState;
use agilekit_web::api::{ApiPath, ApiQuery};
use agilekit_web::auth::{ApiUser, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::{ApiError, PageError, Problem};
use agilekit_web::i18n::Lang;
use agilekit_web::pages::audit::csv_line;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

use crate::model::{Category, Priority, State as TicketState, reference};

/// The longest period, in days.
pub const MAX_DAYS: i64 = 366;
/// The period when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------------------------------
// The period

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub struct ReportQuery {
    /// First day (YYYY-MM-DD, Europe/Rome), default 29 days before `to`.
    pub from: Option<String>,
    /// Last day, included (YYYY-MM-DD), default today.
    pub to: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s[0..4].parse().ok()?;
    let m: u8 = s[5..7].parse().ok()?;
    let d: u8 = s[8..10].parse().ok()?;
    if !(2000..=9998).contains(&y) {
        return None;
    }
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// The ISO 8601 week of a day, `YYYY-Www`.
fn iso_week(d: Date) -> String {
    let (year, week, _) = d.to_iso_week_date();
    format!("{year:04}-W{week:02}")
}

/// The days' counts added up per ISO week, in order (days in order, consecutive).
fn weeks_of(days: &[(Date, Counts)]) -> Vec<VolumeWeek> {
    let mut weeks: Vec<VolumeWeek> = Vec::new();
    for (d, c) in days {
        let week = iso_week(*d);
        match weeks.last_mut() {
            Some(w) if w.week == week => {
                w.to = date_text(*d);
                w.counts.opened += c.opened;
                w.counts.resolved += c.resolved;
                w.counts.closed += c.closed;
            }
            _ => weeks.push(VolumeWeek { week, from: date_text(*d), to: date_text(*d), counts: c.clone() }),
        }
    }
    weeks
}

/// How the page and the CSV break the volume down in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
}

impl Granularity {
    /// `day` (or empty) and `week`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Granularity> {
        match s.trim() {
            "" | "day" => Some(Granularity::Day),
            "week" => Some(Granularity::Week),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
        }
    }
}

impl Period {
    /// Reads the period: bad dates are `format`, `to` before `from` is `to`: `before-start`, a span over
    /// [`MAX_DAYS`] is `from`: `out-of-range`.
    pub fn parse(q: &ReportQuery, today: Date) -> std::result::Result<Period, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut read = |field: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let d = parse_date(s);
                if d.is_none() {
                    errors.add(field, "format");
                }
                d
            }
        };
        let from = read("from", &q.from);
        let to = read("to", &q.to);
        if !errors.is_empty() {
            return Err(errors);
        }
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            errors.add("to", "before-start");
        } else if (to - from).whole_days() + 1 > MAX_DAYS {
            errors.add("from", "out-of-range");
        }
        if errors.is_empty() { Ok(Period { from, to }) } else { Err(errors) }
    }

    /// The first instant of the first day and the first instant after the last, in Rome time.
    pub fn bounds(&self) -> (OffsetDateTime, OffsetDateTime) {
        (rome_midnight(self.from), rome_midnight(self.to + Duration::days(1)))
    }

    fn days(&self) -> Vec<Date> {
        let mut out = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            out.push(d);
            d += Duration::days(1);
        }
        out
    }
}

/// Midnight in Rome of `d`, as a stored instant. The summer-time switch happens at 01:00 UTC, never near midnight,
/// so the offset two hours before UTC midnight is the day's.
fn rome_midnight(d: Date) -> OffsetDateTime {
    let probe = d.midnight().assume_utc() - Duration::hours(2);
    clock::stamp(d.midnight().assume_offset(clock::rome_offset(probe)))
}

fn today() -> Date {
    clock::to_rome(clock::now()).date()
}

// ---------------------------------------------------------------------------------------------------------------
// The report

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub opened: i64,
    pub resolved: i64,
    pub closed: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeDay {
    /// YYYY-MM-DD (Europe/Rome).
    pub date: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// An ISO 8601 week of the period.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeWeek {
    /// `YYYY-Www` (ISO 8601: weeks start on Monday; the week-numbering year may differ from the calendar year).
    pub week: String,
    /// Its first day in the period, YYYY-MM-DD: the period's first and last weeks may be partial.
    pub from: String,
    /// Its last day in the period.
    pub to: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VolumeCategory {
    pub category: Category,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Volume {
    pub total: Counts,
    /// Every day of the period, zeros included.
    pub days: Vec<VolumeDay>,
    /// Every ISO week the period touches, zeros included: the days added up.
    pub weeks: Vec<VolumeWeek>,
    pub by_category: Vec<VolumeCategory>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeyCount {
    pub key: String,
    pub count: i64,
}

/// Active tickets (new, open, pending) now.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    pub total: i64,
    pub by_state: Vec<KeyCount>,
    /// Age since opening: `lt-1d`, `1d-3d`, `3d-7d`, `7d-30d`, `gt-30d`.
    pub by_age: Vec<KeyCount>,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Compliance {
    pub met: i64,
    pub breached: i64,
    pub running: i64,
    pub total: i64,
    /// Of the total, one decimal; none when there is no ticket.
    pub met_percent: Option<f64>,
    pub breached_percent: Option<f64>,
}

impl Compliance {
    fn add(&mut self, met: i64, breached: i64, running: i64) {
        self.met += met;
        self.breached += breached;
        self.running += running;
        self.total += met + breached + running;
        self.met_percent = percent(self.met, self.total);
        self.breached_percent = percent(self.breached, self.total);
    }
}

fn percent(n: i64, of: i64) -> Option<f64> {
    (of > 0).then(|| (n as f64 * 1000.0 / of as f64).round() / 10.0)
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ComplianceRow {
    /// The priority or category.
    pub key: String,
    pub first_response: Compliance,
    pub resolution: Compliance,
}

/// The SLA clocks of the tickets opened in the period (merged ones left out).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Sla {
    pub total: ComplianceRow,
    pub by_priority: Vec<ComplianceRow>,
    pub by_category: Vec<ComplianceRow>,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Ratings {
    /// The category, the agent's account id (empty: unassigned), or `all`.
    pub key: String,
    /// The category or the agent's name, as shown.
    pub label: String,
    pub count: i64,
    /// Two decimals; none without answers.
    pub average: Option<f64>,
    /// How many answers gave 1, 2, 3, 4, 5.
    pub distribution: [i64; 5],
}

impl Ratings {
    fn add(&mut self, rating: i64, n: i64) {
        if (1..=5).contains(&rating) {
            self.distribution[(rating - 1) as usize] += n;
            self.count += n;
            let sum: i64 = self.distribution.iter().enumerate().map(|(i, c)| (i as i64 + 1) * c).sum();
            self.average = (self.count > 0).then(|| (sum as f64 * 100.0 / self.count as f64).round() / 100.0);
        }
    }
}

/// The answers given in the period.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SatisfactionReport {
    pub total: Ratings,
    pub by_category: Vec<Ratings>,
    pub by_agent: Vec<Ratings>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The organisation reported on; none for the operator's second-level queue.
    pub org_id: Option<OrgId>,
    /// The operator's second-level queue: the tickets escalated by every organisation.
    pub escalated: bool,
    /// First day, YYYY-MM-DD (Europe/Rome).
    pub from: String,
    /// Last day, included.
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub generated_at: OffsetDateTime,
    pub volume: Volume,
    pub backlog: Backlog,
    pub sla: Sla,
    pub satisfaction: SatisfactionReport,
}

// ---------------------------------------------------------------------------------------------------------------
// Queries

/// The UTC hour of an instant column as `YYYY-MM-DD?HH` text: hours map to Rome days exactly (whole-hour offsets).
fn hour_expr(engine: Engine, col: &str) -> String {
    match engine {
        Engine::Sqlite => format!("substr({col}, 1, 13)"),
        Engine::Postgres => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"),
    }
}

fn hour_to_rome_day(h: &str) -> Option<Date> {
    let d = parse_date(h.get(0..10)?)?;
    let hour: u8 = h.get(11..13)?.parse().ok()?;
    let at = d.with_hms(hour, 0, 0).ok()?.assume_offset(UtcOffset::UTC);
    Some(clock::to_rome(at).date())
}

/// Whose tickets a report counts: one organisation's, or those escalated to the operator's second level (of every
/// organisation, for the operator's agents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Org(OrgId),
    Escalated,
}

impl Scope {
    /// The condition on the tickets (alias `t`) and the first placeholder left for the query: the organisation is
    /// `$1`; the escalated queue is a literal, so that the partial indexes on it apply.
    fn tickets(self) -> (&'static str, usize) {
        match self {
            Scope::Org(_) => ("t.org_id = $1", 2),
            Scope::Escalated => ("t.queue = 'operator'", 1),
        }
    }
    /// The same for answers (alias `s`, joined to their ticket `t`).
    fn answers(self) -> (&'static str, usize) {
        match self {
            Scope::Org(_) => ("s.org_id = $1", 2),
            Scope::Escalated => ("t.queue = 'operator'", 1),
        }
    }
    fn org(self) -> Option<OrgId> {
        match self {
            Scope::Org(o) => Some(o),
            Scope::Escalated => None,
        }
    }
}

/// Binds the scope's own parameter (the organisation), if it has one.
macro_rules! bind_scope {
    ($q:expr, $scope:expr) => {
        match $scope {
            Scope::Org(o) => $q.bind(o),
            Scope::Escalated => $q,
        }
    };
}

/// (hour, category, count) of the tickets whose `col` falls in the period.
async fn per_hour(db: &Db, scope: Scope, col: &'static str, from: OffsetDateTime, to: OffsetDateTime) -> DbResult<Vec<(String, String, i64)>> {
    let h = hour_expr(db.engine(), &format!("t.{col}"));
    let (cond, n) = scope.tickets();
    let sql = format!(
        "SELECT {h} AS h, t.category, COUNT(*) FROM helpdesk_tickets t
         WHERE {cond} AND t.{col} >= ${} AND t.{col} < ${} GROUP BY {h}, t.category",
        n,
        n + 1
    );
    Ok(db_run!(db, |p| bind_scope!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope).bind(from).bind(to).fetch_all(p).await?))
}

#[derive(sqlx::FromRow)]
struct SlaRow {
    priority: String,
    category: String,
    fr_met: i64,
    fr_breached: i64,
    fr_running: i64,
    rs_met: i64,
    rs_breached: i64,
    rs_running: i64,
}

async fn sla_rows(db: &Db, scope: Scope, from: OffsetDateTime, to: OffsetDateTime) -> DbResult<Vec<SlaRow>> {
    let (cond, n) = scope.tickets();
    let sql = format!(
        "SELECT t.priority, t.category,
            COALESCE(SUM(CASE WHEN t.fr_breached_at IS NULL AND t.fr_state = 'stopped' THEN 1 ELSE 0 END), 0) AS fr_met,
            COALESCE(SUM(CASE WHEN t.fr_breached_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS fr_breached,
            COALESCE(SUM(CASE WHEN t.fr_breached_at IS NULL AND t.fr_state <> 'stopped' THEN 1 ELSE 0 END), 0) AS fr_running,
            COALESCE(SUM(CASE WHEN t.rs_breached_at IS NULL AND t.rs_state = 'stopped' THEN 1 ELSE 0 END), 0) AS rs_met,
            COALESCE(SUM(CASE WHEN t.rs_breached_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS rs_breached,
            COALESCE(SUM(CASE WHEN t.rs_breached_at IS NULL AND t.rs_state <> 'stopped' THEN 1 ELSE 0 END), 0) AS rs_running
         FROM helpdesk_tickets t
         WHERE {cond} AND t.created_at >= ${} AND t.created_at < ${} AND t.state <> 'merged'
         GROUP BY t.priority, t.category",
        n,
        n + 1
    );
    Ok(db_run!(db, |p| bind_scope!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope).bind(from).bind(to).fetch_all(p).await?))
}

async fn backlog_rows(db: &Db, scope: Scope, now: OffsetDateTime) -> DbResult<Vec<(String, i32, i64)>> {
    let ago = |d: i64| clock::stamp(now - Duration::days(d));
    let (cond, n) = scope.tickets();
    let bucket = format!(
        "CASE WHEN t.created_at >= ${} THEN 0 WHEN t.created_at >= ${} THEN 1 WHEN t.created_at >= ${} THEN 2
              WHEN t.created_at >= ${} THEN 3 ELSE 4 END",
        n,
        n + 1,
        n + 2,
        n + 3
    );
    let sql = format!(
        "SELECT t.state, {bucket} AS bucket, COUNT(*) FROM helpdesk_tickets t
         WHERE {cond} AND t.state IN ('new', 'open', 'pending') GROUP BY t.state, {bucket}"
    );
    Ok(db_run!(db, |p| bind_scope!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope)
        .bind(ago(1)).bind(ago(3)).bind(ago(7)).bind(ago(30)).fetch_all(p).await?))
}

#[derive(sqlx::FromRow)]
struct RatingRow {
    category: String,
    assignee_id: Option<AccountId>,
    assignee_name: Option<String>,
    rating: i32,
    n: i64,
}

async fn rating_rows(db: &Db, scope: Scope, from: OffsetDateTime, to: OffsetDateTime) -> DbResult<Vec<RatingRow>> {
    let (cond, n) = scope.answers();
    let sql = format!(
        "SELECT t.category, t.assignee_id, a.display_name AS assignee_name, s.rating, COUNT(*) AS n
         FROM helpdesk_surveys s JOIN helpdesk_tickets t ON t.id = s.ticket_id
         LEFT JOIN accounts a ON a.id = t.assignee_id
         WHERE {cond} AND s.answered_at >= ${} AND s.answered_at < ${}
         GROUP BY t.category, t.assignee_id, a.display_name, s.rating",
        n,
        n + 1
    );
    Ok(db_run!(db, |p| bind_scope!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope).bind(from).bind(to).fetch_all(p).await?))
}

/// One answer, for the `answers` CSV.
#[derive(sqlx::FromRow)]
struct AnswerRow {
    org_name: String,
    number: i64,
    subject: String,
    category: String,
    assignee_name: Option<String>,
    rating: i32,
    comment: String,
    answered_at: OffsetDateTime,
}

async fn answer_rows(db: &Db, scope: Scope, from: OffsetDateTime, to: OffsetDateTime) -> DbResult<Vec<AnswerRow>> {
    let (cond, n) = scope.answers();
    let sql = format!(
        "SELECT o.name AS org_name, t.number, t.subject, t.category, a.display_name AS assignee_name, s.rating, s.comment,
                s.answered_at
         FROM helpdesk_surveys s JOIN helpdesk_tickets t ON t.id = s.ticket_id JOIN organisations o ON o.id = t.org_id
         LEFT JOIN accounts a ON a.id = t.assignee_id
         WHERE {cond} AND s.answered_at >= ${} AND s.answered_at < ${}
         ORDER BY s.answered_at, s.ticket_id",
        n,
        n + 1
    );
    Ok(db_run!(db, |p| bind_scope!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), scope).bind(from).bind(to).fetch_all(p).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Rules

fn is_staff(p: &Principal, org: OrgId) -> bool {
    p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin)
}

/// The organisation's agents and admins; its other members are refused (403), anyone else learns nothing (404).
fn check(p: &Principal, org: OrgId) -> Result<()> {
    if is_staff(p, org) {
        Ok(())
    } else if p.is_member(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

/// The report of `org` over the period the query names, as of `now`.
pub async fn report(db: &Db, p: &Principal, org: OrgId, q: &ReportQuery, now: OffsetDateTime) -> Result<Report> {
    check(p, org)?;
    let today = clock::to_rome(now).date();
    let period = Period::parse(q, today).map_err(Error::Invalid)?;
    build(db, Scope::Org(org), period, clock::stamp(now)).await
}

/// The operator organisation, if `p` is one of its agents: who may see the second-level report.
async fn operator_agent(db: &Db, p: &Principal) -> Result<Option<OrgId>> {
    Ok(tenancy::operator(db).await?.map(|o| o.id).filter(|op| p.has(*op, Role::Agent)))
}

/// The operator's agents; anyone else is refused (403: the second level's existence is no secret).
async fn check_escalated(db: &Db, p: &Principal) -> Result<OrgId> {
    operator_agent(db, p).await?.ok_or(Error::Forbidden)
}

/// The report of the operator's second-level queue (the tickets escalated by every organisation), for the
/// operator's agents (403 to anyone else).
pub async fn escalated_report(db: &Db, p: &Principal, q: &ReportQuery, now: OffsetDateTime) -> Result<Report> {
    check_escalated(db, p).await?;
    let today = clock::to_rome(now).date();
    let period = Period::parse(q, today).map_err(Error::Invalid)?;
    build(db, Scope::Escalated, period, clock::stamp(now)).await
}

async fn build(db: &Db, scope: Scope, period: Period, now: OffsetDateTime) -> Result<Report> {
    let (from, to) = period.bounds();
    let days = period.days();
    let index: HashMap<Date, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut per_day: Vec<Counts> = vec![Counts::default(); days.len()];
    let mut per_cat: Vec<Counts> = vec![Counts::default(); Category::ALL.len()];
    let mut total = Counts::default();
    for (which, col) in [(0, "created_at"), (1, "resolved_at"), (2, "closed_at")] {
        for (h, cat, n) in per_hour(db, scope, col, from, to).await? {
            let bump = |c: &mut Counts| match which {
                0 => c.opened += n,
                1 => c.resolved += n,
                _ => c.closed += n,
            };
            if let Some(i) = hour_to_rome_day(&h).and_then(|d| index.get(&d)) {
                bump(&mut per_day[*i]);
            }
            if let Some(i) = Category::ALL.iter().position(|c| c.as_str() == cat) {
                bump(&mut per_cat[i]);
            }
            bump(&mut total);
        }
    }
    let dated: Vec<(Date, Counts)> = days.iter().copied().zip(per_day).collect();
    let volume = Volume {
        total,
        weeks: weeks_of(&dated),
        days: dated.into_iter().map(|(d, counts)| VolumeDay { date: date_text(d), counts }).collect(),
        by_category: Category::ALL.iter().zip(per_cat).map(|(c, counts)| VolumeCategory { category: *c, counts }).collect(),
    };

    let active = [TicketState::New, TicketState::Open, TicketState::Pending];
    let mut by_state: Vec<KeyCount> = active.iter().map(|s| KeyCount { key: s.as_str().into(), count: 0 }).collect();
    let mut by_age: Vec<KeyCount> = AGE_BUCKETS.iter().map(|b| KeyCount { key: (*b).into(), count: 0 }).collect();
    let mut backlog_total = 0;
    for (state, bucket, n) in backlog_rows(db, scope, now).await? {
        if let Some(s) = by_state.iter_mut().find(|s| s.key == state) {
            s.count += n;
        }
        if let Some(b) = by_age.get_mut(bucket as usize) {
            b.count += n;
        }
        backlog_total += n;
    }
    let backlog = Backlog { total: backlog_total, by_state, by_age };

    let row = |key: &str| ComplianceRow { key: key.to_owned(), ..Default::default() };
    let mut sla_total = row("all");
    let mut by_priority: Vec<ComplianceRow> = Priority::ALL.iter().map(|p| row(p.as_str())).collect();
    let mut by_category: Vec<ComplianceRow> = Category::ALL.iter().map(|c| row(c.as_str())).collect();
    for r in sla_rows(db, scope, from, to).await? {
        let add = |c: &mut ComplianceRow| {
            c.first_response.add(r.fr_met, r.fr_breached, r.fr_running);
            c.resolution.add(r.rs_met, r.rs_breached, r.rs_running);
        };
        add(&mut sla_total);
        if let Some(c) = by_priority.iter_mut().find(|c| c.key == r.priority) {
            add(c);
        }
        if let Some(c) = by_category.iter_mut().find(|c| c.key == r.category) {
            add(c);
        }
    }
    let sla = Sla { total: sla_total, by_priority, by_category };

    let mut sat_total = Ratings { key: "all".into(), ..Default::default() };
    let mut sat_cat: Vec<Ratings> =
        Category::ALL.iter().map(|c| Ratings { key: c.as_str().into(), label: c.as_str().into(), ..Default::default() }).collect();
    let mut sat_agent: Vec<Ratings> = Vec::new();
    for r in rating_rows(db, scope, from, to).await? {
        let rating = i64::from(r.rating);
        sat_total.add(rating, r.n);
        if let Some(c) = sat_cat.iter_mut().find(|c| c.key == r.category) {
            c.add(rating, r.n);
        }
        let key = r.assignee_id.map(|a| a.to_string()).unwrap_or_default();
        let i = match sat_agent.iter().position(|a| a.key == key) {
            Some(i) => i,
            None => {
                sat_agent.push(Ratings { key: key.clone(), label: r.assignee_name.clone().unwrap_or_default(), ..Default::default() });
                sat_agent.len() - 1
            }
        };
        sat_agent[i].add(rating, r.n);
    }
    // Named agents by name, the unassigned last.
    sat_agent.sort_by(|a, b| (a.key.is_empty(), &a.label, &a.key).cmp(&(b.key.is_empty(), &b.label, &b.key)));
    let satisfaction = SatisfactionReport { total: sat_total, by_category: sat_cat, by_agent: sat_agent };

    Ok(Report {
        org_id: scope.org(),
        escalated: scope == Scope::Escalated,
        from: date_text(period.from),
        to: date_text(period.to),
        generated_at: now,
        volume,
        backlog,
        sla,
        satisfaction,
    })
}

const AGE_BUCKETS: [&str; 5] = ["lt-1d", "1d-3d", "3d-7d", "7d-30d", "gt-30d"];

// ---------------------------------------------------------------------------------------------------------------
// CSV

/// The tables a CSV export may hold.
pub const TABLES: [&str; 6] = ["volume", "categories", "backlog", "sla", "satisfaction", "answers"];

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// One table of the report as CSV (RFC 4180, CRLF), headers in the page's language; cells a spreadsheet would
/// run as a formula are defused by the shared writer. `volume` per day or per ISO week; `answers` lists each answer
/// of the period (on the second level, with each ticket's organisation).
async fn csv_table(db: &Db, scope: Scope, period: Period, table: &str, granularity: Granularity, report: &Report, lang: Lang) -> Result<String> {
    let mut out = String::new();
    let h = |keys: &[&str]| keys.iter().map(|k| lang.t(&format!("hdr-csv-{k}"))).collect::<Vec<String>>();
    let line = |out: &mut String, cells: Vec<String>| csv_line(out, &cells.iter().map(String::as_str).collect::<Vec<_>>());
    let cat = |c: &str| lang.t(&format!("hd-cat-{c}"));
    match table {
        "volume" if granularity == Granularity::Week => {
            line(&mut out, h(&["week", "from", "to", "opened", "resolved", "closed"]));
            for w in &report.volume.weeks {
                let c = &w.counts;
                line(&mut out, vec![
                    w.week.clone(), w.from.clone(), w.to.clone(), c.opened.to_string(), c.resolved.to_string(), c.closed.to_string(),
                ]);
            }
        }
        "volume" => {
            line(&mut out, h(&["date", "opened", "resolved", "closed"]));
            for d in &report.volume.days {
                let c = &d.counts;
                line(&mut out, vec![d.date.clone(), c.opened.to_string(), c.resolved.to_string(), c.closed.to_string()]);
            }
        }
        "categories" => {
            line(&mut out, h(&["category", "opened", "resolved", "closed"]));
            for v in &report.volume.by_category {
                let c = &v.counts;
                line(&mut out, vec![cat(v.category.as_str()), c.opened.to_string(), c.resolved.to_string(), c.closed.to_string()]);
            }
        }
        "backlog" => {
            line(&mut out, h(&["dimension", "value", "count"]));
            for s in &report.backlog.by_state {
                line(&mut out, vec![lang.t("hdr-dim-state"), lang.t(&format!("hd-state-{}", s.key)), s.count.to_string()]);
            }
            for a in &report.backlog.by_age {
                line(&mut out, vec![lang.t("hdr-dim-age"), lang.t(&format!("hdr-age-{}", a.key)), a.count.to_string()]);
            }
        }
        "sla" => {
            line(&mut out, h(&["dimension", "value", "clock", "met", "breached", "running", "total", "met-percent"]));
            let rows = std::iter::once((lang.t("hdr-dim-all"), lang.t("hdr-all"), &report.sla.total))
                .chain(report.sla.by_priority.iter().map(|r| (lang.t("hdr-dim-priority"), lang.t(&format!("hd-prio-{}", r.key)), r)))
                .chain(report.sla.by_category.iter().map(|r| (lang.t("hdr-dim-category"), cat(&r.key), r)));
            for (dim, value, r) in rows {
                for (clock_key, c) in [("hdr-clock-first", &r.first_response), ("hdr-clock-resolution", &r.resolution)] {
                    line(&mut out, vec![
                        dim.clone(), value.clone(), lang.t(clock_key), c.met.to_string(), c.breached.to_string(),
                        c.running.to_string(), c.total.to_string(), num(c.met_percent),
                    ]);
                }
            }
        }
        "satisfaction" => {
            line(&mut out, h(&["dimension", "value", "answers", "average", "r1", "r2", "r3", "r4", "r5"]));
            let s = &report.satisfaction;
            let rows = std::iter::once((lang.t("hdr-dim-all"), lang.t("hdr-all"), &s.total))
                .chain(s.by_category.iter().map(|r| (lang.t("hdr-dim-category"), cat(&r.key), r)))
                .chain(s.by_agent.iter().map(|r| {
                    let name = if r.key.is_empty() { lang.t("hd-unassigned") } else { r.label.clone() };
                    (lang.t("hdr-dim-agent"), name, r)
                }));
            for (dim, value, r) in rows {
                let mut cells = vec![dim, value, r.count.to_string(), r.average.map(|a| format!("{a:.2}")).unwrap_or_default()];
                cells.extend(r.distribution.iter().map(i64::to_string));
                line(&mut out, cells);
            }
        }
        _ => {
            let second_level = scope == Scope::Escalated;
            let mut head = h(&["ticket", "subject", "category", "agent", "rating", "comment", "answered-at"]);
            if second_level {
                head.insert(0, lang.t("hdr-csv-organisation"));
            }
            line(&mut out, head);
            let (from, to) = period.bounds();
            for a in answer_rows(db, scope, from, to).await? {
                let mut cells = vec![
                    reference(a.number), a.subject, cat(&a.category), a.assignee_name.unwrap_or_default(),
                    a.rating.to_string(), a.comment, clock::format_rome(a.answered_at),
                ];
                if second_level {
                    cells.insert(0, a.org_name);
                }
                line(&mut out, cells);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// API

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_report, get_escalated_report),
    components(schemas(Report, Counts, VolumeDay, VolumeWeek, VolumeCategory, Volume, KeyCount, Backlog, Compliance, ComplianceRow,
        Sla, Ratings, SatisfactionReport)),
)]
pub struct ApiDoc;

/// The organisation's help-desk report over a period of days (its agents and admins): volume, backlog, SLA
/// compliance, satisfaction. CSV per table from the page's `/orgs/{org}/helpdesk/reports.csv?table=…`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/reports", tag = "helpdesk", operation_id = "helpdesk_reports",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ReportQuery),
    responses((status = 200, body = Report),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A member who is not an agent or admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from`, `to`: `format`; `to`: `before-start`; `from`: `out-of-range` (over 366 days)",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_report(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> std::result::Result<Json<Report>, ApiError> {
    Ok(Json(report(&s.db, &u.principal, org, &q, clock::now()).await?))
}

/// The same report for the operator's second-level queue: the tickets escalated by every organisation (the
/// operator's agents only).
#[utoipa::path(get, path = "/api/v1/helpdesk/escalated/reports", tag = "helpdesk", operation_id = "helpdesk_escalated_reports",
    params(ReportQuery),
    responses((status = 200, body = Report),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from`, `to`: `format`; `to`: `before-start`; `from`: `out-of-range` (over 366 days)",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_escalated_report(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> std::result::Result<Json<Report>, ApiError> {
    Ok(Json(escalated_report(&s.db, &u.principal, &q, clock::now()).await?))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/helpdesk/reports", get(get_report))
        .route("/api/v1/helpdesk/escalated/reports", get(get_escalated_report))
        .route("/orgs/{org}/helpdesk/reports", get(page))
        .route("/orgs/{org}/helpdesk/reports.csv", get(csv))
        .route("/helpdesk/escalated/reports", get(escalated_page))
        .route("/helpdesk/escalated/reports.csv", get(escalated_csv))
}

// ---------------------------------------------------------------------------------------------------------------
// Pages

/// Where the operator's second-level report lives (page; `.csv` for its tables).
const ESCALATED_BASE: &str = "/helpdesk/escalated/reports";

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    table: String,
    /// `day` (default) or `week`: the volume over time.
    #[serde(default)]
    granularity: String,
}

impl PageQuery {
    fn report_query(&self) -> ReportQuery {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
        ReportQuery { from: opt(&self.from), to: opt(&self.to) }
    }

    /// The period and the granularity, or every error of both.
    fn parse(&self) -> std::result::Result<(Period, Granularity), FieldErrors> {
        let granularity = Granularity::parse(&self.granularity);
        let mut errors = match Period::parse(&self.report_query(), today()) {
            Ok(p) => match granularity {
                Some(g) => return Ok((p, g)),
                None => FieldErrors::new(),
            },
            Err(e) => e,
        };
        if granularity.is_none() {
            errors.add("granularity", "format");
        }
        Err(errors)
    }
}

/// A row of a table on the page: its header cell and the data cells.
struct Line {
    head: String,
    cells: Vec<String>,
}

/// A table of rows with a total, under a caption.
struct TableView {
    caption: String,
    head: String,
    rows: Vec<Line>,
    total: Vec<String>,
}

struct CsvLink {
    href: String,
    label: String,
}

struct Choice {
    value: &'static str,
    label: String,
    selected: bool,
}

/// Which report a page shows, and where it and its neighbours are.
struct Place {
    scope: Scope,
    /// The page's own path (the form's action; `{base}.csv` for the tables).
    base: String,
    /// The queue the page belongs to (the back link).
    back: String,
    /// For the operator's agents on their own organisation's page: the second-level report.
    second_level: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_reports.html")]
struct ReportsPage {
    ctx: PageCtx,
    base: String,
    back: String,
    escalated: bool,
    second_level: Option<String>,
    from: String,
    to: String,
    granularities: Vec<Choice>,
    weekly: bool,
    errors: FieldErrors,
    shown: bool,
    period: String,
    csv: Vec<CsvLink>,
    volume_total: Vec<String>,
    by_category: Vec<Line>,
    /// Per day, or per ISO week (the week's days in the first cell).
    over_time: Vec<Line>,
    backlog_state: Vec<Line>,
    backlog_age: Vec<Line>,
    backlog_total: i64,
    sla_tables: Vec<TableView>,
    sat_tables: Vec<TableView>,
}

fn parse_org(s: &str) -> std::result::Result<OrgId, PageError> {
    s.trim().parse().map_err(|_| PageError::not_found())
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1} %")).unwrap_or_else(|| "—".into())
}

fn compliance_cells(c: &Compliance) -> Vec<String> {
    vec![c.met.to_string(), c.breached.to_string(), c.running.to_string(), pct(c.met_percent)]
}

fn rating_cells(r: &Ratings) -> Vec<String> {
    let mut v = vec![r.count.to_string(), r.average.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into())];
    v.extend(r.distribution.iter().map(i64::to_string));
    v
}

fn empty_page(ctx: PageCtx, place: &Place, q: &PageQuery, errors: FieldErrors) -> ReportsPage {
    let granularity = q.granularity.trim();
    ReportsPage {
        granularities: [Granularity::Day, Granularity::Week]
            .iter()
            .map(|g| Choice {
                value: g.as_str(),
                label: ctx.t(&format!("hdr-granularity-{}", g.as_str())),
                selected: granularity == g.as_str(),
            })
            .collect(),
        weekly: granularity == "week",
        ctx,
        base: place.base.clone(),
        back: place.back.clone(),
        escalated: place.scope == Scope::Escalated,
        second_level: place.second_level.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        errors,
        shown: false,
        period: String::new(),
        csv: Vec::new(),
        volume_total: Vec::new(),
        by_category: Vec::new(),
        over_time: Vec::new(),
        backlog_state: Vec::new(),
        backlog_age: Vec::new(),
        backlog_total: 0,
        sla_tables: Vec::new(),
        sat_tables: Vec::new(),
    }
}

/// The report page of `place` (an organisation's or the second level's: one rendering for both).
async fn render(state: &AppState, ctx: PageCtx, place: &Place, q: &PageQuery) -> std::result::Result<Response, PageError> {
    let (period, granularity) = match q.parse() {
        Ok(x) => x,
        Err(errors) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, empty_page(ctx, place, q, errors)).into_response()),
    };
    let r = build(&state.db, place.scope, period, clock::now()).await?;
    let cat = |c: &str| ctx.t(&format!("hd-cat-{c}"));
    let counts = |c: &Counts| vec![c.opened.to_string(), c.resolved.to_string(), c.closed.to_string()];
    let range = format!("from={}&to={}", r.from, r.to);
    let mut page = empty_page(ctx.clone(), place, q, FieldErrors::new());
    page.from = r.from.clone();
    page.to = r.to.clone();
    page.shown = true;
    page.period = format!("{} – {}", r.from, r.to);
    page.csv = TABLES
        .iter()
        .map(|t| {
            let by_week = if *t == "volume" && granularity == Granularity::Week { "&granularity=week" } else { "" };
            CsvLink { href: format!("{}.csv?{range}&table={t}{by_week}", place.base), label: ctx.t(&format!("hdr-table-{t}{}", if by_week.is_empty() { "" } else { "-week" })) }
        })
        .collect();
    page.volume_total = counts(&r.volume.total);
    page.by_category = r.volume.by_category.iter().map(|v| Line { head: cat(v.category.as_str()), cells: counts(&v.counts) }).collect();
    page.over_time = match granularity {
        Granularity::Day => r.volume.days.iter().map(|d| Line { head: d.date.clone(), cells: counts(&d.counts) }).collect(),
        Granularity::Week => r
            .volume
            .weeks
            .iter()
            .map(|w| {
                let mut cells = vec![format!("{} – {}", w.from, w.to)];
                cells.extend(counts(&w.counts));
                Line { head: w.week.clone(), cells }
            })
            .collect(),
    };
    page.backlog_total = r.backlog.total;
    page.backlog_state = r
        .backlog
        .by_state
        .iter()
        .map(|s| Line { head: ctx.t(&format!("hd-state-{}", s.key)), cells: vec![s.count.to_string()] })
        .collect();
    page.backlog_age = r
        .backlog
        .by_age
        .iter()
        .map(|a| Line { head: ctx.t(&format!("hdr-age-{}", a.key)), cells: vec![a.count.to_string()] })
        .collect();
    let sla_cells = |c: &ComplianceRow| {
        let mut v = compliance_cells(&c.first_response);
        v.extend(compliance_cells(&c.resolution));
        v
    };
    page.sla_tables = vec![
        TableView {
            caption: ctx.t("hdr-sla-by-priority"),
            head: ctx.t("hd-col-priority"),
            rows: r.sla.by_priority.iter().map(|c| Line { head: ctx.t(&format!("hd-prio-{}", c.key)), cells: sla_cells(c) }).collect(),
            total: sla_cells(&r.sla.total),
        },
        TableView {
            caption: ctx.t("hdr-sla-by-category"),
            head: ctx.t("hd-col-category"),
            rows: r.sla.by_category.iter().map(|c| Line { head: cat(&c.key), cells: sla_cells(c) }).collect(),
            total: sla_cells(&r.sla.total),
        },
    ];
    page.sat_tables = vec![
        TableView {
            caption: ctx.t("hdr-sat-by-category"),
            head: ctx.t("hd-col-category"),
            rows: r.satisfaction.by_category.iter().map(|c| Line { head: cat(&c.key), cells: rating_cells(c) }).collect(),
            total: rating_cells(&r.satisfaction.total),
        },
        TableView {
            caption: ctx.t("hdr-sat-by-agent"),
            head: ctx.t("hd-col-assignee"),
            rows: r
                .satisfaction
                .by_agent
                .iter()
                .map(|a| Line {
                    head: if a.key.is_empty() { ctx.t("hd-unassigned") } else { a.label.clone() },
                    cells: rating_cells(a),
                })
                .collect(),
            total: rating_cells(&r.satisfaction.total),
        },
    ];
    Ok(page.into_response())
}

/// One table of `place`'s report as a CSV download.
async fn render_csv(state: &AppState, ctx: PageCtx, place: &Place, q: &PageQuery) -> std::result::Result<Response, PageError> {
    let mut errors = FieldErrors::new();
    let table = match q.table.trim() {
        "" => "volume",
        t => match TABLES.iter().find(|x| **x == t) {
            Some(x) => *x,
            None => {
                errors.add("table", "format");
                "volume"
            }
        },
    };
    let (period, granularity) = match q.parse() {
        Ok(x) if errors.is_empty() => x,
        Ok(_) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, empty_page(ctx, place, q, errors)).into_response()),
        Err(mut e) => {
            e.0.extend(errors.0);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, empty_page(ctx, place, q, e)).into_response());
        }
    };
    let r = build(&state.db, place.scope, period, clock::now()).await?;
    let body = csv_table(&state.db, place.scope, period, table, granularity, &r, ctx.lang).await?;
    let name = match (table, granularity) {
        ("volume", Granularity::Week) => "volume-weeks",
        (t, _) => t,
    };
    let prefix = if place.scope == Scope::Escalated { "helpdesk-escalated" } else { "helpdesk" };
    let filename = format!("{prefix}-{name}-{}-{}.csv", r.from, r.to);
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// An organisation's page (its agents and admins); its operator agents also get the link to the second level.
async fn org_place(state: &AppState, p: &Principal, org: &str) -> std::result::Result<Place, PageError> {
    let org = parse_org(org)?;
    check(p, org)?;
    let second_level = operator_agent(&state.db, p).await?.filter(|op| *op == org).map(|_| ESCALATED_BASE.to_owned());
    Ok(Place { scope: Scope::Org(org), base: format!("/orgs/{org}/helpdesk/reports"), back: format!("/orgs/{org}/helpdesk"), second_level })
}

/// The second level's page (the operator's agents), reached from the operator's queue.
async fn escalated_place(state: &AppState, p: &Principal) -> std::result::Result<Place, PageError> {
    let operator = check_escalated(&state.db, p).await?;
    Ok(Place { scope: Scope::Escalated, base: ESCALATED_BASE.to_owned(), back: format!("/orgs/{operator}/helpdesk"), second_level: None })
}

async fn page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> std::result::Result<Response, PageError> {
    let place = org_place(&state, &user.principal, &org).await?;
    render(&state, PageCtx::build(&state, &rc).await, &place, &q).await
}

async fn csv(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> std::result::Result<Response, PageError> {
    let place = org_place(&state, &user.principal, &org).await?;
    render_csv(&state, PageCtx::build(&state, &rc).await, &place, &q).await
}

async fn escalated_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<PageQuery>,
) -> std::result::Result<Response, PageError> {
    let place = escalated_place(&state, &user.principal).await?;
    render(&state, PageCtx::build(&state, &rc).await, &place, &q).await
}

async fn escalated_csv(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<PageQuery>,
) -> std::result::Result<Response, PageError> {
    let place = escalated_place(&state, &user.principal).await?;
    render_csv(&state, PageCtx::build(&state, &rc).await, &place, &q).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_default_and_refuse_bad_dates_order_and_span() {
        let today = date!(2026 - 12 - 05);
        let q = |f: &str, t: &str| ReportQuery { from: Some(f.into()), to: Some(t.into()) };
        assert_eq!(Period::parse(&ReportQuery::default(), today), Ok(Period { from: date!(2026 - 11 - 06), to: today }));
        assert_eq!(Period::parse(&q("2026-01-01", "2026-12-31"), today).map(|p| p.from), Ok(date!(2026 - 01 - 01)));
        assert_eq!(Period::parse(&q("2026-13-01", ""), today).unwrap_err().get("from"), Some("format"));
        assert_eq!(Period::parse(&q("x", "2026-02-30"), today).unwrap_err().0.len(), 2);
        assert_eq!(Period::parse(&q("2026-12-02", "2026-12-01"), today).unwrap_err().get("to"), Some("before-start"));
        assert_eq!(Period::parse(&q("2025-01-01", "2026-12-01"), today).unwrap_err().get("from"), Some("out-of-range"));
        // 366 days is allowed, 367 is not.
        assert!(Period::parse(&q("2024-01-01", "2024-12-31"), today).is_ok());
        assert!(Period::parse(&q("2023-12-31", "2024-12-31"), today).is_err());
    }

    #[test]
    fn rome_days_start_at_local_midnight_in_winter_and_summer() {
        let p = Period { from: date!(2026 - 01 - 10), to: date!(2026 - 07 - 10) };
        let (a, b) = p.bounds();
        assert_eq!((a.hour(), a.day()), (23, 9));
        assert_eq!((b.hour(), b.day()), (22, 10));
        assert_eq!(hour_to_rome_day("2026-07-10T22"), Some(date!(2026 - 07 - 11)));
        assert_eq!(hour_to_rome_day("2026-07-10 21"), Some(date!(2026 - 07 - 10)));
        assert_eq!(hour_to_rome_day("2026-01-10T23"), Some(date!(2026 - 01 - 11)));
    }

    #[test]
    fn iso_weeks_add_up_the_days_and_cross_the_year() {
        // Monday 29 December 2025 is in week 1 of 2026; the period starts on a Saturday and ends on a Tuesday.
        let p = Period { from: date!(2025 - 12 - 27), to: date!(2026 - 01 - 06) };
        let days: Vec<(Date, Counts)> =
            p.days().into_iter().enumerate().map(|(i, d)| (d, Counts { opened: 1, resolved: i as i64, closed: 0 })).collect();
        let weeks = weeks_of(&days);
        let got: Vec<(&str, &str, &str, i64, i64)> =
            weeks.iter().map(|w| (w.week.as_str(), w.from.as_str(), w.to.as_str(), w.counts.opened, w.counts.resolved)).collect();
        assert_eq!(
            got,
            [
                ("2025-W52", "2025-12-27", "2025-12-28", 2, 1),
                ("2026-W01", "2025-12-29", "2026-01-04", 7, 2 + 3 + 4 + 5 + 6 + 7 + 8),
                ("2026-W02", "2026-01-05", "2026-01-06", 2, 9 + 10),
            ]
        );
        assert_eq!(iso_week(date!(2027 - 01 - 01)), "2026-W53");
        assert_eq!((Granularity::parse(""), Granularity::parse("week"), Granularity::parse("month")), (Some(Granularity::Day), Some(Granularity::Week), None));
    }

    #[test]
    fn percentages_and_averages_round() {
        let mut c = Compliance::default();
        c.add(2, 1, 0);
        assert_eq!((c.total, c.met_percent, c.breached_percent), (3, Some(66.7), Some(33.3)));
        let mut r = Ratings::default();
        r.add(5, 2);
        r.add(2, 1);
        r.add(9, 1);
        assert_eq!((r.count, r.average, r.distribution), (3, Some(4.0), [0, 1, 0, 0, 2]));
    }
}
