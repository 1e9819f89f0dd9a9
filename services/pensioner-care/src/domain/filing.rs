//! Complaints filed from visits that found a concern or an urgent need.
//!
//! The visit is saved first, with its filing pending; a worker then files the
//! complaint in the complaints service and retries with a growing delay while
//! that service is down. Every attempt carries the same idempotency key, so a
//! retry after a lost reply does not file the complaint twice.

use chrono::Duration;
use shequ_chassis::backoff::Backoff;
use shequ_chassis::trace::TraceContext;
use shequ_proto::named_enum;

use super::fields;
use super::visits::{NewVisit, VisitKind, Wellbeing, WellbeingExt};
use super::{ElderId, GridId, VisitId};

named_enum!(
    /// Where a visit's complaint filing stands.
    FilingStatus in shequ_proto::care::v1::FilingStatus {
        Pending = "pending" / "待提交",
        Filed = "filed" / "已提交",
        Failed = "failed" / "提交失败",
    }
);

/// A complaint to file from a visit, as the visit stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFiling {
    pub visit_id: VisitId,
    pub elder_id: ElderId,
    pub grid_id: GridId,
    pub text: String,
    pub urgent: bool,
}

/// The complaint visit `visit_id` of elder `elder_id` (in grid `grid_id`)
/// files: a visit that found a concern (or an urgent need) files one, in
/// the complaints service on the elder's grid; a good one files none.
pub fn for_visit(
    visit_id: &VisitId,
    elder_id: &ElderId,
    grid_id: &GridId,
    visit: &NewVisit,
) -> Option<NewFiling> {
    visit.wellbeing.files_complaint().then(|| NewFiling {
        visit_id: visit_id.clone(),
        elder_id: elder_id.clone(),
        grid_id: grid_id.clone(),
        text: complaint_text(visit.wellbeing, visit.kind, &visit.needs),
        urgent: visit.wellbeing.raises_alert(),
    })
}

/// A complaint waiting to be filed from a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    pub visit_id: VisitId,
    pub elder_id: ElderId,
    pub grid_id: GridId,
    pub text: String,
    pub urgent: bool,
    /// Attempts made so far.
    pub attempts: u32,
    /// The trace of the request that recorded the visit, if it had one.
    pub trace: Option<TraceContext>,
}

/// The idempotency key of the complaint filed from a visit: the same on every
/// retry, so the complaint appears once.
pub fn request_id(visit_id: &VisitId) -> String {
    format!("care-visit-{visit_id}")
}

/// The complaint text: what the visit found, without the elder's name or
/// address (the complaint carries the location; personal details stay here),
/// e.g. "助老走访发现需求(紧急): 需要送餐; 屋顶漏水" for a home visit, and
/// "助老电话问候发现需求(需关注): …" for a phone call. At most 2000 characters:
/// longer text is cut and ends with "…".
pub fn complaint_text(wellbeing: Wellbeing, kind: VisitKind, needs: &[String]) -> String {
    let how = match kind {
        VisitKind::HomeVisit => "走访",
        VisitKind::PhoneCall => "电话问候",
    };
    let found = if needs.is_empty() {
        "未列明具体需求, 请联系走访人员".to_owned()
    } else {
        needs.join("; ")
    };
    let text = format!("助老{how}发现需求({}): {found}", wellbeing.label());
    truncate(text, fields::LONG_TEXT)
}

/// `text` cut to at most `max` characters, the last one "…" when cut.
fn truncate(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The retries of a filing: 5 s after the first attempt, doubling, at most 5
/// minutes (the complaint should not wait longer than this once the
/// complaints service is back), jittered so filings that failed together are
/// not retried together.
const RETRIES: Backoff = Backoff::new(
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(5 * 60),
);

/// Delay before attempt `attempts + 1`, `attempts` being the attempts already
/// made: about 5 s after the first, doubling (10 s, 20 s, …), at most 5
/// minutes. Zero attempts is treated as one, so the delay is never zero.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_std(RETRIES.delay(attempts)).unwrap_or(Duration::MAX)
}

