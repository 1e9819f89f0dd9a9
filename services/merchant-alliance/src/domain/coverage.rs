//! Circle coverage (一刻钟便民生活圈覆盖): for each basic service
//! ([`basic_services`](super::basic_services)), whether an active merchant
//! offering it lies within a 15-minute walk of each building of a grid, the
//! nearest one and how far; a grid is covered for a service when every one
//! of its buildings is reached.
//!
//! A walk is the straight-line distance ([`distance_metres`], as the circle's
//! search counts it) at the service's walking speed. Opening hours are not
//! considered: coverage is about what is within reach, not what is open this
//! minute. Which merchants are active is the store's to say (suspended ones
//! are not handed over).
//!
//! The search is indexed, not a scan of every merchant for every building:
//! [`Circle`] buckets each service's merchants by a latitude/longitude grid of
//! cells an eighth of the walk wide, and looks for a building's nearest in
//! rings of cells outwards from the building's own, stopping as soon as no
//! cell further out can hold a merchant nearer than the best found (or within
//! the walk at all). The bound it stops on is a true lower bound of the
//! great-circle distance, so the answer is the brute-force one exactly: the
//! nearest within the walk, ties to the smaller merchant id (the unit tests
//! compare the two on random districts).
//!
//! [`changes`] compares a computed district with the state last published
//! (one row per grid and service) and says which rows change and which
//! flips (gained, lost) are announced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::basic_services::{BasicService, BasicServices, index};
use super::geo::{BoundingBox, EARTH_RADIUS_METRES, METRES_PER_DEGREE, Point, distance_metres};
use super::merchant::{Category, ServiceTag};
use super::{BuildingId, GridId, MerchantId};

/// The walk coverage counts: the guide's quarter of an hour (一刻钟).
pub const WALK_MINUTES: u32 = 15;

/// Cells per walk radius: small enough that a building's nearest merchant is
/// usually found in the first ring or two, large enough that an empty
/// neighbourhood costs a few hundred look-ups.
const CELLS_PER_RADIUS: f64 = 8.0;

/// Rings searched at most (never reached with a sane walk and area: the bound
/// passes the walk after about [`CELLS_PER_RADIUS`] rings).
const MAX_RINGS: i64 = 10_000;

/// A building's point, as loaded (`LoadBuildings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    pub id: BuildingId,
    pub grid_id: GridId,
    /// WGS-84.
    pub point: Point,
}

/// An active merchant, as coverage reads it: only what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CircleMerchant {
    pub id: MerchantId,
    pub name: String,
    pub category: Category,
    pub service_tags: Vec<ServiceTag>,
    /// WGS-84.
    pub location: Point,
}

/// A building's nearest merchant for a service, within the walk.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    pub merchant_id: MerchantId,
    pub merchant_name: String,
    pub distance_metres: f64,
}

/// One building's nearest merchant for each basic service.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildingCoverage {
    pub building_id: BuildingId,
    /// Per service, in [`BasicService::ALL`] order; `None`: none within the walk.
    pub nearest: Vec<Option<Nearest>>,
}

/// One basic service over the buildings of a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct KindCoverage {
    pub kind: BasicService,
    /// Buildings with a merchant of the service within the walk.
    pub buildings_reached: u32,
    /// Every building (at least one) is reached.
    pub covered: bool,
    /// The reached building whose nearest merchant is furthest, and that
    /// merchant (ties: the first building by id); `None` when none is reached.
    pub longest: Option<(BuildingId, Nearest)>,
}

/// One grid's coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCoverage {
    pub grid_id: GridId,
    /// By building id.
    pub buildings: Vec<BuildingCoverage>,
    /// Per service, in [`BasicService::ALL`] order.
    pub kinds: Vec<KindCoverage>,
}

impl GridCoverage {
    pub fn building_count(&self) -> u32 {
        count(self.buildings.len())
    }

