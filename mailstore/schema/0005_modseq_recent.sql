-- \Recent (RFC 3501): the highest UID of the mailbox that some session has
-- already been told is recent. Messages above it are recent for the next
-- session that looks, and for that session only. What exists now is old.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uidnext - 1;

-- CONDSTORE/QRESYNC: the messages changed since a modseq, without reading the
-- whole mailbox.
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);

-- Change ids are modseqs. A mailbox that never changed reports HIGHESTMODSEQ 1
-- (RFC 7162 has no zero there), so real changes must start above it.
INSERT INTO sqlite_sequence (name, seq) SELECT 'changes', 1
	WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'changes');
