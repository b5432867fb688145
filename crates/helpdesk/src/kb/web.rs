//! The knowledge base's pages: search and browse for members (`/helpdesk/kb`, in the current organisation), an
//! article with its "was this helpful?" form, a partial of suggestions for the new-ticket form, and the authors'
//! editor (`/orgs/{org}/helpdesk/kb`: the list with drafts and feedback counts, the new/edit form with a preview).
//! Everything works without JavaScript. Thin handlers over the service.

use agilekit_web::pages::{parse_id, see_other};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use agilekit_web::AppState;
use agilekit_web::auth::{CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::model::{ArticleId, ArticleInput, ArticleState, Category};
use super::service::{self, Article, ArticleSummary, FeedbackInput, Hit};
use super::store::{MARK_END, MARK_START};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/helpdesk/kb", get(search_page))
        .route("/helpdesk/kb/suggest", get(suggest_partial))
        .route("/helpdesk/kb/{article}", get(article_page))
        .route("/helpdesk/kb/{article}/feedback", post(feedback))
        .route("/orgs/{org}/helpdesk/kb", get(authors).post(create))
        .route("/orgs/{org}/helpdesk/kb/new", get(new_form))
        .route("/orgs/{org}/helpdesk/kb/{article}", get(edit).post(update))
        .route("/orgs/{org}/helpdesk/kb/{article}/publish", post(publish))
        .route("/orgs/{org}/helpdesk/kb/{article}/unpublish", post(unpublish))
        .route("/orgs/{org}/helpdesk/kb/{article}/delete", post(delete))
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// HTML-escapes text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A search snippet as HTML: the text escaped, the matched words in `<mark>` (when the marks pair up).
fn snippet_html(marked: &str) -> String {
    let starts = marked.chars().filter(|c| *c == MARK_START).count();
    let ends = marked.chars().filter(|c| *c == MARK_END).count();
    let e = escape(marked);
    if starts == ends {
        e.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    } else {
        e.chars().filter(|c| *c != MARK_START && *c != MARK_END).collect()
    }
}

fn field_text(ctx: &PageCtx, code: &str) -> String {
    let key = format!("field-{code}");
    let t = ctx.t(&key);
    if t == key { ctx.t("error-invalid") } else { t }
}

/// One line of a form's error summary.
pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

fn summary(ctx: &PageCtx, errors: &FieldErrors) -> Vec<SummaryItem> {
    errors
        .0
        .iter()
        .map(|e| SummaryItem {
            anchor: format!("f-{}", e.field),
            text: format!("{}: {}", ctx.t(&format!("kb-label-{}", e.field)), field_text(ctx, &e.code)),
        })
        .collect()
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn category_label(ctx: &PageCtx, c: Category) -> String {
    ctx.t(&format!("kb-category-{}", c.as_str()))
}

fn categories(ctx: &PageCtx, selected: &str, blank: &str) -> Vec<Choice> {
    let mut out = vec![Choice { value: String::new(), label: ctx.t(blank), selected: selected.trim().is_empty() }];
    out.extend(Category::ALL.iter().map(|c| Choice {
        value: c.as_str().to_owned(),
        label: category_label(ctx, *c),
        selected: selected.trim().eq_ignore_ascii_case(c.as_str()),
    }));
    out
}

fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    let key = match done {
        "created" => "kb-notice-created",
        "updated" => "kb-notice-updated",
        "published" => "kb-notice-published",
        "unpublished" => "kb-notice-unpublished",
        "deleted" => "kb-notice-deleted",
        "feedback" => "kb-notice-feedback",
        _ => return None,
    };
    Some(ctx.t(key))
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    pub done: String,
}

/// A search result or a suggestion as the pages show it.
pub struct HitLine {
    pub id: ArticleId,
    pub title: String,
    pub snippet_html: String,
    pub category: String,
    pub operator_wide: bool,
}

fn hit_line(ctx: &PageCtx, h: &Hit) -> HitLine {
    HitLine {
        id: h.id,
        title: h.title.clone(),
        snippet_html: snippet_html(&h.marked),
        category: category_label(ctx, h.category),
        operator_wide: h.operator_wide,
    }
}

/// An article in a list.
pub struct ListLine {
    pub id: ArticleId,
    pub title: String,
    pub excerpt: String,
    pub category: String,
    pub operator_wide: bool,
    pub draft: bool,
    pub updated: String,
    pub helpful: i64,
    pub not_helpful: i64,
}

fn list_line(ctx: &PageCtx, a: &ArticleSummary) -> ListLine {
    ListLine {
        id: a.id,
        title: a.title.clone(),
        excerpt: a.excerpt.clone(),
        category: category_label(ctx, a.category),
        operator_wide: a.operator_wide,
        draft: a.state == ArticleState::Draft,
        updated: ctx.format_time(&a.updated_at),
        helpful: a.feedback.as_ref().map_or(0, |f| f.helpful),
        not_helpful: a.feedback.as_ref().map_or(0, |f| f.not_helpful),
    }
}

fn current_org(ctx: &PageCtx) -> Option<OrgId> {
    ctx.current_org.as_ref().map(|o| o.id)
}

// ---------------------------------------------------------------------------------------------------------------
// Members: search and browse, an article, feedback, suggestions

#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub category: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "kb_search.html")]
struct SearchPage {
    ctx: PageCtx,
    available: bool,
    /// The organisation's authors get a link to the editor.
    editor: Option<OrgId>,
    q: String,
    categories: Vec<Choice>,
    searched: bool,
    hits: Vec<HitLine>,
    articles: Vec<ListLine>,
}

async fn search_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Query(f): Query<SearchForm>) -> Result<Response, PageError> {
    let ctx = PageCtx::build(&state, &rc).await;
    let q: String = f.q.chars().take(500).collect();
    let category = Category::parse(&f.category);
    let categories = categories(&ctx, category.map_or("", Category::as_str), "kb-category-all");
    let mut page = SearchPage { ctx, available: false, editor: None, q, categories, searched: false, hits: Vec::new(), articles: Vec::new() };
    let Some(org) = current_org(&page.ctx) else { return Ok(page.into_response()) };
    let access = match service::access(&state.db, &user.principal, org).await {
        Ok(a) => a,
        Err(Error::NotFound | Error::Forbidden) => return Ok(page.into_response()),
        Err(e) => return Err(e.into()),
    };
    page.available = true;
    page.editor = access.writer.then_some(org);
    if page.q.trim().is_empty() {
        let list = service::list(&state.db, &user.principal, org, category, false).await?;
        page.articles = list.iter().map(|a| list_line(&page.ctx, a)).collect();
    } else {
        page.searched = true;
        let hits = service::search(&state.db, &user.principal, org, &page.q).await?;
        page.hits = hits.iter().filter(|h| category.is_none_or(|c| h.category == c)).map(|h| hit_line(&page.ctx, h)).collect();
    }
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "kb_suggest.html")]
struct SuggestPartial {
    ctx: PageCtx,
    hits: Vec<HitLine>,
}

