-- Help desk settings per organisation: the SLA policy (targets per priority, whole minutes, as JSON of the sla
-- module's PolicyInput), the business calendar (JSON of the calendar module's CalendarInput) and the warning
-- threshold (percent of a target). An organisation without a row has the defaults. A change applies to tickets
-- opened after it: open tickets keep the targets they were given.
CREATE TABLE helpdesk_settings (
    org_id BLOB PRIMARY KEY REFERENCES organisations(id),
    policy TEXT NOT NULL,
    calendar TEXT NOT NULL,
    warning_percent INTEGER NOT NULL,
    updated_by BLOB REFERENCES accounts(id),
    updated_at TEXT NOT NULL
);

-- When the SLA job warned that a clock is close to its target (once per clock; the breach itself is fr_breached_at
-- and rs_breached_at).
ALTER TABLE helpdesk_tickets ADD COLUMN fr_warned_at TEXT;
ALTER TABLE helpdesk_tickets ADD COLUMN rs_warned_at TEXT;

-- Canned responses: reply texts an organisation's agents insert in a reply, with placeholders such as
-- {{requester_name}} and {{ticket}}. The operator's are offered to every organisation's agents.
CREATE TABLE helpdesk_canned (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    author_id BLOB REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX helpdesk_canned_org ON helpdesk_canned (org_id, title);
