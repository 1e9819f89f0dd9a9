//! `events tail`: follows the CloudEvents the services publish on JetStream.
//!
//! Every stream whose subjects the pattern reaches gets an ordered pull
//! consumer of its own (ephemeral, in memory, no acks, filtered to the part of
//! the stream the pattern matches: a single filter subject, as nats-server 2.9
//! takes), read by a task of its own; the tasks hand their messages to one
//! channel, so streams are merged as events arrive. When a consumer fails, or
//! the connection comes back (the server may have restarted and forgotten it),
//! its task makes a new one that starts after the last event it passed on:
//! nothing is skipped or shown twice. The
//! consumers are deleted on the way out; any left behind (a killed process)
//! the server drops after 30 s without a pull.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use async_nats::{ConnectErrorKind, Event};
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use shequ_proto::events::{CloudEvent, alliance, care, complaints};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::cli::{NatsArgs, TailArgs};
use crate::failure::{NatsUnreachable, NotFound, Usage};
use crate::output::Output;
use crate::subject;
use crate::time::{self, Since};

/// How long to wait for NATS to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one JetStream API call (list streams, create a consumer) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long deleting the consumers on the way out may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(2);
/// The waits between tries at making a failed consumer again: from 0.25 s,
/// doubling, at most 10 s, each drawn from the upper half of its step (the
/// services' backoff, `shequ_chassis::backoff`, in the same shape).
fn retry_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(125))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}
/// Messages the stream tasks may hold ready before they wait for the printer.
const CHANNEL_CAPACITY: usize = 64;
/// What the consumers say they are, for an operator listing consumers.
const DESCRIPTION: &str = "shequctl events tail";

/// A stream the pattern reaches, and the filter its consumer takes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    stream: String,
    filter: String,
}

/// A message and the stream it came from.
type Delivery = (String, jetstream::Message);

/// The consumers the tail has on the server now (`(stream, consumer)`, one
/// slot per feed), to delete on the way out.
type Consumers = Arc<Mutex<Vec<Option<(String, String)>>>>;

/// `events tail`: follows until Ctrl-C, `--count` or `--idle-exit`.
pub(super) async fn tail(args: &TailArgs, output: Output) -> anyhow::Result<()> {
    let deliver_policy = deliver_policy(args.from)?;
    // Ctrl-C is caught from the start: while connecting and subscribing too,
    // it ends the tail cleanly (exit 0, its consumers deleted).
    let mut stop = Stop::install()?;
    let (reconnected, reconnects) = watch::channel(0_u64);
    let client = tokio::select! {
        client = connect(&args.nats, output, reconnected) => client?,
        () = stop.wait() => return Ok(()),
    };
    let mut js = jetstream::new(client);
    js.set_timeout(REQUEST_TIMEOUT);

    let consumers = Consumers::default();
    let subscribed = tokio::select! {
        subscribed = subscribe(&js, args, deliver_policy, output, &consumers, reconnects) => {
            Some(subscribed)
        }
        () = stop.wait() => None,
    };
    let result = match subscribed {
        Some(Ok((sources, mut tasks, receiver))) => {
            notice(output, &following(args, &sources));
            let result = follow(receiver, args, output, stop).await;
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            result
        }
        Some(Err(error)) => Err(error),
        None => Ok(()),
    };
    remove(&js, &consumers).await;
    result
}