    /// Some service does not reach every building.
    pub fn has_gap(&self) -> bool {
        self.kinds.iter().any(|kind| !kind.covered)
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The merchants of each basic service, bucketed by cell, to find a point's
/// nearest within the walk.
#[derive(Debug)]
pub struct Circle<'a> {
    merchants: &'a [CircleMerchant],
    radius_metres: f64,
    /// Cell height and width, degrees.
    cell_latitude: f64,
    cell_longitude: f64,
    /// Per service: cell → indices into `merchants`.
    cells: Vec<HashMap<(i64, i64), Vec<usize>>>,
}

impl<'a> Circle<'a> {
    /// The index of `merchants` for a walk of `radius_metres` (positive).
    pub fn new(
        merchants: &'a [CircleMerchant],
        services: &BasicServices,
        radius_metres: f64,
    ) -> Self {
        let cell_metres = radius_metres / CELLS_PER_RADIUS;
        // Any latitude would do for correctness; the merchants' own keeps
        // the cells about square.
        let reference = merchants.first().map_or(0.0, |m| m.location.latitude);
        let cos = reference.to_radians().cos().max(0.01);
        let mut circle = Self {
            merchants,
            radius_metres,
            cell_latitude: cell_metres / METRES_PER_DEGREE,
            cell_longitude: cell_metres / (METRES_PER_DEGREE * cos),
            cells: vec![HashMap::new(); BasicService::ALL.len()],
        };
        for (i, merchant) in merchants.iter().enumerate() {
            let kinds = services.served_by(merchant.category, &merchant.service_tags);
            if kinds.is_empty() {
                continue;
            }
            let cell = circle.cell_of(merchant.location);
            for kind in BasicService::ALL {
                if kinds.contains(*kind) {
                    circle.cells[index(*kind)].entry(cell).or_default().push(i);
                }
            }
        }
        circle
    }

    fn cell_of(&self, p: Point) -> (i64, i64) {
        (
            (p.latitude / self.cell_latitude).floor() as i64,
            (p.longitude / self.cell_longitude).floor() as i64,
        )
    }

    /// The nearest merchant of `kind` within the walk of `at` (its index in
    /// the merchants and its distance): the smallest distance, ties to the
    /// smaller merchant id.
    pub fn nearest(&self, at: Point, kind: BasicService) -> Option<(usize, f64)> {
        let cells = &self.cells[index(kind)];
        if cells.is_empty() {
            return None;
        }
        let (row, column) = self.cell_of(at);
        let mut best: Option<(usize, f64)> = None;
        for ring in 0..MAX_RINGS {
            for cell in ring_cells(row, column, ring) {
                for &i in cells.get(&cell).map_or(&[][..], Vec::as_slice) {
                    let distance = distance_metres(at, self.merchants[i].location);
                    if distance <= self.radius_metres && self.better(i, distance, best) {
                        best = Some((i, distance));
                    }
                }
            }
            let limit = best.map_or(self.radius_metres, |(_, d)| d);
            if self.beyond(at, row, column, ring, limit) > limit {
                break;
            }
        }
        best
    }

    fn better(&self, i: usize, distance: f64, best: Option<(usize, f64)>) -> bool {
        match best {
            None => true,
            Some((j, d)) => {
                distance < d || (distance == d && self.merchants[i].id < self.merchants[j].id)
            }
        }
    }

