//! The companies' queries. A company is reached only through its representatives: every read that a person makes
//! takes the person's account and joins `company_representatives`, so another person's company is not found.

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::AccountId;
use time::{Date, OffsetDateTime};

use super::model::{AidId, CompanyId, Valid, ValidAid};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CompanyRow {
    pub id: CompanyId,
    pub name: String,
    pub partita_iva: String,
    pub tax_code: String,
    pub pec: String,
    pub legal_rep_name: String,
    pub legal_rep_tax_code: String,
    pub employees: i64,
    pub sector: String,
    pub site_regions: String,
    pub address: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The caller's role (`owner`, `delegate`).
    pub role: String,
}

macro_rules! select_for {
    ($rest:literal) => {
        concat!(
            "SELECT c.id, c.name, c.partita_iva, c.tax_code, c.pec, c.legal_rep_name, c.legal_rep_tax_code, c.employees,
                    c.sector, c.site_regions, c.address, c.created_at, c.updated_at, r.role
             FROM companies c JOIN company_representatives r ON r.company_id = c.id ",
            $rest
        )
    };
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RepresentativeRow {
    pub account_id: AccountId,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub added_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AidRow {
    pub id: AidId,
    pub granted_on: Date,
    pub amount_cents: i64,
    pub granting_body: String,
    pub description: String,
    pub created_at: OffsetDateTime,
}

/// The companies `account` acts for, by name.
pub async fn list_for(db: &Db, account: AccountId) -> DbResult<Vec<CompanyRow>> {
    let sql = select_for!("WHERE r.account_id = $1 ORDER BY c.name, c.id");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(account).fetch_all(p).await?))
}

/// One company, if `account` acts for it.
pub async fn get_for(db: &Db, account: AccountId, id: CompanyId) -> DbResult<Option<CompanyRow>> {
    let sql = select_for!("WHERE r.account_id = $1 AND c.id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(account).bind(id).fetch_optional(p).await?))
}

pub async fn get_for_tx(tx: &mut Tx, account: AccountId, id: CompanyId) -> DbResult<Option<CompanyRow>> {
    let sql = select_for!("WHERE r.account_id = $1 AND c.id = $2");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sql).bind(account).bind(id).fetch_optional(c).await?))
}

pub async fn partita_iva_taken(tx: &mut Tx, piva: &str, except: Option<CompanyId>) -> DbResult<bool> {
    let n: i64 = db_run!(tx tx, |c| sqlx::query_scalar("SELECT COUNT(*) FROM companies WHERE partita_iva = $1 AND ($2 IS NULL OR id <> $2)")
        .bind(piva).bind(except).fetch_one(c).await?);
    Ok(n > 0)
}

pub async fn insert(tx: &mut Tx, id: CompanyId, v: &Valid, by: AccountId, now: OffsetDateTime) -> DbResult<()> {
    let regions = v.site_regions.join(" ");
    let sector = v.sector.to_string();
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO companies (id, name, partita_iva, tax_code, pec, legal_rep_name, legal_rep_tax_code, employees,
                                    sector, site_regions, address, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(id).bind(&v.name).bind(&v.partita_iva).bind(&v.tax_code).bind(&v.pec).bind(&v.legal_rep_name)
        .bind(&v.legal_rep_tax_code).bind(v.employees).bind(&sector).bind(&regions).bind(&v.address).bind(by).bind(now)
        .execute(&mut *c).await?;
        sqlx::query("INSERT INTO company_representatives (company_id, account_id, role, added_by, added_at) VALUES ($1, $2, 'owner', $2, $3)")
            .bind(id).bind(by).bind(now).execute(&mut *c).await?;
    });
    Ok(())
}

