//! The help desk (crates/helpdesk): tickets, queues, SLAs, knowledge base, through HTTP on both engines.

/// This domain's organisation-scoped routes, each tried by this module's isolation test with another
/// organisation's IDs: (method, path template, plausible body). The guard in `isolation.rs` reads this table.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[];
