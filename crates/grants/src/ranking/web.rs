//! Graduatoria pages. The evaluator's list (`/orgs/{org}/calls/{call}/evaluation`), an application's page (declare,
//! then read and score it on the grid), the ranking (`/orgs/{org}/calls/{call}/ranking`, provisional or published)
//! and its publication (a confirmation page, then POST). Plain forms, no JavaScript: a refused form answers 422 with
//! each error beside its field and in a summary, keeping what was typed; a step no longer possible 409 with a
//! notice; success 303.

use agilekit_web::pages::{parse_id, see_other};
use std::collections::{BTreeMap, HashMap};

use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use agilekit_web::AppState;
use agilekit_web::auth::{RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::model::{DeclarationInput, Points, ScoresInput, points_text};
use super::service::{self, CallLine, Evaluation, Ranking, Scoring};
use crate::applications::api::Runtime;
use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::model::Cents;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/evaluation", get(index_page))
        .route("/orgs/{org}/calls/{call}/evaluation", get(list_page))
        .route("/orgs/{org}/calls/{call}/evaluation/{application}", get(app_page))
        .route("/orgs/{org}/calls/{call}/evaluation/{application}/declaration", axum::routing::post(declare))
        .route("/orgs/{org}/calls/{call}/evaluation/{application}/scores", axum::routing::post(score))
        .route("/orgs/{org}/calls/{call}/ranking", get(ranking_page))
        .route("/orgs/{org}/calls/{call}/ranking/publish", get(publish_page).post(publish))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

fn done_notice(rc: &RequestCtx, done: &str) -> Option<String> {
    (!done.is_empty() && done.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .then(|| rc.lang.t(&format!("grk-done-{done}")))
        .filter(|t| !t.starts_with("grk-done-"))
}

fn conflict_text(rc: &RequestCtx, code: &str) -> String {
    let key = format!("grk-conflict-{code}");
    let t = rc.lang.t(&key);
    if t == key { rc.lang.t("error-conflict") } else { t }
}

fn money(c: i64) -> String {
    Cents(c).to_string()
}

pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The evaluators' index: the organisation's ranked calls.

#[derive(Template, WebTemplate)]
#[template(path = "grants_ranking_index.html")]
struct IndexPage {
    ctx: PageCtx,
    org: OrgId,
    calls: Vec<CallLine>,
}

async fn index_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>) -> Result<IndexPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    let calls = service::calls(&state.db, &user.principal, org).await?;
    Ok(IndexPage { ctx: PageCtx::build(&state, &rc).await, org, calls })
}

// ---------------------------------------------------------------------------------------------------------------
// The evaluator's list.

#[derive(Template, WebTemplate)]
#[template(path = "grants_ranking_list.html")]
struct ListPage {
    ctx: PageCtx,
    org: OrgId,
    e: Evaluation,
    notice: Option<String>,
}

impl ListPage {
    fn money(&self, c: &i64) -> String {
        money(*c)
    }
}

async fn list_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call)): Path<(String, String)>, Query(q): Query<Done>) -> Result<ListPage, PageError> {
    let (org, call): (OrgId, CallId) = (parse_id(&org)?, parse_id(&call)?);
    let e = service::evaluation(&state.db, &user.principal, org, call).await?;
    let notice = done_notice(&rc, &q.done);
    Ok(ListPage { ctx: PageCtx::build(&state, &rc).await, org, e, notice })
}

// ---------------------------------------------------------------------------------------------------------------
// An application: declaration, content, scoring.

