//! The complaints database: complaints, their history, escalations owed and the
//! grid organisation. Every change is one transaction that also writes the
//! change's history entry and its outbox event.
//!
//! [`Complaints`] is what the service asks of its storage, in the domain's
//! terms; it has one implementation per backend, each using its database
//! natively ([`sqlite::SqliteStore`]: rusqlite on the writer thread, instants
//! in milliseconds; [`postgres::PgStore`]: `timestamptz`, `boolean`, `FOR
//! UPDATE`), and [`Store`] is whichever the database URL chose. The rules stay
//! in `domain`: a store loads a complaint, lets the domain change it, and
//! writes it back with what the change recorded ([`record`]).
//!
//! Ids are the domain's types: the methods take them, values bind them as
//! text, and rows read them back with `from_stored` (what was written was
//! parsed when it came in, so reading it is not a second check).

pub mod postgres;
pub mod sqlite;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::SharedClock;
use shequ_chassis::database::{Database, DbError};
use shequ_chassis::geo::{BoundingBox, Location, Point};
pub use shequ_chassis::idempotency::RequestKey;
use shequ_chassis::outbox::{OutboxRow, OutboxSignal};
use shequ_chassis::storage::Due;
use shequ_chassis::trace::TraceContext;

use crate::domain::complaint::{
    Action, Breach, Complaint, Intake, Satisfaction, Transition, TransitionError,
};
use crate::domain::duplicates::{Candidate, DuplicatePolicy, PossibleDuplicate, suggest};
use crate::domain::figures::Figures;
use crate::domain::kinds::{Category, Channel, Level, MerchantCheck, Priority, Status};
use crate::domain::organisation::{Community, Grid, Organisation, RouteError};
use crate::domain::reporter::{Phone, Reporter};
use crate::domain::time_limits::TimeLimits;
use crate::domain::{
    BuildingId, CommunityId, ComplaintId, ElderId, FieldError, GridId, MerchantId,
};
use crate::events;

/// Who answers at the district level before an organisation is loaded.
pub const DEFAULT_DISTRICT_HANDLER: &str = "district";

/// What the complaints store fails with; a refusal of the domain is a
/// [`TransitionError`].
pub type StoreError = shequ_chassis::storage::StoreError<TransitionError>;

impl From<TransitionError> for StoreError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Field(error) => Self::Field(error),
            error => Self::Rule(error),
        }
    }
}

impl From<RouteError> for StoreError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::UnknownGrid(grid) => Self::NotFound(format!("grid {grid}")),
            RouteError::UnknownBuilding(building) => Self::NotFound(format!("building {building}")),
            RouteError::Field(error) => Self::Field(error),
        }
    }
}

/// One line of a complaint's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_status: Status,
    pub to_status: Status,
    pub note: Option<String>,
    /// The follow-up visit's score, on the entry it closed or reopened.
    pub satisfaction: Option<Satisfaction>,
}

/// Filters of the complaint list; all optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub grid_id: Option<GridId>,
    pub community_id: Option<CommunityId>,
    pub category: Option<Category>,
    pub overdue_only: bool,
}

/// Where the list continues: after this complaint (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Epoch milliseconds (every stored instant is whole milliseconds).
    pub submitted_at: i64,
    pub id: ComplaintId,
}

/// Which complaints the figures are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    District,
    Community(CommunityId),
    Grid(GridId),
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::District => "district".into(),
            Scope::Community(id) => format!("community:{id}"),
            Scope::Grid(id) => format!("grid:{id}"),
        }
    }

    /// The scope's condition on complaints (`AND …`), its value bound as
    /// `$n` (by name on SQLite), and that value.
    pub(crate) fn condition(&self, n: usize) -> (String, Option<&str>) {
        match self {
            Scope::District => (String::new(), None),
            Scope::Community(id) => (format!(" AND community_id = ${n}"), Some(id.as_str())),
            Scope::Grid(id) => (format!(" AND grid_id = ${n}"), Some(id.as_str())),
        }
    }
}

