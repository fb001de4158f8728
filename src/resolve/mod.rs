//! `resolve`: HR records + config → the desired users, each value with its provenance, plus the
//! records that could not be processed. Pure: no I/O, the date is a parameter, and the outcome
//! is sorted.
//!
//! Each record in turn is excluded ([`exclusions`]), or validated ([`validate`], with
//! [`duplicates`] found beforehand over all records), mapped through the lookup tables
//! ([`mapping`]) and the rules ([`rules`]); a record with a problem is skipped and its XID held,
//! one whose end date has passed is a leaver, and anyone else is a desired user, to whom an
//! override may apply ([`overrides`]). With `policy.duplicate_xids: merge`, the rows of one
//! employee ID are that person's contracts: set aside by the runs and merged into one person
//! afterwards ([`contracts`]), as is the check every person meets last (`policy.require_*`).

mod contracts;
mod desired;
mod duplicates;
mod exclusions;
mod mapping;
mod overrides;
mod rules;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::HashMap;
use jiff::civil::Date;
use serde::Serialize;

pub use self::desired::{
    ContractRow, ContractStatus, DesiredMembership, DesiredUser, DesiredUsers, MappingSource,
    MembershipKind, Memberships, Overridden, Provenance, RowFields, RuleList, Sourced,
};
use crate::config::{Config, Origin};
use crate::fields::FieldName;
pub use crate::fields::ProfileField;
use crate::hr::{Layout, Record, Snapshot, case_folded};

/// A record that could not be processed: reported, skipped, and its account left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkippedRecord {
    pub line: u64,
    pub xid: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Excluded {
    pub xid: String,
    pub reason: String,
    pub at: Origin,
}

/// Where a word of HR input that was not read as a person stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreadAt {
    pub line: u64,
    /// The line the row holding it starts on: earlier than `line` when it is inside a value
    /// running over several lines.
    pub row_line: u64,
}

#[derive(Debug, Default)]
pub struct Resolution {
    pub desired: DesiredUsers,
    pub skipped: Vec<SkippedRecord>,
    /// XIDs excluded by an exclusion that occur in the HR record.
    pub excluded: BTreeMap<String, Excluded>,
    /// XIDs with an input problem: their accounts must not be touched, least of all offboarded.
    pub held: BTreeSet<String>,
    /// The words (case-folded) of HR input that was not read as a person: records with an input
    /// problem and the file's unread text, with where each was first seen. An account whose
    /// XID or email address is among them is not offboarded: the problem may be its row's XID,
    /// or a quote not closed where it should be may have hidden its row.
    pub unread_words: HashMap<String, UnreadAt>,
    /// XIDs whose end date has passed: leavers, with that date.
    pub ended: BTreeMap<String, Date>,
    pub warnings: Vec<String>,
    pub record_count: usize,
}

/// Below this many records one thread resolves them all; threads would cost more than they save.
const PARALLEL_FROM: usize = 20_000;

/// Turns HR records into desired users under the config, as of `today`.
pub fn resolve(config: &Config, snapshot: &Snapshot, today: Date) -> Resolution {
    let workers = match snapshot.records.len() {
        n if n < PARALLEL_FROM => 1,
        _ => std::thread::available_parallelism().map_or(1, usize::from),
    };
    resolve_on(config, snapshot, today, workers)
}

/// [`resolve`] with the records split between `workers` threads: the outcome is the same for
/// any number of them, since each resolves a run of consecutive records and the runs are
/// joined in order.
fn resolve_on(config: &Config, snapshot: &Snapshot, today: Date, workers: usize) -> Resolution {
    let resolver = Resolver::new(config, &snapshot.layout, today);
    let merging = resolver.policy.merging;
    let duplicates =
        duplicates::Duplicates::find(&snapshot.records, &snapshot.layout, merging, workers > 1);
    let mut parts = if workers > 1 {
        resolve_runs(config, snapshot, today, workers, &duplicates)
    } else {
        vec![resolver.resolve_run(0, snapshot.records.shared(), &duplicates)]
    };
    let merged = resolver.merge_contracts(&mut parts, &duplicates);
    parts.push(merged);
    join(config, snapshot, parts, &duplicates)
}

