//! Public pages of funding calls: the list of published calls (`/calls`, for anyone, grouped by where each stands)
//! and a call's page (`/calls/{call}`) with its rules, documents and FAQ, and for a signed-in person the form that
//! opens an application for one of the companies they represent (the POST is the applications' pages'). A draft, or
//! an id that is no published call, is a 404; so is a draft's document (`/calls/{call}/documents/{document}`).

use agilekit_kernel::clock;
use agilekit_web::AppState;
use agilekit_web::auth::RequestCtx;
use agilekit_web::ctx::PageCtx;
use agilekit_web::error::PageError;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use time::OffsetDateTime;

use super::model::{CallId, DocumentId, Mode, Phase};
use super::service::{self, Call};
use crate::companies::model::region_name;
use crate::model::{Cents, GrantRule};

/// The pages of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/calls", get(list_page))
        .route("/calls/{call}", get(call_page))
        .route("/calls/{call}/documents/{document}", get(document_download))
}

/// A published call's document, for anyone (a draft's, or an id that is none of the call's: 404), served as a
/// download: never inline, never sniffed, sandboxed.
async fn document_download(State(state): State<AppState>, Path((call, doc)): Path<(String, String)>) -> Result<axum::response::Response, PageError> {
    let call: CallId = call.trim().parse().map_err(|_| PageError::not_found())?;
    let doc: DocumentId = doc.trim().parse().map_err(|_| PageError::not_found())?;
    let (meta, data) = service::public_document(&state.db, call, doc).await?;
    Ok(crate::applications::api::download(&meta, data))
}

/// A document in the call's page.
pub struct DocumentLine {
    pub title: String,
    pub name: String,
    pub size: String,
    pub href: String,
}

/// A share in basis points as people read it: `33,33 %` (Italian) or `33.33%`-like with the language's separator.
pub fn percent(ctx: &PageCtx, bp: u32) -> String {
    let (whole, frac) = (bp / 100, bp % 100);
    let sep = if ctx.lang_code() == "it" { "," } else { "." };
    if frac == 0 { format!("{whole} %") } else { format!("{whole}{sep}{frac:02} %") }
}

/// A line of a call in the list.
pub struct CallLine {
    pub id: String,
    pub title: String,
    pub org: String,
    pub summary: String,
    pub budget: String,
    pub mode: String,
    pub opens: String,
    pub closes: String,
    /// For an upcoming call: "opens in N days".
    pub when: Option<String>,
}

/// The calls of one status.
pub struct Group {
    pub key: &'static str,
    pub title: String,
    pub calls: Vec<CallLine>,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_calls.html")]
struct ListPage {
    ctx: PageCtx,
    groups: Vec<Group>,
    empty: bool,
}

fn mode_text(ctx: &PageCtx, m: Mode) -> String {
    ctx.t(&format!("grp-mode-{}", m.as_str()))
}

/// "Opens in N days", or today's hour when it opens within a day.
fn opens_in(ctx: &PageCtx, opens_at: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (opens_at - now).whole_seconds().max(0);
    let days = (secs + 86_399) / 86_400;
    if secs < 86_400 {
        ctx.t1("grp-opens-within-a-day", "at", &clock::format_rome(opens_at))
    } else if days == 1 {
        ctx.t("grp-opens-in-one-day")
    } else {
        ctx.t1("grp-opens-in-days", "days", &days.to_string())
    }
}

fn line(ctx: &PageCtx, c: &Call, now: OffsetDateTime) -> CallLine {
    CallLine {
        id: c.id.to_string(),
        title: c.title.clone(),
        org: c.org_name.clone(),
        summary: c.summary.clone(),
        budget: Cents(c.budget_cents).to_string(),
        mode: mode_text(ctx, c.mode),
        opens: clock::format_rome(c.opens_at),
        closes: clock::format_rome(c.closes_at),
        when: (c.phase == Phase::Upcoming).then(|| opens_in(ctx, c.opens_at, now)),
    }
}

async fn list_page(State(state): State<AppState>, rc: RequestCtx) -> Result<ListPage, PageError> {
    let ctx = PageCtx::build(&state, &rc).await;
    let calls = service::public_list(&state.db).await?;
    let now = clock::now();
    let mut groups: Vec<Group> = [("open", Phase::Open), ("upcoming", Phase::Upcoming), ("closed", Phase::Closed)]
        .into_iter()
        .map(|(key, phase)| Group {
            key,
            title: ctx.t(&format!("grp-group-{key}")),
            calls: calls.iter().filter(|c| c.phase == phase).map(|c| line(&ctx, c, now)).collect(),
        })
        .collect();
    groups.retain(|g| !g.calls.is_empty());
    Ok(ListPage { empty: groups.is_empty(), groups, ctx })
}

/// A block of the call's text: a heading (a markdown `#` line) or a paragraph. Shown as text, never as HTML.
pub struct Block {
    pub heading: bool,
    pub text: String,
}

/// The call's text: blank lines part paragraphs, `#` lines are headings; the rest is shown as written.
pub fn blocks(body: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut Vec<Block>| {
        if !para.is_empty() {
            out.push(Block { heading: false, text: para.join("\n") });
            para.clear();
        }
    };
    for l in body.lines() {
        let t = l.trim();
        if t.is_empty() {
            flush(&mut para, &mut out);
        } else if t.starts_with('#') {
            flush(&mut para, &mut out);
            out.push(Block { heading: true, text: t.trim_start_matches('#').trim().to_owned() });
        } else {
            para.push(t);
        }
    }
    flush(&mut para, &mut out);
    out
}

pub struct BandRow {
    pub employees: String,
    pub amount: String,
}

pub struct CategoryRow {
    pub label: String,
    pub limit: Option<String>,
}

pub struct CompanyChoice {
    pub id: String,
    pub label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "grants_call.html")]
