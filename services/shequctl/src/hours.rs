//! Opening hours as operators write them and read them back: days, then a span
//! in district time (UTC+8), like a shop sign.
//!
//! - days: `mon` … `sun` (or the full English names), a range `mon-fri` (one
//!   that wraps, `fri-mon`, runs through the weekend), `daily`, or several of
//!   these separated by commas: `mon-wed,fri`;
//! - the span: `HH:MM-HH:MM`; a closing time before the opening time runs past
//!   midnight (`fri 18:00-02:00`), and all day is `00:00-24:00`.
//!
//! The service checks the hours again; this only turns `--hours` into the
//! message, refusing early what it could never take.

use shequ_proto::alliance::v1::{OpeningHours, Weekday};
use shequ_proto::time::{clock_time_text as time_text, parse_clock_time};

/// Monday first, as the proto numbers them.
const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// Short names, in `WEEK` order.
const SHORT: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Full names, in `WEEK` order.
const FULL: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const EXAMPLE: &str = "like \"mon-fri 08:00-20:00\"";

/// `mon-fri 08:00-20:00` as an [`OpeningHours`] message: the days once each,
/// Monday first; the times as `HH:MM` (`8:00` is taken for `08:00`).
pub(crate) fn parse(text: &str) -> Result<OpeningHours, String> {
    let text = text.trim();
    let Some(split) = text.find(|c: char| c.is_ascii_digit()) else {
        return Err(format!("expected days then a time span, {EXAMPLE}"));
    };
    let (days, span) = text.split_at(split);
    let days = parse_days(days)?;
    let (opens, closes) = span
        .split_once('-')
        .ok_or_else(|| format!("expected a time span HH:MM-HH:MM after the days, {EXAMPLE}"))?;
    let opens = parse_time(opens)
        .filter(|minutes| *minutes < 24 * 60)
        .ok_or_else(|| format!("opening time {:?}: expected 00:00 to 23:59", opens.trim()))?;
    let closes = parse_time(closes)
        .filter(|minutes| *minutes > 0)
        .ok_or_else(|| format!("closing time {:?}: expected 00:01 to 24:00", closes.trim()))?;
    if opens == closes {
        return Err("opens and closes at the same time: all day is 00:00-24:00".to_owned());
    }
    Ok(OpeningHours {
        days: days.into_iter().map(i32::from).collect(),
        opens: time_text(opens),
        closes: time_text(closes),
    })
}

/// The hours as [`parse`] reads them: `mon-fri 08:00-20:00`, `daily 00:00-24:00`,
/// `mon,wed 09:00-12:00`.
pub(crate) fn text(hours: &OpeningHours) -> String {
    format!(
        "{} {}-{}",
        days_text(&hours.days),
        hours.opens,
        hours.closes
    )
}

/// Every span, `; ` between them; `-` when there are none.
pub(crate) fn texts(hours: &[OpeningHours]) -> String {
    if hours.is_empty() {
        return "-".to_owned();
    }
    hours.iter().map(text).collect::<Vec<_>>().join("; ")
}

/// `mon-fri`, `sat,sun`… as the days they name, Monday first, each once.
fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    let text: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    if text.is_empty() {
        return Err(format!("expected the days before the time span, {EXAMPLE}"));
    }
    let mut open = [false; 7];
    for item in text.split(',') {
        if item == "daily" {
            open = [true; 7];
            continue;
        }
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day_index(first)?, day_index(last)?);
                // A range that wraps (fri-mon) runs through the weekend.
                let length = (last + 7 - first) % 7 + 1;
                for offset in 0..length {
                    open[(first + offset) % 7] = true;
                }
            }
            None => open[day_index(item)?] = true,
        }
    }
    Ok(WEEK
        .iter()
        .zip(open)
        .filter_map(|(day, open)| open.then_some(*day))
        .collect())
}

