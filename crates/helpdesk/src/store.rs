//! Tickets: the queries. Every function reading or writing tickets takes the organisation and filters by it, except
//! the operator's second-level queue, which reads only escalated tickets of any organisation.

use agilekit_kernel::db::{Db, DbResult, Engine, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use crate::model::{MessageId, TicketId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TicketRow {
    pub id: TicketId,
    pub org_id: OrgId,
    pub number: i64,
    pub requester_id: AccountId,
    pub category: String,
    pub subject: String,
    pub priority: String,
    pub state: String,
    pub assignee_id: Option<AccountId>,
    pub queue: String,
    pub merged_into: Option<TicketId>,
    pub tags: String,
    pub fr_target_secs: i64,
    pub fr_used_secs: i64,
    pub fr_state: String,
    pub fr_since: OffsetDateTime,
    pub fr_breached_at: Option<OffsetDateTime>,
    pub rs_target_secs: i64,
    pub rs_used_secs: i64,
    pub rs_state: String,
    pub rs_since: OffsetDateTime,
    pub rs_breached_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub first_response_at: Option<OffsetDateTime>,
    pub resolved_at: Option<OffsetDateTime>,
    /// From the requester's account (not a ticket column).
    #[sqlx(default)]
    pub requester_name: String,
    #[sqlx(default)]
    pub requester_email: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: MessageId,
    pub org_id: OrgId,
    pub ticket_id: TicketId,
    pub author_id: Option<AccountId>,
    pub kind: String,
    pub body: String,
    pub message_id: String,
    pub created_at: OffsetDateTime,
    #[sqlx(default)]
    pub author_name: Option<String>,
}

const SELECT: &str = "SELECT t.*, a.display_name AS requester_name, a.email AS requester_email
    FROM helpdesk_tickets t JOIN accounts a ON a.id = t.requester_id";

/// The next ticket number of the organisation (unique per organisation; a rolled-back creation may leave a gap).
pub async fn next_number(tx: &mut Tx, org: OrgId) -> DbResult<i64> {
    let (n,): (i64,) = db_run!(tx tx, |c| sqlx::query_as(
        "INSERT INTO helpdesk_counters (org_id, last_number) VALUES ($1, 1)
         ON CONFLICT (org_id) DO UPDATE SET last_number = helpdesk_counters.last_number + 1 RETURNING last_number"
    ).bind(org).fetch_one(c).await?);
    Ok(n)
}

pub async fn insert_ticket(tx: &mut Tx, t: &TicketRow) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_tickets (id, org_id, number, requester_id, category, subject, priority, state, assignee_id,
                queue, merged_into, tags, fr_target_secs, fr_used_secs, fr_state, fr_since, fr_breached_at,
                rs_target_secs, rs_used_secs, rs_state, rs_since, rs_breached_at, created_at, updated_at,
                first_response_at, resolved_at)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26)",
        )
        .bind(t.id).bind(t.org_id).bind(t.number).bind(t.requester_id).bind(&t.category).bind(&t.subject)
        .bind(&t.priority).bind(&t.state).bind(t.assignee_id).bind(&t.queue).bind(t.merged_into).bind(&t.tags)
        .bind(t.fr_target_secs).bind(t.fr_used_secs).bind(&t.fr_state).bind(t.fr_since).bind(t.fr_breached_at)
        .bind(t.rs_target_secs).bind(t.rs_used_secs).bind(&t.rs_state).bind(t.rs_since).bind(t.rs_breached_at)
        .bind(t.created_at).bind(t.updated_at).bind(t.first_response_at).bind(t.resolved_at)
        .execute(c).await?;
    });
    // The SLA job's next look at the ticket's clocks, in the same transaction.
    crate::sla_jobs::schedule(tx, t).await
}

