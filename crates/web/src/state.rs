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
    /// Uploaded files (`[files]`): the largest one taken. The routes that take files raise their body limit to
    /// [`WebConfig::upload_limit`].
    pub files: agilekit_kernel::files::Settings,
    pub request_timeout: std::time::Duration,
    /// Load shedding (`shed.rs`): the most requests this node handles at once, and how long one waits for a place
    /// before it is answered 429.
    pub max_in_flight: usize,
    pub shed_wait: std::time::Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_url: "http://127.0.0.1:8080".into(),
            secure_cookies: false,
            body_limit: 1024 * 1024,
            files: Default::default(),
            request_timeout: std::time::Duration::from_secs(30),
            max_in_flight: 1024,
            shed_wait: std::time::Duration::from_secs(1),
        }
    }
}

impl WebConfig {
    /// The most files one form or message takes.
    pub const FILES_PER_REQUEST: u64 = 10;

    /// The largest body of a request carrying files (multipart forms, mail delivered by a mail server): ten
    /// files at the limit and the ordinary body limit for the rest (base64 in mail is covered by the margin of the
    /// first file at most; a larger message is refused with 413). Other requests keep `body_limit`.
    pub fn upload_limit(&self) -> usize {
        let files = self.files.max_bytes.saturating_mul(Self::FILES_PER_REQUEST).saturating_add(self.files.max_bytes / 2);
        usize::try_from(files).unwrap_or(usize::MAX).saturating_add(self.body_limit)
    }

    /// The body limit of an API request, which the API reads in full before its route (`api::problem_errors`):
    /// [`WebConfig::upload_limit`] for the routes that take files by convention (multipart to a path ending in
    /// `/files`; `message/rfc822` to a path with `/inbound/`, mail delivered by a mail server; an application's
    /// attachment under `/api/v1/companies/…/attachments/`; multipart to a call's `/api/v1/orgs/…/calls/…/documents`), `body_limit` for
    /// everything else, so that no other route can be made to hold a large body in memory.
    pub fn api_limit_for(&self, path: &str, content_type: Option<&[u8]>) -> usize {
        // An application's attachment (`PUT …/applications/{id}/attachments/{code}`) takes one file, multipart or raw.
        let attachment = path.starts_with("/api/v1/companies/") && path.contains("/applications/") && path.contains("/attachments/");
        // A call's document (`POST /api/v1/orgs/{org}/calls/{call}/documents`), multipart only.
        let document = path.starts_with("/api/v1/orgs/") && path.contains("/calls/") && path.ends_with("/documents");
        let upload = attachment
            || match content_type {
                Some(t) if t.starts_with(b"multipart/form-data") => path.ends_with("/files") || document,
                Some(t) if t.starts_with(b"message/rfc822") => path.contains("/inbound/"),
                _ => false,
            };
        if upload { self.upload_limit().max(self.body_limit) } else { self.body_limit }
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

#[cfg(test)]
mod tests {
    use super::WebConfig;

    #[test]
    fn only_the_file_routes_take_large_bodies() {
        let c = WebConfig::default();
        let (mp, mail, json) = (Some(&b"multipart/form-data; boundary=x"[..]), Some(&b"message/rfc822"[..]), Some(&b"application/json"[..]));
        assert_eq!(c.upload_limit(), 10 * 10 * 1024 * 1024 + 5 * 1024 * 1024 + 1024 * 1024);
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/helpdesk/files", mp), c.upload_limit());
        assert_eq!(c.api_limit_for("/api/v1/helpdesk/inbound/x", mail), c.upload_limit());
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/helpdesk/tickets", mp), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/helpdesk/files", json), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/helpdesk/inbound/x", mp), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/helpdesk/inbound/x", None), c.body_limit);
        let raw = Some(&b"application/pdf"[..]);
        assert_eq!(c.api_limit_for("/api/v1/companies/k/applications/a/attachments/piano", raw), c.upload_limit());
        assert_eq!(c.api_limit_for("/api/v1/companies/k/applications/a/attachments/piano", mp), c.upload_limit());
        assert_eq!(c.api_limit_for("/api/v1/companies/k/applications/a", raw), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/attachments/y", raw), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/calls/y/documents", mp), c.upload_limit());
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/calls/y/documents", raw), c.body_limit);
        assert_eq!(c.api_limit_for("/api/v1/orgs/x/calls/y/documents/z", mp), c.body_limit);
    }
}
