//! Applications: a company's representatives open one per call, save its draft as often as they like (what would
//! stop its submission is listed, never a reason to lose what was typed), submit it through the node's sequencer
//! (see `sequencer`), read its receipt, and may withdraw it: money it held goes to the overbooking list's head.
//! The call's administrators list the submitted applications in protocol order.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, FieldError, Result, clock, mail};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::model::{self, ApplicationId, Draft, State};
use super::store::{self, ApplicationRow};
use crate::allocation::Pot;
use crate::calls::model::{CallId, Phase, Rules};
use crate::calls::store as calls;
use crate::companies::model::CompanyId;
use crate::companies::store as companies;
use crate::model::{AidReceived, Cents, DE_MINIMIS_CEILING, de_minimis};

/// What a submission got: its protocol number, the instant, the fingerprint of the submitted document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub application_id: ApplicationId,
    pub call_id: CallId,
    pub call_title: String,
    pub company_id: CompanyId,
    pub company_name: String,
    pub protocol: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: OffsetDateTime,
    /// SHA-256 (hex) of the submitted document (the draft, the company's data, the grant asked for).
    pub sha256: String,
    pub requested_cents: i64,
    /// `admitted` or `waiting` (a sportello); none for a ranked call.
    pub place: Option<String>,
}

pub fn receipt_of(r: &ApplicationRow) -> Receipt {
    Receipt {
        application_id: r.id,
        call_id: r.call_id,
        call_title: r.call_title.clone(),
        company_id: r.company_id,
        company_name: r.company_name.clone(),
        protocol: r.protocol.unwrap_or(0),
        submitted_at: r.submitted_at.unwrap_or(r.updated_at),
        sha256: r.sha256.clone().unwrap_or_default(),
        requested_cents: r.requested_cents,
        place: r.place.clone(),
    }
}

/// An application as its company sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Application {
    pub id: ApplicationId,
    pub call_id: CallId,
    pub call_title: String,
    pub company_id: CompanyId,
    pub company_name: String,
    pub state: State,
    pub draft: Draft,
    /// The grant the draft asks for under the call's rule (0 while it cannot be worked out).
    pub requested_cents: i64,
    /// What would stop its submission now (empty: it can be submitted once the call opens).
    pub problems: Vec<FieldError>,
    pub receipt: Option<Receipt>,
}

pub(crate) async fn company_ok(db: &Db, p: &Principal, company: CompanyId) -> Result<companies::CompanyRow> {
    companies::get_for(db, p.id(), company).await?.ok_or(Error::NotFound)
}

fn draft_of(r: &ApplicationRow) -> Draft {
    match State::parse(&r.state) {
        Some(State::Draft) => serde_json::from_str(&r.content).unwrap_or_default(),
        // Submitted content is {"draft": …, "company": …}.
        _ => serde_json::from_str::<serde_json::Value>(&r.content)
            .ok()
            .and_then(|v| serde_json::from_value(v["draft"].clone()).ok())
            .unwrap_or_default(),
    }
}

/// The draft's problems and the grant it asks for, against the call's rules and the company's data of now.
async fn assess(db: &Db, company: &companies::CompanyRow, call: CallId, d: &Draft) -> Result<model::Assessment> {
    let c = calls::get_published(db, call).await?.ok_or(Error::NotFound)?;
    let rules: Rules = serde_json::from_str(&c.rules).map_err(|e| Error::Internal(format!("call rules: {e}")))?;
    let Some(facts) = model::facts(company.employees, &company.sector, &company.site_regions) else {
        return Err(Error::Internal("company data unreadable".into()));
    };
    let room = if c.de_minimis {
        let prior: Vec<AidReceived> = companies::aid(db, company.id).await?.into_iter().map(|a| AidReceived { granted_on: a.granted_on, amount: Cents(a.amount_cents) }).collect();
        Some(de_minimis(DE_MINIMIS_CEILING, &prior, Cents::ZERO, clock::to_rome(clock::now()).date()).unwrap_or(Cents::ZERO))
    } else {
        None
    };
    Ok(model::assess(d, &rules, &facts, room))
}

