//! Application pages: the draft form that keeps everything typed, submission, the receipt (page and PDF).
//! `POST /calls/{call}/apply` opens (or finds) a company's application; `/companies/{company}/applications` lists
//! them; the application's page is the draft form (plan, expense rows, declaration, the call's required
//! attachments uploaded with the form) until it is submitted, then the receipt, read-only. Every form works without
//! JavaScript; a save never loses what was typed or the files already stored. The submit carries an idempotency key
//! made when the form was rendered, so a double click or a retry gets the same receipt.
//! With JavaScript, `draft-autosave.js` saves the draft after a pause in typing (`X-Autosave: 1`, a bare status back).

use crate::calls::staff_web::human_size;
use agilekit_web::pages::{parse_id, see_other};
use agilekit_kernel::{Error, FieldErrors, clock};
use agilekit_web::AppState;
use agilekit_web::auth::{CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::api::Runtime;
use super::model::{ApplicationId, Draft, Expense, LINES_MAX, State as AppState_};
use super::sequencer::Job;
use super::service::{self, Application, Receipt};
use crate::calls::model::{CallId, Phase, Rules};
use crate::calls::store as calls;
use crate::companies::model::CompanyId;
use crate::model::Cents;

/// Blank expense rows shown under the typed ones; "add rows" adds this many more.
const BLANK_ROWS: usize = 3;

/// The pages of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/calls/{call}/apply", post(apply))
        .route("/companies/{company}/applications", get(list))
        // The draft form takes files: the extractors' own limit off; the outer layers cap a multipart body at the
        // uploads' limit and a urlencoded one at the ordinary limit; each file is held to `[files] max_bytes`.
        .route("/companies/{company}/applications/{application}", get(page).post(act).layer(DefaultBodyLimit::disable()))
        .route("/companies/{company}/applications/{application}/receipt", get(receipt_page))
        .route("/companies/{company}/applications/{application}/receipt.pdf", get(receipt_pdf))
        .route("/companies/{company}/applications/{application}/withdraw", get(withdraw_page).post(withdraw))
        .route("/companies/{company}/applications/{application}/attachments/{code}", get(download))
        .route("/orgs/{org}/calls/{call}/applications/{application}/attachments/{code}", get(staff_download))
}

fn bad_form() -> PageError {
    PageError::status(StatusCode::BAD_REQUEST, "error-invalid")
}

/// An amount as a field shows it: `7.500,00`.
fn amount_text(cents: i64) -> String {
    Cents(cents).to_string().trim_end_matches('€').trim().to_owned()
}

/// A safe fragment of an element id.
fn id_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// The element a problem of `field` is shown beside (`expenses.0.amount_cents` → `f-expenses-0-amount_cents`).
fn anchor(field: &str) -> String {
    if field.starts_with("expenses.category.") || field == "expenses" {
        return "f-expenses".into();
    }
    if field.starts_with("company.") {
        return "f-company".into();
    }
    format!("f-{}", id_part(&field.replace('.', "-")))
}

/// The label of a problem's field, for the summary.
fn field_label(ctx: &PageCtx, field: &str, categories: &[(String, String)], attachments: &[(String, String)]) -> String {
    let parts: Vec<&str> = field.split('.').collect();
    match parts.as_slice() {
        ["expenses", "category", code] => {
            let label = categories.iter().find(|(c, _)| c == code).map_or((*code).to_owned(), |(_, l)| l.clone());
            ctx.t1("gap-label-category-share", "category", &label)
        }
        ["expenses", i, what] => {
            let n = i.parse::<usize>().map(|n| n + 1).unwrap_or(0).to_string();
            ctx.t1(&format!("gap-label-row-{what}"), "row", &n)
        }
        ["declaration"] => ctx.t("gap-label-declaration-field"),
        ["attachments", code] => attachments.iter().find(|(c, _)| c == code).map_or((*code).to_owned(), |(_, l)| l.clone()),
        _ => ctx.t(&format!("gap-label-{}", field.replace('.', "-"))),
    }
}

fn problem_text(ctx: &PageCtx, code: &str) -> String {
    ctx.t(&format!("gap-err-{code}"))
}

