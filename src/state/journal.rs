//! The journal of an apply in progress, in the repository's git directory: one JSON line per
//! event, each written and synced to disk before the run goes on, so that what an apply did
//! survives a crash of the process, a network that cannot be read afterwards, and an audit commit
//! that cannot be written. The audit commit is made from it; only then is it removed. A journal
//! left behind is committed by the next `apply` or `audit` before anything else happens.
//!
//! Lines: `begin` (the record so far and the state tip the run started from), `started` (an
//! operation is about to be sent), `result` (its outcome), `finished` (the complete record and the
//! ledger after the run). The plan applied is kept beside it (`.plan.json`), for a recovery that
//! has to work out the ledger from the results alone.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ApplyRecord, Ledger, OperationResult};
use crate::error::Error;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    Begin(Begin),
    Started { xid: String, operation: String },
    Result(OperationResult),
    Finished(Finished),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Begin {
    /// The record without results yet.
    pub record: ApplyRecord,
    /// The state ref's tip the run read its ledger from (`None`: no record yet).
    pub base_tip: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finished {
    pub record: ApplyRecord,
    pub ledger: Ledger,
    pub summary: String,
}

/// An open journal; every call writes one line and syncs it.
pub struct Journal {
    file: File,
    path: PathBuf,
    plan_path: PathBuf,
}

/// A journal left by a run that did not record itself.
pub struct Pending {
    pub entries: Vec<Entry>,
    pub plan_json: Option<String>,
    pub path: PathBuf,
    plan_path: PathBuf,
}

fn paths(state_dir: &Path, network: &str) -> (PathBuf, PathBuf) {
    (
        state_dir.join(format!("journal-{network}.jsonl")),
        state_dir.join(format!("journal-{network}.plan.json")),
    )
}

impl Journal {
    /// Starts the journal of a run. Refuses while an earlier run's journal is still there: that
    /// run must be recorded first.
    pub fn begin(
        state_dir: &Path,
        network: &str,
        begin: Begin,
        plan_json: &str,
    ) -> Result<Journal, Error> {
        let (path, plan_path) = paths(state_dir, network);
        let cannot = |path: &Path, e: std::io::Error| {
            Error::input(format!(
                "cannot write the apply journal {}: {e}; apply needs to write to the repository's git directory",
                path.display()
            ))
        };
        std::fs::create_dir_all(state_dir).map_err(|e| cannot(state_dir, e))?;
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::input(format!(
                    "{} holds an apply that is not recorded yet; run `speakap-sync audit` to record it first",
                    path.display()
                )),
                _ => cannot(&path, e),
            })?;
        let written =
            std::fs::write(&plan_path, plan_json).and_then(|()| File::open(&plan_path)?.sync_all());
        let mut journal = Journal {
            file,
            path,
            plan_path,
        };
        if let Err(e) = written {
            let error = cannot(&journal.plan_path, e);
            let _ = journal.remove();
            return Err(error);
        }
        if let Err(e) = journal.write(&Entry::Begin(begin)) {
            let _ = journal.remove();
            return Err(e);
        }
        Ok(journal)
    }

    pub fn started(&mut self, xid: &str, operation: &str) -> Result<(), Error> {
        self.write(&Entry::Started {
            xid: xid.to_string(),
            operation: operation.to_string(),
        })
    }

    pub fn result(&mut self, result: &OperationResult) -> Result<(), Error> {
        self.write(&Entry::Result(result.clone()))
    }

    pub fn finished(&mut self, finished: Finished) -> Result<(), Error> {
        self.write(&Entry::Finished(finished))
    }

    /// After the audit commit: the journal has served.
    pub fn remove(self) -> Result<(), Error> {
        remove(&self.path, &self.plan_path)
    }

    fn write(&mut self, entry: &Entry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(entry).expect("journal entries serialize");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                Error::input(format!(
                    "cannot write the apply journal {}: {e}",
                    self.path.display()
                ))
            })
    }
}

/// The journal an earlier run of `network` left, if any.
pub fn pending(state_dir: &Path, network: &str) -> Result<Option<Pending>, Error> {
    let (path, plan_path) = paths(state_dir, network);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::input(format!("cannot read {}: {e}", path.display())));
        }
    };
    let mut entries = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => entries.push(entry),
            // A crash in the middle of a write leaves the last line cut short.
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => {
                return Err(Error::input(format!(
                    "{}:{}: unreadable journal entry: {e}",
                    path.display(),
                    i + 1
                )));
            }
        }
    }
    let plan_json = std::fs::read_to_string(&plan_path).ok();
    Ok(Some(Pending {
        entries,
        plan_json,
        path,
        plan_path,
    }))
}

/// Networks with a journal left behind, from the files' names.
pub fn pending_networks(state_dir: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut networks: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let network = name.strip_prefix("journal-")?.strip_suffix(".jsonl")?;
            Some(network.to_string())
        })
        .collect();
    networks.sort();
    networks
}

impl Pending {
    /// After its audit commit.
    pub fn remove(self) -> Result<(), Error> {
        remove(&self.path, &self.plan_path)
    }
}

fn remove(path: &Path, plan_path: &Path) -> Result<(), Error> {
    let _ = std::fs::remove_file(plan_path);
    std::fs::remove_file(path).map_err(|e| {
        Error::input(format!(
            "cannot remove the recorded journal {}: {e}; remove it by hand",
            path.display()
        ))
    })
}
