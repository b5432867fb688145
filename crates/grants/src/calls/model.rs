//! A funding call as its organisation's staff define it: texts, budget, allocation mode, grant rule, expense
//! categories, eligibility, required attachments, the opening and closing instants, the de minimis check, and for a
//! ranked call its scoring grid. Validation names every bad field by its path (`grant_rule.bands.2.amount`,
//! `criteria.1.max_points`). No I/O.

use agilekit_kernel::FieldErrors;
use agilekit_kernel::validate::Text;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::model::{Ateco, CENTS_MAX, Cents, Eligibility, GrantRule};

agilekit_kernel::typed_id!(
    /// A funding call.
    CallId
);
agilekit_kernel::typed_id!(
    /// A question and answer published with a call.
    FaqId
);
agilekit_kernel::typed_id!(
    /// A document published with a call (decree, form, annex, erratum).
    DocumentId
);

/// The longest title of a call's document (characters).
pub const DOCUMENT_TITLE_MAX: usize = 200;

pub const QUESTION_MAX: usize = 1_000;
pub const ANSWER_MAX: usize = 10_000;

pub const TITLE_MAX: usize = 200;
pub const SUMMARY_MAX: usize = 1_000;
pub const BODY_MAX: usize = 100_000;
pub const LABEL_MAX: usize = 200;
pub const CODE_MAX: usize = 32;
pub const LIST_MAX: usize = 30;

/// How the money is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// First come, first served, by protocol order, with an overbooking list.
    Sportello,
    /// By evaluation score, after the call closes.
    Graduatoria,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sportello => "sportello",
            Mode::Graduatoria => "graduatoria",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "sportello" => Some(Mode::Sportello),
            "graduatoria" => Some(Mode::Graduatoria),
            _ => None,
        }
    }
}

/// An expense category; `max_share_bp` caps its share of the eligible expenses (basis points; 3,333 is a third).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Category {
    pub code: String,
    pub label: String,
    pub max_share_bp: Option<u32>,
}

/// An attachment every application must carry (`code` names it in the application).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Attachment {
    pub code: String,
    pub label: String,
}

/// A criterion of a ranked call's scoring grid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Criterion {
    pub code: String,
    pub label: String,
    pub max_points: u32,
}

/// Who may apply, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct EligibilityInput {
    pub min_employees: u32,
    pub max_employees: Option<u32>,
    /// ATECO codes (`01`, `64.19`): each excludes its subdivisions.
    pub excluded_sectors: Vec<String>,
    /// ISTAT code of the region where an operating site is required (`03`), or none.
    pub site_region: Option<String>,
}

/// A call as typed (API body or page form).
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CallInput {
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    pub budget_cents: Option<i64>,
    /// `sportello` or `graduatoria`.
    pub mode: String,
    #[schema(value_type = Object)]
    pub grant_rule: Option<GrantRule>,
    pub categories: Vec<Category>,
    pub eligibility: EligibilityInput,
    pub required_attachments: Vec<Attachment>,
    /// RFC 3339 (`2027-04-02T12:00:00+02:00`), or a Rome local time `2027-04-02T12:00` as a page's field sends it.
    pub opens_at: String,
    pub closes_at: String,
    /// Whether applications are checked against the de minimis ceiling.
    pub de_minimis: bool,
    /// The scoring grid (ranked calls only).
    pub criteria: Vec<Criterion>,
    /// Criterion codes that break ties, in order (then the earlier protocol).
    pub tie_breaks: Vec<String>,
}

/// A call input that passed every check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Valid {
    pub title: String,
    pub summary: String,
    pub body: String,
    pub budget: Cents,
    pub mode: Mode,
    pub grant_rule: GrantRule,
    pub categories: Vec<Category>,
    pub eligibility: Eligibility,
    pub required_attachments: Vec<Attachment>,
    pub opens_at: OffsetDateTime,
    pub closes_at: OffsetDateTime,
    pub de_minimis: bool,
    pub criteria: Vec<Criterion>,
    pub tie_breaks: Vec<String>,
}

/// An instant as typed: RFC 3339 with its offset, or a Rome wall-clock time without one (`YYYY-MM-DDTHH:MM[:SS]`).
pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.to_offset(time::UtcOffset::UTC));
    }
    let long = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let local = PrimitiveDateTime::parse(s, &long).or_else(|_| PrimitiveDateTime::parse(s, &short)).ok()?;
    Some(from_rome(local))
}

/// A Rome wall-clock time as a UTC instant (in the hour that repeats in October, the first, summer one).
pub fn from_rome(local: PrimitiveDateTime) -> OffsetDateTime {
    let guess = local.assume_utc();
    for hours in [2, 1] {
        let offset = time::UtcOffset::from_hms(hours, 0, 0).expect("valid offset");
        let t = local.assume_offset(offset).to_offset(time::UtcOffset::UTC);
        if agilekit_kernel::clock::rome_offset(t) == offset {
            return t;
        }
    }
    // The hour skipped in March: read it with the winter offset.
    guess - time::Duration::hours(1)
}

