//! How times and dates read to the people using Tiaki: always New Zealand time
//! (Pacific/Auckland, across daylight saving), never UTC, and dates written as New Zealanders
//! write them ("30 July 1991"). Every page formats through here, so there is one place to change.

use jiff::{Timestamp, civil::Date, tz::TimeZone};
use std::sync::LazyLock;

/// New Zealand's time zone, from the time-zone database bundled into the binary (so a server
/// without `/usr/share/zoneinfo`, or with an old one, still shows the right local time).
static NZ: LazyLock<TimeZone> = LazyLock::new(|| TimeZone::get("Pacific/Auckland").unwrap_or(TimeZone::UTC));

/// A moment as shown on a page: the words a person reads, and the exact instant (RFC 3339, UTC)
/// for `<time datetime>`, which screen readers and browser tools use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moment {
    pub(crate) iso: String,
    pub(crate) text: String,
}

/// A moment given in seconds since 1970, to the minute: "27 November 2026, 11:32 pm NZDT".
pub(crate) fn moment(secs: i64) -> Moment {
    at(Timestamp::from_second(secs).ok(), "%-d %B %Y, %-I:%M %P %Z")
}

/// A moment given in milliseconds since 1970, to the second (the access history, where the
/// order of events a few seconds apart matters): "27 November 2026, 11:32:05 pm NZDT".
pub(crate) fn moment_ms(ms: i64) -> Moment {
    at(Timestamp::from_millisecond(ms).ok(), "%-d %B %Y, %-I:%M:%S %P %Z")
}

fn at(t: Option<Timestamp>, pattern: &str) -> Moment {
    match t {
        Some(t) => {
            let local = t.to_zoned(NZ.clone());
            Moment { iso: t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), text: local.strftime(pattern).to_string() }
        }
        None => Moment { iso: String::new(), text: String::new() },
    }
}

/// The New Zealand calendar date of a moment given in seconds: "30 July 1991".
pub(crate) fn date_of(secs: i64) -> String {
    Timestamp::from_second(secs).map(|t| t.to_zoned(NZ.clone()).strftime("%-d %B %Y").to_string()).unwrap_or_default()
}

/// The New Zealand calendar day of a moment given in seconds, as `YYYY-MM-DD` (to compare with
/// the dates a record carries: is a recall overdue?).
pub(crate) fn iso_day(secs: i64) -> String {
    Timestamp::from_second(secs).map(|t| t.to_zoned(NZ.clone()).date().to_string()).unwrap_or_default()
}

/// A calendar date stored as `YYYY-MM-DD` (a date of birth, a letter's clinical date), written
/// out: "30 July 1991". Anything that is not such a date is shown as it was given.
pub(crate) fn calendar_date(iso: &str) -> String {
    iso.parse::<Date>().map_or_else(|_| iso.to_owned(), |d| d.strftime("%-d %B %Y").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_new_zealand_time_on_both_sides_of_daylight_saving() {
        // 2026-11-27 10:32:05 UTC is 11:32 pm on the 27th in NZ summer time (UTC+13).
        let summer = moment_ms(1_795_775_525_000);
        assert_eq!(summer.text, "27 November 2026, 11:32:05 pm NZDT");
        assert_eq!(summer.iso, "2026-11-27T10:32:05Z");
        // 2026-07-01 00:00 UTC is noon on 1 July in NZ standard time (UTC+12).
        assert_eq!(moment(1_782_864_000).text, "1 July 2026, 12:00 pm NZST");
        // Late on a UTC day is the next day in New Zealand.
        assert_eq!(date_of(1_795_789_800), "28 November 2026");
    }

    #[test]
    fn the_hour_daylight_saving_begins_is_counted_once() {
        // Daylight saving began at 2 am NZST on 27 September 2026 (14:00 UTC on the 26th):
        // one second before is 1:59:59 am NZST, the instant itself is 3:00 am NZDT.
        assert_eq!(moment_ms(1_790_431_199_000).text, "27 September 2026, 1:59:59 am NZST");
        assert_eq!(moment_ms(1_790_431_200_000).text, "27 September 2026, 3:00:00 am NZDT");
    }

    #[test]
    fn dates_are_written_as_new_zealanders_write_them() {
        assert_eq!(calendar_date("1991-07-30"), "30 July 1991");
        assert_eq!(calendar_date("2026-01-05"), "5 January 2026");
        assert_eq!(calendar_date("not a date"), "not a date");
    }
}
