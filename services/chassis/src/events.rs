//! Building CloudEvents for the outbox.

use chrono::{DateTime, Utc};
use shequ_proto::events::{CloudEvent, EventData};

/// A new event of type `T::TYPE` about `subject`, from `source`, with a fresh UUIDv7.
pub fn new_event<T: EventData>(
    source: &str,
    subject: &str,
    time: DateTime<Utc>,
    data: &T,
) -> Result<CloudEvent, serde_json::Error> {
    Ok(CloudEvent {
        specversion: "1.0".into(),
        id: uuid::Uuid::now_v7().to_string(),
        source: source.into(),
        event_type: T::TYPE.into(),
        time,
        subject: subject.into(),
        datacontenttype: "application/json".into(),
        data: serde_json::to_value(data)?,
    })
}
