//! The knowledge base API under `/api/v1/orgs/{org}/helpdesk/kb/...`: articles (list, get, create, update, publish,
//! unpublish, delete), search, suggestions for the new-ticket form, and readers' feedback.

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath, ApiQuery};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::model::{ArticleId, ArticleInput, ArticleState, Category};
use super::service::{self, Article, ArticleSummary, Comment, FeedbackCounts, FeedbackInput, Hit, MyFeedback};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, search, suggest, get_article, create, update, publish, unpublish, delete, feedback),
    components(schemas(Article, ArticleSummary, Hit, ArticleInput, FeedbackInput, MyFeedback, FeedbackCounts, Comment,
        Category, ArticleState, ArticleId)),
    tags((name = "helpdesk-kb", description = "Help desk knowledge base: articles of an organisation and operator-wide \
        ones, full-text search, suggestions, feedback. Words are searched as prefixes on both engines; PostgreSQL also stems \
        them with its Italian configuration (\"connessioni\" finds \"connessione\"), SQLite's FTS5 does not (its only \
        stemmer is English) but folds case and accents. Anything but letters and digits separates words.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/helpdesk/kb/articles", get(list).post(create))
        .route("/api/v1/orgs/{org}/helpdesk/kb/search", get(search))
        .route("/api/v1/orgs/{org}/helpdesk/kb/suggest", get(suggest))
        .route("/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", get(get_article).put(update).delete(delete))
        .route("/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/publish", post(publish))
        .route("/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/unpublish", post(unpublish))
        .route("/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/feedback", put(feedback))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only this category.
    pub category: Option<String>,
    /// Include the organisation's drafts (its agents and admins only; ignored for others).
    #[serde(default)]
    pub drafts: bool,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// The words to look for; anything but letters and digits separates words. No word: no result.
    #[serde(default)]
    pub q: String,
}

/// The articles a member may read: the organisation's published ones and the operator-wide ones, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/kb/articles", tag = "helpdesk-kb", operation_id = "kb_list",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ListQuery),
    responses((status = 200, body = Vec<ArticleSummary>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The organisation has no help desk", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ArticleSummary>>, ApiError> {
    let category = q.category.as_deref().filter(|c| !c.trim().is_empty()).map(|c| {
        Category::parse(c).ok_or_else(|| agilekit_kernel::FieldErrors::one("category", super::model::codes::UNKNOWN_CATEGORY))
    });
    let category = category.transpose()?;
    Ok(Json(service::list(&s.db, &u.principal, org, category, q.drafts).await?))
}

/// Full-text search over the published articles the caller may read, best first (at most 20), with a snippet.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/kb/search", tag = "helpdesk-kb", operation_id = "kb_search",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), SearchQuery),
    responses((status = 200, body = Vec<Hit>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn search(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<Hit>>, ApiError> {
    Ok(Json(service::search(&s.db, &u.principal, org, &q.q).await?))
}

/// The five best articles for a ticket subject being typed (any of its words, each as a prefix).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/kb/suggest", tag = "helpdesk-kb", operation_id = "kb_suggest",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), SearchQuery),
    responses((status = 200, body = Vec<Hit>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn suggest(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<Hit>>, ApiError> {
    Ok(Json(service::suggest(&s.db, &u.principal, org, &q.q).await?))
}

/// One article: a published one of the organisation or of the operator; drafts too for the organisation's authors,
/// who also get the feedback counts and comments.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", tag = "helpdesk-kb", operation_id = "kb_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    responses((status = 200, body = Article),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_article(
    State(s): State<AppState>,
    ApiUser(u, _): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
) -> Result<Json<Article>, ApiError> {
    Ok(Json(service::get(&s.db, &u.principal, org, id).await?))
}

/// Writes a new draft (the organisation's agents and admins; the operator's write operator-wide articles).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/kb/articles", tag = "helpdesk-kb", operation_id = "kb_create",
    params(("org" = uuid::Uuid, Path, description = "Organisation id")),
    request_body = ArticleInput,
    responses((status = 201, body = Article),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`title`: `required`, `too-short`, `too-long`; `body`: `required`, `too-long`; \
            `category`: `required`, `kb-unknown-category`; `tags`: `kb-bad-tag`, `kb-too-many-tags`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn create(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath(org): ApiPath<OrgId>,
    ApiJson(input): ApiJson<ArticleInput>,
) -> Result<Response, ApiError> {
    let a = service::create(&s.db, &u.principal, &u.actor(c.ip.clone()), org, &input).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

/// Changes an article's title, body, category and tags (its state stays).
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", tag = "helpdesk-kb", operation_id = "kb_update",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    request_body = ArticleInput,
    responses((status = 200, body = Article),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn update(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
    ApiJson(input): ApiJson<ArticleInput>,
) -> Result<Json<Article>, ApiError> {
    Ok(Json(service::update(&s.db, &u.principal, &u.actor(c.ip.clone()), org, id, &input).await?))
}

/// Publishes an article: readers find it from now on.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/publish", tag = "helpdesk-kb", operation_id = "kb_publish",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    responses((status = 200, body = Article),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn publish(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
) -> Result<Json<Article>, ApiError> {
    Ok(Json(service::set_state(&s.db, &u.principal, &u.actor(c.ip.clone()), org, id, ArticleState::Published).await?))
}

/// Withdraws an article to draft.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/unpublish", tag = "helpdesk-kb", operation_id = "kb_unpublish",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    responses((status = 200, body = Article),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn unpublish(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
) -> Result<Json<Article>, ApiError> {
    Ok(Json(service::set_state(&s.db, &u.principal, &u.actor(c.ip.clone()), org, id, ArticleState::Draft).await?))
}

/// Deletes an article and its feedback.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}", tag = "helpdesk-kb", operation_id = "kb_delete",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn delete(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
) -> Result<Response, ApiError> {
    service::delete(&s.db, &u.principal, &u.actor(c.ip.clone()), org, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// "Was this helpful?": the caller's answer about a published article, replacing any earlier one.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/kb/articles/{article}/feedback", tag = "helpdesk-kb", operation_id = "kb_feedback",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("article" = uuid::Uuid, Path, description = "Article id")),
    request_body = FeedbackInput,
    responses((status = 200, body = MyFeedback),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`helpful`: `required`; `comment`: `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn feedback(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, ArticleId)>,
    ApiJson(input): ApiJson<FeedbackInput>,
) -> Result<Json<MyFeedback>, ApiError> {
    Ok(Json(service::feedback(&s.db, &u.principal, &u.actor(c.ip.clone()), org, id, &input).await?))
}
