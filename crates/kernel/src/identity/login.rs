//! Password login with throttling per account and per address.

use crate::audit::{self, Actor, Change};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::{self, Account, password, throttle};

/// Checks a password login. Wrong credentials and unknown accounts look the same (`Unauthenticated`), and take
/// the same time; a locked account or address answers `Throttled` without trying the password at all.
pub async fn password_login(db: &Db, email: &str, pw: &str, ip: Option<&str>) -> Result<Account> {
    let akey = throttle::account_key(email);
    let ikey = ip.map(throttle::ip_key);
    let rows = throttle::rows(db, &akey, ikey.as_deref().unwrap_or(&akey)).await?;
    if let Some(secs) = rows.iter().filter_map(|(_, locked)| *locked).max() {
        return Err(Error::Throttled { retry_after_secs: secs });
    }
    let account = identity::find_by_email(db, email).await?;
    let stored = account.as_ref().filter(|a| !a.disabled).and_then(|a| a.password_hash.clone());
    if password::verify(pw.to_owned(), stored).await {
        let account = account.ok_or(Error::Unauthenticated)?;
        // Earlier failures of this account are forgiven; with none on record there is nothing to write.
        if rows.iter().any(|(k, _)| *k == akey) {
            throttle::clear(db, &akey).await?;
        }
        return Ok(account);
    }
    let mut lock = throttle::failure(db, &akey, throttle::PER_ACCOUNT).await?;
    if let Some(k) = &ikey {
        lock = lock.or(throttle::failure(db, k, throttle::PER_IP).await?);
    }
    if let Some(a) = &account {
        let mut tx = db.begin().await?;
        audit::record(&mut tx, &Actor { account: None, ip: ip.map(str::to_owned) }, Change {
            org: None, action: "login.failed", entity: "account", entity_id: a.id.to_string(),
            before: None, after: Some(serde_json::json!({"locked": lock.is_some()})),
        }).await?;
        tx.commit().await?;
    }
    match lock {
        Some(secs) => Err(Error::Throttled { retry_after_secs: secs }),
        None => Err(Error::Unauthenticated),
    }
}
