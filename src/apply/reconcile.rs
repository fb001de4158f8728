//! After a run, every operation reported failed or unknown is checked against the network as
//! it then is: one whose effect is visible was done after all ("confirmed"), whatever the
//! error said. What is still not visible stays failed or unknown, and the next plan, made from
//! the network, does what is left.

use std::collections::HashMap;

use crate::plan::{Change, Plan, UserAction, UserPlan};
use crate::resolve::ProfileField;
use crate::speakap::{Observed, ObservedUser};
use crate::state::{OperationResult, Outcome};

use super::op;

pub fn reconcile(
    results: &mut [OperationResult],
    plan: &Plan,
    before: &Observed,
    after: &Observed,
) {
    let plans: HashMap<&str, &UserPlan> = plan.users.iter().map(|u| (u.xid.as_str(), u)).collect();
    let by_eid: HashMap<&str, &ObservedUser> =
        after.users.iter().map(|u| (u.eid.as_str(), u)).collect();
    let existed: std::collections::HashSet<&str> =
        before.users.iter().map(|u| u.eid.as_str()).collect();
    let by_email: HashMap<String, &ObservedUser> = after
        .users
        .iter()
        .filter(|u| !existed.contains(u.eid.as_str()))
        .map(|u| (u.get(ProfileField::Email).to_lowercase(), u))
        .collect();
    for result in results.iter_mut().filter(|r| !r.ok) {
        let Some(user) = plans.get(result.xid.as_str()) else {
            continue;
        };
        let account = match user.action {
            // A new account: the one made for the planned address.
            UserAction::Invite => result
                .eid
                .as_deref()
                .and_then(|eid| by_eid.get(eid))
                .or_else(|| by_email.get(&super::planned(user, ProfileField::Email).to_lowercase()))
                .copied(),
            _ => user.eid.as_deref().and_then(|eid| by_eid.get(eid)).copied(),
        };
        if visible(&result.operation, user, account) {
            if matches!(result.operation.as_str(), op::INVITE | op::CREATE_SSO) {
                result.eid = account.map(|a| a.eid.clone());
            }
            result.ok = true;
            result.outcome = Outcome::Confirmed;
            result.error = result
                .error
                .take()
                .map(|e| format!("done (confirmed after an error: {e})"));
        }
    }
}

/// Whether `account` (as the network now shows it) carries the effect of `operation`.
fn visible(operation: &str, user: &UserPlan, account: Option<&ObservedUser>) -> bool {
    let Some(account) = account else {
        return matches!(operation, op::DELETE | op::ANONYMIZE) && user.eid.is_some();
    };
    let changes = || user.changes.iter();
    match operation {
        op::INVITE | op::CREATE_SSO => true,
        op::RESTORE => !account.suspended,
        op::SUSPEND => account.suspended,
        op::DELETE | op::ANONYMIZE => false,
        op::ADD_MEMBERSHIPS => changes().all(|c| match c {
            Change::AddMembership { group_eid, .. } => account.groups.contains_key(group_eid),
            _ => true,
        }),
        op::REMOVE_MEMBERSHIPS => changes().all(|c| match c {
            Change::RemoveMembership { group_eid, .. } => !account.groups.contains_key(group_eid),
            _ => true,
        }),
        op::UPDATE_PROFILE => changes().all(|c| match c {
            Change::SetXid { to, .. } => account.xid.as_deref() == Some(to.as_str()),
            Change::SetProfile { field, to, .. } => {
                (*field == ProfileField::Email && user.action == UserAction::Invite)
                    || account.get(*field) == to
            }
            Change::SetPrimaryBusinessUnit { group_eid, .. } => {
                account.primary_business_unit.as_deref() == Some(group_eid.as_str())
            }
            _ => true,
        }),
        op::CHANGE_ROLES => changes().all(|c| match c {
            Change::AddMembership {
                group_eid,
                admin: true,
                ..
            } => account
                .groups
                .get(group_eid)
                .is_some_and(|m| m.role == "admin"),
            Change::SetGroupAdmin {
                group_eid, admin, ..
            } => account
                .groups
                .get(group_eid)
                .is_some_and(|m| (m.role == "admin") == *admin),
            Change::SetNetworkRole { to, .. } => account.role() == to.as_str(),
            _ => true,
        }),
        _ => false,
    }
}