/// A transition's change, applied by the domain inside the store's
/// transaction: the complaint as stored, the related one (a merge's target)
/// and the time.
pub trait Change:
    FnOnce(&mut Complaint, Option<&Complaint>, DateTime<Utc>) -> Result<Transition, TransitionError>
    + Send
    + 'static
{
}

impl<F> Change for F where
    F: FnOnce(
            &mut Complaint,
            Option<&Complaint>,
            DateTime<Utc>,
        ) -> Result<Transition, TransitionError>
        + Send
        + 'static
{
}

shequ_chassis::storage_trait! {
    /// What the complaints service asks of its storage.
    pub trait Complaints for Store {
        /// Takes in a complaint, once per `request_id`: a repeated key returns the
        /// complaint it made the first time and `true` (a key first used with a
        /// different request is refused, naming `request_id`). `actor` is who
        /// submitted it (the authenticated caller). The complaint, its history
        /// entry and its outbox event are committed before this returns, in a
        /// transaction shared with the submissions arriving meanwhile (group
        /// commit: one commit for many); a submission that fails fails alone. The
        /// complaint is routed by the organisation as it stands when it arrives,
        /// and names as its possible duplicates the open complaints committed
        /// before it that the store's [`DuplicatePolicy`] matches (one indexed
        /// read, [`DuplicateSearch`]: in the writer's unit on SQLite, so it sees
        /// its batch; before the batch on PostgreSQL).
        fn submit(
            &self,
            request: &RequestKey,
            actor: &str,
            intake: Intake,
            grid_id: Option<&GridId>,
            limits: &TimeLimits,
        ) -> Result<(Complaint, bool), StoreError>;

        /// Applies `change` to complaint `id` (given `related`, for a merge) in one
        /// transaction with its history entry and event. A `request_id` seen
        /// before with the same request returns the complaint as it is and
        /// changes nothing; with a different request (or complaint) it is refused.
        fn transition(
            &self,
            id: &ComplaintId,
            request: Option<&RequestKey>,
            actor: &str,
            related: Option<&ComplaintId>,
            change: impl Change,
        ) -> Result<Complaint, StoreError>;

        /// Escalates complaint `id` for `breach` if that is still owed, once per
        /// breach and resolution cycle whichever sweeper gets there first;
        /// whether it escalated.
        fn escalate(
            &self,
            id: &ComplaintId,
            breach: Breach,
        ) -> Result<bool, StoreError>;

        /// Complaints whose `breach` limit passed by `now` with no escalation
        /// recorded for it in their current cycle, after `after`, at most
        /// `limit`, in (limit passed, id) order.
        fn escalations_owed(
            &self,
            breach: Breach,
            now: DateTime<Utc>,
            after: Option<&Due>,
            limit: usize,
        ) -> Result<Vec<Due>, StoreError>;

        /// A complaint and its history, oldest entry first.
        fn get(
            &self,
            id: &ComplaintId,
        ) -> Result<(Complaint, Vec<HistoryEntry>), StoreError>;

        /// A page of complaints, newest first, and the cursor of the next page.
        fn list(
            &self,
            filter: &ListFilter,
            page_size: u32,
            after: Option<Cursor>,
        ) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError>;

        /// The scope's figures for complaints submitted in [from, to), with the
        /// open backlog as of `now`, counted by the database.
        fn figures(
            &self,
            scope: &Scope,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<Figures, StoreError>;

        /// The scope's complaints submitted in [from, to), and its open ones: the
        /// input of [`Figures::compute`], the rules [`Complaints::figures`]
        /// counts in SQL (tests hold the two against each other).
        fn figures_input(
            &self,
            scope: &Scope,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError>;

        /// Whether a community or grid is known (for the figures' scope).
        fn scope_exists(&self, scope: &Scope) -> Result<bool, StoreError>;

        /// Replaces the whole organisation in one transaction.
        fn load_organisation(
            &self,
            organisation: &Organisation,
        ) -> Result<(), StoreError>;

        fn organisation(&self) -> Result<Organisation, StoreError>;
    }
}

/// The complaints database on whichever backend the URL chose.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// The store on `db`, and its writer of submissions (a task on the
    /// current runtime).
    pub fn new(db: Database, outbox: OutboxSignal, clock: SharedClock) -> Self {
        match db {
            Database::Sqlite(db) => Self::Sqlite(sqlite::SqliteStore::new(db, outbox, clock)),
            Database::Postgres(db) => Self::Postgres(postgres::PgStore::new(db, outbox, clock)),
        }
    }

    /// The store, suggesting possible duplicates by `policy` (by default
    /// [`DuplicatePolicy::default`]).
    pub fn with_duplicate_policy(self, policy: DuplicatePolicy) -> Self {
        match self {
            Self::Sqlite(mut store) => {
                store.duplicates = policy;
                Self::Sqlite(store)
            }
            Self::Postgres(mut store) => {
                store.duplicates = policy;
                Self::Postgres(store)
            }
        }
    }

    /// The time, to the millisecond: every instant the store writes is
    /// whole milliseconds on either backend, so what a caller is answered is
    /// what a later read returns.
    pub fn now(&self) -> DateTime<Utc> {
        let clock = shequ_chassis::on_backend!(Store, self, store => &store.clock);
        whole_millis(clock.now())
    }
}

pub(crate) use shequ_chassis::clock::whole_millis;

/// A history entry to insert with its transition.
#[derive(Debug, Clone)]
pub(crate) struct HistoryRow {
    pub complaint_id: ComplaintId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: &'static str,
    pub from_status: &'static str,
    pub to_status: &'static str,
    pub note: Option<String>,
    /// The follow-up visit's score (1-5), when the entry records one.
    pub satisfaction: Option<u8>,
    pub request: Option<RequestKey>,
}

/// A transition's key found taken by its first use (`previous`: the complaint
/// and the digest of the request): the same request to the same complaint is
/// answered as the complaint stands; anything else is refused naming
/// `request_id`.
pub(crate) fn repeated(
    key: &RequestKey,
    previous: (ComplaintId, Option<String>),
    id: &ComplaintId,
) -> Result<(), StoreError> {
    let (complaint, digest) = previous;
    if &complaint != id {
        return Err(FieldError::new("request_id", "was already used for another complaint").into());
    }
    Ok(key.same_request(digest.as_deref())?)
}

/// The history entry and the outbox event of one transition (the event in
/// the trace `context`), to insert in its transaction.
pub(crate) fn record(
    complaint: &Complaint,
    transition: &Transition,
    actor: &str,
    request: Option<&RequestKey>,
    now: DateTime<Utc>,
    context: Option<&TraceContext>,
) -> Result<(HistoryRow, OutboxRow), StoreError> {
    let history = HistoryRow {
        complaint_id: complaint.id.clone(),
        at: now,
        actor: actor.to_owned(),
        action: transition.action.as_str(),
        from_status: transition.from.as_str(),
        to_status: transition.to.as_str(),
        note: transition.note.clone(),
        satisfaction: matches!(transition.action, Action::Closed | Action::Reopened)
            .then(|| complaint.satisfaction.map(Satisfaction::get))
            .flatten(),
        request: request.cloned(),
    };
    let event = events::for_transition(complaint, transition, actor, now)?;
    Ok((history, OutboxRow::traced(&event, context)?))
}

/// A complaint's columns as stored, before they are checked: each backend
/// reads its own types into this, and [`ComplaintRow::into_complaint`] checks
/// every coded value (a value that does not decode is an error, never a
/// default) and takes the ids as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ComplaintRow {
    pub id: String,
    pub status: String,
    pub text: String,
    pub channel: String,
    pub category: String,
    pub classified_by: String,
    pub priority: String,
    pub reporter_name: Option<String>,
    pub reporter_phone: Option<String>,
    pub community_id: String,
    pub grid_id: String,
    pub building_id: Option<String>,
    pub location: Option<String>,
    pub point_latitude: Option<f64>,
    pub point_longitude: Option<f64>,
    pub point_datum: Option<String>,
    pub possible_duplicates: Option<serde_json::Value>,
    pub merchant_id: Option<String>,
    pub merchant_check: Option<String>,
    pub elder_id: Option<String>,
    pub level: String,
    pub assignee: String,
    pub submitted_at: DateTime<Utc>,
    pub cycle_started_at: DateTime<Utc>,
    pub response_due_at: DateTime<Utc>,
    pub resolution_due_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub follow_up_due_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution_note: Option<String>,
    pub merchant_at_fault: bool,
    pub satisfaction: Option<i64>,
    pub reject_reason: Option<String>,
    pub merged_into: Option<String>,
    pub reopen_count: i64,
}

