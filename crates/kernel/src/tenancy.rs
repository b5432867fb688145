//! Organisations (tenants): the operator, the region, its entities, the local administrations that join.
//! Every row of tenant data carries an `org_id`; this module owns the organisations themselves, their tree,
//! and the rules for adding people to them and changing their roles.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::authz::Principal;
use crate::db::{Db, DbResult, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::identity::Role;
use crate::ids::{AccountId, OrgId};
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

/// There is one operator: its `platform_admin`s administer the whole platform, so a second organisation of that
/// kind would hand the platform to whoever administers it; and the operator cannot stop being one.
async fn check_operator(tx: &mut Tx, id: Option<OrgId>, kind: OrgKind) -> Result<()> {
    let operators: Vec<(OrgId,)> = db_run!(tx tx, |c| sqlx::query_as("SELECT id FROM organisations WHERE kind = $1")
        .bind(OrgKind::Operator.as_str()).fetch_all(c).await?);
    let is_operator = id.is_some_and(|id| operators.iter().any(|(o,)| *o == id));
    if kind == OrgKind::Operator && !is_operator && !operators.is_empty() {
        return Err(FieldErrors::one("kind", "operator-exists"));
    }
    if is_operator && kind != OrgKind::Operator {
        return Err(FieldErrors::one("kind", "operator-stays"));
    }
    Ok(())
}

/// Creates an organisation inside the caller's transaction (onboarding activation uses it too).
pub async fn create_in(tx: &mut Tx, actor: &Actor, f: &OrgFields) -> Result<Organisation> {
    check_operator(tx, None, f.kind).await?;
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
    check_operator(&mut tx, Some(id), f.kind).await?;
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
    tx.changed(crate::cache::Topic::Org(id)).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(id), action: "org.update", entity: "organisation", entity_id: id.to_string(),
        before: Some(before.audit_json()), after: Some(after.audit_json()),
    }).await?;
    tx.commit().await?;
    Ok(after)
}

/// One organisation in the tree of all organisations, with how deep it sits (0 = no parent).
#[derive(Clone, Debug)]
pub struct TreeNode {
    pub org: Organisation,
    pub depth: usize,
}

/// Every organisation, parents before their children, siblings by name: the operator's list.
pub async fn tree(db: &Db) -> DbResult<Vec<TreeNode>> {
    Ok(arrange(list(db).await?))
}

/// Orders a flat list depth-first. An organisation whose parent is not in the list counts as a root,
/// so nothing is ever left out.
pub fn arrange(orgs: Vec<Organisation>) -> Vec<TreeNode> {
    let ids: std::collections::HashSet<OrgId> = orgs.iter().map(|o| o.id).collect();
    let mut children: std::collections::HashMap<Option<OrgId>, Vec<Organisation>> = std::collections::HashMap::new();
    for o in orgs {
        let key = o.parent_id.filter(|p| ids.contains(p));
        children.entry(key).or_default().push(o);
    }
    for v in children.values_mut() {
        v.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()));
    }
    let mut out = Vec::new();
    let mut stack: Vec<(Organisation, usize)> = children.remove(&None).unwrap_or_default().into_iter().rev().map(|o| (o, 0)).collect();
    while let Some((o, depth)) = stack.pop() {
        if let Some(kids) = children.remove(&Some(o.id)) {
            stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
        }
        out.push(TreeNode { org: o, depth });
    }
    // A cycle cannot be stored (`check_parent`), but if one were, its members would be unreachable from a root.
    let mut rest: Vec<Organisation> = children.into_values().flatten().collect();
    rest.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(rest.into_iter().map(|org| TreeNode { org, depth: 0 }));
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Members: who works for an organisation, with which roles. The organisation's admins manage them.

/// What an organisation admin submits to add a person, before parsing.
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MemberInput {
    pub email: String,
    /// Used only when no account has the email yet.
    pub display_name: String,
    pub role: String,
}

#[derive(Clone, Debug)]
pub struct AddedMember {
    pub account: crate::identity::Account,
    /// True when the account did not exist and was created (and mailed a first-password link).
    pub created: bool,
}

/// `platform_admin` exists only in the operator organisation, and only a platform admin hands it out.
async fn may_grant(db: &Db, by: &Principal, org: OrgId, role: Role) -> Result<()> {
    if role != Role::PlatformAdmin {
        return Ok(());
    }
    let in_operator = operator(db).await?.is_some_and(|o| o.id == org);
    if by.platform_admin && in_operator { Ok(()) } else { Err(Error::Forbidden) }
}

fn parse_role(s: &str) -> Result<Role> {
    let s = s.trim();
    if s.is_empty() {
        return Err(FieldErrors::one("role", "required"));
    }
    Role::parse(s).ok_or_else(|| FieldErrors::one("role", "format"))
}

