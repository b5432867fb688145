//! Open data of funding calls (issue 4, point 6). A call's administrators publish a list as an immutable snapshot
//! with its instant; anyone reads the latest snapshot of each list, without signing in, at
//! `/opendata/calls/{call}/{list}.csv` and `.json`, listed on `/opendata`. Licence CC-BY 4.0, stated in the JSON and in
//! a column of the CSV (and a `Link: rel="license"` header). Columns: protocol, submitted instant, company name,
//! partita IVA, ATECO sector, amount, place. Never personal data: no representative, e-mail, PEC, personal codice
//! fiscale or account. The CSV is UTF-8 with a BOM, quoted as RFC 4180 says, and a cell that a spreadsheet would read
//! as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is prefixed with `'`.
//!
//! Lists: `admitted` (admitted and waiting, in protocol order), `granted` (the grants decided after the formal check,
//! in protocol order, with the amount granted), `ranked` (a ranked call's published ranking, in its order, with
//! position and score): each is one arm of [`rows_for`].

use agilekit_kernel::audit::{self, Actor, Change};
use agilekit_kernel::authz::Principal;
use agilekit_kernel::db::{Db, DbResult};
use agilekit_kernel::ids::{AccountId, OrgId};
use agilekit_kernel::{Error, Result, clock, db_run};
use agilekit_web::AppState;
use agilekit_web::auth::RequestCtx;
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::calls::model::CallId;
use crate::calls::service;

pub const LICENSE: &str = "CC-BY-4.0";
pub const LICENSE_URL: &str = "https://creativecommons.org/licenses/by/4.0/";

agilekit_kernel::typed_id!(
    /// A published open-data snapshot.
    SnapshotId
);

/// The lists a call publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// Submitted applications holding money or waiting for it (a sportello), in protocol order.
    Admitted,
    /// Grants decided after the formal check.
    Granted,
    /// A ranked call's ranking.
    Ranked,
}

impl List {
    pub fn parse(s: &str) -> Option<List> {
        match s {
            "admitted" => Some(List::Admitted),
            "granted" => Some(List::Granted),
            "ranked" => Some(List::Ranked),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            List::Admitted => "admitted",
            List::Granted => "granted",
            List::Ranked => "ranked",
        }
    }
}

/// One published row. Company data only: what the public registers already show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub protocol: i64,
    /// RFC 3339, UTC.
    pub submitted_at: String,
    pub company_name: String,
    pub partita_iva: String,
    pub ateco: String,
    pub amount_cents: i64,
    /// `admitted`, `waiting`, `granted`; empty for a ranked application that no longer holds a place (withdrawn,
    /// inadmissible).
    pub place: String,
    /// A ranked call's list: the position in the published ranking and the total score in hundredths of a point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_hundredths: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AdmittedRow {
    protocol: i64,
    submitted_at: OffsetDateTime,
    name: String,
    partita_iva: String,
    sector: String,
    requested_cents: i64,
    place: String,
}

#[derive(sqlx::FromRow)]
struct GrantedApp {
    company_id: crate::companies::model::CompanyId,
    protocol: i64,
    submitted_at: OffsetDateTime,
    name: String,
    partita_iva: String,
    sector: String,
}

/// The call's applications with a protocol (submitted, withdrawn or not) and their companies' public data.
async fn submitted_apps(db: &Db, call: CallId) -> Result<Vec<GrantedApp>> {
    Ok(db_run!(db, |p| sqlx::query_as(
        "SELECT a.company_id, a.protocol, a.submitted_at, k.name, k.partita_iva, k.sector
         FROM grant_applications a JOIN companies k ON k.id = a.company_id
         WHERE a.call_id = $1 AND a.protocol IS NOT NULL"
    ).bind(call).fetch_all(p).await?))
}

