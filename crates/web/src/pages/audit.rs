//! The audit log pages: an organisation's own log (its admins and HR, and platform admins) and the whole log
//! (platform admins), filtered by a GET query, paged by keyset, and exported as CSV streamed in pages of 1000.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::task::{Context, Poll};

use agilekit_kernel::audit::{self, Filter, NamedEntry};
use agilekit_kernel::clock;
use agilekit_kernel::ids::OrgId;
use agilekit_kernel::tenancy::{self, Organisation};
use agilekit_kernel::validate::Email;
use agilekit_kernel::{FieldErrors, identity};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::format_description::well_known::Rfc3339;
use time::macros::offset;
use time::{Date, Month, OffsetDateTime};

use crate::auth::SignedIn;
use crate::ctx::PageCtx;
use crate::error::PageError;
use crate::i18n::Lang;
use crate::state::AppState;

const PAGE: i64 = 50;
const CSV_PAGE: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org_id}/audit", get(org_page))
        .route("/orgs/{org_id}/audit.csv", get(org_csv))
        .route("/admin/audit", get(admin_page))
        .route("/admin/audit.csv", get(admin_csv))
}

/// Whose log: one organisation's, or everything (entries with no organisation included).
enum Scope {
    Org(Organisation),
    All,
}

impl Scope {
    fn base(&self) -> String {
        match self {
            Scope::Org(o) => format!("/orgs/{}/audit", o.id),
            Scope::All => "/admin/audit".to_owned(),
        }
    }
    fn org(&self) -> Option<OrgId> {
        match self {
            Scope::Org(o) => Some(o.id),
            Scope::All => None,
        }
    }
}

async fn org_scope(state: &AppState, user: &crate::auth::CurrentUser, org_id: &str) -> Result<Scope, PageError> {
    let org: OrgId = org_id.parse().map_err(|_| PageError::not_found())?;
    user.principal.require_view_org(org)?;
    Ok(Scope::Org(tenancy::get(&state.db, org).await?))
}

async fn org_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let scope = org_scope(&state, &user, &org_id).await?;
    page(&state, PageCtx::build(&state, &rc).await, scope, Params::parse(q.as_deref())).await
}

async fn admin_page(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    page(&state, PageCtx::build(&state, &rc).await, Scope::All, Params::parse(q.as_deref())).await
}

async fn org_csv(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    Path(org_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let scope = org_scope(&state, &user, &org_id).await?;
    csv(&state, PageCtx::build(&state, &rc).await, scope, Params::parse(q.as_deref())).await
}

async fn admin_csv(
    State(state): State<AppState>,
    SignedIn(user, rc): SignedIn,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    user.principal.require_platform_admin()?;
    csv(&state, PageCtx::build(&state, &rc).await, Scope::All, Params::parse(q.as_deref())).await
}

/// The filters as typed, kept verbatim so the form shows them again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub from: String,
    pub to: String,
    pub before_seq: String,
}

impl Params {
    /// Never fails: an unknown or repeated parameter is no reason to refuse the page (the last one wins).
    pub fn parse(raw: Option<&str>) -> Params {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                "actor" => &mut p.actor,
                "action" => &mut p.action,
                "entity" => &mut p.entity,
                "entity_id" => &mut p.entity_id,
                "from" => &mut p.from,
                "to" => &mut p.to,
                "before_seq" => &mut p.before_seq,
                _ => continue,
            };
            *slot = v.into_owned();
        }
        p
    }

    /// The query string of these filters (empty ones left out), optionally on the page before `before_seq`.
    pub fn query(&self, before_seq: Option<i64>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("entity", &self.entity),
            ("entity_id", &self.entity_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        if let Some(b) = before_seq {
            s.append_pair("before_seq", &b.to_string());
        }
        let q = s.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

/// A filter value that is plain text: bounded, and free of control characters (PostgreSQL refuses NUL).
fn plain(errors: &mut FieldErrors, field: &str, v: &str, max: usize, charset: fn(char) -> bool) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        None
    } else if v.chars().count() > max {
        errors.add(field, "too-long");
        None
    } else if !v.chars().all(|c| !c.is_control() && charset(c)) {
        errors.add(field, "format");
        None
    } else {
        Some(v.to_owned())
    }
}

fn identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `YYYY-MM-DD`, strictly.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return None;
    }
    let year: i32 = s[0..4].parse().ok()?;
    let month: u8 = s[5..7].parse().ok()?;
    let day: u8 = s[8..10].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// The instant a day begins in Rome, as stored. Midnight is never inside a summer-time switch (those happen at
