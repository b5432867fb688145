//! Organisations (tenants): the operator, the region, its entities, the local administrations that join.
//! Every row of tenant data carries an `org_id`; this module owns the organisations themselves.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::db::{Db, DbResult, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::ids::OrgId;
use crate::validate::{CompanyTaxCode, Email, IpaCode, Text};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// The in-house ICT company that runs the platform.
    Operator,
    Region,
    /// "Ente del sistema regionale": an agency or company of the region.
    RegionalEntity,
    /// A municipality, province or other local administration that joined.
    LocalAuthority,
}

impl OrgKind {
    pub const ALL: [OrgKind; 4] = [OrgKind::Operator, OrgKind::Region, OrgKind::RegionalEntity, OrgKind::LocalAuthority];
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Operator => "operator",
            OrgKind::Region => "region",
            OrgKind::RegionalEntity => "regional_entity",
            OrgKind::LocalAuthority => "local_authority",
        }
    }
    pub fn parse(s: &str) -> Option<OrgKind> {
        OrgKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Organisation {
    pub id: OrgId,
    pub kind: String,
    pub name: String,
    pub ipa_code: String,
    pub tax_code: String,
    pub pec: Option<String>,
    pub parent_id: Option<OrgId>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Organisation {
    pub fn kind(&self) -> OrgKind {
        OrgKind::parse(&self.kind).unwrap_or(OrgKind::LocalAuthority)
    }
    pub fn audit_json(&self) -> serde_json::Value {
        json!({"name": self.name, "kind": self.kind, "ipa_code": self.ipa_code, "tax_code": self.tax_code,
               "pec": self.pec, "parent_id": self.parent_id, "active": self.active})
    }
}

/// What a form or an API call submits to create or edit an organisation, before parsing.
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct OrgInput {
    pub name: String,
    pub kind: String,
    pub ipa_code: String,
    pub tax_code: String,
    #[serde(default)]
    pub pec: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// A parsed, valid organisation input.
pub struct OrgFields {
    pub name: Text,
    pub kind: OrgKind,
    pub ipa_code: IpaCode,
    pub tax_code: CompanyTaxCode,
    pub pec: Option<Email>,
    pub parent_id: Option<OrgId>,
}

impl OrgInput {
    pub fn parse(&self) -> std::result::Result<OrgFields, FieldErrors> {
        let mut errs = FieldErrors::new();
        let name = errs.check("name", Text::parse(&self.name, 200));
        let kind = OrgKind::parse(self.kind.trim());
        if kind.is_none() {
            errs.add("kind", "format");
        }
        let ipa_code = errs.check("ipa_code", IpaCode::parse(&self.ipa_code));
        let tax_code = errs.check("tax_code", CompanyTaxCode::parse(&self.tax_code));
        let pec = if self.pec.trim().is_empty() { Some(None) } else { errs.check("pec", Email::parse(&self.pec)).map(Some) };
        let parent_id = match self.parent_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(s) => match s.parse::<OrgId>() {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    errs.add("parent_id", "format");
                    None
                }
            },
        };
        match (name, kind, ipa_code, tax_code, pec, parent_id) {
            (Some(name), Some(kind), Some(ipa_code), Some(tax_code), Some(pec), Some(parent_id)) if errs.is_empty() => {
                Ok(OrgFields { name, kind, ipa_code, tax_code, pec, parent_id })
            }
            _ => Err(errs),
        }
    }
}

pub async fn get(db: &Db, id: OrgId) -> DbResult<Organisation> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM organisations WHERE id = $1").bind(id).fetch_one(p).await?))
}

pub async fn get_tx(tx: &mut Tx, id: OrgId) -> DbResult<Organisation> {
    Ok(db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM organisations WHERE id = $1").bind(id).fetch_one(c).await?))
}

pub async fn list(db: &Db) -> DbResult<Vec<Organisation>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM organisations ORDER BY name").fetch_all(p).await?))
}

pub async fn list_by_ids(db: &Db, ids: &[OrgId]) -> DbResult<Vec<Organisation>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(db, *id).await?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The operator organisation (there is exactly one, created by the first set-up or the demo).
pub async fn operator(db: &Db) -> DbResult<Option<Organisation>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM organisations WHERE kind = 'operator' ORDER BY created_at LIMIT 1")
        .fetch_optional(p)
        .await?))
}

