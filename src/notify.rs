//! `apply --notify`: a blocked or failed apply opens one issue labelled `speakap-sync` on the
//! code host (or updates the open one), holding the reason, the plan's checksum and summary, and
//! the reviewed way to proceed; a later successful apply comments on it and closes it. With
//! `notify.webhook_env`, a short message also goes to an incoming webhook. Every text from data
//! or an API is masked and escaped; the webhook URL is a secret and is never printed. A failure
//! to notify is logged and changes no exit status: the apply's own status already tells.

use crate::ci::Host;
use crate::config::NotifySettings;
use crate::error::Error;
use crate::forge::Posted;
use crate::plan::markdown::{code, inline};
use crate::redact::{mask_contacts_in, redact_credentials};

/// The label of the alert issue.
pub const LABEL: &str = "speakap-sync";

/// What an apply knew of its plan, for the alert.
#[derive(Clone, Debug, Default)]
pub struct ApplyFacts {
    pub network: String,
    pub checksum: String,
    /// The plan's counts (`Summary::line`).
    pub plan_summary: String,
    /// The safety thresholds the plan is over.
    pub violations: Vec<String>,
    /// The counts of the run, once it ran.
    pub applied: Option<String>,
}

/// How an apply ended, as the alert tells it.
enum Outcome {
    Blocked,
    Failed(String),
    Succeeded,
}

