//! Figures of a run: latency percentiles, the printed table, and the small JSON and markdown files written to
//! bench/results/ so that runs on different commits can be compared in review.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

/// Latencies of one measured route or phase, in microseconds, sorted.
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn new(mut v: Vec<u32>) -> Latencies {
        v.sort_unstable();
        Latencies(v)
    }

    /// The `p`-th percentile in milliseconds (nearest rank); 0 with no samples.
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1] as f64 / 1000.0
    }
}

pub fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Rounds for display and for the JSON, where 12 significant digits of noise help nobody.
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn verdict(ratio: f64, goal: f64) -> &'static str {
    if ratio >= goal { "meets goal" } else { "BELOW GOAL" }
}

/// Where results go: the crate's own results/ directory, whatever the working directory of the run.
pub fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results")
}

pub fn utc_stamp() -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_else(|_| "unknown".into())
}

/// Writes `foundation-<engine>-<stamp>.{json,md}`; returns the markdown so the caller can assemble `-latest.md`.
pub fn save(engine: &str, stamp: &str, json: &Value, md: &str) -> anyhow::Result<Vec<PathBuf>> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("foundation-{engine}-{stamp}"));
    let jpath = base.with_extension("json");
    let mpath = base.with_extension("md");
    std::fs::write(&jpath, serde_json::to_string_pretty(json)? + "\n")?;
    std::fs::write(&mpath, md)?;
    Ok(vec![jpath, mpath])
}

pub fn save_latest(sections: &[String]) -> anyhow::Result<PathBuf> {
    let path = results_dir().join("foundation-latest.md");
    std::fs::write(&path, sections.join("\n"))?;
    Ok(path)
}

