-- Events that end every session an account has open: its password was set
-- (mailstore.SetPassword). IMAP and SMTP servers learn of them, in this
-- process or another one (the admin's command), the way they learn of new
-- mail: the notifier reads the rows past the last id it saw. Sessions that
-- logged in before a row's id was written end. Rows older than the change
-- history are pruned with it.
CREATE TABLE logouts (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL,
	time       INTEGER NOT NULL
);
CREATE INDEX logouts_account ON logouts(account_id, id);
