//! Onboarding of a new administration: a public request, reviewed by a platform admin, then activated
//! (organisation, requested services, an org admin account with a first-password link). The requester gets
//! a mail at each step, through the outbox.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::catalogue::{self, Service};
use crate::db::{Db, DbResult};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::identity::{self, NewAccount, Role};
use crate::ids::{AccountId, OnboardingId, OrgId};
use crate::mail::{self, Mail};
use crate::tenancy::{self, OrgFields, OrgKind};
use crate::validate::{CompanyTaxCode, Email, IpaCode, Text};

#[derive(Clone, Debug, Default, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct RequestInput {
    pub org_name: String,
    pub ipa_code: String,
    pub tax_code: String,
    pub pec: String,
    pub contact_name: String,
    pub contact_email: String,
    /// Service keys (`remote_access`, `helpdesk`, …).
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Request {
    pub id: OnboardingId,
    pub org_name: String,
    pub ipa_code: String,
    pub tax_code: String,
    pub pec: String,
    pub contact_name: String,
    pub contact_email: String,
    /// Comma-separated service keys.
    pub services: String,
    /// `pending`, `activated` or `rejected`.
    pub state: String,
    pub review_note: Option<String>,
    pub reviewed_by: Option<AccountId>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reviewed_at: Option<OffsetDateTime>,
    pub org_id: Option<OrgId>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl Request {
    pub fn service_list(&self) -> Vec<Service> {
        self.services.split(',').filter_map(Service::parse).collect()
    }
}

/// Files a request from the public form. Anyone may; nothing is created until a platform admin approves.
pub async fn submit(db: &Db, actor: &Actor, input: &RequestInput) -> Result<Request> {
    let mut errs = FieldErrors::new();
    let name = errs.check("org_name", Text::parse(&input.org_name, 200));
    let ipa = errs.check("ipa_code", IpaCode::parse(&input.ipa_code));
    let tax = errs.check("tax_code", CompanyTaxCode::parse(&input.tax_code));
    let pec = errs.check("pec", Email::parse(&input.pec));
    let contact = errs.check("contact_name", Text::parse(&input.contact_name, 120));
    let email = errs.check("contact_email", Email::parse(&input.contact_email));
    let mut services = Vec::new();
    for s in &input.services {
        match Service::parse(s) {
            Some(s) if !services.contains(&s) => services.push(s),
            Some(_) => {}
            None => errs.add("services", "format"),
        }
    }
    if services.is_empty() && errs.get("services").is_none() {
        errs.add("services", "required");
    }
    errs.clone().into_result()?;
    let (Some(name), Some(ipa), Some(tax), Some(pec), Some(contact), Some(email)) = (name, ipa, tax, pec, contact, email) else {
        return Err(Error::Invalid(errs));
    };
    let r = Request {
        id: OnboardingId::new(),
        org_name: name.as_str().into(),
        ipa_code: ipa.as_str().into(),
        tax_code: tax.as_str().into(),
        pec: pec.as_str().into(),
        contact_name: contact.as_str().into(),
        contact_email: email.as_str().into(),
        services: services.iter().map(|s| s.key()).collect::<Vec<_>>().join(","),
        state: "pending".into(),
        review_note: None,
        reviewed_by: None,
        reviewed_at: None,
        org_id: None,
        created_at: crate::clock::now(),
    };
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query(
        "INSERT INTO onboarding_requests (id, org_name, ipa_code, tax_code, pec, contact_name, contact_email, services, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ).bind(r.id).bind(&r.org_name).bind(&r.ipa_code).bind(&r.tax_code).bind(&r.pec).bind(&r.contact_name)
     .bind(&r.contact_email).bind(&r.services).bind(&r.state).bind(r.created_at).execute(c).await?; });
    audit::record(&mut tx, actor, Change {
        org: None, action: "onboarding.submit", entity: "onboarding", entity_id: r.id.to_string(),
        before: None, after: Some(json!({"org_name": r.org_name, "ipa_code": r.ipa_code, "services": r.services})),
    }).await?;
    mail::queue(&mut tx, None, &Mail {
        to: r.contact_email.clone(),
        subject: format!("agilekit: richiesta di adesione ricevuta / request received — {}", r.org_name),
        text: format!(
            "Gentile {name},\n\nabbiamo ricevuto la richiesta di adesione di {org} (codice IPA {ipa}). \
             Sarà esaminata dal gestore della piattaforma; riceverà una mail con l'esito.\n\n\
             Dear {name},\n\nwe received the request of {org} (IPA code {ipa}) to join. The platform operator will review it; \
             you will receive a mail with the outcome.\n\nRif. / Ref. {id}",
            name = r.contact_name, org = r.org_name, ipa = r.ipa_code, id = r.id
        ),
    }).await?;
    tx.commit().await?;
    Ok(r)
}

