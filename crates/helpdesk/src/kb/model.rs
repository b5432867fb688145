//! The knowledge base's types: article ids, categories and states, the checked input of an article, search terms
//! made safe for both query languages, and markdown rendered to HTML with no raw HTML and only web/mail links.
//! No I/O here.

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

use agilekit_kernel::FieldErrors;

agilekit_kernel::typed_id!(
    /// A knowledge-base article.
    ArticleId
);

/// Field error codes of the knowledge base (localised as `field-<code>` in `locales/*/helpdesk_kb.ftl`).
pub mod codes {
    pub const REQUIRED: &str = "required";
    pub const TOO_LONG: &str = "too-long";
    pub const TOO_SHORT: &str = "too-short";
    pub const UNKNOWN_CATEGORY: &str = "kb-unknown-category";
    pub const BAD_TAG: &str = "kb-bad-tag";
    pub const TOO_MANY_TAGS: &str = "kb-too-many-tags";
}

pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 100_000;
pub const TAGS_MAX: usize = 10;
pub const TAG_MAX: usize = 40;
pub const COMMENT_MAX: usize = 2_000;
/// At most this many words of a query are searched; the rest is ignored.
pub const TERMS_MAX: usize = 12;
/// A word longer than this is cut (no Italian word is).
pub const TERM_MAX: usize = 60;

/// The same categories as tickets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Vpn,
    Workstation,
    Meetings,
    Elearning,
    Account,
    Other,
}

impl Category {
    pub const ALL: [Category; 6] =
        [Category::Vpn, Category::Workstation, Category::Meetings, Category::Elearning, Category::Account, Category::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Vpn => "vpn",
            Category::Workstation => "workstation",
            Category::Meetings => "meetings",
            Category::Elearning => "elearning",
            Category::Account => "account",
            Category::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        let s = s.trim();
        Category::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleState {
    Draft,
    Published,
}

impl ArticleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleState::Draft => "draft",
            ArticleState::Published => "published",
        }
    }
    pub fn parse(s: &str) -> Option<ArticleState> {
        match s {
            "draft" => Some(ArticleState::Draft),
            "published" => Some(ArticleState::Published),
            _ => None,
        }
    }
}

/// What an author submits (API and form alike): title, markdown body, category, tags separated by commas or spaces.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ArticleInput {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub category: String,
    /// Words separated by commas or spaces (letters, digits and `-`, at most 10 of 40 characters).
    #[serde(default)]
    pub tags: String,
}

/// An article's checked content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    pub title: String,
    pub body: String,
    pub category: Category,
    /// Lower case, unique, in the order given, joined by single spaces.
    pub tags: String,
}

