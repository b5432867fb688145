//! The account's own pages: profile, password, sessions, API tokens and the second factor (TOTP); the second
//! step of a login; and "forgot password" with its reset links. Every form is a plain POST that works without
//! JavaScript: success redirects back with a notice, a refusal re-renders the page with field errors (422).

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::identity::session::{self, COOKIE, Session};
use agilekit_kernel::identity::oidc::{self, OidcProviderId};
use agilekit_kernel::identity::{self, Account, reset, throttle, token, totp};
use agilekit_kernel::ids::{ApiTokenId, SessionId};
use agilekit_kernel::mail::{self, Mail};
use agilekit_kernel::validate::Email;
use agilekit_kernel::{Error, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use time::Duration;

use crate::auth::{self, CurrentUser, RequestCtx, SignedIn};
use crate::ctx::PageCtx;
use crate::error::PageError;
use crate::pages::safe_next;
use crate::pages::shell::urlencode;
use crate::pages::see_other;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/profile", post(profile_submit))
        .route("/account/password", post(password_submit))
        .route("/account/sessions/end-others", post(sessions_end_others))
        .route("/account/sessions/{id}/end", post(session_end))
        .route("/account/tokens", post(token_create))
        .route("/account/tokens/{id}/revoke", post(token_revoke))
        .route("/account/identities/{provider}/unlink", post(identity_unlink))
        .route("/account/totp", get(totp_setup_page))
        .route("/account/totp/setup", post(totp_setup))
        .route("/account/totp/enable", post(totp_enable))
        .route("/account/totp/disable", post(totp_disable))
        .route("/login/totp", get(login_totp_form).post(login_totp_submit))
        .route("/password/forgot", get(forgot_form).post(forgot_submit))
        .route("/password/reset/{secret}", get(reset_form).post(reset_submit))
}

/// The notices the account page shows after a redirect; anything else in the query is ignored.
const NOTICES: [&str; 8] = [
    "profile-saved",
    "password-changed",
    "session-ended",
    "sessions-ended",
    "token-revoked",
    "totp-enabled",
    "totp-disabled",
    "identity-unlinked",
];

/// One address may ask for reset links this often (each request counts, found or not).
const FORGOT_PER_IP: throttle::Policy =
    throttle::Policy { max: 20, window: Duration::minutes(15), lock: Duration::minutes(15) };
/// One mailbox gets at most this many links an hour, silently: the page must look the same either way.
const FORGOT_PER_ACCOUNT: throttle::Policy =
    throttle::Policy { max: 3, window: Duration::hours(1), lock: Duration::hours(1) };


fn throttled_message(ctx: &PageCtx, secs: u64) -> String {
    ctx.t1("account-throttled", "minutes", &secs.div_ceil(60).to_string())
}

/// The account pages change state on behalf of a browser session; a bearer token (meant for the API) may not.
fn browser_session(user: &CurrentUser) -> Result<&Session, PageError> {
    user.session.as_ref().ok_or(PageError::status(StatusCode::FORBIDDEN, "error-forbidden"))
}

// ---------------------------------------------------------------------------------------------------------
// The account page

struct SessionRow {
    id: SessionId,
    created: String,
    last_seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

struct TokenRow {
    id: ApiTokenId,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

struct IdentityRow {
    provider_id: String,
    provider: String,
    subject: String,
    linked: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    ctx: PageCtx,
    account: Account,
    display_name: String,
    tax_code: String,
    token_name: String,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenRow>,
    identities: Vec<IdentityRow>,
    errors: FieldErrors,
    notice: Option<String>,
    message: Option<String>,
}

impl AccountPage {
    async fn load(state: &AppState, user: &CurrentUser, rc: &RequestCtx) -> Result<AccountPage, PageError> {
        let ctx = PageCtx::build(state, rc).await;
        let account = identity::get(&state.db, user.principal.id()).await?;
        let current = user.session.as_ref().map(|s| s.id);
        let sessions = session::list_for(&state.db, account.id)
            .await?
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                created: ctx.format_time(&s.created_at),
                last_seen: ctx.format_time(&s.last_seen_at),
                ip: s.ip.unwrap_or_else(|| "—".into()),
                user_agent: s.user_agent.unwrap_or_else(|| "—".into()),
                current: Some(s.id) == current,
            })
            .collect();
        let tokens = token::list(&state.db, account.id)
            .await?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                created: ctx.format_time(&t.created_at),
                last_used: ctx.format_opt_time(&t.last_used_at),
                revoked: t.revoked_at.map(|r| ctx.format_time(&r)),
                name: t.name,
                prefix: t.prefix,
            })
            .collect();
        let identities = oidc::linked_identities(&state.db, account.id)
            .await?
            .into_iter()
            .map(|i| IdentityRow {
                provider_id: i.provider_id.to_string(),
                linked: ctx.format_time(&i.created_at),
                provider: i.provider_name,
                subject: i.subject,
            })
            .collect();
        Ok(AccountPage {
            identities,
            display_name: account.display_name.clone(),
            tax_code: account.tax_code.clone().unwrap_or_default(),
            token_name: String::new(),
            account,
            sessions,
            tokens,
            errors: FieldErrors::new(),
            notice: None,
            message: None,
            ctx,
        })
    }
}

