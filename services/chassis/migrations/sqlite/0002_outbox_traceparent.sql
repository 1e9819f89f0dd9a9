-- The W3C traceparent of the work that wrote the event, if it had one; the
-- relay publishes it as the message's `traceparent` NATS header.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
