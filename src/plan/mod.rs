//! `plan`: desired vs observed vs ledger → the operations that align the network, the records
//! skipped, and the safety verdict. Pure and deterministic: same inputs, same plan, same checksum.

pub mod impact;
pub mod markdown;
mod phases;
pub mod render;
mod saved;

use std::borrow::Cow;
use std::collections::BTreeSet;

// foldhash: these maps hold a million addresses and XIDs, hashed once per person each.
use foldhash::{HashMap, HashMapExt};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::config::{
    AfterGrace, Config, InviteChannel, ManualDeletions, NetworkRole, Origin, Safety, XidChange,
};
use crate::diag::{Diagnostic, Location};
use crate::hr::{SnapshotInfo, case_folded};
use crate::redact::mask_email;
use crate::resolve::{
    DesiredUser, MembershipKind, ProfileField, Provenance, Resolution, SkippedRecord,
};
use crate::speakap::{NetworkRead, Observed, ObservedUser, wire};
use crate::state::Ledger;

/// 2: provenances in a table, cited by index (`saved`).
pub const FORMAT_VERSION: u32 = 2;

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
    /// The HR lines of a person merged from several contracts (`policy.duplicate_xids: merge`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contracts: Vec<u64>,
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
        saved::checksum(self)
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
    let mut diagnostics = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, origin, expected_type) in named_groups(config) {
        if !seen.insert((name, origin)) {
            continue;
        }
        let location = Location {
            file: origin.file.to_string(),
            line: origin.line,
            column: 1,
        };
        match groups.by_name.get(name).map(Vec::as_slice) {
            None | Some([]) => diagnostics.push(unknown_group(groups, name).at(location)),
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

/// Every group the config names, where, and the type a lookup table's groups must have (empty
/// for groups of rules and overrides, which may be of any type).
fn named_groups(config: &Config) -> Vec<(&str, &Origin, &'static str)> {
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
    named
}

/// A group the network does not have, with the names it may have meant.
fn unknown_group(groups: &Groups, name: &str) -> Diagnostic {
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
        "create the group in Speakap first, or correct the name (names match exactly)".to_string()
    } else {
        format!(
            "did you mean {}? names match exactly",
            near.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    Diagnostic::error(
        "unknown-group",
        format!("group \"{name}\" does not exist in the network"),
    )
    .hint(hint)
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

/// [`plan`] with an empty `network_fingerprint`: the phases of [`phases`], in order.
fn plan_all_but_fingerprint(input: &PlanInput) -> Result<Plan, Vec<Diagnostic>> {
    let groups = Groups::new(&input.observed.groups);
    let warnings = group_warnings(input, &groups)?;
    let index = phases::Index::new(input);
    let address_moves = AddressMoves::new(
        index.known(input.resolution),
        &index.by_email,
        &index.by_other_email,
    );
    let network = Network {
        groups: &groups,
        ledger: input.ledger,
        address_moves: &address_moves,
    };
    let policy = &input.config.sync.policy;
    let phases = phases::Phases {
        input,
        index: &index,
        network: &network,
        policy,
        today: input.today,
        grace: jiff::Span::new().days(i64::from(policy.offboarding.grace_days)),
    };
    let mut draft = phases::Draft::new(input, warnings);
    phases.warn_of_unmatched_exclusions(&mut draft);
    phases.known_accounts(&mut draft);
    phases.joiners(&mut draft);
    phases.leavers(&mut draft);
    Ok(phases.finish(draft))
}

/// The groups the config names must exist once each, with the right type; other findings are
/// warnings, beside the config's and resolve's.
fn group_warnings(input: &PlanInput, groups: &Groups) -> Result<Vec<String>, Vec<Diagnostic>> {
    let group_diagnostics = check_groups(input.config, groups);
    if group_diagnostics
        .iter()
        .any(|d| d.severity == crate::diag::Severity::Error)
    {
        return Err(group_diagnostics);
    }
    let mut warnings: Vec<String> = input
        .config
        .warnings
        .iter()
        .chain(&group_diagnostics)
        .map(describe)
        .collect();
    warnings.extend(input.resolution.warnings.iter().cloned());
    Ok(warnings)
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
        contracts: desired.contract_lines(),
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
    let mut changes = Vec::new();
    if let Some(from) = link {
        changes.push(Change::SetXid {
            from,
            to: desired.xid().to_string(),
        });
    }
    let kept_by = network.address_moves.blocked_by.get(&existing.eid);
    profile_changes(desired, existing, kept_by, warnings, &mut changes);
    membership_changes(desired, existing, network, &mut changes);
    changes.extend(primary_business_unit(
        desired,
        Some(existing),
        network.groups,
    ));
    changes.extend(network_role_change(desired, existing, network.ledger));
    changes
}

/// The profile fields that differ. An address another account keeps (`kept_by`) is not taken
/// from it: a warning says so instead.
fn profile_changes(
    desired: &DesiredUser,
    existing: &ObservedUser,
    kept_by: Option<&String>,
    warnings: &mut Vec<String>,
    changes: &mut Vec<Change>,
) {
    for (field, value) in desired.profile() {
        let current = existing.get(field);
        let same = if field == ProfileField::Email {
            current.eq_ignore_ascii_case(value)
        } else {
            current == value
        };
        if let (false, ProfileField::Email, Some(owner)) = (same, field, kept_by) {
            warnings.push(format!(
                "XID {}: email address not changed to {}: account {owner} keeps it; resolve the duplicate in Speakap",
                desired.xid(),
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
}

/// Memberships and local admin rights to add, and those to take away: the sync's own that are
/// no longer desired, or those an override withdraws.
fn membership_changes(
    desired: &DesiredUser,
    existing: &ObservedUser,
    network: &Network,
    changes: &mut Vec<Change>,
) {
    let Network { groups, ledger, .. } = network;
    let xid = desired.xid();
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
}

/// Network admin granted when desired; taken away only when the sync granted it.
fn network_role_change(
    desired: &DesiredUser,
    existing: &ObservedUser,
    ledger: &Ledger,
) -> Option<Change> {
    let wants_admin = desired.wants_network_admin();
    let is_admin = existing.role() == "admin";
    let source = || desired.role().map(|r| r.from.clone());
    if wants_admin && !is_admin {
        Some(Change::SetNetworkRole {
            from: existing.role().to_string(),
            to: NetworkRole::Admin,
            source: source(),
        })
    } else if !wants_admin && is_admin && ledger.granted_network_admin(desired.xid()) {
        Some(Change::SetNetworkRole {
            from: "admin".into(),
            to: NetworkRole::Member,
            source: source(),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
