//! `resolve`: HR records + config → the desired users, each value with its provenance, plus the
//! records that could not be processed. Pure: no I/O, the date is a parameter.
//!
//! Built for million-row exports: provenance is shared (`Arc`) instead of copied per value, a
//! person's profile is one allocation, and large records are resolved on all cores in chunks
//! whose results are merged in record order, so the outcome never depends on the chunking.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use jiff::civil::Date;
use serde::Serialize;

use crate::config::{Config, NetworkRole, Origin, Override, ProfileValues, UnknownCode};
use crate::fields::{FieldName, Packed};
pub use crate::fields::{PackedProfile, ProfileField, parse_date};
use crate::hr::{
    KeyCompare, KeyHashes, Layout, Record, RecordChunk, Records, Snapshot, UnreadText, case_folded,
};
use crate::redact::mask_email;
use crate::rules::{CompiledMatcher, split_values};

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

type MembershipEntry = (Arc<str>, DesiredMembership);

/// A person's memberships by group name, in reading order: business units, departments, then
/// groups, by name within each. People with the same memberships for the same reasons (most of
/// a store) share one list.
#[derive(Clone, Debug)]
pub struct Memberships(Arc<[MembershipEntry]>);

impl Memberships {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DesiredMembership)> {
        self.0.iter().map(|(name, m)| (&**name, m))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| &**name)
    }

    pub fn get(&self, name: &str) -> Option<&DesiredMembership> {
        self.position(name).map(|i| &self.0[i].1)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| **n == *name)
    }
}

/// Memberships while a person is resolved: a short list kept in reading order.
#[derive(Default)]
struct MembershipList(Vec<MembershipEntry>);

impl MembershipList {
    fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| **n == *name)
    }

    /// Adds a membership unless the group is already there (the first reason wins).
    fn add(&mut self, name: &Arc<str>, membership: DesiredMembership) {
        if !self.contains(name) {
            self.insert_in_order(name.clone(), membership);
        }
    }

    /// Sets a membership, replacing any earlier reason for the same group.
    fn replace(&mut self, name: Arc<str>, membership: DesiredMembership) {
        self.remove(&name);
        self.insert_in_order(name, membership);
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.position(name) {
            self.0.remove(i);
        }
    }

    fn insert_in_order(&mut self, name: Arc<str>, membership: DesiredMembership) {
        let key = (membership.kind, &*name);
        let at = self.0.partition_point(|(n, m)| (m.kind, &**n) < key);
        self.0.insert(at, (name, membership));
    }

    fn business_units_mut(&mut self) -> impl Iterator<Item = &mut DesiredMembership> {
        self.0
            .iter_mut()
            .map(|(_, m)| m)
            .filter(|m| m.kind == MembershipKind::BusinessUnit)
    }
}

/// The value an override sets for `field`, if it sets one (never the address: that is HR's).
fn overridden(field: ProfileField, set: &ProfileValues) -> Option<&str> {
    match field {
        ProfileField::Email => None,
        ProfileField::FirstName => set.first_name.as_deref(),
        ProfileField::Infix => set.infix.as_deref(),
        ProfileField::LastName => set.last_name.as_deref(),
        ProfileField::JobTitle => set.job_title.as_deref(),
        ProfileField::Phone => set.phone.as_deref(),
    }
}

/// The HR column of each profile field, in [`ProfileField::ALL`] order; shared by all people.
type ProfileColumns = [Option<Arc<str>>; 6];

/// Where the values of a person are in their HR row; shared by everyone of one layout.
#[derive(Debug)]
struct ProfileSlots {
    xid: usize,
    upn: Option<usize>,
    /// The slot of each profile field, in [`ProfileField::ALL`] order.
    fields: [Option<usize>; 6],
    /// The HR column of each profile field.
    columns: ProfileColumns,
}

/// What an override in effect does to a person beyond their values, groups and role.
#[derive(Clone, Debug)]
struct OverrideEffect {
    at: Origin,
    /// Groups it takes away, even when they were granted by hand (a deliberate, reasoned
    /// instruction about this person).
    withdrawn: BTreeMap<String, Provenance>,
    /// Recreate the account even though it was deleted by hand.
    restore: bool,
    /// The profile values it sets, in [`ProfileField::ALL`] order (only the person's overridden
    /// fields are read).
    set: Packed<6>,
}

/// What the lookup tables and rules give a person, and where their profile values are in their
/// row. People with the same inputs to the rules (most of a store) share one.
#[derive(Debug)]
struct Assigned {
    slots: Arc<ProfileSlots>,
    memberships: Memberships,
    /// The first business unit of the record: the person's primary one.
    primary_business_unit: Option<Sourced<Arc<str>>>,
    role: Option<Sourced<NetworkRole>>,
}

/// A person as HR and the config want them. Their XID, profile values and SSO login are read
/// from their HR row itself (kept alive by the reference to its chunk), not copied: a million
/// people then cost no allocation of their own. A profile value comes from the HR row's column,
/// or from an override when the override sets it.
#[derive(Clone)]
pub struct DesiredUser {
    chunk: Arc<RecordChunk>,
    /// Shared with everyone assigned the same, unless an override changes it.
    assigned: Arc<Assigned>,
    /// The override in effect, if any: boxed, as it is for few people.
    overridden: Option<Box<OverrideEffect>>,
    /// First working day, when `flags` has [`HAS_START_DATE`].
    start: Date,
    row: u16,
    /// Bit `i` (of the six profile fields): profile field `i` comes from the override; and
    /// [`HAS_START_DATE`].
    flags: u8,
}

/// The HR record has a first working day.
const HAS_START_DATE: u8 = 1 << 7;

// 32 bytes a person (a million of them are fresh memory this VM is slow to hand out), with a
// bit of `flags` for each profile field.
const _: () = assert!(std::mem::size_of::<DesiredUser>() <= 32 && ProfileField::ALL.len() < 7);

impl std::fmt::Debug for DesiredUser {
    /// The person's values, not the whole chunk of rows they are read from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredUser")
            .field("line", &self.line())
            .field("xid", &self.xid())
            .field("profile", &self.profile().collect::<Vec<_>>())
            .field("upn", &self.upn())
            .field("overridden_fields", &(self.flags & !HAS_START_DATE))
            .field("assigned", &self.assigned)
            .field("start_date", &self.start_date())
            .field("overridden", &self.overridden)
            .finish()
    }
}

impl DesiredUser {
    /// First working day, when the HR record has one.
    pub fn start_date(&self) -> Option<Date> {
        (self.flags & HAS_START_DATE != 0).then_some(self.start)
    }

    /// The HR line (or position) this person was read from.
    pub fn line(&self) -> u64 {
        self.chunk.line(self.row as usize)
    }

    pub fn memberships(&self) -> &Memberships {
        &self.assigned.memberships
    }

    pub fn role(&self) -> Option<&Sourced<NetworkRole>> {
        self.assigned.role.as_ref()
    }

    /// HR and the rules want this person to be a network admin.
    pub fn wants_network_admin(&self) -> bool {
        self.role().is_some_and(|r| r.value == NetworkRole::Admin)
    }

    /// The first business unit of the record (or the next one an override keeps).
    pub fn primary_business_unit(&self) -> Option<&Sourced<Arc<str>>> {
        self.assigned.primary_business_unit.as_ref()
    }

    pub fn xid(&self) -> &str {
        self.value(self.assigned.slots.xid)
    }

    /// Single-sign-on login name, for SSO accounts.
    pub fn upn(&self) -> Option<&str> {
        let slot = self.assigned.slots.upn?;
        Some(self.value(slot)).filter(|upn| !upn.is_empty())
    }

    fn value(&self, slot: usize) -> &str {
        self.chunk.value(self.row as usize, slot)
    }

    /// An override asks to recreate the account even though it was deleted by hand.
    pub fn restore(&self) -> bool {
        self.overridden.as_ref().is_some_and(|o| o.restore)
    }

    /// Why `group` is taken away from this person by an override, if it is.
    pub fn withdrawn(&self, group: &str) -> Option<&Provenance> {
        self.overridden.as_ref()?.withdrawn.get(group)
    }

    /// Where the value of `field` comes from; `None` when the field is not managed.
    pub fn source(&self, field: ProfileField) -> Option<Provenance> {
        let i = field.index();
        if self.flags & (1 << i) != 0 {
            let at = self.overridden.as_ref()?.at.clone();
            return Some(Provenance::Override { at });
        }
        let column = self.assigned.slots.columns[i].clone()?;
        Some(Provenance::Hr {
            column,
            line: self.line(),
        })
    }

    /// Identifies what HR and the rules say about this person (not where it was written), so
    /// the ledger can tell whether anything changed since the last apply.
    pub fn digest(&self) -> String {
        let outcome = serde_json::json!({
            "profile": self.profile().map(|(f, v)| (f.name(), v)).collect::<BTreeMap<_, _>>(),
            "memberships": self.memberships().iter().map(|(g, m)| (g, m.admin.is_some())).collect::<BTreeMap<_, _>>(),
            "role": self.role().map(|r| r.value),
            "primary_business_unit": self.primary_business_unit().map(|p| &p.value),
            "start_date": self.start_date(),
            "upn": self.upn(),
        });
        crate::digest::sha256_hex(outcome.to_string())
    }

    /// The value of `field`: the override's when it sets it, else the HR column's; `None`
    /// when the field is not managed (neither sets it).
    pub fn get(&self, field: ProfileField) -> Option<&str> {
        let i = field.index();
        match (&self.overridden, self.assigned.slots.fields[i]) {
            (Some(o), _) if self.flags & (1 << i) != 0 => Some(o.set.get(i)),
            (_, Some(slot)) => Some(self.value(slot)),
            (_, None) => None,
        }
    }