/// The records in consecutive runs, one thread each, in record order (for several workers).
fn resolve_runs(
    config: &Config,
    snapshot: &Snapshot,
    today: Date,
    workers: usize,
    duplicates: &duplicates::Duplicates<'_>,
) -> Vec<Part> {
    let records = snapshot.records.shared();
    let run = records.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (records.chunks(run).enumerate())
            .map(|(i, records)| {
                let first = i * run;
                // A resolver for each thread: the group names and reasons that people share
                // are reference counted, and a count shared between threads is fought over on
                // every record.
                scope.spawn(move || {
                    let resolver = Resolver::new(config, &snapshot.layout, today);
                    resolver.resolve_run(first, records, duplicates)
                })
            })
            .collect();
        let joined = threads.into_iter().map(|thread| thread.join());
        joined
            .map(|part| part.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// The parts joined in order into one resolution, the desired users in XID order.
fn join(
    config: &Config,
    snapshot: &Snapshot,
    parts: Vec<Part>,
    duplicates: &duplicates::Duplicates<'_>,
) -> Resolution {
    let records = snapshot.records.shared();
    let mut resolution = Resolution {
        record_count: records.len(),
        ..Resolution::default()
    };
    // The file's unread text first: its lines say where a hidden row is more precisely than the
    // record holding it does.
    for unread in snapshot.records.unread() {
        let at = UnreadAt {
            line: unread.line,
            row_line: unread.row_line,
        };
        for word in words(&unread.text) {
            resolution.unread_words.entry(word).or_insert(at);
        }
    }
    let mut users = Vec::with_capacity(parts.iter().map(|p| p.users.len()).sum());
    // Which user each record became, if any.
    let mut user_of_record = vec![None; records.len()];
    let mut ignored_codes: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for part in parts {
        for (user, record) in (users.len()..).zip(part.user_records) {
            user_of_record[record] =
                Some(u32::try_from(user).expect("fewer than 4 billion people"));
        }
        users.extend(part.users);
        resolution.skipped.extend(part.skipped);
        resolution.excluded.extend(part.excluded);
        resolution.ended.extend(part.ended);
        resolution.warnings.extend(part.warnings);
        for (word, at) in part.unread_words {
            resolution.unread_words.entry(word).or_insert(at);
        }
        for (code, count) in part.ignored_codes {
            *ignored_codes.entry(code).or_default() += count;
        }
    }
    let by_xid = (duplicates.xid_order().iter())
        .filter_map(|&record| user_of_record[record as usize])
        .collect();
    resolution.desired = DesiredUsers::new(users, by_xid);
    resolution.held = (resolution.skipped.iter())
        .filter_map(|s| s.xid.clone())
        .collect();
    for ((table, code), count) in ignored_codes {
        resolution.warnings.push(format!(
            "{table}: code \"{code}\" is not mapped and was ignored ({count} record(s))"
        ));
    }
    warn_of_overrides_without_record(config, &mut resolution);
    resolution.skipped.sort_by_key(|s| s.line);
    resolution
}

/// What a run of consecutive records resolves to, in record order.
#[derive(Default)]
struct Part {
    users: Vec<DesiredUser>,
    /// The index of each user's record among all records.
    user_records: Vec<usize>,
    skipped: Vec<SkippedRecord>,
    excluded: Vec<(String, Excluded)>,
    ended: Vec<(String, Date)>,
    warnings: Vec<String>,
    /// Codes a table ignores, as (table, code), with the records they are on.
    ignored_codes: BTreeMap<(&'static str, String), usize>,
    /// The words of skipped records (see [`Resolution::unread_words`]).
    unread_words: Vec<(String, UnreadAt)>,
    /// Records of an employee ID on several rows, set aside to be merged as one person's
    /// contracts ([`contracts`]).
    contracts: Vec<(usize, Arc<Record>)>,
}

/// The config compiled for the records of one layout.
struct Resolver<'c> {
    today: Date,
    xid_slot: usize,
    fields: Arc<RowFields>,
    exclusions: exclusions::Exclusions<'c>,
    checks: validate::Checks<'c>,
    tables: mapping::Tables<'c>,
    rules: rules::Rules,
    overrides: overrides::Overrides<'c>,
    policy: contracts::Policy<'c>,
}

impl<'c> Resolver<'c> {
    fn new(config: &'c Config, layout: &'c Layout, today: Date) -> Resolver<'c> {
        let xid_slot = (layout.slot(&FieldName::Xid)).expect("xid is always configured");
        Resolver {
            today,
            xid_slot,
            fields: Arc::new(RowFields {
                xid: xid_slot,
                upn: layout.slot(&FieldName::Upn),
                profile: ProfileField::ALL.map(|field| {
                    let slot = layout.slot(&field.hr_field())?;
                    Some((slot, Arc::from(layout.columns[slot].as_str())))
                }),
            }),
            exclusions: exclusions::Exclusions::new(config, layout),
            checks: validate::Checks::new(config, layout),
            tables: mapping::Tables::new(config, layout),
            rules: rules::Rules::new(config, layout),
            overrides: overrides::Overrides::new(config, today),
            policy: contracts::Policy::new(config, layout),
        }
    }

    /// Resolves a run of consecutive records, from record `first` on: each is excluded,
    /// skipped, ended or a desired user.
    fn resolve_run(
        &self,
        first: usize,
        records: &[Arc<Record>],
        duplicates: &duplicates::Duplicates<'_>,
    ) -> Part {
        let mut part = Part {
            users: Vec::with_capacity(records.len()),
            user_records: Vec::with_capacity(records.len()),
            ..Part::default()
        };
        let mut shared = rules::SharedLists::default();
        for (index, record) in (first..).zip(records) {
            let xid = record.value(self.xid_slot);
            if self.policy.sets_aside(xid, duplicates) {
                part.contracts.push((index, record.clone()));
                continue;
            }
            if let Some(excluded) = self.exclusions.of(xid, record) {
                part.excluded.push((xid.to_string(), excluded));
                continue;
            }
            let (row, problems) = self.read(record, duplicates, &mut part);
            if !problems.is_empty() {
                skip(&mut part, record, xid, problems);
                continue;
            }
            if let Some(end) = row.dates.ended(self.today) {
                part.ended.push((xid.to_string(), end));
                continue;
            }
            let mut memberships = row.mapped.memberships;
            self.rules.add_groups(record, &mut memberships);
            let user = DesiredUser {
                record: record.clone(),
                fields: self.fields.clone(),
                start_date: row.dates.start,
                memberships: shared.share(memberships),
                primary_business_unit: row.mapped.primary_business_unit,
                role: self.rules.role(record),
                overridden: None,
                contracts: Box::default(),
            };
            match self.settle(user, &mut part.warnings) {
                Ok(user) => {
                    part.users.push(user);
                    part.user_records.push(index);
                }
                Err(reason) => skip(&mut part, record, xid, vec![reason]),
            }
        }
        part
    }
}

/// Skips a record with problems: its XID is held, and the words of its values protect the
/// accounts they may name.
fn skip(part: &mut Part, record: &Record, xid: &str, reasons: Vec<String>) {
    let at = UnreadAt {
        line: record.line,
        row_line: record.line,
    };
    for value in record.values() {
        part.unread_words
            .extend(words(value).map(|word| (word, at)));
    }
    part.skipped.push(SkippedRecord {
        line: record.line,
        xid: (!xid.is_empty()).then(|| xid.to_string()),
        reasons,
    });
}

/// The words of a text that could name an account: split at spaces, control characters,
/// quotes and the delimiters CSV files use, case-folded.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    // A control character splits too: `1003` in an ID `1003\n…` is the account to leave alone.
    text.split(|c: char| {
        c.is_whitespace()
            || matches!(c, ',' | ';' | '|' | '"')
            || crate::text::disguises_the_line(c)
    })
    .filter(|word| !word.is_empty())
    .map(|word| case_folded(word).into_owned())
}

