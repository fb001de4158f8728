//! `apply`: refuses what must not run (uncommitted or unreviewed config, a stale or edited
//! plan, another day against a real network), applies the plan, and records the run in the
//! state ref, with a journal that outlives a run cut short.

use std::path::Path;

use super::connection::Connection;
use super::inputs::{Inputs, gather, make_plan};
use super::{load_config, real_today};
use crate::apply;
use crate::cli::ApplyArgs;
use crate::config::{self, Config};
use crate::error::Error;
use crate::notify::ApplyFacts;
use crate::output::Paint;
use crate::plan::{Plan, render};
use crate::speakap;
use crate::state::journal::{self, Journal};
use crate::state::{self, ApplyRecord, Ledger};
use crate::text::inert;

pub async fn apply(args: &ApplyArgs) -> Result<i32, Error> {
    let mut facts = None;
    let mut webhook = None;
    let outcome = apply_checked(args, &mut facts, &mut webhook).await;
    if args.notify {
        // Keyed by the config directory as given: known also when the config does not load.
        let config_dir = args.config.repo.display().to_string();
        crate::notify::after_apply(webhook.as_ref(), &config_dir, facts.as_ref(), &outcome).await;
    }
    outcome
}

/// The preconditions, all before the first request (a failed one means nothing is applied),
/// then the apply; `facts` and `webhook` are filled in for `--notify` as they become known.
async fn apply_checked(
    args: &ApplyArgs,
    facts: &mut Option<ApplyFacts>,
    webhook: &mut Option<config::NotifySettings>,
) -> Result<i32, Error> {
    let config = load_config(&args.config, false)?;
    webhook.clone_from(&config.sync.notify);
    refuse_unreviewed(&config, args)?;
    let repo_root = config.files.repo_root.clone();
    let network = config.sync.network.clone();
    let _lock = state::ApplyLock::acquire(&state::state_dir(&repo_root)?, &network, args.wait)?;
    record_pending(&repo_root, &network)?;
    state::check_writable(&repo_root)?;
    let mut credentials = args
        .credentials
        .as_deref()
        .map(apply::CredentialsFile::open)
        .transpose()?;
    let connection = Connection::open(&config).await?;
    let outcome = apply_with(args, config, &connection, credentials.as_mut(), facts).await;
    connection.close().await?;
    outcome
}

/// Only committed config, and with `--require-branch` only commits on that branch.
fn refuse_unreviewed(config: &Config, args: &ApplyArgs) -> Result<(), Error> {
    if !config.files.uncommitted.is_empty() {
        return Err(Error::input(format!(
            "uncommitted changes in {}: apply only applies committed config; commit or stash them first",
            config.files.uncommitted.join(", ")
        )));
    }
    if let (Some(branch), Some(commit)) = (&args.require_branch, config.files.revision.commit_id())
    {
        config::repo::require_on_branch(&config.files.repo_root, commit, branch)?;
    }
    Ok(())
}

/// An earlier run's journal is committed first, so that no record is ever lost or overtaken.
pub(super) fn record_pending(repo_root: &Path, network: &str) -> Result<(), Error> {
    if let Some(commit) = apply::record_pending(repo_root, network)? {
        eprintln!(
            "note: an earlier apply of network {network} had not recorded itself; its journal is now recorded as {} at {}",
            state::STATE_REF,
            config::repo::short(&commit)
        );
    }
    Ok(())
}

/// No record, but accounts with employee IDs: a sync has run before, and applying without its
/// record would forget manual deletions and take over rights granted by hand.
fn refuse_unrecorded(inputs: &Inputs, adopt: bool) -> Result<(), Error> {
    if inputs.unrecorded_accounts && !adopt {
        return Err(Error::input(format!(
            "network {} has accounts with employee IDs, but this repository has no record of earlier applies ({}): fetch it first (git fetch origin '+{}:{}'), or, if the sync never applied to this network, start its record with --adopt",
            inputs.config.sync.network,
            state::STATE_REF,
            state::STATE_REF,
            state::STATE_REF
        )));
    }
    Ok(())
}

