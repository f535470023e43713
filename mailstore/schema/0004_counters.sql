-- What SELECT, EXAMINE and STATUS report, kept up to date instead of counted:
-- counting read every message row of the mailbox, 674 ms at 200,000 messages.
-- Triggers on messages maintain them in the transaction of every change
-- (delivery, APPEND, COPY, MOVE, flags, EXPUNGE, mailbox deletion), whichever
-- code path or process makes it. Store.CheckCounters recomputes and compares.
ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN deleted_bytes INTEGER NOT NULL DEFAULT 0;

-- The mailbox's UIDs as runs of consecutive numbers. New mail extends the last
-- run, so a mailbox that was never expunged is one row however large, and one
-- with an expunge of 1% of a million messages is about ten thousand.
CREATE TABLE uid_ranges (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	first      INTEGER NOT NULL,
	last       INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, first)
) WITHOUT ROWID;

-- The first unseen message without a scan; also what SEARCH UNSEEN reads.
-- Queries must spell the condition exactly so for SQLite to use it.
CREATE INDEX messages_unseen ON messages(mailbox_id, uid) WHERE instr(' '||flags||' ', ' \Seen ') = 0;

-- Keywords ever used in a mailbox, for SELECT's FLAGS (RFC 9051 allows
-- listing keywords no message carries any more). Maintained by the store.
CREATE TABLE mailbox_keywords (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	keyword    TEXT NOT NULL COLLATE NOCASE,
	PRIMARY KEY (mailbox_id, keyword)
) WITHOUT ROWID;

CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET
		n_messages = n_messages + 1,
		n_unseen = n_unseen + (instr(' '||NEW.flags||' ', ' \Seen ') = 0),
		n_deleted = n_deleted + (instr(' '||NEW.flags||' ', ' \Deleted ') > 0),
		bytes = bytes + NEW.size,
		deleted_bytes = deleted_bytes + iif(instr(' '||NEW.flags||' ', ' \Deleted ') > 0, NEW.size, 0)
	WHERE id = NEW.mailbox_id;
	-- Extend the run that ends just below, or start a run; then join the run
	-- starting just above (never there for UIDs taken from uidnext).
	UPDATE uid_ranges SET last = NEW.uid
	WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid - 1
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first < NEW.uid);
	INSERT INTO uid_ranges (mailbox_id, first, last)
	SELECT NEW.mailbox_id, NEW.uid, NEW.uid WHERE NOT EXISTS
		(SELECT 1 FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid
			AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid));
	UPDATE uid_ranges SET last = (SELECT last FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1)
	WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid)
		AND EXISTS (SELECT 1 FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1);
	DELETE FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1
		AND (SELECT last FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id
			AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid)) > NEW.uid;
END;

CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET
		n_messages = n_messages - 1,
		n_unseen = n_unseen - (instr(' '||OLD.flags||' ', ' \Seen ') = 0),
		n_deleted = n_deleted - (instr(' '||OLD.flags||' ', ' \Deleted ') > 0),
		bytes = bytes - OLD.size,
		deleted_bytes = deleted_bytes - iif(instr(' '||OLD.flags||' ', ' \Deleted ') > 0, OLD.size, 0)
	WHERE id = OLD.mailbox_id;
	-- Split the run holding the UID: its part above becomes a run of its
	-- own, its part below stays (or goes, if empty).
	INSERT INTO uid_ranges (mailbox_id, first, last)
	SELECT mailbox_id, OLD.uid + 1, last FROM uid_ranges
	WHERE mailbox_id = OLD.mailbox_id AND last > OLD.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first <= OLD.uid);
	UPDATE uid_ranges SET last = OLD.uid - 1
	WHERE mailbox_id = OLD.mailbox_id AND last >= OLD.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first <= OLD.uid);
	DELETE FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first = OLD.uid AND last < first;
END;

CREATE TRIGGER messages_update_flags AFTER UPDATE OF flags, size ON messages
WHEN OLD.mailbox_id = NEW.mailbox_id BEGIN
	UPDATE mailboxes SET
		n_unseen = n_unseen + (instr(' '||NEW.flags||' ', ' \Seen ') = 0) - (instr(' '||OLD.flags||' ', ' \Seen ') = 0),
		n_deleted = n_deleted + (instr(' '||NEW.flags||' ', ' \Deleted ') > 0) - (instr(' '||OLD.flags||' ', ' \Deleted ') > 0),
		bytes = bytes + NEW.size - OLD.size,
		deleted_bytes = deleted_bytes + iif(instr(' '||NEW.flags||' ', ' \Deleted ') > 0, NEW.size, 0)
			- iif(instr(' '||OLD.flags||' ', ' \Deleted ') > 0, OLD.size, 0)
	WHERE id = NEW.mailbox_id;
