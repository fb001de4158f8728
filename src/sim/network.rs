//! The simulated network: users, groups and memberships, with the API's rules.

use std::collections::{BTreeMap, BTreeSet};

// foldhash: every request looks users and memberships up by EID, a million of them at scale.
use foldhash::{HashMap, HashMapExt};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::speakap::seed::{Seed, SeedGroup, SeedUser};
use crate::speakap::wire;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Invalid(String),
    #[error("invalid token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyMember(String),
    #[error("{0}")]
    EmailInUse(String),
    #[error("{0}")]
    Gone(String),
    #[error("simulator state: {0}")]
    State(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimUser {
    eid: String,
    xid: Option<String>,
    name: wire::Name,
    job_title: Option<String>,
    telephone_numbers: Vec<String>,
    email_addresses: Vec<String>,
    primary_email: String,
    deleted: bool,
    /// Unix seconds of the suspension, while suspended.
    #[serde(default)]
    suspended_at: Option<i64>,
    #[serde(default)]
    primary_business_unit: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimMembership {
    eid: String,
    user: String,
    /// `None` for the network membership.
    group: Option<String>,
    role: String,
}

/// The whole simulated network; serialized as the simulator's state file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Network {
    pub network: String,
    next_id: u64,
    /// Users and memberships are hash maps: every request looks them up by EID, and in a B-tree
    /// of a million string keys each lookup costs microseconds of cache misses. They are written
    /// sorted, so the state file stays stable.
    #[serde(serialize_with = "sorted")]
    users: HashMap<String, SimUser>,
    groups: BTreeMap<String, wire::Group>,
    #[serde(serialize_with = "sorted")]
    memberships: HashMap<String, SimMembership>,
    /// The digest of the seed the network was made from ([`Seed::digest`]): a seed edited
    /// since is noticed. Absent in state files from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_digest: Option<String>,
    #[serde(skip)]
    dirty: bool,
    /// Derived from the maps above (rebuilt by `reindex` after loading), so that a request costs
    /// the same in a network of a million users as in one of ten.
    #[serde(skip)]
    index: Index,
}

fn sorted<S: serde::Serializer, V: Serialize>(
    map: &HashMap<String, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter().collect::<BTreeMap<_, _>>())
}

#[derive(Debug, Default)]
struct Index {
    /// User EID → EIDs of their memberships (in EID order, as the API lists them).
    memberships: HashMap<String, BTreeSet<String>>,
    /// Lowercased email address → EIDs of the active users having it.
    emails: HashMap<String, BTreeSet<String>>,
    /// XID → EIDs of the active users having it.
    xids: HashMap<String, BTreeSet<String>>,
    /// EIDs of the active users in order, for paging; dropped when users come or go and rebuilt
    /// by the next listing (a listing seldom follows each single change).
    active: Option<Vec<String>>,
    /// Each active user's JSON with memberships embedded, in `active` order: listing an unchanged
    /// network copies these out instead of building a million users again. Dropped by every
    /// change; built by the next full listing.
    listing: Option<Vec<Arc<RawValue>>>,
}

