-- The full-text index keeps no copy of the text: FTS4's own copy, compressed,
-- was half the size of the mail it indexed (0.51× on the scale benchmark),
-- and the blob store already holds every message. fts_text is the external
-- content table FTS4 reads when it deletes a row (to find the row's terms);
-- it is empty but for that moment: the indexer re-extracts the text of a
-- reclaimed content from the blob store, puts it there, deletes the index
-- row and empties it again (index.go). The reclaimer leaves content alone
-- until then (fts_garbage's hash). Queries read only the index: FTS4 never
-- defers a phrase's tokens to the content table of a content= table.
--
-- Every content is indexed again, in the background; searches read what the
-- indexer has not reached yet, as for new mail.
DROP TABLE fts;
CREATE TABLE fts_text (docid INTEGER PRIMARY KEY, subject, "from", "to", cc, bcc, header, body);
CREATE VIRTUAL TABLE fts USING fts4(content="fts_text", subject, "from", "to", cc, bcc, header, body, tokenize=simple);
INSERT INTO fts(fts) VALUES('automerge=8');
DROP TABLE fts_garbage;
CREATE TABLE fts_garbage (
	docid INTEGER PRIMARY KEY,
	hash  BLOB NOT NULL, -- the content whose text the index row holds
	size  INTEGER NOT NULL
);
CREATE INDEX fts_garbage_hash ON fts_garbage (hash);
INSERT OR IGNORE INTO unindexed (blob_id) SELECT id FROM blobs;
-- The old index's copy of the text leaves free pages: compact once at Open.
INSERT OR IGNORE INTO counters (name, value) SELECT 'vacuum_pending', 1 WHERE EXISTS (SELECT 1 FROM blobs);
