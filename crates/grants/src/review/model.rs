//! The review of an application that holds money, as a pure state machine: which step is due at each stage, who
//! takes it (the call organisation's staff or the company), where it leads; the inputs of each step parsed field by
//! field; the amount to pay. No I/O.
//!
//! ```text
//! check ──admit──────────────▶ admissible ──grant──▶ granted ──report──▶ reported ──approve──▶ approved
//!   │  ╲──request integration─▶ integration             ▲                 │   ╲──reject report──▶ rejected
//!   │         │  ╲─answer (company)─▶ check              │                 ╲──ask corrections─▶ corrections
//!   │         ╲─inadmissible (after the deadline)─┐      ╲────report (company)───────────────────────┘
//!   ╲──inadmissible───────────────────────────────┴▶ inadmissible
//! ```
//!
//! A ranked call's applications can enter at `check` once ranked; nothing here depends on the allocation mode.

use agilekit_kernel::FieldErrors;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::model::{Cents, GrantRule, MoneyError};

/// Where an application stands in its review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The formal check is due (staff).
    Check,
    /// The staff asked the company for an integration; its answer is due (or, after the deadline, a decision).
    Integration,
    /// Formally admissible: the grant decision is due (staff).
    Admissible,
    /// Closed: not admissible; the money went back to the call.
    Inadmissible,
    /// Granted: the expense report is due (company).
    Granted,
    /// The expense report is in: its approval is due (staff).
    Reported,
    /// The staff asked for corrections of the report: a new report is due (company).
    Corrections,
    /// Closed: the report is approved and the amount to pay fixed.
    Approved,
    /// Closed: the report was rejected.
    Rejected,
}

pub const STAGES: [Stage; 9] =
    [Stage::Check, Stage::Integration, Stage::Admissible, Stage::Inadmissible, Stage::Granted, Stage::Reported, Stage::Corrections, Stage::Approved, Stage::Rejected];

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Check => "check",
            Stage::Integration => "integration",
            Stage::Admissible => "admissible",
            Stage::Inadmissible => "inadmissible",
            Stage::Granted => "granted",
            Stage::Reported => "reported",
            Stage::Corrections => "corrections",
            Stage::Approved => "approved",
            Stage::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Stage> {
        STAGES.into_iter().find(|x| x.as_str() == s)
    }
    /// Whether the review is over.
    pub fn closed(self) -> bool {
        matches!(self, Stage::Inadmissible | Stage::Approved | Stage::Rejected)
    }
    /// Who the next step belongs to.
    pub fn due_from(self) -> Option<Party> {
        match self {
            Stage::Check | Stage::Admissible | Stage::Reported => Some(Party::Staff),
            Stage::Integration | Stage::Granted | Stage::Corrections => Some(Party::Company),
            _ => None,
        }
    }
}

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Staff,
    Company,
}

/// A step of the review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Admit,
    RequestIntegration,
    Answer,
    DeclareInadmissible,
    Grant,
    Report,
    RequestCorrections,
    Approve,
    RejectReport,
}

pub const ACTIONS: [Action; 9] = [
    Action::Admit,
    Action::RequestIntegration,
    Action::Answer,
    Action::DeclareInadmissible,
    Action::Grant,
    Action::Report,
    Action::RequestCorrections,
    Action::Approve,
    Action::RejectReport,
];

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Admit => "admit",
            Action::RequestIntegration => "request_integration",
            Action::Answer => "answer",
            Action::DeclareInadmissible => "declare_inadmissible",
            Action::Grant => "grant",
            Action::Report => "report",
            Action::RequestCorrections => "request_corrections",
            Action::Approve => "approve",
            Action::RejectReport => "reject_report",
        }
    }
    pub fn parse(s: &str) -> Option<Action> {
        ACTIONS.into_iter().find(|x| x.as_str() == s)
    }
    /// Who may take the step.
    pub fn party(self) -> Party {
        match self {
            Action::Answer | Action::Report => Party::Company,
            _ => Party::Staff,
        }
    }
}