/// Writes back everything a change may touch, in the ticket's own organisation.
pub async fn update_ticket(tx: &mut Tx, t: &TicketRow) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "UPDATE helpdesk_tickets SET priority = $3, state = $4, assignee_id = $5, queue = $6, merged_into = $7,
                tags = $8, fr_target_secs = $9, fr_used_secs = $10, fr_state = $11, fr_since = $12, fr_breached_at = $13,
                rs_target_secs = $14, rs_used_secs = $15, rs_state = $16, rs_since = $17, rs_breached_at = $18,
                updated_at = $19, first_response_at = $20, resolved_at = $21
             WHERE id = $1 AND org_id = $2",
        )
        .bind(t.id).bind(t.org_id).bind(&t.priority).bind(&t.state).bind(t.assignee_id).bind(&t.queue)
        .bind(t.merged_into).bind(&t.tags).bind(t.fr_target_secs).bind(t.fr_used_secs).bind(&t.fr_state)
        .bind(t.fr_since).bind(t.fr_breached_at).bind(t.rs_target_secs).bind(t.rs_used_secs).bind(&t.rs_state)
        .bind(t.rs_since).bind(t.rs_breached_at).bind(t.updated_at).bind(t.first_response_at).bind(t.resolved_at)
        .execute(c).await?;
    });
    // The SLA job's next look at the ticket's clocks, in the same transaction.
    crate::sla_jobs::schedule(tx, t).await
}

pub async fn get(db: &Db, org: OrgId, id: TicketId) -> DbResult<Option<TicketRow>> {
    let sql = format!("{SELECT} WHERE t.org_id = $1 AND t.id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(p).await?))
}

/// The ticket, locked for the rest of the transaction on PostgreSQL (SQLite's write transaction is exclusive).
pub async fn get_in(tx: &mut Tx, org: OrgId, id: TicketId) -> DbResult<Option<TicketRow>> {
    let lock = if tx.engine() == Engine::Postgres { " FOR UPDATE OF t" } else { "" };
    let sql = format!("{SELECT} WHERE t.org_id = $1 AND t.id = $2{lock}");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(c).await?))
}

pub async fn insert_message(tx: &mut Tx, m: &MessageRow) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_messages (id, org_id, ticket_id, author_id, kind, body, message_id, created_at)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(m.id).bind(m.org_id).bind(m.ticket_id).bind(m.author_id).bind(&m.kind).bind(&m.body)
        .bind(&m.message_id).bind(m.created_at)
        .execute(c).await?;
    });
    Ok(())
}

/// A ticket's thread, oldest first; internal notes only when asked for.
pub async fn messages(db: &Db, org: OrgId, ticket: TicketId, with_notes: bool) -> DbResult<Vec<MessageRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT m.*, a.display_name AS author_name FROM helpdesk_messages m LEFT JOIN accounts a ON a.id = m.author_id
         WHERE m.org_id = $1 AND m.ticket_id = $2 AND ($3 OR m.kind = 'reply') ORDER BY m.created_at, m.id"
    ).bind(org).bind(ticket).bind(with_notes).fetch_all(p).await?))
}

/// What a queue page is filtered by. `org: None` only for the operator's second level (with `queue` = operator).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub org: Option<OrgId>,
    pub state: Option<String>,
    pub category: Option<String>,
    pub priority: Option<String>,
    pub assignee: Option<AccountId>,
    pub requester: Option<AccountId>,
    pub queue: Option<String>,
    pub tag: Option<String>,
    /// Full-text search of the subject and the messages (agents only; see crate::search).
    pub search: Option<crate::search::Words>,
}

/// A value bound to a queue query.
enum Bind {
    Org(OrgId),
    Account(AccountId),
    Ticket(TicketId),
    Text(String),
    Time(OffsetDateTime),
    Int(i64),
}

