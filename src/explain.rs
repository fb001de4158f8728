//! `explain XID`: why the sync does what it does for one person — the HR row, the rules,
//! exclusions and overrides that matched (with their places), desired vs current, and the
//! resulting operations, or why nothing happens. Pure: it reads the same inputs as `plan`.

use std::fmt::Write;

use crate::config::Config;
use crate::hr::{Locator, Record, Snapshot};
use crate::output::Paint;
use crate::plan::{Plan, render};
use crate::resolve::{DesiredUser, ProfileField, Resolution};
use crate::speakap::{Observed, ObservedUser};
use crate::state::Ledger;
use crate::text::inert;

pub struct ExplainInput<'a> {
    pub xid: &'a str,
    pub config: &'a Config,
    pub snapshot: &'a Snapshot,
    pub resolution: &'a Resolution,
    pub observed: &'a Observed,
    pub ledger: &'a Ledger,
    pub plan: &'a Plan,
}

/// The explanation: one section per step of the sync, in the order it decides.
pub fn explain(input: &ExplainInput, paint: Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint.bold(&format!("XID {}", inert(input.xid))));
    let Some(rows) = hr_rows(&mut out, input) else {
        return out;
    };
    exclusions_and_overrides(&mut out, input);
    if let Some(desired) = input.resolution.desired.get(input.xid) {
        contracts(&mut out, desired, &input.snapshot.locator);
        desired_state(&mut out, desired, &input.snapshot.locator, paint);
    }
    let account = account(input);
    match account {
        Some(account) => account_state(&mut out, input, account, paint),
        None => {
            let _ = writeln!(out, "Speakap account: none with this XID");
        }
    }
    let _ = writeln!(out, "{}", paint.bold("What the sync does:"));
    let mut operations = String::new();
    for user in input.plan.users.iter().filter(|u| u.xid == input.xid) {
        render::render_user(&mut operations, user, &input.plan.hr.locator, paint);
    }
    let mut reasons = reasons_in_the_plan(input);
    if operations.is_empty() && reasons.is_empty() {
        reasons.push(why_nothing(input, rows.is_empty(), account.is_none()));
    }
    out.push_str(&operations);
    // The reasons quote HR values, rule reasons and API text.
    for reason in reasons {
        let _ = writeln!(out, "  {}", inert(&reason));
    }
    out
}

/// The person's HR rows, each value by its column; `None` when the layout has no XID column.
fn hr_rows<'a>(out: &mut String, input: &ExplainInput<'a>) -> Option<Vec<&'a Record>> {
    let snapshot = input.snapshot;
    let xid_slot = snapshot.layout.slot(&crate::rules::FieldName::Xid)?;
    let rows: Vec<&Record> = (snapshot.records.iter())
        .filter(|r| r.value(xid_slot) == input.xid)
        .collect();
    if rows.is_empty() {
        let _ = writeln!(out, "HR record: no row in {}", inert(&snapshot.source));
        suggest_as_written(out, snapshot, xid_slot, input.xid);
    }
    for row in &rows {
        let _ = writeln!(
            out,
            "HR record: {}",
            inert(&snapshot.origin(row).to_string())
        );
        // A column that feeds two fields (say an `extra` beside a profile field) is one column.
        let mut shown = std::collections::HashSet::new();
        for (slot, column) in snapshot.layout.columns.iter().enumerate() {
            if shown.insert(column) {
                let _ = writeln!(out, "  {}: {}", inert(column), inert(row.value(slot)));
            }
        }
    }
    Some(rows)
}

/// `explain 4` for `000004`: the XIDs the record writes that differ only in leading zeros.
fn suggest_as_written(out: &mut String, snapshot: &Snapshot, xid_slot: usize, xid: &str) {
    let unpadded = xid.trim_start_matches('0');
    let mut alike: Vec<&str> = snapshot
        .records
        .iter()
        .map(|r| r.value(xid_slot))
        .filter(|x| *x != xid && !xid.is_empty() && x.trim_start_matches('0') == unpadded)
        .collect();
    alike.sort_unstable();
    alike.dedup();
    if !alike.is_empty() {
        let quoted: Vec<String> = alike.iter().map(|x| format!("`{}`", inert(x))).collect();
        let _ = writeln!(
            out,
            "  did you mean {}? (XIDs are compared as written)",
            quoted.join(" or ")
        );
    }
}

