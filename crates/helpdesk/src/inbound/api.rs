//! Help desk mail over HTTP: an organisation's mailbox settings for its admins
//! (`/api/v1/orgs/{org}/helpdesk/mail`, the IMAP password write-only), its delivery token, and the delivery
//! endpoint a mail server pipes messages to (`POST /api/v1/helpdesk/inbound/{org}`, `message/rfc822`).

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::Db;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors, Result, clock};
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem, problem};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Processed;
use super::store::{self, MailboxRow};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_settings, put_settings, new_token, deliver),
    components(schemas(MailSettings, MailSettingsInput, DeliveryToken, Processed)),
    tags((name = "helpdesk-mail", description = "Help desk mail: the organisation's inbound mailbox (IMAP) and the \
        delivery endpoint its mail server pipes messages to.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/orgs/{org}/helpdesk/mail",
            get(get_settings).put(put_settings),
        )
        .route("/api/v1/orgs/{org}/helpdesk/mail/token", post(new_token))
        // A mail with its attachments: the extractor's own limit off, the outer layers cap a `message/rfc822` body at
        // the file uploads' limit (`WebConfig::api_limit_for`: a path with `/inbound/`) and any other at the
        // ordinary one.
        .route("/api/v1/helpdesk/inbound/{org}", post(deliver).layer(axum::extract::DefaultBodyLimit::disable()))
}

/// The mailbox settings as shown: never the password, only whether one is set.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MailSettings {
    /// Poll the IMAP mailbox.
    pub enabled: bool,
    pub host: String,
    pub port: i64,
    /// `none`, `tls` (implicit TLS) or `starttls`.
    pub tls: String,
    pub username: String,
    pub password_set: bool,
    pub folder: String,
    /// The help desk's public address: the Reply-To of its mail.
    pub address: String,
    pub delivery_token_set: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_poll_at: Option<OffsetDateTime>,
    /// The last poll's error, if it failed.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MailSettingsInput {
    pub enabled: bool,
    pub host: String,
    /// 1..=65535; default 993.
    pub port: i64,
    /// `none`, `tls` or `starttls`.
    pub tls: String,
    pub username: String,
    /// Absent or empty: the stored one stays.
    pub password: Option<String>,
    /// Default `INBOX`.
    pub folder: String,
    pub address: String,
}

impl Default for MailSettingsInput {
    fn default() -> Self {
        MailSettingsInput {
            enabled: false,
            host: String::new(),
            port: 993,
            tls: "tls".into(),
            username: String::new(),
            password: None,
            folder: "INBOX".into(),
            address: String::new(),
        }
    }
}

/// A new delivery token: shown this once, stored only as its hash.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryToken {
    pub token: String,
}

fn view(m: Option<MailboxRow>) -> MailSettings {
    let d = MailSettingsInput::default();
    match m {
        Some(m) => MailSettings {
            enabled: m.enabled,
            host: m.host,
            port: m.port,
            tls: m.tls,
            username: m.username,
            password_set: !m.password.is_empty(),
            folder: m.folder,
            address: m.address,
            delivery_token_set: m.delivery_token_hash.is_some(),
            last_poll_at: m.last_poll_at,
            last_error: m.last_error,
        },
        None => MailSettings {
            enabled: false,
            host: d.host,
            port: d.port,
            tls: d.tls,
            username: d.username,
            password_set: false,
            folder: d.folder,
            address: d.address,
            delivery_token_set: false,
            last_poll_at: None,
            last_error: None,
        },
    }
}

fn hostname_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && !h.starts_with(['-', '.'])
}

fn address_ok(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && a.len() <= 254
        && hostname_ok(domain)
        && domain.contains('.')
        && !a.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"' | '(' | ')')
        })
}

