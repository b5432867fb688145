//! Companies' pages: the companies one represents (`/companies`), registration (`/companies/new`), and a company's
//! page (`/companies/{company}`) with its edit form, its representatives (owners delegate by an account's e-mail and
//! remove; the last owner cannot leave) and its declared de minimis aid with the position against the ceiling.
//! The rules are the service's: these handlers read forms, call it, and show its field errors beside each field and
//! in a summary, keeping what was typed. Another person's company is a 404 on every route, before anything else.

use agilekit_web::pages::{parse_id, see_other};
use agilekit_kernel::ids::AccountId;
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

use super::model::{AidId, AidInput, CompanyId, CompanyInput, REGIONS, Role};
use super::service::{self, Company};
use crate::model::Cents;

/// The pages of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/companies", get(list_page))
        .route("/companies/new", get(new_page).post(create))
        .route("/companies/{company}", get(company_page).post(update))
        .route("/companies/{company}/delegates", post(add_delegate))
        .route("/companies/{company}/representatives/{account}/remove", post(remove_representative))
        .route("/companies/{company}/aid", post(add_aid))
        .route("/companies/{company}/aid/{aid}/delete", post(delete_aid))
}

/// The message for an error code: this service's own wording first, then the shell's, else a generic one.
pub fn error_text(ctx: &PageCtx, code: &str) -> String {
    for key in [format!("grp-err-{code}"), format!("field-{code}")] {
        let t = ctx.t(&key);
        if t != key {
            return t;
        }
    }
    ctx.t("error-invalid")
}

/// A line of a form's error summary, linking to its field.
pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

/// One input of a form, with what was typed and its error.
pub struct Field {
    pub name: &'static str,
    pub id: String,
    pub label: String,
    pub value: String,
    pub error: Option<String>,
    pub help: Option<String>,
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub numeric: bool,
    pub required: bool,
}

/// A form's values by field name, as typed.
type Values = Vec<(String, String)>;

fn value(v: &Values, name: &str) -> String {
    v.iter().find(|(k, _)| k == name).map(|(_, x)| x.clone()).unwrap_or_default()
}

