//! Help desk mail. In: a message (from the organisation's IMAP mailbox, [`imap`], or delivered by its mail server
//! to `POST /api/v1/helpdesk/inbound/{org}`, [`api`]) opens a ticket or continues one ([`process`]). Out: the help
//! desk's mails about a ticket carry its tag in the subject and the thread's Message-IDs ([`threading`]).
//!
//! A mailbox serves exactly one organisation, so the tag `[HD#123]` is read in that organisation: the same number
//! in another organisation's mailbox is another ticket. Threading, in order: the tag in the subject; else
//! In-Reply-To, then References (newest first) against every stored Message-ID of the organisation; else a new
//! ticket. The sender must be an account: the ticket's requester or one of its agents to continue it, a member
//! with the help desk to open one. Anyone else gets one automatic answer (through the outbox) pointing to the
//! portal, and nothing is stored. Each message is handled once: its Message-ID is stored on the ticket message it
//! became, or in the mail log when it became none.

pub mod api;
pub mod imap;
pub mod quote;
pub mod store;

pub use imap::{Settings, run};

use agilekit_kernel::audit::Actor;
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbError, Tx};
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::mail::{self, Mail, Threading};
use agilekit_kernel::{Error, FieldErrors, Result, clock, files, identity};
use mail_parser::MimeHeaders;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{BODY_MAX, SUBJECT_MAX, State, TicketId};
use crate::service::{self, BodyInput, NewTicket};

/// How many earlier Message-IDs an outgoing mail's References names at most (the first and the latest ones).
const REFERENCES_MAX: usize = 10;

/// The ticket's tag in mail subjects.
pub fn tag(number: i64) -> String {
    format!("[HD#{number}]")
}