/// Checks the input against the stored settings: field errors for everything wrong at once.
fn validate(
    org: OrgId,
    input: &MailSettingsInput,
    stored: Option<&MailboxRow>,
    now: OffsetDateTime,
) -> Result<MailboxRow> {
    let mut e = FieldErrors::new();
    let host = input.host.trim().to_owned();
    if host.is_empty() {
        if input.enabled {
            e.add("host", "required");
        }
    } else if !hostname_ok(&host) {
        e.add("host", "format");
    }
    if !(1..=65535).contains(&input.port) {
        e.add("port", "out-of-range");
    }
    let tls = input.tls.trim().to_owned();
    if !["none", "tls", "starttls"].contains(&tls.as_str()) {
        e.add("tls", "format");
    }
    let username = input.username.trim().to_owned();
    if username.chars().count() > 254 {
        e.add("username", "too-long");
    } else if username.chars().any(char::is_control) {
        e.add("username", "format");
    } else if username.is_empty() && input.enabled {
        e.add("username", "required");
    }
    let password = match input.password.as_deref() {
        Some(p) if !p.is_empty() => {
            if p.chars().count() > 1024 {
                e.add("password", "too-long");
            } else if p.chars().any(char::is_control) {
                e.add("password", "format");
            }
            p.to_owned()
        }
        _ => stored.map(|s| s.password.clone()).unwrap_or_default(),
    };
    if password.is_empty() && input.enabled {
        e.add("password", "required");
    }
    let folder = if input.folder.trim().is_empty() {
        "INBOX".to_owned()
    } else {
        input.folder.trim().to_owned()
    };
    if folder.chars().count() > 200 {
        e.add("folder", "too-long");
    } else if folder
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        e.add("folder", "format");
    }
    let address = input.address.trim().to_lowercase();
    if !address.is_empty() && !address_ok(&address) {
        e.add("address", "format");
    }
    e.into_result()?;
    Ok(MailboxRow {
        org_id: org,
        enabled: input.enabled,
        host,
        port: input.port,
        tls,
        username,
        password,
        folder,
        address,
        delivery_token_hash: stored.and_then(|s| s.delivery_token_hash.clone()),
        last_poll_at: None,
        last_error: None,
        updated_at: now,
    })
}

fn snapshot(m: &MailboxRow) -> serde_json::Value {
    json!({"enabled": m.enabled, "host": m.host, "port": m.port, "tls": m.tls, "username": m.username,
           "password_set": !m.password.is_empty(), "folder": m.folder, "address": m.address})
}

/// The organisation's mail settings as shown (its admins; 403 to its other members, 404 to anyone else).
pub async fn settings(db: &Db, p: &Principal, org: OrgId) -> Result<MailSettings> {
    p.require_admin_org(org)?;
    Ok(view(store::mailbox(db, org).await?))
}

