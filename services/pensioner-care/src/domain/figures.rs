//! The care figures of a month (探访关爱 as the guideline measures it), pure:
//! what [`figures`] makes of the facts of a scope (its elders, visits,
//! pairings, volunteers and what became of the complaints visits filed).
//!
//! The guideline (民政部等十部门《关于加强特殊困难老年人探访关爱服务的指导意见》,
//! 民发〔2022〕51号, 2022) asks for a monthly visit rate of 100 % by the end of
//! 2025, and visits weekly for high-risk elders, monthly for key ones and
//! quarterly for the rest; the intervals here are the visit policy's. Every
//! figure is computable from the events alone (`elder.registered` /
//! `elder.updated`: grid, risk, interval, consent; `visit.recorded`: elder,
//! visitor, kind, time, wellbeing, far from home, files complaint;
//! `pairing.created` / `pairing.ended`; the complaint events naming the
//! elder): docs/care-figures.md says which event carries what.
//!
//! The month is the district's (Asia/Shanghai). Elders count in the grid,
//! risk, interval and consent they have now (the registry keeps no history
//! of them); visits, pairings and outcomes by their own instants.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use shequ_proto::time::DISTRICT;

use super::filing::FilingStatus;
use super::risk::RiskLevel;
use super::visits::{VisitKind, Wellbeing};
use super::{ComplaintId, ElderId, FieldError, GridId, VolunteerId};

/// A month of the district's calendar, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `YYYY-MM` (errors naming `field`); a month from 2000 to 2100.
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(field, format!("must be a month as YYYY-MM, got {text:?}"));
        let (year, month) = text.trim().split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let (year, month): (i32, u32) = (
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        );
        if !(2000..=2100).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    /// The district's month holding `now`.
    pub fn holding(now: DateTime<Utc>) -> Self {
        let today = now.with_timezone(&DISTRICT).date_naive();
        Self {
            year: today.year(),
            month: today.month(),
        }
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a parsed month")
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month's first instant (midnight in the district).
    pub fn start(self) -> DateTime<Utc> {
        let midnight = self.first_day().and_hms_opt(0, 0, 0).expect("midnight");
        midnight
            .and_local_timezone(DISTRICT)
            .single()
            .expect("a fixed offset has one midnight")
            .with_timezone(&Utc)
    }

    /// The first instant after the month.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// An elder as the figures see one.
#[derive(Debug, Clone, PartialEq)]
pub struct ElderFacts {
    pub id: ElderId,
    pub grid_id: GridId,
    pub risk: RiskLevel,
    pub visit_interval_days: u32,
    pub consents_to_visits: bool,
    pub registered_at: DateTime<Utc>,
}

/// A visit as the figures see one.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitFacts {
    pub elder_id: ElderId,
    /// The volunteer who visited, `None` for staff.
    pub volunteer_id: Option<VolunteerId>,
    pub kind: VisitKind,
    pub visited_at: DateTime<Utc>,
    pub wellbeing: Wellbeing,
    /// A home visit recorded far from the elder's home ([`super::visits`]).
    pub far_from_home: bool,
    /// `None` when the visit files nothing.
    pub filing: Option<FilingStatus>,
    pub complaint_id: Option<ComplaintId>,
}

/// A pairing's span.
#[derive(Debug, Clone, PartialEq)]
pub struct PairingFacts {
    pub volunteer_id: VolunteerId,
    pub elder_id: ElderId,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A volunteer as the figures see one.
#[derive(Debug, Clone, PartialEq)]
pub struct VolunteerFacts {
    pub id: VolunteerId,
    pub grid_id: GridId,
    pub registered_at: DateTime<Utc>,
}

/// What became of a complaint, as a complaint event said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Resolved,
    Closed,
    Reopened,
    Rejected,
}

