//! The elder (老人) in the care registry: their personal details that rules
//! depend on — birth date (so age), gender, living situation and emergency
//! contacts, parsed once so the rest of the service only ever holds valid
//! ones — and the elder as registered, with their risk and visit schedule:
//! registration, a change of details and a visit move it by the rules here
//! (a visit recorded late does not move the anchor back).

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
pub use shequ_chassis::personal::Phone;
use shequ_proto::named_enum;
pub use shequ_proto::time::district_today;

use super::fields;
use super::risk::{Assessment, RiskFactors, assess};
use super::visits::{self, VisitPolicy, missed_periods, next_due, next_period_due};
use super::{BuildingId, ElderId, FieldError, GridId, VolunteerId};

named_enum!(
    /// As registered; shown on the elder's card.
    Gender in shequ_proto::care::v1::Gender {
        Female = "female" / "女",
        Male = "male" / "男",
    }
);

named_enum!(
    /// Who the elder lives with; living alone or in an empty nest is what the
    /// pairing programme is for, and it weighs in the risk level.
    LivingSituation in shequ_proto::care::v1::LivingSituation {
        Alone = "alone" / "独居",
        EmptyNest = "empty_nest" / "空巢",
        WithFamily = "with_family" / "与家人同住",
    }
);

/// The earliest birth date accepted: anything before is a typing mistake.
const EARLIEST_BIRTH: (i32, u32, u32) = (1900, 1, 1);

/// Longest relation ("女儿", "邻居", "社区网格员") kept for a contact.
const RELATION: usize = 64;

/// An elder may name this many emergency contacts; more are not called anyway.
const MAX_CONTACTS: usize = 5;