/// A real network is applied to as of today: another day would delete leavers before their grace
/// period ends and invite joiners before their start date.
fn refuse_other_date(
    inputs: &Inputs,
    args: &ApplyArgs,
    connection: &Connection,
) -> Result<(), Error> {
    let today = real_today(&inputs.config.sync.policy.timezone.0)?;
    if inputs.today != today && !connection.simulated && !args.allow_other_date {
        return Err(Error::input(format!(
            "--now {} is not today ({today} in {}): against a real network apply acts on today only; pass --allow-other-date if you mean it",
            inputs.today, inputs.config.sync.policy.timezone.0
        )));
    }
    Ok(())
}

/// A plan saved by `plan --out` is applied only if it is the plan: recomputed from the inputs
/// as they are now, it must have the file's checksum, and so must the file's contents. An edited
/// file, or inputs that changed since, are refused with what differs. Returns the plan and its
/// checksum.
fn reviewed_plan(path: &Path, inputs: &Inputs) -> Result<(Plan, String), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
    let saved = render::SavedPlan::parse(&text).map_err(|e| {
        Error::input(format!(
            "{} is not a plan written by `plan --out`: {e}",
            path.display()
        ))
    })?;
    let reviewed = saved.plan;
    if reviewed.checksum() != saved.checksum {
        return Err(Error::input(format!(
            "{} was edited after it was written (its checksum no longer matches its contents); plan again",
            path.display()
        )));
    }
    let stale = |what: &str, then: &str, now: &str| {
        Error::input(format!(
            "the plan in {} is stale: {what} changed since it was made ({then} then, {now} now); plan again and review the new plan",
            path.display()
        ))
    };
    // Leavers, grace periods and start dates are worked out as of the plan's day: a plan made
    // for another day would suspend, delete or invite on the wrong one.
    if reviewed.as_of != inputs.today {
        return Err(Error::input(format!(
            "the plan in {} was made as of {}, and this apply runs as of {}: plan again as of the day it is applied",
            path.display(),
            reviewed.as_of,
            inputs.today
        )));
    }
    let commit = inputs.config.files.revision.commit_id().unwrap_or_default();
    let planned_commit = reviewed.config_commit.as_deref().unwrap_or_default();
    if planned_commit != commit {
        return Err(stale("the config commit", planned_commit, commit));
    }
    if reviewed.network != inputs.config.sync.network {
        return Err(stale(
            "the network",
            &reviewed.network,
            &inputs.config.sync.network,
        ));
    }
    if reviewed.hr.sha256 != inputs.hr.sha256 {
        return Err(stale(
            "the HR record",
            &reviewed.hr.sha256[..12],
            &inputs.hr.sha256[..12],
        ));
    }
    let fingerprint = inputs.observed.fingerprint();
    if reviewed.network_fingerprint != fingerprint {
        return Err(stale(
            "the Speakap network",
            &reviewed.network_fingerprint[..19],
            &fingerprint[..19],
        ));
    }
    let plan = make_plan(inputs)?;
    if plan.checksum() != saved.checksum {
        return Err(Error::input(format!(
            "the plan in {} is not the plan its inputs give ({}): the file was edited and its checksum recomputed, or it was made by another version of speakap-sync or against another record of earlier applies; plan again and review the new plan",
            path.display(),
            plan_difference(&reviewed, &plan)
        )));
    }
    Ok((plan, saved.checksum))
}

/// Where two plans differ, briefly: the parts that differ, and the first person whose
/// operations do.
fn plan_difference(reviewed: &Plan, recomputed: &Plan) -> String {
    let as_json = |plan: &Plan| serde_json::to_value(plan).expect("a plan serializes");
    let (a, b) = (as_json(reviewed), as_json(recomputed));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return "the plans differ".into();
    };
    let mut parts: Vec<String> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect();
    let person = reviewed
        .users
        .iter()
        .zip(&recomputed.users)
        .find(|(r, c)| r != c)
        .map(|(r, _)| r.xid.clone())
        .or_else(|| {
            (reviewed.users.len() != recomputed.users.len()).then(|| {
                format!(
                    "{} people in the file, {} recomputed",
                    reviewed.users.len(),
                    recomputed.users.len()
                )
            })
        });
    if let Some(person) = person {
        parts.push(format!("first difference at {person}"));
    }
    format!("differs in: {}", parts.join(", "))
}

