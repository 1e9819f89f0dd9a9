//! The gRPC adapter: `shequ.alliance.v1` requests parsed into domain values (bad
//! input is `InvalidArgument` naming the field, before anything is written;
//! each id field is parsed once into its id type; a place outside the
//! service area is refused before the store is asked), store errors mapped to
//! status codes in one place, domain values mapped back. A keyed write's
//! [`RequestKey`] is its `request_id` with the digest of the whole request:
//! the same request again is answered as the first time, a different one
//! under the key refused naming `request_id`. The actor of every
//! change is the authenticated caller ([`grpc::actor`]), never a name the
//! request claims.

use std::collections::HashMap;
use std::sync::Arc;

use shequ_chassis::grpc::{
    self, geo_point, invalid_argument, location, optional_enum, page_size, required_enum,
    required_time, timestamp,
};
use shequ_chassis::storage::Rule;
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;
use tonic::{Request, Response, Status};

use crate::coverage_watcher::{CoverageSignal, compute};
use crate::domain::awards::{AwardRules, Period, evaluate};
use crate::domain::basic_services::{BasicService, BasicServices};
use crate::domain::coverage::{self, Building, GridCoverage, Nearest};
use crate::domain::credit::CreditEntry;
use crate::domain::geo::{Datum, Location, Point};
use crate::domain::merchant::{
    ActivityKind, Category, Merchant, MerchantDetails, MerchantStatus, ServiceTag, StatusConflict,
    parse_tags,
};
use crate::domain::nearby::{DEFAULT_WALK_MINUTES, MAX_WALK_MINUTES, Search};
use crate::domain::service_area::ServiceArea;
use crate::domain::{BuildingId, GridId, MerchantId, fields};
use crate::store::{Alliance, CoverageScope, ListFilter, RequestKey, Store, StoreError};

const DEFAULT_NEARBY_LIMIT: u32 = 20;
const MAX_NEARBY_LIMIT: u32 = 100;

#[derive(Debug, Clone)]
pub(crate) struct AllianceApi {
    store: Store,
    awards: Arc<AwardRules>,
    metres_per_minute: f64,
    area: ServiceArea,
    services: Arc<BasicServices>,
    /// Told of every merchant change and building load, once committed.
    coverage: Arc<CoverageSignal>,
}

impl AllianceApi {
    /// `area` must serve an hour's walk at `metres_per_minute`
    /// ([`ServiceArea::serves`]), as the service checks at start.
    pub(crate) fn new(
        store: Store,
        awards: Arc<AwardRules>,
        metres_per_minute: f64,
        area: ServiceArea,
        services: Arc<BasicServices>,
        coverage: Arc<CoverageSignal>,
    ) -> Self {
        Self {
            store,
            awards,
            metres_per_minute,
            area,
            services,
            coverage,
        }
    }

    /// The walk coverage counts, in metres.
    fn coverage_radius(&self) -> f64 {
        f64::from(coverage::WALK_MINUTES) * self.metres_per_minute
    }

    /// A distance as the API gives it: whole metres, and minutes at the
    /// walking speed to a tenth.
    fn walk(&self, distance_metres: f64) -> (f64, f64) {
        (
            distance_metres.round(),
            (distance_metres / self.metres_per_minute * 10.0).round() / 10.0,
        )
    }
}

/// A status change the merchant's status refuses: `FailedPrecondition`.
impl Rule for StatusConflict {}

#[tonic::async_trait]
impl pb::merchant_service_server::MerchantService for AllianceApi {
    async fn register_merchant(
        &self,
        request: Request<pb::RegisterMerchantRequest>,
    ) -> Result<Response<pb::RegisterMerchantResponse>, Status> {
        let actor = grpc::actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("RegisterMerchant", &r.request_id, &r)?;
        let details = parse_details(&self.area, r.details)?;
        let (merchant, duplicate) = self.store.register(&key, details, &actor).await?;
        if !duplicate {
            self.coverage.merchant_changed(&merchant.id);
        }
        tracing::info!(merchant_id = %merchant.id, duplicate, "merchant registered");
        Ok(Response::new(pb::RegisterMerchantResponse {
            merchant: Some(to_proto(&merchant, Datum::Wgs84)),
            duplicate,
        }))
    }

