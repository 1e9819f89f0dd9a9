-- Events a consumer set aside because they can never apply as they are (not a
-- CloudEvent, a payload that does not decode or names an impossible state):
-- kept whole, with why, until an operator replays them (`shequctl events
-- parked`, `shequctl events replay`). The message is terminated once its row
-- is committed; should that acknowledgement be lost, a second row is harmless
-- (a replay applies an event once).
CREATE TABLE parked_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer        TEXT   NOT NULL,
    event_id        TEXT,
    event_type      TEXT,
    nats_subject    TEXT   NOT NULL,
    stream_sequence BIGINT NOT NULL,
    payload         TEXT   NOT NULL,
    headers         TEXT   NOT NULL,
    error           TEXT   NOT NULL,
    deliveries      BIGINT NOT NULL,
    parked_at       BIGINT NOT NULL
);
CREATE INDEX parked_events_by_consumer ON parked_events (consumer, id);
