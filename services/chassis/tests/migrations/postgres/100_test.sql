-- A test service's own table: how many times each event's effect was applied.
CREATE TABLE applied (
    event_id TEXT   PRIMARY KEY,
    n        BIGINT NOT NULL
);