/// A short code typed by staff: lowercase letters, digits, `-` and `_`.
fn code_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= CODE_MAX && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn codes_unique<'a>(e: &mut FieldErrors, list: &str, codes: impl Iterator<Item = &'a str>) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in codes.enumerate() {
        if !code_ok(c) {
            e.add(&format!("{list}.{i}.code"), "bad-code");
        } else if seen.contains(&c) {
            e.add(&format!("{list}.{i}.code"), "duplicate");
        }
        seen.push(c);
    }
}

impl CallInput {
    pub fn validate(&self) -> Result<Valid, FieldErrors> {
        let mut e = FieldErrors::new();
        let title = e.check("title", Text::parse(&self.title, TITLE_MAX)).map(Text::into_string);
        let summary = e.check("summary", Text::parse(&self.summary, SUMMARY_MAX)).map(Text::into_string);
        let body = if self.body.chars().count() > BODY_MAX {
            e.add("body", "too-long");
            None
        } else {
            Some(self.body.trim().to_owned())
        };
        let budget = match self.budget_cents {
            None => {
                e.add("budget_cents", "required");
                None
            }
            Some(b) if b <= 0 => {
                e.add("budget_cents", "not-positive");
                None
            }
            Some(b) if b > CENTS_MAX => {
                e.add("budget_cents", "too-large");
                None
            }
            Some(b) => Some(Cents(b)),
        };
        let mode = if self.mode.trim().is_empty() {
            e.add("mode", "required");
            None
        } else {
            let m = Mode::parse(self.mode.trim());
            if m.is_none() {
                e.add("mode", "unknown-mode");
            }
            m
        };
        let rule = match &self.grant_rule {
            None => {
                e.add("grant_rule", "required");
                None
            }
            Some(r) => {
                let errs = r.check();
                for x in &errs {
                    let (f, code) = x.field();
                    e.add(&format!("grant_rule.{f}"), code);
                }
                errs.is_empty().then(|| r.clone())
            }
        };

        for (i, c) in self.categories.iter().enumerate() {
            if Text::parse(&c.label, LABEL_MAX).is_err() {
                e.add(&format!("categories.{i}.label"), if c.label.trim().is_empty() { "required" } else { "too-long" });
            }
            if c.max_share_bp.is_some_and(|s| s == 0 || s > 10_000) {
                e.add(&format!("categories.{i}.max_share_bp"), "out-of-range");
            }
        }
        if self.categories.is_empty() {
            e.add("categories", "required");
        }
        if self.categories.len() > LIST_MAX {
            e.add("categories", "too-many");
        }
        codes_unique(&mut e, "categories", self.categories.iter().map(|c| c.code.as_str()));

        for (i, a) in self.required_attachments.iter().enumerate() {
            if Text::parse(&a.label, LABEL_MAX).is_err() {
                e.add(&format!("required_attachments.{i}.label"), if a.label.trim().is_empty() { "required" } else { "too-long" });
            }
        }
        if self.required_attachments.len() > LIST_MAX {
            e.add("required_attachments", "too-many");
        }
        codes_unique(&mut e, "required_attachments", self.required_attachments.iter().map(|a| a.code.as_str()));

        let el = &self.eligibility;
        if el.max_employees.is_some_and(|m| m < el.min_employees) {
            e.add("eligibility.max_employees", "below-minimum");
        }
        let mut excluded = Vec::new();
        for (i, s) in el.excluded_sectors.iter().enumerate() {
            match Ateco::parse(s) {
                Ok(a) => excluded.push(a),
                Err(x) => e.add(&format!("eligibility.excluded_sectors.{i}"), x.code()),
            }
        }
        let site_region = el.site_region.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
        if site_region.as_deref().is_some_and(|r| crate::companies::model::region_name(r).is_none()) {
            e.add("eligibility.site_region", "unknown-region");
        }

        let instant = |e: &mut FieldErrors, field: &str, s: &str| {
            if s.trim().is_empty() {
                e.add(field, "required");
                None
            } else {
                let t = parse_instant(s);
                if t.is_none() {
                    e.add(field, "bad-instant");
                }
                t
            }
        };
        let opens_at = instant(&mut e, "opens_at", &self.opens_at);
        let closes_at = instant(&mut e, "closes_at", &self.closes_at);
        if let (Some(o), Some(c)) = (opens_at, closes_at) {
            if c <= o {
                e.add("closes_at", "not-after-opening");
            }
        }

        let graduatoria = mode == Some(Mode::Graduatoria);
        if graduatoria && self.criteria.is_empty() {
            e.add("criteria", "required");
        }
        if !graduatoria && !self.criteria.is_empty() {
            e.add("criteria", "only-for-graduatoria");
        }
        for (i, c) in self.criteria.iter().enumerate() {
            if Text::parse(&c.label, LABEL_MAX).is_err() {
                e.add(&format!("criteria.{i}.label"), if c.label.trim().is_empty() { "required" } else { "too-long" });
            }
            if c.max_points == 0 || c.max_points > 1_000 {
                e.add(&format!("criteria.{i}.max_points"), "out-of-range");
            }
        }
        codes_unique(&mut e, "criteria", self.criteria.iter().map(|c| c.code.as_str()));
        for (i, t) in self.tie_breaks.iter().enumerate() {
            if !self.criteria.iter().any(|c| &c.code == t) {
                e.add(&format!("tie_breaks.{i}"), "unknown-criterion");
            } else if self.tie_breaks[..i].contains(t) {
                e.add(&format!("tie_breaks.{i}"), "duplicate");
            }
        }

        match (title, summary, body, budget, mode, rule, opens_at, closes_at) {
            (Some(title), Some(summary), Some(body), Some(budget), Some(mode), Some(grant_rule), Some(opens_at), Some(closes_at)) if e.is_empty() => {
                Ok(Valid {
                    title,
                    summary,
                    body,
                    budget,
                    mode,
                    grant_rule,
                    categories: self.categories.iter().map(|c| Category { code: c.code.clone(), label: c.label.trim().to_owned(), max_share_bp: c.max_share_bp }).collect(),
                    eligibility: Eligibility { min_employees: el.min_employees, max_employees: el.max_employees, excluded_sectors: excluded, site_region },
                    required_attachments: self.required_attachments.iter().map(|a| Attachment { code: a.code.clone(), label: a.label.trim().to_owned() }).collect(),
                    opens_at: agilekit_kernel::clock::stamp(opens_at),
                    closes_at: agilekit_kernel::clock::stamp(closes_at),
                    de_minimis: self.de_minimis,
                    criteria: self.criteria.iter().map(|c| Criterion { code: c.code.clone(), label: c.label.trim().to_owned(), max_points: c.max_points }).collect(),
                    tie_breaks: self.tie_breaks.clone(),
                })
            }
            _ => Err(e),
        }
    }
}