pub async fn get(db: &Db, id: OnboardingId) -> DbResult<Request> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT * FROM onboarding_requests WHERE id = $1").bind(id).fetch_one(p).await?))
}

pub async fn list(db: &Db, state: Option<&str>) -> DbResult<Vec<Request>> {
    Ok(db_run!(db, |p| match state {
        Some(s) => sqlx::query_as("SELECT * FROM onboarding_requests WHERE state = $1 ORDER BY created_at DESC").bind(s).fetch_all(p).await?,
        None => sqlx::query_as("SELECT * FROM onboarding_requests ORDER BY created_at DESC").fetch_all(p).await?,
    }))
}

/// Approves and activates: creates the organisation (under `parent`, if given), subscribes it to the requested
/// services, makes the contact its org admin (creating the account if needed) and mails a first-password link.
pub async fn approve(db: &Db, actor: &Actor, id: OnboardingId, parent: Option<OrgId>, base_url: &str) -> Result<Request> {
    let r = get(db, id).await?;
    if r.state != "pending" {
        return Err(Error::Conflict("already-reviewed"));
    }
    let fields = OrgFields {
        name: Text::parse(&r.org_name, 200).map_err(|e| FieldErrors::one("org_name", e.code()))?,
        kind: OrgKind::LocalAuthority,
        ipa_code: IpaCode::parse(&r.ipa_code).map_err(|e| FieldErrors::one("ipa_code", e.code()))?,
        tax_code: CompanyTaxCode::parse(&r.tax_code).map_err(|e| FieldErrors::one("tax_code", e.code()))?,
        pec: Email::parse(&r.pec).ok(),
        parent_id: parent,
    };
    let existing = identity::find_by_email(db, &r.contact_email).await?;
    let mut tx = db.begin().await?;
    // Claim the request first: of two admins approving at once, the second finds it no longer pending.
    let now = crate::clock::now();
    let claimed = db_run!(tx &mut tx, |c| sqlx::query(
        "UPDATE onboarding_requests SET state = 'activated', reviewed_by = $1, reviewed_at = $2 WHERE id = $3 AND state = 'pending'"
    ).bind(actor.account).bind(now).bind(id).execute(c).await?.rows_affected());
    if claimed == 0 {
        return Err(Error::Conflict("already-reviewed"));
    }
    let org = tenancy::create_in(&mut tx, actor, &fields).await?;
    for s in r.service_list() {
        catalogue::subscribe_in(&mut tx, actor, org.id, s, true).await?;
    }
    let account = match existing {
        Some(a) => a,
        None => {
            let input = NewAccount { email: r.contact_email.clone(), display_name: r.contact_name.clone(), ..Default::default() };
            identity::create_in(&mut tx, actor, &input, None).await?
        }
    };
    identity::grant_in(&mut tx, actor, org.id, account.id, Role::OrgAdmin).await?;
    let secret = identity::reset::issue_in(&mut tx, account.id, time::Duration::days(7)).await?;
    db_run!(tx &mut tx, |c| { sqlx::query("UPDATE onboarding_requests SET org_id = $1 WHERE id = $2").bind(org.id).bind(id).execute(c).await?; });
    audit::record(&mut tx, actor, Change {
        org: Some(org.id), action: "onboarding.approve", entity: "onboarding", entity_id: id.to_string(),
        before: Some(json!({"state": "pending"})), after: Some(json!({"state": "activated", "org_id": org.id})),
    }).await?;
    mail::queue(&mut tx, Some(org.id), &Mail {
        to: r.contact_email.clone(),
        subject: format!("agilekit: {} è attiva / is active", r.org_name),
        text: format!(
            "Gentile {name},\n\nla richiesta di {org} è stata approvata: l'organizzazione è attiva e lei ne è amministratore.\n\
             Scelga la password entro 7 giorni: {base}/password/reset/{secret}\n\n\
             Dear {name},\n\nthe request of {org} was approved: the organisation is active and you are its administrator.\n\
             Choose your password within 7 days: {base}/password/reset/{secret}\n",
            name = r.contact_name, org = r.org_name, base = base_url.trim_end_matches('/')
        ),
    }).await?;
    tx.commit().await?;
    get(db, id).await.map_err(Into::into)
}

