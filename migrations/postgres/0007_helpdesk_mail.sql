-- Help desk mail: each organisation's inbound mailbox (an IMAP account polled by agilekit) and the token its mail
-- server delivers with (POST /api/v1/helpdesk/inbound/{org}); and the inbound messages handled without storing a
-- ticket message (an unknown sender answered once, a refused one), so that the same message is never handled twice.
-- A mailbox serves exactly one organisation: the ticket tag in subjects ("[HD#123]") is read in that organisation.
CREATE TABLE helpdesk_mailboxes (
    org_id UUID PRIMARY KEY REFERENCES organisations(id),
    -- Polled over IMAP only when enabled (the delivery token works either way).
    enabled BOOLEAN NOT NULL DEFAULT FALSE,
    host TEXT NOT NULL DEFAULT '',
    port BIGINT NOT NULL DEFAULT 993,
    -- 'none', 'tls' (implicit TLS) or 'starttls'.
    tls TEXT NOT NULL DEFAULT 'tls',
    username TEXT NOT NULL DEFAULT '',
    -- Needed in clear to log in; never returned by the API.
    password TEXT NOT NULL DEFAULT '',
    folder TEXT NOT NULL DEFAULT 'INBOX',
    -- The help desk's public address: the Reply-To of its outgoing mail, so that answers come back here.
    address TEXT NOT NULL DEFAULT '',
    -- SHA-256 (hex) of the delivery token; the token itself is shown once.
    delivery_token_hash TEXT,
    -- The node polling the mailbox now and until when: one poller per mailbox across nodes.
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    last_poll_at TIMESTAMPTZ,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE helpdesk_mail_log (
    org_id UUID NOT NULL REFERENCES organisations(id),
    -- RFC 5322 Message-ID with its angle brackets (or one derived from the message's hash when it has none).
    message_id TEXT NOT NULL,
    -- 'unknown-sender', 'refused', 'ignored'.
    outcome TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, message_id)
);
