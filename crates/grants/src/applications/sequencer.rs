//! The click day's sequencer (ADR 0008): one task per node takes the submissions queued by the request handlers and
//! commits them in batches, each batch one transaction under the call's row lock, in arrival order. A submission is
//! answered only after its batch has committed on the durable handle ([`Db::durable`]), so an acknowledged receipt
//! is stored; protocol numbers come from the call's row, so they are gap-free and strictly increasing across nodes.
//! The queue is bounded: when it is full the request is refused at once with 429 and Retry-After.

use std::collections::HashMap;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::db::{DbError, DbResult, Tx};
use agilekit_kernel::{Db, Error, Result, clock, mail};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::sync::{mpsc, oneshot};

use super::model::{self, ApplicationId, Draft, State, Submitted};
use super::service::{Receipt, receipt_of};
use super::store::{self, CallLock, Submission};
use crate::allocation::{Place, Pot};
use crate::calls::model::{CallId, Mode, Rules};
use crate::companies::model::CompanyId;
use crate::companies::store as companies;
use crate::model::{AidReceived, Cents, DE_MINIMIS_CEILING, de_minimis};

/// The most submissions one transaction takes.
pub const MAX_BATCH: usize = 512;
/// How many submissions may wait for the sequencer before requests are refused with 429.
pub const DEFAULT_QUEUE: usize = 4_096;

/// A submission as the handler hands it over (ownership of the company already checked).
pub struct Job {
    pub company: CompanyId,
    pub application: ApplicationId,
    pub key: String,
    pub actor: Actor,
    /// Where the receipt mail links to.
    pub public_url: String,
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Receipt>>,
}

/// This node's sequencer. Cheap to clone.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Queued>,
}

impl Sequencer {
    /// Starts the sequencer's task on `durable` (a handle from [`Db::durable`]). The task ends when every
    /// [`Sequencer`] is dropped.
    pub fn start(durable: Db, queue: usize) -> Sequencer {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(durable, rx));
        Sequencer { tx }
    }

    /// Submits an application and waits for its receipt (or its refusal).
    pub async fn submit(&self, job: Job) -> Result<Receipt> {
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Queued { job, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(Error::Throttled { retry_after_secs: 1 }),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Internal("the sequencer has stopped".into())),
        }
        answer.await.map_err(|_| Error::Internal("the sequencer dropped a submission".into()))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<Job>, Vec<oneshot::Sender<Result<Receipt>>>) = batch.into_iter().map(|q| (q.job, q.reply)).unzip();
        match process(&db, &jobs).await {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                // The batch as a whole failed (nothing of it committed): each on its own, so one cannot sink the rest.
                tracing::warn!(error = %e, size = jobs.len(), "a submission batch failed; retrying one by one");
                for (job, reply) in jobs.iter().zip(replies) {
                    let r = match process(&db, std::slice::from_ref(job)).await {
                        Ok(mut v) => v.pop().unwrap_or_else(|| Err(Error::Internal("empty batch".into()))),
                        Err(e) => Err(Error::from(e)),
                    };
                    let _ = reply.send(r);
                }
            }
        }
    }
}

struct CallState {
    lock: CallLock,
    rules: Rules,
    anyone_waiting: bool,
}

/// What a batch reads once: its applications, their companies and the companies' declared aid.
struct Loaded {
    apps: HashMap<ApplicationId, store::ApplicationRow>,
    companies: HashMap<CompanyId, companies::CompanyRow>,
    aid: HashMap<CompanyId, Vec<AidReceived>>,
}

