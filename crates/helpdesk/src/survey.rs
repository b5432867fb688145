//! The satisfaction survey. When a ticket is resolved its requester is mailed an invitation (queued in the same
//! transaction as the resolution) to rate the help from 1 to 5 with an optional comment. Only the requester answers,
//! signed in, on the survey page or through the API; the answer may be changed while the ticket stays resolved and
//! is fixed once it is closed. A ticket reopened and resolved again is asked again, and the latest answer replaces
//! the earlier one (one answer per ticket). Agents see the answer on the ticket.

use agilekit_web::pages::see_other;
use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::identity::Role;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::mail::{self, Mail};
use agilekit_kernel::{Error, FieldErrors, Result, clock, tenancy};
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::{ApiUser, CurrentUser, RequestCtx, SignedIn};
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::{ApiError, PageError, Problem};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::model::{Queue, State as TicketState, TicketId, reference};
use crate::service::TicketDetail;
use crate::store::{self, TicketRow};

/// The longest comment, in characters.
pub const COMMENT_MAX: usize = 2_000;

// ---------------------------------------------------------------------------------------------------------------
// The link in the invitation

/// The survey page of a ticket (the invitation's link, after the public address).
pub fn path(org: OrgId, ticket: TicketId) -> String {
    format!("/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction")
}

// ---------------------------------------------------------------------------------------------------------------
// Types

/// The requester's answer about a resolved ticket.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Satisfaction {
    /// 1 (very unsatisfied) to 5 (very satisfied).
    pub rating: i32,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub answered_at: OffsetDateTime,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SatisfactionInput {
    /// 1..=5.
    pub rating: Option<i64>,
    /// Optional, at most 2,000 characters.
    pub comment: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct SurveyRow {
    rating: i32,
    comment: String,
    answered_at: OffsetDateTime,
}

impl From<SurveyRow> for Satisfaction {
    fn from(r: SurveyRow) -> Self {
        Satisfaction { rating: r.rating, comment: r.comment, answered_at: r.answered_at }
    }
}

/// Checks an answer: the rating 1..=5, the comment trimmed and at most [`COMMENT_MAX`] characters.
pub fn parse(input: &SatisfactionInput) -> std::result::Result<(i32, String), FieldErrors> {
    let mut errors = FieldErrors::new();
    let rating = match input.rating {
        None => {
            errors.add("rating", "required");
            None
        }
        Some(r) if (1..=5).contains(&r) => Some(r as i32),
        Some(_) => {
            errors.add("rating", "out-of-range");
            None
        }
    };
    let comment = input.comment.trim();
    if comment.chars().count() > COMMENT_MAX {
        errors.add("comment", "too-long");
    } else if comment.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        errors.add("comment", "format");
    }
    match rating {
        Some(r) if errors.is_empty() => Ok((r, comment.to_owned())),
        _ => Err(errors),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Queries

async fn get_answer(db: &Db, org: OrgId, ticket: TicketId) -> DbResult<Option<SurveyRow>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT rating, comment, answered_at FROM helpdesk_surveys WHERE org_id = $1 AND ticket_id = $2"
    ).bind(org).bind(ticket).fetch_optional(p).await?))
}

async fn get_answer_in(tx: &mut Tx, org: OrgId, ticket: TicketId) -> DbResult<Option<SurveyRow>> {
    Ok(db_run!(tx tx, |c| sqlx::query_as(
        "SELECT rating, comment, answered_at FROM helpdesk_surveys WHERE org_id = $1 AND ticket_id = $2"
    ).bind(org).bind(ticket).fetch_optional(c).await?))
}

