//! Help desk mail: its queries (mailbox settings, the poller's lease, Message-ID look-ups, the handled-mail log),
//! each scoped to the organisation.

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::OrgId;
use time::OffsetDateTime;

use crate::model::TicketId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MailboxRow {
    pub org_id: OrgId,
    pub enabled: bool,
    pub host: String,
    pub port: i64,
    pub tls: String,
    pub username: String,
    pub password: String,
    pub folder: String,
    pub address: String,
    pub delivery_token_hash: Option<String>,
    pub last_poll_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "org_id, enabled, host, port, tls, username, password, folder, address, delivery_token_hash, \
    last_poll_at, last_error, updated_at";

pub async fn mailbox(db: &Db, org: OrgId) -> DbResult<Option<MailboxRow>> {
    let sql = format!("SELECT {COLUMNS} FROM helpdesk_mailboxes WHERE org_id = $1");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org)
        .fetch_optional(p)
        .await?))
}

/// Writes the settings (all but the delivery token, the lease and the poll status).
pub async fn save_settings(tx: &mut Tx, m: &MailboxRow) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO helpdesk_mailboxes (org_id, enabled, host, port, tls, username, password, folder, address, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (org_id) DO UPDATE SET enabled = excluded.enabled, host = excluded.host, port = excluded.port,
           tls = excluded.tls, username = excluded.username, password = excluded.password, folder = excluded.folder,
           address = excluded.address, updated_at = excluded.updated_at, last_error = NULL"
    )
    .bind(m.org_id)
    .bind(m.enabled)
    .bind(&m.host)
    .bind(m.port)
    .bind(&m.tls)
    .bind(&m.username)
    .bind(&m.password)
    .bind(&m.folder)
    .bind(&m.address)
    .bind(m.updated_at)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

pub async fn set_token_hash(
    tx: &mut Tx,
    org: OrgId,
    hash: &str,
    now: OffsetDateTime,
) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO helpdesk_mailboxes (org_id, delivery_token_hash, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (org_id) DO UPDATE SET delivery_token_hash = excluded.delivery_token_hash, updated_at = excluded.updated_at"
    )
    .bind(org)
    .bind(hash)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// The mailboxes to poll.
pub async fn enabled(db: &Db) -> DbResult<Vec<OrgId>> {
    Ok(db_run!(db, |p| sqlx::query_scalar(
        "SELECT org_id FROM helpdesk_mailboxes WHERE enabled = $1 ORDER BY org_id"
    )
    .bind(true)
    .fetch_all(p)
    .await?))
}

/// Takes the mailbox's lease for `owner` until `until` if no other poller holds it: one row update, atomic on both
/// engines, so two nodes never poll the same mailbox at once. Whether it was taken.
pub async fn take_lease(
    db: &Db,
    org: OrgId,
    owner: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> DbResult<bool> {
    let r = db_run!(db, |p| {
        sqlx::query(
        "UPDATE helpdesk_mailboxes SET lease_owner = $1, lease_until = $2
         WHERE org_id = $3 AND enabled = $4 AND (lease_until IS NULL OR lease_until < $5 OR lease_owner = $1)"
    )
    .bind(owner)
    .bind(until)
    .bind(org)
    .bind(true)
    .bind(now)
    .execute(p)
    .await?
    .rows_affected()
    });
    Ok(r == 1)
}

/// Gives the lease back with the poll's result.
pub async fn release_lease(
    db: &Db,
    org: OrgId,
    owner: &str,
    now: OffsetDateTime,
    error: Option<&str>,
) -> DbResult<()> {
    db_run!(db, |p| {
        sqlx::query(
        "UPDATE helpdesk_mailboxes SET lease_owner = NULL, lease_until = NULL, last_poll_at = $1, last_error = $2
         WHERE org_id = $3 AND lease_owner = $4"
    )
    .bind(now)
    .bind(error)
    .bind(org)
    .bind(owner)
    .execute(p)
    .await?
    .rows_affected()
    });
    Ok(())
}

/// The organisation a stored ticket message with this Message-ID belongs to (Message-IDs are unique overall).
pub async fn message_org(db: &Db, message_id: &str) -> DbResult<Option<OrgId>> {
    Ok(db_run!(db, |p| sqlx::query_scalar(
        "SELECT org_id FROM helpdesk_messages WHERE message_id = $1"
    )
    .bind(message_id)
    .fetch_optional(p)
    .await?))
}

pub async fn logged(db: &Db, org: OrgId, message_id: &str) -> DbResult<bool> {
    let n: i64 = db_run!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM helpdesk_mail_log WHERE org_id = $1 AND message_id = $2"
    )
    .bind(org)
    .bind(message_id)
    .fetch_one(p)
    .await?);
    Ok(n > 0)
}

pub async fn log(
    tx: &mut Tx,
    org: OrgId,
    message_id: &str,
    outcome: &str,
    now: OffsetDateTime,
) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query("INSERT INTO helpdesk_mail_log (org_id, message_id, outcome, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org)
        .bind(message_id)
        .bind(outcome)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn ticket_by_number(db: &Db, org: OrgId, number: i64) -> DbResult<Option<TicketId>> {
    Ok(db_run!(db, |p| sqlx::query_scalar(
        "SELECT id FROM helpdesk_tickets WHERE org_id = $1 AND number = $2"
    )
    .bind(org)
    .bind(number)
    .fetch_optional(p)
    .await?))
}

pub async fn ticket_by_message_id(
    db: &Db,
    org: OrgId,
    message_id: &str,
) -> DbResult<Option<TicketId>> {
    Ok(db_run!(db, |p| sqlx::query_scalar(
        "SELECT ticket_id FROM helpdesk_messages WHERE org_id = $1 AND message_id = $2"
    )
    .bind(org)
    .bind(message_id)
    .fetch_optional(p)
    .await?))
}

/// The Message-IDs of the ticket's public messages, oldest first: its mail thread (internal notes never leave).
pub async fn thread_ids(tx: &mut Tx, org: OrgId, ticket: TicketId) -> DbResult<Vec<String>> {
    Ok(db_run!(tx tx, |c| sqlx::query_scalar(
        "SELECT message_id FROM helpdesk_messages WHERE org_id = $1 AND ticket_id = $2 AND kind = 'reply' ORDER BY created_at, id"
    )
    .bind(org)
    .bind(ticket)
    .fetch_all(c)
    .await?))
}

/// The help desk's public address (the Reply-To of its mail), if set.
pub async fn address_in(tx: &mut Tx, org: OrgId) -> DbResult<Option<String>> {
    let a: Option<String> = db_run!(tx tx, |c| sqlx::query_scalar("SELECT address FROM helpdesk_mailboxes WHERE org_id = $1")
        .bind(org)
        .fetch_optional(c)
        .await?);
    Ok(a.filter(|a| !a.is_empty()))
}
