//! The district's figures for a scope (district, community or grid) and period:
//!
//! - response rate: acknowledged within the response limit, among complaints
//!   acknowledged or already past that limit;
//! - on-time resolution rate: resolved within the resolution limit, among
//!   complaints resolved or already past that limit;
//! - satisfaction rate: 4-5 of 5 among complaints with a follow-up visit;
//! - reopen rate: reopened at least once, among complaints resolved at least once;
//! - follow-up rate: the follow-up visit (回访) made within its limit, among
//!   complaints whose visit was made or is already past its limit;
//! - the open backlog now, by age.
//!
//! Rejected and merged complaints count as submitted but not in the rates: they
//! were never the scope's to resolve. Duplicates are folded by default: a
//! complaint merged into another (the same street lamp reported again) is
//! counted in `submitted`, as a report taken in, and in `merged`, but its
//! case is its original's, so `cases` (submitted less merged) and every rate
//! count it once.
//!
//! [`Figures::compute`] states the rules over complaints in memory;
//! [`PERIOD_SQL`] and the backlog's SQL (one per way of storing instants) state the same rules as one aggregate
//! query each, so a district's years of complaints are counted by the
//! database rather than loaded. A test runs both over the same complaints on
//! each backend and requires the same figures.

use chrono::{DateTime, Duration, Utc};

use super::complaint::Complaint;
use super::kinds::{Status, StatusExt};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub submitted: u32,
    pub responded_on_time: u32,
    pub response_counted: u32,
    pub resolved_on_time: u32,
    pub resolution_counted: u32,
    pub satisfied: u32,
    pub followed_up: u32,
    pub reopened: u32,
    pub resolved: u32,
    pub followed_up_on_time: u32,
    pub follow_up_counted: u32,
    /// Submitted in the period and merged into another complaint since.
    pub merged: u32,
    pub backlog: Backlog,
}

/// Open complaints by age since submission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub under_1_day: u32,
    pub from_1_to_3_days: u32,
    pub from_3_to_7_days: u32,
    pub over_7_days: u32,
}

/// The period's counts, `submitted` to `resolved`, over the complaints
/// submitted in [`$1`, `$2`) as of `$3` (instants as the backend stores them:
/// it only compares them), in the
/// order of the fields of [`Figures`]; the scope's condition (`AND …`) is
/// appended. The same rules as [`Figures::compute`].
pub const PERIOD_SQL: &str = "SELECT COUNT(*) AS submitted, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND accepted_at IS NOT NULL \
        AND accepted_at <= response_due_at THEN 1 ELSE 0 END), 0) AS responded_on_time, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') \
        AND (accepted_at IS NOT NULL OR response_due_at <= $3) THEN 1 ELSE 0 END), 0) AS response_counted, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND resolved_at IS NOT NULL \
        AND resolved_at <= resolution_due_at THEN 1 ELSE 0 END), 0) AS resolved_on_time, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') \
        AND (resolved_at IS NOT NULL OR resolution_due_at <= $3) THEN 1 ELSE 0 END), 0) AS resolution_counted, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND satisfaction >= 4 \
        THEN 1 ELSE 0 END), 0) AS satisfied, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND satisfaction IS NOT NULL \
        THEN 1 ELSE 0 END), 0) AS followed_up, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND reopen_count > 0 \
        THEN 1 ELSE 0 END), 0) AS reopened, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') \
        AND (resolved_at IS NOT NULL OR reopen_count > 0) THEN 1 ELSE 0 END), 0) AS resolved, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND follow_up_due_at IS NOT NULL \
        AND COALESCE(closed_at, CASE WHEN resolved_at IS NULL AND reopen_count > 0 \
        THEN cycle_started_at END) <= follow_up_due_at THEN 1 ELSE 0 END), 0) AS followed_up_on_time, \
    COALESCE(SUM(CASE WHEN status NOT IN ('rejected', 'merged') AND follow_up_due_at IS NOT NULL \
        AND (closed_at IS NOT NULL OR (resolved_at IS NULL AND reopen_count > 0) \
        OR follow_up_due_at <= $3) THEN 1 ELSE 0 END), 0) AS follow_up_counted, \
    COALESCE(SUM(CASE WHEN status = 'merged' THEN 1 ELSE 0 END), 0) AS merged \
    FROM complaints WHERE submitted_at >= $1 AND submitted_at < $2";

