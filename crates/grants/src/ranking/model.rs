//! The graduatoria's arithmetic and input parsing, no I/O: an evaluator's points as typed, the mean per criterion,
//! the ranking (`allocation::rank`) and where publication places each application.

use std::collections::BTreeMap;

use agilekit_kernel::FieldErrors;
use serde::{Deserialize, Serialize};

use crate::allocation::{Pot, Scored, rank};
use crate::calls::model::Criterion;
use crate::model::Cents;

/// The longest note an evaluator may write beside a criterion.
pub const NOTE_MAX: usize = 2_000;
/// The longest reason for a conflict of interest.
pub const REASON_MAX: usize = 2_000;

/// A declaration about conflicts of interest, as typed: `conflict` false ("no conflict") or true with a reason.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DeclarationInput {
    pub conflict: bool,
    pub reason: String,
}

impl DeclarationInput {
    /// The reason to keep (none without a conflict).
    pub fn validate(&self) -> Result<Option<String>, FieldErrors> {
        if !self.conflict {
            return Ok(None);
        }
        let r = self.reason.trim();
        let mut e = FieldErrors::new();
        if r.is_empty() {
            e.add("reason", "required");
        } else if r.chars().count() > REASON_MAX {
            e.add("reason", "too-long");
        }
        if e.is_empty() { Ok(Some(r.to_owned())) } else { Err(e) }
    }
}

/// Points as sent: a JSON number or the text typed in a form.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Points {
    Number(i64),
    Text(String),
}

/// An evaluator's scores, as typed: points and an optional note per criterion code.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ScoresInput {
    /// Whole points per criterion code, from 0 to the criterion's `max_points` (a number, or the text typed).
    #[schema(value_type = Object)]
    pub scores: BTreeMap<String, Points>,
    #[schema(value_type = Object)]
    pub notes: BTreeMap<String, String>,
}

/// A criterion's points and note, valid against the grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Score {
    pub criterion: String,
    pub points: i64,
    pub note: String,
}

impl ScoresInput {
    /// Every criterion of the grid scored with whole points in 0..=max; errors by criterion code
    /// (`scores.qualita`: `required`, `not-a-number`, `out-of-range`; `scores.x`: `unknown-criterion`;
    /// `notes.qualita`: `too-long`).
    pub fn validate(&self, grid: &[Criterion]) -> Result<Vec<Score>, FieldErrors> {
        let mut e = FieldErrors::new();
        let mut out = Vec::new();
        for c in grid {
            let field = format!("scores.{}", c.code);
            let points = match self.scores.get(&c.code) {
                None => {
                    e.add(&field, "required");
                    continue;
                }
                Some(Points::Number(n)) => Some(*n),
                Some(Points::Text(t)) if t.trim().is_empty() => {
                    e.add(&field, "required");
                    continue;
                }
                Some(Points::Text(t)) => t.trim().parse::<i64>().ok(),
            };
            let note = self.notes.get(&c.code).map(|n| n.trim().to_owned()).unwrap_or_default();
            if note.chars().count() > NOTE_MAX {
                e.add(&format!("notes.{}", c.code), "too-long");
            }
            match points {
                None => e.add(&field, "not-a-number"),
                Some(p) if p < 0 || p > i64::from(c.max_points) => e.add(&field, "out-of-range"),
                Some(p) => out.push(Score { criterion: c.code.clone(), points: p, note }),
            }
        }
        for k in self.scores.keys().chain(self.notes.keys()) {
            if !grid.iter().any(|c| &c.code == k) {
                let field = format!("scores.{k}");
                if e.get(&field).is_none() {
                    e.add(&field, "unknown-criterion");
                }
            }
        }
        if e.is_empty() { Ok(out) } else { Err(e) }
    }
}

/// The mean of the evaluators' points, in hundredths of a point, rounded half up (`7, 8, 8` → 766.67 → `767`):
/// kept exactly as an integer so that sums, ties and the published list agree everywhere. None without points.
pub fn mean_hundredths(points: &[i64]) -> Option<i64> {
    let n = points.len() as i64;
    if n == 0 {
        return None;
    }
    let sum: i64 = points.iter().sum();
    // floor(sum * 100 / n + 1/2) for non-negative points.
    Some((2 * 100 * sum + n).div_euclid(2 * n))
}

