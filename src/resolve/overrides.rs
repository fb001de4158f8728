//! Overrides: deliberate, reasoned exceptions for one person (by employee ID) to what HR and
//! the rules say: profile values, groups added or taken away, the network role, restoring an
//! account deleted by hand. An override past its `until` date is ignored with a warning.

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::HashMap;
use jiff::civil::Date;

use super::desired::{
    DesiredMembership, DesiredUser, MembershipKind, Memberships, Overridden, Provenance, Sourced,
};
use super::rules::MembershipList;
use crate::config::{Config, Override, ProfileValues};
use crate::fields::ProfileField;

pub(super) struct Overrides<'c> {
    /// The first override for each XID.
    by_xid: HashMap<&'c str, &'c Override>,
    today: Date,
}

impl<'c> Overrides<'c> {
    pub fn new(config: &'c Config, today: Date) -> Overrides<'c> {
        let mut by_xid = HashMap::default();
        for o in &config.overrides {
            by_xid.entry(o.xid.as_str()).or_insert(o);
        }
        Overrides { by_xid, today }
    }

    /// Applies the override for `user`'s XID, if there is one in effect; one that expired adds
    /// a warning instead.
    pub fn apply(&self, user: &mut DesiredUser, warnings: &mut Vec<String>) {
        let Some(o) = self.by_xid.get(user.xid()) else {
            return;
        };
        if let Some(until) = o.until.filter(|until| *until < self.today) {
            warnings.push(format!(
                "override for XID {} ({}) expired on {until} and is ignored",
                user.xid(),
                o.origin
            ));
            return;
        }
        let from = Provenance::Override {
            at: o.origin.clone(),
        };
        let values = ProfileField::ALL.map(|field| Some(overridden(field, &o.set)?.into()));
        let withdrawn = change_groups(user, o, &from);
        if let Some(role) = o.role {
            user.role = Some(Sourced { value: role, from });
        }
        user.overridden = Some(Box::new(Overridden {
            at: o.origin.clone(),
            values,
            restore: o.restore,
            withdrawn,
        }));
    }
}

/// Adds the override's groups and takes away those it removes. The primary business unit must
/// be one the person keeps: the next one, if any, once the override takes it away. Returns the
/// groups taken away.
fn change_groups(
    user: &mut DesiredUser,
    o: &Override,
    from: &Provenance,
) -> BTreeMap<String, Provenance> {
    let mut list = MembershipList(user.memberships.0.to_vec());
    for group in &o.add_groups {
        let membership = DesiredMembership {
            kind: MembershipKind::Group,
            from: from.clone(),
            admin: None,
        };
        list.replace(Arc::from(group.as_str()), membership);
    }
    let mut withdrawn = BTreeMap::new();
    for group in &o.remove_groups {
        list.remove(group);
        withdrawn.insert(group.clone(), from.clone());
    }
    user.memberships = Memberships(list.0.into());
    let primary = user.primary_business_unit.as_ref();
    if primary.is_some_and(|p| withdrawn.contains_key(&*p.value)) {
        user.primary_business_unit = (user.memberships.iter())
            .find(|(_, m)| m.kind == MembershipKind::BusinessUnit)
            .map(|(name, m)| Sourced {
                value: Arc::from(name),
                from: m.from.clone(),
            });
    }
    withdrawn
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
