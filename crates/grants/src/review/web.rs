//! Review pages. The staff's review of an application (`/orgs/{org}/calls/{call}/applications/{application}`: the
//! application's content and receipt, the history, the forms of the step that is due) and the company's page
//! (`/companies/{company}/applications/{application}/review`: what is asked of it, its answer and report forms, the
//! history). Plain forms, no JavaScript: a refused submission answers 422 with each error beside its field and in a
//! summary, keeping what was typed; a step no longer due answers 409 with the page and a notice; success 303.

use agilekit_web::pages::{parse_id, see_other};
use std::collections::HashMap;

use agilekit_kernel::Error;
use agilekit_kernel::FieldErrors;
use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::auth::{RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::Value;

use super::model::{AnswerInput, ApprovalInput, CheckInput, GrantInput, LineInput, Party, ReportInput, Stage, LINES_MAX};
use super::files;
use super::service::{self, Review};
use crate::applications::api::Runtime;
use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;
use crate::companies::model::CompanyId;
use crate::model::Cents;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/calls/{call}/applications/{application}", get(staff_page))
        .route("/orgs/{org}/calls/{call}/applications/{application}/check", post(staff_check))
        .route("/orgs/{org}/calls/{call}/applications/{application}/grant", post(staff_grant))
        .route("/orgs/{org}/calls/{call}/applications/{application}/approval", post(staff_approval))
        .route("/companies/{company}/applications/{application}/review", get(company_page))
        .route("/companies/{company}/applications/{application}/review/answer", post(company_answer))
        .route("/companies/{company}/applications/{application}/review/report", post(company_report))
        // Takes a file: the extractors' own limit off; the outer layers cap a multipart body at the uploads' limit.
        .route("/companies/{company}/applications/{application}/review/files", post(company_upload).layer(DefaultBodyLimit::disable()))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// Money as a form shows it: `7.500,00`.
fn amount_text(c: i64) -> String {
    Cents(c).to_string().trim_end_matches(" €").to_owned()
}

pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

/// A step of the history as shown: when, by whom, what, and what it said.
pub struct HistoryItem {
    pub at: String,
    pub who: String,
    pub action: String,
    pub details: Vec<(String, String)>,
}

/// A line of the expense report as shown.
pub struct ReportRow {
    pub n: usize,
    pub category: String,
    pub description: String,
    pub amount: String,
    pub invoice: String,
    pub eligible: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_review.html")]
struct ReviewPage {
    ctx: PageCtx,
    staff: bool,
    /// Where the page's forms post to (`{base}/check`, …).
    base: String,
    /// Where the review's files are downloaded from (`{file_base}/{id}`).
    file_base: String,
    back: String,
    r: Review,
    stage: String,
    history: Vec<HistoryItem>,
    report: Vec<ReportRow>,
    /// The report form's rows (company).
    rows: Vec<usize>,
    categories: Vec<(String, String)>,
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    alert: Option<String>,
}

impl ReviewPage {
    /// What the field `{form}.{name}` holds (as typed after a refusal).
    fn v(&self, key: &str) -> String {
        self.values.get(key).cloned().unwrap_or_default()
    }
    fn e(&self, key: &str) -> Option<String> {
        self.errors.get(key).cloned()
    }
    fn can(&self, step: &str) -> bool {
        self.r.steps.iter().any(|s| s.as_str() == step)
    }
    fn known_category(&self, code: &str) -> bool {
        self.categories.iter().any(|(c, _)| c == code)
    }
    fn money(&self, c: &i64) -> String {
        Cents(*c).to_string()
    }
    fn opt_money(&self, c: &Option<i64>) -> String {
        c.map(|c| Cents(c).to_string()).unwrap_or_else(|| "—".into())
    }
}

/// The input's id: `f-{form}-{field}` with dots as dashes.
fn id_of(key: &str) -> String {
    format!("f-{}", key.replace('.', "-"))
}

fn error_text(ctx: &PageCtx, code: &str) -> String {
    for key in [format!("grv-err-{code}"), format!("field-{code}")] {
        let t = ctx.t(&key);
        if t != key {
            return t;
        }
    }
    ctx.t("error-invalid")
}

fn label_of(ctx: &PageCtx, field: &str) -> String {
    let parts: Vec<&str> = field.split('.').collect();
    match parts.as_slice() {
        ["lines", n, f] => format!("{} {}: {}", ctx.t("grv-line"), n.parse::<usize>().map_or(0, |n| n + 1), ctx.t(&format!("grv-label-{f}"))),
        ["eligible", n] => format!("{} {}: {}", ctx.t("grv-line"), n.parse::<usize>().map_or(0, |n| n + 1), ctx.t("grv-label-eligible")),
        _ => ctx.t(&format!("grv-label-{}", field.replace('_', "-"))),
    }
}

fn detail_rows(ctx: &PageCtx, d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, label) in [("message", "grv-label-message"), ("deadline", "grv-label-deadline"), ("reasons", "grv-label-reasons"), ("text", "grv-label-text"), ("act_number", "grv-label-act-number"), ("act_date", "grv-label-act-date")] {
        if let Some(s) = d[k].as_str() {
            out.push((ctx.t(label), s.to_owned()));
        }
    }
    for (k, label) in [("granted_cents", "grv-granted"), ("released_cents", "grv-released"), ("total_cents", "grv-reported-total"), ("approved_cents", "grv-approved"), ("to_pay_cents", "grv-to-pay")] {
        if let Some(c) = d[k].as_i64() {
            out.push((ctx.t(label), Cents(c).to_string()));
        }
    }
    if let Some(n) = d["drawn"].as_u64().filter(|n| *n > 0) {
        out.push((ctx.t("grv-drawn"), n.to_string()));
    }
    out
}

struct Shown {
    values: HashMap<String, String>,
    errors: FieldErrors,
    /// The form the values and errors belong to.
    form: String,
    notice: Option<String>,
    alert: Option<String>,
}

impl Shown {
    fn fresh(done: &str, ctx_notice: Option<String>) -> Shown {
        let _ = done;
        Shown { values: HashMap::new(), errors: FieldErrors::new(), form: String::new(), notice: ctx_notice, alert: None }
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(state: &AppState, rc: &RequestCtx, staff: bool, base: String, _page: String, back: String, r: Review, shown: Shown) -> ReviewPage {
    let ctx = PageCtx::build(state, rc).await;
    let file_base = if staff {
        format!("/api/v1/orgs/{}/calls/{}/applications/{}/review/files", r.org_id, r.call_id, r.application_id)
    } else {
        format!("/api/v1/companies/{}/applications/{}/review/files", r.company_id, r.application_id)
    };
    let stage = match r.stage {
        Some(s) => ctx.t(&format!("grv-stage-{}", s.as_str())),
        None => ctx.t("grv-stage-none"),
    };
    let history = r
        .history
        .iter()
        .map(|e| HistoryItem {
            at: ctx.format_time(&e.at),
            who: match (&e.actor, e.party) {
                (Some(n), _) => n.clone(),
                (None, Party::Staff) => ctx.t("grv-party-staff"),
                (None, Party::Company) => r.company_name.clone(),
            },
            action: ctx.t(&format!("grv-action-{}", e.action.as_str())),
            details: detail_rows(&ctx, &e.detail),
        })
        .collect();
    let label_of_cat = |code: &str| r.categories.iter().find(|c| c.code == code).map_or_else(|| code.to_owned(), |c| c.label.clone());
    let report: Vec<ReportRow> = r
        .report
        .iter()
        .enumerate()
        .map(|(n, l)| ReportRow {
            n,
            category: label_of_cat(&l.category),
            description: l.description.clone(),
            amount: Cents(l.amount_cents).to_string(),
            invoice: l.invoice.clone(),
            eligible: l.eligible_cents.map(|c| Cents(c).to_string()),
        })
        .collect();
    let categories = r.categories.iter().map(|c| (c.code.clone(), c.label.clone())).collect();
    // Values: what was typed after a refusal, else what the forms start from.
    let mut values = HashMap::new();
    if shown.form.is_empty() {
        for (n, l) in r.report.iter().enumerate() {
            values.insert(format!("approve.eligible.{n}"), amount_text(l.amount_cents));
            if r.stage == Some(Stage::Corrections) {
                values.insert(format!("report.lines.{n}.category"), l.category.clone());
                values.insert(format!("report.lines.{n}.description"), l.description.clone());
                values.insert(format!("report.lines.{n}.amount"), amount_text(l.amount_cents));
                values.insert(format!("report.lines.{n}.invoice"), l.invoice.clone());
            }
        }
        values.insert("grant.amount".into(), amount_text(r.requested_cents));
    } else {
        for (k, v) in &shown.values {
            values.insert(format!("{}.{k}", shown.form), v.clone());
        }
    }
    let typed_rows = shown.values.keys().filter_map(|k| k.strip_prefix("lines.")?.split('.').next()?.parse::<usize>().ok()).max().map_or(0, |m| m + 1);
    let rows = (0..(typed_rows.max(r.report.len()) + 3).clamp(3, LINES_MAX)).collect();
    let mut errors = HashMap::new();
    let mut summary = Vec::new();
    for e in &shown.errors.0 {
        let key = format!("{}.{}", shown.form, e.field);
        let text = error_text(&ctx, &e.code);
        if let std::collections::hash_map::Entry::Vacant(slot) = errors.entry(key.clone()) {
            let anchor = if e.field == "lines" { id_of(&format!("{}.lines.0.category", shown.form)) } else { id_of(&key) };
            summary.push(SummaryItem { anchor, text: format!("{}: {text}", label_of(&ctx, &e.field)) });
            slot.insert(text);
        }
    }
    ReviewPage { staff, file_base, base, back, stage, history, report, rows, categories, values, errors, summary, notice: shown.notice, alert: shown.alert, r, ctx }
}

fn staff_paths(org: OrgId, call: CallId, id: ApplicationId) -> (String, String, String) {
    let base = format!("/orgs/{org}/calls/{call}/applications/{id}");
    (base.clone(), base, format!("/orgs/{org}/calls/{call}/applications"))
}

fn company_paths(company: CompanyId, id: ApplicationId) -> (String, String, String) {
    let page = format!("/companies/{company}/applications/{id}/review");
    (page.clone(), page, format!("/companies/{company}/applications/{id}"))
}

fn done_notice(ctx_lang: &RequestCtx, done: &str) -> Option<String> {
    (!done.is_empty() && done.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then(|| ctx_lang.lang.t(&format!("grv-done-{done}"))).filter(|t| !t.starts_with("grv-done-"))
}

async fn staff_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, call, id)): Path<(String, String, String)>, Query(q): Query<Done>) -> Result<ReviewPage, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let r = service::staff_view(&state.db, &user.principal, org, call, id).await?;
    let (base, page, back) = staff_paths(org, call, id);
    let notice = done_notice(&rc, &q.done);
    Ok(render(&state, &rc, true, base, page, back, r, Shown::fresh(&q.done, notice)).await)
}

