//! Logging through `tracing`: human-readable lines locally, JSON in containers.
//! The filter comes from `RUST_LOG` (default `info`).
//!
//! A JSON line has the event's fields at the top level, the innermost span's
//! fields under `span` and every open span's under `spans`, so a line written
//! during a gRPC call or an event's handling carries that work's `trace_id`
//! (see [`crate::trace`]) as `span.trace_id`.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to stdout; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let _ = subscriber(format, filter, ansi, std::io::stdout).try_init();
}

/// The subscriber [`init`] installs, writing through `writer` (tests read it back).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
    }
}
