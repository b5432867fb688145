//! Canned responses: reply texts an organisation's agents save once and insert in a reply, with placeholders filled
//! from the ticket: `{{requester_name}}`, `{{ticket}}` ("#123"), `{{subject}}`, `{{agent_name}}`. The operator's are
//! shared with every organisation (as the knowledge base's operator-wide articles are): offered to all agents,
//! changed only by the operator's. The organisation's agents and admins read and write its own; anyone else of the
//! organisation gets 403, someone with no business there 404.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, FieldErrors, Result, clock, db_run, tenancy};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::model::TicketId;
use crate::service::{self, TicketDetail};

agilekit_kernel::typed_id!(
    /// A canned response.
    CannedId
);

pub const TITLE_MAX: usize = 120;
pub const BODY_MAX: usize = 10_000;
const LIST_LIMIT: i64 = 500;

/// The placeholders a canned response may hold.
pub const PLACEHOLDERS: [&str; 4] = ["requester_name", "ticket", "subject", "agent_name"];

// ---------------------------------------------------------------------------------------------------------------
// Model

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CannedInput {
    /// 1..=120 characters, one line.
    pub title: String,
    /// 1..=10,000 characters; may hold `{{requester_name}}`, `{{ticket}}`, `{{subject}}`, `{{agent_name}}`.
    pub body: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Canned {
    pub id: CannedId,
    pub org_id: OrgId,
    /// The operator's, offered to every organisation.
    pub operator_wide: bool,
    pub title: String,
    pub body: String,
    /// Whether the caller may change it (its own organisation's).
    pub editable: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A canned response with its placeholders filled for one ticket.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Rendered {
    pub id: CannedId,
    pub title: String,
    pub body: String,
}

/// Title and body checked: trimmed, not empty, not too long; the title on one line.
pub fn parse(input: &CannedInput) -> std::result::Result<(String, String), FieldErrors> {
    let mut errs = FieldErrors::new();
    let title = input.title.trim();
    if title.is_empty() {
        errs.add("title", "required");
    } else if title.chars().count() > TITLE_MAX {
        errs.add("title", "too-long");
    } else if title.chars().any(char::is_control) {
        errs.add("title", "format");
    }
    let body = input.body.trim();
    if body.is_empty() {
        errs.add("body", "required");
    } else if body.chars().count() > BODY_MAX {
        errs.add("body", "too-long");
    }
    if errs.is_empty() { Ok((title.to_owned(), body.to_owned())) } else { Err(errs) }
}

/// Fills `{{name}}` (spaces inside the braces allowed) from `values`; an unknown name stays as written.
pub fn fill(body: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                let name = after[..j].trim();
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 2 + j + 2]),
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Store

#[derive(Clone, Debug, sqlx::FromRow)]
struct Row {
    id: CannedId,
    org_id: OrgId,
    title: String,
    body: String,
    updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, org_id, title, body, updated_at";

async fn list_rows(db: &Db, org: OrgId, operator: Option<OrgId>) -> DbResult<Vec<Row>> {
    let op = operator.unwrap_or(org);
    let sql = format!(
        "SELECT {COLUMNS} FROM helpdesk_canned WHERE org_id = $1 OR org_id = $2
         ORDER BY CASE WHEN org_id = $1 THEN 0 ELSE 1 END, title, id LIMIT $3"
    );
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(op).bind(LIST_LIMIT).fetch_all(p).await?))
}

async fn get_row(db: &Db, org: OrgId, operator: Option<OrgId>, id: CannedId) -> DbResult<Option<Row>> {
    let op = operator.unwrap_or(org);
    let sql = format!("SELECT {COLUMNS} FROM helpdesk_canned WHERE id = $3 AND (org_id = $1 OR org_id = $2)");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(op).bind(id).fetch_optional(p).await?))
}

async fn get_own_in(tx: &mut Tx, org: OrgId, id: CannedId) -> DbResult<Option<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM helpdesk_canned WHERE org_id = $1 AND id = $2");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(c).await?))
}

async fn insert(tx: &mut Tx, id: CannedId, org: OrgId, title: &str, body: &str, by: AccountId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_canned (id, org_id, title, body, author_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id).bind(org).bind(title).bind(body).bind(by).bind(now)
        .execute(c).await?;
    });
    Ok(())
}

async fn update_row(tx: &mut Tx, org: OrgId, id: CannedId, title: &str, body: &str, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query("UPDATE helpdesk_canned SET title = $3, body = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
            .bind(org).bind(id).bind(title).bind(body).bind(now)
            .execute(c).await?;
    });
    Ok(())
}

async fn delete_row(tx: &mut Tx, org: OrgId, id: CannedId) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query("DELETE FROM helpdesk_canned WHERE org_id = $1 AND id = $2").bind(org).bind(id).execute(c).await?;
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Service

struct Access {
    org: OrgId,
    operator: Option<OrgId>,
}

