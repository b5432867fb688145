//! SLA arithmetic in business time: deadlines and elapsed time on an organisation's [`BusinessCalendar`], the
//! targets per priority, and the clock each ticket runs for its first response and its resolution. Pure
//! functions, no I/O; exact to the nanosecond (`time::Duration` is integer), and targets are whole minutes.

use agilekit_kernel::FieldErrors;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::calendar::{BusinessCalendar, rome_date};

/// How many days in a row without business time a deadline search crosses before giving up. Ten years: far past
/// any real run of closures, and a bound on the work a calendar that never opens again can cause.
pub const MAX_CLOSED_RUN_DAYS: u32 = 3660;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// The calendar has no business hours from the start onwards (none at all, or closures without end).
    #[error("the calendar never opens")]
    NeverOpen,
    #[error("negative duration")]
    Negative,
    /// The deadline would fall outside the dates `time` represents.
    #[error("date out of range")]
    OutOfRange,
    /// A clock asked to do what its state does not allow (resume a running clock, stop a stopped one…).
    #[error("a {state} clock cannot be {action}")]
    Transition { state: &'static str, action: &'static str },
}

/// `t` down to its whole second. SLA time is counted in whole seconds: stored instants end in an odd microsecond
/// (`clock::stamp`, docs/adr/0002), so a ticket opened "at 09:00" is stored at 09:00:00.000001; counted from there,
/// four hours in a 09:00–13:00 morning would end a microsecond after the closing and carry over to the next
/// opening. Targets are whole minutes and stored counts whole seconds, so nothing finer is ever meant.
pub fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Whether `now` is past `deadline`, in whole seconds: anything within the deadline's own second is on time.
pub fn is_past(now: OffsetDateTime, deadline: OffsetDateTime) -> bool {
    whole_second(now) > whole_second(deadline)
}

/// The instant at which `duration` of business time, counted from `start` (taken down to its whole second, see
/// [`whole_second`]), runs out.
///
/// Starting outside business hours starts the count at the next opening, so a zero duration gives the next
/// moment of business time (`start` itself if the calendar is open then). A duration that ends exactly at a
/// closing gives the closing (13:00), not the next opening (14:00).
pub fn add_business(
    start: OffsetDateTime,
    duration: Duration,
    calendar: &BusinessCalendar,
) -> Result<OffsetDateTime, SlaError> {
    if duration.is_negative() {
        return Err(SlaError::Negative);
    }
    if !calendar.has_hours() {
        return Err(SlaError::NeverOpen);
    }
    let start = whole_second(start);
    let mut remaining = duration;
    let mut date = rome_date(start).ok_or(SlaError::OutOfRange)?;
    let mut closed_run = 0;
    loop {
        let mut open = false;
        for (from, to) in calendar.open_spans(date) {
            if to <= start {
                continue;
            }
            open = true;
            let from = from.max(start);
            let length = to - from;
            if remaining <= length {
                return Ok(from + remaining);
            }
            remaining -= length;
        }
        closed_run = if open { 0 } else { closed_run + 1 };
        if closed_run > MAX_CLOSED_RUN_DAYS {
            return Err(SlaError::NeverOpen);
        }
        date = date.next_day().ok_or(SlaError::OutOfRange)?;
    }
}

/// Business time between `from` and `to` (zero if `to` is not after `from`), both taken down to their whole
/// second as in [`add_business`], so that the elapsed time from a start to its deadline is the duration added.
fn business_between(from: OffsetDateTime, to: OffsetDateTime, calendar: &BusinessCalendar) -> Duration {
    let (from, to) = (whole_second(from), whole_second(to));
    let (Some(mut date), Some(last)) = (rome_date(from), rome_date(to)) else { return Duration::ZERO };
    let mut total = Duration::ZERO;
    while from < to && date <= last {
        for (start, end) in calendar.open_spans(date) {
            let (start, end) = (start.max(from), end.min(to));
            if start < end {
                total += end - start;
            }
        }
        let Some(next) = date.next_day() else { break };
        date = next;
    }
    total
}

/// Business time between `from` and `to`, less the `pauses` (time pending on the requester).
///
/// Pauses may overlap one another, reach outside `[from, to]` or outside business hours: only the business time
/// they cover inside `[from, to]` is taken off, once. A pause whose end is not after its start is ignored.
pub fn business_elapsed(
    from: OffsetDateTime,
    to: OffsetDateTime,
    calendar: &BusinessCalendar,
    pauses: &[(OffsetDateTime, OffsetDateTime)],
) -> Duration {
    let mut clipped: Vec<(OffsetDateTime, OffsetDateTime)> =
        pauses.iter().map(|&(a, b)| (a.max(from), b.min(to))).filter(|(a, b)| a < b).collect();
    clipped.sort();
    let mut merged: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::with_capacity(clipped.len());
    for (a, b) in clipped {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let paused: Duration = merged.iter().map(|&(a, b)| business_between(a, b, calendar)).sum();
    business_between(from, to, calendar) - paused
}

/// A ticket's priority, from least to most pressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// What a priority promises, in business time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Until the first public reply by an agent.
    pub first_response: Duration,
    /// Until the ticket is resolved, not counting time pending on the requester.
    pub resolution: Duration,
}

/// The longest target accepted: 1,000 business hours, about six months of office days.
pub const MAX_TARGET_MINUTES: u32 = 60_000;

/// An organisation's targets, one per priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// In the order of [`Priority::ALL`].
    targets: [Target; 4],
}

impl Default for Policy {
    /// Urgent 30 min / 4 h, high 1 h / 8 h, normal 4 h / 24 h, low 8 h / 40 h, all in business time: an 8-hour
    /// office day makes these half a day, one day, three days and a week to resolve.
    fn default() -> Self {
        let t = |first: i64, resolution: i64| Target {
            first_response: Duration::minutes(first),
            resolution: Duration::hours(resolution),
        };
        Policy { targets: [t(8 * 60, 40), t(4 * 60, 24), t(60, 8), t(30, 4)] }
    }
}

