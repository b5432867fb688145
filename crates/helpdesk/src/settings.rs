//! Help-desk settings per organisation: the SLA policy (first-response and resolution targets per priority), the
//! business calendar the clocks count on (weekly hours, the patron's day, closed dates) and the warning threshold
//! (percent of a target at which the SLA job warns). An organisation that never saved any has the defaults.
//!
//! What a change does to tickets already open: they keep the targets they were given when opened (a new policy
//! applies to tickets opened afterwards, and to a priority change made afterwards); the calendar is read afresh at
//! every reading and change of a ticket, so a new calendar counts the time of every open ticket from its last change
//! on. Nothing is cached: each request reads the row (one primary-key lookup), so every node agrees at once.

use std::collections::HashMap;

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, FieldErrors, Result, clock, db_run, jobs, tenancy};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::calendar::{BusinessCalendar, CalendarInput, OpeningInput};
use crate::sla::{Policy, PolicyInput, TargetInput};

/// Warn when this share of a target is used, unless the organisation says otherwise.
pub const DEFAULT_WARNING_PERCENT: u8 = 80;

// ---------------------------------------------------------------------------------------------------------------
// Model

/// An organisation's settings, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSettings {
    pub policy: Policy,
    pub calendar: BusinessCalendar,
    /// 1..=99.
    pub warning_percent: u8,
    /// Saved by the organisation (false: the defaults).
    pub custom: bool,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            policy: Policy::default(),
            calendar: BusinessCalendar::default(),
            warning_percent: DEFAULT_WARNING_PERCENT,
            custom: false,
        }
    }
}

/// One priority's targets in business minutes, as submitted (signed, so that a negative number is a field error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TargetForm {
    /// Business minutes until the first public reply: 1..=60000.
    pub first_response_minutes: i64,
    /// Business minutes until resolved, not counting time pending on the requester: 1..=60000.
    pub resolution_minutes: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PolicyForm {
    pub low: TargetForm,
    pub normal: TargetForm,
    pub high: TargetForm,
    pub urgent: TargetForm,
}

/// One opening of a day, Europe/Rome wall-clock time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OpeningForm {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, after `start`; `24:00` for "until midnight".
    pub end: String,
}

/// The business calendar: openings per weekday (up to 8 a day, e.g. 09:00–13:00 and 14:00–18:00), the national
/// holidays always closed unless `open_on_holidays`, the local patron's day and extra closed dates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CalendarForm {
    pub monday: Vec<OpeningForm>,
    pub tuesday: Vec<OpeningForm>,
    pub wednesday: Vec<OpeningForm>,
    pub thursday: Vec<OpeningForm>,
    pub friday: Vec<OpeningForm>,
    pub saturday: Vec<OpeningForm>,
    pub sunday: Vec<OpeningForm>,
    /// `MM-DD` (e.g. `12-07`, Sant'Ambrogio in Milan); null or empty for none.
    pub patron_day: Option<String>,
    /// Keep the weekday's hours on national holidays and the patron's day too.
    pub open_on_holidays: bool,
    /// `YYYY-MM-DD` each, up to 500.
    pub closed_dates: Vec<String>,
}

/// The settings as the API reads and writes them. Field errors name the path: `policy.urgent.resolution_minutes`,
/// `calendar.monday.1.end`, `calendar.closed_dates.3`, `calendar.hours`, `warning_percent`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SettingsInput {
    pub policy: PolicyForm,
    pub calendar: CalendarForm,
    /// Percent of a target at which the assignee (or the organisation's agents) and watchers are warned: 1..=99.
    pub warning_percent: i64,
}

/// The settings in force, and whether the organisation saved its own.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub policy: PolicyForm,
    pub calendar: CalendarForm,
    pub warning_percent: i64,
    /// False while the organisation has the defaults.
    pub custom: bool,
}

fn target_form(t: TargetInput) -> TargetForm {
    TargetForm {
        first_response_minutes: i64::from(t.first_response_minutes),
        resolution_minutes: i64::from(t.resolution_minutes),
    }
}

fn days(c: &CalendarInput) -> [&Vec<OpeningInput>; 7] {
    [&c.monday, &c.tuesday, &c.wednesday, &c.thursday, &c.friday, &c.saturday, &c.sunday]
}