/// The markdown summary of one engine's run, from its JSON (one source of truth for both files).
pub fn markdown(j: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let l = &j["login"];
    let p = &j["pages"];
    let mut out = format!(
        "# Foundation benchmark — {} ({})\n\n\
         {} · commit `{}` · {} cores ({}) · load average at start {}\n\n\
         ## Login storm\n\n\
         {} accounts log in at once, at most {} requests in flight.\n\n\
         | figure | value |\n|---|---|\n\
         | argon2id verify, one thread (mean of before and after the storm) | {:.1}/s ({:.1} ms each) |\n\
         | bound = that × {} cores | {:.1}/s |\n\
         | argon2id verify, all cores at once (for context) | {:.1}/s |\n\
         | logins | {:.1}/s |\n\
         | all signed in after | {:.1} s |\n\
         | failures | {} |\n\
         | login latency p50 / p99 | {:.0} / {:.0} ms |\n\
         | cores in use: this process / PostgreSQL / everything else | {:.2} / {:.2} / {:.2} |\n\
         | CPU a login, system under test (argon2 alone) | {:.1} ms ({:.1} ms) |\n\
         | **ratio logins ÷ bound** | **{:.2}** (goal ≥ {}: {}) |\n{}\n\
         ## Authenticated page\n\n\
         One signed-in session, {} concurrent requests, up to {} requests or {} s per route, the routes taking turns in {} rounds.\n\n\
         | route | requests | errors | req/s | p50 ms | p99 ms | cores: process / PostgreSQL / else | CPU µs a request |\n|---|---|---|---|---|---|---|---|\n",
        s(&j["engine"]),
        s(&j["engine_version"]),
        s(&j["timestamp"]),
        s(&j["commit"]),
        j["machine"]["cores"],
        s(&j["machine"]["cpu"]),
        s(&j["machine"]["loadavg_start"]),
        l["accounts"],
        l["in_flight"],
        f(&l["argon2_single_thread_per_s"]),
        f(&l["argon2_ms"]),
        j["machine"]["cores"],
        f(&l["bound_per_s"]),
        f(&l["argon2_all_cores_per_s"]),
        f(&l["logins_per_s"]),
        f(&l["all_in_secs"]),
        l["failures"],
        f(&l["p50_ms"]),
        f(&l["p99_ms"]),
        f(&l["cpu_process_cores"]),
        f(&l["cpu_postgres_cores"]),
        f(&l["cpu_other_cores"]),
        f(&l["cpu_ms_per_login"]),
        f(&l["argon2_ms"]),
        f(&l["ratio"]),
        l["goal"],
        s(&l["verdict"]),
        if l["disturbed"].as_bool() == Some(true) {
            format!("\n> {}\n", disturbed_note(f(&l["cpu_other_cores"])))
        } else {
            String::new()
        },
        p["concurrency"],
        p["max_requests"],
        p["max_secs"],
        p["rounds"],
    );
    if let Some(n) = j["pool_override"].as_u64() {
        out.insert_str(
            0,
            &format!("> Experiment: the server's pool had {n} connections instead of the kernel's choice.\n\n"),
        );
    }
    for r in p["routes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| `{}` | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} | {:.0} |\n",
            s(&r["route"]),
            r["requests"],
            r["errors"],
            f(&r["rps"]),
            f(&r["p50_ms"]),
            f(&r["p99_ms"]),
            f(&r["cpu_process_cores"]),
            f(&r["cpu_postgres_cores"]),
            f(&r["cpu_other_cores"]),
            f(&r["cpu_us_per_call"]),
        ));
    }
    out.push_str(&format!(
        "\n**ratio `GET /` ÷ `GET /healthz`: {:.2}** (goal ≥ {}: {}); from CPU a request instead: {:.2}\n",
        f(&p["ratio_dashboard_healthz"]),
        p["goal"],
        s(&p["verdict"]),
        f(&p["ratio_by_cpu"])
    ));
    if p["disturbed"].as_bool() == Some(true) {
        out.push_str(&format!("\n> {}\n", disturbed_note(f(&p["other_cores_max"]))));
    }
    if let Some(note) = p["org_dashboard_note"].as_str() {
        out.push_str(&format!("\nOrganisation dashboard: {note}\n"));
    }
    let b = &p["breakdown"];
    if b.is_object() {
        out.push_str(&format!(
            "\n## Database pieces of `GET /`\n\n{} queries a request without the node cache, none when it hits; each piece called directly (no HTTP, no rendering) at \
             concurrency {}.\n\n| piece | calls/s | p50 ms | p99 ms | CPU µs a call | errors |\n|---|---|---|---|---|---|\n",
            b["queries_per_request"], b["concurrency"]
        ));
        for r in b["pieces"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {} |\n",
                s(&r["route"]),
                f(&r["rps"]),
                f(&r["p50_ms"]),
                f(&r["p99_ms"]),
                f(&r["cpu_us_per_call"]),
                r["errors"]
            ));
        }
    }
    out
}

/// Why a phase's figures are not to be trusted as they stand.
fn disturbed_note(other: f64) -> String {
    format!(
        "DISTURBED: other processes used up to {other:.2} cores during this phase; the rates are low for that reason \
         (the CPU-per-request figures hold better). Run again on a quiet machine."
    )
}

