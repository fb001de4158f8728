//! Executes a plan against the API: invites first, then per-user profile, memberships and roles,
//! and removals last (only when everything before succeeded, so a half-applied run never locks
//! people out). One failed operation is reported and the rest go on; a systemic failure (bad
//! token, API unreachable) stops the run, and what was done is still recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::StreamExt;

use crate::config::{InviteChannel, NetworkRole};
use crate::desired::{ProfileField, Resolution};
use jiff::civil::Date;

use crate::output::Progress;
use crate::plan::{Change, Plan, UserAction, UserPlan};
use crate::speakap::{ApiError, Client, MAX_INVITES_PER_CALL, Observed, ObservedUser, wire};
use crate::state::{Counts, Ledger, LedgerEntry, OperationResult};

pub struct ApplyReport {
    pub results: Vec<OperationResult>,
    /// Activation codes of printable invitations: for handing out, never logged or recorded.
    pub credentials: Vec<Credential>,
    pub counts: Counts,
    /// Set when a systemic error stopped the run early.
    pub stopped: Option<String>,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        self.counts.failed > 0 || self.stopped.is_some()
    }
}

/// Printable credentials for one new person.
pub struct Credential {
    pub xid: String,
    pub name: String,
    pub email: String,
    pub activation_code: String,
}

#[derive(Default)]
struct Recorder {
    results: Vec<OperationResult>,
    stopped: Option<String>,
}

impl Recorder {
    fn record(&mut self, xid: &str, operation: &str, outcome: Result<(), ApiError>) -> bool {
        let ok = outcome.is_ok();
        let error = outcome.err().map(|e| {
            if e.is_systemic() && self.stopped.is_none() {
                self.stopped = Some(e.to_string());
            }
            // Printed and recorded in the audit trail: an address the API quotes is masked.
            crate::redact::mask_emails_in(&e.to_string())
        });
        self.results.push(OperationResult {
            xid: xid.to_string(),
            operation: operation.to_string(),
            ok,
            error,
        });
        ok
    }
}