/// A line of the error summary.
struct SummaryItem {
    anchor: String,
    text: String,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// An expense row of the form, as typed or as stored.
struct RowView {
    idx: usize,
    categories: Vec<Choice>,
    description: String,
    amount: String,
    err_category: Option<String>,
    err_description: Option<String>,
    err_amount: Option<String>,
}

/// A required attachment of the call, with the file stored for it.
struct AttachmentView {
    code: String,
    id: String,
    label: String,
    file: Option<StoredFile>,
    error: Option<String>,
}

struct StoredFile {
    name: String,
    size: String,
    sha256: String,
    link: String,
}

/// The receipt as the pages show it.
struct ReceiptView {
    protocol: i64,
    at: String,
    sha256: String,
    company: String,
    call: String,
    requested: String,
    place: Option<String>,
    link: String,
    pdf: String,
}

fn receipt_view(ctx: &PageCtx, r: &Receipt) -> ReceiptView {
    let base = format!("/companies/{}/applications/{}", r.company_id, r.application_id);
    ReceiptView {
        protocol: r.protocol,
        at: format_seconds(r.submitted_at),
        sha256: r.sha256.clone(),
        company: r.company_name.clone(),
        call: r.call_title.clone(),
        requested: Cents(r.requested_cents).to_string(),
        place: r.place.as_deref().map(|p| ctx.t(&format!("gap-place-{p}"))),
        link: format!("{base}/receipt"),
        pdf: format!("{base}/receipt.pdf"),
    }
}

/// An instant in Rome time with its seconds (`02/04/2026 12:00:03`): the receipt's order is by the second.
fn format_seconds(t: time::OffsetDateTime) -> String {
    let r = clock::to_rome(t);
    format!("{:02}/{:02}/{} {:02}:{:02}:{:02}", r.day(), u8::from(r.month()), r.year(), r.hour(), r.minute(), r.second())
}

// ---------------------------------------------------------------------------------------------------------------
// Opening an application from the call's page

#[derive(Deserialize, Default)]
struct ApplyForm {
    #[serde(default)]
    company: String,
}

/// Opens the company's application to the call, or finds the one it has; then its page.
async fn apply(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(call): Path<String>, Form(f): Form<ApplyForm>) -> Result<Response, PageError> {
    let call: CallId = parse_id(&call)?;
    let company: CompanyId = parse_id(&f.company)?;
    let p = &user.principal;
    let existing = service::list(&state.db, p, company).await?;
    if let Some(a) = existing.iter().find(|a| a.call_id == call) {
        return Ok(see_other(&format!("/companies/{company}/applications/{}", a.id)));
    }
    match service::open(&state.db, &user.actor(rc.ip.clone()), p, company, call, &Draft::default()).await {
        Ok(a) => Ok(see_other(&format!("/companies/{company}/applications/{}", a.id))),
        // A call that is not published (or not there) is not found; a race with another tab found the one opened.
        Err(Error::Invalid(_)) => Err(PageError::not_found()),
        Err(Error::Conflict("already-applied")) => {
            let a = service::list(&state.db, p, company).await?.into_iter().find(|a| a.call_id == call).ok_or_else(PageError::not_found)?;
            Ok(see_other(&format!("/companies/{company}/applications/{}", a.id)))
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The company's applications

struct ListRow {
    link: String,
    call: String,
    state: String,
    protocol: Option<i64>,
    at: String,
    amount: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_applications.html")]
struct ListPage {
    ctx: PageCtx,
    company: String,
    company_link: String,
    rows: Vec<ListRow>,
}

async fn list(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(company): Path<String>) -> Result<ListPage, PageError> {
    let company: CompanyId = parse_id(&company)?;
    let c = service::company_ok(&state.db, &user.principal, company).await?;
    let apps = service::list(&state.db, &user.principal, company).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let rows = apps
        .iter()
        .map(|a| ListRow {
            link: format!("/companies/{company}/applications/{}", a.id),
            call: a.call_title.clone(),
            state: ctx.t(&format!("gap-state-{}", a.state.as_str())),
            protocol: a.receipt.as_ref().map(|r| r.protocol),
            at: a.receipt.as_ref().map(|r| format_seconds(r.submitted_at)).unwrap_or_default(),
            amount: Cents(a.requested_cents).to_string(),
        })
        .collect();
    Ok(ListPage { company: c.name, company_link: format!("/companies/{company}"), rows, ctx })
}

// ---------------------------------------------------------------------------------------------------------------
// The application's page

#[derive(Template, WebTemplate)]
#[template(path = "grants_application.html")]
struct AppPage {
    ctx: PageCtx,
    base: String,
    company: String,
    company_link: String,
    call: String,
    call_link: String,
    state: String,
    draft: bool,
    can_withdraw: bool,
    plan: String,
    declaration: bool,
    rows: Vec<RowView>,
    row_count: usize,
    can_add_rows: bool,
    attachments: Vec<AttachmentView>,
    files_hint: String,
    requested: String,
    eligible: String,
    err_plan: Option<String>,
    err_expenses: Option<String>,
    err_declaration: Option<String>,
    company_problems: Vec<String>,
    summary: Vec<SummaryItem>,
    /// The idempotency key of this form's submission.
    key: String,
    /// `upcoming`, `open` or `closed`.
    phase: &'static str,
    opens: String,
    closes: String,
    notice: Option<String>,
    alert: Option<String>,
    receipt: Option<ReceiptView>,
    /// Read-only view of a submitted or withdrawn application.
    expenses_ro: Vec<(String, String, String)>,
    review_link: String,
}

/// What the form sent, as typed.
#[derive(Default)]
struct Typed {
    plan: String,
    declaration: bool,
    /// (category, description, amount as typed), blank rows dropped.
    rows: Vec<(String, String, String)>,
    /// Rows asked for (typed plus blank).
    rows_wanted: usize,
    key: String,
    action: String,
    /// Attachment codes whose stored file is to be removed (not those replaced by a file sent with the form).
    remove: Vec<String>,
    /// Files of the form were stored as the draft's attachments.
    uploaded: bool,
}

/// What a page render needs besides the stored application.
#[derive(Default)]
struct Extra {
    typed: Option<Typed>,
    /// Errors to show besides the application's problems (an amount that is not one, a refused file).
    errors: FieldErrors,
    show_problems: bool,
    notice: Option<String>,
    alert: Option<String>,
    key: Option<String>,
    more_rows: usize,
}

async fn call_rules(state: &AppState, call: CallId) -> Result<(calls::CallRow, Rules), PageError> {
    let c = calls::get_published(&state.db, call).await.map_err(Error::from)?.ok_or_else(PageError::not_found)?;
    let rules: Rules = serde_json::from_str(&c.rules).map_err(|e| Error::Internal(format!("call rules: {e}")))?;
    Ok((c, rules))
}

async fn render(state: &AppState, rc: &RequestCtx, a: Application, extra: Extra) -> Result<AppPage, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let (call, rules) = call_rules(state, a.call_id).await?;
    let base = format!("/companies/{}/applications/{}", a.company_id, a.id);
    let now = clock::now();
    let phase = match crate::calls::model::phase(true, call.opens_at, call.closes_at, now) {
        Phase::Open => "open",
        Phase::Closed => "closed",
        _ => "upcoming",
    };
    let categories: Vec<(String, String)> = rules.categories.iter().map(|c| (c.code.clone(), c.label.clone())).collect();
    let att_labels: Vec<(String, String)> = rules.required_attachments.iter().map(|x| (x.code.clone(), x.label.clone())).collect();
    // The errors shown: the draft's problems (when asked for) and the form's own.
    let mut errors = FieldErrors::new();
    for e in &extra.errors.0 {
        errors.add(&e.field, &e.code);
    }
    if extra.show_problems {
        for e in &a.problems {
            if errors.get(&e.field).is_none() {
                errors.add(&e.field, &e.code);
            }
        }
    }
    let err = |f: &str| errors.get(f).map(|c| problem_text(&ctx, c));
    let typed_rows: Vec<(String, String, String)> = match &extra.typed {
        Some(t) => t.rows.clone(),
        None => a
            .draft
            .expenses
            .iter()
            .map(|x| (x.category.clone(), x.description.clone(), x.amount_cents.map(amount_text).unwrap_or_default()))
            .collect(),
    };
    let wanted = extra.typed.as_ref().map_or(0, |t| t.rows_wanted);
    let row_count = (typed_rows.len() + BLANK_ROWS + extra.more_rows).max(wanted).min(LINES_MAX);
    let rows = (0..row_count.max(typed_rows.len()))
        .map(|i| {
            let (cat, desc, amount) = typed_rows.get(i).cloned().unwrap_or_default();
            let mut choices = vec![Choice { value: String::new(), label: ctx.t("gap-choose"), selected: cat.is_empty() }];
            choices.extend(categories.iter().map(|(c, l)| Choice { value: c.clone(), label: l.clone(), selected: *c == cat }));
            if !cat.is_empty() && !categories.iter().any(|(c, _)| *c == cat) {
                choices.push(Choice { value: cat.clone(), label: cat.clone(), selected: true });
            }
            RowView {
                idx: i,
                categories: choices,
                description: desc,
                amount,
                err_category: err(&format!("expenses.{i}.category")),
                err_description: err(&format!("expenses.{i}.description")),
                err_amount: err(&format!("expenses.{i}.amount_cents")),
            }
        })
        .collect::<Vec<_>>();
    let err_expenses = errors
        .0
        .iter()
        .find(|e| e.field == "expenses" || e.field.starts_with("expenses.category."))
        .map(|e| format!("{}: {}", field_label(&ctx, &e.field, &categories, &att_labels), problem_text(&ctx, &e.code)));
    let attachments = rules
        .required_attachments
        .iter()
        .map(|r| AttachmentView {
            code: r.code.clone(),
            id: format!("f-attachments-{}", id_part(&r.code)),
            label: r.label.clone(),
            file: a.draft.attachments.iter().find(|f| f.code == r.code).map(|f| StoredFile {
                name: f.name.clone(),
                size: human_size(f.size),
                sha256: f.sha256.clone(),
                link: format!("{base}/attachments/{}", r.code),
            }),
            error: err(&format!("attachments.{}", r.code)),
        })
        .collect();
    let company_problems = errors
        .0
        .iter()
        .filter(|e| e.field.starts_with("company."))
        .map(|e| format!("{}: {}", field_label(&ctx, &e.field, &categories, &att_labels), problem_text(&ctx, &e.code)))
        .collect();
    let summary = errors
        .0
        .iter()
        .map(|e| SummaryItem { anchor: anchor(&e.field), text: format!("{}: {}", field_label(&ctx, &e.field, &categories, &att_labels), problem_text(&ctx, &e.code)) })
        .collect();
    let expenses_ro = a
        .draft
        .expenses
        .iter()
        .map(|x| {
            let label = categories.iter().find(|(c, _)| *c == x.category).map_or(x.category.clone(), |(_, l)| l.clone());
            (label, x.description.clone(), x.amount_cents.map(|c| Cents(c).to_string()).unwrap_or_default())
        })
        .collect();
    let (plan, declaration) = match &extra.typed {
        Some(t) => (t.plan.clone(), t.declaration),
        None => (a.draft.plan.clone(), a.draft.declaration),
    };
    Ok(AppPage {
        company_link: format!("/companies/{}", a.company_id),
        company: a.company_name.clone(),
        call_link: format!("/calls/{}", a.call_id),
        call: a.call_title.clone(),
        state: ctx.t(&format!("gap-state-{}", a.state.as_str())),
        draft: a.state == AppState_::Draft,
        can_withdraw: a.state == AppState_::Submitted,
        plan,
        declaration,
        row_count: rows.len(),
        can_add_rows: rows.len() < LINES_MAX,
        rows,
        attachments,
        files_hint: ctx.t1("gap-files-hint", "size", &human_size(state.cfg.files.max_bytes as i64)),
        requested: Cents(a.requested_cents).to_string(),
        eligible: Cents(a.draft.expenses.iter().filter_map(|x| x.amount_cents).filter(|c| *c > 0).sum()).to_string(),
        err_plan: err("plan"),
        err_expenses,
        err_declaration: err("declaration"),
        company_problems,
        summary,
        key: extra.key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        phase,
        opens: clock::format_rome(call.opens_at),
        closes: clock::format_rome(call.closes_at),
        notice: extra.notice,
        alert: extra.alert,
        receipt: a.receipt.as_ref().map(|r| receipt_view(&ctx, r)),
        expenses_ro,
        review_link: format!("{base}/review"),
        base,
        ctx,
    })
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    rows: Option<usize>,
}

async fn page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<AppPage, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let a = service::get(&state.db, &user.principal, company, id).await?;
    let ctx_lang = rc.lang;
    let notice = ["saved", "withdrawn", "rows", "file-removed"].contains(&q.done.as_str()).then(|| ctx_lang.t(&format!("gap-notice-{}", q.done)));
    let extra = Extra { show_problems: q.done == "saved" || q.done == "rows", notice, more_rows: q.rows.unwrap_or(0).min(LINES_MAX), ..Default::default() };
    render(&state, &rc, a, extra).await
}

/// The draft form as sent, its files stored on the way as the draft's attachments (each on its own: a refused
/// file does not undo the others, and nothing else of the form can undo a stored file).
async fn read_form(state: &AppState, user: &CurrentUser, rc: &RequestCtx, company: CompanyId, id: ApplicationId, draft: bool, req: Request) -> Result<(Typed, FieldErrors), PageError> {
    let multipart = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut errors = FieldErrors::new();
    let mut uploaded: Vec<String> = Vec::new();
    if !multipart {
        let Form(f): Form<Vec<(String, String)>> = Form::from_request(req, state).await.map_err(|_| bad_form())?;
        fields = f;
    } else {
        let mut mp = Multipart::from_request(req, state).await.map_err(|_| bad_form())?;
        let limit = state.cfg.files.max_bytes;
        loop {
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(PageError::status(StatusCode::PAYLOAD_TOO_LARGE, "error-too-large")),
                Err(_) => return Err(bad_form()),
            };
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(code) = name.strip_prefix("file.") {
                let code = code.to_owned();
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
                match super::api::read_limited(&mut field, limit).await {
                    // A file input left empty still sends a part, without a name or bytes.
                    Ok(Some(data)) if data.is_empty() => {}
                    Ok(Some(_)) if !draft => {}
                    Ok(Some(data)) => {
                        match service::put_attachment(&state.db, &state.cfg.files, &user.actor(rc.ip.clone()), &user.principal, company, id, &code, &file_name, &ct, &data).await {
                            Ok(_) => uploaded.push(code.clone()),
                            Err(Error::Invalid(_)) => errors.add(&format!("attachments.{code}"), "file-too-large"),
                            Err(Error::NotFound) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Ok(None) => errors.add(&format!("attachments.{code}"), "file-too-large"),
                    Err(()) => return Err(bad_form()),
                }
                continue;
            }
            let text = field.text().await.map_err(|_| bad_form())?;
            // As `agilekit_web::input::reject_nul` does for urlencoded forms.
            if text.contains('\0') {
                return Err(bad_form());
            }
            fields.push((name, text));
        }
    }
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let wanted: usize = get("rows").trim().parse().unwrap_or(0);
    let mut rows = Vec::new();
    for i in 0..wanted.min(LINES_MAX + BLANK_ROWS) {
        let (c, d, a) = (get(&format!("category.{i}")), get(&format!("description.{i}")), get(&format!("amount.{i}")));
        if !(c.trim().is_empty() && d.trim().is_empty() && a.trim().is_empty()) {
            rows.push((c, d, a));
        }
    }
    let remove = fields.iter().filter(|(n, v)| n == "remove" && !uploaded.contains(v)).map(|(_, v)| v.clone()).collect();
    let typed = Typed { plan: get("plan"), declaration: !get("declaration").is_empty(), rows, rows_wanted: wanted, key: get("key"), action: get("action"), remove, uploaded: !uploaded.is_empty() };
    Ok((typed, errors))
}

/// The draft a form's rows make; amounts that are not amounts are errors (and stored empty).
fn draft_of(t: &Typed, errors: &mut FieldErrors) -> Draft {
    let expenses = t
        .rows
        .iter()
        .enumerate()
        .map(|(i, (c, d, a))| {
            let amount_cents = if a.trim().is_empty() {
                None
            } else {
                match Cents::parse(a) {
                    Ok(c) => Some(c.0),
                    Err(e) => {
                        errors.add(&format!("expenses.{i}.amount_cents"), e.code());
                        None
                    }
                }
            };
            Expense { category: c.trim().to_owned(), description: d.trim().to_owned(), amount_cents }
        })
        .collect();
    Draft { plan: t.plan.clone(), expenses, declaration: t.declaration, attachments: Vec::new() }
}

/// The draft form's buttons: save, add rows, remove an attachment, submit.
async fn act(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let p = &user.principal;
    // Someone with no business with the application stores nothing (404 before the form is read).
    let before = service::get(&state.db, p, company, id).await?;
    let is_draft = before.state == AppState_::Draft;
    let autosave = req.headers().get(AUTOSAVE).is_some_and(|v| v.as_bytes() == b"1");
    if autosave {
        return autosave_draft(&state, &user, &rc, company, id, &before, req).await;
    }
    let (typed, mut errors) = read_form(&state, &user, &rc, company, id, is_draft, req).await?;
    let base = format!("/companies/{company}/applications/{id}");
    let actor = user.actor(rc.ip.clone());
    if typed.action == "submit" {
        // The files just stored are part of the draft to submit.
        let before = if typed.uploaded { service::get(&state.db, p, company, id).await? } else { before };
        return submit(&state, &rt, &user, &rc, company, id, before, typed, errors).await;
    }
    if !is_draft {
        return Ok(see_other(&base));
    }
    let draft = draft_of(&typed, &mut errors);
    let saved = match service::save(&state.db, &actor, p, company, id, &draft).await {
        Ok(a) => a,
        Err(Error::Invalid(f)) => {
            for e in f.0 {
                errors.add(&e.field, &e.code);
            }
            service::get(&state.db, p, company, id).await?
        }
        Err(Error::Conflict(_)) => return Ok(see_other(&base)),
        Err(e) => return Err(e.into()),
    };
    for code in &typed.remove {
        match service::delete_attachment(&state.db, &actor, p, company, id, code).await {
            Ok(_) | Err(Error::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !errors.is_empty() {
        // Something typed could not be stored as typed: the page again, with everything as it was sent.
        let a = service::get(&state.db, p, company, id).await.unwrap_or(saved);
        let key = Some(typed.key.clone()).filter(|k| !k.is_empty());
        let extra = Extra { typed: Some(typed), errors, show_problems: true, key, ..Default::default() };
        let page = render(&state, &rc, a, extra).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if typed.action == "rows" {
        let more = typed.rows_wanted.saturating_sub(saved.draft.expenses.len()).saturating_sub(BLANK_ROWS) + BLANK_ROWS;
        return Ok(see_other(&format!("{base}?done=rows&rows={more}")));
    }
    Ok(see_other(&format!("{base}?done=saved")))
}

/// The header `draft-autosave.js` sends with its saves.
const AUTOSAVE: &str = "x-autosave";

/// A status with an empty body, for the script. Typed as HTML so that the shell's `error_pages` (which dresses bare
/// error statuses of page requests as full pages) leaves it as it is.
fn bare(status: StatusCode) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], "").into_response()
}

/// A save sent by the page's script while the person types (`X-Autosave: 1`): the draft stored as the Save button
/// stores it, answered with a bare status for the script to show: 204 stored; 422 something typed could not be
/// stored as typed (an amount that is not one: the rest is stored); 409 no longer a draft. It stores no file and
/// removes none (those wait for the Save button) and is only ever a save; an unchanged draft is not written again.
async fn autosave_draft(
    state: &AppState,
    user: &CurrentUser,
    rc: &RequestCtx,
    company: CompanyId,
    id: ApplicationId,
    before: &Application,
    req: Request,
) -> Result<Response, PageError> {
    if before.state != AppState_::Draft {
        return Ok(bare(StatusCode::CONFLICT));
    }
    // `draft: false`: files that came with it are read and dropped, not stored.
    let (typed, mut errors) = read_form(state, user, rc, company, id, false, req).await?;
    if typed.action != "save" {
        return Ok(bare(StatusCode::BAD_REQUEST));
    }
    let draft = draft_of(&typed, &mut errors);
    // Unchanged since the last save (a `change` after the pause that saved it): nothing to write.
    if errors.is_empty() && draft == (Draft { attachments: Vec::new(), ..before.draft.clone() }) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    match service::save(&state.db, &user.actor(rc.ip.clone()), &user.principal, company, id, &draft).await {
        Ok(_) => {}
        Err(Error::Invalid(f)) => {
            for e in f.0 {
                errors.add(&e.field, &e.code);
            }
        }
        Err(Error::Conflict(_)) => return Ok(bare(StatusCode::CONFLICT)),
        Err(e) => return Err(e.into()),
    }
    Ok(if errors.is_empty() { StatusCode::NO_CONTENT.into_response() } else { bare(StatusCode::UNPROCESSABLE_ENTITY) })
}

#[allow(clippy::too_many_arguments)]
async fn submit(
    state: &AppState,
    rt: &Runtime,
    user: &CurrentUser,
    rc: &RequestCtx,
    company: CompanyId,
    id: ApplicationId,
    before: Application,
    typed: Typed,
    mut errors: FieldErrors,
) -> Result<Response, PageError> {
    let p = &user.principal;
    let base = format!("/companies/{company}/applications/{id}");
    let key = typed.key.trim().to_owned();
    if key.is_empty() || key.len() > super::model::KEY_MAX {
        return Err(bad_form());
    }
    let lang = rc.lang;
    let refuse = |a: Application, typed: Typed, errors: FieldErrors, status: StatusCode, alert: String, show: bool| async move {
        let key = Some(typed.key.trim().to_owned());
        let extra = Extra { typed: Some(typed), errors, show_problems: show, alert: Some(alert), key, ..Default::default() };
        let page = render(state, rc, a, extra).await?;
        Ok::<Response, PageError>((status, page).into_response())
    };
    let mut a = before;
    if a.state == AppState_::Draft {
        // What was typed is saved first (only when it changed: the click day's submit stays one small write).
        let mut d = draft_of(&typed, &mut errors);
        d.attachments = a.draft.attachments.clone();
        let d_cmp = Draft { attachments: Vec::new(), ..d.clone() };
        let stored_cmp = Draft { attachments: Vec::new(), ..a.draft.clone() };
        if d_cmp != stored_cmp {
            match service::save(&state.db, &user.actor(rc.ip.clone()), p, company, id, &d).await {
                Ok(saved) => a = saved,
                Err(Error::Invalid(f)) => {
                    for e in f.0 {
                        errors.add(&e.field, &e.code);
                    }
                }
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !errors.is_empty() {
            return refuse(a, typed, errors, StatusCode::UNPROCESSABLE_ENTITY, lang.t("gap-alert-not-sent"), true).await;
        }
        let (call, _) = call_rules(state, a.call_id).await?;
        match crate::calls::model::phase(true, call.opens_at, call.closes_at, clock::now()) {
            Phase::Open => {}
            Phase::Closed => return refuse(a, typed, errors, StatusCode::CONFLICT, lang.t("gap-alert-closed"), false).await,
            _ => {
                let msg = lang.t_args("gap-alert-not-open", &[("when", clock::format_rome(call.opens_at))]);
                return refuse(a, typed, errors, StatusCode::CONFLICT, msg, false).await;
            }
        }
        if !a.problems.is_empty() {
            return refuse(a, typed, errors, StatusCode::UNPROCESSABLE_ENTITY, lang.t("gap-alert-not-sent"), true).await;
        }
    }
    let job = Job { company, application: id, key: key.clone(), actor: user.actor(rc.ip.clone()), public_url: state.cfg.public_url.clone() };
    match rt.sequencer.submit(job).await {
        Ok(_) => Ok(see_other(&format!("{base}/receipt"))),
        // Submitted by another key (another tab): its page shows the receipt.
        Err(Error::Conflict("already-submitted")) | Err(Error::Conflict("withdrawn")) => Ok(see_other(&base)),
        Err(Error::Conflict("call-not-open")) => {
            let (call, _) = call_rules(state, a.call_id).await?;
            let msg = lang.t_args("gap-alert-not-open", &[("when", clock::format_rome(call.opens_at))]);
            refuse(a, typed, errors, StatusCode::CONFLICT, msg, false).await
        }
        Err(Error::Conflict("call-closed")) => refuse(a, typed, errors, StatusCode::CONFLICT, lang.t("gap-alert-closed"), false).await,
        Err(Error::Invalid(f)) => {
            for e in f.0 {
                if errors.get(&e.field).is_none() {
                    errors.add(&e.field, &e.code);
                }
            }
            refuse(a, typed, errors, StatusCode::UNPROCESSABLE_ENTITY, lang.t("gap-alert-not-sent"), true).await
        }
        Err(Error::Throttled { retry_after_secs }) => {
            let msg = lang.t_args("gap-alert-throttled", &[("seconds", retry_after_secs.to_string())]);
            let mut r = refuse(a, typed, errors, StatusCode::TOO_MANY_REQUESTS, msg, false).await?;
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The receipt

#[derive(Template, WebTemplate)]
#[template(path = "grants_receipt.html")]
struct ReceiptPage {
    ctx: PageCtx,
    r: ReceiptView,
    base: String,
    withdrawn: bool,
}

async fn receipt_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((company, id)): Path<(String, String)>) -> Result<ReceiptPage, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let a = service::get(&state.db, &user.principal, company, id).await?;
    let r = a.receipt.ok_or_else(PageError::not_found)?;
    let ctx = PageCtx::build(&state, &rc).await;
    Ok(ReceiptPage { r: receipt_view(&ctx, &r), base: format!("/companies/{company}/applications/{id}"), withdrawn: a.state == AppState_::Withdrawn, ctx })
}

/// The receipt's lines, in both languages (a receipt may be shown to an office that reads either).
pub fn receipt_lines(r: &Receipt) -> Vec<super::pdf::Line> {
    use super::pdf::Line;
    let place = match r.place.as_deref() {
        Some("admitted") => "Ammessa nei limiti della dotazione / Admitted within the budget",
        Some("waiting") => "In lista d'attesa / On the waiting list",
        _ => "",
    };
    let mut lines = vec![
        Line::title("Ricevuta di protocollo"),
        Line::text("Application receipt"),
        Line::gap(),
        Line::label("Bando / Call"),
        Line::text(&r.call_title),
        Line::label("Impresa / Company"),
        Line::text(&r.company_name),
        Line::label("Numero di protocollo / Protocol number"),
        Line::text(r.protocol.to_string()),
        Line::label("Data e ora (Europe/Rome) / Time"),
        Line::text(format_seconds(r.submitted_at)),
        Line::label("Contributo richiesto / Grant requested"),
        Line::text(Cents(r.requested_cents).to_string()),
        Line::label("Impronta SHA-256 del contenuto inviato / SHA-256 of the submitted content"),
        Line::text(&r.sha256),
    ];
    if !place.is_empty() {
        lines.push(Line::label("Esito / Outcome"));
        lines.push(Line::text(place));
    }
    lines.push(Line::gap());
    lines.push(Line::text(format!("Domanda / Application: {}", r.application_id)));
    lines
}

async fn receipt_pdf(State(state): State<AppState>, SignedIn(user, _): SignedIn, Path((company, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let r = service::receipt(&state.db, &user.principal, company, id).await?;
    let bytes = super::pdf::page(&format!("Ricevuta protocollo {}", r.protocol), &receipt_lines(&r));
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"ricevuta-{}.pdf\"", r.protocol)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------------------------
// Withdrawal

#[derive(Template, WebTemplate)]
#[template(path = "grants_application_withdraw.html")]
struct WithdrawPage {
    ctx: PageCtx,
    r: ReceiptView,
    base: String,
}

async fn withdraw_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((company, id)): Path<(String, String)>) -> Result<WithdrawPage, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let a = service::get(&state.db, &user.principal, company, id).await?;
    if a.state != AppState_::Submitted {
        return Err(PageError::status(StatusCode::CONFLICT, "error-conflict"));
    }
    let r = a.receipt.ok_or_else(PageError::not_found)?;
    let ctx = PageCtx::build(&state, &rc).await;
    Ok(WithdrawPage { r: receipt_view(&ctx, &r), base: format!("/companies/{company}/applications/{id}"), ctx })
}

async fn withdraw(
    State(state): State<AppState>,
    Extension(rt): Extension<Runtime>,
    SignedIn(user, rc): SignedIn,
    Path((company, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    match service::withdraw(&state.db, &rt.durable, &user.actor(rc.ip.clone()), &user.principal, company, id).await {
        Ok(_) => Ok(see_other(&format!("/companies/{company}/applications/{id}?done=withdrawn"))),
        Err(Error::Conflict(_)) => Ok(see_other(&format!("/companies/{company}/applications/{id}"))),
        Err(e) => Err(e.into()),
    }
}

/// A required attachment's file, for the company's representatives.
async fn download(State(state): State<AppState>, SignedIn(user, _): SignedIn, Path((company, id, code)): Path<(String, String, String)>) -> Result<Response, PageError> {
    let (company, id): (CompanyId, ApplicationId) = (parse_id(&company)?, parse_id(&id)?);
    let (meta, data) = service::attachment(&state.db, &user.principal, company, id, &code).await?;
    Ok(super::api::download(&meta, data))
}

/// A submitted application's attachment, for the call's administrators and evaluators.
async fn staff_download(
    State(state): State<AppState>,
    SignedIn(user, _): SignedIn,
    Path((org, call, id, code)): Path<(String, String, String, String)>,
) -> Result<Response, PageError> {
    let (org, call, id): (agilekit_kernel::ids::OrgId, CallId, ApplicationId) = (parse_id(&org)?, parse_id(&call)?, parse_id(&id)?);
    let (meta, data) = service::attachment_for_staff(&state.db, &user.principal, org, call, id, &code).await?;
    Ok(super::api::download(&meta, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_point_at_their_fields() {
        assert_eq!(anchor("expenses.2.amount_cents"), "f-expenses-2-amount_cents");
        assert_eq!(anchor("expenses.category.strumenti"), "f-expenses");
        assert_eq!(anchor("company.de_minimis"), "f-company");
        assert_eq!(anchor("attachments.piano lavoro"), "f-attachments-piano-lavoro");
        assert_eq!(amount_text(750_000), "7.500,00");
    }

    #[test]
    fn typed_amounts_that_are_not_amounts_are_errors_and_blank_rows_drop() {
        let t = Typed {
            plan: "p".into(),
            declaration: true,
            rows: vec![("consulenza".into(), "Formazione".into(), "7.500,00".into()), ("strumenti".into(), "PC".into(), "tanti".into())],
            ..Default::default()
        };
        let mut e = FieldErrors::new();
        let d = draft_of(&t, &mut e);
        assert_eq!(d.expenses[0].amount_cents, Some(750_000));
        assert_eq!(d.expenses[1].amount_cents, None);
        assert_eq!(e.get("expenses.1.amount_cents"), Some("not-an-amount"));
    }
}
