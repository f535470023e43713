-- Every word the full-text index holds, so that SEARCH can match substrings
-- (RFC 3501 6.4.4) through the index: the words containing a query's word
-- are found here, then the contents holding them through fts. Words are
-- never removed: one whose contents are all gone only costs a lookup.
CREATE TABLE fts_vocab (term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE VIRTUAL TABLE temp.fts_terms USING fts4aux(main, fts);
INSERT OR IGNORE INTO fts_vocab (term) SELECT DISTINCT term FROM temp.fts_terms WHERE col = '*';
DROP TABLE temp.fts_terms;
