//! SLA warnings and breaches through the job runner. Every time a ticket is saved (`store::insert_ticket`,
//! `store::update_ticket`) a `helpdesk.sla` job is scheduled at the next instant worth a look: when a running clock
//! reaches the organisation's warning threshold (if not warned yet), or just after its deadline (if the breach is
//! not marked yet). The job re-reads the ticket and acts only on what is due then, so a stale job (the ticket was
//! answered, paused, retargeted since) does nothing: at the warning it mails the assignee (or, unassigned, the
//! organisation's agents) and the watchers once and notes `*_warned_at`; past the deadline it notes
//! `*_breached_at` and mails them; each with an audit entry by the system. Then it schedules the next instant.
//! Saving the settings schedules a rescan of the organisation's open tickets (a new calendar moves deadlines).

use std::sync::Arc;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::ids::{JobId, OrgId};
use agilekit_kernel::jobs::{self, Handler, Job};
use agilekit_kernel::mail::{self, Mail};
use agilekit_kernel::{Result, clock, db_run};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::calendar::BusinessCalendar;
use crate::model::{State, TicketId, reference};
use crate::settings;
use crate::sla::{Clock, ClockState};
use crate::store::{self, TicketRow};

pub const JOB_KIND: &str = "helpdesk.sla";
const MAX_ATTEMPTS: i64 = 8;

/// What a job is about: one ticket at one instant, or (`rescan`) every open ticket of the organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    org: OrgId,
    #[serde(default)]
    ticket: Option<TicketId>,
    /// The instant it was scheduled for (Unix seconds): informative, and part of what makes two jobs the same.
    #[serde(default)]
    at: Option<i64>,
    #[serde(default)]
    rescan: bool,
}

pub fn rescan_payload(org: OrgId) -> serde_json::Value {
    json!(Payload { org, ticket: None, at: None, rescan: true })
}

// ---------------------------------------------------------------------------------------------------------------
// The arithmetic (pure)

/// Which of a ticket's two clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    FirstResponse,
    Resolution,
}

impl Which {
    pub fn as_str(self) -> &'static str {
        match self {
            Which::FirstResponse => "first_response",
            Which::Resolution => "resolution",
        }
    }
}

/// What is due on one clock at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// The warning threshold is reached and no warning went out.
    Warn,
    /// The deadline (given) is passed and the breach is not marked.
    Breach(OffsetDateTime),
}

/// What is due on a clock at `now`: nothing unless it is running and not yet marked breached.
pub fn due(c: &Clock, warned: bool, percent: u8, now: OffsetDateTime, cal: &BusinessCalendar) -> Option<Due> {
    if !matches!(c.state(), ClockState::Running { .. }) || c.breached_at().is_some() {
        return None;
    }
    if let Some(d) = c.deadline(now, cal)
        && crate::sla::is_past(now, d)
    {
        return Some(Due::Breach(d));
    }
    (!warned && c.warning_at(percent, now, cal).is_some_and(|w| w <= now)).then_some(Due::Warn)
}

/// The next instant worth a look, over clocks given with whether they were warned: the earliest warning still to
/// give, or one second past a deadline (a deadline at 13:00 is breached only after it) of a running clock.
pub fn next_instant(clocks: &[(Clock, bool)], percent: u8, now: OffsetDateTime, cal: &BusinessCalendar) -> Option<OffsetDateTime> {
    clocks
        .iter()
        .filter(|(c, _)| matches!(c.state(), ClockState::Running { .. }) && c.breached_at().is_none())
        .flat_map(|(c, warned)| {
            let w = if *warned { None } else { c.warning_at(percent, now, cal) };
            [w, c.deadline(now, cal).map(|d| d + Duration::SECOND)]
        })
        .flatten()
        .min()
}

fn clock_state(name: &str, since: OffsetDateTime) -> ClockState {
    match name {
        "paused" => ClockState::Paused { since },
        "stopped" => ClockState::Stopped { at: since },
        _ => ClockState::Running { since },
    }
}

