//! An organisation's own pages: its dashboard (details, services and quotas; service requests by its admins,
//! activation and quota limits by platform admins) and its members with their roles. Someone with no business
//! in an organisation gets 404 on all of them, never a hint that it exists.

use std::collections::HashMap;
use std::str::FromStr;

use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Service, SubState};
use agilekit_kernel::identity::{self, Role};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::tenancy::{self, MemberInput, OrgKind};
use agilekit_kernel::{Error, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{CurrentUser, RequestCtx, SignedIn};
use crate::ctx::PageCtx;
use crate::error::PageError;
use crate::pages::see_other;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org_id}", get(dashboard))
        .route("/orgs/{org_id}/services", post(request_service))
        .route("/orgs/{org_id}/services/{service}/state", post(set_service_state))
        .route("/orgs/{org_id}/services/{service}/quotas/{key}", post(set_quota))
        .route("/orgs/{org_id}/members", get(members).post(add_member))
        .route("/orgs/{org_id}/members/{account_id}/roles", post(grant_role))
        .route("/orgs/{org_id}/members/{account_id}/revoke", get(revoke_confirm).post(revoke))
}

/// A malformed id in a path is just a page that does not exist.
pub fn parse_id<T: FromStr>(s: &str) -> Result<T, PageError> {
    s.trim().parse().map_err(|_| PageError::not_found())
}

/// The dashboard is for the organisation's members and for those who may see its admin pages.
fn require_dashboard(p: &Principal, org: OrgId) -> Result<(), PageError> {
    if p.is_member(org) || p.can_view_org(org) { Ok(()) } else { Err(PageError::not_found()) }
}

/// A service request is its admins': other members, who see the dashboard, are told no; strangers learn nothing.
fn require_admin_for_dashboard(p: &Principal, org: OrgId) -> Result<(), PageError> {
    if p.can_admin_org(org) {
        Ok(())
    } else if p.is_member(org) || p.can_view_org(org) {
        Err(Error::Forbidden.into())
    } else {
        Err(PageError::not_found())
    }
}

/// Activation and quotas are the operator's: members of the organisation are told no, strangers learn nothing.
fn require_platform_admin_for(p: &Principal, org: OrgId) -> Result<(), PageError> {
    if p.platform_admin {
        Ok(())
    } else if p.is_member(org) {
        Err(Error::Forbidden.into())
    } else {
        Err(PageError::not_found())
    }
}


#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// The confirmation shown after a change; only known codes, so a URL cannot put arbitrary text on the page.
fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    let key = match done {
        "requested" => "orgs-notice-requested",
        "state" => "orgs-notice-state",
        "quota" => "orgs-notice-quota",
        "added" => "orgs-notice-added",
        "added-new" => "orgs-notice-added-new",
        "granted" => "orgs-notice-granted",
        "revoked" => "orgs-notice-revoked",
        _ => return None,
    };
    Some(ctx.t(key))
}

/// A choice in a select.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A line of a form's error summary: where to jump and what is wrong.
pub(crate) struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

pub(crate) fn role_label(ctx: &PageCtx, role: &str) -> String {
    ctx.t(&format!("orgs-role-{role}"))
}

