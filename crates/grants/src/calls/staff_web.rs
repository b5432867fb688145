//! The staff's pages of calls: list, editor, publication, FAQ, budget, applications received, open data.
//!
//! `/orgs/{org}/calls` for an organisation's administrators (the organisation must have the grants service: the
//! service checks it). The editor is one plain form whose inputs are named by the API's field paths
//! (`grant_rule.bands.1.min_employees`), so every error the model gives lands beside its field; repeated rows are
//! indexed fields with a few blank rows and an "add rows" submit that re-renders with more. No JavaScript.

use agilekit_web::pages::{parse_id, see_other};
use std::collections::HashMap;

use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, FieldErrors};
use agilekit_web::AppState;
use agilekit_web::auth::{RequestCtx, SignedIn};
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

use super::model::{Attachment, CallId, CallInput, Category, Criterion, DocumentId, EligibilityInput, FaqId, FaqInput, Phase};
use super::service::{self, Call};
use crate::applications::service as applications;
use crate::model::{Band, Cents, GrantRule};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/calls", get(list_page))
        .route("/orgs/{org}/calls/new", get(new_page).post(new_save))
        .route("/orgs/{org}/calls/{call}", get(call_page).post(call_save))
        .route("/orgs/{org}/calls/{call}/publish", get(publish_page).post(publish_save))
        .route("/orgs/{org}/calls/{call}/faqs", post(faq_add))
        .route("/orgs/{org}/calls/{call}/faqs/{faq}", post(faq_edit))
        .route("/orgs/{org}/calls/{call}/faqs/{faq}/delete", post(faq_delete))
        .route("/orgs/{org}/calls/{call}/budget", post(budget_save))
        .route("/orgs/{org}/calls/{call}/applications", get(applications_page))
        .route("/orgs/{org}/calls/{call}/applications.csv", get(applications_csv))
        .route("/orgs/{org}/calls/{call}/opendata", post(opendata_publish))
        // The document form takes a file: the extractors' own limit off; the outer layers cap a multipart body at the
        // uploads' limit; the file is held to `[files] max_bytes`.
        .route("/orgs/{org}/calls/{call}/documents", post(document_add).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/orgs/{org}/calls/{call}/documents/{document}", get(document_download))
        .route("/orgs/{org}/calls/{call}/documents/{document}/delete", post(document_delete))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// The message of an error code: this area's own wording, else the shell's, else a generic one.
pub fn message(ctx: &PageCtx, code: &str) -> String {
    for key in [format!("gst-e-{code}"), format!("field-{code}")] {
        let t = ctx.t(&key);
        if t != key {
            return t;
        }
    }
    ctx.t("error-invalid")
}

/// A line of a form's error summary.
pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

/// One input: its name is the API's field path, its id `f-` and the path with dashes.
pub struct F {
    pub name: String,
    pub id: String,
    pub label: String,
    pub value: String,
    pub error: Option<String>,
    pub kind: &'static str,
    pub help: Option<String>,
}

/// Repeated rows (bands, categories, attachments, criteria) as a table of indexed inputs.
pub struct Table {
    pub group: String,
    pub id: String,
    pub caption: String,
    pub heads: Vec<String>,
    pub rows: Vec<Vec<F>>,
    pub error: Option<String>,
    pub count: usize,
}

pub fn id_of(name: &str) -> String {
    format!("f-{}", name.replace('.', "-"))
}

fn rome_seconds(t: time::OffsetDateTime) -> String {
    let r = agilekit_kernel::clock::to_rome(t);
    format!("{:02}/{:02}/{} {:02}:{:02}:{:02}", r.day(), r.month() as u8, r.year(), r.hour(), r.minute(), r.second())
}

/// A Rome local date-time as a `datetime-local` input shows it.
fn local_input(t: time::OffsetDateTime) -> String {
    let r = agilekit_kernel::clock::to_rome(t);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}", r.year(), r.month() as u8, r.day(), r.hour(), r.minute())
}

/// Money as people type it in Italy, without the euro sign: `7.500,00`.
fn money_input(c: Cents) -> String {
    c.to_string().trim_end_matches(" €").to_owned()
}

/// Basis points as a percentage typed in Italian: `33,33`, `50`.
fn percent_input(bp: u32) -> String {
    if bp.is_multiple_of(100) { (bp / 100).to_string() } else { format!("{},{:02}", bp / 100, bp % 100) }
}

// ---------------------------------------------------------------------------------------------------------------
// The editor's form

type Values = HashMap<String, String>;

/// Rows of each list the form shows.
#[derive(Clone, Copy)]
struct Counts {
    bands: usize,
    categories: usize,
    attachments: usize,
    criteria: usize,
}

const MORE: usize = 3;
const MAX_ROWS: usize = super::model::LIST_MAX;

impl Counts {
    fn blank() -> Counts {
        Counts { bands: 4, categories: 3, attachments: 2, criteria: 3 }
    }
    fn of(v: &Values) -> Counts {
        let n = |k: &str, d: usize| v.get(k).and_then(|s| s.trim().parse::<usize>().ok()).unwrap_or(d).clamp(1, MAX_ROWS);
        let b = Counts::blank();
        Counts { bands: n("rows.bands", b.bands), categories: n("rows.categories", b.categories), attachments: n("rows.attachments", b.attachments), criteria: n("rows.criteria", b.criteria) }
    }
    fn more(self) -> Counts {
        let m = |n: usize| (n + MORE).min(MAX_ROWS);
        Counts { bands: m(self.bands), categories: m(self.categories), attachments: m(self.attachments), criteria: m(self.criteria) }
    }
    /// Room for what a call holds plus a couple of blank rows.
    fn for_call(c: &Call) -> Counts {
        let bands = match &c.grant_rule {
            GrantRule::Bands { bands } => bands.len(),
            GrantRule::Share { .. } => 0,
        };
        let r = |n: usize, min: usize| (n + 2).max(min).min(MAX_ROWS);
        let b = Counts::blank();
        Counts { bands: r(bands, b.bands), categories: r(c.categories.len(), b.categories), attachments: r(c.required_attachments.len(), b.attachments), criteria: r(c.criteria.len(), b.criteria) }
    }
}

