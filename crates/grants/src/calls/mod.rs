//! Funding calls: their rules, publication with FAQ, and the public view.

pub mod api;
pub mod budget;
pub mod model;
pub mod service;
pub mod staff_web;
pub mod store;
pub mod web;
