//! The VPN over the API: networks, gateways, access groups and devices under `/api/v1/orgs/{org}/vpn/…` (the
//! session or a personal token), and the gateway agent's two calls under `/api/v1/gateway/…` (a gateway token).

use std::time::Duration;

use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use agilekit_web::auth::{ApiUser, CurrentUser, RequestCtx};
use agilekit_web::error::{ApiError, Problem, problem};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::model::{AccessGroupId, DeviceId, GatewayId, NetworkId, POLL_SECS};
use crate::service::{
    self, AccessGroup, AccessGroupInput, Device, EnrolInput, Enrolled, Gateway, GatewayConfig, GatewayInput, Network,
    NetworkInput, NetworkUpdate, NewGateway, RenameInput, StatusReport, VpnStatus,
};
use crate::store::GatewayRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/vpn/networks", get(list_networks).post(create_network))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}", get(get_network).put(update_network).delete(delete_network))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}/gateways", get(list_network_gateways).post(create_gateway))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}", put(update_gateway).delete(delete_gateway))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}/token", post(rotate_token))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}/access-groups", get(list_groups).post(create_group))
        .route("/api/v1/orgs/{org}/vpn/networks/{network}/access-groups/{group}", put(update_group).delete(delete_group))
        .route("/api/v1/orgs/{org}/vpn/gateways", get(list_gateways))
        .route("/api/v1/orgs/{org}/vpn/devices", get(list_devices).post(enrol))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}", get(get_device))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}/config", get(device_config))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}/rename", post(rename))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}/revoke", post(revoke))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}/renew", post(renew))
        .route("/api/v1/orgs/{org}/vpn/devices/{device}/approve", post(approve))
        .route("/api/v1/orgs/{org}/vpn/status", get(status))
        .route("/api/v1/gateway/config", get(gateway_config))
        .route("/api/v1/gateway/status", post(gateway_status))
}