    /// The managed profile fields and their values, in [`ProfileField::ALL`] order.
    pub fn profile(&self) -> impl Iterator<Item = (ProfileField, &str)> {
        ProfileField::ALL
            .into_iter()
            .filter_map(|field| Some((field, self.get(field)?)))
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

/// A record that could not be processed: reported, skipped, and its account left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkippedRecord {
    pub line: u64,
    pub xid: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Excluded {
    pub xid: String,
    pub reason: String,
    pub at: Origin,
}

/// The desired users, stored where they were resolved (per part of the records, in record
/// order: a million of them are never moved) with an index in XID order for iteration, and the
/// table of rows by XID that found repeated XIDs for lookups. XIDs are unique: duplicates are
/// skipped.
#[derive(Debug, Default)]
pub struct DesiredUsers {
    parts: Vec<PartUsers>,
    /// (part, position) of each user, in XID order.
    by_xid: Vec<(u32, u32)>,
    /// The first row of each XID: a lookup costs one probe instead of a binary search through a
    /// million strings (the plan looks up every account).
    rows_by_xid: FirstRows,
}

/// A row that resolved to no desired user (in [`PartUsers::of_row`]).
const NO_USER: u32 = u32::MAX;

/// The desired users of one part of the records (consecutive rows, resolved on one thread), in
/// record order.
#[derive(Debug, Default)]
struct PartUsers {
    users: Vec<DesiredUser>,
    /// The part's first row, counted over all chunks.
    first_row: usize,
    /// For each row of the part, the position in `users` of the user it resolved to, or
    /// [`NO_USER`].
    of_row: Vec<u32>,
    /// The first eight bytes of each user's XID with the user's position, in XID order (sorted
    /// on the part's own thread; [`DesiredUsers::new`] merges the parts).
    in_xid_order: Vec<(u64, u32)>,
}

impl PartUsers {
    /// Puts `in_xid_order` in XID order: by the first eight bytes first, so that most
    /// comparisons never look at the users themselves. XIDs are unique, so an unstable sort
    /// gives the one order there is.
    fn sort_by_xid(&mut self) {
        let users = &self.users;
        let xid = |u: u32| users[u as usize].xid();
        self.in_xid_order
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| xid(a.1).cmp(xid(b.1))));
    }
}

impl DesiredUsers {
    /// Merges the parts' XID orders (each sorted already) into one.
    fn new(mut parts: Vec<PartUsers>, rows_by_xid: FirstRows) -> Self {
        let orders: Vec<Vec<(u64, u32)>> = parts
            .iter_mut()
            .map(|part| std::mem::take(&mut part.in_xid_order))
            .collect();
        let by_xid = match orders.as_slice() {
            [a, b] => merge_two(
                a,
                b,
                |u| parts[0].users[u as usize].xid(),
                |u| parts[1].users[u as usize].xid(),
            ),
            _ => merge_many(&orders, |p, u| parts[p].users[u as usize].xid()),
        };
        DesiredUsers {
            parts,
            by_xid,
            rows_by_xid,
        }
    }

    fn at(&self, (part, position): (u32, u32)) -> &DesiredUser {
        &self.parts[part as usize].users[position as usize]
    }

    pub fn get(&self, xid: &str) -> Option<&DesiredUser> {
        let row = self.rows_by_xid.first(xid)?;
        let part = &self.parts[self.parts.partition_point(|p| p.first_row <= row) - 1];
        let position = part.of_row[row - part.first_row];
        (position != NO_USER).then(|| &part.users[position as usize])
    }

    pub fn contains_key(&self, xid: &str) -> bool {
        self.get(xid).is_some()
    }

    /// The users in XID order.
    pub fn values(&self) -> impl Iterator<Item = &DesiredUser> {
        self.by_xid.iter().map(|&i| self.at(i))
    }

    /// The XIDs in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values().map(DesiredUser::xid)
    }

    pub fn len(&self) -> usize {
        self.by_xid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_xid.is_empty()
    }
}

/// The two parts' XID orders as one, as (part, position): one pass, in which the first eight
/// bytes of the XIDs mostly decide.
fn merge_two<'u>(
    a: &[(u64, u32)],
    b: &[(u64, u32)],
    xid_a: impl Fn(u32) -> &'u str,
    xid_b: impl Fn(u32) -> &'u str,
) -> Vec<(u32, u32)> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&(prefix_a, u)), Some(&(prefix_b, v))) = (a.get(i), b.get(j)) {
        let a_first = prefix_a
            .cmp(&prefix_b)
            .then_with(|| xid_a(u).cmp(xid_b(v)))
            .is_lt();
        if a_first {
            merged.push((0, u));
            i += 1;
        } else {
            merged.push((1, v));
            j += 1;
        }
    }
    merged.extend(a[i..].iter().map(|&(_, u)| (0, u)));
    merged.extend(b[j..].iter().map(|&(_, v)| (1, v)));
    merged
}

/// The parts' XID orders as one, as (part, position), taking the smallest of the parts' next
/// users each time.
fn merge_many<'u>(
    orders: &[Vec<(u64, u32)>],
    xid: impl Fn(usize, u32) -> &'u str,
) -> Vec<(u32, u32)> {
    let mut merged = Vec::with_capacity(orders.iter().map(Vec::len).sum());
    let mut next = vec![0usize; orders.len()];
    loop {
        let mut smallest: Option<(usize, (u64, u32))> = None;
        for (p, order) in orders.iter().enumerate() {
            let Some(&(prefix, u)) = order.get(next[p]) else {
                continue;
            };
            let before = match smallest {
                None => true,
                Some((q, (other, v))) => prefix
                    .cmp(&other)
                    .then_with(|| xid(p, u).cmp(xid(q, v)))
                    .is_lt(),
            };
            if before {
                smallest = Some((p, (prefix, u)));
            }
        }
        let Some((p, (_, u))) = smallest else {
            return merged;
        };
        next[p] += 1;
        merged.push((u32::try_from(p).expect("fewer than 4 billion parts"), u));
    }
}

#[derive(Debug, Default)]
pub struct Resolution {
    pub desired: DesiredUsers,
    pub skipped: Vec<SkippedRecord>,
    /// XIDs excluded by an exclusion that occur in the HR record.
    pub excluded: BTreeMap<String, Excluded>,
    /// XIDs with an input problem: their accounts must not be touched, least of all offboarded.
    pub held: BTreeSet<String>,
    /// The words (case-folded) of HR input that was not read as a person: records with an input
    /// problem and the file's [`UnreadText`], with where each was first seen. An account whose
    /// XID or email address is among them is not offboarded: the problem may be its row's XID,
    /// or a quote not closed where it should be may have hidden its row.
    pub unread_words: HashMap<String, UnreadAt>,
    /// XIDs whose end date has passed: leavers, with that date.
    pub ended: BTreeMap<String, Date>,
    pub warnings: Vec<String>,
    pub record_count: usize,
}

/// The longest HR value read (names, job titles, addresses and codes are far shorter).
const MAX_VALUE_CHARS: usize = 255;

/// The longest employee ID read: as long as any value.
const MAX_XID_CHARS: usize = MAX_VALUE_CHARS;

/// The longest email address there is: a path of 256 octets, brackets included (RFC 5321, 4.5.3.1.3).
const MAX_EMAIL_CHARS: usize = 254;

/// Why an identifier cannot be used, if it cannot: it holds a character that breaks or disguises
/// the line it is shown on (a line break from a quoted CSV value, a bidirectional override), or
/// whitespace inside it when `no_whitespace` (an ID is one word; addresses have their own check),
/// or it is longer than `max` characters. Its value is not repeated: it is what cannot be shown.
fn unusable_identifier(value: &str, max: usize, no_whitespace: bool) -> Option<String> {
    // The common case: short, printable ASCII without spaces.
    if value.len() <= max && value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return None;
    }
    let found = value
        .chars()
        .enumerate()
        .find(|&(_, c)| crate::text::disguises_the_line(c) || (no_whitespace && c.is_whitespace()));
    if let Some((at, c)) = found {
        let what = match c {
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => "a line break",
            c if c.is_whitespace() => "a space",
            c if c.is_control() => "a control character",
            _ => "a bidirectional text control",
        };
        return Some(format!(
            "holds {what} (U+{:04X}, character {}); fix the value in the HR export",
            u32::from(c),
            at + 1
        ));
    }
    let chars = value.chars().count();
    (chars > max).then(|| {
        format!("is {chars} characters long; at most {max} are read (a column run together with the next?)")
    })
}

/// Below this many records one thread resolves them all; threads would cost more than they save.
const PARALLEL_FROM: usize = 20_000;

/// Turns HR records into desired users under the config, as of `today`.
pub fn resolve(config: &Config, snapshot: &Snapshot, today: Date) -> Resolution {
    let workers = if snapshot.records.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    };
    resolve_on(config, snapshot, today, workers)
}

