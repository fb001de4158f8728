//! The rules of MappingRules applied to a record: `groups` (each rule that holds adds its
//! group), `local_admins` (the first that holds makes the person local admin of their business
//! units) and `roles` (the first that holds gives the network role).

use std::sync::Arc;

use foldhash::HashSet;

use super::desired::{
    DesiredMembership, MembershipKind, Memberships, Provenance, RuleList, Sourced,
};
use crate::config::{Config, NetworkRole, Origin};
use crate::hr::{Layout, Record};
use crate::rules::CompiledMatcher;

/// The rule lists compiled against a layout.
pub(super) struct Rules {
    groups: Vec<(CompiledMatcher, Arc<str>, Provenance)>,
    local_admins: Vec<(CompiledMatcher, Provenance)>,
    roles: Vec<(CompiledMatcher, NetworkRole, Provenance)>,
    separator: char,
}

impl Rules {
    pub fn new(config: &Config, layout: &Layout) -> Rules {
        let compile = |m| CompiledMatcher::compile(m, layout);
        let rule = |list, at: &Origin| Provenance::Rule {
            list,
            at: at.clone(),
        };
        let rules = &config.rules;
        Rules {
            groups: (rules.groups.iter())
                .map(|r| {
                    let group = Arc::from(r.group.as_str());
                    (compile(&r.when), group, rule(RuleList::Groups, &r.origin))
                })
                .collect(),
            local_admins: (rules.local_admins.iter())
                .map(|r| (compile(&r.when), rule(RuleList::LocalAdmins, &r.origin)))
                .collect(),
            roles: (rules.roles.iter())
                .map(|r| (compile(&r.when), r.role, rule(RuleList::Roles, &r.origin)))
                .collect(),
            separator: super::separator(config),
        }
    }

    /// Adds the groups of the group rules that hold for `record` to `memberships`, and makes the
    /// person local admin of their business units if a local-admin rule holds.
    pub fn add_groups(&self, record: &Record, memberships: &mut MembershipList) {
        self.add_group_rules(record, memberships);
        if let Some(from) = self.local_admin(record) {
            memberships.make_admin(from, |_| true);
        }
    }

    /// Adds the groups of the group rules that hold for `record` to `memberships`.
    pub fn add_group_rules(&self, record: &Record, memberships: &mut MembershipList) {
        for (matcher, group, from) in &self.groups {
            if matcher.holds(record, self.separator) {
                let membership = DesiredMembership {
                    kind: MembershipKind::Group,
                    from: from.clone(),
                    admin: None,
                };
                memberships.add(group.clone(), membership);
            }
        }
    }

    /// The first local-admin rule that holds for `record`.
    pub fn local_admin(&self, record: &Record) -> Option<&Provenance> {
        let (_, from) =
            (self.local_admins.iter()).find(|(m, _)| m.holds(record, self.separator))?;
        Some(from)
    }

    /// The network role of the first role rule that holds for `record`.
    pub fn role(&self, record: &Record) -> Option<Sourced<NetworkRole>> {
        let (_, role, from) =
            (self.roles.iter()).find(|(m, _, _)| m.holds(record, self.separator))?;
        Some(Sourced {
            value: *role,
            from: from.clone(),
        })
    }
}

/// Memberships while a person is resolved: a short list kept in reading order (business units,
/// departments, then groups, by name within each).
#[derive(Default)]
pub(super) struct MembershipList(pub Vec<(Arc<str>, DesiredMembership)>);

impl MembershipList {
    /// Adds a membership unless the group is already there (the first reason wins).
    pub fn add(&mut self, name: Arc<str>, membership: DesiredMembership) {
        if self.position(&name).is_none() {
            self.insert_in_order(name, membership);
        }
    }

    /// Sets a membership, replacing any earlier reason for the same group.
    pub fn replace(&mut self, name: Arc<str>, membership: DesiredMembership) {
        self.remove(&name);
        self.insert_in_order(name, membership);
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.position(name) {
            self.0.remove(i);
        }
    }

    /// Makes the person local admin, for the reason `from`, of each business unit `which` names.
    pub fn make_admin(&mut self, from: &Provenance, which: impl Fn(&str) -> bool) {
        for (name, membership) in &mut self.0 {
            if membership.kind == MembershipKind::BusinessUnit && which(name) {
                membership.admin = Some(from.clone());
            }
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| **n == *name)
    }

    fn insert_in_order(&mut self, name: Arc<str>, membership: DesiredMembership) {
        let key = (membership.kind, &*name);
        let at = self.0.partition_point(|(n, m)| (m.kind, &**n) < key);
        self.0.insert(at, (name, membership));
    }
}

/// One shared copy of each list of memberships (per run of records resolved on one thread): most of a store has the same memberships for
/// the same reasons, and a million people with a list each would hold hundreds of MB.
#[derive(Default)]
pub(super) struct SharedLists(HashSet<Memberships>);

impl SharedLists {
    /// The shared copy of `list`.
    pub fn share(&mut self, list: MembershipList) -> Memberships {
        if let Some(shared) = self.0.get(list.0.as_slice()) {
            return shared.clone();
        }
        let memberships = Memberships(list.0.into());
        self.0.insert(memberships.clone());
        memberships
    }
}

/// Found by its entries (hashed and compared as the list is).
impl std::borrow::Borrow<[(Arc<str>, DesiredMembership)]> for Memberships {
    fn borrow(&self) -> &[(Arc<str>, DesiredMembership)] {
        &self.0
    }
}
