//! Funding calls for companies ("bandi"): a call's rules (grant amounts, eligibility, de minimis), companies and
//! their applications, the click day (ADR 0008: protocol numbers strictly increasing and gap-free within a call,
//! assigned at commit by a group-committing sequencer), allocation a sportello or by ranking, open data.

/// Money, sectors, grant rules, eligibility and the de minimis ceiling. No I/O.
pub mod model;
/// Who gets the money: a sportello in protocol order with an overbooking list, or by ranking. No I/O.
pub mod allocation;
