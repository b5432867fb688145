//! Identity: accounts (people), their memberships with roles in organisations, and how they prove who they are
//! (passwords, sessions, API tokens, throttling). Public accounts (companies' representatives, citizens) hold
//! no membership.

pub mod login;
pub mod oidc;
pub mod password;
pub mod reset;
pub mod session;
pub mod throttle;
pub mod token;
pub mod totp;

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::cache::Topic;
use crate::db::{Db, DbError, DbResult, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::ids::{AccountId, OrgId};
use crate::validate::{Email, PersonTaxCode, Text};

/// What a person may do in an organisation. Stored as its snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator's administrators: every organisation, the catalogue, onboarding.
    PlatformAdmin,
    OrgAdmin,
    Hr,
    Manager,
    Employee,
    /// Help-desk agent.
    Agent,
    Trainer,
    /// Evaluates applications to funding calls.
    Evaluator,
}

impl Role {
    pub const ALL: [Role; 8] =
        [Role::PlatformAdmin, Role::OrgAdmin, Role::Hr, Role::Manager, Role::Employee, Role::Agent, Role::Trainer, Role::Evaluator];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::OrgAdmin => "org_admin",
            Role::Hr => "hr",
            Role::Manager => "manager",
            Role::Employee => "employee",
            Role::Agent => "agent",
            Role::Trainer => "trainer",
            Role::Evaluator => "evaluator",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub tax_code: Option<String>,
    pub locale: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub is_public: bool,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    #[serde(skip)]
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Account {
    pub fn audit_json(&self) -> serde_json::Value {
        json!({"email": self.email, "display_name": self.display_name, "tax_code": self.tax_code,
               "locale": self.locale, "is_public": self.is_public, "totp_enabled": self.totp_enabled, "disabled": self.disabled})
    }
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub org_id: OrgId,
    pub account_id: AccountId,
    pub role: String,
}

/// A new account, as submitted.
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub email: String,
    pub display_name: String,
    #[serde(default)]
    pub tax_code: String,
    /// Empty for an account that will sign in only through OpenID Connect or a reset link.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub is_public: bool,
}

pub async fn get(db: &Db, id: AccountId) -> DbResult<Account> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM accounts WHERE id = $1").bind(id).fetch_one(p).await?))
}

pub async fn find_by_email(db: &Db, email: &str) -> DbResult<Option<Account>> {
    let email = email.trim().to_lowercase();
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM accounts WHERE email = $1").bind(email).fetch_optional(p).await?))
}

pub async fn find_by_tax_code(db: &Db, tax_code: &str) -> DbResult<Option<Account>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM accounts WHERE tax_code = $1").bind(tax_code).fetch_optional(p).await?))
}

/// Creates an account inside the caller's transaction. The password (if any) is hashed before the transaction
/// by the caller through [`password::hash`], so the slow hash never holds the write lock.
pub async fn create_in(tx: &mut Tx, actor: &Actor, input: &NewAccount, password_hash: Option<String>) -> Result<Account> {
    let mut errs = FieldErrors::new();
    let email = errs.check("email", Email::parse(&input.email));
    let name = errs.check("display_name", Text::parse(&input.display_name, 120));
    let tax_code = if input.tax_code.trim().is_empty() {
        Some(None)
    } else {
        errs.check("tax_code", PersonTaxCode::parse(&input.tax_code)).map(Some)
    };
    if !input.password.is_empty() {
        if let Err(code) = password::check_policy(&input.password) {
            errs.add("password", code);
        }
    }
    errs.clone().into_result()?;
    let (Some(email), Some(name), Some(tax_code)) = (email, name, tax_code) else { return Err(Error::Invalid(errs)) };
    let now = crate::clock::now();
    let acc = Account {
        id: AccountId::new(),
        email: email.as_str().to_owned(),
        display_name: name.as_str().to_owned(),
        tax_code: tax_code.map(|t| t.as_str().to_owned()),
        locale: None,
        password_hash,
        is_public: input.is_public,
        totp_secret: None,
        totp_enabled: false,
        totp_last_step: None,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let res = db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO accounts (id, email, display_name, tax_code, locale, password_hash, is_public, totp_enabled, disabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )
    .bind(acc.id).bind(&acc.email).bind(&acc.display_name).bind(&acc.tax_code).bind(&acc.locale).bind(&acc.password_hash)
    .bind(acc.is_public).bind(false).bind(false).bind(acc.created_at).bind(acc.updated_at)
    .execute(c).await.map(|r| r.rows_affected()));
    if let Err(e) = res {
        return Err(match DbError::from(e) {
            DbError::Conflict(c) if c.contains("tax") => FieldErrors::one("tax_code", "taken"),
            DbError::Conflict(_) => FieldErrors::one("email", "taken"),
            other => other.into(),
        });
    }
    audit::record(tx, actor, Change {
        org: None, action: "account.create", entity: "account", entity_id: acc.id.to_string(),
        before: None, after: Some(acc.audit_json()),
    }).await?;
    Ok(acc)
}