/// The rows of `list` for `call` as of now.
async fn rows_for(db: &Db, call: CallId, list: List) -> Result<Vec<Row>> {
    match list {
        List::Admitted => {
            let rows: Vec<AdmittedRow> = db_run!(db, |p| sqlx::query_as(
                "SELECT a.protocol, a.submitted_at, k.name, k.partita_iva, k.sector, a.requested_cents, a.place
                 FROM grant_applications a JOIN companies k ON k.id = a.company_id
                 WHERE a.call_id = $1 AND a.state = 'submitted' AND a.place IS NOT NULL AND a.protocol IS NOT NULL ORDER BY a.protocol"
            ).bind(call).fetch_all(p).await?);
            Ok(rows
                .into_iter()
                .map(|r| Row {
                    protocol: r.protocol,
                    submitted_at: r.submitted_at.format(&Rfc3339).unwrap_or_default(),
                    company_name: r.name,
                    partita_iva: r.partita_iva,
                    ateco: r.sector,
                    amount_cents: r.requested_cents,
                    place: r.place,
                    rank: None,
                    score_hundredths: None,
                })
                .collect())
        }
        // The grants decided after the formal check (`review::service::granted`), with the application's protocol
        // and instant: the amount is the one granted.
        List::Granted => {
            let granted = crate::review::service::granted(db, call).await?;
            let apps = submitted_apps(db, call).await?;
            let mut rows: Vec<Row> = granted
                .iter()
                .filter_map(|g| apps.iter().find(|a| a.company_id == g.company_id).map(|a| (g, a)))
                .map(|(g, a)| Row {
                    protocol: a.protocol,
                    submitted_at: a.submitted_at.format(&Rfc3339).unwrap_or_default(),
                    company_name: a.name.clone(),
                    partita_iva: a.partita_iva.clone(),
                    ateco: a.sector.clone(),
                    amount_cents: g.granted_cents,
                    place: "granted".into(),
                    rank: None,
                    score_hundredths: None,
                })
                .collect();
            rows.sort_by_key(|r| r.protocol);
            Ok(rows)
        }
        // A ranked call's published ranking (`ranking::service::published`), in its order, with each application's
        // protocol and instant; nothing before publication (nor for a call a sportello).
        List::Ranked => {
            let ranked = crate::ranking::service::published(db, call).await?;
            if ranked.is_empty() {
                return Err(Error::Conflict("list-not-available"));
            }
            let apps = submitted_apps(db, call).await?;
            Ok(ranked
                .iter()
                .filter_map(|r| apps.iter().find(|a| a.company_id == r.company_id).map(|a| (r, a)))
                .map(|(r, a)| Row {
                    protocol: a.protocol,
                    submitted_at: a.submitted_at.format(&Rfc3339).unwrap_or_default(),
                    company_name: a.name.clone(),
                    partita_iva: a.partita_iva.clone(),
                    ateco: a.sector.clone(),
                    amount_cents: r.amount_cents,
                    place: r.place.clone().unwrap_or_default(),
                    rank: Some(r.rank),
                    score_hundredths: Some(r.score),
                })
                .collect())
        }
    }
}

/// A stored snapshot with its call's title and organisation.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub call_id: CallId,
    pub org_id: OrgId,
    pub list: String,
    pub rows: String,
    pub row_count: i64,
    pub published_at: OffsetDateTime,
    pub call_title: String,
    pub org_name: String,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT s.id, s.call_id, s.org_id, s.list, s.rows, s.row_count, s.published_at, c.title AS call_title, o.name AS org_name
             FROM grant_open_data s JOIN grant_calls c ON c.id = s.call_id JOIN organisations o ON o.id = s.org_id ",
            $rest
        )
    };
}

/// Every snapshot of a call, latest first.
pub async fn snapshots_of(db: &Db, call: CallId) -> DbResult<Vec<Snapshot>> {
    let sql = select!("WHERE s.call_id = $1 ORDER BY s.published_at DESC");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(call).fetch_all(p).await?))
}

/// The latest snapshot of each call's list, latest first.
pub async fn latest_all(db: &Db) -> DbResult<Vec<Snapshot>> {
    let sql = select!(
        "WHERE s.published_at = (SELECT MAX(x.published_at) FROM grant_open_data x WHERE x.call_id = s.call_id AND x.list = s.list)
         ORDER BY s.published_at DESC LIMIT 500"
    );
    Ok(db_run!(db, |p| sqlx::query_as(sql).fetch_all(p).await?))
}

pub async fn latest(db: &Db, call: CallId, list: List) -> DbResult<Option<Snapshot>> {
    let sql = select!("WHERE s.call_id = $1 AND s.list = $2 ORDER BY s.published_at DESC LIMIT 1");
    Ok(db_run!(db, |p| sqlx::query_as(sql).bind(call).bind(list.as_str()).fetch_optional(p).await?))
}

