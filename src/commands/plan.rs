//! `plan`: the plan on stdout (text, JSON or Markdown), optionally written to a file, added to
//! the job summary and posted on the pull request; with `--base`, also what the config change
//! alone does.

use std::path::Path;

use super::inputs::{Inputs, planned, read_hr};
use super::load_config;
use crate::cli::{PlanArgs, PlanFormat};
use crate::config::{self, Config};
use crate::error::Error;
use crate::github;
use crate::output::Paint;
use crate::plan::impact::{self, Impact};
use crate::plan::markdown::{self, MarkdownOptions};
use crate::plan::{self, Plan, PlanInput, render};
use crate::resolve::resolve;
use crate::reviewed;

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
    let pending = pin_to_base(&mut config, base.as_ref(), args)?;
    let (inputs, plan) = planned(config, &args.run).await?;
    let impact = impact_of_change(base, args, &inputs).await;
    if let Some(path) = &args.out {
        let started = std::time::Instant::now();
        std::fs::write(path, render::json(&plan, impact.as_ref()))
            .map_err(|e| Error::input(format!("cannot write {}: {e}", path.display())))?;
        tracing::debug!("plan written in {:.2} s", started.elapsed().as_secs_f64());
    }
    let shown = Shown {
        plan: &plan,
        impact: impact.as_ref(),
        pending: &pending,
        args,
    };
    shown.print();
    shown.publish(&inputs).await?;
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

/// A pull request's plan connects by the base commit's settings (crate::reviewed): the
/// connection settings the change edits, which take effect only once merged.
fn pin_to_base(
    config: &mut Config,
    base: Option<&(&str, BaseConfig)>,
    args: &PlanArgs,
) -> Result<Vec<reviewed::PendingChange>, Error> {
    let pending = match base {
        Some((rev, base)) => reviewed::pin(config, base.sync(), rev, args.run.hr.is_some())?,
        None => Vec::new(),
    };
    if !pending.is_empty() {
        let settings: Vec<&str> = pending.iter().map(|c| c.setting).collect();
        tracing::warn!(
            "this change edits connection settings ({}): they take effect once merged; this plan used the base commit's",
            settings.join(", ")
        );
    }
    Ok(pending)
}

/// What the change since `--base` does on its own. A pull request that adds the config, or
/// repairs a broken one, still gets its plan, without this.
async fn impact_of_change(
    base: Option<(&str, BaseConfig)>,
    args: &PlanArgs,
    inputs: &Inputs,
) -> Option<Impact> {
    match base? {
        (rev, BaseConfig::Valid(base_config)) => {
            match config_impact(rev, *base_config, args, inputs).await {
                Ok(impact) => Some(impact),
                Err(e) => {
                    tracing::warn!("{e}; the plan is shown without what the change alone does");
                    None
                }
            }
        }
        (_, BaseConfig::Invalid { why, .. }) => {
            tracing::warn!("{why}; the plan is shown without what the change alone does");
            None
        }
    }
}

/// A plan as shown: on stdout, in the job summary and in the pull request's comment.
struct Shown<'a> {
    plan: &'a Plan,
    impact: Option<&'a Impact>,
    pending: &'a [reviewed::PendingChange],
    args: &'a PlanArgs,
}

impl Shown<'_> {
    fn print(&self) {
        let plan = self.plan;
        match self.args.format {
            PlanFormat::Text => {
                let paint = Paint::for_stdout();
                print!("{}", reviewed::text_note(self.pending));
                if let Some(impact) = self.impact {
                    print!("{}", render::impact_text(impact, plan, paint));
                }
                print!("{}", render::text(plan, paint));
            }
            PlanFormat::Json => print!("{}", render::json(plan, self.impact)),
            PlanFormat::Markdown => print!("{}", self.markdown(markdown::Limit::NONE, None)),
        }
    }

    fn markdown(&self, limit: markdown::Limit, marker: Option<&str>) -> String {
        let pending_note = reviewed::markdown_note(self.pending);
        let options = MarkdownOptions {
            redact: !self.args.no_redact,
            limit: markdown::Limit {
                max: limit.max.saturating_sub(limit.unit.len(&pending_note)),
                unit: limit.unit,
            },
            marker,
            full_plan: &crate::ci::full_plan_location(),
            impact: self.impact,
        };
        markdown::markdown(self.plan, &options) + &pending_note
    }

    /// The job summary (in GitHub Actions), and with `--comment` the pull or merge request's comment.
    async fn publish(&self, inputs: &Inputs) -> Result<(), Error> {
        if github::append_step_summary(&self.markdown(STEP_SUMMARY_LIMIT, None))? {
            tracing::info!("plan added to the job summary");
        }
        if self.args.comment {
            let marker = markdown::comment_marker(&inputs.config.files.prefix);
            crate::ci::post_plan(&marker, |limit| self.markdown(limit, Some(&marker))).await?;
        }
        Ok(())
    }
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
