//! `shequ.ops.v1.ParkedEventService`, served by every service for operators:
//! the events its consumers parked ([`crate::inbox`]), and replaying one.

use shequ_proto::ops::v1 as pb;
use tonic::{Request, Response, Status};

use crate::clock::{SharedClock, from_millis};
use crate::database::Database;
use crate::grpc::{invalid_argument, not_stored, storage_failed, timestamp};
use crate::inbox::{Consumers, Outcome, ParkedEvent, ReplayError};

/// The service's full name, as health and the access table know it.
pub const SERVICE: &str = "shequ.ops.v1.ParkedEventService";
/// Listed at most per call, and by default.
const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;

/// The parked events of one service's database and its consumers' handlers.
#[derive(Debug, Clone)]
pub struct ParkedEvents {
    db: Database,
    consumers: Consumers,
    clock: SharedClock,
}

impl ParkedEvents {
    pub fn new(db: Database, consumers: Consumers, clock: SharedClock) -> Self {
        Self {
            db,
            consumers,
            clock,
        }
    }

    pub fn into_server(self) -> pb::parked_event_service_server::ParkedEventServiceServer<Self> {
        pb::parked_event_service_server::ParkedEventServiceServer::new(self)
    }
}

fn to_proto(event: ParkedEvent) -> pb::ParkedEvent {
    pb::ParkedEvent {
        id: event.id,
        consumer: event.consumer,
        event_id: event.event_id.unwrap_or_default(),
        event_type: event.event_type.unwrap_or_default(),
        nats_subject: event.nats_subject,
        stream_sequence: event.stream_sequence,
        payload: event.payload,
        headers: event.headers.into_iter().collect(),
        error: event.error,
        deliveries: event.deliveries,
        parked_at: Some(timestamp(from_millis(event.parked_at))),
    }
}

#[tonic::async_trait]
impl pb::parked_event_service_server::ParkedEventService for ParkedEvents {
    async fn list_parked_events(
        &self,
        request: Request<pb::ListParkedEventsRequest>,
    ) -> Result<Response<pb::ListParkedEventsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            limit if limit <= MAX_LIMIT => limit,
            limit => {
                return Err(invalid_argument(
                    "limit",
                    format!("must be at most {MAX_LIMIT}, got {limit}"),
                ));
            }
        };
        let consumer = Some(request.consumer.as_str()).filter(|name| !name.is_empty());
        let events = self
            .db
            .parked(consumer.map(str::to_owned), limit)
            .await
            .map_err(|error| crate::grpc::storage_error(&error))?;
        Ok(Response::new(pb::ListParkedEventsResponse {
            events: events.into_iter().map(to_proto).collect(),
        }))
    }

    async fn replay_parked_event(
        &self,
        request: Request<pb::ReplayParkedEventRequest>,
    ) -> Result<Response<pb::ReplayParkedEventResponse>, Status> {
        let id = request.into_inner().id;
        if id <= 0 {
            return Err(invalid_argument(
                "id",
                "must be a parked event's id (1 or more)",
            ));
        }
        let outcome = crate::inbox::replay(&self.db, &self.consumers, id, &self.clock).await;
        match outcome {
            Ok(outcome) => Ok(Response::new(pb::ReplayParkedEventResponse {
                outcome: match outcome {
                    Outcome::Applied => "applied",
                    Outcome::AlreadyProcessed => "already_processed",
                }
                .into(),
            })),
            Err(ReplayError::NotFound(id)) => {
                Err(Status::not_found(format!("parked event {id} not found")))
            }
            Err(error @ ReplayError::StillMalformed(_)) => {
                Err(Status::failed_precondition(error.to_string()))
            }
            Err(error @ ReplayError::UnknownConsumer(_)) => Err(storage_failed(&error)),
            Err(ReplayError::Transient(reason)) => Err(not_stored(&reason)),
        }
    }
}