pub struct ExpenseRow {
    pub category: String,
    pub description: String,
    pub amount: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_ranking_application.html")]
struct AppPage {
    ctx: PageCtx,
    org: OrgId,
    call: CallId,
    s: Scoring,
    expenses: Vec<ExpenseRow>,
    /// The form the values and errors belong to (`declare`, `conflict`, `scores`), empty when none was refused.
    form: String,
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    alert: Option<String>,
}

impl AppPage {
    /// What the field `{form}.{name}` shows: as typed after a refusal, else what is stored.
    fn v(&self, key: &str) -> String {
        if !self.form.is_empty() {
            return self.values.get(key).cloned().unwrap_or_default();
        }
        match key.split_once('.') {
            Some(("scores", rest)) => match rest.split_once('.') {
                Some(("points", code)) => self.s.scores.iter().find(|x| x.criterion == code).map(|x| x.points.to_string()).unwrap_or_default(),
                Some(("note", code)) => self.s.scores.iter().find(|x| x.criterion == code).map(|x| x.note.clone()).unwrap_or_default(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }
    fn e(&self, key: &str) -> Option<String> {
        self.errors.get(key).cloned()
    }
    fn checked(&self, key: &str, value: &str) -> bool {
        self.values.get(key).is_some_and(|v| v == value)
    }
    fn money(&self, c: &i64) -> String {
        money(*c)
    }
    fn id_of(&self, key: &str) -> String {
        field_id(key)
    }
}

fn field_id(key: &str) -> String {
    format!("f-{}", key.replace('.', "-"))
}

struct Shown {
    form: String,
    values: HashMap<String, String>,
    errors: FieldErrors,
    notice: Option<String>,
    alert: Option<String>,
}

impl Shown {
    fn none(notice: Option<String>) -> Shown {
        Shown { form: String::new(), values: HashMap::new(), errors: FieldErrors::new(), notice, alert: None }
    }
}

async fn render_app(state: &AppState, rc: &RequestCtx, org: OrgId, call: CallId, s: Scoring, shown: Shown) -> AppPage {
    let ctx = PageCtx::build(state, rc).await;
    let expenses = s
        .draft
        .as_ref()
        .map(|d| d.expenses.iter().map(|x| ExpenseRow { category: x.category.clone(), description: x.description.clone(), amount: x.amount_cents.map(money).unwrap_or_default() }).collect())
        .unwrap_or_default();
    let mut errors = HashMap::new();
    let mut summary = Vec::new();
    for e in &shown.errors.0 {
        // API fields `scores.qualita`, `notes.qualita`, `reason` → the page's keys `scores.points.qualita`, ….
        let key = match e.field.split_once('.') {
            Some(("scores", code)) => format!("scores.points.{code}"),
            Some(("notes", code)) => format!("scores.note.{code}"),
            _ => format!("{}.{}", shown.form, e.field),
        };
        if errors.contains_key(&key) {
            continue;
        }
        let text = {
            let k = format!("grk-err-{}", e.code);
            let t = ctx.t(&k);
            if t == k { ctx.t("error-invalid") } else { t }
        };
        let label = match e.field.split_once('.') {
            Some((_, code)) => s.criteria.iter().find(|c| c.code == code).map_or_else(|| code.to_owned(), |c| c.label.clone()),
            None if e.field == "conflict" => ctx.t("grk-label-conflict"),
            None => ctx.t("grk-label-reason"),
        };
        summary.push(SummaryItem { anchor: field_id(&key), text: format!("{label}: {text}") });
        errors.insert(key, text);
    }
    AppPage { ctx, org, call, s, expenses, form: shown.form, values: shown.values, errors, summary, notice: shown.notice, alert: shown.alert }
}

async fn app_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call, id)): Path<(String, String, String)>, Query(q): Query<Done>) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    match service::sheet(&state.db, &user.principal, org, call, id).await {
        Ok(s) => {
            let notice = done_notice(&rc, &q.done);
            Ok(render_app(&state, &rc, org, call, s, Shown::none(notice)).await.into_response())
        }
        // Before the call closes the list says so.
        Err(Error::Conflict(_)) => Ok(see_other(&format!("/orgs/{org}/calls/{call}/evaluation"))),
        Err(e) => Err(e.into()),
    }
}

/// A refused or accepted form: 303 to `to`, or the page again with the errors (422) or a notice (409).
#[allow(clippy::too_many_arguments)]
async fn after(state: &AppState, rc: &RequestCtx, user: &agilekit_web::auth::CurrentUser, org: OrgId, call: CallId, id: ApplicationId, res: Result<Scoring, Error>, form: &str, values: HashMap<String, String>, to: String) -> Result<Response, PageError> {
    let (status, shown) = match res {
        Ok(_) => return Ok(see_other(&to)),
        Err(Error::Invalid(errors)) => (StatusCode::UNPROCESSABLE_ENTITY, Shown { form: form.to_owned(), values, errors, notice: None, alert: None }),
        Err(Error::Conflict(code)) => (StatusCode::CONFLICT, Shown { alert: Some(conflict_text(rc, code)), ..Shown::none(None) }),
        Err(e) => return Err(e.into()),
    };
    let s = service::sheet(&state.db, &user.principal, org, call, id).await?;
    Ok((status, render_app(state, rc, org, call, s, shown).await).into_response())
}

