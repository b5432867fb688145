//! The kit over the API: the services on offer, an organisation's subscriptions and quotas, and the entitlement
//! check ("may I use this service here, within what quota") that clients and other modules ask.

use agilekit_kernel::catalogue::{self, Denied, Service, SubState, Subscription, SubscriptionView};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};

use super::{ApiJson, ApiPath, actor, administrable_org, created, platform_org, rename_field, visible_org};
use crate::auth::ApiUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/catalogue", get(services))
        .route("/api/v1/orgs/{id}/subscriptions", get(subscriptions).post(subscribe))
        .route("/api/v1/orgs/{id}/subscriptions/{service}/state", put(set_state))
        .route("/api/v1/orgs/{id}/subscriptions/{service}/quotas/{key}", put(set_quota))
        .route("/api/v1/orgs/{id}/entitlements/{service}", get(entitlement))
}

/// A service of the kit as the catalogue offers it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CatalogueService {
    /// `remote_access`, `workstations`, `meetings`, `helpdesk`, `learning`, `consultations`, `grants`.
    pub key: String,
    /// Whether the operator offers it now.
    pub available: bool,
    pub position: i64,
    /// The quotas it is measured by.
    pub quota_keys: Vec<String>,
}

/// The services of the kit (any signed-in caller).
#[utoipa::path(get, path = "/api/v1/catalogue", tag = "catalogue", operation_id = "list_services",
    responses((status = 200, body = Vec<CatalogueService>),
        (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn services(
    State(state): State<AppState>,
    ApiUser(_, _): ApiUser,
) -> Result<Json<Vec<CatalogueService>>, ApiError> {
    let rows = catalogue::services(&state.db).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| CatalogueService {
                quota_keys: Service::parse(&r.key)
                    .map(|s| s.quota_keys().iter().map(|k| (*k).to_owned()).collect())
                    .unwrap_or_default(),
                key: r.key,
                available: r.available,
                position: r.position,
            })
            .collect(),
    ))
}

/// An organisation's subscriptions with their quotas (its members, platform admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/subscriptions", tag = "catalogue", operation_id = "list_subscriptions",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<SubscriptionView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn subscriptions(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    visible_org(&state.db, &user.principal, id).await?;
    Ok(Json(catalogue::subscriptions(&state.db, id).await?))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct SubscribeInput {
    /// The service key.
    pub service: String,
    /// Activate at once instead of requesting (platform admins only).
    #[serde(default)]
    pub activate: bool,
}

fn parse_service(s: &str, field: &str) -> Result<Service, Error> {
    Service::parse(s.trim()).ok_or_else(|| FieldErrors::one(field, "not-found"))
}

