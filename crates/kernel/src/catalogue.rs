//! The kit: the services an organisation can activate, its subscriptions to them (requested, active, suspended)
//! with quotas, and the one entitlement check every module calls before letting someone use a service.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::db::{Db, DbError, DbResult, Tx};
use crate::db_run;
use crate::error::{Error, FieldErrors, Result};
use crate::ids::{AccountId, OrgId, SubscriptionId};

/// A service of the kit, with the quotas it is sold with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    RemoteAccess,
    Workstations,
    Meetings,
    Helpdesk,
    Learning,
    Consultations,
    Grants,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::RemoteAccess, Service::Workstations, Service::Meetings, Service::Helpdesk,
        Service::Learning, Service::Consultations, Service::Grants,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Service::RemoteAccess => "remote_access",
            Service::Workstations => "workstations",
            Service::Meetings => "meetings",
            Service::Helpdesk => "helpdesk",
            Service::Learning => "learning",
            Service::Consultations => "consultations",
            Service::Grants => "grants",
        }
    }
    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|x| x.key() == s)
    }
    /// The quotas this service is measured by (`None` limit = unlimited).
    pub fn quota_keys(self) -> &'static [&'static str] {
        match self {
            Service::RemoteAccess => &["vpn_seats"],
            Service::Workstations => &["workstations"],
            Service::Meetings => &["rooms"],
            Service::Helpdesk => &["agents"],
            Service::Learning => &["learners"],
            Service::Consultations => &[],
            Service::Grants => &[],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    Requested,
    Active,
    Suspended,
}

impl SubState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubState::Requested => "requested",
            SubState::Active => "active",
            SubState::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<SubState> {
        [SubState::Requested, SubState::Active, SubState::Suspended].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct ServiceRow {
    pub key: String,
    pub available: bool,
    pub position: i64,
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub org_id: OrgId,
    pub service_key: String,
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Quota {
    pub subscription_id: SubscriptionId,
    pub quota_key: String,
    /// `None`: unlimited.
    pub limit_value: Option<i64>,
    pub used: i64,
}

/// A subscription with its quotas, as the organisation dashboard shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub subscription: Subscription,
    pub quotas: Vec<Quota>,
}

pub async fn services(db: &Db) -> DbResult<Vec<ServiceRow>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT key, available, position FROM services ORDER BY position").fetch_all(p).await?))
}

pub async fn set_available(db: &Db, actor: &Actor, service: Service, available: bool) -> Result<()> {
    let mut tx = db.begin().await?;
    db_run!(tx &mut tx, |c| { sqlx::query("UPDATE services SET available = $1 WHERE key = $2").bind(available).bind(service.key()).execute(c).await?; });
    tx.changed(crate::cache::Topic::All).await?;
    audit::record(&mut tx, actor, Change {
        org: None, action: "catalogue.service", entity: "service", entity_id: service.key().to_owned(),
        before: None, after: Some(json!({"available": available})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// The keys of an organisation's active services, in catalogue order (the home page's list; cached per node by
/// [`crate::cache::NodeCache::active_services`]).
pub async fn active_services(db: &Db, org: OrgId) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db_run!(db, |p| sqlx::query_as(
        "SELECT s.service_key FROM subscriptions s JOIN services v ON v.key = s.service_key
         WHERE s.org_id = $1 AND s.state = 'active' ORDER BY v.position"
    ).bind(org).fetch_all(p).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// An organisation's subscriptions with their quotas, in catalogue order: one query.
pub async fn subscriptions(db: &Db, org: OrgId) -> DbResult<Vec<SubscriptionView>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        sub: Subscription,
        quota_key: Option<String>,
        limit_value: Option<i64>,
        used: Option<i64>,
    }
    let rows: Vec<Row> = db_run!(db, |p| sqlx::query_as(
        "SELECT s.id, s.org_id, s.service_key, s.state, s.created_at, s.updated_at, q.quota_key, q.limit_value, q.used
         FROM subscriptions s JOIN services v ON v.key = s.service_key
         LEFT JOIN subscription_quotas q ON q.subscription_id = s.id
         WHERE s.org_id = $1 ORDER BY v.position, q.quota_key"
    ).bind(org).fetch_all(p).await?);
    let mut out: Vec<SubscriptionView> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|v| v.subscription.id != r.sub.id) {
            out.push(SubscriptionView { subscription: r.sub.clone(), quotas: Vec::new() });
        }
        if let (Some(key), Some(v)) = (r.quota_key, out.last_mut()) {
            v.quotas.push(Quota { subscription_id: r.sub.id, quota_key: key, limit_value: r.limit_value, used: r.used.unwrap_or(0) });
        }
    }
    Ok(out)
}

async fn find_sub(tx: &mut Tx, org: OrgId, service: Service) -> DbResult<Option<Subscription>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as("SELECT * FROM subscriptions WHERE org_id = $1 AND service_key = $2")
        .bind(org).bind(service.key()).fetch_optional(c).await?))
}

