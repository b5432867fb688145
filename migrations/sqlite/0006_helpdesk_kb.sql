-- Help desk knowledge base: articles of an organisation (the operator's are read by every organisation), readers'
-- feedback, and the full-text index. FTS5's stemmer is English-only, so Italian text is indexed with the unicode61
-- tokenizer (case and diacritics folded) and searched with prefix queries: "connession" finds "connessione".

CREATE TABLE kb_articles (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,     -- the FTS index's rowid (stable, unlike an implicit rowid)
    id BLOB NOT NULL UNIQUE,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('draft', 'published')),
    author_id BLOB REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX kb_articles_org ON kb_articles (org_id, state, updated_at);

CREATE VIRTUAL TABLE kb_fts USING fts5(
    title, body, tags,
    content = 'kb_articles', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER kb_articles_ai AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_fts (rowid, title, body, tags) VALUES (new.seq, new.title, new.body, new.tags);
END;
CREATE TRIGGER kb_articles_ad AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, title, body, tags) VALUES ('delete', old.seq, old.title, old.body, old.tags);
END;
CREATE TRIGGER kb_articles_au AFTER UPDATE OF title, body, tags ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, title, body, tags) VALUES ('delete', old.seq, old.title, old.body, old.tags);
    INSERT INTO kb_fts (rowid, title, body, tags) VALUES (new.seq, new.title, new.body, new.tags);
END;

-- One answer per reader and article, changeable.
CREATE TABLE kb_feedback (
    article_id BLOB NOT NULL REFERENCES kb_articles(id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    org_id BLOB NOT NULL REFERENCES organisations(id),   -- the article's organisation
    helpful INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (article_id, account_id)
);
