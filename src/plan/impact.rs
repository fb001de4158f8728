//! What a config change alone does: the desired network under the base config and under the
//! head config, on the same HR record and network, compared person by person and summed up as
//! sentences a reviewer can check ("moves 12 people from Supply Chain to Logistics").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Summary;
use crate::config::SourceFile;
use crate::desired::{DesiredUser, MembershipKind, ProfileField, Resolution};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub base_commit: String,
    pub changed_files: Vec<FileChange>,
    /// One line per kind of effect, with how many people it touches.
    pub effects: Vec<Effect>,
    /// People whose desired state differs between base and head.
    pub people: usize,
    /// The plan's counts with the base config, for comparison with the head plan's.
    pub base_summary: Summary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub change: ChangeKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Moves {
        kind: MembershipKind,
        from: String,
        to: String,
        people: usize,
    },
    Adds {
        group: String,
        people: usize,
    },
    Removes {
        group: String,
        people: usize,
    },
    GrantsLocalAdmin {
        group: String,
        people: usize,
    },
    RevokesLocalAdmin {
        group: String,
        people: usize,
    },
    GrantsNetworkAdmin {
        people: usize,
    },
    RevokesNetworkAdmin {
        people: usize,
    },
    ChangesField {
        field: ProfileField,
        people: usize,
    },
    StopsManaging {
        people: usize,
    },
    /// People the head config makes leavers: suspended, then deleted or anonymized.
    Offboards {
        people: usize,
    },
    StartsManaging {
        people: usize,
    },
}

impl Effect {
    /// Grants of admin rights and offboardings are marked ⚠ for reviewers.
    pub fn needs_care(&self) -> bool {
        matches!(
            self,
            Effect::GrantsLocalAdmin { .. }
                | Effect::GrantsNetworkAdmin { .. }
                | Effect::Offboards { .. }
        )
    }

    pub fn sentence(&self) -> String {
        let people = |n: &usize| {
            if *n == 1 {
                "1 person".to_string()
            } else {
                format!("{n} people")
            }
        };
        match self {
            Effect::Moves {
                kind,
                from,
                to,
                people: n,
            } => {
                format!("moves {} from {} {from} to {to}", people(n), kind.label())
            }
            Effect::Adds { group, people: n } => format!("adds {} to {group}", people(n)),
            Effect::Removes { group, people: n } => format!("removes {} from {group}", people(n)),
            Effect::GrantsLocalAdmin { group, people: n } => {
                format!("makes {} local admin of {group}", people(n))
            }
            Effect::RevokesLocalAdmin { group, people: n } => {
                format!("takes local admin of {group} from {}", people(n))
            }
            Effect::GrantsNetworkAdmin { people: n } => {
                format!("makes {} network admin", people(n))
            }
            Effect::RevokesNetworkAdmin { people: n } => {
                format!("takes network admin from {}", people(n))
            }
            Effect::ChangesField { field, people: n } => {
                format!("changes {} for {}", field.name(), people(n))
            }
            Effect::StopsManaging { people: n } => {
                format!(
                    "stops managing {} (now excluded or not processable: left alone)",
                    people(n)
                )
            }
            Effect::Offboards { people: n } => {
                format!("offboards {} (suspended, then removed)", people(n))
            }
            Effect::StartsManaging { people: n } => format!("starts managing {}", people(n)),
        }
    }
}

/// Which config files differ between base and head.
pub fn changed_files(base: &[SourceFile], head: &[SourceFile]) -> Vec<FileChange> {
    let base: BTreeMap<&str, &str> = base
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    let head: BTreeMap<&str, &str> = head
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    let paths: BTreeSet<&str> = base.keys().chain(head.keys()).copied().collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let change = match (base.get(path), head.get(path)) {
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(a), Some(b)) if a != b => ChangeKind::Modified,
                _ => return None,
            };
            Some(FileChange {
                path: path.to_string(),
                change,
            })
        })
        .collect()
}

