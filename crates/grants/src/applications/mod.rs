//! Applications of companies to calls: drafts, the click-day sequencer, receipts, withdrawals.

pub mod api;
pub mod model;
pub mod pdf;
pub mod sequencer;
pub mod service;
pub mod store;
pub mod web;
