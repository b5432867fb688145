//! The rules of a funding call, as values: money in integer cents, ATECO sectors, grant amounts (fixed by size band
//! or a share of eligible expenses with a cap), eligibility and the de minimis ceiling. Parsing is strict and every
//! refusal names its reason, so that forms can say what is wrong field by field. No I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Date, Month};

/// An amount of money in euro cents. Never a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

/// The largest amount a call handles: EUR 10 billion (no call comes near; sums of many stay far from `i64::MAX`).
pub const CENTS_MAX: i64 = 1_000_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("required")]
    Empty,
    #[error("not an amount")]
    Format,
    #[error("negative")]
    Negative,
    #[error("too large")]
    TooLarge,
}

impl MoneyError {
    pub fn code(self) -> &'static str {
        match self {
            MoneyError::Empty => "required",
            MoneyError::Format => "not-an-amount",
            MoneyError::Negative => "negative",
            MoneyError::TooLarge => "too-large",
        }
    }
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn euros(e: i64) -> Cents {
        Cents(e * 100)
    }

    /// An amount as people type it, in Italian or English: `7.500,00`, `7500,5`, `7500.50`, `7,500.50`, `€ 7.500`.
    /// With a comma and a dot, the later one is the decimal separator; with only one of them, it is the decimal
    /// separator when one or two digits follow it once, else a thousands separator (`7.500` is seven thousand
    /// five hundred, `7.50` seven and a half). At most two decimals; never negative.
    pub fn parse(input: &str) -> Result<Cents, MoneyError> {
        let s: String = input.trim().trim_start_matches('€').trim_end_matches('€').trim().trim_start_matches("EUR").trim().chars().filter(|c| *c != ' ' && *c != '\u{a0}' && *c != '\'').collect();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        if s.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let last_comma = s.rfind(',');
        let last_dot = s.rfind('.');
        let decimal_at = match (last_comma, last_dot) {
            (Some(c), Some(d)) => Some(c.max(d)),
            (Some(p), None) | (None, Some(p)) => {
                let sep = s.as_bytes()[p];
                let once = s.bytes().filter(|b| *b == sep).count() == 1;
                let after = s.len() - p - 1;
                if once && (after == 1 || after == 2) { Some(p) } else { None }
            }
            (None, None) => None,
        };
        let (int_part, frac_part) = match decimal_at {
            Some(p) => (&s[..p], &s[p + 1..]),
            None => (&s[..], ""),
        };
        if frac_part.len() > 2 || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Format);
        }
        // The integer part: digits, with thousands separators (the other separator) in groups of three.
        let groups: Vec<&str> = int_part.split(['.', ',']).collect();
        if groups.iter().any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit())) {
            return Err(MoneyError::Format);
        }
        if groups.len() > 1 && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
            return Err(MoneyError::Format);
        }
        let digits: String = groups.concat();
        if digits.len() > 15 {
            return Err(MoneyError::TooLarge);
        }
        let euros: i64 = digits.parse().map_err(|_| MoneyError::Format)?;
        let cents: i64 = match frac_part.len() {
            0 => 0,
            1 => frac_part.parse::<i64>().map_err(|_| MoneyError::Format)? * 10,
            _ => frac_part.parse().map_err(|_| MoneyError::Format)?,
        };
        let total = euros.checked_mul(100).and_then(|v| v.checked_add(cents)).ok_or(MoneyError::TooLarge)?;
        if total > CENTS_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(Cents(total))
    }

    pub fn checked_add(self, o: Cents) -> Option<Cents> {
        self.0.checked_add(o.0).map(Cents)
    }
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, o: Cents) -> Cents {
        Cents(self.0 + o.0)
    }
}
impl std::ops::Sub for Cents {
    type Output = Cents;
    fn sub(self, o: Cents) -> Cents {
        Cents(self.0 - o.0)
    }
}
impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(it: I) -> Cents {
        Cents(it.map(|c| c.0).sum())
    }
}

/// Italian notation: `7.500,00 €`.
impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let euros = (abs / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in euros.chars().enumerate() {
            if i > 0 && (euros.len() - i) % 3 == 0 {
                grouped.push('.');
            }
            grouped.push(ch);
        }
        write!(f, "{}{},{:02} €", if neg { "-" } else { "" }, grouped, abs % 100)
    }
}

