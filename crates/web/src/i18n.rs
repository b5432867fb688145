//! Translations: Fluent files under `locales/{it,en}/` (one file per area), Italian first. The language of a
//! request comes from the session, else the account, else the `lang` cookie, else Accept-Language.

use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{Loader, static_loader};

static_loader! {
    static LOCALES = {
        locales: "../../locales",
        fallback_language: "it",
        // Unicode isolation marks around placeables would end up inside attributes and e-mail text.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::It, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("it") => Some(Lang::It),
            Some("en") => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language in an Accept-Language header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                .unwrap_or(1.0);
            if let Some(l) = Lang::parse(tag) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l)
    }

    fn langid(self) -> fluent_templates::LanguageIdentifier {
        match self {
            Lang::It => fluent_templates::langid!("it"),
            Lang::En => fluent_templates::langid!("en"),
        }
    }

    /// The message `key`; the key itself when no file has it, so a missing translation shows, not crashes.
    /// Messages without arguments never change while the process runs, so each is formatted once per language
    /// (a page asks for dozens of them).
    pub fn t(self, key: &str) -> String {
        static MEMO: [std::sync::RwLock<Option<HashMap<String, String>>>; 2] =
            [std::sync::RwLock::new(None), std::sync::RwLock::new(None)];
        let memo = &MEMO[self as usize];
        if let Some(v) = memo.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().and_then(|m| m.get(key)) {
            return v.clone();
        }
        // Only keys that exist are kept (some keys are built from a query parameter): the memo cannot outgrow the
        // translation files.
        let Some(v) = LOCALES.try_lookup(&self.langid(), key) else { return key.to_owned() };
        memo.write().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert_with(HashMap::new).insert(key.to_owned(), v.clone());
        v
    }

    pub fn t_args(self, key: &str, args: &[(&str, String)]) -> String {
        let map: HashMap<std::borrow::Cow<'static, str>, FluentValue<'_>> =
            args.iter().map(|(k, v)| (std::borrow::Cow::Owned((*k).to_owned()), FluentValue::from(v.clone()))).collect();
        LOCALES.try_lookup_with_args(&self.langid(), key, &map).unwrap_or_else(|| key.to_owned())
    }

    /// Whether `key` exists in this language (used by the test that every key is translated).
    pub fn has(self, key: &str) -> bool {
        LOCALES.try_lookup(&self.langid(), key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9,it;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de-DE,it;q=0.5,en;q=0.4"), Some(Lang::It));
        assert_eq!(Lang::from_accept_language("de-DE,fr"), None);
    }

    #[test]
    fn messages_exist_in_both_languages_and_differ() {
        assert_eq!(Lang::It.t("nav-home"), "Home");
        assert_eq!(Lang::It.t("login-title"), "Accedi");
        assert_eq!(Lang::En.t("login-title"), "Sign in");
        assert_eq!(Lang::En.t("no-such-key"), "no-such-key");
    }

    /// The message ids of every `.ftl` file of one language: file name and id, in file order.
    fn ids(lang: &str) -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../locales").join(lang);
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let mut out = Vec::new();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "ftl")) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                let Some((id, _)) = line.split_once('=') else { continue };
                let id = id.trim_end();
                if !id.is_empty() && id.chars().next().unwrap().is_ascii_lowercase() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    out.push((name.clone(), id.to_owned()));
                }
            }
        }
        out
    }

    /// A message id defined twice makes fluent-templates panic at the first page request (the connection drops), and
    /// a message in one language only shows its key in the other: both are caught here, before a person sees them.
    #[test]
    fn every_message_is_defined_once_and_in_both_languages() {
        let mut by_lang = Vec::new();
        for lang in ["it", "en"] {
            let mut seen = std::collections::HashMap::new();
            for (file, id) in ids(lang) {
                if let Some(first) = seen.insert(id.clone(), file.clone()) {
                    panic!("{lang}: `{id}` is defined in {first} and again in {file}");
                }
            }
            assert!(seen.len() > 100, "{lang}: only {} messages read", seen.len());
            by_lang.push(seen.into_keys().collect::<std::collections::BTreeSet<_>>());
        }
        let only_it: Vec<_> = by_lang[0].difference(&by_lang[1]).collect();
        let only_en: Vec<_> = by_lang[1].difference(&by_lang[0]).collect();
        assert!(only_it.is_empty() && only_en.is_empty(), "only in Italian: {only_it:?}; only in English: {only_en:?}");
    }
}
