//! The gRPC adapter: `shequ.care.v1` requests parsed into domain values (bad
//! input is `InvalidArgument` naming the field, before anything is written),
//! store errors mapped to status codes in one place, values mapped back.
//! Each id in a request is parsed once here into its type (`ElderId::parse`
//! and the rest, errors naming the field) and written back as text.
//! Personal data (health, whereabouts, contacts) only leaves through the elder
//! RPCs that need it; lists carry summaries.

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{
    geo_point, invalid_argument, location, optional_enum, page_size, required_enum, required_time,
    timestamp,
};
use shequ_chassis::personal::Phone;
use shequ_chassis::storage::Rule;
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use tonic::{Request, Response, Status};

use crate::domain::elder::{
    BirthDate, Elder, ElderDetails, Gender, LivingSituation, district_today, parse_contacts,
};
use crate::domain::filing::FilingStatus;
use crate::domain::pairing::{Pairing, PairingError, Volunteer};
use crate::domain::risk::RiskLevel;
use crate::domain::services::{Booking, BookingStatus, MEALS_ARE_DISCOUNTED, Service};
use crate::domain::visits::{NewVisit, Visit, VisitKind, Wellbeing, parse_needs};
use crate::domain::{
    BookingId, BuildingId, ComplaintId, ElderId, GridId, MerchantId, VolunteerId, fields,
};
use crate::meals::{MealFinder, NoMeal};
use crate::store::{Care, ElderFilter, Store};

#[derive(Debug, Clone)]
pub(crate) struct CareApi {
    store: Store,
    meals: MealFinder,
}

impl CareApi {
    pub(crate) fn new(store: Store, meals: MealFinder) -> Self {
        Self { store, meals }
    }

    /// The page of elders `filter` selects, as summaries ("overdue" as of now).
    async fn elder_page(
        &self,
        filter: &ElderFilter,
        page: Option<common::PageRequest>,
    ) -> Result<(Vec<pb::ElderSummary>, Option<common::PageResponse>), Status> {
        let page = page.unwrap_or_default();
        let now = self.store.now();
        let (elders, next) = self
            .store
            .elders(
                filter,
                now,
                page_size(&page)?,
                offset_token(&page.page_token)?,
            )
            .await?;
        let summaries = elders.iter().map(|e| summary(e, now)).collect();
        Ok((summaries, next_token(next)))
    }
}

/// A pairing the rules refuse: `FailedPrecondition`.
impl Rule for PairingError {}

fn offset_token(token: &str) -> Result<u64, Status> {
    match token {
        "" => Ok(0),
        token => token.parse().map_err(|_| {
            invalid_argument("page.page_token", "is not a token this service gave out")
        }),
    }
}

fn next_token(next: Option<u64>) -> Option<common::PageResponse> {
    Some(common::PageResponse {
        next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
    })
}

fn parse_details(
    details: Option<pb::ElderDetails>,
    now: DateTime<Utc>,
) -> Result<ElderDetails, Status> {
    let d = details.ok_or_else(|| invalid_argument("details", "is required"))?;
    let location = match d.location {
        None => None,
        point => Some(location("details.location", point)?),
    };
    let contacts: Vec<(String, String, String)> = d
        .emergency_contacts
        .into_iter()
        .map(|c| (c.name, c.phone, c.relation))
        .collect();
    Ok(ElderDetails {
        name: fields::required("details.name", &d.name, fields::SHORT_TEXT)?,
        birth_date: BirthDate::parse("details.birth_date", &d.birth_date, district_today(now))?,
        gender: required_enum("details.gender", d.gender, Gender::from_proto_number)?,
        grid_id: GridId::parse("details.grid_id", &d.grid_id)?,
        building_id: BuildingId::parse_optional("details.building_id", &d.building_id)?,
        address: fields::optional("details.address", &d.address, fields::SHORT_TEXT)?,
        location,
        living: required_enum(
            "details.living_situation",
            d.living_situation,
            LivingSituation::from_proto_number,
        )?,
        has_disability: d.has_disability,
        has_chronic_illness: d.has_chronic_illness,
        health_notes: fields::optional("details.health_notes", &d.health_notes, fields::LONG_TEXT)?,
        disability_notes: fields::optional(
            "details.disability_notes",
            &d.disability_notes,
            fields::LONG_TEXT,
        )?,
        contacts: parse_contacts("details.emergency_contacts", &contacts)?,
        consents_to_visits: d.consents_to_visits,
    })
}

