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

use agilekit_web::{AppState, Domain};
use axum::Router;

/// The routes and API description this domain adds to the application; `runtime` is this node's sequencer.
pub fn domain(runtime: applications::api::Runtime) -> Domain {
    let mut openapi = <companies::api::ApiDoc as utoipa::OpenApi>::openapi();
    openapi.merge(<calls::api::ApiDoc as utoipa::OpenApi>::openapi());
    openapi.merge(<applications::api::ApiDoc as utoipa::OpenApi>::openapi());
    let router = Router::<AppState>::new()
        .merge(companies::api::router())
        .merge(calls::api::router())
        .merge(applications::api::router().layer(axum::Extension(runtime)));
    Domain { router, openapi, pages: vec![] }
}

/// Starts this node's click-day sequencer on `db` (see ADR 0008).
pub async fn runtime(db: &agilekit_kernel::Db) -> agilekit_kernel::db::DbResult<applications::api::Runtime> {
    let durable = db.durable().await?;
    let sequencer = applications::sequencer::Sequencer::start(durable.clone(), applications::sequencer::DEFAULT_QUEUE);
    Ok(applications::api::Runtime { sequencer, durable })
}
