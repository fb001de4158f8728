//! Executes a plan against the API: existing accounts first (restores, profiles, memberships
//! and roles), then invites and their follow-ups, and offboarding last. One failed operation is
//! reported and the rest go on; a systemic failure (bad token, API unreachable) stops the run.
//! Every outcome is written to the journal the moment it is known, so a run that dies half-way
//! is still recorded; activation codes go to the credentials file as they arrive.

mod credentials;
mod ledger;
mod reconcile;
mod recover;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::StreamExt;

use crate::config::InviteChannel;
use crate::desired::ProfileField;

use crate::output::Progress;
use crate::plan::{Change, Plan, UserAction, UserPlan};
use crate::speakap::{ApiError, Client, MAX_INVITES_PER_CALL, Observed, ObservedUser, wire};
use crate::state::journal::Journal;
use crate::state::{Counts, OperationResult, Outcome};

pub use credentials::{Credential, CredentialsFile};
pub use ledger::{ledger_after, ledger_from_results};
pub use reconcile::reconcile;
pub use recover::record_pending;

/// The operations as records name them.
pub mod op {
    pub const INVITE: &str = "invite";
    pub const CREATE_SSO: &str = "create SSO account";
    pub const RESTORE: &str = "restore";
    pub const ADD_MEMBERSHIPS: &str = "add memberships";
    pub const UPDATE_PROFILE: &str = "update profile";
    pub const REMOVE_MEMBERSHIPS: &str = "remove memberships";
    pub const CHANGE_ROLES: &str = "change roles";
    pub const SUSPEND: &str = "suspend";
    pub const DELETE: &str = "delete";
    pub const ANONYMIZE: &str = "anonymize";
}

pub struct ApplyReport {
    pub results: Vec<OperationResult>,
    /// How many activation codes of printable invitations went to the credentials file.
    pub credentials: usize,
    /// Set when a systemic error stopped the run early.
    pub stopped: Option<String>,
}

impl ApplyReport {
    /// Some operation did not succeed, or the run stopped early.
    pub fn failed(&self) -> bool {
        self.stopped.is_some() || self.results.iter().any(|r| !r.ok)
    }
}

/// Where outcomes go as they are known: the journal, and activation codes to their file.
pub struct Sinks<'a> {
    pub journal: &'a mut Journal,
    pub credentials: Option<&'a mut CredentialsFile>,
}

struct Recorder<'a> {
    sinks: Sinks<'a>,
    results: Vec<OperationResult>,
    credentials: usize,
    stopped: Option<String>,
}

impl Recorder<'_> {
    fn stop(&mut self, why: String) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
        }
    }

    /// Noted before a request goes out: a run that dies before its outcome is known is
    /// recorded with this operation as unknown.
    fn started(&mut self, xid: &str, operation: &str) {
        if let Err(e) = self.sinks.journal.started(xid, operation) {
            self.stop(e.to_string());
        }
    }

    fn record(
        &mut self,
        xid: &str,
        operation: &str,
        outcome: Result<(), ApiError>,
        eid: Option<String>,
    ) -> bool {
        let (status, error) = match outcome {
            Ok(()) => (Outcome::Done, None),
            Err(e) => {
                if e.is_systemic() {
                    self.stop(e.to_string());
                }
                let status = if e.may_have_taken_effect() {
                    Outcome::Unknown
                } else {
                    Outcome::Failed
                };
                // Printed and recorded in the audit trail: an address the API quotes is masked.
                (status, Some(crate::redact::mask_emails_in(&e.to_string())))
            }
        };
        let result = OperationResult {
            xid: xid.to_string(),
            operation: operation.to_string(),
            ok: status == Outcome::Done,
            outcome: status,
            error,
            eid,
        };
        if let Err(e) = self.sinks.journal.result(&result) {
            self.stop(e.to_string());
        }
        self.results.push(result);
        status == Outcome::Done
    }

    fn credential(&mut self, credential: Credential) {
        match self.sinks.credentials.as_deref_mut() {
            Some(file) => match file.write(&credential) {
                Ok(()) => self.credentials += 1,
                Err(e) => self.stop(e.to_string()),
            },
            None => self.stop(
                "an invitation returned an activation code, and there is no --credentials file for it"
                    .into(),
            ),
        }
    }
}

