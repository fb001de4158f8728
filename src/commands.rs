//! The commands: they load inputs at the edges (git, HR file, API), call the pure core
//! (`resolve`, `plan`), and print. Exit codes: 0 ok, 1 error, 2 changes (with
//! `--detailed-exitcode`), 3 blocked by a safety threshold.

use std::path::Path;

use jiff::civil::Date;

use crate::apply;
use crate::cli::{
    ApplyArgs, AuditArgs, AuditFormat, ConfigArgs, DiagnosticFormat, ExplainArgs, PlanArgs,
    PlanFormat, RunArgs, SchemaArgs, ValidateArgs,
};
use crate::config::{self, Config, Source};
use crate::desired::{Resolution, resolve};
use crate::diag;
use crate::error::Error;
use crate::github;
use crate::hr::{self, Snapshot};
use crate::output::Paint;
use crate::plan::impact::{self, Impact};
use crate::plan::markdown::{self, MarkdownOptions};
use crate::plan::{self, Plan, PlanInput, render};
use crate::reviewed;
use crate::rules;
use crate::sim::{self, RunningSim, Seed, SimConfig};
use crate::speakap::{self, ApiError, Client, Observed};
use crate::state::{self, ApplyRecord, Ledger};

pub fn validate(args: &ValidateArgs) -> Result<i32, Error> {
    let files = read_files(&args.config, args.worktree)?;
    note_uncommitted(&files);
    let sources = files.files.clone();
    let (diagnostics, ok) = match config::load(files) {
        Ok(config) => (config.warnings, true),
        Err(diagnostics) => (diagnostics, false),
    };
    let rendered = match args.format {
        DiagnosticFormat::Text if ok && diagnostics.is_empty() => {
            format!("valid: {} file(s), no problems\n", sources.len())
        }
        DiagnosticFormat::Text => diag::render_text(&diagnostics, &sources),
        DiagnosticFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&diagnostics).expect("diagnostics serialize")
        ),
        DiagnosticFormat::Github => diag::render_github(&diagnostics),
    };
    print!("{rendered}");
    Ok(if ok { 0 } else { 1 })
}

fn note_uncommitted(files: &config::ConfigFiles) {
    if !files.uncommitted.is_empty() {
        tracing::warn!(
            "uncommitted changes in {} are not used (reading {}); commit them, or try them with --worktree",
            files.uncommitted.join(", "),
            files.revision.describe()
        );
    }
}

/// Loads and validates the config; problems are printed to stderr with their source lines.
fn read_files(args: &ConfigArgs, worktree: bool) -> Result<config::ConfigFiles, Error> {
    if worktree && args.rev.is_some() {
        return Err(Error::input(
            "--rev and --worktree exclude each other: --worktree reads uncommitted files",
        ));
    }
    config::read_config_files(&args.repo, args.rev(), worktree)
}

fn load_config(args: &ConfigArgs, worktree: bool) -> Result<Config, Error> {
    let files = read_files(args, worktree)?;
    note_uncommitted(&files);
    let sources = files.files.clone();
    config::load(files).map_err(|diagnostics| {
        eprint!("{}", diag::render_text(&diagnostics, &sources));
        Error::Config(diagnostics)
    })
}