/// One transaction for the batch: each job's outcome, or the database error that rolled it all back.
async fn process(db: &Db, jobs: &[Job]) -> DbResult<Vec<Result<Receipt>>> {
    let now = clock::now();
    let mut tx = db.begin().await?;
    let ids: Vec<ApplicationId> = jobs.iter().map(|j| j.application).collect();
    let mut company_ids: Vec<CompanyId> = jobs.iter().map(|j| j.company).collect();
    company_ids.sort();
    company_ids.dedup();
    let mut loaded = Loaded {
        apps: store::get_many_tx(&mut tx, &ids).await?.into_iter().map(|r| (r.id, r)).collect(),
        companies: companies::get_many_tx(&mut tx, &company_ids).await?.into_iter().map(|c| (c.id, c)).collect(),
        aid: HashMap::new(),
    };
    for (company, granted_on, cents) in companies::aid_many_tx(&mut tx, &company_ids).await? {
        loaded.aid.entry(company).or_default().push(AidReceived { granted_on, amount: Cents(cents) });
    }
    let mut calls: HashMap<CallId, CallState> = HashMap::new();
    let mut audit_entries: Vec<(&Actor, Change<'_>)> = Vec::new();
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        out.push(one(&mut tx, &mut calls, &mut loaded, &mut audit_entries, j, now).await?);
    }
    audit::record_all(&mut tx, audit_entries).await?;
    for c in calls.values() {
        store::save_call_counters(&mut tx, &c.lock).await?;
    }
    tx.commit().await?;
    Ok(out)
}

fn refuse(code: &'static str) -> Result<Receipt> {
    Err(Error::Conflict(code))
}

