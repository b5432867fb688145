//! Sessions live in the database, so that any node behind the load balancer can serve any request.
//! The browser holds a random token; the database holds only its SHA-256.

use time::{Duration, OffsetDateTime};

use crate::cache::{self, Topic};
use crate::db::{Db, DbResult};
use crate::db_run;
use crate::ids::{AccountId, OrgId, SessionId};

pub const COOKIE: &str = "agilekit_session";
/// Idle sessions end after this long; each request within it extends it.
pub const IDLE: Duration = Duration::hours(8);

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Session {
    pub id: SessionId,
    #[serde(skip)]
    pub token_hash: String,
    pub account_id: AccountId,
    pub current_org_id: Option<OrgId>,
    pub mfa_pending: bool,
    pub locale: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// 32 random bytes, URL-safe base64: the secret a browser or client holds.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_secret(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Opens a session and returns it with the token for the cookie.
pub async fn create(
    db: &Db,
    account: AccountId,
    mfa_pending: bool,
    ip: Option<String>,
    user_agent: Option<String>,
) -> DbResult<(Session, String)> {
    let token = new_secret();
    let now = crate::clock::now();
    let s = Session {
        id: SessionId::new(),
        token_hash: hash_secret(&token),
        account_id: account,
        current_org_id: None,
        mfa_pending,
        locale: None,
        ip,
        user_agent: user_agent.map(|u| u.chars().take(300).collect()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + IDLE,
    };
    db_run!(db, |p| { sqlx::query(
        "INSERT INTO sessions (id, token_hash, account_id, current_org_id, mfa_pending, locale, ip, user_agent, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )
    .bind(s.id).bind(&s.token_hash).bind(s.account_id).bind(s.current_org_id).bind(s.mfa_pending).bind(&s.locale)
    .bind(&s.ip).bind(&s.user_agent).bind(s.created_at).bind(s.last_seen_at).bind(s.expires_at)
    .execute(p).await?; });
    Ok((s, token))
}

/// The live session for a token, extended when last seen more than a minute ago.
pub async fn lookup(db: &Db, token: &str) -> DbResult<Option<Session>> {
    let h = hash_secret(token);
    let now = crate::clock::now();
    let s: Option<Session> = db_run!(db, |p| sqlx::query_as("SELECT * FROM sessions WHERE token_hash = $1 AND expires_at > $2")
        .bind(&h).bind(now).fetch_optional(p).await?);
    if let Some(s) = &s {
        if now - s.last_seen_at > Duration::minutes(1) {
            db_run!(db, |p| { sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3")
                .bind(now).bind(now + IDLE).bind(s.id).execute(p).await?; });
        }
    }
    Ok(s)
}

pub async fn list_for(db: &Db, account: AccountId) -> DbResult<Vec<Session>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM sessions WHERE account_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC")
        .bind(account).bind(crate::clock::now()).fetch_all(p).await?))
}

pub async fn delete(db: &Db, id: SessionId) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(p).await?; });
    cache::changed(db, &[Topic::Session(id)]).await
}

/// Ends one of the account's sessions (from the account page); another account's session id does nothing.
pub async fn delete_owned(db: &Db, account: AccountId, id: SessionId) -> DbResult<u64> {
    let n = db_run!(db, |p| sqlx::query("DELETE FROM sessions WHERE id = $1 AND account_id = $2")
        .bind(id).bind(account).execute(p).await?.rows_affected());
    cache::changed(db, &[Topic::Session(id)]).await?;
    Ok(n)
}

/// Ends every session of the account except `keep` (all of them when `keep` is `None`).
pub async fn delete_others(db: &Db, account: AccountId, keep: Option<SessionId>) -> DbResult<u64> {
    let n = db_run!(db, |p| match keep {
        Some(k) => sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2").bind(account).bind(k).execute(p).await?,
        None => sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(account).execute(p).await?,
    }
    .rows_affected());
    cache::changed(db, &[Topic::Account(account)]).await?;
    Ok(n)
}