fn actor(user: &CurrentUser, ctx: &RequestCtx) -> agilekit_kernel::audit::Actor {
    user.actor(ctx.ip.clone())
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// Enrolment refused because the organisation has no remote-access subscription here (or the caller's account or
/// organisation is disabled) is a 403 with the code `not-entitled`.
fn enrol_error(e: Error) -> Response {
    match e {
        Error::Forbidden => problem(StatusCode::FORBIDDEN, "not-entitled", "not entitled to remote access here", Vec::new()),
        other => ApiError(other).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Networks

/// The organisation's VPN networks (its members, who choose one to enrol a device in).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/networks", tag = "vpn", operation_id = "vpn_list_networks",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<Network>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_networks(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(org): ApiPath<OrgId>) -> Result<Json<Vec<Network>>, ApiError> {
    Ok(Json(service::networks(&s.db, &u.principal, org).await?))
}

/// Creates a network (org admins). The IPv4 pool must be large enough for the organisation's VPN seats and may
/// not overlap another network of the organisation.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/networks", tag = "vpn", operation_id = "vpn_create_network",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = NetworkInput,
    responses((status = 201, body = Network),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`ipv4_cidr`/`ipv6_cidr`: `format`, `cidr-host-bits`, `cidr-family`, `cidr-overlap`, \
            `pool-too-small`; `name`: `required`, `taken`; `dns[i]`: `format`; `default_expiry_days`: `out-of-range`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create_network(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<NetworkInput>,
) -> Result<Response, ApiError> {
    Ok(created(service::create_network(&s.db, &u.principal, &actor(&u, &c), org, &input).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/networks/{network}", tag = "vpn", operation_id = "vpn_get_network",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    responses((status = 200, body = Network),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_network(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, NetworkId)>,
) -> Result<Json<Network>, ApiError> {
    Ok(Json(service::network(&s.db, &u.principal, org, id).await?))
}

/// Changes a network's name, DNS servers, approval rule and device term (org admins). Pools cannot change.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/vpn/networks/{network}", tag = "vpn", operation_id = "vpn_update_network",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    request_body = NetworkUpdate,
    responses((status = 200, body = Network),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update_network(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, NetworkId)>,
    ApiJson(input): ApiJson<NetworkUpdate>,
) -> Result<Json<Network>, ApiError> {
    Ok(Json(service::update_network(&s.db, &u.principal, &actor(&u, &c), org, id, &input).await?))
}

/// Deletes a network no live device uses, with its gateways and access groups (org admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/vpn/networks/{network}", tag = "vpn", operation_id = "vpn_delete_network",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`network-in-use`: live devices", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_network(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, NetworkId)>,
) -> Result<Response, ApiError> {
    service::delete_network(&s.db, &u.principal, &actor(&u, &c), org, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// Gateways

/// Every gateway of the organisation (its admins and HR).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/gateways", tag = "vpn", operation_id = "vpn_list_gateways",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<Gateway>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_gateways(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(org): ApiPath<OrgId>) -> Result<Json<Vec<Gateway>>, ApiError> {
    Ok(Json(service::gateways(&s.db, &u.principal, org, None).await?))
}

/// The gateways of a network (its organisation's admins and HR).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/networks/{network}/gateways", tag = "vpn", operation_id = "vpn_list_network_gateways",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    responses((status = 200, body = Vec<Gateway>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_network_gateways(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, NetworkId)>,
) -> Result<Json<Vec<Gateway>>, ApiError> {
    Ok(Json(service::gateways(&s.db, &u.principal, org, Some(id)).await?))
}

/// Registers a gateway (org admins). The answer carries the gateway's token, shown this once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/networks/{network}/gateways", tag = "vpn", operation_id = "vpn_create_gateway",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    request_body = GatewayInput,
    responses((status = 201, body = NewGateway),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`public_key`: `invalid-key`; `endpoint`: `format`; `port`: `out-of-range`; \
            `routes[i]`: `format`, `cidr-host-bits`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create_gateway(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network)): ApiPath<(OrgId, NetworkId)>,
    ApiJson(input): ApiJson<GatewayInput>,
) -> Result<Response, ApiError> {
    Ok(created(service::create_gateway(&s.db, &u.principal, &actor(&u, &c), org, network, &input).await?))
}

/// Changes a gateway (org admins); its token stays.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}", tag = "vpn", operation_id = "vpn_update_gateway",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id"),
        ("gateway" = uuid::Uuid, Path, description = "Gateway id")),
    request_body = GatewayInput,
    responses((status = 200, body = Gateway),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update_gateway(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network, id)): ApiPath<(OrgId, NetworkId, GatewayId)>,
    ApiJson(input): ApiJson<GatewayInput>,
) -> Result<Json<Gateway>, ApiError> {
    Ok(Json(service::update_gateway(&s.db, &u.principal, &actor(&u, &c), org, network, id, &input).await?))
}

/// Removes a gateway (org admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}", tag = "vpn", operation_id = "vpn_delete_gateway",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id"),
        ("gateway" = uuid::Uuid, Path, description = "Gateway id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_gateway(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network, id)): ApiPath<(OrgId, NetworkId, GatewayId)>,
) -> Result<Response, ApiError> {
    service::delete_gateway(&s.db, &u.principal, &actor(&u, &c), org, network, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Issues a new token for a gateway (org admins); the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/networks/{network}/gateways/{gateway}/token", tag = "vpn",
    operation_id = "vpn_rotate_gateway_token",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id"),
        ("gateway" = uuid::Uuid, Path, description = "Gateway id")),
    responses((status = 200, body = NewGateway),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn rotate_token(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network, id)): ApiPath<(OrgId, NetworkId, GatewayId)>,
) -> Result<Json<NewGateway>, ApiError> {
    Ok(Json(service::rotate_gateway_token(&s.db, &u.principal, &actor(&u, &c), org, network, id).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Access groups

/// A network's access groups (admins and HR). A device may reach the union of the `allow` prefixes of the groups
/// its owner is in, by role or by account; in a network without groups, everything its gateways route.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups", tag = "vpn", operation_id = "vpn_list_access_groups",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    responses((status = 200, body = Vec<AccessGroup>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_groups(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, network)): ApiPath<(OrgId, NetworkId)>,
) -> Result<Json<Vec<AccessGroup>>, ApiError> {
    Ok(Json(service::access_groups(&s.db, &u.principal, org, network).await?))
}

/// Creates an access group (org admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups", tag = "vpn", operation_id = "vpn_create_access_group",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id")),
    request_body = AccessGroupInput,
    responses((status = 201, body = AccessGroup),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`roles[i]`: `format`; `accounts[i]`: `format`, `not-found`; `allow`: `required`; \
            `allow[i]`: `format`, `cidr-host-bits`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create_group(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network)): ApiPath<(OrgId, NetworkId)>,
    ApiJson(input): ApiJson<AccessGroupInput>,
) -> Result<Response, ApiError> {
    Ok(created(service::save_access_group(&s.db, &u.principal, &actor(&u, &c), org, network, None, &input).await?))
}

/// Replaces an access group (org admins).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups/{group}", tag = "vpn", operation_id = "vpn_update_access_group",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id"),
        ("group" = uuid::Uuid, Path, description = "Access group id")),
    request_body = AccessGroupInput,
    responses((status = 200, body = AccessGroup),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update_group(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network, id)): ApiPath<(OrgId, NetworkId, AccessGroupId)>,
    ApiJson(input): ApiJson<AccessGroupInput>,
) -> Result<Json<AccessGroup>, ApiError> {
    Ok(Json(service::save_access_group(&s.db, &u.principal, &actor(&u, &c), org, network, Some(id), &input).await?))
}

