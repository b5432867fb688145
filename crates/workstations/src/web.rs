//! The workstations' pages: the inventory of an organisation for its admins and HR (board, list with filters,
//! a workstation's form, CSV import with the problems shown row by row) and the employee's page (their
//! workstations and bookings, booking a pooled seat, the connection hand-off). Thin handlers over the service.

use agilekit_web::pages::{parse_id, see_other};
use std::collections::HashMap;
use std::sync::Arc;

use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors, clock};
use agilekit_web::AppState;
use agilekit_web::auth::{CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::Runtime;
use crate::api::ListQuery;
use crate::csvio::{self, RowError};
use crate::model::{BookingId, Mode, Protocol, Status, WorkstationId, WorkstationInput, rome_local};
use crate::service::{self, Access, Board, Booking, Workstation};
use crate::store::Filter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workstations", get(mine))
        .route("/orgs/{org_id}/workstations", get(inventory).post(create))
        .route("/orgs/{org_id}/workstations/import", post(import))
        .route("/orgs/{org_id}/workstations/book", post(book))
        .route("/orgs/{org_id}/workstations/{workstation}", get(edit).post(update))
        .route("/orgs/{org_id}/workstations/{workstation}/delete", post(delete))
        .route("/orgs/{org_id}/workstations/{workstation}/probe", post(probe))
        .route("/orgs/{org_id}/workstations/{workstation}/wake", post(wake))
        .route("/orgs/{org_id}/workstations/{workstation}/guacamole", get(guacamole))
        .route("/orgs/{org_id}/workstations/{workstation}/bookings/{booking}/cancel", post(cancel))
}

/// The localised text of a field error: this area's wording first, the shell's otherwise.
fn error_text(ctx: &PageCtx, code: &str) -> String {
    let key = format!("field-{code}");
    let t = ctx.t(&key);
    if t == key { ctx.t("error-invalid") } else { t }
}

/// One line of a form's error summary.
pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

fn summary(ctx: &PageCtx, errors: &FieldErrors, prefix: &str) -> Vec<SummaryItem> {
    errors
        .0
        .iter()
        .map(|e| SummaryItem {
            anchor: format!("{prefix}{}", e.field),
            text: format!("{}: {}", ctx.t(&format!("ws-label-{}", e.field)), error_text(ctx, &e.code)),
        })
        .collect()
}

/// The confirmation shown after a change; only known codes reach the page.
fn notice(ctx: &PageCtx, done: &str, n: &str) -> Option<String> {
    let key = match done {
        "created" => "ws-notice-created",
        "updated" => "ws-notice-updated",
        "deleted" => "ws-notice-deleted",
        "imported" => return Some(ctx.t1("ws-notice-imported", "count", &n.parse::<u32>().unwrap_or(0).to_string())),
        "probed" => "ws-notice-probed",
        "booked" => "ws-notice-booked",
        "cancelled" => "ws-notice-cancelled",
        "woken" => "ws-notice-woken",
        _ => return None,
    };
    Some(ctx.t(key))
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(ctx: &PageCtx, values: &[&str], label_prefix: &str, selected: &str, blank: Option<&str>) -> Vec<Choice> {
    let mut out: Vec<Choice> = blank
        .map(|b| Choice { value: String::new(), label: ctx.t(b), selected: selected.is_empty() })
        .into_iter()
        .collect();
    out.extend(values.iter().map(|v| Choice {
        value: (*v).to_owned(),
        label: ctx.t(&format!("{label_prefix}{v}")),
        selected: selected.eq_ignore_ascii_case(v),
    }));
    out
}

/// A workstation as a table row shows it.
pub struct Row {
    pub id: WorkstationId,
    pub hostname: String,
    pub address: String,
    pub endpoint: String,
    pub location: String,
    pub os: String,
    pub mode: String,
    pub assignee: String,
    pub status: String,
    pub status_class: &'static str,
    pub last_probe: String,
    pub is_rdp: bool,
    pub has_mac: bool,
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Online => "badge bg-success",
        Status::Offline => "badge bg-danger",
        Status::Unknown => "badge bg-secondary",
    }
}

fn row(ctx: &PageCtx, w: &Workstation) -> Row {
    Row {
        id: w.id,
        hostname: w.hostname.clone(),
        address: w.address.clone().unwrap_or_default(),
        endpoint: format!("{} {}", w.protocol.as_str().to_uppercase(), w.port),
        location: w.location.clone().unwrap_or_default(),
        os: w.os.clone().unwrap_or_default(),
        mode: ctx.t(&format!("ws-mode-{}", w.mode.as_str())),
        assignee: w.assignee.as_ref().map(|a| format!("{} ({})", a.display_name, a.email)).unwrap_or_default(),
        status: ctx.t(&format!("ws-status-{}", w.status.as_str())),
        status_class: status_class(w.status),
        last_probe: ctx.format_opt_time(&w.last_probe_at),
        is_rdp: w.protocol == Protocol::Rdp,
        has_mac: w.mac.is_some(),
    }
}

