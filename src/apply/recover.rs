//! A run that did not record itself (the process died, or the audit commit could not be
//! written) left its journal; this commits the record from it, before anything else is done.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::plan::render::SavedPlan;
use crate::state::journal::{self, Entry, Finished};
use crate::state::{self, OperationResult, Outcome};

/// Records the journal `network`'s last run left, if any; returns the audit commit. The caller
/// holds the apply lock, so the journal is not that of a run still going on.
pub fn record_pending(repo_root: &Path, network: &str) -> Result<Option<String>, Error> {
    let dir = state::state_dir(repo_root)?;
    let Some(pending) = journal::pending(&dir, network)? else {
        return Ok(None);
    };
    let finished = pending.entries.iter().find_map(|e| match e {
        Entry::Finished(finished) => Some(finished.clone()),
        _ => None,
    });
    let (finished, base_tip) = match finished {
        Some(finished) => {
            let base_tip = pending.entries.iter().find_map(|e| match e {
                Entry::Begin(begin) => Some(begin.base_tip.clone()),
                _ => None,
            });
            (finished, base_tip.flatten())
        }
        None => (from_results(repo_root, &pending)?, state::tip(repo_root)?),
    };
    let mut record = finished.record;
    record.notes.push(format!(
        "recorded from the journal {} by a later run",
        pending.path.display()
    ));
    let commit = state::record(
        repo_root,
        &record,
        &finished.ledger,
        &finished.summary,
        base_tip.as_deref(),
    )?;
    pending.remove()?;
    Ok(Some(commit))
}

/// The record of a run that ended before it finished: the outcomes it journaled, every
/// operation it started without an outcome as unknown, and the ledger worked out from them.
fn from_results(repo_root: &Path, pending: &journal::Pending) -> Result<Finished, Error> {
    let mut record = pending
        .entries
        .iter()
        .find_map(|e| match e {
            Entry::Begin(begin) => Some(begin.record.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            Error::input(format!(
                "{} has no beginning: it is not an apply journal; move it away and run again",
                pending.path.display()
            ))
        })?;
    let mut outcomes: BTreeMap<(String, String), OperationResult> = BTreeMap::new();
    for entry in &pending.entries {
        match entry {
            Entry::Started { xid, operation } => {
                outcomes
                    .entry((xid.clone(), operation.clone()))
                    .or_insert_with(|| OperationResult {
                        xid: xid.clone(),
                        operation: operation.clone(),
                        ok: false,
                        outcome: Outcome::Unknown,
                        error: Some("the run ended before the outcome was known".into()),
                        eid: None,
                    });
            }
            Entry::Result(result) => {
                outcomes.insert(
                    (result.xid.clone(), result.operation.clone()),
                    result.clone(),
                );
            }
            Entry::Begin(_) | Entry::Finished(_) => {}
        }
    }
    let results: Vec<OperationResult> = outcomes.into_values().collect();
    let previous = state::read_ledger(repo_root, &record.network)?;
    let plan = pending
        .plan_json
        .as_deref()
        .and_then(|text| SavedPlan::parse(text).ok())
        .map(|saved| saved.plan);
    let ledger = match &plan {
        Some(plan) => super::ledger_from_results(&previous, plan, &results, &|xid| {
            previous.users.get(xid).and_then(|e| e.digest.clone())
        }),
        None => {
            record.notes.push(
                "the plan kept beside the journal was unreadable: the ledger is the one before the run"
                    .into(),
            );
            previous
        }
    };
    record.counts = match &plan {
        Some(plan) => super::counts(plan, &results, 0),
        None => record.counts,
    };
    record.notes.push(
        "the run ended before it recorded itself: operations it started without a known outcome are unknown, and the ledger was worked out from the outcomes"
            .into(),
    );
    record.results = results;
    let summary = super::summary(&record.counts);
    Ok(Finished {
        record,
        ledger,
        summary,
    })
}
