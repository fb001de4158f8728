//! The ledger and the audit trail, kept as commits on `refs/speakap-sync/state` in the config
//! repository: readable with plain git (`git log refs/speakap-sync/state`), pushed like any ref.
//!
//! Each apply writes one commit whose tree holds `apply.json` (that run's record) and
//! `ledger/<network>.json` (the ledger after the run); other networks' ledgers are carried over.

pub mod journal;
mod ledger;
mod lock;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{FileMode, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

pub use ledger::{Ledger, LedgerEntry};
pub use lock::ApplyLock;

use crate::error::Error;
use crate::hr::SnapshotInfo;

pub const STATE_REF: &str = "refs/speakap-sync/state";
const RECORD_FILE: &str = "apply.json";
const LEDGER_DIR: &str = "ledger";

/// What one apply did, as recorded in its audit commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The day the plan was made for: leavers, grace periods and start dates count from it.
    /// (Absent from records made before it was kept.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<jiff::civil::Date>,
    pub counts: Counts,
    pub results: Vec<OperationResult>,
    /// What a reader of the record should know about how it was made: a run recovered from its
    /// journal, a ledger worked out without a final read of the network, a record rebased onto
    /// a newer one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    /// Operations whose outcome could not be known (the connection broke after the request
    /// was sent, say) and which the network did not show as done afterwards.
    #[serde(default)]
    pub unknown: usize,
    /// Operations reported failed or unknown whose effect the network showed afterwards
    /// (counted in `succeeded` too).
    #[serde(default)]
    pub confirmed: usize,
    /// Requests repeated after a transient failure (rate limit, 5xx, dropped connection).
    #[serde(default)]
    pub retries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredResult")]
pub struct OperationResult {
    pub xid: String,
    pub operation: String,
    /// Done, or confirmed done after an error.
    pub ok: bool,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The account an invite or SSO creation made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// Reported failed or unknown, but the network showed its effect afterwards.
    Confirmed,
    Failed,
    /// The request may or may not have taken effect, and the network did not show it.
    Unknown,
}

/// Records made before `outcome` was kept have only `ok`.
#[derive(Deserialize)]
struct StoredResult {
    xid: String,
    operation: String,
    ok: bool,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    eid: Option<String>,
}

impl From<StoredResult> for OperationResult {
    fn from(r: StoredResult) -> Self {
        let outcome = r
            .outcome
            .unwrap_or(if r.ok { Outcome::Done } else { Outcome::Failed });
        OperationResult {
            xid: r.xid,
            operation: r.operation,
            ok: matches!(outcome, Outcome::Done | Outcome::Confirmed),
            outcome,
            error: r.error,
            eid: r.eid,
        }
    }
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

/// Where apply keeps its lock and journal: `speakap-sync/` in the repository's git directory,
/// never in the work tree or in what is pushed. The common directory, so that the work trees of
/// one repository (`git worktree`) share one lock, as they share the state ref.
pub fn state_dir(repo_root: &Path) -> Result<PathBuf, Error> {
    Ok(state_dir_of(&open(repo_root)?))
}

fn state_dir_of(repo: &Repository) -> PathBuf {
    repo.commondir().join("speakap-sync")
}

/// The state ref's tip, if there is a record yet.
pub fn tip(repo_root: &Path) -> Result<Option<String>, Error> {
    let repo = open(repo_root)?;
    Ok(current_tip(&repo)?.map(|id| id.to_string()))
}

/// Whether the state ref holds a ledger for `network`: a sync has applied to it before.
pub fn has_record(repo_root: &Path, network: &str) -> Result<bool, Error> {
    let repo = open(repo_root)?;
    let Some(tip) = current_tip(&repo)? else {
        return Ok(false);
    };
    let tree = repo
        .find_commit(tip)
        .and_then(|c| c.tree())
        .map_err(Error::git)?;
    Ok(tree.get_path(Path::new(&ledger_path(network))).is_ok())
}

/// Refuses early, before anything is applied, when the state ref could not be moved: the git
/// directory is read-only, or another process holds the ref's lock file.
pub fn check_writable(repo_root: &Path) -> Result<(), Error> {
    let repo = open(repo_root)?;
    let probe = state_dir_of(&repo).join(".write-check");
    std::fs::create_dir_all(probe.parent().expect("has a parent"))
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            Error::input(format!(
                "cannot write to the git directory {}: {e}; the audit record could not be kept, so nothing is applied",
                repo.commondir().display()
            ))
        })?;
    // The state ref is shared by all work trees: its lock is in the common directory.
    let ref_lock = repo.commondir().join(format!("{STATE_REF}.lock"));
    if ref_lock.exists() {
        return Err(Error::input(format!(
            "{} exists: another git process is moving {STATE_REF}; if none is, remove the file",
            ref_lock.display()
        )));
    }
    Ok(())
}

