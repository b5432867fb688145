//! Help desk mail (crates/helpdesk/src/inbound): a real Dovecot per test as the organisation's IMAP mailbox, the
//! delivery endpoint a mail server pipes to, the agents' replies going out threaded to a real SMTP server
//! (aiosmtpd); on both engines, through the real server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agilekit_kernel::Db;
use agilekit_kernel::audit::Actor;
use agilekit_kernel::identity::token;
use agilekit_kernel::ids::OrgId;
use reqwest::Client;
use serde_json::{Value, json};

use crate::both_engines;
use crate::each_engine;
use crate::helpers::*;

/// This feature's organisation-scoped routes, tried by this module's isolation test with another organisation's
/// ids (the guard in `isolation.rs` reads this table). `{org}` is the victim organisation.
pub const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/orgs/{org}/helpdesk/mail", ""),
    (
        "PUT",
        "/api/v1/orgs/{org}/helpdesk/mail",
        r#"{"enabled":false,"host":"evil.example","port":143,"tls":"none","username":"x","password":"hacked"}"#,
    ),
    ("POST", "/api/v1/orgs/{org}/helpdesk/mail/token", ""),
    (
        "POST",
        "/api/v1/helpdesk/inbound/{org}",
        "From: admin@comune.example\r\nSubject: Hacked\r\nMessage-ID: <hack@x.example>\r\n\r\nHacked\r\n",
    ),
];

// ---------------------------------------------------------------------------------------------------------------
// Real servers: Dovecot and aiosmtpd, each in a child process stopped when dropped (a failing test included).

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

const IMAP_USER: &str = "helpdesk";
const IMAP_PASSWORD: &str = "segreto-imap-42";

/// Debian's Dovecot in the foreground (`dovecot -F`) on a free loopback port, with its own configuration, one
/// passwd-file user and a maildir, all in a temporary directory.
struct Dovecot {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// The implicit-TLS port, when started with a (self-signed) certificate.
    tls_port: Option<u16>,
}

impl Dovecot {
    async fn start() -> Dovecot {
        Self::start_with(false).await
    }