/// A JSON count for a padded column (`Value`'s own Display ignores widths).
fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The table printed at the end of an engine's run.
pub fn print(j: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let l = &j["login"];
    let p = &j["pages"];
    println!();
    if let Some(n) = j["pool_override"].as_u64() {
        println!("\n!! experiment: the server's pool has {n} connections instead of the kernel's choice");
    }
    println!(
        "== foundation · {} ({}) · commit {} · {} cores · load {} ==",
        j["engine"].as_str().unwrap_or(""),
        j["engine_version"].as_str().unwrap_or(""),
        j["commit"].as_str().unwrap_or(""),
        j["machine"]["cores"],
        j["machine"]["loadavg_start"].as_str().unwrap_or("")
    );
    println!("Login storm: {} accounts, {} in flight", l["accounts"], l["in_flight"]);
    println!(
        "  {:<36} {:>10.1}/s  ({:.1} ms each; {:.1} before the storm, {:.1} after)",
        "argon2id verify, one thread",
        f(&l["argon2_single_thread_per_s"]),
        f(&l["argon2_ms"]),
        f(&l["argon2_single_thread_before_after_per_s"][0]),
        f(&l["argon2_single_thread_before_after_per_s"][1])
    );
    println!("  {:<36} {:>10.1}/s", format!("bound (× {} cores)", j["machine"]["cores"]), f(&l["bound_per_s"]));
    println!(
        "  {:<36} {:>10.1}/s  (measured now; logins ÷ this = {:.2})",
        "argon2id verify, all cores at once",
        f(&l["argon2_all_cores_per_s"]),
        f(&l["ratio_to_all_cores"])
    );
    println!(
        "  {:<36} {:>10.1}/s  all in after {:.1} s, {} failures, p50 {:.0} ms, p99 {:.0} ms",
        "logins",
        f(&l["logins_per_s"]),
        f(&l["all_in_secs"]),
        l["failures"],
        f(&l["p50_ms"]),
        f(&l["p99_ms"])
    );
    println!(
        "  {:<36} {:>10.2} / {:.2} / {:.2} cores; {:.1} ms CPU a login (argon2 alone: {:.1})",
        "cores: process / PostgreSQL / else",
        f(&l["cpu_process_cores"]),
        f(&l["cpu_postgres_cores"]),
        f(&l["cpu_other_cores"]),
        f(&l["cpu_ms_per_login"]),
        f(&l["argon2_ms"])
    );
    println!(
        "  {:<36} {:>10.2}    goal ≥ {} → {}",
        "RATIO logins ÷ bound",
        f(&l["ratio"]),
        l["goal"],
        l["verdict"].as_str().unwrap_or("")
    );
    if l["disturbed"].as_bool() == Some(true) {
        println!("  !! {}", disturbed_note(f(&l["cpu_other_cores"])));
    }
    println!(
        "Authenticated page: {} concurrent, up to {} requests or {} s per route, in {} rounds taking turns",
        p["concurrency"], p["max_requests"], p["max_secs"], p["rounds"]
    );
    println!(
        "  {:<20} {:>9} {:>7} {:>9} {:>8} {:>8} {:>16} {:>11}",
        "route", "requests", "errors", "req/s", "p50 ms", "p99 ms", "cores proc/pg/else", "CPU µs/req"
    );
    for r in p["routes"].as_array().into_iter().flatten() {
        println!(
            "  {:<20} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>6.2}/{:.2}/{:.2} {:>11.0}",
            r["route"].as_str().unwrap_or(""),
            n(&r["requests"]),
            n(&r["errors"]),
            f(&r["rps"]),
            f(&r["p50_ms"]),
            f(&r["p99_ms"]),
            f(&r["cpu_process_cores"]),
            f(&r["cpu_postgres_cores"]),
            f(&r["cpu_other_cores"]),
            f(&r["cpu_us_per_call"])
        );
    }
    println!(
        "  {:<36} {:>10.2}    goal ≥ {} → {}; from CPU a request: {:.2}",
        "RATIO GET / ÷ GET /healthz",
        f(&p["ratio_dashboard_healthz"]),
        p["goal"],
        p["verdict"].as_str().unwrap_or(""),
        f(&p["ratio_by_cpu"])
    );
    if p["disturbed"].as_bool() == Some(true) {
        println!("  !! {}", disturbed_note(f(&p["other_cores_max"])));
    }
    if let Some(note) = p["org_dashboard_note"].as_str() {
        println!("  organisation dashboard: {note}");
    }
    let b = &p["breakdown"];
    if b.is_object() {
        println!(
            "Database pieces of GET / ({} queries a request uncached), called directly at concurrency {}",
            b["queries_per_request"], b["concurrency"]
        );
        for r in b["pieces"].as_array().into_iter().flatten() {
            println!(
                "  {:<40} {:>7.0} calls/s  p50 {:>6.2} ms  p99 {:>6.2} ms  CPU {:>5.0} µs/call  {} errors",
                r["route"].as_str().unwrap_or(""),
                f(&r["rps"]),
                f(&r["p50_ms"]),
                f(&r["p99_ms"]),
                f(&r["cpu_us_per_call"]),
                r["errors"]
            );
        }
    }
}