impl OrgSettings {
    pub fn to_input(&self) -> SettingsInput {
        let p = self.policy.to_input();
        let c = self.calendar.to_input();
        let day = |v: &Vec<OpeningInput>| {
            v.iter().map(|o| OpeningForm { start: o.start.clone(), end: o.end.clone() }).collect::<Vec<_>>()
        };
        let [mo, tu, we, th, fr, sa, su] = days(&c);
        SettingsInput {
            policy: PolicyForm {
                low: target_form(p.low),
                normal: target_form(p.normal),
                high: target_form(p.high),
                urgent: target_form(p.urgent),
            },
            calendar: CalendarForm {
                monday: day(mo),
                tuesday: day(tu),
                wednesday: day(we),
                thursday: day(th),
                friday: day(fr),
                saturday: day(sa),
                sunday: day(su),
                patron_day: c.patron_day.clone(),
                open_on_holidays: c.open_on_holidays,
                closed_dates: c.closed_dates.clone(),
            },
            warning_percent: i64::from(self.warning_percent),
        }
    }

    pub fn view(&self) -> SettingsView {
        let i = self.to_input();
        SettingsView { policy: i.policy, calendar: i.calendar, warning_percent: i.warning_percent, custom: self.custom }
    }

    /// Checks submitted settings, every problem on its field (see [`SettingsInput`]). Codes: `too-short` (below one
    /// minute, negative included), `too-long`, `after-resolution`, the calendar's (`format`, `required`,
    /// `end-before-start`, `overlap`, `too-many`), `out-of-range` for the warning threshold.
    pub fn parse(input: &SettingsInput) -> std::result::Result<OrgSettings, FieldErrors> {
        let mut errs = FieldErrors::new();
        let mut minutes = |field: String, v: i64| -> u32 {
            if v < 1 {
                errs.add(&field, "too-short");
                1
            } else {
                u32::try_from(v).unwrap_or_else(|_| {
                    errs.add(&field, "too-long");
                    1
                })
            }
        };
        let mut target = |name: &str, t: TargetForm| TargetInput {
            first_response_minutes: minutes(format!("policy.{name}.first_response_minutes"), t.first_response_minutes),
            resolution_minutes: minutes(format!("policy.{name}.resolution_minutes"), t.resolution_minutes),
        };
        let p = &input.policy;
        let policy_input = PolicyInput {
            low: target("low", p.low),
            normal: target("normal", p.normal),
            high: target("high", p.high),
            urgent: target("urgent", p.urgent),
        };
        // A priority with a number refused above is not checked further (the stand-in value would mislead).
        let refused: Vec<String> =
            errs.0.iter().filter_map(|e| e.field.split('.').nth(1).map(|p| format!("{p}."))).collect();
        let policy = match Policy::parse(&policy_input) {
            Ok(p) => Some(p),
            Err(e) => {
                for f in e.0.iter().filter(|f| !refused.iter().any(|r| f.field.starts_with(r.as_str()))) {
                    errs.add(&format!("policy.{}", f.field), &f.code);
                }
                None
            }
        };
        let c = &input.calendar;
        let day = |v: &Vec<OpeningForm>| v.iter().map(|o| OpeningInput::new(&o.start, &o.end)).collect::<Vec<_>>();
        let cal_input = CalendarInput {
            monday: day(&c.monday),
            tuesday: day(&c.tuesday),
            wednesday: day(&c.wednesday),
            thursday: day(&c.thursday),
            friday: day(&c.friday),
            saturday: day(&c.saturday),
            sunday: day(&c.sunday),
            patron_day: c.patron_day.clone(),
            open_on_holidays: c.open_on_holidays,
            closed_dates: c.closed_dates.clone(),
        };
        let calendar = match BusinessCalendar::parse(&cal_input) {
            Ok(cal) => Some(cal),
            Err(e) => {
                for f in e.0 {
                    errs.add(&format!("calendar.{}", f.field), &f.code);
                }
                None
            }
        };
        let warning_percent = match u8::try_from(input.warning_percent) {
            Ok(n) if (1..=99).contains(&n) => Some(n),
            _ => {
                errs.add("warning_percent", "out-of-range");
                None
            }
        };
        match (policy, calendar, warning_percent) {
            (Some(policy), Some(calendar), Some(warning_percent)) if errs.is_empty() => {
                Ok(OrgSettings { policy, calendar, warning_percent, custom: true })
            }
            _ => Err(errs),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Store

type Row = (String, String, i64);

/// The stored settings as they were saved; the defaults for what cannot be read back (never expected: they were
/// checked before saving; a warning in the log says so).
fn from_row(org: OrgId, row: Option<Row>) -> OrgSettings {
    let Some((policy, calendar, pct)) = row else { return OrgSettings::default() };
    let policy = serde_json::from_str::<PolicyInput>(&policy).ok().and_then(|p| Policy::parse(&p).ok());
    let calendar = serde_json::from_str::<CalendarInput>(&calendar).ok().and_then(|c| BusinessCalendar::parse(&c).ok());
    match (policy, calendar, u8::try_from(pct).ok().filter(|p| (1..=99).contains(p))) {
        (Some(policy), Some(calendar), Some(warning_percent)) => OrgSettings { policy, calendar, warning_percent, custom: true },
        _ => {
            tracing::warn!(org = %org, "stored help-desk settings cannot be read: the defaults apply");
            OrgSettings::default()
        }
    }
}

const SELECT_ROW: &str = "SELECT policy, calendar, warning_percent FROM helpdesk_settings WHERE org_id = $1";

/// The organisation's settings (the defaults if it saved none).
pub async fn load(db: &Db, org: OrgId) -> DbResult<OrgSettings> {
    let row: Option<Row> = db_run!(db, |p| sqlx::query_as(SELECT_ROW).bind(org).fetch_optional(p).await?);
    Ok(from_row(org, row))
}

/// The same, in the caller's transaction.
pub async fn load_in(tx: &mut Tx, org: OrgId) -> DbResult<OrgSettings> {
    let row: Option<Row> = db_run!(tx tx, |c| sqlx::query_as(SELECT_ROW).bind(org).fetch_optional(c).await?);
    Ok(from_row(org, row))
}

/// The calendars of several organisations (a queue page of the operator's second level spans many), one read each.
pub struct Calendars {
    map: HashMap<OrgId, BusinessCalendar>,
    default: BusinessCalendar,
}

impl Calendars {
    pub async fn load(db: &Db, orgs: Vec<OrgId>) -> DbResult<Calendars> {
        let mut map = HashMap::new();
        for org in orgs {
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(org) {
                e.insert(load(db, org).await?.calendar);
            }
        }
        Ok(Calendars { map, default: BusinessCalendar::default() })
    }

    pub fn of(&self, org: OrgId) -> &BusinessCalendar {
        self.map.get(&org).unwrap_or(&self.default)
    }
}

async fn save(tx: &mut Tx, org: OrgId, s: &OrgSettings, by: AccountId, now: OffsetDateTime) -> Result<()> {
    let policy = serde_json::to_string(&s.policy.to_input()).map_err(|e| Error::Internal(e.to_string()))?;
    let calendar = serde_json::to_string(&s.calendar.to_input()).map_err(|e| Error::Internal(e.to_string()))?;
    let pct = i64::from(s.warning_percent);
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_settings (org_id, policy, calendar, warning_percent, updated_by, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org_id) DO UPDATE SET policy = $2, calendar = $3, warning_percent = $4, updated_by = $5,
                 updated_at = $6",
        )
        .bind(org).bind(&policy).bind(&calendar).bind(pct).bind(by).bind(now)
        .execute(c).await?;
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Service

/// Who may read: the organisation's admins and agents, and platform admins. Anyone else of the organisation gets
/// 403; someone with no business there learns nothing (404).
fn may_read(p: &Principal, org: OrgId) -> Result<()> {
    if p.can_admin_org(org) || p.has(org, Role::Agent) {
        Ok(())
    } else if p.is_member(org) {
        Err(Error::Forbidden)
    } else {
        Err(Error::NotFound)
    }
}

/// Who may change: the organisation's admins and platform admins.
fn may_write(p: &Principal, org: OrgId) -> Result<()> {
    may_read(p, org)?;
    if p.can_admin_org(org) { Ok(()) } else { Err(Error::Forbidden) }
}

pub async fn get(db: &Db, p: &Principal, org: OrgId) -> Result<SettingsView> {
    may_read(p, org)?;
    tenancy::get(db, org).await?;
    Ok(load(db, org).await?.view())
}

/// Saves the organisation's settings, audited; then has the SLA job look again at its open tickets' clocks (a new
/// calendar moves their deadlines).
pub async fn update(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &SettingsInput) -> Result<SettingsView> {
    may_write(p, org)?;
    tenancy::get(db, org).await?;
    let s = OrgSettings::parse(input).map_err(Error::Invalid)?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    let before = load_in(&mut tx, org).await?;
    save(&mut tx, org, &s, p.id(), now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org),
        action: "helpdesk.settings.update",
        entity: "helpdesk_settings",
        entity_id: org.to_string(),
        before: before.custom.then(|| json!(before.to_input())),
        after: Some(json!(s.to_input())),
    })
    .await?;
    jobs::enqueue(&mut tx, crate::sla_jobs::JOB_KIND, &crate::sla_jobs::rescan_payload(org), Some(org), now, 5).await?;
    tx.commit().await?;
    Ok(s.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::Priority;
    use time::Duration;

    fn codes(e: &FieldErrors) -> Vec<(&str, &str)> {
        e.0.iter().map(|f| (f.field.as_str(), f.code.as_str())).collect()
    }

    #[test]
    fn defaults_round_trip_through_the_input() {
        let d = OrgSettings::default();
        let mut again = OrgSettings::parse(&d.to_input()).unwrap();
        assert!(again.custom);
        again.custom = false;
        assert_eq!(again, d);
        let json = serde_json::to_value(d.to_input()).unwrap();
        assert_eq!(json["policy"]["urgent"]["first_response_minutes"], 30);
        assert_eq!(json["calendar"]["monday"][1]["start"], "14:00");
        assert_eq!(json["warning_percent"], 80);
    }

    #[test]
    fn a_custom_policy_and_calendar_parse() {
        let mut i = OrgSettings::default().to_input();
        i.policy.urgent = TargetForm { first_response_minutes: 1, resolution_minutes: 2 };
        i.calendar.saturday = vec![OpeningForm { start: "00:00".into(), end: "24:00".into() }];
        i.calendar.patron_day = Some("12-07".into());
        i.calendar.closed_dates = vec!["2026-12-24".into()];
        i.warning_percent = 50;
        let s = OrgSettings::parse(&i).unwrap();
        assert_eq!(s.policy.target(Priority::Urgent).resolution, Duration::minutes(2));
        assert_eq!(s.warning_percent, 50);
        assert_eq!(s.calendar.patron_day().map(|d| d.to_string()), Some("12-07".into()));
        assert_eq!(s.to_input(), i, "what was saved reads back as it was typed");
    }

    #[test]
    fn every_problem_is_reported_on_its_field() {
        let mut i = OrgSettings::default().to_input();
        i.policy.low.first_response_minutes = -5;
        i.policy.normal.resolution_minutes = i64::from(u32::MAX) + 1;
        i.policy.high = TargetForm { first_response_minutes: 600, resolution_minutes: 60 };
        i.policy.urgent.resolution_minutes = 60_001;
        i.calendar.monday[1] = OpeningForm { start: "14:00".into(), end: "13:00".into() };
        i.calendar.closed_dates = vec!["2026-02-30".into()];
        i.calendar.patron_day = Some("13-01".into());
        i.warning_percent = 100;
        let e = OrgSettings::parse(&i).unwrap_err();
        assert_eq!(
            codes(&e),
            [
                ("policy.low.first_response_minutes", "too-short"),
                ("policy.normal.resolution_minutes", "too-long"),
                ("policy.high.first_response_minutes", "after-resolution"),
                ("policy.urgent.resolution_minutes", "too-long"),
                ("calendar.monday.1.end", "end-before-start"),
                ("calendar.patron_day", "format"),
                ("calendar.closed_dates.0", "format"),
                ("warning_percent", "out-of-range"),
            ]
        );
        let mut none = OrgSettings::default().to_input();
        none.calendar = CalendarForm::default();
        none.warning_percent = 0;
        let e = OrgSettings::parse(&none).unwrap_err();
        assert_eq!(codes(&e), [("calendar.hours", "required"), ("warning_percent", "out-of-range")]);
    }

    #[test]
    fn unreadable_rows_fall_back_to_the_defaults() {
        let org = OrgId::new();
        assert_eq!(from_row(org, None), OrgSettings::default());
        assert_eq!(from_row(org, Some(("{".into(), "{}".into(), 80))), OrgSettings::default());
        let d = OrgSettings::default();
        let row = (
            serde_json::to_string(&d.policy.to_input()).unwrap(),
            serde_json::to_string(&d.calendar.to_input()).unwrap(),
            70,
        );
        let s = from_row(org, Some(row));
        assert!(s.custom);
        assert_eq!(s.warning_percent, 70);
    }
}
