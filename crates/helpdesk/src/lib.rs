//! Help desk: tickets from the portal and by mail, agents' queues (each organisation's and the operator's second
//! level), business-hours SLAs on each organisation's calendar, the knowledge base and satisfaction surveys.

pub mod calendar;
pub mod sla;

pub mod api;
/// Files of tickets' messages (kept by the kernel's file store), their visibility and downloads.
pub mod attachments;
pub mod model;
pub mod search;
pub mod service;
/// Per-organisation SLA policy, business calendar and warning threshold; SLA warnings and breaches by job;
/// canned responses (and their API and pages).
pub mod settings;
pub mod sla_jobs;
pub mod canned;
pub mod settings_api;
pub mod settings_web;
pub mod store;
/// Help desk mail: inbound messages (IMAP poller, delivery endpoint) threaded onto tickets; outgoing threading.
pub mod inbound;
pub mod web;

/// The knowledge base: articles per organisation and operator-wide, full-text search, suggestions, feedback.
pub mod kb;

/// The satisfaction survey after resolution, and the agents' reports (volume, backlog, SLA, satisfaction; CSV).
pub mod reports;
pub mod survey;

use agilekit_web::{AppState, Domain, ServicePages};
use axum::Router;

/// The routes, API description and pages this domain adds to the application.
pub fn domain() -> Domain {
    let mut openapi = <api::ApiDoc as utoipa::OpenApi>::openapi();
    openapi.merge(<kb::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<inbound::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<settings_api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<survey::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<reports::ApiDoc as utoipa::OpenApi>::openapi());
    Domain {
        router: Router::<AppState>::new().merge(api::router()).merge(web::router()).merge(kb::router()).merge(inbound::api::router()).merge(settings_api::router()).merge(settings_web::router()).merge(survey::router()).merge(reports::router()),
        openapi,
        pages: vec![ServicePages { service: "helpdesk", mine: "/helpdesk", admin: "/orgs/{org}/helpdesk", by_role: &[] }],
    }
}