/// Requests a service for the organisation (its admins); platform admins may activate it directly.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/subscriptions", tag = "catalogue", operation_id = "subscribe",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = SubscribeInput,
    responses((status = 201, body = Subscription),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin here, or `activate` without being a platform admin",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`service`: `not-found` (unknown) or `unavailable` (withdrawn)",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn subscribe(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
    ApiJson(input): ApiJson<SubscribeInput>,
) -> Result<Response, ApiError> {
    administrable_org(&state.db, &user.principal, id).await?;
    if input.activate {
        user.principal.require_platform_admin()?;
    }
    let service = parse_service(&input.service, "service")?;
    let s = catalogue::subscribe(&state.db, &actor(&user, &ctx), id, service, input.activate).await?;
    Ok(created(s))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct StateInput {
    /// `requested`, `active` or `suspended`.
    pub state: String,
}

/// Activates, suspends or sets back to requested a subscription (platform admins).
#[utoipa::path(put, path = "/api/v1/orgs/{id}/subscriptions/{service}/state", tag = "catalogue",
    operation_id = "set_subscription_state",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("service" = String, Path, description = "Service key")),
    request_body = StateInput,
    responses((status = 200, body = Subscription),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, service or subscription", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`state`: `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn set_state(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((id, service)): ApiPath<(OrgId, String)>,
    ApiJson(input): ApiJson<StateInput>,
) -> Result<Json<Subscription>, ApiError> {
    platform_org(&state.db, &user.principal, id).await?;
    let service = Service::parse(&service).ok_or(Error::NotFound)?;
    let new = SubState::parse(input.state.trim()).ok_or_else(|| FieldErrors::one("state", "format"))?;
    Ok(Json(catalogue::set_state(&state.db, &actor(&user, &ctx), id, service, new).await?))
}

/// `limit` must be present: `null` (unlimited) is a decision, not a default.
fn nullable_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(d)
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct QuotaInput {
    /// The new limit, 0 to 10 000 000; `null` for unlimited.
    #[serde(deserialize_with = "nullable_i64")]
    #[schema(required = true)]
    pub limit: Option<i64>,
}

/// Sets a quota's limit (platform admins). A limit below what is already used is refused.
#[utoipa::path(put, path = "/api/v1/orgs/{id}/subscriptions/{service}/quotas/{key}", tag = "catalogue",
    operation_id = "set_quota",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("service" = String, Path, description = "Service key"),
        ("key" = String, Path, description = "Quota key, e.g. `vpn_seats`")),
    request_body = QuotaInput,
    responses((status = 200, body = SubscriptionView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, service, quota or subscription", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit`: `out-of-range`, `below-usage` or `format`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn set_quota(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((id, service, key)): ApiPath<(OrgId, String, String)>,
    ApiJson(input): ApiJson<QuotaInput>,
) -> Result<Json<SubscriptionView>, ApiError> {
    platform_org(&state.db, &user.principal, id).await?;
    let service = Service::parse(&service).ok_or(Error::NotFound)?;
    let Some(key) = service.quota_keys().iter().find(|k| **k == key) else { return Err(Error::NotFound.into()) };
    catalogue::set_quota(&state.db, &actor(&user, &ctx), id, service, key, input.limit)
        .await
        .map_err(|e| rename_field(e, key, "limit"))?;
    let view = catalogue::subscriptions(&state.db, id)
        .await?
        .into_iter()
        .find(|v| v.subscription.service_key == service.key())
        .ok_or(Error::NotFound)?;
    Ok(Json(view))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuotaView {
    pub key: String,
    /// `null`: unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    /// How many more units may be taken; `null`: unlimited.
    pub remaining: Option<i64>,
}

/// The caller may use the service in the organisation, within these quotas.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntitlementView {
    pub service: String,
    pub org_id: OrgId,
    pub quotas: Vec<QuotaView>,
}

/// A 403 problem saying why the caller may not use the service (`code` is `not-entitled`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntitlementDenied {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub reason: Denied,
}

/// May the caller use this service in this organisation, and within what quotas? The one check every module
/// and client asks. Members get 200 or a 403 `not-entitled` problem with the reason; others get 404.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/entitlements/{service}", tag = "catalogue", operation_id = "entitlement",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"), ("service" = String, Path, description = "Service key")),
    responses((status = 200, body = EntitlementView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not entitled, with the reason", body = EntitlementDenied, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or service, or not the caller's", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn entitlement(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath((id, service)): ApiPath<(OrgId, String)>,
) -> Result<Response, ApiError> {
    visible_org(&state.db, &user.principal, id).await?;
    let service = Service::parse(&service).ok_or(Error::NotFound)?;
    match catalogue::entitlement(&state.db, user.principal.id(), id, service).await? {
        Ok(e) => {
            let quotas = e
                .quotas
                .iter()
                .map(|(key, limit, used)| QuotaView {
                    remaining: e.remaining(key),
                    key: key.clone(),
                    limit: *limit,
                    used: *used,
                })
                .collect();
            Ok(Json(EntitlementView { service: service.key().to_owned(), org_id: id, quotas }).into_response())
        }
        Err(reason) => {
            let body = EntitlementDenied {
                type_: "urn:agilekit:problem:not-entitled".into(),
                title: "not entitled to this service".into(),
                status: 403,
                code: "not-entitled".into(),
                reason,
            };
            let mut r = (StatusCode::FORBIDDEN, Json(body)).into_response();
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/problem+json"),
            );
            Ok(r)
        }
    }
}
