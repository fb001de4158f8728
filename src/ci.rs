//! The code host a run is in, for what GitHub Actions and GitLab CI do alike: the plan as the
//! pull or merge request's one comment, where the full plan can be read, and the alert issue.
//! GitLab is recognised by `GITLAB_CI=true`; anything else is GitHub (also by hand, outside
//! Actions, with its variables set).

use crate::error::Error;
use crate::forge::Posted;
use crate::github::GitHub;
use crate::gitlab::{self, GitLab};
use crate::plan::markdown::{GITHUB_COMMENT_LIMIT, Limit};

pub enum Host {
    GitHub(GitHub),
    GitLab(GitLab),
}

/// Where the full plan is when a comment had to be cut.
pub fn full_plan_location() -> String {
    if gitlab::detected() {
        gitlab::full_plan_location()
    } else {
        crate::github::full_plan_location()
    }
}

/// Posts the plan as the request's one comment (GitHub) or note (GitLab); `body` renders the plan
/// within the host's limit.
pub async fn post_plan(marker: &str, body: impl Fn(Limit) -> String) -> Result<(), Error> {
    let posted = if gitlab::detected() {
        let iid = GitLab::merge_request_iid()?;
        GitLab::from_env()?
            .upsert_note(iid, marker, &body(gitlab::NOTE_LIMIT))
            .await?
    } else {
        let number = GitHub::pull_request_number()?;
        GitHub::from_env()?
            .upsert_comment(number, marker, &body(GITHUB_COMMENT_LIMIT))
            .await?
    };
    match posted {
        Posted::Created(url) => tracing::info!("plan comment created: {url}"),
        Posted::Updated(url) => tracing::info!("plan comment updated: {url}"),
    }
    Ok(())
}

impl Host {
    /// The run or job this is, as a Markdown link, when its variables say.
    pub fn run_link(&self) -> Option<String> {
        match self {
            Host::GitHub(_) => {
                let (run, url) = crate::github::run()?;
                Some(format!("[run {run}]({url})"))
            }
            Host::GitLab(_) => {
                let (job, url) = gitlab::job()?;
                Some(format!("[job {job}]({url})"))
            }
        }
    }

    pub fn from_env() -> Result<Host, Error> {
        Ok(if gitlab::detected() {
            Host::GitLab(GitLab::from_env()?)
        } else {
            Host::GitHub(GitHub::from_env()?)
        })
    }

    /// Opens the issue labelled `label` carrying `marker`, or updates the open one this token wrote.
    pub async fn upsert_issue(
        &self,
        label: &str,
        marker: &str,
        title: &str,
        body: &str,
    ) -> Result<Posted, Error> {
        match self {
            Host::GitHub(github) => github.upsert_issue(label, marker, title, body).await,
            Host::GitLab(gitlab) => gitlab.upsert_issue(label, marker, title, body).await,
        }
    }

    /// Comments on that issue and closes it; its link, when one was open.
    pub async fn close_issue(
        &self,
        label: &str,
        marker: &str,
        comment: &str,
    ) -> Result<Option<String>, Error> {
        match self {
            Host::GitHub(github) => github.close_issue(label, marker, comment).await,
            Host::GitLab(gitlab) => gitlab.close_issue(label, marker, comment).await,
        }
    }

    /// How a person applies exactly the reviewed plan with this checksum from CI.
    pub fn forced_run(&self, checksum: &str) -> String {
        let code = crate::plan::markdown::code;
        match self {
            Host::GitHub(_) => format!(
                "in GitHub: **Actions → speakap-sync apply → Run workflow** on the default branch, with the input `force` set to {}",
                code(checksum)
            ),
            Host::GitLab(_) => format!(
                "in GitLab: **Build → Pipelines → Run pipeline** on the default branch, with the variable `SPEAKAP_SYNC_FORCE` set to {}",
                code(checksum)
            ),
        }
    }
}