/// The ticket number of the first `[HD#123]` tag in a subject (any case), if any.
pub fn parse_tag(subject: &str) -> Option<i64> {
    let upper = subject.to_uppercase();
    let mut rest = upper.as_str();
    while let Some(i) = rest.find("[HD#") {
        rest = &rest[i + 4..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && digits.len() <= 12 && rest[digits.len()..].starts_with(']') {
            return digits.parse().ok();
        }
    }
    None
}

/// The subject without its `[HD#123]` tags.
fn strip_tags(s: &str) -> String {
    let b = s.as_bytes();
    let (mut out, mut i, mut last) = (String::new(), 0, 0);
    while i < b.len() {
        if b[i] == b'['
            && b.len() > i + 4
            && b[i + 1].eq_ignore_ascii_case(&b'h')
            && b[i + 2].eq_ignore_ascii_case(&b'd')
            && b[i + 3] == b'#'
        {
            let mut j = i + 4;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 4 && j < b.len() && b[j] == b']' {
                out.push_str(&s[last..i]);
                last = j + 1;
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    out
}

/// The subject of a new ticket from a mail's: reply and forward prefixes and tags out, control characters out,
/// cut to the longest subject a ticket takes.
pub fn ticket_subject(subject: &str) -> String {
    let mut s: String = strip_tags(subject)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    loop {
        let t = s.trim_start();
        let lower = t.to_lowercase();
        let cut = [
            "re:", "r:", "fw:", "fwd:", "i:", "inoltra:", "aw:", "wg:", "rif:",
        ]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| p.len());
        match cut {
            Some(n) => s = t[n..].to_owned(),
            None => break,
        }
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s: String = s.chars().take(SUBJECT_MAX).collect();
    if s.trim().is_empty() {
        "(senza oggetto / no subject)".to_owned()
    } else {
        s.trim().to_owned()
    }
}

/// A Message-ID in the stored form: `<local@domain>`, or none when it is not one.
fn normalise_id(s: &str) -> Option<String> {
    let s = s
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let ok = !s.is_empty()
        && s.len() <= 900
        && s.contains('@')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    ok.then(|| format!("<{s}>"))
}

/// An inbound message, as far as the help desk reads it.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// `<…>`; derived from the content's hash when the message has none, so a repeat is still recognised.
    pub message_id: String,
    /// The sender's address, lower case.
    pub from: String,
    pub subject: String,
    /// The text part, quoted history removed ([`quote::strip`]).
    pub body: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// An automatic message (Auto-Submitted, Precedence bulk/list/junk, a bounce): never answered, never stored.
    pub automatic: bool,
    /// The MIME attachments, in the message's order.
    pub files: Vec<MailFile>,
}

/// An attachment of an inbound message.
#[derive(Clone, Debug)]
pub struct MailFile {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

fn id_list(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    let items: Vec<String> = match (v.as_text_list(), v.as_text()) {
        (Some(list), _) => list.iter().map(|s| s.to_string()).collect(),
        (None, Some(one)) => one.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    items.iter().filter_map(|s| normalise_id(s)).collect()
}

/// Reads a raw RFC 5322 message. Field errors: `message` (`required`: empty; `format`: not a mail) and `from`
/// (`required`: no sender address).
pub fn parse(raw: &[u8]) -> Result<Parsed> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(FieldErrors::one("message", "required"));
    }
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or_else(|| FieldErrors::one("message", "format"))?;
    // Something that is not a mail parses as a body without headers.
    if msg.headers().is_empty() {
        return Err(FieldErrors::one("message", "format"));
    }
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@') && !a.chars().any(char::is_whitespace))
        .ok_or_else(|| FieldErrors::one("from", "required"))?;
    let message_id = msg.message_id().and_then(normalise_id).unwrap_or_else(|| {
        format!(
            "<{}@inbound.agilekit>",
            hex::encode(&Sha256::digest(raw)[..16])
        )
    });
    let header = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.trim().to_lowercase())
            .unwrap_or_default()
    };
    let auto = header("Auto-Submitted");
    let precedence = header("Precedence");
    let local = from.split('@').next().unwrap_or_default();
    let automatic = (!auto.is_empty() && auto != "no")
        || ["bulk", "list", "junk"].contains(&precedence.as_str())
        || ["mailer-daemon", "postmaster", "noreply", "no-reply"].contains(&local);
    // PostgreSQL stores no NUL in text, and no legitimate mail text has one.
    let text = msg
        .body_text(0)
        .map(|t| t.replace('\0', ""))
        .unwrap_or_default();
    let stripped = quote::strip(&text);
    let body = if stripped.trim().is_empty() {
        text.trim().to_owned()
    } else {
        stripped
    };
    let body = if body.is_empty() {
        "(messaggio vuoto / empty message)".to_owned()
    } else {
        body
    };
    let body: String = body.chars().take(BODY_MAX).collect();
    Ok(Parsed {
        message_id,
        from,
        subject: msg.subject().unwrap_or_default().replace('\0', ""),
        body,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        automatic,
        files: msg
            .attachments()
            .map(|a| MailFile {
                name: a.attachment_name().unwrap_or("allegato").to_owned(),
                content_type: a
                    .content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                    .unwrap_or_else(|| "application/octet-stream".into()),
                data: a.contents().to_vec(),
            })
            .collect(),
    })
}

/// What became of an inbound message.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Processed {
    /// `opened` (a new ticket), `continued` (a reply on an existing ticket), `duplicate` (already handled),
    /// `unknown-sender` (answered once, nothing stored), `refused` (a sender who may not do this; answered once),
    /// `ignored` (an automatic message).
    pub outcome: String,
    pub ticket_id: Option<TicketId>,
    /// The ticket's number in the organisation ("[HD#n]").
    pub number: Option<i64>,
}

impl Processed {
    fn of(outcome: &str, t: Option<(TicketId, i64)>) -> Processed {
        Processed {
            outcome: outcome.to_owned(),
            ticket_id: t.map(|x| x.0),
            number: t.map(|x| x.1),
        }
    }
}

fn is_duplicate(e: &Error) -> bool {
    matches!(e, Error::Db(DbError::Conflict(_)))
}

