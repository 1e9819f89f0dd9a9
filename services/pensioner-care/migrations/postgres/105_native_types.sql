-- The pensioner-care service stores natively on PostgreSQL: instants become
-- `timestamptz` (from milliseconds since the epoch), flags `boolean` (from
-- 0/1), and the JSON held in text (emergency contacts, risk reasons, needs)
-- `jsonb`. A database written by earlier releases is converted in place.

-- The index of elders owed a notice names the consent flag as 0/1: it is
-- made again over the boolean.
DROP INDEX elders_by_notice_due;
ALTER TABLE elders
    ALTER COLUMN has_disability TYPE boolean USING has_disability <> 0,
    ALTER COLUMN has_chronic_illness TYPE boolean USING has_chronic_illness <> 0,
    ALTER COLUMN consents_to_visits TYPE boolean USING consents_to_visits <> 0,
    ALTER COLUMN emergency_contacts TYPE jsonb USING emergency_contacts::jsonb,
    ALTER COLUMN risk_reasons TYPE jsonb USING risk_reasons::jsonb,
    ALTER COLUMN last_visit_at TYPE timestamptz USING to_timestamp(last_visit_at / 1000.0),
    ALTER COLUMN visit_anchor_at TYPE timestamptz USING to_timestamp(visit_anchor_at / 1000.0),
    ALTER COLUMN next_visit_due_at TYPE timestamptz USING to_timestamp(next_visit_due_at / 1000.0),
    ALTER COLUMN next_notice_at TYPE timestamptz USING to_timestamp(next_notice_at / 1000.0),
    ALTER COLUMN registered_at TYPE timestamptz USING to_timestamp(registered_at / 1000.0),
    ALTER COLUMN updated_at TYPE timestamptz USING to_timestamp(updated_at / 1000.0);
CREATE INDEX elders_by_notice_due ON elders (next_notice_at, id) WHERE consents_to_visits;

ALTER TABLE volunteers
    ALTER COLUMN party_member TYPE boolean USING party_member <> 0,
    ALTER COLUMN registered_at TYPE timestamptz USING to_timestamp(registered_at / 1000.0);

ALTER TABLE pairings
    ALTER COLUMN started_at TYPE timestamptz USING to_timestamp(started_at / 1000.0),
    ALTER COLUMN ended_at TYPE timestamptz USING to_timestamp(ended_at / 1000.0);

ALTER TABLE visits
    ALTER COLUMN visited_at TYPE timestamptz USING to_timestamp(visited_at / 1000.0),
    ALTER COLUMN recorded_at TYPE timestamptz USING to_timestamp(recorded_at / 1000.0),
    ALTER COLUMN needs TYPE jsonb USING needs::jsonb;

ALTER TABLE complaint_filings
    ALTER COLUMN urgent TYPE boolean USING urgent <> 0,
    ALTER COLUMN next_attempt_at TYPE timestamptz USING to_timestamp(next_attempt_at / 1000.0);

ALTER TABLE overdue_notices
    ALTER COLUMN anchor_at TYPE timestamptz USING to_timestamp(anchor_at / 1000.0),
    ALTER COLUMN raised_at TYPE timestamptz USING to_timestamp(raised_at / 1000.0);

ALTER TABLE bookings
    ALTER COLUMN scheduled_for TYPE timestamptz USING to_timestamp(scheduled_for / 1000.0),
    ALTER COLUMN booked_at TYPE timestamptz USING to_timestamp(booked_at / 1000.0);

ALTER TABLE timeline
    ALTER COLUMN at TYPE timestamptz USING to_timestamp(at / 1000.0);
