//! The workstations' queries. Every function takes the organisation and puts it in its `WHERE`, so a workstation,
//! booking or probe of another organisation is simply not found.

use std::collections::HashMap;

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::Engine;
use time::OffsetDateTime;

use crate::model::{BookingId, Mode, NewWorkstation, ProbeId, Protocol, Slot, Status, WorkstationId};

/// A workstation as stored, with its assignee's email and name.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Row {
    pub id: WorkstationId,
    pub org_id: OrgId,
    pub hostname: String,
    pub address: Option<String>,
    pub protocol: String,
    pub port: i64,
    pub os: Option<String>,
    pub location: Option<String>,
    pub tags: String,
    pub mac: Option<String>,
    pub mode: String,
    pub assigned_account_id: Option<AccountId>,
    pub assignee_email: Option<String>,
    pub assignee_name: Option<String>,
    pub status: String,
    pub last_probe_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Row {
    pub fn protocol(&self) -> Protocol {
        Protocol::parse(&self.protocol).unwrap_or(Protocol::Rdp)
    }
    pub fn mode(&self) -> Mode {
        Mode::parse(&self.mode).unwrap_or(Mode::Pooled)
    }
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Unknown)
    }
    pub fn port(&self) -> u16 {
        u16::try_from(self.port).unwrap_or(0)
    }
}

const SELECT: &str = "SELECT w.id, w.org_id, w.hostname, w.address, w.protocol, w.port, w.os, w.location, w.tags, w.mac, w.mode,
    w.assigned_account_id, a.email AS assignee_email, a.display_name AS assignee_name, w.status, w.last_probe_at,
    w.last_latency_ms, w.created_at, w.updated_at
    FROM workstations w LEFT JOIN accounts a ON a.id = w.assigned_account_id";

pub async fn get(db: &Db, org: OrgId, id: WorkstationId) -> DbResult<Option<Row>> {
    let sql = format!("{SELECT} WHERE w.org_id = $1 AND w.id = $2");
    Ok(db_run!(db, |p| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(p).await?))
}

/// Reads a workstation inside a transaction and, on PostgreSQL, locks its row until the transaction ends: what
/// changes it (a booking, an edit) happens one at a time. SQLite's write transaction is already exclusive.
pub async fn lock(tx: &mut Tx, org: OrgId, id: WorkstationId) -> DbResult<Option<Row>> {
    let sql = match tx.engine() {
        Engine::Postgres => format!("{SELECT} WHERE w.org_id = $1 AND w.id = $2 FOR UPDATE OF w"),
        Engine::Sqlite => format!("{SELECT} WHERE w.org_id = $1 AND w.id = $2"),
    };
    Ok(db_run!(tx tx, |c| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(c).await?))
}

/// Serialises one person's bookings on PostgreSQL (their account row, locked after the workstation's, always in
/// that order): two requests of the same person for two different seats cannot both pass the "one seat at a
/// time" check. `FOR NO KEY UPDATE` leaves foreign-key checks of other rows that point at the account alone.
pub async fn lock_account(tx: &mut Tx, account: AccountId) -> DbResult<()> {
    if tx.engine() == Engine::Postgres {
        db_run!(tx tx, |c| { sqlx::query("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE").bind(account).fetch_optional(c).await?; });
    }
    Ok(())
}

/// What a list may be narrowed to. `visible_to` restricts it to what an employee may see: the pool and their own.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub visible_to: Option<AccountId>,
    pub assignee: Option<AccountId>,
    pub status: Option<Status>,
    pub mode: Option<Mode>,
    pub protocol: Option<Protocol>,
    pub tag: Option<String>,
    /// Part of the hostname, address or location (case-insensitive).
    pub q: Option<String>,
    /// Keyset pagination: hostnames after this one.
    pub after: Option<String>,
}

