//! The grid organisation (四级网格): communities, their grids with a grid worker and
//! buildings, and who answers at each of the four escalation levels. It is data
//! the operator loads and replaces, never code.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::kinds::Level;
use super::{BuildingId, CommunityId, FieldError, GridId, fields};

/// The organisation is the contract's message itself (`shequ.complaints.v1`):
/// the district's handler and its communities; each community's grids with
/// their worker (网格员), branch handler (网格党支部) and buildings. It is not
/// mirrored here (its ids are the message's text); the rules over it are,
/// and what they hand on ([`Chain`]) holds typed ids.
pub use shequ_proto::complaints::v1::{Community, Grid, Organisation};

/// Checks every id and handler of `organisation` (handlers are account ids,
/// never a person's name), that no id is used twice and that every part of
/// the district stays routable: at least one community, and a grid (with its
/// worker) in each. Errors name the field as `communities[0].grids[1].worker`.
pub fn validate(organisation: Organisation) -> Result<Organisation, FieldError> {
    fields::account(
        "organisation.district_handler",
        &organisation.district_handler,
    )?;
    if organisation.communities.is_empty() {
        return Err(FieldError::new(
            "organisation.communities",
            "must hold at least one community: without one no complaint can be routed",
        ));
    }
    let mut community_ids = HashSet::new();
    let mut grid_ids = HashSet::new();
    let mut building_ids = HashSet::new();
    for (c, community) in organisation.communities.iter().enumerate() {
        let at = format!("organisation.communities[{c}]");
        unique(
            &mut community_ids,
            &format!("{at}.id"),
            &community.id,
            CommunityId::parse,
        )?;
        fields::required(&format!("{at}.name"), &community.name, fields::SHORT_TEXT)?;
        fields::account(
            &format!("{at}.committee_handler"),
            &community.committee_handler,
        )?;
        if community.grids.is_empty() {
            return Err(FieldError::new(
                format!("{at}.grids"),
                "must hold at least one grid: without one the community's complaints cannot be routed",
            ));
        }
        for (g, grid) in community.grids.iter().enumerate() {
            let at = format!("{at}.grids[{g}]");
            unique(&mut grid_ids, &format!("{at}.id"), &grid.id, GridId::parse)?;
            fields::required(&format!("{at}.name"), &grid.name, fields::SHORT_TEXT)?;
            fields::account(&format!("{at}.worker"), &grid.worker)?;
            fields::account(&format!("{at}.branch_handler"), &grid.branch_handler)?;
            for (b, building) in grid.building_ids.iter().enumerate() {
                unique(
                    &mut building_ids,
                    &format!("{at}.building_ids[{b}]"),
                    building,
                    BuildingId::parse,
                )?;
            }
        }
    }
    Ok(organisation)
}

/// Parses `raw` in `field` as an id (`parse`), which must be as written (not
/// trimmed) and not in `seen` yet.
fn unique<Id: Eq + Hash + AsRef<str>>(
    seen: &mut HashSet<Id>,
    field: &str,
    raw: &str,
    parse: fn(&str, &str) -> Result<Id, FieldError>,
) -> Result<(), FieldError> {
    let id = parse(field, raw)?;
    if id.as_ref() != raw {
        return Err(FieldError::new(field, "must not start or end with spaces"));
    }
    if !seen.insert(id) {
        return Err(FieldError::new(field, format!("id {raw:?} is used twice")));
    }
    Ok(())
}

/// Who answers for one grid at each level, as the organisation stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub community_id: CommunityId,
    pub grid_id: GridId,
    pub worker: String,
    pub branch_handler: String,
    pub committee_handler: String,
    pub district_handler: String,
}

impl Chain {
    /// The handler a complaint at `level` is assigned to.
    pub fn handler(&self, level: Level) -> &str {
        match level {
            Level::GridWorker => &self.worker,
            Level::GridBranch => &self.branch_handler,
            Level::CommunityCommittee => &self.committee_handler,
            Level::District => &self.district_handler,
        }
    }
}

/// Where complaints go, from the organisation as it stands (as stored,
/// validated when it was loaded): each grid's [`Chain`], and the grid of each
/// building.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    chains: HashMap<GridId, Chain>,
    buildings: HashMap<BuildingId, GridId>,
}

