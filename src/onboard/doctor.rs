//! `doctor [--repo DIR]`: whether this repository is ready to apply, check by check, each with a
//! verdict and what to do. Read-only: it lists one page of users and one of groups, reaches the
//! HR source, and asks origin for the state ref; it changes nothing. It exits 0 only when every
//! check that apply needs holds (warnings, such as missing workflow files, do not count).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cli::DoctorArgs;
use crate::config::{self, Config, Source};
use crate::error::Error;
use crate::speakap::ApiError;
use crate::state;
use crate::text::inert;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Fail,
    Warn,
    Skip,
}

struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
}

fn check(
    name: &'static str,
    verdict: Verdict,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
        fix,
    }
}

pub async fn doctor(args: &DoctorArgs) -> Result<i32, Error> {
    let mut checks = Vec::new();
    let config = match load(args) {
        Ok(config) => {
            checks.push(check(
                "config",
                Verdict::Ok,
                format!(
                    "valid ({} files at {})",
                    config.files.files.len(),
                    config.files.revision.describe()
                ),
                None,
            ));
            config
        }
        Err(e) => {
            checks.push(check(
                "config",
                Verdict::Fail,
                e.to_string(),
                Some(format!(
                    "`speakap-sync validate --repo {}` shows every problem",
                    args.config.repo.display()
                )),
            ));
            print!("{}", render(&checks));
            return Ok(1);
        }
    };
    let accounts_with_xids = check_network(&config, &mut checks).await;
    checks.push(check_hr_source(&config).await);
    checks.push(check_state_ref(&config, accounts_with_xids));
    checks.push(check_workflows(&config.files.repo_root));
    print!("{}", render(&checks));
    Ok(if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        1
    } else {
        0
    })
}

fn load(args: &DoctorArgs) -> Result<Config, Error> {
    let files = config::read_config_files(&args.config.repo, args.config.rev(), false)?;
    config::load(files).map_err(|diagnostics| {
        Error::input(format!(
            "{} problem(s), the first: {}",
            diagnostics.len(),
            diagnostics
                .first()
                .map(|d| d.message.as_str())
                .unwrap_or_default()
        ))
    })
}

/// Token, reachability and the fields of one page of users and of groups. Returns whether the
/// page had accounts with XIDs (a sync ran before), when the network could be read.
async fn check_network(config: &Config, checks: &mut Vec<Check>) -> Option<bool> {
    let settings = &config.sync.speakap;
    if settings.url == "embedded" {
        checks.push(check(
            "network",
            Verdict::Warn,
            "the embedded simulator (`speakap.url: embedded`): apply rehearses, it reaches no real network",
            Some("set `speakap.url: https://api.speakap.io` and remove `speakap.embedded` to apply for real".into()),
        ));
        return None;
    }
    let Ok(token) = crate::speakap::token_from_env(&settings.token_env) else {
        checks.push(check(
            "token",
            Verdict::Fail,
            format!("{} is not set", settings.token_env),
            Some(format!(
                "export {}={{appEID}}_{{appSecret}} (in CI: the secret the workflow passes)",
                settings.token_env
            )),
        ));
        checks.push(check(
            "network",
            Verdict::Skip,
            "not checked without a token",
            None,
        ));
        return None;
    };
    checks.push(check(
        "token",
        Verdict::Ok,
        format!("{} is set", settings.token_env),
        None,
    ));
    let client = match config.sync.client(&settings.url, &token) {
        Ok(client) => client,
        Err(e) => {
            checks.push(check("network", Verdict::Fail, e.to_string(), None));
            return None;
        }
    };
    let groups = match client.first_page_json("groups/").await {
        Ok(page) => page,
        Err(e) => {
            checks.push(api_failure(&e, config));
            return None;
        }
    };
    checks.push(check(
        "network",
        Verdict::Ok,
        format!(
            "{} answers for network {} and accepts the token",
            inert(&settings.url),
            config.sync.network
        ),
        None,
    ));
    let users = match client.first_page_json("users/").await {
        Ok(page) => page,
        Err(e) => {
            checks.push(api_failure(&e, config));
            return None;
        }
    };
    let (fields, with_xids) = check_fields(&users, &groups);
    checks.push(fields);
    Some(with_xids)
}

/// What a failed first request says: unreachable, the token refused, or the network unknown.
fn api_failure(e: &ApiError, config: &Config) -> Check {
    let settings = &config.sync.speakap;
    let detail = inert(&e.to_string()).into_owned();
    match e {
        ApiError::Unreachable { .. } => check(
            "network",
            Verdict::Fail,
            detail,
            Some(format!(
                "check `speakap.url` ({}) and that this machine may reach it",
                inert(&settings.url)
            )),
        ),
        _ if matches!(e.code(), Some(-2) | Some(-3)) => check(
            "token",
            Verdict::Fail,
            format!(
                "the API refuses the token in {}: {detail}",
                settings.token_env
            ),
            Some(format!(
                "set {} to the application's `{{appEID}}_{{appSecret}}`, with access to network {}",
                settings.token_env, config.sync.network
            )),
        ),
        _ => check(
            "network",
            Verdict::Fail,
            detail,
            Some("check `network` (the network EID) and `speakap.api_version`".into()),
        ),
    }
}

