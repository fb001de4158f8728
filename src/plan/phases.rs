//! The phases of [`plan`](super::plan), in the order the README's "How the sync decides"
//! tells them: the observed network indexed; accounts known by XID (updates, restores of
//! returning leavers); joiners (invites, links of accounts without an XID, XID changes,
//! scheduled start dates, manual deletions); leavers and the accounts left alone; then the
//! safety verdict. Each phase is a function over one context ([`Phases`]) and adds to the
//! [`Draft`] the next one reads.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

// foldhash: these maps hold a million addresses and XIDs, hashed once per person each.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use jiff::civil::Date;

use super::*;
use crate::config::Policy;

/// The observed network indexed for the phases.
pub(super) struct Index<'a> {
    by_xid: HashMap<&'a str, &'a ObservedUser>,
    pub(super) by_email: HashMap<Cow<'a, str>, Vec<&'a ObservedUser>>,
    /// Addresses accounts have besides their primary one (few accounts have any).
    pub(super) by_other_email: HashMap<Cow<'a, str>, &'a ObservedUser>,
    /// Each desired person's account by XID, in `resolution.desired` order, looked up once: a
    /// million lookups are felt.
    accounts: Vec<Option<&'a ObservedUser>>,
    /// Excluded XIDs, with why.
    excluded_ids: BTreeMap<&'a str, String>,
}

impl<'a> Index<'a> {
    pub(super) fn new(input: &PlanInput<'a>) -> Index<'a> {
        let PlanInput {
            config,
            resolution,
            observed,
            ..
        } = *input;
        let mut by_xid: HashMap<&str, &ObservedUser> = HashMap::with_capacity(observed.users.len());
        let mut by_email: HashMap<Cow<str>, Vec<&ObservedUser>> =
            HashMap::with_capacity(observed.users.len());
        for u in &observed.users {
            if let Some(xid) = u.xid.as_deref() {
                by_xid.insert(xid, u);
            }
            let email = u.get(ProfileField::Email);
            if !email.is_empty() {
                by_email.entry(case_folded(email)).or_default().push(u);
            }
        }
        // Addresses accounts have besides their primary one (few accounts have any).
        let by_other_email: HashMap<Cow<str>, &ObservedUser> = observed
            .users
            .iter()
            .flat_map(|u| u.other_emails.iter().map(move |e| (case_folded(e), u)))
            .collect();
        let accounts = resolution
            .desired
            .values()
            .map(|d| by_xid.get(d.xid()).copied())
            .collect();
        let excluded_ids: BTreeMap<&str, String> = config
            .exclusions
            .iter()
            .filter_map(|e| {
                e.xid
                    .as_deref()
                    .map(|x| (x, format!("excluded: {} ({})", e.reason, e.origin)))
            })
            .chain(
                resolution
                    .excluded
                    .values()
                    .map(|e| (e.xid.as_str(), format!("excluded: {} ({})", e.reason, e.at))),
            )
            .collect();

        Index {
            by_xid,
            by_email,
            by_other_email,
            accounts,
            excluded_ids,
        }
    }

    /// The desired people who have an account, with it.
    pub(super) fn known(
        &self,
        resolution: &'a Resolution,
    ) -> impl Iterator<Item = (&'a DesiredUser, &'a ObservedUser)> + '_ {
        resolution
            .desired
            .values()
            .zip(&self.accounts)
            .filter_map(|(d, a)| a.map(|a| (d, a)))
    }
}

/// What the phases have decided so far.
#[derive(Default)]
pub(super) struct Draft<'a> {
    warnings: Vec<String>,
    users: Vec<UserPlan>,
    scheduled: Vec<Scheduled>,
    leaving: Vec<Leaving>,
    deleted_outside: Vec<DeletedOutside>,
    skipped: Vec<SkippedRecord>,
    unmanaged: Vec<Unmanaged>,
    /// Accounts that must not be offboarded although their XID is not desired.
    hold: BTreeSet<String>,
    /// Rehired leavers whose start date comes after their grace period: offboarded meanwhile.
    rehired_after_grace: HashSet<&'a str>,
    /// Accounts this plan starts offboarding.
    offboards: usize,
}

