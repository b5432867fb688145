//! OpenID Connect sign-in (authorization code + PKCE S256): the providers configured for an organisation or for
//! the public side (where SPID/CIE arrive through an OIDC bridge), the logins in flight, ID-token verification
//! (RS256 against the provider's JWKS), and the rule that links a provider's identity to an agilekit account.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::audit::{self, Actor, Change};
use crate::db::{Db, DbError, DbResult, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors};
use crate::identity::{self, Account, NewAccount};
use crate::ids::{AccountId, OrgId};
use crate::tenancy;
use crate::validate::{PersonTaxCode, Text};

crate::typed_id!(
    /// An OpenID provider configured in agilekit.
    OidcProviderId
);

/// How long a started login may wait for the provider's callback.
pub const LOGIN_TTL: Duration = Duration::minutes(10);
pub const DEFAULT_SCOPES: &str = "openid email profile";
/// The claim SPID/CIE bridges put the codice fiscale in (as `TINIT-<code>`).
pub const DEFAULT_TAX_CODE_CLAIM: &str = "fiscal_number";
/// Discovery documents and key sets are kept this long per issuer; an unknown `kid` refetches the keys at once.
const CACHE_TTL: StdDuration = StdDuration::from_secs(300);
/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// Larger answers from a provider are refused rather than read into memory.
const MAX_BODY: usize = 1024 * 1024;

/// Whose provider: the public side's (citizens, companies; configured by platform admins) or an organisation's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Public,
    Org(OrgId),
}

