//! Reads are complete or fail: the Speakap listing is checked against the total it reports, and
//! the plan header says how much was read. (AFAS paging is in `sources.rs`, beside its fake.)

mod common;

use common::*;
use serde_json::{Value, json};

const HR: &str = "\
100,anna@example.com,Anna,Smit,Store Manager,N,1
101,bert@example.com,Bert,Bos,Baker,N,1
102,carla@example.com,Carla,Kok,HR Manager,S,2
";

/// 250 accounts made by hand (no XID, so the plan leaves them alone): three pages of the
/// simulator's 100.
fn seed() -> Value {
    let users: Vec<Value> = (0..250)
        .map(|i| json!({"email": format!("staff{i}@example.com"), "familyName": format!("Staff {i}")}))
        .collect();
    json!({"groups": seed_groups(), "users": users})
}

#[test]
fn a_listing_that_loses_accounts_fails_the_plan_and_applies_nothing() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    let before = sim.users();
    // Every tenth account is left out of its page while the total still counts all 250.
    sim.set_faults(&json!({"listing_loss_every": 10}));

    for command in ["plan", "apply"] {
        let output = run(&[command, "--repo", &dir], repo.path());
        let err = stderr(&output);
        assert_eq!(code(&output), 1, "{command}: {}\n{err}", stdout(&output));
        assert!(
            err.contains("the listing of accounts is incomplete, read 3 times (250 accounts reported, 243 received: the page at offset 180 held 63 where 70 were expected)"),
            "{command}: {err}"
        );
        assert!(
            err.contains("nothing is planned from part of the network"),
            "{err}"
        );
        assert!(err.contains("Run again later"), "{err}");
        assert!(
            stdout(&output).is_empty(),
            "no plan printed: {}",
            stdout(&output)
        );
    }
    sim.set_faults(&json!({}));
    assert_eq!(sim.users(), before, "nothing applied");
    assert_eq!(repo.state_commit_count(), 0, "no audit commit");

    let plan = run(&["plan", "--repo", &dir], repo.path());
    assert_eq!(
        code(&plan),
        0,
        "a whole listing plans again: {}",
        stderr(&plan)
    );
}

#[test]
fn the_plan_header_counts_records_accounts_and_pages() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());

    let text = stdout(&run(&["plan", "--repo", &dir], repo.path()));
    assert!(
        text.starts_with(
            "Plan for network 0123456789abcdef (250 accounts in 3 pages, 6 groups in 1 page)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  HR:     hr.csv (3 records, sha256 "),
        "{text}"
    );

    let markdown = stdout(&run(
        &["plan", "--repo", &dir, "--format", "markdown"],
        repo.path(),
    ));
    assert!(
        markdown.contains("**HR snapshot** `hr.csv`, 3 records, sha256 `")
            && markdown.contains("· **Network** 250 accounts in 3 pages, 6 groups in 1 page ·"),
        "{markdown}"
    );

    let json: Value = serde_json::from_str(&stdout(&run(
        &["plan", "--repo", &dir, "--format", "json"],
        repo.path(),
    )))
    .unwrap();
    assert_eq!(
        json["network_read"],
        json!({"accounts": 250, "account_pages": 3, "groups": 6, "group_pages": 1})
    );
    assert_eq!(json["hr"]["records"], 3);
    assert!(
        json["hr"].get("pages").is_none(),
        "a file has no pages: {}",
        json["hr"]
    );
}