fn quota_label(ctx: &PageCtx, key: &str) -> String {
    ctx.t(&format!("orgs-quota-{key}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Dashboard

struct OrgView {
    id: OrgId,
    name: String,
    kind: String,
    ipa_code: String,
    tax_code: String,
    pec: Option<String>,
    parent_name: Option<String>,
    /// Set when the viewer may open the parent's dashboard.
    parent_link: Option<OrgId>,
}

struct QuotaView {
    key: String,
    label: String,
    /// "12 of 150 in use" or "12 in use, no limit": the figures in text, beside the bar.
    text: String,
    limited: bool,
    bar_max: i64,
    bar_value: i64,
    /// What the limit field shows: what was typed, else the current limit.
    input: String,
    error: Option<String>,
}

struct ServiceView {
    key: String,
    name: String,
    state_label: String,
    state_class: &'static str,
    quotas: Vec<QuotaView>,
    /// The service's administration page for this organisation, when active and a domain has one.
    admin_page: Option<String>,
    /// Otherwise it is active and the operator may suspend it.
    can_activate: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "org_dashboard.html")]
struct DashboardPage {
    ctx: PageCtx,
    org: OrgView,
    services: Vec<ServiceView>,
    requestable: Vec<Choice>,
    can_request: bool,
    platform_admin: bool,
    can_view_members: bool,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

impl DashboardPage {
    fn service_error(&self) -> Option<String> {
        self.ctx.field_error(&self.errors, "service")
    }
}

/// Renders the dashboard; `typed` holds what a failed form submitted, so the page shows it back.
async fn render_dashboard(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    errors: FieldErrors,
    typed: HashMap<String, String>,
    notice_code: &str,
) -> Result<DashboardPage, PageError> {
    let p = &user.principal;
    let ov = catalogue::overview(&state.db, org).await?;
    let ctx = PageCtx::build(state, rc).await;
    let kind = ctx.t(&format!("orgs-kind-{}", ov.org.kind().as_str()));
    let org_view = OrgView {
        id: ov.org.id,
        name: ov.org.name.clone(),
        kind,
        ipa_code: ov.org.ipa_code.clone(),
        tax_code: ov.org.tax_code.clone(),
        pec: ov.org.pec.clone(),
        parent_name: ov.parent.as_ref().map(|o| o.name.clone()),
        parent_link: ov.parent.as_ref().map(|o| o.id).filter(|id| p.is_member(*id) || p.can_view_org(*id)),
    };
    let mut services = Vec::new();
    for v in &ov.subscriptions {
        let key = v.subscription.service_key.clone();
        let st = SubState::parse(&v.subscription.state);
        let quotas = v
            .quotas
            .iter()
            .map(|q| {
                let text = match q.limit_value {
                    Some(l) => {
                        ctx.lang.t_args("orgs-quota-usage", &[("used", q.used.to_string()), ("limit", l.to_string())])
                    }
                    None => ctx.t1("orgs-quota-usage-unlimited", "used", &q.used.to_string()),
                };
                let bar_max = q.limit_value.unwrap_or(0).max(1);
                QuotaView {
                    key: q.quota_key.clone(),
                    label: quota_label(&ctx, &q.quota_key),
                    text,
                    limited: q.limit_value.is_some(),
                    bar_max,
                    bar_value: q.used.clamp(0, bar_max),
                    input: typed
                        .get(&q.quota_key)
                        .cloned()
                        .unwrap_or_else(|| q.limit_value.map(|l| l.to_string()).unwrap_or_default()),
                    error: ctx.field_error(&errors, &q.quota_key),
                }
            })
            .collect();
        services.push(ServiceView {
            name: ctx.t(&format!("service-{key}")),
            state_label: ctx.t(&format!("orgs-state-{}", v.subscription.state)),
            state_class: match st {
                Some(SubState::Active) => "text-bg-success",
                Some(SubState::Suspended) => "text-bg-danger",
                _ => "text-bg-secondary",
            },
            can_activate: st != Some(SubState::Active),
            admin_page: (st == Some(SubState::Active))
                .then(|| state.pages_of(&key).map(|pg| pg.admin.replace("{org}", &ov.org.id.to_string())))
                .flatten(),
            key,
            quotas,
        });
    }
    let wanted = typed.get("service").cloned().unwrap_or_default();
    let requestable = ov
        .requestable
        .iter()
        .map(|s| Choice {
            value: s.key().to_owned(),
            label: ctx.t(&format!("service-{}", s.key())),
            selected: s.key() == wanted,
        })
        .collect();
    let summary = errors
        .0
        .iter()
        .map(|e| {
            let label = if e.field == "service" { ctx.t("label-service") } else { quota_label(&ctx, &e.field) };
            SummaryItem {
                anchor: format!("f-{}", e.field),
                text: format!("{label}: {}", ctx.t(&format!("field-{}", e.code))),
            }
        })
        .collect();
    let notice = notice(&ctx, notice_code);
    Ok(DashboardPage {
        ctx,
        org: org_view,
        services,
        requestable,
        can_request: p.can_admin_org(org),
        platform_admin: p.platform_admin,
        can_view_members: p.can_view_org(org),
        errors,
        summary,
        notice,
    })
}

async fn dashboard(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Query(q): Query<Done>,
) -> Result<DashboardPage, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    require_dashboard(&user.principal, org)?;
    render_dashboard(&state, &rc, &user, org, FieldErrors::new(), HashMap::new(), &q.done).await
}

/// Re-renders the dashboard with a form's field errors (422), or passes any other error on.
async fn dashboard_or_error(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    e: Error,
    typed: HashMap<String, String>,
) -> Response {
    match e {
        Error::Invalid(errors) => match render_dashboard(state, rc, user, org, errors, typed, "").await {
            Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            Err(e) => e.into_response(),
        },
        other => PageError::from(other).into_response(),
    }
}

#[derive(Deserialize, Default)]
struct ServiceForm {
    #[serde(default)]
    service: String,
}

async fn request_service(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Form(f): Form<ServiceForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    require_admin_for_dashboard(&user.principal, org)?;
    let typed = HashMap::from([("service".to_owned(), f.service.clone())]);
    let result = match Service::parse(f.service.trim()) {
        Some(s) => catalogue::subscribe(&state.db, &user.actor(rc.ip.clone()), org, s, false).await.map(|_| ()),
        None => Err(FieldErrors::one("service", if f.service.trim().is_empty() { "required" } else { "format" })),
    };
    Ok(match result {
        Ok(()) => see_other(&format!("/orgs/{org}?done=requested")),
        Err(e) => dashboard_or_error(&state, &rc, &user, org, e, typed).await,
    })
}

#[derive(Deserialize, Default)]
struct StateForm {
    #[serde(default)]
    state: String,
}

async fn set_service_state(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, service)): Path<(String, String)>,
    Form(f): Form<StateForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    require_platform_admin_for(&user.principal, org)?;
    let service = Service::parse(&service).ok_or_else(PageError::not_found)?;
    // Only the two operator decisions; going back to "requested" is not one of them.
    let target = match SubState::parse(f.state.trim()) {
        Some(s @ (SubState::Active | SubState::Suspended)) => s,
        _ => return Err(PageError::status(StatusCode::UNPROCESSABLE_ENTITY, "error-invalid")),
    };
    catalogue::set_state(&state.db, &user.actor(rc.ip.clone()), org, service, target).await?;
    Ok(see_other(&format!("/orgs/{org}?done=state")))
}

