-- The kernel's tables. Integers are INTEGER so that both engines decode them as i64.
CREATE TABLE organisations (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    ipa_code TEXT NOT NULL UNIQUE,
    tax_code TEXT NOT NULL UNIQUE,
    pec TEXT,
    parent_id BLOB REFERENCES organisations(id),
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX organisations_parent ON organisations(parent_id);

CREATE TABLE accounts (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    tax_code TEXT UNIQUE,
    locale TEXT,
    password_hash TEXT,
    is_public INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_enabled INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE memberships (
    org_id BLOB NOT NULL REFERENCES organisations(id),
    account_id BLOB NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, account_id, role)
);
CREATE INDEX memberships_account ON memberships(account_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    current_org_id BLOB REFERENCES organisations(id),
    mfa_pending INTEGER NOT NULL DEFAULT 0,
    locale TEXT,
    ip TEXT,
    user_agent TEXT,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);

CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    locked_until TEXT
);

CREATE TABLE password_resets (
    id BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

CREATE TABLE services (
    key TEXT PRIMARY KEY,
    available INTEGER NOT NULL DEFAULT 1,
    position INTEGER NOT NULL
);
INSERT INTO services (key, available, position) VALUES
    ('remote_access', 1, 1), ('workstations', 1, 2), ('meetings', 1, 3), ('helpdesk', 1, 4),
    ('learning', 1, 5), ('consultations', 1, 6), ('grants', 1, 7);

CREATE TABLE subscriptions (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    service_key TEXT NOT NULL REFERENCES services(key),
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, service_key)
);

CREATE TABLE subscription_quotas (
    subscription_id BLOB NOT NULL REFERENCES subscriptions(id),
    quota_key TEXT NOT NULL,
    limit_value INTEGER,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subscription_id, quota_key)
);

CREATE TABLE onboarding_requests (
    id BLOB PRIMARY KEY,
    org_name TEXT NOT NULL,
    ipa_code TEXT NOT NULL,
    tax_code TEXT NOT NULL,
    pec TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    services TEXT NOT NULL,
    state TEXT NOT NULL,
    review_note TEXT,
    reviewed_by BLOB REFERENCES accounts(id),
    reviewed_at TEXT,
    org_id BLOB REFERENCES organisations(id),
    created_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    at TEXT NOT NULL,
    actor_id BLOB,
    org_id BLOB,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log(org_id, seq);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE jobs (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    org_id BLOB,
    run_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    done_at TEXT,
    failed_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at) WHERE done_at IS NULL AND failed_at IS NULL;
