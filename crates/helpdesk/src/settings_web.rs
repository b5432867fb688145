//! Pages of an organisation's help-desk settings (`/orgs/{org}/helpdesk/settings`: the SLA targets, the business
//! calendar with up to two openings a day, the patron's day, closed dates and the warning threshold) and of its
//! canned responses (`/orgs/{org}/helpdesk/canned`). Plain forms: no JavaScript; a refused submission shows each
//! error beside its field and keeps what was typed.

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
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::canned::{self, Canned, CannedId, CannedInput};
use crate::inbound::api::{self as mail_api, MailSettings, MailSettingsInput};
use crate::settings::{self, CalendarForm, OpeningForm, OrgSettings, SettingsInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/helpdesk/settings", get(settings_page).post(settings_save))
        .route("/orgs/{org}/helpdesk/canned", get(canned_page).post(canned_create))
        .route("/orgs/{org}/helpdesk/canned/{canned}", get(canned_edit).post(canned_update))
        .route("/orgs/{org}/helpdesk/canned/{canned}/delete", post(canned_delete))
        .route("/orgs/{org}/helpdesk/mail", get(mail_page).post(mail_save))
        .route("/orgs/{org}/helpdesk/mail/token", post(mail_token))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

fn field_text(ctx: &PageCtx, code: &str) -> String {
    let key = format!("field-{code}");
    let t = ctx.t(&key);
    if t == key { ctx.t("error-invalid") } else { t }
}

/// A line of a form's error summary.
pub struct SummaryItem {
    pub anchor: String,
    pub text: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

/// One input of the settings form: its name is the API's field path (`calendar.monday.0.start`).
pub struct Input {
    pub name: String,
    pub id: String,
    pub label: String,
    pub value: String,
    pub error: Option<String>,
}

pub struct InputRow {
    pub label: String,
    pub inputs: Vec<Input>,
}

const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
/// Openings a day on the form (the API takes up to eight).
const SLOTS: usize = 2;

fn id_of(name: &str) -> String {
    format!("f-{}", name.replace('.', "-"))
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_settings.html")]
struct SettingsPage {
    ctx: PageCtx,
    org: OrgId,
    can_write: bool,
    custom: bool,
    policy: Vec<InputRow>,
    days: Vec<InputRow>,
    patron: Input,
    open_on_holidays: bool,
    closed: Input,
    warning: Input,
    hours_error: Option<String>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

/// The form's values by field name.
type Values = HashMap<String, String>;

fn values_of(s: &SettingsInput) -> Values {
    let mut v = Values::new();
    for (name, t) in [("low", s.policy.low), ("normal", s.policy.normal), ("high", s.policy.high), ("urgent", s.policy.urgent)] {
        v.insert(format!("policy.{name}.first_response_minutes"), t.first_response_minutes.to_string());
        v.insert(format!("policy.{name}.resolution_minutes"), t.resolution_minutes.to_string());
    }
    let c = &s.calendar;
    for (day, openings) in WEEKDAYS.iter().zip([&c.monday, &c.tuesday, &c.wednesday, &c.thursday, &c.friday, &c.saturday, &c.sunday]) {
        for (i, o) in openings.iter().enumerate().take(SLOTS) {
            v.insert(format!("calendar.{day}.{i}.start"), o.start.clone());
            v.insert(format!("calendar.{day}.{i}.end"), o.end.clone());
        }
    }
    v.insert("calendar.patron_day".into(), c.patron_day.clone().unwrap_or_default());
    if c.open_on_holidays {
        v.insert("calendar.open_on_holidays".into(), "1".into());
    }
    v.insert("calendar.closed_dates".into(), c.closed_dates.join("\n"));
    v.insert("warning_percent".into(), s.warning_percent.to_string());
    v
}

/// Reads the submitted form into the API's input. Numbers that are not numbers are field errors here; empty
/// openings are left out; `renames` maps the API's opening indexes back to the form's slots.
fn input_of(v: &Values) -> (SettingsInput, FieldErrors, HashMap<String, String>) {
    let mut errs = FieldErrors::new();
    let get = |k: &str| v.get(k).map(|s| s.trim().to_owned()).unwrap_or_default();
    let number = |k: &str, errs: &mut FieldErrors| -> i64 {
        let s = get(k);
        if s.is_empty() {
            errs.add(k, "required");
            1
        } else {
            s.parse().unwrap_or_else(|_| {
                errs.add(k, "format");
                1
            })
        }
    };
    let mut input = SettingsInput::default();
    for (name, t) in [
        ("low", &mut input.policy.low),
        ("normal", &mut input.policy.normal),
        ("high", &mut input.policy.high),
        ("urgent", &mut input.policy.urgent),
    ] {
        t.first_response_minutes = number(&format!("policy.{name}.first_response_minutes"), &mut errs);
        t.resolution_minutes = number(&format!("policy.{name}.resolution_minutes"), &mut errs);
    }
    let mut renames = HashMap::new();
    let c: &mut CalendarForm = &mut input.calendar;
    for (day, openings) in WEEKDAYS.iter().zip([
        &mut c.monday, &mut c.tuesday, &mut c.wednesday, &mut c.thursday, &mut c.friday, &mut c.saturday, &mut c.sunday,
    ]) {
        for slot in 0..SLOTS {
            let (start, end) = (get(&format!("calendar.{day}.{slot}.start")), get(&format!("calendar.{day}.{slot}.end")));
            if start.is_empty() && end.is_empty() {
                continue;
            }
            renames.insert(format!("calendar.{day}.{}.", openings.len()), format!("calendar.{day}.{slot}."));
            openings.push(OpeningForm { start, end });
        }
    }
    let patron = get("calendar.patron_day");
    c.patron_day = (!patron.is_empty()).then_some(patron);
    c.open_on_holidays = !get("calendar.open_on_holidays").is_empty();
    c.closed_dates = get("calendar.closed_dates")
        .split(|ch: char| ch.is_whitespace() || ch == ',' || ch == ';')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let pct = get("warning_percent");
    input.warning_percent = if pct.is_empty() { 0 } else { pct.parse().unwrap_or(-1) };
    (input, errs, renames)
}

/// The form's field an API error belongs to.
fn form_field(api: &str, renames: &HashMap<String, String>) -> String {
    if api.starts_with("calendar.closed_dates") {
        return "calendar.closed_dates".into();
    }
    for (from, to) in renames {
        if let Some(rest) = api.strip_prefix(from.as_str()) {
            return format!("{to}{rest}");
        }
    }
    api.to_owned()
}

#[allow(clippy::too_many_arguments)]
async fn render_settings(
    state: &AppState,
    rc: &RequestCtx,
    org: OrgId,
    can_write: bool,
    custom: bool,
    values: &Values,
    errors: &FieldErrors,
    renames: &HashMap<String, String>,
    done: &str,
) -> SettingsPage {
    let ctx = PageCtx::build(state, rc).await;
    // Errors by form field, with the closed dates' ones naming the date.
    let closed: Vec<&str> = values.get("calendar.closed_dates").map(|s| s.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    let mut by_field: HashMap<String, String> = HashMap::new();
    for e in &errors.0 {
        let field = form_field(&e.field, renames);
        let mut text = field_text(&ctx, &e.code);
        if let Some(i) = e.field.strip_prefix("calendar.closed_dates.").and_then(|i| i.parse::<usize>().ok())
            && let Some(d) = closed.get(i)
        {
            text = format!("{d}: {text}");
        }
        by_field.entry(field).and_modify(|t| { t.push_str("; "); t.push_str(&text) }).or_insert(text);
    }
    let input = |name: String, label: String| Input {
        id: id_of(&name),
        value: values.get(&name).cloned().unwrap_or_default(),
        error: by_field.get(&name).cloned(),
        name,
        label,
    };
    let policy: Vec<InputRow> = PRIORITIES
        .iter()
        .map(|p| {
            let label = ctx.t(&format!("hd-prio-{p}"));
            InputRow {
                inputs: vec![
                    input(format!("policy.{p}.first_response_minutes"), format!("{label}: {}", ctx.t("hds-first-response"))),
                    input(format!("policy.{p}.resolution_minutes"), format!("{label}: {}", ctx.t("hds-resolution"))),
                ],
                label,
            }
        })
        .collect();
    let days: Vec<InputRow> = WEEKDAYS
        .iter()
        .map(|d| {
            let label = ctx.t(&format!("hds-day-{d}"));
            let mut inputs = Vec::new();
            for slot in 0..SLOTS {
                let which = ctx.t(&format!("hds-slot-{slot}"));
                inputs.push(input(format!("calendar.{d}.{slot}.start"), format!("{label}, {which}: {}", ctx.t("hds-opens"))));
                inputs.push(input(format!("calendar.{d}.{slot}.end"), format!("{label}, {which}: {}", ctx.t("hds-closes"))));
            }
            InputRow { label, inputs }
        })
        .collect();
    let patron = input("calendar.patron_day".into(), ctx.t("hds-patron-day"));
    let closed_input = input("calendar.closed_dates".into(), ctx.t("hds-closed-dates"));
    let warning = input("warning_percent".into(), ctx.t("hds-warning-percent"));
    let hours_error = by_field.get("calendar.hours").cloned();
    // The summary links each error to its field, labelled as on the form.
    let labels: HashMap<String, String> = policy
        .iter()
        .chain(days.iter())
        .flat_map(|r| r.inputs.iter())
        .chain([&patron, &closed_input, &warning])
        .map(|i| (i.name.clone(), i.label.clone()))
        .collect();
    let mut summary = Vec::new();
    let mut seen = Vec::new();
    for e in &errors.0 {
        let field = form_field(&e.field, renames);
        if seen.contains(&field) {
            continue;
        }
        let (anchor, label) = if field == "calendar.hours" {
            (id_of("calendar.monday.0.start"), ctx.t("hds-hours"))
        } else {
            (id_of(&field), labels.get(&field).cloned().unwrap_or_else(|| field.clone()))
        };
        summary.push(SummaryItem { anchor, text: format!("{label}: {}", by_field.get(&field).cloned().unwrap_or_default()) });
        seen.push(field);
    }
    SettingsPage {
        org,
        can_write,
        custom,
        policy,
        days,
        patron,
        open_on_holidays: values.contains_key("calendar.open_on_holidays"),
        closed: closed_input,
        warning,
        hours_error,
        summary,
        notice: (done == "saved").then(|| ctx.t("hds-saved")),
        ctx,
    }
}

async fn settings_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<Done>,
) -> Result<SettingsPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    let view = settings::get(&state.db, &user.principal, org).await?;
    let input = SettingsInput { policy: view.policy, calendar: view.calendar, warning_percent: view.warning_percent };
    let can_write = user.principal.can_admin_org(org);
    Ok(render_settings(&state, &rc, org, can_write, view.custom, &values_of(&input), &FieldErrors::new(), &HashMap::new(), &q.done).await)
}

async fn settings_save(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let p = &user.principal;
    // Who may not read learns nothing; who may read but not write is refused before anything is checked.
    let view = settings::get(&state.db, p, org).await?;
    if !p.can_admin_org(org) {
        return Err(Error::Forbidden.into());
    }
    let values: Values = pairs.into_iter().collect();
    let (input, mut errors, renames) = input_of(&values);
    if let Err(more) = OrgSettings::parse(&input) {
        // A number the form could not read was given a stand-in: its own complaint stands, not the stand-in's.
        let refused: Vec<String> = errors.0.iter().map(|e| e.field.clone()).collect();
        for e in more.0 {
            if !refused.contains(&e.field) {
                errors.add(&e.field, &e.code);
            }
        }
    }
    if errors.is_empty() {
        match settings::update(&state.db, p, &user.actor(rc.ip.clone()), org, &input).await {
            Ok(_) => return Ok(see_other(&format!("/orgs/{org}/helpdesk/settings?done=saved"))),
            Err(Error::Invalid(e)) => errors = e,
            Err(e) => return Err(e.into()),
        }
    }
    let page = render_settings(&state, &rc, org, true, view.custom, &values, &errors, &renames, "").await;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

// ---------------------------------------------------------------------------------------------------------------
// Canned responses

pub struct CannedRow {
    pub id: String,
    pub title: String,
    pub excerpt: String,
    pub operator_wide: bool,
    pub editable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_canned.html")]
struct CannedPage {
    ctx: PageCtx,
    org: OrgId,
    /// The one being edited (its id), or none on the list with the new-response form.
    editing: Option<String>,
    rows: Vec<CannedRow>,
    title: String,
    body: String,
    title_error: Option<String>,
    body_error: Option<String>,
    summary: Vec<SummaryItem>,
    placeholders: Vec<String>,
    notice: Option<String>,
}

fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 100 { format!("{}…", one.chars().take(100).collect::<String>()) } else { one }
}

fn render_canned(ctx: PageCtx, org: OrgId, editing: Option<String>, list: &[Canned], typed: &CannedInput, errors: &FieldErrors, done: &str) -> CannedPage {
    let summary = errors
        .0
        .iter()
        .map(|e| SummaryItem {
            anchor: format!("f-{}", e.field),
            text: format!("{}: {}", ctx.t(&format!("hdc-label-{}", e.field)), field_text(&ctx, &e.code)),
        })
        .collect();
    let notice = match done {
        "created" | "updated" | "deleted" => Some(ctx.t(&format!("hdc-notice-{done}"))),
        _ => None,
    };
    CannedPage {
        org,
        editing,
        rows: list
            .iter()
            .map(|c| CannedRow {
                id: c.id.to_string(),
                title: c.title.clone(),
                excerpt: excerpt(&c.body),
                operator_wide: c.operator_wide,
                editable: c.editable,
            })
            .collect(),
        title: typed.title.clone(),
        body: typed.body.clone(),
        title_error: errors.get("title").map(|c| field_text(&ctx, c)),
        body_error: errors.get("body").map(|c| field_text(&ctx, c)),
        summary,
        placeholders: canned::PLACEHOLDERS.iter().map(|p| format!("{{{{{p}}}}}")).collect(),
        notice,
        ctx,
    }
}

#[derive(Deserialize, Default)]
struct CannedForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

async fn canned_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<Done>,
) -> Result<CannedPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    let list = canned::list(&state.db, &user.principal, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    Ok(render_canned(ctx, org, None, &list, &CannedInput::default(), &FieldErrors::new(), &q.done))
}

async fn canned_create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(f): Form<CannedForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let input = CannedInput { title: f.title, body: f.body };
    match canned::create(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, &input).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/helpdesk/canned?done=created"))),
        Err(Error::Invalid(errors)) => {
            let list = canned::list(&state.db, &user.principal, org).await?;
            let ctx = PageCtx::build(&state, &rc).await;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render_canned(ctx, org, None, &list, &input, &errors, "")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn canned_edit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<Done>,
) -> Result<CannedPage, PageError> {
    let (org, id): (OrgId, CannedId) = (parse_id(&org)?, parse_id(&id)?);
    let c = canned::get(&state.db, &user.principal, org, id).await?;
    if !c.editable {
        return Err(PageError::not_found());
    }
    let ctx = PageCtx::build(&state, &rc).await;
    let typed = CannedInput { title: c.title.clone(), body: c.body.clone() };
    Ok(render_canned(ctx, org, Some(id.to_string()), &[], &typed, &FieldErrors::new(), &q.done))
}

async fn canned_update(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(f): Form<CannedForm>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, CannedId) = (parse_id(&org)?, parse_id(&id)?);
    let input = CannedInput { title: f.title, body: f.body };
    match canned::update(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id, &input).await {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/helpdesk/canned?done=updated"))),
        Err(Error::Invalid(errors)) => {
            let ctx = PageCtx::build(&state, &rc).await;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render_canned(ctx, org, Some(id.to_string()), &[], &input, &errors, "")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn canned_delete(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, CannedId) = (parse_id(&org)?, parse_id(&id)?);
    canned::delete(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, id).await?;
    Ok(see_other(&format!("/orgs/{org}/helpdesk/canned?done=deleted")))
}

// ---------------------------------------------------------------------------------------------------------------
// Mail: the organisation's mailbox (IMAP) and the delivery token, the page twin of crate::inbound::api

/// The TLS modes the form offers, as the API names them.
const TLS_MODES: [&str; 3] = ["tls", "starttls", "none"];
/// The form's text fields, in order, as the API names them.
const MAIL_FIELDS: [&str; 6] = ["host", "port", "username", "folder", "address", "password"];

pub struct TlsChoice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_mail_settings.html")]
struct MailPage {
    ctx: PageCtx,
    org: OrgId,
    enabled: bool,
    /// host, port, username, folder, address, password (never filled in).
    fields: Vec<Input>,
    tls: Vec<TlsChoice>,
    tls_error: Option<String>,
    password_set: bool,
    token_set: bool,
    /// A delivery token just made: shown this once.
    new_token: Option<String>,
    endpoint: String,
    last_poll: Option<String>,
    last_error: Option<String>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

/// What the mail form sent: text as typed (the port too, so that a non-number comes back as typed).
#[derive(Deserialize, Default)]
#[serde(default)]
struct MailForm {
    enabled: String,
    host: String,
    port: String,
    tls: String,
    username: String,
    password: String,
    folder: String,
    address: String,
}

impl MailForm {
    fn of(s: &MailSettings) -> MailForm {
        MailForm {
            enabled: if s.enabled { "1".into() } else { String::new() },
            host: s.host.clone(),
            port: s.port.to_string(),
            tls: s.tls.clone(),
            username: s.username.clone(),
            password: String::new(),
            folder: s.folder.clone(),
            address: s.address.clone(),
        }
    }

    fn value(&self, field: &str) -> String {
        match field {
            "host" => self.host.clone(),
            "port" => self.port.clone(),
            "username" => self.username.clone(),
            "folder" => self.folder.clone(),
            "address" => self.address.clone(),
            // Never shown back, not even after an error.
            _ => String::new(),
        }
    }

    /// The API's input, and the errors the form finds itself (a port that is not a number: a stand-in goes on).
    fn input(&self) -> (MailSettingsInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let port = match self.port.trim() {
            "" => {
                errors.add("port", "required");
                993
            }
            p => p.parse::<i64>().unwrap_or_else(|_| {
                errors.add("port", "format");
                993
            }),
        };
        let input = MailSettingsInput {
            enabled: !self.enabled.is_empty(),
            host: self.host.clone(),
            port,
            tls: self.tls.clone(),
            username: self.username.clone(),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            folder: self.folder.clone(),
            address: self.address.clone(),
        };
        (input, errors)
    }
}

fn render_mail(ctx: PageCtx, state: &AppState, org: OrgId, stored: &MailSettings, form: &MailForm, errors: &FieldErrors, notice: Option<String>, new_token: Option<String>) -> MailPage {
    let label = |f: &str| ctx.t(&format!("hdm-label-{f}"));
    let fields = MAIL_FIELDS
        .iter()
        .map(|f| Input {
            name: (*f).to_owned(),
            id: format!("f-{f}"),
            label: label(f),
            value: form.value(f),
            error: errors.get(f).map(|c| field_text(&ctx, c)),
        })
        .collect();
    // The summary in the form's order.
    let summary = ["enabled", "host", "port", "tls", "username", "password", "folder", "address"]
        .iter()
        .filter_map(|f| errors.get(f).map(|c| SummaryItem { anchor: format!("f-{f}"), text: format!("{}: {}", label(f), field_text(&ctx, c)) }))
        .collect();
    let tls = TLS_MODES
        .iter()
        .map(|m| TlsChoice { value: m, label: ctx.t(&format!("hdm-tls-{m}")), selected: form.tls.trim() == *m })
        .collect();
    MailPage {
        org,
        enabled: !form.enabled.is_empty(),
        fields,
        tls,
        tls_error: errors.get("tls").map(|c| field_text(&ctx, c)),
        password_set: stored.password_set,
        token_set: stored.delivery_token_set || new_token.is_some(),
        new_token,
        endpoint: format!("{}/api/v1/helpdesk/inbound/{org}", state.cfg.public_url.trim_end_matches('/')),
        last_poll: stored.last_poll_at.map(agilekit_kernel::clock::format_rome),
        last_error: stored.last_error.clone(),
        summary,
        notice,
        ctx,
    }
}

async fn mail_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Query(q): Query<Done>,
) -> Result<MailPage, PageError> {
    let org: OrgId = parse_id(&org)?;
    let stored = mail_api::settings(&state.db, &user.principal, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let notice = (q.done == "saved").then(|| ctx.t("hdm-saved"));
    Ok(render_mail(ctx, &state, org, &stored, &MailForm::of(&stored), &FieldErrors::new(), notice, None))
}

async fn mail_save(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    Form(form): Form<MailForm>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let p = &user.principal;
    // Who may not manage the mailbox is refused before anything is checked.
    let stored = mail_api::settings(&state.db, p, org).await?;
    let (input, mut errors) = form.input();
    if errors.is_empty() {
        match mail_api::save(&state.db, p, &user.actor(rc.ip.clone()), org, &input).await {
            Ok(_) => return Ok(see_other(&format!("/orgs/{org}/helpdesk/mail?done=saved"))),
            Err(Error::Invalid(e)) => errors = e,
            Err(e) => return Err(e.into()),
        }
    } else {
        // The form's own complaint about a field stands (not the stand-in's); the rest is checked as the API would.
        let refused: Vec<String> = errors.0.iter().map(|e| e.field.clone()).collect();
        for e in mail_api::check(&state.db, org, &input).await?.0 {
            if !refused.contains(&e.field) {
                errors.add(&e.field, &e.code);
            }
        }
    }
    let ctx = PageCtx::build(&state, &rc).await;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render_mail(ctx, &state, org, &stored, &form, &errors, None, None)).into_response())
}

/// Makes (or replaces) the delivery token and shows it on the page that answers, this once: not a redirect, so
/// the token is in no URL and no later page.
async fn mail_token(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let p = &user.principal;
    let token = mail_api::new_delivery_token(&state.db, p, &user.actor(rc.ip.clone()), org).await?;
    let stored = mail_api::settings(&state.db, p, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let notice = Some(ctx.t("hdm-token-made"));
    let mut r = render_mail(ctx, &state, org, &stored, &MailForm::of(&stored), &FieldErrors::new(), notice, Some(token)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_into_the_api_input_and_errors_map_back_to_its_slots() {
        let mut v = values_of(&OrgSettings::default().to_input());
        // Monday: the morning left empty, the afternoon given; a closed date list with commas and lines.
        v.insert("calendar.monday.0.start".into(), String::new());
        v.insert("calendar.monday.0.end".into(), String::new());
        v.insert("calendar.monday.1.start".into(), "15:00".into());
        v.insert("calendar.monday.1.end".into(), "14:00".into());
        v.insert("calendar.closed_dates".into(), "2026-12-24, 2026-12-31\n2027-02-30".into());
        v.insert("policy.low.first_response_minutes".into(), "dieci".into());
        let (input, errs, renames) = input_of(&v);
        assert_eq!(errs.get("policy.low.first_response_minutes"), Some("format"));
        assert_eq!(input.calendar.monday, vec![OpeningForm { start: "15:00".into(), end: "14:00".into() }]);
        assert_eq!(input.calendar.closed_dates, ["2026-12-24", "2026-12-31", "2027-02-30"]);
        let e = OrgSettings::parse(&input).unwrap_err();
        let fields: Vec<String> = e.0.iter().map(|x| form_field(&x.field, &renames)).collect();
        assert!(fields.contains(&"calendar.monday.1.end".to_owned()), "{fields:?}");
        assert!(fields.contains(&"calendar.closed_dates".to_owned()), "{fields:?}");
        assert_eq!(id_of("calendar.monday.1.end"), "f-calendar-monday-1-end");
    }
}