/// The Message-ID the message is stored under in `org`: its own, or when another organisation's help desk already
/// holds that one (the same mail sent to two help desks), one derived from it and the organisation.
async fn stored_id(db: &Db, org: OrgId, id: &str) -> Result<(String, bool)> {
    match store::message_org(db, id).await? {
        None => Ok((id.to_owned(), false)),
        Some(o) if o == org => Ok((id.to_owned(), true)),
        Some(_) => {
            let derived = format!(
                "<{}@{}.inbound.agilekit>",
                hex::encode(&Sha256::digest(id.as_bytes())[..16]),
                org.to_string().replace('-', "")
            );
            let seen = store::message_org(db, &derived).await?.is_some();
            Ok((derived, seen))
        }
    }
}

/// Handles one inbound message for `org`: the one function both the IMAP poller and the delivery endpoint call.
/// Safe to repeat: a message already handled is `duplicate` and changes nothing.
pub async fn process(db: &Db, org: OrgId, raw: &[u8], limits: &files::Settings) -> Result<Processed> {
    let m = parse(raw)?;
    let (id, seen) = stored_id(db, org, &m.message_id).await?;
    if seen || store::logged(db, org, &id).await? {
        return Ok(Processed::of("duplicate", None));
    }
    if m.automatic {
        return log_only(db, org, &id, "ignored", None).await;
    }
    let account = identity::find_by_email(db, &m.from)
        .await?
        .filter(|a| !a.disabled);
    let Some(account) = account else {
        return log_only(db, org, &id, "unknown-sender", Some(&m)).await;
    };
    let p = Principal::load(db, account.id).await?;
    let actor = Actor::account(account.id, None);
    let now = clock::now();
    let (attachments, dropped) = keep_files(db, org, account.id, &m.files, limits).await?;
    let m = Parsed { body: with_dropped(&m.body, &dropped), ..m };

    let mut follows = None;
    if let Some(ticket) = thread_of(db, org, &m).await? {
        let input = BodyInput {
            body: m.body.clone(),
        };
        match service::reply_with(db, &p, &actor, org, ticket, &input, &attachments, now, Some(id.clone()), "").await
        {
            Ok(d) => {
                return Ok(Processed::of(
                    "continued",
                    Some((d.ticket.id, d.ticket.number)),
                ));
            }
            Err(e) if is_duplicate(&e) => return Ok(Processed::of("duplicate", None)),
            // Closed, or resolved too long ago: the requester's mail opens a new ticket that names the old one;
            // an agent's is refused.
            Err(Error::Conflict("ticket-closed")) => {
                let t = crate::store::get(db, org, ticket)
                    .await?
                    .ok_or(Error::NotFound)?;
                if t.requester_id != account.id {
                    return log_only(db, org, &id, "refused", Some(&m)).await;
                }
                follows = Some(t.number);
            }
            // Someone with no business with that ticket: as an unrelated mail.
            Err(Error::NotFound) | Err(Error::Forbidden) => {}
            Err(e) => return Err(e),
        }
    }
    let mut body = m.body.clone();
    if let Some(n) = follows {
        body = format!("Segue / follows {}\n\n{body}", tag(n))
            .chars()
            .take(BODY_MAX)
            .collect();
    }
    let input = NewTicket {
        category: "other".into(),
        subject: ticket_subject(&m.subject),
        body,
    };
    match service::open_with(db, &p, &actor, org, &input, &attachments, now, Some(id.clone())).await {
        Ok(d) => Ok(Processed::of(
            "opened",
            Some((d.ticket.id, d.ticket.number)),
        )),
        Err(e) if is_duplicate(&e) => Ok(Processed::of("duplicate", None)),
        Err(Error::NotFound) | Err(Error::Forbidden) | Err(Error::Invalid(_)) => {
            log_only(db, org, &id, "refused", Some(&m)).await
        }
        Err(e) => Err(e),
    }
}

