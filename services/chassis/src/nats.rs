//! Connecting to NATS and declaring the streams.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::Error;
use crate::config::NatsAccess;

/// A stream a service produces into.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static str,
}

/// How long JetStream remembers `Nats-Msg-Id`s to drop re-published events.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Connects in the background: a service starts (and takes requests, which wait
/// in its outbox) even while NATS is down, and reconnects forever.
pub async fn connect(
    url: &str,
    access: &NatsAccess,
    name: &str,
) -> Result<async_nats::Client, Error> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None::<usize>);
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