fn values_of(c: &Call) -> Values {
    let mut v = Values::new();
    v.insert("title".into(), c.title.clone());
    v.insert("summary".into(), c.summary.clone());
    v.insert("body".into(), c.body.clone());
    v.insert("budget".into(), money_input(Cents(c.budget_cents)));
    v.insert("mode".into(), c.mode.as_str().into());
    match &c.grant_rule {
        GrantRule::Bands { bands } => {
            v.insert("grant_rule.kind".into(), "bands".into());
            for (i, b) in bands.iter().enumerate() {
                v.insert(format!("grant_rule.bands.{i}.min_employees"), b.min_employees.to_string());
                v.insert(format!("grant_rule.bands.{i}.max_employees"), b.max_employees.map(|m| m.to_string()).unwrap_or_default());
                v.insert(format!("grant_rule.bands.{i}.amount"), money_input(b.amount));
            }
        }
        GrantRule::Share { basis_points, cap } => {
            v.insert("grant_rule.kind".into(), "share".into());
            v.insert("grant_rule.basis_points".into(), percent_input(*basis_points));
            v.insert("grant_rule.cap".into(), money_input(*cap));
        }
    }
    for (i, k) in c.categories.iter().enumerate() {
        v.insert(format!("categories.{i}.code"), k.code.clone());
        v.insert(format!("categories.{i}.label"), k.label.clone());
        v.insert(format!("categories.{i}.max_share_bp"), k.max_share_bp.map(percent_input).unwrap_or_default());
    }
    let e = &c.eligibility;
    v.insert("eligibility.min_employees".into(), e.min_employees.to_string());
    v.insert("eligibility.max_employees".into(), e.max_employees.map(|m| m.to_string()).unwrap_or_default());
    v.insert("eligibility.excluded_sectors".into(), e.excluded_sectors.join(", "));
    v.insert("eligibility.site_region".into(), e.site_region.clone().unwrap_or_default());
    for (i, a) in c.required_attachments.iter().enumerate() {
        v.insert(format!("required_attachments.{i}.code"), a.code.clone());
        v.insert(format!("required_attachments.{i}.label"), a.label.clone());
    }
    v.insert("opens_at".into(), local_input(c.opens_at));
    v.insert("closes_at".into(), local_input(c.closes_at));
    if c.de_minimis {
        v.insert("de_minimis".into(), "1".into());
    }
    for (i, k) in c.criteria.iter().enumerate() {
        v.insert(format!("criteria.{i}.code"), k.code.clone());
        v.insert(format!("criteria.{i}.label"), k.label.clone());
        v.insert(format!("criteria.{i}.max_points"), k.max_points.to_string());
    }
    v.insert("tie_breaks".into(), c.tie_breaks.join(", "));
    v
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// Reads the submitted form into the API's input. What the form cannot read (a number that is not one, an amount
/// that is not money) is a field error here with a harmless stand-in; blank rows are left out, and `renames` maps the
/// API's row indexes back to the form's rows.
fn input_of(v: &Values, n: Counts) -> (CallInput, FieldErrors, Vec<(String, String)>) {
    let mut errs = FieldErrors::new();
    let mut renames = Vec::new();
    let get = |k: &str| v.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let uint = |k: &str, required: bool, errs: &mut FieldErrors| -> Option<u32> {
        let s = get(k);
        if s.is_empty() {
            if required {
                errs.add(k, "required");
            }
            return None;
        }
        match s.parse::<u32>() {
            Ok(x) => Some(x),
            Err(_) => {
                errs.add(k, "format");
                None
            }
        }
    };
    let money = |k: &str, errs: &mut FieldErrors| -> Option<Cents> {
        match Cents::parse(&get(k)) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.add(k, e.code());
                None
            }
        }
    };
    // A percentage as typed (`50`, `33,33`) in basis points: money's parser reads hundredths the same way.
    let percent = |k: &str, errs: &mut FieldErrors| -> Option<u32> {
        match Cents::parse(&get(k)) {
            Ok(c) => match u32::try_from(c.0) {
                Ok(bp) => Some(bp),
                Err(_) => {
                    errs.add(k, "out-of-range");
                    None
                }
            },
            Err(e) => {
                errs.add(k, if e.code() == "not-an-amount" { "format" } else { e.code() });
                None
            }
        }
    };
    let mut input = CallInput { title: get("title"), summary: get("summary"), body: v.get("body").cloned().unwrap_or_default(), ..CallInput::default() };
    let budget = get("budget");
    input.budget_cents = if budget.is_empty() { None } else { money("budget", &mut errs).map(|c| c.0).or(Some(1)) };
    input.mode = get("mode");
    input.grant_rule = match get("grant_rule.kind").as_str() {
        "bands" => {
            let mut bands = Vec::new();
            for i in 0..n.bands {
                let p = |f: &str| format!("grant_rule.bands.{i}.{f}");
                if ["min_employees", "max_employees", "amount"].iter().all(|f| get(&p(f)).is_empty()) {
                    continue;
                }
                renames.push((format!("grant_rule.bands.{}.", bands.len()), format!("grant_rule.bands.{i}.")));
                let min = uint(&p("min_employees"), true, &mut errs).unwrap_or(0);
                let max = uint(&p("max_employees"), false, &mut errs);
                let amount = money(&p("amount"), &mut errs).unwrap_or(Cents(1));
                bands.push(Band { min_employees: min, max_employees: max, amount });
            }
            Some(GrantRule::Bands { bands })
        }
        "share" => {
            let bp = percent("grant_rule.basis_points", &mut errs).unwrap_or(1);
            let cap = money("grant_rule.cap", &mut errs).unwrap_or(Cents(1));
            Some(GrantRule::Share { basis_points: bp, cap })
        }
        _ => None,
    };
    for i in 0..n.categories {
        let p = |f: &str| format!("categories.{i}.{f}");
        if ["code", "label", "max_share_bp"].iter().all(|f| get(&p(f)).is_empty()) {
            continue;
        }
        renames.push((format!("categories.{}.", input.categories.len()), format!("categories.{i}.")));
        let share = if get(&p("max_share_bp")).is_empty() { None } else { percent(&p("max_share_bp"), &mut errs).or(Some(1)) };
        input.categories.push(Category { code: get(&p("code")), label: get(&p("label")), max_share_bp: share });
    }
    input.eligibility = EligibilityInput {
        min_employees: uint("eligibility.min_employees", false, &mut errs).unwrap_or(0),
        max_employees: uint("eligibility.max_employees", false, &mut errs),
        excluded_sectors: words(&get("eligibility.excluded_sectors")),
        site_region: Some(get("eligibility.site_region")).filter(|r| !r.is_empty()),
    };
    for i in 0..n.attachments {
        let p = |f: &str| format!("required_attachments.{i}.{f}");
        if ["code", "label"].iter().all(|f| get(&p(f)).is_empty()) {
            continue;
        }
        renames.push((format!("required_attachments.{}.", input.required_attachments.len()), format!("required_attachments.{i}.")));
        input.required_attachments.push(Attachment { code: get(&p("code")), label: get(&p("label")) });
    }
    input.opens_at = get("opens_at");
    input.closes_at = get("closes_at");
    input.de_minimis = !get("de_minimis").is_empty();
    for i in 0..n.criteria {
        let p = |f: &str| format!("criteria.{i}.{f}");
        if ["code", "label", "max_points"].iter().all(|f| get(&p(f)).is_empty()) {
            continue;
        }
        renames.push((format!("criteria.{}.", input.criteria.len()), format!("criteria.{i}.")));
        let points = uint(&p("max_points"), true, &mut errs).unwrap_or(1);
        input.criteria.push(Criterion { code: get(&p("code")), label: get(&p("label")), max_points: points });
    }
    input.tie_breaks = words(&get("tie_breaks"));
    (input, errs, renames)
}

