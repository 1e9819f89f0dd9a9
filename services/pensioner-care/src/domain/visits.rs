//! Visits: their kind, the wellbeing found and the needs noted, and the visit
//! policy — how often an elder must be visited for their risk level, and which
//! periods have passed without a visit (one overdue event each).
//!
//! The policy is configuration: [`VisitPolicy::default`] is the district's
//! (high weekly, medium fortnightly, low monthly; a visit within 24 hours
//! when one is requested after a major event; a home visit recorded more than
//! 500 m from the elder's home is flagged), and a JSON file replaces it (the
//! last two may be left out):
//!
//! ```json
//! { "high_days": 7, "medium_days": 14, "low_days": 30,
//!   "request_hours": 24, "far_from_home_metres": 500 }
//! ```
//!
//! Visit evidence: a home visit may say where it was recorded; only its
//! distance from the elder's home is kept ([`distance_from_home`]), and one
//! beyond the policy's threshold is flagged ([`VisitPolicy::is_far_from_home`]).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use shequ_chassis::geo::{Location, Point, distance_metres};
pub use shequ_proto::kinds::care::{VisitKind, Wellbeing};

use super::fields;
use super::filing::FilingStatus;
use super::risk::RiskLevel;
use super::{ComplaintId, ElderId, FieldError, VisitId, VolunteerId};

/// What a finding sets off.
pub trait WellbeingExt {
    /// Concern and urgent file a complaint, so the finding is handled and
    /// tracked to its end like any resident's request.
    fn files_complaint(self) -> bool;
    /// Urgent only: an alert goes out at once rather than waiting for the
    /// complaint to be routed.
    fn raises_alert(self) -> bool;
}

impl WellbeingExt for Wellbeing {
    fn files_complaint(self) -> bool {
        matches!(self, Wellbeing::Concern | Wellbeing::Urgent)
    }

    fn raises_alert(self) -> bool {
        self == Wellbeing::Urgent
    }
}

/// A visit notes at most this many needs; more belong in the notes.
const MAX_NEEDS: usize = 10;

/// Each need trimmed, 1..=200 characters (blank ones refused rather than
/// dropped, since the caller may have meant something), at most 10; errors name
/// `{field}[i]`, or `field` when there are too many.
pub fn parse_needs(field: &str, needs: &[String]) -> Result<Vec<String>, FieldError> {
    if needs.len() > MAX_NEEDS {
        return Err(FieldError::new(
            field,
            format!("must list at most {MAX_NEEDS} needs, got {}", needs.len()),
        ));
    }
    needs
        .iter()
        .enumerate()
        .map(|(i, need)| fields::required(&format!("{field}[{i}]"), need, fields::SHORT_TEXT))
        .collect()
}

/// Days between required visits, per risk level; the hours a requested
/// visit is given; how far from home a home visit may be recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitPolicy {
    pub high_days: u32,
    pub medium_days: u32,
    pub low_days: u32,
    /// A visit requested after a major event is due within this many hours.
    #[serde(default = "default_request_hours")]
    pub request_hours: u32,
    /// A home visit recorded further than this from the elder's home is
    /// flagged.
    #[serde(default = "default_far_from_home_metres")]
    pub far_from_home_metres: u32,
}

fn default_request_hours() -> u32 {
    24
}

fn default_far_from_home_metres() -> u32 {
    500
}

impl Default for VisitPolicy {
    fn default() -> Self {
        Self {
            high_days: 7,
            medium_days: 14,
            low_days: 30,
            request_hours: default_request_hours(),
            far_from_home_metres: default_far_from_home_metres(),
        }
    }
}

