-- Other mail domains this server exchanges mail with directly (agencies on the
-- same closed network). Later migrations may add columns (e.g. seal trust).
CREATE TABLE peers (
	domain     TEXT PRIMARY KEY,              -- lower case
	relay      TEXT NOT NULL DEFAULT '',      -- HOST:PORT; '' means look up MX
	tls_ca     TEXT NOT NULL DEFAULT '',      -- PEM certificates to verify the peer with; '' means system roots
	organ_id   TEXT NOT NULL DEFAULT '',
	organ_name TEXT NOT NULL DEFAULT '',
	created    INTEGER NOT NULL
);

-- Outbound mail waiting for delivery. Content is a reference to blobs, so a
-- message also kept in a mailbox is stored once.
CREATE TABLE queue (
	id       INTEGER PRIMARY KEY,
	sender   TEXT NOT NULL,                   -- envelope sender; '' is the null sender <>
	blob_id  INTEGER NOT NULL REFERENCES blobs(id),
	created  INTEGER NOT NULL,
	warned   INTEGER NOT NULL DEFAULT 0       -- the sender was told of the delay
);

CREATE TABLE queue_rcpts (
	queue_id   INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
	rcpt       TEXT NOT NULL,
	status     INTEGER NOT NULL DEFAULT 0,    -- 0 pending, 1 sent, 2 failed
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_try   INTEGER NOT NULL,              -- unix seconds
	last_error TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (queue_id, rcpt)
);
CREATE INDEX queue_rcpts_due ON queue_rcpts(status, next_try);
