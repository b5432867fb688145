//! Configuration: defaults that need no file, then an optional TOML file, then `AGILEKIT_*` variables, then flags.

use std::path::{Path, PathBuf};

use agilekit_kernel::mail::SmtpConfig;
use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; empty for the SQLite file in `data_dir`.
    pub database_url: String,
    /// Most database connections this node opens (0: 32 on PostgreSQL, 8 on SQLite).
    pub db_pool_size: u32,
    pub public_url: String,
    pub secure_cookies: bool,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Load shedding: the most requests this node handles at once (`max_in_flight`, default 1024); one more waits
    /// up to `shed_wait_ms` (default 1000) for a place, then is answered 429 with Retry-After.
    pub max_in_flight: usize,
    pub shed_wait_ms: u64,
    pub smtp: SmtpConfig,
    /// Seconds before the first retry of a failed job; doubles each attempt.
    pub job_backoff_secs: u64,
    /// `[jobs]`: how many days done jobs (mails sent, timers run) are kept (`keep_days`, 0: for ever).
    pub jobs: agilekit_kernel::jobs::Settings,
    pub log_format: String,
    /// Keep sessions, principals and active services in this node's memory, invalidated on every change (on
    /// PostgreSQL through LISTEN/NOTIFY, so every node hears of it). Off: every request reads the database.
    pub node_cache: bool,
    /// `[workstations]`: the Wake-on-LAN broadcast address and the reachability probe's pace.
    pub workstations: agilekit_workstations::Settings,
    /// `[guacamole]`: an Apache Guacamole gateway (URL and `json-secret-key`) for browser links to workstations;
    /// optional.
    pub guacamole: agilekit_workstations::GuacamoleSettings,
    /// `[helpdesk_mail]`: how often the help desk's IMAP mailboxes are polled (`poll_secs`), how many messages a
    /// round takes (`batch`), how long one IMAP step may take (`timeout_secs`).
    pub helpdesk_mail: agilekit_helpdesk::inbound::Settings,
    /// `[files]`: uploaded files (help-desk attachments): `max_bytes`, the largest file taken (default 10 MiB).
    pub files: agilekit_kernel::files::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./agilekit-data"),
            database_url: String::new(),
            db_pool_size: 0,
            public_url: String::new(),
            secure_cookies: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            max_in_flight: 1024,
            shed_wait_ms: 1000,
            smtp: SmtpConfig::default(),
            job_backoff_secs: 30,
            jobs: Default::default(),
            log_format: "text".into(),
            node_cache: true,
            workstations: Default::default(),
            guacamole: Default::default(),
            helpdesk_mail: Default::default(),
            files: Default::default(),
        }
    }
}

// Secrets never reach the logs, not even through a debug print of the configuration.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let db = if self.database_url.contains('@') { "postgres://[redacted]" } else { self.database_url.as_str() };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &db)
            .field("public_url", &self.public_url)
            .field("smtp_host", &self.smtp.host)
            .field("smtp_port", &self.smtp.port)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut c = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        let env = |k: &str| std::env::var(format!("AGILEKIT_{k}")).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("LISTEN") { c.listen = v; }
        if let Some(v) = env("DATA_DIR") { c.data_dir = v.into(); }
        if let Some(v) = env("DATABASE_URL").or_else(|| std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty())) { c.database_url = v; }
        if let Some(v) = env("DB_POOL_SIZE") { c.db_pool_size = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_DB_POOL_SIZE: not a number"))?; }
        if let Some(v) = env("MAX_IN_FLIGHT") { c.max_in_flight = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_MAX_IN_FLIGHT: not a number"))?; }
        if let Some(v) = env("SHED_WAIT_MS") { c.shed_wait_ms = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_SHED_WAIT_MS: not a number"))?; }
        if let Some(v) = env("PUBLIC_URL") { c.public_url = v; }
        if let Some(v) = env("NODE_CACHE") { c.node_cache = !(v == "0" || v == "false"); }
        if let Some(v) = env("SECURE_COOKIES") { c.secure_cookies = v == "1" || v == "true"; }
        if let Some(v) = env("SMTP_HOST") { c.smtp.host = v; }
        if let Some(v) = env("SMTP_PORT") { c.smtp.port = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_SMTP_PORT: not a port"))?; }
        if let Some(v) = env("SMTP_SECURITY") { c.smtp.security = v; }
        if let Some(v) = env("SMTP_USERNAME") { c.smtp.username = Some(v); }
        if let Some(v) = env("SMTP_PASSWORD") { c.smtp.password = Some(v); }
        if let Some(v) = env("SMTP_FROM") { c.smtp.from = v; }
        if let Some(v) = env("JOBS_KEEP_DAYS") { c.jobs.keep_days = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_JOBS_KEEP_DAYS: not a number"))?; }
        if let Some(v) = env("JOB_BACKOFF_SECS") { c.job_backoff_secs = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_JOB_BACKOFF_SECS: not a number"))?; }
        if let Some(v) = env("LOG_FORMAT") { c.log_format = v; }
        if let Some(v) = env("WOL_TARGET") { c.workstations.wol_target = v; }
        if let Some(v) = env("GUACAMOLE_URL") { c.guacamole.url = v; }
        if let Some(v) = env("GUACAMOLE_SECRET_KEY") { c.guacamole.secret_key = v; }
        if let Some(v) = env("HELPDESK_MAIL_POLL_SECS") { c.helpdesk_mail.poll_secs = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_HELPDESK_MAIL_POLL_SECS: not a number"))?; }
        if let Some(v) = env("FILES_MAX_BYTES") { c.files.max_bytes = v.parse().map_err(|_| anyhow::anyhow!("AGILEKIT_FILES_MAX_BYTES: not a number"))?; }
        agilekit_workstations::Runtime::new(&c.workstations, &c.guacamole).map_err(|e| anyhow::anyhow!(e))?;
        Ok(c)
    }

    /// The database URL in effect: the configured one, or the SQLite file in the data directory.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("agilekit.db").display())
        } else {
            self.database_url.clone()
        }
    }
}