/// Why a step is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The step is the other party's.
    #[error("not this party's step")]
    WrongParty,
    /// The step is not due at this stage (409 `step-not-due`).
    #[error("not due at this stage")]
    NotDue,
    /// Inadmissible while the company's integration is awaited and its deadline has not passed (409
    /// `integration-pending`).
    #[error("the integration's deadline has not passed")]
    IntegrationPending,
}

impl Refused {
    pub fn code(self) -> &'static str {
        match self {
            Refused::WrongParty => "not-your-step",
            Refused::NotDue => "step-not-due",
            Refused::IntegrationPending => "integration-pending",
        }
    }
}

/// The stage after `action` taken by `by` at `stage`; `overdue`: the deadline of a pending integration has passed.
pub fn next(stage: Stage, action: Action, by: Party, overdue: bool) -> Result<Stage, Refused> {
    if action.party() != by {
        return Err(Refused::WrongParty);
    }
    use Action as A;
    use Stage as S;
    match (stage, action) {
        (S::Check, A::Admit) => Ok(S::Admissible),
        (S::Check, A::RequestIntegration) => Ok(S::Integration),
        (S::Check, A::DeclareInadmissible) => Ok(S::Inadmissible),
        (S::Integration, A::Answer) => Ok(S::Check),
        (S::Integration, A::DeclareInadmissible) if overdue => Ok(S::Inadmissible),
        (S::Integration, A::DeclareInadmissible) => Err(Refused::IntegrationPending),
        (S::Admissible, A::Grant) => Ok(S::Granted),
        (S::Granted | S::Corrections, A::Report) => Ok(S::Reported),
        (S::Reported, A::Approve) => Ok(S::Approved),
        (S::Reported, A::RejectReport) => Ok(S::Rejected),
        (S::Reported, A::RequestCorrections) => Ok(S::Corrections),
        _ => Err(Refused::NotDue),
    }
}

/// The steps `by` may take now.
pub fn steps(stage: Stage, by: Party, overdue: bool) -> Vec<Action> {
    ACTIONS.into_iter().filter(|a| next(stage, *a, by, overdue).is_ok()).collect()
}

pub const TEXT_MAX: usize = 5_000;
pub const SHORT_MAX: usize = 200;
pub const LINES_MAX: usize = 50;

fn text(e: &mut FieldErrors, field: &str, v: &str, max: usize, required: bool) -> String {
    let t = v.trim();
    if required && t.is_empty() {
        e.add(field, "required");
    } else if t.chars().count() > max {
        e.add(field, "too-long");
    } else if t.contains('\0') {
        e.add(field, "format");
    }
    t.to_owned()
}

fn money(e: &mut FieldErrors, field: &str, v: &str) -> Option<Cents> {
    match Cents::parse(v) {
        Ok(c) => Some(c),
        Err(m) => {
            e.add(field, MoneyError::code(m));
            None
        }
    }
}

fn date(e: &mut FieldErrors, field: &str, v: &str) -> Option<Date> {
    let v = v.trim();
    if v.is_empty() {
        e.add(field, "required");
        return None;
    }
    match Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")) {
        Ok(d) => Some(d),
        Err(_) => {
            e.add(field, "format");
            None
        }
    }
}

/// The formal check's outcome as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CheckInput {
    /// `admissible`, `integration` or `inadmissible`.
    pub outcome: String,
    /// What the company must integrate (`integration`).
    pub message: String,
    /// The deadline of the integration, `YYYY-MM-DD` (`integration`).
    pub deadline: String,
    /// Why the application is not admissible (`inadmissible`).
    pub reasons: String,
}

/// A parsed formal-check step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Admissible,
    Integration { message: String, deadline: Date },
    Inadmissible { reasons: String },
}

impl Check {
    pub fn action(&self) -> Action {
        match self {
            Check::Admissible => Action::Admit,
            Check::Integration { .. } => Action::RequestIntegration,
            Check::Inadmissible { .. } => Action::DeclareInadmissible,
        }
    }
}