END;

-- A move (new mailbox or UID) is a delete from one place and an insert in
-- another; the statements are those of the two triggers above.
CREATE TRIGGER messages_move AFTER UPDATE OF mailbox_id, uid ON messages
WHEN OLD.mailbox_id != NEW.mailbox_id OR OLD.uid != NEW.uid BEGIN
	UPDATE mailboxes SET
		n_messages = n_messages - 1,
		n_unseen = n_unseen - (instr(' '||OLD.flags||' ', ' \Seen ') = 0),
		n_deleted = n_deleted - (instr(' '||OLD.flags||' ', ' \Deleted ') > 0),
		bytes = bytes - OLD.size,
		deleted_bytes = deleted_bytes - iif(instr(' '||OLD.flags||' ', ' \Deleted ') > 0, OLD.size, 0)
	WHERE id = OLD.mailbox_id;
	UPDATE mailboxes SET
		n_messages = n_messages + 1,
		n_unseen = n_unseen + (instr(' '||NEW.flags||' ', ' \Seen ') = 0),
		n_deleted = n_deleted + (instr(' '||NEW.flags||' ', ' \Deleted ') > 0),
		bytes = bytes + NEW.size,
		deleted_bytes = deleted_bytes + iif(instr(' '||NEW.flags||' ', ' \Deleted ') > 0, NEW.size, 0)
	WHERE id = NEW.mailbox_id;
	INSERT INTO uid_ranges (mailbox_id, first, last)
	SELECT mailbox_id, OLD.uid + 1, last FROM uid_ranges
	WHERE mailbox_id = OLD.mailbox_id AND last > OLD.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first <= OLD.uid);
	UPDATE uid_ranges SET last = OLD.uid - 1
	WHERE mailbox_id = OLD.mailbox_id AND last >= OLD.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first <= OLD.uid);
	DELETE FROM uid_ranges WHERE mailbox_id = OLD.mailbox_id AND first = OLD.uid AND last < first;
	UPDATE uid_ranges SET last = NEW.uid
	WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid - 1
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first < NEW.uid);
	INSERT INTO uid_ranges (mailbox_id, first, last)
	SELECT NEW.mailbox_id, NEW.uid, NEW.uid WHERE NOT EXISTS
		(SELECT 1 FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid
			AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid));
	UPDATE uid_ranges SET last = (SELECT last FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1)
	WHERE mailbox_id = NEW.mailbox_id AND last = NEW.uid
		AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid)
		AND EXISTS (SELECT 1 FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1);
	DELETE FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first = NEW.uid + 1
		AND (SELECT last FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id
			AND first = (SELECT MAX(first) FROM uid_ranges WHERE mailbox_id = NEW.mailbox_id AND first <= NEW.uid)) > NEW.uid;
END;

-- Existing data.
UPDATE mailboxes SET
	n_messages = (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = mailboxes.id),
	n_unseen = (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND instr(' '||m.flags||' ', ' \Seen ') = 0),
	n_deleted = (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND instr(' '||m.flags||' ', ' \Deleted ') > 0),
	bytes = (SELECT COALESCE(SUM(size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id),
	deleted_bytes = (SELECT COALESCE(SUM(size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id AND instr(' '||m.flags||' ', ' \Deleted ') > 0);

INSERT INTO uid_ranges (mailbox_id, first, last)
SELECT mailbox_id, MIN(uid), MAX(uid) FROM
	(SELECT mailbox_id, uid, uid - ROW_NUMBER() OVER (PARTITION BY mailbox_id ORDER BY uid) AS run FROM messages)
GROUP BY mailbox_id, run;

WITH RECURSIVE split(mailbox_id, word, rest) AS (
	SELECT mailbox_id, '', flags || ' ' FROM messages WHERE flags != ''
	UNION ALL
	SELECT mailbox_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1) FROM split WHERE rest != ''
)
INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword)
SELECT DISTINCT mailbox_id, word FROM split WHERE word != '' AND substr(word, 1, 1) != '\';
