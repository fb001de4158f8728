//! Apply integrity: what was reviewed is what is applied, and every apply is recorded, whatever
//! fails around it. Each test runs the real binaries against `speakap-sim` in a real git
//! repository, with the fault or mistake a real team meets.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn empty_network() -> Value {
    json!({"groups": seed_groups(), "users": []})
}

fn journal_files(repo: &ConfigRepo) -> Vec<String> {
    let dir = repo.path().join(".git/speakap-sync");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("journal-"))
                .collect()
        })
        .unwrap_or_default()
}

fn results(record: &Value) -> Vec<Value> {
    record["results"].as_array().unwrap().clone()
}

/// `speakap-sync` started in the background, its output kept for `wait_with_output`.
fn spawn_captured(args: &[&str], cwd: &Path) -> std::process::Child {
    sync_command(args, cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_network_that_fails_after_the_operations_ran_still_gets_its_record() {
    let sim = Sim::start_with(&empty_network(), &["--latency-ms", "60"]);
    let repo = standard_repo(&sim, &numbered_rows(120));
    let dir = path_str(repo.path());
    let child = spawn_captured(&["apply", "--repo", &dir], repo.path());
    // Once the invitations are out, every connection drops: the follow-ups fail, and so does
    // the final read of the network.
    wait_until("the invitations", || !sim.users().is_empty());
    sim.set_faults(&json!({"drop_rate": 1.0}));
    let apply = child.wait_with_output().unwrap();
    sim.set_faults(&json!({}));
    assert_eq!(code(&apply), 1, "{}{}", stdout(&apply), stderr(&apply));

    let record = repo
        .state_file("apply.json")
        .unwrap_or_else(|| panic!("no audit record: {}", stderr(&apply)));
    assert!(
        record["notes"]
            .to_string()
            .contains("could not be read after the run"),
        "{record}"
    );
    let invited = results(&record)
        .into_iter()
        .filter(|r| r["operation"] == "invite" && r["ok"] == true)
        .count();
    assert_eq!(invited, 120, "{record}");
    assert!(
        results(&record)
            .iter()
            .any(|r| r["outcome"] == "unknown" || r["outcome"] == "failed"),
        "the dropped follow-ups are not done: {record}"
    );
    assert!(
        journal_files(&repo).is_empty(),
        "{:?}",
        journal_files(&repo)
    );
    // The ledger knows the new accounts: the next apply finishes the job, nobody twice.
    let ledger = repo.state_file(&format!("ledger/{NETWORK}.json")).unwrap();
    assert_eq!(ledger["users"].as_object().unwrap().len(), 120);
    let again = run(&["apply", "--repo", &dir], repo.path());
    assert_eq!(code(&again), 0, "{}{}", stdout(&again), stderr(&again));
    assert!(
        !stdout(&again).lines().any(|l| l.ends_with(" invite")),
        "{}",
        stdout(&again)
    );
    assert_eq!(sim.users().len(), 120);
    let plan = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stdout(&plan));
}

#[test]
fn an_audit_commit_that_cannot_be_written_stays_in_the_journal_until_the_next_run_records_it() {
    let sim = Sim::start_with(&empty_network(), &["--latency-ms", "30"]);
    let repo = standard_repo(&sim, &numbered_rows(40));
    let dir = path_str(repo.path());
    let child = spawn_captured(&["apply", "--repo", &dir], repo.path());
    // Another git process takes the state ref's lock while the apply runs.
    wait_until("the journal", || !journal_files(&repo).is_empty());
    let ref_lock = repo.path().join(".git/refs/speakap-sync/state.lock");
    std::fs::create_dir_all(ref_lock.parent().unwrap()).unwrap();
    std::fs::write(&ref_lock, "").unwrap();
    let apply = child.wait_with_output().unwrap();
    assert_eq!(code(&apply), 1, "{}", stdout(&apply));
    assert!(
        stderr(&apply).contains("kept in the journal"),
        "{}",
        stderr(&apply)
    );
    assert_eq!(repo.state_commit_count(), 0);
    assert_eq!(sim.users().len(), 40);

    std::fs::remove_file(&ref_lock).unwrap();
    let plan = run(&["plan", "--repo", &dir], repo.path());
    assert!(
        stderr(&plan).contains("has not recorded itself yet"),
        "a plan warns that it does not know the last run: {}",
        stderr(&plan)
    );
    let audit = run(&["audit", "--repo", &dir], repo.path());
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    assert!(
        stderr(&audit).contains("had not recorded itself"),
        "{}",
        stderr(&audit)
    );
    assert!(stdout(&audit).contains("40 invited"), "{}", stdout(&audit));
    assert_eq!(repo.state_commit_count(), 1);
    assert!(journal_files(&repo).is_empty());
    let plan = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stdout(&plan));
}

