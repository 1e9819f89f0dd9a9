-- Idempotency keys of Pair and Unpair: a retried request finds its pairing here.
ALTER TABLE pairings ADD COLUMN request_id TEXT;
ALTER TABLE pairings ADD COLUMN end_request_id TEXT;
CREATE UNIQUE INDEX pairings_request ON pairings (request_id);
CREATE UNIQUE INDEX pairings_end_request ON pairings (end_request_id);
