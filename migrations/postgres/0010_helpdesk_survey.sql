-- Help desk satisfaction survey and reports. One answer per ticket (its requester's): a rating 1–5 and an optional
-- comment, changeable while the ticket stays resolved; a ticket reopened and resolved again is asked again and the
-- latest answer replaces the earlier one.
CREATE TABLE helpdesk_surveys (
    ticket_id UUID PRIMARY KEY REFERENCES helpdesk_tickets(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    requester_id UUID NOT NULL REFERENCES accounts(id),
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT NOT NULL DEFAULT '',
    answered_at TIMESTAMPTZ NOT NULL
);
-- Satisfaction reports: the organisation's answers in a period.
CREATE INDEX helpdesk_surveys_answered ON helpdesk_surveys(org_id, answered_at, rating);

-- When a ticket was closed (the volume report counts closures per day). Set by the trigger below, so that every
-- path that closes a ticket (a state change, a bulk action, a sweeper) records it without knowing about reports.
ALTER TABLE helpdesk_tickets ADD COLUMN closed_at TIMESTAMPTZ;
UPDATE helpdesk_tickets SET closed_at = updated_at WHERE state = 'closed';
CREATE FUNCTION helpdesk_tickets_closed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'closed' AND OLD.state <> 'closed' AND NEW.closed_at IS NULL THEN
        NEW.closed_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER helpdesk_tickets_closed_at BEFORE UPDATE OF state ON helpdesk_tickets
    FOR EACH ROW EXECUTE FUNCTION helpdesk_tickets_closed_at();

-- Reports over a period read ranges of these (organisation, instant) keys; the category rides along so the volume
-- counts are answered from the index alone.
CREATE INDEX helpdesk_tickets_created ON helpdesk_tickets(org_id, created_at, category);
CREATE INDEX helpdesk_tickets_resolved ON helpdesk_tickets(org_id, resolved_at, category) WHERE resolved_at IS NOT NULL;
CREATE INDEX helpdesk_tickets_closed ON helpdesk_tickets(org_id, closed_at, category) WHERE closed_at IS NOT NULL;
-- The backlog: active tickets by state and age, whatever the number of closed ones.
CREATE INDEX helpdesk_tickets_active ON helpdesk_tickets(org_id, state, created_at) WHERE state IN ('new', 'open', 'pending');
-- The operator's second-level report: the escalated tickets of every organisation, and the answers of a period.
CREATE INDEX helpdesk_tickets_escalated_created ON helpdesk_tickets(created_at, category) WHERE queue = 'operator';
CREATE INDEX helpdesk_tickets_escalated_resolved ON helpdesk_tickets(resolved_at, category) WHERE queue = 'operator' AND resolved_at IS NOT NULL;
CREATE INDEX helpdesk_tickets_escalated_closed ON helpdesk_tickets(closed_at, category) WHERE queue = 'operator' AND closed_at IS NOT NULL;
CREATE INDEX helpdesk_surveys_time ON helpdesk_surveys(answered_at);
