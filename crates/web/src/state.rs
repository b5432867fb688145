//! What every handler can reach: the database, the configuration the web layer needs, the metrics.

use std::sync::Arc;

use agilekit_kernel::Db;

use crate::ops::Metrics;

#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The address people reach agilekit at, for links in mail (`https://agilekit.example.it`).
    pub public_url: String,
    /// Mark cookies `Secure` (set when agilekit is behind TLS).
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub request_timeout: std::time::Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_url: "http://127.0.0.1:8080".into(),
            secure_cookies: false,
            body_limit: 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cfg: Arc<WebConfig>,
    pub metrics: Arc<Metrics>,
    /// This node's cache of sessions, principals and active services (see `agilekit_kernel::cache`).
    pub cache: Arc<agilekit_kernel::cache::NodeCache>,
    /// Each domain's pages (see [`crate::Domain::pages`]).
    pub service_pages: Arc<Vec<crate::ServicePages>>,
    /// Turns true when the node is stopping: long-polls answer at once instead of holding the shutdown.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// The pages of the service `key`, if a domain has them.
    pub fn pages_of(&self, key: &str) -> Option<&crate::ServicePages> {
        self.service_pages.iter().find(|p| p.service == key)
    }
}