pub async fn update(tx: &mut Tx, id: CompanyId, v: &Valid, now: OffsetDateTime) -> DbResult<()> {
    let regions = v.site_regions.join(" ");
    let sector = v.sector.to_string();
    db_run!(tx tx, |c| {
        sqlx::query(
            "UPDATE companies SET name = $2, partita_iva = $3, tax_code = $4, pec = $5, legal_rep_name = $6,
                    legal_rep_tax_code = $7, employees = $8, sector = $9, site_regions = $10, address = $11, updated_at = $12
             WHERE id = $1",
        )
        .bind(id).bind(&v.name).bind(&v.partita_iva).bind(&v.tax_code).bind(&v.pec).bind(&v.legal_rep_name)
        .bind(&v.legal_rep_tax_code).bind(v.employees).bind(&sector).bind(&regions).bind(&v.address).bind(now)
        .execute(c).await?;
    });
    Ok(())
}

pub async fn representatives(db: &Db, id: CompanyId) -> DbResult<Vec<RepresentativeRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT r.account_id, a.display_name, a.email, r.role, r.added_at
         FROM company_representatives r JOIN accounts a ON a.id = r.account_id
         WHERE r.company_id = $1 ORDER BY r.role DESC, a.display_name, a.id"
    ).bind(id).fetch_all(p).await?))
}

/// Adds a delegate; false when the account already acts for the company.
pub async fn add_delegate(tx: &mut Tx, id: CompanyId, account: AccountId, by: AccountId, now: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO company_representatives (company_id, account_id, role, added_by, added_at) VALUES ($1, $2, 'delegate', $3, $4)
         ON CONFLICT (company_id, account_id) DO NOTHING"
    ).bind(id).bind(account).bind(by).bind(now).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Removes a representative: returns the role it had.
pub async fn remove_representative(tx: &mut Tx, id: CompanyId, account: AccountId) -> DbResult<Option<String>> {
    let role: Option<String> = db_run!(tx tx, |c| sqlx::query_scalar(
        "DELETE FROM company_representatives WHERE company_id = $1 AND account_id = $2 RETURNING role"
    ).bind(id).bind(account).fetch_optional(c).await?);
    Ok(role)
}

pub async fn aid(db: &Db, id: CompanyId) -> DbResult<Vec<AidRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT id, granted_on, amount_cents, granting_body, description, created_at FROM company_aid
         WHERE company_id = $1 ORDER BY granted_on DESC, id DESC"
    ).bind(id).fetch_all(p).await?))
}

pub async fn insert_aid(tx: &mut Tx, company: CompanyId, id: AidId, v: &ValidAid, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO company_aid (id, company_id, granted_on, amount_cents, granting_body, description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ).bind(id).bind(company).bind(v.granted_on).bind(v.amount.0).bind(&v.granting_body).bind(&v.description).bind(now)
    .execute(c).await?.rows_affected());
    Ok(())
}

/// Deletes one aid of `company`; false when there is no such aid there.
pub async fn delete_aid(tx: &mut Tx, company: CompanyId, id: AidId) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query("DELETE FROM company_aid WHERE company_id = $1 AND id = $2")
        .bind(company).bind(id).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Companies by id, whoever asks (a click-day batch; the handlers checked who acts for them): `role` is empty.
pub async fn get_many_tx(tx: &mut Tx, ids: &[CompanyId]) -> DbResult<Vec<CompanyRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db_run!(tx tx, |c| {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT c.id, c.name, c.partita_iva, c.tax_code, c.pec, c.legal_rep_name, c.legal_rep_tax_code, c.employees,
                    c.sector, c.site_regions, c.address, c.created_at, c.updated_at, '' AS role
             FROM companies c WHERE c.id IN (",
        );
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as::<CompanyRow>().fetch_all(c).await?
    }))
}

/// The declared aid of several companies: (company, granted on, amount in cents).
pub async fn aid_many_tx(tx: &mut Tx, ids: &[CompanyId]) -> DbResult<Vec<(CompanyId, Date, i64)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db_run!(tx tx, |c| {
        let mut qb = sqlx::QueryBuilder::new("SELECT company_id, granted_on, amount_cents FROM company_aid WHERE company_id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as::<(CompanyId, Date, i64)>().fetch_all(c).await?
    }))
}