/// An ATECO economic-activity code (ISTAT's version of NACE): a division of two digits, then optionally the group,
/// class, category and subcategory: `62`, `62.0`, `62.01`, `62.01.0`, `62.01.00`. Kept as its digits (2 to 6); a
/// code excludes every code it is a prefix of (excluding `01` excludes all of agriculture).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ateco(String);

impl Ateco {
    pub fn parse(input: &str) -> Result<Ateco, agilekit_kernel::validate::Invalid> {
        use agilekit_kernel::validate::Invalid;
        let s = input.trim();
        if s.is_empty() {
            return Err(Invalid::Empty);
        }
        let parts: Vec<&str> = s.split('.').collect();
        let widths_ok = match parts.as_slice() {
            [d] => d.len() == 2,
            [d, g] => d.len() == 2 && (g.len() == 1 || g.len() == 2),
            [d, c, k] => d.len() == 2 && c.len() == 2 && (k.len() == 1 || k.len() == 2),
            _ => false,
        };
        if !widths_ok || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(Invalid::Format);
        }
        Ok(Ateco(parts.concat()))
    }

    /// Whether `self` is `other` or one of its subdivisions.
    pub fn within(&self, other: &Ateco) -> bool {
        self.0.starts_with(&other.0)
    }

    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ateco {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        match d.len() {
            2 => write!(f, "{d}"),
            3 | 4 => write!(f, "{}.{}", &d[..2], &d[2..]),
            _ => write!(f, "{}.{}.{}", &d[..2], &d[2..4], &d[4..]),
        }
    }
}
impl TryFrom<String> for Ateco {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ateco::parse(&s).map_err(|e| e.code().to_owned())
    }
}
impl From<Ateco> for String {
    fn from(a: Ateco) -> String {
        a.to_string()
    }
}

/// A fixed grant for companies whose employees are within `min..=max` (no `max`: and above).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub min_employees: u32,
    pub max_employees: Option<u32>,
    pub amount: Cents,
}

/// How much a company may be granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantRule {
    /// A fixed amount by the company's size.
    Bands { bands: Vec<Band> },
    /// A share of the eligible expenses, in basis points (5,000 = 50 %), up to a cap; cents rounded down.
    Share { basis_points: u32, cap: Cents },
}

/// What is wrong with a grant rule (a call's form reports it on the rule's fields).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("no bands")]
    NoBands,
    #[error("band {0}: the range is empty")]
    EmptyBand(usize),
    #[error("band {0}: overlaps or leaves a gap after the previous one")]
    BandNotContiguous(usize),
    #[error("band {0}: the amount must be above zero")]
    BandAmount(usize),
    #[error("only the last band may be open-ended")]
    OpenBandNotLast(usize),
    #[error("the share must be between 0.01 % and 100 %")]
    Share,
    #[error("the cap must be above zero")]
    Cap,
}

impl RuleError {
    /// The field the error belongs to, as a path (`bands.2.amount`), and its stable code.
    pub fn field(&self) -> (String, &'static str) {
        match self {
            RuleError::NoBands => ("bands".into(), "required"),
            RuleError::EmptyBand(i) => (format!("bands.{i}.max_employees"), "empty-range"),
            RuleError::BandNotContiguous(i) => (format!("bands.{i}.min_employees"), "not-contiguous"),
            RuleError::BandAmount(i) => (format!("bands.{i}.amount"), "not-positive"),
            RuleError::OpenBandNotLast(i) => (format!("bands.{i}.max_employees"), "open-band-not-last"),
            RuleError::Share => ("basis_points".into(), "out-of-range"),
            RuleError::Cap => ("cap".into(), "not-positive"),
        }
    }
}

impl GrantRule {
    /// The 2020 "Avviso smartworking" of Regione Lombardia: 3–10 employees EUR 7,500; 11–20 EUR 10,500; 21–30
    /// EUR 15,000; over 30 EUR 22,500.
    pub fn avviso_2020() -> GrantRule {
        GrantRule::Bands {
            bands: vec![
                Band { min_employees: 3, max_employees: Some(10), amount: Cents::euros(7_500) },
                Band { min_employees: 11, max_employees: Some(20), amount: Cents::euros(10_500) },
                Band { min_employees: 21, max_employees: Some(30), amount: Cents::euros(15_000) },
                Band { min_employees: 31, max_employees: None, amount: Cents::euros(22_500) },
            ],
        }
    }

