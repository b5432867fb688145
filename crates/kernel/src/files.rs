//! Uploaded files, for any domain: the bytes in the database (both engines, so several nodes on one PostgreSQL
//! need no shared disk), with a cleaned name, the declared content type, the size and a SHA-256. A file is put
//! first (pending: only its owner may reference it) and then attached by the domain that takes it; pending files
//! never attached are swept after [`PENDING_HOURS`]. Domains keep their own link tables and visibility rules.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::db::{Db, DbResult, Tx};
use crate::db_run;
use crate::ids::{AccountId, OrgId};
use crate::{FieldErrors, Result, clock};

crate::typed_id!(
    /// An uploaded file.
    FileId
);

/// The longest file name kept (characters).
pub const NAME_MAX: usize = 255;
/// A pending file older than this is swept.
pub const PENDING_HOURS: i64 = 24;

/// `[files]` in the configuration.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Settings {
    /// The largest file accepted, in bytes (default 10 MiB).
    pub max_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_bytes: 10 * 1024 * 1024 }
    }
}

/// What is known of a stored file without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FileMeta {
    pub id: FileId,
    pub org_id: OrgId,
    pub owner_id: Option<AccountId>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: OffsetDateTime,
    pub attached_at: Option<OffsetDateTime>,
}

/// A file name as stored: the last path component (browsers of old sent `C:\…\name`), no control characters,
/// trimmed, at most [`NAME_MAX`] characters keeping the extension; `file` when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let s: String = last.chars().filter(|c| !c.is_control()).collect();
    let s = s.trim().trim_start_matches('.').trim();
    if s.is_empty() {
        return "file".to_owned();
    }
    if s.chars().count() <= NAME_MAX {
        return s.to_owned();
    }
    // Keep a short extension, cut the stem.
    let (stem, ext) = match s.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => (stem, format!(".{ext}")),
        _ => (s, String::new()),
    };
    let keep = NAME_MAX - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>())
}

/// A content type as stored: `type/subtype` in lower case without parameters when it looks like one,
/// `application/octet-stream` otherwise. It is only what the uploader declared: never trusted to serve inline.
pub fn clean_content_type(raw: &str) -> String {
    let t = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = t.len() <= 100
        && t.split_once('/').is_some_and(|(a, b)| {
            let tok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c));
            tok(a) && tok(b)
        });
    if ok { t } else { "application/octet-stream".to_owned() }
}

/// The hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Stores a pending file of `owner` in `org`. A file over `settings.max_bytes` is refused (field `file`,
/// `too-large`): callers reading a stream stop at the limit and need not come here.
pub async fn put(db: &Db, settings: &Settings, org: OrgId, owner: Option<AccountId>, name: &str, content_type: &str, data: &[u8]) -> Result<FileMeta> {
    if data.len() as u64 > settings.max_bytes {
        return Err(FieldErrors::one("file", "too-large"));
    }
    let meta = FileMeta {
        id: FileId::new(),
        org_id: org,
        owner_id: owner,
        name: clean_name(name),
        content_type: clean_content_type(content_type),
        size: data.len() as i64,
        sha256: sha256_hex(data),
        created_at: clock::now(),
        attached_at: None,
    };
    db_run!(db, |p| sqlx::query(
        "INSERT INTO files (id, org_id, owner_id, name, content_type, size, sha256, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(meta.id).bind(meta.org_id).bind(meta.owner_id).bind(&meta.name).bind(&meta.content_type)
    .bind(meta.size).bind(&meta.sha256).bind(data).bind(meta.created_at)
    .execute(p).await.map(|_| ()))?;
    Ok(meta)
}

const META: &str = "SELECT id, org_id, owner_id, name, content_type, size, sha256, created_at, attached_at FROM files";

/// A file's metadata, in `org`.
pub async fn get(db: &Db, org: OrgId, id: FileId) -> DbResult<Option<FileMeta>> {
    let sql = format!("{META} WHERE org_id = $1 AND id = $2");
    Ok(db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(id).fetch_optional(p).await?))
}

/// A file's metadata and bytes, in `org`.
pub async fn read(db: &Db, org: OrgId, id: FileId) -> DbResult<Option<(FileMeta, Vec<u8>)>> {
    let Some(meta) = get(db, org, id).await? else { return Ok(None) };
    let row: Option<(Vec<u8>,)> = db_run!(db, |p| sqlx::query_as("SELECT data FROM files WHERE org_id = $1 AND id = $2")
        .bind(org).bind(id).fetch_optional(p).await?);
    Ok(row.map(|(data,)| (meta, data)))
}

/// The pending (never attached) files among `ids` that `owner` uploaded in `org`, in no particular order: what the
/// owner may still reference.
pub async fn pending_of(db: &Db, org: OrgId, owner: AccountId, ids: &[FileId]) -> DbResult<Vec<FileMeta>> {
    let mut out = Vec::new();
    for id in ids {
        let sql = format!("{META} WHERE org_id = $1 AND id = $2 AND owner_id = $3 AND attached_at IS NULL");
        let m: Option<FileMeta> = db_run!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org).bind(*id).bind(owner).fetch_optional(p).await?);
        out.extend(m);
    }
    Ok(out)
}

/// Marks a pending file of `owner` attached, in the caller's transaction; false when it is not (or no longer) one
/// (another request attached it first, or the sweep took it).
pub async fn mark_attached(tx: &mut Tx, org: OrgId, owner: Option<AccountId>, id: FileId, now: OffsetDateTime) -> DbResult<bool> {
    let n = db_run!(tx tx, |c| sqlx::query(
        "UPDATE files SET attached_at = $4 WHERE org_id = $1 AND id = $2 AND attached_at IS NULL
           AND (owner_id = $3 OR (owner_id IS NULL AND $3 IS NULL))"
    ).bind(org).bind(id).bind(owner).bind(now).execute(c).await?.rows_affected());
    Ok(n == 1)
}

/// Deletes the files still pending [`PENDING_HOURS`] after their upload; how many.
pub async fn sweep(db: &Db, now: OffsetDateTime) -> DbResult<u64> {
    let before = clock::stamp(now - time::Duration::hours(PENDING_HOURS));
    Ok(db_run!(db, |p| sqlx::query("DELETE FROM files WHERE attached_at IS NULL AND created_at < $1")
        .bind(before).execute(p).await?.rows_affected()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\sara\\foto.png"), "foto.png");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\u{0}b\r\n.pdf"), "ab.pdf");
        assert_eq!(clean_name("  "), "file");
        assert_eq!(clean_name(".htaccess"), "htaccess");
        let long = format!("{}.pdf", "x".repeat(400));
        let c = clean_name(&long);
        assert_eq!(c.chars().count(), NAME_MAX);
        assert!(c.ends_with(".pdf"));
    }

    #[test]
    fn content_types_are_tokens() {
        assert_eq!(clean_content_type("Image/PNG; charset=x"), "image/png");
        assert_eq!(clean_content_type("text/html<script>"), "application/octet-stream");
        assert_eq!(clean_content_type(""), "application/octet-stream");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
