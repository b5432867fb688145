-- Funding calls of an organisation and their FAQ. A call's rules (grant rule, expense categories, eligibility,
-- required attachments, scoring grid) are one JSON document: they are read whole and never queried inside.
-- The call's row is also the click day's point of order (ADR 0008): `next_protocol` and `committed_cents` change only
-- under its lock, and the committed money can never pass the budget.
CREATE TABLE grant_calls (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('sportello', 'graduatoria')),
    budget_cents BIGINT NOT NULL CHECK (budget_cents > 0),
    committed_cents BIGINT NOT NULL DEFAULT 0,
    rules TEXT NOT NULL,
    de_minimis BOOLEAN NOT NULL,
    opens_at TIMESTAMPTZ NOT NULL,
    closes_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    next_protocol BIGINT NOT NULL DEFAULT 1,
    created_by UUID NOT NULL REFERENCES accounts(id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (committed_cents >= 0 AND committed_cents <= budget_cents),
    CHECK (closes_at > opens_at)
);
CREATE INDEX grant_calls_org ON grant_calls(org_id, opens_at DESC);
CREATE INDEX grant_calls_published ON grant_calls(published_at, opens_at DESC);

CREATE TABLE grant_call_faqs (
    id UUID PRIMARY KEY,
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX grant_call_faqs_call ON grant_call_faqs(call_id, created_at);