async fn read_hr(config: &Config, override_path: Option<&Path>) -> Result<Snapshot, Error> {
    let source = &config.sync.source;
    let format = source.format();
    let layout = || hr::Layout::typed(rules::configured_columns(&config.sync));
    // The configured file, inside the repository; `--hr` is the operator's and goes anywhere.
    let local = || {
        let setting = config::paths::source_file(source).expect("a file source names its file");
        let display = if config.files.prefix.is_empty() {
            setting.value.to_string()
        } else {
            format!("{}/{}", config.files.prefix, setting.value)
        };
        Ok::<_, Error>((config.path_inside(&setting)?, display))
    };
    let overridden = override_path.map(|p| (p.to_path_buf(), p.display().to_string()));
    match source {
        Source::Csv(csv) => {
            let (path, display) = match overridden {
                Some(overridden) => overridden,
                None => local()?,
            };
            hr::csv::read(
                &path,
                &display,
                hr::CsvOptions {
                    delimiter: csv.delimiter,
                    encoding: &csv.encoding,
                },
                layout(),
            )
        }
        Source::Excel(excel) => {
            let (path, display) = match overridden {
                Some(overridden) => overridden,
                None => local()?,
            };
            hr::excel::read(
                &path,
                &display,
                excel.sheet.as_deref(),
                format.date_format,
                layout(),
            )
        }
        Source::Sftp(sftp) => {
            let fetched = match overridden {
                // `--hr` replaces the download with a local copy, read the same way.
                Some((path, display)) => hr::sftp::Fetched {
                    bytes: std::fs::read(&path).map_err(|e| {
                        Error::input(format!("cannot read the HR file {display}: {e}"))
                    })?,
                    file_name: display.clone(),
                    display,
                    modified: None,
                },
                None => {
                    let known_hosts =
                        config::paths::source_file(source).expect("SFTP names its known_hosts");
                    hr::sftp::fetch(sftp, &config.path_inside(&known_hosts)?).await?
                }
            };
            let mut snapshot = if fetched.is_excel(sftp.format) {
                hr::excel::parse(
                    fetched.bytes,
                    &fetched.display,
                    sftp.sheet.as_deref(),
                    format.date_format,
                    layout(),
                )?
            } else {
                hr::csv::parse(
                    &fetched.bytes,
                    &fetched.display,
                    hr::CsvOptions {
                        delimiter: sftp.delimiter,
                        encoding: &sftp.encoding,
                    },
                    layout(),
                )?
            };
            snapshot.modified = fetched.modified;
            Ok(snapshot)
        }
        Source::Afas(afas) => {
            if let Some((_, display)) = overridden {
                return Err(Error::input(format!(
                    "--hr {display}: the HR source is the AFAS connector {}; `--hr` replaces files only",
                    afas.connector
                )));
            }
            hr::afas::read(afas, layout(), format.date_format).await
        }
    }
}

/// `--now`, or today in the network's time zone (validated with the config).
fn today(now: Option<Date>, timezone: &str) -> Result<Date, Error> {
    if let Some(now) = now {
        return Ok(now);
    }
    let zone = jiff::tz::TimeZone::get(timezone)
        .map_err(|e| Error::input(format!("policy.timezone `{timezone}`: {e}")))?;
    Ok(jiff::Timestamp::now().to_zoned(zone).date())
}

/// The API connection; for `url: embedded` also the in-process simulator behind it.
struct Connection {
    client: Client,
    embedded: Option<RunningSim>,
}

impl Connection {
    async fn open(config: &Config) -> Result<Connection, Error> {
        let settings = &config.sync.speakap;
        let network = &config.sync.network;
        let (url, token, embedded) = match &settings.embedded {
            Some(embedded) if settings.url == "embedded" => {
                let [seed_file, state_file] = config::paths::simulator_files(embedded);
                let seed_path = config.path_inside(&seed_file)?;
                let state_path = config.path_inside(&state_file)?;
                let seed_text = std::fs::read_to_string(&seed_path).map_err(|e| {
                    Error::input(format!("simulator seed {}: {e}", seed_path.display()))
                })?;
                let seed: Seed = serde_json::from_str(&seed_text).map_err(|e| {
                    Error::input(format!("simulator seed {}: {e}", seed_path.display()))
                })?;
                // A fresh token per run: the simulator only listens on loopback for this process.
                let token = crate::digest::sha256_hex(format!(
                    "{:?}{}",
                    std::time::SystemTime::now(),
                    std::process::id()
                ));
                let running = sim::start(
                    ([127, 0, 0, 1], 0).into(),
                    SimConfig {
                        network: network.clone(),
                        token: token.clone(),
                        state_file: Some(state_path),
                        seed: Some(seed),
                        faults: Default::default(),
                        fault_seed: 0,
                        max_page_size: sim::DEFAULT_MAX_PAGE_SIZE,
                    },
                )
                .await
                .map_err(|e| Error::input(e.to_string()))?;
                tracing::info!(
                    "using the embedded Speakap simulator at {} (state: {})",
                    running.url,
                    embedded.state
                );
                (running.url.clone(), token, Some(running))
            }
            _ => {
                // A token pasted from a file often brings its line end along: never part of it.
                let token = std::env::var(&settings.token_env)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ApiError::MissingToken(settings.token_env.clone()))?;
                (settings.url.clone(), token, None)
            }
        };
        let client = Client::new(
            &url,
            network,
            &token,
            &settings.api_version,
            settings.requests_per_second,
        )?
        .with_concurrency(settings.concurrency as usize)
        .with_page_size(settings.page_size as usize);
        Ok(Connection { client, embedded })
    }

    async fn close(self) -> Result<(), Error> {
        if let Some(running) = self.embedded {
            running.stop().await.map_err(|e| {
                Error::input(format!("embedded simulator: cannot save its state: {e}"))
            })?;
        }
        Ok(())
    }
}

