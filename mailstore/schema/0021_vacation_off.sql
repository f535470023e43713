-- An out-of-office reply turned off is kept, off = 1, so that the portal
-- and 'sealmail user vacation' offer its subject, text and dates again the
-- next time (replies go out only while off = 0). Whom it answered is still
-- forgotten when it is turned off.
ALTER TABLE vacations ADD COLUMN off INTEGER NOT NULL DEFAULT 0;
