//! The knowledge base's rules: who reads (members of an organisation with an active help-desk subscription: its
//! published articles and the operator's), who writes (the organisation's agents and admins; the operator's write
//! the operator-wide articles), what is audited (every change of an article, every feedback), and search.
//! The operator runs the platform: its own organisation needs no help-desk subscription to publish.

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::catalogue::{self, Denied, Service};
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Db, Error, FieldErrors, Result, clock, tenancy};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::model::{self, ArticleId, ArticleInput, ArticleState, Category, Combine, Content, Terms};
use super::store::{self, ArticleRow, HitRow, MARK_END, MARK_START};

/// How many results a search page shows, and how many suggestions the new-ticket form gets.
pub const SEARCH_LIMIT: i64 = 20;
pub const SUGGEST_LIMIT: i64 = 5;
const LIST_LIMIT: i64 = 200;

/// What the caller may do with the knowledge base of one organisation.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub org: OrgId,
    pub operator: Option<OrgId>,
    /// An agent or admin of `org`: writes its articles, sees drafts and feedback.
    pub writer: bool,
}

/// A member of `org` whose organisation has the help desk (or the operator's own members).
/// Someone with no membership learns nothing (404); a member without the service gets 403.
pub async fn access(db: &Db, p: &Principal, org: OrgId) -> Result<Access> {
    if !p.is_member(org) {
        return Err(Error::NotFound);
    }
    let operator = tenancy::operator(db).await?.map(|o| o.id);
    match catalogue::entitlement(db, p.id(), org, Service::Helpdesk).await? {
        Ok(_) => {}
        Err(Denied::NotSubscribed) if operator == Some(org) => {}
        Err(Denied::NotMember) => return Err(Error::NotFound),
        Err(_) => return Err(Error::Forbidden),
    }
    Ok(Access { org, operator, writer: p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin) })
}

async fn writer(db: &Db, p: &Principal, org: OrgId) -> Result<Access> {
    let a = access(db, p, org).await?;
    if a.writer { Ok(a) } else { Err(Error::Forbidden) }
}

// ---------------------------------------------------------------------------------------------------------------
// Views

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FeedbackCounts {
    pub helpful: i64,
    pub not_helpful: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MyFeedback {
    pub helpful: bool,
    pub comment: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Comment {
    pub helpful: bool,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// An article as its reader or author sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Article {
    pub id: ArticleId,
    pub org_id: OrgId,
    /// Written by the operator for every organisation.
    pub operator_wide: bool,
    pub title: String,
    /// The markdown source.
    pub body: String,
    /// The body rendered: no raw HTML, links only http, https and mailto.
    pub html: String,
    pub category: Category,
    pub tags: Vec<String>,
    pub state: ArticleState,
    pub author: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
    /// The readers' answers, for the article's authors only.
    pub feedback: Option<FeedbackCounts>,
    /// The readers' latest comments, for the article's authors only.
    pub comments: Option<Vec<Comment>>,
    /// The caller's own answer, if any.
    pub my_feedback: Option<MyFeedback>,
    /// Whether the caller may edit it.
    pub editable: bool,
}

/// An article in a list: no body.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleSummary {
    pub id: ArticleId,
    pub org_id: OrgId,
    pub operator_wide: bool,
    pub title: String,
    pub excerpt: String,
    pub category: Category,
    pub tags: Vec<String>,
    pub state: ArticleState,
    pub author: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// For the organisation's authors only.
    pub feedback: Option<FeedbackCounts>,
}

/// A search result, best first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Hit {
    pub id: ArticleId,
    pub org_id: OrgId,
    pub operator_wide: bool,
    pub title: String,
    pub category: Category,
    pub tags: Vec<String>,
    /// A fragment of the body around the matched words (plain text).
    pub snippet: String,
    /// The same, with the matched words between U+0002 and U+0003 (pages turn them into `<mark>`).
    #[serde(skip)]
    pub marked: String,
    /// The relevance (higher is better; comparable within one answer only).
    pub score: f64,
}