pub async fn apply(
    client: &Client,
    plan: &Plan,
    observed: &Observed,
    concurrency: usize,
    progress: &Progress,
) -> ApplyReport {
    let mut recorder = Recorder::default();
    let accounts: HashMap<&str, &ObservedUser> =
        observed.users.iter().map(|u| (u.eid.as_str(), u)).collect();

    // 1. Existing accounts first: restores, profiles, memberships and roles, several at a time.
    // Before the invites, so that an address an account gives up is free for a joiner.
    let mut pending: Vec<(&UserPlan, String)> = plan
        .users
        .iter()
        .filter(|u| matches!(u.action, UserAction::Restore | UserAction::Update))
        .filter_map(|u| u.eid.clone().map(|eid| (u, eid)))
        .collect();
    // In rounds: an account taking an address another gives up waits for that one (`after`).
    while !pending.is_empty() {
        let waiting_on: BTreeSet<String> = pending.iter().map(|(_, eid)| eid.clone()).collect();
        let (mut ready, waiting): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(u, _)| u.after.as_ref().is_none_or(|a| !waiting_on.contains(a)));
        if ready.is_empty() {
            ready = waiting; // a plan never holds a cycle; if one did, try it rather than loop
            pending = Vec::new();
        } else {
            pending = waiting;
        }
        update_users(
            client,
            &mut recorder,
            ready,
            &accounts,
            concurrency,
            progress,
        )
        .await;
    }

    // Invites: SSO accounts one by one, invitations batched.
    let invites: Vec<&UserPlan> = plan
        .users
        .iter()
        .filter(|u| u.action == UserAction::Invite)
        .collect();
    let mut invited: HashMap<&str, String> = HashMap::new();
    let mut credentials = Vec::new();
    let (sso, invitations): (Vec<&UserPlan>, Vec<&UserPlan>) = invites.into_iter().partition(|u| {
        u.invitation
            .as_ref()
            .is_some_and(|i| i.channel == InviteChannel::Sso)
    });
    for user in sso {
        if recorder.stopped.is_some() {
            break;
        }
        let account = wire::NewSsoUser {
            xid: user.xid.clone(),
            upn: user
                .invitation
                .as_ref()
                .and_then(|i| i.upn.clone())
                .unwrap_or_default(),
            name: planned_name(user),
            primary_email: planned(user, ProfileField::Email).to_string(),
        };
        let outcome = client.create_sso_user(&account).await.map(|created| {
            invited.insert(&user.xid, created.eid);
        });
        recorder.record(&user.xid, "create SSO account", outcome);
    }
    for batch in invitations.chunks(MAX_INVITES_PER_CALL) {
        if recorder.stopped.is_some() {
            break;
        }
        let invitees = batch
            .iter()
            .map(|u| {
                let channel = u
                    .invitation
                    .as_ref()
                    .map_or(InviteChannel::Email, |i| i.channel);
                wire::Invitee {
                    name: u.name.clone(),
                    email: planned(u, ProfileField::Email).to_string(),
                    channel: match channel {
                        InviteChannel::Sms => Some("sms".into()),
                        InviteChannel::Printable => Some("printable".into()),
                        _ => None,
                    },
                    telephone_number: (channel == InviteChannel::Sms)
                        .then(|| planned(u, ProfileField::Phone).to_string()),
                }
            })
            .collect();
        match client.invite(invitees).await {
            Ok(results) => {
                let by_email: HashMap<String, &wire::InviteResult> = results
                    .iter()
                    .map(|r| (r.email.to_lowercase(), r))
                    .collect();
                for user in batch {
                    let email = planned(user, ProfileField::Email);
                    let outcome = match by_email.get(&email.to_lowercase()) {
                        Some(r) if r.eid.as_deref().is_some_and(|e| accounts.contains_key(e)) => {
                            // Never merge two people: the plan invites only addresses no account
                            // had, so the address leads to an account that was there before
                            // (through an address the plan could not see, say).
                            Err(api_rejection(
                                "invite",
                                -9,
                                "the address belongs to an existing account; plan again",
                            ))
                        }
                        Some(r) if r.status != "invalid" && r.eid.is_some() => {
                            invited.insert(&user.xid, r.eid.clone().expect("checked"));
                            if let Some(code) = &r.activation_code {
                                credentials.push(Credential {
                                    xid: user.xid.clone(),
                                    name: user.name.clone(),
                                    email: email.to_string(),
                                    activation_code: code.clone(),
                                });
                            }
                            Ok(())
                        }
                        Some(r) => Err(api_rejection(
                            "invite",
                            -8,
                            &format!("invite status `{}`", r.status),
                        )),
                        None => Err(api_rejection(
                            "invite",
                            -1,
                            "the invite response does not mention this email address",
                        )),
                    };
                    recorder.record(&user.xid, "invite", outcome);
                }
            }
            Err(e) => {
                for user in batch {
                    recorder.record(&user.xid, "invite", Err(e.clone()));
                }
            }
        }
    }

    // 2. Profiles, memberships and roles of the invitees, several at a time.
    let work: Vec<(&UserPlan, String)> = plan
        .users
        .iter()
        .filter(|u| u.action == UserAction::Invite)
        .filter_map(|u| invited.get(u.xid.as_str()).map(|eid| (u, eid.clone())))
        .collect();
    update_users(
        client,
        &mut recorder,
        work,
        &accounts,
        concurrency,
        progress,
    )
    .await;

    // 3. Offboarding, last. An operation that failed for one person does not hold back the
    // leavers (they would keep their access for as long as it keeps failing); an API failing as
    // a whole (authentication, unreachable) has stopped the run already.
    for user in plan.users.iter().filter(|u| u.action.is_offboarding()) {
        if recorder.stopped.is_some() {
            break;
        }
        let operation = match user.action {
            UserAction::Suspend => "suspend",
            UserAction::Delete => "delete",
            _ => "anonymize",
        };
        let account = user
            .eid
            .as_deref()
            .and_then(|eid| accounts.get(eid))
            .copied();
        let outcome = match (user.action, account) {
            (_, None) => Err(api_rejection(
                operation,
                -4,
                "the account is no longer listed",
            )),
            (UserAction::Suspend, Some(a)) => client.suspend(&a.eid).await,
            (UserAction::Anonymize, Some(a)) => client.anonymize(&a.eid).await,
            (_, Some(a)) => match &a.network {
                Some(m) => client.remove_from_network(&a.eid, &m.eid).await,
                None => Err(api_rejection(
                    operation,
                    -4,
                    "the account has no network membership",
                )),
            },
        };
        recorder.record(&user.xid, operation, outcome);
        progress.tick();
    }

    let mut results = recorder.results;
    results.sort_by(|a, b| a.xid.cmp(&b.xid).then(a.operation.cmp(&b.operation)));
    let failed_xids: BTreeSet<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.xid.as_str())
        .collect();
    let done = |actions: &[UserAction]| {
        plan.users
            .iter()
            .filter(|u| actions.contains(&u.action))
            .filter(|u| {
                results.iter().any(|r| r.xid == u.xid) && !failed_xids.contains(u.xid.as_str())
            })
            .count()
    };
    let counts = Counts {
        invited: done(&[UserAction::Invite]),
        restored: done(&[UserAction::Restore]),
        updated: done(&[UserAction::Update]),
        suspended: done(&[UserAction::Suspend]),
        deleted: done(&[UserAction::Delete]),
        anonymized: done(&[UserAction::Anonymize]),
        succeeded: results.iter().filter(|r| r.ok).count(),
        failed: results.iter().filter(|r| !r.ok).count(),
        retries: client.retries(),
    };
    ApplyReport {
        results,
        credentials,
        counts,
        stopped: recorder.stopped,
    }
}

