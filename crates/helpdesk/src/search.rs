//! Full-text search of the agents' queue: the query text (user input, any bytes) reduced to plain words, so that
//! neither FTS5's query syntax (quotes, `*`, `NEAR(`, `OR`, column filters) nor PostgreSQL's tsquery syntax ever
//! sees it. Words are runs of letters and digits (what unicode61 and the Italian parser index), lowercased; the
//! words must all match (AND), each in the subject or in any message of the ticket.
//! - PostgreSQL: the words joined by spaces go to `plainto_tsquery('italian', …)`, which stems them like the index
//!   ("stampanti" and "stampante" are both `stampant`) and drops stop words.
//! - SQLite: FTS5 has no Italian stemmer, so a word of five letters or more ending in a vowel matches its other
//!   endings (plural and gender): "stampanti" finds "stampante", "connessione" finds "connessioni". A poor man's
//!   stemmer: no prefixes (see [`Words::fts5_each`]), no irregular plurals. The endings are folded at query time
//!   (an OR of the four forms of the word), not at index time: the index holds the words as written, so that it
//!   is built by triggers in SQL alone (no function of ours in the database), and what it finds is exactly what
//!   0009's index found. The cost is small: three of the four forms are usually absent from the index (an empty
//!   list each), and FTS5 merges the others as it walks. The query is one FTS5 expression with the queue's
//!   filters as tokens of another column ([`fts5_match`], migration 0012), run in the index's rowid order, which is
//!   the queue's order.

/// At most this many characters of query text are read, and this many words kept.
pub const MAX_CHARS: usize = 200;
pub const MAX_WORDS: usize = 8;

/// The words of a query; empty when it has none (only punctuation, say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

impl Words {
    pub fn parse(q: &str) -> Words {
        let mut out: Vec<String> = Vec::new();
        for w in q.split(|c: char| !c.is_alphanumeric()) {
            if w.is_empty() {
                continue;
            }
            let w = w.to_lowercase();
            if !out.contains(&w) {
                out.push(w);
            }
            if out.len() == MAX_WORDS {
                break;
            }
        }
        Words(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text for `plainto_tsquery`.
    pub fn plain(&self) -> String {
        self.0.join(" ")
    }

    /// An FTS5 MATCH expression a word (quoted terms only: no syntax of the user's reaches FTS5). A word of five
    /// letters or more ending in a vowel matches its four endings: "stampanti" is
    /// `("stampanta" OR "stampante" OR "stampanti" OR "stampanto")`. Exact terms, not prefix queries: FTS5 checks
    /// a term against one document by a seek in its list, where a prefix query merges the lists of every word with
    /// that prefix first, on each check.
    pub fn fts5_each(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|w| {
                let base = fold(w);
                if base.chars().count() == w.chars().count() {
                    format!("\"{w}\"")
                } else {
                    let forms: Vec<String> = ["a", "e", "i", "o"].iter().map(|v| format!("\"{base}{v}\"")).collect();
                    format!("({})", forms.join(" OR "))
                }
            })
            .collect()
    }
}

/// The values a queue is filtered by, as the SQLite index's `keys` column holds them (migration 0012): a letter
/// naming the filter and the value's bytes in hex, so that no value (nor a word of the text: that is another
/// column) is ever taken for another.
pub fn key_token(kind: char, bytes: &[u8]) -> String {
    let mut s = String::with_capacity(1 + 2 * bytes.len());
    s.push(kind);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The FTS5 MATCH expression of a SQLite search: every key token in the `keys` column and every word (with its
/// other endings, [`Words::fts5_each`]) in the `words` column. Only quoted terms of our making: nothing the user
/// typed is FTS5 syntax.
pub fn fts5_match(words: &Words, keys: &[String]) -> String {
    let mut parts = Vec::new();
    if !keys.is_empty() {
        let k: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
        parts.push(format!("keys:({})", k.join(" AND ")));
    }
    if !words.is_empty() {
        parts.push(format!("words:({})", words.fts5_each().join(" AND ")));
    }
    parts.join(" AND ")
}

/// Drops one final vowel of a word of five letters or more (Italian plural and gender endings).
fn fold(w: &str) -> String {
    let n = w.chars().count();
    match w.chars().last() {
        Some('a' | 'e' | 'i' | 'o' | 'à' | 'è' | 'é' | 'ì' | 'ò' | 'ù') if n >= 5 => {
            let mut s = w.to_owned();
            s.pop();
            s
        }
        _ => w.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_strip_all_syntax() {
        assert_eq!(Words::parse("\" * NEAR( OR OR \0 col:x -y").0, vec!["near", "or", "col", "x", "y"]);
        assert!(Words::parse("\"*()^:-").is_empty());
        assert_eq!(
            Words::parse("Stampanti dell'ufficio").fts5_each(),
            [r#"("stampanta" OR "stampante" OR "stampanti" OR "stampanto")"#, r#""dell""#, r#"("ufficia" OR "ufficie" OR "ufficii" OR "ufficio")"#]
        );
        assert_eq!(Words::parse("VPN vpn").plain(), "vpn");
        assert_eq!(
            fts5_match(&Words::parse("Stampanti vpn"), &[key_token('o', &[0x01, 0xab]), key_token('s', b"open")]),
            r#"keys:("o01ab" AND "s6f70656e") AND words:(("stampanta" OR "stampante" OR "stampanti" OR "stampanto") AND "vpn")"#
        );
        assert_eq!(Words::parse(&"a ".repeat(50)).0.len(), 1);
        assert_eq!(Words::parse("uno due tre quattro cinque sei sette otto nove").0.len(), MAX_WORDS);
    }
}