/// Everything a plan is computed from.
struct Inputs {
    config: Config,
    hr: crate::hr::SnapshotInfo,
    /// The HR records themselves (`explain` shows a person's row). They cost nothing extra: the
    /// desired users read their values from these rows.
    snapshot: Snapshot,
    resolution: Resolution,
    observed: Observed,
    ledger: Ledger,
    today: Date,
}

async fn gather(config: Config, run: &RunArgs, connection: &Connection) -> Result<Inputs, Error> {
    let today = today(run.now, &config.sync.policy.timezone.0)?;
    // The network is fetched while the HR record is read and resolved: the one mostly waits on
    // the API, the other keeps a core busy (resolve runs on a blocking thread for that).
    let started = std::time::Instant::now();
    let fetch = async {
        let observed = speakap::fetch(&connection.client).await?;
        tracing::debug!(
            "network fetched: {} accounts in {:.2} s",
            observed.users.len(),
            started.elapsed().as_secs_f64()
        );
        Ok::<_, Error>(observed)
    };
    let desired = async move {
        let snapshot = read_hr(&config, run.hr.as_deref()).await?;
        tokio::task::spawn_blocking(move || {
            let resolution = resolve(&config, &snapshot, today);
            tracing::debug!(
                "HR record read and resolved: {} records in {:.2} s",
                snapshot.records.len(),
                started.elapsed().as_secs_f64()
            );
            let hr = snapshot.info();
            (config, hr, snapshot, resolution)
        })
        .await
        .map_err(|e| Error::input(format!("resolving the HR record failed: {e}")))
    };
    let (observed, (config, hr, snapshot, resolution)) = tokio::try_join!(fetch, desired)?;
    let ledger = state::read_ledger(&config.files.repo_root, &config.sync.network)?;
    if ledger.users.is_empty() && observed.users.iter().any(|u| u.xid.is_some()) {
        // Right on a first run; on a clone without the state ref it would silently take over
        // memberships granted by hand and forget the accounts deleted by hand.
        tracing::warn!(
            "no record of earlier applies to network {} ({}): every account is treated as seen for the first time (desired memberships already there become the sync's; accounts deleted by hand are not known). If the sync has applied before, fetch the record first: git fetch origin '{}:{}'",
            config.sync.network,
            state::STATE_REF,
            state::STATE_REF,
            state::STATE_REF
        );
    }
    Ok(Inputs {
        config,
        hr,
        snapshot,
        resolution,
        observed,
        ledger,
        today,
    })
}

fn make_plan(inputs: &Inputs) -> Result<Plan, Error> {
    let input = PlanInput {
        config: &inputs.config,
        resolution: &inputs.resolution,
        observed: &inputs.observed,
        ledger: &inputs.ledger,
        hr: inputs.hr.clone(),
        today: inputs.today,
    };
    plan::plan(&input).map_err(|diagnostics| {
        eprint!(
            "{}",
            diag::render_text(&diagnostics, &inputs.config.files.files)
        );
        Error::Config(diagnostics)
    })
}

/// Everything read, and the plan made from it (for `plan` and `explain`).
async fn planned(config: Config, run: &RunArgs) -> Result<(Inputs, Plan), Error> {
    let connection = Connection::open(&config).await?;
    let result = gather(config, run, &connection).await;
    connection.close().await?;
    let inputs = result?;
    let started = std::time::Instant::now();
    let plan = make_plan(&inputs)?;
    tracing::debug!("planned in {:.2} s", started.elapsed().as_secs_f64());
    Ok((inputs, plan))
}

/// The config at `--base`: what a pull request is compared with, and connects by.
enum BaseConfig {
    Valid(Box<Config>),
    /// Not loadable; `sync` is its SyncConfig if that alone is valid.
    Invalid {
        why: String,
        sync: Option<Box<config::SyncConfig>>,
    },
}

