//! The graduatoria's steps. Evaluators (the organisation's `Evaluator`s and `OrgAdmin`s) work once the call has
//! closed: per application they first declare a conflict of interest or none (audited, immutable but for "no
//! conflict" becoming a conflict, which removes their scores), then score the grid. The administrators read the
//! provisional ranking and publish it: in one transaction on the durable handle under the call's row lock, the
//! positions are stored, money goes down the ranking (`model::publish`), places are set, the counters saved, each
//! company mailed at its PEC address and the whole audited. Declarations and scores take the same lock, so none
//! slips in beside a publication; after it everything here is read-only.

use std::collections::HashMap;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, Result, clock, mail};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::model::{self, DeclarationInput, Score, ScoresInput, Sheet, Tally};
use super::store::{self, AppLine};
use crate::allocation::Pot;
use crate::applications::model::{ApplicationId, Draft};
use crate::applications::store as app_store;
use crate::calls::model::{CallId, Criterion, Phase, Rules};
use crate::calls::store::{self as calls, CallRow};
use crate::companies::model::CompanyId;
use crate::model::Cents;

/// An evaluator's declaration about an application.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Declaration {
    pub conflict: bool,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub declared_at: OffsetDateTime,
}

/// An application as the evaluator's list shows it (all a conflicted evaluator sees of it).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub application_id: ApplicationId,
    pub protocol: i64,
    pub company_name: String,
    pub requested_cents: i64,
    /// The reader's own declaration, if any.
    pub declaration: Option<Declaration>,
    /// The reader has scored it.
    pub scored: bool,
}

/// The evaluator's view of a ranked call.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub call_id: CallId,
    pub call_title: String,
    /// Evaluation starts when the call closes (no application is listed before).
    pub closed: bool,
    /// The ranking is published: nothing changes any more.
    pub published: bool,
    /// The reader administers the call (reads and publishes the ranking).
    pub admin: bool,
    pub criteria: Vec<Criterion>,
    pub lines: Vec<Line>,
}

/// An application as an evaluator who declared no conflict reads and scores it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Scoring {
    pub line: Line,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<OffsetDateTime>,
    /// The submitted draft; none until the evaluator has declared no conflict.
    pub draft: Option<Draft>,
    pub criteria: Vec<Criterion>,
    /// The reader's own scores (empty until scored).
    pub scores: Vec<Score>,
    pub published: bool,
}

/// A criterion's score in the ranking: the mean of the evaluators' points in hundredths of a point.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CriterionScore {
    pub code: String,
    pub score: i64,
}

/// A line of the ranking.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RankedLine {
    pub position: i64,
    pub application_id: ApplicationId,
    pub protocol: i64,
    pub company_id: CompanyId,
    pub company_name: String,
    pub requested_cents: i64,
    /// Total score, in hundredths of a point (the sum of the criteria's means).
    pub score: i64,
    pub criteria: Vec<CriterionScore>,
    /// How many evaluators scored it.
    pub evaluators: usize,
    /// Provisional: where publication would place it now; published: where it stands now (`admitted`, `waiting`;
    /// none once withdrawn or found inadmissible).
    pub place: Option<String>,
}

/// A submitted application that nobody has scored yet.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Unscored {
    pub application_id: ApplicationId,
    pub protocol: i64,
    pub company_name: String,
}

/// The call's ranking, provisional or published.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Ranking {
    pub call_id: CallId,
    pub call_title: String,
    pub closed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
    pub budget_cents: i64,
    pub committed_cents: i64,
    pub criteria: Vec<Criterion>,
    pub tie_breaks: Vec<String>,
    pub lines: Vec<RankedLine>,
    pub unscored: Vec<Unscored>,
    /// Publication is possible now (closed, not published, everything scored, something to rank).
    pub can_publish: bool,
}

/// A line of the published ranking, for the open data list `ranked`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Published {
    pub rank: i64,
    pub company_id: CompanyId,
    /// Total score in hundredths of a point.
    pub score: i64,
    pub amount_cents: i64,
    /// Where it stands now: `admitted`, `waiting`, or none (withdrawn, inadmissible).
    pub place: Option<String>,
}

/// A ranked call as the evaluators' index lists it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CallLine {
    pub call_id: CallId,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub closes_at: OffsetDateTime,
    pub closed: bool,
    pub published: bool,
}