    /// With `tls`: a self-signed certificate, STARTTLS offered on the plain port and implicit TLS on another.
    async fn start_with(tls: bool) -> Dovecot {
        // Short: Dovecot's unix sockets live under base_dir, and socket paths are limited to ~100 bytes.
        let dir = std::env::temp_dir().join(format!(
            "akdv-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let port = free_port();
        let uid = String::from_utf8(Command::new("id").arg("-u").output().expect("id -u").stdout)
            .unwrap()
            .trim()
            .to_owned();
        let gid = String::from_utf8(Command::new("id").arg("-g").output().expect("id -g").stdout)
            .unwrap()
            .trim()
            .to_owned();
        // Dovecot refuses to store mail as root: as root (CI), the mail belongs to nobody.
        let (uid, gid) = if uid == "0" {
            for d in ["mail", "home"] {
                std::os::unix::fs::chown(dir.join(d), Some(65534), Some(65534)).unwrap();
            }
            ("65534".to_owned(), "65534".to_owned())
        } else {
            (uid, gid)
        };
        let d = dir.display();
        let tls_port = tls.then(free_port);
        let ssl = match tls_port {
            Some(_) => {
                let made = Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=127.0.0.1",
                        "-keyout",
                    ])
                    .arg(dir.join("key.pem"))
                    .arg("-out")
                    .arg(dir.join("cert.pem"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("openssl (a dependency of dovecot-core)");
                assert!(made.success());
                format!("ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n")
            }
            None => "ssl = no\n".to_owned(),
        };
        let imaps = tls_port.map_or(0, |p| p);
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n\
             {ssl}disable_plaintext_auth = no\nauth_mechanisms = plain login\nfirst_valid_uid = 0\n\
             mail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  \
             unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        std::fs::write(
            dir.join("users"),
            format!("{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}::::::\n"),
        )
        .unwrap();
        let child = Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's dovecot-imapd (scripts/test installs it)");
        let dv = Dovecot {
            child,
            dir,
            port,
            tls_port,
        };
        let up = wait_for(Duration::from_secs(20), || async {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        assert!(up, "Dovecot did not start: {}", dv.log());
        dv
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// A logged-in IMAP connection: a few lines of the protocol, enough to append and search.
    fn session(&self) -> Imap {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut i = Imap {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            tag: 0,
        };
        let mut greeting = String::new();
        i.r.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        i.cmd(&format!("LOGIN {IMAP_USER} {IMAP_PASSWORD}"));
        i
    }

    /// Delivers a message into the mailbox by IMAP APPEND.
    fn deliver(&self, raw: &str) {
        let mut i = self.session();
        i.append(raw);
    }

    /// How many messages of INBOX are not yet \Seen.
    fn unseen(&self) -> usize {
        let mut i = self.session();
        i.cmd("SELECT INBOX");
        let lines = i.cmd("UID SEARCH UNSEEN");
        lines
            .iter()
            .find(|l| l.starts_with("* SEARCH"))
            .map_or(0, |l| l.split_whitespace().count() - 2)
    }

    fn total(&self) -> usize {
        let mut i = self.session();
        let lines = i.cmd("SELECT INBOX");
        lines
            .iter()
            .find_map(|l| {
                l.strip_suffix(" EXISTS")
                    .and_then(|x| x.strip_prefix("* "))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM to the master we started (by its id): it stops its own children.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}

impl Imap {
    fn read_until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(
                self.r.read_line(&mut l).unwrap() > 0,
                "IMAP connection closed: {lines:?}"
            );
            let l = l.trim_end().to_owned();
            if l.starts_with(&format!("{tag} ")) {
                assert!(l.starts_with(&format!("{tag} OK")), "IMAP said {l}");
                return lines;
            }
            lines.push(l);
        }
    }

    fn cmd(&mut self, c: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.w, "{tag} {c}\r\n").unwrap();
        self.read_until_tagged(&tag)
    }

    fn append(&mut self, raw: &str) {
        let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.w, "{tag} APPEND INBOX {{{}}}\r\n", raw.len()).unwrap();
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.starts_with('+'), "APPEND refused: {l}");
        self.w.write_all(raw.as_bytes()).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.read_until_tagged(&tag);
    }
}

/// An SMTP server (Python's aiosmtpd, which prints every message it receives).
struct SmtpSink {
    child: Child,
    out: PathBuf,
}

impl SmtpSink {
    async fn start(port: u16) -> SmtpSink {
        let out =
            std::env::temp_dir().join(format!("agilekit-hdmail-smtp-{}.txt", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(file)
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let sink = SmtpSink { child, out };
        let ready = wait_for(Duration::from_secs(15), || async {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        assert!(ready, "aiosmtpd did not start on port {port}");
        sink
    }

    /// Each message received, its header lines unfolded.
    fn messages(&self) -> Vec<String> {
        let out = std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .replace("\r\n", "\n");
        out.split("---------- MESSAGE FOLLOWS ----------")
            .skip(1)
            .map(|m| {
                m.split("------------ END MESSAGE ------------")
                    .next()
                    .unwrap_or("")
                    .replace("\n ", " ")
                    .replace("\n\t", " ")
            })
            .collect()
    }

    fn to(&self, addr: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| m.lines().any(|l| l == format!("To: {addr}")))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const EMPLOYEE: &str = "dipendente@regione.example";
const AGENT: &str = "agente@regione.example";

fn mail(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: helpdesk@regione.example\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n\
         Date: Sat, 05 Dec 2026 10:00:00 +0100\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

async fn send(c: &Client, method: &str, url: String, body: Option<Value>) -> (u16, Value, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = c.request(m, &url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

async fn call(
    app: &TestApp,
    c: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (s, v, text) = send(c, method, app.at(path), body).await;
    assert_eq!(s, want, "{method} {path} answered {s}: {text}");
    v
}

fn has_error(v: &Value, field: &str, code: &str) -> bool {
    v["errors"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["field"] == field && e["code"] == code))
}

fn settings_url(org: OrgId) -> String {
    format!("/api/v1/orgs/{org}/helpdesk/mail")
}

/// The region's tickets as its agent sees them, oldest first: (id, number, subject, state).
async fn tickets(app: &TestApp, agent: &Client, org: OrgId) -> Vec<(String, i64, String, String)> {
    let v = call(
        app,
        agent,
        "GET",
        &format!("/api/v1/orgs/{org}/helpdesk/tickets?limit=100"),
        None,
        200,
    )
    .await;
    let mut out: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["number"].as_i64().unwrap(),
                t["subject"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort_by_key(|t| t.1);
    out
}

/// A ticket's messages: (kind, author name, body).
async fn thread(
    app: &TestApp,
    agent: &Client,
    org: OrgId,
    ticket: &str,
) -> Vec<(String, String, String)> {
    let v = call(
        app,
        agent,
        "GET",
        &format!("/api/v1/orgs/{org}/helpdesk/tickets/{ticket}"),
        None,
        200,
    )
    .await;
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["author_name"].as_str().unwrap_or("").to_owned(),
                m["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The stored Message-IDs of a ticket's messages, oldest first.
async fn message_ids(db: &Db, ticket: &str) -> Vec<String> {
    let id: uuid::Uuid = ticket.parse().unwrap();
    agilekit_kernel::db_run!(db, |p| sqlx::query_scalar::<_, String>(
        "SELECT message_id FROM helpdesk_messages WHERE ticket_id = $1 ORDER BY created_at, id"
    )
    .bind(id)
    .fetch_all(p)
    .await
    .unwrap())
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    agilekit_kernel::db_run!(db, |p| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(p)
        .await
        .unwrap())
}

async fn head_seq(db: &Db) -> i64 {
    count(db, "SELECT seq FROM audit_head WHERE id = 1").await
}

/// A delivery token for the organisation, made by its admin.
async fn delivery_token(app: &TestApp, admin: &Client, org: OrgId) -> String {
    let v = call(
        app,
        admin,
        "POST",
        &format!("{}/token", settings_url(org)),
        None,
        201,
    )
    .await;
    let t = v["token"].as_str().unwrap().to_owned();
    assert!(t.starts_with("hdm_") && t.len() > 40, "{t}");
    t
}

/// Posts a raw message to the delivery endpoint: (status, body, content type).
async fn deliver(
    app: &TestApp,
    org: OrgId,
    token: Option<&str>,
    raw: impl Into<reqwest::Body>,
) -> (u16, Value, String) {
    let mut rb = Client::new()
        .post(app.at(&format!("/api/v1/helpdesk/inbound/{org}")))
        .header("content-type", "message/rfc822")
        .body(raw);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        ct,
    )
}


// ---------------------------------------------------------------------------------------------------------------
// IMAP: a real Dovecot mailbox

each_engine!(
    imap_mail_opens_continues_and_threads_tickets_and_replies_go_out_threaded,
    imap_flow
);
async fn imap_flow(engine: Engine) {
    let smtp_port = free_port();
    let smtp = SmtpSink::start(smtp_port).await;
    let dv = Dovecot::start().await;
    let app = spawn_with(
        engine,
        Options {
            smtp_port,
            ..Default::default()
        },
    )
    .await;
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    let agent = app.login(AGENT).await;

    // 1. A member's new mail, waiting in the mailbox before the mailbox is configured.
    dv.deliver(&mail(
        EMPLOYEE,
        "VPN non funziona",
        "<m1@client.example>",
        "",
        "La VPN non si connette da stamattina.",
    ));
    assert_eq!(dv.unseen(), 1);
    let v = call(
        &app,
        &admin,
        "PUT",
        &settings_url(region),
        Some(json!({
        "enabled": true, "host": "127.0.0.1", "port": dv.port, "tls": "none", "username": IMAP_USER,
        "password": IMAP_PASSWORD, "folder": "INBOX", "address": "helpdesk@regione.example"})),
        200,
    )
    .await;
    assert_eq!(v["password_set"], true);
    let opened = wait_for(Duration::from_secs(30), || async {
        tickets(&app, &agent, region).await.len() == 1
    })
    .await;
    assert!(
        opened,
        "the poller opened no ticket; settings: {}; dovecot: {}",
        call(&app, &admin, "GET", &settings_url(region), None, 200).await,
        dv.log()
    );
    let t = tickets(&app, &agent, region).await;
    let (first, n1) = (t[0].0.clone(), t[0].1);
    assert_eq!(
        (t[0].2.as_str(), t[0].3.as_str()),
        ("VPN non funziona", "new")
    );
    let th = thread(&app, &agent, region, &first).await;
    assert_eq!(
        th,
        [(
            "reply".to_owned(),
            "Sara Dipendente".to_owned(),
            "La VPN non si connette da stamattina.".to_owned()
        )]
    );
    assert_eq!(
        message_ids(&app.db, &first).await,
        ["<m1@client.example>"],
        "the mail's own Message-ID is stored"
    );
    assert!(
        wait_for(Duration::from_secs(10), || async { dv.unseen() == 0 }).await,
        "the message is flagged \\Seen"
    );
    // The requester is told, in the thread, with the tag in the subject.
    let ack = wait_for(Duration::from_secs(20), || async {
        !smtp.to(EMPLOYEE).is_empty()
    })
    .await;
    assert!(
        ack,
        "no acknowledgement reached the requester: {:?}",
        smtp.messages()
    );
    let m = &smtp.to(EMPLOYEE)[0];
    assert_eq!(
        header(m, "Subject"),
        Some(format!("[HD#{n1}] VPN non funziona").as_str()),
        "{m}"
    );
    assert_eq!(header(m, "In-Reply-To"), Some("<m1@client.example>"), "{m}");
    assert_eq!(
        header(m, "Reply-To"),
        Some("helpdesk@regione.example"),
        "{m}"
    );

    // 2. A reply that carries only In-Reply-To (another subject, no tag) lands on its ticket, quoted text stripped.
    dv.deliver(&mail(EMPLOYEE, "risposta", "<m2@client.example>", "In-Reply-To: <m1@client.example>\r\n",
        "Ho riavviato, niente.\r\n\r\nIl giorno ven 4 dic 2026 alle 10:00 Help desk ha scritto:\r\n> La VPN non si connette"));
    // 3. A forward with only the tag in the subject lands on its ticket too.
    dv.deliver(&mail(
        EMPLOYEE,
        &format!("I: [HD#{n1}] VPN non funziona"),
        "<m3@client.example>",
        "",
        "Inoltro lo screenshot dell'errore 809.",
    ));
    // 4. An unrelated mail opens a new ticket.
    dv.deliver(&mail(
        EMPLOYEE,
        "Stampante inceppata",
        "<m4@client.example>",
        "",
        "La stampante del piano 3 non stampa.",
    ));
    // 5. The same message twice makes one ticket.
    dv.deliver(&mail(
        EMPLOYEE,
        "Account bloccato",
        "<m5@client.example>",
        "",
        "Non riesco ad accedere.",
    ));
    dv.deliver(&mail(
        EMPLOYEE,
        "Account bloccato",
        "<m5@client.example>",
        "",
        "Non riesco ad accedere.",
    ));
    // 6. An unknown sender creates nothing and gets one answer pointing to the portal.
    dv.deliver(&mail(
        "sconosciuto@altrove.example",
        "Aiuto",
        "<m6@altrove.example>",
        "",
        "Chi siete?",
    ));
    let done = wait_for(Duration::from_secs(40), || async { dv.unseen() == 0 }).await;
    assert!(done, "the poller left messages unseen: {}", dv.log());
    assert_eq!(dv.total(), 7, "the messages stay in the mailbox, seen");
    let t = tickets(&app, &agent, region).await;
    let subjects: Vec<&str> = t.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "VPN non funziona",
            "Stampante inceppata",
            "Account bloccato"
        ],
        "{t:?}"
    );
    let th = thread(&app, &agent, region, &first).await;
    let bodies: Vec<&str> = th.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "La VPN non si connette da stamattina.",
            "Ho riavviato, niente.",
            "Inoltro lo screenshot dell'errore 809."
        ]
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM helpdesk_messages WHERE message_id = '<m5@client.example>'"
        )
        .await,
        1
    );
    assert!(
        !call(
            &app,
            &agent,
            "GET",
            &format!("/api/v1/orgs/{region}/helpdesk/tickets?limit=100"),
            None,
            200
        )
        .await
        .to_string()
        .contains("Chi siete")
    );
    let answered = wait_for(Duration::from_secs(20), || async {
        smtp.to("sconosciuto@altrove.example").len() == 1
    })
    .await;
    assert!(
        answered,
        "the unknown sender got no answer: {:?}",
        smtp.messages()
    );
    let m = &smtp.to("sconosciuto@altrove.example")[0];
    assert_eq!(
        header(m, "In-Reply-To"),
        Some("<m6@altrove.example>"),
        "{m}"
    );
    assert!(m.contains("portale"), "{m}");
    assert_eq!(
        header(m, "Auto-Submitted"),
        Some("auto-replied"),
        "an automatic answer says so: {m}"
    );

    // Every ticket opened by mail was acknowledged to its requester; the replies on it were not echoed back.
    let acks = wait_for(Duration::from_secs(20), || async {
        smtp.to(EMPLOYEE).len() == 3
    })
    .await;
    assert!(acks, "{:?}", smtp.to(EMPLOYEE));
    // 7. The agent's reply goes out with the tag, its stored Message-ID, In-Reply-To the latest message and
    //    References the thread.
    let before = smtp.to(EMPLOYEE).len();
    call(
        &app,
        &agent,
        "POST",
        &format!("/api/v1/orgs/{region}/helpdesk/tickets/{first}/reply"),
        Some(json!({"body": "Provi a reinstallare il client VPN."})),
        200,
    )
    .await;
    let ids = message_ids(&app.db, &first).await;
    assert_eq!(ids.len(), 4);
    let mine = ids[3].clone();
    let sent = wait_for(Duration::from_secs(20), || async {
        smtp.to(EMPLOYEE).iter().any(|m| m.contains(&mine))
    })
    .await;
    assert!(
        sent,
        "the agent's reply did not go out: {:?}",
        smtp.messages()
    );
    assert_eq!(smtp.to(EMPLOYEE).len(), before + 1);
    let m = smtp
        .to(EMPLOYEE)
        .into_iter()
        .find(|m| m.contains(&mine))
        .unwrap();
    assert_eq!(header(&m, "Message-ID"), Some(mine.as_str()), "{m}");
    assert_eq!(
        header(&m, "Subject"),
        Some(format!("[HD#{n1}] VPN non funziona").as_str()),
        "{m}"
    );
    assert_eq!(
        header(&m, "In-Reply-To"),
        Some("<m3@client.example>"),
        "{m}"
    );
    assert_eq!(
        header(&m, "References"),
        Some("<m1@client.example> <m2@client.example> <m3@client.example>"),
        "{m}"
    );

    // 8. The requester answers that mail from their client (In-Reply-To = its Message-ID): same ticket. The agent
    //    answers by mail too: a public reply of theirs.
    dv.deliver(&mail(
        EMPLOYEE,
        &format!("Re: [HD#{n1}] VPN non funziona"),
        "<m7@client.example>",
        &format!("In-Reply-To: {mine}\r\nReferences: <m1@client.example> {mine}\r\n"),
        "Funziona, grazie!",
    ));
    dv.deliver(&mail(
        AGENT,
        "Re: VPN",
        "<m8@regione.example>",
        "In-Reply-To: <m7@client.example>\r\n",
        "Bene, chiudo il ticket.",
    ));
    assert!(
        wait_for(Duration::from_secs(30), || async {
            thread(&app, &agent, region, &first).await.len() == 6
        })
        .await,
        "{:?}",
        thread(&app, &agent, region, &first).await
    );
    let th = thread(&app, &agent, region, &first).await;
    assert_eq!(
        (th[4].1.as_str(), th[4].2.as_str()),
        ("Sara Dipendente", "Funziona, grazie!")
    );
    assert_eq!(
        (th[5].0.as_str(), th[5].1.as_str(), th[5].2.as_str()),
        ("reply", "Davide Helpdesk", "Bene, chiudo il ticket.")
    );
    assert_eq!(tickets(&app, &agent, region).await.len(), 3);
    drop(dv);
    app.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// The delivery endpoint

both_engines!(
    delivered_mail_threads_reopens_and_is_handled_once,
    |app| async move {
        let region = app.org_id("r_lombar").await;
        let admin = app.login("admin@regione.example").await;
        let agent = app.login(AGENT).await;
        let token = delivery_token(&app, &admin, region).await;

        let (s, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                "Webcam",
                "<d1@client.example>",
                "",
                "La webcam non va.",
            ),
        )
        .await;
        assert_eq!((s, v["outcome"].as_str()), (200, Some("opened")), "{v}");
        let (ticket, n) = (
            v["ticket_id"].as_str().unwrap().to_owned(),
            v["number"].as_i64().unwrap(),
        );
        // The same message again (a mail server retrying): nothing new.
        let (s, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                "Webcam",
                "<d1@client.example>",
                "",
                "La webcam non va.",
            ),
        )
        .await;
        assert_eq!((s, v["outcome"].as_str()), (200, Some("duplicate")), "{v}");
        assert_eq!(tickets(&app, &agent, region).await.len(), 1);
        // A reply whose client kept only References.
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                "Re: Webcam",
                "<d2@client.example>",
                "References: <x@y.example> <d1@client.example>\r\n",
                "Anche il microfono.",
            ),
        )
        .await;
        assert_eq!(
            (v["outcome"].as_str(), v["ticket_id"].as_str()),
            (Some("continued"), Some(ticket.as_str())),
            "{v}"
        );

        // Pending on the requester: their mail takes it back to open (the service's own rule).
        call(
            &app,
            &agent,
            "POST",
            &format!("/api/v1/orgs/{region}/helpdesk/tickets/{ticket}/state"),
            Some(json!({"state": "pending"})),
            200,
        )
        .await;
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                &format!("Re: [HD#{n}] Webcam"),
                "<d3@client.example>",
                "",
                "Ecco il modello: C920.",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "continued", "{v}");
        assert_eq!(tickets(&app, &agent, region).await[0].3, "open");
        // Resolved: a reply within the reopening window reopens it…
        call(
            &app,
            &agent,
            "POST",
            &format!("/api/v1/orgs/{region}/helpdesk/tickets/{ticket}/state"),
            Some(json!({"state": "resolved"})),
            200,
        )
        .await;
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                &format!("Re: [HD#{n}] Webcam"),
                "<d4@client.example>",
                "",
                "Di nuovo rotta.",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "continued", "{v}");
        assert_eq!(tickets(&app, &agent, region).await[0].3, "open");
        // …after it, opens a new ticket that names the old one.
        call(
            &app,
            &agent,
            "POST",
            &format!("/api/v1/orgs/{region}/helpdesk/tickets/{ticket}/state"),
            Some(json!({"state": "resolved"})),
            200,
        )
        .await;
        let long_ago = agilekit_kernel::clock::now() - time::Duration::days(30);
        let tid: uuid::Uuid = ticket.parse().unwrap();
        agilekit_kernel::db_run!(&app.db, |p| sqlx::query(
            "UPDATE helpdesk_tickets SET resolved_at = $1 WHERE id = $2"
        )
        .bind(long_ago)
        .bind(tid)
        .execute(p)
        .await
        .unwrap()
        .rows_affected());
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                &format!("Re: [HD#{n}] Webcam"),
                "<d5@client.example>",
                "",
                "Si è rotta ancora.",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "opened", "{v}");
        let newer = v["ticket_id"].as_str().unwrap().to_owned();
        assert_ne!(newer, ticket);
        let th = thread(&app, &agent, region, &newer).await;
        assert_eq!(
            th[0].2,
            format!("Segue / follows [HD#{n}]\n\nSi è rotta ancora.")
        );
        assert_eq!(
            tickets(&app, &agent, region)
                .await
                .iter()
                .map(|t| t.2.as_str())
                .collect::<Vec<_>>(),
            ["Webcam", "Webcam"]
        );

        // A member who is neither the requester nor an agent, replying on the thread: a ticket of their own.
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                "manager@regione.example",
                "Re: Webcam",
                "<d6@client.example>",
                "In-Reply-To: <d1@client.example>\r\n",
                "Anche la mia.",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "opened", "{v}");
        assert_ne!(v["ticket_id"].as_str(), Some(ticket.as_str()));
        // A member of another organisation writing to this help desk: refused, nothing stored, answered once.
        let tickets_before = count(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await;
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                "admin@comune.example",
                "Aiuto",
                "<d7@comune.example>",
                "",
                "Serve aiuto",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "refused", "{v}");
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                "admin@comune.example",
                "Aiuto",
                "<d7@comune.example>",
                "",
                "Serve aiuto",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "duplicate", "{v}");
        // An automatic message (an out-of-office answer) is neither stored nor answered.
        let mails = count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await;
        let (_, v, _) = deliver(
            &app,
            region,
            Some(&token),
            mail(
                EMPLOYEE,
                "Fuori ufficio",
                "<d8@client.example>",
                "Auto-Submitted: auto-replied\r\n",
                "Sono in ferie.",
            ),
        )
        .await;
        assert_eq!(v["outcome"], "ignored", "{v}");
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail'").await,
            mails
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await,
            tickets_before
        );
        let refused_answers = count(&app.db, "SELECT COUNT(*) FROM jobs WHERE kind = 'mail' AND payload LIKE '%admin@comune.example%'").await;
        assert_eq!(refused_answers, 1);
        app
    }
);