fn elder_to_proto(e: &Elder) -> pb::Elder {
    let d = &e.details;
    pb::Elder {
        id: e.id.to_string(),
        details: Some(pb::ElderDetails {
            name: d.name.clone(),
            birth_date: d.birth_date.date().to_string(),
            gender: d.gender.proto_number(),
            grid_id: d.grid_id.to_string(),
            building_id: d
                .building_id
                .as_ref()
                .map(BuildingId::to_string)
                .unwrap_or_default(),
            address: d.address.clone().unwrap_or_default(),
            location: d.location.map(geo_point),
            living_situation: d.living.proto_number(),
            has_disability: d.has_disability,
            has_chronic_illness: d.has_chronic_illness,
            health_notes: d.health_notes.clone().unwrap_or_default(),
            disability_notes: d.disability_notes.clone().unwrap_or_default(),
            emergency_contacts: d
                .contacts
                .iter()
                .map(|c| pb::EmergencyContact {
                    name: c.name.clone(),
                    phone: c.phone.as_str().into(),
                    relation: c.relation.clone(),
                })
                .collect(),
            consents_to_visits: d.consents_to_visits,
        }),
        risk: e.assessment.level.proto_number(),
        risk_reasons: e.assessment.reasons.clone(),
        visit_interval_days: e.visit_interval_days,
        last_visit_at: e.last_visit_at.map(timestamp),
        next_visit_due_at: Some(timestamp(e.next_visit_due_at)),
        volunteer_id: volunteer_text(e),
        registered_at: Some(timestamp(e.registered_at)),
    }
}

/// The elder's volunteer as the API writes it: empty when there is none.
fn volunteer_text(e: &Elder) -> String {
    e.volunteer_id
        .as_ref()
        .map(VolunteerId::to_string)
        .unwrap_or_default()
}

fn summary(e: &Elder, now: DateTime<Utc>) -> pb::ElderSummary {
    pb::ElderSummary {
        id: e.id.to_string(),
        name: e.details.name.clone(),
        age: e.age_on(district_today(now)),
        grid_id: e.details.grid_id.to_string(),
        risk: e.assessment.level.proto_number(),
        volunteer_id: volunteer_text(e),
        next_visit_due_at: Some(timestamp(e.next_visit_due_at)),
        overdue: e.is_overdue(now),
    }
}

/// A volunteer; the phone in full only when `with_phone` (their own registration),
/// masked in lists.
fn volunteer_to_proto(v: &Volunteer, with_phone: bool) -> pb::Volunteer {
    pb::Volunteer {
        id: v.id.to_string(),
        name: v.name.clone(),
        phone: if with_phone {
            v.phone.as_str().into()
        } else {
            v.phone.masked()
        },
        grid_id: v.grid_id.to_string(),
        party_member: v.party_member,
        elder_ids: v.elder_ids.iter().map(ElderId::to_string).collect(),
    }
}

fn pairing_to_proto(p: &Pairing) -> pb::Pairing {
    pb::Pairing {
        id: p.id.to_string(),
        volunteer_id: p.volunteer_id.to_string(),
        elder_id: p.elder_id.to_string(),
        started_at: Some(timestamp(p.started_at)),
        ended_at: p.ended_at.map(timestamp),
    }
}

fn visit_to_proto(v: &Visit) -> pb::Visit {
    pb::Visit {
        id: v.id.to_string(),
        elder_id: v.elder_id.to_string(),
        visitor: v.visitor.clone(),
        kind: v.kind.proto_number(),
        visited_at: Some(timestamp(v.visited_at)),
        wellbeing: v.wellbeing.proto_number(),
        needs: v.needs.clone(),
        notes: v.notes.clone().unwrap_or_default(),
        filing: v.filing.map_or(0, FilingStatus::proto_number),
        complaint_id: v
            .complaint_id
            .as_ref()
            .map(ComplaintId::to_string)
            .unwrap_or_default(),
        filing_error: v.filing_error.clone().unwrap_or_default(),
    }
}

fn booking_to_proto(b: &Booking) -> pb::Booking {
    pb::Booking {
        id: b.id.to_string(),
        elder_id: b.elder_id.to_string(),
        service: b.service.proto_number(),
        scheduled_for: Some(timestamp(b.scheduled_for)),
        status: b.status.proto_number(),
        merchant_id: b
            .merchant_id
            .as_ref()
            .map(MerchantId::to_string)
            .unwrap_or_default(),
        merchant_name: b.merchant_name.clone().unwrap_or_default(),
        distance_metres: b.distance_metres.unwrap_or_default(),
        note: b.status.note().into(),
    }
}

#[tonic::async_trait]
impl pb::care_service_server::CareService for CareApi {
    async fn register_elder(
        &self,
        request: Request<pb::RegisterElderRequest>,
    ) -> Result<Response<pb::RegisterElderResponse>, Status> {
        let r = request.into_inner();
        let request_id = fields::required("request_id", &r.request_id, fields::REQUEST_ID)?;
        let actor = fields::required("actor", &r.actor, fields::ID)?;
        let details = parse_details(r.details, self.store.now())?;
        let (elder, duplicate) = self
            .store
            .register_elder(&request_id, details, &actor)
            .await?;
        tracing::info!(elder_id = %elder.id, risk = elder.assessment.level.as_str(), duplicate, "elder registered");
        Ok(Response::new(pb::RegisterElderResponse {
            elder: Some(elder_to_proto(&elder)),
            duplicate,
        }))
    }

