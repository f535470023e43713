-- Merge the index's segments a little at every indexing commit rather than
-- sixteen at a time: a blocking merge of large segments held the writer, and
-- every delivery queued behind it, for seconds once the index had grown.
INSERT INTO fts(fts) VALUES('automerge=8');
