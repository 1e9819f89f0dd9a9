//! The gRPC adapter: `shequ.complaints.v1` requests parsed into domain values
//! (bad input is `InvalidArgument` naming the field, before anything is
//! written; each id field parsed once into its id type), store errors mapped
//! to status codes in one place, domain values mapped back to messages.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shequ_chassis::grpc::{
    self, geo_point, invalid_argument, optional_enum, page_size, required_enum, required_time,
    timestamp,
};
use shequ_chassis::storage::Rule;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use tonic::{Request, Response, Status};

use crate::access::READS_REPORTER;
use crate::classifier::Classifiers;
use crate::domain::classification::Classification;
use crate::domain::complaint::{Complaint, Intake, Satisfaction, TransitionError};
use crate::domain::figures::Figures;
use crate::domain::kinds::{Category, Channel, MerchantCheck, Priority, Status as ComplaintStatus};
use crate::domain::organisation;
use crate::domain::reporter::Reporter;
use crate::domain::time_limits::TimeLimits;
use crate::domain::{
    BuildingId, CommunityId, ComplaintId, ElderId, FieldError, GridId, MerchantId, fields,
};
use crate::merchants::MerchantDirectory;
use crate::store::{
    Change, Complaints, Cursor, HistoryEntry, ListFilter, RequestKey, Scope, Store, StoreError,
};

/// Serves both the complaint and the organisation APIs.
#[derive(Debug, Clone)]
pub(crate) struct ComplaintsApi {
    store: Store,
    limits: Arc<TimeLimits>,
    merchants: MerchantDirectory,
    classifiers: Classifiers,
}

impl ComplaintsApi {
    pub(crate) fn new(
        store: Store,
        limits: Arc<TimeLimits>,
        merchants: MerchantDirectory,
        classifiers: Classifiers,
    ) -> Self {
        Self {
            store,
            limits,
            classifiers,
            merchants,
        }
    }
}

/// A transition the complaint's state refuses: `FailedPrecondition`, or
/// `InvalidArgument` naming the field it is about.
impl Rule for TransitionError {
    fn status(&self) -> Status {
        match self {
            TransitionError::Field(error) => error.clone().into(),
            error => Status::failed_precondition(error.to_string()),
        }
    }
}

