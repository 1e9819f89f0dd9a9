//! The facts of the care figures, on PostgreSQL: the scope's grids bound as
//! one `text[]`, NULL for the whole district.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::GridId;
use crate::domain::figures::CareFacts;
use crate::store::{StoreError, facts};

/// `sql` with its scope on `column`, bound as `$1`.
fn scoped(sql: &str, column: &str) -> String {
    sql.replace(
        "{scope}",
        &format!("($1::text[] IS NULL OR {column} = ANY($1))"),
    )
}

type ElderRow = (String, String, String, i64, bool, DateTime<Utc>);
type PairingRow = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);
type VisitRow = (
    String,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
    bool,
    Option<String>,
    Option<String>,
);

pub(super) async fn care_facts(
    conn: &mut PgConnection,
    grids: Option<&[GridId]>,
) -> Result<CareFacts, StoreError> {
    let grids: Option<Vec<&str>> = grids.map(|grids| grids.iter().map(GridId::as_str).collect());
    let elders: Vec<ElderRow> = sqlx::query_as(&scoped(facts::ELDERS, "e.grid_id"))
        .bind(&grids)
        .fetch_all(&mut *conn)
        .await?;
    let volunteers: Vec<(String, String, DateTime<Utc>)> =
        sqlx::query_as(&scoped(facts::VOLUNTEERS, "v.grid_id"))
            .bind(&grids)
            .fetch_all(&mut *conn)
            .await?;
    let pairings: Vec<PairingRow> = sqlx::query_as(&scoped(facts::PAIRINGS, "e.grid_id"))
        .bind(&grids)
        .fetch_all(&mut *conn)
        .await?;
    let visits: Vec<VisitRow> = sqlx::query_as(&scoped(facts::VISITS, "e.grid_id"))
        .bind(&grids)
        .fetch_all(&mut *conn)
        .await?;
    let outcomes: Vec<(String, String, DateTime<Utc>)> =
        sqlx::query_as(&scoped(facts::OUTCOMES, "e.grid_id"))
            .bind(&grids)
            .fetch_all(&mut *conn)
            .await?;
    Ok(CareFacts {
        elders: elders
            .into_iter()
            .map(|(id, grid, risk, days, consents, registered)| {
                facts::elder(id, grid, &risk, days, consents, registered)
            })
            .collect::<Result<_, _>>()?,
        volunteers: volunteers
            .into_iter()
            .map(|(id, grid, registered)| facts::volunteer(id, grid, registered))
            .collect(),
        pairings: pairings
            .into_iter()
            .map(|(volunteer, elder, started, ended)| {
                facts::pairing(volunteer, elder, started, ended)
            })
            .collect(),
        visits: visits
            .into_iter()
            .map(
                |(elder, volunteer, kind, at, wellbeing, far, filing, complaint)| {
                    facts::visit(
                        elder,
                        volunteer,
                        &kind,
                        at,
                        &wellbeing,
                        far,
                        filing.as_deref(),
                        complaint,
                    )
                },
            )
            .collect::<Result<_, _>>()?,
        outcomes: outcomes
            .into_iter()
            .map(|(reference, kind, at)| facts::outcome(reference, &kind, at))
            .collect::<Result<_, _>>()?,
    })
}
