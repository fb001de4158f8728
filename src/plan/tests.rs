//! Unit tests of the pure core: config from YAML text, records and network built in memory.

use std::collections::BTreeMap;

use jiff::civil::date;

use super::*;
use crate::config::ConfigFiles;
use crate::fields::Profile;
use crate::hr::{Layout, Records, Snapshot};
use crate::resolve::resolve;
use crate::rules::configured_fields;
use crate::speakap::wire::Membership;
use crate::state::LedgerEntry;

const SYNC: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  columns: { xid: id, email: mail, last_name: name, job_title: job, locations: loc }
policy: { safety: { min_records: 1, max_offboard_percent: 100, max_change_percent: 100 } }
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units: { map: { N: North, S: South } }
groups:
  - { group: Managers, when: { field: job_title, equals: Manager } }
roles:
  - { role: admin, when: { field: job_title, equals: Director } }
local_admins:
  - { of: business_unit, when: { field: job_title, equals: Manager } }
---
apiVersion: speakap-sync/v1
kind: Exclusions
exclude:
  - { xid: "900", reason: board member }
"#;

fn config() -> Config {
    crate::config::load(ConfigFiles::in_memory("c0ffee", SYNC)).unwrap()
}

/// Rows of (xid, mail, name, job, loc).
fn snapshot(config: &Config, rows: &[[&str; 5]]) -> Snapshot {
    Snapshot {
        source: "hr.csv".into(),
        sha256: "0".repeat(64),
        locator: Default::default(),
        pages: None,
        modified: None,
        layout: Layout::new(configured_fields(&config.sync)),
        records: Records::from_rows(
            5,
            rows.iter()
                .enumerate()
                .map(|(i, r)| (i as u64 + 2, r.to_vec())),
        ),
    }
}

fn group(eid: &str, name: &str) -> wire::Group {
    wire::Group {
        eid: eid.into(),
        name: name.into(),
        group_type: "business_unit".into(),
    }
}

fn account(
    eid: &str,
    xid: Option<&str>,
    mail: &str,
    name: &str,
    groups: &[(&str, &str)],
    role: &str,
) -> ObservedUser {
    ObservedUser {
        eid: eid.into(),
        xid: xid.map(str::to_string),
        suspended: false,
        primary_business_unit: groups
            .iter()
            .map(|(g, _)| g.to_string())
            .find(|g| g == "gn" || g == "gs"),
        profile: Profile::new([mail, "", "", name, "", ""]),
        other_emails: Vec::new(),
        network: Some(Membership {
            eid: format!("n{eid}"),
            role: role.into(),
            group: None,
        }),
        groups: groups
            .iter()
            .map(|(g, r)| {
                (
                    g.to_string(),
                    Membership {
                        eid: format!("m{eid}{g}"),
                        role: r.to_string(),
                        group: Some(g.to_string()),
                    },
                )
            })
            .collect(),
    }
}

fn network(users: Vec<ObservedUser>) -> Observed {
    let groups = vec![
        group("gn", "North"),
        group("gs", "South"),
        group("gm", "Managers"),
        group("gx", "Social"),
    ];
    let read = NetworkRead {
        accounts: users.len(),
        account_pages: 1,
        groups: groups.len(),
        group_pages: 1,
    };
    Observed {
        users,
        groups,
        read,
    }
}

fn plan_for(config: &Config, rows: &[[&str; 5]], observed: &Observed, ledger: &Ledger) -> Plan {
    let snapshot = snapshot(config, rows);
    let today = date(2026, 11, 21);
    let resolution = resolve(config, &snapshot, today);
    plan(&PlanInput {
        config,
        resolution: &resolution,
        observed,
        ledger,
        hr: snapshot.info(),
        today,
    })
    .unwrap()
}

fn changes_of<'a>(plan: &'a Plan, xid: &str) -> &'a [Change] {
    plan.users
        .iter()
        .find(|u| u.xid == xid)
        .map_or(&[], |u| u.changes.as_slice())
}

#[test]
fn only_memberships_the_ledger_granted_are_removed() {
    let config = config();
    let observed = network(vec![account(
        "e1",
        Some("1"),
        "a@x.nl",
        "A",
        &[("gs", "member"), ("gn", "member"), ("gx", "member")],
        "member",
    )]);
    let rows = [["1", "a@x.nl", "A", "", "S"]];
    let first = plan_for(&config, &rows, &observed, &Ledger::default());
    assert!(
        changes_of(&first, "1").is_empty(),
        "nothing granted yet, so nothing removed: {:?}",
        first.users
    );

    let ledger = Ledger {
        users: BTreeMap::from([(
            "1".into(),
            LedgerEntry {
                eid: "e1".into(),
                groups: ["gn".into(), "gs".into()].into(),
                ..LedgerEntry::default()
            },
        )]),
    };
    let second = plan_for(&config, &rows, &observed, &ledger);
    assert_eq!(
        changes_of(&second, "1"),
        [Change::RemoveMembership {
            source: None,
            group: "North".into(),
            group_eid: "gn".into()
        }]
    );
}

