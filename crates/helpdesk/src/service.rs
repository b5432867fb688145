//! Tickets: the rules. Who may see and do what (requesters their own tickets and public replies; the
//! organisation's agents and admins its whole queue, notes included; the operator's agents only what was escalated
//! to them), the states and the two SLA clocks each change moves, audit and mail to the requester in the same
//! transaction. Functions that change a ticket take `now`, so the SLA arithmetic can be driven with set instants.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Denied, Service};
use agilekit_kernel::db::{Db, Tx};
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::mail::{self, Mail};
use agilekit_kernel::{Error, FieldErrors, Result, clock, tenancy};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::calendar::BusinessCalendar;
use crate::model::{
    self, Category, MessageId, MessageKind, Priority, Queue, REOPEN_DAYS, State, TicketId, parse_body, parse_priority,
    parse_subject, parse_tags, reference,
};
use crate::sla::{Clock, ClockState, Policy};
use crate::store::{self, Filter, MessageRow, TicketRow};

/// The most tickets one page returns.
pub const PAGE_MAX: i64 = 100;

// ---------------------------------------------------------------------------------------------------------------
// Views

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClockView {
    /// `running`, `paused` or `stopped`.
    pub state: String,
    pub target_secs: i64,
    /// Business seconds used up to now.
    pub used_secs: i64,
    /// When the target runs out at the current pace (none once stopped).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<OffsetDateTime>,
    pub breached: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SlaView {
    pub first_response: ClockView,
    pub resolution: ClockView,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: TicketId,
    pub org_id: OrgId,
    pub number: i64,
    /// "#123".
    pub reference: String,
    pub requester_id: AccountId,
    pub requester_name: String,
    pub category: Category,
    pub subject: String,
    pub priority: String,
    pub state: State,
    pub queue: Queue,
    pub assignee_id: Option<AccountId>,
    /// Set once merged: the ticket this one continues in.
    pub merged_into: Option<TicketId>,
    pub tags: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_response_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<OffsetDateTime>,
    pub sla: SlaView,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub kind: MessageKind,
    pub author_id: Option<AccountId>,
    pub author_name: Option<String>,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The message's files (download: `…/tickets/{ticket}/attachments/{id}`).
    pub attachments: Vec<crate::attachments::Attachment>,
}

/// A ticket with its thread (internal notes only for agents).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub messages: Vec<Message>,
    /// Agents following the ticket (empty for the requester).
    pub watchers: Vec<Watcher>,
    /// What the caller may do here: `agent` (the organisation's agents and admins), `operator` (the operator's
    /// second level, on an escalated ticket) or `requester`.
    pub role: String,
    /// The requester's satisfaction answer, once given (see [`crate::survey`]).
    pub satisfaction: Option<crate::survey::Satisfaction>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Watcher {
    pub account_id: AccountId,
    pub name: String,
}

/// One page of a queue. `next` is the cursor of the following page, absent on the last one.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TicketPage {
    pub items: Vec<Ticket>,
    pub next: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct NewTicket {
    /// vpn, workstation, meetings, elearning, account, other.
    pub category: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BodyInput {
    pub body: String,
}

/// A new ticket with files (the API's and the pages' input; [`NewTicket`] without files).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct NewTicketInput {
    /// vpn, workstation, meetings, elearning, account, other.
    pub category: String,
    pub subject: String,
    pub body: String,
    /// Ids of files the caller uploaded (`POST …/helpdesk/files`) and has not attached yet; at most 10.
    pub attachments: Vec<String>,
}

impl NewTicketInput {
    pub fn split(&self) -> (NewTicket, &[String]) {
        (NewTicket { category: self.category.clone(), subject: self.subject.clone(), body: self.body.clone() }, &self.attachments)
    }
}

/// A reply or a note with files ([`BodyInput`] without files).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MessageInput {
    pub body: String,
    /// Ids of files the caller uploaded (`POST …/helpdesk/files`) and has not attached yet; at most 10.
    pub attachments: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct StateInput {
    /// open, pending, resolved, closed.
    pub state: String,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AssignInput {
    /// An agent of the queue, or null to unassign (ignored with `round_robin`).
    pub assignee: Option<String>,
    /// Give the ticket to the queue's next agent in turn.
    pub round_robin: bool,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PriorityInput {
    /// low, normal, high, urgent.
    pub priority: String,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct EscalateInput {
    /// Why: kept as an internal note the operator's agents read.
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TagsInput {
    pub tags: Vec<String>,
}

/// Queue filters as the query string gives them; parsed here into field errors.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub struct ListQuery {
    pub state: Option<String>,
    pub category: Option<String>,
    pub priority: Option<String>,
    /// An account id, or `me`.
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// `org` or `operator` (escalated).
    pub queue: Option<String>,
    /// `true`: only the tickets the caller opened.
    pub mine: Option<String>,
    /// Full-text search of the subject and the messages, internal notes included: agents only (403 otherwise).
    /// Plain words, all of which must match (Italian stemming on PostgreSQL, word prefixes on SQLite); at most 200
    /// characters.
    pub q: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// 1..=100, default 25.
    pub limit: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub count: i64,
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

/// The organisation's SLA targets and business calendar as its admins set them (`crate::settings`; the defaults,
/// Monday to Friday 9–13 and 14–18 with `Policy::default`, until they do), read afresh in the caller's transaction.
async fn settings(tx: &mut Tx, org: OrgId) -> Result<(Policy, BusinessCalendar)> {
    let s = crate::settings::load_in(tx, org).await?;
    Ok((s.policy, s.calendar))
}

/// The organisation's business calendar, to show a ticket's clocks.
async fn calendar(db: &Db, org: OrgId) -> Result<BusinessCalendar> {
    Ok(crate::settings::load(db, org).await?.calendar)
}

// ---------------------------------------------------------------------------------------------------------------
// Access

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// An agent or admin of the ticket's organisation.
    Staff,
    /// An agent of the operator, on a ticket escalated to the second level.
    Operator,
    Requester,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Access::Staff => "agent",
            Access::Operator => "operator",
            Access::Requester => "requester",
        }
    }
    fn is_agent(self) -> bool {
        self != Access::Requester
    }
}

fn is_staff(p: &Principal, org: OrgId) -> bool {
    p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin)
}

async fn operator_org(db: &Db) -> Result<Option<OrgId>> {
    Ok(tenancy::operator(db).await?.map(|o| o.id))
}

async fn is_operator_agent(db: &Db, p: &Principal) -> Result<bool> {
    Ok(operator_org(db).await?.is_some_and(|op| p.has(op, Role::Agent)))
}

/// What the caller is to this ticket; someone with no business with it learns nothing (404).
async fn access(db: &Db, p: &Principal, t: &TicketRow) -> Result<Access> {
    if is_staff(p, t.org_id) {
        Ok(Access::Staff)
    } else if t.queue == Queue::Operator.as_str() && is_operator_agent(db, p).await? {
        Ok(Access::Operator)
    } else if t.requester_id == p.id() {
        Ok(Access::Requester)
    } else {
        Err(Error::NotFound)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Clocks as stored

fn clock_state(name: &str, since: OffsetDateTime) -> ClockState {
    match name {
        "paused" => ClockState::Paused { since },
        "stopped" => ClockState::Stopped { at: since },
        _ => ClockState::Running { since },
    }
}

fn clock_parts(c: &Clock) -> (i64, i64, &'static str, OffsetDateTime, Option<OffsetDateTime>) {
    let (name, since) = match c.state() {
        ClockState::Running { since } => ("running", since),
        ClockState::Paused { since } => ("paused", since),
        ClockState::Stopped { at } => ("stopped", at),
    };
    (c.target().whole_seconds(), c.used_before().whole_seconds(), name, clock::stamp(since), c.breached_at().map(clock::stamp))
}

fn first_response(t: &TicketRow) -> Clock {
    Clock::from_parts(
        Duration::seconds(t.fr_target_secs),
        Duration::seconds(t.fr_used_secs),
        clock_state(&t.fr_state, t.fr_since),
        t.fr_breached_at,
    )
}

fn resolution(t: &TicketRow) -> Clock {
    Clock::from_parts(
        Duration::seconds(t.rs_target_secs),
        Duration::seconds(t.rs_used_secs),
        clock_state(&t.rs_state, t.rs_since),
        t.rs_breached_at,
    )
}

fn set_first_response(t: &mut TicketRow, c: &Clock) {
    (t.fr_target_secs, t.fr_used_secs, _, t.fr_since, t.fr_breached_at) = clock_parts(c);
    t.fr_state = clock_parts(c).2.to_owned();
}

fn set_resolution(t: &mut TicketRow, c: &Clock) {
    (t.rs_target_secs, t.rs_used_secs, _, t.rs_since, t.rs_breached_at) = clock_parts(c);
    t.rs_state = clock_parts(c).2.to_owned();
}

fn sla_error(e: crate::sla::SlaError) -> Error {
    Error::Internal(format!("sla clock: {e}"))
}

fn clock_view(c: &Clock, now: OffsetDateTime, cal: &BusinessCalendar) -> ClockView {
    let name = match c.state() {
        ClockState::Running { .. } => "running",
        ClockState::Paused { .. } => "paused",
        ClockState::Stopped { .. } => "stopped",
    };
    ClockView {
        state: name.to_owned(),
        target_secs: c.target().whole_seconds(),
        used_secs: c.used(now, cal).whole_seconds(),
        due_at: c.deadline(now, cal),
        breached: c.breached(now, cal),
    }
}

fn view(t: &TicketRow, now: OffsetDateTime, cal: &BusinessCalendar) -> Ticket {
    Ticket {
        id: t.id,
        org_id: t.org_id,
        number: t.number,
        reference: reference(t.number),
        requester_id: t.requester_id,
        requester_name: t.requester_name.clone(),
        category: Category::parse(&t.category).unwrap_or(Category::Other),
        subject: t.subject.clone(),
        priority: t.priority.clone(),
        state: State::parse(&t.state).unwrap_or(State::Open),
        queue: Queue::parse(&t.queue).unwrap_or(Queue::Org),
        assignee_id: t.assignee_id,
        merged_into: t.merged_into,
        tags: t.tags.split_whitespace().map(str::to_owned).collect(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        first_response_at: t.first_response_at,
        resolved_at: t.resolved_at,
        sla: SlaView {
            first_response: clock_view(&first_response(t), now, cal),
            resolution: clock_view(&resolution(t), now, cal),
        },
    }
}

fn message_view(m: MessageRow, files: &mut Vec<(MessageId, crate::attachments::Attachment)>) -> Message {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(files).into_iter().partition(|(id, _)| *id == m.id);
    *files = rest;
    Message {
        attachments: mine.into_iter().map(|(_, a)| a).collect(),
        id: m.id,
        kind: MessageKind::parse(&m.kind).unwrap_or(MessageKind::Note),
        author_id: m.author_id,
        author_name: m.author_name,
        body: m.body,
        created_at: m.created_at,
    }
}

fn state_of(t: &TicketRow) -> State {
    State::parse(&t.state).unwrap_or(State::Open)
}

fn priority_of(t: &TicketRow) -> Priority {
    parse_priority(&t.priority).unwrap_or(Priority::Normal)
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

async fn detail(db: &Db, t: &TicketRow, a: Access, now: OffsetDateTime) -> Result<TicketDetail> {
    let messages = store::messages(db, t.org_id, t.id, a.is_agent()).await?;
    let mut files = crate::attachments::of_ticket(db, t.org_id, t.id, a.is_agent()).await?;
    let watchers = if a.is_agent() {
        store::watchers(db, t.org_id, t.id).await?.into_iter().map(|(account_id, name, _)| Watcher { account_id, name }).collect()
    } else {
        Vec::new()
    };
    Ok(TicketDetail {
        ticket: view(t, now, &calendar(db, t.org_id).await?),
        messages: messages.into_iter().map(|m| message_view(m, &mut files)).collect(),
        watchers,
        role: a.name().to_owned(),
        satisfaction: crate::survey::of_ticket(db, t).await?,
    })
}

/// Whether the caller sees the ticket's internal notes (and their files): its agents do, its requester does not;
/// anyone else learns nothing (404).
pub(crate) async fn sees_notes(db: &Db, p: &Principal, org: OrgId, id: TicketId) -> Result<bool> {
    let t = store::get(db, org, id).await?.ok_or(Error::NotFound)?;
    Ok(access(db, p, &t).await?.is_agent())
}

/// Whether the caller may upload files to `org`'s help desk: its agents and admins, the operator's agents (who
/// answer escalated tickets), and members with the help desk; 404 for anyone else, 403 without the service.
pub(crate) async fn may_upload(db: &Db, p: &Principal, org: OrgId) -> Result<()> {
    if is_staff(p, org) || is_operator_agent(db, p).await? {
        return Ok(());
    }
    match catalogue::entitlement(db, p.id(), org, Service::Helpdesk).await? {
        Ok(_) => Ok(()),
        Err(Denied::NotMember) => Err(Error::NotFound),
        Err(_) => Err(Error::Forbidden),
    }
}

pub async fn ticket(db: &Db, p: &Principal, org: OrgId, id: TicketId) -> Result<TicketDetail> {
    let t = store::get(db, org, id).await?.ok_or(Error::NotFound)?;
    let a = access(db, p, &t).await?;
    detail(db, &t, a, clock::now()).await
}

/// A cursor is the last row's `updated_at` (Unix nanoseconds) and id.
fn encode_cursor(t: &TicketRow) -> String {
    format!("{}_{}", t.updated_at.unix_timestamp_nanos(), t.id)
}

fn decode_cursor(s: &str) -> Option<(OffsetDateTime, TicketId)> {
    let (n, id) = s.split_once('_')?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(n.parse().ok()?).ok()?;
    Some((at, id.parse().ok()?))
}

fn parse_filter(p: &Principal, q: &ListQuery, errors: &mut FieldErrors) -> Filter {
    let mut f = Filter::default();
    let mut enum_field = |field: &str, v: &Option<String>, ok: bool| -> Option<String> {
        match v.as_deref() {
            None | Some("") => None,
            Some(s) if ok => Some(s.to_owned()),
            Some(_) => {
                errors.add(field, "format");
                None
            }
        }
    };
    f.state = enum_field("state", &q.state, q.state.as_deref().and_then(State::parse).is_some());
    f.category = enum_field("category", &q.category, q.category.as_deref().and_then(Category::parse).is_some());
    f.priority = enum_field("priority", &q.priority, q.priority.as_deref().and_then(parse_priority).is_some());
    f.queue = enum_field("queue", &q.queue, q.queue.as_deref().and_then(Queue::parse).is_some());
    f.tag = match q.tag.as_deref() {
        None | Some("") => None,
        Some(t) => parse_tags(errors, &[t.to_owned()]).and_then(|v| v.into_iter().next()),
    };
    f.search = match q.q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) if s.chars().count() > crate::search::MAX_CHARS => {
            errors.add("q", "too-long");
            None
        }
        Some(s) => Some(crate::search::Words::parse(s)).filter(|w| !w.is_empty()).or_else(|| {
            errors.add("q", "format");
            None
        }),
    };
    match q.mine.as_deref() {
        None | Some("") | Some("false") => {}
        Some("true") => f.requester = Some(p.id()),
        Some(_) => errors.add("mine", "format"),
    }
    f.assignee = match q.assignee.as_deref() {
        None | Some("") => None,
        Some("me") => Some(p.id()),
        Some(s) => match s.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("assignee", "format");
                None
            }
        },
    };
    f
}

fn parse_page(q: &ListQuery, errors: &mut FieldErrors) -> (Option<(OffsetDateTime, TicketId)>, i64) {
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(s) => {
            let c = decode_cursor(s);
            if c.is_none() {
                errors.add("after", "format");
            }
            c
        }
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 25,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
            _ => {
                errors.add("limit", "out-of-range");
                25
            }
        },
    };
    (after, limit)
}

