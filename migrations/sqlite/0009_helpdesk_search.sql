-- Help desk full-text search over tickets, for agents: the subject and every message's body (public replies and
-- internal notes: only agents search). FTS5's stemmer is English-only, so Italian text is indexed with the
-- unicode61 tokenizer (case and diacritics folded) and the query side matches a word's other endings (plural and
-- gender: "stampanti" finds "stampante"; see crates/helpdesk/src/search.rs).
-- One document per subject and per message, in a contentless FTS5 table (the text is in the tickets and messages
-- already) whose rowid is the `seq` of helpdesk_search_docs, which names the ticket: the tickets' implicit rowids
-- may change on VACUUM, an INTEGER PRIMARY KEY does not. Kept by triggers: tickets and messages are inserted with
-- their text and never change it nor move.

CREATE TABLE helpdesk_search_docs (
    seq INTEGER PRIMARY KEY,
    ticket_id BLOB NOT NULL REFERENCES helpdesk_tickets(id),
    -- The message the document is; NULL for the ticket's subject.
    message_id BLOB
);
CREATE INDEX helpdesk_search_docs_ticket ON helpdesk_search_docs(ticket_id);

CREATE VIRTUAL TABLE helpdesk_fts USING fts5(
    body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER helpdesk_tickets_search_ai AFTER INSERT ON helpdesk_tickets BEGIN
    INSERT INTO helpdesk_search_docs (ticket_id) VALUES (new.id);
    INSERT INTO helpdesk_fts (rowid, body) VALUES (last_insert_rowid(), new.subject);
END;
CREATE TRIGGER helpdesk_messages_search_ai AFTER INSERT ON helpdesk_messages BEGIN
    INSERT INTO helpdesk_search_docs (ticket_id, message_id) VALUES (new.ticket_id, new.id);
    INSERT INTO helpdesk_fts (rowid, body) VALUES (last_insert_rowid(), new.body);
END;
CREATE TRIGGER helpdesk_tickets_search_ad AFTER DELETE ON helpdesk_tickets BEGIN
    DELETE FROM helpdesk_fts WHERE rowid IN (SELECT seq FROM helpdesk_search_docs WHERE ticket_id = old.id);
    DELETE FROM helpdesk_search_docs WHERE ticket_id = old.id;
END;

-- Backfill.
INSERT INTO helpdesk_search_docs (ticket_id) SELECT id FROM helpdesk_tickets ORDER BY created_at;
INSERT INTO helpdesk_fts (rowid, body)
    SELECT d.seq, t.subject FROM helpdesk_search_docs d JOIN helpdesk_tickets t ON t.id = d.ticket_id;
INSERT INTO helpdesk_search_docs (ticket_id, message_id) SELECT ticket_id, id FROM helpdesk_messages ORDER BY created_at;
INSERT INTO helpdesk_fts (rowid, body)
    SELECT d.seq, m.body FROM helpdesk_search_docs d JOIN helpdesk_messages m ON m.id = d.message_id;
