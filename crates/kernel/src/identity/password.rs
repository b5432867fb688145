//! Passwords: argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane). Hashing runs on the blocking pool
//! behind a semaphore sized to the cores, so a login storm queues instead of allocating 19 MiB per request.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::Error;

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

fn argon() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)))
}

/// Why a new password is refused, as a field-error code.
pub fn check_policy(pw: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if n == 0 {
        Err("required")
    } else if n < MIN_LEN {
        Err("too-short")
    } else if n > MAX_LEN {
        Err("too-long")
    } else {
        Ok(())
    }
}

pub fn hash_blocking(pw: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    argon()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hash: {e}")))
}

pub async fn hash(pw: String) -> Result<String, Error> {
    let _permit = gate().acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || hash_blocking(&pw)).await.map_err(|e| Error::Internal(e.to_string()))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("not a password anyone has").unwrap_or_default())
}

/// Verifies `pw` against `stored`; with no stored hash it still spends the time of one verification,
/// so that response times do not tell which accounts exist.
pub async fn verify(pw: String, stored: Option<String>) -> bool {
    if pw.len() > MAX_LEN * 4 {
        return false;
    }
    let Ok(_permit) = gate().acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (dummy_hash(), false),
        };
        let ok = PasswordHash::new(phc).map(|h| argon().verify_password(pw.as_bytes(), &h).is_ok()).unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_verify_and_are_argon2id_at_owasp_parameters() {
        let h = super::hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(super::verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!super::verify("wrong horse battery".into(), Some(h)).await);
        assert!(!super::verify("anything".into(), None).await);
    }
}
