//! Building CloudEvents for the outbox.
//!
//! Most events get a fresh UUIDv7. An event born of a fact with an identity
//! of its own (a breach escalated, a visit found overdue, the credit change a
//! complaint's resolution causes) gets an id derived from that identity
//! ([`derived_id`], a name-based UUIDv5): raised again — after a restore from
//! an older backup, a replay, by a second replica — it carries the same id, so
//! JetStream's duplicate window and every consumer's inbox drop it.

use chrono::{DateTime, Utc};
use shequ_proto::events::{CloudEvent, EventData};

/// A new event of type `T::TYPE` about `subject`, from `source`, with a fresh
/// UUIDv7, naming its schema (`dataschema`).
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
        dataschema: Some(shequ_proto::schemas::schema_id(T::TYPE)),
        data: serde_json::to_value(data)?,
    })
}

/// The namespace of every [`derived_id`] (a fixed, random UUID).
const DERIVED: uuid::Uuid = uuid::Uuid::from_u128(0x6b1d_4c1e_93a2_4f0e_8d57_2c5e_9a71_0b3f);

/// The id of the `event_type` event raised by the fact `identity` names (its
/// parts, e.g. the complaint id, the breach and the cycle): the same for the
/// same fact, different for any other.
pub fn derived_id(event_type: &str, identity: &[&str]) -> String {
    let mut name = event_type.to_owned();
    for part in identity {
        // The unit separator never occurs in ids, so no two identities meet.
        name.push('\u{1f}');
        name.push_str(part);
    }
    uuid::Uuid::new_v5(&DERIVED, name.as_bytes()).to_string()
}

/// [`new_event`] with the id [`derived_id`] gives the fact `identity`.
pub fn derived_event<T: EventData>(
    source: &str,
    subject: &str,
    time: DateTime<Utc>,
    data: &T,
    identity: &[&str],
) -> Result<CloudEvent, serde_json::Error> {
    let mut event = new_event(source, subject, time, data)?;
    event.id = derived_id(T::TYPE, identity);
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_is_the_same_for_the_same_fact_and_differs_for_any_other() {
        let id = derived_id("shequ.x.v1", &["c-1", "response", "0"]);
        assert_eq!(id, derived_id("shequ.x.v1", &["c-1", "response", "0"]));
        assert_ne!(id, derived_id("shequ.x.v1", &["c-1", "response", "1"]));
        assert_ne!(id, derived_id("shequ.y.v1", &["c-1", "response", "0"]));
        assert_ne!(
            derived_id("shequ.x.v1", &["ab", "c"]),
            derived_id("shequ.x.v1", &["a", "bc"])
        );
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 5);
    }
}