impl Outcome {
    /// The outcome a timeline entry of `kind` records, if it records one.
    pub fn of_entry(kind: &str) -> Option<Self> {
        match kind {
            "complaint_resolved" => Some(Self::Resolved),
            "complaint_closed" => Some(Self::Closed),
            "complaint_reopened" => Some(Self::Reopened),
            "complaint_rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// One outcome of a complaint, when it was learned.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFacts {
    pub complaint_id: ComplaintId,
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
}

/// The facts of a scope, as the store reads them: elders and volunteers of
/// the scope's grids, their visits and pairings, the outcomes of the
/// complaints their visits filed.
#[derive(Debug, Clone, Default)]
pub struct CareFacts {
    pub elders: Vec<ElderFacts>,
    pub visits: Vec<VisitFacts>,
    pub pairings: Vec<PairingFacts>,
    pub volunteers: Vec<VolunteerFacts>,
    pub outcomes: Vec<OutcomeFacts>,
}

/// Counts per risk level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByRisk {
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

impl ByRisk {
    fn add(&mut self, risk: RiskLevel) {
        match risk {
            RiskLevel::High => self.high += 1,
            RiskLevel::Medium => self.medium += 1,
            RiskLevel::Low => self.low += 1,
        }
    }

    pub fn total(&self) -> u32 {
        self.high + self.medium + self.low
    }
}

/// Elders overdue at the figures' instant, by how long past due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverdueByAge {
    pub under_7_days: u32,
    pub from_7_to_30_days: u32,
    pub over_30_days: u32,
}

/// Where the complaints filed from the month's concern and urgent visits stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplaintsFiled {
    /// Visits whose complaint is filed (has a complaint id).
    pub filed: u32,
    /// Still waiting for the complaints service.
    pub pending: u32,
    /// Refused by the complaints service.
    pub failed: u32,
    /// Of the filed, by their latest outcome: none yet.
    pub open: u32,
    pub resolved: u32,
    pub closed: u32,
    /// Reopened and not resolved again since.
    pub reopened: u32,
    pub rejected: u32,
}

/// The figures of a scope for a month.
#[derive(Debug, Clone, PartialEq)]
pub struct CareFigures {
    pub month: Month,
    /// The instant the "as of" figures (overdue, unpaired, load) are taken
    /// at: the month's end, or now in the current month.
    pub as_of: DateTime<Utc>,
    /// Elders registered by `as_of`, by their risk level now.
    pub elders: ByRisk,
    /// Consenting elders with a visit due in the month: their last visit
    /// before the month (or registration) plus their interval falls before
    /// the month's end.
    pub due: u32,
    /// Of `due`, visited at least once in the month (either kind).
    pub due_visited: u32,
    /// Visits in the month.
    pub visits: u32,
    pub home_visits: u32,
    pub phone_calls: u32,
    /// Of the visits, made within the elder's interval of the one before
    /// (or of registration).
    pub visits_on_time: u32,
    /// Home visits recorded far from the elder's home (phone calls never are).
    pub far_from_home: u32,
    /// Elders overdue at `as_of`.
    pub overdue: OverdueByAge,
    /// Consenting elders without a volunteer at `as_of`, by risk.
    pub unpaired: ByRisk,
    /// Volunteers registered by `as_of`.
    pub volunteers: u32,
    /// Elders with a volunteer at `as_of`.
    pub paired_elders: u32,
    /// Volunteers with two elders (the cap) and with none, at `as_of`.
    pub volunteers_at_cap: u32,
    pub volunteers_without_elders: u32,
    /// Visits in the month by volunteers (not staff).
    pub volunteer_visits: u32,
    pub concern_visits: u32,
    pub urgent_visits: u32,
    pub complaints: ComplaintsFiled,
}

