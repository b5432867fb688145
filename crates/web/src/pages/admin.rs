//! The operator's pages (platform admins only): every organisation as a tree, with create and edit forms; the
//! onboarding requests to approve or reject; the catalogue's services. Also the public `/join` form that files
//! an onboarding request, lightly throttled per address.

use agilekit_kernel::audit::Actor;
use agilekit_kernel::catalogue::{self, Service};
use agilekit_kernel::ids::{OnboardingId, OrgId};
use agilekit_kernel::onboarding::{self, RequestInput};
use agilekit_kernel::tenancy::{self, OrgInput, OrgKind, Organisation, TreeNode};
use agilekit_kernel::{Error, FieldErrors};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{CurrentUser, RequestCtx, SignedIn};
use crate::ctx::PageCtx;
use crate::error::PageError;
use crate::pages::orgs::{Choice, SummaryItem, parse_id};
use crate::pages::see_other;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orgs", get(orgs_list))
        .route("/admin/orgs/new", get(org_new).post(org_create))
        .route("/admin/orgs/{id}/edit", get(org_edit).post(org_update))
        .route("/admin/onboarding", get(onboarding_list))
        .route("/admin/onboarding/{id}/approve", post(approve))
        .route("/admin/onboarding/{id}/reject", post(reject))
        .route("/admin/catalogue", get(catalogue_page))
        .route("/admin/catalogue/{service}", post(set_available))
        .route("/join", get(join_form).post(join_submit))
        .route("/join/thanks", get(join_thanks))
}

/// Twenty requests an hour from one address, counting every submission: enough for an office behind one NAT,
/// too few to flood the operator's review queue.

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

fn notice(ctx: &PageCtx, done: &str) -> Option<String> {
    let key = match done {
        "created" => "admin-notice-created",
        "updated" => "admin-notice-updated",
        "approved" => "admin-notice-approved",
        "rejected" => "admin-notice-rejected",
        "catalogue" => "admin-notice-catalogue",
        _ => return None,
    };
    Some(ctx.t(key))
}


fn kind_label(ctx: &PageCtx, kind: &str) -> String {
    ctx.t(&format!("orgs-kind-{kind}"))
}

// ---------------------------------------------------------------------------------------------------------------
// Organisations

/// One line of the tree. The list is nested `<ul>`s written from a flat list: `open` starts a nested list
/// under the previous line, `closes` ends that many nested lists before this line.
struct NodeView {
    id: OrgId,
    name: String,
    kind: String,
    ipa_code: String,
    tax_code: String,
    open: bool,
    closes: usize,
}

/// What the create and edit forms show: the values as typed and the choices of the two selects.
struct OrgForm {
    action: String,
    input: OrgInput,
    errors: FieldErrors,
    kinds: Vec<Choice>,
    parents: Vec<Choice>,
}

fn org_form(ctx: &PageCtx, tree: &[TreeNode], editing: Option<OrgId>, input: OrgInput, errors: FieldErrors) -> OrgForm {
    let kinds = OrgKind::ALL
        .into_iter()
        .map(|k| Choice {
            value: k.as_str().to_owned(),
            label: kind_label(ctx, k.as_str()),
            selected: input.kind == k.as_str(),
        })
        .collect();
    let wanted = input.parent_id.clone().unwrap_or_default();
    // Every organisation but itself: a choice that would make a cycle is refused with a field error.
    let parents = tree
        .iter()
        .filter(|n| Some(n.org.id) != editing)
        .map(|n| Choice {
            value: n.org.id.to_string(),
            label: format!("{}{}", "— ".repeat(n.depth), n.org.name),
            selected: wanted == n.org.id.to_string(),
        })
        .collect();
    let action = match editing {
        Some(id) => format!("/admin/orgs/{id}/edit"),
        None => "/admin/orgs/new".to_owned(),
    };
    OrgForm { action, input, errors, kinds, parents }
}

fn input_of(o: &Organisation) -> OrgInput {
    OrgInput {
        name: o.name.clone(),
        kind: o.kind.clone(),
        ipa_code: o.ipa_code.clone(),
        tax_code: o.tax_code.clone(),
        pec: o.pec.clone().unwrap_or_default(),
        parent_id: o.parent_id.map(|p| p.to_string()),
    }
}

