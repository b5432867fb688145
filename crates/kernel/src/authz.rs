//! Authorisation: what an account may do where, decided from its memberships. Handlers ask here, never
//! look at roles themselves, so a rule changes in one place.

use std::collections::HashMap;

use crate::db::{Db, DbResult};
use crate::error::{Error, Result};
use crate::identity::{self, Account, Role};
use crate::ids::{AccountId, OrgId};
use crate::tenancy;

/// An authenticated account and its roles per organisation, loaded once per request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub account: Account,
    pub roles: HashMap<OrgId, Vec<Role>>,
    /// The organisations in the order the account joined them: the first is its home organisation.
    pub joined: Vec<OrgId>,
    /// Has `platform_admin` in the operator organisation.
    pub platform_admin: bool,
}

impl Principal {
    pub async fn load(db: &Db, id: AccountId) -> DbResult<Principal> {
        let account = identity::get(db, id).await?;
        let mut roles: HashMap<OrgId, Vec<Role>> = HashMap::new();
        let mut joined = Vec::new();
        for m in identity::memberships(db, id).await? {
            if !joined.contains(&m.org_id) {
                joined.push(m.org_id);
            }
            if let Some(r) = Role::parse(&m.role) {
                roles.entry(m.org_id).or_default().push(r);
            }
        }
        let operator = tenancy::operator(db).await?;
        let platform_admin =
            operator.is_some_and(|o| roles.get(&o.id).is_some_and(|rs| rs.contains(&Role::PlatformAdmin)));
        Ok(Principal { account, roles, joined, platform_admin })
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
