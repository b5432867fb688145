//! The shell's own pages: home, sign in and out, language and organisation switches, the accessibility
//! statement, and the error page every other page falls back to.

use agilekit_kernel::identity::{self, login, session};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{self, LANG_COOKIE, RequestCtx, SignedIn};
use crate::ctx::PageCtx;
use crate::error::{ErrorMarker, PageError};
use crate::i18n::Lang;
use crate::pages::safe_next;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang", post(switch_lang))
        .route("/session/org", post(switch_org))
        .route("/accessibility", get(accessibility))
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    /// The current organisation's active services, each with its page when a domain has one.
    services: Vec<(String, Option<&'static str>)>,
    /// Pages of those services for the roles the person holds there: (link, text).
    role_pages: Vec<(String, String)>,
}

async fn home(State(state): State<AppState>, rc: RequestCtx) -> Result<HomePage, PageError> {
    let ctx = PageCtx::build(&state, &rc).await;
    let services = match &ctx.current_org {
        Some(o) => state.cache.active_services(&state.db, o.id).await?,
        None => Vec::new(),
    };
    let mut role_pages = Vec::new();
    if let (Some(o), Some(p)) = (&ctx.current_org, &ctx.principal) {
        for s in &services {
            for (role, page, label) in state.pages_of(s).map(|pg| pg.by_role).unwrap_or_default() {
                let href = page.replace("{org}", &o.id.to_string());
                if p.has(o.id, *role) && !role_pages.iter().any(|(h, _): &(String, String)| *h == href) {
                    role_pages.push((href, ctx.t(label)));
                }
            }
        }
    }
    let services = services.into_iter().map(|s| {
        let page = state.pages_of(&s).map(|p| p.mine);
        (s, page)
    }).collect();
    Ok(HomePage { ctx, services, role_pages })
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    email: String,
    next: String,
    errors: FieldErrors,
    message: Option<String>,
    notice: Option<String>,
    providers: Vec<super::oidc::LoginLink>,
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    notice: String,
}

async fn login_form(State(state): State<AppState>, rc: RequestCtx, Query(q): Query<NextQuery>) -> LoginPage {
    let ctx = PageCtx::build(&state, &rc).await;
    let notice = (!q.notice.is_empty()).then(|| ctx.t(&format!("notice-{}", q.notice.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ""))));
    let providers = super::oidc::login_links(&state, &q.next).await;
    LoginPage { ctx, email: String::new(), next: safe_next(&q.next).to_owned(), errors: FieldErrors::new(), message: None, notice, providers }
}

#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_submit(State(state): State<AppState>, rc: RequestCtx, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let next = safe_next(&f.next).to_owned();
    let mut errors = FieldErrors::new();
    if f.email.trim().is_empty() {
        errors.add("email", "required");
    }
    if f.password.is_empty() {
        errors.add("password", "required");
    }
    let result = if errors.is_empty() {
        login::password_login(&state.db, &f.email, &f.password, rc.ip.as_deref()).await
    } else {
        Err(Error::Invalid(errors.clone()))
    };
    match result {
        Ok(account) => {
            let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let (_s, token) = match session::create(&state.db, account.id, account.totp_enabled, rc.ip.clone(), ua).await {
                Ok(v) => v,
                Err(e) => return PageError::from(e).into_response(),
            };
            let target = if account.totp_enabled { format!("/login/totp?next={}", urlencode(&next)) } else { next };
            let mut r = Redirect::to(&target).into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&token, state.cfg.secure_cookies)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let ctx = PageCtx::build(&state, &rc).await;
            let (status, message) = match &e {
                Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
                Error::Unauthenticated => (StatusCode::UNAUTHORIZED, Some(ctx.t("login-failed"))),
                Error::Throttled { retry_after_secs } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(ctx.t1("login-throttled", "minutes", &retry_after_secs.div_ceil(60).to_string())),
                ),
                _ => return PageError::from(e).into_response(),
            };
            let errors = if let Error::Invalid(f) = e { f } else { FieldErrors::new() };
            let providers = super::oidc::login_links(&state, &next).await;
            let page = LoginPage { ctx, email: f.email, next, errors, message, notice: None, providers };
            (status, page).into_response()
        }
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn logout(State(state): State<AppState>, rc: RequestCtx) -> Response {
    if let Some(s) = rc.user.as_ref().and_then(|u| u.session.as_ref()) {
        if let Err(e) = session::delete(&state.db, s.id).await {
            return PageError::from(e).into_response();
        }
    }
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_session_cookie(state.cfg.secure_cookies)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct LangForm {
    lang: String,
    #[serde(default)]
    next: String,
}

async fn switch_lang(State(state): State<AppState>, rc: RequestCtx, Form(f): Form<LangForm>) -> Result<Response, PageError> {
    let lang = Lang::parse(&f.lang).ok_or(PageError::status(StatusCode::UNPROCESSABLE_ENTITY, "error-invalid"))?;
    if let Some(u) = &rc.user {
        identity::set_locale(&state.db, u.principal.id(), lang.code()).await?;
        if let Some(s) = &u.session {
            session::set_locale(&state.db, s.id, lang.code()).await?;
        }
    }
    let mut r = Redirect::to(safe_next(&f.next)).into_response();
    let cookie = format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", lang.code());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct OrgForm {
    org_id: String,
    #[serde(default)]
    next: String,
}

async fn switch_org(State(state): State<AppState>, SignedIn(user, _): SignedIn, Form(f): Form<OrgForm>) -> Result<Response, PageError> {
    let org: OrgId = f.org_id.parse().map_err(|_| PageError::status(StatusCode::UNPROCESSABLE_ENTITY, "error-invalid"))?;
    if !user.principal.is_member(org) {
        return Err(PageError::not_found());
    }
    if let Some(s) = &user.session {
        session::set_current_org(&state.db, s.id, Some(org)).await?;
    }
    // Pages under another organisation's path would now be out of place: go to the new organisation's dashboard.
    let next = safe_next(&f.next);
    let target = if next.starts_with("/orgs/") { format!("/orgs/{org}") } else { next.to_owned() };
    Ok(Redirect::to(&target).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "accessibility.html")]
struct AccessibilityPage {
    ctx: PageCtx,
}

async fn accessibility(State(state): State<AppState>, rc: RequestCtx) -> AccessibilityPage {
    AccessibilityPage { ctx: PageCtx::build(&state, &rc).await }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: PageCtx,
    status: u16,
    message_key: String,
}

/// Middleware: turns bare error statuses of HTML requests (from handlers, the router's fallback, the body
/// limit or the timeout) into a full, localised page. API responses are left as they are.
pub async fn error_pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let rc = req.extensions().get::<RequestCtx>().cloned();
    let resp = next.run(req).await;
    let status = resp.status();
    let Some(rc) = rc else { return resp };
    if rc.is_api || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let marker = resp.extensions().get::<ErrorMarker>().cloned();
    let has_body = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if has_body && marker.is_none() {
        return resp;
    }
    let key = marker.map(|m| m.message_key).unwrap_or(match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "error-not-found",
        StatusCode::PAYLOAD_TOO_LARGE => "error-too-large",
        StatusCode::REQUEST_TIMEOUT => "error-timeout",
        StatusCode::FORBIDDEN => "error-forbidden",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => "error-invalid",
        s if s.is_server_error() => "error-internal",
        _ => "error-invalid",
    });
    let page = ErrorPage { ctx: PageCtx::build(&state, &rc).await, status: status.as_u16(), message_key: key.to_owned() };
    match page.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            r
        }
        Err(_) => resp,
    }
}
