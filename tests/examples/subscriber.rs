//! A district system's subscriber to shequ's events, as `docs/subscribing.md`
//! walks through it: a durable pull consumer with explicit acks, replay from
//! the start or from a time, each event validated against the schema it
//! names (`dataschema`), handled once by event id, and applied by business
//! key (the latest state of each complaint, newer events winning), its state
//! kept in a file so a restart resumes where it stopped.
//!
//! ```sh
//! cargo run -p shequ-tests --example subscriber -- \
//!     --nats-url nats://127.0.0.1:14222 --stream COMPLAINTS --durable dashboard \
//!     --state dashboard.json [--from 2026-12-01T00:00:00Z] [--idle-exit 5]
//! ```
//!
//! It prints one line per event: `applied`, `duplicate` (an id handled
//! before), `stale` (older than what the complaint's state already holds) or
//! `rejected` (not valid against its schema: acknowledged as terminated, so
//! it is not redelivered), then the state on exit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, consumer::DeliverPolicy, consumer::pull};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use shequ_proto::events::CloudEvent;

/// What the subscriber keeps between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Every event id handled (applied, stale or rejected): a redelivered
    /// or re-published event is a duplicate.
    handled: BTreeSet<String>,
    /// By business key, the complaint id: its latest status and when.
    complaints: BTreeMap<String, Complaint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Complaint {
    status: String,
    at: DateTime<Utc>,
}

struct Args {
    nats_url: String,
    stream: String,
    durable: String,
    state: PathBuf,
    from: Option<DateTime<Utc>>,
    idle_exit: Duration,
    schemas: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let name = flag
            .strip_prefix("--")
            .with_context(|| format!("{flag}: not a --flag"))?;
        let value = words
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        given.insert(name.to_owned(), value);
    }
    let take = |name: &str| given.get(name).cloned();
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/events/schemas");
    Ok(Args {
        nats_url: take("nats-url").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
        stream: take("stream").unwrap_or_else(|| "COMPLAINTS".into()),
        durable: take("durable").context("--durable NAME is needed")?,
        state: take("state").context("--state FILE is needed")?.into(),
        from: take("from")
            .map(|at| at.parse().context("--from: an RFC 3339 time"))
            .transpose()?,
        idle_exit: Duration::from_secs(
            take("idle-exit")
                .map_or(Ok(5), |secs| secs.parse())
                .context("--idle-exit")?,
        ),
        schemas: take("schemas").map_or(schemas, PathBuf::from),
    })
}

/// The event schemas by their `$id`, which an event's `dataschema` names.
fn schemas(dir: &Path) -> anyhow::Result<BTreeMap<String, jsonschema::Validator>> {
    let mut by_id = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry?.path())?)?;
        let id = schema["$id"].as_str().unwrap_or_default().to_owned();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|error| anyhow::anyhow!("{id}: {error}"))?;
        by_id.insert(id, validator);
    }
    Ok(by_id)
}

/// What became of one event.
enum Handled {
    Applied,
    Duplicate,
    Stale,
    Rejected(String),
}

fn handle(
    state: &mut State,
    schemas: &BTreeMap<String, jsonschema::Validator>,
    body: &[u8],
) -> (Handled, String) {
    let raw: serde_json::Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(error) => return (Handled::Rejected(format!("not JSON: {error}")), "-".into()),
    };
    let event: CloudEvent = match serde_json::from_value(raw.clone()) {
        Ok(event) => event,
        Err(error) => {
            return (
                Handled::Rejected(format!("not a CloudEvent: {error}")),
                "-".into(),
            );
        }
    };
    let label = format!("{} {} {}", event.event_type, event.subject, event.id);
    if state.handled.contains(&event.id) {
        return (Handled::Duplicate, label);
    }
    let schema = event.dataschema.as_deref().and_then(|uri| schemas.get(uri));
    let Some(schema) = schema else {
        state.handled.insert(event.id.clone());
        return (
            Handled::Rejected(format!("unknown dataschema {:?}", event.dataschema)),
            label,
        );
    };
    if let Some(error) = schema.iter_errors(&raw).next() {
        state.handled.insert(event.id.clone());
        return (Handled::Rejected(error.to_string()), label);
    }
    state.handled.insert(event.id.clone());
    let status = event.data["status"].as_str().unwrap_or_default().to_owned();
    let key = event.subject.clone();
    match state.complaints.get(&key) {
        Some(known) if known.at >= event.time => (Handled::Stale, label),
        _ => {
            state.complaints.insert(
                key,
                Complaint {
                    status,
                    at: event.time,
                },
            );
            (Handled::Applied, label)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let schemas = schemas(&args.schemas)?;
    let mut state: State = match std::fs::read_to_string(&args.state) {
        Ok(text) => serde_json::from_str(&text).context("the state file")?,
        Err(_) => State::default(),
    };
    let client = async_nats::connect(&args.nats_url).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&args.stream).await?;
    // Durable: a second run resumes after the last acknowledged event. The
    // start (all, or from a time) counts only when the consumer is created.
    let deliver_policy = match args.from {
        Some(start_time) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                start_time.timestamp_nanos_opt().unwrap_or_default(),
            ))?,
        },
        None => DeliverPolicy::All,
    };
    let consumer = stream
        .get_or_create_consumer(
            &args.durable,
            pull::Config {
                durable_name: Some(args.durable.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                deliver_policy,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    loop {
        let next = tokio::time::timeout(args.idle_exit, messages.next()).await;
        let Ok(Some(message)) = next else {
            break;
        };
        let message = message.map_err(|error| anyhow::anyhow!("receiving: {error}"))?;
        let (handled, label) = handle(&mut state, &schemas, &message.payload);
        // The state is written before the ack: a crash in between redelivers
        // the event, which is then a duplicate.
        std::fs::write(&args.state, serde_json::to_string_pretty(&state)?)?;
        let ack = match &handled {
            Handled::Rejected(_) => AckKind::Term,
            _ => AckKind::Ack,
        };
        message
            .ack_with(ack)
            .await
            .map_err(|error| anyhow::anyhow!("acknowledging: {error}"))?;
        match handled {
            Handled::Applied => println!("applied {label}"),
            Handled::Duplicate => println!("duplicate {label}"),
            Handled::Stale => println!("stale {label}"),
            Handled::Rejected(why) => println!("rejected {label}: {why}"),
        }
    }
    for (complaint, known) in &state.complaints {
        println!(
            "state {complaint} {} {}",
            known.status,
            known.at.to_rfc3339()
        );
    }
    Ok(())
}
