//! Who gets the money. A call's applications stand in one order: protocol order for a call a sportello, the
//! ranking for a call by graduatoria. Money goes down that order while it lasts; the first application that does
//! not fit, and every one after it, waits on the overbooking list, and a later, smaller application never jumps
//! ahead of an earlier one. When money comes back (a withdrawal, an inadmissible application, a budget increase) the
//! list is drawn from its head by the same rule.
//!
//! Invariant (checked by the property test below against a model that recomputes everything from scratch): the
//! admitted applications are exactly the longest prefix of the live applications, in order, whose amounts fit in the
//! budget; so the committed amount never exceeds the budget. The service applies these steps under the call's row
//! lock (ADR 0008); this module is the arithmetic, with no I/O.

use crate::model::Cents;
use serde::Serialize;

/// The call's money: the budget and what admitted applications hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Pot {
    pub budget: Cents,
    pub committed: Cents,
}

/// Where a new application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Admitted,
    Waiting,
}

/// A budget may not go below what is already committed (admissions are not taken back by a budget cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("the budget cannot go below the {committed} already committed")]
pub struct BelowCommitted {
    pub committed: Cents,
}

impl Pot {
    pub fn new(budget: Cents) -> Pot {
        Pot { budget, committed: Cents::ZERO }
    }

    pub fn left(&self) -> Cents {
        self.budget - self.committed
    }

    /// The place of a new application, the last in the call's order: admitted when nobody waits and it fits.
    pub fn place(&mut self, anyone_waiting: bool, amount: Cents) -> Place {
        if !anyone_waiting && amount <= self.left() {
            self.committed = self.committed + amount;
            Place::Admitted
        } else {
            Place::Waiting
        }
    }

    /// An admitted application gives its money back (withdrawn, inadmissible, or granted less than it held).
    pub fn release(&mut self, amount: Cents) {
        self.committed = Cents((self.committed - amount).0.max(0));
    }

    pub fn set_budget(&mut self, budget: Cents) -> Result<(), BelowCommitted> {
        if budget < self.committed {
            return Err(BelowCommitted { committed: self.committed });
        }
        self.budget = budget;
        Ok(())
    }

    /// Draws the waiting list (amounts in the call's order) from its head while the head fits: how many of its
    /// first entries are admitted now.
    pub fn draw(&mut self, waiting: &[Cents]) -> usize {
        let mut n = 0;
        for &a in waiting {
            if a > self.left() {
                break;
            }
            self.committed = self.committed + a;
            n += 1;
        }
        n
    }
}

/// An application in a ranking: its total score (in hundredths of a point), the scores that break ties in the
/// order the call lists them, and its protocol number (the last tie-break: who applied first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scored<K> {
    pub key: K,
    pub score: i64,
    pub tie_breaks: Vec<i64>,
    pub protocol: i64,
}

/// The ranking: highest score first, then each tie-break score highest first, then the lower protocol number.
pub fn rank<K>(mut entries: Vec<Scored<K>>) -> Vec<Scored<K>> {
    entries.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| b.tie_breaks.cmp(&a.tie_breaks)).then_with(|| a.protocol.cmp(&b.protocol)));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The live applications in order, each with its amount and whether the pot admitted it.
    #[derive(Clone, Debug)]
    struct App {
        amount: Cents,
        admitted: bool,
    }

    /// The model: the longest prefix whose running sum fits in the budget is admitted, nothing else.
    fn model(apps: &[App], budget: Cents) -> Vec<bool> {
        let mut sum = Cents::ZERO;
        let mut open = true;
        apps.iter()
            .map(|a| {
                if open && sum + a.amount <= budget {
                    sum = sum + a.amount;
                    true
                } else {
                    open = false;
                    false
                }
            })
            .collect()
    }

    /// Random interleavings of submissions, withdrawals (admitted or waiting), inadmissible admitted applications
    /// and budget changes, applied the way the service applies them; after every step the pot agrees with the
    /// model and never holds more than its budget.
    #[test]
    fn the_budget_is_never_exceeded_and_order_is_kept_under_any_interleaving() {
        for seed in 0..400u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut pot = Pot::new(Cents(rng.random_range(0..=60)));
            let mut apps: Vec<App> = Vec::new();
            for step in 0..rng.random_range(1..80) {
                match rng.random_range(0..10) {
                    0..=4 => {
                        let amount = Cents(rng.random_range(1..=20));
                        let anyone_waiting = apps.iter().any(|a| !a.admitted);
                        let place = pot.place(anyone_waiting, amount);
                        apps.push(App { amount, admitted: place == Place::Admitted });
                    }
                    5..=7 if !apps.is_empty() => {
                        // Withdrawn or inadmissible: gone from the order; its money (if any) back, then a draw.
                        let i = rng.random_range(0..apps.len());
                        let gone = apps.remove(i);
                        if gone.admitted {
                            pot.release(gone.amount);
                        }
                        draw(&mut pot, &mut apps);
                    }
                    _ => {
                        let budget = Cents(rng.random_range(0..=80));
                        match pot.set_budget(budget) {
                            Ok(()) => draw(&mut pot, &mut apps),
                            Err(e) => assert!(budget < e.committed),
                        }
                    }
                }
                let admitted: Vec<bool> = apps.iter().map(|a| a.admitted).collect();
                assert_eq!(admitted, model(&apps, pot.budget), "seed {seed} step {step}: {apps:?} {pot:?}");
                let held: Cents = apps.iter().filter(|a| a.admitted).map(|a| a.amount).sum();
                assert_eq!(held, pot.committed, "seed {seed} step {step}");
                assert!(pot.committed <= pot.budget, "seed {seed} step {step}");
            }
        }
    }

    fn draw(pot: &mut Pot, apps: &mut [App]) {
        let first_waiting = apps.iter().position(|a| !a.admitted).unwrap_or(apps.len());
        let amounts: Vec<Cents> = apps[first_waiting..].iter().map(|a| a.amount).collect();
        let n = pot.draw(&amounts);
        for a in &mut apps[first_waiting..first_waiting + n] {
            a.admitted = true;
        }
    }

    #[test]
    fn a_later_smaller_application_does_not_jump_the_queue() {
        let mut pot = Pot::new(Cents::euros(20_000));
        assert_eq!(pot.place(false, Cents::euros(15_000)), Place::Admitted);
        assert_eq!(pot.place(false, Cents::euros(10_500)), Place::Waiting);
        // 5,000 are left and 7,500 would fit after a withdrawal only; it waits behind the 10,500.
        assert_eq!(pot.place(true, Cents::euros(2_000)), Place::Waiting);
        assert_eq!(pot.draw(&[Cents::euros(10_500), Cents::euros(2_000)]), 0);
        assert_eq!(pot.set_budget(Cents::euros(14_000)), Err(BelowCommitted { committed: Cents::euros(15_000) }));
        pot.set_budget(Cents::euros(27_500)).unwrap();
        assert_eq!(pot.draw(&[Cents::euros(10_500), Cents::euros(2_000)]), 2);
        assert_eq!(pot.left(), Cents::ZERO);
    }

    #[test]
    fn ranking_breaks_ties_by_the_listed_scores_then_by_protocol() {
        let s = |key, score, tie_breaks: &[i64], protocol| Scored { key, score, tie_breaks: tie_breaks.to_vec(), protocol };
        let ranked = rank(vec![s("d", 7_000, &[10], 1), s("a", 8_000, &[1], 4), s("c", 7_000, &[20], 3), s("b", 7_000, &[20], 2)]);
        let keys: Vec<&str> = ranked.iter().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
    }
}