/// The stored rules document of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub grant_rule: GrantRule,
    pub categories: Vec<Category>,
    pub eligibility: Eligibility,
    pub required_attachments: Vec<Attachment>,
    pub criteria: Vec<Criterion>,
    pub tie_breaks: Vec<String>,
}

impl Rules {
    pub fn of(v: &Valid) -> Rules {
        Rules {
            grant_rule: v.grant_rule.clone(),
            categories: v.categories.clone(),
            eligibility: v.eligibility.clone(),
            required_attachments: v.required_attachments.clone(),
            criteria: v.criteria.clone(),
            tie_breaks: v.tie_breaks.clone(),
        }
    }
}

/// A FAQ as typed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FaqInput {
    pub question: String,
    pub answer: String,
}

impl FaqInput {
    pub fn validate(&self) -> Result<(String, String), FieldErrors> {
        let mut e = FieldErrors::new();
        let q = e.check("question", Text::parse(&self.question, QUESTION_MAX));
        let a = e.check("answer", Text::parse(&self.answer, ANSWER_MAX));
        match (q, a) {
            (Some(q), Some(a)) => Ok((q.into_string(), a.into_string())),
            _ => Err(e),
        }
    }
}

/// Where a published call stands at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Not published yet (its staff only).
    Draft,
    /// Published, not open yet: companies prepare drafts and upload attachments.
    Upcoming,
    Open,
    Closed,
}

