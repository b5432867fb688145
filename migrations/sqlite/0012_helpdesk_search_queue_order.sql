-- Help desk full-text search, SQLite: one FTS5 row per ticket, in queue order, with the filters inside the index.
-- Replaces 0009's one document per subject and per message, whose searches joined the matches back to the tickets
-- and sorted them (seconds at a million tickets for a common plural or two words).
--
-- helpdesk_search_fts (contentless: the text is in the tickets and messages already) has two columns:
--   words: the subject and the body of every message (public replies and internal notes: only agents search);
--   keys:  the values a queue is filtered by, as tokens no word can be: `o<org>`, `s<state>`, `c<category>`,
--          `p<priority>`, `q<queue>`, `a<assignee>` (each value in hex: `o` || hex(org_id), …).
-- Its rowid is the ticket's key in helpdesk_search_keys: updated_at in microseconds × 2048, plus 0…2047 to tell
-- apart tickets changed in the same microsecond (a bulk action stamps them all alike; in order of arrival, the
-- backfill by id). Beyond 2048 in one microsecond a ticket takes the key after the largest (the top of the
-- search's order: a search may then list it higher than the queue does; the index stays whole, no write fails).
-- FTS rowid order is then the queue's order (newest change first), and a page of a search is
--   MATCH 'keys:"o…" AND keys:"s…" AND words:…' AND rowid < ? ORDER BY rowid DESC LIMIT 26
-- which FTS5 walks from the top of its lists and stops at the 26th match, keyset on the rowid.
-- The key changes whenever the ticket's updated_at (or a filtered value) changes: the row is deleted and inserted
-- again under the new key (FTS5's contentless_delete). A new message rewrites the row under the same key.
-- Stored instants are RFC 3339 UTC text with a `Z` (ADR 0002): the key reads the seconds with unixepoch() and the
-- fraction's digits (padded to six: values from outside clock::stamp may have fewer).
-- No foreign key to the tickets: the row goes with its ticket by trigger.

DROP TRIGGER helpdesk_tickets_search_ai;
DROP TRIGGER helpdesk_messages_search_ai;
DROP TRIGGER helpdesk_tickets_search_ad;
DROP TABLE helpdesk_fts;
DROP TABLE helpdesk_search_docs;

CREATE TABLE helpdesk_search_keys (
    key INTEGER PRIMARY KEY,
    ticket_id BLOB NOT NULL UNIQUE
);

CREATE VIRTUAL TABLE helpdesk_search_fts USING fts5(
    words, keys,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER helpdesk_search_ticket_ai AFTER INSERT ON helpdesk_tickets BEGIN
    INSERT INTO helpdesk_search_keys (key, ticket_id)
        SELECT CASE WHEN m IS NULL THEN b WHEN m < b + 2047 THEN m + 1 ELSE (SELECT MAX(key) + 1 FROM helpdesk_search_keys) END, new.id
          FROM (SELECT b, (SELECT MAX(key) FROM helpdesk_search_keys WHERE key BETWEEN b AND b + 2047) AS m
                  FROM (SELECT (unixepoch(new.updated_at) * 1000000 + CASE WHEN substr(new.updated_at, 20, 1) = '.' THEN CAST(substr(substr(new.updated_at, 21, length(new.updated_at) - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END) * 2048 AS b));
    INSERT INTO helpdesk_search_fts (rowid, words, keys) VALUES (last_insert_rowid(),
        new.subject || ' ' || COALESCE((SELECT group_concat(m.body, ' ') FROM helpdesk_messages m WHERE m.ticket_id = new.id), ''),
        'o' || hex(new.org_id) || ' s' || hex(new.state) || ' c' || hex(new.category) || ' p' || hex(new.priority)
            || ' q' || hex(new.queue) || CASE WHEN new.assignee_id IS NULL THEN '' ELSE ' a' || hex(new.assignee_id) END);
END;

CREATE TRIGGER helpdesk_search_ticket_au AFTER UPDATE OF updated_at, state, category, priority, queue, assignee_id, org_id, subject
    ON helpdesk_tickets
    WHEN old.updated_at IS NOT new.updated_at OR old.state IS NOT new.state OR old.category IS NOT new.category
        OR old.priority IS NOT new.priority OR old.queue IS NOT new.queue OR old.assignee_id IS NOT new.assignee_id
        OR old.org_id IS NOT new.org_id OR old.subject IS NOT new.subject
BEGIN
    DELETE FROM helpdesk_search_fts WHERE rowid = (SELECT key FROM helpdesk_search_keys WHERE ticket_id = old.id);
    DELETE FROM helpdesk_search_keys WHERE ticket_id = old.id;
    INSERT INTO helpdesk_search_keys (key, ticket_id)
        SELECT CASE WHEN m IS NULL THEN b WHEN m < b + 2047 THEN m + 1 ELSE (SELECT MAX(key) + 1 FROM helpdesk_search_keys) END, new.id
          FROM (SELECT b, (SELECT MAX(key) FROM helpdesk_search_keys WHERE key BETWEEN b AND b + 2047) AS m
                  FROM (SELECT (unixepoch(new.updated_at) * 1000000 + CASE WHEN substr(new.updated_at, 20, 1) = '.' THEN CAST(substr(substr(new.updated_at, 21, length(new.updated_at) - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END) * 2048 AS b));
    INSERT INTO helpdesk_search_fts (rowid, words, keys) VALUES (last_insert_rowid(),
        new.subject || ' ' || COALESCE((SELECT group_concat(m.body, ' ') FROM helpdesk_messages m WHERE m.ticket_id = new.id), ''),
        'o' || hex(new.org_id) || ' s' || hex(new.state) || ' c' || hex(new.category) || ' p' || hex(new.priority)
            || ' q' || hex(new.queue) || CASE WHEN new.assignee_id IS NULL THEN '' ELSE ' a' || hex(new.assignee_id) END);
END;

-- A new message: the ticket's row again, with every message, under the same key.
CREATE TRIGGER helpdesk_search_message_ai AFTER INSERT ON helpdesk_messages BEGIN
    DELETE FROM helpdesk_search_fts WHERE rowid = (SELECT key FROM helpdesk_search_keys WHERE ticket_id = new.ticket_id);
    INSERT INTO helpdesk_search_fts (rowid, words, keys)
        SELECT k.key,
               t.subject || ' ' || COALESCE((SELECT group_concat(m.body, ' ') FROM helpdesk_messages m WHERE m.ticket_id = t.id), ''),
               'o' || hex(t.org_id) || ' s' || hex(t.state) || ' c' || hex(t.category) || ' p' || hex(t.priority)
            || ' q' || hex(t.queue) || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' a' || hex(t.assignee_id) END
          FROM helpdesk_search_keys k JOIN helpdesk_tickets t ON t.id = k.ticket_id
         WHERE k.ticket_id = new.ticket_id;
END;

CREATE TRIGGER helpdesk_search_ticket_ad AFTER DELETE ON helpdesk_tickets BEGIN
    DELETE FROM helpdesk_search_fts WHERE rowid = (SELECT key FROM helpdesk_search_keys WHERE ticket_id = old.id);
    DELETE FROM helpdesk_search_keys WHERE ticket_id = old.id;
END;

-- Backfill: tickets changed in the same microsecond numbered by id, as the queue orders them; beyond 2048 of them
-- after the largest key.
CREATE TEMP TABLE helpdesk_search_backfill AS
    SELECT id, b, ROW_NUMBER() OVER (PARTITION BY b ORDER BY id) - 1 AS n
      FROM (SELECT id, (unixepoch(updated_at) * 1000000 + CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(substr(updated_at, 21, length(updated_at) - 21) || '00000', 1, 6) AS INTEGER) ELSE 0 END) * 2048 AS b FROM helpdesk_tickets);
INSERT INTO helpdesk_search_keys (key, ticket_id) SELECT b + n, id FROM helpdesk_search_backfill WHERE n < 2048;
INSERT INTO helpdesk_search_keys (key, ticket_id)
    SELECT (SELECT COALESCE(MAX(key), 0) FROM helpdesk_search_keys) + ROW_NUMBER() OVER (ORDER BY b, n), id
      FROM helpdesk_search_backfill WHERE n >= 2048;
DROP TABLE helpdesk_search_backfill;
INSERT INTO helpdesk_search_fts (rowid, words, keys)
    SELECT k.key,
           t.subject || ' ' || COALESCE((SELECT group_concat(m.body, ' ') FROM helpdesk_messages m WHERE m.ticket_id = t.id), ''),
           'o' || hex(t.org_id) || ' s' || hex(t.state) || ' c' || hex(t.category) || ' p' || hex(t.priority)
            || ' q' || hex(t.queue) || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' a' || hex(t.assignee_id) END
      FROM helpdesk_search_keys k JOIN helpdesk_tickets t ON t.id = k.ticket_id
     ORDER BY k.key;