/// The exclusion that keeps the sync away from the person, and the overrides for them.
fn exclusions_and_overrides(out: &mut String, input: &ExplainInput) {
    let (xid, config) = (input.xid, input.config);
    if let Some(excluded) = input.resolution.excluded.get(xid) {
        let _ = writeln!(
            out,
            "Excluded: {} ({})",
            inert(&excluded.reason),
            excluded.at
        );
    } else if let Some(e) = config
        .exclusions
        .iter()
        .find(|e| e.xid.as_deref() == Some(xid))
    {
        let _ = writeln!(out, "Excluded: {} ({})", inert(&e.reason), e.origin);
    }
    for o in config.overrides.iter().filter(|o| o.xid == xid) {
        let state = match o.until {
            Some(until) if until < input.plan.as_of => format!("expired on {until}, ignored"),
            Some(until) => format!("in effect until {until}"),
            None => "in effect".to_string(),
        };
        let _ = writeln!(
            out,
            "Override ({}): {} — {state}",
            o.origin,
            inert(&o.reason)
        );
    }
}

/// A merged person's contracts: which one is primary, which count, which do not yet or no more.
fn contracts(out: &mut String, desired: &DesiredUser, locator: &Locator) {
    if desired.contracts.is_empty() {
        return;
    }
    let lines = desired.contract_lines();
    let _ = writeln!(
        out,
        "Merged (policy.duplicate_xids: merge): {}",
        locator.contracts(&lines)
    );
    for contract in desired.contracts.iter() {
        let _ = writeln!(
            out,
            "  {}: {}",
            locator.short(contract.line),
            contract.status.describe()
        );
    }
}

/// What HR and the rules want for the person, each value with where it comes from.
fn desired_state(out: &mut String, desired: &DesiredUser, locator: &Locator, paint: Paint) {
    let _ = writeln!(out, "Desired (from HR and the rules):");
    for (field, value) in desired.profile() {
        let from = desired.source(field);
        let _ = writeln!(
            out,
            "  {}: {}  {}",
            field.name(),
            inert(value),
            paint.dim(&inert(
                &from.map(|f| f.describe(locator)).unwrap_or_default()
            ))
        );
    }
    for (name, m) in desired.memberships().iter() {
        let _ = writeln!(
            out,
            "  {} \"{}\"  {}",
            m.kind.label(),
            inert(name),
            paint.dim(&inert(&m.from.to_string()))
        );
        if let Some(admin) = &m.admin {
            let _ = writeln!(
                out,
                "  local admin of \"{}\"  {}",
                inert(name),
                paint.dim(&inert(&admin.to_string()))
            );
        }
    }
    match desired.role() {
        Some(role) => {
            let _ = writeln!(
                out,
                "  network role: {}  {}",
                role.value.as_str(),
                paint.dim(&inert(&role.from.to_string()))
            );
        }
        None => {
            let _ = writeln!(out, "  network role: not set by any rule");
        }
    }
    if let Some(start) = desired.start_date() {
        let _ = writeln!(out, "  start date: {start}");
    }
}

/// The account as it is: by its XID, or the one the plan links by email address.
fn account<'a>(input: &ExplainInput<'a>) -> Option<&'a ObservedUser> {
    let (xid, observed) = (input.xid, input.observed);
    let by_xid = observed
        .users
        .iter()
        .find(|u| u.xid.as_deref() == Some(xid));
    by_xid.or_else(|| {
        let planned = input.plan.users.iter().find(|u| u.xid == xid)?;
        let eid = planned.eid.as_deref()?;
        observed.users.iter().find(|u| u.eid == eid)
    })
}

