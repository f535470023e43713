-- Browsers logged in to the web portal. id is what the session cookie's value
-- hashes to (SHA-256, hex), never the value itself: a copy of the database
-- does not let anyone ride a session. csrf is the token every form of the
-- session carries. A session ends at expires whatever happens, or earlier
-- when seen (its last request, updated at most once a minute) is older than
-- the portal's idle timeout; a password change ends every session of the
-- account (mailstore.SetPassword).
CREATE TABLE web_sessions (
	id         TEXT PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	seen       INTEGER NOT NULL,
	expires    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_account ON web_sessions(account_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires);
