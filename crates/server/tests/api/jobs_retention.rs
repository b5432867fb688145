//! Retention of done jobs (crates/kernel/src/jobs.rs): the worker loop deletes the jobs done more than
//! `[jobs] keep_days` ago (default 30), at most hourly; jobs given up and jobs still to run stay. On both engines.

use std::time::Duration;

use agilekit_kernel::ids::JobId;
use agilekit_kernel::{Db, clock, db_run, jobs};
use agilekit_server::Config;
use time::OffsetDateTime;

use crate::both_engines;
use crate::helpers::*;

/// A job of `kind`, done and/or given up that many days ago (none: still to run). Due in ten years, so that the
/// running server's worker leaves it alone.
async fn add(db: &Db, kind: &str, done_days_ago: Option<i64>, failed_days_ago: Option<i64>) -> JobId {
    let mut tx = db.begin().await.unwrap();
    let later = clock::now() + time::Duration::days(3650);
    let id = jobs::enqueue(&mut tx, kind, &serde_json::json!({"kind": kind}), None, later, 1).await.unwrap();
    tx.commit().await.unwrap();
    let ago = |d: i64| clock::stamp(OffsetDateTime::now_utc() - time::Duration::days(d));
    db_run!(db, |p| sqlx::query("UPDATE jobs SET done_at = $1, failed_at = $2 WHERE id = $3")
        .bind(done_days_ago.map(ago)).bind(failed_days_ago.map(ago)).bind(id).execute(p).await.unwrap().rows_affected());
    id
}

async fn exists(db: &Db, id: JobId) -> bool {
    let n: i64 = db_run!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE id = $1").bind(id).fetch_one(p).await.unwrap());
    n == 1
}

async fn count_kind(db: &Db, kind: &str) -> i64 {
    db_run!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1").bind(kind).fetch_one(p).await.unwrap())
}

both_engines!(done_jobs_older_than_the_retention_are_swept_at_most_hourly, |app| async move {
    // The server's own worker is stopped: this test's worker is the only one sweeping.
    let mut app = app;
    app.stop().await;
    let db = app.db.clone();
    let old_mail = add(&db, "mail", Some(45), None).await;
    let old_sla = add(&db, "helpdesk.sla", Some(31), None).await;
    let recent = add(&db, "mail", Some(29), None).await;
    let given_up = add(&db, "mail", None, Some(40)).await;
    let waiting = add(&db, "helpdesk.sla", None, None).await;

    let mut worker = jobs::Worker::new(db.clone());
    assert_eq!(worker.keep_done, Some(Duration::from_secs(30 * 86_400)), "30 days by default");
    assert_eq!(worker.sweep_if_due().await.unwrap(), Some(2));
    assert!(!exists(&db, old_mail).await && !exists(&db, old_sla).await, "done over 30 days ago: deleted");
    for (what, id) in [("done 29 days ago", recent), ("given up", given_up), ("still to run", waiting)] {
        assert!(exists(&db, id).await, "{what}: kept");
    }
    // Within the hour the worker does not sweep again; once the hour is over it does.
    let another = add(&db, "mail", Some(31), None).await;
    assert_eq!(worker.sweep_if_due().await.unwrap(), None);
    assert!(exists(&db, another).await);
    worker.sweep_every = Duration::ZERO;
    assert_eq!(worker.sweep_if_due().await.unwrap(), Some(1));
    assert!(!exists(&db, another).await);
    // Kept for ever: nothing is swept.
    let forever = add(&db, "mail", Some(400), None).await;
    worker.keep_done = None;
    assert_eq!(worker.sweep_if_due().await.unwrap(), None);
    assert!(exists(&db, forever).await);

    // More than one statement's batch: all of them go, in batches.
    let mut tx = db.begin().await.unwrap();
    for i in 0..2_345 {
        jobs::enqueue(&mut tx, "test.bulk", &serde_json::json!({ "i": i }), None, clock::now() + time::Duration::days(3650), 1).await.unwrap();
    }
    tx.commit().await.unwrap();
    let long_ago = clock::stamp(OffsetDateTime::now_utc() - time::Duration::days(60));
    db_run!(&db, |p| sqlx::query("UPDATE jobs SET done_at = $1 WHERE kind = 'test.bulk'").bind(long_ago).execute(p).await.unwrap().rows_affected());
    let cut = OffsetDateTime::now_utc() - time::Duration::days(30);
    assert_eq!(jobs::sweep_done(&db, cut).await.unwrap(), 2_345 + 1, "the bulk and the one kept for ever above");
    assert_eq!(count_kind(&db, "test.bulk").await, 0);
    assert!(exists(&db, recent).await && exists(&db, given_up).await && exists(&db, waiting).await);
    app
});

both_engines!(the_server_sweeps_done_jobs_when_its_worker_starts, |app| async move {
    let mut app = app;
    let old = add(&app.db, "mail", Some(31), None).await;
    let recent = add(&app.db, "mail", Some(1), None).await;
    // A new process on the same database: its worker's first round sweeps.
    app.restart(Options::default()).await;
    let start = std::time::Instant::now();
    while exists(&app.db, old).await && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!exists(&app.db, old).await, "the old done job is still there");
    assert!(exists(&app.db, recent).await);
    app
});

#[test]
fn keep_days_comes_from_the_configuration_file_and_zero_keeps_for_ever() {
    let dir = std::env::temp_dir().join(format!("agilekit-jobs-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agilekit.toml");
    assert_eq!(Config::default().jobs.keep_done(), Some(Duration::from_secs(30 * 86_400)));
    std::fs::write(&file, "[jobs]\nkeep_days = 7\n").unwrap();
    assert_eq!(Config::load(Some(&file)).unwrap().jobs.keep_done(), Some(Duration::from_secs(7 * 86_400)));
    std::fs::write(&file, "[jobs]\nkeep_days = 0\n").unwrap();
    assert_eq!(Config::load(Some(&file)).unwrap().jobs.keep_done(), None);
    let _ = std::fs::remove_dir_all(&dir);
}
