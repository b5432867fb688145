//! The rules of remote workstations: who may see, change, book and connect to what, in which state, in one
//! transaction with its audit entry. Handlers (pages and API) call only this.
//!
//! Who does what: an organisation's admins (and platform admins) manage the inventory, assignments and every
//! booking; its HR sees the inventory, bookings, history and board without changing them; every member with the
//! service's entitlement sees the pool and their own workstations, books pooled seats for themselves, cancels their
//! bookings, and connects to (or wakes) the workstation assigned to them or booked by them now.

use std::collections::HashSet;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock, tenancy};
use serde::Serialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::csvio::{self, RowError};
use crate::handoff;
use crate::model::{BookingId, Mode, NewWorkstation, Protocol, Slot, Status, Tags, WorkstationId, WorkstationInput, codes};
use crate::store::{self, BoardLine, BookingFilter, BookingRow, Filter, Insert, Row};
use crate::Runtime;

const QUOTA: &str = "workstations";

// ---------------------------------------------------------------------------------------------------------------
// Views

/// The member a dedicated workstation belongs to.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Assignee {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
}

/// A workstation of the inventory.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Workstation {
    pub id: WorkstationId,
    pub org_id: OrgId,
    pub hostname: String,
    pub address: Option<String>,
    pub protocol: Protocol,
    pub port: u16,
    pub os: Option<String>,
    pub location: Option<String>,
    pub tags: Vec<String>,
    pub mac: Option<String>,
    pub mode: Mode,
    pub assignee: Option<Assignee>,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_probe_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<Row> for Workstation {
    fn from(r: Row) -> Self {
        let (protocol, mode, status, port) = (r.protocol(), r.mode(), r.status(), r.port());
        let assignee = match (r.assigned_account_id, r.assignee_email, r.assignee_name) {
            (Some(id), Some(email), Some(display_name)) => Some(Assignee { id, email, display_name }),
            _ => None,
        };
        Workstation {
            id: r.id, org_id: r.org_id, hostname: r.hostname, address: r.address, protocol, port, os: r.os,
            location: r.location, tags: Tags::from_column(&r.tags), mac: r.mac, mode, assignee, status,
            last_probe_at: r.last_probe_at, last_latency_ms: r.last_latency_ms, created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One page of a list; `next` is the cursor (`after`) of the following page, absent on the last.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub items: Vec<Workstation>,
    pub next: Option<String>,
}

/// A booking of a pooled workstation. Who holds it is shown to its holder and to those who see every booking.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: BookingId,
    pub workstation_id: WorkstationId,
    pub hostname: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<OffsetDateTime>,
    /// The caller holds it.
    pub mine: bool,
    pub account: Option<Assignee>,
}

/// Slot boundaries are stored one microsecond past the quarter hour (see [`store::stored`]); shown without it.
fn slot_time(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn booking_view(b: BookingRow, me: AccountId, see_holder: bool) -> Booking {
    let mine = b.account_id == me;
    Booking {
        id: b.id, workstation_id: b.workstation_id, hostname: b.hostname, starts_at: slot_time(b.starts_at),
        ends_at: slot_time(b.ends_at), cancelled_at: b.cancelled_at, mine,
        account: (mine || see_holder).then_some(Assignee { id: b.account_id, email: b.account_email, display_name: b.account_name }),
    }
}

/// The availability board of an organisation: its totals, and the same figures per location.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub totals: BoardLine,
    pub locations: Vec<BoardLine>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// A change of a workstation's reachability.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProbeEntry {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub status: Status,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
}

/// What became of an import: how many workstations were created, or why none was.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    pub imported: usize,
    /// At most [`csvio::MAX_REPORTED`], by row.
    pub errors: Vec<RowError>,
    /// How many problems there were in all.
    pub error_count: usize,
}

// ---------------------------------------------------------------------------------------------------------------
// Who may do what