    /// A lower bound of the distance from `at` of any point outside the
    /// block of cells within `ring` of (`row`, `column`) that is at most
    /// `limit` metres away: such a point lies beyond the block's latitude
    /// edges (a great circle is at least as long as the difference of
    /// latitudes) or beyond its longitude edges (with its latitude within
    /// `limit` of `at`'s).
    fn beyond(&self, at: Point, row: i64, column: i64, ring: i64, limit: f64) -> f64 {
        // A hair (0.1 mm) for the rounding of the cell edges.
        const SLACK: f64 = 1e-9;
        let south = (row - ring) as f64 * self.cell_latitude;
        let north = (row + ring + 1) as f64 * self.cell_latitude;
        let gap_latitude = ((at.latitude - south).min(north - at.latitude) - SLACK).max(0.0);
        let west = (column - ring) as f64 * self.cell_longitude;
        let east = (column + ring + 1) as f64 * self.cell_longitude;
        let gap_longitude = ((at.longitude - west).min(east - at.longitude) - SLACK).max(0.0);
        let by_latitude = EARTH_RADIUS_METRES * gap_latitude.to_radians();
        let latitude = at.latitude.to_radians();
        let furthest =
            (latitude.abs() + limit / EARTH_RADIUS_METRES).min(std::f64::consts::FRAC_PI_2);
        let spread = (latitude.cos() * furthest.cos()).max(0.0).sqrt()
            * (gap_longitude.to_radians() / 2.0)
                .min(std::f64::consts::FRAC_PI_2)
                .sin();
        let by_longitude = 2.0 * EARTH_RADIUS_METRES * spread.min(1.0).asin();
        by_latitude.min(by_longitude) * (1.0 - 1e-9)
    }
}

/// The cells exactly `ring` steps (in the larger of rows and columns) from
/// (`row`, `column`).
fn ring_cells(row: i64, column: i64, ring: i64) -> impl Iterator<Item = (i64, i64)> {
    let top_and_bottom = (column - ring..=column + ring).flat_map(move |c| {
        let rows = if ring == 0 {
            vec![row]
        } else {
            vec![row - ring, row + ring]
        };
        rows.into_iter().map(move |r| (r, c))
    });
    let sides = (row - ring + 1..row + ring).flat_map(move |r| {
        let columns = if ring == 0 {
            vec![]
        } else {
            vec![column - ring, column + ring]
        };
        columns.into_iter().map(move |c| (r, c))
    });
    top_and_bottom.chain(sides)
}

/// The coverage of every grid of `buildings` by `merchants` (the active
/// ones) within `radius_metres`: grids with a gap first, then by grid id.
pub fn coverage(
    buildings: &[Building],
    merchants: &[CircleMerchant],
    services: &BasicServices,
    radius_metres: f64,
) -> Vec<GridCoverage> {
    let circle = Circle::new(merchants, services, radius_metres);
    let mut grids: BTreeMap<&GridId, Vec<&Building>> = BTreeMap::new();
    for building in buildings {
        grids.entry(&building.grid_id).or_default().push(building);
    }
    let mut answer: Vec<GridCoverage> = grids
        .into_iter()
        .map(|(grid_id, mut buildings)| {
            buildings.sort_by(|a, b| a.id.cmp(&b.id));
            grid(&circle, grid_id, &buildings)
        })
        .collect();
    answer.sort_by(|a, b| {
        b.has_gap()
            .cmp(&a.has_gap())
            .then_with(|| a.grid_id.cmp(&b.grid_id))
    });
    answer
}

fn grid(circle: &Circle<'_>, grid_id: &GridId, buildings: &[&Building]) -> GridCoverage {
    let buildings: Vec<BuildingCoverage> = buildings
        .iter()
        .map(|building| BuildingCoverage {
            building_id: building.id.clone(),
            nearest: BasicService::ALL
                .iter()
                .map(|kind| {
                    circle.nearest(building.point, *kind).map(|(i, distance)| {
                        let merchant = &circle.merchants[i];
                        Nearest {
                            merchant_id: merchant.id.clone(),
                            merchant_name: merchant.name.clone(),
                            distance_metres: distance,
                        }
                    })
                })
                .collect(),
        })
        .collect();
    let kinds = BasicService::ALL
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            let mut reached = 0;
            let mut longest: Option<(BuildingId, Nearest)> = None;
            for building in &buildings {
                let Some(nearest) = &building.nearest[k] else {
                    continue;
                };
                reached += 1;
                if longest
                    .as_ref()
                    .is_none_or(|(_, l)| nearest.distance_metres > l.distance_metres)
                {
                    longest = Some((building.building_id.clone(), nearest.clone()));
                }
            }
            KindCoverage {
                kind: *kind,
                buildings_reached: reached,
                covered: reached > 0 && reached == count(buildings.len()),
                longest,
            }
        })
        .collect();
    GridCoverage {
        grid_id: grid_id.clone(),
        buildings,
        kinds,
    }
}

/// The box holding every point within `radius_metres` of some building: the
/// merchants a scoped coverage needs lie in it. `None` for no buildings.
pub fn reach(buildings: &[Building], radius_metres: f64) -> Option<BoundingBox> {
    buildings
        .iter()
        .map(|b| BoundingBox::around(b.point, radius_metres))
        .reduce(|a, b| BoundingBox {
            min_latitude: a.min_latitude.min(b.min_latitude),
            max_latitude: a.max_latitude.max(b.max_latitude),
            min_longitude: a.min_longitude.min(b.min_longitude),
            max_longitude: a.max_longitude.max(b.max_longitude),
        })
}