/// 02:00 and 03:00), so exactly one of the two offsets is right.
pub fn rome_midnight(d: Date) -> OffsetDateTime {
    let winter = d.midnight().assume_offset(offset!(+1));
    let summer = d.midnight().assume_offset(offset!(+2));
    clock::stamp(if clock::rome_offset(summer) == offset!(+2) { summer } else { winter })
}

/// What the filters select: the kernel's filter, or nothing at all (an actor email nobody has).
struct Selection {
    filter: Filter,
    nothing: bool,
}

/// The filters' complaints, or a fault of the database (a 500, not the user's doing).
async fn select(state: &AppState, scope: &Scope, p: &Params) -> Result<Result<Selection, FieldErrors>, PageError> {
    let mut errors = FieldErrors::new();
    let mut filter = Filter { org: scope.org(), ..Filter::default() };
    let mut nothing = false;
    if !p.actor.trim().is_empty()
        && let Some(email) = errors.check("actor", Email::parse(&p.actor))
    {
        match identity::find_by_email(&state.db, email.as_str()).await? {
            Some(a) => filter.actor = Some(a.id),
            // Whether an address has an account is not this page's to tell: it just matches nothing.
            None => nothing = true,
        }
    }
    filter.action_prefix = plain(&mut errors, "action", &p.action, 100, identifier_char);
    filter.entity = plain(&mut errors, "entity", &p.entity, 100, identifier_char);
    filter.entity_id = plain(&mut errors, "entity_id", &p.entity_id, 200, |_| true);
    let from = match p.from.trim() {
        "" => None,
        s => {
            let d = parse_date(s);
            if d.is_none() {
                errors.add("from", "format");
            }
            d
        }
    };
    let to = match p.to.trim() {
        "" => None,
        s => match parse_date(s) {
            // The day is included: up to the start of the next one.
            Some(d) => match d.next_day() {
                Some(next) => Some((d, next)),
                None => {
                    errors.add("to", "out-of-range");
                    None
                }
            },
            None => {
                errors.add("to", "format");
                None
            }
        },
    };
    if let (Some(f), Some((t, _))) = (from, to)
        && t < f
    {
        errors.add("to", "out-of-range");
    }
    filter.since = from.map(rome_midnight);
    filter.until = to.map(|(_, next)| rome_midnight(next));
    let before = p.before_seq.trim();
    if !before.is_empty() {
        match before.parse::<i64>() {
            Ok(n) if n > 0 => filter.before_seq = Some(n),
            _ => errors.add("before_seq", "format"),
        }
    }
    Ok(if errors.is_empty() { Ok(Selection { filter, nothing }) } else { Err(errors) })
}

/// One row of the table, ready to show.
pub struct Row {
    pub seq: i64,
    pub at_iso: String,
    pub at_rome: String,
    /// `None` for the system.
    pub actor_name: Option<String>,
    pub actor_email: String,
    pub org: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub diff: Vec<String>,
    pub ip: String,
}

fn rome_seconds(t: OffsetDateTime) -> String {
    let r = clock::to_rome(t);
    format!("{:02}/{:02}/{} {:02}:{:02}:{:02}", r.day(), r.month() as u8, r.year(), r.hour(), r.minute(), r.second())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// A short "before → after" of the fields that changed: for objects, one line per key that differs.
pub fn diff(before: Option<&str>, after: Option<&str>) -> Vec<String> {
    const LINES: usize = 6;
    const VALUE: usize = 60;
    let parse = |s: Option<&str>| {
        s.map(|s| serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::String(s.to_owned())))
    };
    let show = |v: Option<&serde_json::Value>| v.map(|v| clip(&v.to_string(), VALUE)).unwrap_or_else(|| "—".to_owned());
    let (b, a) = (parse(before), parse(after));
    let empty = serde_json::Map::new();
    let (bo, ao) = match (&b, &a) {
        (Some(serde_json::Value::Object(x)), Some(serde_json::Value::Object(y))) => (x, y),
        (None, Some(serde_json::Value::Object(y))) => (&empty, y),
        (Some(serde_json::Value::Object(x)), None) => (x, &empty),
        (None, None) => return Vec::new(),
        _ => return vec![format!("{} → {}", show(b.as_ref()), show(a.as_ref()))],
    };
    let keys: BTreeSet<&String> = bo.keys().chain(ao.keys()).collect();
    let mut lines: Vec<String> = keys
        .into_iter()
        .filter(|k| bo.get(*k) != ao.get(*k))
        .map(|k| format!("{k}: {} → {}", show(bo.get(k)), show(ao.get(k))))
        .collect();
    if lines.len() > LINES {
        let more = lines.len() - (LINES - 1);
        lines.truncate(LINES - 1);
        lines.push(format!("(+{more})"));
    }
    lines
}

