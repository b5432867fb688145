//! The VPN's pages: the employee's own devices in the current organisation (`/vpn`: enrol, download the wg-quick
//! file, QR code, rename, renew, revoke), and the organisation admin's page (`/orgs/{org}/vpn`: networks,
//! gateways with their token shown once, access groups, devices to approve or revoke, who is connected).
//! Every form works without JavaScript; a small script adds "generate the key in this browser".

use agilekit_web::pages::{parse_id, see_other};
use std::collections::HashMap;

use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::identity::{self, Role};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use agilekit_web::AppState;
use agilekit_web::auth::{CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::model::{DeviceId, DeviceState, GatewayId, NetworkId, AccessGroupId};
use crate::service::{self, AccessGroupInput, Device, EnrolInput, GatewayInput, NetworkInput, RenameInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vpn", get(my_vpn))
        .route("/vpn/devices", post(enrol))
        .route("/vpn/devices/{device}", get(device_page))
        .route("/vpn/devices/{device}/wg.conf", get(download))
        .route("/vpn/devices/{device}/rename", post(rename))
        .route("/vpn/devices/{device}/renew", post(renew))
        .route("/vpn/devices/{device}/revoke", post(revoke))
        .route("/orgs/{org}/vpn", get(admin))
        .route("/orgs/{org}/vpn/networks", post(create_network))
        .route("/orgs/{org}/vpn/networks/{network}/gateways", post(create_gateway))
        .route("/orgs/{org}/vpn/networks/{network}/gateways/{gateway}/delete", post(delete_gateway))
        .route("/orgs/{org}/vpn/networks/{network}/access-groups", post(create_group))
        .route("/orgs/{org}/vpn/networks/{network}/access-groups/{group}/delete", post(delete_group))
        .route("/orgs/{org}/vpn/devices/{device}/approve", post(admin_approve))
        .route("/orgs/{org}/vpn/devices/{device}/revoke", post(admin_revoke))
}

/// The organisation the signed-in person is working for (the switcher's choice).
async fn current_org(state: &AppState, rc: &RequestCtx) -> Result<(PageCtx, OrgId, String), PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let org = ctx.current_org.clone().ok_or_else(PageError::not_found)?;
    Ok((ctx, org.id, org.name))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// The confirmation shown after a change; only known codes, so a URL cannot put arbitrary text on the page.
fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    let known = ["enrolled", "renamed", "renewed", "revoked", "approved", "network", "group", "deleted"];
    known.contains(&done).then(|| ctx.t(&format!("vpn-notice-{done}")))
}

/// A form's values as typed and its complaints, by field (`routes[2]` is shown on `routes`).
#[derive(Default)]
struct FormState {
    /// Which form on the page this is (a page may have one per network).
    id: String,
    values: HashMap<String, String>,
    errors: Vec<(String, String)>,
}

impl FormState {
    fn new(id: &str) -> FormState {
        FormState { id: id.to_owned(), ..Default::default() }
    }

    fn with(id: &str, values: HashMap<String, String>, ctx: &PageCtx, errors: &FieldErrors) -> FormState {
        let errors = errors
            .0
            .iter()
            .map(|e| (e.field.split('[').next().unwrap_or("").to_owned(), ctx.t(&format!("field-{}", e.code))))
            .collect();
        FormState { id: id.to_owned(), values, errors }
    }

    fn v(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    fn e(&self, name: &str) -> Option<String> {
        let all: Vec<&str> = self.errors.iter().filter(|(f, _)| f == name).map(|(_, m)| m.as_str()).collect();
        if all.is_empty() { None } else { Some(all.join("; ")) }
    }

    fn checked(&self, name: &str, value: &str) -> bool {
        self.values.get(name).is_some_and(|v| v.split(',').any(|x| x == value))
    }
}

/// A line of a form's error summary: where to jump and what is wrong.
struct SummaryItem {
    anchor: String,
    text: String,
}

fn summary(ctx: &PageCtx, prefix: &str, f: &FormState) -> Vec<SummaryItem> {
    f.errors
        .iter()
        .map(|(field, msg)| SummaryItem {
            anchor: format!("{prefix}{field}"),
            text: format!("{}: {msg}", ctx.t(&format!("vpn-label-{field}"))),
        })
        .collect()
}

/// Items separated by commas, spaces or line breaks.
fn list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace()).filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

