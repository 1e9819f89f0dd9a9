//! The complaints database: complaints, their history, escalations owed and the
//! grid organisation. Every change is one transaction that also writes the
//! change's history entry and its outbox event.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shequ_chassis::clock::{SharedClock, from_millis, to_millis};
use shequ_chassis::group_commit::{CommitError, DEFAULT_MAX_BATCH, GroupCommit, Job, Rows, Table};
use shequ_chassis::lease::{Lease, process_holder};
use shequ_chassis::outbox::{self, OutboxSignal};
use shequ_chassis::storage::{Backend, Database, Due, is_unavailable, placeholders};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::FieldError;
use crate::domain::complaint::{
    Breach, Complaint, Intake, Satisfaction, Transition, TransitionError,
};
use crate::domain::figures::{self, Backlog, Figures};
use crate::domain::kinds::{Category, Channel, Level, MerchantCheck, Priority, Status};
use crate::domain::organisation::{Chain, Community, Grid, Organisation};
use crate::domain::reporter::{Phone, Reporter};
use crate::domain::time_limits::TimeLimits;
use crate::events;

/// Who answers at the district level before an organisation is loaded.
pub const DEFAULT_DISTRICT_HANDLER: &str = "district";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What was not found, e.g. `complaint 0193…` or `grid xinyuan-g9`.
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding an event: {0}")]
    Event(#[from] serde_json::Error),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl StoreError {
    /// Whether the database could not be used just now ([`is_unavailable`]): a
    /// pass over due work stops at such an error and the next pass retries.
    /// Any other error concerns one item (a row that does not decode, say),
    /// which the pass skips so that the rest still get done.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(error) if is_unavailable(error))
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
}

/// Filters of the complaint list; all optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub grid_id: Option<String>,
    pub community_id: Option<String>,
    pub category: Option<Category>,
    pub overdue_only: bool,
}

/// Where the list continues: after this complaint (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub submitted_at: i64,
    pub id: String,
}

/// Which complaints the figures are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    District,
    Community(String),
    Grid(String),
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::District => "district".into(),
            Scope::Community(id) => format!("community:{id}"),
            Scope::Grid(id) => format!("grid:{id}"),
        }
    }

    fn condition(&self, param: usize) -> (String, Option<String>) {
        match self {
            Scope::District => (String::new(), None),
            Scope::Community(id) => (format!(" AND community_id = ${param}"), Some(id.clone())),
            Scope::Grid(id) => (format!(" AND grid_id = ${param}"), Some(id.clone())),
        }
    }
}

const COLUMNS: &str = "id, status, text, channel, category, classified_by, priority, \
    reporter_name, reporter_phone, community_id, grid_id, building_id, location, merchant_id, \
    merchant_check, elder_id, level, assignee, submitted_at, cycle_started_at, response_due_at, \
    resolution_due_at, accepted_at, resolved_at, follow_up_due_at, closed_at, resolution_note, \
    merchant_at_fault, satisfaction, reject_reason, merged_into, reopen_count";

const OPEN_STATUSES: &str = "('submitted', 'accepted', 'in_progress', 'reopened')";

#[derive(Debug, Clone)]
pub struct Store {
    db: Database,
    outbox: OutboxSignal,
    clock: SharedClock,
    intake: GroupCommit<Submission>,
}