fn warn_of_overrides_without_record(config: &Config, resolution: &mut Resolution) {
    for o in &config.overrides {
        let known = resolution.desired.contains_key(&o.xid)
            || resolution.held.contains(&o.xid)
            || resolution.excluded.contains_key(&o.xid);
        if !known {
            resolution.warnings.push(format!(
                "override for XID {} ({}) has no record in the HR file",
                o.xid, o.origin
            ));
        }
    }
}

/// The separator of the values in one multi-valued cell.
fn separator(config: &Config) -> char {
    let format = config.sync.source.format();
    format.multi_value_separator.chars().next().unwrap_or('|')
}

/// A snapshot of `rows` in the layout `config` configures, on lines from 2: what resolve's tests
/// (and its submodules') resolve.
#[cfg(test)]
fn test_snapshot<S: AsRef<str> + Clone, const N: usize>(
    config: &Config,
    rows: &[[S; N]],
) -> Snapshot {
    Snapshot::new(
        "hr.csv".into(),
        "0".repeat(64),
        Layout::new(crate::rules::configured_fields(&config.sync)),
        crate::hr::Records::from_rows(
            N,
            (rows.iter().enumerate()).map(|(i, row)| (i as u64 + 2, row.to_vec())),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFiles;

    const CONFIG: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  date_format: "%Y-%m-%d"
  columns: { xid: id, email: mail, last_name: name, job_title: job, locations: loc, departments: dep, end_date: end }
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units: { map: { N: North, S: South } }
departments: { map: { "1": Bakery }, unknown: ignore }
groups:
  - { group: Managers, when: { field: job_title, matches: "Manager$" } }
local_admins:
  - { of: business_unit, when: { field: job_title, equals: Store Manager } }
---
apiVersion: speakap-sync/v1
kind: Exclusions
exclude:
  - { xid: "17", reason: board member }
  - { when: { field: job_title, equals: Contractor }, reason: not employed }
---
apiVersion: speakap-sync/v1
kind: Overrides
overrides:
  - { xid: "5", reason: known by her maiden name, set: { last_name: Jansen }, add_groups: [Social], remove_groups: [North] }
  - { xid: "6", reason: ended trial, until: 2020-01-01, set: { last_name: Old } }
  - { xid: "404", reason: left already }
"#;

    fn config() -> Config {
        crate::config::load(ConfigFiles::in_memory("c0ffee", CONFIG)).unwrap()
    }

    /// Rows of (id, mail, name, job, loc, dep, end), on lines from 2.
    fn resolved(rows: &[[&str; 7]]) -> Resolution {
        let config = config();
        resolve(
            &config,
            &test_snapshot(&config, rows),
            jiff::civil::date(2026, 6, 1),
        )
    }

    #[test]
    fn each_record_is_a_desired_user_excluded_skipped_or_ended() {
        let resolution = resolved(&[
            ["9", "p9@x.nl", "Nine", "Baker", "N|S", "1", ""],
            ["5", "p5@x.nl", "Five", "Store Manager", "N|S", "2", ""],
            ["6", "p6@x.nl", "Six", "Baker", "S", "", ""],
            ["17", "p17@x.nl", "Board", "Baker", "N", "", ""],
            ["18", "p18@x.nl", "Temp", "Contractor", "N", "", ""],
            ["42", "a@x.nl", "Dup", "Baker", "N", "", ""],
            ["42", "b@x.nl", "Dup", "Baker", "N", "", ""],
            ["7", "SAME@x.nl", "Same", "Baker", "N", "", ""],
            ["8", "same@x.nl", "Same", "Baker", "N", "", ""],
            ["10", "not-an-address", "Bad", "Baker", "X", "", "someday"],
            ["11", "p11@x.nl", "Gone", "Baker", "N", "", "2021-05-01"],
        ]);
        assert_eq!(resolution.record_count, 11);
        assert_eq!(
            resolution.desired.keys().collect::<Vec<_>>(),
            ["5", "6", "9"]
        );
        assert_eq!(resolution.excluded.keys().collect::<Vec<_>>(), ["17", "18"]);
        assert_eq!(
            resolution.held.iter().collect::<Vec<_>>(),
            ["10", "42", "7", "8"]
        );
        assert_eq!(
            resolution.ended.get("11"),
            Some(&jiff::civil::date(2021, 5, 1))
        );
        let reasons = |line| {
            let skipped = resolution.skipped.iter().find(|s| s.line == line).unwrap();
            skipped.reasons.join("; ")
        };
        assert_eq!(reasons(7), "duplicate employee ID, on lines 7, 8");
        assert_eq!(reasons(9), "duplicate email address, on lines 9, 10");
        assert_eq!(
            reasons(11),
            "invalid email address n***; unparseable end date \"someday\" (column \"end\"; \
             expected the format %Y-%m-%d); unknown location code \"X\" (column \"loc\"; not in \
             business_units.map)"
        );
        // The words of a skipped record protect the accounts they may name.
        assert_eq!(
            resolution.unread_words.get("same@x.nl"),
            Some(&UnreadAt {
                line: 9,
                row_line: 9
            })
        );
        assert_eq!(
            resolution.warnings,
            [
                "override for XID 6 (sync.yaml:30) expired on 2020-01-01 and is ignored",
                "departments: code \"2\" is not mapped and was ignored (1 record(s))",
                "override for XID 404 (sync.yaml:31) has no record in the HR file",
            ]
        );
    }

    #[test]
    fn values_memberships_and_roles_come_with_where_they_come_from() {
        let resolution = resolved(&[
            ["9", "p9@x.nl", "Nine", "Store Manager", "S|N", "1", ""],
            ["5", "p5@x.nl", "Five", "Store Manager", "N|S", "1", ""],
            ["6", "p6@x.nl", "Six", "Baker", "S", "", ""],
        ]);
        let nine = resolution.desired.get("9").unwrap();
        assert_eq!(nine.get(ProfileField::LastName), Some("Nine"));
        assert_eq!(nine.get(ProfileField::FirstName), None, "not managed");
        assert_eq!(
            nine.source(ProfileField::LastName),
            Some(Provenance::Hr {
                column: "name".into(),
                line: 2
            })
        );
        let names: Vec<&str> = nine.memberships().names().collect();
        assert_eq!(names, ["North", "South", "Bakery", "Managers"]);
        let south = nine.memberships().get("South").unwrap();
        assert!(matches!(&south.from, Provenance::Mapping(m) if m.code == "S"));
        assert!(matches!(
            &south.admin,
            Some(Provenance::Rule {
                list: RuleList::LocalAdmins,
                ..
            })
        ));
        assert_eq!(nine.memberships().get("Bakery").unwrap().admin, None);
        assert_eq!(&*nine.primary_business_unit().unwrap().value, "South");

        // The override's values, groups and the primary business unit it leaves.
        let five = resolution.desired.get("5").unwrap();
        assert_eq!(five.get(ProfileField::LastName), Some("Jansen"));
        assert!(matches!(
            five.source(ProfileField::LastName),
            Some(Provenance::Override { .. })
        ));
        assert!(five.memberships().contains("Social") && !five.memberships().contains("North"));
        assert!(five.withdrawn("North").is_some());
        assert_eq!(&*five.primary_business_unit().unwrap().value, "South");
        // An expired override changes nothing.
        let six = resolution.desired.get("6").unwrap();
        assert_eq!(six.get(ProfileField::LastName), Some("Six"));
        assert_eq!(six.display_name(), "Six");
    }

    #[test]
    fn people_with_the_same_memberships_for_the_same_reasons_share_one_list() {
        let resolution = resolved(&[
            ["1", "p1@x.nl", "One", "Baker", "N", "1", ""],
            ["2", "p2@x.nl", "Two", "Baker", "N", "1", ""],
            ["3", "p3@x.nl", "Three", "Store Manager", "N", "1", ""],
        ]);
        let list = |xid| &resolution.desired.get(xid).unwrap().memberships().0;
        assert!(std::sync::Arc::ptr_eq(list("1"), list("2")));
        // A manager, local admin of North: a list of their own.
        assert!(!std::sync::Arc::ptr_eq(list("1"), list("3")));
        assert_eq!(list("1").len(), 2);
    }

    /// 5,000 rows of every kind: people, exclusions, duplicates, problems, leavers; with
    /// `contracts`, people of two and three contracts, a merge refused and people without any
    /// membership among them.
    fn rows_of_every_kind(contracts: bool) -> Vec<[String; 7]> {
        let jobs = ["Baker", "Store Manager", "Contractor", "Driver"];
        let mut rows: Vec<[String; 7]> = (0..5_000)
            .map(|i| {
                let xid = if i % 997 == 3 {
                    "42".into()
                } else {
                    i.to_string()
                };
                let mail = match i % 1013 {
                    7 => "not-an-address".into(),
                    8 => "SHARED@x.nl".into(),
                    9 => "shared@x.nl".into(),
                    _ => format!("p{i}@x.nl"),
                };
                let end = match i {
                    _ if i % 89 == 0 => "2021-05-01",
                    _ if i % 701 == 11 => "someday",
                    _ => "",
                };
                [
                    xid,
                    mail,
                    format!("Name{i}"),
                    jobs[i % jobs.len()].into(),
                    ["N", "S", "N|S", "X"][i % 4].into(),
                    ["1", "2", ""][i % 3].into(),
                    end.into(),
                ]
            })
            .collect();
        if contracts {
            for i in 0..rows.len() {
                if i % 100 == 32 {
                    // No location or department: no business unit, department or group.
                    (rows[i][4], rows[i][5]) = (String::new(), String::new());
                }
                // Another contract of the person on the row before (four rows before: a third).
                let of = match i {
                    _ if i % 50 == 7 => Some(i - 1),
                    _ if i % 40 == 8 => Some(i - 4),
                    _ if i % 10 == 5 => Some(i - 1),
                    _ => None,
                };
                let Some(of) = of else { continue };
                let identity = if i % 50 == 7 { 1 } else { 3 };
                let copied = rows[of][..identity].to_vec();
                rows[i][..identity].clone_from_slice(&copied);
            }
        }
        rows
    }

    /// Resolves `rows` on 1, 2, 3 and 7 threads, checks the outcomes are the same, and returns it.
    fn resolved_on_any_number_of_threads(config: &Config, rows: &[[String; 7]]) -> Resolution {
        let snapshot = test_snapshot(config, rows);
        let today = jiff::civil::date(2026, 6, 1);
        let one = resolve_on(config, &snapshot, today, 1);
        for workers in [2, 3, 7] {
            let many = resolve_on(config, &snapshot, today, workers);
            let users = |r: &Resolution| r.desired.values().cloned().collect::<Vec<_>>();
            assert_eq!(users(&one), users(&many), "{workers} workers");
            assert_eq!(one.skipped, many.skipped);
            assert_eq!(one.excluded, many.excluded);
            assert_eq!(one.held, many.held);
            assert_eq!(one.ended, many.ended);
            assert_eq!(one.warnings, many.warnings);
            assert_eq!(one.unread_words, many.unread_words);
        }
        one
    }

    #[test]
    fn the_outcome_does_not_depend_on_the_number_of_threads() {
        let one = resolved_on_any_number_of_threads(&config(), &rows_of_every_kind(false));
        assert!(one.desired.len() > 2_000);
        assert!(!one.skipped.is_empty() && !one.excluded.is_empty() && !one.ended.is_empty());
    }

    #[test]
    fn merged_contracts_do_not_depend_on_the_number_of_threads() {
        let merging = CONFIG.replace(
            "end_date: end }\n",
            "end_date: end }\npolicy: { duplicate_xids: merge, require_group: true }\n",
        );
        let config = crate::config::load(ConfigFiles::in_memory("c0ffee", &merging)).unwrap();
        let one = resolved_on_any_number_of_threads(&config, &rows_of_every_kind(true));
        let merged = (one.desired.values()).filter(|u| !u.contracts.is_empty());
        let sizes: BTreeSet<usize> = merged.map(|u| u.contracts.len()).collect();
        assert_eq!(sizes, BTreeSet::from([2, 3]));
        // Rows on both sides of where two of 7 runs meet (715 records each) are one person,
        // excluded as a whole when one of them is.
        assert_eq!(one.desired.get("2144").unwrap().contracts.len(), 2);
        assert!(one.excluded.contains_key("714") && !one.desired.contains_key("714"));
        let reasons = |needle| {
            let mut reasons = one.skipped.iter().flat_map(|s| &s.reasons);
            reasons.any(|r| r.contains(needle))
        };
        assert!(reasons("not merged: the contracts differ in email address"));
        assert!(reasons("policy.require_group is true"));
    }
}
