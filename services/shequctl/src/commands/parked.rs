//! `events parked` and `events replay`: the events a service's consumers set
//! aside because they can never apply as they came, asked of the service
//! itself (`shequ.ops.v1.ParkedEventService`, which every service serves for
//! operators), and replaying one once its cause is fixed.

use anyhow::Context;
use serde_json::{Map, Value, json};
use shequ_proto::ops::v1 as pb;
use shequ_proto::ops::v1::parked_event_service_client::ParkedEventServiceClient;

use super::{Connection, Target, connect, non_empty};
use crate::cli::{ParkedArgs, ReplayArgs};
use crate::output::Output;
use crate::table::Table;
use crate::time;

type Client = ParkedEventServiceClient<Connection>;

/// What the service lists when not told how many (`shequ-chassis`' default).
const DEFAULT_LIMIT: u32 = 100;

/// `events parked`: the table, each event whole (`--payload`), or the JSON.
pub(super) async fn list(args: &ParkedArgs, target: &Target, output: Output) -> anyhow::Result<()> {
    let client = &mut Client::new(connect(target).await?);
    let request = pb::ListParkedEventsRequest {
        consumer: args.consumer.clone().unwrap_or_default(),
        limit: args.limit.unwrap_or(0),
    };
    let events = client
        .list_parked_events(request)
        .await
        .context("listing the parked events")?
        .into_inner()
        .events;
    let service = args.service.name();
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
    output.print(
        || {
            json!({
                "service": service,
                "events": events.iter().map(event_json).collect::<Vec<_>>(),
            })
        },
        || {
            if events.is_empty() {
                return match &args.consumer {
                    Some(consumer) => format!("no parked events of consumer {consumer}\n"),
                    None => "no parked events\n".to_owned(),
                };
            }
            let mut text = if args.payload {
                events.iter().map(whole).collect::<Vec<_>>().join("\n")
            } else {
                table(&events).to_string()
            };
            if events.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                text.push_str(&format!(
                    "\nthe oldest {limit}; more may be parked (--limit, at most 500)\n"
                ));
            }
            text
        },
    )
}

/// `events replay`: applies one again and prints the outcome.
pub(super) async fn replay(
    args: &ReplayArgs,
    target: &Target,
    output: Output,
) -> anyhow::Result<()> {
    let client = &mut Client::new(connect(target).await?);
    let id = args.id;
    let outcome = client
        .replay_parked_event(pb::ReplayParkedEventRequest { id })
        .await
        .with_context(|| format!("replaying parked event {id}"))?
        .into_inner()
        .outcome;
    output.print(
        || json!({"id": id, "outcome": outcome}),
        || match outcome.as_str() {
            "applied" => format!("parked event {id} replayed: applied; no longer parked\n"),
            "already_processed" => format!(
                "parked event {id} replayed: already_processed (its effect was there \
                 already); no longer parked\n"
            ),
            other => format!("parked event {id} replayed: {other}\n"),
        },
    )
}

/// One row per event; the payload and headers left to `--payload` and `--json`.
fn table(events: &[pb::ParkedEvent]) -> Table {
    let mut table = Table::new([
        "id",
        "parked at",
        "consumer",
        "event type",
        "event id",
        "nats subject",
        "seq",
        "deliveries",
        "error",
    ]);
    for event in events {
        table.row([
            event.id.to_string(),
            parked_at(event),
            event.consumer.clone(),
            or_dash(&event.event_type),
            or_dash(&event.event_id),
            event.nats_subject.clone(),
            event.stream_sequence.to_string(),
            event.deliveries.to_string(),
            event.error.clone(),
        ]);
    }
    table
}