/// The WHERE clause of a queue query with only the filters given, so that each query the planner sees names the
/// columns it filters on (PostgreSQL's generic plans cannot use an index through `$1 IS NULL OR …`).
fn conditions(f: &Filter, engine: Engine, plan: SearchPlan, binds: &mut Vec<Bind>) -> String {
    let mut parts: Vec<String> = vec!["TRUE".into()];
    // A SQLite search from its matches: the unary `+` keeps the planner off the queue indexes (it would walk one in
    // order, checking every ticket against the matches, to spare the sort of a few).
    let lookup = engine == Engine::Sqlite && plan == SearchPlan::Lookup && f.search.is_some();
    let mut add = |sql: &str, b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
        // Not the lookup by rowid itself: that is the one index this plan must take.
        let sql = if lookup && sql.starts_with("t.") && !sql.starts_with("t.rowid IN") { format!("+{sql}") } else { sql.to_owned() };
        parts.push(sql.replace('?', &format!("${}", binds.len())));
    };
    if let Some(v) = f.org {
        add("t.org_id = ?", Bind::Org(v), binds);
    }
    if let Some(v) = &f.state {
        add("t.state = ?", Bind::Text(v.clone()), binds);
    }
    if let Some(v) = &f.category {
        add("t.category = ?", Bind::Text(v.clone()), binds);
    }
    if let Some(v) = &f.priority {
        add("t.priority = ?", Bind::Text(v.clone()), binds);
    }
    if let Some(v) = f.assignee {
        add("t.assignee_id = ?", Bind::Account(v), binds);
    }
    if let Some(v) = f.requester {
        add("t.requester_id = ?", Bind::Account(v), binds);
    }
    if let Some(v) = &f.queue {
        add("t.queue = ?", Bind::Text(v.clone()), binds);
    }
    if let Some(v) = &f.tag {
        add("(' ' || t.tags || ' ') LIKE ?", Bind::Text(format!("% {v} %")), binds);
    }
    if let Some(w) = &f.search {
        match engine {
            Engine::Postgres => add("t.search @@ plainto_tsquery('italian', ?)", Bind::Text(w.plain()), binds),
            // One condition a word: a ticket matches when each word is in its subject or in one of its messages.
            Engine::Sqlite => {
                for (i, term) in w.fts5_each().into_iter().enumerate() {
                    if i == 0 && plan == SearchPlan::Lookup {
                        add(
                            // By rowid: the planner always takes those lookups (by `t.id IN` it walked
                            // a whole queue index checking ids).
                            "t.rowid IN (SELECT t2.rowid FROM helpdesk_fts CROSS JOIN helpdesk_search_docs d
                              ON d.seq = helpdesk_fts.rowid CROSS JOIN helpdesk_tickets t2 ON t2.id = d.ticket_id
                              WHERE helpdesk_fts MATCH ?)",
                            Bind::Text(term),
                            binds,
                        );
                    } else {
                        // CROSS JOIN: the ticket's few documents first, each then checked by the index (a seek
                        // by rowid in each word's list), never the other way round.
                        add(
                            "EXISTS (SELECT 1 FROM helpdesk_search_docs d CROSS JOIN helpdesk_fts
                              ON helpdesk_fts.rowid = d.seq WHERE d.ticket_id = t.id AND helpdesk_fts MATCH ?)",
                            Bind::Text(term),
                            binds,
                        );
                    }
                }
            }
        }
    }
    parts.join(" AND ")
}

/// How SQLite runs a search (PostgreSQL's planner chooses by itself, from the statistics of the words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SearchPlan {
    /// From the full-text matches of the rarest word: each ticket looked up, the rest checked, then sorted.
    Lookup,
    /// Along the queue's index in its order, each ticket checked against the index: the first page fills after a
    /// few hundred tickets when every word is common, where the lookups would visit every match.
    Scan,
}

/// A word matching at least this many documents (subjects and messages) is common.
const COMMON_DOCS: i64 = 20_000;
/// On PostgreSQL, a search matching at least this many tickets (of any organisation) walks the queue index.
const PG_COMMON_ROWS: i64 = 2_000;