fn index_remove(map: &mut HashMap<String, BTreeSet<String>>, key: &str, eid: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(eid);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// Suspended accounts can be restored for 30 days.
const RECOVERABLE_SECONDS: i64 = 30 * 24 * 3600;

fn plausible_email(email: &str) -> bool {
    email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !email.contains(char::is_whitespace)
}

const GROUP_TYPES: [&str; 6] = [
    "business_unit",
    "department",
    "public",
    "restricted",
    "private",
    "secret",
];
const ROLES: [&str; 3] = ["invitee", "member", "admin"];

impl Network {
    pub fn new(network: &str) -> Network {
        Network {
            network: network.to_string(),
            next_id: 0,
            users: HashMap::new(),
            groups: BTreeMap::new(),
            memberships: HashMap::new(),
            seed_digest: None,
            dirty: true,
            index: Index::default(),
        }
    }

    /// Builds the indexes; for a network read from a state file.
    pub fn reindex(&mut self) {
        self.index = Index::default();
        let eids: Vec<String> = self.users.keys().cloned().collect();
        for eid in &eids {
            self.index_user(eid);
        }
        for m in self.memberships.values() {
            self.index
                .memberships
                .entry(m.user.clone())
                .or_default()
                .insert(m.eid.clone());
        }
    }

    /// Adds an active user's addresses and XID to the indexes; call after changing them.
    fn index_user(&mut self, eid: &str) {
        let Some(user) = self.users.get(eid).filter(|u| !u.deleted) else {
            return;
        };
        for email in &user.email_addresses {
            self.index
                .emails
                .entry(email.to_lowercase())
                .or_default()
                .insert(eid.to_string());
        }
        if let Some(xid) = &user.xid {
            self.index
                .xids
                .entry(xid.clone())
                .or_default()
                .insert(eid.to_string());
        }
        self.index.active = None;
    }

    /// Takes a user's addresses and XID out of the indexes; call before changing them.
    fn unindex_user(&mut self, eid: &str) {
        let Some(user) = self.users.get(eid) else {
            return;
        };
        for email in &user.email_addresses {
            index_remove(&mut self.index.emails, &email.to_lowercase(), eid);
        }
        if let Some(xid) = &user.xid {
            index_remove(&mut self.index.xids, xid, eid);
        }
        self.index.active = None;
    }

    /// Removes memberships, keeping the index in step.
    fn drop_memberships(&mut self, eids: &[String]) {
        for eid in eids {
            if let Some(m) = self.memberships.remove(eid)
                && let Some(set) = self.index.memberships.get_mut(&m.user)
            {
                set.remove(eid);
            }
        }
        self.changed();
    }

    fn memberships_of(&self, user: &str) -> impl Iterator<Item = &SimMembership> {
        self.index
            .memberships
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|eid| self.memberships.get(eid))
    }

    /// Marks the network changed: to be saved, and listed afresh.
    fn changed(&mut self) {
        self.dirty = true;
        self.index.listing = None;
    }

    /// Whether anything changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Deterministic 16-hex EIDs, so simulator runs are reproducible.
    fn new_eid(&mut self, kind: &str) -> String {
        self.next_id += 1;
        let digest = crate::digest::sha256_hex(format!("{}/{kind}/{}", self.network, self.next_id));
        digest[..16].to_string()
    }

    /// Adds a seed's groups and accounts, and records the seed's digest.
    pub fn apply_seed(&mut self, seed: &Seed) -> Result<(), SimError> {
        for g in &seed.groups {
            self.insert_group(g.eid.as_deref(), &g.name, &g.group_type)?;
        }
        // Name → groups in EID order, looked up once per seeded membership.
        let mut by_name: HashMap<String, Vec<wire::Group>> = HashMap::new();
        for g in self.groups.values() {
            by_name.entry(g.name.clone()).or_default().push(g.clone());
        }
        let now = jiff::Timestamp::now().as_second();
        for u in &seed.users {
            self.seed_user(u, &by_name, now)?;
        }
        self.seed_digest = Some(seed.digest());
        Ok(())
    }

    /// The group a seed names: by name (the first in EID order), else by EID.
    fn seed_group<'a>(
        &'a self,
        by_name: &'a HashMap<String, Vec<wire::Group>>,
        reference: &str,
    ) -> Result<&'a wire::Group, SimError> {
        by_name
            .get(reference)
            .and_then(|groups| groups.first())
            .or_else(|| self.groups.get(reference))
            .ok_or_else(|| SimError::Invalid(format!("no group named `{reference}`")))
    }

    fn seed_user(
        &mut self,
        u: &SeedUser,
        by_name: &HashMap<String, Vec<wire::Group>>,
        now: i64,
    ) -> Result<(), SimError> {
        let eid = match &u.eid {
            Some(eid) => self.unused_eid(eid, "user")?,
            None => self.new_eid("user"),
        };
        let role = u.role.clone().unwrap_or_else(|| "member".into());
        if !ROLES.contains(&role.as_str()) {
            return Err(SimError::Invalid(format!(
                "seed user {}: role `{role}`",
                u.email
            )));
        }
        let mut memberships = Vec::new();
        for reference in u.groups.iter().chain(&u.admin_of) {
            let group = self.seed_group(by_name, reference)?.eid.clone();
            let role = if u.admin_of.contains(reference) {
                "admin"
            } else {
                "member"
            };
            if !memberships.iter().any(|(g, _)| *g == group) {
                memberships.push((group, role));
            }
        }
        // The primary business unit: as given, else the first business unit named.
        let primary = match &u.primary_business_unit {
            Some(reference) => Some(self.seed_group(by_name, reference)?.eid.clone()),
            None => u.groups.iter().chain(&u.admin_of).find_map(|reference| {
                by_name
                    .get(reference)
                    .into_iter()
                    .flatten()
                    .chain(self.groups.get(reference))
                    .find(|g| g.group_type == "business_unit")
                    .map(|g| g.eid.clone())
            }),
        };
        self.users.insert(
            eid.clone(),
            SimUser {
                eid: eid.clone(),
                xid: u.xid.clone(),
                name: wire::Name {
                    first_name: u.first_name.clone(),
                    infix: u.infix.clone(),
                    family_name: u.family_name.clone(),
                },
                job_title: u.job_title.clone(),
                telephone_numbers: u.phone.iter().cloned().collect(),
                email_addresses: std::iter::once(&u.email)
                    .chain(&u.other_emails)
                    .cloned()
                    .collect(),
                primary_email: u.email.clone(),
                deleted: false,
                suspended_at: u.suspended.then_some(now),
                primary_business_unit: primary,
            },
        );
        self.index_user(&eid);
        self.add_membership(&eid, None, &role);
        for (group, role) in memberships {
            self.add_membership(&eid, Some(group), role);
        }
        Ok(())
    }

    /// A seed's own EID for a `kind`, refused when malformed or already taken.
    fn unused_eid(&self, eid: &str, kind: &str) -> Result<String, SimError> {
        if !wire::is_eid(eid) {
            return Err(SimError::Invalid(format!(
                "seed {kind} EID `{eid}`: 16 lowercase hexadecimal characters"
            )));
        }
        if self.users.contains_key(eid) || self.groups.contains_key(eid) {
            return Err(SimError::Invalid(format!(
                "seed {kind} EID `{eid}` is given twice"
            )));
        }
        Ok(eid.to_string())
    }

    fn add_membership(&mut self, user: &str, group: Option<String>, role: &str) -> SimMembership {
        let eid = self.new_eid("membership");
        let membership = SimMembership {
            eid: eid.clone(),
            user: user.to_string(),
            group,
            role: role.to_string(),
        };
        self.index
            .memberships
            .entry(user.to_string())
            .or_default()
            .insert(eid.clone());
        self.memberships.insert(eid, membership.clone());
        self.changed();
        membership
    }

    fn membership_of(&self, user: &str, group: Option<&str>) -> Option<&SimMembership> {
        self.memberships_of(user)
            .find(|m| m.group.as_deref() == group)
    }

    fn active_user(&self, eid: &str) -> Result<&SimUser, SimError> {
        self.users
            .get(eid)
            .filter(|u| !u.deleted)
            .ok_or_else(|| SimError::NotFound(format!("user {eid} not found")))
    }

    fn to_wire(&self, user: &SimUser, embed: bool) -> wire::User {
        let memberships = if embed {
            self.memberships_of(&user.eid)
                .map(|m| wire::Membership {
                    eid: m.eid.clone(),
                    role: m.role.clone(),
                    group: m.group.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        wire::User {
            eid: user.eid.clone(),
            xid: user.xid.clone(),
            name: user.name.clone(),
            job_title: user.job_title.clone(),
            telephone_numbers: user.telephone_numbers.clone(),
            email_addresses: user.email_addresses.clone(),
            primary_email: Some(user.primary_email.clone()),
            primary_business_unit: user.primary_business_unit.clone(),
            deleted: user.deleted,
            status: if user.suspended_at.is_some() {
                "suspended"
            } else {
                "active"
            }
            .to_string(),
            embedded: wire::UserEmbedded { memberships },
        }
    }

    pub fn users_page(
        &mut self,
        offset: usize,
        limit: usize,
        embed: bool,
        email: Option<&str>,
    ) -> (usize, Vec<wire::User>) {
        let filtered: Vec<String>;
        let matching: &[String] = match email {
            Some(email) => {
                filtered = self
                    .index
                    .emails
                    .get(&email.to_lowercase())
                    .map(|eids| eids.iter().cloned().collect())
                    .unwrap_or_default();
                &filtered
            }
            None => {
                self.build_active();
                self.index.active.as_deref().unwrap_or_default()
            }
        };
        let page = matching
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|eid| self.users.get(eid))
            .map(|u| self.to_wire(u, embed))
            .collect();
        (matching.len(), page)
    }

    fn build_active(&mut self) {
        if self.index.active.is_none() {
            let active = self.users.values().filter(|u| !u.deleted);
            let mut active: Vec<String> = active.map(|u| u.eid.clone()).collect();
            active.sort_unstable();
            self.index.active = Some(active);
        }
    }

    /// A page of the full listing with memberships embedded, as JSON held since the last change.
    pub fn listing_page(&mut self, offset: usize, limit: usize) -> (usize, Vec<Arc<RawValue>>) {
        if self.index.listing.is_none() {
            self.build_active();
            let active = self.index.active.as_deref().unwrap_or_default();
            let listing = active
                .iter()
                .filter_map(|eid| self.users.get(eid))
                .map(|u| {
                    let json = serde_json::to_string(&self.to_wire(u, true))
                        .expect("a simulated user serializes");
                    Arc::from(RawValue::from_string(json).expect("serde_json wrote JSON"))
                })
                .collect();
            self.index.listing = Some(listing);
        }
        let listing = self.index.listing.as_deref().unwrap_or_default();
        let page = listing.iter().skip(offset).take(limit).cloned().collect();
        (listing.len(), page)
    }

    pub fn user(&self, eid: &str, embed: bool) -> Result<wire::User, SimError> {
        self.active_user(eid).map(|u| self.to_wire(u, embed))
    }

    pub fn groups_page(&self, offset: usize, limit: usize) -> (usize, Vec<wire::Group>) {
        (
            self.groups.len(),
            self.groups
                .values()
                .skip(offset)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    pub fn create_group(&mut self, name: &str, group_type: &str) -> Result<wire::Group, SimError> {
        self.insert_group(None, name, group_type)
    }

    /// A new group, with the given EID or a made-up one.
    fn insert_group(
        &mut self,
        eid: Option<&str>,
        name: &str,
        group_type: &str,
    ) -> Result<wire::Group, SimError> {
        if !GROUP_TYPES.contains(&group_type) {
            return Err(SimError::Invalid(format!(
                "group type `{group_type}`: one of {}",
                GROUP_TYPES.join(", ")
            )));
        }
        if name.trim().is_empty() {
            return Err(SimError::Invalid("group name is empty".into()));
        }
        let eid = match eid {
            Some(eid) => self.unused_eid(eid, "group")?,
            None => self.new_eid("group"),
        };
        let group = wire::Group {
            eid: eid.clone(),
            name: name.to_string(),
            group_type: group_type.to_string(),
        };
        self.groups.insert(eid, group.clone());
        self.changed();
        Ok(group)
    }

    fn user_by_email(&self, email: &str) -> Option<&SimUser> {
        let eid = self.index.emails.get(&email.to_lowercase())?.first()?;
        self.users.get(eid)
    }

    /// Whether an active user other than `except` has this XID.
    fn xid_taken(&self, xid: &str, except: Option<&str>) -> bool {
        self.index
            .xids
            .get(xid)
            .is_some_and(|eids| eids.iter().any(|e| Some(e.as_str()) != except))
    }

    /// Invites one person. INFERRED: `channel` `sms` (needs `telephoneNumber`) and `printable`
    /// (answers with an activation code) besides the documented email invitation.
    pub fn invite(&mut self, invitee: &wire::Invitee) -> wire::InviteResult {
        let email = invitee.email.as_str();
        let result = |status: &str, eid: Option<String>, activation_code: Option<String>| {
            wire::InviteResult {
                email: email.to_string(),
                status: status.to_string(),
                eid,
                activation_code,
            }
        };
        let channel = invitee.channel.as_deref().unwrap_or("email");
        let phone = invitee
            .telephone_number
            .clone()
            .filter(|p| !p.trim().is_empty());
        let valid_channel = match channel {
            "email" | "printable" => true,
            "sms" => phone.is_some(),
            _ => false,
        };
        if !plausible_email(email) || !valid_channel {
            return result("invalid", None, None);
        }
        if let Some(existing) = self.user_by_email(email) {
            let eid = existing.eid.clone();
            let role = self
                .membership_of(&eid, None)
                .map(|m| m.role.clone())
                .unwrap_or_default();
            let status = if role == "invitee" {
                "invitee"
            } else {
                "member"
            };
            return result(status, Some(eid), None);
        }
        let (first, family) = invitee.name.split_once(' ').unwrap_or((&invitee.name, ""));
        let name = wire::Name {
            first_name: first.to_string(),
            infix: String::new(),
            family_name: family.to_string(),
        };
        let eid = self.create_user(None, name, email, phone.into_iter().collect(), "invitee");
        let code = (channel == "printable")
            .then(|| crate::digest::sha256_hex(format!("activation/{eid}"))[..10].to_string());
        result("sent", Some(eid), code)
    }

    /// INFERRED: an SSO account is created active, for its UPN, without an invitation mail.
    pub fn create_sso_user(&mut self, user: &wire::NewSsoUser) -> Result<wire::User, SimError> {
        if user.upn.trim().is_empty() || !plausible_email(&user.primary_email) {
            return Err(SimError::Invalid(
                "an SSO account needs a UPN and a valid primaryEmail".into(),
            ));
        }
        if self.user_by_email(&user.primary_email).is_some() {
            return Err(SimError::EmailInUse(format!(
                "{} is the email address of another user",
                user.primary_email
            )));
        }
        if self.xid_taken(&user.xid, None) {
            return Err(SimError::Invalid(format!(
                "XID {} is already in use",
                user.xid
            )));
        }
        let eid = self.create_user(
            Some(user.xid.clone()),
            user.name.clone(),
            &user.primary_email,
            Vec::new(),
            "member",
        );
        self.user(&eid, true)
    }

    fn create_user(
        &mut self,
        xid: Option<String>,
        name: wire::Name,
        email: &str,
        phones: Vec<String>,
        role: &str,
    ) -> String {
        let eid = self.new_eid("user");
        self.users.insert(
            eid.clone(),
            SimUser {
                eid: eid.clone(),
                xid,
                name,
                job_title: None,
                telephone_numbers: phones,
                email_addresses: vec![email.to_string()],
                primary_email: email.to_string(),
                deleted: false,
                suspended_at: None,
                primary_business_unit: None,
            },
        );
        self.index_user(&eid);
        self.add_membership(&eid, None, role);
        eid
    }

    /// INFERRED: profile update semantics (only given fields change; XID and primary email unique).
    pub fn update_user(&mut self, eid: &str, update: wire::UserUpdate) -> Result<(), SimError> {
        self.active_user(eid)?;
        if let Some(xid) = &update.xid
            && self.xid_taken(xid, Some(eid))
        {
            return Err(SimError::Invalid(format!("XID {xid} is already in use")));
        }
        if let Some(email) = &update.primary_email
            && self.user_by_email(email).is_some_and(|u| u.eid != eid)
        {
            return Err(SimError::EmailInUse(format!(
                "{email} is the email address of another user"
            )));
        }
        if let Some(group) = &update.primary_business_unit {
            let is_unit = self
                .groups
                .get(group)
                .is_some_and(|g| g.group_type == "business_unit");
            if !is_unit || self.membership_of(eid, Some(group)).is_none() {
                return Err(SimError::Invalid(format!(
                    "primaryBusinessUnit {group} must be a business unit the user belongs to"
                )));
            }
        }
        self.unindex_user(eid);
        let user = self.users.get_mut(eid).expect("checked above");
        if let Some(group) = update.primary_business_unit {
            user.primary_business_unit = Some(group);
        }
        if let Some(xid) = update.xid {
            user.xid = (!xid.is_empty()).then_some(xid);
        }
        if let Some(name) = update.name {
            user.name = name;
        }
        if let Some(job_title) = update.job_title {
            user.job_title = Some(job_title);
        }
        if let Some(numbers) = update.telephone_numbers {
            user.telephone_numbers = numbers;
        }
        // INFERRED: the new primary address replaces the old one, which becomes free.
        if let Some(email) = update.primary_email {
            let old = std::mem::replace(&mut user.primary_email, email.clone());
            user.email_addresses
                .retain(|e| !e.eq_ignore_ascii_case(&old) && !e.eq_ignore_ascii_case(&email));
            user.email_addresses.insert(0, email);
        }
        self.index_user(eid);
        self.changed();
        Ok(())
    }

    pub fn add_to_groups(
        &mut self,
        user: &str,
        groups: &[String],
    ) -> Result<Vec<wire::Membership>, SimError> {
        self.active_user(user)?;
        for group in groups {
            if !self.groups.contains_key(group) {
                return Err(SimError::NotFound(format!("group {group} not found")));
            }
        }
        if let Some(group) = groups
            .iter()
            .find(|g| self.membership_of(user, Some(g)).is_some())
        {
            return Err(SimError::AlreadyMember(format!(
                "user {user} is already a member of group {group}"
            )));
        }
        Ok(groups
            .iter()
            .map(|g| {
                let m = self.add_membership(user, Some(g.clone()), "member");
                wire::Membership {
                    eid: m.eid,
                    role: m.role,
                    group: m.group,
                }
            })
            .collect())
    }

    pub fn remove_from_groups(&mut self, user: &str, groups: &[String]) -> Result<(), SimError> {
        self.active_user(user)?;
        let mut found = Vec::new();
        for group in groups {
            match self.membership_of(user, Some(group)) {
                Some(m) => found.push(m.eid.clone()),
                None => {
                    return Err(SimError::NotFound(format!(
                        "user {user} is not a member of group {group}"
                    )));
                }
            }
        }
        self.drop_memberships(&found);
        Ok(())
    }

    pub fn change_roles(&mut self, changes: &[(String, String)]) -> Result<(), SimError> {
        for (membership, role) in changes {
            if !self.memberships.contains_key(membership) {
                return Err(SimError::NotFound(format!(
                    "membership {membership} not found"
                )));
            }
            if !ROLES.contains(&role.as_str()) || role == "invitee" {
                return Err(SimError::Invalid(format!("role `{role}`: member or admin")));
            }
        }
        for (membership, role) in changes {
            self.memberships
                .get_mut(membership)
                .expect("checked above")
                .role = role.clone();
        }
        self.changed();
        Ok(())
    }

    pub fn remove_membership(&mut self, membership: &str) -> Result<(), SimError> {
        match self.memberships.get(membership) {
            Some(m) if m.group.is_some() => {
                self.drop_memberships(&[membership.to_string()]);
                Ok(())
            }
            Some(_) => Err(SimError::Invalid(
                "the network membership is removed with resolution=remove_from_network".into(),
            )),
            None => Err(SimError::NotFound(format!(
                "membership {membership} not found"
            ))),
        }
    }

    /// INFERRED: suspension keeps the account and its memberships but blocks logging in.
    pub fn suspend(&mut self, eid: &str, now: i64) -> Result<(), SimError> {
        let user = self
            .users
            .get_mut(eid)
            .filter(|u| !u.deleted)
            .ok_or_else(|| SimError::NotFound(format!("user {eid} not found")))?;
        if user.suspended_at.is_some() {
            return Err(SimError::Invalid(format!(
                "user {eid} is already suspended"
            )));
        }
        user.suspended_at = Some(now);
        self.changed();
        Ok(())
    }

    /// INFERRED: a suspended account can be restored within 30 days of its suspension.
    pub fn restore(&mut self, eid: &str, now: i64) -> Result<(), SimError> {
        let user = self
            .users
            .get_mut(eid)
            .filter(|u| !u.deleted)
            .ok_or_else(|| SimError::NotFound(format!("user {eid} not found")))?;
        match user.suspended_at {
            None => Err(SimError::Invalid(format!("user {eid} is not suspended"))),
            Some(at) if now - at > RECOVERABLE_SECONDS => Err(SimError::Gone(format!(
                "user {eid} was suspended more than 30 days ago"
            ))),
            Some(_) => {
                user.suspended_at = None;
                self.changed();
                Ok(())
            }
        }
    }

    /// INFERRED: anonymization erases the personal data and removes the user.
    pub fn anonymize(&mut self, eid: &str) -> Result<(), SimError> {
        self.active_user(eid)?;
        self.unindex_user(eid);
        let user = self
            .users
            .get_mut(eid)
            .filter(|u| !u.deleted)
            .ok_or_else(|| SimError::NotFound(format!("user {eid} not found")))?;
        user.xid = None;
        user.name = wire::Name {
            first_name: "Anonymous".into(),
            infix: String::new(),
            family_name: "user".into(),
        };
        user.job_title = None;
        user.telephone_numbers.clear();
        user.email_addresses = vec![format!("anonymized-{eid}@invalid")];
        user.primary_email = format!("anonymized-{eid}@invalid");
        user.deleted = true;
        let memberships: Vec<String> = self.memberships_of(eid).map(|m| m.eid.clone()).collect();
        self.drop_memberships(&memberships);
        Ok(())
    }

    /// Removes the user from the network: every membership goes, the account is marked deleted.
    pub fn remove_from_network(&mut self, membership: &str) -> Result<(), SimError> {
        let user = self
            .memberships
            .get(membership)
            .map(|m| m.user.clone())
            .ok_or_else(|| SimError::NotFound(format!("membership {membership} not found")))?;
        let memberships: Vec<String> = self.memberships_of(&user).map(|m| m.eid.clone()).collect();
        self.drop_memberships(&memberships);
        self.unindex_user(&user);
        if let Some(u) = self.users.get_mut(&user) {
            u.deleted = true;
        }
        self.changed();
        Ok(())
    }
}
