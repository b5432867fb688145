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

/// The WHERE clause of a queue query with only the filters given, so that each query the planner sees names the
/// columns it filters on (PostgreSQL's generic plans cannot use an index through `$1 IS NULL OR …`). A SQLite search
/// is not here: it goes through the full-text index alone ([`sqlite_search`]).
fn conditions(f: &Filter, binds: &mut Vec<Bind>) -> String {
    let mut parts: Vec<String> = vec!["TRUE".into()];
    let mut add = |sql: &str, b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
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
        add("t.search @@ plainto_tsquery('italian', ?)", Bind::Text(w.plain()), binds);
    }
    parts.join(" AND ")
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite search: one FTS5 row per ticket whose rowid is its place in the queue (migration 0012)

/// The MATCH expression of a SQLite search, and the filters the index does not hold (checked on the tickets).
fn sqlite_search(f: &Filter, w: &crate::search::Words, binds: &mut Vec<Bind>) -> (String, String) {
    use crate::search::key_token;
    let mut keys = Vec::new();
    if let Some(v) = f.org {
        keys.push(key_token('o', v.0.as_bytes()));
    }
    if let Some(v) = &f.state {
        keys.push(key_token('s', v.as_bytes()));
    }
    if let Some(v) = &f.category {
        keys.push(key_token('c', v.as_bytes()));
    }
    if let Some(v) = &f.priority {
        keys.push(key_token('p', v.as_bytes()));
    }
    if let Some(v) = &f.queue {
        keys.push(key_token('q', v.as_bytes()));
    }
    if let Some(v) = f.assignee {
        keys.push(key_token('a', v.0.as_bytes()));
    }
    let mut rest = String::new();
    if let Some(v) = f.requester {
        binds.push(Bind::Account(v));
        rest.push_str(&format!(" AND t.requester_id = ${}", binds.len()));
    }
    if let Some(v) = &f.tag {
        binds.push(Bind::Text(format!("% {v} %")));
        rest.push_str(&format!(" AND (' ' || t.tags || ' ') LIKE ${}", binds.len()));
    }
    (crate::search::fts5_match(w, &keys), rest)
}

/// Keys of one microsecond in the SQLite index (migration 0012).
const SQLITE_TIES: i64 = 2048;

/// A ticket's key for an instant: its microseconds × [`SQLITE_TIES`] (the first key of that microsecond).
fn sqlite_key(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64 * SQLITE_TIES
}

/// The tickets from the full-text index and back to the tickets by key: FTS5 walks its lists from the newest key
/// down and stops at the page's end, whatever the number of matches. Every filter but the requester and the tag
/// is a token of the index; those two are checked on the tickets met on the way.
const SQLITE_SEARCH_FROM: &str = "FROM helpdesk_search_fts CROSS JOIN helpdesk_search_keys k ON k.key = helpdesk_search_fts.rowid
    CROSS JOIN helpdesk_tickets t ON t.id = k.ticket_id";

/// A ticket of a SQLite search with its key in the index.
#[derive(sqlx::FromRow)]
struct Keyed {
    #[sqlx(flatten)]
    row: TicketRow,
    search_key: i64,
}

