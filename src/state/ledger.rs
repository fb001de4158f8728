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
