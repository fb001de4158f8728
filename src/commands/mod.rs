//! The commands: they load inputs at the edges (git, HR file, API), call the pure core
//! (`resolve`, `plan`), and print. Exit codes: 0 ok, 1 error, 2 changes (with
//! `--detailed-exitcode`), 3 blocked by a safety threshold.
//!
//! One file per command that has more than a few lines (`plan`, `apply`, `audit`); `inputs`
//! gathers what a plan is made from, `connection` opens the API (and, in builds with the
//! `simulator` feature, the embedded simulator behind `url: embedded`).

mod apply;
mod audit;
mod connection;
#[cfg(feature = "simulator")]
mod embedded;
mod inputs;
mod plan;

use jiff::civil::Date;

use crate::cli::{ConfigArgs, DiagnosticFormat, ExplainArgs, SchemaArgs, ValidateArgs};
use crate::config::{self, Config};
use crate::diag;
use crate::error::Error;
use crate::output::Paint;

pub use apply::apply;
pub use audit::audit;
pub use plan::plan;

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

pub async fn explain(args: &ExplainArgs) -> Result<i32, Error> {
    let config = load_config(&args.config, args.worktree)?;
    let (inputs, plan) = inputs::planned(config, &args.run).await?;
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

pub fn schema(args: &SchemaArgs) -> Result<i32, Error> {
    let written = config::schema::write_all(&args.out)
        .map_err(|e| Error::input(format!("cannot write to {}: {e}", args.out.display())))?;
    for name in written {
        println!("{}", args.out.join(name).display());
    }
    Ok(0)
}