/// Saves the mailbox settings (its admins): every field error at once, nothing written then; audited (never the
/// password, only whether one is set).
pub async fn save(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &MailSettingsInput) -> Result<MailSettings> {
    p.require_admin_org(org)?;
    let now = clock::now();
    let stored = store::mailbox(db, org).await?;
    let row = validate(org, input, stored.as_ref(), now)?;
    let mut tx = db.begin().await?;
    store::save_settings(&mut tx, &row).await?;
    audit::record(
        &mut tx,
        actor,
        Change {
            org: Some(org),
            action: "helpdesk.mail.settings",
            entity: "helpdesk_mailbox",
            entity_id: org.to_string(),
            before: stored.as_ref().map(snapshot),
            after: Some(snapshot(&row)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(view(store::mailbox(db, org).await?))
}

/// The field errors `input` would get, saving nothing (for a page whose form found errors of its own).
pub async fn check(db: &Db, org: OrgId, input: &MailSettingsInput) -> Result<FieldErrors> {
    let stored = store::mailbox(db, org).await?;
    Ok(match validate(org, input, stored.as_ref(), clock::now()) {
        Err(Error::Invalid(e)) => e,
        _ => FieldErrors::new(),
    })
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new delivery token (its admins): returned this once, stored only as its hash; the previous one stops working.
pub async fn new_delivery_token(db: &Db, p: &Principal, actor: &Actor, org: OrgId) -> Result<String> {
    p.require_admin_org(org)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("hdm_{}", hex::encode(bytes));
    let mut tx = db.begin().await?;
    store::set_token_hash(&mut tx, org, &hash(&token), clock::now()).await?;
    audit::record(
        &mut tx,
        actor,
        Change {
            org: Some(org),
            action: "helpdesk.mail.token",
            entity: "helpdesk_mailbox",
            entity_id: org.to_string(),
            before: None,
            after: Some(json!({"delivery_token_set": true})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The organisation's help-desk mail settings (its admins; 404 for anyone with no business there).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/mail", tag = "helpdesk-mail", operation_id = "helpdesk_mail_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 200, body = MailSettings),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_settings(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Json<MailSettings>, ApiError> {
    Ok(Json(settings(&s.db, &u.principal, org).await?))
}

/// Sets the IMAP mailbox (its admins). The password is write-only: absent or empty keeps the stored one.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/mail", tag = "helpdesk-mail", operation_id = "helpdesk_mail_put",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = MailSettingsInput,
    responses((status = 200, body = MailSettings),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`host`: `required`, `format`; `port`: `out-of-range`; `tls`: `format`; \
            `username`, `password`: `required`, `too-long`, `format`; `folder`: `too-long`, `format`; `address`: `format`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn put_settings(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<MailSettingsInput>,
) -> Result<Json<MailSettings>, ApiError> {
    Ok(Json(save(&s.db, &u.principal, &u.actor(c.ip.clone()), org, &input).await?))
}

/// A new delivery token for the organisation's mail server (its admins); the previous one stops working.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/mail/token", tag = "helpdesk-mail", operation_id = "helpdesk_mail_token",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    responses((status = 201, body = DeliveryToken),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn new_token(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
) -> Result<Response, ApiError> {
    let token = new_delivery_token(&s.db, &u.principal, &u.actor(c.ip.clone()), org).await?;
    Ok((StatusCode::CREATED, Json(DeliveryToken { token })).into_response())
}

/// Whether the request carries the organisation's delivery token (`Authorization: Bearer hdm_…`).
async fn authorised(s: &AppState, org: OrgId, headers: &HeaderMap) -> Result<bool> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with("hdm_"))
    else {
        return Ok(false);
    };
    let stored = store::mailbox(&s.db, org)
        .await?
        .and_then(|m| m.delivery_token_hash);
    // Both sides are hashes of fixed length: comparing them leaks nothing about the token.
    Ok(stored.is_some_and(|h| h == hash(token)))
}

/// A message for the organisation's help desk, as its mail server received it (`message/rfc822`, e.g. from a
/// Postfix pipe through curl), authenticated by the organisation's delivery token. It opens or continues a ticket
/// by the same rules as the IMAP mailbox; the same message twice changes nothing (`duplicate`).
#[utoipa::path(post, path = "/api/v1/helpdesk/inbound/{org}", tag = "helpdesk-mail", operation_id = "helpdesk_mail_deliver",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body(content = String, content_type = "message/rfc822", description = "The raw message"),
    responses((status = 200, body = Processed),
        (status = 401, description = "No or a wrong delivery token", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`message`: `required`, `format`; `from`: `required`", body = Problem,
            content_type = "application/problem+json")),
    security(("delivery_token" = [])))]
async fn deliver(
    State(s): State<AppState>,
    ApiPath(org): ApiPath<OrgId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    if !authorised(&s, org, &headers).await? {
        return Err(Error::Unauthenticated.into());
    }
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "request body too large",
                Vec::new(),
            ));
        }
        Err(_) => {
            return Ok(problem(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "the request body could not be read",
                Vec::new(),
            ));
        }
    };
    Ok(Json(super::process(&s.db, org, &body, &s.cfg.files).await?).into_response())
}
