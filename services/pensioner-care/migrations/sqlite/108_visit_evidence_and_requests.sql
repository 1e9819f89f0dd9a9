-- Visit evidence: how far from the elder's home a visit was recorded (the
-- place itself is not kept), and whether that flags a home visit.
ALTER TABLE visits ADD COLUMN distance_from_home_metres REAL;
ALTER TABLE visits ADD COLUMN far_from_home INTEGER NOT NULL DEFAULT 0;

-- Visits requested after a major event, due within hours: met by the
-- elder's next visit, overdue once. `request_id` is the key of a staff
-- request; `source` that of one an event raised (complaint:<id>,
-- urgent_visit:<id>), so each is raised once.
CREATE TABLE visit_requests (
    id              TEXT    PRIMARY KEY,
    request_id      TEXT    UNIQUE,
    request_digest  TEXT,
    source          TEXT    UNIQUE,
    elder_id        TEXT    NOT NULL REFERENCES elders (id),
    grid_id         TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    reference       TEXT,
    note            TEXT,
    raised_by       TEXT    NOT NULL,
    raised_at       INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    met_by_visit_id TEXT,
    met_at          INTEGER,
    overdue_at      INTEGER
);
CREATE INDEX visit_requests_open ON visit_requests (elder_id) WHERE met_by_visit_id IS NULL;
CREATE INDEX visit_requests_due ON visit_requests (due_at, id) WHERE met_by_visit_id IS NULL AND overdue_at IS NULL;
CREATE INDEX visit_requests_by_grid ON visit_requests (grid_id, raised_at);
