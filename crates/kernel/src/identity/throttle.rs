//! Login throttling, per account and per address, kept in the database so every node sees the same counts.
//! After `max` failures within the window a key is locked for `lock`; a success clears the account's key.

use time::Duration;

use crate::db::{Db, DbResult};
use crate::db_run;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max: i64,
    pub window: Duration,
    pub lock: Duration,
}

/// Five wrong passwords for one account in 15 minutes lock it for 15 minutes.
pub const PER_ACCOUNT: Policy = Policy { max: 5, window: Duration::minutes(15), lock: Duration::minutes(15) };
/// One address may fail fifty times in 15 minutes (offices sit behind one NAT).
pub const PER_IP: Policy = Policy { max: 50, window: Duration::minutes(15), lock: Duration::minutes(15) };

/// Seconds until `key` may try again, or `None` when it may try now.
pub async fn locked(db: &Db, key: &str) -> DbResult<Option<u64>> {
    let now = crate::clock::now();
    let until: Option<(Option<time::OffsetDateTime>,)> =
        db_run!(db, |p| sqlx::query_as("SELECT locked_until FROM login_throttle WHERE key = $1").bind(key).fetch_optional(p).await?);
    Ok(match until {
        Some((Some(t),)) if t > now => Some((t - now).whole_seconds().max(1) as u64),
        _ => None,
    })
}

/// The keys among `a` and `b` that have a throttle row: with the lock (seconds left, if locked) of each.
/// One query for both keys of a login, so a login that was never throttled costs one indexed read.
pub async fn rows(db: &Db, a: &str, b: &str) -> DbResult<Vec<(String, Option<u64>)>> {
    let now = crate::clock::now();
    let found: Vec<(String, Option<time::OffsetDateTime>)> = db_run!(db, |p| sqlx::query_as(
        "SELECT key, locked_until FROM login_throttle WHERE key = $1 OR key = $2"
    ).bind(a).bind(b).fetch_all(p).await?);
    Ok(found
        .into_iter()
        .map(|(k, until)| {
            let secs = until.filter(|t| *t > now).map(|t| (t - now).whole_seconds().max(1) as u64);
            (k, secs)
        })
        .collect())
}

/// Counts a failure against `key`; returns the lock in seconds if this failure triggered one.
pub async fn failure(db: &Db, key: &str, policy: Policy) -> DbResult<Option<u64>> {
    let now = crate::clock::now();
    let window_start = now - policy.window;
    let (failures,): (i64,) = db_run!(db, |p| sqlx::query_as(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END,
           window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END
         RETURNING failures"
    ).bind(key).bind(now).bind(window_start).fetch_one(p).await?);
    if failures >= policy.max {
        let until = now + policy.lock;
        db_run!(db, |p| { sqlx::query("UPDATE login_throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE key = $3")
            .bind(until).bind(now).bind(key).execute(p).await?; });
        return Ok(Some(policy.lock.whole_seconds() as u64));
    }
    Ok(None)
}

pub async fn clear(db: &Db, key: &str) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(p).await?; });
    Ok(())
}

pub fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}
