//! The oracle for reshaping the core (issue 19): the plans of the example company and of a
//! generated export holding every kind of defect, kept as golden files. A rewrite of reading,
//! resolving or planning must give the same plans; a difference here is either a bug or a change
//! of behaviour to review (and then accept with `INSTA_UPDATE=always`, or by hand).
//!
//! What is kept is what the plan decides, person by person: the action, each change (operation,
//! field or group, value, and where it comes from), skipped records with their lines and
//! reasons, scheduled joiners, leavers, unmanaged accounts, warnings and the summary. Commit ids
//! (and the checksum, which covers them) differ between runs and are left out. The plan is read
//! back from its JSON (`SavedPlan::parse`) and compared in its full, decoded form.

mod common;

use common::*;
use serde_json::{Value, json};

/// The decisions of a JSON plan, one line each, in the plan's own (deterministic) order.
fn decisions(plan: &Value) -> String {
    let mut lines = Vec::new();
    for user in plan["users"].as_array().unwrap() {
        // A merged person's contracts: only they have the field, so other lines stay as they were.
        let contracts = match user.get("contracts") {
            Some(lines) => format!(" contracts={lines}"),
            None => String::new(),
        };
        lines.push(format!(
            "{} {} line={}{contracts} eid={} {}",
            user["action"].as_str().unwrap(),
            user["xid"].as_str().unwrap(),
            user["line"],
            user["eid"].as_str().unwrap_or("-"),
            user["reason"].as_str().unwrap_or(""),
        ));
        for change in user["changes"].as_array().unwrap() {
            let mut change = change.clone();
            let op = change["op"].as_str().unwrap().to_string();
            change.as_object_mut().unwrap().remove("op");
            lines.push(format!("    {op} {change}"));
        }
    }
    for key in [
        "skipped",
        "scheduled",
        "leaving",
        "deleted_outside",
        "unmanaged",
        "warnings",
    ] {
        for item in plan[key].as_array().unwrap() {
            lines.push(format!("{key} {item}"));
        }
    }
    lines.push(format!("safety {}", plan["safety"]));
    lines.push(format!("summary {}", plan["summary"]));
    lines.join("\n") + "\n"
}

fn plan_json(args: &[&str], cwd: &std::path::Path) -> Value {
    let output = run(args, cwd);
    assert!(
        matches!(code(&output), 0 | 3),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    // The JSON names each provenance once (plan format 2); the decisions are compared as the
    // plan holds them, every change with its full provenance, so the encoding cannot hide one.
    let saved = speakap_sync::plan::render::SavedPlan::parse(&stdout(&output)).unwrap();
    serde_json::to_value(&saved.plan).unwrap()
}

#[test]
fn the_example_company_plans_as_it_did() {
    let repo = ConfigRepo::new();
    copy_dir(&example_repo(), &repo.path().join("example-repo"));
    repo.commit("example");
    let dir = path_str(&repo.path().join("example-repo"));
    let plan = plan_json(
        &[
            "plan",
            "--repo",
            &dir,
            "--now",
            "2026-11-21",
            "--format",
            "json",
        ],
        repo.path(),
    );
    insta::assert_snapshot!(decisions(&plan));
}

/// An export of 300 people with every kind of defect the readers and resolve know, against a
/// network where some of them already have accounts (some changed, some leaving).
fn defective_export() -> Vec<u8> {
    let mut text = Vec::new();
    text.extend_from_slice(HR_HEADER.as_bytes());
    for i in 0..300 {
        let xid = 2000 + i;
        let row = match i % 20 {
            // A duplicate employee ID: both rows are skipped and the XID held.
            0 => format!("{},dup{i}@example.com,Dup,Licate,Baker,N,1\n", xid - 1),
            // A duplicate address.
            1 => format!("{xid},p{}@example.com,Same,Address,Baker,N,1\n", i - 1),
            // An unknown location code.
            2 => format!("{xid},p{i}@example.com,Unknown,Store,Baker,X9,1\n"),
            // A missing email, a missing name.
            3 => format!("{xid},,No,Email,Baker,N,1\n"),
            4 => format!("{xid},p{i}@example.com,,,Baker,S,2\n"),
            // A value over several lines, quoted.
            5 => format!("{xid},p{i}@example.com,\"Multi\nLine\",Name,Baker,N,1\n"),
            // A Windows-1252 name (not UTF-8) in a UTF-8 file.
            6 => {
                let mut row = format!("{xid},p{i}@example.com,Ren").into_bytes();
                row.push(0xE9); // é in Windows-1252
                row.extend_from_slice(b",Jansen,Baker,S,2\n");
                text.extend_from_slice(&row);
                continue;
            }
            // An invalid address.
            7 => format!("{xid},not-an-address,Bad,Address,Baker,N,1\n"),
            // Managers: a group, local admin rights, a network role.
            8 => format!("{xid},p{i}@example.com,Store,Manager,Store Manager,N,1\n"),
            9 => format!("{xid},p{i}@example.com,Human,Resources,HR Manager,S,2\n"),
            _ => format!(
                "{xid},p{i}@example.com,Person,Number {i},Baker,{},{}\n",
                if i % 2 == 0 { "N" } else { "S" },
                1 + i % 2
            ),
        };
        text.extend_from_slice(row.as_bytes());
    }
    text
}

fn existing_accounts() -> Value {
    let mut users = Vec::new();
    for i in (0..300).step_by(7) {
        users.push(json!({
            "xid": (2000 + i).to_string(),
            "email": format!("p{i}@example.com"),
            "firstName": "Person",
            "familyName": format!("Old {i}"),
            "jobTitle": "Baker",
            "groups": ["Store North", "Bakery"],
        }));
    }
    // People no longer in the export: leavers.
    for i in 0..5 {
        users.push(json!({
            "xid": format!("9{i:03}"),
            "email": format!("gone{i}@example.com"),
            "firstName": "Gone",
            "familyName": format!("Leaver {i}"),
            "jobTitle": "Baker",
            "groups": ["Store South"],
        }));
    }
    json!({"groups": seed_groups(), "users": users})
}

#[test]
fn an_export_with_every_kind_of_defect_plans_as_it_did() {
    let sim = Sim::start(&existing_accounts());
    let repo = ConfigRepo::new();
    repo.write("sync.yaml", &sync_yaml(&sim.url));
    repo.write("rules.yaml", RULES_YAML);
    std::fs::write(repo.path().join("hr.csv"), defective_export()).unwrap();
    repo.commit("config");
    let dir = path_str(repo.path());
    let plan = plan_json(
        &[
            "plan",
            "--repo",
            &dir,
            "--now",
            "2026-11-21",
            "--format",
            "json",
        ],
        repo.path(),
    );
    insta::assert_snapshot!(decisions(&plan));
}