/// What the caller may do with an organisation's workstations.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub account: AccountId,
    /// Change the inventory, assignments and anyone's bookings.
    pub manage: bool,
    /// See the whole inventory, every booking, the history and the board.
    pub view_all: bool,
    /// A member of the organisation (may book and hold workstations).
    pub member: bool,
}

impl Access {
    pub fn require_manage(&self) -> Result<()> {
        if self.manage { Ok(()) } else { Err(Error::Forbidden) }
    }
    pub fn require_view_all(&self) -> Result<()> {
        if self.view_all { Ok(()) } else { Err(Error::Forbidden) }
    }
}

/// Someone with no business in the organisation gets 404, as for one that does not exist; a member of an
/// organisation without the service (or with its entitlement withdrawn) gets 403.
pub async fn access(db: &Db, p: &Principal, org: OrgId) -> Result<Access> {
    if !(p.platform_admin || p.is_member(org)) {
        return Err(Error::NotFound);
    }
    if !store::service_active(db, org).await? {
        // A platform admin may name any organisation: one that does not exist is not found, as for anyone.
        if !p.is_member(org) && !store::org_exists(db, org).await? {
            return Err(Error::NotFound);
        }
        return Err(Error::Forbidden);
    }
    let member = p.is_member(org);
    let (manage, view_all) = (p.can_admin_org(org), p.can_view_org(org));
    if !view_all {
        // A plain member: the kernel decides whether the account may use the service here.
        match catalogue::entitlement(db, p.id(), org, Service::Workstations).await? {
            Ok(_) => {}
            Err(catalogue::Denied::NotMember) => return Err(Error::NotFound),
            Err(_) => return Err(Error::Forbidden),
        }
    }
    Ok(Access { account: p.id(), manage, view_all, member })
}

/// Whether `a` may see this workstation: all of them for admins and HR, the pool and their own for members.
fn visible(a: &Access, r: &Row) -> bool {
    a.view_all || r.mode() == Mode::Pooled || r.assigned_account_id == Some(a.account)
}

async fn visible_row(db: &Db, a: &Access, org: OrgId, id: WorkstationId) -> Result<Row> {
    match store::get(db, org, id).await? {
        Some(r) if visible(a, &r) => Ok(r),
        _ => Err(Error::NotFound),
    }
}

/// May connect to (or wake) the workstation: its admins, its assignee, the holder of a booking running now.
async fn may_use(db: &Db, a: &Access, r: &Row) -> Result<()> {
    if a.manage || r.assigned_account_id == Some(a.account) {
        return Ok(());
    }
    if store::holds_now(db, r.org_id, r.id, a.account, clock::now()).await? {
        return Ok(());
    }
    // Someone who may see the workstation but holds no booking now is told no; others learn nothing.
    if visible(a, r) { Err(Error::Forbidden) } else { Err(Error::NotFound) }
}

// ---------------------------------------------------------------------------------------------------------------
// Inventory

fn audit_json(ws: &NewWorkstation, assignee: Option<AccountId>) -> serde_json::Value {
    json!({
        "hostname": ws.hostname.as_string(), "address": ws.address.map(|a| a.to_string()), "protocol": ws.protocol.as_str(),
        "port": ws.port, "os": ws.os, "location": ws.location, "tags": ws.tags.as_slice(),
        "mac": ws.mac.map(|m| m.to_string()), "mode": ws.mode.as_str(), "assignee": assignee,
    })
}

fn row_json(r: &Row) -> serde_json::Value {
    json!({
        "hostname": r.hostname, "address": r.address, "protocol": r.protocol, "port": r.port, "os": r.os,
        "location": r.location, "tags": Tags::from_column(&r.tags), "mac": r.mac, "mode": r.mode,
        "assignee": r.assigned_account_id,
    })
}

/// A store-level uniqueness refusal (two admins adding the same hostname at once) is the same field error as the
/// check before it.
fn taken_on_conflict(e: agilekit_kernel::db::DbError) -> Error {
    match e {
        agilekit_kernel::db::DbError::Conflict(_) => FieldErrors::one("hostname", codes::TAKEN),
        other => other.into(),
    }
}