pub async fn set_current_org(db: &Db, id: SessionId, org: Option<OrgId>) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE sessions SET current_org_id = $1 WHERE id = $2").bind(org).bind(id).execute(p).await?; });
    cache::changed(db, &[Topic::Session(id)]).await
}

pub async fn set_locale(db: &Db, id: SessionId, locale: &str) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE sessions SET locale = $1 WHERE id = $2").bind(locale).bind(id).execute(p).await?; });
    cache::changed(db, &[Topic::Session(id)]).await
}

pub async fn clear_mfa_pending(db: &Db, id: SessionId) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE sessions SET mfa_pending = $1 WHERE id = $2").bind(false).bind(id).execute(p).await?; });
    cache::changed(db, &[Topic::Session(id)]).await
}

/// Removes expired sessions; run by the sweeper.
pub async fn sweep(db: &Db) -> DbResult<u64> {
    Ok(db_run!(db, |p| sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(crate::clock::now()).execute(p).await?.rows_affected()))
}

/// Ends one of the account's sessions from its account page, audited; another account's session is not found.
pub async fn end_owned(db: &Db, actor: &crate::audit::Actor, account: AccountId, id: SessionId) -> crate::Result<()> {
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query("DELETE FROM sessions WHERE id = $1 AND account_id = $2")
        .bind(id).bind(account).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(crate::Error::NotFound);
    }
    tx.changed(Topic::Session(id)).await?;
    crate::audit::record(&mut tx, actor, crate::audit::Change {
        org: None, action: "session.end", entity: "account", entity_id: account.to_string(),
        before: Some(serde_json::json!({"session": id})), after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of the account but `keep` ("log out everywhere else"), audited; returns how many ended.
pub async fn end_others(db: &Db, actor: &crate::audit::Actor, account: AccountId, keep: SessionId) -> crate::Result<u64> {
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
        .bind(account).bind(keep).execute(c).await?.rows_affected());
    tx.changed(Topic::Account(account)).await?;
    crate::audit::record(&mut tx, actor, crate::audit::Change {
        org: None, action: "session.end_others", entity: "account", entity_id: account.to_string(),
        before: None, after: Some(serde_json::json!({"ended": n})),
    }).await?;
    tx.commit().await?;
    Ok(n)
}

/// Changes the password from the account page. The current password must be right (a wrong one counts against
/// the same throttle as a wrong login, so a stolen session cannot guess it), the new one is typed twice; then
/// every other session ends, so whoever knew the old password is out. Field errors use the form's names:
/// `current_password` (`required`, `wrong`), `new_password` (the policy's codes), `password_confirm` (`mismatch`).
pub async fn change_password(
    db: &Db,
    actor: &crate::audit::Actor,
    account: AccountId,
    keep: SessionId,
    current: &str,
    new: &str,
    confirm: &str,
) -> crate::Result<u64> {
    use crate::identity::{password, throttle};
    let mut errs = crate::FieldErrors::new();
    if current.is_empty() {
        errs.add("current_password", "required");
    }
    if let Err(code) = password::check_policy(new) {
        errs.add("new_password", code);
    }
    if new != confirm {
        errs.add("password_confirm", "mismatch");
    }
    errs.into_result()?;
    let acc = crate::identity::get(db, account).await?;
    let key = throttle::account_key(&acc.email);
    if let Some(secs) = throttle::locked(db, &key).await? {
        return Err(crate::Error::Throttled { retry_after_secs: secs });
    }
    if !password::verify(current.to_owned(), acc.password_hash.clone()).await {
        if let Some(secs) = throttle::failure(db, &key, throttle::PER_ACCOUNT).await? {
            return Err(crate::Error::Throttled { retry_after_secs: secs });
        }
        return Err(crate::FieldErrors::one("current_password", "wrong"));
    }
    crate::identity::set_password(db, actor, account, new).await.map_err(|e| match e {
        crate::Error::Invalid(f) => crate::Error::Invalid(crate::FieldErrors(
            f.0.into_iter().map(|e| crate::FieldError { field: "new_password".into(), code: e.code }).collect(),
        )),
        other => other,
    })?;
    Ok(delete_others(db, account, Some(keep)).await?)
}