/// Requests (or, with `activate`, directly activates) a service for an organisation, with quota limits.
/// Requesting what is already active or requested changes nothing.
pub async fn subscribe_in(tx: &mut Tx, actor: &Actor, org: OrgId, service: Service, activate: bool) -> Result<Subscription> {
    let available: Option<(bool,)> = db_run!(tx tx, |c| sqlx::query_as("SELECT available FROM services WHERE key = $1").bind(service.key()).fetch_optional(c).await?);
    if available.map(|a| a.0) != Some(true) {
        return Err(FieldErrors::one("service", "unavailable"));
    }
    if let Some(existing) = find_sub(tx, org, service).await? {
        if activate && existing.state != "active" {
            return set_state_in(tx, actor, org, service, SubState::Active).await;
        }
        return Ok(existing);
    }
    let now = crate::clock::now();
    let state = if activate { SubState::Active } else { SubState::Requested };
    let s = Subscription {
        id: SubscriptionId::new(), org_id: org, service_key: service.key().to_owned(), state: state.as_str().to_owned(),
        created_at: now, updated_at: now,
    };
    db_run!(tx tx, |c| {
        sqlx::query("INSERT INTO subscriptions (id, org_id, service_key, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(s.id).bind(s.org_id).bind(&s.service_key).bind(&s.state).bind(s.created_at).bind(s.updated_at)
            .execute(&mut *c).await?;
        for key in service.quota_keys() {
            sqlx::query("INSERT INTO subscription_quotas (subscription_id, quota_key, limit_value, used) VALUES ($1, $2, $3, 0)")
                .bind(s.id).bind(*key).bind(Some(0i64)).execute(&mut *c).await?;
        }
    });
    tx.changed(crate::cache::Topic::Org(org)).await?;
    audit::record(tx, actor, Change {
        org: Some(org), action: "subscription.create", entity: "subscription", entity_id: s.id.to_string(),
        before: None, after: Some(json!({"service": s.service_key, "state": s.state})),
    }).await?;
    Ok(s)
}

pub async fn subscribe(db: &Db, actor: &Actor, org: OrgId, service: Service, activate: bool) -> Result<Subscription> {
    let mut tx = db.begin().await?;
    let s = subscribe_in(&mut tx, actor, org, service, activate).await?;
    tx.commit().await?;
    Ok(s)
}

async fn set_state_in(tx: &mut Tx, actor: &Actor, org: OrgId, service: Service, state: SubState) -> Result<Subscription> {
    let before = find_sub(tx, org, service).await?.ok_or(Error::NotFound)?;
    let now = crate::clock::now();
    db_run!(tx tx, |c| { sqlx::query("UPDATE subscriptions SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state.as_str()).bind(now).bind(before.id).execute(c).await?; });
    tx.changed(crate::cache::Topic::Org(org)).await?;
    audit::record(tx, actor, Change {
        org: Some(org), action: "subscription.state", entity: "subscription", entity_id: before.id.to_string(),
        before: Some(json!({"state": before.state})), after: Some(json!({"state": state.as_str()})),
    }).await?;
    Ok(Subscription { state: state.as_str().to_owned(), updated_at: now, ..before })
}

pub async fn set_state(db: &Db, actor: &Actor, org: OrgId, service: Service, state: SubState) -> Result<Subscription> {
    let mut tx = db.begin().await?;
    let s = set_state_in(&mut tx, actor, org, service, state).await?;
    tx.commit().await?;
    Ok(s)
}

/// Sets a quota's limit (`None` = unlimited). A limit below what is already used is refused.
pub async fn set_quota(db: &Db, actor: &Actor, org: OrgId, service: Service, key: &str, limit: Option<i64>) -> Result<()> {
    if !service.quota_keys().contains(&key) {
        return Err(FieldErrors::one("quota_key", "format"));
    }
    if limit.is_some_and(|l| !(0..=10_000_000).contains(&l)) {
        return Err(FieldErrors::one(key, "out-of-range"));
    }
    let mut tx = db.begin().await?;
    let sub = find_sub(&mut tx, org, service).await?.ok_or(Error::NotFound)?;
    let q: Quota = db_run!(tx &mut tx, |c| sqlx::query_as("SELECT * FROM subscription_quotas WHERE subscription_id = $1 AND quota_key = $2")
        .bind(sub.id).bind(key).fetch_one(c).await?);
    if limit.is_some_and(|l| l < q.used) {
        return Err(FieldErrors::one(key, "below-usage"));
    }
    db_run!(tx &mut tx, |c| { sqlx::query("UPDATE subscription_quotas SET limit_value = $1 WHERE subscription_id = $2 AND quota_key = $3")
        .bind(limit).bind(sub.id).bind(key).execute(c).await?; });
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "subscription.quota", entity: "subscription", entity_id: sub.id.to_string(),
        before: Some(json!({key: q.limit_value})), after: Some(json!({key: limit})),
    }).await?;
    tx.commit().await?;
    Ok(())
}

/// The answer to "may this account use this service here".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entitlement {
    pub service: Service,
    pub org_id: OrgId,
    /// Per quota: (key, limit, used).
    pub quotas: Vec<(String, Option<i64>, i64)>,
}

impl Entitlement {
    /// How many more units of `key` may be taken (`None` = unlimited).
    pub fn remaining(&self, key: &str) -> Option<i64> {
        self.quotas.iter().find(|q| q.0 == key).and_then(|q| q.1.map(|l| (l - q.2).max(0)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Denied {
    /// The account has no membership in the organisation.
    NotMember,
    /// The organisation has not activated the service (or it is suspended).
    NotSubscribed,
    /// The operator withdrew the service from the catalogue.
    Unavailable,
    /// The organisation or the account is disabled.
    Disabled,
}

/// The one entitlement check: every module asks this before letting `account` use `service` in `org`.
pub async fn entitlement(db: &Db, account: AccountId, org: OrgId, service: Service) -> DbResult<Result<Entitlement, Denied>> {
    let row: Option<(bool, bool)> = db_run!(db, |p| sqlx::query_as(
        "SELECT a.disabled, o.active FROM accounts a JOIN memberships m ON m.account_id = a.id JOIN organisations o ON o.id = m.org_id
         WHERE a.id = $1 AND m.org_id = $2 LIMIT 1"
    ).bind(account).bind(org).fetch_optional(p).await?);
    match row {
        None => return Ok(Err(Denied::NotMember)),
        Some((disabled, active)) if disabled || !active => return Ok(Err(Denied::Disabled)),
        _ => {}
    }
    let sub: Option<(SubscriptionId, String, bool)> = db_run!(db, |p| sqlx::query_as(
        "SELECT s.id, s.state, v.available FROM subscriptions s JOIN services v ON v.key = s.service_key WHERE s.org_id = $1 AND s.service_key = $2"
    ).bind(org).bind(service.key()).fetch_optional(p).await?);
    let Some((sub_id, state, available)) = sub else { return Ok(Err(Denied::NotSubscribed)) };
    if !available {
        return Ok(Err(Denied::Unavailable));
    }
    if state != "active" {
        return Ok(Err(Denied::NotSubscribed));
    }
    let quotas: Vec<Quota> = db_run!(db, |p| sqlx::query_as("SELECT * FROM subscription_quotas WHERE subscription_id = $1 ORDER BY quota_key")
        .bind(sub_id).fetch_all(p).await?);
    Ok(Ok(Entitlement { service, org_id: org, quotas: quotas.into_iter().map(|q| (q.quota_key, q.limit_value, q.used)).collect() }))
}

/// Takes `n` units of a quota inside the caller's transaction (a VPN seat for a new device, say), atomically:
/// under any interleaving `used` never passes `limit`. Fails with `QuotaExhausted` when there is no room.
pub async fn consume_in(tx: &mut Tx, org: OrgId, service: Service, key: &str, n: i64) -> Result<()> {
    let affected = db_run!(tx tx, |c| sqlx::query(
        "UPDATE subscription_quotas SET used = used + $1
         WHERE quota_key = $2 AND (limit_value IS NULL OR used + $1 <= limit_value)
           AND subscription_id = (SELECT id FROM subscriptions WHERE org_id = $3 AND service_key = $4 AND state = 'active')"
    ).bind(n).bind(key).bind(org).bind(service.key()).execute(c).await.map_err(DbError::from)?.rows_affected());
    if affected == 0 { Err(Error::QuotaExhausted) } else { Ok(()) }
}

/// Gives back `n` units of a quota (a revoked device frees its seat).
pub async fn release_in(tx: &mut Tx, org: OrgId, service: Service, key: &str, n: i64) -> Result<()> {
    db_run!(tx tx, |c| { sqlx::query(
        "UPDATE subscription_quotas SET used = CASE WHEN used >= $1 THEN used - $1 ELSE 0 END
         WHERE quota_key = $2 AND subscription_id = (SELECT id FROM subscriptions WHERE org_id = $3 AND service_key = $4)"
    ).bind(n).bind(key).bind(org).bind(service.key()).execute(c).await.map_err(DbError::from)?; });
    Ok(())
}

/// An organisation as its dashboard shows it: itself, its parent, its subscriptions with quotas, and the
/// services it could still request.
#[derive(Clone, Debug)]
pub struct Overview {
    pub org: crate::tenancy::Organisation,
    pub parent: Option<crate::tenancy::Organisation>,
    pub subscriptions: Vec<SubscriptionView>,
    /// Available in the catalogue and not yet subscribed (in any state).
    pub requestable: Vec<Service>,
}

pub async fn overview(db: &Db, org: OrgId) -> DbResult<Overview> {
    let o = crate::tenancy::get(db, org).await?;
    let parent = match o.parent_id {
        Some(p) => Some(crate::tenancy::get(db, p).await?),
        None => None,
    };
    let subscriptions = subscriptions(db, org).await?;
    let requestable = services(db)
        .await?
        .into_iter()
        .filter(|s| s.available && !subscriptions.iter().any(|v| v.subscription.service_key == s.key))
        .filter_map(|s| Service::parse(&s.key))
        .collect();
    Ok(Overview { org: o, parent, subscriptions, requestable })
}

/// A service of the catalogue with how many organisations have it active: the operator's catalogue page.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceUsage {
    pub service: ServiceRow,
    pub active_orgs: i64,
}

pub async fn usage(db: &Db) -> DbResult<Vec<ServiceUsage>> {
    let counts: Vec<(String, i64)> = db_run!(db, |p| sqlx::query_as(
        "SELECT service_key, COUNT(*) FROM subscriptions WHERE state = 'active' GROUP BY service_key"
    ).fetch_all(p).await?);
    Ok(services(db)
        .await?
        .into_iter()
        .map(|s| {
            let active_orgs = counts.iter().find(|c| c.0 == s.key).map_or(0, |c| c.1);
            ServiceUsage { service: s, active_orgs }
        })
        .collect())
}