/// Why a complaint could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("grid {0} not found")]
    UnknownGrid(GridId),
    #[error("building {0} not found")]
    UnknownBuilding(BuildingId),
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl Routing {
    pub fn new(organisation: &Organisation) -> Self {
        let mut routing = Self::default();
        for community in &organisation.communities {
            for grid in &community.grids {
                let grid_id = GridId::from_stored(grid.id.clone());
                for building in &grid.building_ids {
                    routing
                        .buildings
                        .insert(BuildingId::from_stored(building.clone()), grid_id.clone());
                }
                let chain = Chain {
                    community_id: CommunityId::from_stored(community.id.clone()),
                    grid_id: grid_id.clone(),
                    worker: grid.worker.clone(),
                    branch_handler: grid.branch_handler.clone(),
                    committee_handler: community.committee_handler.clone(),
                    district_handler: organisation.district_handler.clone(),
                };
                routing.chains.insert(grid_id, chain);
            }
        }
        routing
    }

    /// The chain of the grid a complaint is in: by building (which names its
    /// grid) or by grid; both given must agree.
    pub fn route(
        &self,
        grid_id: Option<&GridId>,
        building_id: Option<&BuildingId>,
    ) -> Result<&Chain, RouteError> {
        let grid = match (building_id, grid_id) {
            (Some(building), asked) => {
                let grid = self
                    .buildings
                    .get(building)
                    .ok_or_else(|| RouteError::UnknownBuilding(building.clone()))?;
                if let Some(asked) = asked
                    && asked != grid
                {
                    return Err(FieldError::new(
                        "building_id",
                        format!("building {building} is in grid {grid}, not {asked}"),
                    )
                    .into());
                }
                grid
            }
            (None, Some(grid)) => grid,
            (None, None) => {
                return Err(
                    FieldError::new("grid_id", "a grid_id or a building_id is required").into(),
                );
            }
        };
        self.chains
            .get(grid)
            .ok_or_else(|| RouteError::UnknownGrid(grid.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(id: &str) -> GridId {
        GridId::from_stored(id)
    }

    fn building(id: &str) -> BuildingId {
        BuildingId::from_stored(id)
    }

    #[test]
    fn routing_goes_by_building_or_grid_and_both_must_agree() {
        let routing = Routing::new(&organisation());
        let by_grid = routing
            .route(Some(&grid("xinyuan-g1")), None)
            .map(|c| c.worker.clone());
        assert_eq!(by_grid, Ok("worker-li".to_owned()));
        let by_building = routing
            .route(None, Some(&building("b1")))
            .map(|c| c.grid_id.clone());
        assert_eq!(by_building, Ok(grid("xinyuan-g1")));
        let chain = routing.route(Some(&grid("xinyuan-g1")), Some(&building("b1")));
        assert_eq!(
            chain.map(|c| c.district_handler.as_str()),
            Ok("jinshui-office")
        );
        assert!(matches!(
            routing.route(Some(&grid("xinyuan-g9")), Some(&building("b1"))),
            Err(RouteError::Field(error)) if error.field == "building_id"
        ));
        assert_eq!(
            routing.route(None, Some(&building("nowhere"))),
            Err(RouteError::UnknownBuilding(building("nowhere")))
        );
        assert_eq!(
            routing.route(Some(&grid("nowhere")), None),
            Err(RouteError::UnknownGrid(grid("nowhere")))
        );
        assert!(matches!(
            routing.route(None, None),
            Err(RouteError::Field(error)) if error.field == "grid_id"
        ));
    }

    fn organisation() -> Organisation {
        Organisation {
            district_handler: "jinshui-office".into(),
            communities: vec![Community {
                id: "xinyuan".into(),
                name: "鑫苑社区".into(),
                committee_handler: "xinyuan-committee".into(),
                grids: vec![Grid {
                    id: "xinyuan-g1".into(),
                    name: "第一网格".into(),
                    worker: "worker-li".into(),
                    branch_handler: "branch-wang".into(),
                    building_ids: vec!["b1".into(), "b2".into()],
                }],
            }],
        }
    }

    #[test]
    fn a_well_formed_organisation_is_accepted() {
        assert!(validate(organisation()).is_ok());
    }

    #[test]
    fn a_building_in_two_grids_is_refused_naming_where() {
        let mut org = organisation();
        let mut second = org.communities[0].grids[0].clone();
        second.id = "xinyuan-g2".into();
        second.building_ids = vec!["b2".into()];
        org.communities[0].grids.push(second);
        let error = validate(org).unwrap_err();
        assert_eq!(
            error.field,
            "organisation.communities[0].grids[1].building_ids[0]"
        );
    }

    #[test]
    fn an_id_with_surrounding_spaces_is_refused() {
        let mut org = organisation();
        org.communities[0].id = " xinyuan".into();
        assert_eq!(
            validate(org).unwrap_err().field,
            "organisation.communities[0].id"
        );
    }

    #[test]
    fn a_grid_without_a_worker_is_refused() {
        let mut org = organisation();
        org.communities[0].grids[0].worker = " ".into();
        assert_eq!(
            validate(org).unwrap_err().field,
            "organisation.communities[0].grids[0].worker"
        );
    }

    #[test]
    fn an_organisation_that_leaves_the_district_unroutable_is_refused() {
        let mut none = organisation();
        none.communities.clear();
        assert_eq!(
            validate(none).unwrap_err().field,
            "organisation.communities"
        );

        let mut gridless = organisation();
        gridless.communities[0].grids.clear();
        assert_eq!(
            validate(gridless).unwrap_err().field,
            "organisation.communities[0].grids"
        );
    }

    #[test]
    fn a_handler_is_an_account_id_not_a_name() {
        let mut org = organisation();
        org.communities[0].grids[0].worker = "李四".into();
        assert_eq!(
            validate(org).unwrap_err().field,
            "organisation.communities[0].grids[0].worker"
        );
    }

    #[test]
    fn each_level_has_its_own_handler() {
        let chain = Chain {
            community_id: CommunityId::from_stored("c"),
            grid_id: grid("g"),
            worker: "w".into(),
            branch_handler: "b".into(),
            committee_handler: "c".into(),
            district_handler: "d".into(),
        };
        let handlers: Vec<&str> = [
            Level::GridWorker,
            Level::GridBranch,
            Level::CommunityCommittee,
            Level::District,
        ]
        .into_iter()
        .map(|level| chain.handler(level))
        .collect();
        assert_eq!(handlers, ["w", "b", "c", "d"]);
    }
}