async fn resolve_assignee(tx: &mut agilekit_kernel::Tx, org: OrgId, ws: &NewWorkstation, errors: &mut FieldErrors) -> Result<Option<AccountId>> {
    let Some(email) = &ws.assignee else { return Ok(None) };
    let found = store::member_by_email(tx, org, email).await?;
    if found.is_none() {
        errors.add("assignee", codes::NOT_MEMBER);
    }
    Ok(found)
}

pub async fn list(db: &Db, p: &Principal, org: OrgId, mut f: Filter, limit: i64) -> Result<Page> {
    let a = access(db, p, org).await?;
    if !a.view_all {
        f.visible_to = Some(a.account);
    }
    let limit = limit.clamp(1, 500);
    let rows = store::list(db, org, &f, limit + 1).await?;
    let shown = usize::try_from(limit).unwrap_or(500);
    let more = rows.len() > shown;
    let items: Vec<Workstation> = rows.into_iter().take(shown).map(Workstation::from).collect();
    let next = if more { items.last().map(|w| w.hostname.clone()) } else { None };
    Ok(Page { items, next })
}

pub async fn get(db: &Db, p: &Principal, org: OrgId, id: WorkstationId) -> Result<Workstation> {
    let a = access(db, p, org).await?;
    Ok(visible_row(db, &a, org, id).await?.into())
}

pub async fn create(db: &Db, actor: &Actor, p: &Principal, org: OrgId, input: &WorkstationInput) -> Result<Workstation> {
    access(db, p, org).await?.require_manage()?;
    let ws = input.parse().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let mut errors = FieldErrors::new();
    if store::hostname_taken(&mut tx, org, &ws.hostname.as_string(), None).await? {
        errors.add("hostname", codes::TAKEN);
    }
    let assignee = resolve_assignee(&mut tx, org, &ws, &mut errors).await?;
    errors.into_result()?;
    catalogue::consume_in(&mut tx, org, Service::Workstations, QUOTA, 1).await?;
    let id = WorkstationId::new();
    let now = clock::now();
    store::insert(&mut tx, org, &[Insert { id, ws: &ws, assignee, probe_due_at: now }], now).await.map_err(taken_on_conflict)?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.create", entity: "workstation", entity_id: id.to_string(),
        before: None, after: Some(audit_json(&ws, assignee)),
    }).await?;
    tx.commit().await?;
    Ok(store::get(db, org, id).await?.ok_or(Error::NotFound)?.into())
}

pub async fn update(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId, input: &WorkstationInput) -> Result<Workstation> {
    access(db, p, org).await?.require_manage()?;
    let ws = input.parse().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let before = store::lock(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let mut errors = FieldErrors::new();
    if store::hostname_taken(&mut tx, org, &ws.hostname.as_string(), Some(id)).await? {
        errors.add("hostname", codes::TAKEN);
    }
    let now = clock::now();
    if before.mode() == Mode::Pooled && ws.mode == Mode::Dedicated && store::pending_bookings(&mut tx, org, id, now).await? > 0 {
        errors.add("mode", codes::HAS_BOOKINGS);
    }
    let assignee = resolve_assignee(&mut tx, org, &ws, &mut errors).await?;
    errors.into_result()?;
    store::update(&mut tx, org, id, &ws, assignee, now).await.map_err(taken_on_conflict)?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.update", entity: "workstation", entity_id: id.to_string(),
        before: Some(row_json(&before)), after: Some(audit_json(&ws, assignee)),
    }).await?;
    tx.commit().await?;
    Ok(store::get(db, org, id).await?.ok_or(Error::NotFound)?.into())
}

