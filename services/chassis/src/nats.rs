//! Connecting to NATS and declaring the streams.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::Error;
use crate::config::NatsAccess;
use crate::metrics::Metrics;

/// A stream a service produces into.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static str,
}

/// How long JetStream remembers `Nats-Msg-Id`s to drop re-published events.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Connects in the background: a service starts (and takes requests, which wait
/// in its outbox) even while NATS is down, and reconnects forever. Each loss
/// and each (re)connection is logged and kept in `metrics`
/// (`shequ_nats_connected`, `shequ_nats_disconnects_total`).
pub async fn connect(
    url: &str,
    access: &NatsAccess,
    name: &str,
    metrics: &Metrics,
) -> Result<async_nats::Client, Error> {
    let metrics = metrics.clone();
    let server = url.to_owned();
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None::<usize>)
        .event_callback(move |event| {
            let (metrics, server) = (metrics.clone(), server.clone());
            async move { connection_event(&metrics, &server, event) }
        });
    if let (Some(user), Some(password)) = (&access.user, &access.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &access.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&access.cert_file, &access.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options
        .connect(url)
        .await
        .map_err(|error| Error::Nats(format!("connecting to {url}: {error}")))
}

/// Logs a connection event and keeps the connection state in `metrics`.
fn connection_event(metrics: &Metrics, server: &str, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => {
            metrics.set_nats_connected(true);
            tracing::info!(%server, "connected to NATS");
        }
        Event::Disconnected => {
            metrics.set_nats_connected(false);
            tracing::warn!(%server, "NATS connection lost; reconnecting (events wait in the outbox)");
        }
        Event::LameDuckMode => {
            tracing::warn!(%server, "the NATS server is shutting down (lame duck mode)");
        }
        Event::SlowConsumer(_) | Event::ServerError(_) | Event::ClientError(_) => {
            tracing::warn!(%server, %event, "NATS");
        }
        Event::Draining | Event::Closed => tracing::info!(%server, %event, "NATS"),
    }
}

/// A JetStream context whose publishes and API calls give up after `timeout`.
pub fn jetstream(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    let mut context = jetstream::new(client);
    context.set_timeout(timeout);
    context
}

/// Creates the stream if it does not exist (file storage, kept until an operator
/// sets limits, so subscribers can replay history); an existing one is left as is.
pub async fn ensure_stream(
    js: &jetstream::Context,
    spec: StreamSpec,
) -> Result<stream::Stream, Error> {
    js.get_or_create_stream(stream::Config {
        name: spec.name.into(),
        subjects: vec![spec.subjects.into()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .map_err(|error| Error::Nats(format!("creating stream {}: {error}", spec.name)))
}