pub fn machine_json(cores: usize) -> Value {
    json!({"cores": cores, "cpu": crate::sys::cpu_model(), "loadavg_start": crate::sys::loadavg(), "os": std::env::consts::OS})
}

/// Writes `<bench>-<engine>-<stamp>.{json,md}` (any benchmark; `save` is the foundation's).
pub fn save_as(bench: &str, engine: &str, stamp: &str, json: &Value, md: &str) -> anyhow::Result<Vec<PathBuf>> {
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("{bench}-{engine}-{stamp}"));
    let jpath = base.with_extension("json");
    let mpath = base.with_extension("md");
    std::fs::write(&jpath, serde_json::to_string_pretty(json)? + "\n")?;
    std::fs::write(&mpath, md)?;
    Ok(vec![jpath, mpath])
}

/// Writes `<bench>-latest.md`: the summaries of the engines of the last run.
pub fn save_latest_as(bench: &str, sections: &[String]) -> anyhow::Result<PathBuf> {
    let path = results_dir().join(format!("{bench}-latest.md"));
    std::fs::write(&path, sections.join("\n"))?;
    Ok(path)
}

/// A measured route as a table row: requests, errors, req/s, latencies, cores, CPU a request.
fn route_row(name: &str, r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    format!(
        "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} / {:.2} | {:.0} |\n",
        n(&r["requests"]),
        n(&r["errors"]),
        f(&r["rps"]),
        f(&r["p50_ms"]),
        f(&r["p99_ms"]),
        f(&r["cpu_process_cores"]),
        f(&r["cpu_postgres_cores"]),
        f(&r["cpu_other_cores"]),
        f(&r["cpu_us_per_call"]),
    )
}

const ROUTE_HEADER: &str = "| calls | requests | errors | req/s | p50 ms | p99 ms | cores: process / PostgreSQL / else | CPU µs a request |\n|---|---|---|---|---|---|---|---|\n";

/// Failure kinds of a route (`422 starts_at:slot-taken × 912`), or nothing.
fn kinds(r: &Value) -> String {
    let m = r["failure_kinds"].as_object();
    let list: Vec<String> = m.into_iter().flatten().map(|(k, v)| format!("`{k}` × {v}")).collect();
    list.join(", ")
}