impl<'a> Draft<'a> {
    /// Before the phases: resolve's skipped records and held XIDs, and the warnings so far.
    pub(super) fn new(input: &PlanInput<'a>, warnings: Vec<String>) -> Draft<'a> {
        Draft {
            warnings,
            skipped: input.resolution.skipped.clone(),
            hold: input.resolution.held.clone(),
            ..Draft::default()
        }
    }
}

/// What every phase reads.
pub(super) struct Phases<'a> {
    pub(super) input: &'a PlanInput<'a>,
    pub(super) index: &'a Index<'a>,
    pub(super) network: &'a Network<'a>,
    pub(super) policy: &'a Policy,
    pub(super) today: Date,
    pub(super) grace: jiff::Span,
}

impl<'a> Phases<'a> {
    /// An exclusion that names no one protects no one: most likely a typo in the XID.
    pub(super) fn warn_of_unmatched_exclusions(&self, draft: &mut Draft<'a>) {
        let warnings = &mut draft.warnings;
        // An exclusion that names no one protects no one: most likely a typo in the XID.
        for e in &self.input.config.exclusions {
            if let Some(xid) = e.xid.as_deref()
                && !self.input.resolution.excluded.contains_key(xid)
                && !self.index.by_xid.contains_key(xid)
            {
                warnings.push(format!(
                    "exclusion for XID {xid} ({}) matches no HR record and no account; check the XID",
                    e.origin
                ));
            }
        }
    }

    fn user_plan(
        &self,
        desired: &DesiredUser,
        account: &ObservedUser,
        action: UserAction,
        changes: Vec<Change>,
        reason: Option<String>,
    ) -> UserPlan {
        UserPlan {
            xid: desired.xid().to_string(),
            eid: Some(account.eid.clone()),
            name: desired.display_name(),
            line: Some(desired.line()),
            action,
            changes,
            reason,
            invitation: None,
            after: self
                .network
                .address_moves
                .waits_for
                .get(&account.eid)
                .cloned(),
            contracts: desired.contract_lines(),
        }
    }

    /// Accounts known by XID first: their email changes may free addresses for the others.
    pub(super) fn known_accounts(&self, draft: &mut Draft<'a>) {
        let Phases {
            input,
            network,
            policy,
            today,
            grace,
            ..
        } = *self;
        let ledger = input.ledger;
        let Draft {
            warnings,
            users,
            scheduled,
            unmanaged,
            rehired_after_grace,
            ..
        } = draft;
        let known = || self.index.known(input.resolution);
        let user_plan = |desired, account, action, changes, reason| {
            self.user_plan(desired, account, action, changes, reason)
        };
        // Accounts known by XID first: their email changes may free addresses for the others.
        for (desired, existing) in known() {
            if existing.suspended {
                if let Some(since) = ledger.suspended_since(desired.xid()) {
                    // Rehired for a later day: the account comes back on that day, as a joiner's
                    // invitation would. A suspended account can be restored only within the grace
                    // period, so for a start date after it the leaver is offboarded as usual and
                    // invited anew on that day.
                    if let Some(start) = desired
                        .start_date()
                        .filter(|start| policy.invite.on_start_date && *start > today)
                    {
                        let grace_ends = since.saturating_add(grace);
                        if start > grace_ends {
                            rehired_after_grace.insert(desired.xid());
                        }
                        scheduled.push(Scheduled {
                            xid: desired.xid().to_string(),
                            name: desired.display_name(),
                            line: desired.line(),
                            invite_on: start,
                            restore: start <= grace_ends,
                        });
                        continue;
                    }
                    let changes = diff(desired, existing, network, None, warnings);
                    let reason = format!("back in the HR record; suspended since {since}");
                    users.push(user_plan(
                        desired,
                        existing,
                        UserAction::Restore,
                        changes,
                        Some(reason),
                    ));
                } else {
                    unmanaged.push(Unmanaged {
                        xid: desired.xid().to_string(),
                        eid: existing.eid.clone(),
                        reason:
                            "suspended outside the sync: reactivate it in Speakap if that was a mistake"
                                .into(),
                    });
                }
                continue;
            }
            let changes = diff(desired, existing, network, None, warnings);
            if !changes.is_empty() {
                users.push(user_plan(
                    desired,
                    existing,
                    UserAction::Update,
                    changes,
                    None,
                ));
            }
        }
    }