async fn company_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((company, id)): Path<(String, String)>, Query(q): Query<Done>) -> Result<ReviewPage, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let r = service::company_view(&state.db, &user.principal, company, id).await?;
    let (base, page, back) = company_paths(company, id);
    let notice = done_notice(&rc, &q.done);
    Ok(render(&state, &rc, false, base, page, back, r, Shown::fresh(&q.done, notice)).await)
}

/// What a step's submission came to: a redirect, or the page again (422 with the errors, 409 with a notice).
#[allow(clippy::too_many_arguments)]
async fn outcome(state: &AppState, rc: &RequestCtx, staff: bool, paths: (String, String, String), result: Result<Review, Error>, form: &str, done: &str, values: HashMap<String, String>, reread: impl std::future::Future<Output = Result<Review, Error>>) -> Result<Response, PageError> {
    let (base, page, back) = paths;
    let (status, shown) = match result {
        Ok(_) => return Ok(see_other(&format!("{page}?done={done}"))),
        Err(Error::Invalid(errors)) => (StatusCode::UNPROCESSABLE_ENTITY, Shown { values, errors, form: form.to_owned(), notice: None, alert: None }),
        Err(Error::Conflict(code)) => {
            let key = format!("grv-conflict-{code}");
            let t = rc.lang.t(&key);
            let alert = if t == key { rc.lang.t("error-conflict") } else { t };
            (StatusCode::CONFLICT, Shown { values: HashMap::new(), errors: FieldErrors::new(), form: String::new(), notice: None, alert: Some(alert) })
        }
        Err(e) => return Err(e.into()),
    };
    let r = reread.await?;
    Ok((status, render(state, rc, staff, base, page, back, r, shown).await).into_response())
}

