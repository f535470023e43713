-- Contents under 1 MiB are appended to pack files (mailstore/blob/disk), so
-- the blob store needs to be told where a content is: blobs.loc, the locator
-- its Put returned ('' for content it finds by its sum alone). The column is
-- added by the Go step before this file (migrate.go), because the content
-- move of 0009 adds it first on databases that still held their content.
--
-- A content can then be stored twice (put again while a copy was waiting for
-- reclaim, or delivered again while referenced), so reclaim and the index's
-- garbage name a stored copy by sum and locator.
CREATE TABLE blob_reclaim_new (
	hash  BLOB NOT NULL,
	loc   TEXT NOT NULL DEFAULT '',
	since INTEGER NOT NULL,
	PRIMARY KEY (hash, loc)
);
INSERT INTO blob_reclaim_new (hash, since) SELECT hash, since FROM blob_reclaim;
DROP TABLE blob_reclaim;
ALTER TABLE blob_reclaim_new RENAME TO blob_reclaim;

ALTER TABLE fts_garbage ADD COLUMN loc TEXT NOT NULL DEFAULT '';
