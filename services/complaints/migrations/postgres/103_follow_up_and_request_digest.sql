-- The digest of the request each idempotency key was first used with, so a
-- key reused for a different request is refused (NULL: kept before digests).
ALTER TABLE complaints ADD COLUMN request_digest TEXT;
ALTER TABLE complaint_history ADD COLUMN request_digest TEXT;
-- Each follow-up visit's score, on the history entry it closed or reopened.
ALTER TABLE complaint_history ADD COLUMN satisfaction BIGINT;
-- Resolved complaints by follow-up limit: the missed-follow-up sweep's queue.
CREATE INDEX complaints_follow_up_due ON complaints (follow_up_due_at, id)
    WHERE status = 'resolved';