#[test]
fn a_killed_apply_is_recorded_by_the_next_one_with_its_open_operations_unknown() {
    // At 100 ms a request, the memberships after the invitations take about two seconds, so
    // the kill 300 ms after the first account lands mid-apply even on a loaded machine.
    let sim = Sim::start_with(&empty_network(), &["--latency-ms", "100"]);
    let repo = standard_repo(&sim, &numbered_rows(60));
    let dir = path_str(repo.path());
    let mut child = sync_command(&["apply", "--repo", &dir], repo.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the invitations", || !sim.users().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(repo.state_commit_count(), 0);

    let apply = run(&["apply", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    assert!(stderr(&apply).contains("had not recorded itself"));
    assert_eq!(repo.state_commit_count(), 2);
    let audit = run(&["audit", "--repo", &dir, "--format", "json"], repo.path());
    let history: Value = serde_json::from_str(&stdout(&audit)).unwrap();
    let recovered = &history[1];
    assert!(
        recovered["notes"]
            .to_string()
            .contains("ended before it recorded itself"),
        "{recovered}"
    );
    let invited = results(recovered)
        .into_iter()
        .filter(|r| r["operation"] == "invite" && r["ok"] == true)
        .count();
    assert_eq!(invited, 60, "{recovered}");
    assert!(
        results(recovered).iter().all(|r| r["outcome"] != "failed"),
        "{recovered}"
    );
    assert_eq!(sim.users().len(), 60);
}

fn printable_repo(sim: &Sim, hr_rows: &str) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &sync_yaml(&sim.url).replace("policy:\n", "policy:\n  invite:\n    channel: printable\n"),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{hr_rows}"));
    repo.commit("config");
    repo
}

#[cfg(unix)]
#[test]
fn the_credentials_file_is_checked_before_anything_is_applied_and_holds_inert_values() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&empty_network());
    let hostile = "1,anna@example.com,=HYPERLINK(\"http://x\"),@SUM(A1),Baker,N,1\n\
                   2,bert@example.com,Bert,-Bos,Baker,N,1\n";
    let repo = printable_repo(&sim, hostile);
    let dir = path_str(repo.path());

    let unwritable = run(
        &[
            "apply",
            "--repo",
            &dir,
            "--credentials",
            "/nonexistent-dir/codes.csv",
        ],
        repo.path(),
    );
    assert_eq!(code(&unwritable), 1);
    assert!(
        stderr(&unwritable).contains("--credentials /nonexistent-dir/codes.csv")
            && stderr(&unwritable).contains("nothing was applied"),
        "{}",
        stderr(&unwritable)
    );
    assert!(
        sim.users().is_empty(),
        "invited without a place for the codes"
    );

    let out = tempfile::tempdir().unwrap();
    let open_file = out.path().join("open.csv");
    std::fs::write(&open_file, "").unwrap();
    std::fs::set_permissions(&open_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = run(
        &[
            "apply",
            "--repo",
            &dir,
            "--credentials",
            &path_str(&open_file),
        ],
        repo.path(),
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("mode 0644"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.users().is_empty());

    let codes = out.path().join("codes.csv");
    let apply = run(
        &["apply", "--repo", &dir, "--credentials", &path_str(&codes)],
        repo.path(),
    );
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let mode = std::fs::metadata(&codes).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&codes).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    for row in &rows {
        for value in row.iter() {
            assert!(
                !value.starts_with(['=', '+', '-', '@']),
                "a spreadsheet would run {value:?}: {text}"
            );
        }
    }
    assert!(text.contains("'=HYPERLINK"), "{text}");
}

#[test]
fn an_edited_plan_with_its_checksum_recomputed_is_refused_and_the_true_plan_applies() {
    use speakap_sync::config::NetworkRole;
    use speakap_sync::plan::Change;
    use speakap_sync::plan::render::{self, SavedPlan};

    let sim = Sim::start(&empty_network());
    let repo = standard_repo(&sim, &numbered_rows(6));
    let dir = path_str(repo.path());
    let out = tempfile::tempdir().unwrap();
    let plan_path = out.path().join("plan.json");
    let plan = run(
        &["plan", "--repo", &dir, "--out", &path_str(&plan_path)],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let reviewed = std::fs::read_to_string(&plan_path).unwrap();

    // Someone makes a baker network admin and recomputes the checksum, as anyone can.
    let mut saved = SavedPlan::parse(&reviewed).unwrap();
    let baker = saved
        .plan
        .users
        .iter_mut()
        .find(|u| u.xid == "1002")
        .unwrap();
    baker.changes.push(Change::SetNetworkRole {
        from: "member".into(),
        to: NetworkRole::Admin,
        source: None,
    });
    let edited = out.path().join("edited.json");
    std::fs::write(&edited, render::json(&saved.plan, None)).unwrap();
    let refused = run(
        &["apply", "--repo", &dir, "--plan", &path_str(&edited)],
        repo.path(),
    );
    assert_eq!(code(&refused), 1, "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("is not the plan its inputs give")
            && stderr(&refused).contains("first difference at 1002"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.users().is_empty(), "nothing applied");

    // The file as reviewed applies exactly.
    let apply = run(
        &["apply", "--repo", &dir, "--plan", &path_str(&plan_path)],
        repo.path(),
    );
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let baker = sim.user_by_xid("1002").unwrap();
    assert_ne!(Sim::network_role(&baker), "admin");
}

#[test]
fn a_second_apply_is_refused_while_one_runs_and_queues_with_wait() {
    let sim = Sim::start_with(&empty_network(), &["--latency-ms", "40"]);
    let repo = standard_repo(&sim, &numbered_rows(40));
    let dir = path_str(repo.path());
    let first = spawn_captured(&["apply", "--repo", &dir], repo.path());
    let lock = repo
        .path()
        .join(format!(".git/speakap-sync/apply-{NETWORK}.lock"));
    wait_until("the lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("pid"))
    });
    let second = run(&["apply", "--repo", &dir], repo.path());
    assert_eq!(code(&second), 1);
    assert!(
        stderr(&second).contains("another apply of network")
            && stderr(&second).contains(&format!("pid {}", first.id())),
        "{}",
        stderr(&second)
    );
    let queued = spawn_captured(&["apply", "--repo", &dir, "--wait"], repo.path());
    let first = first.wait_with_output().unwrap();
    let queued = queued.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}{}", stdout(&first), stderr(&first));
    assert!(!stdout(&first).contains("FAILED"), "{}", stdout(&first));
    assert_eq!(code(&queued), 0, "{}{}", stdout(&queued), stderr(&queued));
    assert!(
        stdout(&queued).contains("No changes"),
        "{}",
        stdout(&queued)
    );
    assert_eq!(repo.state_commit_count(), 1);
    assert_eq!(sim.users().len(), 40);
}

#[test]
fn another_day_is_refused_on_a_real_network_and_recorded_when_allowed() {
    let sim = Sim::start_with(&empty_network(), &["--as-real-network"]);
    let repo = standard_repo(&sim, &numbered_rows(3));
    let dir = path_str(repo.path());
    let refused = run(
        &["apply", "--repo", &dir, "--now", "2030-01-01"],
        repo.path(),
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("--now 2030-01-01 is not today")
            && stderr(&refused).contains("--allow-other-date"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.users().is_empty());

    let allowed = run(
        &[
            "apply",
            "--repo",
            &dir,
            "--now",
            "2030-01-01",
            "--allow-other-date",
        ],
        repo.path(),
    );
    assert_eq!(code(&allowed), 0, "{}", stderr(&allowed));
    let record = repo.state_file("apply.json").unwrap();
    assert_eq!(record["as_of"], "2030-01-01");
    assert!(repo.state_message().contains("As-Of: 2030-01-01"));
}

#[test]
fn invites_that_took_effect_under_faults_are_never_recorded_as_failed() {
    // Every invite call fails, half of them after taking effect; the lookups that would tell
    // stay healthy, so the run ends with invitations whose outcome it could not see itself.
    let sim = Sim::start_with(&empty_network(), &["--fault-seed", "5"]);
    sim.set_faults(&json!({"error_rate_by_endpoint": {"invite": 1.0}}));
    let repo = standard_repo(&sim, &numbered_rows(8));
    let dir = path_str(repo.path());
    let apply = run(&["apply", "--repo", &dir], repo.path());
    sim.set_faults(&json!({}));
    let record = repo
        .state_file("apply.json")
        .unwrap_or_else(|| panic!("{}", stderr(&apply)));
    let accounts: Vec<String> = sim
        .users()
        .iter()
        .map(|u| u["primaryEmail"].as_str().unwrap().to_string())
        .collect();
    for result in results(&record)
        .iter()
        .filter(|r| r["operation"] == "invite")
    {
        let xid: usize = result["xid"].as_str().unwrap().parse().unwrap();
        let exists = accounts.contains(&format!("p{}@example.com", xid - 1000));
        assert_eq!(
            result["ok"] == true,
            exists,
            "the record and the network disagree: {result}"
        );
        if !exists {
            assert_eq!(result["outcome"], "unknown", "{result}");
        }
    }
}

#[test]
fn two_clones_racing_to_record_keep_both_records_once_rebased() {
    let sim = Sim::start(&empty_network());
    let repo = standard_repo(&sim, &numbered_rows(4));
    let dir = path_str(repo.path());
    assert_eq!(code(&run(&["apply", "--repo", &dir], repo.path())), 0);
    let first = git_rev(repo.path(), "refs/speakap-sync/state");

    // Two clones of one origin, each applying its own change, as two runners would.
    let origin = tempfile::tempdir().unwrap();
    git_in(origin.path(), &["init", "-q", "--bare", "-b", "main"]);
    git_in(
        repo.path(),
        &["remote", "add", "origin", &path_str(origin.path())],
    );
    git_in(
        repo.path(),
        &[
            "push",
            "-q",
            "origin",
            "HEAD:refs/heads/main",
            "refs/speakap-sync/state",
        ],
    );
    let clone = tempfile::tempdir().unwrap();
    git_in(
        clone.path(),
        &["clone", "-q", &path_str(origin.path()), "."],
    );
    git_in(
        clone.path(),
        &[
            "fetch",
            "-q",
            "origin",
            "refs/speakap-sync/state:refs/speakap-sync/state",
        ],
    );
    for (path, title) in [(clone.path(), "Head Baker"), (repo.path(), "Chief Baker")] {
        let hr = std::fs::read_to_string(path.join("hr.csv")).unwrap();
        let xid = if title == "Head Baker" {
            "1002"
        } else {
            "1003"
        };
        let changed: String = hr
            .lines()
            .map(|l| {
                if l.starts_with(xid) {
                    l.replace("Baker", title)
                } else {
                    l.to_string()
                }
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(path.join("hr.csv"), changed).unwrap();
        git_in(
            path,
            &[
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@x",
                "commit",
                "-qam",
                title,
            ],
        );
    }
    // The clone applies and pushes first; the original's record, made from the older tip, is
    // then rejected by origin until it is rebased onto the clone's.
    let cloned = path_str(clone.path());
    let apply = run(&["apply", "--repo", &cloned], clone.path());
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    git_in(
        clone.path(),
        &["push", "-q", "origin", "refs/speakap-sync/state"],
    );
    let apply = run(&["apply", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let rejected = std::process::Command::new("git")
        .args(["push", "-q", "origin", "refs/speakap-sync/state"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(!rejected.status.success(), "a non-fast-forward push");
    git_in(
        repo.path(),
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/speakap-sync/state:refs/speakap-sync/upstream",
        ],
    );
    let rebase = run(
        &[
            "audit",
            "--repo",
            &dir,
            "--rebase-onto",
            "refs/speakap-sync/upstream",
        ],
        repo.path(),
    );
    assert_eq!(code(&rebase), 0, "{}", stderr(&rebase));
    git_in(
        repo.path(),
        &["push", "-q", "origin", "refs/speakap-sync/state"],
    );
    let log = git_in(
        origin.path(),
        &["log", "--format=%s%n%b", "refs/speakap-sync/state"],
    );
    assert_eq!(log.matches("apply ").count(), 3, "{log}");
    assert!(log.contains("Rebased-From:"), "{log}");
    assert_ne!(git_rev(repo.path(), "refs/speakap-sync/state"), first);
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn git_rev(dir: &Path, rev: &str) -> String {
    git_in(dir, &["rev-parse", rev]).trim().to_string()
}

#[test]
fn a_plan_saved_in_format_1_still_applies_and_an_unknown_format_is_refused_clearly() {
    use speakap_sync::plan::render::SavedPlan;

    let sim = Sim::start(&empty_network());
    let repo = standard_repo(&sim, &numbered_rows(4));
    let dir = path_str(repo.path());
    let out = tempfile::tempdir().unwrap();
    let plan_path = out.path().join("plan.json");
    let plan = run(
        &["plan", "--repo", &dir, "--out", &path_str(&plan_path)],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let text = std::fs::read_to_string(&plan_path).unwrap();
    let apply = |path: &std::path::Path| {
        run(
            &["apply", "--repo", &dir, "--plan", &path_str(path)],
            repo.path(),
        )
    };

    // A newer format than this version knows.
    let newer = out.path().join("newer.json");
    std::fs::write(
        &newer,
        text.replace("\"format_version\": 2", "\"format_version\": 3"),
    )
    .unwrap();
    let refused = apply(&newer);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused)
            .contains("it is in plan format 3, and this speakap-sync reads formats 1 and 2"),
        "{}",
        stderr(&refused)
    );

    // Format 1, as earlier versions wrote it: every provenance in full, the checksum over the
    // plan's own serialization.
    let mut plan = SavedPlan::parse(&text).unwrap().plan;
    plan.format_version = 1;
    let format_1 = |plan: &speakap_sync::plan::Plan| {
        let mut value = serde_json::to_value(plan).unwrap();
        value["checksum"] = format!(
            "sha256:{}",
            speakap_sync::digest::sha256_hex(serde_json::to_vec(plan).unwrap())
        )
        .into();
        serde_json::to_string_pretty(&value).unwrap()
    };
    let old = out.path().join("format-1.json");
    let edited = out.path().join("format-1-edited.json");
    std::fs::write(&old, format_1(&plan)).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&format_1(&plan)).unwrap();
    value["users"][0]["name"] = "Someone Else".into();
    std::fs::write(&edited, value.to_string()).unwrap();
    let refused = apply(&edited);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("was edited after it was written"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.users().is_empty(), "nothing applied");
    let applied = apply(&old);
    assert_eq!(
        code(&applied),
        0,
        "{}{}",
        stdout(&applied),
        stderr(&applied)
    );
    assert_eq!(sim.users().len(), 4);
}