/// Reads, plans and applies, then records the run.
async fn apply_with(
    args: &ApplyArgs,
    config: Config,
    connection: &Connection,
    credentials: Option<&mut apply::CredentialsFile>,
    facts: &mut Option<ApplyFacts>,
) -> Result<i32, Error> {
    let base_tip = state::tip(&config.files.repo_root)?;
    let inputs = gather(config, &args.run, connection).await?;
    refuse_unrecorded(&inputs, args.adopt)?;
    refuse_other_date(&inputs, args, connection)?;
    // The whole plan encoded and hashed: worked out once.
    let (plan, checksum) = match &args.plan {
        Some(path) => reviewed_plan(path, &inputs)?,
        None => {
            let plan = make_plan(&inputs)?;
            let checksum = plan.checksum();
            (plan, checksum)
        }
    };
    *facts = Some(ApplyFacts {
        network: plan.network.clone(),
        checksum: checksum.clone(),
        plan_summary: plan.summary.line(),
        violations: plan.safety.violations.clone(),
        applied: None,
    });
    let config_commit = refuse_unfit_plan(&plan, &checksum, args, credentials.is_some())?;
    if nothing_to_apply(&inputs, &plan) {
        println!("No changes: nothing to apply.");
        return Ok(0);
    }
    let repo_root = inputs.config.files.repo_root.clone();
    let started = ApplyRecord {
        time: jiff::Timestamp::now().to_string(),
        actor: state::actor(&repo_root),
        network: plan.network.clone(),
        config_commit,
        hr: plan.hr.clone(),
        plan_checksum: checksum,
        forced: args.force.is_some(),
        as_of: Some(plan.as_of),
        counts: Default::default(),
        results: Vec::new(),
        notes: Vec::new(),
    };
    let mut journal = Journal::begin(
        &state::state_dir(&repo_root)?,
        &plan.network,
        journal::Begin {
            record: started.clone(),
            base_tip: base_tip.clone(),
        },
        &render::json(&plan, None),
    )?;
    let progress = crate::output::Progress::new("apply", plan.users.len() as u64);
    let report = apply::apply(
        &connection.client,
        &plan,
        &inputs.observed,
        inputs.config.sync.speakap.concurrency as usize,
        &progress,
        apply::Sinks {
            journal: &mut journal,
            credentials,
        },
    )
    .await;
    progress.finish();
    let run = Run {
        inputs: &inputs,
        plan: &plan,
        connection,
        args,
    };
    run.record(started, report, journal, base_tip.as_deref(), facts)
        .await
}

/// The committed config, the plan `--force` names (`checksum` is the plan's), a file for
/// activation codes, and no safety threshold crossed unless forced: the config commit applied.
fn refuse_unfit_plan(
    plan: &Plan,
    checksum: &str,
    args: &ApplyArgs,
    credentials: bool,
) -> Result<String, Error> {
    let config_commit = plan.config_commit.clone().ok_or_else(|| {
        Error::input("the config is not committed; apply only applies committed config")
    })?;
    if let Some(forced) = &args.force
        && *forced != checksum
    {
        return Err(Error::input(format!(
            "--force {forced} does not name this plan (its checksum is {checksum}); the inputs changed since it was reviewed: plan again"
        )));
    }
    let printable = plan.users.iter().any(|u| {
        u.invitation
            .as_ref()
            .is_some_and(|i| i.channel == crate::config::InviteChannel::Printable)
    });
    if printable && !credentials {
        return Err(Error::input(
            "the plan has printable invitations: pass --credentials FILE to receive their activation codes",
        ));
    }
    if plan.safety.blocked && args.force.is_none() {
        eprint!("{}", render::text(plan, Paint::plain()));
        return Err(Error::Blocked(render::blocked_message(plan, checksum)));
    }
    Ok(config_commit)
}

/// No operation to run, and nothing new for the record either.
fn nothing_to_apply(inputs: &Inputs, plan: &Plan) -> bool {
    if plan.summary.has_changes() {
        return false;
    }
    let ledger = apply::ledger_after(
        &inputs.ledger,
        &inputs.resolution,
        &inputs.observed,
        plan,
        plan.as_of,
    );
    ledger == inputs.ledger && !inputs.unrecorded_accounts
}

/// An apply that has run: what is left is to record it.
struct Run<'a> {
    inputs: &'a Inputs,
    plan: &'a Plan,
    connection: &'a Connection,
    args: &'a ApplyArgs,
}

