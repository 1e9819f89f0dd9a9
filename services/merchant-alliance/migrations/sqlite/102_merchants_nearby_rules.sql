-- Nearby with a service tag or "open now" reads on past the nearest merchants
-- until enough pass those rules; with the tags and the opening hours in the
-- index too, its pages of candidates still come from the index alone (the tag
-- is matched in SQL, the hours are judged in the service). PostgreSQL keeps
-- the narrower index of migration 101: its index entries are limited to about
-- 2.7 kB and opening hours have no fixed length.
DROP INDEX merchants_nearby;
CREATE INDEX merchants_nearby ON merchants (category, status, cell, latitude, longitude, id, service_tags, opening_hours);