    /// The desired people without an account by XID: linked by address, refused as an XID
    /// change, scheduled, left deleted, or invited.
    pub(super) fn joiners(&self, draft: &mut Draft<'a>) {
        let owners = AddressOwners::after_updates(self.index, self.input.observed, &draft.users);
        let unknown = self
            .input
            .resolution
            .desired
            .values()
            .zip(&self.index.accounts)
            .filter_map(|(d, a)| a.is_none().then_some(d));
        for desired in unknown {
            self.joiner(desired, &owners, draft);
        }
    }

    /// One joiner, in order: an address another account has on the side, an account that has
    /// the address, a later start date, a deletion by hand, an invitation that cannot be sent.
    fn joiner(&self, desired: &DesiredUser, owners: &AddressOwners, draft: &mut Draft<'a>) {
        let email = desired
            .get(ProfileField::Email)
            .unwrap_or_default()
            .to_lowercase();
        let owners = owners.of(&email);
        if owners.is_empty()
            && let Some(reason) = self.address_on_the_side(&email)
        {
            skip(draft, desired, reason);
            return;
        }
        match owners.as_slice() {
            [account] if account.xid.is_none() => {
                // An account made by hand (or an invite whose XID was not set yet): link it.
                let changes = diff(
                    desired,
                    account,
                    self.network,
                    Some(None),
                    &mut draft.warnings,
                );
                let plan = self.user_plan(desired, account, UserAction::Update, changes, None);
                draft.users.push(plan);
                return;
            }
            [account, ..] => return self.address_of_another_xid(desired, account, draft),
            [] => {}
        }
        let policy = self.policy;
        if let Some(start) = desired
            .start_date()
            .filter(|start| policy.invite.on_start_date && *start > self.today)
        {
            draft.scheduled.push(Scheduled {
                xid: desired.xid().to_string(),
                name: desired.display_name(),
                line: desired.line(),
                invite_on: start,
                restore: false,
            });
            return;
        }
        let reason = match self.deleted_by_hand(desired) {
            DeletedByHand::No => None,
            DeletedByHand::Recreate(why) => Some(why.to_string()),
            DeletedByHand::Respected => {
                draft.deleted_outside.push(DeletedOutside {
                    xid: desired.xid().to_string(),
                    name: desired.display_name(),
                    line: desired.line(),
                });
                return;
            }
        };
        self.invite(desired, reason, draft);
    }

    /// Speakap would hand the account that has `email` besides its primary address to the
    /// invite: someone else's account, taken over by an address it has on the side.
    fn address_on_the_side(&self, email: &str) -> Option<String> {
        let account = self.index.by_other_email.get(email)?;
        let holder = match &account.xid {
            Some(xid) => format!("the account of XID {xid}"),
            None => format!("account {} (no XID)", account.eid),
        };
        Some(format!(
            "email address is an address of {holder}, besides its primary one; the sync \
             never takes over an account by such an address: remove the address from \
             that account in Speakap, or correct the email in HR"
        ))
    }

