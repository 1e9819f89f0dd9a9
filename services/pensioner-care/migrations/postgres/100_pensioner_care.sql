-- The pensioner-care service's own tables. Instants are milliseconds since the
-- epoch, flags 0/1 (see the chassis storage module for why). Elders' personal
-- data lives here and nowhere else.

CREATE TABLE elders (
    id                  TEXT    PRIMARY KEY,
    request_id          TEXT    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    birth_date          TEXT    NOT NULL,
    gender              TEXT    NOT NULL,
    grid_id             TEXT    NOT NULL,
    building_id         TEXT,
    address             TEXT,
    -- Where the elder lives, for the meal circle, in the datum it was given in
    -- (wgs84 or gcj02); NULL when not known.
    latitude            DOUBLE PRECISION,
    longitude           DOUBLE PRECISION,
    location_datum      TEXT,
    living_situation    TEXT    NOT NULL,
    has_disability      BIGINT NOT NULL,
    has_chronic_illness BIGINT NOT NULL,
    health_notes        TEXT,
    disability_notes    TEXT,
    -- JSON array of {name, phone, relation}.
    emergency_contacts  TEXT    NOT NULL,
    consents_to_visits  BIGINT NOT NULL,
    risk                TEXT    NOT NULL,
    -- JSON array of the reasons for the risk level.
    risk_reasons        TEXT    NOT NULL,
    visit_interval_days BIGINT NOT NULL,
    last_visit_at       BIGINT,
    -- Where the visit interval counts from: the last visit, or registration.
    visit_anchor_at     BIGINT NOT NULL,
    next_visit_due_at   BIGINT NOT NULL,
    registered_at       BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX elders_by_due ON elders (next_visit_due_at);
CREATE INDEX elders_by_grid ON elders (grid_id, id);

CREATE TABLE volunteers (
    id            TEXT    PRIMARY KEY,
    request_id    TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    phone         TEXT    NOT NULL,
    grid_id       TEXT    NOT NULL,
    party_member  BIGINT NOT NULL,
    registered_at BIGINT NOT NULL
);

-- A volunteer holds at most two elders: each active pairing takes slot 1 or 2,
-- and the unique keys below make the cap hold under concurrent requests.
CREATE TABLE pairings (
    id           TEXT    PRIMARY KEY,
    volunteer_id TEXT    NOT NULL REFERENCES volunteers (id),
    elder_id     TEXT    NOT NULL REFERENCES elders (id),
    slot         BIGINT NOT NULL CHECK (slot IN (1, 2)),
    started_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE UNIQUE INDEX pairings_volunteer_slot ON pairings (volunteer_id, slot) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX pairings_elder ON pairings (elder_id) WHERE ended_at IS NULL;

CREATE TABLE visits (
    id           TEXT    PRIMARY KEY,
    request_id   TEXT    NOT NULL UNIQUE,
    elder_id     TEXT    NOT NULL REFERENCES elders (id),
    visitor      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    visited_at   BIGINT NOT NULL,
    wellbeing    TEXT    NOT NULL,
    -- JSON array of needs found.
    needs        TEXT    NOT NULL,
    notes        TEXT,
    recorded_at  BIGINT NOT NULL
);
CREATE INDEX visits_by_elder ON visits (elder_id, visited_at);

-- Complaints to file from visits: stored with the visit, filed by a retrying
-- worker with a fixed request id, so a down complaints service delays the
-- complaint but never loses or doubles it.
CREATE TABLE complaint_filings (
    visit_id        TEXT    PRIMARY KEY REFERENCES visits (id),
    elder_id        TEXT    NOT NULL,
    grid_id         TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    urgent          BIGINT NOT NULL,
    -- pending, filed, failed.
    status          TEXT    NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    complaint_id    TEXT,
    last_error      TEXT
);
CREATE INDEX complaint_filings_due ON complaint_filings (status, next_attempt_at);

-- One overdue notice per missed period since a visit anchor, however many
-- sweeps or replicas see it.
CREATE TABLE overdue_notices (
    elder_id  TEXT    NOT NULL REFERENCES elders (id),
    anchor_at BIGINT NOT NULL,
    period    BIGINT NOT NULL,
    raised_at BIGINT NOT NULL,
    PRIMARY KEY (elder_id, anchor_at, period)
);

CREATE TABLE bookings (
    id              TEXT    PRIMARY KEY,
    request_id      TEXT    NOT NULL UNIQUE,
    elder_id        TEXT    NOT NULL REFERENCES elders (id),
    service         TEXT    NOT NULL,
    scheduled_for   BIGINT NOT NULL,
    status          TEXT    NOT NULL,
    merchant_id     TEXT,
    merchant_name   TEXT,
    distance_metres DOUBLE PRECISION,
    booked_at       BIGINT NOT NULL
);

-- What happened to an elder, in order.
CREATE TABLE timeline (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    elder_id  TEXT    NOT NULL,
    at        BIGINT NOT NULL,
    kind      TEXT    NOT NULL,
    summary   TEXT    NOT NULL,
    reference TEXT    NOT NULL
);
CREATE INDEX timeline_by_elder ON timeline (elder_id, seq);