/// The ticket's two clocks as stored.
fn clocks(t: &TicketRow) -> [(Which, Clock); 2] {
    [
        (
            Which::FirstResponse,
            Clock::from_parts(
                Duration::seconds(t.fr_target_secs),
                Duration::seconds(t.fr_used_secs),
                clock_state(&t.fr_state, t.fr_since),
                t.fr_breached_at,
            ),
        ),
        (
            Which::Resolution,
            Clock::from_parts(
                Duration::seconds(t.rs_target_secs),
                Duration::seconds(t.rs_used_secs),
                clock_state(&t.rs_state, t.rs_since),
                t.rs_breached_at,
            ),
        ),
    ]
}

fn is_active(t: &TicketRow) -> bool {
    State::parse(&t.state).is_some_and(State::is_active)
}

// ---------------------------------------------------------------------------------------------------------------
// Queries

async fn warned(tx: &mut Tx, org: OrgId, id: TicketId) -> DbResult<(Option<OffsetDateTime>, Option<OffsetDateTime>)> {
    let row: Option<(Option<OffsetDateTime>, Option<OffsetDateTime>)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT fr_warned_at, rs_warned_at FROM helpdesk_tickets WHERE org_id = $1 AND id = $2"
    ).bind(org).bind(id).fetch_optional(c).await?);
    Ok(row.unwrap_or((None, None)))
}

async fn mark(tx: &mut Tx, org: OrgId, id: TicketId, which: Which, due: Due, now: OffsetDateTime) -> DbResult<()> {
    let sql = match (which, due) {
        (Which::FirstResponse, Due::Warn) => "UPDATE helpdesk_tickets SET fr_warned_at = $3 WHERE org_id = $1 AND id = $2 AND fr_warned_at IS NULL",
        (Which::Resolution, Due::Warn) => "UPDATE helpdesk_tickets SET rs_warned_at = $3 WHERE org_id = $1 AND id = $2 AND rs_warned_at IS NULL",
        (Which::FirstResponse, Due::Breach(_)) => "UPDATE helpdesk_tickets SET fr_breached_at = $3 WHERE org_id = $1 AND id = $2 AND fr_breached_at IS NULL",
        (Which::Resolution, Due::Breach(_)) => "UPDATE helpdesk_tickets SET rs_breached_at = $3 WHERE org_id = $1 AND id = $2 AND rs_breached_at IS NULL",
    };
    let at = match due {
        Due::Warn => now,
        Due::Breach(d) => clock::stamp(d),
    };
    db_run!(tx tx, |c| { sqlx::query(sql).bind(org).bind(id).bind(at).execute(c).await?; });
    Ok(())
}

/// Who is warned: the assignee, or the organisation's agents when no one is; and the watchers.
async fn recipients(tx: &mut Tx, t: &TicketRow) -> DbResult<Vec<String>> {
    let mut to: Vec<String> = match t.assignee_id {
        Some(a) => {
            let rows: Vec<(String,)> = db_run!(tx tx, |c| sqlx::query_as(
                "SELECT email FROM accounts WHERE id = $1 AND NOT disabled"
            ).bind(a).fetch_all(c).await?);
            rows.into_iter().map(|r| r.0).collect()
        }
        None => {
            let rows: Vec<(String,)> = db_run!(tx tx, |c| sqlx::query_as(
                "SELECT DISTINCT a.email FROM memberships m JOIN accounts a ON a.id = m.account_id
                 WHERE m.org_id = $1 AND m.role = 'agent' AND NOT a.disabled ORDER BY a.email"
            ).bind(t.org_id).fetch_all(c).await?);
            rows.into_iter().map(|r| r.0).collect()
        }
    };
    for w in store::watcher_emails_in(tx, t.org_id, t.id).await? {
        if !to.contains(&w) {
            to.push(w);
        }
    }
    Ok(to)
}

