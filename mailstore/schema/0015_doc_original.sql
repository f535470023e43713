-- The content a register line was delivered as (the stamped document sent,
-- the verified document received), kept as long as the register: the signed
-- original stays on the issuing agency's system (Decree 30/2020 Art. 19.2),
-- the edXML export reads it, and a recall finds the recipients' copies by it.
-- NULL for lines registered before, and for paper documents.
ALTER TABLE doc_register ADD COLUMN blob_id INTEGER REFERENCES blobs(id);
CREATE INDEX doc_register_blob ON doc_register(blob_id);
