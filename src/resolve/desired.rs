//! What resolving gives: a person as HR and the config want them, each value with where it
//! comes from.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use jiff::civil::Date;
use serde::Serialize;

use crate::config::{NetworkRole, Origin};
use crate::fields::ProfileField;
use crate::hr::Record;

/// Where a desired value comes from. Cheap to clone: the shared parts are reference counted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, Hash)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Provenance {
    /// An HR column on a line of the HR file.
    Hr { column: Arc<str>, line: u64 },
    /// A lookup table entry (`business_units` or `departments`), or its default.
    Mapping(Arc<MappingSource>),
    /// A rule in MappingRules (`groups`, `roles`, `local_admins`).
    Rule { list: RuleList, at: Origin },
    /// An override.
    Override { at: Origin },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, Hash)]
pub struct MappingSource {
    pub table: String,
    pub code: String,
    pub at: Origin,
}

/// The rule lists of MappingRules.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleList {
    Groups,
    Roles,
    LocalAdmins,
}

impl RuleList {
    pub fn name(self) -> &'static str {
        match self {
            RuleList::Groups => "groups",
            RuleList::Roles => "roles",
            RuleList::LocalAdmins => "local_admins",
        }
    }
}

impl Provenance {
    /// The source in words, an HR position as the source names it (`line 4` of a file,
    /// `row 4` of a sheet, `page 2 row 5` of a connector).
    pub fn describe(&self, locator: &crate::hr::Locator) -> String {
        match self {
            Provenance::Hr { column, line } => {
                format!("HR column \"{column}\", {}", locator.short(*line))
            }
            Provenance::Mapping(m) => format!("{} code {} ({})", m.table, m.code, m.at),
            Provenance::Rule { list, at } => format!("{} rule ({at})", list.name()),
            Provenance::Override { at } => format!("override ({at})"),
        }
    }
}

impl std::fmt::Display for Provenance {
    /// As [`Provenance::describe`] for a text file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(&crate::hr::Locator::File))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub from: Provenance,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum MembershipKind {
    BusinessUnit,
    Department,
    Group,
}

impl MembershipKind {
    pub fn label(self) -> &'static str {
        match self {
            MembershipKind::BusinessUnit => "business unit",
            MembershipKind::Department => "department",
            MembershipKind::Group => "group",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct DesiredMembership {
    pub kind: MembershipKind,
    pub from: Provenance,
    /// Local admin of this group, and why.
    pub admin: Option<Provenance>,
}

/// A person's memberships by group name, in reading order: business units, departments, then
/// groups, by name within each. People with the same memberships for the same reasons (most of
/// a store) share one list ([`super::rules::SharedLists`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Memberships(pub(super) Arc<[(Arc<str>, DesiredMembership)]>);

impl Memberships {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DesiredMembership)> {
        self.0.iter().map(|(name, m)| (&**name, m))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| &**name)
    }

    /// Whether one of the groups is a business unit.
    pub fn has_business_unit(&self) -> bool {
        self.0
            .iter()
            .any(|(_, m)| m.kind == MembershipKind::BusinessUnit)
    }