    /// An invitation by the configured channel, or a skip when it lacks what that needs.
    fn invite(&self, desired: &DesiredUser, reason: Option<String>, draft: &mut Draft<'a>) {
        let channel = self.policy.invite.channel;
        let missing = match channel {
            InviteChannel::Sms
                if desired
                    .get(ProfileField::Phone)
                    .unwrap_or_default()
                    .is_empty() =>
            {
                Some("cannot invite by SMS: no phone number")
            }
            InviteChannel::Sso if desired.upn().is_none() => {
                Some("cannot create an SSO account: no UPN")
            }
            _ => None,
        };
        if let Some(problem) = missing {
            skip(draft, desired, problem.to_string());
            return;
        }
        let mut plan = invite(desired, self.network.groups, channel);
        let without_business_unit = self.policy.require_business_unit == Some(false)
            && !desired.memberships().has_business_unit();
        let note = without_business_unit
            .then(|| "without a business unit (policy.require_business_unit is false)".to_string());
        plan.reason = match (reason, note) {
            (Some(reason), Some(note)) => Some(format!("{reason}; {note}")),
            (reason, note) => reason.or(note),
        };
        draft.users.push(plan);
    }

    /// A joiner whose address belongs to the account of another XID: someone else in the HR
    /// record, or an XID change (relinked with `xid_change: relink`, else held and skipped).
    fn address_of_another_xid(
        &self,
        desired: &DesiredUser,
        account: &ObservedUser,
        draft: &mut Draft<'a>,
    ) {
        let resolution = self.input.resolution;
        let relink = self.policy.xid_change == XidChange::Relink;
        let other = account.xid.clone().unwrap_or_default();
        let other_in_record = resolution.desired.contains_key(&other)
            || resolution.held.contains(&other)
            || resolution.ended.contains_key(&other)
            || self.index.excluded_ids.contains_key(other.as_str());
        let reason = if other_in_record {
            format!(
                "email address already belongs to the account of XID {other}, who is also in the HR record"
            )
        } else if relink
            && (!account.suspended || self.input.ledger.suspended_since(&other).is_some())
        {
            draft.hold.insert(other.clone());
            let changes = diff(
                desired,
                account,
                self.network,
                Some(Some(other.clone())),
                &mut draft.warnings,
            );
            // A leaver the sync suspended comes back under the new XID: restored.
            let (action, reason) = if account.suspended {
                (
                    UserAction::Restore,
                    format!(
                        "XID change: the suspended account of XID {other} (no longer in the HR record) has this email address"
                    ),
                )
            } else {
                (
                    UserAction::Update,
                    format!(
                        "XID change: the account of XID {other} (no longer in the HR record) has this email address"
                    ),
                )
            };
            let plan = self.user_plan(desired, account, action, changes, Some(reason));
            draft.users.push(plan);
            return;
        } else if account.suspended && relink {
            draft.hold.insert(other.clone());
            format!(
                "XID change: the account with this email address has XID {other} and was suspended outside the sync; reactivate it in Speakap to have it relinked"
            )
        } else {
            draft.hold.insert(other.clone());
            format!(
                "looks like an XID change: the account with this email address has XID {other}, which is no longer in the HR record; \
                 correct the XID in HR or in Speakap, or set policy.xid_change: relink (neither account is invited or removed meanwhile)"
            )
        };
        skip(draft, desired, reason);
    }

    /// Whether a joiner's account was deleted outside the sync (the ledger knows them), and if
    /// so, whether that deletion stands.
    fn deleted_by_hand(&self, desired: &DesiredUser) -> DeletedByHand {
        let Some(entry) = self.input.ledger.users.get(desired.xid()) else {
            return DeletedByHand::No;
        };
        let unchanged = entry.digest.as_deref() == Some(desired.digest().as_str());
        if desired.restore() {
            DeletedByHand::Recreate(
                "recreated: deleted outside the sync; an override says restore: true",
            )
        } else if !unchanged {
            DeletedByHand::Recreate(
                "recreated: deleted outside the sync, and the HR record or the rules' outcome changed since",
            )
        } else if self.policy.manual_deletions == ManualDeletions::Respect {
            DeletedByHand::Respected
        } else {
            DeletedByHand::Recreate(
                "recreated: deleted outside the sync (policy.manual_deletions: recreate)",
            )
        }
    }