/// [`resolve`] on `workers` threads: the same outcome for any number of them.
fn resolve_on(config: &Config, snapshot: &Snapshot, today: Date, workers: usize) -> Resolution {
    let resolver = Resolver::new(config, &snapshot.layout, today);
    let records = &snapshot.records;
    let workers = workers.max(1);

    let (xid_slot, email_slot) = (resolver.xid_slot, resolver.email_slot);
    let ((repeated_xids, rows_by_xid), (repeated_emails, _)) = both(
        workers > 1,
        || repeated(records, xid_slot, KeyCompare::Exact),
        || repeated(records, email_slot, KeyCompare::CaseFolded),
    );
    let repeats = Repeats {
        xids: repeated_xids,
        emails: repeated_emails,
    };

    let chunk = records.len().div_ceil(workers).max(1);
    let parts: Vec<Part> = if workers > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..records.len())
                .step_by(chunk)
                .map(|start| {
                    let rows = start..(start + chunk).min(records.len());
                    let repeats = &repeats;
                    // Each thread has its own compiled config, so the reference counts of the
                    // provenance it hands out live in its own core's cache.
                    let layout = &snapshot.layout;
                    scope.spawn(move || {
                        Resolver::new(config, layout, today).resolve_all(records, rows, repeats)
                    })
                })
                .collect();
            handles.into_iter().map(joined).collect()
        })
    } else {
        vec![resolver.resolve_all(records, 0..records.len(), &repeats)]
    };

    let mut resolution = Resolution {
        record_count: records.len(),
        ..Resolution::default()
    };
    let mut ignored_codes: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut users = Vec::with_capacity(parts.len());
    let mut unread_in_parts = Vec::new();
    for part in parts {
        users.push(part.users);
        resolution.skipped.extend(part.skipped);
        resolution.excluded.extend(part.excluded);
        resolution.ended.extend(part.ended);
        resolution.warnings.extend(part.warnings);
        unread_in_parts.extend(part.unread_words);
        for (key, count) in part.ignored_codes {
            *ignored_codes.entry(key).or_default() += count;
        }
    }
    resolution.desired = DesiredUsers::new(users, rows_by_xid);
    resolution.held = resolution
        .skipped
        .iter()
        .filter_map(|s| s.xid.clone())
        .collect();
    // The file's unread text first: its lines say where a hidden row is more precisely than the
    // record holding it does.
    for unread in records.unread() {
        let UnreadText { line, row_line, .. } = *unread;
        for word in words(&unread.text) {
            resolution
                .unread_words
                .entry(word)
                .or_insert(UnreadAt { line, row_line });
        }
    }
    for (word, at) in unread_in_parts {
        resolution.unread_words.entry(word).or_insert(at);
    }

    for ((table, code), count) in ignored_codes {
        resolution.warnings.push(format!(
            "{table}: code \"{code}\" is not mapped and was ignored ({count} record(s))"
        ));
    }
    for o in &config.overrides {
        let known = resolution.desired.contains_key(&o.xid)
            || resolution.held.contains(&o.xid)
            || resolution.excluded.contains_key(&o.xid);
        if !known {
            resolution.warnings.push(format!(
                "override for XID {} ({}) has no record in the HR file",
                o.xid, o.origin
            ));
        }
    }
    resolution.skipped.sort_by_key(|s| s.line);
    resolution
}

/// Runs `a` and `b`, on two threads when `parallel`.
fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        (a(), joined(b))
    })
}

/// The first eight bytes of an XID as a number that orders as the bytes do.
fn xid_prefix(xid: &str) -> u64 {
    let bytes = xid.as_bytes();
    match bytes.first_chunk::<8>() {
        Some(eight) => u64::from_be_bytes(*eight),
        // Shifted into place byte by byte: a copy of a few bytes is a call, and reading the
        // number back from memory stalled every row.
        None => (bytes.iter().enumerate())
            .fold(0, |prefix, (i, &b)| prefix | u64::from(b) << (56 - 8 * i)),
    }
}

/// A scoped thread's result; a panic in it goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The first row of each value of one column, by the value's [`KeyHashes::hash`].
///
/// The rows are spread over partitions by a few bits of their value's hash, each with a table
/// small enough to stay in a core's cache while it is filled: one table over a million rows
/// missed the cache on nearly every insert.
#[derive(Debug, Default)]
struct FirstRows {
    /// Per partition, a row as chunk (high half) and row in it (low half), with its value's
    /// hash: eight bytes a row keep the tables small, and a row's value is read again only when
    /// two hashes meet.
    tables: Vec<hashbrown::HashTable<(u32, u32)>>,
    /// How many partitions there are (as `tables` has, once filled).
    partitions: u32,
    key_hashes: KeyHashes,
    chunks: Vec<Arc<RecordChunk>>,
    /// Where each chunk's rows start, counted over all chunks.
    chunk_starts: Vec<usize>,
    slot: usize,
}

/// About this many rows go to a partition: its table then has 32,768 buckets (8 bytes each and
/// a control byte), about 80% of them full, and stays in a core's cache while it is filled.
/// (Partitions of two to a power, as tables are, left half of every bucket empty.)
const PARTITION_ROWS: usize = 26_000;

/// The hash bits that pick a partition start here, above those a partition's table of up to
/// 65,536 buckets indexes by, and end below the top seven it tags buckets with (see
/// [`table_hash`]): nine bits, scaled to the number of partitions, at most 512 (beyond 13
/// million rows a partition holds more rows, and its table is slower, never wrong).
const PARTITION_SHIFT: u32 = 16;
const PARTITION_BITS: u32 = 9;

impl FirstRows {
    /// For `records`, spread over partitions of about `partition_rows` rows.
    fn new(records: &Records, slot: usize, partition_rows: usize) -> FirstRows {
        let chunk_starts = records
            .chunks()
            .iter()
            .scan(0, |start, chunk| {
                let this = *start;
                *start += chunk.len();
                Some(this)
            })
            .collect();
        let partitions = records
            .len()
            .div_ceil(partition_rows.max(1))
            .clamp(1, 1 << PARTITION_BITS);
        FirstRows {
            tables: Vec::new(),
            partitions: u32::try_from(partitions).expect("at most 512 partitions"),
            key_hashes: records.key_hashes().clone(),
            chunks: records.chunks().to_vec(),
            chunk_starts,
            slot,
        }
    }

    fn partition(&self, hash: u32) -> usize {
        let bits = (hash >> PARTITION_SHIFT) & ((1 << PARTITION_BITS) - 1);
        ((bits * self.partitions) >> PARTITION_BITS) as usize
    }

    fn value(&self, at: u32) -> &str {
        self.chunks[(at >> 16) as usize].value((at & 0xFFFF) as usize, self.slot)
    }

    /// The first row (counted over all chunks) whose value is `value` exactly.
    fn first(&self, value: &str) -> Option<usize> {
        let hash = self.key_hashes.hash(value);
        let table = self.tables.get(self.partition(hash))?;
        let &(at, _) = table.find(table_hash(hash), |&(at, other)| {
            other == hash && self.value(at) == value
        })?;
        Some(self.chunk_starts[(at >> 16) as usize] + (at & 0xFFFF) as usize)
    }
}

/// What a partition's table hashes a row by: its value's hash in the high bits (hashbrown's
/// tag) as well as the low ones (its bucket), so that a table never reads a value to grow.
fn table_hash(hash: u32) -> u64 {
    u64::from(hash) << 32 | u64::from(hash)
}

/// Values of `slot` (other than empty ones; compared as `compare` says) that occur on more than
/// one row, with the lines of those rows; and the first row of each value. The tables of values
/// seen hold row positions, not values.
fn repeated(
    records: &Records,
    slot: usize,
    compare: KeyCompare,
) -> (HashMap<Cow<'_, str>, Vec<u64>>, FirstRows) {
    repeated_in_partitions(records, slot, compare, PARTITION_ROWS)
}

/// [`repeated`], with partitions of about `partition_rows` rows.
fn repeated_in_partitions(
    records: &Records,
    slot: usize,
    compare: KeyCompare,
    partition_rows: usize,
) -> (HashMap<Cow<'_, str>, Vec<u64>>, FirstRows) {
    const _: () = assert!(crate::hr::CHUNK_ROWS <= 1 << 16);
    let mut first = FirstRows::new(records, slot, partition_rows);
    let fold = |value| match compare {
        KeyCompare::Exact => Cow::Borrowed(value),
        KeyCompare::CaseFolded => case_folded(value),
    };
    let chunk_of = |at: u32| &records.chunks()[(at >> 16) as usize];
    let key_at = |at: u32| fold(chunk_of(at).value((at & 0xFFFF) as usize, slot));
    // Readers hash the keys as they keep each row; other records are hashed here.
    let hashed = records.key_hashes().position(slot, compare);
    let keys = records.key_hashes();

    // Every row with a value, as (row, hash), in its partition in record order.
    let partitions = first.partitions as usize;
    let expected = records.len() / partitions + records.len() / partitions / 8 + 16;
    let mut spread: Vec<Vec<(u32, u32)>> = (0..partitions)
        .map(|_| Vec::with_capacity(expected))
        .collect();
    for (c, chunk) in records.chunks().iter().enumerate() {
        let c = u32::try_from(c).expect("fewer than 65,536 chunks of rows") << 16;
        for row in 0..chunk.len() {
            let hash = match hashed {
                Some(key) => chunk.key_hash(row, key),
                None => keys.hash(&fold(chunk.value(row, slot))),
            };
            if hash == 0 {
                continue;
            }
            spread[first.partition(hash)].push((c | row as u32, hash));
        }
    }

    let mut repeated: HashMap<Cow<'_, str>, Vec<u64>> = HashMap::new();
    first.tables = spread
        .into_iter()
        .map(|rows| {
            let mut table = hashbrown::HashTable::with_capacity(rows.len());
            for (at, hash) in rows {
                let mut this = None;
                match table.entry(
                    table_hash(hash),
                    |&(other, other_hash)| {
                        other_hash == hash
                            && key_at(other) == *this.get_or_insert_with(|| key_at(at))
                    },
                    |&(_, other_hash)| table_hash(other_hash),
                ) {
                    hashbrown::hash_table::Entry::Occupied(seen) => {
                        let (seen, _) = *seen.get();
                        repeated
                            .entry(this.unwrap_or_else(|| key_at(at)))
                            .or_insert_with(|| vec![chunk_of(seen).line((seen & 0xFFFF) as usize)])
                            .push(chunk_of(at).line((at & 0xFFFF) as usize));
                    }
                    hashbrown::hash_table::Entry::Vacant(slot) => {
                        slot.insert((at, hash));
                    }
                }
            }
            table
        })
        .collect();
    (repeated, first)
}

