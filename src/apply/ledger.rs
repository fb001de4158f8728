//! The ledger after a run: what the sync manages now.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;

use crate::config::NetworkRole;
use crate::desired::{DesiredUser, Resolution};
use crate::plan::{Change, Plan, UserAction, UserPlan};
use crate::speakap::{Observed, ObservedUser};
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
    let run = RunSeen::new(network, plan, today);
    let mut users = BTreeMap::new();
    for account in &network.users {
        let Some(xid) = &account.xid else { continue };
        let before = previous.users.get(xid);
        let entry = if account.suspended {
            run.suspended_entry(xid, account, before)
        } else if let Some(desired) = resolution.desired.get(xid) {
            Some(run.managed_entry(xid, account, before, desired))
        } else {
            // No longer desired, not yet offboarded: what the sync managed stays the sync's.
            before.map(|entry| LedgerEntry {
                eid: account.eid.clone(),
                suspended_since: None,
                ..entry.clone()
            })
        };
        if let Some(entry) = entry {
            users.insert(xid.clone(), entry);
        }
    }
    // Accounts gone from the network: remember those deleted by hand while still desired.
    for (xid, entry) in &previous.users {
        let deleted_by_sync =
            run.planned(xid, UserAction::Delete) || run.planned(xid, UserAction::Anonymize);
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

/// What the ledger after a run is worked out from, indexed once.
struct RunSeen<'a> {
    plan: &'a Plan,
    today: Date,
    /// Group EIDs by name: a desired group is known by name, and only a unique name is a group.
    groups_by_name: HashMap<&'a str, Vec<&'a str>>,
    /// The plan's operations by XID, looked up once per account rather than searched (a plan of
    /// thousands against a network of a million).
    planned_for: HashMap<&'a str, Vec<&'a UserPlan>>,
}

impl<'a> RunSeen<'a> {
    fn new(network: &'a Observed, plan: &'a Plan, today: Date) -> Self {
        let groups_by_name = network.groups.iter().fold(HashMap::new(), |mut map, g| {
            map.entry(g.name.as_str())
                .or_insert_with(Vec::new)
                .push(g.eid.as_str());
            map
        });
        let mut planned_for: HashMap<&str, Vec<&UserPlan>> = HashMap::new();
        for user in &plan.users {
            planned_for.entry(user.xid.as_str()).or_default().push(user);
        }
        RunSeen {
            plan,
            today,
            groups_by_name,
            planned_for,
        }
    }

    fn unique_group(&self, name: &str) -> Option<String> {
        match self.groups_by_name.get(name).map(Vec::as_slice) {
            Some([one]) => Some(one.to_string()),
            _ => None,
        }
    }

    fn plans_of(&self, xid: &str) -> &[&'a UserPlan] {
        self.planned_for.get(xid).map_or(&[][..], Vec::as_slice)
    }

    fn planned(&self, xid: &str, action: UserAction) -> bool {
        self.plans_of(xid).iter().any(|u| u.action == action)
    }

    /// A suspended account stays in the ledger when the sync knew it or suspended it (this run,
    /// or adopted as a leaver), keeping the date its suspension started.
    fn suspended_entry(
        &self,
        xid: &str,
        account: &ObservedUser,
        before: Option<&LedgerEntry>,
    ) -> Option<LedgerEntry> {
        let adopted = self
            .plan
            .leaving
            .iter()
            .find(|l| l.xid == xid)
            .map(|l| l.suspended_since);
        let since = before
            .and_then(|e| e.suspended_since)
            .or_else(|| self.planned(xid, UserAction::Suspend).then_some(self.today))
            .or(adopted);
        (since.is_some() || before.is_some()).then(|| LedgerEntry {
            eid: account.eid.clone(),
            suspended_since: since,
            ..before.cloned().unwrap_or_default()
        })
    }

