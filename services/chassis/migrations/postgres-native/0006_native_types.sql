-- The chassis's tables with PostgreSQL's own types, for the services that
-- store natively (see the chassis's `postgres` module): instants become
-- `timestamptz` (from milliseconds since the epoch) and the parked events'
-- headers `jsonb`. An outbox payload stays `text`: it is published byte for
-- byte as it was written.
ALTER TABLE outbox
    ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN published_at TYPE timestamptz USING to_timestamp(published_at / 1000.0);
ALTER TABLE processed_events
    ALTER COLUMN processed_at TYPE timestamptz USING to_timestamp(processed_at / 1000.0);
ALTER TABLE leases
    ALTER COLUMN expires_at TYPE timestamptz USING
        CASE WHEN expires_at >= 8210298412800000 THEN 'infinity'::timestamptz
             ELSE to_timestamp(expires_at / 1000.0) END;
ALTER TABLE storage_probe
    ALTER COLUMN written_at TYPE timestamptz USING to_timestamp(written_at / 1000.0);
ALTER TABLE parked_events
    ALTER COLUMN parked_at TYPE timestamptz USING to_timestamp(parked_at / 1000.0),
    ALTER COLUMN headers TYPE jsonb USING headers::jsonb;