/// The form's field an API error belongs to.
fn form_field(api: &str, renames: &[(String, String)]) -> String {
    for whole in ["eligibility.excluded_sectors", "tie_breaks"] {
        if api.starts_with(whole) {
            return whole.into();
        }
    }
    match api {
        "budget_cents" => return "budget".into(),
        "grant_rule" => return "grant_rule.kind".into(),
        "grant_rule.basis_points" | "grant_rule.cap" => return api.into(),
        _ => {}
    }
    renamed(api, renames)
}

/// Merges the model's errors (named by the API's paths) into the form's own (named by the form's rows), where the
/// form did not already complain about that field.
fn merge(errors: &mut FieldErrors, more: FieldErrors, renames: &[(String, String)]) {
    let refused: Vec<String> = errors.0.iter().map(|e| form_field(&e.field, &[])).collect();
    for e in more.0 {
        let field = renamed(&e.field, renames);
        if !refused.contains(&form_field(&field, &[])) {
            errors.add(&field, &e.code);
        }
    }
}

/// An API path with its row index turned into the form's row.
fn renamed(api: &str, renames: &[(String, String)]) -> String {
    for (from, to) in renames {
        if let Some(rest) = api.strip_prefix(from.as_str()) {
            return format!("{to}{rest}");
        }
    }
    api.to_owned()
}

/// The editor's sections, built from the values and the errors (keyed by form field).
pub struct Editor {
    pub action: String,
    pub locked: bool,
    pub title: F,
    pub summary_f: F,
    pub body: F,
    pub budget: F,
    pub mode: String,
    pub mode_error: Option<String>,
    pub kind: String,
    pub kind_error: Option<String>,
    pub bands: Table,
    pub basis_points: F,
    pub cap: F,
    pub categories: Table,
    pub min_employees: F,
    pub max_employees: F,
    pub excluded: F,
    pub region: String,
    pub region_error: Option<String>,
    pub regions: Vec<(&'static str, &'static str)>,
    pub attachments: Table,
    pub opens_at: F,
    pub closes_at: F,
    pub de_minimis: bool,
    pub criteria: Table,
    pub tie_breaks: F,
    pub counts: [usize; 4],
}

struct Built {
    editor: Editor,
    summary: Vec<SummaryItem>,
}

