//! GitHub Actions integration: one sticky plan comment per pull request (found again by a hidden
//! marker) through the REST API, the alert issue of `apply --notify`, and the job summary. Everything comes from the environment
//! GitHub Actions sets: `GITHUB_TOKEN`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_EVENT_PATH`,
//! `GITHUB_STEP_SUMMARY`, `GITHUB_SERVER_URL`, `GITHUB_RUN_ID`.

use std::io::Write;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::error::Error;
use crate::forge::{Api, Post, Posted, Thread, Tracker};

pub struct GitHub {
    api: Api,
    repository: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    user: Option<Account>,
}

/// An issue (the alert of a blocked or failed apply).
#[derive(Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    user: Option<Account>,
}

#[derive(Deserialize)]
struct Account {
    login: String,
}

impl Post for Comment {
    fn id(&self) -> u64 {
        self.id
    }
    fn body(&self) -> &str {
        &self.body
    }
    fn link(&self) -> String {
        self.html_url.clone()
    }
}

impl Post for Issue {
    fn id(&self) -> u64 {
        self.number
    }
    fn body(&self) -> &str {
        self.body.as_deref().unwrap_or_default()
    }
    fn link(&self) -> String {
        self.html_url.clone()
    }
}

fn written_by(user: &Option<Account>, login: &str) -> bool {
    user.as_ref()
        .is_some_and(|user| user.login.eq_ignore_ascii_case(login))
}

/// Who writes the comments of an Actions `GITHUB_TOKEN`, which may not read `GET /user`.
const ACTIONS_BOT: &str = "github-actions[bot]";

fn env(name: &str) -> Result<String, Error> {
    crate::forge::env(
        name,
        "--comment and --notify run in GitHub Actions (or set it by hand)",
    )
}

fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "; check GITHUB_TOKEN",
        403 | 404 => {
            "; the workflow needs `permissions: pull-requests: write` (comments) or `issues: write` (alerts)"
        }
        _ => "",
    }
}

impl GitHub {
    pub fn from_env() -> Result<GitHub, Error> {
        let token = env("GITHUB_TOKEN")?;
        let repository = env("GITHUB_REPOSITORY")?;
        let base =
            std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        let api = Api::new(
            "GitHub",
            &base,
            (AUTHORIZATION, format!("Bearer {token}")),
            token,
            &[
                ("accept", "application/vnd.github+json"),
                ("x-github-api-version", "2022-11-28"),
            ],
            hint,
        )?;
        Ok(GitHub { api, repository })
    }

    /// The pull request of the event that started the workflow.
    pub fn pull_request_number() -> Result<u64, Error> {
        let path = env("GITHUB_EVENT_PATH")?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("GITHUB_EVENT_PATH {path}: {e}")))?;
        let event: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(format!("GITHUB_EVENT_PATH {path}: {e}")))?;
        ["/pull_request/number", "/number", "/issue/number"]
            .iter()
            .find_map(|pointer| event.pointer(pointer).and_then(serde_json::Value::as_u64))
            .ok_or_else(|| Error::input("the workflow event is not about a pull request: --comment runs on pull_request events"))
    }

    /// The login the token's comments are written by: `GET /user`, or `github-actions[bot]` when
    /// that answers 403, as it does for the installation token Actions hands out. (A token of
    /// another GitHub App gets no comment it recognises as its own: it adds one per run rather
    /// than edit someone else's.)
    async fn login(&self) -> Result<String, Error> {
        let what = "who the token is";
        let (status, text) = self
            .api
            .send(self.api.request(Method::GET, "/user"), what)
            .await?;
        if status == StatusCode::FORBIDDEN {
            return Ok(ACTIONS_BOT.into());
        }
        if !status.is_success() {
            return Err(self.api.failure(status, &text, what));
        }
        Ok(self.api.parse::<Account>(&text, what)?.login)
    }

    /// Creates the plan comment, or updates the one carrying `marker` that this token wrote.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<Posted, Error> {
        let login = self.login().await?;
        let repository = &self.repository;
        let thread = Thread {
            list: format!("/repos/{repository}/issues/{number}/comments"),
            query: Vec::new(),
            items: format!("/repos/{repository}/issues/comments"),
            update_method: Method::PATCH,
            body_field: "body",
            create_fields: serde_json::json!({}),
        };
        self.api
            .upsert(&thread, marker, body, |c: &Comment| {
                written_by(&c.user, &login)
            })
            .await
    }

    /// The open issues labelled `label`.
    fn alerts<'a>(&self, label: &'a str, title: &str) -> Tracker<'a> {
        let issues = format!("/repos/{}/issues", self.repository);
        Tracker {
            thread: Thread {
                list: issues.clone(),
                query: vec![("labels", label), ("state", "open")],
                items: issues,
                update_method: Method::PATCH,
                body_field: "body",
                create_fields: serde_json::json!({ "title": title, "labels": [label] }),
            },
            comments: "comments",
            closed: serde_json::json!({ "state": "closed", "state_reason": "completed" }),
        }
    }

    /// Opens the alert issue (labelled `label`, carrying `marker`), or updates the open one this
    /// token wrote.
    pub async fn upsert_issue(
        &self,
        label: &str,
        marker: &str,
        title: &str,
        body: &str,
    ) -> Result<Posted, Error> {
        let login = self.login().await?;
        let alerts = self.alerts(label, title);
        self.api
            .upsert(&alerts.thread, marker, body, |i: &Issue| {
                written_by(&i.user, &login)
            })
            .await
    }

    /// Comments on the open alert issue this token wrote and closes it; its link, if there was one.
    pub async fn close_issue(
        &self,
        label: &str,
        marker: &str,
        comment: &str,
    ) -> Result<Option<String>, Error> {
        let login = self.login().await?;
        self.api
            .close(&self.alerts(label, ""), marker, comment, |i: &Issue| {
                written_by(&i.user, &login)
            })
            .await
    }
}

/// This Actions run: its ID and its page, when the run's variables are set.
pub fn run() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (server, repository, run) = (
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?,
    );
    let url = format!("{server}/{repository}/actions/runs/{run}");
    Some((run, url))
}

/// Where the full plan is when a comment had to be cut: the run's job summary in Actions.
pub fn full_plan_location() -> String {
    match run() {
        Some((run, url)) => {
            format!("the job summary and the `speakap-sync-plan` artifact of [run {run}]({url})")
        }
        None => "run `speakap-sync plan` for the complete text".into(),
    }
}

/// Appends to the job summary when `GITHUB_STEP_SUMMARY` is set; returns whether it did.
pub fn append_step_summary(markdown: &str) -> Result<bool, Error> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::input(format!("GITHUB_STEP_SUMMARY: {e}")))?;
    file.write_all(markdown.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| Error::input(format!("GITHUB_STEP_SUMMARY: {e}")))?;
    Ok(true)
}