/// The organisation's published ranked calls, latest first, for its evaluators and administrators.
pub async fn calls(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<CallLine>> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    if !(p.has(org, Role::OrgAdmin) || p.has(org, Role::Evaluator)) {
        return Err(Error::Forbidden);
    }
    let now = clock::now();
    let mut out = Vec::new();
    for c in calls::list_in(db, org).await?.into_iter().filter(|c| c.mode == "graduatoria" && c.published_at.is_some()) {
        let published = store::published_at(db, c.id).await?.is_some();
        let closed = crate::calls::model::phase(true, c.opens_at, c.closes_at, now) == Phase::Closed;
        out.push(CallLine { call_id: c.id, title: c.title, closes_at: c.closes_at, closed, published });
    }
    Ok(out)
}

struct Access {
    call: CallRow,
    rules: Rules,
    admin: bool,
}

impl Access {
    fn closed(&self) -> bool {
        crate::calls::model::phase(self.call.published_at.is_some(), self.call.opens_at, self.call.closes_at, clock::now()) == Phase::Closed
    }
}

/// The call's evaluators and administrators: not a member 404, a member without the role 403; a call that is not a
/// published ranked call of `org`: 404.
async fn access(db: &Db, p: &Principal, org: OrgId, call: CallId) -> Result<Access> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    let admin = p.has(org, Role::OrgAdmin);
    if !(admin || p.has(org, Role::Evaluator)) {
        return Err(Error::Forbidden);
    }
    let c = calls::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    if c.mode != "graduatoria" || c.published_at.is_none() {
        return Err(Error::NotFound);
    }
    let rules: Rules = serde_json::from_str(&c.rules).map_err(|e| Error::Internal(format!("call rules: {e}")))?;
    Ok(Access { call: c, rules, admin })
}

async fn admin_access(db: &Db, p: &Principal, org: OrgId, call: CallId) -> Result<Access> {
    let a = access(db, p, org, call).await?;
    if !a.admin {
        return Err(Error::Forbidden);
    }
    Ok(a)
}

fn declaration_of(d: &store::DeclarationRow) -> Declaration {
    Declaration { conflict: d.conflict, reason: d.reason.clone(), declared_at: d.declared_at }
}

fn line_of(a: &AppLine, d: Option<&store::DeclarationRow>, scored: bool) -> Line {
    Line { application_id: a.id, protocol: a.protocol, company_name: a.company_name.clone(), requested_cents: a.requested_cents, declaration: d.map(declaration_of), scored }
}

/// The evaluator's list: every live submission once the call has closed, with the reader's declarations.
pub async fn evaluation(db: &Db, p: &Principal, org: OrgId, call: CallId) -> Result<Evaluation> {
    let a = access(db, p, org, call).await?;
    let closed = a.closed();
    let mut lines = Vec::new();
    if closed {
        let decl: HashMap<ApplicationId, store::DeclarationRow> = store::declarations_of(db, call, p.id()).await?.into_iter().map(|d| (d.application_id, d)).collect();
        let scores = store::scores(db, call).await?;
        for s in store::submissions(db, call).await? {
            let scored = scores.iter().any(|x| x.application_id == s.id && x.evaluator_id == p.id());
            lines.push(line_of(&s, decl.get(&s.id), scored));
        }
    }
    let published = store::published_at(db, call).await?.is_some();
    Ok(Evaluation { call_id: call, call_title: a.call.title, closed, published, admin: a.admin, criteria: a.rules.criteria, lines })
}

fn draft_of(content: &str) -> Draft {
    serde_json::from_str::<serde_json::Value>(content).ok().and_then(|v| serde_json::from_value(v["draft"].clone()).ok()).unwrap_or_default()
}

/// One application for the evaluator: its content only after a "no conflict" declaration; with a conflict, 404
/// (the list line is all the evaluator sees). Before the call closes: 409 `call-not-closed`.
pub async fn sheet(db: &Db, p: &Principal, org: OrgId, call: CallId, id: ApplicationId) -> Result<Scoring> {
    let a = access(db, p, org, call).await?;
    if !a.closed() {
        return Err(Error::Conflict("call-not-closed"));
    }
    let s = store::submission(db, call, id).await?.ok_or(Error::NotFound)?;
    let decl = store::declarations_of(db, call, p.id()).await?.into_iter().find(|d| d.application_id == id);
    if decl.as_ref().is_some_and(|d| d.conflict) {
        return Err(Error::NotFound);
    }
    let mine: Vec<Score> = store::scores(db, call)
        .await?
        .into_iter()
        .filter(|x| x.application_id == id && x.evaluator_id == p.id())
        .map(|x| Score { criterion: x.criterion, points: x.points, note: x.note })
        .collect();
    let mut scores = Vec::new();
    for c in &a.rules.criteria {
        scores.extend(mine.iter().find(|s| s.criterion == c.code).cloned());
    }
    let draft = decl.is_some().then(|| draft_of(&s.content));
    let published = store::published_at(db, call).await?.is_some();
    Ok(Scoring { line: line_of(&s, decl.as_ref(), !scores.is_empty()), submitted_at: s.submitted_at, draft, criteria: a.rules.criteria, scores, published })
}