/// The values a workstation form shows: what was typed, or the workstation's.
fn input_of(w: &Workstation) -> WorkstationInput {
    WorkstationInput {
        hostname: w.hostname.clone(),
        address: w.address.clone().unwrap_or_default(),
        protocol: w.protocol.as_str().to_owned(),
        port: w.port.to_string(),
        os: w.os.clone().unwrap_or_default(),
        location: w.location.clone().unwrap_or_default(),
        tags: w.tags.join(" "),
        mac: w.mac.clone().unwrap_or_default(),
        mode: w.mode.as_str().to_owned(),
        assignee: w.assignee.as_ref().map(|a| a.email.clone()).unwrap_or_default(),
    }
}

/// The choices of a workstation form's selects.
pub struct FormChoices {
    pub protocols: Vec<Choice>,
    pub modes: Vec<Choice>,
}

fn form_choices(ctx: &PageCtx, input: &WorkstationInput) -> FormChoices {
    FormChoices {
        protocols: choices(ctx, &["rdp", "vnc", "ssh"], "ws-protocol-", if input.protocol.is_empty() { "rdp" } else { &input.protocol }, None),
        modes: choices(ctx, &["pooled", "dedicated"], "ws-mode-", if input.mode.is_empty() { "pooled" } else { &input.mode }, None),
    }
}

async fn page_access(state: &AppState, user: &CurrentUser, org: OrgId) -> Result<Access, PageError> {
    Ok(service::access(&state.db, &user.principal, org).await?)
}

// ---------------------------------------------------------------------------------------------------------------
// The inventory (admins and HR)

#[derive(Template, WebTemplate)]
#[template(path = "workstations_inventory.html")]
struct InventoryPage {
    ctx: PageCtx,
    org_id: OrgId,
    org_name: String,
    can_manage: bool,
    board: Board,
    rows: Vec<Row>,
    next: Option<String>,
    filter_q: String,
    statuses: Vec<Choice>,
    modes: Vec<Choice>,
    filter_errors: FieldErrors,
    notice: Option<String>,
    form: WorkstationInput,
    form_choices: FormChoices,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    import_errors: Vec<ImportLine>,
    import_error_count: usize,
    import_columns: String,
    query_base: String,
}

/// A problem of an import file, as the page lists it.
pub struct ImportLine {
    pub row: u64,
    pub column: String,
    pub problem: String,
}

#[derive(Deserialize, Default)]
struct InventoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
    #[serde(default)]
    n: String,
}

/// What a failed form or import brings back to the inventory page.
#[derive(Default)]
struct Typed {
    form: WorkstationInput,
    errors: FieldErrors,
    import: Vec<RowError>,
    import_count: usize,
}

async fn render_inventory(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    q: &InventoryQuery,
    typed: Typed,
) -> Result<Response, PageError> {
    let a = page_access(state, user, org).await?;
    a.require_view_all()?;
    let ctx = PageCtx::build(state, rc).await;
    let org_name = agilekit_kernel::tenancy::get(&state.db, org).await?.name;
    let board = service::board(&state.db, &user.principal, org).await?;
    let lq = ListQuery::from_parts(&q.status, &q.mode, &q.q, &q.after);
    let (filter, filter_errors) = match crate::api::parse_filter(&lq) {
        Ok((f, _)) => (f, FieldErrors::new()),
        Err(e) => (Filter::default(), e),
    };
    let page = service::list(&state.db, &user.principal, org, filter, 50).await?;
    let rows = page.items.iter().map(|w| row(&ctx, w)).collect();
    let query_base = {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", q.q.trim()).append_pair("status", q.status.trim()).append_pair("mode", q.mode.trim());
        s.finish()
    };
    let status_values: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let mode_values: Vec<&str> = Mode::ALL.iter().map(|s| s.as_str()).collect();
    let statuses = choices(&ctx, &status_values, "ws-status-", q.status.trim(), Some("ws-filter-any"));
    let modes = choices(&ctx, &mode_values, "ws-mode-", q.mode.trim(), Some("ws-filter-any"));
    let summary = summary(&ctx, &typed.errors, "f-");
    let import_errors = typed
        .import
        .iter()
        .map(|e| ImportLine { row: e.row, column: e.column.clone(), problem: error_text(&ctx, &e.code) })
        .collect();
    let form_choices = form_choices(&ctx, &typed.form);
    let notice = notice(&ctx, &q.done, &q.n);
    let status = if typed.errors.is_empty() && typed.import.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = InventoryPage {
        ctx, org_id: org, org_name, can_manage: a.manage, board, rows, next: page.next, filter_q: q.q.clone(), statuses,
        modes, filter_errors, notice, form: typed.form, form_choices, errors: typed.errors, summary, import_errors,
        import_error_count: typed.import_count, import_columns: csvio::COLUMNS.join(","), query_base,
    };
    Ok((status, page).into_response())
}

