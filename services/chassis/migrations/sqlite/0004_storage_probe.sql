-- The row the storage probe rewrites while commits fail, to find out when the
-- database takes them again (see the chassis's `storage` module).
CREATE TABLE storage_probe (
    written_at BIGINT NOT NULL,
    filler     TEXT   NOT NULL
);
