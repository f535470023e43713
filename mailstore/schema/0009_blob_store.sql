-- Message content moves out of the database into the blob store (DATA/blobs/
-- by default, see blob.go): the store moved every blobs.data into it, in
-- batches, before this migration runs (moveContent in migrate.go).
ALTER TABLE blobs DROP COLUMN data;

-- Content whose last reference went, to be deleted from the blob store after
-- the commit that released it (reclaim.go).
CREATE TABLE blob_reclaim (
	hash  BLOB PRIMARY KEY,
	since INTEGER NOT NULL
);

-- The content migration freed most of the database's pages: VACUUM once
-- (Open does it, and removes this mark, see migrate.go).
INSERT INTO counters (name, value) SELECT 'vacuum_pending', 1 WHERE EXISTS (SELECT 1 FROM blobs);
