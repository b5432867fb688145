//! Authorisation: what an account may do where, decided from its memberships. Handlers ask here, never
//! look at roles themselves, so a rule changes in one place.

use std::collections::HashMap;

use crate::db::{Db, DbResult};
use crate::db_run;
use crate::error::{Error, Result};
use crate::identity::{self, Account, Role};
use crate::ids::{AccountId, OrgId};

/// An authenticated account and its roles per organisation, loaded once per request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub account: Account,
    pub roles: HashMap<OrgId, Vec<Role>>,
    /// The organisations in the order the account joined them: the first is its home organisation.
    pub joined: Vec<OrgId>,
    /// The names of those organisations, in the same order (for the organisation switcher).
    pub org_names: Vec<(OrgId, String)>,
    /// Has `platform_admin` in the operator organisation.
    pub platform_admin: bool,
}

impl Principal {
    /// Two queries, whatever the number of memberships: this runs on every authenticated request.
    pub async fn load(db: &Db, id: AccountId) -> DbResult<Principal> {
        let account = identity::get(db, id).await?;
        let rows: Vec<(OrgId, String, String, String)> = db_run!(db, |p| sqlx::query_as(
            "SELECT m.org_id, m.role, o.kind, o.name FROM memberships m JOIN organisations o ON o.id = m.org_id
             WHERE m.account_id = $1 ORDER BY m.created_at, m.role"
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let mut roles: HashMap<OrgId, Vec<Role>> = HashMap::new();
        let mut joined = Vec::new();
        let mut org_names = Vec::new();
        let mut platform_admin = false;
        for (org, role, kind, name) in rows {
            if !joined.contains(&org) {
                joined.push(org);
                org_names.push((org, name));
            }
            if let Some(r) = Role::parse(&role) {
                platform_admin |= r == Role::PlatformAdmin && kind == "operator";
                roles.entry(org).or_default().push(r);
            }
        }
        Ok(Principal { account, roles, joined, org_names, platform_admin })
    }

    pub fn id(&self) -> AccountId {
        self.account.id
    }

    pub fn is_member(&self, org: OrgId) -> bool {
        self.roles.contains_key(&org)
    }

    pub fn has(&self, org: OrgId, role: Role) -> bool {
        self.roles.get(&org).is_some_and(|rs| rs.contains(&role))
    }

    /// The account's organisations, home organisation first.
    pub fn orgs(&self) -> Vec<OrgId> {
        self.joined.clone()
    }

    /// May read the organisation's admin pages (members, services, audit): its admins and HR, and platform admins.
    pub fn can_view_org(&self, org: OrgId) -> bool {
        self.platform_admin || self.has(org, Role::OrgAdmin) || self.has(org, Role::Hr)
    }

    /// May change members, roles and subscriptions requests of the organisation.
    pub fn can_admin_org(&self, org: OrgId) -> bool {
        self.platform_admin || self.has(org, Role::OrgAdmin)
    }

    pub fn require_view_org(&self, org: OrgId) -> Result<()> {
        if self.can_view_org(org) { Ok(()) } else { Err(Error::NotFound) }
    }

    pub fn require_admin_org(&self, org: OrgId) -> Result<()> {
        if self.can_admin_org(org) {
            Ok(())
        } else if self.can_view_org(org) {
            Err(Error::Forbidden)
        } else {
            // Someone with no business in the organisation learns nothing, not even that it exists.
            Err(Error::NotFound)
        }
    }

    pub fn require_platform_admin(&self) -> Result<()> {
        if self.platform_admin { Ok(()) } else { Err(Error::Forbidden) }
    }
}
