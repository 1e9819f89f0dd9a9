//! Visits requested after a major event (遇重大事件 24 小时内探访, as the
//! ten-ministry guideline asks): "a visit needed within N hours", raised by
//! staff, by a complaint about the elder or by an urgent visit. It is a timer
//! like the others: the elder's next visit made after it was raised meets
//! it; one still open at its due instant is overdue once (escalated to the
//! grid's staff by its event), and a visit after that still meets it.

use chrono::{DateTime, Utc};
pub use shequ_proto::kinds::care::VisitRequestReason;

use super::visits::VisitPolicy;
use super::{ElderId, FieldError, GridId, VisitId, VisitRequestId};

/// The most hours a request may give: a month.
pub const MAX_HOURS: u32 = 24 * 30;

/// The hours a request gives (errors naming `field`): 1 to [`MAX_HOURS`],
/// 0 for the policy's.
pub fn parse_hours(field: &str, hours: u32, policy: &VisitPolicy) -> Result<u32, FieldError> {
    match hours {
        0 => Ok(policy.request_hours),
        1..=MAX_HOURS => Ok(hours),
        _ => Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_HOURS} hours (0 for the policy's), got {hours}"),
        )),
    }
}

/// A request being raised.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVisitRequest {
    pub elder_id: ElderId,
    pub reason: VisitRequestReason,
    /// The complaint or visit it came from; `None` for staff's.
    pub reference: Option<String>,
    pub note: Option<String>,
    pub raised_by: String,
    pub hours: u32,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitRequest {
    pub id: VisitRequestId,
    pub elder_id: ElderId,
    pub grid_id: GridId,
    pub reason: VisitRequestReason,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub met_by: Option<VisitId>,
    pub met_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
}

impl VisitRequest {
    /// The request `new` makes for an elder of `grid_id`, raised at `now`.
    pub fn raise(
        id: VisitRequestId,
        new: NewVisitRequest,
        grid_id: GridId,
        now: DateTime<Utc>,
    ) -> Self {
        let due_at = now
            .checked_add_signed(chrono::Duration::hours(new.hours.into()))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self {
            id,
            elder_id: new.elder_id,
            grid_id,
            reason: new.reason,
            reference: new.reference,
            note: new.note,
            raised_by: new.raised_by,
            raised_at: now,
            due_at,
            met_by: None,
            met_at: None,
            overdue_at: None,
        }
    }

    /// Whether a visit made at `visited_at` meets it: the request is open
    /// and the visit was made after it was raised (a visit recorded late,
    /// made before the event, does not).
    pub fn is_met_by(&self, visited_at: DateTime<Utc>) -> bool {
        self.met_by.is_none() && visited_at >= self.raised_at
    }

    /// Whether it is overdue at `now` and not yet said so: open, not
    /// escalated, and its due instant has come.
    pub fn falls_overdue(&self, now: DateTime<Utc>) -> bool {
        self.met_by.is_none() && self.overdue_at.is_none() && self.due_at <= now
    }
}

/// The key that makes a request raised by an event once per its source,
/// however often the event is delivered: `complaint:<id>`, `visit:<id>`.
pub fn source_key(reason: VisitRequestReason, reference: &str) -> String {
    format!("{}:{reference}", reason.as_str())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 5, hour, 0, 0).unwrap()
    }

    fn request(hours: u32) -> VisitRequest {
        VisitRequest::raise(
            VisitRequestId::from_stored("r-1"),
            NewVisitRequest {
                elder_id: ElderId::from_stored("e-1"),
                reason: VisitRequestReason::Operator,
                reference: None,
                note: Some("暴雨".into()),
                raised_by: "worker-li".into(),
                hours,
            },
            GridId::from_stored("g-1"),
            at(8),
        )
    }

    #[test]
    fn a_request_is_due_its_hours_after_it_was_raised() {
        assert_eq!(request(24).due_at, at(8) + Duration::hours(24));
        assert_eq!(request(2).due_at, at(10));
    }

    #[test]
    fn only_a_visit_after_it_was_raised_meets_an_open_request() {
        let mut open = request(24);
        assert!(open.is_met_by(at(8)));
        assert!(open.is_met_by(at(20)));
        assert!(!open.is_met_by(at(7)), "made before the event");
        open.met_by = Some(VisitId::from_stored("v-1"));
        assert!(!open.is_met_by(at(20)), "met already");
    }

    #[test]
    fn a_request_falls_overdue_once_at_its_due_instant() {
        let mut open = request(2);
        assert!(!open.falls_overdue(at(9)));
        assert!(open.falls_overdue(at(10)));
        open.overdue_at = Some(at(10));
        assert!(!open.falls_overdue(at(11)), "once");
        let mut met = request(2);
        met.met_by = Some(VisitId::from_stored("v-1"));
        assert!(!met.falls_overdue(at(11)));
    }

    #[test]
    fn hours_come_from_the_request_or_the_policy() {
        let policy = VisitPolicy::default();
        assert_eq!(parse_hours("hours", 0, &policy).unwrap(), 24);
        assert_eq!(parse_hours("hours", 6, &policy).unwrap(), 6);
        assert_eq!(
            parse_hours("hours", 721, &policy).unwrap_err().field,
            "hours"
        );
    }

    #[test]
    fn an_events_request_is_keyed_by_its_source() {
        assert_eq!(
            source_key(VisitRequestReason::Complaint, "c-1"),
            "complaint:c-1"
        );
        assert_eq!(
            source_key(VisitRequestReason::UrgentVisit, "v-1"),
            "urgent_visit:v-1"
        );
    }
}