    /// Bands ascending, contiguous (each starts one above the previous end), non-empty, positive; only the last open.
    pub fn check(&self) -> Vec<RuleError> {
        let mut out = Vec::new();
        match self {
            GrantRule::Bands { bands } => {
                if bands.is_empty() {
                    out.push(RuleError::NoBands);
                }
                for (i, b) in bands.iter().enumerate() {
                    if b.max_employees.is_some_and(|m| m < b.min_employees) {
                        out.push(RuleError::EmptyBand(i));
                    }
                    if b.amount.0 <= 0 || b.amount.0 > CENTS_MAX {
                        out.push(RuleError::BandAmount(i));
                    }
                    if b.max_employees.is_none() && i + 1 != bands.len() {
                        out.push(RuleError::OpenBandNotLast(i));
                    }
                    if i > 0 {
                        let prev_end = bands[i - 1].max_employees;
                        if prev_end.is_none_or(|e| e.checked_add(1) != Some(b.min_employees)) {
                            out.push(RuleError::BandNotContiguous(i));
                        }
                    }
                }
            }
            GrantRule::Share { basis_points, cap } => {
                if *basis_points == 0 || *basis_points > 10_000 {
                    out.push(RuleError::Share);
                }
                if cap.0 <= 0 || cap.0 > CENTS_MAX {
                    out.push(RuleError::Cap);
                }
            }
        }
        out
    }

    /// The grant a company of `employees` with `eligible` expenses may get; `None` when no band covers its size.
    pub fn grant_for(&self, employees: u32, eligible: Cents) -> Option<Cents> {
        match self {
            GrantRule::Bands { bands } => bands
                .iter()
                .find(|b| employees >= b.min_employees && b.max_employees.is_none_or(|m| employees <= m))
                .map(|b| b.amount),
            GrantRule::Share { basis_points, cap } => {
                let share = (i128::from(eligible.0.max(0)) * i128::from(*basis_points) / 10_000) as i64;
                Some(Cents(share.min(cap.0)))
            }
        }
    }
}

/// Who may apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    pub min_employees: u32,
    pub max_employees: Option<u32>,
    /// Sectors excluded, each with its subdivisions.
    pub excluded_sectors: Vec<Ateco>,
    /// The region (ISTAT code, `03` is Lombardia) where the company must have an operating site; `None`: anywhere.
    pub site_region: Option<String>,
}

/// What the call's rules look at about a company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanyFacts {
    pub employees: u32,
    pub sector: Ateco,
    /// The regions (ISTAT codes) of its registered and operating sites.
    pub site_regions: Vec<String>,
}

/// Why a company may not apply (each shown to it with the rule's figure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Ineligible {
    TooFewEmployees { min: u32 },
    TooManyEmployees { max: u32 },
    ExcludedSector { sector: String, excluded: String },
    NoSiteInRegion { region: String },
}

impl Eligibility {
    pub fn check(&self, c: &CompanyFacts) -> Vec<Ineligible> {
        let mut out = Vec::new();
        if c.employees < self.min_employees {
            out.push(Ineligible::TooFewEmployees { min: self.min_employees });
        }
        if let Some(max) = self.max_employees.filter(|m| c.employees > *m) {
            out.push(Ineligible::TooManyEmployees { max });
        }
        if let Some(x) = self.excluded_sectors.iter().find(|x| c.sector.within(x)) {
            out.push(Ineligible::ExcludedSector { sector: c.sector.to_string(), excluded: x.to_string() });
        }
        if let Some(r) = self.site_region.as_ref().filter(|r| !c.site_regions.contains(r)) {
            out.push(Ineligible::NoSiteInRegion { region: r.clone() });
        }
        out
    }
}

/// The de minimis ceiling of Regulation (EU) 2023/2831, art. 3(2): EUR 300,000 per single undertaking over any
/// period of three years.
pub const DE_MINIMIS_CEILING: Cents = Cents(300_000_00);

/// De minimis aid a company has received (declared by it, or known to the organisation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidReceived {
    pub granted_on: Date,
    pub amount: Cents,
}

