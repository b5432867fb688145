//! The knowledge base's queries. Every read takes the organisations the caller may see (its own and the operator);
//! every write takes the article's organisation. Full-text search is written once per engine: FTS5 with prefix
//! queries on SQLite, the Italian `tsvector` with `to_tsquery` on PostgreSQL.

use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::ids::{AccountId, OrgId};
use time::OffsetDateTime;

use super::model::{ArticleId, ArticleState, Combine, Content, Terms};

/// The marks around the matched words in a snippet (control characters: never in stored text as typed).
pub const MARK_START: char = '\u{2}';
pub const MARK_END: char = '\u{3}';

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ArticleRow {
    pub id: ArticleId,
    pub org_id: OrgId,
    pub title: String,
    pub body: String,
    pub category: String,
    pub tags: String,
    pub state: String,
    pub author_id: Option<AccountId>,
    pub author_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
}

/// The article columns and the author's name, then the rest of the statement (a literal, so the SQL stays static).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.org_id, a.title, a.body, a.category, a.tags, a.state, a.author_id,
                ac.display_name AS author_name, a.created_at, a.updated_at, a.published_at
             FROM kb_articles a LEFT JOIN accounts ac ON ac.id = a.author_id ",
            $rest
        )
    };
}

/// A search result.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HitRow {
    pub id: ArticleId,
    pub org_id: OrgId,
    pub title: String,
    pub category: String,
    pub tags: String,
    pub updated_at: OffsetDateTime,
    /// A fragment of the body with the matched words between [`MARK_START`] and [`MARK_END`].
    pub snippet: String,
    /// Higher is better.
    pub score: f64,
}

pub async fn insert(tx: &mut Tx, id: ArticleId, org: OrgId, c: &Content, author: AccountId, now: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c_| {
        sqlx::query(
            "INSERT INTO kb_articles (id, org_id, title, body, category, tags, state, author_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, $8)",
        )
        .bind(id).bind(org).bind(&c.title).bind(&c.body).bind(c.category.as_str()).bind(&c.tags).bind(author).bind(now)
        .execute(c_)
        .await?;
    });
    Ok(())
}

/// An article of `org` (whatever its state), for its authors.
pub async fn get_in(db: &Db, org: OrgId, id: ArticleId) -> DbResult<Option<ArticleRow>> {
    let sql = select!("WHERE a.id = $1 AND a.org_id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(org).fetch_optional(p).await?))
}

/// The same, inside a transaction, locking nothing more than the engine does for an update.
pub async fn get_in_tx(tx: &mut Tx, org: OrgId, id: ArticleId) -> DbResult<Option<ArticleRow>> {
    let sql = select!("WHERE a.id = $1 AND a.org_id = $2");
    Ok(db_run!(tx tx, |c| sqlx::query_as(sql).bind(id).bind(org).fetch_optional(c).await?))
}

/// A published article of `org` or of the operator.
pub async fn get_published(db: &Db, org: OrgId, operator: Option<OrgId>, id: ArticleId) -> DbResult<Option<ArticleRow>> {
    let sql = select!("WHERE a.id = $1 AND a.state = 'published' AND (a.org_id = $2 OR a.org_id = $3)");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(id).bind(org).bind(operator).fetch_optional(p).await?))
}

/// Articles of `org` (drafts too when `drafts`) and the operator's published ones, newest change first.
pub async fn list(
    db: &Db,
    org: OrgId,
    operator: Option<OrgId>,
    drafts: bool,
    category: Option<&str>,
    limit: i64,
) -> DbResult<Vec<ArticleRow>> {
    let sql = select!("WHERE ((a.org_id = $1 AND (a.state = 'published' OR $2)) OR (a.org_id = $3 AND a.state = 'published'))
           AND ($4 IS NULL OR a.category = $4)
         ORDER BY a.updated_at DESC, a.id DESC LIMIT $5");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(org).bind(drafts).bind(operator).bind(category).bind(limit).fetch_all(p).await?))
}

/// Only `org`'s own articles, drafts included (the authors' list).
pub async fn list_own(db: &Db, org: OrgId, limit: i64) -> DbResult<Vec<ArticleRow>> {
    let sql = select!("WHERE a.org_id = $1 ORDER BY a.updated_at DESC, a.id DESC LIMIT $2");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(org).bind(limit).fetch_all(p).await?))
}

pub async fn update_content(tx: &mut Tx, org: OrgId, id: ArticleId, c: &Content, now: OffsetDateTime) -> DbResult<u64> {
    Ok(db_run!(tx tx, |x| sqlx::query(
        "UPDATE kb_articles SET title = $1, body = $2, category = $3, tags = $4, updated_at = $5 WHERE id = $6 AND org_id = $7"
    )
    .bind(&c.title).bind(&c.body).bind(c.category.as_str()).bind(&c.tags).bind(now).bind(id).bind(org)
    .execute(x).await?.rows_affected()))
}