async fn inventory(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Query(q): Query<InventoryQuery>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    render_inventory(&state, &rc, &user, org, &q, Typed::default()).await
}

async fn create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Form(f): Form<WorkstationInput>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    let actor = user.actor(rc.ip.clone());
    match service::create(&state.db, &actor, &user.principal, org, &f).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/workstations?done=created"))),
        Err(Error::Invalid(errors)) => {
            render_inventory(&state, &rc, &user, org, &InventoryQuery::default(), Typed { form: f, errors, ..Default::default() }).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The largest file the import form takes (the request body limit applies first).
const MAX_UPLOAD: usize = 4 * 1024 * 1024;

async fn import(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    page_access(&state, &user, org).await?.require_manage()?;
    let mut multipart = multipart.map_err(|_| PageError::status(StatusCode::BAD_REQUEST, "error-invalid"))?;
    let mut file: Option<Vec<u8>> = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("file") {
            match field.bytes().await {
                Ok(b) if b.len() <= MAX_UPLOAD => file = Some(b.to_vec()),
                _ => return Err(PageError::status(StatusCode::PAYLOAD_TOO_LARGE, "error-too-large")),
            }
        }
    }
    let bytes = file.unwrap_or_default();
    let actor = user.actor(rc.ip.clone());
    let report = service::import_csv(&state.db, &actor, &user.principal, org, &bytes).await?;
    if report.errors.is_empty() {
        return Ok(see_other(&format!("/orgs/{org}/workstations?done=imported&n={}", report.imported)));
    }
    let typed = Typed { import: report.errors, import_count: report.error_count, ..Default::default() };
    render_inventory(&state, &rc, &user, org, &InventoryQuery::default(), typed).await
}

// ---------------------------------------------------------------------------------------------------------------
// One workstation (admins and HR)

#[derive(Template, WebTemplate)]
#[template(path = "workstations_edit.html")]
struct EditPage {
    ctx: PageCtx,
    org_id: OrgId,
    ws: Row,
    can_manage: bool,
    form: WorkstationInput,
    form_choices: FormChoices,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    history: Vec<HistoryLine>,
    bookings: Vec<BookingLine>,
    notice: Option<String>,
    next: String,
}

pub struct HistoryLine {
    pub at: String,
    pub status: String,
    pub status_class: &'static str,
    pub detail: String,
}

pub struct BookingLine {
    pub is_rdp: bool,
    pub id: BookingId,
    pub workstation_id: WorkstationId,
    pub hostname: String,
    pub when: String,
    pub who: String,
    pub now: bool,
}

