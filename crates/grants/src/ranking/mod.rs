//! The graduatoria of a ranked call: evaluators declare conflicts of interest per application, score the call's
//! grid, the call's administrators read the provisional ranking and publish it (places and money frozen, each company
//! told by PEC). After publication the ranking is read-only; money that comes back is drawn down its waiting list.

pub mod api;
pub mod model;
pub mod service;
pub mod store;
pub mod web;