    async fn update_merchant(
        &self,
        request: Request<pb::UpdateMerchantRequest>,
    ) -> Result<Response<pb::UpdateMerchantResponse>, Status> {
        let actor = grpc::actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let id = MerchantId::parse("merchant_id", &r.merchant_id)?;
        let details = parse_details(&self.area, r.details)?;
        let merchant = self.store.update(&id, details, &actor).await?;
        self.coverage.merchant_changed(&id);
        Ok(Response::new(pb::UpdateMerchantResponse {
            merchant: Some(to_proto(&merchant, Datum::Wgs84)),
        }))
    }

    async fn suspend_merchant(
        &self,
        request: Request<pb::SuspendMerchantRequest>,
    ) -> Result<Response<pb::SuspendMerchantResponse>, Status> {
        let actor = grpc::actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let id = MerchantId::parse("merchant_id", &r.merchant_id)?;
        let reason = fields::required("reason", &r.reason, fields::REASON)?;
        let merchant = self.store.suspend(&id, reason, &actor).await?;
        self.coverage.merchant_changed(&id);
        tracing::info!(merchant_id = %id, %actor, "merchant suspended");
        Ok(Response::new(pb::SuspendMerchantResponse {
            merchant: Some(to_proto(&merchant, Datum::Wgs84)),
        }))
    }

    async fn reinstate_merchant(
        &self,
        request: Request<pb::ReinstateMerchantRequest>,
    ) -> Result<Response<pb::ReinstateMerchantResponse>, Status> {
        let actor = grpc::actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let id = MerchantId::parse("merchant_id", &r.merchant_id)?;
        let merchant = self.store.reinstate(&id, &actor).await?;
        self.coverage.merchant_changed(&id);
        Ok(Response::new(pb::ReinstateMerchantResponse {
            merchant: Some(to_proto(&merchant, Datum::Wgs84)),
        }))
    }

    async fn get_merchant(
        &self,
        request: Request<pb::GetMerchantRequest>,
    ) -> Result<Response<pb::GetMerchantResponse>, Status> {
        let r = request.into_inner();
        let id = MerchantId::parse("merchant_id", &r.merchant_id)?;
        let datum =
            optional_enum("datum", r.datum, Datum::from_proto_number)?.unwrap_or(Datum::Wgs84);
        let merchant = self.store.get(&id).await?;
        Ok(Response::new(pb::GetMerchantResponse {
            merchant: Some(to_proto(&merchant, datum)),
        }))
    }

    async fn list_merchants(
        &self,
        request: Request<pb::ListMerchantsRequest>,
    ) -> Result<Response<pb::ListMerchantsResponse>, Status> {
        let r = request.into_inner();
        let filter = ListFilter {
            grid_id: GridId::parse_optional("grid_id", &r.grid_id)?,
            category: optional_enum("category", r.category, Category::from_proto_number)?,
            status: optional_enum("status", r.status, MerchantStatus::from_proto_number)?,
        };
        let page = r.page.unwrap_or_default();
        let size = page_size(&page)?;
        let after = MerchantId::parse_optional("page.page_token", &page.page_token)?;
        let (merchants, next) = self.store.list(&filter, size, after.as_ref()).await?;
        Ok(Response::new(pb::ListMerchantsResponse {
            merchants: merchants
                .iter()
                .map(|m| to_proto(m, Datum::Wgs84))
                .collect(),
            page: Some(common::PageResponse {
                next_page_token: next.map(String::from).unwrap_or_default(),
            }),
        }))
    }