impl BaseConfig {
    fn read(repo: &Path, rev: &str) -> BaseConfig {
        let files = match config::read_config_files(repo, rev, false) {
            Ok(files) => files,
            Err(e) => {
                return BaseConfig::Invalid {
                    why: e.to_string(),
                    sync: None,
                };
            }
        };
        match config::load(files) {
            Ok(config) => BaseConfig::Valid(Box::new(config)),
            Err(diagnostics) => BaseConfig::Invalid {
                why: format!(
                    "the config at --base {rev} does not validate ({} problem(s))",
                    diagnostics.len()
                ),
                sync: config::read_config_files(repo, rev, false)
                    .ok()
                    .and_then(|files| config::load_sync_config(&files))
                    .map(Box::new),
            },
        }
    }

    fn sync(&self) -> Option<&config::SyncConfig> {
        match self {
            BaseConfig::Valid(config) => Some(&config.sync),
            BaseConfig::Invalid { sync, .. } => sync.as_deref(),
        }
    }
}

pub async fn plan(args: &PlanArgs) -> Result<i32, Error> {
    let mut config = load_config(&args.config, args.worktree)?;
    let base = args
        .base
        .as_deref()
        .map(|rev| (rev, BaseConfig::read(&args.config.repo, rev)));
    // A pull request's plan connects by the base commit's settings (crate::reviewed).
    let pending = match &base {
        Some((rev, base)) => reviewed::pin(&mut config, base.sync(), rev, args.run.hr.is_some())?,
        None => Vec::new(),
    };
    if !pending.is_empty() {
        let settings: Vec<&str> = pending.iter().map(|c| c.setting).collect();
        tracing::warn!(
            "this change edits connection settings ({}): they take effect once merged; this plan used the base commit's",
            settings.join(", ")
        );
    }
    let (inputs, plan) = planned(config, &args.run).await?;
    // A pull request that adds the config, or repairs a broken one, still gets its plan.
    let impact = match base {
        Some((rev, BaseConfig::Valid(base_config))) => {
            match config_impact(rev, *base_config, args, &inputs).await {
                Ok(impact) => Some(impact),
                Err(e) => {
                    tracing::warn!("{e}; the plan is shown without what the change alone does");
                    None
                }
            }
        }
        Some((_, BaseConfig::Invalid { why, .. })) => {
            tracing::warn!("{why}; the plan is shown without what the change alone does");
            None
        }
        None => None,
    };

    if let Some(path) = &args.out {
        let started = std::time::Instant::now();
        std::fs::write(path, render::json(&plan, impact.as_ref()))
            .map_err(|e| Error::input(format!("cannot write {}: {e}", path.display())))?;
        tracing::debug!("plan written in {:.2} s", started.elapsed().as_secs_f64());
    }
    let pending_note = reviewed::markdown_note(&pending);
    let markdown = |limit: usize, marker: Option<&str>| {
        let options = MarkdownOptions {
            redact: !args.no_redact,
            // Bytes bound characters and UTF-16 units alike.
            limit: limit.saturating_sub(pending_note.len()),
            marker,
            full_plan: &github::full_plan_location(),
            impact: impact.as_ref(),
        };
        markdown::markdown(&plan, &options) + &pending_note
    };
    match args.format {
        PlanFormat::Text => {
            let paint = Paint::for_stdout();
            print!("{}", reviewed::text_note(&pending));
            if let Some(impact) = &impact {
                print!("{}", render::impact_text(impact, &plan, paint));
            }
            print!("{}", render::text(&plan, paint));
        }
        PlanFormat::Json => print!("{}", render::json(&plan, impact.as_ref())),
        PlanFormat::Markdown => print!("{}", markdown(usize::MAX, None)),
    }
    if github::append_step_summary(&markdown(STEP_SUMMARY_LIMIT, None))? {
        tracing::info!("plan added to the job summary");
    }
    if args.comment {
        let marker = markdown::comment_marker(&inputs.config.files.prefix);
        let body = markdown(markdown::GITHUB_COMMENT_LIMIT, Some(&marker));
        let number = github::GitHub::pull_request_number()?;
        match github::GitHub::from_env()?
            .upsert_comment(number, &marker, &body)
            .await?
        {
            github::Posted::Created(url) => tracing::info!("plan comment created: {url}"),
            github::Posted::Updated(url) => tracing::info!("plan comment updated: {url}"),
        }
    }
    let code = if plan.safety.blocked {
        3
    } else if args.detailed_exitcode && plan.summary.has_changes() {
        2
    } else {
        0
    };
    // The process ends right after the plan: freeing a million accounts and people one by one
    // would take half a second, where the OS takes the memory back at once.
    std::mem::forget(inputs);
    Ok(code)
}