/// Finds the streams the pattern reaches and starts a feed on each; what
/// they deliver comes out of the receiver.
async fn subscribe(
    js: &jetstream::Context,
    args: &TailArgs,
    deliver_policy: consumer::DeliverPolicy,
    output: Output,
    consumers: &Consumers,
    reconnects: watch::Receiver<u64>,
) -> anyhow::Result<(Vec<Source>, JoinSet<()>, mpsc::Receiver<Delivery>)> {
    let url = &args.nats.url;
    let streams: Vec<stream::Info> =
        js.streams().try_collect().await.with_context(|| {
            format!("listing the JetStream streams at {url} (is JetStream on?)")
        })?;
    let streams: Vec<(String, Vec<String>)> = streams
        .into_iter()
        .map(|info| (info.config.name, info.config.subjects))
        .collect();
    let sources = sources(args.pattern.as_str(), &streams);
    if sources.is_empty() {
        return Err(NotFound(no_stream_message(args.pattern.as_str(), url, &streams)).into());
    }

    consumers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .resize(sources.len(), None);
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    // Dropped on an error (or Ctrl-C), the set stops the feeds started so far.
    let mut tasks = JoinSet::new();
    for (slot, source) in sources.iter().enumerate() {
        let mut feed = Feed {
            js: js.clone(),
            source: source.clone(),
            slot,
            consumers: consumers.clone(),
            after: 0,
            output,
            reconnects: reconnects.clone(),
        };
        let messages = feed.open(deliver_policy).await?;
        tasks.spawn(feed.run(messages, sender.clone()));
    }
    Ok((sources, tasks, receiver))
}

/// One stream's part of the tail: its consumer, and where it has got to.
#[derive(Debug)]
struct Feed {
    js: jetstream::Context,
    source: Source,
    /// This feed's place in `consumers`.
    slot: usize,
    consumers: Consumers,
    /// The stream sequence of the last message passed on, or before the first
    /// one wanted: anything at or below it is not (or no longer) wanted.
    after: u64,
    output: Output,
    /// Changes each time the connection comes back.
    reconnects: watch::Receiver<u64>,
}

impl Feed {
    /// Makes the consumer (deleting the one before, if any) and starts reading it.
    async fn open(
        &mut self,
        deliver_policy: consumer::DeliverPolicy,
    ) -> anyhow::Result<consumer::pull::Ordered> {
        let Source { stream, filter } = &self.source;
        if let Some((stream, name)) = self.replace_consumer(None) {
            let _ = self.js.delete_consumer_from_stream(&name, &stream).await;
        }
        let consumer = self
            .js
            .create_consumer_on_stream(
                consumer::pull::OrderedConfig {
                    description: Some(DESCRIPTION.to_owned()),
                    filter_subject: filter.clone(),
                    deliver_policy,
                    ..Default::default()
                },
                stream,
            )
            .await
            .with_context(|| format!("creating a consumer on stream {stream}"))?;
        let info = consumer.cached_info();
        // Where the server starts it (after the last message, for `now`). When
        // async-nats remakes an ordered consumer that failed before its first
        // message, it starts it from the beginning of the stream: what is at or
        // below `after` is skipped.
        self.after = self.after.max(info.delivered.stream_sequence);
        self.replace_consumer(Some((stream.clone(), info.name.clone())));
        consumer
            .messages()
            .await
            .with_context(|| format!("reading stream {stream}"))
    }

    /// Puts `consumer` in this feed's slot; returns the one that was there.
    fn replace_consumer(&self, consumer: Option<(String, String)>) -> Option<(String, String)> {
        // A poisoned lock still holds the names.
        let mut slots = self
            .consumers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .get_mut(self.slot)
            .and_then(|slot| std::mem::replace(slot, consumer))
    }

