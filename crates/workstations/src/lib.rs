//! Remote workstations: the inventory of office PCs and virtual desktops an organisation offers for remote work,
//! dedicated or pooled and booked by time slot, their reachability, and the hand-off to a remote-desktop client.

use agilekit_web::{AppState, Domain};
use axum::Router;

#[derive(utoipa::OpenApi)]
#[openapi()]
struct ApiDoc;

/// The routes and API description this domain adds to the application.
pub fn domain() -> Domain {
    Domain { router: Router::<AppState>::new(), openapi: <ApiDoc as utoipa::OpenApi>::openapi() }
}
