//! End to end: validate, plan and apply with the real binary against the simulator, checked over
//! HTTP and in the audit commit.

mod common;

use common::*;
use serde_json::json;

const HR: &str = "\
100,anna@example.com,Anna,Smit,Store Manager,N,1
101,bert@example.com,Bert,Bos,Baker,N,1
102,carla@example.com,Carla,Kok,HR Manager,S,2
103,dirk@example.com,Dirk,Mol,Baker,S,1
";

fn seed() -> serde_json::Value {
    json!({
        "groups": seed_groups(),
        "users": [
            // Known, with an outdated job title and a book club membership added by hand.
            {"xid": "101", "email": "bert@example.com", "firstName": "Bert", "familyName": "Bos", "jobTitle": "Trainee",
             "groups": ["Store North", "Bakery", "Book club"]},
            // A leaver.
            {"xid": "199", "email": "old@example.com", "firstName": "Olga", "familyName": "Oud", "groups": ["Store South"]},
            // Created by hand without an XID: linked by email, not invited twice.
            {"email": "dirk@example.com", "firstName": "Dirk", "familyName": "Mol"}
        ]
    })
}

#[test]
fn plan_apply_then_plan_shows_no_changes() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());

    let validate = run(&["validate", "--repo", &dir], repo.path());
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    assert!(stdout(&validate).contains("valid: 2 file(s)"));

    let plan = run(
        &["plan", "--repo", &dir, "--now", "2026-11-21"],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("Plan: 2 to invite, 2 to update, 1 to suspend, 0 records skipped."),
        "{text}"
    );
    assert!(
        text.contains("- job_title: Trainee\n      + job_title: Baker"),
        "{text}"
    );

    let apply = run(
        &["apply", "--adopt", "--repo", &dir, "--now", "2026-11-21"],
        repo.path(),
    );
    assert_eq!(code(&apply), 0, "{}\n{}", stdout(&apply), stderr(&apply));
    assert!(
        stdout(&apply).contains(
            "Applied: 2 invited, 0 restored, 2 updated, 1 suspended, 0 deleted, 0 anonymized, 0 failed, 0 retried."
        ),
        "{}",
        stdout(&apply)
    );

    // The network, as the API shows it.
    let users = sim.users();
    assert_eq!(users.len(), 5, "the linked account is not duplicated");
    let leaver = sim.user_by_xid("199").unwrap();
    assert_eq!(
        leaver["status"], "suspended",
        "the leaver is suspended, recoverable"
    );
    let anna = sim.user_by_xid("100").unwrap();
    assert_eq!(
        sim.group_names(&anna),
        ["Bakery", "Managers", "Store North (admin)"]
    );
    let bert = sim.user_by_xid("101").unwrap();
    assert_eq!(bert["jobTitle"], "Baker");
    assert_eq!(
        sim.group_names(&bert),
        ["Bakery", "Book club", "Store North"],
        "the hand-added group stays"
    );
    let carla = sim.user_by_xid("102").unwrap();
    assert_eq!(Sim::network_role(&carla), "admin");
    assert_eq!(carla["name"]["familyName"], "Kok");
    let dirk = sim.user_by_xid("103").unwrap();
    assert_eq!(dirk["primaryEmail"], "dirk@example.com");

    // The audit commit.
    let record = repo.state_file("apply.json").expect("an audit commit");
    let head = git2::Repository::open(repo.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    assert_eq!(record["config_commit"], head);
    assert_eq!(record["network"], NETWORK);
    assert_eq!(record["counts"]["failed"], 0);
    assert!(
        record["plan_checksum"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(record["hr"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(record["actor"], "Test Admin");
    let ledger = repo.state_file(&format!("ledger/{NETWORK}.json")).unwrap();
    assert_eq!(ledger["users"]["100"]["eid"], anna["EID"]);
    assert_eq!(ledger["users"]["102"]["network_admin"], true);
    assert_eq!(
        ledger["users"]["101"]["groups"].as_array().unwrap().len(),
        2,
        "the book club is not the sync's"
    );
    assert!(
        repo.state_message()
            .contains(&format!("Config-Commit: {head}"))
    );

    let again = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&again), 0, "{}", stdout(&again));
    assert!(stdout(&again).contains("No changes"), "{}", stdout(&again));

    let audit = run(&["audit", "--repo", &dir, "--format", "json"], repo.path());
    let entries: serde_json::Value = serde_json::from_str(&stdout(&audit)).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["counts"]["invited"], 2);
}

#[test]
fn a_mover_loses_only_the_memberships_the_sync_granted() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );

    // Bert moves to the south store and becomes store manager.
    repo.write(
        "hr.csv",
        &format!(
            "{HR_HEADER}{}",
            HR.replace(
                "101,bert@example.com,Bert,Bos,Baker,N,1",
                "101,bert@example.com,Bert,Bos,Store Manager,S,1"
            )
        ),
    );
    let plan = run(
        &["plan", "--repo", &dir, "--detailed-exitcode"],
        repo.path(),
    );
    assert_eq!(code(&plan), 2, "changes pending: {}", stderr(&plan));
    let text = stdout(&plan);
    assert!(text.contains("- group \"Store North\""), "{text}");
    assert!(!text.contains("Book club"), "{text}");
    assert!(
        text.contains("~ primary business unit \"Store South\" (was \"Store North\")"),
        "{text}"
    );
    assert!(
        text.contains("⚠ + business unit \"Store South\" as local admin"),
        "{text}"
    );

    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );
    let bert = sim.user_by_xid("101").unwrap();
    let south = sim
        .groups()
        .into_iter()
        .find(|g| g["name"] == "Store South")
        .unwrap();
    assert_eq!(bert["primaryBusinessUnit"], south["EID"]);
    assert_eq!(
        sim.group_names(&bert),
        ["Bakery", "Book club", "Managers", "Store South (admin)"]
    );

    // A managed membership removed by hand comes back; the ledger says it is the sync's.
    let group = sim
        .groups()
        .into_iter()
        .find(|g| g["name"] == "Bakery")
        .unwrap();
    remove_from_group(
        &sim,
        bert["EID"].as_str().unwrap(),
        group["EID"].as_str().unwrap(),
    );
    let plan = run(&["plan", "--repo", &dir], repo.path());
    assert!(
        stdout(&plan).contains("+ department \"Bakery\""),
        "{}",
        stdout(&plan)
    );
}