fn conflict_field(e: &crate::db::DbError) -> Option<&'static str> {
    match e {
        crate::db::DbError::Conflict(c) if c.contains("ipa") => Some("ipa_code"),
        crate::db::DbError::Conflict(c) if c.contains("tax") => Some("tax_code"),
        crate::db::DbError::Conflict(_) => Some("ipa_code"),
        _ => None,
    }
}

async fn check_parent(tx: &mut Tx, id: Option<OrgId>, parent: Option<OrgId>) -> Result<()> {
    let Some(mut cur) = parent else { return Ok(()) };
    // Walk up from the proposed parent: reaching `id` would make a cycle.
    for _ in 0..64 {
        if Some(cur) == id {
            return Err(FieldErrors::one("parent_id", "cycle"));
        }
        match get_tx(tx, cur).await {
            Ok(o) => match o.parent_id {
                Some(p) => cur = p,
                None => return Ok(()),
            },
            Err(crate::db::DbError::NotFound) => return Err(FieldErrors::one("parent_id", "not-found")),
            Err(e) => return Err(e.into()),
        }
    }
    Err(FieldErrors::one("parent_id", "cycle"))
}

/// Creates an organisation inside the caller's transaction (onboarding activation uses it too).
pub async fn create_in(tx: &mut Tx, actor: &Actor, f: &OrgFields) -> Result<Organisation> {
    check_parent(tx, None, f.parent_id).await?;
    let now = crate::clock::now();
    let org = Organisation {
        id: OrgId::new(),
        kind: f.kind.as_str().to_owned(),
        name: f.name.as_str().to_owned(),
        ipa_code: f.ipa_code.as_str().to_owned(),
        tax_code: f.tax_code.as_str().to_owned(),
        pec: f.pec.as_ref().map(|e| e.as_str().to_owned()),
        parent_id: f.parent_id,
        active: true,
        created_at: now,
        updated_at: now,
    };
    let res = db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO organisations (id, kind, name, ipa_code, tax_code, pec, parent_id, active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(org.id).bind(&org.kind).bind(&org.name).bind(&org.ipa_code).bind(&org.tax_code).bind(&org.pec)
    .bind(org.parent_id).bind(org.active).bind(org.created_at).bind(org.updated_at)
    .execute(c).await.map(|r| r.rows_affected()));
    if let Err(e) = res {
        let e = crate::db::DbError::from(e);
        return Err(match conflict_field(&e) {
            Some(field) => FieldErrors::one(field, "taken"),
            None => e.into(),
        });
    }
    audit::record(tx, actor, Change {
        org: Some(org.id), action: "org.create", entity: "organisation", entity_id: org.id.to_string(),
        before: None, after: Some(org.audit_json()),
    }).await?;
    Ok(org)
}

pub async fn create(db: &Db, actor: &Actor, input: &OrgInput) -> Result<Organisation> {
    let f = input.parse().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let org = create_in(&mut tx, actor, &f).await?;
    tx.commit().await?;
    Ok(org)
}

pub async fn update(db: &Db, actor: &Actor, id: OrgId, input: &OrgInput) -> Result<Organisation> {
    let f = input.parse().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, id).await?;
    check_parent(&mut tx, Some(id), f.parent_id).await?;
    let mut after = before.clone();
    after.name = f.name.as_str().to_owned();
    after.kind = f.kind.as_str().to_owned();
    after.ipa_code = f.ipa_code.as_str().to_owned();
    after.tax_code = f.tax_code.as_str().to_owned();
    after.pec = f.pec.as_ref().map(|e| e.as_str().to_owned());
    after.parent_id = f.parent_id;
    after.updated_at = crate::clock::now();
    let res = db_run!(tx &mut tx, |c| sqlx::query(
        "UPDATE organisations SET kind = $1, name = $2, ipa_code = $3, tax_code = $4, pec = $5, parent_id = $6, updated_at = $7 WHERE id = $8"
    )
    .bind(&after.kind).bind(&after.name).bind(&after.ipa_code).bind(&after.tax_code).bind(&after.pec)
    .bind(after.parent_id).bind(after.updated_at).bind(id)
    .execute(c).await.map(|r| r.rows_affected()));
    if let Err(e) = res {
        let e = crate::db::DbError::from(e);
        return Err(match conflict_field(&e) {
            Some(field) => FieldErrors::one(field, "taken"),
            None => e.into(),
        });
    }
    audit::record(&mut tx, actor, Change {
        org: Some(id), action: "org.update", entity: "organisation", entity_id: id.to_string(),
        before: Some(before.audit_json()), after: Some(after.audit_json()),
    }).await?;
    tx.commit().await?;
    Ok(after)
}