impl Scope {
    pub fn org(self) -> Option<OrgId> {
        match self {
            Scope::Public => None,
            Scope::Org(o) => Some(o),
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct Provider {
    pub id: OidcProviderId,
    pub org_id: Option<OrgId>,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    /// Sent to the provider's token endpoint; never shown back, never audited.
    #[serde(skip)]
    pub client_secret: String,
    pub scopes: String,
    pub tax_code_claim: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Provider {
    pub fn scope(&self) -> Scope {
        self.org_id.map_or(Scope::Public, Scope::Org)
    }
    pub fn audit_json(&self) -> Value {
        json!({"display_name": self.display_name, "issuer": self.issuer, "client_id": self.client_id,
               "scopes": self.scopes, "tax_code_claim": self.tax_code_claim, "enabled": self.enabled})
    }
}

/// A provider as submitted by an administrator, before parsing.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ProviderInput {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing)]
    pub client_secret: String,
    #[serde(default)]
    pub scopes: String,
    #[serde(default)]
    pub tax_code_claim: String,
}

/// The issuer as configured: an https URL without query or fragment; plain http only on the loopback
/// (the test suite's provider), because everything the login trusts comes from this address.
pub fn parse_issuer(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err("required");
    }
    if s.chars().count() > 300 {
        return Err("too-long");
    }
    let u = url::Url::parse(s).map_err(|_| "format")?;
    if u.query().is_some() || u.fragment().is_some() || u.host_str().is_none() || !u.username().is_empty() {
        return Err("format");
    }
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("oidc-https"),
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// Space-separated OAuth scope tokens, `openid` always among them.
fn parse_scopes(input: &str) -> Result<String, &'static str> {
    let mut tokens: Vec<&str> = input.split_whitespace().collect();
    if tokens.is_empty() {
        tokens = DEFAULT_SCOPES.split(' ').collect();
    }
    // RFC 6749 §3.3: printable ASCII except space, '"' and '\'.
    if tokens.iter().any(|t| !t.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')) {
        return Err("format");
    }
    if !tokens.contains(&"openid") {
        tokens.insert(0, "openid");
    }
    let s = tokens.join(" ");
    if s.len() > 300 { Err("too-long") } else { Ok(s) }
}

fn parse_claim_name(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(DEFAULT_TAX_CODE_CLAIM.to_owned());
    }
    if s.len() > 100 {
        return Err("too-long");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')) {
        return Err("format");
    }
    Ok(s.to_owned())
}

fn parse_input(input: &ProviderInput) -> Result<ProviderInput, Error> {
    let mut errs = FieldErrors::new();
    let name = errs.check("display_name", Text::parse(&input.display_name, 80));
    let issuer = parse_issuer(&input.issuer).map_err(|c| errs.add("issuer", c)).ok();
    let client_id = errs.check("client_id", Text::parse(&input.client_id, 200));
    let secret = errs.check("client_secret", Text::parse(&input.client_secret, 500));
    let scopes = parse_scopes(&input.scopes).map_err(|c| errs.add("scopes", c)).ok();
    let claim = parse_claim_name(&input.tax_code_claim).map_err(|c| errs.add("tax_code_claim", c)).ok();
    match (name, issuer, client_id, secret, scopes, claim) {
        (Some(n), Some(i), Some(c), Some(s), Some(sc), Some(cl)) if errs.is_empty() => Ok(ProviderInput {
            display_name: n.into_string(),
            issuer: i,
            client_id: c.into_string(),
            client_secret: s.into_string(),
            scopes: sc,
            tax_code_claim: cl,
        }),
        _ => Err(Error::Invalid(errs)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Administration

pub async fn create_provider(db: &Db, actor: &Actor, scope: Scope, input: &ProviderInput) -> crate::Result<Provider> {
    let v = parse_input(input)?;
    let p = Provider {
        id: OidcProviderId::new(),
        org_id: scope.org(),
        display_name: v.display_name,
        issuer: v.issuer,
        client_id: v.client_id,
        client_secret: v.client_secret,
        scopes: v.scopes,
        tax_code_claim: v.tax_code_claim,
        enabled: true,
        created_at: crate::clock::now(),
    };
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query(
        "INSERT INTO oidc_providers (id, org_id, display_name, issuer, client_id, client_secret, scopes, tax_code_claim, enabled, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(p.id).bind(p.org_id).bind(&p.display_name).bind(&p.issuer).bind(&p.client_id).bind(&p.client_secret)
    .bind(&p.scopes).bind(&p.tax_code_claim).bind(p.enabled).bind(p.created_at)
    .execute(c).await?; });
    audit::record(
        &mut tx,
        actor,
        Change {
            org: p.org_id,
            action: "oidc.provider.create",
            entity: "oidc_provider",
            entity_id: p.id.to_string(),
            before: None,
            after: Some(p.audit_json()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// The providers of one scope, enabled or not, for its administration page.
pub async fn list_providers(db: &Db, scope: Scope) -> DbResult<Vec<Provider>> {
    Ok(match scope {
        Scope::Public => db_run!(db, |p| sqlx::query_as(
            "SELECT * FROM oidc_providers WHERE org_id IS NULL ORDER BY display_name, id"
        )
        .fetch_all(p)
        .await?),
        Scope::Org(o) => {
            db_run!(db, |p| sqlx::query_as("SELECT * FROM oidc_providers WHERE org_id = $1 ORDER BY display_name, id")
                .bind(o)
                .fetch_all(p)
                .await?)
        }
    })
}

/// A provider by id, whatever its scope: for the login flow, which carries the id itself.
pub async fn get_provider(db: &Db, id: OidcProviderId) -> DbResult<Provider> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM oidc_providers WHERE id = $1").bind(id).fetch_one(p).await?))
}

/// A provider of `scope`: another scope's provider is `NotFound`, so that an id from elsewhere reveals nothing.
pub async fn get_scoped(db: &Db, scope: Scope, id: OidcProviderId) -> crate::Result<Provider> {
    let p = get_provider(db, id).await?;
    if p.scope() == scope { Ok(p) } else { Err(Error::NotFound) }
}

pub async fn set_enabled(
    db: &Db,
    actor: &Actor,
    scope: Scope,
    id: OidcProviderId,
    enabled: bool,
) -> crate::Result<Provider> {
    let before = get_scoped(db, scope, id).await?;
    let mut after = before.clone();
    after.enabled = enabled;
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query("UPDATE oidc_providers SET enabled = $1 WHERE id = $2")
        .bind(enabled).bind(id).execute(c).await?; });
    audit::record(
        &mut tx,
        actor,
        Change {
            org: before.org_id,
            action: if enabled { "oidc.provider.enable" } else { "oidc.provider.disable" },
            entity: "oidc_provider",
            entity_id: id.to_string(),
            before: Some(before.audit_json()),
            after: Some(after.audit_json()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a provider with its identity links and the logins in flight through it. The accounts stay.
pub async fn delete_provider(db: &Db, actor: &Actor, scope: Scope, id: OidcProviderId) -> crate::Result<()> {
    let before = get_scoped(db, scope, id).await?;
    let mut tx = db.begin().await?;
    let links = db_run!(tx &mut tx, |c| {
        sqlx::query("DELETE FROM oidc_logins WHERE provider_id = $1").bind(id).execute(&mut *c).await?;
        let n = sqlx::query("DELETE FROM oidc_identities WHERE provider_id = $1").bind(id).execute(&mut *c).await?.rows_affected();
        sqlx::query("DELETE FROM oidc_providers WHERE id = $1").bind(id).execute(&mut *c).await?;
        n
    });
    let mut gone = before.audit_json();
    gone["linked_identities"] = json!(links);
    audit::record(
        &mut tx,
        actor,
        Change {
            org: before.org_id,
            action: "oidc.provider.delete",
            entity: "oidc_provider",
            entity_id: id.to_string(),
            before: Some(gone),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An enabled provider as the login page offers it.
#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct LoginChoice {
    pub id: OidcProviderId,
    pub display_name: String,
    /// `None` for a public-side provider.
    pub org_name: Option<String>,
}

/// Every enabled provider: the public side's first, then the organisations' (of active organisations only).
pub async fn login_choices(db: &Db) -> DbResult<Vec<LoginChoice>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT p.id, p.display_name, o.name AS org_name FROM oidc_providers p
         LEFT JOIN organisations o ON o.id = p.org_id
         WHERE p.enabled = $1 AND (p.org_id IS NULL OR o.active = $1)
         ORDER BY CASE WHEN p.org_id IS NULL THEN 0 ELSE 1 END, o.name, p.display_name, p.id"
    )
    .bind(true)
    .fetch_all(p)
    .await?))
}

/// An identity at a provider linked to an account, as the account page lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub provider_id: OidcProviderId,
    pub provider_name: String,
    pub subject: String,
    pub created_at: time::OffsetDateTime,
}

/// The identities linked to an account, with their providers, for the account page.
pub async fn linked_identities(db: &Db, account: AccountId) -> DbResult<Vec<LinkedIdentity>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT i.provider_id, p.display_name AS provider_name, i.subject, i.created_at
         FROM oidc_identities i JOIN oidc_providers p ON p.id = i.provider_id
         WHERE i.account_id = $1 ORDER BY p.display_name, i.created_at"
    )
    .bind(account)
    .fetch_all(p)
    .await?))
}

/// Unlinks the account's identities at `provider` (the person no longer wants to sign in that way). Refused with
/// `Conflict("last-sign-in")` when that would leave the account with no way in: no password and no other link.
/// Another account's link is not found.
pub async fn unlink(db: &Db, actor: &Actor, account: AccountId, provider: OidcProviderId) -> crate::Result<()> {
    let mut tx = db.begin().await?;
    let (has_password, links, here): (bool, i64, i64) = db_run!(tx &mut tx, |c| sqlx::query_as(
        "SELECT a.password_hash IS NOT NULL,
                (SELECT COUNT(*) FROM oidc_identities WHERE account_id = a.id),
                (SELECT COUNT(*) FROM oidc_identities WHERE account_id = a.id AND provider_id = $2)
         FROM accounts a WHERE a.id = $1"
    ).bind(account).bind(provider).fetch_one(c).await?);
    if here == 0 {
        return Err(crate::Error::NotFound);
    }
    if !has_password && links == here {
        return Err(crate::Error::Conflict("last-sign-in"));
    }
    db_run!(tx &mut tx, |c| { sqlx::query("DELETE FROM oidc_identities WHERE account_id = $1 AND provider_id = $2")
        .bind(account).bind(provider).execute(c).await?; });
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.oidc_unlink", entity: "account", entity_id: account.to_string(),
        before: Some(json!({"provider": provider})), after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// The identities linked to an account, with the provider's name (for the account page).
pub async fn identities_of(db: &Db, account: AccountId) -> DbResult<Vec<(String, String)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT p.display_name, i.subject FROM oidc_identities i JOIN oidc_providers p ON p.id = i.provider_id
         WHERE i.account_id = $1 ORDER BY p.display_name"
    )
    .bind(account)
    .fetch_all(p)
    .await?))
}

// ---------------------------------------------------------------------------------------------------------------
// Errors of the login flow

