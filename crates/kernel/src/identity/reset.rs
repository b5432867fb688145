//! Password reset and first-password links: single use, one hour, stored as a SHA-256.

use time::Duration;

use crate::audit::{self, Actor, Change};
use crate::db::{Db, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::identity::session::{self, hash_secret, new_secret};
use crate::ids::AccountId;

pub const VALIDITY: Duration = Duration::hours(1);

/// Writes a reset token in the caller's transaction and returns the secret for the link.
pub async fn issue_in(tx: &mut Tx, account: AccountId, validity: Duration) -> Result<String> {
    let secret = new_secret();
    let now = crate::clock::now();
    db_run!(tx tx, |c| { sqlx::query(
        "INSERT INTO password_resets (id, account_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
    ).bind(uuid::Uuid::now_v7()).bind(account).bind(hash_secret(&secret)).bind(now).bind(now + validity).execute(c).await?; });
    Ok(secret)
}

/// Whether a link is still usable (for showing the form or a friendly "expired" page).
pub async fn is_valid(db: &Db, secret: &str) -> Result<bool> {
    let row: Option<(AccountId,)> = db_run!(db, |p| sqlx::query_as(
        "SELECT account_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
    ).bind(hash_secret(secret)).bind(crate::clock::now()).fetch_optional(p).await?);
    Ok(row.is_some())
}

/// Sets a new password through a link; the link is spent and every session of the account ends.
pub async fn consume(db: &Db, ip: Option<String>, secret: &str, new_password: &str) -> Result<AccountId> {
    super::password::check_policy(new_password).map_err(|code| FieldErrors::one("password", code))?;
    let hash = super::password::hash(new_password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let now = crate::clock::now();
    let row: Option<(AccountId,)> = db_run!(tx &mut tx, |c| sqlx::query_as(
        "UPDATE password_resets SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING account_id"
    ).bind(now).bind(hash_secret(secret)).fetch_optional(c).await?);
    let Some((account,)) = row else { return Err(Error::Conflict("link-expired")) };
    db_run!(tx &mut tx, |c| { sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(&hash).bind(now).bind(account).execute(c).await?; });
    tx.changed(crate::cache::Topic::Account(account)).await?;
    audit::record(&mut tx, &Actor::account(account, ip), Change {
        org: None, action: "account.password_reset", entity: "account", entity_id: account.to_string(), before: None, after: None,
    }).await?;
    tx.commit().await?;
    session::delete_others(db, account, None).await?;
    Ok(account)
}
