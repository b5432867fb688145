//! Help desk: tickets from the portal and by mail, agents' queues (each organisation's and the operator's second
//! level), business-hours SLAs on each organisation's calendar, the knowledge base and satisfaction surveys.

pub mod calendar;
pub mod sla;

pub mod api;
pub mod model;
pub mod service;
pub mod store;
pub mod web;

/// The knowledge base: articles per organisation and operator-wide, full-text search, suggestions, feedback.
pub mod kb;

use agilekit_web::{AppState, Domain, ServicePages};
use axum::Router;

/// The routes, API description and pages this domain adds to the application.
pub fn domain() -> Domain {
    let mut openapi = <api::ApiDoc as utoipa::OpenApi>::openapi();
    openapi.merge(<kb::api::ApiDoc as utoipa::OpenApi>::openapi());
    Domain {
        router: Router::<AppState>::new().merge(api::router()).merge(web::router()).merge(kb::router()),
        openapi,
        pages: vec![ServicePages { service: "helpdesk", mine: "/helpdesk", admin: "/orgs/{org}/helpdesk" }],
    }
}
