//! Property: for random HR records, rules and network states, `plan` after `apply(plan)` has no
//! changes, and no record with an input error is ever offboarded. Applied for real, over HTTP, to
//! the in-process simulator.

use std::collections::BTreeSet;

use jiff::civil::date;
use proptest::prelude::*;

use speakap_sync::apply;
use speakap_sync::config::{self, ConfigFiles};
use speakap_sync::hr::{Layout, Records, Snapshot};
use speakap_sync::plan::{PlanInput, UserAction, plan};
use speakap_sync::resolve::resolve;
use speakap_sync::rules::configured_fields;
use speakap_sync::sim::{self, Seed, SeedGroup, SeedUser, SimConfig};
use speakap_sync::speakap::{self, Client};
use speakap_sync::state::Ledger;

const NETWORK: &str = "0123456789abcdef";

#[derive(Clone, Debug)]
struct Row {
    xid: String,
    email: String,
    name: String,
    job: &'static str,
    location: &'static str,
    end: &'static str,
}

#[derive(Clone, Debug)]
struct Account {
    xid: Option<String>,
    email: String,
    groups: Vec<&'static str>,
    admin: bool,
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![9 => (1..9u8).prop_map(|i| i.to_string()), 1 => Just(String::new())],
        prop_oneof![8 => (1..9u8).prop_map(|i| format!("u{i}@x.nl")), 1 => Just(String::new()), 1 => Just("broken".to_string())],
        prop_oneof![9 => "[A-Z][a-z]{1,5}", 1 => Just(String::new())],
        prop::sample::select(vec!["Baker", "Manager", "Director"]),
        prop::sample::select(vec!["N", "S", "X", "", "N|S"]),
        end(),
    )
        .prop_map(|(xid, email, name, job, location, end)| Row { xid, email, name, job, location, end })
}

fn end() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just("2026-01-31"), 1 => Just("2027-01-31")]
}

/// Rows with, now and then, a person's further contracts: the same employee ID, address and
/// name with another job, location or end date.
fn rows_with_contracts() -> impl Strategy<Value = Vec<Row>> {
    let contract = (
        any::<prop::sample::Index>(),
        prop::sample::select(vec!["Baker", "Manager", "Director"]),
        prop::sample::select(vec!["N", "S", "X", ""]),
        end(),
    );
    (
        prop::collection::vec(row(), 0..7),
        prop::collection::vec(contract, 1..5),
    )
        .prop_map(|(mut rows, contracts)| {
            if rows.is_empty() {
                return rows;
            }
            for (of, job, location, end) in contracts {
                let mut row = of.get(&rows).clone();
                (row.job, row.location, row.end) = (job, location, end);
                rows.push(row);
            }
            rows
        })
}

fn account() -> impl Strategy<Value = Account> {
    (
        prop::option::weighted(0.8, (1..9u8).prop_map(|i| i.to_string())),
        (1..9u8).prop_map(|i| format!("u{i}@x.nl")),
        prop::sample::subsequence(vec!["North", "South", "Managers", "Social"], 0..=3),
        any::<bool>(),
    )
        .prop_map(|(xid, email, groups, admin)| Account {
            xid,
            email,
            groups,
            admin,
        })
}

/// Speakap keeps XIDs and email addresses unique: so does the generated network.
fn network() -> impl Strategy<Value = Vec<Account>> {
    prop::collection::vec(account(), 0..7).prop_map(|accounts| {
        let mut xids = BTreeSet::new();
        let mut emails = BTreeSet::new();
        accounts
            .into_iter()
            .filter(|a| {
                emails.insert(a.email.clone())
                    && a.xid.as_ref().is_none_or(|x| xids.insert(x.clone()))
            })
            .collect()
    })
}

fn config_text(url: &str, unknown: &str, manager_title: &str, duplicate_xids: &str) -> String {
    format!(
        r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "{NETWORK}"
speakap: {{ url: "{url}", requests_per_second: 1000 }}
source:
  type: csv
  path: hr.csv
  date_format: "%Y-%m-%d"
  columns: {{ xid: id, email: mail, last_name: name, job_title: job, locations: loc, end_date: end }}
policy:
  duplicate_xids: {duplicate_xids}
  primary_contract: {{ when: {{ field: job_title, equals: Manager }} }}
  safety: {{ min_records: 0, max_offboard_percent: 100, max_change_percent: 100 }}
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units: {{ unknown: {unknown}, map: {{ N: North, S: South }} }}
groups:
  - {{ group: Managers, when: {{ field: job_title, equals: "{manager_title}" }} }}
roles:
  - {{ role: admin, when: {{ field: job_title, equals: Director }} }}
local_admins:
  - {{ of: business_unit, when: {{ field: job_title, equals: Manager }} }}
"#
    )
}

