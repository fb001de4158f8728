//! GitLab CI integration: one merge-request note with the plan (found again by its marker and by
//! the token's own user), the alert issue of `apply --notify`, and the Code Quality report of
//! `validate --format gitlab`. Everything comes from the variables GitLab CI sets (`GITLAB_CI`,
//! `CI_API_V4_URL`, `CI_PROJECT_ID`, `CI_MERGE_REQUEST_IID`, `CI_JOB_URL`) and a token in
//! `GITLAB_TOKEN` (a masked CI/CD variable: the job token may not write notes or issues).

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Severity};
use crate::error::Error;
use crate::forge::{Api, Post, Posted, Thread, Tracker};
use crate::plan::markdown::{Limit, Unit};

/// GitLab refuses notes over 1,000,000 characters; UTF-16 units are never fewer than characters.
pub const NOTE_LIMIT: Limit = Limit {
    max: 1_000_000,
    unit: Unit::Utf16,
};

/// Whether this runs in GitLab CI.
pub fn detected() -> bool {
    std::env::var("GITLAB_CI").is_ok_and(|v| v == "true")
}

pub struct GitLab {
    api: Api,
    project: String,
}

#[derive(Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    author: Option<User>,
}

#[derive(Deserialize)]
struct Issue {
    iid: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    web_url: String,
    #[serde(default)]
    author: Option<User>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
}

impl Post for Note {
    fn id(&self) -> u64 {
        self.id
    }
    fn body(&self) -> &str {
        &self.body
    }
    fn link(&self) -> String {
        format!("note {}", self.id)
    }
}

impl Post for Issue {
    fn id(&self) -> u64 {
        self.iid
    }
    fn body(&self) -> &str {
        self.description.as_deref().unwrap_or_default()
    }
    fn link(&self) -> String {
        self.web_url.clone()
    }
}

fn written_by(author: &Option<User>, user: u64) -> bool {
    author.as_ref().is_some_and(|author| author.id == user)
}

fn env(name: &str) -> Result<String, Error> {
    crate::forge::env(
        name,
        "in GitLab CI, --comment and --notify need GITLAB_TOKEN (a masked CI/CD variable holding a project access token with the `api` scope) and the variables GitLab sets",
    )
}

fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "; check GITLAB_TOKEN",
        403 | 404 => {
            "; GITLAB_TOKEN needs the `api` scope and at least the Reporter role (notes) or Planner/Reporter for issues"
        }
        _ => "",
    }
}

impl GitLab {
    pub fn from_env() -> Result<GitLab, Error> {
        let token = env("GITLAB_TOKEN")?;
        let api = Api::new(
            "GitLab",
            &env("CI_API_V4_URL")?,
            (
                reqwest::header::HeaderName::from_static("private-token"),
                token.clone(),
            ),
            token,
            &[],
            hint,
        )?;
        Ok(GitLab {
            api,
            project: env("CI_PROJECT_ID")?,
        })
    }