/// Why a login did not go through. Each is a page a person can read, never a 500 unless the database fails.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider does not exist or is disabled.
    #[error("provider not found")]
    NotFound,
    /// The callback's state is unknown, already used, expired, or not this browser's.
    #[error("unknown or expired login")]
    UnknownLogin,
    /// The provider answered with an error (the person cancelled, the code was refused…).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The ID token or the provider's answers did not pass verification.
    #[error("invalid answer from the provider: {0}")]
    BadToken(&'static str),
    /// The provider could not be reached or answered with a server error.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// An organisation's provider vouched for someone who is not a member there: members are never created here.
    #[error("no account for this identity in {org_name}")]
    NoAccount { org_name: String },
    /// A new public account needs an email address and the provider shared none.
    #[error("the provider shared no email address")]
    MissingEmail,
    /// A new public account would take an email address that an account already has (not verified by the provider).
    #[error("email address already in use")]
    EmailTaken,
    #[error("account disabled")]
    Disabled,
    #[error(transparent)]
    Kernel(#[from] Error),
}

impl From<DbError> for OidcError {
    fn from(e: DbError) -> Self {
        OidcError::Kernel(e.into())
    }
}

impl From<sqlx::Error> for OidcError {
    fn from(e: sqlx::Error) -> Self {
        OidcError::Kernel(e.into())
    }
}

impl OidcError {
    /// A stable kebab-case code (the web layer's message key is `oidc-error-<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::NotFound => "not-found",
            OidcError::UnknownLogin => "unknown-login",
            OidcError::Refused(_) => "refused",
            OidcError::BadToken(_) => "bad-token",
            OidcError::Unreachable(_) => "unreachable",
            OidcError::NoAccount { .. } => "no-account",
            OidcError::MissingEmail => "missing-email",
            OidcError::EmailTaken => "email-taken",
            OidcError::Disabled => "disabled",
            OidcError::Kernel(_) => "internal",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Talking to the provider

#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

type Cache<T> = LazyLock<Mutex<HashMap<String, (Instant, Arc<T>)>>>;
static DISCOVERY: Cache<Discovery> = LazyLock::new(|| Mutex::new(HashMap::new()));
static JWKS: Cache<Value> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached<T>(cache: &Cache<T>, key: &str) -> Option<Arc<T>> {
    let map = cache.lock().ok()?;
    map.get(key).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, v)| v.clone())
}

fn remember<T>(cache: &Cache<T>, key: &str, v: Arc<T>) {
    if let Ok(mut map) = cache.lock() {
        map.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        map.insert(key.to_owned(), (Instant::now(), v));
    }
}

/// One client for every provider: short timeouts (a provider that hangs must not hold a login page open),
/// and no redirects, so an endpoint cannot bounce the client secret elsewhere.
static HTTP: LazyLock<Result<reqwest::Client, String>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(StdDuration::from_secs(5))
        .timeout(StdDuration::from_secs(10))
        .user_agent("agilekit")
        .build()
        .map_err(|e| e.to_string())
});

fn http() -> Result<&'static reqwest::Client, OidcError> {
    HTTP.as_ref().map_err(|e| OidcError::Unreachable(e.clone()))
}

fn unreachable(e: reqwest::Error) -> OidcError {
    OidcError::Unreachable(e.without_url().to_string())
}