/// The page in the queue's exact order: the index's order is the queue's but among tickets changed in the same
/// microsecond (a bulk action), which the index keeps in order of arrival and the queue by id. So the cursor is the
/// queue's own (its instant's keys, then its (updated_at, id) checked), and when the page ends inside a
/// microsecond shared with others, the rest of that microsecond's tickets are read too, and all sorted as the
/// queue sorts them.
async fn sqlite_search_page(
    db: &Db,
    f: &Filter,
    w: &crate::search::Words,
    after: Option<(OffsetDateTime, TicketId)>,
    limit: i64,
) -> DbResult<Vec<TicketRow>> {
    let mut binds = vec![Bind::Text(String::new())];
    let (expr, mut rest) = sqlite_search(f, w, &mut binds);
    binds[0] = Bind::Text(expr.clone());
    let rest_filters = rest.clone();
    if let Some((at, id)) = after {
        binds.push(Bind::Int(sqlite_key(at) + SQLITE_TIES));
        rest.push_str(&format!(" AND helpdesk_search_fts.rowid < ${}", binds.len()));
        binds.push(Bind::Time(at));
        binds.push(Bind::Ticket(id));
        rest.push_str(&format!(" AND (t.updated_at, t.id) < (${}, ${})", binds.len() - 1, binds.len()));
    }
    let select = format!(
        "SELECT t.*, a.display_name AS requester_name, a.email AS requester_email, helpdesk_search_fts.rowid AS search_key
           {SQLITE_SEARCH_FROM} CROSS JOIN accounts a ON a.id = t.requester_id
         WHERE helpdesk_search_fts MATCH $1{rest}"
    );
    let mut page_binds: Vec<&Bind> = binds.iter().collect();
    let n = Bind::Int(limit);
    page_binds.push(&n);
    let sql = format!("{select} ORDER BY helpdesk_search_fts.rowid DESC LIMIT ${}", page_binds.len());
    let mut rows: Vec<Keyed> = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), page_binds.iter().copied()).fetch_all(p).await?);
    let last = rows.last().map(|k| (k.search_key, sqlite_key(k.row.updated_at)));
    if let Some((key, base)) = last.filter(|(key, base)| rows.len() as i64 == limit && key > base) {
        // Others of the last ticket's microsecond, below it in the index: the first `limit` of them by id (the
        // queue's order there). From the keys alone when no filter needs the ticket (up to 2048 keys read, no
        // ticket), then those tickets.
        let mut more: Vec<Keyed> = if rest_filters.is_empty() {
            let mut ids_binds = vec![Bind::Text(expr.clone()), Bind::Int(base), Bind::Int(key)];
            let mut sql = String::from(
                "SELECT k.ticket_id FROM helpdesk_search_fts CROSS JOIN helpdesk_search_keys k ON k.key = helpdesk_search_fts.rowid
                  WHERE helpdesk_search_fts MATCH $1 AND helpdesk_search_fts.rowid >= $2 AND helpdesk_search_fts.rowid < $3",
            );
            if let Some((_, id)) = after.filter(|(at, _)| sqlite_key(*at) == base) {
                ids_binds.push(Bind::Ticket(id));
                sql.push_str(&format!(" AND k.ticket_id < ${}", ids_binds.len()));
            }
            ids_binds.push(Bind::Int(limit));
            sql.push_str(&format!(" ORDER BY k.ticket_id DESC LIMIT ${}", ids_binds.len()));
            let ids: Vec<(TicketId,)> = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), &ids_binds).fetch_all(p).await?);
            if ids.is_empty() {
                Vec::new()
            } else {
                let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT t.*, a.display_name AS requester_name, a.email AS requester_email, 0 AS search_key
                       FROM helpdesk_tickets t CROSS JOIN accounts a ON a.id = t.requester_id WHERE t.id IN ({})",
                    marks.join(", ")
                );
                let id_binds: Vec<Bind> = ids.into_iter().map(|(id,)| Bind::Ticket(id)).collect();
                db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), &id_binds).fetch_all(p).await?)
            }
        } else {
            let (lo, hi, n) = (Bind::Int(base), Bind::Int(key), Bind::Int(limit));
            let mut more_binds: Vec<&Bind> = binds.iter().collect();
            more_binds.extend([&lo, &hi, &n]);
            let sql = format!(
                "{select} AND helpdesk_search_fts.rowid >= ${} AND helpdesk_search_fts.rowid < ${} ORDER BY t.id DESC LIMIT ${}",
                more_binds.len() - 2,
                more_binds.len() - 1,
                more_binds.len()
            );
            db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), more_binds.iter().copied()).fetch_all(p).await?)
        };
        more.retain(|m| !rows.iter().any(|r| r.row.id == m.row.id));
        rows.extend(more);
    }
    let mut rows: Vec<TicketRow> = rows.into_iter().map(|k| k.row).collect();
    rows.sort_by(|a, b| (b.updated_at, b.id).cmp(&(a.updated_at, a.id)));
    rows.truncate(limit as usize);
    Ok(rows)
}