impl Store {
    /// The store, and its writer of submissions (a task on the current runtime).
    pub fn new(db: Database, outbox: OutboxSignal, clock: SharedClock) -> Self {
        let intake = GroupCommit::start(db.clone(), outbox.clone(), DEFAULT_MAX_BATCH);
        Self {
            db,
            outbox,
            clock,
            intake,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The lease `name` in this service's database, asked for by this process
    /// for `ttl` at a time: a singleton job runs only while holding it.
    pub fn lease(&self, name: &str, ttl: std::time::Duration) -> Lease {
        Lease::new(
            self.db.clone(),
            name,
            process_holder(),
            ttl,
            Arc::clone(&self.clock),
        )
    }

    /// Takes in a complaint, once per `request_id`: a repeated key returns the
    /// complaint it made the first time and `true`. The complaint, its history
    /// entry and its outbox event are committed before this returns, in a
    /// transaction shared with the submissions arriving meanwhile (group
    /// commit: one fsync for many); a submission that fails fails alone.
    ///
    /// Everything but the insert happens here, in the caller's task, so the one
    /// writer does as little as it can per submission: the organisation is read
    /// on the reader pool (a complaint is routed by the organisation as it
    /// stands when it arrives), and the complaint, its history entry and its
    /// event are made before it is queued.
    pub async fn submit(
        &self,
        request_id: &str,
        intake: Intake,
        grid_id: Option<&str>,
        limits: &TimeLimits,
    ) -> Result<(Complaint, bool), StoreError> {
        let mut conn = self.db.reader().acquire().await?;
        let chain = match route(&mut conn, grid_id, intake.building_id.as_deref()).await {
            Ok(chain) => chain,
            // A retry of a submission taken before its building moved or went is
            // still answered as the duplicate it is.
            Err(error) => {
                return match by_request_id(&mut conn, request_id).await? {
                    Some(existing) => Ok((existing, true)),
                    None => Err(error),
                };
            }
        };
        drop(conn);
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        let (complaint, transition) = Complaint::submit(id, intake, &chain, limits, now);
        let actor = format!("channel:{}", complaint.channel.as_str());
        let rows = record(&complaint, &transition, &actor, None, now)?;
        self.intake
            .submit(Submission {
                request_id: request_id.to_owned(),
                complaint,
                rows,
            })
            .await
    }

    /// Applies `change` to complaint `id` (and, for a merge, reads `related`) in
    /// one transaction with its history entry and event. A `request_id` seen
    /// before returns the complaint as it is and changes nothing.
    pub async fn transition<F>(
        &self,
        id: &str,
        request_id: Option<&str>,
        actor: &str,
        related: Option<&str>,
        change: F,
    ) -> Result<Complaint, StoreError>
    where
        F: FnOnce(
            &mut Complaint,
            Option<&Complaint>,
            DateTime<Utc>,
        ) -> Result<Transition, TransitionError>,
    {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let mut complaint = load(&mut tx, id, self.lock()).await?;
        if let Some(request_id) = request_id
            && let Some(previous) = transition_by_request_id(&mut tx, request_id).await?
        {
            tx.rollback().await?;
            if previous != id {
                return Err(FieldError::new(
                    "request_id",
                    "was already used for another complaint",
                )
                .into());
            }
            return Ok(complaint);
        }
        let related = match related {
            Some(related) => Some(load(&mut tx, related, "").await?),
            None => None,
        };
        let transition = change(&mut complaint, related.as_ref(), now)?;
        update(&mut tx, &complaint).await?;
        record(&complaint, &transition, actor, request_id, now)?
            .insert(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(complaint)
    }

    /// Escalates complaint `id` for `breach` if that is still owed; the
    /// `escalations` key makes it happen once per breach and resolution cycle,
    /// whichever sweeper gets there first. Returns whether it escalated.
    pub async fn escalate(&self, id: &str, breach: Breach) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let mut complaint = load(&mut tx, id, self.lock()).await?;
        if !complaint.breaches(now).contains(&breach) {
            tx.rollback().await?;
            return Ok(false);
        }
        let owed = sqlx::query(
            "INSERT INTO escalations (complaint_id, breach, cycle, escalated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (complaint_id, breach, cycle) DO NOTHING",
        )
        .bind(id)
        .bind(breach.as_str())
        .bind(i64::from(complaint.reopen_count))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if owed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let chain = chain_of_grid(&mut tx, &complaint.grid_id).await?;
        let district = district_handler(&mut tx).await?;
        let transition = complaint.escalate(breach, chain.as_ref(), &district);
        update(&mut tx, &complaint).await?;
        record(&complaint, &transition, "sweeper", None, now)?
            .insert(&mut tx)
            .await?;
        self.db.commit(tx).await?;
        self.outbox.wake();
        Ok(true)
    }

    /// Complaints whose `breach` limit passed by `now` with no escalation
    /// recorded for it in their current cycle, after `after`, at most `limit`,
    /// in (limit passed, id) order. Those escalated are not among them.
    pub async fn escalations_owed(
        &self,
        breach: Breach,
        now: DateTime<Utc>,
        after: Option<&Due>,
        limit: usize,
    ) -> Result<Vec<Due>, StoreError> {
        // The statuses in which the limit counts, as `Complaint::breaches` has it.
        let (due, statuses) = match breach {
            Breach::Response => ("response_due_at", "('submitted')"),
            Breach::Resolution => ("resolution_due_at", OPEN_STATUSES),
        };
        let sql = format!(
            "SELECT id, {due} AS due FROM complaints c WHERE status IN {statuses} AND {due} <= $1 \
             AND ({due}, id) > ($2, $3) \
             AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.complaint_id = c.id \
             AND e.breach = '{}' AND e.cycle = c.reopen_count) ORDER BY {due}, id LIMIT $4",
            breach.as_str()
        );
        Ok(self.db.due_batch(&sql, now, after, limit).await?)
    }

    pub async fn get(&self, id: &str) -> Result<(Complaint, Vec<HistoryEntry>), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let complaint = load(&mut conn, id, "").await?;
        let rows = sqlx::query(
            "SELECT at, actor, action, from_status, to_status, note FROM complaint_history \
             WHERE complaint_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let history = rows
            .iter()
            .map(|row| {
                Ok(HistoryEntry {
                    at: from_millis(row.try_get("at")?),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    from_status: parse(row, "from_status", Status::parse)?,
                    to_status: parse(row, "to_status", Status::parse)?,
                    note: row.try_get("note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((complaint, history))
    }

    /// A page of complaints, newest first, and the cursor of the next page.
    pub async fn list(
        &self,
        filter: &ListFilter,
        page_size: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Complaint>, Option<Cursor>), StoreError> {
        // $1 is now and $2 the cursor's time; text filters follow from $3.
        let mut conditions: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut placeholder = |value: String| {
            texts.push(value);
            format!("${}", texts.len() + 2)
        };
        if let Some(status) = filter.status {
            conditions.push(format!("status = {}", placeholder(status.as_str().into())));
        }
        if let Some(grid) = &filter.grid_id {
            conditions.push(format!("grid_id = {}", placeholder(grid.clone())));
        }
        if let Some(community) = &filter.community_id {
            conditions.push(format!("community_id = {}", placeholder(community.clone())));
        }
        if let Some(category) = filter.category {
            conditions.push(format!(
                "category = {}",
                placeholder(category.as_str().into())
            ));
        }
        if let Some(cursor) = &after {
            let id = placeholder(cursor.id.clone());
            conditions.push(format!(
                "(submitted_at < $2 OR (submitted_at = $2 AND id < {id}))"
            ));
        }
        if filter.overdue_only {
            conditions.push(format!(
                "((status = 'submitted' AND response_due_at <= $1) OR \
                 (status IN {OPEN_STATUSES} AND resolution_due_at <= $1))"
            ));
        }
        // `$1 = $1 AND $2 = $2` keeps both leading parameters used in every query.
        let mut sql = format!("SELECT {COLUMNS} FROM complaints WHERE $1 = $1 AND $2 = $2");
        for condition in &conditions {
            sql.push_str(" AND ");
            sql.push_str(condition);
        }
        sql.push_str(&format!(
            " ORDER BY submitted_at DESC, id DESC LIMIT {}",
            page_size + 1
        ));
        let mut query = sqlx::query(&sql)
            .bind(to_millis(self.clock.now()))
            .bind(after.as_ref().map_or(0, |cursor| cursor.submitted_at));
        for text in texts {
            query = query.bind(text);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut complaints = rows
            .iter()
            .map(complaint_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if complaints.len() > page_size as usize {
            complaints.truncate(page_size as usize);
            complaints.last().map(|last| Cursor {
                submitted_at: to_millis(last.submitted_at),
                id: last.id.clone(),
            })
        } else {
            None
        };
        Ok((complaints, next))
    }

    /// The scope's figures for complaints submitted in [from, to), with the
    /// open backlog as of `now`: counted by the database, two aggregate
    /// queries ([`figures::PERIOD_SQL`], [`figures::BACKLOG_SQL`]).
    pub async fn figures(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        let (condition, value) = scope.condition(4);
        let sql = format!("{}{condition}", figures::PERIOD_SQL);
        let mut query = sqlx::query(&sql)
            .bind(to_millis(from))
            .bind(to_millis(to))
            .bind(to_millis(now));
        if let Some(value) = &value {
            query = query.bind(value.clone());
        }
        let period = query.fetch_one(self.db.reader()).await?;
        let (condition, value) = scope.condition(2);
        let sql = format!("{}{condition}", figures::BACKLOG_SQL);
        let mut query = sqlx::query(&sql).bind(to_millis(now));
        if let Some(value) = value {
            query = query.bind(value);
        }
        let backlog = query.fetch_one(self.db.reader()).await?;
        let count = |row: &AnyRow, column: &str| -> Result<u32, sqlx::Error> {
            let n: i64 = row.try_get(column)?;
            u32::try_from(n).map_err(|error| sqlx::Error::ColumnDecode {
                index: column.into(),
                source: Box::new(error),
            })
        };
        Ok(Figures {
            submitted: count(&period, "submitted")?,
            responded_on_time: count(&period, "responded_on_time")?,
            response_counted: count(&period, "response_counted")?,
            resolved_on_time: count(&period, "resolved_on_time")?,
            resolution_counted: count(&period, "resolution_counted")?,
            satisfied: count(&period, "satisfied")?,
            followed_up: count(&period, "followed_up")?,
            reopened: count(&period, "reopened")?,
            resolved: count(&period, "resolved")?,
            backlog: Backlog {
                under_1_day: count(&backlog, "under_1_day")?,
                from_1_to_3_days: count(&backlog, "from_1_to_3_days")?,
                from_3_to_7_days: count(&backlog, "from_3_to_7_days")?,
                over_7_days: count(&backlog, "over_7_days")?,
            },
        })
    }

    /// The scope's complaints submitted in [from, to), and its open ones now:
    /// the input of [`Figures::compute`], the rules [`Store::figures`] counts in
    /// SQL (tests hold the two against each other).
    pub async fn figures_input(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<Complaint>, Vec<Complaint>), StoreError> {
        let (condition, value) = scope.condition(3);
        let in_period = format!(
            "SELECT {COLUMNS} FROM complaints WHERE submitted_at >= $1 AND submitted_at < $2{condition}"
        );
        let mut query = sqlx::query(&in_period)
            .bind(to_millis(from))
            .bind(to_millis(to));
        if let Some(value) = &value {
            query = query.bind(value.clone());
        }
        let period_rows = query.fetch_all(self.db.pool()).await?;
        let (condition, _) = scope.condition(1);
        let open = format!(
            "SELECT {COLUMNS} FROM complaints WHERE status IN {OPEN_STATUSES}{}",
            if value.is_some() {
                condition
            } else {
                String::new()
            }
        );
        let mut query = sqlx::query(&open);
        if let Some(value) = value {
            query = query.bind(value);
        }
        let open_rows = query.fetch_all(self.db.pool()).await?;
        let decode = |rows: Vec<AnyRow>| {
            rows.iter()
                .map(complaint_from_row)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((decode(period_rows)?, decode(open_rows)?))
    }

    /// Whether a community or grid is known (for the figures' scope).
    pub async fn scope_exists(&self, scope: &Scope) -> Result<bool, StoreError> {
        let (sql, id) = match scope {
            Scope::District => return Ok(true),
            Scope::Community(id) => ("SELECT COUNT(*) AS n FROM communities WHERE id = $1", id),
            Scope::Grid(id) => ("SELECT COUNT(*) AS n FROM grids WHERE id = $1", id),
        };
        let n: i64 = sqlx::query(sql)
            .bind(id)
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// Replaces the whole organisation in one transaction.
    pub async fn load_organisation(&self, organisation: &Organisation) -> Result<(), StoreError> {
        let mut tx = self.db.pool().begin().await?;
        for table in ["buildings", "grids", "communities", "organisation_settings"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO organisation_settings (name, value) VALUES ('district_handler', $1)",
        )
        .bind(&organisation.district_handler)
        .execute(&mut *tx)
        .await?;
        for (c, community) in organisation.communities.iter().enumerate() {
            sqlx::query(
                "INSERT INTO communities (id, name, committee_handler, position) VALUES ($1, $2, $3, $4)",
            )
            .bind(&community.id)
            .bind(&community.name)
            .bind(&community.committee_handler)
            .bind(c as i64)
            .execute(&mut *tx)
            .await?;
            for (g, grid) in community.grids.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO grids (id, community_id, name, worker, branch_handler, position) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&grid.id)
                .bind(&community.id)
                .bind(&grid.name)
                .bind(&grid.worker)
                .bind(&grid.branch_handler)
                .bind(g as i64)
                .execute(&mut *tx)
                .await?;
                for (b, building) in grid.building_ids.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO buildings (id, grid_id, position) VALUES ($1, $2, $3)",
                    )
                    .bind(building)
                    .bind(&grid.id)
                    .bind(b as i64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        self.db.commit(tx).await?;
        Ok(())
    }

    pub async fn organisation(&self) -> Result<Organisation, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let district_handler = district_handler(&mut conn).await?;
        let buildings = sqlx::query("SELECT id, grid_id FROM buildings ORDER BY grid_id, position")
            .fetch_all(&mut *conn)
            .await?;
        let grids = sqlx::query(
            "SELECT id, community_id, name, worker, branch_handler FROM grids ORDER BY community_id, position",
        )
        .fetch_all(&mut *conn)
        .await?;
        let communities =
            sqlx::query("SELECT id, name, committee_handler FROM communities ORDER BY position")
                .fetch_all(&mut *conn)
                .await?;
        let mut organisation = Organisation {
            district_handler,
            communities: Vec::new(),
        };
        for row in &communities {
            let id: String = row.try_get("id")?;
            let mut community = Community {
                name: row.try_get("name")?,
                committee_handler: row.try_get("committee_handler")?,
                grids: Vec::new(),
                id,
            };
            for row in grids.iter() {
                if row.try_get::<String, _>("community_id")? != community.id {
                    continue;
                }
                let id: String = row.try_get("id")?;
                let mut building_ids = Vec::new();
                for building in &buildings {
                    if building.try_get::<String, _>("grid_id")? == id {
                        building_ids.push(building.try_get("id")?);
                    }
                }
                community.grids.push(Grid {
                    name: row.try_get("name")?,
                    worker: row.try_get("worker")?,
                    branch_handler: row.try_get("branch_handler")?,
                    building_ids,
                    id,
                });
            }
            organisation.communities.push(community);
        }
        Ok(organisation)
    }

    /// Row lock for read-modify-write on PostgreSQL; SQLite has one writer anyway.
    fn lock(&self) -> &'static str {
        match self.db.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// One submission, run by the group commit (see [`GroupCommit`]).
struct Submission {
    request_id: String,
    complaint: Complaint,
    /// Its history entry and event.
    rows: Rows,
}

impl Job for Submission {
    type Output = (Complaint, bool);
    type Error = StoreError;

    /// One statement in the common case: the insert (on SQLite a round trip to
    /// the connection's thread); the history entry and the event go with the
    /// batch's rows.
    async fn run(
        &self,
        conn: &mut AnyConnection,
        rows: &mut Rows,
    ) -> Result<(Complaint, bool), StoreError> {
        if !insert(conn, &self.request_id, &self.complaint).await? {
            // The key was taken before: by an earlier submission (also one earlier
            // in this batch) or, on PostgreSQL, by another replica meanwhile.
            return by_request_id(conn, &self.request_id)
                .await?
                .map(|complaint| (complaint, true))
                .ok_or_else(|| StoreError::NotFound(format!("submission {}", self.request_id)));
        }
        rows.extend(self.rows.clone());
        Ok((self.complaint.clone(), false))
    }
}

async fn by_request_id(
    conn: &mut AnyConnection,
    request_id: &str,
) -> Result<Option<Complaint>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM complaints WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(complaint_from_row).transpose()?)
}

async fn load(conn: &mut AnyConnection, id: &str, lock: &str) -> Result<Complaint, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM complaints WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("complaint {id}")))?;
    Ok(complaint_from_row(&row)?)
}

async fn transition_by_request_id(
    conn: &mut AnyConnection,
    request_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT complaint_id FROM complaint_history WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| row.try_get("complaint_id")).transpose()
}

/// The columns of a grid's [`Chain`], from `grids g` joined to `communities c`.
const CHAIN: &str = "g.id AS chain_grid, g.community_id, g.worker, g.branch_handler, \
     c.committee_handler, \
     (SELECT value FROM organisation_settings WHERE name = 'district_handler') AS district_handler";

/// The chain of the grid the complaint is in: by building (which names its
/// grid) or by grid; both given must agree. One statement either way.
async fn route(
    conn: &mut AnyConnection,
    grid_id: Option<&str>,
    building_id: Option<&str>,
) -> Result<Chain, StoreError> {
    let Some(building) = building_id else {
        let grid_id = grid_id
            .ok_or_else(|| FieldError::new("grid_id", "a grid_id or a building_id is required"))?;
        return chain_of_grid(conn, grid_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("grid {grid_id}")));
    };
    let row = sqlx::query(&format!(
        "SELECT b.grid_id AS building_grid, {CHAIN} FROM buildings b \
         LEFT JOIN grids g ON g.id = b.grid_id LEFT JOIN communities c ON c.id = g.community_id \
         WHERE b.id = $1"
    ))
    .bind(building)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("building {building}")))?;
    let building_grid: String = row.try_get("building_grid")?;
    if let Some(grid_id) = grid_id
        && grid_id != building_grid
    {
        return Err(FieldError::new(
            "building_id",
            format!("building {building} is in grid {building_grid}, not {grid_id}"),
        )
        .into());
    }
    chain_from_row(&row)?.ok_or_else(|| StoreError::NotFound(format!("grid {building_grid}")))
}

async fn chain_of_grid(
    conn: &mut AnyConnection,
    grid_id: &str,
) -> Result<Option<Chain>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CHAIN} FROM grids g JOIN communities c ON c.id = g.community_id WHERE g.id = $1"
    ))
    .bind(grid_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(chain_from_row).transpose()?.flatten())
}

