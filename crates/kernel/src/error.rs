//! The service layer's error: what every handler gets back from the kernel and the domains.
//! The web boundary maps it once to a status, a problem+json body or a page with inline field errors.

use crate::db::DbError;
use crate::validate::Invalid;

/// A field-level complaint: which input, and a stable kebab-case code the UI localises.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
}

/// Accumulates the complaints about one submitted form, so the user sees all of them at once.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: &str, code: &str) {
        self.0.push(FieldError { field: field.to_owned(), code: code.to_owned() });
    }
    /// Parses one field, remembering the complaint under `field` when it fails.
    pub fn check<T>(&mut self, field: &str, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.code());
                None
            }
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.code.as_str())
    }
    /// `Ok(())` when nothing was wrong, the accumulated errors otherwise.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::Invalid(self)) }
    }
    pub fn one(field: &str, code: &str) -> Error {
        let mut e = Self::new();
        e.add(field, code);
        Error::Invalid(e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("not signed in")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// The request conflicts with the current state (e.g. an onboarding request already reviewed).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("too many attempts")]
    Throttled { retry_after_secs: u64 },
    #[error("quota exhausted")]
    QuotaExhausted,
    /// Something outside agilekit that the request needed did not answer or refused (a socket send, a remote
    /// service): 502 with this code, not a 500, since nothing in agilekit is broken.
    #[error("upstream failure: {0}")]
    Upstream(&'static str),
    #[error(transparent)]
    Db(DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Error::NotFound,
            other => Error::Db(other),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::from(DbError::from(e))
    }
}

impl Error {
    /// The stable code the API returns in problem+json bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not-found",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden => "forbidden",
            Error::Invalid(_) => "invalid-input",
            Error::Conflict(c) => c,
            Error::Throttled { .. } => "too-many-attempts",
            Error::QuotaExhausted => "quota-exhausted",
            Error::Upstream(c) => c,
            Error::Db(_) | Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
