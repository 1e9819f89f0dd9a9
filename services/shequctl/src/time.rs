//! Time as the district reads it: instants shown in Asia/Shanghai (a fixed
//! UTC+8, no daylight saving), dates on the command line turned into
//! half-open periods of whole district days, moments (`2026-11-02 17:30`)
//! read in district time, and where `events tail --from` starts.

use chrono::{DateTime, Duration, DurationRound, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use prost_types::Timestamp;

use shequ_proto::time::district_time;
pub(crate) use shequ_proto::time::timestamp;

/// How far back `figures` looks by default.
pub(crate) const DEFAULT_FIGURES_DAYS: i64 = 30;

/// A message's timestamp as an instant; `None` when absent or out of range.
pub(crate) fn instant(at: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    shequ_proto::time::instant(at?)
}

/// `2026-11-02 17:00` in the district's time; `-` when absent.
pub(crate) fn local(at: Option<&Timestamp>) -> String {
    instant(at).map_or_else(
        || "-".to_owned(),
        |at| district_time(at).format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `2026-11-02 17:00:03` in the district's time, to the second.
pub(crate) fn local_second(at: DateTime<Utc>) -> String {
    district_time(at).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// RFC 3339 in UTC (`2026-11-02T09:00:00Z`) for JSON; `null` when absent.
pub(crate) fn json(at: Option<&Timestamp>) -> serde_json::Value {
    instant(at).map_or(serde_json::Value::Null, |at| {
        at.to_rfc3339_opts(SecondsFormat::Secs, true).into()
    })
}

/// A `YYYY-MM-DD` date on the command line.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|error| format!("{error}: expected a date like 2026-11-02"))
}

/// A `YYYY-MM-DD HH:MM` moment on the command line, in the district's time.
pub(crate) fn parse_minute(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let local = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or_else(|| "expected a district time (UTC+8) like \"2026-11-02 17:30\"".to_owned())?;
    shequ_proto::time::from_district(local).ok_or_else(|| format!("{text} is not a time in UTC+8"))
}

/// Where a tail of the event streams starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// Every event the streams hold.
    Start,
    /// Only events published after the tail started.
    Now,
    /// Events the streams received at or after this instant.
    At(DateTime<Utc>),
}

impl Since {
    /// `start`, `now`, or the instant in the district's time.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Start => "the start".to_owned(),
            Self::Now => "now".to_owned(),
            Self::At(at) => format!("{} (UTC+8)", local_second(at)),
        }
    }
}

/// `--from`: `start`, `now`, an RFC 3339 instant (`2026-11-02T09:00:00Z`,
/// `2026-11-02T17:00:00+08:00`), a district moment (`2026-11-02 17:00`) or a
/// district day (`2026-11-02`, from its start).
pub(crate) fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    match text {
        "start" => return Ok(Since::Start),
        "now" => return Ok(Since::Now),
        _ => {}
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Since::At(at.with_timezone(&Utc)));
    }
    if let Ok(at) = parse_minute(text) {
        return Ok(Since::At(at));
    }
    if let Ok(day) = parse_date(text) {
        return start_of_day(day).map(Since::At);
    }
    Err(
        "expected start, now, an RFC 3339 time (2026-11-02T09:00:00Z) or a district time \
         (UTC+8) like \"2026-11-02 17:30\" or 2026-11-02"
            .to_owned(),
    )
}

/// This minute, started: a default `now` that a server whose clock runs a
/// little behind ours will not take for the future.
pub(crate) fn this_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::minutes(1)).unwrap_or(now)
}

/// A half-open period [from, to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
}

