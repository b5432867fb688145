//! Second factor: time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), the secret
//! kept on the account (`totp_secret`, pending until confirmed by a first code), and the last step used
//! (`totp_last_step`), so that a code works once: a replayed or older code is refused.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::db::Db;
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::identity::{self, throttle};
use crate::ids::AccountId;

pub const DIGITS: u32 = 6;
pub const STEP_SECS: i64 = 30;
/// Codes one step early or late are accepted: phone clocks drift and people type slowly.
pub const WINDOW: i64 = 1;
/// The issuer shown by authenticator apps next to the account.
pub const ISSUER: &str = "agilekit";

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect the secret.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32, ignoring case, spaces, dashes and padding (people copy secrets by hand).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !matches!(c, ' ' | '-' | '=')) {
        let v = B32.iter().position(|&b| b as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A new secret: 20 random bytes (the HMAC-SHA-1 block of RFC 4226's recommendation), base32.
pub fn generate_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    base32_encode(&bytes)
}

/// RFC 4226 HOTP: the `digits`-digit code for `counter`.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(digits)
}

/// The time step of a Unix time.
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS)
}

/// The 6-digit code of `secret` (base32) at Unix time `unix`; `None` for a secret that is not base32.
pub fn code_at(secret: &str, unix: i64) -> Option<String> {
    let key = base32_decode(secret)?;
    let step = u64::try_from(step_at(unix)).ok()?;
    Some(format!("{:0width$}", hotp(&key, step, DIGITS), width = DIGITS as usize))
}

/// Compares without an early exit, so that timing does not tell how many leading digits were right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The step whose code `code` is, within one step of `now`; `None` when it matches none. Spaces are ignored.
/// Pure: refusing a code already used is [`use_code`]'s job.
pub fn verify(secret: &str, code: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = base32_decode(secret)?;
    let now_step = step_at(now.unix_timestamp());
    let mut found = None;
    // Every candidate is computed, matched or not, so the time spent does not depend on which one matched.
    for step in (now_step - WINDOW)..=(now_step + WINDOW) {
        let Ok(counter) = u64::try_from(step) else { continue };
        let expected = format!("{:0width$}", hotp(&key, counter, DIGITS), width = DIGITS as usize);
        if same(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI that authenticator apps read from the QR code.
pub fn otpauth_uri(account_email: &str, secret: &str) -> String {
    let enc = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
    };
    format!(
        "otpauth://totp/{issuer}:{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        issuer = enc(ISSUER),
        label = enc(account_email),
    )
}

fn throttle_key(account: AccountId) -> String {
    format!("totp:{account}")
}

/// Checks a code against the account's secret (the pending one when `pending` is true) and spends it: the step
/// is recorded only if it is newer than the last one used, in one statement, so two requests racing with the
/// same code cannot both pass. Failures count against the account's throttle; a locked account is refused
/// without looking at the code.
async fn use_code(db: &Db, actor: &Actor, account: AccountId, code: &str, pending: bool) -> Result<i64> {
    let key = throttle_key(account);
    if let Some(secs) = throttle::locked(db, &key).await? {
        return Err(Error::Throttled { retry_after_secs: secs });
    }
    let acc = identity::get(db, account).await?;
    let secret = acc.totp_secret.as_deref().filter(|_| acc.totp_enabled != pending);
    let step = secret.and_then(|s| verify(s, code, crate::clock::now()));
    let spent = match step {
        Some(step) => db_run!(db, |p| sqlx::query(
            "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)"
        ).bind(step).bind(account).execute(p).await?.rows_affected()) == 1,
        None => false,
    };
    if let (true, Some(step)) = (spent, step) {
        throttle::clear(db, &key).await?;
        return Ok(step);
    }
    let lock = throttle::failure(db, &key, throttle::PER_ACCOUNT).await?;
    let mut tx = db.begin().await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.totp_failed", entity: "account", entity_id: account.to_string(),
        before: None, after: Some(serde_json::json!({"locked": lock.is_some(), "replayed": step.is_some()})),
    }).await?;
    tx.commit().await?;
    match lock {
        Some(secs) => Err(Error::Throttled { retry_after_secs: secs }),
        None => Err(FieldErrors::one("code", "wrong")),
    }
}

/// The second step of a login: a current, unused code of the account's enabled secret.
/// A wrong or replayed code is a field error on `code`; too many make it `Throttled`.
pub async fn check_login(db: &Db, account: AccountId, code: &str, ip: Option<String>) -> Result<()> {
    use_code(db, &Actor::account(account, ip), account, code, false).await.map(|_| ())
}