both_engines!(
    the_delivery_endpoint_refuses_bad_tokens_and_garbage_with_problems,
    |app| async move {
        let region = app.org_id("r_lombar").await;
        let town = app.org_id("c_b157").await;
        let admin = app.login("admin@regione.example").await;
        let town_admin = app.login("admin@comune.example").await;
        let raw = mail(EMPLOYEE, "Prova", "<g1@client.example>", "", "Prova.");
        // Before any token exists, and with none, a wrong one or another organisation's: 401, nothing stored.
        let (s, _, ct) = deliver(&app, region, Some("hdm_0000"), raw.clone()).await;
        assert_eq!((s, ct.as_str()), (401, "application/problem+json"));
        let token = delivery_token(&app, &admin, region).await;
        let town_token = delivery_token(&app, &town_admin, town).await;
        for bad in [
            None,
            Some("hdm_wrong"),
            Some(town_token.as_str()),
            Some(&token[..token.len() - 1]),
        ] {
            let (s, v, ct) = deliver(&app, region, bad, raw.clone()).await;
            assert_eq!(
                (s, ct.as_str()),
                (401, "application/problem+json"),
                "{bad:?}: {v}"
            );
        }
        // A session or API token of the organisation's own admin is no delivery token.
        let admin_id = app.account_id("admin@regione.example").await;
        let (_, api_token) = token::create(&app.db, &Actor::system(), admin_id, "not-delivery")
            .await
            .unwrap();
        assert_eq!(
            deliver(&app, region, Some(&api_token), raw.clone()).await.0,
            401
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await,
            0
        );
        // A new token replaces the old one.
        let token2 = delivery_token(&app, &admin, region).await;
        assert_eq!(
            deliver(&app, region, Some(&token), raw.clone()).await.0,
            401
        );
        let token = token2;
        // Garbage: field-level problems, never a 5xx.
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (Vec::new(), "message", "required"),
            (b"   \r\n".to_vec(), "message", "required"),
            (
                b"\x00\xff\xfe\x01 not a mail at all".to_vec(),
                "from",
                "required",
            ),
            (b"{\"subject\": \"json\"}".to_vec(), "from", "required"),
            (
                b"Subject: nobody sent this\r\n\r\nbody".to_vec(),
                "from",
                "required",
            ),
            (
                b"From: not an address\r\nSubject: x\r\n\r\nbody".to_vec(),
                "from",
                "required",
            ),
        ];
        for (body, field, code) in cases {
            let (s, v, ct) = deliver(&app, region, Some(&token), body.clone()).await;
            assert_eq!(
                (s, ct.as_str()),
                (422, "application/problem+json"),
                "{:?}: {v}",
                String::from_utf8_lossy(&body)
            );
            assert!(
                has_error(&v, field, code),
                "{:?}: {v}",
                String::from_utf8_lossy(&body)
            );
        }
        // A NUL in the text, binary junk in the body, a huge subject: stored cleanly (no 5xx on PostgreSQL).
        let odd = format!(
            "From: {EMPLOYEE}\r\nSubject: {}\r\nMessage-ID: <g2@client.example>\r\n\r\nciao\0mondo \u{1F600}\r\n",
            "x".repeat(500)
        );
        let (s, v, _) = deliver(&app, region, Some(&token), odd).await;
        assert_eq!((s, v["outcome"].as_str()), (200, Some("opened")), "{v}");
        // A path that is not an organisation id.
        let r = Client::new()
            .post(app.at("/api/v1/helpdesk/inbound/not-a-uuid"))
            .bearer_auth(&token)
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        app
    }
);