async fn view(db: &Db, company: &companies::CompanyRow, r: ApplicationRow) -> Result<Application> {
    let state = State::parse(&r.state).unwrap_or(State::Draft);
    let draft = draft_of(&r);
    let (problems, requested) = if state == State::Draft {
        let a = assess(db, company, r.call_id, &draft).await?;
        (a.problems.0, a.requested.0)
    } else {
        (Vec::new(), r.requested_cents)
    };
    let receipt = r.protocol.is_some().then(|| receipt_of(&r));
    Ok(Application { id: r.id, call_id: r.call_id, call_title: r.call_title, company_id: r.company_id, company_name: r.company_name, state, draft, requested_cents: requested, problems, receipt })
}

pub async fn list(db: &Db, p: &Principal, company: CompanyId) -> Result<Vec<Application>> {
    let c = company_ok(db, p, company).await?;
    let mut out = Vec::new();
    for r in store::list_of(db, company).await? {
        out.push(view(db, &c, r).await?);
    }
    Ok(out)
}

pub async fn get(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId) -> Result<Application> {
    let c = company_ok(db, p, company).await?;
    let r = store::get_of(db, company, id).await?.ok_or(Error::NotFound)?;
    view(db, &c, r).await
}

/// Opens the company's application to a published call that has not closed (one per company per call).
pub async fn open(db: &Db, actor: &Actor, p: &Principal, company: CompanyId, call: CallId, draft: &Draft) -> Result<Application> {
    let c = company_ok(db, p, company).await?;
    model::check_storable(draft).map_err(Error::Invalid)?;
    let k = calls::get_published(db, call).await?.ok_or_else(|| agilekit_kernel::FieldErrors::one("call_id", "unknown-call"))?;
    if crate::calls::model::phase(true, k.opens_at, k.closes_at, clock::now()) == Phase::Closed {
        return Err(Error::Conflict("call-closed"));
    }
    let a = assess(db, &c, call, draft).await?;
    let id = ApplicationId::new();
    // Attachments are uploaded to the draft, never declared in it.
    let draft = Draft { attachments: Vec::new(), ..draft.clone() };
    let content = serde_json::to_string(&draft).unwrap_or_default();
    let mut tx = db.begin().await?;
    match store::insert_draft(&mut tx, id, call, k.org_id, company, &content, a.requested.0, p.id(), clock::now()).await {
        Err(agilekit_kernel::db::DbError::Conflict(_)) => return Err(Error::Conflict("already-applied")),
        r => r?,
    }
    audit::record(&mut tx, actor, Change { org: Some(k.org_id), action: "application.open", entity: "grant_application", entity_id: id.to_string(), before: None, after: Some(json!({"company": company, "call": call})) })
        .await?;
    tx.commit().await?;
    get(db, p, company, id).await
}

/// Saves the draft as typed; returns it with what would stop its submission.
pub async fn save(db: &Db, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId, draft: &Draft) -> Result<Application> {
    let c = company_ok(db, p, company).await?;
    model::check_storable(draft).map_err(Error::Invalid)?;
    let r = store::get_of(db, company, id).await?.ok_or(Error::NotFound)?;
    if State::parse(&r.state) != Some(State::Draft) {
        return Err(Error::Conflict("already-submitted"));
    }
    let a = assess(db, &c, r.call_id, draft).await?;
    let mut tx = db.begin().await?;
    // The uploaded attachments stay as stored, whatever the client sent (read under the draft's lock, so that an
    // upload running meanwhile is not undone).
    if !store::hold_draft(&mut tx, id, clock::now()).await? {
        return Err(Error::Conflict("already-submitted"));
    }
    let draft = Draft { attachments: attached(store::attachments_tx(&mut tx, id).await?), ..draft.clone() };
    let content = serde_json::to_string(&draft).unwrap_or_default();
    if !store::save_draft(&mut tx, id, &content, a.requested.0, clock::now()).await? {
        return Err(Error::Conflict("already-submitted"));
    }
    audit::record(&mut tx, actor, Change { org: Some(r.org_id), action: "application.save", entity: "grant_application", entity_id: id.to_string(), before: None, after: Some(json!({"requested_cents": a.requested.0})) })
        .await?;
    tx.commit().await?;
    get(db, p, company, id).await
}