fn check(
    rows: Vec<Row>,
    accounts: Vec<Account>,
    unknown: &str,
    manager_title: &str,
    duplicate_xids: &str,
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let group = |name: &str, kind: &str| SeedGroup {
            eid: None,
            name: name.into(),
            group_type: kind.into(),
        };
        let seed = Seed {
            schema: None,
            groups: vec![
                group("North", "business_unit"),
                group("South", "business_unit"),
                group("Managers", "restricted"),
                group("Social", "public"),
            ],
            users: accounts
                .iter()
                .map(|a| SeedUser {
                    xid: a.xid.clone(),
                    email: a.email.clone(),
                    family_name: "Seeded".into(),
                    role: Some(if a.admin { "admin" } else { "member" }.into()),
                    groups: a.groups.iter().map(|g| g.to_string()).collect(),
                    ..SeedUser::default()
                })
                .collect(),
        };
        let running = sim::start(
            ([127, 0, 0, 1], 0).into(),
            SimConfig {
                network: NETWORK.into(),
                token: "t".into(),
                state_file: None,
                seed: Some(seed),
                faults: Default::default(),
                fault_seed: 0,
                max_page_size: sim::DEFAULT_MAX_PAGE_SIZE,
            },
        )
        .await
        .unwrap();
        let files = ConfigFiles::in_memory(
            "c0ffee",
            config_text(&running.url, unknown, manager_title, duplicate_xids),
        );
        let config = config::load(files).expect("the generated config is valid");
        let snapshot = Snapshot {
            source: "hr.csv".into(),
            sha256: "0".repeat(64),
            locator: Default::default(),
            pages: None,
            modified: None,
            layout: Layout::new(configured_fields(&config.sync)),
            records: Records::from_rows(
                6,
                rows.iter().enumerate().map(|(i, r)| {
                    let values = [&r.xid, &r.email, &r.name, r.job, r.location, r.end];
                    (i as u64 + 2, values.to_vec())
                }),
            ),
        };
        let today = date(2026, 11, 21);
        let resolution = resolve(&config, &snapshot, today);
        let client = Client::new(&running.url, NETWORK, "t", "1.8.2", 1000).unwrap();

        let observed = speakap::fetch(&client).await.unwrap();
        let input = PlanInput {
            config: &config,
            resolution: &resolution,
            observed: &observed,
            ledger: &Ledger::default(),
            hr: snapshot.info(),
            today,
        };
        let first = plan(&input).unwrap();
        for user in first.users.iter().filter(|u| u.action.is_offboarding()) {
            prop_assert!(
                !resolution.held.contains(&user.xid),
                "a record with an input error is offboarded: {user:?}"
            );
        }
        let journal_dir = tempfile::tempdir().unwrap();
        let mut journal = speakap_sync::state::journal::Journal::begin(
            journal_dir.path(),
            NETWORK,
            speakap_sync::state::journal::Begin {
                record: Default::default(),
                base_tip: None,
            },
            "{}",
        )
        .unwrap();
        let report = apply::apply(
            &client,
            &first,
            &observed,
            4,
            &speakap_sync::output::Progress::hidden(),
            apply::Sinks {
                journal: &mut journal,
                credentials: None,
            },
        )
        .await;
        prop_assert!(
            !report.failed(),
            "apply failed: {:?}\nplan: {first:#?}",
            report.results
        );

        let after = speakap::fetch(&client).await.unwrap();
        let ledger = apply::ledger_after(&Ledger::default(), &resolution, &after, &first, today);
        let input = PlanInput {
            config: &config,
            resolution: &resolution,
            observed: &after,
            ledger: &ledger,
            hr: snapshot.info(),
            today,
        };
        let second = plan(&input).unwrap();
        prop_assert!(
            !second.summary.has_changes(),
            "not converged: {:#?}\nafter: {first:#?}",
            second.users
        );
        prop_assert!(second.users.iter().all(|u| u.action != UserAction::Invite));
        running.stop().await.unwrap();
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plan_after_apply_has_no_changes_and_input_errors_never_offboard(
        rows in rows_with_contracts(),
        accounts in network(),
        unknown in prop::sample::select(vec!["reject", "ignore"]),
        manager_title in prop::sample::select(vec!["Manager", "Baker"]),
        duplicate_xids in prop::sample::select(vec!["skip", "merge", "merge", "merge"]),
    ) {
        check(rows, accounts, unknown, manager_title, duplicate_xids)?;
    }
}
