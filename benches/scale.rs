//! Scale benchmarks (not tests; see BENCHMARKS.md). Every run builds its inputs in a temp dir —
//! a git repository with the config and the HR CSV, a seed for the simulator — and talks to a
//! separately running `speakap-sim` over loopback HTTP.
//!
//! 1. `plan EMPLOYEES…` (default 100000 1000000): a network of that size and an HR record with
//!    500 location codes, planned with no changes and with 1% changes. Each plan runs in its own
//!    child process — this binary re-executed, calling the same entry point as `speakap-sync plan`
//!    — so that its peak memory (VmHWM) is its own; three times, and the median is shown. With
//!    `BENCH_BASELINE` set to this benchmark built from another commit, that build plans the same
//!    inputs alternately with this one.
//! 2. `apply EMPLOYEES` (default 10000): that many new employees applied at a 50 req/s limit with
//!    20 ms latency, once with the client configured for the limit and once for 200 req/s.
//! 3. `chaos EMPLOYEES TRIALS` (default 10000 20): an apply through 10% 5xx, 5% 429 and 1%
//!    dropped connections, then trials of new employees whose apply is SIGKILLed at a random
//!    moment and run again.
//!
//! Run: `cargo bench --bench scale -- plan 100000` (or `apply 1000`, `chaos 1000 5`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use clap::Parser;
use serde_json::Value;

const NETWORK: &str = "0123456789abcdef";
const TOKEN: &str = "app0000000000001_secret";
const LOCATIONS: usize = 500;
const JOBS: [&str; 4] = ["Baker", "Sales Assistant", "Driver", "Store Manager"];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let numbers = |at: usize, default: &[usize]| -> Vec<usize> {
        let given: Vec<usize> = args[at..].iter().filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() {
            default.to_vec()
        } else {
            given
        }
    };
    match args.first().map(String::as_str) {
        Some("plan-phase") => plan_phase(&args[1], &args[2]),
        Some("fetch-phase") => fetch_phase(&args[1], args[2].parse().unwrap()),
        Some("plan") => plan_bench(&numbers(1, &[100_000, 1_000_000])),
        Some("apply") => apply_bench(numbers(1, &[10_000])[0]),
        Some("invites") => invites_bench(numbers(1, &[100_000])[0]),
        Some("chaos") => {
            let n = numbers(1, &[10_000, 20]);
            chaos_bench(n[0], n.get(1).copied().unwrap_or(20));
        }
        _ => {
            plan_bench(&[100_000, 1_000_000]);
            apply_bench(10_000);
            chaos_bench(10_000, 20);
        }
    }
}

// ---- inputs ----------------------------------------------------------------------------------

/// How an employee's HR row differs from their account, for the "1% changes" plans.
#[derive(Clone, Copy, PartialEq)]
enum Drift {
    None,
    JobTitle,
    Location,
    Email,
}

/// One in a hundred employees drifts, in turn by job title, location and email address.
fn drift(i: usize, changes: bool) -> Drift {
    if !changes || i % 100 != 7 {
        return Drift::None;
    }
    [Drift::JobTitle, Drift::Location, Drift::Email][(i / 100) % 3]
}

struct Person {
    xid: String,
    email: String,
    first: String,
    last: String,
    job: &'static str,
    location: usize,
}

fn person(i: usize, drift: Drift) -> Person {
    let job = JOBS[i % JOBS.len()];
    Person {
        xid: (100_000 + i).to_string(),
        email: if drift == Drift::Email {
            format!("employee.{i}@new.scale-example.com")
        } else {
            format!("employee.{i}@scale-example.com")
        },
        first: format!("First{}", i % 997),
        last: format!("Last{}", i % 1009),
        job: if drift == Drift::JobTitle {
            "Senior Baker"
        } else {
            job
        },
        location: if drift == Drift::Location {
            (i + 1) % LOCATIONS
        } else {
            i % LOCATIONS
        },
    }
}

fn location_code(l: usize) -> String {
    format!("L{l:03}")
}

