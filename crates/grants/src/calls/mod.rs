//! Funding calls: their rules, publication with FAQ, and the public view.

pub mod api;
pub mod model;
pub mod service;
pub mod store;
