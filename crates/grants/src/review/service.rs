//! The review's steps. Each one runs in one transaction on the durable handle under the call's row lock (the lock
//! that guards the call's money, ADR 0008): it reads the stage, asks `model::next` whether the step is due and whose it
//! is, writes the new stage (compare-and-set on the stage read), appends to the history, audits before/after and
//! queues a mail to the company's PEC address (Italian, then English). Money that goes back to the call (an
//! inadmissible application, a grant below the amount held) is drawn by the overbooking list with
//! `applications::service::draw` in the same transaction.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, Result, clock, mail};
use serde::Serialize;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};

use super::model::{self, Action, Approval, Check, Line, Party, Stage};
use super::store::{self, AppRow, ReviewRow};
use crate::allocation::Pot;
use crate::applications::model::{ApplicationId, Draft};
use crate::applications::service as applications;
use crate::applications::store as app_store;
use crate::calls::model::{CallId, Category, Rules};
use crate::companies::model::CompanyId;
use crate::model::Cents;

/// A step of the review's history.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Event {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub party: Party,
    pub action: Action,
    /// The stage the step led to.
    pub stage: Stage,
    /// Who acted (the staff's view only).
    pub actor: Option<String>,
    /// What the step said: message and deadline, reasons, amounts, the report's lines.
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// An application's review as its reader (the call's staff or the company) sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub application_id: ApplicationId,
    pub call_id: CallId,
    pub call_title: String,
    pub org_id: OrgId,
    pub company_id: CompanyId,
    pub company_name: String,
    pub protocol: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<OffsetDateTime>,
    pub sha256: Option<String>,
    pub requested_cents: i64,
    /// `admitted`, `waiting` or none.
    pub place: Option<String>,
    /// The submitted draft (plan, expenses).
    pub draft: Draft,
    /// None: the application is not under review (it waits on the overbooking list, or was withdrawn).
    pub stage: Option<Stage>,
    /// The pending integration or corrections request, and its deadline (`YYYY-MM-DD`, Europe/Rome).
    pub request: Option<String>,
    pub deadline: Option<String>,
    /// The deadline has passed without an answer.
    pub overdue: bool,
    pub granted_cents: Option<i64>,
    pub act_number: Option<String>,
    pub act_date: Option<String>,
    pub report: Vec<Line>,
    pub approved_cents: Option<i64>,
    pub to_pay_cents: Option<i64>,
    /// The steps the reader may take now.
    pub steps: Vec<Action>,
    /// The call's expense categories (for the report's lines).
    pub categories: Vec<Category>,
    /// Files the company sent with its integrations and reports.
    pub files: Vec<super::files::ReviewFile>,
    pub history: Vec<Event>,
}

/// A granted application, for the call's open data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Granted {
    pub company_id: CompanyId,
    pub granted_cents: i64,
    pub decided_at: OffsetDateTime,
}

/// The call's granted applications (amount granted, the decision's instant), oldest decision first. Applications
/// withdrawn after the grant are left out.
pub async fn granted(db: &Db, call: CallId) -> Result<Vec<Granted>> {
    Ok(store::granted(db, call).await?.into_iter().map(|(company_id, granted_cents, decided_at)| Granted { company_id, granted_cents, decided_at }).collect())
}

/// The money an admitted application holds now: its grant once decided, else the amount it asked for. For
/// `applications::service::withdraw`, which must give back what is held (after a partial grant, less than asked).
pub async fn held(tx: &mut agilekit_kernel::db::Tx, app: ApplicationId, requested: Cents) -> Result<Cents> {
    Ok(store::get_tx(tx, app).await?.and_then(|r| r.granted_cents).map_or(requested, Cents))
}

fn today() -> Date {
    clock::to_rome(clock::now()).date()
}

fn rules_of(app: &AppRow) -> Result<Rules> {
    serde_json::from_str(&app.rules).map_err(|e| Error::Internal(format!("call rules: {e}")))
}

fn draft_of(app: &AppRow) -> Draft {
    serde_json::from_str::<Value>(&app.content).ok().and_then(|v| serde_json::from_value(v["draft"].clone()).ok()).unwrap_or_default()
}

/// The company's size as submitted (the grant rule reads it), else as it is now.
fn employees_of(app: &AppRow) -> u32 {
    let at_submission = serde_json::from_str::<Value>(&app.content).ok().and_then(|v| v["company"]["employees"].as_i64());
    u32::try_from(at_submission.unwrap_or(app.employees)).unwrap_or(0)
}