fn current_tip(repo: &Repository) -> Result<Option<Oid>, Error> {
    match repo.find_reference(STATE_REF) {
        Ok(reference) => Ok(Some(reference.peel_to_commit().map_err(Error::git)?.id())),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(Error::git(e)),
    }
}

/// Writes the audit commit for one apply and moves the state ref to it. `base_tip` is the tip
/// the run read its ledger from; when the ref has moved on since (a record fetched from another
/// machine), the commit is rebased onto the newer tip, ledgers merged, and never dropped. The
/// ref moves by compare-and-swap, so a writer that comes in between is rebased onto too.
pub fn record(
    repo_root: &Path,
    record: &ApplyRecord,
    ledger: &Ledger,
    summary_line: &str,
    base_tip: Option<&str>,
) -> Result<String, Error> {
    let repo = open(repo_root)?;
    let base = base_tip
        .map(|t| Oid::from_str(t).map_err(Error::git))
        .transpose()?;
    let commit = write_commit(&repo, record, ledger, summary_line, base)?;
    let mut attempts = 0;
    loop {
        let tip = current_tip(&repo)?;
        let new = if tip == base {
            commit
        } else {
            replay(
                &repo,
                commit,
                tip.expect("a tip, since it differs from the base"),
            )?
        };
        if move_ref(&repo, tip, new)? {
            return Ok(new.to_string());
        }
        attempts += 1;
        if attempts == 10 {
            return Err(Error::Git(format!(
                "{STATE_REF} kept moving while the audit commit {new} was written; it is in the repository: run `git update-ref {STATE_REF} {new}` once the other writer is done"
            )));
        }
    }
}

/// Replays the local records that `upstream` does not have onto it (as `git rebase` would, with
/// ledgers merged three ways), so that the state ref can be pushed after another machine's
/// apply was pushed first. Returns the new tip, or `None` when there was nothing to rebase.
pub fn rebase_onto(repo_root: &Path, upstream: &str) -> Result<Option<String>, Error> {
    let repo = open(repo_root)?;
    let upstream = repo
        .revparse_single(upstream)
        .and_then(|o| o.peel_to_commit())
        .map_err(Error::git)?
        .id();
    let Some(local) = current_tip(&repo)? else {
        repo.reference(
            STATE_REF,
            upstream,
            false,
            "speakap-sync: take the fetched record",
        )
        .map_err(Error::git)?;
        return Ok(Some(upstream.to_string()));
    };
    let base = repo.merge_base(local, upstream).ok();
    if base == Some(upstream) {
        return Ok(None);
    }
    let mut ours = Vec::new();
    let mut next = Some(local);
    while let Some(id) = next {
        if Some(id) == base {
            break;
        }
        ours.push(id);
        next = repo
            .find_commit(id)
            .map_err(Error::git)?
            .parent_ids()
            .next();
    }
    let mut onto = upstream;
    for &commit in ours.iter().rev() {
        onto = replay(&repo, commit, onto)?;
    }
    if !move_ref(&repo, Some(local), onto)? {
        return Err(Error::Git(format!(
            "{STATE_REF} moved while it was rebased; run the rebase again"
        )));
    }
    Ok(Some(onto.to_string()))
}