pub async fn reject(db: &Db, actor: &Actor, id: OnboardingId, note: &str) -> Result<Request> {
    let note = Text::parse(note, 2000).map_err(|e| FieldErrors::one("review_note", e.code()))?;
    let r = get(db, id).await?;
    let mut tx = db.begin().await?;
    let n = db_run!(tx &mut tx, |c| sqlx::query(
        "UPDATE onboarding_requests SET state = 'rejected', review_note = $1, reviewed_by = $2, reviewed_at = $3 WHERE id = $4 AND state = 'pending'"
    ).bind(note.as_str()).bind(actor.account).bind(crate::clock::now()).bind(id).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(Error::Conflict("already-reviewed"));
    }
    audit::record(&mut tx, actor, Change {
        org: None, action: "onboarding.reject", entity: "onboarding", entity_id: id.to_string(),
        before: Some(json!({"state": "pending"})), after: Some(json!({"state": "rejected", "note": note.as_str()})),
    }).await?;
    mail::queue(&mut tx, None, &Mail {
        to: r.contact_email.clone(),
        subject: format!("agilekit: esito della richiesta / outcome of the request — {}", r.org_name),
        text: format!(
            "Gentile {name},\n\nla richiesta di adesione di {org} non è stata accolta. Motivo:\n{note}\n\n\
             Dear {name},\n\nthe request of {org} to join was not accepted. Reason:\n{note}\n",
            name = r.contact_name, org = r.org_name, note = note.as_str()
        ),
    }).await?;
    tx.commit().await?;
    get(db, id).await.map_err(Into::into)
}

/// Every request for the operator's review page: pending ones first (oldest first, as a queue), then the
/// reviewed ones, newest first.
pub async fn list_for_review(db: &Db) -> DbResult<Vec<Request>> {
    let mut all = list(db, None).await?;
    all.sort_by(|a, b| match (a.state == "pending", b.state == "pending") {
        (true, true) => a.created_at.cmp(&b.created_at),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => b.created_at.cmp(&a.created_at),
    });
    Ok(all)
}

/// Public submissions per address: twenty an hour, every submission counted, so the public form and the public API
/// cannot be used to flood the operator's review queue and the requesters' mailboxes.
pub const PUBLIC_POLICY: crate::identity::throttle::Policy =
    crate::identity::throttle::Policy { max: 20, window: time::Duration::hours(1), lock: time::Duration::hours(1) };

/// Counts one public submission from `ip`; `Throttled` once the address has used its allowance.
pub async fn count_public_submission(db: &Db, ip: Option<&str>) -> Result<()> {
    use crate::identity::throttle;
    let key = format!("join:{}", ip.unwrap_or("unknown"));
    if let Some(secs) = throttle::locked(db, &key).await? {
        return Err(Error::Throttled { retry_after_secs: secs });
    }
    throttle::failure(db, &key, PUBLIC_POLICY).await?;
    Ok(())
}