    pub fn get(&self, name: &str) -> Option<&DesiredMembership> {
        self.0.iter().find(|(n, _)| **n == *name).map(|(_, m)| m)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a person's values are in their HR row, and the HR column of each profile field: one
/// for everyone read with the same layout.
#[derive(Debug, PartialEq, Eq)]
pub struct RowFields {
    pub xid: usize,
    pub upn: Option<usize>,
    /// The slot and column of each profile field, in [`ProfileField::ALL`] order (`None`: no
    /// column).
    pub profile: [Option<(usize, Arc<str>)>; 6],
}

/// A person as HR and the config want them. Their XID, profile values and SSO login are read
/// from their HR row, which they hold rather than copy: copies of a million people's values
/// more than doubled the memory and time of resolving (BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredUser {
    pub record: Arc<Record>,
    pub fields: Arc<RowFields>,
    /// First working day, when the HR record has one.
    pub start_date: Option<Date>,
    pub memberships: Memberships,
    /// The first business unit of the record (or the next one an override keeps).
    pub primary_business_unit: Option<Sourced<Arc<str>>>,
    pub role: Option<Sourced<NetworkRole>>,
    /// The override in effect for this person, if any (boxed: few people have one).
    pub overridden: Option<Box<Overridden>>,
    /// Every HR row of a person merged from several contracts (`policy.duplicate_xids: merge`),
    /// in file order; empty (and not allocated) for a person of one row.
    pub contracts: Box<[ContractRow]>,
}

/// What an override in effect did to a person beyond their groups and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overridden {
    pub at: Origin,
    /// The profile values it sets, in [`ProfileField::ALL`] order.
    pub values: [Option<Box<str>>; 6],
    /// Recreate the account even though it was deleted by hand.
    pub restore: bool,
    /// Groups it takes away, even when they were granted by hand (a deliberate, reasoned
    /// instruction about this person).
    pub withdrawn: BTreeMap<String, Provenance>,
}

/// One contract (HR row) of a merged person, and how it counts today.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractRow {
    pub line: u64,
    pub status: ContractStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContractStatus {
    /// The primary contract: profile, group rules and role rules come from it. Chosen by the
    /// `policy.primary_contract` matcher written at `chosen_by`, or else as the earliest.
    Primary { chosen_by: Option<Origin> },
    /// Running: its business units and departments count.
    Active,
    /// Starts on this day; until then it grants nothing.
    Starts(Date),
    /// Ended on this day: it grants nothing any more.
    Ended(Date),
}

impl ContractStatus {
    pub fn describe(&self) -> String {
        match self {
            ContractStatus::Primary {
                chosen_by: Some(at),
            } => {
                format!("primary (policy.primary_contract, {at})")
            }
            ContractStatus::Primary { chosen_by: None } => {
                "primary (the earliest start date; the first row of equals)".into()
            }
            ContractStatus::Active => "active".into(),
            ContractStatus::Starts(on) => format!("starts {on}, counts from then"),
            ContractStatus::Ended(on) => format!("ended {on}"),
        }
    }
}

impl DesiredUser {
    /// The lines of a merged person's contracts; empty for a person of one row.
    pub fn contract_lines(&self) -> Vec<u64> {
        self.contracts.iter().map(|c| c.line).collect()
    }

    pub fn xid(&self) -> &str {
        self.record.value(self.fields.xid)
    }

    /// The HR line (or position) this person was read from.
    pub fn line(&self) -> u64 {
        self.record.line
    }

    pub fn start_date(&self) -> Option<Date> {
        self.start_date
    }

    /// Single-sign-on login name, for SSO accounts.
    pub fn upn(&self) -> Option<&str> {
        Some(self.record.value(self.fields.upn?)).filter(|upn| !upn.is_empty())
    }

    pub fn memberships(&self) -> &Memberships {
        &self.memberships
    }

    pub fn role(&self) -> Option<&Sourced<NetworkRole>> {
        self.role.as_ref()
    }

    pub fn primary_business_unit(&self) -> Option<&Sourced<Arc<str>>> {
        self.primary_business_unit.as_ref()
    }

    /// HR and the rules want this person to be a network admin.
    pub fn wants_network_admin(&self) -> bool {
        self.role().is_some_and(|r| r.value == NetworkRole::Admin)
    }

    /// An override asks to recreate the account even though it was deleted by hand.
    pub fn restore(&self) -> bool {
        self.overridden.as_ref().is_some_and(|o| o.restore)
    }

    /// Why `group` is taken away from this person by an override, if it is.
    pub fn withdrawn(&self, group: &str) -> Option<&Provenance> {
        self.overridden.as_ref()?.withdrawn.get(group)
    }

    /// The value an override in effect sets for `field`, if it sets one.
    fn overridden(&self, field: ProfileField) -> Option<(&str, &Origin)> {
        let o = self.overridden.as_ref()?;
        Some((o.values[field.index()].as_deref()?, &o.at))
    }

