//! What resolving gives: a person as HR and the config want them, each value with where it
//! comes from.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use serde::Serialize;

use crate::config::{NetworkRole, Origin};
use crate::fields::ProfileField;

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

/// A person as HR and the config want them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredUser {
    pub xid: String,
    /// The HR line (or position) this person was read from.
    pub line: u64,
    /// The value of each profile field, in [`ProfileField::ALL`] order, from its HR column or
    /// from an override; `None` when the field is not managed (neither sets it).
    pub profile: [Option<Sourced<String>>; 6],
    /// Single-sign-on login name, for SSO accounts.
    pub upn: Option<String>,
    /// First working day, when the HR record has one.
    pub start_date: Option<Date>,
    pub memberships: Memberships,
    /// The first business unit of the record (or the next one an override keeps).
    pub primary_business_unit: Option<Sourced<Arc<str>>>,
    pub role: Option<Sourced<NetworkRole>>,
    /// An override asks to recreate the account even though it was deleted by hand.
    pub restore: bool,
    /// Groups an override takes away, even when they were granted by hand (a deliberate,
    /// reasoned instruction about this person), and why.
    pub withdrawn: BTreeMap<String, Provenance>,
}

impl DesiredUser {
    pub fn xid(&self) -> &str {
        &self.xid
    }

    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn start_date(&self) -> Option<Date> {
        self.start_date
    }

    pub fn upn(&self) -> Option<&str> {
        self.upn.as_deref()
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

    pub fn restore(&self) -> bool {
        self.restore
    }

    /// Why `group` is taken away from this person by an override, if it is.
    pub fn withdrawn(&self, group: &str) -> Option<&Provenance> {
        self.withdrawn.get(group)
    }

    /// The value of `field`; `None` when the field is not managed.
    pub fn get(&self, field: ProfileField) -> Option<&str> {
        let value = self.profile[field.index()].as_ref()?;
        Some(&value.value)
    }

    /// Where the value of `field` comes from; `None` when the field is not managed.
    pub fn source(&self, field: ProfileField) -> Option<Provenance> {
        let value = self.profile[field.index()].as_ref()?;
        Some(value.from.clone())
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
            "upn": self.upn,
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
                .unwrap_or(&self.xid)
                .to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// The desired users in XID order (XIDs are unique: duplicates are skipped).
#[derive(Debug, Default)]
pub struct DesiredUsers(Vec<DesiredUser>);

impl DesiredUsers {
    pub(super) fn new(mut users: Vec<DesiredUser>) -> DesiredUsers {
        users.sort_unstable_by(|a, b| a.xid.cmp(&b.xid));
        DesiredUsers(users)
    }

    pub fn get(&self, xid: &str) -> Option<&DesiredUser> {
        let at = self.0.binary_search_by(|u| u.xid.as_str().cmp(xid)).ok()?;
        Some(&self.0[at])
    }

    pub fn contains_key(&self, xid: &str) -> bool {
        self.get(xid).is_some()
    }

    /// The users in XID order.
    pub fn values(&self) -> std::slice::Iter<'_, DesiredUser> {
        self.0.iter()
    }

    /// The XIDs in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|u| u.xid.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
