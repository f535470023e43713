-- What migrations ('sealmail import') have copied in, so that a run repeated or
-- resumed after an interruption copies only what is new. A row is written in the
-- transaction that stores the message, so a message is either stored and
-- recorded or neither. source names a folder of the old system
-- (imap://anna@old.example.vn:993/INBOX, maildir:/srv/mail/anna/.Sent,
-- mbox:/home/anna/mbox); item names one message within it (UIDVALIDITY.UID,
-- the maildir unique name, the content's sum and occurrence in an mbox);
-- ident is a second identity (Message-ID, size, date) that survives an IMAP
-- server renumbering its UIDs.
CREATE TABLE imported (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	source     TEXT NOT NULL,
	item       TEXT NOT NULL,
	ident      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (account_id, source, item)
) WITHOUT ROWID;