fn remove_from_group(sim: &Sim, user: &str, group: &str) {
    let request = sim
        .api(
            reqwest::Method::POST,
            &format!("users/{user}/groups/remove"),
        )
        .form(&[("groups[]", group)]);
    let status = runtime().block_on(async { request.send().await.unwrap().status() });
    assert!(status.is_success());
}

#[test]
fn a_plan_over_a_safety_threshold_is_blocked_until_forced_with_its_checksum() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );

    // An export that lost half the company.
    repo.write(
        "hr.csv",
        &format!(
            "{HR_HEADER}{}",
            HR.lines()
                .take(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        ),
    );
    let plan = run(&["plan", "--repo", &dir], repo.path());
    assert_eq!(code(&plan), 3);
    let text = stdout(&plan);
    assert!(
        text.contains(
            "Blocked by a safety threshold:\n  Too many offboards: 75.0% is over 50% (3/4)\n"
        ),
        "{text}"
    );
    let checksum = text
        .lines()
        .find_map(|l| l.strip_prefix("Checksum: "))
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!(
            "  To apply exactly this plan once reviewed: speakap-sync apply --force {checksum}\n"
        )),
        "{text}"
    );

    let blocked = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&blocked), 3);
    assert!(
        stderr(&blocked).contains(&format!("apply --force {checksum}")),
        "{}",
        stderr(&blocked)
    );
    let active = || {
        sim.users()
            .into_iter()
            .filter(|u| u["status"] == "active")
            .count()
    };
    assert_eq!(active(), 4, "nothing applied");

    let wrong = run(
        &["apply", "--adopt", "--repo", &dir, "--force", "sha256:0000"],
        repo.path(),
    );
    assert_eq!(code(&wrong), 1);
    assert!(stderr(&wrong).contains("does not name this plan"));
    assert_eq!(active(), 4, "nothing applied");

    let forced = run(
        &["apply", "--adopt", "--repo", &dir, "--force", &checksum],
        repo.path(),
    );
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert_eq!(active(), 1);
    assert_eq!(repo.state_file("apply.json").unwrap()["forced"], true);

    // The full export is back: restoring the three is not a change of the one active account,
    // so undoing the mass suspension is not blocked.
    repo.write("hr.csv", &format!("{HR_HEADER}{HR}"));
    let plan = run(&["plan", "--repo", &dir], repo.path());
    assert_eq!(code(&plan), 0, "{}", stdout(&plan));
    assert_eq!(
        stdout(&plan).matches("+ restore").count(),
        3,
        "{}",
        stdout(&plan)
    );
}

#[test]
fn records_with_input_errors_are_skipped_and_never_offboarded() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );

    // Bert's row loses its email, Dirk's gets an unknown store, and Anna appears twice.
    let broken = "\
100,anna@example.com,Anna,Smit,Store Manager,N,1
100,anna2@example.com,Anna,Smit,Store Manager,N,1
101,,Bert,Bos,Baker,N,1
102,carla@example.com,Carla,Kok,HR Manager,S,2
103,dirk@example.com,Dirk,Mol,Baker,X,1
";
    repo.write("hr.csv", &format!("{HR_HEADER}{broken}"));
    let plan = run(&["plan", "--repo", &dir], repo.path());
    let text = stdout(&plan);
    assert_eq!(code(&plan), 0, "{text}{}", stderr(&plan));
    assert!(text.contains("No changes"), "{text}");
    assert!(
        text.contains("hr.csv:2  XID 100: duplicate employee ID, on lines 2, 3"),
        "{text}"
    );
    assert!(
        text.contains("hr.csv:4  XID 101: missing email address (column \"Email\")"),
        "{text}"
    );
    assert!(
        text.contains("hr.csv:6  XID 103: unknown location code \"X\""),
        "{text}"
    );
    assert!(!text.contains("suspend "), "{text}");
}

