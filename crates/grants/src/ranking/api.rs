//! The graduatoria's API under `/api/v1/orgs/{org}/calls/{call}/evaluation…`: the evaluator's list, an application
//! with its declaration and scores, the ranking and its publication (administrators).

use agilekit_kernel::ids::OrgId;
use agilekit_web::AppState;
use agilekit_web::api::{ApiJson, ApiPath};
use agilekit_web::auth::ApiUser;
use agilekit_web::error::{ApiError, Problem};
use axum::extract::{Extension, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::model::{DeclarationInput, Score, ScoresInput};
use super::service::{self, CriterionScore, Declaration, Evaluation, Line, Published, RankedLine, Ranking, Scoring, Unscored};
use crate::applications::api::Runtime;
use crate::applications::model::ApplicationId;
use crate::calls::model::CallId;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get_one, declare, score, ranking, publish),
    components(schemas(Evaluation, Line, Declaration, Scoring, Score, DeclarationInput, ScoresInput, Ranking, RankedLine, CriterionScore, Unscored, Published)),
    tags((name = "grants-ranking", description = "The graduatoria of a ranked call. Once the call has closed, the organisation's \
        evaluators (and administrators) declare, per application, no conflict of interest or a conflict with its reason \
        (final; a wrong \"no conflict\" may become a conflict, which removes that evaluator's scores); with a conflict the \
        application is 404 to them and cannot be scored (403). They score every criterion of the call's grid with whole \
        points from 0 to its maximum (422 with `scores.{code}` field errors). An application's score per criterion is the \
        mean of its evaluators' points in hundredths of a point, rounded half up; the total is their sum. The \
        administrators read the provisional ranking (total, then the tie-break criteria in order, then the lower \
        protocol) and publish it: money goes strictly down the ranking while each amount fits, the rest waits \
        (`ammissibile non finanziata`) for money to come back; each company is mailed at its PEC. 409 codes: \
        `call-not-closed`, `ranking-published`, `declaration-required`, `declaration-final`, `already-declared`, \
        `unscored-applications`, `nothing-to-rank`.")),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation", get(list))
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}", get(get_one))
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/declaration", post(declare))
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/scores", post(score))
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation/ranking", get(ranking))
        .route("/api/v1/orgs/{org}/calls/{call}/evaluation/ranking/publish", post(publish))
}

type CallPath = ApiPath<(OrgId, CallId)>;
type AppPath = ApiPath<(OrgId, CallId, ApplicationId)>;

/// The evaluator's list (empty until the call closes).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/evaluation", tag = "grants-ranking", operation_id = "evaluation_list",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Evaluation), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn list(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call)): CallPath) -> Result<Json<Evaluation>, ApiError> {
    Ok(Json(service::evaluation(&s.db, &u.principal, org, call).await?))
}

/// An application for the evaluator: its content once "no conflict" is declared; 404 after a conflict.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}", tag = "grants-ranking", operation_id = "evaluation_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    responses((status = 200, body = Scoring), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-not-closed`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn get_one(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call, id)): AppPath) -> Result<Json<Scoring>, ApiError> {
    Ok(Json(service::sheet(&s.db, &u.principal, org, call, id).await?))
}

/// The reader's declaration about conflicts of interest.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/declaration", tag = "grants-ranking", operation_id = "evaluation_declare",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = DeclarationInput,
    responses((status = 200, body = Scoring), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-not-closed`, `ranking-published`, `declaration-final`, `already-declared`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`reason`: `required`, `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn declare(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath((org, call, id)): AppPath, ApiJson(input): ApiJson<DeclarationInput>) -> Result<Json<Scoring>, ApiError> {
    Ok(Json(service::declare(&s.db, &u.actor(c.ip.clone()), &u.principal, org, call, id, &input).await?))
}

/// The reader's scores of every criterion of the grid.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/evaluation/applications/{application}/scores", tag = "grants-ranking", operation_id = "evaluation_score",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id"), ("application" = uuid::Uuid, Path, description = "Application id")),
    request_body = ScoresInput,
    responses((status = 200, body = Scoring), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "a conflict of interest was declared", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-not-closed`, `ranking-published`, `declaration-required`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`scores.{code}`: `required`, `not-a-number`, `out-of-range`, `unknown-criterion`; `notes.{code}`: `too-long`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn score(State(s): State<AppState>, ApiUser(u, c): ApiUser, ApiPath((org, call, id)): AppPath, ApiJson(input): ApiJson<ScoresInput>) -> Result<Json<Scoring>, ApiError> {
    Ok(Json(service::score(&s.db, &u.actor(c.ip.clone()), &u.principal, org, call, id, &input).await?))
}

/// The ranking, provisional or published (administrators).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/calls/{call}/evaluation/ranking", tag = "grants-ranking", operation_id = "ranking_get",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Ranking), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn ranking(State(s): State<AppState>, ApiUser(u, _): ApiUser, ApiPath((org, call)): CallPath) -> Result<Json<Ranking>, ApiError> {
    Ok(Json(service::ranking(&s.db, &u.principal, org, call).await?))
}

/// Publishes the ranking: places and money frozen, each company mailed.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/evaluation/ranking/publish", tag = "grants-ranking", operation_id = "ranking_publish",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    responses((status = 200, body = Ranking), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`call-not-closed`, `ranking-published`, `unscored-applications`, `nothing-to-rank`", body = Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn publish(State(s): State<AppState>, Extension(rt): Extension<Runtime>, ApiUser(u, c): ApiUser, ApiPath((org, call)): CallPath) -> Result<Json<Ranking>, ApiError> {
    Ok(Json(service::publish(&s.db, &rt.durable, &u.actor(c.ip.clone()), &u.principal, org, call).await?))
}
