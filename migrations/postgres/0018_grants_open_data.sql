-- Open data of funding calls (issue 4, point 6): a list a call's administrators publish (admitted, granted, ranked)
-- is kept as an immutable snapshot with its instant; the public reads the latest of each list. `rows` is the JSON
-- array of the published rows: company names, partite IVA, ATECO sectors, amounts; never personal data.
CREATE TABLE grant_open_data (
    id UUID PRIMARY KEY,
    call_id UUID NOT NULL REFERENCES grant_calls(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    list TEXT NOT NULL CHECK (list IN ('admitted', 'granted', 'ranked')),
    rows TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    published_by UUID NOT NULL REFERENCES accounts(id),
    published_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX grant_open_data_call ON grant_open_data(call_id, list, published_at DESC);
CREATE INDEX grant_open_data_recent ON grant_open_data(published_at DESC);
