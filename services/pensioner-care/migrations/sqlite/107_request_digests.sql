-- The digest of the request each idempotency key was first used with (its
-- RPC and body), beside the key, so that a key reused for a different
-- request is refused rather than answered with the first one's result.
-- NULL: a key kept before digests were, taken as the same request.
ALTER TABLE elders ADD COLUMN request_digest TEXT;
ALTER TABLE volunteers ADD COLUMN request_digest TEXT;
ALTER TABLE pairings ADD COLUMN request_digest TEXT;
ALTER TABLE pairings ADD COLUMN end_request_digest TEXT;
ALTER TABLE visits ADD COLUMN request_digest TEXT;
ALTER TABLE bookings ADD COLUMN request_digest TEXT;
ALTER TABLE bookings ADD COLUMN settle_request_digest TEXT;