fn state_view(ctx: &PageCtx, s: DeviceState) -> (String, &'static str) {
    let class = match s {
        DeviceState::Active => "text-bg-success",
        DeviceState::Pending => "text-bg-warning",
        DeviceState::Revoked | DeviceState::Expired => "text-bg-secondary",
    };
    (ctx.t(&format!("vpn-state-{}", s.as_str())), class)
}

fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", n / 1024.0 / 1024.0 / 1024.0)
    }
}

struct DeviceView {
    id: DeviceId,
    name: String,
    owner: String,
    network: String,
    address: String,
    state_label: String,
    state_class: &'static str,
    live: bool,
    expires: String,
    connected: bool,
    last_seen: String,
    traffic: String,
}

fn device_view(ctx: &PageCtx, d: &Device) -> DeviceView {
    let (state_label, state_class) = state_view(ctx, d.state);
    DeviceView {
        id: d.id,
        name: d.name.clone(),
        owner: format!("{} <{}>", d.owner_name, d.owner_email),
        network: d.network_name.clone(),
        address: match &d.address_v6 {
            Some(v6) => format!("{} · {v6}", d.address_v4),
            None => d.address_v4.clone(),
        },
        state_label,
        state_class,
        live: d.state.is_live(),
        expires: ctx.format_time(&d.expires_at),
        connected: d.connected,
        last_seen: ctx.format_opt_time(&d.last_handshake_at),
        traffic: format!("↓ {} · ↑ {}", bytes(d.tx_bytes), bytes(d.rx_bytes)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The employee's page

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "vpn.html")]
struct MyVpnPage {
    ctx: PageCtx,
    org_name: String,
    /// Why the person may not enrol here, if they may not.
    refusal: Option<String>,
    seats_left: Option<i64>,
    devices: Vec<DeviceView>,
    networks: Vec<Choice>,
    form: FormState,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    can_admin: bool,
    admin_link: String,
}

async fn render_my_vpn(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    form: FormState,
    notice_code: &str,
) -> Result<MyVpnPage, PageError> {
    let (ctx, org, org_name) = current_org(state, rc).await?;
    let p = &user.principal;
    let devices = service::devices(&state.db, p, org, false).await?;
    let networks = service::networks(&state.db, p, org).await?;
    let (refusal, seats_left) = match catalogue::entitlement(&state.db, p.id(), org, Service::RemoteAccess).await? {
        Ok(e) => (None, e.remaining(service::SEATS)),
        Err(_) => (Some(ctx.t("vpn-not-entitled")), None),
    };
    let refusal = refusal.or_else(|| networks.is_empty().then(|| ctx.t("vpn-no-network")));
    let wanted = form.v("network_id");
    let networks = networks
        .iter()
        .map(|n| Choice { value: n.id.to_string(), label: n.name.clone(), selected: n.id.to_string() == wanted })
        .collect();
    let summary = summary(&ctx, "f-", &form);
    let notice = notice(&ctx, notice_code);
    Ok(MyVpnPage {
        devices: devices.iter().map(|d| device_view(&ctx, d)).collect(),
        org_name,
        refusal,
        seats_left,
        networks,
        summary,
        form,
        notice,
        can_admin: p.can_view_org(org),
        admin_link: format!("/orgs/{org}/vpn"),
        ctx,
    })
}

async fn my_vpn(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Query(q): Query<Done>) -> Result<MyVpnPage, PageError> {
    render_my_vpn(&state, &rc, &user, FormState::new("enrol"), &q.done).await
}

#[derive(Deserialize, Default)]
struct EnrolForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    network_id: String,
    #[serde(default)]
    public_key: String,
    /// `device` (the default: a public key pasted or made by the browser) or `server`.
    #[serde(default)]
    key_mode: String,
}

/// The one page that shows a server-generated private key: answered directly (never a redirect, so the key is in
/// no URL and no history), never cached.
#[derive(Template, WebTemplate)]
#[template(path = "vpn_created.html")]
struct CreatedPage {
    ctx: PageCtx,
    device: DeviceView,
    private_key: String,
    config: String,
    qr: Option<String>,
}