/// The de minimis check failed: what was already used in the window, what the grant would add, the ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DeMinimisExceeded {
    pub used: Cents,
    pub grant: Cents,
    pub ceiling: Cents,
}

/// The same day three years earlier (29 February becomes 28 February).
pub fn three_years_before(d: Date) -> Date {
    let y = d.year() - 3;
    Date::from_calendar_date(y, d.month(), d.day())
        .or_else(|_| Date::from_calendar_date(y, Month::February, 28))
        .unwrap_or(d)
}

/// Whether granting `grant` on `on` keeps the company within `ceiling` over the three years ending on `on`: aid
/// granted after the same day three years earlier and up to `on` counts, together with this grant. Returns the
/// room left after the grant.
pub fn de_minimis(ceiling: Cents, prior: &[AidReceived], grant: Cents, on: Date) -> Result<Cents, DeMinimisExceeded> {
    let from = three_years_before(on);
    let used: Cents = prior.iter().filter(|a| a.granted_on > from && a.granted_on <= on).map(|a| a.amount).sum();
    let total = used + grant;
    if total > ceiling { Err(DeMinimisExceeded { used, grant, ceiling }) } else { Ok(ceiling - total) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn money_as_people_type_it() {
        for (s, c) in [
            ("7.500,00", 750_000),
            ("7500", 750_000),
            ("7500,5", 750_050),
            ("7500.50", 750_050),
            ("7,500.50", 750_050),
            ("€ 7.500", 750_000),
            ("7.500 €", 750_000),
            ("7.50", 750),
            ("1.234.567,89", 123_456_789),
            ("0,01", 1),
            ("EUR 22.500", 2_250_000),
        ] {
            assert_eq!(Cents::parse(s), Ok(Cents(c)), "{s}");
        }
        assert_eq!(Cents::parse(""), Err(MoneyError::Empty));
        assert_eq!(Cents::parse("-5"), Err(MoneyError::Negative));
        for s in ["7,5,00", "75.00.0", "12.34.56", "1,2345", "abc", "7.5e3", "1..2", "1.23456,00"] {
            assert_eq!(Cents::parse(s), Err(MoneyError::Format), "{s}");
        }
        assert_eq!(Cents::parse("99999999999999999999"), Err(MoneyError::TooLarge));
        assert_eq!(Cents::parse("10.000.000.001"), Err(MoneyError::TooLarge));
        assert_eq!(Cents(123_456_789).to_string(), "1.234.567,89 €");
        assert_eq!(Cents(5).to_string(), "0,05 €");
        assert_eq!(Cents::euros(22_500).to_string(), "22.500,00 €");
    }

    #[test]
    fn ateco_codes_and_exclusions() {
        let c = Ateco::parse("62.01.00").unwrap();
        assert_eq!(c.to_string(), "62.01.00");
        assert!(c.within(&Ateco::parse("62").unwrap()));
        assert!(c.within(&Ateco::parse("62.01").unwrap()));
        assert!(c.within(&Ateco::parse("62.0").unwrap()));
        assert!(!c.within(&Ateco::parse("62.02").unwrap()));
        assert!(!Ateco::parse("62").unwrap().within(&c));
        assert_eq!(Ateco::parse("01.1").unwrap().to_string(), "01.1");
        for bad in ["6", "620", "62.", "62.012", "62.01.000", "A62", "62-01", "62.01.00.1"] {
            assert!(Ateco::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_2020_bands() {
        let r = GrantRule::avviso_2020();
        assert!(r.check().is_empty());
        let g = |n| r.grant_for(n, Cents::ZERO);
        assert_eq!(g(2), None);
        assert_eq!(g(3), Some(Cents::euros(7_500)));
        assert_eq!(g(10), Some(Cents::euros(7_500)));
        assert_eq!(g(11), Some(Cents::euros(10_500)));
        assert_eq!(g(20), Some(Cents::euros(10_500)));
        assert_eq!(g(21), Some(Cents::euros(15_000)));
        assert_eq!(g(30), Some(Cents::euros(15_000)));
        assert_eq!(g(31), Some(Cents::euros(22_500)));
        assert_eq!(g(5_000), Some(Cents::euros(22_500)));
    }

    #[test]
    fn bad_rules_name_their_field() {
        let r = GrantRule::Bands {
            bands: vec![
                Band { min_employees: 3, max_employees: Some(10), amount: Cents::euros(1) },
                Band { min_employees: 10, max_employees: None, amount: Cents(0) },
                Band { min_employees: 50, max_employees: Some(40), amount: Cents::euros(1) },
            ],
        };
        let fields: Vec<_> = r.check().iter().map(|e| e.field()).collect();
        assert!(fields.contains(&("bands.1.min_employees".into(), "not-contiguous")), "{fields:?}");
        assert!(fields.contains(&("bands.1.amount".into(), "not-positive")));
        assert!(fields.contains(&("bands.1.max_employees".into(), "open-band-not-last")));
        assert!(fields.contains(&("bands.2.max_employees".into(), "empty-range")));
        assert_eq!(GrantRule::Bands { bands: vec![] }.check(), vec![RuleError::NoBands]);
        assert_eq!(GrantRule::Share { basis_points: 0, cap: Cents(0) }.check(), vec![RuleError::Share, RuleError::Cap]);
    }

    #[test]
    fn a_share_with_a_cap_rounds_down() {
        let r = GrantRule::Share { basis_points: 5_000, cap: Cents::euros(20_000) };
        assert_eq!(r.grant_for(1, Cents(1_001)), Some(Cents(500)));
        assert_eq!(r.grant_for(1, Cents::euros(30_000)), Some(Cents::euros(15_000)));
        assert_eq!(r.grant_for(1, Cents::euros(50_000)), Some(Cents::euros(20_000)));
        let r = GrantRule::Share { basis_points: 3_333, cap: Cents(CENTS_MAX) };
        assert_eq!(r.grant_for(1, Cents(CENTS_MAX)), Some(Cents(CENTS_MAX / 10_000 * 3_333)));
    }

    #[test]
    fn eligibility_names_every_reason() {
        let rules = Eligibility {
            min_employees: 3,
            max_employees: Some(249),
            excluded_sectors: vec![Ateco::parse("01").unwrap(), Ateco::parse("64.19").unwrap()],
            site_region: Some("03".into()),
        };
        let ok = CompanyFacts { employees: 12, sector: Ateco::parse("62.01.00").unwrap(), site_regions: vec!["03".into()] };
        assert!(rules.check(&ok).is_empty());
        let bad = CompanyFacts { employees: 2, sector: Ateco::parse("64.19.10").unwrap(), site_regions: vec!["05".into()] };
        assert_eq!(
            rules.check(&bad),
            vec![
                Ineligible::TooFewEmployees { min: 3 },
                Ineligible::ExcludedSector { sector: "64.19.10".into(), excluded: "64.19".into() },
                Ineligible::NoSiteInRegion { region: "03".into() },
            ]
        );
        assert_eq!(rules.check(&CompanyFacts { employees: 250, ..ok.clone() }), vec![Ineligible::TooManyEmployees { max: 249 }]);
        assert!(rules.check(&CompanyFacts { sector: Ateco::parse("01").unwrap(), ..ok }).len() == 1);
    }

    #[test]
    fn de_minimis_over_three_rolling_years() {
        let on = date!(2026 - 04 - 02);
        let aid = |d, e| AidReceived { granted_on: d, amount: Cents::euros(e) };
        let prior = vec![
            aid(date!(2023 - 04 - 02), 200_000), // exactly three years earlier: out of the window
            aid(date!(2023 - 04 - 03), 150_000),
            aid(date!(2025 - 12 - 31), 127_500),
            aid(date!(2026 - 04 - 03), 100_000), // after the grant date: not counted
        ];
        assert_eq!(de_minimis(DE_MINIMIS_CEILING, &prior, Cents::euros(22_500), on), Ok(Cents::ZERO));
        assert_eq!(
            de_minimis(DE_MINIMIS_CEILING, &prior, Cents(22_500_01), on),
            Err(DeMinimisExceeded { used: Cents::euros(277_500), grant: Cents(22_500_01), ceiling: DE_MINIMIS_CEILING })
        );
        assert_eq!(de_minimis(DE_MINIMIS_CEILING, &[], Cents::euros(7_500), on), Ok(Cents::euros(292_500)));
        assert_eq!(three_years_before(date!(2028 - 02 - 29)), date!(2025 - 02 - 28));
    }
}