    /// The value of `field`: the override's when it sets it, else the HR column's; `None`
    /// when the field is not managed (neither sets it).
    pub fn get(&self, field: ProfileField) -> Option<&str> {
        if let Some((value, _)) = self.overridden(field) {
            return Some(value);
        }
        let (slot, _) = self.fields.profile[field.index()].as_ref()?;
        Some(self.record.value(*slot))
    }

    /// Where the value of `field` comes from; `None` when the field is not managed.
    pub fn source(&self, field: ProfileField) -> Option<Provenance> {
        if let Some((_, at)) = self.overridden(field) {
            return Some(Provenance::Override { at: at.clone() });
        }
        let (_, column) = self.fields.profile[field.index()].as_ref()?;
        Some(Provenance::Hr {
            column: column.clone(),
            line: self.record.line,
        })
    }

    /// The managed profile fields and their values, in [`ProfileField::ALL`] order.
    pub fn profile(&self) -> impl Iterator<Item = (ProfileField, &str)> {
        ProfileField::ALL
            .into_iter()
            .filter_map(|field| Some((field, self.get(field)?)))
    }

    /// Identifies what HR and the rules say about this person (not where it was written), so
    /// the ledger can tell whether anything changed since the last apply.
    pub fn digest(&self) -> String {
        let outcome = serde_json::json!({
            "profile": self.profile().map(|(f, v)| (f.name(), v)).collect::<BTreeMap<_, _>>(),
            "memberships": self.memberships.iter().map(|(g, m)| (g, m.admin.is_some())).collect::<BTreeMap<_, _>>(),
            "role": self.role.as_ref().map(|r| r.value),
            "primary_business_unit": self.primary_business_unit.as_ref().map(|p| &p.value),
            "start_date": self.start_date,
            "upn": self.upn(),
        });
        crate::digest::sha256_hex(outcome.to_string())
    }

    pub fn display_name(&self) -> String {
        let parts = [
            ProfileField::FirstName,
            ProfileField::Infix,
            ProfileField::LastName,
        ]
        .into_iter()
        .filter_map(|f| self.get(f))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>();
        if parts.is_empty() {
            self.get(ProfileField::Email)
                .unwrap_or(self.xid())
                .to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// The desired users (XIDs are unique: duplicates are skipped), in record order with their
/// positions in XID order beside them, and found by XID through a hash table of positions: a
/// binary search over a million people reads twenty of them from all over memory, and the
/// plan looks up each account's XID.
#[derive(Debug, Default)]
pub struct DesiredUsers {
    users: Vec<DesiredUser>,
    by_xid: Vec<u32>,
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl DesiredUsers {
    /// The users, with `by_xid` their positions in XID order.
    pub(super) fn new(users: Vec<DesiredUser>, by_xid: Vec<u32>) -> DesiredUsers {
        debug_assert_eq!(users.len(), by_xid.len());
        debug_assert!(
            (by_xid.windows(2)).all(|w| users[w[0] as usize].xid() < users[w[1] as usize].xid())
        );
        let hasher = foldhash::fast::RandomState::default();
        let hash = |user: &DesiredUser| hasher.hash_one(user.xid());
        let mut index = hashbrown::HashTable::with_capacity(users.len());
        for (position, user) in (0..).zip(&users) {
            index.insert_unique(hash(user), position, |&p: &u32| hash(&users[p as usize]));
        }
        DesiredUsers {
            users,
            by_xid,
            index,
            hasher,
        }
    }

    pub fn get(&self, xid: &str) -> Option<&DesiredUser> {
        let hash = self.hasher.hash_one(xid);
        let &position = (self.index).find(hash, |&p| self.users[p as usize].xid() == xid)?;
        Some(&self.users[position as usize])
    }

    pub fn contains_key(&self, xid: &str) -> bool {
        self.get(xid).is_some()
    }

    /// The users in XID order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &DesiredUser> {
        self.by_xid.iter().map(|&u| &self.users[u as usize])
    }

    /// The XIDs in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values().map(DesiredUser::xid)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}