impl VisitPolicy {
    /// Reads the JSON form; every interval must be given and positive, and a
    /// higher risk may not be visited less often than a lower one.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let policy: Self = serde_json::from_str(json).map_err(|error| error.to_string())?;
        if policy.high_days == 0 || policy.medium_days == 0 || policy.low_days == 0 {
            return Err("visit intervals must be positive".into());
        }
        if !(1..=24 * 30).contains(&policy.request_hours) {
            return Err("request_hours must be 1 to 720".into());
        }
        if policy.far_from_home_metres == 0 {
            return Err("far_from_home_metres must be positive".into());
        }
        if policy.high_days > policy.medium_days || policy.medium_days > policy.low_days {
            return Err("visit intervals must not shrink as risk falls \
                 (high_days <= medium_days <= low_days)"
                .into());
        }
        Ok(policy)
    }

    pub fn interval_days(&self, level: RiskLevel) -> u32 {
        match level {
            RiskLevel::High => self.high_days,
            RiskLevel::Medium => self.medium_days,
            RiskLevel::Low => self.low_days,
        }
    }

    pub fn interval(&self, level: RiskLevel) -> Duration {
        Duration::days(self.interval_days(level).into())
    }

    /// How long a requested visit may take.
    pub fn request_window(&self) -> Duration {
        Duration::hours(self.request_hours.into())
    }

    /// Whether a visit of `kind` recorded `distance` metres from home is
    /// flagged: a home visit beyond the threshold; a phone call never is.
    pub fn is_far_from_home(&self, kind: VisitKind, distance: Option<f64>) -> bool {
        kind == VisitKind::HomeVisit
            && distance.is_some_and(|metres| metres > f64::from(self.far_from_home_metres))
    }
}

/// How far from the elder's `home` a visit was recorded (`recorded_at`, in
/// WGS-84), in whole metres; `None` when either is unknown.
pub fn distance_from_home(recorded_at: Option<Point>, home: Option<Location>) -> Option<f64> {
    let (at, home) = (recorded_at?, home?);
    Some(distance_metres(at, home.to_wgs84()).round())
}

/// The most missed periods reported at once: a year of weekly visits. An elder
/// forgotten longer than that needs one look, not hundreds of events.
pub const MAX_MISSED_PERIODS: u32 = 52;

/// The periods missed since `anchor` (the last visit, or registration when
/// none) as of `now`, as `(k, due_at)`: period k (1-based) is missed when
/// `now >= anchor + k·interval`, and `due_at` is that instant. At most
/// [`MAX_MISSED_PERIODS`], the oldest ones; empty when none. A zero or negative
/// interval would make every instant a new period, so it yields none — the
/// policy refuses such intervals, and this guards against a misuse rather than
/// raising endless events.
pub fn missed_periods(
    anchor: DateTime<Utc>,
    interval: Duration,
    now: DateTime<Utc>,
) -> Vec<(u32, DateTime<Utc>)> {
    if interval <= Duration::zero() {
        return Vec::new();
    }
    let mut missed = Vec::new();
    for k in 1..=MAX_MISSED_PERIODS {
        // Beyond the representable range nothing can be due yet.
        let Some(due_at) = period_due(anchor, interval, k) else {
            break;
        };
        if now < due_at {
            break;
        }
        missed.push((k, due_at));
    }
    missed
}

/// When the first period not yet missed as of `now` falls due: the instant
/// from which [`missed_periods`] reports one more, so a sweeper that raised the
/// periods missed by `now` need not look at the elder again before it. `None`
/// when no further period will be reported for this anchor: the
/// [`MAX_MISSED_PERIODS`] are missed already, the interval is not positive, or
/// the instant is beyond the representable range.
pub fn next_period_due(
    anchor: DateTime<Utc>,
    interval: Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if interval <= Duration::zero() {
        return None;
    }
    let missed = u32::try_from(missed_periods(anchor, interval, now).len()).ok()?;
    if missed >= MAX_MISSED_PERIODS {
        return None;
    }
    period_due(anchor, interval, missed + 1)
}

/// When period `k` (1-based) since `anchor` is due: `anchor + k·interval`, if
/// representable.
fn period_due(anchor: DateTime<Utc>, interval: Duration, k: u32) -> Option<DateTime<Utc>> {
    i32::try_from(k)
        .ok()
        .and_then(|factor| interval.checked_mul(factor))
        .and_then(|offset| anchor.checked_add_signed(offset))
}

/// When the next visit is due: one interval after `anchor` (the last visit, or
/// registration when none). Saturates at the latest representable instant
/// rather than panicking on an absurd interval.
pub fn next_due(anchor: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    anchor
        .checked_add_signed(interval)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Who visited or called: a registered volunteer, or the staff member who
/// records the visit. Either way an id, never a person's name, since it is
/// published (`visit.recorded`, `alert.raised`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitor {
    /// A volunteer's id; the store refuses one that names no volunteer.
    Volunteer(VolunteerId),
    /// The staff member recording the visit: the actor (an account id).
    Staff(String),
}

