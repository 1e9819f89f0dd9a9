-- A booking goes booked -> served | cancelled | no_show, once: the settlement
-- is recorded on the booking with who recorded it and when, under the
-- idempotency key of the request that made it, so a retried request finds the
-- booking it settled.
ALTER TABLE bookings ADD COLUMN settle_request_id TEXT;
ALTER TABLE bookings ADD COLUMN settled_at timestamptz;
ALTER TABLE bookings ADD COLUMN settled_by TEXT;
CREATE UNIQUE INDEX bookings_settle_request ON bookings (settle_request_id);
