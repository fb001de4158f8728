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
use crate::state::journal::{self, Journal};
use crate::state::{self, ApplyRecord, Ledger};
use crate::text::inert;

pub fn validate(args: &ValidateArgs) -> Result<i32, Error> {
    let files = read_files(&args.config, args.worktree)?;
    note_uncommitted(&files);
    let sources = files.files.clone();
    // Where GitLab shows a problem that has no place of its own: the config directory.
    let config_dir = match files.prefix.as_str() {
        "" => ".".to_string(),
        prefix => prefix.to_string(),
    };
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
        DiagnosticFormat::Gitlab => crate::gitlab::code_quality(&diagnostics, &config_dir),
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
    match now {
        Some(now) => Ok(now),
        None => real_today(timezone),
    }
}

fn real_today(timezone: &str) -> Result<Date, Error> {
    let zone = jiff::tz::TimeZone::get(timezone)
        .map_err(|e| Error::input(format!("policy.timezone `{timezone}`: {e}")))?;
    Ok(jiff::Timestamp::now().to_zoned(zone).date())
}

/// The API connection; for `url: embedded` also the in-process simulator behind it.
struct Connection {
    client: Client,
    embedded: Option<RunningSim>,
    /// A simulated network (embedded, or `speakap-sim` on this machine): rehearsals over
    /// simulated days may apply as of any date.
    simulated: bool,
}

/// Whether `url` is a `speakap-sim` on a loopback address: only there is a network simulated.
/// Asked without the token; a real API never listens on loopback.
async fn is_local_simulator(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return false;
    }
    let identity = format!("{}/_sim/identity", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    match client {
        Ok(client) => client
            .get(identity)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
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
        let simulated = embedded.is_some() || is_local_simulator(&url).await;
        let client = Client::new(
            &url,
            network,
            &token,
            &settings.api_version,
            settings.requests_per_second,
        )?
        .with_concurrency(settings.concurrency as usize)
        .with_page_size(settings.page_size as usize);
        Ok(Connection {
            client,
            embedded,
            simulated,
        })
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
    /// No record of earlier applies, but accounts with employee IDs: a sync ran before, and
    /// its record is missing here.
    unrecorded_accounts: bool,
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
    let has_record = state::has_record(&config.files.repo_root, &config.sync.network)?;
    let state_dir = state::state_dir(&config.files.repo_root)?;
    if journal::pending_networks(&state_dir).contains(&config.sync.network) {
        tracing::warn!(
            "an apply of network {} has not recorded itself yet (its journal is in {}; it is running, or it ended without its audit commit): this plan does not know what it did; `speakap-sync audit` records it once no apply runs",
            config.sync.network,
            state_dir.display()
        );
    }
    let synced_before = observed.users.iter().any(|u| u.xid.is_some());
    if !has_record && synced_before {
        tracing::warn!(
            "no record of earlier applies to network {} ({}), yet its accounts carry employee IDs: if the sync has applied before, fetch the record first: git fetch origin '{}:{}'. Until then this plan treats every account as seen for the first time (desired memberships already there become the sync's; accounts deleted by hand are not known), and apply refuses without --adopt",
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
        unrecorded_accounts: !has_record && synced_before,
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
    let markdown = |limit: markdown::Limit, marker: Option<&str>| {
        let options = MarkdownOptions {
            redact: !args.no_redact,
            limit: markdown::Limit {
                max: limit.max.saturating_sub(limit.unit.len(&pending_note)),
                unit: limit.unit,
            },
            marker,
            full_plan: &crate::ci::full_plan_location(),
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
        PlanFormat::Markdown => print!("{}", markdown(markdown::Limit::NONE, None)),
    }
    if github::append_step_summary(&markdown(STEP_SUMMARY_LIMIT, None))? {
        tracing::info!("plan added to the job summary");
    }
    if args.comment {
        let marker = markdown::comment_marker(&inputs.config.files.prefix);
        crate::ci::post_plan(&marker, |limit| markdown(limit, Some(&marker))).await?;
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

/// GitHub's job summaries hold at most 1 MiB per step, in bytes; one goes to the line end
/// `append_step_summary` adds.
const STEP_SUMMARY_LIMIT: markdown::Limit = markdown::Limit {
    max: (1 << 20) - 1,
    unit: markdown::Unit::Bytes,
};

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
    facts: &mut Option<crate::notify::ApplyFacts>,
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
fn record_pending(repo_root: &Path, network: &str) -> Result<(), Error> {
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
/// file, or inputs that changed since, are refused with what differs.
fn reviewed_plan(path: &Path, inputs: &Inputs) -> Result<Plan, Error> {
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
    Ok(plan)
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

async fn apply_with(
    args: &ApplyArgs,
    config: Config,
    connection: &Connection,
    credentials: Option<&mut apply::CredentialsFile>,
    facts: &mut Option<crate::notify::ApplyFacts>,
) -> Result<i32, Error> {
    let base_tip = state::tip(&config.files.repo_root)?;
    let inputs = gather(config, &args.run, connection).await?;
    refuse_unrecorded(&inputs, args.adopt)?;
    refuse_other_date(&inputs, args, connection)?;
    let plan = match &args.plan {
        Some(path) => reviewed_plan(path, &inputs)?,
        None => make_plan(&inputs)?,
    };
    let checksum = plan.checksum();
    let facts = facts.insert(crate::notify::ApplyFacts {
        network: plan.network.clone(),
        checksum: checksum.clone(),
        plan_summary: plan.summary.line(),
        violations: plan.safety.violations.clone(),
        applied: None,
    });
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
    if printable && credentials.is_none() {
        return Err(Error::input(
            "the plan has printable invitations: pass --credentials FILE to receive their activation codes",
        ));
    }
    if plan.safety.blocked && args.force.is_none() {
        eprint!("{}", render::text(&plan, Paint::plain()));
        return Err(Error::Blocked(render::blocked_message(&plan)));
    }
    if !plan.summary.has_changes() {
        let ledger = apply::ledger_after(
            &inputs.ledger,
            &inputs.resolution,
            &inputs.observed,
            &plan,
            plan.as_of,
        );
        if ledger == inputs.ledger && !inputs.unrecorded_accounts {
            println!("No changes: nothing to apply.");
            return Ok(0);
        }
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
    let mut results = report.results;
    let mut notes = Vec::new();
    let ledger = ledger_after_run(&inputs, &plan, connection, &mut results, &mut notes).await;
    let counts = apply::counts(&plan, &results, connection.client.retries());
    let summary = apply::summary(&counts);
    facts.applied = Some(summary.clone());
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
    let commit = kept
        .and_then(|()| state::record(&repo_root, &record, &ledger, &summary, base_tip.as_deref()));

    print_report(&record, report.credentials, args);
    let commit = match commit {
        Ok(commit) => commit,
        Err(e) => {
            return Err(Error::input(format!(
                "the audit record could not be written ({e}); it is kept in the journal in {}, and the next `speakap-sync apply` or `speakap-sync audit` records it",
                state::state_dir(&repo_root)?.display()
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

pub fn schema(args: &SchemaArgs) -> Result<i32, Error> {
    let written = config::schema::write_all(&args.out)
        .map_err(|e| Error::input(format!("cannot write to {}: {e}", args.out.display())))?;
    for name in written {
        println!("{}", args.out.join(name).display());
    }
    Ok(0)
}