/// The organisation's agents and admins; anyone else of it gets 403, anyone outside 404.
async fn access(db: &Db, p: &Principal, org: OrgId) -> Result<Access> {
    if p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin) {
        Ok(Access { org, operator: tenancy::operator(db).await?.map(|o| o.id) })
    } else if p.is_member(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

fn view(a: &Access, r: Row) -> Canned {
    Canned {
        id: r.id,
        operator_wide: Some(r.org_id) == a.operator,
        editable: r.org_id == a.org,
        org_id: r.org_id,
        title: r.title,
        body: r.body,
        updated_at: r.updated_at,
    }
}

/// The organisation's canned responses, then the operator's, by title.
pub async fn list(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<Canned>> {
    let a = access(db, p, org).await?;
    Ok(list_rows(db, org, a.operator).await?.into_iter().map(|r| view(&a, r)).collect())
}

pub async fn get(db: &Db, p: &Principal, org: OrgId, id: CannedId) -> Result<Canned> {
    let a = access(db, p, org).await?;
    let r = get_row(db, org, a.operator, id).await?.ok_or(Error::NotFound)?;
    Ok(view(&a, r))
}

fn audit_json(title: &str, body: &str) -> serde_json::Value {
    json!({"title": title, "body_chars": body.chars().count()})
}

pub async fn create(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &CannedInput) -> Result<Canned> {
    let a = access(db, p, org).await?;
    let (title, body) = parse(input).map_err(Error::Invalid)?;
    let id = CannedId::new();
    let now = clock::now();
    let mut tx = db.begin().await?;
    insert(&mut tx, id, org, &title, &body, p.id(), now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.canned.create", entity: "helpdesk_canned", entity_id: id.to_string(),
        before: None, after: Some(audit_json(&title, &body)),
    })
    .await?;
    tx.commit().await?;
    Ok(view(&a, Row { id, org_id: org, title, body, updated_at: now }))
}

/// Changes one of the organisation's own (an operator-wide one is the operator's to change: 404 here).
pub async fn update(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: CannedId, input: &CannedInput) -> Result<Canned> {
    let a = access(db, p, org).await?;
    let parsed = parse(input);
    let mut tx = db.begin().await?;
    let before = get_own_in(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let (title, body) = parsed.map_err(Error::Invalid)?;
    let now = clock::now();
    update_row(&mut tx, org, id, &title, &body, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.canned.update", entity: "helpdesk_canned", entity_id: id.to_string(),
        before: Some(audit_json(&before.title, &before.body)), after: Some(audit_json(&title, &body)),
    })
    .await?;
    tx.commit().await?;
    Ok(view(&a, Row { id, org_id: org, title, body, updated_at: now }))
}

pub async fn delete(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: CannedId) -> Result<()> {
    access(db, p, org).await?;
    let mut tx = db.begin().await?;
    let before = get_own_in(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    delete_row(&mut tx, org, id).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.canned.delete", entity: "helpdesk_canned", entity_id: id.to_string(),
        before: Some(audit_json(&before.title, &before.body)), after: None,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

fn values_for(d: &TicketDetail, agent: &str) -> Vec<(&'static str, String)> {
    vec![
        ("requester_name", d.ticket.requester_name.clone()),
        ("ticket", d.ticket.reference.clone()),
        ("subject", d.ticket.subject.clone()),
        ("agent_name", agent.to_owned()),
    ]
}

fn render_for(c: &Canned, d: &TicketDetail, agent: &str) -> Rendered {
    let values = values_for(d, agent);
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Rendered { id: c.id, title: c.title.clone(), body: fill(&c.body, &pairs) }
}

/// A canned response filled for a ticket of the organisation the caller is an agent or admin of.
pub async fn render(db: &Db, p: &Principal, org: OrgId, ticket: TicketId, id: CannedId) -> Result<Rendered> {
    let d = service::ticket(db, p, org, ticket).await?;
    let c = get(db, p, org, id).await?;
    Ok(render_for(&c, &d, &p.account.display_name))
}

/// For the ticket page: the canned responses an agent of the ticket's organisation may insert (none for anyone
/// else), and the text of the one asked for (`canned`, a query parameter), filled; a bad or foreign id inserts
/// nothing.
pub async fn for_ticket_page(db: &Db, p: &Principal, d: &TicketDetail, canned: &str) -> Result<(Vec<Canned>, Option<String>)> {
    let org = d.ticket.org_id;
    if d.role != "agent" || !(p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin)) {
        return Ok((Vec::new(), None));
    }
    let all = list(db, p, org).await?;
    let chosen = canned.trim().parse::<CannedId>().ok().and_then(|id| all.iter().find(|c| c.id == id));
    let text = chosen.map(|c| render_for(c, d, &p.account.display_name).body);
    Ok((all, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let v = [("requester_name", "Sara Dipendente"), ("ticket", "#12")];
        assert_eq!(fill("Gentile {{requester_name}}, il ticket {{ ticket }} è chiuso.", &v), "Gentile Sara Dipendente, il ticket #12 è chiuso.");
        assert_eq!(fill("{{ignoto}} e {{ticket}}{{ticket}}", &v), "{{ignoto}} e #12#12");
        assert_eq!(fill("aperta {{ticket", &v), "aperta {{ticket");
        assert_eq!(fill("niente", &v), "niente");
        assert_eq!(fill("{{requester_name}}", &[("requester_name", "{{ticket}}")]), "{{ticket}}", "values are not filled again");
        assert_eq!(fill("àè {{ticket}} ù", &v), "àè #12 ù");
    }

    #[test]
    fn titles_and_bodies_are_checked() {
        let ok = parse(&CannedInput { title: "  Riavvio VPN ".into(), body: " Provi a riavviare. ".into() }).unwrap();
        assert_eq!(ok, ("Riavvio VPN".to_owned(), "Provi a riavviare.".to_owned()));
        let e = parse(&CannedInput { title: "x".repeat(TITLE_MAX + 1), body: " ".into() }).unwrap_err();
        assert_eq!(e.get("title"), Some("too-long"));
        assert_eq!(e.get("body"), Some("required"));
        let e = parse(&CannedInput { title: "a\nb".into(), body: "x".repeat(BODY_MAX + 1) }).unwrap_err();
        assert_eq!(e.get("title"), Some("format"));
        assert_eq!(e.get("body"), Some("too-long"));
    }
}