/// The suggestions for a ticket subject, as an HTML fragment (for `hx-get` on the new-ticket form); empty when
/// there is nothing to suggest or the organisation has no help desk.
async fn suggest_partial(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Query(f): Query<SearchForm>) -> Result<Response, PageError> {
    let ctx = PageCtx::build(&state, &rc).await;
    let hits = match current_org(&ctx) {
        Some(org) => match service::suggest(&state.db, &user.principal, org, &f.q).await {
            Ok(h) => h,
            Err(Error::NotFound | Error::Forbidden) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        None => Vec::new(),
    };
    let hits = hits.iter().map(|h| hit_line(&ctx, h)).collect();
    Ok(SuggestPartial { ctx, hits }.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "kb_article.html")]
struct ArticlePage {
    ctx: PageCtx,
    a: Article,
    category: String,
    updated: String,
    /// The reader's answer: as stored, or as just typed.
    helpful: Option<bool>,
    comment: String,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

async fn render_article(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    id: ArticleId,
    typed: Option<(FeedbackForm, FieldErrors)>,
    done: &str,
) -> Result<Response, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let org = current_org(&ctx).ok_or_else(PageError::not_found)?;
    let a = service::get(&state.db, &user.principal, org, id).await?;
    let invalid = typed.is_some();
    let (helpful, comment, errors) = match typed {
        Some((f, e)) => (f.helpful(), f.comment, e),
        None => (a.my_feedback.as_ref().map(|m| m.helpful), a.my_feedback.as_ref().map(|m| m.comment.clone()).unwrap_or_default(), FieldErrors::new()),
    };
    let page = ArticlePage {
        category: category_label(&ctx, a.category),
        updated: ctx.format_time(&a.updated_at),
        summary: summary(&ctx, &errors),
        notice: notice(&ctx, done),
        ctx,
        a,
        helpful,
        comment,
        errors,
    };
    Ok((if invalid { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, page).into_response())
}

async fn article_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(article): Path<String>,
    Query(d): Query<Done>,
) -> Result<Response, PageError> {
    let id: ArticleId = parse_id(&article)?;
    render_article(&state, &rc, &user, id, None, &d.done).await
}

#[derive(Debug, Default, Deserialize)]
pub struct FeedbackForm {
    /// `yes` or `no`.
    #[serde(default)]
    pub helpful: String,
    #[serde(default)]
    pub comment: String,
}

impl FeedbackForm {
    fn helpful(&self) -> Option<bool> {
        match self.helpful.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }
}

async fn feedback(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(article): Path<String>,
    Form(f): Form<FeedbackForm>,
) -> Result<Response, PageError> {
    let id: ArticleId = parse_id(&article)?;
    let ctx = PageCtx::build(&state, &rc).await;
    let org = current_org(&ctx).ok_or_else(PageError::not_found)?;
    let input = FeedbackInput { helpful: f.helpful(), comment: Some(f.comment.clone()) };
    match service::feedback(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, &input).await {
        Ok(_) => Ok(see_other(&format!("/helpdesk/kb/{id}?done=feedback#feedback"))),
        Err(Error::Invalid(errors)) => render_article(&state, &rc, &user, id, Some((f, errors)), "").await,
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Authors: the list, the new and edit forms, publish, unpublish, delete

#[derive(Template, WebTemplate)]
#[template(path = "kb_authors.html")]
struct AuthorsPage {
    ctx: PageCtx,
    org_id: OrgId,
    articles: Vec<ListLine>,
    notice: Option<String>,
}

async fn authors(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(d): Query<Done>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let list = service::list_own(&state.db, &user.principal, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let articles = list.iter().map(|a| list_line(&ctx, a)).collect();
    let notice = notice(&ctx, &d.done);
    Ok(AuthorsPage { ctx, org_id: org, articles, notice }.into_response())
}

/// What the edit page shows of a stored article beside the form.
pub struct Stored {
    pub id: ArticleId,
    pub title: String,
    pub draft: bool,
    pub html: String,
    pub author: String,
    pub updated: String,
    pub helpful: i64,
    pub not_helpful: i64,
    pub comments: Vec<(bool, String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "kb_edit.html")]
struct EditPage {
    ctx: PageCtx,
    org_id: OrgId,
    stored: Option<Stored>,
    form: ArticleInput,
    categories: Vec<Choice>,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

async fn render_edit(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    id: Option<ArticleId>,
    typed: Option<(ArticleInput, FieldErrors)>,
    done: &str,
) -> Result<Response, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let stored = match id {
        Some(id) => {
            let a = service::get(&state.db, &user.principal, org, id).await?;
            // Only the organisation's own articles are edited here (an operator-wide one read from elsewhere is not).
            if !a.editable {
                return Err(PageError::not_found());
            }
            Some(a)
        }
        None => {
            // The form is for the organisation's authors only.
            service::list_own(&state.db, &user.principal, org).await?;
            None
        }
    };
    let invalid = typed.is_some();
    let (form, errors) = typed.unwrap_or_else(|| match &stored {
        Some(a) => (
            ArticleInput { title: a.title.clone(), body: a.body.clone(), category: a.category.as_str().to_owned(), tags: a.tags.join(" ") },
            FieldErrors::new(),
        ),
        None => (ArticleInput::default(), FieldErrors::new()),
    });
    let stored = stored.map(|a| Stored {
        id: a.id,
        title: a.title.clone(),
        draft: a.state == ArticleState::Draft,
        author: a.author.clone().unwrap_or_default(),
        updated: ctx.format_time(&a.updated_at),
        helpful: a.feedback.as_ref().map_or(0, |f| f.helpful),
        not_helpful: a.feedback.as_ref().map_or(0, |f| f.not_helpful),
        comments: a
            .comments
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.helpful, c.comment, ctx.format_time(&c.at)))
            .collect(),
        html: a.html,
    });
    let page = EditPage {
        categories: categories(&ctx, &form.category, "kb-category-choose"),
        summary: summary(&ctx, &errors),
        notice: notice(&ctx, done),
        ctx,
        org_id: org,
        stored,
        form,
        errors,
    };
    Ok((if invalid { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, page).into_response())
}

async fn new_form(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    render_edit(&state, &rc, &user, org, None, None, "").await
}

async fn create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(f): Form<ArticleInput>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    match service::create(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, &f).await {
        Ok(a) => Ok(see_other(&format!("/orgs/{org}/helpdesk/kb/{}?done=created", a.id))),
        Err(Error::Invalid(errors)) => render_edit(&state, &rc, &user, org, None, Some((f, errors)), "").await,
        Err(e) => Err(e.into()),
    }
}

async fn edit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, article)): Path<(String, String)>,
    Query(d): Query<Done>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, ArticleId) = (parse_id(&org)?, parse_id(&article)?);
    render_edit(&state, &rc, &user, org, Some(id), None, &d.done).await
}

