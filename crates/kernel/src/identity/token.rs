//! Personal API tokens: shown once at creation as `ak_<prefix>_<secret>`, stored as a SHA-256, revocable.

use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::db::{Db, DbResult};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::ids::{AccountId, ApiTokenId};
use crate::identity::session::{hash_secret, new_secret};
use crate::validate::Text;

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub account_id: AccountId,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    /// The first characters of the token, so its owner can tell tokens apart.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

/// Creates a token and returns it with its secret, which is never shown again.
pub async fn create(db: &Db, actor: &Actor, account: AccountId, name: &str) -> Result<(ApiToken, String)> {
    let name = Text::parse(name, 80).map_err(|e| FieldErrors::one("name", e.code()))?;
    let secret = new_secret();
    let prefix: String = secret.chars().take(8).collect();
    let full = format!("ak_{prefix}_{secret}");
    let t = ApiToken {
        id: ApiTokenId::new(),
        account_id: account,
        name: name.as_str().to_owned(),
        token_hash: hash_secret(&full),
        prefix: format!("ak_{prefix}"),
        created_at: crate::clock::now(),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    };
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query(
        "INSERT INTO api_tokens (id, account_id, name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    ).bind(t.id).bind(t.account_id).bind(&t.name).bind(&t.token_hash).bind(&t.prefix).bind(t.created_at).execute(c).await?; });
    audit::record(&mut tx, actor, Change {
        org: None, action: "token.create", entity: "api_token", entity_id: t.id.to_string(),
        before: None, after: Some(serde_json::json!({"name": t.name, "prefix": t.prefix})),
    }).await?;
    tx.commit().await?;
    Ok((t, full))
}

pub async fn list(db: &Db, account: AccountId) -> DbResult<Vec<ApiToken>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM api_tokens WHERE account_id = $1 ORDER BY created_at DESC")
        .bind(account).fetch_all(p).await?))
}

/// Revokes one of the account's tokens; another account's token is not found.
pub async fn revoke(db: &Db, actor: &Actor, account: AccountId, id: ApiTokenId) -> Result<()> {
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL")
        .bind(crate::clock::now()).bind(id).bind(account).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change {
        org: None, action: "token.revoke", entity: "api_token", entity_id: id.to_string(), before: None, after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// The account a bearer token belongs to, if the token is live.
pub async fn authenticate(db: &Db, bearer: &str) -> DbResult<Option<AccountId>> {
    if !bearer.starts_with("ak_") || bearer.len() > 200 {
        return Ok(None);
    }
    let h = hash_secret(bearer);
    let now = crate::clock::now();
    let row: Option<(ApiTokenId, AccountId, Option<OffsetDateTime>)> = db_run!(db, |p| sqlx::query_as(
        "SELECT id, account_id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
    ).bind(&h).bind(now).fetch_optional(p).await?);
    let Some((id, account, last)) = row else { return Ok(None) };
    if last.is_none_or(|l| now - l > time::Duration::minutes(5)) {
        db_run!(db, |p| { sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(now).bind(id).execute(p).await?; });
    }
    Ok(Some(account))
}