/// Employee IDs and email addresses that occur on several lines.
struct Repeats<'a> {
    xids: HashMap<Cow<'a, str>, Vec<u64>>,
    emails: HashMap<Cow<'a, str>, Vec<u64>>,
}

impl Repeats<'_> {
    /// The lines of an employee ID that occurs on several.
    fn xid(&self, xid: &str) -> Option<&[u64]> {
        if self.xids.is_empty() {
            return None;
        }
        self.xids.get(xid).map(Vec::as_slice)
    }

    /// The lines of an email address that occurs on several (in any case).
    fn email(&self, email: &str) -> Option<&[u64]> {
        if self.emails.is_empty() {
            return None;
        }
        self.emails
            .get(case_folded(email).as_ref())
            .map(Vec::as_slice)
    }
}

/// What one chunk of records resolved to, in record order.
#[derive(Default)]
struct Part {
    users: PartUsers,
    skipped: Vec<SkippedRecord>,
    excluded: Vec<(String, Excluded)>,
    ended: Vec<(String, Date)>,
    warnings: Vec<String>,
    ignored_codes: BTreeMap<(&'static str, String), usize>,
    unread_words: Vec<(String, UnreadAt)>,
}

/// Where a word of HR input that was not read as a person stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreadAt {
    pub line: u64,
    /// The line the row holding it starts on: earlier than `line` when it is inside a value
    /// running over several lines.
    pub row_line: u64,
}

/// The words of a text that could name an account: split at spaces, control characters, quotes and the delimiters
/// CSV files use, case-folded.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    // A control character splits too: `1003` in an ID `1003\n…` is the account to leave alone.
    text.split(|c: char| {
        c.is_whitespace()
            || matches!(c, ',' | ';' | '|' | '"')
            || crate::text::disguises_the_line(c)
    })
    .filter(|word| !word.is_empty())
    .map(|word| case_folded(word).into_owned())
}

/// What one thread has worked out before, by the record values it came from.
#[derive(Default)]
struct Caches<'r> {
    memberships: HashMap<MembershipInputs<'r>, MembershipOutcome>,
    /// How many of `memberships` are keyed by [`RuleInputs::Values`].
    by_rule_values: usize,
    dates: HashMap<ValueKey<'r>, Option<Date>>,
    /// The last ASCII address domain checked, and whether it is plausible.
    last_domain: Option<(&'r str, bool)>,
}

/// A record value as a cache key: a short one (a date, a code) as one number
/// ([`Record::packed_value`]), which hashes and compares without a call; a longer one as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKey<'r> {
    Short(u128),
    Long(&'r str),
}

impl<'r> ValueKey<'r> {
    // Inlined, the key stays in registers: returned through memory it stalled every row.
    #[inline]
    fn of(record: &Record<'r>, slot: usize) -> ValueKey<'r> {
        match record.packed_value(slot) {
            Some(number) => ValueKey::Short(number),
            None => ValueKey::Long(record.value(slot)),
        }
    }
}

/// What a person's memberships and role depend on: the lookup tables' cells, and what the group,
/// local-admin and role rules read. People with the same inputs (most of a store) get the same
/// outcome, worked out once and shared.
#[derive(PartialEq, Eq)]
struct MembershipInputs<'r> {
    cells: [ValueKey<'r>; 2],
    rules: RuleInputs<'r>,
}

#[derive(PartialEq, Eq)]
enum RuleInputs<'r> {
    /// The values of the fields the rules read, when they read at most two (most rules test the
    /// job title): the rules then run once per distinct value, not per person.
    Values([ValueKey<'r>; 2]),
    /// Otherwise, which group rules hold (a bit each), and the first local-admin and role rules
    /// that hold.
    Held {
        groups: u64,
        admin: Option<usize>,
        role: Option<usize>,
    },
}

/// At most this many outcomes per thread are keyed by the rules' values: rules that read a field
/// of nearly one value a person (an address, say) are run per person after that, which costs
/// far less than working out an outcome per person.
const OUTCOMES_BY_RULE_VALUES: usize = 4096;

// The caches hash every row's keys: a word each for the hasher to mix, not one per field. Keys
// that share a word are told apart by `Eq`.
impl std::hash::Hash for ValueKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            ValueKey::Short(number) => {
                state.write_u64(*number as u64 ^ ((*number >> 64) as u64).rotate_left(32))
            }
            ValueKey::Long(text) => text.hash(state),
        }
    }
}

impl std::hash::Hash for MembershipInputs<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for cell in &self.cells {
            cell.hash(state);
        }
        match &self.rules {
            RuleInputs::Values(values) => values.iter().for_each(|value| value.hash(state)),
            RuleInputs::Held {
                groups,
                admin,
                role,
            } => {
                let rule = |position: Option<usize>| position.map_or(0, |p| p as u64 + 1);
                state.write_u64(groups ^ rule(*admin) << 40 ^ rule(*role) << 52);
            }
        }
    }
}

/// What one set of inputs gives, with what the lookup tables had to say about them.
struct MembershipOutcome {
    assigned: Arc<Assigned>,
    problems: Vec<String>,
    /// Codes a table ignores, as (table, code).
    ignored: Vec<(&'static str, String)>,
}

/// A lookup table (`business_units` or `departments`) ready for the records.
struct Table<'c> {
    name: &'static str,
    field: FieldName,
    kind: MembershipKind,
    slot: usize,
    /// Code → group and the provenance every person with that code shares.
    map: HashMap<&'c str, (Arc<str>, Provenance)>,
    unknown: UnknownCode,
    default: Option<(Arc<str>, &'c Origin)>,
}

enum Lookup {
    Found(Arc<str>, Provenance),
    Reject,
    Ignore,
}

impl Table<'_> {
    fn lookup(&self, code: &str) -> Lookup {
        if let Some((group, from)) = self.map.get(code) {
            return Lookup::Found(group.clone(), from.clone());
        }
        match (self.unknown, &self.default) {
            (UnknownCode::Default, Some((group, at))) => Lookup::Found(
                group.clone(),
                Provenance::Mapping(Arc::new(MappingSource {
                    table: self.name.into(),
                    code: code.into(),
                    at: (*at).clone(),
                })),
            ),
            (UnknownCode::Ignore, _) => Lookup::Ignore,
            _ => Lookup::Reject,
        }
    }
}

/// The config compiled for the records of one layout: slots looked up, matchers compiled,
/// provenance built once and shared.
struct Resolver<'c> {
    layout: &'c Layout,
    today: Date,
    date_format: &'c str,
    fixed_dates: Option<FixedDateFormat>,
    separator: char,
    xid_slot: usize,
    email_slot: usize,
    name_slots: Vec<usize>,
    start_slot: Option<usize>,
    end_slot: Option<usize>,
    profile_slots: Arc<ProfileSlots>,
    tables: Vec<Table<'c>>,
    groups: Vec<(CompiledMatcher, Arc<str>, Provenance)>,
    roles: Vec<(CompiledMatcher, NetworkRole, Provenance)>,
    local_admins: Vec<(CompiledMatcher, Provenance)>,
    exclusion_ids: HashMap<&'c str, (&'c str, &'c Origin)>,
    exclusion_matchers: Vec<(CompiledMatcher, (&'c str, &'c Origin))>,
    /// The slots the group, local-admin and role rules read, when they are at most two.
    rule_slots: Option<Vec<usize>>,
    /// The first override for each XID.
    overrides: HashMap<&'c str, &'c Override>,
}

