//! An organisation's business calendar: weekly opening hours in Europe/Rome wall-clock time, the Italian national
//! holidays, the local patron's day and extra closed dates. It answers one question for the SLA clock: which
//! stretches of real (UTC) time on a given local day are business time.

use std::collections::BTreeSet;
use std::fmt;

use agilekit_kernel::FieldErrors;
use agilekit_kernel::validate::Invalid;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Weekday};

/// More openings in one day than any office has; the limit keeps a submitted form small.
pub const MAX_OPENINGS_PER_DAY: usize = 8;
/// Extra closed dates kept per calendar (several years of office closures).
pub const MAX_CLOSED_DATES: usize = 500;

const MINUTES_PER_DAY: u16 = 24 * 60;

/// A wall-clock time of day in whole minutes, from 00:00 to 24:00; 24:00 is only meaningful as an opening's end
/// ("open until midnight").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    pub const MIDNIGHT: ClockTime = ClockTime(0);
    pub const END_OF_DAY: ClockTime = ClockTime(MINUTES_PER_DAY);

    /// `None` unless `hour:minute` is a time of day or exactly 24:00.
    pub const fn hm(hour: u8, minute: u8) -> Option<ClockTime> {
        if minute < 60 && (hour < 24 || (hour == 24 && minute == 0)) {
            Some(ClockTime(hour as u16 * 60 + minute as u16))
        } else {
            None
        }
    }

    /// `HH:MM` or `H:MM`, as typed in a form; `24:00` is accepted.
    pub fn parse(s: &str) -> Result<ClockTime, Invalid> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Invalid::Empty);
        }
        let (h, m) = s.split_once(':').ok_or(Invalid::Format)?;
        // One or two digits for the hour, always two for the minutes: "8:5" is nobody's way of writing 08:05.
        let digits = |p: &str, lengths: std::ops::RangeInclusive<usize>| -> Result<u8, Invalid> {
            if !lengths.contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Invalid::Format);
            }
            p.parse().map_err(|_| Invalid::Format)
        };
        ClockTime::hm(digits(h, 1..=2)?, digits(m, 2..=2)?).ok_or(Invalid::Format)
    }

    pub const fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One stretch of opening within a day, from `start` (included) to `end` (excluded), in local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Opening {
    start: ClockTime,
    end: ClockTime,
}

impl Opening {
    /// `None` unless `start` comes before `end`: an opening never crosses midnight (a night shift is two openings,
    /// 22:00–24:00 and 00:00–06:00 the next day).
    pub const fn new(start: ClockTime, end: ClockTime) -> Option<Opening> {
        if start.0 < end.0 { Some(Opening { start, end }) } else { None }
    }
    pub const fn start(self) -> ClockTime {
        self.start
    }
    pub const fn end(self) -> ClockTime {
        self.end
    }
}

/// A day of the year without the year, as a patron saint's feast is: `12-07` for Sant'Ambrogio in Milan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonthDay {
    month: Month,
    day: u8,
}

impl MonthDay {
    /// `None` unless the day exists in some year (29 February does, in leap years only).
    pub fn new(month: Month, day: u8) -> Option<MonthDay> {
        (day >= 1 && day <= month.length(2024)).then_some(MonthDay { month, day })
    }

    /// `MM-DD`.
    pub fn parse(s: &str) -> Result<MonthDay, Invalid> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Invalid::Empty);
        }
        let b = s.as_bytes();
        if b.len() != 5 || b[2] != b'-' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
            return Err(Invalid::Format);
        }
        let month: u8 = s[..2].parse().map_err(|_| Invalid::Format)?;
        let day: u8 = s[3..].parse().map_err(|_| Invalid::Format)?;
        let month = Month::try_from(month).map_err(|_| Invalid::Format)?;
        MonthDay::new(month, day).ok_or(Invalid::Format)
    }

    pub fn month(self) -> Month {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// The date in `year`, if it exists there.
    pub fn in_year(self, year: i32) -> Option<Date> {
        Date::from_calendar_date(year, self.month, self.day).ok()
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month as u8, self.day)
    }
}

/// The Italian national holidays ("festività nazionali", law 260/1949 as amended), the days every public office
/// is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holiday {
    /// 1 January, "Capodanno".
    NewYear,
    /// 6 January, "Epifania".
    Epiphany,
    /// "Pasqua": a Sunday, so it matters only to desks open on Sundays.
    EasterSunday,
    /// "Lunedì dell'Angelo" (Pasquetta).
    EasterMonday,
    /// 25 April, "Festa della Liberazione".
    Liberation,
    /// 1 May, "Festa del Lavoro".
    Labour,
    /// 2 June, "Festa della Repubblica".
    Republic,
    /// 15 August, "Assunzione" (Ferragosto).
    Assumption,
    /// 4 October, "Festa nazionale di San Francesco d'Assisi": a holiday again from 2026 (law 151/2025).
    SaintFrancis,
    /// 1 November, "Ognissanti".
    AllSaints,
    /// 8 December, "Immacolata Concezione".
    ImmaculateConception,
    /// 25 December, "Natale".
    Christmas,
    /// 26 December, "Santo Stefano".
    SaintStephen,
}