pub async fn set_state(tx: &mut Tx, org: OrgId, id: ArticleId, state: ArticleState, now: OffsetDateTime) -> DbResult<u64> {
    let published = (state == ArticleState::Published).then_some(now);
    Ok(db_run!(tx tx, |x| sqlx::query(
        "UPDATE kb_articles SET state = $1, published_at = $2, updated_at = $3 WHERE id = $4 AND org_id = $5"
    )
    .bind(state.as_str()).bind(published).bind(now).bind(id).bind(org)
    .execute(x).await?.rows_affected()))
}

pub async fn delete(tx: &mut Tx, org: OrgId, id: ArticleId) -> DbResult<u64> {
    db_run!(tx tx, |x| {
        sqlx::query("DELETE FROM kb_feedback WHERE article_id = $1 AND org_id = $2").bind(id).bind(org).execute(&mut *x).await?;
    });
    Ok(db_run!(tx tx, |x| sqlx::query("DELETE FROM kb_articles WHERE id = $1 AND org_id = $2")
        .bind(id).bind(org).execute(x).await?.rows_affected()))
}

/// Published articles of `org` and of the operator matching `terms`, best first. Empty terms match nothing.
pub async fn search(db: &Db, org: OrgId, operator: Option<OrgId>, terms: &Terms, how: Combine, limit: i64) -> DbResult<Vec<HitRow>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match db {
        Db::Sqlite(p) => {
            // bm25 is lower for better matches; the title weighs ten times the body, the tags four times.
            sqlx::query_as(
                "SELECT a.id, a.org_id, a.title, a.category, a.tags, a.updated_at,
                        snippet(kb_fts, 1, char(2), char(3), '…', 20) AS snippet,
                        -bm25(kb_fts, 10.0, 1.0, 4.0) AS score
                 FROM kb_fts JOIN kb_articles a ON a.seq = kb_fts.rowid
                 WHERE kb_fts MATCH $1 AND a.state = 'published' AND (a.org_id = $2 OR a.org_id = $3)
                 ORDER BY score DESC, a.updated_at DESC LIMIT $4",
            )
            .bind(terms.fts5(how)).bind(org).bind(operator).bind(limit)
            .fetch_all(p)
            .await?
        }
        Db::Postgres(p) => {
            let opts = format!("StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"");
            sqlx::query_as(
                "SELECT a.id, a.org_id, a.title, a.category, a.tags, a.updated_at,
                        ts_headline('italian'::regconfig, a.body, q, $4) AS snippet,
                        ts_rank(a.search, q)::float8 AS score
                 FROM kb_articles a, to_tsquery('italian'::regconfig, $1) q
                 WHERE a.search @@ q AND a.state = 'published' AND (a.org_id = $2 OR a.org_id = $3)
                 ORDER BY score DESC, a.updated_at DESC LIMIT $5",
            )
            .bind(terms.tsquery(how)).bind(org).bind(operator).bind(opts).bind(limit)
            .fetch_all(p)
            .await?
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Feedback

pub async fn upsert_feedback(
    tx: &mut Tx,
    article_org: OrgId,
    article: ArticleId,
    account: AccountId,
    helpful: bool,
    comment: &str,
    now: OffsetDateTime,
) -> DbResult<()> {
    db_run!(tx tx, |x| {
        sqlx::query(
            "INSERT INTO kb_feedback (article_id, account_id, org_id, helpful, comment, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (article_id, account_id) DO UPDATE SET helpful = excluded.helpful, comment = excluded.comment,
                 updated_at = excluded.updated_at",
        )
        .bind(article).bind(account).bind(article_org).bind(helpful).bind(comment).bind(now)
        .execute(x)
        .await?;
    });
    Ok(())
}

/// The caller's own answer: (helpful, comment).
pub async fn my_feedback(db: &Db, article: ArticleId, account: AccountId) -> DbResult<Option<(bool, String)>> {
    Ok(db_run!(db, |p| sqlx::query_as("SELECT helpful, comment FROM kb_feedback WHERE article_id = $1 AND account_id = $2")
        .bind(article).bind(account).fetch_optional(p).await?))
}

/// (yes, no) for each article of `org` among `ids`.
pub async fn feedback_counts(db: &Db, org: OrgId) -> DbResult<Vec<(ArticleId, i64, i64)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT article_id, SUM(CASE WHEN helpful THEN 1 ELSE 0 END), SUM(CASE WHEN helpful THEN 0 ELSE 1 END)
         FROM kb_feedback WHERE org_id = $1 GROUP BY article_id"
    ).bind(org).fetch_all(p).await?))
}

/// The latest comments on an article of `org`: (helpful, comment, when).
pub async fn comments(db: &Db, org: OrgId, article: ArticleId, limit: i64) -> DbResult<Vec<(bool, String, OffsetDateTime)>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT helpful, comment, updated_at FROM kb_feedback WHERE org_id = $1 AND article_id = $2 AND comment <> ''
         ORDER BY updated_at DESC LIMIT $3"
    ).bind(org).bind(article).bind(limit).fetch_all(p).await?))
}
