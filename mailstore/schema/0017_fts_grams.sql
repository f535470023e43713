-- The words of fts_vocab by each three-character piece of them (trigram),
-- so that the words containing a query's word are found by one of its
-- trigrams instead of by reading every word of the vocabulary: that read
-- grew with the mail (every Message-ID and queue id is a word of its own)
-- and was most of a rare word's SEARCH at a million messages. A word of
-- fewer than three characters is its own piece. Numbers (digits only) have
-- none: they are most of the vocabulary (amounts, dates, phone numbers, ids)
-- and their pieces would have been a tenth of the mail's size at 10,000
-- messages; a number searched for, which only a word with digits can hold,
-- is looked for in the whole of fts_vocab as before. Kept by the indexer
-- with fts_vocab; never pruned either.
CREATE TABLE fts_grams (
	gram TEXT NOT NULL,
	term TEXT NOT NULL,
	PRIMARY KEY (gram, term)
) WITHOUT ROWID;
WITH RECURSIVE pieces(term, rest) AS (
	SELECT term, term FROM fts_vocab WHERE term GLOB '*[^0-9]*'
	UNION ALL
	SELECT term, substr(rest, 2) FROM pieces WHERE length(rest) > 3
)
INSERT OR IGNORE INTO fts_grams (gram, term) SELECT substr(rest, 1, 3), term FROM pieces;