impl<'c> Resolver<'c> {
    fn new(config: &'c Config, layout: &'c Layout, today: Date) -> Resolver<'c> {
        let format = config.sync.source.format();
        let compile = |m| CompiledMatcher::compile(m, layout);
        let rule = |list, at: &Origin| Provenance::Rule {
            list,
            at: at.clone(),
        };
        let profile_slots = ProfileField::ALL.map(|f| layout.slot(&f.hr_field()));
        let xid_slot = layout
            .slot(&FieldName::Xid)
            .expect("xid is always configured");
        let tables = [
            (
                FieldName::Locations,
                "business_units",
                MembershipKind::BusinessUnit,
                &config.rules.business_units,
            ),
            (
                FieldName::Departments,
                "departments",
                MembershipKind::Department,
                &config.rules.departments,
            ),
        ]
        .into_iter()
        .filter_map(|(field, name, kind, table)| {
            let (slot, table) = (layout.slot(&field)?, table.as_ref()?);
            let map = table
                .map
                .iter()
                .map(|(code, group)| {
                    let from = Provenance::Mapping(Arc::new(MappingSource {
                        table: name.into(),
                        code: code.clone(),
                        at: table.origins.get(code).cloned().unwrap_or_default(),
                    }));
                    (code.as_str(), (Arc::from(group.as_str()), from))
                })
                .collect();
            Some(Table {
                name,
                field,
                kind,
                slot,
                map,
                unknown: table.unknown,
                default: table
                    .default
                    .as_deref()
                    .map(|group| (Arc::from(group), &table.default_origin)),
            })
        })
        .collect();
        let mut overrides = HashMap::new();
        for o in &config.overrides {
            overrides.entry(o.xid.as_str()).or_insert(o);
        }
        let mut resolver = Resolver {
            layout,
            today,
            date_format: format.date_format,
            fixed_dates: FixedDateFormat::of(format.date_format),
            separator: format.multi_value_separator.chars().next().unwrap_or('|'),
            xid_slot,
            email_slot: layout
                .slot(&FieldName::Email)
                .expect("email is always configured"),
            name_slots: [FieldName::FirstName, FieldName::LastName]
                .iter()
                .filter_map(|f| layout.slot(f))
                .collect(),
            start_slot: layout.slot(&FieldName::StartDate),
            end_slot: layout.slot(&FieldName::EndDate),
            profile_slots: Arc::new(ProfileSlots {
                xid: xid_slot,
                upn: layout.slot(&FieldName::Upn),
                fields: profile_slots,
                columns: profile_slots
                    .map(|slot| slot.map(|s| Arc::from(layout.columns[s].as_str()))),
            }),
            tables,
            groups: config
                .rules
                .groups
                .iter()
                .map(|r| {
                    let group = Arc::from(r.group.as_str());
                    (compile(&r.when), group, rule(RuleList::Groups, &r.origin))
                })
                .collect(),
            roles: config
                .rules
                .roles
                .iter()
                .map(|r| (compile(&r.when), r.role, rule(RuleList::Roles, &r.origin)))
                .collect(),
            local_admins: config
                .rules
                .local_admins
                .iter()
                .map(|r| (compile(&r.when), rule(RuleList::LocalAdmins, &r.origin)))
                .collect(),
            exclusion_ids: config
                .exclusions
                .iter()
                .filter_map(|e| Some((e.xid.as_deref()?, (e.reason.as_str(), &e.origin))))
                .collect(),
            exclusion_matchers: config
                .exclusions
                .iter()
                .filter_map(|e| Some((compile(e.when.as_ref()?), (e.reason.as_str(), &e.origin))))
                .collect(),
            rule_slots: None,
            overrides,
        };
        let mut rule_slots = Vec::new();
        let groups = resolver.groups.iter().map(|(m, _, _)| m);
        let admins = resolver.local_admins.iter().map(|(m, _)| m);
        let roles = resolver.roles.iter().map(|(m, _, _)| m);
        for matcher in groups.chain(admins).chain(roles) {
            matcher.read_slots(&mut rule_slots);
        }
        resolver.rule_slots = (rule_slots.len() <= 2).then_some(rule_slots);
        resolver
    }

    fn resolve_all(
        &self,
        records: &Records,
        rows: std::ops::Range<usize>,
        repeats: &Repeats<'_>,
    ) -> Part {
        let mut part = Part {
            users: PartUsers {
                users: Vec::with_capacity(rows.len()),
                first_row: rows.start,
                of_row: vec![NO_USER; rows.len()],
                in_xid_order: Vec::with_capacity(rows.len()),
            },
            ..Part::default()
        };
        let mut caches = Caches::default();
        for (i, (chunk, row)) in records.rows(rows).enumerate() {
            let at = RowAt {
                chunk,
                row,
                in_part: i,
            };
            self.resolve_one(at, repeats, &mut part, &mut caches);
        }
        part.users.sort_by_xid();
        part
    }

    fn resolve_one<'r>(
        &self,
        at: RowAt<'r>,
        repeats: &Repeats<'_>,
        part: &mut Part,
        caches: &mut Caches<'r>,
    ) {
        let record = &at.chunk.get(at.row);
        let layout = self.layout;
        let separator = self.separator;
        let xid = record.value(self.xid_slot);
        if !xid.is_empty() {
            let exclusion = self.exclusion_ids.get(xid).or_else(|| {
                self.exclusion_matchers
                    .iter()
                    .find(|(m, _)| m.holds(record, separator))
                    .map(|(_, exclusion)| exclusion)
            });
            if let Some(&(reason, at)) = exclusion {
                let excluded = Excluded {
                    xid: xid.to_string(),
                    reason: reason.to_string(),
                    at: at.clone(),
                };
                part.excluded.push((xid.to_string(), excluded));
                return;
            }
        }

        let mut problems = Vec::new();
        if let Some(problem) = record.problem {
            problems.push(problem.to_string());
        }
        if xid.is_empty() {
            problems.push(format!(
                "missing employee ID (column \"{}\")",
                layout.columns[self.xid_slot]
            ));
        } else if let Some(problem) = unusable_identifier(xid, MAX_XID_CHARS, true) {
            problems.push(format!(
                "the employee ID (column \"{}\") {problem}",
                layout.columns[self.xid_slot]
            ));
        } else if let Some(lines) = repeats.xid(xid) {
            problems.push(format!(
                "duplicate employee ID, on lines {}",
                join_lines(lines)
            ));
        }
        let email = record.value(self.email_slot);
        if email.is_empty() {
            problems.push(format!(
                "missing email address (column \"{}\")",
                layout.columns[self.email_slot]
            ));
        } else if let Some(problem) = unusable_identifier(email, MAX_EMAIL_CHARS, false) {
            problems.push(format!(
                "the email address (column \"{}\") {problem}",
                layout.columns[self.email_slot]
            ));
        } else if !plausible_email_remembering(email, &mut caches.last_domain) {
            problems.push(format!("invalid email address {}", mask_email(email)));
        } else if let Some(lines) = repeats.email(email) {
            problems.push(format!(
                "duplicate email address, on lines {}",
                join_lines(lines)
            ));
        }
        if !self.name_slots.is_empty()
            && self.name_slots.iter().all(|&s| record.value(s).is_empty())
        {
            problems.push("missing name".to_string());
        }
        // A value no profile field holds is a broken export (a column run together with the
        // rest of the file, say), not a name or a job title.
        let long_values = record.values_len() > MAX_VALUE_CHARS;
        for (slot, column) in layout.columns.iter().enumerate().filter(|_| long_values) {
            // The ID and the address have limits of their own, checked above.
            if matches!(layout.fields[slot], crate::rules::FieldName::Extra(_))
                || slot == self.xid_slot
                || slot == self.email_slot
            {
                continue;
            }
            let value = record.value(slot);
            if value.len() > MAX_VALUE_CHARS && value.chars().count() > MAX_VALUE_CHARS {
                problems.push(format!(
                    "the value in column \"{column}\" is {} characters long; at most {MAX_VALUE_CHARS} are read",
                    value.chars().count()
                ));
            }
        }
        let mut date_of = |slot: Option<usize>, label: &str| {
            let slot = slot?;
            let text = record.value(slot);
            if text.is_empty() {
                return None;
            }
            let fixed = (self.fixed_dates.as_ref())
                .and_then(|format| format.read(record.packed_value(slot)?));
            // Most people share their dates with many others: each other text is parsed once.
            let date = fixed.unwrap_or_else(|| {
                *caches
                    .dates
                    .entry(ValueKey::of(record, slot))
                    .or_insert_with(|| parse_date(self.date_format, text))
            });
            if date.is_none() {
                problems.push(format!(
                    "unparseable {label} \"{text}\" (column \"{}\"; expected the format {})",
                    layout.columns[slot], self.date_format
                ));
            }
            date
        };
        let start_date = date_of(self.start_slot, "start date");
        let end_date = date_of(self.end_slot, "end date");

        let computed;
        let by_values = caches.by_rule_values < OUTCOMES_BY_RULE_VALUES;
        let outcome = match self.membership_inputs(record, by_values) {
            Some(inputs) => {
                let keyed_by_values = matches!(inputs.rules, RuleInputs::Values(_));
                match caches.memberships.entry(inputs) {
                    std::collections::hash_map::Entry::Occupied(known) => &*known.into_mut(),
                    std::collections::hash_map::Entry::Vacant(new) => {
                        caches.by_rule_values += usize::from(keyed_by_values);
                        &*new.insert(self.membership_outcome(record))
                    }
                }
            }
            None => {
                computed = self.membership_outcome(record);
                &computed
            }
        };
        problems.extend(outcome.problems.iter().cloned());
        for (table, code) in &outcome.ignored {
            *part.ignored_codes.entry((table, code.clone())).or_default() += 1;
        }

        if !problems.is_empty() {
            let at = UnreadAt {
                line: record.line,
                row_line: record.line,
            };
            for slot in 0..layout.fields.len() {
                part.unread_words
                    .extend(words(record.value(slot)).map(|word| (word, at)));
            }
            part.skipped.push(SkippedRecord {
                line: record.line,
                xid: (!xid.is_empty()).then(|| xid.to_string()),
                reasons: problems,
            });
            return;
        }
        // Offboarded the day after the last working day; an end before the start is a hire
        // called off: never invited (and offboarded if an account exists).
        if let Some(end) =
            end_date.filter(|end| *end < self.today || start_date.is_some_and(|start| *end < start))
        {
            part.ended.push((xid.to_string(), end));
            return;
        }

        let user = self.desired_user(at, record, &outcome.assigned, start_date, part);
        let users = &mut part.users;
        let position = u32::try_from(users.users.len()).expect("fewer than 4 billion people");
        users.of_row[at.in_part] = position;
        users.in_xid_order.push((xid_prefix(xid), position));
        users.users.push(user);
    }

    /// What a record's memberships depend on, when that fits a cache key: with the values the
    /// rules read when `by_values` and they read few enough.
    fn membership_inputs<'r>(
        &self,
        record: &Record<'r>,
        by_values: bool,
    ) -> Option<MembershipInputs<'r>> {
        if self.groups.len() > 64 || self.tables.len() > 2 {
            return None;
        }
        let mut cells = [ValueKey::Short(0); 2];
        for (cell, table) in cells.iter_mut().zip(&self.tables) {
            *cell = ValueKey::of(record, table.slot);
        }
        if let Some(slots) = self.rule_slots.as_deref().filter(|_| by_values) {
            let mut values = [ValueKey::Short(0); 2];
            for (value, &slot) in values.iter_mut().zip(slots) {
                *value = ValueKey::of(record, slot);
            }
            return Some(MembershipInputs {
                cells,
                rules: RuleInputs::Values(values),
            });
        }
        let groups = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, (matcher, _, _))| matcher.holds(record, self.separator))
            .fold(0u64, |bits, (i, _)| bits | 1 << i);
        let admin = self
            .local_admins
            .iter()
            .position(|(matcher, _)| matcher.holds(record, self.separator));
        let role = self
            .roles
            .iter()
            .position(|(matcher, _, _)| matcher.holds(record, self.separator));
        Some(MembershipInputs {
            cells,
            rules: RuleInputs::Held {
                groups,
                admin,
                role,
            },
        })
    }

    /// What the lookup tables and rules give a record, and the tables' complaints.
    fn membership_outcome(&self, record: &Record<'_>) -> MembershipOutcome {
        let (layout, separator) = (self.layout, self.separator);
        let mut memberships = MembershipList::default();
        let mut primary_business_unit = None;
        let (mut problems, mut ignored) = (Vec::new(), Vec::new());
        for table in &self.tables {
            for code in split_values(record.value(table.slot), separator) {
                match table.lookup(code) {
                    Lookup::Found(group, from) => {
                        if table.kind == MembershipKind::BusinessUnit
                            && primary_business_unit.is_none()
                        {
                            primary_business_unit = Some(Sourced {
                                value: group.clone(),
                                from: from.clone(),
                            });
                        }
                        memberships.add(
                            &group,
                            DesiredMembership {
                                kind: table.kind,
                                from,
                                admin: None,
                            },
                        );
                    }
                    Lookup::Reject => problems.push(format!(
                        "unknown {} code \"{code}\" (column \"{}\"; not in {}.map)",
                        table.field.name().trim_end_matches('s'),
                        layout.columns[table.slot],
                        table.name
                    )),
                    Lookup::Ignore => ignored.push((table.name, code.to_string())),
                }
            }
        }
        for (matcher, group, from) in &self.groups {
            if matcher.holds(record, separator) {
                memberships.add(
                    group,
                    DesiredMembership {
                        kind: MembershipKind::Group,
                        from: from.clone(),
                        admin: None,
                    },
                );
            }
        }
        if let Some((_, from)) = self
            .local_admins
            .iter()
            .find(|(m, _)| m.holds(record, separator))
        {
            for membership in memberships.business_units_mut() {
                membership.admin = Some(from.clone());
            }
        }
        let role = self
            .roles
            .iter()
            .find(|(m, _, _)| m.holds(record, separator))
            .map(|(_, role, from)| Sourced {
                value: *role,
                from: from.clone(),
            });
        MembershipOutcome {
            assigned: Arc::new(Assigned {
                slots: self.profile_slots.clone(),
                memberships: Memberships(memberships.0.into()),
                primary_business_unit,
                role,
            }),
            problems,
            ignored,
        }
    }

    fn desired_user(
        &self,
        at: RowAt<'_>,
        record: &Record<'_>,
        assigned: &Arc<Assigned>,
        start_date: Option<Date>,
        part: &mut Part,
    ) -> DesiredUser {
        let xid = record.value(self.xid_slot);
        let mut assigned = assigned.clone();
        let mut overridden = None;
        let mut overridden_fields = 0u8;
        if let Some(o) = self.overrides.get(xid) {
            match o.until {
                Some(until) if until < self.today => {
                    part.warnings.push(format!(
                        "override for XID {xid} ({}) expired on {until} and is ignored",
                        o.origin
                    ));
                }
                _ => {
                    let from = Provenance::Override {
                        at: o.origin.clone(),
                    };
                    let mut changed = MembershipList(assigned.memberships.0.to_vec());
                    for group in &o.add_groups {
                        changed.replace(
                            Arc::from(group.as_str()),
                            DesiredMembership {
                                kind: MembershipKind::Group,
                                from: from.clone(),
                                admin: None,
                            },
                        );
                    }
                    let mut withdrawn = BTreeMap::new();
                    for group in &o.remove_groups {
                        changed.remove(group);
                        withdrawn.insert(group.clone(), from.clone());
                    }
                    let memberships = Memberships(changed.0.into());
                    // The primary business unit must be one the person keeps: the next one, if
                    // any, once an override takes it away.
                    let mut primary_business_unit = assigned.primary_business_unit.clone();
                    if primary_business_unit
                        .as_ref()
                        .is_some_and(|p| withdrawn.contains_key(&*p.value))
                    {
                        primary_business_unit = memberships
                            .iter()
                            .find(|(_, m)| m.kind == MembershipKind::BusinessUnit)
                            .map(|(name, m)| Sourced {
                                value: Arc::from(name),
                                from: m.from.clone(),
                            });
                    }
                    let role = match o.role {
                        Some(value) => Some(Sourced {
                            value,
                            from: from.clone(),
                        }),
                        None => assigned.role.clone(),
                    };
                    assigned = Arc::new(Assigned {
                        slots: self.profile_slots.clone(),
                        memberships,
                        primary_business_unit,
                        role,
                    });
                    let (set, fields) = self.override_values(o);
                    overridden_fields = fields;
                    overridden = Some(Box::new(OverrideEffect {
                        at: o.origin.clone(),
                        withdrawn,
                        restore: o.restore,
                        set,
                    }));
                }
            }
        }
        DesiredUser {
            chunk: at.chunk.clone(),
            row: u16::try_from(at.row).expect("a chunk holds at most 65,536 rows"),
            flags: overridden_fields
                | if start_date.is_some() {
                    HAS_START_DATE
                } else {
                    0
                },
            start: start_date.unwrap_or(Date::MIN),
            assigned,
            overridden,
        }
    }

    /// The profile values an override sets, with a bit for each field it sets.
    fn override_values(&self, o: &Override) -> (Packed<6>, u8) {
        let mut set: [&str; 6] = [""; 6];
        let mut fields = 0u8;
        for field in ProfileField::ALL {
            if let Some(value) = overridden(field, &o.set) {
                set[field.index()] = value;
                fields |= 1 << field.index();
            }
        }
        (Packed::new(set), fields)
    }
}