/// The longest [`backoff`] may be after `attempts` attempts.
pub fn backoff_at_most(attempts: u32) -> Duration {
    Duration::from_std(RETRIES.at_most(attempts)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filing_statuses_are_the_proto_values_by_name() {
        assert_eq!(shequ_proto::codes::check_mapping::<FilingStatus>(), Ok(()));
    }

    fn visit(wellbeing: Wellbeing) -> NewVisit {
        NewVisit {
            elder_id: ElderId::from_stored("e-1"),
            visitor: crate::domain::visits::Visitor::Volunteer(
                crate::domain::VolunteerId::from_stored("v-1"),
            ),
            actor: "worker-li".into(),
            kind: VisitKind::HomeVisit,
            visited_at: chrono::DateTime::UNIX_EPOCH,
            wellbeing,
            needs: vec!["需要送餐".into()],
            notes: None,
            recorded_at: None,
        }
    }

    #[test]
    fn a_concern_visit_files_a_complaint_and_a_good_one_does_not() {
        let (visit_id, elder_id, grid_id) = (
            VisitId::from_stored("v-9"),
            ElderId::from_stored("e-1"),
            GridId::from_stored("g-1"),
        );
        let filed = |wellbeing| for_visit(&visit_id, &elder_id, &grid_id, &visit(wellbeing));
        let filing = filed(Wellbeing::Concern).unwrap();
        assert_eq!(filing.text, "助老走访发现需求(需关注): 需要送餐");
        assert_eq!((filing.grid_id.as_str(), filing.urgent), ("g-1", false));
        assert!(filed(Wellbeing::Urgent).unwrap().urgent);
        assert_eq!(filed(Wellbeing::Good), None);
    }

    #[test]
    fn request_id_is_the_same_for_every_retry_of_a_visit() {
        let (visit, other) = (VisitId::from_stored("v-42"), VisitId::from_stored("v-43"));
        assert_eq!(request_id(&visit), "care-visit-v-42");
        assert_eq!(request_id(&visit), request_id(&visit));
        assert_ne!(request_id(&visit), request_id(&other));
    }

    #[test]
    fn complaint_text_lists_the_wellbeing_and_needs() {
        let needs = vec!["需要送餐".to_owned(), "屋顶漏水".to_owned()];
        assert_eq!(
            complaint_text(Wellbeing::Urgent, VisitKind::HomeVisit, &needs),
            "助老走访发现需求(紧急): 需要送餐; 屋顶漏水"
        );
    }

    #[test]
    fn complaint_text_says_when_it_came_from_a_phone_call() {
        let needs = vec!["需要助浴".to_owned()];
        assert_eq!(
            complaint_text(Wellbeing::Concern, VisitKind::PhoneCall, &needs),
            "助老电话问候发现需求(需关注): 需要助浴"
        );
    }

    #[test]
    fn complaint_text_without_needs_still_says_something() {
        let text = complaint_text(Wellbeing::Concern, VisitKind::HomeVisit, &[]);
        assert!(text.starts_with("助老走访发现需求(需关注): "), "{text}");
        assert!(text.chars().count() > "助老走访发现需求(需关注): ".chars().count());
    }

    #[test]
    fn long_complaint_text_is_cut_to_two_thousand_characters() {
        let needs = vec!["漏".repeat(200); 20];
        let text = complaint_text(Wellbeing::Urgent, VisitKind::HomeVisit, &needs);
        assert_eq!(text.chars().count(), 2000);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn backoff_starts_at_five_seconds_and_doubles() {
        // Each delay lies in the upper half of its step (jitter).
        for (attempts, step) in [(1, 5), (2, 10), (3, 20), (6, 160)] {
            let delay = backoff(attempts);
            let step = Duration::seconds(step);
            assert!(delay >= step / 2 && delay <= step, "{attempts}: {delay}");
        }
    }

    #[test]
    fn backoff_is_never_zero_and_at_most_five_minutes() {
        assert!(backoff(0) >= Duration::milliseconds(2500));
        assert!(backoff(0) <= Duration::seconds(5));
        for attempts in [7, 100, u32::MAX] {
            let delay = backoff(attempts);
            assert!(delay >= Duration::seconds(150) && delay <= Duration::minutes(5));
        }
    }
}