impl Visitor {
    /// The request's `visitor` (errors naming `field`): a volunteer's id, or
    /// when empty the staff member `actor` who records the visit.
    pub fn parse(field: &str, visitor: &str, actor: &str) -> Result<Self, FieldError> {
        match VolunteerId::parse_optional(field, visitor)? {
            Some(volunteer) => Ok(Self::Volunteer(volunteer)),
            None => Ok(Self::Staff(actor.to_owned())),
        }
    }

    /// The id stored and published.
    pub fn id(&self) -> &str {
        match self {
            Self::Volunteer(id) => id.as_str(),
            Self::Staff(actor) => actor,
        }
    }

    /// The refusal of a volunteer id that names no volunteer, naming `field`.
    pub fn unknown(field: &str, volunteer: &VolunteerId) -> FieldError {
        FieldError::new(
            field,
            format!(
                "must be a registered volunteer's id (or empty for the staff member \
                 recording the visit): no volunteer {volunteer}"
            ),
        )
    }
}

/// A new visit, parsed.
#[derive(Debug, Clone)]
pub struct NewVisit {
    pub elder_id: ElderId,
    pub visitor: Visitor,
    /// Who records it: the caller, an account id.
    pub actor: String,
    pub kind: VisitKind,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: Wellbeing,
    pub needs: Vec<String>,
    pub notes: Option<String>,
    /// Where it was recorded (WGS-84), if the visitor's device said; only
    /// the distance from home is kept.
    pub recorded_at: Option<Point>,
}

/// A visit as recorded, with what became of its complaint filing.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub id: VisitId,
    pub elder_id: ElderId,
    pub visitor: String,
    pub kind: VisitKind,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: Wellbeing,
    pub needs: Vec<String>,
    pub notes: Option<String>,
    /// `None` when the visit files nothing.
    pub filing: Option<FilingStatus>,
    pub complaint_id: Option<ComplaintId>,
    pub filing_error: Option<String>,
    /// How far from the elder's home it was recorded, when known.
    pub distance_from_home_metres: Option<f64>,
    /// A home visit recorded beyond the policy's threshold.
    pub far_from_home: bool,
}

/// Whether a visit at `visited_at` moves the elder's anchor, the last visit
/// being `last_visit_at`: only one after it does — a visit recorded late
/// does not move the anchor back.
pub fn moves_anchor(last_visit_at: Option<DateTime<Utc>>, visited_at: DateTime<Utc>) -> bool {
    last_visit_at.is_none_or(|last| visited_at > last)
}

/// Whether an elder is overdue for a visit at `now`: they consent to visits
/// and their next visit was due by `now`. The one statement of "overdue":
/// the lists ask the database for it in [`OVERDUE_SQLITE`] and
/// [`OVERDUE_POSTGRES`] (tests hold each against this), the API says it of
/// each elder through [`super::elder::Elder::is_overdue`].
pub fn is_overdue(
    consents_to_visits: bool,
    next_visit_due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    consents_to_visits && next_visit_due_at <= now
}

/// [`is_overdue`] over `elders e` on SQLite (flags 0/1, instants in epoch
/// milliseconds), `now` bound to `:now`.
pub const OVERDUE_SQLITE: &str = "(e.consents_to_visits = 1 AND e.next_visit_due_at <= :now)";

