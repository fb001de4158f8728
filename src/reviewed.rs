//! A pull request's plan connects only where reviewed config says. The plan job holds the
//! secrets (`SPEAKAP_TOKEN`, the HR source's credentials), and the pull request's own config is
//! not reviewed yet: were its `speakap.url` or `token_env` used, the change itself would choose
//! which host receives which secret. So a plan with `--base` takes the connection settings from
//! the base commit (as Atlantis takes its server-side config from the default branch), and shows
//! a change to them as one that takes effect once merged. When the base has no valid SyncConfig
//! (the pull request adds it), only settings that send no secret anywhere but to Speakap are
//! used: `url: embedded`, or the defaults (`https://api.speakap.io` with `SPEAKAP_TOKEN`) and a
//! local HR file.

use std::fmt::Write;

use serde::Serialize;

use crate::config::{Config, DEFAULT_TOKEN_ENV, DEFAULT_URL, Source, SyncConfig};
use crate::error::Error;
use crate::plan::markdown::code;

/// A connection setting the pull request changes: the plan used the base commit's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingChange {
    pub setting: &'static str,
    pub base: String,
    pub head: String,
}

/// Replaces the connection settings of `head` (the pull request's config) by those of `base`
/// (its base commit's SyncConfig, `None` when it has none that is valid) and returns what the
/// pull request changes in them. Refuses when there is no reviewed setting to connect with.
/// `hr_given`: the HR record comes from `--hr`, so the HR source is not connected to.
pub fn pin(
    head: &mut Config,
    base: Option<&SyncConfig>,
    base_rev: &str,
    hr_given: bool,
) -> Result<Vec<PendingChange>, Error> {
    let Some(base) = base else {
        refuse_unreviewed(head, base_rev, hr_given)?;
        return Ok(Vec::new());
    };
    let mut pending = Vec::new();
    let speakap = &mut head.sync.speakap;
    if speakap.url != base.speakap.url {
        // The simulator's files come with `url: embedded`, or go with it.
        speakap.embedded = base.speakap.embedded.clone();
    }
    keep(
        &mut pending,
        "speakap.url",
        &mut speakap.url,
        &base.speakap.url,
    );
    keep(
        &mut pending,
        "speakap.token_env",
        &mut speakap.token_env,
        &base.speakap.token_env,
    );
    match (&mut head.sync.source, &base.source) {
        (Source::Sftp(head), Source::Sftp(base)) => {
            keep(&mut pending, "source.host", &mut head.host, &base.host);
            keep(&mut pending, "source.port", &mut head.port, &base.port);
            keep(&mut pending, "source.user", &mut head.user, &base.user);
            keep(
                &mut pending,
                "source.key_env",
                &mut head.key_env,
                &base.key_env,
            );
            keep(
                &mut pending,
                "source.key_passphrase_env",
                &mut head.key_passphrase_env,
                &base.key_passphrase_env,
            );
            keep(
                &mut pending,
                "source.password_env",
                &mut head.password_env,
                &base.password_env,
            );
        }
        (Source::Afas(head), Source::Afas(base)) => {
            keep(&mut pending, "source.url", &mut head.url, &base.url);
            keep(
                &mut pending,
                "source.token_env",
                &mut head.token_env,
                &base.token_env,
            );
        }
        (Source::Sftp(_) | Source::Afas(_), _) if !hr_given => {
            return Err(Error::input(format!(
                "this change makes the HR source `type: {}` (it is `type: {}` at --base {base_rev}); its host and credentials take effect once merged, and a plan before then does not connect to them. Plan it with the export given as --hr FILE, or merge the new source on its own first",
                head.sync.source.type_name(),
                base.source.type_name()
            )));
        }
        _ => {}
    }
    Ok(pending)
}

/// Sets `head` to `base`, noting the change when they differ.
fn keep<T: PartialEq + Clone + Shown>(
    pending: &mut Vec<PendingChange>,
    setting: &'static str,
    head: &mut T,
    base: &T,
) {
    if head != base {
        pending.push(PendingChange {
            setting,
            base: base.shown(),
            head: head.shown(),
        });
        *head = base.clone();
    }
}

/// A setting's value as the note shows it.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for u16 {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for Option<String> {
    fn shown(&self) -> String {
        self.clone().unwrap_or_else(|| "(not set)".into())
    }
}

/// Without a reviewed SyncConfig, the pull request's settings are used only when they send no
/// secret anywhere but to Speakap.
fn refuse_unreviewed(head: &Config, base_rev: &str, hr_given: bool) -> Result<(), Error> {
    let speakap = &head.sync.speakap;
    let to_speakap = speakap.url == "embedded"
        || (speakap.url == DEFAULT_URL && speakap.token_env == DEFAULT_TOKEN_ENV);
    let mut unreviewed = Vec::new();
    if !to_speakap {
        unreviewed.push(written(head, &["speakap", "url"], &speakap.url));
        unreviewed.push(written(head, &["speakap", "token_env"], &speakap.token_env));
    }
    let remote_source = matches!(head.sync.source, Source::Sftp(_) | Source::Afas(_));
    if remote_source && !hr_given {
        unreviewed.push(written(
            head,
            &["source", "type"],
            head.sync.source.type_name(),
        ));
    }
    if unreviewed.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!(
        "--base {base_rev} has no valid SyncConfig to take the connection settings from, and this change's own would choose where the credentials go: {}. A pull request's plan connects only where reviewed config says: the base commit's SyncConfig, or the defaults (`url: {DEFAULT_URL}` with `token_env: {DEFAULT_TOKEN_ENV}`, or `url: embedded`, and a local HR file). Merge the SyncConfig first (or use the defaults in this change), or plan with the export given as --hr FILE",
        unreviewed.join(", ")
    )))
}

/// `speakap.url` "…" (at sync.yaml:5)
fn written(head: &Config, keys: &[&str], value: &str) -> String {
    let at = head
        .setting_origin(keys)
        .map_or_else(|| "by default".to_string(), |o| format!("at {o}"));
    format!("`{}` {value:?} ({at})", keys.join("."))
}

const TAKES_EFFECT: &str = "they take effect once merged; this plan used the base commit's";

/// The note above the text plan; empty without changes.
pub fn text_note(pending: &[PendingChange]) -> String {
    if pending.is_empty() {
        return String::new();
    }
    let mut note = format!("⚠ This change edits connection settings: {TAKES_EFFECT}:\n");
    for change in pending {
        let _ = writeln!(
            note,
            "  {}: {:?} → {:?} (this change)",
            change.setting, change.base, change.head
        );
    }
    note.push('\n');
    note
}

/// The note appended to the Markdown plan; empty without changes.
pub fn markdown_note(pending: &[PendingChange]) -> String {
    if pending.is_empty() {
        return String::new();
    }
    let mut note = format!(
        "\n> ⚠️ **This change edits connection settings** (where speakap-sync connects, which credentials it sends): {TAKES_EFFECT}.\n>\n"
    );
    for change in pending {
        let _ = writeln!(
            note,
            "> - `{}`: {} → {}",
            change.setting,
            code(&change.base),
            code(&change.head)
        );
    }
    note
}