    async fn update_elder(
        &self,
        request: Request<pb::UpdateElderRequest>,
    ) -> Result<Response<pb::UpdateElderResponse>, Status> {
        let r = request.into_inner();
        let id = ElderId::parse("elder_id", &r.elder_id)?;
        let actor = fields::required("actor", &r.actor, fields::ID)?;
        let details = parse_details(r.details, self.store.now())?;
        let elder = self.store.update_elder(&id, details, &actor).await?;
        Ok(Response::new(pb::UpdateElderResponse {
            elder: Some(elder_to_proto(&elder)),
        }))
    }

    async fn get_elder(
        &self,
        request: Request<pb::GetElderRequest>,
    ) -> Result<Response<pb::GetElderResponse>, Status> {
        let id = ElderId::parse("elder_id", &request.get_ref().elder_id)?;
        let elder = self.store.elder(&id).await?;
        Ok(Response::new(pb::GetElderResponse {
            elder: Some(elder_to_proto(&elder)),
        }))
    }

    async fn list_elders(
        &self,
        request: Request<pb::ListEldersRequest>,
    ) -> Result<Response<pb::ListEldersResponse>, Status> {
        let r = request.into_inner();
        let filter = ElderFilter {
            risk: optional_enum("risk", r.risk, RiskLevel::from_proto_number)?,
            grid_id: GridId::parse_optional("grid_id", &r.grid_id)?,
            unpaired_only: r.unpaired_only,
            overdue_only: false,
        };
        let (elders, page) = self.elder_page(&filter, r.page).await?;
        Ok(Response::new(pb::ListEldersResponse { elders, page }))
    }

    async fn register_volunteer(
        &self,
        request: Request<pb::RegisterVolunteerRequest>,
    ) -> Result<Response<pb::RegisterVolunteerResponse>, Status> {
        let r = request.into_inner();
        let request_id = fields::required("request_id", &r.request_id, fields::REQUEST_ID)?;
        let name = fields::required("name", &r.name, fields::SHORT_TEXT)?;
        let phone = Phone::parse("phone", &r.phone)?;
        let grid_id = GridId::parse("grid_id", &r.grid_id)?;
        fields::required("actor", &r.actor, fields::ID)?;
        let (volunteer, duplicate) = self
            .store
            .register_volunteer(&request_id, &name, &phone, &grid_id, r.party_member)
            .await?;
        Ok(Response::new(pb::RegisterVolunteerResponse {
            volunteer: Some(volunteer_to_proto(&volunteer, true)),
            duplicate,
        }))
    }

    async fn list_volunteers(
        &self,
        request: Request<pb::ListVolunteersRequest>,
    ) -> Result<Response<pb::ListVolunteersResponse>, Status> {
        let r = request.into_inner();
        let grid = GridId::parse_optional("grid_id", &r.grid_id)?;
        let page = r.page.unwrap_or_default();
        let (volunteers, next) = self
            .store
            .volunteers(
                grid.as_ref(),
                page_size(&page)?,
                offset_token(&page.page_token)?,
            )
            .await?;
        Ok(Response::new(pb::ListVolunteersResponse {
            volunteers: volunteers
                .iter()
                .map(|v| volunteer_to_proto(v, false))
                .collect(),
            page: next_token(next),
        }))
    }

    async fn pair(
        &self,
        request: Request<pb::PairRequest>,
    ) -> Result<Response<pb::PairResponse>, Status> {
        let r = request.into_inner();
        let volunteer_id = VolunteerId::parse("volunteer_id", &r.volunteer_id)?;
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let actor = fields::required("actor", &r.actor, fields::ID)?;
        let request_id = fields::optional("request_id", &r.request_id, fields::REQUEST_ID)?;
        let pairing = self
            .store
            .pair(&volunteer_id, &elder_id, &actor, request_id.as_deref())
            .await?;
        tracing::info!(%volunteer_id, %elder_id, "paired");
        Ok(Response::new(pb::PairResponse {
            pairing: Some(pairing_to_proto(&pairing)),
        }))
    }

    async fn unpair(
        &self,
        request: Request<pb::UnpairRequest>,
    ) -> Result<Response<pb::UnpairResponse>, Status> {
        let r = request.into_inner();
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let reason = fields::required("reason", &r.reason, fields::REASON)?;
        let actor = fields::required("actor", &r.actor, fields::ID)?;
        let request_id = fields::optional("request_id", &r.request_id, fields::REQUEST_ID)?;
        let pairing = self
            .store
            .unpair(&elder_id, &reason, &actor, request_id.as_deref())
            .await?;
        Ok(Response::new(pb::UnpairResponse {
            pairing: Some(pairing_to_proto(&pairing)),
        }))
    }