/// Parses a check; a deadline must be after `today`.
pub fn parse_check(i: &CheckInput, today: Date) -> Result<Check, FieldErrors> {
    let mut e = FieldErrors::new();
    let out = match i.outcome.trim() {
        "admissible" => Some(Check::Admissible),
        "integration" => {
            let message = text(&mut e, "message", &i.message, TEXT_MAX, true);
            let deadline = deadline(&mut e, "deadline", &i.deadline, today);
            deadline.map(|deadline| Check::Integration { message, deadline })
        }
        "inadmissible" => Some(Check::Inadmissible { reasons: text(&mut e, "reasons", &i.reasons, TEXT_MAX, true) }),
        "" => {
            e.add("outcome", "required");
            None
        }
        _ => {
            e.add("outcome", "unknown-outcome");
            None
        }
    };
    match out {
        Some(c) if e.is_empty() => Ok(c),
        _ => Err(e),
    }
}

fn deadline(e: &mut FieldErrors, field: &str, v: &str, today: Date) -> Option<Date> {
    let d = date(e, field, v)?;
    if d <= today {
        e.add(field, "not-after-today");
        return None;
    }
    Some(d)
}

/// The company's answer to an integration request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AnswerInput {
    pub text: String,
}

pub fn parse_answer(i: &AnswerInput) -> Result<String, FieldErrors> {
    let mut e = FieldErrors::new();
    let t = text(&mut e, "text", &i.text, TEXT_MAX, true);
    if e.is_empty() { Ok(t) } else { Err(e) }
}

/// The grant decision as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct GrantInput {
    /// The amount granted as people type it (`7.500,00`); at most the amount requested.
    pub amount: String,
    /// The number of the act (decree, determination) that grants it.
    pub act_number: String,
    /// The act's date, `YYYY-MM-DD`, not in the future.
    pub act_date: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub amount: Cents,
    pub act_number: String,
    pub act_date: Date,
}

pub fn parse_grant(i: &GrantInput, requested: Cents, today: Date) -> Result<Grant, FieldErrors> {
    let mut e = FieldErrors::new();
    let amount = money(&mut e, "amount", &i.amount);
    if let Some(a) = amount {
        if a.0 == 0 {
            e.add("amount", "not-positive");
        } else if a > requested {
            e.add("amount", "over-requested");
        }
    }
    let act_number = text(&mut e, "act_number", &i.act_number, SHORT_MAX, true);
    let act_date = date(&mut e, "act_date", &i.act_date);
    if act_date.is_some_and(|d| d > today) {
        e.add("act_date", "in-the-future");
    }
    match (amount, act_date) {
        (Some(amount), Some(act_date)) if e.is_empty() => Ok(Grant { amount, act_number, act_date }),
        _ => Err(e),
    }
}

/// One line of an expense report as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LineInput {
    /// A category code of the call.
    pub category: String,
    pub description: String,
    /// As people type money: `1.250,00`.
    pub amount: String,
    /// The invoice's number and date, or another reference to the expense's evidence.
    pub invoice: String,
}

/// The expense report as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ReportInput {
    pub lines: Vec<LineInput>,
}

/// A stored line of the report; `eligible_cents` once approved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Line {
    pub category: String,
    pub description: String,
    pub amount_cents: i64,
    pub invoice: String,
    #[serde(default)]
    pub eligible_cents: Option<i64>,
}