/// GitHub's job summaries hold at most 1 MiB per step.
const STEP_SUMMARY_LIMIT: usize = 1_000_000;

/// What the config change since `base` does on its own: the base config planned on the same HR
/// record, network and ledger, compared person by person with the head config.
async fn config_impact(
    base: &str,
    config: Config,
    args: &PlanArgs,
    head: &Inputs,
) -> Result<Impact, Error> {
    let snapshot = read_hr(&config, args.run.hr.as_deref()).await?;
    let resolution = resolve(&config, &snapshot, head.today);
    let input = PlanInput {
        config: &config,
        resolution: &resolution,
        observed: &head.observed,
        ledger: &head.ledger,
        hr: snapshot.info(),
        today: head.today,
    };
    let base_plan = plan::plan(&input).map_err(|diagnostics| {
        Error::input(format!(
            "the config at --base {base} cannot be planned ({} problem(s))",
            diagnostics.len()
        ))
    })?;
    let (effects, people) = impact::compare(&resolution, &head.resolution);
    Ok(Impact {
        base_commit: config
            .files
            .revision
            .commit_id()
            .unwrap_or(base)
            .to_string(),
        changed_files: impact::changed_files(&config.files.files, &head.config.files.files),
        effects,
        people,
        base_summary: base_plan.summary,
    })
}

pub async fn explain(args: &ExplainArgs) -> Result<i32, Error> {
    let config = load_config(&args.config, args.worktree)?;
    let (inputs, plan) = planned(config, &args.run).await?;
    let input = crate::explain::ExplainInput {
        xid: &args.xid,
        config: &inputs.config,
        snapshot: &inputs.snapshot,
        resolution: &inputs.resolution,
        observed: &inputs.observed,
        ledger: &inputs.ledger,
        plan: &plan,
    };
    print!("{}", crate::explain::explain(&input, Paint::for_stdout()));
    Ok(0)
}

pub async fn apply(args: &ApplyArgs) -> Result<i32, Error> {
    let config = load_config(&args.config, false)?;
    let connection = Connection::open(&config).await?;
    let outcome = apply_with(args, config, &connection).await;
    connection.close().await?;
    outcome
}