/// The value a plan sets for a profile field ("" when it sets none).
fn planned(user: &UserPlan, field: ProfileField) -> &str {
    user.changes
        .iter()
        .find_map(|c| match c {
            Change::SetProfile { field: f, to, .. } if *f == field => Some(to.as_str()),
            _ => None,
        })
        .unwrap_or_default()
}

fn planned_name(user: &UserPlan) -> wire::Name {
    wire::Name {
        first_name: planned(user, ProfileField::FirstName).to_string(),
        infix: planned(user, ProfileField::Infix).to_string(),
        family_name: planned(user, ProfileField::LastName).to_string(),
    }
}

fn api_rejection(operation: &str, code: i64, message: &str) -> ApiError {
    ApiError::Api {
        method: "POST".into(),
        path: operation.into(),
        status: 400,
        code,
        message: message.into(),
    }
}

/// For one user: restore, group additions, profile, removals, then role changes.
async fn update_users(
    client: &Client,
    recorder: &mut Recorder,
    work: Vec<(&UserPlan, String)>,
    accounts: &HashMap<&str, &ObservedUser>,
    concurrency: usize,
    progress: &Progress,
) {
    if recorder.stopped.is_some() {
        return;
    }
    let done: Vec<Work> = futures_util::stream::iter(work)
        .map(|(user, eid)| {
            let current = accounts.get(eid.as_str()).copied();
            async move {
                let work = update_user(client, user, &eid, current).await;
                progress.tick();
                work
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut role_changes = Vec::new();
    for work in done {
        for (xid, operation, outcome) in work.outcomes {
            recorder.record(&xid, &operation, outcome);
        }
        role_changes.extend(work.role_changes);
    }
    change_roles(client, recorder, role_changes).await;
}

/// One operation's outcome for one person: (XID, operation, result).
type Outcome = (String, String, Result<(), ApiError>);

async fn update_user(
    client: &Client,
    user: &UserPlan,
    eid: &str,
    current: Option<&ObservedUser>,
) -> Work {
    let mut outcomes = Vec::new();
    let mut push = |operation: &str, outcome| {
        outcomes.push((user.xid.clone(), operation.to_string(), outcome))
    };

    // A returning leaver's account is reactivated first; the rest applies to it as to anyone.
    if user.action == UserAction::Restore {
        let restored = client.restore(eid).await;
        let ok = restored.is_ok();
        push("restore", restored);
        if !ok {
            return Work {
                outcomes,
                role_changes: Vec::new(),
            };
        }
    }

    let mut role_changes: Vec<(String, String)> = Vec::new();
    let additions: Vec<(&String, bool)> = user
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::AddMembership {
                group_eid, admin, ..
            } => Some((group_eid, *admin)),
            _ => None,
        })
        .collect();
    if !additions.is_empty() {
        let groups: Vec<String> = additions.iter().map(|(g, _)| (*g).clone()).collect();
        match client.add_to_groups(eid, &groups).await {
            Ok(memberships) => {
                let by_group: HashMap<&str, &wire::Membership> = memberships
                    .iter()
                    .filter_map(|m| m.group.as_deref().map(|g| (g, m)))
                    .collect();
                for (group, admin) in &additions {
                    if let (true, Some(m)) = (*admin, by_group.get(group.as_str())) {
                        role_changes.push((m.eid.clone(), "admin".into()));
                    }
                }
                push("add memberships", Ok(()));
            }
            Err(e) => push("add memberships", Err(e)),
        }
    }

    // After the additions: the primary business unit must be one the person belongs to.
    let update = profile_update(user, current);
    if update != wire::UserUpdate::default() {
        push("update profile", client.update_user(eid, &update).await);
    }

    let removals: Vec<String> = user
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::RemoveMembership { group_eid, .. } => Some(group_eid.clone()),
            _ => None,
        })
        .collect();
    if !removals.is_empty() {
        push(
            "remove memberships",
            client.remove_from_groups(eid, &removals).await,
        );
    }

    for change in &user.changes {
        if let Change::SetGroupAdmin {
            group_eid, admin, ..
        } = change
            && let Some(m) = current.and_then(|c| c.groups.get(group_eid))
        {
            role_changes.push((
                m.eid.clone(),
                if *admin { "admin" } else { "member" }.into(),
            ));
        }
    }
    let network_role = user.changes.iter().find_map(|c| match c {
        Change::SetNetworkRole { to, .. } => Some(*to),
        _ => None,
    });
    if let Some(role) = network_role {
        // A new invitee's network membership is only known after the invite: look it up.
        let membership = match current.and_then(|c| c.network.clone()) {
            Some(m) => Ok(m.eid),
            None => client.get_user(eid).await.and_then(|u| {
                ObservedUser::from(u).network.map(|m| m.eid).ok_or_else(|| {
                    api_rejection("changeroles", -4, "the account has no network membership")
                })
            }),
        };
        match membership {
            Ok(m) => role_changes.push((m, role.as_str().to_string())),
            Err(e) => push("change roles", Err(e)),
        }
    }
    Work {
        outcomes,
        role_changes: role_changes
            .into_iter()
            .map(|(m, role)| (user.xid.clone(), m, role))
            .collect(),
    }
}