    /// Accounts whose XID is no longer desired: suspended, deleted after the grace period, or
    /// left alone (excluded, held, named by unread HR input, without an XID).
    pub(super) fn leavers(&self, draft: &mut Draft<'a>) {
        let resolution = self.input.resolution;
        // Accounts without an XID that no one is linked to are listed too: left alone, but the
        // reviewer sees the whole network.
        let linked_eids: HashSet<String> =
            draft.users.iter().filter_map(|u| u.eid.clone()).collect();
        for account in &self.input.observed.users {
            let Some(xid) = &account.xid else {
                if !account.suspended && !linked_eids.contains(&account.eid) {
                    draft.unmanaged.push(Unmanaged {
                        xid: String::new(),
                        eid: account.eid.clone(),
                        reason: format!(
                            "no XID, and no one in the HR record has its address {}",
                            mask_email(account.get(ProfileField::Email))
                        ),
                    });
                }
                continue;
            };
            if let Some(reason) = self.index.excluded_ids.get(xid.as_str()) {
                draft.unmanaged.push(Unmanaged {
                    xid: xid.clone(),
                    eid: account.eid.clone(),
                    reason: reason.clone(),
                });
                continue;
            }
            let desired = resolution.desired.contains_key(xid)
                && !draft.rehired_after_grace.contains(xid.as_str());
            if desired || draft.hold.contains(xid) {
                continue;
            }
            if let Some(skipped) = self.named_by_unread_input(xid, account) {
                draft.skipped.push(skipped);
            } else if account.suspended {
                self.suspended_leaver(xid, account, draft);
            } else {
                self.offboard(xid, account, draft);
            }
        }
    }

    /// HR input that was not read as a person names this account: its row may be the one that
    /// could not be read, so the account is left alone, and the plan says why.
    fn named_by_unread_input(&self, xid: &str, account: &ObservedUser) -> Option<SkippedRecord> {
        let unread_at = |text: &str| {
            let word = case_folded(text);
            self.input
                .resolution
                .unread_words
                .get(word.as_ref())
                .copied()
        };
        let at = unread_at(xid).or_else(|| unread_at(account.get(ProfileField::Email)))?;
        let why = if at.row_line == at.line {
            "whose row could not be read".to_string()
        } else {
            format!(
                "which is inside a value that starts on line {} and runs over several lines \
                 (a quote not closed where it should be?)",
                at.row_line
            )
        };
        Some(SkippedRecord {
            line: at.line,
            xid: Some(xid.to_string()),
            reasons: vec![format!(
                "not offboarded: this account's XID or email address is on this line, {why}; \
                 the account is left alone until the line is fixed"
            )],
        })
    }

    /// A suspended leaver: deleted or anonymized once the grace period is over, else listed as
    /// leaving on the day it ends.
    fn suspended_leaver(&self, xid: &str, account: &ObservedUser, draft: &mut Draft<'a>) {
        let (today, then) = (self.today, self.policy.offboarding.then);
        let leaving = |since: Date, on: Date| Leaving {
            xid: xid.to_string(),
            eid: account.eid.clone(),
            name: account.display_name(),
            suspended_since: since,
            then,
            on,
        };
        match self.input.ledger.suspended_since(xid) {
            Some(since) => {
                let due = since.saturating_add(self.grace);
                if today >= due {
                    let reason =
                        format!("suspended since {since}; the grace period ended on {due}");
                    let action = self.final_action();
                    draft.users.push(offboarding(xid, account, action, reason));
                } else {
                    draft.leaving.push(leaving(since, due));
                }
            }
            // Suspended by hand, or by a run that was stopped before it could record it: the
            // person has left HR either way, so the grace period starts now.
            None => draft
                .leaving
                .push(leaving(today, today.saturating_add(self.grace))),
        }
    }