/// Easter Sunday of `year` in the Gregorian calendar (the anonymous Gregorian algorithm, also known as
/// Meeus/Jones/Butcher); `None` before 1583, when the Gregorian reckoning did not apply.
pub fn easter_sunday(year: i32) -> Option<Date> {
    if year < 1583 {
        return None;
    }
    let a = year % 19;
    let (b, c) = (year / 100, year % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    let month = Month::try_from(u8::try_from(n / 31).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(n % 31 + 1).ok()?).ok()
}

/// The national holiday falling on `date`, if any.
pub fn national_holiday(date: Date) -> Option<Holiday> {
    use Month::*;
    let fixed = match (date.month(), date.day()) {
        (January, 1) => Some(Holiday::NewYear),
        (January, 6) => Some(Holiday::Epiphany),
        (April, 25) => Some(Holiday::Liberation),
        (May, 1) => Some(Holiday::Labour),
        (June, 2) => Some(Holiday::Republic),
        (August, 15) => Some(Holiday::Assumption),
        (October, 4) if date.year() >= 2026 => Some(Holiday::SaintFrancis),
        (November, 1) => Some(Holiday::AllSaints),
        (December, 8) => Some(Holiday::ImmaculateConception),
        (December, 25) => Some(Holiday::Christmas),
        (December, 26) => Some(Holiday::SaintStephen),
        _ => None,
    };
    // Easter moves between 22 March and 25 April; on 25 April 2011 Easter Monday and Liberation Day coincided.
    fixed.or_else(|| {
        let easter = easter_sunday(date.year())?;
        if date == easter {
            Some(Holiday::EasterSunday)
        } else if date.previous_day() == Some(easter) {
            Some(Holiday::EasterMonday)
        } else {
            None
        }
    })
}

/// Why a calendar is closed all day on a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Closure {
    Holiday(Holiday),
    /// The local patron saint's feast ("santo patrono"), a holiday in that municipality only.
    PatronDay,
    /// One of the organisation's own closed dates (a "ponte", a move, a strike).
    Closed,
}

/// Europe/Rome summer time in `year` as the UTC instants `[start, end)`.
///
/// Italy has one zone and follows the EU rule (Directive 2000/84/EC, the same dates since 1996): summer time from
/// the last Sunday of March to the last Sunday of October, switching at 01:00 UTC. That is all the zone rules we
/// need, so there is no tz database dependency; the kernel's `clock::rome_offset` (which turns UTC into Rome time
/// for display) applies the same rule, and a test checks that the two agree.
pub fn rome_summer_time(year: i32) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let last_sunday = |month: Month| -> Option<Date> {
        let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
        last.checked_sub(Duration::days(i64::from(last.weekday().number_days_from_sunday())))
    };
    let at_one_utc = |d: Date| d.with_hms(1, 0, 0).ok().map(PrimitiveDateTime::assume_utc);
    Some((at_one_utc(last_sunday(Month::March)?)?, at_one_utc(last_sunday(Month::October)?)?))
}

/// The local date in Rome at the instant `t`.
pub fn rome_date(t: OffsetDateTime) -> Option<Date> {
    t.checked_to_offset(agilekit_kernel::clock::rome_offset(t)).map(|l| l.date())
}

/// The instant at which Rome's wall clock reaches `at` on `date` (24:00 is the next midnight).
///
/// The two yearly changes make wall-clock time not a function of real time, so this picks the instant that
/// makes a day's openings measure what a clock on the office wall would show: in spring, a time skipped by the
/// 02:00 → 03:00 jump maps to the jump itself (an opening 01:00–04:00 lasts two real hours that day); in autumn, a
/// time shown twice (02:00–03:00) maps to its first showing (01:00–04:00 lasts four real hours).
pub fn rome_to_utc(date: Date, at: ClockTime) -> Option<OffsetDateTime> {
    const WINTER: Duration = Duration::hours(1);
    const SUMMER: Duration = Duration::hours(2);
    let local = date.midnight().checked_add(Duration::minutes(i64::from(at.0)))?;
    let (start, end) = rome_summer_time(local.year())?;
    let as_summer = local.checked_sub(SUMMER)?.assume_utc();
    if start <= as_summer && as_summer < end {
        return Some(as_summer);
    }
    let as_winter = local.checked_sub(WINTER)?.assume_utc();
    if as_winter < start || as_winter >= end {
        return Some(as_winter);
    }
    Some(start) // in the hour that spring skips
}