/// Where a record is: its chunk, and its row in it.
#[derive(Clone, Copy)]
struct RowAt<'r> {
    chunk: &'r Arc<RecordChunk>,
    row: usize,
    /// The row counted from the first of its part.
    in_part: usize,
}

/// A date format of only `%d`, `%m` and `%Y` between ASCII punctuation (`%d-%m-%Y`, the
/// default `%Y-%m-%d`): dates written in it at full width (`05-03-2021`) are read from their
/// [`Record::packed_value`] with a few masks, as [`parse_date`] reads them, which a million
/// records notice.
#[derive(Debug)]
struct FixedDateFormat {
    /// How long a date is at full width.
    length: usize,
    /// The format's punctuation where it stands, and a mask of its bytes.
    literals: u128,
    literal_mask: u128,
    /// One in the lowest bit of every digit's byte.
    digit_ones: u128,
    /// Where each field's first digit is.
    day: u32,
    month: u32,
    year: u32,
}

impl FixedDateFormat {
    fn of(format: &str) -> Option<FixedDateFormat> {
        let mut fields = [None; 3];
        let (mut literals, mut literal_mask, mut digit_ones) = (0u128, 0u128, 0u128);
        let mut at = 0u32;
        let mut rest = format.as_bytes();
        while let Some((&b, after)) = rest.split_first() {
            let (field, digits) = match (b, after.first()) {
                (b'%', Some(b'd')) => (0, 2),
                (b'%', Some(b'm')) => (1, 2),
                (b'%', Some(b'Y')) => (2, 4),
                (b'%', _) => return None,
                (b, _) if b.is_ascii_punctuation() && at < 15 => {
                    literals |= u128::from(b) << (8 * at);
                    literal_mask |= 0xFF << (8 * at);
                    at += 1;
                    rest = after;
                    continue;
                }
                _ => return None,
            };
            // Each field once: `%d-%d` is left to jiff's rules.
            if fields[field].replace(at).is_some() || at + digits > 15 {
                return None;
            }
            for i in at..at + digits {
                digit_ones |= 1 << (8 * i);
            }
            at += digits;
            rest = &after[1..];
        }
        let [Some(day), Some(month), Some(year)] = fields else {
            return None;
        };
        Some(FixedDateFormat {
            length: at as usize,
            literals,
            literal_mask,
            digit_ones,
            day,
            month,
            year,
        })
    }

    /// The date a value holds, given its [`Record::packed_value`], when it is written at full
    /// width (`Some(None)`: such text that is no date, like `31-02-2021`); `None` for any other
    /// value, which jiff reads instead.
    fn read(&self, packed: u128) -> Option<Option<Date>> {
        let length = (packed >> 120) as usize;
        if length != self.length || packed & self.literal_mask != self.literals {
            return None;
        }
        // Each digit's byte is 0x30 to 0x39: its high half 3, and its low half plus 6 not
        // reaching 16 (no carry leaves a byte).
        let ones = self.digit_ones;
        let low = packed & (ones * 0x0F);
        if packed & (ones * 0xF0) != ones * 0x30 || (low + ones * 6) & (ones * 0x10) != 0 {
            return None;
        }
        let digit = |at: u32| ((low >> (8 * at)) & 0x0F) as i16;
        let two = |at: u32| digit(at) * 10 + digit(at + 1);
        let year = two(self.year) * 100 + two(self.year + 2);
        // Two digits each: at most 99.
        let (month, day) = (two(self.month) as i8, two(self.day) as i8);
        Some(Date::new(year, month, day).ok())
    }
}