// ---------------------------------------------------------------------------------------------------------------
// Settings

both_engines!(
    mail_settings_refuse_bad_input_with_field_errors_and_never_return_the_password,
    |app| async move {
        let region = app.org_id("r_lombar").await;
        let admin = app.login("admin@regione.example").await;
        let v = call(&app, &admin, "GET", &settings_url(region), None, 200).await;
        assert_eq!(
            (
                v["enabled"].as_bool(),
                v["password_set"].as_bool(),
                v["delivery_token_set"].as_bool()
            ),
            (Some(false), Some(false), Some(false))
        );
        let e = call(&app, &admin, "PUT", &settings_url(region), Some(json!({
        "enabled": true, "host": "bad host!", "port": 70000, "tls": "ssl3", "username": "", "folder": "In\"box",
        "address": "not-an-address"})), 422).await;
        for (f, c) in [
            ("host", "format"),
            ("port", "out-of-range"),
            ("tls", "format"),
            ("username", "required"),
            ("password", "required"),
            ("folder", "format"),
            ("address", "format"),
        ] {
            assert!(has_error(&e, f, c), "{f} {c}: {e}");
        }
        let e = call(
            &app,
            &admin,
            "PUT",
            &settings_url(region),
            Some(json!({"enabled": true, "port": "993"})),
            422,
        )
        .await;
        assert!(has_error(&e, "port", "format"), "{e}");
        let e = call(
            &app,
            &admin,
            "PUT",
            &settings_url(region),
            Some(json!({"enabled": true, "host": "", "port": 0})),
            422,
        )
        .await;
        assert!(
            has_error(&e, "host", "required") && has_error(&e, "port", "out-of-range"),
            "{e}"
        );
        assert_eq!(
            call(&app, &admin, "GET", &settings_url(region), None, 200).await["enabled"],
            false,
            "nothing was saved"
        );

        let good = json!({"enabled": true, "host": "imap.regione.example", "port": 143, "tls": "starttls",
        "username": "helpdesk", "password": "Sup3r-Segreta!", "address": "Helpdesk@Regione.example"});
        let v = call(&app, &admin, "PUT", &settings_url(region), Some(good), 200).await;
        assert_eq!(
            (
                v["password_set"].as_bool(),
                v["folder"].as_str(),
                v["address"].as_str()
            ),
            (Some(true), Some("INBOX"), Some("helpdesk@regione.example"))
        );
        let (_, _, text) = send(&admin, "GET", app.at(&settings_url(region)), None).await;
        assert!(
            !text.contains("Sup3r-Segreta") && !text.contains("\"password\""),
            "{text}"
        );
        // Saving without a password keeps the stored one.
        let v = call(
            &app,
            &admin,
            "PUT",
            &settings_url(region),
            Some(json!({"enabled": true, "host": "imap.regione.example",
        "port": 993, "tls": "tls", "username": "helpdesk"})),
            200,
        )
        .await;
        assert_eq!(
            (v["password_set"].as_bool(), v["port"].as_i64()),
            (Some(true), Some(993))
        );
        // Nor does the audit log keep it.
        let audit = count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE CAST(after_json AS TEXT) LIKE '%Sup3r%' OR CAST(before_json AS TEXT) LIKE '%Sup3r%'").await;
        assert_eq!(audit, 0);
        // Members who are not its admins: no access.
        for who in [EMPLOYEE, AGENT] {
            let c = app.login(who).await;
            let (s, _, text) = send(&c, "GET", app.at(&settings_url(region)), None).await;
            assert!(s == 403 || s == 404, "{who}: {s}");
            assert!(!text.contains("imap.regione"));
            let (s, _, _) = send(
                &c,
                "POST",
                app.at(&format!("{}/token", settings_url(region))),
                None,
            )
            .await;
            assert!(s == 403 || s == 404, "{who}: {s}");
        }
        app
    }
);

