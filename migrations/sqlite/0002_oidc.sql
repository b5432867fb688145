-- OpenID Connect sign-in: the providers (an organisation's, or the public side's when org_id is NULL), the
-- provider identities linked to accounts, and the logins in flight (single use, ten minutes).
CREATE TABLE oidc_providers (
    id BLOB PRIMARY KEY,
    org_id BLOB REFERENCES organisations(id),
    display_name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    scopes TEXT NOT NULL,
    tax_code_claim TEXT NOT NULL DEFAULT 'fiscal_number',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX oidc_providers_org ON oidc_providers(org_id);

CREATE TABLE oidc_identities (
    provider_id BLOB NOT NULL REFERENCES oidc_providers(id),
    subject TEXT NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX oidc_identities_account ON oidc_identities(account_id);

CREATE TABLE oidc_logins (
    state TEXT PRIMARY KEY,
    provider_id BLOB NOT NULL REFERENCES oidc_providers(id),
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX oidc_logins_created ON oidc_logins(created_at);
