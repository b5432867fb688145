//! Remote workstations: the inventory of office PCs and virtual desktops an organisation offers for remote work,
//! dedicated or pooled and booked by time slot, their reachability, and the hand-off to a remote-desktop client.

pub mod api;
pub mod csvio;
pub mod handoff;
pub mod model;
pub mod probe;
pub mod service;
pub mod store;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agilekit_web::{AppState, Domain};
use axum::{Extension, Router};
use serde::Deserialize;

/// The `[workstations]` section of the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where Wake-on-LAN magic packets are sent: the broadcast address of the offices' network (a directed
    /// broadcast such as `10.20.255.255:9` when agilekit is not on that network), or a relay.
    pub wol_target: String,
    /// How often each workstation is probed, in seconds; 0 turns the scheduled probe off.
    pub probe_interval_secs: u64,
    /// How long a probe waits for the TCP handshake.
    pub probe_timeout_ms: u64,
    /// How many probes one node runs at the same time.
    pub probe_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { wol_target: "255.255.255.255:9".into(), probe_interval_secs: 300, probe_timeout_ms: 2000, probe_concurrency: 64 }
    }
}

/// The `[guacamole]` section: an Apache Guacamole gateway with the encrypted-JSON authentication extension.
/// Without a URL there is no Guacamole link.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct GuacamoleSettings {
    /// Guacamole's web application, e.g. `https://desktop.regione.example/guacamole`.
    pub url: String,
    /// Its `json-secret-key`: 32 hexadecimal digits.
    pub secret_key: String,
    /// Tell Guacamole to accept the self-signed certificates office PCs present over RDP.
    pub rdp_ignore_cert: bool,
}

// The key never reaches a log.
impl std::fmt::Debug for GuacamoleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuacamoleSettings").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The checked configuration the handlers and the probe use.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub wol_target: SocketAddr,
    pub guacamole: Option<handoff::Guacamole>,
    pub probe: probe::ProbeSettings,
}

impl Runtime {
    /// Checks the configuration: a bad Wake-on-LAN target or Guacamole key stops the start with a clear message.
    pub fn new(s: &Settings, g: &GuacamoleSettings) -> Result<Runtime, String> {
        let wol_target: SocketAddr =
            s.wol_target.trim().parse().map_err(|_| format!("workstations.wol_target: {:?} is not an address:port", s.wol_target))?;
        let guacamole = if g.url.trim().is_empty() {
            None
        } else {
            let url = url::Url::parse(g.url.trim()).map_err(|_| format!("guacamole.url: {:?} is not a URL", g.url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err("guacamole.url: an http or https URL is expected".into());
            }
            let key = handoff::parse_key(&g.secret_key).map_err(|e| format!("guacamole.secret_key: {e}"))?;
            Some(handoff::Guacamole { url: g.url.trim().trim_end_matches('/').to_owned(), key, rdp_ignore_cert: g.rdp_ignore_cert })
        };
        let probe = probe::ProbeSettings {
            interval: Duration::from_secs(s.probe_interval_secs),
            timeout: Duration::from_millis(s.probe_timeout_ms.clamp(50, 30_000)),
            concurrency: s.probe_concurrency.clamp(1, 1024),
        };
        Ok(Runtime { wol_target, guacamole, probe })
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api::list, api::create, api::show, api::update, api::remove, api::import, api::export, api::assign,
        api::bookings, api::book, api::cancel, api::org_bookings, api::board, api::probes, api::probe_now, api::wake,
        api::connect_rdp, api::guacamole,
    ),
    components(schemas(
        model::WorkstationInput, model::Protocol, model::Mode, model::Status, service::Workstation, service::Assignee,
        service::Page, service::Booking, service::Board, store::BoardLine, service::ProbeEntry, csvio::RowError,
        api::ImportDone, api::ImportProblem, api::AssignInput, api::BookingInput, api::GuacamoleLink,
    )),
    tags((name = "workstations", description = "Remote workstations: inventory, CSV import and export, dedicated \
        assignment, bookings of pooled seats, reachability, the availability board, Wake-on-LAN and the connection \
        hand-off (.rdp file, Guacamole link)."))
)]
struct ApiDoc;

/// The routes and API description this domain adds to the application.
pub fn domain(runtime: Runtime) -> Domain {
    let router = Router::<AppState>::new().merge(api::router()).merge(web::router()).layer(Extension(Arc::new(runtime)));
    Domain {
        router,
        openapi: <ApiDoc as utoipa::OpenApi>::openapi(),
        pages: vec![agilekit_web::ServicePages { service: "workstations", mine: "/workstations", admin: "/orgs/{org}/workstations", by_role: &[] }],
    }
}