fn row(n: NamedEntry) -> Row {
    let e = n.entry;
    let (actor_name, actor_email) = match (e.actor_id, n.actor_name, n.actor_email) {
        (None, _, _) => (None, String::new()),
        (Some(_), Some(name), Some(email)) => (Some(name), email),
        // The account is gone; its id is all that is left to name it.
        (Some(id), _, _) => (Some(id.to_string()), String::new()),
    };
    Row {
        seq: e.seq,
        at_iso: rfc3339(e.at),
        at_rome: rome_seconds(e.at),
        actor_name,
        actor_email,
        org: n.org_name.or(e.org_id.map(|o| o.to_string())).unwrap_or_else(|| "—".to_owned()),
        diff: diff(e.before_json.as_deref(), e.after_json.as_deref()),
        action: e.action,
        entity: e.entity,
        entity_id: e.entity_id,
        ip: e.ip.unwrap_or_else(|| "—".to_owned()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    ctx: PageCtx,
    title: String,
    intro: String,
    base: String,
    p: Params,
    errors: FieldErrors,
    rows: Vec<Row>,
    older: Option<String>,
    newest: Option<String>,
    csv: String,
}

impl AuditPage {
    fn error_label(&self, field: &str) -> String {
        self.ctx.t(&format!("audit-label-{field}"))
    }
}

fn titles(ctx: &PageCtx, scope: &Scope) -> (String, String) {
    match scope {
        Scope::Org(o) => (ctx.t("audit-title"), ctx.t1("audit-intro-org", "org", &o.name)),
        Scope::All => (ctx.t("audit-title-all"), ctx.t("audit-intro-all")),
    }
}

async fn page(state: &AppState, ctx: PageCtx, scope: Scope, p: Params) -> Result<Response, PageError> {
    let (title, intro) = titles(&ctx, &scope);
    let base = scope.base();
    let csv = format!("{base}.csv{}", p.query(None));
    let mut page = AuditPage {
        ctx,
        title,
        intro,
        base,
        p,
        errors: FieldErrors::new(),
        rows: Vec::new(),
        older: None,
        newest: None,
        csv,
    };
    let sel = match select(state, &scope, &page.p).await? {
        Ok(sel) => sel,
        Err(errors) => {
            page.errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if !sel.nothing {
        // One more than a page tells whether older entries exist.
        let mut entries = audit::list_named(&state.db, &sel.filter, PAGE + 1).await?;
        if entries.len() as i64 > PAGE {
            entries.truncate(PAGE as usize);
            let last = entries.last().map(|e| e.entry.seq);
            page.older = last.map(|seq| format!("{}{}", page.base, page.p.query(Some(seq))));
        }
        page.rows = entries.into_iter().map(row).collect();
    }
    if sel.filter.before_seq.is_some() {
        page.newest = Some(format!("{}{}", page.base, page.p.query(None)));
    }
    Ok(page.into_response())
}

/// Appends one CSV cell (RFC 4180). A cell that a spreadsheet would run as a formula gets a leading apostrophe.
pub fn csv_cell(out: &mut String, v: &str) {
    let guarded = matches!(v.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let quoted = guarded || v.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in v.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

pub fn csv_line(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, c);
    }
    out.push_str("\r\n");
}

const CSV_COLUMNS: [&str; 14] = [
    "seq",
    "time",
    "actor-id",
    "actor-email",
    "actor-name",
    "org-id",
    "org",
    "action",
    "entity",
    "entity-id",
    "before",
    "after",
    "ip",
    "hash",
];

fn csv_header(lang: Lang) -> String {
    let names: Vec<String> = CSV_COLUMNS.iter().map(|c| lang.t(&format!("audit-csv-{c}"))).collect();
    let mut out = String::new();
    csv_line(&mut out, &names.iter().map(String::as_str).collect::<Vec<_>>());
    out
}

fn csv_row(out: &mut String, n: &NamedEntry) {
    let e = &n.entry;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    csv_line(
        out,
        &[
            &e.seq.to_string(),
            &rfc3339(clock::to_rome(e.at)),
            &e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
            &opt(&n.actor_email),
            &opt(&n.actor_name),
            &e.org_id.map(|o| o.to_string()).unwrap_or_default(),
            &opt(&n.org_name),
            &e.action,
            &e.entity,
            &e.entity_id,
            &opt(&e.before_json),
            &opt(&e.after_json),
            &opt(&e.ip),
            &e.hash,
        ],
    );
}

/// The body of a download fed by a task, page by page: at most a couple of pages are held at once.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn csv(state: &AppState, ctx: PageCtx, scope: Scope, p: Params) -> Result<Response, PageError> {
    let sel = match select(state, &scope, &p).await? {
        Ok(sel) => sel,
        // The export link only ever carries filters the page accepted; anything else gets the page to fix them.
        Err(errors) => {
            let (title, intro) = titles(&ctx, &scope);
            let base = scope.base();
            let csv = format!("{base}.csv{}", p.query(None));
            let page =
                AuditPage { ctx, title, intro, base, p, errors, rows: Vec::new(), older: None, newest: None, csv };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let name = match &scope {
        Scope::Org(o) => o.ipa_code.clone(),
        Scope::All => "all".to_owned(),
    };
    let today = clock::to_rome(clock::now()).date();
    let filename = format!("audit-{name}-{:04}{:02}{:02}.csv", today.year(), today.month() as u8, today.day());
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let db = state.db.clone();
    let header = csv_header(ctx.lang);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(header))).await.is_err() || sel.nothing {
            return;
        }
        let mut filter = sel.filter;
        // Each page starts below the previous one's oldest entry (keyset): entries appended meanwhile never shift it.
        loop {
            match audit::list_named(&db, &filter, CSV_PAGE).await {
                Ok(entries) => {
                    let mut out = String::new();
                    for n in &entries {
                        csv_row(&mut out, n);
                    }
                    if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                        return; // the client went away
                    }
                    if (entries.len() as i64) < CSV_PAGE {
                        return;
                    }
                    filter.before_seq = entries.last().map(|n| n.entry.seq);
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed");
                    // An error ends the body abnormally, so the download shows as failed rather than short.
                    let _ = tx.send(Err(std::io::Error::other("audit export failed"))).await;
                    return;
                }
            }
        }
    });
    let mut r = Body::from_stream(Chunks(rx)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_line(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", "=SUM(A1)", "+1", "-2", "@x", "{\"k\":1}"]);
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=SUM(A1)\",\"'+1\",\"'-2\",\"'@x\",\"{\"\"k\"\":1}\"\r\n"
        );
    }

    #[test]
    fn dates_are_strict_and_days_begin_at_rome_midnight() {
        assert_eq!(parse_date("2026-03-01"), Some(date!(2026 - 03 - 01)));
        for bad in ["2026-3-01", "2026-02-30", "26-03-01", "2026/03/01", "2026-03-01x", "+026-03-01", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        // Winter: UTC+1; summer: UTC+2; the switch days themselves begin before the switch.
        assert_eq!(
            rome_midnight(date!(2026 - 01 - 15)).replace_nanosecond(0).unwrap(),
            datetime!(2026-01-14 23:00 UTC)
        );
        assert_eq!(
            rome_midnight(date!(2026 - 07 - 15)).replace_nanosecond(0).unwrap(),
            datetime!(2026-07-14 22:00 UTC)
        );
        assert_eq!(
            rome_midnight(date!(2026 - 03 - 29)).replace_nanosecond(0).unwrap(),
            datetime!(2026-03-28 23:00 UTC)
        );
        assert_eq!(
            rome_midnight(date!(2026 - 03 - 30)).replace_nanosecond(0).unwrap(),
            datetime!(2026-03-29 22:00 UTC)
        );
        assert_eq!(
            rome_midnight(date!(2026 - 10 - 25)).replace_nanosecond(0).unwrap(),
            datetime!(2026-10-24 22:00 UTC)
        );
        assert_eq!(
            rome_midnight(date!(2026 - 10 - 26)).replace_nanosecond(0).unwrap(),
            datetime!(2026-10-25 23:00 UTC)
        );
    }

    #[test]
    fn diff_shows_only_what_changed() {
        assert_eq!(diff(Some(r#"{"a":1,"b":"x"}"#), Some(r#"{"a":1,"b":"y"}"#)), vec![r#"b: "x" → "y""#]);
        assert_eq!(diff(None, Some(r#"{"name":"ARPA"}"#)), vec![r#"name: — → "ARPA""#]);
        assert_eq!(diff(Some("[1]"), None), vec!["[1] → —"]);
        assert!(diff(None, None).is_empty());
        let many = (0..10).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",");
        let d = diff(None, Some(&format!("{{{many}}}")));
        assert_eq!(d.len(), 6);
        assert_eq!(d[5], "(+5)");
    }

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let p = Params::parse(Some("actor=a%40b.it&action=org.&from=2026-01-01&before_seq=7&x=1&action=membership."));
        assert_eq!(p.action, "membership.", "the last value wins");
        assert_eq!(p.query(None), "?actor=a%40b.it&action=membership.&from=2026-01-01");
        assert_eq!(p.query(Some(3)), "?actor=a%40b.it&action=membership.&from=2026-01-01&before_seq=3");
        assert_eq!(Params::parse(None).query(None), "");
    }
}
