//! The reachability probe: every node runs a loop that claims the workstations due for a probe, opens a TCP
//! connection to each one's protocol port (a few at a time, each with a short timeout), and records online or
//! offline. A claim moves the workstation's next probe one interval ahead in the same statement, so with several
//! nodes on one PostgreSQL (`FOR UPDATE SKIP LOCKED`) no host is probed twice in a round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agilekit_kernel::db::DbResult;
use agilekit_kernel::{Db, clock};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::handoff;
use crate::model::{Status, WorkstationId};
use crate::store::{self, ProbeResult, ProbeTarget};

/// How the probe runs.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Time between two probes of the same workstation; zero turns the scheduled probe off.
    pub interval: Duration,
    pub timeout: Duration,
    /// Probes in flight at once on this node.
    pub concurrency: usize,
}

impl ProbeSettings {
    /// The interval, or five minutes when the scheduled probe is off (for when an admin probes one by hand).
    pub fn interval_or_default(&self) -> Duration {
        if self.interval.is_zero() { Duration::from_secs(300) } else { self.interval }
    }
}

/// Workstations claimed per statement.
const BATCH: i64 = 256;

/// Connects to the workstation's port: online if the handshake completes within `timeout`, offline otherwise.
pub async fn probe(target: ProbeTarget, timeout: Duration) -> ProbeResult {
    let host = handoff::target_host(&target.hostname, target.address.as_deref());
    let port = u16::try_from(target.port).unwrap_or(0);
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await;
    let (status, latency_ms, error) = match outcome {
        Ok(Ok(_stream)) => (Status::Online, Some(started.elapsed().as_millis() as i64), None),
        Ok(Err(e)) => (Status::Offline, None, Some(e.kind().to_string())),
        Err(_) => (Status::Offline, None, Some("timed out".to_owned())),
    };
    ProbeResult { target, status, latency_ms, error, at: clock::now() }
}

/// Probes a batch with at most `concurrency` connections open at once.
async fn probe_batch(batch: Vec<ProbeTarget>, s: &ProbeSettings) -> Vec<ProbeResult> {
    let permits = Arc::new(Semaphore::new(s.concurrency.max(1)));
    let mut set = JoinSet::new();
    for target in batch {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let timeout = s.timeout;
        set.spawn(async move {
            let _permit = permit;
            probe(target, timeout).await
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results
}

/// One round at `now`: claims and probes every workstation due, batch after batch, and records the results.
/// Returns the workstations this call probed.
pub async fn round(db: &Db, s: &ProbeSettings, now: OffsetDateTime) -> DbResult<Vec<WorkstationId>> {
    let next = clock::stamp(now + s.interval_or_default());
    let mut probed = Vec::new();
    loop {
        let batch = store::claim_due(db, now, next, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let results = probe_batch(batch, s).await;
        probed.extend(results.iter().map(|r| r.target.id));
        store::record(db, &results).await?;
    }
    Ok(probed)
}

/// How often a node looks for workstations due for a probe.
const TICK: Duration = Duration::from_secs(15);

/// The scheduled probe, until `stop` fires. Does nothing when the interval is zero.
pub async fn run(db: Db, s: ProbeSettings, mut stop: watch::Receiver<bool>) {
    if s.interval.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK.min(s.interval)) => {}
            _ = stop.wait_for(|v| *v) => break,
        }
        let work = round(&db, &s, clock::now());
        tokio::select! {
            r = work => if let Err(e) = r { tracing::warn!(error = %e, "workstation probe round failed") },
            _ = stop.wait_for(|v| *v) => break,
        }
    }
}
