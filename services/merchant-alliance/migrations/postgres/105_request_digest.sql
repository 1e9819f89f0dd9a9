-- The digest of the request each idempotency key was first used with, so a
-- key reused for a different request (another body, another RPC) is refused
-- instead of answered with the first result (NULL: kept before digests, taken
-- as the same request).
ALTER TABLE merchants ADD COLUMN request_digest TEXT;
ALTER TABLE activities ADD COLUMN request_digest TEXT;