    async fn find_nearby(
        &self,
        request: Request<pb::FindNearbyRequest>,
    ) -> Result<Response<pb::FindNearbyResponse>, Status> {
        let r = request.into_inner();
        let (center, datum) = parse_point("point", r.point)?;
        // Before any work: the circle's cells are bounded only inside the area.
        let center = self.area.check("point", center)?;
        let category = required_enum("category", r.category, Category::from_proto_number)?;
        let tag = match r.service_tag.trim() {
            "" => None,
            tag => Some(ServiceTag::parse("service_tag", tag)?),
        };
        let walk_minutes = match r.walk_minutes {
            0 => DEFAULT_WALK_MINUTES,
            minutes if (1..=MAX_WALK_MINUTES as i32).contains(&minutes) => minutes.unsigned_abs(),
            minutes => {
                return Err(invalid_argument(
                    "walk_minutes",
                    format!("must be 1 to {MAX_WALK_MINUTES}, got {minutes}"),
                ));
            }
        };
        let limit = match r.limit {
            0 => DEFAULT_NEARBY_LIMIT,
            limit if limit <= MAX_NEARBY_LIMIT => limit,
            limit => {
                return Err(invalid_argument(
                    "limit",
                    format!("must be at most {MAX_NEARBY_LIMIT}, got {limit}"),
                ));
            }
        };
        let search = Search {
            center,
            tag,
            walk_minutes,
            open_now: r.open_now,
            limit: limit as usize,
        };
        let radius = search.radius_metres(self.metres_per_minute);
        let cells = crate::domain::cells::covering(center, radius);
        let found = self.store.nearby(&search, category, &cells, radius).await?;
        Ok(Response::new(pb::FindNearbyResponse {
            merchants: found
                .iter()
                .map(|f| pb::NearbyMerchant {
                    merchant: Some(to_proto(&f.merchant, datum)),
                    distance_metres: f.distance_metres.round(),
                    walk_minutes: (f.distance_metres / self.metres_per_minute * 10.0).round()
                        / 10.0,
                })
                .collect(),
            radius_metres: radius,
        }))
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> Result<Response<pb::RecordActivityResponse>, Status> {
        let actor = grpc::actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("RecordActivity", &r.request_id, &r)?;
        let merchant_id = MerchantId::parse("merchant_id", &r.merchant_id)?;
        let kind = required_enum("kind", r.kind, ActivityKind::from_proto_number)?;
        let description = fields::required("description", &r.description, fields::REASON)?;
        let now = self.store.now();
        let happened_at = match r.happened_at {
            Some(_) => required_time("happened_at", r.happened_at)?,
            None => now,
        };
        if happened_at > now {
            return Err(invalid_argument("happened_at", "must not be in the future"));
        }
        let (entry, duplicate) = self
            .store
            .record_activity(&key, &merchant_id, kind, &description, happened_at, &actor)
            .await?;
        Ok(Response::new(pb::RecordActivityResponse {
            entry: Some(entry_to_proto(&entry)),
            duplicate,
        }))
    }

    async fn get_credit_ledger(
        &self,
        request: Request<pb::GetCreditLedgerRequest>,
    ) -> Result<Response<pb::GetCreditLedgerResponse>, Status> {
        let id = MerchantId::parse("merchant_id", &request.get_ref().merchant_id)?;
        let (score, entries) = self.store.ledger(&id).await?;
        Ok(Response::new(pb::GetCreditLedgerResponse {
            score,
            entries: entries.iter().map(entry_to_proto).collect(),
        }))
    }

    async fn evaluate_model_merchants(
        &self,
        request: Request<pb::EvaluateModelMerchantsRequest>,
    ) -> Result<Response<pb::EvaluateModelMerchantsResponse>, Status> {
        // Only an award is a change, with an actor to record.
        let actor = match request.get_ref().award {
            true => Some(grpc::actor(&request, |r| &r.actor)?),
            false => None,
        };
        let r = request.into_inner();
        let period = Period::parse("period", &r.period)?;
        let mut evaluations = Vec::new();
        for (merchant, record, already) in self.store.award_records(&period).await? {
            let reasons = evaluate(&self.awards, &record);
            let qualified = reasons.is_empty();
            let awarded = match &actor {
                Some(actor) if qualified => {
                    self.store.award(&merchant, &record, &period, actor).await?;
                    true
                }
                _ => already,
            };
            evaluations.push(pb::Evaluation {
                merchant_id: merchant.id.to_string(),
                merchant_name: merchant.details.name.clone(),
                qualified,
                reasons,
                awarded,
            });
        }
        Ok(Response::new(pb::EvaluateModelMerchantsResponse {
            period: period.name,
            evaluations,
        }))
    }

    async fn load_buildings(
        &self,
        request: Request<pb::LoadBuildingsRequest>,
    ) -> Result<Response<pb::LoadBuildingsResponse>, Status> {
        let buildings = parse_buildings(&self.area, &request.get_ref().buildings)?;
        let loaded = self.store.load_buildings(buildings).await?;
        self.coverage.buildings_loaded();
        tracing::info!(
            buildings = loaded.buildings,
            grids = loaded.grids,
            "building points loaded"
        );
        Ok(Response::new(pb::LoadBuildingsResponse {
            buildings: loaded.buildings,
            grids: loaded.grids,
        }))
    }

    async fn get_circle_coverage(
        &self,
        request: Request<pb::GetCircleCoverageRequest>,
    ) -> Result<Response<pb::GetCircleCoverageResponse>, Status> {
        let r = request.into_inner();
        let grid = GridId::parse_optional("grid_id", &r.grid_id)?;
        let building = BuildingId::parse_optional("building_id", &r.building_id)?;
        let scope = match (grid, building) {
            (Some(_), Some(_)) => {
                return Err(invalid_argument(
                    "building_id",
                    "give grid_id or building_id, not both",
                ));
            }
            (Some(grid), None) => CoverageScope::Grid(grid),
            (None, Some(building)) => CoverageScope::Building(building),
            (None, None) => CoverageScope::District,
        };
        let buildings = self.store.buildings(&scope).await?;
        let radius = self.coverage_radius();
        let grids = match &scope {
            CoverageScope::Grid(grid) if buildings.is_empty() => {
                return Err(StoreError::NotFound(format!("buildings of grid {grid}")).into());
            }
            CoverageScope::Building(building) if buildings.is_empty() => {
                return Err(StoreError::NotFound(format!("building {building}")).into());
            }
            // No building points loaded: nothing to cover, no merchant to read.
            CoverageScope::District if buildings.is_empty() => Vec::new(),
            scope => {
                let within = match scope {
                    CoverageScope::District => None,
                    _ => coverage::reach(&buildings, radius),
                };
                let merchants = self.store.circle_merchants(within).await?;
                compute(buildings, merchants, Arc::clone(&self.services), radius).await
            }
        };
        Ok(Response::new(pb::GetCircleCoverageResponse {
            grids: grids.iter().map(|grid| self.grid_to_proto(grid)).collect(),
            walk_minutes: coverage::WALK_MINUTES as i32,
            radius_metres: radius,
        }))
    }
}

impl AllianceApi {
    fn nearest_to_proto(&self, nearest: &Nearest) -> pb::NearestMerchant {
        let (distance_metres, walk_minutes) = self.walk(nearest.distance_metres);
        pb::NearestMerchant {
            merchant_id: nearest.merchant_id.to_string(),
            merchant_name: nearest.merchant_name.clone(),
            distance_metres,
            walk_minutes,
        }
    }