/// Targets as a form or the API submits them, in whole minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub low: TargetInput,
    pub normal: TargetInput,
    pub high: TargetInput,
    pub urgent: TargetInput,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInput {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

impl Policy {
    pub fn target(&self, priority: Priority) -> Target {
        self.targets[priority as usize]
    }

    /// Checks submitted targets: each between one minute and [`MAX_TARGET_MINUTES`] (`too-short`, `too-long`), and
    /// a first response no later than the resolution (`after-resolution`). Fields: `urgent.resolution_minutes`…
    pub fn parse(input: &PolicyInput) -> Result<Policy, FieldErrors> {
        let mut errs = FieldErrors::new();
        let given = [input.low, input.normal, input.high, input.urgent];
        let mut targets = [Target { first_response: Duration::ZERO, resolution: Duration::ZERO }; 4];
        for ((priority, t), target) in Priority::ALL.iter().zip(given).zip(&mut targets) {
            let p = priority.as_str();
            for (name, minutes) in
                [("first_response_minutes", t.first_response_minutes), ("resolution_minutes", t.resolution_minutes)]
            {
                if minutes == 0 {
                    errs.add(&format!("{p}.{name}"), "too-short");
                } else if minutes > MAX_TARGET_MINUTES {
                    errs.add(&format!("{p}.{name}"), "too-long");
                }
            }
            if t.first_response_minutes > t.resolution_minutes && t.resolution_minutes > 0 {
                errs.add(&format!("{p}.first_response_minutes"), "after-resolution");
            }
            *target = Target {
                first_response: Duration::minutes(i64::from(t.first_response_minutes)),
                resolution: Duration::minutes(i64::from(t.resolution_minutes)),
            };
        }
        if errs.is_empty() { Ok(Policy { targets }) } else { Err(errs) }
    }

    pub fn to_input(&self) -> PolicyInput {
        let t = |p: Priority| {
            let t = self.target(p);
            // Targets come from whole minutes that fit u32, so these conversions do not truncate.
            let minutes = |d: Duration| u32::try_from(d.whole_minutes()).unwrap_or(u32::MAX);
            TargetInput { first_response_minutes: minutes(t.first_response), resolution_minutes: minutes(t.resolution) }
        };
        PolicyInput {
            low: t(Priority::Low),
            normal: t(Priority::Normal),
            high: t(Priority::High),
            urgent: t(Priority::Urgent),
        }
    }
}

/// Where a clock stands, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockState {
    /// Counting business time since `since`.
    Running { since: OffsetDateTime },
    /// Standing still since `since`: the ticket is pending on the requester.
    Paused { since: OffsetDateTime },
    /// Stopped for good at `at` (the ticket was answered or resolved), unless reopened.
    Stopped { at: OffsetDateTime },
}

impl ClockState {
    fn name(self) -> &'static str {
        match self {
            ClockState::Running { .. } => "running",
            ClockState::Paused { .. } => "paused",
            ClockState::Stopped { .. } => "stopped",
        }
    }
}

/// One SLA clock of one ticket (a ticket runs two: first response and resolution).
///
/// It keeps the business time `used` up to its last change rather than the ticket's history, so it is a handful
/// of columns to store and cheap to query. Instants earlier than the clock's last change (nodes' clocks differ by
/// a little) count as that change: no time runs backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    target: Duration,
    used: Duration,
    state: ClockState,
    /// When the target was passed, once known; never cleared.
    breached_at: Option<OffsetDateTime>,
}

impl Clock {
    /// A clock for `target` running from `at` (the ticket's creation).
    pub fn start(at: OffsetDateTime, target: Duration) -> Clock {
        Clock { target, used: Duration::ZERO, state: ClockState::Running { since: at }, breached_at: None }
    }

    /// A clock as stored.
    pub fn from_parts(
        target: Duration,
        used: Duration,
        state: ClockState,
        breached_at: Option<OffsetDateTime>,
    ) -> Clock {
        Clock { target, used, state, breached_at }
    }

    pub fn target(&self) -> Duration {
        self.target
    }
    /// Business time used up to the last change (see [`Clock::used`] for up to now).
    pub fn used_before(&self) -> Duration {
        self.used
    }
    pub fn state(&self) -> ClockState {
        self.state
    }
    /// When the target was passed, as far as the last change knows; [`Clock::breached`] knows up to now.
    pub fn breached_at(&self) -> Option<OffsetDateTime> {
        self.breached_at
    }

    /// Brings a running clock's count up to `at`, noting the breach if the target was passed on the way.
    fn settle(&mut self, at: OffsetDateTime, calendar: &BusinessCalendar) -> OffsetDateTime {
        match self.state {
            ClockState::Running { since } => {
                let at = at.max(since);
                if self.breached_at.is_none()
                    && let Ok(deadline) = add_business(since, self.target - self.used, calendar)
                    && is_past(at, deadline)
                {
                    self.breached_at = Some(deadline);
                }
                self.used += business_between(since, at, calendar);
                self.state = ClockState::Running { since: at };
                at
            }
            ClockState::Paused { since } => at.max(since),
            ClockState::Stopped { at: stopped } => at.max(stopped),
        }
    }

    fn refuse(&self, action: &'static str) -> SlaError {
        SlaError::Transition { state: self.state.name(), action }
    }

    /// The ticket went pending on the requester.
    pub fn pause(&mut self, at: OffsetDateTime, calendar: &BusinessCalendar) -> Result<(), SlaError> {
        let ClockState::Running { .. } = self.state else { return Err(self.refuse("paused")) };
        let at = self.settle(at, calendar);
        self.state = ClockState::Paused { since: at };
        Ok(())
    }

    /// The requester answered.
    pub fn resume(&mut self, at: OffsetDateTime) -> Result<(), SlaError> {
        let ClockState::Paused { since } = self.state else { return Err(self.refuse("resumed")) };
        self.state = ClockState::Running { since: at.max(since) };
        Ok(())
    }

    /// The target's event happened (first reply, resolution). A paused clock may stop too (resolved while
    /// pending): the pause is not counted.
    pub fn stop(&mut self, at: OffsetDateTime, calendar: &BusinessCalendar) -> Result<(), SlaError> {
        if let ClockState::Stopped { .. } = self.state {
            return Err(self.refuse("stopped"));
        }
        let at = self.settle(at, calendar);
        self.state = ClockState::Stopped { at };
        Ok(())
    }

    /// A resolved ticket was reopened: the count goes on from where it stopped.
    pub fn reopen(&mut self, at: OffsetDateTime) -> Result<(), SlaError> {
        let ClockState::Stopped { at: stopped } = self.state else { return Err(self.refuse("reopened")) };
        self.state = ClockState::Running { since: at.max(stopped) };
        Ok(())
    }

    /// The ticket's priority changed at `at`: the time used so far counts against the new target. A breach
    /// already noted stays (it happened under the target then in force); a new target already used up is breached
    /// at `at`, the moment it was set.
    pub fn retarget(
        &mut self,
        target: Duration,
        at: OffsetDateTime,
        calendar: &BusinessCalendar,
    ) -> Result<(), SlaError> {
        if let ClockState::Stopped { .. } = self.state {
            return Err(self.refuse("retargeted"));
        }
        let at = self.settle(at, calendar);
        self.target = target;
        if self.breached_at.is_none() && self.used > target {
            self.breached_at = Some(at);
        }
        Ok(())
    }

