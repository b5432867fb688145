//! The help desk's pages: the requester's `/helpdesk` (their tickets in the current organisation and a new-ticket
//! form), the agents' queue `/orgs/{org}/helpdesk` (filters, keyset pages, the count shown apart), and one ticket
//! page `/orgs/{org}/helpdesk/tickets/{ticket}` that shows each person what the service lets them see: the public
//! thread and a reply form to the requester; notes and the agents' forms to agents. Every form works without
//! JavaScript and keeps what was typed when it is refused.

use agilekit_web::pages::{parse_id, see_other};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, FieldErrors, clock};
use agilekit_web::AppState;
use agilekit_web::auth::{CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::model::{Category, Priority, State as TicketState, TicketId};
use crate::service::{
    self, AssignInput, BodyInput, EscalateInput, ListQuery, NewTicket, PriorityInput, StateInput, Ticket, TicketDetail,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/helpdesk", get(mine))
        .route("/orgs/{org}/helpdesk", get(queue))
        // The forms that take files: the extractors' own limit off, the outer layers cap a multipart body at the file
        // uploads' limit (`WebConfig::upload_limit`) and a urlencoded one at the ordinary limit.
        .route("/orgs/{org}/helpdesk/tickets", post(create).layer(DefaultBodyLimit::disable()))
        .route("/orgs/{org}/helpdesk/tickets/{ticket}", get(ticket_page))
        .route("/orgs/{org}/helpdesk/tickets/{ticket}/{action}", post(act).layer(DefaultBodyLimit::disable()))
        .route("/orgs/{org}/helpdesk/tickets/{ticket}/attachments/{file}", get(attachment))
}

// ---------------------------------------------------------------------------------------------------------------
// Forms with files

/// A file uploaded by an earlier try of a form, kept so that nobody uploads twice: sent back as a hidden
/// `pending` input, with a `remove` checkbox.
struct PendingFile {
    id: String,
    name: String,
    size: String,
}

/// A form of the help desk's pages that may carry files (multipart; a urlencoded one is read the same way): its
/// text fields, the ids of the files to attach (those kept from an earlier try and not removed, then those uploaded
/// now), and the uploads that were refused.
#[derive(Default)]
struct FilesForm {
    fields: Vec<(String, String)>,
    files: Vec<String>,
    errors: FieldErrors,
}

impl FilesForm {
    fn get(&self, name: &str) -> String {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

fn bad_form() -> PageError {
    PageError::status(StatusCode::BAD_REQUEST, "error-invalid")
}

/// Reads a form, storing its files as pending files of the caller in `org` as they come (one in memory at a time).
/// A file over the limit is a field error (`attachments`: `file-too-large`) and is not stored.
async fn read_files_form(state: &AppState, user: &CurrentUser, org: OrgId, req: Request) -> Result<FilesForm, PageError> {
    let multipart = req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    let mut form = FilesForm::default();
    let (mut pending, mut remove) = (Vec::new(), Vec::new());
    if !multipart {
        let Form(fields): Form<Vec<(String, String)>> = Form::from_request(req, state).await.map_err(|_| bad_form())?;
        for (k, v) in fields {
            match k.as_str() {
                "pending" => pending.push(v),
                "remove" => remove.push(v),
                _ => form.fields.push((k, v)),
            }
        }
    } else {
        let mut mp = Multipart::from_request(req, state).await.map_err(|_| bad_form())?;
        let limit = state.cfg.files.max_bytes;
        let mut uploaded = Vec::new();
        loop {
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(PageError::status(StatusCode::PAYLOAD_TOO_LARGE, "error-too-large"));
                }
                Err(_) => return Err(bad_form()),
            };
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
                match crate::api::read_limited(&mut field, limit).await {
                    // A file input left empty still sends a part, without a name or bytes.
                    Ok(Some(data)) if file_name.is_empty() && data.is_empty() => {}
                    Ok(Some(data)) => {
                        let meta = crate::attachments::upload(&state.db, &state.cfg.files, &user.principal, org, &file_name, &ct, &data).await?;
                        uploaded.push(meta.id.to_string());
                    }
                    Ok(None) => {
                        if form.errors.get("attachments").is_none() {
                            form.errors.add("attachments", "file-too-large");
                        }
                    }
                    Err(_) => return Err(bad_form()),
                }
                continue;
            }
            let text = field.text().await.map_err(|_| bad_form())?;
            // As `agilekit_web::input::reject_nul` does for urlencoded forms: no form carries one, and PostgreSQL
            // cannot store one in text.
            if text.contains('\0') {
                return Err(bad_form());
            }
            match name.as_str() {
                "pending" => pending.push(text),
                "remove" => remove.push(text),
                _ => form.fields.push((name, text)),
            }
        }
        pending.extend(uploaded.iter().cloned());
        remove.retain(|r| !uploaded.contains(r));
    }
    let mut files: Vec<String> = Vec::new();
    for id in pending.into_iter().filter(|p| !remove.contains(p)) {
        if !files.contains(&id) {
            files.push(id);
        }
    }
    form.files = files;
    Ok(form)
}