/// [`is_overdue`] over `elders e` on PostgreSQL (`boolean`, `timestamptz`),
/// `now` bound to `$1`.
pub const OVERDUE_POSTGRES: &str = "(e.consents_to_visits AND e.next_visit_due_at <= $1)";

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn default_intervals_are_weekly_fortnightly_monthly() {
        let policy = VisitPolicy::default();
        assert_eq!(policy.interval_days(RiskLevel::High), 7);
        assert_eq!(policy.interval_days(RiskLevel::Medium), 14);
        assert_eq!(policy.interval_days(RiskLevel::Low), 30);
        assert_eq!(policy.interval(RiskLevel::High), Duration::days(7));
    }

    #[test]
    fn a_home_visit_far_from_home_is_flagged_and_a_phone_call_never() {
        use shequ_chassis::geo::Datum;
        let policy = VisitPolicy::default();
        let home = Location {
            point: Point {
                latitude: 34.80,
                longitude: 113.70,
            },
            datum: Datum::Wgs84,
        };
        // 0.01° of latitude is about 1.1 km.
        let away = Point {
            latitude: 34.81,
            longitude: 113.70,
        };
        let distance = distance_from_home(Some(away), Some(home));
        assert_eq!(distance, Some(1112.0));
        assert!(policy.is_far_from_home(VisitKind::HomeVisit, distance));
        assert!(!policy.is_far_from_home(VisitKind::PhoneCall, distance));
        let near = distance_from_home(Some(home.point), Some(home));
        assert_eq!(near, Some(0.0));
        assert!(!policy.is_far_from_home(VisitKind::HomeVisit, near));
        assert!(
            !policy.is_far_from_home(VisitKind::HomeVisit, Some(500.0)),
            "at the threshold"
        );
        assert!(policy.is_far_from_home(VisitKind::HomeVisit, Some(501.0)));
        assert_eq!(distance_from_home(None, Some(home)), None);
        assert_eq!(distance_from_home(Some(away), None), None);
        assert!(!policy.is_far_from_home(VisitKind::HomeVisit, None));
    }

    #[test]
    fn policy_is_read_from_json() {
        let policy =
            VisitPolicy::from_json(r#"{"high_days": 3, "medium_days": 10, "low_days": 10}"#)
                .unwrap();
        assert_eq!(policy.interval(RiskLevel::Medium), Duration::days(10));
        assert_eq!(policy.request_window(), Duration::hours(24), "by default");
        assert_eq!(policy.far_from_home_metres, 500, "by default");
        let policy = VisitPolicy::from_json(
            r#"{"high_days": 7, "medium_days": 14, "low_days": 30,
                "request_hours": 12, "far_from_home_metres": 300}"#,
        )
        .unwrap();
        assert_eq!(policy.request_window(), Duration::hours(12));
        assert_eq!(policy.far_from_home_metres, 300);
    }

    #[test]
    fn policy_with_zero_missing_unknown_or_inverted_intervals_is_refused() {
        for json in [
            r#"{"high_days": 0, "medium_days": 14, "low_days": 30}"#,
            r#"{"high_days": 7, "medium_days": 14}"#,
            r#"{"high_days": 7, "medium_days": 14, "low_days": 30, "urgent_days": 1}"#,
            r#"{"high_days": 14, "medium_days": 7, "low_days": 30}"#,
            r#"{"high_days": 7, "medium_days": 31, "low_days": 30}"#,
            r#"{"high_days": 7, "medium_days": 14, "low_days": 30, "request_hours": 0}"#,
            r#"{"high_days": 7, "medium_days": 14, "low_days": 30, "far_from_home_metres": 0}"#,
            "not json",
        ] {
            assert!(VisitPolicy::from_json(json).is_err(), "{json}");
        }
    }

    #[test]
    fn no_period_is_missed_before_the_first_due() {
        let anchor = at(1, 8);
        let just_before = anchor + Duration::days(7) - Duration::seconds(1);
        assert!(missed_periods(anchor, Duration::days(7), just_before).is_empty());
    }

    #[test]
    fn exactly_one_period_is_missed_at_the_due_instant() {
        let anchor = at(1, 8);
        assert_eq!(
            missed_periods(anchor, Duration::days(7), at(8, 8)),
            [(1, at(8, 8))]
        );
    }

    #[test]
    fn three_intervals_later_three_periods_are_missed() {
        let anchor = at(1, 8);
        let now = at(22, 9);
        assert_eq!(
            missed_periods(anchor, Duration::days(7), now),
            [(1, at(8, 8)), (2, at(15, 8)), (3, at(22, 8))]
        );
    }

    #[test]
    fn missed_periods_are_capped_at_the_oldest_fifty_two() {
        let anchor = at(1, 8);
        let now = anchor + Duration::days(1000);
        let missed = missed_periods(anchor, Duration::days(1), now);
        assert_eq!(missed.len(), 52);
        assert_eq!(missed[0], (1, anchor + Duration::days(1)));
        assert_eq!(missed[51], (52, anchor + Duration::days(52)));
    }

    #[test]
    fn zero_or_negative_interval_misses_nothing() {
        let anchor = at(1, 8);
        assert!(missed_periods(anchor, Duration::zero(), at(20, 8)).is_empty());
        assert!(missed_periods(anchor, Duration::days(-1), at(20, 8)).is_empty());
    }

    #[test]
    fn anchor_in_the_future_misses_nothing() {
        assert!(missed_periods(at(20, 8), Duration::days(7), at(1, 8)).is_empty());
    }

    #[test]
    fn the_next_period_is_due_one_interval_after_the_last_one_missed() {
        let anchor = at(1, 8);
        let week = Duration::days(7);
        assert_eq!(
            next_period_due(anchor, week, at(2, 8)),
            Some(at(8, 8)),
            "none missed yet: the first due date"
        );
        assert_eq!(
            next_period_due(anchor, week, at(8, 8)),
            Some(at(15, 8)),
            "at the due instant that period is missed"
        );
        assert_eq!(
            next_period_due(anchor, week, at(22, 9)),
            Some(at(29, 8)),
            "three missed: the fourth"
        );
    }

    #[test]
    fn no_period_is_next_past_the_cap_or_without_a_positive_interval() {
        let anchor = at(1, 8);
        let day = Duration::days(1);
        assert_eq!(
            next_period_due(anchor, day, anchor + day * 51),
            Some(anchor + day * 52),
            "the last period under the cap"
        );
        assert_eq!(next_period_due(anchor, day, anchor + day * 52), None);
        assert_eq!(next_period_due(anchor, day, anchor + day * 1000), None);
        assert_eq!(next_period_due(anchor, Duration::zero(), at(20, 8)), None);
        assert_eq!(next_period_due(anchor, -day, at(20, 8)), None);
    }

    #[test]
    fn next_visit_is_due_one_interval_after_the_anchor() {
        assert_eq!(next_due(at(1, 8), Duration::days(14)), at(15, 8));
    }

    #[test]
    fn a_late_visit_does_not_move_the_anchor_back() {
        assert!(moves_anchor(None, at(1, 8)));
        assert!(moves_anchor(Some(at(1, 8)), at(2, 8)));
        assert!(!moves_anchor(Some(at(2, 8)), at(1, 8)));
        assert!(!moves_anchor(Some(at(2, 8)), at(2, 8)));
    }

    #[test]
    fn overdue_is_consenting_and_due_by_now() {
        assert!(is_overdue(true, at(1, 8), at(1, 8)));
        assert!(is_overdue(true, at(1, 8), at(2, 8)));
        assert!(!is_overdue(true, at(2, 8), at(1, 8)));
        assert!(!is_overdue(false, at(1, 8), at(2, 8)));
    }

    #[test]
    fn concern_and_urgent_file_complaints_and_only_urgent_alerts() {
        assert!(!Wellbeing::Good.files_complaint());
        assert!(Wellbeing::Concern.files_complaint());
        assert!(Wellbeing::Urgent.files_complaint());
        assert!(!Wellbeing::Good.raises_alert());
        assert!(!Wellbeing::Concern.raises_alert());
        assert!(Wellbeing::Urgent.raises_alert());
    }

    #[test]
    fn a_visitor_is_a_volunteer_id_or_else_the_staff_member_recording() {
        let volunteer = Visitor::parse("visitor", " v-1 ", "worker-li").unwrap();
        assert_eq!(
            volunteer,
            Visitor::Volunteer(VolunteerId::from_stored("v-1"))
        );
        assert_eq!(volunteer.id(), "v-1");
        let staff = Visitor::parse("visitor", "  ", "worker-li").unwrap();
        assert_eq!(staff, Visitor::Staff("worker-li".into()));
        assert_eq!(staff.id(), "worker-li");
        let long = "v".repeat(65);
        assert_eq!(
            Visitor::parse("visitor", &long, "worker-li")
                .unwrap_err()
                .field,
            "visitor"
        );
        let unknown = Visitor::unknown("visitor", &VolunteerId::from_stored("王建国"));
        assert_eq!(unknown.field, "visitor");
    }

    #[test]
    fn needs_are_trimmed() {
        let needs = vec![" 需要送餐 ".to_owned(), "屋顶漏水".to_owned()];
        assert_eq!(
            parse_needs("needs", &needs).unwrap(),
            ["需要送餐", "屋顶漏水"]
        );
    }

    #[test]
    fn blank_or_overlong_need_is_refused_naming_its_index() {
        let needs = vec!["需要送餐".to_owned(), "  ".to_owned()];
        assert_eq!(parse_needs("needs", &needs).unwrap_err().field, "needs[1]");
        let needs = vec!["需".repeat(201)];
        assert_eq!(parse_needs("needs", &needs).unwrap_err().field, "needs[0]");
    }

    #[test]
    fn more_than_ten_needs_are_refused() {
        let ten = vec!["需要送餐".to_owned(); 10];
        assert_eq!(parse_needs("needs", &ten).unwrap().len(), 10);
        let eleven = vec!["需要送餐".to_owned(); 11];
        assert_eq!(parse_needs("needs", &eleven).unwrap_err().field, "needs");
    }
}
