//! The machine a run happened on, and how busy it was: the cores, the CPU model, the commit measured, and CPU
//! time of this process, of PostgreSQL and of the whole machine over a phase (the box may be shared, so a figure
//! needs its context).

use std::time::Instant;

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The short commit of the checkout, with `-dirty` when the working tree has changes.
pub fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}-dirty") } else { c }
        }
        _ => "unknown".into(),
    }
}

/// Clock ticks per second of /proc's CPU counters: USER_HZ, 100 on every Linux build that matters.
const USER_HZ: f64 = 100.0;

/// CPU counters at an instant; the difference of two gives cores in use over the interval.
#[derive(Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    process_ticks: u64,
    postgres_ticks: u64,
    machine_busy: u64,
    machine_total: u64,
}

/// Average cores in use between two samples: by this process (server and load generator), by PostgreSQL's
/// processes (ours and anyone else's on that server) and by the whole machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub process_cores: f64,
    pub postgres_cores: f64,
    pub machine_cores: f64,
}

impl CpuUse {
    /// Cores taken by everything else: neighbours on a shared machine.
    pub fn other_cores(&self, count_postgres: bool) -> f64 {
        let db = if count_postgres { self.postgres_cores } else { 0.0 };
        (self.machine_cores - self.process_cores - db).max(0.0)
    }
}

/// utime + stime of a process, from the text of its /proc/<pid>/stat.
fn stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of the PostgreSQL server's processes on this machine (a backend that exits between two samples
/// takes its ticks with it, so this can only under-count).
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| s.contains("(postgres)"))
        .filter_map(|s| stat_ticks(&s))
        .sum()
}

impl CpuSample {
    pub fn now() -> CpuSample {
        let process_ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| stat_ticks(&s)).unwrap_or(0);
        let (machine_busy, machine_total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?;
                let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                let total: u64 = v.iter().take(8).sum();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                Some((total.saturating_sub(idle), total))
            })
            .unwrap_or((0, 0));
        CpuSample { at: Instant::now(), process_ticks, postgres_ticks: postgres_ticks(), machine_busy, machine_total }
    }

    pub fn since(&self, start: &CpuSample) -> CpuUse {
        let secs = self.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let process_cores = self.process_ticks.saturating_sub(start.process_ticks) as f64 / USER_HZ / secs;
        let postgres_cores = self.postgres_ticks.saturating_sub(start.postgres_ticks) as f64 / USER_HZ / secs;
        let total = self.machine_total.saturating_sub(start.machine_total) as f64;
        let busy = self.machine_busy.saturating_sub(start.machine_busy) as f64;
        let machine_cores = if total > 0.0 { busy / total * cores() as f64 } else { 0.0 };
        CpuUse { process_cores, postgres_cores, machine_cores }
    }
}