    /// Business time used up to `now`.
    pub fn used(&self, now: OffsetDateTime, calendar: &BusinessCalendar) -> Duration {
        match self.state {
            ClockState::Running { since } => self.used + business_between(since, now, calendar),
            ClockState::Paused { .. } | ClockState::Stopped { .. } => self.used,
        }
    }

    /// Business time left at `now`; negative once the target is passed (by how much).
    pub fn remaining(&self, now: OffsetDateTime, calendar: &BusinessCalendar) -> Duration {
        self.target - self.used(now, calendar)
    }

    /// When the target is (or was) reached. Running: a fixed instant. Paused: where it would be if the clock
    /// resumed at `now`, so it moves on while the ticket waits. Breached: the instant of the breach. `None` for a
    /// clock stopped within its target, and when the calendar never opens again.
    pub fn deadline(&self, now: OffsetDateTime, calendar: &BusinessCalendar) -> Option<OffsetDateTime> {
        self.when_used(self.target, now, calendar)
    }

    /// When the clock reaches `target`, counting from its last change (or from `now` if paused).
    fn when_used(&self, target: Duration, now: OffsetDateTime, calendar: &BusinessCalendar) -> Option<OffsetDateTime> {
        if let Some(at) = self.breached_at {
            return Some(at);
        }
        let left = (target - self.used).max(Duration::ZERO);
        match self.state {
            ClockState::Running { since } => add_business(since, left, calendar).ok(),
            ClockState::Paused { since } => add_business(now.max(since), left, calendar).ok(),
            ClockState::Stopped { .. } => None,
        }
    }

    /// Whether the target was passed by `now`: a deadline at a closing (13:00) is breached right after it, even
    /// though no business time runs until the next opening.
    pub fn breached(&self, now: OffsetDateTime, calendar: &BusinessCalendar) -> bool {
        if self.breached_at.is_some() {
            return true;
        }
        match self.state {
            ClockState::Running { .. } => self.deadline(now, calendar).is_some_and(|d| is_past(now, d)),
            ClockState::Paused { .. } | ClockState::Stopped { .. } => false,
        }
    }

