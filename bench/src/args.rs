//! The benchmarks' command-line flags: `--flag value` or `--flag=value`, switches without a value, the engine
//! choice and bounded whole numbers, with the same messages everywhere.

/// A storage engine a benchmark runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// One flag as given: `value` is `None` for a switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

impl Flag {
    /// The flag's value (empty for a switch).
    pub fn text(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }

    /// The value as a whole number from 1 to `max`.
    pub fn number(&self, max: usize) -> Result<usize, String> {
        let v = self.text();
        v.parse::<usize>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| format!("{}: a number from 1 to {max}, not {v:?}", self.name))
    }

    /// `--engine`: `sqlite`, `postgres` or `both` (SQLite then PostgreSQL).
    pub fn engines(&self) -> Result<Vec<Engine>, String> {
        match self.text() {
            "sqlite" => Ok(vec![Engine::Sqlite]),
            "postgres" => Ok(vec![Engine::Postgres]),
            "both" => Ok(vec![Engine::Sqlite, Engine::Postgres]),
            other => Err(format!("{}: sqlite, postgres or both, not {other:?}", self.name)),
        }
    }

    /// The error for a flag the benchmark does not know.
    pub fn unknown(&self) -> String {
        format!("unknown option {}", self.name)
    }
}

/// Splits `args` into flags: the names in `switches` take no value; every other flag takes `=value` or the next
/// argument.
pub fn flags(args: &[String], switches: &[&str]) -> Result<Vec<Flag>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let value = if switches.contains(&name) {
            None
        } else {
            Some(inline.or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"))?)
        };
        out.push(Flag { name: name.to_owned(), value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_take_inline_or_next_values_and_switches_none() {
        let f = flags(&strings(&["--engine=both", "--no-save", "--tickets", "5000"]), &["--no-save"]).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].engines().unwrap(), vec![Engine::Sqlite, Engine::Postgres]);
        assert_eq!((f[1].name.as_str(), f[1].value.as_deref()), ("--no-save", None));
        assert_eq!(f[2].number(10_000), Ok(5000));
        assert_eq!(f[2].number(1000), Err("--tickets: a number from 1 to 1000, not \"5000\"".into()));
        assert_eq!(flags(&strings(&["--tickets"]), &[]), Err("--tickets needs a value".into()));
        assert!(flags(&strings(&["--engine", "mysql"]), &[]).unwrap()[0].engines().is_err());
        assert_eq!(flags(&strings(&["--x", "0"]), &[]).unwrap()[0].number(5), Err("--x: a number from 1 to 5, not \"0\"".into()));
    }
}