#[tonic::async_trait]
impl pb::complaint_service_server::ComplaintService for ComplaintsApi {
    async fn submit_complaint(
        &self,
        request: Request<pb::SubmitComplaintRequest>,
    ) -> Result<Response<pb::SubmitComplaintResponse>, Status> {
        let actor = grpc::actor(&request, |_| "")?;
        // What the asking role may read: the reporter of its own submission,
        // but of a duplicate (a key someone else may have used) only when it
        // may read complaints.
        let may_read =
            grpc::caller(&request).is_none_or(|caller| READS_REPORTER.contains(&caller.role));
        let request = request.into_inner();
        let key = RequestKey::required("SubmitComplaint", &request.request_id, &request)?;
        let reporter = request.reporter.unwrap_or_default();
        let text = fields::required("text", &request.text, fields::LONG_TEXT)?;
        let channel = required_enum("channel", request.channel, Channel::from_proto_number)?;
        let category = optional_enum("category", request.category, Category::from_proto_number)?;
        let priority = optional_enum("priority", request.priority, Priority::from_proto_number)?
            .unwrap_or(Priority::Normal);
        let reporter = Reporter::parse(&reporter.name, &reporter.phone)?;
        let building_id = BuildingId::parse_optional("building_id", &request.building_id)?;
        let location = fields::optional("location", &request.location, fields::SHORT_TEXT)?;
        let merchant_id = MerchantId::parse_optional("merchant_id", &request.merchant_id)?;
        let elder_id = ElderId::parse_optional("elder_id", &request.elder_id)?;
        let grid_id = GridId::parse_optional("grid_id", &request.grid_id)?;
        let point = match request.point {
            None => None,
            point => Some(grpc::location("point", point)?),
        };
        if grid_id.is_none() && building_id.is_none() {
            return Err(invalid_argument(
                "grid_id",
                "a grid_id or a building_id is required",
            ));
        }
        // Classified once the request is known to be well formed.
        let classification = match category {
            Some(category) => Classification::by_caller(category),
            None => self
                .classifiers
                .current()
                .classify(&text, merchant_id.is_some()),
        };
        let merchant_check = match &merchant_id {
            Some(merchant_id) => Some(self.merchants.check(merchant_id).await),
            None => None,
        };
        let intake = Intake {
            text,
            channel,
            classification,
            priority,
            reporter,
            building_id,
            location,
            point,
            merchant_id,
            merchant_check,
            elder_id,
        };
        let (complaint, duplicate) = self
            .store
            .submit(&key, &actor, intake, grid_id.as_ref(), &self.limits)
            .await?;
        tracing::info!(complaint_id = %complaint.id, category = complaint.category.as_str(), duplicate, %actor, "complaint submitted");
        let with_reporter = !duplicate || may_read;
        Ok(Response::new(pb::SubmitComplaintResponse {
            complaint: Some(to_proto(&complaint, &[], self.store.now(), with_reporter)),
            duplicate,
        }))
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::GetComplaintResponse>, Status> {
        let id = ComplaintId::parse("complaint_id", &request.get_ref().complaint_id)?;
        let (complaint, history) = self.store.get(&id).await?;
        Ok(Response::new(pb::GetComplaintResponse {
            complaint: Some(to_proto(&complaint, &history, self.store.now(), true)),
        }))
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let request = request.into_inner();
        let filter = ListFilter {
            status: optional_enum("status", request.status, ComplaintStatus::from_proto_number)?,
            grid_id: GridId::parse_optional("grid_id", &request.grid_id)?,
            community_id: CommunityId::parse_optional("community_id", &request.community_id)?,
            category: optional_enum("category", request.category, Category::from_proto_number)?,
            overdue_only: request.overdue_only,
        };
        let page = request.page.unwrap_or_default();
        let page_size = page_size(&page)?;
        let after = parse_page_token(&page.page_token)?;
        let (complaints, next) = self.store.list(&filter, page_size, after).await?;
        let now = self.store.now();
        Ok(Response::new(pb::ListComplaintsResponse {
            complaints: complaints
                .iter()
                .map(|c| to_proto(c, &[], now, false))
                .collect(),
            page: Some(common::PageResponse {
                next_page_token: next
                    .map(|cursor| format!("{}:{}", cursor.submitted_at, cursor.id))
                    .unwrap_or_default(),
            }),
        }))
    }

    async fn accept_complaint(
        &self,
        request: Request<pb::AcceptComplaintRequest>,
    ) -> Result<Response<pb::AcceptComplaintResponse>, Status> {
        let (common, r) = Common::of(request)?;
        // Published in `complaint.accepted`: a staff account, never a name.
        let assignee = match r.assignee.trim() {
            "" => None,
            assignee => Some(fields::account("assignee", assignee)?),
        };
        let complaint = self
            .transition(common, None, move |c, _, now| c.accept(assignee, now))
            .await?;
        Ok(Response::new(pb::AcceptComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn start_complaint(
        &self,
        request: Request<pb::StartComplaintRequest>,
    ) -> Result<Response<pb::StartComplaintResponse>, Status> {
        let (common, _) = Common::of(request)?;
        let complaint = self
            .transition(common, None, move |c, _, _| c.start())
            .await?;
        Ok(Response::new(pb::StartComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn resolve_complaint(
        &self,
        request: Request<pb::ResolveComplaintRequest>,
    ) -> Result<Response<pb::ResolveComplaintResponse>, Status> {
        let (common, r) = Common::of(request)?;
        let note = fields::required("note", &r.note, fields::LONG_TEXT)?;
        let follow_up = self.limits.follow_up();
        let complaint = self
            .transition(common, None, move |c, _, now| {
                c.resolve(note, r.merchant_at_fault, follow_up, now)
            })
            .await?;
        Ok(Response::new(pb::ResolveComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn record_follow_up(
        &self,
        request: Request<pb::RecordFollowUpRequest>,
    ) -> Result<Response<pb::RecordFollowUpResponse>, Status> {
        let (common, r) = Common::of(request)?;
        let satisfaction = Satisfaction::parse("satisfaction", r.satisfaction)?;
        let comment = fields::optional("comment", &r.comment, fields::REASON)?;
        let limits = Arc::clone(&self.limits);
        let complaint = self
            .transition(common, None, move |c, _, now| {
                c.follow_up(satisfaction, r.problem_recurred, comment, &limits, now)
            })
            .await?;
        Ok(Response::new(pb::RecordFollowUpResponse {
            complaint: Some(complaint),
        }))
    }

    async fn reject_complaint(
        &self,
        request: Request<pb::RejectComplaintRequest>,
    ) -> Result<Response<pb::RejectComplaintResponse>, Status> {
        let (common, r) = Common::of(request)?;
        let reason = fields::required("reason", &r.reason, fields::REASON)?;
        let complaint = self
            .transition(common, None, move |c, _, _| c.reject(reason))
            .await?;
        Ok(Response::new(pb::RejectComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn merge_complaint(
        &self,
        request: Request<pb::MergeComplaintRequest>,
    ) -> Result<Response<pb::MergeComplaintResponse>, Status> {
        let (common, r) = Common::of(request)?;
        let into = ComplaintId::parse("into_complaint_id", &r.into_complaint_id)?;
        let complaint = self
            .transition(common, Some(&into), move |c, target, _| match target {
                Some(target) => c.merge_into(target),
                None => Err(FieldError::new("into_complaint_id", "is required").into()),
            })
            .await?;
        Ok(Response::new(pb::MergeComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn reclassify_complaint(
        &self,
        request: Request<pb::ReclassifyComplaintRequest>,
    ) -> Result<Response<pb::ReclassifyComplaintResponse>, Status> {
        let (common, r) = Common::of(request)?;
        let new_category = required_enum("category", r.category, Category::from_proto_number)?;
        let new_priority = optional_enum("priority", r.priority, Priority::from_proto_number)?;
        let limits = Arc::clone(&self.limits);
        let complaint = self
            .transition(common, None, move |c, _, _| {
                c.reclassify(new_category, new_priority, &limits)
            })
            .await?;
        Ok(Response::new(pb::ReclassifyComplaintResponse {
            complaint: Some(complaint),
        }))
    }

    async fn get_figures(
        &self,
        request: Request<pb::GetFiguresRequest>,
    ) -> Result<Response<pb::GetFiguresResponse>, Status> {
        let r = request.into_inner();
        let community = CommunityId::parse_optional("community_id", &r.community_id)?;
        let grid = GridId::parse_optional("grid_id", &r.grid_id)?;
        let scope = match (community, grid) {
            (Some(_), Some(_)) => {
                return Err(invalid_argument(
                    "grid_id",
                    "give a community_id or a grid_id, not both",
                ));
            }
            (Some(community), None) => Scope::Community(community),
            (None, Some(grid)) => Scope::Grid(grid),
            (None, None) => Scope::District,
        };
        let period = r.period.unwrap_or_default();
        let from = required_time("period.from", period.from)?;
        let to = required_time("period.to", period.to)?;
        if from >= to {
            return Err(invalid_argument("period.to", "must be after period.from"));
        }
        if !self.store.scope_exists(&scope).await? {
            return Err(StoreError::NotFound(scope.name().replace(':', " ")).into());
        }
        let now = self.store.now();
        let figures = self.store.figures(&scope, from, to, now).await?;
        Ok(Response::new(pb::GetFiguresResponse {
            figures: Some(figures_to_proto(&figures, &scope, from, to, now)),
        }))
    }
}

impl ComplaintsApi {
    /// Applies `change` in the store to the complaint `common` names.
    async fn transition(
        &self,
        common: Common,
        related: Option<&ComplaintId>,
        change: impl Change,
    ) -> Result<pb::Complaint, Status> {
        let Common {
            complaint_id,
            request,
            actor,
        } = common;
        let complaint = self
            .store
            .transition(&complaint_id, request.as_ref(), &actor, related, change)
            .await?;
        tracing::info!(%complaint_id, status = complaint.status.as_str(), %actor, "complaint changed");
        Ok(to_proto(&complaint, &[], self.store.now(), false))
    }
}

/// What every transition request carries, parsed: the complaint, the
/// idempotency key with the request's digest, and the actor (the
/// authenticated caller).
struct Common {
    complaint_id: ComplaintId,
    request: Option<RequestKey>,
    actor: String,
}

/// A transition request: its RPC's name and the fields every one has.
trait TransitionRequest: prost::Message {
    const METHOD: &'static str;
    fn complaint_id(&self) -> &str;
    fn request_id(&self) -> &str;
    fn actor(&self) -> &str;
}

macro_rules! transition_requests {
    ($($message:ident => $method:literal),* $(,)?) => {$(
        impl TransitionRequest for pb::$message {
            const METHOD: &'static str = $method;
            fn complaint_id(&self) -> &str {
                &self.complaint_id
            }
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn actor(&self) -> &str {
                &self.actor
            }
        }
    )*};
}

transition_requests!(
    AcceptComplaintRequest => "AcceptComplaint",
    StartComplaintRequest => "StartComplaint",
    ResolveComplaintRequest => "ResolveComplaint",
    RecordFollowUpRequest => "RecordFollowUp",
    RejectComplaintRequest => "RejectComplaint",
    MergeComplaintRequest => "MergeComplaint",
    ReclassifyComplaintRequest => "ReclassifyComplaint",
);

impl Common {
    /// The common fields of `request`, and the request itself.
    fn of<M: TransitionRequest>(request: Request<M>) -> Result<(Self, M), Status> {
        let actor = grpc::actor(&request, M::actor)?;
        let r = request.into_inner();
        let common = Self {
            complaint_id: ComplaintId::parse("complaint_id", r.complaint_id())?,
            request: RequestKey::optional(M::METHOD, r.request_id(), &r)?,
            actor,
        };
        Ok((common, r))
    }
}

#[tonic::async_trait]
impl pb::organisation_service_server::OrganisationService for ComplaintsApi {
    async fn load_organisation(
        &self,
        request: Request<pb::LoadOrganisationRequest>,
    ) -> Result<Response<pb::LoadOrganisationResponse>, Status> {
        let organisation = request
            .into_inner()
            .organisation
            .ok_or_else(|| invalid_argument("organisation", "is required"))?;
        let organisation = organisation::validate(organisation)?;
        self.store.load_organisation(&organisation).await?;
        let grids = organisation.communities.iter().flat_map(|c| &c.grids);
        let response = pb::LoadOrganisationResponse {
            communities: count(organisation.communities.len()),
            grids: count(grids.clone().count()),
            buildings: count(grids.map(|g| g.building_ids.len()).sum()),
        };
        tracing::info!(
            communities = response.communities,
            grids = response.grids,
            "organisation loaded"
        );
        Ok(Response::new(response))
    }

    async fn get_organisation(
        &self,
        _request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        let organisation = self.store.organisation().await?;
        Ok(Response::new(pb::GetOrganisationResponse {
            organisation: Some(organisation),
        }))
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn parse_page_token(token: &str) -> Result<Option<Cursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || invalid_argument("page.page_token", "is not a token this service gave out");
    let (at, id) = token.split_once(':').ok_or_else(invalid)?;
    Ok(Some(Cursor {
        submitted_at: at.parse().map_err(|_| invalid())?,
        id: ComplaintId::parse("page.page_token", id).map_err(|_| invalid())?,
    }))
}

/// The message for a complaint; the reporter's name and phone only when
/// `with_reporter` (GetComplaint, and the submitter's own submission), the
/// masked phone otherwise.
fn to_proto(
    c: &Complaint,
    history: &[HistoryEntry],
    now: DateTime<Utc>,
    with_reporter: bool,
) -> pb::Complaint {
    let masked = c
        .reporter
        .phone
        .as_ref()
        .map(|phone| phone.masked())
        .unwrap_or_default();
    pb::Complaint {
        id: c.id.to_string(),
        status: c.status.proto_number(),
        text: c.text.clone(),
        channel: c.channel.proto_number(),
        category: c.category.proto_number(),
        classified_by: c.classified_by.clone(),
        classification_pending: c.classification_pending(),
        priority: c.priority.proto_number(),
        reporter: with_reporter.then(|| pb::Reporter {
            name: c.reporter.name.clone().unwrap_or_default(),
            phone: c
                .reporter
                .phone
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        }),
        reporter_phone_masked: masked,
        community_id: c.community_id.to_string(),
        grid_id: c.grid_id.to_string(),
        building_id: c.building_id.clone().map(String::from).unwrap_or_default(),
        location: c.location.clone().unwrap_or_default(),
        point: c.point.map(geo_point),
        possible_duplicates: c
            .possible_duplicates
            .iter()
            .map(|d| pb::PossibleDuplicate {
                complaint_id: d.complaint_id.to_string(),
                distance_metres: d.distance_metres,
                same_building: d.same_building,
            })
            .collect(),
        merchant_id: c.merchant_id.clone().map(String::from).unwrap_or_default(),
        elder_id: c.elder_id.clone().map(String::from).unwrap_or_default(),
        level: c.level.proto_number(),
        assignee: c.assignee.clone(),
        submitted_at: Some(timestamp(c.submitted_at)),
        response_due_at: Some(timestamp(c.response_due_at)),
        resolution_due_at: Some(timestamp(c.resolution_due_at)),
        accepted_at: c.accepted_at.map(timestamp),
        resolved_at: c.resolved_at.map(timestamp),
        follow_up_due_at: c.follow_up_due_at.map(timestamp),
        closed_at: c.closed_at.map(timestamp),
        resolution_note: c.resolution_note.clone().unwrap_or_default(),
        merchant_at_fault: c.merchant_at_fault,
        satisfaction: c.satisfaction.map_or(0, |s| u32::from(s.get())),
        reject_reason: c.reject_reason.clone().unwrap_or_default(),
        merged_into: c.merged_into.clone().map(String::from).unwrap_or_default(),
        merchant_check: c.merchant_check.map_or(0, MerchantCheck::proto_number),
        reopen_count: c.reopen_count,
        overdue: c.is_overdue(now),
        history: history
            .iter()
            .map(|entry| pb::HistoryEntry {
                at: Some(timestamp(entry.at)),
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                from_status: entry.from_status.proto_number(),
                to_status: entry.to_status.proto_number(),
                note: entry.note.clone().unwrap_or_default(),
                satisfaction: entry.satisfaction.map_or(0, |s| u32::from(s.get())),
            })
            .collect(),
    }
}

fn figures_to_proto(
    f: &Figures,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> pb::Figures {
    pb::Figures {
        scope: scope.name(),
        period: Some(common::Period {
            from: Some(timestamp(from)),
            to: Some(timestamp(to)),
        }),
        as_of: Some(timestamp(now)),
        submitted: f.submitted,
        responded_on_time: f.responded_on_time,
        response_counted: f.response_counted,
        response_rate: f.response_rate(),
        resolved_on_time: f.resolved_on_time,
        resolution_counted: f.resolution_counted,
        on_time_resolution_rate: f.on_time_resolution_rate(),
        satisfied: f.satisfied,
        followed_up: f.followed_up,
        satisfaction_rate: f.satisfaction_rate(),
        reopened: f.reopened,
        resolved: f.resolved,
        reopen_rate: f.reopen_rate(),
        followed_up_on_time: f.followed_up_on_time,
        follow_up_counted: f.follow_up_counted,
        follow_up_rate: f.follow_up_rate(),
        merged: f.merged,
        cases: f.cases(),
        backlog: Some(pb::Backlog {
            under_1_day: f.backlog.under_1_day,
            from_1_to_3_days: f.backlog.from_1_to_3_days,
            from_3_to_7_days: f.backlog.from_3_to_7_days,
            over_7_days: f.backlog.over_7_days,
        }),
    }
}
