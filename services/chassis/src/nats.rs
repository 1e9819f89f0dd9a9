//! Connecting to NATS and declaring the streams.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::Error;
use crate::config::{NatsAccess, StreamSettings};
use crate::metrics::Metrics;

/// A stream a service produces into.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static str,
}

/// Connects in the background to the server (or servers, comma-separated) of
/// `url`: a service starts (and takes requests, which wait in its outbox)
/// even while NATS is down, and reconnects forever. Each loss
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
        .connect(servers(url))
        .await
        .map_err(|error| Error::Nats(format!("connecting to {url}: {error}")))
}

/// The servers `url` names: one URL, or a cluster's, comma-separated
/// (`nats://n1:4222,nats://n2:4222`); the client connects to one and fails
/// over to the others (and to those the cluster announces).
fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .collect()
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

/// The configuration of `spec`'s stream with `settings`: file storage,
/// limits retention (kept until an age or size limit, none by default, so
/// subscribers can replay history).
pub fn stream_config(spec: StreamSpec, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: spec.name.into(),
        subjects: vec![spec.subjects.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(u64::from(settings.max_age_days) * 86_400),
        max_bytes: i64::try_from(settings.max_bytes)
            .ok()
            .filter(|bytes| *bytes > 0)
            .unwrap_or(-1),
        duplicate_window: Duration::from_secs(settings.duplicate_window_secs),
        num_replicas: usize::from(settings.replicas),
        ..Default::default()
    }
}

/// Creates the stream if it does not exist, with the default settings; an
/// existing one is left as it is (a consumer ensures the stream of the
/// service it reads from, whose producer declares its settings).
pub async fn ensure_stream(
    js: &jetstream::Context,
    spec: StreamSpec,
) -> Result<stream::Stream, Error> {
    js.get_or_create_stream(stream_config(spec, &StreamSettings::default()))
        .await
        .map_err(|error| Error::Nats(format!("creating stream {}: {error}", spec.name)))
}

/// The producer's declaration of its own stream: created with `settings`, or,
/// existing with other limits, duplicate window or replicas, updated to them
/// (logged, old and new); a change JetStream refuses (more replicas than the
/// cluster has servers, say) is an error saying so.
pub async fn declare_stream(
    js: &jetstream::Context,
    spec: StreamSpec,
    settings: &StreamSettings,
) -> Result<stream::Stream, Error> {
    let wanted = stream_config(spec, settings);
    let failed = |action: &str, error: &dyn std::fmt::Display| {
        Error::Nats(format!("{action} stream {}: {error}", spec.name))
    };
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|error| failed("creating", &error))?;
    let current = stream
        .info()
        .await
        .map_err(|error| failed("reading", &error))?
        .config
        .clone();
    let differs = current.max_age != wanted.max_age
        || current.max_bytes != wanted.max_bytes
        || current.duplicate_window != wanted.duplicate_window
        || current.num_replicas != wanted.num_replicas
        || current.subjects != wanted.subjects;
    if !differs {
        return Ok(stream);
    }
    let update = stream::Config {
        storage: current.storage,
        retention: current.retention,
        ..wanted
    };
    js.update_stream(update.clone()).await.map_err(|error| {
        failed(
            "updating",
            &format!("{error} (wanted {})", describe(&update)),
        )
    })?;
    tracing::info!(
        stream = spec.name,
        from = %describe(&current),
        to = %describe(&update),
        "stream configuration updated"
    );
    js.get_stream(spec.name)
        .await
        .map_err(|error| failed("reading", &error))
}

/// A stream's limits, window and replicas, for logs and errors.
fn describe(config: &stream::Config) -> String {
    format!(
        "max_age {}s, max_bytes {}, duplicate_window {}s, replicas {}",
        config.max_age.as_secs(),
        config.max_bytes,
        config.duplicate_window.as_secs(),
        config.num_replicas
    )
}