fn location_name(l: usize) -> String {
    format!("Location {l:03}")
}

fn write_csv(path: &Path, rows: std::ops::Range<usize>, changes: bool) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        out,
        "Employee ID,Email,First name,Last name,Job title,Location"
    )
    .unwrap();
    for i in rows {
        let p = person(i, drift(i, changes));
        let code = location_code(p.location);
        writeln!(
            out,
            "{},{},{},{},{},{code}",
            p.xid, p.email, p.first, p.last, p.job
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// The simulator's starting network: the 500 location groups and `users` accounts exactly as
/// the unchanged HR record wants them.
fn write_seed(path: &Path, users: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(out, r#"{{"groups":["#).unwrap();
    for l in 0..LOCATIONS {
        let comma = if l == 0 { "" } else { "," };
        write!(
            out,
            r#"{comma}{{"name":"{}","type":"business_unit"}}"#,
            location_name(l)
        )
        .unwrap();
    }
    write!(out, r#"],"users":["#).unwrap();
    for i in 0..users {
        let p = person(i, Drift::None);
        let comma = if i == 0 { "" } else { "," };
        write!(
            out,
            r#"{comma}{{"xid":"{}","email":"{}","firstName":"{}","familyName":"{}","jobTitle":"{}","groups":["{}"]}}"#,
            p.xid,
            p.email,
            p.first,
            p.last,
            p.job,
            location_name(p.location)
        )
        .unwrap();
    }
    write!(out, "]}}").unwrap();
    out.flush().unwrap();
}

fn sync_yaml(url: &str, requests_per_second: u32, concurrency: u32, page_size: usize) -> String {
    format!(
        r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "{NETWORK}"
speakap:
  url: {url}
  requests_per_second: {requests_per_second}
  concurrency: {concurrency}
  page_size: {page_size}
source:
  type: csv
  path: hr.csv
  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    locations: Location
policy:
  safety:
    max_offboard_percent: 50
    max_change_percent: 100
    min_records: 1
"#
    )
}

/// 500 mapping entries: every location code to its business unit.
fn rules_yaml() -> String {
    let mut text = String::from(
        "apiVersion: speakap-sync/v1\nkind: MappingRules\nbusiness_units:\n  unknown: reject\n  map:\n",
    );
    for l in 0..LOCATIONS {
        text.push_str(&format!("    {}: {}\n", location_code(l), location_name(l)));
    }
    text
}

/// A config repository in a temp dir.
struct Repo {
    dir: tempfile::TempDir,
    git: git2::Repository,
}

impl Repo {
    fn new(url: &str, requests_per_second: u32, concurrency: u32, page_size: usize) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let mut config = git.config().unwrap();
        config.set_str("user.name", "Bench").unwrap();
        config.set_str("user.email", "bench@example.com").unwrap();
        let repo = Repo { dir, git };
        std::fs::write(
            repo.path().join("sync.yaml"),
            sync_yaml(url, requests_per_second, concurrency, page_size),
        )
        .unwrap();
        std::fs::write(repo.path().join("rules.yaml"), rules_yaml()).unwrap();
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn hr(&self) -> PathBuf {
        self.path().join("hr.csv")
    }

    fn commit(&self, message: &str) {
        let mut index = self.git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Bench", "bench@example.com").unwrap();
        let parent = self.git.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.git
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap();
    }

    fn path_str(&self) -> String {
        self.path().to_string_lossy().into_owned()
    }

    /// `counts` of the last audit record: what the last apply did, failed and retried.
    fn last_counts(&self) -> Value {
        let Ok(reference) = self.git.find_reference("refs/speakap-sync/state") else {
            return Value::Null;
        };
        let tree = reference.peel_to_tree().unwrap();
        let entry = tree.get_path(Path::new("apply.json")).unwrap();
        let blob = entry.to_object(&self.git).unwrap().peel_to_blob().unwrap();
        serde_json::from_slice::<Value>(blob.content()).unwrap()["counts"].clone()
    }
}

// ---- processes ---------------------------------------------------------------------------------

/// A `speakap-sim serve` process on 127.0.0.1; killed on drop.
struct Sim {
    child: Child,
    url: String,
    /// Seconds from start to listening (the seed loaded).
    started_in: f64,
}

impl Sim {
    fn start(seed: &Path, flags: &[&str]) -> Sim {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_speakap-sim"))
            .args(["serve", "--network", NETWORK, "--token", TOKEN, "--seed"])
            .arg(seed)
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the simulator announces its address")
            .to_string();
        Sim {
            child,
            url,
            started_in: started.elapsed().as_secs_f64(),
        }
    }

    fn peak_mib(&self) -> f64 {
        support::peak_mib(&self.child.id().to_string())
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        block_on(async {
            let mut request = reqwest::Client::new()
                .request(method, format!("{}{path}", self.url))
                .header("Authorization", format!("Bearer {TOKEN}"));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{path}");
            response.json::<Value>().await.unwrap_or(Value::Null)
        })
    }

    fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/stats", None)
    }

    fn set_faults(&self, faults: Value) {
        self.admin(reqwest::Method::PUT, "/_sim/faults", Some(faults));
    }

    /// Every active user, straight from the API (plain HTTP, not speakap-sync's client).
    fn users(&self) -> Vec<Value> {
        block_on(async {
            let client = reqwest::Client::new();
            let mut users = Vec::new();
            loop {
                let page: Value = client
                    .get(format!(
                        "{}/networks/{NETWORK}/users/?embed=memberships&limit=100&offset={}",
                        self.url,
                        users.len()
                    ))
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .header("Accept", "application/vnd.speakap.api-v1.8.2+json+hal")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let items = page["_embedded"]["users"].as_array().unwrap().clone();
                let total = page["total"].as_u64().unwrap() as usize;
                let empty = items.is_empty();
                users.extend(items);
                if empty || users.len() >= total {
                    return users;
                }
            }
        })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// `speakap-sync ARGS` in the repository, its output in `log`.
fn speakap_sync(repo: &Repo, args: &[&str], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(args)
        .args(["--repo", &repo.path_str()])
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log.try_clone().unwrap())
        .spawn()
        .unwrap()
}

/// Runs to the end; (exit code, seconds).
fn run_to_end(repo: &Repo, args: &[&str], log: &Path) -> (i32, f64) {
    let started = Instant::now();
    let status = speakap_sync(repo, args, log).wait().unwrap();
    (status.code().unwrap_or(-1), started.elapsed().as_secs_f64())
}

// ---- 1. plan -----------------------------------------------------------------------------------

/// In a child process: `speakap-sync plan` through the binary's own entry point, then this
/// process's peak memory. Prints `MEASURED seconds peak_mib` on stderr.
fn plan_phase(repo: &str, out: &str) {
    let started = Instant::now();
    let cli = speakap_sync::cli::Cli::parse_from([
        "speakap-sync",
        "plan",
        "--repo",
        repo,
        "--now",
        "2026-06-01",
        "--format",
        "json",
        "--out",
        out,
    ]);
    let speakap_sync::cli::Command::Plan(args) = &cli.command else {
        unreachable!("a plan command")
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = runtime
        .block_on(speakap_sync::commands::plan(args))
        .unwrap_or_else(|e| panic!("plan failed: {e}"));
    assert_eq!(code, 0);
    eprintln!(
        "MEASURED {:.2} {:.0}",
        started.elapsed().as_secs_f64(),
        support::peak_mib("self")
    );
}

/// In a child process: only the fetch of the network, as the plan does it. Prints
/// `MEASURED seconds peak_mib`.
fn fetch_phase(url: &str, page_size: usize) {
    let started = Instant::now();
    let client = speakap_sync::speakap::Client::new(url, NETWORK, TOKEN, "1.8.2", 1000)
        .unwrap()
        .with_concurrency(8)
        .with_page_size(page_size);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let observed = runtime
        .block_on(speakap_sync::speakap::fetch(&client))
        .unwrap();
    assert!(!observed.users.is_empty());
    eprintln!(
        "MEASURED {:.2} {:.0}",
        started.elapsed().as_secs_f64(),
        support::peak_mib("self")
    );
}

/// Runs this binary as `ARGS` and returns what it measured: (wall seconds, peak MiB).
fn measure_child(args: &[&str], cwd: &Path) -> (f64, f64) {
    measure(&std::env::current_exe().unwrap(), args, cwd)
}

/// Runs `exe` (this benchmark, or another build of it) as `ARGS`: (wall seconds, peak MiB).
fn measure(exe: &Path, args: &[&str], cwd: &Path) -> (f64, f64) {
    let started = Instant::now();
    let child = Command::new(exe)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&child.stderr);
    let measured = stderr
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .unwrap_or_else(|| panic!("{args:?} failed: {stderr}"));
    let peak: f64 = measured.split(' ').nth(1).unwrap().parse().unwrap();
    (wall, peak)
}

/// How many times each plan runs; the median is shown.
const PLAN_RUNS: usize = 3;

fn plan_bench(sizes: &[usize]) {
    let this = std::env::current_exe().unwrap();
    let baseline = std::env::var_os("BENCH_BASELINE").map(PathBuf::from);
    println!(
        "| build | employees | HR changes | plan wall time (median of {PLAN_RUNS}) | plan peak memory | plan summary | fetch alone, pages of 100 (first listing) | fetch alone, pages of 1000 | simulator: seed load, peak memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        let work = tempfile::tempdir().unwrap();
        let seed = work.path().join("seed.json");
        write_seed(&seed, n);
        // Pages of up to 1000: the API's cap is not documented. With pages of 100 the fetch
        // alone takes at least EMPLOYEES / 100 / 1000 seconds at the config's highest rate.
        let sim = Sim::start(&seed, &["--max-page-size", "1000"]);
        let repo = Repo::new(&sim.url, 1000, 8, 1000);
        // The first listing also has the simulator build its cache of users as JSON.
        let (fetch100_wall, fetch100_peak) =
            measure_child(&["fetch-phase", &sim.url, "100"], work.path());
        let (fetch_wall, fetch_peak) =
            measure_child(&["fetch-phase", &sim.url, "1000"], work.path());
        for changes in [false, true] {
            write_csv(&repo.hr(), 0..n, changes);
            repo.commit(if changes { "1% changes" } else { "no changes" });
            let out = work.path().join("plan.json");
            let out_str = out.to_string_lossy();
            let args = ["plan-phase", &repo.path_str(), &out_str];
            let builds: Vec<(&str, &Path)> = std::iter::once(("this", this.as_path()))
                .chain(baseline.as_deref().map(|b| ("baseline", b)))
                .collect();
            // Alternated: the machine's speed drifts from run to run.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); builds.len()];
            for _ in 0..PLAN_RUNS {
                for ((_, exe), runs) in builds.iter().zip(&mut runs) {
                    runs.push(measure(exe, &args, repo.path()));
                }
            }
            let plan: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            let summary = &plan["summary"];
            for ((build, _), mut runs) in builds.iter().zip(runs) {
                runs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let (wall, peak) = runs[runs.len() / 2];
                println!(
                    "| {build} | {n} | {} | {wall:.2} s | {peak:.0} MiB | {} updates, {} invites, {} skipped | {fetch100_wall:.2} s, {fetch100_peak:.0} MiB | {fetch_wall:.2} s, {fetch_peak:.0} MiB | {:.1} s, {:.0} MiB |",
                    if changes { "1%" } else { "none" },
                    summary["update"],
                    summary["invite"],
                    summary["skipped"],
                    sim.started_in,
                    sim.peak_mib(),
                );
            }
        }
    }
}

/// The saved plan of N invites (an HR record of N people, a network of groups only): its size per
/// invite, and the time to render and write it (median of 5, in this process, after the plan
/// was made by the real `plan --out` in a child); format 1's size for comparison.
fn invites_bench(n: usize) {
    use speakap_sync::plan::render;
    let work = tempfile::tempdir().unwrap();
    let sim = Sim::start(&seed_groups_only(work.path()), &["--max-page-size", "1000"]);
    let repo = Repo::new(&sim.url, 1000, 8, 1000);
    write_csv(&repo.hr(), 0..n, false);
    repo.commit("everyone new");
    let out = work.path().join("plan.json");
    let (wall, peak) = measure_child(
        &["plan-phase", &repo.path_str(), &out.to_string_lossy()],
        repo.path(),
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let started = Instant::now();
    let saved = render::SavedPlan::parse(&text).unwrap();
    let read = started.elapsed().as_secs_f64();
    assert_eq!(saved.plan.summary.invite, n);
    let mut writes: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            std::fs::write(&out, render::json(&saved.plan, None)).unwrap();
            started.elapsed().as_secs_f64()
        })
        .collect();
    writes.sort_by(f64::total_cmp);
    let format_1 = {
        let mut value = serde_json::to_value(&saved.plan).unwrap();
        value["checksum"] = saved.checksum.clone().into();
        serde_json::to_string_pretty(&value).unwrap().len()
    };
    println!(
        "| invites | plan file | per invite | render + write (median of 5; runs) | read back | format 1 file | plan (child) wall, peak |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {:.1} MB | {:.0} bytes | {:.2} s ({:.2}–{:.2} s) | {read:.2} s | {:.1} MB ({:.0} bytes per invite) | {wall:.2} s, {peak:.0} MiB |",
        text.len() as f64 / 1e6,
        text.len() as f64 / n as f64,
        writes[2],
        writes[0],
        writes[4],
        format_1 as f64 / 1e6,
        format_1 as f64 / n as f64,
    );
}

// ---- 2. apply at a rate limit ------------------------------------------------------------------

fn seed_groups_only(dir: &Path) -> PathBuf {
    let seed = dir.join("seed.json");
    write_seed(&seed, 0);
    seed
}

/// Accounts per email address and per XID, and the HR people without a right account.
fn check_network(sim: &Sim, people: usize) -> (usize, usize) {
    let users = sim.users();
    let mut by_email: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_xid: BTreeMap<String, usize> = BTreeMap::new();
    for user in &users {
        *by_email
            .entry(
                user["primaryEmail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
        if let Some(xid) = user["XID"].as_str() {
            *by_xid.entry(xid.to_string()).or_default() += 1;
        }
    }
    let duplicates =
        by_email.values().filter(|&&c| c > 1).count() + by_xid.values().filter(|&&c| c > 1).count();
    let missing = (0..people)
        .filter(|&i| {
            let p = person(i, Drift::None);
            by_xid.get(&p.xid) != Some(&1) || by_email.get(&p.email) != Some(&1)
        })
        .count();
    (duplicates, missing)
}

fn apply_bench(n: usize) {
    println!(
        "| employees | client rate | wall time | requests (429) | floor | over the floor | apply exit, counts | duplicates, missing | plan after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for client_rate in [50, 200] {
        let work = tempfile::tempdir().unwrap();
        let sim = Sim::start(
            &seed_groups_only(work.path()),
            &["--latency-ms", "20", "--rate-limit", "50"],
        );
        let repo = Repo::new(&sim.url, client_rate, 8, 100);
        write_csv(&repo.hr(), 0..n, false);
        repo.commit("hr");
        let log = work.path().join("apply.log");
        let (code, wall) = run_to_end(&repo, &["apply"], &log);
        let stats = sim.stats();
        let requests = stats["requests"].as_u64().unwrap();
        let limited = stats["rate_limited"].as_u64().unwrap();
        // The floor counts the requests that did work: a 429 answer is the client's loss.
        let floor = (requests - limited) as f64 / 50.0;
        let counts = repo.last_counts();
        let (duplicates, missing) = check_network(&sim, n);
        let (again, _) = run_to_end(
            &repo,
            &["plan", "--detailed-exitcode"],
            &work.path().join("plan.log"),
        );
        println!(
            "| {n} | {client_rate} req/s | {wall:.1} s | {requests} ({limited}) | {floor:.1} s | {:+.1}% | {code}, {counts} | {duplicates}, {missing} | {} |",
            (wall / floor - 1.0) * 100.0,
            if again == 0 { "empty" } else { "NOT empty" },
        );
    }
}

// ---- 3. chaos ----------------------------------------------------------------------------------

fn chaos_faults() -> Value {
    serde_json::json!({"error_rate": 0.10, "throttle_rate": 0.05, "drop_rate": 0.01})
}

fn chaos_bench(n: usize, trials: usize) {
    let work = tempfile::tempdir().unwrap();
    let sim = Sim::start(&seed_groups_only(work.path()), &["--fault-seed", "42"]);
    sim.set_faults(chaos_faults());
    let repo = Repo::new(&sim.url, 1000, 8, 100);
    write_csv(&repo.hr(), 0..n, false);
    repo.commit("hr");
    let log = work.path().join("apply.log");
    let (code, wall) = run_to_end(&repo, &["apply"], &log);
    let stats = sim.stats();
    let counts = repo.last_counts();
    sim.set_faults(serde_json::json!({}));
    let (duplicates, missing) = check_network(&sim, n);
    let (again, _) = run_to_end(
        &repo,
        &["plan", "--detailed-exitcode"],
        &work.path().join("plan.log"),
    );
    println!(
        "one run through faults: {n} employees, exit {code}, {wall:.1} s, sim stats {stats}, \
         apply counts {counts}, {duplicates} duplicates, {missing} missing, plan after: {}",
        if again == 0 { "empty" } else { "NOT empty" }
    );

    // Each trial brings new employees, so that the killed apply has work to be killed in.
    let batch = (n / 50).max(10);
    let mut rng = fastrand::Rng::with_seed(6);
    let mut people = n;
    let mut uncut: f64 = 0.0;
    println!(
        "| trial | new employees | killed after | re-run exit, time | duplicates | missing | plan after |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut late = 0;
    let (mut total_duplicates, mut total_missing, mut not_empty) = (0, 0, 0);
    for trial in 0..=trials {
        people += batch;
        write_csv(&repo.hr(), 0..people, false);
        repo.commit(&format!("trial {trial}"));
        sim.set_faults(chaos_faults());
        // Trial 0 is not killed: it measures how long an apply of a batch takes, and the later
        // trials are killed at a moment uniformly drawn from that span.
        let killed_after = (trial > 0).then(|| rng.f64() * uncut);
        let mut finished_first = false;
        if let Some(after) = killed_after {
            let mut child = speakap_sync(&repo, &["apply"], &work.path().join("killed.log"));
            std::thread::sleep(Duration::from_secs_f64(after));
            finished_first = child.try_wait().unwrap().is_some();
            let _ = child.kill(); // SIGKILL
            child.wait().unwrap();
        }
        let (code, rerun) = run_to_end(&repo, &["apply"], &log);
        if trial == 0 {
            uncut = rerun;
        }
        sim.set_faults(serde_json::json!({}));
        let (duplicates, missing) = check_network(&sim, people);
        let (again, _) = run_to_end(
            &repo,
            &["plan", "--detailed-exitcode"],
            &work.path().join("plan.log"),
        );
        let Some(after) = killed_after else { continue };
        total_duplicates += duplicates;
        total_missing += missing;
        not_empty += usize::from(again != 0);
        late += usize::from(finished_first);
        println!(
            "| {trial} | {batch} | {after:.2} s{} | {code}, {rerun:.1} s | {duplicates} | {missing} | {} |",
            if finished_first {
                " (had finished)"
            } else {
                ""
            },
            if again == 0 { "empty" } else { "NOT empty" }
        );
    }
    println!(
        "{trials} kill trials ({late} killed after the apply had finished; an uncut apply of a batch took {uncut:.1} s): \
         {total_duplicates} duplicates, {total_missing} missing, {not_empty} plans not empty"
    );
}
