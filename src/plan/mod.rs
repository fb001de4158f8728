//! `plan`: desired vs observed vs ledger → the operations that align the network, the records
//! skipped, and the safety verdict. Pure and deterministic: same inputs, same plan, same checksum.

pub mod impact;
pub mod markdown;
pub mod render;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

// foldhash: these maps hold a million addresses and XIDs, hashed once per person each.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::config::{
    AfterGrace, Config, InviteChannel, ManualDeletions, NetworkRole, Origin, Safety, XidChange,
};
use crate::desired::{
    DesiredUser, MembershipKind, ProfileField, Provenance, Resolution, SkippedRecord,
};
use crate::diag::{Diagnostic, Location};
use crate::hr::{SnapshotInfo, case_folded};
use crate::redact::mask_email;
use crate::speakap::{NetworkRead, Observed, ObservedUser, wire};
use crate::state::Ledger;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub network: String,
    /// The config commit, or `None` for a plan from uncommitted files (not applicable).
    pub config_commit: Option<String>,
    pub hr: SnapshotInfo,
    /// The observed network this plan was made against (see `Observed::fingerprint`).
    pub network_fingerprint: String,
    /// What was read of the network: accounts and groups, and their pages.
    #[serde(default)]
    pub network_read: NetworkRead,
    pub as_of: Date,
    pub users: Vec<UserPlan>,
    /// People with a start date still to come: invited on that day.
    pub scheduled: Vec<Scheduled>,
    /// Suspended leavers within their grace period (recoverable).
    pub leaving: Vec<Leaving>,
    /// Accounts deleted in Speakap by hand while the person is still in HR: not recreated.
    pub deleted_outside: Vec<DeletedOutside>,
    pub skipped: Vec<SkippedRecord>,
    pub unmanaged: Vec<Unmanaged>,
    pub warnings: Vec<String>,
    pub safety: SafetyVerdict,
    pub summary: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserAction {
    Invite,
    /// A suspended leaver who is back in the HR record: the same account, reactivated.
    Restore,
    Update,
    /// A leaver: suspended (recoverable) for the grace period.
    Suspend,
    /// After the grace period, or at once with `grace_days: 0`.
    Delete,
    Anonymize,
}