/// Deletes a workstation; its bookings still to come go with it (the audit entry says how many), and its unit
/// of the quota is given back.
pub async fn delete(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId) -> Result<()> {
    access(db, p, org).await?.require_manage()?;
    let mut tx = db.begin().await?;
    let before = store::lock(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let now = clock::now();
    let dropped = store::delete(&mut tx, org, id, now).await?;
    catalogue::release_in(&mut tx, org, Service::Workstations, QUOTA, 1).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.delete", entity: "workstation", entity_id: id.to_string(),
        before: Some(row_json(&before)), after: Some(json!({"bookings_dropped": dropped})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// Assigns a dedicated workstation to a member of the organisation (by email), or frees it (`None`).
pub async fn assign(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId, email: Option<&str>) -> Result<Workstation> {
    access(db, p, org).await?.require_manage()?;
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    let mut tx = db.begin().await?;
    let before = store::lock(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let account = match email {
        None => None,
        Some(e) => {
            if before.mode() != Mode::Dedicated {
                return Err(FieldErrors::one("assignee", codes::NOT_DEDICATED));
            }
            Some(store::member_by_email(&mut tx, org, e).await?.ok_or_else(|| FieldErrors::one("assignee", codes::NOT_MEMBER))?)
        }
    };
    store::set_assignee(&mut tx, org, id, account, clock::now()).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.assign", entity: "workstation", entity_id: id.to_string(),
        before: Some(json!({"assignee": before.assigned_account_id})), after: Some(json!({"assignee": account})),
    }).await?;
    tx.commit().await?;
    Ok(store::get(db, org, id).await?.ok_or(Error::NotFound)?.into())
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

/// Imports a CSV file in one transaction: every row, or none when any row has a problem (a bad field, a
/// hostname repeated in the file or already in the organisation, an assignee who is not a member). One audit
/// entry records the import.
pub async fn import_csv(db: &Db, actor: &Actor, p: &Principal, org: OrgId, bytes: &[u8]) -> Result<ImportReport> {
    access(db, p, org).await?.require_manage()?;
    let (rows, mut errors) = csvio::read(bytes);
    let mut tx = db.begin().await?;
    if !rows.is_empty() {
        let existing: HashSet<String> = store::hostnames(&mut tx, org).await?.into_iter().collect();
        let members = if rows.iter().any(|r| r.ws.assignee.is_some()) { store::members_by_email(&mut tx, org).await? } else { Default::default() };
        for r in &rows {
            if existing.contains(&r.ws.hostname.as_string()) {
                errors.push(RowError { row: r.row, column: "hostname".into(), code: codes::TAKEN.into() });
            }
            if let Some(email) = &r.ws.assignee
                && !members.contains_key(email)
            {
                errors.push(RowError { row: r.row, column: "assignee".into(), code: codes::NOT_MEMBER.into() });
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        let error_count = errors.len();
        errors.truncate(csvio::MAX_REPORTED);
        return Ok(ImportReport { imported: 0, errors, error_count });
    }
    let members = if rows.iter().any(|r| r.ws.assignee.is_some()) { store::members_by_email(&mut tx, org).await? } else { Default::default() };
    let n = rows.len();
    // At most `csvio::MAX_ROWS` rows: the count always fits.
    catalogue::consume_in(&mut tx, org, Service::Workstations, QUOTA, i64::try_from(n).unwrap_or(i64::MAX)).await?;
    let now = clock::now();
    let inserts: Vec<Insert<'_>> = rows
        .iter()
        .map(|r| Insert {
            id: WorkstationId::new(),
            ws: &r.ws,
            assignee: r.ws.assignee.as_ref().and_then(|e| members.get(e).copied()),
            probe_due_at: now,
        })
        .collect();
    store::insert(&mut tx, org, &inserts, now).await.map_err(taken_on_conflict)?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.import", entity: "workstation", entity_id: org.to_string(),
        before: None, after: Some(json!({"rows": n})),
    }).await?;
    tx.commit().await?;
    Ok(ImportReport { imported: n, errors: Vec::new(), error_count: 0 })
}

/// The inventory as CSV (the import's columns) and a file name for it.
pub async fn export_csv(db: &Db, p: &Principal, org: OrgId) -> Result<(String, Vec<u8>)> {
    access(db, p, org).await?.require_view_all()?;
    let o = tenancy::get(db, org).await?;
    let rows: Vec<csvio::ExportRow> = store::all(db, org)
        .await?
        .into_iter()
        .map(|r| {
            [
                r.hostname.clone(), r.address.clone().unwrap_or_default(), r.protocol.clone(), r.port.to_string(),
                r.os.clone().unwrap_or_default(), r.location.clone().unwrap_or_default(), Tags::from_column(&r.tags).join(" "),
                r.mac.clone().unwrap_or_default(), r.mode.clone(), r.assignee_email.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok((format!("workstations-{}.csv", o.ipa_code), csvio::write(&rows)))
}

// ---------------------------------------------------------------------------------------------------------------
// Bookings

/// A booking as asked: the slot's ends as RFC 3339 text, and (admins only) the email of the member to book for.
#[derive(Clone, Copy, Debug, Default)]
pub struct BookRequest<'a> {
    pub starts_at: &'a str,
    pub ends_at: &'a str,
    pub account: Option<&'a str>,
}

/// Books a pooled workstation for a slot: for the caller, or (admins) for the member the request names.
/// No two live bookings of a workstation overlap, however many arrive at once: the check and the insert happen
/// with the workstation's row locked (PostgreSQL) or under the write lock (SQLite).
pub async fn book(
    db: &Db,
    actor: &Actor,
    p: &Principal,
    org: OrgId,
    id: WorkstationId,
    req: BookRequest<'_>,
) -> Result<Booking> {
    let a = access(db, p, org).await?;
    let (starts_at, ends_at) = (req.starts_at, req.ends_at);
    let for_email = req.account.map(str::trim).filter(|e| !e.is_empty());
    if for_email.is_some() {
        a.require_manage()?;
    } else if !a.member {
        // A platform admin from outside the organisation has no seat to hold.
        return Err(Error::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let start = errors.check_code("starts_at", crate::model::parse_instant(starts_at));
    let end = errors.check_code("ends_at", crate::model::parse_instant(ends_at));
    let now = clock::now();
    let (Some(start), Some(end)) = (start, end) else { return Err(Error::Invalid(errors)) };
    let slot = Slot::parse(start, end, now).map_err(Error::Invalid)?;

    // Resolved before the transaction: a second connection taken while holding SQLite's write lock could wait for
    // a pool slot held by writers queued behind that lock.
    let holder = match for_email {
        Some(email) => {
            let acc = store::find_member(db, org, email).await?.ok_or_else(|| FieldErrors::one("account", codes::NOT_MEMBER))?;
            if catalogue::entitlement(db, acc, org, Service::Workstations).await?.is_err() {
                return Err(FieldErrors::one("account", codes::NOT_MEMBER));
            }
            acc
        }
        None => a.account,
    };
    let mut tx = db.begin().await?;
    let ws = match store::lock(&mut tx, org, id).await? {
        Some(r) if visible(&a, &r) => r,
        _ => return Err(Error::NotFound),
    };
    if ws.mode() != Mode::Pooled {
        return Err(Error::Conflict(codes::NOT_POOLED));
    }
    if store::slot_taken(&mut tx, org, id, &slot).await? {
        return Err(FieldErrors::one("starts_at", codes::SLOT_TAKEN));
    }
    store::lock_account(&mut tx, holder).await?;
    if store::account_busy(&mut tx, org, holder, &slot).await? {
        return Err(FieldErrors::one("starts_at", codes::ALREADY_BOOKED));
    }
    let bid = BookingId::new();
    store::insert_booking(&mut tx, org, bid, id, holder, &slot, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.book", entity: "workstation_booking", entity_id: bid.to_string(),
        before: None,
        after: Some(json!({"workstation": id, "hostname": ws.hostname, "account": holder,
            "starts_at": slot.start.unix_timestamp(), "ends_at": slot.end.unix_timestamp()})),
    }).await?;
    let row = store::get_booking(&mut tx, org, id, bid).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(booking_view(row, a.account, a.view_all))
}

/// Cancels a booking that has not ended: its holder, or an admin.
pub async fn cancel(db: &Db, actor: &Actor, p: &Principal, org: OrgId, ws: WorkstationId, id: BookingId) -> Result<Booking> {
    let a = access(db, p, org).await?;
    let mut tx = db.begin().await?;
    let b = store::get_booking(&mut tx, org, ws, id).await?.ok_or(Error::NotFound)?;
    if b.account_id != a.account && !a.manage {
        return Err(if a.view_all { Error::Forbidden } else { Error::NotFound });
    }
    let now = clock::now();
    if b.cancelled_at.is_some() {
        return Err(Error::Conflict("booking-cancelled"));
    }
    if b.ends_at <= now {
        return Err(Error::Conflict("booking-ended"));
    }
    store::cancel_booking(&mut tx, org, id, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.cancel_booking", entity: "workstation_booking", entity_id: id.to_string(),
        before: Some(json!({"cancelled_at": null})), after: Some(json!({"cancelled": true, "workstation": ws})),
    }).await?;
    let row = store::get_booking(&mut tx, org, ws, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(booking_view(row, a.account, a.view_all))
}

/// The longest window a booking list covers.
pub const MAX_WINDOW_DAYS: i64 = 62;

/// Live bookings in a window (default: from now for 14 days). For one workstation: its bookings (holders shown to
/// those who see every booking). For the organisation: every booking for admins and HR, the caller's own for
/// members.
pub async fn bookings(
    db: &Db,
    p: &Principal,
    org: OrgId,
    ws: Option<WorkstationId>,
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    mine: bool,
) -> Result<Vec<Booking>> {
    let a = access(db, p, org).await?;
    if let Some(id) = ws {
        visible_row(db, &a, org, id).await?;
    }
    let from = from.unwrap_or_else(clock::now);
    let until = match until {
        Some(u) => u,
        None => from.checked_add(Duration::days(14)).ok_or_else(|| FieldErrors::one("from", codes::OUT_OF_RANGE))?,
    };
    if until <= from {
        return Err(FieldErrors::one("until", codes::BEFORE_START));
    }
    if until - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(FieldErrors::one("until", codes::SLOT_TOO_LONG));
    }
    let account = if mine || (ws.is_none() && !a.view_all) { Some(a.account) } else { None };
    let rows = store::bookings(db, org, &BookingFilter { workstation: ws, account, from, until }, 2000).await?;
    Ok(rows.into_iter().map(|b| booking_view(b, a.account, a.view_all)).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Board, reachability, hand-off

pub async fn board(db: &Db, p: &Principal, org: OrgId) -> Result<Board> {
    access(db, p, org).await?.require_view_all()?;
    let now = clock::now();
    let locations = store::board(db, org, now).await?;
    let mut totals = BoardLine::default();
    for l in &locations {
        totals.total += l.total;
        totals.dedicated += l.dedicated;
        totals.pooled += l.pooled;
        totals.assigned += l.assigned;
        totals.booked_now += l.booked_now;
        totals.free += l.free;
        totals.offline += l.offline;
        totals.unknown += l.unknown;
    }
    Ok(Board { totals, locations, at: now })
}

pub async fn history(db: &Db, p: &Principal, org: OrgId, id: WorkstationId) -> Result<Vec<ProbeEntry>> {
    let a = access(db, p, org).await?;
    a.require_view_all()?;
    visible_row(db, &a, org, id).await?;
    Ok(store::history(db, org, id, store::HISTORY_KEEP)
        .await?
        .into_iter()
        .map(|h| ProbeEntry { at: h.at, status: Status::parse(&h.status).unwrap_or(Status::Unknown), latency_ms: h.latency_ms, error: h.error })
        .collect())
}

/// Probes one workstation now (admins), records the result and returns the workstation.
pub async fn probe_now(db: &Db, rt: &Runtime, p: &Principal, org: OrgId, id: WorkstationId) -> Result<Workstation> {
    access(db, p, org).await?.require_manage()?;
    let now = clock::now();
    let target = store::claim_one(db, org, id, now + rt.probe.interval_or_default()).await?.ok_or(Error::NotFound)?;
    let result = crate::probe::probe(target, rt.probe.timeout).await;
    store::record(db, std::slice::from_ref(&result)).await?;
    Ok(store::get(db, org, id).await?.ok_or(Error::NotFound)?.into())
}

/// Sends the Wake-on-LAN packet for a workstation (its admins, assignee, or current booking holder).
pub async fn wake(db: &Db, rt: &Runtime, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId) -> Result<()> {
    let a = access(db, p, org).await?;
    let r = store::get(db, org, id).await?.ok_or(Error::NotFound)?;
    may_use(db, &a, &r).await?;
    let mac = r.mac.as_deref().and_then(|m| crate::model::Mac::parse(m).ok()).ok_or(Error::Conflict("no-mac"))?;
    if let Err(e) = handoff::wake(mac, rt.wol_target).await {
        tracing::warn!(error = %e, target = %rt.wol_target, "wake-on-lan packet not sent");
        return Err(Error::Upstream("wake-on-lan-failed"));
    }
    let mut tx = db.begin().await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.wake", entity: "workstation", entity_id: id.to_string(),
        before: None, after: Some(json!({"mac": mac.to_string(), "target": rt.wol_target.to_string()})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

async fn record_connect(db: &Db, actor: &Actor, org: OrgId, id: WorkstationId, via: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "workstation.connect", entity: "workstation", entity_id: id.to_string(),
        before: None, after: Some(json!({"via": via})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// The `.rdp` file of an RDP workstation and its file name. Handing someone the way in is recorded.
pub async fn rdp_file(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId) -> Result<(String, String)> {
    let a = access(db, p, org).await?;
    let r = store::get(db, org, id).await?.ok_or(Error::NotFound)?;
    may_use(db, &a, &r).await?;
    if r.protocol() != Protocol::Rdp {
        return Err(Error::Conflict("not-rdp"));
    }
    let host = handoff::target_host(&r.hostname, r.address.as_deref());
    let file = handoff::rdp_file(&host, r.port(), &p.account.email);
    record_connect(db, actor, org, id, "rdp").await?;
    Ok((format!("{}.rdp", r.hostname), file))
}

/// How long a Guacamole link stays valid: it is for opening now.
pub const GUACAMOLE_LINK_MINUTES: i64 = 5;

/// A link that signs the caller in to the configured Guacamole gateway with just this workstation.
pub async fn guacamole_link(db: &Db, rt: &Runtime, actor: &Actor, p: &Principal, org: OrgId, id: WorkstationId) -> Result<(String, OffsetDateTime)> {
    let a = access(db, p, org).await?;
    let r = store::get(db, org, id).await?.ok_or(Error::NotFound)?;
    may_use(db, &a, &r).await?;
    let Some(g) = &rt.guacamole else { return Err(Error::Conflict("guacamole-not-configured")) };
    let host = handoff::target_host(&r.hostname, r.address.as_deref());
    let expires = clock::now() + Duration::minutes(GUACAMOLE_LINK_MINUTES);
    let expires_ms = i64::try_from(expires.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let conn = handoff::Connection { name: &r.hostname, protocol: r.protocol(), host: &host, port: r.port() };
    let link = g.link(&p.account.email, &conn, expires_ms);
    record_connect(db, actor, org, id, "guacamole").await?;
    Ok((link, expires))
}

/// Whether the caller may use the service in the organisation at all (for pages that show or hide it).
pub async fn can_use(db: &Db, p: &Principal, org: OrgId) -> bool {
    access(db, p, org).await.is_ok()
}

trait CheckCode {
    fn check_code<T>(&mut self, field: &str, r: std::result::Result<T, &'static str>) -> Option<T>;
}

impl CheckCode for FieldErrors {
    fn check_code<T>(&mut self, field: &str, r: std::result::Result<T, &'static str>) -> Option<T> {
        r.map_err(|c| self.add(field, c)).ok()
    }
}
