//! GitHub Actions integration: one sticky plan comment per pull request (found again by a hidden
//! marker) through the REST API, and the job summary. Everything comes from the environment
//! GitHub Actions sets: `GITHUB_TOKEN`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_EVENT_PATH`,
//! `GITHUB_STEP_SUMMARY`, `GITHUB_SERVER_URL`, `GITHUB_RUN_ID`.

use std::io::Write;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::error::Error;
use crate::redact::redact_credentials;

/// Comments are listed in pages of this size; at most this many pages are read.
const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 50;

pub struct GitHub {
    http: reqwest::Client,
    api: String,
    repository: String,
    /// Only to redact it from what GitHub (or a proxy) quotes back.
    token: String,
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

#[derive(Deserialize)]
struct Account {
    login: String,
}

/// Who writes the comments of an Actions `GITHUB_TOKEN`, which may not read `GET /user`.
const ACTIONS_BOT: &str = "github-actions[bot]";

#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    Created(String),
    Updated(String),
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::input(format!(
                "{name} is not set; --comment runs in GitHub Actions (or set it by hand)"
            ))
        })
}

impl GitHub {
    pub fn from_env() -> Result<GitHub, Error> {
        let token = env("GITHUB_TOKEN")?;
        let repository = env("GITHUB_REPOSITORY")?;
        let api =
            std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::input("GITHUB_TOKEN contains characters not allowed in an HTTP header")
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("speakap-sync/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::input(format!("GitHub client: {e}")))?;
        Ok(GitHub {
            http,
            api: api.trim_end_matches('/').to_string(),
            repository,
            token,
        })
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

    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> Result<String, Error> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::input(format!("GitHub API ({what}): {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.failure(status, &text, what));
        }
        Ok(text)
    }

    fn failure(&self, status: reqwest::StatusCode, text: &str, what: &str) -> Error {
        let hint = match status.as_u16() {
            401 => "; check GITHUB_TOKEN",
            403 | 404 => "; the workflow needs `permissions: pull-requests: write`",
            _ => "",
        };
        // Redacted before it is cut: a proxy may echo the request's Authorization header.
        let message: String = redact_credentials(text, &[&self.token])
            .chars()
            .take(200)
            .collect();
        Error::input(format!(
            "GitHub API ({what}): HTTP {status}: {message}{hint}"
        ))
    }

    /// The login the token's comments are written by: `GET /user`, or `github-actions[bot]` when
    /// that answers 403, as it does for the installation token Actions hands out. (A token of
    /// another GitHub App gets no comment it recognises as its own: it adds one per run rather
    /// than edit someone else's.)
    async fn login(&self) -> Result<String, Error> {
        let what = "who the token is";
        let response = self
            .http
            .get(format!("{}/user", self.api))
            .send()
            .await
            .map_err(|e| Error::input(format!("GitHub API ({what}): {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::FORBIDDEN {
            return Ok(ACTIONS_BOT.into());
        }
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.failure(status, &text, what));
        }
        let account: Account = serde_json::from_str(&text)
            .map_err(|e| Error::input(format!("GitHub API ({what}): {e}")))?;
        Ok(account.login)
    }

    /// Creates the plan comment, or updates the one carrying `marker` that this token wrote:
    /// anyone may write the marker, and a comment of someone else's is never taken for ours.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<Posted, Error> {
        let login = self.login().await?;
        let ours = |comment: &Comment| {
            comment.body.contains(marker)
                && comment
                    .user
                    .as_ref()
                    .is_some_and(|user| user.login.eq_ignore_ascii_case(&login))
        };
        let list_url = format!(
            "{}/repos/{}/issues/{number}/comments",
            self.api, self.repository
        );
        let mut existing = None;
        for page in 1..=MAX_PAGES {
            let request = self
                .http
                .get(&list_url)
                .query(&[("per_page", PAGE_SIZE), ("page", page)]);
            let text = self.call(request, "list comments").await?;
            let comments: Vec<Comment> = serde_json::from_str(&text)
                .map_err(|e| Error::input(format!("GitHub API (list comments): {e}")))?;
            let count = comments.len();
            existing = comments.into_iter().find(ours);
            if existing.is_some() || count < PAGE_SIZE {
                break;
            }
        }
        let payload = serde_json::json!({ "body": body });
        match existing {
            Some(comment) => {
                let url = format!(
                    "{}/repos/{}/issues/comments/{}",
                    self.api, self.repository, comment.id
                );
                let text = self
                    .call(self.http.patch(url).json(&payload), "update comment")
                    .await?;
                let updated: Comment = serde_json::from_str(&text).unwrap_or(comment);
                Ok(Posted::Updated(updated.html_url))
            }
            None => {
                let text = self
                    .call(self.http.post(&list_url).json(&payload), "create comment")
                    .await?;
                let created: Comment = serde_json::from_str(&text)
                    .map_err(|e| Error::input(format!("GitHub API (create comment): {e}")))?;
                Ok(Posted::Created(created.html_url))
            }
        }
    }
}

/// Where the full plan is when a comment had to be cut: the run's job summary in Actions.
pub fn full_plan_location() -> String {
    match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        (Ok(server), Ok(repository), Ok(run)) => {
            format!(
                "the job summary and the `speakap-sync-plan` artifact of [run {run}]({server}/{repository}/actions/runs/{run})"
            )
        }
        _ => "run `speakap-sync plan` for the complete text".into(),
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