/// The [`CHAIN`] columns of `row`; `None` when they are empty (no such grid).
fn chain_from_row(row: &AnyRow) -> Result<Option<Chain>, sqlx::Error> {
    let Some(grid_id) = row.try_get::<Option<String>, _>("chain_grid")? else {
        return Ok(None);
    };
    let district_handler: Option<String> = row.try_get("district_handler")?;
    Ok(Some(Chain {
        community_id: row.try_get("community_id")?,
        grid_id,
        worker: row.try_get("worker")?,
        branch_handler: row.try_get("branch_handler")?,
        committee_handler: row.try_get("committee_handler")?,
        district_handler: district_handler.unwrap_or_else(|| DEFAULT_DISTRICT_HANDLER.into()),
    }))
}

async fn district_handler(conn: &mut AnyConnection) -> Result<String, sqlx::Error> {
    let row =
        sqlx::query("SELECT value FROM organisation_settings WHERE name = 'district_handler'")
            .fetch_optional(conn)
            .await?;
    Ok(match row {
        Some(row) => row.try_get("value")?,
        None => DEFAULT_DISTRICT_HANDLER.into(),
    })
}

/// The columns a transition may change, in the order [`bind_changeable`] binds them.
const CHANGEABLE: [&str; 19] = [
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

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_changeable<'q>(query: AnyQuery<'q>, c: &'q Complaint) -> AnyQuery<'q> {
    query
        .bind(c.status.as_str())
        .bind(c.category.as_str())
        .bind(&c.classified_by)
        .bind(c.priority.as_str())
        .bind(c.level.as_str())
        .bind(&c.assignee)
        .bind(to_millis(c.cycle_started_at))
        .bind(to_millis(c.response_due_at))
        .bind(to_millis(c.resolution_due_at))
        .bind(c.accepted_at.map(to_millis))
        .bind(c.resolved_at.map(to_millis))
        .bind(c.follow_up_due_at.map(to_millis))
        .bind(c.closed_at.map(to_millis))
        .bind(c.resolution_note.clone())
        .bind(i64::from(c.merchant_at_fault))
        .bind(c.satisfaction.map(|s| i64::from(s.get())))
        .bind(c.reject_reason.clone())
        .bind(c.merged_into.clone())
        .bind(i64::from(c.reopen_count))
}

/// Inserts a new complaint; `false` when its `request_id` is already taken.
async fn insert(
    conn: &mut AnyConnection,
    request_id: &str,
    c: &Complaint,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO complaints (request_id, id, text, channel, reporter_name, reporter_phone, \
         community_id, grid_id, building_id, location, merchant_id, merchant_check, elder_id, \
         submitted_at, {}) VALUES ({}) ON CONFLICT (request_id) DO NOTHING",
        CHANGEABLE.join(", "),
        placeholders(1..15 + CHANGEABLE.len()),
    );
    let query = sqlx::query(&sql)
        .bind(request_id)
        .bind(&c.id)
        .bind(&c.text)
        .bind(c.channel.as_str())
        .bind(c.reporter.name.clone())
        .bind(
            c.reporter
                .phone
                .as_ref()
                .map(|phone| phone.as_str().to_owned()),
        )
        .bind(&c.community_id)
        .bind(&c.grid_id)
        .bind(c.building_id.clone())
        .bind(c.location.clone())
        .bind(c.merchant_id.clone())
        .bind(c.merchant_check.map(MerchantCheck::as_str))
        .bind(c.elder_id.clone())
        .bind(to_millis(c.submitted_at));
    let done = bind_changeable(query, c).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Writes back what transitions may change.
async fn update(conn: &mut AnyConnection, c: &Complaint) -> Result<(), sqlx::Error> {
    let assignments: Vec<String> = CHANGEABLE
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = ${}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE complaints SET {} WHERE id = $1",
        assignments.join(", ")
    );
    bind_changeable(sqlx::query(&sql).bind(&c.id), c)
        .execute(conn)
        .await?;
    Ok(())
}