/// A page's errors with `attachments[i]` said of the file input (`attachments`), once.
fn on_file_input(errors: FieldErrors) -> FieldErrors {
    let mut out = FieldErrors::new();
    for e in errors.0 {
        let field = if e.field.starts_with("attachments[") { "attachments".to_owned() } else { e.field };
        if out.get(&field).is_none() {
            out.add(&field, &e.code);
        }
    }
    out
}

/// The caller's pending files among `ids`, to show again with a refused form (another's ids show nothing).
async fn pending_files(state: &AppState, user: &CurrentUser, org: OrgId, ids: &[String]) -> Result<Vec<PendingFile>, PageError> {
    let ids: Vec<agilekit_kernel::files::FileId> = ids.iter().filter_map(|s| s.trim().parse().ok()).collect();
    let found = agilekit_kernel::files::pending_of(&state.db, org, user.principal.id(), &ids).await.map_err(Error::from)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.iter().find(|f| f.id == *id))
        .map(|f| PendingFile { id: f.id.to_string(), name: f.name.clone(), size: crate::attachments::human_size(f.size) })
        .collect())
}

/// A ticket's file, downloaded from its page (as the API's twin: a note's files for agents only).
async fn attachment(
    State(state): State<AppState>,
    SignedIn(user, _): SignedIn,
    Path((org, id, file)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let (org, id, file): (OrgId, TicketId, agilekit_kernel::files::FileId) = (parse_id(&org)?, parse_id(&id)?, parse_id(&file)?);
    let (meta, data) = crate::attachments::download(&state.db, &user.principal, org, id, file).await?;
    Ok(crate::attachments::response(&meta, data))
}

/// A choice of a select, with the one chosen.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices<'a>(ctx: &PageCtx, prefix: &str, values: impl IntoIterator<Item = &'a str>, chosen: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice { value: v.to_owned(), label: ctx.t(&format!("{prefix}{v}")), selected: v == chosen })
        .collect()
}

/// A line of a form's error summary.
struct SummaryItem {
    anchor: String,
    text: String,
}

fn summary(ctx: &PageCtx, errors: &FieldErrors) -> Vec<SummaryItem> {
    errors
        .0
        .iter()
        .map(|e| {
            let field = e.field.split('[').next().unwrap_or("");
            SummaryItem {
                anchor: format!("f-{field}"),
                text: format!("{}: {}", ctx.t(&format!("hd-label-{field}")), ctx.t(&format!("field-{}", e.code))),
            }
        })
        .collect()
}

/// A ticket as a row of a list.
struct Row {
    link: String,
    reference: String,
    subject: String,
    requester: String,
    category: String,
    state: String,
    state_class: &'static str,
    priority: String,
    updated: String,
    escalated: bool,
    breached: bool,
}

fn state_class(s: TicketState) -> &'static str {
    match s {
        TicketState::New => "text-bg-primary",
        TicketState::Open => "text-bg-info",
        TicketState::Pending => "text-bg-warning",
        TicketState::Resolved => "text-bg-success",
        TicketState::Closed | TicketState::Merged => "text-bg-secondary",
    }
}