// ---------------------------------------------------------------------------------------------------------------
// Isolation

both_engines!(
    another_organisations_mail_settings_and_mailbox_are_out_of_reach,
    |app| async move {
        let region = app.org_id("r_lombar").await;
        let town = app.org_id("c_b157").await;
        let admin = app.login("admin@regione.example").await;
        call(&app, &admin, "PUT", &settings_url(region), Some(json!({"enabled": false, "host": "imap.regione.example",
        "port": 993, "tls": "tls", "username": "casella-segreta", "password": "Password-Segretissima"})), 200).await;
        let _region_token = delivery_token(&app, &admin, region).await;
        let town_admin = app.login("admin@comune.example").await;
        let town_token = delivery_token(&app, &town_admin, town).await;
        let attacker_id = app.account_id("admin@comune.example").await;
        let (_, attacker_api) = token::create(&app.db, &Actor::system(), attacker_id, "attacker")
            .await
            .unwrap();
        let secrets = [
            "imap.regione.example",
            "casella-segreta",
            "Password-Segretissima",
        ];
        let before = head_seq(&app.db).await;
        let mut failures = Vec::new();
        for (method, template, body) in SCOPED_ROUTES {
            let url = app.at(&template.replace("{org}", &region.to_string()));
            let inbound = template.contains("/inbound/");
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let ct = if inbound {
                "message/rfc822"
            } else {
                "application/json"
            };
            // The attacker's API token, their session, and (for the delivery endpoint) their own delivery token.
            let attempts: Vec<reqwest::RequestBuilder> = vec![
                Client::new()
                    .request(m.clone(), &url)
                    .bearer_auth(&attacker_api)
                    .header("content-type", ct)
                    .body(body.to_string()),
                town_admin
                    .request(m.clone(), &url)
                    .header("content-type", ct)
                    .body(body.to_string()),
                Client::new()
                    .request(m.clone(), &url)
                    .bearer_auth(&town_token)
                    .header("content-type", ct)
                    .body(body.to_string()),
                Client::new()
                    .request(m.clone(), &url)
                    .header("content-type", ct)
                    .body(body.to_string()),
            ];
            for (i, rb) in attempts.into_iter().enumerate() {
                let r = rb.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let ok = if inbound || i >= 2 {
                    status == 401
                } else {
                    status == 403 || status == 404
                };
                if !ok {
                    failures.push(format!("{method} {template} attempt {i}: {status} {text}"));
                }
                if let Some(s) = secrets.iter().find(|s| text.contains(*s)) {
                    failures.push(format!(
                        "{method} {template} attempt {i}: the answer contains {s:?}"
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "isolation failures:\n{}",
            failures.join("\n")
        );
        assert_eq!(
            head_seq(&app.db).await,
            before,
            "an attempt changed something (the audit log grew)"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await,
            0
        );
        let v = call(&app, &admin, "GET", &settings_url(region), None, 200).await;
        assert_eq!(
            (v["host"].as_str(), v["username"].as_str()),
            (Some("imap.regione.example"), Some("casella-segreta"))
        );
        // The town's own token works on the town's endpoint only: its admin, a member there, opens nothing in the
        // region, and the town (without the help desk) refuses the ticket.
        let (s, v, _) = deliver(
            &app,
            town,
            Some(&town_token),
            mail("admin@comune.example", "X", "<iso@x.example>", "", "X"),
        )
        .await;
        assert_eq!((s, v["outcome"].as_str()), (200, Some("refused")), "{v}");
        app
    }
);

// ---------------------------------------------------------------------------------------------------------------
// Several nodes

both_engines!(
    one_poller_per_mailbox_and_concurrent_deliveries_make_one_ticket,
    |app| async move {
        use agilekit_helpdesk::inbound::store as mail_store;
        let region = app.org_id("r_lombar").await;
        let admin = app.login("admin@regione.example").await;
        let agent = app.login(AGENT).await;
        // An enabled mailbox nothing answers at (a closed port): the lease is what is under test.
        call(
            &app,
            &admin,
            "PUT",
            &settings_url(region),
            Some(
                json!({"enabled": true, "host": "127.0.0.1", "port": free_port(),
        "tls": "none", "username": "u", "password": "p"}),
            ),
            200,
        )
        .await;
        let now = agilekit_kernel::clock::now();
        let later = now + time::Duration::minutes(5);
        // The test server's own poller may hold the lease for a moment: wait until node A gets it.
        let a = wait_for(Duration::from_secs(10), || async {
            mail_store::take_lease(
                &app.db,
                region,
                "node-a",
                agilekit_kernel::clock::now(),
                later,
            )
            .await
            .unwrap()
        })
        .await;
        assert!(a, "node A never got the lease");
        assert!(
            !mail_store::take_lease(&app.db, region, "node-b", now, later)
                .await
                .unwrap(),
            "two pollers on one mailbox"
        );
        // A lease whose holder died runs out.
        assert!(
            mail_store::take_lease(
                &app.db,
                region,
                "node-b",
                later + time::Duration::seconds(1),
                later + time::Duration::minutes(5)
            )
            .await
            .unwrap()
        );
        mail_store::release_lease(&app.db, region, "node-b", now, Some("test"))
            .await
            .unwrap();
        // Node A's release after losing it changes nothing; the lease is free again.
        mail_store::release_lease(&app.db, region, "node-a", now, None)
            .await
            .unwrap();
        // The server's own poller takes the free lease and records why the mailbox could not be read.
        let reported = wait_for(Duration::from_secs(15), || async {
            call(&app, &admin, "GET", &settings_url(region), None, 200).await["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("connect"))
        })
        .await;
        assert!(
            reported,
            "{}",
            call(&app, &admin, "GET", &settings_url(region), None, 200).await
        );

        // The same message delivered by several nodes at once: one ticket, one message, no error.
        let token = delivery_token(&app, &admin, region).await;
        let raw = mail(
            EMPLOYEE,
            "Doppione",
            "<race@client.example>",
            "",
            "Una volta sola.",
        );
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (url, token, raw) = (
                app.at(&format!("/api/v1/helpdesk/inbound/{region}")),
                token.clone(),
                raw.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let r = Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .body(raw)
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap_or(Value::Null))
            }));
        }
        let mut opened = 0;
        for t in tasks {
            let (s, v) = t.await.unwrap();
            assert_eq!(s, 200, "{v}");
            match v["outcome"].as_str() {
                Some("opened") => opened += 1,
                Some("duplicate") => {}
                other => panic!("unexpected outcome {other:?}: {v}"),
            }
        }
        assert_eq!(opened, 1);
        assert_eq!(tickets(&app, &agent, region).await.len(), 1);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM helpdesk_messages WHERE message_id = '<race@client.example>'"
            )
            .await,
            1
        );
        app
    }
);