impl UserAction {
    /// Offboarding steps: run last, and only when everything before succeeded.
    pub fn is_offboarding(self) -> bool {
        matches!(
            self,
            UserAction::Suspend | UserAction::Delete | UserAction::Anonymize
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    pub xid: String,
    pub name: String,
    pub line: u64,
    pub invite_on: Date,
    /// A leaver rehired: their suspended account is restored on the start date, not invited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restore: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaving {
    pub xid: String,
    pub eid: String,
    pub name: String,
    pub suspended_since: Date,
    pub then: AfterGrace,
    pub on: Date,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedOutside {
    pub xid: String,
    pub name: String,
    pub line: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPlan {
    pub xid: String,
    /// The Speakap user, when there is one already.
    pub eid: Option<String>,
    pub name: String,
    /// The HR line the person was read from (not for removals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub action: UserAction,
    pub changes: Vec<Change>,
    /// Why this happens, where the changes alone do not say it (offboarding, restores, recreations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For invites: how the person gets their account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation: Option<Invitation>,
    /// The account (EID) that must give up an email address before this one can take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub channel: InviteChannel,
    /// The single-sign-on login name, for SSO accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Link the account to its XID (new invitees, and existing accounts matched by email).
    SetXid { from: Option<String>, to: String },
    SetProfile {
        field: ProfileField,
        from: String,
        to: String,
        source: Provenance,
    },
    AddMembership {
        group: String,
        group_eid: String,
        kind: MembershipKind,
        admin: bool,
        source: Provenance,
    },
    /// Only for memberships the ledger says the sync granted.
    /// A membership the ledger says the sync granted (`source` empty), or one an override withdraws.
    RemoveMembership {
        group: String,
        group_eid: String,
        source: Option<Provenance>,
    },
    SetGroupAdmin {
        group: String,
        group_eid: String,
        admin: bool,
        source: Option<Provenance>,
    },
    SetNetworkRole {
        from: String,
        to: NetworkRole,
        source: Option<Provenance>,
    },
    /// The business unit the person primarily belongs to (the first location in HR).
    SetPrimaryBusinessUnit {
        from: Option<String>,
        to: String,
        group_eid: String,
        source: Provenance,
    },
}

impl Change {
    /// Grants of admin rights, marked ⚠ in plans.
    pub fn grants_admin(&self) -> bool {
        match self {
            Change::AddMembership { admin, .. } | Change::SetGroupAdmin { admin, .. } => *admin,
            Change::SetNetworkRole { to, .. } => *to == NetworkRole::Admin,
            _ => false,
        }
    }
}

/// An account in the network the sync leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    /// Empty for an account without an XID.
    pub xid: String,
    pub eid: String,
    pub reason: String,
}

impl Unmanaged {
    /// The account as plans name it: by XID, or by EID when it has none.
    pub fn label(&self) -> String {
        if self.xid.is_empty() {
            format!("eid {}", self.eid)
        } else {
            self.xid.clone()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetyVerdict {
    pub blocked: bool,
    pub violations: Vec<String>,
    /// Users with an XID in the network (excluded ones not counted): the base of the percentages.
    pub managed_users: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub invite: usize,
    pub restore: usize,
    pub update: usize,
    pub suspend: usize,
    pub delete: usize,
    pub anonymize: usize,
    pub skipped: usize,
    pub scheduled: usize,
    pub unmanaged: usize,
    pub admin_grants: usize,
}

impl Summary {
    pub fn has_changes(&self) -> bool {
        self.invite + self.restore + self.update + self.suspend + self.delete + self.anonymize > 0
    }

    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("{} to invite", self.invite),
            format!("{} to update", self.update),
            format!("{} to suspend", self.suspend),
        ];
        for (count, verb) in [
            (self.restore, "restore"),
            (self.delete, "delete"),
            (self.anonymize, "anonymize"),
        ] {
            if count > 0 {
                parts.push(format!("{count} to {verb}"));
            }
        }
        parts.push(format!(
            "{} record{} skipped",
            self.skipped,
            if self.skipped == 1 { "" } else { "s" }
        ));
        parts.join(", ")
    }
}

impl Plan {
    /// sha256 of the canonical JSON: identifies exactly this plan (for `apply --force`).
    pub fn checksum(&self) -> String {
        let json = serde_json::to_vec(self).expect("a plan serializes");
        format!("sha256:{}", crate::digest::sha256_hex(json))
    }

    pub fn applicable(&self) -> bool {
        self.config_commit.is_some()
    }
}

/// Everything `plan` looks at. Nothing here does I/O.
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub resolution: &'a Resolution,
    pub observed: &'a Observed,
    pub ledger: &'a Ledger,
    pub hr: SnapshotInfo,
    pub today: Date,
}

impl PlanInput<'_> {
    fn network_fingerprint(&self) -> String {
        self.observed.fingerprint()
    }
}

/// What `diff` looks up in the network and the ledger.
struct Network<'a> {
    groups: &'a Groups<'a>,
    ledger: &'a Ledger,
    address_moves: &'a AddressMoves,
}

/// Email address changes of existing accounts. A change to an address another account holds
/// can happen in the same run when that account moves on to another address first; chains are
/// followed, and cycles (a swap would need a temporary address) are refused.
#[derive(Default)]
struct AddressMoves {
    /// Account EID → the account (EID) that must give up the address first.
    waits_for: HashMap<String, String>,
    /// Account EID → the account keeping the wanted address.
    blocked_by: HashMap<String, String>,
}

impl AddressMoves {
    fn new<'a>(
        known: impl Iterator<Item = (&'a DesiredUser, &'a ObservedUser)>,
        by_email: &HashMap<Cow<'_, str>, Vec<&ObservedUser>>,
        by_other_email: &HashMap<Cow<'_, str>, &ObservedUser>,
    ) -> AddressMoves {
        // Account EID → the address it wants, for accounts whose address changes.
        let wanted: HashMap<&str, String> = known
            .filter_map(|(d, account)| {
                let target = case_folded(d.get(ProfileField::Email)?);
                (case_folded(account.get(ProfileField::Email)) != target)
                    .then(|| (account.eid.as_str(), target.into_owned()))
            })
            .collect();
        let holder = |eid: &str, address: &str| {
            by_email
                .get(address)
                .and_then(|owners| owners.iter().find(|o| o.eid != eid))
                .map(|o| o.eid.as_str())
        };
        let mut moves = AddressMoves::default();
        for (&eid, address) in &wanted {
            // Another account's other address stays where it is: the sync never moves those.
            if let Some(other) = by_other_email
                .get(address.as_str())
                .filter(|o| o.eid != eid)
            {
                moves.blocked_by.insert(eid.to_string(), other.eid.clone());
                continue;
            }
            let mut seen = vec![eid];
            let mut current = eid;
            let mut target = address.as_str();
            // Follow the chain of holders until a free address, a holder that stays, or a cycle.
            let movable = loop {
                let Some(next) = holder(current, target) else {
                    break true;
                };
                match wanted.get(next) {
                    Some(next_target) if !seen.contains(&next) && *next_target != target => {
                        seen.push(next);
                        current = next;
                        target = next_target;
                    }
                    _ => break false,
                }
            };
            if let Some(first_holder) = holder(eid, address) {
                let entry = if movable {
                    &mut moves.waits_for
                } else {
                    &mut moves.blocked_by
                };
                entry.insert(eid.to_string(), first_holder.to_string());
            }
        }
        moves
    }
}

