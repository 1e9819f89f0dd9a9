-- Circle coverage. The district's building points (LoadBuildings replaces
-- them all at once), WGS-84, and per grid and basic service the coverage as
-- last applied by the coverage watcher: `covered` is what its last
-- `circle.coverage_changed` event said (no row: not covered), the counts as
-- last computed. A grid whose buildings are all gone loses its rows.
CREATE TABLE buildings (
    building_id TEXT             NOT NULL PRIMARY KEY,
    grid_id     TEXT             NOT NULL,
    latitude    DOUBLE PRECISION NOT NULL,
    longitude   DOUBLE PRECISION NOT NULL
);
CREATE INDEX buildings_by_grid ON buildings (grid_id, building_id);

CREATE TABLE grid_coverage (
    grid_id           TEXT        NOT NULL,
    kind              TEXT        NOT NULL,
    covered           BOOLEAN     NOT NULL,
    buildings_reached INTEGER     NOT NULL CHECK (buildings_reached >= 0),
    buildings         INTEGER     NOT NULL CHECK (buildings >= 0),
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grid_id, kind)
);