    /// The merge request of the pipeline.
    pub fn merge_request_iid() -> Result<u64, Error> {
        let iid = crate::forge::env(
            "CI_MERGE_REQUEST_IID",
            "--comment runs in merge-request pipelines (`rules: - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"`)",
        )?;
        iid.parse()
            .map_err(|_| Error::input(format!("CI_MERGE_REQUEST_IID `{iid}` is not a number")))
    }

    /// The token's own user: only its notes and issues are ever edited.
    async fn user(&self) -> Result<u64, Error> {
        let me: User = self
            .api
            .call(self.api.request(Method::GET, "/user"), "who the token is")
            .await?;
        Ok(me.id)
    }

    /// Creates the plan note, or updates the one carrying `marker` that this token's user wrote.
    pub async fn upsert_note(&self, iid: u64, marker: &str, body: &str) -> Result<Posted, Error> {
        let user = self.user().await?;
        let notes = format!("/projects/{}/merge_requests/{iid}/notes", self.project);
        let thread = Thread {
            list: notes.clone(),
            query: vec![("sort", "asc"), ("order_by", "created_at")],
            items: notes,
            update_method: Method::PUT,
            body_field: "body",
            create_fields: serde_json::json!({}),
        };
        self.api
            .upsert(&thread, marker, body, |n: &Note| {
                written_by(&n.author, user)
            })
            .await
    }

    /// The open issues labelled `label`.
    fn alerts<'a>(&self, label: &'a str, title: &str) -> Tracker<'a> {
        let issues = format!("/projects/{}/issues", self.project);
        Tracker {
            thread: Thread {
                list: issues.clone(),
                query: vec![("labels", label), ("state", "opened")],
                items: issues,
                update_method: Method::PUT,
                body_field: "description",
                create_fields: serde_json::json!({ "title": title, "labels": label }),
            },
            comments: "notes",
            closed: serde_json::json!({ "state_event": "close" }),
        }
    }

    /// Opens the alert issue, or updates the open one this token's user wrote.
    pub async fn upsert_issue(
        &self,
        label: &str,
        marker: &str,
        title: &str,
        body: &str,
    ) -> Result<Posted, Error> {
        let user = self.user().await?;
        let alerts = self.alerts(label, title);
        self.api
            .upsert(&alerts.thread, marker, body, |i: &Issue| {
                written_by(&i.author, user)
            })
            .await
    }

    /// Comments on the open alert issue this token's user wrote and closes it.
    pub async fn close_issue(
        &self,
        label: &str,
        marker: &str,
        comment: &str,
    ) -> Result<Option<String>, Error> {
        let user = self.user().await?;
        self.api
            .close(&self.alerts(label, ""), marker, comment, |i: &Issue| {
                written_by(&i.author, user)
            })
            .await
    }
}

/// This job's page, when `CI_JOB_URL` holds a web address.
fn job_url() -> Option<String> {
    (std::env::var("CI_JOB_URL").ok())
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
}

/// This CI job: its ID and its page, when `CI_JOB_URL` holds a web address.
pub fn job() -> Option<(String, String)> {
    let url = job_url()?;
    Some((std::env::var("CI_JOB_ID").unwrap_or_default(), url))
}

/// Where the full plan is when a note had to be cut: the job's artifact.
pub fn full_plan_location() -> String {
    match job_url() {
        Some(url) => format!(
            "the `speakap-sync-plan.json` artifact of [the job]({url}) (`speakap-sync plan` shows the complete text)"
        ),
        None => "run `speakap-sync plan` for the complete text".into(),
    }
}

/// One entry of a GitLab Code Quality report.
#[derive(Serialize)]
struct Finding<'a> {
    description: String,
    check_name: &'a str,
    fingerprint: String,
    severity: &'static str,
    location: FindingLocation<'a>,
}

#[derive(Serialize)]
struct FindingLocation<'a> {
    path: &'a str,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
}

/// The diagnostics as a Code Quality report (a JSON array), which GitLab shows on the merge
/// request's changed lines. A diagnostic without a place is reported at line 1 of `fallback`.
pub fn code_quality(diagnostics: &[Diagnostic], fallback: &str) -> String {
    let findings: Vec<Finding> = diagnostics
        .iter()
        .map(|d| {
            let (path, line) = d
                .location
                .as_ref()
                .map(|l| (l.file.as_str(), l.line.max(1)))
                .unwrap_or((fallback, 1));
            let mut description = d.message.clone();
            if let Some(hint) = &d.hint {
                description.push_str(" (");
                description.push_str(hint);
                description.push(')');
            }
            Finding {
                fingerprint: crate::digest::sha256_hex(format!(
                    "{}\0{path}\0{line}\0{}",
                    d.rule, d.message
                )),
                description,
                check_name: &d.rule,
                severity: match d.severity {
                    Severity::Error => "major",
                    Severity::Warning => "minor",
                },
                location: FindingLocation {
                    path,
                    lines: Lines { begin: line },
                },
            }
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&findings).expect("findings serialize");
    out.push('\n');
    out
}
