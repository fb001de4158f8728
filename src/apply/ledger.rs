//! The ledger after a run: what the sync manages now.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;

use crate::config::NetworkRole;
use crate::plan::{Change, Plan, UserAction, UserPlan};
use crate::resolve::Resolution;
use crate::speakap::Observed;
use crate::state::{Ledger, LedgerEntry, OperationResult};

use super::op;

/// The ledger after a run, from the network as it now is: a membership or admin right is the
/// sync's when it is desired (granted or adopted) or was the sync's before and is still there
/// (a removal that failed is retried next time). Suspensions the sync made keep their date. An
/// account that vanished while its person is still desired stays in the ledger, so the next plan
/// can tell a manual deletion from a new joiner; accounts the sync deleted leave it.
pub fn ledger_after(
    previous: &Ledger,
    resolution: &Resolution,
    network: &Observed,
    plan: &Plan,
    today: Date,
) -> Ledger {
    let groups_by_name: HashMap<&str, Vec<&str>> =
        network.groups.iter().fold(HashMap::new(), |mut map, g| {
            map.entry(g.name.as_str()).or_default().push(g.eid.as_str());
            map
        });
    let unique_group = |name: &str| match groups_by_name.get(name).map(Vec::as_slice) {
        Some([one]) => Some(one.to_string()),
        _ => None,
    };
    // The plan's operations by XID, looked up once per account rather than searched (a plan of
    // thousands against a network of a million).
    let mut planned_for: HashMap<&str, Vec<&UserPlan>> = HashMap::new();
    for user in &plan.users {
        planned_for.entry(user.xid.as_str()).or_default().push(user);
    }
    let plans_of = |xid: &str| planned_for.get(xid).map_or(&[][..], Vec::as_slice);
    let planned = |xid: &str, action: UserAction| plans_of(xid).iter().any(|u| u.action == action);
    let mut users = BTreeMap::new();
    for account in &network.users {
        let Some(xid) = &account.xid else { continue };
        let before = previous.users.get(xid);
        if account.suspended {
            let adopted = plan
                .leaving
                .iter()
                .find(|l| &l.xid == xid)
                .map(|l| l.suspended_since);
            let since = before
                .and_then(|e| e.suspended_since)
                .or_else(|| planned(xid, UserAction::Suspend).then_some(today))
                .or(adopted);
            if since.is_some() || before.is_some() {
                let base = before.cloned().unwrap_or_default();
                users.insert(
                    xid.clone(),
                    LedgerEntry {
                        eid: account.eid.clone(),
                        suspended_since: since,
                        ..base
                    },
                );
            }
            continue;
        }
        let Some(desired) = resolution.desired.get(xid) else {
            if let Some(entry) = before {
                users.insert(
                    xid.clone(),
                    LedgerEntry {
                        eid: account.eid.clone(),
                        suspended_since: None,
                        ..entry.clone()
                    },
                );
            }
            continue;
        };
        let desired_groups: BTreeSet<String> = desired
            .memberships()
            .names()
            .filter_map(unique_group)
            .collect();
        let desired_admin: BTreeSet<String> = desired
            .memberships()
            .iter()
            .filter(|(_, m)| m.admin.is_some())
            .filter_map(|(n, _)| unique_group(n))
            .collect();
        let was = |set: fn(&LedgerEntry) -> &BTreeSet<String>, group: &String| {
            before.is_some_and(|e| set(e).contains(group))
        };
        // What this plan granted the person. A desired membership or right that was already
        // there is the sync's only the first time it manages the person: after that it was
        // granted by hand, and stays when the sync no longer wants it.
        let first_run = before.is_none();
        let changes: Vec<&Change> = plans_of(xid).iter().flat_map(|u| &u.changes).collect();
        let granted_group = |g: &String| {
            changes.iter().any(|c| match c {
                Change::AddMembership { group_eid, .. } => group_eid == g,
                _ => false,
            })
        };
        let granted_admin = |g: &String| {
            changes.iter().any(|c| match c {
                Change::AddMembership {
                    group_eid, admin, ..
                } => *admin && group_eid == g,
                Change::SetGroupAdmin {
                    group_eid, admin, ..
                } => *admin && group_eid == g,
                _ => false,
            })
        };
        let groups = account
            .groups
            .keys()
            .filter(|g| {
                was(|e| &e.groups, g)
                    || granted_group(g)
                    || (first_run && desired_groups.contains(*g))
            })
            .cloned()
            .collect();
        let admin_of = account
            .groups
            .iter()
            .filter(|(g, m)| {
                m.role == "admin"
                    && (was(|e| &e.admin_of, g)
                        || granted_admin(g)
                        || (first_run && desired_admin.contains(*g)))
            })
            .map(|(g, _)| g.clone())
            .collect();
        let wants_admin = desired.wants_network_admin();
        let granted_network_admin = changes.iter().any(|c| {
            matches!(
                c,
                Change::SetNetworkRole {
                    to: NetworkRole::Admin,
                    ..
                }
            )
        });
        let network_admin = account.role() == "admin"
            && (before.is_some_and(|e| e.network_admin)
                || granted_network_admin
                || (first_run && wants_admin));
        users.insert(
            xid.clone(),
            LedgerEntry {
                eid: account.eid.clone(),
                groups,
                admin_of,
                network_admin,
                digest: Some(desired.digest()),
                suspended_since: None,
            },
        );
    }
    // Accounts gone from the network: remember those deleted by hand while still desired.
    for (xid, entry) in &previous.users {
        let deleted_by_sync =
            planned(xid, UserAction::Delete) || planned(xid, UserAction::Anonymize);
        if !users.contains_key(xid) && !deleted_by_sync && resolution.desired.contains_key(xid) {
            users.insert(
                xid.clone(),
                LedgerEntry {
                    suspended_since: None,
                    ..entry.clone()
                },
            );
        }
    }
    Ledger { users }
}

