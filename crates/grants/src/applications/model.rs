//! An application as its company prepares it: the plan, the expenses by the call's categories, the declaration.
//! A draft is stored whatever it holds; what would stop its submission is a list of problems, each on a field, worked
//! out against the call's rules and the company's data of the moment. The submitted document (the draft, the
//! company's data, the grant asked for) is hashed for the receipt. No I/O.

use agilekit_kernel::FieldErrors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::allocation::Place;
use crate::calls::model::Rules;
use crate::model::{Ateco, CENTS_MAX, Cents, CompanyFacts, Ineligible};

agilekit_kernel::typed_id!(
    /// An application of a company to a call.
    ApplicationId
);

pub const PLAN_MAX: usize = 20_000;
pub const LINE_MAX: usize = 500;
pub const LINES_MAX: usize = 50;
pub const KEY_MAX: usize = 200;

/// One expense of the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Expense {
    /// A category code of the call.
    pub category: String,
    pub description: String,
    pub amount_cents: Option<i64>,
}

/// The draft as typed. Every field may be empty or wrong while it is a draft.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Draft {
    /// The smart-working plan: what the company will do, for whom, with what.
    pub plan: String,
    pub expenses: Vec<Expense>,
    /// The legal representative declares the application truthful (DPR 445/2000).
    pub declaration: bool,
    /// The call's required attachments uploaded so far (read-only: kept by the server from its uploads, whatever a
    /// client sends). Listed here so that the submission's fingerprint covers their SHA-256s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachedFile>,
}

/// A required attachment of the call uploaded to the draft.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AttachedFile {
    /// The code of the call's required attachment.
    pub code: String,
    #[schema(value_type = String, format = Uuid)]
    pub file_id: String,
    pub name: String,
    /// Bytes.
    pub size: i64,
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// The state of an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Draft,
    Submitted,
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Submitted => "submitted",
            State::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "draft" => Some(State::Draft),
            "submitted" => Some(State::Submitted),
            "withdrawn" => Some(State::Withdrawn),
            _ => None,
        }
    }
}

pub fn place_str(p: Place) -> &'static str {
    match p {
        Place::Admitted => "admitted",
        Place::Waiting => "waiting",
    }
}

pub fn place_parse(s: &str) -> Option<Place> {
    match s {
        "admitted" => Some(Place::Admitted),
        "waiting" => Some(Place::Waiting),
        _ => None,
    }
}

/// A draft's limits that hold even while it is a draft (so that nothing unbounded is stored).
pub fn check_storable(d: &Draft) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::new();
    if d.plan.chars().count() > PLAN_MAX {
        e.add("plan", "too-long");
    }
    if d.expenses.len() > LINES_MAX {
        e.add("expenses", "too-many");
    }
    for (i, x) in d.expenses.iter().enumerate() {
        if x.description.chars().count() > LINE_MAX {
            e.add(&format!("expenses.{i}.description"), "too-long");
        }
        if x.category.len() > 64 {
            e.add(&format!("expenses.{i}.category"), "too-long");
        }
        if x.amount_cents.is_some_and(|a| !(0..=CENTS_MAX).contains(&a)) {
            e.add(&format!("expenses.{i}.amount_cents"), "out-of-range");
        }
    }
    let text = std::iter::once(d.plan.as_str()).chain(d.expenses.iter().flat_map(|x| [x.description.as_str(), x.category.as_str()]));
    if text.clone().any(|t| t.contains('\0')) {
        e.add("plan", "format");
    }
    e.into_result().map_err(|x| match x {
        agilekit_kernel::Error::Invalid(f) => f,
        _ => FieldErrors::new(),
    })
}

/// What the checks found: the problems that stop a submission (by field), and the grant the draft asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub problems: FieldErrors,
    pub eligible_expenses: Cents,
    pub requested: Cents,
}