/// A birth date that is not in the future and not absurdly far in the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    /// "YYYY-MM-DD" exactly (so "1950-3-7" is refused rather than guessed);
    /// not after `today`, not before 1900-01-01; errors name `field`.
    pub fn parse(field: &str, value: &str, today: NaiveDate) -> Result<Self, FieldError> {
        let value = value.trim();
        let shaped = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .filter(|_| shaped)
            .ok_or_else(|| FieldError::new(field, "must be a date YYYY-MM-DD, e.g. 1945-03-07"))?;
        let (year, month, day) = EARLIEST_BIRTH;
        if NaiveDate::from_ymd_opt(year, month, day).is_some_and(|earliest| date < earliest) {
            return Err(FieldError::new(field, "must not be before 1900-01-01"));
        }
        if date > today {
            return Err(FieldError::new(field, "must not be in the future"));
        }
        Ok(Self(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// Whole years on `day`, the birthday counting on the day itself; 0 for a day
    /// before the birth. Someone born on 29 February turns a year older on
    /// 1 March in common years (they have not yet reached 29 February on the
    /// 28th), as the civil reckoning of age does.
    pub fn age_on(self, day: NaiveDate) -> u32 {
        let birth = self.0;
        let mut years = day.year() - birth.year();
        if (day.month(), day.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }
}

/// Someone to call when the elder cannot be reached or a visit finds trouble.
#[derive(Clone, PartialEq, Eq)]
pub struct EmergencyContact {
    pub name: String,
    pub phone: Phone,
    pub relation: String,
}

impl EmergencyContact {
    /// Name 1..=200 characters, a phone as [`Phone::parse`] takes it, relation
    /// 1..=64 characters; errors name `{field}.name`, `{field}.phone`,
    /// `{field}.relation`.
    pub fn parse(field: &str, name: &str, phone: &str, relation: &str) -> Result<Self, FieldError> {
        Ok(Self {
            name: fields::required(&format!("{field}.name"), name, fields::SHORT_TEXT)?,
            phone: Phone::parse(&format!("{field}.phone"), phone)?,
            relation: fields::required(&format!("{field}.relation"), relation, RELATION)?,
        })
    }
}

/// Masks the name and phone, so a stray `{:?}` in a log cannot leak them; the
/// relation is not personal on its own and helps when debugging.
impl fmt::Debug for EmergencyContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmergencyContact")
            .field("name", &"***")
            .field("phone", &self.phone)
            .field("relation", &self.relation)
            .finish()
    }
}

/// Each `(name, phone, relation)` as [`EmergencyContact::parse`] takes it, at
/// most five; errors name `{field}[i].name` etc., or `field` when there are too
/// many.
pub fn parse_contacts(
    field: &str,
    contacts: &[(String, String, String)],
) -> Result<Vec<EmergencyContact>, FieldError> {
    if contacts.len() > MAX_CONTACTS {
        return Err(FieldError::new(
            field,
            format!(
                "must list at most {MAX_CONTACTS} contacts, got {}",
                contacts.len()
            ),
        ));
    }
    contacts
        .iter()
        .enumerate()
        .map(|(i, (name, phone, relation))| {
            EmergencyContact::parse(&format!("{field}[{i}]"), name, phone, relation)
        })
        .collect()
}

/// An instant as people in the district read it: `2026-11-15 10:54 (UTC+8)`.
pub fn district_time_text(at: DateTime<Utc>) -> String {
    shequ_proto::time::district_time(at)
        .format("%Y-%m-%d %H:%M (UTC+8)")
        .to_string()
}

pub use shequ_chassis::geo::Location;

/// What staff record about an elder. Personal data throughout.
#[derive(Debug, Clone, PartialEq)]
pub struct ElderDetails {
    pub name: String,
    pub birth_date: BirthDate,
    pub gender: Gender,
    pub grid_id: GridId,
    pub building_id: Option<BuildingId>,
    pub address: Option<String>,
    pub location: Option<Location>,
    pub living: LivingSituation,
    pub has_disability: bool,
    pub has_chronic_illness: bool,
    pub health_notes: Option<String>,
    pub disability_notes: Option<String>,
    pub contacts: Vec<EmergencyContact>,
    pub consents_to_visits: bool,
}

impl ElderDetails {
    /// The risk the details make as of `now`, and the visit interval (days)
    /// `policy` sets for it.
    pub fn assess(&self, policy: &VisitPolicy, now: DateTime<Utc>) -> (Assessment, u32) {
        let assessment = assess(&RiskFactors {
            age: self.birth_date.age_on(district_today(now)),
            living: self.living,
            disability: self.has_disability,
            chronic_illness: self.has_chronic_illness,
        });
        let days = policy.interval_days(assessment.level);
        (assessment, days)
    }
}

/// An elder as registered: details, risk, and the visit schedule. The
/// schedule counts from the anchor (the last visit, or registration).
#[derive(Debug, Clone, PartialEq)]
pub struct Elder {
    pub id: ElderId,
    pub details: ElderDetails,
    pub assessment: Assessment,
    pub visit_interval_days: u32,
    pub last_visit_at: Option<DateTime<Utc>>,
    pub visit_anchor_at: DateTime<Utc>,
    pub next_visit_due_at: DateTime<Utc>,
    pub volunteer_id: Option<VolunteerId>,
    pub registered_at: DateTime<Utc>,
}

impl Elder {
    /// A newly registered elder: assessed, with the first visit due one
    /// interval after registration.
    pub fn register(
        id: ElderId,
        details: ElderDetails,
        policy: &VisitPolicy,
        now: DateTime<Utc>,
    ) -> Self {
        let (assessment, days) = details.assess(policy, now);
        Self {
            id,
            visit_interval_days: days,
            last_visit_at: None,
            visit_anchor_at: now,
            next_visit_due_at: next_due(now, Duration::days(days.into())),
            volunteer_id: None,
            registered_at: now,
            assessment,
            details,
        }
    }

    /// Replaces the details: the risk and the interval follow them, and the
    /// next visit falls due one (new) interval after the same anchor.
    pub fn change_details(
        &mut self,
        details: ElderDetails,
        policy: &VisitPolicy,
        now: DateTime<Utc>,
    ) {
        let (assessment, days) = details.assess(policy, now);
        self.details = details;
        self.assessment = assessment;
        self.visit_interval_days = days;
        self.next_visit_due_at = next_due(self.visit_anchor_at, self.interval());
    }

    /// A visit at `visited_at`: it becomes the anchor, and the next visit is
    /// due one interval after it — unless it is not after the last visit: a
    /// visit recorded late does not move the anchor back. Whether it moved.
    pub fn visited(&mut self, visited_at: DateTime<Utc>) -> bool {
        if !visits::moves_anchor(self.last_visit_at, visited_at) {
            return false;
        }
        self.last_visit_at = Some(visited_at);
        self.visit_anchor_at = visited_at;
        self.next_visit_due_at = next_due(visited_at, self.interval());
        true
    }

    pub fn interval(&self) -> Duration {
        Duration::days(self.visit_interval_days.into())
    }

    /// Whether the elder is overdue for a visit at `now` ([`visits::is_overdue`]).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        visits::is_overdue(self.details.consents_to_visits, self.next_visit_due_at, now)
    }

    /// The periods missed since the anchor as of `now` ([`missed_periods`]).
    pub fn missed_periods(&self, now: DateTime<Utc>) -> Vec<(u32, DateTime<Utc>)> {
        missed_periods(self.visit_anchor_at, self.interval(), now)
    }

    /// When the next overdue notice falls due after those missed by `now`
    /// ([`next_period_due`]).
    pub fn next_notice_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next_period_due(self.visit_anchor_at, self.interval(), now)
    }

    pub fn age_on(&self, day: NaiveDate) -> u32 {
        self.details.birth_date.age_on(day)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn district_time_is_utc_plus_eight() {
        let at = Utc.with_ymd_and_hms(2026, 11, 15, 2, 54, 0).unwrap();
        assert_eq!(super::district_time_text(at), "2026-11-15 10:54 (UTC+8)");
    }

    use super::*;

    #[test]
    fn genders_and_living_situations_are_the_proto_values_by_name() {
        assert_eq!(shequ_proto::codes::check_mapping::<Gender>(), Ok(()));
        assert_eq!(
            shequ_proto::codes::check_mapping::<LivingSituation>(),
            Ok(())
        );
    }

    fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn today() -> NaiveDate {
        day(2025, 6, 15)
    }

    #[test]
    fn birth_date_is_read_as_year_month_day() {
        let birth = BirthDate::parse("birth_date", " 1944-03-07 ", today()).unwrap();
        assert_eq!(birth.date(), day(1944, 3, 7));
    }

    #[test]
    fn malformed_birth_dates_are_refused_naming_the_field() {
        for value in ["", "1944-3-7", "07/03/1944", "1944-02-30", "19440307"] {
            let error = BirthDate::parse("birth_date", value, today()).unwrap_err();
            assert_eq!(error.field, "birth_date", "{value}");
        }
    }

    #[test]
    fn birth_date_in_the_future_is_refused() {
        assert!(BirthDate::parse("birth_date", "2025-06-16", today()).is_err());
        assert!(BirthDate::parse("birth_date", "2025-06-15", today()).is_ok());
    }

    #[test]
    fn birth_date_before_1900_is_refused() {
        assert!(BirthDate::parse("birth_date", "1899-12-31", today()).is_err());
        assert!(BirthDate::parse("birth_date", "1900-01-01", today()).is_ok());
    }

    #[test]
    fn age_counts_the_birthday_on_the_day() {
        let birth = BirthDate::parse("birth_date", "1945-06-15", today()).unwrap();
        assert_eq!(birth.age_on(day(2025, 6, 14)), 79);
        assert_eq!(birth.age_on(day(2025, 6, 15)), 80);
    }

    #[test]
    fn leap_day_birthday_turns_a_year_older_on_the_first_of_march() {
        let birth = BirthDate::parse("birth_date", "1944-02-29", today()).unwrap();
        assert_eq!(birth.age_on(day(2025, 2, 28)), 80);
        assert_eq!(birth.age_on(day(2025, 3, 1)), 81);
        assert_eq!(birth.age_on(day(2024, 2, 29)), 80);
    }

    #[test]
    fn age_before_the_birth_is_zero() {
        let birth = BirthDate::parse("birth_date", "2000-01-01", today()).unwrap();
        assert_eq!(birth.age_on(day(1999, 1, 1)), 0);
    }

    #[test]
    fn contact_errors_name_the_part_that_failed() {
        let error = EmergencyContact::parse("contact", "", "13812345678", "女儿").unwrap_err();
        assert_eq!(error.field, "contact.name");
        let error = EmergencyContact::parse("contact", "李梅", "abc", "女儿").unwrap_err();
        assert_eq!(error.field, "contact.phone");
        let error = EmergencyContact::parse("contact", "李梅", "13812345678", " ").unwrap_err();
        assert_eq!(error.field, "contact.relation");
        let long = "亲".repeat(65);
        let error = EmergencyContact::parse("contact", "李梅", "13812345678", &long).unwrap_err();
        assert_eq!(error.field, "contact.relation");
    }

    #[test]
    fn contact_debug_output_never_shows_name_or_phone() {
        let contact = EmergencyContact::parse("contact", "李梅", "13812345678", "女儿").unwrap();
        let shown = format!("{contact:?}");
        assert!(
            !shown.contains("李梅") && !shown.contains("13812345678"),
            "{shown}"
        );
        assert!(shown.contains("138****5678"), "{shown}");
    }

    fn contact(name: &str) -> (String, String, String) {
        (name.into(), "13812345678".into(), "邻居".into())
    }

    #[test]
    fn contacts_errors_name_the_index() {
        let contacts = vec![contact("李梅"), contact("")];
        let error = parse_contacts("emergency_contacts", &contacts).unwrap_err();
        assert_eq!(error.field, "emergency_contacts[1].name");
    }

    #[test]
    fn five_contacts_are_kept_and_a_sixth_is_refused() {
        let five: Vec<_> = (0..5).map(|i| contact(&format!("联系人{i}"))).collect();
        assert_eq!(
            parse_contacts("emergency_contacts", &five).unwrap().len(),
            5
        );
        let six: Vec<_> = (0..6).map(|i| contact(&format!("联系人{i}"))).collect();
        let error = parse_contacts("emergency_contacts", &six).unwrap_err();
        assert_eq!(error.field, "emergency_contacts");
    }

    #[test]
    fn district_today_turns_at_utc_four_in_the_afternoon() {
        let before = Utc.with_ymd_and_hms(2025, 6, 14, 15, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2025, 6, 14, 16, 0, 0).unwrap();
        assert_eq!(district_today(before), day(2025, 6, 14));
        assert_eq!(district_today(after), day(2025, 6, 15));
    }

    fn registered(now: DateTime<Utc>) -> Elder {
        let details = ElderDetails {
            name: "王秀英".into(),
            birth_date: BirthDate::parse("birth_date", "1941-05-03", today()).unwrap(),
            gender: Gender::Female,
            grid_id: GridId::from_stored("g-1"),
            building_id: None,
            address: None,
            location: None,
            living: LivingSituation::Alone,
            has_disability: false,
            has_chronic_illness: false,
            health_notes: None,
            disability_notes: None,
            contacts: Vec::new(),
            consents_to_visits: true,
        };
        Elder::register(
            ElderId::from_stored("e-1"),
            details,
            &VisitPolicy::default(),
            now,
        )
    }

    #[test]
    fn a_visit_moves_the_schedule_and_a_late_one_does_not_move_it_back() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 2, 0, 0).unwrap();
        let mut elder = registered(now);
        assert_eq!(elder.visit_interval_days, 7, "80+ and alone: weekly");
        assert_eq!(elder.next_visit_due_at, now + Duration::days(7));
        assert!(elder.visited(now + Duration::days(3)));
        assert_eq!(elder.next_visit_due_at, now + Duration::days(10));
        assert!(!elder.visited(now + Duration::days(1)), "recorded late");
        assert_eq!(elder.visit_anchor_at, now + Duration::days(3));
        assert!(!elder.is_overdue(now + Duration::days(9)));
        assert!(elder.is_overdue(now + Duration::days(10)));
        elder.details.consents_to_visits = false;
        assert!(!elder.is_overdue(now + Duration::days(20)));
    }

    #[test]
    fn code_names_round_trip() {
        for living in LivingSituation::ALL {
            assert_eq!(LivingSituation::parse(living.as_str()), Some(*living));
        }
        for gender in Gender::ALL {
            assert_eq!(Gender::parse(gender.as_str()), Some(*gender));
        }
    }
}