pub fn phase(published: bool, opens_at: OffsetDateTime, closes_at: OffsetDateTime, now: OffsetDateTime) -> Phase {
    if !published {
        Phase::Draft
    } else if now < opens_at {
        Phase::Upcoming
    } else if now < closes_at {
        Phase::Open
    } else {
        Phase::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Band;
    use time::macros::datetime;

    pub fn avviso() -> CallInput {
        CallInput {
            title: "Avviso smartworking".into(),
            summary: "Contributi alle imprese per piani di smart working.".into(),
            body: "## Finalità\nSostenere lo smart working.".into(),
            budget_cents: Some(4_500_000_00),
            mode: "sportello".into(),
            grant_rule: Some(GrantRule::avviso_2020()),
            categories: vec![
                Category { code: "consulenza".into(), label: "Consulenza e formazione".into(), max_share_bp: None },
                Category { code: "strumenti".into(), label: "Strumenti tecnologici".into(), max_share_bp: Some(3_333) },
            ],
            eligibility: EligibilityInput { min_employees: 3, max_employees: None, excluded_sectors: vec!["01".into()], site_region: Some("03".into()) },
            required_attachments: vec![Attachment { code: "piano".into(), label: "Piano di smart working".into() }],
            opens_at: "2027-04-02T12:00".into(),
            closes_at: "2027-12-31T16:00:00+01:00".into(),
            de_minimis: true,
            criteria: vec![],
            tie_breaks: vec![],
        }
    }

    #[test]
    fn the_2020_call_is_valid_and_its_opening_is_rome_time() {
        let v = avviso().validate().unwrap();
        assert_eq!(v.opens_at.replace_nanosecond(0).unwrap(), datetime!(2027-04-02 10:00 UTC));
        assert_eq!(v.closes_at.replace_nanosecond(0).unwrap(), datetime!(2027-12-31 15:00 UTC));
        assert_eq!(v.eligibility.excluded_sectors[0].to_string(), "01");
        assert_eq!(phase(true, v.opens_at, v.closes_at, datetime!(2027-04-02 09:59:59 UTC)), Phase::Upcoming);
        assert_eq!(phase(true, v.opens_at, v.closes_at, datetime!(2027-04-02 10:00:01 UTC)), Phase::Open);
        assert_eq!(phase(true, v.opens_at, v.closes_at, datetime!(2028-01-01 00:00 UTC)), Phase::Closed);
        assert_eq!(phase(false, v.opens_at, v.closes_at, datetime!(2027-05-01 00:00 UTC)), Phase::Draft);
        // Winter time, and the hour that repeats in October reads as the summer one.
        assert_eq!(parse_instant("2027-01-15T09:30"), Some(datetime!(2027-01-15 08:30 UTC)));
        assert_eq!(parse_instant("2026-10-25T02:30"), Some(datetime!(2026-10-25 00:30 UTC)));
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let bad = CallInput {
            title: String::new(),
            budget_cents: Some(0),
            mode: "lotteria".into(),
            grant_rule: Some(GrantRule::Bands { bands: vec![Band { min_employees: 5, max_employees: Some(2), amount: Cents(0) }] }),
            categories: vec![
                Category { code: "a".into(), label: "A".into(), max_share_bp: Some(20_000) },
                Category { code: "a".into(), label: String::new(), max_share_bp: None },
                Category { code: "B C".into(), label: "B".into(), max_share_bp: None },
            ],
            eligibility: EligibilityInput { min_employees: 10, max_employees: Some(5), excluded_sectors: vec!["x".into()], site_region: Some("99".into()) },
            opens_at: "domani".into(),
            closes_at: String::new(),
            criteria: vec![Criterion { code: "q".into(), label: "Qualità".into(), max_points: 10 }],
            tie_breaks: vec!["z".into()],
            ..avviso()
        };
        let e = bad.validate().unwrap_err();
        for (f, code) in [
            ("title", "required"),
            ("budget_cents", "not-positive"),
            ("mode", "unknown-mode"),
            ("grant_rule.bands.0.max_employees", "empty-range"),
            ("grant_rule.bands.0.amount", "not-positive"),
            ("categories.0.max_share_bp", "out-of-range"),
            ("categories.1.label", "required"),
            ("categories.1.code", "duplicate"),
            ("categories.2.code", "bad-code"),
            ("eligibility.max_employees", "below-minimum"),
            ("eligibility.excluded_sectors.0", "format"),
            ("eligibility.site_region", "unknown-region"),
            ("opens_at", "bad-instant"),
            ("closes_at", "required"),
            ("tie_breaks.0", "unknown-criterion"),
        ] {
            assert_eq!(e.get(f), Some(code), "{f}: {e:?}");
        }
        let e = CallInput { closes_at: "2027-04-02T11:00".into(), ..avviso() }.validate().unwrap_err();
        assert_eq!(e.get("closes_at"), Some("not-after-opening"));
        let e = CallInput { mode: "graduatoria".into(), ..avviso() }.validate().unwrap_err();
        assert_eq!(e.get("criteria"), Some("required"));
        let e = CallInput { criteria: vec![Criterion { code: "q".into(), label: "Q".into(), max_points: 5 }], ..avviso() }.validate().unwrap_err();
        assert_eq!(e.get("criteria"), Some("only-for-graduatoria"));
        let ok = CallInput {
            mode: "graduatoria".into(),
            criteria: vec![Criterion { code: "q".into(), label: "Q".into(), max_points: 5 }, Criterion { code: "i".into(), label: "I".into(), max_points: 3 }],
            tie_breaks: vec!["i".into()],
            ..avviso()
        };
        assert!(ok.validate().is_ok());
    }
}