/// Re-renders the account page after a refused form: field errors answer 422, a throttle lock 429, anything
/// else the error page. `keep` puts back what the user typed.
async fn refused(
    state: &AppState,
    user: &CurrentUser,
    rc: &RequestCtx,
    e: Error,
    keep: impl FnOnce(&mut AccountPage),
) -> Response {
    let (status, errors, lock) = match e {
        Error::Invalid(f) => (StatusCode::UNPROCESSABLE_ENTITY, f, None),
        Error::Throttled { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, FieldErrors::new(), Some(retry_after_secs))
        }
        other => return PageError::from(other).into_response(),
    };
    let mut page = match AccountPage::load(state, user, rc).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    page.errors = errors;
    page.message = lock.map(|secs| throttled_message(&page.ctx, secs));
    keep(&mut page);
    (status, page).into_response()
}

#[derive(Deserialize, Default)]
struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

async fn account_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<NoticeQuery>,
) -> Result<AccountPage, PageError> {
    let mut page = AccountPage::load(&state, &user, &rc).await?;
    if NOTICES.contains(&q.notice.as_str()) {
        page.notice = Some(page.ctx.t(&format!("account-notice-{}", q.notice)));
    }
    Ok(page)
}

#[derive(Deserialize, Default)]
struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    tax_code: String,
}

async fn profile_submit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<ProfileForm>,
) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    let actor = user.actor(rc.ip.clone());
    match identity::update_profile(&state.db, &actor, user.principal.id(), &f.display_name, &f.tax_code).await {
        Ok(_) => see_other("/account?notice=profile-saved#profile"),
        Err(e) => {
            refused(&state, &user, &rc, e, |p| {
                p.display_name = f.display_name;
                p.tax_code = f.tax_code;
            })
            .await
        }
    }
}

#[derive(Deserialize, Default)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn password_submit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<PasswordForm>,
) -> Response {
    let keep = match browser_session(&user) {
        Ok(s) => s.id,
        Err(e) => return e.into_response(),
    };
    let actor = user.actor(rc.ip.clone());
    let res = session::change_password(
        &state.db,
        &actor,
        user.principal.id(),
        keep,
        &f.current_password,
        &f.new_password,
        &f.password_confirm,
    )
    .await;
    match res {
        Ok(_) => see_other("/account?notice=password-changed#password"),
        // Passwords are never sent back to the browser.
        Err(e) => refused(&state, &user, &rc, e, |_| {}).await,
    }
}

async fn session_end(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>) -> Response {
    let current = match browser_session(&user) {
        Ok(s) => s.id,
        Err(e) => return e.into_response(),
    };
    let Ok(id) = id.parse::<SessionId>() else { return PageError::not_found().into_response() };
    if let Err(e) = session::end_owned(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), id).await {
        return PageError::from(e).into_response();
    }
    if id == current {
        // Ending the session in use is signing out.
        let mut r = see_other("/login");
        if let Ok(v) = HeaderValue::from_str(&auth::clear_session_cookie(state.cfg.secure_cookies)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return r;
    }
    see_other("/account?notice=session-ended#sessions")
}

