-- The kernel's tables. Integers are BIGINT so that both engines decode them as i64.
CREATE TABLE organisations (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    ipa_code TEXT NOT NULL UNIQUE,
    tax_code TEXT NOT NULL UNIQUE,
    pec TEXT,
    parent_id UUID REFERENCES organisations(id),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX organisations_parent ON organisations(parent_id);

CREATE TABLE accounts (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    tax_code TEXT UNIQUE,
    locale TEXT,
    password_hash TEXT,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret TEXT,
    totp_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    org_id UUID NOT NULL REFERENCES organisations(id),
    account_id UUID NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, account_id, role)
);
CREATE INDEX memberships_account ON memberships(account_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    account_id UUID NOT NULL REFERENCES accounts(id),
    current_org_id UUID REFERENCES organisations(id),
    mfa_pending BOOLEAN NOT NULL DEFAULT FALSE,
    locale TEXT,
    ip TEXT,
    user_agent TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);

CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);

CREATE TABLE password_resets (
    id UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);

CREATE TABLE services (
    key TEXT PRIMARY KEY,
    available BOOLEAN NOT NULL DEFAULT TRUE,
    position BIGINT NOT NULL
);
INSERT INTO services (key, available, position) VALUES
    ('remote_access', TRUE, 1), ('workstations', TRUE, 2), ('meetings', TRUE, 3), ('helpdesk', TRUE, 4),
    ('learning', TRUE, 5), ('consultations', TRUE, 6), ('grants', TRUE, 7);

CREATE TABLE subscriptions (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    service_key TEXT NOT NULL REFERENCES services(key),
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, service_key)
);

CREATE TABLE subscription_quotas (
    subscription_id UUID NOT NULL REFERENCES subscriptions(id),
    quota_key TEXT NOT NULL,
    limit_value BIGINT,
    used BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subscription_id, quota_key)
);

CREATE TABLE onboarding_requests (
    id UUID PRIMARY KEY,
    org_name TEXT NOT NULL,
    ipa_code TEXT NOT NULL,
    tax_code TEXT NOT NULL,
    pec TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    services TEXT NOT NULL,
    state TEXT NOT NULL,
    review_note TEXT,
    reviewed_by UUID REFERENCES accounts(id),
    reviewed_at TIMESTAMPTZ,
    org_id UUID REFERENCES organisations(id),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    actor_id UUID,
    org_id UUID,
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
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    org_id UUID,
    run_at TIMESTAMPTZ NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    done_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at) WHERE done_at IS NULL AND failed_at IS NULL;