async fn set_quota(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, service, key)): Path<(String, String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    require_platform_admin_for(&user.principal, org)?;
    let service = Service::parse(&service).ok_or_else(PageError::not_found)?;
    let Some(key) = service.quota_keys().iter().copied().find(|k| *k == key) else {
        return Err(PageError::not_found());
    };
    let raw = f.get(key).cloned().unwrap_or_default();
    let typed = HashMap::from([(key.to_owned(), raw.clone())]);
    // Blank means no limit; anything else must be a whole number.
    let limit = match raw.trim() {
        "" => Ok(None),
        s => s.parse::<i64>().map(Some).map_err(|_| FieldErrors::one(key, "format")),
    };
    let result = match limit {
        Ok(l) => catalogue::set_quota(&state.db, &user.actor(rc.ip.clone()), org, service, key, l).await,
        Err(e) => Err(e),
    };
    Ok(match result {
        Ok(()) => see_other(&format!("/orgs/{org}?done=quota")),
        Err(e) => dashboard_or_error(&state, &rc, &user, org, e, typed).await,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Members

struct RoleView {
    key: String,
    label: String,
}

struct MemberView {
    id: AccountId,
    name: String,
    email: String,
    roles: Vec<RoleView>,
    grantable: Vec<Choice>,
    grant_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "org_members.html")]
struct MembersPage {
    ctx: PageCtx,
    org_id: OrgId,
    org_name: String,
    can_admin: bool,
    members: Vec<MemberView>,
    roles: Vec<Choice>,
    errors: FieldErrors,
    email: String,
    display_name: String,
    notice: Option<String>,
    /// At the top when a member's grant failed: a link to that member's role list.
    summary: Vec<SummaryItem>,
}

/// The roles this viewer may hand out here: `platform_admin` only in the operator, only by a platform admin.
fn offered_roles(p: &Principal, kind: OrgKind) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::PlatformAdmin || (p.platform_admin && kind == OrgKind::Operator))
        .collect()
}

/// What a failed members form sent back: the add form's values, or which member's grant failed.
#[derive(Default)]
struct MembersTyped {
    add: MemberInput,
    grant_for: Option<AccountId>,
    grant_role: String,
}

async fn render_members(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    errors: FieldErrors,
    typed: MembersTyped,
    notice_code: &str,
) -> Result<MembersPage, PageError> {
    let p = &user.principal;
    let o = tenancy::get(&state.db, org).await?;
    let list = identity::members(&state.db, org).await?;
    let ctx = PageCtx::build(state, rc).await;
    let offered = offered_roles(p, o.kind());
    let members: Vec<MemberView> = list
        .into_iter()
        .map(|(a, roles)| {
            let failed_here = typed.grant_for == Some(a.id);
            let grantable = offered
                .iter()
                .filter(|r| !roles.iter().any(|h| h == r.as_str()))
                .map(|r| Choice {
                    value: r.as_str().to_owned(),
                    label: role_label(&ctx, r.as_str()),
                    selected: failed_here && typed.grant_role == r.as_str(),
                })
                .collect();
            MemberView {
                id: a.id,
                name: a.display_name,
                email: a.email,
                roles: roles.iter().map(|r| RoleView { key: r.clone(), label: role_label(&ctx, r) }).collect(),
                grantable,
                grant_error: if failed_here { ctx.field_error(&errors, "role") } else { None },
            }
        })
        .collect();
    let add_role = if typed.grant_for.is_none() { typed.add.role.clone() } else { String::new() };
    let roles = offered
        .iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: role_label(&ctx, r.as_str()),
            selected: if add_role.is_empty() { *r == Role::Employee } else { add_role == r.as_str() },
        })
        .collect();
    // A grant's error shows beside that member, with a summary at the top of the page that leads to it; the add
    // form's summary is for the add form only.
    let summary = members
        .iter()
        .filter_map(|m: &MemberView| {
            m.grant_error.as_ref().map(|e| SummaryItem { anchor: format!("grant-{}", m.id), text: format!("{}: {e}", m.name) })
        })
        .collect();
    let errors = if typed.grant_for.is_some() { FieldErrors::new() } else { errors };
    let notice = notice(&ctx, notice_code);
    Ok(MembersPage {
        ctx,
        org_id: org,
        org_name: o.name,
        can_admin: p.can_admin_org(org),
        members,
        roles,
        errors,
        email: typed.add.email,
        display_name: typed.add.display_name,
        notice,
        summary,
    })
}

