//! Merging one person's contracts (`policy.duplicate_xids: merge`): the rows with one employee
//! ID are set aside while the records are resolved in runs, and merged here afterwards, one
//! employee ID after the other. They are one person when their identity agrees (email address
//! in any case, first name, infix, last name). A contract counts while it runs: one whose end
//! date has passed grants nothing, and one that starts later grants nothing until it starts
//! (unless no contract has started yet: then the earliest ones count, so that the person is
//! invited on that day as they will be). The primary contract gives the profile (the merged
//! person holds its row), the group rules and the role; business units and departments come
//! from every contract that counts, and a local-admin rule holds per contract, for that
//! contract's own business units. The person leaves when every contract has ended.
//!
//! Every person, merged or not, then meets the policies `require_business_unit` and
//! `require_group` ([`Resolver::settle`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;

use super::desired::{ContractRow, ContractStatus, DesiredUser};
use super::duplicates::Duplicates;
use super::rules::{MembershipList, SharedLists};
use super::validate::join_lines;
use super::{Part, Resolver, mapping, separator, skip, validate};
use crate::config::{Config, DuplicateXids, Origin};
use crate::fields::{FieldName, ProfileField};
use crate::hr::{Layout, Record, case_folded};
use crate::redact::mask_email;
use crate::resolve::MembershipKind;
use crate::rules::CompiledMatcher;

/// The fields on which a person's contracts must agree to be merged, with their names in words.
const IDENTITY: [(ProfileField, &str); 4] = [
    (ProfileField::Email, "email address"),
    (ProfileField::FirstName, "first name"),
    (ProfileField::Infix, "infix"),
    (ProfileField::LastName, "last name"),
];

/// The policies on contracts and on what a person must have, compiled for one layout.
pub(super) struct Policy<'c> {
    /// Rows of one employee ID are one person's contracts, merged here.
    pub merging: bool,
    primary_contract: Option<(CompiledMatcher, &'c Origin)>,
    separator: char,
    require_business_unit: Option<bool>,
    require_group: bool,
    locations_column: Option<&'c str>,
}

impl<'c> Policy<'c> {
    pub fn new(config: &'c Config, layout: &'c Layout) -> Policy<'c> {
        let policy = &config.sync.policy;
        Policy {
            merging: policy.duplicate_xids == DuplicateXids::Merge,
            primary_contract: (policy.primary_contract.as_ref())
                .map(|p| (CompiledMatcher::compile(&p.when, layout), &p.origin)),
            separator: separator(config),
            require_business_unit: policy.require_business_unit,
            require_group: policy.require_group,
            locations_column: (layout.slot(&FieldName::Locations))
                .map(|slot| layout.columns[slot].as_str()),
        }
    }

    /// Whether the record of `xid` is one of several contracts, to be set aside and merged.
    pub fn sets_aside(&self, xid: &str, duplicates: &Duplicates<'_>) -> bool {
        self.merging && duplicates.xid(xid).is_some()
    }
}

/// One HR row read: its dates and what the lookup tables make of its codes. A person's only
/// row, or one of their contracts.
pub(super) struct Contract<'r> {
    record: &'r Arc<Record>,
    pub dates: validate::Dates,
    pub mapped: mapping::Mapped,
}