async fn enrol(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Form(f): Form<EnrolForm>) -> Result<Response, PageError> {
    let (ctx, org, _) = current_org(&state, &rc).await?;
    let generate = f.key_mode == "server";
    let input = EnrolInput {
        name: f.name.clone(),
        network_id: Some(f.network_id.clone()),
        public_key: (!generate).then(|| f.public_key.clone()),
        generate_key: generate,
    };
    let typed = HashMap::from([
        ("name".to_owned(), f.name),
        ("network_id".to_owned(), f.network_id),
        ("public_key".to_owned(), f.public_key),
        ("key_mode".to_owned(), f.key_mode),
    ]);
    match service::enrol(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, &input).await {
        Ok(e) => match e.private_key {
            Some(private_key) => {
                let page = CreatedPage {
                    device: device_view(&ctx, &e.device),
                    qr: agilekit_web::pages::account::qr_data_uri(&e.config),
                    private_key,
                    config: e.config,
                    ctx,
                };
                Ok((StatusCode::CREATED, page).into_response())
            }
            None => Ok(see_other(&format!("/vpn/devices/{}?done=enrolled", e.device.id))),
        },
        Err(Error::Invalid(errors)) => {
            let form = FormState::with("enrol", typed, &ctx, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render_my_vpn(&state, &rc, &user, form, "").await?).into_response())
        }
        Err(Error::QuotaExhausted) => {
            let mut errors = FieldErrors::new();
            errors.add("network_id", "no-seat");
            let form = FormState::with("enrol", typed, &ctx, &errors);
            Ok((StatusCode::CONFLICT, render_my_vpn(&state, &rc, &user, form, "").await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "vpn_device.html")]
struct DevicePage {
    ctx: PageCtx,
    device: DeviceView,
    public_key: String,
    config: String,
    qr: Option<String>,
    form: FormState,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

async fn render_device(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    id: DeviceId,
    form: FormState,
    notice_code: &str,
) -> Result<DevicePage, PageError> {
    let (ctx, org, _) = current_org(state, rc).await?;
    let d = service::device(&state.db, &user.principal, org, id).await?;
    // Only the owner's own page: admins look at devices from the organisation's page.
    if d.account_id != user.principal.id() {
        return Err(PageError::not_found());
    }
    let config = service::device_config(&state.db, &user.principal, org, id).await?;
    let form = if form.values.is_empty() {
        FormState { values: HashMap::from([("name".to_owned(), d.name.clone())]), ..form }
    } else {
        form
    };
    let notice = notice(&ctx, notice_code);
    let summary = summary(&ctx, "f-", &form);
    Ok(DevicePage {
        device: device_view(&ctx, &d),
        public_key: d.public_key.clone(),
        qr: agilekit_web::pages::account::qr_data_uri(&config),
        config,
        form,
        summary,
        notice,
        ctx,
    })
}

async fn device_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Result<DevicePage, PageError> {
    render_device(&state, &rc, &user, parse_id(&id)?, FormState::new("rename"), &q.done).await
}

async fn download(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>) -> Result<Response, PageError> {
    let (_, org, _) = current_org(&state, &rc).await?;
    let id: DeviceId = parse_id(&id)?;
    let d = service::device(&state.db, &user.principal, org, id).await?;
    if d.account_id != user.principal.id() {
        return Err(PageError::not_found());
    }
    let text = service::device_config(&state.db, &user.principal, org, id).await?;
    // A file name wg-quick accepts as an interface name: letters, digits, at most 15 characters.
    let name: String = d.name.chars().filter(char::is_ascii_alphanumeric).take(11).collect();
    let name = if name.is_empty() { "agilekit".to_owned() } else { name };
    let disposition = format!("attachment; filename=\"vpn-{name}.conf\"");
    let mut r = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn rename(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Form(f): Form<RenameInput>,
) -> Result<Response, PageError> {
    let (ctx, org, _) = current_org(&state, &rc).await?;
    let id: DeviceId = parse_id(&id)?;
    own_device(&state, &user, org, id).await?;
    match service::rename(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, &f).await {
        Ok(_) => Ok(see_other(&format!("/vpn/devices/{id}?done=renamed"))),
        Err(Error::Invalid(errors)) => {
            let form = FormState::with("rename", HashMap::from([("name".to_owned(), f.name)]), &ctx, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render_device(&state, &rc, &user, id, form, "").await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The employee's pages act on the employee's own devices only.
async fn own_device(state: &AppState, user: &CurrentUser, org: OrgId, id: DeviceId) -> Result<Device, PageError> {
    let d = service::device(&state.db, &user.principal, org, id).await?;
    if d.account_id != user.principal.id() { Err(PageError::not_found()) } else { Ok(d) }
}

async fn renew(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>) -> Result<Response, PageError> {
    let (_, org, _) = current_org(&state, &rc).await?;
    let id: DeviceId = parse_id(&id)?;
    own_device(&state, &user, org, id).await?;
    service::renew(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id).await?;
    Ok(see_other(&format!("/vpn/devices/{id}?done=renewed")))
}

async fn revoke(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>) -> Result<Response, PageError> {
    let (_, org, _) = current_org(&state, &rc).await?;
    let id: DeviceId = parse_id(&id)?;
    own_device(&state, &user, org, id).await?;
    service::revoke(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id).await?;
    Ok(see_other("/vpn?done=revoked"))
}

// ---------------------------------------------------------------------------------------------------------------
// The organisation admin's page

struct GatewayView {
    id: GatewayId,
    name: String,
    endpoint: String,
    public_key: String,
    routes: String,
    last_seen: String,
    online: bool,
}

struct GroupView {
    id: AccessGroupId,
    name: String,
    who: String,
    allow: String,
}

struct NetworkView {
    id: NetworkId,
    name: String,
    ipv4: String,
    ipv6: String,
    dns: String,
    capacity: i64,
    approval: bool,
    expiry_days: i64,
    gateways: Vec<GatewayView>,
    groups: Vec<GroupView>,
    gateway_form: FormState,
    group_form: FormState,
}

#[derive(Template, WebTemplate)]
#[template(path = "vpn_admin.html")]
struct AdminPage {
    ctx: PageCtx,
    org_id: OrgId,
    org_name: String,
    can_admin: bool,
    networks: Vec<NetworkView>,
    pending: Vec<DeviceView>,
    live: Vec<DeviceView>,
    connected: i64,
    seats: String,
    roles: Vec<Choice>,
    network_form: FormState,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

impl AdminPage {
    fn role_checked(&self, form: &FormState, role: &str) -> bool {
        form.checked("roles", role)
    }
}

async fn render_admin(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    mut failed: FormState,
    notice_code: &str,
) -> Result<AdminPage, PageError> {
    let p = &user.principal;
    service::require_view(p, org)?;
    let ctx = PageCtx::build(state, rc).await;
    let o = agilekit_kernel::tenancy::get(&state.db, org).await?;
    let status = service::status(&state.db, p, org).await?;
    let members = identity::members(&state.db, org).await?;
    let email_of = |id: &agilekit_kernel::ids::AccountId| {
        members.iter().find(|(a, _)| a.id == *id).map(|(a, _)| a.email.clone()).unwrap_or_else(|| id.to_string())
    };
    let mut networks = Vec::new();
    for n in service::networks(&state.db, p, org).await? {
        let gateways = service::gateways(&state.db, p, org, Some(n.id))
            .await?
            .into_iter()
            .map(|g| {
                let online = status.gateways.iter().any(|s| s.id == g.id && s.online);
                GatewayView {
                    id: g.id,
                    name: g.name,
                    endpoint: crate::model::endpoint(&g.endpoint, g.port),
                    public_key: g.public_key,
                    routes: g.routes.join(", "),
                    last_seen: ctx.format_opt_time(&g.last_seen_at),
                    online,
                }
            })
            .collect();
        let groups = service::access_groups(&state.db, p, org, n.id)
            .await?
            .into_iter()
            .map(|g| {
                let mut who: Vec<String> = g.roles.iter().map(|r| ctx.t(&format!("orgs-role-{r}"))).collect();
                who.extend(g.accounts.iter().map(&email_of));
                GroupView { id: g.id, name: g.name, who: who.join(", "), allow: g.allow.join(", ") }
            })
            .collect();
        let take = |failed: &mut FormState, id: String| {
            if failed.id == id { std::mem::take(failed) } else { FormState::new(&id) }
        };
        networks.push(NetworkView {
            gateway_form: take(&mut failed, format!("gateway-{}", n.id)),
            group_form: take(&mut failed, format!("group-{}", n.id)),
            id: n.id,
            name: n.name,
            ipv4: n.ipv4_cidr,
            ipv6: n.ipv6_cidr.unwrap_or_default(),
            dns: n.dns.join(", "),
            capacity: n.capacity,
            approval: n.require_approval,
            expiry_days: n.default_expiry_days,
            gateways,
            groups,
        });
    }
    let network_form = if failed.id == "network" { std::mem::take(&mut failed) } else { FormState::new("network") };
    // The summary names the failed form's fields with that form's prefix.
    let mut summary_items = summary(&ctx, "nf-", &network_form);
    for n in &networks {
        summary_items.extend(summary(&ctx, &format!("gf-{}-", n.id), &n.gateway_form));
        summary_items.extend(summary(&ctx, &format!("af-{}-", n.id), &n.group_form));
    }
    let seats = match status.seats_limit {
        Some(l) => ctx.lang.t_args("vpn-seats-of", &[("used", status.seats_used.to_string()), ("limit", l.to_string())]),
        None => ctx.t1("vpn-seats-unlimited", "used", &status.seats_used.to_string()),
    };
    let all = service::devices(&state.db, p, org, true).await?;
    let pending = all.iter().filter(|d| d.state == DeviceState::Pending).map(|d| device_view(&ctx, d)).collect();
    let mut live: Vec<DeviceView> = status.devices.iter().filter(|d| d.state == DeviceState::Active).map(|d| device_view(&ctx, d)).collect();
    live.sort_by_key(|d| std::cmp::Reverse(d.connected));
    let roles = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::PlatformAdmin)
        .map(|r| Choice { value: r.as_str().to_owned(), label: ctx.t(&format!("orgs-role-{}", r.as_str())), selected: false })
        .collect();
    let notice = notice(&ctx, notice_code);
    Ok(AdminPage {
        org_id: org,
        org_name: o.name,
        can_admin: p.can_admin_org(org),
        networks,
        pending,
        live,
        connected: status.connected,
        seats,
        roles,
        network_form,
        summary: summary_items,
        notice,
        ctx,
    })
}

async fn admin(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<Done>,
) -> Result<AdminPage, PageError> {
    render_admin(&state, &rc, &user, parse_id(&org)?, FormState::default(), &q.done).await
}

/// Re-renders the admin page with a form's complaints (422), or passes any other error on.
async fn admin_or_error(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    form: &str,
    typed: HashMap<String, String>,
    e: Error,
) -> Result<Response, PageError> {
    match e {
        Error::Invalid(errors) => {
            let ctx = PageCtx::build(state, rc).await;
            let f = FormState::with(form, typed, &ctx, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render_admin(state, rc, user, org, f, "").await?).into_response())
        }
        other => Err(other.into()),
    }
}

#[derive(Deserialize, Default)]
struct NetworkForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ipv4_cidr: String,
    #[serde(default)]
    ipv6_cidr: String,
    #[serde(default)]
    dns: String,
    #[serde(default)]
    require_approval: Option<String>,
    #[serde(default)]
    default_expiry_days: String,
}

async fn create_network(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(f): Form<NetworkForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    let days = f.default_expiry_days.trim();
    let typed = HashMap::from([
        ("name".to_owned(), f.name.clone()),
        ("ipv4_cidr".to_owned(), f.ipv4_cidr.clone()),
        ("ipv6_cidr".to_owned(), f.ipv6_cidr.clone()),
        ("dns".to_owned(), f.dns.clone()),
        ("require_approval".to_owned(), f.require_approval.clone().unwrap_or_default()),
        ("default_expiry_days".to_owned(), f.default_expiry_days.clone()),
    ]);
    let expiry = match days {
        "" => Ok(None),
        s => s.parse::<i64>().map(Some).map_err(|_| FieldErrors::one("default_expiry_days", "format")),
    };
    let result = match expiry {
        Ok(days) => {
            let input = NetworkInput {
                name: f.name,
                ipv4_cidr: f.ipv4_cidr,
                ipv6_cidr: Some(f.ipv6_cidr),
                dns: list(&f.dns),
                require_approval: f.require_approval.is_some(),
                default_expiry_days: days,
            };
            service::create_network(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, &input).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/orgs/{org}/vpn?done=network"))),
        Err(e) => admin_or_error(&state, &rc, &user, org, "network", typed, e).await,
    }
}

#[derive(Deserialize, Default)]
struct GatewayForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    routes: String,
}

/// Shown once after a gateway is registered: its token and how to start the agent.
#[derive(Template, WebTemplate)]
#[template(path = "vpn_gateway_token.html")]
struct TokenPage {
    ctx: PageCtx,
    org_id: OrgId,
    gateway_name: String,
    token: String,
    server: String,
}

async fn create_gateway(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, network)): Path<(String, String)>,
    Form(f): Form<GatewayForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    let network: NetworkId = parse_id(&network)?;
    let typed = HashMap::from([
        ("name".to_owned(), f.name.clone()),
        ("endpoint".to_owned(), f.endpoint.clone()),
        ("port".to_owned(), f.port.clone()),
        ("public_key".to_owned(), f.public_key.clone()),
        ("routes".to_owned(), f.routes.clone()),
    ]);
    let port = match f.port.trim() {
        "" => Ok(None),
        s => s.parse::<i64>().map(Some).map_err(|_| FieldErrors::one("port", "format")),
    };
    let result = match port {
        Ok(port) => {
            let input = GatewayInput { name: f.name, endpoint: f.endpoint, port, public_key: f.public_key, routes: list(&f.routes) };
            service::create_gateway(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, network, &input).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(g) => {
            let ctx = PageCtx::build(&state, &rc).await;
            let page = TokenPage { ctx, org_id: org, gateway_name: g.gateway.name, token: g.token, server: state.cfg.public_url.clone() };
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(e) => admin_or_error(&state, &rc, &user, org, &format!("gateway-{network}"), typed, e).await,
    }
}

async fn delete_gateway(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, network, gateway)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    let (network, gateway): (NetworkId, GatewayId) = (parse_id(&network)?, parse_id(&gateway)?);
    service::delete_gateway(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, network, gateway).await?;
    Ok(see_other(&format!("/orgs/{org}/vpn?done=deleted")))
}

async fn create_group(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, network)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    let network: NetworkId = parse_id(&network)?;
    let one = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let roles: Vec<String> = f.iter().filter(|(n, _)| n == "roles").map(|(_, v)| v.clone()).collect();
    let (name, accounts, allow) = (one("name"), one("accounts"), one("allow"));
    let typed = HashMap::from([
        ("name".to_owned(), name.clone()),
        ("roles".to_owned(), roles.join(",")),
        ("accounts".to_owned(), accounts.clone()),
        ("allow".to_owned(), allow.clone()),
    ]);
    // People are named by their email on the page; the service takes account ids.
    let members = identity::members(&state.db, org).await?;
    let mut errors = FieldErrors::new();
    let mut ids = Vec::new();
    for email in list(&accounts) {
        match members.iter().find(|(a, _)| a.email.eq_ignore_ascii_case(&email)) {
            Some((a, _)) => ids.push(a.id.to_string()),
            None => errors.add("accounts", "not-found"),
        }
    }
    let result = if errors.is_empty() {
        let input = AccessGroupInput { name, roles, accounts: ids, allow: list(&allow) };
        service::save_access_group(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, network, None, &input).await.map(|_| ())
    } else {
        Err(Error::Invalid(errors))
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/orgs/{org}/vpn?done=group"))),
        Err(e) => admin_or_error(&state, &rc, &user, org, &format!("group-{network}"), typed, e).await,
    }
}

async fn delete_group(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, network, group)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    let (network, group): (NetworkId, AccessGroupId) = (parse_id(&network)?, parse_id(&group)?);
    service::delete_access_group(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, network, group).await?;
    Ok(see_other(&format!("/orgs/{org}/vpn?done=deleted")))
}

async fn admin_approve(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::approve(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, parse_id(&device)?).await?;
    Ok(see_other(&format!("/orgs/{org}/vpn?done=approved")))
}

async fn admin_revoke(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::require_admin(&user.principal, org)?;
    service::revoke(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, parse_id(&device)?).await?;
    Ok(see_other(&format!("/orgs/{org}/vpn?done=revoked")))
}