fn join_lines(lines: &[u64]) -> String {
    lines
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`plausible_email_remembering`] on its own.
#[cfg(test)]
fn plausible_email(email: &str) -> bool {
    plausible_email_remembering(email, &mut None)
}

/// A deliberately loose check: Speakap is the judge of deliverability; this catches export
/// accidents. It remembers the last ASCII domain checked: the rows of an export mostly share
/// one, which is then compared instead of checked again.
fn plausible_email_remembering<'e>(
    email: &'e str,
    last_domain: &mut Option<(&'e str, bool)>,
) -> bool {
    if !email.is_ascii() {
        return plausible_any_email(email);
    }
    let Some(at) = memchr::memchr(b'@', email.as_bytes()) else {
        return false;
    };
    let domain = &email[at + 1..];
    let domain_ok = match *last_domain {
        Some((last, ok)) if last == domain => ok,
        _ => {
            let ok = plausible_ascii_domain(domain.as_bytes());
            *last_domain = Some((domain, ok));
            ok
        }
    };
    domain_ok && plausible_ascii_local_part(&email.as_bytes()[..at])
}

/// [`plausible_email`] for the common ASCII address.
#[cfg(test)]
fn plausible_ascii_email(email: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'@', email) else {
        return false;
    };
    plausible_ascii_local_part(&email[..at]) && plausible_ascii_domain(&email[at + 1..])
}

/// The part of an ASCII address before the `@`: one pass, without a branch per byte.
fn plausible_ascii_local_part(local: &[u8]) -> bool {
    let bad = local
        .iter()
        .fold(false, |bad, &b| bad | NOT_IN_LOCAL_PART[usize::from(b)]);
    !local.is_empty() && !bad
}

/// The part of an ASCII address after the `@`. A label starts and ends with a letter or digit:
/// nothing but those may follow a dot (or the domain's start) or end the domain, and no dot may
/// follow a hyphen.
fn plausible_ascii_domain(domain: &[u8]) -> bool {
    let (mut bad, mut dots, mut previous) = (false, false, DOT);
    for &b in domain {
        let class = DOMAIN_CLASS[usize::from(b)];
        bad |= class == OTHER
            || (previous == DOT && class != ALPHANUMERIC)
            || (previous == HYPHEN && class == DOT);
        dots |= class == DOT;
        previous = class;
    }
    !bad && dots && previous == ALPHANUMERIC
}

/// Whitespace and the characters an unquoted local part cannot hold.
const NOT_IN_LOCAL_PART: [bool; 256] = {
    let mut table = [false; 256];
    let forbidden = b" \t\n\x0b\x0c\r\"(),:;<>[\\]@";
    let mut i = 0;
    while i < forbidden.len() {
        table[forbidden[i] as usize] = true;
        i += 1;
    }
    table
};

const ALPHANUMERIC: u8 = 0;
const HYPHEN: u8 = 1;
const DOT: u8 = 2;
const OTHER: u8 = 3;