    fn grid_to_proto(&self, grid: &GridCoverage) -> pb::GridCoverage {
        pb::GridCoverage {
            grid_id: grid.grid_id.to_string(),
            building_count: grid.building_count(),
            kinds: grid
                .kinds
                .iter()
                .map(|kind| pb::KindCoverage {
                    kind: kind.kind.proto_number(),
                    buildings_reached: kind.buildings_reached,
                    covered: kind.covered,
                    longest_walk: kind
                        .longest
                        .as_ref()
                        .map(|(_, nearest)| self.nearest_to_proto(nearest)),
                    longest_walk_building_id: kind
                        .longest
                        .as_ref()
                        .map(|(building, _)| building.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            buildings: grid
                .buildings
                .iter()
                .map(|building| pb::BuildingCoverage {
                    building_id: building.building_id.to_string(),
                    kinds: BasicService::ALL
                        .iter()
                        .zip(&building.nearest)
                        .map(|(kind, nearest)| pb::BuildingKind {
                            kind: kind.proto_number(),
                            nearest: nearest.as_ref().map(|n| self.nearest_to_proto(n)),
                        })
                        .collect(),
                })
                .collect(),
            has_gap: grid.has_gap(),
        }
    }
}

/// Every building of a load, each once, each in `area`; errors name the
/// field (`buildings[3].point.latitude`).
fn parse_buildings(area: &ServiceArea, given: &[pb::Building]) -> Result<Vec<Building>, Status> {
    if given.is_empty() {
        return Err(invalid_argument(
            "buildings",
            "must hold at least one building (the load replaces every building point)",
        ));
    }
    let mut seen: HashMap<BuildingId, usize> = HashMap::with_capacity(given.len());
    let mut buildings = Vec::with_capacity(given.len());
    for (i, b) in given.iter().enumerate() {
        let field = format!("buildings[{i}]");
        let id = BuildingId::parse(&format!("{field}.building_id"), &b.building_id)?;
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(invalid_argument(
                &format!("{field}.building_id"),
                format!("repeats buildings[{first}].building_id {id}"),
            ));
        }
        let grid_id = GridId::parse(&format!("{field}.grid_id"), &b.grid_id)?;
        let point_field = format!("{field}.point");
        let (point, _) = parse_point(&point_field, b.point)?;
        let point = area.check(&point_field, point)?;
        buildings.push(Building { id, grid_id, point });
    }
    Ok(buildings)
}

/// A point and the datum it came in; the point converted to WGS-84.
fn parse_point(field: &str, point: Option<common::GeoPoint>) -> Result<(Point, Datum), Status> {
    let location = location(field, point)?;
    Ok((location.to_wgs84(), location.datum))
}

/// The merchant's description; its place must lie in `area`.
fn parse_details(
    area: &ServiceArea,
    details: Option<pb::MerchantDetails>,
) -> Result<MerchantDetails, Status> {
    let d = details.ok_or_else(|| invalid_argument("details", "is required"))?;
    let (location, _) = parse_point("details.location", d.location)?;
    let location = area.check("details.location", location)?;
    let opening_hours = d
        .opening_hours
        .iter()
        .enumerate()
        .map(|(i, hours)| grpc::opening_hours(&format!("details.opening_hours[{i}]"), hours))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MerchantDetails {
        name: fields::required("details.name", &d.name, 100)?,
        category: required_enum("details.category", d.category, Category::from_proto_number)?,
        service_tags: parse_tags("details.service_tags", &d.service_tags)?,
        location,
        address: fields::optional("details.address", &d.address, fields::SHORT_TEXT)?,
        grid_id: GridId::parse("details.grid_id", &d.grid_id)?,
        opening_hours,
        party_member_owner: d.party_member_owner,
    })
}

fn to_proto(m: &Merchant, datum: Datum) -> pb::Merchant {
    let location = Location {
        point: m.details.location.from_wgs84(datum),
        datum,
    };
    pb::Merchant {
        id: m.id.to_string(),
        name: m.details.name.clone(),
        category: m.details.category.proto_number(),
        service_tags: m
            .details
            .service_tags
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        location: Some(geo_point(location)),
        address: m.details.address.clone().unwrap_or_default(),
        grid_id: m.details.grid_id.to_string(),
        opening_hours: m
            .details
            .opening_hours
            .iter()
            .map(grpc::opening_hours_to_proto)
            .collect(),
        party_member_owner: m.details.party_member_owner,
        status: m.status.proto_number(),
        suspended_reason: m.suspended_reason.clone().unwrap_or_default(),
        credit_score: m.credit_score,
        registered_at: Some(timestamp(m.registered_at)),
        updated_at: Some(timestamp(m.updated_at)),
    }
}

fn entry_to_proto(entry: &CreditEntry) -> pb::CreditEntry {
    pb::CreditEntry {
        seq: entry.seq,
        delta: entry.delta,
        score_after: entry.score_after,
        reason: entry.reason.as_str().into(),
        source_event_id: entry.source_event_id.clone().unwrap_or_default(),
        actor: entry.actor.clone().unwrap_or_default(),
        reference: entry.reference.clone(),
        at: Some(timestamp(entry.at)),
    }
}