fn build_editor(ctx: &PageCtx, action: String, locked: bool, v: &Values, n: Counts, errors: &FieldErrors) -> Built {
    // Errors by form field; the excluded sectors' ones name the sector.
    let sectors = words(v.get("eligibility.excluded_sectors").map(String::as_str).unwrap_or(""));
    let ties = words(v.get("tie_breaks").map(String::as_str).unwrap_or(""));
    let mut by_field: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for e in &errors.0 {
        let field = form_field(&e.field, &[]);
        let mut text = message(ctx, &e.code);
        let named = |prefix: &str, list: &[String]| e.field.strip_prefix(prefix).and_then(|i| i.parse::<usize>().ok()).and_then(|i| list.get(i).cloned());
        if let Some(s) = named("eligibility.excluded_sectors.", &sectors).or_else(|| named("tie_breaks.", &ties)) {
            text = format!("{s}: {text}");
        }
        if !order.contains(&field) {
            order.push(field.clone());
        }
        by_field.entry(field).and_modify(|t| { t.push_str("; "); t.push_str(&text) }).or_insert(text);
    }
    let f = |name: &str, label: String, kind: &'static str, help: Option<String>| F {
        id: id_of(name),
        value: v.get(name).cloned().unwrap_or_default(),
        error: by_field.get(name).cloned(),
        name: name.to_owned(),
        label,
        kind,
        help,
    };
    let table = |group: &str, caption: String, count: usize, cols: &[(&str, &str, &'static str)]| {
        let heads: Vec<String> = cols.iter().map(|c| ctx.t(c.1)).collect();
        let rows = (0..count)
            .map(|i| {
                cols.iter()
                    .map(|(field, label, kind)| {
                        let name = format!("{group}.{i}.{field}");
                        f(&name, format!("{} {}: {}", ctx.t("gst-row"), i + 1, ctx.t(label)), kind, None)
                    })
                    .collect()
            })
            .collect();
        Table { group: group.to_owned(), id: id_of(group), caption, heads, rows, error: by_field.get(group).cloned(), count }
    };
    let editor = Editor {
        action,
        locked,
        title: f("title", ctx.t("gst-title"), "text", None),
        summary_f: f("summary", ctx.t("gst-summary"), "text", None),
        body: f("body", ctx.t("gst-body"), "textarea", Some(ctx.t("gst-body-help"))),
        budget: f("budget", ctx.t("gst-budget"), "text", Some(ctx.t("gst-money-help"))),
        mode: v.get("mode").cloned().unwrap_or_default(),
        mode_error: by_field.get("mode").cloned(),
        kind: v.get("grant_rule.kind").cloned().unwrap_or_default(),
        kind_error: by_field.get("grant_rule.kind").cloned(),
        bands: table("grant_rule.bands", ctx.t("gst-bands"), n.bands, &[
            ("min_employees", "gst-band-min", "number"),
            ("max_employees", "gst-band-max", "number"),
            ("amount", "gst-band-amount", "text"),
        ]),
        basis_points: f("grant_rule.basis_points", ctx.t("gst-share"), "text", Some(ctx.t("gst-share-help"))),
        cap: f("grant_rule.cap", ctx.t("gst-cap"), "text", Some(ctx.t("gst-money-help"))),
        categories: table("categories", ctx.t("gst-categories"), n.categories, &[
            ("code", "gst-code", "text"),
            ("label", "gst-label", "text"),
            ("max_share_bp", "gst-max-share", "text"),
        ]),
        min_employees: f("eligibility.min_employees", ctx.t("gst-min-employees"), "number", None),
        max_employees: f("eligibility.max_employees", ctx.t("gst-max-employees"), "number", Some(ctx.t("gst-max-employees-help"))),
        excluded: f("eligibility.excluded_sectors", ctx.t("gst-excluded"), "text", Some(ctx.t("gst-excluded-help"))),
        region: v.get("eligibility.site_region").cloned().unwrap_or_default(),
        region_error: by_field.get("eligibility.site_region").cloned(),
        regions: crate::companies::model::REGIONS.to_vec(),
        attachments: table("required_attachments", ctx.t("gst-attachments"), n.attachments, &[("code", "gst-code", "text"), ("label", "gst-label", "text")]),
        opens_at: f("opens_at", ctx.t("gst-opens-at"), "datetime-local", Some(ctx.t("gst-instant-help"))),
        closes_at: f("closes_at", ctx.t("gst-closes-at"), "datetime-local", Some(ctx.t("gst-instant-help"))),
        de_minimis: v.contains_key("de_minimis"),
        criteria: table("criteria", ctx.t("gst-criteria"), n.criteria, &[
            ("code", "gst-code", "text"),
            ("label", "gst-label", "text"),
            ("max_points", "gst-max-points", "number"),
        ]),
        tie_breaks: f("tie_breaks", ctx.t("gst-tie-breaks"), "text", Some(ctx.t("gst-tie-breaks-help"))),
        counts: [n.bands, n.categories, n.attachments, n.criteria],
    };
    // The summary links each error to its field, labelled as on the form.
    let mut labels: HashMap<String, (String, String)> = HashMap::new();
    for x in [&editor.title, &editor.summary_f, &editor.body, &editor.budget, &editor.basis_points, &editor.cap, &editor.min_employees, &editor.max_employees, &editor.excluded, &editor.opens_at, &editor.closes_at, &editor.tie_breaks] {
        labels.insert(x.name.clone(), (x.id.clone(), x.label.clone()));
    }
    for t in [&editor.bands, &editor.categories, &editor.attachments, &editor.criteria] {
        for x in t.rows.iter().flatten() {
            labels.insert(x.name.clone(), (x.id.clone(), x.label.clone()));
        }
        // A list's own error leads to its first input (a link must move the focus to something that takes it).
        let first = t.rows.first().and_then(|r| r.first()).map(|x| x.id.clone()).unwrap_or_else(|| format!("{}-group", t.id));
        labels.insert(t.group.clone(), (first, t.caption.clone()));
    }
    labels.insert("mode".into(), ("f-mode-sportello".into(), ctx.t("gst-mode")));
    labels.insert("grant_rule.kind".into(), ("f-grant_rule-kind-bands".into(), ctx.t("gst-rule")));
    labels.insert("eligibility.site_region".into(), (id_of("eligibility.site_region"), ctx.t("gst-region")));
    let summary = order
        .iter()
        .map(|field| {
            let (anchor, label) = labels.get(field).cloned().unwrap_or_else(|| (id_of("title"), field.clone()));
            SummaryItem { anchor, text: format!("{label}: {}", by_field.get(field).cloned().unwrap_or_default()) }
        })
        .collect();
    Built { editor, summary }
}

// ---------------------------------------------------------------------------------------------------------------
// Pages