async fn members_or_error(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    e: Error,
    typed: MembersTyped,
) -> Response {
    match e {
        Error::Invalid(errors) => match render_members(state, rc, user, org, errors, typed, "").await {
            Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            Err(e) => e.into_response(),
        },
        Error::Conflict("last-admin") => {
            PageError::status(StatusCode::CONFLICT, "orgs-error-last-admin").into_response()
        }
        other => PageError::from(other).into_response(),
    }
}

async fn members(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Query(q): Query<Done>,
) -> Result<MembersPage, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    user.principal.require_view_org(org)?;
    render_members(&state, &rc, &user, org, FieldErrors::new(), MembersTyped::default(), &q.done).await
}

async fn add_member(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Form(f): Form<MemberInput>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    user.principal.require_admin_org(org)?;
    let actor = user.actor(rc.ip.clone());
    Ok(match tenancy::add_member(&state.db, &user.principal, &actor, org, &f, &state.cfg.public_url).await {
        Ok(added) => {
            see_other(&format!("/orgs/{org}/members?done={}", if added.created { "added-new" } else { "added" }))
        }
        Err(e) => members_or_error(&state, &rc, &user, org, e, MembersTyped { add: f, ..Default::default() }).await,
    })
}

#[derive(Deserialize, Default)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn grant_role(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, account_id)): Path<(String, String)>,
    Form(f): Form<RoleForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    user.principal.require_admin_org(org)?;
    let account: AccountId = parse_id(&account_id)?;
    let actor = user.actor(rc.ip.clone());
    Ok(match tenancy::grant_role(&state.db, &user.principal, &actor, org, account, &f.role).await {
        Ok(()) => see_other(&format!("/orgs/{org}/members?done=granted")),
        Err(e) => {
            let typed = MembersTyped { grant_for: Some(account), grant_role: f.role, ..Default::default() };
            members_or_error(&state, &rc, &user, org, e, typed).await
        }
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "org_revoke.html")]
struct RevokePage {
    ctx: PageCtx,
    org_id: OrgId,
    question: String,
    account_id: AccountId,
    member_name: String,
    member_email: String,
    role: String,
    role_label: String,
}

#[derive(Deserialize, Default)]
struct RoleQuery {
    #[serde(default)]
    role: String,
}

/// Asks before taking a role away: the members page links here, and only the form on this page revokes.
async fn revoke_confirm(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, account_id)): Path<(String, String)>,
    Query(q): Query<RoleQuery>,
) -> Result<RevokePage, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    user.principal.require_admin_org(org)?;
    let account: AccountId = parse_id(&account_id)?;
    let o = tenancy::get(&state.db, org).await?;
    let (member, roles) = identity::members(&state.db, org)
        .await?
        .into_iter()
        .find(|(a, _)| a.id == account)
        .ok_or_else(PageError::not_found)?;
    if !roles.iter().any(|r| *r == q.role) {
        return Err(PageError::not_found());
    }
    let ctx = PageCtx::build(&state, &rc).await;
    let role_label = role_label(&ctx, &q.role);
    let question = ctx.lang.t_args(
        "orgs-revoke-question",
        &[("name", member.display_name.clone()), ("role", role_label.clone()), ("org", o.name.clone())],
    );
    Ok(RevokePage {
        ctx,
        org_id: org,
        question,
        account_id: account,
        member_name: member.display_name,
        member_email: member.email,
        role: q.role,
        role_label,
    })
}

async fn revoke(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, account_id)): Path<(String, String)>,
    Form(f): Form<RoleForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    user.principal.require_admin_org(org)?;
    let account: AccountId = parse_id(&account_id)?;
    let actor = user.actor(rc.ip.clone());
    Ok(match tenancy::revoke_role(&state.db, &user.principal, &actor, org, account, &f.role).await {
        Ok(()) => see_other(&format!("/orgs/{org}/members?done=revoked")),
        Err(e) => members_or_error(&state, &rc, &user, org, e, MembersTyped::default()).await,
    })
}
