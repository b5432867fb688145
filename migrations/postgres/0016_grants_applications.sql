-- Applications of companies to calls: a draft saved as it is typed (problems are reported, never a reason to lose
-- it), then a submission that takes, at its commit, the call's next protocol number and an instant after the
-- previous one (ADR 0008). One application per company per call; protocol numbers unique within the call.
CREATE TABLE grant_applications (
    id UUID PRIMARY KEY,
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    company_id UUID NOT NULL REFERENCES companies(id),
    state TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'withdrawn')),
    -- The draft as typed (JSON); frozen at submission together with the company's data of that moment.
    content TEXT NOT NULL,
    -- The grant asked for, computed from the call's rule at the last save or at submission.
    requested_cents BIGINT NOT NULL DEFAULT 0,
    protocol BIGINT,
    submitted_at TIMESTAMPTZ,
    -- SHA-256 (hex) of the submitted document: the receipt's fingerprint.
    sha256 TEXT,
    idempotency_key TEXT,
    -- A sportello: 'admitted' (the money is held) or 'waiting' (overbooking list); NULL before submission.
    place TEXT CHECK (place IN ('admitted', 'waiting')),
    created_by UUID NOT NULL REFERENCES accounts(id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (call_id, company_id),
    UNIQUE (call_id, protocol)
);
CREATE INDEX grant_applications_company ON grant_applications(company_id, created_at);
CREATE INDEX grant_applications_place ON grant_applications(call_id, place, protocol);

-- The instant of the call's latest submission: the next one is stamped after it even if a node's clock lags.
ALTER TABLE grant_calls ADD COLUMN last_submitted_at TIMESTAMPTZ;