/// Stores a message's attachments as pending files of its sender, for the ticket message it becomes: the ids, and
/// the names of those not kept (over the size limit, or past the most a message carries).
async fn keep_files(db: &Db, org: OrgId, sender: agilekit_kernel::ids::AccountId, list: &[MailFile], limits: &files::Settings) -> Result<(Vec<String>, Vec<String>)> {
    let (mut kept, mut dropped) = (Vec::new(), Vec::new());
    for f in list {
        if f.data.len() as u64 > limits.max_bytes || kept.len() >= crate::attachments::PER_MESSAGE {
            dropped.push(files::clean_name(&f.name));
            continue;
        }
        let meta = files::put(db, limits, org, Some(sender), &f.name, &f.content_type, &f.data).await?;
        kept.push(meta.id.to_string());
    }
    Ok((kept, dropped))
}

/// The body with one line for each attachment not kept, within the longest body a message takes.
fn with_dropped(body: &str, dropped: &[String]) -> String {
    if dropped.is_empty() {
        return body.to_owned();
    }
    let lines: String =
        dropped.iter().map(|n| format!("\n[Allegato non salvato / attachment dropped: {n}]")).collect();
    let room = BODY_MAX.saturating_sub(lines.chars().count() + 1);
    let kept: String = body.chars().take(room).collect();
    format!("{kept}\n{lines}").chars().take(BODY_MAX).collect()
}

/// The ticket a message continues: by the tag in its subject, then by In-Reply-To, then by References (newest
/// first); a merged ticket's continuation stands in for it.
async fn thread_of(db: &Db, org: OrgId, m: &Parsed) -> Result<Option<TicketId>> {
    let mut found = None;
    if let Some(n) = parse_tag(&m.subject) {
        found = store::ticket_by_number(db, org, n).await?;
    }
    if found.is_none() {
        for id in m.in_reply_to.iter().chain(m.references.iter().rev()) {
            if let Some(t) = store::ticket_by_message_id(db, org, id).await? {
                found = Some(t);
                break;
            }
        }
    }
    if let Some(t) = found
        && let Some(row) = crate::store::get(db, org, t).await?
        && State::parse(&row.state) == Some(State::Merged)
        && let Some(into) = row.merged_into
    {
        return Ok(Some(into));
    }
    Ok(found)
}