    /// Passes messages on until the printer stops listening; after a failure
    /// or a reconnection, starts again after the last message passed on.
    async fn run(mut self, mut messages: consumer::pull::Ordered, sender: mpsc::Sender<Delivery>) {
        self.reconnects.mark_unchanged();
        loop {
            loop {
                let item = tokio::select! {
                    item = messages.next() => item,
                    changed = self.reconnects.changed() => match changed {
                        Ok(()) => break,
                        // The connection is gone for good: nothing more will come.
                        Err(_) => return,
                    },
                };
                let Some(item) = item else { break };
                match item {
                    Ok(message) => {
                        if let Ok(info) = message.info() {
                            if info.stream_sequence <= self.after {
                                continue;
                            }
                            self.after = info.stream_sequence;
                        }
                        if sender
                            .send((self.source.stream.clone(), message))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(error) => {
                        self.warn(&format!("{error}; starting its consumer again"));
                        break;
                    }
                }
            }
            messages = self.reopen().await;
        }
    }

    /// A new consumer from the message after the last passed on, tried until one is made.
    async fn reopen(&mut self) -> consumer::pull::Ordered {
        let mut delays = retry_delays();
        loop {
            let start_sequence = self.after + 1;
            match self
                .open(consumer::DeliverPolicy::ByStartSequence { start_sequence })
                .await
            {
                Ok(messages) => return messages,
                Err(error) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    self.warn(&format!("{error:#}; trying again in {delay:?}"));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn warn(&self, message: &str) {
        let stream = &self.source.stream;
        warn(
            self.output,
            "read_failed",
            &format!("reading stream {stream}: {message}"),
            json!({"stream": stream}),
        );
    }
}

/// Prints events until the count is reached, nothing comes for the idle
/// time, the reader goes away or a signal comes.
async fn follow(
    mut receiver: mpsc::Receiver<Delivery>,
    args: &TailArgs,
    output: Output,
    mut stop: Stop,
) -> anyhow::Result<()> {
    let width = type_width();
    let mut shown: u64 = 0;
    loop {
        if args.count.is_some_and(|count| shown >= count) {
            return Ok(());
        }
        let next = async {
            match args.idle_exit {
                Some(idle) => tokio::time::timeout(idle, receiver.recv()).await.ok(),
                None => Some(receiver.recv().await),
            }
        };
        let delivery = tokio::select! {
            () = stop.wait() => return Ok(()),
            delivery = next => delivery,
        };
        let Some(Some((stream, message))) = delivery else {
            // Idle for long enough, or (not expected) every feed ended.
            return Ok(());
        };
        let line = line(&stream, &message, output, width);
        shown += 1;
        if !emit(&line)? {
            return Ok(());
        }
    }
}

fn deliver_policy(from: Since) -> anyhow::Result<consumer::DeliverPolicy> {
    Ok(match from {
        Since::Start => consumer::DeliverPolicy::All,
        Since::Now => consumer::DeliverPolicy::New,
        Since::At(at) => {
            let nanos = at
                .timestamp_nanos_opt()
                .ok_or_else(|| Usage(format!("--from {at} is out of range")))?;
            let start_time = async_nats::datetime::from_nanos(i128::from(nanos))
                .map_err(|error| Usage(format!("--from {at} is out of range: {error}")))?;
            consumer::DeliverPolicy::ByStartTime { start_time }
        }
    })
}

/// Connects now (no retrying the first connection), so an unreachable server
/// is reported at once; once connected, reconnects for as long as it runs and
/// says so on stderr.
async fn connect(
    nats: &NatsArgs,
    output: Output,
    reconnected: watch::Sender<u64>,
) -> anyhow::Result<async_nats::Client> {
    let url = nats.url.clone();
    let reconnected = Arc::new(reconnected);
    let lost = Arc::new(AtomicBool::new(false));
    let mut options = async_nats::ConnectOptions::new()
        .name(DESCRIPTION)
        .connection_timeout(CONNECT_TIMEOUT)
        .event_callback(move |event| {
            let (url, lost, reconnected) = (url.clone(), lost.clone(), reconnected.clone());
            async move {
                match event {
                    Event::Disconnected => {
                        lost.store(true, Ordering::Relaxed);
                        warn(
                            output,
                            "disconnected",
                            &format!("lost the connection to NATS at {url}; reconnecting…"),
                            json!({}),
                        );
                    }
                    Event::Connected if lost.swap(false, Ordering::Relaxed) => {
                        warn(
                            output,
                            "reconnected",
                            &format!("reconnected to NATS at {url}; following on"),
                            json!({}),
                        );
                        reconnected.send_modify(|count| *count += 1);
                    }
                    // Each failed try at reconnecting is one: the warning above says it.
                    Event::ClientError(_) if lost.load(Ordering::Relaxed) => {}
                    Event::SlowConsumer(_) | Event::ServerError(_) | Event::ClientError(_) => {
                        warn(output, "nats", &format!("NATS: {event}"), json!({}));
                    }
                    _ => {}
                }
            }
        });
    if let (Some(user), Some(password)) = (&nats.user, &nats.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &nats.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    options
        .connect(nats.url.as_str())
        .await
        .map_err(|error| match error.kind() {
            ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                anyhow::Error::new(error).context(format!(
                    "NATS at {} refused the connection: check --nats-user and --nats-password \
                     (SHEQU_NATS_USER, SHEQU_NATS_PASSWORD)",
                    nats.url
                ))
            }
            ConnectErrorKind::Tls => anyhow::Error::new(error)
                .context(format!("no TLS connection to NATS at {}", nats.url)),
            _ => NatsUnreachable(error).into(),
        })
}

/// The streams (`(name, subjects)`) the pattern reaches, by name, each with
/// the subjects of its own that the pattern matches.
fn sources(pattern: &str, streams: &[(String, Vec<String>)]) -> Vec<Source> {
    let mut sources: Vec<Source> = streams
        .iter()
        .flat_map(|(name, subjects)| {
            subjects.iter().filter_map(|subjects| {
                subject::intersection(pattern, subjects).map(|filter| Source {
                    stream: name.clone(),
                    filter,
                })
            })
        })
        .collect();
    sources.sort_by(|a, b| (&a.stream, &a.filter).cmp(&(&b.stream, &b.filter)));
    sources
}

fn no_stream_message(pattern: &str, url: &str, streams: &[(String, Vec<String>)]) -> String {
    if streams.is_empty() {
        return format!(
            "no stream at {url} holds events yet: the services create COMPLAINTS, ALLIANCE \
             and CARE when they start"
        );
    }
    let mut known: Vec<String> = streams
        .iter()
        .map(|(name, subjects)| format!("{name} ({})", subjects.join(", ")))
        .collect();
    known.sort();
    format!(
        "no stream holds subjects matching {pattern}; the streams at {url} are {}",
        known.join(", ")
    )
}

/// What the tail follows, on stderr once it is subscribed.
fn following(args: &TailArgs, sources: &[Source]) -> (String, Value) {
    let streams: Vec<String> = sources
        .iter()
        .map(|source| format!("{} ({})", source.stream, source.filter))
        .collect();
    let text = format!(
        "following {} from {} on {}; Ctrl-C stops",
        args.pattern,
        args.from.describe(),
        streams.join(", ")
    );
    let from = match args.from {
        Since::Start => json!("start"),
        Since::Now => json!("now"),
        Since::At(at) => json!(at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    };
    let streams: Vec<Value> = sources
        .iter()
        .map(|source| json!({"stream": source.stream, "filter": source.filter}))
        .collect();
    let json = json!({"following": {
        "pattern": args.pattern.as_str(),
        "from": from,
        "streams": streams,
    }});
    (text, json)
}

/// One line of output for a message: the event, or the body as it came when it
/// is not a CloudEvent (with a warning on stderr).
fn line(stream: &str, message: &jetstream::Message, output: Output, width: usize) -> String {
    let sequence = message.info().ok().map(|info| info.stream_sequence);
    let nats_subject = message.subject.as_str();
    let parsed = serde_json::from_slice::<Value>(&message.payload)
        .map_err(|error| error.to_string())
        .and_then(|value| {
            serde_json::from_value::<CloudEvent>(value.clone())
                .map(|event| (value, event))
                .map_err(|error| error.to_string())
        });
    match parsed {
        Ok((mut value, event)) => {
            if output.is_json() {
                if let Value::Object(fields) = &mut value {
                    fields.insert("stream".into(), json!(stream));
                    fields.insert("streamsequence".into(), json!(sequence));
                }
                value.to_string()
            } else {
                event_line(&event, width)
            }
        }
        Err(error) => {
            let place = match sequence {
                Some(sequence) => format!("{stream} #{sequence}"),
                None => stream.to_owned(),
            };
            warn(
                output,
                "not_a_cloudevent",
                &format!("{place} on {nats_subject} is not a CloudEvent ({error}); printed raw"),
                json!({"stream": stream, "streamsequence": sequence, "subject": nats_subject}),
            );
            let body = String::from_utf8_lossy(&message.payload);
            let published = published(message.reply.as_deref());
            if output.is_json() {
                json!({
                    "stream": stream,
                    "streamsequence": sequence,
                    "natssubject": nats_subject,
                    "published": published.map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    "raw": body,
                })
                .to_string()
            } else {
                format!(
                    "{}  {nats_subject:<width$}  (not a CloudEvent: {place})  {}",
                    published.map_or_else(|| "-".to_owned(), time::local_second),
                    one_line(&body)
                )
            }
        }
    }
}

/// `2026-11-03 01:00:03  shequ.complaints.complaint.submitted.v1  <subject>  <id>  {data}`.
fn event_line(event: &CloudEvent, width: usize) -> String {
    format!(
        "{}  {:<width$}  {}  {}  {}",
        time::local_second(event.time),
        event.event_type,
        event.subject,
        event.id,
        event.data
    )
}

/// The longest event type the services publish, so types line up.
fn type_width() -> usize {
    complaints::ALL_TYPES
        .iter()
        .chain(&alliance::ALL_TYPES)
        .chain(&care::ALL_TYPES)
        .map(|event_type| event_type.len())
        .max()
        .unwrap_or(0)
}

/// Control characters (line breaks) escaped, so one message stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// When JetStream stored the message, from its `$JS.ACK` reply subject
/// (ADR-15: 9 tokens, or 11 and more with the domain and account hash).
fn published(reply: Option<&str>) -> Option<DateTime<Utc>> {
    let tokens: Vec<&str> = reply?.split('.').collect();
    if tokens.get(..2) != Some(&["$JS", "ACK"][..]) {
        return None;
    }
    let index = match tokens.len() {
        9 => 7,
        n if n >= 11 => 9,
        _ => return None,
    };
    let nanos: i64 = tokens.get(index)?.parse().ok()?;
    Some(DateTime::from_timestamp_nanos(nanos))
}

/// Writes one line; `false` when the reader went away (`| head`).
fn emit(line: &str) -> anyhow::Result<bool> {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("writing to stdout"),
    }
}

/// A line on stderr: the text, or with `--json` the JSON.
fn notice(output: Output, (text, json): &(String, Value)) {
    let line = if output.is_json() {
        json.to_string()
    } else {
        text.clone()
    };
    // Nothing better to do if stderr is gone.
    let _ = writeln!(io::stderr(), "{line}");
}

/// `warning: …` on stderr, or `{"warning": {"kind", "message", …}}` with `--json`.
fn warn(output: Output, kind: &str, message: &str, details: Value) {
    let mut warning = json!({"kind": kind, "message": message});
    if let (Value::Object(fields), Value::Object(details)) = (&mut warning, details) {
        fields.extend(details);
    }
    notice(
        output,
        &(format!("warning: {message}"), json!({"warning": warning})),
    );
}

/// Deletes the tail's consumers, as far as it can in a short while.
async fn remove(js: &jetstream::Context, consumers: &Consumers) {
    let consumers: Vec<(String, String)> = consumers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .flatten()
        .cloned()
        .collect();
    let deleted = async {
        for (stream, consumer) in &consumers {
            // The server drops it after 30 s idle anyway.
            let _ = js.delete_consumer_from_stream(consumer, stream).await;
        }
    };
    let _ = tokio::time::timeout(CLEANUP_TIMEOUT, deleted).await;
}

/// Ctrl-C (and, on Unix, SIGTERM), caught from when it is installed.
#[derive(Debug)]
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("catching Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shequ_streams() -> Vec<(String, Vec<String>)> {
        [
            (complaints::STREAM, complaints::SUBJECTS),
            (alliance::STREAM, alliance::SUBJECTS),
            (care::STREAM, care::SUBJECTS),
        ]
        .map(|(name, subjects)| (name.to_owned(), vec![subjects.to_owned()]))
        .to_vec()
    }

    fn source(stream: &str, filter: &str) -> Source {
        Source {
            stream: stream.into(),
            filter: filter.into(),
        }
    }

    #[test]
    fn shequ_spans_the_three_streams_by_name() {
        assert_eq!(
            sources("shequ.>", &shequ_streams()),
            [
                source("ALLIANCE", "shequ.alliance.>"),
                source("CARE", "shequ.care.>"),
                source("COMPLAINTS", "shequ.complaints.>"),
            ]
        );
    }

    #[test]
    fn a_narrower_pattern_reaches_only_the_streams_that_hold_it() {
        let streams = shequ_streams();
        assert_eq!(
            sources("shequ.complaints.*.accepted.v1", &streams),
            [source("COMPLAINTS", "shequ.complaints.*.accepted.v1")]
        );
        // Any stream could hold such a subject: each is read, narrowly filtered.
        assert_eq!(
            sources("shequ.*.complaint.accepted.v1", &streams),
            [
                source("ALLIANCE", "shequ.alliance.complaint.accepted.v1"),
                source("CARE", "shequ.care.complaint.accepted.v1"),
                source("COMPLAINTS", "shequ.complaints.complaint.accepted.v1"),
            ]
        );
        assert_eq!(
            sources("shequ.care.>", &streams),
            [source("CARE", "shequ.care.>")]
        );
        assert!(sources("shequ.parking.>", &streams).is_empty());
        let message = no_stream_message("shequ.parking.>", "nats://h:1", &streams);
        assert!(
            message.contains("ALLIANCE (shequ.alliance.>), CARE (shequ.care.>)"),
            "{message}"
        );
        assert!(no_stream_message("shequ.>", "nats://h:1", &[]).contains("yet"));
    }

    #[test]
    fn a_human_line_is_time_type_subject_id_and_compact_data() -> anyhow::Result<()> {
        let event: CloudEvent = serde_json::from_value(json!({
            "specversion": "1.0",
            "id": "0193e0b2-0000-7000-8000-000000000001",
            "source": "/shequ/complaints",
            "type": "shequ.complaints.complaint.started.v1",
            "time": "2026-11-02T09:00:03.5Z",
            "subject": "c-1",
            "datacontenttype": "application/json",
            "data": {"complaint_id": "c-1", "status": "in_progress"}
        }))?;
        let width = type_width();
        assert_eq!(width, "shequ.complaints.complaint.reclassified.v1".len());
        assert_eq!(
            event_line(&event, width),
            "2026-11-02 17:00:03  shequ.complaints.complaint.started.v1       c-1  \
             0193e0b2-0000-7000-8000-000000000001  {\"complaint_id\":\"c-1\",\"status\":\"in_progress\"}"
        );
        Ok(())
    }

    #[test]
    fn the_publish_time_comes_from_the_ack_subject() {
        let at = DateTime::from_timestamp_nanos(1_793_696_403_000_000_000);
        let v1 = "$JS.ACK.COMPLAINTS.c1.1.4.4.1793696403000000000.0";
        let v2 = "$JS.ACK.hub.acc.COMPLAINTS.c1.1.4.4.1793696403000000000.0.x";
        assert_eq!(published(Some(v1)), Some(at));
        assert_eq!(published(Some(v2)), Some(at));
        assert_eq!(published(Some("_INBOX.x")), None);
        assert_eq!(published(None), None);
    }

    #[test]
    fn a_raw_body_stays_on_one_line() {
        assert_eq!(one_line("not\njson\t€"), "not\\njson\\t€");
    }
}