/// The complaint columns, in [`ComplaintRow`]'s order.
pub(crate) const COLUMNS: &str = "id, status, text, channel, category, classified_by, priority, \
    reporter_name, reporter_phone, community_id, grid_id, building_id, location, point_latitude, \
    point_longitude, point_datum, possible_duplicates, merchant_id, merchant_check, elder_id, \
    level, assignee, submitted_at, cycle_started_at, response_due_at, resolution_due_at, \
    accepted_at, resolved_at, follow_up_due_at, closed_at, resolution_note, merchant_at_fault, \
    satisfaction, reject_reason, merged_into, reopen_count";

/// The columns a transition may change, in the order each backend binds
/// their values.
pub(crate) const CHANGEABLE: [&str; 19] = [
    "status",
    "category",
    "classified_by",
    "priority",
    "level",
    "assignee",
    "cycle_started_at",
    "response_due_at",
    "resolution_due_at",
    "accepted_at",
    "resolved_at",
    "follow_up_due_at",
    "closed_at",
    "resolution_note",
    "merchant_at_fault",
    "satisfaction",
    "reject_reason",
    "merged_into",
    "reopen_count",
];

/// The open statuses, as `Status::is_open` has them, for SQL.
pub(crate) const OPEN_STATUSES: &str = "('submitted', 'accepted', 'in_progress', 'reopened')";

