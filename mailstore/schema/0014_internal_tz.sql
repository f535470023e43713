-- A message's internal date keeps the zone it was given in (APPEND's
-- date-time, the server's zone for delivered mail), as seconds east of UTC:
-- FETCH INTERNALDATE answers it as given, and SEARCH BEFORE/ON/SINCE compare
-- the day in that zone (RFC 3501 6.4.4: "disregarding time and timezone").
-- NULL, for the messages stored before, is the server's zone, as then.
ALTER TABLE messages ADD COLUMN internal_tz INTEGER;
