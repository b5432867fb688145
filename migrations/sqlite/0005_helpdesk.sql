-- Help desk: tickets per organisation, their messages (public replies and internal notes) and the per-organisation
-- counter that numbers them. The two SLA clocks of a ticket (first response, resolution) are stored as the sla
-- module's `Clock` parts: target and business time used up to the last change (seconds), state and since when,
-- and when the target was passed.
CREATE TABLE helpdesk_counters (
    org_id BLOB PRIMARY KEY REFERENCES organisations(id),
    last_number INTEGER NOT NULL DEFAULT 0,
    -- The agent the last round-robin assignment went to: the next goes to the one after.
    last_assignee BLOB REFERENCES accounts(id)
);

CREATE TABLE helpdesk_tickets (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    number INTEGER NOT NULL,
    requester_id BLOB NOT NULL REFERENCES accounts(id),
    category TEXT NOT NULL,
    subject TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    assignee_id BLOB REFERENCES accounts(id),
    -- 'org': the organisation's own queue; 'operator': escalated to the operator's second level.
    queue TEXT NOT NULL DEFAULT 'org',
    merged_into BLOB REFERENCES helpdesk_tickets(id),
    -- Space-separated.
    tags TEXT NOT NULL DEFAULT '',
    fr_target_secs INTEGER NOT NULL,
    fr_used_secs INTEGER NOT NULL DEFAULT 0,
    fr_state TEXT NOT NULL,
    fr_since TEXT NOT NULL,
    fr_breached_at TEXT,
    rs_target_secs INTEGER NOT NULL,
    rs_used_secs INTEGER NOT NULL DEFAULT 0,
    rs_state TEXT NOT NULL,
    rs_since TEXT NOT NULL,
    rs_breached_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    first_response_at TEXT,
    resolved_at TEXT,
    UNIQUE (org_id, number)
);
-- Queue pages by keyset: (org, state) then newest change first; and the same without a state filter.
CREATE INDEX helpdesk_tickets_queue ON helpdesk_tickets(org_id, state, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_org ON helpdesk_tickets(org_id, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_requester ON helpdesk_tickets(requester_id, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_escalated ON helpdesk_tickets(queue, updated_at DESC, id DESC);

CREATE TABLE helpdesk_messages (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    ticket_id BLOB NOT NULL REFERENCES helpdesk_tickets(id),
    author_id BLOB REFERENCES accounts(id),
    -- 'reply' (public) or 'note' (internal: never shown to the requester).
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    -- RFC 5322 Message-ID, for threading mail replies to their ticket.
    message_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX helpdesk_messages_ticket ON helpdesk_messages(ticket_id, created_at);

-- Agents who follow a ticket: mailed on its replies and state changes.
CREATE TABLE helpdesk_watchers (
    ticket_id BLOB NOT NULL REFERENCES helpdesk_tickets(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),
    account_id BLOB NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (ticket_id, account_id)
);
