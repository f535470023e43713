-- SEARCH TEXT looks in every header field, not only the address fields and
-- the subject (RFC 3501 6.4.4), and FROM/TO/CC/BCC match the fields as
-- written: display names, comments and addresses. The index gets a column for
-- the other header fields, and the address columns hold the decoded fields
-- rather than the parsed addresses, so every content is indexed again: the
-- indexer does it in the background, and searches scan what it has not
-- reached yet, as for new mail.
DROP TABLE fts;
CREATE VIRTUAL TABLE fts USING fts4(subject, "from", "to", cc, bcc, header, body, tokenize=simple,
	compress=sealmail_zip, uncompress=sealmail_unzip);
DELETE FROM fts_garbage;
INSERT OR IGNORE INTO unindexed (blob_id) SELECT id FROM blobs;