    /// When to warn that the breach is near: the instant `percent` of the target is used (80 for 80 %, whole
    /// seconds, rounded down). Already past it: the last change (warn now). `None` when there is nothing left to
    /// warn about: stopped or breached. Paused: as for [`Clock::deadline`], if resumed at `now`.
    pub fn warning_at(&self, percent: u8, now: OffsetDateTime, calendar: &BusinessCalendar) -> Option<OffsetDateTime> {
        if self.breached_at.is_some() || matches!(self.state, ClockState::Stopped { .. }) {
            return None;
        }
        let threshold = Duration::seconds(self.target.whole_seconds() * i64::from(percent.min(100)) / 100);
        self.when_used(threshold, now, calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CalendarInput, ClockTime, MonthDay, Opening, OpeningInput};
    use time::macros::{date, datetime};
    use time::{Date, Month};

    fn h(hours: i64) -> Duration {
        Duration::hours(hours)
    }
    fn m(minutes: i64) -> Duration {
        Duration::minutes(minutes)
    }

    fn opening(s: &str, e: &str) -> Opening {
        Opening::new(ClockTime::parse(s).unwrap(), ClockTime::parse(e).unwrap()).unwrap()
    }

    /// Monday to Friday, 08:30–13:00 and 14:00–17:30: eight hours a day, with a lunch break.
    fn office() -> BusinessCalendar {
        let day = vec![opening("08:30", "13:00"), opening("14:00", "17:30")];
        let mut week: [Vec<Opening>; 7] = Default::default();
        for d in &mut week[..5] {
            d.clone_from(&day);
        }
        BusinessCalendar::new(week)
    }

    fn milan() -> BusinessCalendar {
        office().with_patron_day(MonthDay::new(Month::December, 7).unwrap())
    }

    fn always_open() -> BusinessCalendar {
        BusinessCalendar::new(std::array::from_fn(|_| vec![opening("00:00", "24:00")])).open_on_holidays()
    }

    fn add(start: OffsetDateTime, d: Duration, cal: &BusinessCalendar) -> OffsetDateTime {
        add_business(start, d, cal).unwrap()
    }

    #[test]
    fn within_a_morning() {
        // Wednesday 18 November 2026, winter time.
        assert_eq!(add(datetime!(2026-11-18 09:00 +1), h(2), &office()), datetime!(2026-11-18 11:00 +1));
        assert_eq!(add(datetime!(2026-11-18 09:00 +1), h(4), &office()), datetime!(2026-11-18 13:00 +1));
        assert_eq!(add(datetime!(2026-11-18 09:00 +1), Duration::ZERO, &office()), datetime!(2026-11-18 09:00 +1));
        assert_eq!(
            add(datetime!(2026-11-18 09:00:00.25 +1), Duration::seconds(1), &office()),
            datetime!(2026-11-18 09:00:01 +1),
            "counted from the whole second"
        );
    }

    #[test]
    fn across_the_lunch_break() {
        assert_eq!(add(datetime!(2026-11-18 12:00 +1), h(2), &office()), datetime!(2026-11-18 15:00 +1));
        // Starting during lunch starts the clock at 14:00.
        assert_eq!(add(datetime!(2026-11-18 13:20 +1), m(30), &office()), datetime!(2026-11-18 14:30 +1));
        assert_eq!(add(datetime!(2026-11-18 13:20 +1), Duration::ZERO, &office()), datetime!(2026-11-18 14:00 +1));
        // Ending exactly at the break gives 13:00, one second more gives 14:00:01.
        assert_eq!(add(datetime!(2026-11-18 12:00 +1), h(1), &office()), datetime!(2026-11-18 13:00 +1));
        assert_eq!(
            add(datetime!(2026-11-18 12:00 +1), h(1) + Duration::seconds(1), &office()),
            datetime!(2026-11-18 14:00:01 +1)
        );
        assert_eq!(
            business_elapsed(datetime!(2026-11-18 12:00 +1), datetime!(2026-11-18 15:00 +1), &office(), &[]),
            h(2)
        );
    }

    #[test]
    fn across_a_night() {
        assert_eq!(add(datetime!(2026-11-18 16:30 +1), h(3), &office()), datetime!(2026-11-19 10:30 +1));
        assert_eq!(add(datetime!(2026-11-18 20:00 +1), h(1), &office()), datetime!(2026-11-19 09:30 +1));
        assert_eq!(add(datetime!(2026-11-19 06:00 +1), h(1), &office()), datetime!(2026-11-19 09:30 +1));
        assert_eq!(
            business_elapsed(datetime!(2026-11-18 16:30 +1), datetime!(2026-11-19 10:30 +1), &office(), &[]),
            h(3)
        );
    }

    #[test]
    fn friday_five_pm_with_four_hours_lands_on_monday() {
        // Friday 13 November 2026, 17:00: half an hour on Friday, three and a half on Monday morning.
        let opened = datetime!(2026-11-13 17:00 +1);
        let due = add(opened, h(4), &office());
        assert_eq!(due, datetime!(2026-11-16 12:00 +1));
        assert_eq!(due.to_offset(time::UtcOffset::UTC).weekday(), time::Weekday::Monday);
        // Opened during the weekend, the count starts on Monday at 08:30.
        assert_eq!(add(datetime!(2026-11-14 11:00 +1), h(4), &office()), datetime!(2026-11-16 12:30 +1));
        assert_eq!(business_elapsed(opened, datetime!(2026-11-16 12:00 +1), &office(), &[]), h(4));
    }

    #[test]
    fn across_easter_2026() {
        // Friday 3 April (Good Friday, a working day) 16:00, eight hours: 1.5 h on Friday, then Saturday, Easter
        // Sunday 5 April and Easter Monday 6 April are skipped; 6.5 h on Tuesday 7 April.
        assert_eq!(add(datetime!(2026-04-03 16:00 +2), h(8), &office()), datetime!(2026-04-07 16:00 +2));
        assert_eq!(
            business_elapsed(datetime!(2026-04-03 16:00 +2), datetime!(2026-04-07 16:00 +2), &office(), &[]),
            h(8)
        );
        // 25 April 2026 is a Saturday, 1 May a Friday: Thursday 30 April 17:00 + 1 h is Monday 4 May 09:00.
        assert_eq!(add(datetime!(2026-04-30 17:00 +2), h(1), &office()), datetime!(2026-05-04 09:00 +2));
    }

    #[test]
    fn across_easter_2027_and_its_clock_change() {
        // Easter Sunday 28 March 2027 is also the spring change; Easter Monday the 29th is closed. Friday 26 March
        // 15:00 + 8 h: 2.5 h on Friday (UTC+1), 5.5 h on Tuesday 30 March (UTC+2): 08:30–13:00, 14:00–15:00.
        assert_eq!(add(datetime!(2027-03-26 15:00 +1), h(8), &office()), datetime!(2027-03-30 15:00 +2));
    }

    #[test]
    fn the_patron_saint_closes_the_office() {
        // Friday 4 December 2026, 17:00, four hours. In Milan Monday 7 (Sant'Ambrogio) and Tuesday 8 (Immacolata)
        // are both closed; elsewhere only the 8th.
        let opened = datetime!(2026-12-04 17:00 +1);
        assert_eq!(add(opened, h(4), &milan()), datetime!(2026-12-09 12:00 +1));
        assert_eq!(add(opened, h(4), &office()), datetime!(2026-12-07 12:00 +1));
        assert_eq!(business_elapsed(opened, datetime!(2026-12-09 12:00 +1), &milan(), &[]), h(4));
        assert_eq!(business_elapsed(opened, datetime!(2026-12-09 12:00 +1), &office(), &[]), h(12));
        // Brescia's patrons, 15 February: a Monday in 2027.
        let brescia = office().with_patron_day(MonthDay::parse("02-15").unwrap());
        assert_eq!(add(datetime!(2027-02-12 17:00 +1), h(1), &brescia), datetime!(2027-02-16 09:00 +1));
        assert_eq!(add(datetime!(2027-02-12 17:00 +1), h(1), &office()), datetime!(2027-02-15 09:00 +1));
    }

    #[test]
    fn forty_hours_across_the_christmas_week() {
        // Wednesday 23 December 2026 10:00: 6.5 h on the 23rd, 8 h on the 24th, Christmas and Santo Stefano
        // closed, 8 h on the 28th, 29th and 30th, and the last 1.5 h on the 31st.
        let opened = datetime!(2026-12-23 10:00 +1);
        assert_eq!(add(opened, h(40), &office()), datetime!(2026-12-31 10:00 +1));
        // With the 24th and 31st closed as well (and New Year's Day a holiday): 6.5 + 3 × 8 = 30.5 h by the 30th,
        // 8 h on Monday 4 January, the last 1.5 h on the 5th; eight hours more skip Epiphany, Wednesday the 6th.
        let closing = office().with_closed_dates([date!(2026 - 12 - 24), date!(2026 - 12 - 31)]);
        assert_eq!(add(opened, h(40), &closing), datetime!(2027-01-05 10:00 +1));
        assert_eq!(add(opened, h(48), &closing), datetime!(2027-01-07 10:00 +1));
        assert_eq!(business_elapsed(opened, datetime!(2027-01-07 10:00 +1), &closing, &[]), h(48));
    }

    #[test]
    fn over_the_spring_clock_change() {
        // Friday 27 March 2026 16:00 (UTC+1), 4 h: 1.5 h on Friday, 2.5 h on Monday 30 March (UTC+2), so 11:00
        // on the office clock, 09:00 UTC. Counting in UTC without the change would give 10:00 UTC.
        let due = add(datetime!(2026-03-27 16:00 +1), h(4), &office());
        assert_eq!(due, datetime!(2026-03-30 11:00 +2));
        assert_eq!(due, datetime!(2026-03-30 09:00 UTC));
    }

    #[test]
    fn over_the_autumn_clock_change() {
        assert_eq!(add(datetime!(2026-10-23 16:00 +2), h(4), &office()), datetime!(2026-10-26 11:00 +1));
        // A desk open round the clock: Sunday 25 October has 25 hours, 29 March 23. Business time is real time.
        let cal = always_open();
        let autumn_day = (datetime!(2026-10-25 00:00 +2), datetime!(2026-10-26 00:00 +1));
        assert_eq!(business_elapsed(autumn_day.0, autumn_day.1, &cal, &[]), h(25));
        let spring_day = (datetime!(2026-03-29 00:00 +1), datetime!(2026-03-30 00:00 +2));
        assert_eq!(business_elapsed(spring_day.0, spring_day.1, &cal, &[]), h(23));
        // 48 business hours from Saturday midnight end at 01:00 on Monday's wall clock in spring, 23:00 on
        // Sunday's in autumn.
        assert_eq!(add(datetime!(2026-03-28 00:00 +1), h(48), &cal), datetime!(2026-03-30 01:00 +2));
        assert_eq!(add(datetime!(2026-10-24 00:00 +2), h(48), &cal), datetime!(2026-10-25 23:00 +1));
    }

    #[test]
    fn a_sunday_desk_on_the_change_days() {
        // Open Sundays 01:00–04:00 only (an on-call night): 3 h normally, 2 h on 29 March, 4 h on 25 October 2026.
        let mut week: [Vec<Opening>; 7] = Default::default();
        week[6] = vec![opening("01:00", "04:00")];
        let cal = BusinessCalendar::new(week);
        let sunday = |d: Date| {
            let utc_midnight = d.midnight().assume_utc();
            business_elapsed(utc_midnight - h(3), utc_midnight + h(24), &cal, &[])
        };
        assert_eq!(sunday(date!(2026 - 03 - 22)), h(3));
        assert_eq!(sunday(date!(2026 - 03 - 29)), h(2));
        assert_eq!(sunday(date!(2026 - 10 - 25)), h(4));
        // 2.5 h from Saturday 28 March run out at 03:30 wall clock (01:30 UTC) on the short night.
        assert_eq!(add(datetime!(2026-03-28 12:00 +1), m(90), &cal), datetime!(2026-03-29 03:30 +2));
        // On the long night two hours run out at 01:00 UTC, when the wall clock shows 02:00 for the second time.
        assert_eq!(add(datetime!(2026-10-24 12:00 +2), h(2), &cal), datetime!(2026-10-25 01:00 UTC));
        assert_eq!(add(datetime!(2026-10-24 12:00 +2), h(4), &cal), datetime!(2026-10-25 04:00 +1));
    }

    #[test]
    fn pauses_spanning_a_weekend() {
        // Opened Thursday 12 November 2026 09:00, pending from Friday 15:00 to Tuesday 10:00, resolved Tuesday
        // 11:00: 7.5 h on Thursday, 5.5 h on Friday, 1 h on Tuesday.
        let (opened, resolved) = (datetime!(2026-11-12 09:00 +1), datetime!(2026-11-17 11:00 +1));
        let pending = (datetime!(2026-11-13 15:00 +1), datetime!(2026-11-17 10:00 +1));
        assert_eq!(business_elapsed(opened, resolved, &office(), &[]), h(26));
        assert_eq!(business_elapsed(opened, resolved, &office(), &[pending]), h(14));
        // The same time in two overlapping pauses, given out of order, is taken off once.
        let overlapping = [(datetime!(2026-11-14 10:00 +1), pending.1), (pending.0, datetime!(2026-11-16 12:00 +1))];
        assert_eq!(business_elapsed(opened, resolved, &office(), &overlapping), h(14));
        // A pause repeated, a pause at night, one outside the window, one backwards: nothing more is taken off.
        let noise = [
            pending,
            pending,
            (datetime!(2026-11-12 20:00 +1), datetime!(2026-11-13 08:00 +1)),
            (datetime!(2026-11-20 09:00 +1), datetime!(2026-11-20 12:00 +1)),
            (datetime!(2026-11-12 12:00 +1), datetime!(2026-11-12 10:00 +1)),
        ];
        assert_eq!(business_elapsed(opened, resolved, &office(), &noise), h(14));
        // A pause that began before the ticket and one that outlasts it are clipped.
        let wide = [
            (datetime!(2026-11-11 09:00 +1), datetime!(2026-11-12 10:00 +1)),
            (datetime!(2026-11-17 10:30 +1), datetime!(2026-11-30 00:00 +1)),
        ];
        assert_eq!(business_elapsed(opened, resolved, &office(), &wide), h(26) - h(1) - m(30));
        // A pause covering everything leaves nothing.
        assert_eq!(business_elapsed(opened, resolved, &office(), &[(opened - h(1), resolved + h(1))]), Duration::ZERO);
        assert_eq!(business_elapsed(resolved, opened, &office(), &[]), Duration::ZERO, "backwards");
    }

    #[test]
    fn a_calendar_that_never_opens_is_an_error() {
        let never = BusinessCalendar::new(Default::default());
        assert_eq!(add_business(datetime!(2026-11-18 09:00 UTC), h(1), &never), Err(SlaError::NeverOpen));
        assert_eq!(add_business(datetime!(2026-11-18 09:00 UTC), Duration::ZERO, &never), Err(SlaError::NeverOpen));
        assert_eq!(
            business_elapsed(datetime!(2026-11-18 09:00 UTC), datetime!(2027-11-18 09:00 UTC), &never, &[]),
            Duration::ZERO
        );
        // Open on Sundays only, and every Sunday closed for more than ten years: the search gives up.
        let mut week: [Vec<Opening>; 7] = Default::default();
        week[6] = vec![opening("09:00", "10:00")];
        let start = date!(2026 - 11 - 22);
        let sundays = (0..530).map(|w| start + Duration::weeks(w));
        let closed = BusinessCalendar::new(week.clone()).with_closed_dates(sundays.clone());
        assert_eq!(add_business(datetime!(2026-11-18 09:00 UTC), h(1), &closed), Err(SlaError::NeverOpen));
        // Shorter runs of closures are crossed.
        let shorter = BusinessCalendar::new(week).with_closed_dates(sundays.take(500));
        let next_open = start + Duration::weeks(500);
        assert_eq!(add_business(datetime!(2026-11-18 09:00 UTC), h(1), &shorter), Ok(rome_to(next_open, "10:00")));
        assert_eq!(
            add_business(datetime!(2026-11-18 09:00 UTC), -Duration::SECOND, &office()),
            Err(SlaError::Negative)
        );
        assert_eq!(add_business(datetime!(9999-12-31 12:00 UTC), h(24), &office()), Err(SlaError::OutOfRange));
    }

    fn rome_to(d: Date, t: &str) -> OffsetDateTime {
        crate::calendar::rome_to_utc(d, ClockTime::parse(t).unwrap()).unwrap()
    }

    #[test]
    fn a_round_the_clock_desk_counts_real_time() {
        let cal = always_open();
        let mut rng = Rng(7);
        for _ in 0..300 {
            let start = random_instant(&mut rng);
            let d = Duration::seconds(rng.below(30 * 86_400) as i64);
            assert_eq!(add(start, d, &cal), start + d, "{start} {d}");
            assert_eq!(business_elapsed(start, start + d, &cal, &[]), d);
        }
    }

    /// splitmix64: enough randomness to wander over the calendar, reproducible by seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// An instant between 2025 and 2029 (five springs and autumns, Easters early and late), to the second.
    fn random_instant(rng: &mut Rng) -> OffsetDateTime {
        datetime!(2025-01-01 00:00 UTC) + Duration::seconds(rng.below(5 * 365 * 86_400) as i64)
    }

    /// A few calendars unlike one another, all with hours.
    fn calendars() -> Vec<BusinessCalendar> {
        let mut weekend_desk: [Vec<Opening>; 7] = Default::default();
        weekend_desk[5] = vec![opening("10:00", "12:00")];
        weekend_desk[6] = vec![opening("00:00", "03:30"), opening("22:00", "24:00")];
        let mut busy = milan().to_input();
        busy.saturday = vec![OpeningInput::new("08:00", "12:00")];
        busy.closed_dates = (0..60).map(|i| (date!(2026 - 07 - 01) + Duration::days(i)).to_string()).collect();
        vec![
            office(),
            milan(),
            always_open(),
            BusinessCalendar::new(weekend_desk),
            BusinessCalendar::parse(&busy).unwrap(),
            BusinessCalendar::parse(&CalendarInput {
                tuesday: vec![OpeningInput::new("02:15", "02:45")],
                ..Default::default()
            })
            .unwrap(),
        ]
    }

    /// Business seconds in six weeks of `cal` (six ordinary weeks in February 2026), to size random durations.
    fn six_weeks(cal: &BusinessCalendar) -> u64 {
        let from = datetime!(2026-02-02 00:00 +1);
        business_elapsed(from, from + Duration::weeks(6), cal, &[]).whole_seconds() as u64
    }

    #[test]
    fn property_elapsed_undoes_add() {
        let mut rng = Rng(2026);
        for cal in calendars() {
            let longest = six_weeks(&cal);
            for _ in 0..400 {
                let start = random_instant(&mut rng);
                // Up to about six weeks of this calendar's business time, in whole seconds.
                let d = Duration::seconds(rng.below(longest) as i64);
                let due = add(start, d, &cal);
                assert!(due >= start);
                assert_eq!(business_elapsed(start, due, &cal, &[]), d, "{start} + {d} = {due}");
                // Splitting the duration in two steps lands on the same instant (the second part not empty).
                let a = Duration::seconds(rng.below(d.whole_seconds().max(1) as u64) as i64);
                if a < d {
                    assert_eq!(add(add(start, a, &cal), d - a, &cal), due, "{start} {a} {d}");
                }
            }
        }
    }

    #[test]
    fn property_monotonic() {
        let mut rng = Rng(42);
        for cal in calendars() {
            let longest = six_weeks(&cal);
            for _ in 0..300 {
                let s1 = random_instant(&mut rng);
                let s2 = s1 + Duration::seconds(rng.below(60 * 86_400) as i64);
                let (d1, d2) =
                    (Duration::seconds(rng.below(longest) as i64), Duration::seconds(rng.below(longest) as i64));
                let (d1, d2) = (d1.min(d2), d1.max(d2));
                // A later start or a longer duration never gives an earlier deadline.
                assert!(add(s1, d1, &cal) <= add(s1, d2, &cal));
                assert!(add(s1, d1, &cal) <= add(s2, d1, &cal));
                // A later end never gives less elapsed time; elapsed time never exceeds real time, and adds up.
                let (e1, e2) = (s1 + (s2 - s1) / 2, s2);
                let (b1, b2) = (business_elapsed(s1, e1, &cal, &[]), business_elapsed(s1, e2, &cal, &[]));
                assert!(b1 <= b2 && b2 <= s2 - s1);
                assert_eq!(b1 + business_elapsed(e1, e2, &cal, &[]), b2);
                // A pause takes off exactly the business time it covers inside the window.
                let pause_start = s1 + Duration::seconds(rng.below(60 * 86_400) as i64);
                let p = (pause_start, pause_start + Duration::seconds(rng.below(10 * 86_400) as i64));
                let with_pause = business_elapsed(s1, e2, &cal, &[p]);
                assert_eq!(with_pause, b2 - business_elapsed(p.0.max(s1), p.1.min(e2), &cal, &[]));
            }
        }
    }

    #[test]
    fn policy_defaults_and_validation() {
        let p = Policy::default();
        assert_eq!(p.target(Priority::Urgent), Target { first_response: m(30), resolution: h(4) });
        assert_eq!(p.target(Priority::Low), Target { first_response: h(8), resolution: h(40) });
        for pair in Priority::ALL.windows(2) {
            let (less, more) = (p.target(pair[0]), p.target(pair[1]));
            assert!(more.first_response < less.first_response && more.resolution < less.resolution);
        }
        assert_eq!(Policy::parse(&p.to_input()), Ok(p));
        let mut input = Policy::default().to_input();
        input.urgent.first_response_minutes = 0;
        input.high = TargetInput { first_response_minutes: 600, resolution_minutes: 480 };
        input.low.resolution_minutes = MAX_TARGET_MINUTES + 1;
        let errs = Policy::parse(&input).unwrap_err();
        let got: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            [
                ("low.resolution_minutes", "too-long"),
                ("high.first_response_minutes", "after-resolution"),
                ("urgent.first_response_minutes", "too-short"),
            ]
        );
        let json = serde_json::to_value(Priority::Urgent).unwrap();
        assert_eq!(json, "urgent");
    }

