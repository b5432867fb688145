//! The companies' rules: any signed-in person may register a company (becoming its owner); a partita IVA is
//! registered once on the platform (a second person asks the owner for a delegation); owners and delegates read and
//! edit the company and its declared aid; only owners add and remove delegates, and the last owner cannot leave.
//! Every change is audited (companies belong to no organisation: the entries carry none).

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::ids::AccountId;
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock, identity};
use serde::Serialize;
use serde_json::json;
use time::{Date, OffsetDateTime};

use super::model::{AidId, AidInput, CompanyId, CompanyInput, Role, region_name};
use super::store::{self, AidRow, CompanyRow};
use crate::model::{AidReceived, Cents, DE_MINIMIS_CEILING, three_years_before};

/// A company as its representatives see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    pub partita_iva: String,
    pub tax_code: String,
    pub pec: String,
    pub legal_rep_name: String,
    pub legal_rep_tax_code: String,
    pub employees: i64,
    /// ATECO code, dotted (`62.01.00`).
    pub sector: String,
    pub site_regions: Vec<Region>,
    pub address: String,
    /// The caller's role.
    pub my_role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Region {
    pub code: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Representative {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Aid {
    pub id: AidId,
    #[schema(value_type = String, format = Date)]
    pub granted_on: String,
    pub amount_cents: i64,
    pub granting_body: String,
    pub description: String,
}

/// The company's de minimis position on a day: what counts in the three years ending that day, and the room left.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeMinimis {
    #[schema(value_type = String, format = Date)]
    pub on: String,
    /// Aid granted after this day counts.
    #[schema(value_type = String, format = Date)]
    pub window_after: String,
    pub used_cents: i64,
    pub ceiling_cents: i64,
    pub room_cents: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AidList {
    pub items: Vec<Aid>,
    pub de_minimis: DeMinimis,
}

fn view(r: CompanyRow) -> Company {
    Company {
        id: r.id,
        name: r.name,
        partita_iva: r.partita_iva,
        tax_code: r.tax_code,
        pec: r.pec,
        legal_rep_name: r.legal_rep_name,
        legal_rep_tax_code: r.legal_rep_tax_code,
        employees: r.employees,
        sector: r.sector,
        site_regions: r
            .site_regions
            .split_whitespace()
            .map(|c| Region { code: c.to_owned(), name: region_name(c).unwrap_or(c).to_owned() })
            .collect(),
        address: r.address,
        my_role: Role::parse(&r.role).unwrap_or(Role::Delegate),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn aid_view(r: AidRow) -> Aid {
    Aid { id: r.id, granted_on: r.granted_on.to_string(), amount_cents: r.amount_cents, granting_body: r.granting_body, description: r.description }
}

fn audit_json(c: &Company) -> serde_json::Value {
    json!({"name": c.name, "partita_iva": c.partita_iva, "tax_code": c.tax_code, "pec": c.pec, "legal_rep_name": c.legal_rep_name,
           "legal_rep_tax_code": c.legal_rep_tax_code, "employees": c.employees, "sector": c.sector,
           "site_regions": c.site_regions.iter().map(|r| r.code.clone()).collect::<Vec<_>>(), "address": c.address})
}

pub async fn list(db: &Db, p: &Principal) -> Result<Vec<Company>> {
    Ok(store::list_for(db, p.id()).await?.into_iter().map(view).collect())
}

/// The company, if the caller acts for it; 404 otherwise (whether it exists is nobody else's business).
pub async fn get(db: &Db, p: &Principal, id: CompanyId) -> Result<Company> {
    store::get_for(db, p.id(), id).await?.map(view).ok_or(Error::NotFound)
}

fn taken() -> Error {
    FieldErrors::one("partita_iva", "already-registered")
}

pub async fn register(db: &Db, actor: &Actor, p: &Principal, input: &CompanyInput) -> Result<Company> {
    let v = input.validate().map_err(Error::Invalid)?;
    let id = CompanyId::new();
    let now = clock::now();
    let mut tx = db.begin().await?;
    if store::partita_iva_taken(&mut tx, &v.partita_iva, None).await? {
        return Err(taken());
    }
    match store::insert(&mut tx, id, &v, p.id(), now).await {
        Err(agilekit_kernel::db::DbError::Conflict(_)) => return Err(taken()),
        r => r?,
    }
    let c = store::get_for_tx(&mut tx, p.id(), id).await?.map(view).ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change { org: None, action: "company.register", entity: "company", entity_id: id.to_string(), before: None, after: Some(audit_json(&c)) })
        .await?;
    tx.commit().await?;
    Ok(c)
}

pub async fn update(db: &Db, actor: &Actor, p: &Principal, id: CompanyId, input: &CompanyInput) -> Result<Company> {
    let v = input.validate().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let before = store::get_for_tx(&mut tx, p.id(), id).await?.map(view).ok_or(Error::NotFound)?;
    if store::partita_iva_taken(&mut tx, &v.partita_iva, Some(id)).await? {
        return Err(taken());
    }
    match store::update(&mut tx, id, &v, clock::now()).await {
        Err(agilekit_kernel::db::DbError::Conflict(_)) => return Err(taken()),
        r => r?,
    }
    let after = store::get_for_tx(&mut tx, p.id(), id).await?.map(view).ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change { org: None, action: "company.update", entity: "company", entity_id: id.to_string(), before: Some(audit_json(&before)), after: Some(audit_json(&after)) })
        .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn representatives(db: &Db, p: &Principal, id: CompanyId) -> Result<Vec<Representative>> {
    get(db, p, id).await?;
    Ok(store::representatives(db, id)
        .await?
        .into_iter()
        .map(|r| Representative { account_id: r.account_id, name: r.display_name, email: r.email, role: Role::parse(&r.role).unwrap_or(Role::Delegate), added_at: r.added_at })
        .collect())
}

/// An owner delegates a person, by the e-mail of an account of theirs (public or member).
pub async fn add_delegate(db: &Db, actor: &Actor, p: &Principal, id: CompanyId, email: &str) -> Result<Vec<Representative>> {
    let c = get(db, p, id).await?;
    if c.my_role != Role::Owner {
        return Err(Error::Forbidden);
    }
    let email = agilekit_kernel::validate::Email::parse(email).map_err(|e| FieldErrors::one("email", e.code()))?;
    let Some(who) = identity::find_by_email(db, email.as_str()).await? else {
        return Err(FieldErrors::one("email", "no-such-account"));
    };
    let mut tx = db.begin().await?;
    if !store::add_delegate(&mut tx, id, who.id, p.id(), clock::now()).await? {
        return Err(FieldErrors::one("email", "already-representative"));
    }
    audit::record(&mut tx, actor, Change { org: None, action: "company.delegate.add", entity: "company", entity_id: id.to_string(), before: None, after: Some(json!({"account": who.id, "role": "delegate"})) })
        .await?;
    tx.commit().await?;
    representatives(db, p, id).await
}

/// An owner removes a representative, or anyone leaves; the last owner cannot go.
pub async fn remove_representative(db: &Db, actor: &Actor, p: &Principal, id: CompanyId, account: AccountId) -> Result<()> {
    let c = get(db, p, id).await?;
    if c.my_role != Role::Owner && account != p.id() {
        return Err(Error::Forbidden);
    }
    let reps = store::representatives(db, id).await?;
    let Some(target) = reps.iter().find(|r| r.account_id == account) else { return Err(Error::NotFound) };
    if target.role == "owner" && reps.iter().filter(|r| r.role == "owner").count() == 1 {
        return Err(Error::Conflict("last-owner"));
    }
    let mut tx = db.begin().await?;
    let Some(role) = store::remove_representative(&mut tx, id, account).await? else { return Err(Error::NotFound) };
    audit::record(&mut tx, actor, Change { org: None, action: "company.representative.remove", entity: "company", entity_id: id.to_string(), before: Some(json!({"account": account, "role": role})), after: None })
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The company's declared aid and its de minimis position today.
pub async fn aid(db: &Db, p: &Principal, id: CompanyId) -> Result<AidList> {
    get(db, p, id).await?;
    let rows = store::aid(db, id).await?;
    let today = clock::to_rome(clock::now()).date();
    let prior: Vec<AidReceived> = rows.iter().map(|r| AidReceived { granted_on: r.granted_on, amount: Cents(r.amount_cents) }).collect();
    Ok(AidList { de_minimis: position(&prior, today), items: rows.into_iter().map(aid_view).collect() })
}

/// What counts against the ceiling on `on`, and the room left.
pub fn position(prior: &[AidReceived], on: Date) -> DeMinimis {
    let after = three_years_before(on);
    let used: Cents = prior.iter().filter(|a| a.granted_on > after && a.granted_on <= on).map(|a| a.amount).sum();
    DeMinimis {
        on: on.to_string(),
        window_after: after.to_string(),
        used_cents: used.0,
        ceiling_cents: DE_MINIMIS_CEILING.0,
        room_cents: (DE_MINIMIS_CEILING - used).0.max(0),
    }
}

pub async fn add_aid(db: &Db, actor: &Actor, p: &Principal, id: CompanyId, input: &AidInput) -> Result<Aid> {
    get(db, p, id).await?;
    let v = input.validate(clock::to_rome(clock::now()).date()).map_err(Error::Invalid)?;
    let aid_id = AidId::new();
    let now = clock::now();
    let mut tx = db.begin().await?;
    store::insert_aid(&mut tx, id, aid_id, &v, now).await?;
    audit::record(&mut tx, actor, Change { org: None, action: "company.aid.add", entity: "company", entity_id: id.to_string(), before: None,
        after: Some(json!({"aid": aid_id, "granted_on": v.granted_on.to_string(), "amount_cents": v.amount.0, "granting_body": v.granting_body})) })
        .await?;
    tx.commit().await?;
    Ok(Aid { id: aid_id, granted_on: v.granted_on.to_string(), amount_cents: v.amount.0, granting_body: v.granting_body, description: v.description })
}

pub async fn delete_aid(db: &Db, actor: &Actor, p: &Principal, id: CompanyId, aid: AidId) -> Result<()> {
    get(db, p, id).await?;
    let mut tx = db.begin().await?;
    if !store::delete_aid(&mut tx, id, aid).await? {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change { org: None, action: "company.aid.delete", entity: "company", entity_id: id.to_string(), before: Some(json!({"aid": aid})), after: None })
        .await?;
    tx.commit().await?;
    Ok(())
}