/// `LIKE` pattern for "contains": the text's own `\`, `%` and `_` match only themselves.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Ordered by hostname (unique in the organisation), at most `limit`.
pub async fn list(db: &Db, org: OrgId, f: &Filter, limit: i64) -> DbResult<Vec<Row>> {
    Ok(db_run!(db, |p| {
        let mut qb = sqlx::QueryBuilder::new(SELECT);
        qb.push(" WHERE w.org_id = ").push_bind(org);
        if let Some(v) = f.visible_to {
            qb.push(" AND (w.mode = 'pooled' OR w.assigned_account_id = ").push_bind(v).push(")");
        }
        if let Some(a) = f.assignee {
            qb.push(" AND w.assigned_account_id = ").push_bind(a);
        }
        if let Some(s) = f.status {
            qb.push(" AND w.status = ").push_bind(s.as_str());
        }
        if let Some(m) = f.mode {
            qb.push(" AND w.mode = ").push_bind(m.as_str());
        }
        if let Some(pr) = f.protocol {
            qb.push(" AND w.protocol = ").push_bind(pr.as_str());
        }
        if let Some(t) = &f.tag {
            let pattern = format!("% {} %", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            qb.push(" AND w.tags LIKE ").push_bind(pattern).push(" ESCAPE '\\'");
        }
        if let Some(q) = &f.q {
            let pattern = contains_pattern(q);
            qb.push(" AND (lower(w.hostname) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
            qb.push(" OR lower(COALESCE(w.address, '')) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
            qb.push(" OR lower(COALESCE(w.location, '')) LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
        }
        if let Some(after) = &f.after {
            qb.push(" AND lower(w.hostname) > ").push_bind(after.to_lowercase());
        }
        qb.push(" ORDER BY lower(w.hostname) LIMIT ").push_bind(limit);
        qb.build_query_as::<Row>().fetch_all(p).await?
    }))
}

/// Every workstation of the organisation, by hostname (the export).
pub async fn all(db: &Db, org: OrgId) -> DbResult<Vec<Row>> {
    let sql = format!("{SELECT} WHERE w.org_id = $1 ORDER BY lower(w.hostname)");
    Ok(db_run!(db, |p| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(p).await?))
}

/// The hostnames already in the organisation (lowercase), to refuse an import's duplicates in one read.
pub async fn hostnames(tx: &mut Tx, org: OrgId) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db_run!(tx tx, |c| sqlx::query_as("SELECT lower(hostname) FROM workstations WHERE org_id = $1")
        .bind(org).fetch_all(c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn hostname_taken(tx: &mut Tx, org: OrgId, hostname: &str, except: Option<WorkstationId>) -> DbResult<bool> {
    let row: Option<(WorkstationId,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT id FROM workstations WHERE org_id = $1 AND lower(hostname) = lower($2)"
    ).bind(org).bind(hostname).fetch_optional(c).await?);
    Ok(row.is_some_and(|(id,)| Some(id) != except))
}

/// The members of the organisation by (lowercase) email: whom a workstation may be assigned to.
pub async fn members_by_email(tx: &mut Tx, org: OrgId) -> DbResult<HashMap<String, AccountId>> {
    let rows: Vec<(String, AccountId)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT DISTINCT a.email, a.id FROM accounts a JOIN memberships m ON m.account_id = a.id WHERE m.org_id = $1"
    ).bind(org).fetch_all(c).await?);
    Ok(rows.into_iter().map(|(e, id)| (e.to_lowercase(), id)).collect())
}

pub async fn member_by_email(tx: &mut Tx, org: OrgId, email: &str) -> DbResult<Option<AccountId>> {
    let row: Option<(AccountId,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT a.id FROM accounts a JOIN memberships m ON m.account_id = a.id WHERE m.org_id = $1 AND lower(a.email) = lower($2) LIMIT 1"
    ).bind(org).bind(email).fetch_optional(c).await?);
    Ok(row.map(|r| r.0))
}

/// As [`member_by_email`], outside a transaction.
pub async fn find_member(db: &Db, org: OrgId, email: &str) -> DbResult<Option<AccountId>> {
    let row: Option<(AccountId,)> = db_run!(db, |p| sqlx::query_as(
        "SELECT a.id FROM accounts a JOIN memberships m ON m.account_id = a.id WHERE m.org_id = $1 AND lower(a.email) = lower($2) LIMIT 1"
    ).bind(org).bind(email).fetch_optional(p).await?);
    Ok(row.map(|r| r.0))
}

/// A workstation to insert, with its resolved assignee.
pub struct Insert<'a> {
    pub id: WorkstationId,
    pub ws: &'a NewWorkstation,
    pub assignee: Option<AccountId>,
    pub probe_due_at: OffsetDateTime,
}

/// Inserts many rows in few statements (an import of thousands stays one quick transaction).
pub async fn insert(tx: &mut Tx, org: OrgId, rows: &[Insert<'_>], now: OffsetDateTime) -> DbResult<()> {
    // 17 parameters a row; 400 rows keep a statement well under both engines' parameter limits.
    for chunk in rows.chunks(400) {
        db_run!(tx tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO workstations (id, org_id, hostname, address, protocol, port, os, location, tags, mac, mode,
                 assigned_account_id, status, probe_due_at, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(org)
                    .push_bind(r.ws.hostname.as_string())
                    .push_bind(r.ws.address.map(|a| a.to_string()))
                    .push_bind(r.ws.protocol.as_str())
                    .push_bind(i64::from(r.ws.port))
                    .push_bind(r.ws.os.clone())
                    .push_bind(r.ws.location.clone())
                    .push_bind(r.ws.tags.to_column())
                    .push_bind(r.ws.mac.map(|m| m.to_string()))
                    .push_bind(r.ws.mode.as_str())
                    .push_bind(r.assignee)
                    .push_bind(Status::Unknown.as_str())
                    .push_bind(r.probe_due_at)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Rewrites the inventory fields of a workstation (not its reachability).
pub async fn update(tx: &mut Tx, org: OrgId, id: WorkstationId, ws: &NewWorkstation, assignee: Option<AccountId>, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "UPDATE workstations SET hostname = $1, address = $2, protocol = $3, port = $4, os = $5, location = $6, tags = $7,
         mac = $8, mode = $9, assigned_account_id = $10, updated_at = $11 WHERE org_id = $12 AND id = $13"
    )
    .bind(ws.hostname.as_string()).bind(ws.address.map(|a| a.to_string())).bind(ws.protocol.as_str()).bind(i64::from(ws.port))
    .bind(&ws.os).bind(&ws.location).bind(ws.tags.to_column()).bind(ws.mac.map(|m| m.to_string())).bind(ws.mode.as_str())
    .bind(assignee).bind(now).bind(org).bind(id)
    .execute(c).await?; });
    Ok(())
}

pub async fn set_assignee(tx: &mut Tx, org: OrgId, id: WorkstationId, assignee: Option<AccountId>, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("UPDATE workstations SET assigned_account_id = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(assignee).bind(now).bind(org).bind(id).execute(c).await?; });
    Ok(())
}

/// Deletes a workstation with its bookings and history; returns how many bookings still to come were dropped.
pub async fn delete(tx: &mut Tx, org: OrgId, id: WorkstationId, now: OffsetDateTime) -> DbResult<i64> {
    let (pending,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT COUNT(*) FROM workstation_bookings WHERE org_id = $1 AND workstation_id = $2 AND cancelled_at IS NULL AND ends_at > $3"
    ).bind(org).bind(id).bind(now).fetch_one(c).await?);
    db_run!(tx tx, |c| {
        sqlx::query("DELETE FROM workstation_bookings WHERE org_id = $1 AND workstation_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM workstation_probes WHERE org_id = $1 AND workstation_id = $2").bind(org).bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM workstations WHERE org_id = $1 AND id = $2").bind(org).bind(id).execute(&mut *c).await?;
    });
    Ok(pending)
}

// ---------------------------------------------------------------------------------------------------------------
// Bookings

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BookingRow {
    pub id: BookingId,
    pub org_id: OrgId,
    pub workstation_id: WorkstationId,
    pub hostname: String,
    pub account_id: AccountId,
    pub account_email: String,
    pub account_name: String,
    pub starts_at: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub cancelled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

const BOOKING_SELECT: &str = "SELECT b.id, b.org_id, b.workstation_id, w.hostname, b.account_id, a.email AS account_email,
    a.display_name AS account_name, b.starts_at, b.ends_at, b.cancelled_at, b.created_at
    FROM workstation_bookings b JOIN workstations w ON w.id = b.workstation_id JOIN accounts a ON a.id = b.account_id";

/// Slot boundaries as stored. SQLite compares instants as text, and every other stored instant (`clock::now()`)
/// has six fractional digits ending in an odd one: a slot boundary is stamped the same way (one microsecond past
/// the quarter hour) so that it compares correctly with them. Readers drop the microsecond again.
pub fn stored(t: OffsetDateTime) -> OffsetDateTime {
    agilekit_kernel::clock::stamp(t)
}

/// Whether a live booking of the workstation overlaps the slot.
pub async fn slot_taken(tx: &mut Tx, org: OrgId, ws: WorkstationId, slot: &Slot) -> DbResult<bool> {
    let row: Option<(BookingId,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT id FROM workstation_bookings WHERE org_id = $1 AND workstation_id = $2 AND cancelled_at IS NULL
         AND starts_at < $3 AND ends_at > $4 LIMIT 1"
    ).bind(org).bind(ws).bind(stored(slot.end)).bind(stored(slot.start)).fetch_optional(c).await?);
    Ok(row.is_some())
}

/// Whether the person holds another live booking in the organisation overlapping the slot.
pub async fn account_busy(tx: &mut Tx, org: OrgId, account: AccountId, slot: &Slot) -> DbResult<bool> {
    let row: Option<(BookingId,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT id FROM workstation_bookings WHERE org_id = $1 AND account_id = $2 AND cancelled_at IS NULL
         AND starts_at < $3 AND ends_at > $4 LIMIT 1"
    ).bind(org).bind(account).bind(stored(slot.end)).bind(stored(slot.start)).fetch_optional(c).await?);
    Ok(row.is_some())
}

pub async fn insert_booking(tx: &mut Tx, org: OrgId, id: BookingId, ws: WorkstationId, account: AccountId, slot: &Slot, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "INSERT INTO workstation_bookings (id, org_id, workstation_id, account_id, starts_at, ends_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ).bind(id).bind(org).bind(ws).bind(account).bind(stored(slot.start)).bind(stored(slot.end)).bind(now).execute(c).await?; });
    Ok(())
}

/// Live bookings of a workstation that end after `now`.
pub async fn pending_bookings(tx: &mut Tx, org: OrgId, ws: WorkstationId, now: OffsetDateTime) -> DbResult<i64> {
    let (n,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT COUNT(*) FROM workstation_bookings WHERE org_id = $1 AND workstation_id = $2 AND cancelled_at IS NULL AND ends_at > $3"
    ).bind(org).bind(ws).bind(now).fetch_one(c).await?);
    Ok(n)
}

pub async fn get_booking(tx: &mut Tx, org: OrgId, ws: WorkstationId, id: BookingId) -> DbResult<Option<BookingRow>> {
    let sql = format!("{BOOKING_SELECT} WHERE b.org_id = $1 AND b.workstation_id = $2 AND b.id = $3");
    Ok(db_run!(tx tx, |c| sqlx::query_as::<_, BookingRow>(sqlx::AssertSqlSafe(sql)).bind(org).bind(ws).bind(id).fetch_optional(c).await?))
}

pub async fn get_booking_db(db: &Db, org: OrgId, id: BookingId) -> DbResult<Option<BookingRow>> {
    let sql = format!("{BOOKING_SELECT} WHERE b.org_id = $1 AND b.id = $2");
    Ok(db_run!(db, |p| sqlx::query_as::<_, BookingRow>(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(p).await?))
}

pub async fn cancel_booking(tx: &mut Tx, org: OrgId, id: BookingId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| { sqlx::query("UPDATE workstation_bookings SET cancelled_at = $1 WHERE org_id = $2 AND id = $3 AND cancelled_at IS NULL")
        .bind(now).bind(org).bind(id).execute(c).await?; });
    Ok(())
}

/// Cancels the live bookings of a workstation that have not ended yet; returns how many.
pub async fn cancel_pending(tx: &mut Tx, org: OrgId, ws: WorkstationId, now: OffsetDateTime) -> DbResult<u64> {
    Ok(db_run!(tx tx, |c| sqlx::query(
        "UPDATE workstation_bookings SET cancelled_at = $1 WHERE org_id = $2 AND workstation_id = $3 AND cancelled_at IS NULL AND ends_at > $1"
    ).bind(now).bind(org).bind(ws).execute(c).await?.rows_affected()))
}

/// Which bookings to list: live ones ending after `from` and starting before `until`.
#[derive(Clone, Debug)]
pub struct BookingFilter {
    pub workstation: Option<WorkstationId>,
    pub account: Option<AccountId>,
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
}

pub async fn bookings(db: &Db, org: OrgId, f: &BookingFilter, limit: i64) -> DbResult<Vec<BookingRow>> {
    Ok(db_run!(db, |p| {
        let mut qb = sqlx::QueryBuilder::new(BOOKING_SELECT);
        qb.push(" WHERE b.org_id = ").push_bind(org);
        qb.push(" AND b.cancelled_at IS NULL AND b.ends_at > ").push_bind(f.from);
        qb.push(" AND b.starts_at < ").push_bind(stored(f.until));
        if let Some(w) = f.workstation {
            qb.push(" AND b.workstation_id = ").push_bind(w);
        }
        if let Some(a) = f.account {
            qb.push(" AND b.account_id = ").push_bind(a);
        }
        qb.push(" ORDER BY b.starts_at, w.hostname LIMIT ").push_bind(limit);
        qb.build_query_as::<BookingRow>().fetch_all(p).await?
    }))
}

/// Whether `account` holds a live booking of the workstation covering `now`.
pub async fn holds_now(db: &Db, org: OrgId, ws: WorkstationId, account: AccountId, now: OffsetDateTime) -> DbResult<bool> {
    let row: Option<(BookingId,)> = db_run!(db, |p| sqlx::query_as(
        "SELECT id FROM workstation_bookings WHERE org_id = $1 AND workstation_id = $2 AND account_id = $3
         AND cancelled_at IS NULL AND starts_at <= $4 AND ends_at > $4 LIMIT 1"
    ).bind(org).bind(ws).bind(account).bind(now).fetch_optional(p).await?);
    Ok(row.is_some())
}

// ---------------------------------------------------------------------------------------------------------------
// The availability board

/// The board's figures for one location (or the whole organisation when summed).
#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct BoardLine {
    /// The location; empty for workstations without one (and for the organisation's totals).
    pub location: String,
    pub total: i64,
    pub dedicated: i64,
    pub pooled: i64,
    /// Dedicated workstations with an assignee.
    pub assigned: i64,
    /// Pooled workstations with a booking running now.
    pub booked_now: i64,
    /// Pooled workstations with no booking now that the last probe did not find offline.
    pub free: i64,
    pub offline: i64,
    /// Not probed yet.
    pub unknown: i64,
}

