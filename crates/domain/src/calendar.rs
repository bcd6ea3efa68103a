//! New Zealand time for the practice's day: Pacific/Auckland local times (right across the
//! daylight-saving changes in April and September), the national public holidays of any year
//! (Mondayised as the Holidays Act 2003 says; Matariki from the Te Kāhui o Matariki Public
//! Holiday Act 2022's table), working days, and a cut-off counted in working days' time.
//! Regional anniversary days differ by province: a practice adds its own as a closure.

use crate::UnixTime;
use jiff::civil::{Date, Time, Weekday, date};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};
use std::sync::LazyLock;

static AUCKLAND: LazyLock<TimeZone> =
    LazyLock::new(|| TimeZone::get("Pacific/Auckland").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(12))));

/// New Zealand's time zone (the tz database is bundled into the binary).
#[must_use]
pub fn nz() -> &'static TimeZone {
    &AUCKLAND
}

/// The New Zealand calendar day a moment falls on.
#[must_use]
pub fn local_day(at: UnixTime) -> Date {
    Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(nz().clone()).date()
}

/// Minutes since local midnight of a moment, in New Zealand.
#[must_use]
pub fn local_minute(at: UnixTime) -> i32 {
    let t = Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(nz().clone()).time();
    i32::from(t.hour()) * 60 + i32::from(t.minute())
}

/// The moment a New Zealand wall-clock time happens on a day: `None` when the clocks skip it
/// (02:00–02:59 on the last Sunday of September); the first of the two when they repeat it
/// (02:00–02:59 on the first Sunday of April).
#[must_use]
pub fn local_moment(day: Date, minute_of_day: i32) -> Option<UnixTime> {
    if !(0..24 * 60).contains(&minute_of_day) {
        return None;
    }
    let hour = i8::try_from(minute_of_day / 60).ok()?;
    let minute = i8::try_from(minute_of_day % 60).ok()?;
    let ambiguous = nz().to_ambiguous_zoned(day.at(hour, minute, 0, 0));
    if matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. }) {
        return None;
    }
    ambiguous.earlier().ok().map(|z| z.timestamp().as_second())
}

/// When a New Zealand day starts.
#[must_use]
pub fn day_start(day: Date) -> UnixTime {
    nz().to_ambiguous_zoned(day.to_datetime(Time::midnight())).compatible().map_or(0, |z| z.timestamp().as_second())
}

/// Matariki's date each year, as the Act's schedule fixes it (2022–2052).
const MATARIKI: &[(i16, i8, i8)] = &[
    (2022, 6, 24),
    (2023, 7, 14),
    (2024, 6, 28),
    (2025, 6, 20),
    (2026, 7, 10),
    (2027, 6, 25),
    (2028, 7, 14),
    (2029, 7, 6),
    (2030, 6, 21),
    (2031, 7, 11),
    (2032, 7, 2),
    (2033, 6, 24),
    (2034, 7, 7),
    (2035, 6, 29),
    (2036, 7, 18),
    (2037, 7, 10),
    (2038, 6, 25),
    (2039, 7, 15),
    (2040, 7, 6),
    (2041, 7, 19),
    (2042, 7, 11),
    (2043, 7, 3),
    (2044, 6, 24),
    (2045, 7, 7),
    (2046, 6, 29),
    (2047, 7, 19),
    (2048, 7, 3),
    (2049, 6, 25),
    (2050, 7, 15),
    (2051, 6, 30),
    (2052, 6, 21),
];

/// Easter Sunday (the Gregorian computus; its letters are the algorithm's own).
#[allow(clippy::many_single_char_names)]
fn easter(year: i16) -> Date {
    let y = i32::from(year);
    let (a, b, c) = (y % 19, y / 100, y % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    date(year, i8::try_from(month).unwrap_or(4), i8::try_from(day).unwrap_or(1))
}

fn plus(d: Date, days: i64) -> Date {
    d.checked_add(days.days()).unwrap_or(d)
}

/// The Monday after a weekend day (the day itself otherwise).
fn mondayised(d: Date) -> Date {
    match d.weekday() {
        Weekday::Saturday => plus(d, 2),
        Weekday::Sunday => plus(d, 1),
        _ => d,
    }
}

/// A pair of days in a row (1–2 January, 25–26 December), each moved off a weekend to the next
/// weekday the other is not on.
fn pair(first: Date, second: Date) -> (Date, Date) {
    match first.weekday() {
        Weekday::Saturday => (plus(first, 2), plus(first, 3)),
        Weekday::Sunday => (plus(first, 2), second),
        Weekday::Friday => (first, plus(second, 2)),
        _ => (first, second),
    }
}

fn nth_monday(year: i16, month: i8, nth: i8) -> Date {
    date(year, month, 1).nth_weekday_of_month(nth, Weekday::Monday).unwrap_or_else(|_| date(year, month, 1))
}

/// The national public holidays of a year, on the days they are observed, in date order.
#[must_use]
pub fn public_holidays(year: i16) -> Vec<(Date, &'static str)> {
    let (new_year, day_after) = pair(date(year, 1, 1), date(year, 1, 2));
    let (christmas, boxing) = pair(date(year, 12, 25), date(year, 12, 26));
    let easter = easter(year);
    let mut days = vec![
        (new_year, "New Year's Day"),
        (day_after, "Day after New Year's Day"),
        (mondayised(date(year, 2, 6)), "Waitangi Day"),
        (plus(easter, -2), "Good Friday"),
        (plus(easter, 1), "Easter Monday"),
        (mondayised(date(year, 4, 25)), "Anzac Day"),
        (nth_monday(year, 6, 1), "King's Birthday"),
        (nth_monday(year, 10, 4), "Labour Day"),
        (christmas, "Christmas Day"),
        (boxing, "Boxing Day"),
    ];
    if let Some((y, m, d)) = MATARIKI.iter().find(|(y, ..)| *y == year) {
        days.push((date(*y, *m, *d), "Matariki"));
    }
    days.sort_by_key(|(d, _)| *d);
    days
}

/// The public holiday a day is, if it is one.
#[must_use]
pub fn holiday(day: Date) -> Option<&'static str> {
    public_holidays(day.year()).into_iter().find(|(d, _)| *d == day).map(|(_, name)| name)
}

