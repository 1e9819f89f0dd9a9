-- Nearby's first pass (ids and places of the active merchants of one category in
-- the covering cells and the circle's bounding box) reads this index alone: per
-- cell, a range of latitudes, with the longitude and id beside them, and no
-- lookup of the table's rows. Building it indexes the existing rows.
DROP INDEX merchants_nearby;
CREATE INDEX merchants_nearby ON merchants (category, status, cell, latitude, longitude, id);
