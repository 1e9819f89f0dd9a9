-- The complaints service's own tables. Instants are milliseconds since the epoch,
-- flags 0/1 (see the chassis storage module for why).

CREATE TABLE complaints (
    id                TEXT    PRIMARY KEY,
    -- The submitter's idempotency key: a retried submission finds its complaint here.
    request_id        TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL,
    text              TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    category          TEXT    NOT NULL,
    classified_by     TEXT    NOT NULL,
    priority          TEXT    NOT NULL,
    reporter_name     TEXT,
    reporter_phone    TEXT,
    community_id      TEXT    NOT NULL,
    grid_id           TEXT    NOT NULL,
    building_id       TEXT,
    location          TEXT,
    merchant_id       TEXT,
    elder_id          TEXT,
    level             TEXT    NOT NULL,
    assignee          TEXT    NOT NULL,
    submitted_at      INTEGER NOT NULL,
    cycle_started_at  INTEGER NOT NULL,
    response_due_at   INTEGER NOT NULL,
    resolution_due_at INTEGER NOT NULL,
    accepted_at       INTEGER,
    resolved_at       INTEGER,
    follow_up_due_at  INTEGER,
    closed_at         INTEGER,
    resolution_note   TEXT,
    merchant_at_fault INTEGER NOT NULL DEFAULT 0,
    satisfaction      INTEGER,
    reject_reason     TEXT,
    merged_into       TEXT,
    reopen_count      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX complaints_by_submission ON complaints (submitted_at, id);
CREATE INDEX complaints_by_grid ON complaints (grid_id, submitted_at);
CREATE INDEX complaints_by_community ON complaints (community_id, submitted_at);
CREATE INDEX complaints_by_status ON complaints (status, response_due_at, resolution_due_at);

-- Every transition: who, when, from → to.
CREATE TABLE complaint_history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id TEXT    NOT NULL REFERENCES complaints (id),
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    from_status  TEXT    NOT NULL,
    to_status    TEXT    NOT NULL,
    note         TEXT,
    -- A transition's idempotency key: a retried request finds its entry here.
    request_id   TEXT    UNIQUE
);
CREATE INDEX complaint_history_by_complaint ON complaint_history (complaint_id, seq);

-- One row per escalation owed: a breach of one limit in one resolution cycle
-- escalates once, however many sweepers or replicas see it.
CREATE TABLE escalations (
    complaint_id TEXT    NOT NULL REFERENCES complaints (id),
    breach       TEXT    NOT NULL,
    cycle        INTEGER NOT NULL,
    escalated_at INTEGER NOT NULL,
    PRIMARY KEY (complaint_id, breach, cycle)
);

-- The grid organisation, replaced as a whole by LoadOrganisation.
CREATE TABLE communities (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    committee_handler TEXT    NOT NULL,
    position          INTEGER NOT NULL
);
CREATE TABLE grids (
    id             TEXT    PRIMARY KEY,
    community_id   TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    worker         TEXT    NOT NULL,
    branch_handler TEXT    NOT NULL,
    position       INTEGER NOT NULL
);
CREATE TABLE buildings (
    id       TEXT    PRIMARY KEY,
    grid_id  TEXT    NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE organisation_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