    async fn record_visit(
        &self,
        request: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::RecordVisitResponse>, Status> {
        let r = request.into_inner();
        let request_id = fields::required("request_id", &r.request_id, fields::REQUEST_ID)?;
        let now = self.store.now();
        let visited_at = match r.visited_at {
            Some(_) => required_time("visited_at", r.visited_at)?,
            None => now,
        };
        if visited_at > now {
            return Err(invalid_argument("visited_at", "must not be in the future"));
        }
        let visit = NewVisit {
            elder_id: ElderId::parse("elder_id", &r.elder_id)?,
            visitor: fields::required("visitor", &r.visitor, fields::ID)?,
            kind: required_enum("kind", r.kind, VisitKind::from_proto_number)?,
            visited_at,
            wellbeing: required_enum("wellbeing", r.wellbeing, Wellbeing::from_proto_number)?,
            needs: parse_needs("needs", &r.needs)?,
            notes: fields::optional("notes", &r.notes, fields::LONG_TEXT)?,
        };
        let (visit, duplicate) = self.store.record_visit(&request_id, visit).await?;
        tracing::info!(visit_id = %visit.id, elder_id = %visit.elder_id, wellbeing = visit.wellbeing.as_str(), duplicate, "visit recorded");
        Ok(Response::new(pb::RecordVisitResponse {
            visit: Some(visit_to_proto(&visit)),
            duplicate,
        }))
    }

    async fn list_overdue_visits(
        &self,
        request: Request<pb::ListOverdueVisitsRequest>,
    ) -> Result<Response<pb::ListOverdueVisitsResponse>, Status> {
        let r = request.into_inner();
        let filter = ElderFilter {
            grid_id: GridId::parse_optional("grid_id", &r.grid_id)?,
            overdue_only: true,
            ..ElderFilter::default()
        };
        let (elders, page) = self.elder_page(&filter, r.page).await?;
        Ok(Response::new(pb::ListOverdueVisitsResponse {
            elders,
            page,
        }))
    }

    async fn book_service(
        &self,
        request: Request<pb::BookServiceRequest>,
    ) -> Result<Response<pb::BookServiceResponse>, Status> {
        let r = request.into_inner();
        let request_id = fields::required("request_id", &r.request_id, fields::REQUEST_ID)?;
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let service = required_enum("service", r.service, Service::from_proto_number)?;
        let scheduled_for = required_time("scheduled_for", r.scheduled_for)?;
        fields::required("actor", &r.actor, fields::ID)?;
        // A retried booking answers from what the first one stored, without
        // asking the alliance again.
        if let Some(booking) = self.store.booking_by_request(&request_id).await? {
            return Ok(Response::new(pb::BookServiceResponse {
                booking: Some(booking_to_proto(&booking)),
                duplicate: true,
            }));
        }
        let elder = self.store.elder(&elder_id).await?;
        let mut booking = Booking {
            id: BookingId::generate(),
            elder_id,
            service,
            scheduled_for,
            status: BookingStatus::Booked,
            merchant_id: None,
            merchant_name: None,
            distance_metres: None,
        };
        if service == Service::MealAssistance {
            let home = elder.details.location.ok_or_else(|| {
                Status::failed_precondition(format!(
                    "elder {} has no location: the meal circle needs one",
                    elder.id
                ))
            })?;
            match self.meals.nearest(home).await {
                Ok(merchant) => {
                    booking.merchant_id = Some(merchant.id);
                    booking.merchant_name = Some(merchant.name);
                    booking.distance_metres = Some(merchant.distance_metres);
                }
                Err(NoMeal::NoneNearby) => booking.status = BookingStatus::NoMerchantNearby,
                Err(NoMeal::Unavailable(reason)) => {
                    tracing::warn!(elder_id = %elder.id, %reason, "merchant alliance unavailable for a meal booking");
                    booking.status = BookingStatus::AllianceUnavailable;
                }
            }
        }
        let (booking, duplicate) = self
            .store
            .book(&request_id, booking, MEALS_ARE_DISCOUNTED)
            .await?;
        Ok(Response::new(pb::BookServiceResponse {
            booking: Some(booking_to_proto(&booking)),
            duplicate,
        }))
    }

    async fn get_timeline(
        &self,
        request: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let id = ElderId::parse("elder_id", &request.get_ref().elder_id)?;
        let entries = self.store.timeline(&id).await?;
        Ok(Response::new(pb::GetTimelineResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::TimelineEntry {
                    at: Some(timestamp(e.at)),
                    kind: e.kind,
                    summary: e.summary,
                    reference: e.reference,
                })
                .collect(),
        }))
    }
}
