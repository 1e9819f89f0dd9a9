-- The resolution (its `resolved_at`, milliseconds) a complaint's deduction row
-- last applied: a resolution no newer than it — the same one re-sent under a
-- new event id, or an older one arriving late — changes nothing. NULL for rows
-- written before: any resolution is newer.
ALTER TABLE complaint_deductions ADD COLUMN resolved_at BIGINT;