    #[test]
    fn a_clock_runs_pauses_and_stops() {
        let cal = office();
        // Opened Thursday 12 November 2026 09:00 with 16 business hours to resolve: 7.5 h on Thursday, 8 h on
        // Friday, due Monday 16 at 09:00.
        let opened = datetime!(2026-11-12 09:00 +1);
        let mut clock = Clock::start(opened, h(16));
        assert_eq!(clock.deadline(opened, &cal), Some(datetime!(2026-11-16 09:00 +1)));
        assert_eq!(clock.remaining(datetime!(2026-11-12 12:00 +1), &cal), h(13));
        assert!(!clock.breached(datetime!(2026-11-16 09:00 +1), &cal));
        assert!(clock.breached(datetime!(2026-11-16 09:00:01 +1), &cal));
        assert_eq!(clock.warning_at(80, opened, &cal), Some(datetime!(2026-11-13 14:48 +1)), "12.8 h used");
        assert_eq!(clock.warning_at(50, opened, &cal), Some(datetime!(2026-11-13 09:00 +1)));

        // Pending on the requester from Friday 15:00 (13 h used) to Tuesday 10:00.
        clock.pause(datetime!(2026-11-13 15:00 +1), &cal).unwrap();
        assert_eq!(clock.used_before(), h(13));
        assert_eq!(clock.state(), ClockState::Paused { since: datetime!(2026-11-13 15:00 +1) });
        let monday = datetime!(2026-11-16 12:00 +1);
        assert_eq!(clock.remaining(monday, &cal), h(3), "no time runs while paused");
        assert!(!clock.breached(datetime!(2026-11-17 09:00 +1), &cal), "not breached while paused");
        // Paused, the deadline is where it would be if the requester answered now.
        assert_eq!(clock.deadline(monday, &cal), Some(datetime!(2026-11-16 16:00 +1)));
        assert_eq!(clock.deadline(datetime!(2026-11-14 10:00 +1), &cal), Some(datetime!(2026-11-16 11:30 +1)));
        assert_eq!(clock.pause(monday, &cal), Err(SlaError::Transition { state: "paused", action: "paused" }));
        assert_eq!(clock.reopen(monday), Err(SlaError::Transition { state: "paused", action: "reopened" }));

        let tuesday = datetime!(2026-11-17 10:00 +1);
        clock.resume(tuesday).unwrap();
        assert_eq!(clock.deadline(tuesday, &cal), Some(datetime!(2026-11-17 13:00 +1)));
        assert_eq!(clock.warning_at(80, tuesday, &cal), Some(tuesday), "past 80 % already: warn now");
        assert_eq!(clock.resume(tuesday), Err(SlaError::Transition { state: "running", action: "resumed" }));
        clock.stop(datetime!(2026-11-17 11:00 +1), &cal).unwrap();
        let later = datetime!(2026-11-30 12:00 +1);
        assert_eq!(clock.used(later, &cal), h(14));
        assert_eq!(clock.remaining(later, &cal), h(2));
        assert!(!clock.breached(later, &cal));
        assert_eq!(clock.deadline(later, &cal), None, "met");
        assert_eq!(clock.warning_at(80, later, &cal), None);
        assert_eq!(clock.stop(later, &cal), Err(SlaError::Transition { state: "stopped", action: "stopped" }));

        // Reopened on Wednesday 18 at 09:00 with 2 h left: due 11:00; resolved at 16:00, 4 h late.
        clock.reopen(datetime!(2026-11-18 09:00 +1)).unwrap();
        assert_eq!(clock.deadline(datetime!(2026-11-18 09:00 +1), &cal), Some(datetime!(2026-11-18 11:00 +1)));
        clock.stop(datetime!(2026-11-18 16:00 +1), &cal).unwrap();
        assert_eq!(clock.breached_at(), Some(datetime!(2026-11-18 11:00 +1)));
        assert!(clock.breached(datetime!(2026-11-18 16:00 +1), &cal));
        assert_eq!(clock.remaining(datetime!(2026-11-18 16:00 +1), &cal), -h(4));
        assert_eq!(clock.deadline(later, &cal), Some(datetime!(2026-11-18 11:00 +1)));
    }