/// Checks a draft against the call's rules and the company's facts; `de_minimis_room` is the company's room under
/// the ceiling on the day (None when the call does not check it).
pub fn assess(d: &Draft, rules: &Rules, company: &CompanyFacts, de_minimis_room: Option<Cents>) -> Assessment {
    let mut e = FieldErrors::new();
    if d.plan.trim().is_empty() {
        e.add("plan", "required");
    }
    if d.expenses.is_empty() {
        e.add("expenses", "required");
    }
    let mut by_category: Vec<(String, Cents)> = Vec::new();
    let mut total = Cents::ZERO;
    for (i, x) in d.expenses.iter().enumerate() {
        if !rules.categories.iter().any(|c| c.code == x.category) {
            e.add(&format!("expenses.{i}.category"), if x.category.trim().is_empty() { "required" } else { "unknown-category" });
        }
        if x.description.trim().is_empty() {
            e.add(&format!("expenses.{i}.description"), "required");
        }
        match x.amount_cents {
            None => e.add(&format!("expenses.{i}.amount_cents"), "required"),
            Some(a) if a <= 0 || a > CENTS_MAX => e.add(&format!("expenses.{i}.amount_cents"), "not-positive"),
            Some(a) => {
                total = total + Cents(a);
                match by_category.iter_mut().find(|(c, _)| *c == x.category) {
                    Some((_, s)) => *s = *s + Cents(a),
                    None => by_category.push((x.category.clone(), Cents(a))),
                }
            }
        }
    }
    for c in &rules.categories {
        if let (Some(max), Some((_, spent))) = (c.max_share_bp, by_category.iter().find(|(k, _)| *k == c.code)) {
            if total.0 > 0 && i128::from(spent.0) * 10_000 > i128::from(total.0) * i128::from(max) {
                e.add(&format!("expenses.category.{}", c.code), "over-share");
            }
        }
    }
    if !d.declaration {
        e.add("declaration", "required");
    }
    for a in &rules.required_attachments {
        if !d.attachments.iter().any(|x| x.code == a.code) {
            e.add(&format!("attachments.{}", a.code), "required");
        }
    }
    for why in rules.eligibility.check(company) {
        let (field, code) = match why {
            Ineligible::TooFewEmployees { .. } => ("company.employees", "too-few-employees"),
            Ineligible::TooManyEmployees { .. } => ("company.employees", "too-many-employees"),
            Ineligible::ExcludedSector { .. } => ("company.sector", "excluded-sector"),
            Ineligible::NoSiteInRegion { .. } => ("company.site_regions", "no-site-in-region"),
        };
        e.add(field, code);
    }
    let requested = match rules.grant_rule.grant_for(u32::try_from(company.employees).unwrap_or(u32::MAX), total) {
        Some(g) => g,
        None => {
            if e.get("company.employees").is_none() {
                e.add("company.employees", "no-band");
            }
            Cents::ZERO
        }
    };
    if let Some(room) = de_minimis_room {
        if requested > room {
            e.add("company.de_minimis", "ceiling-exceeded");
        }
    }
    Assessment { problems: e, eligible_expenses: total, requested }
}

/// The facts a call's rules read from a company's stored row.
pub fn facts(employees: i64, sector: &str, site_regions: &str) -> Option<CompanyFacts> {
    Some(CompanyFacts {
        employees: u32::try_from(employees).ok()?,
        sector: Ateco::parse(sector).ok()?,
        site_regions: site_regions.split_whitespace().map(str::to_owned).collect(),
    })
}

/// The document a submission freezes and its receipt's fingerprint covers.
#[derive(Clone, Debug, Serialize)]
pub struct Submitted<'a> {
    pub call: String,
    pub company: serde_json::Value,
    pub draft: &'a Draft,
    pub requested_cents: i64,
}