async fn upsert(tx: &mut Tx, t: &TicketRow, rating: i32, comment: &str, at: OffsetDateTime) -> DbResult<()> {
    db_run!(tx tx, |c| {
        sqlx::query(
            "INSERT INTO helpdesk_surveys (ticket_id, org_id, requester_id, rating, comment, answered_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (ticket_id) DO UPDATE SET rating = $4, comment = $5, answered_at = $6",
        )
        .bind(t.id).bind(t.org_id).bind(t.requester_id).bind(rating).bind(comment).bind(at)
        .execute(c).await?;
    });
    Ok(())
}

/// A resolved ticket of the requester, waiting for an answer.
pub struct Awaiting {
    pub reference: String,
    pub subject: String,
    pub link: String,
}

/// The requester's resolved tickets in `org` not yet rated (newest change first, at most 20).
pub async fn awaiting(db: &Db, p: &Principal, org: OrgId) -> Result<Vec<Awaiting>> {
    let rows: Vec<(TicketId, i64, String)> = db_run!(db, |c| sqlx::query_as(
        "SELECT t.id, t.number, t.subject FROM helpdesk_tickets t
         WHERE t.requester_id = $1 AND t.org_id = $2 AND t.state = 'resolved'
           AND NOT EXISTS (SELECT 1 FROM helpdesk_surveys s WHERE s.ticket_id = t.id)
         ORDER BY t.updated_at DESC, t.id DESC LIMIT 20"
    ).bind(p.id()).bind(org).fetch_all(c).await?);
    Ok(rows.into_iter().map(|(id, n, subject)| Awaiting { reference: reference(n), subject, link: path(org, id) }).collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Rules

/// Mails the requester the invitation to rate the help, in the transaction that resolves the ticket. The link
/// starts with `public_url`, the address of the node that resolves it (its configured `public_url`), written into
/// the queued mail: whichever node sends it, the link is the one the resolving node knows.
pub async fn invite(tx: &mut Tx, t: &TicketRow, public_url: &str) -> Result<()> {
    let link = format!("{}{}", public_url.trim_end_matches('/'), path(t.org_id, t.id));
    let r = reference(t.number);
    let text = format!(
        "Il ticket {r} «{}» è stato risolto. Com'è andata? Dia un voto da 1 a 5 (e, se vuole, un commento):\n{link}\n\n\
         Ticket {r} \"{}\" was resolved. How did we do? Rate it from 1 to 5 (and add a comment if you wish):\n{link}\n",
        t.subject, t.subject
    );
    let subject = format!("[{r}] Com'è andata? / How did we do?");
    mail::queue(tx, Some(t.org_id), &Mail { to: t.requester_email.clone(), subject, text }).await?;
    Ok(())
}

/// The answer shown with the ticket (to its requester and its agents).
pub async fn of_ticket(db: &Db, t: &TicketRow) -> Result<Option<Satisfaction>> {
    Ok(get_answer(db, t.org_id, t.id).await?.map(Satisfaction::from))
}

fn is_staff(p: &Principal, org: OrgId) -> bool {
    p.has(org, Role::Agent) || p.has(org, Role::OrgAdmin)
}

/// Someone else than the requester who may see the ticket is refused (403); anyone else learns nothing (404).
async fn refusal(db: &Db, p: &Principal, t: &TicketRow) -> Result<Error> {
    let operator = t.queue == Queue::Operator.as_str()
        && tenancy::operator(db).await?.is_some_and(|op| p.has(op.id, Role::Agent));
    Ok(if is_staff(p, t.org_id) || operator { Error::Forbidden } else { Error::NotFound })
}

/// The requester rates the resolved ticket (or changes the rating while it stays resolved).
pub async fn answer(
    db: &Db,
    p: &Principal,
    actor: &Actor,
    org: OrgId,
    id: TicketId,
    input: &SatisfactionInput,
    now: OffsetDateTime,
) -> Result<Satisfaction> {
    let now = clock::stamp(now);
    let mut tx = db.begin().await?;
    let t = store::get_in(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if t.requester_id != p.id() {
        return Err(refusal(db, p, &t).await?);
    }
    let (rating, comment) = parse(input).map_err(Error::Invalid)?;
    if TicketState::parse(&t.state) != Some(TicketState::Resolved) {
        return Err(Error::Conflict("not-resolved"));
    }
    let before = get_answer_in(&mut tx, org, id).await?;
    upsert(&mut tx, &t, rating, &comment, now).await?;
    audit::record(&mut tx, actor, Change {
        org: Some(org),
        action: "helpdesk.ticket.satisfaction",
        entity: "helpdesk_ticket",
        entity_id: id.to_string(),
        before: before.map(|b| json!({"rating": b.rating, "comment": b.comment})),
        after: Some(json!({"rating": rating, "comment": comment})),
    })
    .await?;
    tx.commit().await?;
    Ok(Satisfaction { rating, comment, answered_at: now })
}

// ---------------------------------------------------------------------------------------------------------------
// API

#[derive(utoipa::OpenApi)]
#[openapi(paths(put_satisfaction), components(schemas(Satisfaction, SatisfactionInput)))]
pub struct ApiDoc;

/// Rates a resolved ticket (its requester only): 1–5 and an optional comment. Changeable while the ticket stays
/// resolved (409 `not-resolved` otherwise); the latest answer counts. Agents read it in the ticket's
/// `satisfaction`.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", tag = "helpdesk",
    operation_id = "helpdesk_satisfaction",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("ticket" = uuid::Uuid, Path, description = "Ticket id")),
    request_body = SatisfactionInput,
    responses((status = 200, body = Satisfaction),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent of the ticket: only its requester answers", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-resolved`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`rating`: `required`, `format`, `out-of-range`; `comment`: `too-long`, `format`",
            body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn put_satisfaction(
    State(s): State<AppState>,
    ApiUser(u, c): ApiUser,
    ApiPath((org, id)): ApiPath<(OrgId, TicketId)>,
    ApiJson(input): ApiJson<SatisfactionInput>,
) -> std::result::Result<Json<Satisfaction>, ApiError> {
    Ok(Json(answer(&s.db, &u.principal, &actor(&u, &c), org, id, &input, clock::now()).await?))
}

fn actor(user: &CurrentUser, ctx: &RequestCtx) -> Actor {
    user.actor(ctx.ip.clone())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", put(put_satisfaction))
        .route("/orgs/{org}/helpdesk/tickets/{ticket}/satisfaction", get(survey_page).post(survey_submit))
}

// ---------------------------------------------------------------------------------------------------------------
// Pages

/// What the ticket page shows about the survey: the answer (to agents and the requester) and, to the requester of
/// a resolved ticket, the invitation to answer.
pub struct TicketBox {
    pub rating: Option<i32>,
    pub comment: String,
    pub answered_at: String,
    /// The requester may answer (or change the answer) now: the survey page's link.
    pub prompt: Option<String>,
}

impl TicketBox {
    pub fn of(ctx: &PageCtx, d: &TicketDetail) -> TicketBox {
        let s = d.satisfaction.as_ref();
        let may = d.role == "requester" && d.ticket.state == TicketState::Resolved;
        TicketBox {
            rating: s.map(|s| s.rating),
            comment: s.map(|s| s.comment.clone()).unwrap_or_default(),
            answered_at: s.map(|s| ctx.format_time(&s.answered_at)).unwrap_or_default(),
            prompt: may.then(|| path(d.ticket.org_id, d.ticket.id)),
        }
    }
    pub fn shown(&self) -> bool {
        self.rating.is_some() || self.prompt.is_some()
    }
    pub fn comment_lines(&self) -> Vec<&str> {
        self.comment.lines().collect()
    }
}

struct RatingChoice {
    value: i32,
    label: String,
    checked: bool,
}

struct SummaryItem {
    anchor: String,
    text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "helpdesk_survey.html")]
struct SurveyPage {
    ctx: PageCtx,
    action: String,
    back: String,
    reference: String,
    subject: String,
    answered: bool,
    open: bool,
    ratings: Vec<RatingChoice>,
    comment: String,
    errors: FieldErrors,
    summary: Vec<SummaryItem>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct SurveyForm {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

fn parse_id<T: std::str::FromStr>(s: &str) -> std::result::Result<T, PageError> {
    s.trim().parse().map_err(|_| PageError::not_found())
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    rc: &RequestCtx,
    user: &CurrentUser,
    org: OrgId,
    id: TicketId,
    typed: Option<&SurveyForm>,
    errors: FieldErrors,
    done: bool,
) -> std::result::Result<SurveyPage, PageError> {
    let p = &user.principal;
    let t = store::get(&state.db, org, id).await?.ok_or_else(PageError::not_found)?;
    if t.requester_id != p.id() {
        return Err(refusal(&state.db, p, &t).await?.into());
    }
    let ctx = PageCtx::build(state, rc).await;
    let current = get_answer(&state.db, org, id).await?;
    let (rating, comment) = match typed {
        Some(f) => (f.rating.trim().parse::<i32>().ok(), f.comment.clone()),
        None => (current.as_ref().map(|s| s.rating), current.as_ref().map(|s| s.comment.clone()).unwrap_or_default()),
    };
    let ratings = (1..=5)
        .map(|v| RatingChoice { value: v, label: ctx.t(&format!("hdq-rating-{v}")), checked: rating == Some(v) })
        .collect();
    let summary = errors
        .0
        .iter()
        .map(|e| SummaryItem {
            // The rating is a group of radios: the link leads to the first.
            anchor: if e.field == "rating" { "f-rating-1".to_owned() } else { format!("f-{}", e.field) },
            text: format!("{}: {}", ctx.t(&format!("hdq-label-{}", e.field)), ctx.t(&format!("field-{}", e.code))),
        })
        .collect();
    Ok(SurveyPage {
        action: path(org, id),
        back: format!("/orgs/{org}/helpdesk/tickets/{id}"),
        reference: reference(t.number),
        subject: t.subject.clone(),
        answered: current.is_some(),
        open: TicketState::parse(&t.state) == Some(TicketState::Resolved),
        ratings,
        comment,
        errors,
        summary,
        notice: done.then(|| ctx.t("hdq-thanks")),
        ctx,
    })
}

async fn survey_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<Done>,
) -> std::result::Result<SurveyPage, PageError> {
    let (org, id): (OrgId, TicketId) = (parse_id(&org)?, parse_id(&id)?);
    render(&state, &rc, &user, org, id, None, FieldErrors::new(), q.done == "1").await
}

async fn survey_submit(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(f): Form<SurveyForm>,
) -> std::result::Result<Response, PageError> {
    let (org, id): (OrgId, TicketId) = (parse_id(&org)?, parse_id(&id)?);
    let mut errors = FieldErrors::new();
    let rating = match f.rating.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add("rating", "format");
                Some(1)
            }
        },
    };
    let input = SatisfactionInput { rating, comment: f.comment.clone() };
    let result = if errors.is_empty() {
        answer(&state.db, &user.principal, &actor(&user, &rc), org, id, &input, clock::now()).await
    } else {
        Err(Error::Invalid(errors))
    };
    match result {
        Ok(_) => Ok(see_other(&format!("{}?done=1", path(org, id)))),
        Err(Error::Invalid(errors)) => {
            let page = render(&state, &rc, &user, org, id, Some(&f), errors, false).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The requester's resolved tickets awaiting an answer, for the `/helpdesk` page (empty without an organisation or
/// on a failure, which must not cost them the page).
pub async fn prompts(db: &Db, p: &Principal, org: Option<OrgId>) -> Vec<Awaiting> {
    match org {
        Some(o) => awaiting(db, p, o).await.unwrap_or_default(),
        None => Vec::new(),
    }
}
