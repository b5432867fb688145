//! The `agilekit` binary as an operator runs it: `serve` on a port, stopped by SIGTERM (what systemd and container
//! runtimes send) while a request is in flight.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("agilekit-sigterm-{}", uuid::Uuid::new_v4()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_agilekit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .env("AGILEKIT_SMTP_PORT", "9")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agilekit binary");
    // The first line says where it listens.
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).map(|_| l)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line.trim().strip_prefix("agilekit listening on ").unwrap_or_else(|| panic!("unexpected first line: {line}")).to_owned();
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{url}/healthz")).send().await.unwrap().status(), 200);

    // A login is slow on purpose (argon2id): it is in flight when the signal arrives.
    let login = {
        let c = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            c.post(format!("{url}/login"))
                .header("origin", &url)
                .form(&[("email", "nobody@example.it"), ("password", "not-the-password")])
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let t0 = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let answered = login.await.unwrap();
    assert!(answered.as_ref().is_ok_and(|s| s.is_success() || s.is_client_error() || s.is_redirection()), "the request in flight got {answered:?}");
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "agilekit exited with {status}");
    assert!(t0.elapsed() < Duration::from_secs(20), "shutdown took {:?}", t0.elapsed());
    // Stopped: nothing answers any more.
    assert!(client.get(format!("{url}/healthz")).send().await.is_err());
    // And it starts again on the same data.
    let again = Command::new(env!("CARGO_BIN_EXE_agilekit")).args(["migrate", "--data-dir"]).arg(&dir).env_remove("DATABASE_URL").output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