/// The recorder, shared by the operations under way at the same time.
type Shared<'r, 'a> = &'r Mutex<Recorder<'a>>;

fn stopped(recorder: Shared) -> bool {
    recorder.lock().expect("not poisoned").stopped.is_some()
}

pub async fn apply(
    client: &Client,
    plan: &Plan,
    observed: &Observed,
    concurrency: usize,
    progress: &Progress,
    sinks: Sinks<'_>,
) -> ApplyReport {
    let recorder = Mutex::new(Recorder {
        sinks,
        results: Vec::new(),
        credentials: 0,
        stopped: None,
    });
    let accounts: HashMap<&str, &ObservedUser> =
        observed.users.iter().map(|u| (u.eid.as_str(), u)).collect();
    let run = Run {
        client,
        accounts: &accounts,
        concurrency,
        progress,
        recorder: &recorder,
    };
    run.existing_accounts(plan).await;
    let invited = run.invites(plan).await;
    let work: Vec<(&UserPlan, String)> = plan
        .users
        .iter()
        .filter(|u| u.action == UserAction::Invite)
        .filter_map(|u| invited.get(u.xid.as_str()).map(|eid| (u, eid.clone())))
        .collect();
    run.update_users(work).await;
    run.offboarding(plan).await;

    let recorder = recorder.into_inner().expect("not poisoned");
    let mut results = recorder.results;
    results.sort_by(|a, b| a.xid.cmp(&b.xid).then(a.operation.cmp(&b.operation)));
    ApplyReport {
        results,
        credentials: recorder.credentials,
        stopped: recorder.stopped,
    }
}

/// What each phase of a run shares.
struct Run<'r, 'a> {
    client: &'r Client,
    accounts: &'r HashMap<&'r str, &'r ObservedUser>,
    concurrency: usize,
    progress: &'r Progress,
    recorder: Shared<'r, 'a>,
}

impl Run<'_, '_> {
    fn started(&self, xid: &str, operation: &str) {
        self.recorder
            .lock()
            .expect("not poisoned")
            .started(xid, operation);
    }

    fn record(&self, xid: &str, operation: &str, outcome: Result<(), ApiError>) -> bool {
        self.recorder
            .lock()
            .expect("not poisoned")
            .record(xid, operation, outcome, None)
    }