/// The checks every change makes, in its transaction under the call's lock: the call closed, the ranking not
/// published, the application a live submission of the call.
async fn changeable(tx: &mut agilekit_kernel::db::Tx, a: &Access, call: CallId, id: ApplicationId) -> Result<AppLine> {
    if !a.closed() {
        return Err(Error::Conflict("call-not-closed"));
    }
    app_store::lock_call(tx, call).await?.ok_or(Error::NotFound)?;
    if store::published_at_tx(tx, call).await?.is_some() {
        return Err(Error::Conflict("ranking-published"));
    }
    store::submission_tx(tx, call, id).await?.ok_or(Error::NotFound)
}

/// Declares no conflict of interest, or a conflict with its reason. A declaration is final (409 `declaration-final`,
/// `already-declared`), except that "no conflict" may become a conflict: the evaluator's scores of the application
/// are then removed, audited.
pub async fn declare(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, input: &DeclarationInput) -> Result<Scoring> {
    let a = access(db, p, org, call).await?;
    let mut tx = db.begin().await?;
    changeable(&mut tx, &a, call, id).await?;
    let reason = input.validate().map_err(Error::Invalid)?;
    let now = clock::now();
    match store::declaration_tx(&mut tx, id, p.id()).await? {
        None => {
            store::insert_declaration(&mut tx, id, p.id(), call, org, input.conflict, reason.as_deref(), now).await?;
            audit::record(&mut tx, actor, Change { org: Some(org), action: "evaluation.declare", entity: "grant_application", entity_id: id.to_string(), before: None,
                after: Some(json!({"evaluator": p.id(), "conflict": input.conflict, "reason": reason})) }).await?;
        }
        Some(d) if d.conflict => return Err(Error::Conflict("declaration-final")),
        Some(_) if !input.conflict => return Err(Error::Conflict("already-declared")),
        Some(d) => {
            let reason = reason.unwrap_or_default();
            if !store::to_conflict(&mut tx, id, p.id(), &reason, now).await? {
                return Err(Error::Conflict("declaration-final"));
            }
            let removed = store::delete_scores(&mut tx, id, p.id()).await?;
            let removed: Vec<_> = removed.iter().map(|s| json!({"criterion": s.criterion, "points": s.points, "note": s.note})).collect();
            audit::record(&mut tx, actor, Change { org: Some(org), action: "evaluation.conflict", entity: "grant_application", entity_id: id.to_string(),
                before: Some(json!({"evaluator": p.id(), "conflict": false, "declared_at": d.declared_at.to_string(), "scores": removed})),
                after: Some(json!({"evaluator": p.id(), "conflict": true, "reason": reason, "scores": []})) }).await?;
        }
    }
    tx.commit().await?;
    if input.conflict {
        // The conflicted evaluator sees no more than the list line.
        let s = store::submission(db, call, id).await?.ok_or(Error::NotFound)?;
        let d = store::declarations_of(db, call, p.id()).await?.into_iter().find(|d| d.application_id == id);
        return Ok(Scoring { line: line_of(&s, d.as_ref(), false), submitted_at: None, draft: None, criteria: a.rules.criteria, scores: Vec::new(), published: false });
    }
    sheet(db, p, org, call, id).await
}

/// Scores every criterion of the grid (replacing the evaluator's earlier scores of the application). Needs a "no
/// conflict" declaration: none 409 `declaration-required`, a conflict 403.
pub async fn score(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, id: ApplicationId, input: &ScoresInput) -> Result<Scoring> {
    let a = access(db, p, org, call).await?;
    let mut tx = db.begin().await?;
    changeable(&mut tx, &a, call, id).await?;
    match store::declaration_tx(&mut tx, id, p.id()).await? {
        None => return Err(Error::Conflict("declaration-required")),
        Some(d) if d.conflict => return Err(Error::Forbidden),
        Some(_) => {}
    }
    let scores = input.validate(&a.rules.criteria).map_err(Error::Invalid)?;
    let now = clock::now();
    let old = store::delete_scores(&mut tx, id, p.id()).await?;
    for s in &scores {
        store::insert_score(&mut tx, id, p.id(), call, &s.criterion, s.points, &s.note, now).await?;
    }
    let before = (!old.is_empty()).then(|| json!({"evaluator": p.id(), "scores": old.iter().map(|s| json!({"criterion": s.criterion, "points": s.points, "note": s.note})).collect::<Vec<_>>()}));
    audit::record(&mut tx, actor, Change { org: Some(org), action: "evaluation.score", entity: "grant_application", entity_id: id.to_string(), before,
        after: Some(json!({"evaluator": p.id(), "scores": scores})) }).await?;
    tx.commit().await?;
    sheet(db, p, org, call, id).await
}