/// The ORDER BY of a page: on PostgreSQL a search from its matches sorts an expression no index has, so that the
/// planner takes the GIN index and sorts the few matches (same order).
fn order_by(engine: Engine, plan: SearchPlan, f: &Filter) -> &'static str {
    if engine == Engine::Postgres && plan == SearchPlan::Lookup && f.search.is_some() {
        "ORDER BY (t.updated_at + interval '0 seconds') DESC, t.id DESC"
    } else {
        "ORDER BY t.updated_at DESC, t.id DESC"
    }
}

/// The plan of a search on SQLite, and the filter with its words rarest first (the first one drives a lookup).
/// Counting a word's matches stops at [`COMMON_DOCS`], so this costs little even for the most common words.
async fn sqlite_plan(db: &Db, f: &Filter, exact_count: bool) -> DbResult<(SearchPlan, Filter)> {
    let Some(w) = &f.search else { return Ok((SearchPlan::Lookup, f.clone())) };
    if db.engine() == Engine::Postgres {
        if exact_count {
            return Ok((SearchPlan::Lookup, f.clone()));
        }
        // PostgreSQL's estimate for a word outside its most common ones is far too high for a rare word: it would
        // walk the queue index for a page that never fills. Counted up to PG_COMMON_ROWS by the GIN index.
        let (n,): (i64,) = db_run!(db, |p| sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM helpdesk_tickets t WHERE t.search @@ plainto_tsquery('italian', $1) LIMIT $2) x"
        ).bind(w.plain()).bind(PG_COMMON_ROWS).fetch_one(p).await?);
        return Ok((if n >= PG_COMMON_ROWS { SearchPlan::Scan } else { SearchPlan::Lookup }, f.clone()));
    }
    let mut counted = Vec::new();
    for (word, term) in w.0.iter().zip(w.fts5_each()) {
        let (n,): (i64,) = db_run!(db, |p| sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM helpdesk_fts WHERE helpdesk_fts MATCH $1 LIMIT $2)"
        ).bind(term).bind(COMMON_DOCS).fetch_one(p).await?);
        counted.push((n, word.clone()));
    }
    counted.sort();
    let common = counted.first().is_some_and(|(n, _)| *n >= COMMON_DOCS);
    let mut f = f.clone();
    f.search = Some(crate::search::Words(counted.into_iter().map(|(_, w)| w).collect()));
    // An exact count visits every match anyway: from the matches is then always the cheaper way.
    Ok((if common && !exact_count { SearchPlan::Scan } else { SearchPlan::Lookup }, f))
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Org(v) => q.bind(*v),
                Bind::Account(v) => q.bind(*v),
                Bind::Ticket(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.clone()),
                Bind::Time(v) => q.bind(*v),
                Bind::Int(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// One page of a queue, newest change first, after the cursor (keyset: no OFFSET, whatever the depth).
pub async fn page(db: &Db, f: &Filter, after: Option<(OffsetDateTime, TicketId)>, limit: i64) -> DbResult<Vec<TicketRow>> {
    let (plan, f) = sqlite_plan(db, f, false).await?;
    let f = &f;
    let mut binds = Vec::new();
    let mut cond = conditions(f, db.engine(), plan, &mut binds);
    if let Some((at, id)) = after {
        binds.push(Bind::Time(at));
        binds.push(Bind::Ticket(id));
        cond.push_str(&format!(" AND (t.updated_at, t.id) < (${}, ${})", binds.len() - 1, binds.len()));
    }
    binds.push(Bind::Int(limit));
    let order = order_by(db.engine(), plan, f);
    // SQLite: the tickets first, then their requesters (never the other way round, through the requester index).
    let select = if db.engine() == Engine::Sqlite { SELECT.replace(" JOIN accounts a", " CROSS JOIN accounts a") } else { SELECT.to_owned() };
    let sql = format!("{select} WHERE {cond} {order} LIMIT ${}", binds.len());
    Ok(db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(p).await?))
}