/// The columns of a history entry.
const HISTORY: Table = Table {
    name: "complaint_history",
    columns: &[
        "complaint_id",
        "at",
        "actor",
        "action",
        "from_status",
        "to_status",
        "note",
        "request_id",
    ],
};

/// The history entry and the outbox event of one transition, to insert in its
/// transaction (or with its group commit batch).
fn record(
    complaint: &Complaint,
    transition: &Transition,
    actor: &str,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Rows, StoreError> {
    let mut rows = Rows::default();
    rows.add(
        HISTORY,
        vec![
            complaint.id.as_str().into(),
            to_millis(now).into(),
            actor.into(),
            transition.action.as_str().into(),
            transition.from.as_str().into(),
            transition.to.as_str().into(),
            transition.note.clone().into(),
            request_id.into(),
        ],
    );
    let event = events::for_transition(complaint, transition, actor, now)?;
    outbox::add(&mut rows, &event)?;
    Ok(rows)
}

fn parse<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    let value: String = row.try_get(column)?;
    parse(&value).ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} {value:?}").into()))
}

fn complaint_from_row(row: &AnyRow) -> Result<Complaint, sqlx::Error> {
    let at = |column: &str| row.try_get::<i64, _>(column).map(from_millis);
    let maybe_at = |column: &str| {
        row.try_get::<Option<i64>, _>(column)
            .map(|v| v.map(from_millis))
    };
    let phone: Option<String> = row.try_get("reporter_phone")?;
    let satisfaction: Option<i64> = row.try_get("satisfaction")?;
    let decode = |error: FieldError| sqlx::Error::Decode(error.to_string().into());
    Ok(Complaint {
        id: row.try_get("id")?,
        status: parse(row, "status", Status::parse)?,
        text: row.try_get("text")?,
        channel: parse(row, "channel", Channel::parse)?,
        category: parse(row, "category", Category::parse)?,
        classified_by: row.try_get("classified_by")?,
        priority: parse(row, "priority", Priority::parse)?,
        reporter: Reporter {
            name: row.try_get("reporter_name")?,
            phone: phone
                .map(|phone| Phone::parse("reporter_phone", &phone))
                .transpose()
                .map_err(decode)?,
        },
        community_id: row.try_get("community_id")?,
        grid_id: row.try_get("grid_id")?,
        building_id: row.try_get("building_id")?,
        location: row.try_get("location")?,
        merchant_id: row.try_get("merchant_id")?,
        merchant_check: row
            .try_get::<Option<String>, _>("merchant_check")?
            .map(|check| {
                MerchantCheck::parse(&check).ok_or_else(|| {
                    sqlx::Error::Decode(format!("unknown merchant_check {check:?}").into())
                })
            })
            .transpose()?,
        elder_id: row.try_get("elder_id")?,
        level: parse(row, "level", Level::parse)?,
        assignee: row.try_get("assignee")?,
        submitted_at: at("submitted_at")?,
        cycle_started_at: at("cycle_started_at")?,
        response_due_at: at("response_due_at")?,
        resolution_due_at: at("resolution_due_at")?,
        accepted_at: maybe_at("accepted_at")?,
        resolved_at: maybe_at("resolved_at")?,
        follow_up_due_at: maybe_at("follow_up_due_at")?,
        closed_at: maybe_at("closed_at")?,
        resolution_note: row.try_get("resolution_note")?,
        merchant_at_fault: row.try_get::<i64, _>("merchant_at_fault")? != 0,
        satisfaction: satisfaction
            .map(|s| Satisfaction::parse("satisfaction", u32::try_from(s).unwrap_or(0)))
            .transpose()
            .map_err(decode)?,
        reject_reason: row.try_get("reject_reason")?,
        merged_into: row.try_get("merged_into")?,
        reopen_count: u32::try_from(row.try_get::<i64, _>("reopen_count")?).unwrap_or(0),
    })
}
