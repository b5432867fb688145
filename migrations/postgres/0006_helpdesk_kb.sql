-- Help desk knowledge base: articles of an organisation (the operator's are read by every organisation), readers'
-- feedback, and the full-text index: a generated tsvector with the Italian configuration (stemming), the title
-- weighted A, the tags B and the body C, under a GIN index.

CREATE TABLE kb_articles (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    author_id UUID REFERENCES accounts(id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('italian'::regconfig, title), 'A')
        || setweight(to_tsvector('italian'::regconfig, tags), 'B')
        || setweight(to_tsvector('italian'::regconfig, body), 'C')
    ) STORED
);
CREATE INDEX kb_articles_org ON kb_articles (org_id, state, updated_at);
CREATE INDEX kb_articles_search ON kb_articles USING GIN (search);

-- One answer per reader and article, changeable.
CREATE TABLE kb_feedback (
    article_id UUID NOT NULL REFERENCES kb_articles(id) ON DELETE CASCADE,
    account_id UUID NOT NULL REFERENCES accounts(id),
    org_id UUID NOT NULL REFERENCES organisations(id),
    helpful BOOLEAN NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article_id, account_id)
);
