//! The gRPC adapter: `shequ.care.v1` requests parsed into domain values (bad
//! input is `InvalidArgument` naming the field, before anything is written),
//! store errors mapped to status codes in one place, values mapped back.
//! Each id in a request is parsed once here into its type (`ElderId::parse`
//! and the rest, errors naming the field) and written back as text.
//! Personal data (health, whereabouts, contacts) only leaves through the elder
//! RPCs that need it; lists carry summaries.
//!
//! Every keyed write takes its `request_id` with the digest of the whole
//! request as it came in ([`RequestKey`], named for its RPC): the same key
//! with the same request is answered as the first time, with a different
//! request (another RPC, or another body) it is refused, InvalidArgument
//! naming `request_id`, and nothing changes.
//!
//! The actor of every change is the caller ([`actor`]): the authenticated
//! token's name, the request's `actor` field only with authentication off
//! (an account id, never a name). It is what the timeline and the events
//! record; a visit by staff has it as its visitor.

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{
    actor, geo_point, invalid_argument, location, optional_enum, page_size, required_enum,
    required_time, timestamp,
};
use shequ_chassis::personal::Phone;
use shequ_chassis::storage::Rule;
use shequ_proto::care::v1 as pb;
use shequ_proto::common::v1 as common;
use tonic::{Request, Response, Status};

use crate::domain::elder::Location;
use crate::domain::elder::{
    BirthDate, Elder, ElderDetails, Gender, LivingSituation, district_today, parse_contacts,
};
use crate::domain::figures::{self, ByRisk, CareFigures, Month};
use crate::domain::filing::FilingStatus;
use crate::domain::pairing::{Pairing, Volunteer};
use crate::domain::requests::{self, NewVisitRequest, VisitRequest, VisitRequestReason};
use crate::domain::risk::RiskLevel;
use crate::domain::services::{
    Booking, BookingError, BookingStatus, MEALS_ARE_DISCOUNTED, Service, Settlement,
    check_scheduled,
};
use crate::domain::visits::{
    NewVisit, Visit, VisitKind, VisitPolicy, Visitor, Wellbeing, parse_needs,
};
use crate::domain::{
    BookingId, BuildingId, CommunityId, ComplaintId, ElderId, GridId, MerchantId, Refusal, VisitId,
    VolunteerId, fields,
};
use crate::meals::{MealFinder, NoMeal};
use crate::organisation::Organisation;
use crate::store::{Care, ElderFilter, RequestKey, Store};

#[derive(Debug, Clone)]
pub(crate) struct CareApi {
    store: Store,
    meals: MealFinder,
    organisation: Organisation,
    policy: VisitPolicy,
}

impl CareApi {
    pub(crate) fn new(
        store: Store,
        meals: MealFinder,
        organisation: Organisation,
        policy: VisitPolicy,
    ) -> Self {
        Self {
            store,
            meals,
            organisation,
            policy,
        }
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

    /// `booking` with the merchant that serves it: a meal asks the alliance
    /// for the nearest merchant with elder meals open at its time, and comes
    /// to no merchant nearby or open, or the alliance unavailable, when there
    /// is none; the complex gives the other services.
    async fn find_merchant(&self, elder: &Elder, mut booking: Booking) -> Result<Booking, Status> {
        if booking.service != Service::MealAssistance {
            return Ok(booking);
        }
        let home = elder.details.location.ok_or_else(|| {
            Status::failed_precondition(format!(
                "elder {} has no location: the meal circle needs one",
                elder.id
            ))
        })?;
        booking.status = BookingStatus::Booked;
        match self.meals.nearest_open(home, booking.scheduled_for).await {
            Ok(merchant) => {
                booking.merchant_id = Some(merchant.id);
                booking.merchant_name = Some(merchant.name);
                booking.distance_metres = Some(merchant.distance_metres);
            }
            Err(NoMeal::NoneNearby) => booking.status = BookingStatus::NoMerchantNearby,
            Err(NoMeal::NoneOpen) => booking.status = BookingStatus::NoMerchantOpen,
            Err(NoMeal::Unavailable(reason)) => {
                tracing::warn!(elder_id = %elder.id, %reason, "merchant alliance unavailable for a meal booking");
                booking.status = BookingStatus::AllianceUnavailable;
            }
        }
        Ok(booking)
    }

    /// Settles booking `booking_id` as `to` for `actor`, once per `request`'s
    /// key (the request's RPC and body in its digest).
    async fn settle(
        &self,
        request: &RequestKey,
        booking_id: &str,
        to: Settlement,
        actor: &str,
    ) -> Result<(pb::Booking, bool), Status> {
        let booking_id = BookingId::parse("booking_id", booking_id)?;
        let (booking, duplicate) = self
            .store
            .settle(request, &booking_id, to, actor, MEALS_ARE_DISCOUNTED)
            .await?;
        tracing::info!(booking_id = %booking.id, status = booking.status.as_str(), duplicate, %actor, "booking settled");
        Ok((booking_to_proto(&booking), duplicate))
    }
}

/// A pairing or a booking's settlement the rules refuse: `FailedPrecondition`.
impl Rule for Refusal {}

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
        distance_from_home_metres: v.distance_from_home_metres,
        far_from_home: v.far_from_home,
    }
}