/// Starts enrolment: a new pending secret replaces any earlier pending one. Refused while a second factor is
/// enabled (it must be disabled first, with a code). Returns the secret to show.
pub async fn begin_setup(db: &Db, actor: &Actor, account: AccountId) -> Result<String> {
    let secret = generate_secret();
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query(
        "UPDATE accounts SET totp_secret = $1, totp_last_step = NULL, updated_at = $2 WHERE id = $3 AND totp_enabled = $4"
    ).bind(&secret).bind(crate::clock::now()).bind(account).bind(false).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::Conflict("totp-already-enabled"));
    }
    tx.changed(crate::cache::Topic::Account(account)).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.totp_setup", entity: "account", entity_id: account.to_string(), before: None, after: None,
    }).await?;
    tx.commit().await?;
    Ok(secret)
}

/// The pending secret being enrolled, if enrolment was started and not yet confirmed.
pub async fn pending_secret(db: &Db, account: AccountId) -> Result<Option<String>> {
    let acc = identity::get(db, account).await?;
    Ok(if acc.totp_enabled { None } else { acc.totp_secret })
}

/// Confirms enrolment with a current code of the pending secret; from now on login asks for a code.
pub async fn enable(db: &Db, actor: &Actor, account: AccountId, code: &str) -> Result<()> {
    use_code(db, actor, account, code, true).await?;
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query(
        "UPDATE accounts SET totp_enabled = $1, updated_at = $2 WHERE id = $3 AND totp_secret IS NOT NULL AND totp_enabled = $4"
    ).bind(true).bind(crate::clock::now()).bind(account).bind(false).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::Conflict("totp-already-enabled"));
    }
    tx.changed(crate::cache::Topic::Account(account)).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.totp_enable", entity: "account", entity_id: account.to_string(),
        before: Some(serde_json::json!({"totp_enabled": false})), after: Some(serde_json::json!({"totp_enabled": true})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// Turns the second factor off; it takes a current code, so a stolen session alone cannot do it.
pub async fn disable(db: &Db, actor: &Actor, account: AccountId, code: &str) -> Result<()> {
    use_code(db, actor, account, code, false).await?;
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query(
        "UPDATE accounts SET totp_enabled = $1, totp_secret = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $3"
    ).bind(false).bind(crate::clock::now()).bind(account).execute(c).await?; });
    tx.changed(crate::cache::Topic::Account(account)).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.totp_disable", entity: "account", entity_id: account.to_string(),
        before: Some(serde_json::json!({"totp_enabled": true})), after: Some(serde_json::json!({"totp_enabled": false})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 column (8 digits); our codes are their last 6 digits.
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        let secret = base32_encode(RFC_SECRET);
        for (t, eight) in vectors {
            assert_eq!(hotp(RFC_SECRET, step_at(t) as u64, 8), eight, "T={t}");
            assert_eq!(code_at(&secret, t).unwrap(), format!("{:06}", eight % 1_000_000), "T={t}");
        }
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None, "1 is not a base32 digit");
        let s = generate_secret();
        assert_eq!(s.len(), 32, "20 bytes are 32 base32 digits");
        assert_eq!(base32_decode(&s).unwrap().len(), 20);
        assert_ne!(s, generate_secret());
    }

    #[test]
    fn verify_accepts_one_step_either_side_and_nothing_else() {
        let secret = base32_encode(RFC_SECRET);
        let now = OffsetDateTime::from_unix_timestamp(1111111111).unwrap();
        let step = step_at(1111111111);
        let at = |dt: i64| code_at(&secret, 1111111111 + dt).unwrap();
        assert_eq!(verify(&secret, &at(0), now), Some(step));
        assert_eq!(verify(&secret, &at(-30), now), Some(step - 1));
        assert_eq!(verify(&secret, &at(30), now), Some(step + 1));
        assert_eq!(verify(&secret, &at(-60), now), None);
        assert_eq!(verify(&secret, &at(60), now), None);
        let spaced = format!("{} {}", &at(0)[..3], &at(0)[3..]);
        assert_eq!(verify(&secret, &spaced, now), Some(step), "spaces typed between groups are ignored");
        assert_eq!(verify(&secret, "12345", now), None);
        assert_eq!(verify(&secret, "abcdef", now), None);
        assert_eq!(verify("not base32!", &at(0), now), None);
    }

    #[test]
    fn otpauth_uri_names_issuer_account_and_parameters() {
        let u = otpauth_uri("mario.rossi@example.it", "GEZDGNBV");
        assert_eq!(
            u,
            "otpauth://totp/agilekit:mario.rossi%40example.it?secret=GEZDGNBV&issuer=agilekit&algorithm=SHA1&digits=6&period=30"
        );
    }
}