fn row(ctx: &PageCtx, t: &Ticket) -> Row {
    Row {
        link: format!("/orgs/{}/helpdesk/tickets/{}", t.org_id, t.id),
        reference: t.reference.clone(),
        subject: t.subject.clone(),
        requester: t.requester_name.clone(),
        category: ctx.t(&format!("hd-cat-{}", t.category.as_str())),
        state: ctx.t(&format!("hd-state-{}", t.state.as_str())),
        state_class: state_class(t.state),
        priority: ctx.t(&format!("hd-prio-{}", t.priority)),
        updated: ctx.format_time(&t.updated_at),
        escalated: t.queue == crate::model::Queue::Operator,
        breached: t.sla.first_response.breached || t.sla.resolution.breached,
    }
}

/// The confirmation shown after a change; only known codes, so a URL cannot put arbitrary text on the page.
fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    let known = ["created", "reply", "note", "state", "assign", "priority", "escalate"];
    known.contains(&done).then(|| ctx.t(&format!("hd-notice-{done}")))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
    /// On the ticket page: a canned response to insert in the reply box (crate::canned).
    #[serde(default)]
    canned: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The requester's page

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_mine.html")]
struct MinePage {
    ctx: PageCtx,
    org: Option<OrgId>,
    org_name: String,
    entitled: bool,
    is_staff: bool,
    tickets: Vec<Row>,
    /// Resolved tickets of the requester awaiting a satisfaction answer.
    surveys: Vec<crate::survey::Awaiting>,
    categories: Vec<Choice>,
    subject: String,
    body: String,
    /// Files uploaded by a refused try, kept.
    pending: Vec<PendingFile>,
    /// "Up to 10 files, at most 10.5 MB each."
    files_hint: String,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

async fn render_mine(state: &AppState, rc: &RequestCtx, user: &CurrentUser, typed: &NewTicket, pending: Vec<PendingFile>, errors: FieldErrors, done: &str) -> Result<MinePage, PageError> {
    let ctx = PageCtx::build(state, rc).await;
    let p = &user.principal;
    let (org, org_name, entitled, tickets, is_staff) = match ctx.current_org.clone() {
        Some(o) => {
            let entitled = agilekit_kernel::catalogue::entitlement(&state.db, p.id(), o.id, agilekit_kernel::catalogue::Service::Helpdesk)
                .await?
                .is_ok();
            // Their own tickets, even where they are also an agent: the queue is the agents' page.
            let q = ListQuery { limit: Some("100".into()), mine: Some("true".into()), ..Default::default() };
            let page = service::tickets(&state.db, p, o.id, &q).await?;
            let is_staff = service::agents(&state.db, p, o.id).await.is_ok();
            (Some(o.id), o.name, entitled, page.items, is_staff)
        }
        None => (None, String::new(), false, Vec::new(), false),
    };
    let cats = Category::ALL.iter().map(|c| c.as_str());
    Ok(MinePage {
        org,
        org_name,
        entitled,
        is_staff,
        tickets: tickets.iter().map(|t| row(&ctx, t)).collect(),
        surveys: crate::survey::prompts(&state.db, p, org).await,
        categories: choices(&ctx, "hd-cat-", cats, typed.category.as_str()),
        subject: typed.subject.clone(),
        body: typed.body.clone(),
        pending,
        files_hint: ctx.t1("hdf-hint", "size", &crate::attachments::human_size(state.cfg.files.max_bytes as i64)),
        summary: summary(&ctx, &errors),
        errors,
        notice: notice(&ctx, done),
        ctx,
    })
}

async fn mine(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Query(q): Query<Done>) -> Result<MinePage, PageError> {
    render_mine(&state, &rc, &user, &NewTicket::default(), Vec::new(), FieldErrors::new(), &q.done).await
}

async fn create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org): Path<String>,
    req: Request,
) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let form = read_files_form(&state, &user, org, req).await?;
    let f = NewTicket { category: form.get("category"), subject: form.get("subject"), body: form.get("body") };
    // A refused upload refuses the form, the files that did arrive kept as pending.
    let result = if form.errors.is_empty() {
        service::open_attached(&state.db, &user.principal, &user.actor(rc.ip.clone()), org, &f, &form.files, clock::now()).await
    } else {
        Err(Error::Invalid(form.errors.clone()))
    };
    match result {
        Ok(d) => Ok(see_other(&format!("/orgs/{org}/helpdesk/tickets/{}?done=created", d.ticket.id))),
        Err(Error::Invalid(errors)) => {
            let pending = pending_files(&state, &user, org, &form.files).await?;
            let page = render_mine(&state, &rc, &user, &f, pending, on_file_input(errors), "").await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The agents' queue

#[derive(Deserialize, Default)]
struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    priority: String,
    /// `me`: only mine.
    #[serde(default)]
    assignee: String,
    /// Full-text search.
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_queue.html")]
struct QueuePage {
    ctx: PageCtx,
    org: OrgId,
    rows: Vec<Row>,
    count: i64,
    /// More than `count` (the cap).
    count_more: bool,
    states: Vec<Choice>,
    categories: Vec<Choice>,
    priorities: Vec<Choice>,
    only_mine: bool,
    /// The search text as typed (shown back in the search box).
    q: String,
    next_link: Option<String>,
    first_link: Option<String>,
    errors: FieldErrors,
}

/// The queue page counts this far (an exact count of a large queue reads all of it; the API's `/count` is exact);
/// a search less far (on SQLite, counting the matches of a common word checks ticket after ticket).
const COUNT_CAP: i64 = 1000;
const SEARCH_COUNT_CAP: i64 = 100;

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

async fn queue(State(state): State<AppState>, SignedIn(user, rc): SignedIn, Path(org): Path<String>, Query(q): Query<QueueQuery>) -> Result<Response, PageError> {
    let org: OrgId = parse_id(&org)?;
    let p = &user.principal;
    // Agents and admins of the organisation only (the service answers 404 to anyone else).
    service::agents(&state.db, p, org).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let mut lq = ListQuery {
        state: opt(&q.state),
        category: opt(&q.category),
        priority: opt(&q.priority),
        assignee: opt(&q.assignee),
        q: opt(&q.q),
        after: opt(&q.after),
        ..Default::default()
    };
    let cap = if lq.q.is_some() { SEARCH_COUNT_CAP } else { COUNT_CAP };
    let (page, count, errors) = match (service::tickets(&state.db, p, org, &lq).await, service::count_upto(&state.db, p, org, &lq, cap).await) {
        (Ok(page), Ok(c)) => (page, c.count, FieldErrors::new()),
        (Err(Error::Invalid(errors)), _) | (_, Err(Error::Invalid(errors))) => {
            lq = ListQuery::default();
            let page = service::tickets(&state.db, p, org, &lq).await?;
            let c = service::count_upto(&state.db, p, org, &lq, cap).await?;
            (page, c.count, errors)
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    let filters = |after: Option<&str>| {
        let mut parts = vec![];
        for (k, v) in [("state", &lq.state), ("category", &lq.category), ("priority", &lq.priority), ("assignee", &lq.assignee), ("q", &lq.q)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", url_escape(v)));
            }
        }
        if let Some(a) = after {
            parts.push(format!("after={}", url_escape(a)));
        }
        if parts.is_empty() { format!("/orgs/{org}/helpdesk") } else { format!("/orgs/{org}/helpdesk?{}", parts.join("&")) }
    };
    let next_link = page.next.as_deref().map(|n| filters(Some(n)));
    let first_link = lq.after.is_some().then(|| filters(None));
    let states = TicketState::ALL.iter().map(|s| s.as_str());
    let cats = Category::ALL.iter().map(|c| c.as_str());
    let prios = Priority::ALL.iter().map(|p| p.as_str());
    let page = QueuePage {
        org,
        rows: page.items.iter().map(|t| row(&ctx, t)).collect(),
        count: count.min(cap),
        count_more: count > cap,
        states: choices(&ctx, "hd-state-", states, lq.state.as_deref().unwrap_or("")),
        categories: choices(&ctx, "hd-cat-", cats, lq.category.as_deref().unwrap_or("")),
        priorities: choices(&ctx, "hd-prio-", prios, lq.priority.as_deref().unwrap_or("")),
        only_mine: lq.assignee.as_deref() == Some("me"),
        q: q.q.clone(),
        next_link,
        first_link,
        errors,
        ctx,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, page).into_response())
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// The ticket page

/// A file of a message, linked for download.
struct FileLink {
    name: String,
    size: String,
    content_type: String,
    link: String,
}

struct MessageView {
    files: Vec<FileLink>,
    note: bool,
    author: String,
    at: String,
    /// The body's lines (the page's CSP allows no inline style to keep line breaks).
    lines: Vec<String>,
}

struct ClockLine {
    label: String,
    state: String,
    due: String,
    breached: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_ticket.html")]
struct TicketPage {
    ctx: PageCtx,
    org: OrgId,
    t: Row,
    id: TicketId,
    is_agent: bool,
    can_escalate: bool,
    active: bool,
    /// A reply may still go in: the ticket is active, or resolved and the requester may reopen it by answering.
    can_reply: bool,
    assignee: String,
    merged_into: Option<String>,
    messages: Vec<MessageView>,
    clocks: Vec<ClockLine>,
    states: Vec<Choice>,
    priorities: Vec<Choice>,
    agents: Vec<Choice>,
    /// Which form failed (`reply`, `note`, `state`…), its typed text and its errors.
    failed: String,
    typed: String,
    /// The refused form's files, kept.
    pending: Vec<PendingFile>,
    files_hint: String,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
    back: String,
    /// The canned responses an agent may insert in the reply (crate::canned; helpdesk_canned_pick.html).
    canned: Vec<crate::canned::Canned>,
    /// The satisfaction answer and, for the requester of a resolved ticket, the invitation to give it.
    survey: crate::survey::TicketBox,
}

/// A form of the ticket page that was refused: which one, what was typed, and why.
#[derive(Default)]
struct Refused {
    action: String,
    typed: String,
    pending: Vec<PendingFile>,
    errors: FieldErrors,
}

async fn render_ticket(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    d: TicketDetail,
    refused: Refused,
    done: &str,
) -> Result<TicketPage, PageError> {
    let Refused { action: failed, typed, pending, errors } = refused;
    let ctx = PageCtx::build(state, rc).await;
    let p = &user.principal;
    let canned = crate::canned::for_ticket_page(&state.db, p, &d, "").await?.0;
    let org = d.ticket.org_id;
    let is_agent = d.role != "requester";
    let agents: Vec<(AccountId, String)> = if is_agent { service::agents(&state.db, p, org).await.unwrap_or_default() } else { Vec::new() };
    let assignee = d
        .ticket
        .assignee_id
        .map(|a| agents.iter().find(|(id, _)| *id == a).map_or_else(|| a.to_string(), |(_, n)| n.clone()))
        .unwrap_or_else(|| ctx.t("hd-unassigned"));
    let chosen = d.ticket.assignee_id.map(|a| a.to_string()).unwrap_or_default();
    let mut agent_choices = vec![Choice { value: String::new(), label: ctx.t("hd-unassigned"), selected: chosen.is_empty() }];
    agent_choices.extend(agents.iter().map(|(id, n)| Choice { value: id.to_string(), label: n.clone(), selected: id.to_string() == chosen }));
    let clocks = [("hd-sla-first", &d.ticket.sla.first_response), ("hd-sla-resolution", &d.ticket.sla.resolution)]
        .into_iter()
        .map(|(k, c)| ClockLine {
            label: ctx.t(k),
            state: ctx.t(&format!("hd-clock-{}", c.state)),
            due: ctx.format_opt_time(&c.due_at),
            breached: c.breached,
        })
        .collect();
    let movable = ["open", "pending", "resolved", "closed"];
    let prios = Priority::ALL.iter().map(|p| p.as_str());
    let messages = d
        .messages
        .iter()
        .map(|m| MessageView {
            files: m
                .attachments
                .iter()
                .map(|a| FileLink {
                    name: a.name.clone(),
                    size: crate::attachments::human_size(a.size),
                    content_type: a.content_type.clone(),
                    link: format!("/orgs/{org}/helpdesk/tickets/{}/attachments/{}", d.ticket.id, a.id),
                })
                .collect(),
            note: m.kind == crate::model::MessageKind::Note,
            author: m.author_name.clone().unwrap_or_default(),
            at: ctx.format_time(&m.created_at),
            lines: m.body.lines().map(str::to_owned).collect(),
        })
        .collect();
    Ok(TicketPage {
        org,
        id: d.ticket.id,
        t: row(&ctx, &d.ticket),
        is_agent,
        can_escalate: d.role == "agent" && d.ticket.queue == crate::model::Queue::Org,
        active: d.ticket.state.is_active(),
        can_reply: d.ticket.state.is_active() || (!is_agent && d.ticket.state == TicketState::Resolved),
        assignee,
        merged_into: d.ticket.merged_into.map(|m| format!("/orgs/{org}/helpdesk/tickets/{m}")),
        messages,
        clocks,
        states: choices(&ctx, "hd-state-", movable, d.ticket.state.as_str()),
        priorities: choices(&ctx, "hd-prio-", prios, d.ticket.priority.as_str()),
        agents: agent_choices,
        failed,
        typed,
        pending,
        files_hint: ctx.t1("hdf-hint", "size", &crate::attachments::human_size(state.cfg.files.max_bytes as i64)),
        summary: summary(&ctx, &errors),
        errors,
        notice: notice(&ctx, done),
        back: if d.role == "agent" { format!("/orgs/{org}/helpdesk") } else { "/helpdesk".to_owned() },
        canned,
        survey: crate::survey::TicketBox::of(&ctx, &d),
        ctx,
    })
}

async fn ticket_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<Done>,
) -> Result<TicketPage, PageError> {
    let (org, id): (OrgId, TicketId) = (parse_id(&org)?, parse_id(&id)?);
    let d = service::ticket(&state.db, &user.principal, org, id).await?;
    // `?canned=<id>` fills the reply box with that canned response (a GET form: no JavaScript needed).
    let (_, prefill) = crate::canned::for_ticket_page(&state.db, &user.principal, &d, &q.canned).await?;
    let refused = prefill.map(|typed| Refused { action: "reply".into(), typed, ..Default::default() }).unwrap_or_default();
    render_ticket(&state, &rc, &user, d, refused, &q.done).await
}

/// Every form of the ticket page: reply, note, state, assign, priority, escalate.
async fn act(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id, action)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, PageError> {
    let (org, id): (OrgId, TicketId) = (parse_id(&org)?, parse_id(&id)?);
    if !["reply", "note", "state", "assign", "priority", "escalate"].contains(&action.as_str()) {
        return Err(PageError::not_found());
    }
    // Someone with no business with the ticket stores nothing (404 before the files are read).
    service::ticket(&state.db, &user.principal, org, id).await?;
    let f = read_files_form(&state, &user, org, req).await?;
    let (db, p, actor, now) = (&state.db, &user.principal, user.actor(rc.ip.clone()), clock::now());
    // A refused upload refuses the form, the files that did arrive kept as pending.
    let refused_upload = (!f.errors.is_empty()).then(|| Err(Error::Invalid(f.errors.clone())));
    let (result, typed) = match action.as_str() {
        "reply" => {
            let r = match refused_upload {
                Some(e) => e,
                None => service::reply_attached(db, p, &actor, org, id, &BodyInput { body: f.get("body") }, &f.files, now, &state.cfg.public_url).await,
            };
            (r, f.get("body"))
        }
        "note" => {
            let r = match refused_upload {
                Some(e) => e,
                None => service::note_attached(db, p, &actor, org, id, &BodyInput { body: f.get("body") }, &f.files, now).await,
            };
            (r, f.get("body"))
        }
        "state" => (service::set_state(db, p, &actor, org, id, &StateInput { state: f.get("state") }, now, &state.cfg.public_url).await, String::new()),
        "assign" => {
            let input = AssignInput { assignee: Some(f.get("assignee")), round_robin: !f.get("round_robin").is_empty() };
            (service::assign(db, p, &actor, org, id, &input, now).await, String::new())
        }
        "priority" => (service::set_priority(db, p, &actor, org, id, &PriorityInput { priority: f.get("priority") }, now).await, String::new()),
        "escalate" => (service::escalate(db, p, &actor, org, id, &EscalateInput { reason: f.get("reason") }, now).await, f.get("reason")),
        _ => return Err(PageError::not_found()),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/orgs/{org}/helpdesk/tickets/{id}?done={action}"))),
        Err(Error::Invalid(errors)) => {
            let d = service::ticket(db, p, org, id).await?;
            let pending = pending_files(&state, &user, org, &f.files).await?;
            let page = render_ticket(&state, &rc, &user, d, Refused { action, typed, pending, errors: on_file_input(errors) }, "").await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
