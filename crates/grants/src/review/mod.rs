//! After admission: formal check, integration requests with deadlines, inadmissibility, grant decision, expense
//! reporting, approval and the amount to pay; every step audited and mailed to the company's PEC.

pub mod api;
pub mod files;
pub mod model;
pub mod service;
pub mod store;
pub mod web;
