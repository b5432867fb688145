//! The kernel of agilekit: what every service of the kit stands on. Domains use it; it uses no domain.

pub mod audit;
pub mod authz;
pub mod cache;
pub mod catalogue;
pub mod clock;
pub mod db;
pub mod error;
pub mod files;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod onboarding;
pub mod tenancy;
pub mod validate;

pub use db::{Db, Engine, Tx};
pub use error::{Error, FieldError, FieldErrors, Result};