    /// Restores, profiles, memberships and roles of accounts that exist, several at a time.
    /// Before the invites, so that an address an account gives up is free for a joiner; in
    /// rounds, so that an account taking an address another gives up waits for that one.
    async fn existing_accounts(&self, plan: &Plan) {
        let mut pending: Vec<(&UserPlan, String)> = plan
            .users
            .iter()
            .filter(|u| matches!(u.action, UserAction::Restore | UserAction::Update))
            .filter_map(|u| u.eid.clone().map(|eid| (u, eid)))
            .collect();
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
            self.update_users(ready).await;
        }
    }

    /// SSO accounts one by one, invitations in batches. Returns the new accounts by XID.
    async fn invites<'p>(&self, plan: &'p Plan) -> HashMap<&'p str, String> {
        let (sso, invitations): (Vec<&UserPlan>, Vec<&UserPlan>) = plan
            .users
            .iter()
            .filter(|u| u.action == UserAction::Invite)
            .partition(|u| {
                u.invitation
                    .as_ref()
                    .is_some_and(|i| i.channel == InviteChannel::Sso)
            });
        let mut invited = HashMap::new();
        self.create_sso_accounts(&sso, &mut invited).await;
        for batch in invitations.chunks(MAX_INVITES_PER_CALL) {
            if stopped(self.recorder) {
                break;
            }
            self.invite_batch(batch, &mut invited).await;
        }
        invited
    }

    async fn create_sso_accounts<'p>(
        &self,
        users: &[&'p UserPlan],
        invited: &mut HashMap<&'p str, String>,
    ) {
        for user in users {
            if stopped(self.recorder) {
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
            self.started(&user.xid, op::CREATE_SSO);
            let outcome = self.client.create_sso_user(&account).await;
            let eid = outcome.as_ref().ok().map(|created| created.eid.clone());
            let mut recorder = self.recorder.lock().expect("not poisoned");
            if recorder.record(&user.xid, op::CREATE_SSO, outcome.map(drop), eid.clone()) {
                invited.insert(user.xid.as_str(), eid.expect("created"));
            }
        }
    }

    /// One invite call; each person's answer is found by their address.
    async fn invite_batch<'p>(
        &self,
        batch: &[&'p UserPlan],
        invited: &mut HashMap<&'p str, String>,
    ) {
        for user in batch {
            self.started(&user.xid, op::INVITE);
        }
        let answers = self
            .client
            .invite(batch.iter().map(|u| invitee(u)).collect())
            .await;
        let mut recorder = self.recorder.lock().expect("not poisoned");
        let by_email: HashMap<String, &wire::InviteResult> = match &answers {
            Ok(results) => results
                .iter()
                .map(|r| (r.email.to_lowercase(), r))
                .collect(),
            Err(_) => HashMap::new(),
        };
        for user in batch {
            let email = planned(user, ProfileField::Email);
            let answer = by_email.get(&email.to_lowercase()).copied();
            let outcome = match &answers {
                Err(e) => Err(e.clone()),
                Ok(_) => self.invite_outcome(answer),
            };
            let eid = outcome
                .is_ok()
                .then(|| answer.and_then(|r| r.eid.clone()))
                .flatten();
            if recorder.record(&user.xid, op::INVITE, outcome, eid.clone()) {
                invited.insert(user.xid.as_str(), eid.expect("answered"));
                if let Some(code) = answer.and_then(|r| r.activation_code.clone()) {
                    recorder.credential(Credential {
                        xid: user.xid.clone(),
                        name: user.name.clone(),
                        email: email.to_string(),
                        activation_code: code,
                    });
                }
            }
        }
    }

    /// Whether the invite call's answer for one address made a new account.
    fn invite_outcome(&self, answer: Option<&wire::InviteResult>) -> Result<(), ApiError> {
        match answer {
            Some(r)
                if r.eid
                    .as_deref()
                    .is_some_and(|e| self.accounts.contains_key(e)) =>
            {
                // Never merge two people: the plan invites only addresses no account
                // had, so the address leads to an account that was there before
                // (through an address the plan could not see, say).
                Err(api_rejection(
                    "invite",
                    -9,
                    "the address belongs to an existing account; plan again",
                ))
            }
            Some(r) if r.status != "invalid" && r.eid.is_some() => Ok(()),
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
        }
    }

    /// Last. An operation that failed for one person does not hold back the leavers (they would
    /// keep their access for as long as it keeps failing); an API failing as a whole
    /// (authentication, unreachable) has stopped the run already.
    async fn offboarding(&self, plan: &Plan) {
        for user in plan.users.iter().filter(|u| u.action.is_offboarding()) {
            if stopped(self.recorder) {
                break;
            }
            let operation = match user.action {
                UserAction::Suspend => op::SUSPEND,
                UserAction::Delete => op::DELETE,
                _ => op::ANONYMIZE,
            };
            let account = user
                .eid
                .as_deref()
                .and_then(|eid| self.accounts.get(eid))
                .copied();
            self.started(&user.xid, operation);
            let client = self.client;
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
            self.record(&user.xid, operation, outcome);
            self.progress.tick();
        }
    }

    /// Several people at a time; each one's outcomes are recorded as they come. Role changes
    /// go out together afterwards, once the memberships they apply to exist.
    async fn update_users(&self, work: Vec<(&UserPlan, String)>) {
        if stopped(self.recorder) {
            return;
        }
        let role_changes: Vec<Vec<RoleChange>> = futures_util::stream::iter(work)
            .map(|(user, eid)| async move {
                let current = self.accounts.get(eid.as_str()).copied();
                let changes = self.update_user(user, &eid, current).await;
                self.progress.tick();
                changes
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        self.change_roles(role_changes.into_iter().flatten().collect())
            .await;
    }

    /// For one user: restore, group additions, profile, removals; returns the role changes.
    async fn update_user(
        &self,
        user: &UserPlan,
        eid: &str,
        current: Option<&ObservedUser>,
    ) -> Vec<RoleChange> {
        let xid = user.xid.as_str();
        if stopped(self.recorder) {
            return Vec::new();
        }
        // A returning leaver's account is reactivated first; the rest applies to it as to anyone.
        if user.action == UserAction::Restore {
            self.started(xid, op::RESTORE);
            if !self.record(xid, op::RESTORE, self.client.restore(eid).await) {
                return Vec::new();
            }
        }
        let mut role_changes = self.add_memberships(user, eid).await;
        // After the additions: the primary business unit must be one the person belongs to.
        self.update_profile(user, eid, current).await;
        self.remove_memberships(user, eid).await;
        role_changes.extend(group_admin_changes(user, current));
        role_changes.extend(self.network_role_change(user, eid, current).await);
        role_changes
            .into_iter()
            .map(|(membership, role)| RoleChange {
                xid: user.xid.clone(),
                membership,
                role,
            })
            .collect()
    }

    /// Adds the user to the groups the plan adds; returns (membership, role) for those where
    /// they are to be an admin, which only the new memberships' EIDs make possible.
    async fn add_memberships(&self, user: &UserPlan, eid: &str) -> Vec<(String, String)> {
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
        if additions.is_empty() {
            return Vec::new();
        }
        let mut role_changes = Vec::new();
        let groups: Vec<String> = additions.iter().map(|(g, _)| (*g).clone()).collect();
        self.started(&user.xid, op::ADD_MEMBERSHIPS);
        let added = self.client.add_to_groups(eid, &groups).await;
        if let Ok(memberships) = &added {
            let by_group: HashMap<&str, &wire::Membership> = memberships
                .iter()
                .filter_map(|m| m.group.as_deref().map(|g| (g, m)))
                .collect();
            for (group, admin) in &additions {
                if let (true, Some(m)) = (*admin, by_group.get(group.as_str())) {
                    role_changes.push((m.eid.clone(), "admin".into()));
                }
            }
        }
        self.record(&user.xid, op::ADD_MEMBERSHIPS, added.map(drop));
        role_changes
    }

    async fn update_profile(&self, user: &UserPlan, eid: &str, current: Option<&ObservedUser>) {
        let update = profile_update(user, current);
        if update != wire::UserUpdate::default() {
            self.started(&user.xid, op::UPDATE_PROFILE);
            self.record(
                &user.xid,
                op::UPDATE_PROFILE,
                self.client.update_user(eid, &update).await,
            );
        }
    }

    async fn remove_memberships(&self, user: &UserPlan, eid: &str) {
        let removals: Vec<String> = user
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::RemoveMembership { group_eid, .. } => Some(group_eid.clone()),
                _ => None,
            })
            .collect();
        if !removals.is_empty() {
            self.started(&user.xid, op::REMOVE_MEMBERSHIPS);
            self.record(
                &user.xid,
                op::REMOVE_MEMBERSHIPS,
                self.client.remove_from_groups(eid, &removals).await,
            );
        }
    }

    /// The (membership, role) for a network role the plan sets. A new invitee's network
    /// membership is only known after the invite: it is looked up (a failure is recorded).
    async fn network_role_change(
        &self,
        user: &UserPlan,
        eid: &str,
        current: Option<&ObservedUser>,
    ) -> Option<(String, String)> {
        let role = user.changes.iter().find_map(|c| match c {
            Change::SetNetworkRole { to, .. } => Some(*to),
            _ => None,
        })?;
        let membership = match current.and_then(|c| c.network.clone()) {
            Some(m) => Ok(m.eid),
            None => self.client.get_user(eid).await.and_then(|u| {
                ObservedUser::from(u).network.map(|m| m.eid).ok_or_else(|| {
                    api_rejection("changeroles", -4, "the account has no network membership")
                })
            }),
        };
        match membership {
            Ok(m) => Some((m, role.as_str().to_string())),
            Err(e) => {
                self.record(&user.xid, op::CHANGE_ROLES, Err(e));
                None
            }
        }
    }

    async fn change_roles(&self, changes: Vec<RoleChange>) {
        for batch in changes.chunks(ROLE_CHANGES_PER_CALL) {
            if stopped(self.recorder) {
                return;
            }
            let xids: BTreeSet<&str> = batch.iter().map(|c| c.xid.as_str()).collect();
            for xid in &xids {
                self.started(xid, op::CHANGE_ROLES);
            }
            let pairs: Vec<(String, String)> = batch
                .iter()
                .map(|c| (c.membership.clone(), c.role.clone()))
                .collect();
            let outcome = self.client.change_roles(&pairs).await;
            for xid in xids {
                self.record(xid, op::CHANGE_ROLES, outcome.clone());
            }
        }
    }
}