    /// An active account whose person has left: suspended for the grace period, or at once
    /// deleted or anonymized when there is none.
    fn offboard(&self, xid: &str, account: &ObservedUser, draft: &mut Draft<'a>) {
        let why = match self.input.resolution.ended.get(xid) {
            Some(end) => format!("end date {end} has passed"),
            None => "not in the HR record".to_string(),
        };
        draft.offboards += 1;
        let plan = if self.policy.offboarding.grace_days == 0 {
            offboarding(xid, account, self.final_action(), why)
        } else {
            let until = self.today.saturating_add(self.grace);
            let reason = format!("{why}; recoverable until {until}");
            offboarding(xid, account, UserAction::Suspend, reason)
        };
        draft.users.push(plan);
    }

    /// What happens to an account once the grace period is over.
    fn final_action(&self) -> UserAction {
        match self.policy.offboarding.then {
            AfterGrace::Delete => UserAction::Delete,
            AfterGrace::Anonymize => UserAction::Anonymize,
        }
    }

    /// Sorted, counted and weighed against the safety thresholds.
    pub(super) fn finish(&self, draft: Draft<'a>) -> Plan {
        let Draft {
            warnings,
            mut users,
            mut scheduled,
            mut leaving,
            mut deleted_outside,
            mut skipped,
            mut unmanaged,
            offboards,
            ..
        } = draft;
        users.sort_by(|a, b| a.xid.cmp(&b.xid).then(a.action.cmp(&b.action)));
        scheduled.sort_by(|a, b| a.invite_on.cmp(&b.invite_on).then(a.xid.cmp(&b.xid)));
        leaving.sort_by(|a, b| a.on.cmp(&b.on).then(a.xid.cmp(&b.xid)));
        deleted_outside.sort_by(|a, b| a.xid.cmp(&b.xid));
        skipped.sort_by(|a, b| a.line.cmp(&b.line).then(a.xid.cmp(&b.xid)));
        unmanaged.sort_by(|a, b| a.xid.cmp(&b.xid));

        let count = |action| users.iter().filter(|u| u.action == action).count();
        let summary = Summary {
            invite: count(UserAction::Invite),
            restore: count(UserAction::Restore),
            update: count(UserAction::Update),
            suspend: count(UserAction::Suspend),
            delete: count(UserAction::Delete),
            anonymize: count(UserAction::Anonymize),
            skipped: skipped.len(),
            scheduled: scheduled.len(),
            unmanaged: unmanaged.len(),
            admin_grants: users
                .iter()
                .flat_map(|u| &u.changes)
                .filter(|c| c.grants_admin())
                .count(),
        };
        let safety = safety(&self.policy.safety, self.counts(&users, offboards));
        let (input, config) = (self.input, self.input.config);
        Plan {
            format_version: FORMAT_VERSION,
            network: config.sync.network.clone(),
            config_commit: config.files.revision.commit_id().map(str::to_string),
            hr: input.hr.clone(),
            network_fingerprint: String::new(),
            network_read: input.observed.read,
            as_of: self.today,
            users,
            scheduled,
            leaving,
            deleted_outside,
            skipped,
            unmanaged,
            warnings,
            safety,
            summary,
        }
    }

