//! Companies that apply for funding calls, the people who act for them, and the de minimis aid they declare.

pub mod api;
pub mod model;
pub mod service;
pub mod store;
pub mod web;