async fn open_tickets(db: &Db, org: OrgId) -> DbResult<Vec<TicketId>> {
    let rows: Vec<(TicketId,)> = db_run!(db, |p| sqlx::query_as(
        "SELECT id FROM helpdesk_tickets WHERE org_id = $1 AND state IN ('new', 'open', 'pending') ORDER BY id"
    ).bind(org).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Enqueues a look at the ticket at `at`, unless the same look is already waiting (other than `except`).
async fn enqueue(tx: &mut Tx, org: OrgId, ticket: TicketId, at: OffsetDateTime, except: Option<JobId>) -> DbResult<()> {
    let at = clock::stamp(at);
    let payload = json!(Payload { org, ticket: Some(ticket), at: Some(at.unix_timestamp()), rescan: false });
    let text = payload.to_string();
    // None: a fresh id, which no waiting job has.
    let except = except.unwrap_or_default();
    let (n,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE kind = $1 AND payload = $2 AND done_at IS NULL AND failed_at IS NULL AND id <> $3"
    ).bind(JOB_KIND).bind(&text).bind(except).fetch_one(c).await?);
    if n == 0 {
        jobs::enqueue(tx, JOB_KIND, &payload, Some(org), at, MAX_ATTEMPTS).await?;
    }
    Ok(())
}

/// Schedules the next look at a ticket just written (the one call in `store::insert_ticket` and
/// `store::update_ticket`, in the same transaction). Nothing for a ticket no longer active or without a running
/// clock; an identical look already waiting is not doubled.
pub async fn schedule(tx: &mut Tx, t: &TicketRow) -> DbResult<()> {
    if !is_active(t) {
        return Ok(());
    }
    let [(_, fr), (_, rs)] = clocks(t);
    let running = |c: &Clock| matches!(c.state(), ClockState::Running { .. }) && c.breached_at().is_none();
    if !running(&fr) && !running(&rs) {
        return Ok(());
    }
    let s = settings::load_in(tx, t.org_id).await?;
    let (fw, rw) = warned(tx, t.org_id, t.id).await?;
    if let Some(at) = next_instant(&[(fr, fw.is_some()), (rs, rw.is_some())], s.warning_percent, t.updated_at, &s.calendar) {
        enqueue(tx, t.org_id, t.id, at, None).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The job

/// What one look did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub warned: Vec<Which>,
    pub breached: Vec<Which>,
    /// Mails queued.
    pub mails: usize,
}

fn clock_names(w: Which) -> (&'static str, &'static str) {
    match w {
        Which::FirstResponse => ("prima risposta", "first response"),
        Which::Resolution => ("risoluzione", "resolution"),
    }
}

/// Looks at one ticket at `now` and does what is due (see the module's notes). `job` is the job doing it, if any
/// (so that it does not count itself as the next look already waiting).
pub async fn check(db: &Db, org: OrgId, id: TicketId, now: OffsetDateTime, job: Option<JobId>) -> Result<Outcome> {
    let now = clock::stamp(now);
    let mut out = Outcome::default();
    let mut tx = db.begin().await?;
    let Some(t) = store::get_in(&mut tx, org, id).await? else { return Ok(out) };
    if !is_active(&t) {
        return Ok(out);
    }
    let s = settings::load_in(&mut tx, org).await?;
    let (fw, rw) = warned(&mut tx, org, id).await?;
    let mut after: Vec<(Clock, bool)> = Vec::new();
    let mut events: Vec<(Which, Due, Clock)> = Vec::new();
    for ((which, c), was_warned) in clocks(&t).into_iter().zip([fw.is_some(), rw.is_some()]) {
        match due(&c, was_warned, s.warning_percent, now, &s.calendar) {
            Some(d) => {
                mark(&mut tx, org, id, which, d, now).await?;
                let c2 = match d {
                    Due::Breach(at) => Clock::from_parts(c.target(), c.used_before(), c.state(), Some(at)),
                    Due::Warn => c,
                };
                events.push((which, d, c));
                after.push((c2, true));
            }
            None => after.push((c, was_warned)),
        }
    }
    if !events.is_empty() {
        let to = recipients(&mut tx, &t).await?;
        for (which, d, c) in &events {
            let (it, en) = clock_names(*which);
            let (subject, text, action) = match d {
                Due::Warn => {
                    let due_at = c.deadline(now, &s.calendar).map(clock::format_rome).unwrap_or_default();
                    (
                        format!("[{}] SLA: {it} in scadenza / {en} due soon — {}", reference(t.number), t.subject),
                        format!(
                            "Il ticket {r} «{subj}» ha usato il {p}% del tempo per la {it}: scade il {due_at}.\n\
                             Ticket {r} \"{subj}\" has used {p}% of its {en} time: due {due_at} (Rome time).\n",
                            r = reference(t.number),
                            subj = t.subject,
                            p = s.warning_percent,
                        ),
                        "helpdesk.ticket.sla_warning",
                    )
                }
                Due::Breach(at) => {
                    let at = clock::format_rome(*at);
                    (
                        format!("[{}] SLA superato: {it} / SLA breached: {en} — {}", reference(t.number), t.subject),
                        format!(
                            "Il ticket {r} «{subj}» ha superato l'obiettivo di {it} (scaduto il {at}).\n\
                             Ticket {r} \"{subj}\" missed its {en} target (due {at}, Rome time).\n",
                            r = reference(t.number),
                            subj = t.subject,
                        ),
                        "helpdesk.ticket.sla_breach",
                    )
                }
            };
            for addr in &to {
                mail::queue(&mut tx, Some(org), &Mail { to: addr.clone(), subject: subject.clone(), text: text.clone() }).await?;
                out.mails += 1;
            }
            let at = match d {
                Due::Warn => now,
                Due::Breach(at) => *at,
            };
            audit::record(&mut tx, &Actor::system(), Change {
                org: Some(org),
                action,
                entity: "helpdesk_ticket",
                entity_id: id.to_string(),
                before: None,
                after: Some(json!({"number": t.number, "clock": which.as_str(), "at": at.unix_timestamp(), "notified": to.len()})),
            })
            .await?;
            match d {
                Due::Warn => out.warned.push(*which),
                Due::Breach(_) => out.breached.push(*which),
            }
        }
    }
    // The next look, from the clocks as they now stand; never one already due (nothing would change there).
    if let Some(at) = next_instant(&after, s.warning_percent, now, &s.calendar).filter(|at| *at > now) {
        enqueue(&mut tx, org, id, at, job).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Schedules a look at every open ticket of the organisation (after its settings changed).
pub async fn rescan(db: &Db, org: OrgId) -> Result<usize> {
    let ids = open_tickets(db, org).await?;
    let mut tx = db.begin().await?;
    for id in &ids {
        if let Some(t) = store::get_in(&mut tx, org, *id).await? {
            schedule(&mut tx, &t).await?;
        }
    }
    tx.commit().await?;
    Ok(ids.len())
}

async fn run(db: &Db, job: &Job) -> Result<()> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|e| agilekit_kernel::Error::Internal(format!("bad payload: {e}")))?;
    match p.ticket {
        Some(ticket) => check(db, p.org, ticket, clock::now(), Some(job.id)).await.map(|_| ()),
        None if p.rescan => rescan(db, p.org).await.map(|_| ()),
        None => Ok(()),
    }
}

/// The job handler, registered on the server's worker for [`JOB_KIND`].
pub fn handler(db: Db) -> Handler {
    Arc::new(move |job: Job| {
        let db = db.clone();
        Box::pin(async move { run(&db, &job).await.map_err(|e| format!("helpdesk sla: {e}")) })
    })
}

/// For tests and tools: who would be warned now (the assignee or the agents, and the watchers).
pub async fn recipients_of(db: &Db, org: OrgId, id: TicketId) -> Result<Vec<String>> {
    let mut tx = db.begin().await?;
    let Some(t) = store::get_in(&mut tx, org, id).await? else { return Ok(Vec::new()) };
    Ok(recipients(&mut tx, &t).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Monday to Friday 09:00–13:00 and 14:00–18:00 (the default).
    fn cal() -> BusinessCalendar {
        BusinessCalendar::default()
    }

    #[test]
    fn the_next_look_is_the_warning_then_just_past_the_deadline() {
        // Wednesday 18 November 2026, 09:00 Rome (08:00 UTC); four business hours: due 14:00 Rome... 09–13 is
        // four hours, so due at 13:00 Rome (12:00 UTC); 80 % is 3 h 12 min: 12:12 Rome.
        let opened = datetime!(2026-11-18 08:00 UTC);
        let c = Clock::start(opened, Duration::hours(4));
        assert_eq!(next_instant(&[(c, false)], 80, opened, &cal()), Some(datetime!(2026-11-18 11:12 UTC)));
        assert_eq!(next_instant(&[(c, true)], 80, opened, &cal()), Some(datetime!(2026-11-18 12:00:01 UTC)));
        // The earliest of two clocks.
        let short = Clock::start(opened, Duration::hours(1));
        assert_eq!(next_instant(&[(c, false), (short, false)], 80, opened, &cal()), Some(datetime!(2026-11-18 08:48 UTC)));
        // Stopped, paused or already breached: nothing to look at.
        let mut stopped = c;
        stopped.stop(datetime!(2026-11-18 09:00 UTC), &cal()).unwrap();
        let mut paused = c;
        paused.pause(datetime!(2026-11-18 09:00 UTC), &cal()).unwrap();
        let breached = Clock::from_parts(c.target(), c.used_before(), c.state(), Some(datetime!(2026-11-18 12:00 UTC)));
        assert_eq!(next_instant(&[(stopped, false), (paused, false), (breached, false)], 80, opened, &cal()), None);
    }

    #[test]
    fn what_is_due_when() {
        let opened = datetime!(2026-11-18 08:00 UTC);
        let c = Clock::start(opened, Duration::hours(4));
        assert_eq!(due(&c, false, 80, datetime!(2026-11-18 11:11:59 UTC), &cal()), None);
        assert_eq!(due(&c, false, 80, datetime!(2026-11-18 11:12 UTC), &cal()), Some(Due::Warn));
        assert_eq!(due(&c, true, 80, datetime!(2026-11-18 11:30 UTC), &cal()), None, "warned once");
        assert_eq!(due(&c, true, 80, datetime!(2026-11-18 12:00 UTC), &cal()), None, "at the deadline: not yet");
        // After the closing at 13:00 Rome, the deadline is breached even though no business time runs.
        assert_eq!(
            due(&c, false, 80, datetime!(2026-11-18 12:00:01 UTC), &cal()),
            Some(Due::Breach(datetime!(2026-11-18 12:00 UTC))),
            "past the deadline: the breach, not a late warning"
        );
        let marked = Clock::from_parts(c.target(), c.used_before(), c.state(), Some(datetime!(2026-11-18 12:00 UTC)));
        assert_eq!(due(&marked, true, 80, datetime!(2026-11-19 12:00 UTC), &cal()), None);
        let mut stopped = c;
        stopped.stop(datetime!(2026-11-18 09:00 UTC), &cal()).unwrap();
        assert_eq!(due(&stopped, false, 80, datetime!(2026-11-30 12:00 UTC), &cal()), None, "answered: a stale job");
    }

    #[test]
    fn payloads_are_stable_text() {
        let org = OrgId::new();
        let t = TicketId::new();
        let a = json!(Payload { org, ticket: Some(t), at: Some(5), rescan: false }).to_string();
        let b = json!(Payload { org, ticket: Some(t), at: Some(5), rescan: false }).to_string();
        assert_eq!(a, b);
        let back: Payload = serde_json::from_str(&rescan_payload(org).to_string()).unwrap();
        assert!(back.rescan && back.ticket.is_none());
    }
}