fn default_input() -> OrgInput {
    OrgInput { kind: OrgKind::LocalAuthority.as_str().to_owned(), ..Default::default() }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_orgs.html")]
struct OrgsPage {
    ctx: PageCtx,
    nodes: Vec<NodeView>,
    final_closes: usize,
    form: OrgForm,
    notice: Option<String>,
}

async fn orgs_list(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<Done>,
) -> Result<OrgsPage, PageError> {
    user.principal.require_platform_admin()?;
    let tree = tenancy::tree(&state.db).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let mut nodes = Vec::with_capacity(tree.len());
    let mut prev: Option<usize> = None;
    for n in &tree {
        let (open, closes) = match prev {
            None => (true, 0),
            Some(p) if n.depth > p => (true, 0),
            Some(p) => (false, p - n.depth),
        };
        prev = Some(n.depth);
        nodes.push(NodeView {
            id: n.org.id,
            name: n.org.name.clone(),
            kind: kind_label(&ctx, &n.org.kind),
            ipa_code: n.org.ipa_code.clone(),
            tax_code: n.org.tax_code.clone(),
            open,
            closes,
        });
    }
    let form = org_form(&ctx, &tree, None, default_input(), FieldErrors::new());
    let notice = notice(&ctx, &q.done);
    Ok(OrgsPage { ctx, nodes, final_closes: prev.unwrap_or(0), form, notice })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_org_form.html")]
struct OrgFormPage {
    ctx: PageCtx,
    title: String,
    /// The organisation's dashboard, when editing.
    editing: Option<OrgId>,
    form: OrgForm,
}

async fn render_org_form(
    state: &AppState,
    rc: &RequestCtx,
    editing: Option<OrgId>,
    input: OrgInput,
    errors: FieldErrors,
) -> Result<OrgFormPage, PageError> {
    let tree = tenancy::tree(&state.db).await?;
    let ctx = PageCtx::build(state, rc).await;
    let title = ctx.t(if editing.is_some() { "admin-org-edit-title" } else { "admin-org-new-title" });
    let form = org_form(&ctx, &tree, editing, input, errors);
    Ok(OrgFormPage { ctx, title, editing, form })
}

async fn org_form_or_error(
    state: &AppState,
    rc: &RequestCtx,
    editing: Option<OrgId>,
    input: OrgInput,
    e: Error,
) -> Response {
    match e {
        Error::Invalid(errors) => match render_org_form(state, rc, editing, input, errors).await {
            Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            Err(e) => e.into_response(),
        },
        other => PageError::from(other).into_response(),
    }
}

async fn org_new(State(state): State<AppState>, SignedIn(user, rc): SignedIn) -> Result<OrgFormPage, PageError> {
    user.principal.require_platform_admin()?;
    render_org_form(&state, &rc, None, default_input(), FieldErrors::new()).await
}

async fn org_create(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Form(f): Form<OrgInput>,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    Ok(match tenancy::create(&state.db, &user.actor(rc.ip.clone()), &f).await {
        Ok(_) => see_other("/admin/orgs?done=created"),
        Err(e) => org_form_or_error(&state, &rc, None, f, e).await,
    })
}

async fn org_edit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
) -> Result<OrgFormPage, PageError> {
    user.principal.require_platform_admin()?;
    let id: OrgId = parse_id(&id)?;
    let o = tenancy::get(&state.db, id).await?;
    render_org_form(&state, &rc, Some(id), input_of(&o), FieldErrors::new()).await
}

async fn org_update(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Form(f): Form<OrgInput>,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    let id: OrgId = parse_id(&id)?;
    Ok(match tenancy::update(&state.db, &user.actor(rc.ip.clone()), id, &f).await {
        Ok(_) => see_other("/admin/orgs?done=updated"),
        Err(e) => org_form_or_error(&state, &rc, Some(id), f, e).await,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Onboarding requests

struct RequestView {
    id: OnboardingId,
    org_name: String,
    ipa_code: String,
    tax_code: String,
    pec: String,
    contact_name: String,
    contact_email: String,
    services: Vec<String>,
    state_label: String,
    state_class: &'static str,
    created: String,
    reviewed: Option<String>,
    review_note: Option<String>,
    org_id: Option<OrgId>,
    pending: bool,
    parents: Vec<Choice>,
    /// What was typed in this request's forms, and what was wrong with them.
    note: String,
    note_error: Option<String>,
    parent_error: Option<String>,
    /// Errors of the approval that belong to no field of the form (the IPA code already taken, …).
    approve_errors: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_onboarding.html")]
struct OnboardingPage {
    ctx: PageCtx,
    requests: Vec<RequestView>,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

/// What a failed approve or reject form sent, for the request it was about.
#[derive(Default)]
struct ReviewTyped {
    id: Option<OnboardingId>,
    note: String,
    parent: String,
}

fn field_label(ctx: &PageCtx, field: &str) -> String {
    ctx.t(&format!("label-{field}"))
}

async fn render_onboarding(
    state: &AppState,
    rc: &RequestCtx,
    errors: FieldErrors,
    typed: ReviewTyped,
    notice_code: &str,
) -> Result<OnboardingPage, PageError> {
    let list = onboarding::list_for_review(&state.db).await?;
    let tree = tenancy::tree(&state.db).await?;
    let ctx = PageCtx::build(state, rc).await;
    let mut summary = Vec::new();
    let requests = list
        .into_iter()
        .map(|r| {
            let this = typed.id == Some(r.id);
            let pending = r.state == "pending";
            let parents = if pending {
                tree.iter()
                    .map(|n| Choice {
                        value: n.org.id.to_string(),
                        label: format!("{}{}", "— ".repeat(n.depth), n.org.name),
                        selected: this && typed.parent == n.org.id.to_string(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut approve_errors = Vec::new();
            if this {
                for e in &errors.0 {
                    let message = format!("{}: {}", field_label(&ctx, &e.field), ctx.t(&format!("field-{}", e.code)));
                    let anchor = match e.field.as_str() {
                        "review_note" | "parent_id" => format!("f-{}-{}", e.field, r.id),
                        _ => {
                            approve_errors.push(message.clone());
                            format!("request-{}", r.id)
                        }
                    };
                    summary.push(SummaryItem { anchor, text: format!("{} — {message}", r.org_name) });
                }
            }
            RequestView {
                id: r.id,
                services: r.service_list().iter().map(|s| ctx.t(&format!("service-{}", s.key()))).collect(),
                state_label: ctx.t(&format!("admin-onboarding-state-{}", r.state)),
                state_class: match r.state.as_str() {
                    "activated" => "text-bg-success",
                    "rejected" => "text-bg-danger",
                    _ => "text-bg-secondary",
                },
                created: ctx.format_time(&r.created_at),
                reviewed: r.reviewed_at.map(|t| ctx.format_time(&t)),
                note: if this { typed.note.clone() } else { String::new() },
                note_error: if this { ctx.field_error(&errors, "review_note") } else { None },
                parent_error: if this { ctx.field_error(&errors, "parent_id") } else { None },
                approve_errors,
                pending,
                parents,
                org_name: r.org_name,
                ipa_code: r.ipa_code,
                tax_code: r.tax_code,
                pec: r.pec,
                contact_name: r.contact_name,
                contact_email: r.contact_email,
                review_note: r.review_note,
                org_id: r.org_id,
            }
        })
        .collect();
    let notice = notice(&ctx, notice_code);
    Ok(OnboardingPage { ctx, requests, summary, notice })
}

async fn onboarding_or_error(state: &AppState, rc: &RequestCtx, e: Error, typed: ReviewTyped) -> Response {
    match e {
        Error::Invalid(errors) => match render_onboarding(state, rc, errors, typed, "").await {
            Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            Err(e) => e.into_response(),
        },
        other => PageError::from(other).into_response(),
    }
}

async fn onboarding_list(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<Done>,
) -> Result<OnboardingPage, PageError> {
    user.principal.require_platform_admin()?;
    render_onboarding(&state, &rc, FieldErrors::new(), ReviewTyped::default(), &q.done).await
}

#[derive(Deserialize, Default)]
struct ApproveForm {
    #[serde(default)]
    parent_id: String,
}

async fn approve(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Form(f): Form<ApproveForm>,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    let id: OnboardingId = parse_id(&id)?;
    let typed = ReviewTyped { id: Some(id), parent: f.parent_id.clone(), ..Default::default() };
    let parent = match f.parent_id.trim() {
        "" => Ok(None),
        s => s.parse::<OrgId>().map(Some).map_err(|_| FieldErrors::one("parent_id", "format")),
    };
    let result = match parent {
        Ok(parent) => {
            onboarding::approve(&state.db, &user.actor(rc.ip.clone()), id, parent, &state.cfg.public_url).await
        }
        Err(e) => Err(e),
    };
    Ok(match result {
        Ok(_) => see_other("/admin/onboarding?done=approved"),
        Err(e) => onboarding_or_error(&state, &rc, e, typed).await,
    })
}

#[derive(Deserialize, Default)]
struct RejectForm {
    #[serde(default)]
    review_note: String,
}

async fn reject(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(id): Path<String>,
    Form(f): Form<RejectForm>,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    let id: OnboardingId = parse_id(&id)?;
    Ok(match onboarding::reject(&state.db, &user.actor(rc.ip.clone()), id, &f.review_note).await {
        Ok(_) => see_other("/admin/onboarding?done=rejected"),
        Err(e) => {
            onboarding_or_error(&state, &rc, e, ReviewTyped { id: Some(id), note: f.review_note, ..Default::default() })
                .await
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Catalogue

struct ServiceLine {
    key: String,
    name: String,
    available: bool,
    active_orgs: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_catalogue.html")]
struct CataloguePage {
    ctx: PageCtx,
    services: Vec<ServiceLine>,
    notice: Option<String>,
}

async fn catalogue_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Query(q): Query<Done>,
) -> Result<CataloguePage, PageError> {
    user.principal.require_platform_admin()?;
    let usage = catalogue::usage(&state.db).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let services = usage
        .into_iter()
        .map(|u| ServiceLine {
            name: ctx.t(&format!("service-{}", u.service.key)),
            key: u.service.key,
            available: u.service.available,
            active_orgs: u.active_orgs,
        })
        .collect();
    let notice = notice(&ctx, &q.done);
    Ok(CataloguePage { ctx, services, notice })
}

#[derive(Deserialize, Default)]
struct AvailableForm {
    #[serde(default)]
    available: String,
}

async fn set_available(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(service): Path<String>,
    Form(f): Form<AvailableForm>,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    let service = Service::parse(&service).ok_or_else(PageError::not_found)?;
    let available = match f.available.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(PageError::status(StatusCode::UNPROCESSABLE_ENTITY, "error-invalid")),
    };
    catalogue::set_available(&state.db, &user.actor(rc.ip.clone()), service, available).await?;
    Ok(see_other("/admin/catalogue?done=catalogue"))
}

// ---------------------------------------------------------------------------------------------------------------
// The public onboarding form

#[derive(Template, WebTemplate)]
#[template(path = "join.html")]
struct JoinPage {
    ctx: PageCtx,
    input: RequestInput,
    errors: FieldErrors,
    services: Vec<Choice>,
    message: Option<String>,
}

async fn render_join(
    state: &AppState,
    rc: &RequestCtx,
    input: RequestInput,
    errors: FieldErrors,
    message: Option<String>,
) -> Result<JoinPage, PageError> {
    let offered = catalogue::services(&state.db).await?;
    let ctx = PageCtx::build(state, rc).await;
    let services = offered
        .into_iter()
        .filter(|s| s.available)
        .map(|s| Choice {
            label: ctx.t(&format!("service-{}", s.key)),
            selected: input.services.contains(&s.key),
            value: s.key,
        })
        .collect();
    Ok(JoinPage { ctx, input, errors, services, message })
}

async fn join_form(State(state): State<AppState>, rc: RequestCtx) -> Result<JoinPage, PageError> {
    render_join(&state, &rc, RequestInput::default(), FieldErrors::new(), None).await
}

/// The form's fields; `services` repeats once per ticked box, which a plain struct cannot take.
fn join_input(pairs: Vec<(String, String)>) -> RequestInput {
    let mut r = RequestInput::default();
    for (k, v) in pairs {
        match k.as_str() {
            "org_name" => r.org_name = v,
            "ipa_code" => r.ipa_code = v,
            "tax_code" => r.tax_code = v,
            "pec" => r.pec = v,
            "contact_name" => r.contact_name = v,
            "contact_email" => r.contact_email = v,
            "services" => r.services.push(v),
            _ => {}
        }
    }
    r
}

async fn join_submit(
    State(state): State<AppState>,
    rc: RequestCtx,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let input = join_input(pairs);
    let locked = match onboarding::count_public_submission(&state.db, rc.ip.as_deref()).await {
        Err(Error::Throttled { retry_after_secs }) => Some(retry_after_secs),
        other => {
            other?;
            None
        }
    };
    if let Some(secs) = locked {
        let minutes = secs.div_ceil(60).to_string();
        let ctx_lang = rc.lang;
        let message = ctx_lang.t_args("join-throttled", &[("minutes", minutes)]);
        let page = render_join(&state, &rc, input, FieldErrors::new(), Some(message)).await?;
        return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
    }
    let actor = Actor { account: rc.user.as_ref().map(|u: &CurrentUser| u.principal.id()), ip: rc.ip.clone() };
    match onboarding::submit(&state.db, &actor, &input).await {
        Ok(r) => Ok(see_other(&format!("/join/thanks?ref={}", r.id))),
        Err(Error::Invalid(errors)) => {
            let page = render_join(&state, &rc, input, errors, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "join_thanks.html")]
struct JoinThanksPage {
    ctx: PageCtx,
    reference: OnboardingId,
}

#[derive(Deserialize, Default)]
struct RefQuery {
    #[serde(default, rename = "ref")]
    reference: String,
}

async fn join_thanks(
    State(state): State<AppState>,
    rc: RequestCtx,
    Query(q): Query<RefQuery>,
) -> Result<JoinThanksPage, PageError> {
    let reference: OnboardingId = parse_id(&q.reference)?;
    Ok(JoinThanksPage { ctx: PageCtx::build(&state, &rc).await, reference })
}
