//! Tickets: the help desk's types. A ticket belongs to one organisation, is numbered within it ("#123"), and moves
//! through new → open ⇄ pending → resolved → closed (or merged into another); its messages are public replies or
//! internal notes. No I/O here.

use agilekit_kernel::FieldErrors;
use serde::{Deserialize, Serialize};

pub use crate::sla::Priority;

agilekit_kernel::typed_id!(
    /// A help-desk ticket.
    TicketId
);
agilekit_kernel::typed_id!(
    /// A message of a ticket (public reply or internal note).
    MessageId
);

/// How many days after its resolution a ticket may still be reopened (by the requester's reply or an agent).
pub const REOPEN_DAYS: i64 = 7;
pub const SUBJECT_MAX: usize = 200;
pub const BODY_MAX: usize = 20_000;
pub const TAGS_MAX: usize = 10;
pub const TAG_MAX: usize = 32;
/// The most ids a bulk action takes at once.
pub const BULK_MAX: usize = 200;

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($v),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|x| x.as_str() == s)
            }
        }
    };
}

text_enum!(
    /// What a ticket is about.
    Category { Vpn = "vpn", Workstation = "workstation", Meetings = "meetings", Elearning = "elearning", Account = "account", Other = "other" }
);
text_enum!(
    /// Where a ticket stands. `pending` waits on the requester (the resolution clock stands still).
    State { New = "new", Open = "open", Pending = "pending", Resolved = "resolved", Closed = "closed", Merged = "merged" }
);
text_enum!(
    /// Whose queue a ticket is in: the organisation's own, or the operator's second level after escalation.
    Queue { Org = "org", Operator = "operator" }
);
text_enum!(
    /// A public reply (the requester sees it) or an internal note (agents only).
    MessageKind { Reply = "reply", Note = "note" }
);

impl State {
    /// Still being worked on: the SLA clocks may run.
    pub fn is_active(self) -> bool {
        matches!(self, State::New | State::Open | State::Pending)
    }
}

pub fn parse_priority(s: &str) -> Option<Priority> {
    Priority::ALL.into_iter().find(|p| p.as_str() == s)
}

/// A subject: trimmed, one line, 1..=200 characters.
pub fn parse_subject(errors: &mut FieldErrors, field: &str, s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        errors.add(field, "required");
        None
    } else if s.chars().count() > SUBJECT_MAX {
        errors.add(field, "too-long");
        None
    } else if s.chars().any(char::is_control) {
        errors.add(field, "format");
        None
    } else {
        Some(s.to_owned())
    }
}

/// A message body: trimmed, 1..=20,000 characters.
pub fn parse_body(errors: &mut FieldErrors, field: &str, s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        errors.add(field, "required");
        None
    } else if s.chars().count() > BODY_MAX {
        errors.add(field, "too-long");
        None
    } else {
        Some(s.to_owned())
    }
}

/// Tags: lowercase letters, digits and dashes, at most 32 characters each and 10 in all; duplicates dropped.
pub fn parse_tags(errors: &mut FieldErrors, tags: &[String]) -> Option<Vec<String>> {
    let before = errors.0.len();
    if tags.len() > TAGS_MAX {
        errors.add("tags", "too-long");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim().to_lowercase();
        let ok = !t.is_empty()
            && t.chars().count() <= TAG_MAX
            && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            errors.add(&format!("tags[{i}]"), "format");
        } else if !out.contains(&t) {
            out.push(t);
        }
    }
    (errors.0.len() == before).then_some(out)
}

/// The ticket's reference as people say it.
pub fn reference(number: i64) -> String {
    format!("#{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_refuse_unknowns() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(*c));
        }
        assert_eq!(State::parse("merged"), Some(State::Merged));
        assert_eq!(State::parse("Open"), None);
        assert_eq!(parse_priority("urgent"), Some(Priority::Urgent));
        assert_eq!(parse_priority("asap"), None);
    }

    #[test]
    fn subjects_bodies_and_tags_are_checked() {
        let mut e = FieldErrors::new();
        assert_eq!(parse_subject(&mut e, "subject", "  VPN down "), Some("VPN down".into()));
        assert!(parse_subject(&mut e, "subject", "  ").is_none());
        assert!(parse_subject(&mut e, "subject", &"x".repeat(201)).is_none());
        assert!(parse_body(&mut e, "body", "").is_none());
        assert_eq!(e.0.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(), ["required", "too-long", "required"]);
        let mut e = FieldErrors::new();
        assert_eq!(parse_tags(&mut e, &["VPN".into(), "vpn".into(), "rete-2".into()]), Some(vec!["vpn".into(), "rete-2".into()]));
        assert!(parse_tags(&mut e, &["bad tag".into()]).is_none());
        assert_eq!(e.get("tags[0]"), Some("format"));
    }
}