/// One grid and service as published: whether covered, and the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindState {
    pub grid_id: GridId,
    pub kind: BasicService,
    pub covered: bool,
    pub buildings_reached: u32,
    pub buildings: u32,
}

/// What happened since the coverage was last applied, as far as this
/// replica knows: which merchants changed, and whether buildings were loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    pub merchants: BTreeSet<MerchantId>,
    pub buildings_loaded: bool,
}

impl Trigger {
    /// The one merchant whose change alone led here.
    fn single_merchant(&self) -> Option<&MerchantId> {
        match (self.buildings_loaded, self.merchants.len()) {
            (false, 1) => self.merchants.first(),
            _ => None,
        }
    }
}

/// A row of the published state to write (or, `removed`, to delete), and
/// whether it flips (an event: gained when `state.covered`, else lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub state: KindState,
    pub flipped: bool,
    pub removed: bool,
    /// For a flip: the merchant that caused it, when the trigger names one
    /// merchant alone (and, for a gain, that merchant now reaches one of the
    /// grid's buildings as its nearest).
    pub merchant_id: Option<MerchantId>,
}

/// The changes that bring the `stored` state to the `computed` district's:
/// a row for every grid and service whose state differs (a grid and service
/// without a row is not covered), and the rows of grids no longer loaded
/// removed (a flip, lost, for a service they had). In grid, then service order.
pub fn changes(stored: &[KindState], computed: &[GridCoverage], trigger: &Trigger) -> Vec<Change> {
    let mut before: BTreeMap<(&GridId, usize), &KindState> = stored
        .iter()
        .map(|state| ((&state.grid_id, index(state.kind)), state))
        .collect();
    let mut changes = Vec::new();
    let mut grids: Vec<&GridCoverage> = computed.iter().collect();
    grids.sort_by(|a, b| a.grid_id.cmp(&b.grid_id));
    for grid in grids {
        for (k, kind) in grid.kinds.iter().enumerate() {
            let state = KindState {
                grid_id: grid.grid_id.clone(),
                kind: kind.kind,
                covered: kind.covered,
                buildings_reached: kind.buildings_reached,
                buildings: grid.building_count(),
            };
            let old = before.remove(&(&grid.grid_id, k));
            if old == Some(&state) {
                continue;
            }
            let flipped = old.is_some_and(|old| old.covered) != state.covered;
            let merchant_id = match (flipped, trigger.single_merchant()) {
                (true, Some(merchant)) if !state.covered || reaches(grid, k, merchant) => {
                    Some(merchant.clone())
                }
                _ => None,
            };
            changes.push(Change {
                state,
                flipped,
                removed: false,
                merchant_id,
            });
        }
    }
    for (_, old) in before {
        changes.push(Change {
            state: KindState {
                covered: false,
                buildings_reached: 0,
                buildings: 0,
                ..old.clone()
            },
            flipped: old.covered,
            removed: true,
            merchant_id: None,
        });
    }
    changes.sort_by(|a, b| {
        a.state
            .grid_id
            .cmp(&b.state.grid_id)
            .then_with(|| index(a.state.kind).cmp(&index(b.state.kind)))
    });
    changes
}

/// Whether `merchant` is the nearest of service `k` for some building of `grid`.
fn reaches(grid: &GridCoverage, k: usize, merchant: &MerchantId) -> bool {
    grid.buildings.iter().any(|b| {
        b.nearest[k]
            .as_ref()
            .is_some_and(|n| &n.merchant_id == merchant)
    })
}

#[cfg(test)]
mod tests {
    use super::super::basic_services::DEFAULT_JSON;
    use super::super::geo::destination;
    use super::*;

    const RADIUS: f64 = 1200.0;
    const CENTRE: Point = Point {
        latitude: 34.80,
        longitude: 113.66,
    };

    /// A tiny linear congruential generator, so the property tests repeat.
    struct Lcg(u64);