/// SHA-256 (hex) of the document's JSON (fields in declaration order, so the same document gives the same hash).
pub fn fingerprint(doc: &Submitted<'_>) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::model::{Category, Rules};
    use crate::model::{Eligibility, GrantRule};

    fn rules() -> Rules {
        Rules {
            grant_rule: GrantRule::avviso_2020(),
            categories: vec![
                Category { code: "consulenza".into(), label: "Consulenza".into(), max_share_bp: None },
                Category { code: "strumenti".into(), label: "Strumenti".into(), max_share_bp: Some(3_333) },
            ],
            eligibility: Eligibility { min_employees: 3, max_employees: None, excluded_sectors: vec![Ateco::parse("01").unwrap()], site_region: Some("03".into()) },
            required_attachments: vec![],
            criteria: vec![],
            tie_breaks: vec![],
        }
    }

    fn company(employees: u32) -> CompanyFacts {
        CompanyFacts { employees, sector: Ateco::parse("62.01.00").unwrap(), site_regions: vec!["03".into()] }
    }

    fn draft() -> Draft {
        Draft {
            plan: "Portatili e formazione per 12 persone.".into(),
            expenses: vec![
                Expense { category: "consulenza".into(), description: "Formazione".into(), amount_cents: Some(8_000_00) },
                Expense { category: "strumenti".into(), description: "Portatili".into(), amount_cents: Some(3_900_00) },
            ],
            declaration: true,
            attachments: vec![],
        }
    }

    #[test]
    fn a_complete_draft_asks_for_its_band() {
        let a = assess(&draft(), &rules(), &company(12), Some(Cents::euros(300_000)));
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        assert_eq!(a.requested, Cents::euros(10_500));
        assert_eq!(a.eligible_expenses, Cents::euros(11_900));
        // A third exactly is within a share of 3,333 basis points only if it does not pass 33.33 %.
        let mut d = draft();
        d.expenses[1].amount_cents = Some(4_000_00);
        assert_eq!(assess(&d, &rules(), &company(12), None).problems.get("expenses.category.strumenti"), Some("over-share"));
    }

    #[test]
    fn problems_are_named_by_field() {
        let d = Draft {
            plan: " ".into(),
            expenses: vec![
                Expense { category: "viaggi".into(), description: String::new(), amount_cents: Some(0) },
                Expense { category: "strumenti".into(), description: "Server".into(), amount_cents: Some(9_000_00) },
                Expense { category: "consulenza".into(), description: "Piano".into(), amount_cents: Some(1_000_00) },
            ],
            declaration: false,
            attachments: vec![],
        };
        let a = assess(&d, &rules(), &CompanyFacts { sector: Ateco::parse("01.11").unwrap(), site_regions: vec!["05".into()], ..company(2) }, Some(Cents(100)));
        for (f, code) in [
            ("plan", "required"),
            ("expenses.0.category", "unknown-category"),
            ("expenses.0.description", "required"),
            ("expenses.0.amount_cents", "not-positive"),
            ("expenses.category.strumenti", "over-share"),
            ("declaration", "required"),
            ("company.employees", "too-few-employees"),
            ("company.sector", "excluded-sector"),
            ("company.site_regions", "no-site-in-region"),
        ] {
            assert_eq!(a.problems.get(f), Some(code), "{f}: {:?}", a.problems);
        }
        // De minimis: a grant over the room left.
        let a = assess(&draft(), &rules(), &company(12), Some(Cents::euros(10_000)));
        assert_eq!(a.problems.get("company.de_minimis"), Some("ceiling-exceeded"));
        assert!(assess(&draft(), &rules(), &company(12), None).problems.is_empty());
    }

    #[test]
    fn storable_limits_and_a_stable_fingerprint() {
        let mut d = draft();
        d.plan = "x".repeat(PLAN_MAX + 1);
        assert_eq!(check_storable(&d).unwrap_err().get("plan"), Some("too-long"));
        let d = draft();
        let doc = Submitted { call: "c".into(), company: serde_json::json!({"name": "A"}), draft: &d, requested_cents: 5 };
        assert_eq!(fingerprint(&doc), fingerprint(&doc));
        let other = Submitted { requested_cents: 6, ..doc.clone() };
        assert_ne!(fingerprint(&doc), fingerprint(&other));
        assert_eq!(fingerprint(&doc).len(), 64);
    }

    #[test]
    fn a_missing_required_attachment_is_a_problem_and_the_file_changes_the_fingerprint() {
        let mut r = rules();
        r.required_attachments = vec![crate::calls::model::Attachment { code: "piano".into(), label: "Piano".into() }];
        let mut d = draft();
        assert_eq!(assess(&d, &r, &company(12), None).problems.get("attachments.piano"), Some("required"));
        // Without attachments the document is serialised as before they existed: old fingerprints still verify.
        assert!(!serde_json::to_string(&d).unwrap().contains("attachments"));
        let file = |sha: &str| AttachedFile { code: "piano".into(), file_id: "f".into(), name: "piano.pdf".into(), size: 3, content_type: "application/pdf".into(), sha256: sha.into() };
        d.attachments = vec![file("aa")];
        assert!(assess(&d, &r, &company(12), None).problems.is_empty());
        let doc = Submitted { call: "c".into(), company: serde_json::json!({}), draft: &d, requested_cents: 5 };
        let first = fingerprint(&doc);
        let mut d2 = d.clone();
        d2.attachments = vec![file("bb")];
        assert_ne!(first, fingerprint(&Submitted { draft: &d2, ..doc.clone() }));
    }
}