/// A plan saved by `plan --out`, if it still describes the world: same config commit, same HR
/// record, same network. Then it is applied exactly as reviewed.
fn reviewed_plan(path: &Path, inputs: &Inputs) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
    let saved: render::SavedPlan = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{} is not a plan written by `plan --out`: {e}",
            path.display()
        ))
    })?;
    let plan = saved.plan;
    if plan.checksum() != saved.checksum {
        return Err(Error::input(format!(
            "{} was edited after it was written (its checksum no longer matches); plan again",
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
    if plan.as_of != inputs.today {
        return Err(Error::input(format!(
            "the plan in {} was made as of {}, and this apply runs as of {}: plan again as of the day it is applied",
            path.display(),
            plan.as_of,
            inputs.today
        )));
    }
    let commit = inputs.config.files.revision.commit_id().unwrap_or_default();
    let planned_commit = plan.config_commit.as_deref().unwrap_or_default();
    if planned_commit != commit {
        return Err(stale("the config commit", planned_commit, commit));
    }
    if plan.network != inputs.config.sync.network {
        return Err(stale(
            "the network",
            &plan.network,
            &inputs.config.sync.network,
        ));
    }
    if plan.hr.sha256 != inputs.hr.sha256 {
        return Err(stale(
            "the HR record",
            &plan.hr.sha256[..12],
            &inputs.hr.sha256[..12],
        ));
    }
    let fingerprint = inputs.observed.fingerprint();
    if plan.network_fingerprint != fingerprint {
        return Err(stale(
            "the Speakap network",
            &plan.network_fingerprint[..19],
            &fingerprint[..19],
        ));
    }
    Ok(plan)
}

async fn apply_with(
    args: &ApplyArgs,
    config: Config,
    connection: &Connection,
) -> Result<i32, Error> {
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
    let inputs = gather(config, &args.run, connection).await?;
    let plan = match &args.plan {
        Some(path) => reviewed_plan(path, &inputs)?,
        None => make_plan(&inputs)?,
    };
    let checksum = plan.checksum();
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
    if printable && args.credentials.is_none() {
        return Err(Error::input(
            "the plan has printable invitations: pass --credentials FILE to receive their activation codes",
        ));
    }
    if plan.safety.blocked && args.force.is_none() {
        eprint!("{}", render::text(&plan, Paint::plain()));
        return Err(Error::Blocked(render::blocked_message(&plan)));
    }

    let progress = crate::output::Progress::new("apply", plan.users.len() as u64);
    let report = apply::apply(
        &connection.client,
        &plan,
        &inputs.observed,
        inputs.config.sync.speakap.concurrency as usize,
        &progress,
    )
    .await;
    progress.finish();
    let after = if plan.summary.has_changes() {
        speakap::fetch(&connection.client).await?
    } else {
        inputs.observed.clone()
    };
    let ledger = apply::ledger_after(
        &inputs.ledger,
        &inputs.resolution,
        &after,
        &plan,
        plan.as_of,
    );

    if let Some(path) = &args.credentials
        && !report.credentials.is_empty()
    {
        write_credentials(path, &report.credentials)?;
        println!(
            "Activation codes of {} printable invitation(s): {}",
            report.credentials.len(),
            path.display()
        );
    }
    for result in &report.results {
        match &result.error {
            None => println!("ok      {} {}", result.xid, result.operation),
            Some(error) => println!("FAILED  {} {}: {error}", result.xid, result.operation),
        }
    }
    let c = &report.counts;
    let summary = format!(
        "{} invited, {} restored, {} updated, {} suspended, {} deleted, {} anonymized, {} failed, {} retried",
        c.invited, c.restored, c.updated, c.suspended, c.deleted, c.anonymized, c.failed, c.retries
    );
    if report.results.is_empty() && ledger == inputs.ledger {
        println!("No changes: nothing to apply.");
        return Ok(0);
    }
    let record = ApplyRecord {
        time: jiff::Timestamp::now().to_string(),
        actor: state::actor(&inputs.config.files.repo_root),
        network: plan.network.clone(),
        config_commit,
        hr: plan.hr.clone(),
        plan_checksum: checksum,
        forced: args.force.is_some(),
        counts: report.counts.clone(),
        results: report.results.clone(),
    };
    let commit = state::record(&inputs.config.files.repo_root, &record, &ledger, &summary)?;
    println!("Applied: {summary}.");
    println!(
        "Audit: {} at {}",
        state::STATE_REF,
        config::repo::short(&commit)
    );
    if let Some(stopped) = &report.stopped {
        return Err(Error::input(format!("apply stopped early: {stopped}")));
    }
    Ok(if report.failed() { 1 } else { 0 })
}

/// Printable credentials go to a file only the current user can read; never to logs or state.
fn write_credentials(path: &Path, credentials: &[apply::Credential]) -> Result<(), Error> {
    let failed =
        |e: &dyn std::fmt::Display| Error::input(format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|e| failed(&e))?;
    let mut writer = csv::Writer::from_writer(file);
    writer
        .write_record(["xid", "name", "email", "activation_code"])
        .map_err(|e| failed(&e))?;
    for c in credentials {
        writer
            .write_record([&c.xid, &c.name, &c.email, &c.activation_code])
            .map_err(|e| failed(&e))?;
    }
    writer.flush().map_err(|e| failed(&e))
}

pub fn audit(args: &AuditArgs) -> Result<i32, Error> {
    let repo = git2::Repository::discover(&args.repo).map_err(Error::git)?;
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    let history = state::history(&root)?;
    match args.format {
        AuditFormat::Json => {
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
        AuditFormat::Text if history.is_empty() => println!(
            "No applies recorded yet ({} does not exist).",
            state::STATE_REF
        ),
        AuditFormat::Text => {
            for (commit, r) in &history {
                println!(
                    "{}  {}  by {}  network {}  config {}  plan {}  hr {}\n    {} invited, {} restored, {} updated, {} suspended, {} deleted, {} anonymized, {} ok, {} failed{}",
                    config::repo::short(commit),
                    r.time,
                    r.actor,
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
                    if r.forced {
                        " (forced past a safety threshold)"
                    } else {
                        ""
                    }
                );
                for failure in r.results.iter().filter(|o| !o.ok) {
                    println!(
                        "    FAILED {} {}: {}",
                        failure.xid,
                        failure.operation,
                        failure.error.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(0)
}

pub fn schema(args: &SchemaArgs) -> Result<i32, Error> {
    let written = config::schema::write_all(&args.out)
        .map_err(|e| Error::input(format!("cannot write to {}: {e}", args.out.display())))?;
    for name in written {
        println!("{}", args.out.join(name).display());
    }
    Ok(0)
}