/// The markdown summary of one engine's remote-access run, from its JSON; also what the run prints.
pub fn remote_markdown(j: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let ok = |b: bool| if b { "ok" } else { "**FAILED**" };
    let p = &j["provisioning"];
    let c = &p["checks"];
    let mut out = format!(
        "# Remote-access benchmark — {} ({})\n\n\
         {} · commit `{}` · {} cores ({}) · load average at start {}\n\n\
         ## 1. Provisioning\n\n\
         {} devices enrolled through `POST /api/v1/orgs/{{org}}/vpn/devices` by as many employees of one organisation \
         (API tokens; each key pair generated on the client), at most {} requests in flight. Baseline: `GET /api/v1/me` \
         (the no-op authenticated call: token, principal, memberships) with the same tokens at the same concurrency, \
         half before the enrolments and half after.\n\n{ROUTE_HEADER}",
        s(&j["engine"]),
        s(&j["engine_version"]),
        s(&j["timestamp"]),
        s(&j["commit"]),
        j["machine"]["cores"],
        s(&j["machine"]["cpu"]),
        s(&j["machine"]["loadavg_start"]),
        p["devices"],
        p["concurrency"],
    );
    out.push_str(&route_row("enrol a device", &p["enrol"]));
    out.push_str(&route_row("`GET /api/v1/me`", &p["baseline"]));
    out.push_str(&format!(
        "\nAll {} enrolled in **{:.1} s**. **Ratio enrolments/s ÷ `GET /api/v1/me`/s: {:.2}** (from CPU a request: {:.2}).\n\n\
         Checks: {} enrolled, {} active in the database with {} distinct addresses ({} distinct in the answers), \
         seats used {} of {}: {}\n",
        p["devices"],
        f(&p["all_enrolled_secs"]),
        f(&p["ratio"]),
        f(&p["ratio_by_cpu"]),
        c["enrolled"],
        c["active_in_db"],
        c["distinct_addresses_in_db"],
        c["distinct_addresses_answered"],
        c["seats_used"],
        c["seats_limit"],
        ok(c["ok"].as_bool() == Some(true)),
    ));
    let fk = kinds(&p["enrol"]);
    if !fk.is_empty() {
        out.push_str(&format!("\nEnrolment failures: {fk}\n"));
    }
    if p["disturbed"].as_bool() == Some(true) {
        out.push_str(&format!("\n> {}\n", remote_disturbed_note()));
    }

    let g = &j["gateway"];
    out.push_str("\n## 2. Gateway convergence\n\n");
    if let Some(why) = g["skipped"].as_str() {
        out.push_str(&format!("**Skipped**: {why}.\n"));
    } else {
        let cv = &g["converge"];
        let ch = &g["change"];
        let fl = &g["floor"];
        out.push_str(&format!(
            "{} in a network namespace of the run's own; the gateway agent's applier (`agent::Applier`: read the \
             interface, diff, one UAPI set, addresses, access rules; enforcement: **{}**) in a thread inside it, fed by \
             `GET /api/v1/gateway/config` as the agent calls it, with a gateway registered through the API with the agent's key.\n\n\
             **0 → {} peers**: a fresh wireguard-go and a fresh applier each run, timed from the first config fetch to the \
             UAPI set done (then confirmed by a UAPI `get` listing every peer).\n\n\
             | run | fetch ms | apply ms | **total ms** | confirmed ms | config KiB | all present |\n|---|---|---|---|---|---|---|\n",
            g["wireguard_go"].as_str().unwrap_or("wireguard-go"),
            s(&g["enforcement"]),
            g["peers"],
        ));
        for (i, r) in cv["runs"].as_array().into_iter().flatten().enumerate() {
            out.push_str(&format!(
                "| {} | {:.0} | {:.0} | **{:.0}** | {:.0} | {:.0} | {} |\n",
                i + 1,
                f(&r["fetch_ms"]),
                f(&r["apply_ms"]),
                f(&r["total_ms"]),
                f(&r["confirmed_ms"]),
                f(&r["config_kib"]),
                ok(r["all_present"].as_bool() == Some(true)),
            ));
        }
        out.push_str(&format!(
            "\nMedian {:.0} ms, worst **{:.0} ms** (goal < {:.0} ms every run: {}). Floor, wireguard-go alone through UAPI: \
             all {} peers in one set {:.0} ms; a get of them all {:.0} ms; removing one {:.1} ms. {}\n\n\
             Status report of {} peers (`POST /api/v1/gateway/status`), alone: {:.0} ms{}.\n\n\
             **One change among {}**: {} devices revoked one by one, {} ms apart, through \
             `POST /api/v1/orgs/{{org}}/vpn/devices/{{id}}/revoke` (as the administrator) while the agent long-polls and \
             reports status as `agilekit gateway` does (every {} s and after each change); timed from the API call to the \
             applier's UAPI set done, then checked with a UAPI `get`.\n\n\
             | change | API answered ms | config delivered ms | **applied ms** | peer gone |\n|---|---|---|---|---|\n",
            f(&cv["median_ms"]),
            f(&cv["max_ms"]),
            f(&cv["goal_ms"]),
            s(&cv["verdict"]),
            g["peers"],
            f(&fl["uapi_set_all_ms"]),
            f(&fl["uapi_get_all_ms"]),
            f(&fl["uapi_remove_one_ms"]),
            gw_cpu(&cv["cpu"]),
            g["status_report"]["peers"],
            f(&g["status_report"]["ms"]),
            g["status_report"]["refused"].as_str().map(|r| format!(" — **refused: {r}**")).unwrap_or_default(),
            g["peers"],
            ch["changes"],
            ch["gap_ms"],
            ch["status_reports"]["every_secs"],
        ));
        for (i, r) in ch["each"].as_array().into_iter().flatten().enumerate() {
            let (delivered, applied) = if r["lost"].as_bool() == Some(true) {
                ("—".to_owned(), "**not applied within 30 s**".to_owned())
            } else {
                (format!("{:.1}", f(&r["delivered_ms"])), format!("**{:.0}**", f(&r["applied_ms"])))
            };
            out.push_str(&format!(
                "| {} | {:.1} | {delivered} | {applied} | {} |\n",
                i + 1,
                f(&r["api_ms"]),
                ok(r["gone"].as_bool() == Some(true)),
            ));
        }
        out.push_str(&format!(
            "\np50 **{:.0} ms**, max **{:.0} ms** (goal < {:.0} ms every change: {}); not applied within 30 s: {}; {} peers left on the interface \
             (expected {}). Status reports meanwhile: {} sent ({} refused), p50 {:.0} ms, max {:.0} ms. {}\n",
            f(&ch["p50_ms"]),
            f(&ch["max_ms"]),
            f(&ch["goal_ms"]),
            s(&ch["verdict"]),
            ch["lost"],
            ch["final_peers"],
            ch["expected_final_peers"],
            ch["status_reports"]["sent"],
            ch["status_reports"]["refused"],
            f(&ch["status_reports"]["p50_ms"]),
            f(&ch["status_reports"]["max_ms"]),
            gw_cpu(&ch["cpu"]),
        ));
    }

    let b = &j["bookings"];
    out.push_str(&format!(
        "\n## 3. Booking contention\n\n\
         {} pooled workstations; rounds: {} (one slot each, a different day), each {} booking attempts sent at once by \
         as many distinct employees, each on a workstation drawn at random (fixed seed) for the same slot. Baseline: \
         `GET /api/v1/me` sent the same way ({} at once) after each round.\n\n{ROUTE_HEADER}",
        b["workstations"], b["rounds"], b["attempts_per_round"], b["attempts_per_round"],
    ));
    out.push_str(&route_row("book (bookings and refusals)", &b["book"]));
    out.push_str(&route_row("`GET /api/v1/me`", &b["baseline"]));
    out.push_str(&format!(
        "\n{} attempts at **{:.0} attempts/s**; **ratio to `GET /api/v1/me`: {:.2}** (from CPU a request: {:.2}). \
         Booked {} (one per workstation drawn: {}); refused: {}{}.\n\n\
         **Double bookings** (from the database, overlapping live bookings): of a workstation {}, of a person {}; \
         live bench bookings in the database {} (booked {}): {}\n",
        b["attempts"],
        f(&b["attempts_per_s"]),
        f(&b["ratio"]),
        f(&b["ratio_by_cpu"]),
        b["booked"],
        b["expected_booked"],
        b["refused"].as_object().into_iter().flatten().map(|(k, v)| format!("`{k}` × {v}")).collect::<Vec<_>>().join(", "),
        { let e = kinds(&b["book"]); if e.is_empty() { String::new() } else { format!("; **errors**: {e}") } },
        b["double_bookings_workstation"],
        b["double_bookings_person"],
        b["booked_rows_in_db"],
        b["booked"],
        if b["zero_double_bookings"].as_bool() == Some(true) { "none, as required" } else { "**DOUBLE BOOKINGS**" },
    ));
    if b["disturbed"].as_bool() == Some(true) {
        out.push_str(&format!("\n> {}\n", remote_disturbed_note()));
    }
    out
}

/// Cores in use during a gateway phase, and the warning when other processes took too many.
fn gw_cpu(c: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = format!(
        "Cores in use: this process {:.2}, PostgreSQL {:.2}, wireguard-go with `ip` and `nft` {:.2}, everything else {:.2}.",
        f(&c["process_cores"]),
        f(&c["postgres_cores"]),
        f(&c["gateway_processes_cores"]),
        f(&c["other_cores"])
    );
    if c["disturbed"].as_bool() == Some(true) {
        out.push_str(" **DISTURBED**: other processes took more than 0.25 cores; the times are long for that reason.");
    }
    out
}

fn remote_disturbed_note() -> String {
    "DISTURBED: other processes took more than 0.25 cores during this phase; its rates are low for that reason (the \
     ratios from CPU a request hold better). Run again on a quiet machine."
        .into()
}
