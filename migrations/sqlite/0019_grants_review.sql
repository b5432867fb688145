-- The review of an application that holds money (issue 4 point 5): formal check, integration, grant decision, expense
-- report, approval. One row per application under review (created by its first step; no row: the check is due), with
-- its stage (see `review::model`), and the history of every step, oldest first.
CREATE TABLE grant_reviews (
    application_id BLOB PRIMARY KEY REFERENCES grant_applications(id),
    call_id BLOB NOT NULL REFERENCES grant_calls(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),
    company_id BLOB NOT NULL REFERENCES companies(id),
    stage TEXT NOT NULL CHECK (stage IN ('check', 'integration', 'admissible', 'inadmissible', 'granted', 'reported',
                                         'corrections', 'approved', 'rejected')),
    -- The pending request (integration or corrections): its message and deadline (a date, YYYY-MM-DD).
    request TEXT,
    deadline TEXT,
    granted_cents INTEGER CHECK (granted_cents > 0),
    act_number TEXT,
    act_date TEXT,
    decided_at TEXT,
    -- The expense report (JSON lines, with each line's eligible amount once approved).
    report TEXT,
    reported_at TEXT,
    approved_cents INTEGER,
    to_pay_cents INTEGER,
    updated_at TEXT NOT NULL
);
CREATE INDEX grant_reviews_call ON grant_reviews(call_id, stage);

CREATE TABLE grant_review_events (
    id BLOB PRIMARY KEY,
    application_id BLOB NOT NULL REFERENCES grant_applications(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),
    at TEXT NOT NULL,
    account_id BLOB REFERENCES accounts(id),
    party TEXT NOT NULL CHECK (party IN ('staff', 'company')),
    action TEXT NOT NULL,
    stage TEXT NOT NULL,
    -- What the step said (message, deadline, reasons, amounts, the report): JSON.
    detail TEXT NOT NULL
);
CREATE INDEX grant_review_events_application ON grant_review_events(application_id, at);

-- Files the company sends with an integration or an expense report (the kernel's file store holds the bytes), with
-- the stage they were sent at.
CREATE TABLE grant_review_files (
    file_id BLOB PRIMARY KEY REFERENCES files(id),
    application_id BLOB NOT NULL REFERENCES grant_applications(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),
    stage TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX grant_review_files_application ON grant_review_files(application_id, created_at);