/// The period from the start of day `from` to the end of day `to` (both in the
/// district's time, `to` included); without `to` up to `now`, without `from`
/// the [`DEFAULT_FIGURES_DAYS`] before the end.
pub(crate) fn period(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Period, String> {
    let end = match to {
        Some(day) => {
            let next = day
                .succ_opt()
                .ok_or_else(|| format!("--to {day} is out of range"))?;
            start_of_day(next)?
        }
        None => now,
    };
    let start = match from {
        Some(day) => start_of_day(day)?,
        None => end - Duration::days(DEFAULT_FIGURES_DAYS),
    };
    if start >= end {
        return Err(format!(
            "the period {} to {} is empty: --from must come before --to (or now)",
            local(Some(&timestamp(start))),
            local(Some(&timestamp(end)))
        ));
    }
    Ok(Period {
        from: start,
        to: end,
    })
}

fn start_of_day(day: NaiveDate) -> Result<DateTime<Utc>, String> {
    shequ_proto::time::district_midnight(day)
        .ok_or_else(|| format!("{day} has no start of day in UTC+8"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn date(text: &str) -> Option<NaiveDate> {
        parse_date(text).ok()
    }

    #[test]
    fn dates_are_whole_district_days_with_the_last_day_included() {
        let period = period(date("2026-11-01"), date("2026-11-30"), utc(2027, 1, 1, 0));
        assert_eq!(
            period,
            Ok(Period {
                from: utc(2026, 10, 31, 16),
                to: utc(2026, 11, 30, 16),
            })
        );
    }

    #[test]
    fn by_default_the_period_is_the_last_30_days_up_to_now() {
        let now = utc(2026, 11, 2, 9);
        assert_eq!(
            period(None, None, now),
            Ok(Period {
                from: utc(2026, 10, 3, 9),
                to: now,
            })
        );
    }

    #[test]
    fn a_from_date_alone_runs_up_to_now() {
        let now = utc(2026, 11, 2, 9);
        let period = period(date("2026-11-02"), None, now);
        assert_eq!(period.map(|p| p.from), Ok(utc(2026, 11, 1, 16)));
    }

    #[test]
    fn an_empty_period_is_refused() {
        assert!(period(date("2026-11-05"), date("2026-11-04"), utc(2027, 1, 1, 0)).is_err());
        assert!(period(date("2026-11-05"), None, utc(2026, 11, 2, 9)).is_err());
    }

    #[test]
    fn malformed_dates_are_refused() {
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("02/11/2026").is_err());
    }

    #[test]
    fn a_moment_on_the_command_line_is_district_time() {
        assert_eq!(parse_minute("2026-11-02 17:00"), Ok(utc(2026, 11, 2, 9)));
        assert_eq!(parse_minute(" 2026-11-03T01:00 "), Ok(utc(2026, 11, 2, 17)));
        assert!(parse_minute("2026-11-02").is_err());
        assert!(parse_minute("2026-11-02 25:00").is_err());
        assert!(parse_minute("17:00").is_err());
    }

    #[test]
    fn now_is_taken_from_the_start_of_the_minute() {
        let now = utc(2026, 11, 2, 9) + Duration::seconds(42) + Duration::milliseconds(5);
        assert_eq!(this_minute(now), utc(2026, 11, 2, 9));
    }

    #[test]
    fn a_tail_starts_at_the_start_now_or_an_instant() {
        assert_eq!(parse_since("start"), Ok(Since::Start));
        assert_eq!(parse_since(" now "), Ok(Since::Now));
        let nine = Ok(Since::At(utc(2026, 11, 2, 9)));
        assert_eq!(parse_since("2026-11-02T09:00:00Z"), nine);
        assert_eq!(parse_since("2026-11-02T17:00:00+08:00"), nine);
        assert_eq!(parse_since("2026-11-02 17:00"), nine);
        assert_eq!(
            parse_since("2026-11-03"),
            Ok(Since::At(utc(2026, 11, 2, 16))),
            "a day starts at midnight in UTC+8"
        );
        for bad in ["", "yesterday", "17:00", "2026-11-02 25:00", "2026-13-01"] {
            assert!(parse_since(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn instants_are_shown_in_utc_plus_8() {
        let at = timestamp(utc(2026, 11, 2, 17));
        assert_eq!(local(Some(&at)), "2026-11-03 01:00");
        assert_eq!(local(None), "-");
        assert_eq!(json(Some(&at)), serde_json::json!("2026-11-02T17:00:00Z"));
        let at = utc(2026, 11, 2, 17) + Duration::seconds(3) + Duration::milliseconds(900);
        assert_eq!(local_second(at), "2026-11-03 01:00:03");
    }
}