pub struct CallRowView {
    pub id: String,
    pub title: String,
    pub phase: String,
    pub opens: String,
    pub closes: String,
    pub budget: String,
    pub committed: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_staff_list.html")]
struct ListPage {
    ctx: PageCtx,
    org: OrgId,
    rows: Vec<CallRowView>,
}

fn phase_label(ctx: &PageCtx, p: Phase) -> String {
    ctx.t(match p {
        Phase::Draft => "gst-phase-draft",
        Phase::Upcoming => "gst-phase-upcoming",
        Phase::Open => "gst-phase-open",
        Phase::Closed => "gst-phase-closed",
    })
}

async fn list_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>) -> Result<ListPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    let calls = service::list_in(&state.db, &user.principal, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let rows = calls
        .iter()
        .map(|c| CallRowView {
            id: c.id.to_string(),
            title: c.title.clone(),
            phase: phase_label(&ctx, c.phase),
            opens: ctx.format_time(&c.opens_at),
            closes: ctx.format_time(&c.closes_at),
            budget: Cents(c.budget_cents).to_string(),
            committed: Cents(c.committed_cents).to_string(),
        })
        .collect();
    Ok(ListPage { ctx, org, rows })
}

pub struct FaqForm {
    pub id: String,
    pub question: F,
    pub answer: F,
}

/// The call's own sections under the editor (absent on the new-call page).
pub struct CallSide {
    pub id: String,
    pub title: String,
    pub phase: String,
    pub published: bool,
    pub can_publish: bool,
    pub budget_now: String,
    pub committed: String,
    pub budget: F,
    pub faqs: Vec<FaqForm>,
    pub new_faq: FaqForm,
    pub snapshots: Vec<crate::opendata::SnapshotView>,
    pub opendata_error: Option<String>,
    pub documents: Vec<DocumentLine>,
    pub doc_title: F,
    /// The file input's error (it cannot keep the file: the form asks for it again).
    pub doc_file_error: Option<String>,
    pub doc_files_hint: String,
}

/// A document of the call in the staff's list.
pub struct DocumentLine {
    pub id: String,
    pub title: String,
    pub name: String,
    pub size: String,
    pub href: String,
}

/// A size as people read it: `512 B`, `12.3 kB`, `4.5 MB`.
pub fn human_size(n: i64) -> String {
    if n < 1000 {
        format!("{n} B")
    } else if n < 1_000_000 {
        format!("{:.1} kB", n as f64 / 1000.0)
    } else {
        format!("{:.1} MB", n as f64 / 1_000_000.0)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_staff_call.html")]
struct CallPage {
    ctx: PageCtx,
    org: OrgId,
    e: Editor,
    side: Option<CallSide>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    conflict: Option<String>,
}

/// What a refused side form (FAQ, budget, open data) typed and why.
#[derive(Default)]
struct SideState {
    faq_id: Option<String>,
    question: String,
    answer: String,
    faq_errors: FieldErrors,
    budget: Option<String>,
    budget_errors: FieldErrors,
    opendata_error: Option<String>,
    doc_title: String,
    doc_errors: FieldErrors,
}

async fn build_side(state: &AppState, ctx: &PageCtx, call: &Call, s: &SideState, summary: &mut Vec<SummaryItem>) -> Result<CallSide, PageError> {
    let f = |name: String, label: String, kind: &'static str, value: String, error: Option<String>| F { id: id_of(&name), name, label, value, error, kind, help: None };
    let faq_form = |id: &str, q: &str, a: &str, errs: Option<&FieldErrors>| {
        let err = |field: &str| errs.and_then(|e| e.get(field)).map(|c| message(ctx, c));
        FaqForm {
            id: id.to_owned(),
            question: f(format!("faq-{id}.question"), ctx.t("gst-question"), "textarea", q.to_owned(), err("question")),
            answer: f(format!("faq-{id}.answer"), ctx.t("gst-answer"), "textarea", a.to_owned(), err("answer")),
        }
    };
    let mut faqs = Vec::new();
    for x in &call.faqs {
        let id = x.id.to_string();
        if s.faq_id.as_deref() == Some(id.as_str()) {
            faqs.push(faq_form(&id, &s.question, &s.answer, Some(&s.faq_errors)));
        } else {
            faqs.push(faq_form(&id, &x.question, &x.answer, None));
        }
    }
    let new_faq = if s.faq_id.as_deref() == Some("new") { faq_form("new", &s.question, &s.answer, Some(&s.faq_errors)) } else { faq_form("new", "", "", None) };
    for form in faqs.iter().chain([&new_faq]) {
        for x in [&form.question, &form.answer] {
            if let Some(e) = &x.error {
                summary.push(SummaryItem { anchor: x.id.clone(), text: format!("{}: {e}", x.label) });
            }
        }
    }
    let committed = Cents(call.committed_cents);
    let budget_error = s.budget_errors.get("budget").map(|c| {
        if c == "below-committed" { ctx.t1("gst-e-below-committed-amount", "committed", &committed.to_string()) } else { message(ctx, c) }
    });
    let budget = f("budget_change".into(), ctx.t("gst-new-budget"), "text", s.budget.clone().unwrap_or_else(|| money_input(Cents(call.budget_cents))), budget_error);
    if let Some(e) = &budget.error {
        summary.push(SummaryItem { anchor: budget.id.clone(), text: format!("{}: {e}", budget.label) });
    }
    let snapshots = crate::opendata::snapshots_of(&state.db, call.id).await?.iter().map(|x| crate::opendata::SnapshotView::of(ctx, x)).collect();
    if let Some(e) = &s.opendata_error {
        summary.push(SummaryItem { anchor: "f-opendata-list".into(), text: e.clone() });
    }
    let limit = human_size(state.cfg.files.max_bytes as i64);
    let doc_message = |c: &str| if c == "too-large" || c == "file-too-large" { ctx.t1("gst-e-file-too-large", "size", &limit) } else { message(ctx, c) };
    let doc_title = f("doc.title".into(), ctx.t("gst-doc-title"), "text", s.doc_title.clone(), s.doc_errors.get("title").map(doc_message));
    if let Some(e) = &doc_title.error {
        summary.push(SummaryItem { anchor: doc_title.id.clone(), text: format!("{}: {e}", doc_title.label) });
    }
    let doc_file_error = s.doc_errors.get("file").map(doc_message);
    if let Some(e) = &doc_file_error {
        summary.push(SummaryItem { anchor: id_of("doc.file"), text: format!("{}: {e}", ctx.t("gst-doc-file")) });
    }
    let documents = call
        .documents
        .iter()
        .map(|d| DocumentLine {
            id: d.id.to_string(),
            title: d.title.clone(),
            name: d.name.clone(),
            size: human_size(d.size),
            href: format!("/orgs/{}/calls/{}/documents/{}", call.org_id, call.id, d.id),
        })
        .collect();
    Ok(CallSide {
        documents,
        doc_title,
        doc_file_error,
        doc_files_hint: ctx.t1("gst-doc-file-hint", "size", &limit),
        id: call.id.to_string(),
        title: call.title.clone(),
        phase: phase_label(ctx, call.phase),
        published: call.published_at.is_some(),
        can_publish: call.phase == Phase::Draft,
        budget_now: Cents(call.budget_cents).to_string(),
        committed: committed.to_string(),
        budget,
        faqs,
        new_faq,
        snapshots,
        opendata_error: s.opendata_error.clone(),
    })
}

/// Whether a call's rules stand still (published and opened).
fn is_locked(c: &Call) -> bool {
    matches!(c.phase, Phase::Open | Phase::Closed)
}

async fn new_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>) -> Result<CallPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    service::staff(&state.db, &user.principal, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let mut v = Values::new();
    v.insert("mode".into(), "sportello".into());
    v.insert("grant_rule.kind".into(), "bands".into());
    v.insert("de_minimis".into(), "1".into());
    let b = build_editor(&ctx, format!("/orgs/{org}/calls/new"), false, &v, Counts::blank(), &FieldErrors::new());
    Ok(CallPage { ctx, org, e: b.editor, side: None, summary: b.summary, notice: None, conflict: None })
}

/// The form's pairs: a field sent twice keeps its last value (checkboxes send one).
fn values_from(pairs: Vec<(String, String)>) -> (Values, bool) {
    let more = pairs.iter().any(|(k, v)| k == "action" && v == "more");
    let v: Values = pairs.into_iter().filter(|(k, _)| k != "action").collect();
    (v, more)
}

async fn new_save(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let p = &user.principal;
    service::staff(&state.db, p, org).await?;
    let (values, more) = values_from(pairs);
    let n = Counts::of(&values);
    let ctx = PageCtx::build(&state, &rc).await;
    if more {
        let b = build_editor(&ctx, format!("/orgs/{org}/calls/new"), false, &values, n.more(), &FieldErrors::new());
        return Ok(CallPage { ctx, org, e: b.editor, side: None, summary: b.summary, notice: None, conflict: None }.into_response());
    }
    let (input, mut errors, renames) = input_of(&values, n);
    if let Err(more) = input.validate() {
        merge(&mut errors, more, &renames);
    }
    if errors.is_empty() {
        match service::create(&state.db, &user.actor(rc.ip.clone()), p, org, &input).await {
            Ok(c) => return Ok(see_other(&format!("/orgs/{org}/calls/{}?done=created", c.id))),
            Err(Error::Invalid(e)) => merge(&mut errors, e, &renames),
            Err(e) => return Err(e.into()),
        }
    }
    let b = build_editor(&ctx, format!("/orgs/{org}/calls/new"), false, &values, n, &errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, CallPage { ctx, org, e: b.editor, side: None, summary: b.summary, notice: None, conflict: None }).into_response())
}