async fn page_of(db: &Db, f: &Filter, after: Option<(OffsetDateTime, TicketId)>, limit: i64) -> Result<TicketPage> {
    let mut rows = store::page(db, f, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(encode_cursor) } else { None };
    let now = clock::now();
    let cals = crate::settings::Calendars::load(db, rows.iter().map(|t| t.org_id).collect()).await?;
    Ok(TicketPage { items: rows.iter().map(|t| view(t, now, cals.of(t.org_id))).collect(), next })
}

/// The filter the caller may see of the organisation: the whole queue for its agents and admins, their own tickets
/// for other members; nothing at all (404) for anyone else.
fn scope(p: &Principal, org: OrgId, mut f: Filter) -> Result<Filter> {
    f.org = Some(org);
    if is_staff(p, org) {
        Ok(f)
    } else if p.is_member(org) && f.search.is_some() {
        // Search reads internal notes: agents only.
        Err(Error::Forbidden)
    } else if p.is_member(org) {
        f.requester = Some(p.id());
        Ok(f)
    } else {
        Err(Error::NotFound)
    }
}

pub async fn tickets(db: &Db, p: &Principal, org: OrgId, q: &ListQuery) -> Result<TicketPage> {
    let mut errors = FieldErrors::new();
    let f = parse_filter(p, q, &mut errors);
    let (after, limit) = parse_page(q, &mut errors);
    let f = scope(p, org, f)?;
    errors.into_result()?;
    page_of(db, &f, after, limit).await
}