fn field(v: &HashMap<String, String>, k: &str) -> String {
    v.get(k).cloned().unwrap_or_default()
}

async fn staff_check(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((org, call, id)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let input = CheckInput { outcome: field(&v, "outcome"), message: field(&v, "message"), deadline: field(&v, "deadline"), reasons: field(&v, "reasons") };
    let form = match input.outcome.as_str() {
        "integration" => "integration",
        "inadmissible" => "inadmissible",
        _ => "admit",
    };
    let p = &user.principal;
    let res = service::check(&state.db, &rt.durable, &user.actor(rc.ip.clone()), p, org, call, id, &input, &state.cfg.public_url).await;
    outcome(&state, &rc, true, staff_paths(org, call, id), res, form, form, v, service::staff_view(&state.db, p, org, call, id)).await
}

async fn staff_grant(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((org, call, id)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let input = GrantInput { amount: field(&v, "amount"), act_number: field(&v, "act_number"), act_date: field(&v, "act_date") };
    let p = &user.principal;
    let res = service::grant(&state.db, &rt.durable, &user.actor(rc.ip.clone()), p, org, call, id, &input, &state.cfg.public_url).await;
    outcome(&state, &rc, true, staff_paths(org, call, id), res, "grant", "grant", v, service::staff_view(&state.db, p, org, call, id)).await
}

async fn staff_approval(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((org, call, id)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (org, call, id): (OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let eligible: Vec<String> = (0..LINES_MAX).map_while(|n| v.get(&format!("eligible.{n}")).cloned()).collect();
    let input = ApprovalInput { outcome: field(&v, "outcome"), eligible, message: field(&v, "message"), deadline: field(&v, "deadline"), reasons: field(&v, "reasons") };
    let form = match input.outcome.as_str() {
        "corrections" => "corrections",
        "reject" => "reject",
        _ => "approve",
    };
    let p = &user.principal;
    let res = service::approval(&state.db, &rt.durable, &user.actor(rc.ip.clone()), p, org, call, id, &input, &state.cfg.public_url).await;
    outcome(&state, &rc, true, staff_paths(org, call, id), res, form, form, v, service::staff_view(&state.db, p, org, call, id)).await
}

async fn company_answer(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let input = AnswerInput { text: field(&v, "text") };
    let p = &user.principal;
    let res = service::answer(&state.db, &rt.durable, &user.actor(rc.ip.clone()), p, company, id, &input, &state.cfg.public_url).await;
    outcome(&state, &rc, false, company_paths(company, id), res, "answer", "answer", v, service::company_view(&state.db, p, company, id)).await
}

async fn company_report(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let v: HashMap<String, String> = pairs.into_iter().collect();
    let lines: Vec<LineInput> = (0..LINES_MAX)
        .map_while(|n| {
            let f = |x: &str| v.get(&format!("lines.{n}.{x}")).cloned();
            let any = ["category", "description", "amount", "invoice"].iter().any(|x| f(x).is_some());
            any.then(|| LineInput { category: f("category").unwrap_or_default(), description: f("description").unwrap_or_default(), amount: f("amount").unwrap_or_default(), invoice: f("invoice").unwrap_or_default() })
        })
        .collect();
    let input = ReportInput { lines };
    let p = &user.principal;
    let res = service::report(&state.db, &rt.durable, &user.actor(rc.ip.clone()), p, company, id, &input, &state.cfg.public_url).await;
    outcome(&state, &rc, false, company_paths(company, id), res, "report", "report", v, service::company_view(&state.db, p, company, id)).await
}

async fn company_upload(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let p = &user.principal;
    // Who may not see the review learns nothing about the body.
    service::company_view(&state.db, p, company, id).await?;
    let res = match files::multipart_file(&state, req).await {
        Ok((name, ct, data)) => files::upload(&state.db, &state.cfg.files, &user.actor(rc.ip.clone()), p, company, id, &name, &ct, &data).await,
        Err(Ok(_)) => Err(FieldErrors::one("file", "file-too-large")),
        Err(Err(e)) => Err(e),
    };
    outcome(&state, &rc, false, company_paths(company, id), res, "files", "file", HashMap::new(), service::company_view(&state.db, p, company, id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_as_forms_show_them() {
        assert_eq!(amount_text(750_000), "7.500,00");
        assert_eq!(amount_text(5), "0,05");
        assert_eq!(id_of("report.lines.0.amount"), "f-report-lines-0-amount");
    }
}