/// An application's points by evaluator, for the ranking.
#[derive(Clone, Debug)]
pub struct Sheet<K> {
    pub key: K,
    pub protocol: i64,
    /// (evaluator, criterion, points) of the evaluators who scored it (conflicted evaluators' scores are gone).
    pub points: Vec<(String, String, i64)>,
}

/// An application's result: the mean per criterion (hundredths, in the grid's order), the total, how many
/// evaluators scored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally<K> {
    pub key: K,
    pub protocol: i64,
    pub criteria: Vec<(String, i64)>,
    pub total: i64,
    pub evaluators: usize,
}

/// The results of the scored applications in ranking order (total, then the tie-break criteria in the call's order,
/// then the lower protocol); the applications nobody has scored are returned apart: they cannot be ranked.
pub fn ranking<K: Clone>(grid: &[Criterion], tie_breaks: &[String], sheets: &[Sheet<K>]) -> (Vec<Tally<K>>, Vec<K>) {
    let mut scored = Vec::new();
    let mut unscored = Vec::new();
    for s in sheets {
        let mut evaluators: Vec<&str> = s.points.iter().map(|p| p.0.as_str()).collect();
        evaluators.sort_unstable();
        evaluators.dedup();
        if evaluators.is_empty() {
            unscored.push(s.key.clone());
            continue;
        }
        let criteria: Vec<(String, i64)> = grid
            .iter()
            .map(|c| {
                let pts: Vec<i64> = s.points.iter().filter(|p| p.1 == c.code).map(|p| p.2).collect();
                (c.code.clone(), mean_hundredths(&pts).unwrap_or(0))
            })
            .collect();
        let total = criteria.iter().map(|c| c.1).sum();
        scored.push(Tally { key: s.key.clone(), protocol: s.protocol, criteria, total, evaluators: evaluators.len() });
    }
    let entries = scored
        .into_iter()
        .map(|r| {
            let tb = tie_breaks.iter().map(|t| r.criteria.iter().find(|c| &c.0 == t).map_or(0, |c| c.1)).collect();
            Scored { score: r.total, tie_breaks: tb, protocol: r.protocol, key: r }
        })
        .collect();
    (rank(entries).into_iter().map(|s| s.key).collect(), unscored)
}

/// Where publication places the ranked applications (amounts in ranking order), from the call's pot.
///
/// Strictly in order, as a sportello and as `applications::service::draw` does (the usual Italian practice for a
/// graduatoria): money goes down the ranking while each application's amount fits; the first that does not fit,
/// and every one after it, waits as "ammissibile non finanziata" for money to come back, so that a lower-ranked,
/// smaller application never gets money before a higher-ranked one. Returns how many of the first are admitted.
pub fn publish(pot: &mut Pot, amounts: &[Cents]) -> usize {
    pot.draw(amounts)
}

