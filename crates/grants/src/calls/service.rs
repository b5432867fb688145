//! The calls' rules. An organisation's administrators define its calls (the organisation must have the grants
//! service): a draft is edited freely, publication makes it public, and once a call has opened its rules, instants and
//! money stand still (its texts and FAQ may still change; the budget will move through its own audited action).
//! Anyone, signed in or not, reads published calls. Every change is audited in the organisation's chain.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Denied, Service};
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, Result, clock};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::model::{self, Attachment, CallId, CallInput, Category, Criterion, DocumentId, FaqId, FaqInput, Mode, Phase, Rules};
use super::store::{self, CallRow};
use crate::model::GrantRule;

/// The most calls a public list shows.
const PUBLIC_LIMIT: i64 = 200;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Faq {
    pub id: FaqId,
    pub question: String,
    pub answer: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EligibilityView {
    pub min_employees: u32,
    pub max_employees: Option<u32>,
    pub excluded_sectors: Vec<String>,
    pub site_region: Option<String>,
}

/// A document published with a call (its bytes at `/calls/{call}/documents/{id}`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: DocumentId,
    pub title: String,
    /// The file's name.
    pub name: String,
    /// Bytes.
    pub size: i64,
    pub content_type: String,
}

/// A call as the public and its staff see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub id: CallId,
    pub org_id: OrgId,
    pub org_name: String,
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    pub mode: Mode,
    pub phase: Phase,
    pub budget_cents: i64,
    /// Held by admitted applications.
    pub committed_cents: i64,
    #[schema(value_type = Object)]
    pub grant_rule: GrantRule,
    pub categories: Vec<Category>,
    pub eligibility: EligibilityView,
    pub required_attachments: Vec<Attachment>,
    pub de_minimis: bool,
    pub criteria: Vec<Criterion>,
    pub tie_breaks: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub closes_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
    pub faqs: Vec<Faq>,
    /// In order of upload.
    pub documents: Vec<Document>,
}

fn rules_of(r: &CallRow) -> Result<Rules> {
    serde_json::from_str(&r.rules).map_err(|e| Error::Internal(format!("call {} rules: {e}", r.id)))
}

async fn view(db: &Db, r: CallRow) -> Result<Call> {
    let rules = rules_of(&r)?;
    let faqs = store::faqs(db, r.id).await?.into_iter().map(|f| Faq { id: f.id, question: f.question, answer: f.answer }).collect();
    Ok(Call {
        id: r.id,
        org_id: r.org_id,
        org_name: r.org_name,
        title: r.title,
        summary: r.summary,
        body: r.body,
        mode: Mode::parse(&r.mode).unwrap_or(Mode::Sportello),
        phase: model::phase(r.published_at.is_some(), r.opens_at, r.closes_at, clock::now()),
        budget_cents: r.budget_cents,
        committed_cents: r.committed_cents,
        grant_rule: rules.grant_rule,
        categories: rules.categories,
        eligibility: EligibilityView {
            min_employees: rules.eligibility.min_employees,
            max_employees: rules.eligibility.max_employees,
            excluded_sectors: rules.eligibility.excluded_sectors.iter().map(|a| a.to_string()).collect(),
            site_region: rules.eligibility.site_region,
        },
        required_attachments: rules.required_attachments,
        de_minimis: r.de_minimis,
        criteria: rules.criteria,
        tie_breaks: rules.tie_breaks,
        opens_at: r.opens_at,
        closes_at: r.closes_at,
        published_at: r.published_at,
        faqs,
        documents: store::documents(db, r.id).await?.into_iter().map(document_view).collect(),
    })
}

fn document_view(d: store::DocumentRow) -> Document {
    Document { id: d.id, title: d.title, name: d.name, size: d.size, content_type: d.content_type }
}

fn audit_json(r: &CallRow) -> serde_json::Value {
    json!({"title": r.title, "mode": r.mode, "budget_cents": r.budget_cents, "opens_at": r.opens_at.to_string(),
           "closes_at": r.closes_at.to_string(), "published": r.published_at.is_some(), "rules": r.rules})
}

/// An administrator of `org`, which has the grants service. Not a member: 404; a member who is not: 403.
pub async fn staff(db: &Db, p: &Principal, org: OrgId) -> Result<()> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    if !p.has(org, Role::OrgAdmin) {
        return Err(Error::Forbidden);
    }
    match catalogue::entitlement(db, p.id(), org, Service::Grants).await? {
        Ok(_) => Ok(()),
        Err(Denied::NotMember) => Err(Error::NotFound),
        Err(_) => Err(Error::Forbidden),
    }
}

