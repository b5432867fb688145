//! A call's budget, changed by its administrators at any time: in one transaction on the durable handle under the
//! call's row lock (as the click day's sequencer and withdrawals take it), a cut below the money already committed is
//! refused on the field, an increase draws the overbooking list from its head (`applications::service::draw`: the
//! newly admitted are audited and told by mail), and the change is audited (`call.budget`, before and after).

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::CallId;
use super::service;
use super::store;
use crate::allocation::Pot;
use crate::applications::service::draw;
use crate::applications::store as applications;
use crate::model::{CENTS_MAX, Cents};

/// An amount as an API client sends it: integer cents, or text as people type it (`5.000.000,00`).
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Money {
    Cents(i64),
    Text(String),
}

/// The new budget: `budget` as typed (`"5.000.000,00"`) or in cents, or `budget_cents`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BudgetInput {
    #[schema(value_type = Option<String>, example = "5.000.000,00")]
    pub budget: Option<Money>,
    pub budget_cents: Option<i64>,
}

impl BudgetInput {
    /// The amount in cents, or the field error (`budget`: `required`, `not-an-amount`, `not-positive`, …).
    pub fn parse(&self) -> Result<Cents> {
        let c = match (&self.budget, self.budget_cents) {
            (Some(Money::Cents(c)), _) => Cents(*c),
            (None, Some(c)) => Cents(c),
            (Some(Money::Text(s)), _) => Cents::parse(s).map_err(|e| FieldErrors::one("budget", e.code()))?,
            (None, None) => return Err(FieldErrors::one("budget", "required")),
        };
        if c.0 <= 0 {
            return Err(FieldErrors::one("budget", "not-positive"));
        }
        if c.0 > CENTS_MAX {
            return Err(FieldErrors::one("budget", "too-large"));
        }
        Ok(c)
    }
}

/// What a budget change did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BudgetChange {
    pub call_id: CallId,
    pub before_cents: i64,
    pub budget_cents: i64,
    pub committed_cents: i64,
    /// How many waiting applications the change admitted.
    pub drawn: usize,
}


/// Sets the budget of `call` (an administrator of `org`). `durable` is the handle the click day commits on.
pub async fn change(db: &Db, durable: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, budget: Cents) -> Result<BudgetChange> {
    service::staff(db, p, org).await?;
    store::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    let now = clock::now();
    let mut tx = durable.begin().await?;
    let mut lock = applications::lock_call(&mut tx, call).await?.filter(|l| l.org_id == org).ok_or(Error::NotFound)?;
    let before = Pot { budget: Cents(lock.budget_cents), committed: Cents(lock.committed_cents) };
    let mut pot = before;
    pot.set_budget(budget).map_err(|_| FieldErrors::one("budget", "below-committed"))?;
    store::set_budget(&mut tx, call, budget.0, now).await?;
    lock.budget_cents = budget.0;
    // The waiting list: a sportello's in protocol order; a ranked call's exists once its ranking is published, in
    // ranking order (`applications::store::waiting`), and is empty before.
    let drawn = draw(&mut tx, actor, &mut lock, pot, now).await?;
    audit::record(
        &mut tx,
        actor,
        Change {
            org: Some(org),
            action: "call.budget",
            entity: "grant_call",
            entity_id: call.to_string(),
            before: Some(json!({"budget_cents": before.budget.0, "committed_cents": before.committed.0})),
            after: Some(json!({"budget_cents": lock.budget_cents, "committed_cents": lock.committed_cents, "drawn": drawn})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(BudgetChange { call_id: call, before_cents: before.budget.0, budget_cents: lock.budget_cents, committed_cents: lock.committed_cents, drawn })
}