async fn insert(db: &Db, actor: &Actor, org: OrgId, call: CallId, list: List, rows: &[Row], by: AccountId) -> Result<SnapshotId> {
    let id = SnapshotId::new();
    let now = clock::now();
    let content = serde_json::to_string(rows).map_err(|e| Error::Internal(e.to_string()))?;
    let mut tx = db.begin().await?;
    db_run!(tx tx, |c| sqlx::query(
        "INSERT INTO grant_open_data (id, call_id, org_id, list, rows, row_count, published_by, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ).bind(id).bind(call).bind(org).bind(list.as_str()).bind(&content).bind(rows.len() as i64).bind(by).bind(now).execute(c).await?.rows_affected());
    audit::record(&mut tx, actor, Change { org: Some(org), action: "call.opendata.publish", entity: "grant_call", entity_id: call.to_string(), before: None, after: Some(json!({"snapshot": id, "list": list.as_str(), "rows": rows.len()})) })
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Publishes `list` of `call` as a new snapshot (an administrator of `org`; the call must be published).
pub async fn publish(db: &Db, actor: &Actor, p: &Principal, org: OrgId, call: CallId, list: &str) -> Result<SnapshotId> {
    service::staff(db, p, org).await?;
    let c = crate::calls::store::get_in(db, org, call).await?.ok_or(Error::NotFound)?;
    let list = List::parse(list).ok_or(Error::Conflict("unknown-list"))?;
    if c.published_at.is_none() {
        return Err(Error::Conflict("not-published"));
    }
    let rows = rows_for(db, call, list).await?;
    insert(db, actor, org, call, list, &rows, p.id()).await
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

/// Euro with two decimals and a dot, as machines read it: `7500.00`.
pub fn euro(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// A CSV document for spreadsheets: UTF-8 with a BOM, CRLF lines, RFC 4180 quoting, formulas neutralised.
pub struct Csv(String);

impl Default for Csv {
    fn default() -> Self {
        Self::new()
    }
}

impl Csv {
    pub fn new() -> Csv {
        Csv("\u{feff}".into())
    }

    /// A cell as written: a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'` (a spreadsheet would run
    /// it as a formula); quoted when it holds a comma, a quote or a line break.
    pub fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
        if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    }

    pub fn row(&mut self, cells: &[&str]) {
        let line: Vec<String> = cells.iter().map(|c| Csv::cell(c)).collect();
        self.0.push_str(&line.join(","));
        self.0.push_str("\r\n");
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The document as a download named `filename`.
    pub fn response(self, filename: &str) -> Response {
        let mut r = (StatusCode::OK, self.0).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    }
}

fn rows_of(s: &Snapshot) -> Vec<Row> {
    serde_json::from_str(&s.rows).unwrap_or_default()
}

pub fn csv_of(s: &Snapshot) -> String {
    let mut out = Csv::new();
    let rows = rows_of(s);
    // A ranking's list has its position and score first.
    let ranked = rows.iter().any(|r| r.rank.is_some());
    let mut head = vec!["protocollo", "data_ora_presentazione", "impresa", "partita_iva", "ateco", "importo_eur", "posizione", "licenza"];
    if ranked {
        head.splice(0..0, ["graduatoria", "punteggio"]);
    }
    out.row(&head);
    for r in rows {
        let (protocol, amount) = (r.protocol.to_string(), euro(r.amount_cents));
        let mut cells: Vec<&str> = vec![&protocol, &r.submitted_at, &r.company_name, &r.partita_iva, &r.ateco, &amount, &r.place, LICENSE];
        let (rank, score) = (r.rank.map(|n| n.to_string()).unwrap_or_default(), r.score_hundredths.map(euro).unwrap_or_default());
        if ranked {
            cells.splice(0..0, [rank.as_str(), score.as_str()]);
        }
        out.row(&cells);
    }
    out.into_string()
}

pub fn json_of(s: &Snapshot) -> serde_json::Value {
    json!({
        "call": {"id": s.call_id, "title": s.call_title, "organisation": s.org_name},
        "list": s.list,
        "published_at": s.published_at.format(&Rfc3339).unwrap_or_default(),
        "license": LICENSE,
        "license_url": LICENSE_URL,
        "attribution": s.org_name,
        "columns": if s.list == "ranked" {
            json!(["rank", "score_hundredths", "protocol", "submitted_at", "company_name", "partita_iva", "ateco", "amount_cents", "place"])
        } else {
            json!(["protocol", "submitted_at", "company_name", "partita_iva", "ateco", "amount_cents", "place"])
        },
        "rows": rows_of(s),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Public routes

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/opendata", get(index))
        .route("/opendata/calls/{call}/{file}", get(file))
        .route("/api/v1/orgs/{org}/calls/{call}/opendata", axum::routing::post(publish_api))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(publish_api),
    components(schemas(PublishInput, Published)),
    tags((name = "grants-opendata", description = "Open data of funding calls: a call's administrators publish a list (`admitted`: \
        admitted and waiting in protocol order; `granted`: the grants decided) as an immutable snapshot; anyone reads the latest at \
        `/opendata/calls/{call}/{list}.csv` and `.json` (CC-BY-4.0; company names, partite IVA, ATECO sectors and amounts, no \
        personal data).")),
)]
pub struct ApiDoc;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PublishInput {
    /// `admitted`, `granted` or `ranked`.
    pub list: String,
}

/// A published snapshot and where the public reads it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Published {
    #[schema(value_type = String, format = Uuid)]
    pub id: SnapshotId,
    pub list: String,
    pub csv: String,
    pub json: String,
}

/// Publishes a list of the call as a new open-data snapshot.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/calls/{call}/opendata", tag = "grants-opendata", operation_id = "calls_opendata_publish",
    params(("org" = uuid::Uuid, Path, description = "Organisation id"), ("call" = uuid::Uuid, Path, description = "Call id")),
    request_body = PublishInput,
    responses((status = 201, body = Published), (status = 401, body = agilekit_web::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = agilekit_web::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = agilekit_web::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`unknown-list`, `not-published`, `list-not-available`", body = agilekit_web::error::Problem, content_type = "application/problem+json")),
    security(("token" = []), ("session" = [])))]
async fn publish_api(
    State(s): State<AppState>,
    agilekit_web::auth::ApiUser(u, c): agilekit_web::auth::ApiUser,
    agilekit_web::api::ApiPath((org, call)): agilekit_web::api::ApiPath<(OrgId, CallId)>,
    agilekit_web::api::ApiJson(input): agilekit_web::api::ApiJson<PublishInput>,
) -> std::result::Result<Response, agilekit_web::error::ApiError> {
    let id = publish(&s.db, &u.actor(c.ip.clone()), &u.principal, org, call, &input.list).await?;
    let base = format!("/opendata/calls/{call}/{}", input.list);
    let body = Published { id, list: input.list.clone(), csv: format!("{base}.csv"), json: format!("{base}.json") };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A snapshot as the pages list it.
pub struct SnapshotView {
    pub call_id: String,
    pub call_title: String,
    pub org_name: String,
    pub list: String,
    pub list_label: String,
    pub at: String,
    pub rows: i64,
    pub csv: String,
    pub json: String,
}

impl SnapshotView {
    pub fn of(ctx: &PageCtx, s: &Snapshot) -> SnapshotView {
        let base = format!("/opendata/calls/{}/{}", s.call_id, s.list);
        SnapshotView {
            call_id: s.call_id.to_string(),
            call_title: s.call_title.clone(),
            org_name: s.org_name.clone(),
            list: s.list.clone(),
            list_label: ctx.t(&format!("gst-od-list-{}", s.list)),
            at: ctx.format_time(&s.published_at),
            rows: s.row_count,
            csv: format!("{base}.csv"),
            json: format!("{base}.json"),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_staff_opendata.html")]
struct IndexPage {
    ctx: PageCtx,
    items: Vec<SnapshotView>,
    license_url: &'static str,
}

async fn index(State(state): State<AppState>, rc: RequestCtx) -> Result<IndexPage, PageError> {
    let all = latest_all(&state.db).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let items = all.iter().map(|s| SnapshotView::of(&ctx, s)).collect();
    Ok(IndexPage { ctx, items, license_url: LICENSE_URL })
}

async fn file(State(state): State<AppState>, Path((call, file)): Path<(String, String)>) -> Result<Response, PageError> {
    let call: CallId = call.trim().parse().map_err(|_| PageError::not_found())?;
    let (name, ext) = file.rsplit_once('.').ok_or_else(PageError::not_found)?;
    let list = List::parse(name).ok_or_else(PageError::not_found)?;
    let snap = latest(&state.db, call, list).await?.ok_or_else(PageError::not_found)?;
    let mut r = match ext {
        "csv" => {
            let mut r = (StatusCode::OK, csv_of(&snap)).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}-{}.csv\"", list.as_str(), snap.call_id)) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        "json" => {
            let mut r = (StatusCode::OK, serde_json::to_string_pretty(&json_of(&snap)).unwrap_or_default()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        _ => return Err(PageError::not_found()),
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("<{LICENSE_URL}>; rel=\"license\"")) {
        h.insert(header::LINK, v);
    }
    // Public and the same for everybody; a new snapshot is a new publication.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(Csv::cell("Rossi S.r.l."), "Rossi S.r.l.");
        assert_eq!(Csv::cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(Csv::cell("+39"), "'+39");
        assert_eq!(Csv::cell("-1"), "'-1");
        assert_eq!(Csv::cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(Csv::cell("Alfa, Beta & C."), "\"Alfa, Beta & C.\"");
        assert_eq!(Csv::cell("a\nb"), "\"a\nb\"");
        assert_eq!(euro(750_000), "7500.00");
        assert_eq!(euro(5), "0.05");
        let mut c = Csv::new();
        c.row(&["a", "b"]);
        assert_eq!(c.into_string(), "\u{feff}a,b\r\n");
    }
}
