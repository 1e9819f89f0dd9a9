-- Named leases: which replica of the service does a singleton job (the outbox
-- relay, a sweeper, a worker) until `expires_at` (milliseconds since the epoch).
-- The holder renews its lease while it works; another replica may take it once
-- it has expired or been released (see the chassis's `lease` module).
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
