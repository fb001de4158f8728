//! Apply under faults: injected 5xx (before and after the effect), 429 with Retry-After,
//! dropped connections; and apply killed at random moments, then run again.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A simulator process with fault flags.
struct FaultySim {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl FaultySim {
    fn start(flags: &[&str]) -> FaultySim {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.json");
        std::fs::write(
            &seed,
            json!({"groups": seed_groups(), "users": []}).to_string(),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_speakap-sim"))
            .args(["serve", "--network", NETWORK, "--token", TOKEN, "--seed"])
            .arg(&seed)
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().trim_start_matches("listening on ").to_string();
        FaultySim {
            child,
            url,
            _dir: dir,
        }
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        runtime().block_on(async {
            let mut request = reqwest::Client::new()
                .request(method, format!("{}{path}", self.url))
                .header("Authorization", format!("Bearer {TOKEN}"));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.json::<Value>().await.unwrap_or(Value::Null)
        })
    }

    fn calm(&self) {
        self.admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({})));
    }

    /// Active users, straight from the API (faults off while looking).
    fn users(&self) -> Vec<Value> {
        let sim = Sim::attach(&self.url);
        sim.users()
    }
}

impl Drop for FaultySim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_for(url: &str, n: usize, rps: u32) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &sync_yaml(url).replace(
            "requests_per_second: 1000",
            &format!("requests_per_second: {rps}"),
        ),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{}", numbered_rows(n)));
    repo.commit("config");
    repo
}

/// Every person in HR has exactly one account, with the right XID; no address twice.
fn assert_one_account_each(users: &[Value], n: usize) {
    let mut by_email: BTreeMap<String, usize> = BTreeMap::new();
    for user in users {
        *by_email
            .entry(user["primaryEmail"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        by_email.values().all(|&count| count == 1),
        "duplicates: {by_email:?}"
    );
    for i in 0..n {
        let account = users
            .iter()
            .find(|u| u["primaryEmail"] == format!("p{i}@example.com"));
        let account = account.unwrap_or_else(|| panic!("p{i} has no account"));
        assert_eq!(account["XID"], (1000 + i).to_string());
    }
}

#[test]
fn apply_converges_in_one_run_through_5xx_429_and_dropped_connections() {
    let n = 120;
    let sim = FaultySim::start(&[
        "--fail-rate",
        "0.1",
        "--drop-rate",
        "0.01",
        "--rate-limit",
        "150",
        "--fault-seed",
        "7",
    ]);
    let repo = repo_for(&sim.url, n, 1000);
    let dir = path_str(repo.path());
    let apply = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}\n{}", stdout(&apply), stderr(&apply));
    let stats = sim.admin(reqwest::Method::GET, "/_sim/stats", None);
    assert!(
        stats["errors"].as_u64().unwrap() > 0 && stats["dropped"].as_u64().unwrap() > 0,
        "faults were injected: {stats}"
    );
    let record = repo.state_file("apply.json").unwrap();
    assert_eq!(record["counts"]["failed"], 0);
    assert!(
        record["counts"]["retries"].as_u64().unwrap() > 0,
        "{record}"
    );

    sim.calm();
    assert_one_account_each(&sim.users(), n);
    let again = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&again), 0, "{}", stdout(&again));
}

#[test]
fn an_apply_killed_at_any_moment_resumes_without_duplicates_or_losses() {
    let n = 80;
    let sim = FaultySim::start(&[
        "--latency-ms",
        "4",
        "--fail-rate",
        "0.05",
        "--fault-seed",
        "11",
    ]);
    let repo = repo_for(&sim.url, n, 1000);
    let dir = path_str(repo.path());
    let mut rng = fastrand::Rng::with_seed(3);
    for trial in 0..4 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
            .args(["apply", "--adopt", "--repo", &dir])
            .current_dir(repo.path())
            .env("SPEAKAP_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(50..700)));
        let _ = child.kill(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        eprintln!("trial {trial}: {status:?}");
    }
    // Run to completion: everything converges, nobody twice.
    let apply = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}\n{}", stdout(&apply), stderr(&apply));
    sim.calm();
    assert_one_account_each(&sim.users(), n);
    let again = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&again), 0, "{}", stdout(&again));
}