/// `commit` made again on top of `onto`: its record, and each ledger it changed merged with the
/// one `onto` has. Other files come from `onto`.
fn replay(repo: &Repository, commit: Oid, onto: Oid) -> Result<Oid, Error> {
    let commit = repo.find_commit(commit).map_err(Error::git)?;
    let onto = repo.find_commit(onto).map_err(Error::git)?;
    let ours = commit.tree().map_err(Error::git)?;
    let base = commit
        .parents()
        .next()
        .map(|p| p.tree())
        .transpose()
        .map_err(Error::git)?;
    let theirs = onto.tree().map_err(Error::git)?;
    let mut ledgers = BTreeMap::new();
    for entry in subtree(repo, &ours, LEDGER_DIR)?
        .iter()
        .flat_map(|t| t.iter())
    {
        let name = entry.name().unwrap_or_default().to_string();
        let path = format!("{LEDGER_DIR}/{name}");
        let of = |tree: Option<&git2::Tree>| -> Result<Option<Ledger>, Error> {
            tree.map(|t| read_json::<Ledger>(repo, t, &path))
                .transpose()
                .map(Option::flatten)
        };
        let (base, mine, theirs) = (of(base.as_ref())?, of(Some(&ours))?, of(Some(&theirs))?);
        if mine == base {
            continue;
        }
        let mine = mine.unwrap_or_default();
        let merged = match theirs {
            Some(theirs) => mine.merged(&base.unwrap_or_default(), &theirs),
            None => mine,
        };
        ledgers.insert(name, merged);
    }
    let record_blob = ours
        .get_name(RECORD_FILE)
        .map(|e| e.id())
        .ok_or_else(|| Error::Git(format!("commit {} has no {RECORD_FILE}", commit.id())))?;
    let tree = edit_tree(repo, Some(&theirs), record_blob, &ledgers)?;
    let message = format!(
        "{}Rebased-From: {}\n",
        commit.message().unwrap_or_default(),
        commit.id()
    );
    repo.commit(
        None,
        &commit.author(),
        &commit.committer(),
        &message,
        &tree,
        &[&onto],
    )
    .map_err(Error::git)
}

/// Moves the state ref from `from` to `to`, unless it is no longer at `from`.
fn move_ref(repo: &Repository, from: Option<Oid>, to: Oid) -> Result<bool, Error> {
    let moved = match from {
        Some(from) => repo.reference_matching(STATE_REF, to, true, from, "speakap-sync: apply"),
        None => repo.reference(STATE_REF, to, false, "speakap-sync: first apply"),
    };
    match moved {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::git(e)),
    }
}

fn write_commit(
    repo: &Repository,
    record: &ApplyRecord,
    ledger: &Ledger,
    summary_line: &str,
    parent: Option<Oid>,
) -> Result<Oid, Error> {
    let parent = parent
        .map(|p| repo.find_commit(p))
        .transpose()
        .map_err(Error::git)?;
    let parent_tree = parent
        .as_ref()
        .map(|c| c.tree())
        .transpose()
        .map_err(Error::git)?;
    let record_blob = json_blob(repo, record)?;
    let ledgers = BTreeMap::from([(format!("{}.json", record.network), ledger.clone())]);
    let tree = edit_tree(repo, parent_tree.as_ref(), record_blob, &ledgers)?;

    let email = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("user.email").ok())
        .unwrap_or_else(|| "speakap-sync@localhost".into());
    let signature = Signature::now(&record.actor, &email).map_err(Error::git)?;
    let as_of = record
        .as_of
        .map(|d| format!("As-Of: {d}\n"))
        .unwrap_or_default();
    let message = format!(
        "apply {config}: {summary_line}\n\nNetwork: {network}\nConfig-Commit: {commit}\nPlan-Checksum: {checksum}\nHR-Sha256: {hr}\n{as_of}Forced: {forced}\n",
        config = crate::config::repo::short(&record.config_commit),
        network = record.network,
        commit = record.config_commit,
        checksum = record.plan_checksum,
        hr = record.hr.sha256,
        forced = record.forced,
    );
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(None, &signature, &signature, &message, &tree, &parents)
        .map_err(Error::git)
}

/// `base` with `apply.json` replaced and the given ledgers written; other ledgers carried over.
fn edit_tree<'r>(
    repo: &'r Repository,
    base: Option<&git2::Tree>,
    record_blob: Oid,
    ledgers: &BTreeMap<String, Ledger>,
) -> Result<git2::Tree<'r>, Error> {
    let existing_ledgers = match base {
        Some(tree) => subtree(repo, tree, LEDGER_DIR)?,
        None => None,
    };
    let mut ledger_dir = repo
        .treebuilder(existing_ledgers.as_ref())
        .map_err(Error::git)?;
    for (name, ledger) in ledgers {
        let blob = json_blob(repo, ledger)?;
        ledger_dir
            .insert(name, blob, FileMode::Blob.into())
            .map_err(Error::git)?;
    }
    let ledgers_tree = ledger_dir.write().map_err(Error::git)?;
    let mut root = repo.treebuilder(base).map_err(Error::git)?;
    root.insert(LEDGER_DIR, ledgers_tree, FileMode::Tree.into())
        .map_err(Error::git)?;
    root.insert(RECORD_FILE, record_blob, FileMode::Blob.into())
        .map_err(Error::git)?;
    let id = root.write().map_err(Error::git)?;
    repo.find_tree(id).map_err(Error::git)
}