    #[test]
    fn the_clock_agrees_with_business_elapsed() {
        // The clock's running count equals the stateless computation over the same pauses.
        let cal = milan();
        let mut rng = Rng(99);
        for _ in 0..200 {
            let opened = random_instant(&mut rng);
            let mut clock = Clock::start(opened, h(1 + rng.below(60) as i64));
            let mut t = opened;
            let mut pauses = Vec::new();
            for step in 0..6 {
                t += Duration::seconds(rng.below(3 * 86_400) as i64);
                if step % 2 == 0 {
                    clock.pause(t, &cal).unwrap();
                    pauses.push((t, t));
                } else {
                    clock.resume(t).unwrap();
                    pauses.last_mut().unwrap().1 = t;
                }
            }
            let end = t + Duration::seconds(rng.below(3 * 86_400) as i64);
            let expected = business_elapsed(opened, end, &cal, &pauses);
            assert_eq!(clock.used(end, &cal), expected);
            clock.stop(end, &cal).unwrap();
            assert_eq!(clock.used_before(), expected);
            // Breached exactly when more than the target was used, or the target was used and the deadline passed.
            if expected > clock.target() {
                assert!(clock.breached(end, &cal) && clock.breached_at().is_some_and(|b| b <= end));
            } else if expected < clock.target() {
                assert!(!clock.breached(end, &cal));
            }
        }
    }

