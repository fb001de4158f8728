//! The command-line surface (clap). No logic here: `commands` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::civil::Date;

#[derive(Debug, Parser)]
#[command(name = "speakap-sync", version, about = "GitOps reconciler for Speakap user management", long_about = None)]
pub struct Cli {
    /// More detailed logs on stderr (RUST_LOG overrides).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config documents against the schema and the semantic rules.
    Validate(ValidateArgs),
    /// Show what apply would change, without changing anything.
    Plan(PlanArgs),
    /// Apply the plan for a committed config and record an audit commit.
    Apply(ApplyArgs),
    /// Explain what the sync does for one person, and why.
    Explain(ExplainArgs),
    /// List the recorded applies (from refs/speakap-sync/state).
    Audit(AuditArgs),
    /// Write the JSON schemas of the config documents and of the simulator seed.
    Schema(SchemaArgs),
    /// Write a ready config repository from an HR export (and the live network's groups).
    Init(InitArgs),
    /// Write the live network as a simulator seed, to rehearse plans against a copy (read-only).
    Dump(DumpArgs),
    /// Check whether this repository is ready to apply, and say what to fix (read-only).
    Doctor(DoctorArgs),
    /// The embedded simulator (`speakap.url: embedded`).
    #[command(subcommand)]
    Simulator(SimulatorCommand),
}

#[derive(Debug, Subcommand)]
pub enum SimulatorCommand {
    /// Start the embedded simulator again from its seed: its kept state is removed.
    Reset(SimulatorResetArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config directory (inside a git repository).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// The commit to read the config from (default HEAD).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
}

impl ConfigArgs {
    pub fn rev(&self) -> &str {
        self.rev.as_deref().unwrap_or("HEAD")
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Read uncommitted files instead of a commit (for local editing).
    #[arg(long)]
    pub worktree: bool,
    /// How to print the problems: text, JSON, or GitHub workflow annotations.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Read the HR record from this file instead of `source.path`.
    #[arg(long, value_name = "FILE")]
    pub hr: Option<PathBuf>,
    /// The date to plan for (YYYY-MM-DD); default today.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub now: Option<Date>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Read uncommitted files instead of a commit; the plan is then marked not applicable.
    #[arg(long)]
    pub worktree: bool,
    #[command(flatten)]
    pub run: RunArgs,
    /// How to print the plan: text, JSON, or Markdown (for pull-request comments).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also write the plan as JSON to this file (for `apply --plan`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also show what the config change since this commit does on its own (for pull requests).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Show email addresses and phone numbers in Markdown output; masked by default.
    #[arg(long)]
    pub no_redact: bool,
    /// Post the plan as the pull request's sticky comment (in GitHub Actions: GITHUB_TOKEN,
    /// GITHUB_REPOSITORY, GITHUB_EVENT_PATH), or in GitLab CI as the merge request's note
    /// (GITLAB_TOKEN).
    #[arg(long)]
    pub comment: bool,
    /// Exit 2 when the plan has changes (0 when none), for drift checks.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Apply a plan blocked by a safety threshold: give the checksum the plan printed.
    #[arg(long, value_name = "CHECKSUM")]
    pub force: Option<String>,
    /// Write the activation codes of printable invitations to this CSV file (readable only by
    /// you); required when the plan has printable invitations.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Apply exactly this reviewed plan (from `plan --out`); refused when the config commit, the
    /// HR record or the network changed since it was made.
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
    /// Refuse to apply a config commit that is not on this branch (so a pull request never applies).
    #[arg(long, value_name = "BRANCH")]
    pub require_branch: Option<String>,
    /// When another apply of the network is running, wait for it instead of refusing.
    #[arg(long)]
    pub wait: bool,
    /// Start the record of a network that has accounts with employee IDs but no record of
    /// earlier applies here: its accounts are taken as they are. Without it such an apply is
    /// refused (fetch refs/speakap-sync/state first); no effect once there is a record.
    #[arg(long)]
    pub adopt: bool,
    /// Apply as of a `--now` other than today in `policy.timezone` against a real network
    /// (leavers would be deleted, and joiners invited, on the wrong day).
    #[arg(long)]
    pub allow_other_date: bool,
    /// When the apply is blocked or fails, open (or update) an issue labelled `speakap-sync` on
    /// GitHub or GitLab, and message `notify.webhook_env`; a later successful apply closes it.
    #[arg(long)]
    pub notify: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The employee ID.
    pub xid: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Read uncommitted files instead of a commit.
    #[arg(long)]
    pub worktree: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The config directory (inside the git repository holding the state ref).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// How to print the records.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Replay the local records that this ref (a fetched copy of origin's state ref) lacks onto
    /// it, ledgers merged, so that the state ref can be pushed after another machine's apply.
    #[arg(long, value_name = "REF")]
    pub rebase_onto: Option<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Directory to write the schema files to.
    #[arg(long, value_name = "DIR", default_value = "schema")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to write the config repository to (created if missing; existing files are
    /// never overwritten).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The HR export to start from (CSV in any encoding and delimiter, or a workbook); it is
    /// copied into DIR/hr/.
    #[arg(long, value_name = "FILE")]
    pub hr: PathBuf,
    /// The network EID: its groups are read (read-only, token from `--token-env`) to propose
    /// the business units and departments.
    #[arg(long, value_name = "EID")]
    pub network: Option<String>,
    /// Rehearse against the bundled simulator (`speakap.url: embedded`), seeded with the groups
    /// the mapping names; the default without `--network`.
    #[arg(long)]
    pub embedded: bool,
    /// The Speakap API to read the network from and to write into the config.
    #[arg(long, value_name = "URL", default_value = crate::config::DEFAULT_URL)]
    pub url: String,
    /// The environment variable holding the API token.
    #[arg(long, value_name = "NAME", default_value = crate::config::DEFAULT_TOKEN_ENV)]
    pub token_env: String,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Read the SyncConfig from uncommitted files instead of a commit.
    #[arg(long)]
    pub worktree: bool,
    /// The seed file to write (JSON; created readable by you alone, as it holds personal data
    /// unless `--pseudonymize`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace names, email addresses and phone numbers by made-up ones (the same person gets
    /// the same ones throughout); employee IDs, groups and memberships are kept.
    #[arg(long)]
    pub pseudonymize: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct SimulatorResetArgs {
    /// The config directory whose `speakap.embedded` names the seed and the state.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
}

/// A `--now` date, with an error that names the format.
fn parse_date(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .map_err(|_| format!("`{text}` is not a date written YYYY-MM-DD (for example 2026-11-21)"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
    /// GitHub workflow commands: errors show inline on a pull request.
    Github,
    /// A GitLab Code Quality report (JSON): problems show on the merge request.
    Gitlab,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    /// For pull-request comments and job summaries.
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every argument of every command says what it is for.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, undocumented: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    undocumented.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), undocumented);
            }
        }
        let mut command = super::Cli::command();
        command.build();
        let mut undocumented = Vec::new();
        walk(&command, "speakap-sync", &mut undocumented);
        assert!(undocumented.is_empty(), "without help: {undocumented:?}");
    }

    #[test]
    fn a_date_that_is_not_iso_names_the_format() {
        let error = super::parse_date("21-11-2026").unwrap_err();
        assert!(error.contains("YYYY-MM-DD"), "{error}");
        assert_eq!(
            super::parse_date("2026-11-21").unwrap().to_string(),
            "2026-11-21"
        );
    }
}
