//! Funding calls for companies ("bandi"): a call's rules (grant amounts, eligibility, de minimis), companies and
//! their applications, the click day (ADR 0008: protocol numbers strictly increasing and gap-free within a call,
//! assigned at commit by a group-committing sequencer), allocation a sportello or by ranking, open data.

/// Money, sectors, grant rules, eligibility and the de minimis ceiling. No I/O.
pub mod model;
/// Who gets the money: a sportello in protocol order with an overbooking list, or by ranking. No I/O.
pub mod allocation;
/// Calls: definition by an organisation's administrators, publication with FAQ, the public view.
pub mod calls;
/// Applications: drafts, the click-day sequencer (group commit), receipts, withdrawals and the overbooking draw.
pub mod applications;
/// Companies that apply: registration, representatives and delegation, declared de minimis aid.
pub mod companies;
/// After admission: formal check, integration, grant decision, expense reports, payment.
pub mod review;
/// The graduatoria: evaluators' conflict declarations, scores on the call's grid, the ranking and its publication.
pub mod ranking;
/// Open data: published lists (admitted, granted, ranked) as immutable CSV and JSON snapshots under CC-BY 4.0.
pub mod opendata;

use agilekit_web::{AppState, Domain, ServicePages};
use axum::Router;

/// The routes and API description this domain adds to the application; `runtime` is this node's sequencer.
pub fn domain(runtime: applications::api::Runtime) -> Domain {
    let mut openapi = <companies::api::ApiDoc as utoipa::OpenApi>::openapi();
    openapi.merge(<calls::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<applications::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<review::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<opendata::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<ranking::api::ApiDoc as utoipa::OpenApi>::openapi());
    // Every route sees this node's runtime (the sequencer and the durable handle): submissions, withdrawals,
    // budget changes and review steps that move money all commit on the durable handle under the call's row lock.
    let router = Router::<AppState>::new()
        .merge(companies::api::router())
        .merge(companies::web::router())
        .merge(calls::api::router())
        .merge(calls::web::router())
        .merge(calls::staff_web::router())
        .merge(opendata::router())
        .merge(applications::api::router())
        .merge(applications::web::router())
        .merge(review::api::router())
        .merge(review::web::router())
        .merge(ranking::api::router())
        .merge(ranking::web::router())
        .layer(axum::Extension(runtime));
    Domain { router, openapi, pages: vec![ServicePages {
            service: "grants",
            mine: "/calls",
            admin: "/orgs/{org}/calls",
            // Ranked calls are scored by the organisation's evaluators and administrators.
            by_role: &[
                (agilekit_kernel::identity::Role::Evaluator, "/orgs/{org}/evaluation", "grk-home-evaluation"),
                (agilekit_kernel::identity::Role::OrgAdmin, "/orgs/{org}/evaluation", "grk-home-evaluation"),
            ],
        }] }
}

/// Starts this node's click-day sequencer on `db` (see ADR 0008).
pub async fn runtime(db: &agilekit_kernel::Db) -> agilekit_kernel::db::DbResult<applications::api::Runtime> {
    let durable = db.durable().await?;
    let sequencer = applications::sequencer::Sequencer::start(durable.clone(), applications::sequencer::DEFAULT_QUEUE);
    Ok(applications::api::Runtime { sequencer, durable })
}