    /// A desired person's account: the memberships and rights on it that are the sync's.
    fn managed_entry(
        &self,
        xid: &str,
        account: &ObservedUser,
        before: Option<&LedgerEntry>,
        desired: &DesiredUser,
    ) -> LedgerEntry {
        let desired_groups: BTreeSet<String> = desired
            .memberships()
            .names()
            .filter_map(|name| self.unique_group(name))
            .collect();
        let desired_admin: BTreeSet<String> = desired
            .memberships()
            .iter()
            .filter(|(_, m)| m.admin.is_some())
            .filter_map(|(n, _)| self.unique_group(n))
            .collect();
        let was = |set: fn(&LedgerEntry) -> &BTreeSet<String>, group: &String| {
            before.is_some_and(|e| set(e).contains(group))
        };
        // What this plan granted the person. A desired membership or right that was already
        // there is the sync's only the first time it manages the person: after that it was
        // granted by hand, and stays when the sync no longer wants it.
        let first_run = before.is_none();
        let changes: Vec<&Change> = self.plans_of(xid).iter().flat_map(|u| &u.changes).collect();
        let groups = account
            .groups
            .keys()
            .filter(|g| {
                was(|e| &e.groups, g)
                    || granted_group(&changes, g)
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
                        || granted_admin(&changes, g)
                        || (first_run && desired_admin.contains(*g)))
            })
            .map(|(g, _)| g.clone())
            .collect();
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
                || (first_run && desired.wants_network_admin()));
        LedgerEntry {
            eid: account.eid.clone(),
            groups,
            admin_of,
            network_admin,
            digest: Some(desired.digest()),
            suspended_since: None,
        }
    }
}

fn granted_group(changes: &[&Change], group: &String) -> bool {
    changes.iter().any(|c| match c {
        Change::AddMembership { group_eid, .. } => group_eid == group,
        _ => false,
    })
}

fn granted_admin(changes: &[&Change], group: &String) -> bool {
    changes.iter().any(|c| match c {
        Change::AddMembership {
            group_eid, admin, ..
        } => *admin && group_eid == group,
        Change::SetGroupAdmin {
            group_eid, admin, ..
        } => *admin && group_eid == group,
        _ => false,
    })
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
        let outcome = AccountOutcome {
            user,
            did: &did,
            as_of: plan.as_of,
        };
        if !outcome.apply(&mut users, created.get(xid).copied(), digest_of) {
            continue;
        }
        let Some(entry) = users.get_mut(xid) else {
            continue;
        };
        outcome.apply_changes(entry);
        // As after a run read back from the network: the digest is what HR says now.
        if let Some(digest) = digest_of(xid) {
            entry.digest = Some(digest);
        }
    }
    Ledger { users }
}

/// What the operations done for one person did to their ledger entry.
struct AccountOutcome<'a> {
    user: &'a UserPlan,
    /// Whether an operation for this person is known to be done.
    did: &'a dyn Fn(&str) -> bool,
    as_of: Date,
}

impl AccountOutcome<'_> {
    /// The account's own action (offboarded, suspended, created, restored); whether its
    /// membership and role changes apply too.
    fn apply(
        &self,
        users: &mut BTreeMap<String, LedgerEntry>,
        created: Option<&str>,
        digest_of: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        let (user, did) = (self.user, self.did);
        let xid = user.xid.as_str();
        match user.action {
            UserAction::Delete | UserAction::Anonymize => {
                if did(op::DELETE) || did(op::ANONYMIZE) {
                    users.remove(xid);
                }
                false
            }
            UserAction::Suspend => {
                if did(op::SUSPEND) {
                    let entry = users
                        .entry(user.xid.clone())
                        .or_insert_with(|| LedgerEntry {
                            eid: user.eid.clone().unwrap_or_default(),
                            ..LedgerEntry::default()
                        });
                    entry.suspended_since = Some(self.as_of);
                }
                false
            }
            UserAction::Invite => {
                let Some(eid) = created else {
                    return false;
                };
                users.insert(
                    user.xid.clone(),
                    LedgerEntry {
                        eid: eid.to_string(),
                        digest: digest_of(xid),
                        ..LedgerEntry::default()
                    },
                );
                true
            }
            UserAction::Restore => {
                if !did(op::RESTORE) {
                    return false;
                }
                if let Some(entry) = users.get_mut(xid) {
                    entry.suspended_since = None;
                }
                true
            }
            UserAction::Update => true,
        }
    }

    /// The memberships and rights the done operations granted or took away.
    fn apply_changes(&self, entry: &mut LedgerEntry) {
        let did = self.did;
        let roles_done = did(op::CHANGE_ROLES);
        for change in &self.user.changes {
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
    }
}