/// Compares what the base and head configs want for every person in the HR record.
pub fn compare(base: &Resolution, head: &Resolution) -> (Vec<Effect>, usize) {
    let mut counts: BTreeMap<Key, usize> = BTreeMap::new();
    let xids: BTreeSet<&str> = base.desired.keys().chain(head.desired.keys()).collect();
    let mut people = 0;
    for xid in xids {
        let keys = match (base.desired.get(xid), head.desired.get(xid)) {
            // Excluded or held back now, the account is left alone; otherwise the person has
            // become a leaver (an end date now read, a filter dropping them).
            (Some(_), None) if head.excluded.contains_key(xid) || head.held.contains(xid) => {
                vec![Key::StopsManaging]
            }
            (Some(_), None) => vec![Key::Offboards],
            (None, Some(_)) => vec![Key::StartsManaging],
            (Some(b), Some(h)) => differences(b, h),
            (None, None) => Vec::new(),
        };
        if !keys.is_empty() {
            people += 1;
        }
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
    }
    let effects = counts
        .into_iter()
        .map(|(key, people)| key.effect(people))
        .collect();
    (effects, people)
}

/// One kind of effect, counted over people before it becomes an [`Effect`].
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Moves(MembershipKind, String, String),
    Adds(String),
    Removes(String),
    GrantsLocalAdmin(String),
    RevokesLocalAdmin(String),
    GrantsNetworkAdmin,
    RevokesNetworkAdmin,
    ChangesField(ProfileField),
    StopsManaging,
    Offboards,
    StartsManaging,
}

impl Key {
    fn effect(self, people: usize) -> Effect {
        match self {
            Key::Moves(kind, from, to) => Effect::Moves {
                kind,
                from,
                to,
                people,
            },
            Key::Adds(group) => Effect::Adds { group, people },
            Key::Removes(group) => Effect::Removes { group, people },
            Key::GrantsLocalAdmin(group) => Effect::GrantsLocalAdmin { group, people },
            Key::RevokesLocalAdmin(group) => Effect::RevokesLocalAdmin { group, people },
            Key::GrantsNetworkAdmin => Effect::GrantsNetworkAdmin { people },
            Key::RevokesNetworkAdmin => Effect::RevokesNetworkAdmin { people },
            Key::ChangesField(field) => Effect::ChangesField { field, people },
            Key::StopsManaging => Effect::StopsManaging { people },
            Key::Offboards => Effect::Offboards { people },
            Key::StartsManaging => Effect::StartsManaging { people },
        }
    }
}

/// What differs for one person desired by both configs: a business unit or department
/// replaced by another is a move; other groups are added and removed.
fn differences(b: &DesiredUser, h: &DesiredUser) -> Vec<Key> {
    let mut keys = Vec::new();
    for kind in [
        MembershipKind::BusinessUnit,
        MembershipKind::Department,
        MembershipKind::Group,
    ] {
        let before = groups_of(b, kind);
        let after = groups_of(h, kind);
        let removed: Vec<&str> = before.difference(&after).copied().collect();
        let added: Vec<&str> = after.difference(&before).copied().collect();
        if let ([from], [to], false) = (
            removed.as_slice(),
            added.as_slice(),
            kind == MembershipKind::Group,
        ) {
            keys.push(Key::Moves(kind, from.to_string(), to.to_string()));
        } else {
            keys.extend(added.iter().map(|g| Key::Adds(g.to_string())));
            keys.extend(removed.iter().map(|g| Key::Removes(g.to_string())));
        }
    }
    let before = admin_of(b);
    let after = admin_of(h);
    keys.extend(
        after
            .difference(&before)
            .map(|g| Key::GrantsLocalAdmin(g.to_string())),
    );
    keys.extend(
        before
            .difference(&after)
            .map(|g| Key::RevokesLocalAdmin(g.to_string())),
    );
    match (b.wants_network_admin(), h.wants_network_admin()) {
        (false, true) => keys.push(Key::GrantsNetworkAdmin),
        (true, false) => keys.push(Key::RevokesNetworkAdmin),
        _ => {}
    }
    for field in ProfileField::ALL {
        if b.get(field) != h.get(field) {
            keys.push(Key::ChangesField(field));
        }
    }
    keys
}

fn groups_of(user: &DesiredUser, kind: MembershipKind) -> BTreeSet<&str> {
    user.memberships()
        .iter()
        .filter(|(_, m)| m.kind == kind)
        .map(|(name, _)| name)
        .collect()
}

fn admin_of(user: &DesiredUser) -> BTreeSet<&str> {
    user.memberships()
        .iter()
        .filter(|(_, m)| m.admin.is_some())
        .map(|(name, _)| name)
        .collect()
}