fn notice_of(ctx: &PageCtx, done: &str) -> Option<String> {
    match done {
        "created" | "saved" | "published" | "faq-added" | "faq-saved" | "faq-deleted" | "budget" | "opendata" | "doc-added" | "doc-deleted" => Some(ctx.t(&format!("gst-done-{done}"))),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn render_call(
    state: &AppState,
    rc: &RequestCtx,
    org: OrgId,
    call: &Call,
    values: Option<(&Values, Counts, &FieldErrors)>,
    side: &SideState,
    done: &str,
    conflict: Option<String>,
) -> Result<CallPage, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let own;
    let none = FieldErrors::new();
    let (v, n, errors) = match values {
        Some(x) => x,
        None => {
            own = values_of(call);
            (&own, Counts::for_call(call), &none)
        }
    };
    let b = build_editor(&ctx, format!("/orgs/{org}/calls/{}", call.id), is_locked(call), v, n, errors);
    let mut summary = b.summary;
    let side = build_side(state, &ctx, call, side, &mut summary).await?;
    let notice = notice_of(&ctx, done);
    Ok(CallPage { ctx, org, e: b.editor, side: Some(side), summary, notice, conflict })
}

async fn call_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>, Query(q): Query<Done>) -> Result<CallPage, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let call = service::get_in(&state.db, &user.principal, org, id).await?;
    render_call(&state, &rc, org, &call, None, &SideState::default(), &q.done, None).await
}

async fn call_save(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let p = &user.principal;
    let call = service::get_in(&state.db, p, org, id).await?;
    let (values, more) = values_from(pairs);
    let n = Counts::of(&values);
    if more {
        let page = render_call(&state, &rc, org, &call, Some((&values, n.more(), &FieldErrors::new())), &SideState::default(), "", None).await?;
        return Ok(page.into_response());
    }
    let (input, mut errors, renames) = input_of(&values, n);
    if let Err(more) = input.validate() {
        merge(&mut errors, more, &renames);
    }
    let mut conflict = None;
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if errors.is_empty() {
        match service::update(&state.db, &user.actor(rc.ip.clone()), p, org, id, &input).await {
            Ok(_) => return Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=saved"))),
            Err(Error::Invalid(e)) => merge(&mut errors, e, &renames),
            Err(Error::Conflict(code)) => {
                let ctx = PageCtx::build(&state, &rc).await;
                conflict = Some(message(&ctx, code));
                status = StatusCode::CONFLICT;
            }
            Err(e) => return Err(e.into()),
        }
    } else if is_locked(&call) {
        // Whatever was typed, the rules of an opened call stand still: say so first.
        let ctx = PageCtx::build(&state, &rc).await;
        conflict = Some(message(&ctx, "call-opened"));
    }
    let page = render_call(&state, &rc, org, &call, Some((&values, n, &errors)), &SideState::default(), "", conflict).await?;
    Ok((status, page).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_staff_publish.html")]
struct PublishPage {
    ctx: PageCtx,
    org: OrgId,
    id: String,
    title: String,
    opens: String,
    closes: String,
    budget: String,
    error: Option<String>,
}

async fn publish_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>) -> Result<PublishPage, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let call = service::get_in(&state.db, &user.principal, org, id).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let error = (call.phase != Phase::Draft).then(|| message(&ctx, "already-published"));
    Ok(PublishPage { org, id: id.to_string(), title: call.title, opens: ctx.format_time(&call.opens_at), closes: ctx.format_time(&call.closes_at), budget: Cents(call.budget_cents).to_string(), error, ctx })
}