/// Fields of a form from (name, kind, autocomplete, numeric, required, has help) and the errors by field.
fn fields(ctx: &PageCtx, prefix: &str, spec: &[(&'static str, &'static str, &'static str, bool, bool, bool)], values: &Values, errors: &FieldErrors) -> Vec<Field> {
    spec.iter()
        .map(|&(name, kind, autocomplete, numeric, required, help)| Field {
            name,
            id: format!("f-{name}"),
            label: ctx.t(&format!("{prefix}-{}", name.replace('_', "-"))),
            value: value(values, name),
            error: errors.get(name).map(|c| error_text(ctx, c)),
            help: help.then(|| ctx.t(&format!("{prefix}-{}-help", name.replace('_', "-")))),
            kind,
            autocomplete,
            numeric,
            required,
        })
        .collect()
}

fn summary_of(fields: &[Field], extra: impl IntoIterator<Item = SummaryItem>) -> Vec<SummaryItem> {
    let mut out: Vec<SummaryItem> =
        fields.iter().filter_map(|f| f.error.as_ref().map(|e| SummaryItem { anchor: f.id.clone(), text: format!("{}: {e}", f.label) })).collect();
    out.extend(extra);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The company form (registration and edit)

const COMPANY_FIELDS: &[(&str, &str, &str, bool, bool, bool)] = &[
    ("name", "text", "organization", false, true, false),
    ("partita_iva", "text", "off", true, true, true),
    ("tax_code", "text", "off", false, false, true),
    ("legal_rep_name", "text", "name", false, true, false),
    ("legal_rep_tax_code", "text", "off", false, true, true),
    ("pec", "email", "email", false, true, true),
    ("employees", "text", "off", true, true, false),
    ("sector", "text", "off", false, true, true),
    ("address", "text", "street-address", false, false, false),
];

pub struct RegionBox {
    pub code: &'static str,
    pub name: &'static str,
    pub id: String,
    pub checked: bool,
}

/// The company form as shown: its inputs, the regions' checkboxes, and its errors.
pub struct CompanyForm {
    pub fields: Vec<Field>,
    pub regions: Vec<RegionBox>,
    pub regions_error: Option<String>,
    pub summary: Vec<SummaryItem>,
}

fn values_of_company(c: &Company) -> Values {
    let mut v: Values = vec![
        ("name".into(), c.name.clone()),
        ("partita_iva".into(), c.partita_iva.clone()),
        ("tax_code".into(), if c.tax_code == c.partita_iva { String::new() } else { c.tax_code.clone() }),
        ("legal_rep_name".into(), c.legal_rep_name.clone()),
        ("legal_rep_tax_code".into(), c.legal_rep_tax_code.clone()),
        ("pec".into(), c.pec.clone()),
        ("employees".into(), c.employees.to_string()),
        ("sector".into(), c.sector.clone()),
        ("address".into(), c.address.clone()),
    ];
    v.extend(c.site_regions.iter().map(|r| ("site_regions".to_owned(), r.code.clone())));
    v
}

/// The service's input from the form, and what the form itself finds wrong (a size that is not a number).
fn company_input(v: &Values) -> (CompanyInput, FieldErrors) {
    let mut errors = FieldErrors::new();
    let employees = match value(v, "employees").trim() {
        "" => None,
        s => match s.replace(['.', ' '], "").parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add("employees", "format");
                None
            }
        },
    };
    let input = CompanyInput {
        name: value(v, "name"),
        partita_iva: value(v, "partita_iva"),
        tax_code: value(v, "tax_code"),
        pec: value(v, "pec"),
        legal_rep_name: value(v, "legal_rep_name"),
        legal_rep_tax_code: value(v, "legal_rep_tax_code"),
        employees,
        sector: value(v, "sector"),
        site_regions: v.iter().filter(|(k, _)| k == "site_regions").map(|(_, x)| x.clone()).collect(),
        address: value(v, "address"),
    };
    (input, errors)
}

/// The form's complaints first (a stand-in went on), then the service's on the other fields; `site_regions.N` is
/// said of the regions' group.
fn merge(form: FieldErrors, service: FieldErrors) -> FieldErrors {
    let mut out = FieldErrors::new();
    for e in form.0.into_iter().chain(service.0) {
        let field = if e.field.starts_with("site_regions") { "site_regions".to_owned() } else { e.field };
        if out.get(&field).is_none() {
            out.add(&field, &e.code);
        }
    }
    out
}

fn company_form(ctx: &PageCtx, values: &Values, errors: &FieldErrors) -> CompanyForm {
    let fields = fields(ctx, "grp-co", COMPANY_FIELDS, values, errors);
    let chosen: Vec<&str> = values.iter().filter(|(k, _)| k == "site_regions").map(|(_, x)| x.trim()).collect();
    let regions = REGIONS.iter().map(|(code, name)| RegionBox { code, name, id: format!("f-site_regions-{code}"), checked: chosen.contains(code) }).collect();
    let regions_error = errors.get("site_regions").map(|c| error_text(ctx, c));
    let extra = regions_error.clone().map(|e| SummaryItem { anchor: "f-site_regions-01".into(), text: format!("{}: {e}", ctx.t("grp-co-site-regions")) });
    let summary = summary_of(&fields, extra);
    CompanyForm { fields, regions, regions_error, summary }
}

// ---------------------------------------------------------------------------------------------------------------
// The list and registration

pub struct CompanyLine {
    pub id: String,
    pub name: String,
    pub partita_iva: String,
    pub role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_companies.html")]
struct ListPage {
    ctx: PageCtx,
    companies: Vec<CompanyLine>,
}

fn role_text(ctx: &PageCtx, r: Role) -> String {
    ctx.t(&format!("grp-role-{}", r.as_str()))
}

async fn list_page(State(state): State<AppState>, SignedIn(user, rc): SignedIn) -> Result<ListPage, PageError> {
    let ctx = PageCtx::build(&state, &rc).await;
    let companies = service::list(&state.db, &user.principal)
        .await?
        .into_iter()
        .map(|c| CompanyLine { id: c.id.to_string(), name: c.name, partita_iva: c.partita_iva, role: role_text(&ctx, c.my_role) })
        .collect();
    Ok(ListPage { ctx, companies })
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_company_new.html")]
struct NewPage {
    ctx: PageCtx,
    form: CompanyForm,
    summary: Vec<SummaryItem>,
}

async fn new_page(State(state): State<AppState>, SignedIn(_, rc): SignedIn) -> NewPage {
    let ctx = PageCtx::build(&state, &rc).await;
    let form = company_form(&ctx, &Vec::new(), &FieldErrors::new());
    NewPage { ctx, form, summary: Vec::new() }
}

async fn create(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Form(values): Form<Values>) -> Result<Response, PageError> {
    let (input, form_errors) = company_input(&values);
    let service_errors = if form_errors.is_empty() {
        match service::register(&state.db, &user.actor(rc.ip.clone()), &user.principal, &input).await {
            Ok(c) => return Ok(see_other(&format!("/companies/{}?done=registered", c.id))),
            Err(Error::Invalid(e)) => e,
            Err(e) => return Err(e.into()),
        }
    } else {
        input.validate().err().unwrap_or_default()
    };
    let errors = merge(form_errors, service_errors);
    let ctx = PageCtx::build(&state, &rc).await;
    let mut form = company_form(&ctx, &values, &errors);
    let summary = std::mem::take(&mut form.summary);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, NewPage { ctx, form, summary }).into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// A company's page

pub struct RepLine {
    pub account: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub is_me: bool,
    /// Whether the caller may remove this person (owners anyone, anyone themselves).
    pub removable: bool,
}

pub struct AidLine {
    pub id: String,
    pub granted_on: String,
    pub amount: String,
    pub granting_body: String,
    pub description: String,
    /// Whether it counts in the current three-year window.
    pub counts: bool,
}

/// The page's forms other than the company's: what was typed in them, and their errors.
#[derive(Default)]
struct Others {
    delegate: Values,
    delegate_errors: FieldErrors,
    aid: Values,
    aid_errors: FieldErrors,
    /// A refusal said as a whole (the last owner leaving).
    rep_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_company.html")]
struct CompanyPage {
    ctx: PageCtx,
    id: String,
    company: Company,
    regions: String,
    my_role: String,
    is_owner: bool,
    form: CompanyForm,
    reps: Vec<RepLine>,
    rep_error: Option<String>,
    delegate: Vec<Field>,
    aid: Vec<AidLine>,
    aid_form: Vec<Field>,
    used: String,
    ceiling: String,
    room: String,
    used_label: String,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

const AID_FIELDS: &[(&str, &str, &str, bool, bool, bool)] = &[
    ("granted_on", "date", "off", false, true, true),
    ("amount", "text", "off", true, true, true),
    ("granting_body", "text", "off", false, true, false),
    ("description", "text", "off", false, false, false),
];

fn date_it(iso: &str) -> String {
    // `YYYY-MM-DD` as `DD/MM/YYYY`, as the rest of the pages show dates.
    let p: Vec<&str> = iso.split('-').collect();
    if p.len() == 3 { format!("{}/{}/{}", p[2], p[1], p[0]) } else { iso.to_owned() }
}

#[allow(clippy::too_many_arguments)]
async fn render_company(
    state: &AppState,
    rc: &RequestCtx,
    user: &agilekit_web::auth::CurrentUser,
    c: Company,
    company_values: Option<&Values>,
    company_errors: &FieldErrors,
    others: Others,
    done: &str,
) -> Result<CompanyPage, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let p = &user.principal;
    let reps = service::representatives(&state.db, p, c.id).await?;
    let aid = service::aid(&state.db, p, c.id).await?;
    let is_owner = c.my_role == Role::Owner;
    let own_values = values_of_company(&c);
    let form = company_form(&ctx, company_values.unwrap_or(&own_values), company_errors);
    let delegate = fields(&ctx, "grp-rep", &[("email", "email", "off", false, true, true)], &others.delegate, &others.delegate_errors);
    let aid_form = fields(&ctx, "grp-aid", AID_FIELDS, &others.aid, &others.aid_errors);
    let mut summary: Vec<SummaryItem> = form.summary.iter().map(|s| SummaryItem { anchor: s.anchor.clone(), text: s.text.clone() }).collect();
    summary.extend(summary_of(&delegate, None));
    summary.extend(summary_of(&aid_form, None));
    if let Some(e) = &others.rep_error {
        summary.push(SummaryItem { anchor: "representatives-title".into(), text: e.clone() });
    }
    let window_after = aid.de_minimis.window_after.clone();
    let on = aid.de_minimis.on.clone();
    Ok(CompanyPage {
        id: c.id.to_string(),
        regions: c.site_regions.iter().map(|r| r.name.clone()).collect::<Vec<_>>().join(", "),
        my_role: role_text(&ctx, c.my_role),
        is_owner,
        form,
        reps: reps
            .into_iter()
            .map(|r| RepLine {
                account: r.account_id.to_string(),
                is_me: r.account_id == p.id(),
                removable: is_owner || r.account_id == p.id(),
                name: r.name,
                email: r.email,
                role: role_text(&ctx, r.role),
            })
            .collect(),
        rep_error: others.rep_error,
        delegate,
        aid: aid
            .items
            .into_iter()
            .map(|a| AidLine {
                counts: a.granted_on.as_str() > window_after.as_str() && a.granted_on.as_str() <= on.as_str(),
                id: a.id.to_string(),
                granted_on: date_it(&a.granted_on),
                amount: Cents(a.amount_cents).to_string(),
                granting_body: a.granting_body,
                description: a.description,
            })
            .collect(),
        aid_form,
        used: Cents(aid.de_minimis.used_cents).to_string(),
        ceiling: Cents(aid.de_minimis.ceiling_cents).to_string(),
        room: Cents(aid.de_minimis.room_cents).to_string(),
        used_label: ctx.lang.t_args("grp-aid-used", &[("after", date_it(&window_after)), ("today", date_it(&on))]),
        summary,
        notice: match done {
            "registered" | "saved" | "delegate-added" | "representative-removed" | "aid-added" | "aid-deleted" => Some(ctx.t(&format!("grp-done-{done}"))),
            _ => None,
        },
        company: c,
        ctx,
    })
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// The company if the caller acts for it: every route asks this first, so another's company is a 404 and nothing more.
async fn mine(state: &AppState, user: &agilekit_web::auth::CurrentUser, id: &str) -> Result<Company, PageError> {
    let id: CompanyId = parse_id(id)?;
    Ok(service::get(&state.db, &user.principal, id).await?)
}

async fn company_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Result<CompanyPage, PageError> {
    let c = mine(&state, &user, &id).await?;
    render_company(&state, &rc, &user, c, None, &FieldErrors::new(), Others::default(), &q.done).await
}

#[allow(clippy::too_many_arguments)]
async fn refused(state: &AppState, rc: &RequestCtx, user: &agilekit_web::auth::CurrentUser, c: Company, values: Option<&Values>, errors: &FieldErrors, others: Others, status: StatusCode) -> Result<Response, PageError> {
    let page = render_company(state, rc, user, c, values, errors, others, "").await?;
    Ok((status, page).into_response())
}

async fn update(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>, Form(values): Form<Values>) -> Result<Response, PageError> {
    let c = mine(&state, &user, &id).await?;
    let (input, form_errors) = company_input(&values);
    let service_errors = if form_errors.is_empty() {
        match service::update(&state.db, &user.actor(rc.ip.clone()), &user.principal, c.id, &input).await {
            Ok(c) => return Ok(see_other(&format!("/companies/{}?done=saved", c.id))),
            Err(Error::Invalid(e)) => e,
            Err(e) => return Err(e.into()),
        }
    } else {
        input.validate().err().unwrap_or_default()
    };
    let errors = merge(form_errors, service_errors);
    refused(&state, &rc, &user, c, Some(&values), &errors, Others::default(), StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn add_delegate(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>, Form(values): Form<Values>) -> Result<Response, PageError> {
    let c = mine(&state, &user, &id).await?;
    match service::add_delegate(&state.db, &user.actor(rc.ip.clone()), &user.principal, c.id, &value(&values, "email")).await {
        Ok(_) => Ok(see_other(&format!("/companies/{}?done=delegate-added#representatives-title", c.id))),
        Err(Error::Invalid(e)) => {
            let others = Others { delegate: values, delegate_errors: e, ..Others::default() };
            refused(&state, &rc, &user, c, None, &FieldErrors::new(), others, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove_representative(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((id, account)): Path<(String, String)>) -> Result<Response, PageError> {
    let c = mine(&state, &user, &id).await?;
    let account: AccountId = parse_id(&account)?;
    let leaving = account == user.principal.id();
    match service::remove_representative(&state.db, &user.actor(rc.ip.clone()), &user.principal, c.id, account).await {
        // Who left no longer sees the company: back to their list.
        Ok(()) if leaving => Ok(see_other("/companies")),
        Ok(()) => Ok(see_other(&format!("/companies/{}?done=representative-removed#representatives-title", c.id))),
        Err(Error::Conflict(code)) => {
            let ctx = PageCtx::build(&state, &rc).await;
            let others = Others { rep_error: Some(error_text(&ctx, code)), ..Others::default() };
            refused(&state, &rc, &user, c, None, &FieldErrors::new(), others, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn add_aid(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(id): Path<String>, Form(values): Form<Values>) -> Result<Response, PageError> {
    let c = mine(&state, &user, &id).await?;
    // The amount as people type it (`7.500,00`); the rest as the API takes it.
    let mut form_errors = FieldErrors::new();
    let amount = match Cents::parse(&value(&values, "amount")) {
        Ok(a) => Some(a.0),
        Err(crate::model::MoneyError::Empty) => None,
        Err(e) => {
            form_errors.add("amount", e.code());
            None
        }
    };
    let input = AidInput {
        granted_on: value(&values, "granted_on"),
        amount_cents: amount,
        granting_body: value(&values, "granting_body"),
        description: value(&values, "description"),
    };
    let service_errors = if form_errors.is_empty() {
        match service::add_aid(&state.db, &user.actor(rc.ip.clone()), &user.principal, c.id, &input).await {
            Ok(_) => return Ok(see_other(&format!("/companies/{}?done=aid-added#aid-title", c.id))),
            Err(Error::Invalid(e)) => e,
            Err(e) => return Err(e.into()),
        }
    } else {
        input.validate(agilekit_kernel::clock::to_rome(agilekit_kernel::clock::now()).date()).err().unwrap_or_default()
    };
    let mut errors = FieldErrors::new();
    for e in form_errors.0.into_iter().chain(service_errors.0) {
        let field = if e.field == "amount_cents" { "amount".to_owned() } else { e.field };
        if errors.get(&field).is_none() {
            errors.add(&field, &e.code);
        }
    }
    let others = Others { aid: values, aid_errors: errors, ..Others::default() };
    refused(&state, &rc, &user, c, None, &FieldErrors::new(), others, StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn delete_aid(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path((id, aid)): Path<(String, String)>) -> Result<Response, PageError> {
    let c = mine(&state, &user, &id).await?;
    let aid: AidId = parse_id(&aid)?;
    service::delete_aid(&state.db, &user.actor(rc.ip.clone()), &user.principal, c.id, aid).await?;
    Ok(see_other(&format!("/companies/{}?done=aid-deleted#aid-title", c.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_into_the_service_input_and_region_errors_go_to_the_group() {
        let v: Values = vec![
            ("employees".into(), "1.200".into()),
            ("site_regions".into(), "03".into()),
            ("site_regions".into(), "99".into()),
        ];
        let (input, errs) = company_input(&v);
        assert!(errs.is_empty());
        assert_eq!(input.employees, Some(1200));
        assert_eq!(input.site_regions, ["03", "99"]);
        let e = merge(FieldErrors::new(), input.validate().unwrap_err());
        assert_eq!(e.get("site_regions"), Some("unknown-region"));
        let (_, errs) = company_input(&vec![("employees".into(), "dodici".into())]);
        assert_eq!(errs.get("employees"), Some("format"));
        assert_eq!(date_it("2025-03-01"), "01/03/2025");
    }
}