async fn update(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, article)): Path<(String, String)>,
    Form(f): Form<ArticleInput>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, ArticleId) = (parse_id(&org)?, parse_id(&article)?);
    match service::update(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, &f).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/helpdesk/kb/{id}?done=updated"))),
        Err(Error::Invalid(errors)) => render_edit(&state, &rc, &user, org, Some(id), Some((f, errors)), "").await,
        Err(e) => Err(e.into()),
    }
}

async fn publish(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, article)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, id): (OrgId, ArticleId) = (parse_id(&org)?, parse_id(&article)?);
    service::set_state(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, ArticleState::Published).await?;
    Ok(see_other(&format!("/orgs/{org}/helpdesk/kb/{id}?done=published")))
}

async fn unpublish(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, article)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, id): (OrgId, ArticleId) = (parse_id(&org)?, parse_id(&article)?);
    service::set_state(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, ArticleState::Draft).await?;
    Ok(see_other(&format!("/orgs/{org}/helpdesk/kb/{id}?done=unpublished")))
}

async fn delete(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, article)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, id): (OrgId, ArticleId) = (parse_id(&org)?, parse_id(&article)?);
    service::delete(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id).await?;
    Ok(see_other(&format!("/orgs/{org}/helpdesk/kb?done=deleted")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_and_marked() {
        let s = format!("a <b> {MARK_START}connessione{MARK_END} & c");
        assert_eq!(snippet_html(&s), "a &lt;b&gt; <mark>connessione</mark> &amp; c");
        assert_eq!(snippet_html(&format!("x{MARK_START}y")), "xy");
    }
}
