//! `audit`: the record of earlier applies, after recording any a cut-short apply left behind.

use std::path::Path;

use super::apply::record_pending;
use crate::cli::{AuditArgs, AuditFormat};
use crate::config;
use crate::error::Error;
use crate::state::{self, ApplyRecord, journal};
use crate::text::inert;

pub fn audit(args: &AuditArgs) -> Result<i32, Error> {
    let repo = git2::Repository::discover(&args.repo).map_err(Error::git)?;
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    record_pending_journals(&root)?;
    if let Some(upstream) = &args.rebase_onto {
        match state::rebase_onto(&root, upstream)? {
            Some(tip) => eprintln!(
                "{} rebased onto {upstream}: now at {}",
                state::STATE_REF,
                config::repo::short(&tip)
            ),
            None => eprintln!("{} already contains {upstream}", state::STATE_REF),
        }
    }
    let history = state::history(&root)?;
    match args.format {
        AuditFormat::Json => print_history_json(&history),
        AuditFormat::Text if history.is_empty() => println!(
            "No applies recorded yet ({} does not exist).",
            state::STATE_REF
        ),
        AuditFormat::Text => {
            for (commit, record) in &history {
                print_record(commit, record);
            }
        }
    }
    Ok(0)
}

/// Journals left by applies that did not record themselves, committed now; a network whose
/// apply is running is left to that apply.
fn record_pending_journals(root: &Path) -> Result<(), Error> {
    let dir = state::state_dir(root)?;
    for network in journal::pending_networks(&dir) {
        match state::ApplyLock::acquire(&dir, &network, false) {
            Ok(_lock) => record_pending(root, &network)?,
            Err(_) => eprintln!(
                "note: an apply of network {network} is running; its journal is recorded when it ends"
            ),
        }
    }
    Ok(())
}

fn print_history_json(history: &[(String, ApplyRecord)]) {
    let entries: Vec<serde_json::Value> = history
        .iter()
        .map(|(commit, record)| {
            let mut value = serde_json::to_value(record).expect("records serialize");
            value["audit_commit"] = serde_json::Value::String(commit.clone());
            value
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&entries).expect("records serialize")
    );
}

/// One apply: who, what, the counts, and each operation that did not succeed.
fn print_record(commit: &str, r: &ApplyRecord) {
    let as_of = r.as_of.map(|d| format!("  as of {d}")).unwrap_or_default();
    println!(
        "{}  {}  by {}  network {}  config {}  plan {}  hr {}{as_of}\n    {} invited, {} restored, {} updated, {} suspended, {} deleted, {} anonymized, {} ok, {} failed, {} unknown{}",
        config::repo::short(commit),
        r.time,
        inert(&r.actor),
        r.network,
        config::repo::short(&r.config_commit),
        &r.plan_checksum[..r.plan_checksum.len().min(19)],
        &r.hr.sha256[..r.hr.sha256.len().min(12)],
        r.counts.invited,
        r.counts.restored,
        r.counts.updated,
        r.counts.suspended,
        r.counts.deleted,
        r.counts.anonymized,
        r.counts.succeeded,
        r.counts.failed,
        r.counts.unknown,
        if r.forced {
            " (forced past a safety threshold)"
        } else {
            ""
        }
    );
    for result in r.results.iter().filter(|o| !o.ok) {
        let label = match result.outcome {
            state::Outcome::Unknown => "UNKNOWN",
            _ => "FAILED",
        };
        println!(
            "    {label} {} {}: {}",
            inert(&result.xid),
            inert(&result.operation),
            inert(result.error.as_deref().unwrap_or(""))
        );
    }
    for note in &r.notes {
        println!("    note: {note}");
    }
}
