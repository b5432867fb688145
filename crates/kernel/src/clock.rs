//! Time: UTC in storage, Europe/Rome on screen. The Rome offset follows the EU summer-time rule
//! (last Sunday of March to last Sunday of October, switching at 01:00 UTC), exact since 1996.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// Now, as stored: see [`stamp`].
pub fn now() -> OffsetDateTime {
    stamp(OffsetDateTime::now_utc())
}

/// Normalises an instant for storage: UTC, microsecond precision (PostgreSQL's), and an odd last microsecond digit.
/// SQLite keeps timestamps as RFC 3339 text and compares them as text; the text trims trailing zeros of the
/// fraction, so `…:05.1Z` would sort after `…:05.123Z`. With the last digit never zero every stored instant has
/// exactly six fractional digits, and text order is time order. The error is at most one microsecond.
pub fn stamp(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let micros = t.nanosecond() / 1_000;
    t.replace_nanosecond((micros | 1) * 1_000).unwrap_or(t)
}

fn last_sunday(year: i32, month: Month) -> Date {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).expect("valid last day of month");
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day().expect("date in range");
    }
    d
}

/// The offset of Europe/Rome at the UTC instant `t`.
pub fn rome_offset(t: OffsetDateTime) -> UtcOffset {
    let t = t.to_offset(UtcOffset::UTC);
    let year = t.year();
    let start = last_sunday(year, Month::March).with_hms(1, 0, 0).expect("valid time").assume_utc();
    let end = last_sunday(year, Month::October).with_hms(1, 0, 0).expect("valid time").assume_utc();
    let hours = if t >= start && t < end { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0).expect("valid offset")
}

pub fn to_rome(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(rome_offset(t))
}

/// `dd/mm/yyyy HH:MM` in Rome time: how Italian offices write an instant.
pub fn format_rome(t: OffsetDateTime) -> String {
    let r = to_rome(t);
    format!("{:02}/{:02}/{} {:02}:{:02}", r.day(), r.month() as u8, r.year(), r.hour(), r.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn stamped_instants_sort_as_text() {
        let a = stamp(datetime!(2026-11-26 12:00:05.1 UTC));
        let b = stamp(datetime!(2026-11-26 12:00:05.123 UTC));
        let c = stamp(datetime!(2026-11-26 12:00:05 UTC));
        let (ta, tb, tc) = (a.format(&Rfc3339).unwrap(), b.format(&Rfc3339).unwrap(), c.format(&Rfc3339).unwrap());
        assert_eq!(ta.len(), tb.len());
        assert_eq!(tb.len(), tc.len());
        assert!(tc < ta && ta < tb, "{tc} {ta} {tb}");
    }

    #[test]
    fn rome_switches_at_one_utc_on_the_last_sundays() {
        // 2026: summer time from 29 March to 25 October.
        assert_eq!(rome_offset(datetime!(2026-03-29 00:59 UTC)).whole_hours(), 1);
        assert_eq!(rome_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(), 2);
        assert_eq!(rome_offset(datetime!(2026-10-25 00:59 UTC)).whole_hours(), 2);
        assert_eq!(rome_offset(datetime!(2026-10-25 01:00 UTC)).whole_hours(), 1);
        assert_eq!(format_rome(datetime!(2020-04-02 10:00 UTC)), "02/04/2020 12:00");
        assert_eq!(format_rome(datetime!(2026-11-26 12:00 UTC)), "26/11/2026 13:00");
    }
}