/// Whether an application without a review row enters it (its formal check is due): submitted and holding money. A
/// ranked call's applications will enter the same way once ranked and admitted.
fn enters(app: &AppRow) -> bool {
    app.state == "submitted" && app.place.as_deref() == Some("admitted")
}

fn stage_of(app: &AppRow, row: Option<&ReviewRow>) -> Option<Stage> {
    match row {
        Some(r) if app.state == "submitted" => Stage::parse(&r.stage),
        Some(_) => None,
        None if enters(app) => Some(Stage::Check),
        None => None,
    }
}

fn overdue(row: Option<&ReviewRow>) -> bool {
    row.and_then(|r| r.deadline).is_some_and(|d| today() > d)
}

fn new_row(app: &AppRow, now: OffsetDateTime) -> ReviewRow {
    ReviewRow {
        application_id: app.id,
        call_id: app.call_id,
        org_id: app.org_id,
        company_id: app.company_id,
        stage: Stage::Check.as_str().to_owned(),
        request: None,
        deadline: None,
        granted_cents: None,
        act_number: None,
        act_date: None,
        decided_at: None,
        report: None,
        reported_at: None,
        approved_cents: None,
        to_pay_cents: None,
        updated_at: now,
    }
}

async fn view(db: &Db, app: AppRow, party: Party) -> Result<Review> {
    let row = store::get(db, app.id).await?;
    let stage = stage_of(&app, row.as_ref());
    let late = overdue(row.as_ref());
    let steps = stage.map(|s| model::steps(s, party, late)).unwrap_or_default();
    let history = store::events(db, app.id)
        .await?
        .into_iter()
        .filter_map(|e| {
            Some(Event {
                at: e.at,
                party: if e.party == "staff" { Party::Staff } else { Party::Company },
                action: Action::parse(&e.action)?,
                stage: Stage::parse(&e.stage)?,
                actor: (party == Party::Staff).then_some(e.actor_name).flatten(),
                detail: serde_json::from_str(&e.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    let categories = rules_of(&app).map(|r| r.categories).unwrap_or_default();
    let files = super::files::list(db, app.id).await?;
    let draft = draft_of(&app);
    let r = row.unwrap_or_else(|| new_row(&app, clock::now()));
    let pending = matches!(stage, Some(Stage::Integration | Stage::Corrections));
    Ok(Review {
        application_id: app.id,
        call_id: app.call_id,
        call_title: app.call_title,
        org_id: app.org_id,
        company_id: app.company_id,
        company_name: app.company_name,
        protocol: app.protocol,
        submitted_at: app.submitted_at,
        sha256: app.sha256,
        requested_cents: app.requested_cents,
        place: app.place,
        draft,
        stage,
        request: if pending { r.request } else { None },
        deadline: if pending { r.deadline.map(|d| d.to_string()) } else { None },
        overdue: pending && late,
        granted_cents: r.granted_cents,
        act_number: r.act_number,
        act_date: r.act_date.map(|d| d.to_string()),
        report: r.report.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default(),
        approved_cents: r.approved_cents,
        to_pay_cents: r.to_pay_cents,
        steps,
        categories,
        files,
        history,
    })
}

/// The call's administrators and evaluators; anyone else of another organisation: 404, a member without the role: 403.
async fn staff_app(db: &Db, p: &Principal, org: OrgId, call: CallId, id: ApplicationId) -> Result<AppRow> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    if !(p.has(org, Role::OrgAdmin) || p.has(org, Role::Evaluator)) {
        return Err(Error::Forbidden);
    }
    store::app_in_call(db, org, call, id).await?.ok_or(Error::NotFound)
}

async fn company_app(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId) -> Result<AppRow> {
    applications::company_ok(db, p, company).await?;
    store::app_of_company(db, company, id).await?.ok_or(Error::NotFound)
}

pub async fn staff_view(db: &Db, p: &Principal, org: OrgId, call: CallId, id: ApplicationId) -> Result<Review> {
    let app = staff_app(db, p, org, call, id).await?;
    view(db, app, Party::Staff).await
}

pub async fn company_view(db: &Db, p: &Principal, company: CompanyId, id: ApplicationId) -> Result<Review> {
    let app = company_app(db, p, company, id).await?;
    view(db, app, Party::Company).await
}

/// A step under way: its transaction (holding the call's lock), the application and its review as read there.
struct Step {
    tx: agilekit_kernel::db::Tx,
    lock: app_store::CallLock,
    app: AppRow,
    row: ReviewRow,
    /// The stage as stored (None: no row yet).
    stored: Option<String>,
    stage: Stage,
    next: Stage,
    now: OffsetDateTime,
}

fn refused(r: model::Refused) -> Error {
    match r {
        model::Refused::WrongParty => Error::Forbidden,
        other => Error::Conflict(other.code()),
    }
}

async fn begin(durable: &Db, id: ApplicationId, action: Action, party: Party) -> Result<Step> {
    let mut tx = durable.begin().await?;
    let app = store::app_tx(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let lock = app_store::lock_call(&mut tx, app.call_id).await?.ok_or(Error::NotFound)?;
    let row = store::get_tx(&mut tx, id).await?;
    let Some(stage) = stage_of(&app, row.as_ref()) else { return Err(Error::Conflict("not-under-review")) };
    let next = model::next(stage, action, party, overdue(row.as_ref())).map_err(refused)?;
    let now = clock::now();
    let stored = row.as_ref().map(|r| r.stage.clone());
    let row = row.unwrap_or_else(|| new_row(&app, now));
    Ok(Step { tx, lock, app, row, stored, stage, next, now })
}

/// What a step tells the company: the subject's start, then the body in Italian and in English.
struct Notice {
    subject: &'static str,
    it: String,
    en: String,
}

async fn finish(mut s: Step, actor: &Actor, party: Party, action: Action, detail: Value, notice: Notice, public_url: &str) -> Result<()> {
    s.row.stage = s.next.as_str().to_owned();
    s.row.updated_at = s.now;
    if !store::save(&mut s.tx, &s.row, s.stored.as_deref()).await? {
        return Err(Error::Conflict("step-not-due"));
    }
    let party_str = if party == Party::Staff { "staff" } else { "company" };
    let detail_s = serde_json::to_string(&detail).unwrap_or_default();
    store::add_event(&mut s.tx, s.app.id, s.app.org_id, s.now, actor.account, party_str, action.as_str(), s.next.as_str(), &detail_s).await?;
    audit::record(
        &mut s.tx,
        actor,
        Change {
            org: Some(s.app.org_id),
            action: &format!("review.{}", action.as_str()),
            entity: "grant_application",
            entity_id: s.app.id.to_string(),
            before: Some(json!({"stage": s.stage})),
            after: Some(json!({"stage": s.next, "detail": detail})),
        },
    )
    .await?;
    let link = format!("{}/companies/{}/applications/{}/review", public_url.trim_end_matches('/'), s.app.company_id, s.app.id);
    let text = format!(
        "{it}\n\nBando: {call}\nImpresa: {company}\nProtocollo n. {protocol}\n\n---\n\n{en}\n\nCall: {call}\nCompany: {company}\nProtocol no. {protocol}\n\n{link}\n",
        it = notice.it,
        en = notice.en,
        call = s.app.call_title,
        company = s.app.company_name,
        protocol = s.app.protocol.unwrap_or(0),
    );
    mail::queue(&mut s.tx, Some(s.app.org_id), &mail::Mail { to: s.app.pec.clone(), subject: format!("{} — {}", notice.subject, s.app.call_title), text }).await?;
    s.tx.commit().await?;
    Ok(())
}

/// Money the application gives back to the call: released, then the overbooking list drawn, in the step's
/// transaction under the call's lock. Returns how many were admitted.
async fn give_back(s: &mut Step, actor: &Actor, amount: Cents) -> Result<usize> {
    let mut pot = Pot { budget: Cents(s.lock.budget_cents), committed: Cents(s.lock.committed_cents) };
    pot.release(amount);
    applications::draw(&mut s.tx, actor, &mut s.lock, pot, s.now).await
}

/// The formal check: admissible, an integration request, or inadmissible (the money goes back to the call).
#[allow(clippy::too_many_arguments)]
pub async fn check(db: &Db, durable: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, input: &model::CheckInput, public_url: &str) -> Result<Review> {
    staff_app(db, p, org, call, id).await?;
    let c = model::parse_check(input, today()).map_err(Error::Invalid)?;
    let action = c.action();
    let mut s = begin(durable, id, action, Party::Staff).await?;
    let (detail, notice) = match c {
        Check::Admissible => {
            s.row.request = None;
            s.row.deadline = None;
            (json!({}), Notice {
                subject: "Verifica formale: domanda ammissibile",
                it: "La verifica formale si è conclusa: la domanda è ammissibile. Segue il provvedimento di concessione.".into(),
                en: "The formal check is complete: the application is admissible. The grant decision follows.".into(),
            })
        }
        Check::Integration { message, deadline } => {
            s.row.request = Some(message.clone());
            s.row.deadline = Some(deadline);
            let notice = Notice {
                subject: "Richiesta di integrazione",
                it: format!("Per completare la verifica formale è richiesta un'integrazione entro il {deadline}:\n\n{message}"),
                en: format!("To complete the formal check, please send an integration by {deadline}:\n\n{message}"),
            };
            (json!({"message": message, "deadline": deadline.to_string()}), notice)
        }
        Check::Inadmissible { reasons } => {
            let held = if s.app.place.as_deref() == Some("admitted") { Cents(s.row.granted_cents.unwrap_or(s.app.requested_cents)) } else { Cents::ZERO };
            app_store::set_place(&mut s.tx, id, None, s.now).await?;
            let drawn = give_back(&mut s, actor, held).await?;
            s.row.request = None;
            s.row.deadline = None;
            let notice = Notice {
                subject: "Domanda non ammissibile",
                it: format!("La domanda non è ammissibile per i seguenti motivi:\n\n{reasons}"),
                en: format!("The application is not admissible, for these reasons:\n\n{reasons}"),
            };
            (json!({"reasons": reasons, "released_cents": held.0, "drawn": drawn}), notice)
        }
    };
    finish(s, actor, Party::Staff, action, detail, notice, public_url).await?;
    staff_view(db, p, org, call, id).await
}

/// The company's answer to an integration request: the formal check goes on.
#[allow(clippy::too_many_arguments)]
pub async fn answer(db: &Db, durable: &Db, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId, input: &model::AnswerInput, public_url: &str) -> Result<Review> {
    company_app(db, p, company, id).await?;
    let text = model::parse_answer(input).map_err(Error::Invalid)?;
    let mut s = begin(durable, id, Action::Answer, Party::Company).await?;
    let asked = s.row.request.take();
    s.row.deadline = None;
    let notice = Notice {
        subject: "Integrazione ricevuta",
        it: "Abbiamo ricevuto l'integrazione: la verifica formale prosegue.".into(),
        en: "We received the integration: the formal check goes on.".into(),
    };
    finish(s, actor, Party::Company, Action::Answer, json!({"text": text, "request": asked}), notice, public_url).await?;
    company_view(db, p, company, id).await
}

/// The grant decision: the amount granted (at most the amount requested; what is not granted goes back to the
/// call), the act's number and date.
#[allow(clippy::too_many_arguments)]
pub async fn grant(db: &Db, durable: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, input: &model::GrantInput, public_url: &str) -> Result<Review> {
    let app = staff_app(db, p, org, call, id).await?;
    let g = model::parse_grant(input, Cents(app.requested_cents), today()).map_err(Error::Invalid)?;
    let mut s = begin(durable, id, Action::Grant, Party::Staff).await?;
    let held = Cents(s.app.requested_cents);
    let released = held - g.amount;
    let drawn = if released.0 > 0 { give_back(&mut s, actor, released).await? } else { 0 };
    s.row.granted_cents = Some(g.amount.0);
    s.row.act_number = Some(g.act_number.clone());
    s.row.act_date = Some(g.act_date);
    s.row.decided_at = Some(s.now);
    let notice = Notice {
        subject: "Contributo concesso",
        it: format!("Con l'atto n. {} del {} è concesso un contributo di {}. Potete ora presentare la rendicontazione delle spese.", g.act_number, g.act_date, g.amount),
        en: format!("By act no. {} of {} a grant of {} is awarded. You may now submit the expense report.", g.act_number, g.act_date, g.amount),
    };
    let detail = json!({"granted_cents": g.amount.0, "act_number": g.act_number, "act_date": g.act_date.to_string(), "released_cents": released.0, "drawn": drawn});
    finish(s, actor, Party::Staff, Action::Grant, detail, notice, public_url).await?;
    staff_view(db, p, org, call, id).await
}

/// The company's expense report (again only when the staff asked for corrections).
#[allow(clippy::too_many_arguments)]
pub async fn report(db: &Db, durable: &Db, actor: &Actor, p: &Principal, company: CompanyId, id: ApplicationId, input: &model::ReportInput, public_url: &str) -> Result<Review> {
    let app = company_app(db, p, company, id).await?;
    let categories: Vec<String> = rules_of(&app)?.categories.into_iter().map(|c| c.code).collect();
    let lines = model::parse_report(input, &categories).map_err(Error::Invalid)?;
    let mut s = begin(durable, id, Action::Report, Party::Company).await?;
    let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
    s.row.report = Some(serde_json::to_string(&lines).unwrap_or_default());
    s.row.reported_at = Some(s.now);
    s.row.request = None;
    s.row.deadline = None;
    let notice = Notice {
        subject: "Rendicontazione ricevuta",
        it: format!("Abbiamo ricevuto la rendicontazione: {} righe di spesa per {}. Seguirà l'esito dell'istruttoria.", lines.len(), Cents(total)),
        en: format!("We received the expense report: {} lines for {}. The outcome of the review will follow.", lines.len(), Cents(total)),
    };
    finish(s, actor, Party::Company, Action::Report, json!({"lines": lines, "total_cents": total}), notice, public_url).await?;
    company_view(db, p, company, id).await
}

/// The report's approval (each line's eligible amount; the amount to pay), a request for corrections, or its
/// rejection.
#[allow(clippy::too_many_arguments)]
pub async fn approval(db: &Db, durable: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, input: &model::ApprovalInput, public_url: &str) -> Result<Review> {
    staff_app(db, p, org, call, id).await?;
    let lines: Vec<Line> = store::get(db, id).await?.and_then(|r| r.report).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    // Parsed against the report as read now; the step re-reads it under the lock and refuses if it changed.
    let a = model::parse_approval(input, &lines, today()).map_err(Error::Invalid)?;
    let action = a.action();
    let mut s = begin(durable, id, action, Party::Staff).await?;
    let now_lines: Vec<Line> = s.row.report.as_deref().and_then(|x| serde_json::from_str(x).ok()).unwrap_or_default();
    if now_lines != lines {
        return Err(Error::Conflict("step-not-due"));
    }
    let (detail, notice) = match a {
        Approval::Approve { eligible } => {
            let mut lines = lines;
            for (l, e) in lines.iter_mut().zip(&eligible) {
                l.eligible_cents = Some(e.0);
            }
            let approved: Cents = eligible.iter().copied().sum();
            let granted = Cents(s.row.granted_cents.unwrap_or(0));
            let rule = rules_of(&s.app)?.grant_rule;
            let pay = model::to_pay(&rule, employees_of(&s.app), granted, approved);
            s.row.report = Some(serde_json::to_string(&lines).unwrap_or_default());
            s.row.approved_cents = Some(approved.0);
            s.row.to_pay_cents = Some(pay.0);
            let notice = Notice {
                subject: "Rendicontazione approvata",
                it: format!("La rendicontazione è approvata: spese ammesse {approved}; importo da liquidare {pay}."),
                en: format!("The expense report is approved: eligible expenses {approved}; amount to pay {pay}."),
            };
            (json!({"eligible_cents": eligible.iter().map(|c| c.0).collect::<Vec<_>>(), "approved_cents": approved.0, "to_pay_cents": pay.0}), notice)
        }
        Approval::Corrections { message, deadline } => {
            s.row.request = Some(message.clone());
            s.row.deadline = Some(deadline);
            let notice = Notice {
                subject: "Richiesta di integrazione della rendicontazione",
                it: format!("La rendicontazione va corretta entro il {deadline}:\n\n{message}"),
                en: format!("Please correct the expense report by {deadline}:\n\n{message}"),
            };
            (json!({"message": message, "deadline": deadline.to_string()}), notice)
        }
        Approval::Reject { reasons } => {
            s.row.to_pay_cents = Some(0);
            let notice = Notice {
                subject: "Rendicontazione respinta",
                it: format!("La rendicontazione è respinta per i seguenti motivi:\n\n{reasons}"),
                en: format!("The expense report is rejected, for these reasons:\n\n{reasons}"),
            };
            (json!({"reasons": reasons}), notice)
        }
    };
    finish(s, actor, Party::Staff, action, detail, notice, public_url).await?;
    staff_view(db, p, org, call, id).await
}
