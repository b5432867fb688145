-- A call's documents: the decree, forms, annexes, errata, uploaded by the call's administrators before or after its
-- publication. The bytes are a kernel file (ADR 0009), attached at upload; listed in order of upload. Public once the
-- call is published.
CREATE TABLE grant_call_documents (
    id UUID PRIMARY KEY,
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    title TEXT NOT NULL,
    file_id UUID NOT NULL UNIQUE REFERENCES files(id),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX grant_call_documents_call ON grant_call_documents (call_id, created_at);
