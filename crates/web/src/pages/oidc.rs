//! OpenID Connect pages: the start of a login and the provider's callback (which opens a session like a password
//! login), the "Sign in with …" links of the login page, and the administration of providers — an
//! organisation's at /orgs/{org_id}/oidc (its admins), the public side's at /admin/oidc (platform admins).

use agilekit_kernel::identity::oidc::{self, Callback, OidcError, OidcProviderId, ProviderInput, Scope};
use agilekit_kernel::identity::session;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors, tenancy};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{self, CurrentUser, RequestCtx, SignedIn};
use crate::ctx::PageCtx;
use crate::error::{PageError, status_of};
use crate::pages::orgs::{SummaryItem, parse_id};
use crate::pages::safe_next;
use crate::pages::shell::urlencode;
use crate::pages::see_other;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/callback", get(callback))
        .route("/auth/oidc/{provider_id}/start", get(start))
        .route("/orgs/{org_id}/oidc", get(org_page).post(org_create))
        .route("/orgs/{org_id}/oidc/{id}/enabled", post(org_set_enabled))
        .route("/orgs/{org_id}/oidc/{id}/delete", get(org_delete_confirm).post(org_delete))
        .route("/admin/oidc", get(admin_page).post(admin_create))
        .route("/admin/oidc/{id}/enabled", post(admin_set_enabled))
        .route("/admin/oidc/{id}/delete", get(admin_delete_confirm).post(admin_delete))
}

/// The browser's half of a login in flight: the callback is accepted only where the login started, so a link
/// carrying someone else's code cannot sign a victim in as the attacker.
const STATE_COOKIE: &str = "agilekit_oidc";

/// What the provider redirects back to; the same for every provider, registered at each of them.
pub fn callback_url(state: &AppState) -> String {
    format!("{}/auth/oidc/callback", state.cfg.public_url.trim_end_matches('/'))
}