fn booking_line(ctx: &PageCtx, b: &Booking, now: OffsetDateTime, is_rdp: bool) -> BookingLine {
    let end = clock::format_rome(b.ends_at);
    let same_day = clock::format_rome(b.starts_at).get(..10) == end.get(..10);
    BookingLine {
        is_rdp,
        id: b.id,
        workstation_id: b.workstation_id,
        hostname: b.hostname.clone(),
        when: format!("{} – {}", ctx.format_time(&b.starts_at), if same_day { end.get(11..).unwrap_or(&end).to_owned() } else { end.clone() }),
        who: b.account.as_ref().map(|a| a.display_name.clone()).unwrap_or_default(),
        now: b.starts_at <= now && now < b.ends_at,
    }
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

async fn render_edit(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    id: WorkstationId,
    typed: Option<(WorkstationInput, FieldErrors)>,
    done: &str,
) -> Result<Response, PageError> {
    let a = page_access(state, user, org).await?;
    a.require_view_all()?;
    let w = service::get(&state.db, &user.principal, org, id).await?;
    let ctx = PageCtx::build(state, rc).await;
    let history = service::history(&state.db, &user.principal, org, id)
        .await?
        .iter()
        .map(|h| HistoryLine {
            at: ctx.format_time(&h.at),
            status: ctx.t(&format!("ws-status-{}", h.status.as_str())),
            status_class: status_class(h.status),
            detail: match (&h.latency_ms, &h.error) {
                (Some(ms), _) => format!("{ms} ms"),
                (None, Some(e)) => e.clone(),
                _ => String::new(),
            },
        })
        .collect();
    let now = clock::now();
    let bookings = service::bookings(&state.db, &user.principal, org, Some(id), None, None, false)
        .await?
        .iter()
        .map(|b| booking_line(&ctx, b, now, w.protocol == Protocol::Rdp))
        .collect();
    let invalid = typed.is_some();
    let (form, errors) = typed.unwrap_or_else(|| (input_of(&w), FieldErrors::new()));
    let summary = summary(&ctx, &errors, "f-");
    let form_choices = form_choices(&ctx, &form);
    let notice = notice(&ctx, done, "");
    let page = EditPage {
        ws: row(&ctx, &w), ctx, org_id: org, can_manage: a.manage, form, form_choices, errors, summary, history, bookings, notice,
        next: format!("/orgs/{org}/workstations/{id}"),
    };
    Ok((if invalid { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, page).into_response())
}

async fn edit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
    Query(d): Query<Done>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    render_edit(&state, &rc, &user, org, id, None, &d.done).await
}

async fn update(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
    Form(f): Form<WorkstationInput>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    let actor = user.actor(rc.ip.clone());
    match service::update(&state.db, &actor, &user.principal, org, id, &f).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/workstations/{id}?done=updated"))),
        Err(Error::Invalid(errors)) => render_edit(&state, &rc, &user, org, id, Some((f, errors)), "").await,
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    service::delete(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id).await?;
    Ok(see_other(&format!("/orgs/{org}/workstations?done=deleted")))
}

async fn probe(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    SignedIn(user, _): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    service::probe_now(&state.db, &rt, &user.principal, org, id).await?;
    Ok(see_other(&format!("/orgs/{org}/workstations/{id}?done=probed")))
}

// ---------------------------------------------------------------------------------------------------------------
// The employee's page

#[derive(Template, WebTemplate)]
#[template(path = "workstations_mine.html")]
struct MinePage {
    ctx: PageCtx,
    org: Option<(OrgId, String)>,
    mine: Vec<Row>,
    bookings: Vec<BookingLine>,
    pool: Vec<Choice>,
    pool_size: usize,
    guacamole: bool,
    can_view_all: bool,
    form: BookForm,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct BookForm {
    #[serde(default)]
    workstation: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
}

async fn render_mine(
    state: &AppState,
    rt: &Runtime,
    rc: &RequestCtx,
    user: &CurrentUser,
    typed: Option<(BookForm, FieldErrors)>,
    done: &str,
) -> Result<Response, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let today = clock::to_rome(clock::now()).date().to_string();
    let invalid = typed.is_some();
    let (form, errors) = typed.unwrap_or_else(|| (BookForm { date: today, ..Default::default() }, FieldErrors::new()));
    let summary = summary(&ctx, &errors, "f-");
    let notice = notice(&ctx, done, "");
    let mut page = MinePage {
        org: None, mine: Vec::new(), bookings: Vec::new(), pool: Vec::new(), pool_size: 0, guacamole: rt.guacamole.is_some(),
        can_view_all: false, form, errors, summary, notice, ctx,
    };
    if let Some(o) = page.ctx.current_org.clone()
        && let Ok(a) = service::access(&state.db, &user.principal, o.id).await
    {
        let me = user.principal.id();
        let filter = Filter { assignee: Some(me), ..Default::default() };
        let mine = service::list(&state.db, &user.principal, o.id, filter, 500).await?;
        page.mine = mine.items.iter().map(|w| row(&page.ctx, w)).collect();
        let now = clock::now();
        let pool = service::list(&state.db, &user.principal, o.id, Filter { mode: Some(Mode::Pooled), ..Default::default() }, 500).await?;
        let rdp: HashMap<WorkstationId, bool> = pool.items.iter().map(|w| (w.id, w.protocol == Protocol::Rdp)).collect();
        let bookings = service::bookings(&state.db, &user.principal, o.id, None, None, None, true).await?;
        page.bookings = bookings.iter().map(|b| booking_line(&page.ctx, b, now, rdp.get(&b.workstation_id).copied().unwrap_or(false))).collect();
        page.pool_size = pool.items.len();
        let chosen = page.form.workstation.clone();
        page.pool = std::iter::once(Choice { value: String::new(), label: page.ctx.t("ws-choose"), selected: chosen.is_empty() })
            .chain(pool.items.iter().map(|w| Choice {
                value: w.id.to_string(),
                label: format!("{}{} · {}", w.hostname, w.location.as_ref().map(|l| format!(" · {l}")).unwrap_or_default(),
                    page.ctx.t(&format!("ws-status-{}", w.status.as_str()))),
                selected: chosen == w.id.to_string(),
            }))
            .collect();
        page.can_view_all = a.view_all;
        page.org = Some((o.id, o.name.clone()));
    }
    Ok((if invalid { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, page).into_response())
}

async fn mine(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    SignedIn(user, rc): SignedIn,
    Query(d): Query<Done>,
) -> Result<Response, PageError> {
    render_mine(&state, &rt, &rc, &user, None, &d.done).await
}

/// A date and two times on Rome's clock, as the form gives them, into RFC 3339 instants.
fn slot_from_form(f: &BookForm, errors: &mut FieldErrors) -> Option<(String, String)> {
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    let time_fmt = time::macros::format_description!("[hour]:[minute]");
    let date = time::Date::parse(f.date.trim(), &date_fmt).map_err(|_| errors.add("date", if f.date.trim().is_empty() { "required" } else { "format" })).ok();
    let mut t = |field: &str, v: &str| {
        let v = v.trim();
        // Browsers send "08:00", or "08:00:00" when the step allows seconds.
        let v = if v.len() == 8 && v.ends_with(":00") { &v[..5] } else { v };
        time::Time::parse(v, &time_fmt).map_err(|_| errors.add(field, if v.is_empty() { "required" } else { "format" })).ok()
    };
    let (start, end) = (t("starts_at", &f.starts_at), t("ends_at", &f.ends_at));
    let (date, start, end) = (date?, start?, end?);
    let fmt = |x: OffsetDateTime| x.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    Some((fmt(rome_local(date, start)), fmt(rome_local(date, end))))
}

async fn book(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    Form(f): Form<BookForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org_id)?;
    page_access(&state, &user, org).await?;
    let mut errors = FieldErrors::new();
    let ws: Option<WorkstationId> = f.workstation.trim().parse().ok();
    if ws.is_none() {
        errors.add("workstation", "required");
    }
    let slot = slot_from_form(&f, &mut errors);
    let (Some(ws), Some((start, end))) = (ws, slot) else {
        return render_mine(&state, &rt, &rc, &user, Some((f, errors)), "").await;
    };
    let actor = user.actor(rc.ip.clone());
    let req = service::BookRequest { starts_at: &start, ends_at: &end, account: None };
    match service::book(&state.db, &actor, &user.principal, org, ws, req).await {
        Ok(_) => Ok(see_other("/workstations?done=booked")),
        Err(Error::Invalid(errors)) => render_mine(&state, &rt, &rc, &user, Some((f, errors)), "").await,
        // The seat was made dedicated or removed meanwhile: say so on the field.
        Err(Error::Conflict(_)) | Err(Error::NotFound) => {
            let mut errors = FieldErrors::new();
            errors.add("workstation", crate::model::codes::NOT_POOLED);
            render_mine(&state, &rt, &rc, &user, Some((f, errors)), "").await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct NextForm {
    #[serde(default)]
    next: String,
}

fn back(next: &str, done: &str) -> String {
    let next = agilekit_web::pages::safe_next(next);
    let next = if next == "/" { "/workstations" } else { next };
    let sep = if next.contains('?') { '&' } else { '?' };
    format!("{next}{sep}done={done}")
}

async fn cancel(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws, booking)): Path<(String, String, String)>,
    Form(f): Form<NextForm>,
) -> Result<Response, PageError> {
    let (org, ws, id): (OrgId, WorkstationId, BookingId) = (parse_id(&org_id)?, parse_id(&ws)?, parse_id(&booking)?);
    service::cancel(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, ws, id).await?;
    Ok(see_other(&back(&f.next, "cancelled")))
}

async fn wake(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
    Form(f): Form<NextForm>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    service::wake(&state.db, &rt, &user.actor(rc.ip.clone()), &user.principal, org, id).await?;
    Ok(see_other(&back(&f.next, "woken")))
}

/// Opens the workstation through Guacamole: a redirect to a freshly signed link (it expires in minutes, so it is
/// made when followed, not when the page is shown).
async fn guacamole(
    State(state): State<AppState>,
    Extension(rt): Extension<Arc<Runtime>>,
    SignedIn(user, rc): SignedIn,
    Path((org_id, ws)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, WorkstationId) = (parse_id(&org_id)?, parse_id(&ws)?);
    let (link, _) = service::guacamole_link(&state.db, &rt, &user.actor(rc.ip.clone()), &user.principal, org, id).await?;
    Ok(see_other(&link))
}