/// Adds a person to the organisation with a role. When no account has the email, one is created without a
/// password and sent a first-password link valid 7 days (`{base_url}/password/reset/{secret}`): account,
/// membership, link and mail commit together or not at all.
pub async fn add_member(db: &Db, by: &Principal, actor: &Actor, org: OrgId, input: &MemberInput, base_url: &str) -> Result<AddedMember> {
    let mut errs = FieldErrors::new();
    let email = errs.check("email", Email::parse(&input.email));
    let role = Role::parse(input.role.trim());
    if role.is_none() {
        errs.add("role", "format");
    }
    let existing = match &email {
        Some(e) => crate::identity::find_by_email(db, e.as_str()).await?,
        None => None,
    };
    if existing.is_none() && input.display_name.trim().is_empty() {
        errs.add("display_name", "required");
    }
    errs.clone().into_result()?;
    let (Some(email), Some(role)) = (email, role) else { return Err(Error::Invalid(errs)) };
    may_grant(db, by, org, role).await?;
    let mut tx = db.begin().await?;
    let o = get_tx(&mut tx, org).await?;
    let (account, created) = match existing {
        Some(a) => (a, false),
        None => {
            let new = crate::identity::NewAccount {
                email: email.as_str().to_owned(),
                display_name: input.display_name.clone(),
                ..Default::default()
            };
            let a = crate::identity::create_in(&mut tx, actor, &new, None).await?;
            let secret = crate::identity::reset::issue_in(&mut tx, a.id, time::Duration::days(7)).await?;
            crate::mail::queue(&mut tx, Some(org), &crate::mail::Mail {
                to: a.email.clone(),
                subject: format!("agilekit: il suo accesso per {org} / your access for {org}", org = o.name),
                text: format!(
                    "Gentile {name},\n\nè stato aggiunto a {org} su agilekit. Scelga la password entro 7 giorni:\n\
                     {base}/password/reset/{secret}\n\n\
                     Dear {name},\n\nyou were added to {org} on agilekit. Choose your password within 7 days:\n\
                     {base}/password/reset/{secret}\n",
                    name = a.display_name, org = o.name, base = base_url.trim_end_matches('/')
                ),
            }).await?;
            (a, true)
        }
    };
    crate::identity::grant_in(&mut tx, actor, org, account.id, role).await?;
    tx.commit().await?;
    Ok(AddedMember { account, created })
}

/// Gives one more role to someone who is already a member of the organisation.
pub async fn grant_role(db: &Db, by: &Principal, actor: &Actor, org: OrgId, account: AccountId, role: &str) -> Result<()> {
    let role = parse_role(role)?;
    may_grant(db, by, org, role).await?;
    let mut tx = db.begin().await?;
    // Only members: an admin cannot reach into accounts that have nothing to do with the organisation by id.
    let member: Option<(String,)> = db_run!(tx &mut tx, |c| sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND account_id = $2 LIMIT 1")
        .bind(org).bind(account).fetch_optional(c).await?);
    if member.is_none() {
        return Err(Error::NotFound);
    }
    crate::identity::grant_in(&mut tx, actor, org, account, role).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes a role away. The organisation's last admin stays (someone must be able to manage it), and
/// `platform_admin` is taken away only by a platform admin.
pub async fn revoke_role(db: &Db, by: &Principal, actor: &Actor, org: OrgId, account: AccountId, role: &str) -> Result<()> {
    let role = parse_role(role)?;
    if role == Role::PlatformAdmin && !by.platform_admin {
        return Err(Error::Forbidden);
    }
    let mut tx = db.begin().await?;
    if role == Role::OrgAdmin {
        let (admins,): (i64,) = db_run!(tx &mut tx, |c| sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = $2")
            .bind(org).bind(role.as_str()).fetch_one(c).await?);
        if admins <= 1 {
            return Err(Error::Conflict("last-admin"));
        }
    }
    let n = db_run!(tx &mut tx, |c| sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND account_id = $2 AND role = $3")
        .bind(org).bind(account).bind(role.as_str()).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::NotFound);
    }
    tx.changed(crate::cache::Topic::Account(account)).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "membership.revoke", entity: "account", entity_id: account.to_string(),
        before: Some(json!({"role": role.as_str()})), after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    fn org(name: &str, parent: Option<OrgId>) -> Organisation {
        let now = crate::clock::now();
        Organisation {
            id: OrgId::new(), kind: "region".into(), name: name.into(), ipa_code: name.to_lowercase(), tax_code: String::new(),
            pec: None, parent_id: parent, active: true, created_at: now, updated_at: now,
        }
    }

    #[test]
    fn parents_come_before_their_children_and_siblings_by_name() {
        let region = org("Regione", None);
        let arpa = org("ARPA", Some(region.id));
        let lab = org("Laboratorio", Some(arpa.id));
        let ersaf = org("ERSAF", Some(region.id));
        let aria = org("ARIA", None);
        let stray = org("Orfano", Some(OrgId::new()));
        let names = |v: Vec<TreeNode>| v.into_iter().map(|n| (n.org.name, n.depth)).collect::<Vec<_>>();
        let got = names(arrange(vec![lab, ersaf, region, stray, arpa, aria]));
        assert_eq!(got, vec![
            ("ARIA".into(), 0), ("Orfano".into(), 0), ("Regione".into(), 0), ("ARPA".into(), 1), ("Laboratorio".into(), 2),
            ("ERSAF".into(), 1),
        ]);
    }
}
