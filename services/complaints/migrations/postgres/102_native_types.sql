-- The complaints service stores natively on PostgreSQL: instants become
-- `timestamptz` (from milliseconds since the epoch) and the at-fault flag
-- `boolean` (from 0/1). A database written by earlier releases is converted
-- in place.
ALTER TABLE complaints
    ALTER COLUMN submitted_at TYPE timestamptz USING to_timestamp(submitted_at / 1000.0),
    ALTER COLUMN cycle_started_at TYPE timestamptz USING to_timestamp(cycle_started_at / 1000.0),
    ALTER COLUMN response_due_at TYPE timestamptz USING to_timestamp(response_due_at / 1000.0),
    ALTER COLUMN resolution_due_at TYPE timestamptz USING to_timestamp(resolution_due_at / 1000.0),
    ALTER COLUMN accepted_at TYPE timestamptz USING to_timestamp(accepted_at / 1000.0),
    ALTER COLUMN resolved_at TYPE timestamptz USING to_timestamp(resolved_at / 1000.0),
    ALTER COLUMN follow_up_due_at TYPE timestamptz USING to_timestamp(follow_up_due_at / 1000.0),
    ALTER COLUMN closed_at TYPE timestamptz USING to_timestamp(closed_at / 1000.0),
    ALTER COLUMN merchant_at_fault DROP DEFAULT,
    ALTER COLUMN merchant_at_fault TYPE boolean USING merchant_at_fault <> 0,
    ALTER COLUMN merchant_at_fault SET DEFAULT false;
ALTER TABLE complaint_history
    ALTER COLUMN at TYPE timestamptz USING to_timestamp(at / 1000.0);
ALTER TABLE escalations
    ALTER COLUMN escalated_at TYPE timestamptz USING to_timestamp(escalated_at / 1000.0);
