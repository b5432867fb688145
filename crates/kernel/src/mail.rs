//! Outgoing mail through the outbox: `queue` writes a `mail` job in the caller's transaction;
//! the worker's handler sends it over SMTP with lettre.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::db::{DbResult, Tx};
use crate::ids::{JobId, OrgId};
use crate::jobs::{self, Handler, Job};

pub const JOB_KIND: &str = "mail";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Queues a mail in the caller's transaction; it leaves only if the change that caused it commits.
pub async fn queue(tx: &mut Tx, org: Option<OrgId>, mail: &Mail) -> DbResult<JobId> {
    let payload = serde_json::to_value(mail).map_err(|e| crate::db::DbError::Other(sqlx::Error::Decode(e.into())))?;
    jobs::enqueue(tx, JOB_KIND, &payload, org, crate::clock::now(), 12).await
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 25,
            security: "none".into(),
            username: None,
            password: None,
            from: "agilekit <noreply@agilekit.localhost>".into(),
        }
    }
}

fn transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let b = match cfg.security.as_str() {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(|e| e.to_string())?,
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(|e| e.to_string())?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
    };
    let mut b = b.port(cfg.port).timeout(Some(std::time::Duration::from_secs(20)));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        b = b.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(b.build())
}

pub fn build_message(cfg: &SmtpConfig, mail: &Mail, job: Option<JobId>) -> Result<Message, String> {
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("bad sender address: {e}"))?;
    let to: Mailbox = mail.to.parse().map_err(|e| format!("bad recipient address: {e}"))?;
    let mut b = Message::builder().from(from.clone()).to(to).subject(&mail.subject);
    // A stable Message-ID per job: a retried send after a lost reply is recognisable as the same message.
    if let Some(id) = job {
        b = b.message_id(Some(format!("<{id}@{}>", from.email.domain())));
    }
    b.multipart(MultiPart::alternative_plain_html(mail.text.clone(), text_to_html(&mail.text)))
        .map_err(|e| e.to_string())
}

fn text_to_html(text: &str) -> String {
    let esc = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!("<!doctype html><html><body><p>{}</p></body></html>", esc.replace("\n\n", "</p><p>").replace('\n', "<br>"))
}

/// The job handler that sends queued mail.
pub fn handler(cfg: SmtpConfig) -> Handler {
    std::sync::Arc::new(move |job: Job| {
        let cfg = cfg.clone();
        Box::pin(async move {
            let mail: Mail = serde_json::from_str(&job.payload).map_err(|e| format!("bad mail payload: {e}"))?;
            let msg = build_message(&cfg, &mail, Some(job.id))?;
            let t = transport(&cfg)?;
            t.send(msg).await.map(|_| ()).map_err(|e| format!("smtp: {e}"))
        })
    })
}
