-- Help desk: tickets per organisation, their messages (public replies and internal notes) and the per-organisation
-- counter that numbers them. The two SLA clocks of a ticket (first response, resolution) are stored as the sla
-- module's `Clock` parts: target and business time used up to the last change (seconds), state and since when,
-- and when the target was passed.
CREATE TABLE helpdesk_counters (
    org_id UUID PRIMARY KEY REFERENCES organisations(id),
    last_number BIGINT NOT NULL DEFAULT 0,
    -- The agent the last round-robin assignment went to: the next goes to the one after.
    last_assignee UUID REFERENCES accounts(id)
);

CREATE TABLE helpdesk_tickets (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    number BIGINT NOT NULL,
    requester_id UUID NOT NULL REFERENCES accounts(id),
    category TEXT NOT NULL,
    subject TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    assignee_id UUID REFERENCES accounts(id),
    -- 'org': the organisation's own queue; 'operator': escalated to the operator's second level.
    queue TEXT NOT NULL DEFAULT 'org',
    merged_into UUID REFERENCES helpdesk_tickets(id),
    -- Space-separated.
    tags TEXT NOT NULL DEFAULT '',
    fr_target_secs BIGINT NOT NULL,
    fr_used_secs BIGINT NOT NULL DEFAULT 0,
    fr_state TEXT NOT NULL,
    fr_since TIMESTAMPTZ NOT NULL,
    fr_breached_at TIMESTAMPTZ,
    rs_target_secs BIGINT NOT NULL,
    rs_used_secs BIGINT NOT NULL DEFAULT 0,
    rs_state TEXT NOT NULL,
    rs_since TIMESTAMPTZ NOT NULL,
    rs_breached_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    first_response_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    UNIQUE (org_id, number)
);
-- Queue pages by keyset: (org, state) then newest change first; and the same without a state filter.
CREATE INDEX helpdesk_tickets_queue ON helpdesk_tickets(org_id, state, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_org ON helpdesk_tickets(org_id, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_requester ON helpdesk_tickets(requester_id, updated_at DESC, id DESC);
CREATE INDEX helpdesk_tickets_escalated ON helpdesk_tickets(queue, updated_at DESC, id DESC);

CREATE TABLE helpdesk_messages (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    ticket_id UUID NOT NULL REFERENCES helpdesk_tickets(id),
    author_id UUID REFERENCES accounts(id),
    -- 'reply' (public) or 'note' (internal: never shown to the requester).
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    -- RFC 5322 Message-ID, for threading mail replies to their ticket.
    message_id TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX helpdesk_messages_ticket ON helpdesk_messages(ticket_id, created_at);

-- Agents who follow a ticket: mailed on its replies and state changes.
CREATE TABLE helpdesk_watchers (
    ticket_id UUID NOT NULL REFERENCES helpdesk_tickets(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    account_id UUID NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (ticket_id, account_id)
);