fn tags_of(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn category_of(s: &str) -> Category {
    Category::parse(s).unwrap_or(Category::Other)
}

fn state_of(s: &str) -> ArticleState {
    ArticleState::parse(s).unwrap_or(ArticleState::Draft)
}

fn summary(a: &Access, r: ArticleRow, counts: &[(ArticleId, i64, i64)]) -> ArticleSummary {
    let feedback = (a.writer && r.org_id == a.org).then(|| {
        let c = counts.iter().find(|c| c.0 == r.id);
        FeedbackCounts { helpful: c.map_or(0, |c| c.1), not_helpful: c.map_or(0, |c| c.2) }
    });
    ArticleSummary {
        id: r.id,
        org_id: r.org_id,
        operator_wide: Some(r.org_id) == a.operator,
        excerpt: model::excerpt(&r.body, 200),
        title: r.title,
        category: category_of(&r.category),
        tags: tags_of(&r.tags),
        state: state_of(&r.state),
        author: r.author_name,
        updated_at: r.updated_at,
        feedback,
    }
}

async fn view(db: &Db, a: &Access, me: AccountId, r: ArticleRow) -> Result<Article> {
    let own = r.org_id == a.org && a.writer;
    let (feedback, comments) = if own {
        let counts = store::feedback_counts(db, a.org).await?;
        let c = counts.iter().find(|c| c.0 == r.id);
        let comments = store::comments(db, a.org, r.id, 50)
            .await?
            .into_iter()
            .map(|(helpful, comment, at)| Comment { helpful, comment, at })
            .collect();
        (Some(FeedbackCounts { helpful: c.map_or(0, |c| c.1), not_helpful: c.map_or(0, |c| c.2) }), Some(comments))
    } else {
        (None, None)
    };
    let my_feedback = store::my_feedback(db, r.id, me).await?.map(|(helpful, comment)| MyFeedback { helpful, comment });
    Ok(Article {
        id: r.id,
        org_id: r.org_id,
        operator_wide: Some(r.org_id) == a.operator,
        html: model::render_markdown(&r.body),
        body: r.body,
        title: r.title,
        category: category_of(&r.category),
        tags: tags_of(&r.tags),
        state: state_of(&r.state),
        author: r.author_name,
        created_at: r.created_at,
        updated_at: r.updated_at,
        published_at: r.published_at,
        feedback,
        comments,
        my_feedback,
        editable: own,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/// The articles a member of `org` may read (its published ones and the operator's), and its drafts for its
/// authors when `drafts` is asked.
pub async fn list(db: &Db, p: &Principal, org: OrgId, category: Option<Category>, drafts: bool) -> Result<Vec<ArticleSummary>> {
    let a = access(db, p, org).await?;
    let rows = store::list(db, org, a.operator, drafts && a.writer, category.map(Category::as_str), LIST_LIMIT).await?;
    let counts = if a.writer { store::feedback_counts(db, org).await? } else { Vec::new() };
    Ok(rows.into_iter().map(|r| summary(&a, r, &counts)).collect())
}

/// The authors' list: the organisation's own articles, drafts included, with the feedback counts.
pub async fn list_own(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<ArticleSummary>> {
    let a = writer(db, p, org).await?;
    let rows = store::list_own(db, org, LIST_LIMIT).await?;
    let counts = store::feedback_counts(db, org).await?;
    Ok(rows.into_iter().map(|r| summary(&a, r, &counts)).collect())
}

/// One article: a published one of `org` or of the operator, or any of `org`'s for its authors.
pub async fn get(db: &Db, p: &Principal, org: OrgId, id: ArticleId) -> Result<Article> {
    let a = access(db, p, org).await?;
    let row = match store::get_published(db, org, a.operator, id).await? {
        Some(r) => Some(r),
        None if a.writer => store::get_in(db, org, id).await?,
        None => None,
    };
    let row = row.ok_or(Error::NotFound)?;
    view(db, &a, p.id(), row).await
}

fn hit(a: &Access, h: HitRow) -> Hit {
    let snippet: String = h.snippet.chars().filter(|c| *c != MARK_START && *c != MARK_END).collect();
    Hit {
        id: h.id,
        org_id: h.org_id,
        operator_wide: Some(h.org_id) == a.operator,
        title: h.title,
        category: category_of(&h.category),
        tags: tags_of(&h.tags),
        snippet,
        marked: h.snippet,
        score: h.score,
    }
}

/// Full-text search over what the caller may read, best first. A query without any word finds nothing.
pub async fn search(db: &Db, p: &Principal, org: OrgId, q: &str) -> Result<Vec<Hit>> {
    let a = access(db, p, org).await?;
    let rows = store::search(db, org, a.operator, &Terms::parse(q), Combine::All, SEARCH_LIMIT).await?;
    Ok(rows.into_iter().map(|h| hit(&a, h)).collect())
}

/// The best five articles for a ticket subject being typed: any of its words, as prefixes.
pub async fn suggest(db: &Db, p: &Principal, org: OrgId, q: &str) -> Result<Vec<Hit>> {
    let a = access(db, p, org).await?;
    let rows = store::search(db, org, a.operator, &Terms::parse(q), Combine::Any, SUGGEST_LIMIT).await?;
    Ok(rows.into_iter().map(|h| hit(&a, h)).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

fn audit_json(r: &ArticleRow) -> serde_json::Value {
    json!({"title": r.title, "category": r.category, "tags": r.tags, "state": r.state, "body_chars": r.body.chars().count()})
}

/// A new draft of `org` (its agents and admins).
pub async fn create(db: &Db, p: &Principal, actor: &Actor, org: OrgId, input: &ArticleInput) -> Result<Article> {
    let a = writer(db, p, org).await?;
    let c = Content::parse(input).map_err(Error::Invalid)?;
    let id = ArticleId::new();
    let now = clock::now();
    let mut tx = db.begin().await?;
    store::insert(&mut tx, id, org, &c, p.id(), now).await?;
    let row = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.kb.create", entity: "kb_article", entity_id: id.to_string(),
        before: None, after: Some(audit_json(&row)),
    }).await?;
    tx.commit().await?;
    view(db, &a, p.id(), row).await
}

pub async fn update(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: ArticleId, input: &ArticleInput) -> Result<Article> {
    let a = writer(db, p, org).await?;
    let c = Content::parse(input).map_err(Error::Invalid)?;
    let mut tx = db.begin().await?;
    let before = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    store::update_content(&mut tx, org, id, &c, clock::now()).await?;
    let after = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.kb.update", entity: "kb_article", entity_id: id.to_string(),
        before: Some(audit_json(&before)), after: Some(audit_json(&after)),
    }).await?;
    tx.commit().await?;
    view(db, &a, p.id(), after).await
}

/// Publishes (readers see it) or withdraws an article to draft.
pub async fn set_state(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: ArticleId, state: ArticleState) -> Result<Article> {
    let a = writer(db, p, org).await?;
    let mut tx = db.begin().await?;
    let before = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if state_of(&before.state) == state {
        drop(tx);
        return view(db, &a, p.id(), before).await;
    }
    store::set_state(&mut tx, org, id, state, clock::now()).await?;
    let after = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    let action = if state == ArticleState::Published { "helpdesk.kb.publish" } else { "helpdesk.kb.unpublish" };
    audit::record(&mut tx, actor, Change {
        org: Some(org), action, entity: "kb_article", entity_id: id.to_string(),
        before: Some(audit_json(&before)), after: Some(audit_json(&after)),
    }).await?;
    tx.commit().await?;
    view(db, &a, p.id(), after).await
}

/// Deletes an article and its feedback.
pub async fn delete(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: ArticleId) -> Result<()> {
    writer(db, p, org).await?;
    let mut tx = db.begin().await?;
    let before = store::get_in_tx(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    store::delete(&mut tx, org, id).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org), action: "helpdesk.kb.delete", entity: "kb_article", entity_id: id.to_string(),
        before: Some(audit_json(&before)), after: None,
    }).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Feedback

/// "Was this helpful?": one answer per reader and article, changed by answering again.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct FeedbackInput {
    pub helpful: Option<bool>,
    #[serde(default)]
    pub comment: Option<String>,
}

pub async fn feedback(db: &Db, p: &Principal, actor: &Actor, org: OrgId, id: ArticleId, input: &FeedbackInput) -> Result<MyFeedback> {
    let a = access(db, p, org).await?;
    let mut errors = FieldErrors::new();
    if input.helpful.is_none() {
        errors.add("helpful", model::codes::REQUIRED);
    }
    let comment = match model::parse_comment(input.comment.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            errors.0.extend(e.0);
            String::new()
        }
    };
    errors.into_result()?;
    let helpful = input.helpful.unwrap_or(false);
    // Readers answer about what they can read: published articles only.
    let article = store::get_published(db, org, a.operator, id).await?.ok_or(Error::NotFound)?;
    let mut tx = db.begin().await?;
    store::upsert_feedback(&mut tx, article.org_id, id, p.id(), helpful, &comment, clock::now()).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(article.org_id), action: "helpdesk.kb.feedback", entity: "kb_article", entity_id: id.to_string(),
        before: None, after: Some(json!({"helpful": helpful, "comment_chars": comment.chars().count()})),
    }).await?;
    tx.commit().await?;
    Ok(MyFeedback { helpful, comment })
}