/// An event whole: its fields, its headers (sorted), then the payload as
/// received, indented, with control characters other than line breaks and
/// tabs escaped so the terminal shows them rather than obeys them.
fn whole(event: &pb::ParkedEvent) -> String {
    let mut fields = Table::plain();
    fields
        .row(["id", &event.id.to_string()])
        .row(["parked at", &parked_at(event)])
        .row(["consumer", &event.consumer])
        .row(["event type", &or_dash(&event.event_type)])
        .row(["event id", &or_dash(&event.event_id)])
        .row(["nats subject", &event.nats_subject])
        .row(["stream sequence", &event.stream_sequence.to_string()])
        .row(["deliveries", &event.deliveries.to_string()])
        .row(["error", &event.error]);
    let mut headers: Vec<(&String, &String)> = event.headers.iter().collect();
    headers.sort();
    for (name, value) in headers {
        fields.row([format!("header {name}"), value.clone()]);
    }
    let mut text = fields.to_string();
    text.push_str(&format!("payload ({} bytes):\n", event.payload.len()));
    for line in event.payload.lines() {
        text.push_str("  ");
        text.push_str(&shown(line));
        text.push('\n');
    }
    text
}

/// A parked event for `--json`: every field, the payload whole, headers as an
/// object; an event type or id the message did not have is `null`.
fn event_json(event: &pb::ParkedEvent) -> Value {
    let headers: Map<String, Value> = event
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "id": event.id,
        "parked_at": time::json(event.parked_at.as_ref()),
        "consumer": event.consumer,
        "event_type": non_empty(&event.event_type),
        "event_id": non_empty(&event.event_id),
        "nats_subject": event.nats_subject,
        "stream_sequence": event.stream_sequence,
        "deliveries": event.deliveries,
        "error": event.error,
        "headers": headers,
        "payload": event.payload,
    })
}

/// When it was parked, to the second in district time.
fn parked_at(event: &pb::ParkedEvent) -> String {
    time::instant(event.parked_at.as_ref()).map_or_else(|| "-".to_owned(), time::local_second)
}

fn or_dash(text: &str) -> String {
    non_empty(text).unwrap_or("-").to_owned()
}

/// `text` with control characters (other than tabs) escaped.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_a_cloudevent() -> pb::ParkedEvent {
        pb::ParkedEvent {
            id: 7,
            consumer: "merchant-alliance-complaints".into(),
            event_id: String::new(),
            event_type: String::new(),
            nats_subject: "shequ.complaints.complaint.resolved.v1".into(),
            stream_sequence: 12,
            payload: "not json\n{\u{1b}[31m".into(),
            headers: [("Nats-Msg-Id".to_owned(), "m-1".to_owned())].into(),
            error: "not a CloudEvent: expected ident at line 1 column 2".into(),
            deliveries: 1,
            parked_at: Some(prost_types::Timestamp {
                seconds: 1_793_696_403,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn a_row_shows_district_time_and_dashes_for_what_a_raw_body_lacks() {
        let text = table(&[not_a_cloudevent()]).to_string();
        let row = text.lines().nth(1).unwrap_or_default();
        assert_eq!(
            row,
            "7   2026-11-03 17:00:03  merchant-alliance-complaints  -           -         \
             shequ.complaints.complaint.resolved.v1  12   1           \
             not a CloudEvent: expected ident at line 1 column 2"
        );
    }

    #[test]
    fn the_json_keeps_payload_and_headers_whole_and_missing_ids_null() {
        let value = event_json(&not_a_cloudevent());
        assert_eq!(value["payload"], "not json\n{\u{1b}[31m");
        assert_eq!(value["headers"], json!({"Nats-Msg-Id": "m-1"}));
        assert_eq!(value["event_type"], Value::Null);
        assert_eq!(value["parked_at"], "2026-11-03T09:00:03Z");
        assert_eq!(value["stream_sequence"], 12);
    }

    #[test]
    fn a_whole_event_ends_with_its_payload_escaped_for_the_terminal() {
        let text = whole(&not_a_cloudevent());
        assert!(text.contains("header Nats-Msg-Id  m-1\n"), "{text}");
        assert!(
            text.ends_with("payload (15 bytes):\n  not json\n  {\\u{1b}[31m\n"),
            "{text}"
        );
    }
}