#[test]
fn admin_rights_granted_by_hand_are_never_taken_back() {
    let config = config();
    let observed = network(vec![account(
        "e1",
        Some("1"),
        "a@x.nl",
        "A",
        &[("gs", "admin")],
        "admin",
    )]);
    let rows = [["1", "a@x.nl", "A", "", "S"]];
    let by_hand = plan_for(&config, &rows, &observed, &Ledger::default());
    assert!(changes_of(&by_hand, "1").is_empty());

    let ledger = Ledger {
        users: BTreeMap::from([(
            "1".into(),
            LedgerEntry {
                eid: "e1".into(),
                groups: ["gs".into()].into(),
                admin_of: ["gs".into()].into(),
                network_admin: true,
                ..LedgerEntry::default()
            },
        )]),
    };
    let granted = plan_for(&config, &rows, &observed, &ledger);
    let changes = changes_of(&granted, "1");
    assert!(changes.contains(&Change::SetGroupAdmin {
        group: "South".into(),
        group_eid: "gs".into(),
        admin: false,
        source: None
    }));
    assert!(changes.iter().any(|c| matches!(
        c,
        Change::SetNetworkRole {
            to: NetworkRole::Member,
            ..
        }
    )));
}

#[test]
fn an_xid_change_is_blocked_and_neither_account_is_touched() {
    let config = config();
    let observed = network(vec![account(
        "e1",
        Some("1"),
        "a@x.nl",
        "A",
        &[("gn", "member")],
        "member",
    )]);
    let plan = plan_for(
        &config,
        &[["2", "a@x.nl", "A", "", "N"]],
        &observed,
        &Ledger::default(),
    );
    assert!(
        plan.users.is_empty(),
        "no invite, no removal: {:?}",
        plan.users
    );
    assert_eq!(plan.skipped.len(), 1);
    assert!(plan.skipped[0].reasons[0].contains("looks like an XID change"));
}

#[test]
fn an_account_without_xid_is_linked_by_email_instead_of_invited_twice() {
    let config = config();
    let observed = network(vec![account("e1", None, "A@X.nl", "A", &[], "member")]);
    let plan = plan_for(
        &config,
        &[["1", "a@x.nl", "A", "", "N"]],
        &observed,
        &Ledger::default(),
    );
    assert_eq!(plan.users.len(), 1);
    assert_eq!(plan.users[0].action, UserAction::Update);
    assert_eq!(
        plan.users[0].changes[0],
        Change::SetXid {
            from: None,
            to: "1".into()
        }
    );
}

#[test]
fn excluded_accounts_are_unmanaged_and_never_removed() {
    let config = config();
    let observed = network(vec![account(
        "e9",
        Some("900"),
        "b@x.nl",
        "B",
        &[],
        "admin",
    )]);
    let plan = plan_for(
        &config,
        &[["1", "a@x.nl", "A", "", "N"]],
        &observed,
        &Ledger::default(),
    );
    assert_eq!(plan.summary.suspend, 0);
    assert_eq!(plan.unmanaged[0].xid, "900");
}

#[test]
fn new_people_are_invited_with_their_groups_and_admin_rights() {
    let config = config();
    let plan = plan_for(
        &config,
        &[
            ["1", "a@x.nl", "A", "Manager", "N"],
            ["2", "d@x.nl", "D", "Director", "S"],
        ],
        &network(vec![]),
        &Ledger::default(),
    );
    assert_eq!(plan.summary.invite, 2);
    let manager = changes_of(&plan, "1");
    assert!(manager.contains(&Change::AddMembership {
        group: "North".into(),
        group_eid: "gn".into(),
        kind: crate::resolve::MembershipKind::BusinessUnit,
        admin: true,
        source: Provenance::Rule {
            list: crate::resolve::RuleList::LocalAdmins,
            at: Origin {
                file: "sync.yaml".into(),
                line: 19
            }
        },
    }));
    assert!(changes_of(&plan, "2").iter().any(|c| matches!(
        c,
        Change::SetNetworkRole {
            to: NetworkRole::Admin,
            ..
        }
    )));
    assert_eq!(plan.summary.admin_grants, 2);
}