fn coded<T>(column: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T, DbError> {
    parse(value).ok_or_else(|| DbError::Decode(format!("unknown {column} {value:?}")))
}

impl ComplaintRow {
    pub(crate) fn into_complaint(self) -> Result<Complaint, DbError> {
        let decode = |error: FieldError| DbError::Decode(error.to_string());
        let satisfaction = self
            .satisfaction
            .map(|score| {
                let score = u32::try_from(score)
                    .map_err(|_| DbError::Decode(format!("satisfaction {score}")))?;
                Satisfaction::parse("satisfaction", score).map_err(decode)
            })
            .transpose()?;
        Ok(Complaint {
            status: coded("status", &self.status, Status::parse)?,
            channel: coded("channel", &self.channel, Channel::parse)?,
            category: coded("category", &self.category, Category::parse)?,
            priority: coded("priority", &self.priority, Priority::parse)?,
            level: coded("level", &self.level, Level::parse)?,
            merchant_check: self
                .merchant_check
                .map(|check| coded("merchant_check", &check, MerchantCheck::parse))
                .transpose()?,
            reporter: Reporter {
                name: self.reporter_name,
                phone: self
                    .reporter_phone
                    .map(|phone| Phone::parse("reporter_phone", &phone))
                    .transpose()
                    .map_err(decode)?,
            },
            reopen_count: u32::try_from(self.reopen_count)
                .map_err(|_| DbError::Decode(format!("reopen_count {}", self.reopen_count)))?,
            satisfaction,
            id: ComplaintId::from_stored(self.id),
            text: self.text,
            classified_by: self.classified_by,
            community_id: CommunityId::from_stored(self.community_id),
            grid_id: GridId::from_stored(self.grid_id),
            building_id: self.building_id.map(BuildingId::from_stored),
            location: self.location,
            point: Location::from_parts(
                self.point_latitude,
                self.point_longitude,
                self.point_datum.as_deref(),
            )
            .map_err(DbError::Decode)?,
            possible_duplicates: self
                .possible_duplicates
                .map(possible_duplicates_from_json)
                .transpose()?
                .unwrap_or_default(),
            merchant_id: self.merchant_id.map(MerchantId::from_stored),
            elder_id: self.elder_id.map(ElderId::from_stored),
            assignee: self.assignee,
            submitted_at: self.submitted_at,
            cycle_started_at: self.cycle_started_at,
            response_due_at: self.response_due_at,
            resolution_due_at: self.resolution_due_at,
            accepted_at: self.accepted_at,
            resolved_at: self.resolved_at,
            follow_up_due_at: self.follow_up_due_at,
            closed_at: self.closed_at,
            resolution_note: self.resolution_note,
            merchant_at_fault: self.merchant_at_fault,
            reject_reason: self.reject_reason,
            merged_into: self.merged_into.map(ComplaintId::from_stored),
        })
    }
}

/// What a new complaint stores of its place beyond its columns: its point
/// as given and in WGS-84 (for the duplicate search), and its possible
/// duplicates as JSON text (`None`: none).
pub(crate) struct Placement {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub datum: Option<&'static str>,
    pub wgs84_latitude: Option<f64>,
    pub wgs84_longitude: Option<f64>,
    pub possible_duplicates: Option<String>,
}

/// The columns of a [`Placement`], in its order.
pub(crate) const PLACEMENT_COLUMNS: &str = "point_latitude, point_longitude, point_datum, \
    wgs84_latitude, wgs84_longitude, possible_duplicates";

impl Placement {
    pub(crate) fn of(c: &Complaint) -> Self {
        let wgs84 = c.point.map(Location::to_wgs84);
        Self {
            latitude: c.point.map(|l| l.point.latitude),
            longitude: c.point.map(|l| l.point.longitude),
            datum: c.point.map(|l| l.datum.as_str()),
            wgs84_latitude: wgs84.map(|p| p.latitude),
            wgs84_longitude: wgs84.map(|p| p.longitude),
            possible_duplicates: (!c.possible_duplicates.is_empty())
                .then(|| possible_duplicates_json(&c.possible_duplicates).to_string()),
        }
    }
}

fn possible_duplicates_json(found: &[PossibleDuplicate]) -> serde_json::Value {
    found
        .iter()
        .map(|d| {
            let mut entry = serde_json::json!({
                "complaint_id": d.complaint_id.as_str(),
                "same_building": d.same_building,
            });
            if let Some(metres) = d.distance_metres {
                entry["distance_metres"] = metres.into();
            }
            entry
        })
        .collect()
}

fn possible_duplicates_from_json(
    value: serde_json::Value,
) -> Result<Vec<PossibleDuplicate>, DbError> {
    let bad = || DbError::Decode(format!("possible_duplicates {value}"));
    let entries = value.as_array().ok_or_else(bad)?;
    entries
        .iter()
        .map(|entry| {
            Ok(PossibleDuplicate {
                complaint_id: ComplaintId::from_stored(
                    entry["complaint_id"].as_str().ok_or_else(bad)?,
                ),
                distance_metres: match &entry["distance_metres"] {
                    serde_json::Value::Null => None,
                    metres => Some(metres.as_f64().ok_or_else(bad)?),
                },
                same_building: entry["same_building"].as_bool().ok_or_else(bad)?,
            })
        })
        .collect()
}

/// The duplicate search of a new complaint: its category, community,
/// building and point (WGS-84), the earliest submission it looks at and the
/// box about its point; `None` when it has neither a building nor a point.
#[derive(Debug, Clone)]
pub(crate) struct DuplicateSearch {
    pub category: Category,
    pub community_id: CommunityId,
    pub building_id: Option<BuildingId>,
    pub point: Option<Point>,
    pub since: DateTime<Utc>,
    pub bounds: Option<BoundingBox>,
    policy: DuplicatePolicy,
}

/// The candidates each probe of a search reads at most.
pub(crate) const CANDIDATES: i64 = 20;

/// The duplicate search, as two bounded probes of their indexes (by
/// building, newest first; by place, a latitude band and a longitude range),
/// each over the open complaints of the category and community submitted
/// since the window opened: `$1` category, `$2` community, `$3` since, `$4`
/// building, `$5`-`$8` south, north, west, east, `$9` [`CANDIDATES`]. A
/// complaint found by both is read once.
pub(crate) fn candidates_sql() -> String {
    let columns = "id, building_id, wgs84_latitude, wgs84_longitude";
    let open = format!(
        "status IN {OPEN_STATUSES} AND category = $1 AND community_id = $2 AND submitted_at >= $3"
    );
    format!(
        "SELECT {columns} FROM (SELECT {columns} FROM complaints WHERE building_id = $4 AND {open} \
         ORDER BY submitted_at DESC LIMIT $9) AS by_building \
         UNION SELECT {columns} FROM (SELECT {columns} FROM complaints \
         WHERE wgs84_latitude BETWEEN $5 AND $6 AND wgs84_longitude BETWEEN $7 AND $8 AND {open} \
         LIMIT $9) AS by_place"
    )
}

impl DuplicateSearch {
    pub(crate) fn of(c: &Complaint, policy: &DuplicatePolicy) -> Option<Self> {
        let point = c.point.map(Location::to_wgs84);
        if policy.is_off() || (point.is_none() && c.building_id.is_none()) {
            return None;
        }
        Some(Self {
            category: c.category,
            community_id: c.community_id.clone(),
            building_id: c.building_id.clone(),
            point,
            since: c.submitted_at - policy.window,
            bounds: point.map(|p| BoundingBox::around(p, policy.radius_metres)),
            policy: *policy,
        })
    }

    /// The possible duplicates among the candidates read.
    pub(crate) fn decide(&self, candidates: Vec<Candidate>) -> Vec<PossibleDuplicate> {
        suggest(
            &self.policy,
            self.building_id.as_ref(),
            self.point,
            candidates,
        )
    }
}

/// A candidate from its stored columns (coordinates in WGS-84).
pub(crate) fn candidate(
    id: String,
    building_id: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
) -> Candidate {
    Candidate {
        id: ComplaintId::from_stored(id),
        building_id: building_id.map(BuildingId::from_stored),
        point: latitude.zip(longitude).map(|(latitude, longitude)| Point {
            latitude,
            longitude,
        }),
    }
}

/// The entries of a history read back, each status checked.
pub(crate) fn history_entry(
    at: DateTime<Utc>,
    actor: String,
    action: String,
    from_status: &str,
    to_status: &str,
    note: Option<String>,
    satisfaction: Option<i64>,
) -> Result<HistoryEntry, DbError> {
    let satisfaction = satisfaction
        .map(|score| {
            u32::try_from(score)
                .ok()
                .and_then(|score| Satisfaction::parse("satisfaction", score).ok())
                .ok_or_else(|| DbError::Decode(format!("history satisfaction {score}")))
        })
        .transpose()?;
    Ok(HistoryEntry {
        at,
        actor,
        action,
        from_status: coded("from_status", from_status, Status::parse)?,
        to_status: coded("to_status", to_status, Status::parse)?,
        note,
        satisfaction,
    })
}

/// The page and the next cursor from up to `page_size + 1` complaints read.
pub(crate) fn page(
    mut complaints: Vec<Complaint>,
    page_size: u32,
) -> (Vec<Complaint>, Option<Cursor>) {
    if complaints.len() <= page_size as usize {
        return (complaints, None);
    }
    complaints.truncate(page_size as usize);
    let next = complaints.last().map(|last| Cursor {
        submitted_at: last.submitted_at.timestamp_millis(),
        id: last.id.clone(),
    });
    (complaints, next)
}

/// A count read from the database, as the figures hold it.
pub(crate) fn count(column: &str, n: i64) -> Result<u32, DbError> {
    u32::try_from(n).map_err(|_| DbError::Decode(format!("{column} = {n} is not a count")))
}

/// The organisation from its rows, each in the order it was loaded: each
/// grid (with its community's id) under its community, each building (with
/// its grid's id) under its grid.
pub(crate) fn assemble(
    district_handler: String,
    mut communities: Vec<Community>,
    mut grids: Vec<(String, Grid)>,
    buildings: Vec<(String, String)>,
) -> Organisation {
    for (grid_id, building) in buildings {
        if let Some((_, grid)) = grids.iter_mut().find(|(_, grid)| grid.id == grid_id) {
            grid.building_ids.push(building);
        }
    }
    for (community_id, grid) in grids {
        if let Some(community) = communities.iter_mut().find(|c| c.id == community_id) {
            community.grids.push(grid);
        }
    }
    Organisation {
        district_handler,
        communities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::classification::Classification;
    use crate::domain::organisation::Chain;
    use crate::domain::reporter::Reporter;
    use shequ_chassis::geo::Datum;

    fn complaint(building: Option<&str>, point: Option<Location>) -> Complaint {
        let intake = Intake {
            text: "路灯不亮".into(),
            channel: Channel::Hotline,
            classification: Classification::by_caller(Category::MunicipalFacilities),
            priority: Priority::Normal,
            reporter: Reporter::default(),
            building_id: building.map(BuildingId::from_stored),
            location: None,
            point,
            merchant_id: None,
            merchant_check: None,
            elder_id: None,
        };
        let chain = Chain {
            community_id: CommunityId::from_stored("xinyuan"),
            grid_id: GridId::from_stored("xinyuan-1"),
            worker: "w".into(),
            branch_handler: "b".into(),
            committee_handler: "c".into(),
            district_handler: "d".into(),
        };
        Complaint::submit(
            ComplaintId::from_stored("c-1"),
            intake,
            &chain,
            &TimeLimits::default(),
            DateTime::UNIX_EPOCH + chrono::Duration::days(20_000),
        )
        .0
    }

    #[test]
    fn a_search_needs_a_place_and_a_radius() {
        let point = Location {
            point: Point {
                latitude: 34.8,
                longitude: 113.66,
            },
            datum: Datum::Gcj02,
        };
        let policy = DuplicatePolicy::default();
        assert!(DuplicateSearch::of(&complaint(None, None), &policy).is_none());
        let search = DuplicateSearch::of(&complaint(None, Some(point)), &policy)
            .unwrap_or_else(|| panic!("a complaint with a point is searched"));
        assert_eq!(search.point, Some(point.to_wgs84()), "searched in WGS-84");
        assert!(search.bounds.is_some());
        assert!(
            DuplicateSearch::of(&complaint(Some("b-1"), None), &policy)
                .is_some_and(|s| s.bounds.is_none())
        );
        let off = DuplicatePolicy {
            radius_metres: 0.0,
            ..policy
        };
        assert!(DuplicateSearch::of(&complaint(Some("b-1"), Some(point)), &off).is_none());
    }

    #[test]
    fn possible_duplicates_are_stored_and_read_back_as_they_were() {
        let found = vec![
            PossibleDuplicate {
                complaint_id: ComplaintId::from_stored("a"),
                distance_metres: Some(12.5),
                same_building: false,
            },
            PossibleDuplicate {
                complaint_id: ComplaintId::from_stored("b"),
                distance_metres: None,
                same_building: true,
            },
        ];
        let json = possible_duplicates_json(&found);
        assert_eq!(possible_duplicates_from_json(json).ok(), Some(found));
        assert!(possible_duplicates_from_json(serde_json::json!({"a": 1})).is_err());
    }
}