fn subtree<'r>(
    repo: &'r Repository,
    tree: &git2::Tree,
    name: &str,
) -> Result<Option<git2::Tree<'r>>, Error> {
    match tree.get_name(name) {
        Some(entry) => Ok(Some(
            entry
                .to_object(repo)
                .and_then(|o| o.peel_to_tree())
                .map_err(Error::git)?,
        )),
        None => Ok(None),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    repo: &Repository,
    tree: &git2::Tree,
    path: &str,
) -> Result<Option<T>, Error> {
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let blob = entry
        .to_object(repo)
        .and_then(|o| o.peel_to_blob())
        .map_err(Error::git)?;
    serde_json::from_slice(blob.content())
        .map(Some)
        .map_err(|e| Error::input(format!("{STATE_REF}:{path}: unreadable: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record_for(network: &str, commit: &str) -> ApplyRecord {
        ApplyRecord {
            actor: "Test".into(),
            network: network.into(),
            config_commit: commit.into(),
            ..ApplyRecord::default()
        }
    }

    fn ledger_with(xid: &str) -> Ledger {
        Ledger {
            users: [(xid.to_string(), LedgerEntry::default())].into(),
        }
    }

    #[test]
    fn a_record_that_meets_a_newer_tip_is_rebased_onto_it_never_dropped() {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let root = dir.path();
        let first = record(
            root,
            &record_for("n1", "c1"),
            &ledger_with("1"),
            "first",
            None,
        )
        .unwrap();
        // A run that read its ledger before `first` existed records after it.
        let second = record(
            root,
            &record_for("n1", "c2"),
            &ledger_with("2"),
            "second",
            None,
        )
        .unwrap();
        let history = history(root).unwrap();
        assert_eq!(
            history
                .iter()
                .map(|(_, r)| r.config_commit.as_str())
                .collect::<Vec<_>>(),
            ["c2", "c1"]
        );
        assert_eq!(history[0].0, second);
        assert_eq!(history[1].0, first);
        let repo = Repository::open(root).unwrap();
        let message = repo
            .find_commit(Oid::from_str(&second).unwrap())
            .unwrap()
            .message()
            .unwrap()
            .to_string();
        assert!(message.contains("Rebased-From:"), "{message}");
        // Both runs' people: each run added one to the same (empty) base.
        let merged = read_ledger(root, "n1").unwrap();
        assert_eq!(merged.users.keys().collect::<Vec<_>>(), ["1", "2"]);
    }

    /// A repository with one commit in `dir/main`, and a linked work tree of it in `dir/linked`.
    fn main_and_linked_work_tree(dir: &Path) -> (PathBuf, PathBuf) {
        let main = dir.join("main");
        let repo = Repository::init(&main).unwrap();
        let signature = Signature::now("T", "t@x").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        repo.commit(Some("HEAD"), &signature, &signature, "init", &tree, &[])
            .unwrap();
        let linked = dir.join("linked");
        repo.worktree("linked", &linked, None).unwrap();
        (main, linked)
    }

    #[test]
    fn the_work_trees_of_one_repository_share_the_lock_and_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (main, linked) = main_and_linked_work_tree(dir.path());
        assert_eq!(
            state_dir(&linked).unwrap().canonicalize().ok(),
            None,
            "not created yet"
        );
        std::fs::create_dir_all(state_dir(&main).unwrap()).unwrap();
        assert_eq!(
            state_dir(&linked).unwrap().canonicalize().unwrap(),
            state_dir(&main).unwrap().canonicalize().unwrap()
        );
    }

    #[test]
    fn a_linked_work_tree_sees_the_state_refs_lock_taken_in_the_main_one() {
        let dir = tempfile::tempdir().unwrap();
        let (main, linked) = main_and_linked_work_tree(dir.path());
        assert!(check_writable(&linked).is_ok());
        let lock = main.join(".git").join(format!("{STATE_REF}.lock"));
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, "").unwrap();
        for work_tree in [&main, &linked] {
            let refused = check_writable(work_tree).unwrap_err().to_string();
            assert!(refused.contains("another git process"), "{refused}");
        }
    }
}