fn rate(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

impl CareFigures {
    /// `due_visited / due`; `None` while nobody was due.
    pub fn monthly_visit_rate(&self) -> Option<f64> {
        rate(self.due_visited, self.due)
    }

    /// `visits_on_time / visits`.
    pub fn on_time_visit_rate(&self) -> Option<f64> {
        rate(self.visits_on_time, self.visits)
    }

    /// `paired_elders / volunteers`.
    pub fn elders_per_volunteer(&self) -> Option<f64> {
        rate(self.paired_elders, self.volunteers)
    }

    /// `volunteer_visits / volunteers`.
    pub fn visits_per_volunteer(&self) -> Option<f64> {
        rate(self.volunteer_visits, self.volunteers)
    }
}

/// The figures of `month` from `facts`, as of `now`.
pub fn figures(facts: &CareFacts, month: Month, now: DateTime<Utc>) -> CareFigures {
    let (start, end) = (month.start(), month.end());
    let as_of = end.min(now);
    // The last instant the "as of" figures include: now, or the month's last
    // millisecond.
    let last = (end - Duration::milliseconds(1)).min(now);
    let mut visit_times: HashMap<&ElderId, Vec<DateTime<Utc>>> = HashMap::new();
    for visit in &facts.visits {
        visit_times
            .entry(&visit.elder_id)
            .or_default()
            .push(visit.visited_at);
    }
    for times in visit_times.values_mut() {
        times.sort_unstable();
    }
    let no_visits = Vec::new();
    // The elder's anchor just before `at`, as the service keeps it: the
    // latest visit before it (one entered from a paper log may be older than
    // the registration), or registration when none.
    let anchor_before = |elder: &ElderFacts, at: DateTime<Utc>| {
        let times = visit_times.get(&elder.id).unwrap_or(&no_visits);
        let before = times.partition_point(|t| *t < at);
        before
            .checked_sub(1)
            .map_or(elder.registered_at, |i| times[i])
    };
    let interval = |elder: &ElderFacts| Duration::days(elder.visit_interval_days.into());
    let elders: HashMap<&ElderId, &ElderFacts> = facts.elders.iter().map(|e| (&e.id, e)).collect();
    let active_at = |p: &PairingFacts, at: DateTime<Utc>| {
        p.started_at <= at && p.ended_at.is_none_or(|ended| ended > at)
    };
    let paired: HashSet<&ElderId> = facts
        .pairings
        .iter()
        .filter(|p| active_at(p, last))
        .map(|p| &p.elder_id)
        .collect();

    let mut out = CareFigures {
        month,
        as_of,
        elders: ByRisk::default(),
        due: 0,
        due_visited: 0,
        visits: 0,
        home_visits: 0,
        phone_calls: 0,
        visits_on_time: 0,
        far_from_home: 0,
        overdue: OverdueByAge::default(),
        unpaired: ByRisk::default(),
        volunteers: 0,
        paired_elders: 0,
        volunteers_at_cap: 0,
        volunteers_without_elders: 0,
        volunteer_visits: 0,
        concern_visits: 0,
        urgent_visits: 0,
        complaints: ComplaintsFiled::default(),
    };

    let in_month = |at: DateTime<Utc>| start <= at && at < end;
    let visited_in_month: HashSet<&ElderId> = facts
        .visits
        .iter()
        .filter(|v| in_month(v.visited_at))
        .map(|v| &v.elder_id)
        .collect();
    for elder in facts.elders.iter().filter(|e| e.registered_at <= last) {
        out.elders.add(elder.risk);
        if !elder.consents_to_visits {
            continue;
        }
        if anchor_before(elder, start) + interval(elder) < end {
            out.due += 1;
            if visited_in_month.contains(&elder.id) {
                out.due_visited += 1;
            }
        }
        // Overdue at `last`: the anchor includes a visit at that instant.
        let next_due = anchor_before(elder, last + Duration::milliseconds(1)) + interval(elder);
        if next_due <= last {
            let late = last - next_due;
            if late < Duration::days(7) {
                out.overdue.under_7_days += 1;
            } else if late < Duration::days(30) {
                out.overdue.from_7_to_30_days += 1;
            } else {
                out.overdue.over_30_days += 1;
            }
        }
        if !paired.contains(&elder.id) {
            out.unpaired.add(elder.risk);
        }
    }

    let mut latest: HashMap<&ComplaintId, &OutcomeFacts> = HashMap::new();
    for outcome in &facts.outcomes {
        let entry = latest.entry(&outcome.complaint_id).or_insert(outcome);
        if outcome.at > entry.at {
            *entry = outcome;
        }
    }
    for visit in facts.visits.iter().filter(|v| in_month(v.visited_at)) {
        let Some(elder) = elders.get(&visit.elder_id) else {
            continue;
        };
        out.visits += 1;
        match visit.kind {
            VisitKind::HomeVisit => out.home_visits += 1,
            VisitKind::PhoneCall => out.phone_calls += 1,
        }
        if anchor_before(elder, visit.visited_at) + interval(elder) >= visit.visited_at {
            out.visits_on_time += 1;
        }
        if visit.far_from_home {
            out.far_from_home += 1;
        }
        if visit.volunteer_id.is_some() {
            out.volunteer_visits += 1;
        }
        match visit.wellbeing {
            Wellbeing::Good => {}
            Wellbeing::Concern => out.concern_visits += 1,
            Wellbeing::Urgent => out.urgent_visits += 1,
        }
        let complaints = &mut out.complaints;
        match (visit.filing, &visit.complaint_id) {
            (_, Some(complaint)) => {
                complaints.filed += 1;
                match latest.get(complaint).map(|o| o.outcome) {
                    None => complaints.open += 1,
                    Some(Outcome::Resolved) => complaints.resolved += 1,
                    Some(Outcome::Closed) => complaints.closed += 1,
                    Some(Outcome::Reopened) => complaints.reopened += 1,
                    Some(Outcome::Rejected) => complaints.rejected += 1,
                }
            }
            (Some(FilingStatus::Failed), None) => complaints.failed += 1,
            (Some(_), None) => complaints.pending += 1,
            (None, None) => {}
        }
    }

    let mut load: HashMap<&VolunteerId, u32> = HashMap::new();
    for pairing in facts.pairings.iter().filter(|p| active_at(p, last)) {
        if elders.contains_key(&pairing.elder_id) {
            out.paired_elders += 1;
        }
        *load.entry(&pairing.volunteer_id).or_default() += 1;
    }
    for volunteer in facts.volunteers.iter().filter(|v| v.registered_at <= last) {
        out.volunteers += 1;
        match load.get(&volunteer.id).copied().unwrap_or(0) {
            0 => out.volunteers_without_elders += 1,
            n if n >= 2 => out.volunteers_at_cap += 1,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// An instant in November 2026, district time.
    fn nov(day: u32, hour: u32) -> DateTime<Utc> {
        DISTRICT
            .with_ymd_and_hms(2026, 11, day, hour, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn oct(day: u32) -> DateTime<Utc> {
        DISTRICT
            .with_ymd_and_hms(2026, 10, day, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    const NOVEMBER: Month = Month {
        year: 2026,
        month: 11,
    };

    fn elder(id: &str, risk: RiskLevel, days: u32, registered_at: DateTime<Utc>) -> ElderFacts {
        ElderFacts {
            id: ElderId::from_stored(id),
            grid_id: GridId::from_stored("g-1"),
            risk,
            visit_interval_days: days,
            consents_to_visits: true,
            registered_at,
        }
    }

    fn visit(elder: &str, at: DateTime<Utc>) -> VisitFacts {
        VisitFacts {
            elder_id: ElderId::from_stored(elder),
            volunteer_id: Some(VolunteerId::from_stored("v-1")),
            kind: VisitKind::HomeVisit,
            visited_at: at,
            wellbeing: Wellbeing::Good,
            far_from_home: false,
            filing: None,
            complaint_id: None,
        }
    }

    #[test]
    fn a_month_is_the_districts() {
        let month = Month::parse("month", " 2026-11 ").unwrap();
        assert_eq!(month, NOVEMBER);
        assert_eq!(month.start().to_rfc3339(), "2026-10-31T16:00:00+00:00");
        assert_eq!(month.end().to_rfc3339(), "2026-11-30T16:00:00+00:00");
        let december = Month::parse("month", "2026-12").unwrap();
        assert_eq!(december.end().to_rfc3339(), "2026-12-31T16:00:00+00:00");
        assert_eq!(december.to_string(), "2026-12");
        assert_eq!(Month::holding(nov(30, 23)), NOVEMBER);
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "", "1999-12", "2026-00",
        ] {
            assert_eq!(
                Month::parse("month", bad).unwrap_err().field,
                "month",
                "{bad}"
            );
        }
    }

    #[test]
    fn an_elder_is_due_when_an_interval_from_the_last_visit_ends_in_the_month() {
        let facts = CareFacts {
            elders: vec![
                // Visited on 25 October, weekly: due 1 November, visited.
                elder("high", RiskLevel::High, 7, oct(1)),
                // Monthly, visited 5 October: due 4 November, not visited.
                elder("low", RiskLevel::Low, 30, oct(1)),
                // Quarterly, visited 20 October: not due until January.
                elder("quarterly", RiskLevel::Low, 90, oct(1)),
                // Registered on 20 November, monthly: first due in December.
                elder("new", RiskLevel::Medium, 30, nov(20, 9)),
            ],
            visits: vec![
                visit("high", oct(25)),
                visit("high", nov(3, 9)),
                visit("low", oct(5)),
                visit("quarterly", oct(20)),
                visit("quarterly", nov(2, 9)),
            ],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12));
        assert_eq!((f.due, f.due_visited), (2, 1));
        assert_eq!(f.monthly_visit_rate(), Some(0.5));
        assert_eq!(
            f.elders,
            ByRisk {
                high: 1,
                medium: 1,
                low: 2
            }
        );
        assert_eq!(f.visits, 2, "only November's");
    }

    #[test]
    fn a_visit_is_on_time_within_the_interval_of_the_one_before() {
        let facts = CareFacts {
            elders: vec![elder("e", RiskLevel::High, 7, oct(1))],
            visits: vec![
                visit("e", oct(28)),
                // 4 days after: on time.
                visit("e", nov(1, 9)),
                // 10 days after: late.
                visit("e", nov(11, 9)),
                // Exactly 7 days after: on time.
                visit("e", nov(18, 9)),
            ],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12));
        assert_eq!((f.visits, f.visits_on_time), (3, 2));
    }

    #[test]
    fn overdue_is_counted_at_the_months_end_by_age() {
        let facts = CareFacts {
            elders: vec![
                // Last visit 28 November, weekly: not overdue on 1 December.
                elder("fresh", RiskLevel::High, 7, oct(1)),
                // Last visit 20 November, weekly: due 27 November, 4 days late.
                elder("days", RiskLevel::High, 7, oct(1)),
                // Last visit 1 November, weekly: due 8 November, 23 days late.
                elder("weeks", RiskLevel::High, 7, oct(1)),
                // Registered 1 October, never visited, weekly: 54 days late.
                elder("long", RiskLevel::High, 7, oct(1)),
                // Not consenting: never overdue, never due.
                ElderFacts {
                    consents_to_visits: false,
                    ..elder("refuses", RiskLevel::High, 7, oct(1))
                },
            ],
            visits: vec![
                visit("fresh", nov(28, 9)),
                visit("days", nov(20, 9)),
                visit("weeks", nov(1, 9)),
            ],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12) + Duration::days(30));
        assert_eq!(f.as_of, NOVEMBER.end(), "a past month is taken at its end");
        assert_eq!(
            f.overdue,
            OverdueByAge {
                under_7_days: 1,
                from_7_to_30_days: 1,
                over_30_days: 1
            }
        );
        assert_eq!(f.due, 4);
        assert_eq!(f.elders.high, 5);
    }

    #[test]
    fn pairings_count_at_the_instant_of_the_figures() {
        let pairing = |volunteer: &str, elder: &str, started, ended| PairingFacts {
            volunteer_id: VolunteerId::from_stored(volunteer),
            elder_id: ElderId::from_stored(elder),
            started_at: started,
            ended_at: ended,
        };
        let volunteer = |id: &str| VolunteerFacts {
            id: VolunteerId::from_stored(id),
            grid_id: GridId::from_stored("g-1"),
            registered_at: oct(1),
        };
        let facts = CareFacts {
            elders: vec![
                elder("a", RiskLevel::High, 7, oct(1)),
                elder("b", RiskLevel::Medium, 14, oct(1)),
                elder("c", RiskLevel::Low, 30, oct(1)),
                elder("d", RiskLevel::High, 7, oct(1)),
            ],
            pairings: vec![
                pairing("v-1", "a", oct(2), None),
                pairing("v-1", "b", oct(2), None),
                pairing("v-2", "c", oct(2), Some(nov(10, 9))),
                // Ended before the month's end: d is unpaired at its end.
                pairing("v-2", "d", oct(2), Some(nov(15, 9))),
            ],
            volunteers: vec![volunteer("v-1"), volunteer("v-2"), volunteer("v-3")],
            visits: vec![visit("a", nov(3, 9)), visit("b", nov(3, 9)), {
                let mut staff = visit("c", nov(4, 9));
                staff.volunteer_id = None;
                staff
            }],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12) + Duration::days(1));
        assert_eq!(f.paired_elders, 2);
        assert_eq!(
            f.unpaired,
            ByRisk {
                high: 1,
                medium: 0,
                low: 1
            }
        );
        assert_eq!(
            (
                f.volunteers,
                f.volunteers_at_cap,
                f.volunteers_without_elders
            ),
            (3, 1, 2)
        );
        assert_eq!(f.volunteer_visits, 2);
        assert_eq!(f.elders_per_volunteer(), Some(2.0 / 3.0));
        assert_eq!(f.visits_per_volunteer(), Some(2.0 / 3.0));
    }

    #[test]
    fn concern_and_urgent_visits_are_followed_to_their_complaints_outcome() {
        let finding = |elder: &str, wellbeing, filing, complaint: Option<&str>| VisitFacts {
            wellbeing,
            filing,
            complaint_id: complaint.map(ComplaintId::from_stored),
            ..visit(elder, nov(5, 9))
        };
        let outcome = |complaint: &str, outcome, at| OutcomeFacts {
            complaint_id: ComplaintId::from_stored(complaint),
            outcome,
            at,
        };
        let filed = Some(FilingStatus::Filed);
        let facts = CareFacts {
            elders: vec![elder("e", RiskLevel::High, 7, oct(1))],
            visits: vec![
                finding("e", Wellbeing::Concern, filed, Some("c-1")),
                finding("e", Wellbeing::Concern, filed, Some("c-2")),
                finding("e", Wellbeing::Urgent, filed, Some("c-3")),
                finding("e", Wellbeing::Urgent, Some(FilingStatus::Pending), None),
                finding("e", Wellbeing::Concern, Some(FilingStatus::Failed), None),
                finding("e", Wellbeing::Urgent, filed, Some("c-4")),
                visit("e", nov(6, 9)),
            ],
            outcomes: vec![
                outcome("c-1", Outcome::Resolved, nov(6, 9)),
                outcome("c-1", Outcome::Closed, nov(8, 9)),
                outcome("c-2", Outcome::Resolved, nov(6, 9)),
                outcome("c-2", Outcome::Reopened, nov(7, 9)),
                outcome("c-3", Outcome::Rejected, nov(6, 9)),
            ],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12));
        assert_eq!((f.concern_visits, f.urgent_visits), (3, 3));
        assert_eq!(
            f.complaints,
            ComplaintsFiled {
                filed: 4,
                pending: 1,
                failed: 1,
                open: 1,
                resolved: 0,
                closed: 1,
                reopened: 1,
                rejected: 1,
            }
        );
    }

    #[test]
    fn far_from_home_and_kinds_are_counted() {
        let mut far = visit("e", nov(2, 9));
        far.far_from_home = true;
        let mut call = visit("e", nov(3, 9));
        call.kind = VisitKind::PhoneCall;
        let facts = CareFacts {
            elders: vec![elder("e", RiskLevel::High, 7, oct(1))],
            visits: vec![far, call, visit("e", nov(4, 9))],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12));
        assert_eq!((f.home_visits, f.phone_calls, f.far_from_home), (2, 1, 1));
    }

    #[test]
    fn an_elder_registered_this_instant_counts_and_one_registered_after_the_month_does_not() {
        let facts = CareFacts {
            elders: vec![
                elder("now", RiskLevel::High, 7, nov(20, 9)),
                elder("december", RiskLevel::High, 7, NOVEMBER.end()),
            ],
            ..CareFacts::default()
        };
        assert_eq!(figures(&facts, NOVEMBER, nov(20, 9)).elders.high, 1);
        let later = NOVEMBER.end() + Duration::days(1);
        assert_eq!(figures(&facts, NOVEMBER, later).elders.high, 1);
    }

    #[test]
    fn a_visit_entered_from_before_the_registration_is_the_anchor() {
        // Registered on 30 November; a call of 14 November entered from the
        // paper log: weekly, due 21 November, overdue at the month's end.
        let facts = CareFacts {
            elders: vec![elder("e", RiskLevel::High, 7, nov(30, 9))],
            visits: vec![visit("e", nov(14, 9))],
            ..CareFacts::default()
        };
        let f = figures(&facts, NOVEMBER, nov(30, 12) + Duration::days(1));
        assert_eq!(f.overdue.from_7_to_30_days, 1);
        assert_eq!(
            (f.due, f.due_visited, f.visits),
            (0, 0, 1),
            "no visit before the month: counted from registration, first due in December"
        );
    }

    #[test]
    fn nothing_counted_has_no_rate() {
        let f = figures(&CareFacts::default(), NOVEMBER, nov(30, 12));
        assert_eq!(f.monthly_visit_rate(), None);
        assert_eq!(f.on_time_visit_rate(), None);
        assert_eq!(f.elders_per_volunteer(), None);
    }
}
