//! The district's figures of the current month on `/metrics`, for dashboards
//! and alerts: `shequ_district_figure{figure}`, recomputed every [`EVERY`]
//! by the same query GetFigures runs (so a dashboard shows what a district
//! report would). The month is the district's (Asia/Shanghai); a rate is
//! absent while nothing was counted for it.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use shequ_chassis::metrics::Metrics;
use shequ_proto::time::{DISTRICT, district_today};
use tokio_util::sync::CancellationToken;

use crate::domain::figures::Figures;
use crate::store::{Complaints, Scope, Store};

/// Keeps the gauges, recomputed `every`, until `stop`.
pub(crate) async fn keep(store: Store, metrics: Metrics, every: Duration, stop: CancellationToken) {
    loop {
        let now = store.now();
        match store
            .figures(&Scope::District, month_start(now), now, now)
            .await
        {
            Ok(figures) => publish(&metrics, &figures),
            Err(error) => tracing::debug!(%error, "district figures not recomputed for /metrics"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The first instant of the district's month holding `now`.
fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = district_today(now);
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .and_then(|first| first.and_hms_opt(0, 0, 0))
        .and_then(|midnight| midnight.and_local_timezone(DISTRICT).single())
        .map_or(now, |start| start.with_timezone(&Utc))
}

/// The figures as gauges, by the names the dashboards use.
fn publish(metrics: &Metrics, figures: &Figures) {
    let backlog = figures.backlog;
    let rates = [
        ("response_rate", figures.response_rate()),
        ("on_time_resolution_rate", figures.on_time_resolution_rate()),
        ("satisfaction_rate", figures.satisfaction_rate()),
        ("reopen_rate", figures.reopen_rate()),
    ];
    let counts = [
        ("submitted", figures.submitted),
        ("cases", figures.cases()),
        ("open_under_1_day", backlog.under_1_day),
        ("open_1_to_3_days", backlog.from_1_to_3_days),
        ("open_3_to_7_days", backlog.from_3_to_7_days),
        ("open_over_7_days", backlog.over_7_days),
    ];
    for (figure, rate) in rates {
        metrics.set_figure(figure, rate);
    }
    for (figure, count) in counts {
        metrics.set_figure(figure, Some(f64::from(count)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_starts_at_midnight_in_the_district() {
        // 2026-11-30 17:00 UTC is 1 December 01:00 in Zhengzhou.
        let now = "2026-11-30T17:00:00Z"
            .parse::<DateTime<Utc>>()
            .unwrap_or_default();
        assert_eq!(month_start(now).to_rfc3339(), "2026-11-30T16:00:00+00:00");
        let mid = "2026-12-15T09:30:00Z"
            .parse::<DateTime<Utc>>()
            .unwrap_or_default();
        assert_eq!(month_start(mid).to_rfc3339(), "2026-11-30T16:00:00+00:00");
    }

    #[test]
    fn a_rate_with_nothing_counted_is_absent_not_zero() {
        let metrics = Metrics::new("complaints");
        let figures = Figures {
            submitted: 3,
            merged: 1,
            response_counted: 2,
            responded_on_time: 1,
            ..Figures::default()
        };
        publish(&metrics, &figures);
        let text = metrics.render();
        let figure = |name: &str| {
            format!("shequ_district_figure{{service=\"complaints\",figure=\"{name}\"}}")
        };
        assert!(
            text.contains(&format!("{} 0.5\n", figure("response_rate"))),
            "{text}"
        );
        assert!(text.contains(&format!("{} 2\n", figure("cases"))), "{text}");
        assert!(!text.contains(&figure("satisfaction_rate")), "{text}");
    }
}