/// The open backlog by age as of `$1`, where instants are epoch milliseconds
/// (SQLite): the scope's condition (`AND …`) is appended. The same buckets
/// as [`Figures::compute`].
pub const BACKLOG_MILLIS_SQL: &str = "SELECT \
    COALESCE(SUM(CASE WHEN $1 - submitted_at < 86400000 THEN 1 ELSE 0 END), 0) AS under_1_day, \
    COALESCE(SUM(CASE WHEN $1 - submitted_at >= 86400000 AND $1 - submitted_at < 259200000 \
        THEN 1 ELSE 0 END), 0) AS from_1_to_3_days, \
    COALESCE(SUM(CASE WHEN $1 - submitted_at >= 259200000 AND $1 - submitted_at < 604800000 \
        THEN 1 ELSE 0 END), 0) AS from_3_to_7_days, \
    COALESCE(SUM(CASE WHEN $1 - submitted_at >= 604800000 THEN 1 ELSE 0 END), 0) AS over_7_days \
    FROM complaints WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened')";

/// [`BACKLOG_MILLIS_SQL`] where instants are `timestamptz` (PostgreSQL).
pub const BACKLOG_TIMESTAMPTZ_SQL: &str = "SELECT \
    COUNT(*) FILTER (WHERE $1 - submitted_at < INTERVAL '1 day') AS under_1_day, \
    COUNT(*) FILTER (WHERE $1 - submitted_at >= INTERVAL '1 day' \
        AND $1 - submitted_at < INTERVAL '3 days') AS from_1_to_3_days, \
    COUNT(*) FILTER (WHERE $1 - submitted_at >= INTERVAL '3 days' \
        AND $1 - submitted_at < INTERVAL '7 days') AS from_3_to_7_days, \
    COUNT(*) FILTER (WHERE $1 - submitted_at >= INTERVAL '7 days') AS over_7_days \
    FROM complaints WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened')";

impl Figures {
    /// `submitted_in_period`: the scope's complaints submitted in the period;
    /// `open_now`: the scope's open complaints, whenever submitted.
    pub fn compute(
        submitted_in_period: &[Complaint],
        open_now: &[Complaint],
        now: DateTime<Utc>,
    ) -> Self {
        let mut figures = Figures {
            submitted: count(submitted_in_period.len()),
            ..Figures::default()
        };
        for complaint in submitted_in_period {
            figures.merged += u32::from(complaint.status == Status::Merged);
            if matches!(complaint.status, Status::Rejected | Status::Merged) {
                continue;
            }
            if complaint.accepted_at.is_some() || now >= complaint.response_due_at {
                figures.response_counted += 1;
                figures.responded_on_time += u32::from(complaint.accepted_on_time());
            }
            if complaint.resolved_at.is_some() || now >= complaint.resolution_due_at {
                figures.resolution_counted += 1;
                figures.resolved_on_time += u32::from(complaint.resolved_on_time());
            }
            if let Some(satisfaction) = complaint.satisfaction {
                figures.followed_up += 1;
                figures.satisfied += u32::from(satisfaction.is_satisfied());
            }
            if let Some(due) = complaint.follow_up_due_at {
                let made = complaint.followed_up_at();
                if made.is_some() || now >= due {
                    figures.follow_up_counted += 1;
                    figures.followed_up_on_time += u32::from(made.is_some_and(|at| at <= due));
                }
            }
            if complaint.resolved_at.is_some() || complaint.reopen_count > 0 {
                figures.resolved += 1;
                figures.reopened += u32::from(complaint.reopen_count > 0);
            }
        }
        for complaint in open_now.iter().filter(|c| c.status.is_open()) {
            let age = now - complaint.submitted_at;
            let bucket = if age < Duration::days(1) {
                &mut figures.backlog.under_1_day
            } else if age < Duration::days(3) {
                &mut figures.backlog.from_1_to_3_days
            } else if age < Duration::days(7) {
                &mut figures.backlog.from_3_to_7_days
            } else {
                &mut figures.backlog.over_7_days
            };
            *bucket += 1;
        }
        figures
    }

    /// The cases the period's reports make, merged duplicates folded into
    /// their originals.
    pub fn cases(&self) -> u32 {
        self.submitted - self.merged
    }

    pub fn response_rate(&self) -> Option<f64> {
        rate(self.responded_on_time, self.response_counted)
    }

    pub fn on_time_resolution_rate(&self) -> Option<f64> {
        rate(self.resolved_on_time, self.resolution_counted)
    }

    pub fn satisfaction_rate(&self) -> Option<f64> {
        rate(self.satisfied, self.followed_up)
    }

