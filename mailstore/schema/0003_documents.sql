-- Official documents (công văn): each agency's registers of documents sent and
-- received, their acknowledgements, trust in peers' seals and the evidence of
-- every exchange.

-- Certificate authorities whose seals are trusted for documents From a peer
-- domain. Kept apart from peers.tls_ca: trusting a server's TLS certificate
-- and trusting an agency's seal are separate decisions.
CREATE TABLE peer_seal_ca (
	domain   TEXT PRIMARY KEY,              -- lower case
	ca       TEXT NOT NULL,                 -- PEM certificates
	crl_file TEXT NOT NULL DEFAULT '',      -- path of a CRL kept fresh outside sealmail
	updated  INTEGER NOT NULL
);

-- The last number given in each register, per agency and year: numbers run
-- from 1 on 1 January and are never reused (Decree 30/2020 Art. 15, 22).
CREATE TABLE doc_numbers (
	domain    TEXT NOT NULL,
	direction TEXT NOT NULL,                -- 'out' (sổ đi) or 'in' (sổ đến)
	year      INTEGER NOT NULL,
	last      INTEGER NOT NULL,
	PRIMARY KEY (domain, direction, year)
);

-- One line of a register, with the columns of Decree 30 Appendix IV.
CREATE TABLE doc_register (
	id          INTEGER PRIMARY KEY,
	domain      TEXT NOT NULL,              -- the agency whose register this is
	direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
	year        INTEGER NOT NULL,
	number      INTEGER NOT NULL,           -- số (out) or số đến (in)
	notation    TEXT NOT NULL,              -- số/ký hiệu of the document
	document_id TEXT NOT NULL,              -- edXML DocumentId
	message_id  TEXT NOT NULL,
	doc_date    TEXT NOT NULL,              -- YYYY-MM-DD, issuing organ's date
	registered  INTEGER NOT NULL,           -- unix seconds: sent (out) or received (in)
	subject     TEXT NOT NULL,
	signer      TEXT NOT NULL,
	organ       TEXT NOT NULL,              -- issuing organ (in); '' (out)
	sender      TEXT NOT NULL,              -- clerk account (out); From: address (in)
	recipients  TEXT NOT NULL,              -- JSON array of addresses
	copies      INTEGER NOT NULL,
	status      TEXT NOT NULL,
	notes       TEXT NOT NULL,
	files       TEXT NOT NULL,              -- JSON array of {name, sha256}
	UNIQUE (domain, direction, year, number)
);
CREATE INDEX doc_register_document ON doc_register(document_id);
CREATE INDEX doc_register_message ON doc_register(domain, direction, message_id);

-- Acknowledgements of a register line, one per party (the "acknowledgement"
-- column): receipts received for a document sent, the receipt sent for a
-- document received.
CREATE TABLE doc_acks (
	register_id INTEGER NOT NULL REFERENCES doc_register(id),
	party       TEXT NOT NULL,              -- address of the other agency
	status_code TEXT NOT NULL,              -- edXML status, e.g. 01 arrived, 02 refused
	reason      TEXT NOT NULL,
	time        INTEGER NOT NULL,           -- unix seconds
	PRIMARY KEY (register_id, party)
);

-- Every evidence event (ETSI EN 319 532), append-only and hash-chained: hash
-- is the SHA-256 of the previous row's hash and this row's canonical content,
-- so altering or removing a row breaks every later hash.
CREATE TABLE doc_evidence (
	id          INTEGER PRIMARY KEY,
	domain      TEXT NOT NULL,              -- the agency that recorded it
	time        INTEGER NOT NULL,           -- unix nanoseconds
	origin      TEXT NOT NULL,              -- 'issued' here or 'received' from a peer
	event       TEXT NOT NULL,
	document_id TEXT NOT NULL,
	message_id  TEXT NOT NULL,
	status_code TEXT NOT NULL,
	reason      TEXT NOT NULL,
	sender      TEXT NOT NULL,
	recipients  TEXT NOT NULL,              -- JSON array
	receipt     BLOB NOT NULL,              -- the signed receipt, if any
	prev        TEXT NOT NULL,              -- hex
	hash        TEXT NOT NULL               -- hex
);
CREATE INDEX doc_evidence_document ON doc_evidence(document_id);
CREATE TRIGGER doc_evidence_no_update BEFORE UPDATE ON doc_evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TRIGGER doc_evidence_no_delete BEFORE DELETE ON doc_evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