impl Resolver<'_> {
    /// The contracts the runs set aside, merged per employee ID, in the order of the IDs: what
    /// they resolve to, as one more part to join after the runs'.
    pub(super) fn merge_contracts(&self, parts: &mut [Part], duplicates: &Duplicates<'_>) -> Part {
        let set_aside: Vec<(usize, Arc<Record>)> = (parts.iter_mut())
            .flat_map(|part| std::mem::take(&mut part.contracts))
            .collect();
        let mut by_xid: BTreeMap<&str, Vec<&(usize, Arc<Record>)>> = BTreeMap::new();
        for contract in &set_aside {
            let xid = contract.1.value(self.xid_slot);
            by_xid.entry(xid).or_default().push(contract);
        }
        let mut part = Part::default();
        let mut shared = SharedLists::default();
        for (xid, indexed) in by_xid {
            let rows: Vec<&Arc<Record>> = indexed.iter().map(|(_, record)| record).collect();
            let users_before = part.users.len();
            self.contracts(xid, &rows, duplicates, (&mut part, &mut shared));
            // The merged person stands at their primary row in the records' XID order.
            if let Some(user) = part.users.get(users_before) {
                let (index, _) = (indexed.iter())
                    .find(|(_, record)| Arc::ptr_eq(record, &user.record))
                    .expect("a merged person holds one of their rows");
                part.user_records.push(*index);
            }
        }
        part
    }

    /// The rows of one employee ID: excluded, skipped (every row, the XID held), ended, or one
    /// person.
    fn contracts(
        &self,
        xid: &str,
        rows: &[&Arc<Record>],
        duplicates: &Duplicates<'_>,
        (part, shared): (&mut Part, &mut SharedLists),
    ) {
        // One contract excluded excludes the person: the sync never manages them.
        if let Some(excluded) = rows.iter().find_map(|r| self.exclusions.of(xid, r)) {
            part.excluded.push((xid.to_string(), excluded));
            return;
        }
        let mut contracts = Vec::with_capacity(rows.len());
        let mut problems = Vec::with_capacity(rows.len());
        for record in rows {
            let (contract, its_problems) = self.read(record, duplicates, part);
            contracts.push(contract);
            problems.push(its_problems);
        }
        if let Some(reasons) = self.refusal(rows, &problems) {
            for (record, reasons) in rows.iter().zip(reasons) {
                skip(part, record, xid, reasons);
            }
            return;
        }
        let active: Vec<&Contract> = (contracts.iter())
            .filter(|c| c.dates.ended(self.today).is_none())
            .collect();
        if active.is_empty() {
            let last = contracts
                .iter()
                .filter_map(|c| c.dates.ended(self.today))
                .max();
            let last = last.expect("a contract not active has ended");
            part.ended.push((xid.to_string(), last));
            return;
        }
        let user = self.merge(&contracts, &active, shared);
        match self.settle(user, &mut part.warnings) {
            Ok(user) => part.users.push(user),
            Err(reason) => {
                for record in rows {
                    skip(part, record, xid, vec![reason.clone()]);
                }
            }
        }
    }

    /// A record validated and mapped, its problems (the row's own first) beside it; ignored
    /// codes are counted.
    pub(super) fn read<'r>(
        &self,
        record: &'r Arc<Record>,
        duplicates: &Duplicates<'_>,
        part: &mut Part,
    ) -> (Contract<'r>, Vec<String>) {
        let mut problems = Vec::new();
        let dates = self.checks.check(record, duplicates, &mut problems);
        let mut mapped = self.tables.map(record);
        problems.append(&mut mapped.problems);
        for code in mapped.ignored.drain(..) {
            *part.ignored_codes.entry(code).or_default() += 1;
        }
        let contract = Contract {
            record,
            dates,
            mapped,
        };
        (contract, problems)
    }

    /// Why the contracts are not merged, as the reasons of each row: a row's own problems (and
    /// the other rows held with it), or an identity that differs between them.
    fn refusal(&self, rows: &[&Arc<Record>], problems: &[Vec<String>]) -> Option<Vec<Vec<String>>> {
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        if problems.iter().any(|p| !p.is_empty()) {
            let broken: Vec<u64> = (rows.iter().zip(problems))
                .filter(|(_, p)| !p.is_empty())
                .map(|(r, _)| r.line)
                .collect();
            let held = format!(
                "another contract of this employee ID has a problem (line {}); contracts on lines {}",
                join_lines(&broken),
                join_lines(&lines)
            );
            return Some(
                problems
                    .iter()
                    .map(|p| match p.is_empty() {
                        true => vec![held.clone()],
                        false => p.clone(),
                    })
                    .collect(),
            );
        }
        let differing = self.differing_identity(rows);
        if differing.is_empty() {
            return None;
        }
        let reason = format!(
            "duplicate employee ID, on lines {}, not merged: the contracts differ in {}",
            join_lines(&lines),
            differing.join(", ")
        );
        Some(vec![vec![reason]; rows.len()])
    }

    /// The identity fields on which the rows differ, in words; an address with its values masked.
    fn differing_identity(&self, rows: &[&Arc<Record>]) -> Vec<String> {
        let mut differing = Vec::new();
        for (field, name) in IDENTITY {
            let Some((slot, _)) = &self.fields.profile[field.index()] else {
                continue;
            };
            let first = identity_value(field, *slot, rows[0]);
            if rows[1..]
                .iter()
                .all(|r| identity_value(field, *slot, r) == first)
            {
                continue;
            }
            if field == ProfileField::Email {
                let values: Vec<String> = (rows.iter())
                    .map(|r| format!("{} on line {}", mask_email(r.value(*slot)), r.line))
                    .collect();
                differing.push(format!("{name} ({})", values.join(", ")));
            } else {
                differing.push(name.to_string());
            }
        }
        differing
    }

    /// The person the active contracts make: the primary contract's row, with the memberships
    /// of every contract that counts.
    fn merge(
        &self,
        contracts: &[Contract],
        active: &[&Contract],
        shared: &mut SharedLists,
    ) -> DesiredUser {
        let earliest = earliest_start(active);
        // Contracts that have started count; before any has, the earliest ones do.
        let threshold = earliest.map_or(self.today, |start| start.max(self.today));
        let counting: Vec<&Contract> = (active.iter().copied())
            .filter(|c| c.dates.start.is_none_or(|start| start <= threshold))
            .collect();
        let (primary, chosen_by) = self.primary(&counting);
        let memberships = self.memberships(primary, &counting);
        let primary_business_unit = std::iter::once(primary)
            .chain(counting.iter().copied())
            .find_map(|c| c.mapped.primary_business_unit.clone());
        DesiredUser {
            record: primary.record.clone(),
            fields: self.fields.clone(),
            start_date: earliest,
            memberships: shared.share(memberships),
            primary_business_unit,
            role: self.rules.role(primary.record),
            overridden: None,
            contracts: self.rows(contracts, (primary, chosen_by), &counting),
        }
    }

    /// The primary contract: the first the configured matcher selects (with where the matcher
    /// is written), else the one that started first (a contract without a start date counts as
    /// started), ties to the first row.
    fn primary<'a, 'r>(&self, counting: &[&'a Contract<'r>]) -> (&'a Contract<'r>, Option<Origin>) {
        let policy = &self.policy;
        let selected = (policy.primary_contract.as_ref()).and_then(|(matcher, at)| {
            let chosen = counting
                .iter()
                .find(|c| matcher.holds(c.record, policy.separator))?;
            Some((*chosen, Some((*at).clone())))
        });
        // `min_by_key` keeps the first of equals: the first row wins a tie.
        let earliest = || {
            counting
                .iter()
                .min_by_key(|c| c.dates.start)
                .map(|c| (*c, None))
        };
        selected.or_else(earliest).expect("a person has a contract")
    }

    /// The business units and departments of every contract that counts (the primary's reasons
    /// first), the group rules on the primary, local admin per contract of its own business units.
    fn memberships(&self, primary: &Contract, counting: &[&Contract]) -> MembershipList {
        let mut memberships = MembershipList::default();
        for contract in std::iter::once(&primary).chain(counting) {
            for (name, membership) in &contract.mapped.memberships.0 {
                memberships.add(name.clone(), membership.clone());
            }
        }
        self.rules.add_group_rules(primary.record, &mut memberships);
        for contract in counting {
            let Some(from) = self.rules.local_admin(contract.record) else {
                continue;
            };
            let own: Vec<&Arc<str>> = (contract.mapped.memberships.0.iter())
                .filter(|(_, m)| m.kind == MembershipKind::BusinessUnit)
                .map(|(name, _)| name)
                .collect();
            memberships.make_admin(from, |name| own.iter().any(|o| ***o == *name));
        }
        memberships
    }

    /// Every row of the person and how it counts today.
    fn rows(
        &self,
        contracts: &[Contract],
        (primary, chosen_by): (&Contract, Option<Origin>),
        counting: &[&Contract],
    ) -> Box<[ContractRow]> {
        (contracts.iter())
            .map(|c| {
                let status = if std::ptr::eq(c, primary) {
                    ContractStatus::Primary {
                        chosen_by: chosen_by.clone(),
                    }
                } else if let Some(end) = c.dates.ended(self.today) {
                    ContractStatus::Ended(end)
                } else if counting.iter().any(|k| std::ptr::eq(*k, c)) {
                    ContractStatus::Active
                } else {
                    ContractStatus::Starts(
                        c.dates.start.expect("a contract not counting starts later"),
                    )
                };
                ContractRow {
                    line: c.record.line,
                    status,
                }
            })
            .collect()
    }

    /// A person's last checks, their override applied: kept, or the reason they are skipped
    /// (all their rows) when the policy requires a business unit or a group they do not have.
    /// Whether they have a business unit is asked before the override: it comes from HR.
    pub(super) fn settle(
        &self,
        mut user: DesiredUser,
        warnings: &mut Vec<String>,
    ) -> Result<DesiredUser, String> {
        let policy = &self.policy;
        if policy.require_business_unit == Some(true) && !user.memberships.has_business_unit() {
            let column = policy.locations_column.unwrap_or("locations");
            return Err(format!(
                "no business unit: no location code in column \"{column}\" that maps to one \
                 (policy.require_business_unit is true)"
            ));
        }
        self.overrides.apply(&mut user, warnings);
        if policy.require_group && user.memberships.is_empty() {
            return Err(
                "no business unit, department or group from the mappings, rules or \
                 overrides (policy.require_group is true)"
                    .to_string(),
            );
        }
        Ok(user)
    }
}