/// The position of a day in the week, Monday 0.
fn day_index(name: &str) -> Result<usize, String> {
    SHORT
        .iter()
        .position(|short| *short == name)
        .or_else(|| FULL.iter().position(|full| *full == name))
        .ok_or_else(|| {
            format!(
                "unknown day {name:?}: expected {}, a range like mon-fri, or daily",
                SHORT.join(", ")
            )
        })
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, as minutes after midnight: the
/// services' clock time (`HH:MM`), with a leading zero the operator may leave out.
fn parse_time(text: &str) -> Option<u16> {
    let text = text.trim();
    match text.split_once(':') {
        Some((hour, _)) if hour.len() == 1 => parse_clock_time(&format!("0{text}")),
        _ => parse_clock_time(text),
    }
}

/// Days compressed into runs: `daily`, `mon-fri`, `sat-sun`, `mon,wed-fri`.
fn days_text(days: &[i32]) -> String {
    let mut open = [false; 7];
    let mut unknown = Vec::new();
    for day in days {
        match WEEK.iter().position(|known| i32::from(*known) == *day) {
            Some(index) => open[index] = true,
            None => unknown.push(format!("unknown({day})")),
        }
    }
    if open == [true; 7] && unknown.is_empty() {
        return "daily".to_owned();
    }
    let mut parts = Vec::new();
    let mut index = 0;
    while index < 7 {
        if !open[index] {
            index += 1;
            continue;
        }
        let first = index;
        while index + 1 < 7 && open[index + 1] {
            index += 1;
        }
        parts.push(if first == index {
            SHORT[first].to_owned()
        } else {
            format!("{}-{}", SHORT[first], SHORT[index])
        });
        index += 1;
    }
    parts.extend(unknown);
    if parts.is_empty() {
        return "no days".to_owned();
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::{Friday, Monday, Saturday, Sunday, Thursday, Tuesday, Wednesday};

    fn hours(days: &[Weekday], opens: &str, closes: &str) -> OpeningHours {
        OpeningHours {
            days: days.iter().copied().map(i32::from).collect(),
            opens: opens.into(),
            closes: closes.into(),
        }
    }

    #[test]
    fn a_day_range_and_a_span() {
        assert_eq!(
            parse("mon-fri 08:00-20:00"),
            Ok(hours(
                &[Monday, Tuesday, Wednesday, Thursday, Friday],
                "08:00",
                "20:00"
            ))
        );
        assert_eq!(
            parse("sat-sun 09:30-21:00"),
            Ok(hours(&[Saturday, Sunday], "09:30", "21:00"))
        );
    }

    #[test]
    fn daily_is_every_day() {
        assert_eq!(
            parse("daily 00:00-24:00"),
            Ok(hours(&WEEK, "00:00", "24:00"))
        );
    }

    #[test]
    fn single_days_lists_and_full_names_in_any_case() {
        assert_eq!(
            parse("tue 10:00-14:00"),
            Ok(hours(&[Tuesday], "10:00", "14:00"))
        );
        assert_eq!(
            parse("Sun,WED, friday 10:00-14:00"),
            Ok(hours(&[Wednesday, Friday, Sunday], "10:00", "14:00"))
        );
        assert_eq!(
            parse("mon-wed,fri 07:00-09:00"),
            Ok(hours(
                &[Monday, Tuesday, Wednesday, Friday],
                "07:00",
                "09:00"
            ))
        );
    }

    #[test]
    fn days_named_twice_are_kept_once_monday_first() {
        assert_eq!(
            parse("sun,mon-tue,mon 10:00-14:00"),
            Ok(hours(&[Monday, Tuesday, Sunday], "10:00", "14:00"))
        );
    }

    #[test]
    fn a_range_that_wraps_runs_through_the_weekend() {
        assert_eq!(
            parse("fri-mon 18:00-23:00"),
            Ok(hours(&[Monday, Friday, Saturday, Sunday], "18:00", "23:00"))
        );
    }

    #[test]
    fn a_span_may_run_past_midnight_and_short_hours_are_padded() {
        assert_eq!(
            parse("fri 18:00-02:00"),
            Ok(hours(&[Friday], "18:00", "02:00"))
        );
        assert_eq!(
            parse("  mon  8:00 - 9:30 "),
            Ok(hours(&[Monday], "08:00", "09:30"))
        );
    }

    #[test]
    fn malformed_hours_are_refused_saying_why() {
        let error = |text: &str| parse(text).err().unwrap_or_default();
        assert!(error("08:00-20:00").contains("expected the days"));
        assert!(error("mon-fri").contains("expected days then a time span"));
        assert!(error("mon-fry 08:00-20:00").contains("unknown day \"fry\""));
        assert!(error("weekdays 08:00-20:00").contains("unknown day"));
        assert!(error("mon 08:00").contains("HH:MM-HH:MM"));
        assert!(error("mon 8-20").contains("opening time"));
        assert!(error("mon 08:00-20:0").contains("closing time"));
        assert!(error("mon 24:00-20:00").contains("opening time"));
        assert!(error("mon 08:00-00:00").contains("closing time"));
        assert!(error("mon 08:00-24:30").contains("closing time"));
        assert!(error("mon 08:60-20:00").contains("opening time"));
        assert!(error("mon 08:00-08:00").contains("all day is 00:00-24:00"));
        assert!(error("mon,,tue 08:00-20:00").contains("unknown day \"\""));
    }

    #[test]
    fn hours_read_back_the_way_they_are_written() {
        for text in [
            "mon-fri 08:00-20:00",
            "sat-sun 09:00-21:00",
            "daily 00:00-24:00",
            "mon,wed-fri 07:00-09:00",
            "fri 18:00-02:00",
        ] {
            assert_eq!(parse(text).map(|h| super::text(&h)), Ok(text.to_owned()));
        }
    }

    #[test]
    fn unknown_days_from_a_newer_server_are_shown_as_numbers() {
        let odd = OpeningHours {
            days: vec![1, 9],
            opens: "08:00".into(),
            closes: "09:00".into(),
        };
        assert_eq!(text(&odd), "mon,unknown(9) 08:00-09:00");
        assert_eq!(texts(&[]), "-");
        assert_eq!(
            texts(&[
                hours(&[Monday], "08:00", "09:00"),
                hours(&[Sunday], "10:00", "11:00")
            ]),
            "mon 08:00-09:00; sun 10:00-11:00"
        );
    }
}