    #[test]
    fn a_deadline_at_closing_time_is_breached_after_it() {
        // Due at 13:00; answered at 13:30 (no business time since): late.
        let cal = office();
        let mut clock = Clock::start(datetime!(2026-11-18 12:00 +1), h(1));
        assert_eq!(clock.deadline(datetime!(2026-11-18 12:00 +1), &cal), Some(datetime!(2026-11-18 13:00 +1)));
        assert!(!clock.breached(datetime!(2026-11-18 13:00 +1), &cal));
        assert!(clock.breached(datetime!(2026-11-18 13:30 +1), &cal));
        assert_eq!(clock.remaining(datetime!(2026-11-18 13:30 +1), &cal), Duration::ZERO);
        clock.stop(datetime!(2026-11-18 13:30 +1), &cal).unwrap();
        assert_eq!(clock.breached_at(), Some(datetime!(2026-11-18 13:00 +1)));
        // Answered at 13:00 sharp: on time.
        let mut on_time = Clock::start(datetime!(2026-11-18 12:00 +1), h(1));
        on_time.stop(datetime!(2026-11-18 13:00 +1), &cal).unwrap();
        assert_eq!(on_time.breached_at(), None);
        assert!(!on_time.breached(datetime!(2026-11-18 15:00 +1), &cal));
    }

