//! The agilekit server: opens the database, wires the kernel's web shell with every domain's routes, and runs the
//! background workers. The only crate that knows every domain.

pub mod config;
pub mod demo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agilekit_kernel::{Db, jobs, mail};
use agilekit_web::{AppState, WebConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;

/// Opens the configured database (creating the data directory for SQLite) and applies migrations.
pub async fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    if cfg.database_url.is_empty() {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", cfg.data_dir.display()))?;
    }
    let db = Db::connect_sized(&cfg.effective_database_url(), cfg.db_pool_size).await?;
    db.migrate().await?;
    Ok(db)
}

/// A running server: its address, and the means to stop it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    pub db: Db,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests and the current job finish, then returns.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(agilekit_web::SHUTDOWN_GRACE, t).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Every domain of the kit, in the order their routes are merged. The only place that knows them all.
fn domains(workstations: agilekit_workstations::Runtime, grants: agilekit_grants::applications::api::Runtime) -> Vec<agilekit_web::Domain> {
    vec![agilekit_remote_access::domain(), agilekit_workstations::domain(workstations), agilekit_helpdesk::domain(), agilekit_grants::domain(grants)]
}

/// Binds the listener and starts the HTTP server and the workers.
pub async fn start(cfg: &Config, db: Db) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let public_url = if cfg.public_url.is_empty() { format!("http://{addr}") } else { cfg.public_url.clone() };
    let workstations = agilekit_workstations::Runtime::new(&cfg.workstations, &cfg.guacamole).map_err(|e| anyhow::anyhow!(e))?;
    let ws_probe_settings = workstations.probe.clone();
    let grants = agilekit_grants::runtime(&db).await.map_err(|e| anyhow::anyhow!("click-day sequencer: {e}"))?;
    let domains = domains(workstations, grants);
    let (tx, rx) = watch::channel(false);
    let state = AppState {
        service_pages: Arc::new(domains.iter().flat_map(|d| d.pages.iter().cloned()).collect()),
        shutdown: rx.clone(),
        db: db.clone(),
        cfg: Arc::new(WebConfig {
            public_url,
            secure_cookies: cfg.secure_cookies,
            body_limit: cfg.body_limit_bytes,
            files: cfg.files.clone(),
            request_timeout: Duration::from_secs(cfg.request_timeout_secs),
            max_in_flight: cfg.max_in_flight,
            shed_wait: Duration::from_millis(cfg.shed_wait_ms),
        }),
        metrics: Arc::new(Default::default()),
        cache: if cfg.node_cache { agilekit_kernel::cache::NodeCache::new(&db) } else { agilekit_kernel::cache::NodeCache::disabled() },
    };
    let cache = state.cache.clone();
    let app = agilekit_web::app(state, domains);

    let mut stop_http = rx.clone();
    let http = tokio::spawn(async move {
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop_http.wait_for(|s| *s).await;
            });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "http server stopped");
        }
    });

    let mut worker = jobs::Worker::new(db.clone());
    worker.handle(mail::JOB_KIND, mail::handler(cfg.smtp.clone()));
    worker.handle(agilekit_helpdesk::sla_jobs::JOB_KIND, agilekit_helpdesk::sla_jobs::handler(db.clone()));
    worker.base_backoff = Duration::from_secs(cfg.job_backoff_secs.max(1));
    worker.keep_done = cfg.jobs.keep_done();
    let jobs_task = tokio::spawn(worker.run(rx.clone()));
    let listener = tokio::spawn(agilekit_kernel::cache::listen(db.clone(), cache, rx.clone()));

    let sweep_db = db.clone();
    let mut stop_sweep = rx.clone();
    let sweeper = tokio::spawn(async move {
        loop {
            if let Err(e) = agilekit_kernel::identity::session::sweep(&sweep_db).await {
                tracing::warn!(error = %e, "session sweep failed");
            }
            // Uploaded files never attached to anything within a day.
            if let Err(e) = agilekit_kernel::files::sweep(&sweep_db, agilekit_kernel::clock::now()).await {
                tracing::warn!(error = %e, "pending file sweep failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = stop_sweep.wait_for(|s| *s) => break,
            }
        }
    });

    // VPN devices whose term is over, or whose owner left, leave the gateways and free their seats.
    let vpn_sweeper = tokio::spawn(agilekit_remote_access::run_sweeper(db.clone(), rx.clone()));

    // Remote workstations: the scheduled reachability probe (TCP connect to each one's port).
    let ws_probe = tokio::spawn(agilekit_workstations::probe::run(db.clone(), ws_probe_settings, rx.clone()));

    // Help desk mail: each organisation's IMAP mailbox polled for new tickets and replies.
    let hd_mail = tokio::spawn(agilekit_helpdesk::inbound::run(db.clone(), agilekit_helpdesk::inbound::Settings { files: cfg.files.clone(), ..cfg.helpdesk_mail.clone() }, rx.clone()));

    Ok(Running { addr, db, shutdown: tx, tasks: vec![http, jobs_task, sweeper, listener, vpn_sweeper, ws_probe, hd_mail] })
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