pub async fn list_in(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<Call>> {
    staff(db, p, org).await?;
    let mut out = Vec::new();
    for r in store::list_in(db, org).await? {
        out.push(view(db, r).await?);
    }
    Ok(out)
}

pub async fn get_in(db: &Db, p: &Principal, org: OrgId, id: CallId) -> Result<Call> {
    staff(db, p, org).await?;
    view(db, store::get_in(db, org, id).await?.ok_or(Error::NotFound)?).await
}

pub async fn create(db: &Db, actor: &Actor, p: &Principal, org: OrgId, input: &CallInput) -> Result<Call> {
    staff(db, p, org).await?;
    let v = input.validate().map_err(Error::Invalid)?;
    let id = CallId::new();
    let mut tx = db.begin().await?;
    store::insert(&mut tx, id, org, &v, p.id(), clock::now()).await?;
    let row = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.create", entity: "grant_call", entity_id: id.to_string(), before: None, after: Some(audit_json(&row)) })
        .await?;
    tx.commit().await?;
    view(db, row).await
}

/// Changes a call that has not opened yet (a published one too: its companies are still preparing).
pub async fn update(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: CallId, input: &CallInput) -> Result<Call> {
    staff(db, p, org).await?;
    let v = input.validate().map_err(Error::Invalid)?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    let before = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if before.published_at.is_some() && before.opens_at <= now {
        return Err(Error::Conflict("call-opened"));
    }
    if before.published_at.is_some() && v.opens_at <= now {
        return Err(agilekit_kernel::FieldErrors::one("opens_at", "in-the-past"));
    }
    store::update(&mut tx, id, &v, now).await?;
    let after = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.update", entity: "grant_call", entity_id: id.to_string(), before: Some(audit_json(&before)), after: Some(audit_json(&after)) })
        .await?;
    tx.commit().await?;
    view(db, after).await
}

/// Publishes a draft: from now on anyone reads it, and companies prepare their applications. A call that has
/// already closed cannot be published.
pub async fn publish(db: &Db, actor: &Actor, p: &Principal, org: OrgId, id: CallId) -> Result<Call> {
    staff(db, p, org).await?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    let before = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if before.published_at.is_some() {
        return Err(Error::Conflict("already-published"));
    }
    if before.closes_at <= now {
        return Err(Error::Conflict("call-closed"));
    }
    store::publish(&mut tx, id, now).await?;
    let after = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.publish", entity: "grant_call", entity_id: id.to_string(), before: Some(audit_json(&before)), after: Some(audit_json(&after)) })
        .await?;
    tx.commit().await?;
    view(db, after).await
}

pub async fn add_faq(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, input: &FaqInput) -> Result<Faq> {
    staff(db, p, org).await?;
    let (q, a) = input.validate().map_err(Error::Invalid)?;
    let id = FaqId::new();
    let mut tx = db.begin().await?;
    store::get_in_tx(&mut tx, org, call).await?.ok_or(Error::NotFound)?;
    store::insert_faq(&mut tx, id, call, org, &q, &a, clock::now()).await?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.faq.add", entity: "grant_call", entity_id: call.to_string(), before: None, after: Some(json!({"faq": id, "question": q, "answer": a})) })
        .await?;
    tx.commit().await?;
    Ok(Faq { id, question: q, answer: a })
}

pub async fn update_faq(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: FaqId, input: &FaqInput) -> Result<Faq> {
    staff(db, p, org).await?;
    let (q, a) = input.validate().map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    store::get_in_tx(&mut tx, org, call).await?.ok_or(Error::NotFound)?;
    if !store::update_faq(&mut tx, id, call, &q, &a, clock::now()).await? {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.faq.update", entity: "grant_call", entity_id: call.to_string(), before: None, after: Some(json!({"faq": id, "question": q, "answer": a})) })
        .await?;
    tx.commit().await?;
    Ok(Faq { id, question: q, answer: a })
}

pub async fn delete_faq(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: FaqId) -> Result<()> {
    staff(db, p, org).await?;
    let mut tx = db.begin().await?;
    store::get_in_tx(&mut tx, org, call).await?.ok_or(Error::NotFound)?;
    if !store::delete_faq(&mut tx, id, call).await? {
        return Err(Error::NotFound);
    }
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.faq.delete", entity: "grant_call", entity_id: call.to_string(), before: Some(json!({"faq": id})), after: None })
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The published calls of every organisation, for anyone.
pub async fn public_list(db: &Db) -> Result<Vec<Call>> {
    let mut out = Vec::new();
    for r in store::list_published(db, PUBLIC_LIMIT).await? {
        out.push(view(db, r).await?);
    }
    Ok(out)
}

pub async fn public_get(db: &Db, id: CallId) -> Result<Call> {
    view(db, store::get_published(db, id).await?.ok_or(Error::NotFound)?).await
}

/// Adds a document to a call of `org`, before or after its publication (an erratum is a new document). The title is
/// checked first (field `title`), then the file (`file`: `required`, `too-large`); nothing is stored on an error.
#[allow(clippy::too_many_arguments)]
pub async fn add_document(
    db: &Db,
    settings: &agilekit_kernel::files::Settings,
    actor: &Actor,
    p: &Principal,
    org: OrgId,
    call: CallId,
    title: &str,
    name: &str,
    content_type: &str,
    data: &[u8],
) -> Result<Document> {
    staff(db, p, org).await?;
    store::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    let mut e = agilekit_kernel::FieldErrors::new();
    let title = e.check("title", agilekit_kernel::validate::Text::parse(title, model::DOCUMENT_TITLE_MAX)).map(|t| t.into_string());
    if data.is_empty() {
        e.add("file", "required");
    } else if data.len() as u64 > settings.max_bytes {
        e.add("file", "too-large");
    }
    let Some(title) = title.filter(|_| e.is_empty()) else { return Err(Error::Invalid(e)) };
    let meta = agilekit_kernel::files::put(db, settings, org, Some(p.id()), name, content_type, data).await?;
    let id = DocumentId::new();
    let now = clock::now();
    let mut tx = db.begin().await?;
    store::get_in_tx(&mut tx, org, call).await?.ok_or(Error::NotFound)?;
    if !agilekit_kernel::files::mark_attached(&mut tx, org, Some(p.id()), meta.id, now).await? {
        return Err(Error::Internal("an uploaded file vanished".into()));
    }
    store::insert_document(&mut tx, id, call, org, &title, meta.id, now).await?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.document.add", entity: "grant_call", entity_id: call.to_string(), before: None,
        after: Some(json!({"document": id, "title": title, "file": meta.id, "name": meta.name, "size": meta.size, "sha256": meta.sha256})) })
        .await?;
    tx.commit().await?;
    Ok(Document { id, title, name: meta.name, size: meta.size, content_type: meta.content_type })
}

/// Removes a call's document and its file (404 when the call has no such document).
pub async fn delete_document(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: DocumentId) -> Result<()> {
    staff(db, p, org).await?;
    let mut tx = db.begin().await?;
    store::get_in_tx(&mut tx, org, call).await?.ok_or(Error::NotFound)?;
    let Some((title, file)) = store::delete_document(&mut tx, org, call, id).await? else { return Err(Error::NotFound) };
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.document.delete", entity: "grant_call", entity_id: call.to_string(),
        before: Some(json!({"document": id, "title": title, "file": file})), after: None })
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A published call's document with its bytes, for anyone (a draft's: 404).
pub async fn public_document(db: &Db, call: CallId, id: DocumentId) -> Result<(agilekit_kernel::files::FileMeta, Vec<u8>)> {
    let r = store::get_published(db, call).await?.ok_or(Error::NotFound)?;
    let d = store::document(db, call, id).await?.ok_or(Error::NotFound)?;
    agilekit_kernel::files::read(db, r.org_id, d.file_id).await?.ok_or(Error::NotFound)
}

/// A call's document with its bytes, for the call's administrators (drafts too).
pub async fn staff_document(db: &Db, p: &Principal, org: OrgId, call: CallId, id: DocumentId) -> Result<(agilekit_kernel::files::FileMeta, Vec<u8>)> {
    staff(db, p, org).await?;
    store::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    let d = store::document(db, call, id).await?.ok_or(Error::NotFound)?;
    agilekit_kernel::files::read(db, org, d.file_id).await?.ok_or(Error::NotFound)
}