    #[test]
    fn stored_instants_at_exact_openings_and_closings_count_whole_seconds() {
        // Stored instants end in an odd microsecond (clock::stamp): opened "at 09:00" is 09:00:00.000001.
        let cal = office();
        let stamp = |t: OffsetDateTime| agilekit_kernel::clock::stamp(t);
        let opened = stamp(datetime!(2026-11-18 08:30 +1));
        assert_eq!(opened.nanosecond(), 1_000, "the stamp this test is about");
        // 4 h 30 min from the opening end exactly at the 13:00 closing, not at the 14:00 opening.
        assert_eq!(add(opened, h(4) + m(30), &cal), datetime!(2026-11-18 13:00 +1));
        // From the afternoon's opening to its closing; a whole day from an opening to the next day's same opening.
        let afternoon = stamp(datetime!(2026-11-18 14:00 +1));
        assert_eq!(add(afternoon, h(3) + m(30), &cal), datetime!(2026-11-18 17:30 +1));
        assert_eq!(add(opened, h(8), &cal), datetime!(2026-11-18 17:30 +1));
        assert_eq!(add(opened, h(8) + Duration::SECOND, &cal), datetime!(2026-11-19 08:30:01 +1));
        // Friday's closing: not Monday's opening.
        let friday = stamp(datetime!(2026-11-20 14:00 +1));
        assert_eq!(add(friday, h(3) + m(30), &cal), datetime!(2026-11-20 17:30 +1));
        // Elapsed time agrees: from the stamped opening to the closing is the whole stretch.
        assert_eq!(business_elapsed(opened, stamp(datetime!(2026-11-18 13:00 +1)), &cal, &[]), h(4) + m(30));
        // A clock opened at the opening with 4 h 30 min: answered at the stamped closing, on time; a second later, late.
        let mut clock = Clock::start(opened, h(4) + m(30));
        assert_eq!(clock.deadline(opened, &cal), Some(datetime!(2026-11-18 13:00 +1)));
        assert!(!clock.breached(stamp(datetime!(2026-11-18 13:00 +1)), &cal));
        assert!(clock.breached(stamp(datetime!(2026-11-18 13:00:01 +1)), &cal));
        let mut late = clock;
        clock.stop(stamp(datetime!(2026-11-18 13:00 +1)), &cal).unwrap();
        assert_eq!((clock.breached_at(), clock.used_before()), (None, h(4) + m(30)));
        late.stop(stamp(datetime!(2026-11-18 14:00 +1)), &cal).unwrap();
        assert_eq!(late.breached_at(), Some(datetime!(2026-11-18 13:00 +1)));
        // A pause from a stamped instant to another counts whole seconds too.
        let mut paused = Clock::start(opened, h(8));
        paused.pause(stamp(datetime!(2026-11-18 12:00 +1)), &cal).unwrap();
        assert_eq!(paused.used_before(), h(3) + m(30));
        paused.resume(stamp(datetime!(2026-11-18 14:00 +1))).unwrap();
        assert_eq!(paused.deadline(stamp(datetime!(2026-11-18 14:00 +1)), &cal), Some(datetime!(2026-11-19 09:30 +1)));
    }

    #[test]
    fn breach_noted_while_pausing_and_warnings_stop_after_it() {
        let cal = office();
        let mut clock = Clock::start(datetime!(2026-11-18 09:00 +1), h(2));
        assert_eq!(clock.warning_at(80, datetime!(2026-11-18 09:00 +1), &cal), Some(datetime!(2026-11-18 10:36 +1)));
        clock.pause(datetime!(2026-11-18 12:00 +1), &cal).unwrap();
        assert_eq!(clock.breached_at(), Some(datetime!(2026-11-18 11:00 +1)));
        assert!(clock.breached(datetime!(2026-11-18 12:00 +1), &cal), "a breach stays while paused");
        assert_eq!(clock.warning_at(80, datetime!(2026-11-18 12:00 +1), &cal), None);
        assert_eq!(clock.deadline(datetime!(2026-11-19 12:00 +1), &cal), Some(datetime!(2026-11-18 11:00 +1)));
        // Past the warning threshold but not the target: warn at once (at the last change).
        let mut near = Clock::start(datetime!(2026-11-18 09:00 +1), h(2));
        near.pause(datetime!(2026-11-18 10:50 +1), &cal).unwrap();
        near.resume(datetime!(2026-11-18 15:00 +1)).unwrap();
        assert_eq!(near.warning_at(80, datetime!(2026-11-18 16:00 +1), &cal), Some(datetime!(2026-11-18 15:00 +1)));
        assert_eq!(near.warning_at(0, datetime!(2026-11-18 16:00 +1), &cal), Some(datetime!(2026-11-18 15:00 +1)));
        assert_eq!(
            near.warning_at(200, datetime!(2026-11-18 16:00 +1), &cal),
            near.deadline(datetime!(2026-11-18 16:00 +1), &cal)
        );
        assert_eq!(near.deadline(datetime!(2026-11-18 16:00 +1), &cal), Some(datetime!(2026-11-18 15:10 +1)));
    }

    #[test]
    fn retargeting_on_a_priority_change() {
        let cal = office();
        // Normal (24 h) raised to urgent (4 h) after 3 h: one hour left.
        let mut clock = Clock::start(datetime!(2026-11-18 09:00 +1), h(24));
        clock.retarget(h(4), datetime!(2026-11-18 12:00 +1), &cal).unwrap();
        assert_eq!(clock.used_before(), h(3));
        assert_eq!(clock.deadline(datetime!(2026-11-18 12:00 +1), &cal), Some(datetime!(2026-11-18 13:00 +1)));
        // Raised again after the time is already used up: breached at the change.
        let mut late = Clock::start(datetime!(2026-11-18 09:00 +1), h(24));
        late.retarget(h(2), datetime!(2026-11-18 15:00 +1), &cal).unwrap();
        assert_eq!(late.breached_at(), Some(datetime!(2026-11-18 15:00 +1)));
        // Lowered afterwards: the breach stays.
        late.retarget(h(40), datetime!(2026-11-18 16:00 +1), &cal).unwrap();
        assert!(late.breached(datetime!(2026-11-18 16:00 +1), &cal));
        let mut done = Clock::start(datetime!(2026-11-18 09:00 +1), h(4));
        done.stop(datetime!(2026-11-18 10:00 +1), &cal).unwrap();
        assert_eq!(
            done.retarget(h(1), datetime!(2026-11-18 11:00 +1), &cal),
            Err(SlaError::Transition { state: "stopped", action: "retargeted" })
        );
    }

    #[test]
    fn instants_before_the_last_change_count_as_it() {
        let cal = office();
        let mut clock = Clock::start(datetime!(2026-11-18 10:00 +1), h(4));
        clock.pause(datetime!(2026-11-18 09:59:59.999 +1), &cal).unwrap();
        assert_eq!(clock.state(), ClockState::Paused { since: datetime!(2026-11-18 10:00 +1) });
        assert_eq!(clock.used_before(), Duration::ZERO);
        clock.resume(datetime!(2026-11-18 09:00 +1)).unwrap();
        assert_eq!(clock.state(), ClockState::Running { since: datetime!(2026-11-18 10:00 +1) });
        assert_eq!(clock.used(datetime!(2026-11-18 09:30 +1), &cal), Duration::ZERO);
        let stored = Clock::from_parts(clock.target(), clock.used_before(), clock.state(), clock.breached_at());
        assert_eq!(stored, clock);
    }
}
