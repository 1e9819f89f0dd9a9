-- The merchant-alliance service's own tables. Instants are milliseconds since
-- the epoch, flags 0/1 (see the chassis storage module for why).

CREATE TABLE merchants (
    id                 TEXT    PRIMARY KEY,
    -- The registrar's idempotency key.
    request_id         TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    -- JSON array of service tags.
    service_tags       TEXT    NOT NULL,
    -- WGS-84.
    latitude           DOUBLE PRECISION NOT NULL,
    longitude          DOUBLE PRECISION NOT NULL,
    -- Geohash cell (precision 6) of the location: the spatial index.
    cell               TEXT    NOT NULL,
    address            TEXT,
    grid_id            TEXT    NOT NULL,
    -- JSON array of opening hours.
    opening_hours      TEXT    NOT NULL,
    party_member_owner BIGINT NOT NULL,
    status             TEXT    NOT NULL,
    suspended_reason   TEXT,
    credit_score       BIGINT NOT NULL,
    registered_at      BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- Nearby: one category, the cells covering the circle.
CREATE INDEX merchants_nearby ON merchants (category, cell);
CREATE INDEX merchants_by_grid ON merchants (grid_id, id);

-- Every change of a credit score, per merchant in order: the score can be
-- explained and replayed from here.
CREATE TABLE credit_ledger (
    merchant_id     TEXT    NOT NULL REFERENCES merchants (id),
    seq             BIGINT NOT NULL,
    delta           BIGINT NOT NULL,
    score_after     BIGINT NOT NULL,
    reason          TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    source_event_id TEXT,
    actor           TEXT,
    at              BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, seq)
);

-- The deduction each complaint about a merchant holds (as applied, after the
-- floor), so a complaint lowers a score once and a reversal gives back exactly
-- that. `deducted_at` is NULL when the complaint holds none (reversed).
CREATE TABLE complaint_deductions (
    merchant_id  TEXT    NOT NULL REFERENCES merchants (id),
    complaint_id TEXT    NOT NULL,
    held         BIGINT NOT NULL,
    -- When the deduction was made (for the award rules' period); NULL: none held.
    deducted_at  BIGINT,
    PRIMARY KEY (merchant_id, complaint_id)
);

-- Welfare and environment activities, and elder-meal discounts.
CREATE TABLE activities (
    id              TEXT    PRIMARY KEY,
    -- The recorder's idempotency key (NULL for activities learned from events).
    request_id      TEXT    UNIQUE,
    merchant_id     TEXT    NOT NULL REFERENCES merchants (id),
    kind            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    happened_at     BIGINT NOT NULL,
    source_event_id TEXT,
    actor           TEXT
);
CREATE INDEX activities_by_merchant ON activities (merchant_id, happened_at);

-- Model-merchant awards: once per merchant and period.
CREATE TABLE awards (
    merchant_id TEXT    NOT NULL REFERENCES merchants (id),
    period      TEXT    NOT NULL,
    awarded_at  BIGINT NOT NULL,
    actor       TEXT    NOT NULL,
    PRIMARY KEY (merchant_id, period)
);