/// How many tickets match, counted apart from the page.
pub async fn count(db: &Db, f: &Filter) -> DbResult<i64> {
    let (plan, f) = sqlite_plan(db, f, true).await?;
    let f = &f;
    let mut binds = Vec::new();
    let cond = conditions(f, db.engine(), plan, &mut binds);
    let sql = format!("SELECT COUNT(*) FROM helpdesk_tickets t WHERE {cond}");
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    Ok(n)
}

/// How many tickets match, counting no further than `cap` + 1 (for a page that shows "more than `cap`": an exact
/// count of a large queue reads all of it).
pub async fn count_upto(db: &Db, f: &Filter, cap: i64) -> DbResult<i64> {
    let (plan, f) = sqlite_plan(db, f, false).await?;
    let f = &f;
    let mut binds = Vec::new();
    let cond = conditions(f, db.engine(), plan, &mut binds);
    binds.push(Bind::Int(cap + 1));
    let order = if db.engine() == Engine::Postgres && plan == SearchPlan::Lookup && f.search.is_some() { order_by(db.engine(), plan, f) } else { "" };
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM helpdesk_tickets t WHERE {cond} {order} LIMIT ${}) x", binds.len());
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    Ok(n)
}

/// The organisation's agents, in a stable order (for round-robin).
pub async fn agents(db: &Db, org: OrgId) -> DbResult<Vec<(AccountId, String)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT a.id, a.display_name FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.org_id = $1 AND m.role = 'agent' AND NOT a.disabled ORDER BY a.id"
    ).bind(org).fetch_all(p).await?))
}

pub async fn last_assignee(tx: &mut Tx, org: OrgId) -> DbResult<Option<AccountId>> {
    let row: Option<(Option<AccountId>,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT last_assignee FROM helpdesk_counters WHERE org_id = $1"
    ).bind(org).fetch_optional(c).await?);
    Ok(row.and_then(|r| r.0))
}

pub async fn set_last_assignee(tx: &mut Tx, org: OrgId, agent: AccountId) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_counters (org_id, last_number, last_assignee) VALUES ($1, 0, $2)
             ON CONFLICT (org_id) DO UPDATE SET last_assignee = $2",
        )
        .bind(org).bind(agent).execute(c).await?;
    });
    Ok(())
}

/// The ticket's watchers: (account, name, email).
pub async fn watchers(db: &Db, org: OrgId, ticket: TicketId) -> DbResult<Vec<(AccountId, String, String)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT a.id, a.display_name, a.email FROM helpdesk_watchers w JOIN accounts a ON a.id = w.account_id
         WHERE w.org_id = $1 AND w.ticket_id = $2 ORDER BY a.display_name, a.id"
    ).bind(org).bind(ticket).fetch_all(p).await?))
}

pub async fn watcher_emails_in(tx: &mut Tx, org: OrgId, ticket: TicketId) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT a.email FROM helpdesk_watchers w JOIN accounts a ON a.id = w.account_id
         WHERE w.org_id = $1 AND w.ticket_id = $2 AND NOT a.disabled ORDER BY a.email"
    ).bind(org).bind(ticket).fetch_all(c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Adds a watcher; false when it was one already.
pub async fn add_watcher(tx: &mut Tx, org: OrgId, ticket: TicketId, account: AccountId) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO helpdesk_watchers (ticket_id, org_id, account_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    ).bind(ticket).bind(org).bind(account).execute(c).await?.rows_affected());
    Ok(n > 0)
}

/// Removes a watcher; false when it was none.
pub async fn remove_watcher(tx: &mut Tx, org: OrgId, ticket: TicketId, account: AccountId) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "DELETE FROM helpdesk_watchers WHERE org_id = $1 AND ticket_id = $2 AND account_id = $3"
    ).bind(org).bind(ticket).bind(account).execute(c).await?.rows_affected());
    Ok(n > 0)
}
