//! What every page's layout needs: the language, the signed-in user, the organisation switcher.

use agilekit_kernel::authz::Principal;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::FieldErrors;

use crate::auth::RequestCtx;
use crate::i18n::Lang;
use crate::state::AppState;

#[derive(Clone, Debug)]
pub struct OrgChoice {
    pub id: OrgId,
    pub name: String,
}

#[derive(Clone)]
pub struct PageCtx {
    pub lang: Lang,
    pub principal: Option<Principal>,
    pub orgs: Vec<OrgChoice>,
    pub current_org: Option<OrgChoice>,
    /// The path of this page, for the language switch to come back to.
    pub path: String,
    pub asset_version: &'static str,
}

impl PageCtx {
    pub async fn build(_state: &AppState, rc: &RequestCtx) -> PageCtx {
        let principal = rc.user.as_ref().map(|u| u.principal.clone());
        let mut orgs = Vec::new();
        let mut current_org = None;
        if let Some(u) = &rc.user {
            let ids = u.principal.orgs();
            orgs = u.principal.org_names.iter().map(|(id, name)| OrgChoice { id: *id, name: name.clone() }).collect();
            orgs.sort_by(|a, b| a.name.cmp(&b.name));
            let wanted = u.session.as_ref().and_then(|s| s.current_org_id).filter(|o| ids.contains(o));
            let home = wanted.or(ids.first().copied());
            current_org = orgs.iter().find(|o| Some(o.id) == home).cloned();
        }
        PageCtx { lang: rc.lang, principal, orgs, current_org, path: rc.path.clone(), asset_version: crate::assets::own_version() }
    }

    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        self.lang.t_args(key, &[(name, value.to_owned())])
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn other_lang(&self) -> Lang {
        if self.lang == Lang::It { Lang::En } else { Lang::It }
    }

    pub fn signed_in(&self) -> bool {
        self.principal.is_some()
    }

    pub fn display_name(&self) -> String {
        self.principal.as_ref().map(|p| p.account.display_name.clone()).unwrap_or_default()
    }

    pub fn is_platform_admin(&self) -> bool {
        self.principal.as_ref().is_some_and(|p| p.platform_admin)
    }

    /// May see the admin pages of the current organisation.
    pub fn can_view_current_org(&self) -> bool {
        match (&self.principal, &self.current_org) {
            (Some(p), Some(o)) => p.can_view_org(o.id),
            _ => false,
        }
    }

    pub fn is_current_org(&self, id: &OrgId) -> bool {
        self.current_org.as_ref().is_some_and(|o| &o.id == id)
    }

    /// The localised message for a field's error, if it has one.
    pub fn field_error(&self, errors: &FieldErrors, field: &str) -> Option<String> {
        errors.get(field).map(|code| self.t(&format!("field-{code}")))
    }

    pub fn format_time(&self, t: &time::OffsetDateTime) -> String {
        agilekit_kernel::clock::format_rome(*t)
    }

    pub fn format_opt_time(&self, t: &Option<time::OffsetDateTime>) -> String {
        t.map(agilekit_kernel::clock::format_rome).unwrap_or_else(|| "—".into())
    }
}