/// Parses a report; blank lines (every field empty) are dropped; categories must be the call's.
pub fn parse_report(i: &ReportInput, categories: &[String]) -> Result<Vec<Line>, FieldErrors> {
    let mut e = FieldErrors::new();
    let lines: Vec<(usize, &LineInput)> = i
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| ![&l.category, &l.description, &l.amount, &l.invoice].iter().all(|v| v.trim().is_empty()))
        .collect();
    if lines.is_empty() {
        e.add("lines", "required");
    }
    if lines.len() > LINES_MAX {
        e.add("lines", "too-many");
    }
    let mut out = Vec::new();
    for (n, l) in lines {
        let category = l.category.trim().to_owned();
        if category.is_empty() {
            e.add(&format!("lines.{n}.category"), "required");
        } else if !categories.contains(&category) {
            e.add(&format!("lines.{n}.category"), "unknown-category");
        }
        let description = text(&mut e, &format!("lines.{n}.description"), &l.description, SHORT_MAX * 2, true);
        let amount = money(&mut e, &format!("lines.{n}.amount"), &l.amount);
        if amount.is_some_and(|a| a.0 == 0) {
            e.add(&format!("lines.{n}.amount"), "not-positive");
        }
        let invoice = text(&mut e, &format!("lines.{n}.invoice"), &l.invoice, SHORT_MAX, true);
        out.push(Line { category, description, amount_cents: amount.map_or(0, |a| a.0), invoice, eligible_cents: None });
    }
    if e.is_empty() { Ok(out) } else { Err(e) }
}

/// The approval step as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ApprovalInput {
    /// `approve`, `corrections` or `reject`.
    pub outcome: String,
    /// `approve`: the eligible amount of each line, in the report's order, as people type money (at most the
    /// amount reported).
    pub eligible: Vec<String>,
    /// `corrections`: what to correct.
    pub message: String,
    /// `corrections`: the deadline, `YYYY-MM-DD`.
    pub deadline: String,
    /// `reject`: why.
    pub reasons: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    Approve { eligible: Vec<Cents> },
    Corrections { message: String, deadline: Date },
    Reject { reasons: String },
}

impl Approval {
    pub fn action(&self) -> Action {
        match self {
            Approval::Approve { .. } => Action::Approve,
            Approval::Corrections { .. } => Action::RequestCorrections,
            Approval::Reject { .. } => Action::RejectReport,
        }
    }
}

pub fn parse_approval(i: &ApprovalInput, lines: &[Line], today: Date) -> Result<Approval, FieldErrors> {
    let mut e = FieldErrors::new();
    let out = match i.outcome.trim() {
        "approve" => {
            let mut eligible = Vec::new();
            for (n, l) in lines.iter().enumerate() {
                let f = format!("eligible.{n}");
                match i.eligible.get(n).map(String::as_str).unwrap_or("") {
                    v if v.trim().is_empty() => e.add(&f, "required"),
                    v => {
                        if let Some(c) = money(&mut e, &f, v) {
                            if c.0 > l.amount_cents {
                                e.add(&f, "over-reported");
                            }
                            eligible.push(c);
                        }
                    }
                }
            }
            Some(Approval::Approve { eligible })
        }
        "corrections" => {
            let message = text(&mut e, "message", &i.message, TEXT_MAX, true);
            deadline(&mut e, "deadline", &i.deadline, today).map(|deadline| Approval::Corrections { message, deadline })
        }
        "reject" => Some(Approval::Reject { reasons: text(&mut e, "reasons", &i.reasons, TEXT_MAX, true) }),
        "" => {
            e.add("outcome", "required");
            None
        }
        _ => {
            e.add("outcome", "unknown-outcome");
            None
        }
    };
    match out {
        Some(a) if e.is_empty() => Ok(a),
        _ => Err(e),
    }
}