    impl Lcg {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn below(&mut self, n: usize) -> usize {
            (self.unit() * n as f64) as usize % n
        }
    }

    fn services() -> BasicServices {
        BasicServices::from_json(DEFAULT_JSON).unwrap()
    }

    fn tag(t: &str) -> ServiceTag {
        ServiceTag::parse("tag", t).unwrap()
    }

    fn merchant(id: &str, category: Category, tags: &[&str], at: Point) -> CircleMerchant {
        CircleMerchant {
            id: MerchantId::from_stored(id),
            name: format!("商户 {id}"),
            category,
            service_tags: tags.iter().map(|t| tag(t)).collect(),
            location: at,
        }
    }

    fn building(id: &str, grid: &str, at: Point) -> Building {
        Building {
            id: BuildingId::from_stored(id),
            grid_id: GridId::from_stored(grid),
            point: at,
        }
    }

    /// `metres` from the centre towards `bearing` degrees.
    fn at(bearing: f64, metres: f64) -> Point {
        destination(CENTRE, bearing.to_radians(), metres)
    }

    /// The nearest by looking at every merchant.
    fn brute_force(
        merchants: &[CircleMerchant],
        services: &BasicServices,
        point: Point,
        kind: BasicService,
    ) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, m) in merchants.iter().enumerate() {
            if !services
                .served_by(m.category, &m.service_tags)
                .contains(kind)
            {
                continue;
            }
            let d = distance_metres(point, m.location);
            if d > RADIUS {
                continue;
            }
            let better = match best {
                None => true,
                Some((j, bd)) => d < bd || (d == bd && m.id < merchants[j].id),
            };
            if better {
                best = Some((i, d));
            }
        }
        best
    }

    /// A random district: merchants of every category and some tags,
    /// clusters sharing a point (ties), merchants on and about the walk's
    /// edge from the buildings (boundaries).
    fn district(
        seed: u64,
        merchants: usize,
        buildings: usize,
    ) -> (Vec<CircleMerchant>, Vec<Building>) {
        let mut random = Lcg(seed);
        let categories = Category::ALL;
        let tags = [
            "convenience_store",
            "breakfast",
            "pharmacy",
            "day_care",
            "home_repair",
            "takeaway",
        ];
        // Buildings spread wider than the merchants: the outer ones are not reached.
        let point = |random: &mut Lcg, metres: f64| {
            at(random.unit() * 360.0, random.unit().sqrt() * metres)
        };
        let built: Vec<Building> = (0..buildings)
            .map(|i| {
                let p = point(&mut random, 8000.0);
                building(&format!("b-{i:04}"), &format!("grid-{:02}", i % 25), p)
            })
            .collect();
        let mut list = Vec::new();
        for i in 0..merchants {
            let category = categories[random.below(categories.len())];
            let mut chosen = Vec::new();
            if random.unit() < 0.2 {
                chosen.push(tags[random.below(tags.len())]);
            }
            let location = match random.below(10) {
                // On the edge of a building's walk, just inside or outside.
                0 => {
                    let b = &built[random.below(built.len())];
                    let edge = [
                        RADIUS,
                        RADIUS * (1.0 - 1e-12),
                        RADIUS * (1.0 + 1e-12),
                        RADIUS - 0.5,
                        RADIUS + 0.5,
                    ];
                    destination(
                        b.point,
                        random.unit() * std::f64::consts::TAU,
                        edge[random.below(edge.len())],
                    )
                }
                // Where another merchant already is: a tie.
                1 if !list.is_empty() => {
                    let other: &CircleMerchant = &list[random.below(list.len())];
                    other.location
                }
                _ => point(&mut random, 4000.0),
            };
            // Ids not in location order, so ties are broken by id, not by chance.
            list.push(merchant(
                &format!("m-{:05}", (i * 7919) % 100_003),
                category,
                &chosen,
                location,
            ));
        }
        (list, built)
    }

    #[test]
    fn the_indexed_nearest_is_the_brute_force_nearest_on_random_districts() {
        let services = services();
        for seed in [1, 2, 2026] {
            let (merchants, buildings) = district(seed, 3000, 300);
            let circle = Circle::new(&merchants, &services, RADIUS);
            let mut reached = 0;
            for b in &buildings {
                for kind in BasicService::ALL {
                    let indexed = circle.nearest(b.point, *kind);
                    let brute = brute_force(&merchants, &services, b.point, *kind);
                    assert_eq!(indexed, brute, "seed {seed}, {:?}, {kind:?}", b.id);
                    reached += usize::from(brute.is_some());
                }
            }
            assert!(
                reached > 300 && reached < 6 * 300,
                "a mix of reached and not: {reached}"
            );
        }
    }

    #[test]
    fn sparse_districts_and_far_buildings_agree_with_the_brute_force_too() {
        let services = services();
        let (merchants, buildings) = district(7, 40, 200);
        let circle = Circle::new(&merchants, &services, RADIUS);
        for b in &buildings {
            for kind in BasicService::ALL {
                assert_eq!(
                    circle.nearest(b.point, *kind),
                    brute_force(&merchants, &services, b.point, *kind)
                );
            }
        }
        let none = Circle::new(&[], &services, RADIUS);
        assert_eq!(none.nearest(CENTRE, BasicService::Repair), None);
    }

    #[test]
    fn a_tie_goes_to_the_smaller_merchant_id_and_the_edge_of_the_walk_counts() {
        let services = services();
        let edge = at(90.0, RADIUS);
        let exact = distance_metres(CENTRE, edge);
        let merchants = vec![
            merchant("m-2", Category::Repair, &[], at(0.0, 300.0)),
            merchant("m-1", Category::Repair, &[], at(0.0, 300.0)),
            merchant("m-9", Category::Health, &[], edge),
            merchant("m-8", Category::Health, &[], at(90.0, RADIUS + 0.01)),
        ];
        let circle = Circle::new(&merchants, &services, exact);
        let (i, _) = circle.nearest(CENTRE, BasicService::Repair).unwrap();
        assert_eq!(merchants[i].id, "m-1");
        let (i, d) = circle
            .nearest(CENTRE, BasicService::PharmacyHealth)
            .unwrap();
        assert_eq!(
            (merchants[i].id.as_str(), d),
            ("m-9", exact),
            "on the edge is within"
        );
        let beyond = Circle::new(&merchants, &services, exact - 1e-6);
        assert_eq!(beyond.nearest(CENTRE, BasicService::PharmacyHealth), None);
    }

    #[test]
    fn a_grid_counts_its_buildings_per_service_with_the_longest_walk() {
        let services = services();
        let merchants = vec![
            merchant("grocer", Category::Grocery, &[], at(0.0, 100.0)),
            merchant(
                "kiosk",
                Category::Other,
                &["convenience_store"],
                at(180.0, 800.0),
            ),
            merchant("canteen", Category::Dining, &[], at(0.0, 50.0)),
        ];
        let buildings = vec![
            building("b-2", "g-full", at(180.0, 400.0)),
            building("b-1", "g-full", CENTRE),
            building("b-3", "g-gap", at(0.0, 2000.0)),
        ];
        let grids = coverage(&buildings, &merchants, &services, RADIUS);
        let ids: Vec<&str> = grids.iter().map(|g| g.grid_id.as_str()).collect();
        assert_eq!(
            ids,
            ["g-full", "g-gap"],
            "both have gaps (no repair): by id"
        );
        let full = &grids[0];
        assert_eq!(full.building_count(), 2);
        let groceries = &full.kinds[index(BasicService::GroceriesFreshFood)];
        assert_eq!((groceries.buildings_reached, groceries.covered), (2, true));
        let (building_id, longest) = groceries.longest.clone().unwrap();
        // b-1: the grocer, 100 m; b-2: the kiosk, 400 m (the grocer is 500 m away).
        assert_eq!(building_id, "b-2");
        assert_eq!(longest.merchant_id, "kiosk");
        assert!((longest.distance_metres - 400.0).abs() < 1.0, "{longest:?}");
        assert_eq!(full.buildings[0].building_id, "b-1", "buildings by id");
        let repair = &full.kinds[index(BasicService::Repair)];
        assert_eq!(
            (
                repair.buildings_reached,
                repair.covered,
                repair.longest.is_none()
            ),
            (0, false, true)
        );
        let gap = &grids[1];
        let dining = &gap.kinds[index(BasicService::BreakfastDining)];
        assert_eq!((dining.buildings_reached, dining.covered), (0, false));
    }

    #[test]
    fn grids_with_a_gap_come_first() {
        let services = services();
        let everything: Vec<CircleMerchant> = Category::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| merchant(&format!("m-{i}"), *c, &[], at(45.0, 10.0 * i as f64)))
            .collect();
        let buildings = vec![
            building("a-1", "a-served", CENTRE),
            building("z-1", "z-gap", at(0.0, 5000.0)),
            building("m-1", "m-served", at(10.0, 20.0)),
        ];
        let grids = coverage(&buildings, &everything, &services, RADIUS);
        let order: Vec<(&str, bool)> = grids
            .iter()
            .map(|g| (g.grid_id.as_str(), g.has_gap()))
            .collect();
        assert_eq!(
            order,
            [("z-gap", true), ("a-served", false), ("m-served", false)]
        );
    }

    #[test]
    fn the_grid_aggregates_agree_with_counting_by_hand_on_a_random_district() {
        let services = services();
        let (merchants, buildings) = district(11, 2000, 250);
        for grid in coverage(&buildings, &merchants, &services, RADIUS) {
            let mine: Vec<&Building> = buildings
                .iter()
                .filter(|b| b.grid_id == grid.grid_id)
                .collect();
            assert_eq!(grid.building_count() as usize, mine.len());
            for (k, kind) in BasicService::ALL.iter().enumerate() {
                let nearest: Vec<Option<(usize, f64)>> = mine
                    .iter()
                    .map(|b| brute_force(&merchants, &services, b.point, *kind))
                    .collect();
                let reached = nearest.iter().flatten().count() as u32;
                let summary = &grid.kinds[k];
                assert_eq!(summary.buildings_reached, reached);
                assert_eq!(summary.covered, reached as usize == mine.len());
                let longest = nearest
                    .iter()
                    .flatten()
                    .map(|(_, d)| *d)
                    .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
                assert_eq!(
                    summary.longest.as_ref().map(|(_, n)| n.distance_metres),
                    longest
                );
            }
        }
    }

    fn state(
        grid: &str,
        kind: BasicService,
        covered: bool,
        reached: u32,
        buildings: u32,
    ) -> KindState {
        KindState {
            grid_id: GridId::from_stored(grid),
            kind,
            covered,
            buildings_reached: reached,
            buildings,
        }
    }

    fn one_building_grid(grid: &str, merchants: &[CircleMerchant]) -> Vec<GridCoverage> {
        coverage(
            &[building(&format!("{grid}-b1"), grid, CENTRE)],
            merchants,
            &services(),
            RADIUS,
        )
    }

    #[test]
    fn a_new_grid_gains_what_it_has_and_records_the_rest_without_a_flip() {
        let computed = one_building_grid("g", &[merchant("m-1", Category::Repair, &[], CENTRE)]);
        let changes = changes(&[], &computed, &Trigger::default());
        assert_eq!(changes.len(), 6, "a row per service");
        let flips: Vec<(BasicService, bool)> = changes
            .iter()
            .filter(|c| c.flipped)
            .map(|c| (c.state.kind, c.state.covered))
            .collect();
        assert_eq!(flips, [(BasicService::Repair, true)]);
        assert!(
            changes
                .iter()
                .all(|c| !c.removed && c.merchant_id.is_none())
        );
    }

    #[test]
    fn nothing_changes_when_the_state_is_what_was_stored() {
        let computed = one_building_grid("g", &[merchant("m-1", Category::Repair, &[], CENTRE)]);
        let stored: Vec<KindState> = changes(&[], &computed, &Trigger::default())
            .into_iter()
            .map(|c| c.state)
            .collect();
        assert_eq!(changes(&stored, &computed, &Trigger::default()), []);
    }

    #[test]
    fn a_flip_names_the_one_merchant_behind_it() {
        let repairer = merchant("m-1", Category::Repair, &[], CENTRE);
        let stored = vec![state("g", BasicService::Repair, true, 1, 1)];
        let cause = Trigger {
            merchants: BTreeSet::from([repairer.id.clone()]),
            buildings_loaded: false,
        };
        // Suspended: it is no longer handed over, and the grid loses repair.
        let lost = changes(&stored, &one_building_grid("g", &[]), &cause);
        let repair = lost
            .iter()
            .find(|c| c.state.kind == BasicService::Repair)
            .unwrap();
        assert!(repair.flipped && !repair.state.covered);
        assert_eq!(repair.merchant_id.as_ref(), Some(&repairer.id));
        // Back: gained, by it.
        let back = one_building_grid("g", std::slice::from_ref(&repairer));
        let gained = changes(
            &[state("g", BasicService::Repair, false, 0, 1)],
            &back,
            &cause,
        );
        let repair = gained
            .iter()
            .find(|c| c.state.kind == BasicService::Repair)
            .unwrap();
        assert!(repair.flipped && repair.state.covered);
        assert_eq!(repair.merchant_id.as_ref(), Some(&repairer.id));
        // A gain the named merchant does not reach is not put down to it.
        let other = Trigger {
            merchants: BTreeSet::from([MerchantId::from_stored("m-far")]),
            buildings_loaded: false,
        };
        let gained = changes(
            &[state("g", BasicService::Repair, false, 0, 1)],
            &back,
            &other,
        );
        let repair = gained
            .iter()
            .find(|c| c.state.kind == BasicService::Repair)
            .unwrap();
        assert_eq!(repair.merchant_id, None);
        // Two merchants, or a load of buildings: nobody in particular.
        for cause in [
            Trigger {
                merchants: BTreeSet::from([repairer.id.clone(), MerchantId::from_stored("m-2")]),
                buildings_loaded: false,
            },
            Trigger {
                merchants: BTreeSet::from([repairer.id.clone()]),
                buildings_loaded: true,
            },
        ] {
            let lost = changes(&stored, &one_building_grid("g", &[]), &cause);
            assert!(lost.iter().all(|c| c.merchant_id.is_none()));
        }
    }

    #[test]
    fn a_grid_no_longer_loaded_loses_what_it_had_and_its_rows_go() {
        let stored = vec![
            state("gone", BasicService::Repair, true, 2, 2),
            state("gone", BasicService::Housekeeping, false, 1, 2),
        ];
        let changes = changes(&stored, &[], &Trigger::default());
        assert_eq!(changes.len(), 2);
        assert!(
            changes
                .iter()
                .all(|c| c.removed && !c.state.covered && c.state.buildings == 0)
        );
        let flipped: Vec<BasicService> = changes
            .iter()
            .filter(|c| c.flipped)
            .map(|c| c.state.kind)
            .collect();
        assert_eq!(flipped, [BasicService::Repair], "only what it had is lost");
    }

    #[test]
    fn a_count_change_without_a_flip_is_written_but_not_announced() {
        let merchants = vec![merchant("m-1", Category::Repair, &[], CENTRE)];
        let buildings = vec![
            building("b-1", "g", CENTRE),
            building("b-2", "g", at(0.0, 5000.0)),
        ];
        let computed = coverage(&buildings, &merchants, &services(), RADIUS);
        let stored = vec![state("g", BasicService::Repair, false, 0, 2)];
        let repair: Vec<Change> = changes(&stored, &computed, &Trigger::default())
            .into_iter()
            .filter(|c| c.state.kind == BasicService::Repair)
            .collect();
        assert_eq!(repair.len(), 1);
        assert_eq!(
            (repair[0].state.buildings_reached, repair[0].flipped),
            (1, false)
        );
    }

    #[test]
    fn the_reach_of_buildings_holds_every_circle() {
        let buildings = vec![
            building("b-1", "g", CENTRE),
            building("b-2", "g", at(30.0, 3000.0)),
        ];
        let bbox = reach(&buildings, RADIUS).unwrap();
        for b in &buildings {
            for step in 0..36 {
                let rim = destination(b.point, f64::from(step * 10).to_radians(), RADIUS);
                assert!((bbox.min_latitude..=bbox.max_latitude).contains(&rim.latitude));
                assert!((bbox.min_longitude..=bbox.max_longitude).contains(&rim.longitude));
            }
        }
        assert_eq!(reach(&[], RADIUS), None);
    }
}