/// The status and body of an answer, read up to [`MAX_BODY`].
async fn read(mut r: reqwest::Response) -> Result<(u16, Vec<u8>), OidcError> {
    let status = r.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(OidcError::Unreachable("answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// JSON from a provider endpoint that must answer 200: a server error or garbage means the provider is down.
async fn get_json(req: reqwest::RequestBuilder) -> Result<Value, OidcError> {
    let (status, body) = read(req.send().await.map_err(unreachable)?).await?;
    if status != 200 {
        return Err(OidcError::Unreachable(format!("status {status}")));
    }
    serde_json::from_slice(&body).map_err(|_| OidcError::Unreachable("not JSON".into()))
}

/// The provider's configuration, from `{issuer}/.well-known/openid-configuration`, cached per issuer.
pub async fn discover(issuer: &str) -> Result<Arc<Discovery>, OidcError> {
    if let Some(d) = cached(&DISCOVERY, issuer) {
        return Ok(d);
    }
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let v = get_json(http()?.get(&url)).await?;
    let d: Discovery =
        serde_json::from_value(v).map_err(|_| OidcError::Unreachable("incomplete discovery document".into()))?;
    // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched from.
    if d.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(OidcError::BadToken("discovery names another issuer"));
    }
    let d = Arc::new(d);
    remember(&DISCOVERY, issuer, d.clone());
    Ok(d)
}

async fn jwks(uri: &str, fresh: bool) -> Result<Arc<Value>, OidcError> {
    if !fresh && let Some(k) = cached(&JWKS, uri) {
        return Ok(k);
    }
    let k = Arc::new(get_json(http()?.get(uri)).await?);
    remember(&JWKS, uri, k.clone());
    Ok(k)
}

/// A random secret of 32 bytes, base64url: states, nonces and PKCE verifiers (43 characters, as RFC 7636 wants).
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the browser goes to sign in at the provider.
pub fn authorization_url(
    d: &Discovery,
    p: &Provider,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    challenge: &str,
) -> Result<String, OidcError> {
    let mut u = url::Url::parse(&d.authorization_endpoint)
        .map_err(|_| OidcError::Unreachable("bad authorization endpoint".into()))?;
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &p.scopes)
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(u.into())
}

/// A login that went to the provider.
pub struct Started {
    pub authorization_url: String,
    /// The browser keeps it too (a cookie), so a callback is accepted only in the browser that started it.
    pub state: String,
}

/// Starts a login through an enabled provider: stores state, nonce and PKCE verifier (single use, ten minutes)
/// and returns the provider's authorization URL. `next` must already be a safe local path.
pub async fn start(db: &Db, id: OidcProviderId, redirect_uri: &str, next: &str) -> Result<Started, OidcError> {
    let p = match get_provider(db, id).await {
        Ok(p) if p.enabled => p,
        Ok(_) | Err(DbError::NotFound) => return Err(OidcError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let d = discover(&p.issuer).await?;
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let url = authorization_url(&d, &p, redirect_uri, &state, &nonce, &pkce_challenge(&verifier))?;
    let now = crate::clock::now();
    let stale = crate::clock::stamp(now - LOGIN_TTL);
    db_run!(db, |c| {
        // Abandoned logins go as new ones come: no sweeper needed.
        sqlx::query("DELETE FROM oidc_logins WHERE created_at < $1").bind(stale).execute(c).await?;
        sqlx::query("INSERT INTO oidc_logins (state, provider_id, nonce, pkce_verifier, next, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&state).bind(p.id).bind(&nonce).bind(&verifier).bind(next).bind(now).execute(c).await?;
    });
    Ok(Started { authorization_url: url, state })
}

#[derive(sqlx::FromRow)]
struct PendingLogin {
    provider_id: OidcProviderId,
    nonce: String,
    pkce_verifier: String,
    next: String,
    created_at: OffsetDateTime,
}

/// Takes a login in flight out of the table: a state works once, and only within [`LOGIN_TTL`].
async fn consume(db: &Db, state: &str) -> Result<PendingLogin, OidcError> {
    let row: Option<PendingLogin> = db_run!(db, |c| sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state = $1 RETURNING provider_id, nonce, pkce_verifier, next, created_at"
    )
    .bind(state)
    .fetch_optional(c)
    .await?);
    match row {
        Some(r) if r.created_at + LOGIN_TTL > OffsetDateTime::now_utc() => Ok(r),
        _ => Err(OidcError::UnknownLogin),
    }
}

/// What the provider sent back to the callback, as it came.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// RFC 9207: the issuer that answered, when the provider says it.
    #[serde(default)]
    pub iss: Option<String>,
}

/// A finished login: whom to open a session for, and where to go.
#[derive(Debug)]
pub struct LoggedIn {
    pub account: Account,
    pub next: String,
    pub provider: Provider,
    pub created: bool,
}

/// Completes a login: consumes the state, exchanges the code (with the PKCE verifier), verifies the ID token,
/// reads the claims, finds or (on the public side) creates the account, links the identity, and audits it all.
pub async fn finish(db: &Db, cb: &Callback, redirect_uri: &str, ip: Option<String>) -> Result<LoggedIn, OidcError> {
    let state = cb.state.as_deref().filter(|s| !s.is_empty()).ok_or(OidcError::UnknownLogin)?;
    let pending = consume(db, state).await?;
    if let Some(e) = &cb.error {
        return Err(OidcError::Refused(e.chars().take(100).collect()));
    }
    let code = cb.code.as_deref().filter(|c| !c.is_empty()).ok_or(OidcError::BadToken("no code in the callback"))?;
    let p = match get_provider(db, pending.provider_id).await {
        Ok(p) if p.enabled => p,
        Ok(_) | Err(DbError::NotFound) => return Err(OidcError::UnknownLogin),
        Err(e) => return Err(e.into()),
    };
    let d = discover(&p.issuer).await?;
    if cb.iss.as_deref().is_some_and(|iss| iss != d.issuer) {
        return Err(OidcError::BadToken("callback from another issuer"));
    }

    let token_req = http()?
        .post(&d.token_endpoint)
        .basic_auth(form_encode(&p.client_id), Some(form_encode(&p.client_secret)))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pending.pkce_verifier.as_str()),
        ]);
    let (status, body) = read(token_req.send().await.map_err(unreachable)?).await?;
    let tokens: Value = match status {
        200 => serde_json::from_slice(&body).map_err(|_| OidcError::BadToken("token answer is not JSON"))?,
        400..=499 => {
            let err = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["error"].as_str().map(str::to_owned));
            return Err(OidcError::Refused(
                err.unwrap_or_else(|| format!("status {status}")).chars().take(100).collect(),
            ));
        }
        _ => return Err(OidcError::Unreachable(format!("token endpoint status {status}"))),
    };
    let id_token = tokens["id_token"].as_str().ok_or(OidcError::BadToken("no ID token"))?;
    let mut claims = verify_id_token(id_token, &d, &p.client_id, &pending.nonce).await?;

    if let (Some(ui), Some(at)) = (&d.userinfo_endpoint, tokens["access_token"].as_str()) {
        let (status, body) = read(http()?.get(ui).bearer_auth(at).send().await.map_err(unreachable)?).await?;
        match status {
            200 => {
                let info: Value =
                    serde_json::from_slice(&body).map_err(|_| OidcError::BadToken("userinfo is not JSON"))?;
                // OpenID Connect Core §5.3.2: userinfo about someone else must not be used.
                if info["sub"] != claims["sub"] {
                    return Err(OidcError::BadToken("userinfo is about another subject"));
                }
                if let (Some(c), Some(i)) = (claims.as_object_mut(), info.as_object()) {
                    for (k, v) in i {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
            500..=599 => return Err(OidcError::Unreachable(format!("userinfo status {status}"))),
            _ => return Err(OidcError::BadToken("userinfo refused the access token")),
        }
    }
    let claims = Claims::from_json(&claims, &p.tax_code_claim).ok_or(OidcError::BadToken("no subject"))?;
    let (account, created) = link_and_audit(db, &p, &claims, ip).await?;
    Ok(LoggedIn { account, next: pending.next, provider: p, created })
}

/// RFC 6749 §2.3.1: client credentials are form-encoded before they go into the Basic header.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// ID tokens

fn b64_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&B64.decode(part.trim_end_matches('=')).ok()?).ok()
}

/// Checks an RS256 JWS against a JWK set and returns its payload. Only RS256 is accepted, so a token cannot
/// choose `none` or an HMAC keyed with the public key.
pub fn verify_signature(token: &str, jwks: &Value) -> Result<Value, OidcError> {
    let mut parts = token.split('.');
    let (Some(h), Some(pl), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(OidcError::BadToken("not a JWS"));
    };
    let header = b64_json(h).ok_or(OidcError::BadToken("bad header"))?;
    if header["alg"] != "RS256" {
        return Err(OidcError::BadToken("algorithm is not RS256"));
    }
    let kid = header["kid"].as_str();
    let keys: Vec<&Value> = jwks["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .filter(|k| k["kty"] == "RSA")
                .filter(|k| k["use"].is_null() || k["use"] == "sig")
                .filter(|k| k["alg"].is_null() || k["alg"] == "RS256")
                .collect()
        })
        .unwrap_or_default();
    // Without a kid, the token can only name the provider's one key.
    let key = match kid {
        Some(kid) => keys.into_iter().find(|k| k["kid"] == kid),
        None if keys.len() == 1 => keys.into_iter().next(),
        None => None,
    }
    .ok_or(OidcError::BadToken("unknown signing key"))?;
    let int = |name: &str| -> Option<rsa::BoxedUint> {
        let bytes = B64.decode(key[name].as_str()?.trim_end_matches('=')).ok()?;
        let first = bytes.iter().position(|b| *b != 0)?;
        Some(rsa::BoxedUint::from_be_slice_vartime(&bytes[first..]))
    };
    let (Some(n), Some(e)) = (int("n"), int("e")) else { return Err(OidcError::BadToken("bad signing key")) };
    let public = rsa::PublicKey::new(n, e).map_err(|_| OidcError::BadToken("bad signing key"))?;
    let signature = B64.decode(sig.trim_end_matches('=')).map_err(|_| OidcError::BadToken("bad signature encoding"))?;
    let hashed = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(format!("{h}.{pl}").as_bytes());
    public
        .verify(rsa::Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &hashed, &signature)
        .map_err(|_| OidcError::BadToken("signature does not verify"))?;
    b64_json(pl).ok_or(OidcError::BadToken("bad payload"))
}