fn request_to_proto(r: &VisitRequest) -> pb::VisitRequest {
    pb::VisitRequest {
        id: r.id.to_string(),
        elder_id: r.elder_id.to_string(),
        grid_id: r.grid_id.to_string(),
        reason: r.reason.proto_number(),
        reference: r.reference.clone().unwrap_or_default(),
        note: r.note.clone().unwrap_or_default(),
        raised_by: r.raised_by.clone(),
        raised_at: Some(timestamp(r.raised_at)),
        due_at: Some(timestamp(r.due_at)),
        met_by_visit_id: r
            .met_by
            .as_ref()
            .map(VisitId::to_string)
            .unwrap_or_default(),
        met_at: r.met_at.map(timestamp),
        overdue_at: r.overdue_at.map(timestamp),
    }
}

fn risk_counts(counts: ByRisk) -> pb::RiskCounts {
    pb::RiskCounts {
        high: counts.high,
        medium: counts.medium,
        low: counts.low,
    }
}

fn figures_to_proto(scope: String, f: &CareFigures) -> pb::CareFigures {
    let c = f.complaints;
    pb::CareFigures {
        scope,
        month: f.month.to_string(),
        as_of: Some(timestamp(f.as_of)),
        elders: Some(risk_counts(f.elders)),
        due: f.due,
        due_visited: f.due_visited,
        monthly_visit_rate: f.monthly_visit_rate(),
        visits: f.visits,
        home_visits: f.home_visits,
        phone_calls: f.phone_calls,
        visits_on_time: f.visits_on_time,
        on_time_visit_rate: f.on_time_visit_rate(),
        far_from_home: f.far_from_home,
        overdue: Some(pb::OverdueAges {
            under_7_days: f.overdue.under_7_days,
            from_7_to_30_days: f.overdue.from_7_to_30_days,
            over_30_days: f.overdue.over_30_days,
        }),
        unpaired: Some(risk_counts(f.unpaired)),
        volunteers: f.volunteers,
        paired_elders: f.paired_elders,
        elders_per_volunteer: f.elders_per_volunteer(),
        volunteers_at_cap: f.volunteers_at_cap,
        volunteers_without_elders: f.volunteers_without_elders,
        volunteer_visits: f.volunteer_visits,
        visits_per_volunteer: f.visits_per_volunteer(),
        concern_visits: f.concern_visits,
        urgent_visits: f.urgent_visits,
        complaints: Some(pb::FiledComplaints {
            filed: c.filed,
            pending: c.pending,
            failed: c.failed,
            open: c.open,
            resolved: c.resolved,
            closed: c.closed,
            reopened: c.reopened,
            rejected: c.rejected,
        }),
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("RegisterElder", &r.request_id, &r)?;
        let details = parse_details(r.details, self.store.now())?;
        let (elder, duplicate) = self.store.register_elder(&key, details, &actor).await?;
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let id = ElderId::parse("elder_id", &r.elder_id)?;
        let details = parse_details(r.details, self.store.now())?;
        let elder = self.store.update_elder(&id, details, &actor).await?;
        tracing::info!(elder_id = %elder.id, risk = elder.assessment.level.as_str(), %actor, "elder updated");
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("RegisterVolunteer", &r.request_id, &r)?;
        let name = fields::required("name", &r.name, fields::SHORT_TEXT)?;
        let phone = Phone::parse("phone", &r.phone)?;
        let grid_id = GridId::parse("grid_id", &r.grid_id)?;
        let (volunteer, duplicate) = self
            .store
            .register_volunteer(&key, &name, &phone, &grid_id, r.party_member)
            .await?;
        tracing::info!(volunteer_id = %volunteer.id, %actor, duplicate, "volunteer registered");
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let volunteer_id = VolunteerId::parse("volunteer_id", &r.volunteer_id)?;
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let key = RequestKey::optional("Pair", &r.request_id, &r)?;
        let pairing = self
            .store
            .pair(&volunteer_id, &elder_id, &actor, key.as_ref())
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let reason = fields::required("reason", &r.reason, fields::REASON)?;
        let key = RequestKey::optional("Unpair", &r.request_id, &r)?;
        let pairing = self
            .store
            .unpair(&elder_id, &reason, &actor, key.as_ref())
            .await?;
        Ok(Response::new(pb::UnpairResponse {
            pairing: Some(pairing_to_proto(&pairing)),
        }))
    }

    async fn record_visit(
        &self,
        request: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::RecordVisitResponse>, Status> {
        // The request names no actor of its own: with authentication off a
        // visit by staff is the anonymous one's.
        let actor = actor(&request, |_| "")?;
        let r = request.into_inner();
        // The digest is of the request as sent: a visit sent without a time
        // is the same request on a retry, whenever that comes.
        let key = RequestKey::required("RecordVisit", &r.request_id, &r)?;
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
            visitor: Visitor::parse("visitor", &r.visitor, &actor)?,
            actor,
            kind: required_enum("kind", r.kind, VisitKind::from_proto_number)?,
            visited_at,
            wellbeing: required_enum("wellbeing", r.wellbeing, Wellbeing::from_proto_number)?,
            needs: parse_needs("needs", &r.needs)?,
            notes: fields::optional("notes", &r.notes, fields::LONG_TEXT)?,
            recorded_at: r
                .recorded_at
                .map(|point| location("recorded_at", Some(point)).map(Location::to_wgs84))
                .transpose()?,
        };
        let (visit, duplicate) = self.store.record_visit(&key, visit).await?;
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
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("BookService", &r.request_id, &r)?;
        let elder_id = ElderId::parse("elder_id", &r.elder_id)?;
        let service = required_enum("service", r.service, Service::from_proto_number)?;
        let scheduled_for = required_time("scheduled_for", r.scheduled_for)?;
        let now = self.store.now();
        // A retried booking answers from what the first one stored, without
        // asking the alliance again — unless the alliance could not be asked
        // then: that decided nothing, so the stored booking (its id, elder,
        // service and time) is searched for again. Only for the same request:
        // a different one under the key is refused here, before the alliance
        // is asked.
        let stored = self.store.booking_by_request(&key).await?;
        let booking = match stored {
            Some(booking) if booking.status.is_decided() => {
                return Ok(Response::new(pb::BookServiceResponse {
                    booking: Some(booking_to_proto(&booking)),
                    duplicate: true,
                }));
            }
            Some(booking) => {
                if booking.scheduled_for <= now {
                    let passed = BookingError::Passed {
                        id: booking.id,
                        at: booking.scheduled_for,
                    };
                    return Err(crate::store::StoreError::from(passed).into());
                }
                booking
            }
            None => Booking {
                id: BookingId::generate(),
                elder_id,
                service,
                scheduled_for: check_scheduled("scheduled_for", scheduled_for, now)?,
                status: BookingStatus::Booked,
                merchant_id: None,
                merchant_name: None,
                distance_metres: None,
            },
        };
        let elder = self.store.elder(&booking.elder_id).await?;
        let booking = self.find_merchant(&elder, booking).await?;
        let (booking, duplicate) = self
            .store
            .book(&key, booking, MEALS_ARE_DISCOUNTED, &actor)
            .await?;
        tracing::info!(booking_id = %booking.id, status = booking.status.as_str(), duplicate, %actor, "service booked");
        Ok(Response::new(pb::BookServiceResponse {
            booking: Some(booking_to_proto(&booking)),
            duplicate,
        }))
    }

    async fn mark_booking_served(
        &self,
        request: Request<pb::MarkBookingServedRequest>,
    ) -> Result<Response<pb::MarkBookingServedResponse>, Status> {
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("MarkBookingServed", &r.request_id, &r)?;
        let (booking, duplicate) = self
            .settle(&key, &r.booking_id, Settlement::Served, &actor)
            .await?;
        Ok(Response::new(pb::MarkBookingServedResponse {
            booking: Some(booking),
            duplicate,
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::CancelBookingResponse>, Status> {
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("CancelBooking", &r.request_id, &r)?;
        let (booking, duplicate) = self
            .settle(&key, &r.booking_id, Settlement::Cancelled, &actor)
            .await?;
        Ok(Response::new(pb::CancelBookingResponse {
            booking: Some(booking),
            duplicate,
        }))
    }

    async fn mark_booking_no_show(
        &self,
        request: Request<pb::MarkBookingNoShowRequest>,
    ) -> Result<Response<pb::MarkBookingNoShowResponse>, Status> {
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("MarkBookingNoShow", &r.request_id, &r)?;
        let (booking, duplicate) = self
            .settle(&key, &r.booking_id, Settlement::NoShow, &actor)
            .await?;
        Ok(Response::new(pb::MarkBookingNoShowResponse {
            booking: Some(booking),
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

    async fn get_care_figures(
        &self,
        request: Request<pb::GetCareFiguresRequest>,
    ) -> Result<Response<pb::GetCareFiguresResponse>, Status> {
        let r = request.into_inner();
        let grid = GridId::parse_optional("grid_id", &r.grid_id)?;
        let community = CommunityId::parse_optional("community_id", &r.community_id)?;
        let now = self.store.now();
        let month = if r.month.trim().is_empty() {
            Month::holding(now)
        } else {
            Month::parse("month", &r.month)?
        };
        let (scope, grids) = match (grid, community) {
            (Some(_), Some(_)) => {
                return Err(invalid_argument(
                    "community_id",
                    "give a grid_id or a community_id, not both",
                ));
            }
            (Some(grid), None) => (format!("grid:{grid}"), Some(vec![grid])),
            (None, Some(community)) => (
                format!("community:{community}"),
                Some(self.organisation.grids(&community).await?),
            ),
            (None, None) => ("district".to_owned(), None),
        };
        let facts = self.store.care_facts(grids).await?;
        let figures = figures::figures(&facts, month, now);
        Ok(Response::new(pb::GetCareFiguresResponse {
            figures: Some(figures_to_proto(scope, &figures)),
        }))
    }

    async fn request_visit(
        &self,
        request: Request<pb::RequestVisitRequest>,
    ) -> Result<Response<pb::RequestVisitResponse>, Status> {
        let actor = actor(&request, |r| &r.actor)?;
        let r = request.into_inner();
        let key = RequestKey::required("RequestVisit", &r.request_id, &r)?;
        let new = NewVisitRequest {
            elder_id: ElderId::parse("elder_id", &r.elder_id)?,
            reason: VisitRequestReason::Operator,
            reference: None,
            note: fields::optional("note", &r.note, fields::SHORT_TEXT)?,
            raised_by: actor,
            hours: requests::parse_hours("hours", r.hours, &self.policy)?,
        };
        let (raised, duplicate) = self.store.request_visit(&key, new).await?;
        tracing::info!(visit_request_id = %raised.id, elder_id = %raised.elder_id, duplicate, "visit requested");
        Ok(Response::new(pb::RequestVisitResponse {
            request: Some(request_to_proto(&raised)),
            duplicate,
        }))
    }

    async fn list_visit_requests(
        &self,
        request: Request<pb::ListVisitRequestsRequest>,
    ) -> Result<Response<pb::ListVisitRequestsResponse>, Status> {
        let r = request.into_inner();
        let grid = GridId::parse_optional("grid_id", &r.grid_id)?;
        let page = r.page.unwrap_or_default();
        let (found, next) = self
            .store
            .visit_requests(
                grid.as_ref(),
                r.open_only,
                page_size(&page)?,
                offset_token(&page.page_token)?,
            )
            .await?;
        Ok(Response::new(pb::ListVisitRequestsResponse {
            requests: found.iter().map(request_to_proto).collect(),
            page: next_token(next),
        }))
    }
}
