-- Where a complaint was placed on a map: as given (its datum named), and in
-- WGS-84 for the duplicate search; NULL when no point was given.
ALTER TABLE complaints ADD COLUMN point_latitude DOUBLE PRECISION;
ALTER TABLE complaints ADD COLUMN point_longitude DOUBLE PRECISION;
ALTER TABLE complaints ADD COLUMN point_datum TEXT;
ALTER TABLE complaints ADD COLUMN wgs84_latitude DOUBLE PRECISION;
ALTER TABLE complaints ADD COLUMN wgs84_longitude DOUBLE PRECISION;
-- The possible duplicates found at intake: an array of
-- {"complaint_id", "distance_metres"?, "same_building"}; NULL: none.
ALTER TABLE complaints ADD COLUMN possible_duplicates JSONB;
-- The duplicate search's two probes, each over open complaints only: by
-- building, newest first; by place, a latitude band and a longitude range
-- about the new complaint's point.
CREATE INDEX complaints_open_by_building ON complaints (building_id, category, submitted_at)
    INCLUDE (community_id, wgs84_latitude, wgs84_longitude, id)
    WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened');
CREATE INDEX complaints_open_by_place ON complaints (category, wgs84_latitude, wgs84_longitude)
    INCLUDE (community_id, submitted_at, building_id, id)
    WHERE status IN ('submitted', 'accepted', 'in_progress', 'reopened');