async fn publish_save(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    match service::publish(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=published"))),
        Err(Error::Conflict(code)) => {
            let call = service::get_in(&state.db, &user.principal, org, id).await?;
            let ctx = PageCtx::build(&state, &rc).await;
            let page = PublishPage { org, id: id.to_string(), title: call.title, opens: ctx.format_time(&call.opens_at), closes: ctx.format_time(&call.closes_at), budget: Cents(call.budget_cents).to_string(), error: Some(message(&ctx, code)), ctx };
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// FAQ: the forms name their fields `faq-{id}.question` / `faq-{id}.answer` (`new` for the one being added).

fn faq_input(pairs: &[(String, String)], id: &str) -> FaqInput {
    let get = |f: &str| pairs.iter().rev().find(|(k, _)| k == &format!("faq-{id}.{f}")).map(|(_, v)| v.clone()).unwrap_or_default();
    FaqInput { question: get("question"), answer: get("answer") }
}

#[allow(clippy::too_many_arguments)]
async fn faq_refused(state: &AppState, rc: &RequestCtx, p: &agilekit_kernel::authz::Principal, org: OrgId, id: CallId, faq: &str, input: FaqInput, errors: FieldErrors) -> Result<Response, PageError> {
    let call = service::get_in(&state.db, p, org, id).await?;
    let side = SideState { faq_id: Some(faq.to_owned()), question: input.question, answer: input.answer, faq_errors: errors, ..SideState::default() };
    let page = render_call(state, rc, org, &call, None, &side, "", None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

async fn faq_add(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let input = faq_input(&pairs, "new");
    match service::add_faq(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id, &input).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=faq-added#faqs"))),
        Err(Error::Invalid(e)) => faq_refused(&state, &rc, &user.principal, org, id, "new", input, e).await,
        Err(e) => Err(e.into()),
    }
}

async fn faq_edit(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id, faq)): Path<(String, String, String)>, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (org, id, faq): (OrgId, CallId, FaqId) = (parse_id(&org)?, parse_id(&id)?, parse_id(&faq)?);
    let input = faq_input(&pairs, &faq.to_string());
    match service::update_faq(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id, faq, &input).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=faq-saved#faqs"))),
        Err(Error::Invalid(e)) => faq_refused(&state, &rc, &user.principal, org, id, &faq.to_string(), input, e).await,
        Err(e) => Err(e.into()),
    }
}

async fn faq_delete(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id, faq)): Path<(String, String, String)>) -> Result<Response, PageError> {
    let (org, id, faq): (OrgId, CallId, FaqId) = (parse_id(&org)?, parse_id(&id)?, parse_id(&faq)?);
    service::delete_faq(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id, faq).await?;
    Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=faq-deleted#faqs")))
}

#[derive(Deserialize, Default)]
struct BudgetForm {
    #[serde(default)]
    budget_change: String,
}