impl Run<'_> {
    /// The outcomes checked against the network, the record committed to the state ref (the
    /// journal keeps it when that fails), and the report printed; the exit code.
    async fn record(
        &self,
        started: ApplyRecord,
        report: apply::ApplyReport,
        mut journal: Journal,
        base_tip: Option<&str>,
        facts: &mut Option<ApplyFacts>,
    ) -> Result<i32, Error> {
        let repo_root = &self.inputs.config.files.repo_root;
        let mut results = report.results;
        let mut notes = Vec::new();
        let ledger = ledger_after_run(
            self.inputs,
            self.plan,
            self.connection,
            &mut results,
            &mut notes,
        )
        .await;
        let counts = apply::counts(self.plan, &results, self.connection.client.retries());
        let summary = apply::summary(&counts);
        if let Some(facts) = facts {
            facts.applied = Some(summary.clone());
        }
        let record = ApplyRecord {
            counts,
            results,
            notes,
            ..started
        };
        let kept = journal.finished(journal::Finished {
            record: record.clone(),
            ledger: ledger.clone(),
            summary: summary.clone(),
        });
        let commit =
            kept.and_then(|()| state::record(repo_root, &record, &ledger, &summary, base_tip));

        print_report(&record, report.credentials, self.args);
        let commit = match commit {
            Ok(commit) => commit,
            Err(e) => {
                return Err(Error::input(format!(
                    "the audit record could not be written ({e}); it is kept in the journal in {}, and the next `speakap-sync apply` or `speakap-sync audit` records it",
                    state::state_dir(repo_root)?.display()
                )));
            }
        };
        journal.remove()?;
        println!("Applied: {summary}.");
        println!(
            "Audit: {} at {}",
            state::STATE_REF,
            config::repo::short(&commit)
        );
        if let Some(stopped) = &report.stopped {
            return Err(Error::input(format!("apply stopped early: {stopped}")));
        }
        Ok(if record.counts.failed + record.counts.unknown > 0 {
            1
        } else {
            0
        })
    }
}

/// The ledger after the run, from the network as it now is; operations reported failed or
/// unknown are checked against it first. When it cannot be read, the ledger is worked out from
/// the outcomes, and the record says so.
async fn ledger_after_run(
    inputs: &Inputs,
    plan: &Plan,
    connection: &Connection,
    results: &mut [state::OperationResult],
    notes: &mut Vec<String>,
) -> Ledger {
    let after = if plan.summary.has_changes() {
        speakap::fetch(&connection.client).await
    } else {
        Ok(inputs.observed.clone())
    };
    match after {
        Ok(after) => {
            apply::reconcile(results, plan, &inputs.observed, &after);
            apply::ledger_after(&inputs.ledger, &inputs.resolution, &after, plan, plan.as_of)
        }
        Err(e) => {
            tracing::warn!("the network could not be read after the apply: {e}");
            notes.push(format!(
                "the network could not be read after the run ({e}): operations reported failed or unknown were not checked against it, and the ledger was worked out from the outcomes"
            ));
            let desired = &inputs.resolution.desired;
            apply::ledger_from_results(&inputs.ledger, plan, results, &|xid| {
                desired.get(xid).map(|d| d.digest())
            })
        }
    }
}

fn print_report(record: &ApplyRecord, credentials: usize, args: &ApplyArgs) {
    if let Some(path) = &args.credentials
        && credentials > 0
    {
        println!(
            "Activation codes of {credentials} printable invitation(s): {}",
            path.display()
        );
    }
    for result in &record.results {
        // HR text and API messages: a line break in them must not start a line of its own.
        let (xid, operation) = (inert(&result.xid), inert(&result.operation));
        let error = inert(result.error.as_deref().unwrap_or_default());
        match result.outcome {
            state::Outcome::Done => println!("ok      {xid} {operation}"),
            state::Outcome::Confirmed => println!("ok      {xid} {operation}: {error}"),
            state::Outcome::Failed => println!("FAILED  {xid} {operation}: {error}"),
            state::Outcome::Unknown => println!(
                "UNKNOWN {xid} {operation}: {error} (not visible in the network afterwards; the next plan shows what is left)"
            ),
        }
    }
    for note in &record.notes {
        println!("note: {}", inert(note));
    }
}