struct Groups<'a> {
    by_name: HashMap<&'a str, Vec<&'a wire::Group>>,
    by_eid: HashMap<&'a str, &'a wire::Group>,
}

impl<'a> Groups<'a> {
    fn new(groups: &'a [wire::Group]) -> Self {
        let mut by_name: HashMap<&str, Vec<&wire::Group>> = HashMap::new();
        for g in groups {
            by_name.entry(g.name.as_str()).or_default().push(g);
        }
        Groups {
            by_name,
            by_eid: groups.iter().map(|g| (g.eid.as_str(), g)).collect(),
        }
    }

    fn unique(&self, name: &str) -> Option<&'a wire::Group> {
        match self.by_name.get(name).map(Vec::as_slice) {
            Some([one]) => Some(one),
            _ => None,
        }
    }

    fn name_of(&self, eid: &str) -> String {
        self.by_eid
            .get(eid)
            .map_or_else(|| eid.to_string(), |g| g.name.clone())
    }
}

/// Checks that every group the config names exists exactly once in the network.
fn check_groups(config: &Config, groups: &Groups) -> Vec<Diagnostic> {
    let mut named: Vec<(&str, &Origin, &str)> = Vec::new();
    for (table, expected) in [
        (&config.rules.business_units, "business_unit"),
        (&config.rules.departments, "department"),
    ] {
        let Some(table) = table else { continue };
        for (code, group) in &table.map {
            named.push((group, &table.origins[code], expected));
        }
        if let Some(default) = &table.default {
            named.push((default, &table.default_origin, expected));
        }
    }
    for rule in &config.rules.groups {
        named.push((&rule.group, &rule.origin, ""));
    }
    for o in &config.overrides {
        for group in o.add_groups.iter().chain(&o.remove_groups) {
            named.push((group, &o.origin, ""));
        }
    }
    let mut diagnostics = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, origin, expected_type) in named {
        if !seen.insert((name, origin)) {
            continue;
        }
        let location = Location {
            file: origin.file.to_string(),
            line: origin.line,
            column: 1,
        };
        match groups.by_name.get(name).map(Vec::as_slice) {
            None | Some([]) => {
                let mut near: Vec<&str> = groups
                    .by_name
                    .keys()
                    .copied()
                    .filter(|candidate| {
                        candidate.eq_ignore_ascii_case(name)
                            || candidate.to_lowercase().contains(&name.to_lowercase())
                    })
                    .collect();
                near.sort();
                let hint = if near.is_empty() {
                    "create the group in Speakap first, or correct the name (names match exactly)"
                        .to_string()
                } else {
                    format!(
                        "did you mean {}? names match exactly",
                        near.iter()
                            .map(|n| format!("\"{n}\""))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )
                };
                diagnostics.push(
                    Diagnostic::error(
                        "unknown-group",
                        format!("group \"{name}\" does not exist in the network"),
                    )
                    .at(location)
                    .hint(hint),
                );
            }
            Some([one]) => {
                // A business unit brings local admins and the primary business unit with it: a
                // mapping onto another kind of group would hand those out wrongly.
                if !expected_type.is_empty() && one.group_type != expected_type {
                    diagnostics.push(
                        Diagnostic::error(
                            "group-type",
                            format!(
                                "group \"{name}\" is a {} group, not a {expected_type} group",
                                one.group_type
                            ),
                        )
                        .at(location)
                        .hint(format!(
                            "map these codes to {expected_type} groups; give other groups with a \
                             rule under `groups:`"
                        )),
                    );
                }
            }
            Some(many) => diagnostics.push(
                Diagnostic::error(
                    "ambiguous-group",
                    format!("{} groups are named \"{name}\"", many.len()),
                )
                .at(location)
                .hint("rename the groups in Speakap so each name is unique"),
            ),
        }
    }
    diagnostics
}