/// What one user's update did, and the role changes it leaves for the batched `changeroles` calls.
struct Work {
    outcomes: Vec<Outcome>,
    /// (XID, membership EID, role)
    role_changes: Vec<(String, String, String)>,
}

/// Role changes go out together, after the memberships they apply to exist.
const ROLE_CHANGES_PER_CALL: usize = 100;

async fn change_roles(
    client: &Client,
    recorder: &mut Recorder,
    changes: Vec<(String, String, String)>,
) {
    for batch in changes.chunks(ROLE_CHANGES_PER_CALL) {
        if recorder.stopped.is_some() {
            return;
        }
        let pairs: Vec<(String, String)> = batch
            .iter()
            .map(|(_, m, role)| (m.clone(), role.clone()))
            .collect();
        let outcome = client.change_roles(&pairs).await;
        let xids: BTreeSet<&str> = batch.iter().map(|(xid, _, _)| xid.as_str()).collect();
        for xid in xids {
            recorder.record(xid, "change roles", outcome.clone());
        }
    }
}

/// One profile update carrying the XID and every changed field. Name parts travel together, so
/// the parts not managed keep their current value.
fn profile_update(user: &UserPlan, current: Option<&ObservedUser>) -> wire::UserUpdate {
    let mut update = wire::UserUpdate::default();
    let mut name: BTreeMap<ProfileField, String> = BTreeMap::new();
    for change in &user.changes {
        match change {
            Change::SetXid { to, .. } => update.xid = Some(to.clone()),
            Change::SetPrimaryBusinessUnit { group_eid, .. } => {
                update.primary_business_unit = Some(group_eid.clone())
            }
            Change::SetProfile { field, to, .. } => match field {
                ProfileField::FirstName | ProfileField::Infix | ProfileField::LastName => {
                    name.insert(*field, to.clone());
                }
                ProfileField::JobTitle => update.job_title = Some(to.clone()),
                ProfileField::Phone => {
                    update.telephone_numbers = Some(if to.is_empty() {
                        Vec::new()
                    } else {
                        vec![to.clone()]
                    })
                }
                // A new invitee already has this address; only existing accounts change it.
                ProfileField::Email if user.action != UserAction::Invite => {
                    update.primary_email = Some(to.clone())
                }
                ProfileField::Email => {}
            },
            _ => {}
        }
    }
    if !name.is_empty() {
        let part = |field: ProfileField| {
            name.get(&field).cloned().unwrap_or_else(|| {
                current
                    .map(|c| c.get(field).to_string())
                    .unwrap_or_default()
            })
        };
        update.name = Some(wire::Name {
            first_name: part(ProfileField::FirstName),
            infix: part(ProfileField::Infix),
            family_name: part(ProfileField::LastName),
        });
    }
    update
}

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