/// A score in hundredths of a point as people read it: `11,50`.
pub fn points_text(hundredths: i64) -> String {
    format!("{},{:02}", hundredths / 100, (hundredths % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<Criterion> {
        vec![
            Criterion { code: "qualita".into(), label: "Qualità".into(), max_points: 10 },
            Criterion { code: "impatto".into(), label: "Impatto".into(), max_points: 5 },
        ]
    }

    #[test]
    fn the_mean_is_kept_in_hundredths_rounded_half_up() {
        assert_eq!(mean_hundredths(&[]), None);
        assert_eq!(mean_hundredths(&[7]), Some(700));
        assert_eq!(mean_hundredths(&[7, 8]), Some(750));
        assert_eq!(mean_hundredths(&[7, 8, 8]), Some(767), "766.67 rounds up");
        assert_eq!(mean_hundredths(&[7, 7, 8]), Some(733), "733.33 rounds down");
        // 1/8 = 0.125 → 12.5 hundredths → 13 (half up).
        assert_eq!(mean_hundredths(&[1, 0, 0, 0, 0, 0, 0, 0]), Some(13));
        assert_eq!(mean_hundredths(&[0, 0]), Some(0));
    }

    #[test]
    fn scores_are_checked_by_criterion_code() {
        let ok = ScoresInput { scores: [("qualita".into(), Points::Text(" 10 ".into())), ("impatto".into(), Points::Number(0))].into(), notes: [("qualita".into(), " buono ".into())].into() };
        assert_eq!(ok.validate(&grid()).unwrap(), vec![
            Score { criterion: "qualita".into(), points: 10, note: "buono".into() },
            Score { criterion: "impatto".into(), points: 0, note: String::new() },
        ]);
        let bad = ScoresInput { scores: [("qualita".into(), Points::Number(11)), ("extra".into(), Points::Number(1))].into(), notes: BTreeMap::new() };
        let e = bad.validate(&grid()).unwrap_err();
        assert_eq!(e.get("scores.qualita"), Some("out-of-range"));
        assert_eq!(e.get("scores.impatto"), Some("required"));
        assert_eq!(e.get("scores.extra"), Some("unknown-criterion"));
        let bad = ScoresInput { scores: [("qualita".into(), Points::Text("7,5".into())), ("impatto".into(), Points::Number(-1))].into(), notes: BTreeMap::new() };
        let e = bad.validate(&grid()).unwrap_err();
        assert_eq!((e.get("scores.qualita"), e.get("scores.impatto")), (Some("not-a-number"), Some("out-of-range")));
    }

    #[test]
    fn the_ranking_follows_totals_then_tie_breaks_then_protocol() {
        let p = |e: &str, c: &str, n: i64| (e.to_owned(), c.to_owned(), n);
        let sheets = vec![
            // a: 8 + 3 = 11.00
            Sheet { key: "a", protocol: 1, points: vec![p("x", "qualita", 8), p("x", "impatto", 3)] },
            // b: mean 9,  mean 2.5 → 11.50
            Sheet { key: "b", protocol: 2, points: vec![p("x", "qualita", 9), p("x", "impatto", 2), p("y", "qualita", 9), p("y", "impatto", 3)] },
            // c: 7 + 4 = 11.00, ties with a; impatto breaks the tie in c's favour.
            Sheet { key: "c", protocol: 3, points: vec![p("y", "qualita", 7), p("y", "impatto", 4)] },
            // d: same as a, later protocol.
            Sheet { key: "d", protocol: 4, points: vec![p("x", "qualita", 8), p("x", "impatto", 3)] },
            Sheet { key: "e", protocol: 5, points: vec![] },
        ];
        let (ranked, unscored) = ranking(&grid(), &["impatto".into()], &sheets);
        let keys: Vec<&str> = ranked.iter().map(|r| r.key).collect();
        assert_eq!(keys, ["b", "c", "a", "d"]);
        assert_eq!(unscored, ["e"]);
        assert_eq!((ranked[0].total, ranked[0].evaluators, ranked[0].criteria.clone()), (1_150, 2, vec![("qualita".into(), 900), ("impatto".into(), 250)]));
        // Without tie-breaks, the protocol decides between a and c.
        let (ranked, _) = ranking(&grid(), &[], &sheets);
        let keys: Vec<&str> = ranked.iter().map(|r| r.key).collect();
        assert_eq!(keys, ["b", "a", "c", "d"]);
    }

    #[test]
    fn publication_funds_strictly_down_the_ranking() {
        let mut pot = Pot::new(Cents::euros(25_000));
        let amounts = [Cents::euros(10_000), Cents::euros(10_000), Cents::euros(7_500), Cents::euros(2_000)];
        // 20,000 committed; 7,500 does not fit in 5,000 left: it waits and so does the smaller 2,000 after it.
        assert_eq!(publish(&mut pot, &amounts), 2);
        assert_eq!(pot.committed, Cents::euros(20_000));
        assert!(pot.committed <= pot.budget);
        let mut pot = Pot::new(Cents::euros(100_000));
        assert_eq!(publish(&mut pot, &amounts), 4);
        assert_eq!(pot.left(), Cents::euros(70_500));
    }
}