fn outcome(result: &Result<i32, Error>, facts: Option<&ApplyFacts>) -> Outcome {
    match result {
        Ok(0) => Outcome::Succeeded,
        Ok(_) => Outcome::Failed(format!(
            "operations failed or are unknown ({})",
            facts
                .and_then(|f| f.applied.as_deref())
                .unwrap_or("see the run's log")
        )),
        Err(Error::Blocked(_)) => Outcome::Blocked,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Shareable text: contact data masked, credentials removed, cut short.
fn shareable(text: &str) -> String {
    let text = mask_contacts_in(&redact_credentials(text, &[]));
    let mut cut: String = text.chars().take(1000).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// The hidden marker of the alert issue of one config directory.
fn marker(config_dir: &str) -> String {
    format!(
        "<!-- speakap-sync-alert: {} -->",
        config_dir.replace("--", "-")
    )
}

/// After an apply: the issue and the webhook, as the outcome asks.
pub async fn after_apply(
    settings: Option<&NotifySettings>,
    config_dir: &str,
    facts: Option<&ApplyFacts>,
    result: &Result<i32, Error>,
) {
    let outcome = outcome(result, facts);
    let marker = marker(config_dir);
    let network = facts.map(|f| f.network.as_str()).unwrap_or("?");
    let issue = match Host::from_env() {
        Err(e) => {
            tracing::error!("--notify: no issue can be opened or closed: {e}");
            None
        }
        Ok(host) if matches!(outcome, Outcome::Succeeded) => {
            resolve(&host, &marker, network, facts).await
        }
        Ok(host) => raise(&host, &marker, network, facts, &outcome).await,
    };
    // A success is news only when it resolves an alert.
    if matches!(outcome, Outcome::Succeeded) && issue.is_none() {
        return;
    }
    if let Some(settings) = settings {
        let message = webhook_text(network, facts, &outcome, issue.as_deref());
        if let Err(e) = send_webhook(&settings.webhook_env, &message).await {
            tracing::error!("--notify: {e}");
        }
    }
}

/// Comments on the open alert issue and closes it; its link, if one was open.
async fn resolve(
    host: &Host,
    marker: &str,
    network: &str,
    facts: Option<&ApplyFacts>,
) -> Option<String> {
    let comment = format!(
        "The apply of network {} succeeded{}{}: resolved.",
        code(network),
        facts
            .and_then(|f| f.applied.as_deref())
            .map(|a| format!(" ({})", inline(a)))
            .unwrap_or_default(),
        host.run_link()
            .map(|l| format!(" in {l}"))
            .unwrap_or_default()
    );
    match host.close_issue(LABEL, marker, &comment).await {
        Ok(Some(url)) => {
            tracing::info!("alert issue closed: {url}");
            Some(url)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!("--notify: the alert issue could not be closed: {e}");
            None
        }
    }
}

/// Opens the alert issue or updates the open one; its link.
async fn raise(
    host: &Host,
    marker: &str,
    network: &str,
    facts: Option<&ApplyFacts>,
    outcome: &Outcome,
) -> Option<String> {
    let (title, body) = issue_text(host, marker, network, facts, outcome);
    match host.upsert_issue(LABEL, marker, &title, &body).await {
        Ok(Posted::Created(url) | Posted::Updated(url)) => {
            tracing::info!("alert issue: {url}");
            Some(url)
        }
        Err(e) => {
            tracing::error!("--notify: the alert issue could not be written: {e}");
            None
        }
    }
}

fn issue_text(
    host: &Host,
    marker: &str,
    network: &str,
    facts: Option<&ApplyFacts>,
    outcome: &Outcome,
) -> (String, String) {
    let what = match outcome {
        Outcome::Blocked => "is blocked by a safety threshold",
        _ => "failed",
    };
    let title = format!("speakap-sync: the apply of network {network} {what}");
    let mut body = format!(
        "{marker}\n## The apply of network {} {what}\n\n",
        code(network)
    );
    let reason = match outcome {
        Outcome::Blocked => facts.map(|f| f.violations.join("; ")).unwrap_or_default(),
        Outcome::Failed(reason) => reason.clone(),
        Outcome::Succeeded => String::new(),
    };
    body.push_str(&format!("**Why:** {}\n\n", inline(&shareable(&reason))));
    if let Some(facts) = facts {
        body.push_str(&format!(
            "**Plan:** {} — {}\n\n",
            code(&facts.checksum),
            inline(&facts.plan_summary)
        ));
        if let Some(applied) = &facts.applied {
            body.push_str(&format!("**Applied:** {}\n\n", inline(applied)));
        }
    }
    if let Some(link) = host.run_link() {
        body.push_str(&format!("**Run:** {link}\n\n"));
    }
    body.push_str("### How to proceed\n\n");
    match (outcome, facts) {
        (Outcome::Blocked, Some(facts)) => body.push_str(&format!(
            "Nothing was applied. Review the plan (`speakap-sync plan`, or the log of the run above): \
             are these changes intended?\n\n\
             - **Yes:** apply exactly this plan, {}; or locally `speakap-sync apply --force {}`. \
             The checksum names this plan only: once the HR record, the config or the network changes, \
             it no longer applies and the next run is checked afresh.\n\
             - **No:** correct the HR export or the config. The next scheduled apply then runs, \
             and closes this issue when it succeeds.\n",
            host.forced_run(&facts.checksum),
            facts.checksum
        )),
        _ => body.push_str(
            "Read the log of the run above. What the apply did is recorded: `speakap-sync audit` \
             lists it, and the next plan shows what is left. The next scheduled apply runs again \
             and closes this issue when it succeeds.\n",
        ),
    }
    (title, body)
}

/// A short message for a chat webhook: our own words and counts, no HR text, `<>&` escaped
/// (Slack's control characters).
fn webhook_text(
    network: &str,
    facts: Option<&ApplyFacts>,
    outcome: &Outcome,
    issue: Option<&str>,
) -> String {
    let mut text = match outcome {
        Outcome::Blocked => format!(
            "speakap-sync: the apply of network {network} is blocked: {}",
            shareable(&facts.map(|f| f.violations.join("; ")).unwrap_or_default())
        ),
        Outcome::Failed(_) => format!("speakap-sync: the apply of network {network} failed"),
        Outcome::Succeeded => {
            format!("speakap-sync: the apply of network {network} succeeded again")
        }
    };
    if let (Some(facts), false) = (facts, matches!(outcome, Outcome::Succeeded)) {
        text.push_str(&format!(" (plan {})", facts.checksum));
    }
    if let Some(issue) = issue {
        text.push_str(&format!(". Issue: {issue}"));
    }
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Posts `{"text": message}` to the URL in the variable `env_name`; the URL is never printed.
async fn send_webhook(env_name: &str, message: &str) -> Result<(), Error> {
    let Some(value) = std::env::var(env_name)
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Err(Error::input(format!(
            "notify.webhook_env names {env_name}, which is not set: no webhook message was sent"
        )));
    };
    let url = reqwest::Url::parse(value.trim())
        .ok()
        .filter(|url| {
            url.scheme() == "https"
                || (url.scheme() == "http"
                    && url
                        .host_str()
                        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]"))
        })
        .ok_or_else(|| {
            Error::input(format!(
                "{env_name} (notify.webhook_env) does not hold an https URL: no webhook message was sent"
            ))
        })?;
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| Error::input(format!("webhook client: {e}")))?
        .post(url)
        .json(&serde_json::json!({ "text": message }))
        .send()
        .await
        .map_err(|e| {
            Error::input(format!(
                "the webhook in {env_name} did not answer: {}",
                e.without_url()
            ))
        })?;
    if !response.status().is_success() {
        return Err(Error::input(format!(
            "the webhook in {env_name} answered HTTP {}",
            response.status()
        )));
    }
    tracing::info!("webhook message sent ({env_name})");
    Ok(())
}
