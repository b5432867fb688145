//! The outbox against a real SMTP server (Python's aiosmtpd, which prints every message it receives): delivery,
//! retry while the server is down, nothing lost or doubled across a restart, one claimer per job, and the depth
//! that /metrics exports.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agilekit_kernel::audit::Actor;
use agilekit_kernel::ids::JobId;
use agilekit_kernel::mail::{self, Mail, SmtpConfig};
use agilekit_kernel::{Db, clock, db_run, jobs, onboarding};

use crate::each_engine;
use crate::helpers::*;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An SMTP server in a child process, killed when this is dropped (a failing test included).
struct SmtpSink {
    child: Child,
    out: PathBuf,
}

impl SmtpSink {
    async fn start(port: u16) -> SmtpSink {
        let out = std::env::temp_dir().join(format!("agilekit-smtp-{}.txt", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(file)
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let sink = SmtpSink { child, out };
        let ready = wait_for(Duration::from_secs(15), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(ready, "aiosmtpd did not start on port {port}");
        sink
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn messages(&self) -> usize {
        self.output().matches("---------- MESSAGE FOLLOWS ----------").count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}

/// Polls `check` every 200 ms until it holds or `limit` passes; says whether it held.
async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn queue(app: &TestApp, to: &str, subject: &str) -> JobId {
    let mut tx = app.db.begin().await.unwrap();
    let id =
        mail::queue(&mut tx, None, &Mail { to: to.into(), subject: subject.into(), text: "Prova.\n\nTest.".into() })
            .await
            .unwrap();
    tx.commit().await.unwrap();
    id
}

#[derive(Debug)]
struct JobState {
    attempts: i64,
    last_error: Option<String>,
    done: bool,
}

async fn job(db: &Db, id: JobId) -> JobState {
    let (attempts, last_error, done): (i64, Option<String>, bool) =
        db_run!(db, |p| sqlx::query_as("SELECT attempts, last_error, done_at IS NOT NULL FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap());
    JobState { attempts, last_error, done }
}

fn message_id(id: JobId) -> String {
    format!("<{id}@agilekit.localhost>")
}

/// The Subject header exactly as lettre writes it for this job (encoded, folded), unfolded.
fn subject_header(db_payload: &str, id: JobId) -> String {
    let mail: Mail = serde_json::from_str(db_payload).unwrap();
    let raw =
        String::from_utf8(mail::build_message(&SmtpConfig::default(), &mail, Some(id)).unwrap().formatted()).unwrap();
    header_line(&raw, "Subject: ").expect("a Subject header")
}

fn header_line(message: &str, name: &str) -> Option<String> {
    let unfolded = message.replace("\r\n", "\n").replace("\n ", " ").replace("\n\t", "\t");
    unfolded.lines().find(|l| l.starts_with(name)).map(str::to_owned)
}

async fn payload(db: &Db, id: JobId) -> String {
    db_run!(db, |p| sqlx::query_scalar::<_, String>("SELECT payload FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap())
}

fn company_code(first10: &str) -> String {
    let d: Vec<u32> = first10.chars().filter_map(|c| c.to_digit(10)).collect();
    let x: u32 = d.iter().step_by(2).sum();
    let y: u32 = d.iter().skip(1).step_by(2).map(|v| if 2 * v > 9 { 2 * v - 9 } else { 2 * v }).sum();
    format!("{first10}{}", (10 - (x + y) % 10) % 10)
}


each_engine!(a_change_that_queues_mail_gets_it_delivered, delivered);
async fn delivered(engine: Engine) {
    let port = free_port();
    let smtp = SmtpSink::start(port).await;
    let app = spawn_with(engine, Options { smtp_port: port, ..Default::default() }).await;
    let input = onboarding::RequestInput {
        org_name: "Comune di Prova".into(),
        ipa_code: "c_prova".into(),
        tax_code: company_code("8000123015"),
        pec: "protocollo@pec.comune-prova.example".into(),
        contact_name: "Teresa Referente".into(),
        contact_email: "referente@comune-prova.example".into(),
        services: vec!["helpdesk".into()],
    };
    onboarding::submit(&app.db, &Actor::system(), &input).await.unwrap();
    let id: JobId =
        db_run!(&app.db, |p| sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'mail' AND payload LIKE $1")
            .bind("%referente@comune-prova.example%")
            .fetch_one(p)
            .await
            .unwrap());
    let subject = subject_header(&payload(&app.db, id).await, id);
    let arrived = wait_for(Duration::from_secs(20), || async { smtp.output().contains(&message_id(id)) }).await;
    assert!(arrived, "the mail reached the SMTP server: {}", smtp.output());
    let out = smtp.output();
    assert!(out.contains("To: referente@comune-prova.example"), "{out}");
    assert_eq!(header_line(&out, "Subject: ").as_deref(), Some(subject.as_str()), "{out}");
    assert!(
        wait_for(Duration::from_secs(10), || async { job(&app.db, id).await.done }).await,
        "the job is marked done"
    );
    let j = job(&app.db, id).await;
    assert_eq!((j.attempts, j.last_error), (1, None));
    assert_eq!(smtp.messages(), 1);
    app.finish().await;
}

each_engine!(mail_waits_while_smtp_is_down_and_leaves_when_it_is_back, down_then_back);
async fn down_then_back(engine: Engine) {
    let port = free_port();
    let app = spawn_with(engine, Options { smtp_port: port, ..Default::default() }).await;
    let id = queue(&app, "ritardo@example.it", "agilekit test: retry").await;
    let failed = wait_for(Duration::from_secs(15), || async {
        let j = job(&app.db, id).await;
        j.attempts >= 1 && j.last_error.is_some()
    })
    .await;
    assert!(failed, "the first attempt failed and said why: {:?}", job(&app.db, id).await);
    assert!(!job(&app.db, id).await.done);

    let smtp = SmtpSink::start(port).await;
    // Backoff from 1 s doubling: the next attempt is at most a few seconds away; 30 s is ample and bounded.
    let arrived = wait_for(Duration::from_secs(30), || async { smtp.output().contains(&message_id(id)) }).await;
    assert!(arrived, "the mail left once the server was back: {:?}", job(&app.db, id).await);
    assert!(smtp.output().contains("Subject: agilekit test: retry"));
    assert!(wait_for(Duration::from_secs(10), || async { job(&app.db, id).await.done }).await);
    let j = job(&app.db, id).await;
    assert!(j.attempts >= 2 && j.last_error.is_none(), "{j:?}");
    app.finish().await;
}

each_engine!(queued_mail_survives_a_restart_and_leaves_exactly_once, across_restart);
async fn across_restart(engine: Engine) {
    let down = free_port();
    let mut app = spawn_with(engine, Options { smtp_port: down, ..Default::default() }).await;
    let id = queue(&app, "riavvio@example.it", "agilekit test: restart").await;
    assert!(wait_for(Duration::from_secs(15), || async { job(&app.db, id).await.attempts >= 1 }).await);
    app.stop().await;

    let up = free_port();
    let smtp = SmtpSink::start(up).await;
    app.restart(Options { smtp_port: up, ..Default::default() }).await;
    let arrived = wait_for(Duration::from_secs(30), || async { smtp.output().contains(&message_id(id)) }).await;
    assert!(arrived, "the new server sent what the old one could not: {:?}", job(&app.db, id).await);
    assert!(wait_for(Duration::from_secs(10), || async { job(&app.db, id).await.done }).await);
    // Give a duplicate every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = smtp.output();
    assert_eq!(out.matches(&message_id(id)).count(), 1, "sent exactly once: {out}");
    assert_eq!(smtp.messages(), 1);
    app.finish().await;
}

each_engine!(concurrent_claimers_never_get_the_same_job, concurrent_claims);
async fn concurrent_claims(engine: Engine) {
    let mut app = spawn_with(engine, Options { demo: false, ..Default::default() }).await;
    // No worker of the server's own: only the claimers below take jobs.
    app.stop().await;
    let mut tx = app.db.begin().await.unwrap();
    let mut ours = HashSet::new();
    for i in 0..300 {
        let id =
            jobs::enqueue(&mut tx, "test.claim", &serde_json::json!({ "i": i }), None, clock::now(), 3).await.unwrap();
        ours.insert(id);
    }
    tx.commit().await.unwrap();

    // Two pools, as two nodes would have, four claimers on each.
    let other = Db::connect(&app.database_url()).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let db = if n % 2 == 0 { app.db.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = jobs::claim(&db, 5, Duration::from_secs(300)).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    let mut claimers_with_work = 0;
    for t in tasks {
        let got = t.await.unwrap();
        claimers_with_work += usize::from(!got.is_empty());
        all.extend(got);
    }
    let unique: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no job was handed to two claimers");
    assert!(ours.is_subset(&unique), "every job was claimed");
    assert!(claimers_with_work >= 2, "the claimers really ran side by side");
    let twice: i64 = db_run!(&app.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'test.claim' AND attempts <> 1"
    )
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(twice, 0, "each job's attempt was counted once");
    other.close().await;
    app.finish().await;
}

fn outbox_depth(metrics: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("agilekit_outbox_depth{kind=\"mail\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the mail outbox depth is exported")
}

each_engine!(metrics_count_a_queued_undelivered_mail, metrics_depth);
async fn metrics_depth(engine: Engine) {
    // Default options: nothing listens on the SMTP port, so mail stays queued.
    let app = spawn(engine).await;
    let c = app.client();
    let before = outbox_depth(&c.get(app.at("/metrics")).send().await.unwrap().text().await.unwrap());
    let id = queue(&app, "metriche@example.it", "agilekit test: depth").await;
    let after = outbox_depth(&c.get(app.at("/metrics")).send().await.unwrap().text().await.unwrap());
    assert_eq!(after, before + 1, "the queued mail counts");
    // Still counted after failed attempts: it is waiting, not gone.
    assert!(wait_for(Duration::from_secs(15), || async { job(&app.db, id).await.attempts >= 1 }).await);
    let later = outbox_depth(&c.get(app.at("/metrics")).send().await.unwrap().text().await.unwrap());
    assert_eq!(later, after);
    app.finish().await;
}
