//! Exclusions: people the sync never invites, changes or removes, by employee ID or by a
//! matcher over their record. An excluded record is not validated: it is not the sync's.

use foldhash::HashMap;

use super::Excluded;
use crate::config::{Config, Origin};
use crate::hr::{Layout, Record};
use crate::rules::CompiledMatcher;

pub(super) struct Exclusions<'c> {
    by_xid: HashMap<&'c str, (&'c str, &'c Origin)>,
    matchers: Vec<(CompiledMatcher, (&'c str, &'c Origin))>,
    separator: char,
}

impl<'c> Exclusions<'c> {
    pub fn new(config: &'c Config, layout: &Layout) -> Exclusions<'c> {
        let exclusions = &config.exclusions;
        Exclusions {
            by_xid: (exclusions.iter())
                .filter_map(|e| Some((e.xid.as_deref()?, (e.reason.as_str(), &e.origin))))
                .collect(),
            matchers: (exclusions.iter())
                .filter_map(|e| {
                    let matcher = CompiledMatcher::compile(e.when.as_ref()?, layout);
                    Some((matcher, (e.reason.as_str(), &e.origin)))
                })
                .collect(),
            separator: super::separator(config),
        }
    }

    /// The exclusion of the record of `xid`, if one excludes it: by its ID, else the first
    /// matcher that holds. A record without an ID is never excluded (it is a broken row).
    pub fn of(&self, xid: &str, record: &Record) -> Option<Excluded> {
        if xid.is_empty() {
            return None;
        }
        let by_matcher = || {
            let holds = |(m, _): &&(CompiledMatcher, _)| m.holds(record, self.separator);
            self.matchers
                .iter()
                .find(holds)
                .map(|(_, exclusion)| exclusion)
        };
        let &(reason, at) = self.by_xid.get(xid).or_else(by_matcher)?;
        Some(Excluded {
            xid: xid.to_string(),
            reason: reason.to_string(),
            at: at.clone(),
        })
    }
}
