//! Remote access (the kit's VPN): WireGuard networks per organisation, self-service device enrolment, the gateway
//! agent that applies the desired peer set on a concentrator, and VPN status.

use agilekit_web::{AppState, Domain};
use axum::Router;

#[derive(utoipa::OpenApi)]
#[openapi()]
struct ApiDoc;

/// The routes and API description this domain adds to the application.
pub fn domain() -> Domain {
    Domain { router: Router::<AppState>::new(), openapi: <ApiDoc as utoipa::OpenApi>::openapi() }
}
