//! The IMAP poller: every `poll_secs`, each enabled mailbox in turn, under a lease in the database so that two
//! nodes never poll the same mailbox at once. A round logs in, reads the UNSEEN messages of the folder (at most
//! `batch`), hands each to [`super::process`] and only then flags it \Seen; a message whose handling failed (the
//! database away) stays unseen for the next round, and handling it again is harmless.

use std::time::Duration;

use agilekit_kernel::db::Db;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::{Error, clock};
use async_imap::Client;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::store::{self, MailboxRow};

/// `[helpdesk_mail]` in the configuration.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Settings {
    /// Seconds between two polling rounds.
    pub poll_secs: u64,
    /// The most messages one round takes from one mailbox.
    pub batch: usize,
    /// Seconds one IMAP step (connect, login, fetch…) may take.
    pub timeout_secs: u64,
    /// The file limits (`[files]`, set from there): a mail's attachment over the limit is dropped.
    #[serde(skip)]
    pub files: agilekit_kernel::files::Settings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_secs: 60,
            batch: 50,
            timeout_secs: 30,
            files: Default::default(),
        }
    }
}

/// Polls every enabled mailbox each `poll_secs` until `stop` turns true.
pub async fn run(db: Db, settings: Settings, mut stop: watch::Receiver<bool>) {
    let owner = uuid::Uuid::now_v7().to_string();
    let pace = Duration::from_secs(settings.poll_secs.max(1));
    loop {
        match store::enabled(&db).await {
            Ok(orgs) => {
                for org in orgs {
                    if *stop.borrow() {
                        return;
                    }
                    if let Err(e) = poll(&db, org, &settings, &owner).await {
                        tracing::warn!(org = %org, error = %e, "help desk mailbox poll failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "help desk mailboxes unreadable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(pace) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One round on one mailbox, if its lease is free: how many messages were handled.
pub async fn poll(db: &Db, org: OrgId, settings: &Settings, owner: &str) -> Result<usize, String> {
    let now = clock::now();
    // The lease outlives the longest round: batch × steps × timeout.
    let lease = time::Duration::seconds(
        (settings.timeout_secs.max(1) * (settings.batch as u64 * 2 + 5)) as i64,
    );
    if !store::take_lease(db, org, owner, now, now + lease)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(0);
    }
    let result = match store::mailbox(db, org).await {
        Ok(Some(m)) if m.enabled => round(db, &m, settings).await,
        Ok(_) => Ok(0),
        Err(e) => Err(e.to_string()),
    };
    let error = result
        .as_ref()
        .err()
        .map(|e| e.chars().take(500).collect::<String>());
    if let Err(e) = store::release_lease(db, org, owner, clock::now(), error.as_deref()).await {
        tracing::warn!(org = %org, error = %e, "help desk mailbox lease not released");
    }
    result
}

async fn step<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out")),
    }
}

async fn tls(
    host: &str,
    tcp: TcpStream,
    limit: Duration,
) -> Result<tokio_native_tls::TlsStream<TcpStream>, String> {
    let connector =
        tokio_native_tls::native_tls::TlsConnector::new().map_err(|e| format!("tls: {e}"))?;
    step(
        limit,
        "tls",
        tokio_native_tls::TlsConnector::from(connector).connect(host, tcp),
    )
    .await
}

async fn round(db: &Db, m: &MailboxRow, settings: &Settings) -> Result<usize, String> {
    let limit = Duration::from_secs(settings.timeout_secs.max(1));
    let port = u16::try_from(m.port).map_err(|_| "bad port".to_owned())?;
    let tcp = step(
        limit,
        "connect",
        TcpStream::connect((m.host.as_str(), port)),
    )
    .await?;
    match m.tls.as_str() {
        "tls" => {
            let s = tls(&m.host, tcp, limit).await?;
            let mut client = Client::new(s);
            greeting(&mut client, limit).await?;
            session(db, m, settings, client, limit).await
        }
        "starttls" => {
            let mut client = Client::new(tcp);
            greeting(&mut client, limit).await?;
            step(
                limit,
                "starttls",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            let s = tls(&m.host, client.into_inner(), limit).await?;
            session(db, m, settings, Client::new(s), limit).await
        }
        _ => {
            let mut client = Client::new(tcp);
            greeting(&mut client, limit).await?;
            session(db, m, settings, client, limit).await
        }
    }
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send>(
    client: &mut Client<T>,
    limit: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(limit, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err("greeting: connection closed".into()),
        Ok(Err(e)) => Err(format!("greeting: {e}")),
        Err(_) => Err("greeting: timed out".into()),
    }
}

async fn session<T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send>(
    db: &Db,
    m: &MailboxRow,
    settings: &Settings,
    client: Client<T>,
    limit: Duration,
) -> Result<usize, String> {
    let mut s = match tokio::time::timeout(limit, client.login(&m.username, &m.password)).await {
        Ok(Ok(s)) => s,
        Ok(Err((e, _))) => return Err(format!("login: {e}")),
        Err(_) => return Err("login: timed out".into()),
    };
    step(limit, "select", s.select(&m.folder)).await?;
    let mut uids: Vec<u32> = step(limit, "search", s.uid_search("UNSEEN"))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    uids.truncate(settings.batch.max(1));
    let mut handled = 0;
    let mut failure = None;
    for uid in uids {
        let raw = {
            let fetches = step(limit, "fetch", s.uid_fetch(uid.to_string(), "BODY.PEEK[]")).await?;
            let all: Vec<_> = step(limit, "fetch", async {
                Ok::<_, String>(fetches.collect::<Vec<_>>().await)
            })
            .await?;
            all.into_iter()
                .filter_map(|f| f.ok())
                .find_map(|f| f.body().map(<[u8]>::to_vec))
        };
        let Some(raw) = raw else { continue };
        match super::process(db, m.org_id, &raw, &settings.files).await {
            Ok(p) => {
                tracing::info!(org = %m.org_id, uid, outcome = %p.outcome, "help desk mail handled")
            }
            // Not a mail it can read: flagged seen all the same, it will not get better.
            Err(Error::Invalid(e)) => {
                tracing::warn!(org = %m.org_id, uid, errors = ?e, "help desk mail unreadable")
            }
            Err(e) => {
                failure = Some(format!("processing: {e}"));
                break;
            }
        }
        let stored = step(
            limit,
            "store",
            s.uid_store(uid.to_string(), "+FLAGS (\\Seen)"),
        )
        .await?;
        step(limit, "store", async {
            Ok::<_, String>(stored.collect::<Vec<_>>().await)
        })
        .await?;
        handled += 1;
    }
    let _ = tokio::time::timeout(limit, s.logout()).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(handled),
    }
}