struct CallPage {
    ctx: PageCtx,
    id: String,
    title: String,
    org: String,
    summary: String,
    body: Vec<Block>,
    phase: String,
    when: Option<String>,
    budget: String,
    mode: String,
    mode_help: String,
    bands: Vec<BandRow>,
    /// For a share rule: the share and the cap, said.
    share: Option<String>,
    categories: Vec<CategoryRow>,
    min_employees: String,
    max_employees: Option<String>,
    excluded_sectors: Vec<String>,
    site_region: Option<String>,
    attachments: Vec<String>,
    de_minimis: bool,
    opens: String,
    closes: String,
    faqs: Vec<(String, String)>,
    documents: Vec<DocumentLine>,
    /// Whether applications may still be prepared or sent (not closed).
    can_apply: bool,
    companies: Vec<CompanyChoice>,
    login_href: String,
}

fn employees_range(ctx: &PageCtx, min: u32, max: Option<u32>) -> String {
    match max {
        Some(m) if m == min => min.to_string(),
        Some(m) => format!("{min}–{m}"),
        None => ctx.t1("grp-employees-and-more", "min", &min.to_string()),
    }
}

async fn call_page(State(state): State<AppState>, rc: RequestCtx, Path(id): Path<String>) -> Result<CallPage, PageError> {
    let id: CallId = id.trim().parse().map_err(|_| PageError::not_found())?;
    let c = service::public_get(&state.db, id).await?;
    let ctx = PageCtx::build(&state, &rc).await;
    let now = clock::now();
    let companies = match &rc.user {
        Some(u) => crate::companies::service::list(&state.db, &u.principal)
            .await?
            .into_iter()
            .map(|co| CompanyChoice { id: co.id.to_string(), label: format!("{} ({})", co.name, co.partita_iva) })
            .collect(),
        None => Vec::new(),
    };
    let (bands, share) = match &c.grant_rule {
        GrantRule::Bands { bands } => (
            bands.iter().map(|b| BandRow { employees: employees_range(&ctx, b.min_employees, b.max_employees), amount: b.amount.to_string() }).collect(),
            None,
        ),
        GrantRule::Share { basis_points, cap } => (
            Vec::new(),
            Some(ctx.lang.t_args("grp-grant-share", &[("share", percent(&ctx, *basis_points)), ("cap", cap.to_string())])),
        ),
    };
    let categories = c
        .categories
        .iter()
        .map(|k| CategoryRow { label: k.label.clone(), limit: k.max_share_bp.map(|bp| ctx.t1("grp-category-limit", "share", &percent(&ctx, bp))) })
        .collect();
    let site_region = c.eligibility.site_region.as_deref().map(|r| region_name(r).unwrap_or(r).to_owned());
    Ok(CallPage {
        id: c.id.to_string(),
        title: c.title.clone(),
        org: c.org_name.clone(),
        summary: c.summary.clone(),
        body: blocks(&c.body),
        phase: ctx.t(&format!("grp-phase-{}", match c.phase {
            Phase::Draft => "draft",
            Phase::Upcoming => "upcoming",
            Phase::Open => "open",
            Phase::Closed => "closed",
        })),
        when: (c.phase == Phase::Upcoming).then(|| opens_in(&ctx, c.opens_at, now)),
        budget: Cents(c.budget_cents).to_string(),
        mode: mode_text(&ctx, c.mode),
        mode_help: ctx.t(&format!("grp-mode-{}-help", c.mode.as_str())),
        bands,
        share,
        categories,
        min_employees: c.eligibility.min_employees.to_string(),
        max_employees: c.eligibility.max_employees.map(|m| m.to_string()),
        excluded_sectors: c.eligibility.excluded_sectors.clone(),
        site_region,
        attachments: c.required_attachments.iter().map(|a| a.label.clone()).collect(),
        de_minimis: c.de_minimis,
        opens: clock::format_rome(c.opens_at),
        closes: clock::format_rome(c.closes_at),
        faqs: c.faqs.iter().map(|f| (f.question.clone(), f.answer.clone())).collect(),
        documents: c
            .documents
            .iter()
            .map(|d| DocumentLine {
                title: d.title.clone(),
                name: d.name.clone(),
                size: super::staff_web::human_size(d.size),
                href: format!("/calls/{}/documents/{}", c.id, d.id),
            })
            .collect(),
        can_apply: c.phase != Phase::Closed,
        companies,
        login_href: format!("/login?next=%2Fcalls%2F{}", c.id),
        ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_becomes_headings_and_paragraphs() {
        let b = blocks("## Finalità\nSostenere\nlo smart working.\n\n\nAltro <b>testo</b>.\n# Fine");
        let got: Vec<(bool, &str)> = b.iter().map(|x| (x.heading, x.text.as_str())).collect();
        assert_eq!(got, [(true, "Finalità"), (false, "Sostenere\nlo smart working."), (false, "Altro <b>testo</b>."), (true, "Fine")]);
    }
}
