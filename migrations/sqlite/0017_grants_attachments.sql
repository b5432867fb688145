-- The attachments a call requires (its rules' `required_attachments`, by code), uploaded by the company to its draft
-- before the opening so that the click day carries only the small submit. One file per code and application; the
-- bytes are a kernel file (ADR 0009), attached at upload. The draft's content lists them too (code, name, SHA-256),
-- so that the submission's fingerprint covers them without another read in the sequencer's batch.
CREATE TABLE grant_application_files (
    application_id BLOB NOT NULL REFERENCES grant_applications(id),
    code TEXT NOT NULL,
    file_id BLOB NOT NULL UNIQUE REFERENCES files(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (application_id, code)
);