async fn one<'j>(
    tx: &mut Tx,
    calls: &mut HashMap<CallId, CallState>,
    loaded: &mut Loaded,
    audit_entries: &mut Vec<(&'j Actor, Change<'static>)>,
    j: &'j Job,
    now: OffsetDateTime,
) -> DbResult<Result<Receipt>> {
    let Some(row) = loaded.apps.get(&j.application).filter(|r| r.company_id == j.company).cloned() else { return Ok(Err(Error::NotFound)) };
    match State::parse(&row.state) {
        Some(State::Submitted) if row.idempotency_key.as_deref() == Some(j.key.as_str()) => return Ok(Ok(receipt_of(&row))),
        Some(State::Submitted) => return Ok(refuse("already-submitted")),
        Some(State::Withdrawn) => return Ok(refuse("withdrawn")),
        _ => {}
    }
    if !calls.contains_key(&row.call_id) {
        let Some(lock) = store::lock_call(tx, row.call_id).await? else { return Ok(Err(Error::NotFound)) };
        let rules: Rules = serde_json::from_str(&lock.rules).map_err(|e| DbError::Other(sqlx::Error::Decode(e.into())))?;
        let anyone_waiting = store::any_waiting(tx, row.call_id).await?;
        calls.insert(row.call_id, CallState { lock, rules, anyone_waiting });
    }
    let Some(call) = calls.get_mut(&row.call_id) else { return Ok(Err(Error::NotFound)) };
    if call.lock.published_at.is_none() || now < call.lock.opens_at {
        return Ok(refuse("call-not-open"));
    }
    if now >= call.lock.closes_at {
        return Ok(refuse("call-closed"));
    }
    let Some(company) = loaded.companies.get(&j.company).cloned() else { return Ok(Err(Error::NotFound)) };
    let Some(facts) = model::facts(company.employees, &company.sector, &company.site_regions) else {
        return Ok(Err(agilekit_kernel::FieldErrors::one("company", "unreadable")));
    };
    let draft: Draft = serde_json::from_str(&row.content).unwrap_or_default();
    let room = if call.lock.de_minimis {
        let prior = loaded.aid.get(&j.company).map(Vec::as_slice).unwrap_or(&[]);
        Some(match de_minimis(DE_MINIMIS_CEILING, prior, Cents::ZERO, clock::to_rome(now).date()) {
            Ok(room) => room,
            Err(_) => Cents::ZERO,
        })
    } else {
        None
    };
    let assessment = model::assess(&draft, &call.rules, &facts, room);
    if !assessment.problems.is_empty() {
        return Ok(Err(Error::Invalid(assessment.problems)));
    }
    let requested = assessment.requested;

    let protocol = call.lock.next_protocol;
    call.lock.next_protocol += 1;
    let at = match call.lock.last_submitted_at {
        Some(last) if last >= now => clock::stamp(last + Duration::microseconds(1)),
        _ => now,
    };
    call.lock.last_submitted_at = Some(at);
    let place = match Mode::parse(&call.lock.mode) {
        Some(Mode::Sportello) => {
            let mut pot = Pot { budget: Cents(call.lock.budget_cents), committed: Cents(call.lock.committed_cents) };
            let p = pot.place(call.anyone_waiting, requested);
            call.lock.committed_cents = pot.committed.0;
            if p == Place::Waiting {
                call.anyone_waiting = true;
            }
            Some(p)
        }
        _ => None,
    };
    let company_json = json!({"id": company.id, "name": company.name, "partita_iva": company.partita_iva, "tax_code": company.tax_code,
        "pec": company.pec, "legal_rep_name": company.legal_rep_name, "legal_rep_tax_code": company.legal_rep_tax_code,
        "employees": company.employees, "sector": company.sector, "site_regions": company.site_regions});
    let doc = Submitted { call: row.call_id.to_string(), company: company_json.clone(), draft: &draft, requested_cents: requested.0 };
    let sha = model::fingerprint(&doc);
    let content = serde_json::to_string(&json!({"draft": draft, "company": company_json})).unwrap_or_default();
    store::mark_submitted(tx, row.id, &Submission {
        protocol,
        at,
        content: &content,
        requested: requested.0,
        sha256: &sha,
        key: &j.key,
        place: place.map(model::place_str),
    })
    .await?;
    audit_entries.push((&j.actor, Change {
        org: Some(call.lock.org_id),
        action: "application.submit",
        entity: "grant_application",
        entity_id: row.id.to_string(),
        before: None,
        after: Some(json!({"protocol": protocol, "submitted_at": at.to_string(), "sha256": sha, "requested_cents": requested.0,
                           "place": place.map(model::place_str), "company": company.id, "call": row.call_id})),
    }));
    let when = clock::format_rome(at);
    let place_line = match place {
        Some(Place::Admitted) => "Esito: ammessa nei limiti della dotazione.\nOutcome: admitted within the budget.\n",
        Some(Place::Waiting) => "Esito: in lista d'attesa (overbooking), in ordine di protocollo.\nOutcome: on the waiting list, in protocol order.\n",
        None => "",
    };
    let text = format!(
        "Domanda protocollata / Application registered\n\nBando / Call: {title}\nImpresa / Company: {name} (P.IVA {piva})\n\
         Protocollo / Protocol: {protocol}\nData e ora / Time: {when} (Europe/Rome)\nImpronta SHA-256 / SHA-256: {sha}\n\
         Contributo richiesto / Grant requested: {requested}\n{place_line}\nRicevuta / Receipt: {url}/api/v1/companies/{company}/applications/{app}/receipt\n",
        title = call.lock.title,
        name = company.name,
        piva = company.partita_iva,
        requested = requested,
        url = j.public_url.trim_end_matches('/'),
        company = company.id,
        app = row.id,
    );
    mail::queue(tx, Some(call.lock.org_id), &mail::Mail { to: company.pec.clone(), subject: format!("Protocollo n. {protocol} — {}", call.lock.title), text }).await?;
    let mut done = row;
    done.protocol = Some(protocol);
    done.submitted_at = Some(at);
    done.sha256 = Some(sha);
    done.idempotency_key = Some(j.key.clone());
    done.place = place.map(|p| model::place_str(p).to_owned());
    done.requested_cents = requested.0;
    done.state = "submitted".into();
    let receipt = receipt_of(&done);
    // A retry of the same submission later in this batch finds it submitted.
    loaded.apps.insert(done.id, done);
    Ok(Ok(receipt))
}