/// How many tickets a SQLite search matches, up to `cap` when given.
async fn sqlite_search_count(db: &Db, f: &Filter, w: &crate::search::Words, cap: Option<i64>) -> DbResult<i64> {
    let mut binds = vec![Bind::Text(String::new())];
    let (expr, rest) = sqlite_search(f, w, &mut binds);
    binds[0] = Bind::Text(expr);
    let from = if rest.is_empty() { "FROM helpdesk_search_fts" } else { SQLITE_SEARCH_FROM };
    let mut sql = format!("SELECT 1 {from} WHERE helpdesk_search_fts MATCH $1{rest}");
    if let Some(cap) = cap {
        binds.push(Bind::Int(cap + 1));
        sql.push_str(&format!(" LIMIT ${}", binds.len()));
    }
    let sql = format!("SELECT COUNT(*) FROM ({sql})");
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    Ok(n)
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL search

/// A PostgreSQL search first walks this many tickets of the queue in its order (after the cursor), checking each
/// against the query: a page of common words (one ticket in 40 or more) fills there, without the GIN index (which
/// yields every match of a common word, unordered, to be sorted). Fewer matches there: the GIN index's matches,
/// sorted (rare words). Measured at a million tickets: 1.2 ms for 1,000 tickets, 3–4 ms for 2,000, 8–16 ms for
/// 3,000 (a tsvector read with each ticket).
const PG_PROBE_ROWS: i64 = 1_000;
/// The same for a capped count (101 matches to find for the page's "more than 100": one ticket in 20 or more).
const PG_COUNT_PROBE_ROWS: i64 = 2_000;

/// The queue's tickets (filters and cursor, without the search) as a subquery in queue order, the first
/// `rows` only, and the condition of the search on them.
fn pg_probe(f: &Filter, w: &crate::search::Words, after: Option<(OffsetDateTime, TicketId)>, rows: i64, binds: &mut Vec<Bind>) -> (String, String) {
    let plain = Filter { search: None, ..f.clone() };
    let mut cond = conditions(&plain, binds);
    if let Some((at, id)) = after {
        binds.push(Bind::Time(at));
        binds.push(Bind::Ticket(id));
        cond.push_str(&format!(" AND (t.updated_at, t.id) < (${}, ${})", binds.len() - 1, binds.len()));
    }
    binds.push(Bind::Int(rows));
    let sub = format!("SELECT t.* FROM helpdesk_tickets t WHERE {cond} ORDER BY t.updated_at DESC, t.id DESC LIMIT ${}", binds.len());
    binds.push(Bind::Text(w.plain()));
    (sub, format!("t.search @@ plainto_tsquery('italian', ${})", binds.len()))
}

async fn pg_search_page(
    db: &Db,
    f: &Filter,
    w: &crate::search::Words,
    after: Option<(OffsetDateTime, TicketId)>,
    limit: i64,
) -> DbResult<Vec<TicketRow>> {
    let mut binds = Vec::new();
    let (sub, matches) = pg_probe(f, w, after, PG_PROBE_ROWS, &mut binds);
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT t.*, a.display_name AS requester_name, a.email AS requester_email
           FROM (SELECT t.* FROM ({sub}) t WHERE {matches} ORDER BY t.updated_at DESC, t.id DESC LIMIT ${}) t
           JOIN accounts a ON a.id = t.requester_id
          ORDER BY t.updated_at DESC, t.id DESC",
        binds.len()
    );
    let rows: Vec<TicketRow> = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(p).await?);
    if rows.len() as i64 >= limit {
        return Ok(rows);
    }
    // From the GIN index's matches, sorted. Materialized apart, so that the other filters are checked on the
    // matches: with them in the same query the generic plan of the prepared statement (which cannot know the
    // organisation's size) ANDs the GIN bitmap with the organisation's whole index (140 ms at 900,000 tickets).
    let mut binds = vec![Bind::Text(w.plain())];
    let plain = Filter { search: None, ..f.clone() };
    let mut cond = conditions(&plain, &mut binds);
    if let Some((at, id)) = after {
        binds.push(Bind::Time(at));
        binds.push(Bind::Ticket(id));
        cond.push_str(&format!(" AND (t.updated_at, t.id) < (${}, ${})", binds.len() - 1, binds.len()));
    }
    binds.push(Bind::Int(limit));
    let sql = format!(
        "WITH m AS MATERIALIZED (SELECT t.* FROM helpdesk_tickets t WHERE t.search @@ plainto_tsquery('italian', $1))
         SELECT t.*, a.display_name AS requester_name, a.email AS requester_email FROM m t JOIN accounts a ON a.id = t.requester_id
          WHERE {cond} ORDER BY t.updated_at DESC, t.id DESC LIMIT ${}",
        binds.len()
    );
    Ok(db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(p).await?))
}

