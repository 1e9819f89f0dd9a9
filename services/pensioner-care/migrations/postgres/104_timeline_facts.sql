-- The identity of the fact a timeline entry records, for entries learned from
-- other services' events (a complaint's resolution, closing, reopening): one
-- entry per fact, however many events announce it (a twin under a new event
-- id changes nothing). NULL for the service's own entries.
ALTER TABLE timeline ADD COLUMN fact TEXT;
CREATE UNIQUE INDEX timeline_once_per_fact ON timeline (elder_id, kind, fact) WHERE fact IS NOT NULL;