pub async fn receipt(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId) -> Result<Receipt> {
    company_ok(db, p, company).await?;
    let r = store::get_of(db, company, id).await?.ok_or(Error::NotFound)?;
    if r.protocol.is_none() {
        return Err(Error::NotFound);
    }
    Ok(receipt_of(&r))
}

/// Withdraws a submitted application: the money it held goes down the overbooking list, whose newly admitted
/// companies are told by mail.
pub async fn withdraw(db: &Db, durable: &Db, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId) -> Result<Receipt> {
    company_ok(db, p, company).await?;
    let mut tx = durable.begin().await?;
    let r = store::get_of_tx(&mut tx, company, id).await?.ok_or(Error::NotFound)?;
    if State::parse(&r.state) != Some(State::Submitted) {
        return Err(Error::Conflict("not-submitted"));
    }
    let mut lock = store::lock_call(&mut tx, r.call_id).await?.ok_or(Error::NotFound)?;
    let now = clock::now();
    // Once its expenses are approved the grant is being paid: too late to renounce it here.
    if crate::review::store::get_tx(&mut tx, id).await?.is_some_and(|v| v.stage == "approved") {
        return Err(Error::Conflict("already-approved"));
    }
    let mut pot = Pot { budget: Cents(lock.budget_cents), committed: Cents(lock.committed_cents) };
    if r.place.as_deref() == Some("admitted") {
        // What it holds now: after a partial grant, less than it asked for.
        pot.release(crate::review::service::held(&mut tx, id, Cents(r.requested_cents)).await?);
    }
    store::withdraw(&mut tx, id, now).await?;
    let drawn = draw(&mut tx, actor, &mut lock, pot, now).await?;
    audit::record(&mut tx, actor, Change { org: Some(lock.org_id), action: "application.withdraw", entity: "grant_application", entity_id: id.to_string(), before: Some(json!({"place": r.place})), after: Some(json!({"state": "withdrawn", "drawn": drawn})) })
        .await?;
    tx.commit().await?;
    let mut done = r;
    done.state = "withdrawn".into();
    done.place = None;
    Ok(receipt_of(&done))
}

/// Money came back to the call (a withdrawal, an inadmissible application, a budget increase): `pot` is the call's
/// budget and committed amount after that; the overbooking list is drawn from its head while the money lasts, the
/// newly admitted are audited and told by mail, and the call's counters saved. Runs in the caller's transaction, which
/// must hold the call's row lock (`store::lock_call`). Returns how many were admitted.
pub async fn draw(tx: &mut agilekit_kernel::db::Tx, actor: &Actor, lock: &mut store::CallLock, mut pot: Pot, now: time::OffsetDateTime) -> Result<usize> {
    let waiting = store::waiting(tx, lock.id).await?;
    let amounts: Vec<Cents> = waiting.iter().map(|w| Cents(w.1)).collect();
    let drawn = pot.draw(&amounts);
    for (app, _) in &waiting[..drawn] {
        store::set_place(tx, *app, Some("admitted"), now).await?;
        audit::record(tx, actor, Change { org: Some(lock.org_id), action: "application.admit", entity: "grant_application", entity_id: app.to_string(), before: Some(json!({"place": "waiting"})), after: Some(json!({"place": "admitted", "by": "overbooking-draw"})) })
            .await?;
        if let Some(pec) = pec_of(tx, *app).await? {
            mail::queue(tx, Some(lock.org_id), &mail::Mail { to: pec, subject: format!("Domanda ammessa — {}", lock.title),
                text: format!("La domanda è stata ammessa dallo scorrimento della lista d'attesa.\nThe application was admitted from the waiting list.\n\nBando / Call: {}\n", lock.title) }).await?;
        }
    }
    lock.budget_cents = pot.budget.0;
    lock.committed_cents = pot.committed.0;
    store::save_call_counters(tx, lock).await?;
    Ok(drawn)
}