/// What each byte is to a domain name.
const DOMAIN_CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = match byte {
            b'-' => HYPHEN,
            b'.' => DOT,
            _ if byte.is_ascii_alphanumeric() => ALPHANUMERIC,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// [`plausible_email`] for any address.
fn plausible_any_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    // Quoted local parts are valid mail addresses but no HR export has them; a quote or comma
    // here is a broken CSV row far more often.
    let local_ok = !local.is_empty()
        && !local.contains(|c: char| c.is_whitespace() || "\"(),:;<>[\\]@".contains(c));
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    local_ok && domain.contains('.') && labels_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFiles;
    use crate::hr::Layout;
    use crate::rules::configured_fields;

    const CONFIG: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap: { url: "http://127.0.0.1:9" }
source:
  type: csv
  path: hr.csv
  date_format: "%Y-%m-%d"
  columns: { xid: id, email: mail, last_name: name, job_title: job, locations: loc, departments: dep, end_date: end }
---
apiVersion: speakap-sync/v1
kind: MappingRules
business_units: { map: { N: North, S: South } }
departments: { map: { "1": Bakery }, unknown: ignore }
groups:
  - { group: Managers, when: { field: job_title, matches: "Manager$" } }
local_admins:
  - { of: business_unit, when: { field: job_title, equals: Store Manager } }
---
apiVersion: speakap-sync/v1
kind: Exclusions
exclude:
  - { xid: "17", reason: board member }
  - { when: { field: job_title, equals: Contractor }, reason: not employed }
---
apiVersion: speakap-sync/v1
kind: Overrides
overrides:
  - { xid: "5", reason: known by her maiden name, set: { last_name: Jansen }, add_groups: [Social] }
  - { xid: "6", reason: ended trial, until: 2020-01-01, set: { last_name: Old } }
"#;

    fn config() -> Config {
        crate::config::load(ConfigFiles::in_memory("c0ffee", CONFIG)).unwrap()
    }

    /// Every kind of outcome, spread over the whole record so each chunk sees some.
    fn snapshot(config: &Config, rows: usize) -> Snapshot {
        let jobs = [
            "Baker",
            "Store Manager",
            "Contractor",
            "Driver",
            "Area Manager",
        ];
        let rows = (0..rows).map(|i| {
            // Some XIDs share their first eight bytes, and run against record order.
            let xid = if i % 997 == 3 {
                "42".to_string()
            } else if i % 7 == 4 {
                format!("EMPLOYEE{}", 1_000_000 - i)
            } else {
                i.to_string()
            };
            let mail = match i % 1013 {
                7 => "not-an-address".to_string(),
                8 => "SHARED@example.com".to_string(),
                9 => "shared@example.com".to_string(),
                _ => format!("p{i}@example.com"),
            };
            let loc = ["N", "S", "N|S", "X"][i % 4].to_string();
            let end = if i % 89 == 0 { "2021-05-01" } else { "" };
            let values = [
                xid,
                mail,
                format!("Name{i}"),
                jobs[i % jobs.len()].to_string(),
                if i % 4 == 3 { "N".into() } else { loc },
                ["1", "2", ""][i % 3].to_string(),
                if i % 701 == 11 {
                    "someday".into()
                } else {
                    end.into()
                },
            ];
            (i as u64 + 2, values.to_vec())
        });
        let records = Records::from_rows(7, rows);
        Snapshot::new(
            "hr.csv".into(),
            "0".repeat(64),
            Layout::new(configured_fields(&config.sync)),
            records,
        )
    }

    proptest::proptest! {
        /// An XID's prefix is its first eight bytes, zero-padded, read as a big-endian number:
        /// so prefixes order as the XIDs do.
        #[test]
        fn xid_prefixes_are_the_first_eight_bytes(a in "[0-9a-z\u{e9}]{0,10}", b in "[0-9a-z]{0,10}") {
            let padded = |xid: &str| {
                let mut bytes = [0u8; 8];
                let n = xid.len().min(8);
                bytes[..n].copy_from_slice(&xid.as_bytes()[..n]);
                u64::from_be_bytes(bytes)
            };
            proptest::prop_assert_eq!(xid_prefix(&a), padded(&a));
            if xid_prefix(&a) < xid_prefix(&b) {
                proptest::prop_assert!(a < b);
            }
        }
    }

    #[test]
    fn fixed_width_date_formats_are_recognised() {
        for format in ["%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y", "%m.%d.%Y", "%Y%m%d"] {
            assert!(FixedDateFormat::of(format).is_some(), "{format}");
        }
        // Names, two-digit years, unpadded days, spaces, fields twice: left to jiff.
        for format in [
            "%d %B %Y", "%d-%m-%y", "%e-%m-%Y", "%d %m %Y", "%d-%d-%Y", "%d-%m",
        ] {
            assert!(FixedDateFormat::of(format).is_none(), "{format}");
        }
        let format = FixedDateFormat::of("%d-%m-%Y").unwrap();
        assert_eq!(
            format.read(packed("05-03-2021")),
            Some(Some(jiff::civil::date(2021, 3, 5)))
        );
        assert_eq!(format.read(packed("29-02-2021")), Some(None));
        assert_eq!(format.read(packed("5-3-2021")), None);
        assert_eq!(format.read(packed("05-03-2O21")), None);
    }

    /// `text` as a record keeps it.
    fn packed(text: &str) -> u128 {
        let records = Records::from_rows(1, [(1, vec![text])]);
        let record = records.iter().next().unwrap();
        record.packed_value(0).expect("a short value")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Dates read at full width are the dates jiff reads, and texts that are none are none:
        /// days, months and years in and out of range, written at full width, some with one
        /// byte changed (to a byte beside the digits, a letter, punctuation), and other texts.
        #[test]
        fn fixed_width_dates_read_as_jiff_reads_them(
            format in proptest::sample::select(vec!["%d-%m-%Y", "%Y-%m-%d", "%Y%m%d", "%m/%d/%Y"]),
            (day, month, year) in (0..40u32, 0..15u32, 0..10_000u32),
            changed in proptest::option::of((0..10usize, proptest::sample::select(b"/:0O -9".to_vec()))),
            other in proptest::option::of("[0-9]{1,4}[-/]?[0-9]{1,2}[-/]?[0-9]{1,4}"),
        ) {
            let mut text = format
                .replace("%d", &format!("{day:02}"))
                .replace("%m", &format!("{month:02}"))
                .replace("%Y", &format!("{year:04}"))
                .into_bytes();
            if let Some((at, byte)) = changed {
                let at = at % text.len();
                text[at] = byte;
            }
            let text = other.unwrap_or_else(|| String::from_utf8(text).unwrap());
            let fixed = FixedDateFormat::of(format).expect("a fixed-width format");
            let expected = parse_date(format, &text);
            if let Some(date) = fixed.read(packed(&text)) {
                proptest::prop_assert_eq!(date, expected, "{}", text);
            }
        }
    }

    #[test]
    fn the_outcome_does_not_depend_on_the_number_of_threads() {
        let config = config();
        // More rows than one chunk holds, so threads' ranges cross chunk boundaries.
        let snapshot = snapshot(&config, 70_000);
        assert!(snapshot.records.chunks().len() > 1);
        let today = jiff::civil::date(2026, 6, 1);
        let one = resolve_on(&config, &snapshot, today, 1);
        assert!(one.desired.len() > 50_000);
        assert!(!one.skipped.is_empty() && !one.excluded.is_empty() && !one.ended.is_empty());
        assert!(one.warnings.iter().any(|w| w.contains("expired")));
        for workers in [2, 3, 7] {
            let many = resolve_on(&config, &snapshot, today, workers);
            let users = |r: &Resolution| {
                r.desired
                    .values()
                    .map(|u| format!("{u:?}"))
                    .collect::<Vec<_>>()
            };
            assert_eq!(users(&one), users(&many), "{workers} workers");
            assert_eq!(one.skipped, many.skipped);
            assert_eq!(one.excluded, many.excluded);
            assert_eq!(one.held, many.held);
            assert_eq!(one.ended, many.ended);
            assert_eq!(one.warnings, many.warnings);
        }
    }

    #[test]
    fn outcomes_are_those_of_the_rules_however_they_are_cached() {
        // The rules read two fields besides the job title: one of few values, so that outcomes
        // are keyed by both; and one of nearly a value a person, so that the first outcomes are
        // keyed by the values and the rest (past the bound) by which rules hold.
        for rule in [
            "{ group: Leaving, when: { field: end_date, equals: \"2021-05-01\" } }",
            "{ group: Early, when: { field: email, matches: \"^p1\" } }",
        ] {
            let text = CONFIG.replace("groups:\n", &format!("groups:\n  - {rule}\n"));
            let config = crate::config::load(ConfigFiles::in_memory("c0ffee", &text)).unwrap();
            outcomes_are_those_of_the_rules(&config);
        }
    }

    fn outcomes_are_those_of_the_rules(config: &Config) {
        let snapshot = snapshot(config, 3 * OUTCOMES_BY_RULE_VALUES);
        let today = jiff::civil::date(2026, 6, 1);
        let uncached = Resolver::new(config, &snapshot.layout, today);
        assert_eq!(uncached.rule_slots.as_ref().map(Vec::len), Some(2));
        let records: BTreeMap<u64, Record<'_>> =
            snapshot.records.iter().map(|r| (r.line, r)).collect();
        for workers in [1, 2] {
            let resolution = resolve_on(config, &snapshot, today, workers);
            assert!(resolution.desired.len() > 2 * OUTCOMES_BY_RULE_VALUES);
            for user in resolution
                .desired
                .values()
                .filter(|u| u.overridden.is_none())
            {
                let expected = uncached.membership_outcome(&records[&user.line()]).assigned;
                let names = |m: &Memberships| format!("{:?}", m.iter().collect::<Vec<_>>());
                assert_eq!(names(user.memberships()), names(&expected.memberships));
                assert_eq!(user.role(), expected.role.as_ref());
                assert_eq!(
                    user.primary_business_unit(),
                    expected.primary_business_unit.as_ref()
                );
            }
        }
    }

    #[test]
    fn desired_users_are_found_by_xid_and_listed_in_xid_order() {
        let config = config();
        let resolution = resolve_on(
            &config,
            &snapshot(&config, 3_000),
            jiff::civil::date(2026, 6, 1),
            3,
        );
        let xids: Vec<&str> = resolution.desired.keys().collect();
        assert!(xids.windows(2).all(|w| w[0] < w[1]));
        let five = resolution.desired.get("5").unwrap();
        assert_eq!(five.get(ProfileField::LastName), Some("Jansen"));
        assert!(matches!(
            five.source(ProfileField::LastName),
            Some(Provenance::Override { .. })
        ));
        assert!(five.memberships().contains("Social"));
        assert_eq!(
            resolution
                .desired
                .get("6")
                .unwrap()
                .get(ProfileField::LastName),
            Some("Name6")
        );
        assert!(
            resolution.desired.get("42").is_none(),
            "duplicate XIDs are skipped"
        );
        assert!(resolution.desired.get("17").is_none(), "excluded");
        let long = resolution.desired.get("EMPLOYEE999982").unwrap();
        assert_eq!(long.get(ProfileField::LastName), Some("Name18"));
        assert!(!resolution.desired.contains_key("nobody"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Whatever the partitions, repeated values are found with all their lines in record
        /// order, and each value's first row is found again.
        #[test]
        fn repeated_values_and_first_rows_do_not_depend_on_the_partitions(
            values in proptest::collection::vec("(|[aAb]{1,2}|x[0-9]{1,3})", 0..400),
            partition_rows in proptest::sample::select(vec![1usize, 3, 64, PARTITION_ROWS]),
        ) {
            // Rows without key hashes, and rows whose one value was hashed as an XID or as an
            // address when it was kept.
            let rows = || values.iter().enumerate().map(|(i, v)| (i as u64 + 2, vec![v.as_str()]));
            let hashed_as = |field: FieldName| {
                let mut builder = crate::hr::RecordsBuilder::for_layout(&Layout::new(vec![
                    (field, "key".to_string()),
                ]));
                for (line, values) in rows() {
                    builder.push(line, values.into_iter());
                }
                builder.finish()
            };
            let variants = [
                Records::from_rows(1, rows()),
                hashed_as(FieldName::Xid),
                hashed_as(FieldName::Email),
            ];
            // The lines of each value on more than one row, as `key` makes them.
            let expected = |key: fn(&str) -> String| {
                let mut lines: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                for (i, v) in values.iter().enumerate().filter(|(_, v)| !v.is_empty()) {
                    lines.entry(key(v)).or_default().push(i as u64 + 2);
                }
                lines.into_iter().filter(|(_, l)| l.len() > 1).collect::<BTreeMap<_, _>>()
            };
            let found = |repeats: HashMap<Cow<'_, str>, Vec<u64>>| {
                repeats
                    .into_iter()
                    .map(|(k, l)| (k.into_owned(), l))
                    .collect::<BTreeMap<_, _>>()
            };
            for records in &variants {
                let folded = KeyCompare::CaseFolded;
                let (folded, _) = repeated_in_partitions(records, 0, folded, partition_rows);
                proptest::prop_assert_eq!(found(folded), expected(|v| v.to_lowercase()));
                let exact = KeyCompare::Exact;
                let (exact, first) = repeated_in_partitions(records, 0, exact, partition_rows);
                proptest::prop_assert_eq!(found(exact), expected(str::to_string));
                for v in values.iter().filter(|v| !v.is_empty()) {
                    proptest::prop_assert_eq!(first.first(v), values.iter().position(|o| o == v));
                }
                proptest::prop_assert_eq!(first.first("never-there"), None);
                proptest::prop_assert_eq!(first.first(""), None);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The ASCII check is the general one, a byte at a time.
        #[test]
        fn ascii_addresses_are_checked_as_any_address_is(email in "[ -~\t\n\r\x0b\x0c]{0,12}") {
            proptest::prop_assert_eq!(
                plausible_ascii_email(email.as_bytes()),
                plausible_any_email(&email)
            );
        }

        #[test]
        fn address_like_ascii_is_checked_as_any_address_is(
            email in "[a-c]{0,2}[a-c.\\-\"; \t\r\x0b\x0c@]?[a-c]{0,2}@[a-c]{1,2}[a-c\\-@]?(\\.[a-c\\-]{1,3}){0,2}"
        ) {
            proptest::prop_assert_eq!(
                plausible_ascii_email(email.as_bytes()),
                plausible_any_email(&email)
            );
        }
    }

    proptest::proptest! {
        /// Remembering the last domain changes no verdict, in any order of addresses.
        #[test]
        fn remembered_domains_give_the_verdicts_of_checking_each_address(
            emails in proptest::collection::vec("[ab.]{0,2}@(x\\.nl|x-\\.nl|x\\.n\u{e9}|[x.]{0,3})", 0..12)
        ) {
            let mut last_domain = None;
            for email in &emails {
                proptest::prop_assert_eq!(
                    plausible_email_remembering(email, &mut last_domain),
                    plausible_any_email(email),
                    "{}", email
                );
            }
        }
    }

    #[test]
    fn plausible_addresses_have_a_plain_local_part_and_a_dotted_domain() {
        for good in [
            "a.b+c@x-y.example.nl",
            "zo\u{eb}@b\u{e4}cker.de",
            "O'Brien@x.ie",
        ] {
            assert!(plausible_email(good), "{good}");
        }
        for bad in [
            "a@x.nl\"",
            "\"a\"@x.nl",
            "a b@x.nl",
            "a,b@x.nl",
            "a@x",
            "a@.x.nl",
            "a@x..nl",
            "a@-x.nl",
            "a@x.nl;b",
            "@x.nl",
            "a@b@x.nl",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }
}