fn add_cookie(r: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn state_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{STATE_COOKIE}={value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

// ---------------------------------------------------------------------------------------------------------------
// The login page's links

/// A "Sign in with …" link of the login page.
pub struct LoginLink {
    pub href: String,
    /// The provider's name; an organisation's provider also names the organisation.
    pub label: String,
}

/// The enabled providers as links that come back to `next`. A database fault leaves the password form alone.
pub async fn login_links(state: &AppState, next: &str) -> Vec<LoginLink> {
    let next = safe_next(next);
    match oidc::login_choices(&state.db).await {
        Ok(choices) => choices
            .into_iter()
            .map(|c| LoginLink {
                href: if next == "/" {
                    format!("/auth/oidc/{}/start", c.id)
                } else {
                    format!("/auth/oidc/{}/start?next={}", c.id, urlencode(next))
                },
                label: match c.org_name {
                    Some(org) => format!("{} ({org})", c.display_name),
                    None => c.display_name,
                },
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list OpenID providers");
            Vec::new()
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The login flow

#[derive(Template, WebTemplate)]
#[template(path = "oidc_error.html")]
struct ErrorPage {
    ctx: PageCtx,
    message: String,
}

/// A login that failed, as a page a person can act on. Only a database fault is a 500.
async fn error_page(state: &AppState, rc: &RequestCtx, e: OidcError) -> Response {
    let status = match &e {
        OidcError::NotFound => StatusCode::NOT_FOUND,
        OidcError::UnknownLogin => StatusCode::BAD_REQUEST,
        OidcError::Refused(_) | OidcError::BadToken(_) => StatusCode::UNAUTHORIZED,
        OidcError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        OidcError::NoAccount { .. } | OidcError::MissingEmail | OidcError::Disabled => StatusCode::FORBIDDEN,
        OidcError::EmailTaken => StatusCode::CONFLICT,
        OidcError::Kernel(k) => status_of(k),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "OpenID login failed");
    } else {
        tracing::warn!(error = %e, "OpenID login refused");
    }
    let ctx = PageCtx::build(state, rc).await;
    let message = match &e {
        OidcError::NoAccount { org_name } => ctx.t1("oidc-error-no-account", "org", org_name),
        // Claims the account rules refuse (an address that is not one, say): the provider's answer is at fault.
        OidcError::Kernel(_) if !status.is_server_error() => ctx.t("oidc-error-bad-token"),
        other => ctx.t(&format!("oidc-error-{}", other.code())),
    };
    (status, ErrorPage { ctx, message }).into_response()
}

#[derive(Deserialize, Default)]
struct StartQuery {
    #[serde(default)]
    next: String,
}

async fn start(
    State(state): State<AppState>,
    rc: RequestCtx,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let Ok(id) = id.trim().parse::<OidcProviderId>() else { return PageError::not_found().into_response() };
    match oidc::start(&state.db, id, &callback_url(&state), safe_next(&q.next)).await {
        Ok(s) => {
            let mut r = see_other(&s.authorization_url);
            add_cookie(&mut r, &state_cookie(&s.state, oidc::LOGIN_TTL.whole_seconds(), state.cfg.secure_cookies));
            r
        }
        Err(e) => error_page(&state, &rc, e).await,
    }
}

async fn callback(
    State(state): State<AppState>,
    rc: RequestCtx,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let started_here =
        cb.state.as_deref().is_some_and(|s| !s.is_empty() && auth::cookie(&headers, STATE_COOKIE) == Some(s));
    let result = if started_here {
        oidc::finish(&state.db, &cb, &callback_url(&state), rc.ip.clone()).await
    } else {
        Err(OidcError::UnknownLogin)
    };
    let mut r = match result {
        Ok(done) => {
            let account = done.account;
            let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
            // Exactly as a password login: a second factor, when the account has one, is still asked for.
            match session::create(&state.db, account.id, account.totp_enabled, rc.ip.clone(), ua).await {
                Ok((_s, token)) => {
                    let next = safe_next(&done.next);
                    let target = if account.totp_enabled {
                        format!("/login/totp?next={}", urlencode(next))
                    } else {
                        next.to_owned()
                    };
                    let mut r = see_other(&target);
                    add_cookie(&mut r, &auth::session_cookie(&token, state.cfg.secure_cookies));
                    r
                }
                Err(e) => PageError::from(e).into_response(),
            }
        }
        Err(e) => error_page(&state, &rc, e).await,
    };
    // The login this browser started is over either way; a stray callback leaves it alone.
    if started_here {
        add_cookie(&mut r, &state_cookie("", 0, state.cfg.secure_cookies));
    }
    r
}

// ---------------------------------------------------------------------------------------------------------------
// Administration

struct ProviderRow {
    id: OidcProviderId,
    display_name: String,
    issuer: String,
    client_id: String,
    scopes: String,
    tax_code_claim: String,
    enabled: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "oidc_admin.html")]
struct AdminPage {
    ctx: PageCtx,
    title: String,
    intro: String,
    /// `/orgs/{id}/oidc` or `/admin/oidc`: where the forms post.
    base: String,
    providers: Vec<ProviderRow>,
    can_admin: bool,
    /// What a failed form submitted (never the secret).
    form: ProviderInput,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    callback_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "oidc_delete.html")]
struct DeletePage {
    ctx: PageCtx,
    base: String,
    id: OidcProviderId,
    name: String,
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

#[derive(Deserialize, Default)]
struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

/// Where the administration happens, and what the viewer may do there.
struct Place {
    scope: Scope,
    base: String,
    org_name: Option<String>,
    can_admin: bool,
}

/// An organisation's providers: its viewers (admins, HR) read, its admins change. Strangers get 404.
async fn org_place(state: &AppState, user: &CurrentUser, org: &str, change: bool) -> Result<Place, PageError> {
    let org: OrgId = parse_id(org)?;
    let p = &user.principal;
    if change {
        p.require_admin_org(org)?;
    } else {
        p.require_view_org(org)?;
    }
    let o = tenancy::get(&state.db, org).await?;
    Ok(Place {
        scope: Scope::Org(org),
        base: format!("/orgs/{org}/oidc"),
        org_name: Some(o.name),
        can_admin: p.can_admin_org(org),
    })
}

fn public_place(user: &CurrentUser) -> Result<Place, PageError> {
    user.principal.require_platform_admin()?;
    Ok(Place { scope: Scope::Public, base: "/admin/oidc".into(), org_name: None, can_admin: true })
}

fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    matches!(done, "created" | "enabled" | "disabled" | "deleted").then(|| ctx.t(&format!("oidc-notice-{done}")))
}

async fn render(
    state: &AppState,
    rc: &RequestCtx,
    place: &Place,
    form: ProviderInput,
    errors: FieldErrors,
    done: &str,
) -> Result<AdminPage, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let providers = oidc::list_providers(&state.db, place.scope)
        .await?
        .into_iter()
        .map(|p| ProviderRow {
            id: p.id,
            display_name: p.display_name,
            issuer: p.issuer,
            client_id: p.client_id,
            scopes: p.scopes,
            tax_code_claim: p.tax_code_claim,
            enabled: p.enabled,
        })
        .collect();
    let (title, intro) = match &place.org_name {
        Some(name) => (ctx.t1("oidc-admin-title-org", "org", name), ctx.t("oidc-admin-intro-org")),
        None => (ctx.t("oidc-admin-title-public"), ctx.t("oidc-admin-intro-public")),
    };
    let summary = errors
        .0
        .iter()
        .map(|e| SummaryItem {
            anchor: format!("f-{}", e.field),
            text: format!("{}: {}", ctx.t(&format!("oidc-label-{}", e.field)), ctx.t(&format!("field-{}", e.code))),
        })
        .collect();
    let notice = notice(&ctx, done);
    Ok(AdminPage {
        ctx,
        title,
        intro,
        base: place.base.clone(),
        providers,
        can_admin: place.can_admin,
        form: ProviderInput { client_secret: String::new(), ..form },
        errors,
        summary,
        notice,
        callback_url: callback_url(state),
    })
}

async fn list(state: &AppState, rc: &RequestCtx, place: Place, done: &str) -> Result<AdminPage, PageError> {
    let form = ProviderInput {
        scopes: oidc::DEFAULT_SCOPES.into(),
        tax_code_claim: oidc::DEFAULT_TAX_CODE_CLAIM.into(),
        ..Default::default()
    };
    render(state, rc, &place, form, FieldErrors::new(), done).await
}

async fn create(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    place: Place,
    f: ProviderInput,
) -> Result<Response, PageError> {
    match oidc::create_provider(&state.db, &user.actor(rc.ip.clone()), place.scope, &f).await {
        Ok(_) => Ok(see_other(&format!("{}?done=created", place.base))),
        Err(Error::Invalid(errors)) => {
            let page = render(state, rc, &place, f, errors, "").await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn set_enabled(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    place: Place,
    id: &str,
    f: EnabledForm,
) -> Result<Response, PageError> {
    let id: OidcProviderId = parse_id(id)?;
    let enabled = match f.enabled.as_str() {
        "1" | "true" => true,
        "0" | "false" => false,
        _ => return Err(PageError::status(StatusCode::UNPROCESSABLE_ENTITY, "error-invalid")),
    };
    oidc::set_enabled(&state.db, &user.actor(rc.ip.clone()), place.scope, id, enabled).await?;
    Ok(see_other(&format!("{}?done={}", place.base, if enabled { "enabled" } else { "disabled" })))
}

async fn delete_confirm(state: &AppState, rc: &RequestCtx, place: Place, id: &str) -> Result<DeletePage, PageError> {
    let id: OidcProviderId = parse_id(id)?;
    let p = oidc::get_scoped(&state.db, place.scope, id).await?;
    Ok(DeletePage { ctx: PageCtx::build(state, rc).await, base: place.base, id, name: p.display_name })
}

async fn delete(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    place: Place,
    id: &str,
) -> Result<Response, PageError> {
    let id: OidcProviderId = parse_id(id)?;
    oidc::delete_provider(&state.db, &user.actor(rc.ip.clone()), place.scope, id).await?;
    Ok(see_other(&format!("{}?done=deleted", place.base)))
}

async fn org_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<Done>,
) -> Result<AdminPage, PageError> {
    let place = org_place(&state, &user, &org, false).await?;
    list(&state, &rc, place, &q.done).await
}

async fn org_create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(f): Form<ProviderInput>,
) -> Result<Response, PageError> {
    let place = org_place(&state, &user, &org, true).await?;
    create(&state, &rc, &user, place, f).await
}

async fn org_set_enabled(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(f): Form<EnabledForm>,
) -> Result<Response, PageError> {
    let place = org_place(&state, &user, &org, true).await?;
    set_enabled(&state, &rc, &user, place, &id, f).await
}

async fn org_delete_confirm(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
) -> Result<DeletePage, PageError> {
    let place = org_place(&state, &user, &org, true).await?;
    delete_confirm(&state, &rc, place, &id).await
}

async fn org_delete(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let place = org_place(&state, &user, &org, true).await?;
    delete(&state, &rc, &user, place, &id).await
}

async fn admin_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<Done>,
) -> Result<AdminPage, PageError> {
    let place = public_place(&user)?;
    list(&state, &rc, place, &q.done).await
}

async fn admin_create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<ProviderInput>,
) -> Result<Response, PageError> {
    let place = public_place(&user)?;
    create(&state, &rc, &user, place, f).await
}

async fn admin_set_enabled(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Form(f): Form<EnabledForm>,
) -> Result<Response, PageError> {
    let place = public_place(&user)?;
    set_enabled(&state, &rc, &user, place, &id, f).await
}

async fn admin_delete_confirm(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
) -> Result<DeletePage, PageError> {
    let place = public_place(&user)?;
    delete_confirm(&state, &rc, place, &id).await
}

async fn admin_delete(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let place = public_place(&user)?;
    delete(&state, &rc, &user, place, &id).await
}
