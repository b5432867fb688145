-- Help desk full-text search over tickets, for agents: the subject and every message's body (public replies and
-- internal notes: only agents search) in one tsvector per ticket with the Italian configuration (stemming:
-- "stampanti" finds "stampante"), under a GIN index. Kept by triggers: the subject when the ticket is inserted (it
-- never changes), each message's body appended when the message is inserted (messages never change nor move).
-- Queue searches keep the keyset order (newest change first) and the other filters; the planner picks the queue
-- index for common words and the GIN index for rare ones.

ALTER TABLE helpdesk_tickets ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;

CREATE FUNCTION helpdesk_tickets_search_init() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('italian'::regconfig, NEW.subject);
    RETURN NEW;
END $$;
CREATE TRIGGER helpdesk_tickets_search_bi BEFORE INSERT ON helpdesk_tickets
    FOR EACH ROW EXECUTE FUNCTION helpdesk_tickets_search_init();

CREATE FUNCTION helpdesk_messages_search_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE helpdesk_tickets SET search = search || to_tsvector('italian'::regconfig, NEW.body)
     WHERE id = NEW.ticket_id;
    RETURN NULL;
END $$;
CREATE TRIGGER helpdesk_messages_search_ai AFTER INSERT ON helpdesk_messages
    FOR EACH ROW EXECUTE FUNCTION helpdesk_messages_search_add();

-- Backfill.
UPDATE helpdesk_tickets t SET search = to_tsvector('italian'::regconfig, t.subject)
    || COALESCE((SELECT to_tsvector('italian'::regconfig, string_agg(m.body, E'\n' ORDER BY m.created_at, m.id))
                 FROM helpdesk_messages m WHERE m.ticket_id = t.id), ''::tsvector);

CREATE INDEX helpdesk_tickets_search ON helpdesk_tickets USING GIN (search);
