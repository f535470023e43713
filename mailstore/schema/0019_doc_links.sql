-- A document that updates or replaces one released before (Decree 30/2020
-- Art. 18.3; edXML BussinessDocType 2 and 3) names it in both registers,
-- the sender's and each recipient's: relation is 'updates' or 'replaces'
-- ('' for a new document), related the DocumentId it corrects.
ALTER TABLE doc_register ADD COLUMN relation TEXT NOT NULL DEFAULT '' CHECK (relation IN ('', 'updates', 'replaces'));
ALTER TABLE doc_register ADD COLUMN related TEXT NOT NULL DEFAULT '';
