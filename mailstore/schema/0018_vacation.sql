-- Out-of-office replies (RFC 3834). vacations holds an account's reply while
-- it is on: from_time and until_time are Unix seconds, 0 for an open end; the
-- reply is sent from from_time up to, not including, until_time.
-- vacation_replies remembers whom each account answered and when, so a sender
-- gets one reply per 7 days however often they write, across restarts; it is
-- emptied when the reply's text changes or it is turned off (a new notice
-- goes to everyone once, as Sieve's vacation handle does, RFC 5230 4.1).
CREATE TABLE vacations (
	account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	subject    TEXT NOT NULL,
	body       TEXT NOT NULL,
	from_time  INTEGER NOT NULL DEFAULT 0,
	until_time INTEGER NOT NULL DEFAULT 0,
	updated    INTEGER NOT NULL
);
CREATE TABLE vacation_replies (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	sender     TEXT NOT NULL,
	sent       INTEGER NOT NULL,
	PRIMARY KEY (account_id, sender)
) WITHOUT ROWID;