#[test]
fn worktree_plans_are_not_applicable_and_apply_refuses_uncommitted_config() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("equals: HR Manager", "equals: Nobody"),
    );

    let plan = run(&["plan", "--repo", &dir, "--worktree"], repo.path());
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("working tree (uncommitted): this plan cannot be applied"));
    assert!(!stdout(&plan).contains("network role"), "{}", stdout(&plan));

    let refused = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused)
            .contains("uncommitted changes in rules.yaml: apply only applies committed config"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(sim.users().len(), 3, "nothing applied");

    repo.write("rules.yaml", RULES_YAML);
    let apply = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    let carla = sim.user_by_xid("102").unwrap();
    assert_eq!(
        Sim::network_role(&carla),
        "admin",
        "the committed rule was applied"
    );
}

#[test]
fn group_names_missing_from_the_network_fail_the_plan_with_their_place() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("S: Store South", "S: Store Zuid"),
    );
    repo.commit("typo");
    let plan = run(&["plan", "--repo", &path_str(repo.path())], repo.path());
    assert_eq!(code(&plan), 1);
    let err = stderr(&plan);
    assert!(
        err.contains("error[unknown-group]: group \"Store Zuid\" does not exist in the network"),
        "{err}"
    );
    assert!(err.contains("--> rules.yaml:6:1"), "{err}");
    assert_eq!(sim.users().len(), 3, "nothing applied");

    // A group of another kind: a business unit mapped to a restricted group.
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("S: Store South", "S: Managers"),
    );
    repo.commit("wrong kind");
    let plan = run(&["plan", "--repo", &path_str(repo.path())], repo.path());
    assert_eq!(code(&plan), 1);
    let err = stderr(&plan);
    assert!(
        err.contains(
            "error[group-type]: group \"Managers\" is a restricted group, not a business_unit group"
        ),
        "{err}"
    );
    assert!(err.contains("--> rules.yaml:6:1"), "{err}");
}

#[test]
fn the_quick_start_plans_and_applies_the_example_repo_on_the_embedded_simulator() {
    let repo = ConfigRepo::new();
    copy_dir(&example_repo(), &repo.path().join("example-repo"));
    repo.commit("example");
    let dir = path_str(&repo.path().join("example-repo"));

    let plan = run(
        &["plan", "--repo", &dir, "--now", "2026-11-21"],
        repo.path(),
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("Plan: 44 to invite, 8 to update, 2 to suspend, 2 records skipped."),
        "{text}"
    );
    assert!(text.contains("Unmanaged (2)"), "{text}");
    assert!(
        text.contains("1057 Frank van den Berg  invite on 2029-06-01"),
        "{text}"
    );

    let apply = run(
        &["apply", "--adopt", "--repo", &dir, "--now", "2026-11-21"],
        repo.path(),
    );
    assert_eq!(code(&apply), 0, "{}\n{}", stdout(&apply), stderr(&apply));
    let again = run(
        &[
            "plan",
            "--repo",
            &dir,
            "--now",
            "2026-11-21",
            "--detailed-exitcode",
        ],
        repo.path(),
    );
    assert_eq!(code(&again), 0, "{}", stdout(&again));
    assert!(stdout(&again).contains("No changes"));
    assert_eq!(repo.state_commit_count(), 1);
}

#[test]
fn the_text_plan_reads_as_a_review() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let plan = run(
        &[
            "plan",
            "--repo",
            &path_str(repo.path()),
            "--now",
            "2026-11-21",
        ],
        repo.path(),
    );
    insta::with_settings!({filters => vec![
        (r"commit [0-9a-f]{12}", "commit [commit]"),
        (r"sha256:[0-9a-f]{64}", "sha256:[checksum]"),
    ]}, {
        insta::assert_snapshot!(stdout(&plan));
    });
}

#[test]
fn a_usage_error_exits_1_never_the_2_of_a_plan_with_changes() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["plan", "--detailed-exitcode", "--formt", "json"][..],
        &["plan", "--now", "2026-13-01"],
        &["plan", "--format", "yaml"],
    ] {
        let output = run(args, dir.path());
        assert_eq!(code(&output), 1, "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("error:"), "{}", stderr(&output));
    }
    let help = run(&["plan", "--help"], dir.path());
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("--detailed-exitcode"));
}

#[test]
fn output_into_a_reader_that_goes_away_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let sim = Sim::start(&seed());
    let rows: String = (0..2000)
        .map(|i| {
            format!(
                "{},p{i}@example.com,Person,Number {i},Baker,N,1\n",
                5000 + i
            )
        })
        .collect();
    let repo = standard_repo(&sim, &rows);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(["plan", "--repo", &path_str(repo.path())])
        .env("SPEAKAP_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Plan for network"), "{first}");
    // The reader is gone: the rest of the plan (far more than a pipe holds) has nowhere to go.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