/// The calendar as a form or the API submits it: plain strings, checked by [`BusinessCalendar::parse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CalendarInput {
    pub monday: Vec<OpeningInput>,
    pub tuesday: Vec<OpeningInput>,
    pub wednesday: Vec<OpeningInput>,
    pub thursday: Vec<OpeningInput>,
    pub friday: Vec<OpeningInput>,
    pub saturday: Vec<OpeningInput>,
    pub sunday: Vec<OpeningInput>,
    /// `MM-DD`, e.g. `12-07` (Milan, Sant'Ambrogio) or `02-15` (Brescia, Santi Faustino e Giovita); none if empty.
    pub patron_day: Option<String>,
    /// Open on national holidays and the patron's day too, with the weekday's hours (a round-the-clock desk).
    pub open_on_holidays: bool,
    /// `YYYY-MM-DD` each.
    pub closed_dates: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningInput {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`; `24:00` for "until midnight".
    pub end: String,
}

impl OpeningInput {
    pub fn new(start: &str, end: &str) -> Self {
        OpeningInput { start: start.to_owned(), end: end.to_owned() }
    }
}

const WEEKDAY_FIELDS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

impl CalendarInput {
    fn days(&self) -> [&Vec<OpeningInput>; 7] {
        [&self.monday, &self.tuesday, &self.wednesday, &self.thursday, &self.friday, &self.saturday, &self.sunday]
    }
    fn days_mut(&mut self) -> [&mut Vec<OpeningInput>; 7] {
        [
            &mut self.monday,
            &mut self.tuesday,
            &mut self.wednesday,
            &mut self.thursday,
            &mut self.friday,
            &mut self.saturday,
            &mut self.sunday,
        ]
    }
}

/// An organisation's business calendar, always valid: each day's openings sorted and not overlapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessCalendar {
    /// Monday first.
    week: [Vec<Opening>; 7],
    patron_day: Option<MonthDay>,
    open_on_holidays: bool,
    closed: BTreeSet<Date>,
}

impl Default for BusinessCalendar {
    /// Monday to Friday, 09:00–13:00 and 14:00–18:00, no patron's day: for an organisation that has not set its own.
    fn default() -> Self {
        let day = [(ClockTime(9 * 60), ClockTime(13 * 60)), (ClockTime(14 * 60), ClockTime(18 * 60))]
            .into_iter()
            .filter_map(|(s, e)| Opening::new(s, e))
            .collect::<Vec<_>>();
        let mut week: [Vec<Opening>; 7] = Default::default();
        for d in &mut week[..5] {
            d.clone_from(&day);
        }
        BusinessCalendar::new(week)
    }
}

impl BusinessCalendar {
    /// A calendar from openings per weekday (Monday first). Overlapping openings of a day are joined: the typed
    /// constructor takes the union of the hours given, while [`BusinessCalendar::parse`] refuses an overlap as the
    /// typing mistake it usually is. A week without any opening is allowed here (a desk closed until further
    /// notice); the SLA arithmetic then answers [`crate::sla::SlaError::NeverOpen`].
    pub fn new(mut week: [Vec<Opening>; 7]) -> Self {
        for day in &mut week {
            day.sort();
            let mut merged: Vec<Opening> = Vec::with_capacity(day.len());
            for o in day.drain(..) {
                match merged.last_mut() {
                    Some(last) if o.start < last.end => last.end = last.end.max(o.end),
                    _ => merged.push(o),
                }
            }
            *day = merged;
        }
        BusinessCalendar { week, patron_day: None, open_on_holidays: false, closed: BTreeSet::new() }
    }

    pub fn with_patron_day(mut self, day: MonthDay) -> Self {
        self.patron_day = Some(day);
        self
    }

    /// Keeps the weekday's hours on holidays (the organisation's own closed dates still close it).
    pub fn open_on_holidays(mut self) -> Self {
        self.open_on_holidays = true;
        self
    }

    pub fn with_closed_dates(mut self, dates: impl IntoIterator<Item = Date>) -> Self {
        self.closed.extend(dates);
        self
    }

    /// Checks a submitted calendar, reporting every problem against its field: `monday.1.end` (the second opening
    /// on Mondays), `patron_day`, `closed_dates.3`, or `hours` when no day has any opening. Codes: `required`,
    /// `format`, `end-before-start` (also for an empty opening), `overlap` (on the later of two overlapping
    /// openings, in the order given), `too-many`.
    pub fn parse(input: &CalendarInput) -> Result<Self, FieldErrors> {
        let mut errs = FieldErrors::new();
        let mut week: [Vec<Opening>; 7] = Default::default();
        for ((name, given), openings) in WEEKDAY_FIELDS.iter().zip(input.days()).zip(&mut week) {
            if given.len() > MAX_OPENINGS_PER_DAY {
                errs.add(name, "too-many");
                continue;
            }
            for (i, o) in given.iter().enumerate() {
                let start = errs.check(&format!("{name}.{i}.start"), ClockTime::parse(&o.start));
                let end = errs.check(&format!("{name}.{i}.end"), ClockTime::parse(&o.end));
                let (Some(start), Some(end)) = (start, end) else { continue };
                let Some(opening) = Opening::new(start, end) else {
                    errs.add(&format!("{name}.{i}.end"), "end-before-start");
                    continue;
                };
                if openings.iter().any(|p: &Opening| opening.start < p.end && p.start < opening.end) {
                    errs.add(&format!("{name}.{i}.start"), "overlap");
                    continue;
                }
                openings.push(opening);
            }
        }
        if errs.is_empty() && week.iter().all(Vec::is_empty) {
            errs.add("hours", "required");
        }
        let patron_day = match input.patron_day.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => errs.check("patron_day", MonthDay::parse(s)),
        };
        if input.closed_dates.len() > MAX_CLOSED_DATES {
            errs.add("closed_dates", "too-many");
        }
        let mut closed = BTreeSet::new();
        for (i, s) in input.closed_dates.iter().enumerate().take(MAX_CLOSED_DATES) {
            let parsed = match s.trim() {
                "" => Err(Invalid::Empty),
                s => Date::parse(s, format_description!("[year]-[month]-[day]")).map_err(|_| Invalid::Format),
            };
            if let Some(d) = errs.check(&format!("closed_dates.{i}"), parsed) {
                closed.insert(d);
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut cal = BusinessCalendar::new(week).with_closed_dates(closed);
        cal.patron_day = patron_day;
        cal.open_on_holidays = input.open_on_holidays;
        Ok(cal)
    }

    /// The calendar as input again (to store it, or to fill the form): `parse(&c.to_input()) == Ok(c)` whenever
    /// `c` has some hours.
    pub fn to_input(&self) -> CalendarInput {
        let mut input = CalendarInput {
            patron_day: self.patron_day.map(|d| d.to_string()),
            open_on_holidays: self.open_on_holidays,
            closed_dates: self.closed.iter().map(|d| d.to_string()).collect(),
            ..CalendarInput::default()
        };
        for (field, openings) in input.days_mut().into_iter().zip(&self.week) {
            *field =
                openings.iter().map(|o| OpeningInput { start: o.start.to_string(), end: o.end.to_string() }).collect();
        }
        input
    }

    pub fn openings(&self, day: Weekday) -> &[Opening] {
        &self.week[usize::from(day.number_days_from_monday())]
    }
    pub fn patron_day(&self) -> Option<MonthDay> {
        self.patron_day
    }
    pub fn closed_dates(&self) -> impl Iterator<Item = Date> + '_ {
        self.closed.iter().copied()
    }
    /// Whether any weekday has an opening.
    pub fn has_hours(&self) -> bool {
        self.week.iter().any(|d| !d.is_empty())
    }

    pub fn is_open_on_holidays(&self) -> bool {
        self.open_on_holidays
    }

    /// Why the calendar is closed all day on `date`, if it is (a weekday without openings is not a closure).
    pub fn closure(&self, date: Date) -> Option<Closure> {
        let holidays = !self.open_on_holidays;
        if let Some(h) = national_holiday(date).filter(|_| holidays) {
            Some(Closure::Holiday(h))
        } else if holidays && self.patron_day.and_then(|p| p.in_year(date.year())) == Some(date) {
            Some(Closure::PatronDay)
        } else if self.closed.contains(&date) {
            Some(Closure::Closed)
        } else {
            None
        }
    }

    /// The business time of the local day `date` as UTC spans `[start, end)`, in order and disjoint; none on a
    /// closed day. A day with a clock change has its real length: see [`rome_to_utc`].
    pub fn open_spans(&self, date: Date) -> impl Iterator<Item = (OffsetDateTime, OffsetDateTime)> + '_ {
        let openings = self.openings(date.weekday());
        // Most days without hours are weekends: skip them before working out holidays.
        let openings: &[Opening] = if openings.is_empty() || self.closure(date).is_some() { &[] } else { openings };
        openings.iter().filter_map(move |o| {
            let (start, end) = (rome_to_utc(date, o.start)?, rome_to_utc(date, o.end)?);
            (start < end).then_some((start, end))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn t(s: &str) -> ClockTime {
        ClockTime::parse(s).unwrap()
    }

    fn input(days: &[(&str, &[(&str, &str)])]) -> CalendarInput {
        let mut input = CalendarInput::default();
        for (day, openings) in days {
            let i = WEEKDAY_FIELDS.iter().position(|d| d == day).unwrap();
            *input.days_mut()[i] = openings.iter().map(|(s, e)| OpeningInput::new(s, e)).collect();
        }
        input
    }

    fn codes(e: &FieldErrors) -> Vec<(String, String)> {
        e.0.iter().map(|f| (f.field.clone(), f.code.clone())).collect()
    }

    #[test]
    fn clock_times_parse_as_offices_write_them() {
        assert_eq!(t("08:30").minutes(), 510);
        assert_eq!(t("8:30").minutes(), 510);
        assert_eq!(t(" 17:05 ").minutes(), 17 * 60 + 5);
        assert_eq!(t("00:00"), ClockTime::MIDNIGHT);
        assert_eq!(t("24:00"), ClockTime::END_OF_DAY);
        assert_eq!(t("23:59").to_string(), "23:59");
        assert_eq!(ClockTime::END_OF_DAY.to_string(), "24:00");
        assert_eq!(ClockTime::parse(""), Err(Invalid::Empty));
        for bad in
            ["24:01", "25:00", "8:5", "08:60", "0830", "08.30", "ab:cd", "-1:00", "+8:00", "008:00", "08:300", ":30"]
        {
            assert_eq!(ClockTime::parse(bad), Err(Invalid::Format), "{bad}");
        }
        assert_eq!(ClockTime::hm(24, 0), Some(ClockTime::END_OF_DAY));
        assert_eq!(ClockTime::hm(24, 1), None);
        assert_eq!(ClockTime::hm(7, 60), None);
    }

    #[test]
    fn month_days_parse_and_land_in_years() {
        let milan = MonthDay::parse("12-07").unwrap();
        assert_eq!((milan.month(), milan.day()), (Month::December, 7));
        assert_eq!(milan.to_string(), "12-07");
        assert_eq!(milan.in_year(2026), Some(date!(2026 - 12 - 07)));
        let leap = MonthDay::parse("02-29").unwrap();
        assert_eq!(leap.in_year(2028), Some(date!(2028 - 02 - 29)));
        assert_eq!(leap.in_year(2027), None);
        assert_eq!(MonthDay::parse(" "), Err(Invalid::Empty));
        for bad in ["02-30", "13-01", "00-10", "12-00", "1-7", "12/07", "12-7x", "2-15-"] {
            assert_eq!(MonthDay::parse(bad), Err(Invalid::Format), "{bad}");
        }
    }

    #[test]
    fn easter_by_the_anonymous_gregorian_algorithm() {
        for (year, expected) in [
            (1818, date!(1818 - 03 - 22)), // the earliest possible date
            (2000, date!(2000 - 04 - 23)),
            (2008, date!(2008 - 03 - 23)),
            (2011, date!(2011 - 04 - 24)),
            (2019, date!(2019 - 04 - 21)),
            (2024, date!(2024 - 03 - 31)),
            (2025, date!(2025 - 04 - 20)),
            (2026, date!(2026 - 04 - 05)),
            (2027, date!(2027 - 03 - 28)),
            (2028, date!(2028 - 04 - 16)),
            (2038, date!(2038 - 04 - 25)), // the latest possible date
            (2285, date!(2285 - 03 - 22)),
        ] {
            assert_eq!(easter_sunday(year), Some(expected), "{year}");
        }
        assert_eq!(easter_sunday(1582), None);
        for year in 1583..3000 {
            let e = easter_sunday(year).unwrap();
            assert_eq!(e.weekday(), Weekday::Sunday, "{year}");
            assert!(e >= Date::from_calendar_date(year, Month::March, 22).unwrap(), "{year}");
            assert!(e <= Date::from_calendar_date(year, Month::April, 25).unwrap(), "{year}");
        }
    }

    #[test]
    fn national_holidays_of_2026_and_2027() {
        let in_2026: Vec<_> = (1..=365)
            .filter_map(|n| Date::from_ordinal_date(2026, n).ok())
            .filter_map(|d| national_holiday(d).map(|h| (d, h)))
            .collect();
        assert_eq!(
            in_2026,
            vec![
                (date!(2026 - 01 - 01), Holiday::NewYear),
                (date!(2026 - 01 - 06), Holiday::Epiphany),
                (date!(2026 - 04 - 05), Holiday::EasterSunday),
                (date!(2026 - 04 - 06), Holiday::EasterMonday),
                (date!(2026 - 04 - 25), Holiday::Liberation),
                (date!(2026 - 05 - 01), Holiday::Labour),
                (date!(2026 - 06 - 02), Holiday::Republic),
                (date!(2026 - 08 - 15), Holiday::Assumption),
                (date!(2026 - 10 - 04), Holiday::SaintFrancis),
                (date!(2026 - 11 - 01), Holiday::AllSaints),
                (date!(2026 - 12 - 08), Holiday::ImmaculateConception),
                (date!(2026 - 12 - 25), Holiday::Christmas),
                (date!(2026 - 12 - 26), Holiday::SaintStephen),
            ]
        );
        assert_eq!(national_holiday(date!(2027 - 03 - 28)), Some(Holiday::EasterSunday));
        assert_eq!(national_holiday(date!(2027 - 03 - 29)), Some(Holiday::EasterMonday));
        assert_eq!(national_holiday(date!(2026 - 03 - 29)), None);
        assert_eq!(national_holiday(date!(2026 - 04 - 03)), None, "Good Friday is a working day in Italy");
        assert_eq!(national_holiday(date!(2027 - 10 - 04)), Some(Holiday::SaintFrancis));
        assert_eq!(national_holiday(date!(2025 - 10 - 04)), None, "not a holiday before 2026");
        assert_eq!(national_holiday(date!(2011 - 04 - 25)), Some(Holiday::Liberation), "also Easter Monday that year");
    }

    #[test]
    fn closures_say_why() {
        let cal = BusinessCalendar::default()
            .with_patron_day(MonthDay::new(Month::December, 7).unwrap())
            .with_closed_dates([date!(2026 - 12 - 24), date!(2026 - 12 - 25)]);
        assert_eq!(cal.closure(date!(2026 - 12 - 07)), Some(Closure::PatronDay));
        assert_eq!(cal.closure(date!(2027 - 12 - 07)), Some(Closure::PatronDay));
        assert_eq!(cal.closure(date!(2026 - 12 - 08)), Some(Closure::Holiday(Holiday::ImmaculateConception)));
        assert_eq!(cal.closure(date!(2026 - 12 - 24)), Some(Closure::Closed));
        assert_eq!(cal.closure(date!(2026 - 12 - 25)), Some(Closure::Holiday(Holiday::Christmas)));
        assert_eq!(cal.closure(date!(2027 - 12 - 24)), None, "closed dates are single dates, not yearly");
        assert_eq!(cal.closure(date!(2026 - 12 - 12)), None, "a Saturday is closed by the week, not a closure");
        assert_eq!(cal.open_spans(date!(2026 - 12 - 07)).count(), 0);
        assert_eq!(cal.open_spans(date!(2026 - 12 - 12)).count(), 0);
        assert_eq!(cal.open_spans(date!(2026 - 12 - 09)).count(), 2);
        // A desk open on holidays keeps its hours then, but not on its own closed dates.
        let on_call = cal.clone().open_on_holidays();
        assert_eq!(on_call.closure(date!(2026 - 12 - 07)), None);
        assert_eq!(on_call.closure(date!(2026 - 12 - 08)), None);
        assert_eq!(on_call.open_spans(date!(2026 - 12 - 08)).count(), 2);
        assert_eq!(on_call.closure(date!(2026 - 12 - 24)), Some(Closure::Closed));
    }

    #[test]
    fn default_calendar_is_an_office_week() {
        let cal = BusinessCalendar::default();
        assert!(cal.has_hours());
        for day in [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday] {
            let o = cal.openings(day);
            assert_eq!(o.len(), 2);
            assert_eq!(
                (o[0].start(), o[0].end(), o[1].start(), o[1].end()),
                (t("9:00"), t("13:00"), t("14:00"), t("18:00"))
            );
        }
        assert!(cal.openings(Weekday::Saturday).is_empty() && cal.openings(Weekday::Sunday).is_empty());
        // Wednesday 18 November 2026, winter time (UTC+1).
        let spans: Vec<_> = cal.open_spans(date!(2026 - 11 - 18)).collect();
        assert_eq!(
            spans,
            vec![
                (datetime!(2026-11-18 08:00 UTC), datetime!(2026-11-18 12:00 UTC)),
                (datetime!(2026-11-18 13:00 UTC), datetime!(2026-11-18 17:00 UTC)),
            ]
        );
        // Wednesday 17 June 2026, summer time (UTC+2).
        assert_eq!(
            cal.open_spans(date!(2026 - 06 - 17)).next(),
            Some((datetime!(2026-06-17 07:00 UTC), datetime!(2026-06-17 11:00 UTC)))
        );
    }

    #[test]
    fn parse_accepts_a_real_calendar_and_round_trips() {
        let mut given = input(&[
            ("monday", &[("08:30", "13:00"), ("14:00", "17:30")]),
            ("tuesday", &[("14:00", "17:30"), ("08:30", "13:00")]),
            ("friday", &[("8:30", "13:00")]),
            ("sunday", &[("22:00", "24:00")]),
        ]);
        given.patron_day = Some("02-15".into());
        given.open_on_holidays = true;
        given.closed_dates = vec!["2026-12-24".into(), "2026-12-31".into(), "2026-12-24".into()];
        let cal = BusinessCalendar::parse(&given).unwrap();
        assert_eq!(cal.openings(Weekday::Tuesday), cal.openings(Weekday::Monday), "sorted");
        assert_eq!(cal.openings(Weekday::Sunday)[0].end(), ClockTime::END_OF_DAY);
        assert_eq!(cal.patron_day(), MonthDay::new(Month::February, 15));
        assert!(cal.is_open_on_holidays());
        assert_eq!(cal.closed_dates().collect::<Vec<_>>(), vec![date!(2026 - 12 - 24), date!(2026 - 12 - 31)]);
        let again = cal.to_input();
        assert_eq!(again.friday, vec![OpeningInput::new("08:30", "13:00")]);
        assert_eq!(again.closed_dates, vec!["2026-12-24", "2026-12-31"]);
        assert_eq!(BusinessCalendar::parse(&again), Ok(cal));
        // Adjacent openings are not an overlap.
        assert!(BusinessCalendar::parse(&input(&[("monday", &[("08:00", "12:00"), ("12:00", "13:00")])])).is_ok());
        // An empty patron's day means none.
        let mut blank = input(&[("monday", &[("08:00", "12:00")])]);
        blank.patron_day = Some(" ".into());
        assert_eq!(BusinessCalendar::parse(&blank).unwrap().patron_day(), None);
    }

    #[test]
    fn parse_reports_every_problem_on_its_field() {
        let mut given = input(&[
            ("monday", &[("08:30", "13:00"), ("12:00", "17:30"), ("17:30", "17:30")]),
            ("tuesday", &[("14:00", "09:00"), ("25:00", ""), ("9", "10:00")]),
            ("wednesday", &[("08:00", "18:00"), ("09:00", "10:00"), ("07:00", "19:00")]),
        ]);
        given.patron_day = Some("02-30".into());
        given.closed_dates = vec!["2026-12-24".into(), "24/12/2026".into(), "".into(), "2026-02-30".into()];
        let errs = BusinessCalendar::parse(&given).unwrap_err();
        assert_eq!(
            codes(&errs),
            [
                ("monday.1.start", "overlap"),
                ("monday.2.end", "end-before-start"),
                ("tuesday.0.end", "end-before-start"),
                ("tuesday.1.start", "format"),
                ("tuesday.1.end", "required"),
                ("tuesday.2.start", "format"),
                ("wednesday.1.start", "overlap"),
                ("wednesday.2.start", "overlap"),
                ("patron_day", "format"),
                ("closed_dates.1", "format"),
                ("closed_dates.2", "required"),
                ("closed_dates.3", "format"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn parse_refuses_a_week_without_hours_and_oversized_input() {
        let errs = BusinessCalendar::parse(&CalendarInput::default()).unwrap_err();
        assert_eq!(codes(&errs), [("hours".to_owned(), "required".to_owned())]);
        let many: Vec<(String, String)> = (0..9).map(|h| (format!("{h:02}:00"), format!("{h:02}:30"))).collect();
        let mut given = CalendarInput {
            thursday: many.iter().map(|(s, e)| OpeningInput::new(s, e)).collect(),
            friday: vec![OpeningInput::new("09:00", "10:00")],
            ..CalendarInput::default()
        };
        given.closed_dates = vec!["2027-01-02".to_owned(); MAX_CLOSED_DATES + 1];
        let errs = BusinessCalendar::parse(&given).unwrap_err();
        assert_eq!(errs.get("thursday"), Some("too-many"));
        assert_eq!(errs.get("closed_dates"), Some("too-many"));
        assert_eq!(errs.0.len(), 2);
    }

    #[test]
    fn input_reads_from_json_with_days_left_out() {
        let given: CalendarInput = serde_json::from_str(
            r#"{"monday": [{"start": "08:30", "end": "13:00"}], "patron_day": "12-07", "closed_dates": ["2026-12-24"]}"#,
        )
        .unwrap();
        let cal = BusinessCalendar::parse(&given).unwrap();
        assert_eq!(cal.openings(Weekday::Monday).len(), 1);
        assert!(cal.openings(Weekday::Tuesday).is_empty());
        assert_eq!(cal.closure(date!(2026 - 12 - 07)), Some(Closure::PatronDay));
    }

    #[test]
    fn the_typed_constructor_joins_overlaps() {
        let o = |s: &str, e: &str| Opening::new(t(s), t(e)).unwrap();
        let mut week: [Vec<Opening>; 7] = Default::default();
        week[0] = vec![
            o("14:00", "18:00"),
            o("08:00", "12:00"),
            o("11:00", "15:00"),
            o("19:00", "20:00"),
            o("18:00", "19:00"),
        ];
        let cal = BusinessCalendar::new(week);
        assert_eq!(cal.openings(Weekday::Monday), [o("08:00", "18:00"), o("18:00", "19:00"), o("19:00", "20:00")]);
        assert!(Opening::new(t("10:00"), t("10:00")).is_none());
        assert!(!BusinessCalendar::new(Default::default()).has_hours());
    }

    #[test]
    fn summer_time_dates() {
        assert_eq!(rome_summer_time(2026), Some((datetime!(2026-03-29 01:00 UTC), datetime!(2026-10-25 01:00 UTC))));
        assert_eq!(rome_summer_time(2027), Some((datetime!(2027-03-28 01:00 UTC), datetime!(2027-10-31 01:00 UTC))));
        assert_eq!(rome_summer_time(2024), Some((datetime!(2024-03-31 01:00 UTC), datetime!(2024-10-27 01:00 UTC))));
    }

    #[test]
    fn wall_clock_to_utc_across_the_changes() {
        let r = |d: Date, s: &str| rome_to_utc(d, t(s)).unwrap();
        let spring = date!(2026 - 03 - 29);
        assert_eq!(r(spring, "00:00"), datetime!(2026-03-28 23:00 UTC));
        assert_eq!(r(spring, "01:59"), datetime!(2026-03-29 00:59 UTC));
        assert_eq!(r(spring, "02:00"), datetime!(2026-03-29 01:00 UTC), "skipped: the jump");
        assert_eq!(r(spring, "02:30"), datetime!(2026-03-29 01:00 UTC), "skipped: the jump");
        assert_eq!(r(spring, "03:00"), datetime!(2026-03-29 01:00 UTC));
        assert_eq!(r(spring, "03:01"), datetime!(2026-03-29 01:01 UTC));
        assert_eq!(r(spring, "24:00"), datetime!(2026-03-29 22:00 UTC));
        let autumn = date!(2026 - 10 - 25);
        assert_eq!(r(autumn, "00:00"), datetime!(2026-10-24 22:00 UTC));
        assert_eq!(r(autumn, "02:00"), datetime!(2026-10-25 00:00 UTC), "shown twice: the first time");
        assert_eq!(r(autumn, "02:59"), datetime!(2026-10-25 00:59 UTC));
        assert_eq!(r(autumn, "03:00"), datetime!(2026-10-25 02:00 UTC));
        assert_eq!(r(autumn, "24:00"), datetime!(2026-10-25 23:00 UTC));
        assert_eq!(r(date!(2026 - 12 - 31), "24:00"), datetime!(2026-12-31 23:00 UTC));
        assert_eq!(r(date!(2027 - 01 - 01), "00:30"), datetime!(2026-12-31 23:30 UTC));
    }

    #[test]
    fn agrees_with_the_kernel_clock_every_quarter_hour() {
        // Each instant's Rome wall time, mapped back, is the instant itself, except for the second showing of the
        // autumn hour, which maps to the first.
        for year in [1996, 2026, 2027, 2038] {
            let (_, autumn) = rome_summer_time(year).unwrap();
            let mut u = Date::from_calendar_date(year, Month::January, 1).unwrap().midnight().assume_utc();
            let end = u + Duration::days(366);
            while u < end {
                let local = u.to_offset(agilekit_kernel::clock::rome_offset(u));
                let minutes = u16::from(local.hour()) * 60 + u16::from(local.minute());
                let back = rome_to_utc(local.date(), ClockTime(minutes)).unwrap();
                let second_showing = u >= autumn && u < autumn + Duration::hours(1);
                let expected = if second_showing { u - Duration::hours(1) } else { u };
                assert_eq!(back, expected, "{u}");
                assert_eq!(rome_date(u), Some(local.date()));
                u += Duration::minutes(15);
            }
        }
    }

    #[test]
    fn a_day_with_a_clock_change_has_its_real_length() {
        let every_day = input(&[
            ("monday", &[("00:00", "24:00")]),
            ("tuesday", &[("00:00", "24:00")]),
            ("wednesday", &[("00:00", "24:00")]),
            ("thursday", &[("00:00", "24:00")]),
            ("friday", &[("00:00", "24:00")]),
            ("saturday", &[("00:00", "24:00")]),
            ("sunday", &[("01:00", "04:00"), ("08:00", "24:00")]),
        ]);
        let cal = BusinessCalendar::parse(&every_day).unwrap();
        let length = |d: Date| cal.open_spans(d).map(|(s, e)| e - s).collect::<Vec<_>>();
        assert_eq!(length(date!(2026 - 03 - 22)), [Duration::hours(3), Duration::hours(16)]);
        assert_eq!(length(date!(2026 - 03 - 29)), [Duration::hours(2), Duration::hours(16)]);
        assert_eq!(length(date!(2026 - 10 - 25)), [Duration::hours(4), Duration::hours(16)]);
        assert_eq!(length(date!(2026 - 03 - 28)), [Duration::hours(24)]);
        let round = BusinessCalendar::parse(&input(&[("sunday", &[("00:00", "24:00")])])).unwrap();
        let total = |d: Date| round.open_spans(d).map(|(s, e)| e - s).sum::<Duration>();
        assert_eq!(total(date!(2026 - 03 - 29)), Duration::hours(23));
        assert_eq!(total(date!(2026 - 10 - 25)), Duration::hours(25));
        assert_eq!(total(date!(2027 - 03 - 28)), Duration::ZERO, "Easter Sunday 2027, also the spring change");
        // An opening entirely inside the skipped hour is no time at all that day.
        let gap = BusinessCalendar::parse(&input(&[("sunday", &[("02:10", "02:50")])])).unwrap();
        assert_eq!(gap.open_spans(date!(2026 - 03 - 29)).count(), 0);
        assert_eq!(gap.open_spans(date!(2026 - 10 - 25)).map(|(s, e)| e - s).sum::<Duration>(), Duration::minutes(40));
    }
}
