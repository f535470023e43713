-- Registers as Decree 30/2020 keeps them (Art. 15, 16, 22, Appendix IV):
-- - a series (sổ) per register: '' the ordinary one, 'mat' the separate one
--   of confidential (mật) documents, each numbered from 01 every year;
-- - paper documents registered beside electronic ones, in the same series;
-- - the Appendix IV columns the first schema lacked: the document type
--   (tên loại) and the unit or person keeping the filed copy (bản lưu).
-- SQLite cannot change a table's UNIQUE or PRIMARY KEY constraints, so the
-- three tables are rebuilt: the new doc_acks references the new register,
-- and renaming that table to doc_register carries the reference along.

CREATE TABLE doc_numbers_new (
	domain    TEXT NOT NULL,
	direction TEXT NOT NULL,                -- 'out' (sổ đi) or 'in' (sổ đến)
	series    TEXT NOT NULL,                -- '' or 'mat'
	year      INTEGER NOT NULL,
	last      INTEGER NOT NULL,
	PRIMARY KEY (domain, direction, series, year)
);
INSERT INTO doc_numbers_new (domain, direction, series, year, last)
SELECT domain, direction, '', year, last FROM doc_numbers;

CREATE TABLE doc_register_new (
	id          INTEGER PRIMARY KEY,
	domain      TEXT NOT NULL,              -- the agency whose register this is
	direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
	series      TEXT NOT NULL DEFAULT '' CHECK (series IN ('', 'mat')),
	medium      TEXT NOT NULL DEFAULT 'electronic' CHECK (medium IN ('electronic', 'paper')),
	year        INTEGER NOT NULL,
	number      INTEGER NOT NULL,           -- số (out) or số đến (in)
	notation    TEXT NOT NULL,              -- số/ký hiệu of the document
	document_id TEXT NOT NULL,              -- edXML DocumentId
	message_id  TEXT NOT NULL,              -- '' for paper documents
	doc_date    TEXT NOT NULL,              -- YYYY-MM-DD, issuing organ's date
	registered  INTEGER NOT NULL,           -- unix seconds: sent (out) or received (in)
	doc_type    TEXT NOT NULL DEFAULT '',   -- tên loại: Công văn, Quyết định, ...
	subject     TEXT NOT NULL,
	signer      TEXT NOT NULL,
	organ       TEXT NOT NULL,              -- issuing organ (in); '' (out)
	sender      TEXT NOT NULL,              -- clerk account (out); From: address (in)
	recipients  TEXT NOT NULL,              -- JSON array of addresses or names
	filed_with  TEXT NOT NULL DEFAULT '',   -- đơn vị, người nhận bản lưu (out)
	copies      INTEGER NOT NULL,
	status      TEXT NOT NULL,
	notes       TEXT NOT NULL,
	files       TEXT NOT NULL,              -- JSON array of {name, sha256}
	UNIQUE (domain, direction, series, year, number)
);
INSERT INTO doc_register_new (id, domain, direction, series, medium, year, number, notation, document_id, message_id,
	doc_date, registered, doc_type, subject, signer, organ, sender, recipients, filed_with, copies, status, notes, files)
SELECT id, domain, direction, '', 'electronic', year, number, notation, document_id, message_id,
	doc_date, registered, '', subject, signer, organ, sender, recipients, '', copies, status, notes, files FROM doc_register;

CREATE TABLE doc_acks_new (
	register_id INTEGER NOT NULL REFERENCES doc_register_new(id),
	party       TEXT NOT NULL,              -- address of the other agency
	status_code TEXT NOT NULL,              -- edXML status, e.g. 01 arrived, 02 refused
	reason      TEXT NOT NULL,
	time        INTEGER NOT NULL,           -- unix seconds
	PRIMARY KEY (register_id, party)
);
INSERT INTO doc_acks_new SELECT register_id, party, status_code, reason, time FROM doc_acks;

DROP TABLE doc_acks;
DROP TABLE doc_register;
DROP TABLE doc_numbers;
ALTER TABLE doc_register_new RENAME TO doc_register;
ALTER TABLE doc_acks_new RENAME TO doc_acks;
ALTER TABLE doc_numbers_new RENAME TO doc_numbers;
CREATE INDEX doc_register_document ON doc_register(document_id);
CREATE INDEX doc_register_message ON doc_register(domain, direction, message_id);