fn sheets(subs: &[AppLine], scores: &[store::ScoreRow]) -> Vec<Sheet<ApplicationId>> {
    subs.iter()
        .map(|s| Sheet {
            key: s.id,
            protocol: s.protocol,
            points: scores.iter().filter(|x| x.application_id == s.id).map(|x| (x.evaluator_id.to_string(), x.criterion.clone(), x.points)).collect(),
        })
        .collect()
}

fn criteria_of(t: &Tally<ApplicationId>) -> Vec<CriterionScore> {
    t.criteria.iter().map(|(code, score)| CriterionScore { code: code.clone(), score: *score }).collect()
}

/// The ranking for the call's administrators: provisional (computed from the scores of now, with where publication
/// would place each application) until published, then as published with each application's place of now.
pub async fn ranking(db: &Db, p: &Principal, org: OrgId, call: CallId) -> Result<Ranking> {
    let a = admin_access(db, p, org, call).await?;
    let closed = a.closed();
    let published_at = store::published_at(db, call).await?;
    let subs = store::submissions(db, call).await?;
    let scores = store::scores(db, call).await?;
    let (tallies, unscored) = model::ranking(&a.rules.criteria, &a.rules.tie_breaks, &sheets(&subs, &scores));
    let by_id: HashMap<ApplicationId, &AppLine> = subs.iter().map(|s| (s.id, s)).collect();
    let mut lines = Vec::new();
    if published_at.is_some() {
        let t: HashMap<ApplicationId, &Tally<ApplicationId>> = tallies.iter().map(|t| (t.key, t)).collect();
        for e in store::entries(db, call).await? {
            let tally = t.get(&e.application_id);
            lines.push(RankedLine {
                position: e.position,
                application_id: e.application_id,
                protocol: e.protocol,
                company_id: e.company_id,
                company_name: e.company_name,
                requested_cents: e.amount_cents,
                score: e.score,
                criteria: tally.map(|t| criteria_of(t)).unwrap_or_default(),
                evaluators: tally.map_or(0, |t| t.evaluators),
                place: if e.state == "submitted" { e.place } else { None },
            });
        }
    } else if closed {
        let mut pot = Pot { budget: Cents(a.call.budget_cents), committed: Cents(a.call.committed_cents) };
        let amounts: Vec<Cents> = tallies.iter().map(|t| Cents(by_id[&t.key].requested_cents)).collect();
        let admitted = model::publish(&mut pot, &amounts);
        for (i, t) in tallies.iter().enumerate() {
            let s = by_id[&t.key];
            lines.push(RankedLine {
                position: i as i64 + 1,
                application_id: s.id,
                protocol: s.protocol,
                company_id: s.company_id,
                company_name: s.company_name.clone(),
                requested_cents: s.requested_cents,
                score: t.total,
                criteria: criteria_of(t),
                evaluators: t.evaluators,
                place: Some(if i < admitted { "admitted" } else { "waiting" }.to_owned()),
            });
        }
    }
    let unscored: Vec<Unscored> = if closed && published_at.is_none() {
        unscored.iter().map(|id| by_id[id]).map(|s| Unscored { application_id: s.id, protocol: s.protocol, company_name: s.company_name.clone() }).collect()
    } else {
        Vec::new()
    };
    let can_publish = closed && published_at.is_none() && unscored.is_empty() && !lines.is_empty();
    let committed = calls::get_in(db, org, call).await?.map_or(a.call.committed_cents, |c| c.committed_cents);
    Ok(Ranking { call_id: call, call_title: a.call.title, closed, published_at, budget_cents: a.call.budget_cents, committed_cents: committed, criteria: a.rules.criteria, tie_breaks: a.rules.tie_breaks, lines, unscored, can_publish })
}