    /// What the safety thresholds weigh.
    fn counts(&self, users: &[UserPlan], offboards: usize) -> Counts {
        let observed = self.input.observed;
        let managed_users = observed
            .users
            .iter()
            .filter(|u| {
                !u.suspended
                    && u.xid
                        .as_deref()
                        .is_some_and(|x| !self.index.excluded_ids.contains_key(x))
            })
            .count();
        let linked = users
            .iter()
            .filter(|u| u.action == UserAction::Update)
            .filter(|u| u.changes.iter().any(|c| matches!(c, Change::SetXid { .. })))
            .count();
        // Changes to active accounts, as the share is of those: restoring or finally deleting
        // suspended leavers is not counted (undoing a mass suspension must not be blocked for it).
        let suspended: HashSet<&str> = observed
            .users
            .iter()
            .filter(|u| u.suspended)
            .map(|u| u.eid.as_str())
            .collect();
        let changed = users
            .iter()
            .filter(|u| u.action != UserAction::Invite)
            .filter(|u| u.eid.as_deref().is_some_and(|eid| !suspended.contains(eid)))
            .count();
        Counts {
            offboards,
            changed,
            managed: managed_users,
            linked,
            records: self.input.resolution.record_count,
        }
    }
}

enum DeletedByHand {
    /// The ledger does not know the joiner: never had an account the sync made.
    No,
    /// Deleted by hand, and left so (`manual_deletions: respect`, nothing changed since).
    Respected,
    /// Deleted by hand, invited again: why.
    Recreate(&'static str),
}

/// A leaver's account offboarded by `action`.
fn offboarding(xid: &str, account: &ObservedUser, action: UserAction, reason: String) -> UserPlan {
    UserPlan {
        xid: xid.to_string(),
        eid: Some(account.eid.clone()),
        name: account.display_name(),
        line: None,
        action,
        changes: Vec::new(),
        reason: Some(reason),
        invitation: None,
        after: None,
        contracts: Vec::new(),
    }
}

/// A desired person's record skipped, with why.
fn skip(draft: &mut Draft, desired: &DesiredUser, reason: String) {
    draft.skipped.push(SkippedRecord {
        line: desired.line(),
        xid: Some(desired.xid().to_string()),
        reasons: vec![reason],
    });
}

/// Who has an address once the plan's updates are applied (apply updates accounts before it
/// invites anyone), so that a joiner can take an address another account gives up. Kept as the
/// changes to `by_email` (a few) rather than a copy of it (a million).
struct AddressOwners<'a> {
    by_email: &'a HashMap<Cow<'a, str>, Vec<&'a ObservedUser>>,
    /// Accounts whose address the plan changes, by EID.
    moving: HashSet<&'a str>,
    /// Those accounts by their new address.
    arriving: HashMap<String, Vec<&'a ObservedUser>>,
}

impl<'a> AddressOwners<'a> {
    fn after_updates(index: &'a Index<'a>, observed: &'a Observed, users: &[UserPlan]) -> Self {
        let new_addresses: HashMap<&str, &str> = users
            .iter()
            .flat_map(|user| {
                user.changes.iter().filter_map(|change| match change {
                    Change::SetProfile {
                        field: ProfileField::Email,
                        to,
                        ..
                    } => Some((user.eid.as_deref()?, to.as_str())),
                    _ => None,
                })
            })
            .collect();
        let mut moving: HashSet<&str> = HashSet::new();
        let mut arriving: HashMap<String, Vec<&ObservedUser>> = HashMap::new();
        if !new_addresses.is_empty() {
            for account in &observed.users {
                if let Some(to) = new_addresses.get(account.eid.as_str()) {
                    moving.insert(account.eid.as_str());
                    arriving.entry(to.to_lowercase()).or_default().push(account);
                }
            }
        }
        AddressOwners {
            by_email: &index.by_email,
            moving,
            arriving,
        }
    }

    /// The accounts that have `email` (lower case) once the updates are applied.
    fn of(&self, email: &str) -> Vec<&'a ObservedUser> {
        let staying = self
            .by_email
            .get(email)
            .into_iter()
            .flatten()
            .filter(|o| !self.moving.contains(o.eid.as_str()));
        staying
            .chain(self.arriving.get(email).into_iter().flatten())
            .copied()
            .collect()
    }
}