/// The account's profile and groups, each group as managed by the sync or not.
fn account_state(out: &mut String, input: &ExplainInput, account: &ObservedUser, paint: Paint) {
    let xid = input.xid;
    let status = if account.suspended {
        "suspended"
    } else {
        "active"
    };
    let found = match &account.xid {
        Some(other) if other != xid => {
            format!(", XID {}, found by its email address", inert(other))
        }
        Some(_) => String::new(),
        None => ", no XID yet, found by its email address".to_string(),
    };
    let _ = writeln!(
        out,
        "Speakap account {} ({status}, network role {}{found}):",
        inert(&account.eid),
        inert(account.role())
    );
    for field in ProfileField::ALL {
        let _ = writeln!(out, "  {}: {}", field.name(), inert(account.get(field)));
    }
    let entry = input.ledger.users.get(xid);
    for (group, membership) in &account.groups {
        let name = (input.observed.groups.iter())
            .find(|g| &g.eid == group)
            .map_or(group.as_str(), |g| g.name.as_str());
        let managed = entry.is_some_and(|e| e.groups.contains(group));
        let _ = writeln!(
            out,
            "  group \"{}\" as {}  {}",
            inert(name),
            inert(&membership.role.to_string()),
            paint.dim(if managed {
                "managed by the sync"
            } else {
                "not managed by the sync (granted by hand or not yet)"
            })
        );
    }
}

/// Why the plan does nothing (yet) for the person: a skipped record, a schedule, a record that
/// holds the account back, a grace period, a deletion by hand, an unmanaged account.
fn reasons_in_the_plan(input: &ExplainInput) -> Vec<String> {
    let (xid, plan) = (input.xid, input.plan);
    let mut reasons = Vec::new();
    for s in plan
        .skipped
        .iter()
        .filter(|s| s.xid.as_deref() == Some(xid))
    {
        reasons.push(format!(
            "nothing: the record on {} is skipped: {}",
            plan.hr.locator.short(s.line),
            s.reasons.join("; ")
        ));
    }
    for s in plan.scheduled.iter().filter(|s| s.xid == xid) {
        let what = if s.restore { "restored" } else { "invited" };
        reasons.push(format!(
            "nothing yet: {what} on the start date, {}",
            s.invite_on
        ));
    }
    // Another record whose reason names this XID (an XID change held back, say).
    let named = format!("XID {xid}");
    for s in plan
        .skipped
        .iter()
        .filter(|s| s.xid.as_deref() != Some(xid))
    {
        let reason = s.reasons.join("; ");
        let names_it = reason
            .match_indices(&named)
            .any(|(at, _)| !reason[at + named.len()..].starts_with(|c: char| c.is_alphanumeric()));
        if names_it {
            let other = s.xid.as_deref().unwrap_or("without an XID");
            reasons.push(format!(
                "nothing: held back by the record on {} (XID {other}): {reason}",
                plan.hr.locator.short(s.line)
            ));
        }
    }
    for l in plan.leaving.iter().filter(|l| l.xid == xid) {
        reasons.push(format!(
            "nothing yet: suspended since {}, {} on {}",
            l.suspended_since,
            l.then.past_tense(),
            l.on
        ));
    }
    if plan.deleted_outside.iter().any(|d| d.xid == xid) {
        reasons.push(
            "nothing: the account was deleted outside the sync; it is recreated when the HR record or the rules' \
             outcome changes, or an override says restore: true"
                .into(),
        );
    }
    for u in plan.unmanaged.iter().filter(|u| u.xid == xid) {
        reasons.push(format!("nothing: unmanaged, {}", u.reason));
    }
    reasons
}

/// Why nothing happens when the plan has nothing to say about the person.
fn why_nothing(input: &ExplainInput, no_rows: bool, no_account: bool) -> String {
    let xid = input.xid;
    let excluded = (input.resolution.excluded.get(xid))
        .map(|e| e.reason.clone())
        .or_else(|| {
            (input.config.exclusions.iter())
                .find(|e| e.xid.as_deref() == Some(xid))
                .map(|e| e.reason.clone())
        });
    if let Some(reason) = excluded {
        format!("nothing: excluded ({reason}); the sync never invites, changes or removes them")
    } else if input.resolution.desired.contains_key(xid) {
        "nothing: the account matches the HR record and the rules".to_string()
    } else if no_rows && no_account {
        "nothing: not in the HR record and no account".to_string()
    } else if no_account {
        "nothing: no account, and the HR record wants none (an end date has passed?)".to_string()
    } else {
        "nothing: the account is left alone".to_string()
    }
}