/// The (membership, role) for the group admin rights the plan changes on existing memberships.
fn group_admin_changes(user: &UserPlan, current: Option<&ObservedUser>) -> Vec<(String, String)> {
    let mut role_changes = Vec::new();
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
    role_changes
}

/// A role for one membership, set by the batched `changeroles` calls.
struct RoleChange {
    xid: String,
    membership: String,
    role: String,
}

/// Role changes go out together, after the memberships they apply to exist.
const ROLE_CHANGES_PER_CALL: usize = 100;

fn invitee(user: &UserPlan) -> wire::Invitee {
    let channel = user
        .invitation
        .as_ref()
        .map_or(InviteChannel::Email, |i| i.channel);
    wire::Invitee {
        name: user.name.clone(),
        email: planned(user, ProfileField::Email).to_string(),
        channel: match channel {
            InviteChannel::Sms => Some("sms".into()),
            InviteChannel::Printable => Some("printable".into()),
            _ => None,
        },
        telephone_number: (channel == InviteChannel::Sms)
            .then(|| planned(user, ProfileField::Phone).to_string()),
    }
}

/// The counts of a run's outcomes.
pub fn counts(plan: &Plan, results: &[OperationResult], retries: u64) -> Counts {
    let not_ok: BTreeSet<&str> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.xid.as_str())
        .collect();
    let with_results: BTreeSet<&str> = results.iter().map(|r| r.xid.as_str()).collect();
    let done = |action: UserAction| {
        plan.users
            .iter()
            .filter(|u| u.action == action)
            .filter(|u| with_results.contains(u.xid.as_str()) && !not_ok.contains(u.xid.as_str()))
            .count()
    };
    let with = |outcome: Outcome| results.iter().filter(|r| r.outcome == outcome).count();
    Counts {
        invited: done(UserAction::Invite),
        restored: done(UserAction::Restore),
        updated: done(UserAction::Update),
        suspended: done(UserAction::Suspend),
        deleted: done(UserAction::Delete),
        anonymized: done(UserAction::Anonymize),
        succeeded: results.iter().filter(|r| r.ok).count(),
        failed: with(Outcome::Failed),
        unknown: with(Outcome::Unknown),
        confirmed: with(Outcome::Confirmed),
        retries,
    }
}

/// One line: what a run did.
pub fn summary(c: &Counts) -> String {
    let mut line = format!(
        "{} invited, {} restored, {} updated, {} suspended, {} deleted, {} anonymized, {} failed",
        c.invited, c.restored, c.updated, c.suspended, c.deleted, c.anonymized, c.failed
    );
    if c.unknown > 0 {
        line.push_str(&format!(", {} unknown", c.unknown));
    }
    if c.confirmed > 0 {
        line.push_str(&format!(", {} confirmed after an error", c.confirmed));
    }
    line.push_str(&format!(", {} retried", c.retries));
    line
}

/// The value a plan sets for a profile field ("" when it sets none).
pub(crate) fn planned(user: &UserPlan, field: ProfileField) -> &str {
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