/// The amount to pay: the grant rule applied to the approved expenses, never more than the amount granted.
pub fn to_pay(rule: &GrantRule, employees: u32, granted: Cents, approved: Cents) -> Cents {
    rule.grant_for(employees, approved).unwrap_or(Cents::ZERO).min(granted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Band;
    use time::macros::date;

    #[test]
    fn the_whole_transition_table() {
        use Action as A;
        use Stage as S;
        // (stage, action, whether a deadline must have passed) → stage; everything not listed is refused.
        let allowed: &[(Stage, Action, Option<bool>, Stage)] = &[
            (S::Check, A::Admit, None, S::Admissible),
            (S::Check, A::RequestIntegration, None, S::Integration),
            (S::Check, A::DeclareInadmissible, None, S::Inadmissible),
            (S::Integration, A::Answer, None, S::Check),
            (S::Integration, A::DeclareInadmissible, Some(true), S::Inadmissible),
            (S::Admissible, A::Grant, None, S::Granted),
            (S::Granted, A::Report, None, S::Reported),
            (S::Corrections, A::Report, None, S::Reported),
            (S::Reported, A::Approve, None, S::Approved),
            (S::Reported, A::RejectReport, None, S::Rejected),
            (S::Reported, A::RequestCorrections, None, S::Corrections),
        ];
        let mut seen = 0;
        for stage in STAGES {
            for action in ACTIONS {
                for overdue in [false, true] {
                    for by in [Party::Staff, Party::Company] {
                        let got = next(stage, action, by, overdue);
                        if by != action.party() {
                            assert_eq!(got, Err(Refused::WrongParty), "{stage:?} {action:?} by {by:?}");
                            continue;
                        }
                        let want = allowed
                            .iter()
                            .find(|(s, a, o, _)| *s == stage && *a == action && o.is_none_or(|o| o == overdue))
                            .map(|x| x.3);
                        match want {
                            Some(to) => {
                                assert_eq!(got, Ok(to), "{stage:?} {action:?} overdue={overdue}");
                                seen += 1;
                            }
                            None if stage == S::Integration && action == A::DeclareInadmissible => {
                                assert_eq!(got, Err(Refused::IntegrationPending))
                            }
                            None => assert_eq!(got, Err(Refused::NotDue), "{stage:?} {action:?} overdue={overdue}"),
                        }
                    }
                }
            }
        }
        // Every allowed transition but the overdue one holds whether or not a deadline passed.
        assert_eq!(seen, (allowed.len() - 1) * 2 + 1);
        for s in [S::Inadmissible, S::Approved, S::Rejected] {
            assert!(s.closed() && s.due_from().is_none());
            assert!(steps(s, Party::Staff, true).is_empty() && steps(s, Party::Company, true).is_empty());
        }
        assert_eq!(steps(S::Check, Party::Staff, false), vec![A::Admit, A::RequestIntegration, A::DeclareInadmissible]);
        assert_eq!(steps(S::Integration, Party::Staff, false), Vec::<Action>::new());
        assert_eq!(steps(S::Integration, Party::Staff, true), vec![A::DeclareInadmissible]);
        assert_eq!(steps(S::Integration, Party::Company, false), vec![A::Answer]);
        for s in STAGES {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            // The party the stage waits for is the one with a step.
            if let Some(p) = s.due_from() {
                assert!(!steps(s, p, true).is_empty(), "{s:?}");
            }
        }
        for a in ACTIONS {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn the_amount_to_pay_under_both_rules() {
        let bands = GrantRule::avviso_2020();
        // A fixed grant: the band's amount, never more than granted.
        assert_eq!(to_pay(&bands, 12, Cents::euros(10_500), Cents::euros(3_000)), Cents::euros(10_500));
        assert_eq!(to_pay(&bands, 12, Cents::euros(8_000), Cents::euros(20_000)), Cents::euros(8_000));
        // No band covers the size (the company shrank below the minimum): nothing.
        assert_eq!(to_pay(&bands, 2, Cents::euros(7_500), Cents::euros(20_000)), Cents::ZERO);
        let small = GrantRule::Bands { bands: vec![Band { min_employees: 1, max_employees: None, amount: Cents::euros(5_000) }] };
        assert_eq!(to_pay(&small, 40, Cents::euros(7_500), Cents::euros(1)), Cents::euros(5_000));
        // A share with a cap: half of the approved expenses, down to the cent, up to the cap and the grant.
        let share = GrantRule::Share { basis_points: 5_000, cap: Cents::euros(20_000) };
        assert_eq!(to_pay(&share, 5, Cents::euros(15_000), Cents(10_001)), Cents(5_000));
        assert_eq!(to_pay(&share, 5, Cents::euros(15_000), Cents::euros(24_000)), Cents::euros(12_000));
        assert_eq!(to_pay(&share, 5, Cents::euros(15_000), Cents::euros(36_000)), Cents::euros(15_000));
        assert_eq!(to_pay(&share, 5, Cents::euros(25_000), Cents::euros(60_000)), Cents::euros(20_000));
        assert_eq!(to_pay(&share, 5, Cents::euros(25_000), Cents::ZERO), Cents::ZERO);
    }

    #[test]
    fn inputs_are_parsed_field_by_field() {
        let today = date!(2026 - 05 - 10);
        let e = parse_check(&CheckInput { outcome: "integration".into(), deadline: "2026-05-10".into(), ..Default::default() }, today).unwrap_err();
        assert_eq!((e.get("message"), e.get("deadline")), (Some("required"), Some("not-after-today")));
        assert_eq!(parse_check(&CheckInput { outcome: "nope".into(), ..Default::default() }, today).unwrap_err().get("outcome"), Some("unknown-outcome"));
        assert_eq!(parse_check(&CheckInput { outcome: "inadmissible".into(), reasons: " ".into(), ..Default::default() }, today).unwrap_err().get("reasons"), Some("required"));
        assert_eq!(
            parse_check(&CheckInput { outcome: "integration".into(), message: "Manca la visura".into(), deadline: "2026-05-20".into(), ..Default::default() }, today),
            Ok(Check::Integration { message: "Manca la visura".into(), deadline: date!(2026 - 05 - 20) })
        );
        let g = parse_grant(&GrantInput { amount: "10.500,01".into(), act_number: "".into(), act_date: "2026-05-11".into() }, Cents::euros(10_500), today).unwrap_err();
        assert_eq!((g.get("amount"), g.get("act_number"), g.get("act_date")), (Some("over-requested"), Some("required"), Some("in-the-future")));
        assert_eq!(parse_grant(&GrantInput { amount: "dieci".into(), ..Default::default() }, Cents::euros(1), today).unwrap_err().get("amount"), Some("not-an-amount"));
        assert_eq!(
            parse_grant(&GrantInput { amount: "8.000".into(), act_number: "D.D. 123".into(), act_date: "2026-05-10".into() }, Cents::euros(10_500), today),
            Ok(Grant { amount: Cents::euros(8_000), act_number: "D.D. 123".into(), act_date: today })
        );
        let cats = vec!["consulenza".to_owned()];
        let blank = LineInput::default();
        let r = parse_report(&ReportInput { lines: vec![blank.clone()] }, &cats).unwrap_err();
        assert_eq!(r.get("lines"), Some("required"));
        let bad = LineInput { category: "viaggi".into(), description: "Treno".into(), amount: "-5".into(), invoice: "".into() };
        let r = parse_report(&ReportInput { lines: vec![blank, bad] }, &cats).unwrap_err();
        assert_eq!((r.get("lines.1.category"), r.get("lines.1.amount"), r.get("lines.1.invoice")), (Some("unknown-category"), Some("negative"), Some("required")));
        let ok = LineInput { category: "consulenza".into(), description: "Corso".into(), amount: "1.250,50".into(), invoice: "FT 12/2026".into() };
        let lines = parse_report(&ReportInput { lines: vec![ok] }, &cats).unwrap();
        assert_eq!(lines[0].amount_cents, 125_050);
        let a = parse_approval(&ApprovalInput { outcome: "approve".into(), eligible: vec!["1.300".into()], ..Default::default() }, &lines, today).unwrap_err();
        assert_eq!(a.get("eligible.0"), Some("over-reported"));
        assert_eq!(parse_approval(&ApprovalInput { outcome: "approve".into(), ..Default::default() }, &lines, today).unwrap_err().get("eligible.0"), Some("required"));
        assert_eq!(
            parse_approval(&ApprovalInput { outcome: "approve".into(), eligible: vec!["1.000,00".into()], ..Default::default() }, &lines, today),
            Ok(Approval::Approve { eligible: vec![Cents::euros(1_000)] })
        );
    }
}