/// The matches of a PostgreSQL search that pass the other filters, counted up to `cap` + 1 when given: the GIN
/// index's matches first, apart (see [`pg_search_page`]).
async fn pg_search_count(db: &Db, f: &Filter, w: &crate::search::Words, cap: Option<i64>) -> DbResult<i64> {
    let mut binds = vec![Bind::Text(w.plain())];
    let plain = Filter { search: None, ..f.clone() };
    let cond = conditions(&plain, &mut binds);
    let limit = match cap {
        Some(cap) => {
            binds.push(Bind::Int(cap + 1));
            format!(" LIMIT ${}", binds.len())
        }
        None => String::new(),
    };
    let sql = format!(
        "WITH m AS MATERIALIZED (SELECT t.* FROM helpdesk_tickets t WHERE t.search @@ plainto_tsquery('italian', $1))
         SELECT COUNT(*) FROM (SELECT 1 FROM m t WHERE {cond}{limit}) x"
    );
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    Ok(n)
}

/// A PostgreSQL search counted up to `cap` + 1: among the queue's first tickets when they hold that many, else
/// from the GIN index's matches.
async fn pg_search_count_upto(db: &Db, f: &Filter, w: &crate::search::Words, cap: i64) -> DbResult<i64> {
    let mut binds = Vec::new();
    let (sub, matches) = pg_probe(f, w, None, PG_COUNT_PROBE_ROWS, &mut binds);
    binds.push(Bind::Int(cap + 1));
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM ({sub}) t WHERE {matches} LIMIT ${}) x", binds.len());
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    if n > cap {
        return Ok(n);
    }
    pg_search_count(db, f, w, Some(cap)).await
}

/// One page of a queue, newest change first, after the cursor (keyset: no OFFSET, whatever the depth).
pub async fn page(db: &Db, f: &Filter, after: Option<(OffsetDateTime, TicketId)>, limit: i64) -> DbResult<Vec<TicketRow>> {
    if let (Engine::Sqlite, Some(w)) = (db.engine(), &f.search) {
        return sqlite_search_page(db, f, w, after, limit).await;
    }
    if let (Engine::Postgres, Some(w)) = (db.engine(), &f.search) {
        return pg_search_page(db, f, w, after, limit).await;
    }
    let mut binds = Vec::new();
    let mut cond = conditions(f, &mut binds);
    if let Some((at, id)) = after {
        binds.push(Bind::Time(at));
        binds.push(Bind::Ticket(id));
        cond.push_str(&format!(" AND (t.updated_at, t.id) < (${}, ${})", binds.len() - 1, binds.len()));
    }
    binds.push(Bind::Int(limit));
    let order = "ORDER BY t.updated_at DESC, t.id DESC";
    // SQLite: the tickets first, then their requesters (never the other way round, through the requester index).
    let select = if db.engine() == Engine::Sqlite { SELECT.replace(" JOIN accounts a", " CROSS JOIN accounts a") } else { SELECT.to_owned() };
    let sql = format!("{select} WHERE {cond} {order} LIMIT ${}", binds.len());
    Ok(db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_all(p).await?))
}

/// How many tickets match, counted apart from the page.
pub async fn count(db: &Db, f: &Filter) -> DbResult<i64> {
    if let (Engine::Sqlite, Some(w)) = (db.engine(), &f.search) {
        return sqlite_search_count(db, f, w, None).await;
    }
    if let (Engine::Postgres, Some(w)) = (db.engine(), &f.search) {
        return pg_search_count(db, f, w, None).await;
    }
    let mut binds = Vec::new();
    let cond = conditions(f, &mut binds);
    let sql = format!("SELECT COUNT(*) FROM helpdesk_tickets t WHERE {cond}");
    let (n,): (i64,) = db_run!(db, |p| bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &binds).fetch_one(p).await?);
    Ok(n)
}

/// How many tickets match, counting no further than `cap` + 1 (for a page that shows "more than `cap`": an exact
/// count of a large queue reads all of it).
pub async fn count_upto(db: &Db, f: &Filter, cap: i64) -> DbResult<i64> {
    if let (Engine::Sqlite, Some(w)) = (db.engine(), &f.search) {
        return sqlite_search_count(db, f, w, Some(cap)).await;
    }
    if let (Engine::Postgres, Some(w)) = (db.engine(), &f.search) {
        return pg_search_count_upto(db, f, w, cap).await;
    }
    let mut binds = Vec::new();
    let cond = conditions(f, &mut binds);
    binds.push(Bind::Int(cap + 1));
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM helpdesk_tickets t WHERE {cond} LIMIT ${}) x", binds.len());
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
