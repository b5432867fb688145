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

/// Threading headers of a mail that belongs to a conversation (a help-desk ticket's thread). All optional: queued
/// payloads without them (every mail queued before they existed) still decode.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Threading {
    /// The Message-ID to send with, angle brackets included (`<x@y>`); absent: one derived from the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The message this one answers (`<x@y>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread's earlier messages, oldest first (`<x@y>` each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Where replies should go, when not to the sender (a mailbox address, optionally with a display name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// An automatic answer (RFC 3834 `Auto-Submitted: auto-replied`): well-behaved responders do not answer it,
    /// so two robots cannot ping-pong.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_replied: bool,
}

#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// What a `mail` job's payload holds: the mail and, flattened beside it, its threading headers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Envelope {
    #[serde(flatten)]
    pub mail: Mail,
    #[serde(flatten, default)]
    pub threading: Threading,
}

/// Queues a mail in the caller's transaction; it leaves only if the change that caused it commits.
pub async fn queue(tx: &mut Tx, org: Option<OrgId>, mail: &Mail) -> DbResult<JobId> {
    queue_threaded(tx, org, mail, &Threading::default()).await
}

/// As [`queue`], with threading headers (Message-ID, In-Reply-To, References, Reply-To).
pub async fn queue_threaded(tx: &mut Tx, org: Option<OrgId>, mail: &Mail, threading: &Threading) -> DbResult<JobId> {
    let env = Envelope { mail: mail.clone(), threading: threading.clone() };
    let payload = serde_json::to_value(&env).map_err(|e| crate::db::DbError::Other(sqlx::Error::Decode(e.into())))?;
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
    build_threaded(cfg, mail, &Threading::default(), job)
}

/// A Message-ID as the headers want it: one `<local@domain>`, no spaces or line breaks.
fn msg_id(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = s.len() > 2 && s.len() <= 998 && s.starts_with('<') && s.ends_with('>') && s.contains('@')
        && !s[1..s.len() - 1].contains(['<', '>']) && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| s.to_owned())
}

/// The message as sent: `mail` with the threading headers that are well-formed (a bad one is left out, never sent).
pub fn build_threaded(cfg: &SmtpConfig, mail: &Mail, threading: &Threading, job: Option<JobId>) -> Result<Message, String> {
    use lettre::message::header::{InReplyTo, References};
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("bad sender address: {e}"))?;
    let to: Mailbox = mail.to.parse().map_err(|e| format!("bad recipient address: {e}"))?;
    let mut b = Message::builder().from(from.clone()).to(to).subject(&mail.subject);
    if let Some(id) = threading.message_id.as_deref().and_then(msg_id) {
        b = b.message_id(Some(id));
    } else if let Some(id) = job {
        // A stable Message-ID per job: a retried send after a lost reply is recognisable as the same message.
        b = b.message_id(Some(format!("<{id}@{}>", from.email.domain())));
    }
    if let Some(id) = threading.in_reply_to.as_deref().and_then(msg_id) {
        b = b.header(InReplyTo::from(id));
    }
    let refs: Vec<String> = threading.references.iter().filter_map(|r| msg_id(r)).collect();
    if !refs.is_empty() {
        b = b.header(References::from(refs.join(" ")));
    }
    if let Some(r) = threading.reply_to.as_deref().and_then(|r| r.parse::<Mailbox>().ok()) {
        b = b.reply_to(r);
    }
    if threading.auto_replied {
        b = b.header(AutoSubmitted);
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
            let env: Envelope = serde_json::from_str(&job.payload).map_err(|e| format!("bad mail payload: {e}"))?;
            let msg = build_threaded(&cfg, &env.mail, &env.threading, Some(job.id))?;
            let t = transport(&cfg)?;
            t.send(msg).await.map(|_| ()).map_err(|e| format!("smtp: {e}"))
        })
    })
}

#[cfg(test)]
mod threading_tests {
    use super::*;

    fn raw(t: &Threading) -> String {
        let m = Mail { to: "a@b.example".into(), subject: "[HD#1] VPN".into(), text: "x".into() };
        let msg = build_threaded(&SmtpConfig::default(), &m, t, Some(JobId::new())).unwrap();
        String::from_utf8(msg.formatted()).unwrap().replace("\r\n ", " ")
    }

    #[test]
    fn threading_headers_are_written_and_bad_ones_left_out() {
        let t = Threading {
            message_id: Some("<m3@helpdesk.agilekit>".into()),
            in_reply_to: Some("<m2@x.example>".into()),
            references: vec!["<m1@x.example>".into(), "bad ref".into(), "<m2@x.example>".into()],
            reply_to: Some("Help desk <hd@x.example>".into()),
            auto_replied: true,
        };
        let r = raw(&t);
        assert!(r.contains("Message-ID: <m3@helpdesk.agilekit>"), "{r}");
        assert!(r.contains("In-Reply-To: <m2@x.example>"), "{r}");
        assert!(r.contains("References: <m1@x.example> <m2@x.example>"), "{r}");
        assert!(r.contains("Auto-Submitted: auto-replied"), "{r}");
        assert!(r.contains("Reply-To: \"Help desk\" <hd@x.example>") || r.contains("Reply-To: Help desk <hd@x.example>"), "{r}");
        let r = raw(&Threading { message_id: Some("no brackets@x".into()), in_reply_to: Some("<a\r\nBcc: x@y>".into()), ..Default::default() });
        assert!(r.contains("@agilekit.localhost>"), "the job's id stands in for a bad Message-ID: {r}");
        assert!(!r.contains("In-Reply-To") && !r.contains("Bcc") && !r.contains("Auto-Submitted"), "{r}");
    }

    #[test]
    fn old_payloads_decode_without_threading() {
        let env: Envelope = serde_json::from_str(r#"{"to":"a@b.example","subject":"s","text":"t"}"#).unwrap();
        assert_eq!(env.threading, Threading::default());
        let json = serde_json::to_string(&Envelope { mail: env.mail.clone(), threading: Threading::default() }).unwrap();
        assert_eq!(json, r#"{"to":"a@b.example","subject":"s","text":"t"}"#);
        let _: Mail = serde_json::from_str(&json).unwrap();
    }
}