/// One query: the figures per location; the caller sums them for the organisation.
pub async fn board(db: &Db, org: OrgId, now: OffsetDateTime) -> DbResult<Vec<BoardLine>> {
    Ok(db_run!(db, |p| sqlx::query_as::<_, BoardLine>(
        "SELECT COALESCE(w.location, '') AS location, COUNT(*) AS total,
           COALESCE(SUM(CASE WHEN w.mode = 'dedicated' THEN 1 ELSE 0 END), 0) AS dedicated,
           COALESCE(SUM(CASE WHEN w.mode = 'pooled' THEN 1 ELSE 0 END), 0) AS pooled,
           COALESCE(SUM(CASE WHEN w.assigned_account_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS assigned,
           COALESCE(SUM(CASE WHEN w.mode = 'pooled' AND b.workstation_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS booked_now,
           COALESCE(SUM(CASE WHEN w.mode = 'pooled' AND b.workstation_id IS NULL AND w.status <> 'offline' THEN 1 ELSE 0 END), 0) AS free,
           COALESCE(SUM(CASE WHEN w.status = 'offline' THEN 1 ELSE 0 END), 0) AS offline,
           COALESCE(SUM(CASE WHEN w.status = 'unknown' THEN 1 ELSE 0 END), 0) AS unknown
         FROM workstations w
         LEFT JOIN (SELECT DISTINCT workstation_id FROM workstation_bookings
                    WHERE org_id = $1 AND cancelled_at IS NULL AND starts_at <= $2 AND ends_at > $2) b ON b.workstation_id = w.id
         WHERE w.org_id = $1
         GROUP BY COALESCE(w.location, '') ORDER BY COALESCE(w.location, '')"
    ).bind(org).bind(now).fetch_all(p).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Reachability probes

/// A workstation claimed for probing.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProbeTarget {
    pub id: WorkstationId,
    pub org_id: OrgId,
    pub hostname: String,
    pub address: Option<String>,
    pub port: i64,
    pub status: String,
}

/// Claims up to `limit` workstations due for a probe at `now` and moves them to `next`: another node (or the next
/// pass of this one) does not take them again in this round. PostgreSQL skips rows another node is claiming;
/// SQLite's write transaction serialises claimers.
pub async fn claim_due(db: &Db, now: OffsetDateTime, next: OffsetDateTime, limit: i64) -> DbResult<Vec<ProbeTarget>> {
    let pick = match db.engine() {
        Engine::Postgres => "SELECT id FROM workstations WHERE probe_due_at <= $2 ORDER BY probe_due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "SELECT id FROM workstations WHERE probe_due_at <= $2 ORDER BY probe_due_at LIMIT $3",
    };
    let sql = format!(
        "UPDATE workstations SET probe_due_at = $1 WHERE id IN ({pick}) RETURNING id, org_id, hostname, address, port, status"
    );
    let mut tx = db.begin().await?;
    let rows = db_run!(tx &mut tx, |c| sqlx::query_as::<_, ProbeTarget>(sqlx::AssertSqlSafe(sql))
        .bind(next).bind(now).bind(limit).fetch_all(c).await?);
    tx.commit().await?;
    Ok(rows)
}

/// Claims one workstation of the organisation for a probe now (an admin's "probe now").
pub async fn claim_one(db: &Db, org: OrgId, id: WorkstationId, next: OffsetDateTime) -> DbResult<Option<ProbeTarget>> {
    let mut tx = db.begin().await?;
    let row = db_run!(tx &mut tx, |c| sqlx::query_as::<_, ProbeTarget>(
        "UPDATE workstations SET probe_due_at = $1 WHERE org_id = $2 AND id = $3 RETURNING id, org_id, hostname, address, port, status"
    ).bind(next).bind(org).bind(id).fetch_optional(c).await?);
    tx.commit().await?;
    Ok(row)
}

/// What one probe found.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub target: ProbeTarget,
    pub status: Status,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub at: OffsetDateTime,
}

/// Changes of status kept per workstation.
pub const HISTORY_KEEP: i64 = 100;

/// Writes a batch of results in one transaction: the status of each workstation, and a history entry where the
/// status changed (the history is bounded to the last [`HISTORY_KEEP`] changes).
pub async fn record(db: &Db, results: &[ProbeResult]) -> DbResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for r in results {
        let changed = r.target.status != r.status.as_str();
        db_run!(tx &mut tx, |c| {
            sqlx::query("UPDATE workstations SET status = $1, last_probe_at = $2, last_latency_ms = $3 WHERE id = $4")
                .bind(r.status.as_str()).bind(r.at).bind(r.latency_ms).bind(r.target.id).execute(&mut *c).await?;
            if changed {
                sqlx::query(
                    "INSERT INTO workstation_probes (id, org_id, workstation_id, at, status, latency_ms, error)
                     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM workstations WHERE id = $3)"
                )
                .bind(ProbeId::new()).bind(r.target.org_id).bind(r.target.id).bind(r.at).bind(r.status.as_str())
                .bind(r.latency_ms).bind(&r.error).execute(&mut *c).await?;
                sqlx::query(
                    "DELETE FROM workstation_probes WHERE workstation_id = $1 AND id NOT IN
                     (SELECT id FROM workstation_probes WHERE workstation_id = $1 ORDER BY at DESC LIMIT $2)"
                ).bind(r.target.id).bind(HISTORY_KEEP).execute(&mut *c).await?;
            }
        });
    }
    tx.commit().await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProbeRow {
    pub id: ProbeId,
    pub at: OffsetDateTime,
    pub status: String,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
}

/// The workstation's changes of status, newest first.
pub async fn history(db: &Db, org: OrgId, ws: WorkstationId, limit: i64) -> DbResult<Vec<ProbeRow>> {
    Ok(db_run!(db, |p| sqlx::query_as::<_, ProbeRow>(
        "SELECT id, at, status, latency_ms, error FROM workstation_probes WHERE org_id = $1 AND workstation_id = $2
         ORDER BY at DESC LIMIT $3"
    ).bind(org).bind(ws).bind(limit).fetch_all(p).await?))
}

/// Whether there is such an organisation.
pub async fn org_exists(db: &Db, org: OrgId) -> DbResult<bool> {
    let row: Option<(OrgId,)> = db_run!(db, |p| sqlx::query_as("SELECT id FROM organisations WHERE id = $1").bind(org).fetch_optional(p).await?);
    Ok(row.is_some())
}

/// Whether the organisation has the workstations service active (and the operator still offers it).
pub async fn service_active(db: &Db, org: OrgId) -> DbResult<bool> {
    let row: Option<(String, bool)> = db_run!(db, |p| sqlx::query_as(
        "SELECT s.state, v.available FROM subscriptions s JOIN services v ON v.key = s.service_key
         WHERE s.org_id = $1 AND s.service_key = 'workstations'"
    ).bind(org).fetch_optional(p).await?);
    Ok(row.is_some_and(|(state, available)| state == "active" && available))
}