/// The parts of the API the tool relies on but the documentation does not show (INFERRED),
/// observed in a users page when present; the rest cannot be seen without changing something.
const INFERRED_UNSEEN: [&str; 6] = [
    "profile update PUT /users/{u}/ with XID and primaryBusinessUnit",
    "POST /users/{u}/suspend, /restore, /anonymize",
    "POST /users/ for SSO accounts",
    "invitee channel sms and printable (activationCode)",
    "the memberships a groups/add answers with",
    "status `suspended` on a suspended account",
];

/// Whether one page of users (with memberships) and of groups has the fields plan and apply read.
fn check_fields(users: &Value, groups: &Value) -> (Check, bool) {
    let list = |page: &Value, key: &str| -> Vec<Value> {
        page.pointer(&format!("/_embedded/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (users_list, groups_list) = (list(users, "users"), list(groups, "groups"));
    let memberships: Vec<&Value> = users_list
        .iter()
        .filter_map(|u| {
            u.pointer("/_embedded/memberships")
                .and_then(Value::as_array)
        })
        .flatten()
        .collect();
    let missing = missing_fields(&users_list, &groups_list, &memberships);
    let detail = format!(
        "{} users and {} groups read; INFERRED parts of the API:{}",
        users_list.len(),
        groups_list.len(),
        inferred_parts(users, &users_list, &memberships)
    );
    let with_xids = users_list.iter().any(|u| {
        u.get("XID")
            .and_then(Value::as_str)
            .is_some_and(|x| !x.is_empty())
    });
    let verdict = if missing.is_empty() {
        check("fields", Verdict::Ok, detail, None)
    } else {
        check(
            "fields",
            Verdict::Fail,
            format!("{}; {detail}", missing.join(", ")),
            Some("the API answers differently from what speakap-sync reads: report it with `speakap-sync --version`".into()),
        )
    };
    (verdict, with_xids)
}

/// The documented fields plan and apply rely on that the page lacks, counted.
fn missing_fields(users: &[Value], groups: &[Value], memberships: &[&Value]) -> Vec<String> {
    let mut missing = Vec::new();
    for (what, items, fields) in [
        ("users", users, &["EID", "name", "emailAddresses"][..]),
        ("groups", groups, &["EID", "name", "type"][..]),
    ] {
        for field in fields {
            let lacking = items.iter().filter(|i| i.get(field).is_none()).count();
            if lacking > 0 {
                missing.push(format!("{lacking} {what} without `{field}`"));
            }
        }
    }
    if !users.is_empty() && memberships.is_empty() {
        missing.push("no user has `_embedded.memberships` (embed=memberships)".into());
    }
    missing
}

/// Each INFERRED part of the API, one per line, as observed on the page or not.
fn inferred_parts(page: &Value, users: &[Value], memberships: &[&Value]) -> String {
    let seen = |test: &dyn Fn(&Value) -> bool| users.iter().any(test);
    let observed = [
        ("XID on accounts", seen(&|u| u.get("XID").is_some())),
        ("status on accounts", seen(&|u| u.get("status").is_some())),
        (
            "primaryBusinessUnit on accounts",
            seen(&|u| u.get("primaryBusinessUnit").is_some()),
        ),
        (
            "a `group` field on group memberships",
            memberships.iter().any(|m| m.get("group").is_some()),
        ),
        (
            "the network membership (one without `group`)",
            !memberships.is_empty() && memberships.iter().any(|m| m.get("group").is_none()),
        ),
        ("`total` on listing pages", page.get("total").is_some()),
    ];
    let mut detail = String::new();
    for (part, seen) in observed {
        let _ = write!(
            detail,
            "\n      {} {part}",
            if seen {
                "observed:    "
            } else {
                "not observed:"
            }
        );
    }
    for part in INFERRED_UNSEEN {
        let _ = write!(
            detail,
            "\n      not observed: {part} (a read-only check cannot see it)"
        );
    }
    detail
}

async fn check_hr_source(config: &Config) -> Check {
    let source = &config.sync.source;
    let result = match source {
        Source::Csv(_) | Source::Excel(_) => {
            let setting = config::paths::source_file(source).expect("a file source names its file");
            config.path_inside(&setting).and_then(|path| {
                std::fs::File::open(&path)
                    .map(|_| format!("{} is present", setting.value))
                    .map_err(|e| Error::input(format!("{}: {e}", setting.value)))
            })
        }
        Source::Sftp(sftp) => {
            let known_hosts =
                config::paths::source_file(source).expect("SFTP names its known_hosts");
            match config.path_inside(&known_hosts) {
                Ok(path) => crate::hr::sftp::fetch(sftp, &path).await.map(|fetched| {
                    format!(
                        "{} fetched ({} bytes), host key known",
                        fetched.display,
                        fetched.bytes.len()
                    )
                }),
                Err(e) => Err(e),
            }
        }
        Source::Afas(afas) => {
            let layout = crate::hr::Layout::typed(crate::rules::configured_columns(&config.sync));
            crate::hr::afas::read(afas, layout, source.format().date_format)
                .await
                .map(|snapshot| {
                    format!(
                        "connector {} read: {} records",
                        afas.connector,
                        snapshot.records.len()
                    )
                })
        }
    };
    match result {
        Ok(detail) => check("hr source", Verdict::Ok, inert(&detail), None),
        Err(e) => check(
            "hr source",
            Verdict::Fail,
            inert(&e.to_string()),
            Some(format!(
                "fix the `source` settings ({} source) or the credentials its variables hold",
                source.type_name()
            )),
        ),
    }
}

/// The record of earlier applies: here and on origin alike, or rightly absent on both.
fn check_state_ref(config: &Config, accounts_with_xids: Option<bool>) -> Check {
    let root = &config.files.repo_root;
    let local = match state::tip(root) {
        Ok(tip) => tip.is_some(),
        Err(e) => return check("state ref", Verdict::Fail, inert(&e.to_string()), None),
    };
    let fetch = format!("git fetch origin '+{0}:{0}'", state::STATE_REF);
    let remote = match remote_has_state_ref(root) {
        Ok(remote) => remote,
        Err(e) => {
            return check(
                "state ref",
                Verdict::Fail,
                format!("cannot ask origin for {}: {}", state::STATE_REF, inert(&e)),
                Some("check the remote `origin` and its credentials".into()),
            );
        }
    };
    match (local, remote) {
        (true, Some(true)) => check(
            "state ref",
            Verdict::Ok,
            format!("{} is here and on origin", state::STATE_REF),
            None,
        ),
        (false, Some(true)) => check(
            "state ref",
            Verdict::Fail,
            format!(
                "origin has {} but this clone does not: apply would forget manual deletions and take over rights granted by hand",
                state::STATE_REF
            ),
            Some(fetch),
        ),
        (true, Some(false)) => check(
            "state ref",
            Verdict::Fail,
            format!(
                "{} is here but not on origin: another machine's apply would start without it",
                state::STATE_REF
            ),
            Some(format!("git push origin {}", state::STATE_REF)),
        ),
        (true, None) => check(
            "state ref",
            Verdict::Warn,
            format!(
                "{} is here; the repository has no remote `origin` to share it",
                state::STATE_REF
            ),
            None,
        ),
        (false, _) if accounts_with_xids == Some(true) => check(
            "state ref",
            Verdict::Fail,
            "no record of earlier applies, yet the network's accounts carry employee IDs",
            Some(format!(
                "{fetch}; or, if the sync never applied to this network, run the first apply with --adopt"
            )),
        ),
        (false, _) => check(
            "state ref",
            Verdict::Ok,
            "no record yet: the first apply starts it",
            None,
        ),
    }
}

/// Whether origin has the state ref; `None` without a remote named origin.
fn remote_has_state_ref(root: &Path) -> Result<Option<bool>, String> {
    let repo = git2::Repository::open(root).map_err(|e| e.message().to_string())?;
    let Ok(mut origin) = repo.find_remote("origin") else {
        return Ok(None);
    };
    let connection = origin
        .connect_auth(git2::Direction::Fetch, None, None)
        .map_err(|e| e.message().to_string())?;
    let heads = connection.list().map_err(|e| e.message().to_string())?;
    Ok(Some(
        heads.iter().any(|head| head.name() == state::STATE_REF),
    ))
}

/// The GitHub Actions workflows that plan pull requests and apply merged config.
fn check_workflows(root: &Path) -> Check {
    let dir = root.join(".github/workflows");
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|text| text.contains("speakap-sync"))
        .collect();
    let has = |mode: &str| texts.iter().any(|t| t.contains(&format!("mode: {mode}")));
    match (has("plan"), has("apply")) {
        (true, true) => check("workflows", Verdict::Ok, "plan and apply workflows are in .github/workflows", None),
        (plan, apply) => check(
            "workflows",
            Verdict::Warn,
            format!(
                "no {} workflow in .github/workflows (apply from this machine still works)",
                [(!plan).then_some("plan"), (!apply).then_some("apply")].into_iter().flatten().collect::<Vec<_>>().join(" or ")
            ),
            Some("copy speakap-plan.yml and speakap-apply.yml from example-repo/.github/workflows (`init` writes them)".into()),
        ),
    }
}

fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let verdict = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
        };
        let _ = writeln!(out, "{verdict} {:<10} {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "     {:<10} fix: {fix}", "");
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed == 0 {
        out.push_str("ready to apply\n");
    } else {
        let _ = writeln!(out, "not ready to apply: {failed} check(s) failed");
    }
    out
}