#[test]
fn plans_are_deterministic_whatever_order_the_network_is_listed_in() {
    let config = config();
    let rows = [["1", "a@x.nl", "A", "", "N"], ["2", "b@x.nl", "B", "", "S"]];
    let users = vec![
        account("e1", Some("1"), "a@x.nl", "Old", &[], "member"),
        account("e3", Some("3"), "c@x.nl", "C", &[], "member"),
    ];
    let forward = plan_for(&config, &rows, &network(users.clone()), &Ledger::default());
    let backward = plan_for(
        &config,
        &rows,
        &network(users.into_iter().rev().collect()),
        &Ledger::default(),
    );
    assert_eq!(forward, backward);
    assert_eq!(forward.checksum(), backward.checksum());
    assert!(forward.checksum().starts_with("sha256:"));
}

#[test]
fn too_many_offboards_block_the_plan() {
    let mut config = config();
    config.sync.policy.safety.max_offboard_percent = 40.0;
    let users = (1..=4)
        .map(|i| {
            account(
                &format!("e{i}"),
                Some(&i.to_string()),
                &format!("{i}@x.nl"),
                "P",
                &[],
                "member",
            )
        })
        .collect();
    let plan = plan_for(
        &config,
        &[["1", "1@x.nl", "P", "", ""], ["2", "2@x.nl", "P", "", ""]],
        &network(users),
        &Ledger::default(),
    );
    assert!(plan.safety.blocked);
    assert_eq!(
        plan.safety.violations,
        ["Too many offboards: 50.0% is over 40% (2/4)"]
    );
}

#[test]
fn an_override_withdraws_a_group_granted_by_hand() {
    let mut config = config();
    config.overrides.push(crate::config::Override {
        xid: "1".into(),
        reason: "left the social club".into(),
        until: None,
        add_groups: Vec::new(),
        remove_groups: vec!["Social".into()],
        role: None,
        set: Default::default(),
        restore: false,
        origin: Origin {
            file: "overrides.yaml".into(),
            line: 4,
        },
    });
    let observed = network(vec![account(
        "e1",
        Some("1"),
        "a@x.nl",
        "A",
        &[("gn", "member"), ("gx", "member")],
        "member",
    )]);
    let plan = plan_for(
        &config,
        &[["1", "a@x.nl", "A", "", "N"]],
        &observed,
        &Ledger::default(),
    );
    assert_eq!(
        changes_of(&plan, "1"),
        [Change::RemoveMembership {
            group: "Social".into(),
            group_eid: "gx".into(),
            source: Some(Provenance::Override {
                at: Origin {
                    file: "overrides.yaml".into(),
                    line: 4
                }
            }),
        }]
    );
}

#[test]
fn a_markdown_plan_over_the_limit_is_cut_and_keeps_its_summary() {
    let config = config();
    let rows: Vec<[String; 5]> = (1..=40)
        .map(|i| {
            [
                i.to_string(),
                format!("p{i}@x.nl"),
                format!("Person {i}"),
                "Manager".into(),
                "N".into(),
            ]
        })
        .collect();
    let rows: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| r.each_ref().map(String::as_str))
        .collect();
    let observed = network(vec![account(
        "e9",
        Some("99"),
        "gone@x.nl",
        "Gone",
        &[("gn", "member")],
        "member",
    )]);
    let plan = plan_for(&config, &rows, &observed, &Ledger::default());
    let options = super::markdown::MarkdownOptions {
        redact: true,
        limit: super::markdown::Limit {
            max: 2_000,
            unit: super::markdown::Unit::Utf16,
        },
        marker: Some("<!-- speakap-sync-plan: config -->"),
        full_plan: "the job summary",
        impact: None,
    };
    let text = super::markdown::markdown(&plan, &options);
    assert!(
        text.chars().count() <= 2_000,
        "{} characters",
        text.chars().count()
    );
    insta::assert_snapshot!(text.replace(&plan.checksum(), "sha256:[checksum]"));
}

#[test]
fn a_redacted_markdown_plan_masks_addresses_used_as_xids_and_names() {
    let config = config();
    let rows = [["anna@x.nl", "anna@x.nl", "", "Baker", "N"]];
    let observed = network(vec![account(
        "e9",
        Some("gone.person@x.nl"),
        "gone.person@x.nl",
        "",
        &[("gn", "member")],
        "member",
    )]);
    let plan = plan_for(&config, &rows, &observed, &Ledger::default());
    let options = super::markdown::MarkdownOptions {
        redact: true,
        limit: super::markdown::Limit {
            max: 60_000,
            unit: super::markdown::Unit::Utf16,
        },
        marker: None,
        full_plan: "the job summary",
        impact: None,
    };
    let text = super::markdown::markdown(&plan, &options);
    assert!(
        text.contains("XID a\\*\\*a\\@\u{200b}x\\.nl: missing name"),
        "{text}"
    );
    assert!(
        text.contains("**g\\*\\*\\*\\*\\*\\*\\*\\*\\*n\\@\u{200b}x\\.nl** g\\*"),
        "{text}"
    );
    assert!(
        !text.contains("anna@") && !text.contains("gone.person@"),
        "{text}"
    );
}