/// Publishes the ranking (see the module's comment). 409: `call-not-closed`, `ranking-published`,
/// `unscored-applications` (every live submission needs at least one evaluator's scores), `nothing-to-rank`.
pub async fn publish(db: &Db, durable: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId) -> Result<Ranking> {
    let a = admin_access(db, p, org, call).await?;
    if !a.closed() {
        return Err(Error::Conflict("call-not-closed"));
    }
    let mut tx = durable.begin().await?;
    let mut lock = app_store::lock_call(&mut tx, call).await?.ok_or(Error::NotFound)?;
    if store::published_at_tx(&mut tx, call).await?.is_some() {
        return Err(Error::Conflict("ranking-published"));
    }
    let subs = store::submissions_tx(&mut tx, call).await?;
    let scores = store::scores_tx(&mut tx, call).await?;
    let (tallies, unscored) = model::ranking(&a.rules.criteria, &a.rules.tie_breaks, &sheets(&subs, &scores));
    if !unscored.is_empty() {
        return Err(Error::Conflict("unscored-applications"));
    }
    if tallies.is_empty() {
        return Err(Error::Conflict("nothing-to-rank"));
    }
    let by_id: HashMap<ApplicationId, &AppLine> = subs.iter().map(|s| (s.id, s)).collect();
    let now = clock::now();
    let mut pot = Pot { budget: Cents(lock.budget_cents), committed: Cents(lock.committed_cents) };
    let amounts: Vec<Cents> = tallies.iter().map(|t| Cents(by_id[&t.key].requested_cents)).collect();
    let admitted = model::publish(&mut pot, &amounts);
    store::insert_ranking(&mut tx, call, org, now, p.id()).await?;
    let mut audited = Vec::new();
    for (i, t) in tallies.iter().enumerate() {
        let s = by_id[&t.key];
        let position = i as i64 + 1;
        let place = if i < admitted { "admitted" } else { "waiting" };
        app_store::set_place(&mut tx, s.id, Some(place), now).await?;
        store::insert_entry(&mut tx, s.id, call, s.company_id, position, t.total, s.requested_cents, place).await?;
        audited.push(json!({"position": position, "application": s.id, "protocol": s.protocol, "score": t.total, "amount_cents": s.requested_cents, "place": place}));
        mail::queue(&mut tx, Some(org), &publication_mail(&lock.title, s, position, t.total, place)).await?;
    }
    lock.committed_cents = pot.committed.0;
    app_store::save_call_counters(&mut tx, &lock).await?;
    audit::record(&mut tx, actor, Change { org: Some(org), action: "ranking.publish", entity: "grant_call", entity_id: call.to_string(),
        before: Some(json!({"committed_cents": a.call.committed_cents})),
        after: Some(json!({"committed_cents": pot.committed.0, "budget_cents": pot.budget.0, "admitted": admitted, "entries": audited})) }).await?;
    tx.commit().await?;
    ranking(db, p, org, call).await
}

fn publication_mail(title: &str, s: &AppLine, position: i64, score: i64, place: &str) -> mail::Mail {
    let points = model::points_text(score);
    let amount = Cents(s.requested_cents);
    let (subject, it, en) = if place == "admitted" {
        (
            format!("Graduatoria pubblicata: domanda finanziata — {title}"),
            format!("La domanda è finanziata per {amount}."),
            format!("The application is funded with {amount}."),
        )
    } else {
        (
            format!("Graduatoria pubblicata: domanda ammissibile non finanziata — {title}"),
            "La domanda è ammissibile ma non finanziata con le risorse disponibili: attende lo scorrimento della graduatoria.".to_owned(),
            "The application is eligible but not funded with the money available: it waits for money to come back.".to_owned(),
        )
    };
    mail::Mail {
        to: s.pec.clone(),
        subject,
        text: format!(
            "La graduatoria del bando è pubblicata.\nProtocollo n. {p}: posizione {position}, punteggio {points}.\n{it}\n\n\
             The ranking of the call is published.\nProtocol no. {p}: position {position}, score {points}.\n{en}\n\nBando / Call: {title}\n",
            p = s.protocol
        ),
    }
}

/// The published ranking of `call` (empty before publication), for the open data list `ranked`: rank, company,
/// score (hundredths of a point), amount, and the place of now.
pub async fn published(db: &Db, call: CallId) -> Result<Vec<Published>> {
    Ok(store::entries(db, call)
        .await?
        .into_iter()
        .map(|e| Published { rank: e.position, company_id: e.company_id, score: e.score, amount_cents: e.amount_cents, place: if e.state == "submitted" { e.place } else { None } })
        .collect())
}
