//! agilekit's benchmarks: each starts the real server in this process, drives it over loopback HTTP and prints
//! figures next to a baseline measured in the same run, so the ratios mean something on any machine.
//! `foundation`: login storm against the argon2 bound, and an authenticated page against `/healthz`.
//! `remote`: VPN device enrolment against a no-op API call, a real gateway's convergence on wireguard-go, and
//! booking contention on pooled workstations.
//! `helpdesk`: a million tickets; queue pages, full-text search and ticket creation against `/healthz`.
//! `clickday`: thousands of companies submit at a call's opening to one or two nodes; durability, order, budget.

mod args;
mod clickday;
mod foundation;
mod helpdesk;
mod remote;
mod report;
mod sys;

use std::process::ExitCode;

pub(crate) const USAGE: &str = "\
usage: agilekit-bench foundation [options]
       agilekit-bench clickday [options]
       agilekit-bench remote [options]
       agilekit-bench helpdesk [options]

foundation:
  --engine sqlite|postgres|both   engine(s) to run on (default: sqlite)
  --accounts N                    accounts in the login storm (default: 4500)
  --in-flight N                   cap on concurrent login requests (default: 256)
  --page-concurrency N            concurrent page requests (default: 64)
  --page-requests N               requests per measured route (default: 20000)
  --page-secs S                   time limit per measured route (default: 20)
  --argon-runs N                  single-thread argon2 verifications for the bound (default: 50)
  --no-save                       print only; write nothing to bench/results/
  --pool N                        experiment: serve from a pool of N connections (kernel options otherwise)

remote:
  --engine sqlite|postgres|both   engine(s) to run on (default: sqlite)
  --devices N                     devices enrolled through the API, one employee each (default: 4500)
  --concurrency N                 enrolment requests in flight (default: 64)
  --peers N                       gateway peers (more devices enrolled up to N; default: 5000)
  --converge-runs N               0 -> all peers runs, each on a fresh wireguard-go (default: 3)
  --changes N                     single revocations timed to the interface (default: 10)
  --enforcement auto|none         the applier's access rules: nftables when usable (default: auto)
  --workstations N                pooled workstations (default: 100)
  --bookings N                    booking attempts sent at once per round (default: 1000)
  --booking-rounds N              rounds, one slot each (default: 3)
  --no-wireguard                  skip the gateway part (it needs root and wireguard-go)
  --no-save                       print only; write nothing to bench/results/

helpdesk:
  --engine sqlite|postgres|both   engine(s) to run on (default: sqlite)
  --tickets N                     tickets seeded, a message each (default: 1000000)
  --concurrency N                 concurrent page, list and search requests (default: 8)
  --requests N                    requests per measured route (default: 400)
  --secs S                        time limit per measured route (default: 20)
  --creates N                     tickets created through the API (default: 2000)
  --create-concurrency N          creations in flight (default: 16)
  --reuse                         keep the seeded database (per engine and size) and reuse it next time
  --only TEXT                     only the routes and counts whose name contains TEXT (e.g. search); no creation
  --no-save                       print only; write nothing to bench/results/

clickday:
  --engine sqlite|postgres        engine to run on (default: sqlite)
  --companies N                   companies with a prepared draft, all submitting at the opening (default: 20000)
  --concurrency N                 submissions in flight from the load generator (default: 256)
  --nodes N                       agilekit nodes (separate processes) on one database; above 1 needs postgres (default: 1)
  --budget EUROS                  the call's budget (default: 4500000)
  --no-save                       print only; write nothing to bench/results/

PostgreSQL: AGILEKIT_TEST_PG or postgres://postgres@127.0.0.1:5432/postgres; the run creates and drops its own
database agilekit_bench_<random>.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("foundation") => {}
        Some("remote") => return remote(&args[1..]),
        Some("helpdesk") => return helpdesk(&args[1..]),
        Some("clickday") => return clickday::main(&args[1..]),
        Some("clickday-node") => return clickday::node(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown benchmark {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let opts = match foundation::Options::parse(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(foundation::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn remote(args: &[String]) -> ExitCode {
    let opts = match remote::Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(remote::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn helpdesk(args: &[String]) -> ExitCode {
    let opts = match helpdesk::Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(helpdesk::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
