//! The ledger and the audit trail, kept as commits on `refs/speakap-sync/state` in the config
//! repository: readable with plain git (`git log refs/speakap-sync/state`), pushed like any ref.
//!
//! Each apply writes one commit whose tree holds `apply.json` (that run's record) and
//! `ledger/<network>.json` (the ledger after the run); other networks' ledgers are carried over.

mod ledger;

use std::path::Path;

use git2::{FileMode, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

pub use ledger::{Ledger, LedgerEntry};

use crate::error::Error;
use crate::hr::SnapshotInfo;

pub const STATE_REF: &str = "refs/speakap-sync/state";
const RECORD_FILE: &str = "apply.json";
const LEDGER_DIR: &str = "ledger";

/// What one apply did, as recorded in its audit commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub actor: String,
    pub network: String,
    pub config_commit: String,
    pub hr: SnapshotInfo,
    pub plan_checksum: String,
    /// The plan exceeded a safety threshold and was forced with its checksum.
    pub forced: bool,
    pub counts: Counts,
    pub results: Vec<OperationResult>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub invited: usize,
    pub restored: usize,
    pub updated: usize,
    pub suspended: usize,
    /// Deleted after the grace period.
    pub deleted: usize,
    /// Anonymized after the grace period (counted with `deleted` by records made before).
    #[serde(default)]
    pub anonymized: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Requests repeated after a transient failure (rate limit, 5xx, dropped connection).
    #[serde(default)]
    pub retries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationResult {
    pub xid: String,
    pub operation: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn open(repo_root: &Path) -> Result<Repository, Error> {
    Repository::open(repo_root).map_err(Error::git)
}

fn ledger_path(network: &str) -> String {
    format!("{LEDGER_DIR}/{network}.json")
}

/// The ledger for `network` at the tip of the state ref; empty when nothing was applied yet.
pub fn read_ledger(repo_root: &Path, network: &str) -> Result<Ledger, Error> {
    let repo = open(repo_root)?;
    let Ok(reference) = repo.find_reference(STATE_REF) else {
        return Ok(Ledger::default());
    };
    let tree = reference.peel_to_tree().map_err(Error::git)?;
    let Ok(entry) = tree.get_path(Path::new(&ledger_path(network))) else {
        return Ok(Ledger::default());
    };
    let blob = entry
        .to_object(&repo)
        .and_then(|o| o.peel_to_blob())
        .map_err(Error::git)?;
    serde_json::from_slice(blob.content()).map_err(|e| {
        Error::input(format!(
            "{STATE_REF}:{}: unreadable ledger: {e}",
            ledger_path(network)
        ))
    })
}

/// Writes the audit commit for one apply and moves the state ref to it.
pub fn record(
    repo_root: &Path,
    record: &ApplyRecord,
    ledger: &Ledger,
    summary_line: &str,
) -> Result<String, Error> {
    let repo = open(repo_root)?;
    let parent = repo
        .find_reference(STATE_REF)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parent_tree = parent
        .as_ref()
        .map(|c| c.tree())
        .transpose()
        .map_err(Error::git)?;

    let ledger_blob = json_blob(&repo, ledger)?;
    let record_blob = json_blob(&repo, record)?;

    let existing_ledgers = parent_tree
        .as_ref()
        .and_then(|t| t.get_name(LEDGER_DIR))
        .and_then(|e| e.to_object(&repo).ok())
        .and_then(|o| o.into_tree().ok());
    let mut ledgers = repo
        .treebuilder(existing_ledgers.as_ref())
        .map_err(Error::git)?;
    ledgers
        .insert(
            format!("{}.json", record.network),
            ledger_blob,
            FileMode::Blob.into(),
        )
        .map_err(Error::git)?;
    let ledgers_tree = ledgers.write().map_err(Error::git)?;
    let mut root = repo.treebuilder(parent_tree.as_ref()).map_err(Error::git)?;
    root.insert(LEDGER_DIR, ledgers_tree, FileMode::Tree.into())
        .map_err(Error::git)?;
    root.insert(RECORD_FILE, record_blob, FileMode::Blob.into())
        .map_err(Error::git)?;
    let tree_id = root.write().map_err(Error::git)?;
    let tree = repo.find_tree(tree_id).map_err(Error::git)?;

    let email = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("user.email").ok())
        .unwrap_or_else(|| "speakap-sync@localhost".into());
    let signature = Signature::now(&record.actor, &email).map_err(Error::git)?;
    let message = format!(
        "apply {config}: {summary_line}\n\nNetwork: {network}\nConfig-Commit: {commit}\nPlan-Checksum: {checksum}\nHR-Sha256: {hr}\nForced: {forced}\n",
        config = crate::config::repo::short(&record.config_commit),
        network = record.network,
        commit = record.config_commit,
        checksum = record.plan_checksum,
        hr = record.hr.sha256,
        forced = record.forced,
    );
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo
        .commit(
            Some(STATE_REF),
            &signature,
            &signature,
            &message,
            &tree,
            &parents,
        )
        .map_err(Error::git)?;
    Ok(id.to_string())
}

/// Every recorded apply, newest first.
pub fn history(repo_root: &Path) -> Result<Vec<(String, ApplyRecord)>, Error> {
    let repo = open(repo_root)?;
    let Ok(reference) = repo.find_reference(STATE_REF) else {
        return Ok(Vec::new());
    };
    let mut commit = Some(reference.peel_to_commit().map_err(Error::git)?);
    let mut entries = Vec::new();
    while let Some(c) = commit {
        let tree = c.tree().map_err(Error::git)?;
        if let Some(entry) = tree.get_name(RECORD_FILE) {
            let blob = entry
                .to_object(&repo)
                .and_then(|o| o.peel_to_blob())
                .map_err(Error::git)?;
            let record: ApplyRecord = serde_json::from_slice(blob.content()).map_err(|e| {
                Error::input(format!(
                    "{STATE_REF} commit {}: unreadable {RECORD_FILE}: {e}",
                    c.id()
                ))
            })?;
            entries.push((c.id().to_string(), record));
        }
        commit = c.parents().next();
    }
    Ok(entries)
}

/// Who is applying: the CI actor, else git's user.name, else the login name.
pub fn actor(repo_root: &Path) -> String {
    std::env::var("GITHUB_ACTOR")
        .ok()
        .filter(|a| !a.is_empty())
        .or_else(|| {
            Repository::open(repo_root)
                .ok()
                .and_then(|r| r.config().ok())
                .and_then(|c| c.get_string("user.name").ok())
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn json_blob<T: Serialize>(repo: &Repository, value: &T) -> Result<Oid, Error> {
    let mut text = serde_json::to_string_pretty(value).expect("state serializes");
    text.push('\n');
    repo.blob(text.as_bytes()).map_err(Error::git)
}