async fn budget_save(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    axum::Extension(runtime): axum::Extension<crate::applications::api::Runtime>,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<BudgetForm>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let p = &user.principal;
    let call = service::get_in(&state.db, p, org, id).await?;
    let input = super::budget::BudgetInput { budget: Some(super::budget::Money::Text(form.budget_change.clone())), budget_cents: None };
    let outcome = match input.parse() {
        Ok(b) => super::budget::change(&state.db, &runtime.durable, &user.actor(rc.ip.clone()), p, org, id, b).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=budget#budget"))),
        Err(Error::Invalid(e)) => {
            // The committed amount of now, for the message.
            let call = service::get_in(&state.db, p, org, id).await.unwrap_or(call);
            let side = SideState { budget: Some(form.budget_change), budget_errors: e, ..SideState::default() };
            let page = render_call(&state, &rc, org, &call, None, &side, "", None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct OpenDataForm {
    #[serde(default)]
    list: String,
}

async fn opendata_publish(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>, Form(form): Form<OpenDataForm>) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let p = &user.principal;
    match crate::opendata::publish(&state.db, &user.actor(rc.ip.clone()), p, org, id, &form.list).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=opendata#opendata"))),
        Err(Error::Conflict(code)) => {
            let call = service::get_in(&state.db, p, org, id).await?;
            let ctx = PageCtx::build(&state, &rc).await;
            let side = SideState { opendata_error: Some(format!("{}: {}", ctx.t("gst-od-list"), message(&ctx, code))), ..SideState::default() };
            let page = render_call(&state, &rc, org, &call, None, &side, "", None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Applications received

pub struct AppRow {
    pub id: String,
    pub protocol: i64,
    pub at: String,
    pub company: String,
    pub amount: String,
    pub place: String,
    pub state: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_staff_applications.html")]
struct ApplicationsPage {
    ctx: PageCtx,
    org: OrgId,
    id: String,
    title: String,
    budget: String,
    committed: String,
    total: usize,
    admitted: usize,
    waiting: usize,
    withdrawn: usize,
    rows: Vec<AppRow>,
}

fn place_label(ctx: &PageCtx, place: Option<&str>) -> String {
    match place {
        Some("admitted") => ctx.t("gst-place-admitted"),
        Some("waiting") => ctx.t("gst-place-waiting"),
        _ => "—".into(),
    }
}

async fn received(state: &AppState, p: &agilekit_kernel::authz::Principal, org: OrgId, id: CallId) -> Result<(Vec<applications::Submission>, super::store::CallRow), PageError> {
    let list = applications::list_submitted(&state.db, p, org, id).await?;
    let call = super::store::get_in(&state.db, org, id).await?.ok_or_else(PageError::not_found)?;
    Ok((list, call))
}

async fn applications_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>) -> Result<ApplicationsPage, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let (list, call) = received(&state, &user.principal, org, id).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let count = |f: &dyn Fn(&applications::Submission) -> bool| list.iter().filter(|s| f(s)).count();
    let rows = list
        .iter()
        .map(|s| AppRow {
            id: s.receipt.application_id.to_string(),
            protocol: s.receipt.protocol,
            at: rome_seconds(s.receipt.submitted_at),
            company: s.receipt.company_name.clone(),
            amount: Cents(s.receipt.requested_cents).to_string(),
            place: place_label(&ctx, s.receipt.place.as_deref()),
            state: ctx.t(&format!("gst-state-{}", s.state.as_str())),
        })
        .collect();
    Ok(ApplicationsPage {
        org,
        id: id.to_string(),
        title: call.title.clone(),
        budget: Cents(call.budget_cents).to_string(),
        committed: Cents(call.committed_cents).to_string(),
        total: list.len(),
        admitted: count(&|s| s.receipt.place.as_deref() == Some("admitted")),
        waiting: count(&|s| s.receipt.place.as_deref() == Some("waiting")),
        withdrawn: count(&|s| s.state == crate::applications::model::State::Withdrawn),
        rows,
        ctx,
    })
}

async fn applications_csv(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let (list, _) = received(&state, &user.principal, org, id).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let mut out = crate::opendata::Csv::new();
    out.row(&["protocollo", "data_ora_roma", "impresa", "importo_eur", "posizione", "stato"]);
    for s in &list {
        let r = &s.receipt;
        out.row(&[
            &r.protocol.to_string(),
            &rome_seconds(r.submitted_at),
            &r.company_name,
            &crate::opendata::euro(r.requested_cents),
            r.place.as_deref().unwrap_or(""),
            s.state.as_str(),
        ]);
    }
    let _ = ctx;
    Ok(out.response(&format!("domande-{id}.csv")))
}

// Documents: a multipart form (`doc.title`, `doc.file`) adds one; a button per document deletes it.

fn bad_form() -> PageError {
    PageError::status(StatusCode::BAD_REQUEST, "error-invalid")
}

async fn document_add(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Result<Response, PageError> {
    use axum::extract::FromRequest;
    let (org, id): (OrgId, CallId) = (parse_id(&org)?, parse_id(&id)?);
    let p = &user.principal;
    // Who may not touch the call learns nothing about the body.
    service::get_in(&state.db, p, org, id).await?;
    let limit = state.cfg.files.max_bytes;
    let mut mp = axum::extract::Multipart::from_request(req, &state).await.map_err(|_| bad_form())?;
    let (mut title, mut file, mut too_large) = (String::new(), None::<(String, String, Vec<u8>)>, false);
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                too_large = true;
                break;
            }
            Err(_) => return Err(bad_form()),
        };
        match field.name() {
            Some("doc.title") => {
                let t = field.text().await.map_err(|_| bad_form())?;
                if t.contains('\0') {
                    return Err(bad_form());
                }
                title = t;
            }
            Some("doc.file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
                match crate::applications::api::read_limited(&mut field, limit).await {
                    Ok(Some(d)) => file = Some((name, ct, d)),
                    Ok(None) => {
                        too_large = true;
                        break;
                    }
                    Err(()) => return Err(bad_form()),
                }
            }
            _ => {}
        }
    }
    let (name, ct, data) = file.unwrap_or_default();
    let result = if too_large {
        // The title is still checked, so that both errors show at once.
        let mut e = FieldErrors::new();
        e.check("title", agilekit_kernel::validate::Text::parse(&title, super::model::DOCUMENT_TITLE_MAX));
        e.add("file", "file-too-large");
        Err(Error::Invalid(e))
    } else {
        service::add_document(&state.db, &state.cfg.files, &user.actor(rc.ip.clone()), p, org, id, &title, &name, &ct, &data).await
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=doc-added#documents"))),
        Err(Error::Invalid(errors)) => {
            let call = service::get_in(&state.db, p, org, id).await?;
            let status = if too_large { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::UNPROCESSABLE_ENTITY };
            let side = SideState { doc_title: title, doc_errors: errors, ..SideState::default() };
            let page = render_call(&state, &rc, org, &call, None, &side, "", None).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn document_delete(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((org, id, doc)): Path<(String, String, String)>) -> Result<Response, PageError> {
    let (org, id, doc): (OrgId, CallId, DocumentId) = (parse_id(&org)?, parse_id(&id)?, parse_id(&doc)?);
    service::delete_document(&state.db, &user.actor(rc.ip.clone()), &user.principal, org, id, doc).await?;
    Ok(see_other(&format!("/orgs/{org}/calls/{id}?done=doc-deleted#documents")))
}

/// A call's document for its administrators (a draft's too), as the public download serves it.
async fn document_download(State(state): State<AppState>, SignedIn(user, _rc): SignedIn, Path((org, id, doc)): Path<(String, String, String)>) -> Result<Response, PageError> {
    let (org, id, doc): (OrgId, CallId, DocumentId) = (parse_id(&org)?, parse_id(&id)?, parse_id(&doc)?);
    let (meta, data) = service::staff_document(&state.db, &user.principal, org, id, doc).await?;
    Ok(crate::applications::api::download(&meta, data))
}