async fn declare(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call, id)): Path<(String, String, String)>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let conflict = v.get("conflict").is_some_and(|c| c == "yes");
    // `declare`: the first declaration (a choice); `conflict`: "no conflict" turned into a conflict.
    let form = if v.get("form").is_some_and(|f| f == "conflict") { "conflict" } else { "declare" };
    if form == "declare" && !v.contains_key("conflict") {
        let s = service::sheet(&state.db, &user.principal, org, call, id).await?;
        let shown = Shown { form: form.into(), values: v, errors: FieldErrors(vec![agilekit_kernel::FieldError { field: "conflict".into(), code: "required".into() }]), notice: None, alert: None };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render_app(&state, &rc, org, call, s, shown).await).into_response());
    }
    let input = DeclarationInput { conflict, reason: v.get("reason").cloned().unwrap_or_default() };
    let res = service::declare(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, call, id, &input).await;
    // With a conflict the application's page is no longer the evaluator's: back to the list.
    let to = if conflict { format!("/orgs/{org}/calls/{call}/evaluation?done=conflict") } else { format!("/orgs/{org}/calls/{call}/evaluation/{id}?done=declared") };
    let values = v.into_iter().map(|(k, x)| (format!("{form}.{k}"), x)).collect();
    after(&state, &rc, &user, org, call, id, res, form, values, to).await
}

async fn score(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call, id)): Path<(String, String, String)>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let mut input = ScoresInput { scores: BTreeMap::new(), notes: BTreeMap::new() };
    let mut values = HashMap::new();
    for (k, x) in pairs {
        if let Some(code) = k.strip_prefix("points.") {
            input.scores.insert(code.to_owned(), Points::Text(x.clone()));
            values.insert(format!("scores.points.{code}"), x);
        } else if let Some(code) = k.strip_prefix("note.") {
            input.notes.insert(code.to_owned(), x.clone());
            values.insert(format!("scores.note.{code}"), x);
        }
    }
    let res = service::score(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, call, id, &input).await;
    after(&state, &rc, &user, org, call, id, res, "scores", values, format!("/orgs/{org}/calls/{call}/evaluation?done=scored")).await
}

// ---------------------------------------------------------------------------------------------------------------
// The ranking and its publication.

#[derive(Template, WebTemplate)]
#[template(path = "grants_ranking.html")]
struct RankingPage {
    ctx: PageCtx,
    org: OrgId,
    r: Ranking,
    notice: Option<String>,
    alert: Option<String>,
}

impl RankingPage {
    fn money(&self, c: &i64) -> String {
        money(*c)
    }
    fn points(&self, h: &i64) -> String {
        points_text(*h)
    }
    fn criterion_label(&self, code: &str) -> String {
        self.r.criteria.iter().find(|c| c.code == code).map_or_else(|| code.to_owned(), |c| c.label.clone())
    }
    fn place(&self, p: &Option<String>) -> String {
        match p.as_deref() {
            Some(p) => self.ctx.t(&format!("grk-place-{p}")),
            None => self.ctx.t("grk-place-none"),
        }
    }
}

async fn ranking_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call)): Path<(String, String)>, Query(q): Query<Done>) -> Result<RankingPage, PageError> {
    let (org, call): (OrgId, CallId) = (parse_id(&org)?, parse_id(&call)?);
    let r = service::ranking(&state.db, &user.principal, org, call).await?;
    let notice = done_notice(&rc, &q.done);
    Ok(RankingPage { ctx: PageCtx::build(&state, &rc).await, org, r, notice, alert: None })
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_ranking_publish.html")]
struct PublishPage {
    ctx: PageCtx,
    org: OrgId,
    r: Ranking,
    funded: usize,
    funded_total: String,
    budget: String,
}

async fn publish_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, call): (OrgId, CallId) = (parse_id(&org)?, parse_id(&call)?);
    let r = service::ranking(&state.db, &user.principal, org, call).await?;
    if !r.can_publish {
        return Ok(see_other(&format!("/orgs/{org}/calls/{call}/ranking")));
    }
    let funded: Vec<_> = r.lines.iter().filter(|l| l.place.as_deref() == Some("admitted")).collect();
    let funded_total = money(funded.iter().map(|l| l.requested_cents).sum());
    let funded = funded.len();
    let budget = money(r.budget_cents);
    Ok(PublishPage { ctx: PageCtx::build(&state, &rc).await, org, r, funded, funded_total, budget }.into_response())
}

async fn publish(State(state): State<AppState>, Extension(rt): Extension<Runtime>, SignedIn(user, rc): SignedIn, Path((org, call)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, call): (OrgId, CallId) = (parse_id(&org)?, parse_id(&call)?);
    match service::publish(&state.db, &rt.durable, &user.actor(rc.ip.clone()), &user.principal, org, call).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{call}/ranking?done=published"))),
        Err(Error::Conflict(code)) => {
            let r = service::ranking(&state.db, &user.principal, org, call).await?;
            let page = RankingPage { ctx: PageCtx::build(&state, &rc).await, org, r, notice: None, alert: Some(conflict_text(&rc, code)) };
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