/// OpenID Connect Core §3.1.3.7: issuer, audience (and authorised party), expiry, issue time, nonce.
pub fn check_claims(c: &Value, issuer: &str, client_id: &str, nonce: &str, now: i64) -> Result<(), OidcError> {
    if c["iss"] != issuer {
        return Err(OidcError::BadToken("issuer does not match"));
    }
    let auds: Vec<&str> = match &c["aud"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&client_id) {
        return Err(OidcError::BadToken("audience does not match"));
    }
    if (auds.len() > 1 || !c["azp"].is_null()) && c["azp"] != client_id {
        return Err(OidcError::BadToken("authorised party does not match"));
    }
    match c["exp"].as_i64() {
        Some(exp) if exp.saturating_add(LEEWAY_SECS) > now => {}
        _ => return Err(OidcError::BadToken("expired")),
    }
    if c["iat"].as_i64().is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(OidcError::BadToken("issued in the future"));
    }
    if c["nonce"] != nonce {
        return Err(OidcError::BadToken("nonce does not match"));
    }
    if c["sub"].as_str().is_none_or(str::is_empty) {
        return Err(OidcError::BadToken("no subject"));
    }
    Ok(())
}

async fn verify_id_token(token: &str, d: &Discovery, client_id: &str, nonce: &str) -> Result<Value, OidcError> {
    let claims = match verify_signature(token, &*jwks(&d.jwks_uri, false).await?) {
        // The provider may have rotated its keys since we cached them: look once more.
        Err(OidcError::BadToken("unknown signing key")) => verify_signature(token, &*jwks(&d.jwks_uri, true).await?)?,
        other => other?,
    };
    check_claims(&claims, &d.issuer, client_id, nonce, OffsetDateTime::now_utc().unix_timestamp())?;
    Ok(claims)
}

// ---------------------------------------------------------------------------------------------------------------
// Who is it: claims → account

/// What agilekit reads from a provider's claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub subject: String,
    pub email: Option<String>,
    /// Only `true` (or the string "true") counts: an absent flag is not a verification.
    pub email_verified: bool,
    pub name: Option<String>,
    pub tax_code: Option<PersonTaxCode>,
}

/// The codice fiscale in a claim: SPID writes it as `TINIT-<code>`; anything that does not parse is ignored.
pub fn tax_code_from_claim(raw: &str) -> Option<PersonTaxCode> {
    let s = raw.trim();
    let s = s.get(..6).filter(|p| p.eq_ignore_ascii_case("TINIT-")).map_or(s, |_| &s[6..]);
    PersonTaxCode::parse(s).ok()
}

impl Claims {
    pub fn from_json(c: &Value, tax_code_claim: &str) -> Option<Claims> {
        let text = |k: &str| c[k].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let subject = text("sub")?;
        let name = text("name").or_else(|| {
            let full = [text("given_name"), text("family_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
            (!full.is_empty()).then_some(full)
        });
        Some(Claims {
            subject,
            email: text("email").map(|e| e.to_lowercase()),
            email_verified: c["email_verified"] == true || c["email_verified"] == "true",
            name,
            tax_code: c[tax_code_claim].as_str().and_then(tax_code_from_claim),
        })
    }
}

/// An account that the claims could mean, and whether this provider may vouch for it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub account: Account,
    /// Always on the public side; on an organisation's provider only for accounts that belong to that
    /// organisation and to no other, so one organisation's provider cannot open a door into another's.
    pub eligible: bool,
}

/// The accounts found for an identity, by the three keys in order of trust.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub linked: Option<Candidate>,
    pub by_tax_code: Option<Candidate>,
    pub by_email: Option<Candidate>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The identity is already linked to this account.
    SignIn(AccountId),
    /// Link the identity to this existing account, found `via` "tax_code" or "email".
    Link {
        account: AccountId,
        via: &'static str,
    },
    /// Nobody matches, on the public side: a new public account.
    CreatePublic,
    Refuse(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoAccount,
    Disabled,
    MissingEmail,
    EmailTaken,
}

/// The linking rule: an existing link; else the codice fiscale; else a VERIFIED email. Without a match, the
/// public side creates a public account and an organisation's provider refuses (members are never created here).
pub fn decide(scope: Scope, claims: &Claims, c: &Candidates) -> Decision {
    let usable = |cand: &Candidate| -> Option<Result<AccountId, Refusal>> {
        if !cand.eligible {
            return None;
        }
        Some(if cand.account.disabled { Err(Refusal::Disabled) } else { Ok(cand.account.id) })
    };
    if let Some(l) = &c.linked {
        return match usable(l) {
            Some(Ok(id)) => Decision::SignIn(id),
            Some(Err(r)) => Decision::Refuse(r),
            // Linked once, but no longer a member there: the organisation's provider no longer speaks for it.
            None => Decision::Refuse(Refusal::NoAccount),
        };
    }
    let by_tax = claims.tax_code.as_ref().and(c.by_tax_code.as_ref()).and_then(usable);
    let by_email =
        (claims.email_verified && claims.email.is_some()).then_some(c.by_email.as_ref()).flatten().and_then(usable);
    match (by_tax, by_email) {
        (Some(Ok(account)), _) => Decision::Link { account, via: "tax_code" },
        (Some(Err(r)), _) => Decision::Refuse(r),
        (None, Some(Ok(account))) => Decision::Link { account, via: "email" },
        (None, Some(Err(r))) => Decision::Refuse(r),
        (None, None) => match scope {
            Scope::Org(_) => Decision::Refuse(Refusal::NoAccount),
            Scope::Public if claims.email.is_none() => Decision::Refuse(Refusal::MissingEmail),
            // An unverified address that an account already holds cannot be taken over, nor given to a second account.
            Scope::Public if c.by_email.is_some() => Decision::Refuse(Refusal::EmailTaken),
            Scope::Public => Decision::CreatePublic,
        },
    }
}

async fn candidate(tx: &mut Tx, scope: Scope, account: Option<Account>) -> DbResult<Option<Candidate>> {
    let Some(account) = account else { return Ok(None) };
    let eligible = match scope {
        Scope::Public => true,
        Scope::Org(org) => {
            let orgs: Vec<(OrgId,)> = db_run!(tx tx, |c| sqlx::query_as("SELECT DISTINCT org_id FROM memberships WHERE account_id = $1")
                .bind(account.id).fetch_all(c).await?);
            !orgs.is_empty() && orgs.iter().all(|(o,)| *o == org)
        }
    };
    Ok(Some(Candidate { account, eligible }))
}

async fn gather(tx: &mut Tx, p: &Provider, claims: &Claims) -> DbResult<Candidates> {
    let scope = p.scope();
    let linked: Option<Account> = db_run!(tx tx, |c| sqlx::query_as(
        "SELECT a.* FROM oidc_identities i JOIN accounts a ON a.id = i.account_id WHERE i.provider_id = $1 AND i.subject = $2"
    ).bind(p.id).bind(&claims.subject).fetch_optional(c).await?);
    let linked = candidate(tx, scope, linked).await?;
    let mut out = Candidates { linked, ..Default::default() };
    if out.linked.is_some() {
        return Ok(out);
    }
    if let Some(tc) = &claims.tax_code {
        let a: Option<Account> = db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM accounts WHERE tax_code = $1")
            .bind(tc.as_str()).fetch_optional(c).await?);
        out.by_tax_code = candidate(tx, scope, a).await?;
    }
    if let Some(email) = &claims.email {
        let a: Option<Account> = db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM accounts WHERE email = $1")
            .bind(email).fetch_optional(c).await?);
        out.by_email = candidate(tx, scope, a).await?;
    }
    Ok(out)
}

