//! The ledger: what the sync knows it did. Only what the sync granted is the sync's to take back.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// XID → what the sync manages for that person.
    pub users: BTreeMap<String, LedgerEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The Speakap user EID.
    pub eid: String,
    /// Group EIDs the sync manages for this person (granted by it, or desired and already present).
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// Group EIDs where the sync made this person local admin.
    #[serde(default)]
    pub admin_of: BTreeSet<String>,
    /// Whether the sync granted the network admin role.
    #[serde(default)]
    pub network_admin: bool,
    /// What HR and the rules said about this person at the last apply (see `DesiredUser::digest`):
    /// an account deleted by hand is recreated only when this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The day the sync suspended this leaver; the grace period counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_since: Option<Date>,
}

impl Ledger {
    /// This ledger (`self`, made from `base`) merged with `theirs`, made from `base` by another
    /// run: a person only one side changed takes that side; one both changed takes ours (made
    /// from a later look at the network) with what the other side knows the sync granted added,
    /// so that a right granted by either run stays the sync's to take back.
    pub fn merged(&self, base: &Ledger, theirs: &Ledger) -> Ledger {
        let xids: BTreeSet<&String> = self
            .users
            .keys()
            .chain(theirs.users.keys())
            .chain(base.users.keys())
            .collect();
        let mut users = BTreeMap::new();
        for xid in xids {
            let (b, o, t) = (
                base.users.get(xid),
                self.users.get(xid),
                theirs.users.get(xid),
            );
            let merged = if o == b {
                t.cloned()
            } else if t == b {
                o.cloned()
            } else {
                match (o, t) {
                    (Some(o), Some(t)) => Some(LedgerEntry {
                        groups: o.groups.union(&t.groups).cloned().collect(),
                        admin_of: o.admin_of.union(&t.admin_of).cloned().collect(),
                        network_admin: o.network_admin || t.network_admin,
                        suspended_since: o.suspended_since.or(t.suspended_since),
                        ..o.clone()
                    }),
                    // One side removed the person (deleted by the sync), the other changed them.
                    (None, _) | (_, None) => None,
                }
            };
            if let Some(entry) = merged {
                users.insert(xid.clone(), entry);
            }
        }
        Ledger { users }
    }

    pub fn manages_group(&self, xid: &str, group: &str) -> bool {
        self.users
            .get(xid)
            .is_some_and(|e| e.groups.contains(group))
    }

    pub fn granted_admin_of(&self, xid: &str, group: &str) -> bool {
        self.users
            .get(xid)
            .is_some_and(|e| e.admin_of.contains(group))
    }

    pub fn suspended_since(&self, xid: &str) -> Option<Date> {
        self.users.get(xid).and_then(|e| e.suspended_since)
    }

    pub fn granted_network_admin(&self, xid: &str) -> bool {
        self.users.get(xid).is_some_and(|e| e.network_admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(eid: &str, groups: &[&str]) -> LedgerEntry {
        LedgerEntry {
            eid: eid.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..LedgerEntry::default()
        }
    }

    #[test]
    fn a_merge_keeps_what_either_side_changed_and_what_either_granted() {
        let ledger = |entries: &[(&str, LedgerEntry)]| Ledger {
            users: entries
                .iter()
                .map(|(x, e)| (x.to_string(), e.clone()))
                .collect(),
        };
        let base = ledger(&[
            ("1", entry("a", &["g1"])),
            ("2", entry("b", &[])),
            ("3", entry("c", &[])),
        ]);
        let ours = ledger(&[
            ("1", entry("a", &["g1", "g2"])),
            ("2", entry("b", &[])),
            ("4", entry("d", &["g1"])),
        ]);
        let theirs = ledger(&[
            ("1", entry("a", &["g1", "g3"])),
            ("2", entry("b", &["g9"])),
            ("3", entry("c", &[])),
        ]);
        let merged = ours.merged(&base, &theirs);
        assert_eq!(
            merged,
            ledger(&[
                ("1", entry("a", &["g1", "g2", "g3"])),
                ("2", entry("b", &["g9"])),
                ("4", entry("d", &["g1"])),
            ])
        );
    }
}
