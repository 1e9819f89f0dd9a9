-- The merchant-alliance service stores natively on PostgreSQL: instants
-- become `timestamptz` (from milliseconds since the epoch), the party-member
-- flag `boolean` (from 0/1), service tags `text[]` (from a JSON array in
-- TEXT) and opening hours `jsonb` (from JSON in TEXT). A database written by
-- earlier releases is converted in place.
ALTER TABLE merchants
    ALTER COLUMN opening_hours TYPE jsonb USING opening_hours::jsonb,
    ALTER COLUMN party_member_owner TYPE boolean USING party_member_owner <> 0,
    ALTER COLUMN registered_at TYPE timestamptz USING to_timestamp(registered_at / 1000.0),
    ALTER COLUMN updated_at TYPE timestamptz USING to_timestamp(updated_at / 1000.0),
    ADD COLUMN tags text[];
-- A transform expression cannot hold a subquery: the tags go through a
-- column of their own.
UPDATE merchants SET tags = ARRAY(SELECT jsonb_array_elements_text(service_tags::jsonb));
ALTER TABLE merchants DROP COLUMN service_tags;
ALTER TABLE merchants RENAME COLUMN tags TO service_tags;
ALTER TABLE merchants ALTER COLUMN service_tags SET NOT NULL;

ALTER TABLE credit_ledger
    ALTER COLUMN at TYPE timestamptz USING to_timestamp(at / 1000.0);
ALTER TABLE complaint_deductions
    ALTER COLUMN deducted_at TYPE timestamptz USING to_timestamp(deducted_at / 1000.0),
    ALTER COLUMN resolved_at TYPE timestamptz USING to_timestamp(resolved_at / 1000.0);
ALTER TABLE activities
    ALTER COLUMN happened_at TYPE timestamptz USING to_timestamp(happened_at / 1000.0);
ALTER TABLE awards
    ALTER COLUMN awarded_at TYPE timestamptz USING to_timestamp(awarded_at / 1000.0);