async fn sessions_end_others(State(state): State<AppState>, SignedIn(user, rc): SignedIn) -> Response {
    let keep = match browser_session(&user) {
        Ok(s) => s.id,
        Err(e) => return e.into_response(),
    };
    match session::end_others(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), keep).await {
        Ok(_) => see_other("/account?notice=sessions-ended#sessions"),
        Err(e) => PageError::from(e).into_response(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account_token_created.html")]
struct TokenCreatedPage {
    ctx: PageCtx,
    name: String,
    secret: String,
}

#[derive(Deserialize, Default)]
struct TokenForm {
    #[serde(default)]
    token_name: String,
}

async fn token_create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    match token::create(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), &f.token_name).await {
        // The secret is shown on this response only (never stored, never in a URL); the page is `no-store`.
        Ok((t, secret)) => {
            TokenCreatedPage { ctx: PageCtx::build(&state, &rc).await, name: t.name, secret }.into_response()
        }
        Err(Error::Invalid(errs)) => {
            let errs = FieldErrors(
                errs.0
                    .into_iter()
                    .map(|e| agilekit_kernel::FieldError { field: "token_name".into(), code: e.code })
                    .collect(),
            );
            refused(&state, &user, &rc, Error::Invalid(errs), |p| p.token_name = f.token_name).await
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

async fn token_revoke(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    let Ok(id) = id.parse::<ApiTokenId>() else { return PageError::not_found().into_response() };
    match token::revoke(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), id).await {
        Ok(()) => see_other("/account?notice=token-revoked#tokens"),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Unlinks the caller's identity at a provider; refused on the page (409) when it is the last way in.
async fn identity_unlink(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(provider): Path<String>) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    let Ok(provider) = provider.parse::<OidcProviderId>() else { return PageError::not_found().into_response() };
    match oidc::unlink(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), provider).await {
        Ok(()) => see_other("/account?notice=identity-unlinked#identities"),
        Err(Error::Conflict("last-sign-in")) => match AccountPage::load(&state, &user, &rc).await {
            Ok(mut page) => {
                page.message = Some(page.ctx.t("account-identity-last"));
                (StatusCode::CONFLICT, page).into_response()
            }
            Err(e) => e.into_response(),
        },
        Err(e) => PageError::from(e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Second factor: enrolment and removal

#[derive(Template, WebTemplate)]
#[template(path = "account_totp.html")]
struct TotpSetupPage {
    ctx: PageCtx,
    /// The secret in groups of four, for typing into an app by hand.
    secret_grouped: String,
    uri: String,
    /// The QR code of `uri`, as a `data:` URI of an SVG image (the CSP allows data: images, not inline styles).
    qr: Option<String>,
    errors: FieldErrors,
    message: Option<String>,
}

impl TotpSetupPage {
    fn new(ctx: PageCtx, account: &Account, secret: &str) -> Self {
        let uri = totp::otpauth_uri(&account.email, secret);
        let grouped =
            secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
        TotpSetupPage {
            ctx,
            secret_grouped: grouped,
            qr: qr_data_uri(&uri),
            uri,
            errors: FieldErrors::new(),
            message: None,
        }
    }
}

/// Renders `text` as a QR code in an SVG image (four modules of quiet zone), base64 in a `data:` URI.
pub fn qr_data_uri(text: &str) -> Option<String> {
    use base64::Engine;
    use std::fmt::Write;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let (w, quiet) = (code.width(), 4);
    let size = w + 2 * quiet;
    let mut path = String::new();
    for (i, c) in code.to_colors().into_iter().enumerate() {
        if c == qrcode::Color::Dark {
            let _ = write!(path, "M{} {}h1v1h-1z", i % w + quiet, i / w + quiet);
        }
    }
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    );
    Some(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

async fn totp_setup(State(state): State<AppState>, SignedIn(user, rc): SignedIn) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    match totp::begin_setup(&state.db, &user.actor(rc.ip.clone()), user.principal.id()).await {
        Ok(_) => see_other("/account/totp"),
        Err(Error::Conflict(_)) => see_other("/account#totp"),
        Err(e) => PageError::from(e).into_response(),
    }
}

async fn totp_setup_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn) -> Result<Response, PageError> {
    match totp::pending_secret(&state.db, user.principal.id()).await? {
        Some(secret) => {
            Ok(TotpSetupPage::new(PageCtx::build(&state, &rc).await, &user.principal.account, &secret).into_response())
        }
        None => Ok(see_other("/account#totp")),
    }
}

#[derive(Deserialize, Default)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

async fn totp_enable(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Form(f): Form<CodeForm>) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    let account = user.principal.id();
    let (status, errors, lock) = match totp::enable(&state.db, &user.actor(rc.ip.clone()), account, &f.code).await {
        Ok(()) => return see_other("/account?notice=totp-enabled#totp"),
        Err(Error::Invalid(errs)) => (StatusCode::UNPROCESSABLE_ENTITY, errs, None),
        Err(Error::Throttled { retry_after_secs }) => {
            (StatusCode::TOO_MANY_REQUESTS, FieldErrors::new(), Some(retry_after_secs))
        }
        Err(Error::Conflict(_)) => return see_other("/account#totp"),
        Err(e) => return PageError::from(e).into_response(),
    };
    let secret = match totp::pending_secret(&state.db, account).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other("/account#totp"),
        Err(e) => return PageError::from(e).into_response(),
    };
    let mut page = TotpSetupPage::new(PageCtx::build(&state, &rc).await, &user.principal.account, &secret);
    page.errors = errors;
    page.message = lock.map(|secs| throttled_message(&page.ctx, secs));
    (status, page).into_response()
}

async fn totp_disable(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<CodeForm>,
) -> Response {
    if let Err(e) = browser_session(&user) {
        return e.into_response();
    }
    match totp::disable(&state.db, &user.actor(rc.ip.clone()), user.principal.id(), &f.code).await {
        Ok(()) => see_other("/account?notice=totp-disabled#totp"),
        Err(e) => refused(&state, &user, &rc, e, |_| {}).await,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Second step of a login

#[derive(Template, WebTemplate)]
#[template(path = "login_totp.html")]
struct LoginTotpPage {
    ctx: PageCtx,
    next: String,
    errors: FieldErrors,
    message: Option<String>,
}

/// The session waiting for its second factor. The auth middleware treats it as signed out on purpose, so it is
/// read here from the cookie.
async fn pending_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, PageError> {
    let Some(token) = auth::cookie(headers, COOKIE) else { return Ok(None) };
    Ok(session::lookup(&state.db, token).await?)
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

async fn login_totp_form(
    State(state): State<AppState>,
    rc: RequestCtx,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(&q.next).to_owned();
    match pending_session(&state, &headers).await? {
        None => Ok(see_other(&format!("/login?next={}", urlencode(&next)))),
        Some(s) if !s.mfa_pending => Ok(see_other(&next)),
        Some(_) => {
            let ctx = PageCtx::build(&state, &rc).await;
            Ok(LoginTotpPage { ctx, next, errors: FieldErrors::new(), message: None }.into_response())
        }
    }
}

async fn login_totp_submit(
    State(state): State<AppState>,
    rc: RequestCtx,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    let next = safe_next(&f.next).to_owned();
    let s = match pending_session(&state, &headers).await? {
        None => return Ok(see_other(&format!("/login?next={}", urlencode(&next)))),
        Some(s) if !s.mfa_pending => return Ok(see_other(&next)),
        Some(s) => s,
    };
    let (status, errors, lock) = match totp::check_login(&state.db, s.account_id, &f.code, rc.ip.clone()).await {
        Ok(()) => {
            session::clear_mfa_pending(&state.db, s.id).await?;
            return Ok(see_other(&next));
        }
        Err(Error::Invalid(errs)) => (StatusCode::UNPROCESSABLE_ENTITY, errs, None),
        Err(Error::Throttled { retry_after_secs }) => {
            (StatusCode::TOO_MANY_REQUESTS, FieldErrors::new(), Some(retry_after_secs))
        }
        Err(e) => return Err(e.into()),
    };
    let ctx = PageCtx::build(&state, &rc).await;
    let message = lock.map(|secs| throttled_message(&ctx, secs));
    Ok((status, LoginTotpPage { ctx, next, errors, message }).into_response())
}

// ---------------------------------------------------------------------------------------------------------
// Forgotten password: a link by mail, then a new password

#[derive(Template, WebTemplate)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    ctx: PageCtx,
    email: String,
    errors: FieldErrors,
    message: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "password_forgot_sent.html")]
struct ForgotSentPage {
    ctx: PageCtx,
}

async fn forgot_form(State(state): State<AppState>, rc: RequestCtx) -> ForgotPage {
    ForgotPage {
        ctx: PageCtx::build(&state, &rc).await,
        email: String::new(),
        errors: FieldErrors::new(),
        message: None,
    }
}

#[derive(Deserialize, Default)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

async fn forgot_submit(
    State(state): State<AppState>,
    rc: RequestCtx,
    Form(f): Form<ForgotForm>,
) -> Result<Response, PageError> {
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(e) => {
            let mut errors = FieldErrors::new();
            errors.add("email", e.code());
            let page = ForgotPage { ctx: PageCtx::build(&state, &rc).await, email: f.email, errors, message: None };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if let Some(ip) = &rc.ip {
        let key = format!("forgot:{}", throttle::ip_key(ip));
        let lock = match throttle::locked(&state.db, &key).await? {
            Some(secs) => Some(secs),
            None => throttle::failure(&state.db, &key, FORGOT_PER_IP).await?,
        };
        if let Some(secs) = lock {
            let ctx = PageCtx::build(&state, &rc).await;
            let message = Some(throttled_message(&ctx, secs));
            let page = ForgotPage { ctx, email: f.email, errors: FieldErrors::new(), message };
            return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
        }
    }
    send_reset_link(&state, email.as_str(), rc.ip.clone()).await?;
    Ok(ForgotSentPage { ctx: PageCtx::build(&state, &rc).await }.into_response())
}

/// Issues a reset link and queues its mail in one transaction, when the address belongs to a live account.
/// Nothing here changes what the browser sees, so the page does not tell who has an account.
async fn send_reset_link(state: &AppState, email: &str, ip: Option<String>) -> Result<(), PageError> {
    let Some(acc) = identity::find_by_email(&state.db, email).await?.filter(|a| !a.disabled) else { return Ok(()) };
    let key = format!("forgot:{}", throttle::account_key(&acc.email));
    if throttle::locked(&state.db, &key).await?.is_some()
        || throttle::failure(&state.db, &key, FORGOT_PER_ACCOUNT).await?.is_some()
    {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    let secret = reset::issue_in(&mut tx, acc.id, reset::VALIDITY).await?;
    let link = format!("{}/password/reset/{secret}", state.cfg.public_url.trim_end_matches('/'));
    mail::queue(
        &mut tx,
        None,
        &Mail {
            to: acc.email.clone(),
            subject: "agilekit: reimpostazione della password / password reset".into(),
            text: format!(
                "Gentile {name},\n\nè stato chiesto di reimpostare la password del suo account agilekit ({email}). \
             Per scegliere una nuova password apra questo link entro un'ora:\n{link}\n\
             Se non è stato lei a chiederlo ignori questo messaggio: la password resta quella di prima.\n\n\
             Dear {name},\n\nsomeone asked to reset the password of your agilekit account ({email}). \
             To choose a new password open this link within one hour:\n{link}\n\
             If it was not you, ignore this message: your password stays as it is.\n",
                name = acc.display_name,
                email = acc.email
            ),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &Actor { account: None, ip },
        Change {
            org: None,
            action: "account.reset_requested",
            entity: "account",
            entity_id: acc.id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "password_reset.html")]
struct ResetPage {
    ctx: PageCtx,
    secret: String,
    errors: FieldErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "password_reset_expired.html")]
struct ResetExpiredPage {
    ctx: PageCtx,
}

/// A used, expired or unknown link: a friendly page that offers a new one (410 Gone).
async fn expired(state: &AppState, rc: &RequestCtx) -> Response {
    (StatusCode::GONE, ResetExpiredPage { ctx: PageCtx::build(state, rc).await }).into_response()
}

/// Secrets are 43 URL-safe base64 characters; anything else is not worth a query.
fn plausible_secret(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn reset_form(
    State(state): State<AppState>,
    rc: RequestCtx,
    Path(secret): Path<String>,
) -> Result<Response, PageError> {
    if !plausible_secret(&secret) || !reset::is_valid(&state.db, &secret).await? {
        return Ok(expired(&state, &rc).await);
    }
    Ok(ResetPage { ctx: PageCtx::build(&state, &rc).await, secret, errors: FieldErrors::new() }.into_response())
}

#[derive(Deserialize, Default)]
struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn reset_submit(
    State(state): State<AppState>,
    rc: RequestCtx,
    Path(secret): Path<String>,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    if !plausible_secret(&secret) {
        return Ok(expired(&state, &rc).await);
    }
    let mut errors = FieldErrors::new();
    if let Err(code) = identity::password::check_policy(&f.password) {
        errors.add("password", code);
    }
    if f.password != f.password_confirm {
        errors.add("password_confirm", "mismatch");
    }
    let res = if errors.is_empty() {
        reset::consume(&state.db, rc.ip.clone(), &secret, &f.password).await
    } else {
        Err(Error::Invalid(errors))
    };
    match res {
        Ok(_) => Ok(see_other("/login?notice=password-changed")),
        Err(Error::Conflict("link-expired")) => Ok(expired(&state, &rc).await),
        Err(Error::Invalid(errors)) => {
            // A refused form on a link that has meanwhile expired would only fail again: say so now.
            if !reset::is_valid(&state.db, &secret).await? {
                return Ok(expired(&state, &rc).await);
            }
            let page = ResetPage { ctx: PageCtx::build(&state, &rc).await, secret, errors };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