impl Content {
    /// Checks every field, reporting all the complaints at once.
    pub fn parse(input: &ArticleInput) -> Result<Content, FieldErrors> {
        let mut errors = FieldErrors::new();
        // Control characters never reach storage (the search snippets use two of them as marks).
        let clean = |s: &str| s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect::<String>();
        let title = clean(&input.title).split_whitespace().collect::<Vec<_>>().join(" ");
        if title.is_empty() {
            errors.add("title", codes::REQUIRED);
        } else if title.chars().count() < 3 {
            errors.add("title", codes::TOO_SHORT);
        } else if title.chars().count() > TITLE_MAX {
            errors.add("title", codes::TOO_LONG);
        }
        let body = clean(&input.body.replace("\r\n", "\n"));
        let body = body.trim_end().to_owned();
        if body.trim().is_empty() {
            errors.add("body", codes::REQUIRED);
        } else if body.chars().count() > BODY_MAX {
            errors.add("body", codes::TOO_LONG);
        }
        let category = if input.category.trim().is_empty() {
            errors.add("category", codes::REQUIRED);
            None
        } else {
            let c = Category::parse(&input.category);
            if c.is_none() {
                errors.add("category", codes::UNKNOWN_CATEGORY);
            }
            c
        };
        let mut tags: Vec<String> = Vec::new();
        for t in input.tags.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            let t = t.to_lowercase();
            if t.chars().count() > TAG_MAX || !t.chars().all(|c| c.is_alphanumeric() || c == '-') {
                errors.add("tags", codes::BAD_TAG);
                break;
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if tags.len() > TAGS_MAX && errors.get("tags").is_none() {
            errors.add("tags", codes::TOO_MANY_TAGS);
        }
        match (errors.is_empty(), category) {
            (true, Some(category)) => Ok(Content { title, body, category, tags: tags.join(" ") }),
            _ => Err(errors),
        }
    }
}

/// A feedback comment: trimmed, at most [`COMMENT_MAX`] characters.
pub fn parse_comment(s: Option<&str>) -> Result<String, FieldErrors> {
    let c: String = s.unwrap_or("").chars().filter(|c| !c.is_control() || *c == '\n').collect();
    let c = c.trim();
    if c.chars().count() > COMMENT_MAX {
        let mut e = FieldErrors::new();
        e.add("comment", codes::TOO_LONG);
        return Err(e);
    }
    Ok(c.to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// Search terms

/// The words of a query, and nothing else: every character that is not a letter or a digit separates words, so
/// no operator, quote, column filter or wildcard of either query language can come through. Lower case, at most
/// [`TERMS_MAX`] words of at most [`TERM_MAX`] characters. Empty when the query has no word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms(Vec<String>);

/// How the words of a query combine: all of them (search), or any (suggestions while a subject is typed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    All,
    Any,
}

impl Terms {
    pub fn parse(q: &str) -> Terms {
        let mut out: Vec<String> = Vec::new();
        for w in q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let w: String = w.chars().take(TERM_MAX).collect::<String>().to_lowercase();
            if !out.contains(&w) {
                out.push(w);
            }
            if out.len() == TERMS_MAX {
                break;
            }
        }
        Terms(out)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn words(&self) -> &[String] {
        &self.0
    }
    /// An FTS5 query: each word double-quoted (a string, never an operator) and searched as a prefix.
    pub fn fts5(&self, how: Combine) -> String {
        let sep = if how == Combine::All { " " } else { " OR " };
        self.0.iter().map(|w| format!("\"{}\"*", w.replace('"', ""))).collect::<Vec<_>>().join(sep)
    }
    /// A `to_tsquery` text: each word (letters and digits only) as a prefix, stemmed by the Italian configuration.
    pub fn tsquery(&self, how: Combine) -> String {
        let sep = if how == Combine::All { " & " } else { " | " };
        self.0.iter().map(|w| format!("{w}:*")).collect::<Vec<_>>().join(sep)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

/// Whether a link or image target may be rendered: absolute `http`, `https` or `mailto` URLs only.
pub fn safe_url(url: &str) -> bool {
    let u = url.trim();
    let Some(colon) = u.find(':') else { return false };
    let scheme = &u[..colon];
    scheme.chars().all(|c| c.is_ascii_alphanumeric())
        && matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https" | "mailto")
}

/// Markdown to HTML that can go into a page as is: raw HTML in the source comes out as visible text, links and images
/// with another scheme (`javascript:`, `data:`, relative…) come out as their text only.
pub fn render_markdown(src: &str) -> String {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // For each open link or image: whether it was kept (so that its end is kept or dropped alike).
    let mut kept: Vec<bool> = Vec::new();
    let events = Parser::new_ext(src, opts).filter_map(|ev| match ev {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            // An e-mail autolink (`<help@example.org>`) carries the bare address; the renderer adds `mailto:`.
            let ok = link_type == LinkType::Email || safe_url(&dest_url);
            kept.push(ok);
            ok.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let ok = safe_url(&dest_url) && !dest_url.trim().to_ascii_lowercase().starts_with("mailto:");
            kept.push(ok);
            ok.then_some(Event::Start(Tag::Image { link_type, dest_url, title, id }))
        }
        Event::End(end @ (TagEnd::Link | TagEnd::Image)) => kept.pop().unwrap_or(false).then_some(Event::End(end)),
        other => Some(other),
    });
    let mut html = String::with_capacity(src.len() + src.len() / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// The first characters of a body as plain text (for lists): markdown marks removed, whitespace folded.
pub fn excerpt(body: &str, max: usize) -> String {
    let mut text = String::new();
    for ev in Parser::new(body) {
        match ev {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak | Event::End(_) => text.push(' '),
            _ => {}
        }
        if text.len() > max * 4 {
            break;
        }
    }
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= max {
        folded
    } else {
        let mut s: String = folded.chars().take(max).collect();
        s.push('…');
        s
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_keep_words_only() {
        assert!(Terms::parse("\" * : ' - AND OR NOT").words() == ["and", "or", "not"]);
        assert!(Terms::parse("  ---  ").is_empty());
        assert_eq!(Terms::parse("VPN: connessione!").fts5(Combine::All), "\"vpn\"* \"connessione\"*");
        assert_eq!(Terms::parse("dell'account").tsquery(Combine::Any), "dell:* | account:*");
        assert_eq!(Terms::parse(&"parola ".repeat(2000)).words().len(), 1);
    }

    #[test]
    fn markdown_has_no_raw_html_nor_script_links() {
        let h = render_markdown("ciao <script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://a.example) ![i](data:x)");
        assert!(!h.contains("<script"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(!h.contains("data:"), "{h}");
        assert!(h.contains("href=\"https://a.example\""), "{h}");
        assert!(!safe_url("JaVa\tScript:alert(1)"));
        let h = render_markdown("<help@example.org> <javascript:alert(1)> [r]\n\n[r]: vbscript:x");
        assert!(h.contains("href=\"mailto:help@example.org\""), "{h}");
        assert!(!h.contains("href=\"javascript") && !h.contains("vbscript"), "{h}");
        assert!(safe_url("MAILTO:help@example.org"));
    }

    #[test]
    fn content_reports_every_field() {
        let e = Content::parse(&ArticleInput { title: "x".into(), body: " ".into(), category: "nope".into(), tags: "a<b".into() }).unwrap_err();
        for f in ["title", "body", "category", "tags"] {
            assert!(e.get(f).is_some(), "{f}");
        }
    }
}