    pub fn reopen_rate(&self) -> Option<f64> {
        rate(self.reopened, self.resolved)
    }

    pub fn follow_up_rate(&self) -> Option<f64> {
        rate(self.followed_up_on_time, self.follow_up_counted)
    }
}

/// `None` when nothing was counted: no data is not a rate of zero.
fn rate(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::classification::Classification;
    use crate::domain::complaint::{Intake, Satisfaction};
    use crate::domain::kinds::{Category, Channel, Priority};
    use crate::domain::organisation::Chain;
    use crate::domain::reporter::Reporter;
    use crate::domain::time_limits::TimeLimits;
    use crate::domain::{CommunityId, ComplaintId, GridId};

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
    }

    fn complaint(id: &str, at: DateTime<Utc>) -> Complaint {
        let chain = Chain {
            community_id: CommunityId::from_stored("c"),
            grid_id: GridId::from_stored("g"),
            worker: "w".into(),
            branch_handler: "b".into(),
            committee_handler: "cc".into(),
            district_handler: "d".into(),
        };
        let intake = Intake {
            text: "路灯坏了".into(),
            channel: Channel::MiniProgram,
            classification: Classification::by_caller(Category::MunicipalFacilities),
            priority: Priority::Normal,
            reporter: Reporter::default(),
            building_id: None,
            location: None,
            point: None,
            merchant_id: None,
            merchant_check: None,
            elder_id: None,
        };
        let id = ComplaintId::from_stored(id);
        Complaint::submit(id, intake, &chain, &TimeLimits::default(), at).0
    }

    #[test]
    fn rates_count_only_complaints_whose_outcome_is_known() {
        let limits = TimeLimits::default();
        let now = start() + Duration::days(10);
        // Accepted in an hour, resolved in a day, followed up with 5: all on time.
        let mut quick = complaint("quick", start());
        quick.accept(None, start() + Duration::hours(1)).unwrap();
        quick
            .resolve(
                "ok".into(),
                false,
                Duration::days(3),
                start() + Duration::days(1),
            )
            .unwrap();
        quick
            .follow_up(
                Satisfaction::parse("s", 5).unwrap(),
                false,
                None,
                &limits,
                start() + Duration::days(2),
            )
            .unwrap();
        // Accepted late, resolved late, reopened with 1 of 5.
        let mut slow = complaint("slow", start());
        slow.accept(None, start() + Duration::days(2)).unwrap();
        slow.resolve(
            "ok".into(),
            false,
            Duration::days(3),
            start() + Duration::days(4),
        )
        .unwrap();
        slow.follow_up(
            Satisfaction::parse("s", 1).unwrap(),
            false,
            None,
            &limits,
            start() + Duration::days(5),
        )
        .unwrap();
        // Submitted just now: neither limit has passed, so it counts in no rate.
        let fresh = complaint("fresh", now - Duration::hours(1));
        // Rejected: submitted but outside the rates.
        let mut rejected = complaint("rejected", start());
        rejected.reject("不属于社区职责".into()).unwrap();

        let all = [quick, slow.clone(), fresh.clone(), rejected];
        let figures = Figures::compute(&all, &[slow, fresh], now);

        assert_eq!(figures.submitted, 4);
        assert_eq!(
            (figures.responded_on_time, figures.response_counted),
            (1, 2)
        );
        assert_eq!(
            (figures.resolved_on_time, figures.resolution_counted),
            (1, 2)
        );
        assert_eq!((figures.satisfied, figures.followed_up), (1, 2));
        assert_eq!((figures.reopened, figures.resolved), (1, 2));
        assert_eq!(figures.response_rate(), Some(0.5));
        assert_eq!(figures.backlog.under_1_day, 1);
        // The backlog goes by age since submission, not since reopening.
        assert_eq!(figures.backlog.over_7_days, 1);
    }

    #[test]
    fn a_complaint_past_its_limit_without_answer_counts_against_the_rate() {
        let late = complaint("late", start());
        let figures = Figures::compute(
            std::slice::from_ref(&late),
            std::slice::from_ref(&late),
            start() + Duration::days(8),
        );
        assert_eq!(
            (figures.responded_on_time, figures.response_counted),
            (0, 1)
        );
        assert_eq!(figures.response_rate(), Some(0.0));
        assert_eq!(figures.backlog.over_7_days, 1);
    }

    #[test]
    fn no_data_is_no_rate() {
        let figures = Figures::compute(&[], &[], start());
        assert_eq!(figures.satisfaction_rate(), None);
    }
}
