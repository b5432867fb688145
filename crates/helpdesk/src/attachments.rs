//! Ticket attachments: files of the kernel's store ([`agilekit_kernel::files`]) linked to a ticket's messages, at
//! most [`PER_MESSAGE`] a message. Visibility follows the message: a note's files are for agents only, a reply's
//! for whoever sees the ticket. A file is uploaded first (pending, its uploader's alone) and attached in the same
//! transaction as the message that carries it; a pending id of someone else, or already attached, is
//! `unknown-file`. Downloads answer with headers that keep a browser from running what it got.

use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult, Tx};
use agilekit_kernel::db_run;
use agilekit_kernel::files::{self, FileId, FileMeta};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, FieldErrors, Result};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use crate::model::{MessageId, TicketId};

/// The most files one message carries.
pub const PER_MESSAGE: usize = 10;

/// Content types served as what they are; anything else is served as `application/octet-stream`.
pub const SAFE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"];

/// A file of a message, as the API and the pages show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: FileId,
    pub name: String,
    /// Bytes.
    pub size: i64,
    /// As the uploader declared it (served as is only if it is on a short safe list).
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

impl From<&FileMeta> for Attachment {
    fn from(f: &FileMeta) -> Self {
        Attachment { id: f.id, name: f.name.clone(), size: f.size, content_type: f.content_type.clone(), sha256: f.sha256.clone() }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    message_id: MessageId,
    id: FileId,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
}

/// The files of a ticket's messages, each with its message, in upload order; internal notes' only when asked for.
pub async fn of_ticket(db: &Db, org: OrgId, ticket: TicketId, with_notes: bool) -> DbResult<Vec<(MessageId, Attachment)>> {
    let rows: Vec<Row> = db_run!(db, |p| sqlx::query_as(
        "SELECT a.message_id, f.id, f.name, f.content_type, f.size, f.sha256
         FROM helpdesk_attachments a JOIN helpdesk_messages m ON m.id = a.message_id JOIN files f ON f.id = a.file_id
         WHERE a.org_id = $1 AND a.ticket_id = $2 AND ($3 OR m.kind = 'reply') ORDER BY a.message_id, a.position"
    ).bind(org).bind(ticket).bind(with_notes).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|r| (r.message_id, Attachment { id: r.id, name: r.name, size: r.size, content_type: r.content_type, sha256: r.sha256 }))
        .collect())
}

/// The pending files `ids` names, checked before a message is written: each must be a pending file `owner`
/// uploaded in `org` (else `attachments[i]`: `unknown-file`), at most [`PER_MESSAGE`] (else `attachments`:
/// `too-many`). A repeated id counts once.
pub async fn resolve(db: &Db, org: OrgId, owner: AccountId, ids: &[String], errors: &mut FieldErrors) -> Result<Vec<FileMeta>> {
    let mut wanted: Vec<(usize, FileId)> = Vec::new();
    for (i, s) in ids.iter().enumerate() {
        match s.trim().parse::<FileId>() {
            Ok(id) if !wanted.iter().any(|(_, w)| *w == id) => wanted.push((i, id)),
            Ok(_) => {}
            Err(_) => errors.add(&format!("attachments[{i}]"), "unknown-file"),
        }
    }
    if wanted.len() > PER_MESSAGE {
        errors.add("attachments", "too-many");
        return Ok(Vec::new());
    }
    let found = files::pending_of(db, org, owner, &wanted.iter().map(|(_, id)| *id).collect::<Vec<_>>()).await?;
    let mut out = Vec::new();
    for (i, id) in wanted {
        match found.iter().find(|f| f.id == id) {
            Some(f) => out.push(f.clone()),
            None => errors.add(&format!("attachments[{i}]"), "unknown-file"),
        }
    }
    Ok(out)
}