/// Records a message that becomes no ticket message; when `answer` is given (and it is not automatic), its sender
/// gets one automatic answer pointing to the portal, in the same transaction.
async fn log_only(
    db: &Db,
    org: OrgId,
    id: &str,
    outcome: &str,
    answer: Option<&Parsed>,
) -> Result<Processed> {
    let now = clock::now();
    let mut tx = db.begin().await?;
    match store::log(&mut tx, org, id, outcome, now).await {
        Ok(()) => {}
        Err(DbError::Conflict(_)) => return Ok(Processed::of("duplicate", None)),
        Err(e) => return Err(e.into()),
    }
    if let Some(m) = answer.filter(|m| !m.automatic) {
        let reply_to = store::address_in(&mut tx, org).await?;
        let subject: String = format!(
            "Re: {}",
            m.subject
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        )
        .chars()
        .take(250)
        .collect();
        let text = "Questo indirizzo riceve le richieste di assistenza degli utenti registrati dell'ente: la sua email \
            non è stata registrata. Per chiedere assistenza acceda al portale agilekit con le sue credenziali.\n\n\
            This address takes help requests from the organisation's registered users only: your email was not \
            recorded. To ask for help, sign in to the agilekit portal.\n";
        let threading = Threading {
            in_reply_to: Some(m.message_id.clone()),
            references: vec![m.message_id.clone()],
            reply_to,
            auto_replied: true,
            ..Default::default()
        };
        mail::queue_threaded(
            &mut tx,
            Some(org),
            &Mail {
                to: m.from.clone(),
                subject,
                text: text.to_owned(),
            },
            &threading,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Processed::of(outcome, None))
}

/// The threading headers of a mail about a ticket: answering its latest public message, referencing the thread
/// (first and latest [`REFERENCES_MAX`]), sent with `own` (the Message-ID of the message it carries) when given,
/// Reply-To the help desk's address when set.
pub(crate) async fn threading(
    tx: &mut Tx,
    org: OrgId,
    ticket: TicketId,
    own: Option<&str>,
) -> Result<Threading> {
    let mut ids = store::thread_ids(tx, org, ticket).await?;
    ids.retain(|i| Some(i.as_str()) != own);
    let references = if ids.len() > REFERENCES_MAX {
        let mut r = vec![ids[0].clone()];
        r.extend_from_slice(&ids[ids.len() - (REFERENCES_MAX - 1)..]);
        r
    } else {
        ids.clone()
    };
    Ok(Threading {
        message_id: own.map(str::to_owned),
        in_reply_to: ids.last().cloned(),
        references,
        reply_to: store::address_in(tx, org).await?,
        auto_replied: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_and_made() {
        assert_eq!(tag(42), "[HD#42]");
        assert_eq!(parse_tag("Re: [HD#42] VPN"), Some(42));
        assert_eq!(parse_tag("I: R: [hd#7] x"), Some(7));
        assert_eq!(parse_tag("[HD#] [HD#x] [HD#12"), None);
        assert_eq!(parse_tag("[HD#3a] then [HD#5]"), Some(5));
        assert_eq!(parse_tag("#42 VPN"), None);
    }

    #[test]
    fn subjects_lose_prefixes() {
        assert_eq!(ticket_subject("Re: R: I: Fwd:  VPN\tgiù "), "VPN giù");
        assert_eq!(ticket_subject("  "), "(senza oggetto / no subject)");
        assert_eq!(ticket_subject("Re: [HD#12] Re: Webcam [hd#3]"), "Webcam");
        assert_eq!(
            ticket_subject("Perché [HD#x] è così"),
            "Perché [HD#x] è così"
        );
        assert_eq!(
            ticket_subject(&"x".repeat(300)).chars().count(),
            SUBJECT_MAX
        );
    }

    #[test]
    fn messages_are_read() {
        let raw = b"From: Sara <Sara.Dipendente@Regione.example>\r\nTo: hd@x.example\r\nSubject: Re: [HD#3] VPN\r\n\
            Message-ID: <abc@mail.example>\r\nIn-Reply-To: <m1@helpdesk.agilekit>\r\n\
            References: <m0@helpdesk.agilekit> <m1@helpdesk.agilekit>\r\n\r\nOra va.\r\n\r\n> vecchio\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.from, "sara.dipendente@regione.example");
        assert_eq!(m.message_id, "<abc@mail.example>");
        assert_eq!(m.in_reply_to, ["<m1@helpdesk.agilekit>"]);
        assert_eq!(
            m.references,
            ["<m0@helpdesk.agilekit>", "<m1@helpdesk.agilekit>"]
        );
        assert_eq!(m.body, "Ora va.");
        assert!(!m.automatic);
        let again = parse(b"From: a@b.example\r\nSubject: x\r\n\r\nciao").unwrap();
        assert!(again.message_id.ends_with("@inbound.agilekit>"));
        assert_eq!(
            again.message_id,
            parse(b"From: a@b.example\r\nSubject: x\r\n\r\nciao")
                .unwrap()
                .message_id
        );
        assert!(
            parse(b"From: a@b.example\r\nAuto-Submitted: auto-replied\r\n\r\nFuori ufficio")
                .unwrap()
                .automatic
        );
    }

    #[test]
    fn garbage_is_a_field_error() {
        let code = |raw: &[u8]| match parse(raw) {
            Err(Error::Invalid(e)) => {
                e.0.iter()
                    .map(|x| format!("{}:{}", x.field, x.code))
                    .collect::<Vec<_>>()
                    .join(",")
            }
            other => format!("{other:?}"),
        };
        assert_eq!(code(b""), "message:required");
        // Bytes that are no mail have no sender either.
        assert_eq!(code(b"\x00\xff\xfe garbage"), "from:required");
        assert_eq!(code(b"{\"json\": true}"), "from:required");
        assert_eq!(code(b"Subject: no sender\r\n\r\nx"), "from:required");
    }
}
