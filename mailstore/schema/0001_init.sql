-- Domains hosted here. Each is an agency: organ_id etc. identify it in official documents.
CREATE TABLE domains (
	name             TEXT PRIMARY KEY,
	organ_id         TEXT NOT NULL DEFAULT '',
	organ_name       TEXT NOT NULL DEFAULT '',
	code             TEXT NOT NULL DEFAULT '',
	official_address TEXT NOT NULL DEFAULT '',
	created          INTEGER NOT NULL
);

CREATE TABLE accounts (
	id        INTEGER PRIMARY KEY,
	address   TEXT NOT NULL UNIQUE,          -- lower-case local@domain
	domain    TEXT NOT NULL REFERENCES domains(name),
	name      TEXT NOT NULL DEFAULT '',
	role      TEXT NOT NULL DEFAULT 'staff',
	password  TEXT NOT NULL,                 -- argon2id, PHC string
	quota     INTEGER NOT NULL DEFAULT 0,    -- bytes, 0 = unlimited
	used      INTEGER NOT NULL DEFAULT 0,    -- sum of sizes of the account's messages
	disabled  INTEGER NOT NULL DEFAULT 0,
	created   INTEGER NOT NULL
);

-- address '@domain' is the domain's catch-all.
CREATE TABLE aliases (
	address TEXT NOT NULL,
	target  TEXT NOT NULL,
	PRIMARY KEY (address, target)
);
CREATE INDEX aliases_target ON aliases(target);

CREATE TABLE mailboxes (
	id          INTEGER PRIMARY KEY,
	account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name        TEXT NOT NULL,               -- UTF-8, '/' separated
	uidvalidity INTEGER NOT NULL,
	uidnext     INTEGER NOT NULL DEFAULT 1,
	subscribed  INTEGER NOT NULL DEFAULT 1,
	special_use TEXT NOT NULL DEFAULT '',
	UNIQUE (account_id, name)
);

-- Message content, stored once per distinct SHA-256 and shared by every copy.
-- AUTOINCREMENT: an id is never reused, so index entries of reclaimed content
-- (removed in the background, see fts_garbage) can never match new content.
CREATE TABLE blobs (
	id    INTEGER PRIMARY KEY AUTOINCREMENT,
	hash  BLOB NOT NULL UNIQUE,
	size  INTEGER NOT NULL,
	refs  INTEGER NOT NULL,
	envelope  BLOB NOT NULL,                 -- parsed once at delivery, see codec.go
	structure BLOB NOT NULL,                 -- JSON of Part
	data  BLOB NOT NULL
);

CREATE TABLE messages (
	id            INTEGER PRIMARY KEY,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL REFERENCES blobs(id),
	flags         TEXT NOT NULL DEFAULT '',  -- space separated, case preserved
	internal_date INTEGER NOT NULL,          -- unix seconds
	size          INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_blob ON messages(blob_id);

-- Every change to a mailbox, so sessions (in this or another process) can catch up
-- from the last id they saw instead of re-reading the mailbox.
CREATE TABLE changes (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id INTEGER NOT NULL,
	uid        INTEGER NOT NULL,
	kind       INTEGER NOT NULL,             -- 1 new, 2 flags, 3 expunged, 4 mailbox deleted
	time       INTEGER NOT NULL
);
CREATE INDEX changes_mailbox ON changes(mailbox_id, id);

-- Folded (lower-case, diacritics removed, đ→d) text of each blob, keyed by blobs.id.
-- The text FTS4 keeps is compressed by functions the store registers on every
-- connection (driver.go); other SQLite clients can search but not read it.
CREATE VIRTUAL TABLE fts USING fts4(subject, "from", "to", cc, bcc, body, tokenize=simple,
	compress=sealmail_zip, uncompress=sealmail_unzip);

-- Blobs not yet in fts. Indexing runs in the background, in large batches, so that
-- a delivery's commit does not pay for it; searches scan these few directly.
CREATE TABLE unindexed (blob_id INTEGER PRIMARY KEY);

-- Index entries of reclaimed content, removed in the background: deleting from
-- FTS4 re-tokenizes the text, which would make EXPUNGE pay for it.
CREATE TABLE fts_garbage (docid INTEGER PRIMARY KEY);

-- Named counters that must never repeat (UIDVALIDITY); registers use their own tables.
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
