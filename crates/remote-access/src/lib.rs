//! Remote access (the kit's VPN): WireGuard networks per organisation, self-service device enrolment, the gateway
//! agent's API (desired peer set by long-poll, status reports back), and VPN status and metrics.

pub mod agent;
pub mod api;
pub mod model;
pub mod nft;
pub mod service;
pub mod store;
pub mod uapi;
pub mod web;
pub mod wgtool;

use agilekit_web::{AppState, Domain, ServicePages};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api::list_networks, api::create_network, api::get_network, api::update_network, api::delete_network,
        api::list_gateways, api::list_network_gateways, api::create_gateway, api::update_gateway, api::delete_gateway,
        api::rotate_token, api::list_groups, api::create_group, api::update_group, api::delete_group,
        api::list_devices, api::enrol, api::get_device, api::device_config, api::rename, api::revoke, api::renew,
        api::approve, api::status, api::gateway_config, api::gateway_status,
    ),
    components(schemas(
        service::Network, service::NetworkInput, service::NetworkUpdate, service::Gateway, service::NewGateway,
        service::GatewayInput, service::AccessGroup, service::AccessGroupInput, service::Device, service::Enrolled,
        service::EnrolInput, service::RenameInput, service::VpnStatus, service::GatewayStatus, service::GatewayConfig,
        service::Peer, service::PeerAccess, service::StatusReport, service::PeerReport, model::DeviceState,
        model::NetworkId, model::GatewayId, model::DeviceId, model::AccessGroupId,
    )),
    tags(
        (name = "vpn", description = "Remote access: VPN networks, gateways, access groups, employees' devices, status."),
        (name = "vpn-gateway", description = "The gateway agent (`agilekit gateway`): its desired state by long-poll, \
            and its peers' status. Authenticated with the gateway's token (`Authorization: Bearer gw_…`)."),
    ),
    modifiers(&GatewaySecurity),
)]
struct ApiDoc;

struct GatewaySecurity;

impl utoipa::Modify for GatewaySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "gateway_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A gateway's token")).build()),
        );
    }
}

fn metrics(db: agilekit_kernel::Db) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> {
    Box::pin(async move { service::metrics(&db).await })
}

/// Ends devices whose term is over or whose owner left, every [`service::SWEEP_EVERY`], until `stop` turns true.
/// Safe on several nodes at once.
pub async fn run_sweeper(db: agilekit_kernel::Db, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        match service::sweep(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(devices = n, "VPN devices expired or revoked by the sweep"),
            Err(e) => tracing::warn!(error = %e, "VPN sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(service::SWEEP_EVERY) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// The routes and API description this domain adds to the application.
pub fn domain() -> Domain {
    agilekit_web::ops::register_metrics("remote_access", metrics);
    Domain {
        router: axum::Router::<AppState>::new().merge(api::router()).merge(web::router()),
        openapi: <ApiDoc as utoipa::OpenApi>::openapi(),
        pages: vec![ServicePages { service: "remote_access", mine: "/vpn", admin: "/orgs/{org}/vpn", by_role: &[] }],
    }
}