/// Monday to Friday, and not a public holiday.
#[must_use]
pub fn is_working_day(day: Date) -> bool {
    !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) && holiday(day).is_none()
}

/// The `n`th working day after `from` (a request on Friday with two working days' turnaround is
/// ready on Tuesday; over Easter, on the Wednesday after Easter Monday).
#[must_use]
pub fn add_working_days(from: Date, n: u32) -> Date {
    let mut day = from;
    let mut left = n;
    while left > 0 {
        day = plus(day, 1);
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

/// The last moment to cancel online: `minutes` before `start`, counting only time on working
/// days and on the appointment's own day (the practice is not there on other weekend days and
/// public holidays to offer the slot again), so a 24-hour cut-off for 9:00 on the Tuesday after
/// Easter Monday is 9:00 on the Thursday before, and 2 hours before a Saturday clinic's 9:00 is
/// 7:00 that Saturday.
#[must_use]
pub fn cutoff(start: UnixTime, minutes: i64) -> UnixTime {
    let mut left = minutes.max(0) * 60;
    let mut cursor = start;
    let own_day = local_day(start - 1);
    // A year of days is far more than any cut-off a practice can set.
    for _ in 0..400 {
        let day = local_day(cursor - 1);
        let begins = day_start(day);
        if day == own_day || is_working_day(day) {
            let here = cursor - begins;
            if here >= left {
                return cursor - left;
            }
            left -= here;
        }
        cursor = begins;
    }
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2027_holidays_are_on_the_days_they_are_observed() {
        let days: Vec<String> = public_holidays(2027).iter().map(|(d, n)| format!("{d} {n}")).collect();
        assert_eq!(
            days,
            [
                "2027-01-01 New Year's Day",
                "2027-01-04 Day after New Year's Day",
                "2027-02-08 Waitangi Day",
                "2027-03-26 Good Friday",
                "2027-03-29 Easter Monday",
                "2027-04-26 Anzac Day",
                "2027-06-07 King's Birthday",
                "2027-06-25 Matariki",
                "2027-10-25 Labour Day",
                "2027-12-27 Christmas Day",
                "2027-12-28 Boxing Day",
            ]
        );
        // 2022: Christmas on a Sunday, Boxing Day on the Monday, Christmas observed on Tuesday.
        let d2022 = public_holidays(2022);
        assert!(d2022.contains(&(date(2022, 12, 26), "Boxing Day")));
        assert!(d2022.contains(&(date(2022, 12, 27), "Christmas Day")));
        assert_eq!(easter(2025), date(2025, 4, 20));
        assert_eq!(easter(2026), date(2026, 4, 5));
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        // Thursday before Easter 2027, two working days: Friday and Monday are holidays.
        assert_eq!(add_working_days(date(2027, 3, 25), 2), date(2027, 3, 31));
        // Friday, two working days: Tuesday.
        assert_eq!(add_working_days(date(2027, 5, 14), 2), date(2027, 5, 18));
        assert!(!is_working_day(date(2027, 6, 25)), "Matariki");
        assert!(is_working_day(date(2027, 6, 24)));
    }

    #[test]
    fn local_times_follow_daylight_saving() {
        // 9:00 in Auckland: 20:00 UTC the day before in summer (+13), 21:00 in winter (+12).
        let summer = local_moment(date(2027, 4, 2), 9 * 60).unwrap_or_default();
        let winter = local_moment(date(2027, 4, 5), 9 * 60).unwrap_or_default();
        assert_eq!(Timestamp::from_second(summer).map(|t| t.to_string()).ok(), Some("2027-04-01T20:00:00Z".into()));
        assert_eq!(Timestamp::from_second(winter).map(|t| t.to_string()).ok(), Some("2027-04-04T21:00:00Z".into()));
        // 02:30 does not happen on 26 September 2027; on 4 April it happens twice (the first is taken).
        assert_eq!(local_moment(date(2027, 9, 26), 150), None);
        let twice = local_moment(date(2027, 4, 4), 150).unwrap_or_default();
        assert_eq!(Timestamp::from_second(twice).map(|t| t.to_string()).ok(), Some("2027-04-03T13:30:00Z".into()));
        assert_eq!(local_minute(winter), 9 * 60);
        assert_eq!(local_day(summer), date(2027, 4, 2));
    }

    #[test]
    fn the_cut_off_counts_working_days_only() {
        let start = local_moment(date(2027, 3, 30), 9 * 60).unwrap_or_default();
        // Two hours before 9:00 on a working Tuesday: 7:00 the same morning.
        assert_eq!(cutoff(start, 120), start - 7_200);
        // 24 hours before 9:00 on the Tuesday after Easter Monday: 9:00 on the Thursday before.
        assert_eq!(cutoff(start, 24 * 60), local_moment(date(2027, 3, 25), 9 * 60).unwrap_or_default());
        // A Saturday clinic's own day counts; the days before it that are not working days do not.
        let saturday = local_moment(date(2027, 5, 15), 9 * 60).unwrap_or_default();
        assert_eq!(cutoff(saturday, 120), saturday - 7_200);
        assert_eq!(cutoff(saturday, 24 * 60), local_moment(date(2027, 5, 14), 9 * 60).unwrap_or_default());
    }
}