// A mailbox behind a certificate nobody vouches for: the poller refuses it (implicit TLS and STARTTLS alike), says
// why in the settings, and leaves the mail unread.
each_engine!(
    an_imap_server_with_an_untrusted_certificate_is_refused_and_reported,
    untrusted_tls
);
async fn untrusted_tls(engine: Engine) {
    let dv = Dovecot::start_with(true).await;
    let app = spawn_with(engine, Options::default()).await;
    let region = app.org_id("r_lombar").await;
    let admin = app.login("admin@regione.example").await;
    dv.deliver(&mail(
        EMPLOYEE,
        "Via TLS",
        "<tls1@client.example>",
        "",
        "Segreto.",
    ));
    for (tls, port) in [("tls", dv.tls_port.unwrap()), ("starttls", dv.port)] {
        call(
            &app,
            &admin,
            "PUT",
            &settings_url(region),
            Some(json!({"enabled": true, "host": "127.0.0.1", "port": port,
            "tls": tls, "username": IMAP_USER, "password": IMAP_PASSWORD})),
            200,
        )
        .await;
        let reported = wait_for(Duration::from_secs(20), || async {
            call(&app, &admin, "GET", &settings_url(region), None, 200).await["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("tls"))
        })
        .await;
        assert!(
            reported,
            "{tls}: {}; dovecot: {}",
            call(&app, &admin, "GET", &settings_url(region), None, 200).await,
            dv.log()
        );
    }
    assert_eq!(dv.unseen(), 1, "the message stays unread");
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM helpdesk_tickets").await,
        0
    );
    drop(dv);
    app.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// The settings page (crates/helpdesk/src/settings_web.rs): the same settings as the API, as a form

fn page_url(org: OrgId) -> String {
    format!("/orgs/{org}/helpdesk/mail")
}

async fn html(app: &TestApp, c: &Client, path: &str) -> (u16, String) {
    let r = c.get(app.at(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn post_form(app: &TestApp, c: &Client, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = c.post(app.at(path)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    let to = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (s, to, r.text().await.unwrap())
}

/// The delivery token shown on a page, if any.
fn shown_token(html: &str) -> Option<String> {
    let i = html.find("hdm_")?;
    let t: String = html[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    Some(t)
}

both_engines!(
    the_mail_settings_page_keeps_what_was_typed_but_the_password_and_shows_a_token_once,
    |app| async move {
        let region = app.org_id("r_lombar").await;
        let admin = app.login("admin@regione.example").await;
        let url = page_url(region);
        // Linked from the help desk settings page, for the admins.
        let (s, body) = html(&app, &admin, &format!("/orgs/{region}/helpdesk/settings")).await;
        assert_eq!(s, 200);
        assert!(body.contains(&format!("href=\"{url}\"")), "no link to the mail page: {body}");
        let (s, body) = html(&app, &admin, &url).await;
        assert_eq!(s, 200);
        assert!(body.contains("id=\"f-host\"") && body.contains("for=\"f-password\"") && body.contains("id=\"f-tls\""), "{body}");
        assert!(body.contains("Nessuna password impostata") && body.contains("Crea il token di consegna"), "{body}");
        assert!(body.contains(&format!("/api/v1/helpdesk/inbound/{region}")), "the delivery address: {body}");
        // Never polled yet (checked before polling is switched on: the server's poller may try the mailbox any time
        // after that, and record its failure).
        assert!(body.contains("Ultima lettura") && body.contains(">mai<"), "never polled: {body}");

        // Wrong on every count: each error beside its field and in the summary, what was typed kept, the password
        // never sent back, nothing saved.
        let secret = "Segreta-Casella-42";
        let audits = count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'helpdesk.mail.%'").await;
        let (s, _, body) = post_form(&app, &admin, &url, &[
            ("enabled", "1"), ("host", "bad host!"), ("port", "novecento"), ("tls", "ssl3"), ("username", "casella-hd"),
            ("password", secret), ("folder", "In\"box"), ("address", "non-un-indirizzo"),
        ]).await;
        assert_eq!(s, 422, "{body}");
        for f in ["host", "port", "tls", "folder", "address"] {
            assert!(body.contains(&format!("id=\"f-{f}-error\"")), "no error for {f}: {body}");
            assert!(body.contains(&format!("href=\"#f-{f}\"")), "{f} is not in the summary: {body}");
        }
        assert!(!body.contains("id=\"f-password-error\"") && !body.contains("id=\"f-username-error\""), "{body}");
        assert!(body.contains("value=\"bad host!\"") && body.contains("value=\"novecento\"") && body.contains("value=\"casella-hd\""), "{body}");
        assert!(body.contains("value=\"non-un-indirizzo\"") && body.contains("checked"), "{body}");
        assert!(!body.contains(secret), "the password came back: {body}");
        let v = call(&app, &admin, "GET", &settings_url(region), None, 200).await;
        assert_eq!((v["host"].as_str(), v["password_set"].as_bool()), (Some(""), Some(false)), "nothing saved: {v}");
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'helpdesk.mail.%'").await, audits);
        // Polling on without a user or a password: required, both.
        let (s, _, body) = post_form(&app, &admin, &url, &[("enabled", "1"), ("host", "imap.regione.example"), ("port", "993"), ("tls", "tls")]).await;
        assert_eq!(s, 422);
        assert!(body.contains("id=\"f-username-error\"") && body.contains("id=\"f-password-error\""), "{body}");

        // Right: saved (see other), read back by the API and the page; the password only as "set".
        let (s, to, _) = post_form(&app, &admin, &url, &[
            ("enabled", "1"), ("host", "imap.regione.example"), ("port", "143"), ("tls", "starttls"),
            ("username", "casella-hd"), ("password", secret), ("folder", ""), ("address", "Helpdesk@Regione.example"),
        ]).await;
        assert_eq!((s, to.as_str()), (303, format!("{url}?done=saved").as_str()));
        let v = call(&app, &admin, "GET", &settings_url(region), None, 200).await;
        assert_eq!(
            (v["enabled"].as_bool(), v["host"].as_str(), v["port"].as_i64(), v["tls"].as_str(), v["folder"].as_str()),
            (Some(true), Some("imap.regione.example"), Some(143), Some("starttls"), Some("INBOX"))
        );
        assert_eq!((v["password_set"].as_bool(), v["address"].as_str()), (Some(true), Some("helpdesk@regione.example")));
        let (_, body) = html(&app, &admin, &format!("{url}?done=saved")).await;
        assert!(body.contains("Impostazioni della posta salvate") && body.contains("<option value=\"starttls\" selected>"), "{body}");
        assert!(body.contains("value=\"imap.regione.example\"") && body.contains("Una password è impostata"), "{body}");
        assert!(!body.contains(secret), "{body}");
        // Saved again without a password: the stored one stays.
        let (s, _, _) = post_form(&app, &admin, &url, &[
            ("enabled", "1"), ("host", "imap.regione.example"), ("port", "143"), ("tls", "starttls"),
            ("username", "casella-2"), ("password", ""), ("folder", "Ticket"), ("address", ""),
        ]).await;
        assert_eq!(s, 303);
        let stored: (String, String) = agilekit_kernel::db_run!(&app.db, |p| sqlx::query_as(
            "SELECT username, password FROM helpdesk_mailboxes WHERE org_id = $1").bind(region).fetch_one(p).await.unwrap());
        assert_eq!(stored, ("casella-2".to_owned(), secret.to_owned()));

        // The last poll's status.
        let at = time::OffsetDateTime::now_utc();
        // The lease goes to nobody for a day, so the server's own poller (which may be trying imap.regione.example
        // right now) neither polls nor writes its own result over this one.
        agilekit_kernel::db_run!(&app.db, |p| sqlx::query(
            "UPDATE helpdesk_mailboxes SET last_poll_at = $1, last_error = $2, lease_owner = 'the-test', lease_until = $3 WHERE org_id = $4")
            .bind(agilekit_kernel::clock::stamp(at)).bind("LOGIN failed: <credenziali>")
            .bind(agilekit_kernel::clock::stamp(at + time::Duration::days(1))).bind(region).execute(p).await.unwrap().rows_affected());
        let (_, body) = html(&app, &admin, &url).await;
        assert!(body.contains("non riuscita") && (body.contains("LOGIN failed: &#60;credenziali&#62;") || body.contains("LOGIN failed: &lt;credenziali&gt;")), "{body}");
        assert!(body.contains(&agilekit_kernel::clock::format_rome(at)), "{body}");

        // The delivery token: shown on the answer to its creation only, and it works; a new one replaces it.
        let (s, _, body) = post_form(&app, &admin, &format!("{url}/token"), &[]).await;
        assert_eq!(s, 200);
        let first = shown_token(&body).expect("the new token on the page");
        assert_eq!(first.len(), 4 + 64, "{first}");
        assert!(body.contains("Sostituisci il token di consegna"), "{body}");
        let (_, again) = html(&app, &admin, &url).await;
        assert!(shown_token(&again).is_none() && again.contains("impostato"), "the token shown twice: {again}");
        let raw = || mail("nessuno@altrove.example", "Prova", "<token-page@x.example>", "", "Prova");
        assert_eq!(deliver(&app, region, Some(&first), raw()).await.0, 200);
        let (_, _, body) = post_form(&app, &admin, &format!("{url}/token"), &[]).await;
        let second = shown_token(&body).unwrap();
        assert_ne!(first, second);
        assert_eq!(deliver(&app, region, Some(&first), raw()).await.0, 401, "the replaced token still works");
        assert_eq!(deliver(&app, region, Some(&second), raw()).await.0, 200);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE action = 'helpdesk.mail.token'").await, 2);

        // The organisation's admins only, answered as the API answers (its members are no admins: refused or not
        // found; another organisation's admin learns nothing); in English for an English session.
        for (who, want) in [(AGENT, 0), (EMPLOYEE, 0), ("admin@comune.example", 404)] {
            let c = app.login(who).await;
            let api = send(&c, "GET", app.at(&settings_url(region)), None).await.0;
            assert!(api == 403 || api == 404, "{who}: {api}");
            let want = if want == 0 { api } else { want };
            assert_eq!(html(&app, &c, &url).await.0, want, "{who}");
            assert_eq!(post_form(&app, &c, &url, &[("host", "evil.example")]).await.0, want, "{who}");
            assert_eq!(post_form(&app, &c, &format!("{url}/token"), &[]).await.0, want, "{who}");
        }
        let r = admin.post(app.at("/lang")).form(&[("lang", "en"), ("next", "/")]).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let (_, body) = html(&app, &admin, &url).await;
        assert!(body.contains("Help desk mail") && body.contains("A password is set"), "{body}");
        let v = call(&app, &admin, "GET", &settings_url(region), None, 200).await;
        assert_eq!(v["host"], "imap.regione.example", "the refused attempts changed nothing");
        app
    }
);