/// Computes the plan. Errors (unknown or ambiguous groups) come back as diagnostics; warnings
/// found at plan time are part of the plan.
pub fn plan(input: &PlanInput) -> Result<Plan, Vec<Diagnostic>> {
    // The fingerprint hashes the whole observed network (most of a second at a million
    // accounts); it is computed on a second core while the rest is planned.
    std::thread::scope(|scope| {
        let fingerprint = scope.spawn(|| input.network_fingerprint());
        let plan = plan_all_but_fingerprint(input)?;
        Ok(Plan {
            network_fingerprint: fingerprint.join().expect("the fingerprint thread panicked"),
            ..plan
        })
    })
}

/// [`plan`] with an empty `network_fingerprint`.
fn plan_all_but_fingerprint(input: &PlanInput) -> Result<Plan, Vec<Diagnostic>> {
    let PlanInput {
        config,
        resolution,
        observed,
        ledger,
        ..
    } = input;
    let groups = Groups::new(&observed.groups);
    let group_diagnostics = check_groups(config, &groups);
    if group_diagnostics
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error)
    {
        return Err(group_diagnostics);
    }
    let mut warnings: Vec<String> = config
        .warnings
        .iter()
        .chain(&group_diagnostics)
        .map(describe)
        .collect();
    warnings.extend(resolution.warnings.iter().cloned());

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
    // An exclusion that names no one protects no one: most likely a typo in the XID.
    for e in &config.exclusions {
        if let Some(xid) = e.xid.as_deref()
            && !resolution.excluded.contains_key(xid)
            && !by_xid.contains_key(xid)
        {
            warnings.push(format!(
                "exclusion for XID {xid} ({}) matches no HR record and no account; check the XID",
                e.origin
            ));
        }
    }
    // Each desired person's account by XID, looked up once: a million lookups are felt.
    let accounts: Vec<Option<&ObservedUser>> = resolution
        .desired
        .values()
        .map(|d| by_xid.get(d.xid()).copied())
        .collect();
    let known = || {
        resolution
            .desired
            .values()
            .zip(&accounts)
            .filter_map(|(d, a)| a.map(|a| (d, a)))
    };
    let address_moves = AddressMoves::new(known(), &by_email, &by_other_email);
    let network = Network {
        groups: &groups,
        ledger,
        address_moves: &address_moves,
    };
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

    let policy = &config.sync.policy;
    let today = input.today;
    let mut users = Vec::new();
    let mut scheduled = Vec::new();
    let mut deleted_outside = Vec::new();
    let mut unmanaged = Vec::new();
    let mut skipped = resolution.skipped.clone();
    // Accounts that must not be offboarded although their XID is not desired.
    let mut hold: BTreeSet<String> = resolution.held.clone();
    let user_plan =
        |desired: &DesiredUser, account: &ObservedUser, action, changes, reason| UserPlan {
            xid: desired.xid().to_string(),
            eid: Some(account.eid.clone()),
            name: desired.display_name(),
            line: Some(desired.line()),
            action,
            changes,
            reason,
            invitation: None,
            after: address_moves.waits_for.get(&account.eid).cloned(),
        };

    let grace = jiff::Span::new().days(i64::from(policy.offboarding.grace_days));
    // Rehired leavers whose start date comes after their grace period: offboarded meanwhile.
    let mut rehired_after_grace: HashSet<&str> = HashSet::new();
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
                let changes = diff(desired, existing, &network, None, &mut warnings);
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
        let changes = diff(desired, existing, &network, None, &mut warnings);
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
    // Addresses as they will be once those changes are applied (apply updates accounts before
    // it invites anyone), so that a joiner can take an address another account gives up.
    // Kept as the changes to `by_email` (a few) rather than a copy of it (a million).
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
    let final_owners = |email: &str| -> Vec<&ObservedUser> {
        let staying = by_email
            .get(email)
            .into_iter()
            .flatten()
            .filter(|o| !moving.contains(o.eid.as_str()));
        staying
            .chain(arriving.get(email).into_iter().flatten())
            .copied()
            .collect()
    };
    let unknown = resolution
        .desired
        .values()
        .zip(&accounts)
        .filter_map(|(d, a)| a.is_none().then_some(d));
    for desired in unknown {
        let email = desired
            .get(ProfileField::Email)
            .unwrap_or_default()
            .to_lowercase();
        let owners = final_owners(&email);
        if owners.is_empty()
            && let Some(account) = by_other_email.get(email.as_str())
        {
            // Speakap would hand that account to the invite: someone else's account, taken
            // over by an address it has on the side.
            let holder = match &account.xid {
                Some(xid) => format!("the account of XID {xid}"),
                None => format!("account {} (no XID)", account.eid),
            };
            skipped.push(SkippedRecord {
                line: desired.line(),
                xid: Some(desired.xid().to_string()),
                reasons: vec![format!(
                    "email address is an address of {holder}, besides its primary one; the sync \
                     never takes over an account by such an address: remove the address from \
                     that account in Speakap, or correct the email in HR"
                )],
            });
            continue;
        }
        match owners.as_slice() {
            [account] if account.xid.is_none() => {
                // An account made by hand (or an invite whose XID was not set yet): link it.
                let changes = diff(desired, account, &network, Some(None), &mut warnings);
                users.push(user_plan(
                    desired,
                    account,
                    UserAction::Update,
                    changes,
                    None,
                ));
                continue;
            }
            [account, ..] => {
                let other = account.xid.clone().unwrap_or_default();
                let other_in_record = resolution.desired.contains_key(&other)
                    || resolution.held.contains(&other)
                    || resolution.ended.contains_key(&other)
                    || excluded_ids.contains_key(other.as_str());
                let reason = if other_in_record {
                    format!(
                        "email address already belongs to the account of XID {other}, who is also in the HR record"
                    )
                } else if policy.xid_change == XidChange::Relink
                    && (!account.suspended || ledger.suspended_since(&other).is_some())
                {
                    hold.insert(other.clone());
                    let changes = diff(
                        desired,
                        account,
                        &network,
                        Some(Some(other.clone())),
                        &mut warnings,
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
                    users.push(user_plan(desired, account, action, changes, Some(reason)));
                    continue;
                } else if account.suspended && policy.xid_change == XidChange::Relink {
                    hold.insert(other.clone());
                    format!(
                        "XID change: the account with this email address has XID {other} and was suspended outside the sync; reactivate it in Speakap to have it relinked"
                    )
                } else {
                    hold.insert(other.clone());
                    format!(
                        "looks like an XID change: the account with this email address has XID {other}, which is no longer in the HR record; \
                         correct the XID in HR or in Speakap, or set policy.xid_change: relink (neither account is invited or removed meanwhile)"
                    )
                };
                skipped.push(SkippedRecord {
                    line: desired.line(),
                    xid: Some(desired.xid().to_string()),
                    reasons: vec![reason],
                });
                continue;
            }
            _ => {}
        }
        if let Some(start) = desired
            .start_date()
            .filter(|start| policy.invite.on_start_date && *start > today)
        {
            scheduled.push(Scheduled {
                xid: desired.xid().to_string(),
                name: desired.display_name(),
                line: desired.line(),
                invite_on: start,
                restore: false,
            });
            continue;
        }
        let mut reason = None;
        if let Some(entry) = ledger.users.get(desired.xid()) {
            let unchanged = entry.digest.as_deref() == Some(desired.digest().as_str());
            if policy.manual_deletions == ManualDeletions::Respect
                && unchanged
                && !desired.restore()
            {
                deleted_outside.push(DeletedOutside {
                    xid: desired.xid().to_string(),
                    name: desired.display_name(),
                    line: desired.line(),
                });
                continue;
            }
            reason = Some(
                if desired.restore() {
                    "recreated: deleted outside the sync; an override says restore: true"
                } else if unchanged {
                    "recreated: deleted outside the sync (policy.manual_deletions: recreate)"
                } else {
                    "recreated: deleted outside the sync, and the HR record or the rules' outcome changed since"
                }
                .to_string(),
            );
        }
        let channel = policy.invite.channel;
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
            skipped.push(SkippedRecord {
                line: desired.line(),
                xid: Some(desired.xid().to_string()),
                reasons: vec![problem.to_string()],
            });
            continue;
        }
        let mut plan = invite(desired, &groups, channel);
        plan.reason = reason;
        users.push(plan);
    }

    let mut leaving = Vec::new();
    let mut offboards = 0;
    let final_action = match policy.offboarding.then {
        AfterGrace::Delete => UserAction::Delete,
        AfterGrace::Anonymize => UserAction::Anonymize,
    };
    // Accounts without an XID that no one is linked to are listed too: left alone, but the
    // reviewer sees the whole network.
    let linked_eids: HashSet<String> = users.iter().filter_map(|u| u.eid.clone()).collect();
    for account in &observed.users {
        let Some(xid) = &account.xid else {
            if !account.suspended && !linked_eids.contains(&account.eid) {
                unmanaged.push(Unmanaged {
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
        if let Some(reason) = excluded_ids.get(xid.as_str()) {
            unmanaged.push(Unmanaged {
                xid: xid.clone(),
                eid: account.eid.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        if (resolution.desired.contains_key(xid) && !rehired_after_grace.contains(xid.as_str()))
            || hold.contains(xid)
        {
            continue;
        }
        // HR input that was not read as a person names this account: its row may be the one
        // that could not be read, so the account is left alone, and the plan says why.
        let unread_at = |text: &str| {
            let word = case_folded(text);
            resolution.unread_words.get(word.as_ref()).copied()
        };
        if let Some(at) = unread_at(xid).or_else(|| unread_at(account.get(ProfileField::Email))) {
            let why = if at.row_line == at.line {
                "whose row could not be read".to_string()
            } else {
                format!(
                    "which is inside a value that starts on line {} and runs over several lines \
                     (a quote not closed where it should be?)",
                    at.row_line
                )
            };
            skipped.push(SkippedRecord {
                line: at.line,
                xid: Some(xid.clone()),
                reasons: vec![format!(
                    "not offboarded: this account's XID or email address is on this line, {why}; \
                     the account is left alone until the line is fixed"
                )],
            });
            continue;
        }
        let offboard = |action, reason: String| UserPlan {
            xid: xid.clone(),
            eid: Some(account.eid.clone()),
            name: account.display_name(),
            line: None,
            action,
            changes: Vec::new(),
            reason: Some(reason),
            invitation: None,
            after: None,
        };
        if account.suspended {
            match ledger.suspended_since(xid) {
                Some(since) => {
                    let due = since.saturating_add(grace);
                    if today >= due {
                        let reason =
                            format!("suspended since {since}; the grace period ended on {due}");
                        users.push(offboard(final_action, reason));
                    } else {
                        leaving.push(Leaving {
                            xid: xid.clone(),
                            eid: account.eid.clone(),
                            name: account.display_name(),
                            suspended_since: since,
                            then: policy.offboarding.then,
                            on: due,
                        });
                    }
                }
                // Suspended by hand, or by a run that was stopped before it could record it: the
                // person has left HR either way, so the grace period starts now.
                None => leaving.push(Leaving {
                    xid: xid.clone(),
                    eid: account.eid.clone(),
                    name: account.display_name(),
                    suspended_since: today,
                    then: policy.offboarding.then,
                    on: today.saturating_add(grace),
                }),
            }
            continue;
        }
        let why = match resolution.ended.get(xid) {
            Some(end) => format!("end date {end} has passed"),
            None => "not in the HR record".to_string(),
        };
        offboards += 1;
        if policy.offboarding.grace_days == 0 {
            users.push(offboard(final_action, why));
        } else {
            let until = today.saturating_add(grace);
            users.push(offboard(
                UserAction::Suspend,
                format!("{why}; recoverable until {until}"),
            ));
        }
    }
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
    let managed_users = observed
        .users
        .iter()
        .filter(|u| {
            !u.suspended
                && u.xid
                    .as_deref()
                    .is_some_and(|x| !excluded_ids.contains_key(x))
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
    let safety = safety(
        &policy.safety,
        Counts {
            offboards,
            changed,
            managed: managed_users,
            linked,
            records: resolution.record_count,
        },
    );

    Ok(Plan {
        format_version: FORMAT_VERSION,
        network: config.sync.network.clone(),
        config_commit: config.files.revision.commit_id().map(str::to_string),
        hr: input.hr.clone(),
        network_fingerprint: String::new(),
        network_read: input.observed.read,
        as_of: today,
        users,
        scheduled,
        leaving,
        deleted_outside,
        skipped,
        unmanaged,
        warnings,
        safety,
        summary,
    })
}

fn describe(d: &Diagnostic) -> String {
    match &d.location {
        Some(l) => format!("{l}: {}", d.message),
        None => d.message.clone(),
    }
}

/// What the safety thresholds are measured on.
struct Counts {
    /// Accounts this plan starts offboarding (suspensions, or deletions with no grace period).
    offboards: usize,
    /// Existing accounts this plan changes in any way.
    changed: usize,
    /// Active accounts with an XID, excluded ones not counted.
    managed: usize,
    /// Accounts this plan links to an XID by email.
    linked: usize,
    records: usize,
}

/// Offboards are measured against the accounts the sync manages; all changes against those plus
/// the accounts this plan links by email, so a share never exceeds 100%.
fn safety(limits: &Safety, counts: Counts) -> SafetyVerdict {
    let Counts {
        offboards,
        changed,
        managed,
        linked,
        records,
    } = counts;
    let mut violations = Vec::new();
    if records < limits.min_records {
        violations.push(format!(
            "Too few HR records: {records} is under min_records {} (a truncated export?)",
            limits.min_records
        ));
    }
    if managed > 0 {
        let offboard = offboards as f64 * 100.0 / managed as f64;
        if offboard > limits.max_offboard_percent {
            violations.push(format!(
                "Too many offboards: {offboard:.1}% is over {}% ({offboards}/{managed})",
                limits.max_offboard_percent
            ));
        }
        let base = managed + linked;
        let change = changed as f64 * 100.0 / base as f64;
        if change > limits.max_change_percent {
            violations.push(format!(
                "Too many changes: {change:.1}% of managed users is over {}% ({changed}/{base})",
                limits.max_change_percent
            ));
        }
    }
    SafetyVerdict {
        blocked: !violations.is_empty(),
        violations,
        managed_users: managed,
    }
}

fn invite(desired: &DesiredUser, groups: &Groups, channel: InviteChannel) -> UserPlan {
    let mut changes = vec![Change::SetXid {
        from: None,
        to: desired.xid().to_string(),
    }];
    for (field, value) in desired.profile() {
        if let Some(source) = desired.source(field).filter(|_| !value.is_empty()) {
            changes.push(Change::SetProfile {
                field,
                from: String::new(),
                to: value.to_string(),
                source,
            });
        }
    }
    for (name, m) in desired.memberships().iter() {
        let group = groups
            .unique(name)
            .expect("check_groups verified every named group");
        changes.push(Change::AddMembership {
            group: name.to_string(),
            group_eid: group.eid.clone(),
            kind: m.kind,
            admin: m.admin.is_some(),
            source: m.admin.clone().unwrap_or_else(|| m.from.clone()),
        });
    }
    changes.extend(primary_business_unit(desired, None, groups));
    if let Some(role) = desired.role().filter(|_| desired.wants_network_admin()) {
        changes.push(Change::SetNetworkRole {
            from: "invitee".into(),
            to: NetworkRole::Admin,
            source: Some(role.from.clone()),
        });
    }
    UserPlan {
        xid: desired.xid().to_string(),
        eid: None,
        name: desired.display_name(),
        line: Some(desired.line()),
        action: UserAction::Invite,
        changes,
        reason: None,
        invitation: Some(Invitation {
            channel,
            upn: desired.upn().map(str::to_string),
        }),
        after: None,
    }
}

/// The change of primary business unit, when HR names one that differs from the account's.
fn primary_business_unit(
    desired: &DesiredUser,
    existing: Option<&ObservedUser>,
    groups: &Groups,
) -> Option<Change> {
    let wanted = desired.primary_business_unit()?;
    let group = groups.unique(&wanted.value)?;
    let current = existing.and_then(|e| e.primary_business_unit.as_deref());
    (current != Some(group.eid.as_str())).then(|| Change::SetPrimaryBusinessUnit {
        from: current.map(|eid| groups.name_of(eid)),
        to: wanted.value.to_string(),
        group_eid: group.eid.clone(),
        source: wanted.from.clone(),
    })
}

/// Changes that make `existing` match `desired`. `link` is `Some(old XID)` when the account is
/// matched by email and its XID must be set.
fn diff(
    desired: &DesiredUser,
    existing: &ObservedUser,
    network: &Network,
    link: Option<Option<String>>,
    warnings: &mut Vec<String>,
) -> Vec<Change> {
    let Network {
        groups,
        ledger,
        address_moves,
    } = network;
    let xid = desired.xid();
    let mut changes = Vec::new();
    let kept_by = address_moves.blocked_by.get(&existing.eid);
    if let Some(from) = link {
        changes.push(Change::SetXid {
            from,
            to: xid.to_string(),
        });
    }
    for (field, value) in desired.profile() {
        let current = existing.get(field);
        let same = if field == ProfileField::Email {
            current.eq_ignore_ascii_case(value)
        } else {
            current == value
        };
        if let (false, ProfileField::Email, Some(owner)) = (same, field, kept_by) {
            warnings.push(format!(
                "XID {xid}: email address not changed to {}: account {owner} keeps it; resolve the duplicate in Speakap",
                mask_email(value),
            ));
            continue;
        }
        if let Some(source) = desired.source(field).filter(|_| !same) {
            changes.push(Change::SetProfile {
                field,
                from: current.to_string(),
                to: value.to_string(),
                source,
            });
        }
    }

    let mut desired_eids = Vec::with_capacity(desired.memberships().len());
    for (name, m) in desired.memberships().iter() {
        let group = groups
            .unique(name)
            .expect("check_groups verified every named group");
        desired_eids.push(group.eid.as_str());
        let want_admin = m.admin.is_some();
        match existing.groups.get(&group.eid) {
            None => changes.push(Change::AddMembership {
                group: name.to_string(),
                group_eid: group.eid.clone(),
                kind: m.kind,
                admin: want_admin,
                source: m.admin.clone().unwrap_or_else(|| m.from.clone()),
            }),
            Some(membership) => {
                let is_admin = membership.role == "admin";
                if want_admin && !is_admin {
                    changes.push(Change::SetGroupAdmin {
                        group: name.to_string(),
                        group_eid: group.eid.clone(),
                        admin: true,
                        source: m.admin.clone(),
                    });
                } else if !want_admin && is_admin && ledger.granted_admin_of(xid, &group.eid) {
                    changes.push(Change::SetGroupAdmin {
                        group: name.to_string(),
                        group_eid: group.eid.clone(),
                        admin: false,
                        source: None,
                    });
                }
            }
        }
    }
    for group_eid in existing.groups.keys() {
        if desired_eids.contains(&group_eid.as_str()) {
            continue;
        }
        let name = groups.name_of(group_eid);
        let withdrawn = desired.withdrawn(&name).cloned();
        if withdrawn.is_some() || ledger.manages_group(xid, group_eid) {
            changes.push(Change::RemoveMembership {
                group: name,
                group_eid: group_eid.clone(),
                source: withdrawn,
            });
        }
    }

    changes.extend(primary_business_unit(desired, Some(existing), groups));
    let wants_admin = desired.wants_network_admin();
    let is_admin = existing.role() == "admin";
    if wants_admin && !is_admin {
        changes.push(Change::SetNetworkRole {
            from: existing.role().to_string(),
            to: NetworkRole::Admin,
            source: desired.role().map(|r| r.from.clone()),
        });
    } else if !wants_admin && is_admin && ledger.granted_network_admin(xid) {
        changes.push(Change::SetNetworkRole {
            from: "admin".into(),
            to: NetworkRole::Member,
            source: desired.role().map(|r| r.from.clone()),
        });
    }
    changes
}

#[cfg(test)]
mod tests;
