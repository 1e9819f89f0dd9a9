//! Serving a service's gRPC routes with `grpc.health.v1`, reflection (so `grpcurl`
//! works) and graceful shutdown, plus the error helpers every handler uses.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};

use crate::Error;

/// Serves `routes` on `listener` until `shutdown`: health reports SERVING for
/// each of `service_names`, and NOT_SERVING as soon as shutdown begins; in-flight
/// calls are finished before this returns.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(shequ_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| Error::Config(format!("gRPC reflection: {error}")))?;
    let names: Vec<String> = service_names.iter().map(|name| name.to_string()).collect();
    let stopping = async move {
        shutdown.cancelled().await;
        for name in &names {
            health
                .set_service_status(name.as_str(), ServingStatus::NotServing)
                .await;
        }
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    };
    Server::builder()
        .add_routes(routes.add_service(health_service).add_service(reflection))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopping)
        .await?;
    Ok(())
}

/// `InvalidArgument` naming the offending field, with a `BadRequest` detail.
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// The field named by an `InvalidArgument` status, if it carries a `BadRequest`.
pub fn violated_field(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .bad_request()
        .and_then(|bad| bad.field_violations.first())
        .map(|violation| violation.field.clone())
}