pub async fn count(db: &Db, p: &Principal, org: OrgId, q: &ListQuery) -> Result<Count> {
    let mut errors = FieldErrors::new();
    let f = parse_filter(p, q, &mut errors);
    let f = scope(p, org, f)?;
    errors.into_result()?;
    Ok(Count { count: store::count(db, &f).await? })
}

/// As [`count`], counting no further than `cap` + 1: for the queue page, which shows "more than `cap`" rather than
/// read a whole large queue on every page.
pub async fn count_upto(db: &Db, p: &Principal, org: OrgId, q: &ListQuery, cap: i64) -> Result<Count> {
    let mut errors = FieldErrors::new();
    let f = parse_filter(p, q, &mut errors);
    let f = scope(p, org, f)?;
    errors.into_result()?;
    Ok(Count { count: store::count_upto(db, &f, cap).await? })
}

/// The operator's second-level queue: escalated tickets of every organisation, for the operator's agents.
pub async fn escalated(db: &Db, p: &Principal, q: &ListQuery) -> Result<TicketPage> {
    if !is_operator_agent(db, p).await? {
        return Err(Error::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let mut f = parse_filter(p, q, &mut errors);
    let (after, limit) = parse_page(q, &mut errors);
    errors.into_result()?;
    f.org = None;
    f.requester = None;
    f.queue = Some(Queue::Operator.as_str().to_owned());
    page_of(db, &f, after, limit).await
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

fn message_id() -> String {
    format!("<{}@helpdesk.agilekit>", uuid::Uuid::now_v7())
}

async fn add_message(tx: &mut Tx, t: &TicketRow, author: Option<AccountId>, kind: MessageKind, body: &str, now: OffsetDateTime) -> Result<MessageId> {
    add_message_with(tx, t, author, kind, body, now, message_id()).await
}

/// As `add_message`, stored with the given Message-ID (an inbound mail's own, for threading and idempotence).
async fn add_message_with(tx: &mut Tx, t: &TicketRow, author: Option<AccountId>, kind: MessageKind, body: &str, now: OffsetDateTime, message_id: String) -> Result<MessageId> {
    let id = MessageId::new();
    store::insert_message(tx, &MessageRow {
        id,
        org_id: t.org_id,
        ticket_id: t.id,
        author_id: author,
        kind: kind.as_str().to_owned(),
        body: body.to_owned(),
        message_id,
        created_at: now,
        author_name: None,
    })
    .await?;
    Ok(id)
}

fn snapshot(t: &TicketRow) -> serde_json::Value {
    json!({"number": t.number, "state": t.state, "priority": t.priority, "queue": t.queue,
           "assignee_id": t.assignee_id, "tags": t.tags, "category": t.category})
}

async fn audit_change(tx: &mut Tx, actor: &Actor, action: &str, before: Option<&TicketRow>, after: &TicketRow) -> Result<()> {
    audit::record(tx, actor, Change {
        org: Some(after.org_id),
        action,
        entity: "helpdesk_ticket",
        entity_id: after.id.to_string(),
        before: before.map(snapshot),
        after: Some(snapshot(after)),
    })
    .await?;
    Ok(())
}

/// Tells the watchers and (when `requester`) the requester, through the outbox, in the same transaction as the
/// change.
async fn notify(tx: &mut Tx, t: &TicketRow, what: &str, requester: bool) -> Result<()> {
    notify_thread(tx, t, what, requester, None).await
}

/// As `notify`, in the ticket's mail thread (crate::inbound::threading): the subject carries the ticket tag, the
/// mails answer the thread's stored Message-IDs and, when `own` is the Message-ID of the message just stored, are
/// sent with it.
async fn notify_thread(tx: &mut Tx, t: &TicketRow, what: &str, requester: bool, own: Option<&str>) -> Result<()> {
    let threading = crate::inbound::threading(tx, t.org_id, t.id, own).await?;
    let subject = format!("{} {}", crate::inbound::tag(t.number), t.subject);
    let text = format!(
        "{what}\n\nTicket {} — {}\nStato / state: {}\n",
        reference(t.number),
        t.subject,
        t.state
    );
    let mut to = store::watcher_emails_in(tx, t.org_id, t.id).await?;
    if requester && !to.contains(&t.requester_email) {
        to.insert(0, t.requester_email.clone());
    }
    for to in to {
        mail::queue_threaded(tx, Some(t.org_id), &Mail { to, subject: subject.clone(), text: text.clone() }, &threading).await?;
    }
    Ok(())
}

/// The attachments of a message as a mail names them: no bytes in mail, the ticket page has them (its address from
/// `public_url`, the configured address of the node making the change; the path alone when it is not known).
fn files_in_mail(t: &TicketRow, files: &[agilekit_kernel::files::FileMeta], public_url: &str) -> String {
    if files.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n\nAllegati / attachments:\n");
    for f in files {
        s.push_str(&format!("- {} ({})\n", f.name, crate::attachments::human_size(f.size)));
    }
    s.push_str(&format!("{}: {}/orgs/{}/helpdesk/tickets/{}\n", reference(t.number), public_url.trim_end_matches('/'), t.org_id, t.id));
    s
}

/// Opens a ticket for the caller in `org`: a member of an organisation with an active help-desk subscription.
pub async fn open(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &NewTicket, now: OffsetDateTime) -> Result<TicketDetail> {
    open_with(db, p, actor, org, input, &[], now, None).await
}

/// As [`open`], the first message carrying the caller's pending files `attachments` (ids).
pub async fn open_attached(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &NewTicket, attachments: &[String], now: OffsetDateTime) -> Result<TicketDetail> {
    open_with(db, p, actor, org, input, attachments, now, None).await
}

/// As [`open`]; with `inbound` (the Message-ID of the mail that opens it) the first message keeps that Message-ID
/// and the requester gets an acknowledgement in the ticket's mail thread.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_with(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &NewTicket, attachments: &[String], now: OffsetDateTime, inbound: Option<String>) -> Result<TicketDetail> {
    match catalogue::entitlement(db, p.id(), org, Service::Helpdesk).await? {
        Ok(_) => {}
        Err(Denied::NotMember) => return Err(Error::NotFound),
        Err(_) => return Err(Error::Forbidden),
    }
    let now = clock::stamp(now);
    let mut errors = FieldErrors::new();
    let category = match Category::parse(input.category.trim()) {
        Some(c) => Some(c),
        None if input.category.trim().is_empty() => {
            errors.add("category", "required");
            None
        }
        None => {
            errors.add("category", "format");
            None
        }
    };
    let subject = parse_subject(&mut errors, "subject", &input.subject);
    let body = parse_body(&mut errors, "body", &input.body);
    let files = crate::attachments::resolve(db, org, p.id(), attachments, &mut errors).await?;
    let (Some(category), Some(subject), Some(body), true) = (category, subject, body, errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let policy = crate::settings::load(db, org).await?.policy;
    let priority = Priority::Normal;
    let target = policy.target(priority);
    let mut tx = db.begin().await?;
    let number = store::next_number(&mut tx, org).await?;
    let mut t = TicketRow {
        id: TicketId::new(),
        org_id: org,
        number,
        requester_id: p.id(),
        category: category.as_str().to_owned(),
        subject,
        priority: priority.as_str().to_owned(),
        state: State::New.as_str().to_owned(),
        assignee_id: None,
        queue: Queue::Org.as_str().to_owned(),
        merged_into: None,
        tags: String::new(),
        fr_target_secs: 0,
        fr_used_secs: 0,
        fr_state: String::new(),
        fr_since: now,
        fr_breached_at: None,
        rs_target_secs: 0,
        rs_used_secs: 0,
        rs_state: String::new(),
        rs_since: now,
        rs_breached_at: None,
        created_at: now,
        updated_at: now,
        first_response_at: None,
        resolved_at: None,
        requester_name: p.account.display_name.clone(),
        requester_email: p.account.email.clone(),
    };
    set_first_response(&mut t, &Clock::start(now, target.first_response));
    set_resolution(&mut t, &Clock::start(now, target.resolution));
    store::insert_ticket(&mut tx, &t).await?;
    let by_mail = inbound.is_some();
    let mid = add_message_with(&mut tx, &t, Some(p.id()), MessageKind::Reply, &body, now, inbound.unwrap_or_else(message_id)).await?;
    crate::attachments::attach(&mut tx, org, t.id, mid, Some(p.id()), &files, now).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.open", None, &t).await?;
    if by_mail {
        notify_thread(&mut tx, &t, "Abbiamo ricevuto la sua richiesta / we have received your request.", true, None).await?;
    }
    tx.commit().await?;
    detail(db, &t, Access::Requester, now).await
}

/// Loads the ticket for a change, locked, with what the caller is to it.
async fn load(db: &Db, tx: &mut Tx, p: &Principal, org: OrgId, id: TicketId) -> Result<(TicketRow, Access)> {
    let t = store::get_in(tx, org, id).await?.ok_or(Error::NotFound)?;
    let a = access(db, p, &t).await?;
    Ok((t, a))
}

fn agents_only(a: Access) -> Result<()> {
    if a.is_agent() { Ok(()) } else { Err(Error::Forbidden) }
}

fn resolved_recently(t: &TicketRow, now: OffsetDateTime) -> bool {
    t.resolved_at.is_some_and(|r| now - r <= Duration::days(REOPEN_DAYS))
}

/// Back to `open` from pending (the resolution clock resumes) or from resolved within [`REOPEN_DAYS`] (it reopens).
fn reopen(t: &mut TicketRow, now: OffsetDateTime) -> Result<()> {
    let mut rs = resolution(t);
    match state_of(t) {
        State::Pending => rs.resume(now).map_err(sla_error)?,
        State::Resolved => {
            rs.reopen(now).map_err(sla_error)?;
            t.resolved_at = None;
        }
        _ => {}
    }
    set_resolution(t, &rs);
    t.state = State::Open.as_str().to_owned();
    Ok(())
}

/// A public reply. By an agent it is the first response if none came before (that clock stops) and the requester
/// is mailed; by the requester it takes a pending ticket back to open (the resolution clock runs again) and
/// reopens one resolved in the last [`REOPEN_DAYS`] days.
pub async fn reply(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &BodyInput, now: OffsetDateTime) -> Result<TicketDetail> {
    reply_with(db, p, actor, org, id, input, &[], now, None, "").await
}

/// As [`reply`], carrying the caller's pending files `attachments` (ids); the notification links the ticket page at
/// `public_url`.
#[allow(clippy::too_many_arguments)]
pub async fn reply_attached(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &BodyInput, attachments: &[String], now: OffsetDateTime, public_url: &str) -> Result<TicketDetail> {
    reply_with(db, p, actor, org, id, input, attachments, now, None, public_url).await
}

/// As [`reply`]; with `inbound` the reply keeps that mail's Message-ID.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reply_with(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &BodyInput, attachments: &[String], now: OffsetDateTime, inbound: Option<String>, public_url: &str) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut errors = FieldErrors::new();
    let body = parse_body(&mut errors, "body", &input.body);
    let files = crate::attachments::resolve(db, org, p.id(), attachments, &mut errors).await?;
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    let (Some(body), true) = (body, errors.is_empty()) else { return Err(Error::Invalid(errors)) };
    let before = t.clone();
    let state = state_of(&t);
    let (_, cal) = settings(&mut tx, org).await?;
    if a.is_agent() {
        if !state.is_active() {
            return Err(Error::Conflict("ticket-closed"));
        }
        let mut fr = first_response(&t);
        if !matches!(fr.state(), ClockState::Stopped { .. }) {
            fr.stop(now, &cal).map_err(sla_error)?;
            set_first_response(&mut t, &fr);
            t.first_response_at = Some(now);
        }
        if state == State::New {
            t.state = State::Open.as_str().to_owned();
        }
    } else {
        match state {
            State::New | State::Open => {}
            State::Pending => reopen(&mut t, now)?,
            State::Resolved if resolved_recently(&t, now) => reopen(&mut t, now)?,
            _ => return Err(Error::Conflict("ticket-closed")),
        }
    }
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    let own = inbound.unwrap_or_else(message_id);
    let mid = add_message_with(&mut tx, &t, Some(p.id()), MessageKind::Reply, &body, now, own.clone()).await?;
    crate::attachments::attach(&mut tx, org, t.id, mid, Some(p.id()), &files, now).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.reply", Some(&before), &t).await?;
    let listed = files_in_mail(&t, &files, public_url);
    notify_thread(&mut tx, &t, &format!("Nuova risposta / new reply:\n\n{body}{listed}"), a.is_agent(), Some(&own)).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// An internal note: agents only, never shown to the requester, stops no clock.
pub async fn note(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &BodyInput, now: OffsetDateTime) -> Result<TicketDetail> {
    note_attached(db, p, actor, org, id, input, &[], now).await
}

/// As [`note`], carrying the caller's pending files `attachments` (ids): agents only see them.
#[allow(clippy::too_many_arguments)]
pub async fn note_attached(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &BodyInput, attachments: &[String], now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut errors = FieldErrors::new();
    let body = parse_body(&mut errors, "body", &input.body);
    let files = crate::attachments::resolve(db, org, p.id(), attachments, &mut errors).await?;
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let (Some(body), true) = (body, errors.is_empty()) else { return Err(Error::Invalid(errors)) };
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    let mid = add_message(&mut tx, &t, Some(p.id()), MessageKind::Note, &body, now).await?;
    crate::attachments::attach(&mut tx, org, t.id, mid, Some(p.id()), &files, now).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.note", Some(&t), &t).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// Moves the ticket to `to` by the rules; a move the rules refuse is a field error on `state` (`transition`).
fn transition(t: &mut TicketRow, to: State, now: OffsetDateTime, cal: &BusinessCalendar) -> Result<()> {
    let from = state_of(t);
    let refuse = || FieldErrors::one("state", "transition");
    let mut fr = first_response(t);
    let mut rs = resolution(t);
    match to {
        State::Open => match from {
            State::New => {}
            State::Pending => reopen(t, now)?,
            State::Resolved if resolved_recently(t, now) => reopen(t, now)?,
            _ => return Err(refuse()),
        },
        State::Pending => match from {
            State::New | State::Open => {
                rs.pause(now, cal).map_err(sla_error)?;
                set_resolution(t, &rs);
            }
            _ => return Err(refuse()),
        },
        State::Resolved | State::Closed if from.is_active() => {
            rs.stop(now, cal).map_err(sla_error)?;
            set_resolution(t, &rs);
            if !matches!(fr.state(), ClockState::Stopped { .. }) {
                fr.stop(now, cal).map_err(sla_error)?;
                set_first_response(t, &fr);
            }
            t.resolved_at = Some(now);
        }
        State::Closed if from == State::Resolved => {}
        _ => return Err(refuse()),
    }
    t.state = to.as_str().to_owned();
    Ok(())
}

/// `public_url` is where people reach agilekit (the configured `public_url` of the node that makes the change): the
/// satisfaction survey's invitation, queued when the ticket is resolved, links there.
pub async fn set_state(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &StateInput, now: OffsetDateTime, public_url: &str) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let to = State::parse(input.state.trim());
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let Some(to) = to else {
        return Err(FieldErrors::one("state", if input.state.trim().is_empty() { "required" } else { "format" }));
    };
    let (_, cal) = settings(&mut tx, org).await?;
    apply_state(&mut t, to, now, &cal)?.finish(&mut tx, actor, &t, public_url).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// A state change made in memory, still to be written, audited and mailed ([`Pending::finish`]).
struct Pending {
    before: TicketRow,
    to: State,
}

impl Pending {
    async fn finish(self, tx: &mut Tx, actor: &Actor, t: &TicketRow, public_url: &str) -> Result<()> {
        store::update_ticket(tx, t).await?;
        audit_change(tx, actor, "helpdesk.ticket.state", Some(&self.before), t).await?;
        if self.to == State::Resolved {
            crate::survey::invite(tx, t, public_url).await?;
        }
        let s = self.to.as_str();
        notify(tx, t, &format!("Il ticket è ora «{s}» / the ticket is now \"{s}\"."), true).await
    }
}

fn apply_state(t: &mut TicketRow, to: State, now: OffsetDateTime, cal: &BusinessCalendar) -> Result<Pending> {
    let before = t.clone();
    transition(t, to, now, cal)?;
    t.updated_at = now;
    Ok(Pending { before, to })
}

/// Assigns to a named agent of the queue (the organisation's agents; the operator's on an escalated ticket
/// handled by the operator), to the next in turn, or to no one.
pub async fn assign(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &AssignInput, now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let pool_org = if a == Access::Operator { operator_org(db).await?.ok_or(Error::NotFound)? } else { org };
    let pool: Vec<AccountId> = store::agents(db, pool_org).await?.into_iter().map(|(id, _)| id).collect();
    let before = t.clone();
    let chosen = if input.round_robin {
        if pool.is_empty() {
            return Err(FieldErrors::one("assignee", "unavailable"));
        }
        let last = store::last_assignee(&mut tx, pool_org).await?;
        let next = last.and_then(|l| pool.iter().position(|x| *x == l)).map_or(0, |i| (i + 1) % pool.len());
        store::set_last_assignee(&mut tx, pool_org, pool[next]).await?;
        Some(pool[next])
    } else {
        match input.assignee.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => match s.parse::<AccountId>() {
                Ok(x) if pool.contains(&x) => Some(x),
                Ok(_) => return Err(FieldErrors::one("assignee", "not-found")),
                Err(_) => return Err(FieldErrors::one("assignee", "format")),
            },
        }
    };
    t.assignee_id = chosen;
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.assign", Some(&before), &t).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// A new priority retargets the clocks still counting; the time already used stays.
pub async fn set_priority(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &PriorityInput, now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let priority = parse_priority(input.priority.trim());
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let Some(priority) = priority else {
        return Err(FieldErrors::one("priority", if input.priority.trim().is_empty() { "required" } else { "format" }));
    };
    if priority == priority_of(&t) {
        return detail(db, &t, a, now).await;
    }
    let before = t.clone();
    let (policy, cal) = settings(&mut tx, org).await?;
    let target = policy.target(priority);
    let mut fr = first_response(&t);
    if !matches!(fr.state(), ClockState::Stopped { .. }) {
        fr.retarget(target.first_response, now, &cal).map_err(sla_error)?;
        set_first_response(&mut t, &fr);
    }
    let mut rs = resolution(&t);
    if !matches!(rs.state(), ClockState::Stopped { .. }) {
        rs.retarget(target.resolution, now, &cal).map_err(sla_error)?;
        set_resolution(&mut t, &rs);
    }
    t.priority = priority.as_str().to_owned();
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.priority", Some(&before), &t).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// Hands the ticket to the operator's second level: its agents then see this ticket (thread and notes), and
/// nothing else of the organisation. The reason is kept as an internal note.
pub async fn escalate(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &EscalateInput, now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut errors = FieldErrors::new();
    let reason = parse_body(&mut errors, "reason", &input.reason);
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    if a != Access::Staff {
        return Err(Error::Forbidden);
    }
    let Some(reason) = reason else { return Err(Error::Invalid(errors)) };
    if t.queue == Queue::Operator.as_str() {
        return Err(Error::Conflict("already-escalated"));
    }
    if !state_of(&t).is_active() {
        return Err(Error::Conflict("ticket-closed"));
    }
    let before = t.clone();
    t.queue = Queue::Operator.as_str().to_owned();
    t.assignee_id = None;
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    add_message(&mut tx, &t, Some(p.id()), MessageKind::Note, &reason, now).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.escalate", Some(&before), &t).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

pub async fn set_tags(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &TagsInput, now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut errors = FieldErrors::new();
    let tags = parse_tags(&mut errors, &input.tags);
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let Some(tags) = tags else { return Err(Error::Invalid(errors)) };
    let before = t.clone();
    t.tags = tags.join(" ");
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.tags", Some(&before), &t).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

/// The organisation's agents, for the assignment form (its agents and admins only).
pub async fn agents(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<(AccountId, String)>> {
    if !is_staff(p, org) {
        return Err(Error::NotFound);
    }
    Ok(store::agents(db, org).await?)
}


// ---------------------------------------------------------------------------------------------------------------
// Watchers, merge, bulk

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct WatcherInput {
    /// An agent of the ticket's queue.
    pub account: String,
}

/// The agents who may follow a ticket: the organisation's, and the operator's once escalated.
async fn watcher_pool(db: &Db, t: &TicketRow) -> Result<Vec<AccountId>> {
    let mut pool: Vec<AccountId> = store::agents(db, t.org_id).await?.into_iter().map(|(id, _)| id).collect();
    if t.queue == Queue::Operator.as_str()
        && let Some(op) = operator_org(db).await?
    {
        pool.extend(store::agents(db, op).await?.into_iter().map(|(id, _)| id));
    }
    Ok(pool)
}

pub async fn watch(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &WatcherInput, watch: bool) -> Result<TicketDetail> {
    let now = clock::now();
    let mut tx = db.begin().await?;
    let (t, a) = load(db, &mut tx, p, org, id).await?;
    agents_only(a)?;
    let account: AccountId = input.account.trim().parse().map_err(|_| FieldErrors::one("account", "format"))?;
    let changed = if watch {
        if !watcher_pool(db, &t).await?.contains(&account) {
            return Err(FieldErrors::one("account", "not-found"));
        }
        store::add_watcher(&mut tx, org, id, account).await?
    } else {
        store::remove_watcher(&mut tx, org, id, account).await?
    };
    if changed {
        audit::record(&mut tx, actor, Change {
            org: Some(org),
            action: if watch { "helpdesk.ticket.watch" } else { "helpdesk.ticket.unwatch" },
            entity: "helpdesk_ticket",
            entity_id: id.to_string(),
            before: None,
            after: Some(json!({"watcher": account})),
        })
        .await?;
    }
    tx.commit().await?;
    detail(db, &t, a, now).await
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MergeInput {
    /// The ticket of the same organisation this one continues in.
    pub into: String,
}

/// Merges the ticket into another of the organisation (its agents and admins): this one becomes `merged`, its
/// clocks stop, its thread stays readable where it is, and both carry a note naming the other.
pub async fn merge(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: TicketId, input: &MergeInput, now: OffsetDateTime) -> Result<TicketDetail> {
    let now = clock::stamp(now);
    let mut tx = db.begin().await?;
    let (mut t, a) = load(db, &mut tx, p, org, id).await?;
    if a != Access::Staff {
        return Err(Error::Forbidden);
    }
    let into: TicketId = input.into.trim().parse().map_err(|_| {
        FieldErrors::one("into", if input.into.trim().is_empty() { "required" } else { "format" })
    })?;
    if into == id {
        return Err(FieldErrors::one("into", "cycle"));
    }
    let mut target = store::get_in(&mut tx, org, into).await?.ok_or_else(|| FieldErrors::one("into", "not-found"))?;
    if !state_of(&target).is_active() {
        return Err(FieldErrors::one("into", "unavailable"));
    }
    if !state_of(&t).is_active() {
        return Err(FieldErrors::one("state", "transition"));
    }
    let before = t.clone();
    let (_, cal) = settings(&mut tx, org).await?;
    for (mut c, first) in [(first_response(&t), true), (resolution(&t), false)] {
        if !matches!(c.state(), ClockState::Stopped { .. }) {
            c.stop(now, &cal).map_err(sla_error)?;
            if first { set_first_response(&mut t, &c) } else { set_resolution(&mut t, &c) }
        }
    }
    t.state = State::Merged.as_str().to_owned();
    t.merged_into = Some(into);
    t.updated_at = now;
    store::update_ticket(&mut tx, &t).await?;
    add_message(&mut tx, &t, Some(p.id()), MessageKind::Note, &format!("→ {}", reference(target.number)), now).await?;
    let target_before = target.clone();
    target.updated_at = now;
    store::update_ticket(&mut tx, &target).await?;
    add_message(&mut tx, &target, Some(p.id()), MessageKind::Note, &format!("← {}", reference(t.number)), now).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.merge", Some(&before), &t).await?;
    audit_change(&mut tx, actor, "helpdesk.ticket.merged_in", Some(&target_before), &target).await?;
    notify(&mut tx, &t, &format!("Il ticket prosegue in {} / the ticket continues in {}.", reference(target.number), reference(target.number)), true).await?;
    tx.commit().await?;
    detail(db, &t, a, now).await
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BulkInput {
    /// Up to 200 tickets of the organisation.
    pub ids: Vec<String>,
    /// The state to move them all to (as `/state`).
    pub state: Option<String>,
    /// The agent to give them all to; an empty string unassigns.
    pub assignee: Option<String>,
}

/// One change to many tickets (the organisation's agents and admins), all or nothing: any ticket that cannot take
/// it is a field error `ids[i]` and no ticket changes.
/// `public_url`: as for [`set_state`].
pub async fn bulk(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &BulkInput, now: OffsetDateTime, public_url: &str) -> Result<Vec<Ticket>> {
    let now = clock::stamp(now);
    if !is_staff(p, org) {
        return Err(Error::NotFound);
    }
    let mut errors = FieldErrors::new();
    if input.ids.is_empty() {
        errors.add("ids", "required");
    } else if input.ids.len() > model::BULK_MAX {
        errors.add("ids", "too-long");
    }
    let ids: Vec<Option<TicketId>> = input.ids.iter().map(|s| s.trim().parse().ok()).collect();
    for (i, id) in ids.iter().enumerate() {
        if id.is_none() {
            errors.add(&format!("ids[{i}]"), "format");
        }
    }
    let state = match input.state.as_deref().map(str::trim) {
        None => None,
        Some(s) => match State::parse(s) {
            Some(x) => Some(x),
            None => {
                errors.add("state", "format");
                None
            }
        },
    };
    let pool: Vec<AccountId> = store::agents(db, org).await?.into_iter().map(|(id, _)| id).collect();
    let assignee = match input.assignee.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(s) => match s.parse::<AccountId>() {
            Ok(x) if pool.contains(&x) => Some(Some(x)),
            Ok(_) => {
                errors.add("assignee", "not-found");
                None
            }
            Err(_) => {
                errors.add("assignee", "format");
                None
            }
        },
    };
    if input.state.is_none() && input.assignee.is_none() {
        errors.add("state", "required");
    }
    errors.clone().into_result()?;
    // Locked in id order, so two batches over the same tickets cannot wait on each other.
    let mut order: Vec<(usize, TicketId)> = ids.into_iter().enumerate().filter_map(|(i, id)| id.map(|id| (i, id))).collect();
    order.sort_by_key(|(_, id)| *id);
    let mut tx = db.begin().await?;
    let (_, cal) = settings(&mut tx, org).await?;
    let mut done = Vec::new();
    for (i, id) in order {
        let Some(mut t) = store::get_in(&mut tx, org, id).await? else {
            errors.add(&format!("ids[{i}]"), "not-found");
            continue;
        };
        if done.iter().any(|d: &TicketRow| d.id == id) {
            continue;
        }
        if let Some(to) = state {
            match apply_state(&mut t, to, now, &cal) {
                Ok(pending) => pending.finish(&mut tx, actor, &t, public_url).await?,
                Err(Error::Invalid(_)) => {
                    errors.add(&format!("ids[{i}]"), "transition");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(who) = assignee {
            let before = t.clone();
            t.assignee_id = who;
            t.updated_at = now;
            store::update_ticket(&mut tx, &t).await?;
            audit_change(&mut tx, actor, "helpdesk.ticket.assign", Some(&before), &t).await?;
        }
        done.push(t);
    }
    // Dropping the transaction without committing undoes every change made above.
    errors.into_result()?;
    tx.commit().await?;
    Ok(done.iter().map(|t| view(t, now, &cal)).collect())
}
