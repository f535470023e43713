-- Subscriptions to names that are no mailbox (any more). RFC 3501 6.3.6: a
-- server must not drop a subscription when its mailbox is deleted; LIST
-- (SUBSCRIBED) reports such names as \NonExistent. The subscription of an
-- existing mailbox stays in mailboxes.subscribed.
CREATE TABLE subscriptions (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