/// Attaches the resolved files to a message, in the caller's transaction (the message's). A file attached
/// meanwhile by another request fails the whole change (`unknown-file`).
pub async fn attach(tx: &mut Tx, org: OrgId, ticket: TicketId, message: MessageId, owner: Option<AccountId>, list: &[FileMeta], now: OffsetDateTime) -> Result<()> {
    for (i, f) in list.iter().enumerate() {
        if !files::mark_attached(tx, org, owner, f.id, now).await? {
            return Err(FieldErrors::one(&format!("attachments[{i}]"), "unknown-file"));
        }
        db_run!(tx tx, |c| sqlx::query(
            "INSERT INTO helpdesk_attachments (file_id, org_id, ticket_id, message_id, position) VALUES ($1, $2, $3, $4, $5)"
        ).bind(f.id).bind(org).bind(ticket).bind(message).bind(i as i32).execute(c).await.map(|_| ()))?;
    }
    Ok(())
}

/// A file of the ticket the caller may see (a note's only for agents), with its bytes; 404 otherwise.
pub async fn download(db: &Db, p: &Principal, org: OrgId, ticket: TicketId, file: FileId) -> Result<(FileMeta, Vec<u8>)> {
    let with_notes = crate::service::sees_notes(db, p, org, ticket).await?;
    let found: Option<(i32,)> = db_run!(db, |c| sqlx::query_as(
        "SELECT a.position FROM helpdesk_attachments a JOIN helpdesk_messages m ON m.id = a.message_id
         WHERE a.org_id = $1 AND a.ticket_id = $2 AND a.file_id = $3 AND ($4 OR m.kind = 'reply')"
    ).bind(org).bind(ticket).bind(file).bind(with_notes).fetch_optional(c).await?);
    if found.is_none() {
        return Err(Error::NotFound);
    }
    files::read(db, org, file).await?.ok_or(Error::NotFound)
}

/// Uploads a pending file for the caller, a member of `org` with the help desk (the API's `POST …/helpdesk/files`
/// and the pages' forms).
pub async fn upload(db: &Db, settings: &files::Settings, p: &Principal, org: OrgId, name: &str, content_type: &str, data: &[u8]) -> Result<FileMeta> {
    crate::service::may_upload(db, p, org).await?;
    files::put(db, settings, org, Some(p.id()), name, content_type, data).await
}

/// `filename*` per RFC 6266 and 8187: UTF-8, percent-encoded.
fn rfc8187(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stored bytes as a download: never inline, never sniffed, sandboxed should a browser render it anyway, never
/// cached; the stored content type only when it is one of [`SAFE_TYPES`].
pub fn response(meta: &FileMeta, data: Vec<u8>) -> Response {
    let ct = if SAFE_TYPES.contains(&meta.content_type.as_str()) { meta.content_type.as_str() } else { "application/octet-stream" };
    let ascii: String = meta.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", rfc8187(&meta.name));
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}

/// A size as people read it: bytes, kB or MB (decimal, one digit).
pub fn human_size(n: i64) -> String {
    if n < 1000 {
        format!("{n} B")
    } else if n < 1_000_000 {
        format!("{:.1} kB", n as f64 / 1000.0)
    } else {
        format!("{:.1} MB", n as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_and_types_narrowed() {
        assert_eq!(rfc8187("rapporto finale è.pdf"), "rapporto%20finale%20%C3%A8.pdf");
        let meta = |ct: &str| FileMeta {
            id: FileId::new(),
            org_id: OrgId::new(),
            owner_id: None,
            name: "a\"b.html".into(),
            content_type: ct.into(),
            size: 1,
            sha256: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            attached_at: None,
        };
        let r = response(&meta("text/html"), b"<script>".to_vec());
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(r.headers()[header::CONTENT_DISPOSITION], "attachment; filename=\"a_b.html\"; filename*=UTF-8''a%22b.html");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], "sandbox");
        let r = response(&meta("image/png"), Vec::new());
        assert_eq!(r.headers()[header::CONTENT_TYPE], "image/png");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1500), "1.5 kB");
    }
}