/// The ledger after a run worked out from its results alone, for when the network cannot be
/// read afterwards (or a crashed run is recorded from its journal): the previous ledger with the
/// effect of every operation known to be done. Nothing is adopted that the run did not grant, so
/// the next apply, which reads the network, can only find more that is the sync's, never less.
pub fn ledger_from_results(
    previous: &Ledger,
    plan: &Plan,
    results: &[OperationResult],
    digest_of: &dyn Fn(&str) -> Option<String>,
) -> Ledger {
    let done: BTreeSet<(&str, &str)> = results
        .iter()
        .filter(|r| r.ok)
        .map(|r| (r.xid.as_str(), r.operation.as_str()))
        .collect();
    let created: HashMap<&str, &str> = results
        .iter()
        .filter(|r| r.ok)
        .filter_map(|r| r.eid.as_deref().map(|eid| (r.xid.as_str(), eid)))
        .collect();
    let mut users = previous.users.clone();
    for user in &plan.users {
        let xid = user.xid.as_str();
        let did = |operation: &str| done.contains(&(xid, operation));
        match user.action {
            UserAction::Delete | UserAction::Anonymize => {
                if did(op::DELETE) || did(op::ANONYMIZE) {
                    users.remove(xid);
                }
                continue;
            }
            UserAction::Suspend => {
                if did(op::SUSPEND) {
                    let entry = users
                        .entry(user.xid.clone())
                        .or_insert_with(|| LedgerEntry {
                            eid: user.eid.clone().unwrap_or_default(),
                            ..LedgerEntry::default()
                        });
                    entry.suspended_since = Some(plan.as_of);
                }
                continue;
            }
            UserAction::Invite => {
                let Some(eid) = created.get(xid) else {
                    continue;
                };
                users.insert(
                    user.xid.clone(),
                    LedgerEntry {
                        eid: eid.to_string(),
                        digest: digest_of(xid),
                        ..LedgerEntry::default()
                    },
                );
            }
            UserAction::Restore => {
                if !did(op::RESTORE) {
                    continue;
                }
                if let Some(entry) = users.get_mut(xid) {
                    entry.suspended_since = None;
                }
            }
            UserAction::Update => {}
        }
        let Some(entry) = users.get_mut(xid) else {
            continue;
        };
        let roles_done = did(op::CHANGE_ROLES);
        for change in &user.changes {
            match change {
                Change::AddMembership {
                    group_eid, admin, ..
                } if did(op::ADD_MEMBERSHIPS) => {
                    entry.groups.insert(group_eid.clone());
                    if *admin && roles_done {
                        entry.admin_of.insert(group_eid.clone());
                    }
                }
                Change::RemoveMembership { group_eid, .. } if did(op::REMOVE_MEMBERSHIPS) => {
                    entry.groups.remove(group_eid);
                    entry.admin_of.remove(group_eid);
                }
                Change::SetGroupAdmin {
                    group_eid, admin, ..
                } if roles_done => {
                    if *admin {
                        entry.admin_of.insert(group_eid.clone());
                    } else {
                        entry.admin_of.remove(group_eid);
                    }
                }
                Change::SetNetworkRole { to, .. } if roles_done => {
                    entry.network_admin = *to == NetworkRole::Admin;
                }
                _ => {}
            }
        }
        // As after a run read back from the network: the digest is what HR says now.
        if let Some(digest) = digest_of(xid) {
            entry.digest = Some(digest);
        }
    }
    Ledger { users }
}