async fn pec_of(tx: &mut agilekit_kernel::db::Tx, app: ApplicationId) -> agilekit_kernel::db::DbResult<Option<String>> {
    Ok(agilekit_kernel::db_run!(tx tx, |c| sqlx::query_scalar(
        "SELECT k.pec FROM grant_applications a JOIN companies k ON k.id = a.company_id WHERE a.id = $1"
    ).bind(app).fetch_optional(c).await?))
}

/// A submitted application as the call's administrators see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Submission {
    pub receipt: Receipt,
    pub state: State,
}

/// The call's submitted applications in protocol order, with the money committed (its administrators).
pub async fn list_submitted(db: &Db, p: &Principal, org: OrgId, call: CallId) -> Result<Vec<Submission>> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    if !(p.has(org, Role::OrgAdmin) || p.has(org, Role::Evaluator)) {
        return Err(Error::Forbidden);
    }
    calls::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    Ok(store::list_submitted(db, call)
        .await?
        .iter()
        .map(|r| Submission { receipt: receipt_of(r), state: State::parse(&r.state).unwrap_or(State::Submitted) })
        .collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Required attachments: uploaded to a draft (before the opening, so that the click day carries only the submit),
// replaced, removed; the draft's content lists them so that the submission's fingerprint covers their SHA-256s.

fn attached(rows: Vec<store::AttachmentRow>) -> Vec<model::AttachedFile> {
    rows.into_iter()
        .map(|r| model::AttachedFile { code: r.code, file_id: r.file_id.to_string(), name: r.name, size: r.size, content_type: r.content_type, sha256: r.sha256 })
        .collect()
}

/// The call's required attachments, for an application's page.
pub async fn required_attachments(db: &Db, call: CallId) -> Result<Vec<crate::calls::model::Attachment>> {
    let c = calls::get_published(db, call).await?.ok_or(Error::NotFound)?;
    let rules: Rules = serde_json::from_str(&c.rules).map_err(|e| Error::Internal(format!("call rules: {e}")))?;
    Ok(rules.required_attachments)
}

/// A draft of the caller's company and the call's attachment `code` (404 when the call requires no such attachment).
async fn draft_for_attachment(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId, code: &str) -> Result<ApplicationRow> {
    company_ok(db, p, company).await?;
    let r = store::get_of(db, company, id).await?.ok_or(Error::NotFound)?;
    if !required_attachments(db, r.call_id).await?.iter().any(|a| a.code == code) {
        return Err(Error::NotFound);
    }
    if State::parse(&r.state) != Some(State::Draft) {
        return Err(Error::Conflict("already-submitted"));
    }
    Ok(r)
}

/// Re-lists the stored attachments in the draft's content, in the caller's transaction (which holds the draft).
async fn sync_content(tx: &mut agilekit_kernel::db::Tx, id: ApplicationId, now: OffsetDateTime) -> Result<()> {
    let content = store::content_tx(tx, id).await?.unwrap_or_default();
    let mut d: Draft = serde_json::from_str(&content).unwrap_or_default();
    d.attachments = attached(store::attachments_tx(tx, id).await?);
    store::set_content(tx, id, &serde_json::to_string(&d).unwrap_or_default(), now).await?;
    Ok(())
}

/// Uploads (or replaces) the draft's attachment `code`. A file over `settings.max_bytes` is `file`: `too-large`.
#[allow(clippy::too_many_arguments)]
pub async fn put_attachment(
    db: &Db,
    settings: &agilekit_kernel::files::Settings,
    actor: &Actor,
    p: &Principal,
    company: CompanyId,
    id: ApplicationId,
    code: &str,
    name: &str,
    content_type: &str,
    data: &[u8],
) -> Result<Application> {
    let r = draft_for_attachment(db, p, company, id, code).await?;
    let meta = agilekit_kernel::files::put(db, settings, r.org_id, Some(p.id()), name, content_type, data).await?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    if !store::hold_draft(&mut tx, id, now).await? {
        return Err(Error::Conflict("already-submitted"));
    }
    if !agilekit_kernel::files::mark_attached(&mut tx, r.org_id, Some(p.id()), meta.id, now).await? {
        return Err(Error::Internal("an uploaded file vanished".into()));
    }
    let old = store::unlink_attachment(&mut tx, id, code).await?;
    store::link_attachment(&mut tx, id, code, meta.id, r.org_id, now).await?;
    if let Some(old) = old {
        store::delete_file(&mut tx, r.org_id, old).await?;
    }
    sync_content(&mut tx, id, now).await?;
    audit::record(&mut tx, actor, Change { org: Some(r.org_id), action: "application.attach", entity: "grant_application", entity_id: id.to_string(),
        before: old.map(|f| json!({"code": code, "file": f})), after: Some(json!({"code": code, "file": meta.id, "name": meta.name, "size": meta.size, "sha256": meta.sha256})) })
        .await?;
    tx.commit().await?;
    get(db, p, company, id).await
}

/// Removes the draft's attachment `code` (404 when there is none).
pub async fn delete_attachment(db: &Db, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId, code: &str) -> Result<Application> {
    let r = draft_for_attachment(db, p, company, id, code).await?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    if !store::hold_draft(&mut tx, id, now).await? {
        return Err(Error::Conflict("already-submitted"));
    }
    let Some(old) = store::unlink_attachment(&mut tx, id, code).await? else { return Err(Error::NotFound) };
    store::delete_file(&mut tx, r.org_id, old).await?;
    sync_content(&mut tx, id, now).await?;
    audit::record(&mut tx, actor, Change { org: Some(r.org_id), action: "application.detach", entity: "grant_application", entity_id: id.to_string(),
        before: Some(json!({"code": code, "file": old})), after: None })
        .await?;
    tx.commit().await?;
    get(db, p, company, id).await
}

/// The bytes of an application's attachment `code`, for the company's representatives (any state).
pub async fn attachment(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId, code: &str) -> Result<(agilekit_kernel::files::FileMeta, Vec<u8>)> {
    company_ok(db, p, company).await?;
    let r = store::get_of(db, company, id).await?.ok_or(Error::NotFound)?;
    let file = store::attachment_file(db, id, code).await?.ok_or(Error::NotFound)?;
    agilekit_kernel::files::read(db, r.org_id, file).await?.ok_or(Error::NotFound)
}

/// The bytes of a submitted application's attachment `code`, for the call's administrators and evaluators.
pub async fn attachment_for_staff(db: &Db, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, code: &str) -> Result<(agilekit_kernel::files::FileMeta, Vec<u8>)> {
    if !p.is_member(org) || !(p.has(org, Role::OrgAdmin) || p.has(org, Role::Evaluator)) {
        return Err(Error::NotFound);
    }
    let r = store::get_many(db, &[id]).await?.into_iter().next().ok_or(Error::NotFound)?;
    if r.org_id != org || r.call_id != call || r.protocol.is_none() {
        return Err(Error::NotFound);
    }
    let file = store::attachment_file(db, id, code).await?.ok_or(Error::NotFound)?;
    agilekit_kernel::files::read(db, org, file).await?.ok_or(Error::NotFound)
}