/// Creates an account, hashing its password first.
pub async fn create(db: &Db, actor: &Actor, input: &NewAccount) -> Result<Account> {
    let hash = if input.password.is_empty() || password::check_policy(&input.password).is_err() {
        None
    } else {
        Some(password::hash(input.password.clone()).await?)
    };
    let mut tx = db.begin().await?;
    let acc = create_in(&mut tx, actor, input, hash).await?;
    tx.commit().await?;
    Ok(acc)
}

pub async fn set_password(db: &Db, actor: &Actor, id: AccountId, new_password: &str) -> Result<()> {
    password::check_policy(new_password).map_err(|code| FieldErrors::one("password", code))?;
    let hash = password::hash(new_password.to_owned()).await?;
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(&hash).bind(crate::clock::now()).bind(id).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::NotFound);
    }
    tx.changed(Topic::Account(id)).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.password", entity: "account", entity_id: id.to_string(), before: None, after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn set_locale(db: &Db, id: AccountId, locale: &str) -> DbResult<()> {
    db_run!(db, |p| { sqlx::query("UPDATE accounts SET locale = $1 WHERE id = $2").bind(locale).bind(id).execute(p).await?; });
    crate::cache::changed(db, &[Topic::Account(id)]).await
}

pub async fn update_profile(db: &Db, actor: &Actor, id: AccountId, display_name: &str, tax_code: &str) -> Result<Account> {
    let mut errs = FieldErrors::new();
    let name = errs.check("display_name", Text::parse(display_name, 120));
    let tax = if tax_code.trim().is_empty() { Some(None) } else { errs.check("tax_code", PersonTaxCode::parse(tax_code)).map(Some) };
    errs.clone().into_result()?;
    let (Some(name), Some(tax)) = (name, tax) else { return Err(Error::Invalid(errs)) };
    let before = get(db, id).await?;
    let mut after = before.clone();
    after.display_name = name.as_str().to_owned();
    after.tax_code = tax.map(|t| t.as_str().to_owned());
    after.updated_at = crate::clock::now();
    let mut tx = db.begin().await?;
    let res = db_run!(tx &mut tx, |c| sqlx::query("UPDATE accounts SET display_name = $1, tax_code = $2, updated_at = $3 WHERE id = $4")
        .bind(&after.display_name).bind(&after.tax_code).bind(after.updated_at).bind(id).execute(c).await.map(|r| r.rows_affected()));
    if let Err(e) = res {
        return Err(match DbError::from(e) {
            DbError::Conflict(_) => FieldErrors::one("tax_code", "taken"),
            other => other.into(),
        });
    }
    tx.changed(Topic::Account(id)).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "account.update", entity: "account", entity_id: id.to_string(),
        before: Some(before.audit_json()), after: Some(after.audit_json()),
    }).await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn memberships(db: &Db, account: AccountId) -> DbResult<Vec<Membership>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT org_id, account_id, role FROM memberships WHERE account_id = $1 ORDER BY created_at, role")
        .bind(account).fetch_all(p).await?))
}

/// The members of an organisation with their roles, for the organisation's admin page.
pub async fn members(db: &Db, org: OrgId) -> DbResult<Vec<(Account, Vec<String>)>> {
    let rows: Vec<Membership> = db_run!(db, |p| sqlx::query_as(
        "SELECT m.org_id, m.account_id, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id
         WHERE m.org_id = $1 ORDER BY a.display_name, a.id, m.role"
    ).bind(org).fetch_all(p).await?);
    let mut out: Vec<(Account, Vec<String>)> = Vec::new();
    for m in rows {
        match out.last_mut() {
            Some((a, roles)) if a.id == m.account_id => roles.push(m.role),
            _ => out.push((get(db, m.account_id).await?, vec![m.role])),
        }
    }
    Ok(out)
}

pub async fn grant_in(tx: &mut Tx, actor: &Actor, org: OrgId, account: AccountId, role: Role) -> Result<()> {
    let res = db_run!(tx tx, |c| sqlx::query("INSERT INTO memberships (org_id, account_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org).bind(account).bind(role.as_str()).bind(crate::clock::now()).execute(c).await.map(|r| r.rows_affected()));
    match res.map_err(DbError::from) {
        Ok(_) => {}
        Err(DbError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tx.changed(Topic::Account(account)).await?;
    audit::record(tx, actor, Change {
        org: Some(org), action: "membership.grant", entity: "account", entity_id: account.to_string(),
        before: None, after: Some(json!({"role": role.as_str()})),
    }).await?;
    Ok(())
}

pub async fn grant(db: &Db, actor: &Actor, org: OrgId, account: AccountId, role: Role) -> Result<()> {
    let mut tx = db.begin().await?;
    grant_in(&mut tx, actor, org, account, role).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn revoke(db: &Db, actor: &Actor, org: OrgId, account: AccountId, role: Role) -> Result<()> {
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND account_id = $2 AND role = $3")
        .bind(org).bind(account).bind(role.as_str()).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::NotFound);
    }
    tx.changed(Topic::Account(account)).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "membership.revoke", entity: "account", entity_id: account.to_string(),
        before: Some(json!({"role": role.as_str()})), after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}