/// Deletes an access group (org admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/vpn/networks/{network}/access-groups/{group}", tag = "vpn", operation_id = "vpn_delete_access_group",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("network" = uuid::Uuid, Path, description = "Network id"),
        ("group" = uuid::Uuid, Path, description = "Access group id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete_group(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, network, id)): ApiPath<(OrgId, NetworkId, AccessGroupId)>,
) -> Result<Response, ApiError> {
    service::delete_access_group(&s.db, &u.principal, &actor(&u, &c), org, network, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// Devices

#[derive(Deserialize, Default, utoipa::IntoParams)]
struct DevicesQuery {
    /// `true`: every device of the organisation (its admins and HR); otherwise the caller's own.
    #[serde(default)]
    all: Option<String>,
}

/// The caller's devices in the organisation, or with `all=true` every device (admins and HR).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/devices", tag = "vpn", operation_id = "vpn_list_devices",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), DevicesQuery),
    responses((status = 200, body = Vec<Device>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list_devices(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> Result<Json<Vec<Device>>, ApiError> {
    let all = match q.all.as_deref() {
        None | Some("false") | Some("") => false,
        Some("true") => true,
        Some(_) => return Err(FieldErrors::one("all", "format").into()),
    };
    Ok(Json(service::devices(&s.db, &u.principal, org, all).await?))
}

/// Enrols one of the caller's devices: with the device's public key (its private key never reaches the server),
/// or with `generate_key: true` (the answer carries the private key once; it is not stored). Needs the
/// organisation's remote-access subscription and a free VPN seat. The answer carries the wg-quick file.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/devices", tag = "vpn", operation_id = "vpn_enrol_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = EnrolInput,
    responses((status = 201, body = Enrolled),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not-entitled`: no remote-access subscription here", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`quota-exhausted`: no free VPN seat", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`public_key`: `invalid-key`, `key-in-use`, `key-choice`, `required`; `network_id`: \
            `not-found`, `required`, `pool-exhausted`; `name`: `required`, `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn enrol(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<EnrolInput>,
) -> Response {
    match service::enrol(&s.db, &u.principal, &actor(&u, &c), org, &input).await {
        Ok(e) => {
            let mut r = created(e);
            // The answer may hold a private key: never stored by a cache.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => enrol_error(e),
    }
}

/// One device: its owner, or the organisation's admins and HR.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/devices/{device}", tag = "vpn", operation_id = "vpn_get_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    responses((status = 200, body = Device),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_device(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(service::device(&s.db, &u.principal, org, id).await?))
}

/// The device's wg-quick file. Its `PrivateKey` line is a comment to complete: the server never had the key.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/devices/{device}/config", tag = "vpn", operation_id = "vpn_device_config",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    responses((status = 200, description = "wg-quick configuration", body = String, content_type = "text/plain"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn device_config(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
) -> Result<Response, ApiError> {
    let text = service::device_config(&s.db, &u.principal, org, id).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Renames a device (its owner or an org admin).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/devices/{device}/rename", tag = "vpn", operation_id = "vpn_rename_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    request_body = RenameInput,
    responses((status = 200, body = Device),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn rename(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
    ApiJson(input): ApiJson<RenameInput>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(service::rename(&s.db, &u.principal, &actor(&u, &c), org, id, &input).await?))
}

/// Revokes a device (its owner or an org admin): off the gateways at once, its seat free again. Revoking a device
/// that is already revoked or expired changes nothing.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/devices/{device}/revoke", tag = "vpn", operation_id = "vpn_revoke_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    responses((status = 200, body = Device),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn revoke(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
    ApiJsonOrEmpty(_): ApiJsonOrEmpty<serde_json::Value>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(service::revoke(&s.db, &u.principal, &actor(&u, &c), org, id).await?))
}

/// Renews a live device for the network's term from now (its owner or an org admin).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/devices/{device}/renew", tag = "vpn", operation_id = "vpn_renew_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    responses((status = 200, body = Device),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`device-not-live`: revoked or expired (enrol again)", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn renew(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
    ApiJsonOrEmpty(_): ApiJsonOrEmpty<serde_json::Value>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(service::renew(&s.db, &u.principal, &actor(&u, &c), org, id).await?))
}

/// Approves a pending device (org admins).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/vpn/devices/{device}/approve", tag = "vpn", operation_id = "vpn_approve_device",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("device" = uuid::Uuid, Path, description = "Device id")),
    responses((status = 200, body = Device),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-pending`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn approve(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, DeviceId)>,
    ApiJsonOrEmpty(_): ApiJsonOrEmpty<serde_json::Value>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(service::approve(&s.db, &u.principal, &actor(&u, &c), org, id).await?))
}

/// Who is connected now (a handshake in the last 3 minutes), traffic, last seen, per device; gateways' last
/// contact; seats (admins and HR).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/vpn/status", tag = "vpn", operation_id = "vpn_status",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = VpnStatus),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn status(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath(org): ApiPath<OrgId>) -> Result<Json<VpnStatus>, ApiError> {
    Ok(Json(service::status(&s.db, &u.principal, org).await?))
}

// ---------------------------------------------------------------------------------------------------------------
// The gateway agent

/// A gateway authenticated by its bearer token (`gw_…`); anything else is a 401 problem.
struct GatewayAuth(GatewayRow);

impl FromRequestParts<AppState> for GatewayAuth {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = || problem(StatusCode::UNAUTHORIZED, "unauthenticated", "a gateway token is required", Vec::new());
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthenticated)?;
        match service::authenticate_gateway(&state.db, bearer).await {
            Ok(Some(g)) => Ok(GatewayAuth(g)),
            Ok(None) => Err(unauthenticated()),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
struct ConfigQuery {
    /// The version the gateway has applied: the answer waits until the version differs (up to `poll_secs`).
    #[serde(default)]
    after: Option<String>,
    /// Hold the request at most this many seconds (0 to 25; 25 when absent).
    #[serde(default)]
    wait: Option<String>,
}

/// The gateway's desired state: its interface addresses, the peers (active devices) and what each may reach.
/// With `after`, a long-poll: held until the network's version moves on or `poll_secs` pass (then the same version).
#[utoipa::path(get, path = "/api/v1/gateway/config", tag = "vpn-gateway", operation_id = "gateway_config",
    params(ConfigQuery),
    responses((status = 200, body = GatewayConfig),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`after`/`wait`: `format`, `out-of-range`", body = Problem, content_type = "application/problem+json")),
    security(("gateway_token" = [])))]
async fn gateway_config(
    State(s): State<AppState>,
    GatewayAuth(gw): GatewayAuth,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> Result<Json<GatewayConfig>, ApiError> {
    let mut errors = FieldErrors::new();
    let after = match q.after.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add("after", "format");
                None
            }
        },
    };
    let wait = match q.wait.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => POLL_SECS,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= POLL_SECS => n,
            Ok(_) => {
                errors.add("wait", "out-of-range");
                0
            }
            Err(_) => {
                errors.add("wait", "format");
                0
            }
        },
    };
    errors.into_result()?;
    // A node that is stopping answers at once with what it has, so a deploy does not wait out every gateway's poll.
    let mut stopping = s.shutdown.clone();
    let stop = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let cfg = tokio::select! {
        c = service::gateway_config(&s.db, &gw, after, Duration::from_secs(wait)) => c?,
        () = stop => service::gateway_config(&s.db, &gw, after, Duration::ZERO).await?,
    };
    Ok(Json(cfg))
}

/// The gateway's report of its peers: last handshake, bytes, endpoint. Feeds the status page and the metrics.
#[utoipa::path(post, path = "/api/v1/gateway/status", tag = "vpn-gateway", operation_id = "gateway_status",
    request_body = StatusReport,
    responses((status = 204, description = "Stored"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`peers[i].public_key`: `invalid-key`; `peers[i].endpoint`: `format`; \
            `peers[i].last_handshake`: `out-of-range` (before 1970 or more than a day ahead)", body = Problem,
            content_type = "application/problem+json")),
    security(("gateway_token" = [])))]
async fn gateway_status(
    State(s): State<AppState>,
    GatewayAuth(gw): GatewayAuth,
    ApiJson(report): ApiJson<StatusReport>,
) -> Result<Response, ApiError> {
    service::gateway_status(&s.db, &gw, &report).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
