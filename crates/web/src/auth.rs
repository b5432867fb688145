//! Who is asking: the session cookie or a bearer API token, resolved once per request by a middleware
//! into a [`RequestCtx`] that extractors read. Also the language of the request.

use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::session::{self, COOKIE, Session};
use agilekit_kernel::identity::token;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::state::AppState;

pub const LANG_COOKIE: &str = "agilekit_lang";

/// Resolved for every request by [`resolve`].
#[derive(Clone)]
pub struct RequestCtx {
    pub user: Option<CurrentUser>,
    pub lang: Lang,
    pub ip: Option<String>,
    pub path: String,
    pub is_api: bool,
}

#[derive(Clone)]
pub struct CurrentUser {
    pub principal: Principal,
    /// `None` when the request came with an API token.
    pub session: Option<Session>,
}

impl CurrentUser {
    pub fn actor(&self, ip: Option<String>) -> agilekit_kernel::audit::Actor {
        agilekit_kernel::audit::Actor::account(self.principal.id(), ip)
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn client_ip(req: &Request) -> Option<String> {
    req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string())
}

async fn load_user(state: &AppState, headers: &HeaderMap) -> Option<CurrentUser> {
    if let Some(bearer) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        let account = token::authenticate(&state.db, bearer.trim()).await.ok().flatten()?;
        let principal = Principal::load(&state.db, account).await.ok()?;
        return (!principal.account.disabled).then_some(CurrentUser { principal, session: None });
    }
    let secret = cookie(headers, COOKIE)?;
    let s = state.cache.session(&state.db, secret).await.ok().flatten()?;
    if s.mfa_pending {
        return None;
    }
    let principal = state.cache.principal(&state.db, s.account_id).await.ok()?;
    (!principal.account.disabled).then_some(CurrentUser { principal, session: Some(s) })
}

/// Middleware: resolves the user and the language and stores them in the request's extensions.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let path = req.uri().path().to_owned();
    let is_api = path.starts_with("/api/");
    let user = if path.starts_with("/static/") || path == "/healthz" { None } else { load_user(&state, &headers).await };
    let lang = user
        .as_ref()
        .and_then(|u| u.session.as_ref().and_then(|s| s.locale.as_deref()).or(u.principal.account.locale.as_deref()))
        .and_then(Lang::parse)
        .or_else(|| cookie(&headers, LANG_COOKIE).and_then(Lang::parse))
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language))
        .unwrap_or_default();
    let ip = client_ip(&req);
    req.extensions_mut().insert(RequestCtx { user, lang, ip, path, is_api });
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for RequestCtx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestCtx>().cloned().unwrap_or(RequestCtx {
            user: None,
            lang: Lang::default(),
            ip: None,
            path: parts.uri.path().to_owned(),
            is_api: parts.uri.path().starts_with("/api/"),
        }))
    }
}

/// A page that needs a signed-in user: without one, the browser goes to the login page and comes back.
pub struct SignedIn(pub CurrentUser, pub RequestCtx);

pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        Redirect::to(&format!("/login?next={}", url::form_urlencoded::byte_serialize(self.0.as_bytes()).collect::<String>()))
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = LoginRedirect;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let ctx = RequestCtx::from_request_parts(parts, s).await.unwrap_or_else(|never| match never {});
        match ctx.user.clone() {
            Some(u) => Ok(SignedIn(u, ctx)),
            None => {
                let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
                Err(LoginRedirect(next))
            }
        }
    }
}

/// An API call that needs a user (session or bearer token): without one, 401 problem+json.
pub struct ApiUser(pub CurrentUser, pub RequestCtx);

impl<S: Send + Sync> FromRequestParts<S> for ApiUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let ctx = RequestCtx::from_request_parts(parts, s).await.unwrap_or_else(|never| match never {});
        match ctx.user.clone() {
            Some(u) => Ok(ApiUser(u, ctx)),
            None => Err(ApiError(agilekit_kernel::Error::Unauthenticated)),
        }
    }
}

/// The `Set-Cookie` value for a session token.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        session::IDLE.whole_seconds() * 3,
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_session_cookie(secure: bool) -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", if secure { "; Secure" } else { "" })
}