/// A row's value of an identity field as contracts compare it: an address in any case.
fn identity_value(field: ProfileField, slot: usize, record: &Record) -> std::borrow::Cow<'_, str> {
    match field {
        ProfileField::Email => case_folded(record.value(slot)),
        _ => record.value(slot).into(),
    }
}

/// The earliest start date of the active contracts; `None` when one has none (it is running).
fn earliest_start(active: &[&Contract]) -> Option<Date> {
    let starts: Option<Vec<Date>> = active.iter().map(|c| c.dates.start).collect();
    starts?.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::super::{Resolution, resolve};
    use super::*;
    use crate::config::{Config, ConfigFiles};

    const CONFIG: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  date_format: "%Y-%m-%d"
  columns: { xid: id, email: mail, first_name: first, last_name: last, job_title: job, locations: loc, start_date: start, end_date: end, extra: { kind: kind } }
policy:
  duplicate_xids: merge
  PRIMARY
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units: { map: { N: North, S: South, E: East } }
groups:
  - { group: Managers, when: { field: job_title, matches: "Manager$" } }
local_admins:
  - { of: business_unit, when: { field: job_title, equals: Store Manager } }
"#;

    /// Rows of (id, mail, first, last, job, loc, start, end, kind), on lines from 2, as of
    /// 2026-06-01.
    fn resolved(primary: &str, rows: &[[&str; 9]]) -> Resolution {
        let text = CONFIG.replace("PRIMARY", primary);
        let config: Config = crate::config::load(ConfigFiles::in_memory("c0ffee", &text)).unwrap();
        let snapshot = super::super::test_snapshot(&config, rows);
        resolve(&config, &snapshot, jiff::civil::date(2026, 6, 1))
    }

    fn names(user: &DesiredUser) -> Vec<(&str, bool)> {
        let memberships = user.memberships().iter();
        memberships.map(|(n, m)| (n, m.admin.is_some())).collect()
    }

    const BAKER: [&str; 9] = [
        "1",
        "a@x.nl",
        "Ann",
        "Bak",
        "Baker",
        "S",
        "2024-01-01",
        "",
        "main",
    ];
    const MANAGER: [&str; 9] = [
        "1",
        "A@x.nl",
        "Ann",
        "Bak",
        "Store Manager",
        "N",
        "2025-01-01",
        "",
        "side",
    ];

    #[test]
    fn the_earliest_contract_is_primary_and_local_admin_holds_per_contract() {
        let resolution = resolved("", &[MANAGER, BAKER]);
        assert!(resolution.skipped.is_empty(), "{:?}", resolution.skipped);
        let ann = resolution.desired.get("1").unwrap();
        // The baker's contract started first: primary, so no manager group; admin of North only.
        assert_eq!(ann.line(), 3);
        assert_eq!(ann.get(ProfileField::Email), Some("a@x.nl"));
        assert_eq!(names(ann), [("North", true), ("South", false)]);
        assert_eq!(&*ann.primary_business_unit().unwrap().value, "South");
        assert_eq!(ann.start_date(), Some(jiff::civil::date(2024, 1, 1)));
        let rows: Vec<_> = ann
            .contracts
            .iter()
            .map(|c| (c.line, c.status.clone()))
            .collect();
        let primary = ContractStatus::Primary { chosen_by: None };
        assert_eq!(rows, [(2, ContractStatus::Active), (3, primary)]);
    }

    #[test]
    fn the_configured_matcher_chooses_the_primary_and_ties_go_to_the_first_row() {
        let primary = "primary_contract: { when: { field: kind, equals: side } }";
        let ann = resolved(primary, &[BAKER, MANAGER]);
        let ann = ann.desired.get("1").unwrap();
        assert_eq!(ann.line(), 3);
        let chosen_by = &ann.contracts[1].status;
        assert!(
            matches!(chosen_by, ContractStatus::Primary { chosen_by: Some(at) } if at.line == 12),
            "{chosen_by:?}"
        );
        assert_eq!(ann.get(ProfileField::Email), Some("A@x.nl"));
        assert_eq!(
            names(ann),
            [("North", true), ("South", false), ("Managers", false)]
        );
        let mut same_day = MANAGER;
        same_day[6] = BAKER[6];
        let ann = resolved("", &[same_day, BAKER]);
        assert_eq!(ann.desired.get("1").unwrap().line(), 2);
    }

    #[test]
    fn ended_contracts_grant_nothing_and_later_ones_not_yet() {
        let mut ended = MANAGER;
        ended[7] = "2026-05-31";
        let mut later = [
            "1",
            "a@x.nl",
            "Ann",
            "Bak",
            "Baker",
            "E",
            "2026-07-01",
            "",
            "x",
        ];
        let resolution = resolved("", &[ended, BAKER, later]);
        let ann = resolution.desired.get("1").unwrap();
        assert_eq!(names(ann), [("South", false)]);
        let rows: Vec<_> = ann.contracts.iter().map(|c| c.status.clone()).collect();
        assert_eq!(
            rows,
            [
                ContractStatus::Ended(jiff::civil::date(2026, 5, 31)),
                ContractStatus::Primary { chosen_by: None },
                ContractStatus::Starts(jiff::civil::date(2026, 7, 1)),
            ]
        );
        // Before any contract has started, the earliest counts: invited on its day.
        later[6] = "2026-06-10";
        let mut later_still = later;
        later_still[5] = "N";
        later_still[6] = "2026-08-01";
        let resolution = resolved("", &[later_still, later]);
        let ann = resolution.desired.get("1").unwrap();
        assert_eq!(names(ann), [("East", false)]);
        assert_eq!(ann.start_date(), Some(jiff::civil::date(2026, 6, 10)));
        // Every contract ended: a leaver, as of the last day worked.
        let mut also_ended = BAKER;
        also_ended[7] = "2026-04-30";
        let resolution = resolved("", &[ended, also_ended]);
        assert!(resolution.desired.is_empty());
        assert_eq!(resolution.ended["1"], jiff::civil::date(2026, 5, 31));
    }

    #[test]
    fn contracts_of_different_people_or_with_a_problem_are_skipped_and_held() {
        let mut other = MANAGER;
        other[1] = "b@x.nl";
        other[3] = "Baker";
        let resolution = resolved("", &[BAKER, other]);
        assert!(resolution.desired.is_empty());
        assert!(resolution.held.contains("1"));
        assert_eq!(
            resolution.skipped[0].reasons,
            [
                "duplicate employee ID, on lines 2, 3, not merged: the contracts differ in email \
              address (a***@x.nl on line 2, b***@x.nl on line 3), last name"
            ]
        );
        let mut broken = MANAGER;
        broken[5] = "X";
        let resolution = resolved("", &[BAKER, broken]);
        assert!(resolution.held.contains("1"));
        assert!(
            resolution.skipped[0].reasons[0]
                .starts_with("another contract of this employee ID has a problem (line 3)")
        );
        assert!(resolution.skipped[1].reasons[0].starts_with("unknown location code \"X\""));
    }
}
