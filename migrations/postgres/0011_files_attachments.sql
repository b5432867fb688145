-- Uploaded files (kernel, domain-free): the bytes live in the database, so several nodes need no shared disk.
-- A file is uploaded first (pending) and attached by its owner to something of a domain (`attached_at` set); a
-- pending file never attached is swept after a day.
CREATE TABLE files (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    owner_id UUID REFERENCES accounts(id),
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- Hex SHA-256 of the bytes.
    sha256 TEXT NOT NULL,
    data BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attached_at TIMESTAMPTZ
);
-- The sweep of pending files.
CREATE INDEX files_pending ON files(created_at) WHERE attached_at IS NULL;

-- The files of help-desk messages (at most 10 a message). Visibility follows the message: a note's are for agents.
CREATE TABLE helpdesk_attachments (
    file_id UUID PRIMARY KEY REFERENCES files(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    ticket_id UUID NOT NULL REFERENCES helpdesk_tickets(id),
    message_id UUID NOT NULL REFERENCES helpdesk_messages(id),
    position INTEGER NOT NULL
);
CREATE INDEX helpdesk_attachments_ticket ON helpdesk_attachments(org_id, ticket_id, message_id, position);
