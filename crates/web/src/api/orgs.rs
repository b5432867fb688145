//! Organisations and their members over the API: listing what the caller may see, creating and editing
//! organisations (platform admins), adding people and removing roles (organisation admins).

use agilekit_kernel::identity::{self, Account, Role};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::tenancy::{self, OrgInput, OrgKind, Organisation};
use agilekit_kernel::validate::Email;
use agilekit_kernel::{Error, FieldErrors};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, actor, administrable_org, created, no_content, platform_org, viewable_org, visible_org};
use crate::auth::ApiUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs", get(list).post(create))
        .route("/api/v1/orgs/{id}", get(show).put(update))
        .route("/api/v1/orgs/{id}/members", get(members).post(add_member))
        .route("/api/v1/orgs/{id}/members/{account_id}/roles/{role}", delete(remove_role))
}

/// The caller's organisations; every organisation for platform admins.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organisations", operation_id = "list_orgs",
    responses((status = 200, body = Vec<Organisation>),
        (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
) -> Result<Json<Vec<Organisation>>, ApiError> {
    let p = &user.principal;
    let orgs = if p.platform_admin {
        tenancy::list(&state.db).await?
    } else {
        tenancy::list_by_ids(&state.db, &p.orgs()).await?
    };
    Ok(Json(orgs))
}

/// One organisation, for its members and platform admins.
#[utoipa::path(get, path = "/api/v1/orgs/{id}", tag = "organisations", operation_id = "get_org",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Organisation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Organisation>, ApiError> {
    Ok(Json(visible_org(&state.db, &user.principal, id).await?))
}

/// The operator is set up once; making or unmaking one through an edit would move every platform admin's powers.
fn check_kind(input: &OrgInput, current: Option<&Organisation>) -> Result<(), Error> {
    let becomes_operator = OrgKind::parse(input.kind.trim()) == Some(OrgKind::Operator);
    let was_operator = current.is_some_and(|o| o.kind() == OrgKind::Operator);
    if becomes_operator != was_operator { Err(FieldErrors::one("kind", "not-allowed")) } else { Ok(()) }
}

/// Creates an organisation (platform admins).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organisations", operation_id = "create_org",
    request_body = OrgInput,
    responses((status = 201, body = Organisation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field-level errors (`tax_code`: `format`/`check-digit`, `ipa_code`: `taken`, …)",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiJson(input): ApiJson<OrgInput>,
) -> Result<Response, ApiError> {
    user.principal.require_platform_admin()?;
    check_kind(&input, None)?;
    let org = tenancy::create(&state.db, &actor(&user, &ctx), &input).await?;
    Ok(created(org))
}

/// Replaces an organisation's details (platform admins).
#[utoipa::path(put, path = "/api/v1/orgs/{id}", tag = "organisations", operation_id = "update_org",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = OrgInput,
    responses((status = 200, body = Organisation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn update(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
    ApiJson(input): ApiJson<OrgInput>,
) -> Result<Json<Organisation>, ApiError> {
    let current = platform_org(&state.db, &user.principal, id).await?;
    check_kind(&input, Some(&current))?;
    Ok(Json(tenancy::update(&state.db, &actor(&user, &ctx), id, &input).await?))
}

/// A person in an organisation with their roles there.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Member {
    pub account: Account,
    /// Role names (`org_admin`, `hr`, `employee`, …).
    pub roles: Vec<String>,
}

/// The members of an organisation (its admins and HR, platform admins).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/members", tag = "members", operation_id = "list_members",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = Vec<Member>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn members(
    State(state): State<AppState>,
    ApiUser(user, _): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
) -> Result<Json<Vec<Member>>, ApiError> {
    viewable_org(&state.db, &user.principal, id).await?;
    let list = identity::members(&state.db, id).await?;
    Ok(Json(list.into_iter().map(|(account, roles)| Member { account, roles }).collect()))
}

/// Gives an existing account a role in the organisation.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewMember {
    /// The account's email; the account must already exist.
    pub email: String,
    /// `org_admin`, `hr`, `manager`, `employee`, `agent`, `trainer` or `evaluator`.
    pub role: String,
}

/// Grants a role to an existing account (organisation admins). Granting a role already held changes nothing.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/members", tag = "members", operation_id = "add_member",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = NewMember,
    responses((status = 201, body = Member),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`email`: `format`/`not-found`/`not-allowed`; `role`: `format`/`not-allowed`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn add_member(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath(id): ApiPath<OrgId>,
    ApiJson(input): ApiJson<NewMember>,
) -> Result<Response, ApiError> {
    let org = administrable_org(&state.db, &user.principal, id).await?;
    let mut errs = FieldErrors::new();
    let email = errs.check("email", Email::parse(&input.email));
    let role = Role::parse(input.role.trim());
    match role {
        None => errs.add("role", "format"),
        // The operator's powers are handed out by the operator's own platform admins, nowhere else.
        Some(Role::PlatformAdmin) if !(user.principal.platform_admin && org.kind() == OrgKind::Operator) => {
            errs.add("role", "not-allowed")
        }
        Some(_) => {}
    }
    let account = match &email {
        Some(e) => match identity::find_by_email(&state.db, e.as_str()).await? {
            None => {
                errs.add("email", "not-found");
                None
            }
            // Public accounts (citizens, companies) act for themselves and hold no membership.
            Some(a) if a.is_public => {
                errs.add("email", "not-allowed");
                None
            }
            Some(a) => Some(a),
        },
        None => None,
    };
    errs.clone().into_result()?;
    let (Some(account), Some(role)) = (account, role) else { return Err(Error::Invalid(errs).into()) };
    identity::grant(&state.db, &actor(&user, &ctx), id, account.id, role).await?;
    let roles = identity::members(&state.db, id)
        .await?
        .into_iter()
        .find(|(a, _)| a.id == account.id)
        .map(|(_, r)| r)
        .unwrap_or_else(|| vec![role.as_str().to_owned()]);
    Ok(created(Member { account, roles }))
}

/// Takes a role away from a member (organisation admins; `platform_admin` only by platform admins).
#[utoipa::path(delete, path = "/api/v1/orgs/{id}/members/{account_id}/roles/{role}", tag = "members",
    operation_id = "remove_member_role",
    params(("id" = uuid::Uuid, Path, description = "Organisation id"),
        ("account_id" = uuid::Uuid, Path, description = "Account id"),
        ("role" = String, Path, description = "Role name")),
    responses((status = 204, description = "Removed"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, member or role", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
pub(super) async fn remove_role(
    State(state): State<AppState>,
    ApiUser(user, ctx): ApiUser,
    ApiPath((id, account, role)): ApiPath<(OrgId, AccountId, String)>,
) -> Result<Response, ApiError> {
    administrable_org(&state.db, &user.principal, id).await?;
    let role = Role::parse(&role).ok_or(Error::NotFound)?;
    if role == Role::PlatformAdmin {
        user.principal.require_platform_admin()?;
    }
    identity::revoke(&state.db, &actor(&user, &ctx), id, account, role).await?;
    Ok(no_content())
}