async fn get_account_tx(tx: &mut Tx, id: AccountId) -> DbResult<Account> {
    Ok(db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM accounts WHERE id = $1").bind(id).fetch_one(c).await?))
}

/// Records a refusal (it changes nothing, but an administrator will want to know who knocked) and says why.
async fn refuse(db: &Db, mut tx: Tx, p: &Provider, claims: &Claims, ip: Option<String>, r: Refusal) -> OidcError {
    let recorded = audit::record(
        &mut tx,
        &Actor { account: None, ip },
        Change {
            org: p.org_id,
            action: "login.oidc.refused",
            entity: "oidc_provider",
            entity_id: p.id.to_string(),
            before: None,
            after: Some(json!({"subject": claims.subject, "reason": format!("{r:?}")})),
        },
    )
    .await;
    if let Err(e) = async {
        recorded?;
        tx.commit().await
    }
    .await
    {
        return e.into();
    }
    match r {
        Refusal::NoAccount => {
            let org_name = match p.org_id {
                Some(o) => tenancy::get(db, o).await.map(|o| o.name).unwrap_or_default(),
                None => String::new(),
            };
            OidcError::NoAccount { org_name }
        }
        Refusal::Disabled => OidcError::Disabled,
        Refusal::MissingEmail => OidcError::MissingEmail,
        Refusal::EmailTaken => OidcError::EmailTaken,
    }
}

/// Applies [`decide`] in one transaction: the link, the new account, and the audit entries, or nothing.
async fn link_and_audit(
    db: &Db,
    p: &Provider,
    claims: &Claims,
    ip: Option<String>,
) -> Result<(Account, bool), OidcError> {
    let mut tx = db.begin().await?;
    let cands = gather(&mut tx, p, claims).await?;
    let (account, via, created) = match decide(p.scope(), claims, &cands) {
        Decision::Refuse(r) => return Err(refuse(db, tx, p, claims, ip, r).await),
        Decision::SignIn(id) => (get_account_tx(&mut tx, id).await?, None, false),
        Decision::Link { account, via } => (get_account_tx(&mut tx, account).await?, Some(via), false),
        Decision::CreatePublic => {
            let input = NewAccount {
                email: claims.email.clone().unwrap_or_default(),
                // A provider's name may be longer than an account's: keep what fits rather than refuse the person.
                display_name: claims
                    .name
                    .clone()
                    .or_else(|| claims.email.clone())
                    .unwrap_or_default()
                    .chars()
                    .take(120)
                    .collect(),
                tax_code: claims.tax_code.as_ref().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                password: String::new(),
                is_public: true,
            };
            let acc = match identity::create_in(&mut tx, &Actor { account: None, ip: ip.clone() }, &input, None).await {
                Ok(a) => a,
                Err(Error::Invalid(f)) if f.get("email") == Some("taken") => return Err(OidcError::EmailTaken),
                Err(Error::Invalid(f)) if f.get("email").is_some() => return Err(OidcError::MissingEmail),
                Err(e) => return Err(e.into()),
            };
            (acc, Some("created"), true)
        }
    };
    let actor = Actor::account(account.id, ip);
    if let Some(via) = via {
        db_run!(tx &mut tx, |c| { sqlx::query(
            "INSERT INTO oidc_identities (provider_id, subject, account_id, created_at) VALUES ($1, $2, $3, $4)"
        ).bind(p.id).bind(&claims.subject).bind(account.id).bind(crate::clock::now()).execute(c).await?; });
        audit::record(
            &mut tx,
            &actor,
            Change {
                org: p.org_id,
                action: "oidc.link",
                entity: "account",
                entity_id: account.id.to_string(),
                before: None,
                after: Some(
                    json!({"provider_id": p.id, "provider": p.display_name, "subject": claims.subject, "via": via}),
                ),
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        &actor,
        Change {
            org: p.org_id,
            action: "login.oidc",
            entity: "account",
            entity_id: account.id.to_string(),
            before: None,
            after: Some(json!({"provider_id": p.id, "provider": p.display_name})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((account, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWK_N: &str = "tGvFwNWXVMUt399UEqEOWe5PYbwtJ2HFHvFr-deLElj-gwuFQvv7qhkVH3pkbNqgKX_N_gsU6V2zkcn24JSrypUhW9O7mpS4bk4Q_l1I8PQrXD2Gq1T8qiWJ1iMmJ2WPPLubD0JcsQ-FfZmF_Fbj8f1-GwsWddxJsijWzx4JFOEmqa_fWnZoufLUpdmMr7dBPt_ebUr5vu7qtg4incFh4TBo4H5qyY3J4Z2CkvjSbpB40Is0L-2Kjl3o_Vt5ar_jL-jRT8JEYrtZi882dTM5NzL5qc4go9eJqv50sr19c4wu2yadzFD5jmasaLrMRgMRS8Zg8V1vwzlPRpfQQA3P7Q";
    /// Signed with the private half of JWK_N (node's crypto, RS256, kid "k1"); exp in 2033.
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoibWFyaW8iLCJhdWQiOiJhZ2lsZWtpdCIsImV4cCI6MjAwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJub25jZSI6Im4tMSIsImVtYWlsIjoibWFyaW8ucm9zc2lAZXhhbXBsZS5pdCJ9.L-J3FF_gocsEF-esO22jEpRH3kWHx4NShhnIhrfclXYOkEkcOHsM8fiMOhPRvNUmyP-AHOv9W7HE4RITSoZYwJ8NZwZxte2x2l06zFBe-uz4Z3bOqZQoEA2TSWorrLRmeNbn2qxuZVui1b81fK2xuEQE5hEXrHRtb2XoDXDoxvdxsuNoUrSxgtZmMNKRSryubEEVaxxAq4AksduUZFq6blPm1R9MPCLdP5dTS7CEH4XwqxpRYLoelDvvfs5ZMzKpaajbd2WAC6J_sdcChEG3mZ_dKyFi89nsORcyMc1jcd-prd4JZwU4-XelTrBqmJy0vCl0XtdXVTKKoTXJF59h0w";

    fn jwks(kid: &str) -> Value {
        json!({"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": JWK_N, "e": "AQAB"}]})
    }

    fn account(email: &str, disabled: bool) -> Account {
        let now = OffsetDateTime::now_utc();
        Account {
            id: AccountId::new(),
            email: email.into(),
            display_name: "X".into(),
            tax_code: None,
            locale: None,
            password_hash: None,
            is_public: false,
            totp_secret: None,
            totp_enabled: false,
            totp_last_step: None,
            disabled,
            created_at: now,
            updated_at: now,
        }
    }

    fn cand(a: &Account, eligible: bool) -> Option<Candidate> {
        Some(Candidate { account: a.clone(), eligible })
    }

    fn claims(email_verified: bool, tax: bool) -> Claims {
        Claims {
            subject: "mario".into(),
            email: Some("mario.rossi@example.it".into()),
            email_verified,
            name: Some("Mario Rossi".into()),
            tax_code: tax.then(|| PersonTaxCode::parse("RSSMRA85T10A562S").unwrap()),
        }
    }

    #[test]
    fn a_token_signed_by_the_providers_key_verifies_and_a_tampered_one_does_not() {
        let c = verify_signature(TOKEN, &jwks("k1")).unwrap();
        assert_eq!(c["sub"], "mario");
        assert!(matches!(verify_signature(TOKEN, &jwks("other")), Err(OidcError::BadToken("unknown signing key"))));
        // Another payload under the same signature.
        let mut parts: Vec<String> = TOKEN.split('.').map(str::to_owned).collect();
        parts[1] = B64
            .encode(br#"{"iss":"https://idp.example","sub":"admin","aud":"agilekit","exp":2000000000,"nonce":"n-1"}"#);
        assert!(matches!(
            verify_signature(&parts.join("."), &jwks("k1")),
            Err(OidcError::BadToken("signature does not verify"))
        ));
        // alg=none and HS256 are refused before any key is looked at.
        for alg in ["none", "HS256"] {
            let h = B64.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
            let t = format!("{h}.{}.{}", parts[1], parts[2]);
            assert!(matches!(verify_signature(&t, &jwks("k1")), Err(OidcError::BadToken("algorithm is not RS256"))));
        }
        assert!(verify_signature("a.b", &jwks("k1")).is_err());
        assert!(verify_signature("!!.??.##", &jwks("k1")).is_err());
    }

    #[test]
    fn claims_are_checked_for_issuer_audience_expiry_and_nonce() {
        let c = verify_signature(TOKEN, &jwks("k1")).unwrap();
        let now = 1_800_000_000;
        assert!(check_claims(&c, "https://idp.example", "agilekit", "n-1", now).is_ok());
        assert!(check_claims(&c, "https://evil.example", "agilekit", "n-1", now).is_err());
        assert!(check_claims(&c, "https://idp.example", "someone-else", "n-1", now).is_err());
        assert!(check_claims(&c, "https://idp.example", "agilekit", "n-2", now).is_err());
        assert!(check_claims(&c, "https://idp.example", "agilekit", "n-1", 2_000_000_000 + LEEWAY_SECS).is_err());
        let mut multi = c.clone();
        multi["aud"] = json!(["agilekit", "other"]);
        assert!(
            check_claims(&multi, "https://idp.example", "agilekit", "n-1", now).is_err(),
            "several audiences need azp"
        );
        multi["azp"] = json!("agilekit");
        assert!(check_claims(&multi, "https://idp.example", "agilekit", "n-1", now).is_ok());
    }

    #[test]
    fn pkce_challenge_follows_rfc_7636() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random_token();
        assert_eq!(v.len(), 43);
        assert_ne!(v, random_token());
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_and_nonce() {
        let d = Discovery {
            issuer: "https://idp.example".into(),
            authorization_endpoint: "https://idp.example/auth?tenant=x".into(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
        };
        let p = Provider {
            id: OidcProviderId::new(),
            org_id: None,
            display_name: "SPID".into(),
            issuer: d.issuer.clone(),
            client_id: "agilekit".into(),
            client_secret: "s".into(),
            scopes: DEFAULT_SCOPES.into(),
            tax_code_claim: DEFAULT_TAX_CODE_CLAIM.into(),
            enabled: true,
            created_at: OffsetDateTime::now_utc(),
        };
        let u = url::Url::parse(
            &authorization_url(&d, &p, "https://ak.example/auth/oidc/callback", "st", "no", "ch").unwrap(),
        )
        .unwrap();
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], "ch");
        assert_eq!(q["state"], "st");
        assert_eq!(q["nonce"], "no");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["redirect_uri"], "https://ak.example/auth/oidc/callback");
    }

    #[test]
    fn spid_fiscal_numbers_lose_their_prefix_and_bad_ones_are_ignored() {
        assert_eq!(tax_code_from_claim("TINIT-RSSMRA85T10A562S").unwrap().as_str(), "RSSMRA85T10A562S");
        assert_eq!(tax_code_from_claim("tinit-rssmra85t10a562s").unwrap().as_str(), "RSSMRA85T10A562S");
        assert_eq!(tax_code_from_claim("RSSMRA85T10A562S").unwrap().as_str(), "RSSMRA85T10A562S");
        assert!(tax_code_from_claim("TINIT-RSSMRA85T10A562X").is_none(), "wrong check letter");
        assert!(tax_code_from_claim("TINIT-").is_none());
        assert!(tax_code_from_claim("").is_none());
    }

    #[test]
    fn claims_read_verified_email_name_and_tax_code() {
        let c = Claims::from_json(
            &json!({"sub": "s1", "email": "Mario.Rossi@Example.it", "email_verified": true, "given_name": "Mario", "family_name": "Rossi", "cf": "TINIT-RSSMRA85T10A562S"}),
            "cf",
        )
        .unwrap();
        assert_eq!(c.email.as_deref(), Some("mario.rossi@example.it"));
        assert!(c.email_verified);
        assert_eq!(c.name.as_deref(), Some("Mario Rossi"));
        assert!(c.tax_code.is_some());
        let c = Claims::from_json(&json!({"sub": "s1", "email": "a@b.it", "email_verified": "false", "fiscal_number": "TINIT-RSSMRA85T10A562S"}), "cf").unwrap();
        assert!(!c.email_verified);
        assert!(c.tax_code.is_none(), "only the configured claim is read");
        assert!(
            !Claims::from_json(&json!({"sub": "s1", "email": "a@b.it"}), "cf").unwrap().email_verified,
            "absent is not verified"
        );
        assert!(Claims::from_json(&json!({"email": "a@b.it"}), "cf").is_none(), "no subject, no identity");
    }

    #[test]
    fn matching_prefers_the_link_then_the_tax_code_then_a_verified_email() {
        let org = Scope::Org(OrgId::new());
        let (a, b, c) = (account("a@x.it", false), account("b@x.it", false), account("c@x.it", false));
        let all = Candidates { linked: cand(&a, true), by_tax_code: cand(&b, true), by_email: cand(&c, true) };
        assert_eq!(decide(org, &claims(true, true), &all), Decision::SignIn(a.id));
        let no_link = Candidates { linked: None, ..all.clone() };
        assert_eq!(decide(org, &claims(true, true), &no_link), Decision::Link { account: b.id, via: "tax_code" });
        assert_eq!(decide(org, &claims(true, false), &no_link), Decision::Link { account: c.id, via: "email" });
        // An unverified email links nothing.
        let email_only = Candidates { by_email: cand(&c, true), ..Default::default() };
        assert_eq!(decide(org, &claims(false, false), &email_only), Decision::Refuse(Refusal::NoAccount));
        assert_eq!(decide(Scope::Public, &claims(false, false), &email_only), Decision::Refuse(Refusal::EmailTaken));
        assert_eq!(
            decide(Scope::Public, &claims(true, false), &email_only),
            Decision::Link { account: c.id, via: "email" }
        );
    }

    #[test]
    fn without_a_match_the_public_side_creates_and_an_organisation_refuses() {
        let none = Candidates::default();
        assert_eq!(decide(Scope::Public, &claims(true, true), &none), Decision::CreatePublic);
        assert_eq!(decide(Scope::Org(OrgId::new()), &claims(true, true), &none), Decision::Refuse(Refusal::NoAccount));
        let mut no_email = claims(false, true);
        no_email.email = None;
        assert_eq!(decide(Scope::Public, &no_email, &none), Decision::Refuse(Refusal::MissingEmail));
    }

    #[test]
    fn an_organisations_provider_cannot_vouch_for_outsiders_and_disabled_accounts_stay_out() {
        let org = Scope::Org(OrgId::new());
        let outsider = account("o@x.it", false);
        let c =
            Candidates { by_email: cand(&outsider, false), by_tax_code: cand(&outsider, false), ..Default::default() };
        assert_eq!(decide(org, &claims(true, true), &c), Decision::Refuse(Refusal::NoAccount));
        let c = Candidates { linked: cand(&outsider, false), ..Default::default() };
        assert_eq!(decide(org, &claims(true, true), &c), Decision::Refuse(Refusal::NoAccount), "left the organisation");
        let off = account("d@x.it", true);
        let c = Candidates { by_email: cand(&off, true), ..Default::default() };
        assert_eq!(decide(org, &claims(true, false), &c), Decision::Refuse(Refusal::Disabled));
        let c = Candidates { linked: cand(&off, true), ..Default::default() };
        assert_eq!(decide(Scope::Public, &claims(true, false), &c), Decision::Refuse(Refusal::Disabled));
    }

    #[test]
    fn issuers_must_be_https_except_on_the_loopback() {
        assert_eq!(parse_issuer("https://login.example.it/"), Ok("https://login.example.it".into()));
        assert_eq!(parse_issuer("https://login.example.it/realms/pa"), Ok("https://login.example.it/realms/pa".into()));
        assert_eq!(parse_issuer("http://127.0.0.1:4000"), Ok("http://127.0.0.1:4000".into()));
        assert_eq!(parse_issuer("http://localhost:4000"), Ok("http://localhost:4000".into()));
        assert_eq!(parse_issuer("http://login.example.it"), Err("oidc-https"));
        assert_eq!(parse_issuer("ftp://login.example.it"), Err("oidc-https"));
        assert_eq!(parse_issuer("login.example.it"), Err("format"));
        assert_eq!(parse_issuer("https://login.example.it/?a=b"), Err("format"));
        assert_eq!(parse_issuer("  "), Err("required"));
    }

    #[test]
    fn provider_input_is_checked_field_by_field() {
        let Err(Error::Invalid(e)) =
            parse_input(&ProviderInput { issuer: "http://idp.example".into(), ..Default::default() })
        else {
            panic!("invalid input accepted")
        };
        assert_eq!(e.get("display_name"), Some("required"));
        assert_eq!(e.get("issuer"), Some("oidc-https"));
        assert_eq!(e.get("client_id"), Some("required"));
        assert_eq!(e.get("client_secret"), Some("required"));
        let ok = parse_input(&ProviderInput {
            display_name: " SPID ".into(),
            issuer: "https://idp.example/".into(),
            client_id: "ak".into(),
            client_secret: "s3cret".into(),
            scopes: "email profile".into(),
            tax_code_claim: String::new(),
        })
        .unwrap();
        assert_eq!(ok.display_name, "SPID");
        assert_eq!(ok.scopes, "openid email profile");
        assert_eq!(ok.tax_code_claim, DEFAULT_TAX_CODE_CLAIM);
        assert_eq!(ok.issuer, "https://idp.example");
    }
}
